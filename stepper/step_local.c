/*
 * step_local.c - one execution driven to its end in-process (see step_local.h).
 */
#include <string.h>
#include <time.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "stepper/step_local.h"

struct pending {
	char token[STEP_TOKEN_LEN + 1];
	char *state;
};

struct local {
	struct pending *tasks;
	size_t n, cap;
	bool finished;
	bool nomem;
	struct step_local_result *res;
	json_t *attempts; /* state name -> calls so far */
	const char *arn;  /* the execution run; a distributed Map's children end on their own */
};

static void
on_task(void *arg, const struct step_task *t)
{
	struct local *l = arg;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		void *n = sl_reallocarray(l->tasks, ncap, sizeof *l->tasks);
		if (!n) {
			l->nomem = true;
			return;
		}
		l->tasks = n;
		l->cap = ncap;
	}
	struct pending *p = &l->tasks[l->n];
	snprintf(p->token, sizeof p->token, "%s", t->token);
	if (!(p->state = sl_strdup(t->state_name))) {
		l->nomem = true;
		return;
	}
	l->n++;
}

static void
on_finished(void *arg, const struct step_finished *f)
{
	struct local *l = arg;
	if (l->arn && l->arn[0] && strcmp(f->execution_arn, l->arn) != 0)
		return;
	l->finished = true;
	l->res->status = f->status;
	l->res->output = f->output ? json_deep_copy(f->output) : NULL;
	l->res->error = f->error ? sl_strdup(f->error) : NULL;
	l->res->cause = f->cause ? sl_strdup(f->cause) : NULL;
}

static sl_err
answer_tasks(step_engine_t *eng, store_batch_t *b, struct local *l,
             const struct step_local_options *opt, const struct step_effects *fx,
             struct sl_error *err)
{
	sl_err e = SL_OK;
	size_t i = 0;
	for (; i < l->n && e == SL_OK; i++) {
		struct pending *p = &l->tasks[i];
		unsigned attempt
		        = (unsigned)json_integer_value(json_object_get(l->attempts, p->state));
		json_object_set_new(l->attempts, p->state, json_integer(attempt + 1));
		json_t *ret = NULL;
		const char *error = NULL, *cause = NULL;
		if (!opt->mock
		    || step_mock_response(opt->mock, p->state, attempt, &ret, &error, &cause)
		            != SL_OK) {
			e = sl_error_set(err, SL_ERR_NOT_FOUND,
			                 "Task state '%s' has no mocked response for attempt %u "
			                 "(give one with --mock)",
			                 p->state, attempt);
			break;
		}
		if (error)
			e = step_task_fail(eng, b, p->token, error, cause, fx, err);
		else
			e = step_task_succeed(eng, b, p->token, ret, fx, err);
		// the task may have been cancelled meanwhile (timeout, a sibling failed)
		if (e == SL_ERR_TASK_NOT_FOUND) {
			sl_error_clear(err);
			e = SL_OK;
		}
	}
	for (size_t j = 0; j < l->n; j++)
		sl_free(l->tasks[j].state);
	l->n = 0;
	return e;
}

static void
sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

sl_err
step_local_run(store_t *st, const struct sm_machine *machine, const char *name, json_t *input,
               const struct step_local_options *opt, struct step_local_result *out,
               struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	struct local l = { .res = out };
	if (!(l.attempts = json_object()))
		return SL_ERR_NOMEM;
	if (opt->virtual_time && !sl_clock_is_fake())
		sl_clock_fake_enable(sl_clock_now_ms());
	step_engine_t *eng = NULL;
	sl_err e = step_engine_new(st, opt->engine, &eng);
	if (e == SL_OK)
		e = step_engine_add_machine(eng, name, machine);
	struct step_effects fx = { .arg = &l, .task = on_task, .finished = on_finished };
	store_batch_t *b = NULL;
	char arn[STEP_ARN_MAX] = "";
	l.arn = arn;
	if (e == SL_OK && (e = store_batch_get(st, &b)) == SL_OK) {
		struct step_start req = { .machine = name, .name = "run", .input = input };
		e = step_start(eng, b, &req, arn, &fx, err);
	}
	if (e == SL_OK)
		e = store_batch_commit(st);
	while (e == SL_OK && !l.finished) {
		if ((e = store_batch_get(st, &b)) != SL_OK)
			break;
		if (step_engine_has_ready(eng)) {
			e = step_run_ready(eng, b, &fx, NULL, err);
		} else if (l.n > 0) {
			e = answer_tasks(eng, b, &l, opt, &fx, err);
		} else {
			unsigned fired = 0;
			e = step_fire_timers(eng, b, sl_clock_now_ms(), 0, &fx, &fired, err);
			int64_t due = 0;
			if (e == SL_OK && fired == 0 && !step_engine_has_ready(eng) && l.n == 0) {
				e = step_next_timer(eng, store_batch_txn(b), &due);
				if (e == SL_ERR_NOT_FOUND) {
					e = sl_error_set(
					        err, SL_ERR_INTERNAL,
					        "execution '%s' is stuck: nothing to run, no task, "
					        "no timer",
					        arn);
				} else if (e == SL_OK) {
					if (opt->virtual_time)
						sl_clock_fake_set(due);
					else
						sleep_ms(due - sl_clock_now_ms());
				}
			}
		}
		if (l.nomem && e == SL_OK)
			e = SL_ERR_NOMEM;
		sl_err ce = store_batch_commit(st);
		if (e == SL_OK)
			e = ce;
	}
	if (e == SL_OK && opt->want_history) {
		store_txn_t *txn = NULL;
		if ((e = store_read_begin(st, &txn)) == SL_OK) {
			e = step_history(eng, txn, arn, &out->history, err);
			store_read_end(txn);
		}
	}
	for (size_t j = 0; j < l.n; j++)
		sl_free(l.tasks[j].state);
	sl_free(l.tasks);
	json_decref(l.attempts);
	step_engine_free(eng);
	if (e != SL_OK && err && err->code == SL_OK)
		sl_error_set(err, e, "running the execution failed");
	return e;
}

void
step_local_result_clear(struct step_local_result *r)
{
	json_decref(r->output);
	json_decref(r->history);
	sl_free(r->error);
	sl_free(r->cause);
	memset(r, 0, sizeof *r);
}
