/*
 * test_sm_path.c - paths, ResultPath, payload templates, allocation-failure walks, corpus
 * replay and hostile text for statemachines/sm_path.h; the intrinsic functions are tested in
 * test_sm_intrinsic.c (same binary). Cases named "corpus: X" reproduce the AWS-recorded
 * case X from shared/corpus/asl; the sm_corpus tests also replay those files directly when
 * SLUICE_SHARED is set.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/sm_path.h"
#include "test_sm_path_util.h"

void
setup(void)
{
	sl_alloc_init();
}

void
teardown(void)
{
	cr_assert_eq(SM_LEAK_CHECK(), 0, "LeakSanitizer found leaks (report on stderr)");
}

TestSuite(sm_path, .init = setup, .fini = teardown);
TestSuite(sm_result_path, .init = setup, .fini = teardown);
TestSuite(sm_template, .init = setup, .fini = teardown);
TestSuite(sm_oom, .init = setup, .fini = teardown);
TestSuite(sm_corpus, .init = setup, .fini = teardown);

json_t *
J(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
	cr_assert_not_null(v, "bad test JSON %s: %s", text, e.text);
	return v;
}

char *
dump(const json_t *v)
{
	return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("(null)");
}

void
assert_json_eq(json_t *got, const char *want, const char *what)
{
	json_t *w = J(want);
	char *g = dump(got);
	cr_assert(json_equal(got, w), "%s: got %s, want %s", what, g, want);
	free(g);
	json_decref(w);
}

/* A context object shaped like the one the stepper builds. */
const char *const ctx_text
        = "{\"Execution\":{\"Id\":\"arn:aws:states:us-east-1:000000000000:execution:sm-a-b:ex1\","
          "\"Input\":{\"input-value\":0,\"csv\":\"a,b\"},\"Name\":\"ex1\"},"
          "\"StateMachine\":{\"Id\":\"arn:aws:states:us-east-1:000000000000:stateMachine:sm-a-b\","
          "\"Name\":\"sm-a-b\"},\"State\":{\"Name\":\"S\",\"RetryCount\":2},"
          "\"Map\":{\"Item\":{\"Index\":3,\"Value\":{\"v\":1}}}}";

static void
expect_get(const char *path, const char *input, const char *want)
{
	struct sm_path *p;
	struct sl_error err;
	json_t *in = J(input), *ctx = J(ctx_text), *out = NULL;
	cr_assert_eq(sm_path_compile(path, SM_PATH_JSONPATH, &p, &err), SL_OK, "%s: %s", path,
	             err.message);
	cr_assert_eq(sm_path_get(p, in, ctx, &out), SL_OK, "%s over %s", path, input);
	assert_json_eq(out, want, path);
	json_decref(out);
	json_decref(in);
	json_decref(ctx);
	sm_path_free(p);
}

static void
expect_missing(const char *path, const char *input)
{
	struct sm_path *p;
	struct sl_error err;
	json_t *in = J(input), *out = NULL;
	cr_assert_eq(sm_path_compile(path, SM_PATH_JSONPATH, &p, &err), SL_OK, "%s: %s", path,
	             err.message);
	cr_assert_eq(sm_path_get(p, in, NULL, &out), SL_ERR_NOT_FOUND, "%s over %s", path, input);
	cr_assert_null(out);
	json_decref(in);
	sm_path_free(p);
}

static void
expect_bad_path(const char *path, enum sm_path_kind kind, const char *needle)
{
	struct sm_path *p = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(sm_path_compile(path, kind, &p, &err), SL_ERR_INVALID_DEFINITION,
	             "'%s' must be refused", path);
	cr_assert_null(p);
	cr_assert(strstr(err.message, needle), "'%s': message '%s' lacks '%s'", path, err.message,
	          needle);
}

/* ---- paths ------------------------------------------------------------------------------ */

Test(sm_path, root_and_definite)
{
	expect_get("$", "{\"a\":1}", "{\"a\":1}");
	expect_get("$.a", "{\"a\":1}", "1");
	expect_get("$.a.b.c", "{\"a\":{\"b\":{\"c\":[true]}}}", "[true]");
	expect_get("$.a[1]", "{\"a\":[10,20,30]}", "20");
	expect_get("$.a[-1]", "{\"a\":[10,20,30]}", "30");
	expect_get("$[0][1]", "[[1,2],[3]]", "2");
	expect_get("$.a", "{\"a\":null}", "null");
	/* corpus: base.TestSnfBase.test_json_path_array_access_.items_0 / _10 */
	expect_get("$.items[0]", "{\"items\":[{\"item_key\":0},{\"item_key\":1}]}",
	           "{\"item_key\":0}");
	expect_get("$.items[10]", "{\"items\":[0,1,2,3,4,5,6,7,8,9,{\"item_key\":10}]}",
	           "{\"item_key\":10}");
	/* corpus: context_object.TestSnfBase.test_variable: hyphen in a dot name */
	expect_get("$$.Execution.Input.input-value", "{}", "0");
}

Test(sm_path, bracket_names_and_escapes)
{
	expect_get("$['a b']", "{\"a b\":1}", "1");
	expect_get("$[\"a\"]['b']", "{\"a\":{\"b\":2}}", "2");
	expect_get("$['it\\'s']", "{\"it's\":3}", "3");
	expect_get("$['a.b']", "{\"a.b\":4,\"a\":{\"b\":5}}", "4");
	expect_get("$['back\\\\slash']", "{\"back\\\\slash\":6}", "6");
	/* corpus:
	 * scenarios.TestBaseScenarios.test_escape_sequence_parsing_ESCAPE_SEQUENCES_JSONPATH: a
	 * backslash before another character stays part of the name */
	expect_get("$['Test\\\"\"Name\"']", "{\"Test\\\\\\\"\\\"Name\\\"\":\"Value\\\"\\\\\"}",
	           "\"Value\\\"\\\\\"");
}

Test(sm_path, missing_definite_is_not_found)
{
	expect_missing("$.x", "{}");
	expect_missing("$.a.b", "{\"a\":1}");
	expect_missing("$.a[3]", "{\"a\":[1]}");
	expect_missing("$.a[0]", "{\"a\":{\"0\":1}}");
	expect_missing("$.a.b", "{\"a\":[{\"b\":1}]}");
	expect_missing("$$.Execution", "{}"); /* no context given */
}

