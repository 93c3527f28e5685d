/*
 * Distributed Map on the real server: DescribeMapRun, ListMapRuns and ListExecutions
 * (mapRunArn) shapes and errors, UpdateMapRun; `sluice map-runs` and `aws stepfunctions
 * describe-map-run` when awscli is installed; a SIGKILL while children run (every child
 * once, the right result); a redrive of a map run with a failed item (only that item runs
 * again); a stop of the parent aborts the children.
 *
 * Waits are bounded polls (hang guards), never timing assertions.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AWS_CALLS_SERVICE "AWSStepFunctions"
#include "tests/integration/aws_calls.h"
#include "tests/integration/harness.h"

#define SM(name)     "arn:aws:states:us-east-1:000000000000:stateMachine:" name
#define EXEC(m, n)   "arn:aws:states:us-east-1:000000000000:execution:" m ":" n
#define ROLE         "arn:aws:iam::000000000000:role/x"
#define DONE_WAIT_MS 30000
#define AWS_ENV                                                                                    \
	"AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 AWS_PAGER= "     \
	"AWS_MAX_ATTEMPTS=1 "

#define DIST "\"ProcessorConfig\":{\"Mode\":\"DISTRIBUTED\",\"ExecutionType\":\"STANDARD\"},"

/* Each child waits a second, then doubles nothing: its output is {"v": item}. */
static const char *const DEF_WAIT
        = "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"Label\":\"Batch\","
          "\"MaxConcurrency\":2,\"ItemsPath\":\"$.items\",\"ItemSelector\":{\"v.$\":"
          "\"$$.Map.Item.Value\"},\"ItemProcessor\":{" DIST "\"StartAt\":\"W\",\"States\":{"
          "\"W\":{\"Type\":\"Wait\",\"Seconds\":1,\"End\":true}}},\"End\":true}}}";

/* Each child hands a callback token out and waits for SendTaskSuccess/Failure. */
static const char *const DEF_TOKEN
        = "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemProcessor\":{" DIST
          "\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"
          "\"arn:aws:states:::lambda:invoke.waitForTaskToken\",\"Parameters\":{"
          "\"FunctionName\":\"f\",\"Payload\":{\"token.$\":\"$$.Task.Token\",\"item.$\":\"$\"}},"
          "\"End\":true}}},\"End\":true}}}";

static void
reap(void)
{
	h_cleanup(&srv);
}

TestSuite(map_runs, .fini = reap);

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void
setup_machine(const char *name, const char *def)
{
	json_decref(
	        ok("CreateStateMachine",
	           json_pack("{s:s,s:s,s:s}", "name", name, "definition", def, "roleArn", ROLE)));
}

/* The map run ARN of the only run of arn (polled until ListMapRuns has it). */
static char *
map_run_of(const char *arn)
{
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		json_t *l = ok("ListMapRuns", json_pack("{s:s}", "executionArn", arn));
		json_t *runs = json_object_get(l, "mapRuns");
		if (json_array_size(runs) == 1) {
			json_t *r = json_array_get(runs, 0);
			cr_expect_str_eq(s(r, "executionArn"), arn);
			cr_expect(s(r, "stateMachineArn")
			          && strstr(s(r, "stateMachineArn"), ":stateMachine:"));
			cr_expect(json_is_number(json_object_get(r, "startDate")));
			char *out = strdup(s(r, "mapRunArn"));
			json_decref(l);
			return out;
		}
		json_decref(l);
		nap_ms(50);
	}
	cr_assert_fail("no map run for %s", arn);
	return NULL;
}

/* Every child of the run (all pages of ListExecutions with mapRunArn). */
static json_t *
children(const char *mr)
{
	json_t *all = json_array();
	char *token = NULL;
	do {
		json_t *req = json_pack("{s:s,s:i}", "mapRunArn", mr, "maxResults", 2);
		if (token)
			json_object_set_new(req, "nextToken", json_string(token));
		free(token);
		token = NULL;
		json_t *l = ok("ListExecutions", req);
		json_array_extend(all, json_object_get(l, "executions"));
		if (s(l, "nextToken"))
			token = strdup(s(l, "nextToken"));
		json_decref(l);
	} while (token);
	return all;
}

static size_t
children_with(json_t *kids, const char *status)
{
	size_t n = 0, i;
	json_t *k;
	json_array_foreach(kids, i, k) n += strcmp(s(k, "status"), status) == 0;
	return n;
}

