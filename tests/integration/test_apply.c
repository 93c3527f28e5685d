/*
 * test_apply.c - app files, `sluice apply` and `sluice executions` as a user runs them: the
 * real binary ($SLUICE_BIN) against the real `sluice serve`, results checked through the
 * API. Also `sluice validate` on app files (no server).
 *
 * Waits are bounded (--timeout on watch, hang guards), never timing assertions.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AWS_CALLS_SERVICE "AWSStepFunctions"
#include "tests/integration/aws_calls.h"
#include "tests/integration/harness.h"

#define SM_ARN(n) "arn:aws:states:us-east-1:000000000000:stateMachine:" n

static char dir[] = "/tmp/sluice_apply_XXXXXX";

static const char *
bin(void)
{
	const char *b = getenv("SLUICE_BIN");
	if (!b || access(b, X_OK) != 0)
		cr_skip_test("SLUICE_BIN is not set to the sluice binary");
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

static void
setup_dir(void)
{
	strcpy(dir, "/tmp/sluice_apply_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void
setup_server(void)
{
	setup_dir();
	cr_assert(h_start(&srv, NULL), "server did not start");
}

static void
teardown_dir(void)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	h_run(cmd, NULL);
}

static void
teardown_server(void)
{
	cr_assert_eq(h_stop(&srv), 0);
	h_cleanup(&srv);
	teardown_dir();
}

/* Runs `sluice ARGS` in dir against the test server; returns the exit status and sets
 * *out (stdout and stderr, new string). */
static int __attribute__((format(printf, 2, 3))) sluice(char **out, const char *fmt, ...)
{
	char args[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "cd '%s' && SLUICE_ENDPOINT=http://127.0.0.1:%d '%s' %s", dir,
	         srv.http_port, bin(), args);
	char *o = NULL;
	int st = h_run(cmd, &o);
	cr_assert_not_null(o);
	*out = o;
	return st;
}

static bool
has(const char *text, const char *part)
{
	return text && strstr(text, part) != NULL;
}

#define ASSERT_HAS(text, part)   cr_assert(has(text, part), "missing '%s' in:\n%s", part, text)
#define ASSERT_LACKS(text, part) cr_assert(!has(text, part), "unexpected '%s' in:\n%s", part, text)

/* ---- fixtures --------------------------------------------------------------------------- */

#define APP_MACHINES                                                                               \
	"stateMachines:\n"                                                                         \
	"  flow:\n"                                                                                \
	"    definition:\n"                                                                        \
	"      StartAt: Hi\n"                                                                      \
	"      States:\n"                                                                          \
	"        Hi: {Type: Pass, Result: hi, ResultPath: $.greeting, Next: Fan}\n"                \
	"        Fan:\n"                                                                           \
	"          Type: Map\n"                                                                    \
	"          ItemsPath: $.items\n"                                                           \
	"          MaxConcurrency: 2\n"                                                            \
	"          ItemProcessor:\n"                                                               \
	"            StartAt: Nap\n"                                                               \
	"            States:\n"                                                                    \
	"              Nap: {Type: Wait, Seconds: 0, Next: Item}\n"                                \
	"              Item: {Type: Pass, End: true}\n"                                            \
	"          ResultPath: $.done\n"                                                           \
	"          End: true\n"                                                                    \
	"  etl:\n"                                                                                 \
	"    type: STANDARD\n"                                                                     \
	"    definitionFile: defs/etl.json\n"
#define APP_ACT_BUS "activities: [extract]\nbuses: [orders]\n"
#define APP_NIGHTLY                                                                                \
	"rules:\n"                                                                                 \
	"  nightly:\n"                                                                             \
	"    schedule: cron(0 2 * * ? *)\n"                                                        \
	"    description: nightly load\n"                                                          \
	"    timezone: Europe/Paris\n"                                                             \
	"    missedRuns: all\n"                                                                    \
	"    targets:\n"                                                                           \
	"      - id: start-etl\n"                                                                  \
	"        stateMachine: etl\n"                                                              \
	"        input: {date: today}\n"
