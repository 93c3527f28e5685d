/*
 * bench_bus.c - durable PutEvents over HTTP against a real `sluice serve`, and the
 * in-process routing rate, with 10, 1,000 and 10,000 rules on the bus.
 *
 * For each rule count: a fresh server in a temporary directory (--rules-per-bus raised for
 * 10,000, --delivery-paused so the figure is the accept path: envelope, log append,
 * routing, one delivery record per matched target, group commit with fsync, answer after
 * the commit). Rule i has the pattern {"source": ["bench"], "detail-type": ["t<i>"]} and
 * one target; each event names one rule's detail-type, so every event matches exactly one
 * rule and writes one delivery record. CONNS threads each keep one HTTP/1.1 connection
 * alive and send PutEvents calls of 10 entries back to back for SECONDS; the figures are
 * entries/s (all connections) and the p50/p99 latency of one call. Then the same rules and
 * events through pat_machine_match in this process: events routed per second.
 *
 * usage: bench_bus [SECONDS [CONNS [COUNTS]]]   (defaults 5, 16, "10,1000,10000")
 * BENCH_BUS_SHAPE=distinct: rules {"detail-type": ["t<i>"]} without the shared source.
 * The server binary is $SLUICE_BIN, else the build tree's cli/sluice.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_server.h"

#include "bus/pattern.h"
#include "common/sl_alloc.h"

#define ENTRIES_PER_CALL 10
#define MAX_CONNS        64
#define SETUP_CONNS      8

/* BENCH_BUS_SHAPE=distinct drops the field every rule shares ("source"), to see how much of
 * the routing cost comes from it. */
static bool shared_source = true;

static void
die(const char *what)
{
	bench_die("bench_bus", what);
}

/* ---- the server ----------------------------------------------------------------------- */

/* ---- a keep-alive HTTP client --------------------------------------------------------- */

struct conn {
	int fd;
	char *buf;
	size_t cap, len; /* bytes read and not yet consumed */
};

static void
conn_open(struct conn *c, int port)
{
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
		die("cannot connect to the server");
	c->cap = 1 << 16;
	c->len = 0;
	c->buf = malloc(c->cap);
}

static void
conn_close(struct conn *c)
{
	close(c->fd);
	free(c->buf);
}

static void
write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write to the server failed");
		p += w;
		n -= (size_t)w;
	}
}

/* One POST; returns the HTTP status, the body (NUL-terminated, valid until the next call)
 * in *body. */
static int
conn_call(struct conn *c, const char *op, const char *json, size_t n, const char **body)
{
	char head[256];
	int hl = snprintf(head, sizeof head,
	                  "POST / HTTP/1.1\r\nHost: bench\r\nX-Amz-Target: %s\r\n"
	                  "Content-Type: application/x-amz-json-1.1\r\nContent-Length: %zu\r\n\r\n",
	                  op, n);
	write_all(c->fd, head, (size_t)hl);
	write_all(c->fd, json, n);
	size_t hend = 0, clen = 0;
	for (;;) {
		if (!hend) {
			char *e = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
			if (e) {
				hend = (size_t)(e - c->buf) + 4;
				c->buf[hend - 1] = '\0';
				const char *cl = strcasestr(c->buf, "content-length:");
				clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
			}
		}
		if (hend && c->len >= hend + clen)
			break;
		if (c->len + 4096 > c->cap) {
			c->cap *= 2;
			c->buf = realloc(c->buf, c->cap);
		}
		ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("the server closed the connection");
		c->len += (size_t)r;
	}
	int status = atoi(c->buf + 9);
	/* move the body to the front so it can be NUL-terminated */
	memmove(c->buf, c->buf + hend, clen);
	c->buf[clen] = '\0';
	size_t rest = c->len - hend - clen;
	if (rest)
		die("unexpected pipelined bytes");
	c->len = 0;
	*body = c->buf;
	return status;
}

/* ---- setup: rules and targets --------------------------------------------------------- */

struct setup {
	int port, rules, first, step;
};

static void *
setup_thread(void *arg)
{
	struct setup *s = arg;
	struct conn c;
	conn_open(&c, s->port);
	char req[512];
	const char *body;
	for (int i = s->first; i < s->rules; i += s->step) {
		int n = shared_source
		        ? snprintf(req, sizeof req,
		                   "{\"Name\":\"r%05d\",\"EventPattern\":\"{\\\"source\\\":"
		                   "[\\\"bench\\\"],\\\"detail-type\\\":[\\\"t%05d\\\"]}\"}",
		                   i, i)
		        : snprintf(req, sizeof req,
		                   "{\"Name\":\"r%05d\",\"EventPattern\":\"{\\\"detail-type\\\":"
		                   "[\\\"t%05d\\\"]}\"}",
		                   i, i);
		if (conn_call(&c, "AWSEvents.PutRule", req, (size_t)n, &body) != 200) {
			fprintf(stderr, "PutRule: %s\n", body);
			exit(2);
		}
		n = snprintf(req, sizeof req,
		             "{\"Rule\":\"r%05d\",\"Targets\":[{\"Id\":\"q\",\"Arn\":"
		             "\"arn:aws:sqs:us-east-1:000000000000:bench-%d\"}]}",
		             i, i);
		if (conn_call(&c, "AWSEvents.PutTargets", req, (size_t)n, &body) != 200) {
			fprintf(stderr, "PutTargets: %s\n", body);
			exit(2);
		}
	}
	conn_close(&c);
	return NULL;
}

