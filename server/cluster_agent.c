/* server/cluster_agent.c — the cluster process and its agent thread:
 * leadership in etcd, terms and their fences (see cluster.h; the design
 * and its reasons are docs/cluster.md's).
 *
 * Map: the master's part (prepare, the shared record) - etcd's keys -
 * fencing a term - taking and leaving leadership - one tick - the
 * process's main.
 *
 * etcd holds, under /caskd/<cluster>/: `config` (the group size, set by
 * the first member), `members/<node>` (its URL, under its lease: a member
 * whose process is gone drops out), `term` (a counter: every election
 * adds one), `leader` (the primary's node, under its lease) and
 * `pos/<term>/<node>` (the position each member fenced at). A member
 * becomes primary only through one transaction that creates `leader`
 * while none exists and moves `term` from the value it read, so two
 * members can never both win a term; and only after a majority of the
 * group has fenced that term (applies and acknowledges nothing of an
 * older one) and reported a position no greater than its own: since an
 * acknowledged write is on a majority and two majorities meet, the new
 * primary holds every acknowledged write.
 *
 * The thread blocks on etcd and on its peers (calls with deadlines, on
 * an event base of its own): it is not a worker's loop.
 */
#include "server/cluster.h"

#include "engine/durable.h"
#include "engine/failpoint.h"
#include "engine/io.h"
#include "engine/store.h"
#include "ipc/shm.h"
#include "server/clock.h"
#include "server/cluster_http.h"
#include "server/cluster_proc.h"
#include "server/cluster_repl.h"
#include "server/config.h"
#include "server/etcd.h"
#include "server/json.h"
#include "server/log.h"
#include "server/notify.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TICK_MS 250
#define ETCD_TIMEOUT_MS 1000
#define PEER_TIMEOUT_MS 400
/* How long a new primary waits for a majority to fence its term. */
#define FENCE_WAIT_MS 3000
#define RESIGN_BACKOFF_MS 1000
/* A primary no majority acked for this long (on top of the 3 s without
 * any ack that makes a replica count as unreachable) hands leadership
 * over: the others, who reach each other, can then elect one of them. */
#define ALONE_MS 1000
#define REACH_MS 3000 /* an ack within this long: the replica is reachable */

/* --- the master's part ------------------------------------------------------ */

static int install_copy(const char *dir, char *why, size_t n)
{
	char done[PATH_MAX], copy[PATH_MAX], bin[PATH_MAX], idx[PATH_MAX];
	int rc;

	if (snprintf(done, sizeof(done), "%s/%s", dir, SRV_CLUSTER_COPY_DONE) >= (int)sizeof(done) ||
	    snprintf(copy, sizeof(copy), "%s/%s", dir, SRV_CLUSTER_COPY_FILE) >= (int)sizeof(copy) ||
	    snprintf(bin, sizeof(bin), "%s/database.bin", dir) >= (int)sizeof(bin) ||
	    snprintf(idx, sizeof(idx), "%s/database.idx", dir) >= (int)sizeof(idx))
		return -ENAMETOOLONG;
	if (access(done, F_OK)) {
		/* a copy cut short by a crash is only a leftover */
		if (unlink(copy) && errno != ENOENT)
			srv_warn("cluster: removing %s: %s", copy, strerror(errno));
		return 0;
	}
	/* the index snapshot describes the file being replaced: it goes
	 * first, so no crash leaves it beside the copy */
	if ((rc = eng_io_unlink(idx)) && rc != -ENOENT)
		goto fail;
	if ((rc = eng_io_rename(copy, bin)) || (rc = eng_io_syncdir(dir)) ||
	    (rc = eng_io_unlink(done)) || (rc = eng_io_syncdir(dir)))
		goto fail;
	srv_info("cluster: installed the full copy fetched from the primary");
	return 0;
fail:
	snprintf(why, n, "installing the full copy in %s: %s", dir, strerror(-rc));
	return rc;
}

