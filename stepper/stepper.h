/*
 * stepper.h - the durable States Language engine (functional core, DESIGN.md).
 *
 * Model
 *   - An engine (step_engine_new) knows the compiled machines it may run (borrowed
 *     struct sm_machine pointers registered by name) and reads and writes only through the
 *     store batch the caller passes in. It opens no socket, starts no thread, never sleeps
 *     and never commits: the caller (server loop, `sluice run`) owns the batch and commits
 *     it, so a transition, its history events and its outbox land in one transaction.
 *   - An execution is a tree of frames: the top frame, one per Parallel branch, one per Map
 *     iteration, nested to any depth. Records (keys built with store_key_*):
 *       executions  arn                          -> execution record (JSON)
 *       frames      arn, frame id                -> frame: machine path, state, input,
 *                                                   phase, retry counts, fan-out counters
 *       frames      arn, frame id, 'R', index    -> a finished child's result
 *       history     arn, event id                -> history event (AWS shape, JSON)
 *       timers      due ms, kind, arn, frame, wk -> timer (Wait, retry back-off, task
 *                                                   timeout, heartbeat, execution timeout)
 *       task_tokens token                        -> task in flight
 *       tasks       resource name, created, tok  -> queued task (the workers issue serves it)
 *   - Inputs: step_start, step_task_succeed / step_task_fail / step_task_heartbeat (by
 *     token), step_fire_timers (due timers by time), step_stop. Each records what it
 *     changes and may make frames runnable; step_run_ready then runs runnable frames until
 *     they block (Task, Wait, retry back-off, Parallel/Map children), bounded per call so the
 *     loop stays responsive.
 *   - Effects go out through struct step_effects callbacks during the call: a task to
 *     dispatch, a timer to arm, an execution that finished. They describe records already
 *     written in the caller's batch: act on them only after the batch commits.
 *   - The runnable set is in memory; step_engine_recover() rebuilds it from the frames after
 *     a restart, and due timers are found again by time, so every execution resumes where its
 *     last committed batch left it.
 *
 * Ownership: JSON arguments are borrowed (jansson's plain convention); JSON in effect
 * structs is borrowed for the duration of the callback.
 * Threads: an engine belongs to the thread that owns the store's batch (the core thread).
 *
 * Caveats
 *   - Frames and execution records are JSON text on disk; the engine keeps the last saved
 *     ones in memory and reuses them while the stored bytes match, else parses them.
 *   - Each input is all or nothing per execution (step_start, step_run_ready, task
 *     answers, timers): an engine error undoes its writes and effects and ends the
 *     execution FAILED with States.Runtime (docs/STEPPER.md). step_stop, heartbeats,
 *     step_task_started and step_redrive undo theirs and return the error.
 *   - events:putEvents is served in the same transaction when a bus is attached
 *     (step_engine_set_put_events); otherwise it is an ordinary task.
 *   - A DISTRIBUTED Map runs each iteration as a child execution in a map run
 *     (step_maprun.c); EXPRESS children run on this durable engine too. A
 *     fire-and-forget startExecution goes to step_engine_set_start_child's hook first.
 *   - EXPRESS executions, ItemReader over S3 (only
 *     local files under item_reader_root are read), JSONata and workflow variables are
 *     not run by this engine yet (refused with a clear error at the state that needs them).
 */
#ifndef SLUICE_STEPPER_STEPPER_H
#define SLUICE_STEPPER_STEPPER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sl_err.h"
#include "statemachines/sm_graph.h"
#include "store/store.h"

typedef struct step_engine step_engine_t;

#define STEP_DEFAULT_PAYLOAD_LIMIT (256 * 1024)
#define STEP_DEFAULT_HISTORY_LIMIT 25000
#define STEP_DEFAULT_MAX_STEPS     1024
#define STEP_DEFAULT_MAP_CAP       1000
#define STEP_TOKEN_LEN             32 /* hex characters of a 128-bit token */
#define STEP_ARN_MAX               512

