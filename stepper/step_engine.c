/*
 * step_engine.c - the engine's lifecycle, its inputs (start, task answers, stop) and the
 * bounded run loop over runnable frames.
 */
#include <ctype.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "common/sl_log.h"
#include "stepper/step_int.h"

const char *
step_status_name(enum step_status s)
{
	switch (s) {
	case STEP_RUNNING: return "RUNNING";
	case STEP_SUCCEEDED: return "SUCCEEDED";
	case STEP_FAILED: return "FAILED";
	case STEP_TIMED_OUT: return "TIMED_OUT";
	case STEP_ABORTED: return "ABORTED";
	}
	return "UNKNOWN";
}

sl_err
step_engine_new(store_t *st, const struct step_options *opt, step_engine_t **out)
{
	step_engine_t *eng = SL_NEW(step_engine_t);
	if (!eng)
		return SL_ERR_NOMEM;
	eng->st = st;
	if (opt)
		eng->opt = *opt;
	if (!eng->opt.payload_limit)
		eng->opt.payload_limit = STEP_DEFAULT_PAYLOAD_LIMIT;
	if (!eng->opt.history_limit)
		eng->opt.history_limit = STEP_DEFAULT_HISTORY_LIMIT;
	if (!eng->opt.max_steps)
		eng->opt.max_steps = STEP_DEFAULT_MAX_STEPS;
	if (!eng->opt.map_concurrency_cap)
		eng->opt.map_concurrency_cap = STEP_DEFAULT_MAP_CAP;
	eng->rng = eng->opt.jitter_seed;
	if (!eng->rng && sl_random_bytes(&eng->rng, sizeof eng->rng) != SL_OK)
		eng->rng = (uint64_t)sl_clock_mono_ns();
	*out = eng;
	return SL_OK;
}

void
step_engine_free(step_engine_t *eng)
{
	if (!eng)
		return;
	for (size_t i = 0; i < eng->n_machines; i++)
		sl_free(eng->machines[i].name);
	sl_free(eng->machines);
	for (size_t i = 0; i < eng->r_len; i++)
		sl_free(eng->ready[(eng->r_head + i) % eng->r_cap].arn);
	sl_free(eng->ready);
	step_cache_clear(eng);
	step_hot_clear(eng);
	step_fhot_clear(eng);
	sl_free(eng);
}

sl_err
step_engine_add_machine(step_engine_t *eng, const char *name, const struct sm_machine *machine)
{
	for (size_t i = 0; i < eng->n_machines; i++)
		if (strcmp(eng->machines[i].name, name) == 0) {
			eng->machines[i].m = machine;
			return SL_OK;
		}
	if (eng->n_machines == eng->cap_machines) {
		size_t ncap = eng->cap_machines ? eng->cap_machines * 2 : 8;
		void *n = sl_reallocarray(eng->machines, ncap, sizeof *eng->machines);
		if (!n)
			return SL_ERR_NOMEM;
		eng->machines = n;
		eng->cap_machines = ncap;
	}
	char *nm = sl_strdup(name);
	if (!nm)
		return SL_ERR_NOMEM;
	eng->machines[eng->n_machines].name = nm;
	eng->machines[eng->n_machines].m = machine;
	eng->n_machines++;
	return SL_OK;
}

void
step_engine_set_resolver(step_engine_t *eng, step_resolve_fn fn, void *arg)
{
	eng->resolve = fn;
	eng->resolve_arg = arg;
}

void
step_engine_set_put_events(step_engine_t *eng, step_put_events_fn fn, void *arg)
{
	eng->put_events = fn;
	eng->put_events_arg = arg;
}

void
step_engine_set_start_child(step_engine_t *eng, step_start_child_fn fn, void *arg)
{
	eng->start_child = fn;
	eng->start_child_arg = arg;
}

bool
step_engine_has_ready(const step_engine_t *eng)
{
	return eng->r_len > 0;
}

