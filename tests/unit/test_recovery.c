/* tests/unit/test_recovery.c — recovery of database.bin (engine/scan.h
 * and eng_db_open in engine/open.c).
 *
 * Two kinds of input: files written through the store itself (what a
 * crashed caskd leaves behind), and images built by hand from
 * eng_rec_encode, for damage the store cannot be made to produce on cue.
 * Hand-built images set their durable mark past the damage unless a test
 * says otherwise, so that what is skipped is skipped for its shape, not
 * because the mark says it was never acknowledged.
 *
 * Each case is checked twice: through eng_db_open (what the master does)
 * and through the scanner directly (what `caskd check` sees).
 */
#include "engine/crc32c.h"
#include "engine/errors.h"
#include "engine/record.h"
#include "engine/scan.h"
#include "engine/store.h"
#include "tests/unit/unit_util.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DB_FILE "database.bin"
#define PATH_MAX_LEN 128
#define SCAN_ITEMS_MAX 32

UU_DIR_SUITE(engine_recovery, "recovery");

/* --- images built by hand -------------------------------------------------- */

struct img {
	unsigned char *buf;
	size_t len;
};

static void img_grow(struct img *m, size_t n)
{
	m->buf = realloc(m->buf, m->len + n);
	cr_assert_not_null(m->buf);
	memset(m->buf + m->len, 0, n);
	m->len += n;
}

/* A file header whose durable mark says "nothing durable yet past the
 * header"; img_mark moves it. */
static void img_init(struct img *m)
{
	m->buf = NULL;
	m->len = 0;
	struct eng_mark mk = { .durable = ENG_FILE_HDR_SIZE, .lease = 0 };

	img_grow(m, ENG_FILE_HDR_SIZE);
	eng_file_hdr_encode(m->buf, eng_file_id_new(), &mk);
}

static uint64_t img_rec(struct img *m, enum eng_rec_type type,
			uint64_t version, const char *key, const char *val)
{
	uint64_t off = m->len;
	uint16_t klen = (uint16_t)strlen(key);
	uint32_t vlen = val ? (uint32_t)strlen(val) : 0;

	img_grow(m, eng_rec_size(klen, vlen));
	eng_rec_encode(m->buf + off, type, version, key, klen, val, vlen);
	return off;
}

static uint64_t img_zeros(struct img *m, size_t n)
{
	uint64_t off = m->len;

	img_grow(m, n);
	return off;
}

/* Everything below mark was durable: damage there is corruption. */
static void img_mark(struct img *m, uint64_t mark)
{
	struct eng_mark mk = { .durable = mark, .lease = 0 };

	eng_mark_encode(m->buf + ENG_MARK_OFF_B, &mk);
}

static void img_save(const struct img *m, const char *dir)
{
	char path[PATH_MAX_LEN];

	uu_path(path, sizeof(path), dir, DB_FILE);
	uu_write_file(path, m->buf, m->len);
}

/* Runs the scanner over a whole image; returns the items before END. */
static int scan_all(const void *buf, size_t len, struct eng_scan_item *items)
{
	struct eng_scan s;
	struct eng_scan_item end;
	int n = 0;

	eng_scan_init(&s, buf, len);
	while (eng_scan_next(&s, &items[n]) != ENG_SCAN_END) {
		cr_assert(lt(int, ++n, SCAN_ITEMS_MAX), "scanner never ends");
		if (n > 1)
			cr_assert(eq(u64, items[n - 1].off,
				     items[n - 2].off + items[n - 2].len),
				  "items must tile the file");
	}
	cr_assert(eq(u64, items[n].off, len), "END is at the end of the file");
	cr_assert(eq(int, eng_scan_next(&s, &end), ENG_SCAN_END),
		  "END stays END");
	return n;
}

static void expect_item(const struct eng_scan_item *it,
			enum eng_scan_kind kind, uint64_t off, uint64_t len)
{
	cr_assert(eq(int, it->kind, kind), "item at %llu",
		  (unsigned long long)it->off);
	cr_assert(eq(u64, it->off, off));
	cr_assert(eq(u64, it->len, len), "length of item at %llu",
		  (unsigned long long)off);
}

static int open_dir(const char *dir, struct eng_db *db,
		    struct eng_recovery *rep)
{
	return uu_open(dir, UU_MAX_KEYS, db, rep);
}

static uint64_t file_size(const char *dir)
{
	char path[PATH_MAX_LEN];
	struct stat st;

	uu_path(path, sizeof(path), dir, DB_FILE);
	cr_assert(eq(int, stat(path, &st), 0));
	return (uint64_t)st.st_size;
}

