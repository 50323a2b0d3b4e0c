/* tests/integration/test_pace.c — a compaction that paces itself
 * (--compaction-rate, engine/pace.h), against the real daemon.
 *
 * What must hold: while a paced compaction runs under a light load,
 * GET /admin/jobs/{id} shows its pace, its rate, the rate it is held to,
 * bytes done of the total and the seconds it expects to take still; once
 * it is done the record shows what it made, and every value and every
 * write acknowledged meanwhile is there. How fast anything goes is not
 * asserted (make bench measures it): only that the fields are there and
 * agree with each other.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#define NKEYS 200
#define ROUNDS 10
#define VAL_LEN 4000       /* NKEYS x ROUNDS of them: an 8 MB file */
#define LOAD_WRITES 200    /* the light load's writes, one by one */

static struct it_daemon d;
static char base[256];

static void setup(void) { it_setup(); }
static void teardown(void) { it_teardown(); }
TestSuite(it_pace, .init = setup, .fini = teardown, .timeout = 120);

/* Every key written ROUNDS times: most of the file is garbage. */
static void fill(int port, uint64_t *vers)
{
	char path[64], val[VAL_LEN + 1];

	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < NKEYS; i++) {
			snprintf(path, sizeof(path), "/kv/k%04d", i);
			it_round_value(val, VAL_LEN, i, r);
			vers[i] = it_put(port, path, val, VAL_LEN, 0);
		}
}

static void expect_fill(int port, const uint64_t *vers)
{
	char path[64], val[VAL_LEN + 1];

	for (int i = 0; i < NKEYS; i++) {
		snprintf(path, sizeof(path), "/kv/k%04d", i);
		it_round_value(val, VAL_LEN, i, ROUNDS - 1);
		it_expect_value(port, path, val, VAL_LEN, vers[i]);
	}
}

/* The light load: a client that writes its own keys and reads them back,
 * one request at a time; acked[i] is the version write i got. */
static void load(int port, uint64_t *acked)
{
	char path[64], val[32];

	for (int i = 0; i < LOAD_WRITES; i++) {
		int n = snprintf(val, sizeof(val), "load %d", i);

		snprintf(path, sizeof(path), "/kv/load%03d", i);
		acked[i] = it_put(port, path, val, (size_t)n, 201);
		it_expect_value(port, path, val, (size_t)n, acked[i]);
		it_sleep_ms(10);
	}
}

static pid_t load_start(int port, uint64_t *acked)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		load(port, acked);
		_exit(0);
	}
	return pid;
}

static void load_end(int port, pid_t pid, const uint64_t *acked)
{
	char path[64], val[32];
	int st;

	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the load's client failed");
	for (int i = 0; i < LOAD_WRITES; i++) {
		int n = snprintf(val, sizeof(val), "load %d", i);

		snprintf(path, sizeof(path), "/kv/load%03d", i);
		it_expect_value(port, path, val, (size_t)n, acked[i]);
	}
}

/* GET /admin/jobs/{id}: the body (malloc'd) and its state. */
static char *job_get(int port, uint64_t id, char *state, size_t n)
{
	char path[64], *body;
	struct it_resp r;

	snprintf(path, sizeof(path), "/admin/jobs/%" PRIu64, id);
	it_do(port, "GET", path, NULL, NULL, 0, &r, 200);
	cr_assert_eq(it_json_field(r.body, "state", state, n), 0, "%s", r.body);
	body = strdup(r.body);
	it_resp_free(&r);
	return body;
}

static int is_null(const char *job, const char *field)
{
	char v[32];

	cr_assert_eq(it_json_field(job, field, v, sizeof(v)), 0, "no %s: %s", field, job);
	return !strcmp(v, "null");
}

