/* tests/unit/test_list.c — listing keys in byte order (engine/list.c):
 * pages in order with prefix and start_after, the ordered view kept up
 * with writes and deletes made after it was built, through a table
 * rebuilt bigger and a compaction, and full listings while other
 * processes write.
 *
 * The test process is master and worker slot 0 (see unit_util.h).
 */
#include "engine/errors.h"
#include "engine/index.h"
#include "engine/shared.h"
#include "engine/store.h"
#include "tests/unit/unit_util.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

UU_STORE_SUITE(engine_list, "list");

#define KEY_MAX 64
/* Slots read per step: small, so a pass takes several steps. */
#define STEP_SLOTS 997

struct page {
	char keys[1000][KEY_MAX];
	size_t n;
	int more;
};

/* One page of keys with prefix, after `after` (NULL: from the start). */
static void list_page(struct eng_db *d, const char *prefix, const char *after,
		      size_t limit, struct page *p)
{
	struct eng_list *l;
	const char *const *keys;
	const uint16_t *lens;
	uint64_t end;
	int rc;

	cr_assert_leq(limit, 1000);
	rc = eng_list_begin(d, prefix, strlen(prefix), after ? after : "",
			    after ? strlen(after) : 0, limit, &l);
	cr_assert(eq(int, rc, 0), "eng_list_begin: %s", eng_strerror(rc));
	while ((rc = eng_list_step(d, l, STEP_SLOTS)) == 0)
		;
	cr_assert(eq(int, rc, 1), "eng_list_step: %s", eng_strerror(rc));
	p->n = eng_list_keys(l, &keys, &lens, &p->more, &end);
	for (size_t i = 0; i < p->n; i++) {
		cr_assert_lt(lens[i], KEY_MAX);
		memcpy(p->keys[i], keys[i], lens[i]);
		p->keys[i][lens[i]] = '\0';
	}
	eng_list_end(d, l);
}

/* Every key with prefix, page by page; returns how many, each checked
 * to come after the one before. */
static size_t list_all(struct eng_db *d, const char *prefix, size_t limit,
		       char (*out)[KEY_MAX], size_t max)
{
	static struct page p;
	char after[KEY_MAX] = "";
	size_t n = 0;

	do {
		list_page(d, prefix, n ? after : NULL, limit, &p);
		for (size_t i = 0; i < p.n; i++) {
			if (n)
				cr_assert_gt(strcmp(p.keys[i], n ? out[n - 1] : ""), 0,
					     "'%s' after '%s'", p.keys[i], out[n - 1]);
			cr_assert_lt(n, max);
			strcpy(out[n++], p.keys[i]);
		}
		if (p.n)
			strcpy(after, p.keys[p.n - 1]);
	} while (p.more);
	return n;
}

static void key_n(char *out, const char *prefix, long i)
{
	snprintf(out, KEY_MAX, "%s%06ld", prefix, i);
}

/* Puts n keys prefix000000.. in a scrambled order. */
static void put_keys(struct eng_db *d, const char *prefix, long n)
{
	char key[KEY_MAX];

	for (long i = 0; i < n; i++) {
		key_n(key, prefix, (i * 7919) % n);
		cr_assert(eq(int, uu_put(d, key, "v", NULL), 0), "put %s", key);
	}
}

static void expect_all(struct eng_db *d, const char *prefix, long n, size_t limit)
{
	static char got[80000][KEY_MAX];
	char key[KEY_MAX];
	size_t m = list_all(d, prefix, limit, got, 80000);

	cr_assert(eq(sz, m, (size_t)n), "listed %zu keys of %ld", m, n);
	for (long i = 0; i < n; i++) {
		key_n(key, prefix, i);
		cr_assert_str_eq(got[i], key);
	}
}

Test(engine_list, pages_come_in_byte_order_each_key_once, .timeout = 10)
{
	put_keys(&db, "k", 300);
	expect_all(&db, "k", 300, 7);
	expect_all(&db, "k", 300, 1000);
}

