/*
 * test_app_file.c - the app file parser (cli/app_file.c) in-process: the model it builds,
 * the problems it reports (file:line:column and what was expected), and robustness on
 * mutated files (every variant is either accepted or refused with located problems,
 * never a crash; ASan/UBSan builds check the memory side).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/app_file.h"
#include "common/sl_alloc.h"

static struct app *
load(const char *text, struct sm_problems *pb, sl_err *rc)
{
	struct app *a = app_new();
	cr_assert_not_null(a);
	*rc = app_load_text(a, text, strlen(text), "t.yaml", pb);
	return a;
}

/* All problems as one "loc: msg\n" text (new string). */
static char *
joined(const struct sm_problems *pb)
{
	size_t cap = 1;
	for (size_t i = 0; i < pb->count; i++)
		cap += strlen(pb->items[i].location) + strlen(pb->items[i].message) + 4;
	char *s = sl_malloc(cap);
	cr_assert_not_null(s);
	s[0] = '\0';
	for (size_t i = 0; i < pb->count; i++) {
		strcat(s, pb->items[i].location);
		strcat(s, ": ");
		strcat(s, pb->items[i].message);
		strcat(s, "\n");
	}
	return s;
}

/* The text must be refused with a problem containing want. */
static void
refused(const char *text, const char *want)
{
	struct sm_problems pb = { 0 };
	sl_err rc;
	struct app *a = load(text, &pb, &rc);
	char *all = joined(&pb);
	cr_assert_neq(rc, SL_OK, "accepted:\n%s", text);
	cr_assert(strstr(all, want), "'%s' not among:\n%s", want, all);
	sl_free(all);
	sm_problems_clear(&pb);
	app_free(a);
}

Test(app_file, model_of_a_full_file)
{
	const char *text = "stateMachines:\n"
	                   "  m:\n"
	                   "    type: EXPRESS\n"
	                   "    definition: {StartAt: A, States: {A: {Type: Succeed}}}\n"
	                   "activities: [a1, a2]\n"
	                   "buses:\n"
	                   "  b1: {description: first}\n"
	                   "  b2:\n"
	                   "  default:\n"
	                   "rules:\n"
	                   "  s:\n"
	                   "    schedule: rate(5 minutes)\n"
	                   "    timezone: Europe/Berlin\n"
	                   "    missedRuns: all\n"
	                   "    state: DISABLED\n"
	                   "    targets:\n"
	                   "      - id: t1\n"
	                   "        stateMachine: m\n"
	                   "        input: hello\n"
	                   "        deadLetter: arn:aws:sqs:us-east-1:000000000000:dlq\n"
	                   "      - id: t2\n"
	                   "        bus: b1\n"
	                   "        inputTransformer: {inputTemplate: '\"x\"'}\n"
	                   "        retryPolicy: {maximumEventAgeInSeconds: 60}\n"
	                   "        deadLetter: true\n"
	                   "  p:\n"
	                   "    bus: b2\n"
	                   "    eventPattern: '{\"source\": [\"x\"]}'\n"
	                   "archives:\n"
	                   "  ar: {bus: b1, retentionDays: 3}\n";
	struct sm_problems pb = { 0 };
	sl_err rc;
	struct app *a = load(text, &pb, &rc);
	char *all = joined(&pb);
	cr_assert_eq(rc, SL_OK, "%s", all);
	sl_free(all);
	cr_assert_eq(a->nmachines, 1);
	cr_assert_str_eq(a->machines[0].type, "EXPRESS");
	cr_assert_str_eq(json_string_value(json_object_get(a->machines[0].definition, "StartAt")),
	                 "A");
	cr_assert_str_eq(a->machines[0].where, "t.yaml:2:3");
	cr_assert_eq(a->nactivities, 2);
	cr_assert_str_eq(a->activities[1].name, "a2");
	cr_assert_eq(a->nbuses, 2, "default is implicit, not a declared bus");
	cr_assert_str_eq(a->buses[0].description, "first");
	cr_assert_null(a->buses[1].description);
	cr_assert_eq(a->nrules, 2);
	struct app_rule *s = &a->rules[0];
	cr_assert_str_eq(s->bus, "default");
	cr_assert_str_eq(s->schedule, "rate(5 minutes)");
	cr_assert_str_eq(s->timezone, "Europe/Berlin");
	cr_assert_str_eq(s->missed, "all");
	cr_assert_str_eq(s->state, "DISABLED");
	cr_assert_eq(s->ntargets, 2);
	cr_assert_str_eq(s->targets[0].machine, "m");
	cr_assert_str_eq(json_string_value(s->targets[0].input), "hello");
	cr_assert_str_eq(json_string_value(json_object_get(s->targets[0].dead_letter, "Arn")),
	                 "arn:aws:sqs:us-east-1:000000000000:dlq");
	cr_assert_str_eq(s->targets[1].bus, "b1");
	cr_assert_str_eq(
	        json_string_value(json_object_get(s->targets[1].transformer, "InputTemplate")),
	        "\"x\"");
	cr_assert_eq(json_integer_value(
	                     json_object_get(s->targets[1].retry, "MaximumEventAgeInSeconds")),
	             60);
	cr_assert_eq(json_object_size(s->targets[1].dead_letter), 0);
	struct app_rule *p = &a->rules[1];
	cr_assert_str_eq(p->bus, "b2");
	cr_assert_str_eq(p->state, "ENABLED");
	cr_assert_str_eq(
	        json_string_value(json_array_get(json_object_get(p->pattern, "source"), 0)), "x");
	cr_assert_eq(a->narchives, 1);
	cr_assert_eq(a->archives[0].retention_days, 3);
	cr_assert(app_find_machine(a, "m"));
	cr_assert(app_has_bus(a, "default") && app_has_bus(a, "b2") && !app_has_bus(a, "b3"));
	sm_problems_clear(&pb);
	app_free(a);
}

