/*
 * test_pattern_corpus.c - every case of $SLUICE_SHARED/corpus/patterns/conformance.json
 * (AWS-validated TestEventPattern outcomes and event-ruler's test data): alone through
 * pat_test, and all valid patterns together in one machine.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/pattern.h"
#include "common/sl_alloc.h"
#include "common/sl_err.h"

static json_t *
load_corpus(void)
{
	const char *shared = getenv("SLUICE_SHARED");
	char path[4096];
	snprintf(path, sizeof path, "%s/corpus/patterns/conformance.json", shared ? shared : "");
	FILE *f = shared ? fopen(path, "rb") : NULL;
	if (!f)
		cr_skip_test("conformance corpus not found at %s (set SLUICE_SHARED)", path);
	fclose(f);
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	cr_assert_not_null(j, "%s: %s", path, je.text);
	cr_assert(json_is_array(j) && json_array_size(j) > 0, "%s: expected a non-empty array",
	          path);
	return j;
}

static const char *
str(json_t *c, const char *k)
{
	json_t *v = json_object_get(c, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void
setup(void)
{
	sl_alloc_init();
}

TestSuite(pattern_corpus, .init = setup);

Test(pattern_corpus, every_case_alone)
{
	json_t *cases = load_corpus();
	size_t pass = 0, fail = 0, n = json_array_size(cases), msgs = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *c = json_array_get(cases, i);
		const char *id = str(c, "id"), *expected = str(c, "expected");
		const char *pattern = str(c, "pattern"), *event = str(c, "event");
		const char *aws_msg = str(c, "aws_error_message");
		cr_assert(id && expected && pattern && event,
		          "case %zu lacks id/expected/pattern/event", i);
		struct sl_error err;
		sl_error_clear(&err);
		bool match = false;
		sl_err rc = pat_test(pattern, event, &match, &err);
		bool ok;
		if (strcmp(expected, "EXCEPTION") == 0) {
			ok = rc == SL_ERR_INVALID_PATTERN;
			if (ok && aws_msg) {
				ok = strcmp(sl_error_text(&err), aws_msg) == 0;
				msgs += ok;
			}
		} else {
			ok = rc == SL_OK && match == (strcmp(expected, "MATCH") == 0);
		}
		if (ok) {
			pass++;
		} else {
			fail++;
			fprintf(stderr, "FAIL %s: expected %s%s%s, got %s%s%s\n", id, expected,
			        aws_msg ? " " : "", aws_msg ? aws_msg : "",
			        rc ? sl_err_name(rc) : (match ? "MATCH" : "NO_MATCH"),
			        rc ? " " : "", rc ? sl_error_text(&err) : "");
		}
	}
	fprintf(stderr, "conformance: %zu/%zu cases pass (%zu AWS messages equal)\n", pass, n,
	        msgs);
	json_decref(cases);
	cr_assert_eq(fail, 0, "%zu of %zu conformance cases failed (listed on stderr)", fail, n);
}

struct seen {
	uint32_t want;
	bool hit;
};

static bool
on_match(void *ctx, uint32_t rule_id, const char *name)
{
	struct seen *s = ctx;
	(void)name;
	if (rule_id == s->want)
		s->hit = true;
	return true;
}

/* The same cases with every valid pattern in one machine: no rule may disturb another. */
Test(pattern_corpus, all_rules_in_one_machine)
{
	json_t *cases = load_corpus();
	size_t n = json_array_size(cases), checked = 0, fail = 0;
	pat_machine_t *m;
	struct sl_error err;
	cr_assert_eq(pat_machine_new(&m, &err), SL_OK);
	uint32_t *ids = calloc(n, sizeof *ids);
	cr_assert_not_null(ids);
	for (size_t i = 0; i < n; i++) {
		json_t *c = json_array_get(cases, i);
		const char *pattern = str(c, "pattern");
		ids[i] = UINT32_MAX;
		if (strcmp(str(c, "expected"), "EXCEPTION") == 0)
			continue;
		char name[32];
		snprintf(name, sizeof name, "case-%zu", i);
		sl_err rc = pat_machine_add_rule(m, name, pattern, strlen(pattern), &ids[i], &err);
		cr_assert_eq(rc, SL_OK, "%s: %s", str(c, "id"), sl_error_text(&err));
	}
	for (size_t i = 0; i < n; i++) {
		json_t *c = json_array_get(cases, i);
		if (ids[i] == UINT32_MAX)
			continue;
		const char *event = str(c, "event");
		struct seen s = { ids[i], false };
		sl_err rc = pat_machine_match(m, event, strlen(event), on_match, &s, &err);
		cr_assert_eq(rc, SL_OK, "%s: %s", str(c, "id"), sl_error_text(&err));
		bool want = strcmp(str(c, "expected"), "MATCH") == 0;
		checked++;
		if (s.hit != want) {
			fail++;
			fprintf(stderr, "FAIL (shared machine) %s: expected %s\n", str(c, "id"),
			        want ? "MATCH" : "NO_MATCH");
		}
	}
	struct pat_stats st;
	pat_machine_stats(m, &st);
	fprintf(stderr,
	        "shared machine: %zu rules, %zu subrules, %zu fields, %zu bytes; %zu cases\n",
	        st.rules, st.subrules, st.fields, st.bytes, checked);
	cr_assert_gt(st.bytes, 0);
	free(ids);
	pat_machine_free(m);
	json_decref(cases);
	cr_assert_eq(fail, 0, "%zu cases failed in the shared machine", fail);
}

