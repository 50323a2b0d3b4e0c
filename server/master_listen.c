/* server/master_listen.c — the master's listening sockets. (see master_listen.h).
 */
#include "server/master_listen.h"

#include "server/log.h"
#include "server/notify.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096     /* the kernel caps it at somaxconn */
/* Our own listening sockets across a re-exec, as LISTEN_FDS/LISTEN_PID
 * are systemd's. */
#define REEXEC_FDS_ENV "CASKD_LISTEN_FDS"
#define REEXEC_PID_ENV "CASKD_LISTEN_PID"

/* Binds and listens on spec (HOST:PORT, validated by config). The fd, or
 * -errno (-EINVAL for an address that does not resolve). */
static int bind_one(const char *spec)
{
	char host[SRV_ADDR_MAX], *port;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int fd = -1, one = 1, rc;

	snprintf(host, sizeof(host), "%s", spec);
	port = strrchr(host, ':');
	*port++ = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	rc = getaddrinfo(host[0] && strcmp(host, "*") ? host : NULL, port, &hints, &res);
	if (rc) {
		srv_error("cannot listen on %s: %s", spec, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (res->ai_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0) {
		rc = -errno;
		srv_error("cannot listen on %s: %s", spec, strerror(-rc));
		if (fd >= 0)
			close(fd);
		fd = rc;
	}
	freeaddrinfo(res);
	return fd;
}

/* Is fd a listening stream socket? */
static int is_listener(int fd)
{
	int type = 0, acc = 0;
	socklen_t tl = sizeof(type), al = sizeof(acc);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
	       getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 &&
	       type == SOCK_STREAM && acc;
}

/* Our own sockets handed across a re-exec: CASKD_LISTEN_FDS=n when
 * CASKD_LISTEN_PID is our pid (as sd_listen_fds checks LISTEN_PID). The
 * variables are cleared: they describe this image's fds only. */
static int inherited_fds(void)
{
	const char *n = getenv(REEXEC_FDS_ENV), *pid = getenv(REEXEC_PID_ENV);
	int count = n && pid && atoi(pid) == (int)getpid() ? atoi(n) : 0;

	unsetenv(REEXEC_FDS_ENV);
	unsetenv(REEXEC_PID_ENV);
	return count;
}

/* Takes the sockets handed over at fds 3..: systemd's (socket activation)
 * or our own from before a re-exec. Runs before anything else is opened,
 * so no other file can take one of those numbers, and checks each really
 * is a listening socket: serving a data file as one would leave clients
 * waiting on a daemon that says it is ready. 0 (possibly none) or
 * -EINVAL. */
int srv_master_listen_adopt(struct master *m)
{
	int n = srv_notify_listen_fds();
	const char *from = "LISTEN_FDS (socket activation)";

	m->fds_passed = n > 0;
	if (!n) {
		n = inherited_fds();
		from = "the master before its re-exec";
	}
	if (n > SRV_LISTEN_MAX) {
		srv_error("%s passes %d sockets; caskd serves at most %d", from, n,
			  SRV_LISTEN_MAX);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		int fd = SRV_LISTEN_FDS_START + i;
		if (!is_listener(fd)) {
			srv_error("fd %d from %s is not a listening stream socket; "
				  "refusing to start", fd, from);
			return -EINVAL;
		}
		/* Workers inherit them by fork, nothing else by exec. */
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
			srv_error("fcntl(%d, F_SETFD): %s", fd, strerror(errno));
			return -errno;
		}
		m->fds[m->nfds++] = fd;
	}
	if (n)
		srv_info("serving %d socket(s) %s", n, m->fds_passed ?
			 "passed by the service manager" : "kept across the re-exec");
	return 0;
}

/* The address fd is bound to, as HOST:PORT ([HOST]:PORT for IPv6): with
 * port 0 in --listen only this says where caskd serves. */
static void bound_address(int fd, const char *spec, char *buf, size_t n)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
	    getnameinfo((struct sockaddr *)&sa, len, host, sizeof(host), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, n, "%s", spec);
		return;
	}
	snprintf(buf, n, sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* Binds --listen, unless sockets were handed over. 0 or -errno. */
int srv_master_listen_open(struct master *m)
{
	char addr[SRV_ADDR_MAX + NI_MAXSERV];

	if (m->nfds)
		return 0;
	for (int i = 0; i < m->cfg.nlisten; i++) {
		int fd = bind_one(m->cfg.listen[i]);
		if (fd < 0)
			return fd;
		m->fds[m->nfds++] = fd;
		bound_address(fd, m->cfg.listen[i], addr, sizeof(addr));
		srv_info("listening on %s", addr);
	}
	return 0;
}

/* Hands the listening sockets to the next image of the master at fds
 * 3.. without FD_CLOEXEC, so no connection is refused while it recovers.
 * systemd's already sit there, and LISTEN_FDS / LISTEN_PID stay true
 * (execv keeps our pid). Our own are moved there and described by
 * CASKD_LISTEN_FDS / CASKD_LISTEN_PID. Every other descriptor is
 * close-on-exec, so nothing else reaches the next image. 0 or -errno. */
int srv_master_listen_pass(struct master *m)
{
	int tmp[SRV_LISTEN_MAX], rc = 0, i;
	char num[16];

	for (i = 0; i < m->nfds; i++) {
		/* Above the target range, so no dup2 below closes a socket
		 * not yet copied. */
		tmp[i] = fcntl(m->fds[i], F_DUPFD_CLOEXEC, SRV_LISTEN_FDS_START + m->nfds);
		if (tmp[i] < 0) {
			rc = -errno;
			goto out_close_tmp;
		}
	}
	for (i = 0; i < m->nfds; i++) {
		int fd = SRV_LISTEN_FDS_START + i;
		if (dup2(tmp[i], fd) < 0) { /* the copy has no FD_CLOEXEC */
			rc = -errno;
			break;
		}
		m->fds[i] = fd;
	}
	i = m->nfds;
	if (!rc && !m->fds_passed) {
		snprintf(num, sizeof(num), "%d", m->nfds);
		if (setenv(REEXEC_FDS_ENV, num, 1) < 0)
			rc = -errno;
		snprintf(num, sizeof(num), "%d", (int)getpid());
		if (!rc && setenv(REEXEC_PID_ENV, num, 1) < 0)
			rc = -errno;
	}
out_close_tmp:
	while (i-- > 0)
		close(tmp[i]);
	return rc;
}

/* A stop for good refuses new connections at once, rather than leave
 * them in the accept queue until the shutdown timeout: every copy of our
 * own sockets closes (this one here, the workers' when they get
 * SIGTERM). systemd's stay open: systemd queues on them for the next
 * instance. A re-exec keeps them for the next image. */
void srv_master_listen_close(struct master *m)
{
	if (m->reexec || m->fds_passed)
		return;
	for (int i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
}