Test(app_file, json_app_files_and_detection)
{
	const char *json = "{\"activities\": [\"x\"], \"rules\": {\"r\": {\"eventPattern\": "
	                   "{\"source\": [\"s\"]}}}}";
	cr_assert(app_text_is_app(json, strlen(json)));
	cr_assert(!app_text_is_app("StartAt: A\nStates: {}\n", 22));
	cr_assert(!app_text_is_app("[1, 2]", 6));
	cr_assert(!app_text_is_app("foo: 1\n", 7));
	struct sm_problems pb = { 0 };
	sl_err rc;
	struct app *a = load(json, &pb, &rc);
	cr_assert_eq(rc, SL_OK);
	cr_assert_eq(a->nrules, 1);
	app_free(a);
	sm_problems_clear(&pb);
	/* empty files declare nothing */
	a = load("", &pb, &rc);
	cr_assert_eq(rc, SL_OK);
	app_free(a);
	a = load("# nothing yet\n\n", &pb, &rc);
	cr_assert_eq(rc, SL_OK);
	app_free(a);
	a = load("{}", &pb, &rc);
	cr_assert_eq(rc, SL_OK);
	app_free(a);
	sm_problems_clear(&pb);
}

Test(app_file, problems_say_where_and_what)
{
	refused("rules: []\n",
	        "t.yaml:1:8: 'rules' must be a mapping of names to entries, not a "
	        "list");
	refused("stateMachines:\n  m: {definition: {StartAt: A, States: {A: {Type: Succeed}}}, "
	        "definitionFile: x.json}\n",
	        "give 'definition' or 'definitionFile', not both");
	refused("stateMachines:\n  m: {type: FAST, definition: {StartAt: A, States: {A: {Type: "
	        "Succeed}}}}\n",
	        "t.yaml:2:13: 'type' must be one of STANDARD, EXPRESS, not 'FAST'");
	refused("stateMachines:\n  m: {definitionFile: /nonexistent/x.json}\n",
	        "t.yaml:2:23: definitionFile: /nonexistent/x.json: No such file or directory");
	refused("stateMachines:\n  'a b': {definition: {StartAt: A, States: {A: {Type: "
	        "Succeed}}}}\n",
	        "state machine name 'a b' is not valid");
	refused("activities: [ok, {x: 1}]\n",
	        "t.yaml:1:18: activities entries must be names (strings), not a mapping");
	refused("rules:\n  r: {schedule: rate(1 hour), eventPattern: {source: [x]}}\n",
	        "t.yaml:2:3: rule 'r' has both 'eventPattern' and 'schedule'; give one");
	refused("rules:\n  r: {state: ENABLED}\n", "rule 'r' needs 'eventPattern' or 'schedule'");
	refused("rules:\n  r: {eventPattern: {source: [x]}, timezone: UTC}\n",
	        "'timezone' and 'missedRuns' apply to schedule rules only");
	refused("rules:\n  r: {schedule: rate(1 hour), timezone: Mars/Olympus}\n",
	        "t.yaml:2:41: Parameter ScheduleExpressionTimezone is not valid");
	refused("rules:\n  r: {schedule: rate(1 hour), missedRuns: some}\n",
	        "'missedRuns' must be one of skip, once, all, not 'some'");
	refused("rules:\n  r:\n    schedule: rate(1 hour)\n    targets:\n      - {arn: a:b}\n",
	        "t.yaml:5:9: a target needs an 'id'");
	refused("rules:\n  r:\n    schedule: rate(1 hour)\n    targets:\n"
	        "      - {id: t, arn: a, stateMachine: m}\n",
	        "a target needs exactly one of 'arn', 'stateMachine', 'bus'");
	refused("rules:\n  r:\n    schedule: rate(1 hour)\n    targets:\n"
	        "      - {id: t, arn: a, input: 1, inputPath: $.x}\n",
	        "give at most one of 'input', 'inputPath', 'inputTransformer'");
	refused("rules:\n  r:\n    schedule: rate(1 hour)\n    targets:\n"
	        "      - {id: t, arn: a, inputTransformer: {inputPathsMap: {a: 1}}}\n",
	        "'inputTransformer' needs an 'inputTemplate'");
	refused("rules:\n  r:\n    schedule: rate(1 hour)\n    targets:\n"
	        "      - {id: t, arn: a, retryPolicy: {maximumRetryAttempts: 200}}\n",
	        "'maximumRetryAttempts' must be between 0 and 185");
	refused("rules:\n  r:\n    schedule: rate(1 hour)\n    targets:\n"
	        "      - {id: t, arn: a}\n      - {id: t, arn: b}\n",
	        "t.yaml:6:14: target id 't' is used twice in rule 'r'");
	refused("rules:\n  r:\n    schedule: rate(1 hour)\n    targets: [{id: a, arn: x}, {id: b, "
	        "arn: x}, {id: c, arn: x}, {id: d, arn: x}, {id: e, arn: x}, {id: f, arn: x}]\n",
	        "a rule has at most 5 targets, not 6");
	refused("rules:\n  r:\n    schedule: rate(1 hour)\n    targets:\n"
	        "      - {id: t, arn: a, deadLetter: 3}\n",
	        "'deadLetter' must be true (sluice's dead-letter store) or a queue ARN");
	refused("archives:\n  a: {retentionDays: -1}\n", "'retentionDays' must be between 0");
	refused("archives:\n  a: {bus: b, eventPattern: [1]}\n",
	        "t.yaml:2:29: 'eventPattern' must be a mapping, not a list");
	refused("StartAt: A\nStates: {A: {Type: Succeed}}\n",
	        "this is a lone state machine definition, not an app file");
	refused("- 1\n", "an app file must be a mapping");
	refused("a: &x [*x]\n", "t.yaml:");
}

