/*
 * step_states.c - running a frame: entering states, each type's work, transitions, Retry
 * and Catch, and the end of frames and executions.
 */
#include <math.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "stepper/step_int.h"
#include "stepper/step_maprun.h"

/* AWS refuses waits whose end is more than about 2^31 seconds away. */
#define STEP_WAIT_MAX_SECONDS 2147483647LL

static const char *
type_word(enum sm_state_type t)
{
	return sm_state_type_name(t);
}

sl_err
step_frame_wake(struct step_ctx *c, struct step_frame *f)
{
	if (c->inline_frame == (int64_t)f->id)
		return SL_OK;
	return step_ready_push(c->eng, c->arn, f->id);
}

static sl_err
state_event(struct step_ctx *c, struct step_frame *f, const char *suffix, const char *key,
            json_t *payload)
{
	const struct sm_state *s = &f->m->states[f->st];
	char type[48];
	const char *w = type_word(s->type);
	size_t wl = strlen(w), sl = strlen(suffix);
	if (wl + sizeof "State" - 1 + sl >= sizeof type)
		return SL_ERR_INTERNAL;
	memcpy(type, w, wl);
	memcpy(type + wl, "State", sizeof "State" - 1);
	memcpy(type + wl + sizeof "State" - 1, suffix, sl + 1);
	return step_event_payload(c, f, type,
	                          strcmp(suffix, "Entered") == 0 ? "stateEnteredEventDetails"
	                                                         : "stateExitedEventDetails",
	                          key, payload, "name", s->name);
}

/* Events may hit the history limit: that ends the execution the way AWS does. */
static sl_err
history_full(struct step_ctx *c)
{
	return step_exec_close(c, STEP_FAILED, NULL, "States.Runtime",
	                       "The execution reached the maximum number of history events.");
}

sl_err
step_exec_close(struct step_ctx *c, enum step_status st, json_t *output, const char *error,
                const char *cause)
{
	json_t *d = NULL;
	const char *type = NULL, *key = NULL;
	switch (st) {
	case STEP_SUCCEEDED:
		type = "ExecutionSucceeded", key = "executionSucceededEventDetails";
		break;
	case STEP_FAILED: type = "ExecutionFailed", key = "executionFailedEventDetails"; break;
	case STEP_TIMED_OUT:
		type = "ExecutionTimedOut", key = "executionTimedOutEventDetails";
		break;
	case STEP_ABORTED: type = "ExecutionAborted", key = "executionAbortedEventDetails"; break;
	case STEP_RUNNING: return SL_ERR_INTERNAL;
	}
	if (st != STEP_SUCCEEDED) {
		d = json_object();
		if (d && error)
			json_object_set_new(d, "error", json_string(error));
		if (d && cause)
			json_object_set_new(d, "cause", json_string(cause));
	}
	if (st != STEP_SUCCEEDED && !d)
		return SL_ERR_NOMEM;
	// distributed Maps still running abort their child executions, their MapRunAborted
	// before the execution's end (the terminal event is the history's last)
	sl_err e = step_maprun_closing(c, st);
	if (e != SL_OK) {
		json_decref(d);
		return e;
	}
	e = st == STEP_SUCCEEDED
	        ? step_event_payload(c, NULL, type, key, "output", output, NULL, NULL)
	        : step_event(c, NULL, type, key, d);
	if (e == SL_ERR_LIMIT)
		e = SL_OK;
	if (e != SL_OK)
		return e;
	int64_t stop = sl_clock_now_ms();
	int bad = json_object_set_new(c->exec, "status", json_string(step_status_name(st)));
	bad |= json_object_set_new(c->exec, "stopMs", json_integer(stop));
	if (output)
		bad |= json_object_set(c->exec, "output", output);
	if (error)
		bad |= json_object_set_new(c->exec, "error", json_string(error));
	if (cause)
		bad |= json_object_set_new(c->exec, "cause", json_string(cause));
	c->exec_dirty = true;
	if (bad)
		return SL_ERR_NOMEM; // the activation is undone (step_act_end)
	c->closed = true;
	if ((e = step_closed_put(c, stop)) != SL_OK) // retention finds it by its stop time
		return e;
	if (st != STEP_SUCCEEDED && (e = step_redrive_keep(c, st)) != SL_OK)
		return e;
	// Drop every frame (and the tokens they wait on): stale timers then find nothing.
	struct store_key pk;
	store_key_init(&pk);
	store_key_str(&pk, c->arn);
	store_cursor_t *cur = NULL;
	if ((e = store_cursor_open(c->txn, STORE_DB_FRAMES, &cur)) != SL_OK)
		return e;
	struct store_val k, v;
	e = store_cursor_seek_prefix(cur, pk.buf, pk.len);
	while (e == SL_OK && (e = store_cursor_next(cur, &k, &v)) == SL_OK) {
		// only a frame waiting on a task has a token: parse just the records that may
		if (v.len > 1 && ((const char *)v.data)[0] == 'F'
		    && memmem(v.data, v.len, "\"tok\":", 6)) {
			json_error_t je;
			json_t *o = json_loadb((const char *)v.data + 1, v.len - 1, 0, &je);
			const char *tok = step_jstr(o, "tok");
			if (tok)
				e = store_del(c->txn, STORE_DB_TASK_TOKENS, tok, strlen(tok));
			json_decref(o);
			if (e != SL_OK)
				break;
		}
		e = store_cursor_del(cur);
	}
	store_cursor_close(cur);
	if (e != SL_ERR_NOT_FOUND)
		return e;
	if (c->fx && c->fx->finished) {
		struct step_finished fin = { .execution_arn = c->arn,
			                     .status = st,
			                     .output = output,
			                     .error = error,
			                     .cause = cause };
		c->fx->finished(c->fx->arg, &fin);
	}
	if (c->fx && c->fx->status) {
		struct step_status_change sc = {
			.execution_arn = c->arn,
			.state_machine_arn = step_jstr(c->exec, "stateMachineArn"),
			.name = step_jstr(c->exec, "name"),
			.status = st,
			.start_ms = step_jint(c->exec, "startMs", 0),
			.stop_ms = step_jint(c->exec, "stopMs", 0),
			.input = step_exec_input(c),
			.output = output,
			.error = error,
			.cause = cause,
		};
		c->fx->status(c->fx->arg, &sc);
	}
	e = step_builtin_child_closed(c, st, output, error, cause);
	return e == SL_OK ? step_maprun_child_closed(c, st, output, error, cause) : e;
}

