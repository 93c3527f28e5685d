/*
 * Schedule rules through the real server on the fake clock (`sluice serve --virtual-time`,
 * Sluice.AdvanceClock): rate and cron slots with the slot's time in the event, a time zone
 * across a daylight-saving change, the missed-run policies after a SIGKILL and a restart
 * with the clock moved, DisableRule, backfills, and the `sluice put-events`, `rules`,
 * `targets` and `schedules` commands. No test sleeps for the schedule: the clock is moved.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AWS_CALLS_SERVICE "AWSEvents"
#include "tests/integration/aws_calls.h"
#include "tests/integration/harness.h"

#define RULE_ARN(r) "arn:aws:events:us-east-1:000000000000:rule/" r

static void
start_at(const char *when)
{
	const char *extra[] = { "--virtual-time", when, NULL };
	cr_assert(h_start(&srv, extra), "server did not start");
}

static void
advance(double seconds)
{
	json_decref(ok_target("Sluice.AdvanceClock", json_pack("{s:f}", "Seconds", seconds)));
}

static void
advance_to(const char *when)
{
	json_decref(ok_target("Sluice.AdvanceClock", json_pack("{s:s}", "To", when)));
}

/* The default bus's log (every event, oldest first). */
static json_t *
events(void)
{
	json_t *j = ok_target("SluiceEvents.ListEvents", json_pack("{s:i}", "Limit", 1000));
	json_t *e = json_incref(json_object_get(j, "Events"));
	json_decref(j);
	return e;
}

/* Waits (bounded, a hang guard) until the log holds at least n events; returns them. */
static json_t *
events_at_least(size_t n)
{
	for (int i = 0; i < 100; i++) {
		json_t *e = events();
		if (json_array_size(e) >= n)
			return e;
		json_decref(e);
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return events();
}

static json_t *
event_at(json_t *list, size_t i)
{
	return json_object_get(json_array_get(list, i), "Event");
}

/* The times of the events of one rule (by its ARN in resources), as one string. */
static void
times_of(json_t *list, const char *rule_arn, char *out, size_t cap)
{
	out[0] = '\0';
	size_t i;
	json_t *el;
	json_array_foreach(list, i, el)
	{
		json_t *ev = json_object_get(el, "Event");
		const char *r
		        = json_string_value(json_array_get(json_object_get(ev, "resources"), 0));
		if (!r || strcmp(r, rule_arn) != 0)
			continue;
		size_t l = strlen(out);
		snprintf(out + l, cap - l, "%s%s", l ? " " : "", s(ev, "time"));
	}
}

static json_t *
schedule_of(const char *rule)
{
	json_t *j = ok_target("SluiceEvents.ListSchedules", json_object()), *el, *found = NULL;
	size_t i;
	json_array_foreach(json_object_get(j, "Schedules"), i,
	                   el) if (strcmp(s(el, "Name"), rule) == 0) found
	        = json_incref(el);
	json_decref(j);
	cr_assert_not_null(found, "schedule %s not listed", rule);
	return found;
}

Test(schedules, rate_fires_each_slot_with_its_time)
{
	start_at("2026-03-01T00:00:00Z");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "hourly", "ScheduleExpression", "rate(1 hour)")));
	json_t *j = ok("PutTargets",
	               json_pack("{s:s,s:[{s:s,s:s}]}", "Rule", "hourly", "Targets", "Id", "log",
	                         "Arn", "arn:aws:logs:us-east-1:000000000000:log-group:hourly"));
	json_decref(j);
	json_t *sc = schedule_of("hourly");
	cr_assert_str_eq(s(sc, "NextFireTime"), "2026-03-01T01:00:00Z");
	cr_assert_str_eq(s(sc, "MissedRunPolicy"), "skip");
	cr_assert_str_eq(s(sc, "ScheduleExpressionTimezone"), "UTC");
	cr_assert_null(json_object_get(sc, "LastFireTime"));
	json_decref(sc);

	advance(3 * 3600);
	json_t *e = events();
	cr_assert_eq(json_array_size(e), 3);
	static const char *const want[]
	        = { "2026-03-01T01:00:00Z", "2026-03-01T02:00:00Z", "2026-03-01T03:00:00Z" };
	for (size_t i = 0; i < 3; i++) {
		json_t *ev = event_at(e, i);
		cr_assert_str_eq(s(ev, "time"), want[i]);
		cr_assert_str_eq(s(ev, "source"), "aws.events");
		cr_assert_str_eq(s(ev, "detail-type"), "Scheduled Event");
		cr_assert_str_eq(
		        json_string_value(json_array_get(json_object_get(ev, "resources"), 0)),
		        RULE_ARN("hourly"));
		cr_assert_eq(json_object_size(json_object_get(ev, "detail")), 0);
	}
	json_decref(e);
	sc = schedule_of("hourly");
	cr_assert_str_eq(s(sc, "LastFireTime"), "2026-03-01T03:00:00Z");
	cr_assert_str_eq(s(sc, "NextFireTime"), "2026-03-01T04:00:00Z");
	json_decref(sc);
	/* half an hour more: nothing */
	advance(1800);
	e = events();
	cr_assert_eq(json_array_size(e), 3);
	json_decref(e);
	stop();
}

