/*
 * srv_req.c - one HTTP request from dispatch to the last byte of its answer.
 *
 * A request is reference counted: the dispatcher holds one while routing, evhttp's side
 * one until the answer is written or the connection is gone, the unanswered request one
 * until srv_reply_*, and every store batch it used one until that batch's commit
 * callback. An answer given while a used batch is not yet committed is held and sent from
 * the commit callback, so no client hears "ok" about a write that could still be lost.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_log.h"
#include "server/srv_internal.h"

static const char *
reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Server Error";
	}
}

/* {"__type": type, "message": msg}; NULL only when out of memory. */
static struct evbuffer *
render_error(const char *type, const char *msg)
{
	json_t *j = json_object();
	json_t *m = json_string(msg);
	if (!m) /* not UTF-8 (it may quote client input) */
		m = json_string("invalid request");
	if (!j || !m || json_object_set_new(j, "__type", json_string(type)) != 0
	    || json_object_set_new(j, "message", m) != 0) {
		json_decref(j);
		return NULL;
	}
	char *txt = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	struct evbuffer *b = txt ? evbuffer_new() : NULL;
	if (b && evbuffer_add(b, txt, strlen(txt)) != 0) {
		evbuffer_free(b);
		b = NULL;
	}
	sl_free(txt);
	return b;
}

static void
http_done(srv_req_t *r)
{
	if (r->done)
		return;
	srv_t *s = r->srv;
	r->done = true;
	r->ev = NULL;
	if (r->evcon)
		evhttp_connection_set_closecb(r->evcon, NULL, NULL);
	r->evcon = NULL;
	s->inflight--;
	srv_req_unref(r);
	srv_check_drained(s);
}

static void
on_complete(struct evhttp_request *ev, void *arg)
{
	(void)ev;
	http_done(arg);
}

static void
on_close(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	http_done(arg);
}

srv_req_t *
srv_req_new(srv_t *s, struct evhttp_request *ev)
{
	srv_req_t *r = SL_NEW(srv_req_t);
	if (!r)
		return NULL;
	r->srv = s;
	r->ev = ev;
	r->evcon = evhttp_request_get_connection(ev);
	r->refs = 3; /* dispatcher, evhttp, the answer */
	r->content_type = "application/x-amz-json-1.1";
	r->op_label = "other";
	r->commit_status = SL_OK;
	if (sl_uuid4(r->id) != SL_OK)
		snprintf(r->id, sizeof r->id, "00000000-0000-4000-8000-000000000000");
	s->inflight++;
	evhttp_request_set_on_complete_cb(ev, on_complete, r);
	if (r->evcon)
		evhttp_connection_set_closecb(r->evcon, on_close, r);
	return r;
}

void
srv_req_unref(srv_req_t *r)
{
	if (--r->refs > 0)
		return;
	json_decref(r->body);
	if (r->held_body)
		evbuffer_free(r->held_body);
	if (r->deadline)
		event_free(r->deadline);
	sl_free(r);
}

static void
send_now(srv_req_t *r, int status, struct evbuffer *body)
{
	srv_t *s = r->srv;
	srv_metrics_count(s, r->op_label, status);
	if (!r->ev) {
		sl_debug("http", "%s: client gone before the answer (%d)", r->id, status);
		if (body)
			evbuffer_free(body);
		return;
	}
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
	evhttp_remove_header(h, "Content-Type");
	evhttp_add_header(h, "Content-Type", r->content_type);
	evhttp_add_header(h, "x-amzn-RequestId", r->id);
	if (s->stopping && !evhttp_find_header(h, "Connection"))
		evhttp_add_header(h, "Connection", "close");
	r->sent = true;
	evhttp_send_reply(r->ev, status, reason(status), body);
	if (body)
		evbuffer_free(body);
}

static void
send_commit_error(srv_req_t *r)
{
	sl_err st = r->commit_status;
	char msg[256];
	snprintf(msg, sizeof msg, "the request's writes could not be committed: %s",
	         sl_err_message(st));
	send_now(r, sl_err_http_status(st), render_error(sl_err_aws_type(st), msg));
}

