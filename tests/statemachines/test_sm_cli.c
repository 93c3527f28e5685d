/*
 * test_sm_cli.c - `sluice validate` as a user runs it: the real binary ($SLUICE_BIN) on
 * files, checking exit codes and the exact lines on stdout.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sl_alloc.h"

struct run {
	int status;
	char out[8192];
};

/* Runs `sluice validate ARGS` in dir, capturing stdout (stderr goes to /dev/null). */
static struct run
validate(const char *dir, const char *args)
{
	const char *bin = getenv("SLUICE_BIN");
	if (!bin || access(bin, X_OK) != 0)
		cr_skip_test("SLUICE_BIN is not set to the sluice binary");
	char *cmd = sl_asprintf("cd '%s' && '%s' validate %s 2>/dev/null", dir, bin, args);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	struct run r = { 0 };
	size_t n = fread(r.out, 1, sizeof r.out - 1, p);
	r.out[n] = '\0';
	int st = pclose(p);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	sl_free(cmd);
	return r;
}

static char tmpdir[] = "/tmp/sm_cli_XXXXXX";

static void
write_file(const char *name, const char *text)
{
	char *path = sl_asprintf("%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	sl_free(path);
}

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(tmpdir));
	write_file("ok.yaml", "StartAt: A\nStates:\n  A: {Type: Pass, End: true}\n");
	write_file("ok.json", "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Succeed\"}}}");
	write_file("bad.yaml",
	           "StartAt: A\n"
	           "States:\n"
	           "  A:\n"
	           "    Type: Pass\n"
	           "    Next: B\n"
	           "    Resultpath: $.x\n"
	           "  C: {Type: Succeed}\n");
	write_file("bad.json",
	           "{\"StartAt\": \"A\",\n \"States\": {\"A\": {\"Type\": \"Wait\", "
	           "\"End\": true}}}");
	write_file("yaml-named.json", "StartAt: A\nStates: {A: {Type: Succeed}}\n");
	write_file("noext", "StartAt: A\nStates: {A: {Type: Succeed}}\n");
}

static void
teardown(void)
{
	char *cmd = sl_asprintf("rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
	sl_free(cmd);
}

TestSuite(sm_cli, .init = setup, .fini = teardown);

Test(sm_cli, valid_files_are_silent)
{
	struct run r = validate(tmpdir, "ok.yaml ok.json noext");
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "");
}

Test(sm_cli, problems_one_line_each)
{
	struct run r = validate(tmpdir, "ok.yaml bad.yaml bad.json");
	cr_assert_eq(r.status, 2);
	cr_assert_str_eq(
	        r.out,
	        "bad.yaml:6:5: SCHEMA_VALIDATION_FAILED: Field 'Resultpath' is not supported\n"
	        "bad.yaml:5:11: MISSING_TRANSITION_TARGET: Missing 'Next' target: B\n"
	        "bad.yaml:7:6: MISSING_TRANSITION_TARGET: State \"C\" is not reachable.\n"
	        "bad.json:2:18: SCHEMA_VALIDATION_FAILED: A Wait state must have exactly "
	        "one of 'Seconds', 'SecondsPath', 'Timestamp' or 'TimestampPath'\n");
}

Test(sm_cli, format_follows_extension_unless_forced)
{
	struct run r = validate(tmpdir, "yaml-named.json");
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.out, "yaml-named.json:1:7: INVALID_JSON_DESCRIPTION: invalid token"),
	          "%s", r.out);
	r = validate(tmpdir, "--format yaml yaml-named.json");
	cr_assert_eq(r.status, 0, "%s", r.out);
	r = validate(tmpdir, "--format=json ok.json");
	cr_assert_eq(r.status, 0);
}

Test(sm_cli, stdin_and_missing_files)
{
	struct run r = validate(tmpdir, "- < ok.yaml");
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "");
	r = validate(tmpdir, "missing.yaml");
	cr_assert_eq(r.status, 2);
	cr_assert_str_eq(r.out, "missing.yaml: No such file or directory\n");
}

Test(sm_cli, usage)
{
	struct run r = validate(tmpdir, "--help");
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "usage: sluice validate"));
	r = validate(tmpdir, "");
	cr_assert_eq(r.status, 2);
	r = validate(tmpdir, "--format xml ok.yaml");
	cr_assert_eq(r.status, 2);
	r = validate(tmpdir, "--frobnicate ok.yaml");
	cr_assert_eq(r.status, 2);
}
