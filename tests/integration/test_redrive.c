/*
 * RedriveExecution on the real server: a callback task failed with SendTaskFailure, the
 * execution redriven over HTTP (DescribeExecution's redrive fields before and after),
 * SendTaskSuccess on the new token -> SUCCEEDED with the state re-entered on its input;
 * refusals (SUCCEEDED, RUNNING, unknown); a redrive that survives a SIGKILL and restart;
 * `sluice executions redrive` and `aws stepfunctions redrive-execution` when installed.
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
#define DONE_WAIT_MS 20000

/* Prep adds a field, then a callback task hands its token out in the Payload. */
static const char *const DEF
        = "{\"StartAt\":\"Prep\",\"States\":{"
          "\"Prep\":{\"Type\":\"Pass\",\"Result\":1,\"ResultPath\":\"$.prep\",\"Next\":\"T\"},"
          "\"T\":{\"Type\":\"Task\",\"Resource\":"
          "\"arn:aws:states:::lambda:invoke.waitForTaskToken\",\"Parameters\":{"
          "\"FunctionName\":\"approve\",\"Payload\":{\"token.$\":\"$$.Task.Token\","
          "\"order.$\":\"$.order\"}},\"ResultPath\":\"$.answer\",\"End\":true}}}";

static void
reap(void)
{
	h_cleanup(&srv);
}

TestSuite(redrive, .fini = reap);

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void
setup_machine(const char *name)
{
	json_decref(
	        ok("CreateStateMachine",
	           json_pack("{s:s,s:s,s:s}", "name", name, "definition", DEF, "roleArn", ROLE)));
}

static json_t *
describe_exec(const char *arn)
{
	return ok("DescribeExecution", json_pack("{s:s}", "executionArn", arn));
}

/* The token of the nth TaskScheduled (1-based), polled until it is there. */
static char *
task_token(const char *arn, size_t nth)
{
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 20) {
		json_t *ev = exec_history(arn);
		size_t seen = 0, i;
		json_t *e;
		json_array_foreach(ev, i, e)
		{
			if (strcmp(s(e, "type"), "TaskScheduled") != 0 || ++seen < nth)
				continue;
			json_t *p = json_object_get(json_object_get(e, "taskScheduledEventDetails"),
			                            "parameters");
			json_t *params = json_loads(json_string_value(p), 0, NULL);
			const char *tok = s(json_object_get(params, "Payload"), "token");
			cr_assert(tok && strlen(tok) == 32, "no token in %s", json_string_value(p));
			char *out = strdup(tok);
			json_decref(params);
			json_decref(ev);
			return out;
		}
		json_decref(ev);
		nap_ms(20);
	}
	cr_assert_fail("%s: no TaskScheduled #%zu after %d ms", arn, nth, DONE_WAIT_MS);
	return NULL;
}

static void
fail_task(const char *tok)
{
	json_decref(ok("SendTaskFailure",
	               json_pack("{s:s,s:s,s:s}", "taskToken", tok, "error", "Order.Rejected",
	                         "cause", "no stock")));
}

