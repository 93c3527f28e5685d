/*
 * test_deliveries.c - event deliveries through the real `sluice serve`: webhooks (a receiver
 * thread in the test answers programmed statuses), retries, dead letters and the
 * `sluice dead-letters` command, state machine targets, bus-to-bus targets, and a SIGKILL
 * during a stream of PutEvents (every acknowledged event starts exactly one execution).
 *
 * Every wait is bounded (a hang guard, never a timing assertion).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define AWS_CALLS_SERVICE "AWSEvents"
#include "tests/integration/aws_calls.h"

#define ACCOUNT_ARN(svc, rest) "arn:aws:" svc ":us-east-1:000000000000:" rest
#define ROLE                   ACCOUNT_ARN("iam", "role/r")
#define WAIT_MS                30000

static void
nap(void)
{
	usleep(20 * 1000);
}

/* ---- the webhook receiver --------------------------------------------------------------- */

#define RECV_MAX 4096

struct recv_req {
	char *path, *head, *body;
};

struct receiver {
	int fd, port;
	pthread_t th;
	pthread_mutex_t mu;
	int program[64]; /* statuses to answer, in order; then dflt */
	int n_program, next_program, dflt;
	struct recv_req reqs[RECV_MAX];
	int n;
	atomic_bool stop;
	atomic_int closed; /* connections finished with */
	SSL_CTX *tls;      /* set: the receiver speaks https */
	/* keep-alive mode: answers without Connection: close and reads the next request on
	 * the same connection, closing it after idle_ms without one */
	bool keepalive;
	int idle_ms;
	atomic_int accepted;      /* connections accepted */
	atomic_int most_per_conn; /* the most requests one connection carried */
};

static struct receiver rx;

/* One read, through TLS when ssl is set (the socket has a receive time-out). */
static ssize_t
io_read(int fd, SSL *ssl, char *buf, size_t n)
{
	if (!ssl)
		return read(fd, buf, n);
	int k = SSL_read(ssl, buf, (int)n);
	return k > 0 ? k : -1;
}

/* Reads one request from fd: head and Content-Length body. */
static bool
read_request(int fd, SSL *ssl, struct recv_req *out)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 1);
	char *end = NULL;
	while (!end) {
		if (len == cap)
			goto fail;
		ssize_t k = io_read(fd, ssl, buf + len, cap - len);
		if (k <= 0)
			goto fail;
		len += (size_t)k;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	size_t head_len = (size_t)(end - buf) + 4, body_len = 0;
	for (char *l = buf; l && l < end; l = strstr(l, "\r\n") ? strstr(l, "\r\n") + 2 : NULL)
		if (strncasecmp(l, "Content-Length:", 15) == 0)
			body_len = strtoul(l + 15, NULL, 10);
	if (body_len > cap - head_len)
		goto fail;
	while (len < head_len + body_len) {
		ssize_t k = io_read(fd, ssl, buf + len, head_len + body_len - len);
		if (k <= 0)
			goto fail;
		len += (size_t)k;
	}
	out->head = strndup(buf, head_len);
	out->body = strndup(buf + head_len, body_len);
	char *sp = strchr(buf, ' '), *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
	out->path = sp && sp2 ? strndup(sp + 1, (size_t)(sp2 - sp - 1)) : strdup("?");
	free(buf);
	return true;
fail:
	free(buf);
	return false;
}

static void *
receiver_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&rx.stop)) {
		struct pollfd p = { rx.fd, POLLIN, 0 };
		if (poll(&p, 1, 100) != 1)
			continue;
		int c = accept(rx.fd, NULL, NULL);
		if (c < 0)
			continue;
		atomic_fetch_add(&rx.accepted, 1);
		struct timeval tmo = { 5, 0 };
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
		SSL *ssl = NULL;
		if (rx.tls) {
			ssl = SSL_new(rx.tls);
			SSL_set_fd(ssl, c);
			if (SSL_accept(ssl) != 1) {
				/* the client refused our certificate (or spoke no TLS) */
				SSL_free(ssl);
				close(c);
				atomic_fetch_add(&rx.closed, 1);
				continue;
			}
		}
		struct recv_req r;
		int on_this = 0;
	next_request:
		if (read_request(c, ssl, &r)) {
			if (++on_this > atomic_load(&rx.most_per_conn))
				atomic_store(&rx.most_per_conn, on_this);
			pthread_mutex_lock(&rx.mu);
			int status = rx.next_program < rx.n_program ? rx.program[rx.next_program++]
			                                            : rx.dflt;
			if (rx.n < RECV_MAX)
				rx.reqs[rx.n++] = r;
			pthread_mutex_unlock(&rx.mu);
			if (status <= 0) {
				/* -1: answer nothing for a while (a time-out); 0: hang up */
				if (status < 0)
					usleep(1500 * 1000);
				SSL_free(ssl);
				close(c);
				atomic_fetch_add(&rx.closed, 1);
				continue;
			}
			char resp[160];
			int n = snprintf(resp, sizeof resp,
			                 "HTTP/1.1 %d Programmed\r\nContent-Length: 0\r\n%s\r\n",
			                 status, rx.keepalive ? "" : "Connection: close\r\n");
			if ((ssl ? SSL_write(ssl, resp, n) : (int)write(c, resp, (size_t)n)) < 0) {
				/* the server gave up (time-out): it counts as a failure there */
			} else if (rx.keepalive && !atomic_load(&rx.stop)) {
				/* the next request, until idle_ms pass without one, or EOF */
				tmo = (struct timeval) { rx.idle_ms / 1000,
					                 (rx.idle_ms % 1000) * 1000 };
				setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
				goto next_request;
			}
		}
		if (ssl)
			SSL_shutdown(ssl);
		SSL_free(ssl);
		close(c);
	}
	return NULL;
}

static void
receiver_start(int dflt)
{
	memset(&rx, 0, sizeof rx);
	pthread_mutex_init(&rx.mu, NULL);
	rx.dflt = dflt;
	rx.fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(rx.fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(rx.fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(rx.fd, 64), 0);
	socklen_t al = sizeof a;
	getsockname(rx.fd, (struct sockaddr *)&a, &al);
	rx.port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&rx.th, NULL, receiver_main, NULL), 0);
}

static void
receiver_stop(void)
{
	atomic_store(&rx.stop, true);
	pthread_join(rx.th, NULL);
	close(rx.fd);
	for (int i = 0; i < rx.n; i++) {
		free(rx.reqs[i].path);
		free(rx.reqs[i].head);
		free(rx.reqs[i].body);
	}
	pthread_mutex_destroy(&rx.mu);
	SSL_CTX_free(rx.tls);
}

static void
receiver_program(const int *statuses, int n, int dflt)
{
	pthread_mutex_lock(&rx.mu);
	for (int i = 0; i < n; i++)
		rx.program[rx.n_program++] = statuses[i];
	rx.dflt = dflt;
	pthread_mutex_unlock(&rx.mu);
}

