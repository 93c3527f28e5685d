/*
 * test_step_maprun.c - distributed Map in the engine: every iteration is a child execution
 * with its own history and `$$.Execution`, the map run record and its counters, children
 * listed by map run, MaxConcurrency, tolerated failures, a stop that aborts the children,
 * a restart in the middle, and redrives that re-run only the failed items or branches.
 */
#include <sys/stat.h>

#include "tests/stepper/step_rig.h"

#define DIST "\"ProcessorConfig\":{\"Mode\":\"DISTRIBUTED\",\"ExecutionType\":\"STANDARD\"},"
#define WORK                                                                                       \
	"\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Task\",\"Resource\":"                     \
	"\"arn:aws:states:us-east-1:000000000000:activity:w\",\"End\":true}}"

static json_t *
find_event(json_t *h, const char *type)
{
	size_t i;
	json_t *ev;
	json_array_foreach(h, i,
	                   ev) if (strcmp(json_string_value(json_object_get(ev, "type")), type)
	                           == 0) return ev;
	return NULL;
}

/* The map run ARN from the parent's MapRunStarted. */
static void
map_run_arn(struct rig *r, const char *arn, char out[STEP_ARN_MAX])
{
	json_t *h = rig_history(r, arn);
	json_t *ev = find_event(h, "MapRunStarted");
	cr_assert(ev, "MapRunStarted in the parent's history");
	snprintf(out, STEP_ARN_MAX, "%s",
	         json_string_value(json_object_get(json_object_get(ev, "mapRunStartedEventDetails"),
	                                           "mapRunArn")));
	json_decref(h);
}

static json_t *
describe_run(struct rig *r, const char *mrarn)
{
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	json_t *d = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_describe_map_run(r->eng, txn, mrarn, &d, &err), SL_OK, "%s",
	             sl_error_text(&err));
	store_read_end(txn);
	return d;
}

static int64_t
count_of(json_t *d, const char *group, const char *name)
{
	return json_integer_value(json_object_get(json_object_get(d, group), name));
}

static json_t *
children(struct rig *r, const char *mrarn)
{
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	json_t *items = NULL;
	char *next = NULL;
	struct step_list_query q = { .machine = mrarn, .max_results = 1000 };
	cr_assert_eq(step_list_executions(r->eng, txn, &q, &items, &next, NULL), SL_OK);
	cr_expect_null(next);
	store_read_end(txn);
	return items;
}

/* TaskStateEntered events over every child of the run: how often W ran. */
static size_t
work_runs(struct rig *r, const char *mrarn)
{
	json_t *kids = children(r, mrarn);
	size_t n = 0, i;
	json_t *it;
	json_array_foreach(kids, i, it)
	{
		json_t *h = rig_history(r, json_string_value(json_object_get(it, "executionArn")));
		n += rig_count_type(h, "TaskStateEntered");
		json_decref(h);
	}
	json_decref(kids);
	return n;
}

static json_t *
output_of(struct rig *r, const char *arn)
{
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	json_t *d = NULL;
	cr_assert_eq(step_describe(r->eng, txn, arn, &d, NULL), SL_OK);
	store_read_end(txn);
	json_t *out = step_test_json(json_string_value(json_object_get(d, "output")));
	json_decref(d);
	return out;
}

