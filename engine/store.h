/* engine/store.h — the key-value store: database.bin plus the shared index.
 * The engine's public API: the server includes this, never the files
 * that implement it.
 *
 * Owns: opening a data directory (master: recover, create shared memory),
 * attaching a worker (its own descriptor and read-only mapping), reads,
 * writes and batches with their conditions, listings, and cleaning up
 * after a dead worker. Where each lives, bottom first (each file calls
 * only files listed before it; make layers checks the includes):
 *   db.c      mappings, following a swap, the chunk lock, the mutexes
 *   area.c    the table areas and the flip between them
 *   space.c   zeros ahead of the tail, the reserves, the trim
 *   write.c   eng_write, eng_write_pass, eng_batch (read.c is its mirror)
 *   read.c    eng_get, eng_stats
 *   list.c    listings; backup.c: snapshots
 *   repair.c  a dead process: the index mutex's repair, reaping a worker
 *   recover.c recovery at open; open.c: open, attach, close
 *
 * Life cycle:
 *   master:  eng_db_open()  -> fork workers and jobs -> eng_db_reap_worker()
 *            for each worker that dies -> eng_db_close()
 *   worker:  eng_db_attach(slot) after fork -> eng_get/eng_write ...
 *   job:     eng_db_attach(ENG_JOB_SEAT) after fork -> eng_job_run()
 *
 * Reads take no lock: they read the shared table optimistically
 * (engine/index.h) and the value from this process's read-only mapping
 * of database.bin. A value handed out holds a reference on its mapping,
 * which stays valid after a compaction replaced the file until
 * eng_val_release().
 *
 * A write (eng_write, eng_batch) runs in three steps so that no lock is
 * held across file I/O: under the index mutex it checks conditions,
 * takes a version and reserves log space, and marks its keys busy; then
 * it writes the records with one pwrite; then under the mutex again it
 * publishes them in the index (a batch all at once, so no reader sees
 * part of it). A pass (eng_write_pass) takes the three steps once for
 * many independent writes. A second write to a busy key gets -EAGAIN and retries,
 * which serialises writes per key (so If-Match and incr cannot lose
 * updates) while writes to different keys proceed in parallel, in all
 * workers. -EAGAIN also means "wait a moment" while a rebuild or a
 * compaction swaps the table or the file.
 *
 * Byte-range locks on database.bin (OFD, ipc/flock.h): a writer holds a
 * shared lock on the 1 MiB chunks it appends into (taken once per chunk,
 * not per record); the master holds an exclusive lock on the range it
 * fills with zeros ahead of the tail, which no reservation may enter;
 * `caskd check --repair` locks the whole file (after the instance lock,
 * as a start takes it). A dead worker's unwritten range is wiped by the
 * master without a byte lock: its keys stay busy, so nobody else touches
 * it.
 *
 * A write is visible to readers once published; the server acknowledges
 * it, and in group mode shows it to readers, only once durable
 * (eng_val.end against eng_durable_end(), and engine/durable.h).
 */
#ifndef CASKD_ENGINE_STORE_H
#define CASKD_ENGINE_STORE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ipc_mtx;
struct eng_shared;
struct eng_map;

/* Seats, one per worker process (its in-flight write, the table and
 * files it reads; engine/shared.h): twice the largest --workers, so a
 * reload can run a new generation beside the old one. ("Slot" is the
 * index's word: engine/index.h.) */
#define ENG_SEATS 128
/* The seat a job process (compaction, rebuild) attaches to. */
#define ENG_JOB_SEAT ENG_SEATS
/* A dead caskd's processes that may still hold the directory's lock. */
#define ENG_HOLDERS_MAX 16

struct eng_opts {
	const char *dir;
	uint64_t max_keys;      /* 0: no bound but memory */
	uint32_t max_value;
	/* Called now and then during a long recovery (may be NULL). */
	void (*progress)(uint64_t done, uint64_t total, void *arg);
	void *progress_arg;
	/* How long to wait for the exiting processes of a dead caskd that
	 * still hold the directory's lock (ms; 0: do not wait). */
	int lock_wait_ms;
	/* Syncs put the durable offset in the file header at most this
	 * often (0: every sync; a new version lease always goes in at
	 * once). See engine/durable.h. */
	int mark_interval_ms;
};

