/*
 * The event bus service through the real server: buses, rules, targets and PutEvents with
 * raw HTTP, AWS's error names and messages, durable events and delivery records (read from
 * the data directory once the server is gone), routing after a SIGKILL and restart, and
 * the aws CLI and boto3 when they are installed.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#define AWS_CALLS_SERVICE "AWSEvents"
#include "tests/integration/aws_calls.h"
#include "tests/integration/harness.h"

#define SQS(q) "arn:aws:sqs:us-east-1:000000000000:" q

static json_t *
entry(const char *bus, const char *source, const char *detail)
{
	json_t *e = json_pack("{s:s,s:s,s:s}", "Source", source, "DetailType", "Test", "Detail",
	                      detail);
	if (bus)
		json_object_set_new(e, "EventBusName", json_string(bus));
	return e;
}

/* The number of keys in db (and, when pfx is set, values containing it). */
static size_t
count_db(const char *data, enum store_db db, const char *needle)
{
	store_t *st = NULL;
	struct sl_error err;
	cr_assert_eq(store_open(data, NULL, &st, &err), SL_OK, "%s", err.message);
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(st, &txn), SL_OK);
	store_cursor_t *c;
	cr_assert_eq(store_cursor_open(txn, db, &c), SL_OK);
	cr_assert_eq(store_cursor_seek(c, NULL, 0), SL_OK);
	size_t n = 0;
	struct store_val k, v;
	while (store_cursor_next(c, &k, &v) == SL_OK) {
		char *text = strndup(v.data, v.len);
		if (!needle || strstr(text, needle))
			n++;
		free(text);
	}
	store_cursor_close(c);
	store_read_end(txn);
	store_free(st);
	return n;
}

Test(bus_api, buses)
{
	start();
	json_t *j = ok("CreateEventBus", json_pack("{s:s}", "Name", "orders"));
	cr_assert_str_eq(s(j, "EventBusArn"),
	                 "arn:aws:events:us-east-1:000000000000:event-bus/orders");
	json_decref(j);
	fails("CreateEventBus", json_pack("{s:s}", "Name", "orders"),
	      "ResourceAlreadyExistsException", "Event bus orders already exists.");
	fails("CreateEventBus", json_pack("{s:s}", "Name", "default"),
	      "ResourceAlreadyExistsException", "Event bus default already exists.");
	fails("CreateEventBus", json_pack("{s:s}", "Name", "bad name"), "ValidationException",
	      "at 'name' failed to satisfy constraint");
	fails("CreateEventBus", json_pack("{}"), "ValidationException",
	      "Value null at 'name' failed to satisfy constraint: Member must not be null");
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof name, "page%d", i);
		json_decref(ok("CreateEventBus", json_pack("{s:s}", "Name", name)));
	}
	/* the default bus exists from the start; by ARN too */
	j = ok("DescribeEventBus", json_pack("{}"));
	cr_assert_str_eq(s(j, "Name"), "default");
	json_decref(j);
	j = ok("DescribeEventBus",
	       json_pack("{s:s}", "Name",
	                 "arn:aws:events:us-east-1:000000000000:event-bus/orders"));
	cr_assert_str_eq(s(j, "Name"), "orders");
	cr_assert(json_is_number(json_object_get(j, "CreationTime")));
	json_decref(j);
	fails("DescribeEventBus", json_pack("{s:s}", "Name", "nope"), "ResourceNotFoundException",
	      "Event bus nope does not exist.");
	/* NamePrefix with paging */
	const char *token = NULL;
	int seen = 0;
	json_t *page = NULL;
	do {
		json_t *req = json_pack("{s:s,s:i}", "NamePrefix", "page", "Limit", 2);
		if (token)
			json_object_set_new(req, "NextToken", json_string(token));
		json_t *next = ok("ListEventBuses", req);
		json_decref(page);
		page = next;
		json_t *list = json_object_get(page, "EventBuses");
		cr_assert_leq(json_array_size(list), 2);
		for (size_t i = 0; i < json_array_size(list); i++) {
			char want[16];
			snprintf(want, sizeof want, "page%d", seen++);
			cr_assert_str_eq(s(json_array_get(list, i), "Name"), want);
		}
		token = s(page, "NextToken");
	} while (token);
	json_decref(page);
	cr_assert_eq(seen, 3);
	j = ok("ListEventBuses", json_pack("{}"));
	cr_assert_eq(json_array_size(json_object_get(j, "EventBuses")), 5);
	json_decref(j);
	fails("ListEventBuses", json_pack("{s:s}", "NextToken", "zz"), "ValidationException",
	      "The NextToken provided is invalid.");
	fails("DeleteEventBus", json_pack("{s:s}", "Name", "default"), "ValidationException",
	      "Cannot delete event bus default.");
	fails("DeleteEventBus", json_pack("{s:s}", "Name", "nope"), "ResourceNotFoundException",
	      "Event bus nope does not exist.");
	json_decref(ok("DeleteEventBus", json_pack("{s:s}", "Name", "page1")));
	j = ok("ListEventBuses", json_pack("{s:s}", "NamePrefix", "page"));
	cr_assert_eq(json_array_size(json_object_get(j, "EventBuses")), 2);
	json_decref(j);
	stop();
}

