/*
 * step_io.c - input and output processing in AWS's order (InputPath, Parameters, the work,
 * ResultSelector, ResultPath, OutputPath), the context object and run-time faults.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "stepper/step_int.h"

void
step_fault_set(struct step_fault *ft, const char *error, const char *fmt, ...)
{
	ft->has_error = error != NULL;
	snprintf(ft->error, sizeof ft->error, "%s", error ? error : "");
	ft->has_cause = fmt != NULL;
	ft->cause[0] = 0;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ft->cause, sizeof ft->cause, fmt, ap);
		va_end(ap);
	}
}

void
step_fault_runtime(struct step_fault *ft, const struct step_frame *f, const char *error,
                   const char *fmt, ...)
{
	char msg[1800];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	step_fault_set(ft, error,
	               "An error occurred while executing the state '%s' (entered at the event id "
	               "#%llu). %s",
	               f->m->states[f->st].name, (unsigned long long)f->entered_event, msg);
}

/* Turns a path/template fault into ours; States.Runtime causes get the state prefix. */
static void
from_sm_fault(struct step_fault *ft, const struct step_frame *f, const struct sm_fault *sf)
{
	const char *error = sf->error ? sf->error : "States.Runtime";
	if (strcmp(error, "States.Runtime") == 0)
		step_fault_runtime(ft, f, error, "%s", sf->cause);
	else
		step_fault_set(ft, error, "%s", sf->cause);
}

json_t *
step_context(struct step_ctx *c, struct step_frame *f)
{
	char started[32], entered[32];
	sl_clock_format_rfc3339(step_jint(c->exec, "startMs", 0), started);
	sl_clock_format_rfc3339(f->entered_ms, entered);
	json_t *in = step_exec_input(c);
	int64_t retries = 0;
	size_t i;
	json_t *v;
	json_array_foreach(f->rc, i, v) retries += json_integer_value(v);
	return json_pack(
	        "{s:{s:s?, s:O?, s:s?, s:s, s:s, s:I}, s:{s:s, s:s, s:I}, s:{s:s?, s:s?}}",
	        "Execution", "Id", c->arn, "Input", in ? in : json_null(), "Name",
	        step_jstr(c->exec, "name"), "RoleArn", "arn:aws:iam::000000000000:role/sluice",
	        "StartTime", started, "RedriveCount",
	        (json_int_t)step_jint(c->exec, "redriveCount", 0), "State", "EnteredTime", entered,
	        "Name", f->m->states[f->st].name, "RetryCount", (json_int_t)retries, "StateMachine",
	        "Id", step_jstr(c->exec, "stateMachineArn"), "Name", step_jstr(c->exec, "machine"));
}

sl_err
step_io_input(struct step_ctx *c, struct step_frame *f, const struct sm_io_path *p, json_t *in,
              json_t *ctx, json_t **out, struct step_fault *ft)
{
	(void)c;
	switch (p->kind) {
	case SM_IO_DEFAULT: *out = json_incref(in); return SL_OK;
	case SM_IO_NULL: *out = json_object(); return *out ? SL_OK : SL_ERR_NOMEM;
	case SM_IO_PATH: break;
	}
	struct sm_fault sf = { 0 };
	sl_err e = sm_path_get_fault(p->path, in, ctx, out, &sf);
	if (e == SL_ERR_NOT_FOUND || (e != SL_OK && sf.error)) {
		from_sm_fault(ft, f, &sf);
		return SL_ERR_INVALID_ARG;
	}
	return e;
}

sl_err
step_io_template(struct step_ctx *c, struct step_frame *f, const struct sm_template *t, json_t *in,
                 json_t *ctx, json_t **out, struct step_fault *ft)
{
	(void)c;
	struct sm_fault sf = { 0 };
	sl_err e = sm_template_eval(t, in, ctx, out, &sf);
	if (e == SL_OK)
		return SL_OK;
	if (e == SL_ERR_NOMEM && (!sf.error || strcmp(sf.error, "States.Runtime") == 0))
		return e;
	from_sm_fault(ft, f, &sf);
	return SL_ERR_INVALID_ARG;
}

/* "$.name" with a plain name: the common ResultPath. */
static const char *
simple_member(const struct sm_path *p)
{
	const char *t = sm_path_text(p);
	if (!t || t[0] != '$' || t[1] != '.' || !t[2])
		return NULL;
	for (const char *q = t + 2; *q; q++)
		if (!isalnum((unsigned char)*q) && *q != '_')
			return NULL;
	return t + 2;
}

/* ResultPath "$.name" on an object: a new top-level object whose other members are shared
 * with in (payloads are never changed in place, see step_ctx.memo_v), and a copy of result
 * under name: what sm_path_set gives, without deep-copying the whole input per state. */
static sl_err
set_member(json_t *in, const char *name, json_t *result, json_t **out)
{
	json_t *doc = json_object();
	if (!doc)
		return SL_ERR_NOMEM;
	for (void *it = json_object_iter(in); it; it = json_object_iter_next(in, it))
		if (json_object_setn(doc, json_object_iter_key(it), json_object_iter_key_len(it),
		                     json_object_iter_value(it))) {
			json_decref(doc);
			return SL_ERR_NOMEM;
		}
	json_t *val = result ? json_deep_copy(result) : json_null();
	if (!val || json_object_set_new(doc, name, val)) {
		json_decref(doc);
		return SL_ERR_NOMEM;
	}
	*out = doc;
	return SL_OK;
}

sl_err
step_io_result(struct step_ctx *c, struct step_frame *f, const struct sm_io_path *p, json_t *in,
               json_t *result, json_t **out, struct step_fault *ft)
{
	(void)c;
	switch (p->kind) {
	case SM_IO_DEFAULT: *out = json_incref(result); return SL_OK;
	case SM_IO_NULL: *out = json_incref(in); return SL_OK;
	case SM_IO_PATH: break;
	}
	const char *name;
	if (json_is_object(in) && (name = simple_member(p->path)))
		return set_member(in, name, result, out);
	struct sm_fault sf = { 0 };
	sl_err e = sm_path_set(p->path, in, result, out, &sf);
	if (e == SL_OK)
		return SL_OK;
	if (e == SL_ERR_NOMEM)
		return e;
	char doc[600];
	char *s = step_dumps(in);
	snprintf(doc, sizeof doc, "%s", s ? s : "");
	sl_free(s);
	// not a runtime error in AWS's words: no state prefix
	step_fault_set(ft, sf.error && *sf.error ? sf.error : "States.ResultPathMatchFailure",
	               "Unable to apply ResultPath \"%s\" to input \"%s\"", sm_path_text(p->path),
	               doc);
	return SL_ERR_INVALID_ARG;
}

bool
step_payload_too_large(struct step_ctx *c, json_t *v)
{
	// measured from the memo: the same text is then written into the history
	const char *s;
	size_t n;
	if (step_payload_text(c, v, &s, &n) != SL_OK)
		n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	return n > c->eng->opt.payload_limit;
}
