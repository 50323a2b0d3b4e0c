/* bench/paced.c — an open-loop HTTP/1.1 load generator for the benchmark:
 * latency at a fixed offered rate, without coordinated omission.
 *
 * wrk (closed loop) sends the next request on a connection only when the
 * previous answer arrived, so a server stall also stalls the client and
 * the requests that "would have been sent" during the stall are never
 * timed. Here request k is *scheduled* at t0 + k/RATE whatever happens,
 * and its latency is measured from that scheduled time: a request that
 * had to wait for a free connection because the server stalled is timed
 * with that wait included.
 *
 * One thread, one epoll set, CONNS keep-alive connections, at most one
 * request in flight per connection (no pipelining). Due requests go out
 * in schedule order on whichever connection is idle. The loop sleeps
 * with epoll_pwait2() until the next scheduled send (nanosecond timeout:
 * millisecond sleeps would add up to 1 ms of our own lateness).
 *
 * Usage: paced -p PORT [-H HOST] [-c CONNS] [-r RATE] [-d SECONDS]
 *              [-m get|put|mix] [-k NKEYS] [-x KEY_PREFIX] [-s VALUE_SIZE]
 * Keys are /kv/KEY_PREFIX%012u, uniform over 0..NKEYS-1 (what bench/mkdb
 * preloads). Prints one line:
 *   PACED mode=.. rate=.. conns=.. requests=.. completed=.. achieved=..
 *         p50_us=.. p99_us=.. p999_us=.. max_us=.. errors=.. non2xx=..
 *         incomplete=..
 * Requests not answered within GRACE_S after the run are "incomplete" and
 * are counted in the percentiles with their latency so far (a lower
 * bound), so a server that falls behind cannot look fast. A request lost
 * to a connection error counts in errors, not in the percentiles.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE 65536
#define REQ_MAX 4096
#define GRACE_NS (5ull * 1000000000ull)
#define MAX_CONNS 1024
#define MAX_EVENTS 256

enum mode { MODE_GET, MODE_PUT, MODE_MIX };

struct conn {
	int fd;
	int busy;          /* a request is in flight */
	uint64_t sched;    /* its scheduled send time, ns */
	char req[REQ_MAX]; /* the request being written */
	size_t wlen, woff;
	char rbuf[RBUF_SIZE];
	size_t rlen;
	int have_hdr;      /* 1 while skipping the body of a response */
	uint64_t body_left;
	int status;
};

struct opts {
	const char *host;
	int port, conns;
	double rate, seconds;
	enum mode mode;
	uint32_t nkeys, vsize;
	const char *prefix;
};

struct run {
	struct opts o;
	struct sockaddr_in addr;
	struct conn *c;
	int ep;
	int *idle, nidle;    /* stack of idle connection indexes */
	uint64_t *lat, nlat; /* latencies, ns: answered + incomplete */
	uint64_t answered, errors, non2xx;
	uint64_t rng;
	char *value;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Connects connection i (blocking: loopback connects at once), then makes
 * it non-blocking and idle. */
static int conn_open(struct run *r, int i)
{
	struct conn *c = &r->c[i];
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&r->addr, sizeof(r->addr))) {
		perror("paced: connect");
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) ||
	    epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev)) {
		perror("paced: fcntl/epoll_ctl");
		return -1;
	}
	c->busy = c->have_hdr = 0;
	c->rlen = 0;
	r->idle[r->nidle++] = i;
	return 0;
}

/* A connection broke: its request (if any) is an error; reconnect. */
static int conn_fail(struct run *r, int i)
{
	struct conn *c = &r->c[i];

	if (c->busy)
		r->errors++;
	for (int k = 0; k < r->nidle; k++)
		if (r->idle[k] == i) /* conn_open pushes it again */
			r->idle[k--] = r->idle[--r->nidle];
	close(c->fd); /* also leaves the epoll set */
	return conn_open(r, i);
}

static void build_request(struct run *r, struct conn *c)
{
	uint32_t key = (uint32_t)(xorshift(&r->rng) % r->o.nkeys);
	int put = r->o.mode == MODE_PUT ||
		  (r->o.mode == MODE_MIX && (xorshift(&r->rng) & 1));
	int n;

	if (put) {
		n = snprintf(c->req, REQ_MAX,
			     "PUT /kv/%s%012" PRIu32 " HTTP/1.1\r\nHost: %s\r\n"
			     "Content-Length: %" PRIu32 "\r\n\r\n",
			     r->o.prefix, key, r->o.host, r->o.vsize);
		memcpy(c->req + n, r->value, r->o.vsize);
		n += (int)r->o.vsize;
	} else {
		n = snprintf(c->req, REQ_MAX, "GET /kv/%s%012" PRIu32 " HTTP/1.1\r\nHost: %s\r\n\r\n",
			     r->o.prefix, key, r->o.host);
	}
	c->wlen = (size_t)n;
	c->woff = 0;
}

