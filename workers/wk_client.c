/*
 * wk_client.c - the C worker library (sluice_worker.h) over NNG REQ.
 *
 * Threads: `concurrency` runner threads, each with its own nng_ctx, poll for up to
 * `tasks_per_poll` tasks and run them in turn (with more than one, each result is sent as
 * soon as its handler returns, on a context of its own, and the runner waits for all the
 * acknowledgements before it polls again: the results of a poll share the server's
 * commits); one heartbeat thread with its own ctx beats
 * for every task held (running or waiting its turn) that has a HeartbeatSeconds; the caller's
 * thread sits in sluice_worker_run waiting on a self-pipe (written by stop() or by the signal
 * handler) and then drives the shutdown.
 */
#include "workers/sluice_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "common/sl_log.h"
#include "workers/wk_proto.h"

#define REPORT_DEADLINE_MS 30000 /* keep trying to deliver a result this long */

enum slot_phase { PHASE_IDLE, PHASE_POLLING, PHASE_RUNNING, PHASE_REPORTING };

struct handler {
	char *name;
	sluice_handler_fn fn;
	void *arg;
};

/* A task a runner holds from its poll's answer until its handler returns. */
struct held {
	char token[1025]; /* under w->mu */
	uint32_t heartbeat_s;
	int64_t next_beat_ms;
	bool live; /* under w->mu: the heartbeat thread beats for it */
	atomic_bool cancelled;
	/* its result in flight (tasks_per_poll > 1): sent, its reply awaited by report_end */
	nng_ctx rctx;
	nng_aio *raio;
	char *rbuf;
	size_t rlen;
	bool rsent, rsuccess;
};

/* One runner thread and the tasks of its last poll. */
struct slot {
	struct sluice_worker *w;
	pthread_t thread;
	nng_ctx ctx;
	nng_aio *aio;
	enum slot_phase phase; /* under w->mu */
	struct held *held;     /* opt.tasks_per_poll entries */
	size_t n_held;         /* under w->mu */
	unsigned index;
	uint64_t seq;
};

struct sluice_worker {
	struct sluice_worker_options opt;
	char *url, *name, *token, *ca_file, *server_name;
	struct handler *handlers;
	size_t n_handlers;
	const char **activity_names;
	nng_socket sock;
	nng_dialer dialer;
	nng_tls_config *tls;
	struct slot *slots;
	pthread_t beat_thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_bool stopping;
	bool running;
	int wake[2];
	struct sluice_worker_stats stats; /* under mu */
};

static int signal_fd = -1;

static void
on_signal(int sig)
{
	(void)sig;
	if (signal_fd >= 0) {
		char c = 's';
		ssize_t r = write(signal_fd, &c, 1);
		(void)r;
	}
}

const char *
sluice_worker_strerror(int code)
{
	return sl_err_message((sl_err)code);
}

static void
bump(struct sluice_worker *w, uint64_t *counter)
{
	pthread_mutex_lock(&w->mu);
	(*counter)++;
	pthread_mutex_unlock(&w->mu);
}

void
sluice_worker_get_stats(sluice_worker_t *w, struct sluice_worker_stats *out)
{
	pthread_mutex_lock(&w->mu);
	*out = w->stats;
	pthread_mutex_unlock(&w->mu);
}

int
sluice_task_cancelled(const struct sluice_task *task)
{
	const struct held *h = task->internal_;
	return h && atomic_load(&h->cancelled);
}

static char *
dup_opt(const char *s)
{
	return s ? sl_strdup(s) : NULL;
}

