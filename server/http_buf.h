/* server/http_buf.h — the growable byte buffers of the HTTP layer.
 *
 * Owns: the memory behind request heads, request bodies and added
 * response headers. A buffer grows by doubling up to a bound its user
 * gives; released, it keeps its memory only while that is small
 * (SRV_HTTP_BUF_KEEP_BYTES, or less if its user says), so a connection
 * that carried one large body holds no more than a small buffer
 * afterwards.
 *
 * Large buffers (SRV_HTTP_BUF_MAP_BYTES and up) are anonymous mappings
 * of their own, not malloc blocks: glibc raises its mmap threshold each
 * time a mapped block is freed, after which blocks of up to that size
 * come from the heap, and freed heap memory in the middle of it stays
 * resident. A worker that received a 100 MB body must not keep 100 MB
 * (issue 13 item 11); a mapping of its own goes back to the kernel at
 * munmap, whatever malloc's state.
 *
 * No I/O, no event loop: safe in any thread that owns the buffer.
 */
#ifndef CASKD_SERVER_HTTP_BUF_H
#define CASKD_SERVER_HTTP_BUF_H

#include <stdbool.h>
#include <stddef.h>

/* Kept across requests up to this capacity; larger ones are released. */
#define SRV_HTTP_BUF_KEEP_BYTES (64u * 1024)
/* From this capacity up a buffer is a mapping of its own. */
#define SRV_HTTP_BUF_MAP_BYTES (256u * 1024)

struct srv_http_buf {
	char *data;
	size_t len;
	size_t cap;
	bool mapped; /* data is an mmap of cap bytes, not a malloc block */
};

/* Room for need bytes in all: grows by doubling, never past max (unless
 * need itself is larger). 0 or -ENOMEM (b unchanged). */
int srv_http_buf_reserve(struct srv_http_buf *b, size_t need, size_t max);
/* The capacity srv_http_buf_reserve(b, need, max) leaves b with (its
 * present one if need fits): what growing will cost, asked before. */
size_t srv_http_buf_grown_cap(const struct srv_http_buf *b, size_t need,
			      size_t max);
/* Appends n bytes, growing as srv_http_buf_reserve(.., max). */
int srv_http_buf_append(struct srv_http_buf *b, const void *p, size_t n,
			size_t max);
/* Empties b for the next request: its memory is kept only if small
 * (SRV_HTTP_BUF_KEEP_BYTES), or at most keep bytes. */
void srv_http_buf_reset(struct srv_http_buf *b);
void srv_http_buf_reset_to(struct srv_http_buf *b, size_t keep);
/* Releases everything; b is empty and reusable afterwards. */
void srv_http_buf_free(struct srv_http_buf *b);

#endif
