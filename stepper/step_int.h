/*
 * step_int.h - what the stepper's files share: the engine, the per-call context, frames.
 */
#ifndef SLUICE_STEPPER_STEP_INT_H
#define SLUICE_STEPPER_STEP_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "statemachines/sm_graph.h"
#include "stepper/stepper.h"
#include "store/store.h"

#define STEP_CACHE_SLOTS 256
#define STEP_HOT_SLOTS   1024
/* Records above this size are not kept (their documents would stay in memory): at most
 * 2 x 1,024 x 16 KiB of text and as much in documents. */
#define STEP_HOT_MAX_TEXT (16 * 1024)

struct step_machine_ent {
	char *name;
	const struct sm_machine *m;
};

struct step_ready {
	char *arn;
	uint32_t frame;
};

struct step_engine {
	store_t *st;
	struct step_options opt;
	struct step_machine_ent *machines;
	size_t n_machines, cap_machines;
	step_resolve_fn resolve;
	void *resolve_arg;
	step_put_events_fn put_events;
	void *put_events_arg;
	step_start_child_fn start_child;
	void *start_child_arg;
	/* runnable frames, a ring */
	struct step_ready *ready;
	size_t r_head, r_len, r_cap;
	uint64_t rng;
	uint64_t task_seq;
	/* immutable documents (execution inputs, Map/Parallel effective inputs), direct-mapped */
	struct step_cache_ent {
		char *key;
		json_t *v;
	} cache[STEP_CACHE_SLOTS];
	/* Execution records as last saved, with their stored text: step_exec_load takes the
	 * object back instead of parsing when the stored bytes are still exactly that text
	 * (a rolled-back or aborted write then simply misses). Direct-mapped by ARN. */
	struct step_hot_ent {
		char *arn;
		json_t *exec;
		char *text;
		size_t len;
	} hot[STEP_HOT_SLOTS];
	/* Frames as last saved, with their stored text: step_frame_load takes a copy back
	 * instead of parsing when the stored bytes are still that text. */
	struct step_fhot_ent {
		char *arn;
		uint32_t id;
		struct step_frame *f;
		char *text;
		size_t len;
	} fhot[STEP_HOT_SLOTS];
	int64_t ts_ms; /* the time last formatted for an event, and its text */
	char ts[32];
};

/* What a frame is doing. */
enum step_phase {
	PH_ENTER = 0, /* enter state st with input in */
	PH_RERUN,     /* run state st's work again (after a retry back-off) */
	PH_TASK,      /* waiting for the task with token tok */
	PH_WAIT,      /* waiting for a Wait state's timer */
	PH_RETRY,     /* waiting for a retry back-off timer */
	PH_KIDS,      /* waiting for Parallel/Map children */
};

enum step_timer_kind {
	TK_WAIT = 1,
	TK_RETRY,
	TK_TASK_TIMEOUT,
	TK_HEARTBEAT,
	TK_EXEC_TIMEOUT,
};

struct step_frame {
	uint32_t id;
	int64_t parent; /* -1: top frame */
	uint32_t pidx;  /* branch or item index in the parent */
	json_t *mp;     /* machine path [[state, branch], ...] from the top machine */
	const struct sm_machine *m;
	size_t st;
	json_t *in; /* raw input of state st */
	enum step_phase ph;
	json_t *rc;             /* retry count per retrier of state st */
	uint64_t prev;          /* last history event of this frame */
	uint64_t entered_event; /* id of state st's Entered event */
	int64_t entered_ms;
	uint64_t wk; /* bumps whenever the frame stops waiting: stale timers are ignored */
	char tok[STEP_TOKEN_LEN + 1];
	/* fan-out (Parallel, Map) */
	/* Parallel: branch input; Map: effective input (after InputPath). Kept under its own
	 * key (written once per fan-out) and loaded on demand by step_frame_eff. */
	json_t *eff;
	uint32_t n, nx, alive, done, failed;
	uint64_t pw; /* child frames: the parent's wake counter when it created them */
	/* While its children run, a fan-out frame's input sits under its own key (written once)
	 * so that each child's completion rewrites a small record; in is then NULL until
	 * step_frame_in loads it. */
	bool in_aux;
	uint32_t maxc;
	int64_t tol_n;  /* -1: none */
	double tol_p;   /* < 0: none */
	json_t *ferr;   /* first failure {"Error","Cause"} */
	uint32_t depth; /* nesting depth */
	bool gone;      /* in memory only: the frame ended and its record is deleted */
};

