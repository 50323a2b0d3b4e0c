/* engine/check.c — offline verify and repair (see check.h). */
#include "engine/check.h"

#include "engine/io.h"
#include "engine/record.h"
#include "engine/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZERO_CHUNK 65536

static int zero_range(int fd, uint64_t off, uint64_t len)
{
	static const char zeros[ZERO_CHUNK];
	int rc;

	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		if ((rc = eng_io_pwrite_all(fd, zeros, n, off)))
			return rc;
		off += n;
		len -= n;
	}
	return 0;
}

static int scan(int fd, const char *map, int repair, eng_check_note_fn note,
		void *arg, struct eng_check_report *rep)
{
	struct eng_scan s;
	struct eng_scan_item it;
	int rc;

	eng_scan_init(&s, map, rep->file_bytes);
	eng_scan_set_fd(&s, fd);
	while (eng_scan_next(&s, &it) != ENG_SCAN_END) {
		if (it.kind != ENG_SCAN_RECORD && note)
			note(&it, arg);
		switch (it.kind) {
		case ENG_SCAN_RECORD:
			rep->records++;
			break;
		case ENG_SCAN_ABANDONED:
			rep->abandoned_bytes += it.len;
			break;
		case ENG_SCAN_CORRUPT:
			rep->corrupt_regions++;
			rep->corrupt_bytes += it.len;
			if (repair && (rc = zero_range(fd, it.off, it.len)))
				return rc;
			break;
		case ENG_SCAN_TORN_TAIL:
			rep->torn_tail_bytes = it.len;
			if (repair && (rc = eng_io_truncate(fd, it.off)))
				return rc;
			break;
		case ENG_SCAN_END:
			break;
		}
	}
	return 0;
}

int eng_check(const char *dir, int repair, eng_check_note_fn note, void *arg,
	      struct eng_check_report *rep)
{
	char path[4096], hdr[ENG_FILE_HDR_SIZE];
	int lock_fd = -1, fd, rc;
	struct stat st;
	void *map = MAP_FAILED;

	memset(rep, 0, sizeof(*rep));
	if ((rc = eng_lock_dir(dir, &lock_fd, &rep->holder_pid)))
		return rc;
	snprintf(path, sizeof(path), "%s/database.bin", dir);
	fd = open(path, (repair ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out_unlock;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	rep->file_bytes = (uint64_t)st.st_size;
	if (st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED) {
			rc = -errno;
			goto out_close;
		}
	}
	rc = map == MAP_FAILED ? -EBADMSG : eng_file_hdr_check(map, rep->file_bytes);
	if (rc == -EPROTO)
		goto out_unmap;
	if (rc) {
		rep->header_bad = 1;
		if (!repair || rep->file_bytes < ENG_FILE_HDR_SIZE)
			goto out_done;
		eng_file_hdr_encode(hdr, (uint64_t)time(NULL));
		if ((rc = eng_io_pwrite_all(fd, hdr, sizeof(hdr), 0)))
			goto out_unmap;
	}
	if ((rc = scan(fd, map, repair, note, arg, rep)))
		goto out_unmap;
out_done:
	rc = 0;
	if (repair && (rep->header_bad || rep->corrupt_regions || rep->torn_tail_bytes)) {
		if (rep->file_bytes < ENG_FILE_HDR_SIZE)
			rc = eng_io_truncate(fd, 0); /* start-up writes a new header */
		if (!rc)
			rc = eng_io_datasync(fd);
		rep->repaired = rc == 0;
	}
out_unmap:
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
out_close:
	close(fd);
out_unlock:
	close(lock_fd);
	return rc;
}
