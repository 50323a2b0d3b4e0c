/* server/api_wait.h — answers that wait: for the fdatasync covering
 * what they show (group and always mode) and, in a group (docs/
 * cluster.md), for a majority to have it. Below every route: reads,
 * listings, snapshots and watches wait with srv_api_after_durable(),
 * every write (server/api_write.c) with srv_api_after_write().
 *
 * Owns: the worker's waiters (struct srv_cl_waits), started before the
 * worker serves and stopped (every held answer 503) when it stops.
 * Runs on a worker's event loop thread, with one helper thread.
 */
#ifndef CASKD_SERVER_API_WAIT_H
#define CASKD_SERVER_API_WAIT_H

#include "server/api_base.h"

#include <stdint.h>

/* An answer that depends on records up to log offset end: 0 if it may
 * go now (durable, or periodic mode), 1 if cb(rc, arg) runs once it
 * may, -errno. */
int srv_api_after_durable(struct srv_api *api, uint64_t end, srv_commit_cb cb,
			  void *arg);
/* A write of version, its pwrite returned: cb(rc, arg) once it is
 * durable here and, in a group, on a majority (else -ETIMEDOUT, or
 * -ENOTCONN when this member stopped being the primary meanwhile). 0
 * (cb will run) or -errno (it will not). */
int srv_api_after_write(struct srv_api *api, uint64_t version, srv_commit_cb cb,
			void *arg);
/* Cluster mode: the worker's waiters (start before serving; stop answers
 * every held request 503, as after a failover). 0 or -errno. */
int srv_api_cluster_start(struct srv_api *api);
void srv_api_cluster_stop(struct srv_api *api);

#endif
