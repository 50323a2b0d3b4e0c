/* server/http_server.c — the server of caskd's HTTP layer (API in
 * server/http.h): its listeners and its life.
 *
 * Owns: the listening sockets of one worker (shared with the other
 * workers and the master: never closed here), accepting (held while
 * accept_hold says so, so a fuller worker leaves new connections to its
 * siblings; paused after errors such as EMFILE; 503 from the stack over
 * max_conns), and the server's life: new, graceful shutdown, free. A
 * connection is handed to server/http_conn.c as soon as it is accepted;
 * the connection layer tells this file of each close through
 * srv->conn_closed, and of nothing else. Runs on a worker's event loop
 * thread.
 *
 * Map: accepting - the server's life.
 */
#include "server/http_conn.h"
#include "server/http_req.h"
#include "server/log.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

/* Defaults, as documented in http.h. */
#define SRV_HTTP_DEFAULT_LINE_BYTES   (8u * 1024)
#define SRV_HTTP_DEFAULT_HEADER_BYTES (16u * 1024)
#define SRV_HTTP_DEFAULT_MAX_CONNS    4096
#define SRV_HTTP_DEFAULT_IDLE_MS      60000
#define SRV_HTTP_DEFAULT_READ_MS      30000
#define SRV_HTTP_DEFAULT_MIN_RATE     1024
#define SRV_HTTP_DEFAULT_SEND_MS      60000
#define SRV_HTTP_DEFAULT_BODY_MEMORY  ((size_t)256 << 20)
/* On a graceful stop an idle keep-alive connection gets this long to send
 * one more request (answered with Connection: close) before it is closed:
 * closing it at once races with a request already on the wire, which the
 * client then sees fail (reload drills count exactly that). */
#define SRV_HTTP_SHUTDOWN_GRACE_MS    1000
/* Accept failures like EMFILE pause accepting this long instead of
 * spinning on a listener that stays readable... */
#define SRV_HTTP_ACCEPT_PAUSE_MS 100
/* ...and warnings are printed at most this often. */
#define SRV_HTTP_WARN_INTERVAL_S 60
/* Bytes drained from a connection refused with 503 before closing it:
 * closing with unread input makes the kernel send a reset, which can
 * destroy the 503 before the client reads it. */
#define SRV_HTTP_REFUSE_DRAIN_BYTES 4096

/* ==== accepting ========================================================= */

/* Warnings from hot paths (accept failures) are rate-limited: one per
 * SRV_HTTP_WARN_INTERVAL_S says enough. */
static bool srv_may_warn(struct srv_http_server *srv)
{
	time_t now = srv_loop_time(srv).tv_sec;

	if (srv->warned_at && now - srv->warned_at < SRV_HTTP_WARN_INTERVAL_S)
		return false;
	srv->warned_at = now;
	return true;
}

/* Over max_conns: answer 503 straight from the stack and close, without
 * allocating anything for a connection we cannot afford. */
static void srv_refuse(struct srv_http_server *srv, evutil_socket_t fd,
		       const struct sockaddr *sa, socklen_t salen)
{
	char body[SRV_HTTP_ERROR_BODY_BYTES];
	char resp[SRV_HTTP_HEAD_FIXED_BYTES + sizeof("application/json") +
		  SRV_HTTP_ERROR_BODY_BYTES];
	char sink[SRV_HTTP_REFUSE_DRAIN_BYTES];
	size_t blen = srv_http_json_error(body, sizeof(body),
					  "service_unavailable",
					  "too many open connections, retry later");
	struct srv_http_head h = {
		.status = 503,
		.date = srv_http_date(srv),
		.has_length = true,
		.length = blen,
		.ctype = "application/json",
		.connection = "close",
		.retry_after = true,
	};
	char *p = srv_http_format_head(resp, &h);

	memcpy(p, body, blen);
	p += blen;
	if (salen > 0 && (size_t)salen <= sizeof(srv->blank.peer))
		memcpy(&srv->blank.peer, sa, (size_t)salen);
	srv_http_log_response(srv, &srv->blank, 503, blen);
	srv->blank.peer.ss_family = AF_UNSPEC;
	/* Best effort on a fresh socket: its send buffer is empty. */
	if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) < 0) {
		/* nothing arrived yet: fine */
	}
	if (send(fd, resp, (size_t)(p - resp), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* the client is gone already */
	}
	evutil_closesocket(fd);
}

/* Enables the listeners unless something holds them: a stop, the
 * balance between workers (accept_hold) or an accept error pause. */
static void srv_listeners_sync(struct srv_http_server *srv)
{
	bool on = !srv->shutting_down && !srv->accept_held && !srv->accept_errpause;

	if (on == srv->listening)
		return;
	for (int i = 0; i < srv->nlev; i++) {
		if (!srv->lev[i])
			continue;
		if (on)
			evconnlistener_enable(srv->lev[i]);
		else
			evconnlistener_disable(srv->lev[i]);
	}
	srv->listening = on;
}

