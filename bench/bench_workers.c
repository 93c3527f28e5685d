/*
 * bench_workers.c - task dispatch to workers over NNG on loopback, against a real
 * `sluice serve`: tasks per second and dispatch latency with 1, 4 and 16 echo workers.
 *
 * The workflow is one Map over ITEMS items whose processor is an activity task (echo);
 * EXECS such executions are started at once and the clock runs from the first
 * StartExecution to the last execution seen SUCCEEDED (DescribeExecution polled every
 * 5 ms), so tasks/s includes the whole durable path: scheduling, queueing after the commit,
 * the lease (ActivityStarted) committed before the poll is answered, the result committed
 * before it is acknowledged, and the Map bookkeeping.
 *
 * Two kinds of workers, each an in-process thread with its own NNG REQ socket:
 *   raw: speaks the wire directly (wk_proto encoders, the same messages as the worker
 *        library: poll for up to BATCH tasks, a success for each). Dispatch latency is measured per
 * task on the worker's side: from the moment the poll's answer (the task) is received to the moment
 * the "ok" for its success is received, i.e. poll answered -> result recorded (the ok leaves the
 * server after the result's commit, fsync included). lib:  libsluice-worker (sluice_worker.h), one
 * worker with concurrency 1 and tasks_per_poll BATCH per thread; tasks/s only (the library does not
 * expose per-task timestamps).
 *
 * usage: bench_workers [ITEMS [EXECS [COUNTS [BATCH]]]]   (defaults 1000, 4, "1,4,16", 1)
 * The server is started fresh from $SLUICE_BIN (else the build tree's cli/sluice) in a
 * temporary directory, unless SLUICE_ENDPOINT=127.0.0.1:PORT and SLUICE_WORKERS=URL name
 * a running one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_server.h"

#include "common/sl_alloc.h"
#include "workers/sluice_worker.h"
#include "workers/wk_proto.h"

#define MAX_WORKERS 64

static void
die(const char *what)
{
	bench_die("bench_workers", what);
}

/* ---- the server ----------------------------------------------------------------------- */

static struct bench_server srv;

/* An external server (SLUICE_ENDPOINT and SLUICE_WORKERS), else one of our own. */
static void
server_start(void)
{
	const char *ep = getenv("SLUICE_ENDPOINT"), *wu = getenv("SLUICE_WORKERS");
	if (ep && wu) {
		if (sscanf(ep, "127.0.0.1:%d", &srv.port) != 1)
			die("SLUICE_ENDPOINT must be 127.0.0.1:PORT");
		snprintf(srv.workers, sizeof srv.workers, "%s", wu);
		return;
	}
	bench_server_start(&srv, "bench_workers", NULL);
	if (!srv.workers[0])
		die("the server did not say its workers URL");
}

/* ---- HTTP (setup and progress only: one connection per call) -------------------------- */

static char *
http_call(const char *op, const char *json)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
		die("cannot connect to the server");
	size_t n = strlen(json);
	size_t cap = n + 512;
	char *req = malloc(cap);
	int hl = snprintf(req, cap,
	                  "POST / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
	                  "X-Amz-Target: AWSStepFunctions.%s\r\n"
	                  "Content-Type: application/x-amz-json-1.0\r\nContent-Length: %zu\r\n\r\n",
	                  op, n);
	memcpy(req + hl, json, n);
	for (size_t off = 0, len = (size_t)hl + n; off < len;) {
		ssize_t w = write(fd, req + off, len - off);
		if (w <= 0 && errno != EINTR)
			die("write failed");
		off += w > 0 ? (size_t)w : 0;
	}
	free(req);
	size_t rcap = 1 << 16, rlen = 0;
	char *buf = malloc(rcap);
	for (;;) {
		if (rlen + 4096 > rcap)
			buf = realloc(buf, rcap *= 2);
		ssize_t r = read(fd, buf + rlen, rcap - rlen - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		rlen += (size_t)r;
	}
	close(fd);
	buf[rlen] = 0;
	char *body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || !body) {
		fprintf(stderr, "bench_workers: %s failed: %s\n", op, buf);
		exit(2);
	}
	char *out = strdup(body + 4);
	free(buf);
	return out;
}

/* sluice_store_commits_total from GET /metrics (commits are fsyncs: the figure that does
 * not depend on the machine's load), or -1 */
static double
store_commits(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
		die("cannot connect to the server");
	const char *req = "GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		die("write failed");
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	for (ssize_t r; len < cap - 1 && (r = read(fd, buf + len, cap - 1 - len)) != 0;)
		if (r > 0)
			len += (size_t)r;
		else if (errno != EINTR)
			break;
	close(fd);
	buf[len] = 0;
	const char *m = strstr(buf, "\nsluice_store_commits_total ");
	double v = m ? atof(m + strlen("\nsluice_store_commits_total ")) : -1;
	free(buf);
	return v;
}

/* ---- workers -------------------------------------------------------------------------- */

