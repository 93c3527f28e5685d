/*
 * test_step_corpus.c - every case of the AWS-recorded corpus ($SLUICE_SHARED/corpus/asl)
 * run through the engine with its mocked task responses and virtual time. Outputs are
 * compared semantically (numbers by value), errors by name, and histories by event types
 * and order when the flow is sequential (no Parallel or Map).
 *
 * The core set (reliability exact or placeholders_passthrough, not JSONata) must pass
 * completely; the rest is counted and reported. JSONata cases are skipped: the engine runs
 * the JSONPath query language only.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "statemachines/statemachines.h"
#include "stepper/step_local.h"
#include "tests/stepper/step_test_util.h"

static bool
is_placeholder(json_t *v)
{
	const char *s = json_string_value(v);
	if (!s)
		return false;
	size_t n = strlen(s);
	return n >= 2 && s[0] == '<' && s[n - 1] == '>';
}

/* Semantic equality: object key order is irrelevant, numbers compare by value, and in
 * placeholder cases a "<...>" string in the expectation matches anything. */
static bool
same(json_t *want, json_t *got, bool wild)
{
	if (wild && is_placeholder(want))
		return true;
	if (json_is_number(want) && json_is_number(got))
		return json_number_value(want) == json_number_value(got);
	if (json_typeof(want) != json_typeof(got))
		return false;
	if (json_is_object(want)) {
		if (json_object_size(want) != json_object_size(got))
			return false;
		const char *k;
		json_t *v;
		json_object_foreach(want, k, v)
		{
			json_t *g = json_object_get(got, k);
			if (!g || !same(v, g, wild))
				return false;
		}
		return true;
	}
	if (json_is_array(want)) {
		if (json_array_size(want) != json_array_size(got))
			return false;
		for (size_t i = 0; i < json_array_size(want); i++)
			if (!same(json_array_get(want, i), json_array_get(got, i), wild))
				return false;
		return true;
	}
	if (json_is_string(want))
		return strcmp(json_string_value(want), json_string_value(got)) == 0;
	return json_equal(want, got);
}

static bool
masked_text(const char *s)
{
	return s
	        && (strcmp(s, "date") == 0 || strcmp(s, "timestamp") == 0
	            || strcmp(s, "<timestamp>") == 0
	            || (strncmp(s, "<<", 2) == 0 && strstr(s, ">>")));
}

/* Follows an RFC 6901 pointer (the corpus' names need no ~ escapes). */
static json_t *
at_pointer(json_t *doc, const char *pointer)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", pointer);
	json_t *cur = doc;
	char *save = NULL;
	for (char *tok = strtok_r(buf, "/", &save); tok && cur; tok = strtok_r(NULL, "/", &save))
		cur = json_is_array(cur) ? json_array_get(cur, strtoul(tok, NULL, 10))
		                         : json_object_get(cur, tok);
	return cur;
}

/* The recorder masked some literals ("date", "<<timestamp_value>>"): a definition refused
 * only for such values, or an input whose only value is such a mask, cannot be replayed. */
static bool
only_masked_problems(json_t *def, const struct sm_problems *p)
{
	for (size_t i = 0; i < p->count; i++)
		if (!masked_text(json_string_value(at_pointer(def, p->items[i].pointer))))
			return false;
	return p->count > 0;
}

static bool
masked_input(json_t *v)
{
	if (json_is_string(v))
		return strcmp(json_string_value(v), "<timestamp>") == 0;
	const char *k;
	json_t *x;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach(v, k, x) if (masked_input(x)) return true;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, x) if (masked_input(x)) return true;
	}
	return false;
}

/* The recorder left template placeholders for resources created by the test
 * ("<<function_arn>>", "<<activity_arn>>"): put back an ARN of the kind the name says, so
 * the history shows the right event family (LambdaFunction*, Activity*). */
static void
fill_resources(json_t *machine)
{
	const char *name;
	json_t *st;
	json_object_foreach(json_object_get(machine, "States"), name, st)
	{
		const char *r = json_string_value(json_object_get(st, "Resource"));
		if (r && strncmp(r, "<<", 2) == 0) {
			if (strstr(r, "FunctionArn") || strstr(r, "function_arn")
			    || strstr(r, "lambda_arn"))
				json_object_set_new(
				        st, "Resource",
				        json_string("arn:aws:lambda:us-east-1:000000000000:"
				                    "function:recorded"));
			else if (strstr(r, "activity_arn"))
				json_object_set_new(
				        st, "Resource",
				        json_string("arn:aws:states:us-east-1:000000000000:"
				                    "activity:recorded"));
		}
		size_t i;
		json_t *b;
		json_array_foreach(json_object_get(st, "Branches"), i, b) fill_resources(b);
		fill_resources(json_object_get(st, "ItemProcessor"));
		fill_resources(json_object_get(st, "Iterator"));
	}
}