/* --- files written by the store -------------------------------------------- */

/* The writes of one session, in order; val NULL is a delete. */
struct op {
	const char *key;
	size_t klen;
	const char *val;
	uint64_t version; /* filled in as written */
	uint64_t end;     /* log offset after its record */
};

/* Ends with a new key, then an overwrite, so that cutting inside the
 * last two records loses a key and brings back an older value. */
#define KEY(s) s, sizeof(s) - 1
static struct op session[] = {
	{ KEY("alpha"), "1", 0, 0 },
	{ KEY("beta"), "22", 0, 0 },
	{ KEY("gamma"), "333", 0, 0 },
	{ KEY("beta"), NULL, 0, 0 },
	{ KEY("alpha"), "4444", 0, 0 },
	{ KEY("delta\0bin"), "55555", 0, 0 }, /* a NUL inside the key */
	{ KEY("alpha"), "the last write: 666666", 0, 0 },
};
#define NOPS (sizeof(session) / sizeof(session[0]))

/* Writes session[] into dir with one store session and no sync, as a
 * caskd killed right after these writes leaves it. */
static void write_session(const char *dir)
{
	struct eng_db db;
	struct eng_recovery rep;

	uu_open_rw(dir, UU_MAX_KEYS, &db, &rep);
	for (size_t i = 0; i < NOPS; i++) {
		struct op *o = &session[i];
		struct eng_op op = {
			.kind = o->val ? ENG_OP_PUT : ENG_OP_DEL,
			.key = o->key, .klen = o->klen,
			.val = o->val, .vlen = o->val ? strlen(o->val) : 0,
		};
		struct eng_result res;
		int rc = eng_write(&db, &op, &res);
		cr_assert(eq(int, rc, 0), "write %zu: %s", i, eng_strerror(rc));
		o->version = res.version;
		o->end = res.end;
	}
	uu_close(&db);
}

static uint64_t op_off(size_t i)
{
	return i ? session[i - 1].end : ENG_FILE_HDR_SIZE;
}

/* What a reader must see once the log is cut at cut: every write whose
 * record ends at or before it, and nothing else. */
static void expect_session_state(struct eng_db *db, uint64_t cut)
{
	for (size_t k = 0; k < NOPS; k++) {
		const struct op *want = NULL;
		size_t klen = session[k].klen;
		struct eng_val v;
		int rc;

		for (size_t i = 0; i < NOPS; i++)
			if (session[i].end <= cut && session[i].klen == klen &&
			    !memcmp(session[i].key, session[k].key, klen))
				want = &session[i];
		rc = eng_get(db, session[k].key, klen, &v);
		if (!want || !want->val) {
			cr_assert(eq(int, rc, -ENOENT), "cut %llu: '%s' should be "
				  "absent", (unsigned long long)cut, session[k].key);
			continue;
		}
		cr_assert(eq(int, rc, 0), "cut %llu: '%s' missing",
			  (unsigned long long)cut, session[k].key);
		cr_assert(eq(u64, v.version, want->version), "cut %llu: '%s'",
			  (unsigned long long)cut, session[k].key);
		cr_assert(eq(u64, v.len, strlen(want->val)));
		cr_assert(eq(int, memcmp(v.data, want->val, v.len), 0),
			  "cut %llu: value of '%s'", (unsigned long long)cut,
			  session[k].key);
	}
}

/* A new write after recovery must get a version above every version the
 * file still holds, or an If-Match could match two different values. */
static void expect_next_version_above(struct eng_db *db, uint64_t max)
{
	struct eng_result res;
	int rc = eng_db_attach(db, 0);

	cr_assert(eq(int, rc, 0));
	rc = uu_put(db, "after-recovery", "x", &res);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(gt(u64, res.version, max));
}

