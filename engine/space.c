/* engine/space.c — the space of database.bin around its tail: the
 * written zeros kept ahead of the tail, the reserve for deletes on a
 * full disk, the reserve file that lets a compaction run on a full disk,
 * and the trim at a clean stop. (The chunk lock a writer takes is in
 * engine/db.c.)
 *
 * Lock rules here (see store.h): a writer holds a shared OFD lock on the
 * ENG_CHUNK_BYTES-aligned chunks around what it appends; the master takes
 * an exclusive lock on the piece it zeroes, which starts at a chunk
 * boundary at or past the tail's chunk, and publishes the piece in
 * zeroing_from/to under the index mutex so that no reservation enters it
 * meanwhile. The two can therefore never wait for each other.
 */
#include "engine/store.h"

#include "engine/elog.h"
#include "engine/io.h"
#include "engine/record.h"
#include "engine/shared.h"
#include "engine/db.h"
#include "engine/space.h"
#include "ipc/flock.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Zeros are kept a quarter of the log ahead of the tail, between these
 * bounds (a small store does not carry 16 MiB of zeros), in pieces of
 * PREZERO_PIECE_BYTES; a call zeroes at most PREZERO_PIECES pieces, and
 * syncs the allocation once per PREZERO_SYNC_BYTES so that a worker's
 * fdatasync never has to commit it. */
#define PREZERO_LEAD_MIN_BYTES (2ull << 20)
#define PREZERO_LEAD_MAX_BYTES (16ull << 20)
#define PREZERO_PIECE_BYTES ENG_CHUNK_BYTES
#define PREZERO_PIECES 8
#define PREZERO_SYNC_BYTES (8ull << 20)
#define PREZERO_STEP_BYTES (64u << 10)

static uint64_t align_up(uint64_t n, uint64_t a)
{
	return (n + a - 1) & ~(a - 1);
}

/* --- zeros ahead of the tail ------------------------------------------------- */

static char zero_buf[PREZERO_STEP_BYTES];

/* Zeros through the page cache (appends then find cached pages and read
 * nothing), a step at a time, each written back at once: never more
 * than a step sits dirty for a worker's fdatasync to flush, and a
 * buffered write holds the inode lock only for its copy. (O_DIRECT
 * would leave nothing dirty, but an extending direct write holds the
 * inode lock for the whole device write: traced, every worker's pwrite
 * then waited 5-15 ms behind it.) */
int eng_space_zero(int fd, uint64_t off, uint64_t len)
{
	int rc;

	for (uint64_t o = off; o < off + len; o += PREZERO_STEP_BYTES) {
		uint64_t n = off + len - o < PREZERO_STEP_BYTES ? off + len - o : PREZERO_STEP_BYTES;
		if ((rc = eng_io_pwrite_all(fd, zero_buf, n, o)))
			return rc;
		if ((rc = eng_io_sync_range(fd, o, n,
					    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
					    SYNC_FILE_RANGE_WAIT_AFTER)))
			return rc;
	}
	return 0;
}

uint64_t eng_space_lead(uint64_t tail)
{
	uint64_t lead = tail / 4;

	return lead < PREZERO_LEAD_MIN_BYTES ? PREZERO_LEAD_MIN_BYTES :
	       lead > PREZERO_LEAD_MAX_BYTES ? PREZERO_LEAD_MAX_BYTES : lead;
}

/* One piece: claims it under the mutex, zeroes it under an exclusive
 * byte lock, publishes it. 0, 1 when far enough ahead, -errno. */
static int prezero_one(struct eng_db *db, uint64_t *synced_upto)
{
	struct eng_shared *sh = db->sh;
	uint64_t from, to, gen;
	int rc;

	if ((rc = eng_db_refresh(db)))
		return rc == -ESTALE ? 1 : rc; /* mid-swap: next time */
	if ((rc = eng_lock_index(db)))
		return rc;
	gen = db->file_gen;
	if (atomic_load(&sh->file_gen) != gen) {
		eng_unlock_index(db);
		return 1; /* a compaction just swapped the file: next time */
	}
	/* A compaction short of space claims what lies past the tail to
	 * give it back (make_room, engine/rebuild.c): its claim stands. */
	if (sh->zeroing_to) {
		eng_unlock_index(db);
		return 1;
	}
	from = align_up(sh->tail, ENG_CHUNK_BYTES);
	if (sh->zeroed_end > from)
		from = sh->zeroed_end;
	if (from >= sh->tail + eng_space_lead(sh->tail)) {
		eng_unlock_index(db);
		return 1;
	}
	to = from + PREZERO_PIECE_BYTES;
	sh->zeroing_from = from;
	sh->zeroing_to = to;
	eng_unlock_index(db);

	rc = ipc_flock(db->fd, IPC_FLOCK_WRITE, from, to - from, 0);
	if (rc == 0) {
		rc = eng_space_zero(db->fd, from, to - from);
		ipc_flock(db->fd, IPC_FLOCK_UNLOCK, from, to - from, 0);
	}
	if (rc == 0 && to - *synced_upto >= PREZERO_SYNC_BYTES) {
		rc = eng_io_datasync(db->fd); /* the allocation's metadata */
		*synced_upto = to;
	}
	/* Failed (disk full): give the space back. The piece is still
	 * claimed, so no reservation can have entered it; one before it may
	 * still be writing, so only what lies past the tail goes. */
	if (rc) {
		uint64_t tail;
		if (eng_lock_index(db))
			return -ENOTRECOVERABLE;
		tail = atomic_load(&sh->file_gen) == gen ? sh->tail : UINT64_MAX;
		eng_unlock_index(db);
		if (tail <= from)
			eng_io_truncate(db->fd, from);
	}
	if (eng_lock_index(db))
		return -ENOTRECOVERABLE;
	sh->zeroing_from = sh->zeroing_to = 0;
	if (atomic_load(&sh->file_gen) != gen) {
		/* swapped meanwhile: those zeros went to the old file */
	} else if (rc == 0) {
		if (to > sh->zeroed_end)
			sh->zeroed_end = to;
		sh->disk_full = 0;
	} else if (rc == -ENOSPC || rc == -EDQUOT) {
		sh->disk_full = 1;
	}
	eng_unlock_index(db);
	return rc;
}

