/* engine/open.c — opening a data directory (master: the instance lock,
 * database.bin, the shared memory, recovery), attaching a worker or job
 * after fork, and closing (see store.h for the life cycle).
 *
 * Map of this file:
 *   the instance lock - open (master) - close - attach (worker, job) -
 *   the index snapshot at a clean stop.
 */
#include "engine/store.h"

#include "engine/db.h"
#include "engine/elog.h"
#include "engine/idxsnap.h"
#include "engine/index.h"
#include "engine/io.h"
#include "engine/record.h"
#include "engine/recover.h"
#include "engine/repair.h"
#include "engine/shared.h"
#include "ipc/flock.h"
#include "ipc/shm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOCK_WAIT_STEP_MS 100
#define LOCK_WAIT_LOG_MS 1000

/* --- the instance lock ----------------------------------------------------- */

/* The processes that have caskd.lock (dev/ino) open: a dead master's
 * workers that are still exiting. */
static int lock_holders(const struct stat *lk, int *pids, int max)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!proc)
		return 0;
	while ((de = readdir(proc)) && n < max) {
		char fddir[64], link[64 + 256];
		DIR *fds;
		struct dirent *fe;
		int pid = atoi(de->d_name);

		if (pid <= 0 || pid == (int)getpid())
			continue;
		snprintf(fddir, sizeof(fddir), "/proc/%d/fd", pid);
		if (!(fds = opendir(fddir)))
			continue;
		while ((fe = readdir(fds))) {
			struct stat st;
			if (fe->d_name[0] == '.')
				continue;
			snprintf(link, sizeof(link), "%s/%s", fddir, fe->d_name);
			if (stat(link, &st) == 0 && st.st_dev == lk->st_dev &&
			    st.st_ino == lk->st_ino) {
				pids[n++] = pid;
				break;
			}
		}
		closedir(fds);
	}
	closedir(proc);
	return n;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* One caskd per data directory: the master holds an OFD write lock on
 * caskd.lock for its whole life (workers inherit the descriptor, so they
 * keep it until they are gone too), and writes its pid there for the
 * message the next one prints. A separate file, not a range of
 * database.bin, so that compaction can swap database.bin without moving
 * the lock. When the master named there is dead but the lock is still
 * held, its workers are exiting (one may be inside an fdatasync): wait
 * for them, a bounded time, rather than refuse or start beside them. */
int eng_lock_dir(const char *dir, int wait_ms, int *lock_fd,
		 struct eng_recovery *rep)
{
	char *path, pid[24];
	int rc, n, fd, waited = 0, logged = 0;
	struct stat st;

	if ((rc = eng_path_join(&path, dir, ENG_LOCK_FILE)))
		return rc;
	fd = eng_io_open(path, O_RDWR | O_CREAT | O_CLOEXEC, ENG_FILE_MODE);
	if (fd < 0) {
		rc = fd;
		snprintf(rep->failed, sizeof(rep->failed), "opening %s", path);
		free(path);
		return rc;
	}
	for (;;) {
		rc = ipc_flock(fd, IPC_FLOCK_WRITE, 0, 0, 0);
		if (rc != -EAGAIN)
			break;
		n = (int)pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		rep->holder_pid = atoi(pid);
		rep->holder_dead = rep->holder_pid > 0 &&
				   kill(rep->holder_pid, 0) < 0 && errno == ESRCH;
		rep->nholders = fstat(fd, &st) == 0 ?
			lock_holders(&st, rep->holders, ENG_HOLDERS_MAX) : 0;
		if (!rep->holder_dead || waited >= wait_ms) {
			rc = -EBUSY;
			goto out_close;
		}
		if (waited - logged >= LOCK_WAIT_LOG_MS || !waited) {
			char list[ENG_HOLDERS_MAX * 12] = "";
			for (int i = 0, k = 0; i < rep->nholders; i++)
				k += snprintf(list + k, sizeof(list) - (size_t)k, "%s%d",
					      i ? ", " : "", rep->holders[i]);
			eng_log(ENG_LOG_WARN, "%s: caskd pid %d is gone, but %s still "
				"hold%s it (exiting); waiting up to %d ms", path,
				rep->holder_pid, rep->nholders ? list : "its processes",
				rep->nholders == 1 ? "s" : "", wait_ms - waited);
			logged = waited;
		}
		sleep_ms(LOCK_WAIT_STEP_MS);
		waited += LOCK_WAIT_STEP_MS;
	}
	if (rc) {
		snprintf(rep->failed, sizeof(rep->failed), "locking %s", path);
		goto out_close;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if ((rc = eng_io_truncate(fd, 0)) ||
	    (rc = eng_io_pwrite_all(fd, pid, (size_t)n, 0))) {
		snprintf(rep->failed, sizeof(rep->failed), "writing %s", path);
		goto out_close;
	}
	free(path);
	*lock_fd = fd;
	return 0;
out_close:
	free(path);
	close(fd);
	return rc;
}


/* --- open (master) ---------------------------------------------------------- */

static int init_file(struct eng_db *db, struct eng_recovery *rep)
{
	char hdr[ENG_FILE_HDR_SIZE];
	struct eng_mark m = { ENG_FILE_HDR_SIZE, 0 };
	int rc;

	/* A new or empty database.bin gets its header, made durable with the
	 * directory entry (ALICE: a created file needs its directory synced). */
	eng_file_hdr_encode(hdr, eng_file_id_new(), &m);
	if ((rc = eng_io_truncate(db->fd, 0)) ||
	    (rc = eng_io_pwrite_all(db->fd, hdr, sizeof(hdr), 0)) ||
	    (rc = eng_io_datasync(db->fd)) ||
	    (rc = eng_io_syncdir(db->dir)))
		return rc;
	rep->created = 1;
	return 0;
}

static int create_shared(struct eng_db *db, uint64_t max_keys,
			 struct eng_recovery *rep)
{
	uint64_t slots = eng_index_max_slots(max_keys);
	long page = sysconf(_SC_PAGESIZE);
	uint64_t area = (eng_index_table_bytes(slots) + (uint64_t)page - 1) &
			~((uint64_t)page - 1);
	struct eng_shared *sh;
	void *arena;
	int rc;

