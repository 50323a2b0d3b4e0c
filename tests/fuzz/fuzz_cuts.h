/* tests/fuzz/fuzz_cuts.h — where a fuzz harness cuts its input into
 * pieces, for parsers that must give the same outcome however the bytes
 * arrive (fuzz_http_parse.c, fuzz_cli_http.c).
 *
 * The cut points come from a small LCG seeded by the input itself, so
 * the same input is always cut alike (a crash replays).
 */
#ifndef CASKD_TESTS_FUZZ_FUZZ_CUTS_H
#define CASKD_TESTS_FUZZ_FUZZ_CUTS_H

#include <stddef.h>
#include <stdint.h>

/* n cut points in [0, len), ascending, into cuts[0..n). */
static inline void fz_cuts(uint32_t seed, size_t len, size_t *cuts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		cuts[i] = len ? (seed >> 8) % len : 0;
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
			size_t t = cuts[j];

			cuts[j] = cuts[j - 1];
			cuts[j - 1] = t;
		}
}

#endif
