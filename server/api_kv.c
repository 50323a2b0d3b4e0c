/* server/api_kv.c — /kv/{key} and /incr/{key}: reads, writes, counters.
 *
 * Map: entity tags - reads (answered now, or once the record they show
 * is durable) - writes (a job: retried while the key is busy, answered
 * once durable; a refusal that depends on a record not yet durable
 * waits for it too) - the two routes.
 */
#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/num.h"
#include "engine/record.h"
#include "engine/store.h"
#include "server/api_int.h"
#include "server/http.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/pct.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_PREFIX_LEN 4   /* "/kv/" */
#define INCR_PREFIX_LEN 6 /* "/incr/" */
#define ALLOW_KV "GET, HEAD, PUT, DELETE"
#define ALLOW_INCR "POST"
#define TAG_MAX 64

/* --- entity tags ------------------------------------------------------------ */

enum tag_kind { TAG_BAD = -1, TAG_VERSION = 0, TAG_ANY = 1 };

/* "123", W/"123" (weak is set) or *. */
static enum tag_kind parse_etag(const char *s, uint64_t *v, int *weak)
{
	char *end;

	*weak = 0;
	if (!strcmp(s, "*"))
		return TAG_ANY;
	if (!strncmp(s, "W/", 2)) {
		*weak = 1;
		s += 2;
	}
	if (s[0] != '"' || s[1] < '0' || s[1] > '9')
		return TAG_BAD;
	errno = 0;
	*v = strtoull(s + 1, &end, 10);
	if (errno || end[0] != '"' || end[1] != '\0')
		return TAG_BAD;
	return TAG_VERSION;
}

/* If-None-Match on a read: 1 if it matches version (so 304), with the
 * weak comparison RFC 9110 13.1.2 prescribes; a list of tags is allowed.
 * -1 if malformed. */
static int none_match(const char *h, uint64_t version)
{
	char tag[TAG_MAX];

	while (*h) {
		size_t n;
		uint64_t v;
		int weak;
		enum tag_kind k;
		while (*h == ' ' || *h == ',')
			h++;
		n = strcspn(h, ",");
		while (n && h[n - 1] == ' ')
			n--;
		if (!n)
			break;
		if (n >= sizeof(tag))
			return -1;
		memcpy(tag, h, n);
		tag[n] = '\0';
		if ((k = parse_etag(tag, &v, &weak)) == TAG_BAD)
			return -1;
		if (k == TAG_ANY || v == version)
			return 1;
		h += n;
	}
	return 0;
}

/* --- reads ------------------------------------------------------------------- */

struct read_job {
	struct srv_api *api;
	struct srv_http_req *req;
	struct eng_val v;
	int found;
};

static void release_val(const void *body, size_t len, void *arg)
{
	struct read_job *job = arg;

	(void)body;
	(void)len;
	eng_val_release(job->api->db, &job->v);
	free(job);
}

static void answer_read(int rc, void *arg)
{
	struct read_job *job = arg;
	struct srv_http_req *req = job->req;
	const char *inm = srv_http_req_header(req, "If-None-Match");

	if (rc || !job->found) {
		srv_api_error(job->api, req, rc ? rc : -ENOENT);
		goto out_free;
	}
	srv_api_set_etag(req, job->v.version);
	if (inm) {
		int m = none_match(inm, job->v.version);
		if (m) {
			if (m < 0)
				srv_http_respond_error(req, 400, "bad_header",
						       "If-None-Match must be * or a list of \"<version>\" tags");
			else
				srv_http_respond(req, 304, NULL, NULL, 0);
			goto out_free;
		}
	}
	/* Straight from the read-only mapping: the bytes of a published
	 * record never change, and the mapping stays until released. */
	srv_http_respond_ref(req, 200, "application/octet-stream", job->v.data,
			     job->v.len, release_val, job);
	return;
out_free:
	eng_val_release(job->api->db, &job->v);
	free(job);
}

static void handle_get(struct srv_api *api, struct srv_http_req *req,
		       const char *key, size_t klen)
{
	struct read_job *job = calloc(1, sizeof(*job));
	int rc;

	if (!job) {
		srv_api_error(api, req, -ENOMEM);
		return;
	}
	job->api = api;
	job->req = req;
	rc = eng_get(api->db, key, klen, &job->v);
	if (rc == -EBADMSG) {
		char msg[160];
		snprintf(msg, sizeof(msg), "the record of this key in database.bin (offset %"
			 PRIu64 ") fails its checksum: damage on disk; run 'caskd check'",
			 job->v.end);
		srv_error("GET: %s", msg);
		srv_http_respond_error(req, 500, "corrupt_record", msg);
		free(job);
		return;
	}
	if (rc && rc != -ENOENT) {
		srv_api_error(api, req, rc);
		free(job);
		return;
	}
	job->found = rc == 0;
	rc = srv_api_after_durable(api, job->v.end, answer_read, job);
	if (rc <= 0)
		answer_read(rc, job);
}

