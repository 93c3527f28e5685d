/*
 * test_sm_load.c - the definition loader: YAML 1.2 core schema typing (the 1.1 pitfalls),
 * anchors and the alias expansion cap, duplicate keys, multiple documents, source
 * positions for YAML and JSON, and clean errors for malformed text.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/statemachines.h"

static json_t *
load_ok(const char *text, enum sm_format fmt, struct sm_positions **pos)
{
	struct sm_problems p = { 0 };
	json_t *tree = NULL;
	sl_err rc = sm_definition_load(text, strlen(text), "t.yaml", fmt, &tree, pos, &p);
	cr_assert_eq(rc, SL_OK, "load failed: %s", p.count ? p.items[0].message : "?");
	cr_assert_eq(p.count, 0);
	sm_problems_clear(&p);
	return tree;
}

/* Loads text expecting failure; returns the first problem's "location: message". */
static char *
load_fail(const char *text, enum sm_format fmt, sl_err want)
{
	struct sm_problems p = { 0 };
	json_t *tree = NULL;
	struct sm_positions *pos = NULL;
	sl_err rc = sm_definition_load(text, strlen(text), "t.yaml", fmt, &tree, &pos, &p);
	cr_assert_eq(rc, want, "got %s", sl_err_name(rc));
	cr_assert_null(tree);
	cr_assert_null(pos);
	cr_assert_geq(p.count, 1);
	char *s = sl_asprintf("%s: %s", p.items[0].location, p.items[0].message);
	sm_problems_clear(&p);
	return s;
}

static json_t *
yaml_value(const char *scalar)
{
	char *text = sl_asprintf("v: %s\n", scalar);
	json_t *tree = load_ok(text, SM_FORMAT_YAML, NULL);
	sl_free(text);
	json_t *v = json_incref(json_object_get(tree, "v"));
	json_decref(tree);
	return v;
}

TestSuite(sm_load, .init = sl_alloc_init);

Test(sm_load, yaml_core_schema_booleans_and_nulls)
{
	const char *trues[] = { "true", "True", "TRUE" };
	for (size_t i = 0; i < 3; i++) {
		json_t *v = yaml_value(trues[i]);
		cr_assert(json_is_true(v), "%s must be true", trues[i]);
		json_decref(v);
	}
	json_t *v = yaml_value("FALSE");
	cr_assert(json_is_false(v));
	json_decref(v);
	const char *nulls[] = { "null", "Null", "NULL", "~", "" };
	for (size_t i = 0; i < 5; i++) {
		v = yaml_value(nulls[i]);
		cr_assert(json_is_null(v), "'%s' must be null", nulls[i]);
		json_decref(v);
	}
}

Test(sm_load, yaml_11_words_stay_strings)
{
	/* YAML 1.1 read these as booleans; 1.2 core does not */
	const char *words[] = { "yes", "no", "on", "off", "y", "n", "Yes", "ON" };
	for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
		json_t *v = yaml_value(words[i]);
		cr_assert(json_is_string(v), "%s must stay a string", words[i]);
		cr_assert_str_eq(json_string_value(v), words[i]);
		json_decref(v);
	}
}

Test(sm_load, yaml_numbers_follow_12)
{
	json_t *v = yaml_value("010"); /* 1.2 core: decimal ten, not octal eight */
	cr_assert(json_is_integer(v));
	cr_assert_eq(json_integer_value(v), 10);
	json_decref(v);
	v = yaml_value("0o17");
	cr_assert_eq(json_integer_value(v), 15);
	json_decref(v);
	v = yaml_value("0x1F");
	cr_assert_eq(json_integer_value(v), 31);
	json_decref(v);
	v = yaml_value("-42");
	cr_assert_eq(json_integer_value(v), -42);
	json_decref(v);
	v = yaml_value("1_000"); /* no digit separators in 1.2 */
	cr_assert(json_is_string(v));
	cr_assert_str_eq(json_string_value(v), "1_000");
	json_decref(v);
	v = yaml_value("1.5e3");
	cr_assert(json_is_real(v));
	cr_assert_float_eq(json_real_value(v), 1500.0, 1e-9);
	json_decref(v);
	v = yaml_value(".5");
	cr_assert_float_eq(json_real_value(v), 0.5, 1e-12);
	json_decref(v);
	v = yaml_value("0b101"); /* binary was 1.1 only */
	cr_assert(json_is_string(v));
	json_decref(v);
	v = yaml_value("12:30:00"); /* sexagesimal was 1.1 only */
	cr_assert(json_is_string(v));
	json_decref(v);
	v = yaml_value("2016-03-14T01:59:00Z"); /* no timestamp type: stays text */
	cr_assert_str_eq(json_string_value(v), "2016-03-14T01:59:00Z");
	json_decref(v);
}

