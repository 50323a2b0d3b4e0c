/* engine/list.c — listing keys in byte order (GET /keys; see store.h).
 *
 * Owns: this process's ordered view of the keys, and the listings served
 * from it. A page costs a search and the keys it returns, not a pass over
 * the table (docs/decisions.md, "An ordered view of the keys").
 *
 * The view, one per process (a worker has one database), in its private
 * memory: no shared memory is spent on it and no lock guards it (one
 * process, one loop thread).
 *   - base: every key that was live when the view was built, sorted, as
 *     24-byte entries (the first 16 key bytes big-endian, so most
 *     comparisons and most keys handed out need no key bytes from the
 *     mapping, and where the key lies in the mapping). Built by a pass
 *     over the table without the mutex, a bounded number of slots per
 *     step, then one sort.
 *   - delta: the keys whose state changed since, each with its latest
 *     state (live or deleted), sorted; fed by a log reader
 *     (engine/logread.h) started before the pass. base with delta laid
 *     over it is exactly the set of live keys as of the reader's place.
 * The view is built again when the file is replaced (compaction: its
 * entries point into the old file), when the delta grows past a share of
 * base, or when its reader fell behind the history a compaction kept.
 *
 * Why base and delta are exact: the reader starts at the oldest write in
 * flight (eng_db_written_below) when the pass begins, and hands out every
 * record from there on, in log order. A key's record below that was
 * published before the pass began, so the pass finds the key in its slot
 * if it is live (slots never move; a flip of the table restarts the
 * pass); every later change comes through the reader and is laid over
 * whatever the pass saw, in the order it happened.
 *
 * A page waits (a step at a time, at most PAGE_WAIT_NS) until the reader
 * has passed the tail as it was when the listing began: a key whose PUT
 * was answered before is then listed even if a write below it was still
 * in flight.
 *
 * Growth (a table rebuilt bigger or smaller) does not touch the view: it
 * holds offsets, not slots.
 *
 * After a clean stop there is no build: database.idx carries the keys in
 * order (engine/idxorder.h), recovery checked them, and the first view
 * of that file maps them read-only as its base (every worker shares the
 * page cache's copy) with its reader started where they end; a page
 * then touches only the pages its searches fall in. A view built again
 * later (a compaction, a delta grown too big) is built as above.
 */
#include "engine/store.h"

#include "engine/elog.h"
#include "engine/errors.h"
#include "engine/idxorder.h"
#include "engine/index.h"
#include "engine/logread.h"
#include "engine/okey.h"
#include "engine/record.h"
#include "engine/shared.h"
#include "engine/db.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The view is built again once the keys added (or deleted) since it was
 * built pass this share of it, or this many: a page then pays for at
 * most that many extra candidates, and a rebuild is amortised over as
 * many writes. */
#define DELTA_SHARE_DEN 8
#define DELTA_MIN 65536
/* Changes taken from the log per call of the reader. */
#define CHANGES_PER_READ 4096
/* How long a page waits for writes that were in flight when its listing
 * began (normally microseconds: a reservation is written and published
 * in one call). */
#define PAGE_WAIT_NS 100000000ull

/* A change read from the log, in the order read. */
struct fkey {
	struct eng_okey k;
	uint64_t seq;
};

enum view_state { VIEW_NONE, VIEW_WALKING, VIEW_SORTING, VIEW_READY };

