/* server/worker.c — a worker process (see worker.h). */
#include "server/worker.h"

#include "server/clock.h"

#include "engine/errors.h"
#include "engine/store.h"
#include "engine/failpoint.h"
#include "engine/io.h"
#include "server/api.h"
#include "server/api_wait.h"
#include "server/api_watch.h"
#include "server/api_write.h"
#include "server/commit.h"
#include "server/config.h"
#include "server/http.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/supervise.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* A worker whose master died stops within this (see on_sigterm). */
#define ORPHAN_DRAIN_MS 1000

struct worker {
	const struct srv_worker_args *a;
	struct event_base *base;
	struct srv_http_server *http;
	struct srv_commit *commit;
	struct srv_api api;
	struct srv_wstats *stats;
	struct event *heartbeat;
	struct event *sigterm;
	struct event *sigquit;
	int exit_code;          /* 1: stopped to be replaced */
	struct event *drain_end; /* --shutdown-timeout after SIGTERM */
	int stopping;
};

static void on_sigterm(evutil_socket_t sig, short what, void *arg);

/* The master kills a worker whose heartbeat stops: a wedged loop (stuck
 * in a handler) stops beating because this runs on the loop. The beat
 * also follows a database.bin a compaction replaced while this worker
 * was idle (else its mapping would hold the old file's space), and
 * notices a sync thread that gave up: the worker then stops, exiting 1,
 * and the master starts another. */
static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	int rc;

	(void)fd;
	(void)what;
	srv_super_beat(w->a->super, w->a->seat, srv_mono_ms(),
		       w->http ? srv_http_server_conns(w->http) : 0);
	(void)eng_db_refresh(w->a->db);
	if (w->commit && !w->stopping && (rc = srv_commit_failed(w->commit))) {
		srv_error("the sync thread gave up (%s): stopping this worker so the "
			  "master starts a fresh one", eng_strerror(rc));
		w->exit_code = 1;
		on_sigterm(SIGTERM, 0, w);
	}
}

/* Every engine error a request was answered with comes here (the API's
 * error table only maps): a store that cannot be trusted (a repair
 * failed) is rebuilt from database.bin only by a restart through
 * recovery, and only the master can do it. */
static void on_engine_error(int rc, void *arg)
{
	struct worker *w = arg;

	if (rc != -ENOTRECOVERABLE && rc != -EUCLEAN)
		return;
	srv_error("the shared index cannot be trusted (%s): asking the master to "
		  "restart through recovery", eng_strerror(rc));
	kill(w->a->master, SIGUSR2);
}

static void on_drained(void *arg)
{
	struct worker *w = arg;
	event_base_loopexit(w->base, NULL);
}

/* The drain took --shutdown-timeout: what is left is cut, as nginx's
 * worker_shutdown_timeout does, so that neither a stop nor a reload waits
 * on a client (one trickling a body, or reading a listing slowly). The
 * commit queue's waiters are still answered (teardown). */
static void on_drain_end(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)fd;
	(void)what;
	srv_warn("still draining after --shutdown-timeout %d s: closing %d connection(s)",
		 w->a->cfg->shutdown_timeout_s, srv_http_server_conns(w->http));
	event_base_loopexit(w->base, NULL);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval drain = { w->a->cfg->shutdown_timeout_s, 0 };
	(void)sig;
	(void)what;
	if (w->stopping)
		return;
	w->stopping = 1;
	w->api.draining = 1;
	/* Siblings no longer leave new connections to this one. */
	srv_super_unlisten(w->a->super, w->a->seat);
	if (getppid() != w->a->master) {
		/* The master died (PR_SET_PDEATHSIG): a new one may be waiting
		 * for the directory's lock we hold. Finish what is in flight,
		 * briefly, then go. */
		struct timeval cap = { ORPHAN_DRAIN_MS / 1000, (ORPHAN_DRAIN_MS % 1000) * 1000 };
		srv_warn("the master is gone: finishing in-flight requests for at most %d ms",
			 ORPHAN_DRAIN_MS);
		event_base_loopexit(w->base, &cap);
	} else {
		srv_info("stopping: finishing in-flight requests (at most %d s)",
			 w->a->cfg->shutdown_timeout_s);
		if (!(w->drain_end = evtimer_new(w->base, on_drain_end, w)) ||
		    evtimer_add(w->drain_end, &drain) < 0)
			event_base_loopexit(w->base, &drain); /* the same, unlogged */
	}
	/* watch streams never finish by themselves: end them cleanly first */
	srv_api_watch_shutdown(&w->api);
	srv_http_server_shutdown(w->http, on_drained, w);
	/* The listeners are gone; our copies of the sockets go too, so that
	 * once the master closes its own a stopping daemon refuses new
	 * connections instead of queueing them (on a reload the master and
	 * the new workers keep the sockets open). */
	for (int i = 0; i < w->a->nfds; i++)
		close(w->a->fds[i]);
}

static void on_sigquit(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	_exit(0);
}

/* libevent's own complaints (e.g. a descriptor epoll refuses) go through
 * our logger too, with a level, instead of a bare "[warn]" on stderr. */
static void on_libevent_log(int severity, const char *msg)
{
	enum srv_log_level level = severity == EVENT_LOG_DEBUG ? SRV_LOG_DEBUG :
				   severity == EVENT_LOG_MSG ? SRV_LOG_INFO :
				   severity == EVENT_LOG_WARN ? SRV_LOG_WARN : SRV_LOG_ERROR;

	srv_log(level, "libevent: %s", msg);
}