static int
receiver_count(void)
{
	pthread_mutex_lock(&rx.mu);
	int n = rx.n;
	pthread_mutex_unlock(&rx.mu);
	return n;
}

static void
wait_requests(int n)
{
	for (int i = 0; i < WAIT_MS / 20 && receiver_count() < n; i++)
		nap();
	cr_assert_geq(receiver_count(), n, "the receiver got %d request(s), expected %d",
	              receiver_count(), n);
}

static void
hook_url(char *out, size_t cap, const char *path)
{
	snprintf(out, cap, "%s://127.0.0.1:%d%s", rx.tls ? "https" : "http", rx.port, path);
}

/* Makes the receiver speak TLS with a fresh self-signed certificate for 127.0.0.1 (in
 * dir/cert.pem); call before receiver_start's thread accepts (right after it). */
static void
receiver_tls(const char *dir)
{
	char cmd[1024], *out = NULL;
	snprintf(cmd, sizeof cmd,
	         "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/key.pem -out %s/cert.pem "
	         "-days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>&1",
	         dir, dir);
	int rc = h_run(cmd, &out);
	cr_assert_eq(rc, 0, "openssl req: %s", out);
	free(out);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char path[600];
	snprintf(path, sizeof path, "%s/cert.pem", dir);
	cr_assert_eq(SSL_CTX_use_certificate_file(ctx, path, SSL_FILETYPE_PEM), 1);
	snprintf(path, sizeof path, "%s/key.pem", dir);
	cr_assert_eq(SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM), 1);
	rx.tls = ctx;
}

/* ---- calls ------------------------------------------------------------------------------ */

/* The value of a /metrics sample line, or -1. */
static long long
metric(const char *sample)
{
	struct h_response r;
	if (!h_request(srv.http_port, "GET", "/metrics", NULL, NULL, 0, &r))
		return -1;
	long long v = -1;
	// a sample starts a line: the "# HELP name ..." line names it too and would read as 0
	size_t n = strlen(sample);
	for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, sample, n) == 0) {
			v = strtoll(p + n, NULL, 10);
			break;
		}
	h_response_free(&r);
	return v;
}

static void
wait_metric(const char *sample, long long want)
{
	long long v = -1;
	for (int i = 0; i < WAIT_MS / 20 && (v = metric(sample)) < want; i++)
		nap();
	cr_assert_geq(v, want, "%s is %lld, expected %lld", sample, v, want);
}

static json_t *
entry(const char *bus, const char *source, const char *detail)
{
	json_t *e = json_pack("{s:s,s:s,s:s}", "Source", source, "DetailType", "Test", "Detail",
	                      detail);
	if (bus)
		json_object_set_new(e, "EventBusName", json_string(bus));
	return e;
}

static void
put_event(const char *bus, const char *source, const char *detail)
{
	json_t *j = ok("PutEvents", json_pack("{s:[o]}", "Entries", entry(bus, source, detail)));
	cr_assert_eq(json_integer_value(json_object_get(j, "FailedEntryCount")), 0);
	json_decref(j);
}

static void
put_targets(const char *rule, json_t *targets)
{
	json_t *j = ok("PutTargets", json_pack("{s:s,s:o}", "Rule", rule, "Targets", targets));
	cr_assert_eq(json_integer_value(json_object_get(j, "FailedEntryCount")), 0, "%s",
	             json_dumps(j, 0));
	json_decref(j);
}

static void
start_fast(const char *const *more)
{
	const char *args[16] = { "--delivery-backoff-ms", "20",  "--delivery-backoff-cap-ms", "100",
		                 "--delivery-timeout-ms", "5000" };
	size_t n = 6;
	for (size_t i = 0; more && more[i] && n < 15; i++)
		args[n++] = more[i];
	args[n] = NULL;
	cr_assert(h_start(&srv, args), "server did not start");
}

static char *
sluice_cli(int expect, const char *args)
{
	const char *bin = getenv("SLUICE_BIN");
	cr_assert_not_null(bin, "SLUICE_BIN is not set");
	char cmd[1024], *out = NULL;
	snprintf(cmd, sizeof cmd, "%s dead-letters --endpoint http://127.0.0.1:%d %s 2>&1", bin,
	         srv.http_port, args);
	int rc = h_run(cmd, &out);
	cr_assert_eq(rc, expect, "sluice dead-letters %s: %d %s", args, rc, out);
	return out;
}

/* ---- tests ------------------------------------------------------------------------------ */

TestSuite(deliveries, .timeout = 240);

Test(deliveries, webhook_gets_the_transformed_input_once)
{
	receiver_start(200);
	start_fast(NULL);
	char url[128];
	hook_url(url, sizeof url, "/orders?x=1");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "r", "EventPattern", "{\"source\":[\"shop\"]}")));
	fails("PutTargets",
	      json_pack("{s:s,s:[{s:s,s:s,s:{s:{s:s}}}]}", "Rule", "r", "Targets", "Id", "hook",
	                "Arn", url, "HttpParameters", "HeaderParameters", "Bad Name", "x"),
	      "ValidationException", "HttpParameters.HeaderParameters: 'Bad Name'");
	put_targets("r",
	            json_pack("[{s:s,s:s,s:{s:{s:s,s:s},s:s},s:{s:{s:s,s:s},s:{s:s}}}]", "Id",
	                      "hook", "Arn", url, "InputTransformer", "InputPathsMap", "total",
	                      "$.detail.total", "city", "$.detail.city", "InputTemplate",
	                      "{\"sum\": <total>, \"where\": \"<city>\", \"rule\": "
	                      "<aws.events.rule-name>}",
	                      "HttpParameters", "HeaderParameters", "Authorization", "Bearer t0k",
	                      "Content-Type", "text/plain", "QueryStringParameters", "who",
	                      "a b&c"));
	put_event(NULL, "shop", "{\"total\": 12.50, \"city\": \"Oslo\"}");
	put_event(NULL, "elsewhere", "{\"total\": 1}");
	wait_requests(1);
	wait_metric("sluice_deliveries_total{outcome=\"delivered\"} ", 1);
	cr_assert_eq(metric("sluice_deliveries_inflight "), 0);
	cr_assert_eq(receiver_count(), 1);
	cr_assert_str_eq(rx.reqs[0].path, "/orders?x=1&who=a%20b%26c");
	cr_assert(strstr(rx.reqs[0].head, "Authorization: Bearer t0k"), "%s", rx.reqs[0].head);
	cr_assert_str_eq(rx.reqs[0].body, "{\"sum\": 12.50, \"where\": \"Oslo\", \"rule\": \"r\"}");
	cr_assert(strcasestr(rx.reqs[0].head, "Content-Type: application/json"), "%s",
	          rx.reqs[0].head);
	cr_assert(strstr(rx.reqs[0].head, "X-Sluice-Attempt: 1"), "%s", rx.reqs[0].head);
	stop();
	receiver_stop();
}

