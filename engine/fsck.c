/* engine/fsck.c — offline verify and repair (see fsck.h). */
#include "engine/fsck.h"

#include "engine/idxsnap.h"
#include "engine/io.h"
#include "engine/record.h"
#include "engine/replay.h"
#include "engine/store.h"
#include "ipc/flock.h"
#include "engine/db.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZERO_CHUNK 65536
/* A caskd writes its pid into caskd.lock just after it takes the lock:
 * how long a repair waits to read it there (a retry every 10 ms). */
#define PID_TRIES 20
#define PID_WAIT_NS 10000000L
/* The longest PAD a repair writes: its length is a u32 after the header. */
#define PAD_MAX (1ull << 30)

struct ck {
	int fd;
	const char *map;
	enum eng_repair_mode mode;
	eng_check_note_fn note;
	void *arg;
	struct eng_check_report *rep;
	struct eng_check_item pending; /* waits for the next record's version */
	int have_pending;
	uint64_t last_version;
	uint64_t top_version;          /* of every record, dropped ones too */
	uint64_t cut_at;               /* truncate mode: the first damage */
	uint64_t file_id;              /* as it was before any repair */
	int is_db;                     /* the file is its directory's database.bin */
};

static int zero_range(int fd, uint64_t off, uint64_t len)
{
	static const char zeros[ZERO_CHUNK];
	int rc;

	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		if ((rc = eng_io_pwrite_all(fd, zeros, n, off)))
			return rc;
		off += n;
		len -= n;
	}
	return 0;
}

/* Drops a damaged region, leaving records that say so: PADs flagged
 * "repaired" (several for a long region), and zeros where less than a
 * record header is left. Bytes missing past the end of a truncated file
 * are put back first, as a hole (a PAD's payload is never read), so
 * every byte below the durable mark exists again. */
static int drop_region(struct ck *c, uint64_t off, uint64_t len)
{
	char pad[ENG_REC_HDR_SIZE];
	int rc;

	if (off + len > c->rep->file_bytes && (rc = eng_io_truncate(c->fd, off + len)))
		return rc;
	while (len >= ENG_REC_HDR_SIZE) {
		uint64_t n = len > PAD_MAX ? PAD_MAX : len & ~(uint64_t)(ENG_REC_ALIGN - 1);

		eng_rec_encode_pad(pad, n, ENG_REC_F_REPAIRED);
		if ((rc = eng_io_pwrite_all(c->fd, pad, sizeof(pad), off)))
			return rc;
		off += n;
		len -= n;
	}
	return len ? zero_range(c->fd, off, len) : 0;
}

static int repair_item(struct ck *c, const struct eng_check_item *it)
{
	if (c->mode == ENG_REPAIR_NONE)
		return 0;
	switch (it->kind) {
	case ENG_SCAN_CORRUPT:
		if (c->mode == ENG_REPAIR_TRUNCATE) {
			if (c->cut_at == UINT64_MAX)
				c->cut_at = it->off;
			return 0;
		}
		c->rep->repaired = 1;
		return drop_region(c, it->off, it->len);
	case ENG_SCAN_TORN_TAIL:
	case ENG_SCAN_UNUSED:
		if (c->cut_at == UINT64_MAX)
			c->cut_at = it->off;
		return 0;
	default:
		return 0;
	}
}

static int emit(struct ck *c, uint64_t next_version)
{
	struct eng_check_item *it = &c->pending;

	if (!c->have_pending)
		return 0;
	c->have_pending = 0;
	it->version_before = next_version;
	if (c->note)
		c->note(it, c->arg);
	return repair_item(c, it);
}

static int finding(struct ck *c, enum eng_scan_kind kind, uint64_t off,
		   uint64_t len, int dropped_batch, int repaired_before)
{
	struct eng_check_report *rep = c->rep;
	int rc = emit(c, 0);

	switch (kind) {
	case ENG_SCAN_ABANDONED:
		if (dropped_batch)
			rep->dropped_bytes += len;
		else if (repaired_before)
			rep->repaired_bytes += len;
		else
			rep->abandoned_bytes += len;
		break;
	case ENG_SCAN_CORRUPT:
		rep->corrupt_regions++;
		rep->corrupt_bytes += len;
		if (off + len > rep->file_bytes)
			rep->missing_bytes = off + len - rep->file_bytes;
		break;
	case ENG_SCAN_TORN_TAIL:
		rep->torn_tail_bytes = len;
		break;
	case ENG_SCAN_UNUSED:
		rep->unused_bytes = len;
		break;
	default:
		break;
	}
	c->pending = (struct eng_check_item){
		.kind = kind, .off = off, .len = len, .dropped_batch = dropped_batch,
		.repaired_before = repaired_before, .version_after = c->last_version,
		.missing = off + len > rep->file_bytes ? off + len - rep->file_bytes : 0,
	};
	c->have_pending = 1;
	return rc;
}

