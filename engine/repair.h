/* engine/repair.h — what the engine does for a process that died.
 *
 * Owns (engine/repair.c): the index mutex's EOWNERDEAD repair and the
 * master's clean-up of a dead worker's seat (eng_db_reap_worker in
 * store.h). Writes nothing of its own: it finishes the dead holder's
 * transitions through their owners (area.c's flip, write.c's publish,
 * index.c's slots).
 */
#ifndef CASKD_ENGINE_REPAIR_H
#define CASKD_ENGINE_REPAIR_H

#include "engine/shared.h"
#include "ipc/mutex.h"

#include <sys/types.h>

/* The index mutex's repair (ipc_mtx_repair_fn; arg is the struct eng_db
 * of the locker): finishes what the dead holder was doing, then checks
 * the table against the log. Runs with the mutex held; -EUCLEAN when the
 * index cannot be trusted. eng_db_open installs it as db->repair_index. */
int eng_repair_index(struct ipc_mtx *m, pid_t dead, void *arg);

/* Master, once a worker or job process is reaped and its write undone:
 * its seat reads nothing, maps nothing, and is free. */
void eng_seat_vacate(struct eng_shared *sh, int seat);

#endif
