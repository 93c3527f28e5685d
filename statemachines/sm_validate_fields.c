/*
 * sm_validate_fields.c - the validator's building blocks: reporting with locations, typed
 * field reads, paths, templates, Retry and Catch.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/sm_load_int.h"
#include "statemachines/sm_validate_int.h"

/* ---- reporting --------------------------------------------------------------------------- */

static void
report_at(struct vctx *v, const char *pointer, unsigned line, unsigned col, bool have,
          const char *msg)
{
	if (v->fatal != SL_OK)
		return;
	const char *file = sm_positions_filename(v->pos);
	char *loc = sm_location_format(file, have ? line : 0, col, pointer);
	if (!loc || sm_problems_add(v->problems, loc, pointer, "%s", msg) != SL_OK)
		v->fatal = SL_ERR_NOMEM;
	sl_free(loc);
}

void
v_report(struct vctx *v, const char *pointer, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	unsigned line = 0, col = 0;
	bool have = sm_positions_find(v->pos, pointer, &line, &col);
	report_at(v, pointer, line, col, have, msg);
}

void
v_report_field(struct vctx *v, const char *pointer, const char *field, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	unsigned line = 0, col = 0;
	bool have = false;
	char *member = sm_pointer_append(pointer, field);
	if (!member) {
		v->fatal = SL_ERR_NOMEM;
		return;
	}
	have = sm_positions_find_key(v->pos, member, &line, &col);
	sl_free(member);
	report_at(v, pointer, line, col, have, msg);
}

void *
v_nomem(struct vctx *v)
{
	v->fatal = SL_ERR_NOMEM;
	return NULL;
}

char *
v_ptr(struct vctx *v, const char *pointer, const char *token)
{
	char *p = sm_pointer_append(pointer, token);
	return p ? p : v_nomem(v);
}

char *
v_ptr_index(struct vctx *v, const char *pointer, size_t index)
{
	char *p = sm_pointer_append_index(pointer, index);
	return p ? p : v_nomem(v);
}

/* ---- workflow variables ------------------------------------------------------------------- */

/* `$name` (not `$`, `$.x`, `$[..]` or `$$`): a workflow variable, which sm_path does not
 * compile. Inside intrinsic calls, a `$name` argument outside quotes counts too. */
bool
v_uses_variable(const char *text)
{
	bool quoted = false;
	for (const char *c = text; *c; c++) {
		if (quoted) {
			if (*c == '\\' && c[1])
				c++;
			else if (*c == '\'')
				quoted = false;
			continue;
		}
		if (*c == '\'') {
			quoted = true;
			continue;
		}
		if (*c == '$' && (c == text || c[-1] != '$')
		    && ((c[1] >= 'a' && c[1] <= 'z') || (c[1] >= 'A' && c[1] <= 'Z')
		        || c[1] == '_'))
			return true;
	}
	return false;
}

void
v_variable_problem(struct vctx *v, const char *pointer, const char *field, const char *text)
{
	v_report_field(v, pointer, field,
	               SM_SCHEMA "Workflow variables are not supported yet (field '%s' reads "
	                         "'%s')",
	               field, text);
}

/* ---- fields ------------------------------------------------------------------------------ */

static const char *const jsonata_only[] = { "Arguments", "Output", "Items", "Condition", NULL };

static bool
in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

void
v_check_fields(struct vctx *v, json_t *obj, const char *pointer, const char *const *allowed)
{
	const char *key;
	json_t *val;
	json_object_foreach(obj, key, val)
	{
		if (in_list(allowed, key))
			continue;
		if (in_list(jsonata_only, key))
			v_report_field(v, pointer, key,
			               SM_SCHEMA
			               "The QueryLanguage is set to 'JSONPath', but field "
			               "'%s' is only supported for the 'JSONata' "
			               "QueryLanguage",
			               key);
		else
			v_report_field(v, pointer, key, SM_SCHEMA "Field '%s' is not supported",
			               key);
	}
}

json_t *
v_require(struct vctx *v, json_t *obj, const char *pointer, const char *field)
{
	json_t *m = json_object_get(obj, field);
	if (!m)
		v_report(v, pointer, SM_SCHEMA "These fields are required: [%s]", field);
	return m;
}

