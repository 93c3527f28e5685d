/*
 * sm_validate.c - the top of the validator: machines (top level, Parallel branches, Map
 * processors), state names, transitions, reachability and terminal states, and the fields
 * every state type shares. Type-specific checks live in sm_validate_states.c and
 * sm_validate_choice.c.
 */
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/sm_load_int.h"
#include "statemachines/sm_validate_int.h"

size_t
v_lookup(const struct vnames *names, const char *name)
{
	json_t *i = names->index ? json_object_get(names->index, name) : NULL;
	return i ? (size_t)json_integer_value(i) : SM_NO_STATE;
}

size_t
v_target(struct vctx *v, const struct vnames *names, const char *target, const char *pointer,
         const char *field)
{
	size_t found = v_lookup(names, target);
	if (found != SM_NO_STATE)
		return found;
	char *p = v_ptr(v, pointer, field);
	v->target_missing = true;
	if (p)
		v_report(v, p, SM_MISSING_TARGET "Missing '%s' target: %s", field, target);
	sl_free(p);
	return SM_NO_STATE;
}

static bool
parse_type(const char *s, enum sm_state_type *out)
{
	static const char *const names[]
	        = { "Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map" };
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (!strcmp(s, names[i])) {
			*out = (enum sm_state_type)i;
			return true;
		}
	return false;
}

/* Fields each type may have in JSONPath mode (besides Type, Comment, QueryLanguage). */
static const char *const pass_fields[]
        = { "Type",       "Comment", "QueryLanguage", "InputPath", "OutputPath", "Parameters",
	    "ResultPath", "Result",  "Next",          "End",       "Assign",     NULL };
static const char *const task_fields[] = { "Type",
	                                   "Comment",
	                                   "QueryLanguage",
	                                   "Resource",
	                                   "InputPath",
	                                   "OutputPath",
	                                   "Parameters",
	                                   "ResultSelector",
	                                   "ResultPath",
	                                   "Retry",
	                                   "Catch",
	                                   "TimeoutSeconds",
	                                   "TimeoutSecondsPath",
	                                   "HeartbeatSeconds",
	                                   "HeartbeatSecondsPath",
	                                   "Credentials",
	                                   "Next",
	                                   "End",
	                                   "Assign",
	                                   NULL };
static const char *const choice_fields[]
        = { "Type",      "Comment",    "QueryLanguage", "Choices", "Default",
	    "InputPath", "OutputPath", "Assign",        NULL };
static const char *const wait_fields[] = { "Type",        "Comment",   "QueryLanguage", "Seconds",
	                                   "SecondsPath", "Timestamp", "TimestampPath", "InputPath",
	                                   "OutputPath",  "Next",      "End",           "Assign",
	                                   NULL };
static const char *const succeed_fields[]
        = { "Type", "Comment", "QueryLanguage", "InputPath", "OutputPath", NULL };
static const char *const fail_fields[]
        = { "Type", "Comment", "QueryLanguage", "Error", "ErrorPath", "Cause", "CausePath", NULL };
static const char *const parallel_fields[] = { "Type",       "Comment",        "QueryLanguage",
	                                       "Branches",   "InputPath",      "OutputPath",
	                                       "Parameters", "ResultSelector", "ResultPath",
	                                       "Retry",      "Catch",          "Next",
	                                       "End",        "Assign",         NULL };
static const char *const map_fields[] = { "Type",
	                                  "Comment",
	                                  "QueryLanguage",
	                                  "ItemProcessor",
	                                  "Iterator",
	                                  "ItemsPath",
	                                  "ItemSelector",
	                                  "Parameters",
	                                  "MaxConcurrency",
	                                  "MaxConcurrencyPath",
	                                  "ResultSelector",
	                                  "ResultPath",
	                                  "InputPath",
	                                  "OutputPath",
	                                  "Retry",
	                                  "Catch",
	                                  "Next",
	                                  "End",
	                                  "Assign",
	                                  "ItemReader",
	                                  "ItemBatcher",
	                                  "ResultWriter",
	                                  "ToleratedFailureCount",
	                                  "ToleratedFailureCountPath",
	                                  "ToleratedFailurePercentage",
	                                  "ToleratedFailurePercentagePath",
	                                  "Label",
	                                  NULL };

