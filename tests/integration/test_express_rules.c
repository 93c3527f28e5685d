/*
 * EXPRESS as AWS has it, through the real server: CreateStateMachine, UpdateStateMachine
 * and ValidateStateMachineDefinition refuse for EXPRESS machines what EXPRESS executions
 * cannot run (activities, `.sync`, `.waitForTaskToken`) with AWS's InvalidDefinition text;
 * `sluice validate --type EXPRESS` and app files of type EXPRESS list the same problems with
 * positions; a --mock-config test case stays with its execution across SIGKILL (STANDARD:
 * its tasks are still answered by the mock after the restart; EXPRESS: the run again is
 * mocked too).
 *
 * The mocked executions wait on the fake clock (--virtual-time), so they are surely in
 * flight when the server is killed. Waits are bounded polls (hang guards).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AWS_CALLS_SERVICE "AWSStepFunctions"
#include "store/store.h"
#include "tests/integration/aws_calls.h"
#include "tests/integration/harness.h"

#define SM(name)              "arn:aws:states:us-east-1:000000000000:stateMachine:" name
#define EXEC(m, n)            "arn:aws:states:us-east-1:000000000000:execution:" m ":" n
#define XARN(m, n)            "arn:aws:states:us-east-1:000000000000:express:" m ":" n
#define ROLE                  "arn:aws:iam::000000000000:role/x"
#define DONE_WAIT_MS          20000
#define T0                    "2026-01-01T00:00:00Z"

#define TASK(name, res, next) "\"" name "\":{\"Type\":\"Task\",\"Resource\":\"" res "\"," next "}"
/* one state per refused kind, then the kinds EXPRESS keeps */
#define MIXED_DEF                                                                                                                  \
	"{\"StartAt\":\"A\",\"States\":{" TASK(                                                                                    \
	        "A", "arn:aws:states:us-east-1:000000000000:activity:work",                                                        \
	        "\"Next\":\"J\"") "," TASK("J", "arn:aws:states:::glue:startJobRun.sync",                                          \
	                                   "\"Next\":\"C\"") "," TASK("C",                                                         \
	                                                              "arn:aws:states:::sqs:"                                      \
	                                                              "sendMessage."                                               \
	                                                              "waitForTaskToken",                                          \
	                                                              "\"Next\":\"L\"") "," TASK("L",                              \
	                                                                                         "arn:aws:states:::lambda:invoke", \
	                                                                                         "\"End\":true") "}}"
#define OK_DEF                                                                                     \
	"{\"StartAt\":\"L\",\"States\":{" TASK("L", "arn:aws:states:::lambda:invoke",              \
	                                       "\"End\":true") "}}"
#define CALLBACK_DEF                                                                               \
	"{\"StartAt\":\"C\",\"States\":{" TASK(                                                    \
	        "C", "arn:aws:states:::lambda:invoke.waitForTaskToken", "\"End\":true") "}}"
/* a Wait on the fake clock, then a mocked task */
#define WAIT_TASK_DEF                                                                              \
	"{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\",\"Seconds\":60,\"Next\":\"T\"},"  \
	"\"T\":{\"Type\":\"Task\",\"Resource\":\"arn:aws:states:::lambda:invoke\","                \
	"\"Parameters\":{\"FunctionName\":\"f\"},\"End\":true}}}"
#define MOCK_CONFIG                                                                                \
	"{\"StateMachines\":{"                                                                     \
	"\"mw\":{\"TestCases\":{\"Happy\":{\"T\":\"ok\"}}},"                                       \
	"\"mwx\":{\"TestCases\":{\"Happy\":{\"T\":\"ok\"}}}},"                                     \
	"\"MockedResponses\":{\"ok\":{\"0\":{\"Return\":{\"v\":7}}}}}"

static const char *const express_problems
        = "Invalid State Machine Definition: '"
          "SCHEMA_VALIDATION_FAILED: Express state machine does not support Activity ARN at "
          "/States/A/Resource, "
          "SCHEMA_VALIDATION_FAILED: Express state machine does not support '.sync' service "
          "integration at /States/J/Resource, "
          "SCHEMA_VALIDATION_FAILED: Express state machine does not support "
          "'.waitForTaskToken' service integration at /States/C/Resource'";

