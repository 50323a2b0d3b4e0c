/* server/master.h — the supervising master process (see master.c). */
#ifndef CASKD_SERVER_MASTER_H
#define CASKD_SERVER_MASTER_H

struct srv_config;

/* Recovers, binds, forks cfg->workers workers and supervises them until
 * stopped. argv is kept for reloads (re-reading --config with the same
 * flags) and for re-executing after an fsync failure. Returns the exit
 * status. */
int srv_master_run(const struct srv_config *cfg, int argc, char **argv);

#endif
