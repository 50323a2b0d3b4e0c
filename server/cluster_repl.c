/* server/cluster_repl.c — the replicator thread: a replica's copy of the
 * primary's log (see cluster.h, docs/cluster.md).
 *
 * Map: a blocking HTTP/1.0 client - reading frames - applying changes -
 * acks - a full copy - the thread's loop.
 *
 * It follows GET /cluster/stream from the version it holds durably: each
 * change arrives as the record the primary's log holds, with the version
 * the stream sent before it. A record whose checksum fails, or whose
 * "before" is not the last one applied (a gap), ends the stream, and
 * the next one starts again from the newest version our log holds: it asks again,
 * it never applies a doubtful record. Changes are written with the
 * primary's versions (eng_write / eng_batch_at with the version given),
 * a batch all at once; then one sync covers all that arrived meanwhile
 * (group commit), and POST /cluster/ack tells the primary what is
 * durable here. A primary that compacted past us (410), or a log that
 * holds writes the group never acknowledged (409 diverged), gets a full
 * copy: GET /cluster/snapshot into database.copy, installed by the
 * master at a restart (cluster.h).
 *
 * Changes are applied, and acks sent, under follow_mtx, and only while
 * no newer term was fenced (cluster_proc.h). Blocking calls are fine
 * here: this thread serves no client.
 */
#include "server/cluster.h"

#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/failpoint.h"
#include "engine/io.h"
#include "engine/record.h"
#include "engine/store.h"
#include "server/clock.h"
#include "server/cluster_http.h"
#include "server/cluster_proc.h"
#include "server/cluster_repl.h"
#include "server/config.h"
#include "server/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define IO_TIMEOUT_MS 3000   /* the stream sends at least a heartbeat a second */
#define HEAD_MAX 8192
#define BUF_START (1u << 20)
#define BUF_MAX ((size_t)SRV_CL_FRAME_MAX * 2)

enum { FOLLOW_AGAIN = 1, FOLLOW_COPY = 2 };

/* --- a blocking HTTP/1.0 client ------------------------------------------------- */

static int dial(const char *url, char *hostport, size_t n)
{
	char host[128], port[16];
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct timeval tv = { IO_TIMEOUT_MS / 1000, (IO_TIMEOUT_MS % 1000) * 1000 };
	int p, fd = -1, one = 1;

	if (srv_cl_url_split(url, host, sizeof(host), &p))
		return -EINVAL;
	snprintf(port, sizeof(port), "%d", p);
	snprintf(hostport, n, "%s:%d", host, p);
	if (getaddrinfo(host, port, &hints, &res))
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		int err = 0;
		socklen_t el = sizeof(err);

		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS)
			goto next;
		pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
		if (poll(&pfd, 1, IO_TIMEOUT_MS) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err)
			goto next;
		if (fcntl(fd, F_SETFL, 0) || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
		    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
			goto next;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		break;
next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd < 0 ? -ECONNREFUSED : fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

struct head {
	int status;
	uint64_t length;     /* Content-Length, or UINT64_MAX */
	char history[1200];
	size_t used;         /* bytes of buf the head took */
};

static const char *find_header(const char *h, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = strstr(h, "\r\n"); l; l = strstr(l + 2, "\r\n"))
		if (!strncasecmp(l + 2, name, n) && l[2 + n] == ':') {
			l += 3 + n;
			while (*l == ' ')
				l++;
			return l;
		}
	return NULL;
}