Test(schedules, cron_in_paris_across_spring_forward)
{
	start_at("2026-03-27T00:00:00Z");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s,s:s}", "Name", "nightly", "ScheduleExpression",
	                     "cron(0 2 * * ? *)", "ScheduleExpressionTimezone", "Europe/Paris")));
	json_t *d = ok("DescribeRule", json_pack("{s:s}", "Name", "nightly"));
	cr_assert_str_eq(s(d, "ScheduleExpressionTimezone"), "Europe/Paris");
	json_decref(d);
	advance_to("2026-03-31T00:00:00Z");
	json_t *e = events();
	char got[512];
	times_of(e, RULE_ARN("nightly"), got, sizeof got);
	/* 02:00 CET is 01:00Z; on the 29th 02:00 does not exist and fires at 03:00 CEST
	 * (01:00Z); from the 30th 02:00 CEST is 00:00Z; a slot at the target fires */
	cr_assert_str_eq(got,
	                 "2026-03-27T01:00:00Z 2026-03-28T01:00:00Z 2026-03-29T01:00:00Z "
	                 "2026-03-30T00:00:00Z 2026-03-31T00:00:00Z");
	json_decref(e);
	stop();
}

Test(schedules, put_rule_extension_fields_validated)
{
	start_at("2026-03-01T00:00:00Z");
	fails("PutRule",
	      json_pack("{s:s,s:s,s:s}", "Name", "z", "ScheduleExpression", "rate(1 hour)",
	                "ScheduleExpressionTimezone", "Europe/Atlantis"),
	      "ValidationException", "ScheduleExpressionTimezone");
	fails("PutRule",
	      json_pack("{s:s,s:s,s:s}", "Name", "z", "ScheduleExpression", "rate(1 hour)",
	                "ScheduleExpressionTimezone", "../etc/passwd"),
	      "ValidationException", "ScheduleExpressionTimezone");
	fails("PutRule",
	      json_pack("{s:s,s:s,s:s}", "Name", "z", "ScheduleExpression", "rate(1 hour)",
	                "MissedRunPolicy", "sometimes"),
	      "ValidationException", "MissedRunPolicy");
	fails("PutRule",
	      json_pack("{s:s,s:s,s:s}", "Name", "z", "EventPattern", "{\"source\":[\"a\"]}",
	                "MissedRunPolicy", "all"),
	      "ValidationException", "ScheduleExpression");
	fails("PutRule",
	      json_pack("{s:s,s:s,s:i}", "Name", "z", "ScheduleExpression", "rate(1 hour)",
	                "ScheduleExpressionTimezone", 5),
	      "SerializationException", "ScheduleExpressionTimezone");
	/* nothing was stored */
	fails("DescribeRule", json_pack("{s:s}", "Name", "z"), "ResourceNotFoundException",
	      "does not exist");
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s,s:s}", "Name", "z", "ScheduleExpression", "rate(1 hour)",
	                         "MissedRunPolicy", "once")));
	json_t *d = ok("DescribeRule", json_pack("{s:s}", "Name", "z"));
	cr_assert_str_eq(s(d, "MissedRunPolicy"), "once");
	cr_assert_null(json_object_get(d, "ScheduleExpressionTimezone"));
	json_decref(d);
	/* the test clock only moves forward */
	int st;
	json_t *j = call_target("Sluice.AdvanceClock",
	                        json_pack("{s:s}", "To", "2020-01-01T00:00:00Z"), &st);
	cr_assert_eq(st, 400);
	json_decref(j);
	stop();
}

