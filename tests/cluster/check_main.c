/* tests/cluster/check_main.c — the checker as a command, for a history
 * kept from a drill:
 *
 *   cluster_check HISTORY [DUMP...] [--faults FILE]
 *
 * Each DUMP is named by its file name in the report. --faults: a drill's
 * fault log ("<ns> <name> <detail>" per line): also print each fault's
 * client-seen write outage (ckc_outages). Prints the report;
 * exits 0 when no promise was broken and no key is unknown, 1 on a
 * failure, 3 when only unknowns remain, 2 on bad input.
 */
#include "tests/cluster/checker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAULTS 1024

static void print_outages(const struct ckc_history *h, const char *path)
{
	static int64_t t[MAX_FAULTS], o[MAX_FAULTS];
	static char what[MAX_FAULTS][128];
	int cens[MAX_FAULTS], n = 0;
	char line[256];
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "cluster_check: cannot read %s\n", path);
		return;
	}
	while (n < MAX_FAULTS && fgets(line, sizeof(line), f)) {
		char *rest;

		t[n] = strtoll(line, &rest, 10);
		if (rest == line)
			continue;
		snprintf(what[n], sizeof(what[n]), "%s", rest + (*rest == ' '));
		what[n][strcspn(what[n], "\n")] = '\0';
		n++;
	}
	fclose(f);
	/* The last window ends a minute after the last fault at most. */
	ckc_outages(h, t, n, n ? t[n - 1] + 60000000000LL : 0, o, cens);
	for (int i = 0; i < n; i++)
		printf("fault %2d %-60s write outage %6lld ms%s\n", i + 1, what[i],
		       (long long)(o[i] / 1000000), cens[i] ? " (to the window's end)" : "");
}

int main(int argc, char **argv)
{
	struct ckc_history *h;
	struct ckc_dump **d;
	struct ckc_result res;
	char err[512];
	const char *faults = NULL;
	int rc, nd = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: cluster_check HISTORY [DUMP...] [--faults FILE]\n");
		return 2;
	}
	if (ckc_history_load(argv[1], &h, err, sizeof(err)) < 0) {
		fprintf(stderr, "cluster_check: %s\n", err);
		return 2;
	}
	d = calloc((size_t)argc, sizeof(*d));
	for (int i = 2; i < argc; i++) {
		const char *name = strrchr(argv[i], '/');

		if (!strcmp(argv[i], "--faults") && i + 1 < argc) {
			faults = argv[++i];
			continue;
		}
		if (ckc_dump_load(argv[i], name ? name + 1 : argv[i], &d[nd],
				  err, sizeof(err)) < 0) {
			fprintf(stderr, "cluster_check: %s\n", err);
			return 2;
		}
		nd++;
	}
	if (faults)
		print_outages(h, faults);
	ckc_check(h, d, nd, NULL, &res);
	fputs(res.report ? res.report : "", stdout);
	rc = res.failures ? 1 : res.unknown ? 3 : 0;
	ckc_result_free(&res);
	for (int i = 0; i < nd; i++)
		ckc_dump_free(d[i]);
	free(d);
	ckc_history_free(h);
	return rc;
}
