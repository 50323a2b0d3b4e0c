/* engine/io_sim.h — a power-loss simulator for whole-daemon drills.
 *
 * Owns: the undo journal format, the I/O backend that writes it, and the
 * simulated power loss that replays it backwards.
 *
 * kill -9 keeps the page cache, so it cannot show what a power loss
 * loses. With CASKD_SIMDISK=JOURNAL in its environment the daemon
 * (master, workers, jobs: they share the journal's file description,
 * opened O_APPEND before fork) installs this backend, which appends one
 * entry (one atomic append, after the call returned) for:
 *   - each pwrite and hole punch: the bytes it replaced;
 *   - each fdatasync, and fsync of a file: once it returned, the journal
 *     length at the moment it began. A write whose entry lies below that
 *     length had returned before the sync began, so the sync covered it,
 *     as the kernel's would;
 *   - each creating open, rename and unlink through engine/io, with the
 *     names (the directory made canonical) and inodes involved; a file a
 *     rename replaces or an unlink removes first gets a hard link in
 *     JOURNAL.files/, so a power loss can bring it back;
 *   - each fsync of a directory: as for a file, the journal length when
 *     it began. It covers the operations in that directory before it.
 *
 * eng_io_sim_power_loss(), run on the files after every process of the daemon
 * is dead, makes the power loss. First the directories: of the operations no
 * directory sync covered, a random number of the newest are undone,
 * newest first (a file system that journals its metadata in order keeps
 * a prefix of them): a create is removed, a rename goes back and what it
 * replaced returns, an unlinked file returns. Then the data, in each
 * file that has a name afterwards: it walks the writes no sync covered,
 * newest first, and page by page at random keeps the new bytes or puts
 * the old ones back (a torn write), then may drop what they appended.
 * What stays is a state the disk could have been left in.
 *
 * Leniencies (a power loss never loses more than this): ftruncate, fallocate of
 * space, the truncation of an open with O_TRUNC, and mkdir count as
 * durable at once; a call whose process was killed between the call and
 * the end of its journal entry is kept, and when it was a directory
 * operation, so is every other (the power loss cannot tell what to undo).
 * Stricter than ext4: a sync of a file does not make the directory
 * entries of earlier operations durable, only a sync of their directory
 * does (POSIX promises no more). JOURNAL must be on the file system of
 * the data (hard links).
 *
 * Tests only, as the failpoints are: unset, it costs one getenv at start.
 */
#ifndef CASKD_ENGINE_IO_SIM_H
#define CASKD_ENGINE_IO_SIM_H

#include <stdint.h>

/* Installs the backend if CASKD_SIMDISK is set. 0 (also when unset) or
 * -errno if the journal cannot be opened. Call before any engine I/O. */
int eng_io_sim_init(void);

struct eng_io_sim_loss_stats {
	uint64_t writes;      /* write entries in the journal */
	uint64_t syncs;       /* fdatasyncs and fsyncs of files that returned */
	uint64_t unsynced;    /* writes that no sync covered, in files it hit */
	uint64_t torn;        /* ... of which some pages were put back */
	uint64_t dropped;     /* ... of which every page was put back */
	uint64_t truncated;   /* bytes truncated off the ends of files */
	uint64_t files;       /* files whose unsynced writes were lost */
	uint64_t remnants;    /* journal bytes of appends a SIGKILL stopped short */
	uint64_t dirops;      /* creates, renames and unlinks */
	uint64_t dirsyncs;    /* fsyncs of directories that returned */
	uint64_t undone;      /* directory operations the power loss undid */
	/* 1 if a process died between a directory operation and its entry:
	 * the names are not as the journal says, and the power loss kept every
	 * directory operation (a leniency). */
	uint64_t unjournaled;
	uint64_t swaps;       /* renames onto the path asked about */
	uint64_t swaps_undone;
	/* Where, in the journal, the newest sync of whichever file path
	 * named at the time began, before any operation on path that the
	 * power loss undid: a write to path that returned below this length was
	 * durable at the power loss (a compaction's rename carries it over). */
	uint64_t covered_below;
};

/* Loses power for every file the journal names, with random choices
 * drawn from seed, and removes JOURNAL.files/. path is the file whose
 * covered_below to report. 0 or -errno; -ESTALE if a file is not where
 * the journal's operations left it. */
int eng_io_sim_power_loss(const char *journal, const char *path, uint64_t seed,
		   struct eng_io_sim_loss_stats *st);

#endif
