/*
 * sm_path.h - States Language paths (JSONPath subset), payload templates and intrinsic
 * functions: compiled once when a definition is loaded, evaluated by the stepper with no
 * text parsing at run time. Pure code: jansson trees in, jansson trees out.
 *
 * Kinds of path (states-language.md):
 *   - reference path: `$`, `$.a.b`, `$['a b'][0]`, no wildcards, slices, unions or
 *     filters; the only kind allowed in ResultPath, Variable, *Path comparisons, etc.
 *   - JSONPath: adds `[*]`, `.*`, `..`, slices `[1:5:2]`, unions `[0,1]`, filters
 *     `[?(@.x > 1)]` where AWS allows them (InputPath, OutputPath, ItemsPath, `.$` values).
 *   - context path: a path starting `$$` reads the context object instead of the input.
 *
 * Ownership follows jansson: results returned through json_t **out are new references.
 * Results of sm_path_get, sm_intrinsic_eval and sm_template_eval may share values with the
 * input and context documents (never with the compiled object): deep-copy before changing
 * them in place. sm_path_set copies, so its result shares nothing.
 *
 * Threads: compiled paths, calls and templates are immutable after compilation, so any
 * number of threads may evaluate the same one at once.
 *
 * Deliberate limits (documented where they bite): filters support == != < <= > >=, && || !,
 * parentheses, existence tests and literals, not regular expressions (=~), `in`/`nin` or
 * functions such as length(); workflow variables ($name) are not paths here.
 */
#ifndef SLUICE_STATEMACHINES_SM_PATH_H
#define SLUICE_STATEMACHINES_SM_PATH_H

#include <jansson.h>
#include <stdbool.h>

#include "common/sl_err.h"

/* A run-time failure names the States.* error it raises and a cause in AWS's words. */
struct sm_fault {
	const char *error; /* static string, e.g. "States.Runtime" */
	char cause[1024];
};

/* ---- paths ------------------------------------------------------------------------------- */

enum sm_path_kind {
	SM_PATH_REFERENCE, /* simple paths only */
	SM_PATH_JSONPATH,  /* full JSONPath subset */
};

struct sm_path;

/* Compiles text. On failure returns SL_ERR_INVALID_DEFINITION with a message saying what is
 * wrong and where in the text (err may be NULL). */
sl_err sm_path_compile(const char *text, enum sm_path_kind kind, struct sm_path **out,
                       struct sl_error *err);
void sm_path_free(struct sm_path *p);
const char *sm_path_text(const struct sm_path *p);
bool sm_path_is_context(const struct sm_path *p); /* starts with $$ */
bool sm_path_is_root(const struct sm_path *p);    /* exactly $ (or $$) */
/* True when the path can yield several values (wildcard, slice, union, filter, ..): the
 * result is then always an array. */
bool sm_path_is_multi(const struct sm_path *p);

/* Reads the path from input (or context for $$ paths). SL_ERR_NOT_FOUND when a definite
 * path names a missing field (the caller raises States.Runtime or ParameterPathFailure
 * as the state demands); multi paths over missing data give []. */
sl_err sm_path_get(const struct sm_path *p, json_t *input, json_t *context, json_t **out);
/* sm_path_get that also explains a miss in fault the way AWS does for InputPath/OutputPath:
 * States.Runtime, "Invalid path '$.a.b' : Missing property in path $['a']" (the caller puts
 * "An error occurred while executing the state 'X' (entered at the event id #N). " before
 * it). */
sl_err sm_path_get_fault(const struct sm_path *p, json_t *input, json_t *context, json_t **out,
                         struct sm_fault *fault);

/* ResultPath: returns a new document that is root with value placed at the (reference) path,
 * creating objects on the way; `$` gives a copy of value. Fails with SL_ERR_INVALID_ARG and
 * States.ResultPathMatchFailure in fault when the path goes through a non-object (or an
 * array index that does not exist: arrays are never grown). root and value are borrowed and
 * deep-copied, so out shares nothing with them. "ResultPath": null (discard the result,
 * keep the input) is the caller's business: there is no path to compile for it. */
sl_err sm_path_set(const struct sm_path *p, json_t *root, json_t *value, json_t **out,
                   struct sm_fault *fault);

/* ---- intrinsic functions ----------------------------------------------------------------- */

struct sm_intrinsic;

/* True if text looks like an intrinsic call ("States.Name(" ...). */
bool sm_intrinsic_is_call(const char *text);
/* Parses a call: known name, arity, nesting at most 10, string escapes (\' \{ \} \\
 * only), path arguments, types of literal arguments, States.Format's '{}' count for a
 * literal template, States.JsonMerge's literal third argument (must be false). */
sl_err sm_intrinsic_compile(const char *text, struct sm_intrinsic **out, struct sl_error *err);
void sm_intrinsic_free(struct sm_intrinsic *f);
/* Evaluates; on failure fills fault: SL_ERR_INVALID_ARG with States.IntrinsicFailure for bad
 * arguments at run time (wrong types, out-of-range values, a path argument that matches
 * nothing), SL_ERR_NOMEM with States.Runtime when memory runs out. */
sl_err sm_intrinsic_eval(const struct sm_intrinsic *f, json_t *input, json_t *context, json_t **out,
                         struct sm_fault *fault);

/* ---- payload templates (Parameters, ResultSelector, ItemSelector, Arguments) ------------- */

struct sm_template;

/* Compiles a template: every key ending in ".$" must hold a path or an intrinsic call
 * (compiled here); other values are copied as they are, recursively. */
sl_err sm_template_compile(json_t *tmpl, struct sm_template **out, struct sl_error *err);
void sm_template_free(struct sm_template *t);
/* Builds the payload (new reference, sharing nothing with the template); a definite path
 * that matches nothing returns SL_ERR_NOT_FOUND with States.Runtime (as the service does;
 * the spec's ParameterPathFailure is not what AWS raises) and AWS's
 * cause text in fault; intrinsic failures come back as sm_intrinsic_eval reports them. */
sl_err sm_template_eval(const struct sm_template *t, json_t *input, json_t *context, json_t **out,
                        struct sm_fault *fault);

#endif
