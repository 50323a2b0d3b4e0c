/* engine/idxsnap.c — database.idx, the index snapshot that makes a
 * start-up take time in proportion to the keys, not the bytes of the log.
 *
 * Owns: writing a snapshot of a table (at a clean stop, and after a
 * compaction), and loading one into the current table at start-up after
 * checking it against database.bin. Layout in docs/format.md:
 *   header (80 bytes): magic "CASKIDX\0", u32 version (2), u32 header
 *     size, u64 file id of the database.bin it indexes, u64
 *     covered_from, u64 keys, u64 max version, u64 k0 and u64 k1 of the
 *     table's hash seed, u32 crc32c of the entries, u32 zero, u32 zero,
 *     u32 crc32c of bytes 0..76
 *   keys x 32-byte entries: u32 hash, u32 value length, u64 value
 *     offset, u64 version, u16 key length, 6 zero bytes
 * The hashes are the table's, under its seed, which the snapshot keeps
 * so a start can place the entries without reading their keys; the
 * loaded table takes that seed. (Version 1, before hashes were keyed,
 * is ignored: that start scans the log.)
 * A snapshot says: every record below covered_from is reflected in the
 * entries; records from covered_from on are replayed by the scan as
 * usual. It may be taken while writers run (the table read without the
 * mutex) because replay applies only records newer than what a key
 * holds; its entries point only at records made durable before the
 * snapshot itself was written.
 *
 * A snapshot is trusted only if its checksums hold, it names this
 * file's id, every entry matches the record header it points at (a
 * sample would let one stale entry through: a key answering 404 or a
 * value no sync covered), and no key appears twice (replay would give it
 * a second live slot); otherwise it is ignored, with the reason in the
 * recovery report, and the whole log is scanned. Entries that the
 * replay after it finds beyond the tail or in a wiped region make
 * recovery start over with a scan too (engine/recover.c).
 */
#include "engine/idxsnap.h"

#include "engine/crc32c.h"
#include "engine/elog.h"
#include "engine/index.h"
#include "engine/io.h"
#include "engine/record.h"
#include "engine/shared.h"
#include "engine/db.h"

#include <endian.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define IDX_MAGIC "CASKIDX\0"
#define IDX_VERSION 2
#define IDX_HDR_SIZE 80
#define IDX_ENTRY_SIZE 32
#define IDX_BUF_ENTRIES 2048
/* Loading asks for the memory of the entry this far ahead (prefetch_entry):
 * enough to cover a miss of a few hundred ns at tens of ns per entry. */
#define PREFETCH_AHEAD 16

struct idx_hdr {
	char magic[8];
	uint32_t version;
	uint32_t hdr_size;
	uint64_t file_id;
	uint64_t covered_from;
	uint64_t keys;
	uint64_t max_version;
	uint64_t seed_k0;
	uint64_t seed_k1;
	uint32_t entries_crc;
	uint32_t zero[2];
	uint32_t crc;
};
_Static_assert(sizeof(struct idx_hdr) == IDX_HDR_SIZE, "idx header is 80 bytes");

struct idx_entry {
	uint32_t hash;
	uint32_t vlen;
	uint64_t voff;
	uint64_t version;
	uint16_t klen;
	uint8_t zero[6];
};
_Static_assert(sizeof(struct idx_entry) == IDX_ENTRY_SIZE, "idx entry is 32 bytes");

static void entry_encode(struct idx_entry *d, const struct eng_entry *e)
{
	memset(d, 0, sizeof(*d));
	d->hash = htole32(e->hash);
	d->vlen = htole32(e->vlen);
	d->voff = htole64(e->voff);
	d->version = htole64(e->version);
	d->klen = htole16(e->klen);
}

static void entry_decode(struct eng_entry *e, const struct idx_entry *s)
{
	e->hash = le32toh(s->hash);
	e->vlen = le32toh(s->vlen);
	e->voff = le64toh(s->voff);
	e->version = le64toh(s->version);
	e->klen = le16toh(s->klen);
	e->state = ENG_SLOT_LIVE;
}