static bool
has_fanout(json_t *machine)
{
	const char *name;
	json_t *st;
	json_object_foreach(json_object_get(machine, "States"), name, st)
	{
		const char *t = json_string_value(json_object_get(st, "Type"));
		if (t && (strcmp(t, "Parallel") == 0 || strcmp(t, "Map") == 0))
			return true;
	}
	return false;
}

static const char *
status_word(enum step_status s)
{
	return step_status_name(s);
}

enum outcome { CASE_FAIL, CASE_PASS, CASE_MASKED, CASE_VARIABLES };

struct tally {
	int core_total, core_pass, rest_total, rest_pass, skipped, masked, variables;
	int core_masked, core_variables;
	char failures[8192];
	size_t flen;
};

static void
note(struct tally *t, bool core, const char *name, const char *fmt, ...)
{
	if (!core && !getenv("STEP_CORPUS_VERBOSE"))
		return;
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (getenv("STEP_CORPUS_VERBOSE"))
		fprintf(stderr, "%s %s: %s\n", core ? "CORE" : "rest", name, msg);
	if (core && t->flen + 200 < sizeof t->failures)
		t->flen += (size_t)snprintf(t->failures + t->flen, sizeof t->failures - t->flen,
		                            "\n  %.80s: %.100s", name, msg);
}

static enum outcome
run_case(store_t *st, json_t *c, int n, bool core, struct tally *t)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	const char *want_status = json_string_value(json_object_get(c, "expected_status"));
	json_t *def = json_object_get(c, "definition");
	bool wild
	        = strcmp(json_string_value(json_object_get(c, "reliability")), "placeholders") == 0;
	struct sm_problems problems = { 0 };
	struct sm_machine *m = NULL;
	fill_resources(def);
	sl_err rc = sm_machine_compile(def, NULL, &m, &problems);
	bool masked = rc != SL_OK && only_masked_problems(def, &problems);
	char first[200] = "";
	if (problems.count > 0)
		snprintf(first, sizeof first, "%s", problems.items[0].message);
	sm_problems_clear(&problems);
	if (strcmp(want_status, "CREATE_FAILED") == 0) {
		sm_machine_free(m);
		if (rc == SL_OK)
			note(t, core, name, "definition accepted, AWS rejects it");
		return rc != SL_OK ? CASE_PASS : CASE_FAIL;
	}
	if (masked || (rc == SL_OK && masked_input(json_object_get(c, "input")))) {
		sm_machine_free(m);
		return CASE_MASKED;
	}
	// statemachines/ refuses workflow variables (2024 Assign) as "not supported yet"
	if (rc == SL_ERR_INVALID_DEFINITION
	    && strstr(first, "Workflow variables are not supported"))
		return CASE_VARIABLES;
	if (rc != SL_OK) {
		note(t, core, name, "definition rejected (%s: %.150s)", sl_err_name(rc), first);
		return CASE_FAIL;
	}
	struct step_mock *mock = NULL;
	json_t *mocks = json_object_get(c, "mocked_task_responses");
	struct sl_error err;
	sl_error_clear(&err);
	if (mocks && step_mock_parse(mocks, NULL, NULL, &mock, &err) != SL_OK) {
		note(t, core, name, "mock: %s", sl_error_text(&err));
		sm_machine_free(m);
		return CASE_FAIL;
	}
	char mname[32];
	snprintf(mname, sizeof mname, "case%d", n);
	struct step_options eo = { .jitter_seed = 42 };
	struct step_local_options lo
	        = { .mock = mock, .virtual_time = true, .engine = &eo, .want_history = true };
	struct step_local_result res;
	json_t *input = json_object_get(c, "input");
	rc = step_local_run(st, m, mname, input, &lo, &res, &err);
	bool ok = rc == SL_OK;
	if (!ok)
		note(t, core, name, "run: %s", sl_error_text(&err));
	if (ok && strcmp(status_word(res.status), want_status) != 0) {
		char *o = res.output ? json_dumps(res.output, JSON_COMPACT | JSON_ENCODE_ANY)
		                     : NULL;
		note(t, core, name, "status %s (%s: %.200s), want %s", status_word(res.status),
		     res.error ? res.error : "-", res.cause ? res.cause : (o ? o : "-"),
		     want_status);
		free(o);
		ok = false;
	}
	if (ok && res.status == STEP_SUCCEEDED
	    && !same(json_object_get(c, "expected_output"), res.output, wild)) {
		char *a = json_dumps(json_object_get(c, "expected_output"),
		                     JSON_COMPACT | JSON_ENCODE_ANY);
		char *b = json_dumps(res.output, JSON_COMPACT | JSON_ENCODE_ANY);
		note(t, core, name, "output %.250s, want %.250s", b ? b : "?", a ? a : "?");
		free(a);
		free(b);
		ok = false;
	}
	if (ok && res.status != STEP_SUCCEEDED) {
		const char *we = json_string_value(
		        json_object_get(json_object_get(c, "expected_error"), "error"));
		if ((we == NULL) != (res.error == NULL) || (we && strcmp(we, res.error) != 0)) {
			note(t, core, name, "error %s (%.200s), want %s",
			     res.error ? res.error : "(none)", res.cause ? res.cause : "",
			     we ? we : "(none)");
			ok = false;
		}
	}
	json_t *events = json_object_get(c, "expected_events");
	if (ok && json_array_size(events) > 0 && !has_fanout(def)) {
		size_t i;
		json_t *ev;
		json_array_foreach(events, i, ev)
		{
			const char *want = json_string_value(json_object_get(ev, "type"));
			const char *got = json_string_value(
			        json_object_get(json_array_get(res.history, i), "type"));
			if (!got || strcmp(want, got) != 0) {
				note(t, core, name, "event %zu is %s, want %s", i + 1,
				     got ? got : "(none)", want);
				ok = false;
				break;
			}
		}
		if (ok && json_array_size(res.history) != json_array_size(events)) {
			note(t, core, name, "%zu events, want %zu", json_array_size(res.history),
			     json_array_size(events));
			ok = false;
		}
	}
	if (rc == SL_OK)
		step_local_result_clear(&res);
	step_mock_free(mock);
	sm_machine_free(m);
	return ok ? CASE_PASS : CASE_FAIL;
}