int srv_cluster_prepare(const struct srv_config *cfg, char *why, size_t n)
{
	struct srv_cl_state st;
	char w[256] = "";
	int rc;

	rc = srv_cl_state_load(cfg->data_dir, &st, w, sizeof(w));
	if (rc == -ENOENT)
		return install_copy(cfg->data_dir, why, n);
	if (rc) {
		snprintf(why, n, "%s/%s: %s (move it away to join as a new member)",
			 cfg->data_dir, SRV_CL_STATE_FILE, w);
		return -EINVAL;
	}
	if (strcmp(st.cluster, cfg->cluster)) {
		snprintf(why, n, "%s belongs to group '%s', not '%s': refusing to mix groups' data",
			 cfg->data_dir, st.cluster, cfg->cluster);
		return -EINVAL;
	}
	if (strcmp(st.node, cfg->node)) {
		snprintf(why, n, "%s is the data of node '%s', not '%s'", cfg->data_dir, st.node,
			 cfg->node);
		return -EINVAL;
	}
	if (st.group_size != (unsigned)cfg->group_size) {
		snprintf(why, n, "--group-size %d, but %s was made for a group of %u",
			 cfg->group_size, cfg->data_dir, st.group_size);
		return -EINVAL;
	}
	return install_copy(cfg->data_dir, why, n);
}

struct srv_cl_shm *srv_cluster_shm_new(uint64_t applied)
{
	void *p;
	struct srv_cl_shm *cl;
	int rc = ipc_shm_create(sizeof(struct srv_cl_shm), &p);

	if (rc) {
		errno = -rc;
		return NULL;
	}
	cl = p;
	memset(cl, 0, sizeof(*cl));
	atomic_store(&cl->applied, applied);
	atomic_store(&cl->self, -1);
	return cl;
}

/* --- the agent -------------------------------------------------------------- */

struct agent {
	struct srv_cl_proc *p;
	const struct srv_config *cfg;
	struct srv_cl_shm *cl;
	struct event_base *base;
	struct srv_cl_http *http;
	struct srv_etcd etcd;
	char k_leader[320], k_term[320], k_members[320], k_config[320], k_pos[320];
	uint64_t lease;
	uint64_t lease_valid_until; /* boot ms */
	uint64_t resign_until;      /* mono ms: no campaign before */
	uint64_t alone_since;       /* mono ms: a primary without a majority since */
	uint64_t etcd_down_logged;
	char following[SRV_CL_NAME_MAX]; /* the leader we last said we follow */
};

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	(void)sig;
	stop_signal = 1;
}

static int lease_margin_ms(const struct agent *a)
{
	/* etcd counts a lease from when it renews it, later than our send:
	 * our deadline is earlier than etcd's, by this much more for clock
	 * rate differences and a slow etcd */
	return 500 + a->cfg->lease_ttl_s * 100;
}

static int grant_lease(struct agent *a)
{
	int rc = srv_etcd_lease_grant(&a->etcd, a->cfg->lease_ttl_s, &a->lease);

	if (rc == 0)
		atomic_store(&a->cl->lease_id, a->lease);
	return rc;
}

/* Our member key, under our lease. 0, -EEXIST (another process has the
 * node name), or -errno. */
static int register_member(struct agent *a)
{
	char key[400];
	struct srv_etcd_kv kv;
	int rc;

	snprintf(key, sizeof(key), "%s%s", a->k_members, a->cfg->node);
	rc = srv_etcd_create(&a->etcd, key, a->cfg->advertise, a->lease, &kv);
	if (rc == 1) {
		if (strcmp(kv.value, a->cfg->advertise))
			return -EEXIST;
		/* ours, from a process of ours that is gone: take it over */
		rc = srv_etcd_put(&a->etcd, key, a->cfg->advertise, a->lease);
	}
	return rc;
}

/* The members' names and URLs into the shared record: a member keeps
 * its index for the life of the process (acks are kept by index). */