struct worker {
	pthread_t th;
	int index;
	bool lib;
	sluice_worker_t *lw;
	double *lat; /* seconds, one per task (raw) */
	size_t n_lat, cap_lat;
	uint64_t tasks;
};

static atomic_bool stopping;
static unsigned batch = 1; /* tasks per poll */
static int round_no;       /* names and poll ids differ from round to round */

static int
exchange(nng_socket sk, const char *buf, size_t len, char **reply, size_t *rlen)
{
	int rv = nng_send(sk, (void *)buf, len, 0);
	if (rv == 0)
		rv = nng_recv(sk, reply, rlen, NNG_FLAG_ALLOC);
	return rv;
}

static void *
raw_main(void *arg)
{
	struct worker *w = arg;
	nng_socket sk;
	if (nng_req0_open(&sk) != 0)
		die("nng_req0_open failed");
	nng_socket_set_ms(sk, NNG_OPT_RECVTIMEO, 10000);
	nng_socket_set_ms(sk, NNG_OPT_REQ_RESENDTIME, 600000);
	if (nng_dial(sk, srv.workers, NULL, 0) != 0)
		die("cannot dial the workers socket");
	char name[32];
	snprintf(name, sizeof name, "raw%d-%d", round_no, w->index);
	const char *acts[] = { "echo" };
	struct wk_limits lim = { 0 };
	for (uint64_t seq = 1; !atomic_load(&stopping); seq++) {
		char id[64], *buf, *rep;
		size_t len, rlen;
		snprintf(id, sizeof id, "%s/%llu", name, (unsigned long long)seq);
		if (wk_encode_poll(NULL, id, name, acts, 1, batch, 200, &buf, &len) != SL_OK)
			die("encode");
		int rv = exchange(sk, buf, len, &rep, &rlen);
		sl_free(buf);
		if (rv != 0)
			continue;
		double t0 = bench_now_s();
		struct wk_msg m;
		struct sl_error err;
		if (wk_msg_decode(rep, rlen, &lim, &m, &err) != SL_OK) {
			fprintf(stderr, "bench_workers: bad reply: %s\n", err.message);
			nng_free(rep, rlen);
			continue;
		}
		nng_free(rep, rlen);
		for (size_t i = 0; i < m.n_tasks; i++) {
			if (wk_encode_success(NULL, m.tasks[i].token, m.tasks[i].input, &buf, &len)
			    != SL_OK)
				die("encode");
			rv = exchange(sk, buf, len, &rep, &rlen);
			sl_free(buf);
			if (rv != 0)
				continue;
			if (!memmem(rep, rlen, "\"ok\"", 4))
				fprintf(stderr, "bench_workers: result refused: %.*s\n", (int)rlen,
				        rep);
			nng_free(rep, rlen);
			double t1 = bench_now_s();
			if (w->n_lat == w->cap_lat) {
				w->cap_lat = w->cap_lat ? w->cap_lat * 2 : 4096;
				w->lat = realloc(w->lat, w->cap_lat * sizeof *w->lat);
			}
			w->lat[w->n_lat++] = t1 - t0;
			w->tasks++;
			t0 = bench_now_s();
		}
		wk_msg_clear(&m);
	}
	nng_close(sk);
	return NULL;
}

static void
echo(void *arg, const struct sluice_task *t, struct sluice_result *r)
{
	struct worker *w = arg;
	r->output = strndup(t->input, t->input_len);
	__atomic_add_fetch(&w->tasks, 1, __ATOMIC_RELAXED);
}

