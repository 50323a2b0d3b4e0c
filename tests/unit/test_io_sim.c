/* tests/unit/test_io_sim.c — engine/io_sim's power cut: which states of a
 * directory and its files a cut may leave and which never, and what
 * covered_below vouches for.
 *
 * Each scenario runs in a child that installs the simulator
 * (CASKD_SIMDISK, set after fork) and makes its calls through engine/io,
 * then exits; the test process cuts the power on what it left, as the
 * drill does, once per seed, and sorts what it finds into the states the
 * model allows. A state outside them fails the test; so does an allowed
 * state that no seed reached, which would mean the cut never takes that
 * back (or never keeps it).
 */
#include "engine/io.h"
#include "engine/io_sim.h"
#include "tests/unit/unit_util.h"

#include <inttypes.h>
#include <sys/mman.h>

#define SEEDS 48
#define NPOS 8 /* journal lengths a child notes for the test */

UU_DIR_SUITE(io_sim, "iosim");

static char run_dir[UU_DIR_MAX + 32];
static char journal[UU_DIR_MAX + 32];
static uint64_t *pos; /* shared with the child */

static void path_in(char *out, const char *name)
{
	uu_path(out, PATH_MAX, run_dir, name);
}

/* --- in the child: calls through engine/io --------------------------------- */

/* The journal's length now, noted at pos[i] for the test. */
static void note(int i)
{
	struct stat st;

	if (stat(journal, &st) < 0)
		_exit(90);
	pos[i] = (uint64_t)st.st_size;
}

static int create(const char *name)
{
	char p[PATH_MAX];

	path_in(p, name);
	return eng_io_open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
}

/* Creates name holding text; syncs it when sync (and never its entry). */
static int put_file(const char *name, const char *text, int sync)
{
	int fd = create(name), rc;

	if (fd < 0)
		return fd;
	rc = eng_io_pwrite_all(fd, text, strlen(text), 0);
	if (!rc && sync)
		rc = eng_io_datasync(fd);
	close(fd);
	return rc;
}

static int rename_in(const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX];

	path_in(a, from);
	path_in(b, to);
	return eng_io_rename(a, b);
}

/* Runs scenario in a child with the simulator installed, then cuts the
 * power with seed; *st gets the cut's numbers for run_dir/a. */
static void run(int (*scenario)(void), uint64_t seed,
		struct eng_io_sim_loss_stats *st)
{
	char a[PATH_MAX];
	pid_t pid;
	int rc;

	snprintf(run_dir, sizeof(run_dir), "%s/run%" PRIu64, fx.dir, seed);
	snprintf(journal, sizeof(journal), "%s/journal%" PRIu64, fx.dir, seed);
	cr_assert(eq(int, mkdir(run_dir, 0700), 0), "mkdir %s: %s", run_dir,
		  strerror(errno));
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		uu_child_init();
		setenv("CASKD_SIMDISK", journal, 1);
		if (eng_io_sim_init())
			_exit(91);
		_exit(scenario() ? 92 : UU_CHILD_OK);
	}
	uu_expect_exit_ok(pid, "the scenario");
	path_in(a, "a");
	rc = eng_io_sim_power_loss(journal, a, seed, st);
	cr_assert(eq(int, rc, 0), "eng_io_sim_power_loss (seed %" PRIu64 "): %s", seed,
		  strerror(-rc));
}

/* What name holds: "" if it is gone. Bytes a cut zeroed read as '0'. */
static void read_name(const char *name, char *out, size_t n)
{
	char p[PATH_MAX], *buf;
	size_t len;

	path_in(p, name);
	out[0] = '\0';
	if (access(p, F_OK) < 0)
		return;
	buf = uu_read_file(p, &len);
	for (size_t i = 0; i < len && i + 1 < n; i++)
		out[i] = buf[i] ? buf[i] : '0';
	out[len < n ? len : n - 1] = '\0';
	if (!len)
		snprintf(out, n, "(empty)");
	free(buf);
}

/* Which of want[] the state "a|tmp" is (-1: none); counts it in seen[]. */
static int classify(const char *state, const char *const *want, int nwant,
		    int *seen)
{
	for (int i = 0; i < nwant; i++)
		if (!strcmp(state, want[i])) {
			seen[i]++;
			return i;
		}
	return -1;
}

static void two_names(char *state, size_t n, const char *x, const char *y)
{
	char vx[32], vy[32];

	read_name(x, vx, sizeof(vx));
	read_name(y, vy, sizeof(vy));
	snprintf(state, n, "%s|%s", vx, vy);
}