static void update_members(struct agent *a, const struct srv_etcd_kv *kvs, int n)
{
	struct srv_cl_shm *cl = a->cl;
	size_t plen = strlen(a->k_members);
	uint32_t nm = atomic_load(&cl->nmembers);
	int self = atomic_load(&cl->self);

	srv_cl_write_begin(cl);
	for (int i = 0; i < n; i++) {
		const char *node = kvs[i].key + plen;
		uint32_t j;

		if (strncmp(kvs[i].key, a->k_members, plen) || !*node ||
		    strlen(node) >= SRV_CL_NAME_MAX || kvs[i].vlen >= SRV_CL_URL_MAX)
			continue;
		for (j = 0; j < nm && strcmp(cl->members[j].node, node); j++)
			;
		if (j == nm) {
			if (nm == SRV_CL_MEMBERS_MAX)
				continue;
			snprintf(cl->members[j].node, SRV_CL_NAME_MAX, "%s", node);
			nm++;
		}
		snprintf(cl->members[j].url, SRV_CL_URL_MAX, "%.*s", (int)(SRV_CL_URL_MAX - 1), kvs[i].value);
		if (!strcmp(node, a->cfg->node))
			self = (int)j;
	}
	atomic_store(&cl->nmembers, nm);
	atomic_store(&cl->self, self);
	srv_cl_write_end(cl);
}

static void set_primary_url(struct agent *a, const char *url)
{
	srv_cl_write_begin(a->cl);
	snprintf(a->cl->primary_url, SRV_CL_URL_MAX, "%s", url);
	srv_cl_write_end(a->cl);
}

static const char *url_of(struct agent *a, const char *node)
{
	uint32_t nm = atomic_load(&a->cl->nmembers);

	for (uint32_t i = 0; i < nm; i++)
		if (!strcmp(a->cl->members[i].node, node))
			return a->cl->members[i].url;
	return NULL;
}

/* --- fencing a term ------------------------------------------------------------ */

/* From now on nothing of a term below t is applied or acknowledged here;
 * then our position goes to etcd for t's candidate. */
static int fence(struct agent *a, uint64_t t)
{
	struct srv_cl_proc *p = a->p;
	char key[400], val[32];
	uint64_t pos;
	int rc;

	pthread_mutex_lock(&p->follow_mtx);
	rc = srv_cl_proc_save(p, t, NULL);
	if (rc == 0) {
		atomic_store(&a->cl->max_term, t);
		if (atomic_load(&a->cl->role) == SRV_CL_PRIMARY && atomic_load(&a->cl->term) < t &&
		    !ENG_FP("cluster.no_fence")) {
			atomic_store(&a->cl->writable, 0);
			atomic_store(&a->cl->role, SRV_CL_CANDIDATE);
			srv_warn("cluster: term %" PRIu64 " began: this member is no longer "
				 "the primary", t);
		}
	}
	/* everything in our log, durable or not: a member that holds more
	 * than the candidate makes it step back */
	pos = eng_top_version(p->db);
	pthread_mutex_unlock(&p->follow_mtx);
	if (rc) {
		srv_error("cluster: saving %s/%s: %s (term %" PRIu64 " not fenced)",
			  a->cfg->data_dir, SRV_CL_STATE_FILE, strerror(-rc), t);
		return rc;
	}
	snprintf(key, sizeof(key), "%s%" PRIu64 "/%s", a->k_pos, t, a->cfg->node);
	snprintf(val, sizeof(val), "%" PRIu64, pos);
	return srv_etcd_put(&a->etcd, key, val, a->lease);
}

/* --- taking and leaving leadership ------------------------------------------------ */

static void step_down(struct agent *a, const char *why)
{
	struct srv_cl_shm *cl = a->cl;

	if (atomic_load(&cl->role) != SRV_CL_PRIMARY || ENG_FP("cluster.no_fence"))
		return;
	atomic_store(&cl->writable, 0);
	atomic_store(&cl->lease_until_ms, 0);
	atomic_store(&cl->role, SRV_CL_CANDIDATE);
	srv_warn("cluster: no longer the primary of term %" PRIu64 ": %s",
		 atomic_load(&cl->term), why);
}

static void resign(struct agent *a, const char *why)
{
	step_down(a, why);
	(void)srv_etcd_delete_if(&a->etcd, a->k_leader, a->cfg->node);
	a->resign_until = srv_mono_ms() + RESIGN_BACKOFF_MS + (uint64_t)(rand() % 500);
}

struct peer_pos {
	int answered;
	uint64_t version;
	int etcd_ok;
};

