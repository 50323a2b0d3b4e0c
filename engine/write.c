/* engine/write.c — writes and batches: reserve, write, publish (see
 * store.h for the three steps and why no lock is held across I/O).
 *
 * Map: conditions - space and versions (with the index mutex) - single
 * writes - batches - publishing, and finishing a dead holder's publish
 * (for repair.c) - a group's new term. The in-flight low-water mark is
 * engine/db.c's.
 *
 * Order matters for eng_repair_index (repair.c) and the master's reaper: a
 * reservation moves the tail first (a death right after leaves only a
 * hole of zeros), then marks its keys, then names its range in the
 * worker's in-flight entry, which is what the reaper wipes.
 */
#include "engine/store.h"

#include "engine/elog.h"
#include "engine/logwake.h"
#include "engine/errors.h"
#include "engine/index.h"
#include "engine/io.h"
#include "engine/num.h"
#include "engine/record.h"
#include "engine/shared.h"
#include "engine/failpoint.h"
#include "engine/db.h"
#include "engine/write.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int key_ok(size_t klen)
{
	return klen >= 1 && klen <= ENG_KEY_MAX;
}

/* The record buffer is kept between writes, up to this size: one huge
 * value must not leave its size resident in the worker for good. */
#define BUF_KEEP_BYTES (1u << 20)

static void shrink_buf(struct eng_db *db)
{
	if (db->buf_size <= BUF_KEEP_BYTES)
		return;
	free(db->buf);
	db->buf = NULL;
	db->buf_size = 0;
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

/* What a refusal depended on: the key's record, or (absent key) the
 * newest tombstone, which may be what made it absent. */
static uint64_t seen_end(struct eng_shared *sh, const struct eng_islot *cur)
{
	return cur ? cur->voff + cur->vlen : atomic_load(&sh->del_end);
}

/* --- space and versions ---------------------------------------------------- */

/* Takes len bytes at the tail and the next version (nver versions are
 * not needed: a batch shares one), or, for a write a group's primary
 * versioned (at != 0), that version: the versions below it were handed
 * out there, so none of them may be handed out here either, and the
 * lease must cover it like any other. Index mutex held. */
static int take_space(struct eng_shared *sh, uint64_t len, int deletes_only,
		      uint64_t at, uint64_t *off, uint64_t *version, int *want_sync)
{
	uint64_t lease = atomic_load(&sh->lease);

	if (sh->zeroing_to && sh->tail + len > sh->zeroing_from &&
	    sh->tail < sh->zeroing_to)
		return -EAGAIN; /* the master is writing zeros right there */
	/* On a full disk the last of the prepared zeros are for deletes
	 * (past them, a write just tries: room may have been made). */
	if (sh->disk_full && !deletes_only && sh->tail < sh->zeroed_end &&
	    sh->tail + len + ENG_DELETE_RESERVE > sh->zeroed_end)
		return -ENOSPC;
	if (sh->tail + len > ENG_MAP_BYTES)
		return -ENOSPC;
	if (at && at - 1 > sh->seq)
		sh->seq = at - 1; /* so a sync's new lease covers it */
	if (sh->seq + ENG_LEASE_VERSIONS / 2 > lease)
		*want_sync = 1; /* a sync renews the lease */
	if ((at ? at : sh->seq + 1) > lease) {
		*want_sync = 1;
		return -EAGAIN;
	}
	if (at) {
		*version = at;
		if (at > sh->seq)
			sh->seq = at;
	} else {
		*version = ++sh->seq;
	}
	*off = sh->tail;
	sh->tail += len;
	/* A SIGKILL can land between any two stores: keep the compiler from
	 * reordering the steps repair depends on. */
	atomic_signal_fence(memory_order_seq_cst);
	return 0;
}

/* Room for a new key in t; asks the master for a rebuild when the table
 * fills. 0, -EAGAIN (full until rebuilt) or ENG_EFULL. */
static int room_for_key(struct eng_db *db, struct eng_table *t)
{
	struct eng_shared *sh = db->sh;
	enum eng_room room;

	if (sh->max_keys && t->live + t->pending >= sh->max_keys)
		return ENG_EFULL;
	room = eng_index_room(t);
	if (room == ENG_ROOM_OK)
		return 0;
	if (room == ENG_ROOM_WAIT && t->nslots >= sh->area_slots &&
	    eng_index_slots_for(t->live + t->pending + 1, sh->area_slots) >= t->nslots &&
	    (t->live + t->pending + 1) * 10 > t->nslots * 9)
		return ENG_EFULL; /* the largest table, and no DEAD slot to purge */
	if (!sh->want_resize) {
		sh->want_resize = 1;
		db->grow_asked = 1;
	}
	return room == ENG_ROOM_WAIT ? -EAGAIN : 0;
}

/* After unlocking: tell the master a rebuild is wanted. */
static void ask_master(struct eng_db *db)
{
	if (!db->grow_asked)
		return;
	db->grow_asked = 0;
	if (db->sh->notify_pid > 0)
		kill(db->sh->notify_pid, SIGUSR1);
}

static int check_state(struct eng_db *db)
{
	struct eng_shared *sh = db->sh;

	if (atomic_load(&sh->poisoned))
		return ENG_EPOISONED;
	if (atomic_load(&sh->file_gen) != db->file_gen)
		return -ESTALE;
	if (sh->frozen)
		return -EAGAIN;
	return 0;
}

/* Takes the mutex for a write, mapping the current file first. */
static int lock_for_write(struct eng_db *db)
{
	int rc;

	for (int tries = 0; tries < 8; tries++) {
		if ((rc = eng_db_refresh(db)))
			return rc;
		if ((rc = eng_lock_index(db)))
			return rc;
		if (atomic_load(&db->sh->file_gen) == db->file_gen)
			return 0;
		eng_unlock_index(db); /* swapped between: map again */
	}
	return -EAGAIN;
}

/* --- single writes, one pass at a time ------------------------------------- */

/* Everything a write carries between its three steps. */
struct wctx {
	const struct eng_op *op;
	struct eng_khash kh;
	uint64_t slot;
	uint64_t off;    /* reserved log range */
	uint64_t len;
	uint64_t version;
	int created;
	const void *val; /* what is written as the value */
	uint32_t vlen;
	char num[ENG_I64_DIGITS_MAX + 1];
};

static int check_conditions(const struct eng_op *op,
			    const struct eng_islot *cur)
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
		      const struct eng_islot *cur, int64_t *out)
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