/* Deterministic mutations of a valid file: byte flips, deletions, duplicated lines. */
Test(app_file, mutations_never_crash)
{
	const char *base
	        = "stateMachines:\n"
	          "  m:\n"
	          "    definition:\n"
	          "      StartAt: A\n"
	          "      States:\n"
	          "        A: {Type: Pass, Result: {x: 1}, Next: B}\n"
	          "        B: {Type: Map, ItemsPath: $.x, ItemProcessor: {StartAt: C, "
	          "States: {C: {Type: Succeed}}}, End: true}\n"
	          "activities: [a]\n"
	          "buses: {b: {description: d}}\n"
	          "rules:\n"
	          "  r:\n"
	          "    bus: b\n"
	          "    eventPattern: {source: [s], detail: {n: [{numeric: ['>', 1]}]}}\n"
	          "    targets:\n"
	          "      - id: t\n"
	          "        stateMachine: m\n"
	          "        inputTransformer: {inputPathsMap: {a: $.a}, inputTemplate: '<a>'}\n"
	          "        retryPolicy: {maximumRetryAttempts: 1}\n"
	          "  s: {schedule: 'cron(0 2 * * ? *)', timezone: UTC, missedRuns: once}\n"
	          "archives: {ar: {bus: b, retentionDays: 1}}\n";
	size_t n = strlen(base);
	static const char alphabet[] = " :-{}[],'\"\n\t&*!#|>$0aZ";
	unsigned seed = 12345;
	size_t accepted = 0, refused_n = 0;
	char *buf = sl_malloc(2 * n + 2);
	cr_assert_not_null(buf);
	for (int round = 0; round < 3000; round++) {
		memcpy(buf, base, n + 1);
		size_t len = n;
		int edits = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 4;
		for (int e = 0; e < edits && len > 0; e++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = (seed >> 8) % len;
			switch ((seed >> 4) % 3) {
			case 0: buf[at] = alphabet[(seed >> 12) % (sizeof alphabet - 1)]; break;
			case 1:
				memmove(buf + at, buf + at + 1, len - at);
				len--;
				break;
			default: {
				/* duplicate the line holding `at` */
				size_t ls = at, le = at;
				while (ls > 0 && buf[ls - 1] != '\n')
					ls--;
				while (le < len && buf[le] != '\n')
					le++;
				size_t ll = le - ls + (le < len);
				if (len + ll < 2 * n) {
					memmove(buf + ls + ll, buf + ls, len - ls + 1);
					len += ll;
				}
			}
			}
		}
		struct sm_problems pb = { 0 };
		struct app *a = app_new();
		cr_assert_not_null(a);
		sl_err rc = app_load_text(a, buf, len, "m.yaml", &pb);
		cr_assert(rc == SL_OK || rc == SL_ERR_PARSE || rc == SL_ERR_LIMIT
		                  || rc == SL_ERR_TOO_LARGE,
		          "round %d: %s", round, sl_err_message(rc));
		if (rc == SL_OK) {
			accepted++;
			cr_assert_eq(pb.count, 0);
		} else {
			refused_n++;
			cr_assert_gt(pb.count, 0, "round %d refused without a problem:\n%s", round,
			             buf);
			for (size_t i = 0; i < pb.count; i++)
				cr_assert(strncmp(pb.items[i].location, "m.yaml:", 7) == 0,
				          "round %d: location '%s'", round, pb.items[i].location);
		}
		sm_problems_clear(&pb);
		app_free(a);
	}
	sl_free(buf);
	fprintf(stderr, "# mutations: %zu accepted, %zu refused\n", accepted, refused_n);
	cr_assert_gt(accepted, 0);
	cr_assert_gt(refused_n, 0);
}

