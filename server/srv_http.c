/*
 * srv_http.c - the evhttp front-end: connections (with a cap), routing, AWS JSON dispatch.
 *
 * evhttp 2.1.12 has no connection limit and no hook when a server connection closes, so we
 * create each connection's bufferevent ourselves (evhttp_set_bevcb) and keep a reference:
 * once evhttp is done with it, its callbacks are cleared and a sweep drops our reference.
 * Connections over the cap are answered 503 on their first request and closed.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "common/sl_alloc.h"
#include "common/sl_log.h"
#include "server/srv_internal.h"

#define CT_11   "application/x-amz-json-1.1"
#define CT_10   "application/x-amz-json-1.0"
#define CT_JSON "application/json"

/* --- connections ----------------------------------------------------------------------- */

void
srv_conn_sweep(srv_t *s)
{
	for (size_t i = 0; i < s->n_conns;) {
		bufferevent_data_cb rd, wr;
		bufferevent_event_cb evcb;
		void *arg;
		bufferevent_getcb(s->conns[i].bev, &rd, &wr, &evcb, &arg);
		if (rd || wr || evcb) {
			i++;
			continue;
		}
		bufferevent_decref(s->conns[i].bev);
		s->conns[i] = s->conns[--s->n_conns];
	}
}

size_t
srv_conn_open(srv_t *s)
{
	return s->n_conns;
}

static struct srv_conn *
conn_find(srv_t *s, struct bufferevent *bev)
{
	for (size_t i = 0; i < s->n_conns; i++)
		if (s->conns[i].bev == bev)
			return &s->conns[i];
	return NULL;
}

/* evhttp asks for a bufferevent for each accepted connection. */
static struct bufferevent *
on_new_conn(struct event_base *base, void *arg)
{
	srv_t *s = arg;
	srv_conn_sweep(s);
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		return NULL;
	if (s->n_conns == s->cap_conns) {
		size_t cap = s->cap_conns ? s->cap_conns * 2 : 64;
		struct srv_conn *c = sl_reallocarray(s->conns, cap, sizeof *c);
		if (!c) {
			bufferevent_free(bev);
			return NULL; /* evhttp makes its own; this one goes uncounted */
		}
		s->conns = c;
		s->cap_conns = cap;
	}
	size_t active = 0;
	for (size_t i = 0; i < s->n_conns; i++)
		active += !s->conns[i].refused;
	bufferevent_incref(bev);
	struct srv_conn *c = &s->conns[s->n_conns++];
	c->bev = bev;
	c->refused = active >= s->cfg.max_connections;
	s->metrics.conns_accepted++;
	if (c->refused) {
		s->metrics.conns_refused++;
		sl_warn("http", "connection refused: %zu connections open (limit %u)", active,
		        s->cfg.max_connections);
	}
	return bev;
}

static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_conn_sweep(arg);
}

/* --- routing --------------------------------------------------------------------------- */

static const char *
media_type(const char *ct)
{
	while (*ct == ' ' || *ct == '\t')
		ct++;
	size_t n = strcspn(ct, "; \t");
	if (n == strlen(CT_11) && strncasecmp(ct, CT_11, n) == 0)
		return CT_11;
	if (n == strlen(CT_10) && strncasecmp(ct, CT_10, n) == 0)
		return CT_10;
	if (n == strlen(CT_JSON) && strncasecmp(ct, CT_JSON, n) == 0)
		return CT_JSON;
	return NULL;
}

static bool
valid_target(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n >= 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && t[i] != '.' && t[i] != '_')
			return false;
	return true;
}

static const struct srv_op *
find_op(const srv_t *s, const char *name)
{
	for (size_t i = 0; i < s->n_ops; i++)
		if (strcmp(s->ops[i].name, name) == 0)
			return &s->ops[i];
	return NULL;
}

