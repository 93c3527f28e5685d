/*
 * test_step_engine.c - the engine driven by hand: task tokens, heartbeats and timeouts,
 * timers on the fake clock, stop, start errors, lazy Map concurrency, and restarts that
 * resume from the store (the engine is rebuilt from nothing but the data directory).
 */
#include "tests/stepper/step_rig.h"

static void
expect_dense_history(json_t *h)
{
	size_t i;
	json_t *ev;
	int started = 0, ended = 0;
	json_array_foreach(h, i, ev)
	{
		cr_expect_eq(json_integer_value(json_object_get(ev, "id")), (json_int_t)i + 1);
		const char *t = json_string_value(json_object_get(ev, "type"));
		started += strcmp(t, "ExecutionStarted") == 0;
		ended += strncmp(t, "Execution", 9) == 0 && strcmp(t, "ExecutionStarted") != 0;
	}
	cr_expect_eq(started, 1);
	cr_expect_eq(ended, 1);
}

static const char *TASK_DEF
        = "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"
          "\"arn:aws:states:us-east-1:000000000000:activity:work\",\"TimeoutSeconds\":100,"
          "\"HeartbeatSeconds\":10,\"End\":true}}}";

Test(step_engine, task_token_success_and_unknown_tokens)
{
	struct rig r;
	rig_init(&r, TASK_DEF);
	char *arn = rig_start(&r, "e1", "{\"a\":1}");
	cr_assert_eq(r.n_tasks, 1);
	cr_expect_eq(strlen(r.tokens[0]), STEP_TOKEN_LEN);
	struct sl_error err;
	sl_error_clear(&err);
	cr_expect_eq(step_task_succeed(r.eng, rig_batch(&r), "ffffffffffffffffffffffffffffffff",
	                               NULL, &r.fx, &err),
	             SL_ERR_TASK_NOT_FOUND);
	cr_expect_eq(step_task_succeed(r.eng, rig_batch(&r), "", NULL, &r.fx, &err),
	             SL_ERR_INVALID_TOKEN);
	json_t *out = step_test_json("{\"done\":true}");
	cr_assert_eq(step_task_succeed(r.eng, rig_batch(&r), r.tokens[0], out, &r.fx, &err), SL_OK,
	             "%s", sl_error_text(&err));
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	rig_settle(&r);
	cr_expect(r.finished);
	cr_expect_eq(r.status, STEP_SUCCEEDED);
	cr_expect_eq(r.status_running, 1);
	cr_expect_eq(r.status_ended, 1);
	cr_expect_str_eq(r.last_status_input, "{\"a\":1}");
	// answered once: a second answer for the same token is refused
	cr_expect_eq(step_task_succeed(r.eng, rig_batch(&r), r.tokens[0], out, &r.fx, &err),
	             SL_ERR_TASK_NOT_FOUND);
	store_batch_commit(r.st);
	json_decref(out);
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r.st, &txn), SL_OK);
	json_t *d = NULL;
	cr_assert_eq(step_describe(r.eng, txn, arn, &d, NULL), SL_OK);
	store_read_end(txn);
	cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "SUCCEEDED");
	cr_expect_str_eq(json_string_value(json_object_get(d, "output")), "{\"done\":true}");
	cr_expect_str_eq(json_string_value(json_object_get(d, "name")), "e1");
	json_decref(d);
	json_t *h = rig_history(&r, arn);
	expect_dense_history(h);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(h, 2), "type")),
	                 "ActivityScheduled");
	json_decref(h);
	rig_free(&r);
}

Test(step_engine, heartbeat_extends_then_times_out)
{
	struct rig r;
	rig_init(&r, TASK_DEF);
	rig_start(&r, "e1", NULL);
	cr_assert_eq(r.n_tasks, 1);
	sl_clock_fake_advance(8000);
	rig_settle(&r);
	cr_assert_eq(step_task_heartbeat(r.eng, rig_batch(&r), r.tokens[0], &r.fx, NULL), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	sl_clock_fake_advance(8000); // 16 s after start, 8 s after the heartbeat
	rig_settle(&r);
	cr_expect_not(r.finished, "the heartbeat should have kept the task alive");
	sl_clock_fake_advance(2500);
	rig_settle(&r);
	cr_expect(r.finished);
	cr_expect_eq(r.status, STEP_FAILED);
	cr_expect_str_eq(r.error, "States.HeartbeatTimeout");
	rig_free(&r);
}

Test(step_engine, task_timeout_is_retried)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"
	         "\"arn:aws:lambda:us-east-1:000000000000:function:f\",\"TimeoutSeconds\":5,"
	         "\"Retry\":[{\"ErrorEquals\":[\"States.Timeout\"],\"IntervalSeconds\":3,"
	         "\"MaxAttempts\":1}],\"End\":true}}}");
	rig_start(&r, "e1", NULL);
	sl_clock_fake_advance(5000);
	rig_settle(&r);
	cr_expect_eq(r.n_tasks, 1, "retry waits for its back-off");
	sl_clock_fake_advance(3000);
	rig_settle(&r);
	cr_assert_eq(r.n_tasks, 2);
	sl_clock_fake_advance(5000);
	rig_settle(&r);
	cr_expect(r.finished);
	cr_expect_str_eq(r.error, "States.Timeout");
	// the late answer of the first attempt finds nothing
	cr_expect_eq(step_task_succeed(r.eng, rig_batch(&r), r.tokens[0], NULL, &r.fx, NULL),
	             SL_ERR_TASK_NOT_FOUND);
	store_batch_commit(r.st);
	rig_free(&r);
}

