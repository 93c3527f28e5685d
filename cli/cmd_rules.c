/*
 * cmd_rules.c - `sluice rules list|describe|put|enable|disable|delete` and
 * `sluice targets list|put|remove`: thin wrappers over EventBridge's rule and target
 * operations, with tables for listings and JSON for descriptions.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_http.h"
#include "common/sl_alloc.h"

#define RULES_TIMEOUT   60
#define RULES_TEXT_MAX  (1024 * 1024)
#define RULES_PAGE_SIZE 100

static void
rules_usage(FILE *f)
{
	fprintf(f,
	        "usage: sluice rules list [--prefix P]\n"
	        "       sluice rules describe NAME\n"
	        "       sluice rules put NAME (--pattern JSON|@FILE | --schedule EXPR)\n"
	        "                        [--timezone ZONE] [--missed-run-policy skip|once|all]\n"
	        "                        [--state ENABLED|DISABLED] [--description TEXT]\n"
	        "       sluice rules enable|disable NAME\n"
	        "       sluice rules delete NAME [--force]\n"
	        "\n"
	        "Every command takes --bus NAME|ARN (default: the default bus) and --endpoint URL\n"
	        "(default $SLUICE_ENDPOINT or " CLI_DEFAULT_ENDPOINT ").\n"
	        "--timezone (an IANA zone) and --missed-run-policy are sluice extensions for\n"
	        "schedules (docs/BUS.md).\n"
	        "Exit codes: 0 ok, 2 bad input or refused by the server, 3 server unreachable.\n");
}

static void
targets_usage(FILE *f)
{
	fprintf(f,
	        "usage: sluice targets list RULE\n"
	        "       sluice targets put RULE --id ID --arn ARN [--input JSON|@FILE]\n"
	        "                               [--input-path PATH]\n"
	        "       sluice targets put RULE --targets JSON|@FILE   (PutTargets' Targets "
	        "array)\n"
	        "       sluice targets remove RULE ID... [--force]\n"
	        "\n"
	        "Every command takes --bus NAME|ARN and --endpoint URL, as `sluice rules`.\n"
	        "Exit codes: 0 ok, 1 some targets refused, 2 bad input or refused by the "
	        "server,\n"
	        "3 server unreachable.\n");
}

struct ropts {
	const char *endpoint, *bus, *prefix, *pattern, *schedule, *tz, *policy, *state, *desc;
	const char *id, *arn, *input, *input_path, *targets;
	bool force;
};

/* One call; prints the error and returns the exit code on failure, *out on success. */
static int
call(const char *who, const struct ropts *o, const char *target, json_t *body, json_t **out)
{
	struct sl_error err = { 0 };
	json_t *ans = NULL;
	if (body && o->bus)
		json_object_set_new(body, "EventBusName", json_string(o->bus));
	sl_err rc = body ? cli_aws_call(o->endpoint, target, body, RULES_TIMEOUT, &ans, &err)
	                 : SL_ERR_NOMEM;
	json_decref(body);
	if (rc) {
		fprintf(stderr, "sluice %s: %s\n", who,
		        err.code ? sl_error_text(&err) : sl_err_message(rc));
		json_decref(ans);
		return rc == SL_ERR_INVALID_ARG ? CLI_USAGE : CLI_RUNTIME;
	}
	if (out)
		*out = ans;
	else
		json_decref(ans);
	return CLI_OK;
}

static void
print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		printf("%s\n", s);
	free(s);
}

static const char *
str(json_t *j, const char *k)
{
	const char *v = json_string_value(json_object_get(j, k));
	return v ? v : "";
}

/* Every page of a List operation; print(el) for each element. */
static int
list_all(const char *who, const struct ropts *o, const char *target, json_t *req,
         const char *member, void (*print)(json_t *))
{
	char *token = NULL;
	int code = CLI_OK;
	do {
		json_t *body = json_deep_copy(req), *ans = NULL;
		if (body) {
			json_object_set_new(body, "Limit", json_integer(RULES_PAGE_SIZE));
			if (token)
				json_object_set_new(body, "NextToken", json_string(token));
		}
		free(token);
		token = NULL;
		if ((code = call(who, o, target, body, &ans)))
			break;
		size_t i;
		json_t *el;
		json_array_foreach(json_object_get(ans, member), i, el) print(el);
		const char *next = json_string_value(json_object_get(ans, "NextToken"));
		token = next ? strdup(next) : NULL;
		json_decref(ans);
	} while (token);
	free(token);
	json_decref(req);
	return code;
}