/* What recovery found. */
struct eng_recovery {
	uint64_t records;      /* valid records scanned */
	uint64_t keys;         /* live keys after replay */
	uint64_t file_bytes;   /* size before any truncation */
	uint64_t tail;         /* where appends resume */
	uint64_t cut_bytes;    /* torn tail (or unused zeros) dropped */
	int cut_zeros;         /* ... and it was only zeros (prepared space) */
	uint64_t skipped;      /* abandoned reservations skipped */
	uint64_t repaired;     /* regions caskd check --repair dropped, bytes */
	uint64_t dropped;      /* bytes of batches that never committed */
	uint64_t max_version;
	uint64_t version_base; /* versions resume after this */
	uint64_t bad_off;      /* ENG_ECORRUPT: offset of the damage */
	uint64_t bad_len;      /* ... past file_bytes: the file was truncated */
	int holder_pid;        /* -EBUSY: the caskd holding the directory */
	int holders[ENG_HOLDERS_MAX]; /* -EBUSY: processes holding caskd.lock */
	int nholders;
	int holder_dead;       /* the caskd named in caskd.lock is gone */
	int created;           /* database.bin was new */
	int upgraded;          /* format 1 header rewritten as format 2 */
	int from_snapshot;     /* the index came from database.idx */
	uint64_t scanned;      /* bytes scanned (all of them without one) */
	char note[256];        /* why database.idx was not used, or "" */
	char failed[PATH_MAX + 96]; /* what could not be opened or made */
	double seconds;
};

/* The ordered section of database.idx that recovery checked and kept
 * (engine/idxorder.h): where it is, and the header of the file it was
 * checked in, so that a worker maps it only from that same file. The
 * master's recovery fills it; the workers it forks inherit it with the
 * rest of struct eng_db. */
#define ENG_IDX_VIEW_HDR 96  /* database.idx's header (version 3) */
struct eng_idx_view {
	uint64_t file_gen;      /* of the database.bin it holds keys of; 0: none */
	uint64_t off, keys;     /* the section: offset in database.idx, entries */
	uint64_t covered_from;  /* it holds the live keys of every record below */
	unsigned char hdr[ENG_IDX_VIEW_HDR];
	char why[160];          /* why a section was not kept, or "" */
};

struct eng_db {
	struct eng_shared *sh;
	size_t shm_size;
	size_t arena_size;
	char *dir;
	char *path;          /* dir/database.bin */
	int lock_fd;         /* caskd.lock, OFD-locked by the master */
	/* This process's current mapping of database.bin; `map` and `fd`
	 * are its base and descriptor, for the engine's own use. */
	struct eng_map *cur;
	const char *map;
	int fd;
	uint64_t file_gen;
	int seat;            /* this process's seat, -1 in the master */
	uint32_t max_value;
	char *buf;           /* records being written (one per process) */
	size_t buf_size;
	uint64_t chunk_lo, chunk_hi; /* the chunks we hold a shared lock on */
	uint64_t mutex_locks;        /* index mutex acquisitions by us */
	int grow_asked;              /* signalled the master for a rebuild */
	int keep_old;                /* master: hold old files until unused */
	uint64_t compact_retry_ms;   /* master: no automatic compaction
				      * before (unix ms): the last failed */
	int is_syncer;               /* a sync thread's copy (eng_syncer) */
	/* The index mutex's EOWNERDEAD repair (engine/repair.c), set by
	 * eng_db_open and inherited across fork: engine/db.c takes the
	 * mutex without calling up into the files above it. */
	int (*repair_index)(struct ipc_mtx *m, pid_t dead, void *arg);
	struct eng_idx_view idx_view; /* set by recovery (engine/recover.c) */
};

/* Master: opens or creates dir/database.bin, recovers it (from
 * dir/database.idx when that is valid, truncating a torn tail, refusing
 * damage with ENG_ECORRUPT and rep->bad_off) and builds the shared index.
 * -EBUSY (and rep->holder_pid) if another caskd has the directory.
 * 0 or -errno/ENG_E*; on failure rep->failed names what failed. */
int eng_db_open(const struct eng_opts *o, struct eng_db *db,
		struct eng_recovery *rep);
