/* server/cli_check.c — `caskd check [--repair[=skip|truncate]] PATH`: report
 * (and repair) damage in a database file, for operators (see
 * engine/fsck.h for what a check reads and what a repair does).
 *
 * Exit status: 0 the file opens as it is (or was repaired), 1 damage
 * caskd would refuse, a file that is not caskd's, or a failure, 2 a
 * usage error.
 */
#include "server/cli_check.h"

#include "engine/fsck.h"
#include "engine/errors.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE "usage: caskd check " SRV_CHECK_ARGS

struct run {
	enum eng_repair_mode mode;
	FILE *notes;         /* region lines, printed after the header */
	char *notes_buf;
	size_t notes_len;
};

static void versions(const struct eng_check_item *it, char *buf, size_t n)
{
	if (it->version_after && it->version_before)
		snprintf(buf, n, "versions after %" PRIu64 " and before %" PRIu64,
			 it->version_after, it->version_before);
	else if (it->version_after)
		snprintf(buf, n, "versions after %" PRIu64, it->version_after);
	else if (it->version_before)
		snprintf(buf, n, "versions before %" PRIu64, it->version_before);
	else
		snprintf(buf, n, "any version");
}

static void note(const struct eng_check_item *it, void *arg)
{
	const struct run *r = arg;
	FILE *out = r->notes ? r->notes : stdout;
	char v[96], why[160];

	versions(it, v, sizeof(v));
	switch (it->kind) {
	case ENG_SCAN_ABANDONED:
		fprintf(out, "  offset %" PRIu64 ", %" PRIu64 " bytes: %s\n", it->off, it->len,
		       it->dropped_batch ? "a batch that never committed (none of it applies)" :
		       it->repaired_before ? "dropped by an earlier repair" :
		       "abandoned: space of a write that never completed (skipped at start-up)");
		break;
	case ENG_SCAN_CORRUPT:
		/* bytes past the end: the file was cut short of its mark */
		if (it->missing)
			snprintf(why, sizeof(why), "the file is truncated: the last %" PRIu64
				 " of them are missing, and the durable mark says they were "
				 "synced", it->missing);
		fprintf(out, "  offset %" PRIu64 ", %" PRIu64 " bytes: CORRUPT (%s); it may have held "
		       "%s%s\n", it->off, it->len,
		       it->missing ? why : "the durable mark says it was synced", v,
		       r->mode == ENG_REPAIR_SKIP ? " -> dropped" :
		       r->mode == ENG_REPAIR_TRUNCATE ? " -> the file is cut here" : "");
		break;
	case ENG_SCAN_TORN_TAIL:
		fprintf(out, "  offset %" PRIu64 ", %" PRIu64 " bytes: torn tail (an append a crash "
		       "interrupted, never acknowledged; cut at start-up)%s\n", it->off, it->len,
		       r->mode ? " -> cut" : "");
		break;
	case ENG_SCAN_UNUSED:
		fprintf(out, "  offset %" PRIu64 ", %" PRIu64 " bytes: unused space (zeros prepared "
		       "for appends; not damage)%s\n", it->off, it->len, r->mode ? " -> cut" : "");
		break;
	default:
		break;
	}
}

static int parse_args(int argc, char **argv, struct run *r, const char **path)
{
	*path = NULL;
	r->mode = ENG_REPAIR_NONE;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf(USAGE "\n\n"
			       "Checks a caskd database file (DIR: DIR/database.bin) and says\n"
			       "whether caskd will open it; read-only, it creates nothing.\n"
			       "  --repair, --repair=skip  drop damaged regions (the file keeps its\n"
			       "                           length; what they held is lost)\n"
			       "  --repair=truncate        cut the file at the first damage\n"
			       "A repair takes the instance lock: stop caskd first.\n"
			       "Exit status: 0 opens (or was repaired), 1 damage, not a caskd\n"
			       "file, or a failure, 2 usage.\n");
			return 1;
		}
		if (!strcmp(argv[i], "--repair") || !strcmp(argv[i], "--repair=skip"))
			r->mode = ENG_REPAIR_SKIP;
		else if (!strcmp(argv[i], "--repair=truncate"))
			r->mode = ENG_REPAIR_TRUNCATE;
		else if (argv[i][0] == '-' || *path) {
			fprintf(stderr, "caskd check: unexpected argument '%s'; " USAGE "\n", argv[i]);
			return -EINVAL;
		} else
			*path = argv[i];
	}
	if (!*path) {
		fprintf(stderr, "caskd check: missing FILE or DIR; " USAGE "\n");
		return -EINVAL;
	}
	return 0;
}

