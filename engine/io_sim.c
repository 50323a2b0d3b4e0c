/* engine/io_sim.c — the power-loss simulator (see io_sim.h).
 *
 * In this order: the journal's entries; the backend, which runs in the
 * daemon's processes and appends them; reading the journal back; which
 * file each name holds, as the journal goes; and the power loss, which undoes
 * directory operations first and then writes, and says how far syncs
 * of a name reached.
 */
#include "engine/io_sim.h"

#include "engine/crc32c.h"
#include "engine/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SIM_MAGIC 0x4A4D4953u /* "SIMJ" */
#define SIM_PAGE 4096u
/* JOURNAL.files/INO: the files renames replaced and unlinks removed. */
#define GRAVE_SUFFIX ".files"
#define NO_POS UINT64_MAX

/* --- the journal's entries --------------------------------------------------- */

enum {
	SIM_WRITE = 1, /* + what the range held before (zeros past the end) */
	SIM_SYNC,      /* an fdatasync or fsync of a file */
	SIM_CREATE,    /* + path: an open made the file */
	SIM_NAME,      /* + path: an open with O_CREAT found the file there */
	SIM_RENAME,    /* + from, to */
	SIM_UNLINK,    /* + path */
	SIM_DIRSYNC,   /* + the directory: an fsync of it */
	SIM_TYPES
};

/* Paths follow as NUL-terminated strings, the directory made canonical. */
struct sim_ent {
	uint32_t magic;
	uint16_t type;
	uint16_t pad;
	uint32_t crc;       /* CRC-32C of the entry (this field 0) and what follows */
	uint32_t pad2;
	uint64_t ino;       /* the file; SIM_DIRSYNC: the directory */
	uint64_t off;       /* SIM_WRITE */
	uint64_t len;       /* bytes that follow the entry */
	uint64_t old_size;  /* SIM_WRITE: the file's size before */
	uint64_t sync_from; /* SIM_SYNC, SIM_DIRSYNC: journal length when it began */
	uint64_t replaced;  /* SIM_RENAME: the file `to` named before, or 0 */
};

static int names_op(uint16_t type)
{
	return type == SIM_CREATE || type == SIM_RENAME || type == SIM_UNLINK;
}

static int has_names(uint16_t type)
{
	return type >= SIM_CREATE && type <= SIM_DIRSYNC;
}

/* path with its directory made canonical (realpath), so the power loss, and a
 * test, can compare names whatever form the engine gave them in. */