Test(step_corpus, asl_cases, .timeout = 600)
{
	char *dir = step_test_shared("corpus/asl");
	char *idx_path = dir ? sl_asprintf("%s/index.json", dir) : NULL;
	if (!idx_path || access(idx_path, R_OK) != 0) {
		sl_free(idx_path);
		sl_free(dir);
		cr_skip_test("corpus index not found (set SLUICE_SHARED to the shared directory)");
	}
	json_error_t je;
	json_t *index = json_load_file(idx_path, 0, &je);
	cr_assert(index, "index.json: %s", je.text);
	char tmp[] = "/tmp/step-corpus-XXXXXX";
	cr_assert(mkdtemp(tmp));
	store_t *st = NULL;
	struct sl_error err;
	cr_assert_eq(store_open(tmp, NULL, &st, &err), SL_OK, "%s", sl_error_text(&err));
	struct tally *t = SL_NEW(struct tally);
	cr_assert(t);
	const char *only = getenv("STEP_CORPUS_ONLY");
	size_t i;
	json_t *e;
	json_array_foreach(index, i, e)
	{
		const char *file = json_string_value(json_object_get(e, "file"));
		const char *rel = json_string_value(json_object_get(e, "reliability"));
		if (only && !strstr(file, only))
			continue;
		if (json_is_true(json_object_get(e, "jsonata"))) {
			t->skipped++;
			continue;
		}
		bool core
		        = strcmp(rel, "exact") == 0 || strcmp(rel, "placeholders_passthrough") == 0;
		char *path = sl_asprintf("%s/%s", dir, file);
		json_t *c = json_load_file(path, 0, &je);
		sl_free(path);
		cr_assert(c, "%s: %s", file, je.text);
		enum outcome oc = run_case(st, c, (int)i, core, t);
		bool ok = oc == CASE_PASS;
		json_decref(c);
		if (oc == CASE_MASKED || oc == CASE_VARIABLES) {
			if (oc == CASE_MASKED)
				t->masked++, t->core_masked += core;
			else
				t->variables++, t->core_variables += core;
			continue;
		}
		if (core) {
			t->core_total++;
			t->core_pass += ok;
		} else {
			t->rest_total++;
			t->rest_pass += ok;
		}
	}
	sl_clock_fake_disable();
	fprintf(stderr,
	        "step_corpus: core %d/%d passed, rest %d/%d passed; skipped: %d JSONata (the "
	        "engine runs JSONPath only), %d masked by the recorder (definition or input "
	        "literal replaced, not replayable), %d using workflow variables (refused by "
	        "statemachines/ as not supported yet); of the core set %d masked, %d variables\n",
	        t->core_pass, t->core_total, t->rest_pass, t->rest_total, t->skipped, t->masked,
	        t->variables, t->core_masked, t->core_variables);
	cr_log_info("core %d/%d, rest %d/%d, skipped %d", t->core_pass, t->core_total, t->rest_pass,
	            t->rest_total, t->skipped);
	store_free(st);
	step_test_rmtree(tmp);
	json_decref(index);
	sl_free(dir);
	sl_free(idx_path);
	cr_expect_eq(t->core_pass, t->core_total, "core cases failing:%s", t->failures);
	sl_free(t);
}