Test(sm_path, missing_fault_cause)
{
	/* corpus: scenarios.TestBaseScenarios.test_catch_states_runtime */
	struct sm_path *p;
	struct sm_fault f;
	json_t *in = J("{}"), *out = NULL;
	cr_assert_eq(sm_path_compile("$.no.such.result.path", SM_PATH_JSONPATH, &p, NULL), SL_OK);
	cr_assert_eq(sm_path_get_fault(p, in, NULL, &out, &f), SL_ERR_NOT_FOUND);
	cr_assert_str_eq(f.error, "States.Runtime");
	cr_assert_str_eq(f.cause,
	                 "Invalid path '$.no.such.result.path' : Missing property in path "
	                 "$['no']");
	sm_path_free(p);
	json_decref(in);
	in = J("{\"a\":{\"b\":[]}}");
	cr_assert_eq(sm_path_compile("$.a.b[2].c", SM_PATH_JSONPATH, &p, NULL), SL_OK);
	cr_assert_eq(sm_path_get_fault(p, in, NULL, &out, &f), SL_ERR_NOT_FOUND);
	cr_assert(strstr(f.cause, "$['a']['b'][2]"), "%s", f.cause);
	sm_path_free(p);
	json_decref(in);
}

Test(sm_path, wildcards)
{
	expect_get("$.a[*]", "{\"a\":[1,2,3]}", "[1,2,3]");
	expect_get("$.a.*", "{\"a\":{\"x\":1,\"y\":[2]}}", "[1,[2]]");
	expect_get("$.a[*].b", "{\"a\":[{\"b\":1},{\"c\":2},{\"b\":3}]}", "[1,3]");
	expect_get("$[*]", "[{\"x\":1}]", "[{\"x\":1}]");
	expect_get("$.a[*]", "{\"a\":5}", "[]");
}

