/*
 * Workflows that publish events: arn:aws:states:::events:putEvents on the real server,
 * served in the engine's own transaction by the bus (no worker involved). The task's output
 * is PutEvents' answer; a failed entry fails the task with EventBridge.FailedEntry, which a
 * Catch can route; a request the bus refuses fails it with the bus's error name. Published
 * events and the engine's own "Step Functions Execution Status Change" events are routed
 * like any other: rules with state machine targets start executions from them.
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

/* A rule on the default bus with one target: the state machine named target. */
static void
route_to_machine(const char *rule, const char *pattern, const char *target)
{
	json_decref(ok_target("AWSEvents.PutRule",
	                      json_pack("{s:s,s:s}", "Name", rule, "EventPattern", pattern)));
	char arn[256];
	snprintf(arn, sizeof arn, SM("%s"), target);
	json_t *r = ok_target(
	        "AWSEvents.PutTargets",
	        json_pack("{s:s,s:[{s:s,s:s}]}", "Rule", rule, "Targets", "Id", "t1", "Arn", arn));
	cr_assert_eq(json_integer_value(json_object_get(r, "FailedEntryCount")), 0);
	json_decref(r);
}

/* The executions of machine (bounded wait until there are at least want). */
static json_t *
executions_of(const char *machine, size_t want)
{
	char arn[256];
	snprintf(arn, sizeof arn, SM("%s"), machine);
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		json_t *r = ok("ListExecutions", json_pack("{s:s}", "stateMachineArn", arn));
		json_t *l = json_incref(json_object_get(r, "executions"));
		json_decref(r);
		if (json_array_size(l) >= want)
			return l;
		json_decref(l);
		nap_ms(50);
	}
	cr_assert_fail("%s has fewer than %zu executions after %d ms", machine, want, DONE_WAIT_MS);
	return NULL;
}

/* The input of the only execution of machine, once it has ended. */
static json_t *
sole_input(const char *machine)
{
	json_t *l = executions_of(machine, 1);
	cr_assert_eq(json_array_size(l), 1, "%s: %zu executions", machine, json_array_size(l));
	json_t *d = NULL;
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		d = ok("DescribeExecution",
		       json_pack("{s:s}", "executionArn", s(json_array_get(l, 0), "executionArn")));
		if (strcmp(s(d, "status"), "RUNNING") != 0)
			break;
		json_decref(d);
		d = NULL;
		nap_ms(50);
	}
	cr_assert_not_null(d, "%s: its execution still RUNNING after %d ms", machine, DONE_WAIT_MS);
	json_t *in = json_loads(s(d, "input"), 0, NULL);
	cr_assert_not_null(in);
	json_decref(d);
	json_decref(l);
	return in;
}

#define SINK_DEF "{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}}"

Test(workflow_events, published_events_reach_rules_with_the_execution_in_resources)
{
	json_decref(ok("CreateStateMachine",
	               json_pack("{s:s,s:s,s:s}", "name", "sink", "definition", SINK_DEF, "roleArn",
	                         ROLE)));
	route_to_machine("on-etl-failed", "{\"source\":[\"etl\"],\"detail-type\":[\"etl.failed\"]}",
	                 "sink");
	create_publisher("pub2",
	                 "[{\"Source\":\"etl\",\"DetailType\":\"etl.failed\","
	                 "\"Detail\":{\"date.$\":\"$.date\"}}]");
	json_t *d = run(SM("pub2"), "{\"date\":\"2026-11-23\"}");
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED");
	const char *exec = s(d, "executionArn");
	json_t *ev = sole_input("sink");
	cr_assert_str_eq(s(ev, "detail-type"), "etl.failed");
	cr_assert_str_eq(s(json_object_get(ev, "detail"), "date"), "2026-11-23");
	json_t *res = json_object_get(ev, "resources");
	cr_assert_eq(json_array_size(res), 2);
	cr_assert_str_eq(json_string_value(json_array_get(res, 0)), exec);
	cr_assert_str_eq(json_string_value(json_array_get(res, 1)), SM("pub2"));
	json_decref(ev);
	json_decref(d);
}

Test(workflow_events, a_failed_execution_is_announced_as_a_status_change_event)
{
	json_decref(ok("CreateStateMachine",
	               json_pack("{s:s,s:s,s:s}", "name", "alert", "definition", SINK_DEF,
	                         "roleArn", ROLE)));
	json_decref(ok("CreateStateMachine",
	               json_pack("{s:s,s:s,s:s}", "name", "doomed", "definition",
	                         "{\"StartAt\":\"F\",\"States\":{\"F\":{\"Type\":\"Fail\","
	                         "\"Error\":\"Nope\",\"Cause\":\"on purpose\"}}}",
	                         "roleArn", ROLE)));
	route_to_machine("on-failed",
	                 "{\"source\":[\"aws.states\"],"
	                 "\"detail-type\":[\"Step Functions Execution Status Change\"],"
	                 "\"detail\":{\"status\":[\"FAILED\"]}}",
	                 "alert");
	json_t *d = run(SM("doomed"), "{\"night\":3}");
	cr_assert_str_eq(s(d, "status"), "FAILED");
	json_t *ev = sole_input("alert");
	json_t *det = json_object_get(ev, "detail");
	cr_assert_str_eq(s(ev, "source"), "aws.states");
	cr_assert_str_eq(s(det, "executionArn"), s(d, "executionArn"));
	cr_assert_str_eq(s(det, "stateMachineArn"), SM("doomed"));
	cr_assert_str_eq(s(det, "status"), "FAILED");
	cr_assert_str_eq(s(det, "error"), "Nope");
	cr_assert_str_eq(s(det, "cause"), "on purpose");
	cr_assert_str_eq(s(det, "input"), "{\"night\":3}");
	cr_assert(json_is_integer(json_object_get(det, "startDate")));
	cr_assert(json_is_integer(json_object_get(det, "stopDate")));
	json_decref(ev);
	json_decref(d);
	/* the alert's own SUCCEEDED does not match the rule: still one execution */
	json_t *l = executions_of("alert", 1);
	cr_assert_eq(json_array_size(l), 1);
	json_decref(l);
}
