/*
 * The engine under SIGKILL: a real `sluice serve` runs many executions with Wait states,
 * Map fan-outs and a retried failing Map, and is killed at seeded random moments and
 * restarted on the same data directory. Afterwards every execution must have ended with
 * exactly the output an undisturbed run gives, and its history must have no duplicate or
 * missing event: ids dense from 1, and the counts of each event kind exactly those of one
 * clean run (a transition replayed after a crash would add events; a lost one would leave
 * the execution RUNNING or short).
 *
 * SLUICE_CRASH_ROUNDS (default 4) and SLUICE_CRASH_SEED choose the kills; the seed is
 * printed so a failure can be replayed.
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

#define SM      "arn:aws:states:us-east-1:000000000000:stateMachine:crashy"
#define EXEC(n) "arn:aws:states:us-east-1:000000000000:execution:crashy:" n
#define ROLE    "arn:aws:iam::000000000000:role/x"
#define N_EXEC  60
#define DONE_MS 120000

/* Prep -> WaitA (1 s) -> Fan (Map of n items, 3 at a time, each a Pass and a 1 s Wait) ->
 * Flaky (a Map whose first iteration fails; retried twice, 1 s apart, then caught) -> Done. */
static const char *const DEF
        = "{\"StartAt\":\"Prep\",\"States\":{"
          "\"Prep\":{\"Type\":\"Pass\",\"Parameters\":{\"id.$\":\"$.id\","
          "\"items.$\":\"States.ArrayRange(1, $.n, 1)\"},\"Next\":\"WaitA\"},"
          "\"WaitA\":{\"Type\":\"Wait\",\"Seconds\":1,\"Next\":\"Fan\"},"
          "\"Fan\":{\"Type\":\"Map\",\"ItemsPath\":\"$.items\",\"MaxConcurrency\":3,"
          "\"ResultPath\":\"$.fan\",\"Iterator\":{\"StartAt\":\"Sq\",\"States\":{"
          "\"Sq\":{\"Type\":\"Pass\",\"Parameters\":{\"d.$\":\"States.MathAdd($, $)\"},"
          "\"Next\":\"W\"},"
          "\"W\":{\"Type\":\"Wait\",\"Seconds\":1,\"End\":true}}},\"Next\":\"Flaky\"},"
          "\"Flaky\":{\"Type\":\"Map\",\"ItemsPath\":\"$.items\",\"MaxConcurrency\":1,"
          "\"Iterator\":{\"StartAt\":\"Boom\",\"States\":{\"Boom\":{\"Type\":\"Fail\","
          "\"Error\":\"Boom\",\"Cause\":\"bad\"}}},"
          "\"Retry\":[{\"ErrorEquals\":[\"Boom\"],\"IntervalSeconds\":1,\"MaxAttempts\":2,"
          "\"BackoffRate\":1}],"
          "\"Catch\":[{\"ErrorEquals\":[\"States.ALL\"],\"ResultPath\":\"$.caught\","
          "\"Next\":\"Done\"}],\"End\":true},"
          "\"Done\":{\"Type\":\"Pass\",\"End\":true}}}";

static int
items_of(int i)
{
	return 1 + i % 4;
}

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void
start_one(int i)
{
	char name[32], in[64];
	snprintf(name, sizeof name, "e%d", i);
	snprintf(in, sizeof in, "{\"id\":%d,\"n\":%d}", i, items_of(i));
	json_decref(
	        ok("StartExecution",
	           json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM, "name", name, "input", in)));
}

/* The first server's data directory, which every restart reuses. */
static char data_dir[300];

static void
restart(void)
{
	h_kill(&srv);
	if (!data_dir[0])
		snprintf(data_dir, sizeof data_dir, "%s", srv.data);
	const char *extra[] = { "--data", data_dir, NULL };
	cr_assert(h_start(&srv, extra), "restart failed");
}

