/* tests/unit/test_http_buf.c — server/http_buf: growth, what a reset
 * keeps, and that a released large buffer leaves the resident set (issue
 * 13 item 11: a worker kept ~98 MB after a 100 MB PUT).
 */
#include "server/http_buf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIB (1024u * 1024)

/* Under ASan the process's resident set also holds the sanitizer's
 * shadow memory (1 byte per 8), which is not caskd's: GCC 12's libasan
 * does not release it at munmap, and on kernels that back a read fault
 * of untouched anonymous memory with a page of its own rather than the
 * shared zero page (a 6.18 one did) merely checking the shadow of a
 * 40 MiB buffer leaves 5 MiB of it resident. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

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

/* Whether no whole page of [p, p + len) is mapped any more: mincore
 * fails with ENOMEM for an unmapped page, whatever the allocator or
 * sanitizer. */
static bool unmapped(const void *p, size_t len)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t at = ((uintptr_t)p + page - 1) & ~(page - 1);
	unsigned char vec;

	for (; at + page <= (uintptr_t)p + len; at += page)
		if (mincore((void *)at, page, &vec) == 0 || errno != ENOMEM)
			return false;
	return true;
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
 * resident after free. That each buffer's memory is gone from the
 * process is checked in every build; the resident set itself only where
 * it is caskd's alone (see UNDER_ASAN). */
Test(srv_http_buf, released_large_buffers_leave_the_resident_set)
{
	static const size_t mib[] = { 40, 24, 12, 6 };
	long before = rss_kib(), peak = 0, after;

	for (size_t i = 0; i < sizeof(mib) / sizeof(mib[0]); i++) {
		struct srv_http_buf b = { 0 };
		size_t len = mib[i] * MIB;
		char *data;
		size_t cap;

		cr_assert_eq(srv_http_buf_reserve(&b, len, len), 0);
		memset(b.data, 'x', len); /* touch every page */
		b.len = len;
		if (rss_kib() > peak)
			peak = rss_kib();
		data = b.data;
		cap = b.cap;
		srv_http_buf_reset(&b);
		cr_assert_eq(b.cap, 0, "%zu MiB buffer kept at reset", mib[i]);
		cr_assert_null(b.data);
		cr_assert(unmapped(data, cap), "%zu MiB buffer's memory is still "
			  "mapped after reset", mib[i]);
	}
	after = rss_kib();
	if (UNDER_ASAN)
		return;
	cr_assert_gt(peak - before, 30 * 1024, "the test touched too little: "
		     "peak %ld KiB, before %ld", peak, before);
	cr_assert_lt(after - before, 2 * 1024, "%ld KiB resident before, %ld "
		     "after", before, after);
}
