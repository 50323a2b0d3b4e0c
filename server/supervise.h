/* server/supervise.h — what the master and its workers know of each other.
 *
 * Owns: the supervision region, shared memory the master maps before
 * fork: for each worker seat the pid that runs it, whether it serves and
 * takes new connections, its heartbeat, its open connections and its
 * --max-conns; and for the daemon how many workers run and whether it is
 * stopping. Metrics only read it. And the rule by which workers share
 * new connections (srv_super_accept_hold).
 *
 * Writers: pid, workers_up and stopping are written by the master only
 * (at fork, reap and stop); ready, listening, heartbeat, conns and
 * max_conns by the worker of the seat only. Everything is a relaxed atomic read without a lock, so
 * a reader may see a value a moment old, never a torn one.
 */
#ifndef CASKD_SERVER_SUPERVISE_H
#define CASKD_SERVER_SUPERVISE_H

#include "engine/store.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

/* Worker seats: as many as the engine tracks writers for. */
#define SRV_SEATS ENG_SEATS
/* A worker beats this often; the master kills one whose beat is older
 * than --worker-timeout. */
#define SRV_HEARTBEAT_MS 500

struct srv_wsup {
	alignas(64) _Atomic int32_t pid; /* 0: no worker in the seat */
	_Atomic int32_t ready;           /* serving requests */
	_Atomic int32_t listening;       /* takes new connections (not stopping) */
	_Atomic uint64_t heartbeat_ms;   /* CLOCK_MONOTONIC; 0 while starting */
	_Atomic uint64_t conns;          /* open client connections, as of the
					  * last accept or close */
	_Atomic uint64_t max_conns;      /* its --max-conns */
};

struct srv_super {
	_Atomic uint32_t workers_up;
	_Atomic uint32_t stopping;       /* the daemon is going away */
	struct srv_wsup w[SRV_SEATS];
};

/* Master, before fork. 0 or -errno. */
int srv_super_create(struct srv_super **out);
void srv_super_destroy(struct srv_super *s);

/* Master: a worker now runs seat (after fork), or was reaped (which
 * leaves the seat clean for the next one). */
void srv_super_started(struct srv_super *s, int seat, pid_t pid);
void srv_super_gone(struct srv_super *s, int seat);
void srv_super_set_workers_up(struct srv_super *s, int n);
void srv_super_set_stopping(struct srv_super *s);

/* Worker of seat: it serves (or no longer does); it takes new
 * connections, max_conns at most (or no longer does: it is stopping);
 * one heartbeat. */
void srv_super_set_ready(struct srv_super *s, int seat, int ready);
void srv_super_listen(struct srv_super *s, int seat, int max_conns);
void srv_super_unlisten(struct srv_super *s, int seat);
void srv_super_beat(struct srv_super *s, int seat, uint64_t now_ms, int nconns);

/* Anyone. */
int srv_super_ready(const struct srv_super *s, int seat);
uint64_t srv_super_heartbeat(const struct srv_super *s, int seat);
int srv_super_stopping(const struct srv_super *s);
int srv_super_workers_up(const struct srv_super *s);
uint64_t srv_super_conns(const struct srv_super *s);
uint64_t srv_super_seat_conns(const struct srv_super *s, int seat);
/* Worker of seat: it holds nconns connections now. */
void srv_super_set_conns(struct srv_super *s, int seat, int nconns);

/* Worker of seat, after each accept and close: publishes its nconns, and
 * says whether it should stop taking new connections for now (1) or take
 * them (0). It stops while a sibling that takes connections and beats has
 * room (fewer than 7/8 of its max_conns, nginx's accept_disabled mark)
 * and it holds 7/8 of its own, or more than the mean plus a little: the
 * workers share one listening socket and the first to wake would take
 * every connection, up to a 503 while its siblings have room. Never
 * stops when no sibling has room. now_ms: CLOCK_MONOTONIC. */
int srv_super_accept_hold(struct srv_super *s, int seat, int nconns,
			  uint64_t now_ms);

#endif