static const char *const *const type_fields[] = {
	[SM_STATE_PASS] = pass_fields,         [SM_STATE_TASK] = task_fields,
	[SM_STATE_CHOICE] = choice_fields,     [SM_STATE_WAIT] = wait_fields,
	[SM_STATE_SUCCEED] = succeed_fields,   [SM_STATE_FAIL] = fail_fields,
	[SM_STATE_PARALLEL] = parallel_fields, [SM_STATE_MAP] = map_fields,
};

/* Next xor End, for the types that transition. */
static void
transition(struct vctx *v, json_t *s, const char *p, const struct vnames *names,
           struct sm_state *st)
{
	json_t *next = json_object_get(s, "Next");
	bool end = false, has_end = false;
	if (!v_bool(v, s, p, "End", &end, &has_end)) {
		v->graph_broken = true;
		return;
	}
	if (next && has_end && end) {
		v_report_field(v, p, "End",
		               SM_SCHEMA "Only one of 'Next' and 'End' may be set (End is true)");
		/* keep both, so the graph checks see what the author meant either way */
		st->end = true;
		if (json_is_string(next))
			st->next = v_target(v, names, json_string_value(next), p, "Next");
		return;
	}
	if (has_end && !end && !next) {
		v_report_field(v, p, "End",
		               SM_SCHEMA "The value for the field 'End' must be true when 'Next' "
		                         "is not set");
		v->graph_broken = true;
		return;
	}
	if (!next && !has_end) {
		v_report(v, p, SM_SCHEMA "These fields are required: [Next or End]");
		v->graph_broken = true;
		return;
	}
	if (next) {
		if (!json_is_string(next)) {
			v->graph_broken = true;
			char *np = v_ptr(v, p, "Next");
			if (np)
				v_report(v, np,
				         SM_SCHEMA
				         "The value for the field 'Next' must be a STRING");
			sl_free(np);
			return;
		}
		st->next = v_target(v, names, json_string_value(next), p, "Next");
		return;
	}
	st->end = true;
}

static size_t
quiet_target(const struct vnames *names, json_t *target)
{
	if (!json_is_string(target))
		return SM_NO_STATE;
	return v_lookup(names, json_string_value(target));
}

/* A JSONata state is reported once as unsupported; its transitions are still followed
 * (without checks) so that the states after it are not called unreachable. */
static void
quiet_transitions(struct vctx *v, json_t *s, const struct vnames *names, struct sm_state *st)
{
	st->next = quiet_target(names, json_object_get(s, "Next"));
	st->end = json_is_true(json_object_get(s, "End"));
	json_t *catch = json_object_get(s, "Catch");
	if (json_is_array(catch) && json_array_size(catch)) {
		if (!(st->catch_ = sl_calloc(json_array_size(catch), sizeof *st->catch_))) {
			v_nomem(v);
			return;
		}
		for (size_t i = 0; i < json_array_size(catch); i++)
			st->catch_[st->n_catch++].next = quiet_target(
			        names, json_object_get(json_array_get(catch, i), "Next"));
	}
	if (st->type != SM_STATE_CHOICE)
		return;
	st->u.choice.default_next = quiet_target(names, json_object_get(s, "Default"));
	json_t *choices = json_object_get(s, "Choices");
	if (!json_is_array(choices) || !json_array_size(choices))
		return;
	if (!(st->u.choice.rules
	      = sl_calloc(json_array_size(choices), sizeof *st->u.choice.rules))) {
		v_nomem(v);
		return;
	}
	for (size_t i = 0; i < json_array_size(choices); i++)
		st->u.choice.rules[st->u.choice.n_rules++].next
		        = quiet_target(names, json_object_get(json_array_get(choices, i), "Next"));
}

/* True when any string (key or value) under v contains "$$": every context path does. */
static bool
mentions_context(json_t *v)
{
	if (json_is_string(v))
		return strstr(json_string_value(v), "$$") != NULL;
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			if (mentions_context(json_array_get(v, i)))
				return true;
		return false;
	}
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
		{
			if (strstr(k, "$$") || mentions_context(x))
				return true;
		}
	}
	return false;
}