static void
nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static json_t *
create_req(const char *name, const char *def, const char *type)
{
	return json_pack("{s:s,s:s,s:s,s:s}", "name", name, "definition", def, "roleArn", ROLE,
	                 "type", type);
}

Test(express_rules, create_update_and_validate_refuse_what_express_cannot_run)
{
	start();
	/* the exact InvalidDefinition message: every problem, in order */
	int st;
	json_t *j = call("CreateStateMachine", create_req("x", MIXED_DEF, "EXPRESS"), &st);
	cr_assert_eq(st, 400);
	cr_assert_str_eq(s(j, "__type"), "InvalidDefinition");
	cr_assert_str_eq(s(j, "message"), express_problems);
	json_decref(j);
	fails("DescribeStateMachine", json_pack("{s:s}", "stateMachineArn", SM("x")),
	      "StateMachineDoesNotExist", "x");
	/* STANDARD runs them all */
	json_decref(ok("CreateStateMachine", create_req("std", MIXED_DEF, "STANDARD")));
	/* an EXPRESS machine cannot be updated into one it cannot run; a STANDARD one can */
	json_decref(ok("CreateStateMachine", create_req("x", OK_DEF, "EXPRESS")));
	fails("UpdateStateMachine",
	      json_pack("{s:s,s:s}", "stateMachineArn", SM("x"), "definition", CALLBACK_DEF),
	      "InvalidDefinition",
	      "Express state machine does not support '.waitForTaskToken' service integration "
	      "at /States/C/Resource");
	json_t *d = ok("DescribeStateMachine", json_pack("{s:s}", "stateMachineArn", SM("x")));
	cr_assert_str_eq(s(d, "definition"), OK_DEF, "the refused update changed the machine");
	json_decref(d);
	json_decref(ok(
	        "UpdateStateMachine",
	        json_pack("{s:s,s:s}", "stateMachineArn", SM("std"), "definition", CALLBACK_DEF)));
	/* ValidateStateMachineDefinition follows its type (STANDARD when absent) */
	j = ok("ValidateStateMachineDefinition",
	       json_pack("{s:s,s:s}", "definition", MIXED_DEF, "type", "EXPRESS"));
	cr_assert_str_eq(s(j, "result"), "FAIL");
	json_t *diags = json_object_get(j, "diagnostics");
	cr_assert_eq(json_array_size(diags), 3);
	cr_assert_str_eq(s(json_array_get(diags, 1), "location"), "/States/J/Resource");
	cr_assert(strstr(s(json_array_get(diags, 1), "message"), "'.sync'"));
	json_decref(j);
	j = ok("ValidateStateMachineDefinition", json_pack("{s:s}", "definition", MIXED_DEF));
	cr_assert_str_eq(s(j, "result"), "OK");
	json_decref(j);
	stop();
}

