/*
 * transform.h - what a rule's target receives: Input, InputPath or InputTransformer.
 *
 * A target's input configuration (the Input / InputPath / InputTransformer members of a
 * PutTargets target) is compiled once into an opaque xform_t; xform_render() then turns each
 * matched event into the text delivered to the target. Compilation does all validation and
 * answers in EventBridge's words (ValidationException texts as AWS records them), so the API
 * layer can hand err->message back unchanged. Rendering is pure: no I/O, no clock.
 *
 * Caveats:
 * - Values are spliced from the event text itself, never re-serialised: numbers keep their
 *   exact digits, strings their escapes. A JSON template's output is valid JSON whenever
 *   xform_render() succeeds; a string template's output is text (usually one JSON string).
 * - AWS drops an event whose transformed input is not valid JSON (an object or array
 *   spliced into a string of a JSON template). xform_render() reports that as
 *   SL_ERR_INVALID_ARG; the caller decides (drop, dead-letter).
 * - An xform_t is immutable after xform_new(): any number of threads may render with it.
 */
#ifndef SLUICE_BUS_TRANSFORM_H
#define SLUICE_BUS_TRANSFORM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sl_err.h"

/* Limits from the EventBridge API (PutTargets), enforced by xform_new(). Lengths are in
 * characters (UTF-16 code units, as the AWS service counts them). */
#define XFORM_MAX_VARIABLES     100  /* InputPathsMap entries */
#define XFORM_MAX_TEMPLATE      8192 /* InputTemplate */
#define XFORM_MAX_INPUT         8192 /* Input */
#define XFORM_MAX_PATH          256  /* InputPath and each InputPathsMap value */
#define XFORM_MAX_VARIABLE_NAME 256  /* InputPathsMap key */

typedef struct xform xform_t;

enum xform_kind {
	XFORM_EVENT,       /* none configured: the whole event */
	XFORM_INPUT,       /* Input: constant JSON text */
	XFORM_INPUT_PATH,  /* InputPath: one part of the event */
	XFORM_TRANSFORMER, /* InputTransformer: InputPathsMap + InputTemplate */
};

/* What the reserved <aws.events.*> variables expand to; borrowed for one render call. */
struct xform_ctx {
	const char *rule_arn;      /* <aws.events.rule-arn>; NULL renders "" */
	const char *rule_name;     /* <aws.events.rule-name>; NULL renders "" */
	int64_t ingestion_time_ms; /* <aws.events.event.ingestion-time>, as ISO 8601 UTC */
};

/*
 * Compiles the input configuration of one PutTargets target. `target` (borrowed) is the
 * target object: its "Id" names the target in messages, and its "Input", "InputPath" and
 * "InputTransformer" members (absent or null = not set) select the mode. `index` is the
 * target's 1-based position in the request, used in "targets.N.member..." messages.
 * On success *out owns a new xform_t (free with xform_free). On failure *out is untouched
 * and err explains: SL_ERR_INVALID_ARG (ValidationException) for a rule broken,
 * SL_ERR_SERIALIZATION for a member of the wrong JSON type, SL_ERR_NOMEM.
 */
sl_err xform_new(const json_t *target, unsigned index, xform_t **out, struct sl_error *err);

/* Frees x; accepts NULL. */
void xform_free(xform_t *x);

/* The mode x was compiled to. */
enum xform_kind xform_kind(const xform_t *x);

/*
 * Renders what the target receives for one event. `event_json` (borrowed, `len` bytes, no
 * NUL needed) is the full event envelope; `ctx` (borrowed, may be NULL) gives the reserved
 * variables. On success *out is a new NUL-terminated string (free with sl_free) of *out_len
 * bytes. Errors: SL_ERR_PARSE if the event is not a JSON object; SL_ERR_NOT_FOUND if an
 * InputPath matches nothing; SL_ERR_INVALID_ARG if a JSON template's output would not be
 * valid JSON; SL_ERR_NOMEM. On failure *out is untouched.
 */
sl_err xform_render(const xform_t *x, const char *event_json, size_t len,
                    const struct xform_ctx *ctx, char **out, size_t *out_len, struct sl_error *err);

#endif