static void
type_problem(struct vctx *v, const char *pointer, const char *field, const char *type)
{
	char *p = v_ptr(v, pointer, field);
	if (!p)
		return;
	v_report(v, p, SM_SCHEMA "The value for the field '%s' must be %s", field, type);
	sl_free(p);
}

bool
v_string(struct vctx *v, json_t *obj, const char *pointer, const char *field, const char **out,
         bool *present)
{
	json_t *m = json_object_get(obj, field);
	if (present)
		*present = m != NULL;
	if (!m)
		return true;
	if (!json_is_string(m)) {
		type_problem(v, pointer, field, "a STRING");
		return false;
	}
	*out = json_string_value(m);
	return true;
}

bool
v_bool(struct vctx *v, json_t *obj, const char *pointer, const char *field, bool *out,
       bool *present)
{
	json_t *m = json_object_get(obj, field);
	if (present)
		*present = m != NULL;
	if (!m)
		return true;
	if (!json_is_boolean(m)) {
		type_problem(v, pointer, field, "a BOOLEAN");
		return false;
	}
	*out = json_is_true(m);
	return true;
}

bool
v_int(struct vctx *v, json_t *obj, const char *pointer, const char *field, int64_t min, int64_t max,
      int64_t *out, bool *present)
{
	json_t *m = json_object_get(obj, field);
	if (present)
		*present = m != NULL;
	if (!m)
		return true;
	int64_t val;
	if (json_is_integer(m)) {
		val = (int64_t)json_integer_value(m);
	} else if (json_is_real(m) && floor(json_real_value(m)) == json_real_value(m)
	           && fabs(json_real_value(m)) < 9.0e18) {
		val = (int64_t)json_real_value(m);
	} else {
		type_problem(v, pointer, field, "an INTEGER");
		return false;
	}
	if (val < min || val > max) {
		char *p = v_ptr(v, pointer, field);
		if (!p)
			return false;
		if (max == INT64_MAX)
			v_report(v, p,
			         SM_SCHEMA "The value for the field '%s' must be greater than or "
			                   "equal to %lld",
			         field, (long long)min);
		else
			v_report(v, p,
			         SM_SCHEMA "The value for the field '%s' must be between %lld and "
			                   "%lld",
			         field, (long long)min, (long long)max);
		sl_free(p);
		return false;
	}
	*out = val;
	return true;
}

bool
v_number(struct vctx *v, json_t *obj, const char *pointer, const char *field, double min,
         double max, double *out, bool *present)
{
	json_t *m = json_object_get(obj, field);
	if (present)
		*present = m != NULL;
	if (!m)
		return true;
	if (!json_is_number(m)) {
		type_problem(v, pointer, field, "a NUMBER");
		return false;
	}
	double d = json_number_value(m);
	if (d < min || d > max) {
		char *p = v_ptr(v, pointer, field);
		if (!p)
			return false;
		v_report(v, p, SM_SCHEMA "The value for the field '%s' must be between %g and %g",
		         field, min, max);
		sl_free(p);
		return false;
	}
	*out = d;
	return true;
}

bool
v_strdup_field(struct vctx *v, json_t *obj, const char *pointer, const char *field, char **out)
{
	const char *s = NULL;
	bool present;
	if (!v_string(v, obj, pointer, field, &s, &present))
		return false;
	if (present && !(*out = sl_strdup(s))) {
		v_nomem(v);
		return false;
	}
	return true;
}

/* ---- paths and templates ----------------------------------------------------------------- */

static const char *
kind_word(enum sm_path_kind kind)
{
	return kind == SM_PATH_REFERENCE ? "ReferencePath" : "JSONPath";
}

bool
v_path(struct vctx *v, json_t *obj, const char *pointer, const char *field, enum sm_path_kind kind,
       struct sm_path **out, bool *present)
{
	json_t *m = json_object_get(obj, field);
	if (present)
		*present = m != NULL;
	if (!m)
		return true;
	char *p = v_ptr(v, pointer, field);
	if (!p)
		return false;
	struct sl_error err;
	sl_err crc = SL_OK;
	sl_error_clear(&err);
	bool ok = false;
	if (!json_is_string(m)) {
		v_report(v, p, SM_SCHEMA "The value for the field '%s' must be a valid %s", field,
		         kind_word(kind));
	} else if (v_uses_variable(json_string_value(m))) {
		v_variable_problem(v, pointer, field, json_string_value(m));
	} else if ((crc = sm_path_compile(json_string_value(m), kind, out, &err)) != SL_OK) {
		if ((crc == SL_ERR_NOMEM || err.code == SL_ERR_NOMEM))
			v_nomem(v);
		else
			v_report(v, p,
			         SM_SCHEMA "The value for the field '%s' must be a valid %s (%s)",
			         field, kind_word(kind), sl_error_text(&err));
	} else {
		ok = true;
	}
	sl_free(p);
	return ok;
}

