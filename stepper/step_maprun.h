/*
 * step_maprun.h - distributed Map: each iteration (or ItemBatcher batch) is a child
 * execution of the Map's ItemProcessor with its own record and history, grouped in a Map
 * Run (DescribeMapRun/ListMapRuns). Internal to stepper/.
 *
 * Records (besides the child executions' own):
 *   executions  map run arn                    -> 'M' map run (status, counters, config)
 *   exec_index  parent arn, start ms, mr arn   -> (ListMapRuns)
 *   exec_index  map run arn, start ms, child   -> (ListExecutions mapRunArn)
 *   frames      parent, frame, "M"             -> 'M' {"a": map run arn, "l": label}
 *   frames      parent, frame, "C", index      -> 'C' {"a": child arn, "k": items}: the
 *                                                 parent waits for that child
 * A child's record carries "sub" (machine path of the ItemProcessor in its parent's
 * machine) and "mapRun" {p: parent arn, f: frame, w: fan-out generation, i: index, m: arn}.
 */
#ifndef SLUICE_STEPPER_STEP_MAPRUN_H
#define SLUICE_STEPPER_STEP_MAPRUN_H

#include "stepper/step_int.h"

/* The machine a child execution runs: sub ([[state, branch], ...]) walked from top (a
 * frame's path "mp" the same way, step_frame_resolve). NULL when it does not fit. */
const struct sm_machine *step_maprun_walk(const struct sm_machine *top, json_t *sub);

/* The Map of f starts its map run (n iterations; kept of them already done by an earlier
 * run that is redriven: redrive_arn names that run, else NULL). Writes the record, the
 * index and MapRunStarted or MapRunRedriven. */
sl_err step_maprun_start(struct step_ctx *c, struct step_frame *f, uint32_t kept,
                         const char *redrive_arn);
/* Starts iteration idx of f as a child execution with input in (borrowed). */
sl_err step_maprun_spawn(struct step_ctx *c, struct step_frame *f, uint32_t idx, json_t *in);
/* The map run of f ended: status "SUCCEEDED", "FAILED" or "ABORTED" (only_running: change
 * it only while RUNNING). */
sl_err step_maprun_end(struct step_ctx *c, uint32_t frame, const char *status, bool only_running);
/* Aborts the children the map run of frame still waits for; they do not report back. */
sl_err step_maprun_abort_children(struct step_ctx *c, uint32_t frame);
/* The map run ARN of frame ("" when it has none). */
sl_err step_maprun_arn(struct step_ctx *c, uint32_t frame, char out[STEP_ARN_MAX]);
/* An execution is closing: a map run child reports to its parent's Map; a parent aborts
 * the children of every map run it still has. */
sl_err step_maprun_closing(struct step_ctx *c, enum step_status st);
sl_err step_maprun_child_closed(struct step_ctx *c, enum step_status st, json_t *output,
                                const char *error, const char *cause);

/* ResultWriter (s3:putObject): the run's children as ROOT/Bucket/Prefix/<run id>/
 * SUCCEEDED_0.json, FAILED_0.json, PENDING_0.json (the kinds that have entries) and
 * manifest.json; *out is the Map's result {MapRunArn, ResultWriterDetails {Bucket, Key}}.
 * SL_ERR_INVALID_ARG with ft set (States.ResultWriterFailed) is a state error. */
sl_err step_maprun_write_results(struct step_ctx *c, struct step_frame *f, json_t **out,
                                 struct step_fault *ft);
/* RedriveExecution on a transaction; map_child: a map run redrives its own child. */
sl_err step_redrive_txn(step_engine_t *eng, store_txn_t *txn, const char *arn,
                        const char *client_token, bool map_child, int64_t *date_ms,
                        const struct step_effects *fx, struct sl_error *err);

#endif