Test(engine_recovery, cuts_torn_tail_at_every_offset, .timeout = 30)
{
	char src[PATH_MAX_LEN], cut_dir[PATH_MAX_LEN], path[PATH_MAX_LEN];
	size_t size;
	char *file;

	uu_path(src, sizeof(src), fx.dir, "src");
	uu_path(cut_dir, sizeof(cut_dir), fx.dir, "cut");
	cr_assert(eq(int, mkdir(cut_dir, 0750), 0));
	write_session(src);
	uu_path(path, sizeof(path), src, DB_FILE);
	file = uu_read_file(path, &size);
	cr_assert(eq(u64, size, session[NOPS - 1].end));

	/* Every length from an empty log to the whole file: every byte
	 * offset inside every record, the last two included. */
	for (uint64_t cut = ENG_FILE_HDR_SIZE; cut <= size; cut++) {
		struct eng_db db;
		struct eng_recovery rep;
		uint64_t whole = ENG_FILE_HDR_SIZE, max_version = 0;
		size_t nrec = 0;
		int rc;

		for (size_t i = 0; i < NOPS && session[i].end <= cut; i++) {
			whole = session[i].end;
			max_version = session[i].version;
			nrec++;
		}
		uu_path(path, sizeof(path), cut_dir, DB_FILE);
		uu_write_file(path, file, cut);
		rc = open_dir(cut_dir, &db, &rep);
		cr_assert(eq(int, rc, 0), "cut at %llu: %s",
			  (unsigned long long)cut, eng_strerror(rc));
		cr_assert(eq(u64, rep.cut_bytes, cut - whole), "cut at %llu",
			  (unsigned long long)cut);
		cr_assert(eq(u64, rep.tail, whole));
		cr_assert(eq(u64, rep.records, nrec));
		cr_assert(eq(u64, rep.skipped, 0));
		cr_assert(eq(u64, rep.max_version, max_version));
		cr_assert(eq(u64, file_size(cut_dir), whole),
			  "the torn tail is gone from the file");
		expect_session_state(&db, cut);
		expect_next_version_above(&db, max_version);
		uu_close(&db);
	}
	free(file);
}

Test(engine_recovery, appended_garbage_is_cut, .timeout = 20)
{
	static const size_t lens[] = { 1, 7, 8, 31, 32, 33, 100, 4096 };
	char path[PATH_MAX_LEN];
	unsigned seed = 12345;
	size_t size;
	char *file;

	write_session(fx.dir);
	uu_path(path, sizeof(path), fx.dir, DB_FILE);
	file = uu_read_file(path, &size);
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		struct eng_db db;
		struct eng_recovery rep;
		char *dirty = malloc(size + lens[l]);
		int rc;

		cr_assert_not_null(dirty);
		memcpy(dirty, file, size);
		for (size_t i = 0; i < lens[l]; i++)
			dirty[size + i] = (char)rand_r(&seed);
		uu_write_file(path, dirty, size + lens[l]);
		rc = open_dir(fx.dir, &db, &rep);
		cr_assert(eq(int, rc, 0), "%zu bytes of garbage: %s", lens[l],
			  eng_strerror(rc));
		cr_assert(eq(u64, rep.cut_bytes, lens[l]));
		cr_assert(eq(int, rep.cut_zeros, 0));
		cr_assert(eq(u64, rep.tail, size));
		cr_assert(eq(u64, rep.records, NOPS));
		cr_assert(eq(u64, file_size(fx.dir), size));
		expect_session_state(&db, size);
		uu_close(&db);
		free(dirty);
	}
	free(file);
}

/* Zeros after the last record (space prepared for appends, written or
 * a sparse extension) are trimmed, and said to be only zeros. */
Test(engine_recovery, zeros_after_the_last_record_are_trimmed, .timeout = 10)
{
	static const uint64_t extra[] = { 8, 4096, 1 << 20 };
	char path[PATH_MAX_LEN];
	size_t size;
	char *file;

	write_session(fx.dir);
	uu_path(path, sizeof(path), fx.dir, DB_FILE);
	file = uu_read_file(path, &size);
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		struct eng_db db;
		struct eng_recovery rep;
		int fd, rc;

		uu_write_file(path, file, size);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		cr_assert_geq(fd, 0);
		if (i == 0) /* written zeros */
			cr_assert(eq(i64, (int64_t)pwrite(fd, "\0\0\0\0\0\0\0\0",
						    8, (off_t)size), 8));
		else        /* a hole */
			cr_assert(eq(int, ftruncate(fd, (off_t)(size + extra[i])), 0));
		close(fd);
		rc = open_dir(fx.dir, &db, &rep);
		cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
		cr_assert(eq(u64, rep.cut_bytes, extra[i]));
		cr_assert(eq(int, rep.cut_zeros, 1));
		cr_assert(eq(u64, file_size(fx.dir), size));
		expect_session_state(&db, size);
		uu_close(&db);
	}
	free(file);
}

/* A hole in the file itself (a wiped reservation: punched), read with
 * SEEK_DATA rather than through the mapping. */
