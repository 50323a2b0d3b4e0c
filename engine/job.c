/* engine/job.c — job records and the master's side of a job's life (see
 * job.h; the work itself is in rebuild.c). */
#include "engine/job_int.h"

#include "engine/durable.h"
#include "engine/elog.h"
#include "engine/index.h"
#include "engine/io.h"
#include "engine/shared.h"
#include "ipc/shm.h"
#include "engine/db.h"
#include "engine/area.h"
#include "engine/repair.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

_Static_assert(ENG_JOB_ERROR_MAX == ENG_JOB_ERROR_LEN, "one error length");
_Static_assert(ENG_JOBS_KEPT == ENG_JOB_LIST_MAX, "one count of jobs kept");

/* After an automatic compaction failed, the policy waits this long
 * before it tries again (a full disk would fail it in a loop). */
#define AUTO_RETRY_MS 60000

static uint64_t unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *eng_job_kind_name(enum eng_job_kind k)
{
	return k == ENG_JOB_COMPACT ? "compact" : k == ENG_JOB_RESIZE ? "resize" : "none";
}

const char *eng_job_state_name(enum eng_job_state s)
{
	static const char *const names[] = { "pending", "running", "done", "failed" };
	return (unsigned)s < 4 ? names[s] : "unknown";
}

static struct eng_job *job_at(struct eng_shared *sh, uint64_t id)
{
	struct eng_job *j = &sh->jobs[id % ENG_JOBS_KEPT];
	return j->id == id ? j : NULL;
}

/* The job pending or running, if any (job_mtx held). */
static struct eng_job *active(struct eng_shared *sh)
{
	assert(ipc_mtx_held(&sh->job_mtx));
	for (int i = 0; i < ENG_JOBS_KEPT; i++) {
		struct eng_job *j = &sh->jobs[i];
		if (j->id && (j->state == ENG_JOB_PENDING || j->state == ENG_JOB_RUNNING))
			return j;
	}
	return NULL;
}

static struct eng_job *new_job(struct eng_shared *sh, enum eng_job_kind kind)
{
	uint64_t id;
	struct eng_job *j;

	assert(ipc_mtx_held(&sh->job_mtx));
	id = ++sh->job_seq;
	j = &sh->jobs[id % ENG_JOBS_KEPT];
	memset(j, 0, sizeof(*j));
	j->id = id;
	j->kind = kind;
	j->state = ENG_JOB_PENDING;
	j->eta_ms = UINT64_MAX;
	return j;
}

int eng_job_request_compact(struct eng_db *db, uint64_t *id)
{
	struct eng_shared *sh = db->sh;
	struct eng_job *j;
	int rc;

	if ((rc = eng_lock_jobs(sh)))
		return rc;
	for (int i = 0; i < ENG_JOBS_KEPT; i++) {
		j = &sh->jobs[i];
		if (j->id && j->kind == ENG_JOB_COMPACT &&
		    (j->state == ENG_JOB_PENDING || j->state == ENG_JOB_RUNNING)) {
			*id = j->id;
			eng_unlock_jobs(sh);
			return 0;
		}
	}
	j = new_job(sh, ENG_JOB_COMPACT);
	*id = j->id;
	eng_unlock_jobs(sh);
	if (sh->notify_pid > 0)
		kill(sh->notify_pid, SIGUSR1);
	return 0;
}

/* The record as callers see it (job_mtx held). */
static void info_of(const struct eng_job *j, struct eng_job_info *out)
{
	out->id = j->id;
	out->kind = (enum eng_job_kind)j->kind;
	out->state = (enum eng_job_state)j->state;
	out->stage = (enum eng_job_stage)j->stage;
	out->started_ms = j->started_ms;
	out->finished_ms = j->finished_ms;
	out->bytes_before = j->bytes_before;
	out->bytes_after = j->bytes_after;
	out->keys = j->keys;
	out->pace_mode = (enum eng_pace_mode)j->pace_mode;
	out->rate_limit = j->rate_limit;
	out->rate = j->rate;
	out->bytes_done = j->done;
	out->bytes_total = j->total;
	out->eta_ms = j->eta_ms;
	memcpy(out->error, j->error, sizeof(out->error));
}

int eng_job_get(struct eng_db *db, uint64_t id, struct eng_job_info *out)
{
	struct eng_shared *sh = db->sh;
	struct eng_job *j;
	int rc;

	if ((rc = eng_lock_jobs(sh)))
		return rc;
	if (!id || !(j = job_at(sh, id))) {
		eng_unlock_jobs(sh);
		return -ENOENT;
	}
	info_of(j, out);
	eng_unlock_jobs(sh);
	return 0;
}

