/* tests/unit/test_powerloss.c — power-loss drills on a simulated disk.
 *
 * kill -9 keeps the page cache, so it cannot show that group commit makes
 * writes durable. This suite swaps the engine's I/O backend
 * (engine/io.h) for a crash simulator, in the manner of SQLite's test VFS:
 * every pwrite is applied, but the bytes it replaced are kept aside until
 * an fdatasync makes it durable. A simulated power cut then walks the
 * unsynced writes newest first and, page by page at random, keeps the new
 * bytes or puts the old ones back (a torn write), and truncates whatever
 * the lost writes had appended. Recovery must then open the file, and
 * every write acknowledged in group mode (its sync ticket covered) must be
 * there, with its value or a later acknowledged one.
 */
#include "engine/durable.h"
#include "engine/errors.h"
#include "engine/io.h"
#include "engine/store.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIM_PAGE 4096
#define MAX_UNSYNCED 4096
#define NKEYS 40
#define ROUNDS 25
#define OPS_PER_ROUND 120

struct undo {
	int fd;
	off_t off;
	size_t len;
	char *old;      /* the bytes the write replaced */
	off_t old_size; /* file size before the write */
};

static struct undo unsynced[MAX_UNSYNCED];
static int nunsynced;
static unsigned seed;

static ssize_t sim_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct stat st;
	struct undo *u;
	ssize_t got;

	cr_assert_lt(nunsynced, MAX_UNSYNCED, "too many unsynced writes");
	cr_assert_eq(fstat(fd, &st), 0);
	u = &unsynced[nunsynced++];
	u->fd = fd;
	u->off = off;
	u->len = n;
	u->old_size = st.st_size;
	u->old = calloc(1, n ? n : 1);
	got = pread(fd, u->old, n, off);
	cr_assert_geq(got, 0);
	return pwrite(fd, buf, n, off);
}

static void forget_unsynced(void)
{
	for (int i = 0; i < nunsynced; i++)
		free(unsynced[i].old);
	nunsynced = 0;
}

static int sim_fdatasync(int fd)
{
	(void)fd;
	forget_unsynced(); /* everything written so far is now durable */
	return 0;
}

static int sim_ftruncate(int fd, off_t len)
{
	return ftruncate(fd, len);
}

static int sim_fallocate(int fd, int mode, off_t off, off_t len)
{
	return fallocate(fd, mode, off, len);
}

static const struct eng_io_backend sim = {
	.pwrite = sim_pwrite,
	.fdatasync = sim_fdatasync,
	.ftruncate = sim_ftruncate,
	.fallocate = sim_fallocate,
};

/* The power goes out: unsynced writes are lost, kept, or torn per page,
 * and a file may lose the growth the lost writes gave it. */
static void power_cut(void)
{
	int fds[4], nfds = 0;
	off_t sizes[4];

	for (int i = nunsynced - 1; i >= 0; i--) {
		struct undo *u = &unsynced[i];
		int f = 0;
		/* page cache writeback goes by whole file pages */
		for (size_t p = 0; p < u->len;) {
			off_t at = u->off + (off_t)p;
			size_t k = SIM_PAGE - (size_t)(at % SIM_PAGE);
			if (k > u->len - p)
				k = u->len - p;
			if (rand_r(&seed) % 2)
				cr_assert_eq(pwrite(u->fd, u->old + p, k, at), (ssize_t)k);
			p += k;
		}
		while (f < nfds && fds[f] != u->fd)
			f++;
		if (f == nfds) {
			cr_assert_lt(nfds, 4);
			fds[nfds] = u->fd;
			sizes[nfds++] = -1;
		}
		if (rand_r(&seed) % 2 && (sizes[f] < 0 || u->old_size < sizes[f]))
			sizes[f] = u->old_size; /* the size update never reached disk */
	}
	for (int f = 0; f < nfds; f++)
		if (sizes[f] >= 0)
			cr_assert_eq(ftruncate(fds[f], sizes[f]), 0);
	forget_unsynced();
}

static char dir[] = "/tmp/caskd-powerloss-XXXXXX";

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	eng_io_set_backend(&sim);
}

