/* tests/unit/test_store.c — what a write does (engine/store.h): put, get,
 * replace and delete, the created flag, If-Match / If-None-Match, incr,
 * the argument limits, versions, failed writes, a pass of independent
 * writes (eng_write_pass), and the one-caskd-per-directory lock.
 *
 * The test process is master and worker slot 0 (see unit_util.h). The
 * full-index cases live in test_index.c, dead workers in test_mutex.c.
 */
#include "engine/db.h"
#include "engine/errors.h"
#include "engine/job.h"
#include "engine/record.h"
#include "engine/shared.h"
#include "engine/store.h"
#include "tests/unit/unit_util.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

UU_STORE_SUITE(engine_store, "store");

static int put_if(const char *key, const char *val, int has_if_match,
		  int any, uint64_t version, int none_any,
		  struct eng_result *res)
{
	struct eng_op op = {
		.kind = ENG_OP_PUT, .key = key, .klen = strlen(key),
		.val = val, .vlen = strlen(val),
		.has_if_match = has_if_match, .if_match_any = any,
		.if_match = version, .if_none_match_any = none_any,
	};
	return eng_write(&db, &op, res);
}

static uint64_t version_of(const char *key)
{
	struct eng_val v;
	int rc = eng_get(&db, key, strlen(key), &v);

	cr_assert(eq(int, rc, 0), "'%s': %s", key, eng_strerror(rc));
	return v.version;
}

/* --- put, get, replace, delete ---------------------------------------------- */

Test(engine_store, put_get_replace_delete, .timeout = 5)
{
	struct eng_result res;
	int rc;

	uu_expect_val(&db, "k", NULL);
	rc = uu_put(&db, "k", "first", &res);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(int, res.created, 1));
	uu_expect_val(&db, "k", "first");

	rc = uu_put(&db, "k", "second, and longer", &res);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(int, res.created, 0), "a replace creates nothing");
	uu_expect_val(&db, "k", "second, and longer");

	rc = uu_del(&db, "k", &res);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(int, res.created, 0));
	uu_expect_val(&db, "k", NULL);

	rc = uu_put(&db, "k", "back", &res);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(int, res.created, 1), "a deleted key is created anew");
	uu_expect_val(&db, "k", "back");
}

Test(engine_store, delete_of_absent_key_is_enoent, .timeout = 5)
{
	struct eng_result res;

	cr_assert(eq(int, uu_del(&db, "never", &res), -ENOENT));
	cr_assert(eq(int, uu_put(&db, "once", "v", NULL), 0));
	cr_assert(eq(int, uu_del(&db, "once", NULL), 0));
	cr_assert(eq(int, uu_del(&db, "once", &res), -ENOENT),
		  "a second delete finds nothing");
	cr_assert(eq(u64, eng_cur_table(db.sh)->live, 0));
}

Test(engine_store, binary_keys_and_values_are_exact, .timeout = 5)
{
	static const char k1[] = "a", k2[] = "a\0", k3[] = "a\0b", k4[] = "ab";
	unsigned char val[256];
	struct eng_val v;

	for (int i = 0; i < 256; i++)
		val[i] = (unsigned char)i;
	cr_assert(eq(int, uu_put_n(&db, k1, 1, "1", 1, NULL), 0));
	cr_assert(eq(int, uu_put_n(&db, k2, 2, "2", 1, NULL), 0));
	cr_assert(eq(int, uu_put_n(&db, k3, 3, val, sizeof(val), NULL), 0));
	cr_assert(eq(int, uu_put_n(&db, k4, 2, "", 0, NULL), 0));
	cr_assert(eq(int, eng_get(&db, k1, 1, &v), 0));
	cr_assert(eq(int, v.len == 1 && v.data[0] == '1', 1));
	cr_assert(eq(int, eng_get(&db, k2, 2, &v), 0));
	cr_assert(eq(int, v.len == 1 && v.data[0] == '2', 1));
	cr_assert(eq(int, eng_get(&db, k3, 3, &v), 0));
	cr_assert(eq(u32, v.len, sizeof(val)));
	cr_assert(eq(int, memcmp(v.data, val, sizeof(val)), 0));
	cr_assert(eq(int, eng_get(&db, k4, 2, &v), 0));
	cr_assert(eq(u32, v.len, 0), "an empty value is a value");
	cr_assert(eq(int, eng_get(&db, "b", 1, &v), -ENOENT));
}

