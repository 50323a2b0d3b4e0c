/* bench/idxbench.c — the index alone, without HTTP: GET and PUT throughput
 * per process as processes are added (issue 14).
 *
 * The process opens a store in a temp dir as its master (eng_db_open, as
 * the unit tests do; --max-keys 0) and takes worker slot 0 to preload K
 * keys (16-byte keys idx:%012u, 100-byte values) with eng_write, running
 * the table rebuilds the writes ask for the way the master does (a job
 * process on ENG_JOB_SEAT). Then, for N = 1, 2, ..., max N, it forks N
 * reader processes (eng_get + eng_val_release of uniformly random
 * preloaded keys, in a loop) and N writer processes (eng_write PUT
 * replacing uniformly random keys), each attached to its own worker
 * slot, all released at once and stopping by themselves D seconds later.
 * Each child reports its op count, wall and CPU time through a shared
 * anonymous mapping; an alarm kills a child that hangs.
 *
 * During a round this process does what caskd's periodic mode does: an
 * fdatasync about once a second if the log grew, or sooner when a writer
 * says the version lease runs low (eng_result.want_sync), so writers
 * never wait for versions. Before each round it syncs, so that no round
 * pays for the previous one's dirty pages.
 *
 * Output (stdout): a header line
 *   IDXBENCH keys=K key_bytes=16 value_bytes=100 seconds=D nproc=P max_n=M
 *            pass=P preload_s=S table_slots=T
 * then one line per N:
 *   IDX n=N get_per_proc=... put_per_proc=... get_total=... put_total=...
 *       lock_wait_ms=... get_per_cpu_s=... put_per_cpu_s=... cpu_pct=...
 * Rates are ops per second of wall time (per process: the mean over the
 * N readers or writers; total: their sum); get_per_cpu_s and
 * put_per_cpu_s are ops per CPU-second the readers or writers used,
 * which does not depend on how the scheduler shared the cores; cpu_pct
 * is the CPU the 2N children used, as a % of the cores (nproc x D).
 * lock_wait_ms is the growth of eng_stats' lock_wait_ns over the round:
 * time all processes together waited for the index (and sync) mutex.
 *
 * Usage: idxbench [-k keys] [-d seconds] [-n max_n] [-p writes_per_pass]
 *   defaults: 100000 keys, 2 s per N, max N = 2 x nproc (at most 63:
 *   2N worker slots, slot 0 is this process's), writers make one
 *   eng_write per PUT; -p P makes them write P PUTs per eng_write_pass,
 *   as a worker's loop turn does (P <= 32).
 * Exit status 0, or 1 on any failure (the temp dir is removed either
 * way); 130 when interrupted.
 */
#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/job.h"
#include "engine/store.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEY_LEN 16            /* "idx:" + 12 digits */
#define VAL_LEN 100
#define MAX_N ((ENG_SEATS - 1) / 2)
#define OPS_PER_CHECK 32      /* ops between looks at the clock */
#define PASS_MAX 32           /* -p at most */
#define CHILD_ALARM_S 30      /* beyond D: a child that hangs dies */
#define SYNC_EVERY_NS 1000000000ull /* caskd's default --fsync-interval-ms */
#define TICK_NS 10000000L     /* the parent looks at want_sync this often */
#define MAX_RETRIES 100000    /* -EAGAIN in a row before giving up */

/* Exit statuses of a child, naming the step that failed. */
enum {
	CX_OK = 0,
	CX_ATTACH = 10,
	CX_READY,
	CX_GO,
	CX_GET,
	CX_GET_LEN,
	CX_PUT,
	CX_RETRIES,
	CX_CLOCK,
};

/* One per child, on its own cache line. */
struct cstat {
	uint64_t ops;
	uint64_t ns;      /* wall time from the round's start to its stop */
	uint64_t cpu_ns;  /* CPU time it used meanwhile */
	uint64_t busy;    /* PUTs refused with -EAGAIN (key busy), retried */
} __attribute__((aligned(64)));