/* Step 1, under the index mutex: decide, version, reserve, mark busy. */
static int reserve(struct eng_db *db, struct wctx *w, struct eng_result *res)
{
	struct eng_shared *sh = db->sh;
	struct eng_table *t = eng_cur_table(sh);
	const struct eng_op *op = w->op;
	const struct eng_islot *cur = NULL;
	struct eng_find f = { .self = 0 };
	int rc;

	assert(ipc_mtx_held(&sh->index_mtx));
	assert(!sh->seats[db->seat].inflight.off);
	if ((rc = check_state(db)))
		return rc;
	eng_index_find(t, db->map, op->key, (uint16_t)op->klen,
		       eng_index_hash_for(t, op->key, op->klen, &w->kh), &f);
	if (f.busy)
		return -EAGAIN;
	if (f.slot != ENG_NO_SLOT)
		cur = &t->slots[f.slot];
	if ((!op->version_at && (rc = check_conditions(op, cur))) ||
	    (op->version_at && op->kind == ENG_OP_DEL && !cur && (rc = -ENOENT)) ||
	    (op->kind == ENG_OP_INCR && (rc = incr_value(db, w, cur, &res->value)))) {
		res->seen_end = seen_end(sh, cur);
		if (rc == ENG_EPRECOND)
			res->version = cur ? cur->version : 0;
		return rc;
	}
	w->len = eng_rec_size((uint32_t)op->klen, w->vlen);
	if (!cur && (rc = room_for_key(db, t)))
		return rc;
	w->slot = cur ? f.slot : f.free_slot;
	if (w->slot == ENG_NO_SLOT)
		return -EAGAIN; /* no free slot on the way: wait for a rebuild */
	if ((rc = take_space(sh, w->len, op->kind == ENG_OP_DEL, op->version_at,
			     &w->off, &w->version, &res->want_sync)))
		return rc;
	if (cur)
		eng_index_mark_busy(t, w->slot, (uint8_t)(db->seat + 1));
	else
		eng_index_claim(t, w->slot, w->kh.hash, (uint16_t)op->klen,
				(uint8_t)(db->seat + 1));
	w->created = !cur;
	return 0;
}

