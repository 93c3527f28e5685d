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
#include "workers/wk_proto.h"

/* The scripted server: hands out the queued tasks one per poll, records results. */
struct fake {
	nng_socket sock;
	char url[128];
	pthread_t thread;
	pthread_mutex_t mu;
	struct wk_task queue[8];
	size_t n_queue, next;
	char results[8][512]; /* "success:TOKEN:OUTPUT" / "failure:TOKEN:ERROR:CAUSE" */
	size_t n_results;
	int heartbeats;
	const char *expire_token; /* heartbeats for it get TaskTimedOut */
	atomic_bool stop;
};

static void
reply(struct fake *f, nng_ctx ctx, nng_aio *aio, char *buf, size_t len)
{
	nng_msg *m;
	nng_msg_alloc(&m, 0);
	nng_msg_append(m, buf, len);
	sl_free(buf);
	nng_aio_set_msg(aio, m);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if (nng_aio_result(aio))
		nng_msg_free(m);
	(void)f;
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	nng_ctx ctx;
	nng_aio *aio;
	nng_ctx_open(&ctx, f->sock);
	nng_aio_alloc(&aio, NULL, NULL);
	while (!atomic_load(&f->stop)) {
		nng_aio_set_timeout(aio, 100);
		nng_ctx_recv(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio))
			continue;
		nng_msg *m = nng_aio_get_msg(aio);
		struct wk_msg msg;
		sl_err rc = wk_msg_decode(nng_msg_body(m), nng_msg_len(m), NULL, &msg, NULL);
		nng_msg_free(m);
		char *buf = NULL;
		size_t len = 0;
		if (rc) {
			wk_encode_error(WK_ERR_MALFORMED, "bad", &buf, &len);
			reply(f, ctx, aio, buf, len);
			continue;
		}
		pthread_mutex_lock(&f->mu);
		switch (msg.type) {
		case WK_MSG_POLL:
			if (f->next < f->n_queue)
				wk_encode_tasks(msg.poll_id, &f->queue[f->next++], 1, &buf, &len);
			else
				wk_encode_tasks(msg.poll_id, NULL, 0, &buf, &len);
			break;
		case WK_MSG_SUCCESS: {
			char *out = json_dumps(msg.output, JSON_COMPACT | JSON_ENCODE_ANY);
			snprintf(f->results[f->n_results++], 512, "success:%s:%s", msg.token, out);
			free(out);
			wk_encode_ok(&buf, &len);
			break;
		}
		case WK_MSG_FAILURE:
			snprintf(f->results[f->n_results++], 512, "failure:%s:%s:%s", msg.token,
			         msg.error ? msg.error : "", msg.cause ? msg.cause : "");
			wk_encode_ok(&buf, &len);
			break;
		case WK_MSG_HEARTBEAT:
			f->heartbeats++;
			if (f->expire_token && strcmp(msg.token, f->expire_token) == 0)
				wk_encode_error("TaskTimedOut", "lease expired", &buf, &len);
			else
				wk_encode_ok(&buf, &len);
			break;
		default: wk_encode_error(WK_ERR_UNKNOWN, "?", &buf, &len); break;
		}
		pthread_mutex_unlock(&f->mu);
		wk_msg_clear(&msg);
		reply(f, ctx, aio, buf, len);
	}
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	return NULL;
}

static void
fake_start(struct fake *f)
{
	memset(f, 0, sizeof *f);
	pthread_mutex_init(&f->mu, NULL);
	cr_assert_eq(nng_rep0_open(&f->sock), 0);
	nng_listener l;
	cr_assert_eq(nng_listen(f->sock, "tcp://127.0.0.1:0", &l, 0), 0);
	int port;
	cr_assert_eq(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
	snprintf(f->url, sizeof f->url, "tcp://127.0.0.1:%d", port);
	pthread_create(&f->thread, NULL, fake_main, f);
}

static void
fake_stop(struct fake *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	nng_close(f->sock);
}

static size_t
results(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	size_t n = f->n_results;
	pthread_mutex_unlock(&f->mu);
	return n;
}

static void
wait_results(struct fake *f, size_t n)
{
	for (int i = 0; i < 500 && results(f) < n; i++) {
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
	}
	cr_assert_geq(results(f), n, "server got %zu results, wanted %zu", results(f), n);
}

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
	wait_results(&f, 3);
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
