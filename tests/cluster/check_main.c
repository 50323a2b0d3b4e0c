/* tests/cluster/check_main.c — the checker as a command, for a history
 * kept from a drill:
 *
 *   cluster_check HISTORY [DUMP...]
 *
 * Each DUMP is named by its file name in the report. Prints the report;
 * exits 0 when no promise was broken and no key is unknown, 1 on a
 * failure, 3 when only unknowns remain, 2 on bad input.
 */
#include "tests/cluster/checker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct ckc_history *h;
	struct ckc_dump **d;
	struct ckc_result res;
	char err[512];
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: cluster_check HISTORY [DUMP...]\n");
		return 2;
	}
	if (ckc_history_load(argv[1], &h, err, sizeof(err)) < 0) {
		fprintf(stderr, "cluster_check: %s\n", err);
		return 2;
	}
	d = calloc((size_t)argc, sizeof(*d));
	for (int i = 2; i < argc; i++) {
		const char *name = strrchr(argv[i], '/');

		if (ckc_dump_load(argv[i], name ? name + 1 : argv[i], &d[i - 2],
				  err, sizeof(err)) < 0) {
			fprintf(stderr, "cluster_check: %s\n", err);
			return 2;
		}
	}
	ckc_check(h, d, argc - 2, NULL, &res);
	fputs(res.report ? res.report : "", stdout);
	rc = res.failures ? 1 : res.unknown ? 3 : 0;
	ckc_result_free(&res);
	for (int i = 0; i < argc - 2; i++)
		ckc_dump_free(d[i]);
	free(d);
	ckc_history_free(h);
	return rc;
}
