/*
 * cmd_dead_letters.c - `sluice dead-letters list|show|redrive|purge`: the deliveries that
 * ran out of retries on targets with a DeadLetterConfig, through the server's
 * SluiceEvents.* operations (docs/BUS.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_http.h"
#include "common/sl_alloc.h"

struct dl_opts {
	const char *endpoint;
	const char *rule;
	const char *bus;
	bool json;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: sluice dead-letters list [--rule R] [--bus B] [--json]\n"
	        "       sluice dead-letters show ID\n"
	        "       sluice dead-letters redrive [--rule R] [--bus B] [ID...]\n"
	        "       sluice dead-letters purge [--rule R] [--bus B] [ID...]\n"
	        "\n"
	        "Deliveries that ran out of retries on a target with a DeadLetterConfig.\n"
	        "redrive delivers them again (attempt 0, due now); purge deletes them. Without\n"
	        "IDs, both act on every dead letter of the rule (or bus), or on all of them.\n"
	        "Every command takes --endpoint URL (default $SLUICE_ENDPOINT "
	        "or " CLI_DEFAULT_ENDPOINT ").\n"
	        "Exit codes: 0 ok, 2 bad input or refused by the server, 3 server unreachable.\n");
}

static int
failure(sl_err rc, const struct sl_error *err)
{
	fprintf(stderr, "sluice dead-letters: %s\n", sl_error_text(err));
	return rc == SL_ERR_INVALID_ARG ? CLI_USAGE : CLI_RUNTIME;
}

static sl_err
call(const struct dl_opts *o, const char *op, json_t *req, json_t **out, struct sl_error *err)
{
	char target[96];
	snprintf(target, sizeof target, "SluiceEvents.%s", op);
	*out = NULL;
	return cli_aws_call(cli_endpoint(o->endpoint), target, req, 60, out, err);
}

static json_t *
selection(const struct dl_opts *o)
{
	json_t *req = json_object();
	if (req && o->rule)
		json_object_set_new(req, "Rule", json_string(o->rule));
	if (req && o->bus)
		json_object_set_new(req, "EventBusName", json_string(o->bus));
	return req;
}

static const char *
str(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "";
}

static int
do_list(const struct dl_opts *o)
{
	char *token = NULL;
	json_t *all = json_array();
	int code = CLI_OK;
	do {
		json_t *req = selection(o), *page = NULL;
		if (token)
			json_object_set_new(req, "NextToken", json_string(token));
		struct sl_error err = { 0 };
		sl_err rc = call(o, "ListDeadLetters", req, &page, &err);
		json_decref(req);
		free(token);
		token = NULL;
		if (rc) {
			json_decref(page);
			code = failure(rc, &err);
			break;
		}
		json_array_extend(all, json_object_get(page, "DeadLetters"));
		const char *t = json_string_value(json_object_get(page, "NextToken"));
		token = t ? strdup(t) : NULL;
		json_decref(page);
	} while (token);
	if (code == CLI_OK && o->json) {
		char *s = json_dumps(all, JSON_INDENT(2));
		if (s)
			printf("%s\n", s);
		free(s);
	} else if (code == CLI_OK) {
		printf("%-36s  %-20s  %-16s  %-8s  %s\n", "ID", "RULE", "TARGET", "ATTEMPTS",
		       "ERROR");
		size_t i;
		json_t *d;
		json_array_foreach(all, i, d)
		{
			printf("%-36s  %-20s  %-16s  %-8lld  %s: %s\n", str(d, "Id"),
			       str(d, "Rule"), str(d, "TargetId"),
			       (long long)json_integer_value(json_object_get(d, "Attempts")),
			       str(d, "ErrorCode"), str(d, "ErrorMessage"));
		}
	}
	json_decref(all);
	return code;
}

static int
do_show(const struct dl_opts *o, const char *id)
{
	json_t *out = NULL;
	struct sl_error err = { 0 };
	json_t *req = json_pack("{s:s}", "Id", id);
	sl_err rc = call(o, "GetDeadLetter", req, &out, &err);
	json_decref(req);
	if (rc) {
		json_decref(out);
		return failure(rc, &err);
	}
	char *s = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(out);
	return CLI_OK;
}

/* redrive or purge: by ids, else the whole selection, a thousand at a time. */
static int
do_bulk(const struct dl_opts *o, bool redrive, char **ids, int n)
{
	const char *op = redrive ? "RedriveDeadLetters" : "PurgeDeadLetters";
	const char *count_key = redrive ? "Redriven" : "Purged";
	long long total = 0, missing = 0;
	bool more;
	do {
		json_t *req = selection(o);
		if (n > 0) {
			json_t *arr = json_array();
			for (int i = 0; i < n; i++)
				json_array_append_new(arr, json_string(ids[i]));
			json_object_set_new(req, "Ids", arr);
		}
		json_t *out = NULL;
		struct sl_error err = { 0 };
		sl_err rc = call(o, op, req, &out, &err);
		json_decref(req);
		if (rc) {
			json_decref(out);
			return failure(rc, &err);
		}
		total += (long long)json_integer_value(json_object_get(out, count_key));
		json_t *nf = json_object_get(out, "NotFound"), *v;
		size_t i;
		json_array_foreach(nf, i, v)
		{
			fprintf(stderr, "sluice dead-letters: no dead letter %s\n",
			        json_string_value(v));
			missing++;
		}
		more = json_is_true(json_object_get(out, "More"));
		json_decref(out);
	} while (more && n == 0);
	printf("%s %lld dead letter(s)\n", redrive ? "redriven" : "purged", total);
	return missing ? CLI_USAGE : CLI_OK;
}

int
cmd_dead_letters(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, 0, 'E' }, { "rule", required_argument, 0, 'r' },
		{ "bus", required_argument, 0, 'b' },      { "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },           { 0, 0, 0, 0 },
	};
	struct dl_opts o = { 0 };
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'E': o.endpoint = optarg; break;
		case 'r': o.rule = optarg; break;
		case 'b': o.bus = optarg; break;
		case 'j': o.json = true; break;
		case 'h': usage(stdout); return CLI_OK;
		default: usage(stderr); return CLI_USAGE;
		}
	}
	int n = argc - optind;
	if (n < 1) {
		usage(stderr);
		return CLI_USAGE;
	}
	const char *sub = argv[optind];
	char **rest = argv + optind + 1;
	n--;
	if (strcmp(sub, "list") == 0 && n == 0)
		return do_list(&o);
	if (strcmp(sub, "show") == 0 && n == 1)
		return do_show(&o, rest[0]);
	if (strcmp(sub, "redrive") == 0)
		return do_bulk(&o, true, rest, n);
	if (strcmp(sub, "purge") == 0)
		return do_bulk(&o, false, rest, n);
	usage(stderr);
	return CLI_USAGE;
}
