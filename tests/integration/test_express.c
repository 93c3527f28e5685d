/*
 * EXPRESS executions on the real server: StartExecution answers with an express ARN and
 * the execution's start and end are kept in the durable store (read back after a stop);
 * the APIs AWS refuses for EXPRESS are refused with AWS's errors; StartSyncExecution's
 * shapes for SUCCEEDED, FAILED and TIMED_OUT, and its refusal of STANDARD; a Wait and a
 * worker task inside an express execution; SIGKILL with executions in flight (async ones
 * run again and succeed, the sync one is not run again); the aws CLI; --mock-config with
 * stateMachineArn#TestCase (Return, Throw, retries counted per attempt).
 *
 * Waits are bounded polls (hang guards), never timing assertions.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AWS_CALLS_SERVICE "AWSStepFunctions"
#include "store/store.h"
#include "tests/integration/aws_calls.h"
#include "tests/integration/harness.h"

#define SM(name)     "arn:aws:states:us-east-1:000000000000:stateMachine:" name
#define EXEC(m, n)   "arn:aws:states:us-east-1:000000000000:execution:" m ":" n
#define XARN(m, n)   "arn:aws:states:us-east-1:000000000000:express:" m ":" n
#define ROLE         "arn:aws:iam::000000000000:role/x"
#define DONE_WAIT_MS 20000

#define PASS_DEF                                                                                   \
	"{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"Result\":\"done\","             \
	"\"ResultPath\":\"$.r\",\"End\":true}}}"
#define FAIL_DEF                                                                                   \
	"{\"StartAt\":\"F\",\"States\":{\"F\":{\"Type\":\"Fail\",\"Error\":\"Broken\","            \
	"\"Cause\":\"on purpose\"}}}"
#define SLOW_DEF                                                                                   \
	"{\"TimeoutSeconds\":1,\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\","            \
	"\"Seconds\":30,\"End\":true}}}"
/* a Wait, then a Lambda function served by a `sluice worker` */
#define WORK_DEF                                                                                   \
	"{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\",\"Seconds\":1,\"Next\":\"L\"},"   \
	"\"L\":{\"Type\":\"Task\",\"Resource\":"                                                   \
	"\"arn:aws:lambda:us-east-1:000000000000:function:echo\",\"ResultPath\":\"$.w\","          \
	"\"End\":true}}}"
#define HOLD_DEF                                                                                   \
	"{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"Next\":\"T\"},"                 \
	"\"T\":{\"Type\":\"Task\",\"Resource\":"                                                   \
	"\"arn:aws:lambda:us-east-1:000000000000:function:hold\",\"End\":true}}}"
#define MOCKED_DEF                                                                                 \
	"{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"                    \
	"\"arn:aws:states:::lambda:invoke\",\"Parameters\":{\"FunctionName\":\"f\"},"              \
	"\"Retry\":[{\"ErrorEquals\":[\"Flaky\"],\"IntervalSeconds\":1,\"MaxAttempts\":3,"         \
	"\"BackoffRate\":1}],\"End\":true}}}"
#define MOCK_CONFIG                                                                                \
	"{\"StateMachines\":{"                                                                     \
	"\"mk\":{\"TestCases\":{\"Happy\":{\"T\":\"ok\"},\"Flaky\":{\"T\":\"twice\"},"             \
	"\"Down\":{\"T\":\"down\"}}},"                                                             \
	"\"mks\":{\"TestCases\":{\"Happy\":{\"T\":\"ok\"}}}},"                                     \
	"\"MockedResponses\":{"                                                                    \
	"\"ok\":{\"0\":{\"Return\":{\"v\":1}}},"                                                   \
	"\"twice\":{\"0-1\":{\"Throw\":{\"Error\":\"Flaky\",\"Cause\":\"try again\"}},"            \
	"\"2\":{\"Return\":{\"v\":3}}},"                                                           \
	"\"down\":{\"0\":{\"Throw\":{\"Error\":\"Down\",\"Cause\":\"it is down\"}}}}}"

static void
nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static void
create(const char *name, const char *def, const char *type)
{
	json_decref(ok("CreateStateMachine",
	               json_pack("{s:s,s:s,s:s,s:s}", "name", name, "definition", def, "roleArn",
	                         ROLE, "type", type)));
}

