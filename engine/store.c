/* engine/store.c — opening, recovering, reading and writing the store
 * (see store.h for the life cycle and the three-step write).
 *
 * Map of this file:
 *   open/recover (master) - attach (worker) - the index mutex's repair
 *   hook - get - write (reserve, write, publish, abandon) - reap a dead
 *   worker - stats - small parsers.
 */
#include "engine/store.h"

#include "engine/elog.h"
#include "engine/errors.h"
#include "engine/index.h"
#include "engine/io.h"
#include "engine/record.h"
#include "engine/recovery.h"
#include "engine/shared.h"
#include "ipc/failpoint.h"
#include "ipc/flock.h"
#include "ipc/shm.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DB_FILE "database.bin"
#define LOCK_FILE "caskd.lock"
#define DIR_MODE 0750
#define FILE_MODE 0640
/* The read-only mapping covers this much address space from the start,
 * so it never has to move while the file grows (MAP_NORESERVE: costs no
 * memory until read). database.bin is limited to this size. */
#define MAP_BYTES (1ull << 40)
#define INT64_DIGITS_MAX 20

static int db_repair(struct ipc_mtx *m, pid_t dead, void *arg);

static int lock_index(struct eng_db *db)
{
	return ipc_mtx_lock(&db->sh->index_mtx, db_repair, db);
}

static void unlock_index(struct eng_db *db)
{
	ipc_mtx_unlock(&db->sh->index_mtx);
}

/* --- open and recover (master) ----------------------------------------- */