static int
open_socket(struct sluice_worker *w)
{
	int rv = nng_req0_open(&w->sock);
	if (rv)
		return rv;
	nng_socket_set_size(w->sock, NNG_OPT_RECVMAXSZ, w->opt.max_message);
	/* Polls carry ids the server dedupes on, so a resend is harmless; keep resends rarer
	 * than a poll's wait so a held poll is not sent twice for nothing. */
	nng_socket_set_ms(w->sock, NNG_OPT_REQ_RESENDTIME,
	                  (nng_duration)w->opt.poll_wait_ms + 30000);
	nng_socket_set_ms(w->sock, NNG_OPT_RECONNMINT, 100);
	nng_socket_set_ms(w->sock, NNG_OPT_RECONNMAXT, 5000);
	if ((rv = nng_dialer_create(&w->dialer, w->sock, w->url)))
		return rv;
	if (strncmp(w->url, "tls+", 4) == 0) {
		if ((rv = nng_tls_config_alloc(&w->tls, NNG_TLS_MODE_CLIENT)))
			return rv;
		if (w->opt.tls_insecure)
			rv = nng_tls_config_auth_mode(w->tls, NNG_TLS_AUTH_MODE_NONE);
		else if (w->ca_file)
			rv = nng_tls_config_ca_file(w->tls, w->ca_file);
		if (!rv && w->server_name)
			rv = nng_tls_config_server_name(w->tls, w->server_name);
		if (!rv)
			rv = nng_dialer_set_ptr(w->dialer, NNG_OPT_TLS_CONFIG, w->tls);
		if (rv)
			return rv;
	}
	/* Non-blocking: the dialer keeps retrying with back-off until the server is there. */
	return nng_dialer_start(w->dialer, NNG_FLAG_NONBLOCK);
}

int
sluice_worker_new(const struct sluice_worker_options *opt, sluice_worker_t **out)
{
	if (!opt || !opt->url || !opt->url[0])
		return SL_ERR_INVALID_ARG;
	struct sluice_worker *w = SL_NEW(struct sluice_worker);
	if (!w)
		return SL_ERR_NOMEM;
	w->opt = *opt;
	w->wake[0] = w->wake[1] = -1;
	if (!w->opt.concurrency)
		w->opt.concurrency = 1;
	if (w->opt.concurrency > 1024)
		w->opt.concurrency = 1024;
	if (!w->opt.poll_wait_ms)
		w->opt.poll_wait_ms = 20000;
	if (w->opt.poll_wait_ms > 60000)
		w->opt.poll_wait_ms = 60000;
	if (!w->opt.max_message)
		w->opt.max_message = 1024 * 1024;
	if (!w->opt.tasks_per_poll)
		w->opt.tasks_per_poll = 1;
	if (w->opt.tasks_per_poll > 64)
		w->opt.tasks_per_poll = 64;
	char host[128] = "worker";
	gethostname(host, sizeof host - 1);
	char defname[160];
	snprintf(defname, sizeof defname, "%s:%d", host, (int)getpid());
	w->url = dup_opt(opt->url);
	w->name = dup_opt(opt->name ? opt->name : defname);
	w->token = dup_opt(opt->token);
	w->ca_file = dup_opt(opt->tls_ca_file);
	w->server_name = dup_opt(opt->tls_server_name);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (!w->url || !w->name || (opt->token && !w->token) || (opt->tls_ca_file && !w->ca_file)
	    || (opt->tls_server_name && !w->server_name)) {
		sluice_worker_free(w);
		return SL_ERR_NOMEM;
	}
	if (open_socket(w)) {
		sluice_worker_free(w);
		return SL_ERR_INVALID_ARG;
	}
	*out = w;
	return SL_OK;
}