/* --- writing -------------------------------------------------------------- */

static int flush_entries(int fd, const struct idx_entry *buf, size_t n,
			 uint64_t *off, uint32_t *crc)
{
	size_t bytes = n * sizeof(*buf);
	int rc;

	*crc = eng_crc32c(*crc, buf, bytes);
	if ((rc = eng_io_pwrite_all(fd, buf, bytes, *off)))
		return rc;
	*off += bytes;
	return 0;
}

/* The entries of t, read without the mutex (a slot that stays odd makes
 * the snapshot fail: one missing key would be a lost key). */
static int write_entries(int fd, const struct eng_table *t, uint64_t *keys,
			 uint32_t *crc, uint64_t *max_version)
{
	struct idx_entry *buf = malloc(IDX_BUF_ENTRIES * sizeof(*buf));
	uint64_t off = IDX_HDR_SIZE;
	size_t n = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	*keys = 0;
	*crc = 0;
	for (uint64_t i = 0; i < t->nslots && !rc; i++) {
		struct eng_entry e;
		int r = eng_index_read_slot(t, i, &e);
		if (r < 0) {
			rc = -EAGAIN;
			break;
		}
		if (!r)
			continue;
		if (e.version > *max_version)
			*max_version = e.version;
		entry_encode(&buf[n++], &e);
		(*keys)++;
		if (n == IDX_BUF_ENTRIES) {
			rc = flush_entries(fd, buf, n, &off, crc);
			n = 0;
		}
	}
	if (!rc && n)
		rc = flush_entries(fd, buf, n, &off, crc);
	free(buf);
	return rc;
}

int eng_idx_write(struct eng_db *db, const char *dir, const struct eng_table *t,
		  uint64_t file_id, uint64_t covered_from, uint64_t max_version)
{
	struct idx_hdr h = { .magic = IDX_MAGIC };
	char *path = NULL, *tmp = NULL;
	uint64_t keys;
	uint32_t crc;
	int fd, rc;

	if ((rc = eng_path_join(&path, dir, ENG_IDX_FILE)) ||
	    asprintf(&tmp, "%s.tmp", path) < 0) {
		free(path);
		return -ENOMEM;
	}
	fd = eng_io_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, ENG_FILE_MODE);
	if (fd < 0) {
		rc = fd;
		goto out_free;
	}
	/* The entries may name records published while they were read,
	 * after covered_from was taken: sync database.bin only once they
	 * are all read, so every record an entry names is durable before
	 * the snapshot that vouches for it can be (a sync before the scan
	 * would leave out what was published during it). */
	if ((rc = write_entries(fd, t, &keys, &crc, &max_version)) ||
	    (rc = eng_io_datasync(db->fd)))
		goto out_close;
	h.version = htole32(IDX_VERSION);
	h.hdr_size = htole32(IDX_HDR_SIZE);
	h.file_id = htole64(file_id);
	h.covered_from = htole64(covered_from);
	h.keys = htole64(keys);
	h.max_version = htole64(max_version);
	h.seed_k0 = htole64(t->seed.k0);
	h.seed_k1 = htole64(t->seed.k1);
	h.entries_crc = htole32(crc);
	h.crc = htole32(eng_crc32c(0, &h, offsetof(struct idx_hdr, crc)));
	if ((rc = eng_io_pwrite_all(fd, &h, sizeof(h), 0)) ||
	    (rc = eng_io_datasync(fd)))
		goto out_close;
	if ((rc = eng_io_rename(tmp, path)))
		goto out_close;
	rc = eng_io_syncdir(dir);
out_close:
	close(fd);
	if (rc)
		eng_io_unlink(tmp);
out_free:
	free(tmp);
	free(path);
	return rc;
}