static int canon(const char *path, char *out)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX], real[PATH_MAX];
	size_t dlen = slash ? (size_t)(slash - path) : 0;

	if (!slash) {
		strcpy(dir, ".");
	} else if (dlen == 0) {
		strcpy(dir, "/");
	} else {
		if (dlen >= sizeof(dir))
			return -ENAMETOOLONG;
		memcpy(dir, path, dlen);
		dir[dlen] = '\0';
	}
	if (!realpath(dir, real))
		return -errno;
	if ((size_t)snprintf(out, PATH_MAX, "%s/%s", strcmp(real, "/") ? real : "",
			     slash ? slash + 1 : path) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* JOURNAL.files/INO into out (PATH_MAX bytes). 0 or -ENAMETOOLONG. */
static int grave_path(char *out, const char *grave_dir, uint64_t ino)
{
	int n = snprintf(out, PATH_MAX, "%s/%" PRIu64, grave_dir, ino);

	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* --- the backend (in the daemon's processes) ----------------------------------- */

static int jfd = -1;
static char grave[PATH_MAX];

/* The journal is the drill's evidence: an entry that cannot be written
 * would make the power loss lie, so the process stops at once instead. A
 * SIGKILL can still stop a large append short (the kernel stops between
 * pages): the CRC lets the power loss skip such a remnant. */
static void journal(struct sim_ent *e, const void *more)
{
	struct iovec iov[2] = { { e, sizeof(*e) }, { (void *)more, e->len } };
	size_t want = iov[0].iov_len + iov[1].iov_len;
	ssize_t n;

	e->magic = SIM_MAGIC;
	e->crc = 0;
	e->crc = eng_crc32c(eng_crc32c(0, e, sizeof(*e)), more, e->len);
	do
		n = writev(jfd, iov, 2);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != want)
		abort();
}

static uint64_t journal_len(void)
{
	struct stat js;

	if (fstat(jfd, &js) < 0)
		abort();
	return (uint64_t)js.st_size;
}

static void journal_names(uint16_t type, uint64_t ino, uint64_t replaced,
			  const char *a, const char *b)
{
	char buf[2 * PATH_MAX];
	size_t la = strlen(a) + 1, lb = b ? strlen(b) + 1 : 0;
	struct sim_ent e = { .type = type, .ino = ino, .replaced = replaced,
			     .len = la + lb };

	memcpy(buf, a, la);
	if (b)
		memcpy(buf + la, b, lb);
	journal(&e, buf);
}

/* Copies what [off, off+len) holds now into a new buffer (zeros past
 * the end of the file); *size gets the file's size. NULL on failure. */
static char *save_old(int fd, off_t off, size_t len, struct stat *st)
{
	char *old = calloc(1, len ? len : 1);
	size_t got = 0;

	if (!old || fstat(fd, st) < 0) {
		free(old);
		return NULL;
	}
	while (got < len) {
		ssize_t n = pread(fd, old + got, len - got, off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return old;
}

static void journal_write(const struct stat *st, off_t off, size_t len,
			  const char *old)
{
	struct sim_ent e = {
		.type = SIM_WRITE, .ino = st->st_ino, .off = (uint64_t)off,
		.len = len, .old_size = (uint64_t)st->st_size,
	};

	journal(&e, old);
}

static ssize_t sim_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	struct stat st;
	char *old = save_old(fd, off, len, &st);
	ssize_t n;
	int err;

	if (!old)
		abort();
	n = pwrite(fd, buf, len, off);
	err = errno;
	if (n > 0)
		journal_write(&st, off, (size_t)n, old);
	free(old);
	errno = err;
	return n;
}

static int sim_fallocate(int fd, int mode, off_t off, off_t len)
{
	struct stat st;
	char *old;
	int rc, err;

	if (!(mode & FALLOC_FL_PUNCH_HOLE))
		return fallocate(fd, mode, off, len); /* counted durable */
	if (!(old = save_old(fd, off, (size_t)len, &st)))
		abort();
	rc = fallocate(fd, mode, off, len);
	err = errno;
	if (rc == 0)
		journal_write(&st, off, (size_t)len, old);
	free(old);
	errno = err;
	return rc;
}

/* A sync of a file (call: fdatasync or fsync), journaled once it
 * returned with where the journal stood when it began. */
/* Runs call(fd) and, if it succeeded, journals e (with more after it):
 * the sync covers what the journal held before it began. */
static int journaled_sync(int fd, struct sim_ent *e, const void *more,
			  int (*call)(int))
{
	int rc, err;

	e->sync_from = journal_len();
	rc = call(fd);
	err = errno;
	if (rc == 0)
		journal(e, more);
	errno = err;
	return rc;
}

static int sync_file(int fd, const struct stat *st, int (*call)(int))
{
	struct sim_ent e = { .type = SIM_SYNC, .ino = st->st_ino };

	return journaled_sync(fd, &e, NULL, call);
}

static int sim_fdatasync(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		abort();
	return sync_file(fd, &st, fdatasync);
}

/* A directory's fsync covers the operations in it before it began. */
static int sim_fsync(int fd)
{
	struct sim_ent e = { .type = SIM_DIRSYNC };
	char link[64], dir[PATH_MAX];
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		abort();
	if (!S_ISDIR(st.st_mode))
		return sync_file(fd, &st, fsync);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, dir, sizeof(dir) - 1)) < 0)
		abort();
	dir[n] = '\0';
	e.ino = st.st_ino;
	e.len = (uint64_t)n + 1;
	return journaled_sync(fd, &e, dir, fsync);
}