/* --- the compaction reserve ---------------------------------------------------- */

/* A compaction writes the live records into a new file before it can
 * free the old one: on a full disk it could never start, and deletes
 * alone free nothing. So the master keeps database.reserve, a file of
 * an eighth of the file system (at least 256 KiB, at most 64 MiB), made
 * only while at least twice that is free; a compaction short of space
 * deletes it first (the ballast-file trick), and the master makes it
 * again once the space is back, and prepares no zeros until then. */
#define RESERVE_MIN_BYTES (256u << 10)
#define RESERVE_MAX_BYTES (64ull << 20)

static void reserve_path(const struct eng_db *db, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", db->dir, ENG_RESERVE_FILE);
}

static int make_reserve(struct eng_db *db)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	struct statvfs vfs;
	uint64_t size, total, avail;
	int fd, rc = 0;

	reserve_path(db, path, sizeof(path));
	if (access(path, F_OK) == 0 || errno != ENOENT)
		return 0;
	if (statvfs(db->dir, &vfs) < 0)
		return -errno;
	total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	size = total / 8;
	size = size < RESERVE_MIN_BYTES ? RESERVE_MIN_BYTES :
	       size > RESERVE_MAX_BYTES ? RESERVE_MAX_BYTES : size;
	if (avail < 2 * size)
		return 0; /* not now: writes need the space more */
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if ((fd = eng_io_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0)
		return fd;
	if (eng_io_fallocate(fd, 0, 0, size) < 0) {
		/* no fallocate here: blocks must really be written */
		for (uint64_t o = 0; o < size && rc == 0; o += sizeof(zero_buf))
			rc = eng_io_pwrite_all(fd, zero_buf, sizeof(zero_buf), o);
	}
	if (rc == 0)
		rc = eng_io_fsync(fd);
	close(fd);
	if (rc == 0)
		rc = eng_io_rename(tmp, path);
	if (rc) {
		eng_io_unlink(tmp);
		return rc;
	}
	eng_log(ENG_LOG_INFO, "made %s (%" PRIu64 " bytes), so that a compaction can "
		"still run when the disk is full", path, size);
	return 0;
}

int eng_db_release_reserve(struct eng_db *db)
{
	char path[PATH_MAX];

	reserve_path(db, path, sizeof(path));
	atomic_store(&db->sh->reserve_released, 1);
	if (eng_io_unlink(path) < 0)
		return 0;
	eng_log(ENG_LOG_WARN, "the disk is short of space: deleted %s to make room for "
		"the compaction", path);
	return 1;
}

int eng_db_prezero(struct eng_db *db, int job_running)
{
	static uint64_t synced_upto;
	char path[PATH_MAX];
	int rc = 0;

	/* Best effort, retried every call; not while a job runs: a
	 * compaction short of space deleted the reserve for its new file. */
	if (!job_running)
		(void)make_reserve(db);
	/* After a compaction deleted the reserve, the reserve comes first:
	 * zeros prepared in the space it freed would leave the next
	 * compaction on a full disk nothing to write its file into (and
	 * appends extend the file without them anyway). */
	reserve_path(db, path, sizeof(path));
	if (atomic_load(&db->sh->reserve_released)) {
		if (access(path, F_OK) < 0)
			return 0;
		atomic_store(&db->sh->reserve_released, 0);
	}

	for (int i = 0; i < PREZERO_PIECES && rc == 0; i++)
		rc = prezero_one(db, &synced_upto);
	return rc;
}

/* --- a clean stop ------------------------------------------------------------- */

int eng_db_trim(struct eng_db *db)
{
	struct eng_shared *sh = db->sh;
	struct eng_mark m;
	char mark[ENG_MARK_SIZE];
	int rc, copy;

	if ((rc = eng_db_refresh(db)))
		return rc;
	if (atomic_load(&sh->poisoned))
		return 0; /* a failed fdatasync: vouch for nothing more */
	if ((sh->zeroed_end > sh->tail && (rc = eng_io_truncate(db->fd, sh->tail))) ||
	    (rc = eng_io_datasync(db->fd)))
		return rc;
	sh->zeroed_end = sh->tail;
	/* Every record is durable now: say so, so that damage to any of
	 * them is named as corruption at the next start, never truncated as a
	 * write torn by a crash. */
	eng_mark_read(db->map, &m, &copy);
	m.durable = sh->tail;
	if (atomic_load(&sh->lease) > m.lease)
		m.lease = atomic_load(&sh->lease);
	eng_mark_encode(mark, &m);
	if ((rc = eng_io_pwrite_all(db->fd, mark, sizeof(mark), eng_mark_off(!copy))) ||
	    (rc = eng_io_datasync(db->fd)))
		return rc;
	return 0;
}
