/* tests/integration/test_repair.c — what an operator meets when a data
 * directory cannot be opened or a database file is damaged (issue 13,
 * items 6, 7 and 8): errors that name the real object and the option to
 * change; `caskd check` read-only on a file or a directory, creating
 * nothing; damage to synced records refused and named rather than cut;
 * a repair that says what it cannot vouch for, in both of its modes,
 * and starts that log the repaired bytes as such. And the check tool's
 * own faults (issue 18, items 7-11): a snapshot or a cleanly stopped
 * file cut short is damage, not a torn tail; the default repair is a
 * way out of what the start refuses; a file that is not caskd's is
 * refused and left as it was; a repair drops only the database.idx of
 * the file it repairs; a repair beside a running caskd, given the file
 * or the directory, is refused naming the caskd's pid.
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/crc32c.h"
#include "engine/record.h"
#include "engine/scan.h"
#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#define RUN_TIMEOUT_MS 20000
#define OUT_MAX 16384
/* database.idx (docs/format.md): the file id it was made for, and the
 * CRC-32C of the header bytes before it */
#define IDX_FILE_ID_OFF 16
#define IDX_CRC_OFF 60

static char base[256];
static struct it_daemon d;

static void setup(void)
{
	it_setup();
	cr_assert_eq(it_tmpdir(base, sizeof(base)), 0);
}

static void teardown(void)
{
	if (d.pid > 0 && !d.exited)
		it_daemon_kill9_all(&d);
	it_rmrf(base);
	it_teardown();
}

TestSuite(it_repair, .init = setup, .fini = teardown);

