/*
 * crash_child.c - the process the crash test kills: runs CRASH_N executions of a machine
 * with waits, retries, a Map and a Parallel on the store in DIR, answering its own tasks
 * like a worker would (the answer depends only on the task input, so every run agrees).
 * Restarted on the same DIR it recovers and carries on; it exits 0 once every execution
 * has ended. Usage: crash_child DIR N
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "statemachines/statemachines.h"
#include "stepper/stepper.h"
#include "tests/stepper/crash_def.h"

struct pending {
	char token[STEP_TOKEN_LEN + 1];
	json_t *input;
};

static struct pending *tasks;
static size_t n_tasks, cap_tasks;
static long finished;

static void
on_task(void *arg, const struct step_task *t)
{
	(void)arg;
	if (n_tasks == cap_tasks) {
		cap_tasks = cap_tasks ? cap_tasks * 2 : 256;
		tasks = realloc(tasks, cap_tasks * sizeof *tasks);
		if (!tasks)
			abort();
	}
	snprintf(tasks[n_tasks].token, sizeof tasks[0].token, "%s", t->token);
	tasks[n_tasks].input = json_incref(t->input);
	n_tasks++;
}

static void
on_finished(void *arg, const struct step_finished *f)
{
	(void)arg;
	(void)f;
	finished++;
}

static void
die(const char *what, const struct sl_error *err)
{
	fprintf(stderr, "crash_child: %s: %s\n", what, sl_error_text(err));
	exit(3);
}

int
main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	sl_alloc_init();
	long n = strtol(argv[2], NULL, 10);
	struct sl_error err;
	sl_error_clear(&err);
	store_t *st = NULL;
	if (store_open(argv[1], NULL, &st, &err) != SL_OK)
		die("open", &err);
	struct sm_problems pr = { 0 };
	struct sm_machine *m = NULL;
	if (sm_definition_compile_text(CRASH_DEF, strlen(CRASH_DEF), NULL, SM_FORMAT_JSON, &m, &pr)
	    != SL_OK)
		return 4;
	step_engine_t *eng = NULL;
	if (step_engine_new(st, NULL, &eng) != SL_OK || step_engine_add_machine(eng, "crash", m))
		return 5;
	struct step_effects fx = { .task = on_task, .finished = on_finished };
	store_batch_t *b = NULL;
	if (store_batch_get(st, &b) != SL_OK || step_engine_recover(eng, b, &err) != SL_OK
	    || step_tasks_replay(eng, store_batch_txn(b), &fx, &err) != SL_OK)
		die("recover", &err);
	// executions that ended before a crash count as finished
	long done_before = 0;
	for (long i = 0; i < n; i++) {
		char name[32], arn[STEP_ARN_MAX];
		snprintf(name, sizeof name, "e%ld", i);
		json_t *in = json_pack("{s:i, s:[i,i,i], s:i}", "id", (int)i, "items", (int)i,
		                       (int)i + 1, (int)i + 2, "w", (int)(i % 2));
		struct step_start req = { .machine = "crash", .name = name, .input = in };
		sl_err e = step_start(eng, b, &req, arn, &fx, &err);
		json_decref(in);
		if (e == SL_ERR_EXEC_EXISTS) {
			sl_error_clear(&err);
			json_t *d = NULL;
			snprintf(arn, sizeof arn, "arn:aws:states:%s:%s:execution:crash:%s",
			         sl_arn_region(), sl_arn_account(), name);
			if (step_describe(eng, store_batch_txn(b), arn, &d, &err) != SL_OK)
				die("describe", &err);
			done_before += strcmp(json_string_value(json_object_get(d, "status")),
			                      "RUNNING")
			        != 0;
			json_decref(d);
		} else if (e != SL_OK) {
			die("start", &err);
		}
	}
	if (store_batch_commit(st) != SL_OK)
		return 6;
	finished = done_before;
	while (finished < n) {
		if (store_batch_get(st, &b) != SL_OK)
			return 7;
		unsigned fired = 0;
		if (step_fire_timers(eng, b, sl_clock_now_ms(), 0, &fx, &fired, &err) != SL_OK)
			die("timers", &err);
		if (step_run_ready(eng, b, &fx, NULL, &err) != SL_OK)
			die("run", &err);
		size_t answered = n_tasks;
		for (size_t i = 0; i < answered; i++) {
			json_t *in = tasks[i].input;
			json_int_t v = json_integer_value(json_object_get(in, "v"));
			json_int_t rc = json_integer_value(json_object_get(in, "rc"));
			sl_err e;
			if (v % 3 == 0 && rc == 0) {
				e = step_task_fail(eng, b, tasks[i].token, "Flaky", "first try",
				                   &fx, &err);
			} else {
				json_t *out = json_pack("{s:I}", "v2", v * 2);
				e = step_task_succeed(eng, b, tasks[i].token, out, &fx, &err);
				json_decref(out);
			}
			if (e == SL_ERR_TASK_NOT_FOUND)
				sl_error_clear(&err);
			else if (e != SL_OK)
				die("answer", &err);
			json_decref(in);
		}
		memmove(tasks, tasks + answered, (n_tasks - answered) * sizeof *tasks);
		n_tasks -= answered;
		if (store_batch_commit(st) != SL_OK)
			return 8;
		if (!fired && !answered && !step_engine_has_ready(eng)) {
			struct timespec ts = { 0, 5 * 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	step_engine_free(eng);
	sm_machine_free(m);
	store_free(st);
	free(tasks);
	return 0;
}
