/*
 * cli.h - what the `sluice` subcommands share: exit codes, argument helpers, the table.
 *
 * Exit codes (every command): 0 ok, 1 a "no" answer (a pattern that does not match, an
 * execution that failed), 2 bad input or usage, 3 server or runtime error.
 */
#ifndef SLUICE_CLI_CLI_H
#define SLUICE_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/sl_err.h"

enum cli_exit { CLI_OK = 0, CLI_NO = 1, CLI_USAGE = 2, CLI_RUNTIME = 3 };

struct cli_command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

/* Each command lives in its own cli/cmd_*.c and is listed in main.c's table. */
int cmd_serve(int argc, char **argv);
int cmd_test_pattern(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_state_machines(int argc, char **argv);
int cmd_dead_letters(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_executions(int argc, char **argv);
int cmd_map_runs(int argc, char **argv);
int cmd_put_events(int argc, char **argv);
int cmd_rules(int argc, char **argv);
int cmd_targets(int argc, char **argv);
int cmd_schedules(int argc, char **argv);
int cmd_archives(int argc, char **argv);
int cmd_replays(int argc, char **argv);

/* Reads a whole file into a new NUL-terminated buffer (limit bytes at most). */
sl_err cli_read_file(const char *path, size_t limit, char **out, size_t *out_len,
                     struct sl_error *err);
/* "JSON" or "@FILE": the text itself, or the file's contents; the result is always new. */
sl_err cli_text_or_file(const char *arg, size_t limit, char **out, struct sl_error *err);
/* True when argv contains -h or --help. */
bool cli_wants_help(int argc, char **argv);

/* The string member k of j, or def. */
const char *cli_jstr(json_t *j, const char *k, const char *def);
/* AWS's epoch-seconds member k of j as RFC 3339 in out, or "-" when absent. */
const char *cli_jtime(json_t *j, const char *k, char out[32]);
/* Prints ans indented, in its order, and releases it; CLI_OK. */
int cli_print_json(json_t *ans);

#endif
