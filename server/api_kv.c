/* server/api_kv.c — /kv/{key} and /incr/{key}: reads, writes, counters.
 *
 * Map: entity tags - reads (answered now, or once the record they show
 * is durable) - writes (on the path every write takes, api_write.h:
 * retried while the key is busy, answered once durable; a refusal that
 * depends on a record not yet durable waits for it too) - the two
 * routes.
 */
#include "server/api_kv.h"

#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/num.h"
#include "engine/record.h"
#include "engine/store.h"
#include "server/api_base.h"
#include "server/api_error.h"
#include "server/api_query.h"
#include "server/api_wait.h"
#include "server/api_write.h"
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
 * 0 if not, -EINVAL if malformed. */
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
			return -EINVAL;
		memcpy(tag, h, n);
		tag[n] = '\0';
		if ((k = parse_etag(tag, &v, &weak)) == TAG_BAD)
			return -EINVAL;
		if (k == TAG_ANY || v == version)
			return 1;
		h += n;
	}
	return 0;
}

/* --- reads ------------------------------------------------------------------- */

struct kv_read {
	struct srv_api *api;
	struct srv_http_req *req;
	struct eng_val v;
	int found;
};

static void release_val(const void *body, size_t len, void *arg)
{
	struct kv_read *rd = arg;

	(void)body;
	(void)len;
	eng_val_release(rd->api->db, &rd->v);
	free(rd);
}

