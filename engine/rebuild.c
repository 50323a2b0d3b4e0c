/* engine/rebuild.c — the job process: compaction and table rebuilds.
 *
 * Both build a new table in the spare area while workers go on reading
 * and writing the current one, then flip to it:
 *   1. cut: under the index mutex take T0, below which every record is
 *      written and published, and claim the spare area;
 *   2. fill: a rebuild copies the current table's entries (read without
 *      the mutex) with their hashes, so its table keeps the current hash
 *      seed; a compaction copies each record below T0 that the current
 *      table still points at into database.bin.compact (as a plain
 *      record: a batch below T0 committed long ago) and indexes it in a
 *      table with a new seed;
 *   3. catch up: replay (a compaction: copy byte for byte, then index)
 *      the records written since, until little is left; replay applies
 *      a record only if it is newer than what a key holds, so the copy
 *      made while writers ran needs no more than that;
 *   4. freeze: a compaction first (not frozen) writes zeros ahead of
 *      the new file's tail, as the master keeps them ahead of
 *      database.bin's, and syncs them with the copy; then new
 *      reservations are held off (writers retry, -EAGAIN, from their
 *      loops: nothing blocks), the ones in flight waited for to
 *      publish, the rest caught up; a compaction then syncs the new file,
 *      puts its tail and the version lease in its header, renames it over
 *      database.bin and syncs the directory (ALICE: the new file and its
 *      directory entry are durable before the old one is dropped);
 *   5. flip, under the mutex: the new table (and file) become current;
 *      workers map the new file on their next operation and keep the old
 *      mapping until the values they are sending from it are released.
 * Readers never wait: until the flip they read the old table and file,
 * which hold the same logical state.
 *
 * A compaction then writes database.idx for the new file, so the next
 * start loads the index instead of scanning the log.
 *
 * Failpoints at every step (docs/failpoints.md): compact.copy,
 * compact.catchup, compact.swap (frozen, before the rename),
 * compact.renaming (the swap recorded, the rename not made),
 * compact.renamed (the rename made, not yet recorded), compact.rename
 * (after it is recorded), compact.dirsync (after the directory sync),
 * compact.unlink (after the flip, dropping the old index snapshot),
 * compact.done. The master undoes or finishes what a job that died left
 * (job.c), deciding from the file id database.bin has on disk.
 */
#include "engine/job_int.h"

#include "engine/elog.h"
#include "engine/errors.h"
#include "engine/idxsnap.h"
#include "engine/index.h"
#include "engine/io.h"
#include "engine/pacer.h"
#include "engine/record.h"
#include "engine/replay.h"
#include "engine/scan.h"
#include "engine/shared.h"
#include "engine/failpoint.h"
#include "ipc/flock.h"
#include "ipc/shm.h"
#include "engine/db.h"
#include "engine/area.h"
#include "engine/space.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define OUT_BUF_BYTES (4u << 20)
/* Write-back is started for every this much copied, so the final
 * fdatasync has little left and the page cache never holds the whole
 * new file dirty: while the pace holds the job back (requests are being
 * served) a small piece, one in flight at a time; otherwise a large
 * one, started without waiting (out_flush). */
#define WRITEBACK_BYTES (32ull << 20)
#define WRITEBACK_GENTLE_BYTES (4ull << 20)
/* Catch-up passes go on until one has less than this to do, or this
 * many passes ran: the rest is done frozen. */
#define CATCHUP_SMALL_BYTES (256u << 10)
#define CATCHUP_PASSES 16
#define DRAIN_STEP_US 100
#define DRAIN_MAX_MS 10000
#define COPY_CHUNK_BYTES (1u << 20)
#define SLOT_RETRIES 1000