struct shm {
	_Atomic int stop;       /* interrupted or failed: stop now */
	_Atomic int want_sync;  /* a writer saw the version lease run low */
	_Atomic uint64_t t0_ns; /* the round's start (CLOCK_MONOTONIC) */
	struct cstat c[2 * MAX_N];
};

static struct shm *g_shm;
static volatile sig_atomic_t g_interrupted;
static char g_dir[64];
static struct eng_db g_db;
static int g_db_open;

static void on_signal(int sig)
{
	(void)sig;
	g_interrupted = 1;
	if (g_shm)
		atomic_store(&g_shm->stop, 1);
}

static int now_ns(uint64_t *out, clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts))
		return -1;
	*out = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	return 0;
}

static uint64_t mono_ns(void)
{
	uint64_t t;

	if (now_ns(&t, CLOCK_MONOTONIC)) {
		perror("idxbench: clock_gettime");
		exit(1);
	}
	return t;
}

/* xorshift64* */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* Key number i: idx: and 12 decimal digits, 16 bytes, no terminator. */
static void fmt_key(char *k, uint64_t i)
{
	memcpy(k, "idx:", 4);
	for (int d = KEY_LEN - 1; d >= 4; d--) {
		k[d] = (char)('0' + i % 10);
		i /= 10;
	}
}

static uint64_t pick(uint64_t *s, uint64_t keys)
{
	return (uint64_t)(((unsigned __int128)rnd(s) * keys) >> 64);
}

/* --- the store ---------------------------------------------------------------- */

/* One fdatasync if the log grew since the last (renews the version lease
 * too). 0 or -1. */
static int sync_if_dirty(struct eng_db *db)
{
	int rc;

	if (!eng_sync_dirty(db))
		return 0;
	if ((rc = eng_sync_wait(db, eng_sync_ticket(db)))) {
		fprintf(stderr, "idxbench: sync: %s\n", eng_strerror(rc));
		return -1;
	}
	return 0;
}

static int wait_child(pid_t pid, int *status)
{
	pid_t r;

	while ((r = waitpid(pid, status, 0)) < 0 && errno == EINTR)
		;
	if (r != pid) {
		perror("idxbench: waitpid");
		return -1;
	}
	return 0;
}

/* Runs the table rebuild writers asked for, as the master does: in a job
 * process attached to ENG_JOB_SEAT, which starts once the job is recorded
 * as started. 1 if a job ran, 0 if none was wanted, -1 on failure. */
static int run_job(struct eng_db *db)
{
	struct eng_compact_policy never = { 0 };
	struct eng_job_info info;
	uint64_t id;
	int go[2], st, rc;
	pid_t pid;
	char c = 'g';

	eng_job_reclaim(db);
	if (!eng_job_next(db, &never, &id))
		return 0;
	if (pipe2(go, O_CLOEXEC)) {
		perror("idxbench: pipe2");
		eng_job_started(db, id, -errno);
		return -1;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("idxbench: fork");
		eng_job_started(db, id, -errno);
		close(go[0]);
		close(go[1]);
		return -1;
	}
	if (pid == 0) {
		alarm(CHILD_ALARM_S);
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(10);
		if (eng_db_attach(db, ENG_JOB_SEAT))
			_exit(11);
		_exit(eng_job_run(db, id, NULL));
	}
	close(go[0]);
	eng_job_started(db, id, pid);
	rc = write(go[1], &c, 1) == 1 ? 0 : -1;
	if (rc)
		perror("idxbench: write to the job process");
	close(go[1]);
	if (wait_child(pid, &st))
		return -1;
	eng_job_reaped(db, pid, st);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "idxbench: job %" PRIu64 " process: status 0x%x\n", id, st);
		rc = -1;
	}
	if ((st = eng_db_refresh(db))) {
		fprintf(stderr, "idxbench: refresh after job: %s\n", eng_strerror(st));
		return -1;
	}
	eng_job_reclaim(db);
	if ((st = eng_job_get(db, id, &info))) {
		fprintf(stderr, "idxbench: job %" PRIu64 ": %s\n", id, eng_strerror(st));
		return -1;
	}
	if (info.state != ENG_JOB_DONE) {
		fprintf(stderr, "idxbench: job %" PRIu64 " (%s) %s: %s\n", id,
			eng_job_kind_name(info.kind), eng_job_state_name(info.state),
			info.error);
		return -1;
	}
	return rc ? -1 : 1;
}

