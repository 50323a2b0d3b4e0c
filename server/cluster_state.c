/* server/cluster_state.c — the shared record of a member's view of its
 * group, the term history's rules, and dir/cluster.state (see
 * cluster_state.h for who writes what).
 *
 * Map: names - text fields under seq - acks and the majority - history -
 * the durable file.
 */
#include "server/cluster_state.h"

#include "engine/crc32c.h"
#include "engine/io.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc/wake.h"

const char *srv_cl_role_name(uint32_t role)
{
	switch (role) {
	case SRV_CL_PRIMARY: return "primary";
	case SRV_CL_REPLICA: return "replica";
	case SRV_CL_CATCHING_UP: return "catching_up";
	default: return "candidate";
	}
}

const char *srv_cl_repl_error_name(uint32_t e)
{
	switch (e) {
	case SRV_CL_REPL_OK: return "ok";
	case SRV_CL_REPL_NO_PRIMARY: return "no_primary";
	case SRV_CL_REPL_UNREACHABLE: return "primary_unreachable";
	case SRV_CL_REPL_DISK_FULL: return "disk_full";
	case SRV_CL_REPL_IO: return "io_error";
	case SRV_CL_REPL_DIVERGED: return "diverged";
	default: return "unknown";
	}
}

/* --- text fields under seq ---------------------------------------------- */

void srv_cl_write_begin(struct srv_cl_shm *c)
{
	atomic_fetch_add_explicit(&c->seq, 1, memory_order_acq_rel);
	atomic_thread_fence(memory_order_release);
}

void srv_cl_write_end(struct srv_cl_shm *c)
{
	atomic_thread_fence(memory_order_release);
	atomic_fetch_add_explicit(&c->seq, 1, memory_order_acq_rel);
}

void srv_cl_read_text(const struct srv_cl_shm *c, struct srv_cl_view *v)
{
	uint32_t s0, s1;

	do {
		while ((s0 = atomic_load_explicit(&c->seq, memory_order_acquire)) & 1)
			;
		memcpy(v->primary_url, c->primary_url, sizeof(v->primary_url));
		v->nmembers = atomic_load_explicit(&c->nmembers, memory_order_relaxed);
		if (v->nmembers > SRV_CL_MEMBERS_MAX)
			v->nmembers = SRV_CL_MEMBERS_MAX;
		v->self = atomic_load_explicit(&c->self, memory_order_relaxed);
		for (uint32_t i = 0; i < v->nmembers; i++) {
			memcpy(v->node[i], c->members[i].node, SRV_CL_NAME_MAX);
			memcpy(v->url[i], c->members[i].url, SRV_CL_URL_MAX);
		}
		memcpy(&v->hist, &c->hist, sizeof(v->hist));
		atomic_thread_fence(memory_order_acquire);
		s1 = atomic_load_explicit(&c->seq, memory_order_acquire);
	} while (s0 != s1);
	/* a torn copy cannot pass the check above, but keep strings bounded
	 * whatever a bug elsewhere left in the region */
	v->primary_url[SRV_CL_URL_MAX - 1] = 0;
	for (uint32_t i = 0; i < v->nmembers; i++) {
		v->node[i][SRV_CL_NAME_MAX - 1] = 0;
		v->url[i][SRV_CL_URL_MAX - 1] = 0;
	}
	if (v->hist.n > SRV_CL_HISTORY_MAX)
		v->hist.n = SRV_CL_HISTORY_MAX;
}

/* --- acks and the majority ------------------------------------------------- */

void srv_cl_ack(struct srv_cl_shm *c, unsigned i, uint64_t version, uint64_t now_ms)
{
	uint64_t cur;

	if (i >= SRV_CL_MEMBERS_MAX)
		return;
	cur = atomic_load(&c->members[i].acked);
	while (version > cur &&
	       !atomic_compare_exchange_weak(&c->members[i].acked, &cur, version))
		;
	atomic_store(&c->members[i].acked_ms, now_ms);
	if (version > cur) {
		atomic_fetch_add(&c->ack_gen, 1);
		ipc_wake_all(&c->ack_gen);
	}
}

