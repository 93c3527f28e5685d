/*
 * srv.h - the sluice daemon: one libevent loop, the AWS JSON HTTP front-end, the NNG worker
 * socket, and the group commit of the store's write batch.
 *
 * Threads: everything here runs on the loop thread (the one that calls srv_run) except
 * srv_bridge_post, which any thread may call. Handlers, timeouts and commit callbacks all
 * run on the loop thread.
 *
 * The handler contract (one per AWS operation, registered with srv_register_op):
 *
 *   sl_err handler(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err);
 *
 *   - body is the request's JSON object, borrowed: valid until the request is answered
 *     (json_incref it to keep parts longer).
 *   - Return an error (and explain it in err) to answer {"__type", "message"} with
 *     sl_err_http_status(code). Any store writes the handler made are rolled back: the
 *     handler runs inside a store savepoint (opened on its first srv_req_batch call).
 *   - Return SL_OK after calling srv_reply_json (synchronous answer), or after
 *     srv_req_defer (answer later, at most timeout_ms from now).
 *   - A request that used the store batch (srv_req_batch) is answered from the batch's
 *     commit callback, never before: if the commit fails, the client gets the commit error
 *     instead of the reply. Read-only handlers that use store_read_begin answer at once.
 *   - A deferred request (long poll) is answered later with srv_reply_json/srv_reply_error
 *     from any loop callback; when its time is up, or the server shuts down, its timeout
 *     function runs and must answer (the server answers SL_ERR_TIMEOUT if it does not).
 *     A deferred request that writes calls srv_req_batch again before replying.
 */
#ifndef SLUICE_SERVER_SRV_H
#define SLUICE_SERVER_SRV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sl_err.h"
#include "common/sl_log.h"
#include "store/store.h"

struct event_base;

/* --- configuration (srv_config.c) ------------------------------------------------------ */

#define SRV_DEFAULT_DATA     "./sluice-data"
#define SRV_DEFAULT_HTTP     "127.0.0.1:8420"
#define SRV_DEFAULT_WORKERS  "tcp://127.0.0.1:8421"
#define SRV_DEFAULT_MAX_BODY (1024 * 1024)

struct srv_config {
	char *data_dir;
	char *http;    /* "HOST:PORT", port 0 = any free port */
	char *workers; /* NNG URL: tcp://HOST:PORT, tls+tcp://HOST:PORT, ipc://PATH, inproc://NAME
	                */
	char *region;
	char *account;
	enum sl_log_level log_level;
	enum sl_log_format log_format;
	size_t max_body;          /* bytes of one request body (413 above) */
	size_t max_header;        /* bytes of one request's headers */
	unsigned max_connections; /* open HTTP connections; more get 503 and are closed */
	unsigned idle_timeout_s;  /* keep-alive connections idle this long are closed */
	unsigned drain_timeout_s; /* on SIGTERM, how long in-flight requests may take */
	unsigned rules_per_bus;   /* rules on one bus (AWS's quota, the default: 300) */
	/* test-only: the wall clock is fake from virtual_time_ms on and moves only with
	 * Sluice.AdvanceClock (`sluice serve --virtual-time START`) */
	bool virtual_time;
	int64_t virtual_time_ms;
	/* event deliveries (srv_deliver.c) */
	unsigned delivery_backoff_ms;     /* first retry's back-off ceiling (full jitter) */
	unsigned delivery_backoff_cap_ms; /* largest back-off ceiling */
	unsigned delivery_timeout_ms;     /* one HTTP delivery */
	unsigned delivery_max_inflight;   /* HTTP deliveries at once */
	bool delivery_paused;             /* records are kept but not processed */
	/* bus logs keep events this long, then prune what nothing needs (srv_retention.h);
	 * 0 = keep everything */
	int64_t event_retention_s;
	/* closed executions are deleted this long after their close (srv_exec_retention.h);
	 * 0 = keep everything */
	int64_t execution_retention_s;
	/* the worker socket (srv_workers.c, docs/WORKERS.md) */
	char *workers_token; /* every worker message must carry it; NULL = no check */
	char *workers_cert;  /* tls+tcp://: PEM certificate chain file */
	char *workers_key;   /* tls+tcp://: PEM private key file */
	/* Map ItemReader reads s3://BUCKET/KEY as ITEM_READER_ROOT/BUCKET/KEY; NULL = off */
	char *item_reader_root;
	/* Step Functions Local's MockConfigFile: StartExecution/StartSyncExecution with
	 * "stateMachineArn#TestCase" answer that execution's tasks from it; NULL = off */
	char *mock_config;
};

