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

#endif