Test(step_maprun, children_are_executions_with_their_own_history)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"Label\":\"Lbl\","
	         "\"ItemsPath\":\"$.items\",\"ItemSelector\":{\"v.$\":\"$$.Map.Item.Value\"},"
	         "\"ItemProcessor\":{" DIST "\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":"
	         "\"Pass\",\"Parameters\":{\"v.$\":\"$.v\",\"id.$\":\"$$.Execution.Id\"},"
	         "\"End\":true}}},\"End\":true}}}");
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "{\"items\":[1,2,3]}"));
	cr_assert_eq(r.status, STEP_SUCCEEDED);
	map_run_arn(&r, arn, mr);
	cr_expect(strstr(mr, ":mapRun:m/Lbl:"), "map run ARN %s", mr);
	json_t *out = output_of(&r, arn);
	cr_assert_eq(json_array_size(out), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *o = json_array_get(out, i);
		cr_expect_eq(json_integer_value(json_object_get(o, "v")), (json_int_t)i + 1,
		             "results in item order");
		const char *id = json_string_value(json_object_get(o, "id"));
		cr_expect(id && strstr(id, ":execution:m/Lbl:"),
		          "$$.Execution.Id is the child's: %s", id ? id : "(null)");
	}
	json_decref(out);
	json_t *h = rig_history(&r, arn);
	cr_expect_eq(rig_count_type(h, "MapRunStarted"), 1);
	cr_expect_eq(rig_count_type(h, "MapRunSucceeded"), 1);
	cr_expect_eq(rig_count_type(h, "MapIterationStarted"), 0, "no iterations in the parent");
	cr_expect_eq(rig_count_type(h, "PassStateEntered"), 0);
	json_decref(h);
	json_t *kids = children(&r, mr);
	cr_assert_eq(json_array_size(kids), 3);
	size_t i;
	json_t *it;
	json_array_foreach(kids, i, it)
	{
		const char *k = json_string_value(json_object_get(it, "executionArn"));
		cr_expect_str_eq(json_string_value(json_object_get(it, "status")), "SUCCEEDED");
		cr_expect(strstr(json_string_value(json_object_get(it, "stateMachineArn")),
		                 ":stateMachine:m/Lbl"));
		json_t *kh = rig_history(&r, k);
		cr_expect_str_eq(json_string_value(json_object_get(json_array_get(kh, 0), "type")),
		                 "ExecutionStarted");
		cr_expect_eq(rig_count_type(kh, "PassStateEntered"), 1);
		cr_expect_eq(rig_count_type(kh, "ExecutionSucceeded"), 1);
		json_decref(kh);
	}
	json_decref(kids);
	json_t *d = describe_run(&r, mr);
	cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "SUCCEEDED");
	cr_expect_str_eq(json_string_value(json_object_get(d, "executionArn")), arn);
	cr_expect_eq(count_of(d, "executionCounts", "succeeded"), 3);
	cr_expect_eq(count_of(d, "executionCounts", "total"), 3);
	cr_expect_eq(count_of(d, "itemCounts", "pending"), 0);
	cr_expect_eq(count_of(d, "itemCounts", "running"), 0);
	cr_expect(json_object_get(d, "stopMs"));
	json_decref(d);
	// ListMapRuns of the parent
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r.st, &txn), SL_OK);
	json_t *runs = NULL;
	char *next = NULL;
	cr_assert_eq(step_list_map_runs(r.eng, txn, arn, 0, NULL, &runs, &next, NULL), SL_OK);
	cr_expect_eq(json_array_size(runs), 1);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(runs, 0), "mapRunArn")),
	                 mr);
	json_decref(runs);
	json_t *d2 = NULL;
	cr_expect_eq(
	        step_describe_map_run(r.eng, txn, "arn:aws:states:x:1:mapRun:m/no:such", &d2, NULL),
	        SL_ERR_MAP_RUN_NOT_FOUND);
	store_read_end(txn);
	rig_free(&r);
}

Test(step_maprun, max_concurrency_bounds_running_children)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"MaxConcurrency\":2,"
	         "\"ItemProcessor\":{" DIST WORK "},\"End\":true}}}");
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "[1,2,3,4,5]"));
	cr_assert_eq(r.n_tasks, 2);
	map_run_arn(&r, arn, mr);
	json_t *d = describe_run(&r, mr);
	cr_expect_eq(count_of(d, "executionCounts", "running"), 2);
	cr_expect_eq(count_of(d, "executionCounts", "pending"), 3);
	cr_expect_eq(json_integer_value(json_object_get(d, "maxConcurrency")), 2);
	json_decref(d);
	for (int i = 0; i < 5; i++)
		rig_answer(&r, i, true, "7");
	cr_expect_eq(r.max_open_tasks, 2);
	cr_assert_eq(r.status, STEP_SUCCEEDED);
	cr_expect_eq(work_runs(&r, mr), 5);
	rig_free(&r);
}

