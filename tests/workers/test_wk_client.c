/*
 * The C worker library against a scripted REP server in this process: real NNG over
 * loopback TCP, real threads.
 */
#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sl_alloc.h"
#include "workers/sluice_worker.h"
#include "tests/workers/fake_server.h"
#include "workers/wk_proto.h"

static void
echo(void *arg, const struct sluice_task *t, struct sluice_result *r)
{
	(void)arg;
	if (strstr(t->input, "\"fail\"")) {
		r->error = strdup("Etl.BadFile");
		r->cause = strdup("line 3 is not JSON");
		return;
	}
	r->output = strndup(t->input, t->input_len);
}

static atomic_int saw_cancel;

static void
slow(void *arg, const struct sluice_task *t, struct sluice_result *r)
{
	(void)arg;
	for (int i = 0; i < 250 && !sluice_task_cancelled(t); i++) {
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
	}
	atomic_store(&saw_cancel, sluice_task_cancelled(t));
	r->output = strdup("\"late\"");
}

static void *
run_worker(void *w)
{
	sluice_worker_run(w);
	return NULL;
}

Test(wk_client, runs_tasks_and_reports_success_and_failure)
{
	sl_alloc_init();
	struct fake f;
	fake_start(&f);
	json_t *in1 = json_pack("{s:s}", "file", "a.jsonl");
	json_t *in2 = json_pack("{s:b}", "fail", 1);
	f.queue[0] = (struct wk_task) { "tok-1", "extract", in1, 60, 0 };
	f.queue[1] = (struct wk_task) { "tok-2", "extract", in2, 60, 0 };
	f.queue[2] = (struct wk_task) { "tok-3", "nobody-serves-this", in1, 60, 0 };
	f.n_queue = 3;

	struct sluice_worker_options o
	        = { .url = f.url, .name = "w1", .concurrency = 2, .poll_wait_ms = 200 };
	sluice_worker_t *w;
	cr_assert_eq(sluice_worker_new(&o, &w), 0);
	cr_assert_eq(sluice_worker_register(w, "extract", echo, NULL), 0);
	cr_assert_eq(sluice_worker_register(w, "extract", echo, NULL), SL_ERR_EXISTS);
	pthread_t th;
	pthread_create(&th, NULL, run_worker, w);
	cr_assert(fake_wait_results(&f, 3), "server got %zu results", fake_results(&f));
	sluice_worker_stop(w);
	pthread_join(th, NULL);

	int seen = 0;
	for (size_t i = 0; i < f.n_results; i++) {
		if (strcmp(f.results[i], "success:tok-1:{\"file\":\"a.jsonl\"}") == 0)
			seen |= 1;
		if (strcmp(f.results[i], "failure:tok-2:Etl.BadFile:line 3 is not JSON") == 0)
			seen |= 2;
		if (strncmp(f.results[i], "failure:tok-3:Worker.UnknownActivity:", 37) == 0)
			seen |= 4;
	}
	cr_assert_eq(seen, 7, "results: %s | %s | %s", f.results[0], f.results[1], f.results[2]);
	struct sluice_worker_stats st;
	sluice_worker_get_stats(w, &st);
	cr_assert_eq(st.tasks_succeeded, 1);
	cr_assert_eq(st.tasks_failed, 2);
	sluice_worker_free(w);
	fake_stop(&f);
	json_decref(in1);
	json_decref(in2);
}

Test(wk_client, heartbeats_and_cancel_on_expired_lease)
{
	sl_alloc_init();
	struct fake f;
	fake_start(&f);
	json_t *in = json_pack("{}");
	f.queue[0] = (struct wk_task) { "tok-hb", "slow", in, 60, 1 };
	f.n_queue = 1;
	f.expire_token = "tok-hb";
	struct sluice_worker_options o = { .url = f.url, .poll_wait_ms = 200 };
	sluice_worker_t *w;
	cr_assert_eq(sluice_worker_new(&o, &w), 0);
	cr_assert_eq(sluice_worker_register(w, "slow", slow, NULL), 0);
	pthread_t th;
	pthread_create(&th, NULL, run_worker, w);
	struct sluice_worker_stats st = { 0 };
	for (int i = 0; i < 400 && st.tasks_cancelled == 0; i++) {
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
		sluice_worker_get_stats(w, &st);
	}
	sluice_worker_stop(w);
	pthread_join(th, NULL);
	cr_assert_eq(st.tasks_cancelled, 1, "the handler's task must be cancelled");
	cr_assert(atomic_load(&saw_cancel), "the handler must see sluice_task_cancelled");
	cr_assert_geq(f.heartbeats, 1);
	cr_assert_eq(f.n_results, 0, "a cancelled task's result is not sent");
	sluice_worker_free(w);
	fake_stop(&f);
	json_decref(in);
}

static atomic_int naps_run, echoes_run;

/* Runs until the server has seen a heartbeat for the task waiting behind it (queue entry
 * 1), then a little longer so the worker has read the answer to it (bounded: 10 s). */
static void
nap(void *arg, const struct sluice_task *t, struct sluice_result *r)
{
	struct fake *f = arg;
	(void)t;
	atomic_fetch_add(&naps_run, 1);
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&f->mu);
		int beats = f->queue_beats[1];
		pthread_mutex_unlock(&f->mu);
		if (beats >= 1)
			break;
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
	}
	struct timespec ts = { 0, 300 * 1000000 };
	nanosleep(&ts, NULL);
	r->output = strdup("\"napped\"");
}

