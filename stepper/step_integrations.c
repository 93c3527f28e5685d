/*
 * step_integrations.c - task resources the engine serves itself:
 * arn:aws:states:::states:startExecution (request-response, .sync, .sync:2) starts a child
 * execution in the same batch; with .sync the child's end answers the parent's token. A
 * request-response start goes to the caller's hook first (step_engine_set_start_child: the
 * server runs EXPRESS children on its express engine).
 * arn:aws:states:::events:putEvents (request-response and .waitForTaskToken) publishes in the
 * same batch through the bus the server attached (step_engine_set_put_events); without one it
 * goes out through the task effect like every other resource (the workers serve those).
 */
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "stepper/step_int.h"

static bool
is_service(const struct sm_task *t, const char *name, const char *action)
{
	return t->kind == SM_RESOURCE_SERVICE && t->name && strcmp(t->name, name) == 0 && t->action
	        && strcmp(t->action, action) == 0;
}

bool
step_builtin_task(const step_engine_t *eng, const struct sm_task *t)
{
	return is_service(t, "states", "startExecution")
	        || (eng->put_events && is_service(t, "events", "putEvents")
	            && (t->integration == SM_INTEGRATION_REQUEST_RESPONSE
	                || t->integration == SM_INTEGRATION_WAIT_FOR_TASK_TOKEN));
}

/* "arn:...:stateMachine:NAME[:version|alias]" or a bare NAME. */
static bool
machine_name(const char *arn, char *out, size_t cap)
{
	const char *p = strstr(arn, ":stateMachine:");
	if (p)
		p += strlen(":stateMachine:");
	else if (strncmp(arn, "arn:", 4) == 0)
		return false;
	else
		p = arn;
	size_t n = strcspn(p, ":");
	if (n == 0 || n >= cap)
		return false;
	memcpy(out, p, n);
	out[n] = 0;
	return true;
}

static sl_err
fail_task(struct step_ctx *c, struct step_frame *f, const char *error, const char *cause)
{
	return step_task_resolve(c, f, false, NULL, error, cause);
}

/* The entries as EventBridge takes them: Detail as JSON text, and the execution's and its
 * machine's ARNs appended to Resources, as the service integration does. */
static sl_err
put_events_entries(struct step_ctx *c, json_t *params, json_t **out, const char **problem)
{
	json_t *in = json_object_get(params, "Entries");
	*out = NULL;
	if (!json_is_array(in) || json_array_size(in) == 0) {
		*problem = "the parameter 'Entries' must be a non-empty list";
		return SL_OK;
	}
	json_t *entries = json_array();
	if (!entries)
		return SL_ERR_NOMEM;
	const char *arns[2] = { c->arn, step_jstr(c->exec, "stateMachineArn") };
	for (size_t i = 0; i < json_array_size(in); i++) {
		json_t *e = json_array_get(in, i);
		if (!json_is_object(e)) {
			json_decref(entries);
			*problem = "every entry of 'Entries' must be an object";
			return SL_OK;
		}
		json_t *copy = json_copy(e), *detail = json_object_get(e, "Detail");
		json_t *res = json_object_get(e, "Resources");
		json_t *nres = json_is_array(res) ? json_copy(res) : json_array();
		if (!copy || !nres || json_array_append_new(entries, copy)) {
			json_decref(nres);
			json_decref(entries);
			return SL_ERR_NOMEM;
		}
		if (detail && !json_is_string(detail)) {
			char *text = step_dumps(detail);
			if (!text || json_object_set_new(copy, "Detail", json_string(text))) {
				sl_free(text);
				json_decref(nres);
				json_decref(entries);
				return SL_ERR_NOMEM;
			}
			sl_free(text);
		}
		for (int k = 0; k < 2; k++)
			if (arns[k] && json_array_append_new(nres, json_string(arns[k]))) {
				json_decref(nres);
				json_decref(entries);
				return SL_ERR_NOMEM;
			}
		if (json_object_set_new(copy, "Resources", nres)) {
			json_decref(entries);
			return SL_ERR_NOMEM;
		}
	}
	*out = entries;
	return SL_OK;
}

