/*
 * test_exec_retention.c - closed executions expire (`sluice serve --execution-retention`)
 * through the real server on the fake clock (`--virtual-time`, Sluice.AdvanceClock):
 * executions closed longer ago than the retention are gone (DescribeExecution and
 * GetExecutionHistory answer ExecutionDoesNotExist, ListExecutions leaves them out, their
 * map runs and child executions go with them, ended EXPRESS records too), while running and
 * recently closed ones are intact and a recent failed one is still redriven; the counts are
 * in /metrics. A bad value is refused at start.
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

#define SM(name)   "arn:aws:states:us-east-1:000000000000:stateMachine:" name
#define EXEC(m, n) "arn:aws:states:us-east-1:000000000000:execution:" m ":" n
#define ROLE       "arn:aws:iam::000000000000:role/x"
#define WAIT_MS    20000

static const char *const QUICK_DEF
        = "{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}}";
/* a callback task hands its token out in the Payload */
static const char *const CB_DEF
        = "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"
          "\"arn:aws:states:::lambda:invoke.waitForTaskToken\",\"Parameters\":{"
          "\"FunctionName\":\"approve\",\"Payload\":{\"token.$\":\"$$.Task.Token\"}},"
          "\"End\":true}}}";
static const char *const MAP_DEF
        = "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemsPath\":\"$.items\","
          "\"ItemProcessor\":{\"ProcessorConfig\":{\"Mode\":\"DISTRIBUTED\","
          "\"ExecutionType\":\"STANDARD\"},\"StartAt\":\"I\",\"States\":{\"I\":{\"Type\":"
          "\"Pass\",\"End\":true}}},\"End\":true}}}";

static void
reap(void)
{
	h_cleanup(&srv);
}

TestSuite(exec_retention, .fini = reap);

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void
create(const char *name, const char *def, const char *type)
{
	json_decref(ok("CreateStateMachine",
	               json_pack("{s:s,s:s,s:s,s:s}", "name", name, "definition", def, "roleArn",
	                         ROLE, "type", type)));
}

static void
start_exec(const char *machine_arn, const char *name, const char *input)
{
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", machine_arn, "name", name,
	                         "input", input)));
}

/* The token of the execution's latest TaskScheduled, polled until there is a new one. */
static char *
token_of(const char *arn, const char *not_this)
{
	for (int waited = 0; waited < WAIT_MS; waited += 25) {
		json_t *r = ok("GetExecutionHistory",
		               json_pack("{s:s,s:b}", "executionArn", arn, "reverseOrder", 1));
		json_t *e;
		size_t i;
		char *tok = NULL;
		json_array_foreach(json_object_get(r, "events"), i, e)
		{
			if (strcmp(s(e, "type"), "TaskScheduled") != 0)
				continue;
			json_t *p = json_loads(
			        s(json_object_get(e, "taskScheduledEventDetails"), "parameters"), 0,
			        NULL);
			const char *t = s(json_object_get(p, "Payload"), "token");
			if (t && (!not_this || strcmp(t, not_this) != 0))
				tok = strdup(t);
			json_decref(p);
			break;
		}
		json_decref(r);
		if (tok)
			return tok;
		nap_ms(25);
	}
	cr_assert_fail("%s: no new TaskScheduled after %d ms", arn, WAIT_MS);
	return NULL;
}

/* The names ListExecutions gives for machine, sorted into one string "a b c". */
static void
listed(const char *machine_arn, char *out, size_t cap)
{
	json_t *r = ok("ListExecutions", json_pack("{s:s}", "stateMachineArn", machine_arn));
	json_t *e;
	size_t i;
	out[0] = 0;
	const char *names[16];
	size_t n = 0;
	json_array_foreach(json_object_get(r, "executions"), i, e) if (n < 16) names[n++]
	        = s(e, "name");
	for (size_t a = 0; a < n; a++)
		for (size_t b = a + 1; b < n; b++)
			if (strcmp(names[b], names[a]) < 0) {
				const char *t = names[a];
				names[a] = names[b];
				names[b] = t;
			}
	for (size_t a = 0; a < n; a++)
		snprintf(out + strlen(out), cap - strlen(out), "%s%s", a ? " " : "", names[a]);
	json_decref(r);
}