/* Compiles the fields of one state. */
static void
state(struct vctx *v, json_t *s, const char *p, const struct vnames *names, struct sm_state *st)
{
	st->next = SM_NO_STATE;
	if (!json_is_object(s)) {
		v_report(v, p, SM_SCHEMA "A state must be an OBJECT");
		v->graph_broken = true;
		return;
	}
	json_t *type = v_require(v, s, p, "Type");
	if (!type) {
		v->graph_broken = true;
		return;
	}
	if (!json_is_string(type) || !parse_type(json_string_value(type), &st->type)) {
		v->graph_broken = true;
		char *tp = v_ptr(v, p, "Type");
		if (tp)
			v_report(v, tp,
			         SM_SCHEMA "The value for the field 'Type' must be one of [Pass, "
			                   "Task, Choice, Wait, Succeed, Fail, Parallel, Map]");
		sl_free(tp);
		return;
	}
	const char *qls = NULL;
	bool has_ql = false;
	if (v_string(v, s, p, "QueryLanguage", &qls, &has_ql) && has_ql) {
		char *qp = v_ptr(v, p, "QueryLanguage");
		if (!strcmp(qls, "JSONata")) {
			if (qp)
				v_report(v, qp,
				         SM_SCHEMA "QueryLanguage JSONata is not supported yet");
			sl_free(qp);
			quiet_transitions(v, s, names, st);
			return;
		}
		if (strcmp(qls, "JSONPath") != 0 && qp)
			v_report(v, qp,
			         SM_SCHEMA "The value for the field 'QueryLanguage' must be one of "
			                   "[JSONPath, JSONata]");
		sl_free(qp);
	}
	v_check_fields(v, s, p, type_fields[st->type]);
	v_strdup_field(v, s, p, "Comment", &st->comment);

	enum sm_state_type t = st->type;
	st->uses_context = t == SM_STATE_TASK || t == SM_STATE_PARALLEL || t == SM_STATE_MAP
	        || mentions_context(s);
	if (t != SM_STATE_FAIL) {
		v_io_path(v, s, p, "InputPath", SM_PATH_JSONPATH, &st->input_path);
		v_io_path(v, s, p, "OutputPath", SM_PATH_JSONPATH, &st->output_path);
	}
	if (t == SM_STATE_PASS || t == SM_STATE_TASK || t == SM_STATE_PARALLEL
	    || t == SM_STATE_MAP) {
		v_io_path(v, s, p, "ResultPath", SM_PATH_REFERENCE, &st->result_path);
		if (t != SM_STATE_MAP)
			v_template(v, s, p, "Parameters", &st->parameters);
	}
	if (t == SM_STATE_TASK || t == SM_STATE_PARALLEL || t == SM_STATE_MAP) {
		v_template(v, s, p, "ResultSelector", &st->result_selector);
		v_retry(v, s, p, st);
		v_catch(v, s, p, names, st);
	}
	if (t != SM_STATE_SUCCEED && t != SM_STATE_FAIL)
		v_template(v, s, p, "Assign", &st->assign);
	if (t == SM_STATE_PASS) {
		json_t *r = json_object_get(s, "Result");
		if (r)
			st->result = json_incref(r);
	}
	if (t != SM_STATE_CHOICE && t != SM_STATE_SUCCEED && t != SM_STATE_FAIL)
		transition(v, s, p, names, st);

	switch (t) {
	case SM_STATE_TASK: v_state_task(v, s, p, st); break;
	case SM_STATE_CHOICE: v_state_choice(v, s, p, names, st); break;
	case SM_STATE_WAIT: v_state_wait(v, s, p, st); break;
	case SM_STATE_FAIL: v_state_fail(v, s, p, st); break;
	case SM_STATE_PARALLEL: v_state_parallel(v, s, p, st); break;
	case SM_STATE_MAP: v_state_map(v, s, p, st); break;
	default: break;
	}
}

/* Counts characters, not bytes: the limit is 80 characters. */
static size_t
utf8_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

static bool
mark_reachable(const struct sm_machine *m, bool *seen, size_t i)
{
	/* explicit stack: a long chain of states must not recurse deeply */
	size_t *stack = sl_calloc(m->n_states + 1, sizeof *stack);
	if (!stack)
		return false;
	size_t top = 0;
	stack[top++] = i;
	seen[i] = true;
	while (top) {
		const struct sm_state *st = &m->states[stack[--top]];
		size_t targets_n = 2 + st->n_catch
		        + (st->type == SM_STATE_CHOICE ? st->u.choice.n_rules : 0);
		for (size_t k = 0; k < targets_n; k++) {
			size_t t;
			if (k == 0)
				t = st->next;
			else if (k == 1)
				t = st->type == SM_STATE_CHOICE ? st->u.choice.default_next
				                                : SM_NO_STATE;
			else if (k - 2 < st->n_catch)
				t = st->catch_[k - 2].next;
			else
				t = st->u.choice.rules[k - 2 - st->n_catch].next;
			if (t != SM_NO_STATE && t < m->n_states && !seen[t]) {
				seen[t] = true;
				stack[top++] = t;
			}
		}
	}
	sl_free(stack);
	return true;
}