/* Takes the instance lock of dir (dir/caskd.lock) into *lock_fd; -EBUSY
 * and rep->holder_pid / holders if a caskd (or what is left of one) has
 * it. Waits up to o->lock_wait_ms while only exiting processes of a dead
 * caskd hold it. */
int eng_lock_dir(const char *dir, int wait_ms, int *lock_fd,
		 struct eng_recovery *rep);
/* Worker or job, after fork: opens its own descriptor and mapping.
 * -EPROTO if the shared region's magic, version or size is not this
 * build's. */
int eng_db_attach(struct eng_db *db, int seat);
/* Records which pid runs in a seat (master, after fork). */
void eng_db_set_worker(struct eng_db *db, int seat, pid_t pid);
/* Processes send pid SIGUSR1 when a job is wanted (a table rebuild, a
 * compaction asked for); 0: nobody (tests). */
void eng_db_set_notify(struct eng_db *db, pid_t pid);
/* Master, at a clean stop with no worker left: writes database.idx so
 * the next start loads the index instead of scanning the log. */
int eng_db_save_index(struct eng_db *db);
/* Master, after reaping a dead worker: wipes the log space it reserved
 * and never published, and frees the keys it was writing. */
int eng_db_reap_worker(struct eng_db *db, int seat);
void eng_db_close(struct eng_db *db);
/* Closes this process's mappings of database.bin only (a copy of a db
 * made for another thread: see eng_syncer). */
void eng_db_unmap(struct eng_db *db);
/* After a compaction swapped database.bin: maps the new file (the old
 * mapping lives on while values handed out from it are referenced).
 * Called by every operation itself; 0 or -errno. */
int eng_db_refresh(struct eng_db *db);
/* Master, from its timer: maps the current file if a compaction replaced
 * it, and closes its hold on old files no process maps any more. The master keeps one on every replaced file so that the last
 * close, which frees the file's blocks (and on a mount with `discard`
 * waits for the device: 49 ms traced), never happens on a worker's loop. */
void eng_db_release_old(struct eng_db *db);

/* A value, pointing into a read-only mapping (valid until released). */
struct eng_val {
	const char *data;
	uint32_t len;
	uint64_t version;
	/* The log offset up to which the answer depends on records: a GET
	 * in group mode waits until eng_durable_end() passes it. */
	uint64_t end;
	struct eng_map *map; /* reference held (NULL when nothing found) */
};

/* 0 and *v (release it), -ENOENT (v->end still set), or -EBADMSG: the
 * key's record fails its checksum (v->end: its offset). */
int eng_get(struct eng_db *db, const void *key, size_t klen,
	    struct eng_val *v);
void eng_val_release(struct eng_db *db, struct eng_val *v);
/* Releases a mapping reference taken by eng_get or eng_backup_begin. */
void eng_map_put(struct eng_db *db, struct eng_map *m);

enum eng_op_kind { ENG_OP_PUT, ENG_OP_DEL, ENG_OP_INCR };

struct eng_op {
	enum eng_op_kind kind;
	const void *key;
	size_t klen;
	const void *val;        /* PUT */
	size_t vlen;
	int64_t by;             /* INCR */
	int has_if_match;       /* If-Match given */
	int if_match_any;       /* If-Match: * */
	uint64_t if_match;      /* If-Match: "<v>" */
	int if_none_match_any;  /* If-None-Match: * */
	/* A write a group's primary applied and versioned (replication):
	 * written with this version, no condition checked (the primary
	 * checked them); a DEL of an absent key is -ENOENT, nothing
	 * written. 0: a client's write, versioned here. */
	uint64_t version_at;
};

struct eng_result {
	/* The write's version; on ENG_EPRECOND the key's current one (0:
	 * absent), for a message that says which condition failed. */
	uint64_t version;
	int created;          /* PUT of a key that was absent */
	int64_t value;        /* INCR: the new value */
	uint64_t end;         /* log offset after the record */
	/* On a refusal decided from the index (precondition, absent key,
	 * not an integer): the log offset the decision depended on. */
	uint64_t seen_end;
	int want_sync;        /* the version lease runs low: sync soon */
};

