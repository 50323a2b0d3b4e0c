/* tests/unit/test_keyhash.c — the keyed hash of keys (engine/keyhash.h).
 *
 * It must be SipHash-2-4 exactly (the paper's own test vector), tell
 * apart keys that differ only in length or in a NUL, spread sequential
 * keys, and give other hashes under another seed: that last is what
 * keeps keys chosen against one table (or one caskd) from colliding in
 * the next. Pure functions but for seeds from getrandom.
 */
#include "engine/keyhash.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The key of the paper's Appendix A: bytes 00 01 .. 0f. */
static const struct eng_hash_seed paper_key = { 0x0706050403020100ull,
						0x0f0e0d0c0b0a0908ull };

static uint32_t upper(uint64_t h)
{
	return (uint32_t)(h >> 32);
}

Test(engine_keyhash, is_siphash_2_4_by_the_papers_vector, .timeout = 5)
{
	unsigned char msg[15];

	for (int i = 0; i < 15; i++)
		msg[i] = (unsigned char)i;
	/* Appendix A: the 15-byte message 00 01 .. 0e */
	cr_assert(eq(u64, eng_key_hash(&paper_key, msg, sizeof(msg)),
		     0xa129ca6149be45e5ull));
}

Test(engine_keyhash, differs_between_two_seeds, .timeout = 5)
{
	const struct eng_hash_seed a = { 1, 2 }, b = { 1, 3 }, c = { 2, 2 };
	char key[32];

	for (int i = 0; i < 1000; i++) {
		int n = snprintf(key, sizeof(key), "key:%d", i);
		uint64_t ha = eng_key_hash(&a, key, (size_t)n);

		cr_assert(ne(u64, ha, eng_key_hash(&b, key, (size_t)n)), "%s: k1", key);
		cr_assert(ne(u64, ha, eng_key_hash(&c, key, (size_t)n)), "%s: k0", key);
		/* and in the part the index keeps */
		cr_assert(ne(u32, upper(ha), upper(eng_key_hash(&b, key, (size_t)n))),
			  "%s", key);
		cr_assert(eq(u64, ha, eng_key_hash(&a, key, (size_t)n)), "deterministic");
	}
}

Test(engine_keyhash, tells_apart_lengths_and_bytes, .timeout = 5)
{
	const struct eng_hash_seed *s = &paper_key;

	cr_assert(ne(u64, eng_key_hash(s, "a", 1), eng_key_hash(s, "a\0", 2)));
	cr_assert(ne(u64, eng_key_hash(s, "", 0), eng_key_hash(s, "\0", 1)));
	cr_assert(ne(u64, eng_key_hash(s, "12345678", 8), eng_key_hash(s, "12345679", 8)));
	cr_assert(ne(u64, eng_key_hash(s, "123456789", 9),
		     eng_key_hash(s, "123456788", 9)));
	cr_assert(ne(u64, eng_key_hash(s, "12345678\0", 9), eng_key_hash(s, "12345678", 8)),
		  "a trailing NUL word");
}

/* The index takes the upper 32 bits for its home slot (fastrange): they
 * must spread sequential keys over the table. */
Test(engine_keyhash, spreads_sequential_keys, .timeout = 5)
{
	enum { BUCKETS = 64, KEYS = 64 * 256 };
	unsigned counts[BUCKETS] = { 0 };
	char key[16];

	for (int i = 0; i < KEYS; i++) {
		int n = snprintf(key, sizeof(key), "key:%d", i);
		uint32_t h = upper(eng_key_hash(&paper_key, key, (size_t)n));

		counts[((uint64_t)h * BUCKETS) >> 32]++;
	}
	/* 256 expected per bucket; a useful hash stays well inside 2x */
	for (int b = 0; b < BUCKETS; b++) {
		cr_assert(gt(u32, counts[b], 128), "bucket %d: %u", b, counts[b]);
		cr_assert(lt(u32, counts[b], 512), "bucket %d: %u", b, counts[b]);
	}
}

Test(engine_keyhash, new_seeds_are_random_and_never_zero, .timeout = 5)
{
	struct eng_hash_seed a, b;

	cr_assert(eq(int, eng_hash_seed_new(&a), 0));
	cr_assert(eq(int, eng_hash_seed_new(&b), 0));
	cr_assert(ne(u64, a.k0 | a.k1, 0), "zero stands for none");
	cr_assert(eq(int, eng_hash_seed_eq(&a, &b), 0), "two draws of 128 bits");
}
