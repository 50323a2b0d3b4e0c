/* tests/unit/test_http_buf.c — server/http_buf: growth, what a reset
 * keeps, and that a released large buffer leaves the resident set (issue
 * 13 item 11: a worker kept ~98 MB after a 100 MB PUT).
 */
#include "server/http_buf.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MIB (1024u * 1024)

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "re");

	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

Test(srv_http_buf, small_buffer_is_kept_across_reset)
{
	struct srv_http_buf b = { 0 };

	cr_assert_eq(srv_http_buf_append(&b, "hello", 5, SIZE_MAX), 0);
	cr_assert_eq(b.len, 5);
	cr_assert(b.cap >= 5 && b.cap <= SRV_HTTP_BUF_KEEP_BYTES);
	cr_assert_eq(b.mapped, false);
	srv_http_buf_reset(&b);
	cr_assert_eq(b.len, 0);
	cr_assert_neq(b.cap, 0, "a small buffer is kept for the next request");
	srv_http_buf_free(&b);
	cr_assert_eq(b.cap, 0);
	cr_assert_null(b.data);
}

Test(srv_http_buf, growth_doubles_within_max)
{
	struct srv_http_buf b = { 0 };

	cr_assert_eq(srv_http_buf_reserve(&b, 1, 3000), 0);
	cr_assert_eq(b.cap, 1024, "first capacity");
	cr_assert_eq(srv_http_buf_reserve(&b, 1025, 3000), 0);
	cr_assert_eq(b.cap, 2048);
	cr_assert_eq(srv_http_buf_reserve(&b, 2049, 3000), 0);
	cr_assert_eq(b.cap, 3000, "doubling stops at max");
	cr_assert_eq(srv_http_buf_reserve(&b, 4000, 3000), 0);
	cr_assert_eq(b.cap, 4000, "need itself wins over max");
	srv_http_buf_free(&b);
}

/* Bytes survive the move from malloc to a mapping and every mremap. */
Test(srv_http_buf, large_buffer_is_a_mapping_and_keeps_its_bytes)
{
	struct srv_http_buf b = { 0 };
	char chunk[4096];
	size_t total = 0;

	for (int i = 0; total < 3 * MIB; i++) {
		memset(chunk, 'a' + i % 26, sizeof(chunk));
		cr_assert_eq(srv_http_buf_append(&b, chunk, sizeof(chunk), SIZE_MAX), 0);
		total += sizeof(chunk);
	}
	cr_assert_eq(b.mapped, true);
	cr_assert_geq(b.cap, SRV_HTTP_BUF_MAP_BYTES);
	for (size_t off = 0; off < total; off += sizeof(chunk))
		cr_assert_eq(b.data[off], 'a' + (int)(off / sizeof(chunk)) % 26,
			     "byte %zu", off);
	srv_http_buf_reset(&b);
	cr_assert_eq(b.cap, 0, "a large buffer is released at reset");
	cr_assert_eq(b.mapped, false);
}

/* Falling sizes: with malloc, the later ones would come from the heap
 * (glibc's mmap threshold rises after the first large free) and stay
 * resident after free. */
Test(srv_http_buf, released_large_buffers_leave_the_resident_set)
{
	static const size_t mib[] = { 40, 24, 12, 6 };
	long before = rss_kib(), peak = 0, after;

	for (size_t i = 0; i < sizeof(mib) / sizeof(mib[0]); i++) {
		struct srv_http_buf b = { 0 };
		size_t len = mib[i] * MIB;

		cr_assert_eq(srv_http_buf_reserve(&b, len, len), 0);
		memset(b.data, 'x', len); /* touch every page */
		b.len = len;
		if (rss_kib() > peak)
			peak = rss_kib();
		srv_http_buf_reset(&b);
	}
	after = rss_kib();
	cr_assert_gt(peak - before, 30 * 1024, "the test touched too little: "
		     "peak %ld KiB, before %ld", peak, before);
	cr_assert_lt(after - before, 2 * 1024, "%ld KiB resident before, %ld "
		     "after", before, after);
}