/* After the last reservation of a pass: name the whole range (every
 * record of the pass lies in it, one after another, since nobody else
 * moved the tail while the mutex was held). One record names its slot,
 * so the reaper frees just that; more leave the reaper to free every
 * key the seat marked. */
static void name_range(struct eng_seat *ws, uint64_t off, uint64_t len,
		       uint32_t nrec, uint64_t slot)
{
	atomic_signal_fence(memory_order_seq_cst);
	ws->inflight.len = len;
	ws->inflight.slot = nrec == 1 ? (uint32_t)slot : UINT32_MAX;
	ws->inflight.nrec = nrec;
	atomic_signal_fence(memory_order_seq_cst);
	ws->inflight.off = off;
}

/* Step 2, no mutex: the bytes go to the page cache, inside the chunks
 * this worker holds a shared lock on. */
static int write_range(struct eng_db *db, uint64_t off, uint64_t len)
{
	int rc;

	ENG_FP("log.after_reserve");
	if ((rc = eng_chunk_lock(db, off, len)))
		return rc;
	rc = eng_io_pwrite_all(db->fd, db->buf, len, off);
	if (rc == 0)
		ENG_FP("log.after_write");
	return rc;
}

/* The write failed: wipe whatever part of the range reached the file
 * (so recovery sees an abandoned reservation, never a half record), then
 * take the mutex back; the caller frees its keys and calls
 * abandon_done. 0, or -errno if the mutex could not be had. */
static int abandon(struct eng_db *db, uint64_t off, uint64_t len)
{
	struct eng_shared *sh = db->sh;
	int rc = eng_io_discard(db->fd, off, len);

	if (rc)
		eng_log(ENG_LOG_ERROR, "wiping a failed write at offset %" PRIu64
			" of database.bin: %s (recovery will skip or truncate it)",
			off, strerror(-rc));
	if (eng_lock_index(db) < 0)
		return -ENOTRECOVERABLE;
	if (rc && off < sh->unwiped)
		sh->unwiped = off; /* so it stays above the durable mark */
	return 0;
}

static void abandon_done(struct eng_db *db)
{
	db->sh->seats[db->seat].inflight.off = 0;
	eng_unlock_index(db);
}

/* Step 3, under the index mutex: make the record visible, free the key. */
static void publish_one(struct eng_db *db, uint64_t slot, uint64_t off,
			uint64_t len, const void *key, uint16_t klen,
			uint32_t vlen, uint64_t version, int del)
{
	struct eng_shared *sh = db->sh;
	struct eng_table *t = eng_cur_table(sh);

	(void)key;
	eng_index_publish(t, slot, off + ENG_REC_HDR_SIZE + klen, vlen, version,
			  del, len);
	if (version > atomic_load(&sh->top_version))
		atomic_store(&sh->top_version, version);
	if (del && off + len > atomic_load(&sh->del_end))
		atomic_store(&sh->del_end, off + len);
}

static void publish_done(struct eng_shared *sh, struct eng_seat *ws)
{
	atomic_signal_fence(memory_order_seq_cst);
	ws->inflight.off = 0;
	ws->publishing = 0;
	eng_log_notify(sh); /* written now: log readers may show more */
}

/* Checks that need no lock, and the hash (under the seed of the table
 * current now; reserve() hashes again if it finds another one). */
