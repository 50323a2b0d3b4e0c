/* server/worker.h — one worker process: an event loop serving the API.
 *
 * Owns: what a worker does after fork(): its own descriptor and mapping
 * of database.bin, its event_base (created after fork, never inherited),
 * its durability thread, its HTTP server on the shared listening sockets,
 * its heartbeat (server/supervise.h), and its graceful stop on SIGTERM
 * (stop accepting and close its copies of the listening sockets, finish
 * in-flight requests and their syncs, exit 0; connections still open
 * after --shutdown-timeout are closed). SIGQUIT stops at once.
 * The listening sockets and the access log are the master's, inherited.
 * It dies with the master (PR_SET_PDEATHSIG), so no orphan keeps the port.
 */
#ifndef CASKD_SERVER_WORKER_H
#define CASKD_SERVER_WORKER_H

#include <sys/types.h>

struct eng_db;
struct srv_config;
struct srv_metrics;
struct srv_super;
struct srv_token;
struct srv_cl_shm;

struct srv_worker_args {
	const struct srv_config *cfg;
	struct eng_db *db;
	struct srv_super *super;
	struct srv_metrics *metrics;
	const int *fds;
	int nfds;
	int access_fd;       /* the master's, -1 for none */
	int seat;
	pid_t master;
	const struct srv_token *admin_token; /* NULL: admin endpoints for loopback only */
	struct srv_cl_shm *cl;  /* cluster mode: the member's shared record; else NULL */
};

/* Runs the worker; returns its exit status. */
int srv_worker_main(const struct srv_worker_args *a);

#endif