#define APP_PLACED_OLD                                                                             \
	"  placed:\n"                                                                              \
	"    bus: orders\n"                                                                        \
	"    eventPattern:\n"                                                                      \
	"      source: [shop]\n"                                                                   \
	"    targets:\n"                                                                           \
	"      - id: to-flow\n"                                                                    \
	"        stateMachine: flow\n"                                                             \
	"        inputTransformer:\n"                                                              \
	"          inputPathsMap: {id: $.detail.id}\n"                                             \
	"          inputTemplate: '{\"items\": [<id>]}'\n"                                         \
	"        retryPolicy: {maximumRetryAttempts: 3}\n"                                         \
	"        deadLetter: true\n"                                                               \
	"  old:\n"                                                                                 \
	"    eventPattern: {source: [legacy]}\n"                                                   \
	"    state: DISABLED\n"
#define APP_V1 APP_MACHINES APP_ACT_BUS APP_NIGHTLY APP_PLACED_OLD

#define ETL_JSON                                                                                   \
	"{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\",\"Seconds\":0,\"Next\":\"Done\"}" \
	","                                                                                        \
	"\"Done\":{\"Type\":\"Succeed\"}}}"

static void
write_app_v1(void)
{
	char d[600];
	snprintf(d, sizeof d, "%s/defs", dir);
	cr_assert(access(d, F_OK) == 0 || mkdir(d, 0700) == 0);
	write_file("defs/etl.json", ETL_JSON);
	write_file("app.yaml", APP_V1);
}

/* A rule's record from DescribeRule (new reference). */
static json_t *
rule(const char *name, const char *bus)
{
	return ok_target("AWSEvents.DescribeRule",
	                 json_pack("{s:s,s:s}", "Name", name, "EventBusName", bus));
}

static int
rule_status(const char *name, const char *bus)
{
	int st;
	json_decref(call_target("AWSEvents.DescribeRule",
	                        json_pack("{s:s,s:s}", "Name", name, "EventBusName", bus), &st));
	return st;
}

static json_t *
machine(const char *name)
{
	char arn[200];
	snprintf(arn, sizeof arn, SM_ARN("%s"), name);
	return ok_target("AWSStepFunctions.DescribeStateMachine",
	                 json_pack("{s:s}", "stateMachineArn", arn));
}

/* ---- validate --------------------------------------------------------------------------- */

TestSuite(validate_app, .init = setup_dir, .fini = teardown_dir);

static int
validate(char **out, const char *args)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "cd '%s' && '%s' validate %s", dir, bin(), args);
	int st = h_run(cmd, out);
	cr_assert_not_null(*out);
	return st;
}

Test(validate_app, valid_file_and_directory_are_silent)
{
	write_app_v1();
	char *out;
	cr_assert_eq(validate(&out, "app.yaml"), 0, "%s", out);
	cr_assert_str_eq(out, "");
	free(out);
	/* a directory: app.yaml is read, defs/ is not descended into */
	cr_assert_eq(validate(&out, "."), 0, "%s", out);
	cr_assert_str_eq(out, "");
	free(out);
}

