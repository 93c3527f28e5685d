/*
 * Archives and replays through the real server on the fake clock (`sluice serve
 * --virtual-time`, Sluice.AdvanceClock): an archive indexes only the events of its bus that
 * match its pattern, a replay re-publishes a time window of them to the bus's rules (only
 * FilterArns' when given) with "replay-name" added, AWS's errors, an archive surviving
 * SIGKILL, and the retention prune.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define AWS_CALLS_SERVICE "AWSEvents"
#include "tests/integration/aws_calls.h"
#include "tests/integration/harness.h"

#define ACCT     "us-east-1:000000000000"
#define BUS_ARN  "arn:aws:events:" ACCT ":event-bus/orders"
#define DEF_ARN  "arn:aws:events:" ACCT ":event-bus/default"
#define ARC_ARN  "arn:aws:events:" ACCT ":archive/"
#define SM_ARN   "arn:aws:states:" ACCT ":stateMachine:"
#define RULE_ARN "arn:aws:events:" ACCT ":rule/orders/"
/* 2026-03-01T00:00:00Z */
#define T0 1772323200.0

static void
start_at(const char *when, const char *dir)
{
	const char *extra[] = { "--virtual-time", when, dir ? "--data" : NULL, dir, NULL };
	cr_assert(h_start(&srv, extra), "server did not start");
}

static void
advance(double seconds)
{
	json_decref(ok_target("Sluice.AdvanceClock", json_pack("{s:f}", "Seconds", seconds)));
}

static void
pause_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000 * 1000 };
	nanosleep(&ts, NULL);
}

/* PutEvents of one event on bus with detail {"n": n}; all entries must be accepted. */
static void
put(const char *bus, const char *type, int n)
{
	char detail[64];
	snprintf(detail, sizeof detail, "{\"n\":%d}", n);
	json_t *a = ok("PutEvents",
	               json_pack("{s:[{s:s,s:s,s:s,s:s}]}", "Entries", "EventBusName", bus,
	                         "Source", "shop", "DetailType", type, "Detail", detail));
	cr_assert_eq(json_integer_value(json_object_get(a, "FailedEntryCount")), 0);
	json_decref(a);
}

static void
machine(const char *name)
{
	json_decref(ok_target("AWSStepFunctions.CreateStateMachine",
	                      json_pack("{s:s,s:s,s:s}", "name", name, "definition",
	                                "{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\","
	                                "\"End\":true}}}",
	                                "roleArn", "arn:aws:iam::000000000000:role/r")));
}

static void
rule_to(const char *rule, const char *sm)
{
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s,s:s}", "Name", rule, "EventBusName", "orders",
	                         "EventPattern", "{\"source\":[\"shop\"]}")));
	char arn[200];
	snprintf(arn, sizeof arn, SM_ARN "%s", sm);
	json_decref(ok("PutTargets",
	               json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "Rule", rule, "EventBusName", "orders",
	                         "Targets", "Id", "t", "Arn", arn)));
}

static json_int_t
archive_count(const char *name)
{
	json_t *d = ok("DescribeArchive", json_pack("{s:s}", "ArchiveName", name));
	json_int_t n = json_integer_value(json_object_get(d, "EventCount"));
	json_decref(d);
	return n;
}

/* Waits (bounded) for the replay to reach state; returns its description. */
static json_t *
replay_in(const char *name, const char *state)
{
	for (int i = 0; i < 400; i++) {
		json_t *d = ok("DescribeReplay", json_pack("{s:s}", "ReplayName", name));
		if (strcmp(s(d, "State"), state) == 0)
			return d;
		json_decref(d);
		pause_ms(25);
	}
	cr_assert_fail("replay %s never reached %s", name, state);
	return NULL;
}

/* The executions of sm: their inputs' detail.n, sorted, as text "1 2 3"; every input must
 * carry replay-name want. */
