/* engine/io_sim.c — the power-cut simulator (see io_sim.h). */
#include "engine/io_sim.h"

#include "engine/crc32c.h"
#include "engine/io.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SIM_MAGIC 0x4A4D4953u /* "SIMJ" */
#define SIM_PAGE 4096u

enum { SIM_WRITE = 1, SIM_SYNC = 2 };

/* One journal entry; a SIM_WRITE is followed by len bytes: what the
 * range held before (zeros past the old end of the file). */
struct sim_ent {
	uint32_t magic;
	uint16_t type;
	uint16_t pad;
	uint32_t crc;       /* CRC-32C of the entry (this field 0) and bytes */
	uint32_t pad2;
	uint64_t ino;
	uint64_t off;
	uint64_t len;
	uint64_t old_size;
	uint64_t sync_from; /* SIM_SYNC: journal length when it began */
};

static int jfd = -1;

/* The journal is the drill's evidence: an entry that cannot be written
 * would make the cut lie, so the process stops at once instead. A
 * SIGKILL can still cut a large append short (the kernel stops between
 * pages): the CRC lets the cut skip such a remnant. */
static void journal(struct sim_ent *e, const void *old)
{
	struct iovec iov[2] = {
		{ e, sizeof(*e) },
		{ (void *)old, e->type == SIM_WRITE ? e->len : 0 },
	};
	size_t want = iov[0].iov_len + iov[1].iov_len;
	ssize_t n;

	e->crc = 0;
	e->crc = eng_crc32c(eng_crc32c(0, e, sizeof(*e)), old, iov[1].iov_len);

	do
		n = writev(jfd, iov, 2);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != want)
		abort();
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
		.magic = SIM_MAGIC, .type = SIM_WRITE, .ino = st->st_ino,
		.off = (uint64_t)off, .len = len, .old_size = (uint64_t)st->st_size,
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

static int sim_fdatasync(int fd)
{
	struct stat js, st;
	int rc, err;

	if (fstat(jfd, &js) < 0 || fstat(fd, &st) < 0)
		abort();
	rc = fdatasync(fd);
	err = errno;
	if (rc == 0) {
		struct sim_ent e = {
			.magic = SIM_MAGIC, .type = SIM_SYNC, .ino = st.st_ino,
			.sync_from = (uint64_t)js.st_size,
		};
		journal(&e, NULL);
	}
	errno = err;
	return rc;
}

static const struct eng_io_backend sim_backend = {
	.pwrite = sim_pwrite,
	.fdatasync = sim_fdatasync,
	.ftruncate = ftruncate,
	.fallocate = sim_fallocate,
};

int eng_io_sim_init(void)
{
	const char *path = getenv("CASKD_SIMDISK");

	if (!path || !*path)
		return 0;
	jfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (jfd < 0)
		return -errno;
	eng_io_set_backend(&sim_backend);
	return 0;
}

/* --- the cut ---------------------------------------------------------------- */

struct sim_w {
	uint64_t pos;   /* where the entry is in the journal */
	const struct sim_ent *e; /* what the range held follows it */
};

