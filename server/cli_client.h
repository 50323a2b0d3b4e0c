/* server/cli_client.h — `caskd get|put|del|keys|watch|compact`: a
 * command-line client of a running caskd, over its HTTP API.
 */
#ifndef CASKD_SERVER_CLI_CLIENT_H
#define CASKD_SERVER_CLI_CLIENT_H

#include <stdio.h>

/* Exit statuses, for scripts. */
#define SRV_CLI_EXIT_OK 0        /* done; get: the key was found */
#define SRV_CLI_EXIT_NOT_FOUND 1 /* get, del: no such key */
#define SRV_CLI_EXIT_USAGE 2     /* bad arguments: nothing was sent */
#define SRV_CLI_EXIT_FAILED 3    /* another answer, or none */

/* 1 if name is one of the client's subcommands. */
int srv_cli_is_command(const char *name);
/* argv[0] is the subcommand. Returns the exit status. */
int srv_cli_main(int argc, char **argv);
/* The subcommands' usage lines and exit statuses, for --help. */
void srv_cli_usage(FILE *out);

#endif
