/* server/config.c — options table, command line and config file (see
 * config.h). */
#include "server/config.h"

#include "engine/pace.h"

#include "server/cli_check.h"

#include "server/cli_client.h"

#include "server/log.h"
#include "server/version.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONF_LINE_MAX 4096
#define MAX_PORT 65535

enum opt_type { OPT_INT, OPT_U64, OPT_SIZE, OPT_STR, OPT_LISTEN, OPT_FSYNC,
		OPT_LEVEL, OPT_PACE };

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;
	uint64_t min, max;
	const char *help;
};

static const char *const fsync_names[] = {
	[SRV_FSYNC_GROUP] = "group",
	[SRV_FSYNC_PERIODIC] = "periodic",
	[SRV_FSYNC_ALWAYS] = "always",
};
#define NFSYNC (int)(sizeof(fsync_names) / sizeof(fsync_names[0]))

const char *srv_config_fsync_name(enum srv_fsync_mode mode)
{
	return (int)mode >= 0 && (int)mode < NFSYNC ? fsync_names[mode] : "?";
}

#define F(field) offsetof(struct srv_config, field)
static const struct opt opts[] = {
	{ "listen", OPT_LISTEN, F(listen), 0, 0,
	  "HOST:PORT to serve (repeatable; default 127.0.0.1:7070)" },
	{ "workers", OPT_INT, F(workers), 1, SRV_WORKERS_MAX,
	  "worker processes (default: online CPUs)" },
	{ "data-dir", OPT_STR, F(data_dir), 0, sizeof(((struct srv_config *)0)->data_dir),
	  "directory of database.bin (default ./data)" },
	{ "fsync", OPT_FSYNC, F(fsync), 0, 0,
	  "group (default): acknowledge after a shared fdatasync; periodic: from the\n"
	  "                         page cache, synced every interval; always: one fdatasync per write" },
	{ "fsync-interval-ms", OPT_INT, F(fsync_interval_ms), 1, 60000,
	  "periodic mode: fdatasync interval (default 1000)" },
	{ "max-keys", OPT_U64, F(max_keys), 0, 1ull << 31,
	  "most keys the store takes, 507 past it (default 0: no bound; the index\n"
	  "                         grows with the keys, under 48 bytes of shared memory each)" },
	{ "max-value-size", OPT_SIZE, F(max_value_size), 0, 1ull << 30,
	  "largest value in bytes, k/m/g suffixes allowed (default 16m)" },
	{ "log-level", OPT_LEVEL, F(log_level), 0, 0,
	  "debug|info|warn|error (default info)" },
	{ "config", OPT_STR, F(config_file), 0, sizeof(((struct srv_config *)0)->config_file),
	  "file of 'name = value' lines with these names; flags win" },
	{ "shutdown-timeout", OPT_INT, F(shutdown_timeout_s), 1, 3600,
	  "seconds a stopping worker (stop, or replaced by a reload) may drain before it\n"
	  "                         closes what is left, and is killed 2 s later (default 30)" },
	{ "worker-timeout", OPT_INT, F(worker_timeout_s), 1, 3600,
	  "seconds without a worker heartbeat before it is replaced (default 10)" },
	{ "max-conns", OPT_INT, F(max_conns), 1, 1000000,
	  "open connections per worker before 503 (default 4096)" },
	{ "idle-timeout", OPT_INT, F(idle_timeout_s), 1, 86400,
	  "seconds a keep-alive connection may stay idle before it is closed (default 60)" },
	{ "read-timeout", OPT_INT, F(read_timeout_s), 1, 3600,
	  "seconds a request's head may take, and each window a body must bring\n"
	  "                         min-rate x this many bytes in, before 408 (default 30)" },
	{ "send-timeout", OPT_INT, F(send_timeout_s), 1, 86400,
	  "seconds of each window in which a client must take min-rate x this many\n"
	  "                         bytes of its responses (or all), else it is\n"
	  "                         disconnected (default 60)" },
	{ "min-rate", OPT_SIZE, F(min_rate), 0, 1ull << 30,
	  "bytes per second a request body must keep up, and a client must take of\n"
	  "                         its responses (k/m suffixes; default 1k; 0: any byte)" },
	{ "body-memory", OPT_SIZE, F(body_memory), 1ull << 20, 1ull << 40,
	  "request bodies one worker holds at once, reserved whole as each head arrives;\n"
	  "                         a body past it gets 503 (default 256m, or max-value-size\n"
	  "                         or max-batch-size if larger; at least both)" },
	{ "access-log", OPT_STR, F(access_log), 0, sizeof(((struct srv_config *)0)->access_log),
	  "file for one line per request ('-': stderr; default off)" },
	{ "max-batch-size", OPT_SIZE, F(max_batch_size), 1, 1ull << 30,
	  "largest POST /batch body in bytes, k/m/g suffixes allowed (default 16m)" },
	{ "admin-token-file", OPT_STR, F(admin_token_file), 0,
	  sizeof(((struct srv_config *)0)->admin_token_file),
	  "file holding the Bearer token /admin/ requires (default none: loopback\n"
	  "                         only): 1..4096 bytes, no NUL or other control byte, trailing\n"
	  "                         newline ignored, mode 0600; a bad one stops the start (exit 2)" },
	{ "compact-garbage-pct", OPT_INT, F(compact_garbage_pct), 0, 100,
	  "compact by itself once garbage passes this % of database.bin (default 50; 0: never)" },
	{ "compact-min-size", OPT_SIZE, F(compact_min_size), 0, 1ull << 40,
	  "... and database.bin is at least this big (default 64m)" },
	{ "compaction-rate", OPT_PACE, F(compaction_rate), 1ull << 16, 1ull << 40,
	  "auto (default): a compaction slows down while it makes request p99\n"
	  "                         grow; off: it runs unpaced; or bytes per second (k, m, g)" },
	{ "max-watches", OPT_INT, F(max_watches), 0, 1000000,
	  "open GET /watch streams per worker before 503 (default 4096)" },
	{ "watch-max-lag", OPT_SIZE, F(watch_max_lag), 1, 1ull << 40,
	  "bytes of log a watcher may be behind before it is ended as too_slow\n"
	  "                         (default 64m)" },
	{ "cluster", OPT_STR, F(cluster), 0, sizeof(((struct srv_config *)0)->cluster),
	  "the group's name: turns cluster mode on (docs/cluster.md)" },
	{ "etcd", OPT_STR, F(etcd), 0, sizeof(((struct srv_config *)0)->etcd),
	  "cluster: etcd client endpoints, http://HOST:PORT[,...]" },
	{ "node", OPT_STR, F(node), 0, sizeof(((struct srv_config *)0)->node),
	  "cluster: this member's name, unique in the group" },
	{ "advertise", OPT_STR, F(advertise), 0, sizeof(((struct srv_config *)0)->advertise),
	  "cluster: the URL other members and HAProxy reach this member at" },
	{ "group-size", OPT_INT, F(group_size), 1, 9,
	  "cluster: members in the group (default 3)" },
	{ "lease-ttl", OPT_INT, F(lease_ttl_s), 2, 60,
	  "cluster: seconds of the primary's etcd lease (default 5)" },
	{ "replication-timeout", OPT_INT, F(replication_timeout_ms), 100, 600000,
	  "cluster: ms a write waits for a majority before 503 unavailable (default 2000)" },
	{ "max-lag", OPT_INT, F(max_lag_s), 1, 3600,
	  "cluster: seconds a replica may be behind and still answer /cluster/replica\n"
	  "                         with 200 (default 5)" },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static void defaults(struct srv_config *c)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(c, 0, sizeof(*c));
	snprintf(c->listen[0], SRV_ADDR_MAX, "127.0.0.1:7070");
	c->nlisten = 1;
	c->workers = cpus < 1 ? 1 : cpus > SRV_WORKERS_MAX ? SRV_WORKERS_MAX : (int)cpus;
	snprintf(c->data_dir, sizeof(c->data_dir), "./data");
	c->fsync = SRV_FSYNC_GROUP;
	c->fsync_interval_ms = 1000;
	c->max_keys = 0;
	c->max_batch_size = 16u << 20;
	c->compact_garbage_pct = 50;
	c->compact_min_size = 64u << 20;
	c->compaction_pace = ENG_PACE_AUTO;
	c->group_size = 3;
	c->lease_ttl_s = 5;
	c->replication_timeout_ms = 2000;
	c->max_lag_s = 5;
	c->max_value_size = 16u << 20;
	c->log_level = SRV_LOG_INFO;
	c->shutdown_timeout_s = 30;
	c->worker_timeout_s = 10;
	c->max_conns = 4096;
	c->max_watches = 4096;
	c->watch_max_lag = 64ull << 20;
	c->idle_timeout_s = 60;
	c->read_timeout_s = 30;
	c->min_rate = 1024;
	c->send_timeout_s = 60;
	c->body_memory = 0; /* not set: check() derives it */
}

