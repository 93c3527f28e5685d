/*
 * srv_engine.c - drives the stepper from the server loop (see srv_engine.h).
 *
 * Two engines, one code path: the durable engine writes in the server's batch (group
 * commit, fsync); the EXPRESS engine writes in the batch of a scratch store that is never
 * fsync'd and is emptied at start. Each has its own run slice, timer and effects (struct
 * srv_engine holds them); the machines, the dispatcher and the mocks belong to the durable
 * one (the root). Express executions leave two records in the durable store: their start
 * and their end.
 */
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "common/sl_log.h"
#include "server/srv_api.h"
#include "server/srv_engine_int.h"
#include "server/srv_internal.h"
#include "statemachines/statemachines.h"

/* Timers fired per loop iteration: a burst of due timers must not stall HTTP. */
#define FIRE_SLICE 256

/* The server has no slot for module state, so engines are found by their server. */
static srv_engine_t *engines;

srv_engine_t *
srv_engine_of(srv_t *s)
{
	for (srv_engine_t *e = engines; e; e = e->next)
		if (e->srv == s)
			return e;
	return NULL;
}

step_engine_t *
srv_engine_stepper(srv_engine_t *e)
{
	return e->step;
}

const struct step_effects *
srv_engine_effects(srv_engine_t *e)
{
	return &e->fx;
}

uint32_t
srv_engine_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % XBUCKETS;
}

sl_err
srv_engine_batch(srv_engine_t *e, store_batch_t **b)
{
	if (!e->scratch)
		return srv_batch(e->srv, b);
	store_batch_t *cur = store_batch_current(e->scratch);
	if (cur && store_batch_full(cur))
		(void)store_batch_commit(e->scratch); // never inside a savepoint: see xcall_begin
	sl_err rc = store_batch_get(e->scratch, b);
	if (rc == SL_OK && !cur)
		event_active(e->flush_ev, EV_TIMEOUT, 0);
	return rc;
}

/* ---- machines ------------------------------------------------------------------------- */

static const struct sm_machine *
cached(srv_engine_t *e, const char *name, uint32_t revision)
{
	for (size_t i = 0; i < e->n_mc; i++)
		if (e->mc[i].revision == revision && strcmp(e->mc[i].name, name) == 0)
			return e->mc[i].m;
	return NULL;
}

sl_err
srv_engine_machine(srv_engine_t *e, store_txn_t *txn, const char *name, uint32_t *revision,
                   const struct sm_machine **out, struct sl_error *err)
{
	e = e->root;
	const struct sm_machine *m = *revision ? cached(e, name, *revision) : NULL;
	if (m) {
		*out = m;
		return SL_OK;
	}
	char *def = NULL;
	uint32_t rev = 0;
	sl_err rc = srv_machine_definition(txn, name, *revision, &def, &rev);
	if (rc == SL_ERR_SM_NOT_FOUND)
		return sl_error_set(err, rc, "State Machine Does Not Exist: '%s' (revision %u)",
		                    name, *revision);
	if (rc)
		return sl_error_set(err, rc, "cannot read the definition of '%s'", name);
	if ((m = cached(e, name, rev))) {
		sl_free(def);
		*revision = rev;
		*out = m;
		return SL_OK;
	}
	if (e->n_mc == e->cap_mc) {
		size_t cap = e->cap_mc ? e->cap_mc * 2 : 16;
		struct compiled *n = sl_reallocarray(e->mc, cap, sizeof *n);
		if (!n) {
			sl_free(def);
			return SL_ERR_NOMEM;
		}
		e->mc = n;
		e->cap_mc = cap;
	}
	struct sm_problems problems = { 0 };
	struct sm_machine *cm = NULL;
	rc = sm_definition_compile_text(def, strlen(def), NULL, SM_FORMAT_AUTO, &cm, &problems);
	sl_free(def);
	if (rc != SL_OK) {
		char *msg = rc == SL_ERR_NOMEM ? NULL : sm_problems_aws_message(&problems);
		sm_problems_clear(&problems);
		if (!msg)
			return SL_ERR_NOMEM;
		rc = sl_error_set(err, SL_ERR_INVALID_DEFINITION, "%s", msg);
		sl_free(msg);
		return rc;
	}
	sm_problems_clear(&problems);
	char *nm = sl_strdup(name);
	if (!nm) {
		sm_machine_free(cm);
		return SL_ERR_NOMEM;
	}
	e->mc[e->n_mc++] = (struct compiled) { nm, rev, cm };
	*revision = rev;
	*out = cm;
	return SL_OK;
}

