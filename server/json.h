/* server/json.h — finding one value in a JSON document, for what caskd
 * reads from etcd's gateway and from its peers' /cluster/status.
 *
 * Owns: a strict walk over untrusted JSON (tests/fuzz/fuzz_json.c) that
 * never allocates and never recurses deeper than SRV_JSON_DEPTH_MAX.
 * No document model: each lookup walks the text again, which is fine
 * for the few small answers a cluster agent reads per second.
 */
#ifndef CASKD_SERVER_JSON_H
#define CASKD_SERVER_JSON_H

#include <stddef.h>
#include <stdint.h>

#define SRV_JSON_DEPTH_MAX 32

enum srv_json_type { SRV_JSON_STRING = 1, SRV_JSON_NUMBER, SRV_JSON_BOOL,
		     SRV_JSON_NULL, SRV_JSON_OBJECT, SRV_JSON_ARRAY };

struct srv_json_val {
	enum srv_json_type type;
	const char *p;   /* the token: a string's bytes without the quotes
			  * (escapes left as sent), or the whole object/array */
	size_t len;
};

/* Looks up path in doc[0..n): keys separated by '.', a number indexes
 * an array ("kvs.0.value"); "" is the document. 0 and *v, -ENOENT, or
 * -EINVAL if the document is not valid JSON up to where the walk went. */
int srv_json_get(const char *doc, size_t n, const char *path,
		 struct srv_json_val *v);
/* The same, and the value as a string copied into out (NUL-ended; a
 * string with escapes is refused) or as an unsigned integer (a number,
 * or a string of digits: etcd sends 64-bit numbers as strings). */
int srv_json_str(const char *doc, size_t n, const char *path, char *out, size_t max);
int srv_json_u64(const char *doc, size_t n, const char *path, uint64_t *out);
/* 1 if path is true, 0 if false or absent (etcd leaves false out). */
int srv_json_true(const char *doc, size_t n, const char *path);
/* Writes s[0..n) as a JSON string body (no quotes) into out: its length,
 * or -ENOSPC. */
long srv_json_escape(const char *s, size_t n, char *out, size_t max);

#endif
