/*
 * step_mock.c - mock configuration parsing (see step_mock.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "stepper/step_mock.h"

struct step_mock {
	json_t *states; /* state name -> array of checked responses, one per attempt */
};

/* Checks one response and returns it normalised (new reference): a Throw's Cause that is
 * not a string (Lambda error objects) becomes its JSON text, as the service passes it on. */
static sl_err
check_response(json_t *r, const char *where, json_t **out, struct sl_error *err)
{
	if (!json_is_object(r))
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "%s: expected an object with \"Return\" or \"Throw\"", where);
	json_t *ret = json_object_get(r, "Return");
	json_t *thr = json_object_get(r, "Throw");
	if ((ret != NULL) == (thr != NULL) || json_object_size(r) != 1)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "%s: expected exactly one of \"Return\" and \"Throw\"", where);
	if (!thr) {
		*out = json_incref(r);
		return SL_OK;
	}
	json_t *e = json_object_get(thr, "Error");
	json_t *c = json_object_get(thr, "Cause");
	if (!json_is_object(thr) || (e && !json_is_string(e)))
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "%s/Throw: expected {\"Error\": string, \"Cause\": any}",
		                    where);
	json_t *t = json_object();
	json_t *o = json_pack("{s:o}", "Throw", t);
	if (!o)
		return SL_ERR_NOMEM;
	if (e)
		json_object_set(t, "Error", e);
	if (c && json_is_string(c)) {
		json_object_set(t, "Cause", c);
	} else if (c) {
		char *s = json_dumps(c, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!s || json_object_set_new(t, "Cause", json_string(s))) {
			free(s);
			json_decref(o);
			return SL_ERR_NOMEM;
		}
		free(s);
	}
	*out = o;
	return SL_OK;
}

static sl_err
add_short(struct step_mock *m, json_t *doc, struct sl_error *err)
{
	const char *state;
	json_t *list;
	json_object_foreach(doc, state, list)
	{
		char where[256];
		snprintf(where, sizeof where, "/%.200s", state);
		if (!json_is_array(list))
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "%s: expected an array of responses, one per attempt",
			                    where);
		json_t *arr = json_array();
		if (!arr || json_object_set_new(m->states, state, arr))
			return SL_ERR_NOMEM;
		size_t i;
		json_t *r;
		json_array_foreach(list, i, r)
		{
			char w2[300];
			json_t *n = NULL;
			snprintf(w2, sizeof w2, "%s/%zu", where, i);
			sl_err e = check_response(r, w2, &n, err);
			if (e != SL_OK)
				return e;
			if (json_array_append_new(arr, n))
				return SL_ERR_NOMEM;
		}
	}
	return SL_OK;
}

/* "0", "1-2": attempt ranges, inclusive. */
static bool
parse_range(const char *s, long *lo, long *hi)
{
	char *end;
	errno = 0;
	*lo = strtol(s, &end, 10);
	if (end == s || errno || *lo < 0)
		return false;
	if (*end == 0) {
		*hi = *lo;
		return true;
	}
	if (*end != '-')
		return false;
	const char *t = end + 1;
	*hi = strtol(t, &end, 10);
	return end != t && *end == 0 && !errno && *hi >= *lo;
}

static sl_err
expand_response(json_t *spec, const char *where, json_t **out, struct sl_error *err)
{
	if (!json_is_object(spec))
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "%s: expected an object of attempt ranges (\"0\", \"1-2\")",
		                    where);
	json_t *arr = json_array();
	if (!arr)
		return SL_ERR_NOMEM;
	const char *key;
	json_t *r;
	json_object_foreach(spec, key, r)
	{
		char w2[512];
		snprintf(w2, sizeof w2, "%s/%.100s", where, key);
		long lo = 0, hi = -1;
		sl_err e = SL_OK;
		if (!parse_range(key, &lo, &hi) || hi >= STEP_MOCK_MAX_ATTEMPTS)
			e = sl_error_set(err, SL_ERR_INVALID_ARG,
			                 "%s: expected an attempt number or range below %d (\"0\", "
			                 "\"1-2\")",
			                 w2, STEP_MOCK_MAX_ATTEMPTS);
		json_t *n = NULL;
		if (e == SL_OK)
			e = check_response(r, w2, &n, err);
		for (long i = lo; e == SL_OK && i <= hi; i++) {
			while (e == SL_OK && json_array_size(arr) <= (size_t)i)
				if (json_array_append_new(arr, json_null()))
					e = SL_ERR_NOMEM;
			if (e == SL_OK && json_array_set(arr, (size_t)i, n))
				e = SL_ERR_NOMEM;
		}
		json_decref(n);
		if (e != SL_OK) {
			json_decref(arr);
			return e;
		}
	}
	*out = arr;
	return SL_OK;
}

