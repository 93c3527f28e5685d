/*
 * step_redrive.c - RedriveExecution: an execution that ended FAILED, TIMED_OUT or ABORTED
 * starts again at the top-level state that did not finish, with that state's input.
 *
 * What is kept: when an execution closes unsuccessfully, step_exec_close still deletes its
 * frames (so stale timers and tokens find nothing and closed executions cost nothing at
 * recovery); step_redrive_keep first copies the top frame's state index and raw input into
 * the execution record ("rdSt", "rdIn"). That is one state input (at most payload_limit
 * bytes) per unsuccessful execution, dropped again when it is redriven.
 *
 * Difference from AWS: a Map or Parallel state at the top level is run again as a whole
 * (its succeeded iterations/branches too, since their results went with the frames); AWS
 * reruns only the iterations and branches that failed or were aborted.
 */
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "stepper/step_int.h"
#include "stepper/step_maprun.h"

#define REDRIVE_PERIOD_MS (14LL * 24 * 3600 * 1000)
#define MAX_EXECUTION_MS  (365LL * 24 * 3600 * 1000) /* a STANDARD execution runs a year */

/* Deletes the results an earlier close kept (executions: arn, "K", index). */
static sl_err
drop_kept(struct step_ctx *c)
{
	struct store_key pk;
	step_key_exec(&pk, c->arn);
	store_key_raw(&pk, "K", 1);
	return store_del_prefix(c->txn, STORE_DB_EXECUTIONS, pk.buf, pk.len);
}

/* The top frame f ends unsuccessfully inside a Map or Parallel: the results of the children
 * that succeeded are copied out of the frames (which the close deletes) to the execution's
 * "K" records, so that a redrive re-runs only the failed and aborted ones; a distributed
 * Map's run is remembered to be redriven. At most one fan-out's results per execution. */
static sl_err
keep_fanout(struct step_ctx *c, struct step_frame *f)
{
	if (json_object_get(c->exec, "rdFan"))
		return SL_OK; // a redrive that failed again before its fan-out: keep what was kept
	sl_err e = drop_kept(c);
	enum sm_state_type t = f->m->states[f->st].type;
	if (e != SL_OK || (t != SM_STATE_MAP && t != SM_STATE_PARALLEL))
		return e;
	struct store_key pk;
	step_key_frame(&pk, c->arn, f->id);
	store_key_raw(&pk, "R", 1);
	store_cursor_t *cur = NULL;
	if ((e = store_cursor_open(c->txn, STORE_DB_FRAMES, &cur)) != SL_OK)
		return e;
	uint32_t kept = 0;
	struct store_val k, v;
	e = store_cursor_seek_prefix(cur, pk.buf, pk.len);
	while (e == SL_OK && (e = store_cursor_next(cur, &k, &v)) == SL_OK) {
		if (v.len < 1 || ((const char *)v.data)[0] != 'R' || k.len != pk.len + 4)
			continue; // failed children ('X') run again
		struct store_key kk;
		step_key_exec(&kk, c->arn);
		store_key_raw(&kk, "K", 1);
		store_key_raw(&kk, (const char *)k.data + pk.len, 4);
		e = store_put(c->txn, STORE_DB_EXECUTIONS, kk.buf, kk.len, v.data, v.len);
		kept++;
	}
	store_cursor_close(cur);
	if (e != SL_ERR_NOT_FOUND)
		return e;
	char mr[STEP_ARN_MAX] = "";
	if (t == SM_STATE_MAP && (e = step_maprun_arn(c, f->id, mr)) != SL_OK)
		return e;
	if (!kept && !mr[0])
		return SL_OK;
	json_t *fan = json_pack("{s:I, s:i}", "st", (json_int_t)f->st, "n", (int)kept);
	if (!fan || (mr[0] && json_object_set_new(fan, "mr", json_string(mr)))
	    || json_object_set_new(c->exec, "rdFan", fan))
		return SL_ERR_NOMEM;
	return SL_OK;
}