Test(step_engine, retry_backoff_max_delay)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"
	         "\"arn:aws:lambda:us-east-1:000000000000:function:f\",\"Retry\":[{"
	         "\"ErrorEquals\":[\"E\"],\"IntervalSeconds\":2,\"BackoffRate\":3,"
	         "\"MaxDelaySeconds\":5,\"MaxAttempts\":3}],\"End\":true}}}");
	rig_start(&r, "e1", NULL);
	int64_t expect[] = { 2000, 5000, 5000 };
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(r.n_tasks, i + 1);
		int64_t now = sl_clock_now_ms();
		r.n_timers = 0;
		cr_assert_eq(
		        step_task_fail(r.eng, rig_batch(&r), r.tokens[i], "E", "c", &r.fx, NULL),
		        SL_OK);
		cr_assert_eq(store_batch_commit(r.st), SL_OK);
		cr_assert_eq(r.n_timers, 1);
		cr_expect_eq(r.timers[0] - now, expect[i], "attempt %d delay %lld", i + 1,
		             (long long)(r.timers[0] - now));
		sl_clock_fake_set(r.timers[0]);
		rig_settle(&r);
	}
	cr_assert_eq(r.n_tasks, 4);
	cr_assert_eq(step_task_fail(r.eng, rig_batch(&r), r.tokens[3], "E", "c", &r.fx, NULL),
	             SL_OK);
	store_batch_commit(r.st);
	rig_settle(&r);
	cr_expect(r.finished);
	cr_expect_str_eq(r.error, "E");
	rig_free(&r);
}

Test(step_engine, retry_full_jitter_stays_in_range)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"
	         "\"arn:aws:lambda:us-east-1:000000000000:function:f\",\"Retry\":[{"
	         "\"ErrorEquals\":[\"States.ALL\"],\"IntervalSeconds\":10,\"MaxAttempts\":20,"
	         "\"BackoffRate\":1,\"JitterStrategy\":\"FULL\"}],\"End\":true}}}");
	rig_start(&r, "e1", NULL);
	bool varied = false;
	int64_t first = -1;
	for (int i = 0; i < 20; i++) {
		int64_t now = sl_clock_now_ms();
		r.n_timers = 0;
		cr_assert_eq(
		        step_task_fail(r.eng, rig_batch(&r), r.tokens[i], "X", NULL, &r.fx, NULL),
		        SL_OK);
		store_batch_commit(r.st);
		cr_assert_eq(r.n_timers, 1);
		int64_t d = r.timers[0] - now;
		cr_expect(d >= 0 && d <= 10000, "delay %lld", (long long)d);
		if (first < 0)
			first = d;
		else if (d != first)
			varied = true;
		sl_clock_fake_set(r.timers[0]);
		rig_settle(&r);
	}
	cr_expect(varied, "FULL jitter gave the same delay 20 times");
	rig_free(&r);
}

Test(step_engine, stop_aborts_and_cancels_the_task)
{
	struct rig r;
	rig_init(&r, TASK_DEF);
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", NULL));
	cr_assert_eq(step_stop(r.eng, rig_batch(&r), arn, "Stopped", "by test", &r.fx, NULL),
	             SL_OK);
	store_batch_commit(r.st);
	cr_expect(r.finished);
	cr_expect_eq(r.status, STEP_ABORTED);
	cr_expect_eq(step_task_succeed(r.eng, rig_batch(&r), r.tokens[0], NULL, &r.fx, NULL),
	             SL_ERR_TASK_NOT_FOUND);
	store_batch_commit(r.st);
	// timers of the stopped execution fire into nothing
	sl_clock_fake_advance(200000);
	rig_settle(&r);
	json_t *h = rig_history(&r, arn);
	expect_dense_history(h);
	cr_expect_str_eq(json_string_value(json_object_get(
	                         json_array_get(h, json_array_size(h) - 1), "type")),
	                 "ExecutionAborted");
	json_decref(h);
	cr_expect_eq(step_stop(r.eng, rig_batch(&r), "arn:aws:states:x:1:execution:m:none", NULL,
	                       NULL, &r.fx, NULL),
	             SL_ERR_EXEC_NOT_FOUND);
	store_batch_commit(r.st);
	rig_free(&r);
}

