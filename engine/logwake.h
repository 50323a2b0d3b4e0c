/* engine/logwake.h — waking log readers in every process.
 *
 * Owns: the futex word in shared memory that writers bump when what a
 * log reader may show grows (a publish, a finished sync), and the count
 * of processes with readers, so that writers pay for the wake-up only
 * while someone waits. Writers (write.c, durable.c) call the notify;
 * readers' threads (a worker's watch thread) wait. It uses only the
 * shared header and ipc/wake: nothing here calls up into the store.
 */
#ifndef CASKD_ENGINE_LOGWAKE_H
#define CASKD_ENGINE_LOGWAKE_H

#include <stdint.h>

struct eng_db;
struct eng_shared;

/* A process that has readers counts them in (+1) and out (-1), so writers
 * pay for wake-ups only while someone waits. */
void eng_log_waiters_add(struct eng_db *db, int delta);
/* Writers and the syncer: what readers may show grew. */
void eng_log_notify(struct eng_shared *sh);
/* The word a reader's thread waits on, and the wait (blocks: never on an
 * event loop): 0 when it changed from seen, -ETIMEDOUT, -EINTR. */
uint32_t eng_log_seq(struct eng_db *db);
int eng_log_wait(struct eng_db *db, uint32_t seen, int timeout_ms);

#endif