static void answer_read(int rc, void *arg)
{
	struct kv_read *rd = arg;
	struct srv_http_req *req = rd->req;
	const char *inm = srv_http_req_header(req, "If-None-Match");

	if (rc || !rd->found) {
		srv_api_error(rd->api, req, rc ? rc : -ENOENT);
		goto out_free;
	}
	srv_api_set_etag(req, rd->v.version);
	if (inm) {
		int m = none_match(inm, rd->v.version);
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
	srv_http_respond_ref(req, 200, "application/octet-stream", rd->v.data,
			     rd->v.len, release_val, rd);
	return;
out_free:
	eng_val_release(rd->api->db, &rd->v);
	free(rd);
}

static void handle_get(struct srv_api *api, struct srv_http_req *req,
		       const char *key, size_t klen)
{
	struct kv_read *rd = calloc(1, sizeof(*rd));
	int rc;

	if (!rd) {
		srv_api_error(api, req, -ENOMEM);
		return;
	}
	rd->api = api;
	rd->req = req;
	rc = eng_get(api->db, key, klen, &rd->v);
	if (rc == -EBADMSG) {
		/* the table's answer, with the offset an operator needs */
		char msg[160];
		snprintf(msg, sizeof(msg), "the record of this key in database.bin (offset %"
			 PRIu64 ") fails its checksum: damage on disk; run 'caskd check'",
			 rd->v.end);
		const struct srv_api_error_map *e = srv_api_error_find(rc);

		srv_error("GET: %s", msg);
		srv_http_respond_error(req, e->status, e->code, msg);
		free(rd);
		return;
	}
	if (rc && rc != -ENOENT) {
		srv_api_error(api, req, rc);
		free(rd);
		return;
	}
	rd->found = rc == 0;
	rc = srv_api_after_durable(api, rd->v.end, answer_read, rd);
	if (rc <= 0)
		answer_read(rc, rd);
}

/* --- writes ------------------------------------------------------------------ */

/* A write of one key, on the path every write takes (api_write.h). */
struct kv_write {
	struct srv_write w;  /* first: the write path's view of it */
	struct eng_op op;
	struct eng_result res;
	int weak_if_match;   /* If-Match held a weak tag: it never matches */
	char key[ENG_KEY_MAX];
};

static void kv_write_free(struct kv_write *kw)
{
	srv_write_release(&kw->w);
	free(kw);
}

/* 412, saying which condition failed, as check_conditions() in
 * engine/write.c tests them (If-Match first); res.version is the key's
 * version then (0: absent). */
static void precondition_failed(struct kv_write *kw)
{
	const struct eng_op *op = &kw->op;
	uint64_t cur = kw->res.version;
	char msg[192];

	if (op->has_if_match && !cur)
		snprintf(msg, sizeof(msg), "If-Match: the key does not exist; nothing was written");
	else if (op->has_if_match && kw->weak_if_match)
		snprintf(msg, sizeof(msg), "If-Match: a weak tag never matches (the comparison "
			 "is strong); the key's version is %" PRIu64 "; nothing was written", cur);
	else if (op->has_if_match && !op->if_match_any && cur != op->if_match)
		snprintf(msg, sizeof(msg), "If-Match: the key's version is %" PRIu64 ", not %"
			 PRIu64 "; nothing was written", cur, op->if_match);
	else
		snprintf(msg, sizeof(msg), "If-None-Match: *: the key exists (version %" PRIu64
			 "); nothing was written", cur);
	srv_http_respond_error(kw->w.req, 412, "precondition_failed", msg);
}

static void kv_pass_op(struct srv_write *w, const struct eng_op **op,
		       struct eng_result **res)
{
	struct kv_write *kw = (struct kv_write *)w;

	*op = &kw->op;
	*res = &kw->res;
}

/* Refusals read from the index: answered once what they saw is durable. */
static bool kv_is_refusal(int rc)
{
	return rc == ENG_EPRECOND || rc == -ENOENT || rc == ENG_ENOTINT ||
	       rc == ENG_EOVERFLOW;
}

static void kv_answer(struct srv_write *w, int rc)
{
	struct kv_write *kw = (struct kv_write *)w;
	struct srv_http_req *req = w->req;
	char num[ENG_I64_DIGITS_MAX + 1];
	int n;

	if (!rc && w->refused == ENG_EPRECOND) {
		precondition_failed(kw);
		goto out_free;
	}
	if (rc || w->refused) {
		srv_api_error(w->api, req, rc ? rc : w->refused);
		goto out_free;
	}
	srv_api_set_etag(req, kw->res.version);
	switch (kw->op.kind) {
	case ENG_OP_PUT:
		srv_http_respond(req, kw->res.created ? 201 : 204, NULL, NULL, 0);
		break;
	case ENG_OP_DEL:
		srv_http_respond(req, 204, NULL, NULL, 0);
		break;
	case ENG_OP_INCR:
		n = snprintf(num, sizeof(num), "%" PRId64, kw->res.value);
		srv_http_respond(req, 200, "text/plain", num, (size_t)n);
		break;
	}
out_free:
	kv_write_free(kw);
}

static const struct srv_write_ops kv_write_ops = {
	.pass_op = kv_pass_op,
	.is_refusal = kv_is_refusal,
	.answer = kv_answer,
};

/* Fills the conditions of op from If-Match / If-None-Match (*weak: the
 * If-Match tag is weak). 0, or -EINVAL after responding 400. */
static int write_conditions(struct srv_http_req *req, struct eng_op *op, int *weak)
{
	const char *im = srv_http_req_header(req, "If-Match");
	const char *inm = srv_http_req_header(req, "If-None-Match");
	enum tag_kind k;

	if (im) {
		if ((k = parse_etag(im, &op->if_match, weak)) == TAG_BAD) {
			srv_http_respond_error(req, 400, "bad_header",
					       "If-Match must be * or one \"<version>\" tag");
			return -EINVAL;
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
			return -EINVAL;
		}
		op->if_none_match_any = 1;
	}
	return 0;
}

static void start_write(struct srv_api *api, struct srv_http_req *req,
			enum eng_op_kind kind, const char *key, size_t klen,
			int64_t by)
{
	struct kv_write *kw;
	size_t blen;

	if (!(kw = calloc(1, sizeof(*kw)))) {
		srv_api_error(api, req, -ENOMEM);
		return;
	}
	srv_write_init(&kw->w, &kv_write_ops, api, req,
		       kind == ENG_OP_INCR ? SRV_ROUTE_INCR : SRV_ROUTE_KV);
	memcpy(kw->key, key, klen);
	kw->op.kind = kind;
	kw->op.key = kw->key;
	kw->op.klen = klen;
	kw->op.by = by;
	if (kind == ENG_OP_PUT) {
		kw->op.val = srv_http_req_body(req, &blen);
		kw->op.vlen = blen;
	}
	if (write_conditions(req, &kw->op, &kw->weak_if_match) < 0) {
		kv_write_free(kw);
		return;
	}
	srv_write_try(&kw->w);
}

/* --- routes -------------------------------------------------------------------- */

/* Decodes the key after prefix: its length, or -EINVAL after
 * responding 400. */
static long route_key(struct srv_http_req *req, const char *path,
		      size_t prefix, char *key)
{
	long n = srv_pct_decode(path + prefix, strlen(path + prefix), key, ENG_KEY_MAX, 0);

	if (n <= 0) {
		srv_http_respond_error(req, 400, "bad_key",
				       "a key is 1 to 1024 bytes after percent-decoding, without NUL or bad escapes");
		return -EINVAL;
	}
	return n;
}

void srv_api_kv(struct srv_api *api, struct srv_http_req *req, const char *path)
{
	char key[ENG_KEY_MAX];
	enum srv_http_method m = srv_http_req_method(req);
	long klen;

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