/* --- writes ------------------------------------------------------------------ */

struct write_job {
	struct srv_api *api;
	struct srv_http_req *req;
	struct event *retry;
	struct eng_op op;
	struct eng_result res;
	uint64_t started_ms;
	struct srv_api_tag tag;
	int tries;
	int refused;      /* res holds a refusal waiting to be durable */
	int weak_if_match; /* If-Match held a weak tag: it never matches */
	char key[ENG_KEY_MAX];
};

static void job_free(struct write_job *job)
{
	if (job->retry)
		event_free(job->retry);
	free(job);
}

/* 412, saying which condition failed, as check_conditions() in
 * engine/write.c tests them (If-Match first); res.version is the key's
 * version then (0: absent). */
static void precondition_failed(struct write_job *job)
{
	const struct eng_op *op = &job->op;
	uint64_t cur = job->res.version;
	char msg[192];

	if (op->has_if_match && !cur)
		snprintf(msg, sizeof(msg), "If-Match: the key does not exist; nothing was written");
	else if (op->has_if_match && job->weak_if_match)
		snprintf(msg, sizeof(msg), "If-Match: a weak tag never matches (the comparison "
			 "is strong); the key's version is %" PRIu64 "; nothing was written", cur);
	else if (op->has_if_match && !op->if_match_any && cur != op->if_match)
		snprintf(msg, sizeof(msg), "If-Match: the key's version is %" PRIu64 ", not %"
			 PRIu64 "; nothing was written", cur, op->if_match);
	else
		snprintf(msg, sizeof(msg), "If-None-Match: *: the key exists (version %" PRIu64
			 "); nothing was written", cur);
	srv_http_respond_error(job->req, 412, "precondition_failed", msg);
}

static void on_durable(int rc, void *arg)
{
	struct write_job *job = arg;
	struct srv_http_req *req = job->req;
	char num[ENG_I64_DIGITS_MAX + 1];
	int n;

	if (!rc && job->refused == ENG_EPRECOND) {
		precondition_failed(job);
		goto out_free;
	}
	if (rc || job->refused) {
		srv_api_error(job->api, req, rc ? rc : job->refused);
		goto out_free;
	}
	srv_api_set_etag(req, job->res.version);
	switch (job->op.kind) {
	case ENG_OP_PUT:
		srv_http_respond(req, job->res.created ? 201 : 204, NULL, NULL, 0);
		break;
	case ENG_OP_DEL:
		srv_http_respond(req, 204, NULL, NULL, 0);
		break;
	case ENG_OP_INCR:
		n = snprintf(num, sizeof(num), "%" PRId64, job->res.value);
		srv_http_respond(req, 200, "text/plain", num, (size_t)n);
		break;
	}
out_free:
	job_free(job);
}

static void try_write(evutil_socket_t fd, short what, void *arg);

static void retry_later(struct write_job *job)
{
	if (srv_api_retry_later(job->api, &job->retry, job->tries, try_write, job)) {
		srv_api_error(job->api, job->req, -ENOMEM);
		job_free(job);
	}
}

/* Refusals read from the index: answered once what they saw is durable. */
static int refusal_from_index(int rc)
{
	return rc == ENG_EPRECOND || rc == -ENOENT || rc == ENG_ENOTINT ||
	       rc == ENG_EOVERFLOW;
}