bool
v_io_path(struct vctx *v, json_t *obj, const char *pointer, const char *field,
          enum sm_path_kind kind, struct sm_io_path *out)
{
	json_t *m = json_object_get(obj, field);
	out->kind = SM_IO_DEFAULT;
	if (!m)
		return true;
	if (json_is_null(m)) {
		out->kind = SM_IO_NULL;
		return true;
	}
	if (!v_path(v, obj, pointer, field, kind, &out->path, NULL))
		return false;
	out->kind = SM_IO_PATH;
	if (kind == SM_PATH_REFERENCE && sm_path_is_context(out->path)) {
		char *p = v_ptr(v, pointer, field);
		if (p)
			v_report(v, p,
			         SM_SCHEMA
			         "The value for the field '%s' must be a valid "
			         "ReferencePath (it cannot point into the context object)",
			         field);
		sl_free(p);
		return false;
	}
	return true;
}

bool
v_expr(struct vctx *v, json_t *obj, const char *pointer, const char *field, struct sm_expr *out,
       bool *present)
{
	json_t *m = json_object_get(obj, field);
	if (present)
		*present = m != NULL;
	if (!m)
		return true;
	if (json_is_string(m) && v_uses_variable(json_string_value(m))) {
		v_variable_problem(v, pointer, field, json_string_value(m));
		return false;
	}
	if (json_is_string(m) && sm_intrinsic_is_call(json_string_value(m))) {
		struct sl_error err;
		sl_err crc = SL_OK;
		sl_error_clear(&err);
		if ((crc = sm_intrinsic_compile(json_string_value(m), &out->fn, &err)) == SL_OK)
			return true;
		if ((crc == SL_ERR_NOMEM || err.code == SL_ERR_NOMEM)) {
			v_nomem(v);
			return false;
		}
		char *p = v_ptr(v, pointer, field);
		if (p)
			v_report(v, p,
			         SM_SCHEMA "The value for the field '%s' must be a valid JSONPath "
			                   "or a valid intrinsic function call (%s)",
			         field, sl_error_text(&err));
		sl_free(p);
		return false;
	}
	return v_path(v, obj, pointer, field, SM_PATH_JSONPATH, &out->path, NULL);
}

/* Checks each `.$` key in a template, recursively, so a bad one is named with its place. */
static bool
check_template_keys(struct vctx *v, json_t *node, const char *pointer, unsigned depth)
{
	bool ok = true;
	if (depth > 256)
		return true; /* the loader caps depth far lower; jansson too */
	if (json_is_array(node)) {
		size_t i;
		json_t *el;
		json_array_foreach(node, i, el)
		{
			char *p = v_ptr_index(v, pointer, i);
			if (!p)
				return false;
			ok &= check_template_keys(v, el, p, depth + 1);
			sl_free(p);
		}
		return ok;
	}
	if (!json_is_object(node))
		return true;
	const char *key;
	json_t *val;
	json_object_foreach(node, key, val)
	{
		size_t kl = strlen(key);
		if (kl < 2 || strcmp(key + kl - 2, ".$") != 0) {
			char *p = v_ptr(v, pointer, key);
			if (!p)
				return false;
			ok &= check_template_keys(v, val, p, depth + 1);
			sl_free(p);
			continue;
		}
		struct sl_error err;
		sl_error_clear(&err);
		bool good = false;
		if (json_is_string(val) && v_uses_variable(json_string_value(val))) {
			v_variable_problem(v, pointer, key, json_string_value(val));
			ok = false;
			continue;
		}
		if (json_is_string(val)) {
			const char *text = json_string_value(val);
			sl_err rc;
			if (sm_intrinsic_is_call(text)) {
				struct sm_intrinsic *f = NULL;
				rc = sm_intrinsic_compile(text, &f, &err);
				sm_intrinsic_free(f);
			} else {
				struct sm_path *pa = NULL;
				rc = sm_path_compile(text, SM_PATH_JSONPATH, &pa, &err);
				sm_path_free(pa);
			}
			if (rc == SL_ERR_NOMEM) {
				v_nomem(v);
				return false;
			}
			good = rc == SL_OK;
		}
		if (!good) {
			/* AWS points at the object holding the key, and so do we. */
			v_report_field(v, pointer, key,
			               SM_SCHEMA "The value for the field '%s' must be a valid "
			                         "JSONPath or a valid intrinsic function call",
			               key);
			ok = false;
		}
	}
	return ok;
}

