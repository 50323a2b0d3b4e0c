/* tests/cluster/checker.h — the cluster drills' history checker.
 *
 * Reads what tests/cluster/workload.c recorded and what each member holds
 * after healing, and decides whether the group kept CLUSTER.md's promises:
 *   (a) every acknowledged write is in every member's final state, or a
 *       newer version written by a known (acknowledged or indeterminate)
 *       operation is;
 *   (b) per register key, the PUT/GET/CAS/batch history is linearizable
 *       as a register with versions (WGL search, below);
 *   (c) no (key, version) names two values, across all answers and all
 *       dumps, and no version is handed to two different writes;
 *   (d) each counter's final value lies in [acknowledged, attempted]
 *       increments, and acknowledged incr answers are distinct;
 *   (e) the members' dumps are identical.
 *
 * History format (one event per line; '#' starts a comment):
 *   I <id> <thread> <ns> <op> <key> <a1> <a2>
 *       op put: a1 value;  cas: a1 value, a2 expected version;
 *       get: - -;  incr: a1 by;  batch: key "k1,k2", a1 "v1,v2"
 *   C <id> <ns> <outcome> <status> <version|-> <value|->
 *       outcome ok (a definite answer: 2xx, or 404 for get, 412 for cas),
 *       fail (never applied), info (indeterminate), stale (a GET a
 *       replica answered: held to (c), not to linearizability); value percent-encoded
 *       (the GET or incr body). An I with no C is indeterminate.
 * Dump format: "K <key> <version> <value>" per live key.
 *
 * The linearizability search is Wing & Gong's, with Lowe's memoisation of
 * (linearized set, state): an indeterminate operation has no return, so it
 * may take effect at any point after its invocation, or never. Two cuts
 * keep the search small without changing its verdict: definite failures
 * (fail, a 412 CAS) are left out, and so is an indeterminate write whose
 * value no read and no dump ever shows (placing it after everything else
 * satisfies every constraint the check keeps; a 412 is not a constraint).
 * A key whose search passes `step_limit` steps is reported "unknown", not
 * failed, and the search never hangs.
 *
 * Not thread-safe; plain C, no Criterion, so the drill, the CLI and the
 * unit suite share it.
 */
#ifndef CASKD_TESTS_CLUSTER_CHECKER_H
#define CASKD_TESTS_CLUSTER_CHECKER_H

#include <stddef.h>
#include <stdint.h>

struct ckc_history;
struct ckc_dump;

struct ckc_opts {
	long step_limit;  /* per key; 0: CKC_DEFAULT_STEP_LIMIT */
	int max_excerpt;  /* history lines shown per failure; 0: 40 */
};
#define CKC_DEFAULT_STEP_LIMIT 20000000L

struct ckc_result {
	int failures;     /* broken promises found */
	int unknown;      /* keys the search gave up on */
	long ops, acked, indeterminate, failed, stale;
	char *report;     /* malloc'd text, one finding per paragraph */
	size_t len, cap;
};

/* Percent-encodes every byte but [A-Za-z0-9_.,:-]; malloc'd; "" -> "%". */
char *ckc_encode(const void *p, size_t n);

/* Parse from text (the unit suite) or load a file. On error, -EINVAL and
 * a message naming the line in err. */
int ckc_history_parse(const char *text, struct ckc_history **out, char *err,
		      size_t errn);
int ckc_history_load(const char *path, struct ckc_history **out, char *err,
		     size_t errn);
void ckc_history_free(struct ckc_history *h);

int ckc_dump_parse(const char *text, const char *name, struct ckc_dump **out,
		   char *err, size_t errn);
int ckc_dump_load(const char *path, const char *name, struct ckc_dump **out,
		  char *err, size_t errn);
void ckc_dump_free(struct ckc_dump *d);

/* Runs (a)..(e); dumps may be NULL when ndumps is 0 (then (a), (d) and
 * (e) have nothing to check). Returns 0 when the checks ran (see
 * res->failures and res->unknown), -errno on a local error. */
int ckc_check(const struct ckc_history *h, struct ckc_dump *const *dumps,
	      int ndumps, const struct ckc_opts *opts, struct ckc_result *res);
void ckc_result_free(struct ckc_result *res);

/* Client-seen write outage after each fault: the longest time without an
 * acknowledged write completing, from fault_ns[i] (when the fault landed)
 * to the next fault (or end_ns). A fault that takes a while to bite (a
 * primary cut off from etcd loses its lease only later) is measured where
 * it bites. censored[i] is set when the longest stretch runs to the end
 * of the window: writes did not come back before the next fault. */
void ckc_outages(const struct ckc_history *h, const int64_t *fault_ns,
		 int nfaults, int64_t end_ns, int64_t *outage_ns,
		 int *censored);

#endif