Test(sm_load, yaml_quoted_scalars_stay_strings)
{
	const char *quoted[] = { "'true'", "\"null\"", "'010'", "\"1.5\"", "''", "'~'" };
	const char *want[] = { "true", "null", "010", "1.5", "", "~" };
	for (size_t i = 0; i < sizeof quoted / sizeof *quoted; i++) {
		json_t *v = yaml_value(quoted[i]);
		cr_assert(json_is_string(v), "%s must be a string", quoted[i]);
		cr_assert_str_eq(json_string_value(v), want[i]);
		json_decref(v);
	}
	json_t *v = yaml_value("|\n  block\n");
	cr_assert_str_eq(json_string_value(v), "block\n");
	json_decref(v);
}

Test(sm_load, yaml_explicit_tags)
{
	json_t *v = yaml_value("!!float 3");
	cr_assert(json_is_real(v));
	json_decref(v);
	v = yaml_value("!!str 'x'");
	cr_assert_str_eq(json_string_value(v), "x");
	json_decref(v);
	char *e = load_fail("v: !!int abc\n", SM_FORMAT_YAML, SL_ERR_PARSE);
	cr_assert_str_eq(e,
	                 "t.yaml:1:4: SCHEMA_VALIDATION_FAILED: 'abc': value does not match "
	                 "its tag");
	sl_free(e);
	e = load_fail("v: !Ref Other\n", SM_FORMAT_YAML, SL_ERR_PARSE);
	cr_assert_str_eq(e, "t.yaml:1:4: SCHEMA_VALIDATION_FAILED: unsupported YAML tag '!Ref'");
	sl_free(e);
}

Test(sm_load, yaml_unrepresentable_numbers_are_errors)
{
	char *e = load_fail("a: 1\nv: .inf\n", SM_FORMAT_YAML, SL_ERR_PARSE);
	cr_assert_str_eq(e,
	                 "t.yaml:2:4: SCHEMA_VALIDATION_FAILED: '.inf': infinity and NaN "
	                 "cannot be represented in JSON");
	sl_free(e);
	e = load_fail("v: 99999999999999999999\n", SM_FORMAT_YAML, SL_ERR_PARSE);
	cr_assert_str_eq(e,
	                 "t.yaml:1:4: SCHEMA_VALIDATION_FAILED: '99999999999999999999': "
	                 "integer is out of range");
	sl_free(e);
}

Test(sm_load, yaml_anchors_expand)
{
	json_t *t = load_ok("base: &b {Type: Pass, End: true}\ncopy: *b\n", SM_FORMAT_YAML, NULL);
	cr_assert(json_equal(json_object_get(t, "base"), json_object_get(t, "copy")));
	/* copies, not shared nodes: changing one leaves the other */
	json_object_set_new(json_object_get(t, "copy"), "End", json_false());
	cr_assert(json_is_true(json_object_get(json_object_get(t, "base"), "End")));
	json_decref(t);
}

Test(sm_load, yaml_alias_bomb_is_capped)
{
	const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	                   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	                   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	                   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	                   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	                   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	                   "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
	                   "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
	                   "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
	char *e = load_fail(bomb, SM_FORMAT_YAML, SL_ERR_LIMIT);
	cr_assert(strstr(e, "document expands to more than 100000 nodes"), "%s", e);
	sl_free(e);
	/* a lower cap applies as given */
	struct sm_load_options o = { .format = SM_FORMAT_YAML, .max_nodes = 20 };
	struct sm_problems p = { 0 };
	json_t *tree = NULL;
	const char *small = "a: &a [1, 2, 3, 4, 5]\nb: [*a, *a, *a, *a]\n";
	cr_assert_eq(sm_definition_load_ex(small, strlen(small), NULL, &o, &tree, NULL, &p),
	             SL_ERR_LIMIT);
	/* located at the anchored node being copied when the budget ran out */
	cr_assert_str_eq(p.items[0].location, "1:4");
	sm_problems_clear(&p);
}