Test(engine_list, prefix_and_start_after_bound_the_page, .timeout = 10)
{
	static struct page p;

	put_keys(&db, "a", 10);
	put_keys(&db, "b", 10);
	put_keys(&db, "c", 10);
	cr_assert(eq(int, uu_put(&db, "b", "v", NULL), 0));
	/* after below the prefix: from the prefix on */
	list_page(&db, "b", "a000005", 100, &p);
	cr_assert(eq(sz, p.n, 11));
	cr_assert_str_eq(p.keys[0], "b");
	cr_assert_str_eq(p.keys[10], "b000009");
	cr_assert(eq(int, p.more, 0));
	/* after equal to the prefix: strictly after it */
	list_page(&db, "b", "b", 100, &p);
	cr_assert(eq(sz, p.n, 10));
	cr_assert_str_eq(p.keys[0], "b000000");
	/* after inside: the rest, and more when the limit cuts it */
	list_page(&db, "b", "b000004", 3, &p);
	cr_assert(eq(sz, p.n, 3));
	cr_assert_str_eq(p.keys[0], "b000005");
	cr_assert(eq(int, p.more, 1));
	/* after past every key of the prefix: nothing */
	list_page(&db, "b", "b1", 100, &p);
	cr_assert(eq(sz, p.n, 0));
	cr_assert(eq(int, p.more, 0));
	/* no prefix: everything */
	list_page(&db, "", NULL, 1000, &p);
	cr_assert(eq(sz, p.n, 31));
}

Test(engine_list, keys_long_and_alike_sort_by_all_their_bytes, .timeout = 10)
{
	static struct page p;
	const char *keys[] = {
		"same-first-16-by", "same-first-16-bytes-then-b", "same-first-16-bytes-then-a",
		"same-first-16-bytes", "same-first-16-bz", "same",
	};
	const char *want[] = {
		"same", "same-first-16-by", "same-first-16-bytes",
		"same-first-16-bytes-then-a", "same-first-16-bytes-then-b", "same-first-16-bz",
	};

	for (size_t i = 0; i < 6; i++)
		cr_assert(eq(int, uu_put(&db, keys[i], "v", NULL), 0));
	list_page(&db, "", NULL, 100, &p);
	cr_assert(eq(sz, p.n, 6));
	for (size_t i = 0; i < 6; i++)
		cr_assert_str_eq(p.keys[i], want[i]);
	list_page(&db, "", "same-first-16-bytes", 100, &p);
	cr_assert(eq(sz, p.n, 3));
	cr_assert_str_eq(p.keys[0], "same-first-16-bytes-then-a");
}

Test(engine_list, writes_and_deletes_after_the_view_show, .timeout = 10)
{
	static struct page p;

	put_keys(&db, "k", 100);
	expect_all(&db, "k", 100, 30); /* the view is built */
	put_keys(&db, "k", 200);       /* 100 new, 100 replaced */
	expect_all(&db, "k", 200, 30);
	for (long i = 0; i < 200; i += 2) {
		char key[KEY_MAX];
		key_n(key, "k", i);
		cr_assert(eq(int, uu_del(&db, key, NULL), 0));
	}
	list_page(&db, "k", NULL, 1000, &p);
	cr_assert(eq(sz, p.n, 100));
	for (size_t i = 0; i < p.n; i++) {
		char key[KEY_MAX];
		key_n(key, "k", (long)(2 * i + 1));
		cr_assert_str_eq(p.keys[i], key);
	}
	/* made again after its delete: listed once */
	cr_assert(eq(int, uu_put(&db, "k000000", "again", NULL), 0));
	list_page(&db, "k", NULL, 1000, &p);
	cr_assert(eq(sz, p.n, 101));
	cr_assert_str_eq(p.keys[0], "k000000");
	cr_assert_str_eq(p.keys[1], "k000001");
}