Test(engine_store, versions_strictly_increase, .timeout = 5)
{
	struct eng_result res;
	uint64_t last = 0;
	char key[16];

	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i % 7);
		if (i % 5 == 4)
			cr_assert(eq(int, uu_del(&db, key, &res) == 0 ||
					 uu_put(&db, key, "v", &res) == 0, 1));
		else
			cr_assert(eq(int, uu_put(&db, key, "v", &res), 0));
		cr_assert(gt(u64, res.version, last), "write %d", i);
		last = res.version;
	}
	cr_assert(eq(int, uu_put(&db, "k0", "v", &res), 0));
	cr_assert(gt(u64, res.version, last));
	cr_assert(eq(u64, version_of("k0"), res.version),
		  "a read returns the version the write was given");
}

Test(engine_store, result_end_tracks_the_log, .timeout = 5)
{
	struct eng_result res;

	cr_assert(eq(int, uu_put(&db, "abc", "0123456789", &res), 0));
	cr_assert(eq(u64, res.end, ENG_FILE_HDR_SIZE + eng_rec_size(3, 10)));
	cr_assert(eq(u64, db.sh->tail, res.end));
	cr_assert(eq(int, uu_del(&db, "abc", &res), 0));
	cr_assert(eq(u64, res.end, ENG_FILE_HDR_SIZE + eng_rec_size(3, 10) +
				    eng_rec_size(3, 0)));
	cr_assert(eq(u64, eng_db_written_below(&db), res.end),
		  "nothing in flight: all of the log is written");
}

Test(engine_store, stats_follow_the_writes, .timeout = 5)
{
	struct eng_stats st;

	cr_assert(eq(int, uu_put(&db, "a", "1", NULL), 0));
	cr_assert(eq(int, uu_put(&db, "b", "22", NULL), 0));
	cr_assert(eq(int, uu_put(&db, "a", "333", NULL), 0));
	cr_assert(eq(int, uu_del(&db, "b", NULL), 0));
	eng_stats(&db, &st);
	cr_assert(eq(u64, st.keys, 1));
	cr_assert(eq(u64, st.capacity, UU_MAX_KEYS));
	cr_assert(eq(u64, st.live_bytes, eng_rec_size(1, 3)));
	cr_assert(eq(u64, st.log_bytes, db.sh->tail));
	cr_assert(eq(int, st.poisoned, 0));
}

/* capacity is the current table's (9/10 of its slots: past that a new
 * key waits for a rebuild), capped by --max-keys, which capacity_max
 * gives apart (0: none); an unbounded index had capacity 0. */
Test(engine_store, capacity_is_the_tables_and_the_bound_apart, .timeout = 5)
{
	struct eng_stats st;

	eng_stats(&db, &st);
	cr_assert(eq(u64, st.capacity_max, UU_MAX_KEYS));
	cr_assert(eq(u64, st.capacity, UU_MAX_KEYS), "the table holds more than the bound");
	uu_close(&db);
	uu_open_rw(fx.dir, 0, &db, &rep);
	eng_stats(&db, &st);
	cr_assert(eq(u64, st.capacity_max, 0));
	cr_assert(eq(u64, st.capacity, st.table_slots * 9 / 10));
	cr_assert(gt(u64, st.capacity, 0));
}

/* --- conditions -------------------------------------------------------------- */

Test(engine_store, if_match_needs_the_current_version, .timeout = 5)
{
	struct eng_result res;
	uint64_t v1;

	cr_assert(eq(int, put_if("k", "x", 1, 0, 1, 0, &res), ENG_EPRECOND),
		  "If-Match on an absent key");
	cr_assert(eq(int, put_if("k", "x", 1, 1, 0, 0, &res), ENG_EPRECOND),
		  "If-Match: * on an absent key");
	uu_expect_val(&db, "k", NULL);

	cr_assert(eq(int, uu_put(&db, "k", "v1", &res), 0));
	v1 = res.version;
	cr_assert(eq(int, put_if("k", "x", 1, 0, v1 + 1, 0, &res), ENG_EPRECOND));
	cr_assert(eq(int, put_if("k", "x", 1, 0, v1 - 1, 0, &res), ENG_EPRECOND));
	uu_expect_val(&db, "k", "v1");
	cr_assert(eq(u64, version_of("k"), v1), "a refused write changes nothing");

	cr_assert(eq(int, put_if("k", "v2", 1, 0, v1, 0, &res), 0));
	cr_assert(gt(u64, res.version, v1));
	uu_expect_val(&db, "k", "v2");
	cr_assert(eq(int, put_if("k", "v3", 1, 0, v1, 0, &res), ENG_EPRECOND),
		  "the old version no longer matches");
	cr_assert(eq(int, put_if("k", "v3", 1, 1, 0, 0, &res), 0),
		  "If-Match: * on a present key");
	uu_expect_val(&db, "k", "v3");
}