Test(sm_load, yaml_self_referencing_alias_is_refused)
{
	/* libyaml's loader links the alias to its own enclosing node: the depth cap stops
	 * the expansion with a clean error instead of a hang */
	char *e = load_fail("a: &a [1, *a]\n", SM_FORMAT_YAML, SL_ERR_LIMIT);
	cr_assert_str_eq(e,
	                 "t.yaml:1:8: SCHEMA_VALIDATION_FAILED: nesting deeper than 128 levels "
	                 "(or an alias that contains itself)");
	sl_free(e);
}

Test(sm_load, yaml_duplicate_keys)
{
	char *e = load_fail("StartAt: A\nStates:\n  A: {Type: Pass, End: true}\n  A: {}\n",
	                    SM_FORMAT_YAML, SL_ERR_PARSE);
	cr_assert_str_eq(e, "t.yaml:4:3: SCHEMA_VALIDATION_FAILED: duplicate key 'A'");
	sl_free(e);
}

Test(sm_load, json_duplicate_keys)
{
	char *e = load_fail("{\"a\": 1,\n \"a\": 2}", SM_FORMAT_JSON, SL_ERR_PARSE);
	cr_assert(strstr(e, "t.yaml:2:") == e, "%s", e);
	cr_assert(strstr(e, "INVALID_JSON_DESCRIPTION: duplicate object key"), "%s", e);
	sl_free(e);
}

Test(sm_load, yaml_multi_document)
{
	const char *two = "a: 1\n---\nb: 2\n";
	char *e = load_fail(two, SM_FORMAT_YAML, SL_ERR_PARSE);
	cr_assert_str_eq(e,
	                 "t.yaml:3:1: SCHEMA_VALIDATION_FAILED: more than one YAML document; a "
	                 "definition is one document");
	sl_free(e);
	struct sm_load_options o = { .format = SM_FORMAT_YAML, .multi_document = true };
	struct sm_problems p = { 0 };
	json_t *tree = NULL;
	struct sm_positions *pos = NULL;
	cr_assert_eq(sm_definition_load_ex(two, strlen(two), NULL, &o, &tree, &pos, &p), SL_OK);
	cr_assert(json_is_array(tree));
	cr_assert_eq(json_array_size(tree), 2);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(tree, 1), "b")), 2);
	unsigned line, col;
	cr_assert(sm_positions_find(pos, "/1/b", &line, &col));
	cr_assert_eq(line, 3);
	cr_assert_eq(col, 4);
	json_decref(tree);
	sm_positions_free(pos);
	sm_problems_clear(&p);
}

Test(sm_load, yaml_positions)
{
	struct sm_positions *pos = NULL;
	json_t *t = load_ok("StartAt: A\n"
	                    "States:\n"
	                    "  A:\n"
	                    "    Type: Pass\n"
	                    "    Result: [1, {x: 2}]\n"
	                    "    End: true\n",
	                    SM_FORMAT_YAML, &pos);
	unsigned line = 0, col = 0;
	cr_assert(sm_positions_find(pos, "/States/A/Type", &line, &col));
	cr_assert_eq(line, 4);
	cr_assert_eq(col, 11);
	cr_assert(sm_positions_find_key(pos, "/States/A/Type", &line, &col));
	cr_assert_eq(line, 4);
	cr_assert_eq(col, 5);
	cr_assert(sm_positions_find(pos, "/States/A/Result/1/x", &line, &col));
	cr_assert_eq(line, 5);
	cr_assert_eq(col, 21);
	/* a missing member falls back to the nearest ancestor */
	cr_assert(sm_positions_find(pos, "/States/A/Next", &line, &col));
	cr_assert_eq(line, 4);
	cr_assert_eq(col, 5);
	cr_assert_str_eq(sm_positions_filename(pos), "t.yaml");
	json_decref(t);
	sm_positions_free(pos);
}

