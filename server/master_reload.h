/* server/master_reload.h — stopping and reloading.
 *
 * Owns: m->stopping, m->stop_deadline and the reload fields of struct
 * master: a graceful stop (SIGTERM to every worker, --shutdown-timeout
 * to drain, then SIGKILL), a reload (SIGHUP: re-read the config, then
 * replace workers one at a time, each new one serving before an old one
 * retires), and what a reload may change at once (log level, access
 * log, admin token) or only at the next restart (listen, data dir,
 * max keys). Master process only.
 */
#ifndef CASKD_SERVER_MASTER_RELOAD_H
#define CASKD_SERVER_MASTER_RELOAD_H

#include "server/master_state.h"

/* A graceful stop (why: for the log); a second call does nothing. */
void srv_master_stop(struct master *m, const char *why);
/* SIGHUP: re-reads the config and starts replacing workers. */
void srv_master_reload(struct master *m);
/* One tick of a reload in progress. */
void srv_master_reload_step(struct master *m);
/* Reads --admin-token-file of cfg into m: 0 or -errno (logged). */
int srv_master_load_token(struct master *m, const struct srv_config *cfg);

#endif