Test(deliveries, failed_webhook_retried_until_it_answers)
{
	receiver_start(200);
	int statuses[] = { 500, 503 };
	receiver_program(statuses, 2, 200);
	start_fast(NULL);
	char url[128];
	hook_url(url, sizeof url, "/hook");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "r", "EventPattern", "{\"source\":[\"shop\"]}")));
	put_targets(
	        "r",
	        json_pack("[{s:s,s:s,s:s}]", "Id", "hook", "Arn", url, "InputPath", "$.detail"));
	put_event(NULL, "shop", "{\"n\": 1}");
	wait_requests(3);
	wait_metric("sluice_deliveries_total{outcome=\"delivered\"} ", 1);
	cr_assert_eq(metric("sluice_deliveries_total{outcome=\"retried\"} "), 2);
	cr_assert_eq(metric("sluice_deliveries_total{outcome=\"dead_lettered\"} "), 0);
	cr_assert_eq(receiver_count(), 3);
	for (int i = 0; i < 3; i++) {
		char want[64];
		snprintf(want, sizeof want, "X-Sluice-Attempt: %d", i + 1);
		cr_assert_str_eq(rx.reqs[i].body, "{\"n\":1}");
		cr_assert(strstr(rx.reqs[i].head, want), "%s", rx.reqs[i].head);
	}
	stop();
	receiver_stop();
}

Test(deliveries, dead_letters_listed_redriven_and_purged)
{
	receiver_start(500);
	start_fast(NULL);
	char url[128];
	hook_url(url, sizeof url, "/dl");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "r", "EventPattern", "{\"source\":[\"shop\"]}")));
	put_targets("r",
	            json_pack("[{s:s,s:s,s:{s:i},s:{s:s}}]", "Id", "hook", "Arn", url,
	                      "RetryPolicy", "MaximumRetryAttempts", 1, "DeadLetterConfig", "Arn",
	                      ACCOUNT_ARN("sqs", "dlq")));
	/* a target kind sluice cannot invoke goes to its dead letters without retries */
	json_decref(ok(
	        "PutRule",
	        json_pack("{s:s,s:s}", "Name", "r2", "EventPattern", "{\"source\":[\"shop\"]}")));
	put_targets("r2",
	            json_pack("[{s:s,s:s,s:{s:s}}]", "Id", "q", "Arn", ACCOUNT_ARN("sqs", "orders"),
	                      "DeadLetterConfig", "Arn", ACCOUNT_ARN("sqs", "dlq")));
	put_event(NULL, "shop", "{\"order\": 7}");
	wait_requests(2);
	wait_metric("sluice_deliveries_total{outcome=\"dead_lettered\"} ", 2);
	cr_assert_eq(receiver_count(), 2);

	json_t *list = ok_target("SluiceEvents.ListDeadLetters", json_pack("{s:s}", "Rule", "r"));
	json_t *dls = json_object_get(list, "DeadLetters");
	cr_assert_eq(json_array_size(dls), 1, "%s", json_dumps(list, 0));
	json_t *d0 = json_array_get(dls, 0);
	char id[64];
	snprintf(id, sizeof id, "%s", s(d0, "Id"));
	cr_assert_str_eq(s(d0, "TargetId"), "hook");
	cr_assert_str_eq(s(d0, "ErrorCode"), "HTTP_ERROR");
	cr_assert_eq(json_integer_value(json_object_get(d0, "Attempts")), 2);
	json_decref(list);

	json_t *dl = ok_target("SluiceEvents.GetDeadLetter", json_pack("{s:s}", "Id", id));
	json_t *at = json_object_get(dl, "Attributes");
	cr_assert_str_eq(s(at, "RULE_ARN"), ACCOUNT_ARN("events", "rule/r"));
	cr_assert_str_eq(s(at, "TARGET_ARN"), url);
	cr_assert_str_eq(s(at, "ERROR_CODE"), "HTTP_ERROR");
	cr_assert_str_eq(s(at, "ERROR_MESSAGE"), "HTTP status 500");
	cr_assert_str_eq(s(at, "EXHAUSTED_RETRY_CONDITION"), "MaximumRetryAttempts");
	cr_assert_str_eq(s(at, "RETRY_ATTEMPTS"), "1");
	cr_assert_str_eq(s(dl, "DeadLetterArn"), ACCOUNT_ARN("sqs", "dlq"));
	cr_assert(strstr(s(dl, "Event"), "\"order\": 7"), "%s", s(dl, "Event"));
	json_decref(dl);

	list = ok_target("SluiceEvents.ListDeadLetters", json_pack("{s:s}", "Rule", "r2"));
	d0 = json_array_get(json_object_get(list, "DeadLetters"), 0);
	cr_assert_str_eq(s(d0, "ErrorCode"), "UNSUPPORTED_TARGET");
	cr_assert_eq(json_integer_value(json_object_get(d0, "Attempts")), 1);
	json_decref(list);

	char *out = sluice_cli(0, "list");
	cr_assert(strstr(out, id), "%s", out);
	cr_assert(strstr(out, "UNSUPPORTED_TARGET"), "%s", out);
	free(out);
	out = sluice_cli(2, "show nope");
	free(out);
	out = sluice_cli(2, "show 00000000-0000-0000-0000-000000000000");
	cr_assert(strstr(out, "does not exist"), "%s", out);
	free(out);

	/* a 404 is not retried: straight to the dead letters, whatever the policy says */
	receiver_program((int[]) { 404 }, 1, 500);
	char url404[128];
	hook_url(url404, sizeof url404, "/gone");
	json_decref(ok(
	        "PutRule",
	        json_pack("{s:s,s:s}", "Name", "r404", "EventPattern", "{\"source\":[\"gone\"]}")));
	put_targets("r404",
	            json_pack("[{s:s,s:s,s:{s:i},s:{s:s}}]", "Id", "hook", "Arn", url404,
	                      "RetryPolicy", "MaximumRetryAttempts", 5, "DeadLetterConfig", "Arn",
	                      ACCOUNT_ARN("sqs", "dlq")));
	put_event(NULL, "gone", "{}");
	wait_metric("sluice_deliveries_total{outcome=\"dead_lettered\"} ", 3);
	cr_assert_eq(receiver_count(), 3);
	list = ok_target("SluiceEvents.ListDeadLetters", json_pack("{s:s}", "Rule", "r404"));
	d0 = json_array_get(json_object_get(list, "DeadLetters"), 0);
	cr_assert_str_eq(s(d0, "ErrorMessage"), "HTTP status 404");
	cr_assert_eq(json_integer_value(json_object_get(d0, "Attempts")), 1);
	dl = ok_target("SluiceEvents.GetDeadLetter", json_pack("{s:s}", "Id", s(d0, "Id")));
	cr_assert_null(
	        json_object_get(json_object_get(dl, "Attributes"), "EXHAUSTED_RETRY_CONDITION"));
	json_decref(dl);
	json_decref(list);
	out = sluice_cli(0, "purge --rule r404");
	free(out);

	/* the receiver works now: a redrive delivers on the first attempt */
	receiver_program(NULL, 0, 200);
	char args[128];
	snprintf(args, sizeof args, "redrive %s", id);
	out = sluice_cli(0, args);
	cr_assert(strstr(out, "redriven 1"), "%s", out);
	free(out);
	wait_requests(4);
	wait_metric("sluice_deliveries_total{outcome=\"delivered\"} ", 1);
	cr_assert_str_eq(rx.reqs[3].path, "/dl");
	cr_assert(strstr(rx.reqs[3].head, "X-Sluice-Attempt: 1"), "%s", rx.reqs[3].head);
	out = sluice_cli(0, "list --json");
	cr_assert(!strstr(out, id), "%s", out);
	free(out);

	out = sluice_cli(0, "purge --rule r2");
	cr_assert(strstr(out, "purged 1"), "%s", out);
	free(out);
	list = ok_target("SluiceEvents.ListDeadLetters", json_object());
	cr_assert_eq(json_array_size(json_object_get(list, "DeadLetters")), 0);
	json_decref(list);
	stop();
	receiver_stop();
}