static void ask_peer(struct agent *a, const char *url, struct peer_pos *pp)
{
	struct srv_cl_reply r;

	memset(pp, 0, sizeof(*pp));
	if (srv_cl_http_call(a->http, url, "GET", "/cluster/status", NULL, 0, PEER_TIMEOUT_MS,
			     &r) || r.status != 200) {
		srv_cl_reply_free(&r);
		return;
	}
	if (srv_json_u64(r.body, r.len, "version", &pp->version) == 0) {
		pp->answered = 1;
		pp->etcd_ok = srv_json_true(r.body, r.len, "etcd_ok");
	}
	srv_cl_reply_free(&r);
}

/* Whether a peer that can reach etcd is ahead of us: then it should
 * lead, and we do not try. -1: too few answered to make a majority. */
static int peer_ahead(struct agent *a, uint64_t mine)
{
	struct srv_cl_view v;
	int answered = 1;

	srv_cl_read_text(a->cl, &v);
	for (uint32_t i = 0; i < v.nmembers; i++) {
		struct peer_pos pp;

		if ((int)i == v.self || !v.url[i][0])
			continue;
		ask_peer(a, v.url[i], &pp);
		if (!pp.answered)
			continue;
		answered++;
		if (pp.etcd_ok && (pp.version > mine ||
				   (pp.version == mine && strcmp(v.node[i], a->cfg->node) < 0)))
			return 1;
	}
	return answered > a->cfg->group_size / 2 ? 0 : -1;
}

/* The term's first version, written before anything else of the term:
 * a member that copied it outranks, in an election, every member whose
 * newest write is of an older term, so a write of an older term that
 * this primary passes on is never undone by such a member later (Raft's
 * no-op entry at the start of a term). Reads wait until a majority has
 * it (it is the newest version), so they show nothing a later primary
 * could lack. */
static int write_term_mark(struct agent *a)
{
	uint64_t v;
	int want, rc;

	pthread_mutex_lock(&a->p->follow_mtx);
	for (int tries = 0;; tries++) {
		rc = eng_term_mark(a->p->db, 0, &v, &want);
		if (rc != -EAGAIN || tries > 5000)
			break;
		if (want && (rc = eng_sync_wait(a->p->db, eng_sync_ticket(a->p->db))))
			break;
		usleep(1000);
	}
	pthread_mutex_unlock(&a->p->follow_mtx);
	return rc;
}

static void promote(struct agent *a, uint64_t t, uint64_t prev_end)
{
	struct srv_cl_proc *p = a->p;
	struct srv_cl_shm *cl = a->cl;
	struct srv_cl_history h;
	int rc;

	pthread_mutex_lock(&p->state_mtx);
	h = p->st.hist;
	pthread_mutex_unlock(&p->state_mtx);
	(void)srv_cl_history_add(&h, t, prev_end);
	if ((rc = srv_cl_proc_save(p, t, &h)) ||
	    (rc = eng_version_floor(a->p->db, srv_cl_term_base(t) - 1)) ||
	    (rc = write_term_mark(a))) {
		srv_error("cluster: cannot begin term %" PRIu64 ": %s", t, strerror(-rc));
		resign(a, "its state could not be saved");
		return;
	}
	srv_cl_write_begin(cl);
	cl->hist = h;
	snprintf(cl->primary_url, SRV_CL_URL_MAX, "%s", a->cfg->advertise);
	srv_cl_write_end(cl);
	for (unsigned i = 0; i < SRV_CL_MEMBERS_MAX; i++) {
		atomic_store(&cl->members[i].acked, 0);
		atomic_store(&cl->members[i].acked_ms, 0);
	}
	atomic_store(&cl->term, t);
	atomic_store(&cl->lease_until_ms, a->lease_valid_until);
	atomic_store(&cl->repl_error, SRV_CL_REPL_OK);
	atomic_store(&cl->role, SRV_CL_PRIMARY);
	atomic_store(&cl->writable, 1);
	atomic_fetch_add(&cl->failovers, 1);
	/* the replicas need a tick to hear of us and an ack to count:
	 * as much time as a replica has before it counts as unreachable */
	a->alone_since = srv_mono_ms() + REACH_MS;
	srv_info("cluster: primary of term %" PRIu64 " from version %" PRIu64, t, prev_end);
	srv_notify("STATUS=primary of term %" PRIu64, t);
}

