/* bench/watchbench.c — GET /watch figures for bench/run.sh (issue 20).
 *
 *   watchbench idle PORT N PID SECONDS
 *       opens N watches, then reports the resident memory they added to
 *       process PID (the worker serving them) per watch, and the CPU PID
 *       used over SECONDS while they sat idle;
 *   watchbench follow PORT SECONDS
 *       one watcher counting change lines for SECONDS (writes run beside
 *       it), then its events per second;
 *   watchbench latency PORT COUNT
 *       COUNT times: PUT a 100-byte value, then wait for its line on a
 *       watch; the delay from the PUT's answer to the line (p50, p99,
 *       p99.9, max).
 * One line of results on stdout, starting WATCH. Talks to 127.0.0.1 only.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_BYTES (1 << 16)

static void die(const char *what)
{
	fprintf(stderr, "watchbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(0x7f000001) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect");
	return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write");
		s += w;
		n -= (size_t)w;
	}
}

/* Reads until the response head is in; 0 if it is a 200. */
static int read_head(int fd, char *buf, size_t *len)
{
	*len = 0;
	for (;;) {
		ssize_t r = read(fd, buf + *len, BUF_BYTES - 1 - *len);
		char *end;
		if (r <= 0)
			die("read head");
		*len += (size_t)r;
		buf[*len] = '\0';
		if ((end = strstr(buf, "\r\n\r\n"))) {
			size_t head = (size_t)(end + 4 - buf);
			int ok = !strncmp(buf + 9, "200", 3);
			memmove(buf, buf + head, *len - head);
			*len -= head;
			return ok ? 0 : -1;
		}
	}
}

static int open_watch(int port, const char *query, char *buf, size_t *len)
{
	char req[256];
	int fd = dial(port), n;

	n = snprintf(req, sizeof(req), "GET /watch%s HTTP/1.1\r\nHost: b\r\n\r\n", query);
	send_all(fd, req, (size_t)n);
	if (read_head(fd, buf, len))
		die("watch refused");
	return fd;
}

static long rss_kb(long pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if (!(f = fopen(path, "r")))
		die("open /proc/PID/status");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static double cpu_s(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (!(f = fopen(path, "r")) || !fgets(buf, sizeof(buf), f))
		die("read /proc/PID/stat");
	fclose(f);
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		die("parse /proc/PID/stat");
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int idle(int port, int n, long pid, int seconds)
{
	struct rlimit rl;
	char *buf = malloc(BUF_BYTES);
	long before, after;
	double c0, c1;
	size_t len;
	int *fds = calloc((size_t)n, sizeof(int));

	if (!buf || !fds)
		die("malloc");
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			die("setrlimit");
	}
	sleep(1);
	before = rss_kb(pid);
	for (int i = 0; i < n; i++)
		fds[i] = open_watch(port, "?prefix=idle/", buf, &len);
	sleep(1);
	after = rss_kb(pid);
	c0 = cpu_s(pid);
	sleep((unsigned)seconds);
	c1 = cpu_s(pid);
	printf("WATCH mode=idle watches=%d rss_before_kb=%ld rss_after_kb=%ld bytes_per_watch=%.0f "
	       "cpu_pct=%.2f\n", n, before, after, (double)(after - before) * 1024 / n,
	       100 * (c1 - c0) / seconds);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return 0;
}

static int follow(int port, int seconds)
{
	char *buf = malloc(BUF_BYTES);
	size_t len;
	long events = 0;
	double t0, end;
	int fd;

	if (!buf)
		die("malloc");
	fd = open_watch(port, "", buf, &len);
	t0 = now_s();
	end = t0 + seconds;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		double left = end - now_s();
		ssize_t r;

		for (size_t i = 0; i < len; i++)
			events += buf[i] == '\n'; /* a line a change (progress: rare) */
		len = 0;
		if (left <= 0)
			break;
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		r = read(fd, buf, BUF_BYTES);
		if (r <= 0)
			break;
		len = (size_t)r;
	}
	printf("WATCH mode=follow events=%ld seconds=%.2f events_per_s=%.0f\n", events,
	       now_s() - t0, events / (now_s() - t0));
	close(fd);
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The version in the PUT's ETag. */
static uint64_t put_one(int fd, int i, char *buf)
{
	char req[512], val[101];
	size_t got = 0;
	char *etag;
	int n;

	memset(val, 'v', 100);
	val[100] = '\0';
	n = snprintf(req, sizeof(req), "PUT /kv/lat/%d HTTP/1.1\r\nHost: b\r\n"
		     "Content-Length: 100\r\n\r\n%s", i % 100, val);
	send_all(fd, req, (size_t)n);
	for (;;) {
		ssize_t r = read(fd, buf + got, BUF_BYTES - 1 - got);
		if (r <= 0)
			die("read PUT response");
		got += (size_t)r;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	if (!(etag = strstr(buf, "ETag: \"")))
		die("PUT without ETag");
	return strtoull(etag + 7, NULL, 10);
}

static int latency(int port, int count)
{
	char *buf = malloc(BUF_BYTES), *wbuf = malloc(BUF_BYTES);
	double *d = calloc((size_t)count, sizeof(double));
	size_t wlen;
	int wfd, pfd;

	if (!buf || !wbuf || !d)
		die("malloc");
	wfd = open_watch(port, "?prefix=lat/", wbuf, &wlen);
	pfd = dial(port);
	for (int i = 0; i < count; i++) {
		uint64_t v = put_one(pfd, i, buf);
		double t0 = now_s();
		char want[48];
		int wl = snprintf(want, sizeof(want), "{\"version\":%" PRIu64 ",", v);

		for (;;) {
			char *hit;
			wbuf[wlen] = '\0';
			if ((hit = memmem(wbuf, wlen, want, (size_t)wl))) {
				size_t keep = wlen - (size_t)(hit + wl - wbuf);
				memmove(wbuf, hit + wl, keep);
				wlen = keep;
				break;
			}
			if (wlen > BUF_BYTES / 2) { /* keep the tail only */
				memmove(wbuf, wbuf + wlen - 256, 256);
				wlen = 256;
			}
			ssize_t r = read(wfd, wbuf + wlen, BUF_BYTES - 1 - wlen);
			if (r <= 0)
				die("read watch");
			wlen += (size_t)r;
		}
		d[i] = (now_s() - t0) * 1e3;
	}
	qsort(d, (size_t)count, sizeof(double), cmp_d);
	printf("WATCH mode=latency n=%d p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n", count,
	       d[count / 2], d[count * 99 / 100], d[count * 999 / 1000], d[count - 1]);
	close(wfd);
	close(pfd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "idle"))
		return idle(atoi(argv[2]), atoi(argv[3]), atol(argv[4]), atoi(argv[5]));
	if (argc == 4 && !strcmp(argv[1], "follow"))
		return follow(atoi(argv[2]), atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "latency"))
		return latency(atoi(argv[2]), atoi(argv[3]));
	fprintf(stderr, "usage: watchbench idle PORT N PID SECONDS | follow PORT SECONDS | "
		"latency PORT COUNT\n");
	return 2;
}