static void
print_rule(json_t *r)
{
	const char *sched = str(r, "ScheduleExpression");
	printf("%-32s %-9s %s%s\n", str(r, "Name"), str(r, "State"), sched[0] ? sched : "pattern ",
	       sched[0] ? "" : str(r, "EventPattern"));
}

static void
print_target(json_t *t)
{
	printf("%-24s %s\n", str(t, "Id"), str(t, "Arn"));
}

/* Options shared by both commands; returns -1 to go on, else an exit code. */
static int
parse(int argc, char **argv, struct ropts *o, void (*usage)(FILE *))
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "bus", required_argument, NULL, 'b' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "pattern", required_argument, NULL, 'P' },
		{ "schedule", required_argument, NULL, 'S' },
		{ "timezone", required_argument, NULL, 'z' },
		{ "missed-run-policy", required_argument, NULL, 'm' },
		{ "state", required_argument, NULL, 's' },
		{ "description", required_argument, NULL, 'd' },
		{ "id", required_argument, NULL, 'i' },
		{ "arn", required_argument, NULL, 'a' },
		{ "input", required_argument, NULL, 'I' },
		{ "input-path", required_argument, NULL, 'j' },
		{ "targets", required_argument, NULL, 't' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	const char *ep = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'e': ep = optarg; break;
		case 'b': o->bus = optarg; break;
		case 'p': o->prefix = optarg; break;
		case 'P': o->pattern = optarg; break;
		case 'S': o->schedule = optarg; break;
		case 'z': o->tz = optarg; break;
		case 'm': o->policy = optarg; break;
		case 's': o->state = optarg; break;
		case 'd': o->desc = optarg; break;
		case 'i': o->id = optarg; break;
		case 'a': o->arn = optarg; break;
		case 'I': o->input = optarg; break;
		case 'j': o->input_path = optarg; break;
		case 't': o->targets = optarg; break;
		case 'f': o->force = true; break;
		case 'h': usage(stdout); return CLI_OK;
		default: usage(stderr); return CLI_USAGE;
		}
	}
	o->endpoint = cli_endpoint(ep);
	return -1;
}

/* Reads JSON|@FILE into a string member of obj. */
static int
set_text(json_t *obj, const char *key, const char *arg, const char *who)
{
	char *text = NULL;
	struct sl_error err = { 0 };
	if (cli_text_or_file(arg, RULES_TEXT_MAX, &text, &err)) {
		fprintf(stderr, "sluice %s: %s\n", who, sl_error_text(&err));
		return CLI_USAGE;
	}
	json_object_set_new(obj, key, json_string(text));
	sl_free(text);
	return CLI_OK;
}

int
cmd_rules(int argc, char **argv)
{
	struct ropts o = { 0 };
	int code = parse(argc, argv, &o, rules_usage);
	if (code >= 0)
		return code;
	if (optind >= argc) {
		rules_usage(stderr);
		return CLI_USAGE;
	}
	const char *verb = argv[optind], *name = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (strcmp(verb, "list") == 0) {
		if (name) {
			rules_usage(stderr);
			return CLI_USAGE;
		}
		json_t *req = json_object();
		if (o.prefix)
			json_object_set_new(req, "NamePrefix", json_string(o.prefix));
		return list_all("rules", &o, "AWSEvents.ListRules", req, "Rules", print_rule);
	}
	if (!name || optind + 2 < argc) {
		fprintf(stderr, "sluice rules %s: expected one rule NAME\n", verb);
		rules_usage(stderr);
		return CLI_USAGE;
	}
	json_t *ans = NULL;
	if (strcmp(verb, "describe") == 0) {
		if ((code = call("rules", &o, "AWSEvents.DescribeRule",
		                 json_pack("{s:s}", "Name", name), &ans)))
			return code;
		print_json(ans);
		json_decref(ans);
		return CLI_OK;
	}
	if (strcmp(verb, "put") == 0) {
		if (!o.pattern == !o.schedule) {
			fprintf(stderr, "sluice rules put: give --pattern or --schedule\n");
			return CLI_USAGE;
		}
		json_t *req = json_pack("{s:s}", "Name", name);
		if (!req)
			return CLI_RUNTIME;
		if (o.pattern && (code = set_text(req, "EventPattern", o.pattern, "rules put"))) {
			json_decref(req);
			return code;
		}
		static const char *const keys[]
		        = { "ScheduleExpression", "ScheduleExpressionTimezone", "MissedRunPolicy",
			    "State", "Description" };
		const char *vals[] = { o.schedule, o.tz, o.policy, o.state, o.desc };
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
			if (vals[i])
				json_object_set_new(req, keys[i], json_string(vals[i]));
		if ((code = call("rules", &o, "AWSEvents.PutRule", req, &ans)))
			return code;
		printf("%s\n", str(ans, "RuleArn"));
		json_decref(ans);
		return CLI_OK;
	}
	const char *target = strcmp(verb, "enable") == 0 ? "AWSEvents.EnableRule"
	        : strcmp(verb, "disable") == 0           ? "AWSEvents.DisableRule"
	        : strcmp(verb, "delete") == 0            ? "AWSEvents.DeleteRule"
	                                                 : NULL;
	if (!target) {
		fprintf(stderr, "sluice rules: unknown verb '%s'\n", verb);
		rules_usage(stderr);
		return CLI_USAGE;
	}
	json_t *req = json_pack("{s:s}", "Name", name);
	if (req && o.force)
		json_object_set_new(req, "Force", json_true());
	return call("rules", &o, target, req, NULL);
}

