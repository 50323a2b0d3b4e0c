/* tests/integration/test_keys_batch.c — the contract of GET /keys and
 * POST /batch (HTTP-API.md "Endpoints", "Batch body"; docs/http-api.md)
 * against the real daemon.
 *
 * Each test starts its own 4-worker caskd in a fresh temp dir and stops it
 * with SIGTERM (exit status 0, no leaked fd, no unreaped child). Keys are
 * byte strings here: requests percent-encode every byte but the unreserved
 * ones, and listings are decoded before they are compared, so the tests
 * hold the daemon to the bytes, not to one spelling of them.
 *
 * The two concurrency drills run forked clients (it_fork_clients) with
 * bounded loops: a pager that lists while a writer creates and deletes
 * other keys (enough to make the index grow and to run compactions), and
 * readers that watch two keys a writer updates together by batches.
 * Children report through MAP_SHARED memory and it_child_fail(). The
 * crash tests restart on the same data dir after SIGTERM, and after
 * SIGKILL of every process both right after a 200 and in mid-batch.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

/* Contract limits. */
#define KEY_MAX 1024
#define LIMIT_DEFAULT 1000
#define LIMIT_MAX 100000
#define BATCH_OPS_MAX 10000
/* --max-batch-size of the size-limit test. */
#define SMALL_BATCH 4096
/* The listing drill: keys that exist for the whole drill, pages, rounds. */
#define STABLE_KEYS 500
#define PAGE_LIMIT 61
#define PAGER_PASSES 5
#define ROUND_KEYS 1000  /* transient keys a writer round creates */
#define ROUNDS_LIVE 12   /* rounds kept before deleting: ~12500 keys, so the
			  * 16384-slot table grows past 70 % */
#define WRITER_ROUNDS_MAX 300
#define PAGES_PER_PASS_MAX 5000
/* The atomicity drill. */
#define PAIR_BATCHES 300
#define PAIR_READS_MAX 4000
#define PAIR_READERS 2

TestSuite(it_keys_batch, .init = it_setup, .fini = it_teardown);

static struct it_daemon d;
static char base[64];

static void start(const char *const *extra)
{
	it_start(&d, base, sizeof(base), extra);
}

