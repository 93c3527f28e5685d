#include "tests/workers/fake_server.h"

#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sl_alloc.h"

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
		case WK_MSG_POLL: {
			size_t n = f->n_queue - f->next;
			if (n > msg.max_tasks)
				n = msg.max_tasks;
			wk_encode_tasks(msg.poll_id, n ? &f->queue[f->next] : NULL, n, &buf, &len);
			f->next += n;
			if (n > f->most_per_poll)
				f->most_per_poll = (unsigned)n;
			break;
		}
		case WK_MSG_SUCCESS: {
			char *out = json_dumps(msg.output, JSON_COMPACT | JSON_ENCODE_ANY);
			snprintf(f->results[f->n_results++], sizeof f->results[0], "success:%s:%s",
			         msg.token, out);
			free(out);
			wk_encode_ok(&buf, &len);
			break;
		}
		case WK_MSG_FAILURE:
			snprintf(f->results[f->n_results++], sizeof f->results[0],
			         "failure:%s:%s:%s", msg.token, msg.error ? msg.error : "",
			         msg.cause ? msg.cause : "");
			wk_encode_ok(&buf, &len);
			break;
		case WK_MSG_HEARTBEAT:
			f->heartbeats++;
			for (size_t i = 0; i < f->n_queue; i++)
				f->queue_beats[i] += strcmp(msg.token, f->queue[i].token) == 0;
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

void
fake_start(struct fake *f)
{
	memset(f, 0, sizeof *f);
	pthread_mutex_init(&f->mu, NULL);
	if (nng_rep0_open(&f->sock))
		abort();
	nng_listener l;
	if (nng_listen(f->sock, "tcp://127.0.0.1:0", &l, 0))
		abort();
	int port;
	if (nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port))
		abort();
	snprintf(f->url, sizeof f->url, "tcp://127.0.0.1:%d", port);
	pthread_create(&f->thread, NULL, fake_main, f);
}

void
fake_stop(struct fake *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	nng_close(f->sock);
}

size_t
fake_results(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	size_t n = f->n_results;
	pthread_mutex_unlock(&f->mu);
	return n;
}

bool
fake_wait_results(struct fake *f, size_t n)
{
	for (int i = 0; i < 500 && fake_results(f) < n; i++) {
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
	}
	return fake_results(f) >= n;
}

const char *
fake_result_for(struct fake *f, const char *token)
{
	const char *found = NULL;
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->n_results; i++) {
		const char *r = f->results[i];
		const char *colon = strchr(r, ':');
		size_t tl = strlen(token);
		if (colon && strncmp(colon + 1, token, tl) == 0 && colon[1 + tl] == ':')
			found = r;
	}
	pthread_mutex_unlock(&f->mu);
	return found;
}
