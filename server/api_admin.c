/* server/api_admin.c — /admin/: compaction, jobs, snapshots.
 *
 * Admin requests need `Authorization: Bearer <token>` when the daemon has
 * a token (--admin-token-file: 401 without one, 403 for a wrong one, the
 * comparison in server/token.c); without a token file they are answered
 * for loopback peers only (403 otherwise). The work is never done here:
 * a compaction runs in a job process the master forks (engine/job.h),
 * and a snapshot is the bytes of a consistent cut, sent from the
 * worker's mapping of database.bin.
 */
#include "server/api_admin.h"

#include "engine/job.h"
#include "engine/num.h"
#include "engine/store.h"
#include "server/api_base.h"
#include "server/api_error.h"
#include "server/api_query.h"
#include "server/api_wait.h"
#include "server/http.h"
#include "server/token.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JOBS_PATH "/admin/jobs"
#define JOBS_PREFIX JOBS_PATH "/"
/* One job's JSON: its fixed text, times, sizes, pace and error fit. */
#define JOB_JSON_MAX 1024
#define PACE_JSON_MAX 256

/* --- authorization --------------------------------------------------------- */

static int authorized(struct srv_api *api, struct srv_http_req *req)
{
	const char *h = srv_http_req_header(req, "Authorization");

	if (!api->admin_token) {
		if (srv_http_req_peer_is_loopback(req))
			return 1;
		srv_http_respond_error(req, 403, "forbidden",
				       "admin endpoints answer loopback peers only unless "
				       "--admin-token-file is set");
		return 0;
	}
	if (!h || strncasecmp(h, "Bearer ", 7)) {
		srv_http_add_header(req, "WWW-Authenticate", "Bearer realm=\"caskd admin\"");
		srv_http_respond_error(req, 401, "unauthorized",
				       "admin endpoints need Authorization: Bearer <token>");
		return 0;
	}
	if (!srv_token_matches(api->admin_token, h + 7, strlen(h + 7))) {
		srv_http_respond_error(req, 403, "forbidden", "wrong admin token");
		return 0;
	}
	return 1;
}

/* --- jobs ---------------------------------------------------------------------- */

static void iso_time(char *buf, size_t n, uint64_t ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	if (!ms) {
		snprintf(buf, n, "null");
		return;
	}
	gmtime_r(&s, &tm);
	snprintf(buf, n, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03uZ\"", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(ms % 1000));
}

/* error is a message of ours: no quote or backslash to escape but what
 * strerror may hold, which we drop. */
static void json_text(char *dst, size_t n, const char *s)
{
	size_t o = 0;

	for (; *s && o + 1 < n; s++)
		if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
			dst[o++] = *s;
	dst[o] = '\0';
}

/* A size, or null while unknown. */
static void json_size(char *buf, size_t n, int known, uint64_t v)
{
	if (known)
		snprintf(buf, n, "%" PRIu64, v);
	else
		snprintf(buf, n, "null");
}

/* A compaction's pace and progress (engine/pace.h): null where not
 * known (before its cut, a table rebuild); the rate limit is null while
 * nothing holds it back, the ETA once it ended. */
static void pace_json(char *buf, size_t n, const struct eng_job_info *j)
{
	char rate[24], lim[24], done[24], total[24], eta[32];
	int known = j->kind == ENG_JOB_COMPACT && j->bytes_total != 0;
	int running = j->state == ENG_JOB_RUNNING;

	json_size(rate, sizeof(rate), known, j->rate);
	json_size(lim, sizeof(lim), known && running && j->rate_limit, j->rate_limit);
	json_size(done, sizeof(done), known, j->bytes_done);
	json_size(total, sizeof(total), known, j->bytes_total);
	if (known && running && j->eta_ms != UINT64_MAX)
		snprintf(eta, sizeof(eta), "%.1f", (double)j->eta_ms / 1000);
	else
		snprintf(eta, sizeof(eta), "null");
	snprintf(buf, n, "\"pace\":\"%s\",\"rate_bytes_per_s\":%s,"
		 "\"rate_limit_bytes_per_s\":%s,\"bytes_done\":%s,\"bytes_total\":%s,"
		 "\"eta_s\":%s", j->kind == ENG_JOB_COMPACT ? eng_pace_mode_name(j->pace_mode) : "off",
		 rate, lim, done, total, eta);
}

