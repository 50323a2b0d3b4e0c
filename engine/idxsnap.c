/* engine/idxsnap.c — database.idx, the index snapshot that makes a
 * start-up take time in proportion to the keys, not the bytes of the log.
 *
 * Owns: writing a snapshot of a table (at a clean stop, and after a
 * compaction), and loading one into the current table at start-up after
 * checking it against database.bin. Layout in docs/format.md:
 *   header (96 bytes): magic "CASKIDX\0", u32 version (3), u32 header
 *     size, u64 file id of the database.bin it indexes, u64
 *     covered_from, u64 keys, u64 max version, u64 k0 and u64 k1 of the
 *     table's hash seed, u32 crc32c of the entries, u32 crc32c of the
 *     ordered section, u64 ordered keys (0 or keys), 12 zero bytes, u32
 *     crc32c of bytes 0..92
 *   keys x 32-byte entries: u32 hash, u32 value length, u64 value
 *     offset, u64 version, u16 key length, 6 zero bytes
 *   then, if ordered keys is not 0, the ordered section: the same keys
 *     in byte order, 24 bytes each (engine/idxorder.c)
 * The ordered section is written only at a clean stop (the compaction
 * job leaves it out: see docs/decisions.md), and only when every entry
 * lies below covered_from, so that nothing a start's replay cuts or
 * wipes can be in it. A damaged or mismatched section costs only itself:
 * the entries are still used, and workers sort their views as before.
 * Version 2 (the same without the ordered section: an 80-byte header
 * ending in 8 zero bytes and its CRC) is still read; other versions are
 * ignored.
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
#include "engine/idxorder.h"
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
#define IDX_VERSION 3
#define IDX_HDR_SIZE 96
#define IDX_V2_HDR_SIZE 80   /* version 2: read, never written */
#define IDX_ENTRY_SIZE 32
#define IDX_ORDER_ENTRY_SIZE 24
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
	uint32_t ordered_crc;  /* version 3 on; in version 2, zero */
	uint64_t ordered;      /* version 3 on; in version 2, zero and the header CRC */
	uint32_t zero[3];
	uint32_t crc;
};
_Static_assert(sizeof(struct idx_hdr) == IDX_HDR_SIZE, "idx header is 96 bytes");
_Static_assert(IDX_HDR_SIZE == ENG_IDX_VIEW_HDR, "store.h keeps a whole header");
_Static_assert(offsetof(struct idx_hdr, ordered) + 8 == IDX_V2_HDR_SIZE,
	       "a version 2 header ends with its CRC where version 3 has ordered");