static const struct sm_machine *
resolve(void *arg, store_txn_t *txn, const char *name, uint32_t *revision)
{
	srv_engine_t *e = arg;
	const struct sm_machine *m = *revision ? cached(e->root, name, *revision) : NULL;
	if (m)
		return m;
	// the express engine's txn is the scratch store's: definitions are in the durable one
	bool reader = false;
	if (e->scratch) {
		store_batch_t *b = store_batch_current(srv_store(e->srv));
		txn = b ? store_batch_txn(b) : NULL;
		if (!txn) {
			if (store_read_begin(srv_store(e->srv), &txn) != SL_OK)
				return NULL;
			reader = true;
		}
	}
	struct sl_error err;
	sl_error_clear(&err);
	if (srv_engine_machine(e, txn, name, revision, &m, &err) != SL_OK) {
		sl_warn("engine", "machine '%s' revision %u: %s", name, *revision,
		        sl_error_text(&err));
		m = NULL;
	}
	if (reader)
		store_read_end(txn);
	return m;
}

/* ---- timers and slices ---------------------------------------------------------------- */

static void
arm(srv_engine_t *e, int64_t due_ms)
{
	if (due_ms >= e->armed_due)
		return;
	int64_t delay = due_ms - sl_clock_now_ms();
	if (delay < 0)
		delay = 0;
	struct timeval tv = { (time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000) };
	if (evtimer_add(e->timer_ev, &tv) == 0)
		e->armed_due = due_ms;
}

/* Arms timer_ev at the earliest timer the batch (committed or not) holds. */
static void
rearm_from(srv_engine_t *e, store_txn_t *txn)
{
	int64_t due = 0;
	sl_err rc = step_next_timer(e->step, txn, &due);
	if (rc == SL_OK)
		arm(e, due);
	else if (rc != SL_ERR_NOT_FOUND)
		sl_errorf("engine", "cannot read the next timer: %s", sl_err_message(rc));
}

void
srv_engine_kick(srv_engine_t *e)
{
	if (!evtimer_pending(e->run_ev, NULL)) {
		struct timeval zero = { 0, 0 };
		evtimer_add(e->run_ev, &zero);
	}
}

static void
on_run(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_engine_t *e = arg;
	if (e->srv->stopped || !step_engine_has_ready(e->step))
		return;
	store_batch_t *b = NULL;
	sl_err rc = srv_engine_batch(e, &b);
	if (rc != SL_OK) {
		sl_errorf("engine", "no store batch: %s", sl_err_message(rc));
		return;
	}
	struct sl_error err;
	sl_error_clear(&err);
	// a failing frame is dropped from the slice; the others go on in the next one
	if ((rc = step_run_ready(e->step, b, &e->fx, NULL, &err)) != SL_OK)
		sl_errorf("engine", "running executions: %s", sl_error_text(&err));
	// a zero timeout, not event_active: the loop polls HTTP before the next slice
	if (step_engine_has_ready(e->step))
		srv_engine_kick(e);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_engine_t *e = arg;
	e->armed_due = INT64_MAX;
	if (e->srv->stopped)
		return;
	store_batch_t *b = NULL;
	sl_err rc = srv_engine_batch(e, &b);
	if (rc != SL_OK) {
		sl_errorf("engine", "no store batch: %s", sl_err_message(rc));
		arm(e, sl_clock_now_ms() + 1000);
		return;
	}
	struct sl_error err;
	sl_error_clear(&err);
	unsigned fired = 0;
	rc = step_fire_timers(e->step, b, sl_clock_now_ms(), FIRE_SLICE, &e->fx, &fired, &err);
	if (rc != SL_OK) {
		sl_errorf("engine", "firing timers: %s", sl_error_text(&err));
		arm(e, sl_clock_now_ms() + 1000); // retry later rather than spin
	}
	rearm_from(e, store_batch_txn(b));
	srv_engine_kick(e);
}