Test(engine_store, if_none_match_creates_only, .timeout = 5)
{
	struct eng_result res;

	cr_assert(eq(int, put_if("k", "first", 0, 0, 0, 1, &res), 0));
	cr_assert(eq(int, res.created, 1));
	cr_assert(eq(int, put_if("k", "second", 0, 0, 0, 1, &res), ENG_EPRECOND));
	uu_expect_val(&db, "k", "first");
	cr_assert(eq(int, uu_del(&db, "k", NULL), 0));
	cr_assert(eq(int, put_if("k", "third", 0, 0, 0, 1, &res), 0),
		  "after a delete the key is absent again");
	uu_expect_val(&db, "k", "third");
}

Test(engine_store, conditional_delete_and_incr, .timeout = 5)
{
	struct eng_op op = { .key = "n", .klen = 1 };
	struct eng_result res;
	uint64_t v;

	cr_assert(eq(int, uu_put(&db, "n", "5", &res), 0));
	v = res.version;
	op.kind = ENG_OP_INCR;
	op.by = 1;
	op.has_if_match = 1;
	op.if_match = v + 100;
	cr_assert(eq(int, eng_write(&db, &op, &res), ENG_EPRECOND));
	op.if_match = v;
	cr_assert(eq(int, eng_write(&db, &op, &res), 0));
	cr_assert(eq(i64, res.value, 6));
	v = res.version;
	op.kind = ENG_OP_DEL;
	op.if_match = v - 1;
	cr_assert(eq(int, eng_write(&db, &op, &res), ENG_EPRECOND));
	uu_expect_val(&db, "n", "6");
	op.if_match = v;
	cr_assert(eq(int, eng_write(&db, &op, &res), 0));
	uu_expect_val(&db, "n", NULL);
	op.has_if_match = 0;
	op.if_none_match_any = 1;
	op.kind = ENG_OP_INCR;
	cr_assert(eq(int, eng_write(&db, &op, &res), 0),
		  "incr with If-None-Match: * on an absent key");
	cr_assert(eq(int, eng_write(&db, &op, &res), ENG_EPRECOND));
}

/* --- incr ------------------------------------------------------------------------ */

Test(engine_store, incr_counts_from_zero, .timeout = 5)
{
	struct eng_result res;

	cr_assert(eq(int, uu_incr(&db, "c", 5, &res), 0));
	cr_assert(eq(i64, res.value, 5));
	cr_assert(eq(int, res.created, 1));
	uu_expect_val(&db, "c", "5");
	cr_assert(eq(int, uu_incr(&db, "c", -8, &res), 0));
	cr_assert(eq(i64, res.value, -3));
	cr_assert(eq(int, res.created, 0));
	uu_expect_val(&db, "c", "-3");
	cr_assert(eq(int, uu_incr(&db, "c", 3, &res), 0));
	uu_expect_val(&db, "c", "0");
	cr_assert(eq(int, uu_incr(&db, "z", 0, &res), 0));
	uu_expect_val(&db, "z", "0");
}

Test(engine_store, incr_of_non_integer_is_enotint, .timeout = 5)
{
	static const char *bad[] = {
		"abc", "", "1.5", "007", "-0", "+1", " 1", "1 ",
		"9223372036854775808",
	};
	struct eng_result res;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v;
		cr_assert(eq(int, uu_put(&db, "k", bad[i], NULL), 0));
		v = version_of("k");
		cr_assert(eq(int, uu_incr(&db, "k", 1, &res), ENG_ENOTINT),
			  "value '%s'", bad[i]);
		uu_expect_val(&db, "k", bad[i]);
		cr_assert(eq(u64, version_of("k"), v));
	}
}