sl_err
step_redrive_keep(struct step_ctx *c, enum step_status st)
{
	(void)st;
	struct step_frame *f = c->failing_top, *loaded = NULL;
	sl_err e = SL_OK;
	if (!f && !c->top)
		return SL_OK; // the machine is gone: nothing could run it again
	if (!f) {
		// TIMED_OUT, ABORTED: the top frame as last committed (it was waiting)
		e = step_frame_load(c, (uint32_t)step_jint(c->exec, "topFrame", 1), &loaded);
		if (e == SL_ERR_NOT_FOUND)
			return SL_OK; // nothing to restart from: not redrivable
		if (e != SL_OK)
			return e;
		f = loaded;
	}
	if ((e = step_frame_in(c, f)) == SL_OK && f->in) {
		if (json_object_set_new(c->exec, "rdSt", json_integer((json_int_t)f->st))
		    || json_object_set(c->exec, "rdIn", f->in))
			e = SL_ERR_NOMEM;
	}
	if (e == SL_OK)
		e = keep_fanout(c, f);
	step_frame_free(loaded);
	return e;
}

/* NULL when the execution record x can be redriven now, else AWS's reason. */
static const char *
not_redrivable(step_engine_t *eng, json_t *x, int64_t now, bool map_child)
{
	const char *status = step_jstr(x, "status");
	if (!status || strcmp(status, "RUNNING") == 0)
		return "Execution is RUNNING and cannot be redriven.";
	if (strcmp(status, "SUCCEEDED") == 0)
		return "Execution is SUCCEEDED and cannot be redriven.";
	// the last slot is ExecutionFailed's: no room for ExecutionRedriven and what follows
	if ((size_t)step_jint(x, "nextEvent", 1) > eng->opt.history_limit)
		return "Execution history event limit exceeded.";
	if (now - step_jint(x, "startMs", now) > MAX_EXECUTION_MS)
		return "Execution has exceeded the max execution time.";
	if (now - step_jint(x, "stopMs", now) > REDRIVE_PERIOD_MS)
		return "Execution redrivable period exceeded.";
	if (json_object_get(x, "mapRun") && !map_child)
		return "Execution is a child of a Map Run: redrive the execution that started it.";
	if (!json_is_integer(json_object_get(x, "rdSt")) || !json_object_get(x, "rdIn"))
		return "Execution has no state to restart from.";
	return NULL;
}

sl_err
step_redrive(step_engine_t *eng, store_batch_t *b, const char *arn, const char *client_token,
             int64_t *date_ms, const struct step_effects *fx, struct sl_error *err)
{
	// all or nothing; a failure is returned and the execution stays closed
	struct step_act a;
	sl_err e = step_act_begin(eng, b, fx, &a);
	if (e != SL_OK)
		return sl_error_set(err, e, "cannot redrive: the store refuses writes");
	e = step_redrive_txn(eng, store_batch_txn(b), arn, client_token, false, date_ms, &a.fx,
	                     err);
	return step_act_end(&a, e);
}

