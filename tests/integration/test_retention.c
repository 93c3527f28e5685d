/*
 * test_retention.c - the bus logs' retention (`sluice serve --event-retention`) through the
 * real server on the fake clock (`--virtual-time`, Sluice.AdvanceClock): events older than
 * the retention leave the log unless an archive holds them or a pending delivery refers to
 * them; archived ones are still replayed; a pending delivery is still delivered after the
 * prune; the newest event of a bus stays (sequence numbers are not reused).
 *
 * Waits are bounded polls of /metrics, ListEvents or DescribeReplay (hang guards), never
 * timings.
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

#define ACCT    "us-east-1:000000000000"
#define DEF_ARN "arn:aws:events:" ACCT ":event-bus/default"
#define LOG_ARN "arn:aws:logs:us-east-1:000000000000:log-group:retention-test"
/* 2026-03-01T00:00:00Z */
#define T0      1772323200.0
#define WAIT_MS 20000

static void
reap(void)
{
	h_cleanup(&srv);
}

TestSuite(retention, .fini = reap);

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* --virtual-time WHEN --event-retention 1h [--delivery-paused] [--data DIR] */
static void
start_with(const char *when, const char *dir, bool paused)
{
	const char *args[10];
	size_t n = 0;
	args[n++] = "--virtual-time";
	args[n++] = when;
	args[n++] = "--event-retention";
	args[n++] = "1h";
	if (paused)
		args[n++] = "--delivery-paused";
	if (dir) {
		args[n++] = "--data";
		args[n++] = dir;
	}
	args[n] = NULL;
	cr_assert(h_start(&srv, args), "server did not start");
}

static void
advance(double seconds)
{
	json_decref(ok_target("Sluice.AdvanceClock", json_pack("{s:f}", "Seconds", seconds)));
}

static void
put(const char *source, int n)
{
	char detail[64];
	snprintf(detail, sizeof detail, "{\"n\":%d}", n);
	json_t *a = ok("PutEvents",
	               json_pack("{s:[{s:s,s:s,s:s}]}", "Entries", "Source", source, "DetailType",
	                         "t", "Detail", detail));
	cr_assert_eq(json_integer_value(json_object_get(a, "FailedEntryCount")), 0);
	json_decref(a);
}

/* The default bus's log as "source:n[:replay]" words in log order, e.g. "archived:10 ...". */
static void
log_words(char *out, size_t cap)
{
	json_t *l = ok_target("SluiceEvents.ListEvents", json_pack("{s:i}", "Limit", 1000));
	json_t *events = json_object_get(l, "Events"), *e;
	size_t i;
	out[0] = '\0';
	json_array_foreach(events, i, e)
	{
		json_t *ev = json_object_get(e, "Event");
		ev = json_is_string(ev) ? json_loads(json_string_value(ev), 0, NULL)
		                        : json_incref(ev);
		cr_assert_not_null(ev);
		const char *rn = s(ev, "replay-name");
		snprintf(out + strlen(out), cap - strlen(out), "%s%s:%lld%s%s", i ? " " : "",
		         s(ev, "source"),
		         (long long)json_integer_value(
		                 json_object_get(json_object_get(ev, "detail"), "n")),
		         rn ? ":" : "", rn ? rn : "");
		json_decref(ev);
	}
	json_decref(l);
}

