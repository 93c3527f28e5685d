/*
 * Activities and task answers on the real server: CreateActivity (idempotent by name, tags,
 * AWS's name rules), DescribeActivity, ListActivities (paging), DeleteActivity, with their
 * AWS errors; SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat on the tokens of
 * `.waitForTaskToken` tasks read from the execution history (success, Catch, Fail, heartbeat
 * timeout, stopped executions, bad tokens, InvalidOutput, durability across a SIGKILL); the
 * aws CLI; and a boto3 activity worker (GetActivityTask) when boto3 is installed.
 *
 * Waits for executions are bounded polls (hang guards), never timing assertions.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define AWS_CALLS_SERVICE "AWSStepFunctions"
#include "tests/integration/aws_calls.h"
#include "tests/integration/harness.h"

#define ACT(name)    "arn:aws:states:us-east-1:000000000000:activity:" name
#define SM(name)     "arn:aws:states:us-east-1:000000000000:stateMachine:" name
#define EXEC(m, n)   "arn:aws:states:us-east-1:000000000000:execution:" m ":" n
#define ROLE         "arn:aws:iam::000000000000:role/x"
#define DONE_WAIT_MS 20000
#define ZERO_TOKEN   "0123456789abcdef0123456789abcdef"

/* A callback task: the token goes out in the Payload; extra is more of the Task's fields. */
#define CALLBACK_DEF(extra)                                                                        \
	"{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"                    \
	"\"arn:aws:states:::lambda:invoke.waitForTaskToken\",\"Parameters\":{\"FunctionName\":"    \
	"\"approve\",\"Payload\":{\"token.$\":\"$$.Task.Token\",\"order.$\":\"$.order\"}}" extra   \
	"}}}"
#define END_DEF CALLBACK_DEF(",\"End\":true")
#define CATCH_DEF                                                                                  \
	CALLBACK_DEF(",\"Catch\":[{\"ErrorEquals\":[\"Order.Rejected\"],\"ResultPath\":\"$.err\"," \
	             "\"Next\":\"Handled\"}],\"Next\":\"Done\"},"                                  \
	             "\"Handled\":{\"Type\":\"Pass\",\"Result\":\"handled\",\"ResultPath\":"       \
	             "\"$.how\",\"End\":true},"                                                    \
	             "\"Done\":{\"Type\":\"Succeed\"")
#define HEARTBEAT_DEF(secs) CALLBACK_DEF(",\"HeartbeatSeconds\":" #secs ",\"End\":true")

/* A failed assertion leaves its test before stop(): kill that server (and worker) and remove
 * its files. */
static struct h_server worker_proc; /* a worker process a test started (pid only) */

static void
reap(void)
{
	h_kill(&worker_proc);
	h_cleanup(&srv);
}

TestSuite(activities, .fini = reap);

/* ---- helpers ------------------------------------------------------------------------------ */

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void
create_machine(const char *name, const char *def)
{
	json_decref(
	        ok("CreateStateMachine",
	           json_pack("{s:s,s:s,s:s}", "name", name, "definition", def, "roleArn", ROLE)));
}

static void
start_exec(const char *machine_arn, const char *name, const char *input)
{
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", machine_arn, "name", name,
	                         "input", input)));
}

static json_t *
describe_exec(const char *arn)
{
	return ok("DescribeExecution", json_pack("{s:s}", "executionArn", arn));
}

static json_t *
find_event(json_t *events, const char *type)
{
	size_t i;
	json_t *e;
	json_array_foreach(events, i, e)
	{
		if (strcmp(s(e, "type"), type) == 0)
			return e;
	}
	return NULL;
}

/* The token the task got: Payload.token of the TaskScheduled parameters (a JSON text in
 * AWS's history, accepted as an object too). Polls until the task is scheduled. */
static char *
task_token(const char *arn)
{
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 20) {
		json_t *ev = exec_history(arn);
		json_t *sched = find_event(ev, "TaskScheduled");
		if (sched) {
			json_t *p = json_object_get(
			        json_object_get(sched, "taskScheduledEventDetails"), "parameters");
			json_t *params = json_is_string(p)
			        ? json_loads(json_string_value(p), 0, NULL)
			        : json_incref(p);
			const char *tok = s(json_object_get(params, "Payload"), "token");
			cr_assert_not_null(tok, "no token in %s", json_dumps(sched, 0));
			cr_assert_eq(strlen(tok), 32, "token %s", tok);
			char *out = strdup(tok);
			json_decref(params);
			json_decref(ev);
			return out;
		}
		json_decref(ev);
		nap_ms(20);
	}
	cr_assert_fail("%s: no TaskScheduled after %d ms", arn, DONE_WAIT_MS);
	return NULL;
}

static void
assert_json(const char *got_text, const char *want_text)
{
	json_t *got = got_text ? json_loads(got_text, JSON_DECODE_ANY, NULL) : NULL;
	json_t *want = json_loads(want_text, JSON_DECODE_ANY, NULL);
	cr_assert(got && want && json_equal(got, want), "got %s, expected %s", got_text, want_text);
	json_decref(got);
	json_decref(want);
}

static json_t *
success_req(const char *token, const char *output)
{
	return json_pack("{s:s,s:s}", "taskToken", token, "output", output);
}

/* ---- activities --------------------------------------------------------------------------- */