Test(deliveries, dead_letters_paged_and_bulk_purged)
{
	start_fast(NULL);
	json_decref(ok("CreateEventBus", json_pack("{s:s}", "Name", "b2")));
	const char *buses[] = { "default", "b2" };
	for (int i = 0; i < 2; i++) {
		json_decref(ok("PutRule",
		               json_pack("{s:s,s:s,s:s}", "Name", "q", "EventBusName", buses[i],
		                         "EventPattern", "{\"source\":[\"shop\"]}")));
		json_decref(ok("PutTargets",
		               json_pack("{s:s,s:s,s:[{s:s,s:s,s:{s:s}}]}", "Rule", "q",
		                         "EventBusName", buses[i], "Targets", "Id", "q", "Arn",
		                         ACCOUNT_ARN("sqs", "orders"), "DeadLetterConfig", "Arn",
		                         ACCOUNT_ARN("sqs", "dlq"))));
	}
	for (int i = 0; i < 3; i++)
		put_event(NULL, "shop", "{}");
	put_event("b2", "shop", "{}");
	wait_metric("sluice_deliveries_total{outcome=\"dead_lettered\"} ", 4);
	json_t *p1 = ok_target("SluiceEvents.ListDeadLetters",
	                       json_pack("{s:s,s:i}", "EventBusName", "default", "MaxResults", 2));
	cr_assert_eq(json_array_size(json_object_get(p1, "DeadLetters")), 2);
	cr_assert_not_null(s(p1, "NextToken"));
	json_t *p2 = ok_target("SluiceEvents.ListDeadLetters",
	                       json_pack("{s:s,s:i,s:s}", "EventBusName", "default", "MaxResults",
	                                 2, "NextToken", s(p1, "NextToken")));
	json_t *d2 = json_object_get(p2, "DeadLetters");
	cr_assert_eq(json_array_size(d2), 1);
	cr_assert_null(s(p2, "NextToken"));
	for (size_t i = 0; i < 2; i++)
		cr_assert_str_neq(s(json_array_get(json_object_get(p1, "DeadLetters"), i), "Id"),
		                  s(json_array_get(d2, 0), "Id"));
	json_decref(p1);
	json_decref(p2);
	json_t *j = ok_target("SluiceEvents.PurgeDeadLetters",
	                      json_pack("{s:s,s:[s]}", "EventBusName", "b2", "Ids", "nope"));
	cr_assert_eq(json_integer_value(json_object_get(j, "Purged")), 0);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "NotFound"), 0)),
	                 "nope");
	json_decref(j);
	j = ok_target("SluiceEvents.PurgeDeadLetters", json_pack("{s:s}", "EventBusName", "b2"));
	cr_assert_eq(json_integer_value(json_object_get(j, "Purged")), 1);
	json_decref(j);
	j = ok_target("SluiceEvents.PurgeDeadLetters", json_object());
	cr_assert_eq(json_integer_value(json_object_get(j, "Purged")), 3);
	json_decref(j);
	stop();
}

Test(deliveries, retry_policy_and_new_target_kinds_validated)
{
	start_fast(NULL);
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "r", "EventPattern", "{\"source\":[\"shop\"]}")));
	fails("PutTargets",
	      json_pack("{s:s,s:[{s:s,s:s,s:{s:i}}]}", "Rule", "r", "Targets", "Id", "t", "Arn",
	                "http://127.0.0.1:1/", "RetryPolicy", "MaximumRetryAttempts", 186),
	      "ValidationException", "Member must have value less than or equal to 185");
	fails("PutTargets",
	      json_pack("{s:s,s:[{s:s,s:s,s:{s:i}}]}", "Rule", "r", "Targets", "Id", "t", "Arn",
	                "http://127.0.0.1:1/", "RetryPolicy", "MaximumEventAgeInSeconds", 59),
	      "ValidationException", "Member must have value greater than or equal to 60");
	json_t *j = ok("PutTargets",
	               json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "Rule", "r", "Targets",
	                         "Id", "a", "Arn", "https://", "Id", "b", "Arn", "http://", "Id",
	                         "c", "Arn", ACCOUNT_ARN("logs", "log-group:audit")));
	cr_assert_eq(json_integer_value(json_object_get(j, "FailedEntryCount")), 2);
	json_t *f = json_object_get(j, "FailedEntries");
	cr_assert(strstr(s(json_array_get(f, 0), "ErrorMessage"), "http(s)://HOST"));
	cr_assert_str_eq(s(json_array_get(f, 1), "ErrorCode"), "ValidationException");
	json_decref(j);
	/* the log target writes one JSON line with its group */
	put_event(NULL, "shop", "{\"logged\": true}");
	wait_metric("sluice_deliveries_total{outcome=\"delivered\"} ", 1);
	char *log = h_log(&srv);
	cr_assert(strstr(log, "{\"logGroup\":\"audit\",\"rule\":\"r\""), "%s", log);
	cr_assert(strstr(log, "\"detail\":{\"logged\": true}"), "%s", log);
	free(log);
	stop();
}

static const char *pass_def
        = "{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}}";

static void
create_machine(const char *name)
{
	json_decref(ok_target(
	        "AWSStepFunctions.CreateStateMachine",
	        json_pack("{s:s,s:s,s:s}", "name", name, "definition", pass_def, "roleArn", ROLE)));
}

/* Every execution of machine (all pages). */
static json_t *
executions(const char *machine)
{
	json_t *all = json_array();
	char arn[256];
	snprintf(arn, sizeof arn, ACCOUNT_ARN("states", "stateMachine:%s"), machine);
	const char *token = NULL;
	json_t *page = NULL;
	do {
		json_t *req = json_pack("{s:s,s:i}", "stateMachineArn", arn, "maxResults", 1000);
		if (token)
			json_object_set_new(req, "nextToken", json_string(token));
		json_t *next = ok_target("AWSStepFunctions.ListExecutions", req);
		json_decref(page);
		page = next;
		json_array_extend(all, json_object_get(page, "executions"));
		token = s(page, "nextToken");
	} while (token);
	json_decref(page);
	return all;
}