sl_err
step_engine_recover(step_engine_t *eng, store_batch_t *b, struct sl_error *err)
{
	store_cursor_t *cur = NULL;
	sl_err e = store_cursor_open(store_batch_txn(b), STORE_DB_FRAMES, &cur);
	if (e != SL_OK)
		return sl_error_set(err, e, "cannot scan frames");
	struct store_val k, v;
	e = store_cursor_seek(cur, NULL, 0);
	while (e == SL_OK && (e = store_cursor_next(cur, &k, &v)) == SL_OK) {
		if (v.len < 2 || ((const char *)v.data)[0] != 'F' || k.len < 5)
			continue;
		json_error_t je;
		json_t *o = json_loadb((const char *)v.data + 1, v.len - 1, 0, &je);
		if (!o) {
			e = sl_error_set(err, SL_ERR_STORE, "a frame record is not JSON: %s",
			                 je.text);
			break;
		}
		int64_t ph = step_jint(o, "ph", -1);
		const char *arn = step_jstr(o, "a");
		if (arn && (ph == PH_ENTER || ph == PH_RERUN))
			e = step_ready_push(
			        eng, arn,
			        store_decode_u32((const unsigned char *)k.data + k.len - 4));
		json_decref(o);
	}
	store_cursor_close(cur);
	return e == SL_ERR_NOT_FOUND ? SL_OK : e;
}

/* AWS execution names: 1..80 characters, none of whitespace, brackets, wildcards, control
 * characters or the special ones listed in the StartExecution reference. */
static bool
valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 80)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x21 || *p == 0x7f || strchr("<>{}[]?*\"#%\\^|~`$&,;:/", *p))
			return false;
	}
	return true;
}

/* ---- one activation: all of its writes or none ------------------------------------------- */

/* An effect of the running activation, copied: it goes out only if the activation is kept. */
struct fx_call {
	enum { FX_TASK, FX_TIMER, FX_FINISHED, FX_STATUS } kind;
	int64_t due;
	struct step_task t;
	struct step_finished fin;
	struct step_status_change sc;
	char *s[7];
	json_t *j[2];
};

static void
fx_call_free(struct fx_call *fc)
{
	for (size_t i = 0; i < sizeof fc->s / sizeof fc->s[0]; i++)
		sl_free(fc->s[i]);
	json_decref(fc->j[0]);
	json_decref(fc->j[1]);
}

static struct fx_call *
fx_push(struct step_act *a)
{
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 4;
		void *n = sl_reallocarray(a->calls, ncap, sizeof *a->calls);
		if (!n) {
			a->oom = true;
			return NULL;
		}
		a->calls = n;
		a->cap = ncap;
	}
	struct fx_call *fc = &a->calls[a->n++];
	memset(fc, 0, sizeof *fc);
	return fc;
}

/* Copies s into slot i of fc (NULL stays NULL). */
static const char *
fx_str(struct step_act *a, struct fx_call *fc, size_t i, const char *s)
{
	if (!s)
		return NULL;
	if (!(fc->s[i] = sl_strdup(s)))
		a->oom = true;
	return fc->s[i];
}

static json_t *
fx_json(struct fx_call *fc, size_t i, json_t *v)
{
	return fc->j[i] = v ? json_incref(v) : NULL;
}

static void
rec_task(void *arg, const struct step_task *t)
{
	struct step_act *a = arg;
	struct fx_call *fc = fx_push(a);
	if (!fc)
		return;
	fc->kind = FX_TASK;
	fc->t = *t;
	fc->t.token = fx_str(a, fc, 0, t->token);
	fc->t.execution_arn = fx_str(a, fc, 1, t->execution_arn);
	fc->t.state_name = fx_str(a, fc, 2, t->state_name);
	fc->t.resource = fx_str(a, fc, 3, t->resource);
	fc->t.name = fx_str(a, fc, 4, t->name);
	fc->t.action = fx_str(a, fc, 5, t->action);
	fc->t.input = fx_json(fc, 0, t->input);
}

