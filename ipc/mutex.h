/* ipc/mutex.h — process-shared, robust mutexes living in shared memory.
 *
 * Owns: the one place where EOWNERDEAD is handled. A process that dies
 * holding an ipc_mtx (kill -9 of a worker) must not hang the others: the
 * next locker gets EOWNERDEAD from the kernel's robust-futex list, calls the
 * mutex's repair callback (which verifies or rebuilds whatever the mutex
 * guards), marks the mutex consistent, and goes on as the owner. If repair
 * fails the mutex is left unrecoverable and the locker exits: a broken
 * index must never be served.
 *
 * Lock order across caskd (take left before right, never the reverse):
 *     eng index mutex  ->  eng sync mutex   (only a compaction's flip, and
 *                                            its repair, nest them)
 *     eng job mutex    ->  (nothing)
 *     OFD range locks on database.bin are never taken while holding any
 *     of them (writers take their chunk locks, the master the range it
 *     zeroes, after unlocking), and no mutex is held across file I/O or
 *     fdatasync: engine/io.c asserts ipc_mtx_held_any() == 0 on every
 *     write-side call. The one exception is a repair after EOWNERDEAD,
 *     which may map the current database.bin (open, mmap) with the index
 *     mutex held, so that it verifies the table against the right file;
 *     it reads the mapping, it writes nothing.
 *
 * The order is checked, not only written: the owner of each mutex gives
 * it a rank (ipc_mtx_set_rank; engine/shared.h: index 1, sync 2, job 3),
 * and in a build without NDEBUG locking one asserts that the thread holds
 * no mutex of the same or a higher rank. Rank 0: unordered (tests).
 *
 * The owner pid is kept beside the mutex so that assert(ipc_mtx_held(m))
 * works, and so the repair callback knows whose work it is finishing.
 */
#ifndef CASKD_IPC_MUTEX_H
#define CASKD_IPC_MUTEX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

struct ipc_mtx;

/* Called with the mutex held after its previous owner died holding it.
 * dead_pid is that owner (0 if unknown). Return 0 if what the mutex guards
 * is consistent again, or -errno if it cannot be repaired. */
typedef int (*ipc_mtx_repair_fn)(struct ipc_mtx *m, pid_t dead_pid,
				 void *arg);

struct ipc_mtx {
	pthread_mutex_t mtx;
	_Atomic int32_t owner;          /* pid of the holder, 0 when free */
	_Atomic uint32_t repairs;       /* EOWNERDEAD recoveries so far */
	_Atomic uint64_t wait_ns;       /* time spent waiting for it, total */
	_Atomic uint64_t acquisitions;  /* lock calls that had to wait */
	uint32_t rank;                  /* place in the lock order, 0 none */
};

/* The highest rank ipc_mtx_set_rank accepts. */
#define IPC_MTX_RANK_MAX 31

/* Initialises m in shared memory (master, before fork). 0 or -errno. */
int ipc_mtx_init(struct ipc_mtx *m);
/* Gives m its place in the lock order (1..IPC_MTX_RANK_MAX; a mutex is
 * taken only while every mutex the thread holds has a lower rank). Set
 * once, right after ipc_mtx_init, before any process locks m. */
void ipc_mtx_set_rank(struct ipc_mtx *m, uint32_t rank);
/* Locks m. On EOWNERDEAD calls repair(m, dead_pid, arg) first. Returns 0,
 * or -errno (ENOTRECOVERABLE after a failed repair; after a failed
 * pthread_mutex_consistent the mutex is unlocked, so left unrecoverable,
 * and its -errno returned). */
int ipc_mtx_lock(struct ipc_mtx *m, ipc_mtx_repair_fn repair, void *arg);
void ipc_mtx_unlock(struct ipc_mtx *m);
/* 1 if the calling process holds m. For assertions. */
int ipc_mtx_held(const struct ipc_mtx *m);
/* How many ipc_mtx the calling thread holds now. For assertions. */
int ipc_mtx_held_any(void);

#endif
