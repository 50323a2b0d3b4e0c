/* engine/list.c — listing keys in byte order (GET /keys; see store.h).
 *
 * A page is one pass over the table without the mutex, keeping the
 * smallest `limit + 1` keys that match (prefix, strictly after `after`)
 * in a max-heap of pointers into the mapping (the extra one says whether
 * more matched). Paging with start_after sees every key that exists for
 * the whole listing exactly once: slots never move, so such a key sits
 * LIVE in one slot for the whole pass, and each page takes the keys
 * after the previous page's last. A rebuild that flips the table during
 * a pass restarts the pass on the new table.
 */
#include "engine/store.h"

#include "engine/index.h"
#include "engine/shared.h"
#include "engine/db.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct lkey {
	const char *p;
	uint16_t len;
};

struct eng_list {
	char prefix[ENG_KEY_MAX];
	size_t plen;
	char after[ENG_KEY_MAX];
	size_t alen;
	size_t limit;
	uint64_t cur;          /* the table being scanned */
	uint64_t next;         /* next slot */
	struct eng_map *map;   /* keys point into it: referenced */
	struct lkey *heap;     /* max-heap of up to limit + 1 keys */
	size_t n;
	int evicted;           /* a match was left out for lack of room */
	uint64_t end;          /* the log offset the answer depends on */
	const char **keys;     /* the result, sorted */
	uint16_t *lens;
	size_t nout;
};

static int kcmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

static int lcmp(const struct lkey *a, const struct lkey *b)
{
	return kcmp(a->p, a->len, b->p, b->len);
}

static void sift_up(struct lkey *h, size_t i)
{
	while (i) {
		size_t p = (i - 1) / 2;
		struct lkey t;
		if (lcmp(&h[p], &h[i]) >= 0)
			break;
		t = h[p];
		h[p] = h[i];
		h[i] = t;
		i = p;
	}
}

static void sift_down(struct lkey *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct lkey t;
		if (l < n && lcmp(&h[l], &h[m]) > 0)
			m = l;
		if (r < n && lcmp(&h[r], &h[m]) > 0)
			m = r;
		if (m == i)
			return;
		t = h[m];
		h[m] = h[i];
		h[i] = t;
		i = m;
	}
}

static void offer(struct eng_list *l, const char *key, uint16_t len)
{
	struct lkey k = { key, len };
	size_t cap = l->limit + 1;

	if (len < l->plen || memcmp(key, l->prefix, l->plen))
		return;
	if (l->alen && kcmp(key, len, l->after, l->alen) <= 0)
		return;
	if (l->n == cap) {
		l->evicted = 1;
		if (lcmp(&k, &l->heap[0]) >= 0)
			return;
		l->heap[0] = k;
		sift_down(l->heap, l->n, 0);
		return;
	}
	l->heap[l->n] = k;
	sift_up(l->heap, l->n++);
}

int eng_list_begin(struct eng_db *db, const void *prefix, size_t plen,
		   const void *after, size_t alen, size_t limit,
		   struct eng_list **out)
{
	struct eng_list *l;

	if (plen > ENG_KEY_MAX || alen > ENG_KEY_MAX || limit == 0)
		return -EINVAL;
	if (!(l = calloc(1, sizeof(*l))))
		return -ENOMEM;
	if (!(l->heap = malloc((limit + 1) * sizeof(*l->heap)))) {
		free(l);
		return -ENOMEM;
	}
	memcpy(l->prefix, prefix, plen);
	l->plen = plen;
	memcpy(l->after, after, alen);
	l->alen = alen;
	l->limit = limit;
	l->cur = UINT64_MAX;
	*out = l;
	return 0;
}

/* (Re)starts the pass on the current table and mapping. */
static int restart(struct eng_db *db, struct eng_list *l, uint64_t cur)
{
	int rc;

	if ((rc = eng_db_refresh(db)))
		return rc;
	if (l->map)
		eng_map_put(db, l->map);
	l->map = db->cur;
	l->map->refs++;
	l->cur = cur;
	l->next = 0;
	l->n = 0;
	l->evicted = 0;
	l->end = 0;
	return 0;
}

int eng_list_step(struct eng_db *db, struct eng_list *l, uint64_t max_slots)
{
	struct eng_shared *sh = db->sh;
	_Atomic uint64_t *reading = &sh->seats[db->seat].reading;
	const struct eng_table *t;
	uint64_t cur, stop;
	int rc = 0;

	cur = atomic_load(&sh->cur);
	atomic_store(reading, eng_cur_gen(cur));
	if (atomic_load(&sh->cur) != cur) {
		atomic_store(reading, 0);
		return 0; /* flipping: try again next step */
	}
	t = eng_area_table(sh, eng_cur_area(cur));
	if (cur != l->cur || t->file_gen != l->map->file_gen) {
		if (t->file_gen != atomic_load(&sh->file_gen) ||
		    (rc = restart(db, l, cur)) || t->file_gen != l->map->file_gen) {
			atomic_store(reading, 0);
			return rc;
		}
	}
	stop = l->next + max_slots < t->nslots ? l->next + max_slots : t->nslots;
	for (; l->next < stop; l->next++) {
		struct eng_entry e;
		int r = eng_index_read_slot(t, l->next, &e);
		if (r < 0)
			break; /* odd: come back to it next step */
		if (r == 0)
			continue;
		offer(l, l->map->base + e.voff - e.klen, e.klen);
		if (e.voff + e.vlen > l->end)
			l->end = e.voff + e.vlen;
	}
	atomic_store(reading, 0);
	if (l->next < t->nslots) {
		if (l->next < stop) {
			/* a slot left odd: the mutex's repair fixes it */
			if ((rc = eng_lock_index(db)))
				return rc;
			eng_unlock_index(db);
		}
		return 0;
	}
	if (atomic_load(&sh->cur) != l->cur)
		return 0; /* flipped at the very end: the next step restarts */
	{
		uint64_t d = atomic_load(&sh->del_end);
		if (d > l->end)
			l->end = d;
	}
	return 1;
}

static int sort_cmp(const void *a, const void *b)
{
	return lcmp(a, b);
}

size_t eng_list_keys(struct eng_list *l, const char *const **keys,
		     const uint16_t **lens, int *more, uint64_t *end)
{
	size_t n = 0;

	if (!l->keys) {
		qsort(l->heap, l->n, sizeof(*l->heap), sort_cmp);
		/* a key deleted and created again in a later slot during the
		 * pass may have been seen twice */
		for (size_t i = 0; i < l->n; i++)
			if (!n || lcmp(&l->heap[n - 1], &l->heap[i]))
				l->heap[n++] = l->heap[i];
		l->evicted |= n > l->limit;
		if (n > l->limit)
			n = l->limit;
		l->nout = n;
		l->keys = malloc((n ? n : 1) * sizeof(*l->keys));
		l->lens = malloc((n ? n : 1) * sizeof(*l->lens));
		if (!l->keys || !l->lens) {
			free(l->keys);
			free(l->lens);
			l->keys = NULL;
			l->lens = NULL;
			return 0;
		}
		for (size_t i = 0; i < n; i++) {
			l->keys[i] = l->heap[i].p;
			l->lens[i] = l->heap[i].len;
		}
	}
	*keys = l->keys;
	*lens = l->lens;
	*more = l->evicted;
	*end = l->end;
	return l->nout;
}

void eng_list_end(struct eng_db *db, struct eng_list *l)
{
	if (!l)
		return;
	if (l->map)
		eng_map_put(db, l->map);
	free(l->heap);
	free(l->keys);
	free(l->lens);
	free(l);
}