static void
rec_timer(void *arg, int64_t due_ms)
{
	struct fx_call *fc = fx_push(arg);
	if (!fc)
		return;
	fc->kind = FX_TIMER;
	fc->due = due_ms;
}

static void
rec_finished(void *arg, const struct step_finished *f)
{
	struct step_act *a = arg;
	struct fx_call *fc = fx_push(a);
	if (!fc)
		return;
	fc->kind = FX_FINISHED;
	fc->fin = *f;
	fc->fin.execution_arn = fx_str(a, fc, 0, f->execution_arn);
	fc->fin.error = fx_str(a, fc, 1, f->error);
	fc->fin.cause = fx_str(a, fc, 2, f->cause);
	fc->fin.output = fx_json(fc, 0, f->output);
}

static void
rec_status(void *arg, const struct step_status_change *sc)
{
	struct step_act *a = arg;
	struct fx_call *fc = fx_push(a);
	if (!fc)
		return;
	fc->kind = FX_STATUS;
	fc->sc = *sc;
	fc->sc.execution_arn = fx_str(a, fc, 0, sc->execution_arn);
	fc->sc.state_machine_arn = fx_str(a, fc, 1, sc->state_machine_arn);
	fc->sc.name = fx_str(a, fc, 2, sc->name);
	fc->sc.error = fx_str(a, fc, 3, sc->error);
	fc->sc.cause = fx_str(a, fc, 4, sc->cause);
	fc->sc.input = fx_json(fc, 0, sc->input);
	fc->sc.output = fx_json(fc, 1, sc->output);
}

sl_err
step_act_begin(step_engine_t *eng, store_batch_t *b, const struct step_effects *fx,
               struct step_act *a)
{
	memset(a, 0, sizeof *a);
	a->eng = eng;
	a->b = b;
	a->real = fx;
	a->r_len = eng->r_len;
	if (fx) {
		a->fx.arg = a;
		a->fx.task = fx->task ? rec_task : NULL;
		a->fx.timer = fx->timer ? rec_timer : NULL;
		a->fx.finished = fx->finished ? rec_finished : NULL;
		a->fx.status = fx->status ? rec_status : NULL;
	}
	// a mark, not a savepoint: a nested LMDB txn per activation cost ~8 % of the chain
	// benchmark; rolling back replays the batch, which only failures pay
	return store_batch_mark(b, &a->mark);
}

static void
act_drop_calls(struct step_act *a)
{
	for (size_t i = 0; i < a->n; i++)
		fx_call_free(&a->calls[i]);
	sl_free(a->calls);
	a->calls = NULL;
	a->n = a->cap = 0;
}

/* The frames the activation queued and the documents it cached are forgotten; effects it
 * announced are dropped (never delivered). */
static void
act_undo_memory(struct step_act *a)
{
	step_engine_t *eng = a->eng;
	while (eng->r_len > a->r_len) {
		eng->r_len--;
		struct step_ready *r = &eng->ready[(eng->r_head + eng->r_len) % eng->r_cap];
		sl_free(r->arn);
		r->arn = NULL;
	}
	step_cache_clear(eng);
	act_drop_calls(a);
}

sl_err
step_act_end(struct step_act *a, sl_err e)
{
	if (e == SL_OK && a->oom)
		e = SL_ERR_NOMEM; // an effect could not be kept: nobody could be told
	if (e != SL_OK) {
		// if the replay fails the batch is poisoned: nothing of it will commit
		(void)store_batch_rollback_to(a->b, &a->mark);
		act_undo_memory(a);
		return e;
	}
	const struct step_effects *fx = a->real;
	for (size_t i = 0; i < a->n; i++) {
		struct fx_call *fc = &a->calls[i];
		switch (fc->kind) {
		case FX_TASK: fx->task(fx->arg, &fc->t); break;
		case FX_TIMER: fx->timer(fx->arg, fc->due); break;
		case FX_FINISHED: fx->finished(fx->arg, &fc->fin); break;
		case FX_STATUS: fx->status(fx->arg, &fc->sc); break;
		}
	}
	act_drop_calls(a);
	return SL_OK;
}

