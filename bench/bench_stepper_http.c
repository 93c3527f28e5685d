/*
 * bench_stepper_http.c - the stepper through the HTTP API of a real `sluice serve` (issue
 * #5), next to bench_stepper's in-process figures:
 *
 *   standard  chain10 (ten Pass states) STANDARD: CLIENTS threads, each on its own
 *             keep-alive connection, send StartExecution back to back (EXECS in all);
 *             executions/s from the first start until ListExecutions(RUNNING) is empty,
 *             and p50/p99 of StartExecution's round trip (answered after the fsync'd
 *             commit of the start).
 *   express   chain10 EXPRESS through StartSyncExecution: CLIENTS threads, EXECS in all;
 *             executions/s and p50/p99 of the round trip (start to result).
 *   map       a STANDARD Map of 1,000 items (Pass processor) started with StartExecution,
 *             DescribeExecution polled every 2 ms until SUCCEEDED; seconds per run.
 *   inproc    chain10 on an engine with no_history over a no_sync store, no server: the
 *             express engine's own ceiling (compare bench_stepper's durable row).
 *
 * usage: bench_stepper_http [EXECS [CLIENTS [MAP_RUNS]]]   (defaults 4000, 8, 3)
 * Prints the figures and the command line; asserts nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_server.h"

#include "common/sl_clock.h"
#include "statemachines/statemachines.h"
#include "stepper/stepper.h"

#define PROG "bench_stepper_http"
#define SMA  "arn:aws:states:us-east-1:000000000000:stateMachine:"

static struct bench_server srv;

static void
die(const char *what)
{
	bench_die(PROG, what);
}

/* ---- a keep-alive HTTP client --------------------------------------------------------- */

/* One Step Functions call; dies unless the status is 200. Returns the answer's body (in
 * c->buf, valid until the next call). */
static const char *
call(struct bench_conn *c, const char *op, const char *json)
{
	char target[96];
	snprintf(target, sizeof target, "AWSStepFunctions.%s", op);
	return bench_call(c, PROG, target, json, NULL);
}

/* ---- figures -------------------------------------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
pct(double *v, long n, double p)
{
	if (n <= 0)
		return 0;
	long i = (long)(p * (double)(n - 1) + 0.5);
	return v[i];
}

/* ---- load threads --------------------------------------------------------------------- */

struct job {
	const char *op;      /* StartExecution or StartSyncExecution */
	const char *machine; /* name */
	const char *want;    /* a substring every answer contains */
	long first, count;
	double *lat_ms; /* count entries */
};

static void *
run_job(void *arg)
{
	struct job *j = arg;
	struct bench_conn *c = malloc(sizeof *c);
	if (!c)
		die("out of memory");
	bench_conn_open(c, PROG, srv.port);
	char body[512];
	for (long i = 0; i < j->count; i++) {
		snprintf(body, sizeof body,
		         "{\"stateMachineArn\":\"" SMA "%s\",\"name\":\"e%ld\","
		         "\"input\":\"{\\\"hello\\\":\\\"world\\\"}\"}",
		         j->machine, j->first + i);
		double t0 = bench_now_s();
		const char *a = call(c, j->op, body);
		j->lat_ms[i] = (bench_now_s() - t0) * 1000;
		if (j->want && !strstr(a, j->want)) {
			fprintf(stderr, PROG ": %s answered %s\n", j->op, a);
			exit(2);
		}
	}
	close(c->fd);
	free(c);
	return NULL;
}