Test(bus_api, rules)
{
	start();
	json_decref(ok("CreateEventBus", json_pack("{s:s}", "Name", "orders")));
	json_t *j
	        = ok("PutRule",
	             json_pack("{s:s,s:s,s:s,s:s}", "Name", "r1", "EventBusName", "orders",
	                       "EventPattern", "{\"source\":[\"shop\"]}", "Description", "first"));
	cr_assert_str_eq(s(j, "RuleArn"), "arn:aws:events:us-east-1:000000000000:rule/orders/r1");
	json_decref(j);
	j = ok("PutRule",
	       json_pack("{s:s,s:s}", "Name", "tick", "ScheduleExpression", "rate(5 minutes)"));
	cr_assert_str_eq(s(j, "RuleArn"), "arn:aws:events:us-east-1:000000000000:rule/tick");
	json_decref(j);
	fails("PutRule",
	      json_pack("{s:s,s:s}", "Name", "bad", "EventPattern", "{\"source\":\"shop\"}"),
	      "InvalidEventPatternException", "Event pattern is not valid. Reason:");
	fails("PutRule", json_pack("{s:s,s:s}", "Name", "bad", "ScheduleExpression", "rate(0 x)"),
	      "ValidationException", "Parameter ScheduleExpression is not valid.");
	fails("PutRule",
	      json_pack("{s:s,s:s,s:s}", "Name", "bad", "EventBusName", "orders",
	                "ScheduleExpression", "rate(5 minutes)"),
	      "ValidationException",
	      "ScheduleExpression is supported only on the default event bus.");
	fails("PutRule",
	      json_pack("{s:s,s:s}", "Name",
	                "toolong_toolong_toolong_toolong_toolong_toolong_toolong_toolong_x",
	                "EventPattern", "{}"),
	      "ValidationException",
	      "at 'name' failed to satisfy constraint: Member must have "
	      "length less than or equal to 64");
	fails("PutRule", json_pack("{s:s}", "Name", "bad"), "ValidationException",
	      "EventPattern or ScheduleExpression must be specified");
	fails("PutRule",
	      json_pack("{s:s,s:s,s:s}", "Name", "bad", "EventPattern", "{}", "State", "ON"),
	      "ValidationException", "Member must satisfy enum value set: [ENABLED, DISABLED]");
	fails("PutRule",
	      json_pack("{s:s,s:s,s:s}", "Name", "x", "EventBusName", "nope", "EventPattern",
	                "{\"source\":[\"a\"]}"),
	      "ResourceNotFoundException", "Event bus nope does not exist.");
	/* update in place: by ARN of the bus, new pattern, disabled */
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s,s:s,s:s}", "Name", "r1", "EventBusName",
	                         "arn:aws:events:us-east-1:000000000000:event-bus/orders",
	                         "EventPattern", "{\"source\":[\"shop2\"]}", "State", "DISABLED")));
	j = ok("DescribeRule", json_pack("{s:s,s:s}", "Name", "r1", "EventBusName", "orders"));
	cr_assert_str_eq(s(j, "EventPattern"), "{\"source\":[\"shop2\"]}");
	cr_assert_str_eq(s(j, "State"), "DISABLED");
	cr_assert_str_eq(s(j, "EventBusName"), "orders");
	cr_assert_str_eq(s(j, "Arn"), "arn:aws:events:us-east-1:000000000000:rule/orders/r1");
	cr_assert_null(json_object_get(j, "Description"));
	json_decref(j);
	json_decref(
	        ok("EnableRule", json_pack("{s:s,s:s}", "Name", "r1", "EventBusName", "orders")));
	j = ok("DescribeRule", json_pack("{s:s,s:s}", "Name", "r1", "EventBusName", "orders"));
	cr_assert_str_eq(s(j, "State"), "ENABLED");
	json_decref(j);
	json_decref(ok("DisableRule", json_pack("{s:s}", "Name", "tick")));
	fails("DescribeRule", json_pack("{s:s}", "Name", "nope"), "ResourceNotFoundException",
	      "Rule nope does not exist on EventBus default.");
	fails("EnableRule", json_pack("{s:s}", "Name", "nope"), "ResourceNotFoundException",
	      "Rule nope does not exist on EventBus default.");
	/* ListRules: bus, prefix, paging */
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof name, "p%d", i);
		json_decref(ok("PutRule",
		               json_pack("{s:s,s:s,s:s}", "Name", name, "EventBusName", "orders",
		                         "EventPattern", "{\"a\":[1]}")));
	}
	const char *token = NULL;
	int seen = 0;
	json_t *page = NULL;
	do {
		json_t *req = json_pack("{s:s,s:s,s:i}", "EventBusName", "orders", "NamePrefix",
		                        "p", "Limit", 2);
		if (token)
			json_object_set_new(req, "NextToken", json_string(token));
		json_t *next = ok("ListRules", req);
		json_decref(page);
		page = next;
		json_t *list = json_object_get(page, "Rules");
		for (size_t i = 0; i < json_array_size(list); i++) {
			char want[16];
			snprintf(want, sizeof want, "p%d", seen++);
			cr_assert_str_eq(s(json_array_get(list, i), "Name"), want);
		}
		token = s(page, "NextToken");
	} while (token);
	json_decref(page);
	cr_assert_eq(seen, 3);
	j = ok("ListRules", json_pack("{}"));
	cr_assert_eq(json_array_size(json_object_get(j, "Rules")), 1);
	cr_assert_str_eq(s(json_array_get(json_object_get(j, "Rules"), 0), "ScheduleExpression"),
	                 "rate(5 minutes)");
	json_decref(j);
	fails("ListRules", json_pack("{s:s}", "EventBusName", "nope"), "ResourceNotFoundException",
	      "Event bus nope does not exist.");
	/* deleting a rule that is not there succeeds, as on AWS */
	json_decref(ok("DeleteRule", json_pack("{s:s}", "Name", "never")));
	json_decref(
	        ok("DeleteRule", json_pack("{s:s,s:s}", "Name", "p0", "EventBusName", "orders")));
	fails("DescribeRule", json_pack("{s:s,s:s}", "Name", "p0", "EventBusName", "orders"),
	      "ResourceNotFoundException", "Rule p0 does not exist on EventBus orders.");
	stop();
}