uint64_t srv_cl_committed(const struct srv_cl_shm *c, unsigned group_size)
{
	uint64_t acks[SRV_CL_MEMBERS_MAX];
	unsigned n = 0, need = group_size / 2; /* replicas besides us */
	uint32_t nm = atomic_load(&c->nmembers);
	int self = atomic_load(&c->self);

	if (need == 0)
		return UINT64_MAX;
	if (nm > SRV_CL_MEMBERS_MAX)
		nm = SRV_CL_MEMBERS_MAX;
	for (uint32_t i = 0; i < nm; i++)
		if ((int)i != self)
			acks[n++] = atomic_load(&c->members[i].acked);
	if (n < need)
		return 0;
	/* the need-th largest: sort descending (n is at most 9) */
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && acks[j] > acks[j - 1]; j--) {
			uint64_t t = acks[j];
			acks[j] = acks[j - 1];
			acks[j - 1] = t;
		}
	return acks[need - 1];
}

/* --- history ---------------------------------------------------------------- */

int srv_cl_term_end(const struct srv_cl_history *h, uint64_t t, uint64_t top,
		    uint64_t *end)
{
	uint32_t i;

	if (t == 0 && (h->n == 0 || h->t[0].term > 0)) {
		/* versions from before any term (a single node's data) */
		*end = h->n ? h->t[0].prev_end : top;
		return 0;
	}
	for (i = 0; i < h->n && h->t[i].term != t; i++)
		;
	if (i == h->n)
		return -ENOENT;
	*end = i + 1 < h->n ? h->t[i + 1].prev_end : top;
	return 0;
}

int srv_cl_diverged(const struct srv_cl_history *h, uint64_t top, uint64_t v)
{
	uint64_t end;

	if (v == 0)
		return 0;
	if (srv_cl_term_end(h, srv_cl_term_of(v), top, &end))
		return 1;
	return v > end;
}

int srv_cl_history_add(struct srv_cl_history *h, uint64_t term, uint64_t prev_end)
{
	int rc = 0;

	if (h->n && h->t[h->n - 1].term >= term)
		return -EINVAL;
	if (h->n == SRV_CL_HISTORY_MAX) {
		memmove(&h->t[0], &h->t[1], sizeof(h->t[0]) * (SRV_CL_HISTORY_MAX - 1));
		h->n--;
		rc = -E2BIG;
	}
	h->t[h->n].term = term;
	h->t[h->n].prev_end = prev_end;
	h->n++;
	return rc;
}

int srv_cl_history_format(const struct srv_cl_history *h, char *buf, size_t n)
{
	size_t o = 0;

	if (n)
		buf[0] = 0;
	for (uint32_t i = 0; i < h->n; i++) {
		int w = snprintf(buf + o, n - o, "%s%" PRIu64 ":%" PRIu64, i ? "," : "",
				 h->t[i].term, h->t[i].prev_end);
		if (w < 0 || (size_t)w >= n - o)
			return -ENOSPC;
		o += (size_t)w;
	}
	return 0;
}

static int parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return 0;
}

int srv_cl_history_parse(const char *s, struct srv_cl_history *h)
{
	h->n = 0;
	if (!*s)
		return 0;
	for (;;) {
		uint64_t t, e;

		if (parse_u64(&s, &t) || *s++ != ':' || parse_u64(&s, &e))
			return -EINVAL;
		if (h->n == SRV_CL_HISTORY_MAX || (h->n && h->t[h->n - 1].term >= t))
			return -EINVAL;
		h->t[h->n].term = t;
		h->t[h->n].prev_end = e;
		h->n++;
		if (!*s)
			return 0;
		if (*s++ != ',')
			return -EINVAL;
	}
}

/* --- the durable file --------------------------------------------------------- */

#define STATE_MAGIC "caskd-cluster 1\n"
#define STATE_MAX 8192

static int name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SRV_CL_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return 0;
	return 1;
}

long srv_cl_state_format(const struct srv_cl_state *st, char *buf, size_t n)
{
	char hist[SRV_CL_HISTORY_MAX * 44 + 1];
	int w;

	if (srv_cl_history_format(&st->hist, hist, sizeof(hist)))
		return -ENOSPC;
	w = snprintf(buf, n, STATE_MAGIC "cluster %s\nnode %s\ngroup_size %u\n"
		     "max_term %" PRIu64 "\nhistory %s\n", st->cluster, st->node,
		     st->group_size, st->max_term, hist);
	if (w < 0 || (size_t)w + 16 >= n)
		return -ENOSPC;
	w += snprintf(buf + w, n - (size_t)w, "crc %08x\n",
		      eng_crc32c(0, buf, (size_t)w));
	return w;
}