	if ((rc = ipc_shm_create(sizeof(*sh), (void **)&sh))) {
		snprintf(rep->failed, sizeof(rep->failed),
			 "allocating %zu bytes of shared memory", sizeof(*sh));
		return rc;
	}
	if ((rc = ipc_shm_reserve(area * ENG_AREAS, &arena))) {
		snprintf(rep->failed, sizeof(rep->failed),
			 "reserving %" PRIu64 " MiB of address space for the shared index "
			 "(set --max-keys to bound it)", area * ENG_AREAS >> 20);
		ipc_shm_destroy(sh, sizeof(*sh));
		return rc;
	}
	sh->magic = ENG_SHM_MAGIC;
	sh->version = ENG_SHM_VERSION;
	sh->hdr_size = (uint32_t)sizeof(*sh);
	sh->max_keys = max_keys;
	sh->arena = arena;
	sh->area_bytes = area;
	sh->area_slots = slots;
	sh->unwiped = UINT64_MAX;
	if ((rc = ipc_mtx_init(&sh->index_mtx)) ||
	    (rc = ipc_mtx_init(&sh->sync_mtx)) ||
	    (rc = ipc_mtx_init(&sh->job_mtx))) {
		snprintf(rep->failed, sizeof(rep->failed), "initialising the shared mutexes");
		ipc_shm_destroy(arena, area * ENG_AREAS);
		ipc_shm_destroy(sh, sizeof(*sh));
		return rc;
	}
	ipc_mtx_set_rank(&sh->index_mtx, ENG_RANK_INDEX);
	ipc_mtx_set_rank(&sh->sync_mtx, ENG_RANK_SYNC);
	ipc_mtx_set_rank(&sh->job_mtx, ENG_RANK_JOB);
	db->sh = sh;
	db->shm_size = sizeof(*sh);
	db->arena_size = area * ENG_AREAS;
	return 0;
}

/* Opens (creating) database.bin and maps it; *size is its length. */
static int open_file(struct eng_db *db, struct eng_recovery *rep,
		     uint64_t *size)
{
	struct eng_map *m;
	struct stat st;
	int fd, rc;

	fd = eng_io_open(db->path, O_RDWR | O_CREAT | O_CLOEXEC, ENG_FILE_MODE);
	if (fd < 0) {
		rc = fd;
		snprintf(rep->failed, sizeof(rep->failed), "opening %s", db->path);
		return rc;
	}
	close(fd);
	if ((rc = eng_map_open(db->path, 0, 1, &m))) {
		snprintf(rep->failed, sizeof(rep->failed), "mapping %s (1 TiB of address "
			 "space: an address-space limit such as LimitAS= must allow it)", db->path);
		return rc;
	}
	eng_db_set_current(db, m);
	if (fstat(db->fd, &st) < 0)
		return -errno;
	/* Shorter than a header: a crash while creating it, nothing else
	 * can be inside. */
	if (st.st_size < ENG_FILE_HDR_SIZE) {
		if ((rc = init_file(db, rep))) {
			snprintf(rep->failed, sizeof(rep->failed), "creating %s", db->path);
			return rc;
		}
		st.st_size = ENG_FILE_HDR_SIZE;
	}
	if ((uint64_t)st.st_size > ENG_MAP_BYTES) {
		snprintf(rep->failed, sizeof(rep->failed), "%s is larger than %llu bytes",
			 db->path, (unsigned long long)ENG_MAP_BYTES);
		return -EFBIG;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

/* A compaction that never finished leaves its new file: drop it. */
static void drop_stale_compaction(struct eng_db *db)
{
	char *p;

	if (eng_path_join(&p, db->dir, ENG_COMPACT_FILE))
		return;
	if (eng_io_unlink(p) == 0)
		eng_log(ENG_LOG_WARN, "removed %s: a compaction that did not finish "
			"(database.bin was not touched by it)", p);
	free(p);
}

/* mkdir -p: the parents too, so --data-dir /var/lib/caskd/data works. */
static int make_dirs(const char *dir)
{
	char p[PATH_MAX];
	size_t n = strlen(dir);
	int rc;

	if (n >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if ((rc = eng_io_mkdir(p, ENG_DIR_MODE)) && rc != -EEXIST)
			return rc;
		p[i] = i == n ? '\0' : '/';
	}
	return 0;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void db_init(struct eng_db *db)
{
	memset(db, 0, sizeof(*db));
	db->fd = -1;
	db->lock_fd = -1;
	db->seat = -1;
}

int eng_db_open(const struct eng_opts *o, struct eng_db *db,
		struct eng_recovery *rep)
{
	uint64_t size = 0;
	double t0 = mono_s();
	int rc;

	db_init(db);
	db->repair_index = eng_repair_index; /* inherited by workers and jobs */
	memset(rep, 0, sizeof(*rep));
	db->max_value = o->max_value;
	if (!o->dir[0]) {
		snprintf(rep->failed, sizeof(rep->failed),
			 "the data directory: --data-dir is empty");
		return -EINVAL;
	}
	if (!(db->dir = strdup(o->dir)))
		return -ENOMEM;
	if ((rc = eng_path_join(&db->path, o->dir, ENG_DB_FILE)))
		goto out_close;
	if ((rc = make_dirs(db->dir))) {
		snprintf(rep->failed, sizeof(rep->failed),
			 "creating the data directory %s", db->dir);
		goto out_close;
	}
	if ((rc = eng_lock_dir(db->dir, o->lock_wait_ms, &db->lock_fd, rep)))
		goto out_close;
	drop_stale_compaction(db);
	if ((rc = open_file(db, rep, &size)))
		goto out_close;
	rep->file_bytes = size;
	if ((rc = create_shared(db, o->max_keys, rep)))
		goto out_close;
	db->sh->mark_interval_ns = (uint64_t)o->mark_interval_ms * 1000000u;
	/* No other process yet: recovery builds the table as its only
	 * builder (no mutex, so it may do the file I/O it needs). */
	if ((rc = eng_recover(db, o, size, rep)))
		goto out_close;
	eng_cur_table(db->sh)->guard = &db->sh->index_mtx;
	rep->keys = eng_cur_table(db->sh)->live;
	rep->seconds = mono_s() - t0;
	return 0;
out_close:
	eng_db_close(db);
	return rc;
}

void eng_db_close(struct eng_db *db)
{
	eng_list_drop(db);
	eng_db_unmap(db);
	if (db->lock_fd >= 0)
		close(db->lock_fd);
	if (db->sh && db->seat < 0) {
		ipc_shm_destroy(db->sh->arena, db->arena_size);
		ipc_shm_destroy(db->sh, db->shm_size);
	}
	free(db->dir);
	free(db->path);
	free(db->buf);
	db_init(db);
}

/* --- attach (worker, job) ---------------------------------------------------- */

/* As LMDB checks mtb_magic and mtb_format: a region that is not this
 * build's layout (a stale or foreign mapping, a caskd of another
 * version) is refused before anything in it is trusted. */
static int shared_ok(const struct eng_shared *sh)
{
	return sh->magic == ENG_SHM_MAGIC && sh->version == ENG_SHM_VERSION &&
	       sh->hdr_size == sizeof(*sh);
}

int eng_db_attach(struct eng_db *db, int seat)
{
	if (!db->sh || !shared_ok(db->sh))
		return -EPROTO;
	/* The descriptor inherited from the master shares its open file
	 * description, and so its OFD locks: open our own. Older mappings
	 * inherited across fork are the master's business. */
	eng_db_unmap(db);
	db->chunk_lo = db->chunk_hi = 0;
	db->seat = seat;
	/* Only the master keeps replaced files until nobody maps them; a
	 * worker that inherited the flag kept every old file (and its disk
	 * space) for its whole life. */
	db->keep_old = 0;
	atomic_store(&db->sh->seats[seat].pid, getpid());
	return eng_db_refresh(db);
}

void eng_db_set_worker(struct eng_db *db, int seat, pid_t pid)
{
	atomic_store(&db->sh->seats[seat].pid, pid);
}

void eng_db_set_notify(struct eng_db *db, pid_t pid)
{
	db->sh->notify_pid = pid;
}

int eng_db_save_index(struct eng_db *db)
{
	struct eng_shared *sh = db->sh;
	int rc;

	if ((rc = eng_db_refresh(db)))
		return rc;
	if (atomic_load(&sh->poisoned))
		return -EIO;
	/* the newest version in the log, not the newest handed out: a
	 * group member's position is read from it at the next start
	 * (versions resume above the lease in the file's mark anyway) */
	return eng_idx_write_ordered(db, db->dir, eng_cur_table(sh), eng_file_id(db->map),
				     sh->tail, atomic_load(&sh->top_version));
}