/* One job record as JSON into buf (n >= JOB_JSON_MAX): its length.
 * bytes_before is known from the job's cut on; bytes_after and keys
 * only once it is done: a failed job made no file to measure. */
static size_t job_json(char *buf, size_t n, const struct eng_job_info *j)
{
	char started[64], finished[64], err[ENG_JOB_ERROR_LEN + 2];
	char before[24], after[24], keys[24], pace[PACE_JSON_MAX];
	int done = j->state == ENG_JOB_DONE, len;

	iso_time(started, sizeof(started), j->started_ms);
	iso_time(finished, sizeof(finished), j->finished_ms);
	json_text(err, sizeof(err), j->error);
	json_size(before, sizeof(before), j->bytes_before != 0, j->bytes_before);
	json_size(after, sizeof(after), done, j->bytes_after);
	json_size(keys, sizeof(keys), done, j->keys);
	pace_json(pace, sizeof(pace), j);
	len = snprintf(buf, n,
		       "{\"id\":\"%" PRIu64 "\",\"kind\":\"%s\",\"state\":\"%s\","
		       "\"started\":%s,\"finished\":%s,\"bytes_before\":%s,"
		       "\"bytes_after\":%s,\"keys\":%s,%s,\"error\":%s%s%s}",
		       j->id, eng_job_kind_name(j->kind), eng_job_state_name(j->state),
		       started, finished, before, after, keys, pace,
		       j->error[0] ? "\"" : "", j->error[0] ? err : "null",
		       j->error[0] ? "\"" : "");
	return len < 0 ? 0 : (size_t)len < n ? (size_t)len : n - 1;
}

static void route_compact(struct srv_api *api, struct srv_http_req *req)
{
	char body[64], loc[64];
	uint64_t id;
	int rc = eng_job_request_compact(api->db, &id), n;

	if (rc) {
		srv_api_error(api, req, rc);
		return;
	}
	snprintf(loc, sizeof(loc), JOBS_PREFIX "%" PRIu64, id);
	srv_http_add_header(req, "Location", loc);
	n = snprintf(body, sizeof(body), "{\"job\":\"%" PRIu64 "\"}", id);
	srv_http_respond(req, 202, "application/json", body, (size_t)n);
}

static int parse_id(const char *s, uint64_t *id)
{
	/* ids start at 1 */
	return eng_parse_u64(s, strlen(s), id) || *id == 0 ? -EINVAL : 0;
}

static void route_job(struct srv_api *api, struct srv_http_req *req, const char *idstr)
{
	struct eng_job_info j;
	char body[JOB_JSON_MAX];
	uint64_t id;

	if (parse_id(idstr, &id) < 0 || eng_job_get(api->db, id, &j) < 0) {
		srv_http_respond_error(req, 404, "not_found", "no such job");
		return;
	}
	srv_http_respond(req, 200, "application/json", body,
			 job_json(body, sizeof(body), &j));
}

/* {"jobs":[...]}: the jobs kept, newest first. */
static void route_jobs(struct srv_api *api, struct srv_http_req *req)
{
	static const char head[] = "{\"jobs\":[", tail[] = "]}";
	struct eng_job_info jobs[ENG_JOB_LIST_MAX];
	char body[sizeof(head) + ENG_JOB_LIST_MAX * (JOB_JSON_MAX + 1) + sizeof(tail)];
	int n = eng_job_list(api->db, jobs, ENG_JOB_LIST_MAX);
	size_t o = sizeof(head) - 1;

	if (n < 0) {
		srv_api_error(api, req, n);
		return;
	}
	memcpy(body, head, o);
	for (int i = 0; i < n; i++) {
		if (i)
			body[o++] = ',';
		o += job_json(body + o, JOB_JSON_MAX, &jobs[i]);
	}
	memcpy(body + o, tail, sizeof(tail) - 1);
	srv_http_respond(req, 200, "application/json", body, o + sizeof(tail) - 1);
}

