/*
 * srv_internal.h - what the server's files share: the server and request structs.
 * Everything here belongs to the loop thread.
 */
#ifndef SLUICE_SERVER_SRV_INTERNAL_H
#define SLUICE_SERVER_SRV_INTERNAL_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "common/sl_id.h"
#include "server/srv.h"

/* Event priorities: the flush (group commit) runs when nothing else is ready. */
#define SRV_PRIO_HIGH   0
#define SRV_PRIO_NORMAL 1
#define SRV_PRIO_FLUSH  2
#define SRV_NPRIO       3

/* A batch older than this is committed at the next write even if the loop is busy, so a
 * steady stream of requests cannot starve the low-priority flush. */
#define SRV_MAX_BATCH_AGE_NS (20ull * 1000 * 1000)
/* The longest a deferred request may wait (StartSyncExecution: AWS's 5 minutes). */
#define SRV_MAX_DEFER_MS (300u * 1000)

struct srv_op {
	char *name;
	srv_op_fn fn;
	void *ctx;
};

/* One accepted HTTP connection. We hold a reference on its bufferevent: when evhttp lets
 * go of it (its callbacks are cleared), the connection is gone and we drop ours. */
struct srv_conn {
	struct bufferevent *bev;
	bool refused; /* over the cap: its first request gets 503 and the connection closes */
};

/* Request counters by operation label and status. */
struct srv_metric_req {
	char *op;
	int status;
	uint64_t count;
};

struct srv_metrics {
	struct srv_metric_req *req;
	size_t n_req, cap_req;
	uint64_t conns_accepted, conns_refused;
	uint64_t frames_ok, frames_malformed, frames_unknown;
	uint64_t flushes, early_commits;
};

struct srv_workers;

struct srv {
	struct srv_config cfg;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	char http_addr[300];
	char workers_addr[300];
	store_t *store;
	srv_bridge_t *bridge;
	struct srv_workers *workers;

	struct event *flush_ev;
	struct event *sig_int, *sig_term;
	struct event *sweep_ev;
	struct event *drain_ev;

	struct srv_op *ops;
	size_t n_ops, cap_ops;

	struct srv_conn *conns;
	size_t n_conns, cap_conns;

	struct srv_req *deferred; /* requests waiting past their handler (long polls) */
	size_t inflight;          /* requests not completely answered yet */
	uint64_t batch_gen;       /* bumped whenever a new batch opens */
	uint64_t batch_opened_ns;
	bool stopping;
	bool stopped;
	struct srv_metrics metrics;
};

struct srv_req {
	srv_t *srv;
	struct evhttp_request *ev; /* NULL once the connection is gone */
	struct evhttp_connection *evcon;
	char id[SL_UUID_STRLEN + 1];
	const char *content_type;
	const char *op_label; /* metrics label; points into the registry or a literal */
	char op_name[128];
	json_t *body;
	int refs;

	bool in_handler;
	bool savepoint;
	bool replied; /* an answer was given (maybe held for a commit) */
	bool sent;    /* handed to evhttp */
	bool done;    /* evhttp finished with it (written or connection gone) */
	uint64_t touched_gen;
	bool touched;
	unsigned commits_pending;
	sl_err commit_status;

	/* the answer, while held for a commit */
	int held_status;
	struct evbuffer *held_body;

	/* deferral */
	struct event *deadline;
	srv_timeout_fn on_timeout;
	void *timeout_arg;
	struct srv_req *dnext, *dprev;
};

/* srv_http.c */
sl_err srv_http_start(srv_t *s, struct sl_error *err);
void srv_http_stop_accepting(srv_t *s);
void srv_http_free(srv_t *s);
void srv_conn_sweep(srv_t *s);
size_t srv_conn_open(srv_t *s);
void srv_req_unref(srv_req_t *r);

/* srv_req.c */
srv_req_t *srv_req_new(srv_t *s, struct evhttp_request *ev);
/* Runs a handler under the contract of srv.h (savepoint, commit, deferral). */
void srv_req_call(srv_req_t *r, srv_op_fn fn, void *ctx);
/* Answers with a status and an error shape that has no sl_err (404, 405). */
void srv_reply_status(srv_req_t *r, int status, const char *type, const char *message);
/* Answers with a ready body (stolen), e.g. /metrics. */
void srv_reply_buffer(srv_req_t *r, int status, struct evbuffer *body);
/* Answers every deferred request now (shutdown). */
void srv_req_expire_all(srv_t *s);

/* srv_main.c: the flush hook */
void srv_commit(srv_t *s);
/* The open batch; a full one is committed first when may_commit (no savepoint open). */
sl_err srv_batch_get(srv_t *s, bool may_commit, store_batch_t **out);
void srv_flush_soon(srv_t *s);
void srv_check_drained(srv_t *s);

/* srv_metrics.c */
void srv_metrics_count(srv_t *s, const char *op, int status);
sl_err srv_metrics_render(srv_t *s, struct evbuffer *out);
void srv_metrics_free(srv_t *s);

/* srv_workers.c */
sl_err srv_workers_start(srv_t *s, struct sl_error *err);
void srv_workers_stop(srv_t *s);
void srv_workers_free(srv_t *s);

#endif