Test(engine_recovery, punched_hole_in_the_middle_is_skipped, .timeout = 10)
{
	struct eng_scan_item it[SCAN_ITEMS_MAX];
	struct eng_scan s;
	struct eng_db db;
	struct eng_recovery rep;
	char path[PATH_MAX_LEN];
	struct img m;
	uint64_t r1, gap, r2;
	const char *map;
	int fd, rc, n = 0;

	img_init(&m);
	r1 = img_rec(&m, ENG_REC_PUT, 1, "one", "1");
	gap = img_zeros(&m, 3 * 4096 - m.len);
	r2 = img_rec(&m, ENG_REC_PUT, 2, "two", "2");
	img_mark(&m, m.len);
	img_save(&m, fx.dir);
	uu_path(path, sizeof(path), fx.dir, DB_FILE);
	fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	rc = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096,
		       2 * 4096);
	cr_assert(eq(int, rc, 0), "punching a hole: %s", strerror(errno));
	cr_assert(eq(i64, (int64_t)lseek(fd, 4096, SEEK_DATA), 3 * 4096),
		  "the file system made a hole");

	map = mmap(NULL, m.len, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert(ne(ptr, (void *)map, MAP_FAILED));
	eng_scan_init(&s, map, m.len);
	eng_scan_set_fd(&s, fd);
	while (eng_scan_next(&s, &it[n]) != ENG_SCAN_END)
		cr_assert(lt(int, ++n, SCAN_ITEMS_MAX));
	cr_assert(eq(int, n, 3));
	expect_item(&it[0], ENG_SCAN_RECORD, r1, gap - r1);
	expect_item(&it[1], ENG_SCAN_ABANDONED, gap, r2 - gap);
	expect_item(&it[2], ENG_SCAN_RECORD, r2, m.len - r2);
	munmap((void *)map, m.len);
	close(fd);

	rc = open_dir(fx.dir, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep.skipped, r2 - gap));
	uu_expect_val(&db, "one", "1");
	uu_expect_val(&db, "two", "2");
	uu_close(&db);
	free(m.buf);
}

Test(engine_recovery, zero_hole_in_the_middle_is_skipped, .timeout = 10)
{
	struct eng_scan_item it[SCAN_ITEMS_MAX];
	struct eng_db db;
	struct eng_recovery rep;
	struct img m;
	uint64_t r1, hole, r2, r3;
	int rc;

	img_init(&m);
	r1 = img_rec(&m, ENG_REC_PUT, 1, "one", "1");
	hole = img_zeros(&m, 4096 + 40); /* a reservation never written */
	r2 = img_rec(&m, ENG_REC_PUT, 3, "three", "3");
	r3 = img_rec(&m, ENG_REC_PUT, 4, "one", "4");
	img_mark(&m, m.len);

	cr_assert(eq(int, scan_all(m.buf, m.len, it), 4));
	expect_item(&it[0], ENG_SCAN_RECORD, r1, hole - r1);
	expect_item(&it[1], ENG_SCAN_ABANDONED, hole, r2 - hole);
	expect_item(&it[2], ENG_SCAN_RECORD, r2, r3 - r2);
	expect_item(&it[3], ENG_SCAN_RECORD, r3, m.len - r3);

	img_save(&m, fx.dir);
	rc = open_dir(fx.dir, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep.skipped, r2 - hole));
	cr_assert(eq(u64, rep.cut_bytes, 0));
	cr_assert(eq(u64, rep.records, 3));
	cr_assert(eq(u64, rep.keys, 2));
	cr_assert(eq(u64, rep.tail, m.len));
	cr_assert(eq(u64, rep.max_version, 4));
	uu_expect_val(&db, "one", "4");
	uu_expect_val(&db, "three", "3");
	expect_next_version_above(&db, 4);
	uu_close(&db);
	free(m.buf);
}

/* A record whose header made it to the disk and whose payload did not:
 * a worker killed part way through its pwrite, or a write that ran out
 * of space. Built by hand; the caller places the durable mark. */
static void torn_payload_image(struct img *m, uint64_t *torn, uint64_t *tlen)
{
	img_init(m);
	img_rec(m, ENG_REC_PUT, 1, "key", "old value");
	*torn = img_rec(m, ENG_REC_PUT, 2, "key", "a new value that tore");
	*tlen = m->len - *torn;
	memset(m->buf + *torn + ENG_REC_HDR_SIZE + 8, 0,
	       *tlen - ENG_REC_HDR_SIZE - 8);
	img_rec(m, ENG_REC_PUT, 3, "other", "fine");
}

/* Above the durable mark the write was never acknowledged: skipped, and
 * wiped, so that once the mark moves past it only zeros remain there. */