/* Whether an open with O_CREAT made the file decides what a power loss may
 * undo: O_EXCL says, and one that finds the file there opens it again
 * without O_CREAT (looping if it vanished meanwhile). */
static int sim_open(const char *path, int flags, mode_t mode)
{
	char name[PATH_MAX];
	struct stat st;
	int fd, created = 1;

	if (!(flags & O_CREAT))
		return open(path, flags, mode); /* creates nothing */
	for (;;) {
		fd = open(path, flags | O_EXCL, mode);
		if (fd >= 0 || errno != EEXIST || (flags & O_EXCL))
			break;
		created = 0;
		fd = open(path, flags & ~O_CREAT, mode);
		if (fd >= 0 || errno != ENOENT)
			break;
		created = 1;
	}
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || canon(path, name))
		abort();
	journal_names(created ? SIM_CREATE : SIM_NAME, st.st_ino, 0, name, NULL);
	return fd;
}

/* Keeps the file at path alive as JOURNAL.files/INO, so a power loss can give
 * it its name back. */
static void keep_file(const char *path, uint64_t ino)
{
	char g[PATH_MAX];

	if (grave_path(g, grave, ino) || (link(path, g) < 0 && errno != EEXIST))
		abort();
}

static int sim_rename(const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct stat sf, st;
	uint64_t replaced = 0;
	int rc;

	if (lstat(from, &sf) < 0)
		return -1;
	if ((rc = canon(from, a)) || (rc = canon(to, b))) {
		errno = -rc;
		return -1;
	}
	if (lstat(to, &st) == 0 && st.st_ino != sf.st_ino) {
		replaced = st.st_ino;
		keep_file(b, replaced);
	}
	if (rename(from, to) < 0)
		return -1;
	journal_names(SIM_RENAME, sf.st_ino, replaced, a, b);
	return 0;
}

static int sim_unlink(const char *path)
{
	char name[PATH_MAX];
	struct stat st;
	int rc;

	if (lstat(path, &st) < 0)
		return -1;
	if ((rc = canon(path, name))) {
		errno = -rc;
		return -1;
	}
	keep_file(name, st.st_ino);
	if (unlink(path) < 0)
		return -1;
	journal_names(SIM_UNLINK, st.st_ino, 0, name, NULL);
	return 0;
}

static const struct eng_io_backend sim_backend = {
	.pwrite = sim_pwrite,
	.fdatasync = sim_fdatasync,
	.fallocate = sim_fallocate,
	.fsync = sim_fsync,
	.open = sim_open,
	.rename = sim_rename,
	.unlink = sim_unlink,
	/* ftruncate and mkdir: durable at once (a leniency); sync_file_range
	 * makes nothing durable: all three stay the real calls */
};

static int remove_grave(const char *dir);

int eng_io_sim_init(void)
{
	const char *path = getenv("CASKD_SIMDISK");
	struct stat js;
	int rc;

	if (!path || !*path)
		return 0;
	if ((size_t)snprintf(grave, sizeof(grave), "%s%s", path, GRAVE_SUFFIX) >=
	    sizeof(grave))
		return -ENAMETOOLONG;
	jfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (jfd < 0 || fstat(jfd, &js) < 0)
		return -errno;
	/* A new journal: links left by another run could name other files
	 * now (inode numbers are reused). A re-exec goes on with its own. */
	if (js.st_size == 0 && (rc = remove_grave(grave)) && rc != -ENOENT)
		return rc;
	if (mkdir(grave, 0700) < 0 && errno != EEXIST)
		return -errno;
	eng_io_set_backend(&sim_backend);
	return 0;
}

/* --- reading the journal back -------------------------------------------- */

struct sim_rec {
	uint64_t pos;           /* where the entry is in the journal */
	struct sim_ent e;       /* a copy: entries are not aligned */
	const char *more;       /* what follows it */
	const char *a, *b;      /* the paths, for the types that have them */
	int undone;             /* an operation the power loss undid */
};