/* Writes what is left of c's request; arms EPOLLOUT if the socket is full. */
static int conn_write(struct run *r, int i)
{
	struct conn *c = &r->c[i];
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

	while (c->woff < c->wlen) {
		ssize_t n = write(c->fd, c->req + c->woff, c->wlen - c->woff);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			ev.events |= EPOLLOUT;
			return epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev);
		}
		if (n <= 0)
			return -1;
		c->woff += (size_t)n;
	}
	return epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void send_next(struct run *r, uint64_t sched)
{
	int i = r->idle[--r->nidle];
	struct conn *c = &r->c[i];

	c->busy = 1;
	c->sched = sched;
	build_request(r, c);
	if (conn_write(r, i))
		conn_fail(r, i);
}

/* Parses the status line and Content-Length of the header in rbuf[0..len). */
static int parse_header(struct conn *c, size_t len)
{
	const char *p = c->rbuf, *end = c->rbuf + len;

	if (len < 12 || memcmp(p, "HTTP/1.", 7))
		return -1;
	c->status = atoi(p + 9);
	c->body_left = 0;
	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		p++;
		if (end - p > 15 && !strncasecmp(p, "content-length:", 15))
			c->body_left = strtoull(p + 15, NULL, 10);
		else if (end - p > 18 && !strncasecmp(p, "transfer-encoding:", 18))
			return -1; /* chunked responses are not expected here */
	}
	return 0;
}

static void drop(struct conn *c, size_t n)
{
	memmove(c->rbuf, c->rbuf + n, c->rlen - n);
	c->rlen -= n;
}

/* Consumes what arrived on connection i; at the end of a response, times
 * it and makes the connection idle. */
