/*
 * srv_exec_retention.h - closed executions expire (server-internal; docs/SERVER.md,
 * docs/STEPPER.md "Retention").
 *
 * `sluice serve --execution-retention DURATION` (YAML execution-retention; default 90 d as
 * AWS keeps a closed execution; 0 = keep everything): executions closed longer ago than
 * that are deleted with everything they own. The closed index (STORE_DB_CLOSED, by stop
 * time) names them: owner "E" entries are the stepper's (step_prune deletes an execution,
 * its history, input, kept results, map runs and their children), owner "X" entries the
 * durable EXPRESS start/end records (srv_express.c). One slice of at most
 * EXEC_RETENTION_SLICE records per loop iteration (one batch each), back to back while
 * there is work, then every EXEC_RETENTION_EVERY_S (1 s on --virtual-time). At start, data
 * written before the index is indexed once by one scan (meta "closed-index",
 * "closed-index-express").
 *
 * Threads: loop thread only.
 */
#ifndef SLUICE_SERVER_SRV_EXEC_RETENTION_H
#define SLUICE_SERVER_SRV_EXEC_RETENTION_H

#include "server/srv.h"
#include "server/srv_engine.h"
#include "store/store.h"

#define EXEC_RETENTION_DEFAULT_S (90LL * 24 * 3600)
#define EXEC_RETENTION_SLICE     1000 /* records read or deleted per loop iteration */
#define EXEC_RETENTION_EVERY_S   60
#define EXEC_RETENTION_XOWNER    "X" /* closed-index owner of the EXPRESS records */

typedef struct srv_exec_retention srv_exec_retention_t;

/* Starts the prune with s's cfg.execution_retention_s over e's stepper (after
 * srv_engine_new); *out is NULL when retention is off. */
sl_err srv_exec_retention_start(srv_t *s, srv_engine_t *e, srv_exec_retention_t **out,
                                struct sl_error *err);
void srv_exec_retention_free(srv_exec_retention_t *r);

/* sluice_executions_pruned_total and friends for GET /metrics (zeros when off). */
struct evbuffer;
sl_err srv_exec_retention_metrics(srv_t *s, struct evbuffer *out);

/* srv_express.c: an ended EXPRESS record's closed entry (in the batch that ends it), the
 * deletion of its records, and the one-time index of records ended before the index. */
sl_err srv_express_closed_put(store_txn_t *txn, const char *xarn, int64_t stop_ms);
sl_err srv_express_drop_record(store_txn_t *txn, const char *xarn);
sl_err srv_express_index_closed(store_txn_t *txn, size_t *indexed);

#endif
