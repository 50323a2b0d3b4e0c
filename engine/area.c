/* engine/area.c — the owner of the table areas and of the flip (see
 * area.h for the states and who may call what).
 */
#include "engine/area.h"

#include "engine/db.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>

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
			eng_unlock_sync(sh);
	}
	atomic_store(&sh->cur, f->gen << 1 | f->area);
	f->active = 0;
}
