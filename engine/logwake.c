/* engine/logwake.c — waking log readers (see logwake.h). */
#include "engine/logwake.h"

#include "engine/shared.h"
#include "engine/store.h"
#include "ipc/wake.h"

#include <stdatomic.h>

void eng_log_waiters_add(struct eng_db *db, int delta)
{
	atomic_fetch_add(&db->sh->log_waiters, (uint32_t)delta);
}

void eng_log_notify(struct eng_shared *sh)
{
	if (!atomic_load_explicit(&sh->log_waiters, memory_order_relaxed))
		return;
	atomic_fetch_add(&sh->log_seq, 1);
	ipc_wake_all(&sh->log_seq);
}

uint32_t eng_log_seq(struct eng_db *db)
{
	return atomic_load(&db->sh->log_seq);
}

int eng_log_wait(struct eng_db *db, uint32_t seen, int timeout_ms)
{
	return ipc_wake_wait(&db->sh->log_seq, seen, timeout_ms);
}