sl_err
step_frame_succeed(struct step_ctx *c, struct step_frame *f, json_t *output)
{
	f->gone = true;
	if (f->parent < 0)
		return step_exec_close(c, STEP_SUCCEEDED, output, NULL, NULL);
	sl_err e = step_frame_delete(c, f);
	if (e != SL_OK)
		return e;
	struct step_frame *p = NULL;
	if ((e = step_frame_load(c, (uint32_t)f->parent, &p)) == SL_ERR_NOT_FOUND)
		return SL_OK;
	if (e != SL_OK)
		return e;
	e = step_fanout_child_done(c, p, f->pw, f->pidx, true, output, NULL);
	if (e == SL_OK && !p->gone && !c->closed)
		e = step_frame_save(c, p);
	step_frame_free(p);
	return e;
}

sl_err
step_frame_fail(struct step_ctx *c, struct step_frame *f, struct step_fault *ft)
{
	f->gone = true;
	if (f->parent < 0)
		c->failing_top = f;
	if (f->parent < 0)
		return step_exec_close(c, STEP_FAILED, NULL, ft->has_error ? ft->error : NULL,
		                       ft->has_cause ? ft->cause : NULL);
	sl_err e = step_frame_delete(c, f);
	if (e != SL_OK)
		return e;
	struct step_frame *p = NULL;
	if ((e = step_frame_load(c, (uint32_t)f->parent, &p)) == SL_ERR_NOT_FOUND)
		return SL_OK;
	if (e != SL_OK)
		return e;
	e = step_fanout_child_done(c, p, f->pw, f->pidx, false, NULL, ft);
	if (e == SL_OK && !p->gone && !c->closed)
		e = step_frame_save(c, p);
	step_frame_free(p);
	return e;
}

sl_err
step_state_next(struct step_ctx *c, struct step_frame *f, size_t next, json_t *output)
{
	if (step_payload_too_large(c, output)) {
		struct step_fault ft;
		step_fault_set(&ft, "States.DataLimitExceeded",
		               "The state/task '%s' returned a result with a size exceeding the "
		               "maximum number of bytes service limit.",
		               f->m->states[f->st].name);
		return step_frame_fail(c, f, &ft);
	}
	if (next == SM_NO_STATE)
		return step_frame_succeed(c, f, output);
	json_decref(f->in);
	f->in = json_incref(output);
	f->st = next;
	f->ph = PH_ENTER;
	json_decref(f->rc);
	f->rc = NULL;
	return step_frame_wake(c, f);
}

