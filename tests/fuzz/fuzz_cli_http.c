/* tests/fuzz/fuzz_cli_http.c — libFuzzer harness of the command-line
 * client's response parser and JSON field reader (server/cli_http.c).
 *
 * Input: 1 byte that seeds where the bytes are cut (its low 3 bits: up
 * to 7 cuts), then the bytes of a response as a server would send them.
 * They are parsed in one piece, at the cuts, and (up to 512 bytes) one
 * byte at a time, then the end of the connection is given. Invariants:
 * the parser never takes more than it is given, takes everything when it
 * asks for more, body spans lie inside what it took, and every way of
 * cutting gives the same status, fields, body and outcome. The body, and
 * the input itself, then go through srv_cli_json_field, whose output
 * must stay inside its buffer and NUL-terminated. ASan and UBSan catch
 * the rest.
 */
#include "server/cli_http.h"
#include "tests/fuzz/fuzz_cuts.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_MAX_CUTS 7
#define FZ_BYTEWISE_MAX 512
#define FZ_BODY_KEPT 4096
#define FZ_JSON_OUT 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_out {
	int status, nfields, final;
	size_t body_len;
	char body[FZ_BODY_KEPT];
	const char *err;
};

static struct srv_cli_parser fz_p;

static void fz_body(struct fz_out *o, const char *d, size_t n)
{
	for (size_t i = 0; i < n; i++, o->body_len++)
		if (o->body_len < FZ_BODY_KEPT)
			o->body[o->body_len] = d[i];
}

/* Parses in[0..len) in pieces ending at cuts[] (ascending), then EOF. */
static void fz_run(const char *in, size_t len, const size_t *cuts, size_t ncuts,
		   struct fz_out *o)
{
	size_t start = 0;
	int rc = SRV_CLI_AGAIN;

	memset(o, 0, sizeof(*o));
	srv_cli_parser_init(&fz_p);
	for (size_t c = 0; c <= ncuts && rc != SRV_CLI_DONE && rc >= 0; c++) {
		size_t end = c < ncuts ? cuts[c] : len, pos = start;

		if (end < start)
			continue;
		while (rc >= 0 && rc != SRV_CLI_DONE) {
			size_t used = 0, off = 0, n = 0;

			rc = srv_cli_parse(&fz_p, in + pos, end - pos, &used, &off, &n);
			if (used > end - pos)
				abort();
			if (rc == SRV_CLI_AGAIN && used != end - pos)
				abort();
			if (rc == SRV_CLI_BODY) {
				if (n == 0 || off + n != used)
					abort();
				fz_body(o, in + pos + off, n);
			}
			if (rc == SRV_CLI_HEAD) {
				o->status = fz_p.status;
				o->nfields = fz_p.nfields;
			}
			pos += used;
			if (rc == SRV_CLI_AGAIN || (pos == end && rc != SRV_CLI_HEAD))
				break;
		}
		start = end;
	}
	if (rc >= 0 && rc != SRV_CLI_DONE)
		rc = srv_cli_parse_eof(&fz_p);
	o->final = rc;
	o->err = rc < 0 ? fz_p.err : NULL;
	if (rc < 0 && !o->err)
		abort(); /* a refusal says why */
}

static void fz_same(const struct fz_out *a, const struct fz_out *b)
{
	if (a->status != b->status || a->nfields != b->nfields || a->final != b->final ||
	    a->body_len != b->body_len ||
	    memcmp(a->body, b->body, a->body_len < FZ_BODY_KEPT ? a->body_len : FZ_BODY_KEPT) ||
	    (a->err != b->err && (!a->err || !b->err || strcmp(a->err, b->err)))) {
		fprintf(stderr, "status %d/%d fields %d/%d final %d/%d body %zu/%zu err %s/%s\n",
			a->status, b->status, a->nfields, b->nfields, a->final, b->final,
			a->body_len, b->body_len, a->err ? a->err : "-", b->err ? b->err : "-");
		abort();
	}
}

static void fz_json(const char *s, size_t n)
{
	static const char *const names[] = { "message", "error", "job", "state", "" };
	char out[FZ_JSON_OUT + 1];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		long r;

		out[FZ_JSON_OUT] = '\x5a';
		r = srv_cli_json_field(s, n, names[i], out, FZ_JSON_OUT);
		if (out[FZ_JSON_OUT] != '\x5a' || (r >= 0 && !memchr(out, 0, FZ_JSON_OUT)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz_out whole, cut;
	size_t cuts[FZ_MAX_CUTS], ncuts, len;
	const char *in;
	uint32_t seed;

	if (size < 1)
		return 0;
	ncuts = data[0] & FZ_MAX_CUTS;
	seed = (uint32_t)data[0] >> 3 | (uint32_t)size << 5;
	in = (const char *)data + 1;
	len = size - 1;
	fz_run(in, len, NULL, 0, &whole);
	fz_cuts(seed, len, cuts, ncuts);
	fz_run(in, len, cuts, ncuts, &cut);
	fz_same(&whole, &cut);
	if (len > 1 && len <= FZ_BYTEWISE_MAX) {
		static size_t every[FZ_BYTEWISE_MAX];

		for (size_t i = 0; i + 1 < len; i++)
			every[i] = i + 1;
		fz_run(in, len, every, len - 1, &cut);
		fz_same(&whole, &cut);
	}
	fz_json(whole.body, whole.body_len < FZ_BODY_KEPT ? whole.body_len : FZ_BODY_KEPT);
	fz_json(in, len);
	return 0;
}