static json_t *
execution_input(const char *arn)
{
	json_t *d = ok_target("AWSStepFunctions.DescribeExecution",
	                      json_pack("{s:s}", "executionArn", arn));
	json_t *in = json_loads(s(d, "input"), 0, NULL);
	cr_assert_not_null(in, "%s", s(d, "input"));
	json_decref(d);
	return in;
}

static size_t
wait_executions(const char *machine, size_t n)
{
	size_t have = 0;
	for (int i = 0; i < WAIT_MS / 20; i++) {
		json_t *all = executions(machine);
		have = json_array_size(all);
		json_decref(all);
		if (have >= n)
			break;
		nap();
	}
	return have;
}

Test(deliveries, state_machine_target_one_execution_per_event)
{
	start_fast(NULL);
	create_machine("etl");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "r", "EventPattern", "{\"source\":[\"shop\"]}")));
	put_targets("r",
	            json_pack("[{s:s,s:s,s:s}]", "Id", "sm", "Arn",
	                      ACCOUNT_ARN("states", "stateMachine:etl"), "InputPath", "$.detail"));
	put_event(NULL, "shop", "{\"n\": 1}");
	put_event(NULL, "other", "{\"n\": 2}");
	put_event(NULL, "shop", "{\"n\": 3}");
	/* started in the event's batch: visible as soon as PutEvents answered */
	json_t *all = executions("etl");
	cr_assert_eq(json_array_size(all), 2);
	int seen = 0;
	size_t i;
	json_t *e;
	json_array_foreach(all, i, e)
	{
		json_t *in = execution_input(s(e, "executionArn"));
		seen |= 1 << json_integer_value(json_object_get(in, "n"));
		json_decref(in);
	}
	cr_assert_eq(seen, (1 << 1) | (1 << 3));
	json_decref(all);

	/* a machine that does not exist yet: the delivery is retried until it does */
	json_decref(ok(
	        "PutRule",
	        json_pack("{s:s,s:s}", "Name", "late", "EventPattern", "{\"source\":[\"late\"]}")));
	put_targets("late",
	            json_pack("[{s:s,s:s}]", "Id", "sm", "Arn",
	                      ACCOUNT_ARN("states", "stateMachine:later")));
	put_event(NULL, "late", "{\"n\": 4}");
	wait_metric("sluice_deliveries_total{outcome=\"retried\"} ", 1);
	create_machine("later");
	cr_assert_eq(wait_executions("later", 1), 1);
	stop();
}

/* A schedule's events reach their state machine target through a delivery record: the
 * deliverer starts the execution in the batch that deletes it (exactly once as well). */
Test(deliveries, schedule_starts_its_state_machine_once_per_slot)
{
	const char *more[] = { "--virtual-time", "2026-03-01T00:00:30Z", NULL };
	start_fast(more);
	create_machine("nightly");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "tick", "ScheduleExpression", "rate(1 minute)")));
	put_targets("tick",
	            json_pack("[{s:s,s:s}]", "Id", "sm", "Arn",
	                      ACCOUNT_ARN("states", "stateMachine:nightly")));
	json_decref(ok_target("Sluice.AdvanceClock", json_pack("{s:i}", "Seconds", 180)));
	cr_assert_eq(wait_executions("nightly", 3), 3);
	wait_metric("sluice_deliveries_total{outcome=\"delivered\"} ", 3);
	json_t *all = executions("nightly");
	cr_assert_eq(json_array_size(all), 3);
	json_t *in = execution_input(s(json_array_get(all, 0), "executionArn"));
	cr_assert_str_eq(s(in, "detail-type"), "Scheduled Event");
	json_decref(in);
	json_decref(all);
	stop();
}

/* Paused: records are kept, nothing is invoked; the next start delivers what is due. */
Test(deliveries, paused_then_restarted_delivers_the_backlog)
{
	receiver_start(200);
	const char *paused[] = { "--delivery-paused", NULL };
	start_fast(paused);
	create_machine("later");
	char url[128];
	hook_url(url, sizeof url, "/backlog");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "r", "EventPattern", "{\"source\":[\"shop\"]}")));
	put_targets("r",
	            json_pack("[{s:s,s:s},{s:s,s:s}]", "Id", "sm", "Arn",
	                      ACCOUNT_ARN("states", "stateMachine:later"), "Id", "hook", "Arn",
	                      url));
	for (int i = 0; i < 5; i++)
		put_event(NULL, "shop", "{}");
	json_t *all = executions("later");
	cr_assert_eq(json_array_size(all), 0);
	json_decref(all);
	cr_assert_eq(receiver_count(), 0);
	char data[300];
	snprintf(data, sizeof data, "%s", srv.data);
	cr_assert_eq(h_stop(&srv), 0);
	struct h_server old = srv;
	const char *again[] = { "--data", data, NULL };
	start_fast(again);
	cr_assert_eq(wait_executions("later", 5), 5);
	wait_requests(5);
	wait_metric("sluice_deliveries_total{outcome=\"delivered\"} ", 10);
	all = executions("later");
	cr_assert_eq(json_array_size(all), 5);
	json_decref(all);
	cr_assert_eq(receiver_count(), 5);
	stop();
	h_cleanup(&old);
	receiver_stop();
}

/* The hook rule "r" for source "shop" to rx's /ka; sends event n and waits until the
 * delivered counter reaches n + 1. */
static void
keepalive_put(int n)
{
	char detail[64];
	snprintf(detail, sizeof detail, "{\"n\": %d}", n);
	put_event(NULL, "shop", detail);
	wait_metric("sluice_deliveries_total{outcome=\"delivered\"} ", n + 1);
}

static void
keepalive_rule(void)
{
	char url[128];
	hook_url(url, sizeof url, "/ka");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "r", "EventPattern", "{\"source\":[\"shop\"]}")));
	put_targets(
	        "r",
	        json_pack("[{s:s,s:s,s:s}]", "Id", "hook", "Arn", url, "InputPath", "$.detail"));
}

/* Every request once, in order, first attempt; nothing retried or failed. */
static void
keepalive_check(int n)
{
	cr_assert_eq(receiver_count(), n);
	for (int i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof want, "{\"n\":%d}", i);
		cr_assert_str_eq(rx.reqs[i].body, want);
		cr_assert_str_eq(rx.reqs[i].path, "/ka");
		cr_assert(strstr(rx.reqs[i].head, "X-Sluice-Attempt: 1"), "%s", rx.reqs[i].head);
	}
	cr_assert_eq(metric("sluice_deliveries_total{outcome=\"retried\"} "), 0);
	/* the sample line (after a newline), not the HELP line naming the metric too */
	cr_assert_eq(metric("sluice_delivery_failures_total "), 0);
	cr_assert_eq(metric("sluice_deliveries_inflight "), 0);
}

