/*
 * cmd_test_pattern.c - `sluice test-pattern`: TestEventPattern on the command line, and a
 * batch form that runs many rules over a file of events through one pattern machine.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/pattern.h"
#include "cli/cli.h"
#include "common/sl_alloc.h"

#define PATTERN_READ_LIMIT (64 * 1024) /* past 4096 characters the engine says why */
#define EVENT_READ_LIMIT   (1024 * 1024)
#define RULES_READ_LIMIT   (256 * 1024 * 1024)

static void
test_pattern_usage(FILE *out)
{
	fprintf(out,
	        "usage: sluice test-pattern --pattern JSON|@FILE --event JSON|@FILE\n"
	        "       sluice test-pattern --rules FILE --events FILE.jlines\n"
	        "\n"
	        "First form: does the event match the EventBridge event pattern? Prints true or\n"
	        "false. Exit 0 on a match, 1 on no match, 2 on an invalid pattern or event (the\n"
	        "AWS InvalidEventPatternException text, or where the event is malformed, on "
	        "stderr).\n"
	        "\n"
	        "Second form: FILE is a JSON object mapping rule names to patterns (a pattern\n"
	        "object, or a string holding one); FILE.jlines holds one event per line. For "
	        "every\n"
	        "non-empty line prints one line: the names of the matching rules in the order of\n"
	        "FILE, separated by spaces (an empty line when none match). A malformed event is\n"
	        "reported on stderr with its line number and printed as an empty line; the exit\n"
	        "code is then 2. '-' reads stdin.\n");
}

static int
single(const char *pattern_arg, const char *event_arg)
{
	char *pattern = NULL, *event = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	int code = CLI_USAGE;
	if (cli_text_or_file(pattern_arg, PATTERN_READ_LIMIT, &pattern, &err) != SL_OK
	    || cli_text_or_file(event_arg, EVENT_READ_LIMIT, &event, &err) != SL_OK) {
		fprintf(stderr, "sluice test-pattern: %s\n", sl_error_text(&err));
		goto out;
	}
	bool match = false;
	if (pat_test(pattern, event, &match, &err) != SL_OK) {
		fprintf(stderr, "%s\n", sl_error_text(&err));
		code = err.code == SL_ERR_NOMEM ? CLI_RUNTIME : CLI_USAGE;
		goto out;
	}
	printf("%s\n", match ? "true" : "false");
	code = match ? CLI_OK : CLI_NO;
out:
	sl_free(pattern);
	sl_free(event);
	return code;
}

struct hit {
	uint32_t id;
	const char *name;
};

struct batch {
	struct hit *hits;
	size_t n, cap;
};

static bool
collect(void *ctx, uint32_t rule_id, const char *name)
{
	struct batch *b = ctx;
	if (b->n < b->cap)
		b->hits[b->n++] = (struct hit) { rule_id, name };
	return true;
}

static int
cmp_hit(const void *a, const void *b)
{
	uint32_t x = ((const struct hit *)a)->id, y = ((const struct hit *)b)->id;
	return x < y ? -1 : x > y;
}

