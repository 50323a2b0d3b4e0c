/* engine/recover.c — recovery at start-up (master, before fork).
 *
 * Owns: building the first table from database.idx (when it is valid)
 * and a replay of the log after what it covers (all of the log without
 * one); cutting a torn tail; wiping abandoned reservations and batches
 * that never committed; growing the table as keys turn up, so its size
 * follows the keys found and not --max-keys; resuming versions above the
 * durable lease; upgrading a format 1 header; and making what was
 * recovered durable before anything is served.
 *
 * It runs before any other process exists, as the table's only builder:
 * without the index mutex (the table's guard is set once it is done),
 * and without publishing slots one by one (eng_index_bulk_*): no reader
 * exists yet. Its tables' pages are made in bulk (ipc_shm_populate), as
 * faulting them in one by one was a fifth of a start-up on a VM.
 *
 * Outcomes: 0 with the report filled (what was cut, skipped, dropped),
 * ENG_ECORRUPT with the offset (damage the durable mark says was
 * synced; bad_off + bad_len past file_bytes: the file ends below its
 * mark, truncated), ENG_EFULL (more keys than --max-keys), or -errno.
 */
#include "engine/store.h"

#include "engine/elog.h"
#include "engine/errors.h"
#include "engine/idxsnap.h"
#include "engine/index.h"
#include "engine/io.h"
#include "engine/record.h"
#include "engine/replay.h"
#include "engine/scan.h"
#include "engine/shared.h"
#include "ipc/shm.h"
#include "engine/area.h"
#include "engine/db.h"
#include "engine/recover.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define PROGRESS_EVERY_BYTES (64ull << 20)

/* Recovery fills its tables with eng_index_bulk_* (no per-slot
 * publication): right only while no other process exists. */
static int no_other_process(const struct eng_shared *sh)
{
	for (int i = 0; i <= ENG_SEATS; i++)
		if (atomic_load(&sh->seats[i].pid))
			return 0;
	return 1;
}

/* Makes the pages of a fresh table of nslots in one call rather than a
 * fault per 4 KiB page as entries land in it (ipc_shm_populate). Best
 * effort: pages it could not make are faulted in as before. */
static void populate(struct eng_table *t, uint64_t nslots)
{
	(void)ipc_shm_populate(t, eng_index_table_bytes(nslots));
}

/* Installs a fresh table of nslots, keyed with seed, in area a as the
 * current one. */
static struct eng_table *new_table(struct eng_shared *sh, uint32_t a,
				   uint64_t nslots, const struct eng_hash_seed *seed)
{
	struct eng_table *t = eng_area_table(sh, a);

	assert(no_other_process(sh));
	ipc_shm_release(t, sh->area_bytes);
	populate(t, nslots);
	eng_index_init(t, ++sh->table_gen, 1, nslots, seed);
	eng_area_install(sh, a);
	return t;
}

/* Grows the current table during recovery (no other process yet). */
static int recover_grow(struct eng_db *db)
{
	struct eng_shared *sh = db->sh;
	uint32_t a = eng_cur_area(atomic_load(&sh->cur));
	struct eng_table *old = eng_area_table(sh, a);
	uint64_t n = eng_index_slots_for((old->live + old->pending) * 2 + 1,
					 sh->area_slots);
	struct eng_table *t;

	if (n <= old->nslots && old->dead == 0)
		return ENG_EFULL;
	assert(no_other_process(sh));
	t = eng_area_table(sh, !a);
	ipc_shm_release(t, sh->area_bytes);
	populate(t, n);
	eng_index_init(t, ++sh->table_gen, old->file_gen, n, &old->seed);
	for (uint64_t i = 0; i < old->nslots; i++) {
		struct eng_entry e;
		if (eng_index_read_slot(old, i, &e) == 1 && eng_index_bulk_place(t, &e) < 0)
			return ENG_EFULL;
	}
	eng_area_install(sh, !a);
	ipc_shm_release(old, sh->area_bytes);
	return 0;
}

static int apply(struct eng_db *db, const struct eng_replay_item *it)
{
	int rc;

	while ((rc = eng_index_bulk_apply(eng_cur_table(db->sh), db->map, it->off,
					  &it->h)) == -ENOSPC)
		if ((rc = recover_grow(db)))
			return rc;
	return rc;
}

/* Regions the replay wiped, kept while it runs after database.idx: an
 * entry of the snapshot must not point into one (a damaged or stale
 * snapshot could). More than fit: the snapshot is not trusted. */