void
srv_engine_clock_changed(srv_engine_t *e)
{
	// the armed delay was computed from the old time: fire now, on_timer re-arms
	for (srv_engine_t *i = e; i; i = i == e ? e->x : NULL) {
		evtimer_del(i->timer_ev);
		i->armed_due = INT64_MAX;
		arm(i, sl_clock_now_ms());
	}
}

/* ---- mocks ---------------------------------------------------------------------------- */

static struct mrun *
mfind(srv_engine_t *root, const char *arn)
{
	for (struct mrun *m = root->mr[srv_engine_hash(arn)]; m; m = m->hnext)
		if (strcmp(m->arn, arn) == 0)
			return m;
	return NULL;
}

void
srv_engine_mock_drop(srv_engine_t *root, const char *arn)
{
	for (struct mrun **p = &root->mr[srv_engine_hash(arn)]; *p; p = &(*p)->hnext)
		if (strcmp((*p)->arn, arn) == 0) {
			struct mrun *m = *p;
			*p = m->hnext;
			step_mock_free(m->mock);
			json_decref(m->attempts);
			sl_free(m->arn);
			sl_free(m);
			return;
		}
}

sl_err
srv_engine_mock_attach(srv_engine_t *e, const char *arn, struct step_mock *mock)
{
	srv_engine_t *root = e->root;
	struct mrun *m = SL_NEW(struct mrun);
	if (!m || !(m->arn = sl_strdup(arn)) || !(m->attempts = json_object())) {
		if (m)
			sl_free(m->arn);
		sl_free(m);
		step_mock_free(mock);
		return SL_ERR_NOMEM;
	}
	srv_engine_mock_drop(root, arn); // a re-run replaces the old one
	m->mock = mock;
	uint32_t h = srv_engine_hash(arn);
	m->hnext = root->mr[h];
	root->mr[h] = m;
	return SL_OK;
}

sl_err
srv_engine_mock_load(srv_engine_t *e, const char *machine, const char *test_case,
                     struct step_mock **out, struct sl_error *err)
{
	json_t *doc = e->root->mock_doc;
	if (!doc)
		return sl_error_set(err, SL_ERR_NOT_FOUND, "the server runs without --mock-config");
	json_t *sm = json_object_get(json_object_get(doc, "StateMachines"), machine);
	json_t *tc = json_object_get(json_object_get(sm, "TestCases"), test_case);
	if (!tc)
		return sl_error_set(
		        err, SL_ERR_SM_NOT_FOUND,
		        "State Machine Does Not Exist: test case '%s' of '%s' is not in "
		        "the mock configuration",
		        test_case, machine);
	return step_mock_parse(doc, machine, test_case, out, err);
}

sl_err
srv_engine_mock_restore(srv_engine_t *e, const char *arn, const char *shown_arn,
                        const char *machine, const char *tc)
{
	struct step_mock *mock = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	if (srv_engine_mock_load(e, machine, tc, &mock, &err) == SL_OK)
		return srv_engine_mock_attach(e, arn, mock);
	sl_warn("engine", "%s was started with test case '%s': %s; its tasks wait for workers",
	        shown_arn, tc, sl_error_text(&err));
	return SL_OK;
}

/* --mock-config associations of durable executions, in STORE_DB_EXECUTIONS under a tag no
 * execution ARN starts with ("\0xM\0"): arn -> {"arn", "machine", "testCase"}. */
#define MOCK_TAG 0x00784D00u

static void
mock_key(struct store_key *k, const char *arn)
{
	store_key_init(k);
	store_key_u32(k, MOCK_TAG);
	store_key_str(k, arn);
}

sl_err
srv_engine_mock_persist(store_txn_t *txn, const char *arn, const char *machine,
                        const char *test_case)
{
	json_t *rec
	        = json_pack("{s:s,s:s,s:s}", "arn", arn, "machine", machine, "testCase", test_case);
	char *txt = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	json_decref(rec);
	if (!txt)
		return SL_ERR_NOMEM;
	struct store_key k;
	mock_key(&k, arn);
	sl_err rc = store_put(txn, STORE_DB_EXECUTIONS, k.buf, k.len, txt, strlen(txt));
	sl_free(txt);
	return rc;
}

/* Start-up, before the tasks in flight are replayed: each running durable execution that
 * was started mocked gets its test case again (so its tasks do not wait for workers); the
 * records of ended executions are deleted. A test case the --mock-config given now lacks
 * leaves the execution to workers, with a warning. */