Test(bus_api, targets)
{
	start();
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "r", "EventPattern", "{\"source\":[\"a\"]}")));
	fails("PutTargets",
	      json_pack("{s:s,s:[{s:s,s:s}]}", "Rule", "nope", "Targets", "Id", "t", "Arn",
	                SQS("q")),
	      "ResourceNotFoundException", "Rule nope does not exist on EventBus default.");
	fails("PutTargets",
	      json_pack("{s:s,s:[{s:s,s:s}]}", "Rule", "r", "Targets", "Id", "!@#$@!#$", "Arn",
	                SQS("q")),
	      "ValidationException",
	      "1 validation error detected: Value '!@#$@!#$' at 'targets.1.member.id' failed to "
	      "satisfy constraint: Member must satisfy regular expression pattern: "
	      "[\\.\\-_A-Za-z0-9]+");
	fails("PutTargets",
	      json_pack("{s:s,s:[{s:s,s:s}]}", "Rule", "r", "Targets", "Id",
	                "second-invalid-target-id-second-invalid-target-id-second-invalid-target",
	                "Arn", SQS("q")),
	      "ValidationException", "Member must have length less than or equal to 64");
	fails("PutTargets",
	      json_pack("{s:s,s:[{s:s,s:s,s:{s:i}}]}", "Rule", "r", "Targets", "Id", "t", "Arn",
	                SQS("q"), "RetryPolicy", "MaximumRetryAttempts", 186),
	      "ValidationException", "targets.1.member.retryPolicy.maximumRetryAttempts");
	fails("PutTargets",
	      json_pack("{s:s,s:[{s:s,s:s,s:{s:i}}]}", "Rule", "r", "Targets", "Id", "t", "Arn",
	                SQS("q"), "RetryPolicy", "MaximumEventAgeInSeconds", 59),
	      "ValidationException", "greater than or equal to 60");
	fails("PutTargets",
	      json_pack("{s:s,s:[{s:s,s:s,s:s,s:s}]}", "Rule", "r", "Targets", "Id", "t", "Arn",
	                SQS("q"), "Input", "{}", "InputPath", "$.detail"),
	      "ValidationException", "");
	json_t *many = json_array();
	for (int i = 0; i < 11; i++) {
		char id[16];
		snprintf(id, sizeof id, "t%d", i);
		json_array_append_new(many, json_pack("{s:s,s:s}", "Id", id, "Arn", SQS("q")));
	}
	fails("PutTargets", json_pack("{s:s,s:o}", "Rule", "r", "Targets", many),
	      "ValidationException", "Member must have length less than or equal to 10");
	/* a bad ARN fails its entry only */
	json_t *j
	        = ok("PutTargets",
	             json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s,s:s},{s:s,s:s}]}", "Rule", "r",
	                       "Targets", "Id", "t1", "Arn", SQS("q1"), "Id", "t2", "Arn",
	                       SQS("q2"), "InputPath", "$.detail", "Id", "t3", "Arn", "nonsense"));
	cr_assert_eq(json_integer_value(json_object_get(j, "FailedEntryCount")), 1);
	json_t *fe = json_array_get(json_object_get(j, "FailedEntries"), 0);
	cr_assert_str_eq(s(fe, "TargetId"), "t3");
	cr_assert_str_eq(s(fe, "ErrorCode"), "ValidationException");
	json_decref(j);
	j = ok("ListTargetsByRule", json_pack("{s:s}", "Rule", "r"));
	json_t *ts = json_object_get(j, "Targets");
	cr_assert_eq(json_array_size(ts), 2);
	cr_assert_str_eq(s(json_array_get(ts, 1), "InputPath"), "$.detail");
	json_decref(j);
	/* five per rule: AWS's LimitExceededException */
	json_decref(ok("PutTargets",
	               json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "Rule", "r", "Targets",
	                         "Id", "t3", "Arn", SQS("q3"), "Id", "t4", "Arn", SQS("q4"), "Id",
	                         "t5", "Arn", SQS("q1"))));
	fails("PutTargets",
	      json_pack("{s:s,s:[{s:s,s:s}]}", "Rule", "r", "Targets", "Id", "t6", "Arn", SQS("q")),
	      "LimitExceededException",
	      "The requested resource exceeds the maximum number allowed.");
	/* replacing an existing id is not a new target */
	json_decref(ok("PutTargets",
	               json_pack("{s:s,s:[{s:s,s:s}]}", "Rule", "r", "Targets", "Id", "t5", "Arn",
	                         SQS("q5"))));
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "r2", "EventPattern", "{\"source\":[\"b\"]}")));
	json_decref(ok("PutTargets",
	               json_pack("{s:s,s:[{s:s,s:s}]}", "Rule", "r2", "Targets", "Id", "x", "Arn",
	                         SQS("q1"))));
	j = ok("ListRuleNamesByTarget", json_pack("{s:s}", "TargetArn", SQS("q1")));
	json_t *names = json_object_get(j, "RuleNames");
	cr_assert_eq(json_array_size(names), 2);
	cr_assert_str_eq(json_string_value(json_array_get(names, 0)), "r");
	cr_assert_str_eq(json_string_value(json_array_get(names, 1)), "r2");
	json_decref(j);
	fails("DeleteRule", json_pack("{s:s}", "Name", "r"), "ValidationException",
	      "Rule can't be deleted since it has targets.");
	j = ok("RemoveTargets", json_pack("{s:s,s:[s,s]}", "Rule", "r", "Ids", "t1", "t2"));
	cr_assert_eq(json_integer_value(json_object_get(j, "FailedEntryCount")), 0);
	json_decref(j);
	j = ok("ListTargetsByRule", json_pack("{s:s,s:i}", "Rule", "r", "Limit", 2));
	cr_assert_eq(json_array_size(json_object_get(j, "Targets")), 2);
	cr_assert_not_null(s(j, "NextToken"));
	json_decref(j);
	json_decref(ok("DeleteRule", json_pack("{s:s,s:b}", "Name", "r", "Force", 1)));
	fails("ListTargetsByRule", json_pack("{s:s}", "Rule", "r"), "ResourceNotFoundException",
	      "Rule r does not exist on EventBus default.");
	stop();
}

