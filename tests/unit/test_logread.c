/* tests/unit/test_logread.c — the log reader (engine/logread.c), the one
 * reader of the log that /watch and replication share: every committed
 * change after a version, in version order, each once, a batch whole,
 * across compactions; 410-style refusal below the history floor.
 */
#include "engine/errors.h"
#include "engine/durable.h"
#include "engine/logread.h"
#include "engine/store.h"
#include "tests/unit/unit_util.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>

#define MAX_SEEN 4096

UU_DIR_SUITE(engine_logread, "logread");

struct seen {
	unsigned n;
	uint64_t version[MAX_SEEN];
	char key[MAX_SEEN][16];
	char val[MAX_SEEN][16];
	int del[MAX_SEEN];
	uint32_t part[MAX_SEEN], parts[MAX_SEEN];
};

static int collect(const struct eng_change *c, void *arg)
{
	struct seen *s = arg;

	cr_assert(lt(u32, s->n, MAX_SEEN));
	s->version[s->n] = c->version;
	snprintf(s->key[s->n], 16, "%.*s", (int)c->klen, c->key);
	snprintf(s->val[s->n], 16, "%.*s", (int)c->vlen, c->val);
	s->del[s->n] = c->del;
	s->part[s->n] = c->part;
	s->parts[s->n] = c->parts;
	s->n++;
	return 0;
}

/* Reads everything showable now into s. */
static void drain(struct eng_logread *lr, struct seen *s)
{
	uint64_t floor;
	int n;

	do
		n = eng_logread_next(lr, 3, collect, s, &floor);
	while (n > 0);
	cr_assert(eq(int, n, 0), "next: %s", eng_strerror(n));
}

static uint64_t put(struct eng_db *db, const char *k, const char *v)
{
	struct eng_result res;
	cr_assert(eq(int, uu_put(db, k, v, &res), 0));
	return res.version;
}

Test(engine_logread, every_change_after_a_version_once_and_in_order, .timeout = 30)
{
	struct eng_db db;
	struct eng_recovery rep;
	struct eng_logread lr, now;
	struct eng_batch_result br;
	struct seen *s = calloc(1, sizeof(*s)), *t = calloc(1, sizeof(*t));
	uint64_t floor, v1, v2;
	struct eng_result res;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	v1 = put(&db, "a", "1");
	v2 = put(&db, "b", "2");
	cr_assert(eq(int, eng_logread_start(&db, UINT64_MAX, 0, &now, &floor), 0));
	cr_assert(eq(int, uu_del(&db, "a", &res), 0));
	struct eng_batch_op ops[] = {
		{ .kind = ENG_BATCH_PUT, .key = "x", .klen = 1, .val = "X", .vlen = 1 },
		{ .kind = ENG_BATCH_PUT, .key = "y", .klen = 1, .val = "Y", .vlen = 1 },
		{ .kind = ENG_BATCH_DEL, .key = "b", .klen = 1 },
	};
	cr_assert(eq(int, eng_batch(&db, ops, 3, &br), 0));
	put(&db, "c", "3");

	cr_assert(eq(int, eng_logread_start(&db, v1, 0, &lr, &floor), 0));
	drain(&lr, s);
	cr_assert(eq(u32, s->n, 6), "changes after v%llu", (unsigned long long)v1);
	cr_assert(eq(u64, s->version[0], v2));
	cr_assert(eq(str, s->key[1], "a"));
	cr_assert(eq(int, s->del[1], 1));
	for (int i = 2; i < 5; i++) {
		cr_assert(eq(u64, s->version[i], br.version), "the batch shares a version");
		cr_assert(eq(u32, s->parts[i], 3));
		cr_assert(eq(u32, s->part[i], (uint32_t)(i - 2)));
	}
	cr_assert(eq(str, s->key[5], "c"));
	for (unsigned i = 1; i < s->n; i++)
		cr_assert(ge(u64, s->version[i], s->version[i - 1]));

	/* "now" saw only what came after it */
	drain(&now, t);
	cr_assert(eq(u32, t->n, 5));
	cr_assert(eq(str, t->key[0], "a"));
	/* and nothing twice */
	drain(&now, t);
	cr_assert(eq(u32, t->n, 5));
	put(&db, "d", "4");
	drain(&now, t);
	cr_assert(eq(u32, t->n, 6));
	cr_assert(eq(str, t->key[5], "d"));
	uu_close(&db);
	free(s);
	free(t);
}

/* A compaction swaps the file: a reader goes on in the new file's
 * history with no change lost or repeated; one that starts below what
 * the compaction kept is refused with the floor. */
Test(engine_logread, across_a_compaction_and_below_its_floor, .timeout = 60)
{
	struct eng_db db;
	struct eng_recovery rep;
	struct eng_logread lr, late;
	struct seen *s = calloc(1, sizeof(*s));
	uint64_t floor, first = 0, id, before;
	char k[16], v[16];

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof(k), "k%d", i % 20);
		snprintf(v, sizeof(v), "v%d", i);
		uint64_t ver = put(&db, k, v);
		if (!first)
			first = ver;
	}
	cr_assert(eq(int, eng_logread_start(&db, 0, 0, &lr, &floor), 0));
	drain(&lr, s);
	cr_assert(eq(u32, s->n, 200));
	before = s->version[199];
	cr_assert(eq(u64, eng_logread_floor(&db), 0), "never compacted: all history");

	cr_assert(eq(int, eng_job_request_compact(&db, &id), 0));
	cr_assert(eq(int, uu_run_job(&db).kind, ENG_JOB_COMPACT));
	cr_assert(ge(u64, eng_logread_floor(&db), before),
		  "the floor is where the compaction cut");
	for (int i = 0; i < 50; i++) {
		snprintf(v, sizeof(v), "w%d", i);
		put(&db, "after", v);
	}
	drain(&lr, s);
	cr_assert(eq(u32, s->n, 250), "every change after the compaction, once");
	for (unsigned i = 1; i < s->n; i++)
		cr_assert(gt(u64, s->version[i], s->version[i - 1]));
	cr_assert(eq(str, s->val[249], "w49"));

	cr_assert(eq(int, eng_logread_start(&db, first, 0, &late, &floor), ENG_ECOMPACTED),
		  "history below the floor is gone");
	cr_assert(eq(u64, floor, eng_logread_floor(&db)));
	cr_assert(eq(int, eng_logread_start(&db, floor, 0, &late, &floor), 0));
	memset(s, 0, sizeof(*s));
	drain(&late, s);
	cr_assert(eq(u32, s->n, 50), "from the floor: every later change");
	uu_close(&db);
	free(s);
}

/* Where reads wait for syncs, so does the reader: nothing before the
 * sync that covers it. */
Test(engine_logread, durable_only_waits_for_a_sync, .timeout = 30)
{
	struct eng_db db;
	struct eng_recovery rep;
	struct eng_logread lr;
	struct seen *s = calloc(1, sizeof(*s));
	uint64_t floor;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	cr_assert(eq(int, eng_logread_start(&db, UINT64_MAX, 1, &lr, &floor), 0));
	put(&db, "k", "v");
	drain(&lr, s);
	cr_assert(eq(u32, s->n, 0), "shown before it was durable");
	cr_assert(eq(int, eng_sync_wait(&db, eng_sync_ticket(&db)), 0));
	drain(&lr, s);
	cr_assert(eq(u32, s->n, 1));
	uu_close(&db);
	free(s);
}
