/* engine/backup.c — the consistent cut behind GET /admin/snapshot (see
 * store.h). The cut is the same one a compaction starts from: the lowest
 * offset any write in flight reserved, below which every record is
 * whole and published. */
#include "engine/store.h"

#include "engine/record.h"
#include "engine/shared.h"
#include "engine/store_int.h"

#include <errno.h>
#include <string.h>

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

int eng_backup_begin(struct eng_db *db, uint64_t target, uint64_t file_gen,
		     struct eng_backup *b)
{
	struct eng_shared *sh = db->sh;
	uint64_t end;
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
	eng_unlock_index(db);
	if (end < target)
		return -EAGAIN;
	b->map = db->cur;
	b->base = db->map;
	b->end = end;
	db->cur->refs++;
	return 0;
}

void eng_backup_end(struct eng_db *db, struct eng_backup *b)
{
	if (b->map)
		eng_map_put(db, b->map);
	b->map = NULL;
}