Test(bus_api, put_events_entries)
{
	start();
	json_t *j
	        = ok("PutEvents",
	             json_pack("{s:[o,{s:s,s:s},{s:s,s:s},o,o,o]}", "Entries",
	                       entry(NULL, "shop", "{\"n\":1}"), "DetailType", "x", "Detail", "{}",
	                       "Source", "s", "Detail", "{}", entry(NULL, "shop", "\"a string\""),
	                       entry(NULL, "shop", "[1]"), entry("nope", "shop", "{}")));
	cr_assert_eq(json_integer_value(json_object_get(j, "FailedEntryCount")), 5);
	json_t *es = json_object_get(j, "Entries");
	cr_assert_eq(json_array_size(es), 6);
	cr_assert_eq(strlen(s(json_array_get(es, 0), "EventId")), 36);
	cr_assert_str_eq(s(json_array_get(es, 1), "ErrorCode"), "InvalidArgument");
	cr_assert_str_eq(s(json_array_get(es, 1), "ErrorMessage"),
	                 "Parameter Source is not valid. Reason: Source is a required argument.");
	cr_assert_str_eq(s(json_array_get(es, 2), "ErrorMessage"),
	                 "Parameter DetailType is not valid. Reason: DetailType is a required "
	                 "argument.");
	cr_assert_str_eq(s(json_array_get(es, 3), "ErrorCode"), "MalformedDetail");
	cr_assert_str_eq(s(json_array_get(es, 3), "ErrorMessage"), "Detail is malformed.");
	cr_assert_str_eq(s(json_array_get(es, 4), "ErrorCode"), "MalformedDetail");
	cr_assert_str_eq(s(json_array_get(es, 5), "ErrorMessage"),
	                 "Event bus nope does not exist.");
	json_decref(j);
	json_t *many = json_array();
	for (int i = 0; i < 11; i++)
		json_array_append_new(many, entry(NULL, "shop", "{}"));
	fails("PutEvents", json_pack("{s:o}", "Entries", many), "ValidationException",
	      "Member must have length less than or equal to 10");
	fails("PutEvents", json_pack("{s:[]}", "Entries"), "ValidationException",
	      "greater than or equal to 1");
	/* AWS's size formula: 2 x 140000 bytes of detail is over 256 KB */
	char *big = malloc(140001);
	memset(big, ' ', 140000);
	big[0] = '{';
	big[139999] = '}';
	big[140000] = '\0';
	fails("PutEvents",
	      json_pack("{s:[o,o]}", "Entries", entry(NULL, "shop", big), entry(NULL, "shop", big)),
	      "ValidationException", "Total size of the entries in the request is over the limit.");
	j = ok("PutEvents", json_pack("{s:[o]}", "Entries", entry(NULL, "shop", big)));
	cr_assert_eq(json_integer_value(json_object_get(j, "FailedEntryCount")), 0);
	json_decref(j);
	free(big);
	/* deeper than the router reads: refused per entry, nothing half-stored */
	char deep[2048] = "";
	for (int i = 0; i < 300; i++)
		strcat(deep, "[");
	for (int i = 0; i < 300; i++)
		strcat(deep, "]");
	char detail[2100];
	snprintf(detail, sizeof detail, "{\"a\":%s}", deep);
	j = ok("PutEvents", json_pack("{s:[o]}", "Entries", entry(NULL, "shop", detail)));
	cr_assert_str_eq(s(json_array_get(json_object_get(j, "Entries"), 0), "ErrorCode"),
	                 "MalformedDetail");
	json_decref(j);
	fails("PutEvents",
	      json_pack("{s:[{s:s,s:s,s:s,s:s}]}", "Entries", "Source", "a", "DetailType", "b",
	                "Detail", "{}", "Time", "yesterday"),
	      "SerializationException", "Time");
	stop();
}