/* PUTs key number i, retrying -EAGAIN (running the rebuilds the table
 * wants, syncing when the lease runs low). 0 or -1. */
static int preload_one(struct eng_db *db, uint64_t i, const char *val)
{
	char key[KEY_LEN];
	struct eng_op op = {
		.kind = ENG_OP_PUT, .key = key, .klen = KEY_LEN,
		.val = val, .vlen = VAL_LEN,
	};
	struct eng_result res;
	int rc, tries = 0;

	fmt_key(key, i);
	for (;;) {
		rc = eng_write(db, &op, &res);
		if (res.want_sync && sync_if_dirty(db))
			return -1;
		if (rc == 0)
			return 0;
		if (rc != -EAGAIN || ++tries > MAX_RETRIES) {
			fprintf(stderr, "idxbench: preload PUT %.*s: %s\n", KEY_LEN, key,
				eng_strerror(rc));
			return -1;
		}
		if ((rc = run_job(db)) < 0)
			return -1;
		if (rc == 0 && sync_if_dirty(db))
			return -1;
	}
}

/* --- children --------------------------------------------------------------- */

static void reader_ops(struct eng_db *db, uint64_t keys, uint64_t *seed,
		       uint64_t *ops)
{
	char key[KEY_LEN];
	struct eng_val v;

	for (int n = 0; n < OPS_PER_CHECK; n++) {
		int rc, tries = 0;

		fmt_key(key, pick(seed, keys));
		while ((rc = eng_get(db, key, KEY_LEN, &v)) == -EAGAIN)
			if (++tries > MAX_RETRIES)
				_exit(CX_RETRIES);
		if (rc)
			_exit(CX_GET);
		if (v.len != VAL_LEN)
			_exit(CX_GET_LEN);
		eng_val_release(db, &v);
		(*ops)++;
	}
}

/* Writes per call: 1 is eng_write; more is eng_write_pass, as a worker
 * does with the PUTs it parsed in one loop turn (-p). */
static int g_pass = 1;

static void writer_ops(struct eng_db *db, uint64_t keys, uint64_t *seed,
		       const char *val, uint64_t *ops, uint64_t *busy)
{
	char key[PASS_MAX][KEY_LEN];
	struct eng_op op[PASS_MAX];
	const struct eng_op *opp[PASS_MAX];
	struct eng_result res[PASS_MAX], *resp[PASS_MAX];
	int rcs[PASS_MAX], tries = 0;

	for (int i = 0; i < g_pass; i++) {
		op[i] = (struct eng_op){ .kind = ENG_OP_PUT, .key = key[i], .klen = KEY_LEN,
					 .val = val, .vlen = VAL_LEN };
		opp[i] = &op[i];
		resp[i] = &res[i];
	}
	for (int n = 0; n < OPS_PER_CHECK; n += g_pass) {
		int done = 0;

		/* A busy key (another writer's, or one this pass already
		 * writes) or no version left: another key next time, as a
		 * client would retry later. */
		for (int i = 0; i < g_pass; i++)
			fmt_key(key[i], pick(seed, keys));
		if (eng_write_pass(db, opp, (size_t)g_pass, resp, rcs))
			_exit(CX_PUT);
		for (int i = 0; i < g_pass; i++) {
			if (res[i].want_sync)
				atomic_store(&g_shm->want_sync, 1);
			if (rcs[i] == -EAGAIN || rcs[i] == ENG_ENEXTPASS) {
				(*busy)++;
				continue;
			}
			if (rcs[i])
				_exit(CX_PUT);
			done++;
		}
		*ops += (uint64_t)done;
		if (done) {
			tries = 0;
		} else {
			if (++tries > MAX_RETRIES)
				_exit(CX_RETRIES);
			if (tries % 64 == 0)
				sched_yield();
		}
	}
}