Test(validate_app, problems_have_file_line_column)
{
	write_file("bad.yaml",
	           "stateMachines:\n"                             /* 1 */
	           "  x:\n"                                       /* 2 */
	           "    definiton:\n"                             /* 3 */
	           "      StartAt: A\n"                           /* 4 */
	           "  y:\n"                                       /* 5 */
	           "    definition:\n"                            /* 6 */
	           "      StartAt: A\n"                           /* 7 */
	           "      States:\n"                              /* 8 */
	           "        A: {Type: Pass, Nxt: B, End: true}\n" /* 9 */
	           "  z:\n"                                       /* 10 */
	           "    definitionFile: z.yaml\n"                 /* 11 */
	           "rules:\n"                                     /* 12 */
	           "  r1:\n"                                      /* 13 */
	           "    schedule: cron(0 2 * * *)\n"              /* 14 */
	           "    targets:\n"                               /* 15 */
	           "      - {id: a, stateMachine: y, bogus: 1}\n" /* 16 */
	           "  r2:\n"                                      /* 17 */
	           "    eventPattern: {source: shop}\n"           /* 18 */
	           "    state: ON\n"                              /* 19 */
	           "extra: 1\n");                                 /* 20 */
	write_file("z.yaml", "StartAt: Q\nStates:\n  P: {Type: Succeed}\n");
	char *out;
	cr_assert_eq(validate(&out, "bad.yaml"), 2, "%s", out);
	ASSERT_HAS(out, "bad.yaml:20:1: unknown key 'extra' in the app file");
	ASSERT_HAS(out,
	           "bad.yaml:3:5: unknown key 'definiton' in a state machine (expected one "
	           "of: type, definition, definitionFile)");
	ASSERT_HAS(out, "bad.yaml:2:3: state machine 'x' needs 'definition' or 'definitionFile'");
	ASSERT_HAS(out, "bad.yaml:9:25: SCHEMA_VALIDATION_FAILED: Field 'Nxt' is not supported");
	ASSERT_HAS(out, "z.yaml:1:10: MISSING_TRANSITION_TARGET");
	ASSERT_HAS(out, "bad.yaml:14:15: invalid schedule 'cron(0 2 * * *)'");
	ASSERT_HAS(out, "bad.yaml:16:34: unknown key 'bogus' in a target");
	ASSERT_HAS(out, "bad.yaml:18:19: invalid event pattern");
	ASSERT_HAS(out, "bad.yaml:19:12: 'state' must be one of ENABLED, DISABLED, not 'ON'");
	free(out);
}

Test(validate_app, bad_yaml_and_lone_definitions)
{
	write_file("broken.yaml", "rules:\n  a: [\n");
	write_file("def.yaml", "StartAt: A\nStates:\n  A: {Type: Pass, End: true}\n");
	write_file("dup.yaml", "buses: [a, b, a]\nrules:\n  r: {schedule: rate(1 hour), bus: a}\n");
	char *out;
	cr_assert_eq(validate(&out, "broken.yaml"), 2, "%s", out);
	ASSERT_HAS(out, "broken.yaml:3:1: INVALID_YAML_DESCRIPTION");
	free(out);
	/* a lone definition is still validated as one */
	cr_assert_eq(validate(&out, "def.yaml"), 0, "%s", out);
	free(out);
	cr_assert_eq(validate(&out, "dup.yaml"), 2, "%s", out);
	ASSERT_HAS(out, "dup.yaml:1:15: bus 'a' is also declared at dup.yaml:1:9");
	ASSERT_HAS(out, "dup.yaml:3:17: a schedule rule must be on the default bus (not 'a')");
	free(out);
}

/* ---- apply ------------------------------------------------------------------------------ */

TestSuite(apply, .init = setup_server, .fini = teardown_server, .timeout = 120);