/* One input's work: the engine, the batch, the effects and the execution being changed. */
struct step_ctx {
	step_engine_t *eng;
	store_txn_t *txn;
	const struct step_effects *fx;
	const char *arn;
	json_t *exec; /* execution record */
	const struct sm_machine *top;
	bool exec_dirty;
	bool closed;          /* the execution ended during this call */
	int64_t inline_frame; /* the frame step_frame_run is running: not queued again */
	/* The top frame failing now (step_frame_fail): what a redrive restarts from. */
	struct step_frame *failing_top;
	struct sl_error *err;
	/* The payload dumped last (a reference held) and its text: a state's output is
	 * measured, written as its Exited output and as the next state's Entered input from
	 * one dump. Payloads are never changed in place once made (sm_path_set copies). */
	json_t *memo_v;
	char *memo_s;
	size_t memo_n;
	/* the stored text of exec's last save (the record goes to eng->hot when done) */
	char *saved;
	size_t saved_len;
	bool saved_loaded; /* saved is the text exec was loaded from (not saved by this ctx) */
};

/* A growing byte buffer (stack first, then the heap): stored records are written into it.
 * A failed allocation sets oom and later writes do nothing. */
struct step_buf {
	char *p;
	size_t len, cap;
	bool oom;
	char stack[2048];
};
void step_buf_init(struct step_buf *b);
void step_buf_free(struct step_buf *b);
void step_buf_add(struct step_buf *b, const void *s, size_t n);
void step_buf_u64(struct step_buf *b, uint64_t v);
void step_buf_i64(struct step_buf *b, int64_t v);
/* s[0..n) as a JSON string, escaped exactly as jansson's compact dump does. */
void step_buf_jstr(struct step_buf *b, const char *s, size_t n);
/* v as json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) writes it; false on failure. */
bool step_buf_json(struct step_buf *b, json_t *v);
/* The compact text of payload v (NULL: null), borrowed from the memo until the next call. */
sl_err step_payload_text(struct step_ctx *c, json_t *v, const char **s, size_t *n);
void step_memo_clear(struct step_ctx *c);

/* --- step_exec.c: records ---------------------------------------------------------------- */
void step_key_exec(struct store_key *k, const char *arn);
void step_key_frame(struct store_key *k, const char *arn, uint32_t id);
void step_key_result(struct store_key *k, const char *arn, uint32_t id, uint32_t idx);
/* The ARN at the end of a STORE_DB_EXEC_INDEX key k: after the plen-byte prefix and 8 bytes
 * of order. False when k is too short or the ARN too long for out. */
bool step_index_arn(const struct store_val *k, size_t plen, char out[STEP_ARN_MAX]);
/* Page tokens of exec-index listings (ListExecutions 'x', ListMapRuns 'm'): the tag, then
 * the hex of the key to go on from; decode checks the key stays under prefix (resume holds
 * STORE_MAX_KEY bytes). encode: NULL when memory ran out. */
bool step_page_token_decode(const char *token, char tag, const struct store_key *prefix,
                            unsigned char *resume, size_t *rlen);
char *step_page_token_encode(char tag, const struct store_val *k);
sl_err step_put_json(store_txn_t *txn, enum store_db db, const struct store_key *k, char tag,
                     json_t *v);
/* Parses a stored record's JSON: SL_ERR_STORE when damaged, SL_ERR_NOMEM when memory ran
 * out. */