/* 256 MiB: 16 of the largest values by default, at once, per worker. */
#define BODY_MEMORY_DEFAULT (256ull << 20)

/* A name etcd keys and cluster.state carry as they are. */
static int cluster_name_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return 0;
	return 1;
}

static int check_cluster(const struct srv_config *c, char *err, size_t errlen)
{
	if (!c->cluster[0]) {
		if (c->etcd[0] || c->node[0] || c->advertise[0]) {
			snprintf(err, errlen, "--etcd, --node and --advertise need --cluster NAME");
			return -EINVAL;
		}
		return 0;
	}
	if (!cluster_name_ok(c->cluster) || !cluster_name_ok(c->node)) {
		snprintf(err, errlen, "--cluster and --node must be given, of letters, digits, "
			 "'-', '_' and '.'");
		return -EINVAL;
	}
	if (!c->etcd[0] || strncmp(c->etcd, "http://", 7)) {
		snprintf(err, errlen, "--etcd: cluster mode needs etcd's client URLs, http://HOST:PORT[,...]");
		return -EINVAL;
	}
	if (strncmp(c->advertise, "http://", 7) || strlen(c->advertise) < 8) {
		snprintf(err, errlen, "--advertise: cluster mode needs the URL peers reach this "
			 "member at, http://HOST:PORT");
		return -EINVAL;
	}
	if (c->fsync == SRV_FSYNC_PERIODIC) {
		snprintf(err, errlen, "--fsync periodic cannot be used in a cluster: a write is "
			 "acknowledged only once durable on a majority");
		return -EINVAL;
	}
	return 0;
}