static void teardown(void)
{
	char cmd[128];
	eng_io_set_backend(NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

struct acked {
	int present;     /* 1: value, 0: deleted */
	int later_del;   /* an unacknowledged delete came after it */
	uint64_t version;
	char val[64];
};

static int open_db(struct eng_db *db)
{
	struct eng_opts o = { .dir = dir, .max_keys = 1000, .max_value = 1 << 20 };
	struct eng_recovery rep;
	int rc = eng_db_open(&o, db, &rep);
	if (rc) {
		cr_log_error("recovery: %s at offset %llu", eng_strerror(rc),
			     (unsigned long long)rep.bad_off);
		return rc;
	}
	return eng_db_attach(db, 0);
}

/* Each acknowledged write is either still the newest, or was overtaken
 * by a later write that may itself be lost only if unacknowledged. */
static void verify(struct eng_db *db, struct acked *acked)
{
	for (int k = 0; k < NKEYS; k++) {
		char key[16];
		struct eng_val v;
		int rc;
		snprintf(key, sizeof(key), "key%d", k);
		rc = eng_get(db, key, strlen(key), &v);
		if (!acked[k].version)
			continue; /* never acknowledged: anything goes */
		if (!acked[k].present) {
			if (rc == 0)
				cr_assert_gt(v.version, acked[k].version,
					     "%s: deleted at v%llu, found v%llu", key,
					     (unsigned long long)acked[k].version,
					     (unsigned long long)v.version);
			continue;
		}
		if (rc == -ENOENT && acked[k].later_del)
			continue; /* that delete reached the disk: allowed */
		cr_assert_eq(rc, 0, "%s acknowledged at v%llu is missing", key,
			     (unsigned long long)acked[k].version);
		cr_assert_geq(v.version, acked[k].version, "%s went back in time", key);
		if (v.version == acked[k].version)
			cr_assert(v.len == strlen(acked[k].val) &&
					  !memcmp(v.data, acked[k].val, v.len),
				  "%s: wrong value after power loss", key);
	}
}

Test(engine_powerloss, group_commit_keeps_every_acknowledged_write,
     .init = setup, .fini = teardown, .timeout = 60)
{
	struct acked acked[NKEYS] = { 0 };
	struct eng_db db;

	seed = (unsigned)getpid();
	for (int round = 0; round < ROUNDS; round++) {
		int ops = 1 + rand_r(&seed) % OPS_PER_ROUND;
		cr_assert_eq(open_db(&db), 0, "round %d: recovery failed", round);
		verify(&db, acked);
		for (int i = 0; i < ops; i++) {
			int k = rand_r(&seed) % NKEYS, del = rand_r(&seed) % 5 == 0;
			char key[16], val[64];
			struct eng_op op = { .kind = del ? ENG_OP_DEL : ENG_OP_PUT };
			struct eng_result res;
			int rc;
			snprintf(key, sizeof(key), "key%d", k);
			snprintf(val, sizeof(val), "r%d-i%d-%u", round, i, rand_r(&seed));
			op.key = key;
			op.klen = strlen(key);
			op.val = val;
			op.vlen = strlen(val) * (1 + rand_r(&seed) % 2);
			if (op.vlen > strlen(val))
				op.vlen = strlen(val);
			rc = eng_write(&db, &op, &res);
			if (rc == -ENOENT)
				continue;
			cr_assert_eq(rc, 0, "write: %s", eng_strerror(rc));
			/* Acknowledge only some writes, as a group commit round
			 * does: the others stay in the unsynced set. */
			if (rand_r(&seed) % 3 == 0) {
				cr_assert_eq(eng_sync_wait(&db, eng_sync_ticket(&db)), 0);
				acked[k].present = !del;
				acked[k].later_del = 0;
				acked[k].version = res.version;
				snprintf(acked[k].val, sizeof(acked[k].val), "%.*s",
					 (int)op.vlen, val);
			} else if (del) {
				acked[k].later_del = 1;
			}
		}
		power_cut();
		eng_db_close(&db);
	}
	cr_assert_eq(open_db(&db), 0);
	verify(&db, acked);
	eng_db_close(&db);
}

Test(engine_powerloss, unsynced_writes_may_vanish_but_file_always_opens,
     .init = setup, .fini = teardown, .timeout = 60)
{
	struct eng_db db;

	seed = (unsigned)getpid() * 7u;
	for (int round = 0; round < ROUNDS; round++) {
		cr_assert_eq(open_db(&db), 0, "round %d: recovery failed", round);
		for (int i = 0; i < 50; i++) {
			char key[16], val[3000];
			struct eng_op op = { .kind = ENG_OP_PUT, .key = key, .val = val };
			struct eng_result res;
			snprintf(key, sizeof(key), "k%d", rand_r(&seed) % 10);
			memset(val, 'a' + i % 26, sizeof(val));
			op.klen = strlen(key);
			op.vlen = 1 + (size_t)rand_r(&seed) % sizeof(val);
			cr_assert_eq(eng_write(&db, &op, &res), 0);
		}
		power_cut(); /* nothing was synced in this round */
		eng_db_close(&db);
	}
	cr_assert_eq(open_db(&db), 0);
	eng_db_close(&db);
}