static void
replayed_ns(const char *sm, const char *want, char *out, size_t cap)
{
	char arn[200];
	snprintf(arn, sizeof arn, SM_ARN "%s", sm);
	json_t *l = ok_target("AWSStepFunctions.ListExecutions",
	                      json_pack("{s:s}", "stateMachineArn", arn));
	json_t *ex = json_object_get(l, "executions");
	int ns[64];
	size_t n = 0, i;
	json_t *x;
	json_array_foreach(ex, i, x)
	{
		json_t *d = ok_target("AWSStepFunctions.DescribeExecution",
		                      json_pack("{s:s}", "executionArn", s(x, "executionArn")));
		json_t *in = json_loads(s(d, "input"), 0, NULL);
		cr_assert_not_null(in);
		if (want)
			cr_assert_str_eq(s(in, "replay-name"), want);
		cr_assert(n < 64);
		ns[n++] = (int)json_integer_value(
		        json_object_get(json_object_get(in, "detail"), "n"));
		json_decref(in);
		json_decref(d);
	}
	json_decref(l);
	for (size_t a = 1; a < n; a++)
		for (size_t b = a; b > 0 && ns[b - 1] > ns[b]; b--) {
			int t = ns[b];
			ns[b] = ns[b - 1];
			ns[b - 1] = t;
		}
	out[0] = '\0';
	for (size_t k = 0; k < n; k++)
		snprintf(out + strlen(out), cap - strlen(out), "%s%d", k ? " " : "", ns[k]);
}

static json_t *
replay_req(const char *name, const char *archive, double from, double to, const char *dest)
{
	char src[200];
	snprintf(src, sizeof src, ARC_ARN "%s", archive);
	return json_pack("{s:s,s:s,s:f,s:f,s:{s:s}}", "ReplayName", name, "EventSourceArn", src,
	                 "EventStartTime", from, "EventEndTime", to, "Destination", "Arn", dest);
}

