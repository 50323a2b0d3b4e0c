/* server/cluster_state.h — what a group member knows about its group:
 * the shared record every process of the member reads, and the durable
 * file (dir/cluster.state) that outlives restarts.
 *
 * Owns:
 * - struct srv_cl_shm, one per member, in shared memory the master makes
 *   before it forks. The cluster agent (server/cluster_agent.c) is the
 *   only writer of the role, the term, the lease, the primary's URL, the
 *   members' names and the term history; the workers that serve
 *   POST /cluster/ack (server/api_cluster.c) write the replicas' acks,
 *   each only with srv_cl_ack(); the replicator thread writes `applied`.
 *   Text fields change under `seq` (odd while they do), so readers copy
 *   them with srv_cl_read_text() and retry; numbers are atomics.
 * - The term history: the terms this member's log holds writes of, each
 *   with the last version of older terms its primary held when it began.
 *   Every version a primary of term T hands out is at least T << 32
 *   (srv_cl_term_base), so the term of a version is version >> 32 and two
 *   primaries never give one version two values. A member whose last
 *   version V of term t lies beyond the end of t in the primary's history
 *   has writes the group never acknowledged (it diverged).
 * - dir/cluster.state: the group's name, this node's name, the group
 *   size, the highest term seen (the fence: nothing from a lower term is
 *   taken after it is written) and the history. Rewritten whole
 *   (temporary file, fsync, rename, fsync of the directory), checked by a
 *   CRC, parsed by a pure parser (tests/fuzz/fuzz_clstate.c).
 *
 * Pure functions here take no lock and do no I/O but the file's load and
 * save; nothing here blocks but srv_cl_state_save (fsync: never on a
 * worker's loop).
 */
#ifndef CASKD_SERVER_CLUSTER_STATE_H
#define CASKD_SERVER_CLUSTER_STATE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_CL_MEMBERS_MAX 9
#define SRV_CL_HISTORY_MAX 64
#define SRV_CL_NAME_MAX 64
#define SRV_CL_URL_MAX 200
#define SRV_CL_STATE_FILE "cluster.state"
/* The replication stream's frame header (api_cluster.c writes frames,
 * cluster_repl.c reads them): u8 kind, u8[3] 0, u32 payload length,
 * u64 a, u64 b, little-endian. */
#define SRV_CL_FRAME_HDR 24
#define SRV_CL_FRAME_MAX (64u << 20) /* more than any record */

enum srv_cl_role {
	SRV_CL_CANDIDATE = 0, /* no primary known, or not yet in step */
	SRV_CL_PRIMARY,
	SRV_CL_REPLICA,       /* following the primary, caught up or close */
	SRV_CL_CATCHING_UP,   /* copying the primary's data, or far behind */
};

/* Term t's versions start at t << 32 (srv_cl_term_base). */
static inline uint64_t srv_cl_term_base(uint64_t term)
{
	return term << 32;
}

static inline uint64_t srv_cl_term_of(uint64_t version)
{
	return version >> 32;
}

struct srv_cl_term {
	uint64_t term;
	uint64_t prev_end; /* the newest version of older terms its primary held */
};

struct srv_cl_history {
	uint32_t n;
	struct srv_cl_term t[SRV_CL_HISTORY_MAX]; /* ascending terms */
};

struct srv_cl_member {
	char node[SRV_CL_NAME_MAX];           /* under seq */
	char url[SRV_CL_URL_MAX];             /* under seq */
	_Atomic uint64_t acked;    /* durable on it up to here (current term) */
	_Atomic uint64_t acked_ms; /* when the last ack came (monotonic) */
};

struct srv_cl_shm {
	_Atomic uint32_t seq;         /* odd while text or the history change */
	_Atomic uint32_t role;        /* enum srv_cl_role */
	_Atomic uint64_t term;        /* the term the role is held in */
	_Atomic uint64_t max_term;    /* the highest term seen (durable) */
	/* Primary: it may answer reads and take writes until this instant
	 * (CLOCK_BOOTTIME, ms), a margin before its etcd lease can end. */
	_Atomic uint64_t lease_until_ms;
	_Atomic uint32_t writable;    /* primary: fenced, versions raised */
	_Atomic uint64_t applied;     /* newest version durable in our log */
	_Atomic uint64_t primary_top; /* replica: the primary's newest, as heard */
	_Atomic uint64_t primary_heard_ms; /* ... when (monotonic) */
	_Atomic uint32_t ack_gen;     /* futex word: bumped when an ack moves */
	_Atomic uint64_t deposed;     /* a request named this newer term */
	_Atomic uint64_t failovers;   /* times this member became primary */
	_Atomic uint64_t repl_bytes;  /* replication bytes sent or received */
	_Atomic uint64_t waiting;     /* writes waiting for a majority */
	_Atomic uint32_t repl_error;  /* replica: why it is not acknowledging */
	_Atomic uint64_t etcd_ok_ms;  /* the agent's last answer from etcd (monotonic) */
	_Atomic uint64_t caught_up_ms; /* replica: last time it had all the primary had */
	_Atomic uint64_t lease_id;    /* the agent's etcd lease (a new agent revokes it) */
	_Atomic uint32_t nmembers;
	_Atomic int32_t self;         /* our index in members[], -1 unknown */
	char primary_url[SRV_CL_URL_MAX];           /* under seq */
	struct srv_cl_member members[SRV_CL_MEMBERS_MAX];
	struct srv_cl_history hist;                 /* under seq */
};

