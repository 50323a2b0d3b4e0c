/* server/batch.h — the body of POST /batch (HTTP-API.md "Batch body").
 *
 * Owns: turning the text of a batch into engine operations, with every
 * rule the contract states: one operation per line, `put <key> <value>`,
 * `del <key>`, `check <key> <version>`, fields separated by one space,
 * keys and values percent-encoded (keys 1..1024 bytes, no NUL), versions
 * canonical decimal, 1..10000 operations, and no key written twice (a
 * key may be checked and written). A final newline is allowed, and CRLF
 * line ends; nothing else (empty lines, extra spaces, unknown operations)
 * is. A pure function of the bytes (but for the random seed of its
 * duplicate check, made once per process): no I/O, no engine call,
 * fuzzed (tests/fuzz/fuzz_batch.c).
 */
#ifndef CASKD_SERVER_BATCH_H
#define CASKD_SERVER_BATCH_H

#include "engine/store.h"

#include <stddef.h>

#define SRV_BATCH_ERR_MAX 160

struct srv_batch {
	struct eng_batch_op *ops;
	size_t n;
	char *buf;                 /* decoded keys and values, ops point here */
	size_t line;               /* the line of the first error (1-based;
				    * 0: the body as a whole) */
	char err[SRV_BATCH_ERR_MAX];
};

/* Parses body[0..len) into b. 0, -EINVAL (b->err and b->line say what
 * and where), -E2BIG (more than ENG_BATCH_MAX operations; b->err says so),
 * -ENOMEM, or the -errno of making the process's seed for the duplicate
 * check (getrandom, once). b is to be freed either way. */
int srv_batch_parse(const char *body, size_t len, struct srv_batch *b);
void srv_batch_free(struct srv_batch *b);

#endif
