/* server/api_batch.c — POST /batch: many keys written all or nothing.
 *
 * The body is parsed by server/batch.c; the engine applies it under one
 * version (engine/write.c: eng_batch), retried from the loop while a key
 * it writes is busy, and the 200 comes once an fdatasync covers it (in
 * group mode), as for single writes. A failed check answers 412 naming
 * the key, once the record the check saw is durable.
 */
#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/record.h"
#include "engine/store.h"
#include "server/api_int.h"
#include "server/batch.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/pct.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX (ENG_KEY_MAX * 3 + 128)

struct batch_job {
	struct srv_api *api;
	struct srv_http_req *req;
	struct event *retry;
	struct srv_batch b;
	struct eng_batch_result res;
	uint64_t started_ms;
	struct srv_api_tag tag;
	int tries;
	int refused;
};

static void job_free(struct batch_job *job)
{
	if (job->retry)
		event_free(job->retry);
	srv_batch_free(&job->b);
	free(job);
}

static void precondition_failed(struct batch_job *job)
{
	const struct eng_batch_op *op = &job->b.ops[job->res.failed];
	char msg[MSG_MAX], key[ENG_KEY_MAX * 3 + 1];
	size_t n = srv_pct_encode(op->key, op->klen, key);

	key[n] = '\0';
	snprintf(msg, sizeof(msg), "check failed for key %s (operation %" PRIu32
		 "): its version is not %" PRIu64 "%s; nothing was applied",
		 key, job->res.failed + 1, op->version,
		 op->version ? "" : " (absent)");
	srv_http_respond_error(job->req, 412, "precondition_failed", msg);
}

static void on_durable(int rc, void *arg)
{
	struct batch_job *job = arg;
	char body[96];
	int n;

	if (rc) {
		srv_api_error(job->api, job->req, rc);
	} else if (job->refused) {
		precondition_failed(job);
	} else {
		srv_api_set_etag(job->req, job->res.version);
		n = snprintf(body, sizeof(body), "{\"version\":%" PRIu64 ",\"applied\":%" PRIu32 "}",
			     job->res.version, job->res.applied);
		srv_http_respond(job->req, 200, "application/json", body, (size_t)n);
	}
	job_free(job);
}

static void try_batch(evutil_socket_t fd, short what, void *arg);

static void retry_later(struct batch_job *job)
{
	if (srv_api_retry_later(job->api, &job->retry, job->tries, try_batch, job)) {
		srv_api_error(job->api, job->req, -ENOMEM);
		job_free(job);
	}
}

static void try_batch(evutil_socket_t fd, short what, void *arg)
{
	struct batch_job *job = arg;
	struct srv_api *api = job->api;
	uint64_t locks = api->db->mutex_locks;
	int rc;

	(void)fd;
	(void)what;
	rc = eng_batch(api->db, job->b.ops, job->b.n, &job->res);
	if (what) /* a retry from the timer: the router did not count it */
		srv_api_locks_since(api, &job->tag, locks);
	if (job->res.want_sync)
		srv_api_want_sync(api);
	if (rc == -EAGAIN && srv_api_now_ms(api) - job->started_ms < SRV_BUSY_GIVE_UP_MS) {
		job->tries++;
		retry_later(job);
		return;
	}
	if (rc == ENG_EPRECOND) {
		job->refused = 1;
		rc = srv_api_after_durable(api, job->res.seen_end, on_durable, job);
		if (rc <= 0)
			on_durable(rc, job);
		return;
	}
	if (rc == -EINVAL) {
		srv_http_respond_error(job->req, 400, "bad_batch", "a key is written twice");
		job_free(job);
		return;
	}
	if (rc) {
		srv_api_error(api, job->req, rc);
		job_free(job);
		return;
	}
	rc = srv_api_after_write(api, job->res.version, on_durable, job);
	if (rc)
		on_durable(rc, job);
}

void srv_api_batch(struct srv_api *api, struct srv_http_req *req)
{
	struct batch_job *job = calloc(1, sizeof(*job));
	char msg[SRV_BATCH_ERR_MAX + 32];
	const char *body;
	size_t len;
	int rc;

	if (!job) {
		srv_api_error(api, req, -ENOMEM);
		return;
	}
	job->api = api;
	job->req = req;
	job->started_ms = srv_api_now_ms(api);
	srv_api_tag(req, &job->tag);
	body = srv_http_req_body(req, &len);
	rc = srv_batch_parse(body, len, &job->b);
	if (rc == -EINVAL) {
		if (job->b.line)
			snprintf(msg, sizeof(msg), "line %zu: %s", job->b.line, job->b.err);
		else
			snprintf(msg, sizeof(msg), "%s", job->b.err);
		srv_http_respond_error(req, 400, "bad_batch", msg);
		job_free(job);
		return;
	}
	if (rc == -E2BIG) {
		srv_http_respond_error(req, 413, "batch_too_large", job->b.err);
		job_free(job);
		return;
	}
	if (rc) {
		srv_api_error(api, req, rc);
		job_free(job);
		return;
	}
	try_batch(-1, 0, job);
}
