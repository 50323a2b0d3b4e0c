/* engine/store.c — opening, attaching, mapping and reading the store (see
 * store.h for the life cycle; writes are in write.c, recovery in
 * recover.c, prepared space in space.c).
 *
 * Map of this file:
 *   the index mutex and its repair hook - the instance lock - open
 *   (master) - mappings and refresh - attach (worker) - get - reap a dead
 *   worker - stats.
 */
#include "engine/store.h"

#include "engine/elog.h"
#include "engine/errors.h"
#include "engine/idxsnap.h"
#include "engine/index.h"
#include "engine/io.h"
#include "engine/record.h"
#include "engine/shared.h"
#include "engine/store_int.h"
#include "ipc/flock.h"
#include "ipc/shm.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A reader that sees a batch being published spins this many times for
 * it before it takes the mutex (which also repairs a dead publisher). */
#define PUB_SPINS 4096
#define GET_TRIES 64
#define LOCK_WAIT_STEP_MS 100
#define LOCK_WAIT_LOG_MS 1000

/* --- the index mutex ------------------------------------------------------ */

static int db_repair(struct ipc_mtx *m, pid_t dead, void *arg);

int eng_lock_index(struct eng_db *db)
{
	db->mutex_locks++;
	return ipc_mtx_lock(&db->sh->index_mtx, db_repair, db);
}

void eng_unlock_index(struct eng_db *db)
{
	ipc_mtx_unlock(&db->sh->index_mtx);
}

void eng_apply_flip(struct eng_shared *sh)
{
	struct eng_flip *f = &sh->flip;
	uint32_t old = eng_cur_area(atomic_load(&sh->cur));
	int sync_locked;

	assert(ipc_mtx_held(&sh->index_mtx));
	if (old != f->area) {
		sh->areas[old].state = ENG_AREA_RETIRED;
		sh->areas[f->area].state = ENG_AREA_CURRENT;
		sh->areas[f->area].gen = f->gen;
		eng_area_table(sh, f->area)->guard = &sh->index_mtx;
	}
	if (f->file_gen != atomic_load(&sh->file_gen)) {
		/* A new database.bin: its header holds mark A {header size,
		 * lease} from its creation and mark B {tail, lease} from the
		 * swap, both synced. */
		sync_locked = eng_lock_sync(sh) == 0;
		sh->tail = f->tail;
		sh->zeroed_end = f->zeroed_end;
		sh->unwiped = UINT64_MAX;
		sh->mark.durable = f->durable;
		sh->mark.lease = f->lease;
		sh->mark_slot = 1;
		sh->mark_file_gen = f->file_gen;
		atomic_store(&sh->del_end, 0);
		atomic_store(&sh->durable_end, f->durable);
		atomic_store(&sh->synced_tail, f->durable);
		atomic_store(&sh->file_id, f->file_id);
		atomic_store(&sh->file_gen, f->file_gen);
		if (sync_locked)
			ipc_mtx_unlock(&sh->sync_mtx);
	}
	atomic_store(&sh->cur, f->gen << 1 | f->area);
	f->active = 0;
}

/* EOWNERDEAD: finish what the dead holder was doing, then check the table
 * against the log. Runs with the mutex held. */
static int db_repair(struct ipc_mtx *m, pid_t dead, void *arg)
{
	struct eng_db *db = arg;
	struct eng_shared *sh = db->sh;
	struct eng_table *t;
	int rc = 0;

	(void)m;
	if (sh->flip.active)
		eng_apply_flip(sh); /* a rebuild died half way through its flip */
	if ((rc = eng_db_refresh(db)))
		goto out;
	t = eng_cur_table(sh);
	/* Whatever change the dead holder was in (a claim or a release in
	 * reserve, not only a publish) may have left a slot's count odd. */
	eng_index_unstick(t);
	for (int w = 0; dead > 0 && w <= ENG_WORKER_SLOTS; w++) {
		struct eng_wslot *ws = &sh->wslots[w];
		if (atomic_load(&ws->pid) != dead)
			continue;
		if (ws->publishing) {
			if ((rc = eng_finish_publish(db, w)))
				goto out;
		} else if (!ws->inflight.off) {
			/* killed in reserve before it named its range: the
			 * keys it marked belong to nothing */
			eng_index_free_writer(t, (uint8_t)(w + 1));
		}
	}
	if (atomic_load(&sh->pub_seq) & 1)
		atomic_fetch_add(&sh->pub_seq, 1);
	rc = eng_index_verify(t, db->map, sh->tail);
out:
	eng_log(rc ? ENG_LOG_ERROR : ENG_LOG_WARN,
		"pid %d died holding the index mutex; index %s", (int)dead,
		rc ? "cannot be trusted: restarting through recovery" : "verified");
	return rc ? -EUCLEAN : 0;
}