static int
load_rules(pat_machine_t *m, const char *path, size_t *nrules)
{
	char *text = NULL;
	size_t len = 0;
	struct sl_error err;
	sl_error_clear(&err);
	if (cli_read_file(path, RULES_READ_LIMIT, &text, &len, &err) != SL_OK) {
		fprintf(stderr, "sluice test-pattern: %s\n", sl_error_text(&err));
		return CLI_USAGE;
	}
	json_error_t je;
	json_t *rules = json_loadb(text, len, 0, &je);
	sl_free(text);
	if (!rules || !json_is_object(rules)) {
		fprintf(stderr, "sluice test-pattern: %s: %s at line %d, column %d\n", path,
		        rules ? "expected a JSON object of rule name -> pattern" : je.text, je.line,
		        je.column);
		json_decref(rules);
		return CLI_USAGE;
	}
	const char *name;
	json_t *p;
	int code = CLI_OK;
	json_object_foreach(rules, name, p)
	{
		char *dumped = NULL;
		const char *ptext;
		if (json_is_string(p)) {
			ptext = json_string_value(p);
		} else {
			dumped = json_dumps(p,
			                    JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
			ptext = dumped;
		}
		sl_err rc = ptext ? pat_machine_add_rule(m, name, ptext, strlen(ptext), NULL, &err)
		                  : sl_error_set(&err, SL_ERR_NOMEM, "out of memory");
		free(dumped);
		if (rc != SL_OK) {
			fprintf(stderr, "sluice test-pattern: rule %s: %s\n", name,
			        sl_error_text(&err));
			code = rc == SL_ERR_NOMEM ? CLI_RUNTIME : CLI_USAGE;
			break;
		}
		(*nrules)++;
	}
	json_decref(rules);
	return code;
}

static int
batch(const char *rules_path, const char *events_path)
{
	pat_machine_t *m;
	struct sl_error err;
	sl_error_clear(&err);
	if (pat_machine_new(&m, &err) != SL_OK) {
		fprintf(stderr, "sluice test-pattern: %s\n", sl_error_text(&err));
		return CLI_RUNTIME;
	}
	size_t nrules = 0;
	int code = load_rules(m, rules_path, &nrules);
	FILE *in = NULL;
	struct batch b = { 0 };
	char *line = NULL;
	size_t lcap = 0;
	if (code != CLI_OK)
		goto out;
	in = strcmp(events_path, "-") == 0 ? stdin : fopen(events_path, "rb");
	if (!in) {
		fprintf(stderr, "sluice test-pattern: cannot open %s\n", events_path);
		code = CLI_USAGE;
		goto out;
	}
	b.cap = nrules ? nrules : 1;
	b.hits = sl_calloc(b.cap, sizeof *b.hits);
	if (!b.hits) {
		code = CLI_RUNTIME;
		goto out;
	}
	ssize_t got;
	size_t lineno = 0;
	while ((got = getline(&line, &lcap, in)) >= 0) {
		lineno++;
		size_t n = (size_t)got;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (n == 0)
			continue;
		b.n = 0;
		if (pat_machine_match(m, line, n, collect, &b, &err) != SL_OK) {
			fprintf(stderr, "%s:%zu: %s\n", events_path, lineno, sl_error_text(&err));
			code = CLI_USAGE;
			putchar('\n');
			continue;
		}
		/* a fresh machine hands out rule ids in insertion order: sorting keeps FILE's */
		qsort(b.hits, b.n, sizeof *b.hits, cmp_hit);
		for (size_t i = 0; i < b.n; i++)
			printf("%s%s", i ? " " : "", b.hits[i].name);
		putchar('\n');
	}
out:
	free(line);
	if (in && in != stdin)
		fclose(in);
	sl_free(b.hits);
	pat_machine_free(m);
	return code;
}

int
cmd_test_pattern(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		test_pattern_usage(stdout);
		return CLI_OK;
	}
	const char *pattern = NULL, *event = NULL, *rules = NULL, *events = NULL;
	for (int i = 1; i < argc; i++) {
		const char **dst = NULL;
		if (strcmp(argv[i], "--pattern") == 0)
			dst = &pattern;
		else if (strcmp(argv[i], "--event") == 0)
			dst = &event;
		else if (strcmp(argv[i], "--rules") == 0)
			dst = &rules;
		else if (strcmp(argv[i], "--events") == 0)
			dst = &events;
		if (!dst || i + 1 >= argc) {
			fprintf(stderr, "sluice test-pattern: %s %s\n",
			        dst ? "missing value for" : "unknown argument", argv[i]);
			test_pattern_usage(stderr);
			return CLI_USAGE;
		}
		*dst = argv[++i];
	}
	if (pattern && event && !rules && !events)
		return single(pattern, event);
	if (rules && events && !pattern && !event)
		return batch(rules, events);
	fprintf(stderr,
	        "sluice test-pattern: give --pattern and --event, or --rules and --events\n");
	test_pattern_usage(stderr);
	return CLI_USAGE;
}