Test(engine_list, a_compaction_keeps_the_order, .timeout = 20)
{
	uint64_t id;

	put_keys(&db, "k", 500);
	put_keys(&db, "k", 500);
	expect_all(&db, "k", 500, 100);
	cr_assert(eq(int, eng_job_request_compact(&db, &id), 0));
	cr_assert(eq(int, uu_run_job(&db).kind, ENG_JOB_COMPACT));
	expect_all(&db, "k", 500, 100);
	put_keys(&db, "j", 50);
	expect_all(&db, "j", 50, 100);
	expect_all(&db, "k", 500, 100);
}

/* A store without --max-keys, so its table grows. */
static struct uu_fixture gfx;
static struct eng_db gdb;

static void grow_setup(void)
{
	struct eng_recovery r;

	uu_fixture_setup(&gfx, "listgrow");
	uu_open_rw(gfx.dir, 0, &gdb, &r);
}

static void grow_teardown(void)
{
	uu_close(&gdb);
	uu_fixture_teardown(&gfx);
}

#define GROW_KEYS 30000

Test(engine_list_grow, a_table_rebuilt_bigger_keeps_the_order, .init = grow_setup,
     .fini = grow_teardown, .timeout = 60)
{
	uint64_t gen0;

	put_keys(&gdb, "g", 1000);
	expect_all(&gdb, "g", 1000, 1000); /* the view is built */
	gen0 = eng_cur_table(gdb.sh)->gen;
	/* growth is the master's: run the rebuilds it would as keys come */
	for (long i = 1000; i < GROW_KEYS; i++) {
		char key[KEY_MAX];
		key_n(key, "g", i);
		cr_assert(eq(int, uu_put(&gdb, key, "v", NULL), 0));
		if (gdb.sh->want_resize)
			cr_assert(eq(int, uu_run_job(&gdb).kind, ENG_JOB_RESIZE));
	}
	cr_assert_neq(eng_cur_table(gdb.sh)->gen, gen0, "the table was rebuilt");
	expect_all(&gdb, "g", GROW_KEYS, 1000);
}

/* Children churn keys of their own ("w<child>...": put, delete, put
 * again) while the test lists the stable keys: each full listing holds
 * every stable key once, in order, and nothing else. */
#define STABLE 600
#define WRITERS 2
#define CHURN_KEYS 150
#define CHURN_ROUNDS 21 /* odd: the last round (even) only puts */

Test(engine_list, full_listings_while_others_write, .timeout = 60)
{
	static char got[STABLE + 1][KEY_MAX];
	pid_t pids[WRITERS];

	put_keys(&db, "s", STABLE);
	for (int w = 0; w < WRITERS; w++) {
		pids[w] = fork();
		cr_assert_geq(pids[w], 0);
		if (pids[w] == 0) {
			char pre[16], key[KEY_MAX];
			uu_child_init();
			if (eng_db_attach(&db, 1 + w))
				_exit(1);
			snprintf(pre, sizeof(pre), "w%d", w);
			for (int round = 0; round < CHURN_ROUNDS; round++)
				for (long i = 0; i < CHURN_KEYS; i++) {
					struct eng_op op = { .kind = ENG_OP_DEL };
					struct eng_result res;
					key_n(key, pre, i);
					if (uu_put(&db, key, "x", NULL))
						_exit(2);
					op.key = key;
					op.klen = strlen(key);
					if (round % 2 && eng_write(&db, &op, &res))
						_exit(3);
				}
			_exit(UU_CHILD_OK);
		}
	}
	for (int i = 0; i < 10; i++) {
		size_t n = list_all(&db, "s", 333, got, STABLE + 1);
		cr_assert(eq(sz, n, (size_t)STABLE), "listing %d: %zu keys", i, n);
		for (long k = 0; k < STABLE; k++) {
			char key[KEY_MAX];
			key_n(key, "s", k);
			cr_assert_str_eq(got[k], key);
		}
	}
	for (int w = 0; w < WRITERS; w++)
		uu_expect_exit_ok(pids[w], "churning writer");
	/* and the churned keys, now settled: the last round put them all */
	expect_all(&db, "w0", CHURN_KEYS, 100);
	expect_all(&db, "w1", CHURN_KEYS, 100);
}

