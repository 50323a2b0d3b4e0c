/* server/master_state.h — the state of the master process, one struct
 * master for its life, and who writes what in it.
 *
 * The master is split by section, one file each, with nothing below
 * calling up: master_listen.c (the listening sockets: fds, nfds,
 * fds_passed), master_workers.c (the worker processes: procs[]),
 * master_jobs.c (the background job process: job_pid, job_id),
 * master_cluster.c (the cluster process: cl_pid, cl_respawn_at),
 * master_reload.c (stop and reload: stopping, stop_deadline, gen, the
 * reload_* fields, cfg and access_fd on a reload, the admin token), and
 * master.c on top: start-up, the periodic checks and the main loop
 * (the rest). Single-threaded: only the master process touches it, and
 * only from its main loop (signal handlers set flags only).
 */
#ifndef CASKD_SERVER_MASTER_STATE_H
#define CASKD_SERVER_MASTER_STATE_H

#include "engine/store.h"
#include "server/config.h"
#include "server/supervise.h"
#include "server/token.h"

struct srv_cl_shm;

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/* The signals the master handles (master.c); a child it forks puts them
 * back to their defaults. */
#define SRV_MASTER_SIGNALS { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, \
			     SIGALRM, SIGUSR1, SIGUSR2 }

/* A stopping worker (stop or reload) closes what is left at
 * --shutdown-timeout itself and exits; one still running this much later
 * is killed. */
#define DRAIN_KILL_SLACK_MS 2000
#define EXIT_USAGE 2            /* a bad option or config (main.c) */

/* A worker process the master runs in a worker seat (worker seats are
 * numbered as the engine's and the metrics' are). */
enum wproc_state { WPROC_NONE, WPROC_RUNNING, WPROC_WAITING /* respawn due */,
		   WPROC_CLUSTER /* the engine's worker seat of the cluster process */ };

struct wproc {
	enum wproc_state state;
	pid_t pid;
	unsigned gen;          /* configuration generation it runs */
	int retiring;          /* sent SIGTERM; not to be respawned */
	uint64_t kill_at;      /* retiring: SIGKILL then if still running; 0 none */
	uint64_t started_ms;
	uint64_t respawn_at;
	int fast_deaths;
};

struct master {
	struct srv_config cfg;
	int argc;
	char **argv;
	struct eng_db db;
	int store_open;        /* db is open (master.c) */
	struct srv_super *super;
	struct srv_metrics *metrics;
	int fds[SRV_LISTEN_MAX];
	int nfds;
	int fds_passed;        /* systemd's (socket activation), not ours */
	int access_fd;         /* -1: no access log; workers inherit it */
	struct wproc seats[SRV_SEATS];
	unsigned gen;
	int stopping;
	int reexec;            /* restart through recovery once stopped */
	int index_lost;        /* a dead worker's repair failed: as SIGUSR2 */
	uint64_t stop_deadline;
	int reloading;
	int incoming;          /* seat of the new worker a reload waits for */
	uint64_t reload_started_ms;
	int reload_warned;     /* said what the reload waits for */
	uint64_t reload_wait_ms; /* since when it waits for that; 0: it does not */
	int reload_answered;   /* READY=1 sent before it was done */
	uint64_t watchdog_usec;
	uint64_t last_watchdog_ms;
	uint64_t last_status_ms;
	int prezero_warned;
	uint64_t prezero_retry_ms;
	pid_t job_pid;          /* the job process running, or 0 */
	uint64_t job_id;
	struct srv_token admin_token;
	int have_token;
	/* Cluster mode (server/cluster.h): the member's shared record, and
	 * the cluster process, which writes through the last worker seat
	 * (master_cluster.c). */
	struct srv_cl_shm *cl;
	pid_t cl_pid;
	uint64_t cl_respawn_at;
	int exit_code;          /* set by a refusal found after start (2) */
	int ready_pending;      /* READY=1 waits for the member's role */
	uint64_t recovery_notified_ms;
};

#endif
