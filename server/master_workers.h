/* server/master_workers.h — the master's worker processes.
 *
 * Owns: m->seats[]: which worker process runs in which worker seat (the
 * numbering the engine and the metrics use), forking one (it opens its
 * own database.bin: OFD locks belong to the open file description),
 * repairing what a dead one held (engine: eng_db_reap_worker) and its
 * respawn with backoff when it keeps dying. Master process only.
 */
#ifndef CASKD_SERVER_MASTER_WORKERS_H
#define CASKD_SERVER_MASTER_WORKERS_H

#include "server/master_state.h"

/* Running worker processes. */
int srv_master_workers_running(const struct master *m);
/* Forks the worker of seat; on failure its respawn is due shortly.
 * 0 or -errno. */
int srv_master_worker_spawn(struct master *m, int seat);
/* A seat no process holds, or -ENOSPC. */
int srv_master_worker_free_seat(const struct master *m);
/* The worker of seat was reaped with status: repair, then respawn. */
void srv_master_worker_died(struct master *m, int seat, int status);
/* Sends sig to every running worker. */
void srv_master_workers_signal(struct master *m, int sig);

#endif