Test(archives, archive_indexes_matching_events_and_replay_sends_a_window)
{
	start_at("2026-03-01T00:00:00Z", NULL);
	json_decref(ok("CreateEventBus", json_pack("{s:s}", "Name", "orders")));
	json_t *c = ok("CreateArchive",
	               json_pack("{s:s,s:s,s:s}", "ArchiveName", "arc", "EventSourceArn", BUS_ARN,
	                         "EventPattern", "{\"detail-type\":[\"order\"]}"));
	cr_assert_str_eq(s(c, "ArchiveArn"), ARC_ARN "arc");
	cr_assert_str_eq(s(c, "State"), "ENABLED");
	json_decref(c);
	/* t0: 1 (archived), 100 (not); t0+60: 2, 3, 101; t0+120: 4 */
	put("orders", "order", 1);
	put("orders", "other", 100);
	put("default", "order", 200); /* another bus */
	advance(60);
	put("orders", "order", 2);
	put("orders", "order", 3);
	put("orders", "other", 101);
	advance(60);
	put("orders", "order", 4);
	cr_assert_eq(archive_count("arc"), 4);
	json_t *d = ok("DescribeArchive", json_pack("{s:s}", "ArchiveName", "arc"));
	cr_assert_gt(json_integer_value(json_object_get(d, "SizeBytes")), 400);
	cr_assert_str_eq(s(d, "EventSourceArn"), BUS_ARN);
	cr_assert_str_eq(s(d, "EventPattern"), "{\"detail-type\":[\"order\"]}");
	cr_assert_eq(json_integer_value(json_object_get(d, "RetentionDays")), 0);
	json_decref(d);

	/* rules made after the events: only replays reach them */
	machine("m1");
	machine("m2");
	rule_to("r1", "m1");
	rule_to("r2", "m2");
	json_t *st = ok("StartReplay", replay_req("w", "arc", T0 + 30, T0 + 90, BUS_ARN));
	cr_assert_str_eq(s(st, "State"), "STARTING");
	cr_assert_str_eq(s(st, "ReplayArn"), "arn:aws:events:" ACCT ":replay/w");
	json_decref(st);
	d = replay_in("w", "COMPLETED");
	cr_assert_not_null(json_object_get(d, "EventLastReplayedTime"));
	cr_assert_not_null(json_object_get(d, "ReplayEndTime"));
	cr_assert_str_eq(s(json_object_get(d, "Destination"), "Arn"), BUS_ARN);
	json_decref(d);
	char got[256];
	replayed_ns("m1", "w", got, sizeof got);
	cr_assert_str_eq(got, "2 3");
	replayed_ns("m2", "w", got, sizeof got);
	cr_assert_str_eq(got, "2 3");

	/* FilterArns: only r1's targets, the whole archive */
	json_t *req = replay_req("all", "arc", T0 - 10, T0 + 121, BUS_ARN);
	json_object_set_new(json_object_get(req, "Destination"), "FilterArns",
	                    json_pack("[s]", RULE_ARN "r1"));
	json_decref(ok("StartReplay", req));
	d = replay_in("all", "COMPLETED");
	cr_assert_str_eq(
	        json_string_value(json_array_get(
	                json_object_get(json_object_get(d, "Destination"), "FilterArns"), 0)),
	        RULE_ARN "r1");
	json_decref(d);
	replayed_ns("m1", NULL, got, sizeof got);
	cr_assert_str_eq(got, "1 2 2 3 3 4");
	replayed_ns("m2", "w", got, sizeof got);
	cr_assert_str_eq(got, "2 3");
	/* replayed events are not archived again */
	cr_assert_eq(archive_count("arc"), 4);

	json_t *l = ok("ListReplays",
	               json_pack("{s:s,s:s}", "NamePrefix", "a", "State", "COMPLETED"));
	cr_assert_eq(json_array_size(json_object_get(l, "Replays")), 1);
	cr_assert_str_eq(s(json_array_get(json_object_get(l, "Replays"), 0), "ReplayName"), "all");
	json_decref(l);
	l = ok("ListArchives", json_pack("{s:s}", "EventSourceArn", BUS_ARN));
	cr_assert_eq(json_array_size(json_object_get(l, "Archives")), 1);
	cr_assert_eq(json_integer_value(json_object_get(
	                     json_array_get(json_object_get(l, "Archives"), 0), "EventCount")),
	             4);
	json_decref(l);

	/* AWS's errors */
	fails("StartReplay", replay_req("w", "arc", T0, T0 + 10, BUS_ARN),
	      "ResourceAlreadyExistsException", "Replay w already exists.");
	fails("StartReplay", replay_req("x", "arc", T0 + 10, T0, BUS_ARN), "ValidationException",
	      "Parameter EventEndTime is not valid. Reason: EventStartTime must be before "
	      "EventEndTime.");
	fails("StartReplay", replay_req("x", "arc", T0 + 3600, T0 + 7200, BUS_ARN),
	      "ValidationException", "cannot be in the future");
	fails("StartReplay", replay_req("x", "arc", T0, T0 + 10, DEF_ARN), "ValidationException",
	      "Cross event bus replay is not permitted.");
	fails("StartReplay",
	      replay_req("x", "arc", T0, T0 + 10, "arn:aws:events:" ACCT ":event-bus/gone"),
	      "ResourceNotFoundException", "Event bus gone does not exist.");
	fails("StartReplay", replay_req("x", "nope", T0, T0 + 10, BUS_ARN),
	      "ResourceNotFoundException", "Archive nope does not exist.");
	fails("CancelReplay", json_pack("{s:s}", "ReplayName", "w"), "IllegalStatusException",
	      "not in a state that can be cancelled");
	fails("DescribeReplay", json_pack("{s:s}", "ReplayName", "x"), "ResourceNotFoundException",
	      "Replay x does not exist.");
	stop();
}

