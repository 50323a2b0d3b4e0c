/* server/etcd.c — etcd v3 over its JSON gateway (see etcd.h). */
#include "server/etcd.h"

#include "server/b64.h"
#include "server/cluster_http.h"
#include "server/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX 4096

int srv_etcd_init(struct srv_etcd *e, struct srv_cl_http *http, const char *urls,
		  int timeout_ms)
{
	const char *p = urls;

	memset(e, 0, sizeof(*e));
	e->http = http;
	e->timeout_ms = timeout_ms;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char host[128];
		int port;

		if (e->n == SRV_ETCD_ENDPOINTS_MAX || n == 0 || n >= sizeof(e->url[0])) {
			snprintf(e->err, sizeof(e->err), "--etcd: too many or malformed endpoints");
			return -EINVAL;
		}
		memcpy(e->url[e->n], p, n);
		e->url[e->n][n] = 0;
		if (srv_cl_url_split(e->url[e->n], host, sizeof(host), &port)) {
			snprintf(e->err, sizeof(e->err), "--etcd: %.100s is not http://host:port",
				 e->url[e->n]);
			return -EINVAL;
		}
		e->n++;
		p += n + (comma ? 1 : 0);
	}
	if (!e->n) {
		snprintf(e->err, sizeof(e->err), "--etcd: no endpoint given");
		return -EINVAL;
	}
	return 0;
}

/* POSTs body to path on the current endpoint, then the others. */
static int call(struct srv_etcd *e, const char *path, const char *body,
		struct srv_cl_reply *r)
{
	for (unsigned i = 0; i < e->n; i++) {
		unsigned k = (e->cur + i) % e->n;
		int rc = srv_cl_http_call(e->http, e->url[k], "POST", path, body,
					  strlen(body), e->timeout_ms, r);
		if (rc == 0 && r->status == 200) {
			e->cur = k;
			(void)srv_json_u64(r->body, r->len, "header.revision", &e->revision);
			return 0;
		}
		if (rc == 0 && r->status)
			snprintf(e->err, sizeof(e->err), "%s answered %d to %s: %.80s",
				 e->url[k], r->status, path, r->body ? r->body : "");
		else
			snprintf(e->err, sizeof(e->err), "%s did not answer %s", e->url[k], path);
		srv_cl_reply_free(r);
	}
	return -EIO;
}

static void b64s(const char *s, size_t n, char *out)
{
	out[srv_b64_encode((const unsigned char *)s, n, out)] = 0;
}

/* The kv at JSON path `at` (an object of etcd's KeyValue) into kv. */
static int parse_kv(const char *doc, size_t n, const char *at, struct srv_etcd_kv *kv)
{
	char path[96], b[SRV_ETCD_VALUE_MAX * 4 / 3 + 8];
	ssize_t len;

	memset(kv, 0, sizeof(*kv));
	snprintf(path, sizeof(path), "%s.key", at);
	if (srv_json_str(doc, n, path, b, sizeof(b)) ||
	    (len = srv_b64_decode(b, strlen(b), (unsigned char *)b)) < 0 ||
	    (size_t)len >= sizeof(kv->key))
		return -EPROTO;
	memcpy(kv->key, b, (size_t)len);
	kv->key[len] = 0;
	snprintf(path, sizeof(path), "%s.value", at);
	if (srv_json_str(doc, n, path, b, sizeof(b)) == 0) {
		if ((len = srv_b64_decode(b, strlen(b), (unsigned char *)b)) < 0 ||
		    (size_t)len >= sizeof(kv->value))
			return -EPROTO;
		memcpy(kv->value, b, (size_t)len);
		kv->value[len] = 0;
		kv->vlen = (size_t)len;
	}
	snprintf(path, sizeof(path), "%s.create_revision", at);
	(void)srv_json_u64(doc, n, path, &kv->create_rev);
	snprintf(path, sizeof(path), "%s.mod_revision", at);
	(void)srv_json_u64(doc, n, path, &kv->mod_rev);
	snprintf(path, sizeof(path), "%s.lease", at);
	(void)srv_json_u64(doc, n, path, &kv->lease);
	return 0;
}

