/*
 * cmd_archives.c - `sluice archives list|describe|create|delete` and `sluice replays
 * start|describe|list|cancel`: thin wrappers over the AWSEvents archive and replay
 * operations (docs/BUS.md "Archives and replay").
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_api.h"
#include "cli/cli_http.h"
#include "common/sl_alloc.h"

#define ARC_CALL_TIMEOUT 60
#define ARC_POLL_MS      200
#define ARC_MAX_RULES    64
#define ARC_PATTERN_MAX  (64 * 1024)

struct arc_opts {
	const char *endpoint, *bus, *pattern, *retention, *description, *prefix, *state;
	const char *archive, *from, *to;
	const char *rules[ARC_MAX_RULES];
	size_t nrules;
	bool json, wait;
};

static void
usage(FILE *f, const char *cmd)
{
	if (strcmp(cmd, "archives") == 0)
		fprintf(f,
		        "usage: sluice archives list [--bus B] [--prefix P] [--json]\n"
		        "       sluice archives describe NAME\n"
		        "       sluice archives create NAME [--bus B] [--pattern JSON|@FILE]\n"
		        "                              [--retention-days N] [--description D]\n"
		        "       sluice archives delete NAME\n"
		        "\n"
		        "An archive keeps the events of its bus (default: default) that match its\n"
		        "pattern (none: every event) for N days (0, the default: forever).\n");
	else
		fprintf(f,
		        "usage: sluice replays start NAME --archive A --from TIME --to TIME\n"
		        "                           [--rule R]... [--wait]\n"
		        "       sluice replays describe NAME\n"
		        "       sluice replays list [--archive A] [--state S] [--prefix P] "
		        "[--json]\n"
		        "       sluice replays cancel NAME\n"
		        "\n"
		        "A replay sends the archive's events of [--from, --to] to its bus's rules "
		        "again\n"
		        "(only the --rule ones when given), each with \"replay-name\": NAME. TIME "
		        "is\n"
		        "RFC 3339 (2026-11-01T00:00:00Z). --wait polls until the replay ends.\n");
	fprintf(f,
	        "Every command takes --endpoint URL (default $SLUICE_ENDPOINT "
	        "or " CLI_DEFAULT_ENDPOINT ").\n"
	        "Exit codes: 0 ok, 2 bad input or refused by the server, 3 server unreachable.\n");
}

/* One call; body is stolen. Prints the error and returns the exit code on failure. */
static int
call(const struct arc_opts *o, const char *cmd, const char *op, json_t *body, json_t **out)
{
	char target[96];
	snprintf(target, sizeof target, "AWSEvents.%s", op);
	return cli_call(cli_endpoint(o->endpoint), target, body, ARC_CALL_TIMEOUT, cmd, out);
}

/* The ARN of bus (a name or an ARN) from DescribeEventBus, into a new string. */
static int
bus_arn_of(const struct arc_opts *o, const char *cmd, char **out)
{
	json_t *ans;
	int code = call(o, cmd, "DescribeEventBus",
	                json_pack("{s:s}", "Name", o->bus ? o->bus : "default"), &ans);
	if (code)
		return code;
	*out = strdup(cli_jstr(ans, "Arn", ""));
	json_decref(ans);
	return *out ? CLI_OK : CLI_RUNTIME;
}

static int
archives_list(const struct arc_opts *o)
{
	json_t *req = json_object(), *all = json_array(), *ans;
	char *arn = NULL, *token = NULL;
	int code = o->bus ? bus_arn_of(o, "archives", &arn) : CLI_OK;
	do {
		json_t *r = code ? NULL : json_deep_copy(req);
		if (r && arn)
			json_object_set_new(r, "EventSourceArn", json_string(arn));
		if (r && o->prefix)
			json_object_set_new(r, "NamePrefix", json_string(o->prefix));
		if (r && token)
			json_object_set_new(r, "NextToken", json_string(token));
		free(token);
		token = NULL;
		if (code || (code = call(o, "archives", "ListArchives", r, &ans)))
			break;
		json_array_extend(all, json_object_get(ans, "Archives"));
		const char *t = cli_jstr(ans, "NextToken", NULL);
		token = t ? strdup(t) : NULL;
		json_decref(ans);
	} while (token);
	free(arn);
	json_decref(req);
	if (code) {
		json_decref(all);
		return code;
	}
	if (o->json)
		return cli_print_json(json_pack("{s:o}", "Archives", all));
	printf("%-32s %-8s %10s %12s %9s %s\n", "NAME", "STATE", "EVENTS", "BYTES", "RETENTION",
	       "SOURCE");
	size_t i;
	json_t *a;
	json_array_foreach(all, i, a)
	        printf("%-32s %-8s %10lld %12lld %9lld %s\n", cli_jstr(a, "ArchiveName", ""),
	               cli_jstr(a, "State", ""),
	               (long long)json_integer_value(json_object_get(a, "EventCount")),
	               (long long)json_integer_value(json_object_get(a, "SizeBytes")),
	               (long long)json_integer_value(json_object_get(a, "RetentionDays")),
	               cli_jstr(a, "EventSourceArn", ""));
	json_decref(all);
	return CLI_OK;
}

