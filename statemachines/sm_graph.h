/*
 * sm_graph.h - a compiled state machine: what the stepper runs.
 *
 * Built by sm_machine_compile() (statemachines.h) from a definition that passed validation,
 * so every invariant below holds and the stepper never parses text while running:
 *   - transitions are indexes into the machine's own state table (SM_NO_STATE = none);
 *   - every path is a compiled struct sm_path, every payload template a struct sm_template,
 *     every intrinsic call a struct sm_intrinsic (sm_path.h);
 *   - Choice rules are trees with operands already typed (number, timestamp, ...).
 * Parallel branches and Map item processors are nested machines with their own tables;
 * their transitions never leave them.
 *
 * Everything is owned by the machine and freed by sm_machine_free(). Read-only once built,
 * so one compiled machine may be shared by any number of executions and threads.
 */
#ifndef SLUICE_STATEMACHINES_SM_GRAPH_H
#define SLUICE_STATEMACHINES_SM_GRAPH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "statemachines/sm_path.h"

#define SM_NO_STATE ((size_t)-1)
/* Defaults AWS applies when a field is absent. */
#define SM_TASK_DEFAULT_TIMEOUT_SECONDS   99999999
#define SM_RETRY_DEFAULT_INTERVAL_SECONDS 1
#define SM_RETRY_DEFAULT_MAX_ATTEMPTS     3
#define SM_RETRY_DEFAULT_BACKOFF_RATE     2.0
#define SM_STATE_NAME_MAX                 80

enum sm_state_type {
	SM_STATE_PASS,
	SM_STATE_TASK,
	SM_STATE_CHOICE,
	SM_STATE_WAIT,
	SM_STATE_SUCCEED,
	SM_STATE_FAIL,
	SM_STATE_PARALLEL,
	SM_STATE_MAP,
};
const char *sm_state_type_name(enum sm_state_type t); /* "Pass", "Task", ... */

/* An RFC 3339 instant: seconds since the epoch (UTC) and the fraction in nanoseconds. */
struct sm_time {
	int64_t seconds;
	int32_t nanos;
};
/* Parses an RFC 3339 date-time with a mandatory 'T' and zone (Z or +hh:mm); false if the
 * text is not one (also used by the stepper for TimestampPath and Timestamp* rules). A leap
 * second (:60) compares as :59. */
bool sm_time_parse(const char *text, struct sm_time *out);
/* -1, 0, 1 */
int sm_time_compare(const struct sm_time *a, const struct sm_time *b);

/* A value that is either a path or an intrinsic call (Fail ErrorPath/CausePath). */
struct sm_expr {
	struct sm_path *path; /* when the field is present, exactly one of path and fn is set */
	struct sm_intrinsic *fn;
};

/*
 * An I/O path field (InputPath, OutputPath, ResultPath, Catch ResultPath). AWS gives three
 * cases: absent (the default, `$`), JSON null (InputPath/OutputPath: `{}`; ResultPath: the
 * result is discarded and the input passes through) and a path.
 */
enum sm_io_kind { SM_IO_DEFAULT, SM_IO_NULL, SM_IO_PATH };
struct sm_io_path {
	enum sm_io_kind kind;
	struct sm_path *path; /* set when kind == SM_IO_PATH */
};

/* ---- error handling ---------------------------------------------------------------------- */

/* ErrorEquals: names in order; matches_all when it is ["States.ALL"]. */
struct sm_error_match {
	char **names;
	size_t n_names;
	bool matches_all;
};

enum sm_jitter { SM_JITTER_NONE, SM_JITTER_FULL };

struct sm_retrier {
	struct sm_error_match errors;
	int64_t interval_seconds;  /* default 1 */
	int64_t max_attempts;      /* default 3; 0 = never retry */
	double backoff_rate;       /* default 2.0, >= 1.0 */
	int64_t max_delay_seconds; /* 0 = no cap */
	enum sm_jitter jitter;
};

struct sm_catcher {
	struct sm_error_match errors;
	size_t next;                   /* state index */
	struct sm_io_path result_path; /* default: error output replaces input */
	struct sm_template *assign;    /* NULL when absent */
};