struct sim_journal {
	char *buf;
	size_t len;
	struct sim_rec *recs;
	size_t n;
	uint64_t remnants;
	uint64_t undone_from;   /* where the first operation undone is */
};

/* The size of the whole, intact entry at p, or 0; fills r. */
static size_t parse_entry(const char *p, size_t avail, struct sim_rec *r)
{
	struct sim_ent *e = &r->e;
	size_t total, la;
	uint32_t crc;

	if (avail < sizeof(*e))
		return 0;
	memcpy(e, p, sizeof(*e));
	if (e->magic != SIM_MAGIC || !e->type || e->type >= SIM_TYPES ||
	    e->len > avail - sizeof(*e))
		return 0;
	total = sizeof(*e) + e->len;
	crc = e->crc;
	e->crc = 0;
	if (eng_crc32c(eng_crc32c(0, e, sizeof(*e)), p + sizeof(*e), e->len) != crc)
		return 0;
	r->more = p + sizeof(*e);
	r->a = r->b = NULL;
	if (has_names(e->type)) {
		r->a = r->more;
		la = strnlen(r->a, e->len);
		if (la == e->len)
			return 0;
		if (e->type == SIM_RENAME) {
			r->b = r->a + la + 1;
			if (strnlen(r->b, e->len - la - 1) == e->len - la - 1)
				return 0;
		}
	}
	r->undone = 0;
	return total;
}

static int read_all(const char *path, char **buf, size_t *len)
{
	struct stat st;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (!(*buf = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, *buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	if (rc)
		free(*buf);
	return rc;
}

static int journal_read(const char *path, struct sim_journal *j)
{
	size_t cap = 0;
	int rc;

	if ((rc = read_all(path, &j->buf, &j->len)))
		return rc;
	for (size_t pos = 0; pos < j->len;) {
		struct sim_rec r;
		size_t total = parse_entry(j->buf + pos, j->len - pos, &r);

		if (!total) {
			pos++; /* the remnant of an append a SIGKILL stopped short */
			j->remnants++;
			continue;
		}
		if (j->n == cap) {
			struct sim_rec *n;
			cap = cap ? cap * 2 : 1024;
			if (!(n = realloc(j->recs, cap * sizeof(*n))))
				return -ENOMEM;
			j->recs = n;
		}
		r.pos = pos;
		j->recs[j->n++] = r;
		pos += total;
	}
	return 0;
}

/* --- names ----------------------------------------------------------------- */

/* Which file each path names, as a journal's operations leave it. */
struct names {
	struct name {
		const char *path; /* points into the journal */
		uint64_t ino;
	} *v;
	size_t n, cap;
};

static struct name *names_find(const struct names *m, const char *path)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->v[i].path, path))
			return &m->v[i];
	return NULL;
}

static uint64_t names_get(const struct names *m, const char *path)
{
	const struct name *x = names_find(m, path);

	return x ? x->ino : 0;
}

static int names_set(struct names *m, const char *path, uint64_t ino)
{
	struct name *x = names_find(m, path);

	if (!x) {
		if (m->n == m->cap) {
			struct name *v;
			m->cap = m->cap ? m->cap * 2 : 16;
			if (!(v = realloc(m->v, m->cap * sizeof(*v))))
				return -ENOMEM;
			m->v = v;
		}
		x = &m->v[m->n++];
		x->path = path;
	}
	x->ino = ino;
	return 0;
}

/* Applies a journal entry to m. */
static int names_apply(struct names *m, const struct sim_rec *r)
{
	switch (r->e.type) {
	case SIM_CREATE:
	case SIM_NAME:
		return names_set(m, r->a, r->e.ino);
	case SIM_RENAME:
		return names_set(m, r->a, 0) ? -ENOMEM : names_set(m, r->b, r->e.ino);
	case SIM_UNLINK:
		return names_set(m, r->a, 0);
	default:
		return 0;
	}
}

/* Does the operation r change which file path names? */
static int names_touch(const struct sim_rec *r, const char *path)
{
	return names_op(r->e.type) &&
	       (!strcmp(r->a, path) || (r->b && !strcmp(r->b, path)));
}