/* The count changed (an accept or a close): publishes it through
 * accept_hold and holds or resumes accepting as it says. A disabled
 * listener is not polled by this process, so the kernel's wakeup goes
 * to a sibling's. */
static void srv_accept_balance(struct srv_http_server *srv)
{
	struct timeval recheck = srv_ms_to_tv(SRV_HTTP_ACCEPT_RECHECK_MS);
	bool hold;

	if (!srv->cb.accept_hold)
		return;
	hold = srv->cb.accept_hold(srv->nconns, srv->arg) != 0;
	if (hold && !srv->shutting_down &&
	    !evtimer_pending(srv->accept_recheck, NULL) &&
	    evtimer_add(srv->accept_recheck, &recheck) != 0)
		hold = false; /* without its recheck a hold could last forever */
	if (!hold && evtimer_pending(srv->accept_recheck, NULL))
		evtimer_del(srv->accept_recheck);
	srv->accept_held = hold;
	srv_listeners_sync(srv);
}

static void srv_accept_recheck_cb(evutil_socket_t fd, short what, void *arg)
{
	srv_accept_balance(arg);
}

static void srv_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
			  struct sockaddr *sa, int salen, void *arg)
{
	struct srv_http_server *srv = arg;
	int rc;

	if (srv->nconns >= srv->opts.max_conns) {
		if (srv->opts.counters)
			srv_count_inc(&srv->opts.counters->conns_refused);
		srv_refuse(srv, fd, sa, (socklen_t)salen);
		srv_accept_balance(srv); /* a sibling may have room by now */
		return;
	}
	rc = srv_http_conn_new(srv, fd, sa, (socklen_t)salen);
	if (rc != 0 && srv_may_warn(srv))
		srv_warn("http: dropped a new connection: setting it up "
			 "failed: %s", strerror(-rc));
	srv_accept_balance(srv);
}

/* accept() failed for another reason than "someone else took it" (libevent
 * filters EAGAIN, EINTR and ECONNABORTED). EMFILE and friends leave the
 * listener readable, so accepting again at once would spin: pause. */
static void srv_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct srv_http_server *srv = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval delay = srv_ms_to_tv(SRV_HTTP_ACCEPT_PAUSE_MS);

	if (evtimer_add(srv->accept_resume, &delay) == 0) {
		srv->accept_errpause = true;
		srv_listeners_sync(srv);
	}
	if (srv_may_warn(srv))
		srv_warn("http: accept() failed: %s; pausing accepts for %d ms "
			 "(for EMFILE raise the open-file limit or lower "
			 "--max-conns)", strerror(err), SRV_HTTP_ACCEPT_PAUSE_MS);
}

static void srv_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_http_server *srv = arg;

	srv->accept_errpause = false;
	srv_listeners_sync(srv);
}

static void srv_listeners_free(struct srv_http_server *srv)
{
	for (int i = 0; i < srv->nlev; i++) {
		/* Without LEV_OPT_CLOSE_ON_FREE: the fd stays open for the
		 * other workers and the master. */
		if (srv->lev[i])
			evconnlistener_free(srv->lev[i]);
		srv->lev[i] = NULL;
	}
	if (srv->accept_resume)
		evtimer_del(srv->accept_resume);
	if (srv->accept_recheck)
		evtimer_del(srv->accept_recheck);
	srv->listening = false;
}

/* ==== the server's life ================================================ */

void srv_http_opts_default(struct srv_http_opts *opts)
{
	*opts = (struct srv_http_opts){
		.max_line_bytes = SRV_HTTP_DEFAULT_LINE_BYTES,
		.max_header_bytes = SRV_HTTP_DEFAULT_HEADER_BYTES,
		.max_conns = SRV_HTTP_DEFAULT_MAX_CONNS,
		.idle_timeout_ms = SRV_HTTP_DEFAULT_IDLE_MS,
		.read_timeout_ms = SRV_HTTP_DEFAULT_READ_MS,
		.min_rate = SRV_HTTP_DEFAULT_MIN_RATE,
		.send_timeout_ms = SRV_HTTP_DEFAULT_SEND_MS,
		.body_memory = SRV_HTTP_DEFAULT_BODY_MEMORY,
	};
}

static bool srv_opts_valid(const struct srv_http_opts *o)
{
	/* The limits must leave room for the smallest request, and their
	 * sum must not overflow the head scan arithmetic. */
	return o->max_line_bytes >= sizeof("GET / HTTP/1.1") &&
	       o->max_header_bytes >= sizeof("Host: x") &&
	       o->max_line_bytes < SIZE_MAX / 4 &&
	       o->max_header_bytes < SIZE_MAX / 4 && o->max_conns > 0 &&
	       o->idle_timeout_ms > 0 && o->read_timeout_ms > 0 &&
	       o->send_timeout_ms > 0 && o->body_memory > 0;
}