static uint64_t next_rand(uint64_t *s)
{
	/* splitmix64: reproducible from the seed a test logs */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

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
static int undo_one(int fd, const struct sim_w *w, uint64_t *seed, int *rc)
{
	const struct sim_ent *e = w->e;
	uint64_t mode = next_rand(seed) % 3, end = e->off + e->len, back = 0;

	*rc = 0;
	if (mode == 0)
		return 0;
	for (uint64_t o = e->off; o < end && !*rc;) {
		uint64_t piece_end = (o / SIM_PAGE + 1) * SIM_PAGE;

		if (piece_end > end)
			piece_end = end;
		if (mode == 2 || next_rand(seed) & 1) {
			*rc = put_back(fd, (const char *)(e + 1) + (o - e->off), piece_end - o, o);
			back += piece_end - o;
		}
		o = piece_end;
	}
	return back == e->len ? 2 : back ? 1 : 0;
}

/* The size of the whole, intact entry at p, or 0. */
static size_t entry_size(const char *p, size_t avail)
{
	struct sim_ent e;
	size_t total;
	uint32_t crc;

	if (avail < sizeof(e))
		return 0;
	memcpy(&e, p, sizeof(e));
	if (e.magic != SIM_MAGIC || (e.type != SIM_WRITE && e.type != SIM_SYNC))
		return 0;
	total = sizeof(e) + (e.type == SIM_WRITE ? e.len : 0);
	if (e.type == SIM_WRITE && e.len > avail)
		return 0;
	if (avail < total)
		return 0;
	crc = e.crc;
	e.crc = 0;
	if (eng_crc32c(eng_crc32c(0, &e, sizeof(e)), p + sizeof(e),
		       total - sizeof(e)) != crc)
		return 0;
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

int eng_io_sim_cut(const char *jpath, const char *path, uint64_t seed,
		   struct eng_io_sim_cut_stats *stats)
{
	struct eng_io_sim_cut_stats st = { 0 };
	struct sim_w *ws = NULL;
	size_t jlen = 0, nw = 0, cap = 0;
	uint64_t synced_from = 0, synced_end = 0, cut_to = UINT64_MAX;
	struct stat fs;
	char *j = NULL;
	int fd, rc;

	if ((rc = read_all(jpath, &j, &jlen)))
		return rc;
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0 || fstat(fd, &fs) < 0) {
		rc = -errno;
		goto out;
	}
	/* every entry for the file, and the newest sync's start */
	for (size_t pos = 0; pos < jlen;) {
		const struct sim_ent *e = (const void *)(j + pos);
		size_t total = entry_size(j + pos, jlen - pos);

		if (!total) {
			pos++; /* the remnant of an append a SIGKILL cut short */
			st.remnants++;
			continue;
		}
		if (e->ino == fs.st_ino && e->type == SIM_SYNC) {
			st.syncs++;
			if (e->sync_from > synced_from)
				synced_from = e->sync_from;
		}
		if (e->ino == fs.st_ino && e->type == SIM_WRITE) {
			if (nw == cap) {
				struct sim_w *n;
				cap = cap ? cap * 2 : 256;
				if (!(n = realloc(ws, cap * sizeof(*ws)))) {
					rc = -ENOMEM;
					goto out;
				}
				ws = n;
			}
			ws[nw].pos = pos;
			ws[nw].e = e;
			nw++;
		}
		pos += total;
	}
	st.writes = nw;
	for (size_t i = 0; i < nw; i++)
		if (ws[i].pos < synced_from && ws[i].e->off + ws[i].e->len > synced_end)
			synced_end = ws[i].e->off + ws[i].e->len;
	/* newest first, so each page ends at some state it passed through */
	for (size_t i = nw; i-- > 0 && ws[i].pos >= synced_from;) {
		const struct sim_ent *e = ws[i].e;
		int how = undo_one(fd, &ws[i], &seed, &rc);

		if (rc)
			goto out;
		st.unsynced++;
		st.torn += how == 1;
		st.dropped += how == 2;
		if (e->old_size < e->off + e->len)
			cut_to = e->old_size; /* the oldest that grew the file */
	}
	/* the size the lost writes gave the file may be lost with them, but
	 * never below what a sync covered */
	if (cut_to != UINT64_MAX && next_rand(&seed) & 1) {
		if (cut_to < synced_end)
			cut_to = synced_end;
		if (fstat(fd, &fs) == 0 && (uint64_t)fs.st_size > cut_to) {
			if (ftruncate(fd, (off_t)cut_to) < 0) {
				rc = -errno;
				goto out;
			}
			st.truncated = (uint64_t)fs.st_size - cut_to;
		}
	}
	if (fsync(fd) < 0)
		rc = -errno;
out:
	if (fd >= 0)
		close(fd);
	free(ws);
	free(j);
	if (stats)
		*stats = st;
	return rc;
}
