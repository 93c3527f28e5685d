/*
 * step_test_util.h - helpers the stepper tests share: temporary stores, the shared
 * directory, running one definition text to its end.
 */
#ifndef SLUICE_TESTS_STEPPER_STEP_TEST_UTIL_H
#define SLUICE_TESTS_STEPPER_STEP_TEST_UTIL_H

#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "statemachines/statemachines.h"
#include "stepper/step_local.h"
#include "stepper/step_mock.h"
#include "stepper/stepper.h"
#include "store/store.h"

static inline int
step_test_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void
step_test_rmtree(const char *dir)
{
	nftw(dir, step_test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* $SLUICE_SHARED/rel, or NULL when the variable is not set. New string. */
static inline char *
step_test_shared(const char *rel)
{
	const char *shared = getenv("SLUICE_SHARED");
	return shared ? sl_asprintf("%s/%s", shared, rel) : NULL;
}

/* Compiles a JSON definition or fails the test. */
static inline struct sm_machine *
step_test_compile(const char *text)
{
	struct sm_problems pr = { 0 };
	struct sm_machine *m = NULL;
	sl_err rc = sm_definition_compile_text(text, strlen(text), NULL, SM_FORMAT_JSON, &m, &pr);
	cr_assert_eq(rc, SL_OK, "definition refused: %s",
	             pr.count ? pr.items[0].message : sl_err_name(rc));
	sm_problems_clear(&pr);
	return m;
}

static inline json_t *
step_test_json(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
	cr_assert(v, "bad test JSON: %s (%s)", je.text, text);
	return v;
}

/* Runs a definition with virtual time and an optional short-form mock; res must be
 * cleared by the caller. opt may be NULL. */
static inline void
step_test_run(const char *def, const char *input, const char *mock, const struct step_options *opt,
              struct step_local_result *res)
{
	char dir[] = "/tmp/step-test-XXXXXX";
	cr_assert(mkdtemp(dir));
	store_t *st = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(store_open(dir, NULL, &st, &err), SL_OK, "%s", sl_error_text(&err));
	struct sm_machine *m = step_test_compile(def);
	json_t *in = input ? step_test_json(input) : NULL;
	json_t *md = mock ? step_test_json(mock) : NULL;
	struct step_mock *mk = NULL;
	if (md)
		cr_assert_eq(step_mock_parse(md, NULL, NULL, &mk, &err), SL_OK, "%s",
		             sl_error_text(&err));
	struct step_options eo = { .jitter_seed = 7 };
	struct step_local_options lo = { .mock = mk,
		                         .virtual_time = true,
		                         .engine = opt ? opt : &eo,
		                         .want_history = true };
	sl_err rc = step_local_run(st, m, "test", in, &lo, res, &err);
	cr_assert_eq(rc, SL_OK, "run: %s", sl_error_text(&err));
	step_mock_free(mk);
	json_decref(md);
	json_decref(in);
	sm_machine_free(m);
	store_free(st);
	step_test_rmtree(dir);
}

/* Asserts the output equals the JSON text (jansson equality). */
static inline void
step_test_expect_output(const struct step_local_result *r, const char *want)
{
	json_t *w = step_test_json(want);
	char *got = r->output ? json_dumps(r->output, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	cr_expect_eq(r->status, STEP_SUCCEEDED, "status %s (%s: %s)", step_status_name(r->status),
	             r->error ? r->error : "-", r->cause ? r->cause : "-");
	cr_expect(r->output && json_equal(w, r->output), "output %s, want %s", got ? got : "(none)",
	          want);
	free(got);
	json_decref(w);
}

static inline void
step_test_expect_error(const struct step_local_result *r, const char *error)
{
	cr_expect_eq(r->status, STEP_FAILED, "status %s", step_status_name(r->status));
	cr_expect(r->error && strcmp(r->error, error) == 0, "error %s (%s), want %s",
	          r->error ? r->error : "(none)", r->cause ? r->cause : "", error);
}

/* Number of history events of type. */
static inline int
step_test_count_events(const struct step_local_result *r, const char *type)
{
	int n = 0;
	size_t i;
	json_t *ev;
	json_array_foreach(r->history, i, ev)
	{
		if (strcmp(json_string_value(json_object_get(ev, "type")), type) == 0)
			n++;
	}
	return n;
}

#endif