#define WIPED_MAX 4096

struct wiped {
	uint64_t off, len;
};

struct rscan {
	struct eng_db *db;
	const struct eng_opts *o;
	struct eng_recovery *rep;
	uint64_t size;
	uint64_t next_progress;
	struct wiped wiped[WIPED_MAX];
	unsigned nwiped;
	int wiped_overflow;
	struct eng_idx_view view;  /* database.idx's ordered section, if sound */
};

static int on_record(struct rscan *r, const struct eng_replay_item *it)
{
	struct eng_recovery *rep = r->rep;

	if (it->h.type == ENG_REC_PAD) {
		if (it->h.flags & ENG_REC_F_TERM) {
			/* a group member's position counts its term marks */
			if (it->h.version > rep->max_version)
				rep->max_version = it->h.version;
			return 0;
		}
		if (it->h.flags & ENG_REC_F_REPAIRED) {
			rep->repaired += it->len;
			eng_log(ENG_LOG_WARN, "recovery: skipping %" PRIu64 " bytes at offset %"
				PRIu64 " that 'caskd check --repair' dropped as damaged",
				it->len, it->off);
		} else {
			rep->skipped += it->len;
		}
		return 0;
	}
	rep->records++;
	if (it->h.version > rep->max_version)
		rep->max_version = it->h.version;
	return apply(r->db, it);
}

/* Wipes [off, off+len): once the durable mark moves past it, only zeros
 * there still read as "nothing". */
static int wipe(struct rscan *r, uint64_t off, uint64_t len)
{
	if (r->nwiped < WIPED_MAX)
		r->wiped[r->nwiped++] = (struct wiped){ off, len };
	else
		r->wiped_overflow = 1;
	return eng_io_discard(r->db->fd, off, len);
}

static int on_other(struct rscan *r, const struct eng_replay_item *it)
{
	struct eng_recovery *rep = r->rep;

	if (it->kind == ENG_REPLAY_DROPPED) {
		eng_log(ENG_LOG_WARN, "recovery: dropped %" PRIu64 " bytes at offset %" PRIu64
			": a batch that never committed (never acknowledged; none of it applied)",
			it->len, it->off);
		rep->dropped += it->len;
		return wipe(r, it->off, it->len);
	}
	switch (it->scan) {
	case ENG_SCAN_ABANDONED:
		eng_log(ENG_LOG_WARN, "recovery: skipped %" PRIu64 " bytes at offset %" PRIu64
			": a write that never completed (never acknowledged)",
			it->len, it->off);
		rep->skipped += it->len;
		return wipe(r, it->off, it->len);
	case ENG_SCAN_CORRUPT:
		rep->bad_off = it->off;
		rep->bad_len = it->len;
		return ENG_ECORRUPT;
	case ENG_SCAN_TORN_TAIL:
	case ENG_SCAN_UNUSED:
		rep->cut_bytes = it->len;
		rep->cut_zeros = it->scan == ENG_SCAN_UNUSED;
		return 0;
	default:
		return 0;
	}
}

static void progress(struct rscan *r, uint64_t off)
{
	if (!r->o->progress || off < r->next_progress)
		return;
	r->next_progress = off + PROGRESS_EVERY_BYTES;
	r->o->progress(off, r->size, r->o->progress_arg);
}

/* Replays [from, size) into the current table. */
static int replay_log(struct rscan *r, uint64_t from)
{
	struct eng_scan s;
	struct eng_replay rp;
	struct eng_replay_item it;
	int rc = 0;

	eng_scan_init(&s, r->db->map, r->size);
	eng_scan_set_fd(&s, r->db->fd);
	eng_scan_set_eof(&s); /* a file shorter than its mark was truncated */
	eng_scan_seek(&s, from);
	eng_replay_init(&rp, &s);
	r->next_progress = from + PROGRESS_EVERY_BYTES;
	while (!rc && !(rc = eng_replay_next(&rp, &it)) && it.kind != ENG_REPLAY_END) {
		progress(r, it.off);
		rc = it.kind == ENG_REPLAY_RECORD ? on_record(r, &it) : on_other(r, &it);
	}
	eng_replay_free(&rp);
	r->rep->scanned = r->size - from;
	return rc;
}

/* The table from database.idx (keyed as it was) when it can be trusted;
 * else an empty one with a new seed. *from: where the replay of the log
 * starts. 0 or -errno. */