/* --- snapshots ------------------------------------------------------------------ */

struct snapshot {
	struct srv_api *api;
	struct srv_http_req *req;
	struct event *retry;
	struct eng_backup b;
	uint64_t target, file_gen;
	uint64_t started_ms;
};

static void snap_free(struct snapshot *j)
{
	if (j->retry)
		event_free(j->retry);
	eng_backup_end(j->api->db, &j->b);
	free(j);
}

static void snap_release(const void *body, size_t len, void *arg)
{
	(void)body;
	(void)len;
	snap_free(arg);
}

static void snap_send(int rc, void *arg)
{
	struct snapshot *j = arg;

	if (rc) {
		srv_api_error(j->api, j->req, rc);
		snap_free(j);
		return;
	}
	/* The file up to the cut, under a header of its own whose durable
	 * mark is the cut (engine/store.h: eng_backup). */
	srv_http_add_header(j->req, "Content-Disposition",
			    "attachment; filename=\"database.bin\"");
	srv_http_respond_ref(j->req, 200, "application/octet-stream", j->b.base,
			     j->b.end, snap_release, j);
}

static void snap_try(evutil_socket_t fd, short what, void *arg)
{
	struct snapshot *j = arg;
	struct timeval tv = { 0, SRV_BUSY_RETRY_US };
	int rc;

	(void)fd;
	(void)what;
	rc = eng_backup_begin(j->api->db, j->target, j->file_gen, &j->b);
	if (rc == -ESTALE) {
		/* a compaction swapped the file: its copy holds everything */
		j->target = eng_backup_target(j->api->db, &j->file_gen);
		rc = -EAGAIN;
	}
	if (rc == -EAGAIN && srv_api_now_ms(j->api) - j->started_ms < SRV_BUSY_GIVE_UP_MS) {
		if ((j->retry || (j->retry = evtimer_new(j->api->base, snap_try, j))) &&
		    evtimer_add(j->retry, &tv) == 0)
			return;
		rc = -ENOMEM;
	}
	if (rc == 0) {
		rc = srv_api_after_durable(j->api, j->b.end, snap_send, j);
		if (rc > 0)
			return;
	}
	snap_send(rc, j);
}

void srv_api_snapshot(struct srv_api *api, struct srv_http_req *req)
{
	struct snapshot *j = calloc(1, sizeof(*j));

	if (!j) {
		srv_api_error(api, req, -ENOMEM);
		return;
	}
	j->api = api;
	j->req = req;
	j->started_ms = srv_api_now_ms(api);
	/* Every write acknowledged before now was reserved below this. */
	j->target = eng_backup_target(api->db, &j->file_gen);
	snap_try(-1, 0, j);
}

void srv_api_admin(struct srv_api *api, struct srv_http_req *req, const char *path)
{
	static const char *const params[] = SRV_QUERY_NONE;

	if (!authorized(api, req) || srv_api_query_ok(req, params) < 0)
		return;
	if (!strcmp(path, "/admin/compact")) {
		if (srv_api_method_ok(req, "POST"))
			route_compact(api, req);
	} else if (!strcmp(path, JOBS_PATH) || !strncmp(path, JOBS_PREFIX, strlen(JOBS_PREFIX))) {
		if (!srv_api_method_ok(req, "GET, HEAD"))
			return;
		if (!strcmp(path, JOBS_PATH))
			route_jobs(api, req);
		else
			route_job(api, req, path + strlen(JOBS_PREFIX));
	} else if (!strcmp(path, "/admin/snapshot")) {
		if (srv_api_method_ok(req, "GET"))
			srv_api_snapshot(api, req);
	} else {
		srv_http_respond_error(req, 404, "not_found", "no such admin endpoint");
	}
}
