/*
 * test_step_redrive.c - RedriveExecution in the engine: a failed Task restarted at its
 * state with its input, refusals (SUCCEEDED, RUNNING, unknown, past 14 days), an aborted
 * execution, a Map whose item failed (only that item runs again), the client token,
 * and a redrive that survives a restart.
 */
#include "tests/stepper/step_rig.h"

static sl_err
rig_redrive(struct rig *r, const char *arn, const char *token, int64_t *date)
{
	struct sl_error err;
	sl_error_clear(&err);
	sl_err e = step_redrive(r->eng, rig_batch(r), arn, token, date, &r->fx, &err);
	cr_assert_eq(store_batch_commit(r->st), SL_OK);
	if (e == SL_OK)
		rig_settle(r);
	return e;
}

static json_t *
rig_describe(struct rig *r, const char *arn)
{
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	json_t *d = NULL;
	cr_assert_eq(step_describe(r->eng, txn, arn, &d, NULL), SL_OK);
	cr_assert_eq(step_redrive_describe(r->eng, txn, arn, d, NULL), SL_OK);
	store_read_end(txn);
	return d;
}

static const char *
ev_type(json_t *h, size_t i)
{
	return json_string_value(json_object_get(json_array_get(h, i), "type"));
}

/* Ids 1..n, each previousEventId earlier than its event. */
static void
expect_dense(json_t *h)
{
	size_t i;
	json_t *ev;
	json_array_foreach(h, i, ev)
	{
		cr_expect_eq(json_integer_value(json_object_get(ev, "id")), (json_int_t)i + 1);
		cr_expect_lt(json_integer_value(json_object_get(ev, "previousEventId")),
		             (json_int_t)i + 1);
	}
}

static const char *
entered_input(json_t *ev)
{
	return json_string_value(
	        json_object_get(json_object_get(ev, "stateEnteredEventDetails"), "input"));
}

/* P sets a field, T is a worker's task retried once. */
static const char *RETRY_DEF
        = "{\"StartAt\":\"P\",\"States\":{"
          "\"P\":{\"Type\":\"Pass\",\"Result\":7,\"ResultPath\":\"$.p\",\"Next\":\"T\"},"
          "\"T\":{\"Type\":\"Task\",\"Resource\":"
          "\"arn:aws:states:us-east-1:000000000000:activity:work\",\"ResultPath\":\"$.t\","
          "\"Retry\":[{\"ErrorEquals\":[\"States.ALL\"],\"MaxAttempts\":1,"
          "\"IntervalSeconds\":1}],\"End\":true}}}";