Test(sm_load, json_positions_and_pointer_escapes)
{
	struct sm_positions *pos = NULL;
	json_t *t = load_ok("{\n"
	                    "  \"StartAt\": \"a/b\",\n"
	                    "  \"States\": {\n"
	                    "    \"a/b\": {\"Type\": \"Pass\", \"End\": true},\n"
	                    "    \"t~\\u00e9\": {\"Type\": \"Succeed\"}\n"
	                    "  }\n"
	                    "}\n",
	                    SM_FORMAT_AUTO, &pos);
	unsigned line = 0, col = 0;
	cr_assert(sm_positions_find(pos, "/States/a~1b/End", &line, &col));
	cr_assert_eq(line, 4);
	cr_assert_eq(col, 36);
	cr_assert(sm_positions_find_key(pos, "/States/a~1b", &line, &col));
	cr_assert_eq(line, 4);
	cr_assert_eq(col, 5);
	cr_assert(sm_positions_find(pos, "/States/t~0\xc3\xa9/Type", &line, &col));
	cr_assert_eq(line, 5);
	cr_assert_eq(col, 26);
	json_decref(t);
	sm_positions_free(pos);
}

Test(sm_load, malformed_text_has_a_position)
{
	char *e = load_fail("StartAt: A\nStates: [unclosed\n", SM_FORMAT_YAML, SL_ERR_PARSE);
	cr_assert(strstr(e, "t.yaml:3:1: INVALID_YAML_DESCRIPTION: ") == e, "%s", e);
	sl_free(e);
	e = load_fail("{\"StartAt\": }", SM_FORMAT_JSON, SL_ERR_PARSE);
	cr_assert(strstr(e, "t.yaml:1:") == e && strstr(e, "INVALID_JSON_DESCRIPTION: "), "%s", e);
	sl_free(e);
	e = load_fail("   \n", SM_FORMAT_AUTO, SL_ERR_PARSE);
	cr_assert_str_eq(e, "/: SCHEMA_VALIDATION_FAILED: the definition is empty");
	sl_free(e);
	e = load_fail("[1, 2] x", SM_FORMAT_AUTO, SL_ERR_PARSE);
	cr_assert(strstr(e, "INVALID_JSON_DESCRIPTION"), "%s", e);
	sl_free(e);
}

Test(sm_load, non_scalar_keys_and_too_large)
{
	char *e = load_fail("? [a, b]\n: 1\n", SM_FORMAT_YAML, SL_ERR_PARSE);
	cr_assert_str_eq(e, "t.yaml:1:3: SCHEMA_VALIDATION_FAILED: mapping keys must be scalars");
	sl_free(e);
	size_t n = SM_DEFINITION_MAX_BYTES + 10;
	char *big = sl_malloc(n + 1);
	memset(big, ' ', n);
	big[n] = '\0';
	e = load_fail(big, SM_FORMAT_AUTO, SL_ERR_TOO_LARGE);
	cr_assert(strstr(e, "more than the limit of 1048576 bytes"), "%s", e);
	sl_free(e);
	sl_free(big);
}

Test(sm_load, deep_nesting_is_capped)
{
	char buf[2048];
	size_t n = 0;
	for (int i = 0; i < 200; i++)
		buf[n++] = '[';
	for (int i = 0; i < 200; i++)
		buf[n++] = ']';
	buf[n] = '\0';
	char *e = load_fail(buf, SM_FORMAT_YAML, SL_ERR_LIMIT);
	cr_assert(strstr(e, "nesting deeper than 128 levels"), "%s", e);
	sl_free(e);
}