sl_err step_parse_record(const char *p, size_t n, json_t **out);
sl_err step_get_json(store_txn_t *txn, enum store_db db, const struct store_key *k, char tag,
                     json_t **out);
sl_err step_exec_load(struct step_ctx *c, const char *arn);
/* The execution input (borrowed from the engine's cache, valid during the call). */
json_t *step_exec_input(struct step_ctx *c);
sl_err step_exec_put_input(struct step_ctx *c, json_t *input);
void step_key_input(struct store_key *k, const char *arn);
void step_key_eff(struct store_key *k, const char *arn, uint32_t id);
/* Loads f->in if it is kept aside (in_aux). */
sl_err step_frame_in(struct step_ctx *c, struct step_frame *f);
/* Loads f->eff if it is not loaded. */
sl_err step_frame_eff(struct step_ctx *c, struct step_frame *f);
json_t *step_cache_get(step_engine_t *eng, const char *key);
void step_cache_put(step_engine_t *eng, const char *key, json_t *v);
void step_cache_clear(step_engine_t *eng);
void step_hot_clear(step_engine_t *eng);
void step_fhot_clear(step_engine_t *eng);
sl_err step_exec_save(struct step_ctx *c);
void step_ctx_done(struct step_ctx *c);
/* A registered machine, else the resolver's (*revision 0 = current, then filled in). */
const struct sm_machine *step_machine_get(step_engine_t *eng, store_txn_t *txn, const char *name,
                                          uint32_t *revision);
int64_t step_jint(json_t *o, const char *key, int64_t dflt);
const char *step_jstr(json_t *o, const char *key);

struct step_frame *step_frame_new(void);
void step_frame_free(struct step_frame *f);
sl_err step_frame_load(struct step_ctx *c, uint32_t id, struct step_frame **out);
sl_err step_frame_save(struct step_ctx *c, struct step_frame *f);
sl_err step_frame_delete(struct step_ctx *c, struct step_frame *f);
/* Resolves f->mp into f->m. */
sl_err step_frame_resolve(struct step_ctx *c, struct step_frame *f);
uint32_t step_next_frame_id(struct step_ctx *c);
sl_err step_ready_push(step_engine_t *eng, const char *arn, uint32_t frame);
/* Queues f unless it is the frame being run inline. */
sl_err step_frame_wake(struct step_ctx *c, struct step_frame *f);

/* --- step_engine.c ---------------------------------------------------------------------- */
/* step_start on a transaction; parent_token (may be NULL) is a states:startExecution task
 * waiting for this execution (parent_mode: its enum sm_integration). */
sl_err step_start_txn(step_engine_t *eng, store_txn_t *txn, const struct step_start *req,
                      const char *parent_token, int parent_mode, char *arn_out,
                      const struct step_effects *fx, struct sl_error *err);
sl_err step_task_answer_txn(step_engine_t *eng, store_txn_t *txn, const char *token, bool ok,
                            json_t *output, const char *error, const char *cause,
                            const struct step_effects *fx, struct sl_error *err);

/* One activation (an input's work on one execution) is all or nothing: begin takes a store
 * mark and a proxy of fx (a.fx) that holds the effects back; end with the activation's
 * result delivers them, or rolls the batch back to the mark and forgets the frames it
 * queued and the cached documents, and drops the effects. */
struct step_act {
	step_engine_t *eng;
	store_batch_t *b;
	struct store_mark_pos mark;
	const struct step_effects *real;
	struct step_effects fx;
	struct fx_call *calls;
	size_t n, cap;
	size_t r_len;
	bool oom;
};
sl_err step_act_begin(step_engine_t *eng, store_batch_t *b, const struct step_effects *fx,
                      struct step_act *a);
sl_err step_act_end(struct step_act *a, sl_err e);
/* After a failed activation of arn was undone: ends arn FAILED (States.Runtime, the cause
 * says what broke) in a clean write; SL_OK then, else `failed`. */