/* A write to a socket the client closed raises SIGPIPE, which kills the
 * worker by default; evbuffer_write() uses writev, which has no
 * MSG_NOSIGNAL.
 * A handler someone installed on purpose is left alone. */
static void srv_ignore_sigpipe(void)
{
	struct sigaction sa;

	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
}

static void srv_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_http_server *srv = arg;
	void (*done)(void *) = srv->done;

	srv->done = NULL;
	if (done)
		done(srv->done_arg); /* may free srv: touch nothing after */
}

static int srv_listen_all(struct srv_http_server *srv, const int *fds,
			  int nfds)
{
	srv->lev = calloc((size_t)(nfds > 0 ? nfds : 1), sizeof(*srv->lev));
	if (!srv->lev)
		return -ENOMEM;
	srv->nlev = nfds;
	for (int i = 0; i < nfds; i++) {
		if (evutil_make_socket_nonblocking(fds[i]) != 0)
			return -errno;
		/* Not LEV_OPT_CLOSE_ON_FREE: the fd is shared with the other
		 * workers and the master. CLOSE_ON_EXEC applies to the
		 * accepted sockets, so a job process does not inherit them. */
		srv->lev[i] = evconnlistener_new(srv->base, srv_accept_cb, srv,
						 LEV_OPT_CLOSE_ON_EXEC, 0,
						 fds[i]);
		if (!srv->lev[i])
			return errno ? -errno : -EINVAL;
		evconnlistener_set_error_cb(srv->lev[i], srv_accept_error_cb);
	}
	srv->listening = true; /* a new listener is enabled */
	return 0;
}

struct srv_http_server *srv_http_server_new(struct event_base *base,
					    const int *fds, int nfds,
					    const struct srv_http_opts *opts,
					    const struct srv_http_callbacks *cb,
					    void *arg)
{
	struct srv_http_server *srv;
	int rc = -EINVAL;

	if (!base || !cb || !cb->handle || nfds < 0 || (nfds && !fds) ||
	    (opts && !srv_opts_valid(opts)))
		goto out_fail;
	rc = -ENOMEM;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		goto out_fail;
	srv->base = base;
	srv->cb = *cb;
	srv->arg = arg;
	if (opts)
		srv->opts = *opts;
	else
		srv_http_opts_default(&srv->opts);
	srv_http_conn_timeouts(srv);
	srv_http_req_reset(&srv->blank);
	srv->blank.peer.ss_family = AF_UNSPEC;
	srv->conn_closed = srv_accept_balance;
	srv->done_ev = event_new(base, -1, 0, srv_done_cb, srv);
	srv->accept_resume = evtimer_new(base, srv_accept_resume_cb, srv);
	srv->accept_recheck = evtimer_new(base, srv_accept_recheck_cb, srv);
	if (!srv->done_ev || !srv->accept_resume || !srv->accept_recheck)
		goto out_free_srv;
	rc = srv_listen_all(srv, fds, nfds);
	if (rc != 0)
		goto out_free_srv;
	srv_ignore_sigpipe();
	return srv;

out_free_srv:
	srv_http_server_free(srv);
out_fail:
	errno = -rc;
	return NULL;
}

void srv_http_server_shutdown(struct srv_http_server *srv,
			      void (*done)(void *arg), void *arg)
{
	struct srv_http_conn *conn, *next;

	if (srv->shutting_down)
		return;
	srv->shutting_down = true;
	srv->done = done;
	srv->done_arg = arg;
	srv_listeners_free(srv);
	/* The rest finish their request: srv_conn_must_close() now says
	 * close. Idle ones get a short grace to send one last request. */
	srv->read_tv[SRV_TMO_IDLE] = srv_ms_to_tv(SRV_HTTP_SHUTDOWN_GRACE_MS);
	for (conn = srv->conns; conn; conn = next) {
		next = conn->next;
		if (srv_http_conn_is_idle(conn) &&
		    event_pending(conn->rev, EV_READ, NULL) &&
		    event_add(conn->rev, &srv->read_tv[SRV_TMO_IDLE]) != 0)
			srv_http_conn_free(conn);
	}
	srv_http_server_maybe_done(srv);
}

void srv_http_server_free(struct srv_http_server *srv)
{
	if (!srv)
		return;
	srv->done = NULL;
	if (srv->lev)
		srv_listeners_free(srv);
	/* Requests with their handler are orphaned, not freed: the handler
	 * may still respond to them, and then must not touch srv. */
	while (srv->conns)
		srv_http_conn_free(srv->conns);
	srv_http_orphans_release(srv);
	if (srv->accept_resume)
		event_free(srv->accept_resume);
	if (srv->accept_recheck)
		event_free(srv->accept_recheck);
	if (srv->done_ev)
		event_free(srv->done_ev);
	free(srv->lev);
	free(srv);
}

int srv_http_server_conns(const struct srv_http_server *srv)
{
	return srv->nconns;
}