Test(archives, archive_operations_and_their_errors)
{
	start_at("2026-03-01T00:00:00Z", NULL);
	fails("CreateArchive",
	      json_pack("{s:s,s:s}", "ArchiveName", "a", "EventSourceArn", BUS_ARN),
	      "ResourceNotFoundException", "Event bus orders does not exist.");
	json_decref(ok("CreateArchive",
	               json_pack("{s:s,s:s,s:s,s:i}", "ArchiveName", "a", "EventSourceArn", DEF_ARN,
	                         "Description", "all of it", "RetentionDays", 7)));
	fails("CreateArchive",
	      json_pack("{s:s,s:s}", "ArchiveName", "a", "EventSourceArn", DEF_ARN),
	      "ResourceAlreadyExistsException", "Archive a already exists.");
	fails("CreateArchive",
	      json_pack("{s:s,s:s,s:s}", "ArchiveName", "b", "EventSourceArn", DEF_ARN,
	                "EventPattern", "{\"source\":\"x\"}"),
	      "InvalidEventPatternException", "");
	fails("CreateArchive",
	      json_pack("{s:s,s:s}", "ArchiveName", "bad name", "EventSourceArn", DEF_ARN),
	      "ValidationException", "archiveName");
	fails("CreateArchive",
	      json_pack("{s:s,s:s,s:i}", "ArchiveName", "b", "EventSourceArn", DEF_ARN,
	                "RetentionDays", -1),
	      "ValidationException", "retentionDays");
	put("default", "x", 1);
	cr_assert_eq(archive_count("a"), 1);
	/* a pattern from UpdateArchive applies to the next events */
	json_decref(ok("UpdateArchive",
	               json_pack("{s:s,s:s,s:i}", "ArchiveName", "a", "EventPattern",
	                         "{\"detail-type\":[\"y\"]}", "RetentionDays", 0)));
	put("default", "x", 2);
	put("default", "y", 3);
	json_t *d = ok("DescribeArchive", json_pack("{s:s}", "ArchiveName", "a"));
	cr_assert_eq(json_integer_value(json_object_get(d, "EventCount")), 2);
	cr_assert_eq(json_integer_value(json_object_get(d, "RetentionDays")), 0);
	cr_assert_str_eq(s(d, "Description"), "all of it");
	json_decref(d);
	json_decref(ok("DeleteArchive", json_pack("{s:s}", "ArchiveName", "a")));
	fails("DescribeArchive", json_pack("{s:s}", "ArchiveName", "a"),
	      "ResourceNotFoundException", "Archive a does not exist.");
	put("default", "y", 4); /* no archive left to index it */
	json_t *l = ok("ListArchives", json_pack("{}"));
	cr_assert_eq(json_array_size(json_object_get(l, "Archives")), 0);
	json_decref(l);
	stop();
}

Test(archives, archive_survives_sigkill_and_retention_prunes)
{
	start_at("2026-03-01T00:00:00Z", NULL);
	json_decref(ok("CreateArchive",
	               json_pack("{s:s,s:s}", "ArchiveName", "keep", "EventSourceArn", DEF_ARN)));
	json_decref(ok("CreateArchive",
	               json_pack("{s:s,s:s,s:i}", "ArchiveName", "short", "EventSourceArn", DEF_ARN,
	                         "RetentionDays", 1)));
	for (int i = 0; i < 3; i++)
		put("default", "x", i);
	h_kill(&srv);

	char dir[300];
	snprintf(dir, sizeof dir, "%s", srv.data);
	struct h_server first = srv;
	start_at("2026-03-01T12:00:00Z", dir);
	cr_assert_eq(archive_count("keep"), 3);
	cr_assert_eq(archive_count("short"), 3);
	put("default", "x", 3); /* the archives' machines were rebuilt at start */
	cr_assert_eq(archive_count("short"), 4);
	h_kill(&srv);

	/* two days on: the prune at start drops what is older than a day */
	struct h_server second = srv;
	start_at("2026-03-03T06:00:00Z", dir);
	json_int_t n = -1;
	for (int i = 0; i < 400 && n != 0; i++) {
		n = archive_count("short");
		if (n)
			pause_ms(25);
	}
	cr_assert_eq(n, 0);
	cr_assert_eq(archive_count("keep"), 4);
	stop();
	h_cleanup(&second);
	h_cleanup(&first);
}

/* `sluice archives|replays ...` ($SLUICE_BIN) against the server; returns its exit status and
 * output (new string in *out). */
static int
sluice(const char *args, char **out)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "%s %s --endpoint http://127.0.0.1:%d 2>&1", getenv("SLUICE_BIN"),
	         args, srv.http_port);
	return h_run(cmd, out);
}

