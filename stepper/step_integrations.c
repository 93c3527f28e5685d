/*
 * step_integrations.c - task resources the engine serves itself:
 * arn:aws:states:::states:startExecution (request-response, .sync, .sync:2) starts a child
 * execution in the same batch; with .sync the child's end answers the parent's token.
 * events:putEvents and every other resource go out through the task effect (the bus and
 * the workers fill them).
 */
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "stepper/step_int.h"

bool
step_builtin_task(const struct sm_task *t)
{
	return t->kind == SM_RESOURCE_SERVICE && t->name && strcmp(t->name, "states") == 0
	        && t->action && strcmp(t->action, "startExecution") == 0;
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

sl_err
step_builtin_run(struct step_ctx *c, struct step_frame *f, const char *token, json_t *params)
{
	const struct sm_task *t = &f->m->states[f->st].u.task;
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
	sl_err e = step_start_txn(c->eng, c->txn, &req, wait ? token : NULL, (int)t->integration,
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

sl_err
step_builtin_child_closed(struct step_ctx *c, enum step_status st, json_t *output,
                          const char *error, const char *cause)
{
	const char *tok = step_jstr(c->exec, "parentToken");
	if (!tok)
		return SL_OK;
	bool v2 = step_jint(c->exec, "parentMode", 0) == SM_INTEGRATION_SYNC2;
	json_t *in = step_exec_input(c);
	json_t *d = json_pack("{s:O, s:O, s:O, s:s, s:I, s:I}", "ExecutionArn",
	                      json_object_get(c->exec, "executionArn"), "StateMachineArn",
	                      json_object_get(c->exec, "stateMachineArn"), "Name",
	                      json_object_get(c->exec, "name"), "Status", step_status_name(st),
	                      "StartDate", (json_int_t)step_jint(c->exec, "startMs", 0), "StopDate",
	                      (json_int_t)sl_clock_now_ms());
	if (!d)
		return SL_ERR_NOMEM;
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
	sl_err e;
	struct sl_error err;
	sl_error_clear(&err);
	if (st == STEP_SUCCEEDED) {
		e = step_task_answer_txn(c->eng, c->txn, tok, true, d, NULL, NULL, c->fx, &err);
	} else {
		if (error)
			json_object_set_new(d, "Error", json_string(error));
		if (cause)
			json_object_set_new(d, "Cause", json_string(cause));
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