static json_t *
counts(json_t *d, const char *group)
{
	return json_object_get(d, group);
}

static json_int_t
cnt(json_t *d, const char *group, const char *k)
{
	return json_integer_value(json_object_get(counts(d, group), k));
}

static void
assert_json(const char *got_text, const char *want_text)
{
	json_t *got = got_text ? json_loads(got_text, JSON_DECODE_ANY, NULL) : NULL;
	json_t *want = json_loads(want_text, JSON_DECODE_ANY, NULL);
	cr_assert(got && want && json_equal(got, want), "got %s, expected %s", got_text, want_text);
	json_decref(got);
	json_decref(want);
}

Test(map_runs, describe_list_and_children_shapes)
{
	start();
	setup_machine("mr", DEF_WAIT);
	const char *arn = EXEC("mr", "e1");
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("mr"), "name", "e1",
	                         "input", "{\"items\":[1,2,3]}")));
	char *mr = map_run_of(arn);
	cr_expect(strstr(mr, ":mapRun:mr/Batch:"), "%s", mr);
	json_t *d = exec_wait_status(arn, "SUCCEEDED", DONE_WAIT_MS);
	assert_json(s(d, "output"), "[{\"v\":1},{\"v\":2},{\"v\":3}]");
	json_decref(d);

	d = ok("DescribeMapRun", json_pack("{s:s}", "mapRunArn", mr));
	cr_expect_str_eq(s(d, "mapRunArn"), mr);
	cr_expect_str_eq(s(d, "executionArn"), arn);
	cr_expect_str_eq(s(d, "status"), "SUCCEEDED");
	cr_expect(json_is_number(json_object_get(d, "startDate")));
	cr_expect(json_is_number(json_object_get(d, "stopDate")));
	cr_expect_eq(json_integer_value(json_object_get(d, "maxConcurrency")), 2);
	cr_expect(json_is_number(json_object_get(d, "toleratedFailurePercentage")));
	cr_expect(json_is_integer(json_object_get(d, "toleratedFailureCount")));
	cr_expect_eq(json_integer_value(json_object_get(d, "redriveCount")), 0);
	const char *keys[] = { "pending",       "running",        "succeeded",
		               "failed",        "timedOut",       "aborted",
		               "total",         "resultsWritten", "failuresNotRedrivable",
		               "pendingRedrive" };
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		cr_expect(json_is_integer(json_object_get(counts(d, "itemCounts"), keys[i])), "%s",
		          keys[i]);
		cr_expect(json_is_integer(json_object_get(counts(d, "executionCounts"), keys[i])),
		          "%s", keys[i]);
	}
	cr_expect_eq(cnt(d, "itemCounts", "succeeded"), 3);
	cr_expect_eq(cnt(d, "executionCounts", "total"), 3);
	json_decref(d);

	json_t *kids = children(mr);
	cr_assert_eq(json_array_size(kids), 3);
	cr_expect_eq(children_with(kids, "SUCCEEDED"), 3);
	size_t i;
	json_t *k;
	json_array_foreach(kids, i, k)
	{
		cr_expect_str_eq(s(k, "mapRunArn"), mr);
		cr_expect_eq(json_integer_value(json_object_get(k, "itemCount")), 1);
		cr_expect_eq(json_integer_value(json_object_get(k, "redriveCount")), 0);
		cr_expect(strstr(s(k, "executionArn"), ":execution:mr/Batch:"), "%s",
		          s(k, "executionArn"));
		json_t *kd = ok("DescribeExecution",
		                json_pack("{s:s}", "executionArn", s(k, "executionArn")));
		cr_expect_str_eq(s(kd, "status"), "SUCCEEDED");
		cr_expect_str_eq(s(kd, "mapRunArn"), mr);
		json_decref(kd);
		// its machine is the Map's ItemProcessor, labelled
		json_t *sm = ok("DescribeStateMachineForExecution",
		                json_pack("{s:s}", "executionArn", s(k, "executionArn")));
		cr_expect_str_eq(s(sm, "label"), "Batch");
		cr_expect_str_eq(s(sm, "mapRunArn"), mr);
		cr_expect(strstr(s(sm, "stateMachineArn"), ":stateMachine:mr/Batch"));
		json_t *def = json_loads(s(sm, "definition"), 0, NULL);
		cr_expect_str_eq(s(def, "StartAt"), "W", "%s", s(sm, "definition"));
		json_decref(def);
		json_decref(sm);
		json_t *h = exec_history(s(k, "executionArn"));
		cr_expect_eq(events_count(h, "ExecutionStarted"), 1);
		cr_expect_eq(events_count(h, "WaitStateEntered"), 1);
		json_decref(h);
	}
	json_decref(kids);
	// the parent's own listing does not show the children
	json_t *l = ok("ListExecutions", json_pack("{s:s}", "stateMachineArn", SM("mr")));
	cr_expect_eq(json_array_size(json_object_get(l, "executions")), 1);
	json_decref(l);
	json_t *h = exec_history(arn);
	cr_expect_eq(events_count(h, "MapRunStarted"), 1);
	cr_expect_eq(events_count(h, "MapRunSucceeded"), 1);
	json_decref(h);

	// errors
	fails("DescribeMapRun",
	      json_pack("{s:s}", "mapRunArn",
	                "arn:aws:states:us-east-1:000000000000:mapRun:mr/Batch:nope"),
	      "ResourceNotFound", "nope");
	fails("DescribeMapRun", json_pack("{s:s}", "mapRunArn", "not-an-arn"), "InvalidArn",
	      "not-an-arn");
	fails("ListMapRuns", json_pack("{s:s}", "executionArn", EXEC("mr", "none")),
	      "ExecutionDoesNotExist", "none");
	fails("ListExecutions",
	      json_pack("{s:s,s:s}", "mapRunArn", mr, "stateMachineArn", SM("mr")),
	      "ValidationException", "mapRunArn");
	fails("UpdateMapRun",
	      json_pack("{s:s,s:i}", "mapRunArn", mr, "toleratedFailurePercentage", 101),
	      "ValidationException", "toleratedFailurePercentage");
	json_decref(
	        ok("UpdateMapRun", json_pack("{s:s,s:i}", "mapRunArn", mr, "maxConcurrency", 5)));
	d = ok("DescribeMapRun", json_pack("{s:s}", "mapRunArn", mr));
	cr_expect_eq(json_integer_value(json_object_get(d, "maxConcurrency")), 5);
	json_decref(d);

	// the CLIs
	const char *bin = getenv("SLUICE_BIN");
	cr_assert_not_null(bin, "SLUICE_BIN is not set");
	char cmd[1200];
	char *out = NULL;
	snprintf(cmd, sizeof cmd, "%s map-runs list %s --endpoint http://127.0.0.1:%d", bin, arn,
	         srv.http_port);
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_expect(strstr(out, mr), "%s", out);
	free(out);
	snprintf(cmd, sizeof cmd, "%s map-runs describe %s --endpoint http://127.0.0.1:%d", bin, mr,
	         srv.http_port);
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_expect(strstr(out, "SUCCEEDED") && strstr(out, "executions"), "%s", out);
	free(out);
	snprintf(cmd, sizeof cmd, "%s map-runs describe %.300s:x --endpoint http://127.0.0.1:%d",
	         bin, mr, srv.http_port);
	cr_expect_eq(h_run(cmd, &out), 2, "%s", out);
	free(out);
	// watch: the distributed Map's progress comes from the map run's counters
	snprintf(cmd, sizeof cmd, "%s executions watch %s --endpoint http://127.0.0.1:%d", bin, arn,
	         srv.http_port);
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_expect(strstr(out, "M 3/3 succeeded, 0 failed, 0 running"), "%s", out);
	free(out);
	if (h_run("command -v aws >/dev/null", NULL) == 0) {
		snprintf(cmd, sizeof cmd,
		         AWS_ENV
		         "aws --output json --endpoint-url http://127.0.0.1:%d stepfunctions "
		         "describe-map-run --map-run-arn %s",
		         srv.http_port, mr);
		cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
		json_t *j = json_loads(out, 0, NULL);
		cr_assert(j, "%s", out);
		cr_expect_str_eq(s(j, "status"), "SUCCEEDED");
		cr_expect_eq(cnt(j, "executionCounts", "succeeded"), 3);
		json_decref(j);
		free(out);
		snprintf(cmd, sizeof cmd,
		         AWS_ENV
		         "aws --output json --endpoint-url http://127.0.0.1:%d stepfunctions "
		         "list-executions --map-run-arn %s",
		         srv.http_port, mr);
		cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
		j = json_loads(out, 0, NULL);
		cr_assert(j, "%s", out);
		cr_expect_eq(json_array_size(json_object_get(j, "executions")), 3);
		json_decref(j);
		free(out);
	} else {
		cr_log_warn("awscli not installed: its calls were not tried");
	}
	free(mr);
	stop();
}

