/*
 * Executions on the real server: StartExecution (idempotent by name), DescribeExecution,
 * GetExecutionHistory (paging, reverse), ListExecutions, StopExecution,
 * DescribeStateMachineForExecution; Pass/Choice/Map, Fail, Wait on real time, a Task that
 * waits for a worker, revisions kept across UpdateStateMachine, resumption after a SIGKILL;
 * and the aws CLI and boto3 when they are installed.
 *
 * Waits for completion are bounded polls (hang guards), never timing assertions.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AWS_CALLS_SERVICE "AWSStepFunctions"
#include "tests/integration/aws_calls.h"
#include "tests/integration/harness.h"

#define SM(name)     "arn:aws:states:us-east-1:000000000000:stateMachine:" name
#define EXEC(m, n)   "arn:aws:states:us-east-1:000000000000:execution:" m ":" n
#define ROLE         "arn:aws:iam::000000000000:role/x"
#define DONE_WAIT_MS 20000

/* Pass -> Choice -> Map (each item doubled by a Pass in the iterator). */
#define FLOW_DEF                                                                                   \
	"{\"StartAt\":\"Init\",\"States\":{"                                                       \
	"\"Init\":{\"Type\":\"Pass\",\"Result\":[1,2,3],\"ResultPath\":\"$.items\","               \
	"\"Next\":\"Pick\"},"                                                                      \
	"\"Pick\":{\"Type\":\"Choice\",\"Choices\":[{\"Variable\":\"$.go\",\"BooleanEquals\":"     \
	"true,\"Next\":\"Each\"}],\"Default\":\"No\"},"                                            \
	"\"No\":{\"Type\":\"Fail\",\"Error\":\"NoGo\",\"Cause\":\"go was false\"},"                \
	"\"Each\":{\"Type\":\"Map\",\"ItemsPath\":\"$.items\",\"ResultPath\":\"$.out\","           \
	"\"Iterator\":{\"StartAt\":\"Dbl\",\"States\":{\"Dbl\":{\"Type\":\"Pass\","                \
	"\"Parameters\":{\"v.$\":\"$\"},\"End\":true}}},\"End\":true}}}"
#define WAIT_DEF(secs, word)                                                                       \
	"{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\",\"Seconds\":" #secs               \
	",\"Next\":\"P\"},\"P\":{\"Type\":\"Pass\",\"Result\":\"" word "\",\"ResultPath\":"        \
	"\"$.r\",\"End\":true}}}"
#define TASK_DEF                                                                                   \
	"{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"                    \
	"\"arn:aws:states:us-east-1:000000000000:activity:work\",\"End\":true}}}"

static void
create(const char *name, const char *def)
{
	json_decref(
	        ok("CreateStateMachine",
	           json_pack("{s:s,s:s,s:s}", "name", name, "definition", def, "roleArn", ROLE)));
}

static json_t *
start_exec(const char *smarn, const char *name, const char *input)
{
	json_t *req = json_pack("{s:s}", "stateMachineArn", smarn);
	if (name)
		json_object_set_new(req, "name", json_string(name));
	if (input)
		json_object_set_new(req, "input", json_string(input));
	json_t *r = ok("StartExecution", req);
	cr_assert_not_null(s(r, "executionArn"));
	cr_assert(json_is_number(json_object_get(r, "startDate")));
	return r;
}

static json_t *
describe(const char *arn)
{
	return ok("DescribeExecution", json_pack("{s:s}", "executionArn", arn));
}

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Ids 1..n in order, each type of the execution's end at most once. */
static void
check_dense(json_t *events)
{
	size_t i;
	json_t *e;
	json_array_foreach(events, i, e)
	{
		cr_assert_eq(json_integer_value(json_object_get(e, "id")), (json_int_t)i + 1,
		             "event %zu has id %lld", i,
		             (long long)json_integer_value(json_object_get(e, "id")));
	}
	cr_assert_leq(events_count(events, "ExecutionStarted"), 1);
	cr_assert_leq(events_count(events, "ExecutionSucceeded"), 1);
}

static void
assert_output(json_t *d, const char *want_json)
{
	json_t *got = json_loads(s(d, "output"), JSON_DECODE_ANY, NULL);
	json_t *want = json_loads(want_json, JSON_DECODE_ANY, NULL);
	cr_assert(got && want && json_equal(got, want), "output %s, expected %s", s(d, "output"),
	          want_json);
	json_decref(got);
	json_decref(want);
}