static void
cancel_deferral(srv_req_t *r)
{
	if (!r->deadline)
		return;
	srv_t *s = r->srv;
	event_free(r->deadline);
	r->deadline = NULL;
	if (r->dprev)
		r->dprev->dnext = r->dnext;
	else
		s->deferred = r->dnext;
	if (r->dnext)
		r->dnext->dprev = r->dprev;
	r->dnext = r->dprev = NULL;
}

/* The one place an answer is given: sent now or held for the commit. Steals body. */
static void
deliver(srv_req_t *r, int status, struct evbuffer *body)
{
	if (r->replied) {
		sl_warn("http", "%s: %s answered twice; the second answer is dropped", r->id,
		        r->op_name);
		if (body)
			evbuffer_free(body);
		return;
	}
	r->replied = true;
	cancel_deferral(r);
	if (r->commits_pending > 0) {
		r->held_status = status;
		r->held_body = body;
	} else if (r->commit_status != SL_OK) {
		if (body)
			evbuffer_free(body);
		send_commit_error(r);
	} else {
		send_now(r, status, body);
	}
	srv_req_unref(r);
}

void
srv_reply_json(srv_req_t *r, json_t *obj)
{
	json_t *o = obj ? obj : json_object();
	char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	struct evbuffer *b = txt ? evbuffer_new() : NULL;
	if (!b || evbuffer_add(b, txt, strlen(txt)) != 0) {
		if (b)
			evbuffer_free(b);
		sl_free(txt);
		deliver(r, 500, render_error("InternalFailure", "out of memory"));
		return;
	}
	sl_free(txt);
	deliver(r, 200, b);
}