static json_t *
start_req(const char *smarn, const char *name, const char *input)
{
	json_t *req = json_pack("{s:s}", "stateMachineArn", smarn);
	if (name)
		json_object_set_new(req, "name", json_string(name));
	if (input)
		json_object_set_new(req, "input", json_string(input));
	return req;
}

static json_t *
sync_exec(const char *smarn, const char *name, const char *input)
{
	return ok("StartSyncExecution", start_req(smarn, name, input));
}

static void
expect_json(const char *text, const char *want)
{
	json_t *a = json_loads(text ? text : "null", JSON_DECODE_ANY, NULL);
	json_t *b = json_loads(want, JSON_DECODE_ANY, NULL);
	cr_assert(a && b && json_equal(a, b), "got %s, want %s", text ? text : "(none)", want);
	json_decref(a);
	json_decref(b);
}

/* The durable record of the express execution whose ARN starts with prefix
 * ("...:express:MACHINE:NAME:"), read from a stopped server's data directory; NULL when
 * absent. */
static json_t *
durable_record(const char *data, const char *prefix, bool *pending)
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
	*pending = false;
	if (store_cursor_next(c, &key, &v) == SL_OK) {
		rec = json_loadb(v.data, v.len, 0, NULL);
		struct store_key pk;
		store_key_init(&pk);
		store_key_u32(&pk, 0x00785000u);
		store_key_str(&pk, json_string_value(json_object_get(rec, "arn")));
		*pending = store_get(txn, STORE_DB_EXECUTIONS, pk.buf, pk.len, &v) == SL_OK;
	}
	store_cursor_close(c);
	store_read_end(txn);
	store_free(st);
	return rec;
}

