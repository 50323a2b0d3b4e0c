/* tests/cluster/test_checker.c — the checker against synthetic histories:
 * it passes what a correct group may answer and fails each broken promise
 * (a lost acknowledged write, a stale read, a version with two values,
 * an incr outside its bounds, members that differ), quoting the history. */
#include "tests/cluster/checker.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct run {
	struct ckc_history *h;
	struct ckc_dump *d[3];
	int nd;
	struct ckc_result res;
};

static void check(struct run *r, const char *hist, const char *const *dumps,
		  int nd, long step_limit)
{
	struct ckc_opts o = { .step_limit = step_limit };
	char err[256] = "";

	cr_assert_eq(ckc_history_parse(hist, &r->h, err, sizeof(err)), 0, "%s", err);
	r->nd = nd;
	for (int i = 0; i < nd; i++) {
		char name[8];

		snprintf(name, sizeof(name), "n%d", i + 1);
		cr_assert_eq(ckc_dump_parse(dumps[i], name, &r->d[i], err,
					    sizeof(err)), 0, "%s", err);
	}
	cr_assert_eq(ckc_check(r->h, r->d, nd, &o, &r->res), 0);
}

static void done(struct run *r)
{
	ckc_result_free(&r->res);
	for (int i = 0; i < r->nd; i++)
		ckc_dump_free(r->d[i]);
	ckc_history_free(r->h);
}

#define SAME3(x) (const char *const[]){ x, x, x }

/* Two writers and readers overlapping; a timed-out write that did apply;
 * a CAS on a version read before; a 307 that never applied. */
static const char good[] =
	"I 1 0 100 put r0 a -\n"
	"I 2 1 110 put r0 b -\n"
	"C 1 200 ok 201 5 -\n"
	"I 3 2 205 get r0 - -\n"
	"C 2 300 ok 204 6 -\n"
	"C 3 310 ok 200 5 a\n" /* read concurrent with b: a is fine */
	"I 4 0 400 get r0 - -\n"
	"C 4 410 ok 200 6 b\n"
	"I 5 0 500 cas r0 c 6\n"
	"C 5 510 ok 204 7 -\n"
	"I 6 1 600 put r0 d -\n"
	"C 6 3600 info 0 - -\n"     /* timeout, applied after all */
	"I 7 2 700 put r0 never -\n"
	"C 7 710 fail 307 - -\n"
	"I 8 2 800 put r0 lost -\n" /* timed out, never applied, never seen */
	"C 8 3800 info 0 - -\n"
	"I 9 0 900 cas r0 e 6\n"
	"C 9 910 ok 412 - -\n"
	"I 10 0 1000 get r0 - -\n"
	"C 10 1010 ok 200 9 d\n"
	"I 11 1 1100 incr c0 1 -\n"
	"C 11 1110 ok 200 10 1\n"
	"I 12 1 1200 incr c0 1 -\n"
	"C 12 4200 info 0 - -\n"
	"I 13 2 1300 batch r1,r0 x,y -\n"
	"C 13 1310 ok 200 11 -\n"
	"I 14 0 1400 get r1 - -\n"
	"C 14 1410 ok 200 11 x\n"
	"I 15 0 1500 get r2 - -\n"
	"C 15 1510 ok 404 - -\n";
static const char good_dump[] =
	"K c0 10 1\n"
	"K r0 11 y\n"
	"K r1 11 x\n";

Test(cluster_checker, passes_a_linearizable_history)
{
	struct run r = { 0 };

	check(&r, good, SAME3(good_dump), 3, 0);
	cr_expect_eq(r.res.failures, 0, "%s", r.res.report);
	cr_expect_eq(r.res.unknown, 0, "%s", r.res.report);
	cr_expect_eq(r.res.acked, 9);
	cr_expect_eq(r.res.indeterminate, 3);
	done(&r);
}

Test(cluster_checker, passes_an_empty_history)
{
	struct run r = { 0 };

	check(&r, "# nothing happened\n", SAME3(""), 3, 0);
	cr_expect_eq(r.res.failures, 0, "%s", r.res.report);
	done(&r);
}

Test(cluster_checker, fails_a_lost_acknowledged_write)
{
	static const char h[] =
		"I 1 0 100 put r0 a -\n"
		"C 1 200 ok 201 5 -\n"
		"I 2 1 300 put r0 b -\n"
		"C 2 400 ok 204 6 -\n";
	struct run r = { 0 };

	check(&r, h, SAME3("K r0 5 a\n"), 3, 0);
	cr_expect_gt(r.res.failures, 0);
	cr_expect(strstr(r.res.report, "FAIL (a) key r0 on n1: acknowledged write lost"),
		  "%s", r.res.report);
	cr_expect(strstr(r.res.report, "C 2 400 ok 204 6 -"),
		  "the report quotes the lost write: %s", r.res.report);
	done(&r);
}