static void
succeed_task(const char *tok, const char *output)
{
	json_decref(
	        ok("SendTaskSuccess", json_pack("{s:s,s:s}", "taskToken", tok, "output", output)));
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

/* The input of each TaskStateEntered, in order. */
static void
expect_entered_inputs(json_t *events, const char *want)
{
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(events, i, e)
	{
		if (strcmp(s(e, "type"), "TaskStateEntered") != 0)
			continue;
		n++;
		assert_json(s(json_object_get(e, "stateEnteredEventDetails"), "input"), want);
	}
	cr_assert_eq(n, 2);
}

static void
expect_dense(json_t *events)
{
	size_t i;
	json_t *e;
	json_array_foreach(events, i, e)
	{
		cr_expect_eq(json_integer_value(json_object_get(e, "id")), (json_int_t)i + 1);
	}
}

Test(redrive, failed_task_redriven_over_http)
{
	start();
	setup_machine("rd");
	const char *arn = EXEC("rd", "r1");
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("rd"), "name", "r1",
	                         "input", "{\"order\":7}")));
	char *tok = task_token(arn, 1);
	// RUNNING: refused
	fails("RedriveExecution", json_pack("{s:s}", "executionArn", arn), "ExecutionNotRedrivable",
	      "RUNNING");
	fail_task(tok);
	free(tok);
	json_t *d = exec_wait_status(arn, "FAILED", DONE_WAIT_MS);
	cr_expect_str_eq(s(d, "error"), "Order.Rejected");
	cr_expect_str_eq(s(d, "redriveStatus"), "REDRIVABLE");
	cr_expect_eq(json_integer_value(json_object_get(d, "redriveCount")), 0);
	json_decref(d);

	json_t *r = ok("RedriveExecution",
	               json_pack("{s:s,s:s}", "executionArn", arn, "clientToken", "once"));
	cr_assert(json_is_number(json_object_get(r, "redriveDate")), "%s", json_dumps(r, 0));
	double date = json_number_value(json_object_get(r, "redriveDate"));
	json_decref(r);
	// the same client token: the same answer, no second redrive
	r = ok("RedriveExecution",
	       json_pack("{s:s,s:s}", "executionArn", arn, "clientToken", "once"));
	cr_expect(json_number_value(json_object_get(r, "redriveDate")) == date);
	json_decref(r);

	d = describe_exec(arn);
	cr_expect_str_eq(s(d, "status"), "RUNNING");
	cr_expect_eq(json_integer_value(json_object_get(d, "redriveCount")), 1);
	cr_expect(json_number_value(json_object_get(d, "redriveDate")) == date);
	cr_expect_str_eq(s(d, "redriveStatus"), "NOT_REDRIVABLE");
	cr_expect_null(json_object_get(d, "stopDate"));
	json_decref(d);

	tok = task_token(arn, 2);
	succeed_task(tok, "{\"ok\":true}");
	free(tok);
	d = exec_wait_status(arn, "SUCCEEDED", DONE_WAIT_MS);
	assert_json(s(d, "output"), "{\"order\":7,\"prep\":1,\"answer\":{\"ok\":true}}");
	cr_expect_eq(json_integer_value(json_object_get(d, "redriveCount")), 1);
	json_decref(d);

	json_t *ev = exec_history(arn);
	expect_dense(ev);
	cr_expect_eq(events_count(ev, "ExecutionRedriven"), 1);
	cr_expect_eq(events_count(ev, "ExecutionFailed"), 1);
	cr_expect_eq(events_count(ev, "ExecutionSucceeded"), 1);
	cr_expect_eq(events_count(ev, "PassStateEntered"), 1);
	expect_entered_inputs(ev, "{\"order\":7,\"prep\":1}");
	json_decref(ev);

	// ListExecutions: redrive fields and redriveFilter
	json_t *l = ok(
	        "ListExecutions",
	        json_pack("{s:s,s:s}", "stateMachineArn", SM("rd"), "redriveFilter", "REDRIVEN"));
	json_t *items = json_object_get(l, "executions");
	cr_assert_eq(json_array_size(items), 1);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(items, 0), "redriveCount")),
	             1);
	cr_expect(json_is_number(json_object_get(json_array_get(items, 0), "redriveDate")));
	json_decref(l);
	l = ok("ListExecutions",
	       json_pack("{s:s,s:s}", "stateMachineArn", SM("rd"), "redriveFilter",
	                 "NOT_REDRIVEN"));
	cr_expect_eq(json_array_size(json_object_get(l, "executions")), 0);
	json_decref(l);
	fails("ListExecutions",
	      json_pack("{s:s,s:s}", "stateMachineArn", SM("rd"), "redriveFilter", "SOMETIMES"),
	      "ValidationException", "redriveFilter");
	fails("RedriveExecution", json_pack("{s:s}", "executionArn", arn), "ExecutionNotRedrivable",
	      "SUCCEEDED");
	fails("RedriveExecution", json_pack("{s:s}", "executionArn", EXEC("rd", "none")),
	      "ExecutionDoesNotExist", "none");
	fails("RedriveExecution", json_pack("{}"), "ValidationException", "executionArn");
	stop();
}