/* A reader or writer: attaches to slot, says it is ready, waits for the
 * go (EOF on go_fd), runs until the round's end, reports, exits. */
static void child(struct eng_db *db, int slot, int writer, int idx,
		  uint64_t keys, uint64_t dur_ns, int ready_fd, int go_fd,
		  const char *val)
{
	struct cstat *cs = &g_shm->c[idx];
	uint64_t seed, t0, end, t, c0, c1, ops = 0, busy = 0;
	char c = 'r';

	alarm((unsigned)(dur_ns / 1000000000ull) + CHILD_ALARM_S);
	if (eng_db_attach(db, slot))
		_exit(CX_ATTACH);
	if (write(ready_fd, &c, 1) != 1)
		_exit(CX_READY);
	close(ready_fd);
	if (read(go_fd, &c, 1) != 0)
		_exit(CX_GO);
	close(go_fd);
	seed = ((uint64_t)getpid() << 32 | (uint64_t)slot) * 0x9e3779b97f4a7c15ull | 1;
	t0 = atomic_load(&g_shm->t0_ns);
	end = t0 + dur_ns;
	if (now_ns(&c0, CLOCK_PROCESS_CPUTIME_ID))
		_exit(CX_CLOCK);
	do {
		if (writer)
			writer_ops(db, keys, &seed, val, &ops, &busy);
		else
			reader_ops(db, keys, &seed, &ops);
		if (now_ns(&t, CLOCK_MONOTONIC))
			_exit(CX_CLOCK);
	} while (t < end && !atomic_load_explicit(&g_shm->stop, memory_order_relaxed));
	if (now_ns(&c1, CLOCK_PROCESS_CPUTIME_ID))
		_exit(CX_CLOCK);
	cs->ops = ops;
	cs->ns = t - t0;
	cs->cpu_ns = c1 - c0;
	cs->busy = busy;
	_exit(CX_OK);
}

/* --- rounds ------------------------------------------------------------------- */

/* The parent's part of the window: sleep in ticks until its end, syncing
 * as caskd's periodic mode does. 0 or -1. */
static int parent_window(struct eng_db *db, uint64_t t0, uint64_t dur_ns)
{
	uint64_t last_sync = t0, t;
	struct timespec tick = { 0, TICK_NS };

	while ((t = mono_ns()) < t0 + dur_ns && !atomic_load(&g_shm->stop)) {
		if (atomic_exchange(&g_shm->want_sync, 0) || t - last_sync >= SYNC_EVERY_NS) {
			if (sync_if_dirty(db))
				return -1;
			last_sync = mono_ns();
			continue;
		}
		if (nanosleep(&tick, NULL) && errno != EINTR) {
			perror("idxbench: nanosleep");
			return -1;
		}
	}
	return 0;
}

static double per_s(uint64_t ops, uint64_t ns)
{
	return ns ? (double)ops * 1e9 / (double)ns : 0;
}