/* The value of line `name ` at *p (advanced past the line) into out. */
static int field(const char **p, const char *end, const char *name, char *out,
		 size_t max)
{
	size_t nl = strlen(name), len;
	const char *eol;

	if ((size_t)(end - *p) <= nl || memcmp(*p, name, nl) || (*p)[nl] != ' ')
		return -EINVAL;
	*p += nl + 1;
	if (!(eol = memchr(*p, '\n', (size_t)(end - *p))))
		return -EINVAL;
	len = (size_t)(eol - *p);
	if (len >= max || memchr(*p, 0, len))
		return -EINVAL;
	memcpy(out, *p, len);
	out[len] = 0;
	*p = eol + 1;
	return 0;
}

int srv_cl_state_parse(const char *text, size_t len, struct srv_cl_state *st,
		       char *why, size_t whylen)
{
	const char *p = text, *end = text + len, *crc_at;
	char v[SRV_CL_HISTORY_MAX * 44 + 1];
	uint64_t n;
	const char *s;

	memset(st, 0, sizeof(*st));
#define BAD(msg) do { snprintf(why, whylen, "%s", msg); return -EINVAL; } while (0)
	if (len < sizeof(STATE_MAGIC) - 1 || memcmp(p, STATE_MAGIC, sizeof(STATE_MAGIC) - 1))
		BAD("not a caskd cluster state file");
	p += sizeof(STATE_MAGIC) - 1;
	if (field(&p, end, "cluster", st->cluster, sizeof(st->cluster)) || !name_ok(st->cluster))
		BAD("bad cluster line");
	if (field(&p, end, "node", st->node, sizeof(st->node)) || !name_ok(st->node))
		BAD("bad node line");
	s = v;
	if (field(&p, end, "group_size", v, sizeof(v)) || parse_u64(&s, &n) || *s ||
	    n < 1 || n > SRV_CL_MEMBERS_MAX)
		BAD("bad group_size line");
	st->group_size = (unsigned)n;
	s = v;
	if (field(&p, end, "max_term", v, sizeof(v)) || parse_u64(&s, &st->max_term) || *s ||
	    st->max_term >= (UINT64_C(1) << 31))
		BAD("bad max_term line");
	if (field(&p, end, "history", v, sizeof(v)) || srv_cl_history_parse(v, &st->hist))
		BAD("bad history line");
	for (uint32_t i = 0; i < st->hist.n; i++)
		if (st->hist.t[i].term > st->max_term)
			BAD("history names a term above max_term");
	crc_at = p;
	s = v;
	if (field(&p, end, "crc", v, sizeof(v)) || strlen(v) != 8 || p != end)
		BAD("bad crc line, or bytes after it");
	{
		char *e;
		unsigned long want = strtoul(v, &e, 16);
		if (*e || want != eng_crc32c(0, text, (size_t)(crc_at - text)))
			BAD("checksum mismatch");
	}
#undef BAD
	return 0;
}

int srv_cl_state_load(const char *dir, struct srv_cl_state *st, char *why,
		      size_t whylen)
{
	char path[PATH_MAX], buf[STATE_MAX];
	ssize_t n;
	size_t got = 0;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, SRV_CL_STATE_FILE) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno != ENOENT)
			snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	while (got < sizeof(buf)) {
		n = read(fd, buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			snprintf(why, whylen, "cannot read %s: %s", path, strerror(e));
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got == sizeof(buf)) {
		snprintf(why, whylen, "%s is too large to be a cluster state file", path);
		return -EINVAL;
	}
	return srv_cl_state_parse(buf, got, st, why, whylen);
}

int srv_cl_state_save(const char *dir, const struct srv_cl_state *st)
{
	char path[PATH_MAX], tmp[PATH_MAX], buf[STATE_MAX];
	long len = srv_cl_state_format(st, buf, sizeof(buf));
	int fd, rc;

	if (len < 0)
		return (int)len;
	if (snprintf(path, sizeof(path), "%s/%s", dir, SRV_CL_STATE_FILE) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, SRV_CL_STATE_FILE) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if ((fd = eng_io_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return fd;
	rc = eng_io_pwrite_all(fd, buf, (size_t)len, 0);
	if (!rc)
		rc = eng_io_fsync(fd);
	close(fd);
	if (!rc)
		rc = eng_io_rename(tmp, path);
	if (!rc)
		rc = eng_io_syncdir(dir);
	if (rc)
		(void)unlink(tmp);
	return rc;
}