static int pass_prepare(struct eng_db *db, struct wctx *w, const struct eng_op *op)
{
	*w = (struct wctx){ .op = op, .val = op->val, .vlen = (uint32_t)op->vlen };
	if (!key_ok(op->klen))
		return -EINVAL;
	if (op->kind == ENG_OP_PUT && op->vlen > db->max_value)
		return -E2BIG;
	if (op->kind == ENG_OP_DEL)
		w->vlen = 0;
	eng_index_hash_for(eng_cur_table(db->sh), op->key, op->klen, &w->kh);
	return 0;
}

/* A key busy because an earlier write of this same pass holds it: the
 * caller tries it in its next pass, not after a back-off. */
static int busy_in_pass(struct wctx *w, size_t i, const int *rcs)
{
	for (size_t j = 0; j < i; j++)
		if (!rcs[j] && w[j].op->klen == w[i].op->klen &&
		    !memcmp(w[j].op->key, w[i].op->key, w[i].op->klen))
			return 1;
	return 0;
}

/* Step 1 for the whole pass: 0 with *nrec records reserved in
 * [*off, *off + *len), or the error every write of the pass gets. */
static int pass_reserve(struct eng_db *db, struct wctx *w, size_t n,
			struct eng_result *const *res, int *rcs,
			uint64_t *off, uint64_t *len, uint32_t *nrec)
{
	uint64_t slot = 0;
	int rc;

	if ((rc = lock_for_write(db)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (rcs[i])
			continue;
		rc = reserve(db, &w[i], res[i]);
		if (rc == -EAGAIN && busy_in_pass(w, i, rcs))
			rc = ENG_ENEXTPASS;
		if ((rcs[i] = rc == -ESTALE ? -EAGAIN : rc))
			continue;
		if (!*nrec)
			*off = w[i].off;
		assert(w[i].off == *off + *len);
		*len += w[i].len;
		slot = w[i].slot;
		(*nrec)++;
	}
	if (*nrec)
		name_range(&db->sh->seats[db->seat], *off, *len, *nrec, slot);
	eng_unlock_index(db);
	ask_master(db);
	return 0;
}

/* Step 2: every record of the pass in one buffer, one pwrite. */
static int pass_write(struct eng_db *db, struct wctx *w, size_t n,
		      const int *rcs, uint64_t off, uint64_t len)
{
	int rc;

	if ((rc = ensure_buf(db, len)) == 0) {
		for (size_t i = 0; i < n; i++)
			if (!rcs[i])
				eng_rec_encode(db->buf + (w[i].off - off),
					       w[i].op->kind == ENG_OP_DEL ? ENG_REC_DEL : ENG_REC_PUT,
					       w[i].version, w[i].op->key,
					       (uint16_t)w[i].op->klen, w[i].val, w[i].vlen);
		rc = write_range(db, off, len);
	}
	shrink_buf(db);
	if (rc && abandon(db, off, len) == 0) {
		for (size_t i = 0; i < n; i++)
			if (!rcs[i])
				eng_index_release(eng_cur_table(db->sh), w[i].slot);
		abandon_done(db);
	}
	return rc;
}

/* Step 3: every record of the pass published under one hold. */
static int pass_publish(struct eng_db *db, struct wctx *w, size_t n,
			const int *rcs, uint32_t nrec)
{
	struct eng_shared *sh = db->sh;
	struct eng_seat *ws;
	int rc;

	if ((rc = eng_lock_index(db)))
		return rc;
	ws = &sh->seats[db->seat];
	ws->publishing = 1;
	atomic_signal_fence(memory_order_seq_cst);
	ENG_FP("index.locked");
	for (size_t i = 0; i < n; i++)
		if (!rcs[i])
			publish_one(db, w[i].slot, w[i].off, w[i].len, w[i].op->key,
				    (uint16_t)w[i].op->klen, w[i].vlen, w[i].version,
				    w[i].op->kind == ENG_OP_DEL);
	publish_done(sh, ws);
	eng_unlock_index(db);
	atomic_fetch_add(&sh->writes_total, nrec);
	return 0;
}

int eng_write_pass(struct eng_db *db, const struct eng_op *const *ops, size_t n,
		   struct eng_result *const *res, int *rcs)
{
	struct wctx one, *w = n == 1 ? &one : calloc(n, sizeof(*w));
	uint64_t off = 0, len = 0;
	uint32_t nrec = 0;
	int rc;

	assert(db->seat >= 0);
	if (!w)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		memset(res[i], 0, sizeof(*res[i]));
		rcs[i] = pass_prepare(db, &w[i], ops[i]);
	}
	if ((rc = pass_reserve(db, w, n, res, rcs, &off, &len, &nrec)) == 0 && nrec &&
	    (rc = pass_write(db, w, n, rcs, off, len)) == 0)
		rc = pass_publish(db, w, n, rcs, nrec);
	for (size_t i = 0; i < n; i++) {
		if (rcs[i])
			continue;
		if (rc) {
			rcs[i] = rc;
			continue;
		}
		res[i]->version = w[i].version;
		res[i]->created = w[i].created;
		res[i]->end = w[i].off + w[i].len;
	}
	if (w != &one)
		free(w);
	return 0;
}