/* An activation of arn failed with `failed` and was undone: the execution ends FAILED with
 * States.Runtime in a write of its own. SL_OK when that is done (the error is logged, err
 * cleared); otherwise `failed` (the store refuses writes, or arn cannot be read). */
sl_err
step_act_fail(step_engine_t *eng, store_batch_t *b, const char *arn, sl_err failed,
              const struct step_effects *fx, struct sl_error *err)
{
	char cause[600];
	snprintf(cause, sizeof cause, "The engine could not run the execution's next step: %s%s%s",
	         sl_err_message(failed), err && err->code != SL_OK ? ": " : "",
	         err && err->code != SL_OK ? sl_error_text(err) : "");
	struct sl_error err2;
	sl_error_clear(&err2);
	struct step_act a;
	sl_err e = step_act_begin(eng, b, fx, &a);
	if (e != SL_OK)
		return failed;
	struct step_ctx c = { .eng = eng,
		              .txn = store_batch_txn(b),
		              .fx = &a.fx,
		              .err = &err2,
		              .inline_frame = -1 };
	e = step_exec_load(&c, arn);
	if (e == SL_OK && strcmp(step_jstr(c.exec, "status"), "RUNNING") == 0) {
		e = step_exec_close(&c, STEP_FAILED, NULL, "States.Runtime", cause);
		if (e == SL_OK)
			e = step_exec_save(&c);
	}
	step_ctx_done(&c);
	if (e == SL_ERR_EXEC_NOT_FOUND)
		e = SL_OK; // the activation created it, and it is undone
	if ((e = step_act_end(&a, e)) != SL_OK)
		return failed;
	sl_warn("stepper", "%s failed: %s", arn, cause);
	if (err)
		sl_error_clear(err);
	return SL_OK;
}

sl_err
step_start(step_engine_t *eng, store_batch_t *b, const struct step_start *req, char *arn_out,
           const struct step_effects *fx, struct sl_error *err)
{
	// a start that fails half-way leaves nothing: there is no execution to fail
	struct step_act a;
	sl_err e = step_act_begin(eng, b, fx, &a);
	if (e != SL_OK)
		return sl_error_set(err, e, "cannot start: the store refuses writes");
	e = step_start_txn(eng, store_batch_txn(b), req, NULL, 0, arn_out, &a.fx, err);
	return step_act_end(&a, e);
}

