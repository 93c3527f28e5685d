/*
 * bench_stepper - engine throughput, measured and printed (nothing here is an estimate):
 *   chain: executions/s of a 10-state Pass chain, durable STANDARD: executions are started
 *          and run to the end in batches of --batch, one fsync'd commit per batch (group
 *          commit), for --seconds.
 *   map:   wall time of one execution whose inline Map runs 1,000 items (Pass processor,
 *          MaxConcurrency 0), durable, commits every step_run_ready call; --map-runs runs,
 *          best and median printed.
 *
 * Usage: bench_stepper [--dir DIR] [--seconds S] [--batch N] [--map-runs N]
 * Without --dir a temporary directory is made under /tmp and removed afterwards.
 */
#include <ftw.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "statemachines/statemachines.h"
#include "stepper/stepper.h"

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
die(const char *what, const struct sl_error *err)
{
	fprintf(stderr, "bench_stepper: %s: %s\n", what, err ? sl_error_text(err) : "");
	exit(1);
}

static struct sm_machine *
compile(const char *text)
{
	struct sm_problems pr = { 0 };
	struct sm_machine *m = NULL;
	if (sm_definition_compile_text(text, strlen(text), NULL, SM_FORMAT_JSON, &m, &pr) != SL_OK)
		die("compile", NULL);
	return m;
}

static long done_count;

static void
on_finished(void *arg, const struct step_finished *f)
{
	(void)arg;
	if (f->status != STEP_SUCCEEDED) {
		fprintf(stderr, "bench_stepper: an execution ended %s: %s\n",
		        step_status_name(f->status), f->error ? f->error : "");
		exit(1);
	}
	done_count++;
}

static void
drain(store_t *st, step_engine_t *eng, const struct step_effects *fx)
{
	struct sl_error err;
	sl_error_clear(&err);
	while (step_engine_has_ready(eng)) {
		store_batch_t *b;
		if (store_batch_get(st, &b) != SL_OK
		    || step_run_ready(eng, b, fx, NULL, &err) != SL_OK)
			die("run", &err);
		if (store_batch_commit(st) != SL_OK)
			die("commit", NULL);
	}
}

/* CPU seconds (user + system) of this process: on a shared machine the wall clock also
 * counts other processes' turns, the CPU time does not. */
