/* bench/failover.c — the write outage clients see when a group's primary
 * fails: PUTs in a loop through one URL (HAProxy), each with a deadline;
 * prints one line per outage (a run of failed writes between two that
 * succeeded), so a driver can kill or pause the primary and read how
 * long writes were refused.
 *
 *   failover HOST PORT SECONDS
 * Output: "OUTAGE start_ms=S ms=D failed=N" per gap longer than 200 ms,
 * then "FAILOVER writes=N ok=K".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int dial(const char *host, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 1, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, host, &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One PUT on fd: its status, or -1 (fd is then closed). */
static int put(int *fd, const char *host, int port, unsigned long n)
{
	char req[256], resp[4096];
	size_t have = 0;
	int len, status = -1;

	if (*fd < 0 && (*fd = dial(host, port)) < 0)
		return -1;
	len = snprintf(req, sizeof(req), "PUT /kv/failover-%lu HTTP/1.1\r\nHost: %s\r\n"
		       "Content-Length: 8\r\n\r\n%08lu", n % 64, host, n % 100000000);
	if (send(*fd, req, (size_t)len, MSG_NOSIGNAL) != len)
		goto fail;
	for (;;) {
		ssize_t r = recv(*fd, resp + have, sizeof(resp) - 1 - have, 0);
		char *end, *cl;
		if (r <= 0)
			goto fail;
		have += (size_t)r;
		resp[have] = 0;
		if (!(end = strstr(resp, "\r\n\r\n")))
			continue;
		if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
			goto fail;
		cl = strcasestr(resp, "Content-Length:");
		if (cl && (size_t)(end + 4 - resp) + strtoul(cl + 15, NULL, 10) > have)
			continue; /* the body is still coming */
		if (strcasestr(resp, "Connection: close")) {
			close(*fd);
			*fd = -1;
		}
		return status;
	}
fail:
	close(*fd);
	*fd = -1;
	return -1;
}

int main(int argc, char **argv)
{
	uint64_t t0, end, last_ok, gap_start = 0;
	unsigned long n = 0, ok = 0, failed = 0;
	int fd = -1, port;

	if (argc != 4) {
		fprintf(stderr, "usage: failover HOST PORT SECONDS\n");
		return 2;
	}
	port = atoi(argv[2]);
	t0 = now_ms();
	end = t0 + (uint64_t)atoi(argv[3]) * 1000;
	last_ok = t0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (now_ms() < end) {
		int st = put(&fd, argv[1], port, n++);
		uint64_t t = now_ms();

		if (st == 201 || st == 204) {
			if (failed && t - last_ok > 200)
				printf("OUTAGE start_ms=%llu ms=%llu failed=%lu\n",
				       (unsigned long long)(gap_start - t0),
				       (unsigned long long)(t - last_ok), failed);
			last_ok = t;
			failed = 0;
			ok++;
		} else {
			if (!failed)
				gap_start = t;
			failed++;
			usleep(20000); /* a client's retry pace */
		}
	}
	printf("FAILOVER writes=%lu ok=%lu\n", n, ok);
	return 0;
}