Test(schedules, sluice_clock_ops_absent_without_virtual_time)
{
	start();
	int st;
	json_t *j = call_target("Sluice.AdvanceClock", json_pack("{s:i}", "Seconds", 60), &st);
	cr_assert_eq(st, 400);
	cr_assert_str_eq(s(j, "__type"), "UnknownOperationException");
	json_decref(j);
	/* the read operations are always there */
	json_decref(ok_target("SluiceEvents.ListSchedules", json_object()));
	stop();
}

Test(schedules, missed_run_policies_after_sigkill)
{
	start_at("2026-06-01T00:00:00Z");
	static const char *const pol[] = { "skip", "once", "all" };
	for (size_t i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof name, "m_%s", pol[i]);
		json_decref(ok("PutRule",
		               json_pack("{s:s,s:s,s:s}", "Name", name, "ScheduleExpression",
		                         "cron(0 * * * ? *)", "MissedRunPolicy", pol[i])));
	}
	advance(3600);
	json_t *e = events();
	cr_assert_eq(json_array_size(e), 3);
	json_decref(e);
	h_kill(&srv);

	/* down from 01:00 to 05:30: the slots 02:00, 03:00, 04:00 and 05:00 were missed */
	char dir[300];
	snprintf(dir, sizeof dir, "%s", srv.data);
	struct h_server old = srv;
	const char *extra[] = { "--data", dir, "--virtual-time", "2026-06-01T05:30:00Z", NULL };
	cr_assert(h_start(&srv, extra), "restart failed");
	e = events_at_least(3 + 1 + 4);
	char got[512];
	times_of(e, RULE_ARN("m_skip"), got, sizeof got);
	cr_assert_str_eq(got, "2026-06-01T01:00:00Z");
	times_of(e, RULE_ARN("m_once"), got, sizeof got);
	cr_assert_str_eq(got, "2026-06-01T01:00:00Z 2026-06-01T05:00:00Z");
	times_of(e, RULE_ARN("m_all"), got, sizeof got);
	cr_assert_str_eq(got,
	                 "2026-06-01T01:00:00Z 2026-06-01T02:00:00Z 2026-06-01T03:00:00Z "
	                 "2026-06-01T04:00:00Z 2026-06-01T05:00:00Z");
	cr_assert_eq(json_array_size(e), 8);
	json_decref(e);
	/* every rule goes on from 06:00, and a restart does not fire anything twice */
	json_t *sc = schedule_of("m_skip");
	cr_assert_str_eq(s(sc, "NextFireTime"), "2026-06-01T06:00:00Z");
	json_decref(sc);
	h_kill(&srv);
	struct h_server second = srv;
	const char *extra2[] = { "--data", dir, "--virtual-time", "2026-06-01T05:40:00Z", NULL };
	cr_assert(h_start(&srv, extra2), "second restart failed");
	advance_to("2026-06-01T06:00:00Z");
	e = events();
	cr_assert_eq(json_array_size(e), 11);
	json_decref(e);
	stop();
	h_cleanup(&second);
	h_cleanup(&old);
}

Test(schedules, disable_stops_and_enable_resumes)
{
	start_at("2026-03-01T00:00:00Z");
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s}", "Name", "h", "ScheduleExpression", "rate(1 hour)")));
	advance(3600);
	json_decref(ok("DisableRule", json_pack("{s:s}", "Name", "h")));
	json_t *sc = schedule_of("h");
	cr_assert_str_eq(s(sc, "State"), "DISABLED");
	cr_assert_null(json_object_get(sc, "NextFireTime"));
	json_decref(sc);
	advance(3 * 3600);
	json_t *e = events();
	cr_assert_eq(json_array_size(e), 1);
	json_decref(e);
	/* enabled at 04:00: the hours it was off are not caught up, 05:00 fires */
	json_decref(ok("EnableRule", json_pack("{s:s}", "Name", "h")));
	advance(3600);
	e = events();
	char got[256];
	times_of(e, RULE_ARN("h"), got, sizeof got);
	cr_assert_str_eq(got, "2026-03-01T01:00:00Z 2026-03-01T05:00:00Z");
	json_decref(e);
	/* a schedule rule rewritten as a pattern rule stops firing too */
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s}", "Name", "p", "ScheduleExpression", "rate(1 hour)")));
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "p", "EventPattern", "{\"source\":[\"x\"]}")));
	/* deleted: no schedule left */
	json_decref(ok("DeleteRule", json_pack("{s:s}", "Name", "h")));
	advance(3 * 3600);
	e = events();
	cr_assert_eq(json_array_size(e), 2);
	json_decref(e);
	json_t *j = ok_target("SluiceEvents.ListSchedules", json_object());
	cr_assert_eq(json_array_size(json_object_get(j, "Schedules")), 0);
	json_decref(j);
	stop();
}