struct oview {
	struct eng_db *db;
	pid_t pid;               /* the process it is of (see forget_inherited) */
	enum view_state state;
	struct eng_map *map;     /* the file the entries point into: referenced */
	uint64_t cur;            /* the table the pass reads */
	uint64_t next;           /* its next slot */
	struct eng_okey *base;
	size_t nbase, capbase;
	/* The sort, a step at a time: each step of the pass sorts what it
	 * added (a run), then merge passes of a bounded number of entries
	 * per step make one run of them, so that a worker's loop never
	 * stalls for the whole sort (a second at 1 M keys on a busy VM). */
	size_t *runs;            /* where each run starts */
	size_t nruns, capruns;
	size_t sorted_to;        /* base[0, sorted_to) is in runs */
	struct eng_okey *tmp;        /* the merge's output */
	size_t captmp;
	size_t mpair, mi, mj, mk; /* the merge pass: pair, inputs, output */
	struct eng_okey *delta;      /* sorted, each key once, with its state */
	size_t ndelta, capdelta;
	struct fkey *fresh;      /* changes not laid over delta yet */
	size_t nfresh, capfresh;
	uint64_t seq;
	uint64_t end;            /* the end of every record the view holds */
	struct eng_logread lr;
	/* base is database.idx's ordered section, mapped (capbase 0) */
	struct eng_idxorder_map mapped;
	uint64_t idx_gen;        /* the file whose section was tried: once */
	uint64_t build_start_ns; /* when the build under way began (0: none) */
	struct eng_list_stats stats;
};

static struct oview view;

struct eng_list {
	char prefix[ENG_KEY_MAX];
	size_t plen;
	char after[ENG_KEY_MAX];
	size_t alen;
	size_t limit;
	uint64_t want;           /* the tail when it began (0: not taken) */
	uint64_t want_gen;       /* ... of this file */
	uint64_t wait_until_ns;
	struct eng_map *map;     /* the keys point into it: referenced */
	const char **keys;       /* the page */
	uint16_t *lens;
	char (*inl)[OKEY_INLINE]; /* the bytes of the short keys of the page */
	size_t n;
	int more;
	uint64_t end;            /* the log offset the answer depends on */
};

/* --- entries ------------------------------------------------------------- */

/* The key's bytes when it is short enough to be all inline. */
static void okey_bytes(const struct eng_okey *k, char *out)
{
	uint64_t a = htobe64(k->p0), b = htobe64(k->p1);

	memcpy(out, &a, 8);
	memcpy(out + 8, &b, 8);
}

static int sort_cmp(const void *a, const void *b, void *base)
{
	return eng_okey_cmp(a, eng_okey_ptr(base, a), b, eng_okey_ptr(base, b));
}

/* The first entry of v[0, n) not below key (after = 0) or above it
 * (after = 1). */