/* Rules with targets on a custom bus; events routed; SIGKILL; restart routes again. */
Test(bus_api, deliveries_durable_and_routing_rebuilt)
{
	/* records are counted as written: the deliverer must not consume them */
	const char *paused[] = { "--delivery-paused", NULL };
	cr_assert(h_start(&srv, paused), "server did not start");
	json_decref(ok("CreateEventBus", json_pack("{s:s}", "Name", "orders")));
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s,s:s}", "Name", "big", "EventBusName", "orders",
	                         "EventPattern",
	                         "{\"detail\":{\"total\":[{\"numeric\":[\">\",100]}]}}")));
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s,s:s}", "Name", "all", "EventBusName", "orders",
	                         "EventPattern", "{\"source\":[\"shop\"]}")));
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s,s:s,s:s}", "Name", "off", "EventBusName", "orders",
	                         "EventPattern", "{\"source\":[\"shop\"]}", "State", "DISABLED")));
	json_decref(ok("PutTargets",
	               json_pack("{s:s,s:s,s:[{s:s,s:s,s:s},{s:s,s:s,s:{s:{s:s},s:s}}]}", "Rule",
	                         "big", "EventBusName", "orders", "Targets", "Id", "path", "Arn",
	                         SQS("q1"), "InputPath", "$.detail", "Id", "tpl", "Arn", SQS("q2"),
	                         "InputTransformer", "InputPathsMap", "t", "$.detail.total",
	                         "InputTemplate",
	                         "{\"total\": <t>, \"rule\": <aws.events.rule-name>}")));
	json_decref(ok("PutTargets",
	               json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "Rule", "all", "EventBusName", "orders",
	                         "Targets", "Id", "every", "Arn", SQS("q3"))));
	json_decref(ok("PutTargets",
	               json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "Rule", "off", "EventBusName", "orders",
	                         "Targets", "Id", "never", "Arn", SQS("q4"))));
	/* one event matching big and all (3 deliveries), one matching all only (1) */
	json_t *j = ok("PutEvents",
	               json_pack("{s:[o,o,o]}", "Entries",
	                         entry("orders", "shop", "{\"total\": 250.50, \"city\": \"Oslo\"}"),
	                         entry("orders", "shop", "{\"total\": 5}"),
	                         entry("orders", "elsewhere", "{\"total\": 5}")));
	cr_assert_eq(json_integer_value(json_object_get(j, "FailedEntryCount")), 0);
	json_decref(j);
	/* a request refused as a whole leaves nothing behind */
	fails("PutEvents",
	      json_pack("{s:[o,{s:s,s:s,s:s,s:i}]}", "Entries",
	                entry("orders", "shop", "{\"total\": 999}"), "Source", "shop", "DetailType",
	                "x", "Detail", "{}", "EventBusName", 7),
	      "SerializationException", "EventBusName");
	h_kill(&srv);
	cr_assert_eq(count_db(srv.data, STORE_DB_EVENTS, NULL), 3);
	cr_assert_eq(count_db(srv.data, STORE_DB_EVENTS, "\"total\": 250.50"), 1);
	cr_assert_eq(count_db(srv.data, STORE_DB_EVENTS, "\"detail-type\":\"Test\""), 3);
	cr_assert_eq(count_db(srv.data, STORE_DB_DELIVERIES, NULL), 4);
	cr_assert_eq(count_db(srv.data, STORE_DB_DELIVERIES, "\"target\":\"every\""), 2);
	cr_assert_eq(count_db(srv.data, STORE_DB_DELIVERIES, "\"attempt\":0"), 4);
	/* InputPath and InputTransformer were rendered into the records */
	cr_assert_eq(count_db(srv.data, STORE_DB_DELIVERIES,
	                      "\"input\":\"{\\\"total\\\":250.50,\\\"city\\\":\\\"Oslo\\\"}\""),
	             1);
	cr_assert_eq(count_db(srv.data, STORE_DB_DELIVERIES,
	                      "{\\\"total\\\": 250.50, \\\"rule\\\": \\\"big\\\"}"),
	             1);
	cr_assert_eq(count_db(srv.data, STORE_DB_DELIVERIES, "never"), 0);

	char dir[300];
	snprintf(dir, sizeof dir, "%s", srv.data);
	const char *extra[] = { "--data", dir, "--delivery-paused", NULL };
	struct h_server old = srv;
	cr_assert(h_start(&srv, extra), "restart failed");
	/* the machines were rebuilt from the store: routing works without any new PutRule */
	j = ok("PutEvents",
	       json_pack("{s:[o]}", "Entries", entry("orders", "shop", "{\"total\": 1000}")));
	cr_assert_eq(json_integer_value(json_object_get(j, "FailedEntryCount")), 0);
	json_decref(j);
	/* enabling after restart routes too; disabling stops it */
	json_decref(
	        ok("EnableRule", json_pack("{s:s,s:s}", "Name", "off", "EventBusName", "orders")));
	json_decref(
	        ok("DisableRule", json_pack("{s:s,s:s}", "Name", "big", "EventBusName", "orders")));
	j = ok("PutEvents",
	       json_pack("{s:[o]}", "Entries", entry("orders", "shop", "{\"total\": 2000}")));
	json_decref(j);
	cr_assert_eq(h_stop(&srv), 0);
	/* +3 (big x2, all) then +2 (all, off) */
	cr_assert_eq(count_db(dir, STORE_DB_EVENTS, NULL), 5);
	cr_assert_eq(count_db(dir, STORE_DB_DELIVERIES, NULL), 9);
	cr_assert_eq(count_db(dir, STORE_DB_DELIVERIES, "\"target\":\"never\""), 1);
	cr_assert_eq(count_db(dir, STORE_DB_DELIVERIES, "\"seq\":5"), 2);
	h_cleanup(&srv);
	h_cleanup(&old);
}