/* ---- the load ------------------------------------------------------------------------- */

static const char *DETAIL
        = "{\\\"order\\\":%d,\\\"customer\\\":\\\"c-%d\\\",\\\"amount\\\":%d.%02d,"
          "\\\"items\\\":[\\\"sku-1\\\",\\\"sku-2\\\"],\\\"region\\\":"
          "\\\"eu-west\\\",\\\"note\\\":\\\"a benchmark event of a few "
          "hundred bytes\\\"}";

struct load {
	int port, rules, id;
	double stop_at;
	double *lat;
	size_t nlat, cap;
	unsigned long entries, failed, errors;
};

static size_t
build_call(char *out, size_t cap, unsigned *seed, int rules)
{
	size_t n = (size_t)snprintf(out, cap, "{\"Entries\":[");
	for (int i = 0; i < ENTRIES_PER_CALL; i++) {
		int k = (int)(rand_r(seed) % (unsigned)rules), v = (int)(rand_r(seed) % 100000);
		char detail[512];
		snprintf(detail, sizeof detail, DETAIL, v, v % 977, v % 500, v % 100);
		n += (size_t)snprintf(out + n, cap - n,
		                      "%s{\"Source\":\"bench\",\"DetailType\":\"t%05d\",\"Detail\":"
		                      "\"%s\"}",
		                      i ? "," : "", k, detail);
	}
	n += (size_t)snprintf(out + n, cap - n, "]}");
	return n;
}

