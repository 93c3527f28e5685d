/*
 * patterns_bench.c - matching throughput of the pattern machine on the synthetic citylots
 * file: every rule set of bench-rulesets.json (counts checked against
 * bench-expected-counts.json; a wrong count fails the run), then scaling with the number
 * of exact and wildcard rules. Single thread, events held in memory as raw JSON lines.
 *
 * usage: bench_patterns CITYLOTS.jlines SHARED_DATA_DIR [PASSES [SET]]
 */
#include <fnmatch.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/pattern.h"
#include "common/sl_alloc.h"

struct line {
	const char *s;
	size_t n;
};

static struct line *lines;
static size_t nlines;
static int passes = 5;
static const char *only; /* run just this rule set (and no scaling) */

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "bench_patterns: cannot open %s\n", path);
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "bench_patterns: cannot read %s\n", path);
		exit(2);
	}
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void
load_lines(const char *path)
{
	size_t len;
	char *buf = slurp(path, &len);
	size_t cap = 1 << 18;
	lines = malloc(cap * sizeof *lines);
	for (char *p = buf; p < buf + len;) {
		char *nl = memchr(p, '\n', (size_t)(buf + len - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(buf + len - p);
		if (n) {
			if (nlines == cap)
				lines = realloc(lines, (cap *= 2) * sizeof *lines);
			lines[nlines++] = (struct line) { p, n };
		}
		p += n + 1;
	}
}

struct counts {
	uint64_t *c;
};

static bool
on_match(void *ctx, uint32_t rule_id, const char *name)
{
	(void)name;
	((struct counts *)ctx)->c[rule_id]++;
	return true;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median events/s over the passes; counts of the first pass in counts[nrules]. */
static double
run(pat_machine_t *m, uint64_t *counts, size_t nrules)
{
	double rates[32];
	struct counts ctx;
	uint64_t *scratch = calloc(nrules, sizeof *scratch);
	for (int p = 0; p < passes; p++) {
		memset(scratch, 0, nrules * sizeof *scratch);
		ctx.c = scratch;
		struct sl_error err;
		double t0 = now();
		for (size_t i = 0; i < nlines; i++) {
			if (pat_machine_match(m, lines[i].s, lines[i].n, on_match, &ctx, &err)
			    != SL_OK) {
				fprintf(stderr, "bench_patterns: line %zu: %s\n", i + 1,
				        sl_error_text(&err));
				exit(1);
			}
		}
		double dt = now() - t0;
		rates[p] = (double)nlines / dt;
		if (p == 0)
			memcpy(counts, scratch, nrules * sizeof *scratch);
		else if (memcmp(counts, scratch, nrules * sizeof *scratch) != 0) {
			fprintf(stderr, "bench_patterns: counts differ between passes\n");
			exit(1);
		}
	}
	free(scratch);
	qsort(rates, (size_t)passes, sizeof *rates, cmp_double);
	return rates[passes / 2];
}

/* Published figures on this synthetic file (shared/data/README.md). */
static const struct {
	const char *set;
	const char *who;
	double rate;
} refs[] = {
	{ "EXACT", "quamina", 1.28e6 },
	{ "PREFIX", "quamina", 1.06e6 },
	{ "WILDCARD", "quamina", 1.03e6 },
	{ "EQUALS_IGNORE_CASE", "quamina", 0.77e6 },
	{ "ANYTHING_BUT", "quamina", 0.35e6 },
	{ "COMBO_EXACT_PREFIX_WILDCARD_EIC_AB", "quamina", 0.27e6 },
	{ "NUMERIC_SYNTH_R", "event-ruler", 20e3 },
	{ "QUAMINA_TESTCITYLOTS", "quamina", 78e3 },
};

static int
run_sets(const char *rules_path, json_t *expected)
{
	json_error_t je;
	json_t *sets = json_load_file(rules_path, 0, &je);
	if (!sets) {
		fprintf(stderr, "bench_patterns: %s: %s\n", rules_path, je.text);
		return 2;
	}
	int bad = 0;
	const char *name;
	json_t *pats;
	json_object_foreach(sets, name, pats)
	{
		if (only && strcmp(only, name) != 0)
			continue;
		size_t n = json_array_size(pats);
		pat_machine_t *m;
		struct sl_error err;
		pat_machine_new(&m, &err);
		bool unsupported = false;
		for (size_t i = 0; i < n; i++) {
			const char *p = json_string_value(json_array_get(pats, i));
			char rn[24];
			snprintf(rn, sizeof rn, "%zu", i);
			if (pat_machine_add_rule(m, rn, p, strlen(p), NULL, &err) != SL_OK) {
				printf("%-36s skipped: not an EventBridge pattern (%s)\n", name,
				       sl_error_text(&err));
				unsupported = true;
				break;
			}
		}
		if (unsupported) {
			pat_machine_free(m);
			continue;
		}
		uint64_t *counts = calloc(n, sizeof *counts);
		double rate = run(m, counts, n);
		json_t *want = json_object_get(expected, name);
		bool ok = json_array_size(want) == n;
		char cbuf[512];
		size_t o = 0;
		for (size_t i = 0; i < n; i++) {
			if (ok
			    && (uint64_t)json_integer_value(json_array_get(want, i)) != counts[i])
				ok = false;
			if (o < sizeof cbuf - 24)
				o += (size_t)snprintf(cbuf + o, sizeof cbuf - o, "%s%llu",
				                      i ? "," : "", (unsigned long long)counts[i]);
		}
		char ratio[64] = "";
		for (size_t r = 0; r < sizeof refs / sizeof *refs; r++)
			if (strcmp(refs[r].set, name) == 0)
				snprintf(ratio, sizeof ratio, "  %.2fx %s", rate / refs[r].rate,
				         refs[r].who);
		printf("%-36s %10.0f events/s  counts [%s] %s%s\n", name, rate, cbuf,
		       ok ? "ok" : "WRONG", ratio);
		if (!ok) {
			char *w = json_dumps(want, JSON_COMPACT);
			fprintf(stderr, "bench_patterns: %s: expected %s\n", name, w ? w : "?");
			free(w);
			bad = 1;
		}
		free(counts);
		pat_machine_free(m);
	}
	json_decref(sets);
	return bad;
}

/* ---- scaling ---- */

struct val {
	char s[32];
	uint64_t freq;
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(((const struct val *)a)->s, ((const struct val *)b)->s);
}

/* MAPBLKLOT of every line, distinct with frequencies (jansson, outside the timed part). */
static struct val *
mapblklots(size_t *nd, char (**per_line)[32])
{
	char(*all)[32] = calloc(nlines, 32);
	struct val *v = calloc(nlines, sizeof *v);
	for (size_t i = 0; i < nlines; i++) {
		json_t *j = json_loadb(lines[i].s, lines[i].n, 0, NULL);
		const char *s = json_string_value(
		        json_object_get(json_object_get(j, "properties"), "MAPBLKLOT"));
		snprintf(all[i], 32, "%s", s ? s : "");
		snprintf(v[i].s, 32, "%s", s ? s : "");
		json_decref(j);
	}
	qsort(v, nlines, sizeof *v, cmp_str);
	size_t d = 0;
	for (size_t i = 0; i < nlines; i++) {
		if (d && strcmp(v[d - 1].s, v[i].s) == 0) {
			v[d - 1].freq++;
			continue;
		}
		v[d] = v[i];
		v[d++].freq = 1;
	}
	*nd = d;
	*per_line = all;
	return v;
}

static int
scaling(void)
{
	size_t nd;
	char(*per_line)[32];
	struct val *v = mapblklots(&nd, &per_line);
	static const size_t sizes[] = { 1, 100, 10000, 100000 };
	int bad = 0;
	printf("\nscaling (rules on properties.MAPBLKLOT; %zu distinct values in the file)\n", nd);
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		size_t n = sizes[k];
		if (n > nd)
			n = nd;
		pat_machine_t *m;
		struct sl_error err;
		pat_machine_new(&m, &err);
		uint64_t want = 0;
		double t0 = now();
		for (size_t i = 0; i < n; i++) {
			/* spread the chosen values over the whole sorted list */
			struct val *x = &v[i * (nd / n)];
			char p[96], rn[24];
			int pl = snprintf(p, sizeof p, "{\"properties\":{\"MAPBLKLOT\":[\"%s\"]}}",
			                  x->s);
			snprintf(rn, sizeof rn, "%zu", i);
			pat_machine_add_rule(m, rn, p, (size_t)pl, NULL, &err);
			want += x->freq;
		}
		double build = now() - t0;
		uint64_t *counts = calloc(n, sizeof *counts);
		double rate = run(m, counts, n);
		uint64_t got = 0;
		for (size_t i = 0; i < n; i++)
			got += counts[i];
		struct pat_stats st;
		pat_machine_stats(m, &st);
		printf("%7zu exact rules     %10.0f events/s  matches %llu %s  build %.2f s  %zu "
		       "B/rule\n",
		       n, rate, (unsigned long long)got, got == want ? "ok" : "WRONG", build,
		       st.bytes / n);
		bad |= got != want;
		free(counts);
		pat_machine_free(m);
	}
	/* 1,000 wildcard rules: a value's first three and last two digits around a star */
	size_t n = 1000;
	pat_machine_t *m;
	struct sl_error err;
	pat_machine_new(&m, &err);
	char(*globs)[32] = calloc(n, 32);
	size_t added = 0;
	for (size_t i = 0; i < nd && added < n; i += nd / n) {
		const char *s = v[i].s;
		size_t l = strlen(s);
		if (l < 6)
			continue;
		snprintf(globs[added], 32, "%.3s*%s", s, s + l - 2);
		char p[96], rn[24];
		int pl = snprintf(p, sizeof p,
		                  "{\"properties\":{\"MAPBLKLOT\":[{\"wildcard\":\"%s\"}]}}",
		                  globs[added]);
		snprintf(rn, sizeof rn, "%zu", added);
		if (pat_machine_add_rule(m, rn, p, (size_t)pl, NULL, &err) != SL_OK) {
			fprintf(stderr, "bench_patterns: %s\n", sl_error_text(&err));
			return 1;
		}
		added++;
	}
	uint64_t want = 0;
	for (size_t i = 0; i < nlines; i++)
		for (size_t g = 0; g < added; g++)
			want += fnmatch(globs[g], per_line[i], 0) == 0;
	uint64_t *counts = calloc(added, sizeof *counts);
	double rate = run(m, counts, added);
	uint64_t got = 0;
	for (size_t i = 0; i < added; i++)
		got += counts[i];
	printf("%7zu wildcard rules  %10.0f events/s  matches %llu %s  %.2fx quamina (24 K)\n",
	       added, rate, (unsigned long long)got, got == want ? "ok" : "WRONG", rate / 24e3);
	bad |= got != want;
	free(counts);
	free(globs);
	pat_machine_free(m);
	free(v);
	free(per_line);
	return bad;
}

int
main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_patterns CITYLOTS.jlines SHARED_DATA_DIR [PASSES]\n");
		return 2;
	}
	if (argc > 3)
		passes = atoi(argv[3]);
	if (passes < 1 || passes > 31)
		passes = 5;
	if (argc > 4)
		only = argv[4];
	sl_alloc_init();
	load_lines(argv[1]);
	char path[4096];
	snprintf(path, sizeof path, "%s/bench-expected-counts.json", argv[2]);
	json_error_t je;
	json_t *exp = json_load_file(path, 0, &je);
	if (!exp) {
		fprintf(stderr, "bench_patterns: %s: %s\n", path, je.text);
		return 2;
	}
	json_t *counts = json_object_get(exp, "counts");
	printf("%zu events, median of %d passes, single thread\n", nlines, passes);
	snprintf(path, sizeof path, "%s/bench-rulesets.json", argv[2]);
	int bad = run_sets(path, counts);
	snprintf(path, sizeof path, "%s/bench-rulesets-quamina-testcitylots.json", argv[2]);
	bad |= run_sets(path, counts);
	if (!only)
		bad |= scaling();
	json_decref(exp);
	if (bad)
		fprintf(stderr, "bench_patterns: some counts were wrong\n");
	return bad;
}
