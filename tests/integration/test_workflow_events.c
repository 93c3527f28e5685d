/*
 * Workflows that publish events: arn:aws:states:::events:putEvents on the real server,
 * served in the engine's own transaction by the bus (no worker involved). The task's output
 * is PutEvents' answer; a failed entry fails the task with EventBridge.FailedEntry, which a
 * Catch can route; a request the bus refuses fails it with the bus's error name.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>
#include <time.h>

#define AWS_CALLS_SERVICE "AWSStepFunctions"
#include "tests/integration/aws_calls.h"
#include "tests/integration/harness.h"

#define SM(name)     "arn:aws:states:us-east-1:000000000000:stateMachine:" name
#define ROLE         "arn:aws:iam::000000000000:role/x"
#define DONE_WAIT_MS 20000

/* One putEvents task; entries is the Entries JSON, Catch-all to a Pass named Caught. */
static void
create_publisher(const char *name, const char *entries)
{
	char def[2048];
	snprintf(def, sizeof def,
	         "{\"StartAt\":\"Send\",\"States\":{\"Send\":{\"Type\":\"Task\","
	         "\"Resource\":\"arn:aws:states:::events:putEvents\","
	         "\"Parameters\":{\"Entries\":%s},"
	         "\"Catch\":[{\"ErrorEquals\":[\"States.ALL\"],\"Next\":\"Caught\"}],"
	         "\"End\":true},"
	         "\"Caught\":{\"Type\":\"Pass\",\"End\":true}}}",
	         entries);
	json_decref(
	        ok("CreateStateMachine",
	           json_pack("{s:s,s:s,s:s}", "name", name, "definition", def, "roleArn", ROLE)));
}

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Starts an execution of name with input and polls (bounded) until it ends. */
static json_t *
run(const char *smarn, const char *input)
{
	json_t *r = ok("StartExecution",
	               json_pack("{s:s,s:s}", "stateMachineArn", smarn, "input", input));
	char arn[512];
	snprintf(arn, sizeof arn, "%s", s(r, "executionArn"));
	json_decref(r);
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		json_t *d = ok("DescribeExecution", json_pack("{s:s}", "executionArn", arn));
		if (strcmp(s(d, "status"), "RUNNING") != 0)
			return d;
		json_decref(d);
		nap_ms(50);
	}
	cr_assert_fail("%s still RUNNING after %d ms", arn, DONE_WAIT_MS);
	return NULL;
}

static json_t *
output_of(json_t *d)
{
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "status %s: %s", s(d, "status"),
	                 s(d, "cause") ? s(d, "cause") : "");
	json_t *o = json_loads(s(d, "output"), 0, NULL);
	cr_assert_not_null(o);
	return o;
}

TestSuite(workflow_events, .init = start, .fini = stop, .timeout = 120);

Test(workflow_events, published_entries_answer_with_event_ids)
{
	create_publisher("pub",
	                 "[{\"Source\":\"etl\",\"DetailType\":\"etl.failed\","
	                 "\"Detail\":{\"date.$\":\"$.date\",\"n\":1}},"
	                 "{\"Source\":\"etl\",\"DetailType\":\"etl.done\",\"Detail\":{}}]");
	json_t *d = run(SM("pub"), "{\"date\":\"2026-11-23\"}");
	json_t *o = output_of(d);
	cr_assert_eq(json_integer_value(json_object_get(o, "FailedEntryCount")), 0);
	json_t *entries = json_object_get(o, "Entries");
	cr_assert_eq(json_array_size(entries), 2);
	for (size_t i = 0; i < 2; i++) {
		const char *id = s(json_array_get(entries, i), "EventId");
		cr_assert(id && strlen(id) == 36, "entry %zu has no event id", i);
	}
	cr_assert_str_neq(s(json_array_get(entries, 0), "EventId"),
	                  s(json_array_get(entries, 1), "EventId"));
	json_decref(o);
	json_decref(d);
}

Test(workflow_events, a_failed_entry_fails_the_task_as_eventbridge_failed_entry)
{
	create_publisher("pub_missing_bus",
	                 "[{\"Source\":\"etl\",\"DetailType\":\"x\",\"Detail\":{},"
	                 "\"EventBusName\":\"no-such-bus\"}]");
	json_t *d = run(SM("pub_missing_bus"), "{}");
	json_t *o = output_of(d); /* caught: the Pass passes the error output on */
	cr_assert_str_eq(s(o, "Error"), "EventBridge.FailedEntry");
	const char *cause = s(o, "Cause");
	cr_assert(cause && strstr(cause, "ResourceNotFoundException"), "cause: %s", cause);
	json_decref(o);
	json_decref(d);
}

Test(workflow_events, a_refused_request_fails_the_task_with_the_bus_error)
{
	/* eleven entries: over PutEvents' limit of ten */
	char entries[2048] = "[";
	for (int i = 0; i < 11; i++)
		strcat(entries,
		       i ? ",{\"Source\":\"a\",\"DetailType\":\"b\",\"Detail\":{}}"
		         : "{\"Source\":\"a\",\"DetailType\":\"b\",\"Detail\":{}}");
	strcat(entries, "]");
	create_publisher("pub_too_many", entries);
	json_t *d = run(SM("pub_too_many"), "{}");
	json_t *o = output_of(d);
	cr_assert_str_eq(s(o, "Error"), "EventBridge.ValidationException");
	json_decref(o);
	json_decref(d);
}