Test(engine_recovery, torn_payload_above_the_mark_is_skipped, .timeout = 10)
{
	struct eng_scan_item it[SCAN_ITEMS_MAX];
	struct eng_db db;
	struct eng_recovery rep;
	char path[PATH_MAX_LEN], *after;
	size_t after_len;
	struct img m;
	uint64_t torn, tlen;
	int rc;

	torn_payload_image(&m, &torn, &tlen);
	img_mark(&m, torn);
	cr_assert(eq(int, scan_all(m.buf, m.len, it), 3));
	expect_item(&it[1], ENG_SCAN_ABANDONED, torn, tlen);

	img_save(&m, fx.dir);
	rc = open_dir(fx.dir, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep.skipped, tlen));
	cr_assert(eq(u64, rep.records, 2));
	uu_expect_val(&db, "key", "old value"); /* the previous version */
	uu_expect_val(&db, "other", "fine");
	uu_close(&db);

	uu_path(path, sizeof(path), fx.dir, DB_FILE);
	after = uu_read_file(path, &after_len);
	cr_assert(eq(u64, after_len, m.len));
	for (uint64_t i = torn; i < torn + tlen; i++)
		cr_assert(eq(int, after[i], 0), "byte %llu not wiped",
			  (unsigned long long)i);
	free(after);
	/* the first open moved the mark to the end: a second one must still
	 * see only a wiped reservation there, not corruption */
	rc = open_dir(fx.dir, &db, &rep);
	cr_assert(eq(int, rc, 0), "second open: %s", eng_strerror(rc));
	cr_assert(eq(u64, rep.skipped, tlen));
	uu_expect_val(&db, "key", "old value");
	uu_close(&db);
	free(m.buf);
}

/* A file whose marks are both unreadable cannot tell an unfinished write
 * from damage: the unfinished-write shape is given the benefit. */
Test(engine_recovery, torn_payload_without_a_mark_is_skipped, .timeout = 10)
{
	struct eng_scan_item it[SCAN_ITEMS_MAX];
	struct eng_db db;
	struct eng_recovery rep;
	struct img m;
	uint64_t torn, tlen;
	int rc;

	torn_payload_image(&m, &torn, &tlen);
	m.buf[ENG_MARK_OFF_A] ^= 1;
	cr_assert(eq(u64, uu_mark_durable(m.buf), UINT64_MAX));
	cr_assert(eq(int, scan_all(m.buf, m.len, it), 3));
	expect_item(&it[1], ENG_SCAN_ABANDONED, torn, tlen);

	img_save(&m, fx.dir);
	rc = open_dir(fx.dir, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep.skipped, tlen));
	uu_expect_val(&db, "key", "old value");
	uu_expect_val(&db, "other", "fine");
	uu_close(&db);
	free(m.buf);
}

/* Below the mark the same shape is an acknowledged record gone bad:
 * refused, never silently dropped. */
Test(engine_recovery, torn_payload_below_the_mark_is_corrupt, .timeout = 10)
{
	struct eng_scan_item it[SCAN_ITEMS_MAX];
	struct eng_db db;
	struct eng_recovery rep;
	struct img m;
	uint64_t torn, tlen;
	int rc;

	torn_payload_image(&m, &torn, &tlen);
	img_mark(&m, m.len);
	cr_assert(eq(int, scan_all(m.buf, m.len, it), 3));
	expect_item(&it[1], ENG_SCAN_CORRUPT, torn, tlen);

	img_save(&m, fx.dir);
	rc = open_dir(fx.dir, &db, &rep);
	cr_assert(eq(int, rc, ENG_ECORRUPT), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep.bad_off, torn));
	free(m.buf);
}

/* The file was synced and marked durable, then a record in the middle
 * went bad: refuse to start, name the offset, touch nothing. */
