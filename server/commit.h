/* server/commit.h — a worker's durability thread (group commit's server
 * half).
 *
 * Owns: the thread that blocks on fdatasync, or waits for another
 * worker's, so the event loop never does; and the queue of responses
 * waiting for durability. The loop hands in a ticket (engine/durable.h)
 * and a callback; the thread makes sure a covering sync happens and pokes
 * the loop through an eventfd; the loop then runs every callback whose
 * ticket is covered, in order.
 *
 * In always mode each write gets an fdatasync that begins after it, run
 * one at a time by this thread: Redis's appendfsync always.
 *
 * Reads that found a record not yet durable wait for a covering sync in
 * group and always mode (HTTP-API.md: no response shows a write before
 * it is durable); in periodic mode they answer at once.
 *
 * In periodic mode nothing waits: the thread syncs every interval when
 * the log has grown, when kicked (the version lease runs low), and once
 * more when the worker stops.
 *
 * Threads: srv_commit_wait and the callbacks run on the loop thread only.
 */
#ifndef CASKD_SERVER_COMMIT_H
#define CASKD_SERVER_COMMIT_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct eng_db;
struct srv_commit;

/* rc: 0 durable, ENG_EPOISONED or -errno: not durable, do not acknowledge */
typedef void (*srv_commit_cb)(int rc, void *arg);

enum srv_commit_mode {
	SRV_COMMIT_GROUP,    /* wait for a sync covering the write, shared */
	SRV_COMMIT_PERIODIC, /* answer at once; sync every interval */
	SRV_COMMIT_ALWAYS,   /* one fdatasync of its own per write (the
			    * baseline group commit is measured against) */
};

int srv_commit_start(struct event_base *base, struct eng_db *db,
		     enum srv_commit_mode mode, int interval_ms,
		     struct srv_commit **out);
/* Runs cb(rc, arg) on the loop once the write holding ticket is durable. */
int srv_commit_wait(struct srv_commit *c, uint32_t ticket, srv_commit_cb cb,
		    void *arg);
/* The same for a read that found a record a sync has not covered yet:
 * ticket from eng_sync_ticket() after the lookup. */
int srv_commit_wait_read(struct srv_commit *c, uint32_t ticket,
			 srv_commit_cb cb, void *arg);
/* 1 if reads of records not yet durable must wait (group, always). */
int srv_commit_reads_wait(const struct srv_commit *c);
/* 0, or the error that made the sync thread give up (a failure that
 * lasted, or one no retry helps): the worker should then be replaced. */
int srv_commit_failed(struct srv_commit *c);
/* Asks for a sync soon whatever the mode (the version lease runs low). */
void srv_commit_kick(struct srv_commit *c);
/* Final sync (periodic mode), stops and joins the thread, frees c. Any
 * waiter left gets -ECANCELED. */
void srv_commit_stop(struct srv_commit *c);

#endif
