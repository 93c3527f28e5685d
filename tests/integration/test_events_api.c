/*
 * AWSEvents.TestEventPattern through the real server: the same engine and messages as
 * `sluice test-pattern`, AWS's validation of the event envelope, and the aws CLI.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/harness.h"

static struct h_server srv;

#define EVENT                                                                                      \
	"{\"id\":\"1\",\"source\":\"app.orders\",\"detail-type\":\"OrderCreated\","                \
	"\"account\":\"123456789012\",\"region\":\"us-east-1\",\"time\":\"2026-11-24T02:00:00Z\"," \
	"\"detail\":{\"total\":300.0,\"city\":\"Straße\"}}"

static json_t *
call(const char *pattern, const char *event, int *status)
{
	const char *h[] = { "X-Amz-Target: AWSEvents.TestEventPattern",
		            "Content-Type: application/x-amz-json-1.1", NULL };
	json_t *req = json_pack("{s:s,s:s}", "EventPattern", pattern, "Event", event);
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	struct h_response r;
	cr_assert(h_request(srv.http_port, "POST", "/", h, body, strlen(body), &r));
	free(body);
	*status = r.status;
	json_t *j = json_loads(r.body, 0, NULL);
	cr_assert_not_null(j, "%s", r.body);
	h_response_free(&r);
	return j;
}

static void
expect_result(const char *pattern, bool want)
{
	int st;
	json_t *j = call(pattern, EVENT, &st);
	cr_assert_eq(st, 200, "%s", json_dumps(j, 0));
	cr_assert(json_is_boolean(json_object_get(j, "Result")));
	cr_assert_eq(json_is_true(json_object_get(j, "Result")), want, "%s", pattern);
	json_decref(j);
}

static void
expect_error(const char *pattern, const char *event, const char *type, const char *msg)
{
	int st;
	json_t *j = call(pattern, event, &st);
	cr_assert_eq(st, 400);
	cr_assert_str_eq(json_string_value(json_object_get(j, "__type")), type);
	const char *m = json_string_value(json_object_get(j, "message"));
	cr_assert(m && strstr(m, msg), "message '%s' lacks '%s'", m, msg);
	json_decref(j);
}

Test(events_api, test_event_pattern)
{
	cr_assert(h_start(&srv, NULL));
	expect_result("{\"source\":[\"app.orders\"]}", true);
	expect_result("{\"source\":[\"app.billing\"]}", false);
	expect_result("{\"detail\":{\"total\":[300]}}", true);
	expect_result("{\"detail\":{\"total\":[{\"numeric\":[\">\",299,\"<=\",300]}]}}", true);
	expect_result("{\"detail\":{\"city\":[{\"equals-ignore-case\":\"STRASSE\"}]}}", true);
	expect_error("{\"source\":[]}", EVENT, "InvalidEventPatternException",
	             "Event pattern is not valid. Reason: Empty arrays are not allowed");
	expect_error("{\"source\":[\"x\"]}", "{\"source\":\"x\"}", "ValidationException",
	             "Parameter Event is not valid.");
	expect_error("not json", EVENT, "InvalidEventPatternException",
	             "Event pattern is not valid");
	cr_assert_eq(h_stop(&srv), 0);
	h_cleanup(&srv);
}

Test(events_api, aws_cli_test_event_pattern)
{
	if (system("command -v aws >/dev/null 2>&1") != 0)
		cr_skip_test("aws CLI is not installed (apt-get install awscli)");
	cr_assert(h_start(&srv, NULL));
	char cmd[2048], *out = NULL;
	snprintf(cmd, sizeof cmd,
	         "AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 "
	         "AWS_PAGER= aws --output json --endpoint-url http://127.0.0.1:%d events "
	         "test-event-pattern --event-pattern '{\"source\":[{\"prefix\":\"app.\"}]}' "
	         "--event '%s' 2>&1",
	         srv.http_port, EVENT);
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, "\"Result\": true"), "%s", out);
	free(out);
	cr_assert_eq(h_stop(&srv), 0);
	h_cleanup(&srv);
}
