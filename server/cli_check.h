/* server/cli_check.h — the `caskd check [--repair[=skip|truncate]] FILE|DIR` command. */
#ifndef CASKD_SERVER_CLI_CHECK_H
#define CASKD_SERVER_CLI_CHECK_H

/* Its arguments, as --help and `caskd check --help` both show them. */
#define SRV_CHECK_ARGS "[--repair[=skip|truncate]] FILE|DIR"

/* argv[0] is "check". Exit status: 0 the file opens (or was repaired),
 * 1 damage found (check), not a caskd file, or repair failed, 2 usage. */
int srv_check_main(int argc, char **argv);

#endif