static void finish(void)
{
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* ---- bytes, escapes ------------------------------------------------------ */

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* Encodes every byte but the unreserved ones; out has room for 3n + 1. */
static char *enc(const void *s, size_t n, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = s;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (unreserved(p[i])) {
			out[o++] = (char)p[i];
		} else {
			out[o++] = '%';
			out[o++] = hex[p[i] >> 4];
			out[o++] = hex[p[i] & 15];
		}
	}
	out[o] = '\0';
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes a listed line into out (room for strlen(s)); the length, or -1
 * if the line holds a bad escape or a byte docs/http-api.md says is
 * always escaped in a listing (anything but A-Z a-z 0-9 - . _ ~ /). */
static long dec(const char *s, char *out)
{
	size_t o = 0;

	for (size_t i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi = hexval(s[i + 1]), lo = hi < 0 ? -1 : hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (unreserved(c) || c == '/') {
			out[o++] = (char)c;
		} else {
			return -1;
		}
	}
	return (long)o;
}

static int bcmp_keys(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

/* ---- a growable text buffer (batch bodies, digests) ----------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const void *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char tmp[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		abort();
	sb_add(b, tmp, (size_t)n);
}

/* Appends "<op> <enc key>[ <enc val>]\n". */
static void sb_op(struct sbuf *b, const char *op, const void *key, size_t klen,
		  const void *val, size_t vlen)
{
	char *e = malloc(3 * (klen > vlen ? klen : vlen) + 1);

	if (!e)
		abort();
	sb_printf(b, "%s ", op);
	enc(key, klen, e);
	sb_add(b, e, strlen(e));
	if (val) {
		enc(val, vlen, e);
		sb_add(b, " ", 1);
		sb_add(b, e, strlen(e));
	}
	sb_add(b, "\n", 1);
	free(e);
}

static void sb_free(struct sbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- /keys pages ------------------------------------------------------------ */

struct page {
	char *body;    /* owned; lines are NUL-terminated in place */
	char **lines;  /* as listed (percent-encoded) */
	size_t n;
	int truncated;
};

static void page_free(struct page *pg)
{
	free(pg->body);
	free(pg->lines);
	memset(pg, 0, sizeof(*pg));
}

/* GET /keys?query: 0 and the page, or -1 and why in err. Safe in a client
 * child (no Criterion). */
static int get_page(struct it_conn *c, int port, const char *query,
		    struct page *pg, char *err, size_t errn)
{
	char path[4 * KEY_MAX + 128];
	struct it_resp r;
	const char *ct, *tr;
	int rc;

	memset(pg, 0, sizeof(*pg));
	snprintf(path, sizeof(path), "/keys%s%s", query && *query ? "?" : "",
		 query ? query : "");
	rc = c ? it_conn_request(c, "GET", path, NULL, NULL, 0, &r)
	       : it_request(port, "GET", path, NULL, NULL, 0, &r);
	if (rc < 0) {
		snprintf(err, errn, "GET %.300s: no response: %s", path, strerror(-rc));
		return -1;
	}
	ct = it_resp_header(&r, "Content-Type");
	tr = it_resp_header(&r, "X-Truncated");
	if (r.status != 200 || !ct || strncmp(ct, "text/plain", 10) ||
	    (tr && strcmp(tr, "true")) ||
	    (r.body_len && r.body[r.body_len - 1] != '\n') ||
	    (r.body_len && memchr(r.body, 0, r.body_len))) {
		snprintf(err, errn, "GET %.300s: want 200 text/plain, one key per "
			 "line, X-Truncated absent or true: %s", path, it_resp_brief(&r));
		it_resp_free(&r);
		return -1;
	}
	pg->truncated = tr != NULL;
	pg->body = r.body;
	r.body = NULL;
	it_resp_free(&r);
	for (size_t i = 0, n = pg->body ? strlen(pg->body) : 0; i < n;) {
		char *nl = strchr(pg->body + i, '\n');
		if (nl == pg->body + i) {
			snprintf(err, errn, "GET %.300s: an empty line in the listing", path);
			return -1;
		}
		*nl = '\0';
		pg->lines = realloc(pg->lines, (pg->n + 1) * sizeof(char *));
		if (!pg->lines)
			abort();
		pg->lines[pg->n++] = pg->body + i;
		i = (size_t)(nl - pg->body) + 1;
	}
	return 0;
}

/* Asserting wrapper for the test process. */
static void page(const char *query, struct page *pg)
{
	char err[1024];

	cr_assert_eq(get_page(NULL, d.port, query, pg, err, sizeof(err)), 0, "%s", err);
}

/* The decoded keys of a page, each a malloc'd (bytes, len). */
struct keys {
	char **k;
	size_t *len;
	size_t n;
};

static void keys_add(struct keys *ks, const void *k, size_t len)
{
	ks->k = realloc(ks->k, (ks->n + 1) * sizeof(*ks->k));
	ks->len = realloc(ks->len, (ks->n + 1) * sizeof(*ks->len));
	cr_assert(ks->k && ks->len);
	ks->k[ks->n] = malloc(len + 1);
	cr_assert_not_null(ks->k[ks->n]);
	memcpy(ks->k[ks->n], k, len);
	ks->k[ks->n][len] = '\0';
	ks->len[ks->n++] = len;
}

static void keys_free(struct keys *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		free(ks->k[i]);
	free(ks->k);
	free(ks->len);
	memset(ks, 0, sizeof(*ks));
}

static void page_keys(const struct page *pg, struct keys *ks)
{
	for (size_t i = 0; i < pg->n; i++) {
		char buf[KEY_MAX * 3 + 1];
		long n = strlen(pg->lines[i]) < sizeof(buf) ? dec(pg->lines[i], buf) : -1;

		cr_assert(n > 0 && n <= KEY_MAX, "listed line %zu \"%.200s\" is not a "
			  "key percent-encoded as docs/http-api.md says", i, pg->lines[i]);
		keys_add(ks, buf, (size_t)n);
	}
}

/* Every key under the (encoded) prefix, paged with start_after. */
static void list_all(const char *prefix_enc, size_t limit, struct keys *ks)
{
	char q[4 * KEY_MAX + 128], after[3 * KEY_MAX + 1] = "";

	memset(ks, 0, sizeof(*ks));
	for (int pages = 0;; pages++) {
		struct page pg;

		cr_assert_lt(pages, PAGES_PER_PASS_MAX, "paging does not end");
		snprintf(q, sizeof(q), "limit=%zu%s%s%s%s", limit,
			 prefix_enc ? "&prefix=" : "", prefix_enc ? prefix_enc : "",
			 *after ? "&start_after=" : "", after);
		page(q, &pg);
		if (pg.truncated)
			cr_assert_eq(pg.n, limit, "GET /keys?%s: X-Truncated with %zu "
				     "lines, want exactly limit=%zu", q, pg.n, limit);
		else
			cr_assert_leq(pg.n, limit, "GET /keys?%s", q);
		page_keys(&pg, ks);
		if (!pg.truncated) {
			page_free(&pg);
			return;
		}
		snprintf(after, sizeof(after), "%s", pg.lines[pg.n - 1]);
		page_free(&pg);
	}
}

/* Asserts ks holds exactly want[0..n) in byte order. */
static void assert_keys(const struct keys *ks, const char *const *want,
			const size_t *wlen, size_t n, const char *what)
{
	cr_assert_eq(ks->n, n, "%s: %zu keys listed, want %zu", what, ks->n, n);
	for (size_t i = 0; i < n; i++) {
		size_t wl = wlen ? wlen[i] : strlen(want[i]);
		char e1[3 * KEY_MAX + 1], e2[3 * KEY_MAX + 1];

		cr_assert(ks->len[i] == wl && !memcmp(ks->k[i], want[i], wl),
			  "%s: key #%zu is %s, want %s", what, i,
			  enc(ks->k[i], ks->len[i], e1), enc(want[i], wl, e2));
	}
}

/* ---- writes ---------------------------------------------------------------- */

static uint64_t put_key(const void *key, size_t klen, const char *val)
{
	char path[3 * KEY_MAX + 8] = "/kv/";

	enc(key, klen, path + 4);
	return it_put(d.port, path, val, strlen(val), 0);
}

static void del_key(const void *key, size_t klen)
{
	char path[3 * KEY_MAX + 8] = "/kv/";
	struct it_resp r;

	enc(key, klen, path + 4);
	it_do(d.port, "DELETE", path, NULL, NULL, 0, &r, 204);
	it_resp_free(&r);
}

/* GET of a key by its bytes: 200 with val and the version, or 404. */
static void expect_key(const void *key, size_t klen, const void *val, size_t vlen,
		       uint64_t ver)
{
	char path[3 * KEY_MAX + 8] = "/kv/";

	enc(key, klen, path + 4);
	if (val)
		it_expect_value(d.port, path, val, vlen, ver);
	else
		it_expect_error(d.port, "GET", path, NULL, NULL, 0, 404, "not_found");
}

/* Parses {"version":V,"applied":N} (any spacing, either order). */
static int batch_json(const char *body, uint64_t *ver, unsigned *applied)
{
	const char *v = body ? strstr(body, "\"version\"") : NULL;
	const char *a = body ? strstr(body, "\"applied\"") : NULL;

	if (!v || !a || body[strspn(body, " \t\r\n")] != '{')
		return -1;
	v = strchr(v, ':');
	a = strchr(a, ':');
	if (!v || !a || sscanf(v + 1, " %" SCNu64, ver) != 1 || sscanf(a + 1, " %u", applied) != 1)
		return -1;
	return 0;
}

/* POST /batch that must succeed: 200, JSON version == ETag, applied as
 * given. Returns the version. */
static uint64_t batch_ok(const char *body, size_t len, unsigned want_applied)
{
	struct it_resp r;
	uint64_t v, etag;
	unsigned applied;
	const char *ct;

	it_do(d.port, "POST", "/batch", NULL, body, len, &r, 200);
	ct = it_resp_header(&r, "Content-Type");
	cr_assert(ct && !strncmp(ct, "application/json", 16), "%s", it_resp_brief(&r));
	cr_assert_eq(batch_json(r.body, &v, &applied), 0,
		     "want {\"version\":V,\"applied\":N}: %s", it_resp_brief(&r));
	etag = it_version(&r, "POST /batch");
	cr_assert_eq(etag, v, "ETag \"%" PRIu64 "\" is not the JSON version %" PRIu64,
		     etag, v);
	cr_assert_eq(applied, want_applied, "applied %u, want %u: %s", applied,
		     want_applied, it_resp_brief(&r));
	it_resp_free(&r);
	return v;
}

static uint64_t batch_str(const char *body, unsigned want_applied)
{
	return batch_ok(body, strlen(body), want_applied);
}

/* "key=etag:len:value\n" for every key in the store: what "nothing was
 * applied" compares. */
static char *digest(void)
{
	struct keys ks;
	struct sbuf b = { 0 };

	list_all(NULL, LIMIT_MAX, &ks);
	for (size_t i = 0; i < ks.n; i++) {
		char path[3 * KEY_MAX + 8] = "/kv/";
		struct it_resp r;

		enc(ks.k[i], ks.len[i], path + 4);
		it_do(d.port, "GET", path, NULL, NULL, 0, &r, 200);
		sb_printf(&b, "%s=%s:%zu:", path, it_resp_header(&r, "ETag"), r.body_len);
		sb_add(&b, r.body, r.body_len);
		sb_add(&b, "\n", 1);
		it_resp_free(&r);
	}
	keys_free(&ks);
	sb_add(&b, "", 0);
	return b.p;
}

/* ============================== GET /keys ==================================== */

Test(it_keys_batch, keys_lists_live_keys_in_raw_byte_order, .timeout = 30)
{
	/* Written out of order; byte order is not locale or case order. */
	static const char *const put_order[] = {
		"b", "a/b", "B", "\xff", "a", "\xc3\xa9", "a0", "ab", "~",
		"\x01", "A", "a-", "Z", "aa", "\x7f", "a.b", "0",
	};
	static const char *const sorted[] = {
		"\x01", "0", "A", "B", "Z", "a", "a-", "a.b", "a/b", "a0", "aa",
		"ab", "b", "~", "\x7f", "\xc3\xa9", "\xff",
	};
	size_t n = sizeof(sorted) / sizeof(sorted[0]);
	struct keys ks = { 0 };
	struct page pg;

	start(NULL);
	for (size_t i = 0; i < n; i++)
		put_key(put_order[i], strlen(put_order[i]), "v");
	page("", &pg);
	cr_assert_not(pg.truncated, "all %zu keys fit the default limit", n);
	page_keys(&pg, &ks);
	assert_keys(&ks, sorted, NULL, n, "GET /keys");
	/* '/' and the unreserved bytes are listed as they are. */
	cr_assert_str_eq(pg.lines[8], "a/b");
	cr_assert_str_eq(pg.lines[7], "a.b");
	page_free(&pg);
	keys_free(&ks);
	finish();
}

Test(it_keys_batch, keys_prefix_filters_by_leading_bytes, .timeout = 30)
{
	static const char *const all[] = {
		"ap", "app", "app/1", "app/2", "apple", "b/app", "\xff" "a", "\xff\xfe",
	};
	static const char *const app[] = { "app", "app/1", "app/2", "apple" };
	static const char *const app_slash[] = { "app/1", "app/2" };
	static const char *const ff[] = { "\xff" "a", "\xff\xfe" };
	struct keys ks;
	struct page pg;

	start(NULL);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		put_key(all[i], strlen(all[i]), "x");
	list_all("app", 1000, &ks);
	assert_keys(&ks, app, NULL, 4, "prefix=app");
	keys_free(&ks);
	list_all("app%2F", 1000, &ks);
	assert_keys(&ks, app_slash, NULL, 2, "prefix=app%2F");
	keys_free(&ks);
	list_all("app/", 1, &ks); /* raw '/' in the query, paged one by one */
	assert_keys(&ks, app_slash, NULL, 2, "prefix=app/ limit=1");
	keys_free(&ks);
	list_all("%FF", 1000, &ks);
	assert_keys(&ks, ff, NULL, 2, "prefix=%FF");
	keys_free(&ks);
	/* No match: 200, empty, not truncated. */
	page("prefix=zzz", &pg);
	cr_assert(pg.n == 0 && !pg.truncated && (!pg.body || !*pg.body),
		  "prefix=zzz must list nothing");
	page_free(&pg);
	/* A prefix equal to a whole key lists it; empty prefix = all. */
	list_all("apple", 1000, &ks);
	cr_assert(ks.n == 1 && !strcmp(ks.k[0], "apple"));
	keys_free(&ks);
	page("prefix=", &pg);
	cr_assert_eq(pg.n, sizeof(all) / sizeof(all[0]), "prefix= lists all");
	page_free(&pg);
	finish();
}

Test(it_keys_batch, keys_limit_and_x_truncated_exactly_at_the_boundary, .timeout = 30)
{
	struct sbuf b = { 0 };
	struct page pg;
	char q[64];

	start(NULL);
	for (int i = 0; i < 10; i++)
		sb_printf(&b, "put k%02d v\n", i);
	batch_ok(b.p, b.len, 10);
	sb_free(&b);
	for (int lim = 1; lim <= 12; lim++) {
		snprintf(q, sizeof(q), "limit=%d", lim);
		page(q, &pg);
		cr_assert_eq(pg.n, lim < 10 ? (size_t)lim : 10, "GET /keys?%s", q);
		cr_assert_eq(pg.truncated, lim < 10, "GET /keys?%s: X-Truncated must be %s",
			     q, lim < 10 ? "true" : "absent");
		for (size_t i = 0; i < pg.n; i++) {
			char want[24];
			snprintf(want, sizeof(want), "k%02zu", i);
			cr_assert_str_eq(pg.lines[i], want, "GET /keys?%s line %zu", q, i);
		}
		page_free(&pg);
	}
	/* The default limit is 1000: 1001 keys make a truncated page of 1000. */
	for (int i = 0; i < LIMIT_DEFAULT - 10 + 1; i++)
		sb_printf(&b, "put m%04d v\n", i);
	batch_ok(b.p, b.len, LIMIT_DEFAULT - 10 + 1);
	sb_free(&b);
	page("", &pg);
	cr_assert(pg.n == LIMIT_DEFAULT && pg.truncated,
		  "1001 keys without limit: want 1000 lines and X-Truncated, got %zu%s",
		  pg.n, pg.truncated ? " truncated" : "");
	page_free(&pg);
	page("limit=1001", &pg);
	cr_assert(pg.n == LIMIT_DEFAULT + 1 && !pg.truncated);
	page_free(&pg);
	page("limit=100000", &pg); /* the largest limit */
	cr_assert(pg.n == LIMIT_DEFAULT + 1 && !pg.truncated);
	page_free(&pg);
	finish();
}

Test(it_keys_batch, keys_paging_with_start_after_visits_every_key_once, .timeout = 30)
{
	enum { N = 250 };
	const char *want[N];
	char names[N][16];
	struct sbuf b = { 0 };
	struct keys ks;
	struct page pg;

	start(NULL);
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "p/%03d", i);
		want[i] = names[i];
		sb_printf(&b, "put p%%2F%03d %d\n", (i * 97) % N, i); /* unordered */
	}
	sb_printf(&b, "put q 1\nput o 1\n");
	batch_ok(b.p, b.len, N + 2);
	sb_free(&b);
	for (size_t lim = 1; lim <= 300; lim = lim * 3 + 4) {
		char what[32];

		list_all("p", lim, &ks);
		snprintf(what, sizeof(what), "limit=%zu", lim);
		assert_keys(&ks, want, NULL, N, what);
		keys_free(&ks);
	}
	/* start_after need not be a key, and is strictly after. */
	page("prefix=p&start_after=p%2F1&limit=2", &pg);
	cr_assert(pg.n == 2 && pg.truncated && !strcmp(pg.lines[0], "p/100") &&
		  !strcmp(pg.lines[1], "p/101"), "start_after=p/1");
	page_free(&pg);
	page("prefix=p&start_after=p/249", &pg);
	cr_assert(pg.n == 0 && !pg.truncated, "after the last key: nothing");
	page_free(&pg);
	page("start_after=p/249&limit=5", &pg);
	cr_assert(pg.n == 1 && !pg.truncated && !strcmp(pg.lines[0], "q"),
		  "without prefix, start_after p/249 leaves q");
	page_free(&pg);
	finish();
}

Test(it_keys_batch, keys_with_bytes_needing_escapes_round_trip, .timeout = 30)
{
	static const char *const keys[] = {
		"sp ace", "sl/ash/", "/lead", "pc%t", "%25", "q?x", "h#x", "amp&x=1",
		"plus+x", "\x01" "ctl", "tab\tx", "nl\nx", "cr\rx", "quote\"", "\xc3\xa9t\xc3\xa9",
		"\xff", "\xff\xff", "\x80", "back\\slash", "[b]", "{c}",
	};
	enum { N = sizeof(keys) / sizeof(keys[0]) };
	const char *sorted[N];
	size_t lens[N];
	uint64_t vers[N];
	struct keys ks = { 0 };
	struct page pg;

	start(NULL);
	for (int i = 0; i < N; i++) {
		char v[16];
		snprintf(v, sizeof(v), "v%d", i);
		vers[i] = put_key(keys[i], strlen(keys[i]), v);
	}
	memcpy(sorted, keys, sizeof(sorted));
	for (int i = 1; i < N; i++) /* insertion sort by bytes */
		for (int j = i; j > 0 && bcmp_keys(sorted[j - 1], strlen(sorted[j - 1]),
						    sorted[j], strlen(sorted[j])) > 0; j--) {
			const char *t = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	for (int i = 0; i < N; i++)
		lens[i] = strlen(sorted[i]);
	page("", &pg);
	page_keys(&pg, &ks); /* asserts every line is escaped as documented */
	assert_keys(&ks, sorted, lens, N, "GET /keys");
	for (size_t i = 0; i < pg.n; i++) {
		char path[3 * KEY_MAX + 8], q[3 * KEY_MAX + 32], v[16];
		struct page after, pre;
		int orig = -1;

		for (int j = 0; j < N; j++)
			if (!strcmp(keys[j], ks.k[i]))
				orig = j;
		cr_assert_geq(orig, 0);
		/* The listed line is a usable /kv/ path ... */
		snprintf(path, sizeof(path), "/kv/%s", pg.lines[i]);
		snprintf(v, sizeof(v), "v%d", orig);
		it_expect_value(d.port, path, v, strlen(v), vers[orig]);
		/* ... a usable start_after (the page after it starts right after) ... */
		snprintf(q, sizeof(q), "start_after=%s", pg.lines[i]);
		page(q, &after);
		cr_assert_eq(after.n, pg.n - i - 1, "GET /keys?%s", q);
		if (after.n)
			cr_assert_str_eq(after.lines[0], pg.lines[i + 1], "GET /keys?%s", q);
		page_free(&after);
		/* ... and a usable prefix. */
		snprintf(q, sizeof(q), "prefix=%s", pg.lines[i]);
		page(q, &pre);
		cr_assert_geq(pre.n, 1, "GET /keys?%s", q);
		cr_assert_str_eq(pre.lines[0], pg.lines[i], "GET /keys?%s", q);
		page_free(&pre);
	}
	page_free(&pg);
	keys_free(&ks);
	/* Keys written by a batch list the same way. */
	batch_str("put %C3%A9%20%2F%FF x\n", 1);
	page("prefix=%C3%A9%20", &pg);
	ks = (struct keys){ 0 };
	page_keys(&pg, &ks);
	cr_assert(ks.n == 1 && ks.len[0] == 5 && !memcmp(ks.k[0], "\xc3\xa9 /\xff", 5),
		  "a batch-written key lists as its bytes");
	page_free(&pg);
	keys_free(&ks);
	finish();
}

Test(it_keys_batch, keys_does_not_list_deleted_keys, .timeout = 30)
{
	static const char *const left[] = { "d1", "d3", "d5", "d6" };
	struct keys ks;

	start(NULL);
	batch_str("put d1 a\nput d2 b\nput d3 c\nput d4 d\nput d5 e\nput d6 f\nput d7 g\n", 7);
	del_key("d2", 2);
	batch_str("del d4\ndel nosuch\n", 1);
	put_key("d7", 2, "again");
	del_key("d7", 2);
	/* deleted, then created again: listed once */
	put_key("d5", 2, "gone");
	del_key("d5", 2);
	put_key("d5", 2, "back");
	list_all(NULL, 1000, &ks);
	assert_keys(&ks, left, NULL, 4, "after deletes");
	keys_free(&ks);
	list_all("d", 1, &ks);
	assert_keys(&ks, left, NULL, 4, "after deletes, paged by 1");
	keys_free(&ks);
	batch_str("del d1\ndel d3\ndel d5\ndel d6\n", 4);
	list_all(NULL, 1000, &ks);
	cr_assert_eq(ks.n, 0, "every key deleted: the listing is empty");
	keys_free(&ks);
	finish();
}

Test(it_keys_batch, keys_bad_parameters_are_400_bad_query, .timeout = 30)
{
	static const char *const bad[] = {
		"limit=0", "limit=abc", "limit=100001", "limit=1000000", "limit=-1",
		"limit=", "limit", "limit=1.5", "limit=5x", "limit=%20",
		"limit=99999999999999999999",
		"prefix=%zz", "prefix=a%2", "prefix=%", "prefix=%00", "start_after=%4",
		"start_after=%G0", "start_after=a%00b", "prefix=a&limit=0",
	};
	char *q;

	start(NULL);
	put_key("a", 1, "x");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char path[128];
		snprintf(path, sizeof(path), "/keys?%s", bad[i]);
		it_expect_error(d.port, "GET", path, NULL, NULL, 0, 400, "bad_query");
	}
	/* start_after and prefix are keys: at most 1024 bytes. */
	q = malloc(KEY_MAX + 64);
	cr_assert_not_null(q);
	strcpy(q, "/keys?start_after=");
	memset(q + strlen(q), 'a', KEY_MAX + 1);
	q[18 + KEY_MAX + 1] = '\0';
	it_expect_error(d.port, "GET", q, NULL, NULL, 0, 400, "bad_query");
	q[18 + KEY_MAX] = '\0'; /* 1024: fine */
	{
		struct it_resp r;
		it_do(d.port, "GET", q, NULL, NULL, 0, &r, 200);
		it_resp_free(&r);
	}
	memcpy(q, "/keys?prefix=", 13);
	memset(q + 13, 'a', KEY_MAX + 1);
	q[13 + KEY_MAX + 1] = '\0';
	it_expect_error(d.port, "GET", q, NULL, NULL, 0, 400, "bad_query");
	free(q);
	/* The daemon still serves after all that. */
	{
		struct page pg;
		page("limit=1", &pg);
		cr_assert(pg.n == 1 && !strcmp(pg.lines[0], "a") && !pg.truncated);
		page_free(&pg);
	}
	it_expect_error(d.port, "POST", "/keys", NULL, "", 0, 405, "method_not_allowed");
	finish();
}

/* ---- listing while another client writes ---------------------------------- */

struct list_drill {
	int port;
	volatile int writer_started;
	volatile int pager_done;
	volatile int pager_started;   /* the pager has its first page */
	volatile int rounds;          /* writer rounds completed */
	volatile int compactions;
	volatile long writes;         /* requests the writer had answered */
	volatile long overlapped;     /* passes during which writes went on */
	volatile int passes;
};

static void transient_key(int id, char *out, size_t n)
{
	int stable = (id * 7) % STABLE_KEYS;

	/* Sorts right after the stable key s/NNNN, before the next one. */
	if (id % 2)
		snprintf(out, n, "s/%04d~%06d", stable, id);
	else
		snprintf(out, n, "s/%04d\xc3\xa9 %06d", stable, id);
}

static void child_batch(int port, const char *body, size_t len, const char *what)
{
	struct it_resp r;
	int rc = it_request(port, "POST", "/batch", NULL, body, len, &r);

	if (rc < 0 || r.status != 200)
		it_child_fail("%s: want 200, got %s", what,
			      rc < 0 ? strerror(-rc) : it_resp_brief(&r));
	it_resp_free(&r);
}

static void round_body(struct sbuf *b, int round, const char *op)
{
	b->len = 0;
	for (int i = 0; i < ROUND_KEYS; i++) {
		char k[64];
		transient_key(round * ROUND_KEYS + i, k, sizeof(k));
		if (*op == 'p')
			sb_op(b, "put", k, strlen(k), "t", 1);
		else
			sb_op(b, "del", k, strlen(k), NULL, 0);
	}
}

static void list_writer(struct list_drill *x)
{
	struct sbuf b = { 0 };
	struct it_resp r;
	int round;

	for (round = 0; round < WRITER_ROUNDS_MAX && !x->pager_done; round++) {
		char what[64], path[64];

		round_body(&b, round, "put");
		snprintf(what, sizeof(what), "writer round %d puts", round);
		child_batch(x->port, b.p, b.len, what);
		if (round >= ROUNDS_LIVE) {
			round_body(&b, round - ROUNDS_LIVE, "del");
			snprintf(what, sizeof(what), "writer round %d deletes", round);
			child_batch(x->port, b.p, b.len, what);
		}
		/* single writes outside the listed prefix, too */
		snprintf(path, sizeof(path), "/kv/t%%2F%d", round % 5);
		if (it_request(x->port, "PUT", path, NULL, "x", 1, &r) < 0 ||
		    (r.status != 201 && r.status != 204))
			it_child_fail("PUT %s: %s", path, it_resp_brief(&r));
		it_resp_free(&r);
		if (round % 10 == 9) {
			if (it_request(x->port, "POST", "/admin/compact", NULL, "", 0, &r) < 0 ||
			    r.status != 202)
				it_child_fail("POST /admin/compact: want 202, got %s",
					      it_resp_brief(&r));
			it_resp_free(&r);
			x->compactions++;
		}
		x->rounds = round + 1;
		x->writes++;
		if (!x->writer_started) {
			int64_t deadline = it_now_ms() + 10000;

			x->writer_started = 1;
			/* go on once the pager has begun (bounded wait) */
			while (!x->pager_started && it_now_ms() < deadline)
				usleep(1000);
		}
	}
	sb_free(&b);
}

/* One pass over prefix s/ by pages; every stable key exactly once, all
 * lines under the prefix and strictly ascending. */
static void list_pass(struct list_drill *x, struct it_conn *c, int pass)
{
	static char seen[STABLE_KEYS];
	char after[3 * KEY_MAX + 1] = "", prev[KEY_MAX + 1], err[1024];
	size_t prevlen = 0;
	long w0 = x->writes;

	memset(seen, 0, sizeof(seen));
	for (int pages = 0;; pages++) {
		char q[4 * KEY_MAX];
		struct page pg;

		if (pages == PAGES_PER_PASS_MAX)
			it_child_fail("pass %d: paging does not end", pass);
		snprintf(q, sizeof(q), "prefix=s%%2F&limit=%d%s%s", PAGE_LIMIT,
			 *after ? "&start_after=" : "", after);
		if (get_page(c, x->port, q, &pg, err, sizeof(err)) < 0)
			it_child_fail("pass %d: %s", pass, err);
		x->pager_started = 1;
		if (pg.truncated && pg.n != PAGE_LIMIT)
			it_child_fail("pass %d: GET /keys?%s: X-Truncated with %zu lines",
				      pass, q, pg.n);
		for (size_t i = 0; i < pg.n; i++) {
			char k[KEY_MAX * 3 + 1];
			long n = strlen(pg.lines[i]) <= 3 * KEY_MAX ? dec(pg.lines[i], k) : -1;
			int idx;

			if (n < 2 || memcmp(k, "s/", 2))
				it_child_fail("pass %d: line \"%.100s\" is not under s/", pass,
					      pg.lines[i]);
			if (prevlen && bcmp_keys(prev, prevlen, k, (size_t)n) >= 0)
				it_child_fail("pass %d: \"%.100s\" listed after a key not "
					      "below it (a key twice, or out of order)", pass,
					      pg.lines[i]);
			memcpy(prev, k, (size_t)n);
			prevlen = (size_t)n;
			if (n == 6 && sscanf(k + 2, "%4d", &idx) == 1 && idx >= 0 &&
			    idx < STABLE_KEYS && seen[idx]++)
				it_child_fail("pass %d: s/%04d listed twice", pass, idx);
		}
		if (!pg.truncated) {
			page_free(&pg);
			break;
		}
		snprintf(after, sizeof(after), "%s", pg.lines[pg.n - 1]);
		page_free(&pg);
	}
	for (int i = 0; i < STABLE_KEYS; i++)
		if (!seen[i])
			it_child_fail("pass %d: s/%04d, which existed all along, was not "
				      "listed", pass, i);
	if (x->writes != w0)
		x->overlapped++;
}

static void list_pager(struct list_drill *x)
{
	struct it_conn c;
	int64_t deadline = it_now_ms() + 20000;

	while (!x->writer_started && it_now_ms() < deadline)
		usleep(1000);
	if (!x->writer_started)
		it_child_fail("the writer did not get a batch through");
	if (it_conn_open(&c, x->port) < 0)
		it_child_fail("connect");
	for (int pass = 0; pass < PAGER_PASSES; pass++) {
		/* alternate keep-alive (one worker) and fresh connections */
		list_pass(x, pass % 2 ? NULL : &c, pass);
		x->passes = pass + 1;
	}
	it_conn_close(&c);
	x->pager_done = 1;
}

static void list_client(int idx, void *arg)
{
	if (idx == 0)
		list_writer(arg);
	else
		list_pager(arg);
}

/* A typo or a second value is refused naming the parameter: before,
 * prefx= listed every key and prefix=a&prefix=b used the first. */
Test(it_keys_batch, keys_unknown_or_repeated_parameter_is_400_naming_it, .timeout = 30)
{
	static const struct {
		const char *path, *named;
	} bad[] = {
		{ "/keys?prefx=users/", "'prefx'" },
		{ "/keys?prefix=a&prefix=b", "'prefix'" },
		{ "/keys?limit=1&limit=2", "'limit'" },
		{ "/keys?start_after=a&start_after=b", "'start_after'" },
		{ "/keys?Limit=5", "'Limit'" },
	};
	struct it_resp r;

	start(NULL);
	put_key("users/1", 7, "x");
	put_key("other", 5, "x");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		it_expect_error_saying(d.port, "GET", bad[i].path, NULL, NULL, 0, 400,
				       "bad_query", bad[i].named);
	/* the message says what the path takes */
	it_expect_error_saying(d.port, "GET", "/keys?prefx=u", NULL, NULL, 0, 400, "bad_query",
			       "prefix, start_after, limit");
	/* empty parameters are nothing */
	it_do(d.port, "GET", "/keys?&prefix=users/&", NULL, NULL, 0, &r, 200);
	cr_assert_str_eq(r.body, "users/1\n", "%s", it_resp_brief(&r));
	it_resp_free(&r);
	finish();
}

Test(it_keys_batch, keys_paging_during_writes_lists_every_stable_key_once, .timeout = 120)
{
	struct list_drill *x = it_shared_alloc(sizeof(*x));
	struct sbuf b = { 0 };
	struct keys ks;
	int failed, first;

	cr_assert_not_null(x);
	start(NULL);
	for (int i = 0; i < STABLE_KEYS; i++)
		sb_printf(&b, "put s%%2F%04d %d\n", i, i);
	for (int i = 0; i < 10; i++)
		sb_printf(&b, "put r%%2F%d x\nput u%%2F%d x\n", i, i);
	batch_ok(b.p, b.len, STABLE_KEYS + 20);
	sb_free(&b);
	x->port = d.port;
	failed = it_fork_clients(2, list_client, x);
	if (failed)
		it_daemon_dump_log(&d);
	cr_assert_eq(failed, 0, "%d listing drill clients failed (see stderr)", failed);
	cr_assert_eq(x->passes, PAGER_PASSES);
	cr_assert_gt(x->overlapped, 0, "no pass overlapped with the writer's batches "
		     "(%d rounds): the drill tested nothing", x->rounds);
	/* Quiet now: the listing is exactly what the writer left. */
	list_all("s%2F", 997, &ks);
	first = x->rounds > ROUNDS_LIVE ? x->rounds - ROUNDS_LIVE : 0;
	cr_assert_eq(ks.n, (size_t)STABLE_KEYS + (size_t)(x->rounds - first) * ROUND_KEYS,
		     "after %d writer rounds", x->rounds);
	for (size_t i = 0, s = 0; i < ks.n; i++) {
		char want[64];
		int id;

		if (ks.len[i] == 6) {
			snprintf(want, sizeof(want), "s/%04zu", s++);
			cr_assert_str_eq(ks.k[i], want);
			continue;
		}
		cr_assert_eq(sscanf(ks.k[i] + ks.len[i] - 6, "%6d", &id), 1);
		transient_key(id, want, sizeof(want));
		cr_assert(!strcmp(ks.k[i], want) && id >= first * ROUND_KEYS &&
			  id < x->rounds * ROUND_KEYS, "unexpected key %s after the drill",
			  ks.k[i]);
	}
	keys_free(&ks);
	/* The drill made the table flip under the pager: it grew past its
	 * first size, and compactions (each a flip to a new file) finished. */
	{
		char *m = it_get_metrics(d.port);
		double slots = 0, done = 0;

		cr_assert_eq(it_metric_value(m, "caskd_index_slots", 0, &slots), 0);
		cr_assert_eq(it_metric_value(m, "caskd_compactions_done_total", 0, &done), 0);
		cr_assert_gt(slots, 16384, "the index never grew: the drill did not "
			     "list across a table rebuild");
		cr_assert_geq(done, 1, "no compaction finished during the drill");
		free(m);
	}
	cr_log_info("listing drill: %d writer rounds, %d compactions, %ld of %d passes "
		    "overlapped", x->rounds, x->compactions, x->overlapped, PAGER_PASSES);
	it_shared_free(x, sizeof(*x));
	finish();
}

/* ============================== POST /batch =================================== */

Test(it_keys_batch, batch_of_puts_and_deletes_applies_all, .timeout = 30)
{
	unsigned char bin[256];
	struct sbuf b = { 0 };
	uint64_t v0, v;
	struct keys ks;
	static const char *const left[] = { "bin", "e", "k 2", "k/1", "old3", "\xff" };

	for (int i = 0; i < 256; i++)
		bin[i] = (unsigned char)i; /* NUL, LF, CR, space, '%', 0xff */
	start(NULL);
	v0 = put_key("old1", 4, "1");
	put_key("old2", 4, "2");
	put_key("old3", 4, "3");
	sb_op(&b, "put", "k/1", 3, "one", 3);
	sb_op(&b, "put", "k 2", 3, "two words", 9);
	sb_op(&b, "put", "\xff", 1, "%", 1);
	sb_op(&b, "put", "bin", 3, bin, sizeof(bin));
	sb_op(&b, "del", "old1", 4, NULL, 0);
	sb_op(&b, "del", "absent", 6, NULL, 0);   /* a no-op, not counted */
	sb_printf(&b, "put old3 new3\r\n");       /* CRLF line end */
	sb_printf(&b, "del old2\nput e ");        /* empty value, no final newline */
	v = batch_ok(b.p, b.len, 8);
	sb_free(&b);
	cr_assert_gt(v, v0);
	expect_key("k/1", 3, "one", 3, v);
	expect_key("k 2", 3, "two words", 9, v);
	expect_key("\xff", 1, "%", 1, v);
	expect_key("bin", 3, bin, sizeof(bin), v);
	expect_key("old3", 4, "new3", 4, v);
	expect_key("e", 1, "", 0, v);
	expect_key("old1", 4, NULL, 0, 0);
	expect_key("old2", 4, NULL, 0, 0);
	expect_key("absent", 6, NULL, 0, 0);
	list_all(NULL, 1000, &ks);
	assert_keys(&ks, left, NULL, 6, "after the batch");
	keys_free(&ks);
	/* The largest batch: 10000 operations. */
	for (int i = 0; i < BATCH_OPS_MAX; i++)
		sb_printf(&b, "put big%05d %d\n", i, i);
	v = batch_ok(b.p, b.len, BATCH_OPS_MAX);
	sb_free(&b);
	expect_key("big00000", 8, "0", 1, v);
	expect_key("big09999", 8, "9999", 4, v);
	list_all("big", LIMIT_MAX, &ks);
	cr_assert_eq(ks.n, BATCH_OPS_MAX);
	keys_free(&ks);
	finish();
}

Test(it_keys_batch, batch_parts_share_one_version_and_versions_grow, .timeout = 30)
{
	uint64_t va, v1, v2, v3, vc, vn;
	struct it_resp r;

	start(NULL);
	va = put_key("a", 1, "0");
	v1 = batch_str("put a 1\nput b 1\nput c 1\n", 3);
	cr_assert_gt(v1, va, "a batch's version is above every earlier write's");
	expect_key("a", 1, "1", 1, v1);
	expect_key("b", 1, "1", 1, v1);
	expect_key("c", 1, "1", 1, v1);
	/* A PUT after it gets a higher version; a batch after that, higher. */
	vn = put_key("n", 1, "x");
	cr_assert_gt(vn, v1);
	v2 = batch_str("put b 2\ndel c\n", 2);
	cr_assert_gt(v2, vn);
	expect_key("a", 1, "1", 1, v1); /* untouched keys keep theirs */
	expect_key("b", 1, "2", 1, v2);
	expect_key("c", 1, NULL, 0, 0);
	/* If-Match with the batch's version works on a batch-written key. */
	{
		char hdr[64];
		snprintf(hdr, sizeof(hdr), "If-Match: \"%" PRIu64 "\"\r\n", v2);
		it_do(d.port, "PUT", "/kv/b", hdr, "3", 1, &r, 204);
		v3 = it_version(&r, "PUT If-Match batch version");
		it_resp_free(&r);
		cr_assert_gt(v3, v2);
	}
	/* Checks and deletes of absent keys only: nothing is written, and
	 * the batch still gets a version of its own. */
	{
		char body[96];
		snprintf(body, sizeof(body), "check a %" PRIu64 "\ncheck zz 0\ndel zz\n", v1);
		vc = batch_str(body, 0);
		cr_assert_gt(vc, v3);
	}
	expect_key("a", 1, "1", 1, v1);
	expect_key("zz", 2, NULL, 0, 0);
	finish();
}

/* POST /batch that must be refused with want/code; returns the message
 * part of the body (malloc'd) for the caller to inspect. */
static char *batch_refused(const char *body, size_t len, int want, const char *code)
{
	struct it_resp r;
	char *msg;

	it_do(d.port, "POST", "/batch", NULL, body, len, &r, want);
	cr_assert(it_is_json_error(&r, code), "POST /batch [%.*s]: want JSON error %s, "
		  "got %s", (int)(len < 200 ? len : 200), body, code, it_resp_brief(&r));
	cr_assert_null(it_resp_header(&r, "ETag"), "a refused batch has no version: %s",
		       it_resp_brief(&r));
	msg = strdup(r.body);
	cr_assert_not_null(msg);
	it_resp_free(&r);
	return msg;
}

Test(it_keys_batch, batch_failed_check_is_412_naming_the_key_and_applies_nothing,
     .timeout = 30)
{
	uint64_t va, vb, v;
	char body[512], *before, *after, *msg;
	struct {
		char body[256];
		const char *names, *not_names;
	} cases[6];
	int n = 0;

	start(NULL);
	va = put_key("alpha-key", 9, "1");
	vb = put_key("bravo-key", 9, "1");
	put_key("ch k", 4, "1");
	/* version mismatch, the failing check first */
	snprintf(cases[n].body, sizeof(cases[n].body), "check alpha-key %" PRIu64
		 "\nput fresh 1\ndel bravo-key\nput alpha-key 2\n", va + 1000);
	cases[n].names = "alpha-key", cases[n].not_names = "bravo-key", n++;
	/* a version for an absent key, the failing check last */
	snprintf(cases[n].body, sizeof(cases[n].body),
		 "put fresh 1\ndel alpha-key\ncheck missing-key %" PRIu64 "\n", va);
	cases[n].names = "missing-key", cases[n].not_names = "alpha-key", n++;
	/* 0 (absent) for a present key */
	snprintf(cases[n].body, sizeof(cases[n].body),
		 "check bravo-key 0\nput fresh 1\nput bravo-key 2\n");
	cases[n].names = "bravo-key", cases[n].not_names = "fresh", n++;
	/* a holding check, then two failing: the first is named */
	snprintf(cases[n].body, sizeof(cases[n].body), "check bravo-key %" PRIu64
		 "\ncheck alpha-key %" PRIu64 "\ncheck missing-key 7\nput fresh 1\n",
		 vb, vb);
	cases[n].names = "alpha-key", cases[n].not_names = "missing-key", n++;
	/* the key is named percent-encoded */
	snprintf(cases[n].body, sizeof(cases[n].body), "put fresh 1\ncheck ch%%20k 0\n");
	cases[n].names = "ch%20k", cases[n].not_names = "fresh", n++;
	/* a key checked and written, the check failing */
	snprintf(cases[n].body, sizeof(cases[n].body), "check alpha-key %" PRIu64
		 "\nput alpha-key 2\n", vb);
	cases[n].names = "alpha-key", cases[n].not_names = "bravo-key", n++;

	before = digest();
	for (int i = 0; i < n; i++) {
		msg = batch_refused(cases[i].body, strlen(cases[i].body), 412,
				    "precondition_failed");
		cr_assert(strstr(msg, cases[i].names) && !strstr(msg, cases[i].not_names),
			  "batch [%s]: the 412 must name the first failed check's key "
			  "%s: %s", cases[i].body, cases[i].names, msg);
		free(msg);
		after = digest();
		cr_assert_str_eq(after, before, "a batch refused by a check changed the "
				 "store: [%s]", cases[i].body);
		free(after);
	}
	free(before);
	expect_key("fresh", 5, NULL, 0, 0);
	/* Holding checks (and a key checked and written) apply. */
	snprintf(body, sizeof(body), "check alpha-key %" PRIu64 "\ncheck missing-key 0\n"
		 "put alpha-key 2\nput missing-key 1\ncheck bravo-key %" PRIu64 "\n", va, vb);
	v = batch_str(body, 2);
	expect_key("alpha-key", 9, "2", 1, v);
	expect_key("missing-key", 11, "1", 1, v);
	expect_key("bravo-key", 9, "1", 1, vb);
	/* The same batch again: its checks now fail. */
	free(batch_refused(body, strlen(body), 412, "precondition_failed"));
	expect_key("alpha-key", 9, "2", 1, v);
	finish();
}

Test(it_keys_batch, batch_malformed_body_is_400_and_applies_nothing, .timeout = 30)
{
	static const char *const bad[] = {
		"put fresh 1\nbogus x\n",           /* unknown operation */
		"put fresh 1\nPUT b 2\n",
		"put fresh 1\nput b\n",             /* a put without its value */
		"put fresh 1\nput b",               /* ... cut there, no newline */
		"put fresh 1\nput b 2\nche",        /* cut inside an operation */
		"put fresh 1\nput b %4\n",          /* cut inside an escape */
		"put fresh 1\nput b 2%\n",
		"put fresh 1\nput b %zz\n",
		"put fresh 1\nput a%G1 2\n",        /* bad escape in a key */
		"put fresh 1\nput %00 2\n",         /* NUL in a key */
		"put fresh 1\nput a%00b 2\n",
		"put fresh 1\nput  b 2\n",          /* two spaces */
		"put fresh 1\nput b 2 \n",          /* a trailing space */
		" put fresh 1\n",                   /* a leading space */
		"put fresh 1\nput b 2 3\n",         /* too many fields */
		"put fresh 1\n\nput b 2\n",         /* an empty line */
		"put fresh 1\n\n",
		"\n",
		"",
		"put fresh 1\ndel\n",
		"put fresh 1\ndel a b\n",
		"put fresh 1\ncheck a\n",
		"put fresh 1\ncheck a x\n",
		"put fresh 1\ncheck a -1\n",
		"put fresh 1\ncheck a 18446744073709551616\n",
		"put fresh 1\ncheck a 1 2\n",
		"put fresh 1\nput fresh 2\n",       /* a key written twice */
		"put fresh 1\ndel fresh\n",
		"del a\nput fresh 1\ndel %61\n",    /* ... spelt differently */
	};
	struct sbuf b = { 0 };
	struct it_conn c;
	char *before, *after, *msg;
	char *longkey;
	int rc;

	start(NULL);
	put_key("a", 1, "1");
	before = digest();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		free(batch_refused(bad[i], strlen(bad[i]), 400, "bad_batch"));
		after = digest();
		cr_assert_str_eq(after, before, "a malformed batch changed the store: [%s]",
				 bad[i]);
		free(after);
	}
	/* The message says which line. */
	msg = batch_refused("put fresh 1\nput b 2\nbogus\n", 25, 400, "bad_batch");
	cr_assert_not_null(strstr(msg, "line 3"), "want the line number: %s", msg);
	free(msg);
	/* ... and what is wrong there: an empty line, a bare CR (it used to
	 * be "too many fields", or no line at all) */
	{
		static const struct {
			const char *body, *want;
		} said[] = {
			{ "put fresh 1\n\nput b 2\n", "line 2: an empty line" },
			{ "put fresh 1\r\n\r\n", "line 2: an empty line" },
			{ "put fresh 1\rput b 2\n", "line 1: a bare CR at byte 12" },
			{ "put fresh 1\nput b 2\r\r\n", "line 2: a bare CR at byte 8" },
		};

		for (size_t i = 0; i < sizeof(said) / sizeof(said[0]); i++) {
			msg = batch_refused(said[i].body, strlen(said[i].body), 400, "bad_batch");
			cr_assert_not_null(strstr(msg, said[i].want), "batch [%s]: want \"%s\": %s",
					   said[i].body, said[i].want, msg);
			free(msg);
		}
	}
	/* Keys of 1025 bytes are malformed; 1024 is the largest. */
	longkey = malloc(KEY_MAX + 2);
	cr_assert_not_null(longkey);
	memset(longkey, 'k', KEY_MAX + 1);
	sb_op(&b, "put", "fresh", 5, "1", 1);
	sb_op(&b, "put", longkey, KEY_MAX + 1, "v", 1);
	free(batch_refused(b.p, b.len, 400, "bad_batch"));
	sb_free(&b);
	after = digest();
	cr_assert_str_eq(after, before, "a batch with a 1025-byte key changed the store");
	free(after);
	/* A body the connection cuts short (half-close before Content-Length
	 * bytes came) is never applied: no answer, the connection closes. */
	IT_OK(it_conn_open(&c, d.port));
	{
		static const char req[] = "POST /batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
					  "Content-Length: 40\r\n\r\nput fresh 1\nput b 2\n";
		IT_OK(it_conn_send_raw(&c, req, sizeof(req) - 1));
	}
	cr_assert_eq(shutdown(c.fd, SHUT_WR), 0);
	rc = it_conn_peer_closed(&c, IT_IO_TIMEOUT_MS);
	cr_assert_eq(rc, 1, "a batch body cut short: want the connection closed "
		     "without an answer, got %d", rc);
	it_conn_close(&c);
	after = digest();
	cr_assert_str_eq(after, before, "a batch body cut short changed the store");
	free(after);
	free(before);
	/* And the 1024-byte key is fine. */
	sb_op(&b, "put", longkey, KEY_MAX, "v", 1);
	batch_ok(b.p, b.len, 1);
	sb_free(&b);
	expect_key(longkey, KEY_MAX, "v", 1, 0);
	free(longkey);
	finish();
}

