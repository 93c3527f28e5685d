/*
 * cmd_state_machines.c - `sluice state-machines create|update|describe|list|delete`.
 *
 * Definitions are read from YAML or JSON files, checked here first (problems are printed
 * as FILE:LINE:COLUMN, nothing is sent), and sent as the JSON string the API expects: a
 * JSON file as written, a YAML file converted to JSON.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_http.h"
#include "common/sl_alloc.h"
#include "statemachines/statemachines.h"

struct sm_opts {
	const char *endpoint;
	const char *type;
	const char *role_arn;
	const char *description;
	int publish;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: sluice state-machines create NAME FILE [--type STANDARD|EXPRESS]\n"
	        "                                   [--role-arn ARN] [--publish]\n"
	        "                                   [--version-description TEXT]\n"
	        "       sluice state-machines update NAME|ARN FILE [--publish] [...]\n"
	        "       sluice state-machines describe NAME[:VERSION]|ARN\n"
	        "       sluice state-machines list\n"
	        "       sluice state-machines delete NAME[:VERSION]|ARN\n"
	        "\n"
	        "FILE holds a States Language definition in YAML or JSON. Every command takes\n"
	        "--endpoint URL (default $SLUICE_ENDPOINT or " CLI_DEFAULT_ENDPOINT ").\n"
	        "Exit codes: 0 ok, 2 bad input or refused by the server, 3 server unreachable.\n");
}

/* Loads and checks FILE; returns the JSON text to send (new string) or NULL after printing
 * the problems. */
static char *
definition_text(const char *path, int *code)
{
	struct sl_error err = { 0 };
	char *text;
	size_t len;
	if (cli_read_file(path, SM_DEFINITION_MAX_BYTES, &text, &len, &err)) {
		fprintf(stderr, "%s\n", sl_error_text(&err));
		*code = CLI_USAGE;
		return NULL;
	}
	struct sm_problems problems = { 0 };
	json_t *tree = NULL;
	struct sm_positions *pos = NULL;
	struct sm_machine *m = NULL;
	sl_err rc = sm_definition_load(text, len, path, SM_FORMAT_AUTO, &tree, &pos, &problems);
	if (rc == SL_OK)
		rc = sm_machine_compile(tree, pos, &m, &problems);
	sm_machine_free(m);
	sm_positions_free(pos);
	char *out = NULL;
	if (rc) {
		for (size_t i = 0; i < problems.count; i++)
			fprintf(stderr, "%s: %s\n", problems.items[i].location,
			        problems.items[i].message);
		*code = rc == SL_ERR_NOMEM ? CLI_RUNTIME : CLI_USAGE;
	} else {
		size_t i = strspn(text, " \t\r\n");
		/* JSON is sent as written; YAML becomes JSON with the same order of keys */
		out = text[i] == '{' ? sl_strdup(text) : json_dumps(tree, JSON_INDENT(2));
		if (!out)
			*code = CLI_RUNTIME;
	}
	sm_problems_clear(&problems);
	json_decref(tree);
	sl_free(text);
	return out;
}

static int
report(sl_err rc, const struct sl_error *err, json_t *answer)
{
	if (rc == SL_OK) {
		char *s = json_dumps(answer, JSON_INDENT(2));
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(answer);
		return CLI_OK;
	}
	fprintf(stderr, "sluice state-machines: %s\n", sl_error_text(err));
	json_decref(answer);
	return rc == SL_ERR_INVALID_ARG ? CLI_USAGE : CLI_RUNTIME;
}

