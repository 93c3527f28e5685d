/*
 * cmd_validate.c - `sluice validate FILE...`: load and validate state machine definitions
 * and app files (docs/APP.md; a directory is read as app files) without a server. Silent and exit 0
 * when every file is valid; otherwise one line per problem on stdout, `FILE:LINE:COLUMN: message`
 * (a JSON pointer where no line is known), and exit 2.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/app_file.h"
#include "cli/cli.h"
#include "common/sl_alloc.h"
#include "statemachines/statemachines.h"

static void
validate_usage(FILE *out)
{
	fprintf(out,
	        "usage: sluice validate [--format auto|json|yaml] [--type STANDARD|EXPRESS] "
	        "FILE...\n"
	        "\n"
	        "Checks Amazon States Language definitions (JSON or YAML) the way\n"
	        "CreateStateMachine would, and reports every problem at once:\n"
	        "  FILE:LINE:COLUMN: CODE: message\n"
	        "(FILE:/json/pointer: ... where no line is known). '-' reads stdin.\n"
	        "The format follows the file name (.json, .yaml, .yml), else the first byte.\n"
	        "--type EXPRESS checks definitions as an EXPRESS machine's (no activities,\n"
	        "no .sync or .waitForTaskToken Resources); app files give each machine's type.\n"
	        "An app file (stateMachines, rules, ... at the top, see docs/APP.md) or a\n"
	        "directory of them is checked whole: definitions, patterns, schedules, keys.\n"
	        "exit codes: 0 all valid, 2 a definition is invalid or unreadable, or bad usage\n");
}

static enum sm_format
format_for(const char *path, enum sm_format forced)
{
	if (forced != SM_FORMAT_AUTO)
		return forced;
	const char *dot = strrchr(path, '.');
	if (dot && !strcmp(dot, ".json"))
		return SM_FORMAT_JSON;
	if (dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml")))
		return SM_FORMAT_YAML;
	return SM_FORMAT_AUTO;
}

/* An app file or a directory of them (docs/APP.md); locations name their own files. */
static bool
validate_app(const char *path, const char *text, size_t len)
{
	struct app *a = app_new();
	struct sm_problems problems = { 0 };
	sl_err rc = !a ? SL_ERR_NOMEM
	        : text ? app_load_text(a, text, len, path, &problems)
	               : app_load_path(a, path, &problems);
	for (size_t i = 0; i < problems.count; i++)
		printf("%s: %s\n", problems.items[i].location, problems.items[i].message);
	if (problems.dropped)
		printf("%s: %zu more problems not shown\n", path, problems.dropped);
	if (rc && problems.count == 0)
		printf("%s: %s\n", path, sl_err_message(rc));
	sm_problems_clear(&problems);
	app_free(a);
	return rc == SL_OK;
}

/* Returns true when the file is valid; prints its problems otherwise. */
static bool
validate_one(const char *path, enum sm_format forced, enum sm_execution_type type)
{
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return validate_app(path, NULL, 0);
	char *text = NULL;
	size_t len = 0;
	struct sl_error err;
	sl_error_clear(&err);
	/* one byte over the limit lets the loader say "too large" itself */
	if (cli_read_file(path, SM_DEFINITION_MAX_BYTES + 1, &text, &len, &err) != SL_OK) {
		printf("%s\n", sl_error_text(&err)); /* the text names the file */
		return false;
	}
	if (app_text_is_app(text, len)) {
		bool ok = validate_app(path, text, len);
		sl_free(text);
		return ok;
	}
	struct sm_problems problems = { 0 };
	struct sm_machine *m = NULL;
	sl_err rc = sm_definition_compile_text_typed(text, len, NULL, format_for(path, forced),
	                                             type, &m, &problems);
	sl_free(text);
	sm_machine_free(m);
	if (rc == SL_OK)
		return true;
	for (size_t i = 0; i < problems.count; i++)
		printf("%s:%s: %s\n", path, problems.items[i].location, problems.items[i].message);
	if (problems.dropped)
		printf("%s: %zu more problems not shown\n", path, problems.dropped);
	if (problems.count == 0)
		printf("%s: %s\n", path, sl_err_message(rc));
	sm_problems_clear(&problems);
	return false;
}

int
cmd_validate(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		validate_usage(stdout);
		return CLI_OK;
	}
	enum sm_format forced = SM_FORMAT_AUTO;
	enum sm_execution_type type = SM_EXECUTION_STANDARD;
	int first = 1;
	for (; first < argc && argv[first][0] == '-' && argv[first][1]; first++) {
		const char *a = argv[first];
		const char *val = NULL;
		if (!strcmp(a, "--")) {
			first++;
			break;
		}
		const char *tval = NULL;
		if (!strncmp(a, "--type=", 7))
			tval = a + 7;
		else if (!strcmp(a, "--type") && first + 1 < argc)
			tval = argv[++first];
		if (tval) {
			if (!strcmp(tval, "EXPRESS"))
				type = SM_EXECUTION_EXPRESS;
			else if (!strcmp(tval, "STANDARD"))
				type = SM_EXECUTION_STANDARD;
			else {
				fprintf(stderr,
				        "sluice validate: --type must be STANDARD or EXPRESS\n");
				return CLI_USAGE;
			}
			continue;
		}
		if (!strncmp(a, "--format=", 9))
			val = a + 9;
		else if (!strcmp(a, "--format") && first + 1 < argc)
			val = argv[++first];
		if (!val) {
			fprintf(stderr, "sluice validate: unknown option '%s'\n", a);
			validate_usage(stderr);
			return CLI_USAGE;
		}
		if (!strcmp(val, "json"))
			forced = SM_FORMAT_JSON;
		else if (!strcmp(val, "yaml"))
			forced = SM_FORMAT_YAML;
		else if (!strcmp(val, "auto"))
			forced = SM_FORMAT_AUTO;
		else {
			fprintf(stderr, "sluice validate: --format must be auto, json or yaml\n");
			return CLI_USAGE;
		}
	}
	if (first >= argc) {
		validate_usage(stderr);
		return CLI_USAGE;
	}
	bool all_ok = true;
	for (int i = first; i < argc; i++)
		all_ok &= validate_one(argv[i], forced, type);
	fflush(stdout);
	return all_ok ? CLI_OK : CLI_USAGE;
}
