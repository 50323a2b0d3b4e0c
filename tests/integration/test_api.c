/* tests/integration/test_api.c — the HTTP API contract (HTTP-API.md), one
 * status code or boundary per test, against the real daemon.
 *
 * Each test starts its own caskd (4 workers) in a fresh temp dir, checks the
 * exact status, headers and body, then stops it with SIGTERM and expects
 * exit status 0, no leaked fds and no unreaped children. Requests go over
 * fresh connections unless a test needs keep-alive, so they land on
 * different workers.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

/* Longest key the contract allows, in bytes after percent-decoding. */
#define MAX_KEY_BYTES 1024
/* Bytes of the large value round trip. */
#define ONE_MIB (1024 * 1024)
/* --max-value-size of the daemon in the size-limit tests. */
#define SMALL_MAX_VALUE 1024
/* --max-keys of the daemon in the index-full tests. */
#define SMALL_MAX_KEYS 16

TestSuite(it_api, .init = it_setup, .fini = it_teardown);

static struct it_daemon d;
static char base[64];

static void start(void)
{
	it_start(&d, base, sizeof(base), NULL);
}

static void finish(void)
{
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* "/kv/" followed by n copies of unit. */
static char *key_path(const char *prefix, const char *unit, int n)
{
	size_t ul = strlen(unit), pl = strlen(prefix);
	char *p = malloc(pl + ul * (size_t)n + 1);

	cr_assert_not_null(p);
	memcpy(p, prefix, pl);
	for (int i = 0; i < n; i++)
		memcpy(p + pl + ul * (size_t)i, unit, ul);
	p[pl + ul * (size_t)n] = '\0';
	return p;
}

/* Splits an Allow value into tokens and compares with want (sorted,
 * comma-separated, no spaces), ignoring order and spacing. */
static int allow_is(const char *allow, const char *const *want, int nwant)
{
	char copy[256];
	int seen = 0;

	if (!allow)
		return 0;
	snprintf(copy, sizeof(copy), "%s", allow);
	for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t;
	     t = strtok_r(NULL, ", ", &save)) {
		int hit = 0;

		for (int i = 0; i < nwant; i++)
			if (strcmp(t, want[i]) == 0)
				hit = 1;
		if (!hit)
			return 0;
		seen++;
	}
	return seen == nwant;
}

/* ---- PUT / GET / HEAD / DELETE ------------------------------------------ */

Test(it_api, put_new_key_is_201_with_version_etag_and_empty_body,
     .timeout = 30)
{
	struct it_resp r;

	start();
	it_do(d.port, "PUT", "/kv/k1", NULL, "v1", 2, &r, 201);
	it_version(&r, "PUT /kv/k1");
	cr_assert_eq(r.body_len, 0, "201 must have an empty body: %s",
		     it_resp_brief(&r));
	it_resp_free(&r);
	finish();
}

Test(it_api, put_existing_key_is_204_with_larger_etag, .timeout = 30)
{
	uint64_t v1, v2, v3;

	start();
	v1 = it_put(d.port, "/kv/k", "one", 3, 201);
	v2 = it_put(d.port, "/kv/k", "two", 3, 204);
	cr_assert_gt(v2, v1, "replace got version %" PRIu64 ", not above "
		     "the first PUT's %" PRIu64, v2, v1);
	/* One sequence for the whole database, not one per key. */
	v3 = it_put(d.port, "/kv/other", "x", 1, 201);
	cr_assert_gt(v3, v2, "PUT of another key got version %" PRIu64
		     ", not above %" PRIu64, v3, v2);
	finish();
}

Test(it_api, get_returns_value_type_length_and_etag_of_last_put,
     .timeout = 30)
{
	struct it_resp r;
	uint64_t v;
	const char *ct, *cl;

	start();
	it_put(d.port, "/kv/greeting", "hello", 5, 201);
	v = it_put(d.port, "/kv/greeting", "hello, world", 12, 204);
	it_do(d.port, "GET", "/kv/greeting", NULL, NULL, 0, &r, 200);
	cr_assert_eq(r.body_len, 12, "%s", it_resp_brief(&r));
	cr_assert_str_eq(r.body, "hello, world", "%s", it_resp_brief(&r));
	ct = it_resp_header(&r, "Content-Type");
	cr_assert(ct && strcmp(ct, "application/octet-stream") == 0,
		  "want Content-Type application/octet-stream: %s",
		  it_resp_brief(&r));
	cl = it_resp_header(&r, "Content-Length");
	cr_assert(cl && strcmp(cl, "12") == 0, "want Content-Length: 12: %s",
		  it_resp_brief(&r));
	cr_assert_eq(it_version(&r, "GET"), v, "GET ETag is not the last "
		     "PUT's \"%" PRIu64 "\": %s", v, it_resp_brief(&r));
	it_resp_free(&r);
	finish();
}

Test(it_api, get_round_trips_binary_value_with_nul_bytes, .timeout = 30)
{
	unsigned char val[1000];
	uint64_t v;

	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (unsigned char)(i * 7 % 256); /* NULs, CR, LF, 0xff */
	val[0] = 0;
	val[sizeof(val) - 1] = 0;
	start();
	v = it_put(d.port, "/kv/bin", val, sizeof(val), 201);
	it_expect_value(d.port, "/kv/bin", val, sizeof(val), v);
	finish();
}

Test(it_api, get_round_trips_one_mib_value, .timeout = 30)
{
	unsigned char *val = malloc(ONE_MIB);
	uint64_t v, x = 88172645463325252ULL;

	cr_assert_not_null(val);
	for (size_t i = 0; i < ONE_MIB; i++) { /* xorshift: no pattern */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		val[i] = (unsigned char)x;
	}
	start();
	v = it_put(d.port, "/kv/big", val, ONE_MIB, 201);
	it_expect_value(d.port, "/kv/big", val, ONE_MIB, v);
	free(val);
	finish();
}

Test(it_api, put_empty_value_is_stored_as_empty, .timeout = 30)
{
	struct it_resp r;
	uint64_t v;
	const char *cl;

	start();
	v = it_put(d.port, "/kv/empty", "", 0, 201);
	it_do(d.port, "GET", "/kv/empty", NULL, NULL, 0, &r, 200);
	cl = it_resp_header(&r, "Content-Length");
	cr_assert(cl && strcmp(cl, "0") == 0 && r.body_len == 0,
		  "want an empty value: %s", it_resp_brief(&r));
	cr_assert_eq(it_version(&r, "GET"), v);
	it_resp_free(&r);
	finish();
}