/* ---- event-ruler's large-array performance scenarios (perf-scenarios.json) ----
 * Upstream generates the events in Java; the shapes below are rebuilt from each
 * generator's name and notes. The test checks the expected match for the largest size. */

struct sb {
	char *s;
	size_t n, cap;
};

static void
put(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int w = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		cr_assert_geq(w, 0);
		if (b->n + (size_t)w < b->cap) {
			b->n += (size_t)w;
			return;
		}
		b->cap = (b->cap + (size_t)w) * 2;
		b->s = realloc(b->s, b->cap);
		cr_assert_not_null(b->s);
	}
}

static void
prims(struct sb *b, const char *prefix, long n)
{
	put(b, "[");
	for (long i = 0; i < n; i++)
		put(b, "%s\"%s%ld\"", i ? "," : "", prefix, i);
	put(b, "]");
}

/* false when the generator name is unknown */
static bool
generate(const char *gen, long n, struct sb *b)
{
	b->n = 0;
	if (!strcmp(gen, "primArrayPlusScalar")) {
		put(b, "{\"d\":{\"tags\":");
		prims(b, "t", n);
		put(b, ",\"type\":\"GROUP\"}}");
	} else if (!strcmp(gen, "primArrayOnly")) {
		put(b, "{\"d\":{\"tags\":");
		prims(b, "t", n);
		put(b, "}}");
	} else if (!strcmp(gen, "objArrayBothFields")) {
		put(b, "{\"d\":[");
		for (long i = 0; i < n; i++)
			put(b, "%s{\"a\":%ld,\"b\":%ld}", i ? "," : "", i, i);
		put(b, "]}");
	} else if (!strcmp(gen, "objArrayLastValid")) {
		put(b, "{\"d\":[");
		for (long i = 0; i + 1 < n; i++)
			put(b, "{\"%s\":%ld},", i % 2 ? "a" : "b", i);
		put(b, "{\"a\":1,\"b\":2}]}");
	} else if (!strcmp(gen, "objArrayAllPartial")) {
		put(b, "{\"d\":[");
		for (long i = 0; i < n; i++)
			put(b, "%s{\"%s\":%ld}", i ? "," : "", i % 2 ? "a" : "b", i);
		put(b, "]}");
	} else if (!strcmp(gen, "customerLike")) {
		put(b, "{\"detail\":{\"data\":{\"name\":");
		prims(b, "n", n);
		put(b, ",\"domains\":[");
		for (long i = 0; i < n; i++)
			put(b, i % 2 ? "%s{\"email\":\"e%ld\"}" : "%s{\"host\":\"h%ld\"}",
			    i ? "," : "", i);
		put(b,
		    "],\"type\":\"GROUP\"},\"context\":{\"companyId\":\"c\",\"userId\":\"u\","
		    "\"email\":\"x@y\"}}}");
	} else if (!strcmp(gen, "primInsideObjArray")) {
		put(b, "{\"detail\":{\"data\":[{\"type\":\"A\"},{\"name\":");
		prims(b, "n", n);
		put(b, ",\"type\":\"B\"}]}}");
	} else if (!strcmp(gen, "noObjArrayLargePrim")) {
		put(b, "{\"detail\":{\"data\":{\"name\":");
		prims(b, "n", n);
		put(b, ",\"type\":\"T\"}}}");
	} else if (!strcmp(gen, "nested2Level")) {
		put(b, "{\"a\":[");
		for (long i = 0; i < n; i++) {
			put(b, "%s{\"b\":[", i ? "," : "");
			for (int j = 0; j < 10; j++)
				put(b, "%s{\"%s\":%d}", j ? "," : "", (i + j) % 2 ? "x" : "y", j);
			put(b, "]}");
		}
		put(b, ",{\"b\":[{\"x\":1,\"y\":2}]}]}");
	} else if (!strcmp(gen, "deepNestedPrim")) {
		put(b, "{\"a\":[");
		for (int e = 0; e < 3; e++) {
			put(b, "%s{\"b\":{\"tags\":", e ? "," : "");
			prims(b, "t", n);
			put(b, e == 2 ? ",\"type\":\"T\"}}" : "}}");
		}
		put(b, "]}");
	} else if (!strcmp(gen, "wideRulePrimArray")) {
		put(b, "{\"d\":{\"a\":");
		prims(b, "a", n);
		put(b, ",\"b\":");
		prims(b, "b", n);
		put(b, ",\"c\":\"C\"}}");
	} else if (!strcmp(gen, "twoPrimArrays")) {
		put(b, "{\"tags\":");
		prims(b, "t", n);
		put(b, ",\"cats\":");
		prims(b, "c", n);
		put(b, ",\"v\":\"1\"}");
	} else if (!strcmp(gen, "controlScalar")) {
		put(b, "{\"a\":1,\"b\":2}");
	} else {
		return false;
	}
	return true;
}