Test(sm_path, wildcard_or_slice_over_missing_is_empty)
{
	/* corpus: base.TestSnfBase.test_json_path_array_wildcard_or_slice_with_no_input* */
	const char *paths[] = { "$[*]",
		                "$.items[*]",
		                "$.item.items[*]",
		                "$.items[1:]",
		                "$.items[:1]",
		                "$.item.items[1:5]",
		                "$.item.items[:1]",
		                "$.items[*].itemValue",
		                "$.items[1:].itemValue",
		                "$.items[:1].itemValue",
		                "$.item.items[1:5].itemValue" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		expect_get(paths[i], "{}", "[]");
}

Test(sm_path, slices)
{
	const char *a = "{\"a\":[0,1,2,3,4,5]}";
	expect_get("$.a[1:3]", a, "[1,2]");
	expect_get("$.a[:2]", a, "[0,1]");
	expect_get("$.a[4:]", a, "[4,5]");
	expect_get("$.a[-2:]", a, "[4,5]");
	expect_get("$.a[:-4]", a, "[0,1]");
	expect_get("$.a[::2]", a, "[0,2,4]");
	expect_get("$.a[1:6:2]", a, "[1,3,5]");
	expect_get("$.a[::-1]", a, "[5,4,3,2,1,0]");
	expect_get("$.a[4:1:-2]", a, "[4,2]");
	expect_get("$.a[10:20]", a, "[]");
	expect_get("$.a[3:1]", a, "[]");
	expect_get("$.a[1:6:1099511627776]", a, "[1]");
	expect_get("$.a[-1099511627776:1099511627776:-1099511627776]", a, "[]");
	expect_get("$.a[5::-1099511627776]", a, "[5]");
	/* the spec's example (awslabs/states-language issue #12): $.vals[3:] */
	expect_get("$.vals[3:]", "{\"vals\":[0,10,20,30,40,50]}", "[30,40,50]");
}

Test(sm_path, unions)
{
	expect_get("$.a[0,2]", "{\"a\":[\"x\",\"y\",\"z\"]}", "[\"x\",\"z\"]");
	expect_get("$.a[0,9]", "{\"a\":[\"x\"]}", "[\"x\"]");
	expect_get("$['a','c']", "{\"a\":1,\"b\":2,\"c\":3}", "[1,3]");
	expect_get("$['a','zz']", "{\"a\":1}", "[1]");
}

Test(sm_path, recursive_descent)
{
	const char *doc = "{\"a\":{\"name\":1,\"b\":{\"name\":2}},\"c\":[{\"name\":3}],\"name\":0}";
	expect_get("$..name", doc, "[0,1,2,3]");
	expect_get("$.a..name", doc, "[1,2]");
	expect_get("$..zzz", doc, "[]");
	expect_get("$..[0]", "{\"a\":[1,[2,3]]}", "[1,2]");
	expect_get("$.a..*", "{\"a\":{\"b\":{\"c\":1}}}", "[{\"c\":1},1]");
}

Test(sm_path, filters)
{
	const char *users
	        = "{\"users\":[{\"year\":1997,\"status\":0},{\"year\":1998,\"status\":1}]}";
	/* corpus: base.TestSnfBase.test_state_pass_regex_json_path_base */
	expect_get("$.users[?(@.status == 0)]", users, "[{\"year\":1997,\"status\":0}]");
	expect_get("$.users[?(@.year > 1997)].status", users, "[1]");
	expect_get("$.users[?(@.year >= 1997 && @.status != 0)].year", users, "[1998]");
	expect_get("$.users[?(@.year < 1990 || @.status == 1)].year", users, "[1998]");
	expect_get("$.users[?(!(@.status == 0))].year", users, "[1998]");
	expect_get("$.users[?(@.year <= 1997)].year", users, "[1997]");

	const char *books = "{\"max\":10,\"book\":[{\"t\":\"a\",\"price\":8.95,\"flag\":false},"
	                    "{\"t\":\"b\",\"price\":12.99},{\"t\":\"c\",\"price\":9}]}";
	expect_get("$.book[?(@.price < 10)].t", books, "[\"a\",\"c\"]");
	expect_get("$.book[?(@.price < $.max)].t", books, "[\"a\",\"c\"]");
	/* [?(@.flag)] tests existence, as Jayway does */
	expect_get("$.book[?(@.flag)].t", books, "[\"a\"]");
	expect_get("$.book[?(@.t == 'b')].price", books, "[12.99]");
	expect_get("$.book[?(@.t == \"c\")].price", books, "[9]");
	expect_get("$.book[?(@.t > 'a')].t", books, "[\"b\",\"c\"]");
	expect_get("$.book[?(@.flag == false)].t", books, "[\"a\"]");
	expect_get("$.book[?(@.missing == null)].t", books, "[]");
	/* mixed types are unequal, never an error */
	expect_get("$.book[?(@.t == 1)].t", books, "[]");
	expect_get("$.book[?(@.t != 1)].t", books, "[\"a\",\"b\",\"c\"]");
	expect_get("$.a[?(@ > 1)]", "{\"a\":[1,2,3]}", "[2,3]");
	expect_get("$.a[?(@.x == null)]", "{\"a\":[{\"x\":null},{\"x\":1}]}", "[{\"x\":null}]");
	/* over an object the filter tests the object itself (Jayway) */
	expect_get("$.o[?(@.k == 1)]", "{\"o\":{\"k\":1}}", "[{\"k\":1}]");
	expect_get("$.missing[?(@.k == 1)]", "{}", "[]");
}

Test(sm_path, context_paths)
{
	expect_get("$$", "{}", ctx_text);
	expect_get("$$.Execution.Input", "{}", "{\"input-value\":0,\"csv\":\"a,b\"}");
	expect_get("$$.Map.Item.Value.v", "{}", "1");
	expect_get("$$.State.RetryCount", "{}", "2");
	struct sm_path *p;
	cr_assert_eq(sm_path_compile("$$.Execution.Input", SM_PATH_REFERENCE, &p, NULL), SL_OK);
	cr_assert(sm_path_is_context(p));
	cr_assert_not(sm_path_is_root(p));
	cr_assert_not(sm_path_is_multi(p));
	cr_assert_str_eq(sm_path_text(p), "$$.Execution.Input");
	sm_path_free(p);
	cr_assert_eq(sm_path_compile("$$", SM_PATH_REFERENCE, &p, NULL), SL_OK);
	cr_assert(sm_path_is_root(p) && sm_path_is_context(p));
	sm_path_free(p);
	cr_assert_eq(sm_path_compile("$.a[*]", SM_PATH_JSONPATH, &p, NULL), SL_OK);
	cr_assert(sm_path_is_multi(p));
	cr_assert_not(sm_path_is_context(p));
	sm_path_free(p);
}

Test(sm_path, reference_paths_refuse_multi)
{
	struct sm_path *p;
	cr_assert_eq(sm_path_compile("$.a['b c'][0]", SM_PATH_REFERENCE, &p, NULL), SL_OK);
	sm_path_free(p);
	expect_bad_path("$.a[*]", SM_PATH_REFERENCE, "reference path");
	expect_bad_path("$.a.*", SM_PATH_REFERENCE, "reference path");
	expect_bad_path("$..a", SM_PATH_REFERENCE, "reference path");
	expect_bad_path("$.a[1:2]", SM_PATH_REFERENCE, "reference path");
	expect_bad_path("$.a[0,1]", SM_PATH_REFERENCE, "reference path");
	expect_bad_path("$.a[?(@.x)]", SM_PATH_REFERENCE, "reference path");
	expect_bad_path("$.a[-1]", SM_PATH_REFERENCE, "negative index");
}

Test(sm_path, syntax_errors_say_where)
{
	expect_bad_path("", SM_PATH_JSONPATH, "must start with '$'");
	expect_bad_path("a.b", SM_PATH_JSONPATH, "must start with '$'");
	expect_bad_path("$.caf\xc3", SM_PATH_JSONPATH, "not valid UTF-8");
	expect_bad_path("$.", SM_PATH_JSONPATH, "expected a field name at position 2");
	expect_bad_path("$a", SM_PATH_JSONPATH, "expected '.' or '['");
	expect_bad_path("$.a[", SM_PATH_JSONPATH, "after '['");
	expect_bad_path("$.a[0", SM_PATH_JSONPATH, "expected ']'");
	expect_bad_path("$['a", SM_PATH_JSONPATH, "unterminated quoted name");
	expect_bad_path("$.a b", SM_PATH_JSONPATH, "unexpected character");
	expect_bad_path("$.a[::0]", SM_PATH_JSONPATH, "step cannot be zero");
	expect_bad_path("$.a[?(@.x ==)]", SM_PATH_JSONPATH, "in filter");
	expect_bad_path("$.a[?(@.x == 1]", SM_PATH_JSONPATH, "expected ')'");
	expect_bad_path("$.a[?(@.x[*] == 1)]", SM_PATH_JSONPATH, "single value");
	expect_bad_path("$.a[?(@.x == 'open)]", SM_PATH_JSONPATH, "unterminated string");
	expect_bad_path("$.a[99999999999999999999]", SM_PATH_JSONPATH, "out of range");
	expect_bad_path("$.a[1:2:-9223372036854775808]", SM_PATH_JSONPATH, "out of range");
	expect_bad_path("$.a[1099511627777]", SM_PATH_JSONPATH, "out of range");
	cr_assert_eq(sm_path_compile(NULL, SM_PATH_JSONPATH, &(struct sm_path *) { NULL }, NULL),
	             SL_ERR_INVALID_DEFINITION);
	/* deeply nested filters are refused, not a stack overflow */
	char deep[400] = "$.a[?(";
	for (int i = 0; i < 60; i++)
		strcat(deep, "!");
	strcat(deep, "@.x)]");
	expect_bad_path(deep, SM_PATH_JSONPATH, "nested too deeply");
}

Test(sm_path, multi_path_results_are_copies_of_references)
{
	struct sm_path *p;
	json_t *in = J("{\"a\":[{\"b\":1}]}"), *out;
	cr_assert_eq(sm_path_compile("$.a[*]", SM_PATH_JSONPATH, &p, NULL), SL_OK);
	cr_assert_eq(sm_path_get(p, in, NULL, &out), SL_OK);
	cr_assert(json_is_array(out) && json_array_size(out) == 1);
	json_decref(in);
	assert_json_eq(out, "[{\"b\":1}]", "outlives input");
	json_decref(out);
	sm_path_free(p);
}

/* ---- ResultPath ------------------------------------------------------------------------- */

static void
expect_set(const char *path, const char *root, const char *value, const char *want)
{
	struct sm_path *p;
	struct sm_fault f;
	json_t *r = J(root), *v = J(value), *out = NULL;
	cr_assert_eq(sm_path_compile(path, SM_PATH_REFERENCE, &p, NULL), SL_OK);
	cr_assert_eq(sm_path_set(p, r, v, &out, &f), SL_OK, "%s: %s", path, f.cause);
	assert_json_eq(out, want, path);
	assert_json_eq(r, root, "root untouched");
	json_decref(out);
	json_decref(r);
	json_decref(v);
	sm_path_free(p);
}

static void
expect_set_fails(const char *path, const char *root, const char *cause)
{
	struct sm_path *p;
	struct sm_fault f = { 0 };
	json_t *r = J(root), *v = J("1"), *out = NULL;
	cr_assert_eq(sm_path_compile(path, SM_PATH_REFERENCE, &p, NULL), SL_OK);
	cr_assert_eq(sm_path_set(p, r, v, &out, &f), SL_ERR_INVALID_ARG, "%s over %s", path, root);
	cr_assert_null(out);
	cr_assert_str_eq(f.error, "States.ResultPathMatchFailure");
	cr_assert_str_eq(f.cause, cause);
	json_decref(r);
	json_decref(v);
	sm_path_free(p);
}

Test(sm_result_path, set)
{
	expect_set("$", "{\"a\":1}", "{\"r\":2}", "{\"r\":2}");
	expect_set("$", "{\"a\":1}", "\"s\"", "\"s\"");
	expect_set("$.r", "{\"a\":1}", "[1]", "{\"a\":1,\"r\":[1]}");
	expect_set("$.a", "{\"a\":1}", "2", "{\"a\":2}");
	expect_set("$.x.y.z", "{\"a\":1}", "true", "{\"a\":1,\"x\":{\"y\":{\"z\":true}}}");
	expect_set("$.x.y", "{\"x\":{\"k\":0}}", "1", "{\"x\":{\"k\":0,\"y\":1}}");
	expect_set("$['a b'].c", "{}", "null", "{\"a b\":{\"c\":null}}");
	expect_set("$.l[1]", "{\"l\":[0,0]}", "5", "{\"l\":[0,5]}");
	expect_set("$.l[0].k", "{\"l\":[{}]}", "5", "{\"l\":[{\"k\":5}]}");
}

Test(sm_result_path, match_failures)
{
	expect_set_fails("$.a.b", "{\"a\":\"str\"}",
	                 "Unable to apply ResultPath '$.a.b' to input '{\"a\":\"str\"}'");
	expect_set_fails("$.a", "\"text\"", "Unable to apply ResultPath '$.a' to input '\"text\"'");
	expect_set_fails("$.a", "[1]", "Unable to apply ResultPath '$.a' to input '[1]'");
	expect_set_fails("$.l[5]", "{\"l\":[]}",
	                 "Unable to apply ResultPath '$.l[5]' to input '{\"l\":[]}'");
	expect_set_fails("$[0]", "{}", "Unable to apply ResultPath '$[0]' to input '{}'");
}

Test(sm_result_path, refuses_multi_and_context)
{
	struct sm_path *p;
	struct sm_fault f;
	json_t *r = J("{}"), *out = NULL;
	cr_assert_eq(sm_path_compile("$.a[*]", SM_PATH_JSONPATH, &p, NULL), SL_OK);
	cr_assert_eq(sm_path_set(p, r, r, &out, &f), SL_ERR_INVALID_ARG);
	cr_assert_str_eq(f.error, "States.ResultPathMatchFailure");
	sm_path_free(p);
	cr_assert_eq(sm_path_compile("$$.a", SM_PATH_REFERENCE, &p, NULL), SL_OK);
	cr_assert_eq(sm_path_set(p, r, r, &out, &f), SL_ERR_INVALID_ARG);
	sm_path_free(p);
	json_decref(r);
}

/* ---- templates -------------------------------------------------------------------------- */

static void
expect_template(const char *tmpl, const char *input, const char *want)
{
	struct sm_template *t;
	struct sl_error err;
	struct sm_fault fault = { 0 };
	json_t *tj = J(tmpl), *in = J(input), *ctx = J(ctx_text), *out = NULL;
	cr_assert_eq(sm_template_compile(tj, &t, &err), SL_OK, "%s: %s", tmpl, err.message);
	cr_assert_eq(sm_template_eval(t, in, ctx, &out, &fault), SL_OK, "%s: %s %s", tmpl,
	             fault.error, fault.cause);
	assert_json_eq(out, want, tmpl);
	assert_json_eq(tj, tmpl, "template untouched");
	json_decref(out);
	json_decref(tj);
	json_decref(in);
	json_decref(ctx);
	sm_template_free(t);
}

static void
expect_template_fault(const char *tmpl, const char *input, const char *error, const char *cause)
{
	struct sm_template *t;
	struct sl_error err;
	struct sm_fault fault = { 0 };
	json_t *tj = J(tmpl), *in = J(input), *out = NULL;
	cr_assert_eq(sm_template_compile(tj, &t, &err), SL_OK, "%s: %s", tmpl, err.message);
	cr_assert_neq(sm_template_eval(t, in, NULL, &out, &fault), SL_OK);
	cr_assert_null(out);
	cr_assert_str_eq(fault.error, error);
	cr_assert(strstr(fault.cause, cause), "cause '%s' lacks '%s'", fault.cause, cause);
	json_decref(tj);
	json_decref(in);
	sm_template_free(t);
}

static void
expect_bad_template(const char *tmpl, const char *needle)
{
	struct sm_template *t = NULL;
	struct sl_error err;
	json_t *tj = J(tmpl);
	sl_error_clear(&err);
	cr_assert_eq(sm_template_compile(tj, &t, &err), SL_ERR_INVALID_DEFINITION, "%s", tmpl);
	cr_assert_null(t);
	cr_assert(strstr(err.message, needle), "'%s': message '%s' lacks '%s'", tmpl, err.message,
	          needle);
	json_decref(tj);
}

Test(sm_template, paths_literals_and_nesting)
{
	expect_template("{\"flagged\":true,\"parts\":{\"first.$\":\"$.vals[0]\","
	                "\"last3.$\":\"$.vals[3:]\"}}",
	                "{\"flagged\":7,\"vals\":[0,10,20,30,40,50]}",
	                "{\"flagged\":true,\"parts\":{\"first\":0,\"last3\":[30,40,50]}}");
	expect_template(
	        "{\"a\":[1,{\"b.$\":\"$.x\"},[{\"c.$\":\"$$.Map.Item.Index\"}]],\"s\":\"$.x\"}",
	        "{\"x\":\"X\"}", "{\"a\":[1,{\"b\":\"X\"},[{\"c\":3}]],\"s\":\"$.x\"}");
	expect_template("{\"whole.$\":\"$\",\"ctx.$\":\"$$.Execution.Input\"}", "{\"k\":1}",
	                "{\"whole\":{\"k\":1},\"ctx\":{\"input-value\":0,\"csv\":\"a,b\"}}");
	expect_template("{\"n.$\":\"States.MathAdd($.a, 1)\",\"u\":\"States.UUID()\"}", "{\"a\":1}",
	                "{\"n\":2,\"u\":\"States.UUID()\"}");
	expect_template("[1,\"two\"]", "{}", "[1,\"two\"]");
	expect_template("{}", "{}", "{}");
	expect_template("\"plain\"", "{}", "\"plain\"");
	/* corpus: base.TestSnfBase.test_json_path_array_wildcard_or_slice_with_no_input_.items */
	expect_template("{\"item.$\":\"$.items[*]\"}", "{}", "{\"item\":[]}");
	/* corpus: context_object.TestSnfBase.test_result_selector */
	expect_template(
	        "{\"LambdaOutput.$\":\"$\",\"ContextObjectValue.$\":\"$$.Execution.Input\"}",
	        "{\"p\":1}",
	        "{\"LambdaOutput\":{\"p\":1},\"ContextObjectValue\":{\"input-value\":0,"
	        "\"csv\":\"a,b\"}}");
}

Test(sm_template, output_is_independent_of_template)
{
	struct sm_template *t;
	struct sm_fault fault;
	json_t *tj = J("{\"lit\":{\"k\":[1]},\"p.$\":\"$\"}"), *in = J("{}"), *a, *b;
	cr_assert_eq(sm_template_compile(tj, &t, NULL), SL_OK);
	json_decref(tj);
	cr_assert_eq(sm_template_eval(t, in, NULL, &a, &fault), SL_OK);
	json_array_append_new(json_object_get(json_object_get(a, "lit"), "k"), json_integer(2));
	cr_assert_eq(sm_template_eval(t, in, NULL, &b, &fault), SL_OK);
	assert_json_eq(b, "{\"lit\":{\"k\":[1]},\"p\":{}}", "second payload");
	json_decref(a);
	json_decref(b);
	json_decref(in);
	sm_template_free(t);
}

Test(sm_template, parameter_path_failure)
{
	expect_template_fault("{\"y.$\":\"$.x\"}", "{\"a\":1}", "States.Runtime",
	                      "The JSONPath '$.x' specified for the field 'y.$' could not be found "
	                      "in the input '{\"a\":1}'");
	expect_template_fault("{\"o\":{\"deep.$\":\"$.a.b\"}}", "{\"a\":[]}", "States.Runtime",
	                      "The JSONPath '$.a.b' specified for the field 'deep.$'");
	expect_template_fault("{\"c.$\":\"$$.Task.Token\"}", "{}", "States.Runtime",
	                      "The JSONPath '$$.Task.Token' specified for the field 'c.$'");
	expect_template_fault("{\"f.$\":\"States.ArrayGetItem($.l, 5)\"}", "{\"l\":[]}",
	                      "States.IntrinsicFailure", "out of bounds");
}

Test(sm_template, compile_errors)
{
	/* corpus: scenarios...test_illegal_escapes_ESCAPE_SEQUENCES_ILLEGAL_INTRINSIC_FUNCTION */
	expect_bad_template(
	        "{\"parsed.$\":\"States.StringToJson('{\\\"t\\\":\\\"\\\\\\\"q\\\\\\\"\\\"}')\"}",
	        "The value for the field 'parsed.$' must be a valid JSONPath or a valid "
	        "intrinsic function call");
	expect_bad_template("{\"a.$\":\"not a path\"}", "field 'a.$' must be a valid JSONPath");
	expect_bad_template("{\"a.$\":5}", "field 'a.$' must be a valid JSONPath");
	expect_bad_template("{\"o\":[{\"b.$\":\"$.[\"}]}", "field 'b.$'");
	expect_bad_template("{\"b.$\":\"States.Nope()\"}", "unknown intrinsic function");
	cr_assert_eq(sm_template_compile(NULL, &(struct sm_template *) { NULL }, NULL),
	             SL_ERR_INVALID_DEFINITION);
}

Test(sm_template, pass_result_is_not_a_template)
{
	/* corpus: base.TestSnfBase.test_state_pass_result_jsonpaths: the stepper copies Result as
	 * is; a template without ".$" keys evaluates to itself, keys and all */
	expect_template("{\"unsupported1\":\"$.jsonpath\"}", "{}",
	                "{\"unsupported1\":\"$.jsonpath\"}");
}

/* ---- allocation failure walks ----------------------------------------------------------- */

typedef sl_err (*oom_fn)(void *arg);

/* Fails the n-th allocation for n = 0, 1, ... until the call succeeds; every failure must
 * be a clean SL_ERR_NOMEM (ASan reports any leak at exit). */
static void
oom_walk(oom_fn fn, void *arg, const char *what)
{
	for (long n = 0;; n++) {
		cr_assert(n < 100000, "%s never succeeded", what);
		sl_alloc_fail_after(n);
		sl_err rc = fn(arg);
		sl_alloc_fail_after(-1);
		if (rc == SL_OK)
			return;
		cr_assert_eq(rc, SL_ERR_NOMEM, "%s: allocation %ld failed as %s", what, n,
		             sl_err_name(rc));
	}
}

static sl_err
oom_path(void *arg)
{
	struct sm_path *p;
	sl_err rc = sm_path_compile(arg, SM_PATH_JSONPATH, &p, NULL);
	if (!rc)
		sm_path_free(p);
	return rc;
}

static sl_err
oom_intrinsic(void *arg)
{
	struct sm_intrinsic *f;
	sl_err rc = sm_intrinsic_compile(arg, &f, NULL);
	if (!rc)
		sm_intrinsic_free(f);
	return rc;
}

static sl_err
oom_template(void *arg)
{
	struct sm_template *t;
	sl_err rc = sm_template_compile(arg, &t, NULL);
	if (!rc)
		sm_template_free(t);
	return rc;
}

struct eval_case {
	struct sm_template *t;
	json_t *in, *ctx;
};

static sl_err
oom_template_eval(void *arg)
{
	struct eval_case *c = arg;
	struct sm_fault fault;
	json_t *out;
	sl_err rc = sm_template_eval(c->t, c->in, c->ctx, &out, &fault);
	if (!rc)
		json_decref(out);
	return rc;
}

struct set_case {
	struct sm_path *p;
	json_t *root, *value;
};

static sl_err
oom_set(void *arg)
{
	struct set_case *c = arg;
	struct sm_fault fault;
	json_t *out;
	sl_err rc = sm_path_set(c->p, c->root, c->value, &out, &fault);
	if (!rc)
		json_decref(out);
	return rc;
}

Test(sm_oom, compile_paths)
{
	oom_walk(oom_path, "$.a['b c'][0].d", "reference path");
	oom_walk(oom_path, "$..book[?(@.price < $.max && !(@.t == 'x') || @.n)][1:3:1]", "filter");
	oom_walk(oom_path, "$['a','b'][0,1,2].*", "unions");
	cr_assert_eq(SM_LEAK_CHECK(), 0, "LeakSanitizer found leaks (report on stderr)");
}

Test(sm_oom, compile_intrinsics)
{
	oom_walk(oom_intrinsic,
	         "States.Format('{} {} {}', 'str', 1.5, States.Array($.a[*], $$.b, true, null, "
	         "States.ArrayRange(1, 3, 1), -7, 'x', 'y', 'z'))",
	         "nested call");
	cr_assert_eq(SM_LEAK_CHECK(), 0, "LeakSanitizer found leaks (report on stderr)");
}

Test(sm_oom, compile_template)
{
	json_t *tj = J("{\"a\":{\"b.$\":\"$.x\",\"c\":[1,{\"d.$\":\"States.UUID()\"}]},"
	               "\"lit\":{\"k\":\"v\"},\"e.$\":\"$$.Execution\"}");
	oom_walk(oom_template, tj, "template");
	json_decref(tj);
	cr_assert_eq(SM_LEAK_CHECK(), 0, "LeakSanitizer found leaks (report on stderr)");
}

Test(sm_oom, evaluate)
{
	json_t *tj = J("{\"a\":{\"b.$\":\"$.x[*]\",\"c\":[1,{\"d.$\":\"States.Format('{}-{}', "
	               "$.x, States.JsonToString($))\"}]},\"s.$\":\"States.StringSplit('a,b,c', "
	               "',')\",\"m.$\":\"States.JsonMerge($.o, $.o, false)\",\"lit\":{\"k\":[1]}}");
	struct eval_case c
	        = { .in = J("{\"x\":[1,2,{\"y\":1.5}],\"o\":{\"k\":1}}"), .ctx = J(ctx_text) };
	cr_assert_eq(sm_template_compile(tj, &c.t, NULL), SL_OK);
	oom_walk(oom_template_eval, &c, "template eval");
	sm_template_free(c.t);
	json_decref(tj);

	struct set_case s = { .root = J("{\"a\":{\"k\":[1,2]}}"), .value = c.in };
	cr_assert_eq(sm_path_compile("$.a.b.c", SM_PATH_REFERENCE, &s.p, NULL), SL_OK);
	oom_walk(oom_set, &s, "ResultPath");
	sm_path_free(s.p);
	json_decref(s.root);
	json_decref(c.in);
	json_decref(c.ctx);
	cr_assert_eq(SM_LEAK_CHECK(), 0, "LeakSanitizer found leaks (report on stderr)");
}

/* ---- replay of AWS-recorded corpus cases ------------------------------------------------ */

/* Only "$$.Execution.Input" can be rebuilt from a case; other context fields are masked. */
static bool
context_ok(const char *def)
{
	for (const char *s = strstr(def, "$$"); s; s = strstr(s + 2, "$$"))
		if (strncmp(s, "$$.Execution.Input", 18) != 0)
			return false;
	return true;
}

/* Runs a one-state Pass machine (InputPath, Parameters, ResultPath, OutputPath) the way the
 * stepper will; returns 1 if the case was run, 0 if it does not fit, and fails on a
 * mismatch. */
static int
replay_pass_case(const char *file)
{
	json_error_t e;
	json_t *c = json_load_file(file, 0, &e);
	cr_assert_not_null(c, "%s: %s", file, e.text);
	json_t *states = json_object_get(json_object_get(c, "definition"), "States");
	json_t *expected = json_object_get(c, "expected_output");
	const char *status = json_string_value(json_object_get(c, "expected_status"));
	int ran = 0;
	if (!states || json_object_size(states) != 1 || !status || strcmp(status, "SUCCEEDED"))
		goto out;
	json_t *st = json_object_iter_value(json_object_iter(states));
	const char *k;
	json_t *v;
	json_object_foreach(st, k, v)
	{
		if (strcmp(k, "Type") && strcmp(k, "Parameters") && strcmp(k, "InputPath")
		    && strcmp(k, "ResultPath") && strcmp(k, "OutputPath") && strcmp(k, "End")
		    && strcmp(k, "Comment"))
			goto out;
	}
	if (strcmp(json_string_value(json_object_get(st, "Type")), "Pass") != 0)
		goto out;
	char *def = json_dumps(st, JSON_COMPACT);
	char *exp_text = json_dumps(expected, JSON_COMPACT | JSON_ENCODE_ANY);
	bool fits = context_ok(def) && !strchr(exp_text, '<');
	free(def);
	free(exp_text);
	if (!fits)
		goto out;

	json_t *input = json_object_get(c, "input");
	json_t *ctx = json_pack("{s:{s:O}}", "Execution", "Input", input);
	json_t *doc = json_incref(input), *tmp;
	struct sm_fault fault = { 0 };
	struct sm_path *p;
	json_t *ip = json_object_get(st, "InputPath");
	if (ip && json_is_null(ip)) {
		json_decref(doc);
		doc = json_object();
	} else if (ip) {
		cr_assert_eq(sm_path_compile(json_string_value(ip), SM_PATH_JSONPATH, &p, NULL),
		             SL_OK);
		cr_assert_eq(sm_path_get(p, doc, ctx, &tmp), SL_OK, "%s: InputPath", file);
		json_decref(doc);
		doc = tmp;
		sm_path_free(p);
	}
	json_t *result = json_incref(doc);
	json_t *params = json_object_get(st, "Parameters");
	if (params) {
		struct sm_template *t;
		struct sl_error err;
		cr_assert_eq(sm_template_compile(params, &t, &err), SL_OK, "%s: %s", file,
		             err.message);
		json_decref(result);
		cr_assert_eq(sm_template_eval(t, doc, ctx, &result, &fault), SL_OK, "%s: %s %s",
		             file, fault.error, fault.cause);
		sm_template_free(t);
	}
	json_t *rp = json_object_get(st, "ResultPath");
	if (!rp || json_is_string(rp)) {
		cr_assert_eq(sm_path_compile(rp ? json_string_value(rp) : "$", SM_PATH_REFERENCE,
		                             &p, NULL),
		             SL_OK);
		cr_assert_eq(sm_path_set(p, input, result, &tmp, &fault), SL_OK, "%s: %s", file,
		             fault.cause);
		sm_path_free(p);
		json_decref(doc);
		doc = tmp;
	}
	json_decref(result);
	json_t *op = json_object_get(st, "OutputPath");
	if (op && json_is_null(op)) {
		json_decref(doc);
		doc = json_object();
	} else if (op) {
		cr_assert_eq(sm_path_compile(json_string_value(op), SM_PATH_JSONPATH, &p, NULL),
		             SL_OK);
		cr_assert_eq(sm_path_get(p, doc, ctx, &tmp), SL_OK, "%s: OutputPath", file);
		json_decref(doc);
		doc = tmp;
		sm_path_free(p);
	}
	char *got = dump(doc), *want = dump(expected);
	cr_assert(json_equal(doc, expected), "%s: got %s, want %s", file, got, want);
	free(got);
	free(want);
	json_decref(doc);
	json_decref(ctx);
	ran = 1;
out:
	json_decref(c);
	return ran;
}

static int
replay_dir(const char *group, const char *must_contain)
{
	const char *shared = getenv("SLUICE_SHARED");
	char dir[4096];
	if (!shared)
		cr_skip_test("SLUICE_SHARED is not set");
	snprintf(dir, sizeof(dir), "%s/corpus/asl/%s", shared, group);
	DIR *d = opendir(dir);
	if (!d)
		cr_skip_test("corpus directory %s is missing", dir);
	int ran = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char file[8192];
		if (!strstr(de->d_name, ".json") || strstr(de->d_name, "JSONata")
		    || (must_contain && !strstr(de->d_name, must_contain)))
			continue;
		snprintf(file, sizeof(file), "%s/%s", dir, de->d_name);
		ran += replay_pass_case(file);
	}
	closedir(d);
	return ran;
}