static void
dispatch_aws(srv_req_t *r)
{
	srv_t *s = r->srv;
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->ev);
	const char *ct = evhttp_find_header(in, "Content-Type");
	const char *smithy = evhttp_find_header(in, "smithy-protocol");
	r->content_type = CT_11;
	if (ct && media_type(ct))
		r->content_type = media_type(ct);
	/* only the AWS JSON protocols are served; say so clearly to a CBOR client */
	if ((ct && strncasecmp(ct, "application/cbor", 16) == 0)
	    || (smithy && strcasecmp(smithy, "rpc-v2-json") != 0)) {
		r->op_label = "unsupported_protocol";
		srv_reply_error(r, SL_ERR_UNSUPPORTED_PROTOCOL,
		                "protocol '%.64s' is not served: send application/x-amz-json-1.1 "
		                "(EventBridge) or application/x-amz-json-1.0 (Step Functions)",
		                smithy ? smithy : ct);
		return;
	}
	const char *target = evhttp_find_header(in, "X-Amz-Target");
	if (!target) {
		r->op_label = "missing_target";
		srv_reply_error(r, SL_ERR_MISSING_ACTION,
		                "missing X-Amz-Target header: expected AWSEvents.<Operation> or "
		                "AWSStepFunctions.<Operation>");
		return;
	}
	/* sluice's own operations (SluiceEvents.*, Sluice.*) are served once registered */
	bool known_service = strncmp(target, "AWSEvents.", 10) == 0
	        || strncmp(target, "AWSStepFunctions.", 17) == 0 || find_op(s, target);
	if (!valid_target(target) || !known_service) {
		r->op_label = "unknown";
		if (valid_target(target))
			srv_reply_error(r, SL_ERR_UNKNOWN_OPERATION,
			                "unknown operation %s: expected AWSEvents.<Operation> or "
			                "AWSStepFunctions.<Operation>",
			                target);
		else
			srv_reply_error(r, SL_ERR_UNKNOWN_OPERATION,
			                "malformed X-Amz-Target header: expected "
			                "AWSEvents.<Operation> or AWSStepFunctions.<Operation>");
		return;
	}
	snprintf(r->op_name, sizeof r->op_name, "%s", target);

	struct evbuffer *b = evhttp_request_get_input_buffer(r->ev);
	size_t len = evbuffer_get_length(b);
	if (len > s->cfg.max_body) {
		r->op_label = "too_large";
		srv_reply_error(r, SL_ERR_TOO_LARGE,
		                "request body of %zu bytes is over the %zu "
		                "byte limit",
		                len, s->cfg.max_body);
		return;
	}
	json_t *body;
	if (len == 0) {
		body = json_object(); /* AWS treats an empty body as {} */
	} else {
		json_error_t je;
		const char *data = (const char *)evbuffer_pullup(b, -1);
		body = data ? json_loadb(data, len, JSON_REJECT_DUPLICATES, &je) : NULL;
		if (!body) {
			r->op_label = "malformed";
			srv_reply_error(r, SL_ERR_SERIALIZATION,
			                "request body is not valid JSON: %s (line %d, column %d)",
			                data ? je.text : "out of memory", data ? je.line : 0,
			                data ? je.column : 0);
			return;
		}
		if (!json_is_object(body)) {
			json_decref(body);
			r->op_label = "malformed";
			srv_reply_error(r, SL_ERR_SERIALIZATION,
			                "request body must be a JSON object");
			return;
		}
	}
	if (!body) {
		srv_reply_error(r, SL_ERR_NOMEM, "out of memory");
		return;
	}
	const struct srv_op *op = find_op(s, target);
	if (!op) {
		json_decref(body);
		r->op_label = "unsupported";
		srv_reply_error(r, SL_ERR_UNKNOWN_OPERATION,
		                "operation %s is not supported by this server yet", target);
		return;
	}
	r->op_label = op->name;
	r->body = body;
	srv_req_call(r, op->fn, op->ctx);
}

static void
route(srv_req_t *r)
{
	srv_t *s = r->srv;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(r->ev);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	enum evhttp_cmd_type m = evhttp_request_get_command(r->ev);
	struct evkeyvalq *out = evhttp_request_get_output_headers(r->ev);
	if (!path || !*path)
		path = "/";

	struct srv_conn *c = conn_find(s, evhttp_connection_get_bufferevent(r->evcon));
	if (c && c->refused) {
		r->op_label = "refused";
		evhttp_add_header(out, "Connection", "close");
		srv_reply_error(r, SL_ERR_UNAVAILABLE, "too many open connections (limit %u)",
		                s->cfg.max_connections);
		return;
	}
	if (s->stopping) {
		r->op_label = "shutting_down";
		evhttp_add_header(out, "Connection", "close");
		srv_reply_error(r, SL_ERR_SHUTTING_DOWN, "server is shutting down");
		return;
	}
	if (strcmp(path, "/") == 0) {
		if (m != EVHTTP_REQ_POST) {
			r->op_label = "bad_method";
			evhttp_add_header(out, "Allow", "POST");
			srv_reply_status(r, 405, "MethodNotAllowed",
			                 "the AWS JSON API at / takes POST only");
			return;
		}
		dispatch_aws(r);
		return;
	}
	if (strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0) {
		bool health = path[1] == 'h';
		r->op_label = health ? "healthz" : "metrics";
		r->content_type = health ? CT_JSON : "text/plain; version=0.0.4; charset=utf-8";
		if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
			r->content_type = CT_JSON;
			evhttp_add_header(out, "Allow", "GET, HEAD");
			srv_reply_status(r, 405, "MethodNotAllowed", "use GET");
			return;
		}
		struct evbuffer *b = evbuffer_new();
		sl_err rc = b ? SL_OK : SL_ERR_NOMEM;
		if (rc == SL_OK && health)
			rc = evbuffer_add_printf(b, "{\"status\":\"ok\"}") < 0 ? SL_ERR_NOMEM
			                                                       : SL_OK;
		else if (rc == SL_OK)
			rc = srv_metrics_render(s, b);
		if (rc != SL_OK) {
			if (b)
				evbuffer_free(b);
			r->content_type = CT_JSON;
			srv_reply_error(r, rc, "cannot build the answer");
			return;
		}
		srv_reply_buffer(r, 200, b);
		return;
	}
	r->op_label = "not_found";
	r->content_type = CT_JSON;
	srv_reply_status(r, 404, "NotFoundException",
	                 "no such path: the API is POST / (AWS JSON), GET /healthz, GET /metrics");
}