static sl_err
mock_recover(srv_engine_t *e, store_batch_t *b)
{
	store_txn_t *txn = store_batch_txn(b);
	struct store_key pk;
	store_key_init(&pk);
	store_key_u32(&pk, MOCK_TAG);
	store_cursor_t *c = NULL;
	sl_err rc = store_cursor_open(txn, STORE_DB_EXECUTIONS, &c);
	if (rc != SL_OK)
		return rc;
	struct store_val k, v;
	rc = store_cursor_seek_prefix(c, pk.buf, pk.len);
	while (rc == SL_OK && (rc = store_cursor_next(c, &k, &v)) == SL_OK) {
		json_t *rec = json_loadb(v.data, v.len, 0, NULL);
		const char *arn = json_string_value(json_object_get(rec, "arn"));
		const char *machine = json_string_value(json_object_get(rec, "machine"));
		const char *tc = json_string_value(json_object_get(rec, "testCase"));
		json_t *d = NULL;
		struct sl_error err;
		sl_error_clear(&err);
		const char *status = NULL;
		if (arn && machine && tc && step_describe(e->step, txn, arn, &d, &err) == SL_OK)
			status = json_string_value(json_object_get(d, "status"));
		if (!status || strcmp(status, "RUNNING") != 0) {
			rc = store_cursor_del(c);
		} else {
			rc = srv_engine_mock_restore(e, arn, arn, machine, tc);
		}
		json_decref(d);
		json_decref(rec);
	}
	store_cursor_close(c);
	return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
}

static void
mock_queue(srv_engine_t *e, const struct step_task *t)
{
	struct mtask *q = SL_NEW(struct mtask);
	if (!q || !(q->arn = sl_strdup(t->execution_arn))
	    || !(q->state = sl_strdup(t->state_name))) {
		if (q)
			sl_free(q->arn);
		sl_free(q);
		sl_errorf("engine", "out of memory: mocked task %s is not answered", t->token);
		return;
	}
	snprintf(q->token, sizeof q->token, "%s", t->token);
	if (e->mq_tail)
		e->mq_tail->next = q;
	else
		e->mq_head = q;
	e->mq_tail = q;
	event_active(e->mock_ev, EV_TIMEOUT, 0);
}

/* Answers one mocked task as Step Functions Local does: the test case's response for this
 * attempt of the state, or States.Runtime when it gives none. */
static sl_err
mock_answer(srv_engine_t *e, store_batch_t *b, const struct mtask *q, struct sl_error *err)
{
	struct mrun *m = mfind(e->root, q->arn);
	if (!m)
		return SL_OK; // the execution ended meanwhile
	unsigned attempt = (unsigned)json_integer_value(json_object_get(m->attempts, q->state));
	json_object_set_new(m->attempts, q->state, json_integer(attempt + 1));
	struct step_started st;
	sl_err rc = step_task_started(e->step, b, q->token, "mock", &e->fx, &st, err);
	if (rc != SL_OK)
		return rc;
	json_decref(st.input);
	json_t *ret = NULL;
	const char *error = NULL, *cause = NULL;
	if (step_mock_response(m->mock, q->state, attempt, &ret, &error, &cause) != SL_OK) {
		char msg[300];
		snprintf(msg, sizeof msg, "no mocked response for attempt %u of state '%.200s'",
		         attempt, q->state);
		return step_task_fail(e->step, b, q->token, "States.Runtime", msg, &e->fx, err);
	}
	if (error)
		return step_task_fail(e->step, b, q->token, error, cause, &e->fx, err);
	return step_task_succeed(e->step, b, q->token, ret, &e->fx, err);
}

static void
on_mock(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_engine_t *e = arg;
	while (e->mq_head && !e->srv->stopped) {
		struct mtask *q = e->mq_head;
		e->mq_head = q->next;
		if (!e->mq_head)
			e->mq_tail = NULL;
		store_batch_t *b = NULL;
		struct sl_error err;
		sl_error_clear(&err);
		sl_err rc = srv_engine_batch(e, &b);
		if (rc == SL_OK && (rc = store_savepoint_begin(b)) == SL_OK) {
			rc = mock_answer(e, b, q, &err);
			if (rc == SL_OK)
				rc = store_savepoint_release(b);
			else
				store_savepoint_rollback(b);
		}
		if (rc != SL_OK && rc != SL_ERR_TASK_NOT_FOUND)
			sl_errorf("engine", "mocked task %s of %s: %s", q->token, q->arn,
			          err.code ? sl_error_text(&err) : sl_err_message(rc));
		sl_free(q->arn);
		sl_free(q->state);
		sl_free(q);
	}
	srv_engine_kick(e);
}