sl_err
step_start_txn(step_engine_t *eng, store_txn_t *txn, const struct step_start *req,
               const char *parent_token, int parent_mode, char *arn_out,
               const struct step_effects *fx, struct sl_error *err)
{
	uint32_t revision = req->revision;
	const struct sm_machine *m = step_machine_get(eng, txn, req->machine, &revision);
	if (!m)
		return sl_error_set(err, SL_ERR_SM_NOT_FOUND, "State Machine Does Not Exist: '%s'",
		                    req->machine ? req->machine : "");
	char uuid[SL_UUID_STRLEN + 1];
	const char *name = req->name;
	if (!name) {
		sl_err e = sl_uuid4(uuid);
		if (e != SL_OK)
			return sl_error_set(err, e, "cannot make an execution name");
		name = uuid;
	}
	if (!valid_name(name))
		return sl_error_set(err, SL_ERR_INVALID_NAME, "Invalid Name: '%s'", name);
	char arn[STEP_ARN_MAX], smarn[STEP_ARN_MAX];
	if (sl_arn_format(arn, sizeof arn, "states", "execution", req->machine, name, NULL) != SL_OK
	    || sl_arn_format(smarn, sizeof smarn, "states", "stateMachine", req->machine, NULL)
	            != SL_OK)
		return sl_error_set(err, SL_ERR_INVALID_NAME, "names too long for an ARN");
	json_t *input = req->input ? json_incref(req->input) : json_object();
	if (!input)
		return SL_ERR_NOMEM;
	struct step_ctx c = { .eng = eng, .txn = txn, .fx = fx, .err = err, .inline_frame = -1 };
	sl_err e;
	struct store_key k;
	step_key_exec(&k, arn);
	struct store_val v;
	if ((e = store_get(txn, STORE_DB_EXECUTIONS, k.buf, k.len, &v)) == SL_OK) {
		json_decref(input);
		return sl_error_set(err, SL_ERR_EXEC_EXISTS, "Execution Already Exists: '%s'", arn);
	}
	if (e != SL_ERR_NOT_FOUND) {
		json_decref(input);
		return sl_error_set(err, e, "cannot read executions");
	}
	// one dump: measured here, then stored as the input and in ExecutionStarted
	const char *itext;
	size_t isz;
	if ((e = step_payload_text(&c, input, &itext, &isz)) != SL_OK) {
		json_decref(input);
		return e;
	}
	if (isz > eng->opt.payload_limit) {
		json_decref(input);
		step_ctx_done(&c);
		return sl_error_set(err, SL_ERR_INVALID_EXECUTION_INPUT,
		                    "execution input is %zu bytes, over the limit of %zu", isz,
		                    eng->opt.payload_limit);
	}
	int64_t now = sl_clock_now_ms();
	// the input lives under its own key: the record is re-read at every step
	c.exec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:i}", "executionArn", arn,
	                   "stateMachineArn", smarn, "machine", req->machine, "name", name,
	                   "status", "RUNNING", "startMs", (json_int_t)now, "nextEvent", 1,
	                   "nextFrame", 2);
	if (!c.exec) {
		json_decref(input);
		return SL_ERR_NOMEM;
	}
	if (revision && json_object_set_new(c.exec, "revision", json_integer(revision))) {
		json_decref(input);
		step_ctx_done(&c);
		return SL_ERR_NOMEM;
	}
	c.arn = step_jstr(c.exec, "executionArn");
	c.top = m;
	c.exec_dirty = true;
	// started by a Task (states:startExecution): its token is answered when this one ends
	if (parent_token
	    && (json_object_set_new(c.exec, "parentToken", json_string(parent_token))
	        || json_object_set_new(c.exec, "parentMode", json_integer(parent_mode)))) {
		json_decref(input);
		step_ctx_done(&c);
		return SL_ERR_NOMEM;
	}
	struct step_frame *f = step_frame_new();
	if (!f) {
		json_decref(input);
		step_ctx_done(&c);
		return SL_ERR_NOMEM;
	}
	f->id = 1;
	f->mp = json_array();
	f->m = m;
	f->st = m->start;
	f->in = input; // the frame owns the reference now
	f->ph = PH_ENTER;
	e = f->mp ? step_exec_put_input(&c, input) : SL_ERR_NOMEM;
	if (e == SL_OK)
		e = step_event_payload(&c, NULL, "ExecutionStarted", "executionStartedEventDetails",
		                       "input", input, "roleArn",
		                       "arn:aws:iam::000000000000:role/sluice");
	if (e == SL_OK) {
		f->prev = (uint64_t)step_jint(c.exec, "lastEvent", 0);
		e = step_frame_save(&c, f);
	}
	if (e == SL_OK) {
		struct store_key ik;
		store_key_init(&ik);
		store_key_str(&ik, req->machine);
		store_key_i64(&ik, now);
		// raw, not str: listings read the ARN back and it must never be hashed
		store_key_raw(&ik, arn, strlen(arn));
		e = store_put(txn, STORE_DB_EXEC_INDEX, ik.buf, ik.len, "", 0);
	}
	if (e == SL_OK && m->timeout_seconds > 0)
		e = step_timer_arm(&c, now + m->timeout_seconds * 1000, TK_EXEC_TIMEOUT, 0, 0,
		                   NULL);
	if (e == SL_OK)
		e = step_exec_save(&c);
	if (e == SL_OK)
		e = step_ready_push(eng, arn, 1);
	if (e == SL_OK && fx && fx->status) {
		struct step_status_change sc = { .execution_arn = c.arn,
			                         .state_machine_arn = smarn,
			                         .name = name,
			                         .status = STEP_RUNNING,
			                         .start_ms = now,
			                         .input = f->in };
		fx->status(fx->arg, &sc);
	}
	if (e == SL_OK && arn_out)
		snprintf(arn_out, STEP_ARN_MAX, "%s", arn);
	step_frame_free(f);
	step_ctx_done(&c);
	if (e != SL_OK && err && err->code == SL_OK)
		sl_error_set(err, e, "starting '%s' failed", arn);
	return e;
}

