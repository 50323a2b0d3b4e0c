/* server/api_error.h — engine results as HTTP answers.
 *
 * Owns: the one table from an engine result (-errno or an ENG_E* code,
 * engine/errors.h) to its status, JSON error code and message, and the
 * answer made from it. The table is pure: what follows an error (a
 * store that cannot be trusted makes the worker ask the master for a
 * restart) is decided by the worker, which srv_api_error() shows every
 * result it answers (srv_api.engine_error). Runs on a worker's event
 * loop thread.
 */
#ifndef CASKD_SERVER_API_ERROR_H
#define CASKD_SERVER_API_ERROR_H

#include <stdbool.h>

struct srv_api;
struct srv_http_req;

struct srv_api_error_map {
	int rc;             /* the engine result */
	int status;
	const char *code;   /* the JSON "error" */
	const char *msg;    /* the JSON "message" */
	bool retry_after;   /* a 503 the client may retry: Retry-After */
};

/* The entry of rc, or NULL for a result the table does not know (it is
 * answered 500 internal, with the engine's text). Pure. */
const struct srv_api_error_map *srv_api_error_find(int rc);
/* Answers req for the engine result rc, from the table, after showing
 * rc to the worker (api->engine_error). */
void srv_api_error(struct srv_api *api, struct srv_http_req *req, int rc);
/* A 503 with Retry-After, for a refusal of the server's own (stopping,
 * out of memory). */
void srv_api_unavailable(struct srv_http_req *req, const char *code,
			 const char *msg);

#endif