static sl_err
put_events_run(struct step_ctx *c, struct step_frame *f, json_t *params)
{
	const struct sm_task *t = &f->m->states[f->st].u.task;
	const char *problem = NULL;
	json_t *entries = NULL;
	sl_err e = put_events_entries(c, params, &entries, &problem);
	if (e != SL_OK)
		return e;
	if (problem)
		return fail_task(c, f, "EventBridge.ValidationException", problem);
	json_t *answer = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	e = c->eng->put_events(c->eng->put_events_arg, c->txn, entries, &answer, &err);
	json_decref(entries);
	if (e == SL_ERR_NOMEM || e == SL_ERR_STORE)
		return e;
	if (e != SL_OK) {
		char error[128];
		snprintf(error, sizeof error, "EventBridge.%s", sl_err_aws_type(e));
		return fail_task(c, f, error, sl_error_text(&err));
	}
	if (json_integer_value(json_object_get(answer, "FailedEntryCount")) > 0) {
		char *text = step_dumps(answer);
		json_decref(answer);
		e = text ? fail_task(c, f, "EventBridge.FailedEntry", text) : SL_ERR_NOMEM;
		sl_free(text);
		return e;
	}
	// the callback pattern: the events went out, now the token is awaited
	if (t->integration == SM_INTEGRATION_WAIT_FOR_TASK_TOKEN) {
		json_decref(answer);
		return SL_OK;
	}
	e = step_task_resolve(c, f, true, answer, NULL, NULL);
	json_decref(answer);
	return e;
}

sl_err
step_builtin_run(struct step_ctx *c, struct step_frame *f, const char *token, json_t *params)
{
	const struct sm_task *t = &f->m->states[f->st].u.task;
	if (is_service(t, "events", "putEvents"))
		return put_events_run(c, f, params);
	const char *smarn = json_string_value(json_object_get(params, "StateMachineArn"));
	char name[96];
	if (!smarn || !machine_name(smarn, name, sizeof name))
		return fail_task(c, f, "StepFunctions.InvalidArnException",
		                 "Invalid Arn: the parameter 'StateMachineArn' must name a state "
		                 "machine");
	json_t *in = json_object_get(params, "Input");
	json_t *parsed = NULL;
	if (json_is_string(in)) {
		// a JSON text is taken as the document it encodes, as the service does
		json_error_t je;
		parsed = json_loads(json_string_value(in), JSON_DECODE_ANY, &je);
		if (!parsed)
			return fail_task(c, f, "StepFunctions.InvalidExecutionInputException",
			                 "Invalid execution input: Input is not valid JSON text");
		in = parsed;
	}
	json_t *nm = json_object_get(params, "Name");
	if (nm && !json_is_string(nm)) {
		json_decref(parsed);
		return fail_task(c, f, "StepFunctions.InvalidNameException",
		                 "Invalid Name: the parameter 'Name' must be a string");
	}
	struct step_start req = { .machine = name, .name = json_string_value(nm), .input = in };
	bool wait = t->integration == SM_INTEGRATION_SYNC || t->integration == SM_INTEGRATION_SYNC2;
	char arn[STEP_ARN_MAX];
	struct sl_error err;
	sl_error_clear(&err);
	int64_t now = sl_clock_now_ms();
	bool taken = false;
	sl_err e = SL_OK;
	// the caller may run the machine elsewhere (EXPRESS ones) and answer token itself
	if (c->eng->start_child)
		e = c->eng->start_child(c->eng->start_child_arg, c->txn, &req, wait ? token : NULL,
		                        wait ? (t->integration == SM_INTEGRATION_SYNC2 ? 2 : 1) : 0,
		                        arn, &taken, &err);
	if (e == SL_OK && !taken)
		e = step_start_txn(c->eng, c->txn, &req, wait ? token : NULL, (int)t->integration,
		                   arn, c->fx, &err);
	json_decref(parsed);
	if (e == SL_ERR_NOMEM || e == SL_ERR_STORE)
		return e;
	if (e != SL_OK) {
		char error[128];
		snprintf(error, sizeof error, "StepFunctions.%sException", sl_err_aws_type(e));
		return fail_task(c, f, error, sl_error_text(&err));
	}
	if (wait)
		return SL_OK;
	json_t *out = json_pack("{s:s, s:I}", "ExecutionArn", arn, "StartDate", (json_int_t)now);
	if (!out)
		return SL_ERR_NOMEM;
	e = step_task_resolve(c, f, true, out, NULL, NULL);
	json_decref(out);
	return e;
}