bool
v_template(struct vctx *v, json_t *obj, const char *pointer, const char *field,
           struct sm_template **out)
{
	json_t *m = json_object_get(obj, field);
	if (!m)
		return true;
	char *p = v_ptr(v, pointer, field);
	if (!p)
		return false;
	bool ok = check_template_keys(v, m, p, 0);
	if (ok) {
		struct sl_error err;
		sl_err crc = SL_OK;
		sl_error_clear(&err);
		if ((crc = sm_template_compile(m, out, &err)) != SL_OK) {
			if ((crc == SL_ERR_NOMEM || err.code == SL_ERR_NOMEM))
				v_nomem(v);
			else
				v_report(v, p,
				         SM_SCHEMA "The value for the field '%s' is not valid: %s",
				         field, sl_error_text(&err));
			ok = false;
		}
	}
	sl_free(p);
	return ok;
}

/* ---- Retry / Catch ----------------------------------------------------------------------- */

/* ErrorEquals: non-empty strings; States.ALL alone. Returns true when it holds States.ALL. */
static bool
error_equals(struct vctx *v, json_t *obj, const char *pointer, struct sm_error_match *out)
{
	json_t *arr = v_require(v, obj, pointer, "ErrorEquals");
	if (!arr)
		return false;
	char *p = v_ptr(v, pointer, "ErrorEquals");
	if (!p)
		return false;
	bool all = false;
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		v_report(v, p,
		         SM_SCHEMA "The value for the field 'ErrorEquals' must be a non-empty "
		                   "array of error names");
		sl_free(p);
		return false;
	}
	out->names = sl_calloc(json_array_size(arr), sizeof *out->names);
	if (!out->names) {
		sl_free(p);
		v_nomem(v);
		return false;
	}
	size_t i;
	json_t *el;
	json_array_foreach(arr, i, el)
	{
		char *ep = v_ptr_index(v, p, i);
		if (!ep)
			break;
		if (!json_is_string(el) || json_string_length(el) == 0) {
			v_report(v, ep,
			         SM_SCHEMA "The value for the field 'ErrorEquals' must hold "
			                   "non-empty strings");
		} else {
			if (!strcmp(json_string_value(el), "States.ALL")) {
				all = true;
				if (json_array_size(arr) != 1)
					v_report(v, ep,
					         SM_SCHEMA "States.ALL must appear alone in "
					                   "ErrorEquals");
			}
			if (!(out->names[out->n_names++] = sl_strdup(json_string_value(el))))
				v_nomem(v);
		}
		sl_free(ep);
	}
	out->matches_all = all && json_array_size(arr) == 1;
	sl_free(p);
	return all;
}

static const char *const retrier_fields[]
        = { "ErrorEquals",     "IntervalSeconds", "MaxAttempts", "BackoffRate",
	    "MaxDelaySeconds", "JitterStrategy",  "Comment",     NULL };
static const char *const catcher_fields[]
        = { "ErrorEquals", "Next", "ResultPath", "Assign", "Comment", NULL };