void eng_idx_remove(const char *dir)
{
	char *path;

	if (eng_path_join(&path, dir, ENG_IDX_FILE))
		return;
	eng_io_unlink(path);
	free(path);
}

/* A whole header of this version, whatever file it names. */
static int hdr_intact(const struct idx_hdr *h)
{
	return !memcmp(h->magic, IDX_MAGIC, 8) && le32toh(h->version) == IDX_VERSION &&
	       le32toh(h->hdr_size) == IDX_HDR_SIZE &&
	       le32toh(h->crc) == eng_crc32c(0, h, offsetof(struct idx_hdr, crc));
}

int eng_idx_remove_for(const char *dir, uint64_t file_id)
{
	struct idx_hdr h;
	char *path;
	ssize_t n;
	int fd, rc;

	if ((rc = eng_path_join(&path, dir, ENG_IDX_FILE)))
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? 0 : -errno;
		goto out;
	}
	while ((n = pread(fd, &h, sizeof(h), 0)) < 0 && errno == EINTR)
		;
	rc = n < 0 ? -errno : 0;
	close(fd);
	/* one that names another file, or no file (damaged), is ignored by
	 * a start anyway: it is not ours to remove */
	if (!rc && n == (ssize_t)sizeof(h) && file_id && hdr_intact(&h) &&
	    le64toh(h.file_id) == file_id)
		rc = unlink(path) == 0 ? 1 : errno == ENOENT ? 0 : -errno;
out:
	free(path);
	return rc;
}

/* --- loading --------------------------------------------------------------- */

static int header_ok(const struct idx_hdr *h, uint64_t idx_size,
		     uint64_t file_id, uint64_t db_size, char *why, size_t n)
{
	if (!hdr_intact(h)) {
		snprintf(why, n, "its header is damaged or of another version");
		return 0;
	}
	if (!file_id || le64toh(h->file_id) != file_id) {
		snprintf(why, n, "it was made for another database.bin (file id %016" PRIx64
			 ", this one is %016" PRIx64 ")", le64toh(h->file_id), file_id);
		return 0;
	}
	if (le64toh(h->covered_from) < ENG_FILE_HDR_SIZE ||
	    le64toh(h->covered_from) > db_size) {
		snprintf(why, n, "it covers %" PRIu64 " bytes, more than database.bin's %" PRIu64,
			 le64toh(h->covered_from), db_size);
		return 0;
	}
	/* keys is checked against the size first: keys * 32 may wrap */
	if (le64toh(h->keys) > (idx_size - IDX_HDR_SIZE) / IDX_ENTRY_SIZE ||
	    idx_size != IDX_HDR_SIZE + le64toh(h->keys) * IDX_ENTRY_SIZE) {
		snprintf(why, n, "its size does not match its %" PRIu64 " entries",
			 le64toh(h->keys));
		return 0;
	}
	return 1;
}

/* Does entry e point at a valid PUT record of its key in the map, with
 * its hash in t (keyed with the snapshot's seed)? */
static int entry_matches(const struct eng_table *t, const char *map,
			 uint64_t db_size, const struct eng_entry *e)
{
	struct eng_rec_hdr h;
	uint64_t roff;

	if (e->klen < 1 || e->klen > ENG_KEY_MAX || e->voff > db_size ||
	    e->voff < ENG_FILE_HDR_SIZE + ENG_REC_HDR_SIZE + (uint64_t)e->klen)
		return 0;
	roff = e->voff - e->klen - ENG_REC_HDR_SIZE;
	return eng_rec_check_hdr(map + roff, db_size - roff, &h) == 0 &&
	       h.type == ENG_REC_PUT && h.klen == e->klen &&
	       h.vlen == e->vlen && h.version == e->version &&
	       eng_index_hash(t, map + roff + ENG_REC_HDR_SIZE, e->klen) == e->hash;
}

