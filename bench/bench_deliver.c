/*
 * bench_deliver.c - event deliveries through a real `sluice serve`:
 *
 *   webhook  N events (PutEvents of 10 entries over one keep-alive connection) matching one
 *            rule with an http:// target served by a receiver thread in this process
 *            (HTTP/1.1 keep-alive, honours Connection headers, answers 204; prints the
 *            connections it accepted); the figure is deliveries/s from the
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
#include <strings.h>
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

/* One POST; dies unless the answer is 200 and contains want (may be NULL). */
static void
call(struct bench_conn *c, const char *target, const char *json, const char *want)
{
	bench_call(c, "bench_deliver", target, json, want);
}

/* N events, ENTRIES_PER_CALL per call; returns the seconds taken. */
static double
put_events(struct bench_conn *c, int n)
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
static atomic_int rx_count, rx_accepted;
static atomic_bool rx_stop;

#define RX_CONNS 256

struct rx_conn {
	int fd;
	size_t len;
	char buf[8192];
};

/* Answers every complete request in rc's buffer; false when the connection is to close
 * (the client asked for it, HTTP/1.0 without keep-alive, or a request too large). */
static bool
rx_serve(struct rx_conn *rc)
{
	static const char keep[] = "HTTP/1.1 204 No Content\r\n\r\n";
	static const char bye[] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
	for (;;) {
		rc->buf[rc->len] = '\0';
		char *e = strstr(rc->buf, "\r\n\r\n");
		if (!e)
			return rc->len + 1 < sizeof rc->buf;
		*e = '\0'; /* headers only, for the searches below */
		const char *cl = strcasestr(rc->buf, "\r\ncontent-length:");
		const char *conn = strcasestr(rc->buf, "\r\nconnection:");
		bool http10 = strstr(rc->buf, " HTTP/1.0\r\n") != NULL;
		bool close_it = conn ? strncasecmp(conn + 13, " close", 6) == 0
		                || strncasecmp(conn + 13, "close", 5) == 0
		                     : http10;
		if (conn && http10 && strcasestr(conn, "keep-alive") == NULL)
			close_it = true;
		size_t want = (size_t)(e - rc->buf) + 4 + (cl ? strtoul(cl + 17, NULL, 10) : 0);
		*e = '\r';
		if (want >= sizeof rc->buf)
			return false;
		if (rc->len < want)
			return true;
		const char *ans = close_it ? bye : keep;
		size_t n = close_it ? sizeof bye - 1 : sizeof keep - 1;
		if (write(rc->fd, ans, n) != (ssize_t)n)
			return false;
		atomic_fetch_add(&rx_count, 1);
		if (close_it)
			return false;
		memmove(rc->buf, rc->buf + want, rc->len - want);
		rc->len -= want;
	}
}

/* A keep-alive HTTP/1.1 receiver: every request answered 204, connections kept open
 * unless a Connection header (or HTTP/1.0) says otherwise. */
static void *
receiver(void *arg)
{
	(void)arg;
	static struct rx_conn conns[RX_CONNS];
	struct pollfd p[RX_CONNS + 1];
	size_t n = 0;
	while (!atomic_load(&rx_stop)) {
		p[0] = (struct pollfd) { rx_fd, n < RX_CONNS ? POLLIN : 0, 0 };
		for (size_t i = 0; i < n; i++)
			p[i + 1] = (struct pollfd) { conns[i].fd, POLLIN, 0 };
		if (poll(p, n + 1, 100) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			int c = accept(rx_fd, NULL, NULL);
			if (c >= 0) {
				atomic_fetch_add(&rx_accepted, 1);
				conns[n].fd = c;
				conns[n++].len = 0;
			}
		}
		for (size_t i = n; i-- > 0;) {
			if (i + 1 >= (size_t)(sizeof p / sizeof p[0]) || !p[i + 1].revents
			    || p[i + 1].fd != conns[i].fd)
				continue;
			struct rx_conn *rc = &conns[i];
			ssize_t r = read(rc->fd, rc->buf + rc->len, sizeof rc->buf - 1 - rc->len);
			if (r > 0)
				rc->len += (size_t)r;
			if (r <= 0 || !rx_serve(rc)) {
				close(rc->fd);
				conns[i] = conns[--n];
			}
		}
	}
	for (size_t i = 0; i < n; i++)
		close(conns[i].fd);
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
	struct bench_conn c;

	/* webhook */
	pthread_t th;
	int port = receiver_start(&th);
	bench_server_start(&s, "bench_deliver", NULL);
	bench_conn_open(&c, "bench_deliver", s.port);
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
	       "%.0f entries/s; %d connections accepted by the keep-alive receiver)\n",
	       got, all, got / all, n / put, atomic_load(&rx_accepted));
	close(c.fd);
	bench_server_stop(&s);
	atomic_store(&rx_stop, true);
	pthread_join(th, NULL);
	close(rx_fd);

	/* state machine */
	bench_server_start(&s, "bench_deliver", NULL);
	bench_conn_open(&c, "bench_deliver", s.port);
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