Test(step_redrive, failed_task_restarts_at_its_state_with_its_input)
{
	struct rig r;
	rig_init(&r, RETRY_DEF);
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "{\"a\":1}"));
	rig_answer(&r, 0, false, NULL);
	sl_clock_fake_advance(1000);
	rig_settle(&r);
	cr_assert_eq(r.n_tasks, 2);
	rig_answer(&r, 1, false, NULL);
	cr_assert_eq(r.status, STEP_FAILED);
	json_t *d = rig_describe(&r, arn);
	cr_expect_str_eq(json_string_value(json_object_get(d, "redriveStatus")), "REDRIVABLE");
	cr_expect_eq(json_integer_value(json_object_get(d, "redriveCount")), 0);
	cr_expect_null(json_object_get(d, "redriveDate"));
	json_decref(d);
	json_t *h0 = rig_history(&r, arn);
	size_t before = json_array_size(h0);
	json_decref(h0);

	sl_clock_fake_advance(5000);
	int64_t date = 0;
	r.finished = false;
	cr_assert_eq(rig_redrive(&r, arn, NULL, &date), SL_OK);
	cr_expect_eq(date, sl_clock_now_ms());
	cr_assert_eq(r.n_tasks, 3, "the failed Task is scheduled again");
	cr_expect_str_eq(r.states[2], "T");
	cr_expect_eq(r.status_running, 2);
	d = rig_describe(&r, arn);
	cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "RUNNING");
	cr_expect_eq(json_integer_value(json_object_get(d, "redriveCount")), 1);
	cr_expect_not_null(json_object_get(d, "redriveDate"));
	cr_expect_null(json_object_get(d, "stopDate"));
	cr_expect_null(json_object_get(d, "error"));
	cr_expect_str_eq(json_string_value(json_object_get(d, "redriveStatusReason")),
	                 "Execution is RUNNING and cannot be redriven.");
	json_decref(d);
	// the retry count starts over: one failure is retried again
	rig_answer(&r, 2, false, NULL);
	cr_expect(!r.finished);
	sl_clock_fake_advance(1000);
	rig_settle(&r);
	cr_assert_eq(r.n_tasks, 4);
	rig_answer(&r, 3, true, "{\"ok\":true}");
	cr_assert(r.finished);
	cr_expect_eq(r.status, STEP_SUCCEEDED);

	d = rig_describe(&r, arn);
	json_t *out = step_test_json(json_string_value(json_object_get(d, "output")));
	json_t *want = step_test_json("{\"a\":1,\"p\":7,\"t\":{\"ok\":true}}");
	cr_expect(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	cr_expect_eq(json_integer_value(json_object_get(d, "redriveCount")), 1);
	cr_expect_str_eq(json_string_value(json_object_get(d, "redriveStatus")), "NOT_REDRIVABLE");
	json_decref(d);

	json_t *h = rig_history(&r, arn);
	expect_dense(h);
	cr_expect_str_eq(ev_type(h, before - 1), "ExecutionFailed", "earlier events are kept");
	cr_expect_str_eq(ev_type(h, before), "ExecutionRedriven");
	json_t *rd = json_object_get(json_array_get(h, before), "executionRedrivenEventDetails");
	cr_expect_eq(json_integer_value(json_object_get(rd, "redriveCount")), 1);
	cr_expect_str_eq(ev_type(h, before + 1), "TaskStateEntered");
	cr_expect_eq(json_integer_value(
	                     json_object_get(json_array_get(h, before + 1), "previousEventId")),
	             (json_int_t)before + 1);
	cr_expect_eq(rig_count_type(h, "PassStateEntered"), 1, "P is not run again");
	cr_expect_eq(rig_count_type(h, "TaskStateEntered"), 2);
	cr_expect_eq(rig_count_type(h, "ExecutionStarted"), 1);
	cr_expect_eq(rig_count_type(h, "ExecutionSucceeded"), 1);
	// the failed state is entered again with the input it had the first time
	const char *first = NULL, *again = NULL;
	size_t i;
	json_t *ev;
	json_array_foreach(h, i, ev)
	{
		if (strcmp(ev_type(h, i), "TaskStateEntered") == 0)
			*(first ? &again : &first) = entered_input(ev);
	}
	cr_assert(first && again);
	cr_expect_str_eq(again, first);
	cr_expect_str_eq(first, "{\"a\":1,\"p\":7}");
	json_decref(h);

	cr_expect_eq(rig_redrive(&r, arn, NULL, NULL), SL_ERR_EXEC_NOT_REDRIVABLE,
	             "SUCCEEDED is not redriven");
	rig_free(&r);
}

Test(step_redrive, refused_while_running_unknown_and_after_14_days)
{
	struct rig r;
	rig_init(&r, RETRY_DEF);
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "{}"));
	struct sl_error err;
	sl_error_clear(&err);
	cr_expect_eq(step_redrive(r.eng, rig_batch(&r), arn, NULL, NULL, &r.fx, &err),
	             SL_ERR_EXEC_NOT_REDRIVABLE);
	cr_expect_str_eq(sl_error_text(&err), "Execution is RUNNING and cannot be redriven.");
	sl_error_clear(&err);
	cr_expect_eq(step_redrive(r.eng, rig_batch(&r),
	                          "arn:aws:states:us-east-1:000000000000:execution:m:nope", NULL,
	                          NULL, &r.fx, &err),
	             SL_ERR_EXEC_NOT_FOUND);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	// stopped, then 14 days and a minute later
	sl_error_clear(&err);
	cr_assert_eq(step_stop(r.eng, rig_batch(&r), arn, NULL, NULL, &r.fx, &err), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	sl_clock_fake_advance(14LL * 24 * 3600 * 1000 + 60000);
	json_t *d = rig_describe(&r, arn);
	cr_expect_str_eq(json_string_value(json_object_get(d, "redriveStatus")), "NOT_REDRIVABLE");
	cr_expect_str_eq(json_string_value(json_object_get(d, "redriveStatusReason")),
	                 "Execution redrivable period exceeded.");
	json_decref(d);
	cr_expect_eq(rig_redrive(&r, arn, NULL, NULL), SL_ERR_EXEC_NOT_REDRIVABLE);
	rig_free(&r);
}