int
cmd_targets(int argc, char **argv)
{
	struct ropts o = { 0 };
	int code = parse(argc, argv, &o, targets_usage);
	if (code >= 0)
		return code;
	if (optind + 1 >= argc) {
		targets_usage(stderr);
		return CLI_USAGE;
	}
	const char *verb = argv[optind], *rule = argv[optind + 1];
	if (strcmp(verb, "list") == 0) {
		if (optind + 2 < argc) {
			targets_usage(stderr);
			return CLI_USAGE;
		}
		return list_all("targets", &o, "AWSEvents.ListTargetsByRule",
		                json_pack("{s:s}", "Rule", rule), "Targets", print_target);
	}
	json_t *req = json_pack("{s:s}", "Rule", rule), *ans = NULL;
	if (!req)
		return CLI_RUNTIME;
	if (strcmp(verb, "put") == 0) {
		if (optind + 2 < argc || !o.targets == !(o.id && o.arn)) {
			fprintf(stderr, "sluice targets put: give --id and --arn, or --targets\n");
			json_decref(req);
			return CLI_USAGE;
		}
		json_t *list = NULL;
		if (o.targets) {
			char *text = NULL;
			struct sl_error err = { 0 };
			json_error_t je;
			if (cli_text_or_file(o.targets, RULES_TEXT_MAX, &text, &err)) {
				fprintf(stderr, "sluice targets put: %s\n", sl_error_text(&err));
				json_decref(req);
				return CLI_USAGE;
			}
			list = json_loads(text, 0, &je);
			sl_free(text);
			if (!json_is_array(list)) {
				fprintf(stderr, "sluice targets put: --targets: %s\n",
				        list ? "expected a JSON array" : je.text);
				json_decref(list);
				json_decref(req);
				return CLI_USAGE;
			}
		} else {
			json_t *t = json_pack("{s:s,s:s}", "Id", o.id, "Arn", o.arn);
			if (t && o.input && (code = set_text(t, "Input", o.input, "targets put"))) {
				json_decref(t);
				json_decref(req);
				return code;
			}
			if (t && o.input_path)
				json_object_set_new(t, "InputPath", json_string(o.input_path));
			list = json_pack("[o]", t);
		}
		json_object_set_new(req, "Targets", list);
		if ((code = call("targets", &o, "AWSEvents.PutTargets", req, &ans)))
			return code;
	} else if (strcmp(verb, "remove") == 0) {
		if (optind + 2 >= argc) {
			fprintf(stderr, "sluice targets remove: give the target ID(s)\n");
			json_decref(req);
			return CLI_USAGE;
		}
		json_t *ids = json_array();
		for (int i = optind + 2; i < argc; i++)
			json_array_append_new(ids, json_string(argv[i]));
		json_object_set_new(req, "Ids", ids);
		if (o.force)
			json_object_set_new(req, "Force", json_true());
		if ((code = call("targets", &o, "AWSEvents.RemoveTargets", req, &ans)))
			return code;
	} else {
		fprintf(stderr, "sluice targets: unknown verb '%s'\n", verb);
		json_decref(req);
		targets_usage(stderr);
		return CLI_USAGE;
	}
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(ans, "FailedEntries"), i, f)
	{
		fprintf(stderr, "target %s: %s: %s\n", str(f, "TargetId"), str(f, "ErrorCode"),
		        str(f, "ErrorMessage"));
	}
	code = json_array_size(json_object_get(ans, "FailedEntries")) ? CLI_NO : CLI_OK;
	json_decref(ans);
	return code;
}