struct step_options {
	size_t payload_limit;         /* bytes of a state's input/output; 0 = 256 KiB */
	size_t history_limit;         /* events per execution; 0 = 25,000 */
	unsigned max_steps;           /* state activations per step_run_ready; 0 = 1024 */
	unsigned map_concurrency_cap; /* children alive per Map when MaxConcurrency is 0 */
	/* Seed of the jitter RNG (JitterStrategy FULL); 0 seeds from the CSPRNG. */
	uint64_t jitter_seed;
	/* Tasks served by workers (not built in, not .waitForTaskToken) are only Scheduled when
	 * the state runs: step_task_started writes ActivityStarted (with the worker's name) and
	 * starts the heartbeat clock when a worker takes the task, as AWS does. Off: Scheduled
	 * and Started at once (local runs, mocks). */
	bool lease_tasks;
	/* Map ItemReader: s3:getObject reads ROOT/Bucket/Key, s3:listObjectsV2 lists
	 * ROOT/Bucket (borrowed, must outlive the engine). NULL: ItemReader fails with
	 * States.ItemReaderFailed. Files over item_reader_max_bytes (0 = 64 MiB) are refused. */
	const char *item_reader_root;
	size_t item_reader_max_bytes;
	/* EXPRESS: no history events are written (GetExecutionHistory finds none). */
	bool no_history;
};

enum step_status {
	STEP_RUNNING,
	STEP_SUCCEEDED,
	STEP_FAILED,
	STEP_TIMED_OUT,
	STEP_ABORTED,
};
const char *step_status_name(enum step_status s); /* "RUNNING", ... as AWS */

/* A task to hand to a worker (borrowed for the callback). */
struct step_task {
	const char *token; /* STEP_TOKEN_LEN hex characters */
	const char *execution_arn;
	const char *state_name;
	enum sm_resource_kind kind;
	const char *resource; /* as written */
	const char *name;     /* activity/function name, or service name */
	const char *action;   /* service action or NULL */
	enum sm_integration integration;
	json_t *input;
	int64_t timeout_seconds;
	int64_t heartbeat_seconds; /* 0 = none */
};

struct step_finished {
	const char *execution_arn;
	enum step_status status;
	json_t *output;    /* SUCCEEDED only */
	const char *error; /* may be NULL */
	const char *cause; /* may be NULL */
};

/* An execution changed status (RUNNING at start, then its end): what the bus turns into
 * "Step Functions Execution Status Change" events. Borrowed for the callback. */
struct step_status_change {
	const char *execution_arn;
	const char *state_machine_arn;
	const char *name;
	enum step_status status;
	int64_t start_ms;
	int64_t stop_ms; /* 0 while RUNNING */
	json_t *input;
	json_t *output;    /* SUCCEEDED only */
	const char *error; /* may be NULL */
	const char *cause; /* may be NULL */
};

/* Callbacks the engine calls while handling an input; every member may be NULL. */
struct step_effects {
	void *arg;
	void (*task)(void *arg, const struct step_task *t);
	void (*timer)(void *arg, int64_t due_ms);
	void (*finished)(void *arg, const struct step_finished *f);
	void (*status)(void *arg, const struct step_status_change *s);
};

/* --- lifecycle -------------------------------------------------------------------------- */

/* st is borrowed and must outlive the engine; opt may be NULL. */
sl_err step_engine_new(store_t *st, const struct step_options *opt, step_engine_t **out);
void step_engine_free(step_engine_t *eng);

/* Makes machine runnable under name (copied); machine is borrowed and must outlive the
 * engine. Registering a name again replaces the pointer (running executions follow it). */
sl_err step_engine_add_machine(step_engine_t *eng, const char *name,
                               const struct sm_machine *machine);

/* Looks a machine up by name and revision for a caller that keeps its own (the server
 * compiles stored definitions on first use). *revision 0 asks for the current revision and
 * receives it. NULL = no such machine. The machine must outlive the engine. */
typedef const struct sm_machine *(*step_resolve_fn)(void *arg, store_txn_t *txn, const char *name,
                                                    uint32_t *revision);
/* With a resolver, executions record their machine's revision and keep it while the
 * machine changes; registered machines (step_engine_add_machine) are looked up first. */
void step_engine_set_resolver(step_engine_t *eng, step_resolve_fn fn, void *arg);

/* The bus behind arn:aws:states:::events:putEvents: publishes entries (PutEvents' Entries,
 * each Detail a JSON text; borrowed) in the caller's transaction txn and fills *answer with
 * PutEvents' answer (FailedEntryCount, Entries; new reference). A request-level problem is an
 * error code with err. Without it, putEvents tasks go out through the task effect like any
 * other resource (so `sluice run` can mock them). */
typedef sl_err (*step_put_events_fn)(void *arg, store_txn_t *txn, json_t *entries, json_t **answer,
                                     struct sl_error *err);