Test(sm_corpus, intrinsic_functions)
{
	int ran = replay_dir("intrinsic_functions", NULL);
	cr_log_info("replayed %d intrinsic_functions cases", ran);
	cr_assert_geq(ran, 100, "only %d cases fit", ran);
}

Test(sm_corpus, base_json_paths)
{
	int ran = replay_dir("base", "json_path");
	cr_log_info("replayed %d base json_path cases", ran);
	cr_assert_geq(ran, 13, "only %d cases fit", ran);
}

Test(sm_corpus, context_object_and_base_pass)
{
	int ran = replay_dir("context_object", NULL) + replay_dir("base", "state_pass");
	cr_log_info("replayed %d context_object/base pass cases", ran);
	cr_assert_geq(ran, 3, "only %d cases fit", ran);
}

struct compile_tally {
	int compiled, failed;
	const char *file;
};

static bool
is_variable_ref(const char *s)
{
	return s[0] == '$' && s[1] != '$' && s[1] != '.' && s[1] != '[' && s[1] != '\0';
}

static void
try_compile(const char *what, const char *s, enum sm_path_kind kind, bool allow_call,
            struct compile_tally *t)
{
	struct sl_error err;
	sl_err rc;
	if (strncmp(s, "{%", 2) == 0 || is_variable_ref(s))
		return;
	if (allow_call && sm_intrinsic_is_call(s)) {
		struct sm_intrinsic *f;
		rc = sm_intrinsic_compile(s, &f, &err);
		if (!rc)
			sm_intrinsic_free(f);
	} else {
		struct sm_path *p;
		rc = sm_path_compile(s, kind, &p, &err);
		if (!rc)
			sm_path_free(p);
	}
	if (rc) {
		t->failed++;
		cr_log_error("%s: %s '%s': %s", t->file, what, s, err.message);
	} else {
		t->compiled++;
	}
}

