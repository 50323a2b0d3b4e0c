/* tests/unit/test_supervise.c — how workers share new connections
 * (srv_super_accept_hold in server/supervise.h): on a supervision region
 * of its own, without processes; the drill with real sockets is in
 * tests/integration/test_bounded.c.
 */
#include "server/supervise.h"

#include <criterion/criterion.h>
#include <stdlib.h>

#define NOW 100000 /* ms; heartbeats are fresh within 1.5 s of it */
#define MAX 64     /* --max-conns; 7/8 of it is 56 */

static struct srv_super *S;

static void setup(void)
{
	S = calloc(1, sizeof(*S));
	cr_assert_not_null(S);
}

static void teardown(void)
{
	free(S);
}

/* A worker in seat that serves, takes connections and beat at `beat`. */
static void worker(int seat, int conns, uint64_t beat)
{
	srv_super_started(S, seat, 1000 + seat);
	srv_super_listen(S, seat, MAX);
	srv_super_set_ready(S, seat, 1);
	srv_super_beat(S, seat, beat, conns);
}

TestSuite(srv_super, .init = setup, .fini = teardown);

Test(srv_super, alone_a_worker_always_accepts)
{
	worker(0, 0, NOW);
	cr_assert_eq(srv_super_accept_hold(S, 0, MAX, NOW), 0);
	cr_assert_eq(srv_super_seat_conns(S, 0), MAX, "the count is published");
}

Test(srv_super, a_full_worker_holds_while_a_sibling_has_room)
{
	worker(0, 0, NOW);
	worker(1, MAX - 1, NOW);
	cr_assert_eq(srv_super_accept_hold(S, 0, MAX, NOW), 1);
	srv_super_set_conns(S, 1, MAX);
	cr_assert_eq(srv_super_accept_hold(S, 0, MAX, NOW), 0,
		     "nobody has room: accept, and 503 over the limit");
}

Test(srv_super, seven_eighths_holds_while_a_sibling_is_below_its_seven_eighths)
{
	worker(0, 0, NOW);
	worker(1, 55, NOW);
	cr_assert_eq(srv_super_accept_hold(S, 0, 56, NOW), 1);
	srv_super_set_conns(S, 1, 56);
	cr_assert_eq(srv_super_accept_hold(S, 0, 57, NOW), 0,
		     "both nearly full: the rest to whoever wakes");
}

Test(srv_super, above_the_mean_plus_slack_holds)
{
	worker(0, 0, NOW);
	worker(1, 10, NOW);
	cr_assert_eq(srv_super_accept_hold(S, 0, 14, NOW), 0, "mean 12 + 2");
	cr_assert_eq(srv_super_accept_hold(S, 0, 15, NOW), 1);
	cr_assert_eq(srv_super_accept_hold(S, 1, 10, NOW), 0, "the lower one never holds");
}

Test(srv_super, stale_stopping_or_starting_siblings_are_not_counted_on)
{
	worker(0, 0, NOW);
	worker(1, 0, NOW - 1600); /* missed three beats: a wedged loop */
	cr_assert_eq(srv_super_accept_hold(S, 0, MAX, NOW), 0);
	srv_super_beat(S, 1, NOW, 0);
	srv_super_unlisten(S, 1); /* stopping */
	cr_assert_eq(srv_super_accept_hold(S, 0, MAX, NOW), 0);
	srv_super_listen(S, 1, MAX);
	srv_super_set_ready(S, 1, 0); /* starting */
	cr_assert_eq(srv_super_accept_hold(S, 0, MAX, NOW), 0);
	srv_super_set_ready(S, 1, 1);
	cr_assert_eq(srv_super_accept_hold(S, 0, MAX, NOW), 1);
}

Test(srv_super, siblings_limits_are_their_own)
{
	worker(0, 0, NOW);
	worker(1, 0, NOW);
	srv_super_listen(S, 1, 8); /* a reload with another --max-conns */
	srv_super_set_conns(S, 1, 8);
	cr_assert_eq(srv_super_accept_hold(S, 0, MAX, NOW), 0, "the sibling is full");
}