static int
archives_create(const struct arc_opts *o, const char *name)
{
	char *arn = NULL, *pattern = NULL;
	int code = bus_arn_of(o, "archives", &arn);
	if (code)
		return code;
	json_t *req = json_pack("{s:s,s:s}", "ArchiveName", name, "EventSourceArn", arn);
	free(arn);
	if (o->pattern) {
		struct sl_error err = { 0 };
		if (cli_text_or_file(o->pattern, ARC_PATTERN_MAX, &pattern, &err)) {
			fprintf(stderr, "sluice archives: --pattern: %s\n", sl_error_text(&err));
			json_decref(req);
			return CLI_USAGE;
		}
		json_object_set_new(req, "EventPattern", json_string(pattern));
		sl_free(pattern);
	}
	if (o->retention) {
		char *end;
		long n = strtol(o->retention, &end, 10);
		if (*end || n < 0 || end == o->retention) {
			fprintf(stderr,
			        "sluice archives: --retention-days: expected a whole number "
			        ">= 0\n");
			json_decref(req);
			return CLI_USAGE;
		}
		json_object_set_new(req, "RetentionDays", json_integer(n));
	}
	if (o->description)
		json_object_set_new(req, "Description", json_string(o->description));
	json_t *ans;
	if ((code = call(o, "archives", "CreateArchive", req, &ans)))
		return code;
	printf("%s\n", cli_jstr(ans, "ArchiveArn", ""));
	json_decref(ans);
	return CLI_OK;
}

static int
parse(int argc, char **argv, const char *cmd, struct arc_opts *o)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "bus", required_argument, NULL, 'b' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "retention-days", required_argument, NULL, 'r' },
		{ "description", required_argument, NULL, 'd' },
		{ "prefix", required_argument, NULL, 'x' },
		{ "state", required_argument, NULL, 's' },
		{ "archive", required_argument, NULL, 'a' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "rule", required_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },
		{ "wait", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'e': o->endpoint = optarg; break;
		case 'b': o->bus = optarg; break;
		case 'p': o->pattern = optarg; break;
		case 'r': o->retention = optarg; break;
		case 'd': o->description = optarg; break;
		case 'x': o->prefix = optarg; break;
		case 's': o->state = optarg; break;
		case 'a': o->archive = optarg; break;
		case 'f': o->from = optarg; break;
		case 't': o->to = optarg; break;
		case 'j': o->json = true; break;
		case 'w': o->wait = true; break;
		case 'R':
			if (o->nrules == ARC_MAX_RULES) {
				fprintf(stderr, "sluice %s: at most %d --rule\n", cmd,
				        ARC_MAX_RULES);
				return CLI_USAGE;
			}
			o->rules[o->nrules++] = optarg;
			break;
		case 'h': usage(stdout, cmd); return -1;
		default: usage(stderr, cmd); return CLI_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr, cmd);
		return CLI_USAGE;
	}
	return CLI_OK;
}

int
cmd_archives(int argc, char **argv)
{
	struct arc_opts o = { 0 };
	int code = parse(argc, argv, "archives", &o);
	if (code)
		return code < 0 ? CLI_OK : code;
	const char *verb = argv[optind];
	int rest = argc - optind - 1;
	const char *name = rest == 1 ? argv[optind + 1] : NULL;
	json_t *ans;
	if (strcmp(verb, "list") == 0 && rest == 0)
		return archives_list(&o);
	if (strcmp(verb, "describe") == 0 && name) {
		if ((code = call(&o, "archives", "DescribeArchive",
		                 json_pack("{s:s}", "ArchiveName", name), &ans)))
			return code;
		return cli_print_json(ans);
	}
	if (strcmp(verb, "create") == 0 && name)
		return archives_create(&o, name);
	if (strcmp(verb, "delete") == 0 && name) {
		if ((code = call(&o, "archives", "DeleteArchive",
		                 json_pack("{s:s}", "ArchiveName", name), &ans)))
			return code;
		json_decref(ans);
		return CLI_OK;
	}
	usage(stderr, "archives");
	return CLI_USAGE;
}

static void
print_replay(json_t *r)
{
	char a[32], b[32];
	printf("replay %s: %s%s%s, last event replayed %s, ended %s\n",
	       cli_jstr(r, "ReplayName", "?"), cli_jstr(r, "State", "?"),
	       json_object_get(r, "StateReason") ? " - " : "", cli_jstr(r, "StateReason", ""),
	       cli_jtime(r, "EventLastReplayedTime", a), cli_jtime(r, "ReplayEndTime", b));
}

static bool
running(json_t *r)
{
	const char *s = cli_jstr(r, "State", "");
	return strcmp(s, "STARTING") == 0 || strcmp(s, "RUNNING") == 0
	        || strcmp(s, "CANCELLING") == 0;
}