/* Runs `sluice validate ARGS` in dir; stdout in *out (new string). */
static int
validate(const char *dir, const char *args, char **out)
{
	const char *bin = getenv("SLUICE_BIN");
	cr_assert_not_null(bin, "SLUICE_BIN is not set (run through meson test)");
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "cd '%s' && '%s' validate %s 2>/dev/null", dir, bin, args);
	return h_run(cmd, out);
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(express_rules, validate_type_express_and_app_files)
{
	char dir[] = "/tmp/sluice-xrules-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	write_file(dir, "m.yaml",
	           "StartAt: A\n"
	           "States:\n"
	           "  A:\n"
	           "    Type: Task\n"
	           "    Resource: arn:aws:states:::ecs:runTask.sync\n"
	           "    End: true\n");
	write_file(dir, "app.yaml",
	           "stateMachines:\n"
	           "  fast:\n"
	           "    type: EXPRESS\n"
	           "    definition:\n"
	           "      StartAt: A\n"
	           "      States:\n"
	           "        A: {Type: Task, Resource: 'activity:work', End: true}\n"
	           "  file:\n"
	           "    type: EXPRESS\n"
	           "    definitionFile: m.yaml\n"
	           "  slow:\n"
	           "    definitionFile: m.yaml\n");
	char *out = NULL;
	cr_assert_eq(validate(dir, "m.yaml", &out), 0, "%s", out);
	cr_assert_str_eq(out, "");
	free(out);
	cr_assert_eq(validate(dir, "--type EXPRESS m.yaml", &out), 2);
	cr_assert_str_eq(out,
	                 "m.yaml:5:15: SCHEMA_VALIDATION_FAILED: Express state machine does "
	                 "not support '.sync' service integration\n");
	free(out);
	cr_assert_eq(validate(dir, "--type=STANDARD m.yaml", &out), 0, "%s", out);
	free(out);
	cr_assert_eq(validate(dir, "--type FAST m.yaml", &out), 2);
	free(out);
	/* the app file: each machine by its own type, located in its own file */
	cr_assert_eq(validate(dir, "app.yaml", &out), 2);
	cr_assert(strstr(out, "app.yaml:7:") && strstr(out, "Activity ARN"), "%s", out);
	cr_assert(strstr(out,
	                 "m.yaml:5:15: SCHEMA_VALIDATION_FAILED: Express state machine does "
	                 "not support '.sync' service integration\n"),
	          "%s", out);
	int lines = 0;
	for (const char *p = out; (p = strchr(p, '\n')); p++)
		lines++;
	cr_assert_eq(lines, 2, "the STANDARD machine of m.yaml is valid: %s", out);
	free(out);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

/* ---- --mock-config across SIGKILL ------------------------------------------------------ */

static char mock_path[64];

static void
start_mocked(const char *data)
{
	const char *extra[] = {
		"--virtual-time", T0, "--mock-config", mock_path, data ? "--data" : NULL, data, NULL
	};
	cr_assert(h_start(&srv, extra), "server did not start");
}

static void
advance(int seconds)
{
	json_decref(ok_target("Sluice.AdvanceClock", json_pack("{s:i}", "Seconds", seconds)));
}

static void
write_mock_config(void)
{
	snprintf(mock_path, sizeof mock_path, "/tmp/sluice-xmock-XXXXXX");
	int fd = mkstemp(mock_path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, MOCK_CONFIG, strlen(MOCK_CONFIG)), (ssize_t)strlen(MOCK_CONFIG));
	close(fd);
}

/* The durable record of the express execution whose ARN starts with prefix, from a stopped
 * server's data directory (srv_express.c's layout); NULL when absent. */
static json_t *
express_record(const char *data, const char *prefix)
{
	store_t *st = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(store_open(data, NULL, &st, &err), SL_OK, "%s", sl_error_text(&err));
	store_txn_t *txn = NULL;
	cr_assert_eq(store_read_begin(st, &txn), SL_OK);
	struct store_key k;
	store_key_init(&k);
	store_key_u32(&k, 0x00785200u);
	store_key_raw(&k, prefix, strlen(prefix));
	store_cursor_t *c = NULL;
	cr_assert_eq(store_cursor_open(txn, STORE_DB_EXECUTIONS, &c), SL_OK);
	cr_assert_eq(store_cursor_seek_prefix(c, k.buf, k.len), SL_OK);
	struct store_val key, v;
	json_t *rec = NULL;
	if (store_cursor_next(c, &key, &v) == SL_OK)
		rec = json_loadb(v.data, v.len, 0, NULL);
	store_cursor_close(c);
	store_read_end(txn);
	store_free(st);
	return rec;
}

/* Number of --mock-config association records left in the durable store. */
static size_t
mock_records(const char *data)
{
	store_t *st = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(store_open(data, NULL, &st, &err), SL_OK, "%s", sl_error_text(&err));
	store_txn_t *txn = NULL;
	cr_assert_eq(store_read_begin(st, &txn), SL_OK);
	struct store_key k;
	store_key_init(&k);
	store_key_u32(&k, 0x00784D00u);
	size_t n = 0;
	cr_assert_eq(store_count_prefix(txn, STORE_DB_EXECUTIONS, k.buf, k.len, &n), SL_OK);
	store_read_end(txn);
	store_free(st);
	return n;
}

