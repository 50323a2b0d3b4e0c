/* server/api_base.c — what every route of the HTTP API stands on (see
 * api_base.h).
 *
 * Map: entity tags and the clock - the busy-key retry - metrics tags -
 * the method check.
 */
#include "server/api_base.h"

#include "engine/durable.h"
#include "engine/store.h"
#include "server/http.h"
#include "server/metrics.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define ETAG_MAX 24          /* quotes + 20 digits + NUL */

void srv_api_set_etag(struct srv_http_req *req, uint64_t version)
{
	char etag[ETAG_MAX];
	snprintf(etag, sizeof(etag), "\"%" PRIu64 "\"", version);
	srv_http_add_header(req, "ETag", etag);
}

uint64_t srv_api_now_ms(struct srv_api *api)
{
	struct timeval tv;
	event_base_gettimeofday_cached(api->base, &tv);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

int srv_api_retry_later(struct srv_api *api, struct event **retry, int tries,
			void (*cb)(evutil_socket_t, short, void *), void *arg)
{
	struct timeval tv = { 0, tries < SRV_BUSY_SPIN_TRIES ? 0 : SRV_BUSY_RETRY_US };

	srv_metrics_inc(&api->stats->key_busy_retries);
	if (!*retry)
		*retry = evtimer_new(api->base, cb, arg);
	return *retry && evtimer_add(*retry, &tv) == 0 ? 0 : -ENOMEM;
}

void srv_api_locks_since(struct srv_api *api, const struct srv_api_tag *tag,
			 uint64_t before)
{
	srv_metrics_locks(api->stats, tag->route, tag->method,
			  api->db->mutex_locks - before);
}

void srv_api_tag(struct srv_http_req *req, int route, struct srv_api_tag *tag)
{
	tag->route = route;
	tag->method = (int)srv_http_req_method(req);
}

/* --- the method check ------------------------------------------------------ */

/* Is method one of the comma-separated tokens of allow? */
static int allows(const char *allow, const char *method)
{
	size_t n = strlen(method);

	while (*allow) {
		size_t len = strcspn(allow, ",");

		if (len == n && !strncmp(allow, method, n))
			return 1;
		allow += len;
		allow += strspn(allow, ", ");
	}
	return 0;
}

int srv_api_method_ok(struct srv_http_req *req, const char *allow)
{
	const char *method = srv_http_req_method_str(req);
	char all[64], msg[160];

	if (srv_http_req_method(req) != SRV_HTTP_OPTIONS && allows(allow, method))
		return 1;
	snprintf(all, sizeof(all), "%s, OPTIONS", allow);
	srv_http_add_header(req, "Allow", all);
	if (srv_http_req_method(req) == SRV_HTTP_OPTIONS) {
		srv_http_respond(req, 204, NULL, NULL, 0);
		return 0;
	}
	snprintf(msg, sizeof(msg), "this path does not take %s; it takes %s", method, all);
	srv_http_respond_error(req, 405, "method_not_allowed", msg);
	return 0;
}

void srv_api_want_sync(struct srv_api *api)
{
	srv_commit_kick(api->commit);
}
