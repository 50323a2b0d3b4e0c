/* tests/integration/it_assert.h — Criterion-asserting wrappers around the
 * harness for test bodies: start and stop a daemon with the checks every
 * test makes, and do a request that must get a given status.
 *
 * Every function here asserts (cr_assert) and so aborts the test on
 * failure, printing the exact request and the response it got. Call them
 * from the Criterion test process only, never from a forked client (use
 * it_child_fail() there).
 */
#ifndef CASKD_TESTS_INTEGRATION_IT_ASSERT_H
#define CASKD_TESTS_INTEGRATION_IT_ASSERT_H

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tests/integration/harness.h"

/* Workers every integration daemon runs with. */
#define IT_WORKERS 4

/* Asserts that a harness call returned 0, naming the call and the errno. */
#define IT_OK(expr)                                                        \
	do {                                                               \
		int it_rc_ = (expr);                                       \
		cr_assert_eq(it_rc_, 0, "%s failed: %s (%d)", #expr,       \
			     strerror(it_rc_ < 0 ? -it_rc_ : it_rc_), it_rc_); \
	} while (0)

/* Makes a temp dir (base, removed at teardown), uses base/data as the
 * data dir and starts a 4-worker daemon there with extra args. */
void it_start(struct it_daemon *d, char *base, size_t basen,
	      const char *const *extra);
/* Starts a daemon on dir with CASKD_FAILPOINTS=spec in its environment
 * only (the test process never arms them). */
void it_start_armed(struct it_daemon *d, const char *spec, const char *dir,
		    int workers, const char *const *extra);
/* Starts a 4-worker daemon on an existing data dir (a restart). */
void it_restart(struct it_daemon *d, const char *data_dir,
		const char *const *extra);
/* SIGTERM; asserts exit status 0 and that no process of the daemon's group
 * outlived the master. */
void it_stop_clean(struct it_daemon *d);
/* Asserts no fd opened since it_setup() is still open and every child of
 * the test process was reaped. */
void it_assert_no_leaks(void);

/* Sends one request on a fresh connection; asserts a response came and its
 * status is want. The caller frees r. */
void it_do(int port, const char *method, const char *path, const char *hdrs,
	   const void *body, size_t len, struct it_resp *r, int want);
/* it_do() plus: the response is a JSON error whose code is `code` (any
 * code when NULL). Frees the response. */
void it_expect_error(int port, const char *method, const char *path,
		     const char *hdrs, const void *body, size_t len, int want,
		     const char *code);
/* The same, and the body holds `says` (a name, a phrase of the message). */
void it_expect_error_saying(int port, const char *method, const char *path,
			    const char *hdrs, const void *body, size_t len, int want,
			    const char *code, const char *says);
/* Asserts r carries ETag: "<u64>" and returns the version. */
uint64_t it_version(const struct it_resp *r, const char *what);
/* PUT path=value; asserts 201 or 204 (want; 0 = either) and returns the
 * version from the ETag. */
uint64_t it_put(int port, const char *path, const void *val, size_t len,
		int want);
/* GET path; asserts 200, the exact body, and the version when ver != 0. */
void it_expect_value(int port, const char *path, const void *val, size_t len,
		     uint64_t ver);
/* GET /metrics; asserts 200 and returns the malloc'd text. */
char *it_get_metrics(int port);

/* How long it_job_wait waits for a job to end. */
#define IT_JOB_WAIT_MS 30000
/* Copies the value of "field" in a flat JSON object (a string without its
 * quotes, or a number) into out. 0, -ENOENT, or -ENOSPC. */
int it_json_field(const char *body, const char *field, char *out, size_t n);
/* The number in "field"; asserts it is there. */
uint64_t it_json_u64(const char *body, const char *field);
/* POST /admin/compact with hdrs; asserts 202 and returns the job id. */
uint64_t it_compact_start(int port, const char *hdrs);
/* Polls GET /admin/jobs/{id} until it is neither pending nor running;
 * returns the job's JSON (malloc'd) and its state in state. */
char *it_job_wait(int port, uint64_t id, const char *hdrs, char *state,
		  size_t n);

#endif