/* Applies op. 0, or -EAGAIN (key busy, or the store is swapping tables:
 * retry shortly), -ENOENT (DEL of an absent key), ENG_EPRECOND,
 * ENG_EFULL, ENG_ENOTINT, ENG_EOVERFLOW, -ENOSPC / -EIO (nothing was
 * published), -EINVAL, -E2BIG, ENG_EPOISONED. */
int eng_write(struct eng_db *db, const struct eng_op *op,
	      struct eng_result *res);
/* Applies n independent writes as one pass, as a worker's loop does
 * with the writes it parsed in one turn (Redis's beforeSleep): one hold
 * of the index mutex reserves them all, one pwrite writes their records
 * one after another, one hold publishes them. Each is a write of its
 * own (its version, its outcome in rcs[i], as eng_write's; nothing is
 * all-or-nothing as in a batch), plus ENG_ENEXTPASS for a key an
 * earlier write of the pass holds. 0, or -ENOMEM (nothing tried). */
int eng_write_pass(struct eng_db *db, const struct eng_op *const *ops, size_t n,
		   struct eng_result *const *res, int *rcs);

enum eng_batch_kind { ENG_BATCH_PUT, ENG_BATCH_DEL, ENG_BATCH_CHECK };

struct eng_batch_op {
	enum eng_batch_kind kind;
	const void *key;
	size_t klen;
	const void *val;        /* PUT */
	size_t vlen;
	uint64_t version;       /* CHECK: the version it must have (0 absent) */
};

struct eng_batch_result {
	uint64_t version;       /* every key the batch wrote has it */
	uint32_t applied;       /* put and del operations that wrote */
	uint32_t failed;        /* ENG_EPRECOND: index of the first failed check */
	uint64_t end;
	uint64_t seen_end;
	int want_sync;
};

/* Applies ops[0..n) all or nothing, under one version: every check
 * holds at the moment the batch applies, or ENG_EPRECOND and nothing is
 * applied. A del of an absent key writes nothing. Keys written twice are
 * the caller's to refuse (-EINVAL here). Errors as eng_write; -E2BIG if
 * the batch's records exceed the format's limits. */
int eng_batch(struct eng_db *db, const struct eng_batch_op *ops, size_t n,
	      struct eng_batch_result *res);
/* The same with the version the group's primary gave the batch (no
 * CHECK among ops: the primary checked them). */
int eng_batch_at(struct eng_db *db, const struct eng_batch_op *ops, size_t n,
		 uint64_t at, struct eng_batch_result *res);
/* A group's new primary: no version at or below floor is handed out
 * from now on (its term's versions start there). 0 or -errno. */
int eng_version_floor(struct eng_db *db, uint64_t floor);
/* Appends a group's term mark (record.h) with the next version (at 0:
 * a new primary) or with version at (a replica copying it). 0 and
 * *version, or -EAGAIN (*want_sync: the version lease must be renewed
 * first; retry after a sync), -ENOSPC, -EIO, ENG_EPOISONED. */
int eng_term_mark(struct eng_db *db, uint64_t at, uint64_t *version, int *want_sync);
/* The newest version published (a write's, a term mark's, or found by
 * recovery). */
uint64_t eng_top_version(struct eng_db *db);

/* Every byte below this offset of the current database.bin is durable. */
uint64_t eng_durable_end(struct eng_db *db);

/* The lowest offset not known to be fully written: the start of the
 * oldest in-flight reservation, or the tail. A sync that begins after this
 * call makes every byte below it durable. */
uint64_t eng_db_written_below(struct eng_db *db);

/* Master, from its timer: keeps written zeros ahead of the tail, a few
 * pieces per call, and the compaction reserve file (engine/space.c). An
 * append into space the file already has does not change the file's
 * size or extents, so its fdatasync writes only data (measured: 680 us
 * instead of 1240 us per fdatasync on ext4). The zeros go out in 64 KiB
 * steps, each pushed to the disk (sync_file_range) before the next, so
 * they never sit dirty in the page cache for a worker's fdatasync to
 * flush (8 MiB of them made single syncs 100-1000 times slower than the
 * mean); O_DIRECT was tried and held the inode lock for whole device
 * writes (docs/decisions.md). It first makes database.reserve if that is
 * missing (not while a job runs: job_running); after a compaction deleted
 * it, it prepares nothing until the reserve is back (the reserve has the
 * space first). Zeros go on being prepared while a job runs: without
 * them every append grows the file and every group commit goes through
 * the journal, behind the job's own allocations (docs/decisions.md).
 * Blocks; never on a loop. 0, 1 (nothing to do), or -errno (the caller
 * retries later). */