/* A `sluice worker` serving function name with command (its stdin is the task input). */
static pid_t
spawn_worker(const char *function, const char *command)
{
	const char *bin = getenv("SLUICE_BIN");
	cr_assert_not_null(bin, "SLUICE_BIN is not set (run through meson test)");
	char log[400];
	snprintf(log, sizeof log, "%s/worker-%s.log", srv.dir, function);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (!freopen(log, "a", stderr))
			_exit(126);
		const char *argv[] = { bin,      "worker", "--connect", srv.workers, "--activity",
			               function, "--exec", command,     NULL };
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static void
stop_worker(pid_t pid)
{
	kill(pid, SIGTERM);
	for (int waited = 0; waited < 20000; waited += 20) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		nap_ms(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Waits (bounded) until no EXPRESS execution runs; their ends are then committed. */
static void
wait_express_idle(void)
{
	long n = -1;
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 20) {
		if ((n = metrics_sample("sluice_express_executions_running")) == 0)
			return;
		nap_ms(20);
	}
	cr_assert_fail("%ld EXPRESS execution(s) still running after %d ms", n, DONE_WAIT_MS);
}

Test(express, async_start_is_recorded_and_aws_refusals_are_kept)
{
	start();
	create("x", PASS_DEF, "EXPRESS");
	create("std", PASS_DEF, "STANDARD");
	json_t *a = ok("StartExecution", start_req(SM("x"), "one", "{\"k\":1}"));
	char xarn[256];
	snprintf(xarn, sizeof xarn, "%s", s(a, "executionArn"));
	/* AWS's shape: ...:express:MACHINE:NAME:ID */
	cr_assert(strncmp(xarn, XARN("x", "one") ":", strlen(XARN("x", "one") ":")) == 0
	                  && strlen(xarn) == strlen(XARN("x", "one") ":") + 36,
	          "%s", xarn);
	cr_assert(json_is_number(json_object_get(a, "startDate")));
	json_decref(a);
	/* AWS: no DescribeExecution, history, stop or listing for EXPRESS */
	fails("DescribeExecution", json_pack("{s:s}", "executionArn", xarn), "InvalidArn",
	      "express");
	fails("GetExecutionHistory", json_pack("{s:s}", "executionArn", xarn), "InvalidArn",
	      "express");
	fails("StopExecution", json_pack("{s:s}", "executionArn", xarn), "InvalidArn", "express");
	fails("ListExecutions", json_pack("{s:s}", "stateMachineArn", SM("x")),
	      "StateMachineTypeNotSupported", "not supported");
	fails("StartSyncExecution", start_req(SM("std"), NULL, NULL),
	      "StateMachineTypeNotSupported", "EXPRESS");
	fails("StartSyncExecution", start_req(SM("gone"), NULL, NULL), "StateMachineDoesNotExist",
	      "gone");
	fails("StartSyncExecution", start_req(SM("x"), NULL, "{not json"), "InvalidExecutionInput",
	      "JSON");
	/* a sync execution after it: the async one has ended by the time it answers */
	json_t *sy = sync_exec(SM("x"), "two", NULL);
	cr_assert_str_eq(s(sy, "status"), "SUCCEEDED");
	json_decref(sy);
	wait_express_idle();
	cr_assert_eq(metrics_sample("sluice_express_executions_total{event=\"ended\"}"), 2);
	char data[300];
	snprintf(data, sizeof data, "%s", srv.data);
	cr_assert_eq(h_stop(&srv), 0);
	bool pending = true;
	json_t *rec = durable_record(data, XARN("x", "one") ":", &pending);
	cr_assert_not_null(rec, "no durable record of the async execution");
	cr_assert(!pending, "the async execution is still pending");
	cr_assert_str_eq(s(rec, "status"), "SUCCEEDED");
	char *out = json_dumps(json_object_get(rec, "output"), JSON_COMPACT);
	expect_json(out, "{\"k\":1,\"r\":\"done\"}");
	free(out);
	cr_assert(json_is_integer(json_object_get(rec, "stop")));
	json_decref(rec);
	h_cleanup(&srv);
}

/* Ended executions leave the scratch store: it stays small under a steady load. */
Test(express, the_scratch_store_keeps_only_running_executions)
{
	start();
	create("many", PASS_DEF, "EXPRESS");
	char input[1200];
	memset(input, 0, sizeof input);
	strcpy(input, "{\"pad\":\"");
	memset(input + strlen(input), 'x', 1024);
	strcat(input, "\"}");
	for (int i = 0; i < 400; i++)
		json_decref(ok("StartExecution", start_req(SM("many"), NULL, input)));
	wait_express_idle();
	cr_assert_eq(metrics_sample("sluice_express_executions_total{event=\"ended\"}"), 400);
	/* 400 inputs of 1 KiB kept twice (record and frame) would be over 800 KiB */
	long used = metrics_sample("sluice_express_store_used_bytes");
	cr_assert(used > 0 && used < 256 * 1024, "scratch store uses %ld bytes", used);
	stop();
}

Test(express, sync_answers_succeeded_failed_and_timed_out_in_aws_shape)
{
	start();
	create("ok", PASS_DEF, "EXPRESS");
	create("bad", FAIL_DEF, "EXPRESS");
	create("slow", SLOW_DEF, "EXPRESS");
	json_t *r = sync_exec(SM("ok"), "s1", "{\"in\":true}");
	cr_assert(strncmp(s(r, "executionArn"), XARN("ok", "s1") ":", strlen(XARN("ok", "s1") ":"))
	                  == 0,
	          "%s", s(r, "executionArn"));
	cr_assert_str_eq(s(r, "stateMachineArn"), SM("ok"));
	cr_assert_str_eq(s(r, "name"), "s1");
	cr_assert_str_eq(s(r, "status"), "SUCCEEDED");
	expect_json(s(r, "output"), "{\"in\":true,\"r\":\"done\"}");
	expect_json(s(r, "input"), "{\"in\":true}");
	cr_assert(json_is_true(json_object_get(json_object_get(r, "outputDetails"), "included")));
	cr_assert(json_is_true(json_object_get(json_object_get(r, "inputDetails"), "included")));
	cr_assert(json_is_number(json_object_get(r, "startDate")));
	cr_assert(json_is_number(json_object_get(r, "stopDate")));
	json_t *bill = json_object_get(r, "billingDetails");
	cr_assert(json_is_integer(json_object_get(bill, "billedDurationInMilliseconds")));
	cr_assert(json_is_integer(json_object_get(bill, "billedMemoryUsedInMB")));
	cr_assert_null(json_object_get(r, "error"));
	json_decref(r);
	/* an ended EXPRESS execution's name may be used again */
	r = sync_exec(SM("ok"), "s1", "{\"again\":1}");
	cr_assert_str_eq(s(r, "status"), "SUCCEEDED", "%s", json_dumps(r, 0));
	expect_json(s(r, "output"), "{\"again\":1,\"r\":\"done\"}");
	json_decref(r);

	r = sync_exec(SM("bad"), NULL, NULL);
	cr_assert_str_eq(s(r, "status"), "FAILED");
	cr_assert_str_eq(s(r, "error"), "Broken");
	cr_assert_str_eq(s(r, "cause"), "on purpose");
	cr_assert_null(json_object_get(r, "output"));
	cr_assert(strstr(s(r, "executionArn"), ":express:bad:"), "%s", s(r, "executionArn"));
	json_decref(r);

	r = sync_exec(SM("slow"), "late", NULL);
	cr_assert_str_eq(s(r, "status"), "TIMED_OUT");
	cr_assert_str_eq(s(r, "error"), "States.Timeout");
	cr_assert_null(json_object_get(r, "output"));
	json_decref(r);
	stop();
}

Test(express, a_wait_and_a_worker_task_run_inside_express)
{
	start();
	create("work", WORK_DEF, "EXPRESS");
	pid_t w = spawn_worker("echo", "cat");
	json_t *r = sync_exec(SM("work"), "w1", "{\"n\":7}");
	cr_assert_str_eq(s(r, "status"), "SUCCEEDED", "%s", json_dumps(r, 0));
	expect_json(s(r, "output"), "{\"n\":7,\"w\":{\"n\":7}}");
	json_decref(r);
	/* AWS runs EXPRESS executions of one name side by side */
	json_t *d1 = ok("StartExecution", start_req(SM("work"), "twin", "{\"n\":2}"));
	json_t *d2 = ok("StartExecution", start_req(SM("work"), "twin", "{\"n\":3}"));
	cr_assert_str_neq(s(d1, "executionArn"), s(d2, "executionArn"));
	cr_assert(strstr(s(d2, "executionArn"), ":express:work:twin:"), "%s",
	          s(d2, "executionArn"));
	json_decref(d1);
	json_decref(d2);
	/* async too, several at once through the same worker */
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof name, "a%d", i);
		json_decref(ok("StartExecution", start_req(SM("work"), name, "{\"n\":1}")));
	}
	r = sync_exec(SM("work"), "w2", "{\"n\":8}");
	cr_assert_str_eq(s(r, "status"), "SUCCEEDED", "%s", json_dumps(r, 0));
	json_decref(r);
	wait_express_idle();
	stop_worker(w);
	char data[300];
	snprintf(data, sizeof data, "%s", srv.data);
	cr_assert_eq(h_stop(&srv), 0);
	for (int i = 0; i < 5; i++) {
		char arn[256];
		snprintf(arn, sizeof arn, XARN("work", "a%d") ":", i);
		bool pending = true;
		json_t *rec = durable_record(data, arn, &pending);
		cr_assert_not_null(rec, "%s", arn);
		cr_assert(!pending, "%s", arn);
		cr_assert_str_eq(s(rec, "status"), "SUCCEEDED", "%s", json_dumps(rec, 0));
		char *o = json_dumps(json_object_get(rec, "output"), JSON_COMPACT);
		expect_json(o, "{\"n\":1,\"w\":{\"n\":1}}");
		free(o);
		json_decref(rec);
	}
	h_cleanup(&srv);
}