static char *
sluice(int expect, const char *args)
{
	char cmd[2048], *out = NULL;
	const char *bin = getenv("SLUICE_BIN");
	cr_assert_not_null(bin, "SLUICE_BIN is not set");
	snprintf(cmd, sizeof cmd, "%s %s --endpoint http://127.0.0.1:%d 2>&1", bin, args,
	         srv.http_port);
	int rc = h_run(cmd, &out);
	cr_assert_eq(rc, expect, "sluice %s: exit %d, wanted %d: %s", args, rc, expect, out);
	return out;
}

Test(schedules, backfill_five_days_in_order_marked)
{
	start_at("2026-03-01T00:00:00Z");
	json_decref(ok(
	        "PutRule",
	        json_pack("{s:s,s:s}", "Name", "etl", "ScheduleExpression", "cron(0 2 * * ? *)")));
	/* a target whose deliveries the deliverer completes: the pacing waits for them */
	json_decref(ok("PutTargets",
	               json_pack("{s:s,s:[{s:s,s:s}]}", "Rule", "etl", "Targets", "Id", "log",
	                         "Arn", "arn:aws:logs:us-east-1:000000000000:log-group:etl")));
	/* the CLI waits until every slot is fired */
	char *out = sluice(0,
	                   "schedules backfill etl --from 2026-01-01T00:00:00Z --to "
	                   "2026-01-06T00:00:00Z --max-concurrency 2");
	cr_assert(strstr(out, "COMPLETED, 5 of 5 slot(s) fired"), "%s", out);
	free(out);
	json_t *e = events();
	cr_assert_eq(json_array_size(e), 5);
	for (size_t i = 0; i < 5; i++) {
		json_t *ev = event_at(e, i);
		char want[32];
		snprintf(want, sizeof want, "2026-01-0%zuT02:00:00Z", i + 1);
		cr_assert_str_eq(s(ev, "time"), want);
		cr_assert(json_is_true(json_object_get(json_object_get(ev, "detail"), "backfill")));
		cr_assert_str_eq(s(ev, "detail-type"), "Scheduled Event");
	}
	json_decref(e);
	/* through the operation; a range without slots completes at once */
	json_t *b = ok_target("SluiceEvents.BackfillSchedule",
	                      json_pack("{s:s,s:s,s:s}", "Rule", "etl", "From",
	                                "2026-01-01T03:00:00Z", "To", "2026-01-01T04:00:00Z"));
	cr_assert_str_eq(s(b, "State"), "COMPLETED");
	cr_assert_eq(json_integer_value(json_object_get(b, "Slots")), 0);
	json_t *d = ok_target("SluiceEvents.DescribeBackfill",
	                      json_pack("{s:s}", "BackfillId", s(b, "BackfillId")));
	cr_assert_str_eq(s(d, "State"), "COMPLETED");
	json_decref(d);
	json_decref(b);
	int st;
	b = call_target("SluiceEvents.BackfillSchedule",
	                json_pack("{s:s,s:s,s:s}", "Rule", "etl", "From", "2026-01-05T00:00:00Z",
	                          "To", "2026-01-01T00:00:00Z"),
	                &st);
	cr_assert_eq(st, 400);
	json_decref(b);
	b = call_target("SluiceEvents.BackfillSchedule",
	                json_pack("{s:s,s:s,s:s}", "Rule", "ghost", "From", "2026-01-01T00:00:00Z",
	                          "To", "2026-01-02T00:00:00Z"),
	                &st);
	cr_assert_eq(st, 400);
	cr_assert_str_eq(s(b, "__type"), "ResourceNotFoundException");
	json_decref(b);
	/* a pattern rule has no slots to backfill */
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "pat", "EventPattern", "{\"source\":[\"x\"]}")));
	b = call_target("SluiceEvents.BackfillSchedule",
	                json_pack("{s:s,s:s,s:s}", "Rule", "pat", "From", "2026-01-01T00:00:00Z",
	                          "To", "2026-01-02T00:00:00Z"),
	                &st);
	cr_assert_eq(st, 400);
	json_decref(b);
	stop();
}