Test(step_maprun, tolerated_failures_then_threshold)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\","
	         "\"ToleratedFailureCount\":1,\"ItemProcessor\":{" DIST WORK "},"
	         "\"End\":true}}}");
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "[1,2,3,4]"));
	cr_assert_eq(r.n_tasks, 4);
	map_run_arn(&r, arn, mr);
	rig_answer(&r, 0, false, NULL);
	cr_expect_not(r.finished, "one failure is tolerated");
	rig_answer(&r, 1, true, "2");
	rig_answer(&r, 2, false, NULL);
	cr_assert_eq(r.status, STEP_FAILED);
	cr_expect_str_eq(r.error, "States.ExceedToleratedFailureThreshold");
	json_t *d = describe_run(&r, mr);
	cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "FAILED");
	cr_expect_eq(count_of(d, "executionCounts", "failed"), 2);
	cr_expect_eq(count_of(d, "executionCounts", "succeeded"), 1);
	cr_expect_eq(count_of(d, "executionCounts", "aborted"), 1, "the running child aborted");
	cr_expect_eq(count_of(d, "executionCounts", "running"), 0);
	json_decref(d);
	json_t *h = rig_history(&r, arn);
	json_t *ev = find_event(h, "MapRunFailed");
	cr_assert(ev);
	cr_expect_str_eq(json_string_value(json_object_get(
	                         json_object_get(ev, "mapRunFailedEventDetails"), "error")),
	                 "States.ExceedToleratedFailureThreshold");
	json_decref(h);
	json_t *kids = children(&r, mr);
	size_t aborted = 0, i;
	json_t *it;
	json_array_foreach(kids, i, it) aborted
	        += strcmp(json_string_value(json_object_get(it, "status")), "ABORTED") == 0;
	cr_expect_eq(aborted, 1);
	json_decref(kids);
	// the aborted child's task is no longer awaited
	struct sl_error err;
	sl_error_clear(&err);
	cr_expect_eq(step_task_succeed(r.eng, rig_batch(&r), r.tokens[3], json_null(), &r.fx, &err),
	             SL_ERR_TASK_NOT_FOUND);
	store_batch_abort(r.st, SL_ERR_SHUTTING_DOWN);
	rig_free(&r);
}

Test(step_maprun, stop_aborts_the_children)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemProcessor\":{" DIST
	                 WORK "},\"End\":true}}}");
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "[1,2,3]"));
	map_run_arn(&r, arn, mr);
	rig_answer(&r, 0, true, "1");
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_stop(r.eng, rig_batch(&r), arn, NULL, NULL, &r.fx, &err), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	rig_settle(&r);
	cr_expect_eq(r.status, STEP_ABORTED);
	json_t *d = describe_run(&r, mr);
	cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "ABORTED");
	cr_expect_eq(count_of(d, "executionCounts", "aborted"), 2);
	json_decref(d);
	json_t *kids = children(&r, mr);
	size_t running = 0, i;
	json_t *it;
	json_array_foreach(kids, i, it) running
	        += strcmp(json_string_value(json_object_get(it, "status")), "RUNNING") == 0;
	cr_expect_eq(running, 0);
	json_decref(kids);
	rig_free(&r);
}