/* ---- environment variables ----------------------------------------------------------------- */

Test(app_file, environment_variables_are_substituted)
{
	setenv("SLT_PORT", "8499", 1);
	setenv("SLT_QUOTE", "say \"hi\" \\ o'k", 1);
	setenv("SLT_EMPTY", "", 1);
	setenv("SLT_RETRIES", "4", 1);
	unsetenv("SLT_UNSET");
	const char *text
	        = "# the port: ${SLT_UNSET} (comments are left alone)\n"
	          "stateMachines:\n"
	          "  m:\n"
	          "    definition:\n"
	          "      StartAt: A\n"
	          "      States:\n"
	          "        A: {Type: Pass, Parameters: {x.$: $$.Execution.Id, y.$: $.in}, End: "
	          "true}\n"
	          "rules:\n"
	          "  r:\n"
	          "    eventPattern: {source: [${SLT_SRC:-shop}, '${SLT_QUOTE}']}\n"
	          "    description: \"${SLT_QUOTE} ${SLT_EMPTY:-was empty} [${SLT_EMPTY}] "
	          "$${SLT_PORT}\"\n"
	          "    targets:\n"
	          "      - id: hook\n"
	          "        arn: http://127.0.0.1:${SLT_PORT}/alerts # ${SLT_UNSET} here too\n"
	          "        retryPolicy: {maximumRetryAttempts: ${SLT_RETRIES}}\n";
	struct sm_problems pb = { 0 };
	sl_err rc;
	struct app *a = load(text, &pb, &rc);
	char *all = joined(&pb);
	cr_assert_eq(rc, SL_OK, "%s", all);
	sl_free(all);
	struct app_rule *r = &a->rules[0];
	cr_assert_str_eq(r->targets[0].arn, "http://127.0.0.1:8499/alerts");
	/* a number stays a number */
	json_t *n = json_object_get(r->targets[0].retry, "MaximumRetryAttempts");
	cr_assert(json_is_integer(n) && json_integer_value(n) == 4);
	json_t *src = json_object_get(r->pattern, "source");
	cr_assert_str_eq(json_string_value(json_array_get(src, 0)), "shop");
	/* escaped for the quotes it lands in, single or double */
	cr_assert_str_eq(json_string_value(json_array_get(src, 1)), "say \"hi\" \\ o'k");
	cr_assert_str_eq(r->description, "say \"hi\" \\ o'k was empty [] ${SLT_PORT}");
	/* the States Language's $. and $$. are not references */
	json_t *params = json_object_get(
	        json_object_get(json_object_get(a->machines[0].definition, "States"), "A"),
	        "Parameters");
	cr_assert_str_eq(json_string_value(json_object_get(params, "x.$")), "$$.Execution.Id");
	cr_assert_str_eq(json_string_value(json_object_get(params, "y.$")), "$.in");
	sm_problems_clear(&pb);
	app_free(a);
}