struct rb {
	struct eng_db *db;
	struct eng_shared *sh;
	uint64_t id;
	int compact;
	uint32_t area;
	struct eng_table *t;      /* the table being built */
	uint64_t gen;
	uint64_t pos;             /* the current file: replayed up to here */
	uint64_t max_version;
	uint64_t floor;           /* compaction: the new file's history floor */
	/* a compaction's new file */
	char *npath;
	int nfd;
	const char *nmap;
	uint64_t ntail;
	uint64_t nzeroed;         /* written zeros up to here (prepare_zeros) */
	uint64_t file_id;
	uint64_t file_gen;
	char *buf;                /* records copied, not yet written */
	size_t used;
	uint64_t buf_off;
	uint64_t written_back;
	uint64_t wb_from;         /* the piece of write-back last started */
	int frozen;
	enum eng_job_stage stage; /* as set_stage last recorded it */
	int in_catchup;           /* walk() is replaying a copied range */
	struct eng_flip pf;       /* the flip a compaction will make */
	uint64_t before;          /* database.bin's size at the cut */
	uint64_t catchup_delta;   /* new offset - old offset of the pass */
	uint64_t ns_copy, ns_catchup, ns_sync, ns_frozen; /* where time went */
	/* the frozen window's parts: draining writes in flight, the last
	 * catch-up, the two syncs of the new file, rename and directory
	 * sync, the flip (logged at debug level: where a freeze went) */
	uint64_t ns_drain, ns_last, ns_sync1, ns_sync2, ns_rename, ns_dirsync;
	/* a compaction's pace: the copy and the catch-up before the freeze
	 * report their bytes to it and sleep as it says (never frozen) */
	const struct eng_pace_cfg *pace;
	struct eng_pacer pacer;
	char err[ENG_JOB_ERROR_MAX];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int fail(struct rb *r, int rc, const char *what)
{
	if (!r->err[0])
		snprintf(r->err, sizeof(r->err), "%s: %s", what, eng_strerror(rc));
	return rc;
}

/* --- the job record ------------------------------------------------------ */

/* 0, or -errno when the record could not be written (the job must not
 * take a step the master could not then tell it took). */
static int set_stage(struct rb *r, enum eng_job_stage st)
{
	int rc = eng_job_record_stage(r->sh, r->id, st, &r->pf, r->before,
				      st == ENG_STAGE_RENAMING ? r->t->live : 0);

	if (rc == 0)
		r->stage = st;
	return rc;
}

/* --- 1. the cut --------------------------------------------------------------- */

static int cut(struct rb *r)
{
	struct eng_db *db = r->db;
	struct eng_shared *sh = r->sh;
	struct eng_table *cur;
	struct eng_hash_seed seed;
	uint64_t keys, nslots;
	int rc;

	/* A compaction indexes its new file from the records: a new seed,
	 * so nothing learnt about the old one's hashes carries over. A
	 * rebuild copies the entries, hashes and all: the current seed. */
	if (r->compact && (rc = eng_hash_seed_new(&seed)))
		return fail(r, rc, "making a seed for the new table's hash");
	if ((rc = eng_lock_index(db)))
		return fail(r, rc, "locking the index");
	cur = eng_cur_table(sh);
	if (!r->compact)
		seed = cur->seed;
	r->area = !eng_cur_area(atomic_load(&sh->cur));
	if ((rc = eng_area_claim(sh, r->area, getpid()))) {
		eng_unlock_index(db);
		return fail(r, rc, "the spare table area");
	}
	keys = cur->live + cur->pending;
	/* sized as any rebuild (the keys at 7/20): keys added while it runs
	 * have room up to 9/10 */
	nslots = eng_index_slots_for(keys, sh->area_slots);
	if (!r->compact)
		sh->want_resize = 0;
	r->gen = ++sh->table_gen;
	r->file_gen = atomic_load(&sh->file_gen) + (r->compact ? 1 : 0);
	r->pos = eng_written_below_locked(sh);
	r->before = sh->tail;
	eng_unlock_index(db);
	r->t = eng_area_table(sh, r->area);
	ipc_shm_release(r->t, sh->area_bytes);
	eng_index_init(r->t, r->gen, r->file_gen, nslots, &seed);
	return 0;
}

/* --- the new file (compaction) ------------------------------------------------- */

static int out_flush(struct rb *r)
{
	int rc, gentle;

	if (!r->used)
		return 0;
	if ((rc = ENG_FP("compact.copy")) ||
	    (rc = eng_io_pwrite_all(r->nfd, r->buf, r->used, r->buf_off)))
		return fail(r, rc, "writing database.bin.compact");
	r->buf_off += r->used;
	r->used = 0;
	gentle = eng_pace_limited(&r->pacer.ctl);
	if (r->buf_off - r->written_back >= (gentle ? WRITEBACK_GENTLE_BYTES : WRITEBACK_BYTES)) {
		/* Gently, one piece in flight at a time: the last one is
		 * waited for before this one starts. A worker's fdatasync
		 * ends with a cache flush that waits for every write the
		 * device holds; with 32 MiB started at once, traced,
		 * workers' syncs took 160-200 ms while an unpaced copy ran.
		 * With no requests to protect (unpaced, or the pace at its
		 * ceiling) the copy does not wait on its own write-back.
		 * Hints only: the swap's fdatasync is what makes the file
		 * durable. */
		if (gentle && r->written_back > r->wb_from)
			(void)eng_io_sync_range(r->nfd, r->wb_from, r->written_back - r->wb_from,
						SYNC_FILE_RANGE_WAIT_BEFORE);
		r->wb_from = r->written_back;
		(void)eng_io_sync_range(r->nfd, r->written_back, r->buf_off - r->written_back,
					SYNC_FILE_RANGE_WRITE);
		r->written_back = r->buf_off;
	}
	return 0;
}

static int out_put(struct rb *r, const void *p, size_t n)
{
	int rc;

	if (r->used + n > OUT_BUF_BYTES && (rc = out_flush(r)))
		return rc;
	if (n > OUT_BUF_BYTES) {
		if ((rc = ENG_FP("compact.copy")) ||
		    (rc = eng_io_pwrite_all(r->nfd, p, n, r->buf_off)))
			return fail(r, rc, "writing database.bin.compact");
		r->buf_off += n;
	} else {
		memcpy(r->buf + r->used, p, n);
		r->used += n;
	}
	r->ntail += n;
	return 0;
}

static int create_new_file(struct rb *r)
{
	struct eng_mark m = { ENG_FILE_HDR_SIZE, atomic_load(&r->sh->lease) };
	char hdr[ENG_FILE_HDR_SIZE], hist[ENG_HIST_REC_SIZE];
	void *p;
	int rc;

	if ((rc = eng_path_join(&r->npath, r->db->dir, ENG_COMPACT_FILE)))
		return fail(r, rc, "naming database.bin.compact");
	r->nfd = eng_io_open(r->npath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, ENG_FILE_MODE);
	if (r->nfd < 0)
		return fail(r, r->nfd, "creating database.bin.compact");
	/* nobody else writes it; the lock says so to anyone who looks */
	if ((rc = ipc_flock(r->nfd, IPC_FLOCK_WRITE, 0, 0, 0)))
		return fail(r, rc, "locking database.bin.compact");
	p = mmap(NULL, ENG_MAP_BYTES, PROT_READ, MAP_SHARED | MAP_NORESERVE, r->nfd, 0);
	if (p == MAP_FAILED)
		return fail(r, -errno, "mapping database.bin.compact");
	r->nmap = p;
	if (!(r->buf = malloc(OUT_BUF_BYTES)))
		return fail(r, -ENOMEM, "a copy buffer");
	r->file_id = eng_file_id_new();
	eng_file_hdr_encode(hdr, r->file_id, &m);
	r->buf_off = 0;
	r->ntail = 0;
	/* the history mark's place; its values are known after the copy */
	eng_hist_encode(hist, 0, ENG_FILE_HDR_SIZE + ENG_HIST_REC_SIZE);
	if ((rc = out_put(r, hdr, sizeof(hdr))))
		return rc;
	return out_put(r, hist, sizeof(hist));
}

/* Zeros ahead of the new file's tail, as the master keeps them ahead of
 * database.bin's (engine/space.c), written before the swap's syncs so
 * that those syncs make them durable. Without them, every append to
 * the new file grew it: every group-commit fdatasync had to commit the
 * file's size and allocation through the journal, behind whatever else
 * the journal held (this job's own allocations, database.idx, the old
 * file's freed extents), and the master prepares none while a job runs.
 * The last catch-up writes its records over the first of them. Ends at
 * a chunk boundary: the master's next piece must start on one. A full
 * disk keeps no zeros (the file is cut back) rather than failing. */
static int prepare_zeros(struct rb *r)
{
	uint64_t from, end;
	int rc;

	if ((rc = out_flush(r)))
		return rc;
	from = r->ntail;
	end = (from + eng_space_lead(from) + ENG_CHUNK_BYTES - 1) & ~(ENG_CHUNK_BYTES - 1);
	rc = eng_space_zero(r->nfd, from, end - from);
	if (rc == -ENOSPC || rc == -EDQUOT) {
		if ((rc = eng_io_truncate(r->nfd, from)))
			return fail(r, rc, "giving back zeros in database.bin.compact");
		return 0;
	}
	if (rc)
		return fail(r, rc, "preparing zeros in database.bin.compact");
	r->nzeroed = end;
	return 0;
}

/* After the copy of what lay below the cut: what the new file holds of
 * the log's history. Every version above the floor (the highest one
 * below the cut, or the old file's floor) is at or past ntail: the
 * catch-up copies the log from the cut on as it is. */
static int mark_history(struct rb *r)
{
	char hist[ENG_HIST_REC_SIZE];
	uint64_t old_floor, old_hist;
	int rc;

	if (!eng_hist_decode(r->db->map, r->pos, &old_floor, &old_hist) &&
	    old_floor > r->floor)
		r->floor = old_floor;
	if ((rc = out_flush(r)))
		return rc;
	eng_hist_encode(hist, r->floor, r->ntail);
	if ((rc = eng_io_pwrite_all(r->nfd, hist, sizeof(hist), ENG_FILE_HDR_SIZE)))
		return fail(r, rc, "writing database.bin.compact");
	return 0;
}

/* A full disk: give back the reserve file and the zeros prepared ahead
 * of database.bin's tail (keeping the deletes' reserve), so the new file
 * has room. */
static void make_room(struct rb *r)
{
	struct eng_db *db = r->db;
	struct eng_shared *sh = r->sh;
	struct statvfs vfs;
	uint64_t keep, need, end;

	if (statvfs(db->dir, &vfs) < 0)
		return;
	need = eng_cur_table(sh)->live_bytes + (16u << 20);
	if ((uint64_t)vfs.f_bavail * vfs.f_frsize >= need)
		return;
	eng_db_release_reserve(db);
	if (eng_lock_index(db))
		return;
	keep = (sh->tail + ENG_DELETE_RESERVE + ENG_CHUNK_BYTES - 1) & ~(ENG_CHUNK_BYTES - 1);
	if (sh->zeroed_end <= keep || sh->zeroing_to) {
		eng_unlock_index(db);
		return;
	}
	/* claimed as being zeroed, so no reservation enters it meanwhile */
	end = sh->zeroed_end;
	sh->zeroed_end = keep;
	sh->zeroing_from = keep;
	sh->zeroing_to = end;
	eng_unlock_index(db);
	if (eng_io_truncate(db->fd, keep) == 0)
		eng_log(ENG_LOG_INFO, "compaction: the disk is short of space; released %"
			PRIu64 " bytes prepared ahead of database.bin's tail", end - keep);
	if (eng_lock_index(db))
		return;
	sh->zeroing_from = sh->zeroing_to = 0;
	eng_unlock_index(db);
}

/* --- 2. fill -------------------------------------------------------------- */

/* A consistent copy of slot i of the current table, waiting out (or
 * repairing, through the mutex) a slot left odd. */
static int read_slot(struct rb *r, const struct eng_table *t, uint64_t i,
		     struct eng_entry *e)
{
	for (int n = 0; n < SLOT_RETRIES; n++) {
		int rc = eng_index_read_slot(t, i, e);
		if (rc >= 0)
			return rc;
		if (n % 100 == 99 && !eng_lock_index(r->db))
			eng_unlock_index(r->db);
	}
	return fail(r, -EAGAIN, "reading the table");
}

static int copy_table(struct rb *r)
{
	struct eng_shared *sh = r->sh;
	_Atomic uint64_t *reading = &sh->seats[ENG_JOB_SEAT].reading;
	const struct eng_table *cur;
	uint64_t c;
	int rc = 0;

	c = atomic_load(&sh->cur);
	atomic_store(reading, eng_cur_gen(c));
	cur = eng_area_table(sh, eng_cur_area(c));
	for (uint64_t i = 0; i < cur->nslots && !rc; i++) {
		struct eng_entry e;
		int got = read_slot(r, cur, i, &e);
		if (got < 0)
			rc = got;
		else if (got && (rc = eng_index_merge(r->t, r->db->map, &e)))
			rc = fail(r, rc, "the new table is full");
	}
	atomic_store(reading, 0);
	return rc;
}

/* Is the record at off the one the current table points at for its key? */
static int still_live(struct rb *r, uint64_t off, const struct eng_rec_hdr *h)
{
	struct eng_shared *sh = r->sh;
	_Atomic uint64_t *reading = &sh->seats[ENG_JOB_SEAT].reading;
	const char *key = r->db->map + off + ENG_REC_HDR_SIZE;
	struct eng_khash kh = { .hash = 0 };
	struct eng_entry e;
	int found;

	for (int n = 0;; n++) {
		uint64_t c = atomic_load(&sh->cur);
		const struct eng_table *t;

		atomic_store(reading, eng_cur_gen(c));
		t = eng_area_table(sh, eng_cur_area(c));
		found = eng_index_lookup(t, r->db->map, key, h->klen,
					 eng_index_hash_for(t, key, h->klen, &kh), &e);
		atomic_store(reading, 0);
		if (found >= 0)
			break;
		if (n == SLOT_RETRIES)
			return fail(r, -EAGAIN, "reading the table");
		if (!eng_lock_index(r->db))
			eng_unlock_index(r->db);
	}
	return found && e.voff == off + ENG_REC_HDR_SIZE + h->klen;
}

static int copy_live(struct rb *r, const struct eng_replay_item *it)
{
	char hdr[ENG_REC_HDR_SIZE];
	const char *rec = r->db->map + it->off;
	struct eng_entry e = {
		.version = it->h.version, .vlen = it->h.vlen, .klen = it->h.klen,
		.state = ENG_SLOT_LIVE,
	};
	int rc;

	if (it->h.version > r->floor)
		r->floor = it->h.version; /* dead or alive, its history goes */
	if (it->h.type != ENG_REC_PUT || (rc = still_live(r, it->off, &it->h)) == 0)
		return 0;
	if (rc < 0)
		return rc;
	e.hash = eng_index_hash(r->t, rec + ENG_REC_HDR_SIZE, it->h.klen);
	e.voff = r->ntail + ENG_REC_HDR_SIZE + it->h.klen;
	/* committed long ago: a plain record in the new file */
	memcpy(hdr, rec, sizeof(hdr));
	eng_rec_unbatch(hdr);
	if ((rc = out_put(r, hdr, sizeof(hdr))) ||
	    (rc = out_put(r, rec + sizeof(hdr), it->len - sizeof(hdr))))
		return rc;
	if (it->h.version > r->max_version)
		r->max_version = it->h.version;
	if ((rc = eng_index_place(r->t, &e)))
		return fail(r, rc, "the new table is full");
	return 0;
}

/* Walks the committed records of [from, to) of the current file. */

/* A catch-up copies bytes as they are, so a region that holds nothing
 * (a write that failed and whose wipe failed too, a batch that never
 * committed) came along: it becomes a PAD record in the new file, whose
 * durable mark will cover it (garbage there would read as corruption
 * at the next start). */
static int pad_copied(struct rb *r, uint64_t off, uint64_t len)
{
	char pad[ENG_REC_HDR_SIZE];
	int rc;

	if (len < ENG_REC_HDR_SIZE || len % ENG_REC_ALIGN)
		return fail(r, -EBADMSG, "an unused region of database.bin has an odd size");
	eng_rec_encode_pad(pad, len, 0);
	if ((rc = eng_io_pwrite_all(r->nfd, pad, sizeof(pad), off + r->catchup_delta)))
		return fail(r, rc, "writing database.bin.compact");
	return 0;
}

static int walk(struct rb *r, uint64_t from, uint64_t to,
		int (*fn)(struct rb *, const struct eng_replay_item *))
{
	struct eng_scan s;
	struct eng_replay rp;
	struct eng_replay_item it;
	int rc = 0;

	eng_scan_init(&s, r->db->map, to);
	eng_scan_set_fd(&s, r->db->fd);
	eng_scan_seek(&s, from);
	eng_replay_init(&rp, &s);
	while (!rc && !(rc = eng_replay_next(&rp, &it)) && it.kind != ENG_REPLAY_END) {
		/* the copy's pace counts every byte it scans, dead ones too */
		if (r->compact && !r->in_catchup)
			eng_pacer_done(&r->pacer, it.len);
		if (it.kind == ENG_REPLAY_RECORD) {
			rc = fn(r, &it);
		} else if (r->in_catchup && r->compact &&
			   (it.kind == ENG_REPLAY_DROPPED ||
			    (it.kind == ENG_REPLAY_SCAN && it.scan == ENG_SCAN_ABANDONED))) {
			rc = pad_copied(r, it.off, it.len);
		} else if (it.kind == ENG_REPLAY_SCAN && it.scan != ENG_SCAN_ABANDONED &&
			   it.scan != ENG_SCAN_UNUSED) {
			snprintf(r->err, sizeof(r->err), "database.bin is damaged at offset %"
				 PRIu64 " (%" PRIu64 " bytes); run 'caskd check'", it.off, it.len);
			rc = ENG_ECORRUPT;
		}
	}
	eng_replay_free(&rp);
	return rc;
}

/* --- 3. catch up ------------------------------------------------------------------ */

static int index_one(struct rb *r, const struct eng_replay_item *it)
{
	const char *map = r->compact ? r->nmap : r->db->map;
	uint64_t off = it->off + (r->compact ? r->catchup_delta : 0);
	int rc;

	if (it->h.version > r->max_version)
		r->max_version = it->h.version;
	if ((rc = eng_index_apply(r->t, map, off, &it->h)))
		return fail(r, rc, "the new table is full");
	return 0;
}

/* Replays [r->pos, to): a compaction copies the bytes as they are (so
 * batches stay whole and offsets move by one constant), then indexes
 * the records from the copy. */
static int catch_up(struct rb *r, uint64_t to)
{
	int rc;

	/* before the early return: a drill arms it whether or not writes
	 * landed since the cut */
	ENG_FP("compact.catchup");
	if (to <= r->pos)
		return 0;
	if (r->compact) {
		if ((rc = out_flush(r)))
			return rc;
		r->catchup_delta = r->ntail - r->pos;
		for (uint64_t o = r->pos; o < to; o += COPY_CHUNK_BYTES) {
			uint64_t n = to - o < COPY_CHUNK_BYTES ? to - o : COPY_CHUNK_BYTES;
			if ((rc = eng_io_pwrite_all(r->nfd, r->db->map + o, n, o + r->catchup_delta)))
				return fail(r, rc, "writing database.bin.compact");
			if (!r->frozen)
				eng_pacer_done(&r->pacer, n);
		}
		r->ntail += to - r->pos;
		r->buf_off = r->ntail;
	}
	r->in_catchup = 1;
	rc = walk(r, r->pos, to, index_one);
	r->in_catchup = 0;
	if (rc)
		return rc;
	r->pos = to;
	return 0;
}

static uint64_t written_below(struct rb *r)
{
	uint64_t w;

	if (eng_lock_index(r->db))
		return r->pos;
	w = eng_written_below_locked(r->sh);
	eng_unlock_index(r->db);
	return w;
}

static int catch_up_while_running(struct rb *r)
{
	int rc;

	for (int pass = 0; pass < CATCHUP_PASSES; pass++) {
		uint64_t to = written_below(r);
		uint64_t n = to > r->pos ? to - r->pos : 0;
		if (r->compact)
			eng_pacer_catchup(&r->pacer, to);
		if ((rc = catch_up(r, to)))
			return rc;
		if (n < CATCHUP_SMALL_BYTES)
			break;
	}
	return 0;
}

/* --- 4. freeze -------------------------------------------------------------- */

static int inflight(struct eng_shared *sh)
{
	for (int w = 0; w <= ENG_SEATS; w++)
		if (sh->seats[w].inflight.off)
			return 1;
	return 0;
}

/* Holds new reservations off and waits for those in flight; returns the
 * tail, which stays put until the flip. */
static int freeze(struct rb *r, uint64_t *tail)
{
	struct eng_shared *sh = r->sh;
	struct timespec step = { 0, DRAIN_STEP_US * 1000 };
	int rc;

	if ((rc = eng_lock_index(r->db)))
		return fail(r, rc, "locking the index");
	sh->frozen = getpid();
	eng_unlock_index(r->db);
	r->frozen = 1;
	(void)set_stage(r, ENG_STAGE_FROZEN);
	for (uint64_t waited = 0;; waited += DRAIN_STEP_US) {
		if ((rc = eng_lock_index(r->db)))
			return fail(r, rc, "locking the index");
		if (!inflight(sh)) {
			*tail = sh->tail;
			eng_unlock_index(r->db);
			return 0;
		}
		eng_unlock_index(r->db);
		if (waited > DRAIN_MAX_MS * 1000ull)
			return fail(r, -ETIMEDOUT, "waiting for writes in flight");
		nanosleep(&step, NULL);
	}
}

static int unfreeze(struct rb *r)
{
	int rc;

	if (!r->frozen)
		return 0;
	if ((rc = eng_lock_index(r->db)))
		return rc;
	if (r->sh->frozen == getpid())
		r->sh->frozen = 0;
	eng_unlock_index(r->db);
	r->frozen = 0;
	return 0;
}

/* The new file's written zeros end here: the last catch-up may have
 * gone past them. */
static uint64_t zeroed_end(const struct rb *r)
{
	return r->nzeroed > r->ntail ? r->nzeroed : r->ntail;
}

/* The new file's last steps before the flip: synced, its tail and the
 * lease in its header, renamed over database.bin, directory synced. */
static int swap_file(struct rb *r, uint64_t lease)
{
	struct eng_mark m = { r->ntail, lease };
	char mark[ENG_MARK_SIZE];
	uint64_t t = mono_ns();
	int rc;

	if ((rc = out_flush(r)) || (rc = eng_io_datasync(r->nfd)))
		return fail(r, rc, "syncing database.bin.compact");
	r->ns_sync1 = mono_ns() - t;
	t = mono_ns();
	eng_mark_encode(mark, &m);
	if ((rc = eng_io_pwrite_all(r->nfd, mark, sizeof(mark), eng_mark_off(1))) ||
	    (rc = eng_io_datasync(r->nfd)))
		return fail(r, rc, "writing the header of database.bin.compact");
	r->ns_sync2 = mono_ns() - t;
	t = mono_ns();
	ENG_FP("compact.swap");
	/* From the rename on it is database.bin, where writers take their
	 * shared chunk leases: our exclusive lock must not outlive the
	 * freeze (it held every writer up while we wrote database.idx). */
	ipc_flock(r->nfd, IPC_FLOCK_UNLOCK, 0, 0, 0);
	/* What the master needs to finish if we die from here on. */
	r->pf = (struct eng_flip){
		.area = r->area, .gen = r->gen, .file_gen = r->file_gen,
		.tail = r->ntail, .zeroed_end = zeroed_end(r), .durable = r->ntail,
		.file_id = r->file_id, .lease = lease,
	};
	/* Recorded before the rename: a kill between the two must not
	 * leave the master believing the old file is still database.bin. */
	if ((rc = set_stage(r, ENG_STAGE_RENAMING)))
		return fail(r, rc, "recording the swap in the job record");
	ENG_FP("compact.renaming");
	if ((rc = eng_io_rename(r->npath, r->db->path)))
		return fail(r, rc, "renaming database.bin.compact to database.bin");
	ENG_FP("compact.renamed");
	(void)set_stage(r, ENG_STAGE_RENAMED);
	ENG_FP("compact.rename");
	r->ns_rename = mono_ns() - t;
	t = mono_ns();
	if ((rc = eng_io_syncdir(r->db->dir)))
		return fail(r, rc, "syncing the data directory");
	r->ns_dirsync = mono_ns() - t;
	ENG_FP("compact.dirsync");
	return 0;
}

/* --- 5. flip -------------------------------------------------------------- */

static int flip(struct rb *r, uint64_t lease)
{
	struct eng_shared *sh = r->sh;
	int rc;

	if ((rc = eng_lock_index(r->db)))
		return fail(r, rc, "locking the index");
	r->t->guard = &sh->index_mtx;
	eng_area_flip(sh, &(struct eng_flip){
		.area = r->area, .gen = r->gen,
		.file_gen = r->compact ? r->file_gen : atomic_load(&sh->file_gen),
		.tail = r->ntail, .zeroed_end = r->compact ? zeroed_end(r) : r->ntail,
		.durable = r->ntail, .file_id = r->file_id, .lease = lease,
	});
	if (r->compact)
		atomic_store(&sh->lease, lease);
	sh->frozen = 0;
	r->frozen = 0;
	eng_unlock_index(r->db);
	(void)set_stage(r, ENG_STAGE_FLIPPED);
	return 0;
}

/* After a compaction: an index snapshot for the new file. Failing it
 * costs only a slower next start. */
static void write_snapshot(struct rb *r)
{
	struct eng_db *db = r->db;
	uint64_t from;
	int rc;

	if (eng_db_refresh(db))
		return;
	eng_idx_remove(db->dir);
	ENG_FP("compact.unlink");
	from = written_below(r);
	rc = eng_idx_write(db, db->dir, eng_cur_table(r->sh), r->file_id, from,
			   r->max_version);
	if (rc)
		eng_log(ENG_LOG_WARN, "compaction: writing %s/%s failed: %s (the next "
			"start scans database.bin instead)", db->dir, ENG_IDX_FILE,
			strerror(-rc));
}

/* --- the job -------------------------------------------------------------------- */

static void cleanup_failed(struct rb *r)
{
	struct eng_shared *sh = r->sh;

	assert(r->stage < ENG_STAGE_RENAMING);
	if (r->npath)
		eng_io_unlink(r->npath);
	unfreeze(r);
	if (eng_lock_index(r->db))
		return;
	eng_area_abandon(sh, getpid());
	eng_unlock_index(r->db);
}

static int run(struct rb *r)
{
	uint64_t t0 = 0, tail, lease, t = mono_ns();
	int rc;

	if (r->compact) {
		/* before the cut: its first probe measures the load alone */
		eng_pacer_start(&r->pacer, r->sh, r->id, r->pace);
		make_room(r);
	}
	if ((rc = cut(r)))
		return rc;
	ENG_FP("compact.cut");
	t0 = r->pos;
	if (r->compact)
		eng_pacer_cut(&r->pacer, ENG_FILE_HDR_SIZE, t0);
	(void)set_stage(r, ENG_STAGE_COPY);
	if (r->compact) {
		if ((rc = create_new_file(r)) ||
		    (rc = walk(r, ENG_FILE_HDR_SIZE, t0, copy_live)) ||
		    (rc = mark_history(r)))
			return rc;
	} else if ((rc = copy_table(r))) {
		return rc;
	}
	r->ns_copy = mono_ns() - t;
	t = mono_ns();
	(void)set_stage(r, ENG_STAGE_CATCHUP);
	if ((rc = catch_up_while_running(r)))
		return rc;
	r->ns_catchup = mono_ns() - t;
	t = mono_ns();
	if (r->compact && ((rc = prepare_zeros(r)) || (rc = eng_io_datasync(r->nfd))))
		return fail(r, rc, "syncing database.bin.compact");
	r->ns_sync = mono_ns() - t;
	t = mono_ns();
	if ((rc = freeze(r, &tail)))
		return rc;
	r->ns_drain = mono_ns() - t;
	if ((rc = catch_up(r, tail)))
		return rc;
	r->ns_last = mono_ns() - t - r->ns_drain;
	/* No version is handed out while frozen: the lease the new file
	 * gets covers every one so far, with a fresh half to spare. */
	lease = atomic_load(&r->sh->lease);
	if (r->sh->seq + ENG_LEASE_VERSIONS / 2 > lease)
		lease = r->sh->seq + ENG_LEASE_VERSIONS;
	if (r->compact && (rc = swap_file(r, lease)))
		return rc;
	if (!r->compact)
		r->ntail = tail;
	rc = flip(r, lease);
	r->ns_frozen = mono_ns() - t;
	return rc;
}

int eng_job_run(struct eng_db *db, uint64_t id, const struct eng_pace_cfg *pace)
{
	struct eng_shared *sh = db->sh;
	struct eng_job *j = &sh->jobs[id % ENG_JOBS_KEPT];
	struct rb r = { .db = db, .sh = sh, .id = id, .nfd = -1, .pace = pace };
	uint64_t t0 = mono_ns(), ts;
	int rc;

	if (j->id != id)
		return 1;
	r.compact = j->kind == ENG_JOB_COMPACT;
	rc = run(&r);
	if (rc && r.stage >= ENG_STAGE_RENAMING) {
		/* The rename may have been made: only what is on disk can
		 * say whether database.bin is the new file. Leave the record
		 * running and exit; the master reaps us and finishes or
		 * undoes the swap from the file id it reads (engine/job.c). */
		eng_log(ENG_LOG_ERROR, "compaction %" PRIu64 " failed during its swap: %s; "
			"the master finishes or undoes it", id, r.err);
		goto out_free;
	}
	if (rc) {
		cleanup_failed(&r);
		eng_log(ENG_LOG_ERROR, "%s job %" PRIu64 " failed: %s; database.bin goes on as before",
			eng_job_kind_name((enum eng_job_kind)j->kind), id, r.err);
	} else {
		if (r.compact) {
			eng_pacer_end(&r.pacer);
			ENG_FP("compact.done");
			ts = mono_ns();
			write_snapshot(&r);
			/* where the freeze went, for an operator chasing a
			 * latency spike at the swap */
			eng_log(ENG_LOG_DEBUG, "compaction %" PRIu64 ": writes held off %.1f ms "
				"(draining %.1f, last catch-up %.1f, sync %.1f, header sync %.1f, "
				"rename %.1f, directory sync %.1f ms); database.idx %.1f ms", id,
				(double)r.ns_frozen / 1e6, (double)r.ns_drain / 1e6,
				(double)r.ns_last / 1e6, (double)r.ns_sync1 / 1e6,
				(double)r.ns_sync2 / 1e6, (double)r.ns_rename / 1e6,
				(double)r.ns_dirsync / 1e6, (double)(mono_ns() - ts) / 1e6);
			eng_log(ENG_LOG_INFO, "compaction %" PRIu64 " done in %.2f s: database.bin "
				"%" PRIu64 " -> %" PRIu64 " bytes, %" PRIu64 " keys (copy %.3f s, "
				"catch-up %.3f s, sync %.3f s, writes held off %.1f ms), pace %s, "
				"%.1f MB/s", id,
				(double)(mono_ns() - t0) / 1e9, r.before, r.ntail, r.t->live,
				(double)r.ns_copy / 1e9, (double)r.ns_catchup / 1e9,
				(double)r.ns_sync / 1e9, (double)r.ns_frozen / 1e6,
				eng_pace_mode_name(r.pacer.mode), (double)r.pacer.made / 1e6);
		} else {
			eng_log(ENG_LOG_INFO, "index rebuilt: %" PRIu64 " slots for %" PRIu64 " keys",
				r.t->nslots, r.t->live);
		}
	}
	/* a failed job made no file: no size for it */
	eng_job_record_outcome(sh, id, rc, r.err, r.before,
			       rc ? 0 : r.compact ? r.ntail : r.before, rc ? 0 : r.t->live);
out_free:
	if (r.nmap)
		munmap((void *)r.nmap, ENG_MAP_BYTES);
	if (r.nfd >= 0)
		close(r.nfd);
	free(r.npath);
	free(r.buf);
	return rc ? 1 : 0;
}