Test(step_maprun, children_survive_a_restart)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"MaxConcurrency\":1,"
	         "\"ItemProcessor\":{" DIST WORK "},\"End\":true}}}");
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "[1,2,3]"));
	map_run_arn(&r, arn, mr);
	for (int i = 0; i < 3; i++) {
		rig_restart(&r);
		rig_settle(&r);
		cr_assert_eq(r.n_tasks, i + 1);
		char out[8];
		snprintf(out, sizeof out, "%d", (i + 1) * 10);
		rig_answer(&r, i, true, out);
	}
	cr_assert_eq(r.status, STEP_SUCCEEDED);
	json_t *out = output_of(&r, arn);
	json_t *want = step_test_json("[10,20,30]");
	cr_expect(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	cr_expect_eq(work_runs(&r, mr), 3, "each child ran once");
	rig_free(&r);
}

static sl_err
redrive(struct rig *r, const char *arn)
{
	struct sl_error err;
	sl_error_clear(&err);
	sl_err e = step_redrive(r->eng, rig_batch(r), arn, NULL, NULL, &r->fx, &err);
	cr_assert_eq(store_batch_commit(r->st), SL_OK);
	if (e == SL_OK)
		rig_settle(r);
	return e;
}

Test(step_maprun, redrive_reruns_only_failed_children)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemProcessor\":{" DIST
	                 WORK "},\"End\":true}}}");
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "[1,2,3,4]"));
	map_run_arn(&r, arn, mr);
	rig_answer(&r, 0, true, "10");
	rig_answer(&r, 1, true, "20");
	rig_answer(&r, 2, false, NULL);
	cr_assert_eq(r.status, STEP_FAILED); // item 3 was running: aborted
	cr_expect_eq(work_runs(&r, mr), 4);
	json_t *kids0 = children(&r, mr);
	size_t i;
	json_t *it;
	json_array_foreach(kids0, i, it)
	{
		const char *k = json_string_value(json_object_get(it, "executionArn"));
		const char *st = json_string_value(json_object_get(it, "status"));
		store_txn_t *txn;
		cr_assert_eq(store_read_begin(r.st, &txn), SL_OK);
		json_t *kd = NULL;
		cr_assert_eq(step_describe(r.eng, txn, k, &kd, NULL), SL_OK);
		cr_assert_eq(step_redrive_describe(r.eng, txn, k, kd, NULL), SL_OK);
		store_read_end(txn);
		cr_expect_str_eq(json_string_value(json_object_get(kd, "mapRunArn")), mr);
		cr_expect_str_eq(json_string_value(json_object_get(kd, "redriveStatus")),
		                 strcmp(st, "SUCCEEDED") == 0 ? "NOT_REDRIVABLE"
		                                              : "REDRIVABLE_BY_MAP_RUN");
		json_decref(kd);
		// a child is redriven with its map run, not on its own
		struct sl_error err;
		sl_error_clear(&err);
		if (strcmp(st, "SUCCEEDED") != 0)
			cr_expect_eq(step_redrive(r.eng, rig_batch(&r), k, NULL, NULL, &r.fx, &err),
			             SL_ERR_EXEC_NOT_REDRIVABLE);
		store_batch_abort(r.st, SL_ERR_SHUTTING_DOWN);
	}
	json_decref(kids0);
	cr_assert_eq(redrive(&r, arn), SL_OK);
	cr_assert_eq(r.n_tasks, 6, "the failed and the aborted item run again, no other");
	rig_answer(&r, 4, true, "30");
	rig_answer(&r, 5, true, "40");
	cr_assert_eq(r.status, STEP_SUCCEEDED);
	json_t *out = output_of(&r, arn);
	json_t *want = step_test_json("[10,20,30,40]");
	cr_expect(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	cr_expect_eq(work_runs(&r, mr), 6);
	// the failed and the aborted child were redriven themselves (same ARNs)
	json_t *kids = children(&r, mr);
	cr_expect_eq(json_array_size(kids), 4);
	json_decref(kids);
	json_t *d = describe_run(&r, mr);
	cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "SUCCEEDED");
	cr_expect_eq(json_integer_value(json_object_get(d, "redriveCount")), 1);
	cr_expect(json_object_get(d, "redriveMs"));
	cr_expect_eq(count_of(d, "executionCounts", "succeeded"), 4);
	cr_expect_eq(count_of(d, "executionCounts", "failed"), 0);
	json_decref(d);
	json_t *h = rig_history(&r, arn);
	cr_expect_eq(rig_count_type(h, "MapRunRedriven"), 1);
	cr_expect_eq(rig_count_type(h, "MapRunStarted"), 1, "the same map run is redriven");
	json_decref(h);
	rig_free(&r);
}