Test(deliveries, keepalive_receiver_sees_several_deliveries_on_one_connection)
{
	receiver_start(200);
	rx.keepalive = true;
	rx.idle_ms = 30000;
	start_fast(NULL);
	keepalive_rule();
	/* one after the other: each finds the previous one's connection idle in the pool */
	for (int i = 0; i < 5; i++)
		keepalive_put(i);
	keepalive_check(5);
	cr_assert_geq(atomic_load(&rx.most_per_conn), 2,
	              "no connection carried two deliveries (%d accepted for 5)",
	              atomic_load(&rx.accepted));
	cr_assert_lt(atomic_load(&rx.accepted), 5);
	cr_assert_geq(metric("sluice_delivery_connections_total{event=\"reused\"} "), 1);
	stop();
	receiver_stop();
}

Test(deliveries, receiver_closing_idle_connections_still_gets_each_delivery_once)
{
	receiver_start(200);
	rx.keepalive = true;
	rx.idle_ms = 100;
	start_fast(NULL);
	keepalive_rule();
	for (int i = 0; i < 4; i++) {
		keepalive_put(i);
		/* let the receiver hang up the idle connection (its close may or may not reach
		 * the server before the next request: either way the delivery must arrive) */
		for (int k = 0; k < 10; k++)
			nap();
	}
	keepalive_check(4);
	cr_assert_geq(atomic_load(&rx.accepted), 2, "the receiver never closed a connection");
	stop();
	receiver_stop();
}

Test(deliveries, hang_up_on_a_reused_connection_retried_once_on_a_new_one)
{
	receiver_start(200);
	rx.keepalive = true;
	rx.idle_ms = 30000;
	/* the second request arrives on the kept connection: hang up as a peer closing it
	 * would; the same attempt goes again on a new connection */
	receiver_program((int[]) { 200, 0 }, 2, 200);
	start_fast(NULL);
	keepalive_rule();
	keepalive_put(0);
	keepalive_put(1);
	cr_assert_eq(receiver_count(), 3);
	const char *bodies[] = { "{\"n\":0}", "{\"n\":1}", "{\"n\":1}" };
	for (int i = 0; i < 3; i++) {
		cr_assert_str_eq(rx.reqs[i].body, bodies[i]);
		cr_assert(strstr(rx.reqs[i].head, "X-Sluice-Attempt: 1"), "%s", rx.reqs[i].head);
	}
	cr_assert_eq(atomic_load(&rx.accepted), 2);
	cr_assert_eq(metric("sluice_delivery_connections_total{event=\"stale_retry\"} "), 1);
	cr_assert_eq(metric("sluice_deliveries_total{outcome=\"retried\"} "), 0);
	/* the sample line (after a newline), not the HELP line naming the metric too */
	cr_assert_eq(metric("sluice_delivery_failures_total "), 0);
	stop();
	receiver_stop();
}

Test(deliveries, bus_target_republishes_on_the_other_bus)
{
	receiver_start(200);
	start_fast(NULL);
	char url[128];
	hook_url(url, sizeof url, "/b2");
	json_decref(ok("CreateEventBus", json_pack("{s:s}", "Name", "b2")));
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s,s:s}", "Name", "on-b2", "EventBusName", "b2",
	                         "EventPattern", "{\"source\":[\"shop\"]}")));
	json_decref(ok("PutTargets",
	               json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "Rule", "on-b2", "EventBusName", "b2",
	                         "Targets", "Id", "hook", "Arn", url)));
	json_decref(ok(
	        "PutRule",
	        json_pack("{s:s,s:s}", "Name", "fwd", "EventPattern", "{\"source\":[\"shop\"]}")));
	put_targets("fwd",
	            json_pack("[{s:s,s:s}]", "Id", "bus", "Arn",
	                      ACCOUNT_ARN("events", "event-bus/b2")));
	json_t *j = ok("PutEvents",
	               json_pack("{s:[o]}", "Entries", entry(NULL, "shop", "{\"forwarded\": 1}")));
	const char *eid = s(json_array_get(json_object_get(j, "Entries"), 0), "EventId");
	wait_requests(1);
	json_t *ev = json_loads(rx.reqs[0].body, 0, NULL);
	cr_assert_not_null(ev, "%s", rx.reqs[0].body);
	cr_assert_str_eq(s(ev, "id"), eid);
	cr_assert_eq(
	        json_integer_value(json_object_get(json_object_get(ev, "detail"), "forwarded")), 1);
	json_decref(ev);
	json_decref(j);
	wait_metric("sluice_deliveries_total{outcome=\"delivered\"} ", 2);
	cr_assert_eq(receiver_count(), 1);
	stop();
	receiver_stop();
}

Test(deliveries, timeouts_and_hang_ups_fail_the_attempt)
{
	receiver_start(-1);
	const char *more[] = { "--delivery-timeout-ms", "200", NULL };
	start_fast(more);
	char url[128];
	hook_url(url, sizeof url, "/slow");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "r", "EventPattern", "{\"source\":[\"shop\"]}")));
	put_targets("r",
	            json_pack("[{s:s,s:s,s:{s:i},s:{s:s}}]", "Id", "hook", "Arn", url,
	                      "RetryPolicy", "MaximumRetryAttempts", 0, "DeadLetterConfig", "Arn",
	                      ACCOUNT_ARN("sqs", "dlq")));
	put_event(NULL, "shop", "{\"n\": 1}");
	wait_metric("sluice_deliveries_total{outcome=\"dead_lettered\"} ", 1);
	/* the receiver answers one connection at a time: let the silent one end first */
	for (int i = 0; i < WAIT_MS / 20 && atomic_load(&rx.closed) < 1; i++)
		nap();
	receiver_program(NULL, 0, 0);
	put_event(NULL, "shop", "{\"n\": 2}");
	wait_metric("sluice_deliveries_total{outcome=\"dead_lettered\"} ", 2);
	json_t *list = ok_target("SluiceEvents.ListDeadLetters", json_pack("{s:s}", "Rule", "r"));
	json_t *dls = json_object_get(list, "DeadLetters");
	cr_assert_eq(json_array_size(dls), 2);
	cr_assert_str_eq(s(json_array_get(dls, 0), "ErrorCode"), "TIMEOUT");
	cr_assert_str_eq(s(json_array_get(dls, 1), "ErrorCode"), "CONNECTION_ERROR");
	json_decref(list);
	stop();
	receiver_stop();
}