int eng_write(struct eng_db *db, const struct eng_op *op,
	      struct eng_result *res)
{
	int rc;

	eng_write_pass(db, &op, 1, &res, &rc);
	return rc == ENG_ENEXTPASS ? -EAGAIN : rc;
}

/* --- batches ------------------------------------------------------------ */

struct bpart {
	uint64_t slot;     /* ENG_NO_SLOT: writes nothing (del of absent) */
	uint64_t off;      /* record offset */
	uint64_t len;
	struct eng_khash kh;
	int fresh;         /* a new key (PENDING) */
};

struct bctx {
	struct eng_db *db;
	const struct eng_batch_op *ops;
	size_t n;
	struct bpart *parts;
	size_t nparts;     /* records */
	uint64_t at;       /* the version the group's primary gave it, or 0 */
};

/* eng_find's own_key: is our PENDING slot for this very key? */
struct own_probe {
	struct bctx *b;
	size_t upto;       /* ops before this one */
	const struct eng_batch_op *op;
};

static int own_key(uint64_t slot, void *arg)
{
	struct own_probe *p = arg;

	for (size_t i = 0; i < p->upto; i++)
		if (p->b->parts[i].slot == slot && p->b->parts[i].fresh)
			return p->b->ops[i].klen == p->op->klen &&
			       !memcmp(p->b->ops[i].key, p->op->key, p->op->klen);
	return 0;
}

static void batch_find(struct bctx *b, size_t i, struct eng_find *f)
{
	struct eng_shared *sh = b->db->sh;
	struct own_probe p = { b, i, &b->ops[i] };

	f->self = (uint8_t)(b->db->seat + 1);
	f->own_key = own_key;
	f->own_arg = &p;
	eng_index_find(eng_cur_table(sh), b->db->map, b->ops[i].key,
		       (uint16_t)b->ops[i].klen, b->parts[i].kh.hash, f);
}

/* Pass 1: every check against the state before the batch. */
static int batch_checks(struct bctx *b, struct eng_batch_result *res)
{
	struct eng_shared *sh = b->db->sh;
	struct eng_table *t = eng_cur_table(sh);

	for (size_t i = 0; i < b->n; i++) {
		const struct eng_batch_op *op = &b->ops[i];
		const struct eng_islot *cur;
		struct eng_find f = { .self = 0 };

		if (op->kind != ENG_BATCH_CHECK)
			continue;
		eng_index_find(t, b->db->map, op->key, (uint16_t)op->klen,
			       b->parts[i].kh.hash, &f);
		if (f.busy)
			return -EAGAIN;
		cur = f.slot != ENG_NO_SLOT ? &t->slots[f.slot] : NULL;
		if (op->version ? !cur || cur->version != op->version : cur != NULL) {
			res->failed = (uint32_t)i;
			res->seen_end = seen_end(sh, cur);
			return ENG_EPRECOND;
		}
	}
	return 0;
}