static void
count_echo(void *arg, const struct sluice_task *t, struct sluice_result *r)
{
	atomic_fetch_add(&echoes_run, 1);
	echo(arg, t, r);
}

/* Three tasks in one poll's answer, run in turn by one thread. hb-late waits behind nap:
 * its lease is beaten for while it waits; when expire is set the server refuses that
 * heartbeat and the task is dropped without running. */
static void
run_three_in_one_poll(struct fake *f, bool expire)
{
	sl_alloc_init();
	atomic_store(&naps_run, 0);
	atomic_store(&echoes_run, 0);
	fake_start(f);
	json_t *in = json_pack("{s:i}", "n", 1);
	f->queue[0] = (struct wk_task) { "tok-nap", "nap", in, 60, 0 };
	f->queue[1] = (struct wk_task) { "hb-late", "echo", in, 60, 1 };
	f->queue[2] = (struct wk_task) { "tok-last", "echo", in, 60, 0 };
	f->n_queue = 3;
	if (expire)
		f->expire_token = "hb-late";
	struct sluice_worker_options o = { .url = f->url,
		                           .name = "batcher",
		                           .concurrency = 1,
		                           .tasks_per_poll = 8,
		                           .poll_wait_ms = 200 };
	sluice_worker_t *w;
	cr_assert_eq(sluice_worker_new(&o, &w), 0);
	cr_assert_eq(sluice_worker_register(w, "nap", nap, f), 0);
	cr_assert_eq(sluice_worker_register(w, "echo", count_echo, NULL), 0);
	pthread_t th;
	pthread_create(&th, NULL, run_worker, w);
	cr_assert(fake_wait_results(f, expire ? 2 : 3), "server got %zu results", fake_results(f));
	sluice_worker_stop(w);
	pthread_join(th, NULL);
	struct sluice_worker_stats st;
	sluice_worker_get_stats(w, &st);
	cr_assert_eq(f->most_per_poll, 3, "one poll should have taken all three tasks");
	cr_assert_str_eq(fake_result_for(f, "tok-nap"), "success:tok-nap:\"napped\"");
	cr_assert_str_eq(fake_result_for(f, "tok-last"), "success:tok-last:{\"n\":1}");
	cr_assert_geq(f->queue_beats[1], 1, "the waiting task's lease was not beaten for");
	cr_assert_eq(f->queue_beats[0] + f->queue_beats[2], 0, "beats for tasks without one");
	if (expire) {
		cr_assert_null(fake_result_for(f, "hb-late"), "a task whose lease ended ran");
		cr_assert_eq(atomic_load(&echoes_run), 1);
		cr_assert_eq(st.tasks_cancelled, 1);
		cr_assert_eq(st.tasks_succeeded, 2);
	} else {
		cr_assert_str_eq(fake_result_for(f, "hb-late"), "success:hb-late:{\"n\":1}");
		cr_assert_eq(atomic_load(&echoes_run), 2);
		cr_assert_eq(st.tasks_succeeded, 3);
	}
	cr_assert_eq(atomic_load(&naps_run), 1);
	sluice_worker_free(w);
	fake_stop(f);
	json_decref(in);
}

Test(wk_client, several_tasks_per_poll_run_in_turn_and_waiting_ones_are_beaten_for)
{
	struct fake f;
	run_three_in_one_poll(&f, false);
}

Test(wk_client, a_waiting_task_whose_lease_ended_is_dropped_unrun)
{
	struct fake f;
	run_three_in_one_poll(&f, true);
}

Test(wk_client, stop_while_server_is_absent_returns)
{
	/* nothing listens here: the dialer keeps retrying; stop must still end run() */
	struct sluice_worker_options o = { .url = "tcp://127.0.0.1:9", .poll_wait_ms = 200 };
	sluice_worker_t *w;
	cr_assert_eq(sluice_worker_new(&o, &w), 0);
	cr_assert_eq(sluice_worker_register(w, "x", echo, NULL), 0);
	pthread_t th;
	pthread_create(&th, NULL, run_worker, w);
	struct timespec ts = { 0, 300 * 1000000 };
	nanosleep(&ts, NULL);
	sluice_worker_stop(w);
	pthread_join(th, NULL);
	sluice_worker_free(w);
}

Test(wk_client, bad_options_are_refused)
{
	sluice_worker_t *w;
	struct sluice_worker_options o = { 0 };
	cr_assert_eq(sluice_worker_new(&o, &w), SL_ERR_INVALID_ARG);
	o.url = "nonsense://x";
	cr_assert_eq(sluice_worker_new(&o, &w), SL_ERR_INVALID_ARG);
	o.url = "tcp://127.0.0.1:9";
	cr_assert_eq(sluice_worker_new(&o, &w), 0);
	cr_assert_eq(sluice_worker_run(w), SL_ERR_INVALID_ARG, "no handlers registered");
	cr_assert_eq(sluice_worker_register(w, "", echo, NULL), SL_ERR_INVALID_ARG);
	sluice_worker_free(w);
}