/* Why a replica is not acknowledging (repl_error). */
enum srv_cl_repl_error {
	SRV_CL_REPL_OK = 0,
	SRV_CL_REPL_NO_PRIMARY,
	SRV_CL_REPL_UNREACHABLE,
	SRV_CL_REPL_DISK_FULL,
	SRV_CL_REPL_IO,
	SRV_CL_REPL_DIVERGED,
};
const char *srv_cl_repl_error_name(uint32_t e);
const char *srv_cl_role_name(uint32_t role);

/* Writer side of the text fields (the agent only). */
void srv_cl_write_begin(struct srv_cl_shm *c);
void srv_cl_write_end(struct srv_cl_shm *c);
/* A consistent copy of the text fields and the history. */
struct srv_cl_view {
	char primary_url[SRV_CL_URL_MAX];
	uint32_t nmembers;
	int self;
	char node[SRV_CL_MEMBERS_MAX][SRV_CL_NAME_MAX];
	char url[SRV_CL_MEMBERS_MAX][SRV_CL_URL_MAX];
	struct srv_cl_history hist;
};
void srv_cl_read_text(const struct srv_cl_shm *c, struct srv_cl_view *v);

/* Records that member i has everything up to version durable (term
 * checked by the caller); wakes writers waiting for a majority. */
void srv_cl_ack(struct srv_cl_shm *c, unsigned i, uint64_t version, uint64_t now_ms);
/* The newest version durable on a majority of group_size members,
 * counting this one (whose own durability the caller has waited for) as
 * holding everything: with group_size 1, UINT64_MAX. */
uint64_t srv_cl_committed(const struct srv_cl_shm *c, unsigned group_size);

/* History: the end of term t in h (the newest version of t the history's
 * owner holds or held), or 0 and -ENOENT when h has no writes of t.
 * `top` is the owner's newest version (the end of its current term). */
int srv_cl_term_end(const struct srv_cl_history *h, uint64_t t, uint64_t top,
		    uint64_t *end);
/* 1 if a member whose newest version is v (and whose history is its own)
 * holds writes that a primary with history h and newest version top does
 * not: it must drop them (a full copy) before it follows. */
int srv_cl_diverged(const struct srv_cl_history *h, uint64_t top, uint64_t v);
/* Appends (term, prev_end); -E2BIG when full (the oldest is dropped
 * first: terms that old hold no version anyone can still be behind on,
 * since a member that far back is given a full copy). */
int srv_cl_history_add(struct srv_cl_history *h, uint64_t term, uint64_t prev_end);
/* "T:E,T:E" (the X-Caskd-History header) and back. */
int srv_cl_history_format(const struct srv_cl_history *h, char *buf, size_t n);
int srv_cl_history_parse(const char *s, struct srv_cl_history *h);

/* The durable file. */
struct srv_cl_state {
	char cluster[SRV_CL_NAME_MAX];
	char node[SRV_CL_NAME_MAX];
	unsigned group_size;
	uint64_t max_term;
	struct srv_cl_history hist;
};
/* Pure: 0, or -EINVAL with why (a line for the operator). */
int srv_cl_state_parse(const char *text, size_t len, struct srv_cl_state *st,
		       char *why, size_t whylen);
/* Formats st into buf: its length, or -ENOSPC. */
long srv_cl_state_format(const struct srv_cl_state *st, char *buf, size_t n);
/* 0 and *st, -ENOENT (no file: a fresh member), or -errno / -EINVAL
 * with why. */
int srv_cl_state_load(const char *dir, struct srv_cl_state *st, char *why,
		      size_t whylen);
/* Writes st durably (blocks). 0 or -errno. */
int srv_cl_state_save(const char *dir, const struct srv_cl_state *st);

#endif