/* Compiles every path and intrinsic call in a JSONPath-mode definition. */
static void
walk_definition(json_t *v, struct compile_tally *t)
{
	const char *k;
	json_t *x;
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			walk_definition(json_array_get(v, i), t);
		return;
	}
	if (!json_is_object(v))
		return;
	json_object_foreach(v, k, x)
	{
		size_t n = strlen(k);
		const char *s = json_string_value(x);
		if (!s || strcmp(k, "Result") == 0 || strcmp(k, "Assign") == 0) {
			if (strcmp(k, "Result") != 0 && strcmp(k, "Assign") != 0)
				walk_definition(x, t);
			continue;
		}
		if (n > 2 && strcmp(k + n - 2, ".$") == 0)
			try_compile(k, s, SM_PATH_JSONPATH, true, t);
		else if (!strcmp(k, "InputPath") || !strcmp(k, "OutputPath")
		         || !strcmp(k, "ItemsPath"))
			try_compile(k, s, SM_PATH_JSONPATH, false, t);
		else if (!strcmp(k, "ResultPath") || !strcmp(k, "Variable"))
			try_compile(k, s, SM_PATH_REFERENCE, false, t);
		else if (!strcmp(k, "ErrorPath") || !strcmp(k, "CausePath"))
			try_compile(k, s, SM_PATH_REFERENCE, true, t);
	}
}