Test(engine_store, incr_overflow_leaves_the_value, .timeout = 5)
{
	struct eng_result res;

	cr_assert(eq(int, uu_put(&db, "max", "9223372036854775806", NULL), 0));
	cr_assert(eq(int, uu_incr(&db, "max", 1, &res), 0));
	cr_assert(eq(i64, res.value, INT64_MAX));
	cr_assert(eq(int, uu_incr(&db, "max", 1, &res), ENG_EOVERFLOW));
	uu_expect_val(&db, "max", "9223372036854775807");
	cr_assert(eq(int, uu_incr(&db, "max", INT64_MIN, &res), 0));
	cr_assert(eq(i64, res.value, -1));

	cr_assert(eq(int, uu_put(&db, "min", "-9223372036854775807", NULL), 0));
	cr_assert(eq(int, uu_incr(&db, "min", -1, &res), 0));
	uu_expect_val(&db, "min", "-9223372036854775808");
	cr_assert(eq(int, uu_incr(&db, "min", -1, &res), ENG_EOVERFLOW));
	cr_assert(eq(int, uu_incr(&db, "min", INT64_MIN, &res), ENG_EOVERFLOW));
	uu_expect_val(&db, "min", "-9223372036854775808");

	cr_assert(eq(int, uu_incr(&db, "fresh", INT64_MIN, &res), 0));
	uu_expect_val(&db, "fresh", "-9223372036854775808");
}

/* --- limits ----------------------------------------------------------------------- */

Test(engine_store, key_length_must_be_1_to_1024, .timeout = 5)
{
	char key[ENG_KEY_MAX + 1];
	struct eng_val v;

	memset(key, 'k', sizeof(key));
	cr_assert(eq(int, uu_put_n(&db, key, 0, "v", 1, NULL), -EINVAL));
	cr_assert(eq(int, uu_put_n(&db, key, ENG_KEY_MAX + 1, "v", 1, NULL),
		     -EINVAL));
	cr_assert(eq(int, eng_get(&db, key, 0, &v), -EINVAL));
	cr_assert(eq(int, eng_get(&db, key, ENG_KEY_MAX + 1, &v), -EINVAL));
	cr_assert(eq(int, uu_put_n(&db, key, ENG_KEY_MAX, "v", 1, NULL), 0));
	cr_assert(eq(int, uu_put_n(&db, key, 1, "w", 1, NULL), 0));
	cr_assert(eq(int, eng_get(&db, key, ENG_KEY_MAX, &v), 0));
	cr_assert(eq(int, v.len == 1 && v.data[0] == 'v', 1));
	cr_assert(eq(int, eng_get(&db, key, 1, &v), 0));
	cr_assert(eq(int, v.len == 1 && v.data[0] == 'w', 1));
	cr_assert(eq(u64, eng_cur_table(db.sh)->live, 2));
}

Test(engine_store, value_over_max_is_e2big, .timeout = 5)
{
	char *val = malloc(UU_MAX_VALUE + 1);
	struct eng_val v;

	cr_assert_not_null(val);
	memset(val, 'v', UU_MAX_VALUE + 1);
	cr_assert(eq(int, uu_put_n(&db, "big", 3, val, UU_MAX_VALUE + 1, NULL),
		     -E2BIG));
	cr_assert(eq(int, eng_get(&db, "big", 3, &v), -ENOENT));
	cr_assert(eq(int, uu_put_n(&db, "big", 3, val, UU_MAX_VALUE, NULL), 0),
		  "exactly the limit fits");
	cr_assert(eq(int, eng_get(&db, "big", 3, &v), 0));
	cr_assert(eq(u32, v.len, UU_MAX_VALUE));
	cr_assert(eq(int, memcmp(v.data, val, UU_MAX_VALUE), 0));
	free(val);
}

/* --- failed writes and restarts --------------------------------------------------- */

/* The disk is full when a write reaches the file: the caller hears
 * -ENOSPC, nothing is published, and the key is free for the next try. */