static json_t *
error_output(const struct step_fault *ft)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	if (ft->has_error)
		json_object_set_new(o, "Error", json_string(ft->error));
	if (ft->has_cause)
		json_object_set_new(o, "Cause", json_string(ft->cause));
	return o;
}

sl_err
step_state_error(struct step_ctx *c, struct step_frame *f, struct step_fault *ft)
{
	const struct sm_state *s = &f->m->states[f->st];
	bool is_task = s->type == SM_STATE_TASK;
	const char *err = ft->has_error ? ft->error : "";
	for (size_t i = 0; i < s->n_retry; i++) {
		const struct sm_retrier *r = &s->retry[i];
		if (!step_error_matches(&r->errors, err, is_task))
			continue;
		if (!f->rc) {
			f->rc = json_array();
			for (size_t j = 0; f->rc && j < s->n_retry; j++)
				json_array_append_new(f->rc, json_integer(0));
			if (!f->rc)
				return SL_ERR_NOMEM;
		}
		int64_t done = json_integer_value(json_array_get(f->rc, i));
		if (done >= r->max_attempts)
			break;
		json_array_set_new(f->rc, i, json_integer(done + 1));
		int64_t delay = step_retry_delay_ms(c->eng, r, done + 1);
		f->wk++;
		f->ph = PH_RETRY;
		return step_timer_arm(c, sl_clock_now_ms() + delay, TK_RETRY, f->id, f->wk, NULL);
	}
	for (size_t i = 0; i < s->n_catch; i++) {
		const struct sm_catcher *k = &s->catch_[i];
		if (!step_error_matches(&k->errors, err, is_task))
			continue;
		json_t *eo = error_output(ft);
		if (!eo)
			return SL_ERR_NOMEM;
		json_t *out = NULL;
		struct step_fault ft2;
		sl_err e = step_io_result(c, f, &k->result_path, f->in, eo, &out, &ft2);
		json_decref(eo);
		if (e == SL_ERR_INVALID_ARG)
			return step_frame_fail(c, f, &ft2);
		if (e != SL_OK)
			return e;
		// a caught state still exits, with the error output (recorded histories)
		e = state_event(c, f, "Exited", "output", out);
		if (e == SL_OK)
			e = step_state_next(c, f, k->next, out);
		else if (e == SL_ERR_LIMIT)
			e = history_full(c);
		json_decref(out);
		return e;
	}
	return step_frame_fail(c, f, ft);
}

sl_err
step_state_finish(struct step_ctx *c, struct step_frame *f, json_t *result)
{
	const struct sm_state *s = &f->m->states[f->st];
	struct step_fault ft;
	json_t *sel = NULL, *merged = NULL, *out = NULL;
	json_t *ctx = NULL;
	if (s->uses_context && !(ctx = step_context(c, f)))
		return SL_ERR_NOMEM;
	sl_err e;
	if (s->result_selector)
		e = step_io_template(c, f, s->result_selector, result, ctx, &sel, &ft);
	else
		sel = json_incref(result), e = SL_OK;
	if (e == SL_OK)
		e = step_io_result(c, f, &s->result_path, f->in, sel, &merged, &ft);
	if (e == SL_OK)
		e = step_io_input(c, f, &s->output_path, merged, ctx, &out, &ft);
	json_decref(ctx);
	json_decref(sel);
	json_decref(merged);
	if (e == SL_ERR_INVALID_ARG)
		return step_state_error(c, f, &ft);
	if (e == SL_OK)
		e = state_event(c, f, "Exited", "output", out);
	if (e == SL_OK)
		e = step_state_next(c, f, s->end ? SM_NO_STATE : s->next, out);
	else if (e == SL_ERR_LIMIT)
		e = history_full(c);
	json_decref(out);
	return e;
}

/* ---- Task ------------------------------------------------------------------------------ */

/* The family of history events: definitions recorded with placeholders in their ARNs
 * ("arn:<partition>:lambda:...:function:<name>") still name a function or an activity. */
static enum sm_resource_kind
task_kind(const struct sm_task *t)
{
	if (t->kind != SM_RESOURCE_OTHER || !t->resource)
		return t->kind;
	if (strncmp(t->resource, "arn:", 4) == 0 && strstr(t->resource, ":lambda:")
	    && strstr(t->resource, ":function:"))
		return SM_RESOURCE_LAMBDA;
	if (strncmp(t->resource, "arn:", 4) == 0 && strstr(t->resource, ":states:")
	    && strstr(t->resource, ":activity:"))
		return SM_RESOURCE_ACTIVITY;
	return t->kind;
}