Test(sm_corpus, every_jsonpath_in_the_corpus_compiles)
{
	const char *shared = getenv("SLUICE_SHARED");
	static const char *groups[]
	        = { "base",           "intrinsic_functions", "scenarios",        "services",
		    "error_handling", "context_object",      "choice_operators", "callback",
		    "timeouts" };
	struct compile_tally t = { 0 };
	if (!shared)
		cr_skip_test("SLUICE_SHARED is not set");
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/corpus/asl/%s", shared, groups[g]);
		DIR *d = opendir(dir);
		if (!d)
			cr_skip_test("corpus directory %s is missing", dir);
		struct dirent *de;
		while ((de = readdir(d))) {
			char file[8192];
			if (!strstr(de->d_name, ".json"))
				continue;
			snprintf(file, sizeof(file), "%s/%s", dir, de->d_name);
			json_t *c = json_load_file(file, 0, NULL);
			const char *status
			        = json_string_value(json_object_get(c, "expected_status"));
			json_t *def = json_object_get(c, "definition");
			char *text = def ? json_dumps(def, JSON_COMPACT) : NULL;
			/* JSONata definitions and ones AWS refused are not for this walk */
			if (def && status && strcmp(status, "CREATE_FAILED") != 0
			    && !strstr(text, "JSONata")) {
				t.file = de->d_name;
				walk_definition(def, &t);
			}
			free(text);
			json_decref(c);
		}
		closedir(d);
	}
	cr_log_info("compiled %d paths and calls from the corpus", t.compiled);
	cr_assert_eq(t.failed, 0, "%d corpus paths did not compile (see log)", t.failed);
	cr_assert_geq(t.compiled, 500);
}