static const char *cli_env = "AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x "
                             "AWS_DEFAULT_REGION=us-east-1 AWS_MAX_ATTEMPTS=1 AWS_PAGER= aws "
                             "--output json";

static char *
cli(int expect, const char *args)
{
	char cmd[2048], *out = NULL;
	snprintf(cmd, sizeof cmd, "%s --endpoint-url http://127.0.0.1:%d events %s 2>&1", cli_env,
	         srv.http_port, args);
	int rc = h_run(cmd, &out);
	if (expect == 0)
		cr_assert_eq(rc, 0, "aws events %s: %d %s", args, rc, out);
	else
		cr_assert(rc == 254 || rc == 255, "aws events %s: %d %s", args, rc, out);
	return out;
}

Test(bus_api, aws_cli)
{
	if (h_run("command -v aws >/dev/null 2>&1", NULL) != 0)
		cr_skip_test("the aws CLI is not installed");
	start();
	free(cli(0, "create-event-bus --name cli"));
	char *out = cli(0,
	                "put-rule --name r --event-bus-name cli "
	                "--event-pattern '{\"source\":[\"app\"]}'");
	cr_assert(strstr(out, "arn:aws:events:us-east-1:000000000000:rule/cli/r"), "%s", out);
	free(out);
	out = cli(0,
	          "put-targets --rule r --event-bus-name cli --targets "
	          "'Id=t1,Arn=arn:aws:sqs:us-east-1:000000000000:q'");
	cr_assert(strstr(out, "\"FailedEntryCount\": 0"), "%s", out);
	free(out);
	out = cli(0,
	          "put-events --entries "
	          "'[{\"Source\":\"app\",\"DetailType\":\"d\",\"Detail\":\"{\\\"a\\\":1}\","
	          "\"EventBusName\":\"cli\"}]'");
	cr_assert(strstr(out, "\"FailedEntryCount\": 0") && strstr(out, "EventId"), "%s", out);
	free(out);
	out = cli(0, "list-rules --event-bus-name cli");
	cr_assert(strstr(out, "\"Name\": \"r\""), "%s", out);
	free(out);
	out = cli(0, "describe-rule --name r --event-bus-name cli");
	cr_assert(strstr(out, "\"State\": \"ENABLED\""), "%s", out);
	free(out);
	out = cli(0, "list-targets-by-rule --rule r --event-bus-name cli");
	cr_assert(strstr(out, "\"Id\": \"t1\""), "%s", out);
	free(out);
	out = cli(1, "put-rule --name bad --event-pattern '{\"source\":\"app\"}'");
	cr_assert(strstr(out, "InvalidEventPatternException"), "%s", out);
	free(out);
	out = cli(1, "delete-rule --name r --event-bus-name cli");
	cr_assert(strstr(out, "Rule can't be deleted since it has targets."), "%s", out);
	free(out);
	free(cli(0, "remove-targets --rule r --event-bus-name cli --ids t1"));
	free(cli(0, "delete-rule --name r --event-bus-name cli"));
	free(cli(0, "delete-event-bus --name cli"));
	out = cli(0, "list-event-buses");
	cr_assert(strstr(out, "\"Name\": \"default\"") && !strstr(out, "\"cli\""), "%s", out);
	free(out);
	stop();
}