/* Every name the journal mentions, with the file it holds now (0: none). */
static int names_now(const struct sim_journal *j, struct names *now)
{
	int rc = 0;

	for (size_t i = 0; i < j->n && !rc; i++) {
		const struct sim_rec *r = &j->recs[i];
		struct stat st;

		for (const char *p = r->a; p && !rc; p = p == r->a ? r->b : NULL)
			if (!names_find(now, p))
				rc = names_set(now, p, lstat(p, &st) == 0 ? st.st_ino : 0);
	}
	return rc;
}

/* Does every name hold the file the journal's operations left in it?
 * Not when a process died between an operation and its entry (a stop
 * kills the job running, and the power loss's SIGKILL can land there too): then
 * no operation can be undone safely. */
static int names_match(const struct sim_journal *j, const struct names *now,
		       int *match)
{
	struct names live = { 0 };
	int rc = 0;

	for (size_t i = 0; i < j->n && !rc; i++)
		rc = names_apply(&live, &j->recs[i]);
	*match = 1;
	for (size_t i = 0; i < live.n && *match; i++)
		*match = live.v[i].ino == names_get(now, live.v[i].path);
	free(live.v);
	return rc;
}

/* --- the power loss: directories ------------------------------------------- */

static uint64_t next_rand(uint64_t *s)
{
	/* splitmix64: reproducible from the seed a test logs */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Is path's directory dir (both canonical)? */
static int in_dir(const char *path, const char *dir)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	return strlen(dir) == (n ? n : 1) && !strncmp(path, dir, n ? n : 1);
}

/* Did a sync of path's directory that began after pos return? */
static int dir_synced(const struct sim_journal *j, const char *path, uint64_t pos)
{
	for (size_t i = j->n; i-- > 0 && j->recs[i].pos > pos;) {
		const struct sim_rec *d = &j->recs[i];

		if (d->e.type == SIM_DIRSYNC && d->e.sync_from > pos && in_dir(path, d->a))
			return 1;
	}
	return 0;
}

static int covered(const struct sim_journal *j, const struct sim_rec *r)
{
	return dir_synced(j, r->a, r->pos) && (!r->b || dir_synced(j, r->b, r->pos));
}

/* Is path the file ino? 0, or -ESTALE if not (or gone). */
static int expect_file(const char *path, uint64_t ino)
{
	struct stat st;

	return lstat(path, &st) == 0 && st.st_ino == ino ? 0 : -ESTALE;
}

static int expect_free(const char *path)
{
	struct stat st;

	return lstat(path, &st) < 0 && errno == ENOENT ? 0 : -ESTALE;
}

/* Undoes one directory operation, on the names as it left them. */
static int undo_op(const struct sim_rec *r, const char *grave_dir)
{
	char g[PATH_MAX];
	int rc;

	switch (r->e.type) {
	case SIM_CREATE:
		if ((rc = expect_file(r->a, r->e.ino)))
			return rc;
		return unlink(r->a) < 0 ? -errno : 0;
	case SIM_RENAME:
		if ((rc = expect_file(r->b, r->e.ino)) || (rc = expect_free(r->a)))
			return rc;
		if (rename(r->b, r->a) < 0)
			return -errno;
		if (!r->e.replaced)
			return 0;
		if ((rc = grave_path(g, grave_dir, r->e.replaced)))
			return rc;
		return link(g, r->b) < 0 ? -errno : 0;
	case SIM_UNLINK:
		if ((rc = expect_free(r->a)))
			return rc;
		if ((rc = grave_path(g, grave_dir, r->e.ino)))
			return rc;
		return link(g, r->a) < 0 ? -errno : 0;
	default:
		return 0;
	}
}

static void count(const struct sim_journal *j, struct eng_io_sim_loss_stats *st)
{
	for (size_t i = 0; i < j->n; i++) {
		uint16_t t = j->recs[i].e.type;

		st->writes += t == SIM_WRITE;
		st->syncs += t == SIM_SYNC;
		st->dirops += names_op(t);
		st->dirsyncs += t == SIM_DIRSYNC;
	}
	st->remnants = j->remnants;
}