Test(pattern_corpus, event_ruler_perf_scenarios)
{
	const char *shared = getenv("SLUICE_SHARED");
	char path[4096];
	snprintf(path, sizeof path, "%s/corpus/patterns/event-ruler/perf-scenarios.json",
	         shared ? shared : "");
	FILE *f = shared ? fopen(path, "rb") : NULL;
	if (!f)
		cr_skip_test("%s not found (set SLUICE_SHARED)", path);
	fclose(f);
	json_error_t je;
	json_t *sc = json_load_file(path, 0, &je);
	cr_assert_not_null(sc, "%s: %s", path, je.text);
	struct sb b = { 0 };
	size_t i, checked = 0;
	json_t *c;
	json_array_foreach(sc, i, c)
	{
		const char *name = str(c, "name"), *gen = str(c, "generator");
		json_t *sizes = json_object_get(c, "sizes");
		long n = (long)json_integer_value(
		        json_array_get(sizes, json_array_size(sizes) - 1));
		bool want = json_integer_value(json_object_get(c, "expectedMatches")) > 0;
		char *rule = json_dumps(json_object_get(c, "rule"), JSON_COMPACT);
		cr_assert(name && gen && rule, "scenario %zu is incomplete", i);
		cr_assert(generate(gen, n, &b), "%s: no generator for %s", name, gen);
		struct sl_error err;
		bool match;
		char *ev = malloc(b.n + 1);
		cr_assert_not_null(ev);
		memcpy(ev, b.s, b.n);
		ev[b.n] = '\0';
		sl_err rc = pat_test(rule, ev, &match, &err);
		cr_assert_eq(rc, SL_OK, "%s: %s", name, sl_error_text(&err));
		cr_assert_eq(match, want, "%s (%s, %ld elements): expected %s", name, gen, n,
		             want ? "a match" : "no match");
		free(ev);
		free(rule);
		checked++;
	}
	free(b.s);
	json_decref(sc);
	fprintf(stderr, "event-ruler perf scenarios: %zu pass at their largest size\n", checked);
}

/* event-ruler's $or parsing files: valid $or rules compile into more than one subrule,
 * "$or" used as a plain field name compiles into one, malformed $or rules are refused. */
static size_t
check_rules(const char *file, int want) /* want: 2 = $or, 1 = plain, 0 = invalid */
{
	const char *shared = getenv("SLUICE_SHARED");
	char path[4096];
	snprintf(path, sizeof path, "%s/corpus/patterns/event-ruler/%s", shared ? shared : "",
	         file);
	FILE *f = shared ? fopen(path, "rb") : NULL;
	if (!f)
		cr_skip_test("%s not found (set SLUICE_SHARED)", path);
	fclose(f);
	json_error_t je;
	json_t *rules = json_load_file(path, 0, &je);
	cr_assert_not_null(rules, "%s: %s", path, je.text);
	size_t i;
	json_t *r;
	json_array_foreach(rules, i, r)
	{
		char *text = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
		pat_machine_t *m;
		struct sl_error err;
		cr_assert_eq(pat_machine_new(&m, &err), SL_OK);
		sl_err rc = pat_machine_add_rule(m, "r", text, strlen(text), NULL, &err);
		struct pat_stats st;
		pat_machine_stats(m, &st);
		if (want == 0) {
			cr_assert_eq(rc, SL_ERR_INVALID_PATTERN, "%s #%zu accepted: %s", file, i,
			             text);
		} else {
			cr_assert_eq(rc, SL_OK, "%s #%zu: %s: %s", file, i, text,
			             sl_error_text(&err));
			if (want == 2)
				cr_assert_gt(st.subrules, 1, "%s #%zu: no $or expansion", file, i);
			else
				cr_assert_eq(st.subrules, 1, "%s #%zu: unexpected expansion", file,
				             i);
		}
		pat_machine_free(m);
		free(text);
	}
	size_t n = json_array_size(rules);
	json_decref(rules);
	return n;
}

Test(pattern_corpus, event_ruler_or_rules)
{
	size_t n = check_rules("orRelationshipRules.json", 2);
	n += check_rules("normalRulesWithOrWording.json", 1);
	n += check_rules("wrongOrRelationshipRules.json", 0);
	fprintf(stderr, "event-ruler $or rule files: %zu rules as expected\n", n);
	/* and one of them against events */
	const char *p
	        = "{\"source\":[\"aws.cloudwatch\"],\"$or\":[{\"metricName\":[\"CPUUtilization\"]},"
	          "{\"namespace\":[\"AWS/EC2\"]}]}";
	bool match;
	struct sl_error err;
	cr_assert_eq(pat_test(p, "{\"source\":\"aws.cloudwatch\",\"namespace\":\"AWS/EC2\"}",
	                      &match, &err),
	             SL_OK);
	cr_assert(match);
	cr_assert_eq(pat_test(p, "{\"source\":\"aws.cloudwatch\",\"namespace\":\"AWS/ES\"}", &match,
	                      &err),
	             SL_OK);
	cr_assert(!match);
}