Test(express_rules, mock_test_case_survives_sigkill)
{
	write_mock_config();
	start_mocked(NULL);
	json_decref(ok("CreateStateMachine", create_req("mw", WAIT_TASK_DEF, "STANDARD")));
	json_decref(ok("CreateStateMachine", create_req("mwx", WAIT_TASK_DEF, "EXPRESS")));
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s}", "stateMachineArn", SM("mw") "#Happy", "name", "m1")));
	json_t *a = ok("StartExecution",
	               json_pack("{s:s,s:s}", "stateMachineArn", SM("mwx") "#Happy", "name", "x1"));
	json_decref(a);
	/* both wait on the frozen clock: surely in flight */
	json_t *d = ok("DescribeExecution", json_pack("{s:s}", "executionArn", EXEC("mw", "m1")));
	cr_assert_str_eq(s(d, "status"), "RUNNING");
	json_decref(d);
	h_kill(&srv);
	char data[300];
	snprintf(data, sizeof data, "%s", srv.data);
	cr_assert_eq(mock_records(data), 1, "the STANDARD start's test case is not stored");
	json_t *rec = express_record(data, XARN("mwx", "x1") ":");
	cr_assert_not_null(rec);
	cr_assert_str_eq(s(rec, "testCase"), "Happy");
	json_decref(rec);

	struct h_server old = srv;
	start_mocked(data);
	advance(120);
	/* the STANDARD execution's task is answered by its test case, not left to workers */
	d = NULL;
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		json_decref(d);
		d = ok("DescribeExecution", json_pack("{s:s}", "executionArn", EXEC("mw", "m1")));
		if (strcmp(s(d, "status"), "RUNNING") != 0)
			break;
		nap_ms(50);
	}
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	json_t *out = json_loads(s(d, "output"), 0, NULL);
	cr_assert_eq(json_integer_value(json_object_get(out, "v")), 7);
	json_decref(out);
	json_decref(d);
	/* the EXPRESS one ran again from its start, mocked too: let its Wait end */
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		advance(120);
		struct h_response r;
		cr_assert(h_request(srv.http_port, "GET", "/metrics", NULL, NULL, 0, &r));
		bool idle = strstr(r.body, "\nsluice_express_executions_running 0\n") != NULL;
		h_response_free(&r);
		if (idle)
			break;
		nap_ms(50);
	}
	cr_assert_eq(h_stop(&srv), 0);
	rec = express_record(data, XARN("mwx", "x1") ":");
	cr_assert_not_null(rec);
	cr_assert_str_eq(s(rec, "status"), "SUCCEEDED", "%s", json_dumps(rec, 0));
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(rec, "output"), "v")), 7,
	             "%s", json_dumps(rec, 0));
	json_decref(rec);
	/* the end forgot the association */
	cr_assert_eq(mock_records(data), 0);
	h_cleanup(&srv);
	h_cleanup(&old);
	unlink(mock_path);
}

/* ---- a workflow starting an EXPRESS child ---------------------------------------------- */

#define CHILD_DEF                                                                                  \
	"{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"Result\":\"child\","            \
	"\"ResultPath\":\"$.r\",\"End\":true}}}"
#define PARENT_DEF(resource)                                                                       \
	"{\"StartAt\":\"S\",\"States\":{\"S\":{\"Type\":\"Task\",\"Resource\":"                    \
	"\"" resource "\",\"Parameters\":{\"StateMachineArn\":\"" SM(                              \
	        "kid") "\",\"Input\":{\"k.$\":\"$.k\"}},\"End\":true}}}"

static json_t *
wait_done(const char *arn)
{
	json_t *d = NULL;
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		json_decref(d);
		d = ok("DescribeExecution", json_pack("{s:s}", "executionArn", arn));
		if (strcmp(s(d, "status"), "RUNNING") != 0)
			break;
		nap_ms(50);
	}
	return d;
}

