/* server/batch.c — the batch body parser (see batch.h). */
#include "server/batch.h"

#include "engine/keyhash.h"
#include "engine/num.h"
#include "engine/record.h"
#include "server/pct.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int bad(struct srv_batch *b, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(struct srv_batch *b, size_t line, const char *fmt, ...)
{
	va_list ap;

	b->line = line;
	va_start(ap, fmt);
	vsnprintf(b->err, sizeof(b->err), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A canonical decimal u64: no sign, no leading zero, fits. */
static int parse_version(const char *s, size_t n, uint64_t *out)
{
	return eng_parse_u64(s, n, out) ? -EINVAL : 0;
}

/* Splits line[0..n) at single spaces into at most max fields. Returns
 * the count, or -E2BIG for more than max. */
static int split(const char *line, size_t n, const char **f, size_t *fl, int max)
{
	int k = 0;
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && line[i] != ' ')
			continue;
		if (k == max)
			return -E2BIG;
		f[k] = line + start;
		fl[k++] = i - start;
		start = i + 1;
	}
	return k;
}

/* --- keys written twice: an open-addressing set of op indexes ---------------- */

/* Its hash is keyed, with a seed made once per process, so a client
 * cannot send 10000 keys that share one probe run. */
static struct eng_hash_seed seen_seed;
static int seen_seed_rc;
static pthread_once_t seen_seed_once = PTHREAD_ONCE_INIT;

static void seen_seed_make(void)
{
	seen_seed_rc = eng_hash_seed_new(&seen_seed);
}

struct seen {
	uint32_t *cell; /* op index + 1, or 0 */
	size_t cap;
};

static int seen_add(struct seen *s, const struct eng_batch_op *ops, size_t i)
{
	uint64_t h = eng_key_hash(&seen_seed, ops[i].key, ops[i].klen);

	for (size_t j = h & (s->cap - 1);; j = (j + 1) & (s->cap - 1)) {
		uint32_t k = s->cell[j];
		if (!k) {
			s->cell[j] = (uint32_t)i + 1;
			return 0;
		}
		if (ops[k - 1].klen == ops[i].klen &&
		    !memcmp(ops[k - 1].key, ops[i].key, ops[i].klen))
			return -EEXIST;
	}
}

/* --- one line ---------------------------------------------------------------- */

static int decode(struct srv_batch *b, size_t line, const char *s, size_t n,
		  char **at, size_t *room, int is_key, size_t *out_len)
{
	long m = srv_pct_decode(s, n, *at, *room, is_key ? 0 : SRV_PCT_ALLOW_NUL);

	if (m < 0)
		return bad(b, line, is_key ? "a key has a bad percent-escape or a NUL byte"
				    : "a value has a bad percent-escape");
	if (is_key && (m < 1 || m > ENG_KEY_MAX))
		return bad(b, line, "keys are 1 to %d bytes after decoding", ENG_KEY_MAX);
	*out_len = (size_t)m;
	*at += m;
	*room -= (size_t)m;
	return 0;
}

static int parse_line(struct srv_batch *b, size_t line, const char *p, size_t n,
		      char **at, size_t *room)
{
	struct eng_batch_op *op = &b->ops[b->n];
	const char *f[4];
	size_t fl[4];
	const char *cr = memchr(p, '\r', n);
	int k = split(p, n, f, fl, 3);
	int rc;

	if (cr)
		return bad(b, line, "a bare CR at byte %zu (lines end in LF or CRLF; a CR "
			   "inside a key or value is sent as %%0D)", (size_t)(cr - p) + 1);
	if (k < 0)
		return bad(b, line, "too many fields (one space between fields, spaces "
			   "inside keys and values percent-encoded)");
	memset(op, 0, sizeof(*op));
	if (fl[0] == 3 && !memcmp(f[0], "put", 3)) {
		if (k != 3)
			return bad(b, line, "put takes a key and a value: put <key> <value>");
		op->kind = ENG_BATCH_PUT;
	} else if (fl[0] == 3 && !memcmp(f[0], "del", 3)) {
		if (k != 2)
			return bad(b, line, "del takes a key: del <key>");
		op->kind = ENG_BATCH_DEL;
	} else if (fl[0] == 5 && !memcmp(f[0], "check", 5)) {
		if (k != 3)
			return bad(b, line, "check takes a key and a version: check <key> <version>");
		op->kind = ENG_BATCH_CHECK;
		if (parse_version(f[2], fl[2], &op->version) < 0)
			return bad(b, line, "a version is a decimal number (0: the key must be absent)");
	} else {
		return bad(b, line, "unknown operation (put, del or check)");
	}
	op->key = *at;
	if ((rc = decode(b, line, f[1], fl[1], at, room, 1, &op->klen)))
		return rc;
	if (op->kind == ENG_BATCH_PUT) {
		op->val = *at;
		if ((rc = decode(b, line, f[2], fl[2], at, room, 0, &op->vlen)))
			return rc;
	}
	b->n++;
	return 0;
}

/* Lines of body, without their ends: 0 and *count, or the number of
 * the first empty line (1-based). */
static size_t count_lines(const char *body, size_t len, size_t *count)
{
	size_t n = 0, i = 0;

	while (i < len) {
		const char *nl = memchr(body + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - body) : len;
		size_t e = end > i && body[end - 1] == '\r' ? end - 1 : end;
		if (e == i)
			return n + 1;
		n++;
		i = end + 1;
	}
	*count = n;
	return 0;
}

int srv_batch_parse(const char *body, size_t len, struct srv_batch *b)
{
	struct seen s = { 0 };
	size_t lines = 0, room = len, i = 0, line = 0, empty;
	char *at;
	int rc = 0;

	memset(b, 0, sizeof(*b));
	if ((empty = count_lines(body, len, &lines)))
		return bad(b, empty, "an empty line (one operation a line, no empty line; "
			   "a final newline is fine)");
	if (lines == 0)
		return bad(b, 0, "a batch holds 1 to %d operations; this one is empty",
			   ENG_BATCH_MAX);
	if (lines > ENG_BATCH_MAX) {
		/* HTTP-API.md: "1..10000 operations; a body over the limit: 413" */
		bad(b, 0, "a batch holds at most %d operations; this one has %zu",
		    ENG_BATCH_MAX, lines);
		return -E2BIG;
	}
	if ((rc = pthread_once(&seen_seed_once, seen_seed_make)))
		return -rc;
	if (seen_seed_rc)
		return seen_seed_rc;
	for (s.cap = 16; s.cap < lines * 2; s.cap *= 2)
		;
	b->ops = calloc(lines, sizeof(*b->ops));
	b->buf = malloc(len ? len : 1); /* decoding never grows */
	s.cell = calloc(s.cap, sizeof(*s.cell));
	if (!b->ops || !b->buf || !s.cell) {
		rc = -ENOMEM;
		goto out;
	}
	at = b->buf;
	while (i < len && !rc) {
		const char *nl = memchr(body + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - body) : len;
		size_t e = end > i && body[end - 1] == '\r' ? end - 1 : end;

		line++;
		if ((rc = parse_line(b, line, body + i, e - i, &at, &room)))
			break;
		if (b->ops[b->n - 1].kind != ENG_BATCH_CHECK &&
		    seen_add(&s, b->ops, b->n - 1) < 0)
			rc = bad(b, line, "a key is written twice in one batch");
		i = end + 1;
	}
out:
	free(s.cell);
	return rc;
}

void srv_batch_free(struct srv_batch *b)
{
	free(b->ops);
	free(b->buf);
	b->ops = NULL;
	b->buf = NULL;
	b->n = 0;
}
