/* server/cluster_repl.h — the replicator thread of the cluster process
 * (cluster_repl.c says how it follows the primary's log). */
#ifndef CASKD_SERVER_CLUSTER_REPL_H
#define CASKD_SERVER_CLUSTER_REPL_H

/* The thread's main; arg: the process's struct srv_cl_proc. */
void *srv_cl_repl_main(void *arg);

#endif