static void
on_request(struct evhttp_request *ev, void *arg)
{
	srv_t *s = arg;
	srv_req_t *r = srv_req_new(s, ev);
	if (!r) {
		evhttp_send_error(ev, 500, "out of memory");
		return;
	}
	route(r);
	srv_req_unref(r); /* the creation reference; the answer and evhttp hold their own */
}

/* --- lifecycle ------------------------------------------------------------------------- */

sl_err
srv_http_start(srv_t *s, struct sl_error *err)
{
	char host[256];
	uint16_t port;
	sl_err rc = srv_parse_hostport(s->cfg.http, host, sizeof host, &port, err);
	if (rc != SL_OK)
		return rc;
	s->http = evhttp_new(s->base);
	if (!s->http)
		return SL_ERR_NOMEM;
	/* evhttp refuses bodies over its limit with its own HTML page (2.1.12 has no hook), so
	 * give it a hard cap well above ours and answer the AWS-shaped 413, with a request id,
	 * ourselves for everything between: memory per connection stays bounded. */
	size_t hard_cap = s->cfg.max_body > SIZE_MAX / 4 ? s->cfg.max_body : s->cfg.max_body * 4;
	evhttp_set_max_body_size(s->http, (ev_ssize_t)hard_cap);
	evhttp_set_max_headers_size(s->http, (ev_ssize_t)s->cfg.max_header);
	evhttp_set_timeout(s->http, (int)s->cfg.idle_timeout_s);
	/* answer 405 ourselves instead of evhttp's 501 */
	evhttp_set_allowed_methods(s->http,
	                           EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD
	                                   | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS
	                                   | EVHTTP_REQ_PATCH);
	/* read and discard an over-limit body so the client sees the 413, not a reset */
	evhttp_set_flags(s->http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_bevcb(s->http, on_new_conn, s);
	evhttp_set_gencb(s->http, on_request, s);

	s->bound = evhttp_bind_socket_with_handle(s->http, host, port);
	if (!s->bound)
		return sl_error_set(err, SL_ERR_IO, "cannot listen on http %s: %s", s->cfg.http,
		                    strerror(errno));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	evutil_socket_t fd = evhttp_bound_socket_get_fd(s->bound);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return sl_error_set(err, SL_ERR_IO, "getsockname: %s", strerror(errno));
	unsigned bound_port = ss.ss_family == AF_INET6
	        ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
	        : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	bool v6 = strchr(host, ':') != NULL;
	snprintf(s->http_addr, sizeof s->http_addr, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
	         bound_port);

	s->sweep_ev = event_new(s->base, -1, EV_PERSIST, on_sweep, s);
	if (!s->sweep_ev)
		return SL_ERR_NOMEM;
	struct timeval tv = { 1, 0 };
	event_add(s->sweep_ev, &tv);
	return SL_OK;
}

void
srv_http_stop_accepting(srv_t *s)
{
	if (s->http && s->bound) {
		evhttp_del_accept_socket(s->http, s->bound);
		s->bound = NULL;
	}
}

void
srv_http_free(srv_t *s)
{
	if (s->sweep_ev)
		event_free(s->sweep_ev);
	s->sweep_ev = NULL;
	if (s->http)
		evhttp_free(s->http);
	s->http = NULL;
	srv_conn_sweep(s);
	/* whatever evhttp still held is gone now */
	for (size_t i = 0; i < s->n_conns; i++)
		bufferevent_decref(s->conns[i].bev);
	sl_free(s->conns);
	s->conns = NULL;
	s->n_conns = s->cap_conns = 0;
}
