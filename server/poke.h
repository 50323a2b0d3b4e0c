/* server/poke.h — waking a worker's loop when a word in shared memory
 * moves: the one way /watch's hub (a write in any worker) and the
 * cluster's waiters (an ack in any worker) hear of it.
 *
 * Owns: a thread that sleeps on the word (through ops->wait, a futex
 * wait: the loop itself never blocks) and, after each wake, pokes the
 * loop through an eventfd; and a timer. On the loop thread, on_wake(arg)
 * runs after each poke and on_tick(arg) every tick_ms. The thread reads
 * the word before it pokes, so a move after the poke ends its next wait
 * at once: none is slept through.
 */
#ifndef CASKD_SERVER_POKE_H
#define CASKD_SERVER_POKE_H

#include <stdint.h>

struct event_base;
struct srv_poke;

struct srv_poke_ops {
	uint32_t (*seq)(void *arg);        /* the word now */
	/* sleeps while the word is seen, at most timeout_ms */
	void (*wait)(void *arg, uint32_t seen, int timeout_ms);
	int (*wanted)(void *arg);          /* poke only when 1; NULL: always */
	void (*on_wake)(void *arg);
	void (*on_tick)(void *arg);
	int tick_ms;
};

/* 0 and *out, or -errno. */
int srv_poke_start(struct event_base *base, const struct srv_poke_ops *ops, void *arg,
		   struct srv_poke **out);
/* Stops the thread (within a tick) and frees everything. */
void srv_poke_stop(struct srv_poke *p);

#endif