Test(app_file, unset_variables_and_bad_references_are_located)
{
	unsetenv("SLT_UNSET");
	unsetenv("SLT_UNSET2");
	refused("rules:\n"
	        "  r:\n"
	        "    eventPattern: {source: [x]}\n"
	        "    targets: [{id: t, arn: 'http://h:${SLT_UNSET}/'}]\n",
	        "t.yaml:4:38: environment variable SLT_UNSET is not set (give it a default with "
	        "${SLT_UNSET:-default})");
	/* every problem at once */
	struct sm_problems pb = { 0 };
	sl_err rc;
	struct app *a = load("activities: [${SLT_UNSET}, ${SLT_UNSET2}, ${1x}, ${a-b}, ${open]\n",
	                     &pb, &rc);
	char *all = joined(&pb);
	cr_assert_eq(rc, SL_ERR_PARSE);
	cr_assert_eq(pb.count, 5, "%s", all);
	cr_assert(strstr(all, "t.yaml:1:14: environment variable SLT_UNSET is not set"), "%s", all);
	cr_assert(strstr(all, "t.yaml:1:28: environment variable SLT_UNSET2 is not set"), "%s",
	          all);
	cr_assert(strstr(all, "t.yaml:1:43: invalid variable reference '${1x}'"), "%s", all);
	cr_assert(strstr(all, "t.yaml:1:50: invalid variable reference '${a-b}'"), "%s", all);
	cr_assert(strstr(all, "t.yaml:1:58: invalid variable reference '${open'"), "%s", all);
	sl_free(all);
	sm_problems_clear(&pb);
	app_free(a);
	/* a line break would change the structure outside quotes; inside double quotes it is
	 * escaped */
	setenv("SLT_LINES", "a\nb: c", 1);
	refused("activities: [${SLT_LINES}]\n",
	        "t.yaml:1:14: the value of ${SLT_LINES} holds a "
	        "line break");
	pb = (struct sm_problems) { 0 };
	a = load("buses: {b: {description: \"${SLT_LINES}\"}}\n", &pb, &rc);
	cr_assert_eq(rc, SL_OK);
	cr_assert_str_eq(a->buses[0].description, "a\nb: c");
	sm_problems_clear(&pb);
	app_free(a);
}

