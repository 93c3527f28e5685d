/*
 * srv_workers.c - the NNG REP socket workers talk to.
 *
 * One context and one aio: receive a frame (NNG thread), hand it to the loop through the
 * bridge, validate and answer there, send (NNG thread), receive again. Frames are
 * untrusted: anything that is not a JSON object with a numeric "v" and a string "type" is
 * answered MalformedFrame; message types are added by the workers module.
 */
#include <arpa/inet.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_log.h"
#include "server/srv_internal.h"

#define FRAME_MAX (1024 * 1024)

enum wstate { W_RECV, W_SEND };

struct srv_workers {
	srv_t *srv;
	nng_socket sock;
	nng_listener listener;
	nng_ctx ctx;
	nng_aio *aio;
	enum wstate state; /* touched by whichever side owns the aio at the time */
	nng_msg *frame;    /* the received frame, owned by the loop until answered */
	bool open, closing;
};

static void
arm_recv(struct srv_workers *w)
{
	w->state = W_RECV;
	nng_ctx_recv(w->ctx, w->aio);
}

static nng_msg *
error_reply(const char *error, const char *message)
{
	json_t *j = json_pack("{s:i, s:s, s:s, s:s}", "v", 1, "type", "error", "error", error,
	                      "message", message);
	char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	nng_msg *m = NULL;
	if (txt && nng_msg_alloc(&m, 0) == 0 && nng_msg_append(m, txt, strlen(txt)) != 0) {
		nng_msg_free(m);
		m = NULL;
	}
	sl_free(txt);
	return m;
}

/* Loop thread: the whole validation of a frame. */
static nng_msg *
answer(struct srv_workers *w, const void *data, size_t len)
{
	struct srv_metrics *m = &w->srv->metrics;
	char msg[512];
	json_error_t je;
	json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		snprintf(msg, sizeof msg, "frame is not valid JSON: %s (line %d, column %d)",
		         je.text, je.line, je.column);
	else if (!json_is_object(j))
		snprintf(msg, sizeof msg, "frame must be a JSON object");
	else if (!json_is_number(json_object_get(j, "v")))
		snprintf(msg, sizeof msg, "frame needs a numeric \"v\" (protocol version)");
	else if (!json_is_string(json_object_get(j, "type")))
		snprintf(msg, sizeof msg, "frame needs a string \"type\" (message type)");
	else {
		snprintf(msg, sizeof msg, "unknown message type %.64s",
		         json_string_value(json_object_get(j, "type")));
		json_decref(j);
		m->frames_unknown++;
		sl_debug("workers", "%s", msg);
		return error_reply("UnknownMessage", msg);
	}
	json_decref(j);
	m->frames_malformed++;
	sl_warn("workers", "malformed frame (%zu bytes): %s", len, msg);
	return error_reply("MalformedFrame", msg);
}

static void
on_frame(void *arg)
{
	struct srv_workers *w = arg;
	nng_msg *in = w->frame;
	w->frame = NULL;
	if (w->closing) {
		nng_msg_free(in);
		return;
	}
	nng_msg *out = answer(w, nng_msg_body(in), nng_msg_len(in));
	nng_msg_free(in);
	if (!out) {
		sl_errorf("workers", "out of memory answering a frame");
		arm_recv(w);
		return;
	}
	w->state = W_SEND;
	nng_aio_set_msg(w->aio, out);
	nng_ctx_send(w->ctx, w->aio);
}

/* NNG thread. */
static void
on_aio(void *arg)
{
	struct srv_workers *w = arg;
	int rv = nng_aio_result(w->aio);
	if (w->state == W_SEND) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(w->aio));
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
				return;
		}
		arm_recv(w);
		return;
	}
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (rv != 0) {
		sl_warn("workers", "receive failed: %s", nng_strerror(rv));
		arm_recv(w);
		return;
	}
	w->frame = nng_aio_get_msg(w->aio);
	if (srv_bridge_post(w->srv->bridge, on_frame, w) != SL_OK) {
		nng_msg_free(w->frame);
		w->frame = NULL;
		arm_recv(w);
	}
}

sl_err
srv_workers_start(srv_t *s, struct sl_error *err)
{
	struct srv_workers *w = SL_NEW(struct srv_workers);
	if (!w)
		return SL_ERR_NOMEM;
	w->srv = s;
	s->workers = w;
	int rv = nng_rep0_open(&w->sock);
	if (rv != 0)
		return sl_error_set(err, SL_ERR_IO, "workers socket: %s", nng_strerror(rv));
	w->open = true;
	if ((rv = nng_socket_set_size(w->sock, NNG_OPT_RECVMAXSZ, FRAME_MAX)) != 0
	    || (rv = nng_ctx_open(&w->ctx, w->sock)) != 0
	    || (rv = nng_aio_alloc(&w->aio, on_aio, w)) != 0)
		return sl_error_set(err, SL_ERR_IO, "workers socket: %s", nng_strerror(rv));
	if ((rv = nng_listener_create(&w->listener, w->sock, s->cfg.workers)) != 0
	    || (rv = nng_listener_start(w->listener, 0)) != 0)
		return sl_error_set(err, SL_ERR_IO, "cannot listen for workers on %s: %s",
		                    s->cfg.workers, nng_strerror(rv));

	snprintf(s->workers_addr, sizeof s->workers_addr, "%s", s->cfg.workers);
	if (strncmp(s->cfg.workers, "tcp://", 6) == 0) {
		nng_sockaddr sa;
		char host[256];
		uint16_t port;
		if ((rv = nng_listener_get_addr(w->listener, NNG_OPT_LOCADDR, &sa)) != 0)
			return sl_error_set(err, SL_ERR_IO, "workers address: %s",
			                    nng_strerror(rv));
		unsigned bound = sa.s_family == NNG_AF_INET6 ? ntohs(sa.s_in6.sa_port)
		                                             : ntohs(sa.s_in.sa_port);
		if (srv_parse_hostport(s->cfg.workers + 6, host, sizeof host, &port, err) != SL_OK)
			return SL_ERR_INVALID_ARG;
		bool v6 = strchr(host, ':') != NULL;
		snprintf(s->workers_addr, sizeof s->workers_addr, "tcp://%s%s%s:%u", v6 ? "[" : "",
		         host, v6 ? "]" : "", bound);
	}
	arm_recv(w);
	return SL_OK;
}

void
srv_workers_stop(srv_t *s)
{
	struct srv_workers *w = s->workers;
	if (!w || w->closing)
		return;
	w->closing = true;
	if (w->aio)
		nng_aio_stop(w->aio); /* waits for a running callback */
	if (w->open)
		nng_close(w->sock);
	w->open = false;
}

void
srv_workers_free(srv_t *s)
{
	struct srv_workers *w = s->workers;
	if (!w)
		return;
	srv_workers_stop(s);
	if (w->aio)
		nng_aio_free(w->aio);
	if (w->frame)
		nng_msg_free(w->frame);
	sl_free(w);
	s->workers = NULL;
}
