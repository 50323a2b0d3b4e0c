/* engine/backup.c — the consistent cut behind GET /admin/snapshot (see
 * store.h). The cut is the same one a compaction starts from: the lowest
 * offset any write in flight reserved, below which every record is
 * whole and published. The bytes are the live file's, under a header
 * of the snapshot's own. */
#include "engine/store.h"

#include "engine/record.h"
#include "engine/shared.h"
#include "engine/db.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

uint64_t eng_backup_target(struct eng_db *db, uint64_t *file_gen)
{
	uint64_t t;

	if (eng_lock_index(db))
		return 0;
	t = db->sh->tail;
	*file_gen = atomic_load(&db->sh->file_gen);
	eng_unlock_index(db);
	return t;
}

/* Maps [0, end) of db's current file privately, its first page (the
 * only one written, so the only one copied) holding a header of the
 * snapshot's own. Its mark covers all of end: every write in the cut
 * was acknowledged (in group mode the snapshot is sent only once end is
 * durable), so a copy that stops short of end is damage to `caskd check` and
 * to a start, never a torn tail of writes that were not. */
static int map_cut(struct eng_db *db, uint64_t end, uint64_t lease,
		   struct eng_backup *b)
{
	struct eng_mark m = { end, lease };
	long page = sysconf(_SC_PAGESIZE);
	void *p;
	int rc;

	p = mmap(NULL, (size_t)end, PROT_READ, MAP_PRIVATE, db->fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	if (mprotect(p, (size_t)page, PROT_READ | PROT_WRITE) < 0) {
		rc = -errno;
		munmap(p, (size_t)end);
		return rc;
	}
	eng_file_hdr_encode(p, eng_file_id_new(), &m);
	b->base = p;
	b->end = end;
	return 0;
}

int eng_backup_begin(struct eng_db *db, uint64_t target, uint64_t file_gen,
		     struct eng_backup *b)
{
	struct eng_shared *sh = db->sh;
	uint64_t end, lease;
	int rc;

	if ((rc = eng_db_refresh(db)))
		return rc;
	if ((rc = eng_lock_index(db)))
		return rc;
	if (atomic_load(&sh->file_gen) != file_gen || db->file_gen != file_gen) {
		eng_unlock_index(db);
		return -ESTALE;
	}
	end = eng_written_below_locked(sh);
	lease = atomic_load(&sh->lease); /* above every version in the cut */
	eng_unlock_index(db);
	if (end < target)
		return -EAGAIN;
	/* db->fd stays this file_gen's: only this thread refreshes db */
	return map_cut(db, end, lease, b);
}

void eng_backup_end(struct eng_db *db, struct eng_backup *b)
{
	(void)db;
	if (b->base)
		munmap((void *)b->base, (size_t)b->end);
	b->base = NULL;
}