int
sluice_worker_register(sluice_worker_t *w, const char *name, sluice_handler_fn fn, void *arg)
{
	if (!name || !name[0] || !fn || w->running)
		return SL_ERR_INVALID_ARG;
	for (size_t i = 0; i < w->n_handlers; i++)
		if (strcmp(w->handlers[i].name, name) == 0)
			return SL_ERR_EXISTS;
	struct handler *h = sl_reallocarray(w->handlers, w->n_handlers + 1, sizeof *h);
	if (!h)
		return SL_ERR_NOMEM;
	w->handlers = h;
	const char **names = sl_reallocarray(w->activity_names, w->n_handlers + 1, sizeof *names);
	if (!names)
		return SL_ERR_NOMEM;
	w->activity_names = names;
	char *copy = sl_strdup(name);
	if (!copy)
		return SL_ERR_NOMEM;
	h[w->n_handlers] = (struct handler) { copy, fn, arg };
	names[w->n_handlers] = copy;
	w->n_handlers++;
	return SL_OK;
}

/* Starts sending buf on ctx (completion on aio). */
static int
send_start(nng_ctx ctx, nng_aio *aio, const char *buf, size_t len, nng_duration timeout)
{
	nng_msg *msg;
	int rv = nng_msg_alloc(&msg, 0);
	if (rv)
		return rv;
	if ((rv = nng_msg_append(msg, buf, len))) {
		nng_msg_free(msg);
		return rv;
	}
	nng_aio_set_msg(aio, msg);
	nng_aio_set_timeout(aio, timeout);
	nng_ctx_send(ctx, aio);
	return 0;
}

static int recv_reply(struct slot *s, nng_ctx ctx, nng_aio *aio, struct wk_msg *reply);

/* Sends buf on ctx and waits for the reply, decoded into reply. */
static int
request(struct slot *s, nng_ctx ctx, nng_aio *aio, const char *buf, size_t len,
        nng_duration timeout, struct wk_msg *reply)
{
	int rv = send_start(ctx, aio, buf, len, timeout);
	if (rv)
		return rv;
	return recv_reply(s, ctx, aio, reply);
}

/* Waits for the send started on aio, then receives and decodes the reply. */
static int
recv_reply(struct slot *s, nng_ctx ctx, nng_aio *aio, struct wk_msg *reply)
{
	nng_aio_wait(aio);
	int rv;
	nng_msg *msg;
	if ((rv = nng_aio_result(aio))) {
		nng_msg_free(nng_aio_get_msg(aio));
		return rv;
	}
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)))
		return rv;
	msg = nng_aio_get_msg(aio);
	/* more tasks than asked for would be tasks nobody runs: refused as a bad reply */
	struct wk_limits lim
	        = { .max_frame = s->w->opt.max_message, .max_tasks = s->w->opt.tasks_per_poll };
	struct sl_error err;
	sl_err rc = wk_msg_decode(nng_msg_body(msg), nng_msg_len(msg), &lim, reply, &err);
	nng_msg_free(msg);
	if (rc) {
		sl_warn("worker", "bad reply from server: %s", err.message);
		return NNG_EPROTO;
	}
	return 0;
}

/* Sleeps up to ms unless the worker is stopping (then returns at once). */
static void
pause_ms(struct sluice_worker *w, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&w->mu);
	while (!atomic_load(&w->stopping))
		if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&w->mu);
}

static void
set_phase(struct slot *s, enum slot_phase p)
{
	pthread_mutex_lock(&s->w->mu);
	s->phase = p;
	pthread_mutex_unlock(&s->w->mu);
}

static const struct handler *
find_handler(struct sluice_worker *w, const char *name)
{
	for (size_t i = 0; i < w->n_handlers; i++)
		if (strcmp(w->handlers[i].name, name) == 0)
			return &w->handlers[i];
	return NULL;
}

/* The result message for res into *buf; *success: it reports a success. */
static sl_err
encode_result(struct sluice_worker *w, const char *token, struct sluice_result *res, char **buf,
              size_t *len, bool *success)
{
	sl_err rc;
	json_t *out = NULL;
	if (res->output && !res->error) {
		json_error_t jerr;
		out = json_loads(res->output, JSON_DECODE_ANY, &jerr);
		if (!out) {
			res->error = sl_strdup("Worker.InvalidOutput");
			res->cause = sl_asprintf("handler output is not JSON: %s", jerr.text);
		}
	}
	*success = out || !res->error;
	if (out)
		rc = wk_encode_success(w->token, token, out, buf, len);
	else
		rc = wk_encode_failure(w->token, token, res->error ? res->error : "Worker.NoResult",
		                       res->cause, buf, len);
	json_decref(out);
	if (rc)
		sl_errorf("worker", "cannot encode the result of task: %s", sl_err_message(rc));
	return rc;
}

