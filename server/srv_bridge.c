/*
 * srv_bridge.c - hands work from NNG (or any) threads to the loop thread.
 *
 * A mutex-protected FIFO and one event: posting appends and activates the event, the loop
 * drains the whole queue in one callback. Only the first post after a drain activates the
 * event, so a burst costs one wake-up.
 */
#include <event2/event.h>
#include <pthread.h>

#include "common/sl_alloc.h"
#include "server/srv.h"

struct bridge_item {
	struct bridge_item *next;
	srv_bridge_fn fn;
	void *arg;
};

struct srv_bridge {
	pthread_mutex_t mu;
	struct bridge_item *head, *tail; /* guarded by mu */
	bool armed;                      /* event activated, not yet drained; guarded by mu */
	struct event *ev;
};

static struct bridge_item *
take_all(srv_bridge_t *b)
{
	pthread_mutex_lock(&b->mu);
	struct bridge_item *list = b->head;
	b->head = b->tail = NULL;
	b->armed = false;
	pthread_mutex_unlock(&b->mu);
	return list;
}

static void
run_all(struct bridge_item *it)
{
	while (it) {
		struct bridge_item *next = it->next;
		it->fn(it->arg);
		sl_free(it);
		it = next;
	}
}

/* Loop thread. */
static void
on_bridge(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_all(take_all(arg));
}

sl_err
srv_bridge_new(struct event_base *base, srv_bridge_t **out)
{
	srv_bridge_t *b = SL_NEW(srv_bridge_t);
	if (!b)
		return SL_ERR_NOMEM;
	if (pthread_mutex_init(&b->mu, NULL) != 0) {
		sl_free(b);
		return SL_ERR_INTERNAL;
	}
	b->ev = event_new(base, -1, 0, on_bridge, b);
	if (!b->ev) {
		pthread_mutex_destroy(&b->mu);
		sl_free(b);
		return SL_ERR_NOMEM;
	}
	*out = b;
	return SL_OK;
}

void
srv_bridge_free(srv_bridge_t *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	event_free(b->ev);
	b->ev = NULL;
	pthread_mutex_unlock(&b->mu);
	/* items may post again while running: loop until the queue stays empty */
	struct bridge_item *list;
	while ((list = take_all(b)) != NULL)
		run_all(list);
	pthread_mutex_destroy(&b->mu);
	sl_free(b);
}

sl_err
srv_bridge_post(srv_bridge_t *b, srv_bridge_fn fn, void *arg)
{
	struct bridge_item *it = sl_malloc(sizeof *it);
	if (!it)
		return SL_ERR_NOMEM;
	it->next = NULL;
	it->fn = fn;
	it->arg = arg;
	pthread_mutex_lock(&b->mu);
	if (b->tail)
		b->tail->next = it;
	else
		b->head = it;
	b->tail = it;
	bool wake = !b->armed;
	b->armed = true;
	/* activate under the lock so srv_bridge_free cannot free ev in between */
	if (wake && b->ev)
		event_active(b->ev, EV_READ, 0);
	pthread_mutex_unlock(&b->mu);
	return SL_OK;
}
