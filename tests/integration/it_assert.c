/* tests/integration/it_assert.c — the asserting helpers of it_assert.h.
 *
 * Linked into every integration binary (a support file: its name does not
 * start with test_). Runs only in the Criterion test process.
 */
#include "tests/integration/it_assert.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

void it_start(struct it_daemon *d, char *base, size_t basen,
	      const char *const *extra)
{
	char data[300];

	IT_OK(it_tmpdir(base, basen));
	snprintf(data, sizeof(data), "%s/data", base);
	it_restart(d, data, extra);
}

void it_start_armed(struct it_daemon *d, const char *spec, const char *dir,
		    int workers, const char *const *extra)
{
	int rc;

	setenv("CASKD_FAILPOINTS", spec, 1);
	rc = it_daemon_start(d, dir, workers, extra);
	unsetenv("CASKD_FAILPOINTS");
	cr_assert_eq(rc, 0, "caskd with CASKD_FAILPOINTS=%s did not start on %s:"
		     " %s (see log above)", spec, dir, strerror(-rc));
}

void it_restart(struct it_daemon *d, const char *data_dir,
		const char *const *extra)
{
	int rc = it_daemon_start(d, data_dir, IT_WORKERS, extra);

	cr_assert_eq(rc, 0, "caskd did not start on %s: %s (see log above)",
		     data_dir, strerror(-rc));
}

void it_stop_clean(struct it_daemon *d)
{
	int st = it_daemon_stop(d);

	cr_assert(st >= 0, "stopping caskd (pid %d) failed: %s", (int)d->pid,
		  strerror(-st));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		it_daemon_dump_log(d);
	cr_assert(WIFEXITED(st), "caskd killed by signal %d on SIGTERM",
		  WIFSIGNALED(st) ? WTERMSIG(st) : -1);
	cr_assert_eq(WEXITSTATUS(st), 0, "caskd exited %d on SIGTERM, want 0",
		     WEXITSTATUS(st));
	cr_assert_eq(d->stragglers, 0, "processes of caskd's group (pgid %d)"
		     " were still alive after the master exited",
		     (int)d->pid);
}

void it_assert_no_leaks(void)
{
	int delta = it_fd_delta();
	pid_t child = it_unreaped_child();

	cr_assert_eq(delta, 0, "the test leaked %d fds", delta);
	cr_assert_eq(child, 0, "child %d of the test process was not reaped",
		     (int)child);
}

void it_do(int port, const char *method, const char *path, const char *hdrs,
	   const void *body, size_t len, struct it_resp *r, int want)
{
	int rc = it_request(port, method, path, hdrs, body, len, r);

	cr_assert_eq(rc, 0, "%s %.200s (headers: %s): no response: %s",
		     method, path, hdrs ? hdrs : "-", strerror(-rc));
	cr_assert_eq(r->status, want, "%s %.200s (headers: %s): want HTTP %d,"
		     " got %s", method, path, hdrs ? hdrs : "-", want,
		     it_resp_brief(r));
}

void it_expect_error(int port, const char *method, const char *path,
		     const char *hdrs, const void *body, size_t len, int want,
		     const char *code)
{
	it_expect_error_saying(port, method, path, hdrs, body, len, want, code, NULL);
}

void it_expect_error_saying(int port, const char *method, const char *path,
			    const char *hdrs, const void *body, size_t len, int want,
			    const char *code, const char *says)
{
	struct it_resp r;

	it_do(port, method, path, hdrs, body, len, &r, want);
	cr_assert(it_is_json_error(&r, code), "%s %.200s: want JSON error "
		  "{\"error\":\"%s\",\"message\":\"...\"} with Content-Type "
		  "application/json, got %s", method, path,
		  code ? code : "<any>", it_resp_brief(&r));
	cr_assert(!says || strstr(r.body, says), "%s %.200s: the error does not say "
		  "\"%s\": %s", method, path, says, it_resp_brief(&r));
	it_resp_free(&r);
}

uint64_t it_version(const struct it_resp *r, const char *what)
{
	uint64_t v = 0;
	int rc = it_resp_version(r, &v);

	cr_assert_eq(rc, 0, "%s: want ETag: \"<u64>\", got %s", what,
		     it_resp_brief(r));
	return v;
}