Test(step_maprun, parallel_redrive_reruns_only_the_failed_branch)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Parallel\",\"Branches\":[{" WORK
	         "},{\"StartAt\":\"W2\",\"States\":{\"W2\":{\"Type\":\"Task\",\"Resource\":"
	         "\"arn:aws:states:us-east-1:000000000000:activity:w\",\"End\":true}}}],\"End\":"
	         "true}}}");
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "{}"));
	cr_assert_eq(r.n_tasks, 2);
	rig_answer(&r, 0, true, "\"a\"");
	rig_answer(&r, 1, false, NULL);
	cr_assert_eq(r.status, STEP_FAILED);
	cr_assert_eq(redrive(&r, arn), SL_OK);
	cr_assert_eq(r.n_tasks, 3, "only the failed branch runs again");
	rig_answer(&r, 2, true, "\"b\"");
	cr_assert_eq(r.status, STEP_SUCCEEDED);
	json_t *out = output_of(&r, arn);
	json_t *want = step_test_json("[\"a\",\"b\"]");
	cr_expect(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	rig_free(&r);
}

Test(step_maprun, batches_count_items)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemBatcher\":{"
	         "\"MaxItemsPerBatch\":2},\"ItemProcessor\":{" DIST WORK "},\"End\":true}}}");
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "[1,2,3,4,5]"));
	cr_assert_eq(r.n_tasks, 3);
	map_run_arn(&r, arn, mr);
	json_t *d = describe_run(&r, mr);
	cr_expect_eq(count_of(d, "executionCounts", "total"), 3);
	cr_expect_eq(count_of(d, "itemCounts", "total"), 5);
	cr_expect_eq(count_of(d, "itemCounts", "running"), 5);
	json_decref(d);
	rig_answer(&r, 2, true, "0");
	d = describe_run(&r, mr);
	cr_expect_eq(count_of(d, "itemCounts", "succeeded"), 1, "the last batch holds one item");
	json_decref(d);
	store_batch_abort(r.st, SL_ERR_SHUTTING_DOWN);
	rig_free(&r);
}

Test(step_maprun, update_map_run_raises_concurrency)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"MaxConcurrency\":1,"
	         "\"ItemProcessor\":{" DIST WORK "},\"End\":true}}}");
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "[1,2,3]"));
	cr_assert_eq(r.n_tasks, 1);
	map_run_arn(&r, arn, mr);
	struct step_map_run_update u = { .max_concurrency = 3,
		                         .tolerated_failure_count = -1,
		                         .tolerated_failure_percentage = -1 };
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_update_map_run(r.eng, rig_batch(&r), mr, &u, &r.fx, &err), SL_OK, "%s",
	             sl_error_text(&err));
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	rig_settle(&r);
	cr_expect_eq(r.n_tasks, 3, "the other two start at once");
	json_t *d = describe_run(&r, mr);
	cr_expect_eq(json_integer_value(json_object_get(d, "maxConcurrency")), 3);
	json_decref(d);
	rig_free(&r);
}