Test(bus_api, boto3)
{
	if (h_run("python3 -c 'import boto3' >/dev/null 2>&1", NULL) != 0)
		cr_skip_test("boto3 is not installed");
	start();
	char cmd[4096], *out = NULL;
	snprintf(cmd, sizeof cmd,
	         "AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x python3 -c '\n"
	         "import boto3, json\n"
	         "c = boto3.client(\"events\", region_name=\"us-east-1\", "
	         "endpoint_url=\"http://127.0.0.1:%d\")\n"
	         "c.put_rule(Name=\"b\", EventPattern=json.dumps({\"source\": [\"app\"]}))\n"
	         "c.put_targets(Rule=\"b\", Targets=[{\"Id\": \"t\", "
	         "\"Arn\": \"arn:aws:sqs:us-east-1:000000000000:q\"}])\n"
	         "r = c.put_events(Entries=[{\"Source\": \"app\", \"DetailType\": \"d\", "
	         "\"Detail\": \"{}\"}, {\"Source\": \"app\", \"DetailType\": \"d\", "
	         "\"Detail\": \"nope\"}])\n"
	         "assert r[\"FailedEntryCount\"] == 1, r\n"
	         "assert r[\"Entries\"][1][\"ErrorCode\"] == \"MalformedDetail\", r\n"
	         "rules = c.list_rules()[\"Rules\"]\n"
	         "assert [x[\"Name\"] for x in rules] == [\"b\"], rules\n"
	         "try:\n"
	         "    c.describe_rule(Name=\"zz\")\n"
	         "    raise SystemExit(\"no error\")\n"
	         "except c.exceptions.ResourceNotFoundException as e:\n"
	         "    print(\"ok\", e)\n"
	         "' 2>&1",
	         srv.http_port);
	int rc = h_run(cmd, &out);
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert(strstr(out, "ok "), "%s", out);
	free(out);
	stop();
}