Test(engine_store, failed_write_publishes_nothing, .timeout = 10)
{
	struct eng_recovery rep2;
	pid_t pid;
	int rc;

	cr_assert(eq(int, uu_put(&db, "k", "kept", NULL), 0));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uu_child_init();
		if (eng_db_attach(&db, 1))
			_exit(1);
		uu_child_arm("io.write=enospc");
		if (uu_put(&db, "k", "lost", NULL) != -ENOSPC)
			_exit(2);
		if (uu_put(&db, "new", "lost", NULL) != -ENOSPC)
			_exit(3);
		_exit(UU_CHILD_OK);
	}
	uu_expect_exit_ok(pid, "enospc writer");
	uu_expect_val(&db, "k", "kept");
	uu_expect_val(&db, "new", NULL);
	cr_assert(eq(u64, eng_cur_table(db.sh)->pending, 0), "the new key's slot was freed");
	cr_assert(eq(u64, db.sh->seats[1].inflight.off, 0));
	cr_assert(eq(int, uu_put(&db, "k", "next", NULL), 0), "key not busy");
	cr_assert(eq(int, uu_put(&db, "new", "here", NULL), 0));

	uu_close(&db);
	rc = uu_open(fx.dir, UU_MAX_KEYS, &db, &rep2);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep2.keys, 2));
	uu_expect_val(&db, "k", "next");
	uu_expect_val(&db, "new", "here");
	cr_assert(eq(int, eng_db_attach(&db, 0), 0));
}

Test(engine_store, everything_survives_a_reopen, .timeout = 10)
{
	struct eng_recovery rep2;
	char key[16], val[32];
	int rc;

	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "key%d", i % 50);
		snprintf(val, sizeof(val), "value %d", i);
		cr_assert(eq(int, uu_put(&db, key, val, NULL), 0));
	}
	for (int i = 0; i < 50; i += 3) {
		snprintf(key, sizeof(key), "key%d", i);
		cr_assert(eq(int, uu_del(&db, key, NULL), 0));
	}
	uu_close(&db);
	rc = uu_open(fx.dir, UU_MAX_KEYS, &db, &rep2);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep2.keys, 50 - 17));
	cr_assert(eq(u64, rep2.records, 200 + 17));
	cr_assert(eq(u64, rep2.cut_bytes + rep2.skipped, 0));
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		snprintf(val, sizeof(val), "value %d", 150 + i);
		uu_expect_val(&db, key, i % 3 ? val : NULL);
	}
	cr_assert(eq(int, eng_db_attach(&db, 0), 0));
}

/* --- a pass: many independent writes, one append ------------------------------ */

#define PASS_N 6

Test(engine_store, a_pass_is_independent_writes_in_one_append, .timeout = 5)
{
	struct eng_op ops[PASS_N] = {
		{ .kind = ENG_OP_PUT, .key = "a", .klen = 1, .val = "1", .vlen = 1 },
		/* If-Match on an absent key: refused, the others go on */
		{ .kind = ENG_OP_PUT, .key = "b", .klen = 1, .val = "2", .vlen = 1,
		  .has_if_match = 1, .if_match = 7 },
		{ .kind = ENG_OP_INCR, .key = "n", .klen = 1, .by = 5 },
		/* the same key again: it waits for the next pass */
		{ .kind = ENG_OP_PUT, .key = "a", .klen = 1, .val = "3", .vlen = 1 },
		{ .kind = ENG_OP_DEL, .key = "gone", .klen = 4 },
		{ .kind = ENG_OP_PUT, .key = "c", .klen = 1, .val = "cc", .vlen = 2 },
	};
	const struct eng_op *op[PASS_N];
	struct eng_result r[PASS_N], *res[PASS_N];
	int rcs[PASS_N];
	uint64_t tail = db.sh->tail, writes = db.sh->writes_total, locks = db.mutex_locks;

	for (int i = 0; i < PASS_N; i++) {
		op[i] = &ops[i];
		res[i] = &r[i];
	}
	cr_assert(eq(int, eng_write_pass(&db, op, PASS_N, res, rcs), 0));
	cr_assert(eq(int, rcs[0], 0));
	cr_assert(eq(int, rcs[1], ENG_EPRECOND));
	cr_assert(eq(int, rcs[2], 0));
	cr_assert(eq(i64, r[2].value, 5));
	cr_assert(eq(int, rcs[3], ENG_ENEXTPASS), "%s", eng_strerror(rcs[3]));
	cr_assert(eq(int, rcs[4], -ENOENT));
	cr_assert(eq(int, rcs[5], 0));
	/* three records, one after another in log order, versions in order */
	cr_assert(lt(u64, r[0].version, r[2].version));
	cr_assert(lt(u64, r[2].version, r[5].version));
	cr_assert(eq(u64, r[0].end, tail + eng_rec_size(1, 1)));
	cr_assert(eq(u64, r[2].end, r[0].end + eng_rec_size(1, 1)));
	cr_assert(eq(u64, r[5].end, r[2].end + eng_rec_size(1, 2)));
	cr_assert(eq(u64, db.sh->tail, r[5].end));
	cr_assert(eq(u64, db.sh->writes_total, writes + 3));
	/* one hold to reserve them all, one to publish them all: not two
	 * per write, as six eng_write calls would take */
	cr_assert(eq(u64, db.mutex_locks - locks, 2));
	cr_assert(r[0].created && r[5].created);
	uu_expect_val(&db, "a", "1");
	uu_expect_val(&db, "b", NULL);
	uu_expect_val(&db, "n", "5");
	uu_expect_val(&db, "c", "cc");
	cr_assert(eq(u64, db.sh->seats[0].inflight.off, 0));
	cr_assert(eq(u64, eng_cur_table(db.sh)->pending, 0));
	/* the next pass takes the write that waited */
	cr_assert(eq(int, eng_write_pass(&db, &op[3], 1, &res[3], &rcs[3]), 0));
	cr_assert(eq(int, rcs[3], 0));
	cr_assert(gt(u64, r[3].version, r[5].version));
	uu_expect_val(&db, "a", "3");
}

