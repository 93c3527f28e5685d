/*
 * cmd_run.c - `sluice run FILE`: one execution in-process on a temporary store, removed
 * afterwards. Prints the output (exit 0), the failure as {"error": ..., "cause": ...}
 * (exit 1), the definition's problems (exit 2), or a runtime problem (exit 3).
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/sl_alloc.h"
#include "statemachines/statemachines.h"
#include "stepper/step_local.h"
#include "stepper/step_mock.h"

#define RUN_INPUT_MAX (1024 * 1024)
#define RUN_MOCK_MAX  (16 * 1024 * 1024)

static void
run_usage(FILE *out)
{
	fprintf(out,
	        "usage: sluice run FILE [--input JSON|@FILE] [--mock FILE [--mock-case NAME]]\n"
	        "                       [--virtual-time] [--history] [--item-reader-root DIR]\n"
	        "\n"
	        "Runs one execution of the state machine in FILE (JSON or YAML) in-process, on a\n"
	        "temporary store that is removed afterwards, and prints its output.\n"
	        "  --input JSON|@FILE   execution input (default {})\n"
	        "  --mock FILE          task responses: Step Functions Local's MockConfigFile, or\n"
	        "                       {\"State\": [{\"Return\": v} | {\"Throw\": {\"Error\", "
	        "\"Cause\"}}, ...]}\n"
	        "  --mock-case NAME     the TestCases entry to use (needed when there are "
	        "several)\n"
	        "  --virtual-time       waits, back-offs and timeouts elapse at once\n"
	        "  --history            print the history events as JSON lines first\n"
	        "  --item-reader-root DIR  Map ItemReader files: s3://BUCKET/KEY is "
	        "DIR/BUCKET/KEY\n"
	        "exit codes: 0 succeeded, 1 failed/timed out/aborted ({\"error\",\"cause\"} on "
	        "stdout),\n"
	        "            2 invalid definition, input or usage, 3 runtime error\n");
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
print_problems(const char *path, struct sm_problems *problems, sl_err rc)
{
	for (size_t i = 0; i < problems->count; i++)
		printf("%s:%s: %s\n", path, problems->items[i].location,
		       problems->items[i].message);
	if (problems->count == 0)
		printf("%s: %s\n", path, sl_err_message(rc));
	return CLI_USAGE;
}

static json_t *
load_json_arg(const char *arg, size_t limit, const char *what)
{
	char *text = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	if (cli_text_or_file(arg, limit, &text, &err) != SL_OK) {
		fprintf(stderr, "sluice run: %s: %s\n", what, sl_error_text(&err));
		return NULL;
	}
	json_error_t je;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
	sl_free(text);
	if (!v)
		fprintf(stderr, "sluice run: %s: not JSON: %s at line %d, column %d\n", what,
		        je.text, je.line, je.column);
	return v;
}

/* A machine name from the file name ("etl.yaml" -> "etl") keeps ARNs readable, and picks
 * the StateMachines entry of a MockConfigFile with several. */
static void
machine_name(const char *path, char name[81])
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t n = 0;
	for (const char *p = base; *p && *p != '.' && n < 80; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		        || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_';
		name[n++] = ok ? *p : '_';
	}
	name[n] = 0;
	if (n == 0)
		snprintf(name, 81, "run");
}

static int
run_it(const char *path, struct sm_machine *m, json_t *input, struct step_mock *mock, bool vtime,
       bool history, const char *reader_root)
{
	char dir[] = "/tmp/sluice-run-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("sluice run: temporary store");
		return CLI_RUNTIME;
	}
	store_t *st = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	int rc = CLI_RUNTIME;
	struct step_local_result res;
	memset(&res, 0, sizeof res);
	if (store_open(dir, NULL, &st, &err) != SL_OK) {
		fprintf(stderr, "sluice run: %s\n", sl_error_text(&err));
		goto out_rm;
	}
	struct step_options eo = { .item_reader_root = reader_root };
	struct step_local_options opt
	        = { .mock = mock, .virtual_time = vtime, .want_history = history, .engine = &eo };
	char name[81];
	machine_name(path, name);
	if (step_local_run(st, m, name, input, &opt, &res, &err) != SL_OK) {
		fprintf(stderr, "sluice run: %s\n", sl_error_text(&err));
		goto out_close;
	}
	if (history) {
		size_t i;
		json_t *ev;
		json_array_foreach(res.history, i, ev)
		{
			char *s = json_dumps(ev, JSON_COMPACT);
			if (s)
				printf("%s\n", s);
			free(s);
		}
	}
	if (res.status == STEP_SUCCEEDED) {
		char *s = json_dumps(res.output, JSON_COMPACT | JSON_ENCODE_ANY);
		printf("%s\n", s ? s : "null");
		free(s);
		rc = CLI_OK;
	} else {
		json_t *o = json_object();
		json_object_set_new(o, "error", res.error ? json_string(res.error) : json_null());
		json_object_set_new(o, "cause", res.cause ? json_string(res.cause) : json_null());
		if (res.status != STEP_FAILED)
			json_object_set_new(o, "status", json_string(step_status_name(res.status)));
		char *s = json_dumps(o, JSON_COMPACT);
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
		rc = CLI_NO;
	}
