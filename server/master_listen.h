/* server/master_listen.h — the master's listening sockets.
 *
 * Owns: m->fds, m->nfds and m->fds_passed: the sockets every worker
 * accepts on, bound once by the master (or taken from systemd, or from
 * this master's previous image across a re-exec), so no connection is
 * refused while workers come and go. Descriptors 3.. are the listening
 * sockets' whenever sockets are handed over: by systemd (LISTEN_FDS) or
 * by this master to its own next image (CASKD_LISTEN_FDS); they are
 * taken before any other file is opened. Master process only.
 */
#ifndef CASKD_SERVER_MASTER_LISTEN_H
#define CASKD_SERVER_MASTER_LISTEN_H

#include "server/master_state.h"

/* Takes the sockets handed over (systemd's or our previous image's),
 * before any other file is opened: 0 or -errno. */
int srv_master_listen_adopt(struct master *m);
/* Binds what --listen names and was not handed over: 0 or -errno. */
int srv_master_listen_open(struct master *m);
/* Puts the sockets at 3.. without close-on-exec for a re-exec, and says
 * so in the environment: 0 or -errno. */
int srv_master_listen_pass(struct master *m);
/* A stop for good closes our own sockets (not systemd's, nor across a
 * re-exec). */
void srv_master_listen_close(struct master *m);

#endif
