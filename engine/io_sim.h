/* engine/io_sim.h — a power-cut simulator for whole-daemon drills.
 *
 * Owns: the undo journal format, the I/O backend that writes it, and the
 * simulated power cut that replays it backwards.
 *
 * kill -9 keeps the page cache, so it cannot show what a power cut
 * loses. With CASKD_SIMDISK=JOURNAL in its environment the daemon
 * (master, workers, jobs: they share the journal's file description,
 * opened O_APPEND before fork) installs this backend: each pwrite and
 * hole punch appends to JOURNAL the bytes it replaced (one atomic append,
 * after the write returned), and each fdatasync appends, once it
 * returned, the journal length at the moment it began. A write whose
 * entry lies below that length had returned before the sync began, so
 * the sync covered it, as the kernel's would; a write with no covering
 * sync is one a power cut may lose.
 *
 * eng_io_sim_cut(), run on the files after every process of the daemon
 * is dead, makes the cut: it walks the writes no sync covered, newest
 * first, and page by page at random keeps the new bytes or puts the old
 * ones back (a torn write), then may drop what they appended. What stays
 * is a state the disk could have been left in. Leniencies (a cut never
 * loses more than this): ftruncate and fallocate of space count as
 * durable at once, and so do directory operations (creating, renaming
 * and removing files: this backend leaves them to the real calls); a
 * write whose process was killed between the pwrite and the end of its
 * journal entry is kept. An fsync is not journaled as a sync: a write
 * that only an fsync covered counts as unsynced, which is stricter.
 *
 * Tests only, as the failpoints are: unset, it costs one getenv at start.
 */
#ifndef CASKD_ENGINE_IO_SIM_H
#define CASKD_ENGINE_IO_SIM_H

#include <stdint.h>

/* Installs the backend if CASKD_SIMDISK is set. 0 (also when unset) or
 * -errno if the journal cannot be opened. Call before any engine I/O. */
int eng_io_sim_init(void);

struct eng_io_sim_cut_stats {
	uint64_t writes;      /* entries for the file in the journal */
	uint64_t syncs;       /* fdatasyncs of the file that returned */
	uint64_t unsynced;    /* ... that no sync covered */
	uint64_t torn;        /* ... of which some pages were put back */
	uint64_t dropped;     /* ... of which every page was put back */
	uint64_t truncated;   /* bytes of the file cut off */
	uint64_t remnants;    /* journal bytes of appends a SIGKILL cut short */
};

/* Cuts power for file path as journal recorded it, with random choices
 * drawn from seed. 0 or -errno. */
int eng_io_sim_cut(const char *journal, const char *path, uint64_t seed,
		   struct eng_io_sim_cut_stats *st);

#endif