int eng_job_list(struct eng_db *db, struct eng_job_info *out, size_t max)
{
	struct eng_shared *sh = db->sh;
	size_t n = 0;
	int rc;

	if ((rc = eng_lock_jobs(sh)))
		return rc;
	/* Ids are handed out in order and kept at id % ENG_JOBS_KEPT: the
	 * newest ones are the last ENG_JOBS_KEPT ids. */
	for (uint64_t id = sh->job_seq; id && n < max && sh->job_seq - id < ENG_JOBS_KEPT; id--) {
		struct eng_job *j = job_at(sh, id);

		if (j)
			info_of(j, &out[n++]);
	}
	eng_unlock_jobs(sh);
	return (int)n;
}

/* --- the job process's record ----------------------------------------------- */

/* The one place an outcome is recorded and counted (job_mtx held): by the
 * job itself, or by the master for a job that died before it could. */
static void record_outcome(struct eng_shared *sh, struct eng_job *j, int rc)
{
	assert(ipc_mtx_held(&sh->job_mtx));
	j->finished_ms = unix_ms();
	j->state = rc ? ENG_JOB_FAILED : ENG_JOB_DONE;
	j->eta_ms = UINT64_MAX; /* ended: nothing left to expect */
	if (j->kind != ENG_JOB_COMPACT)
		return;
	atomic_fetch_add(&sh->compactions[rc ? 2 : 1], 1);
	if (!rc && j->bytes_after < j->bytes_before)
		atomic_fetch_add(&sh->reclaimed_total, j->bytes_before - j->bytes_after);
}

int eng_job_record_stage(struct eng_shared *sh, uint64_t id,
			 enum eng_job_stage st, const struct eng_flip *f,
			 uint64_t bytes_before, uint64_t keys)
{
	struct eng_job *j;
	int rc;

	if ((rc = eng_lock_jobs(sh)))
		return rc;
	if ((j = job_at(sh, id))) {
		j->stage = st;
		if (st == ENG_STAGE_RENAMING) {
			/* what the master reports if it must finish for us */
			j->flip = *f;
			j->bytes_before = bytes_before;
			j->bytes_after = f->tail;
			j->keys = keys;
		}
	}
	eng_unlock_jobs(sh);
	return 0;
}

void eng_job_record_progress(struct eng_shared *sh, uint64_t id,
			     const struct eng_job_progress *p)
{
	struct eng_job *j;

	if (eng_lock_jobs(sh))
		return;
	if ((j = job_at(sh, id))) {
		j->pace_mode = (uint32_t)p->mode;
		j->rate_limit = p->rate_limit;
		j->rate = p->rate;
		j->done = p->done;
		j->total = p->total;
		j->eta_ms = p->eta_ms;
	}
	eng_unlock_jobs(sh);
}

void eng_job_record_outcome(struct eng_shared *sh, uint64_t id, int rc,
			    const char *err, uint64_t bytes_before,
			    uint64_t bytes_after, uint64_t keys)
{
	struct eng_job *j;

	if (eng_lock_jobs(sh))
		return;
	if ((j = job_at(sh, id))) {
		j->bytes_before = bytes_before;
		j->bytes_after = bytes_after;
		j->keys = keys;
		snprintf(j->error, sizeof(j->error), "%s", rc ? err : "");
		record_outcome(sh, j, rc);
		/* started_ms is 0 if we ended before the master recorded our
		 * start */
		if (j->kind == ENG_JOB_COMPACT && j->started_ms &&
		    j->started_ms <= j->finished_ms)
			atomic_fetch_add(&sh->compact_ns_total,
					 (j->finished_ms - j->started_ms) * 1000000u);
	}
	eng_unlock_jobs(sh);
}

/* --- the master's side ----------------------------------------------------- */

/* Does the table want a rebuild (too full, or too empty)? Only if the
 * rebuild would change it: at the largest size with no DEAD slot a
 * rebuild frees nothing. A writer's request that a rebuild since
 * answered is dropped. Index mutex held. */
static int resize_wanted(struct eng_shared *sh)
{
	struct eng_table *t = eng_cur_table(sh);
	uint64_t target = eng_index_slots_for(t->live + t->pending, sh->area_slots);

	sh->want_resize = 0;
	return eng_index_wants_rebuild(t) && (target != t->nslots || t->dead);
}