/* No leader: try to become it. */
static void campaign(struct agent *a, uint64_t term, uint64_t term_rev)
{
	struct srv_cl_proc *p = a->p;
	uint64_t mine = eng_top_version(p->db), t, best = 0, deadline;
	char prefix[400];
	int rc, count = 0, below = 0;

	if (srv_mono_ms() < a->resign_until || peer_ahead(a, mine) != 0)
		return;
	pthread_mutex_lock(&p->state_mtx);
	t = (term > p->st.max_term ? term : p->st.max_term) + 1;
	pthread_mutex_unlock(&p->state_mtx);
	if ((rc = srv_etcd_campaign(&a->etcd, a->k_leader, a->cfg->node, a->lease, a->k_term,
				    term_rev, t)) != 1)
		return;
	srv_info("cluster: won the election of term %" PRIu64 "; waiting for a majority to "
		 "fence it", t);
	if (fence(a, t)) {
		resign(a, "it could not fence its own term");
		return;
	}
	mine = eng_top_version(p->db);
	snprintf(prefix, sizeof(prefix), "%s%" PRIu64 "/", a->k_pos, t);
	/* Raft's rule: lead once a majority has fenced at positions no newer
	 * than ours. A write acknowledged beyond our position would be on a
	 * majority, and no majority is then left to have fenced below us; a
	 * member ahead of us holds only what the group never acknowledged
	 * (it diverged, and takes a full copy when it follows us). */
	for (deadline = srv_mono_ms() + FENCE_WAIT_MS; srv_mono_ms() < deadline && !stop_signal;) {
		struct srv_etcd_kv kvs[SRV_CL_MEMBERS_MAX];
		int n = srv_etcd_list(&a->etcd, prefix, kvs, SRV_CL_MEMBERS_MAX);

		count = 0;
		below = 0;
		best = 0;
		for (int i = 0; i < n; i++) {
			uint64_t v = strtoull(kvs[i].value, NULL, 10);
			count++;
			below += v <= mine;
			if (v > best)
				best = v;
		}
		if (below > a->cfg->group_size / 2 || count >= a->cfg->group_size)
			break;
		usleep(100 * 1000);
	}
	if (below <= a->cfg->group_size / 2) {
		srv_warn("cluster: term %" PRIu64 ": %d of %d members fenced it at or below our "
			 "version %" PRIu64 " (newest %" PRIu64 "); resigning", t, below,
			 a->cfg->group_size, mine, best);
		resign(a, "no majority fenced its term at or below its version");
		return;
	}
	promote(a, t, mine);
}

/* --- one tick -------------------------------------------------------------------- */

static int majority_reachable(struct agent *a)
{
	struct srv_cl_shm *cl = a->cl;
	uint32_t nm = atomic_load(&cl->nmembers);
	int self = atomic_load(&cl->self), n = 1;
	uint64_t now = srv_mono_ms();

	for (uint32_t i = 0; i < nm; i++)
		if ((int)i != self && now - atomic_load(&cl->members[i].acked_ms) < REACH_MS)
			n++;
	return n > a->cfg->group_size / 2;
}