/* Fills c with the defaults (strings are allocated: release with srv_config_clear). */
sl_err srv_config_init(struct srv_config *c);
void srv_config_clear(struct srv_config *c);
/* Sets one key ("data", "http", "limits.max-body", ...) from text. where names the source
 * for messages ("--http", "sluice.yaml:3:7"). Unknown keys and bad values are errors. */
sl_err srv_config_set(struct srv_config *c, const char *key, const char *value, const char *where,
                      struct sl_error *err);
/* Applies a YAML mapping with the same keys; name is used in "name:line:column" messages.
 * On error c may hold some of the file's values: callers discard it. */
sl_err srv_config_load_yaml(struct srv_config *c, const char *text, size_t len, const char *name,
                            struct sl_error *err);
sl_err srv_config_load_file(struct srv_config *c, const char *path, struct sl_error *err);
/* Splits "HOST:PORT" or "[V6]:PORT" into host (NUL-terminated) and port. */
sl_err srv_parse_hostport(const char *s, char *host, size_t host_cap, uint16_t *port,
                          struct sl_error *err);

/* --- the bridge from other threads into the loop (srv_bridge.c) ------------------------ */

typedef struct srv_bridge srv_bridge_t;
typedef void (*srv_bridge_fn)(void *arg);

/* An event on base that runs posted functions on the loop thread. base must have been
 * created after evthread_use_pthreads(). */
sl_err srv_bridge_new(struct event_base *base, srv_bridge_t **out);
/* Runs every function still queued (on the caller's thread), then frees. NULL is fine. */
void srv_bridge_free(srv_bridge_t *b);
/* Any thread: fn(arg) runs on the loop thread, in post order for one posting thread.
 * SL_ERR_NOMEM if the item cannot be queued (fn is then not called). */
sl_err srv_bridge_post(srv_bridge_t *b, srv_bridge_fn fn, void *arg);

/* --- the server (srv_main.c) ----------------------------------------------------------- */

typedef struct srv srv_t;
typedef struct srv_req srv_req_t;

typedef sl_err (*srv_op_fn)(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err);
/* Runs when a deferred request's time is up or the server is stopping: answer now. */
typedef void (*srv_timeout_fn)(srv_req_t *req, void *arg);

/* Opens the store, binds HTTP and the worker socket. cfg is copied. */
sl_err srv_new(const struct srv_config *cfg, srv_t **out, struct sl_error *err);
/* Runs the loop until SIGINT/SIGTERM (or srv_stop) and the drain are done. The readiness
 * line goes to stderr first. Returns SL_OK after a clean stop. */
sl_err srv_run(srv_t *s, struct sl_error *err);
/* Begins the same graceful stop as SIGTERM (loop thread only). */
void srv_stop(srv_t *s);
void srv_free(srv_t *s);

struct event_base *srv_base(srv_t *s);
store_t *srv_store(srv_t *s);
srv_bridge_t *srv_bridge(srv_t *s);
/* Bound addresses (after srv_new): "127.0.0.1:41234", "tcp://127.0.0.1:41235". */
const char *srv_http_addr(const srv_t *s);
const char *srv_workers_addr(const srv_t *s);

/* Registers the handler of one X-Amz-Target ("AWSEvents.ListRules"). name is copied.
 * SL_ERR_EXISTS if the operation already has one. */
sl_err srv_register_op(srv_t *s, const char *name, srv_op_fn fn, void *ctx);

/* The open store batch for code that is not answering a request (timers, worker frames):
 * the loop commits it after the current iteration's ready events (a full batch is committed
 * first). Handlers use srv_req_batch instead. */
sl_err srv_batch(srv_t *s, store_batch_t **out);

/* --- answering a request --------------------------------------------------------------- */

/* The open batch, for reads and writes of this request; its answer then waits for the
 * commit. Inside the handler the first call opens the request's savepoint. */
sl_err srv_req_batch(srv_req_t *req, store_batch_t **out);
/* Answers 200 with obj (stolen; NULL means {}). At most one answer per request. */
void srv_reply_json(srv_req_t *req, json_t *obj);
/* Answers {"__type": sl_err_aws_type(code), "message": ...} with sl_err_http_status(code). */
void srv_reply_error(srv_req_t *req, sl_err code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Keeps the request open after the handler returns, at most timeout_ms; fn (may be NULL)
 * runs on expiry or shutdown. Call from the handler, before returning SL_OK. */
sl_err srv_req_defer(srv_req_t *req, uint32_t timeout_ms, srv_timeout_fn fn, void *arg);
/* The request id (x-amzn-RequestId) and operation, for logs. */
const char *srv_req_id(const srv_req_t *req);
const char *srv_req_operation(const srv_req_t *req);
srv_t *srv_req_server(const srv_req_t *req);

#endif