/* Settings that depend on others, and those that must agree with each
 * other: 0, or -EINVAL with err. */
static int check(struct srv_config *c, char *err, size_t errlen)
{
	if (!c->body_memory) {
		/* Not set: room for the largest body whatever the other limits
		 * say, so a config that raised them keeps working. */
		c->body_memory = BODY_MEMORY_DEFAULT;
		if (c->body_memory < c->max_value_size)
			c->body_memory = c->max_value_size;
		if (c->body_memory < c->max_batch_size)
			c->body_memory = c->max_batch_size;
	}
	if (c->body_memory < c->max_value_size || c->body_memory < c->max_batch_size) {
		snprintf(err, errlen, "body-memory (%llu bytes) must be at least max-value-size "
			 "(%llu) and max-batch-size (%llu): a body larger than it could never "
			 "be received", (unsigned long long)c->body_memory,
			 (unsigned long long)c->max_value_size,
			 (unsigned long long)c->max_batch_size);
		return -EINVAL;
	}
	return check_cluster(c, err, errlen);
}

static const struct opt *find_opt(const char *name, size_t n)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strlen(opts[i].name) == n && !strncmp(opts[i].name, name, n))
			return &opts[i];
	return NULL;
}

static int parse_u64(const char *s, uint64_t *out, int sizes)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (sizes && *end) {
		int shift = 0;
		switch (tolower((unsigned char)*end)) {
		case 'k': shift = 10; break;
		case 'm': shift = 20; break;
		case 'g': shift = 30; break;
		default: return -EINVAL;
		}
		end++;
		if (v > (UINT64_MAX >> shift))
			return -EINVAL;
		v <<= shift;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* HOST:PORT, [IPV6]:PORT or :PORT (every address), with a decimal port
 * 0..65535; 0 asks the kernel for a free port, which the master logs.
 * 0 or -EINVAL. The host itself is resolved when binding. */
static int check_listen(const char *val)
{
	const char *colon = strrchr(val, ':'), *p;
	size_t hlen;
	uint64_t port;

	if (strlen(val) >= SRV_ADDR_MAX || !colon || parse_u64(colon + 1, &port, 0) < 0 ||
	    port > MAX_PORT || strlen(colon + 1) > 5)
		return -EINVAL;
	hlen = (size_t)(colon - val);
	if (hlen && val[0] == '[')
		return hlen >= 2 && val[hlen - 1] == ']' ? 0 : -EINVAL;
	for (p = val; p < colon; p++)
		if (*p == ':' || *p == '[' || *p == ']')
			return -EINVAL; /* an IPv6 address needs brackets */
	return 0;
}

/* Applies one name/value; "where" prefixes the error ("--workers" or
 * "caskd.conf:3: workers"). 0, or -EINVAL with err filled. */
static int apply(struct srv_config *c, const struct opt *o, const char *val,
		 int *listen_reset, const char *where, char *err, size_t errlen)
{
	char *field = (char *)c + o->off;
	uint64_t v;
	enum srv_log_level lv;

	switch (o->type) {
	case OPT_INT:
	case OPT_U64:
	case OPT_SIZE:
		if (parse_u64(val, &v, o->type == OPT_SIZE) < 0 || v < o->min ||
		    v > o->max) {
			snprintf(err, errlen, "%s: '%s' is not a number from %llu to %llu",
				 where, val, (unsigned long long)o->min,
				 (unsigned long long)o->max);
			return -EINVAL;
		}
		if (o->type == OPT_INT)
			*(int *)field = (int)v;
		else
			*(uint64_t *)field = v;
		return 0;
	case OPT_STR:
		if (strlen(val) >= o->max) {
			snprintf(err, errlen, "%s: value too long", where);
			return -EINVAL;
		}
		strcpy(field, val);
		return 0;
	case OPT_LISTEN:
		if (!*listen_reset) {
			c->nlisten = 0;
			*listen_reset = 1;
		}
		if (c->nlisten == SRV_LISTEN_MAX) {
			snprintf(err, errlen, "%s: '%s': at most %d addresses", where, val,
				 SRV_LISTEN_MAX);
			return -EINVAL;
		}
		if (check_listen(val) < 0) {
			snprintf(err, errlen, "%s: '%s' is not HOST:PORT with a port from 0 to "
				 "65535 (0: any free port; an IPv6 host in brackets)", where, val);
			return -EINVAL;
		}
		strcpy(c->listen[c->nlisten++], val);
		return 0;
	case OPT_FSYNC:
		for (int m = 0; m < NFSYNC; m++)
			if (!strcmp(val, fsync_names[m])) {
				c->fsync = (enum srv_fsync_mode)m;
				return 0;
			}
		snprintf(err, errlen, "%s: '%s' is not group, periodic or always", where, val);
		return -EINVAL;
	case OPT_PACE:
		if (!strcmp(val, "auto") || !strcmp(val, "off")) {
			c->compaction_pace = val[0] == 'a' ? ENG_PACE_AUTO : ENG_PACE_OFF;
			return 0;
		}
		if (parse_u64(val, &v, 1) < 0 || v < o->min || v > o->max) {
			snprintf(err, errlen, "%s: '%s' is not auto, off or a rate in bytes per "
				 "second from 64k to 1024g", where, val);
			return -EINVAL;
		}
		c->compaction_pace = ENG_PACE_FIXED;
		*(uint64_t *)field = v;
		return 0;
	case OPT_LEVEL:
		if (srv_log_parse_level(val, &lv) < 0) {
			snprintf(err, errlen, "%s: '%s' is not debug, info, warn or error",
				 where, val);
			return -EINVAL;
		}
		c->log_level = (int)lv;
		return 0;
	}
	return -EINVAL;
}

static char *trim(char *s)
{
	char *e;
	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Reads config lines from f, named path in messages; options in `skip`
 * (set by flags) are ignored. 0, or -errno with err filled. */
static int load_stream(struct srv_config *c, FILE *f, const char *path,
		       const int *skip, char *err, size_t errlen)
{
	char line[CONF_LINE_MAX], where[PATH_MAX + 128];
	int lineno = 0, listen_reset = 0, rc = 0;

	while (fgets(line, sizeof(line), f)) {
		char *s = trim(line), *eq, *name, *val;
		const struct opt *o;
		lineno++;
		if (!*s || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected 'name = value'", path, lineno);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		name = trim(s);
		val = trim(eq + 1);
		o = find_opt(name, strlen(name));
		if (!o || !strcmp(o->name, "config")) {
			snprintf(err, errlen, "%s:%d: unknown setting '%s'", path, lineno, name);
			rc = -EINVAL;
			break;
		}
		if (skip[o - opts])
			continue;
		snprintf(where, sizeof(where), "%s:%d: %s", path, lineno, name);
		if (apply(c, o, val, &listen_reset, where, err, errlen) < 0) {
			rc = -EINVAL;
			break;
		}
	}
	if (!rc && ferror(f)) {
		rc = -EIO;
		snprintf(err, errlen, "--config: reading %s failed", path);
	}
	return rc;
}

/* Reads the config file; options in `skip` (set by flags) are ignored.
 * 0, or -errno with err filled. */
static int load_file(struct srv_config *c, const char *path, const int *skip,
		     char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	int rc;

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "--config: cannot open %s: %s", path, strerror(-rc));
		return rc;
	}
	rc = load_stream(c, f, path, skip, err, errlen);
	fclose(f);
	return rc;
}

int srv_config_parse_text(const char *text, size_t len, const char *name,
			  struct srv_config *c, char *err, size_t errlen)
{
	int skip[NOPTS] = { 0 };
	FILE *f;
	int rc;

	defaults(c);
	if (len == 0) /* nothing set, but what check() derives is still due */
		return check(c, err, errlen);
	/* The same line reader as a file gets: fgets over a memory stream. */
	f = fmemopen((void *)text, len, "r");
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: fmemopen: %s", name, strerror(-rc));
		return rc;
	}
	rc = load_stream(c, f, name, skip, err, errlen) < 0 ? -EINVAL : 0;
	fclose(f);
	return rc ? rc : check(c, err, errlen);
}

