/* ipc/mutex.c — robust process-shared mutexes (see mutex.h).
 *
 * Uncontended locks cost one non-blocking try; only contended ones read
 * the clock, so the wait_ns statistic is free on the fast path.
 */
#include "ipc/mutex.h"

#include <assert.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

int ipc_mtx_init(struct ipc_mtx *m)
{
	pthread_mutexattr_t a;
	int rc = pthread_mutexattr_init(&a);
	if (rc)
		return -rc;
	if ((rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) ||
	    (rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) ||
	    (rc = pthread_mutex_init(&m->mtx, &a)))
		goto out_destroy_attr;
	atomic_store(&m->owner, 0);
	atomic_store(&m->repairs, 0);
	atomic_store(&m->wait_ns, 0);
	atomic_store(&m->acquisitions, 0);
	m->rank = 0;
out_destroy_attr:
	pthread_mutexattr_destroy(&a);
	return -rc;
}

/* Mutexes this thread holds (the lock rules in mutex.h are per thread:
 * a worker's loop and its sync thread each keep their own). */
static _Thread_local int held_here;

int ipc_mtx_held_any(void)
{
	return held_here;
}

void ipc_mtx_set_rank(struct ipc_mtx *m, uint32_t rank)
{
	assert(rank <= IPC_MTX_RANK_MAX);
	m->rank = rank;
}

/* The lock order, checked: bit r set while this thread holds a mutex of
 * rank r. Debug builds only (assert). */
#ifndef NDEBUG
static _Thread_local uint32_t ranks_here;
#endif

static void note_locked(const struct ipc_mtx *m)
{
	held_here++;
#ifndef NDEBUG
	if (m->rank) {
		/* no mutex of this rank or above may be held (mutex.h) */
		assert(!(ranks_here & ~((1u << m->rank) - 1)));
		ranks_here |= 1u << m->rank;
	}
#endif
}

static void note_unlocked(const struct ipc_mtx *m)
{
	held_here--;
#ifndef NDEBUG
	if (m->rank)
		ranks_here &= ~(1u << m->rank);
#endif
}

static void forget_pid(void);

static void mtx_register_atfork(void)
{
	pthread_atfork(NULL, NULL, forget_pid);
}

/* glibc no longer caches getpid(): a syscall on every lock showed in the
 * PUT profile (1% of a worker). Cached per process, reset in the child of
 * every fork. */
static pid_t self_pid;

static void forget_pid(void)
{
	self_pid = 0;
}

static pid_t self(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	if (!self_pid) {
		pthread_once(&once, mtx_register_atfork);
		self_pid = getpid();
	}
	return self_pid;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The one place EOWNERDEAD is handled: repair what the dead owner left,
 * then make the mutex consistent so others can use it again. */
static int mtx_owner_died(struct ipc_mtx *m, ipc_mtx_repair_fn repair,
			  void *arg)
{
	pid_t dead = atomic_load(&m->owner);
	int rc = 0;

	atomic_store(&m->owner, self());
	if (repair)
		rc = repair(m, dead, arg);
	if (rc < 0) {
		/* Leave it unrecoverable: every later locker fails loudly
		 * instead of trusting a half-updated structure. */
		atomic_store(&m->owner, 0);
		pthread_mutex_unlock(&m->mtx);
		return rc;
	}
	atomic_fetch_add(&m->repairs, 1);
	if ((rc = pthread_mutex_consistent(&m->mtx))) {
		/* Never return still holding a mutex the caller was told it
		 * did not get: unlocked while inconsistent, it is left
		 * unrecoverable, as after a failed repair. */
		atomic_store(&m->owner, 0);
		pthread_mutex_unlock(&m->mtx);
		return -rc;
	}
	note_locked(m);
	return 0;
}

/* The non-blocking first try: 0, EBUSY, EOWNERDEAD or ENOTRECOVERABLE.
 * Not pthread_mutex_trylock: on a mutex left not recoverable, glibc's
 * trylock (2.36) returns ENOTRECOVERABLE but keeps the lock word taken by
 * the caller, off its robust list, so every later locker sleeps forever
 * instead of failing. A clocklock whose deadline has already passed tries
 * the same way and gives the word back. */
static int mtx_try(struct ipc_mtx *m)
{
	static const struct timespec already_past = { 0, 0 };
	int rc = pthread_mutex_clocklock(&m->mtx, CLOCK_MONOTONIC,
					 &already_past);
	return rc == ETIMEDOUT ? EBUSY : rc;
}

int ipc_mtx_lock(struct ipc_mtx *m, ipc_mtx_repair_fn repair, void *arg)
{
	int rc = mtx_try(m);
	if (rc == EBUSY) {
		uint64_t t0 = mono_ns();
		rc = pthread_mutex_lock(&m->mtx);
		atomic_fetch_add(&m->wait_ns, mono_ns() - t0);
		atomic_fetch_add(&m->acquisitions, 1);
	}
	if (rc == EOWNERDEAD)
		return mtx_owner_died(m, repair, arg);
	if (rc)
		return -rc;
	atomic_store(&m->owner, self());
	note_locked(m);
	return 0;
}

void ipc_mtx_unlock(struct ipc_mtx *m)
{
	assert(ipc_mtx_held(m));
	note_unlocked(m);
	atomic_store(&m->owner, 0);
	pthread_mutex_unlock(&m->mtx);
}

int ipc_mtx_held(const struct ipc_mtx *m)
{
	return atomic_load(&m->owner) == self();
}
