/*
 * test_server.c - the real `sluice serve` over loopback: health, metrics, AWS JSON errors,
 * limits, keep-alive, the connection cap, the worker socket, SIGTERM, and the aws CLI.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct h_server srv;
static char config_path[64];

static void
cleanup(void)
{
	h_cleanup(&srv);
	if (config_path[0])
		unlink(config_path);
	config_path[0] = '\0';
}

TestSuite(server, .fini = cleanup);

static void
start(const char *const *extra)
{
	cr_assert(h_start(&srv, extra), "the server did not start (see stderr)");
}

/* Every test ends here: SIGTERM, exit 0, and no sanitizer report in the server's log. */
static void
stop_clean(void)
{
	int rc = h_stop(&srv);
	char *log = h_log(&srv);
	bool clean = log && !strstr(log, "runtime error") && !strstr(log, "Sanitizer");
	cr_assert(rc == 0 && clean, "server exit %d, log:\n%s", rc, log ? log : "");
	free(log);
}

static bool
is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* The AWS error shape: status, __type, content type and a request id. */
static void
expect_aws_error(const struct h_response *r, int status, const char *type, const char *ct)
{
	char v[256];
	cr_assert_eq(r->status, status, "status %d: %s", r->status, r->body);
	cr_assert(h_header(r, "x-amzn-RequestId", v, sizeof v), "no x-amzn-RequestId");
	cr_assert(is_uuid(v), "request id '%s' is not a UUID", v);
	cr_assert(h_header(r, "Content-Type", v, sizeof v));
	cr_assert_str_eq(v, ct);
	json_t *j = json_loads(r->body, 0, NULL);
	cr_assert(json_is_object(j), "body is not a JSON object: %s", r->body);
	cr_assert_str_eq(json_string_value(json_object_get(j, "__type")), type, "%s", r->body);
	cr_assert(json_is_string(json_object_get(j, "message")), "%s", r->body);
	json_decref(j);
}