sl_err
step_run_ready(step_engine_t *eng, store_batch_t *b, const struct step_effects *fx, unsigned *ran,
               struct sl_error *err)
{
	unsigned budget = eng->opt.max_steps;
	sl_err e = SL_OK;
	store_txn_t *txn = store_batch_txn(b);
	while (budget > 0 && eng->r_len > 0) {
		struct step_ready r = eng->ready[eng->r_head];
		eng->r_head = (eng->r_head + 1) % eng->r_cap;
		eng->r_len--;
		struct step_act a;
		if ((e = step_act_begin(eng, b, fx, &a)) != SL_OK) {
			sl_free(r.arn);
			break;
		}
		struct step_ctx c
		        = { .eng = eng, .txn = txn, .fx = &a.fx, .err = err, .inline_frame = -1 };
		e = step_exec_load(&c, r.arn);
		if (e == SL_ERR_EXEC_NOT_FOUND) {
			if (err)
				sl_error_clear(err);
			e = SL_OK;
		} else if (e == SL_OK && strcmp(step_jstr(c.exec, "status"), "RUNNING") == 0) {
			e = step_frame_run(&c, r.frame, &budget);
			if (e == SL_OK)
				e = step_exec_save(&c);
		}
		step_ctx_done(&c);
		if ((e = step_act_end(&a, e)) != SL_OK)
			e = step_act_fail(eng, b, r.arn, e, fx, err);
		sl_free(r.arn);
		if (e != SL_OK)
			break;
	}
	if (ran)
		*ran = eng->opt.max_steps - budget;
	if (e != SL_OK && err && err->code == SL_OK)
		sl_error_set(err, e, "running frames failed");
	return e;
}

/* Finds the frame waiting on token; SL_ERR_TASK_NOT_FOUND if none. */
static sl_err
task_lookup(struct step_ctx *c, const char *token, struct step_frame **out, json_t **rec)
{
	size_t n = token ? strlen(token) : 0;
	if (n == 0 || n > STEP_TOKEN_LEN)
		return sl_error_set(c->err, SL_ERR_INVALID_TOKEN, "Invalid Token: '%s'",
		                    token ? token : "");
	struct store_key tk;
	store_key_init(&tk);
	store_key_raw(&tk, token, n);
	sl_err e = step_get_json(c->txn, STORE_DB_TASK_TOKENS, &tk, 'T', rec);
	if (e == SL_ERR_NOT_FOUND)
		return sl_error_set(c->err, SL_ERR_TASK_NOT_FOUND, "Task Does Not Exist: '%s'",
		                    token);
	if (e != SL_OK)
		return e;
	const char *arn = step_jstr(*rec, "arn");
	if (!arn)
		return SL_ERR_STORE;
	if ((e = step_exec_load(c, arn)) != SL_OK)
		return e;
	e = step_frame_load(c, (uint32_t)step_jint(*rec, "frame", 0), out);
	if (e == SL_ERR_NOT_FOUND
	    || (e == SL_OK && ((*out)->ph != PH_TASK || strcmp((*out)->tok, token) != 0))) {
		step_frame_free(*out);
		*out = NULL;
		return sl_error_set(c->err, SL_ERR_TASK_NOT_FOUND, "Task Does Not Exist: '%s'",
		                    token);
	}
	return e;
}

