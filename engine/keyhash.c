/* engine/keyhash.c — SipHash-2-4 and its seeds (see keyhash.h).
 *
 * Two compression rounds per 8-byte word and four finalization rounds,
 * the paper's recommended parameters: 1-3 would also do for a hash table,
 * but 2-4 is the one whose output the paper lists, so a test pins this
 * code to it (tests/unit/test_keyhash.c). Keys are at most 1 KiB and are
 * hashed once per request, so the extra rounds cost nothing that shows.
 */
#include "engine/keyhash.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>

static inline uint64_t rotl(uint64_t x, int b)
{
	return x << b | x >> (64 - b);
}

/* One SipRound over the state v[0..3]. */
static inline void sip_round(uint64_t v[4])
{
	v[0] += v[1]; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32);
	v[2] += v[3]; v[3] = rotl(v[3], 16); v[3] ^= v[2];
	v[0] += v[3]; v[3] = rotl(v[3], 21); v[3] ^= v[0];
	v[2] += v[1]; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32);
}

static inline void compress(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	sip_round(v);
	sip_round(v);
	v[0] ^= m;
}

uint64_t eng_key_hash(const struct eng_hash_seed *s, const void *key, size_t len)
{
	const unsigned char *p = key;
	/* "somepseudorandomlygeneratedbytes", as the paper initializes */
	uint64_t v[4] = {
		s->k0 ^ 0x736f6d6570736575ull, s->k1 ^ 0x646f72616e646f6dull,
		s->k0 ^ 0x6c7967656e657261ull, s->k1 ^ 0x7465646279746573ull,
	};
	uint64_t m, last = (uint64_t)(len & 0xff) << 56;
	size_t tail = len & 7;

	for (const unsigned char *end = p + (len - tail); p < end; p += 8) {
		memcpy(&m, p, 8);
		compress(v, le64toh(m));
	}
	/* the last word: the remaining bytes, little-endian, and the
	 * length mod 256 in its top byte */
	for (size_t i = 0; i < tail; i++)
		last |= (uint64_t)p[i] << (8 * i);
	compress(v, last);
	v[2] ^= 0xff;
	for (int i = 0; i < 4; i++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

int eng_hash_seed_new(struct eng_hash_seed *s)
{
	unsigned char b[16];

	for (;;) {
		ssize_t n = getrandom(b, sizeof(b), 0);
		if (n < 0 && errno == EINTR)
			continue; /* a signal while the pool was not ready yet */
		if (n < 0)
			return -errno;
		if (n != (ssize_t)sizeof(b))
			return -EIO; /* never for 16 bytes once the pool is ready */
		memcpy(&s->k0, b, 8);
		memcpy(&s->k1, b + 8, 8);
		if (s->k0 | s->k1)
			return 0;
	}
}