Test(exec_retention, old_closed_executions_expire_and_the_rest_stays)
{
	const char *args[]
	        = { "--virtual-time", "2026-03-01T00:00:00Z", "--execution-retention", "1d", NULL };
	cr_assert(h_start(&srv, args), "server did not start");
	create("quick", QUICK_DEF, "STANDARD");
	create("cb", CB_DEF, "STANDARD");
	create("fan", MAP_DEF, "STANDARD");
	create("x", QUICK_DEF, "EXPRESS");

	// closed long ago: a success, a failure, a distributed Map with 20 children, EXPRESS
	start_exec(SM("quick"), "old", "{}");
	json_decref(exec_wait_status(EXEC("quick", "old"), "SUCCEEDED", WAIT_MS));
	start_exec(SM("cb"), "oldfail", "{}");
	char *tok = token_of(EXEC("cb", "oldfail"), NULL);
	json_decref(ok("SendTaskFailure",
	               json_pack("{s:s,s:s,s:s}", "taskToken", tok, "error", "E", "cause", "c")));
	free(tok);
	json_decref(exec_wait_status(EXEC("cb", "oldfail"), "FAILED", WAIT_MS));
	start_exec(SM("fan"), "oldmap",
	           "{\"items\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}");
	json_decref(exec_wait_status(EXEC("fan", "oldmap"), "SUCCEEDED", WAIT_MS));
	json_t *runs = ok("ListMapRuns", json_pack("{s:s}", "executionArn", EXEC("fan", "oldmap")));
	char *mrarn = strdup(s(json_array_get(json_object_get(runs, "mapRuns"), 0), "mapRunArn"));
	json_decref(runs);
	json_t *kids = ok("ListExecutions", json_pack("{s:s}", "mapRunArn", mrarn));
	cr_assert_eq(json_array_size(json_object_get(kids, "executions")), 20);
	char *child
	        = strdup(s(json_array_get(json_object_get(kids, "executions"), 0), "executionArn"));
	json_decref(kids);
	json_decref(ok("StartSyncExecution", json_pack("{s:s}", "stateMachineArn", SM("x"))));
	// running since long ago: stays
	start_exec(SM("cb"), "longrun", "{}");
	char *long_tok = token_of(EXEC("cb", "longrun"), NULL);
	wait_metrics_sample("sluice_executions_pruned_total", 0);

	json_decref(ok_target("Sluice.AdvanceClock", json_pack("{s:f}", "Seconds", 2 * 86400.0)));
	// closed recently: stays
	start_exec(SM("quick"), "recent", "{}");
	json_decref(exec_wait_status(EXEC("quick", "recent"), "SUCCEEDED", WAIT_MS));
	start_exec(SM("cb"), "recentfail", "{}");
	tok = token_of(EXEC("cb", "recentfail"), NULL);
	json_decref(ok("SendTaskFailure",
	               json_pack("{s:s,s:s,s:s}", "taskToken", tok, "error", "E", "cause", "c")));
	json_decref(exec_wait_status(EXEC("cb", "recentfail"), "FAILED", WAIT_MS));

	wait_metrics_sample("sluice_executions_pruned_total", 3);
	wait_metrics_sample("sluice_map_run_children_pruned_total", 20);
	wait_metrics_sample("sluice_map_runs_pruned_total", 1);
	wait_metrics_sample("sluice_express_records_pruned_total", 1);
	cr_assert_gt(metrics_sample("sluice_execution_records_pruned_total"), 20 * 3);

	const char *gone[]
	        = { EXEC("quick", "old"), EXEC("cb", "oldfail"), EXEC("fan", "oldmap"), child };
	for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
		fails("DescribeExecution", json_pack("{s:s}", "executionArn", gone[i]),
		      "ExecutionDoesNotExist", "");
		fails("GetExecutionHistory", json_pack("{s:s}", "executionArn", gone[i]),
		      "ExecutionDoesNotExist", "");
	}
	fails("DescribeMapRun", json_pack("{s:s}", "mapRunArn", mrarn), "ResourceNotFound", "");
	char names[256];
	listed(SM("quick"), names, sizeof names);
	cr_assert_str_eq(names, "recent");
	listed(SM("cb"), names, sizeof names);
	cr_assert_str_eq(names, "longrun recentfail");
	listed(SM("fan"), names, sizeof names);
	cr_assert_str_eq(names, "");

	// the running one is intact and still finishes
	json_decref(ok("SendTaskSuccess",
	               json_pack("{s:s,s:s}", "taskToken", long_tok, "output", "{\"ok\":1}")));
	json_decref(exec_wait_status(EXEC("cb", "longrun"), "SUCCEEDED", WAIT_MS));
	// the recent failed one is still redriven and finishes
	json_decref(ok("RedriveExecution",
	               json_pack("{s:s}", "executionArn", EXEC("cb", "recentfail"))));
	char *tok2 = token_of(EXEC("cb", "recentfail"), tok);
	json_decref(ok("SendTaskSuccess",
	               json_pack("{s:s,s:s}", "taskToken", tok2, "output", "{\"ok\":2}")));
	json_t *d = exec_wait_status(EXEC("cb", "recentfail"), "SUCCEEDED", WAIT_MS);
	cr_assert_eq(json_integer_value(json_object_get(d, "redriveCount")), 1);
	json_decref(d);
	free(tok);
	free(tok2);
	free(long_tok);
	free(mrarn);
	free(child);
	cr_assert_eq(h_stop(&srv), 0);
}

Test(exec_retention, zero_keeps_everything_and_bad_values_are_refused)
{
	const char *args[]
	        = { "--virtual-time", "2026-03-01T00:00:00Z", "--execution-retention", "0", NULL };
	cr_assert(h_start(&srv, args), "server did not start");
	create("quick", QUICK_DEF, "STANDARD");
	start_exec(SM("quick"), "kept", "{}");
	json_decref(exec_wait_status(EXEC("quick", "kept"), "SUCCEEDED", WAIT_MS));
	json_decref(ok_target("Sluice.AdvanceClock", json_pack("{s:f}", "Seconds", 400 * 86400.0)));
	// a later execution's end proves the loop turned after the move
	start_exec(SM("quick"), "later", "{}");
	json_decref(exec_wait_status(EXEC("quick", "later"), "SUCCEEDED", WAIT_MS));
	json_decref(exec_wait_status(EXEC("quick", "kept"), "SUCCEEDED", WAIT_MS));
	cr_assert_eq(metrics_sample("sluice_executions_pruned_total"), 0);
	cr_assert_eq(h_stop(&srv), 0);

	const char *bad[] = { "5", "1y", "-1d", "10s" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char cmd[512];
		snprintf(cmd, sizeof cmd,
		         "%s serve --execution-retention '%s' --data /nonexistent/x 2>&1",
		         getenv("SLUICE_BIN"), bad[i]);
		char *out = NULL;
		int rc = h_run(cmd, &out);
		cr_assert_neq(rc, 0, "%s accepted", bad[i]);
		cr_assert(out && strstr(out, "--execution-retention: expected 0 or a duration"),
		          "%s: %s", bad[i], out ? out : "");
		free(out);
	}
}