static int
replays_start(const struct arc_opts *o, const char *name)
{
	if (!o->archive || !o->from || !o->to) {
		usage(stderr, "replays");
		return CLI_USAGE;
	}
	json_t *arc;
	int code = call(o, "replays", "DescribeArchive",
	                json_pack("{s:s}", "ArchiveName", o->archive), &arc);
	if (code)
		return code;
	/* the destination is the archive's own bus; rule ARNs are made from its ARN */
	const char *bus_arn = cli_jstr(arc, "EventSourceArn", "");
	const char *slash = strstr(bus_arn, ":event-bus/");
	json_t *dest = json_pack("{s:s}", "Arn", bus_arn), *filter = json_array();
	for (size_t i = 0; slash && i < o->nrules; i++) {
		const char *bus = slash + strlen(":event-bus/");
		char *arn = strncmp(o->rules[i], "arn:", 4) == 0 ? sl_strdup(o->rules[i])
		        : strcmp(bus, "default") == 0
		        ? sl_asprintf("%.*s:rule/%s", (int)(slash - bus_arn), bus_arn, o->rules[i])
		        : sl_asprintf("%.*s:rule/%s/%s", (int)(slash - bus_arn), bus_arn, bus,
		                      o->rules[i]);
		json_array_append_new(filter, json_string(arn));
		sl_free(arn);
	}
	if (o->nrules)
		json_object_set(dest, "FilterArns", filter);
	json_decref(filter);
	json_t *req = json_pack("{s:s,s:O,s:s,s:s,s:o}", "ReplayName", name, "EventSourceArn",
	                        json_object_get(arc, "ArchiveArn"), "EventStartTime", o->from,
	                        "EventEndTime", o->to, "Destination", dest);
	json_decref(arc);
	json_t *ans;
	if ((code = call(o, "replays", "StartReplay", req, &ans)))
		return code;
	printf("%s %s\n", cli_jstr(ans, "ReplayArn", ""), cli_jstr(ans, "State", ""));
	json_decref(ans);
	bool more = o->wait;
	while (more) {
		struct timespec ts = { 0, ARC_POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
		if ((code = call(o, "replays", "DescribeReplay",
		                 json_pack("{s:s}", "ReplayName", name), &ans)))
			return code;
		more = running(ans);
		if (!more)
			print_replay(ans);
		json_decref(ans);
	}
	return CLI_OK;
}

static int
replays_list(const struct arc_opts *o)
{
	json_t *all = json_array(), *ans;
	char *token = NULL;
	int code = CLI_OK;
	do {
		json_t *r = json_object();
		if (o->archive)
			json_object_set_new(r, "EventSourceArn", json_string(o->archive));
		if (o->prefix)
			json_object_set_new(r, "NamePrefix", json_string(o->prefix));
		if (o->state)
			json_object_set_new(r, "State", json_string(o->state));
		if (token)
			json_object_set_new(r, "NextToken", json_string(token));
		free(token);
		token = NULL;
		if ((code = call(o, "replays", "ListReplays", r, &ans)))
			break;
		json_array_extend(all, json_object_get(ans, "Replays"));
		const char *t = cli_jstr(ans, "NextToken", NULL);
		token = t ? strdup(t) : NULL;
		json_decref(ans);
	} while (token);
	if (code) {
		json_decref(all);
		return code;
	}
	if (o->json)
		return cli_print_json(json_pack("{s:o}", "Replays", all));
	printf("%-32s %-10s %-20s %-20s %s\n", "NAME", "STATE", "FROM", "TO", "LAST REPLAYED");
	size_t i;
	json_t *r;
	json_array_foreach(all, i, r)
	{
		char a[32], b[32], c[32];
		printf("%-32s %-10s %-20s %-20s %s\n", cli_jstr(r, "ReplayName", ""),
		       cli_jstr(r, "State", ""), cli_jtime(r, "EventStartTime", a),
		       cli_jtime(r, "EventEndTime", b), cli_jtime(r, "EventLastReplayedTime", c));
	}
	json_decref(all);
	return CLI_OK;
}

int
cmd_replays(int argc, char **argv)
{
	struct arc_opts o = { 0 };
	int code = parse(argc, argv, "replays", &o);
	if (code)
		return code < 0 ? CLI_OK : code;
	const char *verb = argv[optind];
	int rest = argc - optind - 1;
	const char *name = rest == 1 ? argv[optind + 1] : NULL;
	json_t *ans;
	if (strcmp(verb, "start") == 0 && name)
		return replays_start(&o, name);
	if (strcmp(verb, "list") == 0 && rest == 0)
		return replays_list(&o);
	if (strcmp(verb, "describe") == 0 && name) {
		if ((code = call(&o, "replays", "DescribeReplay",
		                 json_pack("{s:s}", "ReplayName", name), &ans)))
			return code;
		return cli_print_json(ans);
	}
	if (strcmp(verb, "cancel") == 0 && name) {
		if ((code = call(&o, "replays", "CancelReplay",
		                 json_pack("{s:s}", "ReplayName", name), &ans)))
			return code;
		printf("%s %s\n", cli_jstr(ans, "ReplayArn", ""), cli_jstr(ans, "State", ""));
		json_decref(ans);
		return CLI_OK;
	}
	usage(stderr, "replays");
	return CLI_USAGE;
}