Test(it_api, head_gives_length_and_etag_without_body, .timeout = 30)
{
	struct it_conn c;
	struct it_resp r;
	const char *cl;
	uint64_t v;

	start();
	v = it_put(d.port, "/kv/h", "0123456789abcdef", 16, 201);
	IT_OK(it_conn_open(&c, d.port));
	IT_OK(it_conn_request(&c, "HEAD", "/kv/h", NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 200, "HEAD /kv/h: %s", it_resp_brief(&r));
	cl = it_resp_header(&r, "Content-Length");
	cr_assert(cl && strcmp(cl, "16") == 0,
		  "HEAD must give the value's Content-Length 16: %s",
		  it_resp_brief(&r));
	cr_assert_eq(it_version(&r, "HEAD"), v);
	it_resp_free(&r);
	/* Had HEAD sent a body, it would be parsed as this response. */
	IT_OK(it_conn_request(&c, "GET", "/kv/h", NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 200, "GET after HEAD on one connection: %s "
		     "(did HEAD send a body?)", it_resp_brief(&r));
	cr_assert_str_eq(r.body, "0123456789abcdef");
	it_resp_free(&r);
	IT_OK(it_conn_request(&c, "HEAD", "/kv/absent", NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 404, "HEAD /kv/absent: %s", it_resp_brief(&r));
	it_resp_free(&r);
	IT_OK(it_conn_request(&c, "GET", "/kv/h", NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 200, "GET after HEAD 404: %s (did the 404 to "
		     "HEAD send a body?)", it_resp_brief(&r));
	it_resp_free(&r);
	it_conn_close(&c);
	finish();
}

Test(it_api, get_with_if_none_match_current_version_is_304, .timeout = 30)
{
	struct it_resp r;
	char hdr[64];
	uint64_t v;

	start();
	v = it_put(d.port, "/kv/c", "cached", 6, 201);
	snprintf(hdr, sizeof(hdr), "If-None-Match: \"%" PRIu64 "\"\r\n", v);
	it_do(d.port, "GET", "/kv/c", hdr, NULL, 0, &r, 304);
	cr_assert_eq(r.body_len, 0, "304 has no body: %s", it_resp_brief(&r));
	cr_assert_eq(it_version(&r, "304"), v, "304 must carry the ETag");
	it_resp_free(&r);
	/* A stale version is not a match: the value comes back. */
	snprintf(hdr, sizeof(hdr), "If-None-Match: \"%" PRIu64 "\"\r\n",
		 v - 1);
	it_do(d.port, "GET", "/kv/c", hdr, NULL, 0, &r, 200);
	cr_assert_str_eq(r.body, "cached", "%s", it_resp_brief(&r));
	it_resp_free(&r);
	finish();
}

Test(it_api, get_absent_key_is_404_json, .timeout = 30)
{
	start();
	it_expect_error(d.port, "GET", "/kv/never-written", NULL, NULL, 0, 404,
			"not_found");
	finish();
}

Test(it_api, delete_is_204_with_etag_then_gone_and_again_404, .timeout = 30)
{
	struct it_resp r;
	uint64_t v, vd;

	start();
	v = it_put(d.port, "/kv/doomed", "x", 1, 201);
	it_do(d.port, "DELETE", "/kv/doomed", NULL, NULL, 0, &r, 204);
	vd = it_version(&r, "DELETE");
	cr_assert_gt(vd, v, "DELETE version %" PRIu64 " not above the PUT's %"
		     PRIu64, vd, v);
	cr_assert_eq(r.body_len, 0, "%s", it_resp_brief(&r));
	it_resp_free(&r);
	it_expect_error(d.port, "GET", "/kv/doomed", NULL, NULL, 0, 404,
			"not_found");
	it_expect_error(d.port, "DELETE", "/kv/doomed", NULL, NULL, 0, 404,
			"not_found");
	/* The key can be created again: 201, not 204. */
	it_put(d.port, "/kv/doomed", "back", 4, 201);
	finish();
}

/* ---- keys ------------------------------------------------------------------- */

Test(it_api, slash_and_percent_encodings_name_the_same_key, .timeout = 30)
{
	uint64_t v;

	start();
	v = it_put(d.port, "/kv/a%2Fb", "slashed", 7, 201);
	it_expect_value(d.port, "/kv/a/b", "slashed", 7, v);
	it_expect_value(d.port, "/kv/a%2fb", "slashed", 7, v);
	v = it_put(d.port, "/kv/a/b", "again", 5, 204);
	it_expect_value(d.port, "/kv/a%2Fb", "again", 5, v);
	/* Any byte may be escaped, and escapes decode to the same key. */
	v = it_put(d.port, "/kv/%41%42", "ab", 2, 201);
	it_expect_value(d.port, "/kv/AB", "ab", 2, v);
	v = it_put(d.port, "/kv/x%20y", "space", 5, 201);
	it_expect_value(d.port, "/kv/x%20y", "space", 5, v);
	it_expect_error(d.port, "GET", "/kv/x%2520y", NULL, NULL, 0, 404,
			"not_found");
	/* A deep path is one key, not a prefix match. */
	it_expect_error(d.port, "GET", "/kv/a", NULL, NULL, 0, 404,
			"not_found");
	it_expect_error(d.port, "GET", "/kv/a/b/c", NULL, NULL, 0, 404,
			"not_found");
	finish();
}

Test(it_api, percent_escapes_decode_before_length_check, .timeout = 30)
{
	/* 1024 x "%20" is 3072 bytes encoded but 1024 decoded: allowed. */
	char *ok = key_path("/kv/", "%20", MAX_KEY_BYTES);
	char *over = key_path("/kv/", "%20", MAX_KEY_BYTES + 1);
	uint64_t v;

	start();
	v = it_put(d.port, ok, "spaces", 6, 201);
	it_expect_value(d.port, ok, "spaces", 6, v);
	it_expect_error(d.port, "PUT", over, NULL, "x", 1, 400, "bad_key");
	free(ok);
	free(over);
	finish();
}

Test(it_api, empty_key_is_400, .timeout = 30)
{
	start();
	it_expect_error(d.port, "PUT", "/kv/", NULL, "x", 1, 400, "bad_key");
	it_expect_error(d.port, "GET", "/kv/", NULL, NULL, 0, 400, "bad_key");
	it_expect_error(d.port, "DELETE", "/kv/", NULL, NULL, 0, 400,
			"bad_key");
	it_expect_error(d.port, "POST", "/incr/", NULL, NULL, 0, 400,
			"bad_key");
	finish();
}

Test(it_api, key_of_1024_bytes_is_ok_and_1025_is_400, .timeout = 30)
{
	char *k1024 = key_path("/kv/", "k", MAX_KEY_BYTES);
	char *k1025 = key_path("/kv/", "k", MAX_KEY_BYTES + 1);
	uint64_t v;

	start();
	v = it_put(d.port, k1024, "max", 3, 201);
	it_expect_value(d.port, k1024, "max", 3, v);
	it_expect_error(d.port, "PUT", k1025, NULL, "x", 1, 400, "bad_key");
	it_expect_error(d.port, "GET", k1025, NULL, NULL, 0, 400, "bad_key");
	free(k1024);
	free(k1025);
	finish();
}

Test(it_api, key_with_encoded_nul_is_400, .timeout = 30)
{
	start();
	it_expect_error(d.port, "PUT", "/kv/a%00b", NULL, "x", 1, 400,
			"bad_key");
	it_expect_error(d.port, "GET", "/kv/%00", NULL, NULL, 0, 400,
			"bad_key");
	/* Nothing was written under the truncated name. */
	it_expect_error(d.port, "GET", "/kv/a", NULL, NULL, 0, 404,
			"not_found");
	finish();
}

Test(it_api, bad_percent_escape_is_400, .timeout = 30)
{
	static const char *const bad[] = { "/kv/%zz", "/kv/a%g0", "/kv/a%4",
					   "/kv/a%", "/kv/%%41" };

	start();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		it_expect_error(d.port, "PUT", bad[i], NULL, "x", 1, 400,
				"bad_key");
	it_expect_error(d.port, "GET", "/kv/%zz", NULL, NULL, 0, 400,
			"bad_key");
	finish();
}

/* ---- conditional writes ------------------------------------------------------- */

Test(it_api, if_match_current_version_is_204, .timeout = 30)
{
	struct it_resp r;
	char hdr[64];
	uint64_t v, v2;

	start();
	v = it_put(d.port, "/kv/cas", "a", 1, 201);
	snprintf(hdr, sizeof(hdr), "If-Match: \"%" PRIu64 "\"\r\n", v);
	it_do(d.port, "PUT", "/kv/cas", hdr, "b", 1, &r, 204);
	v2 = it_version(&r, "conditional PUT");
	cr_assert_gt(v2, v);
	it_resp_free(&r);
	it_expect_value(d.port, "/kv/cas", "b", 1, v2);
	finish();
}

/* RFC 9110 13.1.1: If-Match uses the strong comparison, so a weak tag
 * never matches, not even the current version (issue 12); If-None-Match
 * on a read compares weakly, so the same tag gives 304 there. */
Test(it_api, if_match_with_a_weak_tag_is_412_even_for_the_current_version,
     .timeout = 30)
{
	struct it_resp r;
	char hdr[64];
	uint64_t v;

	start();
	v = it_put(d.port, "/kv/weak", "a", 1, 201);
	snprintf(hdr, sizeof(hdr), "If-Match: W/\"%" PRIu64 "\"\r\n", v);
	it_expect_error(d.port, "PUT", "/kv/weak", hdr, "b", 1, 412,
			"precondition_failed");
	it_expect_error(d.port, "DELETE", "/kv/weak", hdr, NULL, 0, 412,
			"precondition_failed");
	it_expect_error(d.port, "PUT", "/kv/weak-absent", hdr, "b", 1, 412,
			"precondition_failed");
	it_expect_value(d.port, "/kv/weak", "a", 1, v);
	snprintf(hdr, sizeof(hdr), "If-None-Match: W/\"%" PRIu64 "\"\r\n", v);
	it_do(d.port, "GET", "/kv/weak", hdr, NULL, 0, &r, 304);
	it_resp_free(&r);
	finish();
}

Test(it_api, if_match_stale_version_is_412_and_value_unchanged,
     .timeout = 30)
{
	char hdr[64];
	uint64_t v1, v2;

	start();
	v1 = it_put(d.port, "/kv/cas", "a", 1, 201);
	v2 = it_put(d.port, "/kv/cas", "b", 1, 204);
	snprintf(hdr, sizeof(hdr), "If-Match: \"%" PRIu64 "\"\r\n", v1);
	it_expect_error(d.port, "PUT", "/kv/cas", hdr, "c", 1, 412,
			"precondition_failed");
	it_expect_value(d.port, "/kv/cas", "b", 1, v2);
	finish();
}

Test(it_api, if_match_on_absent_key_is_412_and_key_stays_absent,
     .timeout = 30)
{
	start();
	it_expect_error(d.port, "PUT", "/kv/nobody", "If-Match: \"1\"\r\n",
			"x", 1, 412, "precondition_failed");
	it_expect_error(d.port, "GET", "/kv/nobody", NULL, NULL, 0, 404,
			"not_found");
	finish();
}

Test(it_api, if_none_match_star_writes_only_if_absent, .timeout = 30)
{
	struct it_resp r;
	uint64_t v;

	start();
	it_do(d.port, "PUT", "/kv/once", "If-None-Match: *\r\n", "first", 5,
	      &r, 201);
	v = it_version(&r, "If-None-Match: * on absent");
	it_resp_free(&r);
	it_expect_error(d.port, "PUT", "/kv/once", "If-None-Match: *\r\n",
			"second", 6, 412, "precondition_failed");
	it_expect_value(d.port, "/kv/once", "first", 5, v);
	finish();
}

/* A 412 says which condition failed and why: before, every one said
 * "the key's current version does not match the condition", even where
 * the key exists (If-None-Match: *) or does not (If-Match). */
Test(it_api, a_failed_condition_says_which_and_why, .timeout = 30)
{
	char want[96], hdr[64];
	uint64_t v;

	start();
	v = it_put(d.port, "/kv/k", "1", 1, 201);
	snprintf(want, sizeof(want), "If-None-Match: *: the key exists (version %" PRIu64 ")",
		 v);
	it_expect_error_saying(d.port, "PUT", "/kv/k", "If-None-Match: *\r\n", "2", 1, 412,
			       "precondition_failed", want);
	snprintf(hdr, sizeof(hdr), "If-Match: \"%" PRIu64 "\"\r\n", v + 100);
	snprintf(want, sizeof(want), "If-Match: the key's version is %" PRIu64 ", not %" PRIu64,
		 v, v + 100);
	it_expect_error_saying(d.port, "DELETE", "/kv/k", hdr, NULL, 0, 412,
			       "precondition_failed", want);
	snprintf(hdr, sizeof(hdr), "If-Match: W/\"%" PRIu64 "\"\r\n", v);
	it_expect_error_saying(d.port, "PUT", "/kv/k", hdr, "2", 1, 412, "precondition_failed",
			       "If-Match: a weak tag never matches");
	it_expect_error_saying(d.port, "POST", "/incr/absent", "If-Match: *\r\n", NULL, 0, 412,
			       "precondition_failed", "If-Match: the key does not exist");
	it_expect_value(d.port, "/kv/k", "1", 1, v);
	finish();
}

Test(it_api, delete_with_wrong_if_match_is_412_and_right_one_is_204,
     .timeout = 30)
{
	struct it_resp r;
	char hdr[64];
	uint64_t v;

	start();
	v = it_put(d.port, "/kv/keep", "x", 1, 201);
	snprintf(hdr, sizeof(hdr), "If-Match: \"%" PRIu64 "\"\r\n", v + 1000);
	it_expect_error(d.port, "DELETE", "/kv/keep", hdr, NULL, 0, 412,
			"precondition_failed");
	it_expect_value(d.port, "/kv/keep", "x", 1, v);
	snprintf(hdr, sizeof(hdr), "If-Match: \"%" PRIu64 "\"\r\n", v);
	it_do(d.port, "DELETE", "/kv/keep", hdr, NULL, 0, &r, 204);
	it_resp_free(&r);
	it_expect_error(d.port, "GET", "/kv/keep", NULL, NULL, 0, 404,
			"not_found");
	finish();
}

/* ---- incr ---------------------------------------------------------------------- */

/* POST /incr/<path>; asserts 200 text/plain with body want; returns the
 * version. */
static uint64_t incr_expect(const char *path, const char *want)
{
	struct it_resp r;
	const char *ct;
	uint64_t v;

	it_do(d.port, "POST", path, NULL, NULL, 0, &r, 200);
	cr_assert(r.body_len == strlen(want) && strcmp(r.body, want) == 0,
		  "POST %s: want body \"%s\", got %s", path, want,
		  it_resp_brief(&r));
	ct = it_resp_header(&r, "Content-Type");
	cr_assert(ct && strncmp(ct, "text/plain", 10) == 0,
		  "POST %s: want Content-Type text/plain: %s", path,
		  it_resp_brief(&r));
	v = it_version(&r, path);
	it_resp_free(&r);
	return v;
}

Test(it_api, incr_counts_from_absent_key_with_by_and_growing_etag,
     .timeout = 30)
{
	uint64_t v1, v2, v3;

	start();
	v1 = incr_expect("/incr/c", "1");
	v2 = incr_expect("/incr/c?by=5", "6");
	v3 = incr_expect("/incr/c?by=-10", "-4");
	cr_assert(v1 < v2 && v2 < v3, "incr versions must grow: %" PRIu64
		  ", %" PRIu64 ", %" PRIu64, v1, v2, v3);
	/* The stored value is the decimal text, under the same key. */
	it_expect_value(d.port, "/kv/c", "-4", 2, v3);
	incr_expect("/incr/c?by=0", "-4");
	finish();
}

Test(it_api, incr_with_bad_by_is_400_and_writes_nothing, .timeout = 30)
{
	static const char *const bad[] = {
		"/incr/c?by=abc", "/incr/c?by=99999999999999999999",
		"/incr/c?by=9223372036854775808", "/incr/c?by=1.5",
		"/incr/c?by=5x",
	};

	start();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		it_expect_error(d.port, "POST", bad[i], NULL, NULL, 0, 400,
				"bad_query");
	it_expect_error(d.port, "GET", "/kv/c", NULL, NULL, 0, 404,
			"not_found");
	finish();
}

/* A typo of by (or a second by) no longer adds 1 silently. */
Test(it_api, incr_unknown_or_repeated_parameter_is_400_naming_it, .timeout = 30)
{
	static const struct {
		const char *path, *named;
	} bad[] = {
		{ "/incr/c?bye=5", "'bye'" },
		{ "/incr/c?by=5&by=6", "'by'" },
		{ "/incr/c?by=1&step=2", "'step'" },
	};
	start();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		it_expect_error_saying(d.port, "POST", bad[i].path, NULL, NULL, 0, 400,
				       "bad_query", bad[i].named);
	it_expect_error(d.port, "GET", "/kv/c", NULL, NULL, 0, 404, "not_found");
	/* /kv/ ignores query strings, as the contract says */
	it_put(d.port, "/kv/c?whatever=1&whatever=2", "7", 1, 201);
	it_expect_value(d.port, "/kv/c?x", "7", 1, 0);
	finish();
}

Test(it_api, incr_on_non_integer_value_is_409_and_value_unchanged,
     .timeout = 30)
{
	static const char *const bad[] = { "hello", "007", "+5", " 5", "5\n",
					   "1e3", "" };

	start();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strlen(bad[i]);
		uint64_t v = it_put(d.port, "/kv/s", bad[i], len, 0);

		it_expect_error(d.port, "POST", "/incr/s", NULL, NULL, 0, 409,
				"not_integer");
		it_expect_value(d.port, "/kv/s", bad[i], len, v);
	}
	finish();
}

Test(it_api, incr_to_int64_max_is_200_and_past_it_is_409_overflow,
     .timeout = 30)
{
	uint64_t v;

	start();
	it_put(d.port, "/kv/n", "9223372036854775806", 19, 201);
	v = incr_expect("/incr/n", "9223372036854775807");
	it_expect_error(d.port, "POST", "/incr/n", NULL, NULL, 0, 409,
			"overflow");
	it_expect_value(d.port, "/kv/n", "9223372036854775807", 19, v);
	finish();
}

Test(it_api, incr_to_int64_min_is_200_and_below_it_is_409_overflow,
     .timeout = 30)
{
	uint64_t v;

	start();
	v = incr_expect("/incr/m?by=-9223372036854775808",
			"-9223372036854775808");
	it_expect_error(d.port, "POST", "/incr/m?by=-1", NULL, NULL, 0, 409,
			"overflow");
	it_expect_value(d.port, "/kv/m", "-9223372036854775808", 20, v);
	finish();
}

/* ---- limits ---------------------------------------------------------------------- */

static const char *const small_values[] = { "--max-value-size", "1024",
					    NULL };

Test(it_api, value_over_max_value_size_is_413_and_not_stored, .timeout = 30)
{
	char val[SMALL_MAX_VALUE + 1];
	uint64_t v;

	memset(val, 'v', sizeof(val));
	it_start(&d, base, sizeof(base), small_values);
	v = it_put(d.port, "/kv/fits", val, SMALL_MAX_VALUE, 201);
	it_expect_value(d.port, "/kv/fits", val, SMALL_MAX_VALUE, v);
	it_expect_error(d.port, "PUT", "/kv/fits", NULL, val, sizeof(val), 413,
			"value_too_large");
	it_expect_value(d.port, "/kv/fits", val, SMALL_MAX_VALUE, v);
	it_expect_error(d.port, "PUT", "/kv/new", NULL, val, sizeof(val), 413,
			"value_too_large");
	it_expect_error(d.port, "GET", "/kv/new", NULL, NULL, 0, 404,
			"not_found");
	finish();
}

/* Sends only the head of a PUT announcing a 100 MB body and expects the
 * 413 back without sending a byte of the body. */
static void oversize_head_only(const char *extra_header)
{
	struct it_conn c;
	struct it_resp r;
	char head[256];
	int n, rc;

	n = snprintf(head, sizeof(head), "PUT /kv/huge HTTP/1.1\r\n"
		     "Host: 127.0.0.1\r\nContent-Length: 100000000\r\n%s\r\n",
		     extra_header);
	IT_OK(it_conn_open(&c, d.port));
	IT_OK(it_conn_send_raw(&c, head, (size_t)n));
	rc = it_conn_read_response(&c, 0, &r);
	cr_assert_eq(rc, 0, "no response to a 100 MB PUT head (%s) within "
		     "%d ms: %s — is the daemon waiting for the body?",
		     extra_header[0] ? extra_header : "no Expect",
		     IT_IO_TIMEOUT_MS, strerror(-rc));
	cr_assert_eq(r.status, 413, "%s", it_resp_brief(&r));
	cr_assert(it_is_json_error(&r, "value_too_large"), "%s",
		  it_resp_brief(&r));
	it_resp_free(&r);
	it_conn_close(&c);
	it_expect_error(d.port, "GET", "/kv/huge", NULL, NULL, 0, 404,
			"not_found");
}

Test(it_api, oversized_content_length_gets_413_before_the_body,
     .timeout = 30)
{
	it_start(&d, base, sizeof(base), small_values);
	oversize_head_only("");
	finish();
}

Test(it_api, oversized_put_with_expect_100_continue_gets_413, .timeout = 30)
{
	it_start(&d, base, sizeof(base), small_values);
	oversize_head_only("Expect: 100-continue\r\n");
	finish();
}

static const char *const small_index[] = { "--max-keys", "16", NULL };

Test(it_api, index_full_is_507_until_keys_are_deleted, .timeout = 60)
{
	struct it_resp r;
	char path[64];
	int accepted = 0, full_at = -1;

	it_start(&d, base, sizeof(base), small_index);
	for (int i = 0; i < 2 * SMALL_MAX_KEYS; i++) {
		snprintf(path, sizeof(path), "/kv/full-%d", i);
		int rc = it_request(d.port, "PUT", path, NULL, "x", 1, &r);

		cr_assert_eq(rc, 0, "PUT %s: no response: %s", path,
			     strerror(-rc));
		if (r.status == 507) {
			cr_assert(it_is_json_error(&r, "index_full"),
				  "PUT %s: %s", path, it_resp_brief(&r));
			it_resp_free(&r);
			full_at = i;
			break;
		}
		cr_assert_eq(r.status, 201, "PUT %s before the index filled: "
			     "%s", path, it_resp_brief(&r));
		it_resp_free(&r);
		accepted++;
	}
	cr_assert_neq(full_at, -1, "--max-keys %d: %d new keys all accepted, "
		      "never 507", SMALL_MAX_KEYS, 2 * SMALL_MAX_KEYS);
	cr_assert_geq(accepted, SMALL_MAX_KEYS, "--max-keys %d but only %d "
		      "keys fit", SMALL_MAX_KEYS, accepted);
	/* Nothing partial is visible, and the index stays full. */
	it_expect_error(d.port, "GET", path, NULL, NULL, 0, 404, "not_found");
	it_expect_error(d.port, "PUT", "/kv/one-more", NULL, "y", 1, 507,
			"index_full");
	/* Replacing a key needs no new slot. */
	it_put(d.port, "/kv/full-0", "replaced", 8, 204);
	it_expect_value(d.port, "/kv/full-0", "replaced", 8, 0);
	for (int i = 0; i < accepted; i++) {
		snprintf(path, sizeof(path), "/kv/full-%d", i);
		it_do(d.port, "DELETE", path, NULL, NULL, 0, &r, 204);
		it_resp_free(&r);
	}
	it_put(d.port, "/kv/after-delete", "z", 1, 201);
	it_expect_value(d.port, "/kv/after-delete", "z", 1, 0);
	finish();
}

/* ---- healthz and metrics ------------------------------------------------------------ */

Test(it_api, healthz_is_200_ok, .timeout = 30)
{
	struct it_resp r;

	start();
	it_do(d.port, "GET", "/healthz", NULL, NULL, 0, &r, 200);
	cr_assert(strcmp(r.body, "ok") == 0 || strcmp(r.body, "ok\n") == 0,
		  "want body \"ok\": %s", it_resp_brief(&r));
	it_resp_free(&r);
	finish();
}

/* Sum of caskd_requests_total samples whose labels contain both needles. */
static double requests_with(const char *text, const char *m, const char *c)
{
	double total = 0;

	for (const char *l = text; l && *l;) {
		const char *eol = strchr(l, '\n');
		size_t n = eol ? (size_t)(eol - l) : strlen(l);
		char line[512];

		snprintf(line, sizeof(line), "%.*s", (int)n, l);
		if (strncmp(line, "caskd_requests_total{", 21) == 0 &&
		    strstr(line, m) && strstr(line, c)) {
			const char *sp = strrchr(line, '}');

			if (sp)
				total += strtod(sp + 1, NULL);
		}
		l = eol ? eol + 1 : NULL;
	}
	return total;
}

Test(it_api, metrics_sum_requests_over_workers_and_count_keys,
     .timeout = 30)
{
	struct it_resp r;
	char path[32], *text = NULL;
	double keys = -1, reqs = -1, put201 = -1, workers = -1;
	int64_t deadline;

	start();
	for (int i = 0; i < 6; i++) {
		snprintf(path, sizeof(path), "/kv/m%d", i);
		it_put(d.port, path, "v", 1, 201);
	}
	it_do(d.port, "DELETE", "/kv/m5", NULL, NULL, 0, &r, 204);
	it_resp_free(&r);
	for (int i = 0; i < 20; i++) { /* fresh connections: all workers */
		it_do(d.port, "GET", "/kv/m0", NULL, NULL, 0, &r, 200);
		it_resp_free(&r);
	}
	/* Counters may be bumped just after a response is sent: allow a
	 * moment, but the figures must get there. */
	deadline = it_now_ms() + 2000;
	do {
		free(text);
		text = it_get_metrics(d.port);
		it_metric_value(text, "caskd_keys", 0, &keys);
		it_metric_value(text, "caskd_requests_total", 1, &reqs);
		it_metric_value(text, "caskd_workers", 0, &workers);
		put201 = requests_with(text, "method=\"PUT\"", "code=\"201\"");
		if (keys == 5 && reqs >= 27 && put201 >= 6 && workers == 4)
			break;
	} while (it_now_ms() < deadline);
	cr_assert(strstr(text, "\ncaskd_requests_total{") ||
		  strncmp(text, "caskd_requests_total{", 21) == 0,
		  "no line starts with caskd_requests_total{:\n%s", text);
	cr_assert_eq(keys, 5, "caskd_keys is %g after 6 PUTs and 1 DELETE:"
		     "\n%s", keys, text);
	cr_assert_geq(reqs, 27, "caskd_requests_total sums to %g over all "
		      "labels, but 27 requests were answered (summed over all"
		      " workers?):\n%s", reqs, text);
	cr_assert_geq(put201, 6, "caskd_requests_total{method=\"PUT\","
		      "code=\"201\"} is %g after 6 such requests:\n%s", put201,
		      text);
	cr_assert_eq(workers, 4, "caskd_workers is %g with --workers 4:\n%s",
		     workers, text);
	free(text);
	finish();
}

/* ---- routing and protocol errors ------------------------------------------------------- */

Test(it_api, unknown_path_is_404_json, .timeout = 30)
{
	start();
	it_expect_error(d.port, "GET", "/nope", NULL, NULL, 0, 404, NULL);
	it_expect_error(d.port, "POST", "/nope", NULL, NULL, 0, 404, NULL);
	it_expect_error(d.port, "GET", "/kvx/a", NULL, NULL, 0, 404, NULL);
	finish();
}

Test(it_api, method_not_allowed_is_405_with_allow, .timeout = 30)
{
	static const char *const kv[] = { "GET", "HEAD", "PUT", "DELETE", "OPTIONS" };
	static const char *const incr[] = { "POST", "OPTIONS" };
	struct it_resp r;
	const char *allow;

	start();
	it_expect_error(d.port, "POST", "/kv/x", NULL, "v", 1, 405, "method_not_allowed");
	it_do(d.port, "POST", "/kv/x", NULL, "v", 1, &r, 405);
	allow = it_resp_header(&r, "Allow");
	cr_assert(allow_is(allow, kv, 5), "POST /kv/x: want Allow: GET, HEAD,"
		  " PUT, DELETE, OPTIONS: %s", it_resp_brief(&r));
	cr_assert(strstr(r.body, "POST") && strstr(r.body, "GET, HEAD, PUT, DELETE, OPTIONS"),
		  "the message names the method and what the path takes: %s", it_resp_brief(&r));
	it_resp_free(&r);
	it_do(d.port, "GET", "/incr/x", NULL, NULL, 0, &r, 405);
	cr_assert(allow_is(it_resp_header(&r, "Allow"), incr, 2),
		  "GET /incr/x: want Allow: POST, OPTIONS: %s", it_resp_brief(&r));
	it_resp_free(&r);
	it_do(d.port, "PUT", "/healthz", NULL, "x", 1, &r, 405);
	cr_assert(it_is_json_error(&r, "method_not_allowed"), "%s",
		  it_resp_brief(&r));
	allow = it_resp_header(&r, "Allow");
	cr_assert(allow && strstr(allow, "GET"),
		  "PUT /healthz: want an Allow naming GET: %s",
		  it_resp_brief(&r));
	it_resp_free(&r);
	/* The rejected writes wrote nothing. */
	it_expect_error(d.port, "GET", "/kv/x", NULL, NULL, 0, 404,
			"not_found");
	finish();
}

/* RFC 9110 15.6.2: a method no path takes is 501, not 405 (before,
 * BREW and PATCH got 405 with an Allow that could not help). */
Test(it_api, a_method_no_path_takes_is_501, .timeout = 30)
{
	static const char *const methods[] = { "BREW", "PATCH", "TRACE", "get" };

	start();
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		it_expect_error_saying(d.port, methods[i], "/kv/x", NULL, NULL, 0, 501,
				       "not_implemented", methods[i]);
	it_expect_error(d.port, "GET", "/kv/x", NULL, NULL, 0, 404, "not_found");
	finish();
}

/* OPTIONS answers 204 with the path's methods; OPTIONS * the server's. */
Test(it_api, options_answers_204_with_allow, .timeout = 30)
{
	static const struct {
		const char *path;
		const char *allow[6];
		int n;
	} paths[] = {
		{ "/kv/a/b", { "GET", "HEAD", "PUT", "DELETE", "OPTIONS" }, 5 },
		{ "/incr/n", { "POST", "OPTIONS" }, 2 },
		{ "/keys", { "GET", "HEAD", "OPTIONS" }, 3 },
		{ "/batch", { "POST", "OPTIONS" }, 2 },
		{ "/healthz", { "GET", "HEAD", "OPTIONS" }, 3 },
		{ "/metrics", { "GET", "HEAD", "OPTIONS" }, 3 },
		{ "/admin/compact", { "POST", "OPTIONS" }, 2 },
		{ "/admin/jobs", { "GET", "HEAD", "OPTIONS" }, 3 },
		{ "/admin/snapshot", { "GET", "OPTIONS" }, 2 },
		{ "*", { "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS" }, 6 },
	};
	struct it_resp r;

	start();
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		it_do(d.port, "OPTIONS", paths[i].path, NULL, NULL, 0, &r, 204);
		cr_assert(allow_is(it_resp_header(&r, "Allow"), paths[i].allow, paths[i].n),
			  "OPTIONS %s: wrong Allow: %s", paths[i].path, it_resp_brief(&r));
		cr_assert_eq(r.body_len, 0, "OPTIONS %s: %s", paths[i].path, it_resp_brief(&r));
		it_resp_free(&r);
	}
	it_expect_error(d.port, "OPTIONS", "/nope", NULL, NULL, 0, 404, "not_found");
	it_expect_error(d.port, "GET", "*", NULL, NULL, 0, 400, "bad_request");
	/* OPTIONS wrote nothing and started no job */
	it_expect_error(d.port, "GET", "/kv/a/b", NULL, NULL, 0, 404, "not_found");
	it_do(d.port, "GET", "/admin/jobs", NULL, NULL, 0, &r, 200);
	cr_assert_str_eq(r.body, "{\"jobs\":[]}", "%s", it_resp_brief(&r));
	it_resp_free(&r);
	finish();
}

/* Sends raw bytes on a fresh connection; asserts a 400 JSON error. */
static void expect_raw_400(const char *raw)
{
	struct it_conn c;
	struct it_resp r;
	int rc;

	IT_OK(it_conn_open(&c, d.port));
	IT_OK(it_conn_send_raw(&c, raw, strlen(raw)));
	rc = it_conn_read_response(&c, 0, &r);
	cr_assert_eq(rc, 0, "raw request \"%s\": no response: %s", raw,
		     strerror(-rc));
	cr_assert_eq(r.status, 400, "raw request \"%s\": %s", raw,
		     it_resp_brief(&r));
	cr_assert(it_is_json_error(&r, NULL), "raw request \"%s\": %s", raw,
		  it_resp_brief(&r));
	it_resp_free(&r);
	it_conn_close(&c);
}

/* The request head holds 100 field lines at most (Host counted), the
 * 101st is 431 headers_too_large: docs/http-api.md says so. */
static int status_with_fields(int nfields)
{
	char *raw = malloc(64 + (size_t)nfields * 16);
	size_t n = (size_t)sprintf(raw, "GET /healthz HTTP/1.1\r\nHost: t\r\n");
	struct it_conn c;
	struct it_resp r;
	int status;

	cr_assert_not_null(raw);
	for (int i = 2; i < nfields; i++) /* Host and Connection are two */
		n += (size_t)sprintf(raw + n, "X-F%d: v\r\n", i);
	n += (size_t)sprintf(raw + n, "Connection: close\r\n\r\n");
	IT_OK(it_conn_open(&c, d.port));
	IT_OK(it_conn_send_raw(&c, raw, n));
	IT_OK(it_conn_read_response(&c, 0, &r));
	if (r.status == 431)
		cr_assert(it_is_json_error(&r, "headers_too_large"), "%s", it_resp_brief(&r));
	status = r.status;
	it_resp_free(&r);
	it_conn_close(&c);
	free(raw);
	return status;
}

/* What docs/http-api.md states of defaults and limits, held to. */
Test(it_api, documented_defaults_and_limits_hold, .timeout = 30)
{
	char body[1001 * 16];
	size_t n = 0;
	struct it_resp r;
	size_t lines = 0;

	start();
	cr_assert_eq(status_with_fields(100), 200, "100 header fields are allowed");
	cr_assert_eq(status_with_fields(101), 431, "the 101st header field is 431");
	/* /incr without by adds 1 */
	it_do(d.port, "POST", "/incr/n", NULL, NULL, 0, &r, 200);
	cr_assert_str_eq(r.body, "1", "%s", it_resp_brief(&r));
	it_resp_free(&r);
	/* /keys without limit: a page of 1000 */
	for (int i = 0; i < 1001; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "put k%04d v\n", i);
	it_do(d.port, "POST", "/batch", NULL, body, n, &r, 200);
	it_resp_free(&r);
	it_do(d.port, "GET", "/keys?prefix=k", NULL, NULL, 0, &r, 200);
	for (const char *p = r.body; (p = strchr(p, '\n')); p++)
		lines++;
	cr_assert_eq(lines, 1000, "the default page holds 1000 keys: %zu", lines);
	cr_assert_str_eq(it_resp_header(&r, "X-Truncated"), "true");
	it_resp_free(&r);
	/* a malformed condition is 400 bad_header */
	it_expect_error(d.port, "PUT", "/kv/x", "If-Match: 7\r\n", "v", 1, 400, "bad_header");
	it_expect_error(d.port, "GET", "/kv/n", "If-None-Match: nope\r\n", NULL, 0, 400,
			"bad_header");
	finish();
}

/* A space in the target is named as such: it used to be "malformed
 * HTTP version", pointing at the wrong part of the line. */
Test(it_api, a_space_in_the_target_is_400_saying_so, .timeout = 30)
{
	static const char raw[] = "GET /kv/a b HTTP/1.1\r\nHost: t\r\n\r\n";
	struct it_conn c;
	struct it_resp r;

	start();
	IT_OK(it_conn_open(&c, d.port));
	IT_OK(it_conn_send_raw(&c, raw, strlen(raw)));
	IT_OK(it_conn_read_response(&c, 0, &r));
	cr_assert(r.status == 400 && it_is_json_error(&r, "bad_request") &&
		  strstr(r.body, "a space in the request target") && strstr(r.body, "%20"),
		  "GET /kv/a b: %s", it_resp_brief(&r));
	it_resp_free(&r);
	it_conn_close(&c);
	finish();
}

Test(it_api, malformed_request_line_is_400_json, .timeout = 30)
{
	struct it_resp r;

	start();
	expect_raw_400("GARBAGE\r\n\r\n");
	expect_raw_400("GET\r\n\r\n");
	/* The daemon still serves. */
	it_do(d.port, "GET", "/healthz", NULL, NULL, 0, &r, 200);
	it_resp_free(&r);
	finish();
}

Test(it_api, header_line_without_colon_is_400_json, .timeout = 30)
{
	start();
	expect_raw_400("GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n");
	expect_raw_400("PUT /kv/x HTTP/1.1\r\nHost: x\r\n"
		       "Content-Length: abc\r\n\r\n");
	finish();
}

/* ---- process level ------------------------------------------------------------------------ */

/* Issue 12: a request received whole before the client half-closed was
 * applied and never answered, so a client that retried applied it twice.
 * It is answered, exactly once. */
Test(it_api, request_before_a_half_close_is_applied_and_answered_once,
     .timeout = 30)
{
	static const char raw[] = "POST /incr/half HTTP/1.1\r\nHost: t\r\n"
				  "Content-Length: 0\r\n\r\n";
	struct it_conn c;
	struct it_resp r;
	int64_t n;

	start();
	IT_OK(it_conn_open(&c, d.port));
	IT_OK(it_conn_send_raw(&c, raw, strlen(raw)));
	cr_assert_eq(shutdown(c.fd, SHUT_WR), 0);
	IT_OK(it_conn_read_response(&c, 0, &r));
	cr_assert_eq(r.status, 200, "%s", it_resp_brief(&r));
	IT_OK(it_body_int64(&r, &n));
	cr_assert_eq(n, 1, "%s", it_resp_brief(&r));
	it_resp_free(&r);
	cr_assert_eq(it_conn_peer_closed(&c, 2000), 1,
		     "the connection stays open after the half-close");
	it_conn_close(&c);
	it_expect_value(d.port, "/kv/half", "1", 1, 0);
	finish();
}

/* Issue 12: with a bare LF ending a chunk-size line, the request hidden
 * in the body ran too (both got 201). Now the first is refused and the
 * second never runs. */
Test(it_api, a_request_hidden_behind_a_bare_lf_chunk_line_never_runs,
     .timeout = 30)
{
	static const char raw[] =
		"PUT /kv/outer HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
		"\r\n2;\nxx\r\n0\r\n\r\n"
		"PUT /kv/hidden HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx";

	start();
	expect_raw_400(raw);
	it_expect_error(d.port, "GET", "/kv/outer", NULL, NULL, 0, 404, "not_found");
	it_expect_error(d.port, "GET", "/kv/hidden", NULL, NULL, 0, 404, "not_found");
	finish();
}

/* Issue 12: raw non-ASCII in the target must be percent-encoded; the
 * encoded key is fine. */
Test(it_api, raw_non_ascii_in_the_target_is_400_and_encoded_is_fine,
     .timeout = 30)
{
	start();
	expect_raw_400("PUT /kv/caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n"
		       "Content-Length: 1\r\n\r\nx");
	expect_raw_400("GET /kv/a b HTTP/1.1\r\nHost: t\r\n\r\n");
	expect_raw_400("GET /kv/x HTTP/1.1\r\nHost: exa mple/x\r\n\r\n");
	it_put(d.port, "/kv/caf%C3%A9", "x", 1, 201);
	it_expect_value(d.port, "/kv/caf%C3%A9", "x", 1, 0);
	finish();
}

Test(it_api, second_instance_on_same_data_dir_exits_and_first_serves,
     .timeout = 40)
{
	struct it_daemon d2;
	struct it_resp r;
	char log[4096];
	uint64_t v;
	int rc;

	start();
	v = it_put(d.port, "/kv/mine", "first", 5, 201);
	IT_OK(it_daemon_spawn(&d2, d.dir, IT_WORKERS, NULL));
	rc = it_daemon_wait_exit(&d2, 5000);
	if (rc != 0)
		it_daemon_dump_log(&d2);
	cr_assert_eq(rc, 0, "a second caskd on %s is still running after 5 s"
		     " (port %d)", d.dir, d2.port);
	cr_assert(WIFEXITED(d2.status) && WEXITSTATUS(d2.status) != 0,
		  "second caskd: want a non-zero exit, got wait status 0x%x",
		  d2.status);
	cr_assert_eq(d2.stragglers, 0, "second caskd left processes behind");
	IT_OK(it_read_tail(d2.log, log, sizeof(log)));
	cr_assert(strcasestr(log, "lock") || strstr(log, d.dir),
		  "second caskd's stderr names neither the lock nor %s:\n%s",
		  d.dir, log);
	it_do(d.port, "GET", "/healthz", NULL, NULL, 0, &r, 200);
	it_resp_free(&r);
	it_expect_value(d.port, "/kv/mine", "first", 5, v);
	it_put(d.port, "/kv/mine", "still", 5, 204);
	finish();
}

/* Runs caskd with args (after safe --listen/--data-dir) and captures. */
static void run_cli(const char *a1, const char *a2, int *st, char *out,
		    size_t outn, char *err, size_t errn)
{
	const char *bin = getenv("CASKD_BIN");
	char listen[32], data[300];
	const char *argv[10];
	int n = 0, rc;

	cr_assert(bin, "CASKD_BIN is not set");
	IT_OK(it_tmpdir(base, sizeof(base)));
	snprintf(data, sizeof(data), "%s/data", base);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", it_free_port());
	argv[n++] = bin;
	if (strcmp(a1, "--help") != 0 && strcmp(a1, "--version") != 0) {
		argv[n++] = "--listen";
		argv[n++] = listen;
		argv[n++] = "--data-dir";
		argv[n++] = data;
	}
	argv[n++] = a1;
	if (a2)
		argv[n++] = a2;
	argv[n] = NULL;
	rc = it_run_capture(argv, 5000, out, outn, err, errn, st);
	cr_assert_eq(rc, 0, "caskd %s %s did not exit within 5 s: %s", a1,
		     a2 ? a2 : "", strerror(-rc));
}

/* The first line of s, for messages and checks. */
static const char *first_line(const char *s, char *buf, size_t n)
{
	size_t len = strcspn(s, "\n");

	snprintf(buf, n, "%.*s", (int)len, s);
	return buf;
}

Test(it_api, cli_bad_workers_value_exits_2_naming_the_option, .timeout = 30)
{
	char out[4096], err[4096], line[512];
	int st;

	run_cli("--workers", "abc", &st, out, sizeof(out), err, sizeof(err));
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2,
		  "caskd --workers abc: want exit 2, got status 0x%x; "
		  "stderr:\n%s", st, err);
	first_line(err, line, sizeof(line));
	cr_assert(strstr(line, "workers"), "first stderr line does not name "
		  "--workers: \"%s\"", line);
	it_assert_no_leaks();
}

Test(it_api, cli_unknown_option_exits_2_naming_the_option, .timeout = 30)
{
	char out[4096], err[4096], line[512];
	int st;

	run_cli("--bogus", NULL, &st, out, sizeof(out), err, sizeof(err));
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2,
		  "caskd --bogus: want exit 2, got status 0x%x; stderr:\n%s",
		  st, err);
	first_line(err, line, sizeof(line));
	cr_assert(strstr(line, "bogus"), "first stderr line does not name "
		  "--bogus: \"%s\"", line);
	it_assert_no_leaks();
}

Test(it_api, cli_help_and_version_exit_0, .timeout = 30)
{
	char out[8192], err[4096];
	int st;

	run_cli("--help", NULL, &st, out, sizeof(out), err, sizeof(err));
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "caskd --help: want exit 0, got status 0x%x; stderr:\n%s", st,
		  err);
	cr_assert(strstr(out, "--listen") && strstr(out, "--workers"),
		  "caskd --help: stdout does not list the options:\n%s", out);
	run_cli("--version", NULL, &st, out, sizeof(out), err, sizeof(err));
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "caskd --version: want exit 0, got status 0x%x; stderr:\n%s",
		  st, err);
	cr_assert(out[0] != '\0', "caskd --version printed nothing on stdout");
	it_assert_no_leaks();
}