Test(step_maprun, failing_sibling_branch_aborts_the_run)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Parallel\",\"Branches\":["
	         "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemProcessor\":{" DIST
	                 WORK "},\"End\":true}}},"
	         "{\"StartAt\":\"X\",\"States\":{\"X\":{\"Type\":\"Task\",\"Resource\":"
	         "\"arn:aws:states:us-east-1:000000000000:activity:x\",\"End\":true}}}],"
	         "\"End\":true}}}");
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "[1,2]"));
	cr_assert_eq(r.n_tasks, 3);
	map_run_arn(&r, arn, mr);
	int x = strcmp(r.states[0], "X") == 0 ? 0 : strcmp(r.states[1], "X") == 0 ? 1 : 2;
	rig_answer(&r, x, false, NULL);
	cr_assert_eq(r.status, STEP_FAILED);
	cr_expect_str_eq(r.error, "Boom");
	json_t *d = describe_run(&r, mr);
	cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "ABORTED");
	cr_expect_eq(count_of(d, "executionCounts", "aborted"), 2);
	json_decref(d);
	json_t *h = rig_history(&r, arn);
	cr_expect_eq(rig_count_type(h, "MapRunAborted"), 1);
	json_decref(h);
	json_t *kids = children(&r, mr);
	size_t i, aborted = 0;
	json_t *it;
	json_array_foreach(kids, i, it) aborted
	        += strcmp(json_string_value(json_object_get(it, "status")), "ABORTED") == 0;
	cr_expect_eq(aborted, 2);
	json_decref(kids);
	rig_free(&r);
}

/* Crashes before commits at many points (a task answered, frames run, then the batch
 * dropped with the engine's memory): every item still runs in exactly one committed child,
 * and the result is whole and in order. */
Test(step_maprun, uncommitted_work_is_redone_once)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"MaxConcurrency\":3,"
	         "\"ToleratedFailureCount\":0,\"ItemProcessor\":{" DIST
	         "\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Task\",\"Resource\":"
	         "\"arn:aws:states:us-east-1:000000000000:activity:w\",\"ResultPath\":null,"
	         "\"Next\":\"P\"},\"P\":{\"Type\":\"Pass\",\"End\":true}}},\"End\":true}}}");
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "[0,1,2,3,4,5,6,7]"));
	map_run_arn(&r, arn, mr);
	bool gone[256] = { false };
	uint64_t rnd = 0x9e3779b97f4a7c15ull;
	int crashes = 0;
	for (int round = 0; round < 2000 && !r.finished; round++) {
		rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
		int live[256], n = 0;
		for (int i = 0; i < r.n_tasks; i++)
			if (!gone[i])
				live[n++] = i;
		cr_assert_gt(n, 0, "nothing to answer and not finished");
		int t = live[(rnd >> 33) % (uint64_t)n];
		struct sl_error err;
		sl_error_clear(&err);
		sl_err e = step_task_succeed(r.eng, rig_batch(&r), r.tokens[t], json_null(), &r.fx,
		                             &err);
		if (e == SL_ERR_TASK_NOT_FOUND) { // scheduled in a batch that never committed
			gone[t] = true;
			store_batch_abort(r.st, SL_ERR_SHUTTING_DOWN);
			continue;
		}
		cr_assert_eq(e, SL_OK, "%s", sl_error_text(&err));
		// some work of the same batch, then a crash before its commit in 2 of 5 rounds
		cr_assert_eq(step_run_ready(r.eng, rig_batch(&r), &r.fx, NULL, &err), SL_OK);
		if ((rnd >> 20) % 5 < 2) {
			crashes++;
			r.finished = false;
			rig_restart(&r);
			rig_settle(&r);
			continue;
		}
		cr_assert_eq(store_batch_commit(r.st), SL_OK);
		gone[t] = true;
		rig_settle(&r);
	}
	cr_assert(r.finished, "not finished after %d crashes", crashes);
	cr_expect_gt(crashes, 0);
	cr_assert_eq(r.status, STEP_SUCCEEDED);
	json_t *out = output_of(&r, arn);
	json_t *want = step_test_json("[0,1,2,3,4,5,6,7]");
	cr_expect(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	json_t *kids = children(&r, mr);
	cr_expect_eq(json_array_size(kids), 8, "one committed child per item");
	size_t i;
	json_t *it;
	json_array_foreach(kids, i, it)
	{
		json_t *h = rig_history(&r, json_string_value(json_object_get(it, "executionArn")));
		cr_expect_eq(rig_count_type(h, "ExecutionStarted"), 1);
		cr_expect_eq(rig_count_type(h, "TaskStateEntered"), 1);
		cr_expect_eq(rig_count_type(h, "PassStateExited"), 1);
		cr_expect_eq(rig_count_type(h, "ExecutionSucceeded"), 1);
		size_t j;
		json_t *ev;
		json_array_foreach(h, j, ev) cr_expect_eq(
		        json_integer_value(json_object_get(ev, "id")), (json_int_t)j + 1);
		json_decref(h);
	}
	json_decref(kids);
	json_t *d = describe_run(&r, mr);
	cr_expect_eq(count_of(d, "executionCounts", "succeeded"), 8);
	cr_expect_eq(count_of(d, "executionCounts", "running"), 0);
	cr_expect_eq(count_of(d, "executionCounts", "pending"), 0);
	json_decref(d);
	rig_free(&r);
}

