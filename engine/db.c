/* engine/db.c — the bottom of the store: mappings of database.bin and
 * following a compaction's swap, the chunk lock, and the mutex helpers
 * (see db.h). Everything else in the engine calls down into this file;
 * it calls nothing above it (the index mutex's repair is handed in).
 *
 * Map of this file:
 *   the mutexes - mappings - refresh and release of old files - the
 *   chunk lock - the in-flight low-water mark.
 */
#include "engine/db.h"

#include "engine/record.h"
#include "engine/shared.h"
#include "ipc/flock.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* A refresh that keeps meeting a file renamed over the one it mapped
 * gives up after this many tries (the caller sees -ESTALE). */
#define REFRESH_TRIES 64

/* --- the mutexes ------------------------------------------------------------ */

int eng_lock_index(struct eng_db *db)
{
	db->mutex_locks++;
	return ipc_mtx_lock(&db->sh->index_mtx, db->repair_index, db);
}

void eng_unlock_index(struct eng_db *db)
{
	ipc_mtx_unlock(&db->sh->index_mtx);
}

static int sync_repair(struct ipc_mtx *m, pid_t dead, void *arg)
{
	struct eng_shared *sh = arg;
	(void)m;
	(void)dead;
	sh->syncing = 0; /* its sync never ended; the next waiter redoes it */
	return 0;
}

int eng_lock_sync(struct eng_shared *sh)
{
	return ipc_mtx_lock(&sh->sync_mtx, sync_repair, sh);
}

void eng_unlock_sync(struct eng_shared *sh)
{
	ipc_mtx_unlock(&sh->sync_mtx);
}

int eng_lock_jobs(struct eng_shared *sh)
{
	return ipc_mtx_lock(&sh->job_mtx, NULL, NULL);
}

void eng_unlock_jobs(struct eng_shared *sh)
{
	ipc_mtx_unlock(&sh->job_mtx);
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

int eng_path_join(char **out, const char *dir, const char *name)
{
	if (asprintf(out, "%s/%s", dir, name) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
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

void eng_db_set_current(struct eng_db *db, struct eng_map *m)
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

	if (db->seat < 0 || !db->sh)
		return;
	for (struct eng_map *m = db->cur ? db->cur->next : NULL; m; m = m->next)
		if (m->file_gen < oldest)
			oldest = m->file_gen;
	atomic_store(db->is_syncer ? &db->sh->seats[db->seat].oldest_gen_sync
				   : &db->sh->seats[db->seat].oldest_gen, oldest);
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

	for (int tries = 0; tries < REFRESH_TRIES; tries++) {
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
			eng_chunk_unlock(db);
			if (db->cur->refs || db->keep_old) {
				db->cur->next = olds;
				olds = db->cur;
			} else {
				eng_map_close(db->cur);
			}
		}
		m->next = olds;
		eng_db_set_current(db, m);
		publish_oldest(db);
		return 0;
	}
	return -ESTALE;
}

static int mapped_somewhere(struct eng_shared *sh, uint64_t gen)
{
	for (int w = 0; w <= ENG_SEATS; w++) {
		struct eng_seat *ws = &sh->seats[w];
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
	eng_db_set_current(db, NULL);
}


/* --- the chunk lock ------------------------------------------------------------ */

static uint64_t align_up(uint64_t n, uint64_t a)
{
	return (n + a - 1) & ~(a - 1);
}

int eng_chunk_lock(struct eng_db *db, uint64_t off, uint64_t len)
{
	uint64_t lo = off & ~(ENG_CHUNK_BYTES - 1);
	uint64_t hi = align_up(off + len, ENG_CHUNK_BYTES);
	int rc;

	if (lo >= db->chunk_lo && hi <= db->chunk_hi)
		return 0;
	/* Never waits: the master zeroes only beyond every reserved
	 * chunk (see the header). */
	if ((rc = ipc_flock(db->fd, IPC_FLOCK_READ, lo, hi - lo, 1)))
		return rc;
	if (db->chunk_hi > db->chunk_lo) {
		if (db->chunk_lo < lo)
			ipc_flock(db->fd, IPC_FLOCK_UNLOCK, db->chunk_lo,
				  (db->chunk_hi < lo ? db->chunk_hi : lo) - db->chunk_lo, 0);
		if (db->chunk_hi > hi)
			ipc_flock(db->fd, IPC_FLOCK_UNLOCK, hi, db->chunk_hi - hi, 0);
	}
	db->chunk_lo = lo;
	db->chunk_hi = hi;
	return 0;
}

void eng_chunk_unlock(struct eng_db *db)
{
	if (db->chunk_hi > db->chunk_lo && db->fd >= 0)
		ipc_flock(db->fd, IPC_FLOCK_UNLOCK, db->chunk_lo,
			  db->chunk_hi - db->chunk_lo, 0);
	db->chunk_lo = db->chunk_hi = 0;
}

/* --- the in-flight low-water mark ------------------------------------------ */

uint64_t eng_written_below_locked(struct eng_shared *sh)
{
	uint64_t low = sh->tail < sh->unwiped ? sh->tail : sh->unwiped;

	assert(ipc_mtx_held(&sh->index_mtx));
	for (int w = 0; w <= ENG_SEATS; w++) {
		uint64_t off = sh->seats[w].inflight.off;
		if (off && off < low)
			low = off;
	}
	return low;
}

uint64_t eng_db_written_below(struct eng_db *db)
{
	uint64_t low;

	if (eng_lock_index(db))
		return 0;
	low = eng_written_below_locked(db->sh);
	eng_unlock_index(db);
	return low;
}