Test(schedules, cli_put_events)
{
	start_at("2026-03-01T00:00:00Z");
	char *out = sluice(0,
	                   "put-events --source app.orders --detail-type Created --detail "
	                   "'{\"id\": 7}' --time 2026-02-01T10:00:00Z");
	cr_assert_eq(strlen(out), 37, "one event id: %s", out);
	free(out);
	char path[400];
	snprintf(path, sizeof path, "%s/events.jsonl", srv.dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < 23; i++)
		fprintf(f,
		        "{\"Source\": \"app\", \"DetailType\": \"n\", \"Detail\": {\"i\": %d}}\n",
		        i);
	fprintf(f, "\n{\"DetailType\": \"n\", \"Detail\": \"{}\"}\nnot json\n");
	fclose(f);
	char args[600];
	snprintf(args, sizeof args, "put-events -f %s", path);
	out = sluice(1, args);
	cr_assert(strstr(out, "23 event(s) put, 2 refused"), "%s", out);
	cr_assert(strstr(out, "line 25: InvalidArgument"), "%s", out);
	cr_assert(strstr(out, "line 26: not JSON"), "%s", out);
	free(out);
	snprintf(path, sizeof path, "%s/events.json", srv.dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f,
	        "[{\"Source\": \"arr\", \"DetailType\": \"n\", \"Detail\": {}},"
	        " {\"Source\": \"arr\", \"DetailType\": \"n\", \"Detail\": {}}]");
	fclose(f);
	snprintf(args, sizeof args, "put-events -f - < %s", path);
	out = sluice(0, args);
	free(out);
	json_t *e = events();
	cr_assert_eq(json_array_size(e), 26);
	json_t *first = event_at(e, 0);
	cr_assert_str_eq(s(first, "time"), "2026-02-01T10:00:00Z");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(first, "detail"), "id")),
	             7);
	cr_assert_eq(json_integer_value(
	                     json_object_get(json_object_get(event_at(e, 23), "detail"), "i")),
	             22);
	cr_assert_str_eq(s(event_at(e, 25), "source"), "arr");
	json_decref(e);
	out = sluice(2, "put-events --source only");
	free(out);
	stop();
}

Test(schedules, cli_rules_and_targets)
{
	start_at("2026-03-01T00:00:00Z");
	char *out = sluice(0,
	                   "rules put orders --pattern '{\"source\": [\"shop\"]}' "
	                   "--description 'order events'");
	cr_assert(strstr(out, RULE_ARN("orders")), "%s", out);
	free(out);
	out = sluice(0,
	             "rules put nightly --schedule 'cron(0 2 * * ? *)' --timezone "
	             "America/New_York --missed-run-policy all");
	free(out);
	out = sluice(2, "rules put bad --schedule 'cron(0 2 * * * *)'");
	cr_assert(strstr(out, "ScheduleExpression is not valid"), "%s", out);
	free(out);
	out = sluice(0, "rules list");
	cr_assert(strstr(out, "nightly") && strstr(out, "orders"), "%s", out);
	free(out);
	out = sluice(0, "rules describe nightly");
	cr_assert(strstr(out, "\"ScheduleExpressionTimezone\": \"America/New_York\""), "%s", out);
	free(out);
	out = sluice(0,
	             "targets put orders --id wf --arn "
	             "arn:aws:states:us-east-1:000000000000:stateMachine:wf "
	             "--input '{\"fixed\": true}'");
	free(out);
	out = sluice(1, "targets put orders --id bad --arn nope");
	cr_assert(strstr(out, "target bad: ValidationException"), "%s", out);
	free(out);
	out = sluice(0, "targets list orders");
	cr_assert(strstr(out, "stateMachine:wf") && !strstr(out, "bad"), "%s", out);
	free(out);
	out = sluice(2, "rules delete orders");
	cr_assert(strstr(out, "has targets"), "%s", out);
	free(out);
	out = sluice(0, "targets remove orders wf");
	free(out);
	out = sluice(0, "rules disable nightly");
	free(out);
	out = sluice(0, "schedules list");
	cr_assert(strstr(out, "America/New_York") && strstr(out, "DISABLED"), "%s", out);
	free(out);
	out = sluice(0, "rules enable nightly");
	free(out);
	out = sluice(0, "schedules advance-clock --seconds 86400");
	cr_assert(strstr(out, "1 slot(s) fired"), "%s", out);
	free(out);
	out = sluice(0, "schedules list");
	cr_assert(strstr(out, "2026-03-01T07:00:00Z"), "02:00 EST is 07:00Z: %s", out);
	free(out);
	out = sluice(0, "rules delete orders");
	free(out);
	out = sluice(2, "rules describe orders");
	cr_assert(strstr(out, "does not exist"), "%s", out);
	free(out);
	stop();
}