static void
count_reply(struct sluice_worker *w, struct wk_msg *reply, bool success)
{
	if (reply->type == WK_MSG_ERROR) {
		sl_warn("worker", "result refused: %s: %s", reply->error,
		        reply->message ? reply->message : "");
		bump(w, &w->stats.results_refused);
	} else {
		bump(w, success ? &w->stats.tasks_succeeded : &w->stats.tasks_failed);
	}
	wk_msg_clear(reply);
}

/* Delivers buf on ctx, retrying transport failures for a while, even while stopping. */
static void
deliver(struct slot *s, nng_ctx ctx, nng_aio *aio, const char *buf, size_t len, bool success)
{
	struct sluice_worker *w = s->w;
	int64_t deadline = sl_clock_now_ms() + REPORT_DEADLINE_MS;
	int64_t backoff = 100;
	for (;;) {
		struct wk_msg reply;
		int rv = request(s, ctx, aio, buf, len, 10000, &reply);
		if (rv == 0) {
			count_reply(w, &reply, success);
			break;
		}
		if (sl_clock_now_ms() + backoff > deadline) {
			sl_warn("worker",
			        "gave up delivering a result: %s (the lease will retry it)",
			        nng_strerror(rv));
			break;
		}
		struct timespec ts = { 0, (long)backoff * 1000000 };
		nanosleep(&ts, NULL);
		backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
	}
}

/* Delivers a result and waits for its acknowledgement. */
static void
report(struct slot *s, const char *token, struct sluice_result *res)
{
	char *buf = NULL;
	size_t len = 0;
	bool success;
	if (encode_result(s->w, token, res, &buf, &len, &success))
		return;
	set_phase(s, PHASE_REPORTING);
	deliver(s, s->ctx, s->aio, buf, len, success);
	sl_free(buf);
}

/* Sends a result on the task's own context without waiting (report_end waits). */
static void
report_begin(struct slot *s, struct held *e, const char *token, struct sluice_result *res)
{
	if (encode_result(s->w, token, res, &e->rbuf, &e->rlen, &e->rsuccess))
		return;
	e->rsent = send_start(e->rctx, e->raio, e->rbuf, e->rlen, 10000) == 0;
}

/* Waits for the reply to a result report_begin sent; a transport failure falls back to
 * deliver's retries. */
static void
report_end(struct slot *s, struct held *e)
{
	if (!e->rbuf)
		return;
	struct wk_msg reply;
	if (e->rsent && recv_reply(s, e->rctx, e->raio, &reply) == 0)
		count_reply(s->w, &reply, e->rsuccess);
	else
		deliver(s, e->rctx, e->raio, e->rbuf, e->rlen, e->rsuccess);
	sl_free(e->rbuf);
	e->rbuf = NULL;
	e->rsent = false;
}

/* Pipelined results when a poll may bring several tasks. */
static void
report_task(struct slot *s, struct held *e, const char *token, struct sluice_result *res)
{
	if (s->w->opt.tasks_per_poll > 1)
		report_begin(s, e, token, res);
	else
		report(s, token, res);
}

static void
unhold(struct sluice_worker *w, struct held *e)
{
	pthread_mutex_lock(&w->mu);
	e->live = false;
	pthread_mutex_unlock(&w->mu);
}

