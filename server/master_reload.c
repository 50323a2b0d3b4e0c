/* server/master_reload.c — stopping and reloading. (see master_reload.h).
 */
#include "server/master_reload.h"

#include "server/clock.h"
#include "server/log.h"
#include "server/master_listen.h"
#include "server/master_workers.h"
#include "server/notify.h"

#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A reload that waits this long for its new worker to serve says so. */
#define RELOAD_SLOW_MS 5000
/* A reload that waits for one thing this long past --shutdown-timeout
 * still answers the service manager (READY=1, STATUS= saying what it
 * waits for): by then every worker it retired is gone, so it does not
 * wait for a drain but for something stuck. */
#define RELOAD_ANSWER_SLACK_MS 5000

void srv_master_stop(struct master *m, const char *why)
{
	if (m->stopping)
		return;
	m->stopping = 1;
	srv_master_listen_close(m);
	m->stop_deadline = srv_mono_ms() + (uint64_t)m->cfg.shutdown_timeout_s * 1000 +
			   DRAIN_KILL_SLACK_MS;
	srv_info("%s: stopping workers gracefully (at most %d s)", why,
		 m->cfg.shutdown_timeout_s);
	srv_notify("STOPPING=1\nSTATUS=stopping");
	srv_super_set_stopping(m->super);
	srv_master_workers_signal(m, SIGTERM);
	if (m->cl_pid)
		kill(m->cl_pid, SIGTERM); /* it hands leadership over as it goes */
	if (m->job_pid)
		kill(m->job_pid, SIGKILL); /* undone when reaped; the next start redoes it */
	for (int i = 0; i < SRV_SEATS; i++)
		if (m->seats[i].state == WPROC_WAITING)
			m->seats[i].state = WPROC_NONE;
}

static int same_str_list(const struct srv_config *a, const struct srv_config *b)
{
	if (a->nlisten != b->nlisten)
		return 0;
	for (int i = 0; i < a->nlisten; i++)
		if (strcmp(a->listen[i], b->listen[i]))
			return 0;
	return 1;
}

/* --admin-token-file: read at start (a bad one is a bad option: exit 2)
 * and at each reload. 0, or -EINVAL with the error logged. */
int srv_master_load_token(struct master *m, const struct srv_config *cfg)
{
	struct srv_token tok;
	char err[PATH_MAX + 160];
	int rc;

	if (!cfg->admin_token_file[0]) {
		m->have_token = 0;
		return 0;
	}
	if ((rc = srv_token_read(cfg->admin_token_file, &tok, err, sizeof(err))) < 0) {
		srv_error("%s", err);
		return rc;
	}
	/* only now: a failed reload keeps the token that was in force */
	m->admin_token = tok;
	m->have_token = 1;
	explicit_bzero(&tok, sizeof(tok));
	return 0;
}

/* On SIGHUP, as logrotate expects: the access log named by the new
 * config is opened afresh (the file may have been moved away). If that
 * fails the open one is kept, and so is its name. New workers get the
 * new fd; old ones write to the old file until they retire. */
static void reopen_access_log(struct master *m, struct srv_config *next)
{
	int fd = -1;

	if (next->access_log[0] && (fd = srv_access_open(next->access_log)) < 0) {
		srv_error("reload: --access-log: cannot open %s: %s; keeping the open log%s%s",
			  next->access_log, strerror(-fd), m->cfg.access_log[0] ? " " : "",
			  m->cfg.access_log);
		memcpy(next->access_log, m->cfg.access_log, sizeof(next->access_log));
		return;
	}
	if (m->access_fd >= 0)
		close(m->access_fd);
	m->access_fd = fd;
}

/* The --listen values, comma-separated, into buf. */
static void listen_list(const struct srv_config *c, char *buf, size_t n)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < c->nlisten && o < n; i++)
		o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? "," : "", c->listen[i]);
	if (!c->nlisten)
		snprintf(buf, n, "(none)");
}

/* listen, data-dir and max-keys hold for the master's life (its sockets,
 * its store, its index): a reload keeps the running ones in next, and
 * logs each that changed with its old and new value, so the operator
 * knows what the next restart brings. */
static void keep_restart_only(const struct srv_config *run, struct srv_config *next)
{
	static const char later[] = "takes effect at the next restart";
	char was[SRV_LISTEN_MAX * SRV_ADDR_MAX], now[SRV_LISTEN_MAX * SRV_ADDR_MAX];

	if (!same_str_list(next, run)) {
		listen_list(run, was, sizeof(was));
		listen_list(next, now, sizeof(now));
		srv_warn("reload: listen changed from %s to %s: %s; still listening on %s",
			 was, now, later, was);
	}
	if (strcmp(next->data_dir, run->data_dir))
		srv_warn("reload: data-dir changed from %s to %s: %s; still serving %s",
			 run->data_dir, next->data_dir, later, run->data_dir);
	if (next->max_keys != run->max_keys)
		srv_warn("reload: max-keys changed from %" PRIu64 " to %" PRIu64 " (0: no bound): "
			 "%s", (uint64_t)run->max_keys, (uint64_t)next->max_keys, later);
	memcpy(next->listen, run->listen, sizeof(next->listen));
	next->nlisten = run->nlisten;
	snprintf(next->data_dir, sizeof(next->data_dir), "%s", run->data_dir);
	next->max_keys = run->max_keys;
}

