/* server/cluster_proc.h — what the cluster process's two threads share
 * (cluster_agent.c: the agent; cluster_repl.c: the replicator), below
 * both: the state they hold in common and its durable save. Nothing
 * outside server/cluster_*.c includes it.
 *
 * Lock order: follow_mtx before state_mtx.
 * - follow_mtx: the replicator applies a stream's changes and sends its
 *   acks under it; the agent fences a new term under it. So once the
 *   agent has reported our position for a new term, no change of an
 *   older term is applied, nor acknowledged, after it.
 * - state_mtx: st and dir/cluster.state.
 */
#ifndef CASKD_SERVER_CLUSTER_PROC_H
#define CASKD_SERVER_CLUSTER_PROC_H

#include "server/cluster_state.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct eng_db;
struct srv_config;

struct srv_cl_proc {
	const struct srv_config *cfg;
	struct eng_db *db;
	struct srv_cl_shm *cl;
	pthread_mutex_t follow_mtx;
	pthread_mutex_t state_mtx;
	struct srv_cl_state st;
	_Atomic int stop;
	_Atomic int exit_code;   /* set by a thread that wants the process out */
};

/* Saves st with a new max_term and/or history (state_mtx taken here).
 * 0 or -errno. */
int srv_cl_proc_save(struct srv_cl_proc *p, uint64_t max_term,
		     const struct srv_cl_history *h);
#endif