sl_err
step_redrive_txn(step_engine_t *eng, store_txn_t *txn, const char *arn, const char *client_token,
                 bool map_child, int64_t *date_ms, const struct step_effects *fx,
                 struct sl_error *err)
{
	struct step_ctx c = { .eng = eng, .txn = txn, .fx = fx, .err = err, .inline_frame = -1 };
	struct step_frame *f = NULL;
	sl_err e = step_exec_load(&c, arn);
	if (e != SL_OK)
		goto out;
	int64_t now = sl_clock_now_ms();
	const char *last_tok = step_jstr(c.exec, "rdTok");
	if (client_token && last_tok && strcmp(client_token, last_tok) == 0) {
		// the same request again: answer what the first one did
		if (date_ms)
			*date_ms = step_jint(c.exec, "redriveMs", now);
		goto out;
	}
	const char *why = not_redrivable(eng, c.exec, now, map_child);
	if (why) {
		e = sl_error_set(err, SL_ERR_EXEC_NOT_REDRIVABLE, "%s", why);
		goto out;
	}
	if (!c.top) {
		e = sl_error_set(err, SL_ERR_EXEC_NOT_REDRIVABLE,
		                 "State machine of '%s' does not exist any more.", c.arn);
		goto out;
	}
	size_t st = (size_t)json_integer_value(json_object_get(c.exec, "rdSt"));
	if (st >= c.top->n_states) {
		e = sl_error_set(err, SL_ERR_EXEC_NOT_REDRIVABLE,
		                 "the state to restart from does not fit the state machine");
		goto out;
	}
	int64_t count = step_jint(c.exec, "redriveCount", 0) + 1;
	if (!(f = step_frame_new())) {
		e = SL_ERR_NOMEM;
		goto out;
	}
	f->mp = json_array();
	f->m = c.top;
	f->st = st;
	f->in = json_incref(json_object_get(c.exec, "rdIn"));
	f->ph = PH_ENTER;
	json_t *x = c.exec;
	int bad = !f->mp;
	bad |= json_object_set_new(x, "status", json_string("RUNNING"));
	bad |= json_object_set_new(x, "redriveCount", json_integer(count));
	bad |= json_object_set_new(x, "redriveMs", json_integer(now));
	if (client_token)
		bad |= json_object_set_new(x, "rdTok", json_string(client_token));
	else
		json_object_del(x, "rdTok");
	static const char *const drop[] = { "stopMs", "output", "error", "cause", "rdSt" };
	for (size_t i = 0; i < sizeof drop / sizeof *drop; i++)
		json_object_del(x, drop[i]);
	if (bad) {
		e = SL_ERR_NOMEM;
		goto out;
	}
	c.exec_dirty = true;
	// a fresh frame id: timers and tokens of the old frames stay stale
	f->id = step_next_frame_id(&c);
	json_object_set_new(x, "topFrame", json_integer(f->id));
	json_t *d = json_pack("{s:I}", "redriveCount", (json_int_t)count);
	if (!d) {
		e = SL_ERR_NOMEM;
		goto out;
	}
	e = step_event(&c, NULL, "ExecutionRedriven", "executionRedrivenEventDetails", d);
	if (e == SL_ERR_LIMIT)
		e = sl_error_set(err, SL_ERR_EXEC_NOT_REDRIVABLE,
		                 "Execution history event limit exceeded.");
	if (e != SL_OK)
		goto out;
	json_object_del(x, "rdIn");
	f->prev = (uint64_t)step_jint(x, "lastEvent", 0);
	if ((e = step_frame_save(&c, f)) != SL_OK)
		goto out;
	// the execution timeout counts again from the redrive; older timers carry a lower count
	if (c.top->timeout_seconds > 0
	    && (e = step_timer_arm(&c, now + c.top->timeout_seconds * 1000, TK_EXEC_TIMEOUT, 0,
	                           (uint64_t)count, NULL))
	            != SL_OK)
		goto out;
	if ((e = step_exec_save(&c)) != SL_OK)
		goto out;
	if ((e = step_ready_push(eng, c.arn, f->id)) != SL_OK)
		goto out;
	if (fx && fx->status) {
		struct step_status_change sc
		        = { .execution_arn = c.arn,
			    .state_machine_arn = step_jstr(x, "stateMachineArn"),
			    .name = step_jstr(x, "name"),
			    .status = STEP_RUNNING,
			    .start_ms = step_jint(x, "startMs", 0),
			    .input = step_exec_input(&c) };
		fx->status(fx->arg, &sc);
	}
	if (date_ms)
		*date_ms = now;
out:
	step_frame_free(f);
	step_ctx_done(&c);
	if (e != SL_OK && err && err->code == SL_OK)
		sl_error_set(err, e, "redriving '%s' failed", arn);
	return e;
}

sl_err
step_redrive_describe(step_engine_t *eng, store_txn_t *txn, const char *arn, json_t *d,
                      struct sl_error *err)
{
	struct step_ctx c = { .eng = eng, .txn = txn, .err = err, .inline_frame = -1 };
	sl_err e = step_exec_load(&c, arn);
	if (e != SL_OK)
		return e;
	json_t *x = c.exec;
	const char *why = not_redrivable(eng, x, sl_clock_now_ms(), false);
	int bad = json_object_set_new(d, "redriveCount",
	                              json_integer(step_jint(x, "redriveCount", 0)));
	if (json_object_get(x, "redriveMs")) {
		char when[32];
		sl_clock_format_rfc3339(step_jint(x, "redriveMs", 0), when);
		bad |= json_object_set_new(d, "redriveDate", json_string(when));
	}
	// a map run's child that could run again is redriven with its parent, as AWS says
	bool by_run = why && json_object_get(x, "mapRun")
	        && !not_redrivable(eng, x, sl_clock_now_ms(), true);
	bad |= json_object_set_new(d, "redriveStatus",
	                           json_string(by_run        ? "REDRIVABLE_BY_MAP_RUN"
	                                               : why ? "NOT_REDRIVABLE"
	                                                     : "REDRIVABLE"));
	if (why)
		bad |= json_object_set_new(d, "redriveStatusReason", json_string(why));
	step_ctx_done(&c);
	return bad ? SL_ERR_NOMEM : SL_OK;
}