sl_err step_act_fail(step_engine_t *eng, store_batch_t *b, const char *arn, sl_err failed,
                     const struct step_effects *fx, struct sl_error *err);

/* --- step_integrations.c ------------------------------------------------------------------ */
/* True when the task is served by the engine itself (states:startExecution). */
bool step_builtin_task(const step_engine_t *eng, const struct sm_task *t);
/* Runs a built-in task whose token record exists: starts the child execution and, for the
 * request-response pattern, answers the token at once. */
sl_err step_builtin_run(struct step_ctx *c, struct step_frame *f, const char *token,
                        json_t *params);
/* An execution started by a task ended: answer that task (.sync / .sync:2 shapes). */
sl_err step_builtin_child_closed(struct step_ctx *c, enum step_status st, json_t *output,
                                 const char *error, const char *cause);

/* --- step_history.c ---------------------------------------------------------------------- */
/* Appends an event; details (stolen, may be NULL) go under detail_key. prev may be the
 * frame's last event; the frame's prev moves to the new id when f is not NULL. */
sl_err step_event(struct step_ctx *c, struct step_frame *f, const char *type,
                  const char *detail_key, json_t *details);
/* step_event with details {"<pkey>": payload, "<pkey>Details": {"truncated": false}} and,
 * when xkey is not NULL, "<xkey>": "<xval>" last; written without building a tree. pkey
 * is a plain word (input, output). */
sl_err step_event_payload(struct step_ctx *c, struct step_frame *f, const char *type,
                          const char *detail_key, const char *pkey, json_t *payload,
                          const char *xkey, const char *xval);
/* {"input": "<json>", "inputDetails": {"truncated": false}} style members. */
json_t *step_payload_details(const char *key, json_t *v);
char *step_dumps(json_t *v);
/* Turns a stored event into AWS's shape (payloads as JSON text), in place. */
void step_event_to_aws(json_t *ev);