Test(engine_store, a_pass_checks_each_write_alone, .timeout = 5)
{
	char big[64];
	struct eng_op ops[3] = {
		{ .kind = ENG_OP_PUT, .key = "", .klen = 0, .val = "x", .vlen = 1 },
		{ .kind = ENG_OP_PUT, .key = "ok", .klen = 2, .val = "y", .vlen = 1 },
		{ .kind = ENG_OP_PUT, .key = "big", .klen = 3, .val = big,
		  .vlen = (size_t)db.max_value + 1 },
	};
	const struct eng_op *op[3] = { &ops[0], &ops[1], &ops[2] };
	struct eng_result r[3], *res[3] = { &r[0], &r[1], &r[2] };
	int rcs[3];

	memset(big, 'b', sizeof(big));
	cr_assert(eq(int, eng_write_pass(&db, op, 3, res, rcs), 0));
	cr_assert(eq(int, rcs[0], -EINVAL));
	cr_assert(eq(int, rcs[1], 0));
	cr_assert(eq(int, rcs[2], -E2BIG));
	uu_expect_val(&db, "ok", "y");
}

/* --- one caskd per directory ------------------------------------------------------ */

Test(engine_store, second_open_of_a_directory_is_ebusy, .timeout = 5)
{
	struct eng_db other;
	struct eng_recovery rep2;
	int rc;

	rc = uu_open(fx.dir, UU_MAX_KEYS, &other, &rep2);
	cr_assert(eq(int, rc, -EBUSY), "%s", eng_strerror(rc));
	cr_assert(eq(int, rep2.holder_pid, (int)getpid()));
	/* the first instance is unharmed */
	cr_assert(eq(int, uu_put(&db, "k", "v", NULL), 0));
	uu_expect_val(&db, "k", "v");
}

Test(engine_store, second_open_from_another_process_is_ebusy, .timeout = 10)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uu_child_init();
		struct eng_db other;
		struct eng_recovery rep2;
		int rc = uu_open(fx.dir, UU_MAX_KEYS, &other, &rep2);
		if (rc != -EBUSY)
			_exit(1);
		if (rep2.holder_pid != (int)getppid())
			_exit(2);
		_exit(UU_CHILD_OK);
	}
	uu_expect_exit_ok(pid, "second caskd");
}

Test(engine_store, directory_is_free_again_after_close, .timeout = 5)
{
	struct eng_recovery rep2;
	int rc;

	cr_assert(eq(int, uu_put(&db, "k", "v", NULL), 0));
	uu_close(&db);
	rc = uu_open(fx.dir, UU_MAX_KEYS, &db, &rep2);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	uu_expect_val(&db, "k", "v");
	cr_assert(eq(int, eng_db_attach(&db, 0), 0));
}

/* --- a compaction's new file ----------------------------------------------------- */

