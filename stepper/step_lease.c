/*
 * step_lease.c - a worker takes a task: the lease on its token record, ActivityStarted with
 * the worker's name, and the heartbeat clock started from that moment (as in AWS, where
 * HeartbeatSeconds counts from ActivityStarted).
 *
 * The lease is the token record's "worker" and "startedMs" members, written in the caller's
 * batch; the task record itself stays where the stepper put it, so every other input
 * (succeed, fail, heartbeat, timers, stop) works on a leased task unchanged.
 */
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "stepper/step_int.h"

static void
token_key(struct store_key *k, const char *token)
{
	store_key_init(k);
	store_key_raw(k, token, strlen(token));
}

static bool
token_ok(const char *token)
{
	size_t n = token ? strlen(token) : 0;
	return n > 0 && n <= STEP_TOKEN_LEN;
}

sl_err
step_task_info(step_engine_t *eng, store_txn_t *txn, const char *token, struct step_task_info *out)
{
	(void)eng;
	memset(out, 0, sizeof *out);
	out->state = STEP_TASK_GONE;
	if (!token_ok(token))
		return SL_OK;
	struct store_key k;
	token_key(&k, token);
	json_t *rec = NULL;
	sl_err e = step_get_json(txn, STORE_DB_TASK_TOKENS, &k, 'T', &rec);
	if (e == SL_ERR_NOT_FOUND)
		return SL_OK;
	if (e != SL_OK)
		return e;
	out->state = json_object_get(rec, "worker") ? STEP_TASK_TAKEN : STEP_TASK_WAITING;
	out->kind = (enum sm_resource_kind)step_jint(rec, "kind", SM_RESOURCE_OTHER);
	out->integration = (enum sm_integration)step_jint(rec, "integration", 0);
	const char *n = step_jstr(rec, "name"), *a = step_jstr(rec, "action");
	snprintf(out->name, sizeof out->name, "%s", n ? n : "");
	snprintf(out->action, sizeof out->action, "%s", a ? a : "");
	json_decref(rec);
	return SL_OK;
}

static sl_err
task_started(step_engine_t *eng, store_batch_t *b, const char *token, const char *worker_name,
             const struct step_effects *fx, struct step_started *out, struct sl_error *err)
{
	struct step_ctx c = { .eng = eng,
		              .txn = store_batch_txn(b),
		              .fx = fx,
		              .err = err,
		              .inline_frame = -1 };
	struct store_key k;
	token_key(&k, token);
	json_t *rec = NULL;
	struct step_frame *f = NULL;
	sl_err e = step_get_json(c.txn, STORE_DB_TASK_TOKENS, &k, 'T', &rec);
	if (e == SL_ERR_NOT_FOUND) {
		e = sl_error_set(err, SL_ERR_TASK_NOT_FOUND, "Task Does Not Exist: '%s'", token);
		goto out;
	}
	if (e != SL_OK)
		goto out;
	if (json_object_get(rec, "worker")) {
		e = sl_error_set(err, SL_ERR_CONFLICT, "task '%s' is already taken by %s", token,
		                 step_jstr(rec, "worker"));
		goto out;
	}
	const char *arn = step_jstr(rec, "arn");
	if (!arn) {
		e = SL_ERR_STORE;
		goto out;
	}
	if ((e = step_exec_load(&c, arn)) != SL_OK)
		goto out;
	e = step_frame_load(&c, (uint32_t)step_jint(rec, "frame", 0), &f);
	if (e == SL_ERR_NOT_FOUND
	    || (e == SL_OK && (f->ph != PH_TASK || strcmp(f->tok, token) != 0))) {
		e = sl_error_set(err, SL_ERR_TASK_NOT_FOUND, "Task Does Not Exist: '%s'", token);
		goto out;
	}
	if (e != SL_OK)
		goto out;
	int64_t now = sl_clock_now_ms();
	int64_t hb = step_jint(rec, "hb", 0);
	enum sm_integration integ = (enum sm_integration)step_jint(rec, "integration", 0);
	// a callback task was Started (and Submitted) when it was scheduled
	bool write_started = eng->opt.lease_tasks && integ != SM_INTEGRATION_WAIT_FOR_TASK_TOKEN;
	const char *who = worker_name && worker_name[0] ? worker_name : "unnamed";
	if (json_object_set_new(rec, "worker", json_string(who))
	    || json_object_set_new(rec, "startedMs", json_integer(now))) {
		e = SL_ERR_NOMEM;
		goto out;
	}
	if (write_started && hb > 0
	    && json_object_set_new(rec, "hbDue", json_integer(now + hb * 1000))) {
		e = SL_ERR_NOMEM;
		goto out;
	}
	if ((e = step_put_json(c.txn, STORE_DB_TASK_TOKENS, &k, 'T', rec)) != SL_OK)
		goto out;
	if (write_started) {
		json_t *d = NULL;
		if (f->m->states[f->st].u.task.kind == SM_RESOURCE_ACTIVITY
		    || (json_integer_value(json_object_get(rec, "kind")) == SM_RESOURCE_ACTIVITY)) {
			d = json_pack("{s:s}", "workerName", who);
			if (!d) {
				e = SL_ERR_NOMEM;
				goto out;
			}
		}
		e = step_task_event(&c, f, "Started", d);
		if (e == SL_OK && hb > 0)
			e = step_timer_arm(&c, now + hb * 1000, TK_HEARTBEAT, f->id, f->wk, token);
		if (e == SL_OK)
			e = step_frame_save(&c, f);
		if (e == SL_OK)
			e = step_exec_save(&c);
		if (e == SL_ERR_LIMIT)
			e = sl_error_set(err, SL_ERR_LIMIT, "the execution's history is full");
	}
	if (e == SL_OK && out) {
		out->input = json_incref(json_object_get(rec, "input"));
		out->timeout_seconds = step_jint(rec, "timeout", 0);
		out->heartbeat_seconds = hb;
		out->integration = integ;
		if (!out->input)
			out->input = json_null();
	}
out:
	step_frame_free(f);
	json_decref(rec);
	step_ctx_done(&c);
	return e;
}

sl_err
step_task_started(step_engine_t *eng, store_batch_t *b, const char *token, const char *worker_name,
                  const struct step_effects *fx, struct step_started *out, struct sl_error *err)
{
	if (out)
		memset(out, 0, sizeof *out);
	if (!token_ok(token))
		return sl_error_set(err, SL_ERR_INVALID_TOKEN, "Invalid Token: '%s'",
		                    token ? token : "");
	// all or nothing; a failure is returned (the task stays waiting for a worker)
	struct step_act a;
	sl_err e = step_act_begin(eng, b, fx, &a);
	if (e != SL_OK)
		return e;
	e = task_started(eng, b, token, worker_name, &a.fx, out, err);
	if ((e = step_act_end(&a, e)) != SL_OK && out) {
		json_decref(out->input);
		memset(out, 0, sizeof *out);
	}
	return e;
}