/* ---- hostile text ----------------------------------------------------------------------- */

static unsigned long long fuzz_state = 0x9E3779B97F4A7C15ULL;

unsigned
fuzz_next(unsigned bound)
{
	fuzz_state = fuzz_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)((fuzz_state >> 33) % bound);
}

/* Valid text with one to three edits: deletions, insertions of a token, or a copy of a
 * span, so most inputs get deep into the parser before going wrong. */
void
fuzz_mutate(char *buf, size_t cap, const char *seed)
{
	static const char *ins[] = { "[", "]", "'",  "(",  ")", ",", "$", ".", "*",
		                     "?", "@", "\\", "{}", "-", ":", " ", "0", "States.Array(" };
	snprintf(buf, cap, "%s", seed);
	unsigned edits = 1 + fuzz_next(3);
	for (unsigned e = 0; e < edits; e++) {
		size_t len = strlen(buf);
		size_t at = fuzz_next((unsigned)len + 1);
		switch (fuzz_next(3)) {
		case 0:
			if (at < len)
				memmove(buf + at, buf + at + 1, len - at);
			break;
		case 1: {
			const char *t = ins[fuzz_next(sizeof(ins) / sizeof(ins[0]))];
			size_t tl = strlen(t);
			if (len + tl + 1 < cap) {
				memmove(buf + at + tl, buf + at, len - at + 1);
				memcpy(buf + at, t, tl);
			}
			break;
		}
		default: {
			size_t span = fuzz_next(8);
			if (at + span <= len && len + span + 1 < cap) {
				memmove(buf + at + span, buf + at, len - at + 1);
				memmove(buf + at + span, buf + at, span);
			}
		}
		}
	}
}