/* ---- Choice ------------------------------------------------------------------------------ */

enum sm_choice_op {
	SM_OP_AND,
	SM_OP_OR,
	SM_OP_NOT,
	SM_OP_STRING_EQUALS,
	SM_OP_STRING_LESS_THAN,
	SM_OP_STRING_GREATER_THAN,
	SM_OP_STRING_LESS_THAN_EQUALS,
	SM_OP_STRING_GREATER_THAN_EQUALS,
	SM_OP_STRING_MATCHES,
	SM_OP_NUMERIC_EQUALS,
	SM_OP_NUMERIC_LESS_THAN,
	SM_OP_NUMERIC_GREATER_THAN,
	SM_OP_NUMERIC_LESS_THAN_EQUALS,
	SM_OP_NUMERIC_GREATER_THAN_EQUALS,
	SM_OP_BOOLEAN_EQUALS,
	SM_OP_TIMESTAMP_EQUALS,
	SM_OP_TIMESTAMP_LESS_THAN,
	SM_OP_TIMESTAMP_GREATER_THAN,
	SM_OP_TIMESTAMP_LESS_THAN_EQUALS,
	SM_OP_TIMESTAMP_GREATER_THAN_EQUALS,
	SM_OP_IS_NULL,
	SM_OP_IS_PRESENT,
	SM_OP_IS_NUMERIC,
	SM_OP_IS_STRING,
	SM_OP_IS_BOOLEAN,
	SM_OP_IS_TIMESTAMP,
};
/* The operator's name without the Path suffix ("StringEquals"). */
const char *sm_choice_op_name(enum sm_choice_op op);

/*
 * One rule. And/Or have children (>= 1), Not has exactly one, the data tests have a
 * variable and an operand. operand_is_path: the ...Path variant (compare with the value at
 * operand.path). Otherwise the literal is pre-typed by the operator family: string for
 * String* (for StringMatches the pattern text; `\*` and `\\` escapes kept as written),
 * number for Numeric*, boolean for BooleanEquals and the Is* tests, time for Timestamp*.
 * Top-level rules carry next (and maybe assign); nested rules have next == SM_NO_STATE.
 */
struct sm_choice_rule {
	enum sm_choice_op op;
	struct sm_path *variable; /* data tests only */
	bool operand_is_path;
	struct {
		struct sm_path *path;
		const char *string; /* points into literal */
		double number;
		bool boolean;
		struct sm_time time;
		json_t *literal; /* the operand as written (owned reference) */
	} operand;
	struct sm_choice_rule *children;
	size_t n_children;
	size_t next;
	struct sm_template *assign; /* top-level rules only; NULL when absent */
};

/* ---- per-type fields --------------------------------------------------------------------- */

enum sm_resource_kind {
	SM_RESOURCE_ACTIVITY, /* arn:aws:states:R:A:activity:NAME or activity:NAME */
	SM_RESOURCE_LAMBDA,   /* arn:aws:lambda:R:A:function:NAME[:QUALIFIER] */
	SM_RESOURCE_SERVICE,  /* arn:aws:states:::SERVICE:ACTION[.sync|.sync:2|.waitForTaskToken] */
	SM_RESOURCE_OTHER,    /* anything else: kept as written, the stepper decides */
};
enum sm_integration {
	SM_INTEGRATION_REQUEST_RESPONSE,
	SM_INTEGRATION_SYNC,  /* .sync */
	SM_INTEGRATION_SYNC2, /* .sync:2 */
	SM_INTEGRATION_WAIT_FOR_TASK_TOKEN,
};

struct sm_task {
	char *resource;
	enum sm_resource_kind kind;
	/* ACTIVITY/LAMBDA: the activity or function name; SERVICE: "lambda", "sqs",
	 * "aws-sdk:s3", ...; OTHER: NULL. */
	char *name;
	char *action; /* SERVICE: "invoke", "sendMessage", ...; else NULL */
	enum sm_integration integration;
	int64_t timeout_seconds; /* default SM_TASK_DEFAULT_TIMEOUT_SECONDS */
	struct sm_path *timeout_seconds_path;
	int64_t heartbeat_seconds; /* 0 = none */
	struct sm_path *heartbeat_seconds_path;
	/* Credentials are accepted and ignored (no cross-account roles here). */
};