static json_t *
load_file(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	cr_assert(j, "%s: %s", path, je.text);
	return j;
}

Test(step_maprun, result_writer_files)
{
	char root[] = "/tmp/step-rw-XXXXXX";
	cr_assert(mkdtemp(root));
	char *bucket = sl_asprintf("%s/out", root);
	cr_assert(mkdir(bucket, 0755) == 0);
	struct rig r;
	rig_init_root(
	        &r,
	        "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\","
	        "\"ToleratedFailureCount\":1,\"ResultWriter\":{\"Resource\":"
	        "\"arn:aws:states:::s3:putObject\",\"Parameters\":{\"Bucket\":\"out\","
	        "\"Prefix.$\":\"$.where\"}},\"ItemsPath\":\"$.items\",\"ItemProcessor\":{" DIST WORK
	        "},\"End\":true}}}",
	        root);
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s",
	         rig_start(&r, "e1", "{\"where\":\"runs/nightly\",\"items\":[1,2,3]}"));
	map_run_arn(&r, arn, mr);
	rig_answer(&r, 0, true, "\"a\"");
	rig_answer(&r, 1, false, NULL);
	rig_answer(&r, 2, true, "\"c\"");
	cr_assert_eq(r.status, STEP_SUCCEEDED, "%s", r.error);
	const char *id = strrchr(mr, ':') + 1;
	char key[256];
	snprintf(key, sizeof key, "runs/nightly/%s/manifest.json", id);
	json_t *out = output_of(&r, arn);
	cr_expect_str_eq(json_string_value(json_object_get(out, "MapRunArn")), mr);
	json_t *det = json_object_get(out, "ResultWriterDetails");
	cr_expect_str_eq(json_string_value(json_object_get(det, "Bucket")), "out");
	cr_expect_str_eq(json_string_value(json_object_get(det, "Key")), key);
	json_decref(out);
	char *p = sl_asprintf("%s/%s", bucket, key);
	json_t *man = load_file(p);
	sl_free(p);
	cr_expect_str_eq(json_string_value(json_object_get(man, "MapRunArn")), mr);
	json_t *files = json_object_get(man, "ResultFiles");
	cr_expect_eq(json_array_size(json_object_get(files, "SUCCEEDED")), 1);
	cr_expect_eq(json_array_size(json_object_get(files, "FAILED")), 1);
	cr_expect_eq(json_array_size(json_object_get(files, "PENDING")), 0);
	json_decref(man);
	p = sl_asprintf("%s/runs/nightly/%s/SUCCEEDED_0.json", bucket, id);
	json_t *ok = load_file(p);
	sl_free(p);
	cr_assert_eq(json_array_size(ok), 2);
	json_t *e0 = json_array_get(ok, 0);
	cr_expect_str_eq(json_string_value(json_object_get(e0, "Status")), "SUCCEEDED");
	cr_expect(json_string_value(json_object_get(e0, "Output")));
	cr_expect(json_string_value(json_object_get(e0, "Input")));
	json_decref(ok);
	p = sl_asprintf("%s/runs/nightly/%s/FAILED_0.json", bucket, id);
	json_t *bad = load_file(p);
	sl_free(p);
	cr_assert_eq(json_array_size(bad), 1);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(bad, 0), "Error")),
	                 "Boom");
	json_decref(bad);
	rig_free(&r);
	sl_free(bucket);
	step_test_rmtree(root);
}