/* MaximumEventAgeInSeconds is at least 60 s: the test moves the server's virtual clock. */
Test(deliveries, event_age_ends_the_retries)
{
	receiver_start(500);
	const char *more[] = { "--virtual-time", "2026-03-01T00:00:00Z", NULL };
	start_fast(more);
	char url[128];
	hook_url(url, sizeof url, "/old");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "r", "EventPattern", "{\"source\":[\"shop\"]}")));
	put_targets("r",
	            json_pack("[{s:s,s:s,s:{s:i},s:{s:s}}]", "Id", "hook", "Arn", url,
	                      "RetryPolicy", "MaximumEventAgeInSeconds", 60, "DeadLetterConfig",
	                      "Arn", ACCOUNT_ARN("sqs", "dlq")));
	put_event(NULL, "shop", "{\"n\": 1}");
	wait_metric("sluice_deliveries_total{outcome=\"retried\"} ", 1);
	json_decref(ok_target("Sluice.AdvanceClock", json_pack("{s:i}", "Seconds", 120)));
	wait_metric("sluice_deliveries_total{outcome=\"dead_lettered\"} ", 1);
	json_t *list = ok_target("SluiceEvents.ListDeadLetters", json_object());
	const char *id = s(json_array_get(json_object_get(list, "DeadLetters"), 0), "Id");
	cr_assert_not_null(id);
	json_t *dl = ok_target("SluiceEvents.GetDeadLetter", json_pack("{s:s}", "Id", id));
	json_t *at = json_object_get(dl, "Attributes");
	cr_assert_str_eq(s(at, "EXHAUSTED_RETRY_CONDITION"), "MaximumEventAgeInSeconds");
	/* full jitter may pick a zero back-off: retries may happen before the clock moves */
	long retries = strtol(s(at, "RETRY_ATTEMPTS"), NULL, 10);
	cr_assert_geq(retries, 1);
	cr_assert_eq(json_integer_value(json_object_get(dl, "Attempts")), retries + 1);
	json_decref(dl);
	json_decref(list);
	stop();
	receiver_stop();
}

/* https:// targets: the certificate is verified (a CA the server trusts, the right name). */
Test(deliveries, https_webhook_verifies_the_certificate)
{
	if (system("command -v openssl >/dev/null 2>&1") != 0)
		cr_skip_test("the openssl command is needed to make a test certificate");
	char dir[] = "/tmp/sluice-tls-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	receiver_start(200);
	receiver_tls(dir);
	/* first without trusting the certificate: the attempt fails on verification */
	start_fast(NULL);
	char url[128];
	hook_url(url, sizeof url, "/secure");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "r", "EventPattern", "{\"source\":[\"shop\"]}")));
	put_targets("r",
	            json_pack("[{s:s,s:s,s:s,s:{s:i},s:{s:s}}]", "Id", "hook", "Arn", url,
	                      "InputPath", "$.detail", "RetryPolicy", "MaximumRetryAttempts", 0,
	                      "DeadLetterConfig", "Arn", ACCOUNT_ARN("sqs", "dlq")));
	put_event(NULL, "shop", "{\"secret\": 1}");
	wait_metric("sluice_deliveries_total{outcome=\"dead_lettered\"} ", 1);
	cr_assert_eq(receiver_count(), 0);
	json_t *list = ok_target("SluiceEvents.ListDeadLetters", json_object());
	json_t *d0 = json_array_get(json_object_get(list, "DeadLetters"), 0);
	cr_assert_str_eq(s(d0, "ErrorCode"), "CONNECTION_ERROR");
	char id[64];
	snprintf(id, sizeof id, "%s", s(d0, "Id"));
	json_decref(list);
	/* restart trusting it (OpenSSL's SSL_CERT_FILE): the redrive is delivered over TLS */
	char data[300], cert[600];
	snprintf(data, sizeof data, "%s", srv.data);
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	cr_assert_eq(h_stop(&srv), 0);
	struct h_server old = srv;
	setenv("SSL_CERT_FILE", cert, 1);
	const char *again[] = { "--data", data, NULL };
	start_fast(again);
	json_decref(ok_target("SluiceEvents.RedriveDeadLetters", json_pack("{s:[s]}", "Ids", id)));
	wait_requests(1);
	cr_assert_str_eq(rx.reqs[0].path, "/secure");
	cr_assert_str_eq(rx.reqs[0].body, "{\"secret\":1}");
	wait_metric("sluice_deliveries_total{outcome=\"delivered\"} ", 1);
	stop();
	h_cleanup(&old);
	receiver_stop();
	char rm[400];
	snprintf(rm, sizeof rm, "rm -rf %s", dir);
	cr_assert_eq(system(rm), 0);
}

Test(deliveries, https_keepalive_reuses_the_tls_connection)
{
	char dir[] = "/tmp/sluice-tls-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	receiver_start(200);
	receiver_tls(dir);
	rx.keepalive = true;
	rx.idle_ms = 30000;
	char cert[600];
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	setenv("SSL_CERT_FILE", cert, 1);
	start_fast(NULL);
	keepalive_rule();
	for (int i = 0; i < 4; i++)
		keepalive_put(i);
	keepalive_check(4);
	/* one handshake served several deliveries */
	cr_assert_geq(atomic_load(&rx.most_per_conn), 2,
	              "no TLS connection carried two deliveries (%d accepted for 4)",
	              atomic_load(&rx.accepted));
	cr_assert_geq(metric("sluice_delivery_connections_total{event=\"reused\"} "), 1);
	stop();
	receiver_stop();
	char rm[400];
	snprintf(rm, sizeof rm, "rm -rf %s", dir);
	cr_assert_eq(system(rm), 0);
}

/* A free TCP port on 127.0.0.1 (bound, read, released). */
static int
free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t al = sizeof a;
	getsockname(fd, (struct sockaddr *)&a, &al);
	close(fd);
	return ntohs(a.sin_port);
}

Test(deliveries, nng_publisher_sends_topic_and_input)
{
	start_fast(NULL);
	char url[128], arn[160];
	snprintf(url, sizeof url, "tcp://127.0.0.1:%d", free_port());
	snprintf(arn, sizeof arn, "nng+pub://%s", url);
	json_decref(ok(
	        "PutRule",
	        json_pack("{s:s,s:s}", "Name", "nr", "EventPattern", "{\"source\":[\"shop\"]}")));
	json_t *j = ok("PutTargets",
	               json_pack("{s:s,s:[{s:s,s:s}]}", "Rule", "nr", "Targets", "Id", "bad", "Arn",
	                         "nng+pub://carrier-pigeon://x"));
	cr_assert_eq(json_integer_value(json_object_get(j, "FailedEntryCount")), 1);
	json_decref(j);
	put_targets("nr",
	            json_pack("[{s:s,s:s,s:s}]", "Id", "p", "Arn", arn, "InputPath", "$.detail"));
	nng_socket sub;
	cr_assert_eq(nng_sub0_open(&sub), 0);
	cr_assert_eq(nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "nr\n", 3), 0);
	cr_assert_eq(nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 100), 0);
	cr_assert_eq(nng_dial(sub, url, NULL, NNG_FLAG_NONBLOCK), 0);
	/* PUB drops what is sent before the subscriber is connected: publish until one lands */
	char *got = NULL;
	size_t len = 0;
	for (int i = 0; i < WAIT_MS / 100 && !got; i++) {
		put_event(NULL, "shop", "{\"k\": 1}");
		if (nng_recv(sub, &got, &len, NNG_FLAG_ALLOC) != 0)
			got = NULL;
	}
	cr_assert_not_null(got, "no message from %s", url);
	cr_assert_eq(len, strlen("nr\n{\"k\":1}"));
	cr_assert(memcmp(got, "nr\n{\"k\":1}", len) == 0, "%.*s", (int)len, got);
	nng_free(got, len);
	nng_close(sub);
	stop();
}

