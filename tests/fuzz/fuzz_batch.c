/* tests/fuzz/fuzz_batch.c — libFuzzer harness of the POST /batch body
 * parser (server/batch.c).
 *
 * Invariants: an accepted body holds 1..10000 operations, every key is
 * 1..1024 bytes without NUL and lies in the parser's buffer, no key is
 * written twice, and the same operations encoded back into a body parse
 * to the same operations; a refused body comes with a message. ASan and
 * UBSan catch the rest.
 */
#include "engine/record.h"
#include "server/batch.h"
#include "server/pct.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_same_key(const struct eng_batch_op *a, const struct eng_batch_op *b)
{
	return a->klen == b->klen && !memcmp(a->key, b->key, a->klen);
}

static void fz_check(const struct srv_batch *b, size_t len)
{
	if (b->n < 1 || b->n > ENG_BATCH_MAX)
		abort();
	for (size_t i = 0; i < b->n; i++) {
		const struct eng_batch_op *op = &b->ops[i];
		const char *k = op->key;
		if (op->klen < 1 || op->klen > ENG_KEY_MAX || memchr(k, 0, op->klen) ||
		    k < b->buf || k + op->klen > b->buf + len)
			abort();
		for (size_t j = 0; j < i && op->kind != ENG_BATCH_CHECK; j++)
			if (b->ops[j].kind != ENG_BATCH_CHECK && fz_same_key(op, &b->ops[j]))
				abort();
	}
}

/* The operations as a body again. */
static char *fz_encode(const struct srv_batch *b, size_t *len)
{
	size_t cap = 0, o = 0;
	char *out;

	for (size_t i = 0; i < b->n; i++)
		cap += 32 + 3 * (b->ops[i].klen + b->ops[i].vlen);
	if (!(out = malloc(cap)))
		return NULL;
	for (size_t i = 0; i < b->n; i++) {
		const struct eng_batch_op *op = &b->ops[i];
		static const char *const names[] = { "put ", "del ", "check " };
		o += (size_t)sprintf(out + o, "%s", names[op->kind]);
		o += srv_pct_encode(op->key, op->klen, out + o);
		if (op->kind == ENG_BATCH_PUT) {
			out[o++] = ' ';
			o += srv_pct_encode(op->val, op->vlen, out + o);
		} else if (op->kind == ENG_BATCH_CHECK) {
			o += (size_t)sprintf(out + o, " %llu", (unsigned long long)op->version);
		}
		out[o++] = '\n';
	}
	*len = o;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct srv_batch b, again;
	size_t len;
	char *text;

	if (srv_batch_parse((const char *)data, size, &b) != 0) {
		if (b.err[0] == '\0' && b.ops && b.buf)
			abort(); /* a refusal says why (or was out of memory) */
		srv_batch_free(&b);
		return 0;
	}
	fz_check(&b, size);
	if ((text = fz_encode(&b, &len))) {
		if (srv_batch_parse(text, len, &again) != 0 || again.n != b.n)
			abort();
		for (size_t i = 0; i < b.n; i++)
			if (again.ops[i].kind != b.ops[i].kind || !fz_same_key(&again.ops[i], &b.ops[i]) ||
			    again.ops[i].vlen != b.ops[i].vlen ||
			    (b.ops[i].vlen &&
			     memcmp(again.ops[i].val, b.ops[i].val, b.ops[i].vlen)) ||
			    again.ops[i].version != b.ops[i].version)
				abort();
		srv_batch_free(&again);
		free(text);
	}
	srv_batch_free(&b);
	return 0;
}