/* Undo what the master set up for itself before fork(). */
static int reset_signals(void)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL }, ign = { .sa_handler = SIG_IGN };
	const int to_default[] = { SIGCHLD, SIGHUP, SIGALRM, SIGUSR1, SIGUSR2 };
	sigset_t none;

	for (size_t i = 0; i < sizeof(to_default) / sizeof(to_default[0]); i++)
		sigaction(to_default[i], &dfl, NULL);
	/* Ctrl-C in a terminal reaches the whole process group; the master
	 * turns it into an orderly stop, so workers ignore it. */
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	sigemptyset(&none);
	return sigprocmask(SIG_SETMASK, &none, NULL) < 0 ? -errno : 0;
}

/* server/commit.h names --fsync always "EACH" (one sync each write). */
static enum srv_commit_mode commit_mode(enum srv_fsync_mode m)
{
	switch (m) {
	case SRV_FSYNC_PERIODIC: return SRV_COMMIT_PERIODIC;
	case SRV_FSYNC_ALWAYS: return SRV_COMMIT_ALWAYS;
	case SRV_FSYNC_GROUP: break;
	}
	return SRV_COMMIT_GROUP;
}

static int setup(struct worker *w)
{
	const struct srv_worker_args *a = w->a;
	struct srv_http_opts ho;
	struct srv_http_callbacks cb = {
		.body_limit = srv_api_body_limit,
		.handle = srv_api_handle,
		.logged = srv_api_logged,
		.accept_hold = srv_api_accept_hold,
	};
	struct timeval beat = { 0, SRV_HEARTBEAT_MS * 1000 };
	int rc;

	if ((rc = eng_db_attach(a->db, a->seat))) {
		srv_error("opening %s: %s", a->db->path, eng_strerror(rc));
		return rc;
	}
	event_set_log_callback(on_libevent_log);
	if (!(w->base = event_base_new()))
		return -ENOMEM;
	w->sigterm = evsignal_new(w->base, SIGTERM, on_sigterm, w);
	w->sigquit = evsignal_new(w->base, SIGQUIT, on_sigquit, w);
	w->heartbeat = event_new(w->base, -1, EV_PERSIST, on_heartbeat, w);
	if (!w->sigterm || !w->sigquit || !w->heartbeat ||
	    evsignal_add(w->sigterm, NULL) || evsignal_add(w->sigquit, NULL) ||
	    evtimer_add(w->heartbeat, &beat))
		return -ENOMEM;
	if ((rc = reset_signals()))
		return rc;
	if ((rc = srv_commit_start(w->base, a->db, commit_mode(a->cfg->fsync),
				   a->cfg->fsync_interval_ms, &w->commit))) {
		srv_error("starting the sync thread: %s", strerror(-rc));
		return rc;
	}
	w->api = (struct srv_api){
		.base = w->base, .db = a->db, .commit = w->commit,
		.super = a->super, .metrics = a->metrics, .stats = w->stats,
		.cfg = a->cfg,
		.seat = a->seat, .access_fd = a->access_fd,
		.admin_token = a->admin_token, .engine_error = on_engine_error, .engine_error_arg = w,
		.cl = a->cl, .redispatch = srv_api_handle,
	};
	if ((rc = srv_api_cluster_start(&w->api))) {
		srv_error("starting the cluster waiters: %s", strerror(-rc));
		return rc;
	}
	srv_http_opts_default(&ho);
	ho.max_conns = a->cfg->max_conns;
	ho.idle_timeout_ms = a->cfg->idle_timeout_s * 1000;
	ho.read_timeout_ms = a->cfg->read_timeout_s * 1000;
	ho.min_rate = (size_t)a->cfg->min_rate;
	ho.send_timeout_ms = a->cfg->send_timeout_s * 1000;
	ho.body_memory = (size_t)a->cfg->body_memory;
	ho.counters = &w->stats->http;
	atomic_store_explicit(&w->stats->body_memory_limit, a->cfg->body_memory,
			      memory_order_relaxed);
	w->http = srv_http_server_new(w->base, a->fds, a->nfds, &ho, &cb, &w->api);
	if (!w->http) {
		srv_error("starting the HTTP server: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static void teardown(struct worker *w)
{
	/* Writes waiting for a pass and waiters of the commit queue hold
	 * requests: answer them first. */
	srv_write_pass_stop(&w->api);
	srv_api_watch_shutdown(&w->api);
	srv_api_cluster_stop(&w->api);
	srv_commit_stop(w->commit);
	if (w->http)
		srv_http_server_free(w->http);
	if (w->heartbeat)
		event_free(w->heartbeat);
	if (w->sigterm)
		event_free(w->sigterm);
	if (w->sigquit)
		event_free(w->sigquit);
	if (w->drain_end)
		event_free(w->drain_end);
	if (w->api.access_fd >= 0)
		close(w->api.access_fd);
	if (w->base)
		event_base_free(w->base);
}

int srv_worker_main(const struct srv_worker_args *a)
{
	struct worker w = { .a = a, .stats = &a->metrics->w[a->seat] };
	char role[32];
	int rc;

	w.api.access_fd = -1;
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != a->master)
		return 1; /* the master is already gone */
	snprintf(role, sizeof(role), "worker %d", a->seat);
	srv_log_set_role(role);
	eng_io_set_role("worker");
	eng_fp_set_armed(1);
	if (ENG_FP("worker.start"))
		return 1; /* drills: a worker that cannot start */
	if ((rc = setup(&w))) {
		teardown(&w);
		return 1;
	}
	on_heartbeat(-1, 0, &w);
	srv_super_listen(a->super, a->seat, a->cfg->max_conns);
	srv_super_set_ready(a->super, a->seat, 1);
	srv_debug("serving");
	rc = event_base_dispatch(w.base);
	srv_super_set_ready(a->super, a->seat, 0);
	srv_super_unlisten(a->super, a->seat);
	teardown(&w);
	return rc < 0 ? 1 : w.exit_code;
}