/* More new keys than the delta takes (DELTA_MIN, 65536): the view is
 * built again, and listings stay whole and in order across it. */
#define OVERFLOW_KEYS 70000

Test(engine_list_grow, a_delta_too_big_builds_the_view_again, .init = grow_setup,
     .fini = grow_teardown, .timeout = 120)
{
	put_keys(&gdb, "a", 100);
	expect_all(&gdb, "a", 100, 1000); /* the view is built */
	for (long i = 0; i < OVERFLOW_KEYS; i++) {
		char key[KEY_MAX];
		key_n(key, "d", i);
		cr_assert(eq(int, uu_put(&gdb, key, "v", NULL), 0));
		if (gdb.sh->want_resize)
			cr_assert(eq(int, uu_run_job(&gdb).kind, ENG_JOB_RESIZE));
		if (i == OVERFLOW_KEYS / 2)
			expect_all(&gdb, "d", i + 1, 1000); /* delta half full */
	}
	expect_all(&gdb, "d", OVERFLOW_KEYS, 1000);
	expect_all(&gdb, "a", 100, 1000);
}

/* --- the view database.idx carries (a clean stop, then a start) ---------- */

/* The master's clean stop (it writes database.idx), then a start. */
static void stop_and_start(void)
{
	db.seat = -1;
	cr_assert(eq(int, eng_db_save_index(&db), 0));
	uu_close(&db);
	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
}

/* Keys whose first 16 bytes tie, so that checking the order of the
 * ordered keys at a start reads the records too. */
static const char *const alike[] = {
	"same-first-16-bytes-then-b", "same-first-16-bytes-then-a", "same-first-16-bytes",
};

static void expect_alike(void)
{
	static struct page p;

	list_page(&db, "same", NULL, 100, &p);
	cr_assert(eq(sz, p.n, 3));
	cr_assert_str_eq(p.keys[0], alike[2]);
	cr_assert_str_eq(p.keys[1], alike[1]);
	cr_assert_str_eq(p.keys[2], alike[0]);
}

/* After the start: 100 keys more, and every other key deleted. */
static void change_and_expect(void)
{
	static struct page p;

	put_keys(&db, "k", 400);
	for (long i = 0; i < 400; i += 2) {
		char key[KEY_MAX];
		key_n(key, "k", i);
		cr_assert(eq(int, uu_del(&db, key, NULL), 0));
	}
	list_page(&db, "k", NULL, 1000, &p);
	cr_assert(eq(sz, p.n, 200));
	for (size_t i = 0; i < p.n; i++) {
		char key[KEY_MAX];
		key_n(key, "k", (long)(2 * i + 1));
		cr_assert_str_eq(p.keys[i], key);
	}
	expect_alike();
}

Test(engine_list, a_clean_restart_maps_the_view_from_database_idx, .timeout = 20)
{
	struct eng_list_stats s0, s1;

	put_keys(&db, "k", 300);
	for (size_t i = 0; i < 3; i++)
		cr_assert(eq(int, uu_put(&db, alike[i], "v", NULL), 0));
	expect_all(&db, "k", 300, 50); /* a view, built, before the stop */
	stop_and_start();
	cr_assert(eq(int, rep.from_snapshot, 1), "%s", rep.note);
	cr_assert(eq(u64, db.idx_view.keys, 303), "not kept: %s", db.idx_view.why);
	eng_list_stats(&s0);
	expect_all(&db, "k", 300, 50);
	expect_alike();
	eng_list_stats(&s1);
	cr_assert(eq(u64, s1.loaded, s0.loaded + 1), "the view was not mapped");
	cr_assert(eq(u64, s1.built, s0.built), "the view was sorted");
	change_and_expect();
	eng_list_stats(&s1);
	cr_assert(eq(u64, s1.built, s0.built), "the view was sorted");
}