/* NAME[:VERSION] or an ARN to the machine's ARN (looked up by name on the server). */
static int
resolve_arn(const struct sm_opts *o, const char *ref, char *arn, size_t cap)
{
	if (strncmp(ref, "arn:", 4) == 0) {
		snprintf(arn, cap, "%s", ref);
		return CLI_OK;
	}
	char name[128];
	snprintf(name, sizeof name, "%s", ref);
	char *version = strchr(name, ':');
	if (version)
		*version++ = '\0';
	const char *token = NULL;
	json_t *page = NULL;
	do {
		json_t *req = json_pack("{s:i}", "maxResults", 1000);
		if (token)
			json_object_set_new(req, "nextToken", json_string(token));
		struct sl_error err = { 0 };
		json_t *next = NULL;
		sl_err rc
		        = cli_aws_call(cli_endpoint(o->endpoint),
		                       "AWSStepFunctions.ListStateMachines", req, 30, &next, &err);
		json_decref(req);
		json_decref(page);
		page = next;
		if (rc)
			return report(rc, &err, page);
		json_t *ms = json_object_get(page, "stateMachines"), *m;
		size_t i;
		json_array_foreach(ms, i, m)
		{
			const char *nm = json_string_value(json_object_get(m, "name"));
			if (nm && strcmp(nm, name) == 0) {
				const char *a
				        = json_string_value(json_object_get(m, "stateMachineArn"));
				snprintf(arn, cap, "%s%s%s", a, version ? ":" : "",
				         version ? version : "");
				json_decref(page);
				return CLI_OK;
			}
		}
		token = json_string_value(json_object_get(page, "nextToken"));
	} while (token);
	json_decref(page);
	fprintf(stderr, "sluice state-machines: no state machine named '%s'\n", name);
	return CLI_USAGE;
}

static int
call(const struct sm_opts *o, const char *op, json_t *req)
{
	char target[96];
	snprintf(target, sizeof target, "AWSStepFunctions.%s", op);
	struct sl_error err = { 0 };
	json_t *answer = NULL;
	sl_err rc = cli_aws_call(cli_endpoint(o->endpoint), target, req, 60, &answer, &err);
	json_decref(req);
	return report(rc, &err, answer);
}

/* The fields create and update share. */
static void
add_revision_fields(json_t *req, const struct sm_opts *o)
{
	if (o->role_arn)
		json_object_set_new(req, "roleArn", json_string(o->role_arn));
	if (o->publish)
		json_object_set_new(req, "publish", json_true());
	if (o->description)
		json_object_set_new(req, "versionDescription", json_string(o->description));
}

int
cmd_state_machines(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, 0, 'E' },
		{ "type", required_argument, 0, 't' },
		{ "role-arn", required_argument, 0, 'r' },
		{ "publish", no_argument, 0, 'p' },
		{ "version-description", required_argument, 0, 'd' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct sm_opts o = { 0 };
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'E': o.endpoint = optarg; break;
		case 't': o.type = optarg; break;
		case 'r': o.role_arn = optarg; break;
		case 'p': o.publish = 1; break;
		case 'd': o.description = optarg; break;
		case 'h': usage(stdout); return CLI_OK;
		default: usage(stderr); return CLI_USAGE;
		}
	}
	int n = argc - optind;
	char **a = argv + optind;
	const char *verb = n > 0 ? a[0] : "";
	int code = CLI_OK;
	char arn[600];
	if (strcmp(verb, "create") == 0 && n == 3) {
		char *def = definition_text(a[2], &code);
		if (!def)
			return code;
		json_t *req = json_pack("{s:s,s:s}", "name", a[1], "definition", def);
		sl_free(def);
		if (o.type)
			json_object_set_new(req, "type", json_string(o.type));
		add_revision_fields(req, &o);
		return call(&o, "CreateStateMachine", req);
	}
	if (strcmp(verb, "update") == 0 && n == 3) {
		char *def = definition_text(a[2], &code);
		if (!def)
			return code;
		if ((code = resolve_arn(&o, a[1], arn, sizeof arn))) {
			sl_free(def);
			return code;
		}
		json_t *req = json_pack("{s:s,s:s}", "stateMachineArn", arn, "definition", def);
		sl_free(def);
		add_revision_fields(req, &o);
		return call(&o, "UpdateStateMachine", req);
	}
	if ((strcmp(verb, "describe") == 0 || strcmp(verb, "delete") == 0) && n == 2) {
		if ((code = resolve_arn(&o, a[1], arn, sizeof arn)))
			return code;
		return call(&o,
		            verb[1] == 'e' && verb[2] == 's' ? "DescribeStateMachine"
		                                             : "DeleteStateMachine",
		            json_pack("{s:s}", "stateMachineArn", arn));
	}
	if (strcmp(verb, "list") == 0 && n == 1)
		return call(&o, "ListStateMachines", json_object());
	usage(stderr);
	return CLI_USAGE;
}