sl_err
step_task_answer_txn(step_engine_t *eng, store_txn_t *txn, const char *token, bool ok,
                     json_t *output, const char *error, const char *cause,
                     const struct step_effects *fx, struct sl_error *err)
{
	struct step_ctx c = { .eng = eng, .txn = txn, .fx = fx, .err = err, .inline_frame = -1 };
	struct step_frame *f = NULL;
	json_t *rec = NULL;
	sl_err e = task_lookup(&c, token, &f, &rec);
	if (e == SL_OK) {
		e = step_task_resolve(&c, f, ok, output ? output : json_null(), error, cause);
		if (e == SL_OK && !f->gone && !c.closed)
			e = step_frame_save(&c, f);
		if (e == SL_OK)
			e = step_exec_save(&c);
	}
	step_frame_free(f);
	json_decref(rec);
	step_ctx_done(&c);
	return e;
}

/* A worker's answer as one activation: an unknown token changes nothing; an engine failure
 * after the task was found ends its execution FAILED (step_act_fail). */
static sl_err
task_answer(step_engine_t *eng, store_batch_t *b, const char *token, bool ok, json_t *output,
            const char *error, const char *cause, const struct step_effects *fx,
            struct sl_error *err)
{
	struct step_act a;
	sl_err e = step_act_begin(eng, b, fx, &a);
	if (e != SL_OK)
		return e;
	struct step_ctx c = { .eng = eng,
		              .txn = store_batch_txn(b),
		              .fx = &a.fx,
		              .err = err,
		              .inline_frame = -1 };
	struct step_frame *f = NULL;
	json_t *rec = NULL;
	char arn[STEP_ARN_MAX] = "";
	e = task_lookup(&c, token, &f, &rec);
	if (e == SL_OK) {
		snprintf(arn, sizeof arn, "%s", c.arn);
		e = step_task_resolve(&c, f, ok, output ? output : json_null(), error, cause);
		if (e == SL_OK && !f->gone && !c.closed)
			e = step_frame_save(&c, f);
		if (e == SL_OK)
			e = step_exec_save(&c);
	}
	step_frame_free(f);
	json_decref(rec);
	step_ctx_done(&c);
	if ((e = step_act_end(&a, e)) != SL_OK && arn[0])
		e = step_act_fail(eng, b, arn, e, fx, err);
	return e;
}

sl_err
step_task_succeed(step_engine_t *eng, store_batch_t *b, const char *token, json_t *output,
                  const struct step_effects *fx, struct sl_error *err)
{
	return task_answer(eng, b, token, true, output, NULL, NULL, fx, err);
}

sl_err
step_task_fail(step_engine_t *eng, store_batch_t *b, const char *token, const char *error,
               const char *cause, const struct step_effects *fx, struct sl_error *err)
{
	return task_answer(eng, b, token, false, NULL, error, cause, fx, err);
}