Test(archives, sluice_archives_and_replays_commands)
{
	start_at("2026-03-01T00:00:00Z", NULL);
	json_decref(ok("CreateEventBus", json_pack("{s:s}", "Name", "orders")));
	char *out = NULL;
	cr_assert_eq(sluice("archives create a --bus orders --pattern "
	                    "'{\"detail-type\":[\"order\"]}' --retention-days 3",
	                    &out),
	             0, "%s", out);
	cr_assert(strstr(out, ARC_ARN "a"), "%s", out);
	free(out);
	put("orders", "order", 1);
	put("orders", "other", 2);
	advance(60);
	cr_assert_eq(sluice("archives list --bus orders", &out), 0, "%s", out);
	cr_assert(strstr(out, "a ") && strstr(out, " 1 "), "%s", out);
	free(out);
	cr_assert_eq(sluice("archives describe a", &out), 0, "%s", out);
	cr_assert(strstr(out, "\"EventCount\": 1"), "%s", out);
	free(out);
	machine("m1");
	rule_to("r1", "m1");
	cr_assert_eq(sluice("replays start rp --archive a --from 2026-03-01T00:00:00Z "
	                    "--to 2026-03-01T00:00:30Z --rule r1 --wait",
	                    &out),
	             0, "%s", out);
	cr_assert(strstr(out, "COMPLETED"), "%s", out);
	free(out);
	char got[64];
	replayed_ns("m1", "rp", got, sizeof got);
	cr_assert_str_eq(got, "1");
	cr_assert_eq(sluice("replays list --state COMPLETED", &out), 0, "%s", out);
	cr_assert(strstr(out, "rp ") && strstr(out, "2026-03-01T00:00:00Z"), "%s", out);
	free(out);
	cr_assert_eq(sluice("replays describe rp", &out), 0, "%s", out);
	cr_assert(strstr(out, RULE_ARN "r1"), "%s", out);
	free(out);
	cr_assert_eq(sluice("replays cancel rp", &out), 2, "%s", out);
	cr_assert(strstr(out, "IllegalStatusException"), "%s", out);
	free(out);
	cr_assert_eq(sluice("archives delete a", &out), 0, "%s", out);
	free(out);
	cr_assert_eq(sluice("archives describe a", &out), 2, "%s", out);
	cr_assert(strstr(out, "Archive a does not exist."), "%s", out);
	free(out);
	stop();
}

Test(archives, aws_cli)
{
	if (h_run("command -v aws >/dev/null 2>&1", NULL) != 0)
		cr_skip_test("the aws CLI is not installed");
	start_at("2026-03-01T00:00:00Z", NULL);
	char cmd[2048], *out = NULL;
	const char *env
	        = "AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 "
	          "AWS_MAX_ATTEMPTS=1 AWS_PAGER= aws --output json";
#define AWS(args)                                                                                  \
	snprintf(cmd, sizeof cmd, "%s --endpoint-url http://127.0.0.1:%d events %s 2>&1", env,     \
	         srv.http_port, args)
	AWS("create-archive --archive-name c --event-source-arn " DEF_ARN
	    " --event-pattern '{\"source\":[\"shop\"]}' --retention-days 2");
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, ARC_ARN "c"), "%s", out);
	free(out);
	put("default", "x", 1);
	AWS("describe-archive --archive-name c");
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, "\"EventCount\": 1"), "%s", out);
	free(out);
	AWS("list-archives --name-prefix c");
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, "\"ArchiveName\": \"c\""), "%s", out);
	free(out);
	advance(10);
	AWS("start-replay --replay-name r --event-source-arn " ARC_ARN
	    "c --event-start-time 2026-03-01T00:00:00Z --event-end-time 2026-03-01T00:00:05Z "
	    "--destination Arn=" DEF_ARN);
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, "STARTING"), "%s", out);
	free(out);
	json_decref(replay_in("r", "COMPLETED"));
	AWS("describe-replay --replay-name r");
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, "COMPLETED") && strstr(out, "EventLastReplayedTime"), "%s", out);
	free(out);
	AWS("list-replays --state COMPLETED");
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, "\"ReplayName\": \"r\""), "%s", out);
	free(out);
	AWS("start-replay --replay-name r2 --event-source-arn " ARC_ARN
	    "c --event-start-time 2026-03-01T00:00:05Z --event-end-time 2026-03-01T00:00:00Z "
	    "--destination Arn=" DEF_ARN);
	cr_assert_neq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, "ValidationException"), "%s", out);
	free(out);
	AWS("update-archive --archive-name c --retention-days 5");
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	free(out);
	AWS("delete-archive --archive-name c");
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	free(out);
#undef AWS
	stop();
}

/* The replayed events of replay in the bus's log: their count; each event id must appear
 * once. */
static size_t
replayed_in_log(const char *bus, const char *replay)
{
	json_t *seen = json_object(), *e;
	size_t i, n = 0;
	json_int_t after = 0;
	for (;;) {
		json_t *l = ok_target("SluiceEvents.ListEvents",
		                      json_pack("{s:s,s:i,s:I}", "EventBusName", bus, "Limit", 1000,
		                                "After", after));
		json_t *events = json_object_get(l, "Events");
		if (json_array_size(events) == 0) {
			json_decref(l);
			break;
		}
		after = json_integer_value(json_object_get(l, "Last"));
		json_array_foreach(events, i, e)
		{
			json_t *ev = json_object_get(e, "Event");
			if (json_is_string(ev))
				ev = json_loads(json_string_value(ev), 0, NULL);
			else
				json_incref(ev);
			const char *rn = s(ev, "replay-name");
			if (rn && strcmp(rn, replay) == 0) {
				cr_assert_null(json_object_get(seen, s(ev, "id")),
				               "%s replayed twice", s(ev, "id"));
				json_object_set_new(seen, s(ev, "id"), json_true());
				n++;
			}
			json_decref(ev);
		}
		json_decref(l);
	}
	json_decref(seen);
	return n;
}