static const char *
task_family(const struct sm_task *t)
{
	switch (task_kind(t)) {
	case SM_RESOURCE_LAMBDA: return "LambdaFunction";
	case SM_RESOURCE_ACTIVITY: return "Activity";
	default: return "Task";
	}
}

static sl_err
task_event(struct step_ctx *c, struct step_frame *f, const char *what, json_t *d)
{
	const struct sm_task *t = &f->m->states[f->st].u.task;
	char type[64], key[80];
	snprintf(type, sizeof type, "%s%s", task_family(t), what);
	snprintf(key, sizeof key, "%s%s", type, "EventDetails");
	key[0] = (char)(key[0] - 'A' + 'a');
	if (!d)
		d = json_object();
	if (!d)
		return SL_ERR_NOMEM;
	if (task_kind(t) != SM_RESOURCE_LAMBDA && task_kind(t) != SM_RESOURCE_ACTIVITY) {
		json_object_set_new(d, "resourceType", json_string(t->name ? t->name : "task"));
		json_object_set_new(d, "resource",
		                    json_string(t->action ? t->action : t->resource));
	}
	return step_event(c, f, type, key, d);
}

sl_err
step_task_event(struct step_ctx *c, struct step_frame *f, const char *what, json_t *d)
{
	return task_event(c, f, what, d);
}

/* TimeoutSecondsPath / HeartbeatSecondsPath: a positive integer. */
static sl_err
task_seconds(struct step_ctx *c, struct step_frame *f, struct sm_path *p, int64_t literal,
             const char *field, json_t *in, json_t *ctx, int64_t *out, struct step_fault *ft)
{
	(void)c;
	if (!p) {
		*out = literal;
		return SL_OK;
	}
	json_t *v = NULL;
	sl_err e = sm_path_get(p, in, ctx, &v);
	if (e == SL_ERR_NOMEM)
		return e;
	if (e != SL_OK || !json_is_integer(v) || json_integer_value(v) <= 0) {
		step_fault_runtime(ft, f, "States.Runtime",
		                   "The %s parameter must be a positive integer: %s", field,
		                   sm_path_text(p));
		json_decref(v);
		return SL_ERR_INVALID_ARG;
	}
	*out = json_integer_value(v);
	json_decref(v);
	return SL_OK;
}