Test(cluster_checker, fails_a_write_lost_on_every_member_as_absent_key)
{
	static const char h[] =
		"I 1 0 100 put r3 a -\n"
		"C 1 200 ok 201 5 -\n";
	struct run r = { 0 };

	check(&r, h, SAME3(""), 3, 0);
	cr_expect(strstr(r.res.report, "nothing (key absent)"), "%s", r.res.report);
	done(&r);
}

Test(cluster_checker, fails_a_stale_read_after_an_acknowledged_write)
{
	static const char h[] =
		"I 1 0 100 put r0 a -\n"
		"C 1 200 ok 201 5 -\n"
		"I 2 0 300 put r0 b -\n"
		"C 2 400 ok 204 6 -\n"
		"I 3 1 500 get r0 - -\n" /* begins after b was acknowledged */
		"C 3 600 ok 200 5 a\n";
	struct run r = { 0 };

	check(&r, h, SAME3("K r0 6 b\n"), 3, 0);
	cr_expect_eq(r.res.failures, 1, "%s", r.res.report);
	cr_expect(strstr(r.res.report, "FAIL (b) key r0: not linearizable"),
		  "%s", r.res.report);
	cr_expect(strstr(r.res.report, ">> op 3"), "%s", r.res.report);
	done(&r);
}

Test(cluster_checker, fails_a_read_of_a_write_that_failed_for_sure)
{
	static const char h[] =
		"I 1 0 100 put r0 a -\n"
		"C 1 200 ok 201 5 -\n"
		"I 2 0 300 put r0 b -\n"
		"C 2 400 fail 503 - -\n" /* not_primary: never applied */
		"I 3 1 500 get r0 - -\n"
		"C 3 600 ok 200 6 b\n";
	struct run r = { 0 };

	check(&r, h, NULL, 0, 0);
	cr_expect_gt(r.res.failures, 0, "%s", r.res.report);
	done(&r);
}

Test(cluster_checker, fails_a_version_with_two_values)
{
	static const char h[] =
		"I 1 0 100 put r0 a -\n"
		"C 1 200 ok 201 5 -\n"
		"I 2 1 150 put r1 b -\n"
		"C 2 250 ok 201 7 -\n";
	struct run r = { 0 };

	/* n2 holds version 5 of r0 with another value. */
	check(&r, h, (const char *const[]){ "K r0 5 a\nK r1 7 b\n",
					    "K r0 5 zz\nK r1 7 b\n",
					    "K r0 5 a\nK r1 7 b\n" }, 3, 0);
	cr_expect(strstr(r.res.report, "FAIL (c) key r0 version 5 names two values"),
		  "%s", r.res.report);
	cr_expect(strstr(r.res.report, "FAIL (e) n1 and n2 did not converge"),
		  "%s", r.res.report);
	done(&r);
}

Test(cluster_checker, fails_one_version_given_to_two_writes)
{
	static const char h[] =
		"I 1 0 100 put r0 a -\n"
		"C 1 200 ok 201 5 -\n"
		"I 2 1 150 put r1 b -\n"
		"C 2 250 ok 201 5 -\n";
	struct run r = { 0 };

	check(&r, h, NULL, 0, 0);
	cr_expect(strstr(r.res.report, "acknowledged to two different writes"),
		  "%s", r.res.report);
	done(&r);
}

Test(cluster_checker, fails_an_incr_total_out_of_bounds)
{
	static const char h[] =
		"I 1 0 100 incr c0 1 -\n"
		"C 1 200 ok 200 5 1\n"
		"I 2 0 300 incr c0 1 -\n"
		"C 2 400 ok 200 6 2\n"
		"I 3 0 500 incr c0 1 -\n"
		"C 3 600 info 0 - -\n";
	struct run r = { 0 };

	check(&r, h, SAME3("K c0 6 2\n"), 3, 0);
	cr_expect_eq(r.res.failures, 0, "in bounds: %s", r.res.report);
	ckc_result_free(&r.res);
	cr_assert_eq(ckc_check(r.h, r.d, 0, NULL, &r.res), 0);
	done(&r);

	memset(&r, 0, sizeof(r));
	check(&r, h, SAME3("K c0 6 1\n"), 3, 0);
	cr_expect(strstr(r.res.report, "FAIL (d) counter c0 on n1: final value 1"),
		  "lost increment: %s", r.res.report);
	done(&r);

	memset(&r, 0, sizeof(r));
	check(&r, h, SAME3("K c0 9 4\n"), 3, 0);
	cr_expect(strstr(r.res.report, "FAIL (d) counter c0"),
		  "increment out of nowhere: %s", r.res.report);
	done(&r);
}

