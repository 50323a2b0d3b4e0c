/* server/check.c — `caskd check`: report (and repair) database.bin damage,
 * for operators (see engine/check.h for what repair does). */
#include "server/check.h"

#include "engine/check.h"
#include "engine/errors.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void note(const struct eng_scan_item *it, void *arg)
{
	static const char *const what[] = {
		[ENG_SCAN_ABANDONED] = "abandoned reservation (skipped at start-up)",
		[ENG_SCAN_CORRUPT] = "CORRUPT region, valid records follow",
		[ENG_SCAN_TORN_TAIL] = "torn tail (cut at start-up)",
	};
	int repair = *(int *)arg;

	printf("  offset %" PRIu64 ", %" PRIu64 " bytes: %s%s\n", it->off, it->len,
	       what[it->kind],
	       repair && it->kind == ENG_SCAN_CORRUPT ? " -> zeroed, dropped" :
	       repair && it->kind == ENG_SCAN_TORN_TAIL ? " -> cut" : "");
}

int srv_check_main(int argc, char **argv)
{
	struct eng_check_report rep;
	const char *dir = NULL;
	int repair = 0, rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--repair"))
			repair = 1;
		else if (argv[i][0] == '-' || dir) {
			fprintf(stderr, "caskd check: unexpected argument '%s'; usage: caskd check [--repair] DIR\n",
				argv[i]);
			return 2;
		} else
			dir = argv[i];
	}
	if (!dir) {
		fprintf(stderr, "caskd check: missing DIR; usage: caskd check [--repair] DIR\n");
		return 2;
	}
	printf("checking %s/database.bin%s\n", dir, repair ? " (repair)" : "");
	rc = eng_check(dir, repair, note, &repair, &rep);
	if (rc == -EBUSY) {
		fprintf(stderr, "caskd check: %s is in use by a running caskd (pid %d); stop it first\n",
			dir, rep.holder_pid);
		return 1;
	}
	if (rc) {
		fprintf(stderr, "caskd check: %s/database.bin: %s\n", dir, eng_strerror(rc));
		return 1;
	}
	if (rep.header_bad)
		printf("  file header: damaged or not a caskd file%s\n",
		       repair ? " -> rewritten" : "");
	printf("%" PRIu64 " bytes, %" PRIu64 " valid records, %" PRIu64
	       " corrupt region(s) (%" PRIu64 " bytes), %" PRIu64 " abandoned bytes, %" PRIu64
	       " torn-tail bytes\n",
	       rep.file_bytes, rep.records, rep.corrupt_regions, rep.corrupt_bytes,
	       rep.abandoned_bytes, rep.torn_tail_bytes);
	if (rep.corrupt_regions || rep.header_bad) {
		if (repair && rep.repaired) {
			printf("repaired: dropped %" PRIu64 " damaged bytes; every intact record kept\n",
			       rep.corrupt_bytes);
			return 0;
		}
		printf("damaged: caskd will refuse to start; run 'caskd check --repair %s'\n", dir);
		return 1;
	}
	printf("ok: caskd will open it\n");
	return 0;
}