static double
cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
	        + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	sl_alloc_init();
	const char *dir_arg = NULL;
	double seconds = 3;
	long batch = 256, map_runs = 5;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir_arg = argv[++i];
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			batch = atol(argv[++i]);
		else if (!strcmp(argv[i], "--map-runs") && i + 1 < argc)
			map_runs = atol(argv[++i]);
		else {
			fprintf(stderr,
			        "usage: bench_stepper [--dir DIR] [--seconds S] [--batch N] "
			        "[--map-runs N]\n");
			return 2;
		}
	}
	if (batch < 1 || map_runs < 1 || seconds <= 0)
		return 2;
	char tmp[] = "/tmp/bench-stepper-XXXXXX";
	const char *dir = dir_arg;
	if (!dir) {
		if (!mkdtemp(tmp))
			die("mkdtemp", NULL);
		dir = tmp;
	}
	struct sl_error err;
	sl_error_clear(&err);
	store_t *st = NULL;
	if (store_open(dir, NULL, &st, &err) != SL_OK)
		die("open", &err);
	step_engine_t *eng = NULL;
	struct step_options opt = { .max_steps = 100000 };
	if (step_engine_new(st, &opt, &eng) != SL_OK)
		die("engine", NULL);

	// 10-state Pass chain
	char chain[4096];
	size_t n;
	n = (size_t)snprintf(chain, sizeof chain, "{\"StartAt\":\"S0\",\"States\":{");
	for (int i = 0; i < 10; i++) {
		char next[32];
		if (i == 9)
			snprintf(next, sizeof next, "\"End\":true");
		else
			snprintf(next, sizeof next, "\"Next\":\"S%d\"", i + 1);
		n += (size_t)snprintf(chain + n, sizeof chain - n,
		                      "%s\"S%d\":{\"Type\":\"Pass\",\"Result\":%d,\"ResultPath\":"
		                      "\"$.s%d\",%s}",
		                      i ? "," : "", i, i, i, next);
	}
	snprintf(chain + n, sizeof chain - n, "}}");
	struct sm_machine *mchain = compile(chain);
	struct sm_machine *mmap = compile(
	        "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemProcessor\":{"
	        "\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}},\"End\":"
	        "true}}}");
	if (step_engine_add_machine(eng, "chain", mchain) != SL_OK
	    || step_engine_add_machine(eng, "map", mmap) != SL_OK)
		die("add", NULL);
	struct step_effects fx = { .finished = on_finished };
	json_t *input = json_pack("{s:s}", "hello", "world");

	printf("command:");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");

	// --- chain ---
	long started = 0;
	double c0 = cpu_seconds();
	uint64_t t0 = sl_clock_mono_ns();
	uint64_t limit = (uint64_t)(seconds * 1e9);
	while (sl_clock_mono_ns() - t0 < limit) {
		store_batch_t *b;
		if (store_batch_get(st, &b) != SL_OK)
			die("batch", NULL);
		for (long i = 0; i < batch; i++) {
			char name[32];
			snprintf(name, sizeof name, "c%ld", started++);
			struct step_start req
			        = { .machine = "chain", .name = name, .input = input };
			if (step_start(eng, b, &req, NULL, &fx, &err) != SL_OK)
				die("start", &err);
		}
		if (step_run_ready(eng, b, &fx, NULL, &err) != SL_OK)
			die("run", &err);
		if (store_batch_commit(st) != SL_OK)
			die("commit", NULL);
		drain(st, eng, &fx);
	}
	double dt = (double)(sl_clock_mono_ns() - t0) / 1e9;
	double cpu = cpu_seconds() - c0;
	if (done_count != started)
		die("not every chain execution finished", NULL);
	printf("chain10 durable STANDARD: executions=%ld seconds=%.2f executions/s=%.0f "
	       "transitions/s=%.0f batch=%ld cpu_seconds=%.2f executions/cpu-s=%.0f\n",
	       started, dt, (double)started / dt, (double)started * 10 / dt, batch, cpu,
	       (double)started / cpu);

	// --- map of 1,000 items ---
	json_t *items = json_array();
	for (int i = 0; i < 1000; i++)
		json_array_append_new(items, json_pack("{s:i}", "i", i));
	double *ms = calloc((size_t)map_runs, sizeof *ms);
	for (long r = 0; r < map_runs; r++) {
		long before = done_count;
		char name[32];
		snprintf(name, sizeof name, "m%ld", r);
		uint64_t s0 = sl_clock_mono_ns();
		store_batch_t *b;
		struct step_start req = { .machine = "map", .name = name, .input = items };
		if (store_batch_get(st, &b) != SL_OK || step_start(eng, b, &req, NULL, &fx, &err))
			die("start map", &err);
		if (store_batch_commit(st) != SL_OK)
			die("commit", NULL);
		drain(st, eng, &fx);
		ms[r] = (double)(sl_clock_mono_ns() - s0) / 1e6;
		if (done_count != before + 1)
			die("the map execution did not finish", NULL);
	}
	qsort(ms, (size_t)map_runs, sizeof *ms, cmp_double);
	printf("map1000 inline durable: runs=%ld best_ms=%.1f median_ms=%.1f\n", map_runs, ms[0],
	       ms[map_runs / 2]);
	free(ms);
	json_decref(items);
	json_decref(input);
	step_engine_free(eng);
	sm_machine_free(mchain);
	sm_machine_free(mmap);
	store_free(st);
	if (!dir_arg)
		nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