Test(apply, creates_everything_then_changes_nothing)
{
	write_app_v1();
	char *out;
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
	ASSERT_HAS(out, "plan: 9 to create, 0 to change, 0 to delete");
	ASSERT_HAS(out, "+ bus orders");
	ASSERT_HAS(out, "+ state machine etl (STANDARD)");
	ASSERT_HAS(out, "+ rule nightly (schedule cron(0 2 * * ? *))");
	ASSERT_HAS(out, "+ target orders/placed/to-flow -> state machine flow");
	ASSERT_HAS(out, "applied: 9 created, 0 changed, 0 deleted");
	/* dependency order: the bus before its rule, machines before the targets */
	cr_assert(strstr(out, "created bus orders") < strstr(out, "created rule orders/placed"));
	cr_assert(strstr(out, "created state machine etl")
	          < strstr(out, "created target nightly/start-etl"));
	free(out);

	json_t *m = machine("etl");
	json_t *def = json_loads(s(m, "definition"), 0, NULL);
	json_t *want = json_loads(ETL_JSON, 0, NULL);
	cr_assert(json_equal(def, want));
	cr_assert_str_eq(s(m, "type"), "STANDARD");
	char *rev = strdup(s(m, "revisionId") ? s(m, "revisionId") : "");
	json_decref(def);
	json_decref(want);
	json_decref(m);
	json_t *r = rule("nightly", "default");
	cr_assert_str_eq(s(r, "ScheduleExpression"), "cron(0 2 * * ? *)");
	cr_assert_str_eq(s(r, "Description"), "nightly load");
	cr_assert_str_eq(s(r, "ScheduleExpressionTimezone"), "Europe/Paris");
	cr_assert_str_eq(s(r, "MissedRunPolicy"), "all");
	json_decref(r);
	r = rule("old", "default");
	cr_assert_str_eq(s(r, "State"), "DISABLED");
	json_decref(r);
	json_t *t = ok_target("AWSEvents.ListTargetsByRule", json_pack("{s:s}", "Rule", "nightly"));
	json_t *t0 = json_array_get(json_object_get(t, "Targets"), 0);
	cr_assert_str_eq(s(t0, "Id"), "start-etl");
	cr_assert_str_eq(s(t0, "Arn"), SM_ARN("etl"));
	cr_assert_str_eq(s(t0, "Input"), "{\"date\":\"today\"}");
	json_decref(t);
	t = ok_target("AWSEvents.ListTargetsByRule",
	              json_pack("{s:s,s:s}", "Rule", "placed", "EventBusName", "orders"));
	t0 = json_array_get(json_object_get(t, "Targets"), 0);
	cr_assert_str_eq(s(t0, "Arn"), SM_ARN("flow"));
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(t0, "RetryPolicy"),
	                                                "MaximumRetryAttempts")),
	             3);
	cr_assert_str_eq(s(json_object_get(t0, "InputTransformer"), "InputTemplate"),
	                 "{\"items\": [<id>]}");
	cr_assert_str_eq(s(json_object_get(t0, "DeadLetterConfig"), "Arn"),
	                 "arn:aws:sqs:us-east-1:000000000000:sluice-dead-letters");
	json_decref(t);
	json_t *acts = ok_target("AWSStepFunctions.ListActivities", json_object());
	cr_assert_str_eq(s(json_array_get(json_object_get(acts, "activities"), 0), "name"),
	                 "extract");
	json_decref(acts);

	/* the second run: nothing to change, and nothing changed */
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
	ASSERT_HAS(out, "nothing to change (9 resources up to date)");
	ASSERT_LACKS(out, "applying");
	free(out);
	m = machine("etl");
	cr_assert_str_eq(s(m, "revisionId") ? s(m, "revisionId") : "", rev);
	json_decref(m);
	free(rev);
}

Test(apply, a_modified_file_updates_only_what_changed)
{
	write_app_v1();
	char *out;
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
	free(out);
	/* the same definition written differently (YAML, other key order) is no change */
	write_file("defs/etl.json",
	           "{\"States\":{\"Done\":{\"Type\":\"Succeed\"},\"W\":{\"Seconds\":0,"
	           "\"Type\":\"Wait\",\"Next\":\"Done\"}},\"StartAt\":\"W\"}");
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
	ASSERT_HAS(out, "nothing to change");
	free(out);

	char *v2 = strdup(APP_V1);
	char *p = strstr(v2, "cron(0 2");
	p[7] = '3';
	p = strstr(v2, "Result: hi");
	memcpy(p, "Result: ho", 10);
	write_file("app.yaml", v2);
	free(v2);
	cr_assert_eq(sluice(&out, "apply -f app.yaml --dry-run"), 0, "%s", out);
	ASSERT_HAS(out, "plan: 0 to create, 2 to change, 0 to delete");
	ASSERT_HAS(out, "~ state machine flow: states changed: Hi");
	ASSERT_HAS(out, "~ rule nightly: schedule cron(0 2 * * ? *) -> cron(0 3 * * ? *)");
	ASSERT_HAS(out, "dry run: nothing was changed");
	free(out);
	json_t *r = rule("nightly", "default");
	cr_assert_str_eq(s(r, "ScheduleExpression"), "cron(0 2 * * ? *)", "dry run changed it");
	json_decref(r);

	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
	ASSERT_HAS(out, "applied: 0 created, 2 changed, 0 deleted");
	ASSERT_LACKS(out, "\n+ ");
	ASSERT_LACKS(out, "\n- ");
	free(out);
	r = rule("nightly", "default");
	cr_assert_str_eq(s(r, "ScheduleExpression"), "cron(0 3 * * ? *)");
	json_decref(r);
	json_t *m = machine("flow");
	cr_assert(has(s(m, "definition"), "\"ho\""), "%s", s(m, "definition"));
	json_decref(m);
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
	ASSERT_HAS(out, "nothing to change");
	free(out);
}