out_close:
	step_local_result_clear(&res);
	store_free(st);
out_rm:
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}

int
cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "mock", required_argument, NULL, 'm' },
		{ "mock-case", required_argument, NULL, 'c' },
		{ "virtual-time", no_argument, NULL, 'v' },
		{ "history", no_argument, NULL, 'H' },
		{ "item-reader-root", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *input_arg = NULL, *mock_arg = NULL, *mock_case = NULL, *reader_root = NULL;
	bool vtime = false, history = false;
	int ch;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'i': input_arg = optarg; break;
		case 'm': mock_arg = optarg; break;
		case 'c': mock_case = optarg; break;
		case 'v': vtime = true; break;
		case 'H': history = true; break;
		case 'R': reader_root = optarg; break;
		case 'h': run_usage(stdout); return CLI_OK;
		default:
			fprintf(stderr, "sluice run: unknown or incomplete option '%s'\n",
			        argv[optind - 1]);
			run_usage(stderr);
			return CLI_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "sluice run: expected exactly one definition FILE\n");
		run_usage(stderr);
		return CLI_USAGE;
	}
	if (mock_case && !mock_arg) {
		fprintf(stderr, "sluice run: --mock-case needs --mock\n");
		return CLI_USAGE;
	}
	const char *path = argv[optind];
	char *text = NULL;
	size_t len = 0;
	struct sl_error err;
	sl_error_clear(&err);
	if (cli_read_file(path, SM_DEFINITION_MAX_BYTES + 1, &text, &len, &err) != SL_OK) {
		fprintf(stderr, "sluice run: %s\n", sl_error_text(&err));
		return CLI_USAGE;
	}
	struct sm_problems problems = { 0 };
	struct sm_machine *m = NULL;
	sl_err rc = sm_definition_compile_text(text, len, NULL, SM_FORMAT_AUTO, &m, &problems);
	sl_free(text);
	if (rc != SL_OK) {
		int x = rc == SL_ERR_NOMEM ? CLI_RUNTIME : print_problems(path, &problems, rc);
		sm_problems_clear(&problems);
		return x;
	}
	int code = CLI_USAGE;
	json_t *input
	        = input_arg ? load_json_arg(input_arg, RUN_INPUT_MAX, "--input") : json_object();
	json_t *mdoc = NULL;
	struct step_mock *mock = NULL;
	if (!input)
		goto out;
	if (mock_arg) {
		char *mt = NULL;
		size_t ml = 0;
		if (cli_read_file(mock_arg, RUN_MOCK_MAX, &mt, &ml, &err) != SL_OK) {
			fprintf(stderr, "sluice run: --mock: %s\n", sl_error_text(&err));
			goto out;
		}
		json_error_t je;
		mdoc = json_loadb(mt, ml, 0, &je);
		sl_free(mt);
		if (!mdoc) {
			fprintf(stderr,
			        "sluice run: --mock %s: not JSON: %s at line %d, column %d\n",
			        mock_arg, je.text, je.line, je.column);
			goto out;
		}
		char mname[81];
		machine_name(path, mname);
		json_t *sms = json_object_get(mdoc, "StateMachines");
		bool several = json_is_object(sms) && json_object_size(sms) > 1;
		if (step_mock_parse(mdoc, several ? mname : NULL, mock_case, &mock, &err)
		    != SL_OK) {
			fprintf(stderr, "sluice run: --mock %s: %s\n", mock_arg,
			        sl_error_text(&err));
			goto out;
		}
	}
	code = run_it(path, m, input, mock, vtime, history, reader_root);
out:
	step_mock_free(mock);
	json_decref(mdoc);
	json_decref(input);
	sm_machine_free(m);
	return code;
}