/* Undoes pass 2's marks after a refusal. */
static void batch_unmark(struct bctx *b, size_t upto)
{
	struct eng_table *t = eng_cur_table(b->db->sh);

	for (size_t i = 0; i < upto; i++)
		if (b->parts[i].slot != ENG_NO_SLOT)
			eng_index_release(t, b->parts[i].slot);
}

/* Pass 2: find or claim every written key; sizes the records. */
static int batch_claims(struct bctx *b, uint64_t *total)
{
	struct eng_db *db = b->db;
	struct eng_table *t = eng_cur_table(db->sh);
	uint8_t self = (uint8_t)(db->seat + 1);
	int rc = 0;
	size_t i;

	*total = 0;
	for (i = 0; i < b->n; i++) {
		const struct eng_batch_op *op = &b->ops[i];
		struct bpart *p = &b->parts[i];
		struct eng_find f;

		p->slot = ENG_NO_SLOT;
		if (op->kind == ENG_BATCH_CHECK)
			continue;
		batch_find(b, i, &f);
		if (f.dup) {
			rc = -EINVAL; /* the caller refuses keys written twice */
			break;
		}
		if (f.busy) {
			rc = -EAGAIN;
			break;
		}
		if (f.slot != ENG_NO_SLOT) {
			eng_index_mark_busy(t, f.slot, self);
			p->slot = f.slot;
		} else if (op->kind == ENG_BATCH_PUT) {
			if ((rc = room_for_key(db, t)))
				break;
			if (f.free_slot == ENG_NO_SLOT) {
				rc = -EAGAIN;
				break;
			}
			eng_index_claim(t, f.free_slot, p->kh.hash, (uint16_t)op->klen, self);
			p->slot = f.free_slot;
			p->fresh = 1;
		} else {
			continue; /* del of an absent key: a no-op */
		}
		p->len = eng_rec_size((uint32_t)op->klen,
				      op->kind == ENG_BATCH_PUT ? (uint32_t)op->vlen : 0);
		*total += p->len;
		b->nparts++;
	}
	if (rc)
		batch_unmark(b, i);
	return rc;
}

static int batch_reserve(struct bctx *b, struct eng_batch_result *res,
			 uint64_t *off, uint64_t *total)
{
	struct eng_db *db = b->db;
	struct eng_shared *sh = db->sh;
	struct eng_seat *ws = &sh->seats[db->seat];
	uint64_t at;
	int rc, deletes_only = 1;

	assert(ipc_mtx_held(&sh->index_mtx));
	if ((rc = check_state(db)))
		return rc;
	for (size_t i = 0; i < b->n; i++)
		eng_index_hash_for(eng_cur_table(sh), b->ops[i].key, b->ops[i].klen,
				   &b->parts[i].kh);
	if ((rc = batch_checks(b, res)) ||
	    (rc = batch_claims(b, total)))
		return rc;
	for (size_t i = 0; i < b->n; i++)
		deletes_only &= b->ops[i].kind != ENG_BATCH_PUT;
	if (b->nparts == 0) {
		/* only checks and deletes of absent keys: nothing to write,
		 * but the batch still gets a version of its own */
		return take_space(sh, 0, 1, b->at, off, &res->version,
				  &res->want_sync);
	}
	if ((rc = take_space(sh, *total, deletes_only, b->at, off, &res->version,
			     &res->want_sync))) {
		batch_unmark(b, b->n);
		return rc;
	}
	at = *off;
	for (size_t i = 0; i < b->n; i++)
		if (b->parts[i].slot != ENG_NO_SLOT) {
			b->parts[i].off = at;
			at += b->parts[i].len;
		}
	atomic_signal_fence(memory_order_seq_cst);
	ws->inflight.len = *total;
	ws->inflight.slot = UINT32_MAX;
	ws->inflight.nrec = (uint32_t)b->nparts;
	atomic_signal_fence(memory_order_seq_cst);
	ws->inflight.off = *off;
	return 0;
}

