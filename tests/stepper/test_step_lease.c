/*
 * test_step_lease.c - step_task_started and step_task_info (stepper/step_lease.c): with
 * lease_tasks a worker task is only Scheduled until a worker takes it; taking it writes
 * ActivityStarted with the worker's name and starts the heartbeat clock; a task is taken
 * once; without lease_tasks the history keeps Scheduled+Started at once.
 */
#include "tests/stepper/step_test_util.h"

#define T0 1700000000000LL

#define DEF                                                                                        \
	"{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"activity:work\","  \
	"\"HeartbeatSeconds\":5,\"TimeoutSeconds\":100,\"End\":true}}}"

struct rig {
	char dir[64];
	store_t *st;
	step_engine_t *eng;
	struct sm_machine *m;
	char token[STEP_TOKEN_LEN + 1];
	bool finished;
	char error[128];
	struct step_effects fx;
};

static void
fx_task(void *arg, const struct step_task *t)
{
	struct rig *r = arg;
	snprintf(r->token, sizeof r->token, "%s", t->token);
}

static void
fx_finished(void *arg, const struct step_finished *f)
{
	struct rig *r = arg;
	r->finished = true;
	snprintf(r->error, sizeof r->error, "%s", f->error ? f->error : "");
}

static void
rig_init(struct rig *r, bool lease)
{
	memset(r, 0, sizeof *r);
	snprintf(r->dir, sizeof r->dir, "/tmp/step-lease-XXXXXX");
	cr_assert(mkdtemp(r->dir));
	sl_clock_fake_enable(T0);
	r->m = step_test_compile(DEF);
	r->fx = (struct step_effects) { .arg = r, .task = fx_task, .finished = fx_finished };
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(store_open(r->dir, NULL, &r->st, &err), SL_OK, "%s", sl_error_text(&err));
	struct step_options o = { .jitter_seed = 1, .lease_tasks = lease };
	cr_assert_eq(step_engine_new(r->st, &o, &r->eng), SL_OK);
	cr_assert_eq(step_engine_add_machine(r->eng, "m", r->m), SL_OK);
	store_batch_t *b;
	cr_assert_eq(store_batch_get(r->st, &b), SL_OK);
	struct step_start req = { .machine = "m", .name = "e1" };
	cr_assert_eq(step_start(r->eng, b, &req, NULL, &r->fx, &err), SL_OK, "%s",
	             sl_error_text(&err));
	cr_assert_eq(step_run_ready(r->eng, b, &r->fx, NULL, &err), SL_OK, "%s",
	             sl_error_text(&err));
	cr_assert_eq(store_batch_commit(r->st), SL_OK);
	cr_assert_eq(strlen(r->token), STEP_TOKEN_LEN);
}

static void
rig_free(struct rig *r)
{
	step_engine_free(r->eng);
	store_free(r->st);
	sm_machine_free(r->m);
	step_test_rmtree(r->dir);
	sl_clock_fake_disable();
}

static size_t
count(struct rig *r, const char *type, json_t **last)
{
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	json_t *h = NULL;
	cr_assert_eq(step_history(r->eng, txn,
	                          "arn:aws:states:us-east-1:000000000000:execution:m:e1", &h, NULL),
	             SL_OK);
	store_read_end(txn);
	size_t n = 0, i;
	json_t *e;
	json_array_foreach(h, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "type")), type) == 0) {
			n++;
			if (last) {
				json_decref(*last);
				*last = json_incref(e);
			}
		}
	}
	json_decref(h);
	return n;
}

static void
fire(struct rig *r)
{
	store_batch_t *b;
	cr_assert_eq(store_batch_get(r->st, &b), SL_OK);
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_fire_timers(r->eng, b, sl_clock_now_ms(), 0, &r->fx, NULL, &err), SL_OK);
	cr_assert_eq(step_run_ready(r->eng, b, &r->fx, NULL, &err), SL_OK);
	cr_assert_eq(store_batch_commit(r->st), SL_OK);
}

static enum step_task_state
state_of(struct rig *r, const char *token)
{
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	struct step_task_info ti;
	cr_assert_eq(step_task_info(r->eng, txn, token, &ti), SL_OK);
	store_read_end(txn);
	if (ti.state != STEP_TASK_GONE) {
		cr_assert_eq(ti.kind, SM_RESOURCE_ACTIVITY);
		cr_assert_str_eq(ti.name, "work");
	}
	return ti.state;
}

Test(step_lease, a_task_is_started_by_its_worker_and_its_heartbeat_counts_from_there)
{
	struct rig r;
	rig_init(&r, true);
	cr_assert_eq(count(&r, "ActivityScheduled", NULL), 1);
	cr_assert_eq(count(&r, "ActivityStarted", NULL), 0);
	cr_assert_eq(state_of(&r, r.token), STEP_TASK_WAITING);
	/* nobody took it: no heartbeat deadline yet (only TimeoutSeconds runs) */
	sl_clock_fake_advance(20000);
	fire(&r);
	cr_assert(!r.finished);

	store_batch_t *b;
	cr_assert_eq(store_batch_get(r.st, &b), SL_OK);
	struct sl_error err;
	sl_error_clear(&err);
	struct step_started st;
	cr_assert_eq(step_task_started(r.eng, b, r.token, "w1", &r.fx, &st, &err), SL_OK, "%s",
	             sl_error_text(&err));
	cr_assert_eq(st.heartbeat_seconds, 5);
	cr_assert_eq(st.timeout_seconds, 100);
	cr_assert(json_is_object(st.input));
	json_decref(st.input);
	/* taken once; an unknown token is not awaited */
	cr_assert_eq(step_task_started(r.eng, b, r.token, "w2", &r.fx, NULL, &err),
	             SL_ERR_CONFLICT);
	cr_assert_eq(step_task_started(r.eng, b, "0123456789abcdef0123456789abcdef", "w2", &r.fx,
	                               NULL, &err),
	             SL_ERR_TASK_NOT_FOUND);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	cr_assert_eq(state_of(&r, r.token), STEP_TASK_TAKEN);
	json_t *ev = NULL;
	cr_assert_eq(count(&r, "ActivityStarted", &ev), 1);
	cr_assert_str_eq(json_string_value(json_object_get(
	                         json_object_get(ev, "activityStartedEventDetails"), "workerName")),
	                 "w1");
	json_decref(ev);

	/* 4 s after the start: alive; 6 s: the heartbeat was missed */
	sl_clock_fake_advance(4000);
	fire(&r);
	cr_assert(!r.finished);
	sl_clock_fake_advance(2000);
	fire(&r);
	cr_assert(r.finished);
	cr_assert_str_eq(r.error, "States.HeartbeatTimeout");
	cr_assert_eq(state_of(&r, r.token), STEP_TASK_GONE);
	cr_assert_eq(count(&r, "ActivityTimedOut", NULL), 1);
	rig_free(&r);
}

Test(step_lease, without_leases_scheduled_and_started_are_written_together)
{
	struct rig r;
	rig_init(&r, false);
	cr_assert_eq(count(&r, "ActivityScheduled", NULL), 1);
	cr_assert_eq(count(&r, "ActivityStarted", NULL), 1);
	/* a worker taking it later records the lease but writes no second Started */
	store_batch_t *b;
	cr_assert_eq(store_batch_get(r.st, &b), SL_OK);
	cr_assert_eq(step_task_started(r.eng, b, r.token, "w1", &r.fx, NULL, NULL), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	cr_assert_eq(count(&r, "ActivityStarted", NULL), 1);
	cr_assert_eq(state_of(&r, r.token), STEP_TASK_TAKEN);
	rig_free(&r);
}