int eng_db_prezero(struct eng_db *db, int job_running);
/* Master, at a clean stop with no worker left: truncates the zeros ahead of
 * the tail, so the file ends at its last record, and puts the tail in
 * the durable mark (so damage to any record is named, never truncated). */
int eng_db_trim(struct eng_db *db);

/* A listing of live keys in byte order, page by page (GET /keys). It
 * reads the table without the mutex, a bounded number of slots per
 * eng_list_step, so a big table never stalls writers nor, for long, the
 * caller's loop. */
struct eng_list;
int eng_list_begin(struct eng_db *db, const void *prefix, size_t plen,
		   const void *after, size_t alen, size_t limit,
		   struct eng_list **out);
/* Scans up to max_slots more slots: 1 when the listing is complete, 0 if
 * there is more to scan, -errno. */
int eng_list_step(struct eng_db *db, struct eng_list *l, uint64_t max_slots);
/* After the last step: the keys found, sorted; *more if more keys
 * matched than the limit. Pointers stay valid until eng_list_end. */
size_t eng_list_keys(struct eng_list *l, const char *const **keys,
		     const uint16_t **lens, int *more, uint64_t *end);
void eng_list_end(struct eng_db *db, struct eng_list *l);
/* Frees this process's ordered view of db's keys (engine/list.c), if it
 * has one: eng_db_close calls it. */
void eng_list_drop(struct eng_db *db);
/* How this process's ordered views came to be, since it started: mapped
 * from database.idx's ordered section, or built (a pass and a sort). */
struct eng_list_stats {
	uint64_t loaded, built;
};
void eng_list_stats(struct eng_list_stats *st);

/* A consistent cut for GET /admin/snapshot: base[0, end) is a complete
 * database file, read from a private mapping of the live one (the
 * prefix of an append-only log never changes; the mapping stays valid
 * after a compaction replaced the file) under a header of its own: a new
 * file id, and a durable mark at end, so that a copy shorter than end is
 * damage, never a torn tail. Every write reserved before the target was
 * taken is inside it, and no part of a batch without the rest (end falls
 * between reservations). */
struct eng_backup {
	const char *base;
	uint64_t end;
};
/* The offset a cut must reach to hold every write acknowledged so far. */
uint64_t eng_backup_target(struct eng_db *db, uint64_t *file_gen);
/* 0 and *b; -EAGAIN while writes below target are still in flight (try
 * again shortly); -ESTALE if a compaction swapped the file since the
 * target was taken (take a new one). */
int eng_backup_begin(struct eng_db *db, uint64_t target, uint64_t file_gen,
		     struct eng_backup *b);
void eng_backup_end(struct eng_db *db, struct eng_backup *b);

/* Statistics for /metrics, read without locks (may be a moment old). */
#define ENG_STATS_FSYNC_BUCKETS 12
#define ENG_STATS_WPF_BUCKETS 11

struct eng_stats {
	uint64_t keys;
	/* Keys the current table holds (it grows with them), and at most
	 * --max-keys; capacity_max: --max-keys (0: no bound). */
	uint64_t capacity, capacity_max;
	uint64_t table_slots, log_bytes, live_bytes;
	uint64_t fsync_total, fsync_ns_total, fsync_errors;
	uint64_t fsync_hist[ENG_STATS_FSYNC_BUCKETS];
	uint64_t wpf_hist[ENG_STATS_WPF_BUCKETS], wpf_sum;
	uint64_t lock_wait_ns, mutex_repairs;
	uint64_t compactions_started, compactions_done, compactions_failed;
	uint64_t compact_ns_total, reclaimed_bytes;
	uint64_t shm_bytes;   /* shared memory the table's pages use now */
	uint64_t version_lease;
	int poisoned;
};
void eng_stats(struct eng_db *db, struct eng_stats *st);

#endif