static int policy_wants(struct eng_db *db, const struct eng_compact_policy *p)
{
	struct eng_stats st;

	if (!p->garbage_pct || unix_ms() < db->compact_retry_ms)
		return 0;
	eng_stats(db, &st);
	return st.log_bytes >= p->min_bytes && st.log_bytes > st.live_bytes &&
	       (st.log_bytes - st.live_bytes) * 100 >= (uint64_t)p->garbage_pct * st.log_bytes;
}

int eng_job_next(struct eng_db *db, const struct eng_compact_policy *p,
		 uint64_t *id)
{
	struct eng_shared *sh = db->sh;
	struct eng_job *j;
	int resize, area_free, rc;

	if (eng_lock_index(db))
		return 0;
	resize = resize_wanted(sh);
	area_free = eng_area_spare_free(sh);
	eng_unlock_index(db);
	if (!area_free)
		return 0; /* the last table flipped away from is still read */
	if ((rc = eng_lock_jobs(sh)))
		return 0;
	j = active(sh);
	if (j && j->state == ENG_JOB_RUNNING) {
		eng_unlock_jobs(sh);
		return 0;
	}
	/* A wanted rebuild goes first: writers of new keys may be waiting. */
	if (!j && resize)
		j = new_job(sh, ENG_JOB_RESIZE);
	else if (!j && policy_wants(db, p)) {
		j = new_job(sh, ENG_JOB_COMPACT);
		eng_log(ENG_LOG_INFO, "starting compaction %" PRIu64 " by itself: garbage "
			"passed %u%% of database.bin", j->id, p->garbage_pct);
	}
	if (j)
		*id = j->id;
	eng_unlock_jobs(sh);
	return j != NULL;
}

void eng_job_started(struct eng_db *db, uint64_t id, pid_t pid)
{
	struct eng_shared *sh = db->sh;
	struct eng_job *j;

	if (eng_lock_jobs(sh))
		return;
	if ((j = job_at(sh, id))) {
		uint64_t now = unix_ms();

		/* The child may have run to the end already and written its
		 * outcome: that stands (a reap finds it by pid), and it did
		 * not start after it finished. */
		j->started_ms = j->finished_ms && j->finished_ms < now ? j->finished_ms : now;
		if (pid > 0) {
			j->pid = pid;
			if (j->state == ENG_JOB_PENDING)
				j->state = ENG_JOB_RUNNING;
			if (j->kind == ENG_JOB_COMPACT)
				atomic_fetch_add(&sh->compactions[0], 1);
		} else {
			j->state = ENG_JOB_FAILED;
			j->finished_ms = j->started_ms;
			snprintf(j->error, sizeof(j->error), "fork: %s", strerror((int)-pid));
		}
	}
	eng_unlock_jobs(sh);
}

