/* server/config.h — caskd's settings: defaults, command line, config file.
 *
 * Owns: one table of options that serves both the command line
 * (--name value or --name=value) and the config file (name = value lines,
 * '#' comments). Flags win over the file. A bad option or value is one
 * line naming it (and the file and line), and exit status 2.
 */
#ifndef CASKD_SERVER_CONFIG_H
#define CASKD_SERVER_CONFIG_H

#include "engine/store.h"

#include <limits.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_LISTEN_MAX 8
/* Half the engine's worker seats: a reload runs the new generation
 * beside the old one. */
#define SRV_WORKERS_MAX (ENG_SEATS / 2)
#define SRV_ADDR_MAX 256

/* --fsync: one name per mode, the option's word (group, periodic,
 * always); worker.c maps them to server/commit.h's modes. */
enum srv_fsync_mode { SRV_FSYNC_GROUP, SRV_FSYNC_PERIODIC, SRV_FSYNC_ALWAYS };

struct srv_config {
	char listen[SRV_LISTEN_MAX][SRV_ADDR_MAX];
	int nlisten;
	int workers;
	char data_dir[PATH_MAX];
	enum srv_fsync_mode fsync;
	int fsync_interval_ms;
	uint64_t max_keys;
	uint64_t max_value_size;
	int log_level;          /* enum srv_log_level */
	char config_file[PATH_MAX];
	int shutdown_timeout_s;
	int worker_timeout_s;
	int max_conns;
	int max_watches;         /* per worker */
	uint64_t watch_max_lag;  /* bytes of log */
	int idle_timeout_s;     /* keep-alive connection idle: closed */
	int read_timeout_s;     /* a started request stalls: 408 */
	uint64_t min_rate;      /* bytes/s a body must keep up, over read_timeout_s,
				 * and a client must take of its responses, over
				 * send_timeout_s */
	int send_timeout_s;
	uint64_t body_memory;   /* request bodies one worker holds at once */
	char access_log[PATH_MAX]; /* "" off, "-" stderr */
	uint64_t max_batch_size;
	char admin_token_file[PATH_MAX]; /* "" none */
	int compact_garbage_pct;
	uint64_t compact_min_size;
	/* --compaction-rate: enum eng_pace_mode (auto, a fixed rate, off)
	 * and, when fixed, bytes per second */
	int compaction_pace;
	uint64_t compaction_rate;
	/* Cluster mode (../docs/cluster.md): on when cluster[0]. */
	char cluster[64];
	char etcd[512];          /* endpoints, comma-separated */
	char node[64];
	char advertise[200];
	int group_size;
	int lease_ttl_s;
	int replication_timeout_ms;
	int max_lag_s;
};

enum srv_config_result {
	SRV_CONFIG_OK,
	SRV_CONFIG_HELP,     /* --help printed */
	SRV_CONFIG_VERSION,  /* --version printed */
	SRV_CONFIG_ERROR,    /* err holds the one-line message */
};

/* Defaults, then the config file named by --config, then the flags. */
enum srv_config_result srv_config_load(int argc, char **argv,
				       struct srv_config *cfg, char *err,
				       size_t errlen);
void srv_config_usage(FILE *out);
/* "group", "periodic" or "always". */
const char *srv_config_fsync_name(enum srv_fsync_mode mode);
/* Defaults, then config-file text[0..len) (named `name` in messages), as
 * --config would read it; for the fuzz harness and tests. 0, or -EINVAL
 * with the one-line message in err. */
int srv_config_parse_text(const char *text, size_t len, const char *name,
			  struct srv_config *cfg, char *err, size_t errlen);

#endif
