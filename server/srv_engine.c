/*
 * srv_engine.c - drives the stepper from the server loop (see srv_engine.h).
 */
#include <event2/event.h>
#include <stdint.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_log.h"
#include "server/srv_api.h"
#include "server/srv_dispatch.h"
#include "server/srv_engine.h"
#include "server/srv_internal.h"
#include "statemachines/statemachines.h"

/* Timers fired per loop iteration: a burst of due timers must not stall HTTP. */
#define FIRE_SLICE 256

struct compiled {
	char *name;
	uint32_t revision;
	struct sm_machine *m;
};

struct srv_engine {
	srv_t *srv;
	step_engine_t *step;
	struct step_effects fx;
	struct event *run_ev;   /* a zero timeout: the next slice of runnable frames */
	struct event *timer_ev; /* the earliest durable timer */
	int64_t armed_due;      /* INT64_MAX when timer_ev is not armed */
	struct compiled *mc;
	size_t n_mc, cap_mc;
	uint64_t tasks_waiting;
	srv_dispatch_t *dispatch;
	bool replaying; /* step_tasks_replay at start: the records are committed */
	srv_engine_status_fn on_status;
	void *on_status_arg;
	srv_engine_t *next;
};

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
	struct sl_error err;
	sl_error_clear(&err);
	const struct sm_machine *m = NULL;
	if (srv_engine_machine(e, txn, name, revision, &m, &err) != SL_OK) {
		sl_warn("engine", "machine '%s' revision %u: %s", name, *revision,
		        sl_error_text(&err));
		return NULL;
	}
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
	sl_err rc = srv_batch(e->srv, &b);
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
	sl_err rc = srv_batch(e->srv, &b);
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
	evtimer_del(e->timer_ev);
	e->armed_due = INT64_MAX;
	arm(e, sl_clock_now_ms());
}

/* ---- effects -------------------------------------------------------------------------- */

static void
on_task(void *arg, const struct step_task *t)
{
	srv_engine_t *e = arg;
	e->tasks_waiting++;
	sl_debug("engine", "task for '%s' in %s waits for a worker (%s)", t->state_name,
	         t->execution_arn, t->resource);
	// the record is in the open batch: the dispatcher queues it once that commits
	if (e->dispatch && e->replaying)
		srv_dispatch_task_replayed(e->dispatch, t);
	else if (e->dispatch)
		srv_dispatch_task_effect(e->dispatch, t);
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
	(void)arg;
	sl_info("engine", "%s %s", f->execution_arn, step_status_name(f->status));
}

/* ---- lifecycle ------------------------------------------------------------------------ */

sl_err
srv_engine_new(srv_t *s, srv_engine_t **out, struct sl_error *err)
{
	srv_engine_t *e = SL_NEW(srv_engine_t);
	if (!e)
		return SL_ERR_NOMEM;
	e->srv = s;
	e->armed_due = INT64_MAX;
	e->fx = (struct step_effects) { .arg = e,
		                        .task = on_task,
		                        .timer = on_timer_fx,
		                        .finished = on_finished,
		                        .status = on_status };
	// tasks are Started when a worker takes them (srv_dispatch.c)
	struct step_options opt
	        = { .lease_tasks = true, .item_reader_root = s->cfg.item_reader_root };
	sl_err rc = step_engine_new(srv_store(s), &opt, &e->step);
	if (rc != SL_OK) {
		sl_free(e);
		return sl_error_set(err, rc, "cannot create the execution engine");
	}
	step_engine_set_resolver(e->step, resolve, e);
	e->run_ev = evtimer_new(srv_base(s), on_run, e);
	e->timer_ev = evtimer_new(srv_base(s), on_timer, e);
	e->next = engines;
	engines = e;
	if (!e->run_ev || !e->timer_ev) {
		srv_engine_free(e);
		return sl_error_set(err, SL_ERR_NOMEM, "cannot create the engine's events");
	}
	// engine work yields to requests and runs before the group commit
	event_priority_set(e->run_ev, SRV_PRIO_NORMAL);
	event_priority_set(e->timer_ev, SRV_PRIO_NORMAL);
	if ((rc = srv_dispatch_new(s, e->step, &e->fx, &e->dispatch, err)) != SL_OK
	    || (rc = srv_api_tasks_register(s)) != SL_OK) {
		if (err && err->code == SL_OK)
			sl_error_set(err, rc, "cannot start task dispatch");
		srv_engine_free(e);
		return rc;
	}
	store_batch_t *b = NULL;
	if ((rc = srv_batch(s, &b)) == SL_OK
	    && (rc = step_engine_recover(e->step, b, err)) == SL_OK) {
		e->replaying = true;
		rc = step_tasks_replay(e->step, store_batch_txn(b), &e->fx, err);
		e->replaying = false;
	}
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
	if (e->run_ev)
		event_free(e->run_ev);
	if (e->timer_ev)
		event_free(e->timer_ev);
	srv_dispatch_free(e->dispatch);
	step_engine_free(e->step);
	for (size_t i = 0; i < e->n_mc; i++) {
		sl_free(e->mc[i].name);
		sm_machine_free(e->mc[i].m);
	}
	sl_free(e->mc);
	sl_free(e);
}
