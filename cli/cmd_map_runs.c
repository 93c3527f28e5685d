/*
 * cmd_map_runs.c - `sluice map-runs list EXECUTION_ARN` and `sluice map-runs describe
 * MAP_RUN_ARN`: the map runs of distributed Map states (ListMapRuns, DescribeMapRun;
 * docs/STEPPER.md "Distributed Map").
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_api.h"
#include "cli/cli_http.h"

#define MR_CALL_TIMEOUT 60

struct mr_opts {
	const char *endpoint;
	bool json;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: sluice map-runs list EXECUTION_ARN [--json]\n"
	        "       sluice map-runs describe MAP_RUN_ARN [--json]\n"
	        "\n"
	        "A distributed Map state runs its items as child executions in a map run:\n"
	        "list shows the runs an execution started, describe one run's status and\n"
	        "item counts. Both take --endpoint URL (default $SLUICE_ENDPOINT "
	        "or " CLI_DEFAULT_ENDPOINT ").\n"
	        "Exit codes: 0 ok, 2 bad input or refused by the server, 3 server "
	        "unreachable.\n");
}

/* One call; body is stolen. Prints the error and returns the exit code on failure. */
static int
call(const struct mr_opts *o, const char *op, json_t *body, json_t **out)
{
	char target[96];
	snprintf(target, sizeof target, "AWSStepFunctions.%s", op);
	return cli_call(cli_endpoint(o->endpoint), target, body, MR_CALL_TIMEOUT, "map-runs", out);
}

static long long
count(json_t *d, const char *group, const char *k)
{
	return (long long)json_integer_value(json_object_get(json_object_get(d, group), k));
}

static int
do_list(const struct mr_opts *o, const char *arn)
{
	json_t *all = json_array(), *ans;
	char *token = NULL;
	int code = CLI_OK;
	do {
		json_t *r = json_pack("{s:s}", "executionArn", arn);
		if (r && token)
			json_object_set_new(r, "nextToken", json_string(token));
		free(token);
		token = NULL;
		if ((code = call(o, "ListMapRuns", r, &ans)))
			break;
		json_array_extend(all, json_object_get(ans, "mapRuns"));
		const char *t = cli_jstr(ans, "nextToken", NULL);
		token = t ? strdup(t) : NULL;
		json_decref(ans);
	} while (token);
	if (code) {
		json_decref(all);
		return code;
	}
	if (o->json)
		return cli_print_json(json_pack("{s:o}", "mapRuns", all));
	printf("%-20s %-20s %s\n", "STARTED", "STOPPED", "MAP RUN");
	size_t i;
	json_t *m;
	json_array_foreach(all, i, m)
	{
		char a[32], b[32];
		printf("%-20s %-20s %s\n", cli_jtime(m, "startDate", a),
		       cli_jtime(m, "stopDate", b), cli_jstr(m, "mapRunArn", ""));
	}
	json_decref(all);
	return CLI_OK;
}

static int
do_describe(const struct mr_opts *o, const char *arn)
{
	json_t *d;
	int code = call(o, "DescribeMapRun", json_pack("{s:s}", "mapRunArn", arn), &d);
	if (code)
		return code;
	if (o->json)
		return cli_print_json(d);
	char a[32], b[32];
	printf("map run     %s\n", cli_jstr(d, "mapRunArn", ""));
	printf("execution   %s\n", cli_jstr(d, "executionArn", ""));
	printf("status      %s\n", cli_jstr(d, "status", ""));
	printf("started     %s\n", cli_jtime(d, "startDate", a));
	printf("stopped     %s\n", cli_jtime(d, "stopDate", b));
	printf("concurrency %lld\n",
	       (long long)json_integer_value(json_object_get(d, "maxConcurrency")));
	printf("tolerated   %lld failures, %g %%\n",
	       (long long)json_integer_value(json_object_get(d, "toleratedFailureCount")),
	       json_number_value(json_object_get(d, "toleratedFailurePercentage")));
	printf("redrives    %lld\n",
	       (long long)json_integer_value(json_object_get(d, "redriveCount")));
	const char *groups[2] = { "itemCounts", "executionCounts" };
	const char *names[2] = { "items", "executions" };
	printf("%-11s %8s %8s %9s %8s %9s %8s %8s\n", "", "total", "pending", "running",
	       "succeeded", "failed", "timedOut", "aborted");
	for (int g = 0; g < 2; g++)
		printf("%-11s %8lld %8lld %9lld %8lld %9lld %8lld %8lld\n", names[g],
		       count(d, groups[g], "total"), count(d, groups[g], "pending"),
		       count(d, groups[g], "running"), count(d, groups[g], "succeeded"),
		       count(d, groups[g], "failed"), count(d, groups[g], "timedOut"),
		       count(d, groups[g], "aborted"));
	json_decref(d);
	return CLI_OK;
}

int
cmd_map_runs(int argc, char **argv)
{
	struct mr_opts o = { 0 };
	static const struct option longs[] = { { "endpoint", required_argument, NULL, 'e' },
		                               { "json", no_argument, NULL, 'j' },
		                               { "help", no_argument, NULL, 'h' },
		                               { NULL, 0, NULL, 0 } };
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
		switch (c) {
		case 'e': o.endpoint = optarg; break;
		case 'j': o.json = true; break;
		case 'h': usage(stdout); return CLI_OK;
		default: usage(stderr); return CLI_USAGE;
		}
	}
	// options may also follow the verb and its argument
	const char *verb = NULL, *arn = NULL;
	while (optind < argc) {
		if (argv[optind][0] == '-') {
			if ((c = getopt_long(argc, argv, "+h", longs, NULL)) == -1)
				break;
			switch (c) {
			case 'e': o.endpoint = optarg; break;
			case 'j': o.json = true; break;
			case 'h': usage(stdout); return CLI_OK;
			default: usage(stderr); return CLI_USAGE;
			}
			continue;
		}
		if (!verb)
			verb = argv[optind];
		else if (!arn)
			arn = argv[optind];
		else {
			usage(stderr);
			return CLI_USAGE;
		}
		optind++;
	}
	if (verb && arn && strcmp(verb, "list") == 0)
		return do_list(&o, arn);
	if (verb && arn && strcmp(verb, "describe") == 0)
		return do_describe(&o, arn);
	usage(stderr);
	return CLI_USAGE;
}
