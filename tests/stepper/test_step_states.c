/*
 * test_step_states.c - the semantics of each state type, I/O processing, the context
 * object, Retry/Catch and the States.* errors, run through the engine with virtual time.
 */
#include "tests/stepper/step_test_util.h"

Test(step_states, pass_result_resultpath_outputpath)
{
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"InputPath\":\"$.in\","
	        "\"Result\":{\"x.$\":\"literal\"},\"ResultPath\":\"$.r\",\"OutputPath\":\"$.r\","
	        "\"End\":true}}}",
	        "{\"in\":{\"a\":1}}", NULL, NULL, &r);
	// Result is literal: the ".$" key is kept as written
	step_test_expect_output(&r, "{\"x.$\":\"literal\"}");
	cr_expect_eq(step_test_count_events(&r, "PassStateEntered"), 1);
	cr_expect_eq(step_test_count_events(&r, "ExecutionSucceeded"), 1);
	step_local_result_clear(&r);
}

Test(step_states, null_paths)
{
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Result\":5,"
	        "\"ResultPath\":null,\"Next\":\"B\"},\"B\":{\"Type\":\"Pass\",\"InputPath\":null,"
	        "\"ResultPath\":\"$.b\",\"End\":true}}}",
	        "{\"keep\":true}", NULL, NULL, &r);
	// ResultPath null keeps the input; InputPath null gives {} as the effective input
	step_test_expect_output(&r, "{\"keep\":true,\"b\":{}}");
	step_local_result_clear(&r);
}

Test(step_states, parameters_context_object)
{
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"First\",\"States\":{\"First\":{\"Type\":\"Pass\",\"Parameters\":{"
	        "\"name.$\":\"$$.Execution.Name\",\"state.$\":\"$$.State.Name\",\"in.$\":"
	        "\"$$.Execution.Input.v\",\"sm.$\":\"$$.StateMachine.Name\",\"v.$\":\"$.v\","
	        "\"n.$\":\"States.Format('x{}', $.v)\"},\"End\":true}}}",
	        "{\"v\":3}", NULL, NULL, &r);
	step_test_expect_output(&r,
	                        "{\"name\":\"run\",\"state\":\"First\",\"in\":3,\"sm\":\"test\","
	                        "\"v\":3,\"n\":\"x3\"}");
	step_local_result_clear(&r);
}

Test(step_states, parameters_missing_path_is_runtime)
{
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Parameters\":{\"x.$\":"
	        "\"$.nope\"},\"End\":true}}}",
	        "{}", NULL, NULL, &r);
	step_test_expect_error(&r, "States.Runtime");
	step_local_result_clear(&r);
}

Test(step_states, inputpath_missing_names_the_state)
{
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"InputPath\":\"$.a.b\","
	        "\"End\":true}}}",
	        "{}", NULL, NULL, &r);
	step_test_expect_error(&r, "States.Runtime");
	cr_expect(r.cause
	                  && strstr(r.cause,
	                            "An error occurred while executing the state 'A' "
	                            "(entered at the event id #2)"),
	          "cause: %s", r.cause);
	step_local_result_clear(&r);
}

Test(step_states, choice_rules_and_default)
{
	const char *def
	        = "{\"StartAt\":\"C\",\"States\":{\"C\":{\"Type\":\"Choice\",\"Choices\":["
	          "{\"And\":[{\"Variable\":\"$.n\",\"NumericGreaterThan\":1},{\"Not\":{"
	          "\"Variable\":\"$.s\",\"StringMatches\":\"a*z\"}}],\"Next\":\"Big\"},"
	          "{\"Variable\":\"$.s\",\"IsString\":false,\"Next\":\"NotString\"}],"
	          "\"Default\":\"Other\"},\"Big\":{\"Type\":\"Pass\",\"Result\":\"big\","
	          "\"End\":true},\"NotString\":{\"Type\":\"Pass\",\"Result\":\"ns\",\"End\":"
	          "true},\"Other\":{\"Type\":\"Succeed\"}}}";
	struct step_local_result r;
	step_test_run(def, "{\"n\":2,\"s\":\"abc\"}", NULL, NULL, &r);
	step_test_expect_output(&r, "\"big\"");
	step_local_result_clear(&r);
	step_test_run(def, "{\"n\":2,\"s\":\"abcz\"}", NULL, NULL, &r);
	step_test_expect_output(&r, "{\"n\":2,\"s\":\"abcz\"}");
	step_local_result_clear(&r);
	step_test_run(def, "{\"n\":0,\"s\":5}", NULL, NULL, &r);
	step_test_expect_output(&r, "\"ns\"");
	step_local_result_clear(&r);
}