static void
graph_checks(struct vctx *v, struct sm_machine *m, const char *pointer, const char *states_ptr)
{
	if (m->start == SM_NO_STATE || v->fatal != SL_OK || v->graph_broken)
		return;
	bool *seen = sl_calloc(m->n_states, sizeof *seen);
	if (!seen) {
		v_nomem(v);
		return;
	}
	if (!mark_reachable(m, seen, m->start)) {
		sl_free(seen);
		v_nomem(v);
		return;
	}
	bool terminal = false;
	for (size_t i = 0; i < m->n_states; i++) {
		const struct sm_state *st = &m->states[i];
		if (st->end || st->type == SM_STATE_SUCCEED || st->type == SM_STATE_FAIL)
			terminal = true;
	}
	for (size_t i = 0; i < m->n_states; i++) {
		if (seen[i] || !m->states[i].name)
			continue;
		char *sp = v_ptr(v, states_ptr, m->states[i].name);
		if (sp)
			v_report(v, sp, SM_MISSING_TARGET "State \"%s\" is not reachable.",
			         m->states[i].name);
		sl_free(sp);
	}
	if (!terminal && !v->target_missing)
		v_report(v, pointer, SM_MISSING_END "Workflow has no terminal state");
	sl_free(seen);
}

static const char *const machine_fields[]
        = { "StartAt", "States", "Comment", "Version", "TimeoutSeconds", "QueryLanguage", NULL };
static const char *const branch_fields[] = { "StartAt", "States", "Comment", NULL };

struct sm_machine *
v_machine(struct vctx *v, json_t *def, const char *pointer, bool top,
          const char *const *extra_allowed)
{
	if (!json_is_object(def)) {
		v_report(v, pointer, SM_SCHEMA "A state machine definition must be an OBJECT");
		return NULL;
	}
	if (++v->depth > 64) {
		v_report(v, pointer, SM_SCHEMA "State machines are nested more than 64 deep");
		v->depth--;
		return NULL;
	}
	struct sm_machine *m = SL_NEW(struct sm_machine);
	if (!m) {
		v->depth--;
		return v_nomem(v);
	}
	m->start = SM_NO_STATE;
	bool saved_broken = v->graph_broken, saved_missing = v->target_missing;
	v->graph_broken = v->target_missing = false;
	if (top) {
		const char *qls = NULL;
		bool has_ql = false;
		if (v_string(v, def, pointer, "QueryLanguage", &qls, &has_ql) && has_ql) {
			char *qp = v_ptr(v, pointer, "QueryLanguage");
			if (!strcmp(qls, "JSONata")) {
				if (qp)
					v_report(v, qp,
					         SM_SCHEMA
					         "QueryLanguage JSONata is not supported yet");
				sl_free(qp);
				v->depth--;
				v->graph_broken = saved_broken;
				v->target_missing = saved_missing;
				return m; /* everything below is JSONata: nothing more to say */
			}
			if (strcmp(qls, "JSONPath") != 0 && qp)
				v_report(v, qp,
				         SM_SCHEMA
				         "The value for the field 'QueryLanguage' must be one "
				         "of [JSONPath, JSONata]");
			sl_free(qp);
		}
		v_check_fields(v, def, pointer, machine_fields);
		v_int(v, def, pointer, "TimeoutSeconds", 1, 99999999, &m->timeout_seconds, NULL);
		v_strdup_field(v, def, pointer, "Version", &m->version);
	} else {
		/* a nested machine's fields: StartAt/States/Comment plus the caller's extras */
		const char *key;
		json_t *val;
		json_object_foreach(def, key, val)
		{
			bool ok = false;
			for (const char *const *a = branch_fields; *a && !ok; a++)
				ok = !strcmp(*a, key);
			for (const char *const *a = extra_allowed; a && *a && !ok; a++)
				ok = !strcmp(*a, key);
			if (!ok)
				v_report_field(v, pointer, key,
				               SM_SCHEMA "Field '%s' is not supported", key);
		}
	}
	if (!m->version && !(m->version = sl_strdup("1.0")))
		v_nomem(v);
	v_strdup_field(v, def, pointer, "Comment", &m->comment);

	json_t *start = v_require(v, def, pointer, "StartAt");
	json_t *states = v_require(v, def, pointer, "States");
	char *states_ptr = v_ptr(v, pointer, "States");
	if (!states_ptr) {
		v->depth--;
		v->graph_broken = saved_broken;
		v->target_missing = saved_missing;
		return m;
	}
	if (states && (!json_is_object(states) || json_object_size(states) == 0)) {
		v_report(v, states_ptr,
		         SM_SCHEMA "The value for the field 'States' must be a non-empty OBJECT");
		states = NULL;
	}
	struct vnames names = { 0 };
	if (states) {
		size_t n = json_object_size(states);
		m->states = sl_calloc(n, sizeof *m->states);
		names.names = sl_calloc(n, sizeof *names.names);
		if (!m->states || !names.names) {
			v_nomem(v);
		} else {
			const char *key;
			json_t *val;
			json_object_foreach(states, key, val)
			{
				if (!names.index)
					names.index = json_object();
				if (!names.index
				    || json_object_set_new(names.index, key,
				                           json_integer((json_int_t)names.n)))
					v_nomem(v);
				names.names[names.n++] = key;
				m->states[m->n_states].next = SM_NO_STATE;
				if (!(m->states[m->n_states++].name = sl_strdup(key)))
					v_nomem(v);
			}
		}
	}
	if (start && !json_is_string(start)) {
		char *sp = v_ptr(v, pointer, "StartAt");
		if (sp)
			v_report(v, sp,
			         SM_SCHEMA "The value for the field 'StartAt' must be a STRING");
		sl_free(sp);
	} else if (start && states && names.names) {
		m->start = v_target(v, &names, json_string_value(start), pointer, "StartAt");
	}
	for (size_t i = 0; i < names.n && v->fatal == SL_OK; i++) {
		const char *name = names.names[i];
		char *sp = v_ptr(v, states_ptr, name);
		if (!sp)
			break;
		if (utf8_len(name) == 0 || utf8_len(name) > SM_STATE_NAME_MAX)
			v_report(v, sp,
			         SM_SCHEMA "State name '%s' must be between 1 and %d characters "
			                   "long",
			         name, SM_STATE_NAME_MAX);
		if (json_object_get(v->all_names, name))
			v_report(v, sp, SM_DUPLICATE_NAME "Duplicate State name: %s", name);
		else if (json_object_set_new(v->all_names, name, json_true()) != 0)
			v_nomem(v);
		state(v, json_object_get(states, name), sp, &names, &m->states[i]);
		sl_free(sp);
	}
	graph_checks(v, m, pointer, states_ptr);
	v->graph_broken = saved_broken;
	v->target_missing = saved_missing;
	sl_free(names.names);
	json_decref(names.index);
	sl_free(states_ptr);
	v->depth--;
	return m;
}