Test(step_engine, start_errors)
{
	struct rig r;
	rig_init(&r, "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"End\":true}}}");
	rig_start(&r, "same", NULL);
	struct sl_error err;
	sl_error_clear(&err);
	struct step_start req = { .machine = "m", .name = "same" };
	cr_expect_eq(step_start(r.eng, rig_batch(&r), &req, NULL, &r.fx, &err), SL_ERR_EXEC_EXISTS);
	req.name = "has space";
	cr_expect_eq(step_start(r.eng, rig_batch(&r), &req, NULL, &r.fx, &err),
	             SL_ERR_INVALID_NAME);
	req.name = "ok";
	req.machine = "nope";
	cr_expect_eq(step_start(r.eng, rig_batch(&r), &req, NULL, &r.fx, &err),
	             SL_ERR_SM_NOT_FOUND);
	cr_expect(strstr(sl_error_text(&err), "nope"));
	store_batch_commit(r.st);
	rig_free(&r);
}

Test(step_engine, map_creates_iterations_lazily)
{
	struct rig r;
	rig_init(
	        &r,
	        "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"MaxConcurrency\":3,"
	        "\"ItemProcessor\":{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\","
	        "\"Resource\":\"arn:aws:lambda:us-east-1:000000000000:function:f\",\"End\":true}}},"
	        "\"End\":true}}}");
	json_t *items = json_array();
	for (int i = 0; i < 50; i++)
		json_array_append_new(items, json_integer(i));
	char *txt = json_dumps(items, 0);
	rig_start(&r, "e1", txt);
	free(txt);
	json_decref(items);
	int answered = 0;
	while (!r.finished && answered < r.n_tasks) {
		json_t *out = json_integer(answered);
		cr_assert_eq(step_task_succeed(r.eng, rig_batch(&r), r.tokens[answered], out, &r.fx,
		                               NULL),
		             SL_OK);
		json_decref(out);
		r.open_tasks--;
		answered++;
		store_batch_commit(r.st);
		rig_settle(&r);
	}
	cr_expect(r.finished);
	cr_expect_eq(r.status, STEP_SUCCEEDED);
	cr_expect_eq(answered, 50);
	cr_expect_eq(r.max_open_tasks, 3, "at most MaxConcurrency iterations alive, saw %d",
	             r.max_open_tasks);
	rig_free(&r);
}

Test(step_engine, restart_resumes_a_wait)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Result\":1,"
	         "\"ResultPath\":\"$.a\",\"Next\":\"W\"},\"W\":{\"Type\":\"Wait\",\"Seconds\":60,"
	         "\"Next\":\"B\"},\"B\":{\"Type\":\"Pass\",\"Result\":2,\"ResultPath\":\"$.b\","
	         "\"End\":true}}}");
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "{}"));
	cr_expect_not(r.finished);
	rig_restart(&r);
	sl_clock_fake_advance(60000);
	rig_settle(&r);
	cr_expect(r.finished);
	cr_expect_eq(r.status, STEP_SUCCEEDED);
	json_t *h = rig_history(&r, arn);
	expect_dense_history(h);
	cr_expect_eq(json_array_size(h), 8);
	json_decref(h);
	rig_free(&r);
}