void
srv_reply_error(srv_req_t *r, sl_err code, const char *fmt, ...)
{
	char msg[SL_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (code == SL_OK)
		code = SL_ERR_INTERNAL;
	deliver(r, sl_err_http_status(code), render_error(sl_err_aws_type(code), msg));
}

void
srv_reply_status(srv_req_t *r, int status, const char *type, const char *message)
{
	deliver(r, status, render_error(type, message));
}

void
srv_reply_buffer(srv_req_t *r, int status, struct evbuffer *body)
{
	deliver(r, status, body);
}

/* --- store batch and commit ------------------------------------------------------------ */

static void
on_commit(void *arg, sl_err status)
{
	srv_req_t *r = arg;
	r->commits_pending--;
	if (status != SL_OK && r->commit_status == SL_OK)
		r->commit_status = status;
	if (r->commits_pending == 0 && r->held_body) {
		struct evbuffer *b = r->held_body;
		r->held_body = NULL;
		if (r->commit_status == SL_OK) {
			send_now(r, r->held_status, b);
		} else {
			evbuffer_free(b);
			send_commit_error(r);
		}
	}
	srv_req_unref(r);
}

sl_err
srv_req_batch(srv_req_t *r, store_batch_t **out)
{
	srv_t *s = r->srv;
	if (r->replied)
		return SL_ERR_INTERNAL; /* nothing may be written after the answer */
	store_batch_t *b;
	sl_err rc = srv_batch_get(s, !r->savepoint, &b);
	if (rc != SL_OK)
		return rc;
	if (!r->touched || r->touched_gen != s->batch_gen) {
		if ((rc = store_batch_on_commit(b, on_commit, r)) != SL_OK)
			return rc;
		r->refs++;
		r->commits_pending++;
		r->touched = true;
		r->touched_gen = s->batch_gen;
	}
	if (r->in_handler && !r->savepoint) {
		if ((rc = store_savepoint_begin(b)) != SL_OK)
			return rc;
		r->savepoint = true;
	}
	*out = b;
	return SL_OK;
}

/* Ends the handler's savepoint: keep its writes on success, undo them on failure. */
static sl_err
end_savepoint(srv_req_t *r, sl_err rc)
{
	srv_t *s = r->srv;
	if (!r->savepoint)
		return rc;
	r->savepoint = false;
	store_batch_t *b = store_batch_current(s->store);
	if (!b)
		return rc;
	if (rc != SL_OK) {
		store_savepoint_rollback(b);
		return rc;
	}
	sl_err rr = store_savepoint_release(b);
	if (rr != SL_OK) {
		/* the batch's state is unknown now: fail all of it rather than commit a part */
		sl_errorf("store", "savepoint release failed (%s): aborting the batch",
		          sl_err_name(rr));
		store_batch_abort(s->store, rr);
	}
	return rr;
}

void
srv_req_call(srv_req_t *r, srv_op_fn fn, void *ctx)
{
	srv_t *s = r->srv;
	struct sl_error e;
	sl_error_clear(&e);
	r->in_handler = true;
	sl_err rc = fn(r, r->body, ctx, &e);
	r->in_handler = false;
	sl_err src = end_savepoint(r, rc);
	if (rc == SL_OK && src != SL_OK) {
		rc = src;
		sl_error_set(&e, src, "the request's writes could not be kept");
	}
	if (rc != SL_OK) {
		const char *msg = e.code != SL_OK ? sl_error_text(&e) : sl_err_message(rc);
		if (!r->replied) {
			srv_reply_error(r, rc, "%s", msg);
		} else if (r->held_body) {
			/* it answered, then failed: its writes are undone, so is its answer */
			evbuffer_free(r->held_body);
			r->held_body = render_error(sl_err_aws_type(rc), msg);
			r->held_status = sl_err_http_status(rc);
		} else {
			sl_warn("http", "%s: %s failed after answering: %s", r->id, r->op_name,
			        msg);
		}
	} else if (!r->replied && !r->deadline) {
		srv_reply_error(r, SL_ERR_INTERNAL, "the handler of %s returned without an answer",
		                r->op_name);
	}
	store_batch_t *b = store_batch_current(s->store);
	if (b
	    && (store_batch_full(b)
	        || sl_clock_mono_ns() - s->batch_opened_ns > SRV_MAX_BATCH_AGE_NS)) {
		s->metrics.early_commits++;
		srv_commit(s);
	}
}

/* --- deferral -------------------------------------------------------------------------- */

static void
expire(srv_req_t *r)
{
	r->refs++;
	srv_timeout_fn fn = r->on_timeout;
	void *arg = r->timeout_arg;
	cancel_deferral(r);
	if (fn)
		fn(r, arg);
	if (!r->replied)
		srv_reply_error(r, SL_ERR_TIMEOUT, "no answer within the wait time");
	srv_req_unref(r);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	expire(arg);
}

sl_err
srv_req_defer(srv_req_t *r, uint32_t timeout_ms, srv_timeout_fn fn, void *arg)
{
	srv_t *s = r->srv;
	if (!r->in_handler || r->replied || r->deadline)
		return SL_ERR_INTERNAL;
	if (timeout_ms > SRV_MAX_DEFER_MS)
		timeout_ms = SRV_MAX_DEFER_MS;
	r->deadline = evtimer_new(s->base, on_deadline, r);
	if (!r->deadline)
		return SL_ERR_NOMEM;
	event_priority_set(r->deadline, SRV_PRIO_NORMAL);
	struct timeval tv
	        = { (time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000 };
	evtimer_add(r->deadline, &tv);
	r->on_timeout = fn;
	r->timeout_arg = arg;
	r->dnext = s->deferred;
	r->dprev = NULL;
	if (s->deferred)
		s->deferred->dprev = r;
	s->deferred = r;
	return SL_OK;
}

void
srv_req_expire_all(srv_t *s)
{
	while (s->deferred)
		expire(s->deferred);
}

const char *
srv_req_id(const srv_req_t *r)
{
	return r->id;
}

const char *
srv_req_operation(const srv_req_t *r)
{
	return r->op_name;
}

srv_t *
srv_req_server(const srv_req_t *r)
{
	return r->srv;
}
