/*
 * bench_deliver.c - event deliveries through a real `sluice serve`:
 *
 *   webhook  N events (PutEvents of 10 entries over one keep-alive connection) matching one
 *            rule with an http:// target served by a receiver thread in this process (one
 *            connection per request, answers 204); the figure is deliveries/s from the
 *            first PutEvents to the N-th request received, and the PutEvents entries/s
 *            meanwhile.
 *   machine  N events matching a rule whose target is a Pass state machine: each accepted
 *            event starts its execution in the event's batch; the figure is PutEvents
 *            entries/s (each one an event, its log record and a started execution, durable
 *            before the answer).
 *
 * usage: bench_deliver [N]   (default 20000). The server binary is $SLUICE_BIN, else the
 * build tree's cli/sluice. Not run in CI.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_server.h"

#define ENTRIES_PER_CALL 10

static void
die(const char *what)
{
	bench_die("bench_deliver", what);
}

/* ---- the server ----------------------------------------------------------------------- */

/* ---- a keep-alive HTTP client --------------------------------------------------------- */

struct conn {
	int fd;
	char buf[1 << 16];
	size_t len;
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
	c->len = 0;
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

/* One POST; dies unless the answer is 200 and contains want (may be NULL). */
static void
call(struct conn *c, const char *target, const char *json, const char *want)
{
	bool sfn = strncmp(target, "AWSStepFunctions.", 17) == 0;
	char head[256];
	int hl = snprintf(
	        head, sizeof head,
	        "POST / HTTP/1.1\r\nHost: bench\r\nX-Amz-Target: %s\r\n"
	        "Content-Type: application/x-amz-json-1.%d\r\nContent-Length: %zu\r\n\r\n",
	        target, sfn ? 0 : 1, strlen(json));
	write_all(c->fd, head, (size_t)hl);
	write_all(c->fd, json, strlen(json));
	size_t hend = 0, clen = 0;
	for (;;) {
		char *e = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
		if (e && !hend) {
			hend = (size_t)(e - c->buf) + 4;
			const char *cl = strcasestr(c->buf, "content-length:");
			clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
		}
		if (hend && c->len >= hend + clen)
			break;
		if (c->len + 1 >= sizeof c->buf)
			die("answer too large");
		ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("the server closed the connection");
		c->len += (size_t)r;
		c->buf[c->len] = '\0';
	}
	c->buf[hend + clen < sizeof c->buf ? hend + clen : sizeof c->buf - 1] = '\0';
	if (atoi(c->buf + 9) != 200 || (want && !strstr(c->buf + hend, want))) {
		fprintf(stderr, "bench_deliver: %s answered: %s\n", target, c->buf);
		exit(2);
	}
	if (c->len != hend + clen)
		die("unexpected pipelined bytes");
	c->len = 0;
}

/* N events, ENTRIES_PER_CALL per call; returns the seconds taken. */
static double
put_events(struct conn *c, int n)
{
	char body[4096];
	double t0 = bench_now_s();
	for (int i = 0; i < n; i += ENTRIES_PER_CALL) {
		size_t len = (size_t)snprintf(body, sizeof body, "{\"Entries\":[");
		for (int k = 0; k < ENTRIES_PER_CALL && i + k < n; k++)
			len += (size_t)snprintf(body + len, sizeof body - len,
			                        "%s{\"Source\":\"bench\",\"DetailType\":\"t\","
			                        "\"Detail\":\"{\\\"n\\\":%d}\"}",
			                        k ? "," : "", i + k);
		snprintf(body + len, sizeof body - len, "]}");
		call(c, "AWSEvents.PutEvents", body, "\"FailedEntryCount\":0");
	}
	return bench_now_s() - t0;
}

/* ---- the webhook receiver ------------------------------------------------------------- */

static int rx_fd;
static atomic_int rx_count;
static atomic_bool rx_stop;

static void *
receiver(void *arg)
{
	(void)arg;
	char buf[8192];
	static const char ans[] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
	while (!atomic_load(&rx_stop)) {
		struct pollfd p = { rx_fd, POLLIN, 0 };
		if (poll(&p, 1, 100) != 1)
			continue;
		int c = accept(rx_fd, NULL, NULL);
		if (c < 0)
			continue;
		size_t len = 0, want = 0;
		for (;;) {
			ssize_t r = read(c, buf + len, sizeof buf - 1 - len);
			if (r <= 0)
				break;
			len += (size_t)r;
			buf[len] = '\0';
			char *e = strstr(buf, "\r\n\r\n");
			if (e && !want) {
				const char *cl = strcasestr(buf, "content-length:");
				want = (size_t)(e - buf) + 4
				        + (cl ? strtoul(cl + 15, NULL, 10) : 0);
			}
			if (want && len >= want)
				break;
		}
		if (want && len >= want && write(c, ans, sizeof ans - 1) > 0)
			atomic_fetch_add(&rx_count, 1);
		close(c);
	}
	return NULL;
}

static int
receiver_start(pthread_t *th)
{
	rx_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	if (bind(rx_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(rx_fd, 512) != 0
	    || getsockname(rx_fd, (struct sockaddr *)&a, &al) != 0)
		die("cannot listen for webhooks");
	if (pthread_create(th, NULL, receiver, NULL) != 0)
		die("pthread_create failed");
	return ntohs(a.sin_port);
}

int
main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20000;
	if (n < ENTRIES_PER_CALL)
		die("usage: bench_deliver [N >= 10]");
	char body[1024];
	struct bench_server s;
	struct conn c;

	/* webhook */
	pthread_t th;
	int port = receiver_start(&th);
	bench_server_start(&s, "bench_deliver", NULL);
	conn_open(&c, s.port);
	call(&c, "AWSEvents.PutRule",
	     "{\"Name\":\"r\",\"EventPattern\":\"{\\\"source\\\":[\\\"bench\\\"]}\"}", NULL);
	snprintf(body, sizeof body,
	         "{\"Rule\":\"r\",\"Targets\":[{\"Id\":\"hook\",\"Arn\":\"http://127.0.0.1:%d/\","
	         "\"InputPath\":\"$.detail\"}]}",
	         port);
	call(&c, "AWSEvents.PutTargets", body, "\"FailedEntryCount\":0");
	double t0 = bench_now_s();
	double put = put_events(&c, n);
	while (atomic_load(&rx_count) < n && bench_now_s() - t0 < 600)
		usleep(1000);
	double all = bench_now_s() - t0;
	int got = atomic_load(&rx_count);
	printf("webhook: %d deliveries in %.2f s = %.0f deliveries/s (PutEvents meanwhile: "
	       "%.0f entries/s)\n",
	       got, all, got / all, n / put);
	close(c.fd);
	bench_server_stop(&s);
	atomic_store(&rx_stop, true);
	pthread_join(th, NULL);
	close(rx_fd);

	/* state machine */
	bench_server_start(&s, "bench_deliver", NULL);
	conn_open(&c, s.port);
	call(&c, "AWSStepFunctions.CreateStateMachine",
	     "{\"name\":\"m\",\"roleArn\":\"arn:aws:iam::000000000000:role/r\",\"definition\":"
	     "\"{\\\"StartAt\\\":\\\"P\\\",\\\"States\\\":{\\\"P\\\":{\\\"Type\\\":\\\"Pass\\\","
	     "\\\"End\\\":true}}}\"}",
	     NULL);
	call(&c, "AWSEvents.PutRule",
	     "{\"Name\":\"r\",\"EventPattern\":\"{\\\"source\\\":[\\\"bench\\\"]}\"}", NULL);
	call(&c, "AWSEvents.PutTargets",
	     "{\"Rule\":\"r\",\"Targets\":[{\"Id\":\"sm\",\"Arn\":"
	     "\"arn:aws:states:us-east-1:000000000000:stateMachine:m\",\"InputPath\":"
	     "\"$.detail\"}]}",
	     "\"FailedEntryCount\":0");
	put = put_events(&c, n);
	printf("machine: %d events, each starting one execution in its batch, in %.2f s = %.0f "
	       "entries/s (one connection, %d entries per call)\n",
	       n, put, n / put, ENTRIES_PER_CALL);
	close(c.fd);
	bench_server_stop(&s);
	return 0;
}