static int path_join(char **out, const char *dir, const char *name)
{
	if (asprintf(out, "%s/%s", dir, name) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int map_file(struct eng_db *db)
{
	void *p = mmap(NULL, MAP_BYTES, PROT_READ, MAP_SHARED | MAP_NORESERVE,
		       db->fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	db->map = p;
	db->map_size = MAP_BYTES;
	return 0;
}

/* A new or empty database.bin gets its header, made durable with the
 * directory entry (ALICE: a created file needs its directory synced). */
static int init_file(struct eng_db *db, struct eng_recovery *rep)
{
	char hdr[ENG_FILE_HDR_SIZE];
	int rc;

	eng_file_hdr_encode(hdr, (uint64_t)time(NULL));
	if ((rc = eng_io_truncate(db->fd, 0)) ||
	    (rc = eng_io_pwrite_all(db->fd, hdr, sizeof(hdr), 0)) ||
	    (rc = eng_io_datasync(db->fd)) ||
	    (rc = eng_io_syncdir(db->dir)))
		return rc;
	rep->created = 1;
	return 0;
}

static int create_shared(struct eng_db *db, uint64_t max_keys)
{
	uint64_t nslots = eng_index_slots_for(max_keys);
	size_t hdr = sizeof(struct eng_shared);
	size_t size = hdr + nslots * sizeof(struct eng_ientry);
	struct eng_shared *sh;
	int rc;

	if ((rc = ipc_shm_create(size, (void **)&sh)))
		return rc;
	sh->magic = ENG_SHM_MAGIC;
	sh->version = ENG_SHM_VERSION;
	sh->hdr_size = (uint32_t)hdr;
	sh->total_size = size;
	sh->max_keys = max_keys;
	sh->nslots = nslots;
	sh->unwiped = UINT64_MAX;
	if ((rc = ipc_mtx_init(&sh->index_mtx)) ||
	    (rc = ipc_mtx_init(&sh->sync_mtx))) {
		ipc_shm_destroy(sh, size);
		return rc;
	}
	db->sh = sh;
	db->shm_size = size;
	return 0;
}

/* Replays one valid record into the index. Records are in version order
 * in the file (version and offset are assigned together under the index
 * mutex), so the last record of a key wins. */
static int replay(struct eng_db *db, uint64_t off, const struct eng_rec_hdr *h)
{
	struct eng_shared *sh = db->sh;
	struct eng_ientry *t = eng_shared_table(sh);
	const char *key = db->map + off + ENG_REC_HDR_SIZE;
	uint32_t hash = eng_index_hash32(eng_key_hash(key, h->klen));
	uint64_t voff = off + ENG_REC_HDR_SIZE + h->klen;
	struct eng_find f;
	struct eng_ientry *e;

	if (h->type == ENG_REC_PAD)
		return 0;
	eng_index_find(sh, db->map, key, h->klen, hash, &f);
	if (f.slot != ENG_NO_SLOT) {
		e = &t[f.slot];
		sh->live_bytes -= eng_rec_size(e->klen, e->vlen);
		if (h->type == ENG_REC_DEL) {
			e->state = ENG_SLOT_DEAD;
			sh->live_keys--;
			sh->dead++;
			return 0;
		}
	} else {
		if (h->type == ENG_REC_DEL)
			return 0;
		/* --max-keys is checked once replay is done: a log may have
		 * held more live keys on the way than it holds at the end. */
		f.slot = eng_index_take_free(sh, db->map, key, h->klen, hash,
					     &f);
		if (f.slot == ENG_NO_SLOT)
			return ENG_EFULL;
		e = &t[f.slot];
		if (e->state == ENG_SLOT_DEAD)
			sh->dead--;
		sh->live_keys++;
		e->hash = hash;
		e->klen = h->klen;
		e->writer = 0;
		e->state = ENG_SLOT_LIVE;
	}
	e->voff = voff;
	e->vlen = h->vlen;
	e->version = h->version;
	sh->live_bytes += eng_rec_total(h);
	return 0;
}

#define log_recovery(...) eng_log(ENG_LOG_WARN, "recovery: " __VA_ARGS__)

static int recover(struct eng_db *db, uint64_t size, struct eng_recovery *rep)
{
	struct eng_scan s;
	struct eng_scan_item it;
	int rc;

	eng_scan_init(&s, db->map, size);
	eng_scan_set_fd(&s, db->fd);
	while (eng_scan_next(&s, &it) != ENG_SCAN_END) {
		switch (it.kind) {
		case ENG_SCAN_RECORD:
			rep->records++;
			if (it.h.version > rep->max_version)
				rep->max_version = it.h.version;
			if ((rc = replay(db, it.off, &it.h)))
				return rc;
			break;
		case ENG_SCAN_ABANDONED:
			log_recovery("skipped %" PRIu64 " bytes at offset %" PRIu64
				     ": a write that never completed (never acknowledged)",
				     it.len, it.off);
			rep->skipped += it.len;
			/* Wipe it: once the durable mark moves past it, only
			 * zeros there still read as "abandoned". */
			if ((rc = eng_io_discard(db->fd, it.off, it.len)))
				return rc;
			break;
		case ENG_SCAN_CORRUPT:
			rep->bad_off = it.off;
			return ENG_ECORRUPT;
		case ENG_SCAN_TORN_TAIL:
			rep->cut_bytes = it.len;
			rep->cut_zeros = eng_scan_is_zero(&s, it.off, it.len);
			break;
		case ENG_SCAN_END:
			break;
		}
	}
	if (db->sh->live_keys > db->sh->max_keys)
		return ENG_EFULL;
	rep->tail = size - rep->cut_bytes;
	if (rep->cut_bytes) {
		if (rep->cut_zeros)
			log_recovery("trimmed %" PRIu64 " bytes of zeros after offset %" PRIu64
				     " (space prepared for appends)", rep->cut_bytes, rep->tail);
		else
			log_recovery("cut a torn tail of %" PRIu64 " bytes at offset %" PRIu64
				     " (an append interrupted by a crash; it was never acknowledged)",
				     rep->cut_bytes, rep->tail);
		if ((rc = eng_io_truncate(db->fd, rep->tail)) ||
		    (rc = eng_io_datasync(db->fd)))
			return rc;
	}
	return 0;
}

/* One caskd per data directory: the master holds an OFD write lock on
 * caskd.lock for its whole life (workers inherit the descriptor, so orphans
 * keep it too), and writes its pid there for the message the next one
 * prints. A separate file, not a range of database.bin, so that a future
 * compaction can swap database.bin without dropping the lock. */
int eng_lock_dir(const char *dir, int *lock_fd, int *holder_pid)
{
	char *path, pid[24];
	int rc, n, fd;

	if ((rc = path_join(&path, dir, LOCK_FILE)))
		return rc;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, FILE_MODE);
	free(path);
	if (fd < 0)
		return -errno;
	rc = ipc_flock(fd, IPC_FLOCK_WRITE, 0, 0, 0);
	if (rc == -EAGAIN) {
		n = (int)pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		*holder_pid = atoi(pid);
		rc = -EBUSY;
		goto out_close;
	}
	if (rc)
		goto out_close;
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if ((rc = eng_io_truncate(fd, 0)) ||
	    (rc = eng_io_pwrite_all(fd, pid, (size_t)n, 0)))
		goto out_close;
	*lock_fd = fd;
	return 0;
out_close:
	close(fd);
	return rc;
}

static int open_file(struct eng_db *db, struct eng_recovery *rep,
		     uint64_t *size)
{
	struct stat st;
	int rc;

	if (mkdir(db->dir, DIR_MODE) < 0 && errno != EEXIST)
		return -errno;
	if ((rc = eng_lock_dir(db->dir, &db->lock_fd, &rep->holder_pid)))
		return rc;
	db->fd = open(db->path, O_RDWR | O_CREAT | O_CLOEXEC, FILE_MODE);
	if (db->fd < 0)
		return -errno;
	if (fstat(db->fd, &st) < 0)
		return -errno;
	/* Shorter than a header: a crash while creating it, nothing else
	 * can be inside. */
	if (st.st_size < ENG_FILE_HDR_SIZE) {
		if ((rc = init_file(db, rep)))
			return rc;
		st.st_size = ENG_FILE_HDR_SIZE;
	}
	if ((uint64_t)st.st_size > MAP_BYTES)
		return -EFBIG;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* What recovery read may have come from the page cache of a process that
 * was killed before syncing: make it durable, then record that in the
 * header's durable mark, so a later crash can never make it look torn. */
static int mark_recovered(struct eng_db *db, uint64_t tail)
{
	struct eng_shared *sh = db->sh;
	char mark[ENG_MARK_SIZE];
	uint32_t seq;
	int rc;

	eng_mark_read(db->map, &seq);
	seq++;
	eng_mark_encode(mark, tail, seq);
	if ((rc = eng_io_datasync(db->fd)) ||
	    (rc = eng_io_pwrite_all(db->fd, mark, sizeof(mark),
				    seq % 2 ? ENG_MARK_OFF_A : ENG_MARK_OFF_B)) ||
	    (rc = eng_io_datasync(db->fd)))
		return rc;
	sh->durable_mark = sh->mark_written = tail;
	sh->mark_seq = seq;
	return 0;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int eng_db_open(const struct eng_opts *o, struct eng_db *db,
		struct eng_recovery *rep)
{
	uint64_t size = 0;
	double t0 = mono_s();
	int rc;

	memset(db, 0, sizeof(*db));
	memset(rep, 0, sizeof(*rep));
	db->fd = -1;
	db->lock_fd = -1;
	db->wslot = -1;
	db->max_value = o->max_value;
	if (!(db->dir = strdup(o->dir)))
		return -ENOMEM;
	if ((rc = path_join(&db->path, o->dir, DB_FILE)))
		goto out_close;
	if ((rc = open_file(db, rep, &size)) || (rc = map_file(db)))
		goto out_close;
	rep->file_bytes = size;
	if ((rc = eng_file_hdr_check(db->map, size))) {
		rep->bad_off = 0;
		rc = rc == -EPROTO ? rc : ENG_ECORRUPT;
		goto out_close;
	}
	if ((rc = create_shared(db, o->max_keys)))
		goto out_close;
	if ((rc = lock_index(db)))
		goto out_close;
	rc = recover(db, size, rep);
	db->sh->seq = rep->max_version;
	db->sh->tail = rep->tail;
	rep->keys = db->sh->live_keys;
	atomic_store(&db->sh->synced_tail, rep->tail);
	unlock_index(db);
	if (rc || (rc = mark_recovered(db, rep->tail)))
		goto out_close;
	rep->seconds = mono_s() - t0;
	return 0;
out_close:
	eng_db_close(db);
	return rc;
}

void eng_db_close(struct eng_db *db)
{
	if (db->map)
		munmap((void *)db->map, db->map_size);
	if (db->fd >= 0)
		close(db->fd);
	if (db->lock_fd >= 0)
		close(db->lock_fd);
	if (db->sh && db->wslot < 0)
		ipc_shm_destroy(db->sh, db->shm_size);
	free(db->dir);
	free(db->path);
	free(db->buf);
	memset(db, 0, sizeof(*db));
	db->fd = -1;
	db->lock_fd = -1;
}

/* --- attach (worker) ---------------------------------------------------- */

int eng_db_attach(struct eng_db *db, int wslot)
{
	int rc;

	/* The descriptor inherited from the master shares its open file
	 * description, and so its OFD locks: open our own. */
	if (db->map)
		munmap((void *)db->map, db->map_size);
	db->map = NULL;
	if (db->fd >= 0)
		close(db->fd);
	db->fd = open(db->path, O_RDWR | O_CLOEXEC);
	if (db->fd < 0)
		return -errno;
	if ((rc = map_file(db)))
		return rc;
	db->wslot = wslot;
	atomic_store(&db->sh->wslots[wslot].pid, getpid());
	return 0;
}

void eng_db_set_worker(struct eng_db *db, int wslot, pid_t pid)
{
	atomic_store(&db->sh->wslots[wslot].pid, pid);
}

/* --- EOWNERDEAD ----------------------------------------------------------- */

static int db_repair(struct ipc_mtx *m, pid_t dead, void *arg)
{
	struct eng_db *db = arg;
	int rc;

	(void)m;
	rc = eng_index_repair(db->sh, db->map, db->sh->tail, dead);
	eng_log(rc ? ENG_LOG_ERROR : ENG_LOG_WARN,
		"pid %d died holding the index mutex; index %s", (int)dead,
		rc ? "cannot be trusted: restarting through recovery" : "verified");
	return rc;
}

/* --- get -------------------------------------------------------------------- */

static int key_ok(size_t klen)
{
	return klen >= 1 && klen <= ENG_KEY_MAX;
}

int eng_get(struct eng_db *db, const void *key, size_t klen,
	    struct eng_val *v)
{
	uint32_t hash;
	struct eng_find f;
	int rc;

	if (!key_ok(klen))
		return -EINVAL;
	hash = eng_index_hash32(eng_key_hash(key, klen));
	if ((rc = lock_index(db)))
		return rc;
	eng_index_find(db->sh, db->map, key, (uint16_t)klen, hash, &f);
	if (f.slot == ENG_NO_SLOT) {
		rc = -ENOENT;
	} else {
		const struct eng_ientry *e = &eng_shared_table(db->sh)[f.slot];
		v->data = db->map + e->voff;
		v->len = e->vlen;
		v->version = e->version;
	}
	unlock_index(db);
	return rc;
}

/* --- write ------------------------------------------------------------------ */

/* Everything a write carries between its three steps. */
struct wctx {
	const struct eng_op *op;
	uint32_t hash;
	uint64_t slot;
	int inflight;    /* index into our in-flight list */
	uint64_t off;    /* reserved log range */
	uint64_t len;
	uint64_t version;
	int created;
	const void *val; /* what is written as the value */
	uint32_t vlen;
	char num[INT64_DIGITS_MAX + 1];
};

static int check_conditions(const struct eng_op *op,
			    const struct eng_ientry *cur)
{
	if (op->has_if_match &&
	    (!cur || (!op->if_match_any && cur->version != op->if_match)))
		return ENG_EPRECOND;
	if (op->if_none_match_any && cur)
		return ENG_EPRECOND;
	if (op->kind == ENG_OP_DEL && !cur)
		return -ENOENT;
	return 0;
}

static int incr_value(struct eng_db *db, struct wctx *w,
		      const struct eng_ientry *cur, int64_t *out)
{
	int64_t v = 0;

	if (cur && eng_parse_i64(db->map + cur->voff, cur->vlen, &v) < 0)
		return ENG_ENOTINT;
	if (__builtin_add_overflow(v, w->op->by, &v))
		return ENG_EOVERFLOW;
	w->vlen = (uint32_t)snprintf(w->num, sizeof(w->num), "%" PRId64, v);
	w->val = w->num;
	*out = v;
	return 0;
}

static int take_inflight(struct eng_wslot *ws)
{
	for (int j = 0; j < ENG_INFLIGHT_MAX; j++)
		if (!ws->inflight[j].off)
			return j;
	return -1;
}

/* Step 1, under the index mutex: decide, version, reserve, mark busy. */
static int reserve(struct eng_db *db, struct wctx *w, struct eng_result *res)
{
	struct eng_shared *sh = db->sh;
	struct eng_wslot *ws = &sh->wslots[db->wslot];
	const struct eng_op *op = w->op;
	struct eng_ientry *t = eng_shared_table(sh), *cur = NULL, *e;
	struct eng_inflight *in;
	struct eng_find f;
	int rc;

	if (atomic_load(&sh->poisoned))
		return ENG_EPOISONED;
	eng_index_find(sh, db->map, op->key, (uint16_t)op->klen, w->hash, &f);
	if (f.busy || (w->inflight = take_inflight(ws)) < 0)
		return -EAGAIN;
	if (f.slot != ENG_NO_SLOT)
		cur = &t[f.slot];
	if ((rc = check_conditions(op, cur)))
		return rc;
	if (op->kind == ENG_OP_INCR && (rc = incr_value(db, w, cur, &res->value)))
		return rc;
	w->len = eng_rec_size((uint32_t)op->klen, w->vlen);
	if (cur) {
		w->slot = f.slot;
	} else {
		if (sh->live_keys + sh->pending >= sh->max_keys)
			return ENG_EFULL;
		w->slot = eng_index_take_free(sh, db->map, op->key,
					      (uint16_t)op->klen, w->hash, &f);
		if (w->slot == ENG_NO_SLOT)
			return ENG_EFULL;
	}
	/* Order matters for eng_index_repair: tail first (a death after it
	 * leaves only a hole of zeros), then the key, then the in-flight
	 * entry that lets the master wipe the range. */
	w->version = ++sh->seq;
	w->off = sh->tail;
	sh->tail += w->len;
	/* A SIGKILL can land between any two stores: keep the compiler from
	 * reordering the steps repair depends on. */
	atomic_signal_fence(memory_order_seq_cst);
	e = &t[w->slot];
	if (!cur) {
		if (e->state == ENG_SLOT_DEAD)
			sh->dead--;
		sh->pending++;
		e->hash = w->hash;
		e->klen = (uint16_t)op->klen;
		e->voff = 0;
		e->state = ENG_SLOT_PENDING;
	}
	e->writer = (uint32_t)db->wslot + 1;
	atomic_signal_fence(memory_order_seq_cst);
	in = &ws->inflight[w->inflight];
	in->len = (uint32_t)w->len;
	in->slot = (uint32_t)w->slot;
	in->off = w->off;
	ws->ninflight++;
	w->created = !cur;
	return 0;
}

/* Step 3, under the index mutex: make the record visible, free the key.
 * voff is written first: eng_index_repair reads it to tell a publish that
 * began from one that did not. */
static void publish(struct eng_db *db, struct wctx *w)
{
	struct eng_shared *sh = db->sh;
	struct eng_wslot *ws = &sh->wslots[db->wslot];
	struct eng_inflight *in;
	struct eng_ientry *e;

	in = &ws->inflight[w->inflight];
	e = &eng_shared_table(sh)[in->slot]; /* a purge may have moved it */
	if (e->state == ENG_SLOT_LIVE)
		sh->live_bytes -= eng_rec_size(e->klen, e->vlen);
	e->voff = w->off + ENG_REC_HDR_SIZE + w->op->klen;
	atomic_signal_fence(memory_order_seq_cst);
	IPC_FP("index.locked");
	e->vlen = w->vlen;
	e->version = w->version;
	if (w->op->kind == ENG_OP_DEL) {
		e->state = ENG_SLOT_DEAD;
		sh->live_keys--;
		sh->dead++;
	} else {
		if (e->state == ENG_SLOT_PENDING) {
			sh->pending--;
			sh->live_keys++;
		}
		e->state = ENG_SLOT_LIVE;
		sh->live_bytes += w->len;
	}
	atomic_signal_fence(memory_order_seq_cst);
	e->writer = 0;
	in->off = 0;
	ws->ninflight--;
}

/* The write failed: wipe whatever part of the range reached the file
 * (so recovery sees an abandoned reservation, never a half record), then
 * free the key. Called without the index mutex. */
static void abandon(struct eng_db *db, struct wctx *w)
{
	struct eng_shared *sh = db->sh;
	struct eng_wslot *ws = &sh->wslots[db->wslot];
	struct eng_inflight *in;
	struct eng_ientry *e;
	int rc = eng_io_discard(db->fd, w->off, w->len);

	if (rc)
		eng_log(ENG_LOG_ERROR, "wiping a failed write at offset %" PRIu64
			" of database.bin: %s (recovery will skip or cut it)",
			w->off, strerror(-rc));
	if (lock_index(db))
		return;
	if (rc && w->off < sh->unwiped)
		sh->unwiped = w->off; /* so it stays above the durable mark */
	in = &ws->inflight[w->inflight];
	e = &eng_shared_table(sh)[in->slot];
	if (e->state == ENG_SLOT_PENDING) {
		e->state = ENG_SLOT_DEAD;
		sh->pending--;
		sh->dead++;
	}
	e->writer = 0;
	in->off = 0;
	ws->ninflight--;
	unlock_index(db);
}

static int ensure_buf(struct eng_db *db, size_t n)
{
	char *p;

	if (n <= db->buf_size)
		return 0;
	if (!(p = realloc(db->buf, n)))
		return -ENOMEM;
	db->buf = p;
	db->buf_size = n;
	return 0;
}

/* Step 2, no mutex: the bytes go to the page cache under an OFD write
 * lock on exactly the reserved range (so `caskd check --repair`, the
 * master wiping a dead worker's range, or anything else that locks the
 * file, never sees a record half written). */
static int write_record(struct eng_db *db, struct wctx *w)
{
	enum eng_rec_type type = w->op->kind == ENG_OP_DEL ? ENG_REC_DEL
							   : ENG_REC_PUT;
	int rc;

	if ((rc = ensure_buf(db, w->len)))
		return rc;
	eng_rec_encode(db->buf, type, w->version, w->op->key,
		       (uint16_t)w->op->klen, w->val, w->vlen);
	IPC_FP("log.after_reserve");
	if ((rc = ipc_flock(db->fd, IPC_FLOCK_WRITE, w->off, w->len, 1)))
		return rc;
	rc = eng_io_pwrite_all(db->fd, db->buf, w->len, w->off);
	ipc_flock(db->fd, IPC_FLOCK_UNLOCK, w->off, w->len, 0);
	if (rc == 0)
		IPC_FP("log.after_write");
	return rc;
}

int eng_write(struct eng_db *db, const struct eng_op *op,
	      struct eng_result *res)
{
	struct wctx w = { .op = op, .val = op->val, .vlen = (uint32_t)op->vlen };
	int rc;

	assert(db->wslot >= 0);
	if (!key_ok(op->klen))
		return -EINVAL;
	if (op->kind == ENG_OP_PUT && op->vlen > db->max_value)
		return -E2BIG;
	if (op->kind == ENG_OP_DEL)
		w.vlen = 0;
	w.hash = eng_index_hash32(eng_key_hash(op->key, op->klen));
	memset(res, 0, sizeof(*res));
	if ((rc = lock_index(db)))
		return rc;
	rc = reserve(db, &w, res);
	unlock_index(db);
	if (rc)
		return rc;
	if ((rc = write_record(db, &w))) {
		abandon(db, &w);
		return rc;
	}
	if ((rc = lock_index(db)))
		return rc;
	publish(db, &w);
	unlock_index(db);
	atomic_fetch_add(&db->sh->writes_total, 1);
	res->version = w.version;
	res->created = w.created;
	res->end = w.off + w.len;
	return 0;
}

/* --- reap a dead worker (master) --------------------------------------- */

int eng_db_reap_worker(struct eng_db *db, int wslot)
{
	struct eng_shared *sh = db->sh;
	struct eng_wslot *ws = &sh->wslots[wslot];
	struct eng_ientry *t = eng_shared_table(sh);
	int rc, wiped = 0;

	if ((rc = lock_index(db)))
		return rc;
	rc = eng_index_settle_writer(sh, db->map, sh->tail, wslot);
	unlock_index(db);
	if (rc)
		return rc;
	/* What is left was never published, and its keys stay busy until
	 * the wipe is done, so nobody else touches these ranges meanwhile.
	 * The dead worker's OFD locks went with its descriptor. */
	for (int j = 0; j < ENG_INFLIGHT_MAX; j++) {
		struct eng_inflight *in = &ws->inflight[j];
		if (!in->off)
			continue;
		if ((rc = ipc_flock(db->fd, IPC_FLOCK_WRITE, in->off, in->len, 1)) ||
		    (rc = eng_io_discard(db->fd, in->off, in->len)))
			return rc;
		ipc_flock(db->fd, IPC_FLOCK_UNLOCK, in->off, in->len, 0);
		wiped++;
	}
	if ((rc = lock_index(db)))
		return rc;
	for (int j = 0; j < ENG_INFLIGHT_MAX; j++) {
		struct eng_inflight *in = &ws->inflight[j];
		struct eng_ientry *e = &t[in->slot];
		if (!in->off)
			continue;
		if (e->writer == (uint32_t)wslot + 1) {
			if (e->state == ENG_SLOT_PENDING) {
				e->state = ENG_SLOT_DEAD;
				sh->pending--;
				sh->dead++;
			}
			e->writer = 0;
		}
		in->off = 0;
	}
	ws->ninflight = 0;
	atomic_store(&ws->pid, 0);
	unlock_index(db);
	if (wiped)
		eng_log(ENG_LOG_WARN, "wiped %d unfinished write(s) of dead worker slot %d",
			wiped, wslot);
	return 0;
}

/* Zeros are kept this far ahead of the tail, written in chunks. */
#define PREZERO_CHUNK_BYTES (8ull << 20)
#define PREZERO_LEAD_BYTES (16ull << 20)
#define ZERO_WRITE_BYTES (1u << 20)

int eng_db_prezero(struct eng_db *db)
{
	static const char zeros[ZERO_WRITE_BYTES];
	struct eng_shared *sh = db->sh;
	uint64_t from, to;
	int rc;

	if ((rc = lock_index(db)))
		return rc;
	from = sh->zeroed_end > sh->tail ? sh->zeroed_end : eng_align8(sh->tail);
	to = from + PREZERO_CHUNK_BYTES;
	if (from >= sh->tail + PREZERO_LEAD_BYTES) {
		unlock_index(db);
		return 0; /* far enough ahead */
	}
	/* Nobody can hold a lock beyond the tail yet: writers lock only
	 * what they reserved. */
	rc = ipc_flock(db->fd, IPC_FLOCK_WRITE, from, to - from, 0);
	unlock_index(db);
	if (rc)
		return rc;
	for (uint64_t off = from; off < to && !rc; off += ZERO_WRITE_BYTES)
		rc = eng_io_pwrite_all(db->fd, zeros, ZERO_WRITE_BYTES, off);
	if (!rc)
		rc = eng_io_datasync(db->fd);
	if (!lock_index(db)) {
		if (!rc && to > sh->zeroed_end)
			sh->zeroed_end = to;
		/* Failed (disk full): give the space back, unless a record
		 * was already reserved in it. */
		if (rc && sh->tail <= from)
			eng_io_truncate(db->fd, from);
		unlock_index(db);
	}
	ipc_flock(db->fd, IPC_FLOCK_UNLOCK, from, to - from, 0);
	return rc;
}

int eng_db_trim(struct eng_db *db)
{
	struct eng_shared *sh = db->sh;
	int rc;

	if (sh->zeroed_end <= sh->tail)
		return 0;
	if ((rc = eng_io_truncate(db->fd, sh->tail)) || (rc = eng_io_datasync(db->fd)))
		return rc;
	sh->zeroed_end = sh->tail;
	return 0;
}

uint64_t eng_db_written_below(struct eng_db *db)
{
	struct eng_shared *sh = db->sh;
	uint64_t low;

	if (lock_index(db))
		return 0;
	low = sh->tail < sh->unwiped ? sh->tail : sh->unwiped;
	for (int w = 0; w < ENG_WORKER_SLOTS; w++) {
		struct eng_wslot *ws = &sh->wslots[w];
		for (int j = 0; ws->ninflight && j < ENG_INFLIGHT_MAX; j++)
			if (ws->inflight[j].off && ws->inflight[j].off < low)
				low = ws->inflight[j].off;
	}
	unlock_index(db);
	return low;
}

/* --- stats and parsing -------------------------------------------------- */

void eng_stats(struct eng_db *db, struct eng_stats *st)
{
	struct eng_shared *sh = db->sh;

	st->keys = sh->live_keys;
	st->capacity = sh->max_keys;
	st->log_bytes = sh->tail;
	st->live_bytes = sh->live_bytes;
	st->fsync_total = atomic_load(&sh->fsync_total);
	st->fsync_ns_total = atomic_load(&sh->fsync_ns_total);
	st->fsync_errors = atomic_load(&sh->fsync_errors);
	for (int i = 0; i < ENG_STATS_FSYNC_BUCKETS; i++)
		st->fsync_hist[i] = atomic_load(&sh->fsync_hist[i]);
	for (int i = 0; i < ENG_STATS_WPF_BUCKETS; i++)
		st->wpf_hist[i] = atomic_load(&sh->wpf_hist[i]);
	st->wpf_sum = atomic_load(&sh->wpf_sum);
	st->lock_wait_ns = atomic_load(&sh->index_mtx.wait_ns) +
			   atomic_load(&sh->sync_mtx.wait_ns);
	st->mutex_repairs = atomic_load(&sh->index_mtx.repairs);
	st->poisoned = (int)atomic_load(&sh->poisoned);
}

int eng_parse_i64(const char *s, size_t n, int64_t *out)
{
	int neg = 0;
	uint64_t v = 0, lim;

	if (n && s[0] == '-') {
		neg = 1;
		s++;
		n--;
	}
	if (n == 0 || n > INT64_DIGITS_MAX - 1 || (s[0] == '0' && (n > 1 || neg)))
		return -EINVAL;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9 || v > (lim - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}