Test(step_redrive, aborted_execution_and_client_token)
{
	struct rig r;
	rig_init(&r, RETRY_DEF);
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "{\"x\":\"y\"}"));
	cr_assert_eq(r.n_tasks, 1);
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_stop(r.eng, rig_batch(&r), arn, "Halt", "by hand", &r.fx, &err), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	cr_assert_eq(r.status, STEP_ABORTED);
	// the old token answers nothing
	sl_error_clear(&err);
	cr_expect_eq(step_task_succeed(r.eng, rig_batch(&r), r.tokens[0], NULL, &r.fx, &err),
	             SL_ERR_TASK_NOT_FOUND);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	int64_t d1 = 0, d2 = 0;
	cr_assert_eq(rig_redrive(&r, arn, "tok-1", &d1), SL_OK);
	cr_assert_eq(r.n_tasks, 2);
	sl_clock_fake_advance(10);
	// the same client token again: the same answer, no second redrive
	cr_assert_eq(rig_redrive(&r, arn, "tok-1", &d2), SL_OK);
	cr_expect_eq(d2, d1);
	cr_expect_eq(r.n_tasks, 2);
	json_t *h = rig_history(&r, arn);
	cr_expect_eq(rig_count_type(h, "ExecutionRedriven"), 1);
	cr_expect_eq(rig_count_type(h, "ExecutionAborted"), 1);
	json_decref(h);
	rig_answer(&r, 1, true, "1");
	cr_expect_eq(r.status, STEP_SUCCEEDED);
	h = rig_history(&r, arn);
	expect_dense(h);
	json_decref(h);
	rig_free(&r);
}

/* The redriven frame is durable: a crash right after the redrive resumes it. */
Test(step_redrive, survives_a_restart)
{
	struct rig r;
	rig_init(&r, RETRY_DEF);
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "{}"));
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_stop(r.eng, rig_batch(&r), arn, NULL, NULL, &r.fx, &err), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	cr_assert_eq(step_redrive(r.eng, rig_batch(&r), arn, NULL, NULL, &r.fx, &err), SL_OK, "%s",
	             sl_error_text(&err));
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	rig_restart(&r);
	rig_settle(&r);
	cr_assert_eq(r.n_tasks, 2, "the restarted engine schedules the task again");
	rig_answer(&r, 1, true, "{}");
	cr_expect_eq(r.status, STEP_SUCCEEDED);
	json_t *h = rig_history(&r, arn);
	expect_dense(h);
	cr_expect_eq(rig_count_type(h, "TaskStateEntered"), 2);
	json_decref(h);
	rig_free(&r);
}

/* A timed-out execution runs again with a fresh execution timeout: the first one's timer
 * does not end the redriven run. */
Test(step_redrive, timed_out_execution_gets_a_new_timeout)
{
	struct rig r;
	rig_init(&r,
	         "{\"TimeoutSeconds\":10,\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":"
	         "\"Task\",\"Resource\":\"arn:aws:states:us-east-1:000000000000:activity:w\","
	         "\"End\":true}}}");
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "{}"));
	sl_clock_fake_advance(10000);
	rig_settle(&r);
	cr_assert_eq(r.status, STEP_TIMED_OUT);
	sl_clock_fake_advance(5000);
	cr_assert_eq(rig_redrive(&r, arn, NULL, NULL), SL_OK);
	cr_assert_eq(r.n_tasks, 2);
	sl_clock_fake_advance(9000);
	rig_settle(&r);
	json_t *d = rig_describe(&r, arn);
	cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "RUNNING");
	json_decref(d);
	sl_clock_fake_advance(1000);
	rig_settle(&r);
	d = rig_describe(&r, arn);
	cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "TIMED_OUT");
	json_decref(d);
	rig_free(&r);
}

