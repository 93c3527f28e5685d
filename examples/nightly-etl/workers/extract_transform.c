/*
 * extract_transform.c - the nightly ETL's C worker, written with libsluice-worker.
 *
 *     extract_transform --connect tcp://127.0.0.1:8421 --data DIR [--concurrency N]
 *
 * Serves the activity `extract-transform`. A task's input is {"date": "YYYY-MM-DD",
 * "file": "DATE/part-NNNN.jsonl"} (a path relative to DIR). The worker reads the file, one
 * GeoJSON Feature of a city lot per line, validates and cleans each record and returns
 * per-street aggregates:
 *
 *     {"file": ..., "records": 612, "bad": 3,
 *      "errors": [{"line": 4, "reason": "malformed JSON: ..."}, ...],    (the first 5)
 *      "streets": {"MISSION": {"lots": 40, "odd": 19, "even": 21,
 *                              "blocks": ["0012", "3029", ...]}, ...}}
 *
 * A bad line (malformed JSON, a missing or empty field, ODD_EVEN not O or E) is counted
 * and reported, never fatal. Failures the workflow's Retry tells apart:
 *   ETL.BadInput          the task input is not what the workflow sends (not retried)
 *   ETL.MissingPartition  the file is gone (not retried)
 *   ETL.Transient         an I/O error that may pass (retried with back-off)
 * Heartbeats are sent by the library while a task runs. For demos and tests:
 * ETL_FLAKY_EVERY=N fails every N-th task with ETL.Transient before reading, and
 * ETL_SLOW_MS=M makes each task take at least M ms (stopping early if cancelled).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workers/sluice_worker.h"

#define MAX_LINE     (1024 * 1024) /* a longer line is a bad record */
#define MAX_OUTPUT   (200 * 1024)  /* stays under the 256 KiB payload limit */
#define MAX_ERRORS   5             /* bad lines described in the result */
#define MAX_PATH_LEN 1024

struct conf {
	const char *data_dir;
	unsigned flaky_every;
	unsigned slow_ms;
	atomic_uint tasks;
};

/* Fields every record must carry, non-empty, as strings. */
static const char *const required[] = { "MAPBLKLOT", "BLOCK_NUM", "LOT_NUM", "STREET", "ODD_EVEN" };

static void
fail(struct sluice_result *r, const char *error, const char *fmt, const char *detail)
{
	char cause[1200];
	snprintf(cause, sizeof cause, fmt, detail);
	r->error = strdup(error);
	r->cause = strdup(cause);
}

