/*
 * test_srv_bridge.c - posts from many threads all run on the loop thread, in order per
 * producer, and nothing is lost when the bridge is freed with items still queued.
 */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>

#include "common/sl_alloc.h"
#include "server/srv.h"

#define PRODUCERS    4
#define PER_PRODUCER 5000

struct item {
	int producer, seq;
};

static struct {
	struct event_base *base;
	srv_bridge_t *bridge;
	pthread_t loop_thread;
	int next_seq[PRODUCERS];
	int delivered, wrong_thread, out_of_order;
	struct item items[PRODUCERS][PER_PRODUCER];
} t;

static void
on_item(void *arg)
{
	struct item *it = arg;
	if (!pthread_equal(pthread_self(), t.loop_thread))
		t.wrong_thread++;
	if (it->seq != t.next_seq[it->producer])
		t.out_of_order++;
	t.next_seq[it->producer] = it->seq + 1;
	if (++t.delivered == PRODUCERS * PER_PRODUCER)
		event_base_loopbreak(t.base);
}

static void *
producer(void *arg)
{
	int p = (int)(intptr_t)arg;
	for (int i = 0; i < PER_PRODUCER; i++) {
		t.items[p][i] = (struct item) { p, i };
		while (srv_bridge_post(t.bridge, on_item, &t.items[p][i]) != SL_OK)
			;
	}
	return NULL;
}

static void
on_guard(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(t.base); /* a hang guard, not a timing check */
}

static void
setup(void)
{
	sl_alloc_init();
	cr_assert_eq(evthread_use_pthreads(), 0);
	memset(&t, 0, sizeof t);
	t.base = event_base_new();
	cr_assert_not_null(t.base);
	cr_assert_eq(srv_bridge_new(t.base, &t.bridge), SL_OK);
	t.loop_thread = pthread_self();
}

static void
teardown(void)
{
	srv_bridge_free(t.bridge);
	event_base_free(t.base);
}

TestSuite(srv_bridge, .init = setup, .fini = teardown);

Test(srv_bridge, many_threads_all_on_loop_thread_in_order)
{
	struct event *guard = evtimer_new(t.base, on_guard, NULL);
	struct timeval tv = { 60, 0 };
	evtimer_add(guard, &tv);
	pthread_t th[PRODUCERS];
	for (int p = 0; p < PRODUCERS; p++)
		cr_assert_eq(pthread_create(&th[p], NULL, producer, (void *)(intptr_t)p), 0);
	event_base_dispatch(t.base);
	for (int p = 0; p < PRODUCERS; p++)
		pthread_join(th[p], NULL);
	event_free(guard);
	cr_assert_eq(t.delivered, PRODUCERS * PER_PRODUCER);
	cr_assert_eq(t.wrong_thread, 0);
	cr_assert_eq(t.out_of_order, 0);
	for (int p = 0; p < PRODUCERS; p++)
		cr_assert_eq(t.next_seq[p], PER_PRODUCER);
}

static int freed_count;

static void
count_run(void *arg)
{
	(void)arg;
	freed_count++;
}

Test(srv_bridge, free_runs_what_is_still_queued)
{
	freed_count = 0;
	for (int i = 0; i < 10; i++)
		cr_assert_eq(srv_bridge_post(t.bridge, count_run, NULL), SL_OK);
	srv_bridge_free(t.bridge);
	t.bridge = NULL;
	cr_assert_eq(freed_count, 10);
}

Test(srv_bridge, post_fails_cleanly_without_memory)
{
	freed_count = 0;
	sl_alloc_fail_after(0);
	cr_assert_eq(srv_bridge_post(t.bridge, count_run, NULL), SL_ERR_NOMEM);
	sl_alloc_fail_after(-1);
	cr_assert_eq(srv_bridge_post(t.bridge, count_run, NULL), SL_OK);
	event_base_loop(t.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	cr_assert_eq(freed_count, 1);
}