/* SIGKILL while children run: after the restart every item has run in exactly one child
 * and the result is whole and in order. */
Test(map_runs, sigkill_during_children)
{
	start();
	setup_machine("mk", DEF_WAIT);
	const char *arn = EXEC("mk", "k1");
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("mk"), "name", "k1",
	                         "input", "{\"items\":[1,2,3,4,5,6]}")));
	char *mr = map_run_of(arn);
	// some children are running (MaxConcurrency 2, each waits a second)
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		json_t *d = ok("DescribeMapRun", json_pack("{s:s}", "mapRunArn", mr));
		json_int_t running = cnt(d, "executionCounts", "running");
		json_decref(d);
		if (running > 0)
			break;
		nap_ms(50);
	}
	char data[300];
	snprintf(data, sizeof data, "%s", srv.data);
	h_kill(&srv);
	const char *extra[] = { "--data", data, NULL };
	cr_assert(h_start(&srv, extra), "restart failed");
	json_t *d = exec_wait_status(arn, "SUCCEEDED", DONE_WAIT_MS);
	assert_json(s(d, "output"),
	            "[{\"v\":1},{\"v\":2},{\"v\":3},{\"v\":4},{\"v\":5},{\"v\":6}]");
	json_decref(d);
	json_t *kids = children(mr);
	cr_expect_eq(json_array_size(kids), 6, "one child per item");
	cr_expect_eq(children_with(kids, "SUCCEEDED"), 6);
	json_decref(kids);
	d = ok("DescribeMapRun", json_pack("{s:s}", "mapRunArn", mr));
	cr_expect_str_eq(s(d, "status"), "SUCCEEDED");
	cr_expect_eq(cnt(d, "executionCounts", "succeeded"), 6);
	cr_expect_eq(cnt(d, "executionCounts", "running"), 0);
	json_decref(d);
	free(mr);
	stop();
}