/* One line: who holds what a repair needs to itself. */
static void busy(const char *path, const struct eng_check_report *rep)
{
	char list[ENG_HOLDERS_MAX * 12] = "";

	for (int i = 0, k = 0; i < rep->nholders; i++)
		k += snprintf(list + k, sizeof(list) - (size_t)k, "%s%d", i ? ", " : "",
			      rep->holders[i]);
	if (rep->holder_dead)
		fprintf(stderr, "caskd check: %s: the caskd that had it (pid %d) is gone, but "
			"process(es) %s still hold its lock; stop them before a repair\n", path,
			rep->holder_pid, rep->nholders ? list : "(unknown)");
	else if (rep->holder_pid > 0)
		fprintf(stderr, "caskd check: %s is in use by a running caskd (pid %d); stop it "
			"before a repair\n", path, rep->holder_pid);
	else
		fprintf(stderr, "caskd check: %s is locked by another process%s%s; stop it "
			"before a repair\n", path, rep->nholders ? ": pid " : "", list);
}

static void summary(const struct eng_check_report *rep)
{
	printf("%" PRIu64 " bytes, format %d, %" PRIu64 " valid records (%" PRIu64
	       " batches), versions up to %" PRIu64 "\n", rep->file_bytes, rep->format,
	       rep->records, rep->batches, rep->max_version);
	printf("%" PRIu64 " corrupt region(s) (%" PRIu64 " bytes), %" PRIu64 " torn-tail bytes, "
	       "%" PRIu64 " bytes of unfinished writes, %" PRIu64 " bytes of uncommitted "
	       "batches, %" PRIu64 " bytes dropped by earlier repairs, %" PRIu64
	       " bytes of unused space\n", rep->corrupt_regions, rep->corrupt_bytes,
	       rep->torn_tail_bytes, rep->abandoned_bytes, rep->dropped_bytes,
	       rep->repaired_bytes, rep->unused_bytes);
	if (rep->missing_bytes)
		printf("truncated: the file ends %" PRIu64 " bytes short of its durable mark at "
		       "%" PRIu64 "\n", rep->missing_bytes, rep->durable_mark);
}

static int report(const struct run *r, const struct eng_check_report *rep,
		  const char *path, int rc);

int srv_check_main(int argc, char **argv)
{
	struct eng_check_report rep;
	struct run r = { .notes = NULL };
	const char *path;
	int rc;

	if ((rc = parse_args(argc, argv, &r, &path)) != 0)
		return rc < 0 ? 2 : 0;
	/* region lines come during the scan, the header after it */
	r.notes = open_memstream(&r.notes_buf, &r.notes_len);
	rc = eng_check(path, r.mode, note, &r, &rep);
	if (r.notes)
		fclose(r.notes);
	r.notes = NULL;
	rc = report(&r, &rep, path, rc);
	free(r.notes_buf);
	return rc;
}

/* What the check found, header first, then its region lines, then the
 * summary and the verdict: the exit status. */
static int report(const struct run *r, const struct eng_check_report *rep,
		  const char *path, int rc)
{
	if (rc == -EBUSY) {
		busy(path, rep);
		return 1;
	}
	if (rc && rep->idx_stale) {
		fprintf(stderr, "caskd check: repaired %s, but could not remove the database.idx "
			"beside it, which may name records the repair dropped (%s): remove it "
			"before starting caskd\n", rep->path, eng_strerror(rc));
		return 1;
	}
	if (rc) {
		fprintf(stderr, "caskd check: %s: %s\n", rep->failed[0] ? rep->failed :
			rep->path[0] ? rep->path : path, eng_strerror(rc));
		return 1;
	}
	if (rep->not_caskd) {
		fprintf(stderr, "caskd check: %s is not a caskd database (it does not start with "
			"caskd's magic); %s\n", rep->path, r->mode ? "not repairing it, it is left "
			"as it was" : "nothing to check");
		return 1;
	}
	printf("checked %s%s\n", rep->path, r->mode == ENG_REPAIR_SKIP ? " (repair: skip damage)" :
	       r->mode == ENG_REPAIR_TRUNCATE ? " (repair: truncate at damage)" : " (read-only)");
	if (r->notes_buf)
		fwrite(r->notes_buf, 1, r->notes_len, stdout);
	if (rep->in_use)
		printf("  note: a caskd (pid %d) serves it now: writes in flight may show as a "
		       "torn tail\n", rep->holder_pid);
	if (rep->header_bad)
		printf("  file header: damaged%s\n",
		       r->mode ? " -> rewritten (versions resume after the highest found)" : "");
	summary(rep);
	if (rep->truncated_records)
		printf("truncate: %" PRIu64 " intact records after the damage were dropped too\n",
		       rep->truncated_records);
	if (rep->corrupt_regions || rep->header_bad) {
		if (r->mode && rep->repaired) {
			printf("repaired. It cannot vouch for what the damage held: keys written "
			       "there may show an older value, or come back if a delete was lost "
			       "(see the versions above).%s\n", rep->idx_removed ?
			       " database.idx, made for this file, was removed." : "");
			return 0;
		}
		printf("damaged: caskd will refuse to start; 'caskd check --repair %s' drops "
		       "the damage (or --repair=truncate cuts the file there)\n", path);
		return 1;
	}
	printf("ok: caskd will open it\n");
	return 0;
}