/* Runs EXECS calls of op over clients threads; fills lat (execs entries); returns seconds. */
static double
load(const char *op, const char *machine, const char *want, long execs, int clients, double *lat)
{
	pthread_t th[256];
	struct job jobs[256];
	long per = execs / clients;
	double t0 = bench_now_s();
	for (int i = 0; i < clients; i++) {
		jobs[i] = (struct job) { op,
			                 machine,
			                 want,
			                 (long)i * per,
			                 i == clients - 1 ? execs - (long)i * per : per,
			                 lat + (long)i * per };
		if (pthread_create(&th[i], NULL, run_job, &jobs[i]) != 0)
			die("pthread_create");
	}
	for (int i = 0; i < clients; i++)
		pthread_join(th[i], NULL);
	return bench_now_s() - t0;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* ---- definitions ---------------------------------------------------------------------- */

static void
chain10(char *out, size_t cap, bool escaped)
{
	const char *q = escaped ? "\\\"" : "\"";
	size_t n = (size_t)snprintf(out, cap, "{%sStartAt%s:%sS0%s,%sStates%s:{", q, q, q, q, q, q);
	for (int i = 0; i < 10; i++) {
		char next[64];
		if (i == 9)
			snprintf(next, sizeof next, "%sEnd%s:true", q, q);
		else
			snprintf(next, sizeof next, "%sNext%s:%sS%d%s", q, q, q, i + 1, q);
		n += (size_t)snprintf(out + n, cap - n,
		                      "%s%sS%d%s:{%sType%s:%sPass%s,%sResult%s:%d,%sResultPath%s:"
		                      "%s$.s%d%s,%s}",
		                      i ? "," : "", q, i, q, q, q, q, q, q, q, i, q, q, q, i, q,
		                      next);
	}
	snprintf(out + n, cap - n, "}}");
}

static void
create(struct bench_conn *c, const char *name, const char *def_escaped, const char *type)
{
	char body[8192];
	snprintf(body, sizeof body,
	         "{\"name\":\"%s\",\"definition\":\"%s\",\"roleArn\":"
	         "\"arn:aws:iam::000000000000:role/x\",\"type\":\"%s\"}",
	         name, def_escaped, type);
	call(c, "CreateStateMachine", body);
}

/* ---- in-process EXPRESS engine -------------------------------------------------------- */

static long inproc_done;

static void
on_finished(void *arg, const struct step_finished *f)
{
	(void)arg;
	(void)f;
	inproc_done++;
}

static void
inproc_row(double seconds)
{
	char dir[] = "/tmp/bench-express-XXXXXX";
	if (!mkdtemp(dir))
		die("mkdtemp");
	struct sl_error err;
	sl_error_clear(&err);
	store_t *st = NULL;
	struct store_options so = { .no_sync = true, .max_batch_ops = 65536 };
	if (store_open(dir, &so, &st, &err) != SL_OK)
		die("store_open");
	step_engine_t *eng = NULL;
	struct step_options opt = { .max_steps = 100000, .no_history = true };
	if (step_engine_new(st, &opt, &eng) != SL_OK)
		die("engine");
	char def[4096];
	chain10(def, sizeof def, false);
	struct sm_problems pr = { 0 };
	struct sm_machine *m = NULL;
	if (sm_definition_compile_text(def, strlen(def), NULL, SM_FORMAT_AUTO, &m, &pr) != SL_OK)
		die("compile");
	sm_problems_clear(&pr);
	if (step_engine_add_machine(eng, "chain", m) != SL_OK)
		die("add");
	struct step_effects fx = { .finished = on_finished };
	json_t *input = json_pack("{s:s}", "hello", "world");
	long started = 0;
	double t0 = bench_now_s();
	while (bench_now_s() - t0 < seconds) {
		store_batch_t *b;
		if (store_batch_get(st, &b) != SL_OK)
			die("batch");
		for (int i = 0; i < 256; i++) {
			char name[32];
			snprintf(name, sizeof name, "c%ld", started++);
			struct step_start req
			        = { .machine = "chain", .name = name, .input = input };
			if (step_start(eng, b, &req, NULL, &fx, &err) != SL_OK)
				die("start");
		}
		while (step_engine_has_ready(eng))
			if (step_run_ready(eng, b, &fx, NULL, &err) != SL_OK)
				die("run");
		if (store_batch_commit(st) != SL_OK)
			die("commit");
	}
	double dt = bench_now_s() - t0;
	if (inproc_done != started)
		die("not every in-process execution finished");
	printf("inproc   chain10 EXPRESS engine (no_history, no_sync store): executions=%ld "
	       "seconds=%.2f executions/s=%.0f transitions/s=%.0f\n",
	       started, dt, (double)started / dt, (double)started * 10 / dt);
	json_decref(input);
	step_engine_free(eng);
	sm_machine_free(m);
	store_free(st);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, PROG ": could not remove %s\n", dir);
}