static sl_err
task_schedule(struct step_ctx *c, struct step_frame *f, json_t *eff, json_t *ctx)
{
	const struct sm_state *s = &f->m->states[f->st];
	const struct sm_task *t = &s->u.task;
	struct step_fault ft;
	unsigned char raw[16];
	char tok[STEP_TOKEN_LEN + 1];
	sl_err e = sl_random_bytes(raw, sizeof raw);
	if (e != SL_OK)
		return e;
	sl_hex(raw, sizeof raw, tok);
	if (t->integration == SM_INTEGRATION_WAIT_FOR_TASK_TOKEN) {
		json_t *task = json_pack("{s:s}", "Token", tok);
		if (!task || json_object_set_new(ctx, "Task", task))
			return SL_ERR_NOMEM;
	}
	json_t *par = NULL;
	if (s->parameters)
		e = step_io_template(c, f, s->parameters, eff, ctx, &par, &ft);
	else
		par = json_incref(eff);
	int64_t timeout = 0, hb = 0;
	if (e == SL_OK)
		e = task_seconds(c, f, t->timeout_seconds_path, t->timeout_seconds,
		                 "TimeoutSecondsPath", eff, ctx, &timeout, &ft);
	if (e == SL_OK)
		e = task_seconds(c, f, t->heartbeat_seconds_path, t->heartbeat_seconds,
		                 "HeartbeatSecondsPath", eff, ctx, &hb, &ft);
	if (e == SL_OK && step_payload_too_large(c, par)) {
		step_fault_set(&ft, "States.DataLimitExceeded",
		               "The state/task '%s' has input with a size exceeding the maximum "
		               "number of bytes service limit.",
		               s->name);
		e = SL_ERR_INVALID_ARG;
	}
	if (e == SL_ERR_INVALID_ARG) {
		json_decref(par);
		return step_state_error(c, f, &ft);
	}
	if (e != SL_OK) {
		json_decref(par);
		return e;
	}
	int64_t now = sl_clock_now_ms();
	const char *queue = t->name ? t->name : t->resource;
	// everything a worker needs is kept: after a restart the tasks are handed out again
	json_t *rec
	        = json_pack("{s:s, s:I, s:I, s:s, s:I, s:I, s:s, s:O, s:s, s:i, s:s?, s:s?, "
	                    "s:i, s:I, s:I}",
	                    "arn", c->arn, "frame", (json_int_t)f->id, "wk",
	                    (json_int_t)(f->wk + 1), "queue", queue, "created", (json_int_t)now,
	                    "hbDue", (json_int_t)(hb > 0 ? now + hb * 1000 : 0), "state", s->name,
	                    "input", par, "resource", t->resource, "kind", (int)t->kind, "name",
	                    t->name, "action", t->action, "integration", (int)t->integration,
	                    "timeout", (json_int_t)timeout, "hb", (json_int_t)hb);
	struct store_key tk, qk;
	store_key_init(&tk);
	store_key_raw(&tk, tok, strlen(tok));
	store_key_init(&qk);
	store_key_str(&qk, queue);
	store_key_i64(&qk, now);
	store_key_raw(&qk, tok, strlen(tok));
	// built-in integrations are served here, never queued for workers
	bool builtin = step_builtin_task(c->eng, t);
	if (rec && builtin && json_object_set_new(rec, "builtin", json_true()))
		e = SL_ERR_NOMEM;
	else
		e = rec ? step_put_json(c->txn, STORE_DB_TASK_TOKENS, &tk, 'T', rec) : SL_ERR_NOMEM;
	json_decref(rec);
	if (e == SL_OK && !builtin)
		e = store_put(c->txn, STORE_DB_TASKS, qk.buf, qk.len, tok, strlen(tok));
	if (e != SL_OK) {
		json_decref(par);
		return e;
	}
	f->wk++;
	f->ph = PH_TASK;
	memcpy(f->tok, tok, sizeof tok);
	// scheduled and started at once: a worker takes it from the queue (workers issue)
	json_t *d;
	if (task_kind(t) == SM_RESOURCE_LAMBDA || task_kind(t) == SM_RESOURCE_ACTIVITY) {
		d = step_payload_details("input", par);
		if (d)
			json_object_set_new(d, "resource", json_string(t->resource));
	} else {
		d = json_pack("{s:s, s:O}", "region", "us-east-1", "parameters", par);
	}
	if (d) {
		json_object_set_new(d, "timeoutInSeconds", json_integer(timeout));
		if (hb > 0)
			json_object_set_new(d, "heartbeatInSeconds", json_integer(hb));
	}
	e = task_event(c, f, "Scheduled", d);
	// with leases, Started and the heartbeat clock wait for a worker (step_lease.c)
	bool leased = c->eng->opt.lease_tasks && !builtin
	        && t->integration != SM_INTEGRATION_WAIT_FOR_TASK_TOKEN;
	if (e == SL_OK && !leased)
		e = task_event(c, f, "Started", NULL);
	// the callback pattern: the request went out, now the token is awaited
	if (e == SL_OK && t->integration == SM_INTEGRATION_WAIT_FOR_TASK_TOKEN) {
		json_t *empty = json_object();
		e = empty ? task_event(c, f, "Submitted", step_payload_details("output", empty))
		          : SL_ERR_NOMEM;
		json_decref(empty);
	}
	if (e == SL_OK && timeout > 0 && timeout < SM_TASK_DEFAULT_TIMEOUT_SECONDS)
		e = step_timer_arm(c, now + timeout * 1000, TK_TASK_TIMEOUT, f->id, f->wk, tok);
	if (e == SL_OK && hb > 0 && !leased)
		e = step_timer_arm(c, now + hb * 1000, TK_HEARTBEAT, f->id, f->wk, tok);
	if (e == SL_OK && builtin) {
		e = step_builtin_run(c, f, tok, par);
	} else if (e == SL_OK && c->fx && c->fx->task) {
		struct step_task task = { .token = tok,
			                  .execution_arn = c->arn,
			                  .state_name = s->name,
			                  .kind = t->kind,
			                  .resource = t->resource,
			                  .name = t->name,
			                  .action = t->action,
			                  .integration = t->integration,
			                  .input = par,
			                  .timeout_seconds = timeout,
			                  .heartbeat_seconds = hb };
		c->fx->task(c->fx->arg, &task);
	}
	json_decref(par);
	return e;
}