Test(step_states, choice_type_mismatch_is_false_and_no_match_fails)
{
	struct step_local_result r;
	step_test_run("{\"StartAt\":\"C\",\"States\":{\"C\":{\"Type\":\"Choice\",\"Choices\":[{"
	              "\"Variable\":\"$.v\",\"NumericEquals\":1,\"Next\":\"X\"}]},\"X\":{\"Type\":"
	              "\"Succeed\"}}}",
	              "{\"v\":\"1\"}", NULL, NULL, &r);
	step_test_expect_error(&r, "States.NoChoiceMatched");
	step_local_result_clear(&r);
}

Test(step_states, choice_timestamp_and_path_operands)
{
	struct step_local_result r;
	step_test_run("{\"StartAt\":\"C\",\"States\":{\"C\":{\"Type\":\"Choice\",\"Choices\":[{"
	              "\"Variable\":\"$.a\",\"TimestampLessThanPath\":\"$.b\",\"Next\":\"Yes\"}],"
	              "\"Default\":\"No\"},\"Yes\":{\"Type\":\"Pass\",\"Result\":1,\"End\":true},"
	              "\"No\":{\"Type\":\"Pass\",\"Result\":0,\"End\":true}}}",
	              "{\"a\":\"2020-01-01T00:00:00Z\",\"b\":\"2020-01-01T00:00:01+00:00\"}", NULL,
	              NULL, &r);
	step_test_expect_output(&r, "1");
	step_local_result_clear(&r);
}

Test(step_states, wait_elapses_on_the_virtual_clock)
{
	struct step_local_result r;
	int64_t before = sl_clock_now_ms();
	step_test_run("{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\",\"Seconds\":3600,"
	              "\"End\":true}}}",
	              "{\"x\":1}", NULL, NULL, &r);
	step_test_expect_output(&r, "{\"x\":1}");
	cr_expect_geq(sl_clock_now_ms() - before, 3600 * 1000);
	cr_expect_eq(step_test_count_events(&r, "WaitStateExited"), 1);
	step_local_result_clear(&r);
}

Test(step_states, wait_seconds_path_errors)
{
	const char *def = "{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\",\"SecondsPath\":"
	                  "\"$.s\",\"End\":true}}}";
	struct step_local_result r;
	step_test_run(def, "{\"s\":-1}", NULL, NULL, &r);
	step_test_expect_error(&r, "States.Runtime");
	cr_expect(r.cause && strstr(r.cause, "references a negative value: $.s == -1"), "%s",
	          r.cause);
	step_local_result_clear(&r);
	step_test_run(def, "{\"s\":1.5}", NULL, NULL, &r);
	cr_expect(r.cause && strstr(r.cause, "cannot be parsed as a long value"), "%s", r.cause);
	step_local_result_clear(&r);
	step_test_run(def, "{\"s\":2}", NULL, NULL, &r);
	step_test_expect_output(&r, "{\"s\":2}");
	step_local_result_clear(&r);
}

Test(step_states, wait_timestamp_path)
{
	const char *def
	        = "{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\",\"TimestampPath\":"
	          "\"$.t\",\"End\":true}}}";
	struct step_local_result r;
	step_test_run(def, "{\"t\":\"2001-01-01T00:00:00Z\"}", NULL, NULL, &r);
	step_test_expect_output(&r, "{\"t\":\"2001-01-01T00:00:00Z\"}");
	step_local_result_clear(&r);
	step_test_run(def, "{\"t\":\"yesterday\"}", NULL, NULL, &r);
	step_test_expect_error(&r, "States.Runtime");
	step_local_result_clear(&r);
	step_test_run(def, "{\"t\":\"9999-01-01T00:00:00Z\"}", NULL, NULL, &r);
	step_test_expect_error(&r, "States.Runtime");
	cr_expect(r.cause && strstr(r.cause, "Wait state delay is too long."), "%s", r.cause);
	step_local_result_clear(&r);
}