/* Lines of path that contain needle. */
static int
count_lines(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof line, f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

Test(express, sigkill_reruns_async_executions_and_not_sync_ones)
{
	start();
	create("hold", HOLD_DEF, "EXPRESS");
	enum { N = 3 };
	for (int i = 0; i < N; i++) {
		char name[16], in[32];
		snprintf(name, sizeof name, "h%d", i);
		snprintf(in, sizeof in, "{\"id\":\"async-%d\"}", i);
		json_decref(ok("StartExecution", start_req(SM("hold"), name, in)));
	}
	/* a sync one in flight: sent, never read */
	int fd = h_connect(srv.http_port);
	cr_assert_geq(fd, 0);
	const char *hdr[] = { "X-Amz-Target: AWSStepFunctions.StartSyncExecution",
		              "Content-Type: application/x-amz-json-1.0", NULL };
	const char *body
	        = "{\"stateMachineArn\":\"" SM("hold") "\",\"name\":\"sy\","
	                                               "\"input\":\"{\\\"id\\\":\\\"sync-0\\\"}\"}";
	cr_assert(h_send(fd, "POST", "/", hdr, body, strlen(body)));
	/* every task waits for a worker: all four executions are running */
	long q = 0;
	for (int waited = 0;
	     (q = metrics_sample("sluice_dispatch_tasks_queued")) < N + 1 && waited < 10000;
	     waited += 20)
		nap_ms(20);
	cr_assert_eq(q, N + 1, "tasks queued: %ld", q);
	h_kill(&srv);
	close(fd);

	char dir[300], seen[400];
	snprintf(dir, sizeof dir, "%s", srv.data);
	snprintf(seen, sizeof seen, "%s/seen.txt", srv.dir);
	const char *extra[] = { "--data", dir, NULL };
	struct h_server old = srv;
	cr_assert(h_start(&srv, extra), "restart failed");
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "tee -a %s; echo >> %s", seen, seen);
	pid_t w = spawn_worker("hold", cmd);
	for (int waited = 0; waited < DONE_WAIT_MS && count_lines(seen, "async-") < N; waited += 50)
		nap_ms(50);
	for (int i = 0; i < N; i++) {
		char id[32];
		snprintf(id, sizeof id, "async-%d\"", i);
		cr_assert_eq(count_lines(seen, id), 1, "%s ran %d time(s) after the restart", id,
		             count_lines(seen, id));
	}
	wait_express_idle();
	cr_assert_eq(metrics_sample("sluice_express_executions_total{event=\"rerun\"}"), N);
	stop_worker(w);
	cr_assert_eq(h_stop(&srv), 0);
	cr_assert_eq(count_lines(seen, "\"sync-0"), 0, "the sync execution ran again");
	for (int i = 0; i < N; i++) {
		char arn[256];
		snprintf(arn, sizeof arn, XARN("hold", "h%d") ":", i);
		bool pending = true;
		json_t *rec = durable_record(dir, arn, &pending);
		cr_assert_not_null(rec);
		cr_assert(!pending, "%s still pending", arn);
		cr_assert_str_eq(s(rec, "status"), "SUCCEEDED", "%s", json_dumps(rec, 0));
		json_decref(rec);
	}
	bool pending = true;
	json_t *rec = durable_record(dir, XARN("hold", "sy") ":", &pending);
	cr_assert_not_null(rec);
	cr_assert(!pending);
	cr_assert_str_eq(s(rec, "status"), "ABORTED", "%s", json_dumps(rec, 0));
	json_decref(rec);
	h_cleanup(&srv);
	h_cleanup(&old);
}