Test(activities, create_describe_list_delete)
{
	start();
	json_t *c1 = ok("CreateActivity",
	                json_pack("{s:s,s:[{s:s,s:s}]}", "name", "resize", "tags", "key", "team",
	                          "value", "media"));
	cr_assert_str_eq(s(c1, "activityArn"), ACT("resize"));
	cr_assert(json_is_number(json_object_get(c1, "creationDate")));
	/* the same name again is the same activity, whatever its tags (AWS: idempotent) */
	json_t *c2 = ok("CreateActivity",
	                json_pack("{s:s,s:[{s:s,s:s}]}", "name", "resize", "tags", "key", "other",
	                          "value", "x"));
	cr_assert_str_eq(s(c2, "activityArn"), ACT("resize"));
	cr_assert(json_equal(json_object_get(c1, "creationDate"),
	                     json_object_get(c2, "creationDate")));
	json_decref(c2);

	json_t *d = ok("DescribeActivity", json_pack("{s:s}", "activityArn", ACT("resize")));
	cr_assert_str_eq(s(d, "activityArn"), ACT("resize"));
	cr_assert_str_eq(s(d, "name"), "resize");
	cr_assert(json_equal(json_object_get(d, "creationDate"),
	                     json_object_get(c1, "creationDate")));
	json_decref(d);
	json_decref(c1);

	/* seven activities, listed two by two in name order, each once */
	const char *names[] = { "a-1", "b_2", "c.3", "d4", "e-5", "f6" };
	for (size_t i = 0; i < 6; i++)
		json_decref(ok("CreateActivity", json_pack("{s:s}", "name", names[i])));
	const char *order[] = { "a-1", "b_2", "c.3", "d4", "e-5", "f6", "resize" };
	size_t seen = 0, pages = 0;
	char *token = NULL;
	do {
		json_t *req = json_pack("{s:i}", "maxResults", 2);
		if (token)
			json_object_set_new(req, "nextToken", json_string(token));
		free(token);
		token = NULL;
		json_t *page = ok("ListActivities", req);
		json_t *list = json_object_get(page, "activities");
		cr_assert_leq(json_array_size(list), 2);
		size_t i;
		json_t *a;
		json_array_foreach(list, i, a)
		{
			cr_assert_lt(seen, 7);
			cr_assert_str_eq(s(a, "name"), order[seen]);
			char arn[256];
			snprintf(arn, sizeof arn, ACT("%s"), order[seen]);
			cr_assert_str_eq(s(a, "activityArn"), arn);
			cr_assert(json_is_number(json_object_get(a, "creationDate")));
			seen++;
		}
		if (s(page, "nextToken"))
			token = strdup(s(page, "nextToken"));
		json_decref(page);
		pages++;
	} while (token);
	cr_assert_eq(seen, 7);
	cr_assert_eq(pages, 4);

	/* one page by default */
	json_t *all = ok("ListActivities", json_object());
	cr_assert_eq(json_array_size(json_object_get(all, "activities")), 7);
	cr_assert_null(json_object_get(all, "nextToken"));
	json_decref(all);

	/* delete: gone from describe and list; deleting again still succeeds (AWS) */
	json_decref(ok("DeleteActivity", json_pack("{s:s}", "activityArn", ACT("c.3"))));
	fails("DescribeActivity", json_pack("{s:s}", "activityArn", ACT("c.3")),
	      "ActivityDoesNotExist", ACT("c.3"));
	json_decref(ok("DeleteActivity", json_pack("{s:s}", "activityArn", ACT("c.3"))));
	all = ok("ListActivities", json_pack("{s:i}", "maxResults", 0));
	cr_assert_eq(json_array_size(json_object_get(all, "activities")), 6);
	json_decref(all);
	/* a token whose name was deleted meanwhile resumes after it */
	char hex[16];
	snprintf(hex, sizeof hex, "%02x%02x%02x", 'c', '.', '3');
	json_t *page
	        = ok("ListActivities", json_pack("{s:s,s:i}", "nextToken", hex, "maxResults", 1));
	cr_assert_str_eq(s(json_array_get(json_object_get(page, "activities"), 0), "name"), "d4");
	json_decref(page);
	stop();
}