Test(engine_recovery, damaged_middle_record_is_corrupt, .timeout = 20)
{
	char path[PATH_MAX_LEN];
	struct eng_db db;
	struct eng_recovery rep;
	size_t size, now_size;
	char *file, *now;
	uint64_t mid;
	int rc;

	write_session(fx.dir);
	mid = op_off(2); /* "gamma" */
	rc = open_dir(fx.dir, &db, &rep); /* recovery marks it all durable */
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	uu_close(&db);
	uu_path(path, sizeof(path), fx.dir, DB_FILE);
	file = uu_read_file(path, &size);

	/* every byte of header, key and value (the padding is not covered
	 * by a checksum: it carries nothing) */
	for (uint64_t b = mid; b < mid + ENG_REC_HDR_SIZE + session[2].klen +
				     strlen(session[2].val); b++) {
		struct eng_scan_item it[SCAN_ITEMS_MAX];
		int n;

		file[b] ^= 0x40;
		n = scan_all(file, size, it);
		cr_assert(eq(int, n, (int)NOPS), "byte %llu",
			  (unsigned long long)b);
		expect_item(&it[2], ENG_SCAN_CORRUPT, mid, op_off(3) - mid);
		uu_write_file(path, file, size);
		rc = open_dir(fx.dir, &db, &rep);
		cr_assert(eq(int, rc, ENG_ECORRUPT), "flipped byte %llu: %s",
			  (unsigned long long)b, eng_strerror(rc));
		cr_assert(eq(u64, rep.bad_off, mid));
		now = uu_read_file(path, &now_size);
		cr_assert(eq(u64, now_size, size), "a refused file is not cut");
		cr_assert(eq(int, memcmp(now, file, size), 0),
			  "a refused file is not modified");
		free(now);
		file[b] ^= 0x40;
	}
	/* and repaired, it opens again */
	uu_write_file(path, file, size);
	rc = open_dir(fx.dir, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	expect_session_state(&db, size);
	uu_close(&db);
	free(file);
}

/* The same damage above the durable mark is a write torn by a crash
 * before it was acknowledged: skipped, not refused. */
Test(engine_recovery, damage_above_durable_mark_is_abandoned, .timeout = 10)
{
	struct eng_scan_item it[SCAN_ITEMS_MAX];
	struct eng_db db;
	struct eng_recovery rep;
	struct img m;
	uint64_t r1, bad, r3;
	int rc;

	img_init(&m);
	r1 = img_rec(&m, ENG_REC_PUT, 1, "a", "1");
	bad = img_rec(&m, ENG_REC_PUT, 2, "b", "2");
	r3 = img_rec(&m, ENG_REC_PUT, 3, "c", "3");
	m.buf[bad + 16] ^= 1; /* the version: the header checksum fails */

	img_mark(&m, m.len);
	cr_assert(eq(int, scan_all(m.buf, m.len, it), 3));
	expect_item(&it[1], ENG_SCAN_CORRUPT, bad, r3 - bad);
	img_mark(&m, bad);
	cr_assert(eq(int, scan_all(m.buf, m.len, it), 3));
	expect_item(&it[0], ENG_SCAN_RECORD, r1, bad - r1);
	expect_item(&it[1], ENG_SCAN_ABANDONED, bad, r3 - bad);
	expect_item(&it[2], ENG_SCAN_RECORD, r3, m.len - r3);

	img_save(&m, fx.dir);
	rc = open_dir(fx.dir, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep.skipped, r3 - bad));
	uu_expect_val(&db, "a", "1");
	uu_expect_val(&db, "b", NULL);
	uu_expect_val(&db, "c", "3");
	uu_close(&db);
	free(m.buf);
}

/* Every kind of region in one file, in the order the scanner meets them. */
Test(engine_recovery, scanner_classifies_every_region, .timeout = 10)
{
	struct eng_scan_item it[SCAN_ITEMS_MAX];
	struct img m;
	uint64_t r1, hole, r2, torn, r4, bad, r6, pad, r7, tail;

	img_init(&m);
	r1 = img_rec(&m, ENG_REC_PUT, 1, "k1", "v1");
	hole = img_zeros(&m, 64);
	r2 = img_rec(&m, ENG_REC_DEL, 2, "k1", NULL);
	torn = img_rec(&m, ENG_REC_PUT, 3, "k3", "0123456789abcdef");
	/* a torn payload behind an intact header */
	m.buf[torn + ENG_REC_HDR_SIZE + 2 + 15] ^= 0xFF; /* last value byte */
	r4 = img_rec(&m, ENG_REC_PUT, 4, "k4", "v4");
	bad = img_rec(&m, ENG_REC_PUT, 5, "k5", "v5");
	m.buf[bad] ^= 0xFF; /* magic */
	r6 = img_rec(&m, ENG_REC_PUT, 6, "k6", "v6");
	pad = img_zeros(&m, 48);
	eng_rec_encode_pad(m.buf + pad, 48, 0);
	r7 = img_rec(&m, ENG_REC_PUT, 7, "k7", "v7");
	img_mark(&m, m.len);
	tail = img_rec(&m, ENG_REC_PUT, 8, "k8", "a tail cut short");
	m.len -= 5;

	cr_assert(eq(int, scan_all(m.buf, m.len, it), 10));
	expect_item(&it[0], ENG_SCAN_RECORD, r1, hole - r1);
	expect_item(&it[1], ENG_SCAN_ABANDONED, hole, r2 - hole);
	expect_item(&it[2], ENG_SCAN_RECORD, r2, torn - r2);
	cr_assert(eq(int, it[2].h.type, ENG_REC_DEL));
	expect_item(&it[3], ENG_SCAN_CORRUPT, torn, r4 - torn); /* below the mark */
	expect_item(&it[4], ENG_SCAN_RECORD, r4, bad - r4);
	cr_assert(eq(u64, it[4].h.version, 4));
	expect_item(&it[5], ENG_SCAN_CORRUPT, bad, r6 - bad);
	expect_item(&it[6], ENG_SCAN_RECORD, r6, pad - r6);
	expect_item(&it[7], ENG_SCAN_RECORD, pad, r7 - pad);
	cr_assert(eq(int, it[7].h.type, ENG_REC_PAD));
	expect_item(&it[8], ENG_SCAN_RECORD, r7, tail - r7);
	expect_item(&it[9], ENG_SCAN_TORN_TAIL, tail, m.len - tail);
	free(m.buf);
}