/* --- step_io.c ---------------------------------------------------------------------------- */
/* AWS's limits: an error name of 256 characters, a cause of 32,768. */
struct step_fault {
	char error[257];
	char cause[32769];
	bool has_error, has_cause;
};
void step_fault_set(struct step_fault *ft, const char *error, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* "An error occurred while executing the state 'X' (entered at the event id #N). " + cause */
void step_fault_runtime(struct step_fault *ft, const struct step_frame *f, const char *error,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
json_t *step_context(struct step_ctx *c, struct step_frame *f);
sl_err step_io_input(struct step_ctx *c, struct step_frame *f, const struct sm_io_path *p,
                     json_t *in, json_t *ctx, json_t **out, struct step_fault *ft);
sl_err step_io_template(struct step_ctx *c, struct step_frame *f, const struct sm_template *t,
                        json_t *in, json_t *ctx, json_t **out, struct step_fault *ft);
sl_err step_io_result(struct step_ctx *c, struct step_frame *f, const struct sm_io_path *p,
                      json_t *in, json_t *result, json_t **out, struct step_fault *ft);
bool step_payload_too_large(struct step_ctx *c, json_t *v);

/* --- step_choice.c ------------------------------------------------------------------------ */
/* *next: the next state, or SM_NO_STATE when nothing matched and there is no Default.
 * SL_ERR_INVALID_ARG with ft filled when a Variable names nothing (States.Runtime). */
sl_err step_choice_eval(const struct step_frame *f, json_t *input, json_t *ctx, size_t *next,
                        struct step_fault *ft);

/* --- step_retry.c ------------------------------------------------------------------------- */
bool step_error_matches(const struct sm_error_match *m, const char *error, bool is_task);
/* Delay of attempt (1-based) of retrier r, in ms, jitter applied. */
int64_t step_retry_delay_ms(step_engine_t *eng, const struct sm_retrier *r, int64_t attempt);
uint64_t step_rand(step_engine_t *eng);

/* --- step_timers.c ------------------------------------------------------------------------ */
sl_err step_timer_arm(struct step_ctx *c, int64_t due_ms, enum step_timer_kind kind, uint32_t frame,
                      uint64_t wk, const char *token);

/* --- step_states.c ------------------------------------------------------------------------ */
/* Runs frame id until it blocks or ends. */
sl_err step_frame_run(struct step_ctx *c, uint32_t id, unsigned *budget);
/* The state of f failed with ft: Retry, Catch or fail the frame. */
sl_err step_state_error(struct step_ctx *c, struct step_frame *f, struct step_fault *ft);
/* The state of f produced output: next state or end of frame. */
sl_err step_state_next(struct step_ctx *c, struct step_frame *f, size_t next, json_t *output);
/* A frame ended: tell its parent or end the execution. */
sl_err step_frame_succeed(struct step_ctx *c, struct step_frame *f, json_t *output);
sl_err step_frame_fail(struct step_ctx *c, struct step_frame *f, struct step_fault *ft);
/* Work after the raw result of a Task/Parallel/Map: ResultSelector, ResultPath, OutputPath. */
sl_err step_state_finish(struct step_ctx *c, struct step_frame *f, json_t *result);
/* Ends the execution with status, deleting every frame. */
sl_err step_exec_close(struct step_ctx *c, enum step_status st, json_t *output, const char *error,
                       const char *cause);
sl_err step_task_resolve(struct step_ctx *c, struct step_frame *f, bool ok, json_t *output,
                         const char *error, const char *cause);
/* Appends the task family's event ("Started" -> ActivityStarted, LambdaFunctionStarted,
 * TaskStarted); d (stolen, may be NULL) holds its details. */
sl_err step_task_event(struct step_ctx *c, struct step_frame *f, const char *what, json_t *d);

/* --- step_prune.c ------------------------------------------------------------------------- */
/* The value an execution record is replaced with while the retention deletes what it owns:
 * reads find no execution, a start under its name is refused until it is all gone. */
#define STEP_TOMBSTONE 'Z'
/* The closing execution's entry in the closed index (top-level executions only). */
sl_err step_closed_put(struct step_ctx *c, int64_t stop_ms);

/* --- step_redrive.c ------------------------------------------------------------------------ */
/* The execution is closing unsuccessfully (st): keeps the top frame's state and input in the
 * execution record so that step_redrive can restart there. */
sl_err step_redrive_keep(struct step_ctx *c, enum step_status st);

/* --- step_map.c / step_parallel.c --------------------------------------------------------- */
sl_err step_fanout_start(struct step_ctx *c, struct step_frame *f, json_t *eff, json_t *ctx);
sl_err step_fanout_child_done(struct step_ctx *c, struct step_frame *parent, uint64_t pw,
                              uint32_t idx, bool ok, json_t *output, struct step_fault *ft);
sl_err step_fanout_spawn(struct step_ctx *c, struct step_frame *f);
/* Deletes every child frame of f, recursively (their timers and tasks become stale). */
sl_err step_kill_children(struct step_ctx *c, struct step_frame *f);

/* --- step_reader.c: Map's ItemReader (local files) and ItemBatcher -------------------------- */
/* Writes the Map's iteration inputs as one record each: the items its ItemReader names
 * (items NULL; MaxItems applied) or the items given, grouped into ItemBatcher batches
 * {"Items": [...], BatchInput members} when there is one; *n: how many. SL_ERR_INVALID_ARG
 * with ft set is a state error (States.ItemReaderFailed, States.DataLimitExceeded,
 * States.Runtime) and leaves no record. */
sl_err step_reader_run(struct step_ctx *c, struct step_frame *f, json_t *ctx, json_t *items,
                       uint32_t *n, struct step_fault *ft);
/* Iteration idx's record, read as the iteration is created. */
sl_err step_reader_get(struct step_ctx *c, struct step_frame *f, uint32_t idx, json_t **item);
sl_err step_reader_drop(struct step_ctx *c, struct step_frame *f);

#endif