struct sm_wait {
	/* exactly one is set: has_seconds, seconds_path, has_timestamp, timestamp_path */
	bool has_seconds;
	int64_t seconds;
	struct sm_path *seconds_path;
	bool has_timestamp;
	struct sm_time timestamp;
	char *timestamp_text;
	struct sm_path *timestamp_path;
};

struct sm_fail {
	char *error; /* NULL when absent */
	struct sm_expr error_path;
	char *cause;
	struct sm_expr cause_path;
};

struct sm_machine;

struct sm_parallel {
	struct sm_machine **branches;
	size_t n_branches;
};

enum sm_map_mode { SM_MAP_INLINE, SM_MAP_DISTRIBUTED };
enum sm_execution_type { SM_EXECUTION_STANDARD, SM_EXECUTION_EXPRESS };

struct sm_map {
	struct sm_machine *processor; /* ItemProcessor (or legacy Iterator) */
	enum sm_map_mode mode;
	enum sm_execution_type execution_type; /* DISTRIBUTED only */
	struct sm_path *items_path;            /* NULL = `$` */
	/* ItemSelector (or legacy Parameters on Map): builds each iteration's input. */
	struct sm_template *item_selector;
	int64_t max_concurrency; /* 0 = no limit requested */
	struct sm_path *max_concurrency_path;
	bool has_tolerated_failure_count;
	int64_t tolerated_failure_count;
	struct sm_path *tolerated_failure_count_path;
	bool has_tolerated_failure_percentage;
	double tolerated_failure_percentage; /* 0..100 */
	struct sm_path *tolerated_failure_percentage_path;
	json_t *item_reader;  /* validated object as written, NULL when absent */
	json_t *item_batcher; /* idem */
	json_t *result_writer;
	char *label; /* NULL when absent */
};

/* ---- states and machines ----------------------------------------------------------------- */

struct sm_state {
	char *name;
	enum sm_state_type type;
	char *comment;
	/* Transitions. Choice, Succeed and Fail have next == SM_NO_STATE and end == false;
	 * Choice uses choice.default_next and its rules instead. */
	size_t next;
	bool end;
	/* I/O processing, JSONPath order: InputPath -> Parameters -> work -> ResultSelector
	 * -> ResultPath -> OutputPath. Fields a type does not allow stay at their defaults. */
	struct sm_io_path input_path;
	struct sm_io_path output_path;
	struct sm_io_path result_path;
	struct sm_template *parameters;      /* Pass, Task, Parallel */
	struct sm_template *result_selector; /* Task, Parallel, Map */
	json_t *result;                      /* Pass Result, taken literally; NULL = none */
	struct sm_template *assign;          /* Assign; NULL when absent */
	struct sm_retrier *retry;            /* Task, Parallel, Map */
	size_t n_retry;
	struct sm_catcher *catch_;
	size_t n_catch;
	/* The state may read the context object ($$): some field of it mentions "$$", or it
	 * is a Task, Parallel or Map (which hand the context on). The stepper builds $$ only
	 * for such states. */
	bool uses_context;
	union {
		struct sm_task task;
		struct {
			struct sm_choice_rule *rules;
			size_t n_rules;
			size_t default_next; /* SM_NO_STATE: no Default */
		} choice;
		struct sm_wait wait;
		struct sm_fail fail;
		struct sm_parallel parallel;
		struct sm_map map;
	} u;
};

enum sm_query_language { SM_QL_JSONPATH, SM_QL_JSONATA };

struct sm_machine {
	struct sm_state *states; /* in definition order */
	size_t n_states;
	size_t start;            /* StartAt */
	int64_t timeout_seconds; /* top level only; 0 = none */
	char *comment;
	char *version; /* "1.0" when absent */
	enum sm_query_language query_language;
};

/* Index of the state named name, or SM_NO_STATE. */
size_t sm_machine_find(const struct sm_machine *m, const char *name);
void sm_machine_free(struct sm_machine *m);

#endif