static void *
load_thread(void *arg)
{
	struct load *l = arg;
	struct conn c;
	conn_open(&c, l->port);
	unsigned seed = (unsigned)l->id * 7919u + 1;
	char req[16384];
	const char *body;
	while (bench_now_s() < l->stop_at) {
		size_t n = build_call(req, sizeof req, &seed, l->rules);
		double t0 = bench_now_s();
		int st = conn_call(&c, "AWSEvents.PutEvents", req, n, &body);
		double dt = bench_now_s() - t0;
		if (st != 200) {
			l->errors++;
			continue;
		}
		const char *f = strstr(body, "\"FailedEntryCount\":");
		unsigned long failed = f ? strtoul(f + 19, NULL, 10) : ENTRIES_PER_CALL;
		l->failed += failed;
		l->entries += ENTRIES_PER_CALL - failed;
		if (l->nlat == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 4096;
			l->lat = realloc(l->lat, l->cap * sizeof *l->lat);
		}
		l->lat[l->nlat++] = dt;
	}
	conn_close(&c);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* ---- in-process routing --------------------------------------------------------------- */

static bool
count_match(void *ctx, uint32_t id, const char *name)
{
	(void)id;
	(void)name;
	(*(unsigned long *)ctx)++;
	return true;
}

static double
routing_rate(int rules, double seconds, unsigned long *matched)
{
	pat_machine_t *m;
	struct sl_error err;
	if (pat_machine_new(&m, &err))
		die("pat_machine_new failed");
	for (int i = 0; i < rules; i++) {
		char name[16], pat[128];
		snprintf(name, sizeof name, "r%05d", i);
		int n = shared_source
		        ? snprintf(pat, sizeof pat,
		                   "{\"source\":[\"bench\"],\"detail-type\":[\"t%05d\"]}", i)
		        : snprintf(pat, sizeof pat, "{\"detail-type\":[\"t%05d\"]}", i);
		if (pat_machine_add_rule(m, name, pat, (size_t)n, NULL, &err))
			die("pat_machine_add_rule failed");
	}
	/* the envelopes the server stores: built once, matched in a loop */
	enum { NEV = 4096 };
	char **ev = malloc(NEV * sizeof *ev);
	size_t *len = malloc(NEV * sizeof *len);
	unsigned seed = 12345;
	for (int i = 0; i < NEV; i++) {
		int k = (int)(rand_r(&seed) % (unsigned)rules), v = (int)(rand_r(&seed) % 100000);
		char buf[1024];
		len[i] = (size_t)snprintf(
		        buf, sizeof buf,
		        "{\"version\":\"0\",\"id\":\"5f0e7b7e-0000-4000-8000-%012d\",\"detail-"
		        "type\":"
		        "\"t%05d\",\"source\":\"bench\",\"account\":\"000000000000\",\"time\":"
		        "\"2026-11-24T12:00:00Z\",\"region\":\"us-east-1\",\"resources\":[],"
		        "\"detail\":{\"order\":%d,\"customer\":\"c-%d\",\"amount\":%d.%02d,"
		        "\"items\":"
		        "[\"sku-1\",\"sku-2\"],\"region\":\"eu-west\",\"note\":\"a benchmark event "
		        "of a few hundred bytes\"}}",
		        i, k, v, v % 977, v % 500, v % 100);
		ev[i] = strdup(buf);
	}
	unsigned long n = 0;
	*matched = 0;
	double t0 = bench_now_s(), t;
	do {
		for (int i = 0; i < NEV; i++)
			if (pat_machine_match(m, ev[i], len[i], count_match, matched, &err))
				die("pat_machine_match failed");
		n += NEV;
		t = bench_now_s();
	} while (t - t0 < seconds);
	for (int i = 0; i < NEV; i++)
		free(ev[i]);
	free(ev);
	free(len);
	pat_machine_free(m);
	return (double)n / (t - t0);
}

/* ---- main ----------------------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	sl_alloc_init();
	double seconds = argc > 1 ? atof(argv[1]) : 5.0;
	int conns = argc > 2 ? atoi(argv[2]) : 16;
	const char *counts = argc > 3 ? argv[3] : "10,1000,10000";
	if (seconds <= 0 || conns < 1 || conns > MAX_CONNS) {
		fprintf(stderr, "usage: bench_bus [SECONDS [CONNS(1-%d) [COUNTS]]]\n", MAX_CONNS);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	const char *shape = getenv("BENCH_BUS_SHAPE");
	shared_source = !(shape && strcmp(shape, "distinct") == 0);
	printf("bench_bus: PutEvents of %d entries over HTTP keep-alive, %d connection(s), %.0f s "
	       "per rule count; delivery records written, deliverer paused\n",
	       ENTRIES_PER_CALL, conns, seconds);
	printf("%8s %10s %12s %10s %10s %8s %14s\n", "rules", "setup s", "entries/s", "p50 ms",
	       "p99 ms", "failed", "routed/s");
	char list[256];
	snprintf(list, sizeof list, "%s", counts);
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int rules = atoi(tok);
		if (rules < 1)
			die("rule counts are whole numbers >= 1");
		struct bench_server srv;
		char limit[32];
		snprintf(limit, sizeof limit, "%d", rules < 300 ? 300 : rules);
		const char *extra[] = { "--rules-per-bus", limit, "--delivery-paused", NULL };
		bench_server_start(&srv, "bench_bus", extra);
		double t0 = bench_now_s();
		pthread_t th[MAX_CONNS];
		struct setup su[SETUP_CONNS];
		for (int i = 0; i < SETUP_CONNS; i++) {
			su[i] = (struct setup) { srv.port, rules, i, SETUP_CONNS };
			pthread_create(&th[i], NULL, setup_thread, &su[i]);
		}
		for (int i = 0; i < SETUP_CONNS; i++)
			pthread_join(th[i], NULL);
		double setup = bench_now_s() - t0;

		struct load *ld = calloc((size_t)conns, sizeof *ld);
		double start = bench_now_s();
		for (int i = 0; i < conns; i++) {
			ld[i] = (struct load) { .port = srv.port,
				                .rules = rules,
				                .id = i,
				                .stop_at = start + seconds };
			pthread_create(&th[i], NULL, load_thread, &ld[i]);
		}
		unsigned long entries = 0, failed = 0, errors = 0;
		size_t nlat = 0;
		for (int i = 0; i < conns; i++) {
			pthread_join(th[i], NULL);
			entries += ld[i].entries;
			failed += ld[i].failed;
			errors += ld[i].errors;
			nlat += ld[i].nlat;
		}
		double elapsed = bench_now_s() - start;
		double *lat = malloc((nlat ? nlat : 1) * sizeof *lat);
		size_t k = 0;
		for (int i = 0; i < conns; i++) {
			memcpy(lat + k, ld[i].lat, ld[i].nlat * sizeof *lat);
			k += ld[i].nlat;
			free(ld[i].lat);
		}
		free(ld);
		qsort(lat, nlat, sizeof *lat, cmp_double);
		double p50 = nlat ? lat[nlat / 2] * 1e3 : 0,
		       p99 = nlat ? lat[nlat * 99 / 100] * 1e3 : 0;
		free(lat);
		bench_server_stop(&srv);
		unsigned long matched;
		double routed = routing_rate(rules, 1.0, &matched);
		printf("%8d %10.1f %12.0f %10.2f %10.2f %8lu %14.0f\n", rules, setup,
		       (double)entries / elapsed, p50, p99, failed + errors * ENTRIES_PER_CALL,
		       routed);
		fflush(stdout);
	}
	printf("command: %sbench_bus %.0f %d %s (SLUICE_BIN=%s)\n",
	       shared_source ? "" : "BENCH_BUS_SHAPE=distinct ", seconds, conns, counts,
	       getenv("SLUICE_BIN") ? getenv("SLUICE_BIN") : SLUICE_BIN_DEFAULT);
	return 0;
}