static void describe_death(int status, char *buf, size_t n)
{
	if (WIFSIGNALED(status))
		snprintf(buf, n, "the job process was killed by signal %d (%s)",
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, n, "the job process exited with status %d without finishing",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* The file id database.bin has on disk now: 0 and *id, or -errno. */
static int disk_file_id(struct eng_db *db, uint64_t *id)
{
	char hdr[ENG_FILE_HDR_SIZE];
	int fd = open(db->path, O_RDONLY | O_CLOEXEC), rc = 0, format;
	ssize_t n;

	if (fd < 0)
		return -errno;
	do
		n = pread(fd, hdr, sizeof(hdr), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		rc = -errno;
	else if (n != (ssize_t)sizeof(hdr) || eng_file_hdr_check(hdr, (uint64_t)n, &format))
		rc = -EBADMSG;
	else
		*id = eng_file_id(hdr);
	close(fd);
	return rc;
}

/* A compaction died after its rename: database.bin is the new file, whole
 * and synced, and its table is complete. Finish what it left: the
 * directory entry, the flip, the freeze. The flip is applied even when
 * the directory sync fails: writers must go to the file the name holds
 * (the old inode is unlinked); the failure then poisons the database
 * and the master restarts through recovery, as after a failed fdatasync. */
static int finish_flip(struct eng_db *db, const struct eng_flip *f)
{
	struct eng_shared *sh = db->sh;
	int rc, dir_rc = eng_io_syncdir(db->dir);

	if ((rc = eng_lock_index(db)))
		return rc;
	if (eng_cur_gen(atomic_load(&sh->cur)) != f->gen) {
		eng_area_flip(sh, f);
	}
	sh->frozen = 0;
	eng_unlock_index(db);
	if (dir_rc) {
		eng_log(ENG_LOG_ERROR, "syncing %s after the compaction's rename failed: %s",
			db->dir, strerror(-dir_rc));
		eng_sync_poison(db);
		return dir_rc;
	}
	/* The master's own mapping follows at its next tick if this fails:
	 * the swap itself is done. */
	(void)eng_db_refresh(db);
	return 0;
}

/* A job died before it was done: undo what it began. */
static void undo(struct eng_db *db, pid_t pid)
{
	struct eng_shared *sh = db->sh;
	char *tmp;

	if (eng_path_join(&tmp, db->dir, ENG_COMPACT_FILE) == 0) {
		eng_io_unlink(tmp);
		free(tmp);
	}
	if (eng_lock_index(db))
		return;
	if (sh->frozen == pid)
		sh->frozen = 0;
	eng_area_abandon(sh, pid);
	eng_unlock_index(db);
}

/* Did the dead compaction's rename happen? 1 (database.bin on disk is
 * its new file), 0 (the old one: nothing to finish), or -errno. */
static int renamed(struct eng_db *db, const struct eng_job *j)
{
	uint64_t id = 0;
	int rc;

	if (j->stage >= ENG_STAGE_FLIPPED)
		return 1;
	if ((rc = disk_file_id(db, &id)))
		return rc;
	return id == j->flip.file_id;
}

uint64_t eng_job_reaped(struct eng_db *db, pid_t pid, int status)
{
	struct eng_shared *sh = db->sh;
	struct eng_job *j = NULL, copy;
	char why[ENG_JOB_ERROR_MAX];
	int rc;

	if (eng_lock_jobs(sh))
		return 0;
	for (int i = 0; i < ENG_JOBS_KEPT && !j; i++)
		if (sh->jobs[i].id && sh->jobs[i].pid == pid)
			j = &sh->jobs[i];
	if (!j) {
		eng_unlock_jobs(sh);
		return 0;
	}
	copy = *j;
	eng_unlock_jobs(sh);
	eng_seat_vacate(sh, ENG_JOB_SEAT);
	if (copy.state != ENG_JOB_RUNNING) {
		/* it wrote its own outcome (and undid its own work) */
		if (copy.state == ENG_JOB_FAILED && copy.kind == ENG_JOB_COMPACT)
			db->compact_retry_ms = unix_ms() + AUTO_RETRY_MS;
		return copy.id;
	}
	describe_death(status, why, sizeof(why));
	if (copy.stage >= ENG_STAGE_RENAMING && copy.kind == ENG_JOB_COMPACT &&
	    (rc = renamed(db, &copy)) != 0) {
		if (rc < 0) {
			/* Cannot tell which file the name holds: writes stay
			 * held off, and recovery, which reads the directory
			 * as it is, decides. */
			eng_log(ENG_LOG_ERROR, "job %" PRIu64 ": %s; reading the header of %s "
				"failed (%s): restarting through recovery", copy.id, why,
				db->path, strerror(-rc));
			eng_sync_poison(db);
		} else {
			rc = copy.stage == ENG_STAGE_FLIPPED ? 0 : finish_flip(db, &copy.flip);
			eng_log(rc ? ENG_LOG_ERROR : ENG_LOG_WARN, "job %" PRIu64 ": %s after "
				"its new database.bin was in place; %s", copy.id, why,
				rc ? "finishing the swap failed" : "the master finished the swap");
		}
	} else {
		rc = -ECANCELED;
		undo(db, pid);
		eng_log(ENG_LOG_WARN, "job %" PRIu64 " (%s): %s; undone, database.bin "
			"goes on as before", copy.id, eng_job_kind_name((enum eng_job_kind)copy.kind),
			why);
	}
	if (eng_lock_jobs(sh))
		return copy.id;
	if ((j = job_at(sh, copy.id))) {
		if (rc) {
			snprintf(j->error, sizeof(j->error), "%s", why);
			/* set at its rename: a file that is not database.bin */
			j->bytes_after = 0;
			j->keys = 0;
		}
		record_outcome(sh, j, rc);
		if (rc && j->kind == ENG_JOB_COMPACT)
			db->compact_retry_ms = unix_ms() + AUTO_RETRY_MS;
	}
	eng_unlock_jobs(sh);
	return copy.id;
}

void eng_job_reclaim(struct eng_db *db)
{
	struct eng_shared *sh = db->sh;

	if (eng_lock_index(db))
		return;
	eng_area_reclaim(sh);
	eng_unlock_index(db);
}