Test(apply, prune_deletes_only_what_the_files_lack)
{
	write_app_v1();
	char *out;
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
	free(out);
	/* drop rule old, the activity and the bus (with its rule) from the file */
	write_file("app.yaml", APP_MACHINES APP_NIGHTLY);
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
	ASSERT_HAS(out, "nothing to change");
	ASSERT_HAS(out,
	           "4 resources are on the server not in the app files: kept (--prune "
	           "deletes them)");
	free(out);
	cr_assert_eq(rule_status("old", "default"), 200);

	cr_assert_eq(sluice(&out, "apply -f app.yaml --prune --dry-run"), 0, "%s", out);
	ASSERT_HAS(out, "- rule old");
	free(out);
	cr_assert_eq(rule_status("old", "default"), 200);

	cr_assert_eq(sluice(&out, "apply -f app.yaml --prune"), 0, "%s", out);
	ASSERT_HAS(out, "plan: 0 to create, 0 to change, 4 to delete");
	ASSERT_HAS(out, "- rule old");
	ASSERT_HAS(out, "- rule orders/placed");
	ASSERT_HAS(out, "- activity extract");
	ASSERT_HAS(out, "- bus orders");
	ASSERT_LACKS(out, "bus default");
	/* deletions in reverse dependency order */
	cr_assert(strstr(out, "deleted rule orders/placed") < strstr(out, "deleted bus orders"));
	free(out);
	cr_assert_neq(rule_status("old", "default"), 200);
	cr_assert_eq(rule_status("nightly", "default"), 200);
	json_t *b = ok_target("AWSEvents.ListEventBuses", json_object());
	json_t *buses = json_object_get(b, "EventBuses");
	cr_assert_eq(json_array_size(buses), 1);
	cr_assert_str_eq(s(json_array_get(buses, 0), "Name"), "default");
	json_decref(b);
	cr_assert_eq(sluice(&out, "apply -f app.yaml --prune"), 0, "%s", out);
	ASSERT_HAS(out, "nothing to change");
	free(out);
}

Test(apply, a_directory_of_files_is_one_app)
{
	char d[600];
	snprintf(d, sizeof d, "%s/app", dir);
	cr_assert_eq(mkdir(d, 0700), 0);
	snprintf(d, sizeof d, "%s/app/defs", dir);
	cr_assert_eq(mkdir(d, 0700), 0);
	write_file("app/defs/etl.json", ETL_JSON);
	write_file("app/machines.yaml", APP_MACHINES);
	write_file("app/rules.yaml",
	           APP_NIGHTLY "  on-side:\n    bus: side\n    eventPattern: {source: [s]}\n");
	/* a lone definition in the folder is skipped, not read as an app file */
	write_file("app/lone.asl.yaml", "StartAt: A\nStates:\n  A: {Type: Succeed}\n");
	/* a bus the files use without declaring it: referenced, so never pruned */
	json_decref(ok_target("AWSEvents.CreateEventBus", json_pack("{s:s}", "Name", "side")));
	char *out;
	cr_assert_eq(sluice(&out, "apply -f app --prune"), 0, "%s", out);
	ASSERT_HAS(out, "plan: 5 to create, 0 to change, 0 to delete");
	ASSERT_HAS(out, "+ rule side/on-side (pattern)");
	ASSERT_LACKS(out, "bus side");
	ASSERT_LACKS(out, "lone");
	free(out);
	cr_assert_eq(rule_status("on-side", "side"), 200);
	cr_assert_eq(sluice(&out, "apply -f app/machines.yaml -f app/rules.yaml --prune"), 0, "%s",
	             out);
	cr_assert_str_eq(out, "nothing to change (5 resources up to date)\n");
	free(out);
}