/* Redriven, then SIGKILLed before the task is answered: the restarted server still has the
 * task (a new token) and finishes the execution. */
Test(redrive, survives_sigkill)
{
	start();
	setup_machine("rk");
	const char *arn = EXEC("rk", "k1");
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("rk"), "name", "k1",
	                         "input", "{\"order\":3}")));
	json_decref(ok("StopExecution", json_pack("{s:s}", "executionArn", arn)));
	json_decref(exec_wait_status(arn, "ABORTED", DONE_WAIT_MS));
	json_decref(ok("RedriveExecution", json_pack("{s:s}", "executionArn", arn)));
	char *tok = task_token(arn, 2);
	char data[300];
	snprintf(data, sizeof data, "%s", srv.data);
	h_kill(&srv);
	const char *extra[] = { "--data", data, NULL };
	cr_assert(h_start(&srv, extra), "restart failed");
	succeed_task(tok, "\"yes\"");
	free(tok);
	json_t *d = exec_wait_status(arn, "SUCCEEDED", DONE_WAIT_MS);
	assert_json(s(d, "output"), "{\"order\":3,\"prep\":1,\"answer\":\"yes\"}");
	json_decref(d);
	json_t *ev = exec_history(arn);
	expect_dense(ev);
	cr_expect_eq(events_count(ev, "ExecutionAborted"), 1);
	cr_expect_eq(events_count(ev, "ExecutionRedriven"), 1);
	json_decref(ev);
	stop();
}

#define AWS_ENV                                                                                    \
	"AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 AWS_PAGER= "     \
	"AWS_MAX_ATTEMPTS=1 "

/* `sluice executions redrive` and, when installed, `aws stepfunctions redrive-execution`. */
Test(redrive, sluice_and_aws_clis)
{
	start();
	setup_machine("rc");
	const char *arn = EXEC("rc", "c1");
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("rc"), "name", "c1",
	                         "input", "{\"order\":1}")));
	json_decref(ok("StopExecution", json_pack("{s:s}", "executionArn", arn)));
	json_decref(exec_wait_status(arn, "ABORTED", DONE_WAIT_MS));
	const char *bin = getenv("SLUICE_BIN");
	cr_assert_not_null(bin, "SLUICE_BIN is not set");
	char cmd[1024];
	char *out = NULL;
	snprintf(cmd, sizeof cmd, "%s executions redrive %s --endpoint http://127.0.0.1:%d", bin,
	         arn, srv.http_port);
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_expect(strstr(out, "redriven"), "%s", out);
	free(out);
	json_decref(exec_wait_status(arn, "RUNNING", DONE_WAIT_MS));
	// RUNNING again: the CLI reports the refusal (exit 2)
	cr_expect_eq(h_run(cmd, &out), 2, "%s", out);
	cr_expect(strstr(out, "RUNNING"), "%s", out);
	free(out);
	if (h_run("command -v aws >/dev/null", NULL) == 0) {
		json_decref(ok("StopExecution", json_pack("{s:s}", "executionArn", arn)));
		json_decref(exec_wait_status(arn, "ABORTED", DONE_WAIT_MS));
		snprintf(cmd, sizeof cmd,
		         AWS_ENV
		         "aws --output json --endpoint-url http://127.0.0.1:%d stepfunctions "
		         "redrive-execution --execution-arn %s",
		         srv.http_port, arn);
		cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
		cr_expect(strstr(out, "redriveDate"), "%s", out);
		free(out);
		json_t *d = exec_wait_status(arn, "RUNNING", DONE_WAIT_MS);
		cr_expect_eq(json_integer_value(json_object_get(d, "redriveCount")), 2);
		json_decref(d);
	}
	stop();
}