static void
run_task(struct slot *s, const struct wk_task *t, struct held *e)
{
	struct sluice_worker *w = s->w;
	const struct handler *h = find_handler(w, t->activity);
	struct sluice_result res = { 0 };
	char *input = NULL;
	if (atomic_load(&e->cancelled)) { /* its lease ended while it waited its turn */
		unhold(w, e);
		bump(w, &w->stats.tasks_cancelled);
		return;
	}
	input = json_dumps(t->input, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!h || !input) {
		unhold(w, e);
		res.error = sl_strdup(h ? "Worker.OutOfMemory" : "Worker.UnknownActivity");
		res.cause = sl_asprintf("no handler for '%s' in worker %s", t->activity, w->name);
		report_task(s, e, t->token, &res);
		goto out_free;
	}
	set_phase(s, PHASE_RUNNING);

	struct sluice_task task = { .token = t->token,
		                    .activity = t->activity,
		                    .input = input,
		                    .input_len = strlen(input),
		                    .timeout_s = t->timeout_s,
		                    .heartbeat_s = t->heartbeat_s,
		                    .internal_ = e };
	h->fn(h->arg, &task, &res);
	unhold(w, e);
	if (atomic_load(&e->cancelled)) {
		bump(w, &w->stats.tasks_cancelled);
		set_phase(s, PHASE_IDLE);
	} else {
		report_task(s, e, t->token, &res);
	}
out_free:
	free(res.output);
	free(res.error);
	free(res.cause);
	free(input); /* from jansson: goes through sl_free when sl_alloc_init ran, else free */
}

static void *
runner_main(void *arg)
{
	struct slot *s = arg;
	struct sluice_worker *w = s->w;
	int64_t backoff = 100;
	while (!atomic_load(&w->stopping)) {
		char id[160];
		snprintf(id, sizeof id, "%s/%u/%llu", w->name, s->index,
		         (unsigned long long)++s->seq);
		char *buf;
		size_t len;
		if (wk_encode_poll(w->token, id, w->name, w->activity_names, w->n_handlers,
		                   w->opt.tasks_per_poll, w->opt.poll_wait_ms, &buf, &len)) {
			pause_ms(w, 1000);
			continue;
		}
		pthread_mutex_lock(&w->mu);
		bool stop = atomic_load(&w->stopping);
		if (!stop)
			s->phase = PHASE_POLLING;
		pthread_mutex_unlock(&w->mu);
		if (stop) {
			sl_free(buf);
			break;
		}
		bump(w, &w->stats.polls);
		struct wk_msg reply;
		int rv = request(s, s->ctx, s->aio, buf, len,
		                 (nng_duration)w->opt.poll_wait_ms + 15000, &reply);
		sl_free(buf);
		set_phase(s, PHASE_IDLE);
		if (rv) {
			if (atomic_load(&w->stopping))
				break;
			bump(w, &w->stats.reconnects);
			pause_ms(w, backoff);
			backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
			continue;
		}
		backoff = 100;
		if (reply.type == WK_MSG_ERROR) {
			sl_warn("worker", "poll refused: %s: %s", reply.error,
			        reply.message ? reply.message : "");
			wk_msg_clear(&reply);
			pause_ms(w, 2000);
			continue;
		}
		/* every task taken is held (and beaten for) from now until its handler returns */
		int64_t now = sl_clock_now_ms();
		pthread_mutex_lock(&w->mu);
		for (size_t i = 0; i < reply.n_tasks; i++) {
			struct held *e = &s->held[i];
			snprintf(e->token, sizeof e->token, "%s", reply.tasks[i].token);
			e->heartbeat_s = reply.tasks[i].heartbeat_s;
			e->next_beat_ms = now + (int64_t)e->heartbeat_s * 1000 / 3;
			atomic_store(&e->cancelled, false);
			e->live = true;
		}
		s->n_held = reply.n_tasks;
		pthread_mutex_unlock(&w->mu);
		for (size_t i = 0; i < reply.n_tasks; i++)
			run_task(s, &reply.tasks[i], &s->held[i]);
		if (w->opt.tasks_per_poll > 1) {
			set_phase(s, PHASE_REPORTING);
			for (size_t i = 0; i < reply.n_tasks; i++)
				report_end(s, &s->held[i]);
		}
		wk_msg_clear(&reply);
	}
	return NULL;
}