static int on_record(struct ck *c, const struct eng_replay_item *it)
{
	int rc;

	if (it->h.type == ENG_REC_PAD) {
		if (it->h.flags & ENG_REC_F_REPAIRED)
			return finding(c, ENG_SCAN_ABANDONED, it->off, it->len, 0, 1);
		c->rep->abandoned_bytes += it->len;
		return 0;
	}
	if ((rc = emit(c, it->h.version)))
		return rc;
	if (it->h.version > c->top_version)
		c->top_version = it->h.version;
	if (c->cut_at != UINT64_MAX) {
		c->rep->truncated_records++;
		return 0;
	}
	c->rep->records++;
	if (it->parts && it->part == 0)
		c->rep->batches++;
	c->last_version = it->h.version;
	if (it->h.version > c->rep->max_version)
		c->rep->max_version = it->h.version;
	return 0;
}

static int scan(struct ck *c)
{
	struct eng_scan s;
	struct eng_replay rp;
	struct eng_replay_item it;
	int rc = 0;

	eng_scan_init(&s, c->map, c->rep->file_bytes);
	eng_scan_set_fd(&s, c->fd);
	eng_scan_set_eof(&s); /* bytes missing below the mark are damage */
	c->rep->durable_mark = s.mark;
	eng_replay_init(&rp, &s);
	while (!rc && !(rc = eng_replay_next(&rp, &it)) && it.kind != ENG_REPLAY_END) {
		if (it.kind == ENG_REPLAY_RECORD)
			rc = on_record(c, &it);
		else if (it.kind == ENG_REPLAY_DROPPED)
			rc = finding(c, ENG_SCAN_ABANDONED, it.off, it.len, 1, 0);
		else
			rc = finding(c, it.scan, it.off, it.len, 0, 0);
	}
	eng_replay_free(&rp);
	return rc ? rc : emit(c, 0);
}

/* --- opening --------------------------------------------------------------- */

/* The database file of path, and the directory it lives in. */
static int resolve(const char *path, char *file, size_t fl, char *dir, size_t dl,
		   int *is_dir)
{
	struct stat st;
	char tmp[PATH_MAX];

	if (stat(path, &st) < 0)
		return -errno;
	*is_dir = S_ISDIR(st.st_mode);
	if (*is_dir) {
		snprintf(dir, dl, "%s", path);
		snprintf(file, fl, "%s/%s", path, ENG_DB_FILE);
	} else {
		snprintf(file, fl, "%s", path);
		snprintf(tmp, sizeof(tmp), "%s", path);
		snprintf(dir, dl, "%s", dirname(tmp));
	}
	return 0;
}

/* 1 in *foreign if path holds bytes and they do not start as caskd's
 * magic does: someone else's file, which neither a check nor a repair
 * has any business reading as records, let alone rewriting. An empty
 * file, or a start of the magic, is what a crash while creating a
 * database leaves (a start writes a new header there). */
static int foreign_file(const char *path, int *foreign)
{
	char head[ENG_FILE_MAGIC_LEN];
	ssize_t n;
	int fd, rc = 0;

	*foreign = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = pread(fd, head, sizeof(head), 0)) < 0 && errno == EINTR)
		;
	if (n < 0)
		rc = -errno;
	else
		*foreign = n > 0 && memcmp(head, ENG_FILE_MAGIC, (size_t)n) != 0;
	close(fd);
	return rc;
}

/* 1 if file is named as a data directory's database.bin. */
static int is_db_name(const char *file)
{
	const char *base = strrchr(file, '/');

	return !strcmp(base ? base + 1 : file, ENG_DB_FILE);
}

