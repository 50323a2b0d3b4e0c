/* engine/shared.h — the layout of the engine's shared memory.
 *
 * Owns: the control region every process of a caskd instance shares (a
 * versioned header, the index mutex and what it guards, the sync state of
 * group commit, the job table, one seat per worker
 * process), and the table arena:
 * ENG_AREAS areas of address space reserved before fork (MAP_NORESERVE:
 * memory is spent only for the pages a table touches), each big enough
 * for the largest table. One area holds the current table; a rebuild
 * (growth, shrink, compaction) fills another, then flips to it and
 * releases the old one's pages. Both regions are created by the master
 * before fork(), so they sit at the same address everywhere and hold
 * plain pointers.
 *
 * Who writes what (each owner offers the transitions, with asserts):
 *   index slots          engine/index.c
 *   areas[], cur, flip   engine/area.c
 *   jobs[], job_seq      engine/job.c (the job process through it too)
 *   seat.inflight, publishing   engine/write.c (repair.c finishes it)
 *   seat.reading, oldest_gen*   each process its own (read.c, list.c,
 *                        rebuild.c, db.c); a dead one's: engine/repair.c
 *   the sync state       engine/durable.c
 *
 * What protects what:
 *   index_mtx : seq, tail, unwiped, zeroed_end, zeroing, frozen,
 *               disk_full, want_resize, areas[], flip, every seat's
 *               inflight and publishing, and every table slot's state
 *               changes (slots are also read without it: see index.h).
 *   (atomics) : cur, pub_seq, file_gen, durable_end, del_end, lease are
 *               written with index_mtx (durable_end and lease: with
 *               sync_mtx) held and read by anyone without a lock.
 *   sync_mtx  : syncing, mark (the durable mark last put in the header),
 *               writes_at_sync. sync_started/sync_done/poisoned are
 *               atomics written with sync_mtx held, read without.
 *   job_mtx   : jobs[], job_seq, job_request.
 *   seat.pid : written by the master (fork, reap) and by the worker
 *               itself at attach; reading: by anyone, atomically.
 *   seat.reading : written by its own process only.
 * Lock order: see ipc/mutex.h. No mutex is held across file I/O.
 */
#ifndef CASKD_ENGINE_SHARED_H
#define CASKD_ENGINE_SHARED_H

#include "engine/index.h"
#include "engine/record.h"
#include "engine/store.h"
#include "ipc/mutex.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#define ENG_SHM_MAGIC 0x324D48534B534143ull /* "CASKSHM2" */
#define ENG_SHM_VERSION 4 /* 4: job records carry their pace and progress */
/* The lock order of ipc/mutex.h, as ranks (asserted in debug builds). */
#define ENG_RANK_INDEX 1
#define ENG_RANK_SYNC 2
#define ENG_RANK_JOB 3
#define ENG_CACHELINE 64
/* Two areas: the current table and the one a rebuild fills. */
#define ENG_AREAS 2
/* Histogram buckets kept for /metrics (bounds in engine/durable.c). */
#define ENG_HIST_BUCKETS 16
_Static_assert(ENG_HIST_BUCKETS >= ENG_STATS_FSYNC_BUCKETS &&
	       ENG_HIST_BUCKETS >= ENG_STATS_WPF_BUCKETS,
	       "room for the histograms");
/* Job records kept for GET /admin/jobs/{id}. */
#define ENG_JOBS_KEPT 16
#define ENG_JOB_ERROR_MAX 160 /* = ENG_JOB_ERROR_LEN */

enum eng_area_state {
	ENG_AREA_FREE = 0,
	ENG_AREA_CURRENT,
	ENG_AREA_BUILDING, /* a rebuild fills it; nobody reads it */
	ENG_AREA_RETIRED,  /* flipped away from; freed once no reader is in it */
};

struct eng_area {
	uint32_t state;      /* enum eng_area_state */
	uint32_t builder;    /* pid filling it (BUILDING) */
	uint64_t gen;        /* generation of the table in it */
};

/* A worker's one write between reservation and publish: eng_write runs
 * its steps in one call on the worker's loop thread, so a worker never
 * has more than one. off == 0: none (offset 0 is the file header). */
struct eng_inflight {
	uint64_t off;
	uint64_t len;
	uint32_t slot;       /* a single write: its key's slot */
	uint32_t nrec;       /* records in the range (a batch: its parts) */
};

struct eng_seat {
	alignas(ENG_CACHELINE) _Atomic int32_t pid; /* 0: seat unused */
	uint32_t publishing;         /* publish of inflight under way */
	/* Generation of the table this process is reading without the
	 * mutex right now, 0 when none: a retired area is freed only once
	 * no seat reads it (index.h). */
	_Atomic uint64_t reading;
	/* The oldest database.bin generation this process (and its sync
	 * thread) still maps, 0 none: the master closes its own hold on an
	 * old file only once no process maps it (eng_db_release_old). */
	_Atomic uint64_t oldest_gen;
	_Atomic uint64_t oldest_gen_sync;
	struct eng_inflight inflight;
};


/* A rebuild's flip, staged before it is applied so that a holder killed
 * half way leaves something eng_repair_index (repair.c) can finish. */
struct eng_flip {
	uint32_t active;
	uint32_t area;
	uint64_t gen;
	uint64_t file_gen;
	uint64_t tail;
	uint64_t zeroed_end;
	uint64_t durable;    /* durable_end of the new file (compaction) */
	uint64_t file_id;
	uint64_t lease;
};