Test(apply, resources_made_elsewhere_are_compared_by_meaning)
{
	/* as the aws CLI would leave them: other spacing, other key order */
	json_decref(
	        ok_target("AWSEvents.PutRule",
	                  json_pack("{s:s,s:s}", "Name", "ext", "EventPattern",
	                            "{ \"detail-type\" : [ \"a\" ],\n  \"source\": [\"b\"] }")));
	json_decref(ok_target("AWSStepFunctions.CreateStateMachine",
	                      json_pack("{s:s,s:s,s:s}", "name", "m", "roleArn",
	                                "arn:aws:iam::000000000000:role/x", "definition",
	                                "{\n \"States\": {\"A\": {\"Type\": \"Succeed\"}},\n "
	                                "\"StartAt\": \"A\"\n}")));
	write_file("app.yaml",
	           "stateMachines:\n"
	           "  m:\n"
	           "    definition:\n"
	           "      StartAt: A\n"
	           "      States: {A: {Type: Succeed}}\n"
	           "rules:\n"
	           "  ext:\n"
	           "    eventPattern: {source: [b], detail-type: [a]}\n");
	char *out;
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
	cr_assert_str_eq(out, "nothing to change (2 resources up to date)\n");
	free(out);
}

Test(apply, a_failure_half_way_stops_and_reports)
{
	/* the server refuses target r/bad (not an ARN) after the machine and rules exist */
	write_file("app.yaml",
	           "stateMachines:\n"
	           "  one:\n"
	           "    definition: {StartAt: A, States: {A: {Type: Succeed}}}\n"
	           "rules:\n"
	           "  r:\n"
	           "    eventPattern: {source: [x]}\n"
	           "    targets:\n"
	           "      - {id: bad, arn: not-an-arn}\n"
	           "  z:\n"
	           "    eventPattern: {source: [z]}\n"
	           "    targets:\n"
	           "      - {id: t, stateMachine: one}\n");
	char *out;
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 3, "%s", out);
	ASSERT_HAS(out, "created state machine one");
	ASSERT_HAS(out, "created rule r");
	ASSERT_HAS(out, "created rule z");
	ASSERT_HAS(out,
	           "FAILED to create target r/bad: ValidationException: Provided Arn is not "
	           "in correct format.");
	ASSERT_HAS(out,
	           "stopped: 3 of 5 changes applied (3 created, 0 changed, 0 deleted); not "
	           "applied:\n  + target r/bad -> not-an-arn\n  + target z/t -> state "
	           "machine one\n");
	ASSERT_LACKS(out, "created target z/t");
	free(out);
	json_decref(machine("one")); /* applied steps stay applied */
	cr_assert_eq(rule_status("z", "default"), 200);

	/* fixed, the next run finishes the job */
	write_file("app.yaml",
	           "stateMachines:\n"
	           "  one:\n"
	           "    definition: {StartAt: A, States: {A: {Type: Succeed}}}\n"
	           "rules:\n"
	           "  r:\n"
	           "    eventPattern: {source: [x]}\n"
	           "  z:\n"
	           "    eventPattern: {source: [z]}\n"
	           "    targets:\n"
	           "      - {id: t, stateMachine: one}\n");
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
	ASSERT_HAS(out, "plan: 1 to create, 0 to change, 0 to delete\n+ target z/t");
	free(out);
	json_t *t = ok_target("AWSEvents.ListTargetsByRule", json_pack("{s:s}", "Rule", "z"));
	cr_assert_str_eq(s(json_array_get(json_object_get(t, "Targets"), 0), "Arn"), SM_ARN("one"));
	json_decref(t);
}