static int start_table(struct rscan *r, uint64_t *from)
{
	struct eng_db *db = r->db;
	struct eng_shared *sh = db->sh;
	uint64_t claimed = eng_idx_keys(db), maxv = 0;
	struct eng_hash_seed seed;
	struct eng_table *t;
	int rc;

	if ((rc = eng_hash_seed_new(&seed))) {
		snprintf(r->rep->failed, sizeof(r->rep->failed),
			 "making a random seed for the index's hash (getrandom)");
		return rc;
	}
	t = new_table(sh, 0, eng_index_slots_for(claimed, sh->area_slots), &seed);
	rc = eng_idx_load(db, r->size, t, from, &maxv, &r->view, r->rep->note,
			  sizeof(r->rep->note));
	if (rc == 0) {
		r->rep->from_snapshot = 1;
		r->rep->max_version = maxv;
		return 0;
	}
	if (rc != -ENOENT)
		eng_log(ENG_LOG_WARN, "recovery: ignoring %s/%s: %s; scanning all of "
			"database.bin instead", db->dir, ENG_IDX_FILE, r->rep->note);
	else
		r->rep->note[0] = '\0';
	new_table(sh, 0, ENG_INDEX_MIN_SLOTS, &seed);
	*from = ENG_FILE_HDR_SIZE;
	return 0;
}

static int in_wiped(const struct rscan *r, uint64_t roff, uint64_t end)
{
	for (unsigned i = 0; i < r->nwiped; i++)
		if (roff < r->wiped[i].off + r->wiped[i].len && end > r->wiped[i].off)
			return 1;
	return 0;
}

/* After a replay that started from database.idx: does every key the
 * table holds name a record that survives, below the tail and outside
 * what the replay wiped? A snapshot that vouched for more than is on
 * disk (or a damaged one) fails here, and recovery scans it all. */
static int table_within(const struct rscan *r, uint64_t tail, char *why,
			size_t n)
{
	const struct eng_table *t = eng_cur_table(r->db->sh);

	if (r->wiped_overflow) {
		snprintf(why, n, "the replay after it wiped more than %d regions", WIPED_MAX);
		return 0;
	}
	for (uint64_t i = 0; i < t->nslots; i++) {
		struct eng_entry e;
		uint64_t roff, end;

		if (eng_index_read_slot(t, i, &e) != 1)
			continue;
		roff = e.voff - e.klen - ENG_REC_HDR_SIZE;
		end = e.voff + e.vlen;
		if (end > tail || in_wiped(r, roff, end)) {
			snprintf(why, n, "it names a record at offset %" PRIu64 " that %s",
				 roff, end > tail ? "lies past the end of the log" :
				 "the replay wiped as never completed");
			return 0;
		}
	}
	return 1;
}

/* Forgets what a replay from database.idx found, before a full scan
 * into a fresh table (with a seed of its own). 0 or -errno. */
static int restart_scan(struct rscan *r)
{
	struct eng_recovery *rep = r->rep;
	struct eng_hash_seed seed;
	int rc;

	if ((rc = eng_hash_seed_new(&seed)))
		return rc;

	rep->records = rep->skipped = rep->repaired = rep->dropped = 0;
	rep->cut_bytes = 0;
	rep->cut_zeros = 0;
	rep->max_version = 0;
	rep->from_snapshot = 0;
	r->nwiped = 0;
	r->wiped_overflow = 0;
	new_table(r->db->sh, 0, ENG_INDEX_MIN_SLOTS, &seed);
	return 0;
}

/* Keeps database.idx's ordered section for the workers (db->idx_view)
 * if the snapshot it came with was kept: its keys are then exactly the
 * live keys below its covered_from, all of them below where the replay
 * began, so nothing the replay cut or wiped is among them; a worker's
 * log reader takes it from there (engine/list.c). */
static void keep_view(struct rscan *r)
{
	struct eng_db *db = r->db;

	memset(&db->idx_view, 0, sizeof(db->idx_view));
	if (!r->rep->from_snapshot)
		return;
	if (!r->view.file_gen) {
		if (r->view.why[0])
			eng_log(ENG_LOG_WARN, "recovery: not using the ordered keys of "
				"%s/%s: %s (each worker sorts the keys at its first "
				"listing instead)", db->dir, ENG_IDX_FILE, r->view.why);
		snprintf(db->idx_view.why, sizeof(db->idx_view.why), "%s",
			 r->view.why[0] ? r->view.why : "database.idx has no ordered keys");
		return;
	}
	db->idx_view = r->view;
	db->idx_view.file_gen = db->file_gen;
}