void
v_retry(struct vctx *v, json_t *state, const char *pointer, struct sm_state *st)
{
	json_t *arr = json_object_get(state, "Retry");
	if (!arr)
		return;
	char *p = v_ptr(v, pointer, "Retry");
	if (!p)
		return;
	if (!json_is_array(arr)) {
		v_report(v, p, SM_SCHEMA "The value for the field 'Retry' must be an ARRAY");
		sl_free(p);
		return;
	}
	size_t n = json_array_size(arr);
	st->retry = n ? sl_calloc(n, sizeof *st->retry) : NULL;
	if (n && !st->retry) {
		v_nomem(v);
		sl_free(p);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *r = json_array_get(arr, i);
		char *rp = v_ptr_index(v, p, i);
		if (!rp)
			break;
		struct sm_retrier *rt = &st->retry[st->n_retry++];
		rt->interval_seconds = SM_RETRY_DEFAULT_INTERVAL_SECONDS;
		rt->max_attempts = SM_RETRY_DEFAULT_MAX_ATTEMPTS;
		rt->backoff_rate = SM_RETRY_DEFAULT_BACKOFF_RATE;
		if (!json_is_object(r)) {
			v_report(v, rp, SM_SCHEMA "A Retrier must be an OBJECT");
			sl_free(rp);
			continue;
		}
		v_check_fields(v, r, rp, retrier_fields);
		if (error_equals(v, r, rp, &rt->errors) && i + 1 != n)
			v_report(v, rp, SM_SCHEMA "States.ALL must appear in the last Retrier");
		v_int(v, r, rp, "IntervalSeconds", 1, 99999999, &rt->interval_seconds, NULL);
		v_int(v, r, rp, "MaxAttempts", 0, 99999999, &rt->max_attempts, NULL);
		v_number(v, r, rp, "BackoffRate", 1.0, 1e9, &rt->backoff_rate, NULL);
		v_int(v, r, rp, "MaxDelaySeconds", 1, 99999999, &rt->max_delay_seconds, NULL);
		const char *jit = NULL;
		bool has_jit;
		if (v_string(v, r, rp, "JitterStrategy", &jit, &has_jit) && has_jit) {
			if (!strcmp(jit, "FULL")) {
				rt->jitter = SM_JITTER_FULL;
			} else if (strcmp(jit, "NONE") != 0) {
				char *jp = v_ptr(v, rp, "JitterStrategy");
				if (jp)
					v_report(v, jp,
					         SM_SCHEMA
					         "The value for the field 'JitterStrategy' "
					         "must be one of [FULL, NONE]");
				sl_free(jp);
			}
		}
		sl_free(rp);
	}
	sl_free(p);
}

void
v_catch(struct vctx *v, json_t *state, const char *pointer, const struct vnames *names,
        struct sm_state *st)
{
	json_t *arr = json_object_get(state, "Catch");
	if (!arr)
		return;
	char *p = v_ptr(v, pointer, "Catch");
	if (!p)
		return;
	if (!json_is_array(arr)) {
		v_report(v, p, SM_SCHEMA "The value for the field 'Catch' must be an ARRAY");
		v->graph_broken = true;
		sl_free(p);
		return;
	}
	size_t n = json_array_size(arr);
	st->catch_ = n ? sl_calloc(n, sizeof *st->catch_) : NULL;
	if (n && !st->catch_) {
		v_nomem(v);
		sl_free(p);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *c = json_array_get(arr, i);
		char *cp = v_ptr_index(v, p, i);
		if (!cp)
			break;
		struct sm_catcher *ct = &st->catch_[st->n_catch++];
		ct->next = SM_NO_STATE;
		if (!json_is_object(c)) {
			v_report(v, cp, SM_SCHEMA "A Catcher must be an OBJECT");
			v->graph_broken = true;
			sl_free(cp);
			continue;
		}
		v_check_fields(v, c, cp, catcher_fields);
		if (error_equals(v, c, cp, &ct->errors) && i + 1 != n)
			v_report(v, cp, SM_SCHEMA "States.ALL must appear in the last Catcher");
		json_t *next = v_require(v, c, cp, "Next");
		if (next) {
			char *np = v_ptr(v, cp, "Next");
			if (np && !json_is_string(next)) {
				v_report(v, np,
				         SM_SCHEMA
				         "The value for the field 'Next' must be a STRING");
				v->graph_broken = true;
			} else if (np) {
				ct->next = v_target(v, names, json_string_value(next), cp, "Next");
			}
			sl_free(np);
		}
		v_io_path(v, c, cp, "ResultPath", SM_PATH_REFERENCE, &ct->result_path);
		v_template(v, c, cp, "Assign", &ct->assign);
		sl_free(cp);
	}
	sl_free(p);
}