Test(executions, pass_choice_map_succeeds_with_history_and_listing)
{
	start();
	create("flow", FLOW_DEF);
	json_t *r = start_exec(SM("flow"), "one", "{\"go\":true}");
	cr_assert_str_eq(s(r, "executionArn"), EXEC("flow", "one"));
	json_decref(r);
	json_t *d = exec_wait_status(EXEC("flow", "one"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	assert_output(d, "{\"go\":true,\"items\":[1,2,3],\"out\":[{\"v\":1},{\"v\":2},{\"v\":3}]}");
	cr_assert(json_is_number(json_object_get(d, "stopDate")));
	cr_assert_str_eq(s(d, "stateMachineArn"), SM("flow"));
	json_decref(d);

	/* paging by 3 gives the same events as one page; reverse starts at the end */
	json_t *all = exec_history(EXEC("flow", "one"));
	check_dense(all);
	cr_assert_eq(events_count(all, "MapStateSucceeded"), 1);
	cr_assert_str_eq(s(json_array_get(all, json_array_size(all) - 1), "type"),
	                 "ExecutionSucceeded");
	size_t seen = 0;
	char *token = NULL;
	do {
		json_t *req = json_pack("{s:s,s:i}", "executionArn", EXEC("flow", "one"),
		                        "maxResults", 3);
		if (token)
			json_object_set_new(req, "nextToken", json_string(token));
		free(token);
		token = NULL;
		json_t *page = ok("GetExecutionHistory", req);
		json_t *ev = json_object_get(page, "events");
		cr_assert_leq(json_array_size(ev), 3);
		for (size_t i = 0; i < json_array_size(ev); i++, seen++)
			cr_assert(json_equal(json_array_get(ev, i), json_array_get(all, seen)));
		if (s(page, "nextToken"))
			token = strdup(s(page, "nextToken"));
		json_decref(page);
	} while (token);
	cr_assert_eq(seen, json_array_size(all));
	json_t *rev = ok("GetExecutionHistory",
	                 json_pack("{s:s,s:b,s:i,s:b}", "executionArn", EXEC("flow", "one"),
	                           "reverseOrder", 1, "maxResults", 1, "includeExecutionData", 0));
	json_t *last = json_array_get(json_object_get(rev, "events"), 0);
	cr_assert_str_eq(s(last, "type"), "ExecutionSucceeded");
	cr_assert_null(
	        json_object_get(json_object_get(last, "executionSucceededEventDetails"), "output"));
	json_decref(rev);
	json_decref(all);

	/* the Choice's other branch: a Fail state */
	json_decref(start_exec(SM("flow"), "two", "{\"go\":false}"));
	d = exec_wait_status(EXEC("flow", "two"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "FAILED");
	cr_assert_str_eq(s(d, "error"), "NoGo");
	cr_assert_str_eq(s(d, "cause"), "go was false");
	json_decref(d);

	json_t *l = ok("ListExecutions", json_pack("{s:s}", "stateMachineArn", SM("flow")));
	cr_assert_eq(json_array_size(json_object_get(l, "executions")), 2);
	json_decref(l);
	l = ok("ListExecutions",
	       json_pack("{s:s,s:s}", "stateMachineArn", SM("flow"), "statusFilter", "FAILED"));
	json_t *items = json_object_get(l, "executions");
	cr_assert_eq(json_array_size(items), 1);
	cr_assert_str_eq(s(json_array_get(items, 0), "name"), "two");
	json_decref(l);
	l = ok("ListExecutions",
	       json_pack("{s:s,s:i}", "stateMachineArn", SM("flow"), "maxResults", 1));
	cr_assert_eq(json_array_size(json_object_get(l, "executions")), 1);
	cr_assert_not_null(s(l, "nextToken"));
	json_decref(l);

	json_t *m = ok("DescribeStateMachineForExecution",
	               json_pack("{s:s}", "executionArn", EXEC("flow", "one")));
	cr_assert_str_eq(s(m, "definition"), FLOW_DEF);
	cr_assert_str_eq(s(m, "name"), "flow");
	json_decref(m);
	stop();
}

Test(executions, wait_idempotent_start_and_errors)
{
	start();
	create("w", WAIT_DEF(1, "done"));
	json_t *a = start_exec(SM("w"), "same", "{\"k\":1}");
	/* the same name and input while it runs: the same execution */
	json_t *b = start_exec(SM("w"), "same", "{ \"k\" : 1 }");
	cr_assert_str_eq(s(a, "executionArn"), s(b, "executionArn"));
	cr_assert(json_equal(json_object_get(a, "startDate"), json_object_get(b, "startDate")));
	json_decref(a);
	json_decref(b);
	fails("StartExecution",
	      json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("w"), "name", "same", "input",
	                "{\"k\":2}"),
	      "ExecutionAlreadyExists", "Execution Already Exists");
	json_t *d = exec_wait_status(EXEC("w", "same"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED");
	assert_output(d, "{\"k\":1,\"r\":\"done\"}");
	json_decref(d);
	json_t *ev = exec_history(EXEC("w", "same"));
	check_dense(ev);
	cr_assert_eq(events_count(ev, "WaitStateExited"), 1);
	json_decref(ev);
	/* closed: starting it again is refused even with the same input */
	fails("StartExecution",
	      json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("w"), "name", "same", "input",
	                "{\"k\":1}"),
	      "ExecutionAlreadyExists", EXEC("w", "same"));

	/* no name: a fresh UUID each time */
	a = start_exec(SM("w"), NULL, NULL);
	b = start_exec(SM("w"), NULL, NULL);
	cr_assert_str_neq(s(a, "executionArn"), s(b, "executionArn"));
	json_decref(a);
	json_decref(b);

	fails("DescribeExecution", json_pack("{s:s}", "executionArn", EXEC("w", "nope")),
	      "ExecutionDoesNotExist", "Execution Does Not Exist: '" EXEC("w", "nope") "'");
	fails("DescribeExecution", json_pack("{s:s}", "executionArn", "arn:nope"), "InvalidArn",
	      "Invalid Arn");
	fails("DescribeExecution", json_pack("{}"), "ValidationException", "executionArn");
	fails("GetExecutionHistory", json_pack("{s:s}", "executionArn", EXEC("w", "nope")),
	      "ExecutionDoesNotExist", "Execution Does Not Exist");
	fails("GetExecutionHistory",
	      json_pack("{s:s,s:s}", "executionArn", EXEC("w", "same"), "nextToken", "garbage"),
	      "InvalidToken", "");
	fails("StartExecution", json_pack("{s:s}", "stateMachineArn", SM("missing")),
	      "StateMachineDoesNotExist", SM("missing"));
	fails("StartExecution", json_pack("{s:s}", "stateMachineArn", "not-an-arn"), "InvalidArn",
	      "Invalid Arn");
	fails("StartExecution",
	      json_pack("{s:s,s:s}", "stateMachineArn", SM("w"), "input", "{not json"),
	      "InvalidExecutionInput", "Invalid execution input");
	fails("StartExecution",
	      json_pack("{s:s,s:s}", "stateMachineArn", SM("w"), "name", "bad name"), "InvalidName",
	      "Invalid Name");
	fails("StartExecution", json_pack("{s:s,s:i}", "stateMachineArn", SM("w"), "input", 3),
	      "SerializationException", "input");
	fails("ListExecutions",
	      json_pack("{s:s,s:s}", "stateMachineArn", SM("w"), "statusFilter", "DONE"),
	      "ValidationException", "statusFilter");
	fails("ListExecutions", json_pack("{s:s}", "stateMachineArn", SM("missing")),
	      "StateMachineDoesNotExist", SM("missing"));
	fails("StopExecution", json_pack("{s:s}", "executionArn", EXEC("w", "nope")),
	      "ExecutionDoesNotExist", "Execution Does Not Exist");
	stop();
}

Test(executions, task_waits_for_a_worker_and_stop_aborts)
{
	start();
	create("t", TASK_DEF);
	json_decref(start_exec(SM("t"), "job", "{\"x\":1}"));
	/* no worker answers yet: it reaches the Task and stays RUNNING with the task scheduled */
	json_t *ev = NULL;
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		ev = exec_history(EXEC("t", "job"));
		if (events_count(ev, "ActivityScheduled") + events_count(ev, "TaskScheduled") > 0)
			break;
		json_decref(ev);
		ev = NULL;
		nap_ms(50);
	}
	cr_assert_not_null(ev, "the task was never scheduled");
	json_decref(ev);
	json_t *d = describe(EXEC("t", "job"));
	cr_assert_str_eq(s(d, "status"), "RUNNING");
	cr_assert_null(json_object_get(d, "stopDate"));
	json_decref(d);

	json_t *st = ok("StopExecution",
	                json_pack("{s:s,s:s,s:s}", "executionArn", EXEC("t", "job"), "error",
	                          "Halt", "cause", "by test"));
	cr_assert(json_is_number(json_object_get(st, "stopDate")));
	json_decref(st);
	d = describe(EXEC("t", "job"));
	cr_assert_str_eq(s(d, "status"), "ABORTED");
	cr_assert_str_eq(s(d, "error"), "Halt");
	cr_assert_str_eq(s(d, "cause"), "by test");
	json_decref(d);
	ev = exec_history(EXEC("t", "job"));
	cr_assert_eq(events_count(ev, "ExecutionAborted"), 1);
	json_decref(ev);
	stop();
}

Test(executions, running_execution_keeps_its_revision)
{
	start();
	create("rv", WAIT_DEF(1, "old"));
	json_decref(
	        ok("PublishStateMachineVersion", json_pack("{s:s}", "stateMachineArn", SM("rv"))));
	json_decref(start_exec(SM("rv"), "first", "{}"));
	json_decref(ok("UpdateStateMachine",
	               json_pack("{s:s,s:s}", "stateMachineArn", SM("rv"), "definition",
	                         WAIT_DEF(1, "new"))));
	json_decref(start_exec(SM("rv"), "second", "{}"));
	/* version 1 is the first revision */
	json_decref(start_exec(SM("rv") ":1", "third", "{}"));
	fails("StartExecution", json_pack("{s:s}", "stateMachineArn", SM("rv") ":7"),
	      "StateMachineDoesNotExist", SM("rv") ":7");

	json_t *d = exec_wait_status(EXEC("rv", "first"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED");
	assert_output(d, "{\"r\":\"old\"}");
	json_decref(d);
	d = exec_wait_status(EXEC("rv", "second"), NULL, DONE_WAIT_MS);
	assert_output(d, "{\"r\":\"new\"}");
	json_decref(d);
	d = exec_wait_status(EXEC("rv", "third"), NULL, DONE_WAIT_MS);
	assert_output(d, "{\"r\":\"old\"}");
	json_decref(d);

	json_t *m = ok("DescribeStateMachineForExecution",
	               json_pack("{s:s}", "executionArn", EXEC("rv", "first")));
	cr_assert_str_eq(s(m, "definition"), WAIT_DEF(1, "old"));
	json_decref(m);
	m = ok("DescribeStateMachineForExecution",
	       json_pack("{s:s}", "executionArn", EXEC("rv", "second")));
	cr_assert_str_eq(s(m, "definition"), WAIT_DEF(1, "new"));
	json_decref(m);
	stop();
}

Test(executions, sigkill_during_wait_resumes_every_execution)
{
	start();
	create("k", WAIT_DEF(2, "after"));
	enum { N = 6 };
	for (int i = 0; i < N; i++) {
		char name[16], in[32];
		snprintf(name, sizeof name, "e%d", i);
		snprintf(in, sizeof in, "{\"i\":%d}", i);
		json_decref(start_exec(SM("k"), name, in));
	}
	/* acknowledged means committed: the kill loses none of them */
	h_kill(&srv);
	char dir[300];
	snprintf(dir, sizeof dir, "%s", srv.data);
	const char *extra[] = { "--data", dir, NULL };
	struct h_server old = srv;
	cr_assert(h_start(&srv, extra), "restart failed");
	for (int i = 0; i < N; i++) {
		char arn[256], want[64];
		snprintf(arn, sizeof arn, EXEC("k", "e%d"), i);
		snprintf(want, sizeof want, "{\"i\":%d,\"r\":\"after\"}", i);
		json_t *d = exec_wait_status(arn, NULL, DONE_WAIT_MS);
		cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", arn);
		assert_output(d, want);
		json_decref(d);
		json_t *ev = exec_history(arn);
		check_dense(ev);
		cr_assert_eq(events_count(ev, "WaitStateEntered"), 1);
		cr_assert_eq(events_count(ev, "WaitStateExited"), 1);
		cr_assert_eq(events_count(ev, "ExecutionSucceeded"), 1);
		json_decref(ev);
	}
	stop();
	h_cleanup(&old);
}

#define AWS_ENV                                                                                    \
	"AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 AWS_PAGER= "

Test(executions, aws_cli)
{
	if (system("command -v aws >/dev/null 2>&1") != 0)
		cr_skip_test("aws CLI is not installed (apt-get install awscli)");
	start();
	create("cli", FLOW_DEF);
	char cmd[2048], *out = NULL;
	snprintf(cmd, sizeof cmd,
	         AWS_ENV "aws --output json --endpoint-url http://127.0.0.1:%d stepfunctions "
	                 "start-execution --state-machine-arn %s --name c1 --input '{\"go\":true}'",
	         srv.http_port, SM("cli"));
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, EXEC("cli", "c1")), "%s", out);
	free(out);
	json_decref(exec_wait_status(EXEC("cli", "c1"), NULL, DONE_WAIT_MS));
	snprintf(cmd, sizeof cmd,
	         AWS_ENV "aws --output json --endpoint-url http://127.0.0.1:%d stepfunctions "
	                 "describe-execution --execution-arn %s",
	         srv.http_port, EXEC("cli", "c1"));
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, "\"SUCCEEDED\""), "%s", out);
	free(out);
	snprintf(cmd, sizeof cmd,
	         AWS_ENV "aws --output json --endpoint-url http://127.0.0.1:%d stepfunctions "
	                 "get-execution-history --execution-arn %s",
	         srv.http_port, EXEC("cli", "c1"));
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, "ExecutionSucceeded") && strstr(out, "MapStateStarted"), "%s", out);
	free(out);
	snprintf(cmd, sizeof cmd,
	         AWS_ENV "aws --output json --endpoint-url http://127.0.0.1:%d stepfunctions "
	                 "describe-execution --execution-arn %s",
	         srv.http_port, EXEC("cli", "none"));
	cr_assert_neq(h_run(cmd, &out), 0);
	cr_assert(strstr(out, "ExecutionDoesNotExist"), "%s", out);
	free(out);
	stop();
}

