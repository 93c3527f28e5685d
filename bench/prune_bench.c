/*
 * bench_prune - the execution retention's prune rate, measured and printed: --executions
 * closed executions of a 10-state Pass chain (22 history events each) are written (batches
 * of 256, one commit each), the fake clock moves a day, then step_prune deletes them in
 * slices of --slice records, one fsync'd commit per slice, as the server does per loop
 * iteration. Printed: executions and records deleted per second, slices, the wall time.
 *
 * Usage: bench_prune [--dir DIR] [--executions N] [--slice N]
 * Without --dir a temporary directory is made under /tmp and removed afterwards.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	fprintf(stderr, "bench_prune: %s: %s\n", what, err ? sl_error_text(err) : "");
	exit(1);
}

static double
wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	const char *dir = NULL;
	long n = 20000, slice = 1000;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--executions") == 0 && i + 1 < argc)
			n = atol(argv[++i]);
		else if (strcmp(argv[i], "--slice") == 0 && i + 1 < argc)
			slice = atol(argv[++i]);
		else {
			fprintf(stderr,
			        "usage: bench_prune [--dir DIR] [--executions N] [--slice N]\n");
			return 2;
		}
	}
	if (n < 1 || slice < 16) {
		fprintf(stderr, "bench_prune: --executions >= 1, --slice >= 16\n");
		return 2;
	}
	sl_alloc_init();
	char tmp[] = "/tmp/bench-prune-XXXXXX";
	if (!dir && !(dir = mkdtemp(tmp)))
		die("mkdtemp", NULL);
	sl_clock_fake_enable(1700000000000LL);
	struct sl_error err;
	sl_error_clear(&err);
	store_t *st = NULL;
	step_engine_t *eng = NULL;
	if (store_open(dir, NULL, &st, &err) != SL_OK)
		die("store", &err);
	struct step_options opt = { .jitter_seed = 1 };
	if (step_engine_new(st, &opt, &eng) != SL_OK)
		die("engine", NULL);
	char chain[2048];
	size_t len = (size_t)snprintf(chain, sizeof chain, "{\"StartAt\":\"S0\",\"States\":{");
	for (int i = 0; i < 10; i++) {
		char next[32];
		if (i == 9)
			snprintf(next, sizeof next, "\"End\":true");
		else
			snprintf(next, sizeof next, "\"Next\":\"S%d\"", i + 1);
		len += (size_t)snprintf(chain + len, sizeof chain - len,
		                        "%s\"S%d\":{\"Type\":\"Pass\",%s}", i ? "," : "", i, next);
	}
	snprintf(chain + len, sizeof chain - len, "}}");
	struct sm_problems pr = { 0 };
	struct sm_machine *m = NULL;
	if (sm_definition_compile_text(chain, strlen(chain), NULL, SM_FORMAT_JSON, &m, &pr)
	    != SL_OK)
		die("compile", NULL);
	if (step_engine_add_machine(eng, "chain", m) != SL_OK)
		die("add machine", NULL);

	printf("command:");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");
	for (long started = 0; started < n;) {
		store_batch_t *b;
		if (store_batch_get(st, &b) != SL_OK)
			die("batch", NULL);
		for (int k = 0; k < 256 && started < n; k++, started++) {
			char name[32];
			snprintf(name, sizeof name, "c%ld", started);
			struct step_start req = { .machine = "chain", .name = name };
			if (step_start(eng, b, &req, NULL, NULL, &err) != SL_OK)
				die("start", &err);
		}
		while (step_engine_has_ready(eng))
			if (step_run_ready(eng, b, NULL, NULL, &err) != SL_OK)
				die("run", &err);
		if (store_batch_commit(st) != SL_OK)
			die("commit", NULL);
	}
	sl_clock_fake_advance(24LL * 3600 * 1000);
	struct step_prune_stats stats = { 0 };
	long slices = 0;
	bool more = true;
	double t0 = wall();
	while (more) {
		store_batch_t *b;
		if (store_batch_get(st, &b) != SL_OK)
			die("batch", NULL);
		if (step_prune(eng, b, sl_clock_now_ms(), (size_t)slice, &stats, &more, &err)
		    != SL_OK)
			die("prune", &err);
		if (store_batch_commit(st) != SL_OK)
			die("commit", NULL);
		slices++;
	}
	double secs = wall() - t0;
	if ((long)stats.executions != n)
		die("not every execution was pruned", NULL);
	printf("prune: executions=%ld records=%llu slices=%ld (of %ld records) seconds=%.2f "
	       "executions/s=%.0f records/s=%.0f\n",
	       n, (unsigned long long)stats.records, slices, slice, secs, (double)n / secs,
	       (double)stats.records / secs);
	step_engine_free(eng);
	store_free(st);
	sm_machine_free(m);
	if (dir == tmp)
		nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