/* A relative path below the data directory: no absolute path, no "..", sane characters. */
static int
safe_relative(const char *p)
{
	if (!*p || *p == '/' || strlen(p) > 256)
		return 0;
	for (const char *s = p; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-_./", *s))
			return 0;
	return strstr(p, "..") == NULL;
}

/* Trims blanks in place and upper-cases; returns the cleaned string. */
static char *
clean(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	for (char *p = s; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	return s;
}

struct agg {
	json_t *streets; /* street -> {"lots", "odd", "even", "blocks": {block: true}} */
	json_t *errors;
	long records, bad;
};

static void
bad_line(struct agg *a, long line, const char *reason)
{
	a->bad++;
	if (json_array_size(a->errors) < MAX_ERRORS)
		json_array_append_new(
		        a->errors,
		        json_pack("{s:I, s:s}", "line", (json_int_t)line, "reason", reason));
}

static void
bump(json_t *o, const char *key)
{
	json_object_set_new(o, key, json_integer(json_integer_value(json_object_get(o, key)) + 1));
}

/* One line: a record counted in its street, or a bad line with its reason. */
static void
take_line(struct agg *a, long lineno, const char *line, size_t len)
{
	json_error_t je;
	json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	char reason[256];
	if (!rec) {
		snprintf(reason, sizeof reason, "malformed JSON: %s", je.text);
		bad_line(a, lineno, reason);
		return;
	}
	json_t *props = json_object_get(rec, "properties");
	if (!json_is_object(props) || !json_is_object(json_object_get(rec, "geometry"))) {
		bad_line(a, lineno, "not a Feature with properties and geometry");
		json_decref(rec);
		return;
	}
	char vals[5][128];
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
		const char *v = json_string_value(json_object_get(props, required[i]));
		if (!v || strlen(v) >= sizeof vals[i]) {
			snprintf(reason, sizeof reason, "missing or invalid field %s", required[i]);
			bad_line(a, lineno, reason);
			json_decref(rec);
			return;
		}
		strcpy(vals[i], v);
		if (!*clean(vals[i])) {
			snprintf(reason, sizeof reason, "empty field %s", required[i]);
			bad_line(a, lineno, reason);
			json_decref(rec);
			return;
		}
	}
	json_decref(rec);
	const char *block = clean(vals[1]), *street = clean(vals[3]), *oe = clean(vals[4]);
	if (strcmp(oe, "O") != 0 && strcmp(oe, "E") != 0) {
		snprintf(reason, sizeof reason, "ODD_EVEN is '%s', not O or E", oe);
		bad_line(a, lineno, reason);
		return;
	}
	json_t *s = json_object_get(a->streets, street);
	if (!s) {
		s = json_pack("{s:i, s:i, s:i, s:{}}", "lots", 0, "odd", 0, "even", 0, "blocks");
		json_object_set_new(a->streets, street, s);
	}
	bump(s, "lots");
	bump(s, *oe == 'O' ? "odd" : "even");
	json_object_set_new(json_object_get(s, "blocks"), block, json_true());
	a->records++;
}

/* The block sets become sorted arrays (jansson keeps insertion order: sort the keys). */
static int
cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static void
blocks_to_arrays(json_t *streets)
{
	const char *name;
	json_t *s;
	json_object_foreach(streets, name, s)
	{
		json_t *set = json_object_get(s, "blocks");
		size_t n = json_object_size(set), i = 0;
		const char **keys = calloc(n ? n : 1, sizeof *keys);
		const char *k;
		json_t *v;
		json_t *arr = json_array();
		if (!keys || !arr) {
			free(keys);
			json_decref(arr);
			continue;
		}
		json_object_foreach(set, k, v) keys[i++] = k;
		qsort(keys, n, sizeof *keys, cmp_str);
		for (i = 0; i < n; i++)
			json_array_append_new(arr, json_string(keys[i]));
		free(keys);
		json_object_set_new(s, "blocks", arr); /* frees the set and its keys */
	}
}

static void
pause_ms(const struct sluice_task *t, unsigned ms)
{
	for (unsigned done = 0; done < ms && !sluice_task_cancelled(t); done += 50) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

static void
extract(void *arg, const struct sluice_task *t, struct sluice_result *r)
{
	struct conf *c = arg;
	unsigned n = atomic_fetch_add(&c->tasks, 1) + 1;
	json_error_t je;
	json_t *in = json_loadb(t->input, t->input_len, 0, &je);
	const char *file = json_string_value(json_object_get(in, "file"));
	if (!file || !safe_relative(file)) {
		fail(r, "ETL.BadInput", "expected {\"file\": \"DATE/part-NNNN.jsonl\"}, got %.200s",
		     t->input);
		json_decref(in);
		return;
	}
	if (c->flaky_every && n % c->flaky_every == 0) {
		fail(r, "ETL.Transient", "simulated transient failure reading %s (ETL_FLAKY_EVERY)",
		     file);
		json_decref(in);
		return;
	}
	if (c->slow_ms)
		pause_ms(t, c->slow_ms);

	char path[MAX_PATH_LEN];
	snprintf(path, sizeof path, "%s/%s", c->data_dir, file);
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		char detail[MAX_PATH_LEN + 128];
		snprintf(detail, sizeof detail, "%s: %s", path, strerror(e));
		fail(r, e == ENOENT ? "ETL.MissingPartition" : "ETL.Transient", "cannot open %s",
		     detail);
		json_decref(in);
		return;
	}
	struct agg a = { .streets = json_object(), .errors = json_array() };
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long lineno = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len == 0)
			continue;
		if (len > MAX_LINE) {
			bad_line(&a, lineno, "line longer than 1 MiB");
			continue;
		}
		take_line(&a, lineno, line, (size_t)len);
		if ((lineno & 1023) == 0 && sluice_task_cancelled(t))
			break;
	}
	int read_err = ferror(f) ? errno : 0;
	free(line);
	fclose(f);
	if (read_err) {
		fail(r, "ETL.Transient", "read error: %s", strerror(read_err));
	} else {
		blocks_to_arrays(a.streets);
		json_t *out = json_pack("{s:s, s:I, s:I, s:O, s:O}", "file", file, "records",
		                        (json_int_t)a.records, "bad", (json_int_t)a.bad, "errors",
		                        a.errors, "streets", a.streets);
		char *txt = out ? json_dumps(out, JSON_COMPACT) : NULL;
		json_decref(out);
		if (!txt)
			fail(r, "ETL.Internal", "out of memory building the result of %s", file);
		else if (strlen(txt) > MAX_OUTPUT) {
			free(txt);
			fail(r, "ETL.OutputTooLarge",
			     "aggregates of %s exceed 200 KiB: split the file", file);
		} else
			r->output = txt;
		fprintf(stderr, "extract-transform: %s: %ld records, %ld bad\n", file, a.records,
		        a.bad);
	}
	json_decref(a.streets);
	json_decref(a.errors);
	json_decref(in);
}