/* A header read from either version, in host order. */
struct idx_info {
	uint32_t version, hdr_size;
	uint64_t file_id, covered_from, keys, max_version, seed_k0, seed_k1;
	uint32_t entries_crc, ordered_crc;
	uint64_t ordered;
};

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
 * the snapshot fail: one missing key would be a lost key). With ord, the
 * keys are collected for the ordered section too; *ord_ok says whether
 * they all lie below covered_from (the section's promise). */
static int write_entries(int fd, struct eng_db *db, const struct eng_table *t,
			 uint64_t covered_from, struct eng_idxorder *ord,
			 int *ord_ok, uint64_t *keys, uint32_t *crc,
			 uint64_t *max_version)
{
	struct idx_entry *buf = malloc(IDX_BUF_ENTRIES * sizeof(*buf));
	uint64_t off = IDX_HDR_SIZE;
	size_t n = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	*keys = 0;
	*crc = 0;
	*ord_ok = ord != NULL;
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
		if (*ord_ok && e.voff + e.vlen > covered_from)
			*ord_ok = 0; /* published after the cut: no section */
		if (*ord_ok && (rc = eng_idxorder_add(ord, e.voff, e.klen)))
			break;
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

/* The ordered section after the entries, when ord holds them all. */
static int write_ordered(int fd, struct eng_db *db, struct eng_idxorder *ord,
			 int ord_ok, uint64_t keys, struct idx_hdr *h)
{
	uint32_t crc;
	int rc;

	if (!ord_ok || ord->n != keys)
		return 0;
	if (eng_idxorder_sort(ord, db->map))
		return 0; /* no memory for it: the snapshot goes without */
	if ((rc = eng_idxorder_write(fd, ord, IDX_HDR_SIZE + keys * IDX_ENTRY_SIZE, &crc)))
		return rc;
	h->ordered = htole64(keys);
	h->ordered_crc = htole32(crc);
	return 0;
}

static int idx_write(struct eng_db *db, const char *dir, const struct eng_table *t,
		     uint64_t file_id, uint64_t covered_from, uint64_t max_version,
		     int ordered)
{
	struct idx_hdr h = { .magic = IDX_MAGIC };
	struct eng_idxorder ord = { 0 };
	char *path = NULL, *tmp = NULL;
	uint64_t keys;
	uint32_t crc;
	int fd, rc, ord_ok;

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
	if ((rc = write_entries(fd, db, t, covered_from, ordered ? &ord : NULL, &ord_ok,
				&keys, &crc, &max_version)) ||
	    (rc = write_ordered(fd, db, &ord, ord_ok, keys, &h)) ||
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
	eng_idxorder_free(&ord);
	free(tmp);
	free(path);
	return rc;
}

int eng_idx_write(struct eng_db *db, const char *dir, const struct eng_table *t,
		  uint64_t file_id, uint64_t covered_from, uint64_t max_version)
{
	return idx_write(db, dir, t, file_id, covered_from, max_version, 0);
}

int eng_idx_write_ordered(struct eng_db *db, const char *dir, const struct eng_table *t,
			  uint64_t file_id, uint64_t covered_from, uint64_t max_version)
{
	return idx_write(db, dir, t, file_id, covered_from, max_version, 1);
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
/* Decodes a whole header of a version this build reads from the n bytes
 * at buf, whatever file it names: 1, or 0 (damaged, short, another
 * version). */
static int hdr_decode(const void *buf, size_t n, struct idx_info *in)
{
	struct idx_hdr h = { 0 };
	uint32_t crc;

	memcpy(&h, buf, n < sizeof(h) ? n : sizeof(h));
	if (n < IDX_V2_HDR_SIZE || memcmp(h.magic, IDX_MAGIC, 8))
		return 0;
	in->version = le32toh(h.version);
	in->hdr_size = le32toh(h.hdr_size);
	if (in->version == 2 && in->hdr_size == IDX_V2_HDR_SIZE) {
		memcpy(&crc, (const char *)buf + IDX_V2_HDR_SIZE - 4, 4);
		if (le32toh(crc) != eng_crc32c(0, buf, IDX_V2_HDR_SIZE - 4))
			return 0;
		in->ordered = 0;
		in->ordered_crc = 0;
	} else if (in->version == IDX_VERSION && in->hdr_size == IDX_HDR_SIZE &&
		   n >= IDX_HDR_SIZE) {
		if (le32toh(h.crc) != eng_crc32c(0, &h, offsetof(struct idx_hdr, crc)))
			return 0;
		in->ordered = le64toh(h.ordered);
		in->ordered_crc = le32toh(h.ordered_crc);
	} else {
		return 0;
	}
	in->file_id = le64toh(h.file_id);
	in->covered_from = le64toh(h.covered_from);
	in->keys = le64toh(h.keys);
	in->max_version = le64toh(h.max_version);
	in->seed_k0 = le64toh(h.seed_k0);
	in->seed_k1 = le64toh(h.seed_k1);
	in->entries_crc = le32toh(h.entries_crc);
	return 1;
}

/* Does the file's size match what the header says it holds? keys is
 * checked against the size first: keys * 32 may wrap. */
static int size_ok(const struct idx_info *in, uint64_t idx_size)
{
	uint64_t room;

	if (idx_size < in->hdr_size)
		return 0;
	room = idx_size - in->hdr_size;
	if (in->keys > room / IDX_ENTRY_SIZE || (in->ordered && in->ordered != in->keys))
		return 0;
	return room == in->keys * IDX_ENTRY_SIZE + in->ordered * IDX_ORDER_ENTRY_SIZE;
}

int eng_idx_remove_for(const char *dir, uint64_t file_id)
{
	struct idx_hdr h;
	struct idx_info in;
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
	if (!rc && file_id && hdr_decode(&h, (size_t)n, &in) && in.file_id == file_id)
		rc = unlink(path) == 0 ? 1 : errno == ENOENT ? 0 : -errno;
out:
	free(path);
	return rc;
}

/* --- loading --------------------------------------------------------------- */

static int header_ok(const void *hbuf, size_t hlen, uint64_t idx_size, uint64_t file_id,
		     uint64_t db_size, struct idx_info *in, char *why, size_t n)
{
	if (!hdr_decode(hbuf, hlen, in)) {
		uint32_t v;
		memcpy(&v, (const char *)hbuf + 8, 4);
		if (hlen >= 12 && !memcmp(hbuf, IDX_MAGIC, 8) && le32toh(v) != 2 &&
		    le32toh(v) != IDX_VERSION)
			snprintf(why, n, "it is of version %" PRIu32 ", this caskd reads "
				 "versions 2 and %d", le32toh(v), IDX_VERSION);
		else
			snprintf(why, n, "its header is damaged");
		return 0;
	}
	if (!file_id || in->file_id != file_id) {
		snprintf(why, n, "it was made for another database.bin (file id %016" PRIx64
			 ", this one is %016" PRIx64 ")", in->file_id, file_id);
		return 0;
	}
	if (in->covered_from < ENG_FILE_HDR_SIZE || in->covered_from > db_size) {
		snprintf(why, n, "it covers %" PRIu64 " bytes, more than database.bin's %" PRIu64,
			 in->covered_from, db_size);
		return 0;
	}
	if (!size_ok(in, idx_size)) {
		snprintf(why, n, "its size does not match its %" PRIu64 " entries", in->keys);
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

/* A load in progress: the header, and what the entries add up to for
 * the check of the ordered section. */
struct load {
	struct idx_info in;
	const char *map;
	uint64_t db_size;
	struct eng_table *t;
	uint64_t fp;        /* the entries' fingerprint (engine/idxorder.h) */
	uint64_t end;       /* the end of the furthest record they name */
	char *why;
	size_t whylen;
};

/* Checks the header and keys t with its seed (t is still empty: its
 * pages are zero). 0 or -EBADMSG with the reason in why. */
static int load_begin(struct load *ld, const void *hbuf, size_t hlen, uint64_t idx_size)
{
	struct eng_hash_seed seed;
	struct eng_table *t = ld->t;

	if (!header_ok(hbuf, hlen, idx_size, eng_file_id(ld->map), ld->db_size, &ld->in,
		       ld->why, ld->whylen))
		return -EBADMSG;
	seed.k0 = ld->in.seed_k0;
	seed.k1 = ld->in.seed_k1;
	if (!(seed.k0 | seed.k1)) {
		snprintf(ld->why, ld->whylen, "its hash seed is zero");
		return -EBADMSG;
	}
	/* the entries' hashes are under the snapshot's seed: so is the table */
	eng_index_init(t, t->gen, t->file_gen, t->nslots, &seed);
	return 0;
}

/* Checks and places n entries, the first of which is entry number first
 * of the snapshot. 0, -EBADMSG or -ENOSPC with the reason in why. */
static int load_entries(struct load *ld, const struct idx_entry *ents, uint64_t n,
			uint64_t first)
{
	for (uint64_t i = 0; i < n; i++) {
		struct eng_entry e;
		int r;

		if (i + PREFETCH_AHEAD < n)
			prefetch_entry(ld->t, ld->map, ld->db_size, &ents[i + PREFETCH_AHEAD]);
		entry_decode(&e, &ents[i]);
		if (!entry_matches(ld->t, ld->map, ld->db_size, &e)) {
			snprintf(ld->why, ld->whylen, "entry %" PRIu64 " does not match the "
				 "record it points at", first + i);
			return -EBADMSG;
		}
		if ((r = eng_index_bulk_add_unique(ld->t, ld->map, &e)) == -EEXIST) {
			snprintf(ld->why, ld->whylen, "entry %" PRIu64 " names a key an earlier "
				 "entry holds", first + i);
			return -EBADMSG;
		}
		if (r < 0) {
			snprintf(ld->why, ld->whylen, "it holds more keys than the table has room for");
			return -ENOSPC;
		}
		/* the key was just read for its hash: summing it costs little */
		if (ld->in.ordered) {
			ld->fp += eng_idxorder_fp(ld->map + e.voff - e.klen, e.klen, e.voff - e.klen);
			if (e.voff + e.vlen > ld->end)
				ld->end = e.voff + e.vlen;
		}
	}
	return 0;
}

/* The verdict on a checked ordered section: kept in view (with the
 * header it was checked under), or the reason in view->why. */
static void view_verdict(const struct load *ld, const struct eng_idxorder_check *c,
			 const void *hbuf, struct eng_idx_view *view)
{
	if (view->why[0])
		return;
	if (c->crc != ld->in.ordered_crc)
		snprintf(view->why, sizeof(view->why), "its ordered keys fail their checksum");
	else if (c->fp != ld->fp)
		snprintf(view->why, sizeof(view->why), "its ordered keys are not its entries' keys");
	else if (ld->end > ld->in.covered_from)
		snprintf(view->why, sizeof(view->why), "its entries name records past "
			 "what its ordered keys cover");
	if (view->why[0])
		return;
	view->off = ld->in.hdr_size + ld->in.keys * IDX_ENTRY_SIZE;
	view->keys = ld->in.keys;
	view->covered_from = ld->in.covered_from;
	memcpy(view->hdr, hbuf, IDX_HDR_SIZE);
	view->file_gen = 1; /* the caller's file; recovery gives the real one */
}

static void view_none(struct eng_idx_view *view)
{
	memset(view, 0, sizeof(*view));
}

int eng_idx_parse(const void *idx, uint64_t idx_size, const char *map,
		  uint64_t db_size, struct eng_table *t, uint64_t *covered_from,
		  uint64_t *max_version, struct eng_idx_view *view, char *why,
		  size_t whylen)
{
	struct load ld = { .map = map, .db_size = db_size, .t = t, .why = why,
			   .whylen = whylen };
	const struct idx_entry *ents;
	struct eng_idxorder_check c;
	int rc;

	why[0] = '\0';
	view_none(view);
	if (idx_size < IDX_V2_HDR_SIZE) {
		snprintf(why, whylen, "it is shorter than its header");
		return -EBADMSG;
	}
	if ((rc = load_begin(&ld, idx, (size_t)(idx_size < IDX_HDR_SIZE ? idx_size : IDX_HDR_SIZE),
			     idx_size)))
		return rc;
	ents = (const struct idx_entry *)((const char *)idx + ld.in.hdr_size);
	if (eng_crc32c(0, ents, ld.in.keys * IDX_ENTRY_SIZE) != ld.in.entries_crc) {
		snprintf(why, whylen, "its entries fail their checksum");
		return -EBADMSG;
	}
	if ((rc = load_entries(&ld, ents, ld.in.keys, 0)))
		return rc;
	if (ld.in.ordered) {
		eng_idxorder_check_init(&c, map, ld.in.covered_from);
		(void)eng_idxorder_check_part(&c, (const char *)ents + ld.in.keys * IDX_ENTRY_SIZE,
					      ld.in.ordered, view->why, sizeof(view->why));
		view_verdict(&ld, &c, idx, view);
	}
	*covered_from = ld.in.covered_from;
	*max_version = ld.in.max_version;
	return 0;
}

/* len bytes at off of fd: 0, -EBADMSG if the file ends first, or -errno. */
static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
	int rc = eng_io_pread_all(fd, buf, len, off);

	return rc == -ENODATA ? -EBADMSG : rc;
}

/* Reads the entries of fd chunk by chunk into one buffer and loads them.
 * Not a mapping of the file: on a VM whose first touch of each page
 * from user space is dear, a copy by the kernel into a buffer reused
 * for every chunk costs a fraction of touching a mapping of it all. The
 * entries' checksum is known only at the end: a failure leaves entries
 * in t, which the caller then throws away (eng_idx_load's contract),
 * and every entry placed was checked against its record first. */
static int load_fd(int fd, struct load *ld, void *buf)
{
	uint64_t keys = ld->in.keys, done = 0;
	uint32_t crc = 0;
	int rc = 0;

	while (!rc && done < keys) {
		uint64_t n = keys - done < IDX_BUF_ENTRIES ? keys - done : IDX_BUF_ENTRIES;
		size_t bytes = (size_t)n * IDX_ENTRY_SIZE;

		if ((rc = read_at(fd, buf, bytes, ld->in.hdr_size + done * IDX_ENTRY_SIZE))) {
			snprintf(ld->why, ld->whylen, "reading it: %s", strerror(-rc));
			break;
		}
		crc = eng_crc32c(crc, buf, bytes);
		rc = load_entries(ld, buf, n, done);
		done += n;
	}
	if (!rc && crc != ld->in.entries_crc) {
		snprintf(ld->why, ld->whylen, "its entries fail their checksum");
		rc = -EBADMSG;
	}
	return rc;
}

/* Checks the ordered section of fd, read in chunks into buf (which holds
 * IDX_BUF_ENTRIES entries of the snapshot), against what the entries
 * added up to. Its failures are the section's alone: view->why. */
static void check_fd_view(int fd, const struct load *ld, void *buf, const void *hbuf,
			  struct eng_idx_view *view)
{
	uint64_t per = IDX_BUF_ENTRIES * IDX_ENTRY_SIZE / IDX_ORDER_ENTRY_SIZE;
	uint64_t off = ld->in.hdr_size + ld->in.keys * IDX_ENTRY_SIZE, done = 0;
	struct eng_idxorder_check c;
	int rc;

	eng_idxorder_check_init(&c, ld->map, ld->in.covered_from);
	while (done < ld->in.ordered) {
		uint64_t n = ld->in.ordered - done < per ? ld->in.ordered - done : per;

		if ((rc = read_at(fd, buf, (size_t)n * IDX_ORDER_ENTRY_SIZE,
				  off + done * IDX_ORDER_ENTRY_SIZE))) {
			snprintf(view->why, sizeof(view->why), "reading its ordered keys: %s",
				 strerror(-rc));
			return;
		}
		if (eng_idxorder_check_part(&c, buf, n, view->why, sizeof(view->why)))
			return;
		done += n;
	}
	view_verdict(ld, &c, hbuf, view);
}

int eng_idx_load(struct eng_db *db, uint64_t db_size, struct eng_table *t,
		 uint64_t *covered_from, uint64_t *max_version,
		 struct eng_idx_view *view, char *why, size_t whylen)
{
	struct load ld = { .map = db->map, .db_size = db_size, .t = t, .why = why,
			   .whylen = whylen };
	unsigned char hbuf[IDX_HDR_SIZE] = { 0 };
	struct idx_entry *buf = NULL;
	char *path;
	struct stat st;
	int fd, rc = -EBADMSG;

	why[0] = '\0';
	view_none(view);
	if (eng_path_join(&path, db->dir, ENG_IDX_FILE))
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	/* the shorter header (version 2) first, then the rest if there is */
	if (fstat(fd, &st) < 0 || st.st_size < IDX_V2_HDR_SIZE ||
	    read_at(fd, hbuf, (size_t)(st.st_size < IDX_HDR_SIZE ? st.st_size : IDX_HDR_SIZE), 0)) {
		snprintf(why, whylen, "it is shorter than its header");
		goto out_close;
	}
	if (!(buf = malloc(IDX_BUF_ENTRIES * sizeof(*buf)))) {
		rc = -ENOMEM;
		goto out_close;
	}
	if ((rc = load_begin(&ld, hbuf, (size_t)(st.st_size < IDX_HDR_SIZE ? st.st_size :
						 IDX_HDR_SIZE), (uint64_t)st.st_size)) ||
	    (rc = load_fd(fd, &ld, buf)))
		goto out_close;
	if (ld.in.ordered)
		check_fd_view(fd, &ld, buf, hbuf, view);
	*covered_from = ld.in.covered_from;
	*max_version = ld.in.max_version;
out_close:
	free(buf);
	close(fd);
	return rc;
}

uint64_t eng_idx_keys(struct eng_db *db)
{
	unsigned char hbuf[IDX_HDR_SIZE];
	struct idx_info in;
	struct stat st;
	uint64_t keys = 0;
	char *path;
	ssize_t n;
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
	while ((n = pread(fd, hbuf, sizeof(hbuf), 0)) < 0 && errno == EINTR)
		;
	if (n > 0 && hdr_decode(hbuf, (size_t)n, &in) && fstat(fd, &st) == 0 &&
	    size_ok(&in, (uint64_t)st.st_size))
		keys = in.keys;
	close(fd);
	return keys;
}