static void
check_execution(int i)
{
	char arn[256];
	snprintf(arn, sizeof arn, EXEC("e%d"), i);
	json_t *d = NULL;
	for (int waited = 0; waited < DONE_MS; waited += 100) {
		d = ok("DescribeExecution", json_pack("{s:s}", "executionArn", arn));
		if (strcmp(s(d, "status"), "RUNNING") != 0)
			break;
		json_decref(d);
		d = NULL;
		nap_ms(100);
	}
	cr_assert_not_null(d, "%s still RUNNING after %d ms", arn, DONE_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s: %s %s", arn, s(d, "status"),
	                 s(d, "cause") ? s(d, "cause") : "");

	int n = items_of(i);
	json_t *items = json_array(), *fan = json_array();
	for (int v = 1; v <= n; v++) {
		json_array_append_new(items, json_integer(v));
		json_array_append_new(fan, json_pack("{s:i}", "d", 2 * v));
	}
	json_t *want = json_pack("{s:i,s:o,s:o,s:{s:s,s:s}}", "id", i, "items", items, "fan", fan,
	                         "caught", "Error", "Boom", "Cause", "bad");
	json_t *got = json_loads(s(d, "output"), 0, NULL);
	cr_assert(got && json_equal(got, want), "%s: output %s", arn, s(d, "output"));
	json_decref(got);
	json_decref(want);
	json_decref(d);

	json_t *ev = exec_history(arn);
	size_t k;
	json_t *e;
	json_array_foreach(ev, k, e)
	{
		cr_assert_eq(json_integer_value(json_object_get(e, "id")), (json_int_t)k + 1,
		             "%s: event %zu has id %lld", arn, k,
		             (long long)json_integer_value(json_object_get(e, "id")));
	}
	/* one clean run's counts: a replayed or lost transition changes one of them */
	const struct {
		const char *type;
		size_t want;
	} counts[] = {
		{ "ExecutionStarted", 1 },
		{ "ExecutionSucceeded", 1 },
		{ "WaitStateEntered", 1 + (size_t)n },
		{ "WaitStateExited", 1 + (size_t)n },
		{ "MapStateStarted", 4 }, /* Fan, then Flaky three times */
		{ "MapIterationStarted", (size_t)n + 3 },
		{ "MapIterationSucceeded", (size_t)n },
		{ "MapIterationFailed", 3 },
		{ "MapStateSucceeded", 1 },
		{ "MapStateFailed", 3 },
		{ "PassStateEntered", 2 + (size_t)n },
		{ "FailStateEntered", 3 },
	};
	for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
		cr_assert_eq(events_count(ev, counts[c].type), counts[c].want,
		             "%s: %zu %s, expected %zu", arn, events_count(ev, counts[c].type),
		             counts[c].type, counts[c].want);
	json_decref(ev);
}

Test(engine_crash, every_execution_ends_once_with_the_undisturbed_output, .timeout = 280)
{
	const char *r = getenv("SLUICE_CRASH_ROUNDS"), *sd = getenv("SLUICE_CRASH_SEED");
	int rounds = r ? atoi(r) : 4;
	unsigned seed = sd ? (unsigned)strtoul(sd, NULL, 10) : (unsigned)time(NULL);
	fprintf(stderr, "# engine crash: %d rounds, SLUICE_CRASH_SEED=%u\n", rounds, seed);
	srand(seed);

	start();
	json_decref(ok(
	        "CreateStateMachine",
	        json_pack("{s:s,s:s,s:s}", "name", "crashy", "definition", DEF, "roleArn", ROLE)));
	int started = 0;
	for (int round = 0; round < rounds; round++) {
		/* start a share of the executions in every round, so kills hit all phases */
		int upto = N_EXEC * (round + 1) / rounds;
		for (; started < upto; started++)
			start_one(started);
		nap_ms(200 + rand() % 1300);
		restart();
	}
	for (int i = 0; i < N_EXEC; i++)
		check_execution(i);
	cr_assert_eq(h_stop(&srv), 0);
	h_cleanup(&srv);
}