static void expect_states(int (*scenario)(void), const char *const *want, int nwant)
{
	int seen[8] = { 0 };

	cr_assert_leq(nwant, 8);
	pos = mmap(NULL, NPOS * sizeof(*pos), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(pos, MAP_FAILED);
	for (uint64_t seed = 0; seed < SEEDS; seed++) {
		struct eng_io_sim_loss_stats st;
		char state[80];

		run(scenario, seed, &st);
		two_names(state, sizeof(state), "a", "tmp");
		cr_assert_geq(classify(state, want, nwant, seen), 0,
			      "seed %" PRIu64 ": the cut left a|tmp = %s", seed, state);
	}
	for (int i = 0; i < nwant; i++)
		cr_assert_gt(seen[i], 0, "no seed of %d left a|tmp = %s", SEEDS, want[i]);
	munmap(pos, NPOS * sizeof(*pos));
}

/* --- the scenarios ----------------------------------------------------------- */

/* a = "old", durable with its name; tmp = "new", synced, then renamed
 * over a; the directory is not synced after. */
static int replace_unsynced_dir(void)
{
	return put_file("a", "old", 1) || eng_io_syncdir(run_dir) ||
	       put_file("tmp", "new", 1) || rename_in("tmp", "a");
}

static int replace_synced_dir(void)
{
	return replace_unsynced_dir() || eng_io_syncdir(run_dir);
}

static int unlink_unsynced_dir(void)
{
	char a[PATH_MAX];

	path_in(a, "a");
	return put_file("a", "old", 1) || eng_io_syncdir(run_dir) || eng_io_unlink(a);
}

/* a is created and its directory synced; its one write is not. */
static int unsynced_write(void)
{
	return put_file("a", "data", 0) || eng_io_syncdir(run_dir);
}

static int synced_write(void)
{
	return put_file("a", "data", 1) || eng_io_syncdir(run_dir);
}

Test(io_sim, a_rename_no_directory_sync_covered_may_go_back)
{
	/* metadata persists in order: none, the create, or both undone */
	const char *const want[] = { "new|", "old|new", "old|" };

	expect_states(replace_unsynced_dir, want, 3);
}

Test(io_sim, a_directory_sync_makes_the_rename_durable)
{
	const char *const want[] = { "new|" };

	expect_states(replace_synced_dir, want, 1);
}

Test(io_sim, an_unlinked_file_may_come_back_with_its_bytes)
{
	const char *const want[] = { "|", "old|" };

	expect_states(unlink_unsynced_dir, want, 2);
}

Test(io_sim, an_unsynced_write_may_be_lost_whole_never_in_part)
{
	/* one page: kept, put back (zeros), or put back and cut off */
	const char *const want[] = { "data|", "0000|", "(empty)|" };

	expect_states(unsynced_write, want, 3);
}

Test(io_sim, a_synced_write_survives_every_cut)
{
	const char *const want[] = { "data|" };

	expect_states(synced_write, want, 1);
}

/* As replace_unsynced_dir, but the rename's process dies before its
 * journal entry: the rename is done with the real call. */
static int replace_unjournaled(void)
{
	char a[PATH_MAX], t[PATH_MAX];

	path_in(a, "a");
	path_in(t, "tmp");
	return put_file("a", "old", 1) || eng_io_syncdir(run_dir) ||
	       put_file("tmp", "new", 1) || rename(t, a);
}

Test(io_sim, an_operation_the_journal_missed_keeps_every_other)
{
	/* undoing tmp's create would find tmp gone: the cut must keep the
	 * directory as it is rather than fail or guess */
	const char *const want[] = { "new|" };

	expect_states(replace_unjournaled, want, 1);
}

/* --- covered_below ------------------------------------------------------------- */

/* a is durable; w1 goes to a unsynced (pos[0] after it); then tmp,
 * synced, replaces a by a rename no directory sync covers, and a sync of
 * the new a begins at pos[1]. */
static int sync_after_replace(void)
{
	char a[PATH_MAX];
	int fd, rc;

	path_in(a, "a");
	if (put_file("a", "old", 1) || eng_io_syncdir(run_dir))
		return -1;
	if ((fd = eng_io_open(a, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0)
		return fd;
	rc = eng_io_pwrite_all(fd, "w1", 2, 3);
	close(fd);
	note(0);
	if (rc || put_file("tmp", "new", 1) || rename_in("tmp", "a"))
		return -1;
	if ((fd = eng_io_open(a, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0)
		return fd;
	note(1);
	rc = eng_io_datasync(fd);
	close(fd);
	return rc;
}

Test(io_sim, covered_below_counts_syncs_of_the_file_the_name_keeps)
{
	int kept = 0, undone = 0;

	pos = mmap(NULL, NPOS * sizeof(*pos), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(pos, MAP_FAILED);
	for (uint64_t seed = 0; seed < SEEDS; seed++) {
		struct eng_io_sim_loss_stats st;
		char v[32];

		run(sync_after_replace, seed, &st);
		read_name("a", v, sizeof(v));
		cr_assert_eq(st.swaps, 1);
		if (!strcmp(v, "new")) {
			/* the sync of the new a vouches for what came before */
			kept++;
			cr_assert_eq(st.swaps_undone, 0);
			cr_assert(eq(u64, st.covered_below, pos[1]), "seed %" PRIu64, seed);
		} else {
			/* the old a is back: w1, unsynced in it, may be lost,
			 * so nothing from w1 on is vouched for */
			undone++;
			cr_assert(strcmp(v, "oldw1") == 0 || strcmp(v, "old00") == 0 ||
				  strcmp(v, "old") == 0, "seed %" PRIu64 ": a = %s", seed, v);
			cr_assert_eq(st.swaps_undone, 1);
			cr_assert_lt(st.covered_below, pos[0], "seed %" PRIu64, seed);
		}
	}
	cr_assert_gt(kept, 0);
	cr_assert_gt(undone, 0);
	munmap(pos, NPOS * sizeof(*pos));
}