/* The callback token of the nth (1-based) task child scheduled (polled until it is). */
static char *
child_token(const char *child, size_t nth)
{
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 20) {
		json_t *ev = exec_history(child);
		size_t i, seen = 0;
		json_t *e;
		json_array_foreach(ev, i, e)
		{
			if (strcmp(s(e, "type"), "TaskScheduled") != 0 || ++seen < nth)
				continue;
			json_t *p = json_object_get(json_object_get(e, "taskScheduledEventDetails"),
			                            "parameters");
			json_t *params = json_loads(json_string_value(p), 0, NULL);
			const char *tok = s(json_object_get(params, "Payload"), "token");
			cr_assert(tok && strlen(tok) == 32);
			char *out = strdup(tok);
			json_decref(params);
			json_decref(ev);
			return out;
		}
		json_decref(ev);
		nap_ms(20);
	}
	cr_assert_fail("%s: no TaskScheduled", child);
	return NULL;
}

/* The item a child got (its execution input). */
static json_int_t
child_item(const char *child)
{
	json_t *d = ok("DescribeExecution", json_pack("{s:s}", "executionArn", child));
	json_t *in = json_loads(s(d, "input"), JSON_DECODE_ANY, NULL);
	json_int_t v = json_integer_value(in);
	json_decref(in);
	json_decref(d);
	return v;
}

static json_t *
wait_children(const char *mr, size_t n, const char *status)
{
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		json_t *kids = children(mr);
		if (json_array_size(kids) >= n && children_with(kids, status) >= n)
			return kids;
		json_decref(kids);
		nap_ms(50);
	}
	cr_assert_fail("%s: not %zu children %s", mr, n, status);
	return NULL;
}