Test(archives, replay_in_many_slices_and_cancel)
{
	start_at("2026-03-01T00:00:00Z", NULL);
	json_decref(ok("CreateEventBus", json_pack("{s:s}", "Name", "orders")));
	json_decref(ok("CreateArchive",
	               json_pack("{s:s,s:s}", "ArchiveName", "all", "EventSourceArn", BUS_ARN)));
	/* 250 events with the same archive time: the cursor must step by seq */
	for (int k = 0; k < 25; k++) {
		json_t *entries = json_array();
		for (int i = 0; i < 10; i++)
			json_array_append_new(entries,
			                      json_pack("{s:s,s:s,s:s,s:s}", "EventBusName",
			                                "orders", "Source", "shop", "DetailType",
			                                "order", "Detail", "{}"));
		json_t *a = ok("PutEvents", json_pack("{s:o}", "Entries", entries));
		cr_assert_eq(json_integer_value(json_object_get(a, "FailedEntryCount")), 0);
		json_decref(a);
	}
	cr_assert_eq(archive_count("all"), 250);
	advance(1);
	json_decref(ok("StartReplay", replay_req("whole", "all", T0, T0 + 1, BUS_ARN)));
	json_decref(replay_in("whole", "COMPLETED"));
	cr_assert_eq(replayed_in_log("orders", "whole"), 250);

	/* a cancel races the job: either it lands (CANCELLED, a prefix replayed) or the replay
	 * had already ended (COMPLETED, all of it) */
	json_decref(ok("StartReplay", replay_req("c", "all", T0, T0 + 1, BUS_ARN)));
	int st;
	json_t *ans = call("CancelReplay", json_pack("{s:s}", "ReplayName", "c"), &st);
	json_t *d = NULL;
	if (st == 200) {
		cr_assert_str_eq(s(ans, "State"), "CANCELLING");
		d = replay_in("c", "CANCELLED");
		cr_assert_leq(replayed_in_log("orders", "c"), 250);
	} else {
		cr_assert_str_eq(s(ans, "__type"), "IllegalStatusException");
		d = replay_in("c", "COMPLETED");
		cr_assert_eq(replayed_in_log("orders", "c"), 250);
	}
	cr_assert_not_null(json_object_get(d, "ReplayEndTime"));
	json_decref(d);
	json_decref(ans);
	stop();
}