Test(step_engine, restart_between_start_and_first_run)
{
	struct rig r;
	rig_init(&r, TASK_DEF);
	struct step_start req = { .machine = "m", .name = "e1" };
	char arn[STEP_ARN_MAX];
	cr_assert_eq(step_start(r.eng, rig_batch(&r), &req, arn, &r.fx, NULL), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	// crash before the frame ran: recovery must find it runnable
	rig_restart(&r);
	rig_settle(&r);
	cr_assert_eq(r.n_tasks, 1);
	// crash with the task in flight: its token survives
	rig_restart(&r);
	cr_assert_eq(step_task_succeed(r.eng, rig_batch(&r), r.tokens[0], NULL, &r.fx, NULL),
	             SL_OK);
	store_batch_commit(r.st);
	rig_settle(&r);
	cr_expect(r.finished);
	json_t *h = rig_history(&r, arn);
	expect_dense_history(h);
	json_decref(h);
	rig_free(&r);
}

Test(step_engine, uncommitted_work_is_redone_once)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Next\":\"B\"},\"B\":{"
	         "\"Type\":\"Pass\",\"End\":true}}}");
	struct step_start req = { .machine = "m", .name = "e1" };
	char arn[STEP_ARN_MAX];
	cr_assert_eq(step_start(r.eng, rig_batch(&r), &req, arn, &r.fx, NULL), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	// run the frame but lose the batch (crash before commit)
	cr_assert_eq(step_run_ready(r.eng, rig_batch(&r), &r.fx, NULL, NULL), SL_OK);
	r.finished = false;
	rig_restart(&r);
	rig_settle(&r);
	cr_expect(r.finished);
	json_t *h = rig_history(&r, arn);
	expect_dense_history(h);
	cr_expect_eq(json_array_size(h), 6);
	json_decref(h);
	rig_free(&r);
}

Test(step_engine, history_pages_and_listing)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Next\":\"B\"},\"B\":{"
	         "\"Type\":\"Pass\",\"End\":true}}}");
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "{\"big\":\"payload\"}"));
	sl_clock_fake_advance(1000);
	rig_start(&r, "e2", NULL);
	sl_clock_fake_advance(1000);
	rig_start(&r, "e3", NULL);
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r.st, &txn), SL_OK);
	struct sl_error err;
	sl_error_clear(&err);
	// 6 events in pages of 4, forwards then backwards
	struct step_history_query q = { .max_results = 4 };
	json_t *page = NULL;
	char *next = NULL;
	cr_assert_eq(step_history_page(r.eng, txn, arn, &q, &page, &next, &err), SL_OK);
	cr_expect_eq(json_array_size(page), 4);
	cr_assert_not_null(next);
	json_decref(page);
	q.next_token = next;
	char *next2 = NULL;
	cr_assert_eq(step_history_page(r.eng, txn, arn, &q, &page, &next2, &err), SL_OK);
	cr_expect_eq(json_array_size(page), 2);
	cr_expect_null(next2);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(page, 1), "id")), 6);
	json_decref(page);
	sl_free(next);
	struct step_history_query rq = { .max_results = 1,
		                         .reverse = true,
		                         .include_data_set = true,
		                         .include_data = false };
	cr_assert_eq(step_history_page(r.eng, txn, arn, &rq, &page, &next, &err), SL_OK);
	json_t *last = json_array_get(page, 0);
	cr_expect_str_eq(json_string_value(json_object_get(last, "type")), "ExecutionSucceeded");
	cr_expect_null(
	        json_object_get(json_object_get(last, "executionSucceededEventDetails"), "output"));
	json_decref(page);
	sl_free(next);
	q.next_token = "garbage";
	cr_expect_eq(step_history_page(r.eng, txn, arn, &q, &page, &next, &err),
	             SL_ERR_INVALID_TOKEN);
	q.next_token = NULL;
	q.max_results = 5000;
	cr_expect_eq(step_history_page(r.eng, txn, arn, &q, &page, &next, &err),
	             SL_ERR_SFN_VALIDATION);
	// listing: newest first, two per page
	struct step_list_query lq = { .machine = "m", .max_results = 2 };
	cr_assert_eq(step_list_executions(r.eng, txn, &lq, &page, &next, &err), SL_OK, "%s",
	             sl_error_text(&err));
	cr_assert_eq(json_array_size(page), 2);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(page, 0), "name")), "e3");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(page, 1), "name")), "e2");
	cr_assert_not_null(next);
	json_decref(page);
	lq.next_token = next;
	cr_assert_eq(step_list_executions(r.eng, txn, &lq, &page, &next2, &err), SL_OK);
	cr_expect_eq(json_array_size(page), 1);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(page, 0), "name")), "e1");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(page, 0), "status")),
	                 "SUCCEEDED");
	cr_expect_null(next2);
	json_decref(page);
	sl_free(next);
	lq.next_token = "x00";
	cr_expect_eq(step_list_executions(r.eng, txn, &lq, &page, &next, &err),
	             SL_ERR_INVALID_TOKEN);
	lq.next_token = NULL;
	lq.status = "RUNNING";
	cr_assert_eq(step_list_executions(r.eng, txn, &lq, &page, &next, &err), SL_OK);
	cr_expect_eq(json_array_size(page), 0);
	json_decref(page);
	sl_free(next);
	store_read_end(txn);
	rig_free(&r);
}