/* Of the directory operations no directory sync covered, undoes the
 * newest k, k at random (metadata is journaled in order: what survives
 * is a prefix). */
static int lose_dirs(struct sim_journal *j, const char *grave_dir, uint64_t *seed,
		    struct eng_io_sim_loss_stats *st)
{
	size_t *loose = malloc((j->n ? j->n : 1) * sizeof(*loose)), n = 0, k;
	struct names now = { 0 };
	int rc, match;

	count(j, st);
	if (!loose)
		return -ENOMEM;
	if ((rc = names_now(j, &now)) || (rc = names_match(j, &now, &match)) || !match) {
		st->unjournaled += !rc;
		free(now.v);
		free(loose);
		return rc;
	}
	free(now.v);
	for (size_t i = 0; i < j->n; i++)
		if (names_op(j->recs[i].e.type) && !covered(j, &j->recs[i]))
			loose[n++] = i;
	k = n ? (size_t)(next_rand(seed) % (n + 1)) : 0;
	j->undone_from = k ? j->recs[loose[n - k]].pos : NO_POS;
	for (size_t i = n; i-- > n - k && !rc;) {
		rc = undo_op(&j->recs[loose[i]], grave_dir);
		j->recs[loose[i]].undone = 1;
		st->undone++;
	}
	free(loose);
	return rc;
}

/* --- the power loss: data ------------------------------------------------------ */