static json_t *
pick(json_t *obj, const char *name, const char *what, const char *where, struct sl_error *err)
{
	if (!json_is_object(obj)) {
		sl_error_set(err, SL_ERR_INVALID_ARG, "%s: expected an object", where);
		return NULL;
	}
	if (name) {
		json_t *v = json_object_get(obj, name);
		if (!v)
			sl_error_set(err, SL_ERR_INVALID_ARG, "%s: no %s named '%s'", where, what,
			             name);
		return v;
	}
	if (json_object_size(obj) != 1) {
		sl_error_set(err, SL_ERR_INVALID_ARG,
		             "%s: %zu %ss are defined: name the one to use", where,
		             json_object_size(obj), what);
		return NULL;
	}
	void *it = json_object_iter(obj);
	return json_object_iter_value(it);
}

static sl_err
add_full(struct step_mock *m, json_t *doc, const char *machine, const char *test_case,
         struct sl_error *err)
{
	json_t *sms = json_object_get(doc, "StateMachines");
	json_t *resp = json_object_get(doc, "MockedResponses");
	if (!json_is_object(resp))
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "/MockedResponses: expected an object");
	json_t *sm = pick(sms, machine, "state machine", "/StateMachines", err);
	if (!sm)
		return SL_ERR_INVALID_ARG;
	json_t *tc = pick(json_object_get(sm, "TestCases"), test_case, "test case",
	                  "/StateMachines/<machine>/TestCases", err);
	if (!tc)
		return SL_ERR_INVALID_ARG;
	if (!json_is_object(tc))
		return sl_error_set(err, SL_ERR_INVALID_ARG, "test case: expected an object");
	const char *state;
	json_t *ref;
	json_object_foreach(tc, state, ref)
	{
		if (!json_is_string(ref))
			return sl_error_set(
			        err, SL_ERR_INVALID_ARG,
			        "test case/%.200s: expected the name of a mocked response", state);
		json_t *spec = json_object_get(resp, json_string_value(ref));
		char where[300];
		snprintf(where, sizeof where, "/MockedResponses/%.200s", json_string_value(ref));
		if (!spec)
			return sl_error_set(err, SL_ERR_INVALID_ARG, "%s: not defined", where);
		json_t *arr = NULL;
		sl_err e = expand_response(spec, where, &arr, err);
		if (e != SL_OK)
			return e;
		if (json_object_set_new(m->states, state, arr))
			return SL_ERR_NOMEM;
	}
	return SL_OK;
}

sl_err
step_mock_parse(json_t *doc, const char *machine, const char *test_case, struct step_mock **out,
                struct sl_error *err)
{
	if (!json_is_object(doc))
		return sl_error_set(err, SL_ERR_INVALID_ARG, "mock file: expected a JSON object");
	struct step_mock *m = SL_NEW(struct step_mock);
	if (!m || !(m->states = json_object())) {
		sl_free(m);
		return SL_ERR_NOMEM;
	}
	sl_err e;
	if (json_object_get(doc, "StateMachines") || json_object_get(doc, "MockedResponses"))
		e = add_full(m, doc, machine, test_case, err);
	else
		e = add_short(m, doc, err);
	if (e != SL_OK) {
		step_mock_free(m);
		return e;
	}
	*out = m;
	return SL_OK;
}

void
step_mock_free(struct step_mock *m)
{
	if (!m)
		return;
	json_decref(m->states);
	sl_free(m);
}

sl_err
step_mock_response(const struct step_mock *m, const char *state, unsigned attempt, json_t **ret,
                   const char **error, const char **cause)
{
	json_t *r = json_array_get(json_object_get(m->states, state), attempt);
	if (!json_is_object(r))
		return SL_ERR_NOT_FOUND;
	json_t *thr = json_object_get(r, "Throw");
	*ret = NULL;
	*error = *cause = NULL;
	if (thr) {
		*error = json_string_value(json_object_get(thr, "Error"));
		*cause = json_string_value(json_object_get(thr, "Cause"));
	} else {
		*ret = json_object_get(r, "Return");
	}
	return SL_OK;
}
