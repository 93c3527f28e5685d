/*
 * cmd_schedules.c - `sluice schedules list|backfill|advance-clock`: the schedule rules of a
 * bus with their zone, missed-run policy and fire times; backfills of a time range; and the
 * test clock of a server started with --virtual-time.
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

#define SCHED_CALL_TIMEOUT 60
#define SCHED_POLL_MS      200

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: sluice schedules list\n"
	        "       sluice schedules backfill RULE --from TIME --to TIME\n"
	        "                                 [--max-concurrency N] [--no-wait]\n"
	        "       sluice schedules advance-clock (--seconds N | --to TIME)\n"
	        "\n"
	        "backfill fires the rule's slots in [--from, --to) in order, each event marked\n"
	        "with detail {\"backfill\": true}; at most N (default 1) slots have deliveries\n"
	        "outstanding at once. It waits until every slot is fired unless --no-wait.\n"
	        "advance-clock moves the clock of a server started with --virtual-time (tests).\n"
	        "TIME is RFC 3339 (2026-11-01T00:00:00Z). Every command takes --bus NAME|ARN and\n"
	        "--endpoint URL (default $SLUICE_ENDPOINT or " CLI_DEFAULT_ENDPOINT ").\n"
	        "Exit codes: 0 ok, 2 bad input or refused by the server, 3 server unreachable.\n");
}

static int
call(const char *endpoint, const char *target, json_t *body, json_t **out)
{
	return cli_call(endpoint, target, body, SCHED_CALL_TIMEOUT, "schedules", out);
}

static void
print_backfill(json_t *b)
{
	printf("backfill %s: %s, %lld of %lld slot(s) fired, %lld outstanding%s%s\n",
	       cli_jstr(b, "BackfillId", "?"), cli_jstr(b, "State", "?"),
	       (long long)json_integer_value(json_object_get(b, "Fired")),
	       (long long)json_integer_value(json_object_get(b, "Slots")),
	       (long long)json_integer_value(json_object_get(b, "Outstanding")),
	       json_object_get(b, "LastSlot") ? ", last slot " : "", cli_jstr(b, "LastSlot", ""));
}

int
cmd_schedules(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "bus", required_argument, NULL, 'b' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "max-concurrency", required_argument, NULL, 'm' },
		{ "no-wait", no_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ep = NULL, *bus = NULL, *from = NULL, *to = NULL, *maxc = NULL, *secs = NULL;
	bool no_wait = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'e': ep = optarg; break;
		case 'b': bus = optarg; break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'm': maxc = optarg; break;
		case 'n': no_wait = true; break;
		case 's': secs = optarg; break;
		case 'h': usage(stdout); return CLI_OK;
		default: usage(stderr); return CLI_USAGE;
		}
	}
	const char *endpoint = cli_endpoint(ep);
	if (optind >= argc) {
		usage(stderr);
		return CLI_USAGE;
	}
	const char *verb = argv[optind];
	json_t *req = json_object(), *ans = NULL;
	if (req && bus)
		json_object_set_new(req, "EventBusName", json_string(bus));
	int code;
	if (strcmp(verb, "list") == 0 && optind + 1 == argc) {
		if ((code = call(endpoint, "SluiceEvents.ListSchedules", req, &ans)))
			return code;
		printf("%-24s %-22s %-16s %-5s %-8s %-20s %s\n", "NAME", "EXPRESSION", "ZONE",
		       "MISS", "STATE", "LAST", "NEXT");
		size_t i;
		json_t *s;
		json_array_foreach(json_object_get(ans, "Schedules"), i, s)
		{
			printf("%-24s %-22s %-16s %-5s %-8s %-20s %s\n", cli_jstr(s, "Name", ""),
			       cli_jstr(s, "ScheduleExpression", ""),
			       cli_jstr(s, "ScheduleExpressionTimezone", "UTC"),
			       cli_jstr(s, "MissedRunPolicy", "skip"), cli_jstr(s, "State", ""),
			       cli_jstr(s, "LastFireTime", "-"), cli_jstr(s, "NextFireTime", "-"));
		}
		json_decref(ans);
		return CLI_OK;
	}
	if (strcmp(verb, "advance-clock") == 0 && optind + 1 == argc && !secs != !to) {
		if (secs) {
			char *end;
			double n = strtod(secs, &end);
			if (*end || n < 0) {
				fprintf(stderr,
				        "sluice schedules: --seconds: expected a number >= 0\n");
				json_decref(req);
				return CLI_USAGE;
			}
			json_object_set_new(req, "Seconds", json_real(n));
		} else {
			json_object_set_new(req, "To", json_string(to));
		}
		if ((code = call(endpoint, "Sluice.AdvanceClock", req, &ans)))
			return code;
		printf("now %s, %lld slot(s) fired\n", cli_jstr(ans, "Now", "?"),
		       (long long)json_integer_value(json_object_get(ans, "FiredSlots")));
		json_decref(ans);
		return CLI_OK;
	}
	if (strcmp(verb, "backfill") == 0 && optind + 2 == argc && from && to) {
		json_object_set_new(req, "Rule", json_string(argv[optind + 1]));
		json_object_set_new(req, "From", json_string(from));
		json_object_set_new(req, "To", json_string(to));
		if (maxc) {
			char *end;
			long n = strtol(maxc, &end, 10);
			if (*end || n < 1) {
				fprintf(stderr,
				        "sluice schedules: --max-concurrency: expected a "
				        "whole number >= 1\n");
				json_decref(req);
				return CLI_USAGE;
			}
			json_object_set_new(req, "MaxConcurrency", json_integer(n));
		}
		if ((code = call(endpoint, "SluiceEvents.BackfillSchedule", req, &ans)))
			return code;
		print_backfill(ans);
		char *id = strdup(cli_jstr(ans, "BackfillId", ""));
		bool running = strcmp(cli_jstr(ans, "State", ""), "RUNNING") == 0;
		json_decref(ans);
		long long fired = -1;
		while (running && !no_wait && id) {
			struct timespec ts = { 0, SCHED_POLL_MS * 1000000L };
			nanosleep(&ts, NULL);
			if ((code = call(endpoint, "SluiceEvents.DescribeBackfill",
			                 json_pack("{s:s}", "BackfillId", id), &ans))) {
				free(id);
				return code;
			}
			running = strcmp(cli_jstr(ans, "State", ""), "RUNNING") == 0;
			long long f = (long long)json_integer_value(json_object_get(ans, "Fired"));
			if (f != fired || !running)
				print_backfill(ans);
			fired = f;
			json_decref(ans);
		}
		free(id);
		return CLI_OK;
	}
	json_decref(req);
	usage(stderr);
	return CLI_USAGE;
}
