/*
 * test_step_crash.c - SIGKILL at random moments. A child (crash_child) runs CRASH_N
 * executions with waits, retries, a Map and a Parallel; the parent kills it after a random
 * delay, restarts it on the same data directory, and repeats until a child finishes on its
 * own. Then every execution must have the output of an undisturbed run, and every history
 * the same events (no duplicate, none missing) with dense ids.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "tests/stepper/step_test_util.h"

#define CRASH_N         200
#define CRASH_MAX_KILLS 60

static int
spawn(const char *dir, pid_t *pid)
{
	char n[16];
	snprintf(n, sizeof n, "%d", CRASH_N);
	*pid = fork();
	cr_assert_neq(*pid, -1);
	if (*pid == 0) {
		execl(CRASH_CHILD, CRASH_CHILD, dir, n, (char *)NULL);
		_exit(127);
	}
	return 0;
}

static int
wait_child(pid_t pid)
{
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return st;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* Counts event types (and state names) of a history into a JSON object. */
static json_t *
event_census(json_t *h)
{
	json_t *c = json_object();
	size_t i;
	json_t *ev;
	json_array_foreach(h, i, ev)
	{
		cr_expect_eq(json_integer_value(json_object_get(ev, "id")), (json_int_t)i + 1,
		             "history ids are not dense");
		const char *type = json_string_value(json_object_get(ev, "type"));
		json_t *d = json_object_get(ev, "stateEnteredEventDetails");
		char key[160];
		snprintf(key, sizeof key, "%s/%s", type,
		         d ? json_string_value(json_object_get(d, "name")) : "");
		json_int_t n = json_integer_value(json_object_get(c, key));
		json_object_set_new(c, key, json_integer(n + 1));
	}
	return c;
}

static void
read_all(const char *dir, json_t **outputs, json_t **histories)
{
	store_t *st = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(store_open(dir, NULL, &st, &err), SL_OK, "%s", sl_error_text(&err));
	step_engine_t *eng = NULL;
	cr_assert_eq(step_engine_new(st, NULL, &eng), SL_OK);
	store_txn_t *txn;
	*outputs = json_object();
	*histories = json_object();
	for (int i = 0; i < CRASH_N; i++) {
		char arn[STEP_ARN_MAX];
		snprintf(arn, sizeof arn,
		         "arn:aws:states:us-east-1:000000000000:execution:crash:e%d", i);
		cr_assert_eq(store_read_begin(st, &txn), SL_OK);
		json_t *d = NULL, *h = NULL;
		cr_assert_eq(step_describe(eng, txn, arn, &d, &err), SL_OK, "%s",
		             sl_error_text(&err));
		cr_assert_eq(step_history(eng, txn, arn, &h, &err), SL_OK);
		store_read_end(txn);
		cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "SUCCEEDED",
		                 "e%d", i);
		json_object_set(*outputs, arn, json_object_get(d, "output"));
		json_object_set_new(*histories, arn, event_census(h));
		json_decref(d);
		json_decref(h);
	}
	step_engine_free(eng);
	store_free(st);
}

Test(step_crash, sigkill_at_random_moments, .timeout = 600)
{
	char calm[] = "/tmp/step-calm-XXXXXX", crash[] = "/tmp/step-crash-XXXXXX";
	cr_assert(mkdtemp(calm));
	cr_assert(mkdtemp(crash));
	pid_t pid;
	spawn(calm, &pid);
	int st = wait_child(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "undisturbed run failed (%d)", st);

	unsigned seed = (unsigned)time(NULL);
	srand(seed);
	int kills = 0;
	for (;;) {
		spawn(crash, &pid);
		long delay = 20 + rand() % 400;
		bool exited = false;
		for (long t = 0; t < delay; t += 5) {
			int s2;
			if (waitpid(pid, &s2, WNOHANG) == pid) {
				cr_assert(WIFEXITED(s2) && WEXITSTATUS(s2) == 0,
				          "child failed (%d)", s2);
				exited = true;
				break;
			}
			sleep_ms(5);
		}
		if (exited)
			break;
		kill(pid, SIGKILL);
		wait_child(pid);
		kills++;
		cr_assert_lt(kills, CRASH_MAX_KILLS, "no progress after %d kills (seed %u)", kills,
		             seed);
	}
	cr_log_info("crash test: %d SIGKILLs (seed %u)", kills, seed);
	fprintf(stderr, "step_crash: %d SIGKILLs before the run completed (seed %u)\n", kills,
	        seed);

	json_t *out_calm, *hist_calm, *out_crash, *hist_crash;
	read_all(calm, &out_calm, &hist_calm);
	read_all(crash, &out_crash, &hist_crash);
	const char *arn;
	json_t *v;
	json_object_foreach(out_calm, arn, v)
	{
		cr_expect(json_equal(v, json_object_get(out_crash, arn)), "%s: output differs",
		          arn);
		char *a = json_dumps(json_object_get(hist_calm, arn),
		                     JSON_SORT_KEYS | JSON_COMPACT);
		char *b = json_dumps(json_object_get(hist_crash, arn),
		                     JSON_SORT_KEYS | JSON_COMPACT);
		cr_expect_str_eq(a, b, "%s: events differ", arn);
		free(a);
		free(b);
	}
	json_decref(out_calm);
	json_decref(hist_calm);
	json_decref(out_crash);
	json_decref(hist_crash);
	step_test_rmtree(calm);
	step_test_rmtree(crash);
}