void srv_master_reload(struct master *m)
{
	struct srv_config next;
	char err[512];

	if (m->stopping)
		return;
	if (srv_config_load(m->argc, m->argv, &next, err, sizeof(err)) != SRV_CONFIG_OK) {
		srv_error("reload: %s; keeping the running configuration and workers", err);
		return;
	}
	if (srv_master_load_token(m, &next) < 0) {
		srv_error("reload: keeping the running configuration and workers");
		return;
	}
	srv_notify_reloading();
	reopen_access_log(m, &next);
	keep_restart_only(&m->cfg, &next);
	m->cfg = next;
	srv_log_set_level((enum srv_log_level)m->cfg.log_level);
	m->gen++;
	m->reloading = 1;
	m->incoming = -1;
	m->reload_started_ms = srv_mono_ms();
	m->reload_warned = 0;
	m->reload_wait_ms = 0;
	m->reload_answered = 0;
	srv_info("reload: replacing workers one at a time (%d wanted)", m->cfg.workers);
}

static int count_gen(const struct master *m, unsigned gen, int current)
{
	int n = 0;
	for (int i = 0; i < SRV_SEATS; i++) {
		const struct wproc *s = &m->seats[i];
		if (s->state == WPROC_NONE || s->retiring)
			continue;
		n += current ? s->gen == gen : s->gen != gen;
	}
	return n;
}

static void retire_one_old(struct master *m)
{
	for (int i = 0; i < SRV_SEATS; i++) {
		struct wproc *s = &m->seats[i];
		if (s->state == WPROC_RUNNING && s->gen != m->gen && !s->retiring) {
			s->retiring = 1;
			s->kill_at = srv_mono_ms() + (uint64_t)m->cfg.shutdown_timeout_s * 1000 +
				     DRAIN_KILL_SLACK_MS;
			kill(s->pid, SIGTERM);
			return;
		}
		if (s->state == WPROC_WAITING && s->gen != m->gen) {
			s->state = WPROC_NONE;
			return;
		}
	}
}

/* The reload cannot go on yet: says what it waits for (once, at once if
 * urgent, else once it has waited long), and once it has waited past
 * --shutdown-timeout plus slack answers the service manager anyway, so
 * `systemctl reload` never hangs; the reload goes on trying. */
static void reload_wait(struct master *m, int urgent, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reload_wait(struct master *m, int urgent, const char *fmt, ...)
{
	uint64_t now = srv_mono_ms();
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (!m->reload_wait_ms)
		m->reload_wait_ms = now;
	if (!m->reload_warned && (urgent || now - m->reload_wait_ms >= RELOAD_SLOW_MS)) {
		srv_warn("reload: waiting: %s", what);
		srv_notify("STATUS=reload waiting: %s", what);
		m->reload_warned = 1;
	}
	if (!m->reload_answered &&
	    now - m->reload_wait_ms >= (uint64_t)m->cfg.shutdown_timeout_s * 1000 +
					 RELOAD_ANSWER_SLACK_MS) {
		srv_warn("reload: not done after %" PRIu64 " s (%s); answering the service "
			 "manager, and still trying", (now - m->reload_started_ms) / 1000, what);
		srv_notify("READY=1\nSTATUS=reload incomplete: %s; the old workers serve", what);
		m->reload_answered = 1;
	}
}

/* Seats held by workers a reload retired and that still drain. */
static int draining(const struct master *m, uint64_t *first_kill)
{
	int n = 0;

	*first_kill = UINT64_MAX;
	for (int i = 0; i < SRV_SEATS; i++) {
		const struct wproc *s = &m->seats[i];
		if (s->state != WPROC_RUNNING || !s->retiring)
			continue;
		n++;
		if (s->kill_at && s->kill_at < *first_kill)
			*first_kill = s->kill_at;
	}
	return n;
}

/* One step of a reload: start a new worker, and once it serves, retire
 * one old worker; repeat. The listening sockets never close, so clients
 * see no refused connection. A new worker that died before serving is
 * respawned (with backoff) and waited for again: no old worker is
 * retired for it. */
void srv_master_reload_step(struct master *m)
{
	if (m->incoming >= 0) {
		struct wproc *s = &m->seats[m->incoming];
		if (s->state == WPROC_WAITING) {
			reload_wait(m, 1, "the new worker in slot %d died before serving; it is "
				    "restarted, the old workers keep serving", m->incoming);
			return;
		}
		if (s->state == WPROC_RUNNING && !srv_super_ready(m->super, m->incoming)) {
			reload_wait(m, 0, "the new worker in slot %d (pid %d) does not serve yet",
				    m->incoming, (int)s->pid);
			return;
		}
		m->incoming = -1;
		m->reload_warned = 0;
		m->reload_wait_ms = 0;
		retire_one_old(m);
		return;
	}
	if (count_gen(m, m->gen, 1) < m->cfg.workers) {
		int seat = srv_master_worker_free_seat(m);
		if (seat < 0) {
			uint64_t kill_at, now = srv_mono_ms();
			int n = draining(m, &kill_at);

			reload_wait(m, 1, "all %d worker slots are taken; %d retired worker(s) "
				    "still drain, the first cut off by --shutdown-timeout "
				    "within %" PRIu64 " s", SRV_SEATS, n,
				    kill_at == UINT64_MAX || kill_at < now ? 0 :
				    (kill_at - now + 999) / 1000);
			return;
		}
		m->reload_warned = 0;
		m->reload_wait_ms = 0;
		if (srv_master_worker_spawn(m, seat) == 0)
			m->incoming = seat;
		return;
	}
	if (count_gen(m, m->gen, 0) > 0) {
		retire_one_old(m);
		return;
	}
	m->reloading = 0;
	srv_info("reload: done, %d workers", m->cfg.workers);
	srv_notify("READY=1\nSTATUS=reloaded; %d workers", m->cfg.workers);
}