Test(express, aws_cli_start_sync_execution)
{
	if (h_run("command -v aws >/dev/null", NULL) != 0)
		cr_skip_test("aws CLI is not installed");
	start();
	create("cli", PASS_DEF, "EXPRESS");
	/* the CLI sends StartSyncExecution to the host "sync-" + endpoint host; botocore's
	 * AWS_DISABLE_HOST_PREFIX_INJECTION keeps the endpoint as given */
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
	         "AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 "
	         "AWS_PAGER= AWS_MAX_ATTEMPTS=1 AWS_DISABLE_HOST_PREFIX_INJECTION=true "
	         "aws --output json --endpoint-url http://127.0.0.1:%d stepfunctions "
	         "start-sync-execution --state-machine-arn %s --input '{\"c\":1}' 2>&1",
	         srv.http_port, SM("cli"));
	char *out = NULL;
	int rc = h_run(cmd, &out);
	if (rc != 0 && out && strstr(out, "sync-127.0.0.1")) {
		free(out);
		stop();
		cr_skip_test("this aws CLI cannot turn off the sync- host prefix");
	}
	cr_assert_eq(rc, 0, "%s", out);
	json_t *r = json_loads(out, 0, NULL);
	cr_assert_not_null(r, "%s", out);
	cr_assert_str_eq(s(r, "status"), "SUCCEEDED");
	expect_json(s(r, "output"), "{\"c\":1,\"r\":\"done\"}");
	json_decref(r);
	free(out);
	stop();
}