static void try_write(evutil_socket_t fd, short what, void *arg)
{
	struct write_job *job = arg;
	struct srv_api *api = job->api;
	uint64_t locks = api->db->mutex_locks;
	int rc;

	(void)fd;
	(void)what;
	rc = eng_write(api->db, &job->op, &job->res);
	if (what) /* a retry from the timer: the router did not count it */
		srv_api_locks_since(api, &job->tag, locks);
	if (job->res.want_sync)
		srv_api_want_sync(api);
	if (rc == -EAGAIN &&
	    srv_api_now_ms(api) - job->started_ms < SRV_BUSY_GIVE_UP_MS) {
		job->tries++;
		retry_later(job);
		return;
	}
	if (rc && refusal_from_index(rc)) {
		job->refused = rc;
		rc = srv_api_after_durable(api, job->res.seen_end, on_durable, job);
		if (rc <= 0)
			on_durable(rc, job);
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

/* Fills the conditions of op from If-Match / If-None-Match (*weak: the
 * If-Match tag is weak). 0 or -1 after responding 400. */
static int write_conditions(struct srv_http_req *req, struct eng_op *op, int *weak)
{
	const char *im = srv_http_req_header(req, "If-Match");
	const char *inm = srv_http_req_header(req, "If-None-Match");
	enum tag_kind k;

	if (im) {
		if ((k = parse_etag(im, &op->if_match, weak)) == TAG_BAD) {
			srv_http_respond_error(req, 400, "bad_header",
					       "If-Match must be * or one \"<version>\" tag");
			return -1;
		}
		op->has_if_match = 1;
		op->if_match_any = k == TAG_ANY;
		/* RFC 9110 13.1.1: If-Match compares strongly, so a weak tag
		 * never matches. */
		if (*weak)
			op->if_match = 0;
	}
	if (inm) {
		if (strcmp(inm, "*")) {
			srv_http_respond_error(req, 400, "bad_header",
					       "on writes If-None-Match must be *");
			return -1;
		}
		op->if_none_match_any = 1;
	}
	return 0;
}

static void start_write(struct srv_api *api, struct srv_http_req *req,
			enum eng_op_kind kind, const char *key, size_t klen,
			int64_t by)
{
	struct write_job *job;
	size_t blen;

	if (!(job = calloc(1, sizeof(*job)))) {
		srv_api_error(api, req, -ENOMEM);
		return;
	}
	job->api = api;
	job->req = req;
	job->started_ms = srv_api_now_ms(api);
	srv_api_tag(req, &job->tag);
	memcpy(job->key, key, klen);
	job->op.kind = kind;
	job->op.key = job->key;
	job->op.klen = klen;
	job->op.by = by;
	if (kind == ENG_OP_PUT) {
		job->op.val = srv_http_req_body(req, &blen);
		job->op.vlen = blen;
	}
	if (write_conditions(req, &job->op, &job->weak_if_match) < 0) {
		job_free(job);
		return;
	}
	try_write(-1, 0, job);
}

/* --- routes -------------------------------------------------------------------- */

/* Decodes the key after prefix; responds 400 and returns -1 if bad. */
static long route_key(struct srv_http_req *req, const char *path,
		      size_t prefix, char *key)
{
	long n = srv_pct_decode(path + prefix, strlen(path + prefix), key, ENG_KEY_MAX, 0);

	if (n <= 0) {
		srv_http_respond_error(req, 400, "bad_key",
				       "a key is 1 to 1024 bytes after percent-decoding, without NUL or bad escapes");
		return -1;
	}
	return n;
}

void srv_api_kv(struct srv_api *api, struct srv_http_req *req, const char *path)
{
	char key[ENG_KEY_MAX];
	enum srv_http_method m = srv_http_req_method(req);
	long klen;

	if (!srv_api_method_ok(req, ALLOW_KV))
		return;
	if ((klen = route_key(req, path, KV_PREFIX_LEN, key)) < 0)
		return;
	if (m == SRV_HTTP_GET || m == SRV_HTTP_HEAD)
		handle_get(api, req, key, (size_t)klen);
	else
		start_write(api, req, m == SRV_HTTP_PUT ? ENG_OP_PUT : ENG_OP_DEL,
			    key, (size_t)klen, 0);
}

void srv_api_incr(struct srv_api *api, struct srv_http_req *req, const char *path)
{
	static const char *const params[] = SRV_QUERY_INCR;
	char key[ENG_KEY_MAX], by[32];
	int64_t n = 1;
	long klen, r;

	if (!srv_api_method_ok(req, ALLOW_INCR))
		return;
	if ((klen = route_key(req, path, INCR_PREFIX_LEN, key)) < 0 ||
	    srv_api_query_ok(req, params) < 0)
		return;
	r = srv_api_query_param(srv_http_req_query(req), "by", by, sizeof(by));
	if (r == -EINVAL || (r >= 0 && eng_parse_i64(by, (size_t)r, &n) < 0)) {
		srv_http_respond_error(req, 400, "bad_query",
				       "by must be a signed 64-bit decimal integer");
		return;
	}
	start_write(api, req, ENG_OP_INCR, key, (size_t)klen, n);
}