/* Waits (bounded) until a backfill leaves RUNNING; returns its description. */
static json_t *
backfill_done(const char *id)
{
	json_t *d = NULL;
	for (int i = 0; i < 200; i++) {
		json_decref(d);
		d = ok_target("SluiceEvents.DescribeBackfill",
		              json_pack("{s:s}", "BackfillId", id));
		if (strcmp(s(d, "State"), "RUNNING") != 0)
			break;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return d;
}

Test(schedules, backfill_bound_holds_and_resumes_after_restart)
{
	/* deliveries are kept but not processed: every fired slot stays outstanding */
	const char *extra[]
	        = { "--virtual-time", "2026-03-01T00:00:00Z", "--delivery-paused", NULL };
	cr_assert(h_start(&srv, extra), "server did not start");
	json_decref(ok(
	        "PutRule",
	        json_pack("{s:s,s:s}", "Name", "etl", "ScheduleExpression", "cron(0 2 * * ? *)")));
	json_decref(ok("PutTargets",
	               json_pack("{s:s,s:[{s:s,s:s}]}", "Rule", "etl", "Targets", "Id", "log",
	                         "Arn", "arn:aws:logs:us-east-1:000000000000:log-group:etl")));
	json_t *b = ok_target("SluiceEvents.BackfillSchedule",
	                      json_pack("{s:s,s:s,s:s,s:i}", "Rule", "etl", "From",
	                                "2026-01-01T00:00:00Z", "To", "2026-01-06T00:00:00Z",
	                                "MaxConcurrency", 2));
	cr_assert_eq(json_integer_value(json_object_get(b, "Slots")), 5);
	cr_assert_eq(json_integer_value(json_object_get(b, "Fired")), 2);
	char id[64];
	snprintf(id, sizeof id, "%s", s(b, "BackfillId"));
	json_decref(b);
	/* several pacing rounds later the bound still holds */
	struct timespec ts = { 0, 600 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	json_t *d
	        = ok_target("SluiceEvents.DescribeBackfill", json_pack("{s:s}", "BackfillId", id));
	cr_assert_str_eq(s(d, "State"), "RUNNING");
	cr_assert_eq(json_integer_value(json_object_get(d, "Fired")), 2);
	cr_assert_eq(json_integer_value(json_object_get(d, "Outstanding")), 2);
	json_decref(d);
	json_t *e = events();
	cr_assert_eq(json_array_size(e), 2);
	json_decref(e);

	/* SIGKILL, restart with deliveries on: the backfill resumes without repeating a slot */
	h_kill(&srv);
	char dir[300];
	snprintf(dir, sizeof dir, "%s", srv.data);
	struct h_server old = srv;
	const char *extra2[] = { "--data", dir, "--virtual-time", "2026-03-01T00:00:00Z", NULL };
	cr_assert(h_start(&srv, extra2), "restart failed");
	d = backfill_done(id);
	cr_assert_str_eq(s(d, "State"), "COMPLETED");
	cr_assert_eq(json_integer_value(json_object_get(d, "Fired")), 5);
	json_decref(d);
	e = events();
	char got[512];
	times_of(e, RULE_ARN("etl"), got, sizeof got);
	cr_assert_str_eq(got,
	                 "2026-01-01T02:00:00Z 2026-01-02T02:00:00Z 2026-01-03T02:00:00Z "
	                 "2026-01-04T02:00:00Z 2026-01-05T02:00:00Z");
	json_decref(e);
	stop();
	h_cleanup(&old);
}

Test(schedules, all_policy_catches_up_more_than_one_slice)
{
	start_at("2026-06-01T00:00:00Z");
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s,s:s}", "Name", "minutely", "ScheduleExpression",
	                         "cron(* * * * ? *)", "MissedRunPolicy", "all")));
	advance(60);
	h_kill(&srv);
	/* ten hours down: 600 missed minutes, more than one firing slice (256) */
	char dir[300];
	snprintf(dir, sizeof dir, "%s", srv.data);
	struct h_server old = srv;
	const char *extra[] = { "--data", dir, "--virtual-time", "2026-06-01T10:01:30Z", NULL };
	cr_assert(h_start(&srv, extra), "restart failed");
	json_t *e = events_at_least(601);
	cr_assert_eq(json_array_size(e), 601);
	for (size_t i = 0; i < 601; i++) {
		char want[32];
		snprintf(want, sizeof want, "2026-06-01T%02zu:%02zu:00Z", (i + 1) / 60,
		         (i + 1) % 60);
		cr_assert_str_eq(s(event_at(e, i), "time"), want);
	}
	json_decref(e);
	stop();
	h_cleanup(&old);
}

