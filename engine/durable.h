/* engine/durable.h — group commit: shared fdatasync across all workers,
 * the durable mark, and the version lease.
 *
 * Owns: deciding when a written record is durable. Syncs are numbered:
 * sync_started is bumped (under the sync mutex) when an fdatasync begins,
 * sync_done when it ends, and only one process syncs at a time. A record
 * whose pwrite returned before sync g began is covered by sync g, because
 * fdatasync flushes the file's dirty pages whoever wrote them. So a
 * writer takes ticket = sync_started + 1 after its pwrite, and is durable
 * once sync_done >= ticket. One fdatasync thus serves every write of every
 * worker that finished before it began. A sync also moves durable_end,
 * the offset below which every byte is durable, which readers compare
 * with the records they found (store.h: eng_val.end).
 *
 * Each sync first puts the durable mark earlier syncs reached into the
 * file header, with the version lease: no version above the lease is
 * handed out, and once half of it is used a sync writes a new one, so
 * a restart resumes versions above anything a client can have seen. The
 * durable offset goes in at most every mark_interval (eng_opts; the
 * daemon uses 100 ms): the header page is one more write each sync would
 * wait for, and the mark only decides, after a crash, whether damage to
 * the last records is a torn write or corruption.
 *
 * A failed fdatasync poisons the store (PostgreSQL's fsyncgate lesson: the
 * kernel may have dropped the dirty pages and marked them clean, so a
 * retry that succeeds proves nothing): waiters get ENG_EPOISONED, writes
 * are refused, and the master restarts the daemon through recovery.
 *
 * eng_sync_wait blocks (futex) and runs fdatasync: call it only from a
 * thread that may block, never from an event loop. A thread other than
 * the one that uses an eng_db for reads and writes syncs through an
 * eng_syncer, which has a descriptor of its own (the loop thread may
 * switch files under a compaction at any moment).
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

struct eng_syncer {
	struct eng_db own;   /* the regions shared, a mapping of its own */
};

/* The ticket of a write whose pwrite has returned (or of a read that
 * found a record not yet durable). */
uint32_t eng_sync_ticket(struct eng_db *db);
/* 1 once a sync covering ticket has finished. */
int eng_sync_covered(struct eng_db *db, uint32_t ticket);
/* Blocks until a sync covering ticket has finished, running it if nobody
 * else is. 0, ENG_EPOISONED, or -errno. Uses db->fd: for a process that
 * does nothing else with db meanwhile (tests, tools). */
int eng_sync_wait(struct eng_db *db, uint32_t ticket);
/* The same from a thread of its own. */
int eng_syncer_init(struct eng_syncer *s, struct eng_db *db);
int eng_syncer_wait(struct eng_syncer *s, uint32_t ticket);
/* Maps the current database.bin if a compaction replaced it, dropping
 * the old one unless a value still points into it (an idle thread calls
 * it now and then, so the old file's space is released). */
int eng_syncer_follow(struct eng_syncer *s);
void eng_syncer_close(struct eng_syncer *s);
/* 1 if the log has grown since the last sync (periodic mode). */
int eng_sync_dirty(struct eng_db *db);
/* 1 after an fdatasync failed, or after a failure that leaves what is
 * durable in doubt (eng_sync_poison): writes are refused and the master
 * restarts through recovery. */
int eng_sync_poisoned(struct eng_db *db);
void eng_sync_poison(struct eng_db *db);
/* Master, after reaping pid: a sync it was running will never finish. */
void eng_sync_reap(struct eng_db *db, pid_t pid);

#endif
