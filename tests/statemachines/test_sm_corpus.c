/*
 * test_sm_corpus.c - the AWS-recorded ASL corpus ($SLUICE_SHARED/corpus/asl): every
 * CREATE_FAILED definition is rejected with AWS's diagnostic, every other definition is
 * accepted. JSONata cases we refuse only because JSONata is not supported yet are counted
 * as skipped, not failed.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/statemachines.h"

static char *
corpus_dir(void)
{
	const char *shared = getenv("SLUICE_SHARED");
	if (!shared)
		return NULL;
	return sl_asprintf("%s/corpus/asl", shared);
}

/* JSONata and workflow variables (the 2024 additions) are refused as "not supported yet". */
static bool
only_unsupported_problems(const struct sm_problems *p)
{
	bool any = false;
	for (size_t i = 0; i < p->count; i++) {
		if (!strstr(p->items[i].message, "not supported yet"))
			return false;
		any = true;
	}
	return any;
}

/* Follows an RFC 6901 pointer (no escapes needed for the corpus' names beyond ~0 ~1). */
static json_t *
resolve(json_t *doc, const char *pointer, char *field_out, size_t field_cap)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", pointer);
	json_t *cur = doc;
	char *save = NULL;
	for (char *tok = strtok_r(buf, "/", &save); tok && cur; tok = strtok_r(NULL, "/", &save)) {
		char key[256];
		size_t n = 0;
		for (char *c = tok; *c && n + 1 < sizeof key; c++) {
			if (c[0] == '~' && c[1] == '1')
				key[n++] = '/', c++;
			else if (c[0] == '~' && c[1] == '0')
				key[n++] = '~', c++;
			else
				key[n++] = *c;
		}
		key[n] = '\0';
		snprintf(field_out, field_cap, "%s", key);
		cur = json_is_array(cur) ? json_array_get(cur, strtoul(key, NULL, 10))
		                         : json_object_get(cur, key);
	}
	return cur;
}

/* The recorder masked some literals ("date", "<<timestamp_value>>"): a definition rejected
 * only for such values says nothing about the validator. */
static bool
only_masked_problems(json_t *def, const struct sm_problems *p)
{
	for (size_t i = 0; i < p->count; i++) {
		char field[256] = "";
		json_t *v = resolve(def, p->items[i].pointer, field, sizeof field);
		const char *s = json_string_value(v);
		if (!s
		    || !(strcmp(s, "date") == 0 || strcmp(s, "timestamp") == 0
		         || (strncmp(s, "<<", 2) == 0 && strstr(s, ">>"))))
			return false;
	}
	return p->count > 0;
}

Test(sm_corpus, create_failed_rejected_others_accepted, .timeout = 120)
{
	sl_alloc_init();
	char *dir = corpus_dir();
	char *index_path = dir ? sl_asprintf("%s/index.json", dir) : NULL;
	json_error_t jerr;
	json_t *index = index_path ? json_load_file(index_path, 0, &jerr) : NULL;
	if (!index) {
		sl_free(index_path);
		sl_free(dir);
		cr_skip_test("ASL corpus not found (SLUICE_SHARED/corpus/asl/index.json)");
	}
	size_t total = 0, accepted = 0, rejected = 0, skipped_jsonata = 0, skipped_masked = 0,
	       skipped_variables = 0, failures = 0;
	size_t i;
	json_t *c;
	json_array_foreach(index, i, c)
	{
		const char *file = json_string_value(json_object_get(c, "file"));
		const char *status = json_string_value(json_object_get(c, "status"));
		bool jsonata = json_is_true(json_object_get(c, "jsonata"));
		char *path = sl_asprintf("%s/%s", dir, file);
		json_t *cs = json_load_file(path, 0, &jerr);
		cr_assert_not_null(cs, "cannot read %s: %s", path, jerr.text);
		json_t *def = json_object_get(cs, "definition");
		/* through the text path, as a request body would come */
		char *text = json_dumps(def, JSON_COMPACT);
		cr_assert_not_null(text);
		struct sm_problems problems = { 0 };
		struct sm_machine *m = NULL;
		sl_err rc = sm_definition_compile_text(text, strlen(text), NULL, SM_FORMAT_JSON, &m,
		                                       &problems);
		total++;
		bool expect_fail = !strcmp(status, "CREATE_FAILED");
		if (expect_fail) {
			const char *want = json_string_value(
			        json_object_get(json_object_get(cs, "expected_error"), "message"));
			if (rc != SL_ERR_INVALID_DEFINITION) {
				failures++;
				fprintf(stderr, "FAIL %s: accepted, AWS rejects: %s\n", file, want);
			} else {
				rejected++;
				/* our first diagnostic, in AWS's words, must be in AWS's message */
				char *ours = sl_asprintf("%s at %s", problems.items[0].message,
				                         problems.items[0].pointer);
				if (!want || !strstr(want, ours)) {
					failures++;
					fprintf(stderr,
					        "FAIL %s: message\n  ours: %s\n  AWS:  %s\n", file,
					        ours, want ? want : "(none)");
				}
				sl_free(ours);
			}
		} else if (rc == SL_OK) {
			accepted++;
		} else if (only_unsupported_problems(&problems)) {
			if (jsonata)
				skipped_jsonata++;
			else
				skipped_variables++;
		} else if (only_masked_problems(def, &problems)) {
			skipped_masked++;
		} else {
			failures++;
			fprintf(stderr, "FAIL %s: rejected (%s), AWS accepts:\n", file,
			        sl_err_name(rc));
			for (size_t k = 0; k < problems.count; k++)
				fprintf(stderr, "  %s: %s\n", problems.items[k].location,
				        problems.items[k].message);
		}
		sm_machine_free(m);
		sm_problems_clear(&problems);
		free(text);
		json_decref(cs);
		sl_free(path);
	}
	fprintf(stderr,
	        "ASL corpus: %zu cases: %zu accepted, %zu CREATE_FAILED rejected, %zu skipped "
	        "(JSONata cases: not supported yet), %zu skipped (workflow variables: not "
	        "supported "
	        "yet), %zu skipped (literal masked "
	        "by the recorder), %zu failures\n",
	        total, accepted, rejected, skipped_jsonata, skipped_variables, skipped_masked,
	        failures);
	json_decref(index);
	sl_free(index_path);
	sl_free(dir);
	cr_assert_eq(failures, 0, "%zu corpus cases disagree with AWS", failures);
	cr_assert_gt(accepted, 0);
}