Test(step_states, fail_with_paths_and_intrinsics)
{
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"F\",\"States\":{\"F\":{\"Type\":\"Fail\",\"ErrorPath\":\"$.e\","
	        "\"CausePath\":\"States.Format('bad {}', $.n)\"}}}",
	        "{\"e\":\"MyError\",\"n\":7}", NULL, NULL, &r);
	step_test_expect_error(&r, "MyError");
	cr_expect_str_eq(r.cause, "bad 7");
	step_local_result_clear(&r);
	step_test_run("{\"StartAt\":\"F\",\"States\":{\"F\":{\"Type\":\"Fail\"}}}", "{}", NULL,
	              NULL, &r);
	cr_expect_eq(r.status, STEP_FAILED);
	cr_expect_null(r.error);
	cr_expect_null(r.cause);
	step_local_result_clear(&r);
}

Test(step_states, task_result_selector_and_resultpath)
{
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"
	        "\"arn:aws:states:::lambda:invoke\",\"Parameters\":{\"p.$\":\"$.a\"},"
	        "\"ResultSelector\":{\"v.$\":\"$.Payload.v\"},\"ResultPath\":\"$.res\",\"End\":"
	        "true}}}",
	        "{\"a\":1}", "{\"T\":[{\"Return\":{\"Payload\":{\"v\":9}}}]}", NULL, &r);
	step_test_expect_output(&r, "{\"a\":1,\"res\":{\"v\":9}}");
	cr_expect_eq(step_test_count_events(&r, "TaskScheduled"), 1);
	cr_expect_eq(step_test_count_events(&r, "TaskSucceeded"), 1);
	step_local_result_clear(&r);
}

Test(step_states, resultpath_match_failure)
{
	struct step_local_result r;
	step_test_run("{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Result\":1,"
	              "\"ResultPath\":\"$.s.x\",\"End\":true}}}",
	              "{\"s\":\"text\"}", NULL, NULL, &r);
	step_test_expect_error(&r, "States.ResultPathMatchFailure");
	step_local_result_clear(&r);
}

Test(step_states, retry_counts_per_retrier_then_catch)
{
	// A and B each get one retry of their own; the third failure (A again) is caught
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"
	        "\"arn:aws:states:::lambda:invoke\",\"Retry\":[{\"ErrorEquals\":[\"A\"],"
	        "\"MaxAttempts\":1},{\"ErrorEquals\":[\"B\"],\"MaxAttempts\":1}],\"Catch\":[{"
	        "\"ErrorEquals\":[\"States.ALL\"],\"ResultPath\":\"$.err\",\"Next\":\"Done\"}],"
	        "\"End\":true},\"Done\":{\"Type\":\"Pass\",\"End\":true}}}",
	        "{\"in\":1}",
	        "{\"T\":[{\"Throw\":{\"Error\":\"A\",\"Cause\":\"1\"}},{\"Throw\":{\"Error\":"
	        "\"B\",\"Cause\":\"2\"}},{\"Throw\":{\"Error\":\"A\",\"Cause\":\"3\"}}]}",
	        NULL, &r);
	step_test_expect_output(&r, "{\"in\":1,\"err\":{\"Error\":\"A\",\"Cause\":\"3\"}}");
	cr_expect_eq(step_test_count_events(&r, "TaskScheduled"), 3);
	cr_expect_eq(step_test_count_events(&r, "TaskStateExited"), 1);
	step_local_result_clear(&r);
}

Test(step_states, states_all_does_not_catch_runtime)
{
	struct step_local_result r;
	step_test_run("{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"
	              "\"arn:aws:states:::lambda:invoke\",\"OutputPath\":\"$.missing\",\"Catch\":[{"
	              "\"ErrorEquals\":[\"States.ALL\"],\"Next\":\"C\"}],\"End\":true},\"C\":{"
	              "\"Type\":\"Succeed\"}}}",
	              "{}", "{\"T\":[{\"Return\":{}}]}", NULL, &r);
	step_test_expect_error(&r, "States.Runtime");
	step_local_result_clear(&r);
}