sl_err
step_task_resolve(struct step_ctx *c, struct step_frame *f, bool ok, json_t *output,
                  const char *error, const char *cause)
{
	struct store_key tk;
	store_key_init(&tk);
	store_key_raw(&tk, f->tok, strlen(f->tok));
	json_t *rec = NULL;
	sl_err e = step_get_json(c->txn, STORE_DB_TASK_TOKENS, &tk, 'T', &rec);
	if (e == SL_OK) {
		struct store_key qk;
		store_key_init(&qk);
		store_key_str(&qk, step_jstr(rec, "queue"));
		store_key_i64(&qk, step_jint(rec, "created", 0));
		store_key_raw(&qk, f->tok, strlen(f->tok));
		e = store_del(c->txn, STORE_DB_TASKS, qk.buf, qk.len);
		json_decref(rec);
	} else if (e == SL_ERR_NOT_FOUND) {
		e = SL_OK;
	}
	if (e == SL_OK)
		e = store_del(c->txn, STORE_DB_TASK_TOKENS, tk.buf, tk.len);
	if (e != SL_OK)
		return e;
	f->tok[0] = 0;
	f->wk++;
	f->ph = PH_RERUN;
	if (ok) {
		if (step_payload_too_large(c, output)) {
			struct step_fault ft;
			step_fault_set(
			        &ft, "States.DataLimitExceeded",
			        "The state/task '%s' returned a result with a size exceeding "
			        "the maximum number of bytes service limit.",
			        f->m->states[f->st].name);
			return step_frame_fail(c, f, &ft);
		}
		e = task_event(c, f, "Succeeded", step_payload_details("output", output));
		if (e == SL_ERR_LIMIT)
			return history_full(c);
		return e == SL_OK ? step_state_finish(c, f, output) : e;
	}
	bool timeout = error
	        && (strcmp(error, "States.Timeout") == 0
	            || strcmp(error, "States.HeartbeatTimeout") == 0);
	json_t *d = json_object();
	if (d && error)
		json_object_set_new(d, "error", json_string(error));
	if (d && cause)
		json_object_set_new(d, "cause", json_string(cause));
	e = task_event(c, f, timeout ? "TimedOut" : "Failed", d);
	if (e == SL_ERR_LIMIT)
		return history_full(c);
	if (e != SL_OK)
		return e;
	struct step_fault ft;
	// a timeout carries an empty cause in the error output (recorded histories)
	if (!cause && timeout)
		cause = "";
	step_fault_set(&ft, error, cause ? "%s" : NULL, cause);
	ft.has_error = error != NULL;
	return step_state_error(c, f, &ft);
}

/* ---- Wait ------------------------------------------------------------------------------ */

static sl_err
wait_due(struct step_ctx *c, struct step_frame *f, json_t *eff, json_t *ctx, int64_t *due,
         struct step_fault *ft)
{
	const struct sm_wait *w = &f->m->states[f->st].u.wait;
	int64_t now = sl_clock_now_ms();
	if (w->has_seconds) {
		*due = now + w->seconds * 1000;
		return SL_OK;
	}
	if (w->has_timestamp) {
		if (w->timestamp.seconds - now / 1000 > STEP_WAIT_MAX_SECONDS)
			goto too_long;
		*due = w->timestamp.seconds * 1000 + w->timestamp.nanos / 1000000;
		return SL_OK;
	}
	struct sm_path *p = w->seconds_path ? w->seconds_path : w->timestamp_path;
	json_t *v = NULL;
	struct sm_fault sf = { 0 };
	sl_err e = sm_path_get_fault(p, eff, ctx, &v, &sf);
	if (e == SL_ERR_NOT_FOUND) {
		step_fault_runtime(ft, f, "States.Runtime", "%s", sf.cause);
		return SL_ERR_INVALID_ARG;
	}
	if (e != SL_OK)
		return e;
	char *vs = step_dumps(v);
	const char *shown = json_is_string(v) ? json_string_value(v) : vs ? vs : "?";
	if (w->seconds_path) {
		if (!json_is_integer(v)) {
			step_fault_runtime(
			        ft, f, "States.Runtime",
			        "The SecondsPath parameter cannot be parsed as a long value: "
			        "%s == %s",
			        sm_path_text(p), shown);
			e = SL_ERR_INVALID_ARG;
		} else if (json_integer_value(v) < 0) {
			step_fault_runtime(ft, f, "States.Runtime",
			                   "The SecondsPath parameter references a negative value: "
			                   "%s == %s",
			                   sm_path_text(p), shown);
			e = SL_ERR_INVALID_ARG;
		} else if (json_integer_value(v) > STEP_WAIT_MAX_SECONDS) {
			step_fault_runtime(ft, f, "States.Runtime",
			                   "Wait state delay is too long.");
			e = SL_ERR_INVALID_ARG;
		} else {
			*due = now + json_integer_value(v) * 1000;
		}
	} else {
		struct sm_time t;
		if (!json_is_string(v) || !sm_time_parse(json_string_value(v), &t)) {
			step_fault_runtime(
			        ft, f, "States.Runtime",
			        "The TimestampPath parameter does not reference a valid "
			        "ISO-8601 extended offset date-time format string: %s == %s",
			        sm_path_text(p), shown);
			e = SL_ERR_INVALID_ARG;
		} else if (t.seconds - now / 1000 > STEP_WAIT_MAX_SECONDS) {
			step_fault_runtime(ft, f, "States.Runtime",
			                   "Wait state delay is too long.");
			e = SL_ERR_INVALID_ARG;
		} else {
			*due = t.seconds * 1000 + t.nanos / 1000000;
		}
	}
	sl_free(vs);
	json_decref(v);
	return e;
too_long:
	step_fault_runtime(ft, f, "States.Runtime", "Wait state delay is too long.");
	return SL_ERR_INVALID_ARG;
}