/* ---- effects -------------------------------------------------------------------------- */

static void
on_task(void *arg, const struct step_task *t)
{
	srv_engine_t *e = arg;
	srv_engine_t *root = e->root;
	if (mfind(root, t->execution_arn)) {
		mock_queue(e, t);
		return;
	}
	root->tasks_waiting++;
	sl_debug("engine", "task for '%s' in %s waits for a worker (%s)", t->state_name,
	         t->execution_arn, t->resource);
	// the record is in the open batch: the dispatcher queues it once that commits
	if (root->dispatch && e->replaying)
		srv_dispatch_task_replayed(root->dispatch, t);
	else if (root->dispatch)
		srv_dispatch_task_effect(root->dispatch, t);
}

static void
on_timer_fx(void *arg, int64_t due_ms)
{
	arm(arg, due_ms);
}

void
srv_engine_set_status_hook(srv_engine_t *e, srv_engine_status_fn fn, void *arg)
{
	e->on_status = fn;
	e->on_status_arg = arg;
}

static void
on_status(void *arg, const struct step_status_change *sc)
{
	srv_engine_t *e = arg;
	if (!e->on_status)
		return;
	store_batch_t *b = NULL;
	sl_err rc = srv_batch(e->srv, &b);
	if (rc == SL_OK && (rc = store_savepoint_begin(b)) == SL_OK) {
		if ((rc = e->on_status(e->on_status_arg, b, sc)) == SL_OK)
			rc = store_savepoint_release(b);
		else
			store_savepoint_rollback(b);
	}
	// the transition stays committed: a lost notification must not undo an execution
	if (rc != SL_OK)
		sl_warn("engine", "status change of %s not published: %s", sc->execution_arn,
		        sl_err_message(rc));
}

static void
on_finished(void *arg, const struct step_finished *f)
{
	srv_engine_t *e = arg;
	sl_info("engine", "%s %s", f->execution_arn, step_status_name(f->status));
	if (!e->scratch && mfind(e->root, f->execution_arn)) {
		// the end's batch also forgets the durable association
		store_batch_t *b = NULL;
		struct store_key k;
		mock_key(&k, f->execution_arn);
		sl_err rc = srv_batch(e->srv, &b);
		if (rc == SL_OK)
			rc = store_del(store_batch_txn(b), STORE_DB_EXECUTIONS, k.buf, k.len);
		if (rc != SL_OK)
			sl_warn("engine", "the test case of %s is not forgotten: %s",
			        f->execution_arn, sl_err_message(rc));
	}
	srv_engine_mock_drop(e->root, f->execution_arn);
	if (e->scratch)
		srv_express_finished(e, f);
}

/* ---- tasks, routed -------------------------------------------------------------------- */

/* The engine that awaits token: the express one when its scratch store knows the token. */
static srv_engine_t *
owner(srv_t *s, const char *token, struct step_task_info *xi)
{
	srv_engine_t *e = srv_engine_of(s);
	if (!e || !e->x)
		return e;
	srv_engine_t *x = e->x;
	store_batch_t *xb = store_batch_current(x->scratch);
	store_txn_t *txn = xb ? store_batch_txn(xb) : NULL;
	bool reader = false;
	if (!txn) {
		if (store_read_begin(x->scratch, &txn) != SL_OK)
			return e;
		reader = true;
	}
	struct step_task_info ti;
	bool mine = step_task_info(x->step, txn, token, &ti) == SL_OK && ti.state != STEP_TASK_GONE;
	if (reader)
		store_read_end(txn);
	if (mine && xi)
		*xi = ti;
	return mine ? x : e;
}

sl_err
srv_engine_task_info(srv_t *s, store_txn_t *txn, const char *token, struct step_task_info *out)
{
	srv_engine_t *o = owner(s, token, out);
	if (!o)
		return SL_ERR_INTERNAL;
	return o->scratch ? SL_OK : step_task_info(o->step, txn, token, out);
}