int srv_etcd_lease_grant(struct srv_etcd *e, int ttl_s, uint64_t *id)
{
	struct srv_cl_reply r;
	char body[64];
	int rc;

	snprintf(body, sizeof(body), "{\"TTL\":%d}", ttl_s);
	if ((rc = call(e, "/v3/lease/grant", body, &r)))
		return rc;
	rc = srv_json_u64(r.body, r.len, "ID", id) ? -EPROTO : 0;
	srv_cl_reply_free(&r);
	return rc;
}

int srv_etcd_lease_keepalive(struct srv_etcd *e, uint64_t id, int64_t *ttl)
{
	struct srv_cl_reply r;
	char body[64];
	uint64_t t = 0;
	int rc;

	snprintf(body, sizeof(body), "{\"ID\":\"%" PRIu64 "\"}", id);
	if ((rc = call(e, "/v3/lease/keepalive", body, &r)))
		return rc;
	/* a lease that is gone comes back without TTL */
	(void)srv_json_u64(r.body, r.len, "result.TTL", &t);
	*ttl = (int64_t)t;
	srv_cl_reply_free(&r);
	return 0;
}

int srv_etcd_lease_revoke(struct srv_etcd *e, uint64_t id)
{
	struct srv_cl_reply r;
	char body[64];
	int rc;

	snprintf(body, sizeof(body), "{\"ID\":\"%" PRIu64 "\"}", id);
	if ((rc = call(e, "/v3/lease/revoke", body, &r)))
		return rc;
	srv_cl_reply_free(&r);
	return 0;
}

int srv_etcd_get(struct srv_etcd *e, const char *key, struct srv_etcd_kv *kv)
{
	struct srv_cl_reply r;
	char body[BODY_MAX], k[400];
	int rc;

	if (strlen(key) > 256)
		return -EINVAL;
	b64s(key, strlen(key), k);
	snprintf(body, sizeof(body), "{\"key\":\"%s\"}", k);
	if ((rc = call(e, "/v3/kv/range", body, &r)))
		return rc;
	rc = parse_kv(r.body, r.len, "kvs.0", kv);
	if (rc) {
		struct srv_json_val v;
		rc = srv_json_get(r.body, r.len, "kvs", &v) == -ENOENT ? -ENOENT : rc;
	}
	srv_cl_reply_free(&r);
	return rc;
}

int srv_etcd_list(struct srv_etcd *e, const char *prefix, struct srv_etcd_kv *kvs,
		  int max)
{
	struct srv_cl_reply r;
	char body[BODY_MAX], k[400], end[400], endkey[260];
	size_t n = strlen(prefix);
	int rc, count = 0;

	if (n == 0 || n > 256)
		return -EINVAL;
	memcpy(endkey, prefix, n);
	endkey[n - 1]++; /* the range end: the prefix with its last byte + 1 */
	b64s(prefix, n, k);
	b64s(endkey, n, end);
	snprintf(body, sizeof(body), "{\"key\":\"%s\",\"range_end\":\"%s\"}", k, end);
	if ((rc = call(e, "/v3/kv/range", body, &r)))
		return rc;
	for (; count < max; count++) {
		char at[32];
		snprintf(at, sizeof(at), "kvs.%d", count);
		if (parse_kv(r.body, r.len, at, &kvs[count]))
			break;
	}
	srv_cl_reply_free(&r);
	return count;
}

