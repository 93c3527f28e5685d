/*
 * test_pattern_corpus.c - every case of $SLUICE_SHARED/corpus/patterns/conformance.json
 * (AWS-validated TestEventPattern outcomes and event-ruler's test data): alone through
 * pat_test, and all valid patterns together in one machine.
 */
#include <criterion/criterion.h>
#include <jansson.h>
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