/* Beats for running tasks whose heartbeat is due; marks them cancelled when refused. */
static void *
beat_main(void *arg)
{
	struct sluice_worker *w = arg;
	nng_ctx ctx;
	nng_aio *aio;
	if (nng_ctx_open(&ctx, w->sock))
		return NULL;
	if (nng_aio_alloc(&aio, NULL, NULL)) {
		nng_ctx_close(ctx);
		return NULL;
	}
	struct slot probe = { .w = w };
	for (;;) {
		pthread_mutex_lock(&w->mu);
		bool done = atomic_load(&w->stopping);
		bool busy = false;
		for (unsigned i = 0; i < w->opt.concurrency; i++)
			for (size_t k = 0; k < w->slots[i].n_held; k++)
				busy |= w->slots[i].held[k].live;
		pthread_mutex_unlock(&w->mu);
		if (done && !busy)
			break;
		int64_t now = sl_clock_now_ms();
		for (unsigned i = 0; i < w->opt.concurrency * w->opt.tasks_per_poll; i++) {
			struct slot *s = &w->slots[i / w->opt.tasks_per_poll];
			size_t k = i % w->opt.tasks_per_poll;
			struct held *e = &s->held[k];
			char token[sizeof e->token];
			pthread_mutex_lock(&w->mu);
			bool due = k < s->n_held && e->live && e->heartbeat_s
			        && now >= e->next_beat_ms && !atomic_load(&e->cancelled);
			if (due) {
				memcpy(token, e->token, sizeof token);
				int64_t every = (int64_t)e->heartbeat_s * 1000 / 3;
				e->next_beat_ms = now + (every < 200 ? 200 : every);
			}
			pthread_mutex_unlock(&w->mu);
			if (!due)
				continue;
			char *buf;
			size_t len;
			if (wk_encode_heartbeat(w->token, token, &buf, &len))
				continue;
			struct wk_msg reply;
			int rv = request(&probe, ctx, aio, buf, len, 5000, &reply);
			sl_free(buf);
			bump(w, &w->stats.heartbeats);
			if (rv)
				continue;
			if (reply.type == WK_MSG_ERROR
			    && (strcmp(reply.error, "TaskTimedOut") == 0
			        || strcmp(reply.error, "TaskDoesNotExist") == 0)) {
				pthread_mutex_lock(&w->mu);
				if (e->live && strcmp(e->token, token) == 0)
					atomic_store(&e->cancelled, true);
				pthread_mutex_unlock(&w->mu);
			}
			wk_msg_clear(&reply);
		}
		struct timespec ts = { 0, 100 * 1000000 };
		nanosleep(&ts, NULL);
	}
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	return NULL;
}

void
sluice_worker_stop(sluice_worker_t *w)
{
	if (w->wake[1] >= 0) {
		char c = 'q';
		ssize_t r = write(w->wake[1], &c, 1);
		(void)r;
	}
}

/* Stops polling: wakes sleepers and cancels only polls in flight (never a result). */
static void
begin_shutdown(struct sluice_worker *w)
{
	pthread_mutex_lock(&w->mu);
	atomic_store(&w->stopping, true);
	pthread_cond_broadcast(&w->cv);
	for (unsigned i = 0; i < w->opt.concurrency; i++)
		if (w->slots[i].phase == PHASE_POLLING)
			nng_aio_cancel(w->slots[i].aio);
	pthread_mutex_unlock(&w->mu);
}

