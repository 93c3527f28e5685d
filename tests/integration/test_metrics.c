/*
 * test_metrics.c - GET /metrics of the real `sluice serve`: the dispatcher's counters per
 * activity (tasks queued, leased, handed out, timed out) move as tasks are queued, taken
 * with GetActivityTask and lost to a lapsed heartbeat.
 *
 * Waits are bounded polls of /metrics or DescribeExecution (hang guards), never timings.
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

#define ACT(name)  "arn:aws:states:us-east-1:000000000000:activity:" name
#define SM(name)   "arn:aws:states:us-east-1:000000000000:stateMachine:" name
#define EXEC(m, n) "arn:aws:states:us-east-1:000000000000:execution:" m ":" n
#define ROLE       "arn:aws:iam::000000000000:role/x"
#define WAIT_MS    20000

static void
reap(void)
{
	h_cleanup(&srv);
}

TestSuite(metrics, .fini = reap);

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void
start_exec(const char *name)
{
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("metered"), "name", name,
	                         "input", "{}")));
}

static char *
take_task(void)
{
	json_t *t = ok("GetActivityTask",
	               json_pack("{s:s,s:s}", "activityArn", ACT("meter"), "workerName", "m"));
	cr_assert(s(t, "taskToken"), "%s", json_dumps(t, 0));
	char *tok = strdup(s(t, "taskToken"));
	json_decref(t);
	return tok;
}

#define Q "{activity=\"meter\"}"

Test(metrics, dispatch_counters_per_activity)
{
	start();
	/* before any task: the totals are there, at zero */
	cr_assert_eq(metrics_sample("sluice_dispatch_tasks_queued"), 0);
	cr_assert_eq(metrics_sample("sluice_dispatch_tasks_total{outcome=\"handed_out\"}"), 0);
	cr_assert_eq(metrics_sample("sluice_dispatch_tasks_total{outcome=\"timed_out\"}"), 0);

	json_decref(ok("CreateActivity", json_pack("{s:s}", "name", "meter")));
	json_decref(ok("CreateStateMachine",
	               json_pack("{s:s,s:s,s:s}", "name", "metered", "roleArn", ROLE, "definition",
	                         "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Task\","
	                         "\"Resource\":\"" ACT("meter") "\",\"HeartbeatSeconds\":1,"
	                                                        "\"End\":true}}}")));
	start_exec("one");
	start_exec("two");
	wait_metrics_sample("sluice_activity_tasks_queued" Q, 2);
	cr_assert_eq(metrics_sample("sluice_activity_tasks_leased" Q), 0);
	cr_assert_eq(metrics_sample("sluice_dispatch_tasks_queued"), 2);

	/* one taken: queued 1, leased 1, handed out 1 */
	char *tok = take_task();
	cr_assert_eq(metrics_sample("sluice_activity_tasks_queued" Q), 1);
	cr_assert_eq(metrics_sample("sluice_activity_tasks_leased" Q), 1);
	cr_assert_eq(metrics_sample("sluice_activity_tasks_handed_out_total" Q), 1);
	cr_assert_eq(metrics_sample("sluice_dispatch_tasks_leased"), 1);

	/* the taken task's heartbeat lapses: its late answer is TaskTimedOut and the lease is
	 * counted as timed out (the other task, never taken, times out in the queue: not a
	 * lease) */
	json_t *d = NULL;
	for (int waited = 0; waited < WAIT_MS; waited += 50) {
		int st;
		json_t *r = call("DescribeExecution",
		                 json_pack("{s:s}", "executionArn", EXEC("metered", "one")), &st);
		cr_assert_eq(st, 200);
		if (strcmp(s(r, "status"), "RUNNING") != 0) {
			d = r;
			break;
		}
		json_decref(r);
		nap_ms(50);
	}
	cr_assert_not_null(d, "execution one still running");
	cr_assert_str_eq(s(d, "status"), "FAILED");
	json_decref(d);
	fails("SendTaskSuccess", json_pack("{s:s,s:s}", "taskToken", tok, "output", "{}"),
	      "TaskTimedOut", tok);
	free(tok);
	cr_assert_eq(metrics_sample("sluice_activity_tasks_timed_out_total" Q), 1);
	cr_assert_eq(metrics_sample("sluice_activity_tasks_leased" Q), 0);
	cr_assert_eq(metrics_sample("sluice_dispatch_tasks_total{outcome=\"timed_out\"}"), 1);
	cr_assert_eq(metrics_sample("sluice_dispatch_tasks_leased"), 0);

	/* the format: every family has its HELP and TYPE */
	struct h_response r;
	cr_assert(h_request(srv.http_port, "GET", "/metrics", NULL, NULL, 0, &r));
	cr_assert(strstr(r.body, "# TYPE sluice_activity_tasks_queued gauge\n"), "%s", r.body);
	cr_assert(strstr(r.body, "# TYPE sluice_activity_tasks_timed_out_total counter\n"));
	cr_assert(strstr(r.body, "# HELP sluice_activity_tasks_handed_out_total "));
	h_response_free(&r);
	stop();
}
