/*
 * srv_engine.h - the stepper inside `sluice serve`: one durable engine per server, driven
 * from the loop (ready frames in bounded slices, a timer at the earliest durable timer),
 * with machines compiled from their stored definitions on first use.
 *
 * Threads: loop thread only. Every write goes through srv_batch / srv_req_batch, so
 * engine work is group-committed with the requests around it.
 */
#ifndef SLUICE_SERVER_SRV_ENGINE_H
#define SLUICE_SERVER_SRV_ENGINE_H

#include <stdint.h>

#include "common/sl_err.h"
#include "server/srv.h"
#include "statemachines/sm_graph.h"
#include "stepper/stepper.h"

typedef struct srv_engine srv_engine_t;

/* Creates the engine of s, recovers runnable frames and timers from the store, and
 * offers the tasks in flight again. Call after srv_new, before srv_run. */
sl_err srv_engine_new(srv_t *s, srv_engine_t **out, struct sl_error *err);
/* Call after srv_run, before srv_free. NULL is fine. */
void srv_engine_free(srv_engine_t *e);
/* The engine created for s, or NULL. */
srv_engine_t *srv_engine_of(srv_t *s);

step_engine_t *srv_engine_stepper(srv_engine_t *e);
/* The effects to pass to every step_* input. */
const struct step_effects *srv_engine_effects(srv_engine_t *e);
/* After an input made frames runnable: run them soon, in bounded slices. */
void srv_engine_kick(srv_engine_t *e);

/* The wall clock jumped (Sluice.AdvanceClock under --virtual-time): re-arm the timer from
 * the store, so timers now due fire at once. */
void srv_engine_clock_changed(srv_engine_t *e);

/* The compiled machine of name at *revision (0 = current; then filled in), compiled from
 * the stored definition and cached. SL_ERR_SM_NOT_FOUND, SL_ERR_INVALID_DEFINITION. */
sl_err srv_engine_machine(srv_engine_t *e, store_txn_t *txn, const char *name, uint32_t *revision,
                          const struct sm_machine **out, struct sl_error *err);

/* Called in the engine's batch for every execution status change (RUNNING, then its end):
 * the bus publishes AWS's "Step Functions Execution Status Change" events with it. */
typedef sl_err (*srv_engine_status_fn)(void *arg, store_batch_t *b,
                                       const struct step_status_change *sc);
void srv_engine_set_status_hook(srv_engine_t *e, srv_engine_status_fn fn, void *arg);

/* ---- tasks, routed to the engine that awaits the token --------------------------------
 * EXPRESS executions run on a second engine over a scratch store (see below); their tasks go
 * through the same dispatcher and worker paths as the durable ones. These calls find the
 * engine that awaits token and use its store and effects: b is the durable batch the
 * caller's answer waits on (the express engine writes in its scratch batch). */
sl_err srv_engine_task_info(srv_t *s, store_txn_t *txn, const char *token,
                            struct step_task_info *out);
sl_err srv_engine_task_started(srv_t *s, store_batch_t *b, const char *token,
                               const char *worker_name, struct step_started *out,
                               struct sl_error *err);
sl_err srv_engine_task_succeed(srv_t *s, store_batch_t *b, const char *token, json_t *output,
                               struct sl_error *err);
sl_err srv_engine_task_fail(srv_t *s, store_batch_t *b, const char *token, const char *error,
                            const char *cause, struct sl_error *err);
sl_err srv_engine_task_heartbeat(srv_t *s, store_batch_t *b, const char *token,
                                 struct sl_error *err);

/* ---- EXPRESS executions ----------------------------------------------------------------
 * They run "in memory" as AWS runs them: on a second step engine (no history) over a
 * scratch LMDB store in DATA/express, opened with no_sync and emptied at every start. The
 * durable store keeps only each execution's start (machine, revision, name, input) and its
 * end (status, output or error, stop date), in the batch of the request or of the step
 * that ended it. After a crash, asynchronous executions with a start and no end run again
 * from the beginning (at-least-once); synchronous ones are closed as ABORTED and not run
 * again (at-most-once). Each may run AWS's 5 minutes: then it ends TIMED_OUT. */

/* Starts an EXPRESS execution of st (machine compiled and checked by the caller) in the
 * request req: the start record goes in req's batch; the execution runs on the express
 * engine. sync: req is deferred until the execution ends and then answered with
 * StartSyncExecution's shape; otherwise the caller answers. mock (may be NULL, taken) answers
 * its tasks; test_case (may be NULL) is mock's name, kept in the start record so a run again
 * after a restart is mocked too. arn_out (STEP_ARN_MAX) receives the express ARN, *start_ms its
 * start. SL_ERR_EXEC_EXISTS, SL_ERR_INVALID_NAME, SL_ERR_INVALID_EXECUTION_INPUT. */
struct step_mock;
sl_err srv_engine_express_start(srv_engine_t *e, srv_req_t *req, const struct step_start *st,
                                bool sync, struct step_mock *mock, const char *test_case,
                                char *arn_out, int64_t *start_ms, struct sl_error *err);

/* True when the stored machine name is of type EXPRESS. */
bool srv_engine_machine_is_express(store_txn_t *txn, const char *name);
/* Starts st in batch b on the engine its machine's type calls for (EXPRESS: the express
 * engine, its start record in b; else the durable engine), for callers that are not an
 * API request (EventBridge targets). arn_out (STEP_ARN_MAX, may be NULL) gets the ARN the
 * API would show. Errors as step_start. */
sl_err srv_engine_start(srv_engine_t *e, store_batch_t *b, const struct step_start *st,
                        char *arn_out, struct sl_error *err);

/* ---- --mock-config -------------------------------------------------------------------- */

/* The mocked responses of machine's test case (a new object for srv_engine_mock_attach).
 * SL_ERR_NOT_FOUND without --mock-config; SL_ERR_SM_NOT_FOUND (err says which) when the
 * file has no such machine or test case. */
sl_err srv_engine_mock_load(srv_engine_t *e, const char *machine, const char *test_case,
                            struct step_mock **out, struct sl_error *err);
/* The tasks of the (durable) execution arn are answered from mock (taken). */
sl_err srv_engine_mock_attach(srv_engine_t *e, const char *arn, struct step_mock *mock);
/* At recovery: attaches again the test case tc of machine that arn was started with. A
 * mock file that no longer has it is logged (naming shown_arn) and not an error: the
 * execution's tasks then wait for workers. */
sl_err srv_engine_mock_restore(srv_engine_t *e, const char *arn, const char *shown_arn,
                               const char *machine, const char *tc);
/* Writes in txn (the start's batch) that the durable execution arn of machine is mocked by
 * test_case: at start-up its mock is attached again while it runs; its end deletes this. */
sl_err srv_engine_mock_persist(store_txn_t *txn, const char *arn, const char *machine,
                               const char *test_case);

/* Counters for tests and logs. */
struct srv_engine_express_stats {
	size_t running;          /* EXPRESS executions in flight */
	uint64_t started, ended; /* since the server started */
	uint64_t rerun;          /* started again at start-up (at-least-once) */
	uint64_t wipes;          /* times the scratch store was emptied while idle */
};
void srv_engine_express_stats(srv_engine_t *e, struct srv_engine_express_stats *out);
/* Appends the EXPRESS gauges and counters to /metrics (nothing without an engine). */
struct evbuffer;
sl_err srv_engine_metrics(srv_t *s, struct evbuffer *out);

#endif
