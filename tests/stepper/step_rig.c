/*
 * step_rig.c - see step_rig.h.
 */
#include "tests/stepper/step_rig.h"

static void
fx_status(void *arg, const struct step_status_change *s)
{
	struct rig *r = arg;
	if (s->status == STEP_RUNNING) {
		r->status_running++;
		cr_expect_eq(s->stop_ms, 0);
	} else {
		r->status_ended++;
		cr_expect_geq(s->stop_ms, s->start_ms);
	}
	cr_expect(s->state_machine_arn && strstr(s->state_machine_arn, ":stateMachine:"));
	char *in = s->input ? json_dumps(s->input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	snprintf(r->last_status_input, sizeof r->last_status_input, "%s", in ? in : "");
	free(in);
}

static void
fx_task(void *arg, const struct step_task *t)
{
	struct rig *r = arg;
	cr_assert_lt(r->n_tasks, 256);
	snprintf(r->tokens[r->n_tasks], sizeof r->tokens[0], "%s", t->token);
	snprintf(r->states[r->n_tasks], sizeof r->states[0], "%s", t->state_name);
	r->n_tasks++;
	r->open_tasks++;
	if (r->open_tasks > r->max_open_tasks)
		r->max_open_tasks = r->open_tasks;
}

static void
fx_timer(void *arg, int64_t due)
{
	struct rig *r = arg;
	if (r->n_timers < 256)
		r->timers[r->n_timers++] = due;
}

static void
fx_finished(void *arg, const struct step_finished *f)
{
	struct rig *r = arg;
	// a distributed Map's child executions ("...:execution:m/label:id") end on their own
	const char *x = strstr(f->execution_arn, ":execution:");
	if (x && strchr(x + 11, '/'))
		return;
	r->finished = true;
	r->status = f->status;
	snprintf(r->error, sizeof r->error, "%s", f->error ? f->error : "");
}

static void
rig_open_engine(struct rig *r)
{
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(store_open(r->dir, NULL, &r->st, &err), SL_OK, "%s", sl_error_text(&err));
	struct step_options o
	        = { .jitter_seed = 1, .item_reader_root = r->item_root[0] ? r->item_root : NULL };
	cr_assert_eq(step_engine_new(r->st, &o, &r->eng), SL_OK);
	cr_assert_eq(step_engine_add_machine(r->eng, "m", r->m), SL_OK);
	store_batch_t *b;
	cr_assert_eq(store_batch_get(r->st, &b), SL_OK);
	cr_assert_eq(step_engine_recover(r->eng, b, &err), SL_OK, "%s", sl_error_text(&err));
	cr_assert_eq(store_batch_commit(r->st), SL_OK);
}

void
rig_init(struct rig *r, const char *def)
{
	memset(r, 0, sizeof *r);
	snprintf(r->dir, sizeof r->dir, "/tmp/step-eng-XXXXXX");
	cr_assert(mkdtemp(r->dir));
	sl_clock_fake_enable(T0);
	r->m = step_test_compile(def);
	r->fx = (struct step_effects) { .arg = r,
		                        .task = fx_task,
		                        .timer = fx_timer,
		                        .finished = fx_finished,
		                        .status = fx_status };
	rig_open_engine(r);
}

void
rig_init_root(struct rig *r, const char *def, const char *root)
{
	rig_init(r, def);
	snprintf(r->item_root, sizeof r->item_root, "%s", root);
	rig_restart(r); // the engine again, with the root
}

void
rig_restart(struct rig *r)
{
	store_batch_abort(r->st, SL_ERR_SHUTTING_DOWN);
	step_engine_free(r->eng);
	store_free(r->st);
	rig_open_engine(r);
}

void
rig_free(struct rig *r)
{
	step_engine_free(r->eng);
	store_free(r->st);
	sm_machine_free(r->m);
	step_test_rmtree(r->dir);
}

store_batch_t *
rig_batch(struct rig *r)
{
	store_batch_t *b = NULL;
	cr_assert_eq(store_batch_get(r->st, &b), SL_OK);
	return b;
}

void
rig_settle(struct rig *r)
{
	struct sl_error err;
	sl_error_clear(&err);
	for (int i = 0; i < 10000; i++) {
		store_batch_t *b = rig_batch(r);
		unsigned fired = 0;
		cr_assert_eq(
		        step_fire_timers(r->eng, b, sl_clock_now_ms(), 0, &r->fx, &fired, &err),
		        SL_OK, "%s", sl_error_text(&err));
		bool ran = step_engine_has_ready(r->eng);
		cr_assert_eq(step_run_ready(r->eng, b, &r->fx, NULL, &err), SL_OK, "%s",
		             sl_error_text(&err));
		cr_assert_eq(store_batch_commit(r->st), SL_OK);
		if (!fired && !ran)
			return;
	}
	cr_assert_fail("engine did not settle");
}

char *
rig_start(struct rig *r, const char *name, const char *input)
{
	static char arn[STEP_ARN_MAX];
	struct sl_error err;
	sl_error_clear(&err);
	json_t *in = input ? step_test_json(input) : NULL;
	struct step_start req = { .machine = "m", .name = name, .input = in };
	cr_assert_eq(step_start(r->eng, rig_batch(r), &req, arn, &r->fx, &err), SL_OK, "%s",
	             sl_error_text(&err));
	json_decref(in);
	cr_assert_eq(store_batch_commit(r->st), SL_OK);
	rig_settle(r);
	return arn;
}

json_t *
rig_history(struct rig *r, const char *arn)
{
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	json_t *h = NULL;
	cr_assert_eq(step_history(r->eng, txn, arn, &h, NULL), SL_OK);
	store_read_end(txn);
	return h;
}

void
rig_answer(struct rig *r, int task, bool ok, const char *output)
{
	struct sl_error err;
	sl_error_clear(&err);
	sl_err e;
	if (ok) {
		json_t *o = step_test_json(output);
		e = step_task_succeed(r->eng, rig_batch(r), r->tokens[task], o, &r->fx, &err);
		json_decref(o);
	} else {
		e = step_task_fail(r->eng, rig_batch(r), r->tokens[task], "Boom", "it broke",
		                   &r->fx, &err);
	}
	cr_assert_eq(e, SL_OK, "%s", sl_error_text(&err));
	cr_assert_eq(store_batch_commit(r->st), SL_OK);
	r->open_tasks--;
	rig_settle(r);
}

size_t
rig_count_type(json_t *h, const char *type)
{
	size_t n = 0, i;
	json_t *ev;
	json_array_foreach(h, i, ev)
	{
		const char *t = json_string_value(json_object_get(ev, "type"));
		n += t && strcmp(t, type) == 0;
	}
	return n;
}
