/*
 * sm_template.c - payload templates (Parameters, ResultSelector, ItemSelector, Arguments).
 * A key ending in ".$" holds a path or an intrinsic call, compiled here; the output key
 * drops the ".$". Everything else is copied, recursively through objects and arrays.
 */
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/sm_path_int.h"

/* The error a missing `.$` path raises. The ASL spec says States.ParameterPathFailure, but
 * AWS and Step Functions Local fail with States.Runtime and this cause text (recorded
 * histories; floci issue #2521): States.ALL does not catch it. We follow the service. */
#define SM_PATH_MISS_ERROR "States.Runtime"

/* Definitions nest far less than this; it bounds recursion on hostile input. */
#define SM_TEMPLATE_MAX_DEPTH 128

enum sm_tkind { SM_TPL_LITERAL, SM_TPL_OBJECT, SM_TPL_ARRAY, SM_TPL_PATH, SM_TPL_CALL };

struct sm_tnode {
	enum sm_tkind kind;
	char *key;   /* output key inside the parent object */
	char *field; /* key as written ("y.$"), for messages */
	json_t *literal;
	struct sm_path *path;
	struct sm_intrinsic *call;
	size_t n;
	struct sm_tnode *kids;
};

struct sm_template {
	struct sm_tnode root;
};

static void
tnode_clear(struct sm_tnode *t)
{
	for (size_t i = 0; i < t->n; i++)
		tnode_clear(&t->kids[i]);
	sl_free(t->kids);
	sl_free(t->key);
	sl_free(t->field);
	json_decref(t->literal);
	sm_path_free(t->path);
	sm_intrinsic_free(t->call);
}

void
sm_template_free(struct sm_template *t)
{
	if (!t)
		return;
	tnode_clear(&t->root);
	sl_free(t);
}

/* True when some key below v ends in ".$": only then is the subtree worth walking. */
static bool
has_dynamic(json_t *v, int depth)
{
	if (depth > SM_TEMPLATE_MAX_DEPTH)
		return true; /* let compile report the depth */
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
		{
			size_t n = strlen(k);
			if ((n >= 2 && strcmp(k + n - 2, ".$") == 0) || has_dynamic(x, depth + 1))
				return true;
		}
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			if (has_dynamic(json_array_get(v, i), depth + 1))
				return true;
	}
	return false;
}

static sl_err
compile_dynamic(const char *field, json_t *v, struct sm_tnode *t, struct sl_error *err)
{
	struct sl_error sub;
	sl_err rc;
	const char *s = json_string_value(v);
	if (!s)
		return sl_error_set(
		        err, SL_ERR_INVALID_DEFINITION,
		        "The value for the field '%s' must be a valid JSONPath or a valid "
		        "intrinsic function call (it is not a string)",
		        field);
	if (sm_intrinsic_is_call(s)) {
		t->kind = SM_TPL_CALL;
		rc = sm_intrinsic_compile(s, &t->call, &sub);
	} else if (s[0] == '$') {
		t->kind = SM_TPL_PATH;
		rc = sm_path_compile(s, SM_PATH_JSONPATH, &t->path, &sub);
	} else {
		return sl_error_set(
		        err, SL_ERR_INVALID_DEFINITION,
		        "The value for the field '%s' must be a valid JSONPath or a valid "
		        "intrinsic function call",
		        field);
	}
	if (rc == SL_ERR_NOMEM)
		return rc;
	if (rc)
		return sl_error_set(
		        err, SL_ERR_INVALID_DEFINITION,
		        "The value for the field '%s' must be a valid JSONPath or a valid "
		        "intrinsic function call (%s)",
		        field, sl_error_text(&sub));
	return SL_OK;
}