/* One round with n readers and n writers. 0 or -1. */
static int round_n(struct eng_db *db, int n, uint64_t keys, uint64_t dur_ns,
		   int ncpu, const char *val)
{
	int ready[2], go[2], failed = 0, forked = 0, got = 0;
	pid_t pids[2 * MAX_N];
	struct eng_stats s0, s1;
	double get_sum = 0, put_sum = 0;
	uint64_t gets = 0, puts = 0, get_cpu = 0, put_cpu = 0, t0;

	memset(g_shm->c, 0, sizeof(g_shm->c));
	atomic_store(&g_shm->want_sync, 0);
	if (pipe2(ready, O_CLOEXEC)) {
		perror("idxbench: pipe2");
		return -1;
	}
	if (pipe2(go, O_CLOEXEC)) {
		perror("idxbench: pipe2");
		close(ready[0]);
		close(ready[1]);
		return -1;
	}
	fflush(stdout);
	for (int i = 0; i < 2 * n; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("idxbench: fork");
			failed = 1;
			break;
		}
		if (pid == 0) {
			close(ready[0]);
			close(go[1]);
			/* readers take slots 1..n, writers n+1..2n */
			child(db, 1 + i, i >= n, i, keys, dur_ns, ready[1], go[0], val);
		}
		pids[forked++] = pid;
	}
	close(ready[1]);
	close(go[0]);
	/* Every child attached (EOF first: one of them failed). */
	while (!failed && got < forked) {
		char buf[2 * MAX_N];
		ssize_t r = read(ready[0], buf, (size_t)(forked - got));

		if (r < 0 && errno == EINTR) {
			if (g_interrupted)
				failed = 1;
			continue;
		}
		if (r <= 0) {
			if (r < 0)
				perror("idxbench: read");
			failed = 1;
			break;
		}
		got += (int)r;
	}
	close(ready[0]);
	if (!failed && sync_if_dirty(db))
		failed = 1;
	if (failed)
		atomic_store(&g_shm->stop, 1);
	eng_stats(db, &s0);
	t0 = mono_ns();
	atomic_store(&g_shm->t0_ns, t0);
	close(go[1]); /* go */
	if (!failed && parent_window(db, t0, dur_ns))
		failed = 1;
	if (failed)
		atomic_store(&g_shm->stop, 1);
	for (int i = 0; i < forked; i++) {
		int st;

		if (wait_child(pids[i], &st)) {
			failed = 1;
			continue;
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != CX_OK) {
			if (!g_interrupted)
				fprintf(stderr, "idxbench: n=%d %s %d: %s %d\n", n,
					i < n ? "reader" : "writer", i < n ? i : i - n,
					WIFEXITED(st) ? "failed at step" : "killed by signal",
					WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			failed = 1;
		}
	}
	if (failed || g_interrupted)
		return -1;
	eng_stats(db, &s1);
	for (int i = 0; i < 2 * n; i++) {
		struct cstat *c = &g_shm->c[i];

		if (i < n) {
			gets += c->ops;
			get_cpu += c->cpu_ns;
			get_sum += per_s(c->ops, c->ns);
		} else {
			puts += c->ops;
			put_cpu += c->cpu_ns;
			put_sum += per_s(c->ops, c->ns);
		}
	}
	printf("IDX n=%d get_per_proc=%.0f put_per_proc=%.0f get_total=%.0f put_total=%.0f "
	       "lock_wait_ms=%.1f get_per_cpu_s=%.0f put_per_cpu_s=%.0f cpu_pct=%.0f\n",
	       n, get_sum / n, put_sum / n, get_sum, put_sum,
	       (double)(s1.lock_wait_ns - s0.lock_wait_ns) / 1e6,
	       per_s(gets, get_cpu), per_s(puts, put_cpu),
	       100.0 * (double)(get_cpu + put_cpu) / ((double)dur_ns * ncpu));
	fflush(stdout);
	return 0;
}

/* --- main --------------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path)) {
		fprintf(stderr, "idxbench: remove %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int cleanup(void)
{
	int rc = 0;

	if (g_db_open) {
		g_db.seat = -1; /* the master's close: the shared regions go too */
		eng_db_close(&g_db);
		g_db_open = 0;
	}
	if (g_dir[0]) {
		if (nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS))
			rc = -1;
		g_dir[0] = 0;
	}
	if (g_shm) {
		if (munmap(g_shm, sizeof(*g_shm))) {
			perror("idxbench: munmap");
			rc = -1;
		}
		g_shm = NULL;
	}
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: idxbench [-k keys] [-d seconds] [-n max_n] [-p writes_per_pass]\n"
		"  defaults: 100000 keys, 2 s per N, max N = 2 x nproc (at most %d), 1 write per call\n",
		MAX_N);
	return 2;
}

