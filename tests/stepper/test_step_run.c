/*
 * test_step_run.c - `sluice run` as a user runs it: output and exit codes 0/1/2, both mock
 * formats, --virtual-time and --history.
 */
#include <sys/wait.h>

#include "tests/stepper/step_test_util.h"

static char tmpdir[64];

static void
setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/step-run-XXXXXX");
	cr_assert(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	step_test_rmtree(tmpdir);
}

static char *
write_file(const char *name, const char *text)
{
	char *p = sl_asprintf("%s/%s", tmpdir, name);
	FILE *f = fopen(p, "w");
	cr_assert(f);
	fputs(text, f);
	fclose(f);
	return p;
}

/* Runs `sluice run ARGS` through the shell; returns the exit code, stdout in out. */
static int
run(const char *args, char *out, size_t cap)
{
	const char *bin = getenv("SLUICE_BIN");
	if (!bin)
		cr_skip_test("SLUICE_BIN is not set");
	char *cmd = sl_asprintf("%s run %s 2>&1", bin, args);
	FILE *p = popen(cmd, "r");
	sl_free(cmd);
	cr_assert(p);
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = 0;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *DEF = "{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\",\"Seconds\":"
                         "86400,\"Next\":\"T\"},"
                         "\"T\":{\"Type\":\"Task\",\"Resource\":\"arn:aws:lambda:us-east-1:"
                         "000000000000:function:f\","
                         "\"Retry\":[{\"ErrorEquals\":[\"Flaky\"],\"IntervalSeconds\":600}],"
                         "\"ResultPath\":\"$.r\","
                         "\"End\":true}}}";

TestSuite(step_run, .init = setup, .fini = teardown);

Test(step_run, succeeds_with_short_mock_and_virtual_time)
{
	char *def = write_file("m.json", DEF);
	char *mock = write_file("mock.json",
	                        "{\"T\":[{\"Throw\":{\"Error\":\"Flaky\",\"Cause\":\"c\"}},"
	                        "{\"Return\":{\"ok\":true}}]}");
	char out[8192];
	char *args = sl_asprintf("%s --input '{\"a\":1}' --mock %s --virtual-time", def, mock);
	int rc = run(args, out, sizeof out);
	cr_expect_eq(rc, 0, "exit %d: %s", rc, out);
	cr_expect_str_eq(out, "{\"a\":1,\"r\":{\"ok\":true}}\n");
	sl_free(args);
	sl_free(def);
	sl_free(mock);
}

Test(step_run, failure_prints_error_and_exits_1)
{
	char *def = write_file("f.yaml",
	                       "StartAt: F\nStates:\n  F:\n    Type: Fail\n"
	                       "    Error: Nope\n    Cause: because\n");
	char out[4096];
	char *args = sl_asprintf("%s", def);
	int rc = run(args, out, sizeof out);
	cr_expect_eq(rc, 1, "exit %d: %s", rc, out);
	cr_expect_str_eq(out, "{\"error\":\"Nope\",\"cause\":\"because\"}\n");
	sl_free(args);
	sl_free(def);
}

Test(step_run, full_mock_config_and_history)
{
	char *def = write_file("m.json", DEF);
	char *mock = write_file(
	        "cfg.json",
	        "{\"StateMachines\":{\"m\":{\"TestCases\":{\"Ok\":{\"T\":\"R\"},\"Bad\":{"
	        "\"T\":\"B\"}}}},\"MockedResponses\":{\"R\":{\"0\":{\"Return\":5}},\"B\":{"
	        "\"0-3\":{\"Throw\":{\"Error\":\"Flaky\"}}}}}");
	char out[16384];
	char *args
	        = sl_asprintf("%s --mock %s --mock-case Bad --virtual-time --history", def, mock);
	int rc = run(args, out, sizeof out);
	cr_expect_eq(rc, 1, "exit %d: %s", rc, out);
	cr_expect(strstr(out, "\"type\":\"ExecutionStarted\""), "%s", out);
	cr_expect(strstr(out, "\"type\":\"LambdaFunctionFailed\""), "%s", out);
	cr_expect(strstr(out, "{\"error\":\"Flaky\",\"cause\":null}\n"), "%s", out);
	sl_free(args);
	sl_free(def);
	sl_free(mock);
}

Test(step_run, bad_definition_input_and_usage_exit_2)
{
	char *def = write_file("bad.json",
	                       "{\"StartAt\":\"X\",\"States\":{\"A\":{\"Type\":\"Pass\","
	                       "\"End\":true}}}");
	char out[4096];
	char *args = sl_asprintf("%s", def);
	cr_expect_eq(run(args, out, sizeof out), 2, "%s", out);
	cr_expect(strstr(out, "bad.json"), "%s", out);
	// the file is named once, then the location: "DIR/bad.json:1:..." not "bad.json:bad.json"
	const char *first = strstr(out, "bad.json");
	cr_expect(first && strncmp(first + strlen("bad.json"), ":1:", 3) == 0, "%s", out);
	cr_expect(first && !strstr(first + 1, "bad.json"), "%s", out);
	sl_free(args);
	char *good = write_file("ok.json",
	                        "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\","
	                        "\"End\":true}}}");
	args = sl_asprintf("%s --input '{nope'", good);
	cr_expect_eq(run(args, out, sizeof out), 2, "%s", out);
	cr_expect(strstr(out, "--input"), "%s", out);
	sl_free(args);
	cr_expect_eq(run("--bogus", out, sizeof out), 2, "%s", out);
	cr_expect_eq(run("", out, sizeof out), 2, "%s", out);
	sl_free(def);
	sl_free(good);
}

Test(step_run, task_without_mock_is_a_runtime_error)
{
	char *def = write_file("m.json", DEF);
	char out[4096];
	char *args = sl_asprintf("%s --virtual-time", def);
	cr_expect_eq(run(args, out, sizeof out), 3, "%s", out);
	cr_expect(strstr(out, "Task state 'T' has no mocked response"), "%s", out);
	sl_free(args);
	sl_free(def);
}
