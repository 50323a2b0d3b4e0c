/* server/clock.h — the monotonic clock the server's timers and deadlines
 * read (CLOCK_MONOTONIC: never jumps with the wall clock). One copy for
 * every file that needs "now" in milliseconds. */
#ifndef CASKD_SERVER_CLOCK_H
#define CASKD_SERVER_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t srv_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* CLOCK_BOOTTIME: also counts while the machine is suspended (a frozen
 * VM), which CLOCK_MONOTONIC does not on Linux. A cluster primary's lease
 * is measured on it: a primary frozen past its lease must see the time
 * gone when it wakes. */
static inline uint64_t srv_boot_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
