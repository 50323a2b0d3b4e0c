/* server/etcd.h — the few etcd v3 calls a cluster member makes, over
 * etcd's JSON gateway (POST /v3/...), each blocking for at most the
 * call timeout (server/cluster_http.h: never on a worker's loop).
 *
 * Owns: the endpoint list (a failed endpoint makes the next one tried)
 * and the JSON of each call: keys and values go base64 both ways, and
 * 64-bit numbers come back as strings.
 */
#ifndef CASKD_SERVER_ETCD_H
#define CASKD_SERVER_ETCD_H

#include <stddef.h>
#include <stdint.h>

struct srv_cl_http;

#define SRV_ETCD_ENDPOINTS_MAX 8
#define SRV_ETCD_VALUE_MAX 1024

struct srv_etcd {
	struct srv_cl_http *http;
	char url[SRV_ETCD_ENDPOINTS_MAX][128];
	unsigned n, cur;
	int timeout_ms;
	uint64_t revision;   /* the store's revision in the last answer */
	char err[400];       /* why the last call failed */
};

struct srv_etcd_kv {
	char key[256];
	char value[SRV_ETCD_VALUE_MAX];
	size_t vlen;
	uint64_t create_rev, mod_rev, lease;
};

/* urls: "http://h:p,http://h:p". 0 or -EINVAL (err says which). */
int srv_etcd_init(struct srv_etcd *e, struct srv_cl_http *http, const char *urls,
		  int timeout_ms);

/* Each: 0, or -EIO (no endpoint answered; err says why) / -EPROTO (an
 * answer that is not what etcd sends). */
int srv_etcd_lease_grant(struct srv_etcd *e, int ttl_s, uint64_t *id);
/* *ttl: seconds left, 0 if the lease is gone. */
int srv_etcd_lease_keepalive(struct srv_etcd *e, uint64_t id, int64_t *ttl);
int srv_etcd_lease_revoke(struct srv_etcd *e, uint64_t id);
/* 0 and *kv, or -ENOENT. */
int srv_etcd_get(struct srv_etcd *e, const char *key, struct srv_etcd_kv *kv);
/* Every key under prefix, into kvs[0..max): the count. */
int srv_etcd_list(struct srv_etcd *e, const char *prefix, struct srv_etcd_kv *kvs,
		  int max);
int srv_etcd_put(struct srv_etcd *e, const char *key, const char *value,
		 uint64_t lease);
/* Puts key = value with lease only if key does not exist: 1 if it did
 * (then *kv is what is there), 0 if it was created, or -errno. */
int srv_etcd_create(struct srv_etcd *e, const char *key, const char *value,
		    uint64_t lease, struct srv_etcd_kv *kv);
/* The election: if `leader` does not exist and `term` still has
 * mod_revision term_rev (0: does not exist), puts leader = value with
 * lease and term = new_term. 1 if it won, 0 if not, -errno. */
int srv_etcd_campaign(struct srv_etcd *e, const char *leader, const char *value,
		      uint64_t lease, const char *term, uint64_t term_rev,
		      uint64_t new_term);
/* Deletes key if its value is still value (resigning). 0 or -errno. */
int srv_etcd_delete_if(struct srv_etcd *e, const char *key, const char *value);

#endif
