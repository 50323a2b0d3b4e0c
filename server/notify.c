/* server/notify.c — sd-daemon calls (see notify.h). */
#include "server/notify.h"

#include "server/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#define NOTIFY_MAX 512

void srv_notify(const char *fmt, ...)
{
	char msg[NOTIFY_MAX];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rc = sd_notify(0, msg);
	if (rc < 0)
		srv_warn("sd_notify(%s): %s", msg, strerror(-rc));
}

void srv_notify_reloading(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	srv_notify("RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)ts.tv_sec * 1000000ull +
			   (unsigned long long)ts.tv_nsec / 1000);
}

uint64_t srv_notify_watchdog_usec(void)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

int srv_notify_listen_fds(void)
{
	int n = sd_listen_fds(0);
	return n > 0 ? n : 0;
}

_Static_assert(SRV_LISTEN_FDS_START == SD_LISTEN_FDS_START,
	       "socket activation passes fds from 3");