static int put_json(char *out, size_t n, const char *key, const char *value,
		    uint64_t lease)
{
	char k[400], v[SRV_ETCD_VALUE_MAX * 4 / 3 + 8];
	int w;

	if (strlen(key) > 256 || strlen(value) >= SRV_ETCD_VALUE_MAX)
		return -EINVAL;
	b64s(key, strlen(key), k);
	b64s(value, strlen(value), v);
	if (lease)
		w = snprintf(out, n, "{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"%" PRIu64 "\"}",
			     k, v, lease);
	else
		w = snprintf(out, n, "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
	return w < 0 || (size_t)w >= n ? -ENOSPC : 0;
}

int srv_etcd_put(struct srv_etcd *e, const char *key, const char *value,
		 uint64_t lease)
{
	struct srv_cl_reply r;
	char body[BODY_MAX];
	int rc;

	if ((rc = put_json(body, sizeof(body), key, value, lease)))
		return rc;
	if ((rc = call(e, "/v3/kv/put", body, &r)))
		return rc;
	srv_cl_reply_free(&r);
	return 0;
}

int srv_etcd_create(struct srv_etcd *e, const char *key, const char *value,
		    uint64_t lease, struct srv_etcd_kv *kv)
{
	struct srv_cl_reply r;
	char body[BODY_MAX * 2], put[BODY_MAX], k[400];
	int rc;

	if ((rc = put_json(put, sizeof(put), key, value, lease)))
		return rc;
	b64s(key, strlen(key), k);
	snprintf(body, sizeof(body),
		 "{\"compare\":[{\"target\":\"CREATE\",\"key\":\"%s\",\"create_revision\":\"0\"}],"
		 "\"success\":[{\"request_put\":%s}],"
		 "\"failure\":[{\"request_range\":{\"key\":\"%s\"}}]}", k, put, k);
	if ((rc = call(e, "/v3/kv/txn", body, &r)))
		return rc;
	if (srv_json_true(r.body, r.len, "succeeded"))
		rc = 0;
	else
		rc = parse_kv(r.body, r.len, "responses.0.response_range.kvs.0", kv) ? -EPROTO : 1;
	srv_cl_reply_free(&r);
	return rc;
}

int srv_etcd_campaign(struct srv_etcd *e, const char *leader, const char *value,
		      uint64_t lease, const char *term, uint64_t term_rev,
		      uint64_t new_term)
{
	struct srv_cl_reply r;
	char body[BODY_MAX * 3], put1[BODY_MAX], put2[BODY_MAX], kl[400], kt[400], tv[24];
	int rc;

	snprintf(tv, sizeof(tv), "%" PRIu64, new_term);
	if ((rc = put_json(put1, sizeof(put1), leader, value, lease)) ||
	    (rc = put_json(put2, sizeof(put2), term, tv, 0)))
		return rc;
	b64s(leader, strlen(leader), kl);
	b64s(term, strlen(term), kt);
	snprintf(body, sizeof(body),
		 "{\"compare\":[{\"target\":\"CREATE\",\"key\":\"%s\",\"create_revision\":\"0\"},"
		 "{\"target\":\"MOD\",\"key\":\"%s\",\"mod_revision\":\"%" PRIu64 "\"}],"
		 "\"success\":[{\"request_put\":%s},{\"request_put\":%s}]}",
		 kl, kt, term_rev, put1, put2);
	if ((rc = call(e, "/v3/kv/txn", body, &r)))
		return rc;
	rc = srv_json_true(r.body, r.len, "succeeded");
	srv_cl_reply_free(&r);
	return rc;
}

int srv_etcd_delete_if(struct srv_etcd *e, const char *key, const char *value)
{
	struct srv_cl_reply r;
	char body[BODY_MAX * 2], k[400], v[SRV_ETCD_VALUE_MAX * 4 / 3 + 8];
	int rc;

	if (strlen(key) > 256 || strlen(value) >= SRV_ETCD_VALUE_MAX)
		return -EINVAL;
	b64s(key, strlen(key), k);
	b64s(value, strlen(value), v);
	snprintf(body, sizeof(body),
		 "{\"compare\":[{\"target\":\"VALUE\",\"key\":\"%s\",\"value\":\"%s\"}],"
		 "\"success\":[{\"request_delete_range\":{\"key\":\"%s\"}}]}", k, v, k);
	if ((rc = call(e, "/v3/kv/txn", body, &r)))
		return rc;
	srv_cl_reply_free(&r);
	return 0;
}