Test(engine_list, a_damaged_view_in_database_idx_is_built_instead, .timeout = 20)
{
	struct eng_list_stats s0, s1;
	char path[256];
	size_t n;
	char *f;

	put_keys(&db, "k", 300);
	for (size_t i = 0; i < 3; i++)
		cr_assert(eq(int, uu_put(&db, alike[i], "v", NULL), 0));
	db.seat = -1;
	cr_assert(eq(int, eng_db_save_index(&db), 0));
	uu_close(&db);
	/* the file ends with its ordered keys: a bit of the last one's
	 * key prefix (which still leaves it in bounds and in order) */
	uu_path(path, sizeof(path), fx.dir, "database.idx");
	f = uu_read_file(path, &n);
	f[n - 24] ^= 0x01;
	uu_write_file(path, f, n);
	free(f);
	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	cr_assert(eq(int, rep.from_snapshot, 1), "the entries are sound: %s", rep.note);
	cr_assert(eq(u64, db.idx_view.file_gen, 0), "a damaged section was kept");
	cr_assert(strstr(db.idx_view.why, "checksum") != NULL, "why: %s", db.idx_view.why);
	eng_list_stats(&s0);
	expect_all(&db, "k", 300, 50);
	eng_list_stats(&s1);
	cr_assert(eq(u64, s1.built, s0.built + 1), "the view was not built");
	cr_assert(eq(u64, s1.loaded, s0.loaded));
	change_and_expect();
}

Test(engine_list, a_compaction_after_a_mapped_view_builds_it_again, .timeout = 20)
{
	struct eng_list_stats s0, s1;
	uint64_t id;

	put_keys(&db, "k", 300);
	put_keys(&db, "k", 300);
	stop_and_start();
	eng_list_stats(&s0);
	expect_all(&db, "k", 300, 50); /* mapped */
	cr_assert(eq(int, eng_job_request_compact(&db, &id), 0));
	cr_assert(eq(int, uu_run_job(&db).kind, ENG_JOB_COMPACT));
	put_keys(&db, "j", 20);
	expect_all(&db, "k", 300, 50); /* built: the offsets are the new file's */
	expect_all(&db, "j", 20, 50);
	eng_list_stats(&s1);
	cr_assert(eq(u64, s1.loaded, s0.loaded + 1));
	cr_assert(eq(u64, s1.built, s0.built + 1));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The stop's sort (a radix sort by the first 16 bytes, then the ties by
 * all their bytes) against strcmp: keys of any length and any bytes but
 * NUL, a third sharing their first 20 bytes; the start's check of their
 * order must keep them, and the listing be exactly them. */
Test(engine_list, the_stop_sorts_any_bytes_as_a_listing_does, .timeout = 30)
{
	enum { N = 900 };
	static char want[N][KEY_MAX], got[N][KEY_MAX];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t n = 0, m;

	for (int i = 0; i < N; i++) {
		size_t len = 1, at = 0;
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		len += (size_t)(x >> 33) % 40;
		if (i % 3 == 0) {
			memcpy(want[i], "r-shared-prefix-20by", 20);
			at = 20;
			len += 20;
		} else {
			want[i][at++] = 'r';
		}
		for (; at < len; at++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			want[i][at] = (char)(1 + (x >> 40) % 255);
		}
		want[i][len] = '\0';
		cr_assert(eq(int, uu_put(&db, want[i], "v", NULL), 0));
	}
	qsort(want, N, KEY_MAX, cmp_str);
	for (int i = 0; i < N; i++)
		if (!n || strcmp(want[n - 1], want[i]))
			memmove(want[n++], want[i], KEY_MAX);
	stop_and_start();
	cr_assert(eq(u64, db.idx_view.keys, n), "not kept: %s", db.idx_view.why);
	m = list_all(&db, "r", 97, got, N);
	cr_assert(eq(sz, m, n));
	for (size_t i = 0; i < n; i++)
		cr_assert(eq(int, strcmp(got[i], want[i]), 0), "key %zu", i);
}
