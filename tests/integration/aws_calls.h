/*
 * aws_calls.h - AWS JSON calls against the test server, with Criterion assertions, shared by
 * the integration suites. A suite defines AWS_CALLS_SERVICE ("AWSEvents" or
 * "AWSStepFunctions") before including this file; `srv` is the suite's server.
 */
#ifndef SLUICE_TESTS_AWS_CALLS_H
#define SLUICE_TESTS_AWS_CALLS_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/integration/harness.h"

#ifndef AWS_CALLS_SERVICE
#error "define AWS_CALLS_SERVICE before including aws_calls.h"
#endif

static struct h_server srv;

static __attribute__((unused)) void
start(void)
{
	cr_assert(h_start(&srv, NULL), "server did not start: %s", h_last_error());
}

static __attribute__((unused)) void
stop(void)
{
	int st = h_stop(&srv);
	if (st != 0) {
		/* the log's tail says why (a sanitizer report, a failed commit, a hang) */
		char *log = h_log(&srv);
		size_t n = log ? strlen(log) : 0;
		cr_assert_fail("the server's exit status after SIGTERM is %d (-1: killed after the "
		               "wait): %s; its log ends:\n%s",
		               st, h_last_error(), log ? log + (n > 3000 ? n - 3000 : 0) : "");
	}
	h_cleanup(&srv);
}

/* POSTs one operation by its full X-Amz-Target ("AWSEvents.PutRule", "Sluice.AdvanceClock";
 * req is stolen) with its service's JSON protocol version (Step Functions 1.0, the others
 * 1.1); returns the parsed answer and the HTTP status in *status. */
static __attribute__((unused)) json_t *
call_target(const char *target, json_t *req, int *status)
{
	char th[160];
	snprintf(th, sizeof th, "X-Amz-Target: %s", target);
	bool sfn = strncmp(target, "AWSStepFunctions.", 17) == 0;
	const char *h[] = { th,
		            sfn ? "Content-Type: application/x-amz-json-1.0"
		                : "Content-Type: application/x-amz-json-1.1",
		            NULL };
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	struct h_response r;
	cr_assert(h_request(srv.http_port, "POST", "/", h, body, strlen(body), &r), "%s: no answer",
	          target);
	free(body);
	*status = r.status;
	json_t *j = json_loads(r.body, 0, NULL);
	cr_assert_not_null(j, "%s: body is not JSON: %s", target, r.body);
	h_response_free(&r);
	return j;
}

/* call_target, which must answer 200; returns the answer (new reference). */
static __attribute__((unused)) json_t *
ok_target(const char *target, json_t *req)
{
	int st;
	json_t *j = call_target(target, req, &st);
	char *t = json_dumps(j, 0);
	cr_assert_eq(st, 200, "%s: %d %s", target, st, t);
	free(t);
	return j;
}

/* One operation of the suite's service (req is stolen); the HTTP status in *status. */
static __attribute__((unused)) json_t *
call(const char *op, json_t *req, int *status)
{
	char target[128];
	snprintf(target, sizeof target, "%s.%s", AWS_CALLS_SERVICE, op);
	return call_target(target, req, status);
}

/* The call must answer 200; returns the answer (new reference). */
static __attribute__((unused)) json_t *
ok(const char *op, json_t *req)
{
	char target[128];
	snprintf(target, sizeof target, "%s.%s", AWS_CALLS_SERVICE, op);
	return ok_target(target, req);
}

/* The call must answer 400 with __type type and a message containing msg_part. */
static __attribute__((unused)) void
fails(const char *op, json_t *req, const char *type, const char *msg_part)
{
	int st;
	json_t *j = call(op, req, &st);
	char *t = json_dumps(j, 0);
	cr_assert_eq(st, 400, "%s: status %d: %s", op, st, t);
	cr_assert_str_eq(json_string_value(json_object_get(j, "__type")), type, "%s", t);
	const char *m = json_string_value(json_object_get(j, "message"));
	cr_assert(m && strstr(m, msg_part), "%s: message '%s' lacks '%s'", op, m, msg_part);
	free(t);
	json_decref(j);
}

/* A string member, or NULL. */
static __attribute__((unused)) const char *
s(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

/* Step Functions: polls DescribeExecution until the status is status (NULL: anything but
 * RUNNING) and returns the description; fails after wait_ms (a hang guard). */
static __attribute__((unused)) json_t *
exec_wait_status(const char *arn, const char *status, int wait_ms)
{
	for (int waited = 0; waited < wait_ms; waited += 50) {
		json_t *d = ok("DescribeExecution", json_pack("{s:s}", "executionArn", arn));
		const char *st = s(d, "status");
		if (status ? strcmp(st, status) == 0 : strcmp(st, "RUNNING") != 0)
			return d;
		json_decref(d);
		nanosleep(&(struct timespec) { .tv_nsec = 50 * 1000000L }, NULL);
	}
	if (status)
		cr_assert_fail("%s not %s after %d ms", arn, status, wait_ms);
	cr_assert_fail("%s still RUNNING after %d ms", arn, wait_ms);
	return NULL;
}

/* Step Functions: every event of an execution, all pages (a new array). */
static __attribute__((unused)) json_t *
exec_history(const char *arn)
{
	json_t *all = json_array();
	char *next = NULL;
	do {
		json_t *req = json_pack("{s:s,s:i}", "executionArn", arn, "maxResults", 1000);
		if (next)
			json_object_set_new(req, "nextToken", json_string(next));
		free(next);
		next = NULL;
		json_t *r = ok("GetExecutionHistory", req);
		json_array_extend(all, json_object_get(r, "events"));
		if (s(r, "nextToken"))
			next = strdup(s(r, "nextToken"));
		json_decref(r);
	} while (next);
	return all;
}

/* How many of events have the type. */
static __attribute__((unused)) size_t
events_count(json_t *events, const char *type)
{
	size_t n = 0, i;
	json_t *e;
	json_array_foreach(events, i, e) n += strcmp(s(e, "type"), type) == 0;
	return n;
}

/* The value of the /metrics sample line that starts with `sample `, or -1 if absent. */
static __attribute__((unused)) long long
metrics_sample(const char *sample)
{
	struct h_response r;
	cr_assert(h_request(srv.http_port, "GET", "/metrics", NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 200);
	long long v = -1;
	size_t n = strlen(sample);
	for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, sample, n) == 0 && p[n] == ' ') {
			v = strtoll(p + n + 1, NULL, 10);
			break;
		}
	h_response_free(&r);
	return v;
}

/* Polls until the sample has the value (a 20 s hang guard, no timing claim), then asserts. */
static __attribute__((unused)) void
wait_metrics_sample(const char *sample, long long want)
{
	long long v = -1;
	for (int waited = 0; waited < 20000; waited += 20) {
		if ((v = metrics_sample(sample)) == want)
			return;
		nanosleep(&(struct timespec) { .tv_nsec = 20 * 1000000L }, NULL);
	}
	cr_assert_eq(v, want, "%s is %lld, expected %lld", sample, v, want);
}

#endif