/* Runs caskd with args (a NULL-terminated list after argv[0]); exit code. */
static int run(const char *const *args, char *out, char *err)
{
	const char *argv[16] = { getenv("CASKD_BIN") };
	int n = 1, st = 0, rc;

	for (; *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	rc = it_run_capture(argv, RUN_TIMEOUT_MS, out, OUT_MAX, err, OUT_MAX, &st);
	cr_assert_eq(rc, 0, "running %s %s: %s", argv[0], argv[1], strerror(-rc));
	cr_assert(WIFEXITED(st), "%s %s: killed by signal %d", argv[0], argv[1], WTERMSIG(st));
	return WEXITSTATUS(st);
}

/* A start on dir must fail; the end of its log goes to log. */
static void expect_refused(const char *dir, char *log, size_t n)
{
	cr_assert_eq(it_daemon_spawn(&d, dir, 1, NULL), 0);
	cr_assert_neq(it_daemon_wait_ready(&d, 5000), 0, "caskd started on %s", dir);
	cr_assert_eq(it_daemon_wait_exit(&d, 5000), 0);
	cr_assert_geq(it_read_tail(d.log, log, n), 0);
}

/* --- 6. errors name the real object ----------------------------------------- */

Test(it_repair, a_data_dir_that_cannot_be_made_is_named, .timeout = 30)
{
	char file[300], dir[320], out[OUT_MAX], err[OUT_MAX];
	int fd, st;

	snprintf(file, sizeof(file), "%s/plainfile", base);
	fd = open(file, O_CREAT | O_WRONLY, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	snprintf(dir, sizeof(dir), "%s/data", file);
	st = run((const char *[]){ "--data-dir", dir, "--listen", "127.0.0.1:0",
				   "--workers", "1", NULL }, out, err);
	cr_assert_eq(st, 1, "exit %d\n%s", st, err);
	cr_assert(strstr(err, "creating the data directory") && strstr(err, dir),
		  "the message does not name the directory it could not create:\n%s", err);
	cr_assert_null(strstr(err, "database.bin"), "it blames database.bin:\n%s", err);
}

Test(it_repair, an_empty_data_dir_is_named_as_the_option, .timeout = 30)
{
	char out[OUT_MAX], err[OUT_MAX];
	int st = run((const char *[]){ "--data-dir", "", "--listen", "127.0.0.1:0",
				       "--workers", "1", NULL }, out, err);

	cr_assert_neq(st, 0);
	cr_assert(strstr(err, "--data-dir"), "no mention of --data-dir:\n%s", err);
	cr_assert_null(strstr(err, "/database.bin"), "it names /database.bin:\n%s", err);
}

Test(it_repair, a_lock_file_that_cannot_be_opened_is_named, .timeout = 30)
{
	char dir[300], lock[320], out[OUT_MAX], err[OUT_MAX];
	int st;

	if (geteuid() == 0 && access("/proc/self/status", R_OK) == 0) {
		/* root opens anything: make caskd.lock a directory instead */
	}
	snprintf(dir, sizeof(dir), "%s/data", base);
	cr_assert_eq(mkdir(dir, 0750), 0);
	snprintf(lock, sizeof(lock), "%s/caskd.lock", dir);
	cr_assert_eq(mkdir(lock, 0750), 0, "mkdir %s: %s", lock, strerror(errno));
	st = run((const char *[]){ "--data-dir", dir, "--listen", "127.0.0.1:0",
				   "--workers", "1", NULL }, out, err);
	cr_assert_eq(st, 1, "exit %d\n%s", st, err);
	cr_assert(strstr(err, "caskd.lock"), "the message does not name caskd.lock:\n%s", err);
}

Test(it_repair, an_index_without_address_space_names_max_keys, .timeout = 30)
{
	char dir[300], out[OUT_MAX], err[OUT_MAX];
	/* room for database.bin's 1 TiB mapping, not for the table's areas */
	struct rlimit lim = { (1ull << 40) + (32ull << 30), (1ull << 40) + (32ull << 30) };
	pid_t pid;
	int p[2], st;
	ssize_t n;

	/* The table's areas are reserved up front (MAP_NORESERVE): with the
	 * address space capped below what no bound needs, start fails, and
	 * must say which option bounds it. */
	if (strstr(getenv("CASKD_BIN"), "/asan/"))
		cr_skip_test("ASan reserves terabytes of shadow memory: an address-space "
			     "limit stops it before caskd runs (the plain build covers this)");
	snprintf(dir, sizeof(dir), "%s/data", base);
	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		setrlimit(RLIMIT_AS, &lim);
		execl(getenv("CASKD_BIN"), "caskd", "--data-dir", dir, "--listen",
		      "127.0.0.1:0", "--workers", "1", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	n = read(p[0], err, sizeof(err) - 1);
	err[n > 0 ? n : 0] = '\0';
	close(p[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	(void)out;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status 0x%x\n%s", st, err);
	cr_assert(strstr(err, "address space") && strstr(err, "--max-keys"),
		  "the message does not name the index and --max-keys:\n%s", err);
}

/* --- 7. check: read-only, a file or a directory -------------------------------- */

/* Key i of the fills below: /kv/k<i> = value-<i>. */
static void key_i(int i, char *path, char *val, size_t n)
{
	snprintf(path, n, "/kv/k%d", i);
	snprintf(val, n, "value-%d", i);
}

static void put_some(int n)
{
	char path[64], val[64];

	for (int i = 0; i < n; i++) {
		key_i(i, path, val, sizeof(path));
		it_put(d.port, path, val, strlen(val), 201);
	}
}

/* Reads back the first n keys of a fill, at the versions in version[]. */
static void expect_some(int n, const uint64_t *version)
{
	char path[64], val[64];

	for (int i = 0; i < n; i++) {
		key_i(i, path, val, sizeof(path));
		it_expect_value(d.port, path, val, strlen(val), version[i]);
	}
}

static void write_some(const char *dir, int n)
{
	it_restart(&d, dir, NULL);
	put_some(n);
}

Test(it_repair, check_reads_a_copy_taken_while_caskd_ran, .timeout = 60)
{
	char dir[300], copy[320], cmd[1400], out[OUT_MAX], err[OUT_MAX];
	struct stat st;
	int rc;

	snprintf(dir, sizeof(dir), "%s/data", base);
	write_some(dir, 50);
	usleep(300000); /* the master prepares zeros after the tail */
	snprintf(copy, sizeof(copy), "%s/backup.bin", base);
	snprintf(cmd, sizeof(cmd), "cp %s/database.bin %s && chmod 0444 %s", dir, copy, copy);
	cr_assert_eq(system(cmd), 0);
	it_stop_clean(&d);
	/* a file, read-only, in a directory where nothing may be created */
	cr_assert_eq(chmod(base, 0555), 0);
	rc = run((const char *[]){ "check", copy, NULL }, out, err);
	chmod(base, 0755);
	cr_assert_eq(rc, 0, "caskd check on a read-only copy: exit %d\n%s%s", rc, out, err);
	cr_assert(strstr(out, "unused space") && !strstr(out, "torn tail ("),
		  "the zeros after the last record are not reported as unused space:\n%s", out);
	cr_assert(strstr(out, "ok: caskd will open it"), "%s", out);
	snprintf(cmd, sizeof(cmd), "%s/caskd.lock", base);
	cr_assert_neq(stat(cmd, &st), 0, "check created a lock file beside the file");
}

Test(it_repair, check_creates_nothing_in_a_directory, .timeout = 60)
{
	char dir[300], lock[320], out[OUT_MAX], err[OUT_MAX];
	struct stat st;
	int rc;

	snprintf(dir, sizeof(dir), "%s/data", base);
	write_some(dir, 5);
	it_stop_clean(&d);
	snprintf(lock, sizeof(lock), "%s/caskd.lock", dir);
	cr_assert_eq(unlink(lock), 0);
	rc = run((const char *[]){ "check", dir, NULL }, out, err);
	cr_assert_eq(rc, 0, "exit %d\n%s%s", rc, out, err);
	cr_assert_neq(stat(lock, &st), 0, "a read-only check created caskd.lock");
}

/* --- 8. damage to synced records: named, and a repair that says what ------ */

struct recs {
	uint64_t off[256];
	uint64_t len[256];
	uint64_t version[256];
	int n;
};

static void parse(const char *db, struct recs *r)
{
	int fd = open(db, O_RDONLY);
	struct stat st;
	struct eng_scan s;
	struct eng_scan_item it;
	void *map;

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(map, MAP_FAILED);
	eng_scan_init(&s, map, (uint64_t)st.st_size);
	r->n = 0;
	while (eng_scan_next(&s, &it) != ENG_SCAN_END && r->n < 256)
		if (it.kind == ENG_SCAN_RECORD) {
			r->off[r->n] = it.off;
			r->len[r->n] = it.len;
			r->version[r->n++] = it.h.version;
		}
	munmap(map, (size_t)st.st_size);
	close(fd);
}

static void flip_byte(const char *db, uint64_t at)
{
	int fd = open(db, O_RDWR);
	unsigned char b;

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &b, 1, (off_t)at), 1);
	b ^= 0x5a;
	cr_assert_eq(pwrite(fd, &b, 1, (off_t)at), 1);
	close(fd);
}

/* The case: a=secret, b=old, DELETE a, b=new, clean stop, the
 * last two records damaged. */
static void damaged_after_clean_stop(char *dir, size_t n, char *db, size_t dbn,
				     struct recs *r)
{
	char idx[340];

	snprintf(dir, n, "%s/data", base);
	it_restart(&d, dir, NULL);
	it_put(d.port, "/kv/a", "secret", 6, 201);
	it_put(d.port, "/kv/b", "old", 3, 201);
	it_do(d.port, "DELETE", "/kv/a", NULL, NULL, 0, &(struct it_resp){ 0 }, 204);
	it_put(d.port, "/kv/b", "new", 3, 204);
	it_stop_clean(&d);
	snprintf(db, dbn, "%s/database.bin", dir);
	parse(db, r);
	cr_assert_eq(r->n, 4, "%d records", r->n);
	flip_byte(db, r->off[2] + ENG_REC_HDR_SIZE); /* the tombstone's key */
	flip_byte(db, r->off[3] + ENG_REC_HDR_SIZE + 1 + 1); /* b=new's value */
	/* the index snapshot would let a start skip the log: take it away
	 * (a start with it serves nothing damaged either: reads check) */
	snprintf(idx, sizeof(idx), "%s/database.idx", dir);
	unlink(idx);
}

Test(it_repair, damaged_last_records_after_a_clean_stop_are_refused_and_named,
     .timeout = 60)
{
	char dir[300], db[320], out[OUT_MAX], err[OUT_MAX], want[64];
	struct recs r;
	int rc;

	damaged_after_clean_stop(dir, sizeof(dir), db, sizeof(db), &r);
	expect_refused(dir, err, sizeof(err));
	snprintf(want, sizeof(want), "offset %llu", (unsigned long long)r.off[2]);
	cr_assert(strstr(err, "damaged") && strstr(err, want),
		  "the refusal does not name the damage at %s:\n%s", want, err);
	cr_assert_null(strstr(err, "never acknowledged"),
		  "acknowledged records called never acknowledged:\n%s", err);
	rc = run((const char *[]){ "check", dir, NULL }, out, err);
	cr_assert_eq(rc, 1, "check on damaged records: exit %d\n%s", rc, out);
	cr_assert(strstr(out, "CORRUPT") && strstr(out, "may have held versions after"),
		  "check does not bound the versions the damage held:\n%s", out);
	/* the header names the file first; the regions follow it */
	cr_assert(!strncmp(out, "checked ", 8), "the report starts with its header:\n%s", out);
}

/* One usage text: `caskd check --help` answers it (exit 0), and the
 * daemon's --help shows the same arguments. */
Test(it_repair, check_help_and_the_daemon_help_agree, .timeout = 30)
{
	char out[OUT_MAX], help[OUT_MAX], err[OUT_MAX], *line, *nl;
	int rc;

	rc = run((const char *[]){ "check", "--help", NULL }, out, err);
	cr_assert_eq(rc, 0, "caskd check --help: exit %d\n%s", rc, err);
	cr_assert(!strncmp(out, "usage: caskd check ", 19), "%s", out);
	nl = strchr(out, '\n');
	cr_assert_not_null(nl);
	*nl = '\0';
	line = out + strlen("usage: ");
	rc = run((const char *[]){ "--help", NULL }, help, err);
	cr_assert_eq(rc, 0);
	cr_assert_not_null(strstr(help, line), "--help does not show '%s':\n%s", line, help);
}

Test(it_repair, repair_skip_says_what_it_cannot_vouch_for, .timeout = 60)
{
	char dir[300], db[320], out[OUT_MAX], err[OUT_MAX];
	struct recs r;
	struct it_resp resp;
	int rc;

	damaged_after_clean_stop(dir, sizeof(dir), db, sizeof(db), &r);
	rc = run((const char *[]){ "check", "--repair", dir, NULL }, out, err);
	cr_assert_eq(rc, 0, "repair: exit %d\n%s%s", rc, out, err);
	cr_assert(strstr(out, "cannot vouch") && strstr(out, "older value") &&
		  strstr(out, "come back"), "the repair does not say what it cannot vouch for:\n%s",
		  out);
	cr_assert_null(strstr(out, "every intact record kept"), "%s", out);
	it_restart(&d, dir, NULL);
	/* what the damage held is gone: the delete of a, and b=new */
	it_expect_value(d.port, "/kv/a", "secret", 6, r.version[0]);
	it_expect_value(d.port, "/kv/b", "old", 3, r.version[1]);
	cr_assert_geq(it_read_tail(d.log, err, sizeof(err)), 0);
	cr_assert(strstr(err, "check --repair' dropped"),
		  "the start does not say the repaired bytes were dropped by a repair:\n%s", err);
	cr_assert_null(strstr(err, "never completed"), "repaired bytes called unfinished writes:\n%s",
		       err);
	IT_OK(it_request(d.port, "GET", "/kv/b", NULL, NULL, 0, &resp));
	it_resp_free(&resp);
	it_stop_clean(&d);
	/* and after the clean stop the next start says it again, truly */
	it_restart(&d, dir, NULL);
	it_stop_clean(&d);
}

Test(it_repair, repair_truncate_cuts_at_the_first_damage, .timeout = 60)
{
	char dir[300], db[320], out[OUT_MAX], err[OUT_MAX];
	struct recs r, after;
	int rc;

	damaged_after_clean_stop(dir, sizeof(dir), db, sizeof(db), &r);
	rc = run((const char *[]){ "check", "--repair=truncate", dir, NULL }, out, err);
	cr_assert_eq(rc, 0, "repair=truncate: exit %d\n%s%s", rc, out, err);
	cr_assert(strstr(out, "cut here"), "%s", out);
	parse(db, &after);
	cr_assert_eq(after.n, 2, "records after truncate: %d", after.n);
	rc = run((const char *[]){ "check", dir, NULL }, out, err);
	cr_assert_eq(rc, 0, "check after truncate: exit %d\n%s", rc, out);
	it_restart(&d, dir, NULL);
	it_expect_value(d.port, "/kv/a", "secret", 6, r.version[0]);
	it_stop_clean(&d);
}

/* --- issue 18, items 7-11: the check tool ------------------------------------ */

/* The whole of a file (malloc'd; *len its size). */
static char *slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* Makes path hold exactly len bytes of buf. */
static void spew(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

	cr_assert_geq(fd, 0, "create %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/* Keys k0..k{n-1} = value-i on a fresh caskd in base/data, stopped
 * cleanly; the records of database.bin in r. */
static void stopped_with(int n, char *dir, size_t dn, char *db, size_t dbn, struct recs *r)
{
	snprintf(dir, dn, "%s/data", base);
	write_some(dir, n);
	it_stop_clean(&d);
	snprintf(db, dbn, "%s/database.bin", dir);
	parse(db, r);
	cr_assert_eq(r->n, n, "%d records", r->n);
}

/* Lines in s: a message meant as one line has one newline. */
static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* 7: a snapshot records its full length: shorter is damage, whether it
 * ends on a record boundary or inside a record. */
Test(it_repair, a_truncated_snapshot_is_damage, .timeout = 60)
{
	char dir[300], snap[320], cut[320], out[OUT_MAX], err[OUT_MAX];
	struct it_resp resp;
	struct recs r;
	uint64_t at[2];
	int rc;

	snprintf(dir, sizeof(dir), "%s/data", base);
	write_some(dir, 20);
	it_do(d.port, "GET", "/admin/snapshot", NULL, NULL, 0, &resp, 200);
	it_stop_clean(&d);
	snprintf(snap, sizeof(snap), "%s/snap.bin", base);
	spew(snap, resp.body, resp.body_len);
	rc = run((const char *[]){ "check", snap, NULL }, out, err);
	cr_assert_eq(rc, 0, "check of a whole snapshot: exit %d\n%s%s", rc, out, err);
	parse(snap, &r);
	cr_assert_eq(r.n, 20, "%d records in the snapshot", r.n);
	/* every PUT above was acknowledged before the snapshot was asked
	 * for: cut inside the last record, and on its boundary */
	at[0] = r.off[r.n - 1] + ENG_REC_HDR_SIZE + 3;
	at[1] = r.off[r.n - 1];
	for (int i = 0; i < 2; i++) {
		snprintf(cut, sizeof(cut), "%s/cut%d.bin", base, i);
		spew(cut, resp.body, at[i]);
		rc = run((const char *[]){ "check", cut, NULL }, out, err);
		cr_assert_eq(rc, 1, "check of a snapshot cut at %llu: exit %d\n%s",
			     (unsigned long long)at[i], rc, out);
		cr_assert(strstr(out, "truncated") && !strstr(out, "torn tail (") &&
			  !strstr(out, "ok: caskd will open it"),
			  "a snapshot cut at %llu is not called truncated:\n%s",
			  (unsigned long long)at[i], out);
	}
	it_resp_free(&resp);
}

/* A cleanly stopped database.bin cut `into` bytes into its last record:
 * check and a start both call it damage (truncation, if named), the
 * start names the repair, and that very repair gives a file check passes
 * and caskd starts on, with every record before the cut. */
static void cut_refused_then_repaired(uint64_t into, int named)
{
	char dir[300], db[320], out[OUT_MAX], err[OUT_MAX], want[400];
	struct recs r;
	int rc;

	stopped_with(8, dir, sizeof(dir), db, sizeof(db), &r);
	cr_assert_eq(truncate(db, (off_t)(r.off[r.n - 1] + into)), 0);
	rc = run((const char *[]){ "check", dir, NULL }, out, err);
	cr_assert_eq(rc, 1, "check of a file cut short: exit %d\n%s", rc, out);
	cr_assert(!strstr(out, "ok: caskd will open it") && (!named || strstr(out, "truncated")),
		  "a file cut short is not called truncated:\n%s", out);
	expect_refused(dir, err, sizeof(err));
	snprintf(want, sizeof(want), "'caskd check --repair %s'", dir);
	cr_assert(strstr(err, want) && (!named || strstr(err, "truncated")),
		  "the refusal does not say the file was truncated and name %s:\n%s", want, err);
	rc = run((const char *[]){ "check", "--repair", dir, NULL }, out, err);
	cr_assert_eq(rc, 0, "the repair the refusal names: exit %d\n%s%s", rc, out, err);
	rc = run((const char *[]){ "check", dir, NULL }, out, err);
	cr_assert_eq(rc, 0, "check after the repair: exit %d\n%s", rc, out);
	cr_assert(strstr(out, "ok: caskd will open it"), "%s", out);
	it_restart(&d, dir, NULL);
	expect_some(r.n - 1, r.version);
	it_stop_clean(&d);
}

/* 7: the file a clean stop leaves records its full length too. */
Test(it_repair, a_cleanly_stopped_file_cut_on_a_record_boundary_is_refused, .timeout = 60)
{
	cut_refused_then_repaired(0, 1);
}

/* 10: the default repair, which the refusal names, is a way out. */
Test(it_repair, the_default_repair_of_a_file_cut_inside_a_record_lets_caskd_start,
     .timeout = 60)
{
	cut_refused_then_repaired(ENG_REC_HDR_SIZE + 3, 0);
}

/* 8: a file that is not caskd's is refused, by check and by a repair,
 * and left as it was. */
Test(it_repair, a_file_that_is_not_a_caskd_database_is_refused_untouched, .timeout = 30)
{
	char photo[300], lock[300], out[OUT_MAX], err[OUT_MAX], img[8192];
	char *after;
	size_t len;
	int rc;

	/* a JPEG's start of image and JFIF marker, then noise */
	memcpy(img, "\xff\xd8\xff\xe0\x00\x10JFIF", 10);
	for (size_t i = 10; i < sizeof(img); i++)
		img[i] = (char)(i * 131 + 7);
	snprintf(photo, sizeof(photo), "%s/photo.jpg", base);
	spew(photo, img, sizeof(img));
	rc = run((const char *[]){ "check", photo, NULL }, out, err);
	cr_assert_eq(rc, 1, "check of a photo: exit %d\n%s%s", rc, out, err);
	cr_assert(strstr(err, "not a caskd database"), "%s%s", out, err);
	cr_assert(!strstr(out, "--repair") && !strstr(err, "--repair"),
		  "check suggests repairing a photo:\n%s%s", out, err);
	for (int i = 0; i < 3; i++) {
		const char *mode = i == 0 ? "--repair" : i == 1 ? "--repair=skip" : "--repair=truncate";
		rc = run((const char *[]){ "check", mode, photo, NULL }, out, err);
		cr_assert_neq(rc, 0, "check %s of a photo: exit 0\n%s%s", mode, out, err);
		cr_assert(strstr(err, "not a caskd database") && lines(err) == 1 && !out[0],
			  "check %s of a photo: not one line saying why:\n%s%s", mode, out, err);
		after = slurp(photo, &len);
		cr_assert(len == sizeof(img) && !memcmp(after, img, len),
			  "check %s changed the photo", mode);
		free(after);
	}
	snprintf(lock, sizeof(lock), "%s/caskd.lock", base);
	cr_assert_neq(access(lock, F_OK), 0, "a refused repair made %s", lock);
}

/* 9: a repair drops only the index snapshot of the file it repairs. */
Test(it_repair, a_repair_drops_only_the_index_of_the_file_it_repairs, .timeout = 60)
{
	char dir[300], db[320], other[320], idx[320], out[OUT_MAX], err[OUT_MAX];
	char *before, *buf, *after, *foreign;
	size_t len, blen, alen;
	struct recs r;
	uint32_t crc;
	int rc;

	stopped_with(6, dir, sizeof(dir), db, sizeof(db), &r);
	snprintf(idx, sizeof(idx), "%s/database.idx", dir);
	before = slurp(idx, &blen);
	/* a damaged copy of database.bin beside it: same file id */
	snprintf(other, sizeof(other), "%s/other.bin", dir);
	buf = slurp(db, &len);
	spew(other, buf, len);
	free(buf);
	flip_byte(other, r.off[2] + ENG_REC_HDR_SIZE);
	rc = run((const char *[]){ "check", "--repair", other, NULL }, out, err);
	cr_assert_eq(rc, 0, "repair of other.bin: exit %d\n%s%s", rc, out, err);
	cr_assert_eq(access(idx, F_OK), 0,
		     "repairing other.bin removed database.idx, which is database.bin's");
	after = slurp(idx, &alen);
	cr_assert(alen == blen && !memcmp(before, after, blen),
		  "repairing other.bin changed database.idx");
	free(after);
	cr_assert_null(strstr(out, "database.idx"), "%s", out);
	/* beside database.bin, one made for another file (id and CRC) is
	 * not database.bin's either */
	foreign = slurp(idx, &alen);
	foreign[IDX_FILE_ID_OFF] ^= 1;
	crc = htole32(eng_crc32c(0, foreign, IDX_CRC_OFF));
	memcpy(foreign + IDX_CRC_OFF, &crc, sizeof(crc));
	spew(idx, foreign, alen);
	flip_byte(db, r.off[2] + ENG_REC_HDR_SIZE);
	rc = run((const char *[]){ "check", "--repair", db, NULL }, out, err);
	cr_assert_eq(rc, 0, "repair of database.bin: exit %d\n%s%s", rc, out, err);
	after = slurp(idx, &alen);
	cr_assert(alen == blen && !memcmp(foreign, after, blen),
		  "the repair of database.bin removed an index made for another file");
	free(after);
	free(foreign);
	/* database.bin's own is dropped: it may name what is gone */
	spew(idx, before, blen);
	free(before);
	flip_byte(db, r.off[4] + ENG_REC_HDR_SIZE);
	rc = run((const char *[]){ "check", "--repair", dir, NULL }, out, err);
	cr_assert_eq(rc, 0, "repair of database.bin: exit %d\n%s%s", rc, out, err);
	cr_assert_neq(access(idx, F_OK), 0, "database.idx outlived the repair of its database.bin");
	cr_assert(strstr(out, "database.idx"), "the repair does not say it removed database.idx:\n%s",
		  out);
}

/* 11: a repair takes the daemon's lock, for a file as for a directory,
 * and names the caskd that holds it; refused, it leaves the file alone
 * (cut under the workers' mappings, it would be SIGBUS). */
static void expect_busy(const char *target, pid_t pid)
{
	char out[OUT_MAX], err[OUT_MAX], want[32];
	int rc;

	snprintf(want, sizeof(want), "pid %d", (int)pid);
	rc = run((const char *[]){ "check", "--repair=truncate", target, NULL }, out, err);
	cr_assert_eq(rc, 1, "repair of %s under a running caskd: exit %d\n%s%s", target, rc,
		     out, err);
	cr_assert(strstr(err, want) && lines(err) == 1 && !out[0],
		  "the refusal for %s does not name %s in one line:\n%s%s", target, want, out,
		  err);
}

Test(it_repair, a_repair_beside_a_running_caskd_is_refused_naming_it, .timeout = 60)
{
	char dir[300], db[320];
	char *before, *after;
	size_t blen, alen;
	struct recs r;

	snprintf(dir, sizeof(dir), "%s/data", base);
	snprintf(db, sizeof(db), "%s/database.bin", dir);
	/* before any write no worker holds a byte of the file: only the
	 * instance lock stands between a repair and the zeros it would cut */
	it_restart(&d, dir, NULL);
	before = slurp(db, &blen);
	expect_busy(db, d.pid);
	after = slurp(db, &alen);
	/* the master may go on preparing zeros after the tail meanwhile */
	cr_assert(alen >= blen && !memcmp(before + ENG_FILE_HDR_SIZE, after + ENG_FILE_HDR_SIZE,
					   blen - ENG_FILE_HDR_SIZE),
		  "a refused repair cut %s (%zu bytes, then %zu)", db, blen, alen);
	free(after);
	free(before);
	put_some(5);
	parse(db, &r);
	cr_assert_eq(r.n, 5);
	before = slurp(db, &blen);
	expect_busy(db, d.pid);
	expect_busy(dir, d.pid);
	after = slurp(db, &alen);
	cr_assert(alen >= blen && !memcmp(before + ENG_FILE_HDR_SIZE, after + ENG_FILE_HDR_SIZE,
					   r.off[r.n - 1] + r.len[r.n - 1] - ENG_FILE_HDR_SIZE),
		  "a refused repair changed database.bin's records");
	free(after);
	free(before);
	expect_some(5, r.version);
	it_stop_clean(&d);
}