void step_engine_set_put_events(step_engine_t *eng, step_put_events_fn fn, void *arg);

/* Rebuilds the runnable set from the frames in the store (call once after open). */
sl_err step_engine_recover(step_engine_t *eng, store_batch_t *b, struct sl_error *err);

/* True when some frame is runnable (call step_run_ready again). */
bool step_engine_has_ready(const step_engine_t *eng);

/* --- inputs ----------------------------------------------------------------------------- */

struct step_start {
	const char *machine; /* registered name */
	uint32_t revision;   /* for the resolver; 0 = the current one */
	const char *name;    /* execution name; NULL = a new UUID */
	json_t *input;       /* NULL = {} */
};

/* Starts the child of arn:aws:states:::states:startExecution when the caller runs that
 * machine elsewhere: the server starts EXPRESS machines on its express engine, as
 * StartExecution does. Called in the parent's transaction txn (the child's start record goes
 * there); *taken false leaves the start to this engine. token is NULL for request-response;
 * for .sync (mode 1) and .sync:2 (mode 2) it is the parent's task token, which the caller
 * answers when the child ends (step_child_result, then step_task_succeed/_fail).
 * arn_out (STEP_ARN_MAX) gets the ARN the API shows. Errors as step_start; the parent's
 * task fails with them. */
typedef sl_err (*step_start_child_fn)(void *arg, store_txn_t *txn, const struct step_start *req,
                                      const char *token, int mode, char *arn_out, bool *taken,
                                      struct sl_error *err);
void step_engine_set_start_child(step_engine_t *eng, step_start_child_fn fn, void *arg);

/* What a .sync (mode 1: Input/Output as JSON text) or .sync:2 (mode 2: documents) parent
 * gets when its child ends: DescribeExecution's fields (ExecutionArn, StateMachineArn, Name,
 * Status, StartDate, StopDate, Input, Output, their Details, Error, Cause). Succeeded: the
 * task's output; else the cause text of its States.TaskFailed. New reference, NULL on
 * allocation failure. input/output/error/cause may be NULL. */
json_t *step_child_result(const char *exec_arn, const char *machine_arn, const char *name,
                          enum step_status st, int64_t start_ms, int64_t stop_ms, json_t *input,
                          json_t *output, const char *error, const char *cause, int mode);

/* Starts an execution: writes its record, ExecutionStarted and its runnable top frame.
 * arn_out (STEP_ARN_MAX bytes, may be NULL) receives the execution ARN.
 * SL_ERR_SM_NOT_FOUND, SL_ERR_EXEC_EXISTS, SL_ERR_INVALID_NAME, SL_ERR_INVALID_EXECUTION_INPUT. */
sl_err step_start(step_engine_t *eng, store_batch_t *b, const struct step_start *req, char *arn_out,
                  const struct step_effects *fx, struct sl_error *err);

/* Runs runnable frames until they block or max_steps activations are used. *ran (may be
 * NULL) gets the number of activations. */
sl_err step_run_ready(step_engine_t *eng, store_batch_t *b, const struct step_effects *fx,
                      unsigned *ran, struct sl_error *err);

/* A worker's answer for token. SL_ERR_TASK_NOT_FOUND if the token is unknown or no longer
 * awaited (timed out, execution stopped). output is borrowed. */
sl_err step_task_succeed(step_engine_t *eng, store_batch_t *b, const char *token, json_t *output,
                         const struct step_effects *fx, struct sl_error *err);
sl_err step_task_fail(step_engine_t *eng, store_batch_t *b, const char *token, const char *error,
                      const char *cause, const struct step_effects *fx, struct sl_error *err);
/* Pushes the heartbeat deadline forward. */
sl_err step_task_heartbeat(step_engine_t *eng, store_batch_t *b, const char *token,
                           const struct step_effects *fx, struct sl_error *err);

/* A worker took the task of token (step_lease.c): records the lease (worker_name, may be
 * NULL) and, with lease_tasks, writes the Started event and arms the heartbeat timer from
 * now. out (may be NULL) receives what the worker needs (input: new reference).
 * SL_ERR_TASK_NOT_FOUND if the token is not awaited; SL_ERR_CONFLICT if already taken. */
