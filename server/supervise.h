/* server/supervise.h — what the master and its workers know of each other.
 *
 * Owns: the supervision region, shared memory the master maps before
 * fork: for each worker slot the pid that runs it, whether it serves,
 * its heartbeat and its open connections; and for the daemon how many
 * workers run and whether it is stopping. Metrics only read it.
 *
 * Writers: pid, workers_up and stopping are written by the master only
 * (at fork, reap and stop); ready, heartbeat and conns by the worker of
 * the slot only. Everything is a relaxed atomic read without a lock, so
 * a reader may see a value a moment old, never a torn one.
 */
#ifndef CASKD_SERVER_SUPERVISE_H
#define CASKD_SERVER_SUPERVISE_H

#include "engine/store.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

/* Worker slots: as many as the engine tracks writers for. */
#define SRV_SLOTS ENG_WORKER_SLOTS
/* A worker beats this often; the master kills one whose beat is older
 * than --worker-timeout. */
#define SRV_HEARTBEAT_MS 500

struct srv_wsup {
	alignas(64) _Atomic int32_t pid; /* 0: no worker in the slot */
	_Atomic int32_t ready;           /* serving requests */
	_Atomic uint64_t heartbeat_ms;   /* CLOCK_MONOTONIC; 0 while starting */
	_Atomic uint64_t conns;          /* open client connections */
};

struct srv_super {
	_Atomic uint32_t workers_up;
	_Atomic uint32_t stopping;       /* the daemon is going away */
	struct srv_wsup w[SRV_SLOTS];
};

/* Master, before fork. 0 or -errno. */
int srv_super_create(struct srv_super **out);
void srv_super_destroy(struct srv_super *s);

/* Master: a worker now runs slot (after fork), or was reaped (which
 * leaves the slot clean for the next one). */
void srv_super_started(struct srv_super *s, int slot, pid_t pid);
void srv_super_gone(struct srv_super *s, int slot);
void srv_super_set_workers_up(struct srv_super *s, int n);
void srv_super_set_stopping(struct srv_super *s);

/* Worker of slot: it serves (or no longer does); one heartbeat. */
void srv_super_set_ready(struct srv_super *s, int slot, int ready);
void srv_super_beat(struct srv_super *s, int slot, uint64_t now_ms, int nconns);

/* Anyone. */
int srv_super_ready(const struct srv_super *s, int slot);
uint64_t srv_super_heartbeat(const struct srv_super *s, int slot);
int srv_super_stopping(const struct srv_super *s);
int srv_super_workers_up(const struct srv_super *s);
uint64_t srv_super_conns(const struct srv_super *s);

/* Worker slot `slot` now has nconns connections: publishes it, and
 * returns how long (ms) the worker should stop accepting because it holds
 * more than its share (the mean over serving workers, plus slack). */
int srv_super_accept_pause(struct srv_super *s, int slot, int nconns);

#endif
