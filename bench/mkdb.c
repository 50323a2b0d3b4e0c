/* bench/mkdb.c — writes a caskd database.bin directly, for the benchmark.
 *
 * The harness uses it twice: to preload the keys the GET workloads read
 * (much faster than PUTting them over HTTP, and the preload is not what is
 * measured), and to make the large file whose recovery time is measured.
 * Records are encoded with the engine's own eng_rec_encode() and
 * eng_file_hdr_encode() (link against build/libcaskd.a), so the file is
 * exactly what caskd itself writes: a file header, then PUT records at
 * 8-byte aligned offsets, versions 1, 2, 3, ...
 *
 * Usage: mkdb [-b TOTAL_BYTES] FILE SPEC...
 *   SPEC is PREFIX,COUNT,VALUE_SIZE: keys PREFIX%012u for 0..COUNT-1, each
 *   with a VALUE_SIZE-byte value. The specs are written in order; with -b
 *   they are written again and again (newer versions of the same keys)
 *   until the file holds at least TOTAL_BYTES.
 * The file (format 2, a new random file id) is created or truncated,
 * fdatasync'ed, and its durable mark is then moved to the end with a
 * version lease of the last version written, as caskd does after a group
 * commit.
 */
#include "engine/record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE (8u << 20) /* records are staged here, then written */
#define MAX_SPECS 16

struct spec {
	const char *prefix;
	uint32_t count;
	uint32_t vsize;
};

struct out {
	int fd;
	char *buf;
	size_t used;
	uint64_t off;     /* file offset of buf[0] + used */
	uint64_t version; /* last version written */
	uint64_t records;
};

static int flush_buf(struct out *o)
{
	size_t done = 0;

	while (done < o->used) {
		ssize_t n = write(o->fd, o->buf + done, o->used - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("mkdb: write");
			return -1;
		}
		done += (size_t)n;
	}
	o->used = 0;
	return 0;
}

/* Appends one PUT record for key number i of spec s. */
static int put_record(struct out *o, const struct spec *s, uint32_t i,
		      char *val)
{
	char key[ENG_KEY_MAX + 1];
	int klen = snprintf(key, sizeof(key), "%s%012" PRIu32, s->prefix, i);
	uint64_t size = eng_rec_size((uint32_t)klen, s->vsize);

	if (o->used + size > BUF_SIZE && flush_buf(o))
		return -1;
	/* Vary the value a little per key and version, so values differ. */
	if (s->vsize >= 8)
		memcpy(val, &o->version, 8);
	eng_rec_encode(o->buf + o->used, ENG_REC_PUT, ++o->version, key,
		       (uint16_t)klen, val, s->vsize);
	o->used += size;
	o->off += size;
	o->records++;
	return 0;
}

static int parse_spec(const char *arg, struct spec *s)
{
	char *copy = strdup(arg), *c1, *c2;

	if (!copy)
		return -1;
	c2 = strrchr(copy, ',');
	if (!c2)
		goto bad;
	*c2 = 0;
	c1 = strrchr(copy, ',');
	if (!c1)
		goto bad;
	*c1 = 0;
	s->prefix = copy; /* kept for the life of the program */
	s->count = (uint32_t)strtoul(c1 + 1, NULL, 10);
	s->vsize = (uint32_t)strtoul(c2 + 1, NULL, 10);
	if (s->count == 0 || strlen(copy) + 12 > ENG_KEY_MAX)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "mkdb: bad spec '%s' (want PREFIX,COUNT,VALUE_SIZE)\n", arg);
	free(copy);
	return -1;
}

/* Moves the durable mark (slot B: larger than the header's initial mark
 * A) to the end of the now-synced file, with a version lease covering
 * every version written, as compaction does when it swaps a file in. */
static int write_mark(int fd, uint64_t end, uint64_t lease)
{
	unsigned char mark[ENG_MARK_SIZE];
	struct eng_mark m = { end, lease };

	eng_mark_encode(mark, &m);
	if (pwrite(fd, mark, sizeof(mark), ENG_MARK_OFF_B) != (ssize_t)sizeof(mark) ||
	    fdatasync(fd)) {
		perror("mkdb: durable mark");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct spec specs[MAX_SPECS];
	struct out o = { .fd = -1 };
	struct eng_mark first = { ENG_FILE_HDR_SIZE, 0 };
	uint64_t total = 0;
	uint32_t maxv = 0;
	int nspecs = 0, opt;
	char *val;

	while ((opt = getopt(argc, argv, "b:")) != -1) {
		if (opt != 'b')
			goto usage;
		total = strtoull(optarg, NULL, 10);
	}
	if (argc - optind < 2 || argc - optind - 1 > MAX_SPECS)
		goto usage;
	for (int a = optind + 1; a < argc; a++) {
		if (parse_spec(argv[a], &specs[nspecs]))
			return 2;
		if (specs[nspecs].vsize > maxv)
			maxv = specs[nspecs].vsize;
		nspecs++;
	}
	o.buf = malloc(BUF_SIZE);
	val = malloc(maxv + 8);
	if (!o.buf || !val)
		return 1;
	for (uint32_t i = 0; i < maxv + 8; i++)
		val[i] = (char)('a' + i % 26);
	o.fd = open(argv[optind], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (o.fd < 0) {
		perror(argv[optind]);
		return 1;
	}
	eng_file_hdr_encode(o.buf, eng_file_id_new(), &first);
	o.used = o.off = ENG_FILE_HDR_SIZE;
	do {
		for (int s = 0; s < nspecs; s++)
			for (uint32_t i = 0; i < specs[s].count; i++) {
				if (put_record(&o, &specs[s], i, val))
					return 1;
				if (total && o.off >= total)
					goto written;
			}
	} while (o.off < total);
written:
	if (flush_buf(&o) || fdatasync(o.fd) || write_mark(o.fd, o.off, o.version))
		return 1;
	close(o.fd);
	printf("mkdb: %s: %" PRIu64 " records, %" PRIu64 " bytes\n", argv[optind],
	       o.records, o.off);
	return 0;
usage:
	fprintf(stderr, "usage: mkdb [-b TOTAL_BYTES] FILE PREFIX,COUNT,VALUE_SIZE...\n");
	return 2;
}