void
fuzz_text(char *buf, size_t cap, const char *prefix)
{
	static const char *tok[]
	        = { "$",    "$$", ".",    "..",   "[",   "]",       "*",     "?(",     ")",
		    "@",    "'",  "\"",   "a",    "b c", "0",       "-1",    ":",      ",",
		    "==",   "<",  "&&",   "||",   "!",   "States.", "Array", "Format", "(",
		    "'{}'", "\\", "true", "null", "1.5", " ",       "\xc3",  "9999" };
	snprintf(buf, cap, "%s", prefix);
	unsigned n = 1 + fuzz_next(14);
	for (unsigned i = 0; i < n; i++) {
		const char *t = tok[fuzz_next(sizeof(tok) / sizeof(tok[0]))];
		if (strlen(buf) + strlen(t) + 1 < cap)
			strcat(buf, t);
	}
}

Test(sm_path, random_text_never_crashes)
{
	json_t *doc = J("{\"a\":[{\"b c\":1},{\"a\":[0,1]}],\"0\":null}");
	int compiled = 0;
	for (int i = 0; i < 20000; i++) {
		char text[256];
		struct sm_path *p;
		static const char *seeds[]
		        = { "$.a[0]['b c']", "$..a[1:2]",       "$.a[?(@.a[0] >= 1 && !@.x)]",
			    "$$.a[*].b",     "$['a','0'][-1:]", "$.a[0,1].a[::-1]" };
		if (i % 4 == 0)
			fuzz_text(text, sizeof(text), i % 8 ? "$" : "");
		else
			fuzz_mutate(text, sizeof(text), seeds[fuzz_next(6)]);
		sl_err rc = sm_path_compile(text, i % 3 ? SM_PATH_JSONPATH : SM_PATH_REFERENCE, &p,
		                            NULL);
		cr_assert(rc == SL_OK || rc == SL_ERR_INVALID_DEFINITION, "%s: %s", text,
		          sl_err_name(rc));
		if (rc)
			continue;
		compiled++;
		json_t *out = NULL;
		rc = sm_path_get(p, doc, doc, &out);
		cr_assert(rc == SL_OK || rc == SL_ERR_NOT_FOUND, "%s: %s", text, sl_err_name(rc));
		json_decref(out);
		sm_path_free(p);
	}
	cr_log_info("%d of 20000 random paths compiled", compiled);
	json_decref(doc);
}