/* Problems found after a substitution are located in the file as written. */
Test(app_file, positions_after_substitution_point_into_the_file)
{
	setenv("SLT_LONG", "a-rather-long-value-that-shifts-the-line", 1);
	setenv("SLT_AGE", "5", 1);
	refused("rules:\n"
	        "  r:\n"
	        "    eventPattern: {source: [x]}\n"
	        "    description: ${SLT_LONG}\n"
	        "    targets: [{id: ${SLT_LONG}, arn: x, retryPolicy: {maximumEventAgeInSeconds: "
	        "${SLT_AGE}}, bogus: 1}]\n",
	        "t.yaml:5:81: 'maximumEventAgeInSeconds' must be between 60 and 86400");
	refused("rules:\n"
	        "  r:\n"
	        "    eventPattern: {source: [x]}\n"
	        "    targets: [{id: ${SLT_LONG}, arn: x, retryPolicy: {maximumEventAgeInSeconds: "
	        "${SLT_AGE}}, bogus: 1}]\n",
	        "t.yaml:4:94: unknown key 'bogus'");
	/* a YAML syntax error after a substitution, too */
	refused("activities: [${SLT_LONG}, ]]\n", "t.yaml:1:28");
}

/* A definition next to its app file is read as written: its ${...} is not a variable. */
Test(app_file, definitions_in_an_app_directory_are_not_substituted)
{
	unsetenv("SLT_UNSET");
	setenv("SLT_NAME", "etl", 1);
	char dir[] = "/tmp/sluice-app-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char app[300], def[300];
	snprintf(app, sizeof app, "%s/app.yaml", dir);
	snprintf(def, sizeof def, "%s/def.yaml", dir);
	FILE *f = fopen(app, "w");
	cr_assert_not_null(f);
	fputs("stateMachines:\n  ${SLT_NAME}:\n    definitionFile: def.yaml\n", f);
	fclose(f);
	f = fopen(def, "w");
	cr_assert_not_null(f);
	fputs("StartAt: P\nStates:\n  P: {Type: Pass, Result: '${SLT_UNSET}', End: true}\n", f);
	fclose(f);
	struct sm_problems pb = { 0 };
	struct app *a = app_new();
	cr_assert_not_null(a);
	sl_err rc = app_load_path(a, dir, &pb);
	char *all = joined(&pb);
	cr_assert_eq(rc, SL_OK, "%s", all);
	sl_free(all);
	cr_assert_eq(a->nmachines, 1);
	cr_assert_str_eq(a->machines[0].name, "etl");
	json_t *p = json_object_get(json_object_get(a->machines[0].definition, "States"), "P");
	cr_assert_str_eq(json_string_value(json_object_get(p, "Result")), "${SLT_UNSET}");
	sm_problems_clear(&pb);
	app_free(a);
	unlink(app);
	unlink(def);
	rmdir(dir);
}