static void tick(struct agent *a)
{
	struct srv_cl_shm *cl = a->cl;
	struct srv_etcd_kv leader, term, kvs[SRV_CL_MEMBERS_MAX + 4];
	uint64_t t0 = srv_boot_ms(), t = 0, term_rev = 0;
	int64_t ttl = 0;
	int rc, n, have_leader;

	rc = srv_etcd_lease_keepalive(&a->etcd, a->lease, &ttl);
	if (rc) {
		if (srv_mono_ms() - a->etcd_down_logged > 10000) {
			srv_warn("cluster: etcd: %s", a->etcd.err);
			srv_notify("STATUS=etcd unreachable: %s", a->etcd.err);
			a->etcd_down_logged = srv_mono_ms();
		}
		if (srv_boot_ms() >= a->lease_valid_until)
			step_down(a, "its lease may have ended while etcd was unreachable");
		return;
	}
	atomic_store(&cl->etcd_ok_ms, srv_mono_ms());
	if (ttl <= 0) {
		step_down(a, "its etcd lease ended");
		if (grant_lease(a) || register_member(a))
			return;
		a->lease_valid_until = 0;
		return;
	}
	a->lease_valid_until = t0 + (uint64_t)ttl * 1000 - (uint64_t)lease_margin_ms(a);
	rc = srv_etcd_get(&a->etcd, a->k_leader, &leader);
	if (rc && rc != -ENOENT)
		return;
	have_leader = rc == 0;
	if (srv_etcd_get(&a->etcd, a->k_term, &term) == 0) {
		t = strtoull(term.value, NULL, 10);
		term_rev = term.mod_rev;
	} else if (a->etcd.err[0] && rc != -ENOENT) {
		return;
	}
	if ((n = srv_etcd_list(&a->etcd, a->k_members, kvs, SRV_CL_MEMBERS_MAX + 4)) > 0)
		update_members(a, kvs, n);
	if (t > atomic_load(&cl->max_term) && fence(a, t))
		return;
	if (atomic_load(&cl->deposed) > atomic_load(&cl->term))
		step_down(a, "a member named a newer term");
	if (have_leader && !strcmp(leader.value, a->cfg->node) && leader.lease != a->lease) {
		/* the key of a process of ours that is gone (we hold the data
		 * directory's lock): no need to wait for its lease to end */
		(void)srv_etcd_delete_if(&a->etcd, a->k_leader, a->cfg->node);
		return;
	}
	if (have_leader && !strcmp(leader.value, a->cfg->node) && leader.lease == a->lease) {
		if (atomic_load(&cl->role) != SRV_CL_PRIMARY) {
			resign(a, "leadership without a finished promotion");
			return;
		}
		atomic_store(&cl->lease_until_ms, a->lease_valid_until);
		if (majority_reachable(a)) {
			a->alone_since = srv_mono_ms();
		} else if (srv_mono_ms() > a->alone_since + ALONE_MS) {
			resign(a, "no majority of the group reached it");
			/* the others elect one of them; we do not try soon */
			a->resign_until = srv_mono_ms() + (uint64_t)a->cfg->lease_ttl_s * 2000;
		}
		return;
	}
	if (have_leader) {
		const char *url = url_of(a, leader.value);

		if (atomic_load(&cl->role) == SRV_CL_PRIMARY)
			step_down(a, "another member leads");
		if (!url)
			return;
		if (strcmp(cl->primary_url, url))
			set_primary_url(a, url);
		if (atomic_load(&cl->term) != t)
			atomic_store(&cl->term, t);
		if (atomic_load(&cl->role) == SRV_CL_CANDIDATE ||
		    strcmp(a->following, leader.value)) {
			snprintf(a->following, sizeof(a->following), "%.63s", leader.value);
			if (atomic_load(&cl->role) == SRV_CL_CANDIDATE)
				atomic_store(&cl->role, SRV_CL_REPLICA);
			srv_info("cluster: following %s (%s), term %" PRIu64, leader.value, url, t);
			srv_notify("STATUS=replica of %s, term %" PRIu64, leader.value, t);
		}
		return;
	}
	if (atomic_load(&cl->role) != SRV_CL_CANDIDATE) {
		step_down(a, "the group has no leader");
		atomic_store(&cl->role, SRV_CL_CANDIDATE);
	}
	if (cl->primary_url[0])
		set_primary_url(a, "");
	campaign(a, t, term_rev);
}

/* --- the process ------------------------------------------------------------------- */

/* Until etcd answers: a lease, our member key, the group size. 0, or
 * the exit status. */
static int join(struct agent *a)
{
	struct srv_etcd_kv kv;
	char want[64];
	int backoff = 200, rc;
	uint64_t old = atomic_load(&a->cl->lease_id);

	for (;;) {
		if (stop_signal)
			return 0;
		if (old && srv_etcd_lease_revoke(&a->etcd, old) == 0)
			old = 0; /* a process of ours before this one held it */
		if (!old && grant_lease(a) == 0)
			break;
		srv_warn("cluster: etcd unreachable (%s); retrying in %d ms", a->etcd.err, backoff);
		srv_notify("STATUS=waiting for etcd: %s", a->etcd.err);
		usleep((useconds_t)backoff * 1000);
		backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
	}
	snprintf(want, sizeof(want), "group_size=%d", a->cfg->group_size);
	rc = srv_etcd_create(&a->etcd, a->k_config, want, 0, &kv);
	if (rc == 1 && strcmp(kv.value, want)) {
		srv_error("cluster: group '%s' in etcd has %s, but this member was started with "
			  "--group-size %d", a->cfg->cluster, kv.value, a->cfg->group_size);
		return SRV_CLUSTER_EXIT_REFUSED;
	}
	if (rc < 0)
		return join(a);
	rc = register_member(a);
	if (rc == -EEXIST) {
		srv_error("cluster: node name '%s' is in use in group '%s' by another member "
			  "(a different --advertise); names must be unique", a->cfg->node,
			  a->cfg->cluster);
		return SRV_CLUSTER_EXIT_REFUSED;
	}
	return 0;
}

