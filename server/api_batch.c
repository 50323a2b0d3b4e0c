/* server/api_batch.c — POST /batch: many keys written all or nothing.
 *
 * The body is parsed by server/batch.c; the engine applies it under one
 * version (engine/write.c: eng_batch) on the path every write takes
 * (api_write.h): retried from the loop while a key it writes is busy,
 * and the 200 comes once an fdatasync covers it (in group mode), as for
 * single writes. A failed check answers 412 naming
 * the key, once the record the check saw is durable.
 */
#include "server/api_batch.h"

#include "engine/errors.h"
#include "engine/record.h"
#include "engine/store.h"
#include "server/api_base.h"
#include "server/api_error.h"
#include "server/api_write.h"
#include "server/batch.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/pct.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX (ENG_KEY_MAX * 3 + 128)

/* A batch, on the path every write takes (api_write.h). */
struct batch_write {
	struct srv_write w;  /* first: the write path's view of it */
	struct srv_batch b;
	struct eng_batch_result res;
};

static void batch_write_free(struct batch_write *bw)
{
	srv_write_release(&bw->w);
	srv_batch_free(&bw->b);
	free(bw);
}

static void precondition_failed(struct batch_write *bw)
{
	const struct eng_batch_op *op = &bw->b.ops[bw->res.failed];
	char msg[MSG_MAX], key[ENG_KEY_MAX * 3 + 1];
	size_t n = srv_pct_encode(op->key, op->klen, key);

	key[n] = '\0';
	snprintf(msg, sizeof(msg), "check failed for key %s (operation %" PRIu32
		 "): its version is not %" PRIu64 "%s; nothing was applied",
		 key, bw->res.failed + 1, op->version,
		 op->version ? "" : " (absent)");
	srv_http_respond_error(bw->w.req, 412, "precondition_failed", msg);
}

static int batch_attempt(struct srv_write *w, uint64_t *seen_end, bool *want_sync)
{
	struct batch_write *bw = (struct batch_write *)w;
	int rc = eng_batch(w->api->db, bw->b.ops, bw->b.n, &bw->res);

	*seen_end = bw->res.seen_end;
	*want_sync = bw->res.want_sync;
	w->version = bw->res.version;
	return rc;
}

/* A failed check: answered once the record it saw is durable. */
static bool batch_is_refusal(int rc)
{
	return rc == ENG_EPRECOND;
}

static void batch_answer(struct srv_write *w, int rc)
{
	struct batch_write *bw = (struct batch_write *)w;
	char body[96];
	int n;

	if (rc == -EINVAL && !w->written) {
		srv_http_respond_error(w->req, 400, "bad_batch", "a key is written twice");
	} else if (rc) {
		srv_api_error(w->api, w->req, rc);
	} else if (w->refused) {
		precondition_failed(bw);
	} else {
		srv_api_set_etag(w->req, bw->res.version);
		n = snprintf(body, sizeof(body), "{\"version\":%" PRIu64 ",\"applied\":%" PRIu32 "}",
			     bw->res.version, bw->res.applied);
		srv_http_respond(w->req, 200, "application/json", body, (size_t)n);
	}
	batch_write_free(bw);
}

static const struct srv_write_ops batch_write_ops = {
	.attempt = batch_attempt,
	.is_refusal = batch_is_refusal,
	.answer = batch_answer,
};

void srv_api_batch(struct srv_api *api, struct srv_http_req *req)
{
	struct batch_write *bw = calloc(1, sizeof(*bw));
	char msg[SRV_BATCH_ERR_MAX + 32];
	const char *body;
	size_t len;
	int rc;

	if (!bw) {
		srv_api_error(api, req, -ENOMEM);
		return;
	}
	srv_write_init(&bw->w, &batch_write_ops, api, req, SRV_ROUTE_BATCH);
	body = srv_http_req_body(req, &len);
	rc = srv_batch_parse(body, len, &bw->b);
	if (rc == -EINVAL) {
		if (bw->b.line)
			snprintf(msg, sizeof(msg), "line %zu: %s", bw->b.line, bw->b.err);
		else
			snprintf(msg, sizeof(msg), "%s", bw->b.err);
		srv_http_respond_error(req, 400, "bad_batch", msg);
		batch_write_free(bw);
		return;
	}
	if (rc == -E2BIG) {
		srv_http_respond_error(req, 413, "batch_too_large", bw->b.err);
		batch_write_free(bw);
		return;
	}
	if (rc) {
		srv_api_error(api, req, rc);
		batch_write_free(bw);
		return;
	}
	srv_write_try(&bw->w);
}