Test(sm_load, out_of_memory_is_clean)
{
	const char *text = "StartAt: A\nStates:\n  A: {Type: Pass, Result: &r [1, 2], End: true}\n"
	                   "x: *r\n";
	/* walk the failure point through every allocation the loader makes */
	for (long n = 0; n < 400; n++) {
		struct sm_problems p = { 0 };
		json_t *tree = NULL;
		struct sm_positions *pos = NULL;
		sl_alloc_fail_after(n);
		sl_err rc = sm_definition_load(text, strlen(text), "f", SM_FORMAT_YAML, &tree, &pos,
		                               &p);
		sl_alloc_fail_after(-1);
		if (rc == SL_OK) {
			json_decref(tree);
			sm_positions_free(pos);
			sm_problems_clear(&p);
			return;
		}
		cr_assert_eq(rc, SL_ERR_NOMEM, "n=%ld: %s", n, sl_err_name(rc));
		cr_assert_null(tree);
		sm_problems_clear(&p);
	}
	cr_assert_fail("the loader never succeeded");
}

Test(sm_load, hostile_bytes_are_refused_cleanly)
{
	const struct {
		const char *text;
		size_t len;
		enum sm_format fmt;
	} cases[] = {
		{ "{\"a\": \"x\0y\"}", 12, SM_FORMAT_JSON },
		{ "a: \"x\0y\"\n", 9, SM_FORMAT_YAML },
		{ "{\"a\": \"\xff\xfe\"}", 11, SM_FORMAT_JSON },
		{ "a: \xc3\x28\n", 6, SM_FORMAT_YAML },
		{ "a: [", 4, SM_FORMAT_AUTO },
		{ "a: \"x\\0y\"\n", 10, SM_FORMAT_YAML },
		{ "\"a\\0b\": 1\n", 10, SM_FORMAT_YAML },
		{ "{\"a\": \"x\\u0000y\"}", 17, SM_FORMAT_JSON },
		{ "[3\0]", 4, SM_FORMAT_AUTO }, /* found by fuzz_definition */
		{ "[3\0]", 4, SM_FORMAT_JSON },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct sm_problems p = { 0 };
		json_t *tree = NULL;
		struct sm_positions *pos = NULL;
		sl_err rc = sm_definition_load(cases[i].text, cases[i].len, "h", cases[i].fmt,
		                               &tree, &pos, &p);
		cr_assert_eq(rc, SL_ERR_PARSE, "case %zu: %s", i, sl_err_name(rc));
		cr_assert_null(tree);
		cr_assert_geq(p.count, 1);
		cr_assert(strncmp(p.items[0].location, "h:", 2) == 0, "case %zu: %s", i,
		          p.items[0].location);
		sm_problems_clear(&p);
	}
}

Test(sm_load, byte_order_mark_is_accepted)
{
	const char *json = "\xef\xbb\xbf{\"StartAt\": \"A\"}";
	struct sm_problems p = { 0 };
	json_t *tree = NULL;
	sl_err rc = sm_definition_load(json, strlen(json), NULL, SM_FORMAT_AUTO, &tree, NULL, &p);
	cr_assert_eq(rc, SL_OK, "%s", p.count ? p.items[0].message : "");
	cr_assert_str_eq(json_string_value(json_object_get(tree, "StartAt")), "A");
	json_decref(tree);
	const char *yaml = "\xef\xbb\xbfStartAt: A\n";
	rc = sm_definition_load(yaml, strlen(yaml), NULL, SM_FORMAT_AUTO, &tree, NULL, &p);
	cr_assert_eq(rc, SL_OK);
	cr_assert_str_eq(json_string_value(json_object_get(tree, "StartAt")), "A");
	json_decref(tree);
}

Test(sm_load, auto_format_falls_back_to_flow_yaml)
{
	json_t *t = load_ok("{StartAt: A, States: {A: {Type: Pass, End: yes}}}", SM_FORMAT_AUTO,
	                    NULL);
	cr_assert_str_eq(json_string_value(json_object_get(t, "StartAt")), "A");
	json_decref(t);
	/* neither JSON nor YAML: the JSON diagnosis is reported */
	char *e = load_fail("{\"a\": [1, 2}", SM_FORMAT_AUTO, SL_ERR_PARSE);
	cr_assert(strstr(e, "INVALID_JSON_DESCRIPTION"), "%s", e);
	sl_free(e);
	/* an explicit JSON format does not fall back */
	e = load_fail("{StartAt: A}", SM_FORMAT_JSON, SL_ERR_PARSE);
	cr_assert(strstr(e, "INVALID_JSON_DESCRIPTION"), "%s", e);
	sl_free(e);
}