static int put_back(int fd, const char *old, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, old, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		old += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Puts the entry's bytes back page by page, each with chance 1/2, or all
 * of them, or none (a third each). 1 if some went back, 2 if all. */
static int undo_write(int fd, const struct sim_rec *w, uint64_t *seed, int *rc)
{
	const struct sim_ent *e = &w->e;
	uint64_t mode = next_rand(seed) % 3, end = e->off + e->len, back = 0;

	*rc = 0;
	if (mode == 0)
		return 0;
	for (uint64_t o = e->off; o < end && !*rc;) {
		uint64_t piece_end = (o / SIM_PAGE + 1) * SIM_PAGE;

		if (piece_end > end)
			piece_end = end;
		if (mode == 2 || next_rand(seed) & 1) {
			*rc = put_back(fd, w->more + (o - e->off), piece_end - o, o);
			back += piece_end - o;
		}
		o = piece_end;
	}
	return back == e->len ? 2 : back ? 1 : 0;
}

/* Loses the writes to file ino, now at path, that no sync covered. */
static int lose_file(const struct sim_journal *j, uint64_t ino, const char *path,
		    uint64_t *seed, struct eng_io_sim_loss_stats *st)
{
	uint64_t synced_from = 0, synced_end = 0, trunc_to = UINT64_MAX;
	struct stat fs;
	int fd, rc = 0;

	for (size_t i = 0; i < j->n; i++)
		if (j->recs[i].e.type == SIM_SYNC && j->recs[i].e.ino == ino &&
		    j->recs[i].e.sync_from > synced_from)
			synced_from = j->recs[i].e.sync_from;
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return -errno;
	if (fstat(fd, &fs) < 0) {
		rc = -errno;
		goto out;
	}
	if (fs.st_ino != ino) {
		rc = -ESTALE;
		goto out;
	}
	/* newest first, so each page ends at some state it passed through */
	for (size_t i = j->n; i-- > 0;) {
		const struct sim_rec *w = &j->recs[i];
		int how;

		if (w->e.type != SIM_WRITE || w->e.ino != ino)
			continue;
		if (w->pos < synced_from) {
			if (w->e.off + w->e.len > synced_end)
				synced_end = w->e.off + w->e.len;
			continue;
		}
		how = undo_write(fd, w, seed, &rc);
		if (rc)
			goto out;
		st->unsynced++;
		st->torn += how == 1;
		st->dropped += how == 2;
		if (w->e.old_size < w->e.off + w->e.len)
			trunc_to = w->e.old_size; /* the oldest that grew the file */
	}
	/* the size the lost writes gave the file may be lost with them, but
	 * never below what a sync covered */
	if (trunc_to != UINT64_MAX && next_rand(seed) & 1) {
		if (trunc_to < synced_end)
			trunc_to = synced_end;
		if (fstat(fd, &fs) == 0 && (uint64_t)fs.st_size > trunc_to) {
			if (ftruncate(fd, (off_t)trunc_to) < 0) {
				rc = -errno;
				goto out;
			}
			st->truncated += (uint64_t)fs.st_size - trunc_to;
		}
	}
	if (fsync(fd) < 0)
		rc = -errno;
out:
	close(fd);
	return rc;
}

/* Loses the unsynced writes of each file the journal wrote to that
 * has a name after the directories lost theirs (one without cannot be opened again: what it
 * held is gone with it). */
static int lose_files(const struct sim_journal *j, uint64_t *seed,
		     struct eng_io_sim_loss_stats *st)
{
	struct names now = { 0 };
	int rc = names_now(j, &now);

	for (size_t i = 0; i < now.n && !rc; i++) {
		uint64_t ino = now.v[i].ino;
		int written = 0;

		for (size_t k = 0; k < i && ino; k++)
			if (now.v[k].ino == ino)
				ino = 0; /* a second name of a file handled already */
		for (size_t w = 0; w < j->n && ino && !written; w++)
			written = j->recs[w].e.type == SIM_WRITE && j->recs[w].e.ino == ino;
		if (!written)
			continue;
		rc = lose_file(j, ino, now.v[i].path, seed, st);
		st->files++;
	}
	free(now.v);
	return rc;
}

/* See covered_below in io_sim.h. A sync counts only before the first
 * operation on path that the power loss undid: from there on the file synced
 * may not be the one path names after the power loss. */
static int covered_below(const struct sim_journal *j, const char *path,
			 struct eng_io_sim_loss_stats *st)
{
	struct names live = { 0 };
	char want[PATH_MAX];
	int rc, counting = 1;

	if ((rc = canon(path, want)))
		return rc;
	for (size_t i = 0; i < j->n && !rc; i++) {
		const struct sim_rec *r = &j->recs[i];

		if (r->e.type == SIM_RENAME && !strcmp(r->b, want)) {
			st->swaps++;
			st->swaps_undone += r->undone;
		}
		if (r->undone && names_touch(r, want))
			counting = 0;
		if (counting && r->e.type == SIM_SYNC && r->e.ino == names_get(&live, want) &&
		    r->e.sync_from > st->covered_below)
			st->covered_below = r->e.sync_from;
		rc = names_apply(&live, r);
	}
	free(live.v);
	return rc;
}

static int remove_grave(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return -errno;
	while (!rc && (errno = 0, de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    unlinkat(dirfd(d), de->d_name, 0) < 0)
			rc = -errno;
	if (!rc && errno)
		rc = -errno;
	closedir(d);
	if (!rc && rmdir(dir) < 0)
		rc = -errno;
	return rc;
}

int eng_io_sim_power_loss(const char *jpath, const char *path, uint64_t seed,
		   struct eng_io_sim_loss_stats *stats)
{
	struct eng_io_sim_loss_stats st = { 0 };
	struct sim_journal j = { .undone_from = NO_POS };
	char grave_dir[PATH_MAX];
	int rc;

	if ((size_t)snprintf(grave_dir, sizeof(grave_dir), "%s%s", jpath, GRAVE_SUFFIX) >=
	    sizeof(grave_dir))
		return -ENAMETOOLONG;
	if (!(rc = journal_read(jpath, &j)) && !(rc = lose_dirs(&j, grave_dir, &seed, &st)) &&
	    !(rc = lose_files(&j, &seed, &st)))
		rc = covered_below(&j, path, &st);
	if (!rc && (rc = remove_grave(grave_dir)) == -ENOENT)
		rc = 0;
	free(j.recs);
	free(j.buf);
	if (stats)
		*stats = st;
	return rc;
}