enum tcall { T_STARTED, T_SUCCEED, T_FAIL, T_HEARTBEAT };

struct targs {
	const char *token, *worker, *error, *cause;
	json_t *output;
	struct step_started *started;
};

static sl_err
tcall(srv_engine_t *o, store_batch_t *b, enum tcall what, const struct targs *a,
      struct sl_error *err)
{
	switch (what) {
	case T_STARTED:
		return step_task_started(o->step, b, a->token, a->worker, &o->fx, a->started, err);
	case T_SUCCEED: return step_task_succeed(o->step, b, a->token, a->output, &o->fx, err);
	case T_FAIL: return step_task_fail(o->step, b, a->token, a->error, a->cause, &o->fx, err);
	case T_HEARTBEAT: return step_task_heartbeat(o->step, b, a->token, &o->fx, err);
	}
	return SL_ERR_INTERNAL;
}

/* Runs one task input on the engine that awaits the token; the express engine's writes go
 * in its scratch batch under a savepoint of their own. */
static sl_err
routed(srv_t *s, store_batch_t *b, enum tcall what, const struct targs *a, struct sl_error *err)
{
	srv_engine_t *o = owner(s, a->token, NULL);
	if (!o)
		return sl_error_set(err, SL_ERR_INTERNAL, "this server runs no executions");
	if (!o->scratch)
		return tcall(o, b, what, a, err);
	store_batch_t *xb = NULL;
	sl_err rc = srv_engine_batch(o, &xb);
	if (rc == SL_OK && (rc = store_savepoint_begin(xb)) == SL_OK) {
		if ((rc = tcall(o, xb, what, a, err)) == SL_OK)
			rc = store_savepoint_release(xb);
		else
			store_savepoint_rollback(xb);
	}
	if (rc == SL_OK)
		srv_engine_kick(o);
	return rc;
}

sl_err
srv_engine_task_started(srv_t *s, store_batch_t *b, const char *token, const char *worker_name,
                        struct step_started *out, struct sl_error *err)
{
	struct targs a = { .token = token, .worker = worker_name, .started = out };
	return routed(s, b, T_STARTED, &a, err);
}

sl_err
srv_engine_task_succeed(srv_t *s, store_batch_t *b, const char *token, json_t *output,
                        struct sl_error *err)
{
	struct targs a = { .token = token, .output = output };
	return routed(s, b, T_SUCCEED, &a, err);
}

sl_err
srv_engine_task_fail(srv_t *s, store_batch_t *b, const char *token, const char *error,
                     const char *cause, struct sl_error *err)
{
	struct targs a = { .token = token, .error = error, .cause = cause };
	return routed(s, b, T_FAIL, &a, err);
}

