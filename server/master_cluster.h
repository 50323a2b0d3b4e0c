/* server/master_cluster.h — the master's cluster process.
 *
 * Owns: m->cl_pid and m->cl_respawn_at: in cluster mode (docs/
 * cluster.md) the one process that talks to etcd and streams the log to
 * replicas (server/cluster.h); it writes through the last worker seat
 * (CL_SEAT), which no worker takes. The master forks it, respawns it,
 * and stops or re-executes when it says the group refused this member
 * or a full copy waits to be installed. Master process only.
 */
#ifndef CASKD_SERVER_MASTER_CLUSTER_H
#define CASKD_SERVER_MASTER_CLUSTER_H

#include "server/master_state.h"

/* The worker seat the cluster process writes through. */
#define CL_SEAT (SRV_SEATS - 1)

/* Forks the cluster process; on failure its respawn is due shortly. */
void srv_master_cluster_spawn(struct master *m);
/* The cluster process was reaped with status. */
void srv_master_cluster_died(struct master *m, int status);

#endif