Test(schedules, serve_options_rules_per_bus_and_bad_virtual_time)
{
	const char *extra[] = { "--rules-per-bus", "2", NULL };
	cr_assert(h_start(&srv, extra), "server did not start");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "a", "ScheduleExpression", "rate(5 minutes)")));
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "b", "ScheduleExpression", "rate(5 minutes)")));
	fails("PutRule", json_pack("{s:s,s:s}", "Name", "c", "ScheduleExpression", "rate(1 day)"),
	      "LimitExceededException", "maximum number allowed");
	/* an existing rule can still be updated */
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s}", "Name", "b", "ScheduleExpression", "rate(1 day)")));
	stop();
	const char *bin = getenv("SLUICE_BIN");
	cr_assert_not_null(bin);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "%s serve --virtual-time yesterday --data /nonexistent 2>&1",
	         bin);
	char *out = NULL;
	cr_assert_eq(h_run(cmd, &out), 2, "%s", out);
	cr_assert(strstr(out, "--virtual-time"), "%s", out);
	free(out);
}

/* Waits (bounded) until the execution of machine started by the schedule reaches status
 * (RUNNING, SUCCEEDED); returns its description. */
static json_t *
execution_in(const char *machine, const char *status)
{
	char arn[200];
	snprintf(arn, sizeof arn, "arn:aws:states:us-east-1:000000000000:stateMachine:%s", machine);
	json_t *d = NULL;
	for (int i = 0; i < 200; i++) {
		json_t *l = ok_target("AWSStepFunctions.ListExecutions",
		                      json_pack("{s:s}", "stateMachineArn", arn));
		json_t *x = json_array_get(json_object_get(l, "executions"), 0);
		json_decref(d);
		d = x ? ok_target("AWSStepFunctions.DescribeExecution",
		                  json_pack("{s:s}", "executionArn", s(x, "executionArn")))
		      : NULL;
		json_decref(l);
		if (d && strcmp(s(d, "status"), status) == 0)
			return d;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	cr_assert_fail("no execution of %s reached %s", machine, status);
	return NULL;
}

Test(schedules, nightly_schedule_starts_a_workflow_and_its_wait_follows_the_clock)
{
	start_at("2026-03-01T00:00:00Z");
	const char *def = "{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\","
	                  "\"Seconds\":600,\"Next\":\"D\"},\"D\":{\"Type\":\"Pass\","
	                  "\"End\":true}}}";
	json_decref(ok_target("AWSStepFunctions.CreateStateMachine",
	                      json_pack("{s:s,s:s,s:s}", "name", "etl", "definition", def,
	                                "roleArn", "arn:aws:iam::000000000000:role/etl")));
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s}", "Name", "nightly", "ScheduleExpression",
	                         "cron(0 2 * * ? *)")));
	json_decref(ok("PutTargets",
	               json_pack("{s:s,s:[{s:s,s:s}]}", "Rule", "nightly", "Targets", "Id", "wf",
	                         "Arn", "arn:aws:states:us-east-1:000000000000:stateMachine:etl")));
	advance_to("2026-03-01T02:00:00Z");
	json_t *d = execution_in("etl", "RUNNING");
	json_t *in = json_loads(s(d, "input"), 0, NULL);
	cr_assert_not_null(in);
	cr_assert_str_eq(s(in, "time"), "2026-03-01T02:00:00Z");
	cr_assert_str_eq(s(in, "detail-type"), "Scheduled Event");
	json_decref(in);
	json_decref(d);
	/* the Wait state's timer is due once the clock has moved 10 minutes */
	advance(600);
	d = execution_in("etl", "SUCCEEDED");
	json_decref(d);
	stop();
}