static void
expect_healthy(void)
{
	struct h_response r;
	cr_assert(h_request(srv.http_port, "GET", "/healthz", NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
	h_response_free(&r);
}

static struct h_response
post(const char *const *headers, const char *body)
{
	struct h_response r;
	cr_assert(h_request(srv.http_port, "POST", "/", headers, body, strlen(body), &r),
	          "no answer");
	return r;
}

Test(server, healthz)
{
	start(NULL);
	struct h_response r;
	cr_assert(h_request(srv.http_port, "GET", "/healthz", NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
	char v[64];
	cr_assert(h_header(&r, "x-amzn-RequestId", v, sizeof v) && is_uuid(v));
	h_response_free(&r);
	stop_clean();
}

Test(server, metrics_are_prometheus_text)
{
	start(NULL);
	expect_healthy();
	struct h_response r;
	cr_assert(h_request(srv.http_port, "GET", "/metrics", NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 200);
	char ct[128];
	cr_assert(h_header(&r, "Content-Type", ct, sizeof ct));
	cr_assert(strncmp(ct, "text/plain", 10) == 0, "%s", ct);
	const char *want[] = {
		"# TYPE sluice_http_requests_total counter",
		"sluice_http_requests_total{operation=\"healthz\",status=\"200\"} 1",
		"# TYPE sluice_http_open_connections gauge",
		"# TYPE sluice_store_commits_total counter",
		"# TYPE sluice_store_commit_seconds histogram",
		"sluice_store_commit_seconds_bucket{le=\"+Inf\"} ",
		"sluice_store_commit_seconds_count ",
		"sluice_store_used_bytes ",
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		cr_assert(strstr(r.body, want[i]) != NULL, "missing '%s' in:\n%s", want[i], r.body);
	/* every sample line: name{labels} value */
	char *save = NULL;
	for (char *line = strtok_r(r.body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#')
			continue;
		size_t n = strspn(line, "abcdefghijklmnopqrstuvwxyz_");
		cr_assert(n > 0, "bad sample line '%s'", line);
		const char *p = line + n;
		if (*p == '{') {
			p = strchr(p, '}');
			cr_assert_not_null(p, "unclosed labels in '%s'", line);
			p++;
		}
		cr_assert_eq(*p, ' ', "no value in '%s'", line);
		char *end;
		strtod(p + 1, &end);
		cr_assert(end != p + 1 && *end == '\0', "bad value in '%s'", line);
	}
	h_response_free(&r);
	stop_clean();
}

Test(server, unknown_operation_json_1_1)
{
	start(NULL);
	const char *h[] = { "X-Amz-Target: AWSEvents.NoSuchOperation",
		            "Content-Type: application/x-amz-json-1.1", NULL };
	struct h_response r = post(h, "{}");
	expect_aws_error(&r, 400, "UnknownOperationException", "application/x-amz-json-1.1");
	cr_assert(strstr(r.body,
	                 "operation AWSEvents.NoSuchOperation is not supported by this "
	                 "server yet"),
	          "%s", r.body);
	h_response_free(&r);

	const char *h2[] = { "X-Amz-Target: Nope.Nothing",
		             "Content-Type: application/x-amz-json-1.1", NULL };
	r = post(h2, "{}");
	expect_aws_error(&r, 400, "UnknownOperationException", "application/x-amz-json-1.1");
	h_response_free(&r);
	stop_clean();
}

Test(server, unknown_operation_json_1_0)
{
	start(NULL);
	const char *h[] = { "X-Amz-Target: AWSStepFunctions.NoSuchOperation",
		            "Content-Type: application/x-amz-json-1.0", NULL };
	struct h_response r = post(h, "{}");
	expect_aws_error(&r, 400, "UnknownOperationException", "application/x-amz-json-1.0");
	h_response_free(&r);
	stop_clean();
}

Test(server, lowercase_header_names)
{
	start(NULL);
	const char *h[] = { "x-amz-target: AWSStepFunctions.NoSuchOperation",
		            "content-type: application/x-amz-json-1.0", NULL };
	struct h_response r = post(h, "{\"name\":\"x\"}");
	expect_aws_error(&r, 400, "UnknownOperationException", "application/x-amz-json-1.0");
	h_response_free(&r);
	stop_clean();
}

Test(server, body_not_json_keeps_serving)
{
	start(NULL);
	const char *h[] = { "X-Amz-Target: AWSEvents.PutEvents",
		            "Content-Type: application/x-amz-json-1.1", NULL };
	struct h_response r = post(h, "{\"Entries\": [");
	expect_aws_error(&r, 400, "SerializationException", "application/x-amz-json-1.1");
	h_response_free(&r);
	r = post(h, "[1, 2]");
	expect_aws_error(&r, 400, "SerializationException", "application/x-amz-json-1.1");
	h_response_free(&r);
	r = post(h, "{\"a\":1,\"a\":2}");
	expect_aws_error(&r, 400, "SerializationException", "application/x-amz-json-1.1");
	h_response_free(&r);
	expect_healthy();
	stop_clean();
}

Test(server, body_over_limit_is_413_and_keeps_serving)
{
	start(NULL);
	size_t n = 2 * 1024 * 1024;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	const char *h[] = { "X-Amz-Target: AWSEvents.PutEvents",
		            "Content-Type: application/x-amz-json-1.1", NULL };
	struct h_response r;
	cr_assert(h_request(srv.http_port, "POST", "/", h, big, n, &r), "no answer to 2 MiB");
	/* over our 1 MiB limit: the AWS-shaped answer with its request id */
	expect_aws_error(&r, 413, "RequestEntityTooLarge", "application/x-amz-json-1.1");
	h_response_free(&r);
	free(big);
	expect_healthy();
	/* over evhttp's hard cap (4 x the limit): still a 413, and the server keeps serving */
	n = 5 * 1024 * 1024;
	big = malloc(n + 1);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	cr_assert(h_request(srv.http_port, "POST", "/", h, big, n, &r), "no answer to 5 MiB");
	cr_assert_eq(r.status, 413);
	h_response_free(&r);
	free(big);
	expect_healthy();
	stop_clean();
}

Test(server, missing_target)
{
	start(NULL);
	const char *h[] = { "Content-Type: application/x-amz-json-1.1", NULL };
	struct h_response r = post(h, "{}");
	expect_aws_error(&r, 400, "MissingAction", "application/x-amz-json-1.1");
	h_response_free(&r);
	stop_clean();
}

Test(server, unsupported_protocol)
{
	start(NULL);
	const char *h[] = { "X-Amz-Target: AWSEvents.ListRules", "Content-Type: application/cbor",
		            "smithy-protocol: rpc-v2-cbor", NULL };
	struct h_response r = post(h, "\xa0");
	expect_aws_error(&r, 400, "UnsupportedProtocolException", "application/x-amz-json-1.1");
	h_response_free(&r);
	stop_clean();
}

Test(server, paths_and_methods)
{
	start(NULL);
	struct h_response r;
	cr_assert(h_request(srv.http_port, "GET", "/nowhere", NULL, NULL, 0, &r));
	expect_aws_error(&r, 404, "NotFoundException", "application/json");
	h_response_free(&r);
	cr_assert(h_request(srv.http_port, "GET", "/", NULL, NULL, 0, &r));
	expect_aws_error(&r, 405, "MethodNotAllowed", "application/x-amz-json-1.1");
	char allow[32];
	cr_assert(h_header(&r, "Allow", allow, sizeof allow));
	cr_assert_str_eq(allow, "POST");
	h_response_free(&r);
	cr_assert(h_request(srv.http_port, "DELETE", "/healthz", NULL, NULL, 0, &r));
	expect_aws_error(&r, 405, "MethodNotAllowed", "application/json");
	h_response_free(&r);
	stop_clean();
}

Test(server, keep_alive_two_requests_one_connection)
{
	start(NULL);
	int fd = h_connect(srv.http_port);
	cr_assert(fd >= 0);
	struct h_response r;
	cr_assert(h_send(fd, "GET", "/healthz", NULL, NULL, 0));
	cr_assert(h_recv(fd, &r));
	cr_assert_eq(r.status, 200);
	h_response_free(&r);
	const char *h[] = { "X-Amz-Target: AWSEvents.NoSuchOperation", NULL };
	cr_assert(h_send(fd, "POST", "/", h, "{}", 2));
	cr_assert(h_recv(fd, &r), "the second request on the connection got no answer");
	expect_aws_error(&r, 400, "UnknownOperationException", "application/x-amz-json-1.1");
	h_response_free(&r);
	close(fd);
	stop_clean();
}

Test(server, connection_cap)
{
	snprintf(config_path, sizeof config_path, "/tmp/sluice-cap-XXXXXX");
	int cfd = mkstemp(config_path);
	cr_assert(cfd >= 0);
	const char *yaml = "limits:\n  max-connections: 2\n";
	cr_assert_eq(write(cfd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(cfd);
	const char *extra[] = { "--config", config_path, NULL };
	start(extra);

	int a = h_connect(srv.http_port), b = h_connect(srv.http_port);
	cr_assert(a >= 0 && b >= 0);
	struct h_response r;
	/* a request on each makes sure the server has accepted both */
	for (int i = 0; i < 2; i++) {
		int fd = i ? b : a;
		cr_assert(h_send(fd, "GET", "/healthz", NULL, NULL, 0));
		cr_assert(h_recv(fd, &r));
		cr_assert_eq(r.status, 200);
		h_response_free(&r);
	}
	/* a third one is over the cap */
	cr_assert(h_request(srv.http_port, "GET", "/healthz", NULL, NULL, 0, &r));
	expect_aws_error(&r, 503, "ServiceUnavailable", "application/x-amz-json-1.1");
	cr_assert(strstr(r.body, "too many open connections"), "%s", r.body);
	h_response_free(&r);

	/* the open ones still work; once one closes, a new connection is served again */
	cr_assert(h_send(a, "GET", "/healthz", NULL, NULL, 0));
	cr_assert(h_recv(a, &r));
	cr_assert_eq(r.status, 200);
	h_response_free(&r);
	close(b);
	int status = 0;
	for (int attempt = 0; attempt < 200 && status != 200; attempt++) {
		if (attempt)
			usleep(20 * 1000); /* the server sees the close asynchronously */
		cr_assert(h_request(srv.http_port, "GET", "/healthz", NULL, NULL, 0, &r));
		status = r.status;
		h_response_free(&r);
	}
	cr_assert_eq(status, 200, "a freed slot was never reused");
	close(a);
	stop_clean();
}

Test(server, sigterm_exits_zero)
{
	start(NULL);
	expect_healthy();
	int fd = h_connect(srv.http_port); /* an idle keep-alive connection must not block it */
	cr_assert(fd >= 0);
	stop_clean();
	close(fd);
	char *log = h_log(&srv);
	cr_assert(strstr(log, "stopped") != NULL, "%s", log);
	free(log);
}

static char *
nng_exchange(const char *url, const char *frame)
{
	nng_socket s;
	cr_assert_eq(nng_req0_open(&s), 0);
	cr_assert_eq(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 20000), 0);
	cr_assert_eq(nng_dial(s, url, NULL, 0), 0, "dial %s", url);
	cr_assert_eq(nng_send(s, (void *)frame, strlen(frame), 0), 0);
	char *buf = NULL;
	size_t len = 0;
	cr_assert_eq(nng_recv(s, &buf, &len, NNG_FLAG_ALLOC), 0, "no answer to '%s'", frame);
	char *out = strndup(buf, len);
	nng_free(buf, len);
	nng_close(s);
	return out;
}

static void
expect_frame_error(const char *frame, const char *error)
{
	char *ans = nng_exchange(srv.workers, frame);
	json_t *j = json_loads(ans, 0, NULL);
	cr_assert(json_is_object(j), "answer is not JSON: %s", ans);
	cr_assert_eq(json_integer_value(json_object_get(j, "v")), 1, "%s", ans);
	cr_assert_str_eq(json_string_value(json_object_get(j, "error")), error, "%s", ans);
	cr_assert(json_is_string(json_object_get(j, "message")), "%s", ans);
	json_decref(j);
	free(ans);
}

Test(server, worker_socket_validates_frames)
{
	start(NULL);
	expect_frame_error("this is not json", "MalformedFrame");
	expect_frame_error("[1,2,3]", "MalformedFrame");
	expect_frame_error("{\"type\":\"poll\"}", "MalformedFrame");
	expect_frame_error("{\"v\":\"1\",\"type\":\"poll\"}", "MalformedFrame");
	expect_frame_error("{\"v\":1,\"type\":7}", "MalformedFrame");
	expect_frame_error("{\"v\":1,\"type\":\"teleport\"}", "UnknownMessage");
	char *ans = nng_exchange(srv.workers, "{\"v\":1,\"type\":\"teleport\"}");
	cr_assert(strstr(ans, "unknown message type") && strstr(ans, "teleport"), "%s", ans);
	free(ans);
	expect_healthy();
	char *log = h_log(&srv);
	cr_assert(strstr(log, "malformed frame") != NULL, "malformed frames are not logged");
	free(log);
	stop_clean();
}

Test(server, aws_cli_gets_an_aws_shaped_error)
{
	if (h_run("command -v aws", NULL) != 0)
		cr_skip_test("the aws CLI is not installed");
	start(NULL);
	char cmd[512];
	snprintf(cmd, sizeof cmd,
	         "AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 "
	         "AWS_MAX_ATTEMPTS=1 aws --endpoint-url http://127.0.0.1:%d events list-rules",
	         srv.http_port);
	char *out = NULL;
	int rc = h_run(cmd, &out);
	cr_assert_eq(rc, 0, "aws exited %d: %s", rc, out);
	json_t *j = json_loads(out, 0, NULL);
	cr_assert(json_is_array(json_object_get(j, "Rules")), "not a ListRules answer: %s", out);
	json_decref(j);
	free(out);
	snprintf(cmd, sizeof cmd,
	         "AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 "
	         "AWS_MAX_ATTEMPTS=1 aws --endpoint-url http://127.0.0.1:%d events describe-rule "
	         "--name nope",
	         srv.http_port);
	rc = h_run(cmd, &out);
	cr_assert(rc == 254 || rc == 255, "aws exited %d: %s", rc, out);
	cr_assert(strstr(out, "An error occurred (ResourceNotFoundException)") != NULL, "%s", out);
	free(out);
	stop_clean();
}

static int
run_serve(const char *args, char **out)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "\"%s\" serve %s", getenv("SLUICE_BIN"), args);
	return h_run(cmd, out);
}

Test(server, cli_help_and_bad_settings)
{
	char *out = NULL;
	cr_assert_eq(run_serve("--help", &out), 0);
	cr_assert(strstr(out, "usage: sluice serve") && strstr(out, "--workers NNG_URL"), "%s",
	          out);
	free(out);
	cr_assert_eq(run_serve("--http nope", &out), 2);
	cr_assert(strstr(out, "--http: expected HOST:PORT"), "%s", out);
	free(out);
	cr_assert_eq(run_serve("--log-level loud", &out), 2);
	cr_assert(strstr(out, "--log-level: expected debug"), "%s", out);
	free(out);
	cr_assert_eq(run_serve("--bogus", &out), 2);
	free(out);

	snprintf(config_path, sizeof config_path, "/tmp/sluice-bad-XXXXXX");
	int cfd = mkstemp(config_path);
	cr_assert(cfd >= 0);
	const char *yaml = "http: 127.0.0.1:0\nlimits:\n  max-conections: 5\n";
	cr_assert_eq(write(cfd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(cfd);
	char args[128], want[128];
	snprintf(args, sizeof args, "--config %s", config_path);
	snprintf(want, sizeof want, "%s:3:3: unknown limit 'max-conections'", config_path);
	cr_assert_eq(run_serve(args, &out), 2);
	cr_assert(strstr(out, want), "%s", out);
	free(out);
}

Test(server, cannot_start_twice_on_one_port_or_data_dir)
{
	start(NULL);
	char args[512];
	char *out = NULL;
	snprintf(args, sizeof args,
	         "--http 127.0.0.1:%d --workers tcp://127.0.0.1:0 --data %s/other", srv.http_port,
	         srv.dir);
	cr_assert_eq(run_serve(args, &out), 3, "%s", out);
	cr_assert(strstr(out, "cannot listen on http"), "%s", out);
	free(out);
	snprintf(args, sizeof args, "--http 127.0.0.1:0 --workers tcp://127.0.0.1:0 --data %s",
	         srv.data);
	cr_assert_eq(run_serve(args, &out), 3, "%s", out);
	free(out);
	expect_healthy();
	stop_clean();
}