static unsigned
env_uint(const char *name)
{
	const char *v = getenv(name);
	return v ? (unsigned)strtoul(v, NULL, 10) : 0;
}

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: extract_transform --connect URL --data DIR [--concurrency N] "
	        "[--name NAME]\n"
	        "serves the activity extract-transform (examples/nightly-etl)\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = { { "connect", required_argument, NULL, 'c' },
		                              { "data", required_argument, NULL, 'd' },
		                              { "concurrency", required_argument, NULL, 'n' },
		                              { "name", required_argument, NULL, 'N' },
		                              { "help", no_argument, NULL, 'h' },
		                              { NULL, 0, NULL, 0 } };
	struct conf c = { .data_dir = getenv("ETL_DATA"),
		          .flaky_every = env_uint("ETL_FLAKY_EVERY"),
		          .slow_ms = env_uint("ETL_SLOW_MS") };
	struct sluice_worker_options o = { .url = "tcp://127.0.0.1:8421",
		                           .concurrency = 2,
		                           .token = getenv("SLUICE_WORKERS_TOKEN"),
		                           .handle_signals = 1 };
	int ch;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': o.url = optarg; break;
		case 'd': c.data_dir = optarg; break;
		case 'n': o.concurrency = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'N': o.name = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!c.data_dir || optind != argc || o.concurrency < 1 || o.concurrency > 64) {
		usage(stderr);
		return 2;
	}
	atomic_init(&c.tasks, 0);
	sluice_worker_t *w = NULL;
	int rc = sluice_worker_new(&o, &w);
	if (rc == 0)
		rc = sluice_worker_register(w, "extract-transform", extract, &c);
	if (rc == 0) {
		fprintf(stderr, "extract-transform: serving %s from %s, %u at a time\n", o.url,
		        c.data_dir, o.concurrency);
		rc = sluice_worker_run(w);
	}
	if (rc != 0)
		fprintf(stderr, "extract-transform: %s\n", sluice_worker_strerror(rc));
	struct sluice_worker_stats st;
	if (w) {
		sluice_worker_get_stats(w, &st);
		fprintf(stderr,
		        "extract-transform: stopped: %llu succeeded, %llu failed, %llu cancelled, "
		        "%llu heartbeats\n",
		        (unsigned long long)st.tasks_succeeded, (unsigned long long)st.tasks_failed,
		        (unsigned long long)st.tasks_cancelled, (unsigned long long)st.heartbeats);
		sluice_worker_free(w);
	}
	return rc == 0 ? 0 : 1;
}