/* A read-only look at whether a caskd holds dir: nothing is created. */
static void probe_in_use(const char *dir, struct eng_check_report *rep)
{
	char lock[PATH_MAX + 16], pid[24];
	int fd, n;

	snprintf(lock, sizeof(lock), "%s/%s", dir, ENG_LOCK_FILE);
	fd = open(lock, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (ipc_flock_holder(fd, 0, 0) != 0) {
		rep->in_use = 1;
		n = (int)pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		rep->holder_pid = atoi(pid);
	}
	close(fd);
}

/* A repair takes the instance lock of the directory that holds the file,
 * as a start does (caskd.lock, made if missing), for a file as for a
 * directory: a caskd there has the file mapped (truncated under its workers,
 * it is SIGBUS) and appends to it. Held: -EBUSY, and who holds it, from
 * the pid the caskd wrote there (F_OFD_GETLK cannot say: OFD locks have
 * no owning process, l_pid is -1). */
static int lock_instance(const char *dir, int *lock_fd, struct eng_check_report *rep)
{
	struct eng_recovery lr;
	int rc;

	for (int tries = 0;; tries++) {
		struct timespec pause = { 0, PID_WAIT_NS };

		memset(&lr, 0, sizeof(lr));
		rc = eng_lock_dir(dir, 0, lock_fd, &lr);
		if (rc != -EBUSY || lr.holder_pid > 0 || tries == PID_TRIES)
			break;
		/* taken a moment ago: its pid comes next */
		while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
			;
	}
	if (rc == -EBUSY) {
		rep->holder_pid = lr.holder_pid;
		rep->holder_dead = lr.holder_dead;
		rep->nholders = lr.nholders;
		memcpy(rep->holders, lr.holders, sizeof(rep->holders));
	} else if (rc) {
		snprintf(rep->failed, sizeof(rep->failed), "%s", lr.failed);
	}
	return rc;
}

/* Writes a format 2 header with mark m (a format 1 header is rewritten
 * as format 2, as a start would: the records do not move). Versions
 * resume above the lease, so it covers every version found, those of
 * records a truncate dropped too. */
static int write_header(struct ck *c, uint64_t id, struct eng_mark m)
{
	char hdr[ENG_FILE_HDR_SIZE];

	if (m.lease < c->top_version)
		m.lease = c->top_version;
	eng_file_hdr_encode(hdr, id ? id : eng_file_id_new(), &m);
	return eng_io_pwrite_all(c->fd, hdr, sizeof(hdr), 0);
}

static int finish_repair(struct ck *c, const char *dir)
{
	struct eng_check_report *rep = c->rep;
	struct eng_mark m;
	int rc, copy;

	if (c->cut_at != UINT64_MAX) {
		if ((rc = eng_io_truncate(c->fd, c->cut_at)))
			return rc;
		rep->repaired = 1;
	}
	if (rep->header_bad) {
		/* the lease is lost with the header: resume past every version
		 * seen, and trust no damage as a tear beyond the header */
		if (rep->file_bytes < ENG_FILE_HDR_SIZE)
			rc = eng_io_truncate(c->fd, 0); /* start-up writes a new one */
		else
			rc = write_header(c, 0, (struct eng_mark){ ENG_FILE_HDR_SIZE, 0 });
		if (rc)
			return rc;
		rep->repaired = 1;
	} else if (rep->durable_mark != UINT64_MAX && c->cut_at < rep->durable_mark) {
		/* truncated below the mark: lower it, or the file would be short of it */
		eng_mark_read(c->map, &m, &copy);
		m.durable = c->cut_at;
		if ((rc = write_header(c, rep->format == ENG_FORMAT_VERSION ?
				       eng_file_id(c->map) : 0, m)))
			return rc;
	}
	if (!rep->repaired)
		return 0;
	/* A snapshot of the index made for this file may name records that
	 * are gone now: removed before the repair is synced, so that no
	 * crash leaves the two together. Only the directory's database.bin
	 * has one (and a copy of it elsewhere, or under another name, has
	 * none: what is there is another file's). */
	if (c->is_db) {
		if ((rc = eng_idx_remove_for(dir, c->file_id)) < 0) {
			rep->idx_stale = 1;
			return rc;
		}
		rep->idx_removed = rc;
	}
	return eng_io_datasync(c->fd);
}

int eng_check(const char *path, enum eng_repair_mode mode,
	      eng_check_note_fn note, void *arg, struct eng_check_report *rep)
{
	char dir[PATH_MAX];
	struct ck c = { .fd = -1, .mode = mode, .note = note, .arg = arg,
			.rep = rep, .cut_at = UINT64_MAX };
	int lock_fd = -1, is_dir = 0, rc;
	struct stat st;
	void *map = MAP_FAILED;

	memset(rep, 0, sizeof(*rep));
	if ((rc = resolve(path, rep->path, sizeof(rep->path), dir, sizeof(dir), &is_dir)))
		return rc;
	/* before any lock is taken or byte written */
	if ((rc = foreign_file(rep->path, &rep->not_caskd)) || rep->not_caskd)
		return rc;
	if (mode == ENG_REPAIR_NONE) {
		probe_in_use(dir, rep);
	} else if ((rc = lock_instance(dir, &lock_fd, rep))) {
		return rc;
	}
	c.fd = open(rep->path, (mode ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (c.fd < 0) {
		rc = -errno;
		goto out_unlock;
	}
	if (mode && (rc = ipc_flock(c.fd, IPC_FLOCK_WRITE, 0, 0, 0))) {
		/* held, though not by a caskd of dir: one that reaches the
		 * file by another name (its workers lease what they append
		 * to), or another tool: holder_pid stays 0, unknown */
		if (rc == -EAGAIN)
			rc = -EBUSY;
		goto out_close;
	}
	if (fstat(c.fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	rep->file_bytes = (uint64_t)st.st_size;
	if (st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, c.fd, 0);
		if (map == MAP_FAILED) {
			rc = -errno;
			goto out_close;
		}
		c.map = map;
	}
	rc = map == MAP_FAILED ? -EBADMSG :
		eng_file_hdr_check(map, rep->file_bytes, &rep->format);
	if (rc == -EPROTO)
		goto out_unmap;
	rep->header_bad = rc != 0;
	rc = 0;
	if (rep->file_bytes >= ENG_FILE_HDR_SIZE)
		c.file_id = eng_file_id(map); /* a repair may rewrite the header */
	c.is_db = is_dir || is_db_name(rep->path);
	if (!rep->header_bad || (mode && rep->file_bytes >= ENG_FILE_HDR_SIZE))
		rc = scan(&c);
	if (!rc && mode)
		rc = finish_repair(&c, dir);
out_unmap:
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
out_close:
	close(c.fd);
out_unlock:
	if (lock_fd >= 0)
		close(lock_fd);
	return rc;
}