/* ---- Fail ------------------------------------------------------------------------------ */

static sl_err
fail_text(struct step_ctx *c, struct step_frame *f, const struct sm_expr *x, json_t *ctx, char *out,
          size_t cap, bool *has, struct step_fault *ft)
{
	(void)c;
	json_t *v = NULL;
	sl_err e;
	if (x->path) {
		struct sm_fault sf = { 0 };
		e = sm_path_get_fault(x->path, f->in, ctx, &v, &sf);
		if (e == SL_ERR_NOT_FOUND) {
			step_fault_runtime(ft, f, "States.Runtime", "%s", sf.cause);
			return SL_ERR_INVALID_ARG;
		}
	} else {
		struct sm_fault sf = { 0 };
		e = sm_intrinsic_eval(x->fn, f->in, ctx, &v, &sf);
		if (e == SL_ERR_INVALID_ARG) {
			step_fault_set(ft, sf.error ? sf.error : "States.IntrinsicFailure", "%s",
			               sf.cause);
			return e;
		}
	}
	if (e != SL_OK)
		return e;
	if (!json_is_string(v)) {
		step_fault_runtime(ft, f, "States.Runtime",
		                   "The value of the ErrorPath/CausePath field must be a string");
		json_decref(v);
		return SL_ERR_INVALID_ARG;
	}
	snprintf(out, cap, "%s", json_string_value(v));
	*has = true;
	json_decref(v);
	return SL_OK;
}

static sl_err
run_fail(struct step_ctx *c, struct step_frame *f, json_t *ctx)
{
	const struct sm_fail *fl = &f->m->states[f->st].u.fail;
	struct step_fault ft = { 0 }, bad;
	sl_err e = SL_OK;
	if (fl->error) {
		snprintf(ft.error, sizeof ft.error, "%s", fl->error);
		ft.has_error = true;
	} else if (fl->error_path.path || fl->error_path.fn) {
		e = fail_text(c, f, &fl->error_path, ctx, ft.error, sizeof ft.error, &ft.has_error,
		              &bad);
	}
	if (e == SL_OK && fl->cause) {
		snprintf(ft.cause, sizeof ft.cause, "%s", fl->cause);
		ft.has_cause = true;
	} else if (e == SL_OK && (fl->cause_path.path || fl->cause_path.fn)) {
		e = fail_text(c, f, &fl->cause_path, ctx, ft.cause, sizeof ft.cause, &ft.has_cause,
		              &bad);
	}
	if (e == SL_ERR_INVALID_ARG)
		return step_frame_fail(c, f, &bad);
	if (e != SL_OK)
		return e;
	return step_frame_fail(c, f, &ft);
}

/* ---- the state machine of a frame ------------------------------------------------------- */

