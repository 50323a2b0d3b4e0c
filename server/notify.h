/* server/notify.h — talking to systemd (sd_notify, sd_listen_fds).
 *
 * Owns: the master's messages to the service manager. Only the master
 * sends them (with NotifyAccess=main only its messages count), speaking
 * for all workers. Every call is a no-op when NOTIFY_SOCKET is unset.
 */
#ifndef CASKD_SERVER_NOTIFY_H
#define CASKD_SERVER_NOTIFY_H

#include <stdint.h>

void srv_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RELOADING=1 with MONOTONIC_USEC=, as Type=notify-reload requires. */
void srv_notify_reloading(void);
/* Watchdog interval in microseconds from WATCHDOG_USEC (for us), or 0. */
uint64_t srv_notify_watchdog_usec(void);
/* Sockets passed by socket activation (LISTEN_FDS for our pid): the
 * count, their fds start at 3. 0 if none. */
int srv_notify_listen_fds(void);
#define SRV_LISTEN_FDS_START 3 /* SD_LISTEN_FDS_START */

#endif