int main(int argc, char **argv)
{
	uint64_t keys = 100000, t0;
	double secs = 2;
	int max_n = 0, ncpu, opt, rc = 0;
	cpu_set_t cpus;
	char val[VAL_LEN], *end;
	struct eng_recovery rep;
	struct eng_stats st;
	struct sigaction sa;
	const char *tmp = getenv("TMPDIR");

	while ((opt = getopt(argc, argv, "k:d:n:p:")) != -1) {
		errno = 0;
		switch (opt) {
		case 'k':
			keys = strtoull(optarg, &end, 10);
			if (errno || *end || keys < 1 || keys > 100000000)
				return usage();
			break;
		case 'd':
			secs = strtod(optarg, &end);
			if (errno || *end || !(secs > 0 && secs <= 3600))
				return usage();
			break;
		case 'p':
			g_pass = (int)strtol(optarg, &end, 10);
			if (errno || *end || g_pass < 1 || g_pass > PASS_MAX)
				return usage();
			break;
		case 'n':
			max_n = (int)strtol(optarg, &end, 10);
			if (errno || *end || max_n < 1 || max_n > MAX_N)
				return usage();
			break;
		default:
			return usage();
		}
	}
	if (optind != argc)
		return usage();
	if (sched_getaffinity(0, sizeof(cpus), &cpus)) {
		perror("idxbench: sched_getaffinity");
		return 1;
	}
	ncpu = CPU_COUNT(&cpus);
	if (!max_n)
		max_n = 2 * ncpu > MAX_N ? MAX_N : 2 * ncpu;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL) ||
	    sigaction(SIGHUP, &sa, NULL)) {
		perror("idxbench: sigaction");
		return 1;
	}
	g_shm = mmap(NULL, sizeof(*g_shm), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g_shm == MAP_FAILED) {
		g_shm = NULL;
		perror("idxbench: mmap");
		return 1;
	}
	snprintf(g_dir, sizeof(g_dir), "%s/caskd-idxbench-XXXXXX",
		 tmp && *tmp && strlen(tmp) < sizeof(g_dir) - 24 ? tmp : "/tmp");
	if (!mkdtemp(g_dir)) {
		perror("idxbench: mkdtemp");
		g_dir[0] = 0;
		cleanup();
		return 1;
	}
	for (int i = 0; i < VAL_LEN; i++)
		val[i] = (char)('a' + i % 26);

	{
		struct eng_opts o = {
			.dir = g_dir, .max_keys = 0, .max_value = 1u << 20,
			.mark_interval_ms = 100,
		};
		if ((rc = eng_db_open(&o, &g_db, &rep))) {
			fprintf(stderr, "idxbench: opening a store in %s: %s%s%s\n", g_dir,
				eng_strerror(rc), rep.failed[0] ? ": " : "", rep.failed);
			goto fail;
		}
		g_db_open = 1;
	}
	if ((rc = eng_db_attach(&g_db, 0))) {
		fprintf(stderr, "idxbench: attach to slot 0: %s\n", eng_strerror(rc));
		goto fail;
	}
	t0 = mono_ns();
	for (uint64_t i = 0; i < keys && !g_interrupted; i++)
		if (preload_one(&g_db, i, val))
			goto fail;
	/* A rebuild may still be wanted (the table past 7/10): run it now,
	 * not in the middle of a round (no new keys come in rounds). */
	while ((rc = run_job(&g_db)) > 0)
		;
	if (rc < 0 || g_interrupted || sync_if_dirty(&g_db))
		goto fail;
	eng_stats(&g_db, &st);
	if (st.keys != keys) {
		fprintf(stderr, "idxbench: %" PRIu64 " keys after the preload, not %" PRIu64 "\n",
			st.keys, keys);
		goto fail;
	}
	printf("IDXBENCH keys=%" PRIu64 " key_bytes=%d value_bytes=%d seconds=%g nproc=%d "
	       "max_n=%d pass=%d preload_s=%.2f table_slots=%" PRIu64 "\n", keys, KEY_LEN,
	       VAL_LEN, secs, ncpu, max_n, g_pass, (double)(mono_ns() - t0) / 1e9, st.table_slots);
	fflush(stdout);
	for (int n = 1; n <= max_n; n++)
		if (round_n(&g_db, n, keys, (uint64_t)(secs * 1e9), ncpu, val))
			goto fail;
	return cleanup() ? 1 : 0;
fail:
	cleanup();
	return g_interrupted ? 130 : 1;
}