static sl_err
run_state(struct step_ctx *c, struct step_frame *f)
{
	const struct sm_state *s = &f->m->states[f->st];
	sl_err e;
	bool entering = f->ph == PH_ENTER;
	if (entering) {
		f->entered_ms = sl_clock_now_ms();
		json_decref(f->rc);
		f->rc = NULL;
		e = state_event(c, f, "Entered", "input", f->in);
		if (e == SL_ERR_LIMIT)
			return history_full(c);
		if (e != SL_OK)
			return e;
		f->entered_event = f->prev;
		f->ph = PH_RERUN;
	}
	// $$ is built only for states that can read it (a flag set when compiled)
	json_t *ctx = NULL;
	if (s->uses_context && !(ctx = step_context(c, f)))
		return SL_ERR_NOMEM;
	struct step_fault ft;
	json_t *eff = NULL, *tmp = NULL, *out = NULL;
	if (s->type == SM_STATE_FAIL) {
		e = run_fail(c, f, ctx);
		json_decref(ctx);
		return e;
	}
	e = step_io_input(c, f, &s->input_path, f->in, ctx, &eff, &ft);
	if (e != SL_OK)
		goto out;
	size_t next = s->end ? SM_NO_STATE : s->next;
	switch (s->type) {
	case SM_STATE_PASS: {
		json_t *res;
		if (s->result) {
			res = json_incref(s->result);
		} else if (s->parameters) {
			if ((e = step_io_template(c, f, s->parameters, eff, ctx, &res, &ft))
			    != SL_OK)
				goto out;
		} else {
			res = json_incref(eff);
		}
		e = step_io_result(c, f, &s->result_path, f->in, res, &tmp, &ft);
		json_decref(res);
		if (e == SL_OK)
			e = step_io_input(c, f, &s->output_path, tmp, ctx, &out, &ft);
		break;
	}
	case SM_STATE_SUCCEED:
		e = step_io_input(c, f, &s->output_path, eff, ctx, &out, &ft);
		next = SM_NO_STATE;
		break;
	case SM_STATE_CHOICE:
		if ((e = step_choice_eval(f, eff, ctx, &next, &ft)) != SL_OK)
			goto out;
		if (next == SM_NO_STATE) {
			step_fault_set(&ft, "States.NoChoiceMatched", "No Matches!");
			e = SL_ERR_INVALID_ARG;
			goto out;
		}
		e = step_io_input(c, f, &s->output_path, eff, ctx, &out, &ft);
		break;
	case SM_STATE_WAIT:
		if (entering) {
			int64_t due = 0;
			if ((e = wait_due(c, f, eff, ctx, &due, &ft)) != SL_OK)
				goto out;
			if (due > sl_clock_now_ms()) {
				f->wk++;
				f->ph = PH_WAIT;
				e = step_timer_arm(c, due, TK_WAIT, f->id, f->wk, NULL);
				goto out;
			}
		}
		e = step_io_input(c, f, &s->output_path, eff, ctx, &out, &ft);
		break;
	case SM_STATE_TASK: e = task_schedule(c, f, eff, ctx); goto out_done;
	case SM_STATE_PARALLEL:
	case SM_STATE_MAP: e = step_fanout_start(c, f, eff, ctx); goto out_done;
	case SM_STATE_FAIL: break;
	}
	if (e != SL_OK)
		goto out;
	e = state_event(c, f, "Exited", "output", out);
	if (e == SL_OK)
		e = step_state_next(c, f, next, out);
	else if (e == SL_ERR_LIMIT)
		e = history_full(c);
	goto out_done;
out:
	if (e == SL_ERR_INVALID_ARG)
		e = step_state_error(c, f, &ft);
out_done:
	json_decref(ctx);
	json_decref(eff);
	json_decref(tmp);
	json_decref(out);
	return e;
}

sl_err
step_frame_run(struct step_ctx *c, uint32_t id, unsigned *budget)
{
	struct step_frame *f = NULL;
	sl_err e = step_frame_load(c, id, &f);
	if (e == SL_ERR_NOT_FOUND)
		return SL_OK;
	if (e != SL_OK)
		return e;
	c->inline_frame = id;
	while (e == SL_OK && !f->gone && !c->closed && (f->ph == PH_ENTER || f->ph == PH_RERUN)) {
		if (*budget == 0) {
			e = step_ready_push(c->eng, c->arn, id);
			break;
		}
		(*budget)--;
		e = run_state(c, f);
	}
	c->inline_frame = -1;
	if (e == SL_OK && !f->gone && !c->closed)
		e = step_frame_save(c, f);
	step_frame_free(f);
	return e;
}