/* Entries come in the order of the old table's slots, that is of their
 * hashes, so the records they name are all over database.bin: each check
 * is a cache (and TLB) miss there, and placing the entry another in the
 * table. Both addresses are known entries ahead, so they are asked for
 * that far ahead and the misses overlap instead of adding up. */
static void prefetch_entry(const struct eng_table *t, const char *map,
			   uint64_t db_size, const struct idx_entry *s)
{
	uint64_t voff = le64toh(s->voff);
	uint16_t klen = le16toh(s->klen);

	eng_index_prefetch(t, le32toh(s->hash));
	if (voff <= db_size && voff >= ENG_FILE_HDR_SIZE + ENG_REC_HDR_SIZE + (uint64_t)klen)
		__builtin_prefetch(map + voff - klen - ENG_REC_HDR_SIZE, 0);
}

/* Checks header h and keys t with its seed (t is still empty: its pages
 * are zero). 0 or -EBADMSG with the reason in why. */
static int load_begin(const struct idx_hdr *h, uint64_t idx_size, const char *map,
		      uint64_t db_size, struct eng_table *t, char *why, size_t whylen)
{
	struct eng_hash_seed seed;

	if (!header_ok(h, idx_size, eng_file_id(map), db_size, why, whylen))
		return -EBADMSG;
	seed.k0 = le64toh(h->seed_k0);
	seed.k1 = le64toh(h->seed_k1);
	if (!(seed.k0 | seed.k1)) {
		snprintf(why, whylen, "its hash seed is zero");
		return -EBADMSG;
	}
	/* the entries' hashes are under the snapshot's seed: so is the table */
	eng_index_init(t, t->gen, t->file_gen, t->nslots, &seed);
	return 0;
}

/* Checks and places n entries, the first of which is entry number first
 * of the snapshot. 0, -EBADMSG or -ENOSPC with the reason in why. */
static int load_entries(struct eng_table *t, const char *map, uint64_t db_size,
			const struct idx_entry *ents, uint64_t n, uint64_t first,
			char *why, size_t whylen)
{
	for (uint64_t i = 0; i < n; i++) {
		struct eng_entry e;
		int r;

		if (i + PREFETCH_AHEAD < n)
			prefetch_entry(t, map, db_size, &ents[i + PREFETCH_AHEAD]);
		entry_decode(&e, &ents[i]);
		if (!entry_matches(t, map, db_size, &e)) {
			snprintf(why, whylen, "entry %" PRIu64 " does not match the record it "
				 "points at", first + i);
			return -EBADMSG;
		}
		if ((r = eng_index_bulk_add_unique(t, map, &e)) == -EEXIST) {
			snprintf(why, whylen, "entry %" PRIu64 " names a key an earlier "
				 "entry holds", first + i);
			return -EBADMSG;
		}
		if (r < 0) {
			snprintf(why, whylen, "it holds more keys than the table has room for");
			return -ENOSPC;
		}
	}
	return 0;
}

int eng_idx_parse(const void *idx, uint64_t idx_size, const char *map,
		  uint64_t db_size, struct eng_table *t, uint64_t *covered_from,
		  uint64_t *max_version, char *why, size_t whylen)
{
	const struct idx_hdr *h = idx;
	const struct idx_entry *ents;
	int rc;

	why[0] = '\0';
	if (idx_size < IDX_HDR_SIZE) {
		snprintf(why, whylen, "it is shorter than its header");
		return -EBADMSG;
	}
	ents = (const struct idx_entry *)((const char *)idx + IDX_HDR_SIZE);
	if ((rc = load_begin(h, idx_size, map, db_size, t, why, whylen)))
		return rc;
	if (eng_crc32c(0, ents, le64toh(h->keys) * IDX_ENTRY_SIZE) != le32toh(h->entries_crc)) {
		snprintf(why, whylen, "its entries fail their checksum");
		return -EBADMSG;
	}
	if ((rc = load_entries(t, map, db_size, ents, le64toh(h->keys), 0, why, whylen)))
		return rc;
	*covered_from = le64toh(h->covered_from);
	*max_version = le64toh(h->max_version);
	return 0;
}