sl_err
step_task_heartbeat(step_engine_t *eng, store_batch_t *b, const char *token,
                    const struct step_effects *fx, struct sl_error *err)
{
	// all or nothing; a failure is returned (the execution goes on, the worker retries)
	struct step_act a;
	sl_err e = step_act_begin(eng, b, fx, &a);
	if (e != SL_OK)
		return e;
	struct step_ctx c = { .eng = eng,
		              .txn = store_batch_txn(b),
		              .fx = &a.fx,
		              .err = err,
		              .inline_frame = -1 };
	struct step_frame *f = NULL;
	json_t *rec = NULL;
	e = task_lookup(&c, token, &f, &rec);
	if (e == SL_OK) {
		const struct sm_task *t = &f->m->states[f->st].u.task;
		int64_t hb = t->heartbeat_seconds;
		if (hb > 0) {
			int64_t due = sl_clock_now_ms() + hb * 1000;
			struct store_key tk;
			store_key_init(&tk);
			store_key_raw(&tk, token, strlen(token));
			if (json_object_set_new(rec, "hbDue", json_integer(due)))
				e = SL_ERR_NOMEM;
			else
				e = step_put_json(c.txn, STORE_DB_TASK_TOKENS, &tk, 'T', rec);
			if (e == SL_OK)
				e = step_timer_arm(&c, due, TK_HEARTBEAT, f->id, f->wk, token);
		}
	}
	step_frame_free(f);
	json_decref(rec);
	step_ctx_done(&c);
	return step_act_end(&a, e);
}

sl_err
step_stop(step_engine_t *eng, store_batch_t *b, const char *arn, const char *error,
          const char *cause, const struct step_effects *fx, struct sl_error *err)
{
	// all or nothing; a failure is returned and the execution keeps running
	struct step_act a;
	sl_err e = step_act_begin(eng, b, fx, &a);
	if (e != SL_OK)
		return e;
	struct step_ctx c = { .eng = eng,
		              .txn = store_batch_txn(b),
		              .fx = &a.fx,
		              .err = err,
		              .inline_frame = -1 };
	e = step_exec_load(&c, arn);
	if (e == SL_OK && strcmp(step_jstr(c.exec, "status"), "RUNNING") == 0) {
		e = step_exec_close(&c, STEP_ABORTED, NULL, error, cause);
		if (e == SL_OK)
			e = step_exec_save(&c);
	}
	step_ctx_done(&c);
	return step_act_end(&a, e);
}

sl_err
step_tasks_replay(step_engine_t *eng, store_txn_t *txn, const struct step_effects *fx,
                  struct sl_error *err)
{
	(void)eng;
	store_cursor_t *cur = NULL;
	sl_err e = store_cursor_open(txn, STORE_DB_TASK_TOKENS, &cur);
	if (e != SL_OK)
		return sl_error_set(err, e, "cannot scan tasks");
	struct store_val k, v;
	e = store_cursor_seek(cur, NULL, 0);
	while (e == SL_OK && (e = store_cursor_next(cur, &k, &v)) == SL_OK) {
		json_error_t je;
		if (v.len < 2 || k.len > STEP_TOKEN_LEN)
			continue;
		json_t *o = json_loadb((const char *)v.data + 1, v.len - 1, 0, &je);
		if (!o) {
			e = sl_error_set(err, SL_ERR_STORE, "a task record is not JSON: %s",
			                 je.text);
			break;
		}
		char tok[STEP_TOKEN_LEN + 1];
		memcpy(tok, k.data, k.len);
		tok[k.len] = 0;
		struct step_task t = {
			.token = tok,
			.execution_arn = step_jstr(o, "arn"),
			.state_name = step_jstr(o, "state"),
			.kind = (enum sm_resource_kind)step_jint(o, "kind", SM_RESOURCE_OTHER),
			.resource = step_jstr(o, "resource"),
			.name = step_jstr(o, "name"),
			.action = step_jstr(o, "action"),
			.integration = (enum sm_integration)step_jint(o, "integration", 0),
			.input = json_object_get(o, "input"),
			.timeout_seconds = step_jint(o, "timeout", 0),
			.heartbeat_seconds = step_jint(o, "hb", 0),
		};
		bool builtin = json_is_true(json_object_get(o, "builtin"));
		if (!builtin && t.execution_arn && t.state_name && t.input && fx && fx->task)
			fx->task(fx->arg, &t);
		json_decref(o);
	}
	store_cursor_close(cur);
	return e == SL_ERR_NOT_FOUND ? SL_OK : e;
}