Test(step_maprun, result_writer_without_its_bucket_fails_the_state)
{
	char root[] = "/tmp/step-rw-XXXXXX";
	cr_assert(mkdtemp(root));
	struct rig r;
	rig_init_root(&r,
	              "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ResultWriter\":{"
	              "\"Resource\":\"arn:aws:states:::s3:putObject\",\"Parameters\":{\"Bucket\":"
	              "\"nope\",\"Prefix\":\"x\"}},\"ItemProcessor\":{" DIST
	              "\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}},"
	              "\"End\":true}}}",
	              root);
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "[1]"));
	cr_assert_eq(r.status, STEP_FAILED);
	cr_expect_str_eq(r.error, "States.ResultWriterFailed");
	map_run_arn(&r, arn, mr);
	json_t *d = describe_run(&r, mr);
	cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "FAILED");
	json_decref(d);
	rig_free(&r);
	step_test_rmtree(root);
}

/* A stopped or timed-out parent with a map run in flight: the Map state's MapRunAborted
 * (after its MapRunStarted, in its chain of events) and then the execution's end, which
 * stays the last event; the run is ABORTED. */
static void
check_closing_history(struct rig *r, const char *arn, const char *mr, const char *end)
{
	json_t *h = rig_history(r, arn);
	size_t n = json_array_size(h);
	cr_assert_geq(n, 2);
	cr_expect_eq(rig_count_type(h, "MapRunAborted"), 1);
	json_t *last = json_array_get(h, n - 1), *before = json_array_get(h, n - 2);
	cr_expect_str_eq(json_string_value(json_object_get(last, "type")), end);
	cr_expect_str_eq(json_string_value(json_object_get(before, "type")), "MapRunAborted");
	json_t *started = find_event(h, "MapRunStarted");
	cr_assert_not_null(started);
	cr_expect_eq(json_integer_value(json_object_get(before, "previousEventId")),
	             json_integer_value(json_object_get(started, "id")));
	cr_expect_eq(json_integer_value(json_object_get(before, "id")) + 1,
	             json_integer_value(json_object_get(last, "id")));
	json_decref(h);
	json_t *d = describe_run(r, mr);
	cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "ABORTED");
	json_decref(d);
}

Test(step_maprun, stop_writes_map_run_aborted_before_the_end)
{
	struct rig r;
	rig_init(&r,
	         "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemProcessor\":{" DIST
	                 WORK "},\"End\":true}}}");
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "[1,2]"));
	map_run_arn(&r, arn, mr);
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_stop(r.eng, rig_batch(&r), arn, "Halt", "by hand", &r.fx, &err), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	rig_settle(&r);
	cr_expect_eq(r.status, STEP_ABORTED);
	check_closing_history(&r, arn, mr, "ExecutionAborted");
	rig_free(&r);
}

Test(step_maprun, timeout_writes_map_run_aborted_before_the_end)
{
	struct rig r;
	rig_init(
	        &r,
	        "{\"TimeoutSeconds\":5,\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Parallel\","
	        "\"End\":true,\"Branches\":[{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\","
	        "\"ItemProcessor\":{" DIST WORK "},\"End\":true}}}]}}}");
	char arn[STEP_ARN_MAX], mr[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", rig_start(&r, "e1", "[1,2]"));
	map_run_arn(&r, arn, mr);
	sl_clock_fake_advance(6000);
	rig_settle(&r);
	cr_expect_eq(r.status, STEP_TIMED_OUT);
	check_closing_history(&r, arn, mr, "ExecutionTimedOut");
	rig_free(&r);
}