/* --- the instance lock ----------------------------------------------------- */

int eng_path_join(char **out, const char *dir, const char *name)
{
	if (asprintf(out, "%s/%s", dir, name) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

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

/* --- mappings --------------------------------------------------------------- */

int eng_map_open(const char *path, int readonly, uint64_t file_gen,
		 struct eng_map **out)
{
	struct eng_map *m = calloc(1, sizeof(*m));
	void *p;
	int rc;

	if (!m)
		return -ENOMEM;
	m->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (m->fd < 0) {
		rc = -errno;
		free(m);
		return rc;
	}
	p = mmap(NULL, ENG_MAP_BYTES, PROT_READ, MAP_SHARED | MAP_NORESERVE,
		 m->fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		close(m->fd);
		free(m);
		return rc;
	}
	m->base = p;
	m->file_gen = file_gen;
	*out = m;
	return 0;
}

void eng_map_close(struct eng_map *m)
{
	if (!m)
		return;
	munmap((void *)m->base, ENG_MAP_BYTES);
	close(m->fd);
	free(m);
}

static void set_current(struct eng_db *db, struct eng_map *m)
{
	db->cur = m;
	db->map = m ? m->base : NULL;
	db->fd = m ? m->fd : -1;
	db->file_gen = m ? m->file_gen : 0;
}

/* The oldest generation this eng_db maps, for the master's release. */
static void publish_oldest(struct eng_db *db)
{
	uint64_t oldest = db->cur ? db->cur->file_gen : 0;

	if (db->wslot < 0 || !db->sh)
		return;
	for (struct eng_map *m = db->cur ? db->cur->next : NULL; m; m = m->next)
		if (m->file_gen < oldest)
			oldest = m->file_gen;
	atomic_store(db->is_syncer ? &db->sh->wslots[db->wslot].oldest_gen_sync
				   : &db->sh->wslots[db->wslot].oldest_gen, oldest);
}

void eng_map_put(struct eng_db *db, struct eng_map *m)
{
	assert(m && m->refs > 0);
	if (--m->refs || m == db->cur)
		return;
	/* an old mapping that was kept only for this reference */
	for (struct eng_map **pp = &db->cur->next; *pp; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			eng_map_close(m);
			publish_oldest(db);
			return;
		}
}

void eng_val_release(struct eng_db *db, struct eng_val *v)
{
	if (v->map)
		eng_map_put(db, v->map);
	v->map = NULL;
}

int eng_db_refresh(struct eng_db *db)
{
	struct eng_shared *sh = db->sh;

	for (int tries = 0; tries < GET_TRIES; tries++) {
		uint64_t gen = atomic_load(&sh->file_gen);
		uint64_t id = atomic_load(&sh->file_id);
		struct eng_map *m, *olds;
		int rc;

		if (db->cur && gen == db->file_gen)
			return 0;
		if ((rc = eng_map_open(db->path, 0, gen, &m)))
			return rc;
		/* The file the path names may already be the next one (its
		 * rename comes before its flip): make sure it is this gen's. */
		if (eng_file_id(m->base) != id || atomic_load(&sh->file_gen) != gen) {
			eng_map_close(m);
			continue;
		}
		olds = db->cur ? db->cur->next : NULL;
		if (db->cur) {
			eng_lease_drop(db);
			if (db->cur->refs || db->keep_old) {
				db->cur->next = olds;
				olds = db->cur;
			} else {
				eng_map_close(db->cur);
			}
		}
		m->next = olds;
		set_current(db, m);
		publish_oldest(db);
		return 0;
	}
	return -ESTALE;
}

static int mapped_somewhere(struct eng_shared *sh, uint64_t gen)
{
	for (int w = 0; w <= ENG_WORKER_SLOTS; w++) {
		struct eng_wslot *ws = &sh->wslots[w];
		uint64_t a = atomic_load(&ws->oldest_gen), b = atomic_load(&ws->oldest_gen_sync);
		if (atomic_load(&ws->pid) && ((a && a <= gen) || (b && b <= gen)))
			return 1;
	}
	return 0;
}

void eng_db_release_old(struct eng_db *db)
{
	struct eng_map **pp;

	/* follow a compaction first: the master maps database.bin only
	 * for its own periodic work (prezeroing, which a full disk or a
	 * released reserve suspends), so without this it kept the old
	 * file as its current one */
	(void)eng_db_refresh(db);
	pp = db->cur ? &db->cur->next : NULL;

	while (pp && *pp) {
		struct eng_map *m = *pp;
		if (m->refs || mapped_somewhere(db->sh, m->file_gen)) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		eng_map_close(m);
	}
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
	set_current(db, m);
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
	db->wslot = -1;
}

int eng_db_open(const struct eng_opts *o, struct eng_db *db,
		struct eng_recovery *rep)
{
	uint64_t size = 0;
	double t0 = mono_s();
	int rc;

	db_init(db);
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

void eng_db_unmap(struct eng_db *db)
{
	struct eng_map *m = db->cur ? db->cur->next : NULL;

	while (m) {
		struct eng_map *n = m->next;
		eng_map_close(m);
		m = n;
	}
	if (db->cur)
		eng_map_close(db->cur);
	set_current(db, NULL);
}

void eng_db_close(struct eng_db *db)
{
	eng_list_drop(db);
	eng_db_unmap(db);
	if (db->lock_fd >= 0)
		close(db->lock_fd);
	if (db->sh && db->wslot < 0) {
		ipc_shm_destroy(db->sh->arena, db->arena_size);
		ipc_shm_destroy(db->sh, db->shm_size);
	}
	free(db->dir);
	free(db->path);
	free(db->buf);
	db_init(db);
}

/* --- attach (worker, job) ---------------------------------------------------- */

int eng_db_attach(struct eng_db *db, int wslot)
{
	/* The descriptor inherited from the master shares its open file
	 * description, and so its OFD locks: open our own. Older mappings
	 * inherited across fork are the master's business. */
	if (db->cur) {
		struct eng_map *m = db->cur->next;
		while (m) {
			struct eng_map *n = m->next;
			eng_map_close(m);
			m = n;
		}
		eng_map_close(db->cur);
		set_current(db, NULL);
	}
	db->lease_lo = db->lease_hi = 0;
	db->wslot = wslot;
	/* Only the master keeps replaced files until nobody maps them; a
	 * worker that inherited the flag kept every old file (and its disk
	 * space) for its whole life. */
	db->keep_old = 0;
	atomic_store(&db->sh->wslots[wslot].pid, getpid());
	return eng_db_refresh(db);
}

void eng_db_set_worker(struct eng_db *db, int wslot, pid_t pid)
{
	atomic_store(&db->sh->wslots[wslot].pid, pid);
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
	return eng_idx_write(db, db->dir, eng_cur_table(sh), eng_file_id(db->map),
			     sh->tail, sh->seq);
}

/* --- get -------------------------------------------------------------------- */

static int key_ok(size_t klen)
{
	return klen >= 1 && klen <= ENG_KEY_MAX;
}

/* Publishes that this process reads the current table: a retired area is
 * not freed under it (see the reclaim in rebuild.c). Returns cur. */
static uint64_t begin_read(struct eng_shared *sh, _Atomic uint64_t *reading)
{
	for (;;) {
		uint64_t cur = atomic_load(&sh->cur);
		atomic_store(reading, eng_cur_gen(cur)); /* seq_cst: before the re-check */
		if (atomic_load(&sh->cur) == cur)
			return cur;
	}
}

/* With the mutex: for a reader that met a slot left odd or a batch that
 * seemed never to finish publishing (the lock repairs both). */
static int get_locked(struct eng_db *db, const void *key, uint16_t klen,
		      struct eng_khash *kh, struct eng_entry *e)
{
	struct eng_find f;
	int rc;

	if ((rc = eng_db_refresh(db)) || (rc = eng_lock_index(db)))
		return rc;
	if (db->file_gen != atomic_load(&db->sh->file_gen)) {
		rc = -EAGAIN; /* swapped since: the caller looks again */
	} else {
		struct eng_table *t = eng_cur_table(db->sh);
		eng_index_find(t, db->map, key, klen,
			       eng_index_hash_for(t, key, klen, kh), &f);
		if (f.slot == ENG_NO_SLOT) {
			rc = 0;
		} else {
			rc = eng_index_read_slot(t, f.slot, e);
		}
	}
	eng_unlock_index(db);
	return rc;
}

static int record_intact(const char *map, const struct eng_entry *e)
{
	const char *rec = map + e->voff - e->klen - ENG_REC_HDR_SIZE;
	struct eng_rec_hdr h;

	if (eng_rec_check_hdr(rec, eng_rec_size(e->klen, e->vlen), &h) ||
	    h.version != e->version || h.vlen != e->vlen ||
	    eng_rec_check_data(rec, &h))
		return -EBADMSG;
	return 0;
}

static int wait_publish_done(struct eng_shared *sh, uint32_t *p)
{
	for (int i = 0; i < PUB_SPINS; i++) {
		*p = atomic_load_explicit(&sh->pub_seq, memory_order_acquire);
		if (!(*p & 1))
			return 0;
	}
	return -EAGAIN;
}

int eng_get(struct eng_db *db, const void *key, size_t klen,
	    struct eng_val *v)
{
	struct eng_shared *sh = db->sh;
	_Atomic uint64_t *reading = &sh->wslots[db->wslot].reading;
	struct eng_khash kh = { .hash = 0 }; /* under the seed of the table probed */
	struct eng_entry e;
	int rc = -EAGAIN;

	memset(v, 0, sizeof(*v));
	if (!key_ok(klen))
		return -EINVAL;
	for (int tries = 0; tries < GET_TRIES; tries++) {
		uint64_t cur;
		uint32_t p1;
		struct eng_table *t;
		int stale;

		if (atomic_load(&sh->file_gen) != db->file_gen &&
		    (rc = eng_db_refresh(db)))
			return rc;
		cur = begin_read(sh, reading);
		t = eng_area_table(sh, eng_cur_area(cur));
		if (t->file_gen != db->file_gen) {
			/* a compaction's flip in progress: the next try maps
			 * the new file */
			atomic_store_explicit(reading, 0, memory_order_release);
			rc = -EAGAIN;
			continue;
		}
		if (wait_publish_done(sh, &p1) < 0) {
			atomic_store_explicit(reading, 0, memory_order_release);
			rc = -EAGAIN;
			break; /* a publish that does not end: lock */
		}
		rc = eng_index_lookup(t, db->map, key, (uint16_t)klen,
				      eng_index_hash_for(t, key, klen, &kh), &e);
		atomic_thread_fence(memory_order_acquire);
		stale = atomic_load_explicit(&sh->pub_seq, memory_order_relaxed) != p1 ||
			atomic_load(&sh->cur) != cur;
		atomic_store_explicit(reading, 0, memory_order_release);
		if (rc == -EAGAIN)
			break; /* a slot left odd: lock (and repair) */
		if (!stale)
			break;
		rc = -EAGAIN;
	}
	for (int tries = 0; rc == -EAGAIN && tries < GET_TRIES; tries++)
		rc = get_locked(db, key, (uint16_t)klen, &kh, &e);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		v->end = atomic_load(&sh->del_end);
		return -ENOENT;
	}
	/* The start-up may have trusted an index snapshot instead of reading
	 * this record: check it before it is served, never send damage. */
	if ((rc = record_intact(db->map, &e))) {
		v->end = e.voff - e.klen - ENG_REC_HDR_SIZE; /* where the damage is */
		return rc;
	}
	v->data = db->map + e.voff;
	v->len = e.vlen;
	v->version = e.version;
	v->end = e.voff + e.vlen;
	v->map = db->cur;
	db->cur->refs++;
	return 0;
}

uint64_t eng_durable_end(struct eng_db *db)
{
	return atomic_load(&db->sh->durable_end);
}

/* --- reap a dead worker (master) --------------------------------------- */

int eng_db_reap_worker(struct eng_db *db, int wslot)
{
	struct eng_shared *sh = db->sh;
	struct eng_wslot *ws = &sh->wslots[wslot];
	struct eng_inflight in;
	int rc;

	if ((rc = eng_db_refresh(db)) || (rc = eng_lock_index(db)))
		return rc;
	in = ws->inflight;
	eng_unlock_index(db);
	/* What is left was never published, and its keys stay busy until
	 * the wipe is done, so nobody else touches the range meanwhile. */
	if (in.off && (rc = eng_io_discard(db->fd, in.off, in.len)))
		return rc;
	if ((rc = eng_lock_index(db)))
		return rc;
	if (in.off) {
		struct eng_table *t = eng_cur_table(sh);
		if (in.nrec == 1 && in.slot != UINT32_MAX)
			eng_index_release(t, in.slot);
		else
			eng_index_free_writer(t, (uint8_t)(wslot + 1));
		ws->inflight.off = 0;
	}
	atomic_store(&ws->reading, 0);
	atomic_store(&ws->oldest_gen, 0);
	atomic_store(&ws->oldest_gen_sync, 0);
	atomic_store(&ws->pid, 0);
	eng_unlock_index(db);
	if (in.off)
		eng_log(ENG_LOG_WARN, "wiped 1 unfinished write of dead worker slot %d "
			"(%" PRIu64 " bytes at offset %" PRIu64 "; never acknowledged)",
			wslot, in.len, in.off);
	return 0;
}

/* --- stats ------------------------------------------------------------------- */

void eng_stats(struct eng_db *db, struct eng_stats *st)
{
	struct eng_shared *sh = db->sh;
	struct eng_table *t = eng_area_table(sh, eng_cur_area(atomic_load(&sh->cur)));

	memset(st, 0, sizeof(*st));
	st->keys = __atomic_load_n(&t->live, __ATOMIC_RELAXED);
	st->capacity = eng_index_capacity(t);
	st->capacity_max = sh->max_keys;
	if (st->capacity_max && st->capacity > st->capacity_max)
		st->capacity = st->capacity_max;
	st->table_slots = __atomic_load_n(&t->nslots, __ATOMIC_RELAXED);
	st->log_bytes = __atomic_load_n(&sh->tail, __ATOMIC_RELAXED);
	st->live_bytes = __atomic_load_n(&t->live_bytes, __ATOMIC_RELAXED);
	st->fsync_total = atomic_load(&sh->fsync_total);
	st->fsync_ns_total = atomic_load(&sh->fsync_ns_total);
	st->fsync_errors = atomic_load(&sh->fsync_errors);
	for (int i = 0; i < ENG_STATS_FSYNC_BUCKETS; i++)
		st->fsync_hist[i] = atomic_load(&sh->fsync_hist[i]);
	for (int i = 0; i < ENG_STATS_WPF_BUCKETS; i++)
		st->wpf_hist[i] = atomic_load(&sh->wpf_hist[i]);
	st->wpf_sum = atomic_load(&sh->wpf_sum);
	st->lock_wait_ns = atomic_load(&sh->index_mtx.wait_ns) +
			   atomic_load(&sh->sync_mtx.wait_ns);
	st->mutex_repairs = atomic_load(&sh->index_mtx.repairs);
	st->compactions_started = atomic_load(&sh->compactions[0]);
	st->compactions_done = atomic_load(&sh->compactions[1]);
	st->compactions_failed = atomic_load(&sh->compactions[2]);
	st->compact_ns_total = atomic_load(&sh->compact_ns_total);
	st->reclaimed_bytes = atomic_load(&sh->reclaimed_total);
	st->shm_bytes = sizeof(*sh) + eng_index_table_bytes(st->table_slots);
	st->version_lease = atomic_load(&sh->lease);
	st->poisoned = (int)atomic_load(&sh->poisoned);
}