Test(express, cli_executions_start_sync)
{
	start();
	create("c1", PASS_DEF, "EXPRESS");
	create("c2", FAIL_DEF, "EXPRESS");
	char cmd[1024];
	char *out = NULL;
	snprintf(cmd, sizeof cmd,
	         "%s executions start --endpoint http://127.0.0.1:%d --state-machine c1 --sync "
	         "--input '{\"q\":2}' 2>&1",
	         getenv("SLUICE_BIN"), srv.http_port);
	int rc = h_run(cmd, &out);
	cr_assert_eq(rc, 0, "%s", out);
	json_t *r = json_loads(out, 0, NULL);
	cr_assert_not_null(r, "%s", out);
	cr_assert_str_eq(s(r, "status"), "SUCCEEDED");
	expect_json(s(r, "output"), "{\"q\":2,\"r\":\"done\"}");
	json_decref(r);
	free(out);
	snprintf(cmd, sizeof cmd,
	         "%s executions start --endpoint http://127.0.0.1:%d --state-machine c2 --sync "
	         "2>&1",
	         getenv("SLUICE_BIN"), srv.http_port);
	rc = h_run(cmd, &out);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "\"FAILED\"") && strstr(out, "Broken"), "%s", out);
	free(out);
	stop();
}

Test(express, mock_config_test_cases_answer_tasks)
{
	char path[] = "/tmp/sluice-mock-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, MOCK_CONFIG, strlen(MOCK_CONFIG)), (ssize_t)strlen(MOCK_CONFIG));
	close(fd);
	const char *extra[] = { "--mock-config", path, NULL };
	cr_assert(h_start(&srv, extra), "server did not start");
	create("mk", MOCKED_DEF, "EXPRESS");
	create("mks", MOCKED_DEF, "STANDARD");

	json_t *r = sync_exec(SM("mk") "#Happy", NULL, NULL);
	cr_assert_str_eq(s(r, "status"), "SUCCEEDED", "%s", json_dumps(r, 0));
	expect_json(s(r, "output"), "{\"v\":1}");
	json_decref(r);
	/* attempts 0 and 1 throw, the Retry runs attempt 2 */
	r = sync_exec(SM("mk") "#Flaky", NULL, NULL);
	cr_assert_str_eq(s(r, "status"), "SUCCEEDED", "%s", json_dumps(r, 0));
	expect_json(s(r, "output"), "{\"v\":3}");
	json_decref(r);
	r = sync_exec(SM("mk") "#Down", NULL, NULL);
	cr_assert_str_eq(s(r, "status"), "FAILED", "%s", json_dumps(r, 0));
	cr_assert_str_eq(s(r, "error"), "Down");
	cr_assert_str_eq(s(r, "cause"), "it is down");
	json_decref(r);
	fails("StartSyncExecution", start_req(SM("mk") "#Nope", NULL, NULL),
	      "StateMachineDoesNotExist", "Nope");
	fails("StartExecution", start_req(SM("mks") "#Flaky", NULL, NULL),
	      "StateMachineDoesNotExist", "Flaky");

	/* STANDARD through StartExecution: the same mocks, with the history AWS Local shows */
	json_decref(ok("StartExecution", start_req(SM("mks") "#Happy", "m1", NULL)));
	json_t *d = NULL;
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		json_decref(d);
		d = ok("DescribeExecution", json_pack("{s:s}", "executionArn", EXEC("mks", "m1")));
		if (strcmp(s(d, "status"), "RUNNING") != 0)
			break;
		nap_ms(50);
	}
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	expect_json(s(d, "output"), "{\"v\":1}");
	json_decref(d);
	stop();
	unlink(path);
}

/* An EventBridge rule whose target is an EXPRESS machine starts it on the express engine
 * (its start and end in the durable store, no history, refused by ListExecutions). */
Test(express, an_eventbridge_target_starts_an_express_execution)
{
	start();
	create("onevent", PASS_DEF, "EXPRESS");
	json_decref(ok_target("AWSEvents.PutRule",
	                      json_pack("{s:s,s:s}", "Name", "to-express", "EventPattern",
	                                "{\"source\":[\"test.express\"]}")));
	json_t *r = ok_target("AWSEvents.PutTargets",
	                      json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "Rule", "to-express", "Targets",
	                                "Id", "t1", "Arn", SM("onevent"), "InputPath", "$.detail"));
	cr_assert_eq(json_integer_value(json_object_get(r, "FailedEntryCount")), 0);
	json_decref(r);
	r = ok_target("AWSEvents.PutEvents",
	              json_pack("{s:[{s:s,s:s,s:s}]}", "Entries", "Source", "test.express",
	                        "DetailType", "t", "Detail", "{\"e\":5}"));
	cr_assert_eq(json_integer_value(json_object_get(r, "FailedEntryCount")), 0);
	json_decref(r);
	long ended = 0;
	for (int waited = 0; waited < DONE_WAIT_MS && ended < 1; waited += 20) {
		ended = metrics_sample("sluice_express_executions_total{event=\"ended\"}");
		if (ended < 1)
			nap_ms(20);
	}
	cr_assert_eq(ended, 1, "the target did not run an EXPRESS execution");
	fails("ListExecutions", json_pack("{s:s}", "stateMachineArn", SM("onevent")),
	      "StateMachineTypeNotSupported", "not supported");
	stop();
}

