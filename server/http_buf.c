/* server/http_buf.c — growable byte buffers of the HTTP layer (see
 * http_buf.h for why large ones are mappings of their own). */
#include "server/http_buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* First capacity: a typical request head is 100-500 bytes. */
#define SRV_HTTP_BUF_INIT_BYTES 1024

static void *srv_buf_map(size_t cap)
{
	void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Moves b's bytes into memory of capacity cap, of the kind cap calls
 * for: malloc below SRV_HTTP_BUF_MAP_BYTES, a mapping from there up. */
static int srv_buf_move(struct srv_http_buf *b, size_t cap)
{
	bool map = cap >= SRV_HTTP_BUF_MAP_BYTES;
	char *data;

	if (map && b->mapped) {
		data = mremap(b->data, b->cap, cap, MREMAP_MAYMOVE);
		if (data == MAP_FAILED)
			return -ENOMEM;
	} else if (!map && !b->mapped) {
		data = realloc(b->data, cap);
		if (!data)
			return -ENOMEM;
	} else {
		/* Only growth gets here (from malloc to a mapping): the
		 * capacity never shrinks in place. */
		data = srv_buf_map(cap);
		if (!data)
			return -ENOMEM;
		if (b->len)
			memcpy(data, b->data, b->len);
		free(b->data);
	}
	b->data = data;
	b->cap = cap;
	b->mapped = map;
	return 0;
}

size_t srv_http_buf_grown_cap(const struct srv_http_buf *b, size_t need,
			      size_t max)
{
	size_t cap;

	if (need <= b->cap)
		return b->cap;
	cap = b->cap > max / 2 ? max : b->cap * 2;
	if (cap < SRV_HTTP_BUF_INIT_BYTES && SRV_HTTP_BUF_INIT_BYTES <= max)
		cap = SRV_HTTP_BUF_INIT_BYTES;
	if (cap < need)
		cap = need;
	return cap;
}

int srv_http_buf_reserve(struct srv_http_buf *b, size_t need, size_t max)
{
	if (need <= b->cap)
		return 0;
	return srv_buf_move(b, srv_http_buf_grown_cap(b, need, max));
}

int srv_http_buf_append(struct srv_http_buf *b, const void *p, size_t n,
			size_t max)
{
	int rc;

	if (n == 0)
		return 0;
	if (n > SIZE_MAX - b->len)
		return -ENOMEM;
	rc = srv_http_buf_reserve(b, b->len + n, max);
	if (rc != 0)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void srv_http_buf_free(struct srv_http_buf *b)
{
	if (b->mapped)
		munmap(b->data, b->cap); /* fails only for a bad range */
	else
		free(b->data);
	*b = (struct srv_http_buf){ 0 };
}

void srv_http_buf_reset_to(struct srv_http_buf *b, size_t keep)
{
	b->len = 0;
	if (b->cap > keep)
		srv_http_buf_free(b);
}

void srv_http_buf_reset(struct srv_http_buf *b)
{
	srv_http_buf_reset_to(b, SRV_HTTP_BUF_KEEP_BYTES);
}