Test(express_rules, a_workflow_starts_an_express_child_on_the_express_engine)
{
	start();
	json_decref(ok("CreateStateMachine", create_req("kid", CHILD_DEF, "EXPRESS")));
	json_decref(ok("CreateStateMachine",
	               create_req("fire", PARENT_DEF("arn:aws:states:::states:startExecution"),
	                          "STANDARD")));
	/* AWS allows .sync:2 of an EXPRESS child from a STANDARD parent: it runs as an EXPRESS
	 * execution and its end answers the parent */
	json_decref(
	        ok("CreateStateMachine",
	           create_req("wait", PARENT_DEF("arn:aws:states:::states:startExecution.sync:2"),
	                      "STANDARD")));
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("fire"), "name", "p1",
	                         "input", "{\"k\":5}")));
	json_t *d = wait_done(EXEC("fire", "p1"));
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	json_t *out = json_loads(s(d, "output"), 0, NULL);
	const char *child = s(out, "ExecutionArn");
	/* the child's ARN is an express one, as StartExecution of an EXPRESS machine answers */
	cr_assert(child && strncmp(child, XARN("kid", ""), strlen(XARN("kid", ""))) == 0, "%s",
	          s(d, "output"));
	char xprefix[300];
	snprintf(xprefix, sizeof xprefix, "%s", child);
	json_decref(out);
	json_decref(d);
	/* AWS keeps no execution API for it */
	fails("DescribeExecution", json_pack("{s:s}", "executionArn", xprefix), "InvalidArn",
	      "express");

	/* .sync:2 waits for the child and hands over its output */
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("wait"), "name", "p2",
	                         "input", "{\"k\":6}")));
	d = wait_done(EXEC("wait", "p2"));
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	out = json_loads(s(d, "output"), 0, NULL);
	json_t *o = json_object_get(out, "Output");
	cr_assert_eq(json_integer_value(json_object_get(o, "k")), 6, "%s", s(d, "output"));
	cr_assert_str_eq(json_string_value(json_object_get(o, "r")), "child");
	/* it ran as an EXPRESS execution too */
	cr_assert(strncmp(s(out, "ExecutionArn"), XARN("kid", ""), strlen(XARN("kid", ""))) == 0,
	          "%s", s(d, "output"));
	cr_assert_str_eq(s(out, "Status"), "SUCCEEDED");
	cr_assert_str_eq(s(out, "StateMachineArn"), SM("kid"));
	json_decref(out);
	json_decref(d);

	/* .sync hands over JSON texts; a failing child fails the parent's task */
	json_decref(
	        ok("CreateStateMachine",
	           create_req("textual", PARENT_DEF("arn:aws:states:::states:startExecution.sync"),
	                      "STANDARD")));
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("textual"), "name", "p3",
	                         "input", "{\"k\":7}")));
	d = wait_done(EXEC("textual", "p3"));
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	out = json_loads(s(d, "output"), 0, NULL);
	cr_assert(json_is_string(json_object_get(out, "Output")), "%s", s(d, "output"));
	json_t *ot = json_loads(s(out, "Output"), 0, NULL);
	cr_assert_eq(json_integer_value(json_object_get(ot, "k")), 7);
	json_decref(ot);
	json_decref(out);
	json_decref(d);
	json_decref(ok("UpdateStateMachine",
	               json_pack("{s:s,s:s}", "stateMachineArn", SM("kid"), "definition",
	                         "{\"StartAt\":\"F\",\"States\":{\"F\":{\"Type\":\"Fail\","
	                         "\"Error\":\"Nope\",\"Cause\":\"child says no\"}}}")));
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("wait"), "name", "p4",
	                         "input", "{\"k\":8}")));
	d = wait_done(EXEC("wait", "p4"));
	cr_assert_str_eq(s(d, "status"), "FAILED", "%s", json_dumps(d, 0));
	cr_assert_str_eq(s(d, "error"), "States.TaskFailed");
	cr_assert(strstr(s(d, "cause"), "\"Status\":\"FAILED\"")
	                  && strstr(s(d, "cause"), "\"Error\":\"Nope\""),
	          "%s", s(d, "cause"));
	json_decref(d);

	/* the fire-and-forget child ran on the express engine: its start and end are its
	 * durable express record */
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		struct h_response r;
		cr_assert(h_request(srv.http_port, "GET", "/metrics", NULL, NULL, 0, &r));
		bool idle = strstr(r.body, "\nsluice_express_executions_running 0\n") != NULL;
		h_response_free(&r);
		if (idle)
			break;
		nap_ms(50);
	}
	char data[300];
	snprintf(data, sizeof data, "%s", srv.data);
	cr_assert_eq(h_stop(&srv), 0);
	json_t *rec = express_record(data, xprefix);
	cr_assert_not_null(rec, "no express record of %s", xprefix);
	cr_assert_str_eq(s(rec, "status"), "SUCCEEDED", "%s", json_dumps(rec, 0));
	json_t *ro = json_object_get(rec, "output");
	cr_assert_eq(json_integer_value(json_object_get(ro, "k")), 5, "%s", json_dumps(rec, 0));
	json_decref(rec);
	h_cleanup(&srv);
}