static const char *CHILD_DEF
        = "{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\",\"Seconds\":10,\"Next\":\"C\"},"
          "\"C\":{\"Type\":\"Choice\",\"Choices\":[{\"Variable\":\"$.x\",\"NumericEquals\":0,"
          "\"Next\":\"F\"}],\"Default\":\"P\"},\"F\":{\"Type\":\"Fail\",\"Error\":\"Zero\"},"
          "\"P\":{\"Type\":\"Pass\",\"Parameters\":{\"y.$\":\"$.x\"},\"End\":true}}}";

static json_t *
rig_output(struct rig *r, const char *arn)
{
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	json_t *d = NULL;
	cr_assert_eq(step_describe(r->eng, txn, arn, &d, NULL), SL_OK);
	store_read_end(txn);
	json_t *out = NULL;
	const char *s = json_string_value(json_object_get(d, "output"));
	if (s)
		out = step_test_json(s);
	json_decref(d);
	return out;
}

Test(step_engine, start_execution_sync2_waits_for_the_child)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"
	         "\"arn:aws:states:::states:startExecution.sync:2\",\"Parameters\":{"
	         "\"StateMachineArn\":\"arn:aws:states:us-east-1:000000000000:stateMachine:"
	         "child\",\"Input\":{\"x.$\":\"$.x\"}},\"ResultSelector\":{\"out.$\":\"$.Output\","
	         "\"st.$\":\"$.Status\"},\"End\":true}}}");
	struct sm_machine *child = step_test_compile(CHILD_DEF);
	cr_assert_eq(step_engine_add_machine(r.eng, "child", child), SL_OK);
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "p1", "{\"x\":5}"));
	cr_expect_eq(r.n_tasks, 0, "a built-in task is not handed to workers");
	cr_expect_not(r.finished);
	// the parent waits across a restart too
	rig_restart(&r);
	cr_assert_eq(step_engine_add_machine(r.eng, "child", child), SL_OK);
	sl_clock_fake_advance(10000);
	rig_settle(&r);
	json_t *out = rig_output(&r, arn);
	json_t *want = step_test_json("{\"out\":{\"y\":5},\"st\":\"SUCCEEDED\"}");
	cr_expect(out && json_equal(out, want), "parent output wrong");
	json_decref(out);
	json_decref(want);
	rig_free(&r);
	sm_machine_free(child);
}

Test(step_engine, start_execution_sync_child_failure_and_plain_start)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"Plain\",\"States\":{\"Plain\":{\"Type\":\"Task\",\"Resource\":"
	         "\"arn:aws:states:::states:startExecution\",\"Parameters\":{"
	         "\"StateMachineArn\":\"arn:aws:states:us-east-1:000000000000:stateMachine:"
	         "child\",\"Name\":\"fire-and-forget\",\"Input\":\"{\\\"x\\\":1}\"},"
	         "\"ResultPath\":\"$.started\",\"Next\":\"Sync\"},\"Sync\":{\"Type\":\"Task\","
	         "\"Resource\":\"arn:aws:states:::states:startExecution.sync\",\"Parameters\":{"
	         "\"StateMachineArn\":\"child\",\"Input\":{\"x\":0}},\"End\":true}}}");
	struct sm_machine *child = step_test_compile(CHILD_DEF);
	cr_assert_eq(step_engine_add_machine(r.eng, "child", child), SL_OK);
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "p1", "{}"));
	sl_clock_fake_advance(10000);
	rig_settle(&r);
	cr_expect(r.finished);
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r.st, &txn), SL_OK);
	json_t *d = NULL;
	cr_assert_eq(step_describe(r.eng, txn, arn, &d, NULL), SL_OK);
	cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "FAILED");
	cr_expect_str_eq(json_string_value(json_object_get(d, "error")), "States.TaskFailed");
	cr_expect(strstr(json_string_value(json_object_get(d, "cause")), "\"Error\":\"Zero\""));
	json_decref(d);
	cr_assert_eq(step_describe(r.eng, txn,
	                           "arn:aws:states:us-east-1:000000000000:execution:child:"
	                           "fire-and-forget",
	                           &d, NULL),
	             SL_OK);
	cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "SUCCEEDED");
	json_decref(d);
	json_t *h = NULL;
	cr_assert_eq(step_history(r.eng, txn, arn, &h, NULL), SL_OK);
	const char *o4 = json_string_value(json_object_get(
	        json_object_get(json_array_get(h, 4), "taskSucceededEventDetails"), "output"));
	cr_expect(o4 && strstr(o4, "fire-and-forget"), "event 5: %s", o4 ? o4 : "(none)");
	json_decref(h);
	store_read_end(txn);
	rig_free(&r);
	sm_machine_free(child);
}