Test(archives, boto3)
{
	if (h_run("python3 -c 'import boto3' >/dev/null 2>&1", NULL) != 0)
		cr_skip_test("boto3 is not installed");
	start_at("2026-03-01T00:00:00Z", NULL);
	char cmd[4096], *out = NULL;
	snprintf(cmd, sizeof cmd,
	         "AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x python3 -c '\n"
	         "import boto3, datetime, json, time\n"
	         "c = boto3.client(\"events\", region_name=\"us-east-1\", "
	         "endpoint_url=\"http://127.0.0.1:%d\")\n"
	         "bus = c.describe_event_bus()[\"Arn\"]\n"
	         "a = c.create_archive(ArchiveName=\"b3\", EventSourceArn=bus, "
	         "EventPattern=json.dumps({\"source\": [\"app\"]}))\n"
	         "c.put_events(Entries=[{\"Source\": \"app\", \"DetailType\": \"d\", "
	         "\"Detail\": \"{}\"}, {\"Source\": \"other\", \"DetailType\": \"d\", "
	         "\"Detail\": \"{}\"}])\n"
	         "d = c.describe_archive(ArchiveName=\"b3\")\n"
	         "assert d[\"EventCount\"] == 1 and d[\"State\"] == \"ENABLED\", d\n"
	         "assert [x[\"ArchiveName\"] for x in c.list_archives()[\"Archives\"]] == "
	         "[\"b3\"]\n"
	         "t0 = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)\n"
	         "t1 = t0 + datetime.timedelta(seconds=1)\n"
	         "r = c.start_replay(ReplayName=\"r\", EventSourceArn=a[\"ArchiveArn\"], "
	         "EventStartTime=t0, EventEndTime=t1, Destination={\"Arn\": bus})\n"
	         "assert r[\"State\"] == \"STARTING\", r\n"
	         "for i in range(400):\n"
	         "    d = c.describe_replay(ReplayName=\"r\")\n"
	         "    if d[\"State\"] == \"COMPLETED\":\n"
	         "        break\n"
	         "    time.sleep(0.025)\n"
	         "assert d[\"State\"] == \"COMPLETED\", d\n"
	         "assert d[\"EventStartTime\"] == t0, d\n"
	         "assert [x[\"ReplayName\"] for x in c.list_replays()[\"Replays\"]] == [\"r\"]\n"
	         "try:\n"
	         "    c.start_replay(ReplayName=\"r\", EventSourceArn=a[\"ArchiveArn\"], "
	         "EventStartTime=t0, EventEndTime=t1, Destination={\"Arn\": bus})\n"
	         "    raise SystemExit(\"no error\")\n"
	         "except c.exceptions.ResourceAlreadyExistsException as e:\n"
	         "    pass\n"
	         "try:\n"
	         "    c.describe_archive(ArchiveName=\"zz\")\n"
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

/* A replay cut by SIGKILL resumes at start from its durable cursor: every event replayed
 * exactly once, wherever the kill landed. */
Test(archives, replay_resumes_after_sigkill_without_repeats)
{
	start_at("2026-03-01T00:00:00Z", NULL);
	json_decref(ok("CreateEventBus", json_pack("{s:s}", "Name", "orders")));
	json_decref(ok("CreateArchive",
	               json_pack("{s:s,s:s}", "ArchiveName", "all", "EventSourceArn", BUS_ARN)));
	for (int k = 0; k < 120; k++) {
		json_t *entries = json_array();
		for (int i = 0; i < 10; i++)
			json_array_append_new(entries,
			                      json_pack("{s:s,s:s,s:s,s:s}", "EventBusName",
			                                "orders", "Source", "shop", "DetailType",
			                                "order", "Detail", "{}"));
		json_decref(ok("PutEvents", json_pack("{s:o}", "Entries", entries)));
	}
	cr_assert_eq(archive_count("all"), 1200);
	json_decref(ok("StartReplay", replay_req("k", "all", T0, T0 + 1, BUS_ARN)));
	h_kill(&srv);
	char dir[300];
	snprintf(dir, sizeof dir, "%s", srv.data);
	struct h_server first = srv;
	start_at("2026-03-01T00:00:10Z", dir);
	json_decref(replay_in("k", "COMPLETED"));
	cr_assert_eq(replayed_in_log("orders", "k"), 1200);
	stop();
	h_cleanup(&first);
}

/* AWS replays by the time in the event: an event sent with an earlier Time is in that
 * window, not in the window of its arrival. */
Test(archives, replay_window_is_on_the_event_time)
{
	start_at("2026-03-01T00:00:00Z", NULL);
	json_decref(ok("CreateEventBus", json_pack("{s:s}", "Name", "orders")));
	json_decref(ok("CreateArchive",
	               json_pack("{s:s,s:s}", "ArchiveName", "t", "EventSourceArn", BUS_ARN)));
	json_decref(ok("PutEvents",
	               json_pack("{s:[{s:s,s:s,s:s,s:s,s:f}]}", "Entries", "EventBusName", "orders",
	                         "Source", "shop", "DetailType", "order", "Detail", "{\"n\":7}",
	                         "Time", T0 - 28 * 86400)));
	put("orders", "order", 8);
	machine("m1");
	rule_to("r1", "m1");
	/* 2026-01-31T23:00 .. 2026-02-01T01:00 */
	json_decref(ok(
	        "StartReplay",
	        replay_req("feb", "t", T0 - 28 * 86400 - 3600, T0 - 28 * 86400 + 3600, BUS_ARN)));
	json_t *d = replay_in("feb", "COMPLETED");
	json_decref(d);
	char got[64];
	replayed_ns("m1", "feb", got, sizeof got);
	cr_assert_str_eq(got, "7");
	stop();
}