/* With both durable marks unreadable the scanner assumes nothing was
 * torn by a crash: damage followed by valid records is corruption. */
Test(engine_recovery, scanner_without_a_mark_trusts_no_tear, .timeout = 5)
{
	struct eng_scan_item it[SCAN_ITEMS_MAX];
	struct img m;
	uint64_t bad, hole;

	img_init(&m);
	m.buf[ENG_MARK_OFF_A] ^= 1;
	img_rec(&m, ENG_REC_PUT, 1, "a", "1");
	bad = img_rec(&m, ENG_REC_PUT, 2, "b", "2");
	m.buf[bad + 4] ^= 1; /* the header checksum itself */
	img_rec(&m, ENG_REC_PUT, 3, "c", "3");
	hole = img_zeros(&m, 16);
	img_rec(&m, ENG_REC_PUT, 4, "d", "4");

	cr_assert(eq(int, scan_all(m.buf, m.len, it), 5));
	cr_assert(eq(int, it[1].kind, ENG_SCAN_CORRUPT));
	cr_assert(eq(u64, it[1].off, bad));
	expect_item(&it[3], ENG_SCAN_ABANDONED, hole, 16);
	free(m.buf);
}

/* Every byte below the mark was durable, so it must be there: recovery
 * never cuts below the mark (zeros there, a wiped reservation, are kept
 * and skipped), and a file that ends below it was truncated: refused,
 * with the damage running from where the records stop to the mark. */
Test(engine_recovery, bytes_below_the_mark_are_kept_and_must_exist, .timeout = 10)
{
	struct eng_scan_item it[SCAN_ITEMS_MAX];
	struct eng_db db;
	struct eng_recovery rep;
	struct img m;
	uint64_t r2, wiped, mark;
	int rc;

	img_init(&m);
	img_rec(&m, ENG_REC_PUT, 1, "a", "1");
	r2 = img_rec(&m, ENG_REC_PUT, 2, "b", "2");
	wiped = img_zeros(&m, 64);
	mark = m.len;
	img_mark(&m, mark);
	img_zeros(&m, 4096);

	cr_assert(eq(int, scan_all(m.buf, m.len, it), 4));
	expect_item(&it[2], ENG_SCAN_ABANDONED, wiped, mark - wiped);
	expect_item(&it[3], ENG_SCAN_UNUSED, mark, m.len - mark);
	img_save(&m, fx.dir);
	rc = open_dir(fx.dir, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep.tail, mark), "recovery cut below the durable mark");
	cr_assert(eq(u64, file_size(fx.dir), mark));
	uu_expect_val(&db, "b", "2");
	uu_close(&db);

	for (uint64_t cut = r2; cut <= r2 + ENG_REC_HDR_SIZE; cut += ENG_REC_HDR_SIZE) {
		m.len = cut; /* on the boundary of record b, then inside it */
		img_save(&m, fx.dir);
		rc = open_dir(fx.dir, &db, &rep);
		cr_assert(eq(int, rc, ENG_ECORRUPT), "a file cut at %llu below its mark: %s",
			  (unsigned long long)cut, eng_strerror(rc));
		cr_assert(eq(u64, rep.bad_off, r2));
		cr_assert(eq(u64, rep.bad_off + rep.bad_len, mark));
		cr_assert(eq(u64, rep.file_bytes, cut));
	}
	free(m.buf);
}

