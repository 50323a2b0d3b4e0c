/* engine/repair.c — what the engine does for a process that died: the
 * index mutex's EOWNERDEAD repair (finish the dead holder's flip or
 * publish, then verify the table against the log) and the master's
 * clean-up of a dead worker's unfinished write.
 *
 * The repair is handed to the index mutex through db->repair_index (set
 * by engine/open.c), so that engine/db.c, below everything, never calls
 * up into this file.
 */
#include "engine/repair.h"

#include "engine/area.h"
#include "engine/db.h"
#include "engine/elog.h"
#include "engine/index.h"
#include "engine/io.h"
#include "engine/shared.h"
#include "engine/write.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>

/* EOWNERDEAD: finish what the dead holder was doing, then check the table
 * against the log. Runs with the mutex held. */
int eng_repair_index(struct ipc_mtx *m, pid_t dead, void *arg)
{
	struct eng_db *db = arg;
	struct eng_shared *sh = db->sh;
	struct eng_table *t;
	int rc = 0;

	(void)m;
	eng_area_flip_finish(sh); /* a rebuild that died half way through its flip */
	if ((rc = eng_db_refresh(db)))
		goto out;
	t = eng_cur_table(sh);
	/* Whatever change the dead holder was in (a claim or a release in
	 * reserve, not only a publish) may have left a slot's count odd. */
	eng_index_unstick(t);
	for (int w = 0; dead > 0 && w <= ENG_SEATS; w++) {
		struct eng_seat *ws = &sh->seats[w];
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

/* --- reap a dead worker (master) --------------------------------------- */

void eng_seat_vacate(struct eng_shared *sh, int seat)
{
	struct eng_seat *ws = &sh->seats[seat];

	atomic_store(&ws->reading, 0);
	atomic_store(&ws->oldest_gen, 0);
	atomic_store(&ws->oldest_gen_sync, 0);
	atomic_store(&ws->pid, 0);
}

int eng_db_reap_worker(struct eng_db *db, int seat)
{
	struct eng_shared *sh = db->sh;
	struct eng_seat *ws = &sh->seats[seat];
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
			eng_index_free_writer(t, (uint8_t)(seat + 1));
		ws->inflight.off = 0;
	}
	eng_seat_vacate(sh, seat);
	eng_unlock_index(db);
	if (in.off)
		eng_log(ENG_LOG_WARN, "wiped %" PRIu32 " unfinished write%s of the dead worker "
			"in seat %d (%" PRIu64 " bytes at offset %" PRIu64 "; never acknowledged)",
			in.nrec, in.nrec == 1 ? "" : "s", seat, in.len, in.off);
	return 0;
}

