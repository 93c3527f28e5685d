/*
 * test_pattern_cli.c - `sluice test-pattern` as a user runs it: the real binary
 * ($SLUICE_BIN), its output and its exit codes, single and batch forms.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/sluice-test-pattern-XXXXXX";

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(pattern_cli, .init = setup, .fini = teardown);

static const char *
bin(void)
{
	const char *b = getenv("SLUICE_BIN");
	if (!b || access(b, X_OK) != 0)
		cr_skip_test("SLUICE_BIN not set or not executable");
	return b;
}

static void
write_file(const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

static char *
read_file(const char *name)
{
	static char buf[8192];
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Runs `sluice test-pattern ARGS` (ARGS may use %s for the temp dir); returns the exit code. */
static int
run(const char *args)
{
	char a[1024], cmd[2048];
	snprintf(a, sizeof a, args, dir, dir, dir);
	snprintf(cmd, sizeof cmd, "cd '%s' && '%s' test-pattern %s >out.txt 2>err.txt", dir, bin(),
	         a);
	int st = system(cmd);
	cr_assert(WIFEXITED(st), "%s did not exit normally", cmd);
	return WEXITSTATUS(st);
}

Test(pattern_cli, single_match_and_no_match)
{
	write_file("p.json", "{\"detail\":{\"state\":[{\"anything-but\":\"stopped\"}]}}");
	write_file("e1.json", "{\"detail\":{\"state\":\"running\"}}");
	write_file("e2.json", "{\"detail\":{\"state\":\"stopped\"}}");
	cr_assert_eq(run("--pattern @%s/p.json --event @%s/e1.json"), 0);
	cr_assert_str_eq(read_file("out.txt"), "true\n");
	cr_assert_eq(run("--pattern @%s/p.json --event @%s/e2.json"), 1);
	cr_assert_str_eq(read_file("out.txt"), "false\n");
	/* inline JSON */
	cr_assert_eq(run("--pattern '{\"a\":[{\"numeric\":[\">\",1]}]}' --event '{\"a\":2}'"), 0);
	cr_assert_str_eq(read_file("out.txt"), "true\n");
}

Test(pattern_cli, invalid_pattern_and_event)
{
	cr_assert_eq(run("--pattern '{\"a\":[]}' --event '{}'"), 2);
	cr_assert_str_eq(read_file("out.txt"), "");
	cr_assert_str_eq(read_file("err.txt"),
	                 "Event pattern is not valid. Reason: Empty arrays are not allowed\n");
	cr_assert_eq(run("--pattern '{\"a\":[1]}' --event '{\"a\":1'"), 2);
	cr_assert(strstr(read_file("err.txt"), "event is not valid JSON"), "%s",
	          read_file("err.txt"));
	cr_assert_eq(run("--pattern @%s/missing.json --event '{}'"), 2);
	cr_assert_neq(read_file("err.txt")[0], '\0');
}

Test(pattern_cli, usage)
{
	cr_assert_eq(run("--help"), 0);
	cr_assert(strstr(read_file("out.txt"), "usage: sluice test-pattern"));
	cr_assert_eq(run("--pattern '{}'"), 2);
	cr_assert_eq(run("--bogus x"), 2);
	cr_assert_eq(run("--pattern '{}' --event '{}' --rules x --events y"), 2);
}

Test(pattern_cli, batch)
{
	write_file(
	        "rules.json",
	        "{\"exact\":{\"k\":[\"x\"]},\"prefix\":\"{\\\"k\\\":[{\\\"prefix\\\":\\\"\\\"}]}\","
	        "\"absent\":{\"j\":[{\"exists\":false}]}}");
	write_file("events.jlines", "{\"k\":\"x\"}\n\n{\"k\":\"y\",\"j\":1}\n{bad\n{\"j\":2}\n");
	cr_assert_eq(run("--rules %s/rules.json --events %s/events.jlines"), 2);
	cr_assert_str_eq(read_file("out.txt"), "exact prefix absent\nprefix\n\n\n");
	cr_assert(strstr(read_file("err.txt"), "events.jlines:4: event is not valid JSON"), "%s",
	          read_file("err.txt"));
	write_file("events.jlines", "{\"k\":\"x\"}\n");
	cr_assert_eq(run("--rules %s/rules.json --events %s/events.jlines"), 0);
	write_file("bad.json", "{\"r\":{\"k\":[{\"wildcard\":\"a**\"}]}}");
	cr_assert_eq(run("--rules %s/bad.json --events %s/events.jlines"), 2);
	cr_assert(strstr(read_file("err.txt"),
	                 "rule r: Event pattern is not valid. Reason: "
	                 "Consecutive wildcard characters at pos 2"),
	          "%s", read_file("err.txt"));
}