/* Difference from AWS, on purpose: the whole Map state runs again, its succeeded items too
 * (AWS reruns only the failed iterations). */
Test(step_redrive, map_redrive_reruns_only_the_failed_item)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemsPath\":"
	         "\"$.items\",\"ItemProcessor\":{\"StartAt\":\"W\",\"States\":{\"W\":{"
	         "\"Type\":\"Task\",\"Resource\":"
	         "\"arn:aws:states:us-east-1:000000000000:activity:w\",\"End\":true}}},"
	         "\"End\":true}}}");
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "{\"items\":[1,2,3]}"));
	cr_assert_eq(r.n_tasks, 3);
	rig_answer(&r, 0, true, "10");
	rig_answer(&r, 2, true, "30");
	rig_answer(&r, 1, false, NULL);
	cr_assert_eq(r.status, STEP_FAILED);
	cr_assert_eq(rig_redrive(&r, arn, NULL, NULL), SL_OK);
	cr_assert_eq(r.n_tasks, 4, "only the failed item is scheduled again");
	cr_expect_str_eq(r.states[3], "W");
	rig_answer(&r, 3, true, "21");
	cr_assert_eq(r.status, STEP_SUCCEEDED);
	json_t *d = rig_describe(&r, arn);
	json_t *out = step_test_json(json_string_value(json_object_get(d, "output")));
	// the succeeded items keep the results of the first run
	json_t *want = step_test_json("[10,21,30]");
	cr_expect(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	json_decref(d);
	json_t *h = rig_history(&r, arn);
	expect_dense(h);
	cr_expect_eq(rig_count_type(h, "MapStateEntered"), 2);
	json_decref(h);
	rig_free(&r);
}

/* Stopped while a Map waits for its items (the top frame keeps its input aside): the redrive
 * enters the Map again with the input it had. */
Test(step_redrive, aborted_inside_a_map)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemsPath\":"
	         "\"$.items\",\"ResultPath\":\"$.out\",\"ItemProcessor\":{\"StartAt\":"
	         "\"W\",\"States\":{\"W\":{\"Type\":\"Task\",\"Resource\":"
	         "\"arn:aws:states:us-east-1:000000000000:activity:w\",\"End\":true}}},"
	         "\"End\":true}}}");
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "{\"items\":[1,2]}"));
	cr_assert_eq(r.n_tasks, 2);
	rig_answer(&r, 0, true, "10");
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_stop(r.eng, rig_batch(&r), arn, NULL, NULL, &r.fx, &err), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	cr_assert_eq(r.status, STEP_ABORTED);
	cr_assert_eq(rig_redrive(&r, arn, NULL, NULL), SL_OK);
	cr_assert_eq(r.n_tasks, 3, "only the aborted item runs again");
	rig_answer(&r, 2, true, "2");
	cr_assert_eq(r.status, STEP_SUCCEEDED);
	json_t *d = rig_describe(&r, arn);
	json_t *out = step_test_json(json_string_value(json_object_get(d, "output")));
	json_t *want = step_test_json("{\"items\":[1,2],\"out\":[10,2]}");
	cr_expect(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	json_decref(d);
	json_t *h = rig_history(&r, arn);
	expect_dense(h);
	json_decref(h);
	rig_free(&r);
}

/* A year after its start an execution is no longer redriven (AWS's maximum execution time). */
Test(step_redrive, not_after_a_year)
{
	struct rig r;
	rig_init(&r, RETRY_DEF);
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "{}"));
	sl_clock_fake_advance(365LL * 24 * 3600 * 1000 - 1000);
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_stop(r.eng, rig_batch(&r), arn, NULL, NULL, &r.fx, &err), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	sl_clock_fake_advance(2000);
	json_t *d = rig_describe(&r, arn);
	cr_expect_str_eq(json_string_value(json_object_get(d, "redriveStatusReason")),
	                 "Execution has exceeded the max execution time.");
	json_decref(d);
	cr_expect_eq(rig_redrive(&r, arn, NULL, NULL), SL_ERR_EXEC_NOT_REDRIVABLE);
	rig_free(&r);
}