/* A compaction leaves zeros prepared ahead of the new file's tail, as the
 * master keeps them ahead of database.bin's: appends after the swap
 * then grow no file, so the first group-commit syncs on the new file
 * commit no metadata. They end on a chunk boundary (the master's next
 * piece starts there), lie past the tail the header names, and a
 * restart reads them as the unused end of the log. */
Test(engine_store, a_compaction_prepares_zeros_ahead_of_the_new_tail, .timeout = 20)
{
	struct eng_recovery rep2;
	struct eng_shared *sh = db.sh;
	char key[16], val[64], buf[4096];
	uint64_t id, tail, zend;
	struct stat st;
	int fd, rc;

	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "key%d", i % 100);
		snprintf(val, sizeof(val), "value %d", i);
		cr_assert(eq(int, uu_put(&db, key, val, NULL), 0));
	}
	cr_assert(eq(int, eng_job_request_compact(&db, &id), 0));
	cr_assert(eq(int, uu_run_job(&db).kind, ENG_JOB_COMPACT));
	cr_assert(eq(int, eng_db_refresh(&db), 0));
	tail = sh->tail;
	zend = sh->zeroed_end;
	cr_assert(gt(u64, zend, tail), "zeroed_end %" PRIu64 ", tail %" PRIu64, zend, tail);
	cr_assert(eq(u64, zend % ENG_CHUNK_BYTES, 0));
	cr_assert(eq(int, stat(db.path, &st), 0));
	cr_assert(ge(u64, (uint64_t)st.st_size, zend));
	fd = open(db.path, O_RDONLY | O_CLOEXEC);
	cr_assert(ge(int, fd, 0));
	for (uint64_t o = tail; o < zend; o += sizeof(buf)) {
		size_t n = zend - o < sizeof(buf) ? zend - o : sizeof(buf);
		cr_assert(eq(i64, pread(fd, buf, n, (off_t)o), (int64_t)n));
		for (size_t i = 0; i < n; i++)
			cr_assert(eq(int, buf[i], 0), "byte %" PRIu64 " past the tail", o + i);
	}
	close(fd);
	/* appends go into them; everything is there after a restart */
	cr_assert(eq(int, uu_put(&db, "after", "the swap", NULL), 0));
	uu_close(&db);
	rc = uu_open(fx.dir, UU_MAX_KEYS, &db, &rep2);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep2.keys, 101));
	cr_assert(eq(u64, rep2.skipped + rep2.dropped, 0));
	/* the zeros left are trimmed as prepared space, not a torn tail */
	cr_assert(rep2.cut_bytes == 0 || rep2.cut_zeros);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		snprintf(val, sizeof(val), "value %d", 1900 + i);
		uu_expect_val(&db, key, val);
	}
	uu_expect_val(&db, "after", "the swap");
	cr_assert(eq(int, eng_db_attach(&db, 0), 0));
}

/* The master prepares zeros while a job runs too (a compaction's
 * appends need them most), but then makes no reserve file (a compaction
 * short of space deleted it for its new file), and it leaves alone what
 * a compaction claimed past the tail to give back. */
Test(engine_store, prezero_while_a_job_runs, .timeout = 20)
{
	struct eng_shared *sh = db.sh;
	char reserve[PATH_MAX];
	uint64_t tail, zend;

	snprintf(reserve, sizeof(reserve), "%s/%s", fx.dir, ENG_RESERVE_FILE);
	cr_assert(eq(int, uu_put(&db, "k", "v", NULL), 0));
	tail = sh->tail;
	zend = sh->zeroed_end;
	/* a compaction's claim (make_room) stands */
	sh->zeroing_from = zend > tail ? zend : tail;
	sh->zeroing_to = sh->zeroing_from + (1u << 20);
	cr_assert(eq(int, eng_db_prezero(&db, 1), 1));
	cr_assert(eq(u64, sh->zeroed_end, zend));
	sh->zeroing_from = sh->zeroing_to = 0;
	/* then zeros, but no reserve while the job runs */
	cr_assert(ge(int, eng_db_prezero(&db, 1), 0));
	cr_assert(gt(u64, sh->zeroed_end, tail));
	cr_assert(eq(int, access(reserve, F_OK), -1));
	cr_assert(ge(int, eng_db_prezero(&db, 0), 0));
	cr_assert(eq(int, access(reserve, F_OK), 0));
}