/* ---- main ----------------------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	long execs = argc > 1 ? atol(argv[1]) : 4000;
	int clients = argc > 2 ? atoi(argv[2]) : 8;
	long map_runs = argc > 3 ? atol(argv[3]) : 3;
	if (execs < 1 || clients < 1 || clients > 256 || map_runs < 0 || execs < clients) {
		fprintf(stderr, "usage: " PROG " [EXECS [CLIENTS [MAP_RUNS]]]\n");
		return 2;
	}
	printf("command: %s %ld %d %ld\n", argv[0], execs, clients, map_runs);
	bench_server_start(&srv, PROG, NULL);
	struct bench_conn *ctl = malloc(sizeof *ctl);
	double *lat = calloc((size_t)execs, sizeof *lat);
	if (!ctl || !lat)
		die("out of memory");
	bench_conn_open(ctl, PROG, srv.port);
	char def[8192];
	chain10(def, sizeof def, true);
	create(ctl, "chain", def, "STANDARD");
	create(ctl, "xchain", def, "EXPRESS");
	create(ctl, "map",
	       "{\\\"StartAt\\\":\\\"M\\\",\\\"States\\\":{\\\"M\\\":{\\\"Type\\\":\\\"Map\\\","
	       "\\\"ItemProcessor\\\":{\\\"StartAt\\\":\\\"P\\\",\\\"States\\\":{\\\"P\\\":"
	       "{\\\"Type\\\":\\\"Pass\\\",\\\"End\\\":true}}},\\\"End\\\":true}}}",
	       "STANDARD");

	// STANDARD: starts acknowledged after their commit, then until none runs
	double t0 = bench_now_s();
	double t_starts = load("StartExecution", "chain", "executionArn", execs, clients, lat);
	for (;;) {
		const char *a = call(ctl, "ListExecutions",
		                     "{\"stateMachineArn\":\"" SMA "chain\",\"statusFilter\":"
		                     "\"RUNNING\",\"maxResults\":1}");
		if (strstr(a, "\"executions\": []") || strstr(a, "\"executions\":[]"))
			break;
		sleep_ms(2);
	}
	double t_all = bench_now_s() - t0;
	qsort(lat, (size_t)execs, sizeof *lat, cmp_double);
	printf("standard chain10 StartExecution: executions=%ld clients=%d starts/s=%.0f "
	       "executions/s(all SUCCEEDED)=%.0f start p50=%.2fms p99=%.2fms\n",
	       execs, clients, (double)execs / t_starts, (double)execs / t_all,
	       pct(lat, execs, 0.50), pct(lat, execs, 0.99));

	// EXPRESS: each call answers when its execution ended
	double t_x = load("StartSyncExecution", "xchain", "\"SUCCEEDED\"", execs, clients, lat);
	qsort(lat, (size_t)execs, sizeof *lat, cmp_double);
	printf("express  chain10 StartSyncExecution: executions=%ld clients=%d executions/s=%.0f "
	       "round trip p50=%.2fms p99=%.2fms\n",
	       execs, clients, (double)execs / t_x, pct(lat, execs, 0.50), pct(lat, execs, 0.99));

	// a Map of 1,000 items through the API
	char *items = malloc(16 * 1024);
	if (!items)
		die("out of memory");
	size_t n = (size_t)snprintf(items, 16 * 1024, "[");
	for (int i = 0; i < 1000; i++)
		n += (size_t)snprintf(items + n, 16 * 1024 - n, "%s%d", i ? "," : "", i);
	snprintf(items + n, 16 * 1024 - n, "]");
	for (long r = 0; r < map_runs; r++) {
		char body[20 * 1024];
		snprintf(body, sizeof body,
		         "{\"stateMachineArn\":\"" SMA "map\",\"name\":\"m%ld\",\"input\":\"%s\"}",
		         r, items);
		double m0 = bench_now_s();
		call(ctl, "StartExecution", body);
		char desc[256];
		snprintf(desc, sizeof desc,
		         "{\"executionArn\":\"arn:aws:states:us-east-1:000000000000:execution:map:"
		         "m%ld\"}",
		         r);
		for (;;) {
			const char *a = call(ctl, "DescribeExecution", desc);
			if (strstr(a, "\"SUCCEEDED\""))
				break;
			if (!strstr(a, "\"RUNNING\""))
				die("the Map execution did not succeed");
			sleep_ms(2);
		}
		printf("map      1,000 items (STANDARD, Pass processor) via StartExecution: "
		       "run=%ld "
		       "seconds=%.3f items/s=%.0f\n",
		       r, bench_now_s() - m0, 1000 / (bench_now_s() - m0));
	}
	free(items);
	close(ctl->fd);
	free(ctl);
	free(lat);
	bench_server_stop(&srv);
	inproc_row(3.0);
	return 0;
}