static size_t bound(const char *base, const struct eng_okey *v, size_t n,
		    const char *key, uint16_t klen, int after)
{
	struct eng_okey k = eng_okey_make(key, klen, 0);
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = eng_okey_cmp(&v[mid], eng_okey_ptr(base, &v[mid]), &k, key);
		if (c < 0 || (after && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int push(struct eng_okey **v, size_t *n, size_t *cap, struct eng_okey k)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 1024;
		struct eng_okey *p = realloc(*v, ncap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = ncap;
	}
	(*v)[(*n)++] = k;
	return 0;
}

/* --- the view ---------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Lets base go: a mapped section is unmapped, an array kept for reuse. */
static void base_unmap(void)
{
	if (!view.mapped.addr)
		return;
	eng_idxorder_unmap(&view.mapped);
	view.base = NULL;
	view.capbase = 0;
}

static void view_clear(struct eng_db *db)
{
	if (view.map)
		eng_map_put(db, view.map);
	base_unmap();
	view.map = NULL;
	view.state = VIEW_NONE;
	view.nbase = view.ndelta = view.nfresh = 0;
	view.end = 0;
	view.nruns = view.sorted_to = 0;
	view.mpair = view.mi = view.mj = view.mk = 0;
}

/* A child forked from a process that had a view (a test's children; a
 * worker's master never lists) must not use it: its map reference is of
 * the parent's mapping records, which attach may have replaced. The
 * arrays are the child's copies: freed; the reference is not the
 * child's to put. */
static void view_free(void)
{
	struct eng_list_stats st = view.stats;

	if (view.mapped.addr)
		base_unmap(); /* a child's copy of the mapping is its own */
	free(view.base);
	free(view.delta);
	free(view.fresh);
	free(view.runs);
	free(view.tmp);
	memset(&view, 0, sizeof(view));
	view.stats = st;
}

static void forget_inherited(void)
{
	if (!view.db || view.pid == getpid())
		return;
	view_free();
}

void eng_list_drop(struct eng_db *db)
{
	forget_inherited();
	if (view.db != db)
		return;
	view_clear(db);
	view_free();
}

/* Takes database.idx's ordered section as base, when recovery checked
 * one for the current file (db->idx_view, inherited from the master)
 * and the file still holds it: the view is then ready at once, its
 * delta to come from the log from where the section ends. Tried once
 * per file: a view built again because its delta grew would only read
 * the same changes again. 1 loaded, 0 not (build), -errno. */
static int view_load(struct eng_db *db)
{
	const struct eng_idx_view *v = &db->idx_view;
	uint64_t floor, hist_floor, hist_off;
	int rc;

	if (!v->file_gen || v->file_gen != db->file_gen || view.idx_gen == db->file_gen)
		return 0;
	view.idx_gen = db->file_gen;
	/* The reader starts at covered_from; in a compacted file, records
	 * of versions above the floor lie at or past the history offset,
	 * which a section written at a stop of that file never precedes
	 * (checked: the reader would start there instead). */
	if (!eng_hist_decode(db->map, __atomic_load_n(&db->sh->tail, __ATOMIC_RELAXED),
			     &hist_floor, &hist_off) && v->covered_from < hist_off)
		return 0;
	if ((rc = eng_idxorder_map(db->dir, v, &view.mapped))) {
		eng_log(ENG_LOG_INFO, "keys: not mapping the ordered keys of %s/%s (%s); "
			"sorting them instead", db->dir, ENG_IDX_FILE,
			rc == -ESTALE ? "the file was replaced since the start" : strerror(-rc));
		return 0;
	}
	floor = eng_logread_floor(db);
	if ((rc = eng_logread_start(db, UINT64_MAX, 0, &view.lr, &floor))) {
		base_unmap();
		return rc;
	}
	/* every record from covered_from on, whatever its version */
	view.lr.last = floor;
	view.lr.hint_off = v->covered_from;
	view.lr.hint_gen = db->file_gen;
	view.map = db->cur;
	view.map->refs++;
	view.base = (struct eng_okey *)view.mapped.base;
	view.nbase = view.sorted_to = (size_t)view.mapped.n;
	view.capbase = 0;
	view.end = v->covered_from;
	view.state = VIEW_READY;
	view.stats.loaded++;
	eng_log(ENG_LOG_INFO, "keys: ordered view of %" PRIu64 " keys mapped from %s/%s",
		view.mapped.n, db->dir, ENG_IDX_FILE);
	return 1;
}

/* Begins a view: from database.idx when it can, else a build (the
 * reader first, then a pass over the current table). */
static int view_start(struct eng_db *db)
{
	uint64_t floor;
	int rc;

	if (view.db != db)
		eng_list_drop(view.db);
	view.db = db;
	view.pid = getpid();
	view_clear(db);
	if ((rc = eng_db_refresh(db)))
		return rc;
	if ((rc = view_load(db)))
		return rc < 0 ? rc : 0;
	if (!view.build_start_ns)
		view.build_start_ns = now_ns();
	floor = eng_logread_floor(db);
	if ((rc = eng_logread_start(db, UINT64_MAX, 0, &view.lr, &floor)))
		return rc;
	/* "now" skips the versions handed out so far; records from the
	 * oldest write in flight on are wanted whatever their version
	 * (one handed out before may be published after the pass read its
	 * slot). Versions at or below the history floor lie below it. */
	view.lr.last = floor;
	view.map = db->cur;
	view.map->refs++;
	view.cur = atomic_load(&db->sh->cur);
	{
		/* room for the keys the table holds now (read without the
		 * mutex: a hint), so the pass rarely grows the array */
		uint64_t live = __atomic_load_n(&eng_area_table(db->sh,
				eng_cur_area(view.cur))->live, __ATOMIC_RELAXED);
		size_t want = (size_t)(live + live / 16 + 1024);
		if (want > view.capbase) {
			struct eng_okey *p = realloc(view.base, want * sizeof(*p));
			if (!p)
				return -ENOMEM;
			view.base = p;
			view.capbase = want;
		}
	}
	view.next = 0;
	view.state = VIEW_WALKING;
	return 0;
}

/* Sorts what the last step of the pass added into a run of its own. */
static int add_run(void)
{
	if (view.sorted_to == view.nbase)
		return 0;
	if (view.nruns == view.capruns) {
		size_t ncap = view.capruns ? view.capruns * 2 : 64;
		size_t *p = realloc(view.runs, ncap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		view.runs = p;
		view.capruns = ncap;
	}
	qsort_r(view.base + view.sorted_to, view.nbase - view.sorted_to,
		sizeof(*view.base), sort_cmp, (void *)view.map->base);
	view.runs[view.nruns++] = view.sorted_to;
	view.sorted_to = view.nbase;
	if (view.nruns == 2) { /* the merge's first pair */
		view.mi = view.runs[0];
		view.mj = view.runs[1];
	}
	return 0;
}

/* Reads up to max_slots more slots of the pass. 1 when it is done, 0 if
 * not, -errno. */
static int view_walk(struct eng_db *db, uint64_t max_slots)
{
	struct eng_shared *sh = db->sh;
	_Atomic uint64_t *reading = &sh->seats[db->seat].reading;
	const struct eng_table *t;
	uint64_t cur = atomic_load(&sh->cur), stop;
	int rc = 0;

	atomic_store(reading, eng_cur_gen(cur));
	if (atomic_load(&sh->cur) != cur) {
		atomic_store(reading, 0);
		return 0; /* flipping: try again next step */
	}
	t = eng_area_table(sh, eng_cur_area(cur));
	if (cur != view.cur || t->file_gen != view.map->file_gen) {
		/* a flip or a new file since the pass began: begin again */
		atomic_store(reading, 0);
		return view_start(db);
	}
	stop = view.next + max_slots < t->nslots ? view.next + max_slots : t->nslots;
	for (; view.next < stop && !rc; view.next++) {
		struct eng_entry e;
		int r = eng_index_read_slot(t, view.next, &e);
		if (r < 0)
			break; /* odd: come back to it next step */
		if (r != 1)
			continue;
		rc = push(&view.base, &view.nbase, &view.capbase,
			  eng_okey_make(view.map->base + e.voff - e.klen, e.klen,
				    e.voff - e.klen));
		if (e.voff + e.vlen > view.end)
			view.end = e.voff + e.vlen;
	}
	atomic_store(reading, 0);
	if (rc || (rc = add_run()))
		return rc;
	if (view.next < t->nslots) {
		if (view.next < stop) {
			/* a slot left odd: the mutex's repair fixes it */
			if ((rc = eng_lock_index(db)))
				return rc;
			eng_unlock_index(db);
		}
		return 0;
	}
	view.state = VIEW_SORTING;
	return 1;
}

static size_t run_start(size_t r)
{
	return r < view.nruns ? view.runs[r] : view.nbase;
}

/* A merge pass is done: its output becomes base, with half the runs. */
static void pass_done(void)
{
	struct eng_okey *b = view.base;
	size_t cap = view.capbase, n = 0;

	view.base = view.tmp;
	view.capbase = view.captmp;
	view.tmp = b;
	view.captmp = cap;
	for (size_t r = 0; r < view.nruns; r += 2)
		view.runs[n++] = view.runs[r];
	view.nruns = n;
	view.mpair = view.mk = 0;
	view.mi = run_start(0);
	view.mj = run_start(1);
}

/* Merges up to budget entries. 1 when base is one sorted run of unique
 * keys, 0 if not yet, -errno. */
static int view_merge(size_t budget)
{
	const char *base = view.map->base;

	if (view.nruns > 1 && view.captmp < view.nbase) {
		struct eng_okey *p = realloc(view.tmp, view.nbase * sizeof(*p));
		if (!p)
			return -ENOMEM;
		view.tmp = p;
		view.captmp = view.nbase;
	}
	while (view.nruns > 1 && budget) {
		size_t ea = run_start(2 * view.mpair + 1), eb = run_start(2 * view.mpair + 2);

		for (; budget && (view.mi < ea || view.mj < eb); budget--) {
			int c = view.mi == ea ? 1 : view.mj == eb ? -1 :
				sort_cmp(&view.base[view.mi], &view.base[view.mj], (void *)base);
			view.tmp[view.mk++] = c <= 0 ? view.base[view.mi++] : view.base[view.mj++];
		}
		if (view.mi < ea || view.mj < eb)
			break;
		if (2 * ++view.mpair >= view.nruns) {
			pass_done();
			continue;
		}
		view.mi = run_start(2 * view.mpair);
		view.mj = run_start(2 * view.mpair + 1);
	}
	if (view.nruns > 1)
		return 0;
	/* one run: drop repeated keys (a key deleted and made again in
	 * another slot during the pass) */
	{
		size_t m = 0;
		for (size_t i = 0; i < view.nbase; i++)
			if (!m || sort_cmp(&view.base[m - 1], &view.base[i], (void *)base))
				view.base[m++] = view.base[i];
		view.nbase = m;
	}
	free(view.tmp);
	view.tmp = NULL;
	view.captmp = 0;
	view.state = VIEW_READY;
	view.stats.built++;
	eng_log(ENG_LOG_INFO, "keys: ordered view of %zu keys built in %.2f s (a pass "
		"over the table and a sort)", view.nbase,
		(double)(now_ns() - view.build_start_ns) / 1e9);
	view.build_start_ns = 0;
	return 1;
}

static int in_sorted(const struct eng_okey *v, size_t n, const char *key, uint16_t klen)
{
	size_t i = bound(view.map->base, v, n, key, klen, 0);

	return i < n && !eng_okey_kcmp(eng_okey_ptr(view.map->base, &v[i]), eng_okey_len(&v[i]), key, klen);
}

static int on_change(const struct eng_change *c, void *arg)
{
	int *rc = arg;
	struct fkey f;
	uint64_t end;

	if (view.lr.file_gen != view.map->file_gen)
		return 1; /* a new file: the view is built again */
	f.k = eng_okey_make(c->key, c->klen, (uint64_t)(c->key - view.map->base));
	if (c->del)
		f.k.off_len |= OKEY_DEAD;
	f.seq = view.seq++;
	end = (uint64_t)(c->val - view.map->base) + c->vlen;
	if (end > view.end)
		view.end = end;
	if (view.nfresh == view.capfresh) {
		size_t ncap = view.capfresh ? view.capfresh * 2 : 1024;
		struct fkey *p = realloc(view.fresh, ncap * sizeof(*p));
		if (!p) {
			*rc = -ENOMEM;
			return 1;
		}
		view.fresh = p;
		view.capfresh = ncap;
	}
	view.fresh[view.nfresh++] = f;
	return 0;
}

/* Key order, then the order read. */
static int fresh_cmp(const void *a, const void *b, void *base)
{
	const struct fkey *x = a, *y = b;
	int c = sort_cmp(&x->k, &y->k, base);

	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* The fresh changes, sorted, each key's last one kept (in place); drops
 * those that change nothing against base with no delta entry (a PUT of
 * a key base holds, a delete of one it does not): the merge lays them
 * over delta after. Returns how many are left. */
static size_t fresh_last(void)
{
	const char *base = view.map->base;
	size_t m = 0;

	qsort_r(view.fresh, view.nfresh, sizeof(*view.fresh), fresh_cmp, (void *)base);
	for (size_t i = 0; i < view.nfresh; i++) {
		if (i + 1 < view.nfresh &&
		    !sort_cmp(&view.fresh[i].k, &view.fresh[i + 1].k, (void *)base))
			continue; /* a later change of the same key follows */
		view.fresh[m++] = view.fresh[i];
	}
	return m;
}

/* Lays the fresh changes over delta (a merge: delta stays sorted). */
static int merge_fresh(void)
{
	const char *base = view.map->base;
	size_t nf, n, i, j, k;
	struct eng_okey *out;

	if (!view.nfresh)
		return 0;
	nf = fresh_last();
	n = view.ndelta + nf;
	if (!(out = malloc((n ? n : 1) * sizeof(*out))))
		return -ENOMEM;
	for (i = j = k = 0; i < view.ndelta || j < nf;) {
		int c = i == view.ndelta ? 1 : j == nf ? -1 :
			sort_cmp(&view.delta[i], &view.fresh[j].k, (void *)base);
		const struct eng_okey *f;

		if (c < 0) {
			out[k++] = view.delta[i++];
			continue;
		}
		f = &view.fresh[j++].k;
		if (c == 0) {
			i++;
			out[k++] = *f; /* the latest state of a key delta has */
			continue;
		}
		/* new to delta: only if it changes what base says */
		if ((f->off_len & OKEY_DEAD ? 0 : 1) !=
		    in_sorted(view.base, view.nbase, eng_okey_ptr(base, f), eng_okey_len(f)))
			out[k++] = *f;
	}
	free(view.delta);
	view.delta = out;
	view.ndelta = k;
	view.capdelta = n;
	view.nfresh = 0;
	return 0;
}

/* Brings the delta up to the log. 1 if the view is still good, 0 if it
 * must be built again, -errno. */
static int view_catch_up(struct eng_db *db)
{
	uint64_t floor, limit;
	int rc = 0, n;

	if ((rc = eng_db_refresh(db)))
		return rc;
	if (db->file_gen != view.map->file_gen)
		return 0;
	while ((n = eng_logread_next(&view.lr, CHANGES_PER_READ, on_change, &rc,
				     &floor)) > 0 && !rc)
		;
	if (rc)
		return rc;
	if (n == ENG_ECOMPACTED || view.lr.file_gen != view.map->file_gen)
		return 0;
	if (n < 0)
		return n;
	if ((rc = merge_fresh()))
		return rc;
	limit = view.nbase / DELTA_SHARE_DEN;
	if (limit < DELTA_MIN)
		limit = DELTA_MIN;
	return view.ndelta <= limit;
}

/* --- a page --------------------------------------------------------------- */

int eng_list_begin(struct eng_db *db, const void *prefix, size_t plen,
		   const void *after, size_t alen, size_t limit,
		   struct eng_list **out)
{
	struct eng_list *l;

	if (plen > ENG_KEY_MAX || alen > ENG_KEY_MAX || limit == 0)
		return -EINVAL;
	if (!(l = calloc(1, sizeof(*l))))
		return -ENOMEM;
	l->keys = malloc((limit + 1) * sizeof(*l->keys));
	l->lens = malloc((limit + 1) * sizeof(*l->lens));
	l->inl = malloc((limit + 1) * sizeof(*l->inl));
	if (!l->keys || !l->lens || !l->inl) {
		free(l->keys);
		free(l->lens);
		free(l->inl);
		free(l);
		return -ENOMEM;
	}
	memcpy(l->prefix, prefix, plen);
	l->plen = plen;
	memcpy(l->after, after, alen);
	l->alen = alen;
	l->limit = limit;
	*out = l;
	return 0;
}

/* The next candidate of base[*i..] and delta[*j..] in byte order (each
 * key once), or NULL when both are used up. */
static const struct eng_okey *next_candidate(size_t *i, size_t *j)
{
	const char *base = view.map->base;
	const struct eng_okey *a = *i < view.nbase ? &view.base[*i] : NULL;
	const struct eng_okey *b = *j < view.ndelta ? &view.delta[*j] : NULL;
	int c;

	if (!a || !b) {
		if (a)
			++*i;
		else if (b)
			++*j;
		return a ? a : b;
	}
	c = sort_cmp(a, b, (void *)base);
	if (c <= 0)
		++*i;
	if (c >= 0)
		++*j;
	return c < 0 ? a : b; /* the same key: delta's state is the newer */
}

/* Fills the page from the view. */
static void fill_page(struct eng_list *l)
{
	const char *base = view.map->base;
	const char *from = l->alen && eng_okey_kcmp(l->after, l->alen, l->prefix, l->plen) >= 0 ?
			   l->after : l->prefix;
	size_t flen = from == l->after ? l->alen : l->plen;
	int strict = from == l->after;
	size_t i = bound(base, view.base, view.nbase, from, (uint16_t)flen, strict);
	size_t j = bound(base, view.delta, view.ndelta, from, (uint16_t)flen, strict);
	const struct eng_okey *k;

	l->n = 0;
	l->more = 0;
	while ((k = next_candidate(&i, &j))) {
		uint16_t klen = eng_okey_len(k);
		const char *key;

		if (k->off_len & OKEY_DEAD)
			continue;
		if (klen <= OKEY_INLINE) {
			okey_bytes(k, l->inl[l->n]);
			key = l->inl[l->n];
		} else {
			key = eng_okey_ptr(base, k);
		}
		if (klen < l->plen || memcmp(key, l->prefix, l->plen))
			break; /* past the prefix: no later key has it */
		if (l->n == l->limit) {
			l->more = 1;
			break;
		}
		l->keys[l->n] = key;
		l->lens[l->n++] = klen;
	}
}

/* Has the reader passed the tail of when the listing began (or waited
 * long enough for it)? */
static int caught_up(struct eng_db *db, struct eng_list *l)
{
	uint64_t now = now_ns();

	if (!l->want) {
		l->want = __atomic_load_n(&db->sh->tail, __ATOMIC_RELAXED);
		l->want_gen = db->file_gen;
		l->wait_until_ns = now + PAGE_WAIT_NS;
	}
	return l->want_gen != view.map->file_gen || view.lr.off >= l->want ||
	       now >= l->wait_until_ns;
}

/* Makes the page from a ready view. */
static int view_page(struct eng_db *db, struct eng_list *l)
{
	uint64_t d = atomic_load(&db->sh->del_end);

	fill_page(l);
	/* The answer depends on every record the view holds (a bound: the
	 * keys it lists, and the deletes that left others out). */
	l->end = view.end > d ? view.end : d;
	if (l->map)
		eng_map_put(db, l->map);
	l->map = view.map;
	l->map->refs++;
	return 1;
}

int eng_list_step(struct eng_db *db, struct eng_list *l, uint64_t max_slots)
{
	int rc;

	forget_inherited();
	if (view.db != db || view.state == VIEW_NONE)
		return view_start(db);
	if (view.state == VIEW_WALKING) {
		rc = view_walk(db, max_slots);
		return rc < 0 ? rc : 0;
	}
	if (view.state == VIEW_SORTING) {
		/* merging an entry costs a few slots' reading */
		rc = view_merge((size_t)max_slots * 2);
		return rc < 0 ? rc : 0;
	}
	if ((rc = view_catch_up(db)) <= 0) {
		if (rc == 0)
			view.state = VIEW_NONE;
		return rc;
	}
	if (!caught_up(db, l))
		return 0;
	return view_page(db, l);
}

size_t eng_list_keys(struct eng_list *l, const char *const **keys,
		     const uint16_t **lens, int *more, uint64_t *end)
{
	*keys = l->keys;
	*lens = l->lens;
	*more = l->more;
	*end = l->end;
	return l->n;
}

void eng_list_end(struct eng_db *db, struct eng_list *l)
{
	if (!l)
		return;
	if (l->map)
		eng_map_put(db, l->map);
	free(l->keys);
	free(l->lens);
	free(l->inl);
	free(l);
}

void eng_list_stats(struct eng_list_stats *st)
{
	*st = view.stats;
}