/* What recovery read may have come from the page cache of a process that
 * was killed before syncing: make it durable, then record that (and the
 * new version lease) in the header's durable mark, so a later crash can
 * never make it look torn nor hand a version out twice. A format 1
 * header is rewritten as format 2 here. */
static int mark_recovered(struct eng_db *db, int format, struct eng_recovery *rep)
{
	struct eng_shared *sh = db->sh;
	struct eng_mark m = { sh->tail, atomic_load(&sh->lease) };
	char buf[ENG_FILE_HDR_SIZE];
	int rc, copy;

	if ((rc = eng_io_datasync(db->fd)))
		return rc;
	if (format == ENG_FORMAT_V1) {
		eng_file_hdr_encode(buf, eng_file_id_new(), &m);
		if ((rc = eng_io_pwrite_all(db->fd, buf, sizeof(buf), 0)))
			return rc;
		rep->upgraded = 1;
		copy = 0;
	} else {
		struct eng_mark old;
		eng_mark_read(db->map, &old, &copy);
		copy = !copy;
		eng_mark_encode(buf, &m);
		if ((rc = eng_io_pwrite_all(db->fd, buf, ENG_MARK_SIZE, eng_mark_off(copy))))
			return rc;
	}
	if ((rc = eng_io_datasync(db->fd)))
		return rc;
	sh->mark = m;
	sh->mark_copy = copy;
	sh->mark_file_gen = 1;
	atomic_store(&sh->file_id, eng_file_id(db->map));
	atomic_store(&sh->durable_end, sh->tail);
	atomic_store(&sh->synced_tail, sh->tail);
	return 0;
}

int eng_recover(struct eng_db *db, const struct eng_opts *o, uint64_t size,
		struct eng_recovery *rep)
{
	struct eng_shared *sh = db->sh;
	struct rscan r = { .db = db, .o = o, .rep = rep, .size = size };
	struct eng_mark m;
	uint64_t from, base;
	int format, rc, copy;

	if ((rc = eng_file_hdr_check(db->map, size, &format))) {
		rep->bad_off = 0;
		snprintf(rep->failed, sizeof(rep->failed), "reading the header of %s", db->path);
		return rc == -EPROTO ? rc : ENG_ECORRUPT;
	}
	eng_mark_read(db->map, &m, &copy);
	atomic_store(&sh->file_gen, 1);
	db->cur->file_gen = db->file_gen = 1;
	if ((rc = start_table(&r, &from)) || (rc = replay_log(&r, from)))
		return rc;
	if (rep->from_snapshot &&
	    !table_within(&r, size - rep->cut_bytes, rep->note, sizeof(rep->note))) {
		eng_log(ENG_LOG_WARN, "recovery: ignoring %s/%s: %s; scanning all of "
			"database.bin instead", db->dir, ENG_IDX_FILE, rep->note);
		if ((rc = restart_scan(&r)) || (rc = replay_log(&r, ENG_FILE_HDR_SIZE)))
			return rc;
	}
	if (sh->max_keys && eng_cur_table(sh)->live > sh->max_keys)
		return ENG_EFULL;
	keep_view(&r);
	rep->tail = size - rep->cut_bytes;
	if (rep->cut_bytes) {
		if (rep->cut_zeros)
			eng_log(ENG_LOG_INFO, "recovery: trimmed %" PRIu64 " bytes of zeros after "
				"offset %" PRIu64 " (space prepared for appends)",
				rep->cut_bytes, rep->tail);
		else
			eng_log(ENG_LOG_WARN, "recovery: truncated a torn tail of %" PRIu64 " bytes at "
				"offset %" PRIu64 " (an append interrupted by a crash, above the "
				"durable mark: it was never acknowledged)", rep->cut_bytes, rep->tail);
		if ((rc = eng_io_truncate(db->fd, rep->tail)))
			return rc;
	}
	/* Versions resume above both what the log holds and the lease: a
	 * version a reader saw of a write that power loss took back is
	 * never given to another value. */
	base = rep->max_version > m.lease ? rep->max_version : m.lease;
	rep->version_base = base;
	sh->seq = base;
	atomic_store(&sh->top_version, rep->max_version);
	atomic_store(&sh->lease, base + ENG_LEASE_VERSIONS);
	sh->tail = rep->tail;
	sh->zeroed_end = rep->tail;
	return mark_recovered(db, format, rep);
}
