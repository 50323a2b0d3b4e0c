/* server/main.c — the caskd command: the daemon, `caskd check`, or a
 * client subcommand (`caskd get|put|del|keys|watch|compact`, which say
 * their own exit statuses: server/cli_client.h).
 *
 * Exit status of the daemon: 0 ok, 1 a runtime failure (named in the
 * log), 2 a bad option or config (one line naming it).
 */
#include "engine/io.h"
#include "engine/io_sim.h"
#include "engine/failpoint.h"
#include "server/cli_check.h"
#include "server/cli_client.h"
#include "server/config.h"
#include "server/log.h"
#include "server/master.h"

#include <stdio.h>
#include <string.h>

#define EXIT_USAGE 2

int main(int argc, char **argv)
{
	struct srv_config cfg;
	char err[512];
	int rc;

	if (argc > 1 && !strcmp(argv[1], "check"))
		return srv_check_main(argc - 1, argv + 1);
	if (argc > 1 && srv_cli_is_command(argv[1]))
		return srv_cli_main(argc - 1, argv + 1);
	switch (srv_config_load(argc, argv, &cfg, err, sizeof(err))) {
	case SRV_CONFIG_OK:
		break;
	case SRV_CONFIG_HELP:
	case SRV_CONFIG_VERSION:
		return 0;
	case SRV_CONFIG_ERROR:
		fprintf(stderr, "caskd: %s\n", err);
		return EXIT_USAGE;
	}
	srv_log_init((enum srv_log_level)cfg.log_level);
	if (eng_fp_init() < 0) {
		fprintf(stderr, "caskd: CASKD_FAILPOINTS: malformed (name=action[@N],...)\n");
		return EXIT_USAGE;
	}
	eng_fp_set_armed(0); /* workers arm them after fork */
	if (eng_io_crash_init() < 0) {
		fprintf(stderr, "caskd: CASKD_CRASH_SYSCALL: malformed (ROLE:K[:group] or "
			"ROLE:trace)\n");
		return EXIT_USAGE;
	}
	eng_io_set_role("master");
	if ((rc = eng_io_sim_init()) < 0) {
		fprintf(stderr, "caskd: CASKD_SIMDISK: cannot open the journal: %s\n",
			strerror(-rc));
		return EXIT_USAGE;
	}
	return srv_master_run(&cfg, argc, argv);
}
