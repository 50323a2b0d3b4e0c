/* server/api_error.c — engine results as HTTP answers (see api_error.h):
 * the table, then the answer made from it.
 */
#include "server/api_error.h"

#include "engine/errors.h"
#include "server/api_base.h"
#include "server/http.h"
#include "server/log.h"

#include <errno.h>
#include <stddef.h>

#define DISK_FULL_MSG "no space left for database.bin; nothing was written " \
		      "(deletes and compaction still work)"
#define INDEX_LOST_MSG "the shared index is being rebuilt from database.bin; retry shortly"
#define UNCONFIRMED_MSG "a majority of the group did not confirm this in time; a " \
			"write may still take effect later"
#define IO_ERROR_MSG "database.bin could not be made durable; the write is not " \
		     "acknowledged (its outcome is unknown) and the daemon is restarting"

static const struct srv_api_error_map table[] = {
	{ ENG_EPRECOND, 412, "precondition_failed",
	  "the key's current version does not match the condition", false },
	{ -ENOENT, 404, "not_found", "no such key", false },
	{ ENG_EFULL, 507, "index_full",
	  "the index holds --max-keys keys (or the largest table caskd makes); "
	  "delete some or raise --max-keys", false },
	{ -ENOSPC, 507, "disk_full", DISK_FULL_MSG, false },
	{ -EDQUOT, 507, "disk_full", DISK_FULL_MSG, false },
	{ -EFBIG, 507, "disk_full", DISK_FULL_MSG, false },
	{ ENG_ENOTINT, 409, "not_integer",
	  "the stored value is not a decimal 64-bit integer", false },
	{ ENG_EOVERFLOW, 409, "overflow",
	  "the result does not fit in a signed 64-bit integer", false },
	{ -E2BIG, 413, "value_too_large", "the value is larger than --max-value-size", false },
	{ -EINVAL, 400, "bad_key", "keys are 1 to 1024 bytes", false },
	{ -EAGAIN, 503, "key_busy", "another write to this key did not finish; retry", true },
	{ -ENOMEM, 503, "overloaded", "out of memory", true },
	{ -ENOTRECOVERABLE, 503, "index_lost", INDEX_LOST_MSG, true },
	{ -EUCLEAN, 503, "index_lost", INDEX_LOST_MSG, true },
	/* a group: a majority did not confirm in time, or this member
	 * stopped being the primary meanwhile (server/api_wait.c) */
	{ -ETIMEDOUT, 503, "unavailable", UNCONFIRMED_MSG, true },
	{ -ENOTCONN, 503, "unavailable", UNCONFIRMED_MSG, true },
	{ ENG_EPOISONED, 503, "io_error", IO_ERROR_MSG, true },
	{ -EIO, 503, "io_error", IO_ERROR_MSG, true },
	{ -ECANCELED, 503, "io_error", IO_ERROR_MSG, true },
	/* A record that fails its checksum where the index points: damage
	 * on disk, which no retry mends (a GET names the offset). */
	{ -EBADMSG, 500, "corrupt_record",
	  "a record in database.bin fails its checksum: damage on disk; run 'caskd check'",
	  false },
};

const struct srv_api_error_map *srv_api_error_find(int rc)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].rc == rc)
			return &table[i];
	return NULL;
}

void srv_api_unavailable(struct srv_http_req *req, const char *code,
			 const char *msg)
{
	srv_http_add_header(req, "Retry-After", SRV_RETRY_AFTER_S);
	srv_http_respond_error(req, 503, code, msg);
}

void srv_api_error(struct srv_api *api, struct srv_http_req *req, int rc)
{
	const struct srv_api_error_map *e = srv_api_error_find(rc);

	if (api->engine_error)
		api->engine_error(rc, api->engine_error_arg);
	if (!e) {
		srv_error("unexpected engine error %d: %s", rc, eng_strerror(rc));
		srv_http_respond_error(req, 500, "internal", eng_strerror(rc));
		return;
	}
	if (e->retry_after)
		srv_http_add_header(req, "Retry-After", SRV_RETRY_AFTER_S);
	srv_http_respond_error(req, e->status, e->code, e->msg);
}