sl_err
srv_engine_task_heartbeat(srv_t *s, store_batch_t *b, const char *token, struct sl_error *err)
{
	struct targs a = { .token = token };
	return routed(s, b, T_HEARTBEAT, &a, err);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

sl_err
srv_engine_init_common(srv_engine_t *e, srv_t *s, srv_engine_t *root, store_t *st, bool express)
{
	e->srv = s;
	e->root = root ? root : e;
	e->armed_due = INT64_MAX;
	e->fx = (struct step_effects) { .arg = e,
		                        .task = on_task,
		                        .timer = on_timer_fx,
		                        .finished = on_finished,
		                        // AWS sends status-change events for STANDARD only
		                        .status = express ? NULL : on_status };
	// tasks are Started when a worker takes them (srv_dispatch.c)
	struct step_options opt = { .lease_tasks = true,
		                    .item_reader_root = s->cfg.item_reader_root,
		                    .no_history = express };
	sl_err rc = step_engine_new(st, &opt, &e->step);
	if (rc != SL_OK)
		return rc;
	step_engine_set_resolver(e->step, resolve, e);
	e->run_ev = evtimer_new(srv_base(s), on_run, e);
	e->timer_ev = evtimer_new(srv_base(s), on_timer, e);
	e->mock_ev = event_new(srv_base(s), -1, 0, on_mock, e);
	if (!e->run_ev || !e->timer_ev || !e->mock_ev)
		return SL_ERR_NOMEM;
	// engine work yields to requests and runs before the group commit
	event_priority_set(e->run_ev, SRV_PRIO_NORMAL);
	event_priority_set(e->timer_ev, SRV_PRIO_NORMAL);
	event_priority_set(e->mock_ev, SRV_PRIO_NORMAL);
	return SL_OK;
}

void
srv_engine_clear_common(srv_engine_t *e)
{
	if (e->run_ev)
		event_free(e->run_ev);
	if (e->timer_ev)
		event_free(e->timer_ev);
	if (e->mock_ev)
		event_free(e->mock_ev);
	while (e->mq_head) {
		struct mtask *q = e->mq_head;
		e->mq_head = q->next;
		sl_free(q->arn);
		sl_free(q->state);
		sl_free(q);
	}
	step_engine_free(e->step);
}

/* --mock-config: read once at start; each execution parses its test case from it. */
static sl_err
mock_config_load(srv_engine_t *e, struct sl_error *err)
{
	const char *path = e->srv->cfg.mock_config;
	if (!path)
		return SL_OK;
	json_error_t je;
	e->mock_doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!e->mock_doc && je.line > 0)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "--mock-config %s: %s (line %d)", path,
		                    je.text, je.line);
	if (!e->mock_doc)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "--mock-config: %s", je.text);
	if (!json_is_object(json_object_get(e->mock_doc, "StateMachines")))
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "--mock-config %s: expected an object with StateMachines and "
		                    "MockedResponses (Step Functions Local's MockConfigFile)",
		                    path);
	return SL_OK;
}

sl_err
srv_engine_new(srv_t *s, srv_engine_t **out, struct sl_error *err)
{
	srv_engine_t *e = SL_NEW(srv_engine_t);
	if (!e)
		return SL_ERR_NOMEM;
	e->next = engines;
	engines = e;
	sl_err rc = srv_engine_init_common(e, s, NULL, srv_store(s), false);
	if (rc != SL_OK) {
		srv_engine_free(e);
		return sl_error_set(err, rc, "cannot create the execution engine");
	}
	if ((rc = mock_config_load(e, err)) != SL_OK || (rc = srv_express_new(e, err)) != SL_OK) {
		if (err && err->code == SL_OK)
			sl_error_set(err, rc, "cannot create the EXPRESS engine");
		srv_engine_free(e);
		return rc;
	}
	if ((rc = srv_dispatch_new(s, e->step, &e->fx, &e->dispatch, err)) != SL_OK
	    || (rc = srv_api_tasks_register(s)) != SL_OK) {
		if (err && err->code == SL_OK)
			sl_error_set(err, rc, "cannot start task dispatch");
		srv_engine_free(e);
		return rc;
	}
	store_batch_t *b = NULL;
	if ((rc = srv_batch(s, &b)) == SL_OK && (rc = step_engine_recover(e->step, b, err)) == SL_OK
	    && (rc = mock_recover(e, b)) == SL_OK) {
		e->replaying = true;
		rc = step_tasks_replay(e->step, store_batch_txn(b), &e->fx, err);
		e->replaying = false;
	}
	if (rc == SL_OK)
		rc = srv_express_recover(e, b, err);
	if (rc != SL_OK) {
		if (err && err->code == SL_OK)
			sl_error_set(err, rc, "cannot recover executions");
		srv_engine_free(e);
		return rc;
	}
	if (e->tasks_waiting)
		sl_info("engine", "%llu task(s) in flight wait for workers",
		        (unsigned long long)e->tasks_waiting);
	rearm_from(e, store_batch_txn(b));
	srv_engine_kick(e);
	*out = e;
	return SL_OK;
}

void
srv_engine_free(srv_engine_t *e)
{
	if (!e)
		return;
	for (srv_engine_t **p = &engines; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	srv_dispatch_free(e->dispatch);
	srv_express_free(e->x);
	srv_engine_clear_common(e);
	for (size_t i = 0; i < e->n_mc; i++) {
		sl_free(e->mc[i].name);
		sm_machine_free(e->mc[i].m);
	}
	sl_free(e->mc);
	for (size_t i = 0; i < XBUCKETS; i++)
		while (e->mr[i])
			srv_engine_mock_drop(e, e->mr[i]->arn);
	json_decref(e->mock_doc);
	sl_free(e);
}