static int conn_read(struct run *r, int i, uint64_t *now)
{
	struct conn *c = &r->c[i];
	ssize_t n = read(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0 || !c->busy)
		return -1;
	c->rlen += (size_t)n;
	for (;;) {
		if (!c->have_hdr) {
			char *e = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
			if (!e)
				return c->rlen == RBUF_SIZE ? -1 : 0;
			if (parse_header(c, (size_t)(e - c->rbuf) + 4))
				return -1;
			drop(c, (size_t)(e - c->rbuf) + 4);
			c->have_hdr = 1;
		}
		size_t take = c->rlen < c->body_left ? c->rlen : (size_t)c->body_left;
		drop(c, take);
		c->body_left -= take;
		if (c->body_left)
			return 0;
		*now = now_ns();
		r->lat[r->nlat++] = *now - c->sched;
		r->answered++;
		if (c->status < 200 || c->status > 299)
			r->non2xx++;
		c->have_hdr = c->busy = 0;
		r->idle[r->nidle++] = i;
		return c->rlen ? -1 : 0; /* bytes nobody asked for: broken */
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, uint64_t n, double p)
{
	uint64_t k;

	if (!n)
		return 0;
	k = (uint64_t)(p / 100.0 * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	return (double)v[(k > n ? n : k) - 1] / 1e3;
}

static int usage(void)
{
	fprintf(stderr, "usage: paced -p PORT [-H HOST] [-c CONNS] [-r RATE] [-d SECONDS]\n"
			"             [-m get|put|mix] [-k NKEYS] [-x KEY_PREFIX] [-s VALUE_SIZE]\n");
	return 2;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	int opt;

	*o = (struct opts){ .host = "127.0.0.1", .conns = 64, .rate = 1000,
			    .seconds = 5, .nkeys = 100000, .vsize = 100,
			    .prefix = "key:" };
	while ((opt = getopt(argc, argv, "H:p:c:r:d:m:k:x:s:")) != -1) {
		switch (opt) {
		case 'H': o->host = optarg; break;
		case 'p': o->port = atoi(optarg); break;
		case 'c': o->conns = atoi(optarg); break;
		case 'r': o->rate = atof(optarg); break;
		case 'd': o->seconds = atof(optarg); break;
		case 'k': o->nkeys = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'x': o->prefix = optarg; break;
		case 's': o->vsize = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'm':
			o->mode = !strcmp(optarg, "put") ? MODE_PUT :
				  !strcmp(optarg, "mix") ? MODE_MIX : MODE_GET;
			break;
		default: return -1;
		}
	}
	if (o->port <= 0 || o->conns < 1 || o->conns > MAX_CONNS || o->rate <= 0 ||
	    o->seconds <= 0 || o->nkeys == 0 || o->vsize > REQ_MAX - 1024)
		return -1;
	return 0;
}

static int setup(struct run *r, uint64_t total)
{
	r->addr.sin_family = AF_INET;
	r->addr.sin_port = htons((uint16_t)r->o.port);
	if (inet_pton(AF_INET, r->o.host, &r->addr.sin_addr) != 1) {
		fprintf(stderr, "paced: -H takes an IPv4 address\n");
		return -1;
	}
	r->c = calloc((size_t)r->o.conns, sizeof(*r->c));
	r->idle = calloc((size_t)r->o.conns, sizeof(int));
	r->lat = calloc(total + 1, sizeof(uint64_t));
	r->value = malloc(r->o.vsize + 1);
	r->ep = epoll_create1(EPOLL_CLOEXEC);
	if (!r->c || !r->idle || !r->lat || !r->value || r->ep < 0)
		return -1;
	memset(r->value, 'v', r->o.vsize);
	r->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	for (int i = 0; i < r->o.conns; i++)
		if (conn_open(r, i))
			return -1;
	return 0;
}

/* The schedule: sends every due request on an idle connection, sleeps
 * until the next send time or an event, handles events. */
static uint64_t run_schedule(struct run *r, uint64_t total, uint64_t t0)
{
	double step = 1e9 / r->o.rate;
	uint64_t next = 0, now = now_ns(), end = t0 + (uint64_t)(r->o.seconds * 1e9);
	struct epoll_event ev[MAX_EVENTS];

	while (r->answered + r->errors < total && now < end + GRACE_NS) {
		uint64_t sched_next = t0 + (uint64_t)((double)next * step);
		struct timespec ts = { 0, 0 };
		int n;

		while (next < total && sched_next <= now && r->nidle) {
			send_next(r, sched_next);
			next++;
			sched_next = t0 + (uint64_t)((double)next * step);
		}
		/* Sleep until the next send time, or (backlog, or all sent)
		 * until an answer frees a connection. */
		uint64_t wake = (next < total && r->nidle) ? sched_next : end + GRACE_NS;
		if (wake > now) {
			ts.tv_sec = (time_t)((wake - now) / 1000000000ull);
			ts.tv_nsec = (long)((wake - now) % 1000000000ull);
		}
		n = epoll_pwait2(r->ep, ev, MAX_EVENTS, &ts, NULL);
		now = now_ns();
		for (int e = 0; e < n; e++) {
			int i = (int)ev[e].data.u32;
			int rc = 0;
			if (ev[e].events & EPOLLOUT)
				rc = conn_write(r, i);
			if (!rc && (ev[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				rc = conn_read(r, i, &now);
			if (rc && conn_fail(r, i))
				return next;
		}
	}
	return next;
}

int main(int argc, char **argv)
{
	struct run r = { 0 };
	uint64_t total, sent, t0, incomplete = 0;

	if (parse_opts(argc, argv, &r.o))
		return usage();
	total = (uint64_t)(r.o.rate * r.o.seconds);
	if (total == 0 || setup(&r, total))
		return 1;
	t0 = now_ns() + 10000000ull; /* 10 ms from now */
	sent = run_schedule(&r, total, t0);

	/* Whatever was due but never answered still counts, with its
	 * latency so far. */
	uint64_t now = now_ns();
	double step = 1e9 / r.o.rate;
	for (int i = 0; i < r.o.conns; i++)
		if (r.c[i].busy) {
			r.lat[r.nlat++] = now - r.c[i].sched;
			incomplete++;
		}
	for (uint64_t k = sent; k < total; k++) {
		uint64_t s = t0 + (uint64_t)((double)k * step);
		r.lat[r.nlat++] = now > s ? now - s : 0;
		incomplete++;
	}
	qsort(r.lat, r.nlat, sizeof(uint64_t), cmp_u64);
	printf("PACED mode=%s rate=%.0f conns=%d requests=%" PRIu64 " completed=%" PRIu64
	       " achieved=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f"
	       " errors=%" PRIu64 " non2xx=%" PRIu64 " incomplete=%" PRIu64 "\n",
	       r.o.mode == MODE_GET ? "get" : r.o.mode == MODE_PUT ? "put" : "mix",
	       r.o.rate, r.o.conns, total, r.answered,
	       (double)r.answered / r.o.seconds, pct_us(r.lat, r.nlat, 50),
	       pct_us(r.lat, r.nlat, 99), pct_us(r.lat, r.nlat, 99.9),
	       r.nlat ? (double)r.lat[r.nlat - 1] / 1e3 : 0.0, r.errors, r.non2xx,
	       incomplete);
	return 0;
}
