/* engine/shared.h — the layout of the engine's shared memory region.
 *
 * Owns: the one mmap'd region every process of a caskd instance shares:
 * a versioned header, the index mutex and what it guards, the sync state
 * of group commit, one slot per worker (its in-flight reservations), and
 * the key -> offset hash table. The master creates it before fork(), so it
 * sits at the same address everywhere and holds plain pointers.
 *
 * What protects what:
 *   index_mtx : seq, tail, the counters below it, every eng_ientry, every
 *               eng_inflight, rebuilding.
 *   sync_mtx  : syncing, and durable_mark/mark_written/mark_seq (these
 *               are also used by the one process marked as syncing,
 *               without the mutex). sync_started/sync_done/poisoned are
 *               atomics, written only with sync_mtx held, read without.
 *   (none)    : eng_wslot.pid is written by the master only.
 * Lock order: see ipc/mutex.h. Neither mutex is held across file I/O.
 */
#ifndef CASKD_ENGINE_SHARED_H
#define CASKD_ENGINE_SHARED_H

#include "ipc/mutex.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#define ENG_SHM_MAGIC 0x314D48534B534143ull /* "CASKSHM1" */
#define ENG_SHM_VERSION 1
#define ENG_CACHELINE 64
#include "engine/store.h"
/* Writes one worker may have between reservation and publish. 64
 * connections each with one write in flight is the expected peak; more
 * just wait (-EAGAIN) a moment. */
#define ENG_INFLIGHT_MAX 256
/* Histogram buckets kept for /metrics (bounds in engine/durable.c). */
#define ENG_HIST_SLOTS 16
_Static_assert(ENG_HIST_SLOTS >= 12, "room for the fsync histogram");

enum eng_slot_state {
	ENG_SLOT_EMPTY = 0,   /* never used: ends a probe */
	ENG_SLOT_LIVE = 1,    /* key present */
	ENG_SLOT_DEAD = 2,    /* key deleted: probing continues past it */
	ENG_SLOT_PENDING = 3, /* new key being written, not yet visible */
};

/* 32 bytes per slot; slots = 1.45 x max keys, so 46.4 bytes of shared
 * memory per key. The key itself is not here: it precedes the value in the
 * read-only mapping of database.bin. */
struct eng_ientry {
	uint64_t voff;    /* offset of the value in database.bin */
	uint64_t version;
	uint32_t vlen;
	uint32_t hash;    /* upper 32 bits of eng_key_hash() */
	uint16_t klen;
	uint8_t state;    /* enum eng_slot_state */
	uint8_t pad;
	uint32_t writer;  /* worker slot + 1 writing this key now, or 0 */
};
_Static_assert(sizeof(struct eng_ientry) == 32, "index slot is 32 bytes");

/* A reservation of log space not yet published. off == 0 marks a free
 * entry (offset 0 is the file header, never a record). */
struct eng_inflight {
	uint64_t off;
	uint32_t len;
	uint32_t slot;    /* index slot of the key */
};

struct eng_wslot {
	alignas(ENG_CACHELINE) _Atomic int32_t pid; /* 0: slot unused */
	uint32_t ninflight; /* entries in use, for a fast "none" check */
	struct eng_inflight inflight[ENG_INFLIGHT_MAX];
};

struct eng_shared {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint64_t total_size;
	uint64_t max_keys;
	uint64_t nslots;

	alignas(ENG_CACHELINE) struct ipc_mtx index_mtx;
	uint64_t seq;         /* highest version handed out */
	uint64_t tail;        /* next free offset in database.bin */
	uint64_t live_keys;   /* LIVE slots */
	uint64_t pending;     /* PENDING slots */
	uint64_t dead;        /* DEAD slots */
	uint64_t live_bytes;  /* record bytes of live keys */
	uint32_t rebuilding;  /* set while eng_index_purge moves slots */
	uint64_t unwiped;     /* lowest failed write whose wipe failed too:
			       * the durable mark must stay below it */
	uint64_t zeroed_end;  /* database.bin holds written zeros up to here
			       * (eng_db_prezero), so appends below it do not
			       * grow the file and fdatasync skips the journal */

	alignas(ENG_CACHELINE) struct ipc_mtx sync_mtx;
	int32_t syncing;                  /* pid in fdatasync now, or 0 */
	_Atomic uint32_t sync_started;    /* generation of the last sync begun */
	_Atomic uint32_t sync_done;       /* futex word: last sync finished */
	_Atomic uint32_t poisoned;        /* an fdatasync failed */
	_Atomic uint64_t synced_tail;     /* tail covered by the last sync */
	_Atomic uint64_t fsync_total;
	_Atomic uint64_t fsync_ns_total;
	_Atomic uint64_t fsync_errors;
	_Atomic uint64_t writes_total;    /* records written, all workers */
	uint64_t writes_at_sync;          /* writes_total when the last sync
					   * began; guarded by sync_mtx */
	_Atomic uint64_t fsync_hist[ENG_HIST_SLOTS];  /* duration buckets */
	_Atomic uint64_t wpf_hist[ENG_HIST_SLOTS];    /* writes per fsync */
	_Atomic uint64_t wpf_sum;
	uint64_t durable_mark;            /* all bytes below are durable */
	uint64_t mark_written;            /* durable_mark last put in the
					   * file header */
	uint32_t mark_seq;                /* sequence of that header mark */

	alignas(ENG_CACHELINE) struct eng_wslot wslots[ENG_WORKER_SLOTS];
	/* the table follows, at eng_shared_table() */
};

static inline struct eng_ientry *eng_shared_table(struct eng_shared *sh)
{
	return (struct eng_ientry *)((char *)sh + sh->hdr_size);
}

#endif