Test(engine_recovery, pad_records_and_stray_deletes_replay_to_nothing,
     .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	struct img m;
	uint64_t pad;
	int rc;

	img_init(&m);
	img_rec(&m, ENG_REC_DEL, 1, "never-put", NULL);
	pad = img_zeros(&m, 4096);
	eng_rec_encode_pad(m.buf + pad, 4096, 0);
	memset(m.buf + pad + ENG_REC_HDR_SIZE, 0xEE, 4096 - ENG_REC_HDR_SIZE);
	img_rec(&m, ENG_REC_PUT, 2, "x", "y");
	img_mark(&m, m.len);
	img_save(&m, fx.dir);

	rc = open_dir(fx.dir, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep.records, 2), "a PAD is no record");
	cr_assert(eq(u64, rep.keys, 1));
	cr_assert(eq(u64, rep.skipped, 4096), "the PAD's bytes are skipped");
	uu_expect_val(&db, "never-put", NULL);
	uu_expect_val(&db, "x", "y");
	uu_close(&db);
	free(m.buf);
}

Test(engine_recovery, versions_continue_past_a_final_delete, .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	struct eng_result res;
	uint64_t last;
	int rc;

	uu_open_rw(fx.dir, UU_MAX_KEYS, &db, &rep);
	for (int i = 0; i < 5; i++)
		cr_assert(eq(int, uu_put(&db, "k", "v", NULL), 0));
	cr_assert(eq(int, uu_del(&db, "k", &res), 0));
	last = res.version;
	uu_close(&db);

	rc = open_dir(fx.dir, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep.max_version, last),
		  "the delete's version counts though its key is gone");
	cr_assert(eq(u64, rep.keys, 0));
	cr_assert(eq(u64, rep.records, 6));
	uu_expect_val(&db, "k", NULL);
	expect_next_version_above(&db, last);
	uu_close(&db);
}

Test(engine_recovery, new_and_reopened_files, .timeout = 10)
{
	struct eng_db db;
	struct eng_recovery rep;
	char path[PATH_MAX_LEN], sub[PATH_MAX_LEN];
	int rc;

	/* the data directory itself is created if missing */
	uu_path(sub, sizeof(sub), fx.dir, "data");
	rc = open_dir(sub, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(int, rep.created, 1));
	cr_assert(eq(u64, rep.tail, ENG_FILE_HDR_SIZE));
	cr_assert(eq(u64, rep.records, 0));
	uu_close(&db);
	rc = open_dir(sub, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(int, rep.created, 0));
	cr_assert(eq(u64, rep.file_bytes, ENG_FILE_HDR_SIZE));
	uu_close(&db);

	/* shorter than a header: a crash while creating it */
	uu_path(path, sizeof(path), sub, DB_FILE);
	uu_write_file(path, "CASK", 4);
	rc = open_dir(sub, &db, &rep);
	cr_assert(eq(int, rc, 0), "%s", eng_strerror(rc));
	cr_assert(eq(int, rep.created, 1));
	uu_close(&db);
	cr_assert(eq(u64, file_size(sub), ENG_FILE_HDR_SIZE));
}

Test(engine_recovery, foreign_or_newer_files_are_refused, .timeout = 10)
{
	unsigned char junk[256];
	struct eng_db db;
	struct eng_recovery rep;
	char path[PATH_MAX_LEN], *after;
	size_t after_len;
	struct img m;
	uint32_t v, crc;
	int rc;

	memset(junk, 'J', sizeof(junk));
	uu_path(path, sizeof(path), fx.dir, DB_FILE);
	uu_write_file(path, junk, sizeof(junk));
	rc = open_dir(fx.dir, &db, &rep);
	cr_assert(eq(int, rc, ENG_ECORRUPT), "%s", eng_strerror(rc));
	cr_assert(eq(u64, rep.bad_off, 0));
	after = uu_read_file(path, &after_len);
	cr_assert(eq(u64, after_len, sizeof(junk)));
	cr_assert(eq(int, memcmp(after, junk, sizeof(junk)), 0),
		  "someone else's file is left alone");
	free(after);

	img_init(&m);
	v = htole32(ENG_FORMAT_VERSION + 1);
	memcpy(m.buf + 8, &v, 4);
	memset(m.buf + ENG_FILE_HDR_CRC_OFF, 0, 4);
	crc = htole32(eng_crc32c(0, m.buf, ENG_FILE_HDR_CRC_LEN));
	memcpy(m.buf + ENG_FILE_HDR_CRC_OFF, &crc, 4);
	img_save(&m, fx.dir);
	rc = open_dir(fx.dir, &db, &rep);
	cr_assert(eq(int, rc, -EPROTO), "%s", eng_strerror(rc));
	free(m.buf);
}