Test(retention, old_events_go_archived_and_pending_ones_stay)
{
	start_with("2026-03-01T00:00:00Z", NULL, true);
	json_decref(ok("CreateArchive",
	               json_pack("{s:s,s:s,s:s}", "ArchiveName", "keep", "EventSourceArn", DEF_ARN,
	                         "EventPattern", "{\"source\":[\"archived\"]}")));
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s}", "Name", "hook", "EventPattern",
	                         "{\"source\":[\"hooked\"]}")));
	json_decref(ok("PutTargets",
	               json_pack("{s:s,s:[{s:s,s:s}]}", "Rule", "hook", "Targets", "Id", "log",
	                         "Arn", LOG_ARN)));
	/* at t0: plain ones (nothing needs them), archived ones, one with a delivery that
	 * waits (deliveries are paused) */
	put("plain", 1);
	put("archived", 10);
	put("plain", 2);
	put("hooked", 20);
	put("archived", 11);
	put("plain", 3);
	char got[2048];
	log_words(got, sizeof got);
	cr_assert_str_eq(got, "plain:1 archived:10 plain:2 hooked:20 archived:11 plain:3");

	/* within the retention nothing goes */
	advance(1800);
	put("plain", 4);
	wait_metrics_sample("sluice_events_pruned_total", 0);

	/* two hours on: what nothing needs is gone, up to the event a pending delivery refers
	 * to (it holds back its bus's prune); the archived one before it stays */
	advance(5400);
	put("plain", 5);
	wait_metrics_sample("sluice_events_pruned_total", 2);
	log_words(got, sizeof got);
	cr_assert_str_eq(got, "archived:10 hooked:20 archived:11 plain:3 plain:4 plain:5");
	cr_assert_geq(metrics_sample("sluice_events_kept_total"), 1);

	/* the archived ones are still replayed */
	json_decref(
	        ok("StartReplay",
	           json_pack("{s:s,s:s,s:f,s:f,s:{s:s}}", "ReplayName", "again", "EventSourceArn",
	                     "arn:aws:events:" ACCT ":archive/keep", "EventStartTime", T0 - 60,
	                     "EventEndTime", T0 + 60, "Destination", "Arn", DEF_ARN)));
	const char *state = NULL;
	for (int waited = 0; waited < WAIT_MS; waited += 25) {
		json_t *d = ok("DescribeReplay", json_pack("{s:s}", "ReplayName", "again"));
		state = strcmp(s(d, "State"), "COMPLETED") == 0 ? "COMPLETED" : NULL;
		json_decref(d);
		if (state)
			break;
		nap_ms(25);
	}
	cr_assert_not_null(state, "the replay did not complete");
	log_words(got, sizeof got);
	cr_assert_str_eq(got,
	                 "archived:10 hooked:20 archived:11 plain:3 plain:4 plain:5 "
	                 "archived:10:again archived:11:again");

	/* the waiting delivery is delivered once deliveries run again */
	char dir[300];
	snprintf(dir, sizeof dir, "%s", srv.data);
	struct h_server first = srv;
	cr_assert_eq(h_stop(&srv), 0);
	start_with("2026-03-01T02:01:00Z", dir, false);
	bool delivered = false;
	for (int waited = 0; waited < WAIT_MS && !delivered; waited += 25) {
		char *log = h_log(&srv);
		delivered = log && strstr(log, "retention-test") && strstr(log, "\"n\":20");
		free(log);
		if (!delivered)
			nap_ms(25);
	}
	cr_assert(delivered, "the pending delivery was not delivered");
	/* delivered: its event and the ones it held back go (this process counts anew) */
	wait_metrics_sample("sluice_events_pruned_total", 3);
	log_words(got, sizeof got);
	cr_assert_str_eq(got,
	                 "archived:10 archived:11 plain:5 archived:10:again archived:11:again");
	stop();
	h_cleanup(&first);
}

Test(retention, bad_durations_are_refused)
{
	static const char *const bad[] = { "5x", "30s", "24", "-1h", "h", "3651d", "" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char cmd[512], *out = NULL;
		snprintf(cmd, sizeof cmd,
		         "%s serve --event-retention '%s' --data /nonexistent/x 2>&1",
		         getenv("SLUICE_BIN"), bad[i]);
		int rc = h_run(cmd, &out);
		cr_assert_neq(rc, 0, "'%s' accepted", bad[i]);
		cr_assert(out && strstr(out, "--event-retention: expected 0 or a duration"),
		          "%s: %s", bad[i], out);
		free(out);
	}
}
