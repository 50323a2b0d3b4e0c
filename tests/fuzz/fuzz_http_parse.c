/* tests/fuzz/fuzz_http_parse.c — libFuzzer harness of server/http_parse.
 *
 * Input: 4 bytes of options, then the request bytes.
 *   byte 0  max_line_bytes:  0 the default (8 KiB), else 16 + 2 * byte
 *   byte 1  max_header_bytes: 0 the default (16 KiB), else 32 + 4 * byte
 *   byte 2  body limit: 0 none, else 16 * byte
 *   byte 3  how to cut: the low 3 bits give up to 7 cut points, the rest
 *           seeds where they fall
 * The bytes are run through the parser in one piece, cut at those points,
 * and (for inputs up to 512 bytes) one byte at a time, as the connection
 * layer would feed it (tests/unit/http_drive.h). Invariants: the parser
 * keeps its contract on every call (never takes more than it is given,
 * AGAIN only when it took everything, body spans at the end of what it
 * took, only known codes), and every way of cutting gives the same
 * transcript of requests and final result. ASan and UBSan catch the rest.
 *
 * srv_pct_decode (server/pct.c) gets the request's first line too: it must never
 * write past its output or report more bytes than it was given.
 */
#include "server/pct.h"
#include "tests/fuzz/fuzz_cuts.h"
#include "tests/unit/http_drive.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_OPTION_BYTES 4
#define FZ_MAX_CUTS 7
#define FZ_BYTEWISE_MAX 512
#define FZ_DECODE_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_fail(const char *what, const struct hd_out *a,
		    const struct hd_out *b)
{
	fprintf(stderr, "fuzz_http_parse: %s\n--- in one piece:\n%s\n--- cut:\n%s\n",
		what, a->text, b ? b->text : "");
	abort();
}

static void fz_check_same(const struct hd_out *whole, const struct hd_out *cut,
			  const char *how)
{
	if (cut->violation)
		fz_fail(cut->violation, whole, cut);
	if (strcmp(whole->text, cut->text) != 0 ||
	    whole->requests != cut->requests || whole->final_rc != cut->final_rc)
		fz_fail(how, whole, cut);
}

static void fz_pct_decode(const char *s, size_t n)
{
	char out[FZ_DECODE_MAX + 1];
	const char *nl = memchr(s, '\n', n);
	long got;

	if (nl)
		n = (size_t)(nl - s);
	out[FZ_DECODE_MAX] = '\x5a';
	got = srv_pct_decode(s, n, out, FZ_DECODE_MAX, 0);
	if ((got < 0 && got != -EINVAL) || got > FZ_DECODE_MAX || (size_t)(got < 0 ? 0 : got) > n ||
	    out[FZ_DECODE_MAX] != '\x5a')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hd_out whole, cut;
	struct hd_opts opt = { 0 };
	size_t cuts[FZ_MAX_CUTS], ncuts, len;
	const char *in;
	uint32_t seed;

	if (size < FZ_OPTION_BYTES)
		return 0;
	if (data[0])
		opt.max_line_bytes = 16 + 2 * (size_t)data[0];
	if (data[1])
		opt.max_header_bytes = 32 + 4 * (size_t)data[1];
	if (data[2])
		opt.body_limit = 16 * (size_t)data[2];
	ncuts = data[3] & FZ_MAX_CUTS;
	seed = data[3] >> 3 | (uint32_t)size << 5;
	in = (const char *)data + FZ_OPTION_BYTES;
	len = size - FZ_OPTION_BYTES;

	hd_run_whole(&opt, in, len, &whole);
	if (whole.violation)
		fz_fail(whole.violation, &whole, NULL);
	fz_cuts(seed, len, cuts, ncuts);
	hd_run(&opt, in, len, cuts, ncuts, &cut);
	fz_check_same(&whole, &cut, "cut at the chosen points");
	if (len > 1 && len <= FZ_BYTEWISE_MAX) {
		static size_t every[FZ_BYTEWISE_MAX];

		for (size_t i = 0; i + 1 < len; i++)
			every[i] = i + 1;
		hd_run(&opt, in, len, every, len - 1, &cut);
		fz_check_same(&whole, &cut, "one byte at a time");
	}
	fz_pct_decode(in, len);
	return 0;
}