/* A .sync:2 EXPRESS child in flight at SIGKILL runs again from its start (at-least-once) and
 * its end still answers the parent. The child waits on the fake clock. */
Test(express_rules, a_sync_express_child_answers_its_parent_after_sigkill)
{
	const char *extra[] = { "--virtual-time", T0, NULL };
	cr_assert(h_start(&srv, extra), "server did not start");
	json_decref(ok("CreateStateMachine",
	               create_req("kid",
	                          "{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\","
	                          "\"Seconds\":60,\"End\":true}}}",
	                          "EXPRESS")));
	json_decref(
	        ok("CreateStateMachine",
	           create_req("wait", PARENT_DEF("arn:aws:states:::states:startExecution.sync:2"),
	                      "STANDARD")));
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", SM("wait"), "name", "p1",
	                         "input", "{\"k\":9}")));
	json_t *d = ok("DescribeExecution", json_pack("{s:s}", "executionArn", EXEC("wait", "p1")));
	cr_assert_str_eq(s(d, "status"), "RUNNING");
	json_decref(d);
	h_kill(&srv);
	char data[300];
	snprintf(data, sizeof data, "%s", srv.data);
	struct h_server old = srv;
	const char *again[] = { "--virtual-time", T0, "--data", data, NULL };
	cr_assert(h_start(&srv, again), "restart failed");
	d = NULL;
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		advance(120);
		json_decref(d);
		d = ok("DescribeExecution", json_pack("{s:s}", "executionArn", EXEC("wait", "p1")));
		if (strcmp(s(d, "status"), "RUNNING") != 0)
			break;
		nap_ms(50);
	}
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	json_t *out = json_loads(s(d, "output"), 0, NULL);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(out, "Output"), "k")), 9,
	             "%s", s(d, "output"));
	json_decref(out);
	json_decref(d);
	stop();
	h_cleanup(&old);
}

/* An EXPRESS execution starting a STANDARD machine: the child is durable, on the durable
 * engine, and DescribeExecution finds it. */
Test(express_rules, an_express_parent_starts_a_durable_standard_child)
{
	start();
	json_decref(ok("CreateStateMachine", create_req("kid", CHILD_DEF, "STANDARD")));
	json_decref(ok(
	        "CreateStateMachine",
	        create_req("xp", PARENT_DEF("arn:aws:states:::states:startExecution"), "EXPRESS")));
	json_t *r = ok("StartSyncExecution",
	               json_pack("{s:s,s:s}", "stateMachineArn", SM("xp"), "input", "{\"k\":3}"));
	cr_assert_str_eq(s(r, "status"), "SUCCEEDED", "%s", json_dumps(r, 0));
	json_t *out = json_loads(s(r, "output"), 0, NULL);
	const char *child = s(out, "ExecutionArn");
	cr_assert(child && strncmp(child, EXEC("kid", ""), strlen(EXEC("kid", ""))) == 0, "%s",
	          s(r, "output"));
	json_t *d = wait_done(child);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	json_t *o = json_loads(s(d, "output"), 0, NULL);
	cr_assert_eq(json_integer_value(json_object_get(o, "k")), 3);
	json_decref(o);
	json_decref(d);
	json_decref(out);
	json_decref(r);
	stop();
}