Test(apply, unknown_references_change_nothing)
{
	write_file("app.yaml",
	           "stateMachines:\n"
	           "  one:\n"
	           "    definition: {StartAt: A, States: {A: {Type: Succeed}}}\n"
	           "rules:\n"
	           "  r:\n"
	           "    eventPattern: {source: [x]}\n"
	           "    targets:\n"
	           "      - {id: t, stateMachine: nosuch}\n");
	char *out;
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 2, "%s", out);
	ASSERT_HAS(out, "app.yaml:8:9: target t of rule r: no state machine named 'nosuch'");
	ASSERT_HAS(out, "nothing was changed");
	free(out);
	json_t *l = ok_target("AWSStepFunctions.ListStateMachines", json_object());
	cr_assert_eq(json_array_size(json_object_get(l, "stateMachines")), 0);
	json_decref(l);
	/* a bad file sends nothing */
	write_file("app.yaml", "stateMachines:\n  one: {definition: {StartAt: A}}\n");
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 2, "%s", out);
	ASSERT_HAS(out, "nothing was sent");
	free(out);
}

Test(apply, archives_are_applied_or_refused_clearly)
{
	write_file("app.yaml", "archives:\n  keep-all:\n    retentionDays: 7\n");
	char *out;
	int st = sluice(&out, "apply -f app.yaml");
	if (has(out, "does not serve them")) {
		/* a server without archives: said plainly, nothing changed */
		cr_assert_eq(st, 3, "%s", out);
		ASSERT_HAS(out, "ListArchives: UnknownOperationException");
		ASSERT_HAS(out, "nothing was changed");
	} else {
		cr_assert_eq(st, 0, "%s", out);
		ASSERT_HAS(out, "+ archive keep-all");
		free(out);
		cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
		ASSERT_HAS(out, "nothing to change");
	}
	free(out);
}

/* ---- executions ------------------------------------------------------------------------- */

Test(apply, executions_start_watch_list_describe_history)
{
	write_app_v1();
	char *out;
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
	free(out);
	cr_assert_eq(sluice(&out,
	                    "executions start --state-machine flow --name e1 "
	                    "--input '{\"items\":[1,2,3]}'"),
	             0, "%s", out);
	cr_assert_str_eq(out, "arn:aws:states:us-east-1:000000000000:execution:flow:e1\n");
	free(out);

	cr_assert_eq(sluice(&out,
	                    "executions watch "
	                    "arn:aws:states:us-east-1:000000000000:execution:flow:e1 "
	                    "--timeout 60"),
	             0, "%s", out);
	ASSERT_HAS(out, "started arn:aws:states:us-east-1:000000000000:execution:flow:e1");
	ASSERT_HAS(out, "> Hi (Pass)");
	ASSERT_HAS(out, "< Hi");
	ASSERT_HAS(out, "> Fan (Map)");
	ASSERT_HAS(out, "Fan 3/3 succeeded, 0 failed, 0 running");
	ASSERT_HAS(out, "< Fan");
	ASSERT_HAS(out, "SUCCEEDED in ");
	ASSERT_HAS(out, "\"done\":[1,2,3]");
	ASSERT_LACKS(out, "\033");   /* not a terminal: plain lines */
	ASSERT_LACKS(out, "> Item"); /* states inside the Map are summed up */
	free(out);

	cr_assert_eq(sluice(&out, "executions list --state-machine flow"), 0, "%s", out);
	ASSERT_HAS(out, "SUCCEEDED");
	ASSERT_HAS(out, "execution:flow:e1");
	free(out);
	cr_assert_eq(sluice(&out, "executions list --status RUNNING"), 0, "%s", out);
	cr_assert_str_eq(out, "");
	free(out);
	cr_assert_eq(sluice(&out, "executions describe e1"), 0, "%s", out);
	ASSERT_HAS(out, "\"status\": \"SUCCEEDED\"");
	free(out);
	cr_assert_eq(sluice(&out, "executions history e1 --state-machine flow"), 0, "%s", out);
	ASSERT_HAS(out, "ExecutionStarted");
	ASSERT_HAS(out, "MapIterationSucceeded");
	ASSERT_HAS(out, "Fan[2]");
	cr_assert(strstr(out, "ExecutionStarted") < strstr(out, "ExecutionSucceeded"));
	free(out);
	cr_assert_eq(sluice(&out, "executions history e1 --reverse"), 0, "%s", out);
	cr_assert(strstr(out, "ExecutionSucceeded") < strstr(out, "ExecutionStarted"));
	free(out);

	/* a failing one: watch exits 1 with the error and cause */
	cr_assert_eq(sluice(&out,
	                    "executions start --state-machine flow --name e2 "
	                    "--input '{\"items\":5}' --watch --timeout 60"),
	             1, "%s", out);
	ASSERT_HAS(out, "FAILED in ");
	ASSERT_HAS(out, "error: States.Runtime");
	free(out);
	cr_assert_eq(sluice(&out, "executions describe nosuch"), 2, "%s", out);
	ASSERT_HAS(out, "no execution named 'nosuch'");
	free(out);
}

