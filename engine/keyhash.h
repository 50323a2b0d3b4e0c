/* engine/keyhash.h — the keyed hash of keys.
 *
 * Owns: SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input
 * PRF", 2012), written from the paper, and making random seeds for it.
 * Keys are chosen by clients and may hold any byte but NUL: with an
 * unkeyed hash anyone can compute keys that share a hash and make a
 * table's probes quadratic (hash flooding). SipHash under a secret seed
 * leaves them no better than random keys. Each index table has a seed of
 * its own (engine/index.h); server/batch.c keys its duplicate check with
 * a per-process one.
 */
#ifndef CASKD_ENGINE_KEYHASH_H
#define CASKD_ENGINE_KEYHASH_H

#include <stddef.h>
#include <stdint.h>

/* The 128-bit SipHash key: k0 is its first 8 bytes read little-endian,
 * k1 the next 8. Never all zero once made by eng_hash_seed_new, so a
 * zeroed one can stand for "none". */
struct eng_hash_seed {
	uint64_t k0, k1;
};

/* A new random seed from getrandom(2). 0 or -errno (the kernel's pool
 * is ready on any running system; an old kernel gives -ENOSYS). */
int eng_hash_seed_new(struct eng_hash_seed *s);
static inline int eng_hash_seed_eq(const struct eng_hash_seed *a,
				   const struct eng_hash_seed *b)
{
	return a->k0 == b->k0 && a->k1 == b->k1;
}
/* SipHash-2-4 of key[0..len) under seed s. */
uint64_t eng_key_hash(const struct eng_hash_seed *s, const void *key, size_t len);

#endif