void srv_config_usage(FILE *out)
{
	fprintf(out, "usage: caskd [options]\n"
		     "       caskd check " SRV_CHECK_ARGS "\n\n"
		     "A key-value daemon: N worker processes serve an HTTP API over one\n"
		     "append-only database.bin. Options (also valid in --config files):\n");
	for (size_t i = 0; i < NOPTS; i++)
		fprintf(out, "  --%-20s %s\n", opts[i].name, opts[i].help);
	fprintf(out, "  --%-20s %s\n  --%-20s %s\n", "help", "this text",
		"version", "print the version");
	srv_cli_usage(out);
}

enum srv_config_result srv_config_load(int argc, char **argv,
				       struct srv_config *c, char *err,
				       size_t errlen)
{
	int set[NOPTS] = { 0 }, listen_reset = 0;
	struct srv_config flags;

	defaults(&flags);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val, *eq;
		const struct opt *o;
		char where[128];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			srv_config_usage(stdout);
			return SRV_CONFIG_HELP;
		}
		if (!strcmp(a, "--version")) {
			printf("caskd %s (revision %s)\n", srv_version, srv_revision);
			return SRV_CONFIG_VERSION;
		}
		if (strncmp(a, "--", 2)) {
			snprintf(err, errlen, "unexpected argument '%s' (see --help)", a);
			return SRV_CONFIG_ERROR;
		}
		eq = strchr(a, '=');
		o = find_opt(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
		if (!o) {
			snprintf(err, errlen, "unknown option '%.*s' (see --help)",
				 eq ? (int)(eq - a) : (int)strlen(a), a);
			return SRV_CONFIG_ERROR;
		}
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			snprintf(err, errlen, "--%s: missing value", o->name);
			return SRV_CONFIG_ERROR;
		}
		snprintf(where, sizeof(where), "--%s", o->name);
		if (apply(&flags, o, val, &listen_reset, where, err, errlen) < 0)
			return SRV_CONFIG_ERROR;
		set[o - opts] = 1;
	}
	/* The file goes under the flags: start from defaults, read the file
	 * skipping what flags set, then take the flags' values. */
	defaults(c);
	if (flags.config_file[0] &&
	    load_file(c, flags.config_file, set, err, errlen) < 0)
		return SRV_CONFIG_ERROR;
	for (size_t i = 0; i < NOPTS; i++) {
		if (!set[i])
			continue;
		if (opts[i].type == OPT_LISTEN) {
			memcpy(c->listen, flags.listen, sizeof(c->listen));
			c->nlisten = flags.nlisten;
		} else if (opts[i].type == OPT_PACE) {
			/* two fields: the mode, and the rate when fixed */
			c->compaction_pace = flags.compaction_pace;
			c->compaction_rate = flags.compaction_rate;
		} else {
			size_t sz = opts[i].type == OPT_STR ? opts[i].max
				  : opts[i].type == OPT_INT || opts[i].type == OPT_FSYNC ||
				    opts[i].type == OPT_LEVEL ? sizeof(int)
				  : sizeof(uint64_t);
			memcpy((char *)c + opts[i].off, (char *)&flags + opts[i].off, sz);
		}
	}
	return check(c, err, errlen) < 0 ? SRV_CONFIG_ERROR : SRV_CONFIG_OK;
}
