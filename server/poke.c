/* server/poke.c — a thread that sleeps on a shared word and wakes a
 * loop (see poke.h). */
#include "server/poke.h"

#include "server/log.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct srv_poke {
	const struct srv_poke_ops *ops;
	void *arg;
	int efd;
	struct event *poke, *tick;
	pthread_t thread;
	_Atomic int stop;
};

static void *poke_main(void *arg)
{
	struct srv_poke *p = arg;
	uint64_t one = 1;

	while (!atomic_load(&p->stop)) {
		uint32_t seen = p->ops->seq(p->arg);

		if (!p->ops->wanted || p->ops->wanted(p->arg))
			while (write(p->efd, &one, sizeof(one)) < 0 && errno == EINTR)
				;
		p->ops->wait(p->arg, seen, p->ops->tick_ms);
	}
	return NULL;
}

static void on_poke(evutil_socket_t fd, short what, void *arg)
{
	struct srv_poke *p = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		srv_warn("read(eventfd): %s", strerror(errno));
	p->ops->on_wake(p->arg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct srv_poke *p = arg;

	(void)fd;
	(void)what;
	p->ops->on_tick(p->arg);
}

int srv_poke_start(struct event_base *base, const struct srv_poke_ops *ops, void *arg,
		   struct srv_poke **out)
{
	struct srv_poke *p = calloc(1, sizeof(*p));
	struct timeval tick = { ops->tick_ms / 1000, (ops->tick_ms % 1000) * 1000 };

	if (!p)
		return -ENOMEM;
	p->ops = ops;
	p->arg = arg;
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		int rc = -errno;
		free(p);
		return rc;
	}
	p->poke = event_new(base, p->efd, EV_READ | EV_PERSIST, on_poke, p);
	p->tick = event_new(base, -1, EV_PERSIST, on_tick, p);
	if (!p->poke || !p->tick || event_add(p->poke, NULL) || event_add(p->tick, &tick) ||
	    pthread_create(&p->thread, NULL, poke_main, p)) {
		if (p->poke)
			event_free(p->poke);
		if (p->tick)
			event_free(p->tick);
		close(p->efd);
		free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void srv_poke_stop(struct srv_poke *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, 1);
	pthread_join(p->thread, NULL);
	event_free(p->poke);
	event_free(p->tick);
	close(p->efd);
	free(p);
}