static sl_err
compile_node(json_t *v, struct sm_tnode *t, int depth, struct sl_error *err)
{
	sl_err rc;
	if (depth > SM_TEMPLATE_MAX_DEPTH)
		return sl_error_set(err, SL_ERR_INVALID_DEFINITION,
		                    "payload template nested deeper than %d levels",
		                    SM_TEMPLATE_MAX_DEPTH);
	if (!has_dynamic(v, depth)) {
		t->kind = SM_TPL_LITERAL;
		t->literal = json_incref(v);
		return SL_OK;
	}
	t->kind = json_is_object(v) ? SM_TPL_OBJECT : SM_TPL_ARRAY;
	size_t n = json_is_object(v) ? json_object_size(v) : json_array_size(v);
	if (n) {
		t->kids = sl_calloc(n, sizeof(*t->kids));
		if (!t->kids)
			return SL_ERR_NOMEM;
	}
	if (t->kind == SM_TPL_ARRAY) {
		for (size_t i = 0; i < n; i++) {
			t->n++;
			if ((rc = compile_node(json_array_get(v, i), &t->kids[i], depth + 1, err)))
				return rc;
		}
		return SL_OK;
	}
	const char *k;
	json_t *x;
	json_object_foreach(v, k, x)
	{
		struct sm_tnode *kid = &t->kids[t->n++];
		size_t klen = strlen(k);
		bool dyn = klen >= 2 && strcmp(k + klen - 2, ".$") == 0;
		kid->key = sl_strndup(k, dyn ? klen - 2 : klen);
		if (!kid->key)
			return SL_ERR_NOMEM;
		if (dyn) {
			kid->field = sl_strdup(k);
			if (!kid->field)
				return SL_ERR_NOMEM;
			rc = compile_dynamic(k, x, kid, err);
		} else {
			rc = compile_node(x, kid, depth + 1, err);
		}
		if (rc)
			return rc;
	}
	return SL_OK;
}

sl_err
sm_template_compile(json_t *tmpl, struct sm_template **out, struct sl_error *err)
{
	if (!tmpl)
		return sl_error_set(err, SL_ERR_INVALID_DEFINITION, "payload template is missing");
	struct sm_template *t = SL_NEW(struct sm_template);
	if (!t)
		return SL_ERR_NOMEM;
	sl_err rc = compile_node(tmpl, &t->root, 0, err);
	if (rc) {
		sm_template_free(t);
		return rc;
	}
	*out = t;
	return SL_OK;
}

static sl_err
eval_node(const struct sm_tnode *t, json_t *input, json_t *context, json_t **out,
          struct sm_fault *fault)
{
	sl_err rc;
	switch (t->kind) {
	case SM_TPL_LITERAL:
		/* a copy, so the caller may modify the payload without touching the template */
		*out = json_deep_copy(t->literal);
		break;
	case SM_TPL_PATH:
		rc = sm_path_get(t->path, input, context, out);
		if (rc == SL_ERR_NOT_FOUND) {
			char doc[700];
			sm_fault_json(sm_path_is_context(t->path) ? context : input, doc,
			              sizeof(doc));
			sm_fault_set(fault, SM_PATH_MISS_ERROR,
			             "The JSONPath '%s' specified for the field '%s' could not be "
			             "found in the input '%s'",
			             sm_path_text(t->path), t->field, doc);
			return rc;
		}
		if (rc)
			goto nomem;
		return SL_OK;
	case SM_TPL_CALL: return sm_intrinsic_eval(t->call, input, context, out, fault);
	case SM_TPL_ARRAY:
		*out = json_array();
		if (!*out)
			goto nomem;
		for (size_t i = 0; i < t->n; i++) {
			json_t *x;
			if ((rc = eval_node(&t->kids[i], input, context, &x, fault)))
				goto fail;
			if (json_array_append_new(*out, x)) {
				json_decref(*out);
				goto nomem;
			}
		}
		return SL_OK;
	case SM_TPL_OBJECT:
		*out = json_object();
		if (!*out)
			goto nomem;
		for (size_t i = 0; i < t->n; i++) {
			json_t *x;
			if ((rc = eval_node(&t->kids[i], input, context, &x, fault)))
				goto fail;
			if (json_object_set_new(*out, t->kids[i].key, x)) {
				json_decref(*out);
				goto nomem;
			}
		}
		return SL_OK;
	}
	if (!*out)
		goto nomem;
	return SL_OK;
fail:
	json_decref(*out);
	*out = NULL;
	return rc;
nomem:
	sm_fault_set(fault, "States.Runtime", "out of memory");
	return SL_ERR_NOMEM;
}

sl_err
sm_template_eval(const struct sm_template *t, json_t *input, json_t *context, json_t **out,
                 struct sm_fault *fault)
{
	json_t *r;
	sl_err rc = eval_node(&t->root, input, context, &r, fault);
	if (rc)
		return rc;
	*out = r;
	return SL_OK;
}