static void batch_encode(struct bctx *b, uint64_t version, uint64_t base)
{
	uint32_t part = 0;

	for (size_t i = 0; i < b->n; i++) {
		const struct eng_batch_op *op = &b->ops[i];
		const struct bpart *p = &b->parts[i];

		if (p->slot == ENG_NO_SLOT)
			continue;
		eng_rec_encode_part(b->db->buf + (p->off - base),
				    op->kind == ENG_BATCH_PUT ? ENG_REC_PUT : ENG_REC_DEL,
				    version, op->key, (uint16_t)op->klen, op->val,
				    op->kind == ENG_BATCH_PUT ? (uint32_t)op->vlen : 0,
				    part++, (uint32_t)b->nparts);
	}
}

/* Every part at once: readers wait out an odd pub_seq, so none sees a
 * part without the rest. */
static void batch_publish(struct bctx *b, uint64_t version)
{
	struct eng_shared *sh = b->db->sh;
	struct eng_seat *ws = &sh->seats[b->db->seat];

	ws->publishing = 1;
	atomic_fetch_add(&sh->pub_seq, 1);
	ENG_FP("batch.publish");
	for (size_t i = 0; i < b->n; i++) {
		const struct eng_batch_op *op = &b->ops[i];
		const struct bpart *p = &b->parts[i];

		if (p->slot == ENG_NO_SLOT)
			continue;
		publish_one(b->db, p->slot, p->off, p->len, op->key,
			    (uint16_t)op->klen,
			    op->kind == ENG_BATCH_PUT ? (uint32_t)op->vlen : 0,
			    version, op->kind == ENG_BATCH_DEL);
	}
	atomic_fetch_add(&sh->pub_seq, 1);
	publish_done(sh, ws);
}

static int batch_valid(struct eng_db *db, const struct eng_batch_op *ops,
		       size_t n)
{
	if (n == 0 || n > ENG_BATCH_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!key_ok(ops[i].klen))
			return -EINVAL;
		if (ops[i].kind == ENG_BATCH_PUT && ops[i].vlen > db->max_value)
			return -E2BIG;
	}
	return 0;
}

int eng_batch(struct eng_db *db, const struct eng_batch_op *ops, size_t n,
	      struct eng_batch_result *res)
{
	return eng_batch_at(db, ops, n, 0, res);
}

int eng_batch_at(struct eng_db *db, const struct eng_batch_op *ops, size_t n,
		 uint64_t at, struct eng_batch_result *res)
{
	struct bctx b = { .db = db, .ops = ops, .n = n, .at = at };
	uint64_t off = 0, total = 0;
	int rc;

	assert(db->seat >= 0);
	memset(res, 0, sizeof(*res));
	if ((rc = batch_valid(db, ops, n)))
		return rc;
	if (!(b.parts = calloc(n, sizeof(*b.parts))))
		return -ENOMEM;
	/* as eng_write: outside the mutex, again in batch_reserve if the
	 * table is keyed otherwise by then */
	for (size_t i = 0; i < n; i++)
		eng_index_hash_for(eng_cur_table(db->sh), ops[i].key, ops[i].klen,
				   &b.parts[i].kh);
	if ((rc = lock_for_write(db)))
		goto out_free;
	rc = batch_reserve(&b, res, &off, &total);
	eng_unlock_index(db);
	ask_master(db);
	if (rc) {
		rc = rc == -ESTALE ? -EAGAIN : rc;
		goto out_free;
	}
	res->end = off + total;
	if (!b.nparts)
		goto out_free;
	if ((rc = ensure_buf(db, total)) == 0) {
		batch_encode(&b, res->version, off);
		rc = write_range(db, off, total);
	}
	shrink_buf(db);
	if (rc) {
		if (abandon(db, off, total) == 0) {
			batch_unmark(&b, n);
			abandon_done(db);
		}
		goto out_free;
	}
	if ((rc = eng_lock_index(db)))
		goto out_free;
	batch_publish(&b, res->version);
	eng_unlock_index(db);
	atomic_fetch_add(&db->sh->writes_total, 1);
	res->applied = (uint32_t)b.nparts;
out_free:
	free(b.parts);
	return rc;
}