struct step_started {
	json_t *input;
	int64_t timeout_seconds;
	int64_t heartbeat_seconds; /* 0 = none */
	enum sm_integration integration;
};
sl_err step_task_started(step_engine_t *eng, store_batch_t *b, const char *token,
                         const char *worker_name, const struct step_effects *fx,
                         struct step_started *out, struct sl_error *err);
enum step_task_state {
	STEP_TASK_GONE,    /* not awaited (answered, timed out, stopped, never existed) */
	STEP_TASK_WAITING, /* awaited, not taken by a worker */
	STEP_TASK_TAKEN,   /* awaited, leased to a worker */
};
struct step_task_info {
	enum step_task_state state;
	enum sm_resource_kind kind;
	enum sm_integration integration;
	char name[128];  /* activity/function/service name; "" when none */
	char action[64]; /* service action; "" when none */
};
/* Where the task of token stands and what it is (a read; any transaction). */
sl_err step_task_info(step_engine_t *eng, store_txn_t *txn, const char *token,
                      struct step_task_info *out);

/* Calls fx->task again for every task in flight (in token order): after a restart the
 * dispatcher refills its queues from the store with it. */
sl_err step_tasks_replay(step_engine_t *eng, store_txn_t *txn, const struct step_effects *fx,
                         struct sl_error *err);

/* Fires every timer due at or before now_ms (at most limit; 0 = no limit). */
sl_err step_fire_timers(step_engine_t *eng, store_batch_t *b, int64_t now_ms, unsigned limit,
                        const struct step_effects *fx, unsigned *fired, struct sl_error *err);
/* The earliest timer's due time; SL_ERR_NOT_FOUND when there is none. */
sl_err step_next_timer(step_engine_t *eng, store_txn_t *txn, int64_t *due_ms);

/* StopExecution: ABORTED with ExecutionAborted; SL_ERR_EXEC_NOT_FOUND if unknown; a closed
 * execution is left as it is (SL_OK). error and cause may be NULL. */
sl_err step_stop(step_engine_t *eng, store_batch_t *b, const char *arn, const char *error,
                 const char *cause, const struct step_effects *fx, struct sl_error *err);

/* RedriveExecution: reopens a FAILED, TIMED_OUT or ABORTED execution (closed less than 14
 * days ago) at the top-level state that did not finish, with the input that state had:
 * ExecutionRedriven {redriveCount}, status RUNNING, retry counts start over. A top-level
 * Map or Parallel state keeps its succeeded children's results and re-runs only the failed
 * and aborted ones (a distributed Map's run is redriven: MapRunRedriven).
 * client_token (may be NULL) makes a repeat of the latest redrive answer it again.
 * *date_ms (may be NULL) receives the redrive time. SL_ERR_EXEC_NOT_FOUND,
 * SL_ERR_EXEC_NOT_REDRIVABLE (with AWS's reason in err). */
sl_err step_redrive(step_engine_t *eng, store_batch_t *b, const char *arn, const char *client_token,
                    int64_t *date_ms, const struct step_effects *fx, struct sl_error *err);

/* --- retention (step_prune.c) ---------------------------------------------------------- */

/* Closed executions are indexed by stop time (STORE_DB_CLOSED: str(owner) i64(stop ms)
 * raw(arn); owner "E" is this engine's; a map run's children are not indexed, they go with
 * their parent). step_prune deletes executions closed before before_ms with everything they
 * own (history, input, kept results, map runs and their child executions), oldest first,
 * touching at most about budget records (at least 16); *more when it stopped for the
 * budget. A deletion cut by the budget goes on at the next call: the record goes first
 * (nothing half-gone is visible), the closed entry last. stats (not reset) counts it. */
struct step_prune_stats {
	uint64_t executions; /* top-level executions deleted */
	uint64_t children;   /* map run child executions deleted with them */
	uint64_t map_runs;
	uint64_t records; /* keys deleted */
};
sl_err step_prune(step_engine_t *eng, store_batch_t *b, int64_t before_ms, size_t budget,
                  struct step_prune_stats *stats, bool *more, struct sl_error *err);
/* Once per data directory (meta "closed-index"): indexes the closed executions written
 * before the index existed, by one scan; *indexed: how many. */
sl_err step_prune_backfill(step_engine_t *eng, store_batch_t *b, size_t *indexed,
                           struct sl_error *err);
/* The closed index's key (other owners, e.g. the server's EXPRESS records, use their own
 * owner string). */
void step_closed_key(struct store_key *k, const char *owner, int64_t stop_ms, const char *arn);