Test(deliveries, a_loop_of_buses_ends)
{
	start_fast(NULL);
	json_decref(ok("CreateEventBus", json_pack("{s:s}", "Name", "b2")));
	json_decref(ok("PutRule",
	               json_pack("{s:s,s:s,s:s}", "Name", "back", "EventBusName", "b2",
	                         "EventPattern", "{\"source\":[\"shop\"]}")));
	json_decref(ok("PutTargets",
	               json_pack("{s:s,s:s,s:[{s:s,s:s,s:{s:s}}]}", "Rule", "back", "EventBusName",
	                         "b2", "Targets", "Id", "bus", "Arn",
	                         ACCOUNT_ARN("events", "event-bus/default"), "DeadLetterConfig",
	                         "Arn", ACCOUNT_ARN("sqs", "dlq"))));
	json_decref(ok(
	        "PutRule",
	        json_pack("{s:s,s:s}", "Name", "fwd", "EventPattern", "{\"source\":[\"shop\"]}")));
	put_targets("fwd",
	            json_pack("[{s:s,s:s,s:{s:s}}]", "Id", "bus", "Arn",
	                      ACCOUNT_ARN("events", "event-bus/b2"), "DeadLetterConfig", "Arn",
	                      ACCOUNT_ARN("sqs", "dlq")));
	put_event(NULL, "shop", "{\"round\": 1}");
	wait_metric("sluice_deliveries_total{outcome=\"dead_lettered\"} ", 1);
	json_t *list = ok_target("SluiceEvents.ListDeadLetters", json_object());
	json_t *dls = json_object_get(list, "DeadLetters");
	cr_assert_eq(json_array_size(dls), 1);
	cr_assert_str_eq(s(json_array_get(dls, 0), "ErrorCode"), "LOOP_DETECTED");
	json_decref(list);
	/* the hops in between were delivered: default -> b2 -> default -> b2 -> default */
	cr_assert_eq(metric("sluice_deliveries_total{outcome=\"delivered\"} "), 4);
	stop();
}

/* ---- SIGKILL during a stream of PutEvents ----------------------------------------------- */

#define STREAM_MAX 4000

struct stream {
	int port;
	atomic_int acked; /* events acknowledged, numbered 0..acked-1 in order */
	atomic_bool stop;
	int sent;
};

static void *
sender(void *arg)
{
	struct stream *st = arg;
	const char *h[] = { "X-Amz-Target: AWSEvents.PutEvents",
		            "Content-Type: application/x-amz-json-1.1", NULL };
	for (int n = 0; n < STREAM_MAX && !atomic_load(&st->stop); n++) {
		char body[256];
		int len = snprintf(body, sizeof body,
		                   "{\"Entries\":[{\"Source\":\"shop\",\"DetailType\":\"T\","
		                   "\"Detail\":\"{\\\"n\\\": %d}\"}]}",
		                   n);
		st->sent = n + 1;
		struct h_response r;
		if (!h_request(st->port, "POST", "/", h, body, (size_t)len, &r))
			break;
		bool acked = r.status == 200 && strstr(r.body, "\"FailedEntryCount\":0");
		h_response_free(&r);
		if (!acked)
			break;
		atomic_store(&st->acked, n + 1);
	}
	return NULL;
}

/* How many of the events 0..n-1 the receiver has seen at least once. */
static int
webhook_seen(int n)
{
	char *seen = calloc((size_t)n, 1);
	int have = 0;
	pthread_mutex_lock(&rx.mu);
	for (int i = 0; i < rx.n; i++) {
		json_t *b = json_loads(rx.reqs[i].body, 0, NULL);
		json_int_t k = json_integer_value(json_object_get(b, "n"));
		json_decref(b);
		if (k >= 0 && k < n && !seen[k]) {
			seen[k] = 1;
			have++;
		}
	}
	pthread_mutex_unlock(&rx.mu);
	free(seen);
	return have;
}

Test(deliveries, sigkill_during_put_events_starts_each_execution_once)
{
	receiver_start(200);
	start_fast(NULL);
	create_machine("each");
	char url[128];
	hook_url(url, sizeof url, "/stream");
	json_decref(
	        ok("PutRule",
	           json_pack("{s:s,s:s}", "Name", "r", "EventPattern", "{\"source\":[\"shop\"]}")));
	put_targets("r",
	            json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:s}]", "Id", "sm", "Arn",
	                      ACCOUNT_ARN("states", "stateMachine:each"), "InputPath", "$.detail",
	                      "Id", "hook", "Arn", url, "InputPath", "$.detail"));
	struct stream st = { .port = srv.http_port };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, sender, &st), 0);
	for (int i = 0; i < WAIT_MS / 20 && atomic_load(&st.acked) < 300; i++)
		nap();
	h_kill(&srv);
	atomic_store(&st.stop, true);
	pthread_join(th, NULL);
	int acked = atomic_load(&st.acked);
	cr_assert_geq(acked, 1, "no event was acknowledged before the kill");

	char dir[300];
	snprintf(dir, sizeof dir, "%s", srv.data);
	const char *again[] = { "--data", dir, NULL };
	struct h_server old = srv;
	start_fast(again);
	json_t *all = executions("each");
	size_t n = json_array_size(all);
	char *count = calloc(STREAM_MAX, 1);
	size_t i;
	json_t *e;
	json_array_foreach(all, i, e)
	{
		json_t *in = execution_input(s(e, "executionArn"));
		json_int_t k = json_integer_value(json_object_get(in, "n"));
		json_decref(in);
		cr_assert(k >= 0 && k < st.sent, "execution for an event never sent: %lld",
		          (long long)k);
		cr_assert_eq(count[k], 0, "event %lld started two executions", (long long)k);
		count[k]++;
	}
	for (int k = 0; k < acked; k++)
		cr_assert_eq(count[k], 1, "acknowledged event %d has no execution", k);
	/* at most the one request in flight at the kill may have committed unanswered */
	cr_assert_leq(n, (size_t)acked + 1);
	free(count);
	json_decref(all);
	/* the webhook is at least once: every acknowledged event reaches it, restart or not */
	int seen = 0;
	for (int k = 0; k < WAIT_MS / 20 && (seen = webhook_seen(acked)) < acked; k++)
		nap();
	cr_assert_eq(seen, acked, "the webhook saw %d of %d acknowledged events", seen, acked);
	stop();
	h_cleanup(&old);
	receiver_stop();
}
