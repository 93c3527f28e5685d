/*
 * word_count.c - a small sluice worker in C: serves the activity "word-count".
 *
 *     word_count [--connect tcp://127.0.0.1:8421] [--concurrency N] [--token SECRET]
 *
 * A task's input is a JSON object with a string "text"; the result is
 *
 *     {"words": 6, "longest": "between"}
 *
 * (words are runs of non-blank characters). An input without a string "text" fails the task
 * with the error "WordCount.BadInput", which a state's Retry/Catch can name. Stop it with
 * Ctrl-C or SIGTERM: it stops polling, lets running tasks finish and report, and exits.
 *
 * Everything about the server connection (long polls, automatic heartbeats while a handler
 * runs, reconnecting with back-off) is the library's: a worker is its handlers and a main.
 */
#include <ctype.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice_worker.h> /* installed by libsluice-worker; pkg-config sluice-worker */

#define LONGEST_MAX 64 /* characters of the longest word reported */

/* Sets a failure: the library frees error and cause (malloc'd) after reporting them. */
static void
fail(struct sluice_result *r, const char *error, const char *cause)
{
	r->error = strdup(error);
	r->cause = strdup(cause);
}

/* The handler: runs on one of the worker's threads, once per task. It only reads the task
 * and fills the result, so it needs no locking even with --concurrency above 1. */
static void
count_words(void *arg, const struct sluice_task *task, struct sluice_result *r)
{
	(void)arg;
	json_error_t je;
	json_t *in = json_loadb(task->input, task->input_len, 0, &je);
	const char *text = json_string_value(json_object_get(in, "text"));
	if (!text) {
		fail(r, "WordCount.BadInput", "the input must be an object with a string \"text\"");
		json_decref(in);
		return;
	}
	size_t words = 0, best = 0;
	const char *best_at = "";
	for (const char *p = text; *p;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		const char *start = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		words++;
		if ((size_t)(p - start) > best) {
			best = (size_t)(p - start);
			best_at = start;
		}
	}
	char longest[LONGEST_MAX + 1];
	snprintf(longest, sizeof longest, "%.*s", (int)(best < LONGEST_MAX ? best : LONGEST_MAX),
	         best_at);
	// the output is JSON text the library sends back as the task's result
	json_t *out = json_pack("{s:I,s:s}", "words", (json_int_t)words, "longest", longest);
	r->output = out ? json_dumps(out, JSON_COMPACT) : NULL;
	json_decref(out);
	json_decref(in);
	if (!r->output)
		fail(r, "WordCount.Internal", "out of memory");
}

static void
usage(FILE *to)
{
	fprintf(to, "usage: word_count [--connect URL] [--concurrency N] [--token SECRET]\n");
}

int
main(int argc, char **argv)
{
	struct sluice_worker_options opt = {
		.url = "tcp://127.0.0.1:8421", // `sluice serve`'s default --workers
		.concurrency = 1,
		.handle_signals = 1, // SIGTERM/SIGINT end sluice_worker_run cleanly
	};
	static const struct option longopts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "concurrency", required_argument, NULL, 'n' },
		{ "token", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:n:t:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': opt.url = optarg; break;
		case 'n': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (*end || n == 0 || n > 256) {
				fprintf(stderr, "word_count: --concurrency must be 1..256\n");
				return 2;
			}
			opt.concurrency = (unsigned)n;
			break;
		}
		case 't': opt.token = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}

	sluice_worker_t *w = NULL;
	int rc = sluice_worker_new(&opt, &w);
	if (rc == 0)
		rc = sluice_worker_register(w, "word-count", count_words, NULL);
	if (rc != 0) {
		fprintf(stderr, "word_count: %s\n", sluice_worker_strerror(rc));
		sluice_worker_free(w);
		return 1;
	}
	fprintf(stderr, "word_count: serving activity word-count from %s (%u at a time)\n", opt.url,
	        opt.concurrency);
	rc = sluice_worker_run(w); // returns after a stop, once running tasks have reported
	struct sluice_worker_stats st;
	sluice_worker_get_stats(w, &st);
	fprintf(stderr, "word_count: stopped: %llu task(s) succeeded, %llu failed\n",
	        (unsigned long long)st.tasks_succeeded, (unsigned long long)st.tasks_failed);
	sluice_worker_free(w);
	if (rc != 0) {
		fprintf(stderr, "word_count: %s\n", sluice_worker_strerror(rc));
		return 1;
	}
	return 0;
}
