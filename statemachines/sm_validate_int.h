/*
 * sm_validate_int.h - shared by the validator/compiler files (sm_validate*.c).
 *
 * Validation and compilation are one pass: each checker reads its part of the tree,
 * reports every problem it sees and fills the compiled struct as far as it can. If any
 * problem was reported the half-built machine is freed and the caller gets the list.
 */
#ifndef SLUICE_STATEMACHINES_SM_VALIDATE_INT_H
#define SLUICE_STATEMACHINES_SM_VALIDATE_INT_H

#include <jansson.h>

#include "statemachines/statemachines.h"

/* AWS's diagnostic codes, the prefix of every message. */
#define SM_SCHEMA         "SCHEMA_VALIDATION_FAILED: "
#define SM_MISSING_TARGET "MISSING_TRANSITION_TARGET: "
#define SM_MISSING_END    "MISSING_END_STATE: "
#define SM_DUPLICATE_NAME "DUPLICATE_STATE_NAME: "

/* Names of one machine's states, for resolving transitions. */
struct vnames {
	const char **names; /* borrowed from the tree */
	size_t n;
	json_t *index; /* name -> position in names, so lookups stay O(1) in big machines */
};

/* Index of name in names, or SM_NO_STATE. */
size_t v_lookup(const struct vnames *names, const char *name);

struct vctx {
	const struct sm_positions *pos;
	struct sm_problems *problems;
	sl_err fatal;      /* SL_ERR_NOMEM once memory ran out; checks stop adding then */
	json_t *all_names; /* every state name seen so far, for DUPLICATE_STATE_NAME */
	unsigned depth;    /* nested machines */
	/* Per machine, so one mistake is not reported again as its consequences: a state
	 * whose transition could not be read makes reachability unknowable (graph_broken);
	 * a transition to a missing state makes "no terminal state" unknowable. */
	bool graph_broken;
	bool target_missing;
	/* The states being checked run as EXPRESS executions (the machine's type, or a
	 * DISTRIBUTED Map's processor with ExecutionType EXPRESS): Task states may use only
	 * the Request Response pattern and no activity. */
	bool express;
};

/* Reports a problem located at the value at pointer. */
void v_report(struct vctx *v, const char *pointer, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Reports a problem about member `field` of the object at pointer: located at the member's
 * key in the source, while the problem's pointer stays the object (as AWS reports). */
void v_report_field(struct vctx *v, const char *pointer, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Remembers an out-of-memory condition; returns NULL for use in expressions. */
void *v_nomem(struct vctx *v);

/* Workflow variables ($name) are not supported yet: detect and report them. */
bool v_uses_variable(const char *text);
void v_variable_problem(struct vctx *v, const char *pointer, const char *field, const char *text);

/* pointer + "/" + token (NULL on NOMEM, recorded in v). */
char *v_ptr(struct vctx *v, const char *pointer, const char *token);
char *v_ptr_index(struct vctx *v, const char *pointer, size_t index);

/* Every member of obj must be in allowed (NULL-terminated). Members in jsonata_only get
 * the "only supported for the 'JSONata' QueryLanguage" message instead. */
void v_check_fields(struct vctx *v, json_t *obj, const char *pointer, const char *const *allowed);
/* "These fields are required: [X]" when field is absent. Returns the member or NULL. */
json_t *v_require(struct vctx *v, json_t *obj, const char *pointer, const char *field);

/* Typed reads of an optional member. Each returns false (and reports) when the member is
 * present with the wrong type or out of range; *present tells whether it was there. */
bool v_string(struct vctx *v, json_t *obj, const char *pointer, const char *field, const char **out,
              bool *present);
bool v_bool(struct vctx *v, json_t *obj, const char *pointer, const char *field, bool *out,
            bool *present);
/* Integer in [min, max] (JSON integers, or reals with no fraction, as AWS accepts 1.0). */
bool v_int(struct vctx *v, json_t *obj, const char *pointer, const char *field, int64_t min,
           int64_t max, int64_t *out, bool *present);
bool v_number(struct vctx *v, json_t *obj, const char *pointer, const char *field, double min,
              double max, double *out, bool *present);
/* Copies an optional string member into *out (new). */
bool v_strdup_field(struct vctx *v, json_t *obj, const char *pointer, const char *field,
                    char **out);

/* Path fields. kind: reference or JSONPath. Absent: *out untouched, returns true. */
bool v_path(struct vctx *v, json_t *obj, const char *pointer, const char *field,
            enum sm_path_kind kind, struct sm_path **out, bool *present);
/* InputPath/OutputPath/ResultPath style: also accepts null. */
bool v_io_path(struct vctx *v, json_t *obj, const char *pointer, const char *field,
               enum sm_path_kind kind, struct sm_io_path *out);
/* Fail ErrorPath/CausePath: a reference path or an intrinsic call. */
bool v_expr(struct vctx *v, json_t *obj, const char *pointer, const char *field,
            struct sm_expr *out, bool *present);
/* Parameters/ResultSelector/ItemSelector/Assign: checks every `.$` key, then compiles. */
bool v_template(struct vctx *v, json_t *obj, const char *pointer, const char *field,
                struct sm_template **out);
/* Retry / Catch arrays. */
void v_retry(struct vctx *v, json_t *state, const char *pointer, struct sm_state *st);
void v_catch(struct vctx *v, json_t *state, const char *pointer, const struct vnames *names,
             struct sm_state *st);

/* Resolves a transition target; reports MISSING_TRANSITION_TARGET. */
size_t v_target(struct vctx *v, const struct vnames *names, const char *target, const char *pointer,
                const char *field);

/* Nested machine (Parallel branch, Map processor) or the top level. allowed lists the
 * fields besides StartAt/States/Comment. */
struct sm_machine *v_machine(struct vctx *v, json_t *def, const char *pointer, bool top,
                             const char *const *extra_allowed);

/* Per type (sm_validate_states.c, sm_validate_choice.c). */
void v_state_task(struct vctx *v, json_t *s, const char *p, struct sm_state *st);
void v_state_wait(struct vctx *v, json_t *s, const char *p, struct sm_state *st);
void v_state_fail(struct vctx *v, json_t *s, const char *p, struct sm_state *st);
void v_state_parallel(struct vctx *v, json_t *s, const char *p, struct sm_state *st);
void v_state_map(struct vctx *v, json_t *s, const char *p, struct sm_state *st);
void v_state_choice(struct vctx *v, json_t *s, const char *p, const struct vnames *names,
                    struct sm_state *st);

/* Frees what a state owns (sm_graph.c). */
void sm_state_clear(struct sm_state *st);
void sm_error_match_clear(struct sm_error_match *m);

#endif
