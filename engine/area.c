/* engine/area.c — the owner of the table areas, the current-table word
 * and the flip (see area.h for the states and who may call what).
 */
#include "engine/area.h"

#include "engine/db.h"
#include "engine/index.h"
#include "ipc/shm.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

static void release_pages(struct eng_shared *sh, uint32_t a)
{
	ipc_shm_release(eng_area_table(sh, a), sh->area_bytes);
}

void eng_area_install(struct eng_shared *sh, uint32_t a)
{
	struct eng_table *t = eng_area_table(sh, a);

	assert(a < ENG_AREAS);
	sh->areas[a].state = ENG_AREA_CURRENT;
	sh->areas[a].gen = t->gen;
	sh->areas[!a].state = ENG_AREA_FREE;
	atomic_store(&sh->cur, t->gen << 1 | a);
}

int eng_area_spare_free(const struct eng_shared *sh)
{
	return sh->areas[!eng_cur_area(atomic_load(&sh->cur))].state == ENG_AREA_FREE;
}

int eng_area_claim(struct eng_shared *sh, uint32_t a, pid_t pid)
{
	assert(ipc_mtx_held(&sh->index_mtx));
	assert(a < ENG_AREAS && a != eng_cur_area(atomic_load(&sh->cur)));
	if (sh->areas[a].state != ENG_AREA_FREE)
		return -EBUSY;
	sh->areas[a].state = ENG_AREA_BUILDING;
	sh->areas[a].builder = (uint32_t)pid;
	return 0;
}

void eng_area_abandon(struct eng_shared *sh, pid_t pid)
{
	assert(ipc_mtx_held(&sh->index_mtx));
	for (uint32_t a = 0; a < ENG_AREAS; a++)
		if (sh->areas[a].state == ENG_AREA_BUILDING &&
		    sh->areas[a].builder == (uint32_t)pid) {
			release_pages(sh, a);
			sh->areas[a].state = ENG_AREA_FREE;
		}
}

/* Is any process still reading a table of generation gen or older? */
static int read_by_someone(struct eng_shared *sh, uint64_t gen)
{
	for (int w = 0; w <= ENG_SEATS; w++) {
		uint64_t r = atomic_load(&sh->seats[w].reading);
		if (r && r <= gen && atomic_load(&sh->seats[w].pid))
			return 1;
	}
	return 0;
}

void eng_area_reclaim(struct eng_shared *sh)
{
	assert(ipc_mtx_held(&sh->index_mtx));
	for (uint32_t a = 0; a < ENG_AREAS; a++) {
		if (sh->areas[a].state != ENG_AREA_RETIRED ||
		    read_by_someone(sh, sh->areas[a].gen))
			continue;
		release_pages(sh, a);
		sh->areas[a].state = ENG_AREA_FREE;
	}
}

static void apply_flip(struct eng_shared *sh)
{
	struct eng_flip *f = &sh->flip;
	uint32_t old = eng_cur_area(atomic_load(&sh->cur));
	int sync_locked;

	assert(ipc_mtx_held(&sh->index_mtx));
	if (old != f->area) {
		/* a repair may meet either half of this done */
		assert(sh->areas[old].state == ENG_AREA_CURRENT ||
		       sh->areas[old].state == ENG_AREA_RETIRED);
		assert(sh->areas[f->area].state == ENG_AREA_BUILDING ||
		       sh->areas[f->area].state == ENG_AREA_CURRENT);
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
		sh->mark_copy = 1;
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

void eng_area_flip(struct eng_shared *sh, const struct eng_flip *f)
{
	assert(ipc_mtx_held(&sh->index_mtx));
	sh->flip = *f;
	sh->flip.active = 1;
	apply_flip(sh);
}

void eng_area_flip_finish(struct eng_shared *sh)
{
	assert(ipc_mtx_held(&sh->index_mtx));
	if (sh->flip.active)
		apply_flip(sh);
}