json_t *
step_child_result(const char *exec_arn, const char *machine_arn, const char *name,
                  enum step_status st, int64_t start_ms, int64_t stop_ms, json_t *in,
                  json_t *output, const char *error, const char *cause, int mode)
{
	bool v2 = mode == 2;
	json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "ExecutionArn", exec_arn,
	                      "StateMachineArn", machine_arn, "Name", name, "Status",
	                      step_status_name(st), "StartDate", (json_int_t)start_ms, "StopDate",
	                      (json_int_t)stop_ms);
	if (!d)
		return NULL;
	// .sync:2 hands over the documents, .sync their JSON text
	json_t *docs[2] = { in ? in : json_null(), output };
	const char *keys[2] = { "Input", "Output" };
	for (int i = 0; i < 2; i++) {
		if (!docs[i])
			continue;
		if (v2) {
			json_object_set(d, keys[i], docs[i]);
		} else {
			char *s = step_dumps(docs[i]);
			json_object_set_new(d, keys[i], s ? json_string(s) : json_null());
			sl_free(s);
		}
		char dk[32];
		snprintf(dk, sizeof dk, "%sDetails", keys[i]);
		json_object_set_new(d, dk, json_pack("{s:b}", "Included", 1));
	}
	if (st != STEP_SUCCEEDED) {
		if (error)
			json_object_set_new(d, "Error", json_string(error));
		if (cause)
			json_object_set_new(d, "Cause", json_string(cause));
	}
	return d;
}

sl_err
step_builtin_child_closed(struct step_ctx *c, enum step_status st, json_t *output,
                          const char *error, const char *cause)
{
	const char *tok = step_jstr(c->exec, "parentToken");
	if (!tok)
		return SL_OK;
	const char *ea = step_jstr(c->exec, "executionArn"),
	           *ma = step_jstr(c->exec, "stateMachineArn"), *nm = step_jstr(c->exec, "name");
	json_t *d = step_child_result(
	        ea ? ea : "", ma ? ma : "", nm ? nm : "", st, step_jint(c->exec, "startMs", 0),
	        sl_clock_now_ms(), step_exec_input(c), output, error, cause,
	        step_jint(c->exec, "parentMode", 0) == SM_INTEGRATION_SYNC2 ? 2 : 1);
	if (!d)
		return SL_ERR_NOMEM;
	sl_err e;
	struct sl_error err;
	sl_error_clear(&err);
	if (st == STEP_SUCCEEDED) {
		e = step_task_answer_txn(c->eng, c->txn, tok, true, d, NULL, NULL, c->fx, &err);
	} else {
		char *text = step_dumps(d);
		e = text ? step_task_answer_txn(c->eng, c->txn, tok, false, NULL,
		                                "States.TaskFailed", text, c->fx, &err)
		         : SL_ERR_NOMEM;
		sl_free(text);
	}
	json_decref(d);
	// the parent may have ended meanwhile (stopped, timed out): nobody waits any more
	return e == SL_ERR_TASK_NOT_FOUND || e == SL_ERR_EXEC_NOT_FOUND ? SL_OK : e;
}
