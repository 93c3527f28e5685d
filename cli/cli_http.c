#include "cli/cli_http.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"

struct call {
	int status;
	char *body;
	size_t len;
	bool done;
	struct event_base *base;
};

const char *
cli_endpoint(const char *flag)
{
	if (flag && *flag)
		return flag;
	const char *env = getenv("SLUICE_ENDPOINT");
	return env && *env ? env : CLI_DEFAULT_ENDPOINT;
}

static void
on_done(struct evhttp_request *req, void *arg)
{
	struct call *c = arg;
	c->done = true;
	if (req) {
		c->status = evhttp_request_get_response_code(req);
		struct evbuffer *b = evhttp_request_get_input_buffer(req);
		c->len = evbuffer_get_length(b);
		c->body = sl_malloc(c->len + 1);
		if (c->body) {
			evbuffer_remove(b, c->body, c->len);
			c->body[c->len] = '\0';
		}
	}
	event_base_loopbreak(c->base);
}

sl_err
cli_aws_call(const char *endpoint, const char *target, json_t *body, int timeout_s, json_t **out,
             struct sl_error *err)
{
	*out = NULL;
	struct evhttp_uri *uri = evhttp_uri_parse(endpoint);
	const char *host = uri ? evhttp_uri_get_host(uri) : NULL;
	if (!host || !evhttp_uri_get_scheme(uri) || strcmp(evhttp_uri_get_scheme(uri), "http")) {
		if (uri)
			evhttp_uri_free(uri);
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "endpoint '%s': expected http://HOST:PORT", endpoint);
	}
	int port = evhttp_uri_get_port(uri) > 0 ? evhttp_uri_get_port(uri) : 80;
	const char *json_version = strncmp(target, "AWSStepFunctions.", 17) == 0 ? "1.0" : "1.1";
	char ctype[64];
	snprintf(ctype, sizeof ctype, "application/x-amz-json-%s", json_version);

	struct call c = { 0 };
	sl_err rc = SL_ERR_NOMEM;
	char *text = json_dumps(body, JSON_COMPACT);
	c.base = event_base_new();
	struct evhttp_connection *conn = c.base
	        ? evhttp_connection_base_new(c.base, NULL, host, (unsigned short)port)
	        : NULL;
	struct evhttp_request *req = conn ? evhttp_request_new(on_done, &c) : NULL;
	if (!text || !req)
		goto out;
	evhttp_connection_set_timeout(conn, timeout_s);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char hostport[300];
	snprintf(hostport, sizeof hostport, "%s:%d", host, port);
	evhttp_add_header(h, "Host", hostport);
	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "X-Amz-Target", target);
	evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
	if (evhttp_make_request(conn, req, EVHTTP_REQ_POST, "/") != 0) {
		req = NULL; /* freed by libevent on failure */
		rc = sl_error_set(err, SL_ERR_UNAVAILABLE, "cannot send a request to %s", endpoint);
		goto out;
	}
	event_base_dispatch(c.base);
	if (!c.done || c.status == 0 || !c.body) {
		rc = sl_error_set(err, SL_ERR_UNAVAILABLE,
		                  "no answer from %s (is `sluice serve` running? set --endpoint "
		                  "or SLUICE_ENDPOINT)",
		                  endpoint);
		goto out;
	}
	json_error_t je;
	json_t *j = json_loadb(c.body, c.len, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		rc = sl_error_set(err, SL_ERR_IO,
		                  "%s answered HTTP %d with a body that is not a JSON "
		                  "object",
		                  endpoint, c.status);
		goto out;
	}
	*out = j;
	if (c.status == 200) {
		rc = SL_OK;
	} else {
		const char *type = json_string_value(json_object_get(j, "__type"));
		const char *msg = json_string_value(json_object_get(j, "message"));
		/* 4xx: the request was refused; 5xx: the server failed */
		rc = sl_error_set(err, c.status >= 500 ? SL_ERR_INTERNAL : SL_ERR_INVALID_ARG,
		                  "%s: %s", type ? type : "HTTP error", msg ? msg : "");
	}
out:
	sl_free(c.body);
	free(text);
	if (conn)
		evhttp_connection_free(conn);
	if (c.base)
		event_base_free(c.base);
	evhttp_uri_free(uri);
	return rc;
}