static int init_state(struct srv_cl_proc *p)
{
	char why[256] = "";
	int rc = srv_cl_state_load(p->cfg->data_dir, &p->st, why, sizeof(why));

	if (rc == -ENOENT) {
		memset(&p->st, 0, sizeof(p->st));
		snprintf(p->st.cluster, sizeof(p->st.cluster), "%s", p->cfg->cluster);
		snprintf(p->st.node, sizeof(p->st.node), "%s", p->cfg->node);
		p->st.group_size = (unsigned)p->cfg->group_size;
		rc = srv_cl_state_save(p->cfg->data_dir, &p->st);
	}
	if (rc)
		srv_error("cluster: %s/%s: %s", p->cfg->data_dir, SRV_CL_STATE_FILE,
			  why[0] ? why : strerror(-rc));
	return rc;
}

int srv_cluster_main(const struct srv_cluster_args *args)
{
	struct srv_cl_proc p = { .cfg = args->cfg, .db = args->db, .cl = args->cl };
	struct agent a = { .p = &p, .cfg = args->cfg, .cl = args->cl };
	const char *c = args->cfg->cluster;
	pthread_t repl;
	int rc, code, repl_on = 0;

	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	pthread_mutex_init(&p.follow_mtx, NULL);
	pthread_mutex_init(&p.state_mtx, NULL);
	if (init_state(&p))
		return 1;
	srv_cl_write_begin(a.cl);
	a.cl->hist = p.st.hist;
	srv_cl_write_end(a.cl);
	atomic_store(&a.cl->max_term, p.st.max_term);
	snprintf(a.k_leader, sizeof(a.k_leader), "/caskd/%s/leader", c);
	snprintf(a.k_term, sizeof(a.k_term), "/caskd/%s/term", c);
	snprintf(a.k_members, sizeof(a.k_members), "/caskd/%s/members/", c);
	snprintf(a.k_config, sizeof(a.k_config), "/caskd/%s/config", c);
	snprintf(a.k_pos, sizeof(a.k_pos), "/caskd/%s/pos/", c);
	if (!(a.base = event_base_new()) || !(a.http = srv_cl_http_new(a.base)))
		return 1;
	if (srv_etcd_init(&a.etcd, a.http, args->cfg->etcd, ETCD_TIMEOUT_MS)) {
		srv_error("cluster: %s", a.etcd.err);
		return SRV_CLUSTER_EXIT_REFUSED;
	}
	srand((unsigned)getpid());
	if ((code = join(&a)) != 0)
		goto out;
	if (pthread_create(&repl, NULL, srv_cl_repl_main, &p) == 0)
		repl_on = 1;
	else
		srv_error("cluster: cannot start the replicator thread");
	while (!stop_signal && !atomic_load(&p.stop)) {
		uint64_t t0 = srv_mono_ms(), dt;

		tick(&a);
		dt = srv_mono_ms() - t0;
		if (dt > 1000)
			srv_warn("cluster: a tick of the agent took %" PRIu64 " ms", dt);
		if (dt < TICK_MS)
			usleep((useconds_t)(TICK_MS - dt) * 1000);
	}
	code = atomic_load(&p.exit_code);
out:
	atomic_store(&p.stop, 1);
	step_down(&a, "it is stopping");
	if (repl_on)
		pthread_join(repl, NULL);
	/* a clean stop hands leadership over at once, not after the lease */
	if (a.lease && (rc = srv_etcd_lease_revoke(&a.etcd, a.lease)) == 0)
		atomic_store(&a.cl->lease_id, 0);
	srv_cl_http_free(a.http);
	event_base_free(a.base);
	return code;
}