Test(activities, create_errors)
{
	start();
	fails("CreateActivity", json_object(), "ValidationException", "'name'");
	fails("CreateActivity", json_pack("{s:i}", "name", 3), "SerializationException", "name");
	const char *bad[] = { "",       "with space", "colon:name", "slash/name", "star*",
		              "tab\tx", "br[acket]",  "quote\"",    "dollar$" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		fails("CreateActivity", json_pack("{s:s}", "name", bad[i]), "InvalidName",
		      "Invalid Name");
	char long_name[82];
	memset(long_name, 'n', 81);
	long_name[81] = 0;
	fails("CreateActivity", json_pack("{s:s}", "name", long_name), "InvalidName",
	      "Invalid Name");
	long_name[80] = 0; /* 80 is allowed */
	json_decref(ok("CreateActivity", json_pack("{s:s}", "name", long_name)));

	/* tags: at most 50, keys 1..128, values up to 256 */
	json_t *tags = json_array();
	for (int i = 0; i < 51; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%d", i);
		json_array_append_new(tags, json_pack("{s:s,s:s}", "key", k, "value", "v"));
	}
	fails("CreateActivity", json_pack("{s:s,s:o}", "name", "tagged", "tags", tags),
	      "TooManyTags", "Too many tags");
	char key[130];
	memset(key, 'k', 129);
	key[129] = 0;
	fails("CreateActivity",
	      json_pack("{s:s,s:[{s:s,s:s}]}", "name", "tagged", "tags", "key", key, "value", "v"),
	      "ValidationException", "tags.member.key");
	fails("CreateActivity",
	      json_pack("{s:s,s:[{s:s,s:s}]}", "name", "tagged", "tags", "key", "", "value", "v"),
	      "ValidationException", "tags.member.key");
	fails("CreateActivity", json_pack("{s:s,s:s}", "name", "tagged", "tags", "team"),
	      "SerializationException", "tags");
	fails("CreateActivity", json_pack("{s:s,s:[i]}", "name", "tagged", "tags", 1),
	      "SerializationException", "tags");
	/* nothing of the refused requests was stored */
	fails("DescribeActivity", json_pack("{s:s}", "activityArn", ACT("tagged")),
	      "ActivityDoesNotExist", "tagged");
	json_t *all = ok("ListActivities", json_object());
	cr_assert_eq(json_array_size(json_object_get(all, "activities")), 1);
	json_decref(all);
	stop();
}

/* One CreateActivity request for name a%05d (head and body in one write: in two, the body
 * would wait on a delayed ACK). */
static void
send_create(int fd, int i)
{
	char body[32], req[512];
	int bn = snprintf(body, sizeof body, "{\"name\":\"a%05d\"}", i);
	int n = snprintf(req, sizeof req,
	                 "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                 "X-Amz-Target: AWSStepFunctions.CreateActivity\r\n"
	                 "Content-Type: application/x-amz-json-1.0\r\n"
	                 "Content-Length: %d\r\n\r\n%s",
	                 bn, body);
	cr_assert(write(fd, req, (size_t)n) == n, "could not send activity %d", i);
}

/* 10,000 activities, the next one is refused. Eight keep-alive connections keep a request in
 * flight each, so that the server commits several creations per fsync: one at a time they
 * took 60-75 s on a loaded 2-core machine. */
#define LIMIT_CONNS 8
Test(activities, activity_limit)
{
	start();
	int fd[LIMIT_CONNS], pending[LIMIT_CONNS];
	int next = 0, answered = 0;
	for (int c = 0; c < LIMIT_CONNS; c++) {
		fd[c] = h_connect(srv.http_port);
		cr_assert_geq(fd[c], 0);
		pending[c] = next;
		send_create(fd[c], next++);
	}
	while (answered < 10000) {
		struct pollfd pf[LIMIT_CONNS];
		for (int c = 0; c < LIMIT_CONNS; c++)
			pf[c] = (struct pollfd) { .fd = pending[c] >= 0 ? fd[c] : -1,
				                  .events = POLLIN };
		/* a hang guard: no answer at all for a minute */
		int n = poll(pf, LIMIT_CONNS, 60000);
		cr_assert_gt(n, 0,
		             "no answer to any of the activities in flight for 60 s (%d answered)",
		             answered);
		for (int c = 0; c < LIMIT_CONNS; c++) {
			if (!(pf[c].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			struct h_response r;
			cr_assert(h_recv(fd[c], &r), "no answer to activity %d", pending[c]);
			cr_assert_eq(r.status, 200, "activity %d: %d %s", pending[c], r.status,
			             r.body);
			h_response_free(&r);
			answered++;
			pending[c] = -1;
			if (next < 10000) {
				pending[c] = next;
				send_create(fd[c], next++);
			}
		}
	}
	for (int c = 0; c < LIMIT_CONNS; c++)
		close(fd[c]);
	fails("CreateActivity", json_pack("{s:s}", "name", "one-more"), "ActivityLimitExceeded",
	      "10000");
	/* an existing name is still answered; a deletion makes room */
	json_t *again = ok("CreateActivity", json_pack("{s:s}", "name", "a00042"));
	cr_assert_str_eq(s(again, "activityArn"), ACT("a00042"));
	json_decref(again);
	json_decref(ok("DeleteActivity", json_pack("{s:s}", "activityArn", ACT("a00042"))));
	json_decref(ok("CreateActivity", json_pack("{s:s}", "name", "one-more")));
	stop();
}

Test(activities, arn_and_list_errors)
{
	start();
	json_decref(ok("CreateActivity", json_pack("{s:s}", "name", "here")));
	fails("DescribeActivity", json_object(), "ValidationException", "'activityArn'");
	fails("DescribeActivity", json_pack("{s:s}", "activityArn", "not-an-arn"), "InvalidArn",
	      "Invalid Arn");
	fails("DescribeActivity", json_pack("{s:s}", "activityArn", SM("here")), "InvalidArn",
	      "Resource type not valid in this context: stateMachine");
	fails("DescribeActivity",
	      json_pack("{s:s}", "activityArn", "arn:aws:sqs:us-east-1:000000000000:activity:here"),
	      "InvalidArn", "Invalid Arn");
	fails("DescribeActivity", json_pack("{s:s}", "activityArn", ACT("bad name")), "InvalidArn",
	      "Invalid Arn");
	/* another region or account: not here */
	fails("DescribeActivity",
	      json_pack("{s:s}", "activityArn",
	                "arn:aws:states:eu-west-1:000000000000:activity:here"),
	      "ActivityDoesNotExist", "eu-west-1");
	json_decref(ok("DeleteActivity",
	               json_pack("{s:s}", "activityArn",
	                         "arn:aws:states:us-east-1:111111111111:activity:here")));
	fails("DeleteActivity", json_pack("{s:s}", "activityArn", "x"), "InvalidArn",
	      "Invalid Arn");
	char long_arn[300];
	snprintf(long_arn, sizeof long_arn, ACT("%0250d"), 0);
	fails("DescribeActivity", json_pack("{s:s}", "activityArn", long_arn),
	      "ValidationException", "256");
	/* the activity is still there */
	json_decref(ok("DescribeActivity", json_pack("{s:s}", "activityArn", ACT("here"))));

	fails("ListActivities", json_pack("{s:s}", "nextToken", "zz"), "InvalidToken",
	      "Invalid Token");
	fails("ListActivities", json_pack("{s:s}", "nextToken", "abc"), "InvalidToken",
	      "Invalid Token");
	fails("ListActivities", json_pack("{s:i}", "maxResults", 1001), "ValidationException",
	      "maxResults");
	fails("ListActivities", json_pack("{s:i}", "maxResults", -1), "ValidationException",
	      "maxResults");
	fails("ListActivities", json_pack("{s:s}", "maxResults", "5"), "SerializationException",
	      "maxResults");
	stop();
}

/* ---- task answers --------------------------------------------------------------------------- */

Test(activities, callback_success_ends_the_execution_with_the_output)
{
	start();
	create_machine("approve", END_DEF);
	start_exec(SM("approve"), "o1", "{\"order\":42}");
	char *tok = task_token(EXEC("approve", "o1"));
	json_t *d = describe_exec(EXEC("approve", "o1"));
	cr_assert_str_eq(s(d, "status"), "RUNNING");
	json_decref(d);
	json_decref(ok("SendTaskHeartbeat", json_pack("{s:s}", "taskToken", tok)));
	json_t *r = ok("SendTaskSuccess", success_req(tok, "{\"approved\":true,\"by\":\"ann\"}"));
	cr_assert_eq(json_object_size(r), 0);
	json_decref(r);
	d = exec_wait_status(EXEC("approve", "o1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	assert_json(s(d, "output"), "{\"approved\":true,\"by\":\"ann\"}");
	json_decref(d);
	json_t *ev = exec_history(EXEC("approve", "o1"));
	json_t *done = find_event(ev, "TaskSucceeded");
	cr_assert_not_null(done);
	assert_json(s(json_object_get(done, "taskSucceededEventDetails"), "output"),
	            "{\"approved\":true,\"by\":\"ann\"}");
	json_decref(ev);
	/* the token is spent */
	fails("SendTaskSuccess", success_req(tok, "{}"), "TaskDoesNotExist", tok);
	fails("SendTaskFailure", json_pack("{s:s}", "taskToken", tok), "TaskDoesNotExist", tok);
	fails("SendTaskHeartbeat", json_pack("{s:s}", "taskToken", tok), "TaskDoesNotExist", tok);
	free(tok);
	/* any JSON value is an output */
	start_exec(SM("approve"), "o2", "{\"order\":43}");
	tok = task_token(EXEC("approve", "o2"));
	json_decref(ok("SendTaskSuccess", success_req(tok, "[1, \"two\", null]")));
	d = exec_wait_status(EXEC("approve", "o2"), NULL, DONE_WAIT_MS);
	assert_json(s(d, "output"), "[1,\"two\",null]");
	json_decref(d);
	free(tok);
	stop();
}

Test(activities, callback_failure_goes_to_catch_or_fails_the_execution)
{
	start();
	create_machine("caught", CATCH_DEF);
	create_machine("plain", END_DEF);

	start_exec(SM("caught"), "c1", "{\"order\":1}");
	char *tok = task_token(EXEC("caught", "c1"));
	json_decref(ok("SendTaskFailure",
	               json_pack("{s:s,s:s,s:s}", "taskToken", tok, "error", "Order.Rejected",
	                         "cause", "out of stock")));
	json_t *d = exec_wait_status(EXEC("caught", "c1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	assert_json(s(d, "output"),
	            "{\"order\":1,\"err\":{\"Error\":\"Order.Rejected\",\"Cause\":\"out of "
	            "stock\"},\"how\":\"handled\"}");
	json_decref(d);
	json_t *ev = exec_history(EXEC("caught", "c1"));
	json_t *failed = find_event(ev, "TaskFailed");
	cr_assert_not_null(failed);
	json_t *fd = json_object_get(failed, "taskFailedEventDetails");
	cr_assert_str_eq(s(fd, "error"), "Order.Rejected");
	cr_assert_str_eq(s(fd, "cause"), "out of stock");
	json_decref(ev);
	free(tok);

	/* an error the Catch does not name, and no Catch at all: the execution fails with it */
	start_exec(SM("caught"), "c2", "{\"order\":2}");
	tok = task_token(EXEC("caught", "c2"));
	json_decref(
	        ok("SendTaskFailure",
	           json_pack("{s:s,s:s,s:s}", "taskToken", tok, "error", "Other", "cause", "x")));
	d = exec_wait_status(EXEC("caught", "c2"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "FAILED");
	cr_assert_str_eq(s(d, "error"), "Other");
	json_decref(d);
	free(tok);

	start_exec(SM("plain"), "p1", "{\"order\":3}");
	tok = task_token(EXEC("plain", "p1"));
	json_decref(ok("SendTaskFailure",
	               json_pack("{s:s,s:s,s:s}", "taskToken", tok, "error", "Payment.Declined",
	                         "cause", "card expired")));
	d = exec_wait_status(EXEC("plain", "p1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "FAILED");
	cr_assert_str_eq(s(d, "error"), "Payment.Declined");
	cr_assert_str_eq(s(d, "cause"), "card expired");
	json_decref(d);
	free(tok);

	/* error and cause may both be left out */
	start_exec(SM("plain"), "p2", "{\"order\":4}");
	tok = task_token(EXEC("plain", "p2"));
	json_decref(ok("SendTaskFailure", json_pack("{s:s}", "taskToken", tok)));
	d = exec_wait_status(EXEC("plain", "p2"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "FAILED");
	json_decref(d);
	free(tok);
	stop();
}

Test(activities, heartbeats_keep_a_task_alive_and_a_missed_one_times_it_out)
{
	start();
	create_machine("beat", HEARTBEAT_DEF(3));
	start_exec(SM("beat"), "b1", "{\"order\":1}");
	char *tok = task_token(EXEC("beat", "b1"));
	/* 4.5 s of heartbeats every 250 ms outlive HeartbeatSeconds 3 many times over */
	for (int i = 0; i < 18; i++) {
		json_decref(ok("SendTaskHeartbeat", json_pack("{s:s}", "taskToken", tok)));
		nap_ms(250);
	}
	json_decref(ok("SendTaskSuccess", success_req(tok, "{\"alive\":true}")));
	json_t *d = exec_wait_status(EXEC("beat", "b1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	json_decref(d);
	free(tok);

	create_machine("lapse", HEARTBEAT_DEF(1));
	start_exec(SM("lapse"), "l1", "{\"order\":2}");
	tok = task_token(EXEC("lapse", "l1"));
	d = exec_wait_status(EXEC("lapse", "l1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "FAILED");
	cr_assert_str_eq(s(d, "error"), "States.HeartbeatTimeout");
	json_decref(d);
	/* a timed-out token is refused and changes nothing (sluice cannot tell TaskTimedOut from
	 * a finished task: both tokens are gone) */
	fails("SendTaskHeartbeat", json_pack("{s:s}", "taskToken", tok), "TaskDoesNotExist", tok);
	fails("SendTaskSuccess", success_req(tok, "{}"), "TaskDoesNotExist", tok);
	d = describe_exec(EXEC("lapse", "l1"));
	cr_assert_str_eq(s(d, "status"), "FAILED");
	json_decref(d);
	free(tok);
	stop();
}

Test(activities, bad_tokens_and_outputs_are_refused_and_change_nothing)
{
	start();
	create_machine("strict", END_DEF);
	start_exec(SM("strict"), "s1", "{\"order\":7}");
	char *tok = task_token(EXEC("strict", "s1"));

	const char *ops[] = { "SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat" };
	char upper[33];
	for (int i = 0; i < 32; i++)
		upper[i] = (char)(tok[i] >= 'a' ? tok[i] - 'a' + 'A' : tok[i]);
	upper[32] = 0;
	int has_letter = strpbrk(tok, "abcdef") != NULL;
	char shorter[32];
	memcpy(shorter, tok, 31);
	shorter[31] = 0;
	char *huge = malloc(3000);
	memset(huge, 'a', 2999);
	huge[2999] = 0;
	for (size_t i = 0; i < 3; i++) {
		fails(ops[i], json_pack("{s:s,s:s}", "taskToken", "not-a-token", "output", "{}"),
		      "InvalidToken", "Invalid Token");
		fails(ops[i], json_pack("{s:s,s:s}", "taskToken", shorter, "output", "{}"),
		      "InvalidToken", "Invalid Token");
		fails(ops[i], json_pack("{s:s,s:s}", "taskToken", "", "output", "{}"),
		      "ValidationException", "taskToken");
		fails(ops[i], json_pack("{s:s}", "output", "{}"), "ValidationException",
		      "'taskToken'");
		fails(ops[i], json_pack("{s:i,s:s}", "taskToken", 5, "output", "{}"),
		      "SerializationException", "taskToken");
		fails(ops[i], json_pack("{s:s,s:s}", "taskToken", huge, "output", "{}"),
		      "ValidationException", "2048");
		if (has_letter)
			fails(ops[i], json_pack("{s:s,s:s}", "taskToken", upper, "output", "{}"),
			      "InvalidToken", "Invalid Token");
	}
	free(huge);
	fails("SendTaskSuccess", json_pack("{s:s}", "taskToken", tok), "ValidationException",
	      "'output'");
	fails("SendTaskSuccess", success_req(tok, "{not json"), "InvalidOutput", "Invalid Output");
	fails("SendTaskSuccess", success_req(tok, ""), "InvalidOutput", "Invalid Output");
	fails("SendTaskSuccess", success_req(tok, "{} {}"), "InvalidOutput", "Invalid Output");
	/* over the 256 KiB payload limit, under the request body limit */
	size_t big_len = 300 * 1024;
	char *big = malloc(big_len + 16);
	snprintf(big, 16, "{\"b\":\"");
	memset(big + 6, 'x', big_len);
	snprintf(big + 6 + big_len, 8, "\"}");
	fails("SendTaskSuccess", success_req(tok, big), "InvalidOutput", "262144");
	free(big);
	char error[300], cause[33000];
	memset(error, 'e', 257);
	error[257] = 0;
	memset(cause, 'c', 32769);
	cause[32769] = 0;
	fails("SendTaskFailure", json_pack("{s:s,s:s}", "taskToken", tok, "error", error),
	      "ValidationException", "'error'");
	fails("SendTaskFailure", json_pack("{s:s,s:s}", "taskToken", tok, "cause", cause),
	      "ValidationException", "'cause'");
	fails("SendTaskSuccess", success_req(ZERO_TOKEN, "{}"), "TaskDoesNotExist", ZERO_TOKEN);

	/* none of that touched the task: it still takes its answer */
	json_t *d = describe_exec(EXEC("strict", "s1"));
	cr_assert_str_eq(s(d, "status"), "RUNNING");
	json_decref(d);
	error[256] = 0;
	cause[32768] = 0;
	json_decref(
	        ok("SendTaskFailure",
	           json_pack("{s:s,s:s,s:s}", "taskToken", tok, "error", error, "cause", cause)));
	d = exec_wait_status(EXEC("strict", "s1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "FAILED");
	cr_assert_eq(strncmp(s(d, "error"), "eee", 3), 0);
	/* the execution and the task's failure keep both at their full allowed lengths */
	cr_assert_eq(strlen(s(d, "error")), 256);
	cr_assert_eq(strlen(s(d, "cause")), 32768);
	json_decref(d);
	json_t *ev = exec_history(EXEC("strict", "s1"));
	json_t *fd = json_object_get(find_event(ev, "TaskFailed"), "taskFailedEventDetails");
	cr_assert_eq(strlen(s(fd, "error")), 256);
	cr_assert_eq(strlen(s(fd, "cause")), 32768);
	json_decref(ev);
	free(tok);
	stop();
}

Test(activities, a_stopped_execution_refuses_its_token)
{
	start();
	create_machine("stopme", END_DEF);
	start_exec(SM("stopme"), "x1", "{\"order\":9}");
	char *tok = task_token(EXEC("stopme", "x1"));
	json_decref(ok("StopExecution", json_pack("{s:s}", "executionArn", EXEC("stopme", "x1"))));
	fails("SendTaskSuccess", success_req(tok, "{}"), "TaskDoesNotExist", tok);
	json_t *d = describe_exec(EXEC("stopme", "x1"));
	cr_assert_str_eq(s(d, "status"), "ABORTED");
	json_decref(d);
	free(tok);
	stop();
}

Test(activities, an_acknowledged_answer_survives_sigkill)
{
	start();
	create_machine("durable", END_DEF);
	enum { N = 4 };
	char *toks[N];
	for (int i = 0; i < N; i++) {
		char name[16], in[32], arn[256];
		snprintf(name, sizeof name, "k%d", i);
		snprintf(in, sizeof in, "{\"order\":%d}", i);
		start_exec(SM("durable"), name, in);
		snprintf(arn, sizeof arn, EXEC("durable", "k%d"), i);
		toks[i] = task_token(arn);
	}
	for (int i = 0; i < N; i++) {
		char out[32];
		snprintf(out, sizeof out, "{\"k\":%d}", i);
		json_decref(ok("SendTaskSuccess", success_req(toks[i], out)));
	}
	/* acknowledged means committed: the kill loses none of the answers */
	h_kill(&srv);
	char dir[300];
	snprintf(dir, sizeof dir, "%s", srv.data);
	const char *extra[] = { "--data", dir, NULL };
	struct h_server old = srv;
	cr_assert(h_start(&srv, extra), "restart failed");
	for (int i = 0; i < N; i++) {
		char arn[256], want[32];
		snprintf(arn, sizeof arn, EXEC("durable", "k%d"), i);
		snprintf(want, sizeof want, "{\"k\":%d}", i);
		json_t *d = exec_wait_status(arn, NULL, DONE_WAIT_MS);
		cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", arn);
		assert_json(s(d, "output"), want);
		json_decref(d);
		fails("SendTaskSuccess", success_req(toks[i], "{}"), "TaskDoesNotExist", toks[i]);
		free(toks[i]);
	}
	/* the activity records are durable too */
	json_decref(ok("CreateActivity", json_pack("{s:s}", "name", "kept")));
	h_kill(&srv);
	struct h_server mid = srv;
	cr_assert(h_start(&srv, extra), "second restart failed");
	json_decref(ok("DescribeActivity", json_pack("{s:s}", "activityArn", ACT("kept"))));
	stop();
	h_cleanup(&mid);
	h_cleanup(&old);
}

/* An activity task taken with GetActivityTask (ready, so answered at once). */
static char *
take_activity_task(const char *activity_arn, json_t **input)
{
	json_t *t = ok("GetActivityTask",
	               json_pack("{s:s,s:s}", "activityArn", activity_arn, "workerName", "c-test"));
	cr_assert(s(t, "taskToken") && strlen(s(t, "taskToken")) == 32, "%s", json_dumps(t, 0));
	char *tok = strdup(s(t, "taskToken"));
	if (input)
		*input = json_loads(s(t, "input"), JSON_DECODE_ANY, NULL);
	json_decref(t);
	return tok;
}

#define ACTIVITY_DEF(name, extra)                                                                  \
	"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Task\",\"Resource\":\"" ACT(             \
	        name) "\"" extra ",\"End\":true}}}"

Test(activities, answers_for_leased_activity_tasks)
{
	start();
	json_decref(ok("CreateActivity", json_pack("{s:s}", "name", "lease")));
	create_machine("leased", ACTIVITY_DEF("lease", ",\"HeartbeatSeconds\":300"));
	create_machine("lapsing", ACTIVITY_DEF("lease", ",\"HeartbeatSeconds\":1"));

	/* taken, answered over HTTP: succeeded; the spent token does not exist any more */
	start_exec(SM("leased"), "ok", "{\"n\":1}");
	json_t *in = NULL;
	char *tok = take_activity_task(ACT("lease"), &in);
	char *in_text = json_dumps(in, JSON_COMPACT);
	assert_json(in_text, "{\"n\":1}");
	free(in_text);
	json_decref(in);
	json_decref(ok("SendTaskSuccess", success_req(tok, "{\"done\":1}")));
	json_t *d = exec_wait_status(EXEC("leased", "ok"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	assert_json(s(d, "output"), "{\"done\":1}");
	json_decref(d);
	fails("SendTaskSuccess", success_req(tok, "{}"), "TaskDoesNotExist", tok);
	free(tok);

	/* taken, never answered: the heartbeat lapses and the leaseholder's late answers are
	 * TaskTimedOut, as in AWS */
	start_exec(SM("lapsing"), "late", "{\"n\":2}");
	tok = take_activity_task(ACT("lease"), NULL);
	d = exec_wait_status(EXEC("lapsing", "late"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "FAILED");
	cr_assert_str_eq(s(d, "error"), "States.HeartbeatTimeout");
	json_decref(d);
	fails("SendTaskHeartbeat", json_pack("{s:s}", "taskToken", tok), "TaskTimedOut", tok);
	fails("SendTaskSuccess", success_req(tok, "{}"), "TaskTimedOut", tok);
	fails("SendTaskFailure", json_pack("{s:s}", "taskToken", tok), "TaskTimedOut", tok);
	d = describe_exec(EXEC("lapsing", "late"));
	cr_assert_str_eq(s(d, "status"), "FAILED");
	json_decref(d);
	free(tok);

	/* taken, then the execution is stopped: the task ended without the worker's answer */
	start_exec(SM("leased"), "stopped", "{\"n\":3}");
	tok = take_activity_task(ACT("lease"), NULL);
	json_decref(
	        ok("StopExecution", json_pack("{s:s}", "executionArn", EXEC("leased", "stopped"))));
	fails("SendTaskSuccess", success_req(tok, "{}"), "TaskTimedOut", tok);
	free(tok);
	stop();
}

/* ---- real AWS clients ------------------------------------------------------------------------ */

#define AWS_ENV                                                                                    \
	"AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 AWS_PAGER= "     \
	"AWS_MAX_ATTEMPTS=1 "

static const char *aws_bin = "aws"; /* the CLI aws_sfn runs */

/* Runs `aws stepfunctions ARGS` against the server; returns the exit status and output. */
static int
aws_sfn(const char *args, char **out)
{
	char cmd[4096];
	snprintf(cmd, sizeof cmd,
	         AWS_ENV "%s --output json --endpoint-url http://127.0.0.1:%d stepfunctions %s",
	         aws_bin, srv.http_port, args);
	return h_run(cmd, out);
}

static void
aws_cli_round(void)
{
	start();
	char *out = NULL;
	cr_assert_eq(aws_sfn("create-activity --name cli-act --tags key=a,value=b", &out), 0, "%s",
	             out);
	cr_assert(strstr(out, ACT("cli-act")), "%s", out);
	free(out);
	cr_assert_eq(aws_sfn("describe-activity --activity-arn " ACT("cli-act"), &out), 0, "%s",
	             out);
	cr_assert(strstr(out, "\"name\": \"cli-act\""), "%s", out);
	free(out);
	cr_assert_eq(aws_sfn("list-activities", &out), 0, "%s", out);
	cr_assert(strstr(out, ACT("cli-act")), "%s", out);
	free(out);
	cr_assert_neq(aws_sfn("describe-activity --activity-arn " ACT("none"), &out), 0);
	cr_assert(strstr(out, "ActivityDoesNotExist"), "%s", out);
	free(out);

	create_machine("cli-cb", END_DEF);
	start_exec(SM("cli-cb"), "c1", "{\"order\":5}");
	char *tok = task_token(EXEC("cli-cb", "c1"));
	char args[512];
	snprintf(args, sizeof args, "send-task-heartbeat --task-token %s", tok);
	cr_assert_eq(aws_sfn(args, &out), 0, "%s", out);
	free(out);
	snprintf(args, sizeof args, "send-task-success --task-token %s --task-output '{\"cli\":1}'",
	         tok);
	cr_assert_eq(aws_sfn(args, &out), 0, "%s", out);
	free(out);
	json_t *d = exec_wait_status(EXEC("cli-cb", "c1"), NULL, DONE_WAIT_MS);
	assert_json(s(d, "output"), "{\"cli\":1}");
	json_decref(d);
	cr_assert_neq(aws_sfn(args, &out), 0);
	cr_assert(strstr(out, "TaskDoesNotExist"), "%s", out);
	free(out);
	free(tok);
	cr_assert_neq(aws_sfn("send-task-failure --task-token nope --error E", &out), 0);
	cr_assert(strstr(out, "InvalidToken"), "%s", out);
	free(out);
	cr_assert_eq(aws_sfn("delete-activity --activity-arn " ACT("cli-act"), &out), 0, "%s", out);
	free(out);
	stop();
}

/* The `aws` on PATH (a pip awscli v1 here) and Debian's awscli v2 (/usr/bin/aws) when that
 * is another program: each against a fresh server. */
Test(activities, aws_cli)
{
	int ran = 0;
	if (h_run("command -v aws >/dev/null", NULL) == 0) {
		aws_bin = "aws";
		aws_cli_round();
		ran++;
	}
	if (access("/usr/bin/aws", X_OK) == 0
	    && h_run("test \"$(readlink -f \"$(command -v aws)\")\" != /usr/bin/aws", NULL) == 0) {
		aws_bin = "/usr/bin/aws";
		aws_cli_round();
		ran++;
	}
	if (!ran)
		cr_skip_test("aws CLI is not installed (apt-get install awscli)");
}

/* The worker with `python3` on PATH and with Debian's /usr/bin/python3 (python3-boto3) when
 * that is another interpreter with boto3: each against a fresh server. */
Test(activities, boto3_activity_worker)
{
	const char *src = getenv("SLUICE_SRC");
	cr_assert_not_null(src, "SLUICE_SRC is not set (run through meson test)");
	const char *pythons[] = { "python3", "/usr/bin/python3" };
	int ran = 0;
	for (size_t i = 0; i < 2; i++) {
		char cmd[1024], *out = NULL;
		snprintf(cmd, sizeof cmd, "%s -c 'import boto3' >/dev/null 2>&1", pythons[i]);
		if (system(cmd) != 0)
			continue;
		if (i == 1
		    && h_run("test \"$(readlink -f \"$(command -v python3)\")\" = "
		             "\"$(readlink -f /usr/bin/python3)\"",
		             NULL)
		            == 0)
			continue; /* the same interpreter */
		start();
		snprintf(cmd, sizeof cmd,
		         "%s %s/tests/integration/boto3_activity_worker.py http://127.0.0.1:%d",
		         pythons[i], src, srv.http_port);
		int rc = h_run(cmd, &out);
		if (rc == 77 && strstr(out, "GetActivityTask not served yet")) {
			free(out);
			stop();
			cr_skip_test("GetActivityTask not served yet");
		}
		cr_assert_eq(rc, 0, "%s: %s", pythons[i], out);
		cr_assert(strstr(out, "success-ok") && strstr(out, "failure-ok")
		                  && strstr(out, "\nOK"),
		          "%s: %s", pythons[i], out);
		free(out);
		stop();
		ran++;
	}
	if (!ran)
		cr_skip_test("boto3 is not installed (apt-get install python3-boto3)");
}

/* The example worker (examples/worker-c/word_count, next to the sluice binary's build dir)
 * serves its workflow over NNG. */
Test(activities, example_c_worker_counts_words)
{
	const char *bin = getenv("SLUICE_BIN"), *src = getenv("SLUICE_SRC");
	cr_assert(bin && src, "SLUICE_BIN and SLUICE_SRC must be set (run through meson test)");
	char worker[600];
	snprintf(worker, sizeof worker, "%s", bin);
	char *slash = strrchr(worker, '/');
	cr_assert_not_null(slash);
	*slash = 0; /* BUILD/cli */
	slash = strrchr(worker, '/');
	cr_assert_not_null(slash);
	snprintf(slash, sizeof worker - (size_t)(slash - worker), "/examples/worker-c/word_count");
	if (access(worker, X_OK) != 0)
		cr_skip_test("%s is not built", worker);
	start();
	/* the dispatcher serves the NNG polls and GetActivityTask together */
	int st;
	json_t *probe = call("GetActivityTask", json_pack("{s:s}", "activityArn", "x"), &st);
	bool served
	        = strcmp(s(probe, "__type") ? s(probe, "__type") : "", "UnknownOperationException")
	        != 0;
	json_decref(probe);
	if (!served) {
		stop();
		cr_skip_test("the worker dispatcher is not served yet");
	}
	char path[700], *def = NULL;
	snprintf(path, sizeof path, "cat %s/examples/worker-c/word-count.asl.json", src);
	cr_assert_eq(h_run(path, &def), 0, "%s", def);
	json_decref(ok("CreateActivity", json_pack("{s:s}", "name", "word-count")));
	create_machine("words", def);
	free(def);

	struct h_server *w = &worker_proc;
	w->pid = fork();
	cr_assert_geq(w->pid, 0);
	if (w->pid == 0) {
		char log[400];
		snprintf(log, sizeof log, "%s/worker.log", srv.dir);
		if (!freopen(log, "w", stderr))
			_exit(126);
		execl(worker, worker, "--connect", srv.workers, "--concurrency", "2", (char *)NULL);
		_exit(127);
	}
	start_exec(SM("words"), "w1", "{\"text\":\"to be or not to be\"}");
	start_exec(SM("words"), "w2", "{\"txt\":\"typo\"}");
	json_t *d = exec_wait_status(EXEC("words", "w1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	assert_json(s(d, "output"),
	            "{\"text\":\"to be or not to be\",\"count\":{\"words\":6,\"longest\":"
	            "\"not\"}}");
	json_decref(d);
	d = exec_wait_status(EXEC("words", "w2"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "FAILED");
	cr_assert_str_eq(s(d, "error"), "BadInput");
	json_decref(d);
	/* SIGTERM: the worker stops polling and exits cleanly */
	cr_assert_eq(h_stop(w), 0);
	stop();
}