Test(executions, boto3)
{
	if (system("python3 -c 'import boto3' >/dev/null 2>&1") != 0)
		cr_skip_test("boto3 is not installed (apt-get install python3-boto3)");
	start();
	create("py", WAIT_DEF(1, "py"));
	char cmd[4096], *out = NULL;
	snprintf(cmd, sizeof cmd,
	         AWS_ENV
	         "python3 -c '\n"
	         "import boto3, time\n"
	         "c = boto3.client(\"stepfunctions\", endpoint_url=\"http://127.0.0.1:%d\")\n"
	         "r = c.start_execution(stateMachineArn=\"%s\", name=\"b1\", "
	         "input=\"{\\\"a\\\": 1}\")\n"
	         "for _ in range(400):\n"
	         "    d = c.describe_execution(executionArn=r[\"executionArn\"])\n"
	         "    if d[\"status\"] != \"RUNNING\": break\n"
	         "    time.sleep(0.05)\n"
	         "h = c.get_execution_history(executionArn=r[\"executionArn\"])\n"
	         "l = c.list_executions(stateMachineArn=\"%s\")\n"
	         "print(d[\"status\"], d[\"output\"], len(h[\"events\"]), "
	         "len(l[\"executions\"]), type(d[\"startDate\"]).__name__)\n"
	         "try:\n"
	         "    c.describe_execution(executionArn=r[\"executionArn\"] + \"x\")\n"
	         "except c.exceptions.ExecutionDoesNotExist:\n"
	         "    print(\"missing-ok\")\n"
	         "'",
	         srv.http_port, SM("py"), SM("py"));
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, "SUCCEEDED {\"a\":1,\"r\":\"py\"}"), "%s", out);
	cr_assert(strstr(out, " 1 datetime"), "%s", out);
	cr_assert(strstr(out, "missing-ok"), "%s", out);
	free(out);
	stop();
}