/* AWS's 5 minutes, on the server's clock: --virtual-time and Sluice.AdvanceClock. */
Test(express, five_minutes_is_the_limit_sync_and_async)
{
	const char *extra[] = { "--virtual-time", "2026-01-01T00:00:00Z", NULL };
	cr_assert(h_start(&srv, extra), "server did not start");
	create("long",
	       "{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\","
	       "\"Seconds\":36000,\"End\":true}}}",
	       "EXPRESS");
	json_decref(ok("StartExecution", start_req(SM("long"), "a1", NULL)));
	int fd = h_connect(srv.http_port);
	cr_assert_geq(fd, 0);
	const char *hdr[] = { "X-Amz-Target: AWSStepFunctions.StartSyncExecution",
		              "Content-Type: application/x-amz-json-1.0", NULL };
	const char *body = "{\"stateMachineArn\":\"" SM("long") "\",\"name\":\"s1\"}";
	cr_assert(h_send(fd, "POST", "/", hdr, body, strlen(body)));
	/* each step moves the clock past the limit of whatever started before it */
	bool answered = false;
	for (int step = 0; step < 10 && !answered; step++) {
		json_decref(ok_target("Sluice.AdvanceClock", json_pack("{s:i}", "Seconds", 301)));
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		answered = poll(&pf, 1, 3000) == 1;
	}
	cr_assert(answered, "the sync execution never timed out");
	struct h_response r;
	cr_assert(h_recv(fd, &r));
	close(fd);
	cr_assert_eq(r.status, 200, "%s", r.body);
	json_t *a = json_loads(r.body, 0, NULL);
	cr_assert_not_null(a, "%s", r.body);
	cr_assert_str_eq(s(a, "status"), "TIMED_OUT", "%s", r.body);
	cr_assert_str_eq(s(a, "error"), "States.Timeout");
	json_decref(a);
	h_response_free(&r);
	char data[300];
	snprintf(data, sizeof data, "%s", srv.data);
	/* the async one was older still: timed out by the same sweep */
	wait_express_idle();
	cr_assert_eq(h_stop(&srv), 0);
	bool pending = true;
	json_t *rec = durable_record(data, XARN("long", "a1") ":", &pending);
	cr_assert_not_null(rec);
	cr_assert(!pending);
	cr_assert_str_eq(s(rec, "status"), "TIMED_OUT", "%s", json_dumps(rec, 0));
	cr_assert_str_eq(s(rec, "error"), "States.Timeout");
	json_decref(rec);
	h_cleanup(&srv);
}

Test(express, a_bad_mock_config_stops_the_start_with_a_clear_error)
{
	char dir[] = "/tmp/sluice-mockbad-XXXXXX";
	cr_assert(mkdtemp(dir));
	char cmd[1024], *out = NULL;
	snprintf(cmd, sizeof cmd,
	         "echo '{\"StateMachines\":' > %s/m.json; %s serve --data %s/data --http "
	         "127.0.0.1:0 --workers tcp://127.0.0.1:0 --mock-config %s/m.json 2>&1",
	         dir, getenv("SLUICE_BIN"), dir, dir);
	int rc = h_run(cmd, &out);
	cr_assert_neq(rc, 0, "%s", out);
	cr_assert(strstr(out, "--mock-config") && strstr(out, "m.json"), "%s", out);
	free(out);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	h_run(cmd, NULL);
}

Test(express, mock_case_without_mock_config_is_an_invalid_arn)
{
	start();
	create("plain", PASS_DEF, "EXPRESS");
	fails("StartSyncExecution", start_req(SM("plain") "#Case", NULL, NULL), "InvalidArn",
	      "#Case");
	stop();
}