Test(step_states, task_failed_wildcard_skips_timeouts)
{
	struct step_local_result r;
	step_test_run("{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"
	              "\"arn:aws:states:::lambda:invoke\",\"Catch\":[{\"ErrorEquals\":["
	              "\"States.TaskFailed\"],\"Next\":\"C\"}],\"End\":true},\"C\":{\"Type\":"
	              "\"Succeed\"}}}",
	              "{}", "{\"T\":[{\"Throw\":{\"Error\":\"States.Timeout\"}}]}", NULL, &r);
	step_test_expect_error(&r, "States.Timeout");
	cr_expect_eq(step_test_count_events(&r, "TaskTimedOut"), 1);
	step_local_result_clear(&r);
}

Test(step_states, parallel_outputs_in_branch_order)
{
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Parallel\",\"Branches\":["
	        "{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\",\"Seconds\":5,\"Next\":"
	        "\"A\"},\"A\":{\"Type\":\"Pass\",\"Result\":\"slow\",\"End\":true}}},"
	        "{\"StartAt\":\"B\",\"States\":{\"B\":{\"Type\":\"Pass\",\"Result\":\"fast\","
	        "\"End\":true}}}],\"ResultSelector\":{\"first.$\":\"$[0]\",\"all.$\":\"$\"},"
	        "\"End\":true}}}",
	        "{}", NULL, NULL, &r);
	step_test_expect_output(&r, "{\"first\":\"slow\",\"all\":[\"slow\",\"fast\"]}");
	cr_expect_eq(step_test_count_events(&r, "ParallelStateStarted"), 1);
	cr_expect_eq(step_test_count_events(&r, "ParallelStateSucceeded"), 1);
	step_local_result_clear(&r);
}

Test(step_states, parallel_branch_failure_is_caught)
{
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Parallel\",\"Branches\":["
	        "{\"StartAt\":\"F\",\"States\":{\"F\":{\"Type\":\"Fail\",\"Error\":\"Boom\"}}},"
	        "{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\",\"Seconds\":60,\"End\":"
	        "true}}}],\"Catch\":[{\"ErrorEquals\":[\"Boom\"],\"Next\":\"C\"}],\"End\":true},"
	        "\"C\":{\"Type\":\"Pass\",\"End\":true}}}",
	        "{}", NULL, NULL, &r);
	step_test_expect_output(&r, "{\"Error\":\"Boom\"}");
	cr_expect_eq(step_test_count_events(&r, "ParallelStateFailed"), 1);
	cr_expect_eq(step_test_count_events(&r, "ParallelStateExited"), 1);
	cr_expect_eq(step_test_count_events(&r, "WaitStateExited"), 0);
	step_local_result_clear(&r);
}

Test(step_states, map_item_selector_and_context)
{
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemsPath\":\"$.xs\","
	        "\"MaxConcurrency\":2,\"ItemSelector\":{\"i.$\":\"$$.Map.Item.Index\",\"v.$\":"
	        "\"$$.Map.Item.Value\",\"k.$\":\"$.k\"},\"ItemProcessor\":{\"StartAt\":\"P\","
	        "\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}},\"ResultPath\":\"$.out\","
	        "\"End\":true}}}",
	        "{\"xs\":[\"a\",\"b\",\"c\"],\"k\":0}", NULL, NULL, &r);
	step_test_expect_output(&r,
	                        "{\"xs\":[\"a\",\"b\",\"c\"],\"k\":0,\"out\":[{\"i\":0,\"v\":\"a\","
	                        "\"k\":0},{\"i\":1,\"v\":\"b\",\"k\":0},{\"i\":2,\"v\":\"c\","
	                        "\"k\":0}]}");
	cr_expect_eq(step_test_count_events(&r, "MapIterationStarted"), 3);
	cr_expect_eq(step_test_count_events(&r, "MapIterationSucceeded"), 3);
	step_local_result_clear(&r);
}

