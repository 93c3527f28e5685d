/*
 * main.c - the `sluice` command: one binary, one subcommand per job.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/sl_alloc.h"

static int cmd_version(int argc, char **argv);

static const struct cli_command commands[] = {
	{ "serve", "run the event bus and workflow server", cmd_serve },
	{ "state-machines", "create, update, describe, list, delete state machines",
	  cmd_state_machines },
	{ "apply", "create or update what app files declare (docs/APP.md)", cmd_apply },
	{ "executions", "start, list, describe, watch executions", cmd_executions },
	{ "map-runs", "list and describe the map runs of distributed Map states", cmd_map_runs },
	{ "put-events", "put events on a bus (arguments, JSON lines, an array)", cmd_put_events },
	{ "rules", "list, describe, put, enable, disable, delete event rules", cmd_rules },
	{ "targets", "list, put, remove the targets of a rule", cmd_targets },
	{ "schedules", "list schedule rules, backfill a time range", cmd_schedules },
	{ "archives", "list, describe, create, delete event archives", cmd_archives },
	{ "replays", "start, describe, list, cancel replays of an archive", cmd_replays },
	{ "worker", "serve activities by running a command per task", cmd_worker },
	{ "validate", "check state machine definitions and app files", cmd_validate },
	{ "test-pattern", "does an event match an EventBridge event pattern?", cmd_test_pattern },
	{ "run", "run one execution in-process and print its output", cmd_run },
	{ "dead-letters", "list, show, redrive, purge undeliverable events", cmd_dead_letters },
	{ "version", "print the version", cmd_version },
};

static int
cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("sluice %s\n", SLUICE_VERSION);
	return CLI_OK;
}

static void
usage(FILE *out)
{
	fprintf(out, "usage: sluice <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
	        "\n`sluice <command> --help` describes a command.\n"
	        "exit codes: 0 ok, 1 no (e.g. no match), 2 bad input or usage, 3 runtime "
	        "error\n");
}

int
main(int argc, char **argv)
{
	sl_alloc_init();
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0
	    || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(0, NULL);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "sluice: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return CLI_USAGE;
}