/* --- reads ------------------------------------------------------------------------------ */

/* DescribeExecution's shape (executionArn, stateMachineArn, name, status, startDate,
 * stopDate, input, output, error, cause). New reference. */
sl_err step_describe(step_engine_t *eng, store_txn_t *txn, const char *arn, json_t **out,
                     struct sl_error *err);
/* The history events in order (a JSON array, new reference). */
sl_err step_history(step_engine_t *eng, store_txn_t *txn, const char *arn, json_t **out,
                    struct sl_error *err);

/* Adds DescribeExecution's redriveCount, redriveDate (RFC 3339, after a redrive),
 * redriveStatus (REDRIVABLE / NOT_REDRIVABLE) and redriveStatusReason to d. */
sl_err step_redrive_describe(step_engine_t *eng, store_txn_t *txn, const char *arn, json_t *d,
                             struct sl_error *err);

/* The machine name and revision (0 without a resolver) an execution runs.
 * SL_ERR_EXEC_NOT_FOUND if unknown. name_cap bytes of name_out. */
sl_err step_execution_machine(step_engine_t *eng, store_txn_t *txn, const char *arn, char *name_out,
                              size_t name_cap, uint32_t *revision, struct sl_error *err);

/* GetExecutionHistory's paging. max_results 0 = 100 (at most 1000); include_data applies
 * only when include_data_set (AWS's default is true). */
struct step_history_query {
	size_t max_results;
	const char *next_token; /* from an earlier page, or NULL */
	bool reverse;
	bool include_data_set;
	bool include_data;
};
/* One page of events (new reference) and *next_token (new string, NULL on the last page).
 * SL_ERR_EXEC_NOT_FOUND, SL_ERR_INVALID_TOKEN, SL_ERR_SFN_VALIDATION. */
sl_err step_history_page(step_engine_t *eng, store_txn_t *txn, const char *arn,
                         const struct step_history_query *q, json_t **out, char **next_token,
                         struct sl_error *err);

/* ListExecutions of one machine (registered name), newest first, optionally one status
 * ("RUNNING", "SUCCEEDED", ...). Items in AWS's shape; paging as above. */
struct step_list_query {
	const char *machine;
	const char *status;
	size_t max_results;
	const char *next_token;
};
sl_err step_list_executions(step_engine_t *eng, store_txn_t *txn, const struct step_list_query *q,
                            json_t **out, char **next_token, struct sl_error *err);

/* --- distributed Map: map runs (step_maprun.c) ------------------------------------------ */

/* DescribeMapRun's fields, dates as epoch ms under "startMs", "stopMs", "redriveMs"; also
 * "stateMachineArn" (the parent's machine, ListMapRuns) and "childMachineArn".
 * SL_ERR_MAP_RUN_NOT_FOUND. New reference. */
sl_err step_describe_map_run(step_engine_t *eng, store_txn_t *txn, const char *arn, json_t **out,
                             struct sl_error *err);
/* ListMapRuns of an execution, newest first: items {executionArn, mapRunArn,
 * stateMachineArn, startMs, stopMs}; max 0 = 100; *next (new string) or NULL.
 * SL_ERR_EXEC_NOT_FOUND, SL_ERR_INVALID_TOKEN. The children of a map run are listed by
 * step_list_executions with the map run ARN as the machine. */
sl_err step_list_map_runs(step_engine_t *eng, store_txn_t *txn, const char *exec_arn, size_t max,
                          const char *next_token, json_t **out, char **next, struct sl_error *err);
/* DescribeStateMachineForExecution of a map run's child: {definition (the ItemProcessor
 * as JSON text, from definition: the parent machine's text as written), stateMachineArn,
 * name, label, mapRunArn}. SL_ERR_NOT_FOUND when arn is not a map run's child. */
sl_err step_map_child_definition(step_engine_t *eng, store_txn_t *txn, const char *arn,
                                 const char *definition, json_t **out, struct sl_error *err);
/* UpdateMapRun: a negative member is left as it is. A running Map takes the new
 * MaxConcurrency and tolerated failures at once. */
struct step_map_run_update {
	int64_t max_concurrency;
	int64_t tolerated_failure_count;
	double tolerated_failure_percentage;
};
sl_err step_update_map_run(step_engine_t *eng, store_batch_t *b, const char *arn,
                           const struct step_map_run_update *u, const struct step_effects *fx,
                           struct sl_error *err);

#endif
