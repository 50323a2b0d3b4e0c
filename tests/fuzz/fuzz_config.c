/* tests/fuzz/fuzz_config.c — libFuzzer harness of the config file parser
 * (server/config.c through srv_config_parse_text, the same line reader
 * --config uses).
 *
 * Invariants: the result is 0 or a negative errno; a refusal comes with a
 * one-line, NUL-terminated message; an accepted file leaves a config
 * every field of which is within the bounds the options table gives (so
 * nothing after parsing can index out of range or read an unterminated
 * string). ASan and UBSan catch the rest.
 */
#include "server/config.h"
#include "server/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_check_str(const char *s, size_t cap)
{
	if (!memchr(s, '\0', cap))
		abort();
}

static void fz_check_config(const struct srv_config *c)
{
	if (c->nlisten < 1 || c->nlisten > SRV_LISTEN_MAX)
		abort();
	for (int i = 0; i < c->nlisten; i++)
		fz_check_str(c->listen[i], sizeof(c->listen[i]));
	fz_check_str(c->data_dir, sizeof(c->data_dir));
	fz_check_str(c->config_file, sizeof(c->config_file));
	fz_check_str(c->access_log, sizeof(c->access_log));
	if (c->workers < 1 || c->workers > SRV_WORKERS_MAX ||
	    c->fsync_interval_ms < 1 || c->max_batch_size < 1 ||
	    c->max_value_size > (1ull << 30) || c->max_conns < 1 ||
	    c->shutdown_timeout_s < 1 || c->worker_timeout_s < 1 ||
	    c->send_timeout_s < 1 || c->body_memory < c->max_value_size ||
	    c->body_memory < c->max_batch_size)
		abort();
	if (c->fsync != SRV_FSYNC_GROUP && c->fsync != SRV_FSYNC_PERIODIC &&
	    c->fsync != SRV_FSYNC_ALWAYS)
		abort();
	if (c->log_level < SRV_LOG_DEBUG || c->log_level > SRV_LOG_ERROR)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct srv_config c;
	char err[512];
	int rc;

	err[0] = '\0';
	rc = srv_config_parse_text((const char *)data, size, "fuzz.conf", &c,
				   err, sizeof(err));
	if (rc > 0)
		abort();
	if (rc < 0 && (err[0] == '\0' || !memchr(err, '\0', sizeof(err)) ||
		       strchr(err, '\n')))
		abort();
	if (rc == 0)
		fz_check_config(&c);
	return 0;
}