/* Reads a response head into buf (cap bytes; *have already there). */
static int read_head(int fd, char *buf, size_t cap, size_t *have, struct head *h)
{
	char *end;
	const char *v;

	memset(h, 0, sizeof(*h));
	for (;;) {
		ssize_t r;

		if (*have && (end = memmem(buf, *have, "\r\n\r\n", 4)))
			break;
		if (*have >= HEAD_MAX || *have >= cap)
			return -EPROTO;
		r = recv(fd, buf + *have, cap - *have, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EIO;
		*have += (size_t)r;
	}
	h->used = (size_t)(end - buf) + 4;
	*end = 0;
	if (sscanf(buf, "HTTP/1.%*d %d", &h->status) != 1)
		return -EPROTO;
	h->length = UINT64_MAX;
	if ((v = find_header(buf, "Content-Length")))
		h->length = strtoull(v, NULL, 10);
	if ((v = find_header(buf, "X-Caskd-History"))) {
		size_t n = strcspn(v, "\r");
		if (n < sizeof(h->history)) {
			memcpy(h->history, v, n);
			h->history[n] = 0;
		}
	}
	/* a body may contain "diverged" etc.: keep it readable */
	end[0] = '\r';
	return 0;
}

/* --- following the stream --------------------------------------------------------- */

struct follow {
	struct srv_cl_proc *p;
	struct srv_cl_shm *cl;
	struct eng_db *db;
	char url[SRV_CL_URL_MAX];
	char hostport[160];
	uint64_t term;
	uint64_t last;        /* the last version applied from the stream */
	int fd, ackfd;
	char *buf;
	size_t have, cap;
	struct eng_batch_op *ops;
	size_t nops;
};

/* Sends what is durable here; on its own connection, kept open. */
static int send_ack(struct follow *f, uint64_t version)
{
	char req[512], resp[1024];
	size_t have = 0;
	struct head h;
	int n;

	n = snprintf(req, sizeof(req), "POST /cluster/ack?node=%s&term=%" PRIu64 "&version=%" PRIu64
		     " HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n\r\n", f->p->cfg->node,
		     f->term, version, f->hostport);
	for (int tries = 0; tries < 2; tries++) {
		if (f->ackfd < 0 && (f->ackfd = dial(f->url, f->hostport, sizeof(f->hostport))) < 0)
			return f->ackfd = -1, -EIO;
		if (send_all(f->ackfd, req, (size_t)n) == 0 &&
		    read_head(f->ackfd, resp, sizeof(resp), &have, &h) == 0) {
			/* 204 carries no body; anything else ends the stream */
			if (h.status == 204)
				return 0;
			return -EPROTO;
		}
		close(f->ackfd);
		f->ackfd = -1;
		have = 0;
	}
	return -EIO;
}

static int wait_sync(struct eng_db *db)
{
	return eng_sync_wait(db, eng_sync_ticket(db));
}

/* Writes one change (a record, checked) with its version. */
static int apply_one(struct follow *f, const struct eng_rec_hdr *h, const char *rec)
{
	struct eng_op op = {
		.kind = h->type == ENG_REC_DEL ? ENG_OP_DEL : ENG_OP_PUT,
		.key = rec + ENG_REC_HDR_SIZE, .klen = h->klen,
		.val = rec + ENG_REC_HDR_SIZE + h->klen, .vlen = h->vlen,
		.version_at = h->version,
	};
	struct eng_result res;
	int rc;

	for (int tries = 0;; tries++) {
		rc = eng_write(f->db, &op, &res);
		if (rc == -ENOENT)
			return 0; /* a delete of what is not here: nothing to do */
		if (rc != -EAGAIN || tries > 5000)
			return rc;
		if (res.want_sync && (rc = wait_sync(f->db)))
			return rc;
		usleep(1000);
	}
}

/* A new term's mark, copied with its version. */
static int apply_mark(struct follow *f, uint64_t version)
{
	uint64_t v;
	int want, rc;

	for (int tries = 0;; tries++) {
		rc = eng_term_mark(f->db, version, &v, &want);
		if (rc != -EAGAIN || tries > 5000)
			return rc;
		if (want && (rc = wait_sync(f->db)))
			return rc;
		usleep(1000);
	}
}

static int apply_batch(struct follow *f, uint64_t version)
{
	struct eng_batch_result res;
	int rc;

	for (int tries = 0;; tries++) {
		rc = eng_batch_at(f->db, f->ops, f->nops, version, &res);
		if (rc != -EAGAIN || tries > 5000)
			break;
		if (res.want_sync && (rc = wait_sync(f->db)))
			break;
		usleep(1000);
	}
	f->nops = 0;
	return rc;
}

/* The changes complete in the buffer, applied; the rest kept. 0, or
 * FOLLOW_AGAIN (a gap or a bad record: ask again), -errno. *applied:
 * whether anything was written, *beat: a heartbeat came. */
static int apply_frames(struct follow *f, int *applied, int *beat)
{
	size_t at = 0, unit_start = 0;
	uint64_t unit_last = f->last, batch_version = 0;
	int rc = 0;

	pthread_mutex_lock(&f->p->follow_mtx);
	if ((atomic_load(&f->cl->max_term) != f->term ||
	     atomic_load(&f->cl->role) == SRV_CL_PRIMARY) && !ENG_FP("cluster.no_fence")) {
		pthread_mutex_unlock(&f->p->follow_mtx);
		return FOLLOW_AGAIN; /* a newer term was fenced: this stream is done */
	}
	f->nops = 0;
	while (f->have - at >= SRV_CL_FRAME_HDR) {
		const char *fr = f->buf + at;
		uint32_t len;
		uint64_t a, b;
		struct eng_rec_hdr h;

		memcpy(&len, fr + 4, 4);
		memcpy(&a, fr + 8, 8);
		memcpy(&b, fr + 16, 8);
		if (len > SRV_CL_FRAME_MAX || (fr[0] != 'C' && fr[0] != 'H')) {
			srv_warn("cluster: a bad frame from %s; asking again", f->url);
			rc = FOLLOW_AGAIN;
			break;
		}
		if (f->have - at < SRV_CL_FRAME_HDR + (size_t)len)
			break; /* the rest of it has not come yet */
		at += SRV_CL_FRAME_HDR + len;
		if (fr[0] == 'H') {
			atomic_store(&f->cl->primary_top, b);
			atomic_store(&f->cl->primary_heard_ms, srv_mono_ms());
			*beat = 1;
			if (!f->nops)
				unit_start = at;
			continue;
		}
		fr += SRV_CL_FRAME_HDR;
		if (eng_rec_check_hdr(fr, len, &h) || eng_rec_total(&h) != len ||
		    (h.type == ENG_REC_PAD ? !(h.flags & ENG_REC_F_TERM) :
		     eng_rec_check_data(fr, &h) != 0) || a != unit_last) {
			srv_warn("cluster: %s from %s at version %" PRIu64 "; asking again",
				 a != unit_last ? "a gap in the stream" : "a record that fails "
				 "its checksum", f->url, unit_last);
			rc = FOLLOW_AGAIN;
			break;
		}
		unit_last = h.version;
		if (h.type == ENG_REC_PAD) {
			if (f->nops) {
				rc = FOLLOW_AGAIN;
				break;
			}
			rc = apply_mark(f, h.version);
		} else if (h.flags & ENG_REC_F_BATCH) {
			struct eng_batch_op *op;
			if (!!(h.flags & ENG_REC_F_FIRST) != !f->nops ||
			    (f->nops && h.version != batch_version) || f->nops >= ENG_BATCH_MAX) {
				srv_warn("cluster: a batch out of sequence from %s at version %"
					 PRIu64 "; asking again", f->url, h.version);
				rc = FOLLOW_AGAIN;
				break;
			}
			batch_version = h.version;
			op = &f->ops[f->nops++];
			*op = (struct eng_batch_op){
				.kind = h.type == ENG_REC_DEL ? ENG_BATCH_DEL : ENG_BATCH_PUT,
				.key = fr + ENG_REC_HDR_SIZE, .klen = h.klen,
				.val = fr + ENG_REC_HDR_SIZE + h.klen, .vlen = h.vlen,
			};
			if (h.batch_left)
				continue; /* the batch goes in whole, with its last part */
			rc = apply_batch(f, h.version);
		} else {
			if (f->nops) {
				srv_warn("cluster: a batch cut short from %s at version %" PRIu64
					 "; asking again", f->url, h.version);
				rc = FOLLOW_AGAIN;
				break;
			}
			rc = apply_one(f, &h, fr);
		}
		if (rc)
			break;
		*applied = 1;
		f->last = unit_last;
		unit_start = at;
		atomic_fetch_add(&f->cl->repl_bytes, len + SRV_CL_FRAME_HDR);
	}
	pthread_mutex_unlock(&f->p->follow_mtx);
	/* what is not applied stays, from the start of its unit */
	memmove(f->buf, f->buf + unit_start, f->have - unit_start);
	f->have -= unit_start;
	f->nops = 0;
	return rc;
}

static int grow_buf(struct follow *f)
{
	size_t n = f->cap * 2;
	char *p;

	if (f->have < f->cap)
		return 0;
	if (n > BUF_MAX || !(p = realloc(f->buf, n)))
		return -ENOMEM;
	f->buf = p;
	f->cap = n;
	return 0;
}

/* Why we do not acknowledge: said once per change, not per retry. */
static int set_error(struct srv_cl_shm *cl, uint32_t e)
{
	uint32_t was = atomic_exchange(&cl->repl_error, e);

	if (was != e && e != SRV_CL_REPL_OK && e != SRV_CL_REPL_DISK_FULL &&
	    e != SRV_CL_REPL_IO)
		srv_info("cluster: not replicating: %s", srv_cl_repl_error_name(e));
	return was != e;
}

static int follow(struct follow *f)
{
	char req[512];
	struct head h;
	struct srv_cl_history hist;
	/* from what our log holds, durable or not: a record here that the
	 * primary does not have must show as a divergence, not be kept */
	uint64_t from = eng_top_version(f->db);
	int n, rc;

	f->last = from;
	f->have = 0;
	if ((f->fd = dial(f->url, f->hostport, sizeof(f->hostport))) < 0) {
		set_error(f->cl, SRV_CL_REPL_UNREACHABLE);
		return FOLLOW_AGAIN;
	}
	n = snprintf(req, sizeof(req), "GET /cluster/stream?node=%s&term=%" PRIu64 "&after=%"
		     PRIu64 " HTTP/1.0\r\nHost: %s\r\n\r\n", f->p->cfg->node, f->term, from,
		     f->hostport);
	if (send_all(f->fd, req, (size_t)n) || read_head(f->fd, f->buf, f->cap, &f->have, &h)) {
		set_error(f->cl, SRV_CL_REPL_UNREACHABLE);
		return FOLLOW_AGAIN;
	}
	if (h.status == 410 || (h.status == 409 && memmem(f->buf, f->have, "diverged", 8))) {
		srv_info("cluster: %s: this member needs a full copy from %s",
			 h.status == 410 ? "the primary compacted past our version" :
			 "our log holds writes the group never acknowledged", f->url);
		set_error(f->cl, SRV_CL_REPL_DIVERGED);
		return FOLLOW_COPY;
	}
	if (h.status != 200) {
		set_error(f->cl, SRV_CL_REPL_NO_PRIMARY);
		return FOLLOW_AGAIN;
	}
	/* the primary's history is ours from now on: we hold its log */
	if (srv_cl_history_parse(h.history, &hist) == 0) {
		pthread_mutex_lock(&f->p->state_mtx);
		rc = memcmp(&hist, &f->p->st.hist, sizeof(hist));
		pthread_mutex_unlock(&f->p->state_mtx);
		if (rc && (rc = srv_cl_proc_save(f->p, 0, &hist))) {
			srv_error("cluster: saving the term history: %s", strerror(-rc));
			return FOLLOW_AGAIN;
		}
	}
	memmove(f->buf, f->buf + h.used, f->have - h.used);
	f->have -= h.used;
	/* a full disk or a failed write stays the reason until a change
	 * applies again, not only until the stream is back: monitoring
	 * must not see "ok" between two retries that fail alike */
	{
		uint32_t e = atomic_load(&f->cl->repl_error);
		if (e != SRV_CL_REPL_DISK_FULL && e != SRV_CL_REPL_IO &&
		    set_error(f->cl, SRV_CL_REPL_OK))
			srv_info("cluster: replicating from %s", f->url);
	}
	/* what is durable here counts at once, before any change arrives */
	pthread_mutex_lock(&f->p->follow_mtx);
	rc = atomic_load(&f->cl->max_term) == f->term ? send_ack(f, atomic_load(&f->cl->applied)) :
	     -ESTALE;
	pthread_mutex_unlock(&f->p->follow_mtx);
	if (rc)
		return FOLLOW_AGAIN;
	while (!atomic_load(&f->p->stop)) {
		int applied = 0, beat = 0;
		ssize_t r;

		rc = apply_frames(f, &applied, &beat);
		if (rc == -ENOSPC || rc == -EDQUOT) {
			if (set_error(f->cl, SRV_CL_REPL_DISK_FULL))
				srv_warn("cluster: disk full: not acknowledging the primary's "
					 "writes until there is room");
			return FOLLOW_AGAIN;
		}
		if (rc < 0) {
			if (set_error(f->cl, SRV_CL_REPL_IO))
				srv_error("cluster: applying the primary's changes: %s",
					  eng_strerror(rc));
			if (rc == ENG_EPOISONED)
				atomic_store(&f->p->stop, 1); /* the master restarts us all */
			return FOLLOW_AGAIN;
		}
		if (rc)
			return rc;
		if (applied) {
			if ((rc = wait_sync(f->db))) {
				set_error(f->cl, SRV_CL_REPL_IO);
				return FOLLOW_AGAIN;
			}
			atomic_store(&f->cl->applied, f->last);
		}
		if (applied && set_error(f->cl, SRV_CL_REPL_OK))
			srv_info("cluster: replicating from %s again", f->url);
		if (applied || beat) {
			uint64_t top = atomic_load(&f->cl->primary_top);
			if (f->last >= top)
				atomic_store(&f->cl->caught_up_ms, srv_mono_ms());
			pthread_mutex_lock(&f->p->follow_mtx);
			rc = atomic_load(&f->cl->max_term) == f->term || ENG_FP("cluster.no_fence") ?
			     send_ack(f, atomic_load(&f->cl->applied)) : -ESTALE;
			pthread_mutex_unlock(&f->p->follow_mtx);
			if (rc) {
				set_error(f->cl, SRV_CL_REPL_NO_PRIMARY);
				return FOLLOW_AGAIN;
			}
		}
		if (grow_buf(f)) {
			srv_error("cluster: a change larger than the stream buffer");
			return FOLLOW_AGAIN;
		}
		r = recv(f->fd, f->buf + f->have, f->cap - f->have, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			set_error(f->cl, SRV_CL_REPL_UNREACHABLE);
			return FOLLOW_AGAIN;
		}
		f->have += (size_t)r;
	}
	return 0;
}

/* --- a full copy ------------------------------------------------------------------- */

static int fetch_copy(struct follow *f)
{
	char req[512], path[PATH_MAX], done[PATH_MAX];
	struct head h;
	struct srv_cl_history hist;
	uint64_t got = 0;
	int out = -1, rc = -EIO, n;
	const char *dir = f->p->cfg->data_dir;

	if (snprintf(path, sizeof(path), "%s/%s", dir, SRV_CLUSTER_COPY_FILE) >= (int)sizeof(path) ||
	    snprintf(done, sizeof(done), "%s/%s", dir, SRV_CLUSTER_COPY_DONE) >= (int)sizeof(done))
		return -ENAMETOOLONG;
	f->have = 0;
	if ((f->fd = dial(f->url, f->hostport, sizeof(f->hostport))) < 0)
		return -EIO;
	n = snprintf(req, sizeof(req), "GET /cluster/snapshot HTTP/1.0\r\nHost: %s\r\n\r\n",
		     f->hostport);
	if (send_all(f->fd, req, (size_t)n) || read_head(f->fd, f->buf, f->cap, &f->have, &h) ||
	    h.status != 200 || h.length == UINT64_MAX ||
	    srv_cl_history_parse(h.history, &hist))
		goto out;
	if ((out = eng_io_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		rc = out;
		goto out;
	}
	srv_info("cluster: copying %" PRIu64 " bytes from %s", h.length, f->url);
	if (f->have > h.used) {
		size_t k = f->have - h.used;
		if (k > h.length)
			goto out;
		if ((rc = eng_io_pwrite_all(out, f->buf + h.used, k, 0)))
			goto out;
		got = k;
	}
	while (got < h.length) {
		ssize_t r = recv(f->fd, f->buf, f->cap, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || got + (uint64_t)r > h.length) {
			rc = -EIO;
			goto out;
		}
		if ((rc = eng_io_pwrite_all(out, f->buf, (size_t)r, got)))
			goto out;
		got += (uint64_t)r;
		atomic_fetch_add(&f->cl->repl_bytes, (uint64_t)r);
	}
	if ((rc = eng_io_fsync(out)))
		goto out;
	close(out);
	out = -1;
	/* the copy's history before the mark that makes it count: a crash
	 * between leaves an extra full copy to make, never a wrong one */
	if ((rc = srv_cl_proc_save(f->p, 0, &hist)))
		goto out;
	if ((out = eng_io_open(done, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 ||
	    (rc = eng_io_fsync(out)) || (rc = eng_io_syncdir(dir)))
		goto out;
	srv_info("cluster: full copy of %" PRIu64 " bytes fetched; restarting to install it", got);
	rc = 0;
out:
	if (out >= 0)
		close(out);
	close(f->fd);
	f->fd = -1;
	if (rc)
		srv_warn("cluster: the full copy from %s failed (%s); trying again", f->url,
			 strerror(rc < 0 ? -rc : EIO));
	return rc;
}

/* --- the thread --------------------------------------------------------------------- */

void *srv_cl_repl_main(void *arg)
{
	struct srv_cl_proc *p = arg;
	struct follow f = { .p = p, .cl = p->cl, .db = p->db, .fd = -1, .ackfd = -1 };

	if (!(f.buf = malloc(BUF_START)) ||
	    !(f.ops = calloc(ENG_BATCH_MAX, sizeof(*f.ops)))) {
		srv_error("cluster: no memory for the replicator");
		atomic_store(&p->stop, 1);
		free(f.buf);
		return NULL;
	}
	f.cap = BUF_START;
	while (!atomic_load(&p->stop)) {
		struct srv_cl_view v;
		uint32_t role = atomic_load(&p->cl->role);
		int rc;

		srv_cl_read_text(p->cl, &v);
		f.term = atomic_load(&p->cl->term);
		if (role == SRV_CL_PRIMARY || role == SRV_CL_CANDIDATE || !v.primary_url[0] ||
		    f.term < atomic_load(&p->cl->max_term) ||
		    (v.self >= 0 && !strcmp(v.primary_url, v.url[v.self]))) {
			usleep(50 * 1000);
			continue;
		}
		snprintf(f.url, sizeof(f.url), "%s", v.primary_url);
		if (strcmp(f.hostport, "") && f.ackfd >= 0) {
			close(f.ackfd); /* a new primary, or the same again: anew */
			f.ackfd = -1;
		}
		rc = follow(&f);
		if (f.fd >= 0)
			close(f.fd);
		f.fd = -1;
		if (rc == FOLLOW_COPY) {
			atomic_store(&p->cl->role, SRV_CL_CATCHING_UP);
			if (fetch_copy(&f) == 0) {
				atomic_store(&p->exit_code, SRV_CLUSTER_EXIT_COPY);
				atomic_store(&p->stop, 1);
				break;
			}
		}
		/* a full disk is not mended in 100 ms: retry each second */
		{
			uint32_t e = atomic_load(&p->cl->repl_error);
			usleep(e == SRV_CL_REPL_DISK_FULL || e == SRV_CL_REPL_IO ? 1000 * 1000 :
			       100 * 1000);
		}
	}
	if (f.ackfd >= 0)
		close(f.ackfd);
	free(f.buf);
	free(f.ops);
	return NULL;
}