struct eng_job {
	uint64_t id;         /* 0: unused record */
	uint32_t kind;       /* enum eng_job_kind */
	uint32_t state;      /* enum eng_job_state */
	int32_t pid;
	uint32_t stage;      /* enum eng_job_stage: how far it got */
	uint64_t started_ms, finished_ms; /* unix ms */
	uint64_t bytes_before, bytes_after;
	uint64_t keys;
	char error[ENG_JOB_ERROR_MAX];
	/* A compaction's pace and progress (engine/pacer.c), a few times a
	 * second while it runs: enum eng_pace_mode, the rate it is held to
	 * (0: none), the rate it made, bytes done of the total it expects,
	 * and the ms it expects to take still (UINT64_MAX: unknown). */
	uint32_t pace_mode;
	uint64_t rate_limit, rate, done, total, eta_ms;
	/* From ENG_STAGE_RENAMING on, what the master needs to finish the
	 * flip of a compaction whose process died after its rename. */
	struct eng_flip flip;
};

struct eng_shared {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint64_t max_keys;     /* 0: no bound */
	int32_t notify_pid;    /* SIGUSR1 here when a rebuild is wanted */
	char *arena;           /* ENG_AREAS areas of area_bytes each */
	uint64_t area_bytes;
	uint64_t area_slots;   /* the largest table an area holds */

	alignas(ENG_CACHELINE) struct ipc_mtx index_mtx;
	uint64_t seq;          /* highest version handed out */
	_Atomic uint64_t top_version; /* highest version published (index_mtx) */
	uint64_t tail;         /* next free offset in database.bin */
	uint64_t unwiped;      /* lowest failed write whose wipe failed too:
				* the durable mark must stay below it */
	uint64_t zeroed_end;   /* database.bin holds written zeros up to here
				* (eng_db_prezero), so appends below it do
				* not grow the file and fdatasync skips the
				* journal */
	uint64_t zeroing_from, zeroing_to; /* the master zeroes this now:
				* no reservation may enter it */
	int32_t frozen;        /* pid of a job holding new writes off */
	uint32_t disk_full;    /* the last prezero hit ENOSPC: the last
				* ENG_DELETE_RESERVE bytes are for deletes */
	uint32_t want_resize;  /* a writer asked the master for a rebuild */
	/* A compaction deleted database.reserve for room: until the master
	 * makes it again, no zeros are prepared in the space it freed. */
	_Atomic uint32_t reserve_released;
	uint64_t table_gen;    /* the last generation given to a table */
	struct eng_area areas[ENG_AREAS];
	struct eng_flip flip;

	alignas(ENG_CACHELINE) _Atomic uint64_t cur; /* table gen << 1 | area */
	_Atomic uint32_t pub_seq;      /* odd while a batch is published */
	_Atomic uint64_t file_gen;     /* compaction swapped database.bin */
	_Atomic uint64_t file_id;      /* ... and the header id of the new one */
	_Atomic uint64_t durable_end;  /* every byte below is durable */
	_Atomic uint64_t del_end;      /* end of the newest tombstone */
	_Atomic uint64_t lease;        /* no version above may be handed out */

	alignas(ENG_CACHELINE) struct ipc_mtx sync_mtx;
	int32_t syncing;                  /* pid in fdatasync now, or 0 */
	_Atomic uint32_t sync_started;    /* generation of the last sync begun */
	_Atomic uint32_t sync_done;       /* futex word: last sync finished */
	/* Log readers (engine/logread.h): how many wait in all processes,
	 * and a futex word bumped when what they may show grows (a publish,
	 * a sync) while any wait. */
	_Atomic uint32_t log_waiters;
	_Atomic uint32_t log_seq;
	_Atomic uint32_t poisoned;        /* an fdatasync failed */
	_Atomic uint64_t synced_tail;     /* tail covered by the last sync */
	_Atomic uint64_t fsync_total;
	_Atomic uint64_t fsync_ns_total;
	_Atomic uint64_t fsync_errors;
	_Atomic uint64_t writes_total;    /* records written, all workers */
	uint64_t writes_at_sync;          /* writes_total when the last sync
					   * began; guarded by sync_mtx */
	_Atomic uint64_t fsync_hist[ENG_HIST_BUCKETS];  /* duration buckets */
	_Atomic uint64_t wpf_hist[ENG_HIST_BUCKETS];    /* writes per fsync */
	_Atomic uint64_t wpf_sum;
	struct eng_mark mark;             /* last put in the file header */
	int32_t mark_copy;                /* ... in this copy (0 A, 1 B) */
	uint64_t mark_file_gen;           /* ... of this file */
	uint64_t mark_at_ns;              /* ... when (CLOCK_MONOTONIC) */
	uint64_t mark_interval_ns;        /* durable offsets go in this often */

	alignas(ENG_CACHELINE) struct ipc_mtx job_mtx;
	uint64_t job_seq;
	uint32_t job_request;             /* enum eng_job_kind wanted, or 0 */
	struct eng_job jobs[ENG_JOBS_KEPT];
	_Atomic uint64_t compactions[3];  /* started, done, failed */
	_Atomic uint64_t compact_ns_total;
	_Atomic uint64_t reclaimed_total;

	/* seats[ENG_SEATS] is the job process's */
	alignas(ENG_CACHELINE) struct eng_seat seats[ENG_SEATS + 1];
};

#define ENG_JOB_SEAT ENG_SEATS

static inline struct eng_table *eng_area_table(const struct eng_shared *sh,
					       uint32_t area)
{
	return (struct eng_table *)(sh->arena + (uint64_t)area * sh->area_bytes);
}

static inline uint32_t eng_cur_area(uint64_t cur)
{
	return (uint32_t)(cur & 1);
}

static inline uint64_t eng_cur_gen(uint64_t cur)
{
	return cur >> 1;
}

/* The current table; only stable with index_mtx held. */
static inline struct eng_table *eng_cur_table(struct eng_shared *sh)
{
	return eng_area_table(sh, eng_cur_area(atomic_load(&sh->cur)));
}

#endif
