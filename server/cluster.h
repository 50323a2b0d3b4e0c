/* server/cluster.h — a group member's cluster process (docs/cluster.md).
 *
 * Owns: the process the master forks beside its workers in cluster mode.
 * Its agent thread (cluster_agent.c) keeps this member's lease in etcd,
 * follows or takes leadership, fences older terms and publishes what it
 * decides in the shared record (cluster_state.h); its replicator thread
 * (cluster_repl.c) follows the primary's log into ours when we are a
 * replica. The workers serve the group's endpoints and hold writes until
 * a majority has them (api_cluster.c).
 *
 * The master: srv_cluster_prepare() before opening the store (it checks
 * dir/cluster.state against the flags, and installs a full copy that the
 * previous run fetched), srv_cluster_shm_new() before forking, and
 * srv_cluster_main() in the forked child. An exit status of
 * SRV_CLUSTER_EXIT_REFUSED means a misconfiguration the operator must fix
 * (the master stops with status 2); SRV_CLUSTER_EXIT_COPY that a full
 * copy waits to be installed (the master restarts through recovery).
 */
#ifndef CASKD_SERVER_CLUSTER_H
#define CASKD_SERVER_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

struct eng_db;
struct srv_config;
struct srv_cl_shm;

#define SRV_CLUSTER_EXIT_REFUSED 2
#define SRV_CLUSTER_EXIT_COPY 3
/* The full copy a replica fetched, beside database.bin until installed. */
#define SRV_CLUSTER_COPY_FILE "database.copy"
#define SRV_CLUSTER_COPY_DONE "database.copy.done"

/* Master, before eng_db_open: 0, or -EINVAL with a one-line why (the
 * data directory belongs to another group or node, or its state file is
 * damaged), or -errno. */
int srv_cluster_prepare(const struct srv_config *cfg, char *why, size_t n);
/* Master, before forking: the shared record (zeroed, in shared memory
 * every child inherits). NULL with errno on failure. */
struct srv_cl_shm *srv_cluster_shm_new(uint64_t applied);

struct srv_cluster_args {
	const struct srv_config *cfg;
	struct eng_db *db;      /* attached in the child already */
	struct srv_cl_shm *cl;
};
/* The child's main: returns its exit status. */
int srv_cluster_main(const struct srv_cluster_args *a);

#endif
