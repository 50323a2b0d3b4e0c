/* engine/durable.h — group commit: shared fdatasync across all workers.
 *
 * Owns: deciding when a written record is durable. Syncs are numbered:
 * sync_started is bumped (under the sync mutex) when an fdatasync begins,
 * sync_done when it ends, and only one process syncs at a time. A record
 * whose pwrite returned before sync g began is covered by sync g, because
 * fdatasync flushes the file's dirty pages whoever wrote them. So a
 * writer takes ticket = sync_started + 1 after its pwrite, and is durable
 * once sync_done >= ticket. One fdatasync thus serves every write of every
 * worker that finished before it began.
 *
 * A failed fdatasync poisons the store (PostgreSQL's fsyncgate lesson: the
 * kernel may have dropped the dirty pages and marked them clean, so a
 * retry that succeeds proves nothing): waiters get ENG_EPOISONED, writes
 * are refused, and the master restarts the daemon through recovery.
 *
 * eng_sync_wait blocks (futex) and runs fdatasync: call it only from a
 * thread that may block, never from an event loop.
 */
#ifndef CASKD_ENGINE_DURABLE_H
#define CASKD_ENGINE_DURABLE_H

#include "engine/store.h"

#include <stdint.h>

#define ENG_FSYNC_BUCKETS ENG_STATS_FSYNC_BUCKETS
#define ENG_WPF_BUCKETS ENG_STATS_WPF_BUCKETS

/* Histogram upper bounds for /metrics (the last is +Inf). */
extern const double eng_fsync_bounds_s[ENG_FSYNC_BUCKETS];
extern const double eng_wpf_bounds[ENG_WPF_BUCKETS];

/* The ticket of a write whose pwrite has returned. */
uint32_t eng_sync_ticket(struct eng_db *db);
/* 1 once a sync covering ticket has finished. */
int eng_sync_covered(struct eng_db *db, uint32_t ticket);
/* Blocks until a sync covering ticket has finished, running it if nobody
 * else is. 0, ENG_EPOISONED, or -errno. */
int eng_sync_wait(struct eng_db *db, uint32_t ticket);
/* 1 if the log has grown since the last sync (periodic mode). */
int eng_sync_dirty(struct eng_db *db);
/* 1 after an fdatasync failed. */
int eng_sync_poisoned(struct eng_db *db);
/* Master, after reaping pid: a sync it was running will never finish. */
void eng_sync_reap(struct eng_db *db, pid_t pid);

#endif