Test(map_runs, redrive_reruns_only_failed_items)
{
	start();
	setup_machine("md", DEF_TOKEN);
	const char *arn = EXEC("md", "r1");
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("md"), "name", "r1",
	                         "input", "[1,2,3]")));
	char *mr = map_run_of(arn);
	json_t *kids = wait_children(mr, 3, "RUNNING");
	size_t i;
	json_t *k;
	// the good items first: the failure ends the run and aborts whatever still runs
	for (int pass = 0; pass < 2; pass++) {
		json_array_foreach(kids, i, k)
		{
			const char *child = s(k, "executionArn");
			json_int_t item = child_item(child);
			if ((item == 2) != (pass == 1))
				continue;
			char *tok = child_token(child, 1);
			if (item == 2) {
				json_decref(ok("SendTaskFailure",
				               json_pack("{s:s,s:s}", "taskToken", tok, "error",
				                         "Item.Bad")));
			} else {
				char o[16];
				snprintf(o, sizeof o, "%lld", (long long)item * 10);
				json_decref(
				        ok("SendTaskSuccess",
				           json_pack("{s:s,s:s}", "taskToken", tok, "output", o)));
			}
			free(tok);
		}
	}
	json_decref(kids);
	json_t *d = exec_wait_status(arn, "FAILED", DONE_WAIT_MS);
	cr_expect_str_eq(s(d, "error"), "States.ExceedToleratedFailureThreshold");
	cr_expect_str_eq(s(d, "redriveStatus"), "REDRIVABLE");
	json_decref(d);
	d = ok("DescribeMapRun", json_pack("{s:s}", "mapRunArn", mr));
	cr_expect_str_eq(s(d, "status"), "FAILED");
	cr_expect_eq(cnt(d, "executionCounts", "failed"), 1);
	json_decref(d);

	json_decref(ok("RedriveExecution", json_pack("{s:s}", "executionArn", arn)));
	kids = wait_children(mr, 1, "RUNNING");
	cr_assert_eq(json_array_size(kids), 3, "the failed child is redriven, no new one");
	json_array_foreach(kids, i, k)
	{
		if (strcmp(s(k, "status"), "RUNNING") != 0)
			continue;
		cr_expect_eq(child_item(s(k, "executionArn")), 2);
		json_t *kd = ok("DescribeExecution",
		                json_pack("{s:s}", "executionArn", s(k, "executionArn")));
		cr_expect_eq(json_integer_value(json_object_get(kd, "redriveCount")), 1);
		json_decref(kd);
		char *tok = child_token(s(k, "executionArn"), 2); // its redriven task
		json_decref(ok("SendTaskSuccess",
		               json_pack("{s:s,s:s}", "taskToken", tok, "output", "20")));
		free(tok);
	}
	json_decref(kids);
	d = exec_wait_status(arn, "SUCCEEDED", DONE_WAIT_MS);
	assert_json(s(d, "output"), "[10,20,30]");
	json_decref(d);
	d = ok("DescribeMapRun", json_pack("{s:s}", "mapRunArn", mr));
	cr_expect_str_eq(s(d, "status"), "SUCCEEDED");
	cr_expect_eq(json_integer_value(json_object_get(d, "redriveCount")), 1);
	cr_expect(json_is_number(json_object_get(d, "redriveDate")));
	cr_expect_eq(cnt(d, "executionCounts", "succeeded"), 3);
	json_decref(d);
	// the item processor's task ran four times in all: three items, one of them twice
	kids = children(mr);
	size_t tasks = 0;
	json_array_foreach(kids, i, k)
	{
		json_t *h = exec_history(s(k, "executionArn"));
		tasks += events_count(h, "TaskStateEntered");
		json_decref(h);
	}
	cr_expect_eq(tasks, 4);
	json_decref(kids);
	json_t *h = exec_history(arn);
	cr_expect_eq(events_count(h, "MapRunRedriven"), 1);
	cr_expect_eq(events_count(h, "ExecutionRedriven"), 1);
	json_decref(h);
	free(mr);
	stop();
}

/* StopExecution of the parent aborts the running children and the map run. */
Test(map_runs, stop_aborts_children)
{
	start();
	setup_machine("ms", DEF_TOKEN);
	const char *arn = EXEC("ms", "s1");
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("ms"), "name", "s1",
	                         "input", "[1,2,3]")));
	char *mr = map_run_of(arn);
	json_decref(wait_children(mr, 3, "RUNNING"));
	json_decref(ok("StopExecution", json_pack("{s:s}", "executionArn", arn)));
	json_decref(exec_wait_status(arn, "ABORTED", DONE_WAIT_MS));
	json_t *kids = children(mr);
	cr_expect_eq(children_with(kids, "ABORTED"), 3);
	json_decref(kids);
	json_t *d = ok("DescribeMapRun", json_pack("{s:s}", "mapRunArn", mr));
	cr_expect_str_eq(s(d, "status"), "ABORTED");
	cr_expect_eq(cnt(d, "executionCounts", "aborted"), 3);
	cr_expect(json_is_number(json_object_get(d, "stopDate")));
	json_decref(d);
	free(mr);
	stop();
}