uint64_t it_put(int port, const char *path, const void *val, size_t len,
		int want)
{
	struct it_resp r;
	uint64_t v;
	int rc = it_request(port, "PUT", path, NULL, val ? val : "", len, &r);

	cr_assert_eq(rc, 0, "PUT %.200s: no response: %s", path,
		     strerror(-rc));
	if (want)
		cr_assert_eq(r.status, want, "PUT %.200s: want HTTP %d, got %s",
			     path, want, it_resp_brief(&r));
	else
		cr_assert(r.status == 201 || r.status == 204,
			  "PUT %.200s: want HTTP 201 or 204, got %s", path,
			  it_resp_brief(&r));
	cr_assert_eq(r.body_len, 0, "PUT %.200s: %d must have an empty body,"
		     " got %s", path, r.status, it_resp_brief(&r));
	v = it_version(&r, path);
	it_resp_free(&r);
	return v;
}

void it_expect_value(int port, const char *path, const void *val, size_t len,
		     uint64_t ver)
{
	struct it_resp r;

	it_do(port, "GET", path, NULL, NULL, 0, &r, 200);
	cr_assert_eq(r.body_len, len, "GET %.200s: want %zu bytes, got %s",
		     path, len, it_resp_brief(&r));
	cr_assert(memcmp(r.body, val, len) == 0,
		  "GET %.200s: value differs from what was written: %s", path,
		  it_resp_brief(&r));
	if (ver) {
		uint64_t got = it_version(&r, path);

		cr_assert_eq(got, ver, "GET %.200s: want ETag \"%llu\", got %s",
			     path, (unsigned long long)ver, it_resp_brief(&r));
	}
	it_resp_free(&r);
}

char *it_get_metrics(int port)
{
	struct it_resp r;

	it_do(port, "GET", "/metrics", NULL, NULL, 0, &r, 200);
	return r.body;
}

/* --- admin jobs ------------------------------------------------------------ */

/* Pulls "field":"<text>" or "field":<number> out of a flat JSON object. */
int it_json_field(const char *body, const char *field, char *out, size_t n)
{
	char pat[64];
	const char *p;
	size_t len = 0;

	snprintf(pat, sizeof(pat), "\"%s\":", field);
	if (!(p = strstr(body, pat)))
		return -ENOENT;
	p += strlen(pat);
	if (*p == '"') {
		p++;
		while (p[len] && p[len] != '"')
			len++;
	} else {
		while (p[len] && p[len] != ',' && p[len] != '}')
			len++;
	}
	if (len >= n)
		return -ENOSPC;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

uint64_t it_json_u64(const char *body, const char *field)
{
	char buf[32];

	cr_assert_eq(it_json_field(body, field, buf, sizeof(buf)), 0,
		     "no \"%s\" in %s", field, body);
	return strtoull(buf, NULL, 10);
}

/* POST /admin/compact: 202 and the job id. */
uint64_t it_compact_start(int port, const char *hdrs)
{
	struct it_resp r;
	uint64_t id;

	it_do(port, "POST", "/admin/compact", hdrs, "", 0, &r, 202);
	id = it_json_u64(r.body, "job");
	cr_assert_gt(id, 0, "job id in %s", r.body);
	it_resp_free(&r);
	return id;
}

/* Polls the job until it is no longer running; returns its JSON body
 * (malloc'd) and its state in state. */
char *it_job_wait(int port, uint64_t id, const char *hdrs, char *state,
		  size_t n)
{
	int64_t deadline = it_now_ms() + IT_JOB_WAIT_MS;
	char path[64];

	snprintf(path, sizeof(path), "/admin/jobs/%" PRIu64, id);
	for (;;) {
		struct it_resp r;
		char *body;

		it_do(port, "GET", path, hdrs, NULL, 0, &r, 200);
		cr_assert_eq(it_json_field(r.body, "state", state, n), 0,
			     "job without state: %s", r.body);
		cr_assert_eq(it_json_u64(r.body, "id"), id);
		if (strcmp(state, "running") && strcmp(state, "pending")) {
			body = strdup(r.body);
			it_resp_free(&r);
			return body;
		}
		it_resp_free(&r);
		cr_assert_lt(it_now_ms(), deadline, "job %" PRIu64
			     " still running after %d ms", id, IT_JOB_WAIT_MS);
		it_sleep_ms(20);
	}
}