/* len bytes at off of fd: 0, -EBADMSG if the file ends first, or -errno. */
static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EBADMSG;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Reads the entries of fd chunk by chunk into one buffer and loads them.
 * Not a mapping of the file: on a VM whose first touch of each page
 * from user space is dear, a copy by the kernel into a buffer reused
 * for every chunk costs a fraction of touching a mapping of it all. The
 * entries' checksum is known only at the end: a failure leaves entries
 * in t, which the caller then throws away (eng_idx_load's contract),
 * and every entry placed was checked against its record first. */
static int load_fd(int fd, const struct idx_hdr *h, const char *map,
		   uint64_t db_size, struct eng_table *t, char *why, size_t whylen)
{
	struct idx_entry *buf = malloc(IDX_BUF_ENTRIES * sizeof(*buf));
	uint64_t keys = le64toh(h->keys), done = 0;
	uint32_t crc = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (!rc && done < keys) {
		uint64_t n = keys - done < IDX_BUF_ENTRIES ? keys - done : IDX_BUF_ENTRIES;
		size_t bytes = (size_t)n * sizeof(*buf);

		if ((rc = read_at(fd, buf, bytes, IDX_HDR_SIZE + done * IDX_ENTRY_SIZE))) {
			snprintf(why, whylen, "reading it: %s", strerror(-rc));
			break;
		}
		crc = eng_crc32c(crc, buf, bytes);
		rc = load_entries(t, map, db_size, buf, n, done, why, whylen);
		done += n;
	}
	if (!rc && crc != le32toh(h->entries_crc)) {
		snprintf(why, whylen, "its entries fail their checksum");
		rc = -EBADMSG;
	}
	free(buf);
	return rc;
}

int eng_idx_load(struct eng_db *db, uint64_t db_size, struct eng_table *t,
		 uint64_t *covered_from, uint64_t *max_version, char *why,
		 size_t whylen)
{
	char *path;
	struct stat st;
	struct idx_hdr h;
	int fd, rc = -EBADMSG;

	why[0] = '\0';
	if (eng_path_join(&path, db->dir, ENG_IDX_FILE))
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	if (fstat(fd, &st) < 0 || st.st_size < IDX_HDR_SIZE ||
	    read_at(fd, &h, sizeof(h), 0)) {
		snprintf(why, whylen, "it is shorter than its header");
		goto out_close;
	}
	if ((rc = load_begin(&h, (uint64_t)st.st_size, db->map, db_size, t, why, whylen)) ||
	    (rc = load_fd(fd, &h, db->map, db_size, t, why, whylen)))
		goto out_close;
	*covered_from = le64toh(h.covered_from);
	*max_version = le64toh(h.max_version);
out_close:
	close(fd);
	return rc;
}

uint64_t eng_idx_keys(struct eng_db *db)
{
	char *path;
	struct idx_hdr h;
	struct stat st;
	uint64_t keys = 0;
	int fd;

	if (eng_path_join(&path, db->dir, ENG_IDX_FILE))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return 0;
	/* The count sizes (and populates) the first table: only one the
	 * file's size bears out, so a damaged header cannot make a start
	 * allocate a table for keys that are not there. */
	if (pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	    !memcmp(h.magic, IDX_MAGIC, 8) && fstat(fd, &st) == 0 &&
	    le64toh(h.keys) <= ((uint64_t)st.st_size - IDX_HDR_SIZE) / IDX_ENTRY_SIZE &&
	    (uint64_t)st.st_size == IDX_HDR_SIZE + le64toh(h.keys) * IDX_ENTRY_SIZE)
		keys = le64toh(h.keys);
	close(fd);
	return keys;
}