sl_err
sm_machine_compile(json_t *definition, const struct sm_positions *pos, struct sm_machine **out,
                   struct sm_problems *problems)
{
	return sm_machine_compile_typed(definition, pos, SM_EXECUTION_STANDARD, out, problems);
}

sl_err
sm_machine_compile_typed(json_t *definition, const struct sm_positions *pos,
                         enum sm_execution_type type, struct sm_machine **out,
                         struct sm_problems *problems)
{
	*out = NULL;
	struct vctx v
	        = { .pos = pos, .problems = problems, .express = type == SM_EXECUTION_EXPRESS };
	if (!(v.all_names = json_object()))
		return SL_ERR_NOMEM;
	size_t before = problems->count + problems->dropped;
	struct sm_machine *m = v_machine(&v, definition, "", true, NULL);
	json_decref(v.all_names);
	if (v.fatal != SL_OK) {
		sm_machine_free(m);
		return v.fatal;
	}
	if (problems->count + problems->dropped != before || !m) {
		sm_machine_free(m);
		return SL_ERR_INVALID_DEFINITION;
	}
	*out = m;
	return SL_OK;
}

char *
sm_problems_aws_message(const struct sm_problems *problems)
{
	size_t cap = 64, len = 0;
	for (size_t i = 0; i < problems->count; i++)
		cap += strlen(problems->items[i].message) + strlen(problems->items[i].pointer) + 8;
	char *s = sl_malloc(cap);
	if (!s)
		return NULL;
	len += (size_t)snprintf(s, cap, "Invalid State Machine Definition: '");
	for (size_t i = 0; i < problems->count; i++) {
		const struct sm_problem *p = &problems->items[i];
		len += (size_t)snprintf(s + len, cap - len, "%s%s at %s", i ? ", " : "", p->message,
		                        *p->pointer ? p->pointer : "/");
	}
	snprintf(s + len, cap - len, "'");
	return s;
}