Test(apply, watch_on_a_terminal_rewrites_the_progress_line)
{
	if (h_run("command -v script >/dev/null", NULL) != 0)
		cr_skip_test("script(1) is not installed (bsdutils)");
	write_app_v1();
	char *out;
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
	free(out);
	/* script(1) gives the command a pseudo-terminal as stdout */
	char inner[1024];
	snprintf(inner, sizeof inner,
	         "SLUICE_ENDPOINT=http://127.0.0.1:%d '%s' executions start --state-machine flow "
	         "--input '{\\\"items\\\":[1,2,3]}' --watch --timeout 60",
	         srv.http_port, bin());
	char cmd[1400];
	snprintf(cmd, sizeof cmd, "script -qec \"%s\" /dev/null", inner);
	cr_assert_eq(h_run(cmd, &out), 0, "%s\n%s", cmd, out);
	ASSERT_HAS(out, "Fan [####################] 3/3 succeeded, 0 failed, 0 running");
	ASSERT_HAS(out, "SUCCEEDED in ");
	free(out);
}

Test(apply, watch_shows_task_failures_and_the_final_error)
{
	/* an activity nobody serves: the Task times out, is retried once, then fails */
	write_file("app.yaml",
	           "stateMachines:\n"
	           "  slow:\n"
	           "    definition:\n"
	           "      StartAt: T\n"
	           "      States:\n"
	           "        T:\n"
	           "          Type: Task\n"
	           "          Resource: arn:aws:states:us-east-1:000000000000:activity:nobody\n"
	           "          TimeoutSeconds: 1\n"
	           "          Retry: [{ErrorEquals: [States.Timeout], MaxAttempts: 1, "
	           "IntervalSeconds: 1}]\n"
	           "          End: true\n"
	           "activities: [nobody]\n");
	char *out;
	cr_assert_eq(sluice(&out, "apply -f app.yaml"), 0, "%s", out);
	free(out);
	cr_assert_eq(sluice(&out, "executions start --state-machine slow --watch --timeout 60"), 1,
	             "%s", out);
	ASSERT_HAS(out, "> T (Task)");
	char *first = strstr(out, "! T ActivityTimedOut: States.Timeout");
	cr_assert(first, "%s", out);
	cr_assert(strstr(first + 1, "! T ActivityTimedOut: States.Timeout"), "no retry line:\n%s",
	          out);
	ASSERT_HAS(out, "FAILED in ");
	ASSERT_HAS(out, "error: States.Timeout");
	free(out);

	/* stopped while it waits for a worker: watch ends with ABORTED and exit 1 */
	cr_assert_eq(sluice(&out, "executions start --state-machine slow --name s1"), 0, "%s", out);
	free(out);
	cr_assert_eq(sluice(&out, "executions stop s1 --error Ops.Stop --cause 'by hand'"), 0, "%s",
	             out);
	ASSERT_HAS(out, "stopped arn:aws:states:us-east-1:000000000000:execution:slow:s1");
	free(out);
	cr_assert_eq(sluice(&out, "executions watch s1 --timeout 60"), 1, "%s", out);
	ASSERT_HAS(out, "ABORTED in ");
	ASSERT_HAS(out, "error: Ops.Stop\ncause: by hand\n");
	free(out);
}
