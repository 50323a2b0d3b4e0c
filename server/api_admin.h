/* server/api_admin.h — the routes under /admin/: compaction, background
 * jobs, snapshots (api_admin.c). Called by the router (api.c) for any
 * method: authorization comes before the method check, so a stranger
 * learns nothing of the paths. Runs on a worker's event loop thread.
 */
#ifndef CASKD_SERVER_API_ADMIN_H
#define CASKD_SERVER_API_ADMIN_H

struct srv_api;
struct srv_http_req;

void srv_api_admin(struct srv_api *api, struct srv_http_req *req, const char *path);
/* GET /admin/snapshot's cut, for /cluster/snapshot too (no checks). */
void srv_api_snapshot(struct srv_api *api, struct srv_http_req *req);

#endif