Test(cluster_checker, fails_a_cas_that_succeeded_on_a_stale_version)
{
	static const char h[] =
		"I 1 0 100 put r0 a -\n"
		"C 1 200 ok 201 5 -\n"
		"I 2 0 300 put r0 b -\n"
		"C 2 400 ok 204 6 -\n"
		"I 3 1 500 cas r0 c 5\n" /* If-Match 5, but 6 is current */
		"C 3 600 ok 204 7 -\n";
	struct run r = { 0 };

	check(&r, h, SAME3("K r0 7 c\n"), 3, 0);
	cr_expect(strstr(r.res.report, "FAIL (b) key r0"), "%s", r.res.report);
	done(&r);
}

Test(cluster_checker, an_indeterminate_write_may_apply_late_but_not_early)
{
	/* b timed out; a read before b was invoked cannot see it. */
	static const char h[] =
		"I 1 0 100 put r0 a -\n"
		"C 1 200 ok 201 5 -\n"
		"I 3 1 250 get r0 - -\n"
		"C 3 260 ok 200 6 b\n"
		"I 2 0 300 put r0 b -\n"
		"C 2 400 info 0 - -\n";
	struct run r = { 0 };

	check(&r, h, NULL, 0, 0);
	cr_expect(strstr(r.res.report, "FAIL (b) key r0"), "%s", r.res.report);
	done(&r);
}

/* Many concurrent open writes whose values are all read: the search must
 * answer (unknown at worst) within its step limit, never hang. */
Test(cluster_checker, gives_up_as_unknown_at_the_step_limit, .timeout = 20)
{
	char *h = malloc(1 << 20), *p = h;
	struct run r = { 0 };
	int n = 24;

	for (int i = 0; i < n; i++)
		p += sprintf(p, "I %d %d %d put r0 v%d -\nC %d %d info 0 - -\n",
			     i + 1, i, 100 + i, i, i + 1, 5000 + i);
	for (int i = 0; i < n; i++)
		p += sprintf(p, "I %d %d %d get r0 - -\nC %d %d ok 200 - v%d\n",
			     n + i + 1, i, 200 + i, n + i + 1, 6000 + i,
			     (i * 7) % n);
	check(&r, h, NULL, 0, 2000);
	cr_expect(r.res.unknown == 1 || r.res.failures == 0, "%s", r.res.report);
	done(&r);
	free(h);
}

/* CLUSTER.md: a replica may answer a read with older data, saying so. */
Test(cluster_checker, a_stale_replica_read_is_allowed_a_wrong_one_is_not)
{
	static const char h[] =
		"I 1 0 100 put r0 a -\n"
		"C 1 200 ok 201 5 -\n"
		"I 2 0 300 put r0 b -\n"
		"C 2 400 ok 204 6 -\n"
		"I 3 1 500 get r0 - -\n"
		"C 3 600 stale 200 5 a\n";
	static const char wrong[] =
		"I 1 0 100 put r0 a -\n"
		"C 1 200 ok 201 5 -\n"
		"I 3 1 500 get r0 - -\n"
		"C 3 600 stale 200 5 zz\n";
	struct run r = { 0 };

	check(&r, h, SAME3("K r0 6 b\n"), 3, 0);
	cr_expect_eq(r.res.failures, 0, "%s", r.res.report);
	cr_expect_eq(r.res.stale, 1);
	done(&r);
	memset(&r, 0, sizeof(r));
	check(&r, wrong, SAME3("K r0 5 a\n"), 3, 0);
	cr_expect(strstr(r.res.report, "FAIL (c) key r0 version 5 names two values"),
		  "%s", r.res.report);
	done(&r);
}

Test(cluster_checker, outage_is_the_longest_stretch_without_an_acknowledged_write)
{
	static const char h[] =
		"I 1 0 100 put r0 a -\nC 1 110 ok 201 5 -\n"
		"I 2 0 200 put r0 b -\nC 2 210 ok 204 6 -\n"
		"I 3 0 300 put r0 c -\nC 3 5300 ok 204 7 -\n"  /* waited 5 s */
		"I 4 0 5400 get r0 - -\nC 4 5410 ok 200 7 c\n"   /* reads don't count */
		"I 5 0 9000 put r0 d -\nC 5 9010 ok 204 8 -\n"
		"I 6 0 9100 put r0 e -\nC 6 9110 info 0 - -\n";
	int64_t faults[] = { 150, 9005 }, out[2];
	int cens[2];
	struct ckc_history *hist;
	char err[128];

	cr_assert_eq(ckc_history_parse(h, &hist, err, sizeof(err)), 0, "%s", err);
	ckc_outages(hist, faults, 2, 20000, out, cens);
	cr_expect_eq(out[0], 5300 - 210, "got %ld", (long)out[0]);
	cr_expect_eq(cens[0], 0);
	cr_expect_eq(out[1], 20000 - 9010, "no write after the second fault: %ld", (long)out[1]);
	cr_expect_eq(cens[1], 1);
	ckc_history_free(hist);
}