static void *
lib_main(void *arg)
{
	struct worker *w = arg;
	sluice_worker_run(w->lw);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* ---- one round ------------------------------------------------------------------------ */

static void
run_round(int nworkers, bool lib, int items, int execs)
{
	struct worker w[MAX_WORKERS] = { 0 };
	atomic_store(&stopping, false);
	round_no++;
	for (int i = 0; i < nworkers; i++) {
		w[i].index = i;
		w[i].lib = lib;
		if (lib) {
			char name[32];
			snprintf(name, sizeof name, "lib%d-%d", round_no, i);
			struct sluice_worker_options o = { .url = srv.workers,
				                           .name = name,
				                           .concurrency = 1,
				                           .tasks_per_poll = batch,
				                           .poll_wait_ms = 1000 };
			if (sluice_worker_new(&o, &w[i].lw) != 0
			    || sluice_worker_register(w[i].lw, "echo", echo, &w[i]) != 0)
				die("cannot create a library worker");
			pthread_create(&w[i].th, NULL, lib_main, &w[i]);
		} else {
			pthread_create(&w[i].th, NULL, raw_main, &w[i]);
		}
	}
	/* the input: {"items": [0, 1, ...]} as the JSON text StartExecution carries */
	size_t cap = (size_t)items * 8 + 64;
	char *in = malloc(cap), *esc = malloc(cap * 2 + 128);
	size_t len = (size_t)snprintf(in, cap, "{\\\"items\\\":[");
	for (int i = 0; i < items; i++)
		len += (size_t)snprintf(in + len, cap - len, "%s%d", i ? "," : "", i);
	snprintf(in + len, cap - len, "]}");
	double c0 = store_commits();
	double t0 = bench_now_s();
	for (int e = 0; e < execs; e++) {
		snprintf(esc, cap * 2 + 128,
		         "{\"stateMachineArn\":\"arn:aws:states:us-east-1:000000000000:"
		         "stateMachine:bench-echo\",\"name\":\"r%d-e%d\",\"input\":\"%s\"}",
		         round_no, e, in);
		free(http_call("StartExecution", esc));
	}
	for (int e = 0; e < execs; e++) {
		char req[256];
		snprintf(req, sizeof req,
		         "{\"executionArn\":\"arn:aws:states:us-east-1:000000000000:execution:"
		         "bench-echo:r%d-e%d\"}",
		         round_no, e);
		for (;;) {
			char *d = http_call("DescribeExecution", req);
			bool running = strstr(d, "\"RUNNING\"") != NULL;
			if (!running && !strstr(d, "\"SUCCEEDED\"")) {
				fprintf(stderr, "bench_workers: execution failed: %s\n", d);
				exit(2);
			}
			free(d);
			if (!running)
				break;
			struct timespec ts = { 0, 5 * 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	double secs = bench_now_s() - t0;
	double commits = store_commits() - c0;
	atomic_store(&stopping, true);
	uint64_t total = 0;
	size_t nl = 0;
	for (int i = 0; i < nworkers; i++) {
		if (lib)
			sluice_worker_stop(w[i].lw);
		pthread_join(w[i].th, NULL);
		if (lib)
			sluice_worker_free(w[i].lw);
		total += w[i].tasks;
		nl += w[i].n_lat;
	}
	printf("%-4s workers=%-3d tasks=%-6llu seconds=%.3f tasks/s=%.0f commits/task=%.2f",
	       lib ? "lib" : "raw", nworkers, (unsigned long long)total, secs, (double)total / secs,
	       total ? commits / (double)total : 0);
	if (!lib && nl) {
		double *all = malloc(nl * sizeof *all);
		size_t k = 0;
		for (int i = 0; i < nworkers; i++) {
			memcpy(all + k, w[i].lat, w[i].n_lat * sizeof *all);
			k += w[i].n_lat;
		}
		qsort(all, nl, sizeof *all, cmp_double);
		printf("  dispatch p50=%.3f ms p99=%.3f ms", all[nl / 2] * 1e3,
		       all[(size_t)((double)nl * 0.99)] * 1e3);
		free(all);
	}
	printf("\n");
	fflush(stdout);
	for (int i = 0; i < nworkers; i++)
		free(w[i].lat);
	free(in);
	free(esc);
}

int
main(int argc, char **argv)
{
	int items = argc > 1 ? atoi(argv[1]) : 1000;
	int execs = argc > 2 ? atoi(argv[2]) : 4;
	const char *counts = argc > 3 ? argv[3] : "1,4,16";
	int b = argc > 4 ? atoi(argv[4]) : 1;
	if (items < 1 || items > 100000 || execs < 1 || execs > 1000 || b < 1 || b > 64)
		die("usage: bench_workers [ITEMS [EXECS [COUNTS [BATCH]]]]");
	batch = (unsigned)b;
	signal(SIGPIPE, SIG_IGN);
	server_start();
	free(http_call(
	        "CreateStateMachine",
	        "{\"name\":\"bench-echo\",\"roleArn\":\"arn:aws:iam::000000000000:role/b\","
	        "\"definition\":\"{\\\"StartAt\\\":\\\"M\\\",\\\"States\\\":{\\\"M\\\":{"
	        "\\\"Type\\\":\\\"Map\\\",\\\"ItemsPath\\\":\\\"$.items\\\",\\\"Iterator\\\":"
	        "{\\\"StartAt\\\":\\\"T\\\",\\\"States\\\":{\\\"T\\\":{\\\"Type\\\":\\\"Task\\\","
	        "\\\"Resource\\\":\\\"activity:echo\\\",\\\"End\\\":true}}},\\\"End\\\":true}}}"
	        "\"}"));
	printf("bench_workers: %d execution(s) x Map of %d echo tasks per round; server %s\n",
	       execs, items, srv.workers);
	printf("command: bench_workers %d %d %s %u\n", items, execs, counts, batch);
	char *list = strdup(counts);
	for (int pass = 0; pass < 2; pass++) {
		char *save = NULL;
		strcpy(list, counts);
		for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			int n = atoi(t);
			if (n < 1 || n > MAX_WORKERS)
				die("worker counts are 1 to 64");
			run_round(n, pass == 1, items, execs);
		}
	}
	free(list);
	bench_server_stop(&srv);
	return 0;
}