static int
open_report_ctxs(struct sluice_worker *w, struct slot *s)
{
	for (unsigned k = 0; k < w->opt.tasks_per_poll; k++)
		if (nng_ctx_open(&s->held[k].rctx, w->sock)
		    || nng_aio_alloc(&s->held[k].raio, NULL, NULL))
			return -1;
	return 0;
}

int
sluice_worker_run(sluice_worker_t *w)
{
	if (w->running || w->n_handlers == 0)
		return SL_ERR_INVALID_ARG;
	if (pipe2(w->wake, O_CLOEXEC))
		return SL_ERR_IO;
	w->slots = sl_calloc(w->opt.concurrency, sizeof *w->slots);
	if (!w->slots)
		return SL_ERR_NOMEM;
	struct sigaction old_term, old_int;
	if (w->opt.handle_signals) {
		signal_fd = w->wake[1];
		struct sigaction sa = { .sa_handler = on_signal };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, &old_term);
		sigaction(SIGINT, &sa, &old_int);
	}
	w->running = true;
	unsigned started = 0;
	int rc = SL_OK;
	for (; started < w->opt.concurrency; started++) {
		struct slot *s = &w->slots[started];
		s->w = w;
		s->index = started;
		if (!(s->held = sl_calloc(w->opt.tasks_per_poll, sizeof *s->held))
		    || (w->opt.tasks_per_poll > 1 && open_report_ctxs(w, s))
		    || nng_ctx_open(&s->ctx, w->sock) || nng_aio_alloc(&s->aio, NULL, NULL)
		    || pthread_create(&s->thread, NULL, runner_main, s)) {
			rc = SL_ERR_INTERNAL;
			break;
		}
	}
	bool beating = rc == SL_OK && pthread_create(&w->beat_thread, NULL, beat_main, w) == 0;
	if (rc == SL_OK && beating) {
		sl_info("worker", "%s: polling %s for %zu activities with %u threads", w->name,
		        w->url, w->n_handlers, w->opt.concurrency);
		char c;
		while (read(w->wake[0], &c, 1) < 0 && errno == EINTR)
			;
		sl_info("worker", "%s: stopping: finishing running tasks", w->name);
	}
	begin_shutdown(w);
	for (unsigned i = 0; i < started; i++)
		pthread_join(w->slots[i].thread, NULL);
	if (beating)
		pthread_join(w->beat_thread, NULL);
	for (unsigned i = 0; i < w->opt.concurrency; i++) {
		if (w->slots[i].aio)
			nng_aio_free(w->slots[i].aio);
		if (nng_ctx_id(w->slots[i].ctx) > 0)
			nng_ctx_close(w->slots[i].ctx);
		for (unsigned k = 0; w->slots[i].held && k < w->opt.tasks_per_poll; k++) {
			struct held *e = &w->slots[i].held[k];
			if (e->raio)
				nng_aio_free(e->raio);
			if (nng_ctx_id(e->rctx) > 0)
				nng_ctx_close(e->rctx);
		}
		sl_free(w->slots[i].held);
		w->slots[i].held = NULL;
	}
	if (w->opt.handle_signals) {
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGINT, &old_int, NULL);
		signal_fd = -1;
	}
	w->running = false;
	return rc;
}

void
sluice_worker_free(sluice_worker_t *w)
{
	if (!w)
		return;
	if (nng_socket_id(w->sock) > 0)
		nng_close(w->sock);
	if (w->tls)
		nng_tls_config_free(w->tls);
	for (size_t i = 0; i < w->n_handlers; i++)
		sl_free(w->handlers[i].name);
	sl_free(w->handlers);
	sl_free(w->activity_names);
	sl_free(w->slots);
	if (w->wake[0] >= 0)
		close(w->wake[0]);
	if (w->wake[1] >= 0)
		close(w->wake[1]);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	sl_free(w->url);
	sl_free(w->name);
	sl_free(w->token);
	sl_free(w->ca_file);
	sl_free(w->server_name);
	sl_free(w);
}