/* --- a dead holder's publish ----------------------------------------------- */

int eng_finish_publish(struct eng_db *db, int seat)
{
	struct eng_shared *sh = db->sh;
	struct eng_seat *ws = &sh->seats[seat];
	struct eng_table *t = eng_cur_table(sh);
	uint64_t off = ws->inflight.off, end = off + ws->inflight.len;

	/* Publish began after the records were written in full: replay them,
	 * which sets every key to its record whatever the dead holder had
	 * already changed. */
	eng_index_unstick(t);
	eng_index_free_writer(t, (uint8_t)(seat + 1));
	while (off < end) {
		struct eng_rec_hdr h;
		if (eng_rec_check_hdr(db->map + off, end - off, &h) < 0)
			return -EUCLEAN;
		if (eng_index_apply(t, db->map, off, &h) < 0)
			return -EUCLEAN;
		if (h.version > atomic_load(&sh->top_version))
			atomic_store(&sh->top_version, h.version);
		if (h.type == ENG_REC_DEL && off + eng_rec_total(&h) > atomic_load(&sh->del_end))
			atomic_store(&sh->del_end, off + eng_rec_total(&h));
		off += eng_rec_total(&h);
	}
	publish_done(sh, ws);
	return 0;
}

/* --- a group's new term ------------------------------------------------------ */

int eng_term_mark(struct eng_db *db, uint64_t at, uint64_t *version, int *want_sync)
{
	struct eng_shared *sh = db->sh;
	struct eng_seat *ws;
	uint64_t off = 0, v = 0;
	char rec[ENG_REC_TERM_SIZE];
	int rc;

	assert(db->seat >= 0);
	*want_sync = 0;
	if ((rc = lock_for_write(db)))
		return rc;
	ws = &sh->seats[db->seat];
	if (!(rc = check_state(db)) &&
	    !(rc = take_space(sh, ENG_REC_TERM_SIZE, 1, at, &off, &v, want_sync))) {
		ws->inflight.len = ENG_REC_TERM_SIZE;
		ws->inflight.slot = UINT32_MAX;
		ws->inflight.nrec = 1;
		atomic_signal_fence(memory_order_seq_cst);
		ws->inflight.off = off;
	}
	eng_unlock_index(db);
	if (rc)
		return rc == -ESTALE ? -EAGAIN : rc;
	eng_rec_encode_term(rec, v);
	if ((rc = eng_chunk_lock(db, off, ENG_REC_TERM_SIZE)) == 0)
		rc = eng_io_pwrite_all(db->fd, rec, ENG_REC_TERM_SIZE, off);
	if (rc) {
		if (abandon(db, off, ENG_REC_TERM_SIZE) == 0)
			abandon_done(db);
		return rc;
	}
	if ((rc = eng_lock_index(db)))
		return rc;
	ws->publishing = 1;
	if (v > atomic_load(&sh->top_version))
		atomic_store(&sh->top_version, v);
	publish_done(sh, ws);
	eng_unlock_index(db);
	*version = v;
	return 0;
}

uint64_t eng_top_version(struct eng_db *db)
{
	return atomic_load(&db->sh->top_version);
}

int eng_version_floor(struct eng_db *db, uint64_t floor)
{
	struct eng_shared *sh = db->sh;
	int rc;

	if ((rc = eng_lock_index(db)))
		return rc;
	/* the next write finds the lease short and has a sync renew it
	 * past the floor (take_space), before any version above is used */
	if (floor > sh->seq)
		sh->seq = floor;
	eng_unlock_index(db);
	return 0;
}