Test(step_states, map_empty_and_not_array)
{
	const char *def
	        = "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemProcessor\":{"
	          "\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}},"
	          "\"End\":true}}}";
	struct step_local_result r;
	step_test_run(def, "[]", NULL, NULL, &r);
	step_test_expect_output(&r, "[]");
	step_local_result_clear(&r);
	step_test_run(def, "{\"a\":1}", NULL, NULL, &r);
	step_test_expect_error(&r, "States.Runtime");
	step_local_result_clear(&r);
}

Test(step_states, map_tolerated_failures)
{
	const char *def
	        = "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"MaxConcurrency\":1,"
	          "\"ToleratedFailureCount\":1,\"ItemProcessor\":{\"StartAt\":\"C\",\"States\":"
	          "{\"C\":{\"Type\":\"Choice\",\"Choices\":[{\"Variable\":\"$\",\"NumericEquals\":"
	          "0,\"Next\":\"F\"}],\"Default\":\"P\"},\"F\":{\"Type\":\"Fail\",\"Error\":\"E\"},"
	          "\"P\":{\"Type\":\"Pass\",\"End\":true}}},\"End\":true}}}";
	struct step_local_result r;
	step_test_run(def, "[1,0,2]", NULL, NULL, &r);
	step_test_expect_output(&r, "[1,{\"Error\":\"E\"},2]");
	step_local_result_clear(&r);
	step_test_run(def, "[0,0,2]", NULL, NULL, &r);
	step_test_expect_error(&r, "States.ExceedToleratedFailureThreshold");
	step_local_result_clear(&r);
}

Test(step_states, map_tolerated_failure_path_checks)
{
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemsPath\":\"$.xs\","
	        "\"ToleratedFailurePercentagePath\":\"$.p\",\"ItemProcessor\":{\"StartAt\":"
	        "\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}},\"End\":true}}}",
	        "{\"xs\":[1],\"p\":101}", NULL, NULL, &r);
	step_test_expect_error(&r, "States.Runtime");
	step_local_result_clear(&r);
}

Test(step_states, payload_limit_is_not_catchable)
{
	struct step_options o = { .payload_limit = 64 };
	struct step_local_result r;
	step_test_run("{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Result\":\""
	              "0123456789012345678901234567890123456789012345678901234567890123456789\","
	              "\"End\":true}}}",
	              "{}", NULL, &o, &r);
	step_test_expect_error(&r, "States.DataLimitExceeded");
	step_local_result_clear(&r);
}

Test(step_states, history_limit_fails_the_execution)
{
	struct step_options o = { .history_limit = 6 };
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Next\":\"B\"},\"B\":{"
	        "\"Type\":\"Pass\",\"Next\":\"C\"},\"C\":{\"Type\":\"Pass\",\"End\":true}}}",
	        "{}", NULL, &o, &r);
	step_test_expect_error(&r, "States.Runtime");
	cr_expect_leq(json_array_size(r.history), 7);
	step_local_result_clear(&r);
}

Test(step_states, execution_timeout)
{
	struct step_local_result r;
	step_test_run(
	        "{\"TimeoutSeconds\":5,\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\","
	        "\"Seconds\":60,\"End\":true}}}",
	        "{}", NULL, NULL, &r);
	cr_expect_eq(r.status, STEP_TIMED_OUT);
	cr_expect_eq(step_test_count_events(&r, "ExecutionTimedOut"), 1);
	step_local_result_clear(&r);
}

Test(step_states, history_ids_are_dense_and_linked)
{
	struct step_local_result r;
	step_test_run(
	        "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Next\":\"W\"},\"W\":{"
	        "\"Type\":\"Wait\",\"Seconds\":1,\"End\":true}}}",
	        "{}", NULL, NULL, &r);
	size_t i;
	json_t *ev;
	json_array_foreach(r.history, i, ev)
	{
		cr_expect_eq(json_integer_value(json_object_get(ev, "id")), (json_int_t)i + 1);
		cr_expect_lt(json_integer_value(json_object_get(ev, "previousEventId")),
		             (json_int_t)i + 1);
	}
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(r.history, 0), "type")),
	                 "ExecutionStarted");
	step_local_result_clear(&r);
}