/* The record of a job that ended well: what it made, nothing left. */
static void expect_done_record(const char *job, const char *pace)
{
	char v[32];

	cr_assert_eq(it_json_field(job, "pace", v, sizeof(v)), 0, "%s", job);
	cr_assert_str_eq(v, pace, "%s", job);
	cr_assert_gt(it_json_u64(job, "rate_bytes_per_s"), 0, "%s", job);
	cr_assert_eq(it_json_u64(job, "bytes_done"), it_json_u64(job, "bytes_total"), "%s", job);
	cr_assert_gt(it_json_u64(job, "bytes_total"), 0, "%s", job);
	cr_assert(is_null(job, "eta_s"), "an ended job expects nothing: %s", job);
	cr_assert(is_null(job, "rate_limit_bytes_per_s"), "%s", job);
}

/* After a job under load: the load's acknowledged writes and every
 * value of the fill are there, and the daemon stops cleanly. */
static void end_under_load(pid_t pid, uint64_t *acked, const uint64_t *vers)
{
	load_end(d.port, pid, acked);
	expect_fill(d.port, vers);
	it_stop_clean(&d);
	it_shared_free(acked, sizeof(uint64_t) * LOAD_WRITES);
	it_assert_no_leaks();
}

Test(it_pace, a_paced_job_shows_its_rate_and_eta_and_keeps_every_value)
{
	static const char *const extra[] = { "--compaction-rate", "4m", NULL };
	uint64_t vers[NKEYS], *acked = it_shared_alloc(sizeof(uint64_t) * LOAD_WRITES), id;
	char state[32], *job, *seen = NULL;
	pid_t pid;

	it_start(&d, base, sizeof(base), extra);
	fill(d.port, vers);
	pid = load_start(d.port, acked);
	id = it_compact_start(d.port, NULL);
	/* 8 MB at 4 MiB/s: about two seconds of running to look at */
	for (;;) {
		job = job_get(d.port, id, state, sizeof(state));
		if (strcmp(state, "running") && strcmp(state, "pending"))
			break;
		if (!strcmp(state, "running") && !is_null(job, "eta_s") && !seen)
			seen = strdup(job);
		free(job);
		it_sleep_ms(50);
	}
	cr_assert_str_eq(state, "done", "%s", job);
	cr_assert_not_null(seen, "no record showed an ETA while the job ran");
	cr_log_info("while running: %s", seen);
	cr_assert_eq(it_json_u64(seen, "rate_limit_bytes_per_s"), 4u << 20, "%s", seen);
	cr_assert_gt(it_json_u64(seen, "bytes_total"), 0, "%s", seen);
	cr_assert_leq(it_json_u64(seen, "bytes_done"), it_json_u64(seen, "bytes_total"), "%s", seen);
	cr_assert(!is_null(seen, "rate_bytes_per_s"), "%s", seen);
	expect_done_record(job, "fixed");
	cr_assert_lt(it_json_u64(job, "bytes_after"), it_json_u64(job, "bytes_before"), "%s", job);
	free(seen);
	free(job);
	end_under_load(pid, acked, vers);
}

Test(it_pace, an_auto_paced_job_under_light_load_ends_with_its_record)
{
	uint64_t vers[NKEYS], *acked = it_shared_alloc(sizeof(uint64_t) * LOAD_WRITES), id;
	char state[32], *job;
	pid_t pid;

	it_start(&d, base, sizeof(base), NULL);
	fill(d.port, vers);
	pid = load_start(d.port, acked);
	id = it_compact_start(d.port, NULL);
	job = it_job_wait(d.port, id, NULL, state, sizeof(state));
	cr_assert_str_eq(state, "done", "%s", job);
	expect_done_record(job, "auto");
	free(job);
	end_under_load(pid, acked, vers);
}

Test(it_pace, compaction_rate_off_runs_unpaced)
{
	static const char *const extra[] = { "--compaction-rate", "off", NULL };
	uint64_t vers[NKEYS], id;
	char state[32], *job;

	it_start(&d, base, sizeof(base), extra);
	fill(d.port, vers);
	id = it_compact_start(d.port, NULL);
	job = it_job_wait(d.port, id, NULL, state, sizeof(state));
	cr_assert_str_eq(state, "done", "%s", job);
	expect_done_record(job, "off");
	free(job);
	expect_fill(d.port, vers);
	it_stop_clean(&d);
	it_assert_no_leaks();
}