Test(it_keys_batch, batch_over_max_batch_size_is_413_and_applies_nothing, .timeout = 30)
{
	static const char *const small[] = { "--max-batch-size", "4096", NULL };
	char body[SMALL_BATCH + 2], head[256], *before, *after;
	const char *pre = "put small 1\nput pad ";
	struct it_conn c;
	struct it_resp r;
	size_t pl = strlen(pre);
	int n;

	start(small);
	put_key("a", 1, "1");
	before = digest();
	/* 4097 bytes: 413 batch_too_large. */
	memcpy(body, pre, pl);
	memset(body + pl, 'x', sizeof(body) - pl);
	body[SMALL_BATCH] = '\n';
	free(batch_refused(body, SMALL_BATCH + 1, 413, "batch_too_large"));
	after = digest();
	cr_assert_str_eq(after, before, "a batch over --max-batch-size changed the store");
	free(after);
	free(before);
	/* A head announcing 100 MB is refused before any body byte is sent. */
	n = snprintf(head, sizeof(head), "POST /batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		     "Content-Length: 100000000\r\n\r\n");
	IT_OK(it_conn_open(&c, d.port));
	IT_OK(it_conn_send_raw(&c, head, (size_t)n));
	IT_OK(it_conn_read_response(&c, 0, &r));
	cr_assert(r.status == 413 && it_is_json_error(&r, "batch_too_large"), "%s",
		  it_resp_brief(&r));
	it_resp_free(&r);
	it_conn_close(&c);
	/* Exactly 4096 bytes is allowed. */
	body[SMALL_BATCH - 1] = '\n';
	batch_ok(body, SMALL_BATCH, 2);
	expect_key("small", 5, "1", 1, 0);
	{
		struct it_resp g;
		it_do(d.port, "GET", "/kv/pad", NULL, NULL, 0, &g, 200);
		cr_assert_eq(g.body_len, SMALL_BATCH - 1 - pl);
		it_resp_free(&g);
	}
	finish();
}

/* Regression: 10001 operations were answered 400 bad_batch; HTTP-API.md
 * says "1..10000 operations; a body over the limit: 413". */
Test(it_keys_batch, batch_over_10000_operations_is_413_and_applies_nothing, .timeout = 30)
{
	struct sbuf b = { 0 };
	char *before, *after, *msg;

	start(NULL);
	put_key("a", 1, "1");
	before = digest();
	for (int i = 0; i <= BATCH_OPS_MAX; i++)
		sb_printf(&b, "put o%05d %d\n", i, i);
	msg = batch_refused(b.p, b.len, 413, "batch_too_large");
	cr_assert_not_null(strstr(msg, "10000"), "say the limit: %s", msg);
	free(msg);
	after = digest();
	cr_assert_str_eq(after, before, "a batch of 10001 operations changed the store");
	free(after);
	free(before);
	/* one fewer is fine */
	b.len = strlen("put o00000 0\n");
	memmove(b.p, b.p + b.len, strlen(b.p + b.len) + 1);
	b.len = strlen(b.p);
	batch_ok(b.p, b.len, BATCH_OPS_MAX);
	sb_free(&b);
	expect_key("o00000", 6, NULL, 0, 0);
	expect_key("o10000", 6, "10000", 5, 0);
	finish();
}

/* ---- no reader sees part of a batch -------------------------------------- */

struct pair_drill {
	int port;
	uint64_t v0;                         /* the pair's version before */
	volatile int readers_ready;
	volatile int writer_done;
	volatile long reads[PAIR_READERS];
	volatile long changes[PAIR_READERS]; /* versions the reader saw change */
};

static void pair_writer(struct pair_drill *x)
{
	uint64_t prev = x->v0;
	int64_t deadline = it_now_ms() + 10000;

	/* start once every reader has read the pair (bounded wait) */
	while (x->readers_ready < PAIR_READERS && it_now_ms() < deadline)
		usleep(1000);

	for (int i = 1; i <= PAIR_BATCHES; i++) {
		char body[160];
		struct it_resp r;
		uint64_t v = 0, etag = 0;
		unsigned applied = 0;
		int n;

		/* the check pins the batch to the previous one: nobody else writes */
		n = snprintf(body, sizeof(body), "check pair%%2Fa %" PRIu64 "\n"
			     "put pair%%2Fa %d\nput pair%%2Fb %d\n", prev, i, i);
		if (it_request(x->port, "POST", "/batch", NULL, body, (size_t)n, &r) < 0 ||
		    r.status != 200 || batch_json(r.body, &v, &applied) < 0 ||
		    it_resp_version(&r, &etag) < 0 || etag != v || applied != 2 || v <= prev)
			it_child_fail("batch %d [%s]: want 200 with a version above %" PRIu64
				      " applied 2, got %s", i, body, prev, it_resp_brief(&r));
		it_resp_free(&r);
		prev = v;
	}
	x->writer_done = 1;
}

struct seen_val {
	uint64_t ver;
	long val;
};

static struct seen_val pair_get(struct it_conn *c, int port, const char *key)
{
	char path[32];
	struct it_resp r;
	struct seen_val s = { 0, 0 };
	char *end;
	int rc;

	snprintf(path, sizeof(path), "/kv/pair%%2F%s", key);
	rc = c ? it_conn_request(c, "GET", path, NULL, NULL, 0, &r)
	       : it_request(port, "GET", path, NULL, NULL, 0, &r);
	if (rc < 0 || r.status != 200 || it_resp_version(&r, &s.ver) < 0)
		it_child_fail("GET %s: want 200 with an ETag, got %s", path,
			      rc < 0 ? strerror(-rc) : it_resp_brief(&r));
	s.val = strtol(r.body, &end, 10);
	if (end == r.body || *end)
		it_child_fail("GET %s: not a batch's value: %s", path, it_resp_brief(&r));
	it_resp_free(&r);
	return s;
}

/* Reads first, second, first again: the second key's version lies between
 * the two reads of the first (linearizable reads, and batches publish as
 * one); if the first did not change, the second has the very same batch. */
static void pair_reader(int idx, struct pair_drill *x)
{
	const char *k1 = idx % 2 ? "b" : "a", *k2 = idx % 2 ? "a" : "b";
	struct it_conn conn, *c = NULL;
	uint64_t last = 0;

	if (idx % 2) {
		if (it_conn_open(&conn, x->port) < 0)
			it_child_fail("connect");
		c = &conn;
	}
	for (long i = 0; i < PAIR_READS_MAX && !x->writer_done; i++) {
		struct seen_val p = pair_get(c, x->port, k1);
		struct seen_val q = pair_get(c, x->port, k2);
		struct seen_val p2 = pair_get(c, x->port, k1);

		if (p.ver > q.ver || q.ver > p2.ver || p.ver < last)
			it_child_fail("read %ld: %s@%" PRIu64 " then %s@%" PRIu64 " then %s@%"
				      PRIu64 " (after %" PRIu64 "): a batch seen in part, or "
				      "a read going back", i, k1, p.ver, k2, q.ver, k1, p2.ver,
				      last);
		if (p.ver == p2.ver && (q.ver != p.ver || q.val != p.val || p2.val != p.val))
			it_child_fail("read %ld: %s=%ld@%" PRIu64 ", %s=%ld@%" PRIu64 ", %s=%ld@%"
				      PRIu64 ": keys of one batch from different batches", i,
				      k1, p.val, p.ver, k2, q.val, q.ver, k1, p2.val, p2.ver);
		if (p2.ver != last)
			x->changes[idx]++;
		last = p2.ver;
		x->reads[idx] = i + 1;
		if (i == 0)
			__atomic_add_fetch(&x->readers_ready, 1, __ATOMIC_SEQ_CST);
	}
	if (c)
		it_conn_close(c);
}

static void pair_client(int idx, void *arg)
{
	if (idx == 0)
		pair_writer(arg);
	else
		pair_reader(idx - 1, arg);
}

Test(it_keys_batch, batch_is_seen_whole_by_concurrent_readers, .timeout = 120)
{
	struct pair_drill *x = it_shared_alloc(sizeof(*x));
	char val[16];
	int failed;

	cr_assert_not_null(x);
	start(NULL);
	x->port = d.port;
	x->v0 = batch_str("put pair%2Fa 0\nput pair%2Fb 0\n", 2);
	failed = it_fork_clients(1 + PAIR_READERS, pair_client, x);
	if (failed)
		it_daemon_dump_log(&d);
	cr_assert_eq(failed, 0, "%d atomicity drill clients failed (see stderr)", failed);
	cr_assert(x->writer_done, "the writer did not finish its %d batches", PAIR_BATCHES);
	for (int i = 0; i < PAIR_READERS; i++)
		cr_assert_gt(x->changes[i], 1, "reader %d saw no batch land (%ld reads): "
			     "the drill tested nothing", i, x->reads[i]);
	snprintf(val, sizeof(val), "%d", PAIR_BATCHES);
	it_expect_value(d.port, "/kv/pair%2Fa", val, strlen(val), 0);
	it_expect_value(d.port, "/kv/pair%2Fb", val, strlen(val), 0);
	cr_log_info("atomicity drill: reads %ld / %ld, changes seen %ld / %ld",
		    x->reads[0], x->reads[1], x->changes[0], x->changes[1]);
	it_shared_free(x, sizeof(*x));
	finish();
}

/* ---- batches across restarts and crashes --------------------------------- */

/* The model of the store the restart tests keep: key i of n holds
 * "<round>:<i>" at version ver[i], or is absent (ver 0). */
struct model {
	int n;
	uint64_t ver[3000];
	int round[3000];
};

static void model_key(int i, char *k, size_t n)
{
	snprintf(k, n, "r/%04d%s", i, i % 3 ? "" : " \xff"); /* some need escapes */
}

/* One batch over the model: puts keys [from, from + cnt) with round r,
 * deletes every 5th key below from, and checks key 0's version once it
 * exists. Updates the model from the answer. */
static uint64_t model_batch(struct model *m, int r, int from, int cnt)
{
	uint64_t check = m->ver[0];
	struct sbuf b = { 0 };
	unsigned applied = 0;
	uint64_t v;
	char k[32], val[32];

	if (check)
		sb_printf(&b, "check r%%2F0000%%20%%FF %" PRIu64 "\n", check);
	for (int i = from; i < from + cnt; i++) {
		model_key(i, k, sizeof(k));
		snprintf(val, sizeof(val), "%d:%d", r, i);
		sb_op(&b, "put", k, strlen(k), val, strlen(val));
		applied++;
	}
	for (int i = 1; i < from; i += 5) {
		model_key(i, k, sizeof(k));
		sb_op(&b, "del", k, strlen(k), NULL, 0);
		applied += m->ver[i] != 0;
	}
	v = batch_ok(b.p, b.len, applied);
	sb_free(&b);
	for (int i = from; i < from + cnt; i++)
		m->ver[i] = v, m->round[i] = r;
	for (int i = 1; i < from; i += 5)
		m->ver[i] = 0;
	if (from + cnt > m->n)
		m->n = from + cnt;
	return v;
}

/* Asserts the daemon holds exactly the model, by GET and by listing. */
static void model_check(const struct model *m, const char *when)
{
	struct keys ks;
	size_t live = 0, j = 0;

	for (int i = 0; i < m->n; i++) {
		char k[32], val[32];

		model_key(i, k, sizeof(k));
		snprintf(val, sizeof(val), "%d:%d", m->round[i], i);
		if (m->ver[i])
			expect_key(k, strlen(k), val, strlen(val), m->ver[i]);
		else
			expect_key(k, strlen(k), NULL, 0, 0);
		live += m->ver[i] != 0;
	}
	list_all("r%2F", 999, &ks);
	cr_assert_eq(ks.n, live, "%s: %zu keys listed, the acknowledged batches "
		     "leave %zu", when, ks.n, live);
	for (int i = 0; i < m->n; i++) {
		char k[32];

		if (!m->ver[i])
			continue;
		model_key(i, k, sizeof(k));
		cr_assert_str_eq(ks.k[j], k, "%s: listing #%zu", when, j);
		j++;
	}
	keys_free(&ks);
}

/* POST /admin/compact, then waits for the job: it must be done. */
static void compact_and_wait(void)
{
	char state[32], *job;

	job = it_job_wait(d.port, it_compact_start(d.port, NULL), NULL, state,
			  sizeof(state));
	cr_assert_str_eq(state, "done", "compaction: %s", job);
	free(job);
}

Test(it_keys_batch, batch_survives_a_restart, .timeout = 60)
{
	static struct model m;
	char dir[300];
	uint64_t v1, v2, vn;

	memset(&m, 0, sizeof(m));
	start(NULL);
	snprintf(dir, sizeof(dir), "%s/data", base);
	v1 = model_batch(&m, 1, 0, 400);
	v2 = model_batch(&m, 2, 400, 600);
	cr_assert_gt(v2, v1);
	model_check(&m, "before the restart");
	it_stop_clean(&d);
	it_restart(&d, dir, NULL);
	model_check(&m, "after a restart");
	/* versions go on above the batch's */
	vn = model_batch(&m, 3, 1000, 10);
	cr_assert_gt(vn, v2);
	it_stop_clean(&d);
	it_restart(&d, dir, NULL);
	model_check(&m, "after a second restart");
	/* Compacted (batch parts become plain records, and the next start
	 * loads the index snapshot), then one more batch, then kill -9. */
	compact_and_wait();
	model_check(&m, "after a compaction");
	vn = model_batch(&m, 4, 1010, 300);
	IT_OK(it_daemon_kill9_all(&d));
	it_restart(&d, dir, NULL);
	model_check(&m, "after a compaction, a batch and kill -9");
	cr_assert_gt(put_key("after", 5, "x"), vn);
	finish();
}

Test(it_keys_batch, acknowledged_batch_survives_kill9_of_all_processes, .timeout = 90)
{
	static struct model m;
	char dir[300];
	uint64_t v = 0, prev = 0;

	memset(&m, 0, sizeof(m));
	start(NULL);
	snprintf(dir, sizeof(dir), "%s/data", base);
	for (int round = 1; round <= 4; round++) {
		/* a small batch, then a large one, SIGKILL right after its 200 */
		v = model_batch(&m, round * 10, (round - 1) * 700, 50);
		cr_assert_gt(v, prev);
		v = model_batch(&m, round * 10 + 1, (round - 1) * 700 + 50, 650);
		prev = v;
		IT_OK(it_daemon_kill9_all(&d));
		it_restart(&d, dir, NULL);
		model_check(&m, "after kill -9 of master and workers");
	}
	/* versions are never handed out twice: the next write is above */
	cr_assert_gt(put_key("after", 5, "x"), v);
	finish();
}

/* A batch in flight when everything is SIGKILLed is, after recovery,
 * whole or absent; every acknowledged one is whole. Batch i writes
 * CUT_KEYS keys c/<i>/<j> = i and c/last = i. Each cycle lets a writer
 * get CUT_AFTER batches through, waits a little longer each time, so the
 * kill lands at different points of the next batch, and restarts. */
#define CUT_KEYS 2000
#define CUT_BATCHES_MAX 200
#define CUT_AFTER 3
#define CUT_CYCLES 4

struct cut_drill {
	int port;
	int first;            /* the number of the writer's first batch */
	volatile int acked;   /* the last batch answered 200 */
};

static void cut_writer(struct cut_drill *x)
{
	struct sbuf b = { 0 };

	for (int i = x->first; i < x->first + CUT_BATCHES_MAX; i++) {
		struct it_resp r;
		int rc;

		b.len = 0;
		for (int j = 0; j < CUT_KEYS; j++)
			sb_printf(&b, "put c%%2F%03d%%2F%04d %d\n", i, j, i);
		sb_printf(&b, "put c%%2Flast %d\n", i);
		rc = it_request(x->port, "POST", "/batch", NULL, b.p, b.len, &r);
		if (rc < 0)
			break; /* the daemon is gone */
		if (r.status != 200)
			it_child_fail("batch %d: want 200, got %s", i, it_resp_brief(&r));
		it_resp_free(&r);
		x->acked = i;
	}
	sb_free(&b);
	_exit(0);
}

/* Keys c/<i>/ after the restart: 0 or CUT_KEYS. With full, every one is
 * read: all hold i, at one version (returned). */
static size_t cut_count(int i, int full, uint64_t *ver)
{
	char prefix[32], want[16];
	struct keys ks;
	size_t n;

	snprintf(prefix, sizeof(prefix), "c%%2F%03d%%2F", i);
	snprintf(want, sizeof(want), "%d", i);
	list_all(prefix, LIMIT_MAX, &ks);
	*ver = 0;
	for (size_t j = 0; full && j < ks.n; j++) {
		char path[64];
		struct it_resp r;
		uint64_t v;

		snprintf(path, sizeof(path), "/kv/c%%2F%03d%%2F%s", i, ks.k[j] + 6);
		it_do(d.port, "GET", path, NULL, NULL, 0, &r, 200);
		v = it_version(&r, path);
		cr_assert(r.body_len == strlen(want) && !memcmp(r.body, want, r.body_len),
			  "%s: %s", path, it_resp_brief(&r));
		cr_assert(!*ver || v == *ver, "batch %d: %s has version %" PRIu64 ", another "
			  "key of it %" PRIu64, i, path, v, *ver);
		*ver = v;
		it_resp_free(&r);
	}
	n = ks.n;
	keys_free(&ks);
	return n;
}

/* One cycle: a writer from batch x->first, SIGKILL delay_us after its
 * CUT_AFTER-th answer, restart. Returns the last batch in the store. */
static int cut_cycle(struct cut_drill *x, const char *dir, int delay_us, uint64_t *prev)
{
	struct it_resp r;
	char last[16];
	int64_t deadline;
	uint64_t ver;
	pid_t w;
	int st, acked, present;

	x->port = d.port;
	x->acked = x->first - 1;
	fflush(NULL);
	w = fork();
	cr_assert_geq(w, 0);
	if (w == 0)
		cut_writer(x);
	deadline = it_now_ms() + 30000;
	while (x->acked < x->first - 1 + CUT_AFTER && it_now_ms() < deadline)
		usleep(100);
	usleep((useconds_t)delay_us);
	IT_OK(it_daemon_kill9_all(&d));
	cr_assert_eq(waitpid(w, &st, 0), w);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the batch writer failed");
	acked = x->acked;
	cr_assert_geq(acked, x->first - 1 + CUT_AFTER, "too few batches acknowledged");
	it_restart(&d, dir, NULL);
	for (int i = 1; i <= acked; i++) {
		int full = i >= x->first;

		cr_assert_eq(cut_count(i, full, &ver), CUT_KEYS, "acknowledged batch %d "
			     "is not whole after kill -9", i);
		if (full) {
			cr_assert_gt(ver, *prev, "batch %d", i);
			*prev = ver;
		}
	}
	present = cut_count(acked + 1, 1, &ver) != 0;
	cr_assert(!present || cut_count(acked + 1, 0, &ver) == CUT_KEYS,
		  "batch %d, in flight at the kill, is there in part", acked + 1);
	if (present)
		*prev = ver;
	cr_assert_eq(cut_count(acked + 2, 0, &ver), 0, "batch %d was never sent", acked + 2);
	snprintf(last, sizeof(last), "%d", acked + present);
	it_do(d.port, "GET", "/kv/c%2Flast", NULL, NULL, 0, &r, 200);
	cr_assert(r.body_len == strlen(last) && !memcmp(r.body, last, r.body_len),
		  "c/last must be %s (acked %d): %s", last, acked, it_resp_brief(&r));
	it_resp_free(&r);
	cr_log_info("kill -9 %d us after answer %d: batches to %d acknowledged, batch %d %s",
		    delay_us, CUT_AFTER, acked, acked + 1, present ? "whole" : "absent");
	return acked + present;
}

Test(it_keys_batch, batch_cut_by_kill9_is_whole_or_absent, .timeout = 120)
{
	struct cut_drill *x = it_shared_alloc(sizeof(*x));
	char dir[300];
	uint64_t prev = 0;

	cr_assert_not_null(x);
	start(NULL);
	snprintf(dir, sizeof(dir), "%s/data", base);
	x->first = 1;
	for (int c = 0; c < CUT_CYCLES; c++)
		x->first = cut_cycle(x, dir, c * 1500, &prev) + 1;
	/* versions are never handed out twice: a new write is above them all */
	cr_assert_gt(put_key("after", 5, "x"), prev);
	it_shared_free(x, sizeof(*x));
	finish();
}
