/* server/cluster_proc.c — the cluster process's shared state: its
 * durable save (see cluster_proc.h). */
#include "server/cluster_proc.h"

#include "server/config.h"

int srv_cl_proc_save(struct srv_cl_proc *p, uint64_t max_term,
		     const struct srv_cl_history *h)
{
	struct srv_cl_state next;
	int rc;

	pthread_mutex_lock(&p->state_mtx);
	next = p->st;
	if (max_term > next.max_term)
		next.max_term = max_term;
	if (h)
		next.hist = *h;
	rc = srv_cl_state_save(p->cfg->data_dir, &next);
	if (!rc)
		p->st = next;
	pthread_mutex_unlock(&p->state_mtx);
	return rc;
}
