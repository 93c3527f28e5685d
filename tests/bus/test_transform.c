/*
 * test_transform.c - target input shaping (bus/transform.h): Input, InputPath,
 * InputTransformer. The AWS-recorded cases are read at test time from
 * $SLUICE_SHARED/corpus/patterns/localstack-eventbridge-snapshots; the rest are edge cases.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/transform.h"
#include "common/sl_alloc.h"
#include "common/sl_err.h"

static void
setup(void)
{
	sl_alloc_init();
}

TestSuite(xform, .init = setup);

/* ---- helpers ---- */

static json_t *
parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	cr_assert_not_null(j, "test input is not JSON (%s): %s", je.text, text);
	return j;
}

static xform_t *
compile_ok(const char *target)
{
	json_t *t = parse(target);
	struct sl_error err;
	sl_error_clear(&err);
	xform_t *x = NULL;
	sl_err rc = xform_new(t, 1, &x, &err);
	cr_assert_eq(rc, SL_OK, "compile failed: %s\n%s", sl_error_text(&err), target);
	json_decref(t);
	return x;
}

/* Compiles a target that must fail; returns the message (static buffer). */
static const char *
compile_err(const char *target, sl_err want)
{
	static struct sl_error err;
	json_t *t = parse(target);
	sl_error_clear(&err);
	xform_t *x = NULL;
	sl_err rc = xform_new(t, 1, &x, &err);
	json_decref(t);
	cr_assert_eq(rc, want, "want %s, got %s (%s) for %s", sl_err_name(want), sl_err_name(rc),
	             sl_error_text(&err), target);
	cr_assert_null(x);
	return err.message;
}

static const struct xform_ctx default_ctx
        = { "arn:aws:events:us-east-1:123456789012:rule/r1", "r1", 1447277394000LL };

static char *
render_ok(const xform_t *x, const char *event)
{
	char *out = NULL;
	size_t n = 0;
	struct sl_error err;
	sl_err rc = xform_render(x, event, strlen(event), &default_ctx, &out, &n, &err);
	cr_assert_eq(rc, SL_OK, "render failed: %s", sl_error_text(&err));
	cr_assert_eq(strlen(out), n);
	return out;
}

static sl_err
render_rc(const xform_t *x, const char *event, char *msg, size_t cap)
{
	char *out = NULL;
	size_t n = 0;
	struct sl_error err;
	sl_error_clear(&err);
	sl_err rc = xform_render(x, event, strlen(event), &default_ctx, &out, &n, &err);
	if (rc == SL_OK)
		sl_free(out);
	else
		cr_assert_null(out);
	if (msg)
		snprintf(msg, cap, "%s", err.message);
	return rc;
}

/* One transformer target with the given paths map (JSON text) and template (C text). */
static xform_t *
transformer(const char *map, const char *tmpl)
{
	json_t *t = json_pack("{s:s, s:{s:s}}", "Id", "t1", "InputTransformer", "InputTemplate",
	                      tmpl);
	cr_assert_not_null(t);
	if (map)
		json_object_set_new(json_object_get(t, "InputTransformer"), "InputPathsMap",
		                    parse(map));
	struct sl_error err;
	xform_t *x = NULL;
	sl_err rc = xform_new(t, 1, &x, &err);
	json_decref(t);
	cr_assert_eq(rc, SL_OK, "compile failed: %s\ntemplate: %s", sl_error_text(&err), tmpl);
	return x;
}

static sl_err
transformer_err(const char *map, const char *tmpl, char *msg, size_t cap)
{
	json_t *t = json_pack("{s:s, s:{s:s}}", "Id", "t1", "InputTransformer", "InputTemplate",
	                      tmpl);
	if (map)
		json_object_set_new(json_object_get(t, "InputTransformer"), "InputPathsMap",
		                    parse(map));
	struct sl_error err;
	sl_error_clear(&err);
	xform_t *x = NULL;
	sl_err rc = xform_new(t, 1, &x, &err);
	json_decref(t);
	xform_free(x);
	if (msg)
		snprintf(msg, cap, "%s", err.message);
	return rc;
}

/* Renders map+template against event and compares with want exactly. */
static void
expect(const char *map, const char *tmpl, const char *event, const char *want)
{
	xform_t *x = transformer(map, tmpl);
	char *out = render_ok(x, event);
	cr_expect_str_eq(out, want, "template %s", tmpl);
	sl_free(out);
	xform_free(x);
}

/* ---- the AWS-recorded cases ---- */

static const char *test_detail = "{\"command\":\"update-account\",\"payload\":{\"acc_id\":"
                                 "\"0a787ecb-4015\",\"sf_id\":\"baz\"}}";
static const char *dup_detail
        = "{\"command\":\"update-account\",\"payload\":{\"acc_id\":"
          "\"0a787ecb-4015\",\"payload\":{\"message\":\"baz\",\"id\":\"123\"}}}";
static const char *special_detail
        = "{\"command\":\"update-account\",\"payload\":{\"acc_id\":\"0a787ecb-4015\","
          "\"sf_id\":\"baz\"},\"listsingle\":[\"HIGH\"],\"listmulti\":[\"ACTIVE\",\"INACTIVE\"],"
          "\"valid\":true}";

/* The envelope as the snapshots show it once their own placeholders are applied. */
static char *
envelope(const char *id, const char *detail)
{
	return sl_asprintf("{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":"
	                   "\"core.update-account-command\",\"source\":"
	                   "\"core.update-account-command\",\"account\":\"111111111111\","
	                   "\"time\":\"date\",\"region\":\"<region>\",\"resources\":[],"
	                   "\"detail\":%s}",
	                   id, detail);
}

/* The recorded snapshots replaced ISO timestamps by "date"; do the same to ours. */
static void
scrub_dates(char *s)
{
	for (char *p = s; *p; p++) {
		size_t n = strlen(p);
		if (n >= 20 && p[4] == '-' && p[7] == '-' && p[10] == 'T' && p[13] == ':'
		    && p[16] == ':' && p[19] == 'Z') {
			memcpy(p, "date", 4);
			memmove(p + 4, p + 20, n - 19);
		}
	}
}

/* Compares a rendering with a recorded SQS Body: a JSON body was recorded parsed, a text
 * body as the string itself. */
static void
check_body(const char *case_name, char *out, const json_t *body, const char *normalize_time)
{
	if (json_is_string(body)) {
		cr_expect_str_eq(out, json_string_value(body), "%s", case_name);
		return;
	}
	json_error_t je;
	json_t *got = json_loads(out, 0, &je);
	cr_assert_not_null(got, "%s: output is not JSON: %s", case_name, out);
	if (normalize_time) {
		json_t *oe = json_object_get(got, normalize_time);
		if (oe)
			json_object_set_new(oe, "time", json_string("<ingestion-time>"));
	}
	char *want = json_dumps(body, JSON_SORT_KEYS | JSON_COMPACT);
	char *have = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
	cr_expect(json_equal(got, (json_t *)body), "%s:\n want %s\n have %s", case_name, want,
	          have);
	free(want);
	free(have);
	json_decref(got);
}

static const json_t *
first_body(const json_t *recorded, const char *key)
{
	const json_t *list = json_object_get(recorded, key);
	cr_assert(json_is_array(list) && json_array_size(list) > 0, "no messages under %s", key);
	return json_object_get(json_array_get(list, 0), "Body");
}

static void
run_transformer_case(const char *name, const char *map, const char *tmpl, const char *detail,
                     const char *id, const struct xform_ctx *ctx, const json_t *body,
                     const char *normalize_time)
{
	xform_t *x = transformer(map, tmpl);
	char *ev = envelope(id, detail);
	char *out = NULL;
	size_t n;
	struct sl_error err;
	sl_err rc = xform_render(x, ev, strlen(ev), ctx, &out, &n, &err);
	cr_assert_eq(rc, SL_OK, "%s: %s", name, sl_error_text(&err));
	scrub_dates(out);
	check_body(name, out, body, normalize_time);
	sl_free(out);
	sl_free(ev);
	xform_free(x);
}

static void
run_path_case(const char *name, const char *target, const char *detail, const char *id,
              const json_t *body)
{
	xform_t *x = compile_ok(target);
	char *ev = envelope(id, detail);
	char *out = render_ok(x, ev);
	check_body(name, out, body, NULL);
	sl_free(out);
	sl_free(ev);
	xform_free(x);
}

/* The template of a parametrized case is its pytest id: the text between the brackets. */
static char *
param_of(const char *key)
{
	const char *lb = strchr(key, '[');
	size_t n = strlen(key);
	if (!lb || key[n - 1] != ']')
		return NULL;
	char *t = sl_strndup(lb + 1, (size_t)(key + n - 1 - lb - 1));
	/* pytest writes a newline of the parameter as the two characters \n */
	char *w = t;
	for (const char *r = t; *r; r++) {
		if (r[0] == '\\' && r[1] == 'n') {
			*w++ = '\n';
			r++;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
	return t;
}

/* "file::Class::test_x[param]" -> "test_x[param]" (the param may hold "::" too) */
static const char *
case_name(const char *key)
{
	const char *lb = strchr(key, '[');
	const char *name = key;
	for (const char *p = key; (p = strstr(p, "::")) && (!lb || p < lb); p += 2)
		name = p + 2;
	return name;
}

Test(xform, aws_recorded_snapshots)
{
	const char *shared = getenv("SLUICE_SHARED");
	if (!shared)
		cr_skip_test("SLUICE_SHARED is not set; the AWS-recorded cases live there");
	char path[1024];
	snprintf(path, sizeof path,
	         "%s/corpus/patterns/localstack-eventbridge-snapshots/"
	         "test_events_inputs.snapshot.json",
	         shared);
	json_error_t je;
	json_t *snap = json_load_file(path, 0, &je);
	if (!snap)
		cr_skip_test("missing %s (%s)", path, je.text);

	const char *map_all = "{\"detail-type\":\"$.detail-type\",\"timestamp\":\"$.time\","
	                      "\"command\":\"$.detail.command\"}";
	const char *map_missing = "{\"detail-type\":\"$.detail-type\",\"timestamp\":\"$.time\","
	                          "\"command\":\"$.detail.notinmessage\"}";
	const char *map_nested
	        = "{\"userId\":\"$.detail.payload.acc_id\",\"payload\":\"$.detail.payload\","
	          "\"systemstring\":\"$.detail.awsAccountId\",\"listsingle\":"
	          "\"$.detail.listsingle\",\"listmulti\":\"$.detail.listmulti\",\"valid\":"
	          "\"$.detail.valid\"}";
	const struct xform_ctx rec_ctx
	        = { "arn:<partition>:events:<region>:111111111111:rule/<bus-name>/<rule-name>",
		    "<rule-name>", 1721000000000LL };

	int ran = 0, empty = 0;
	const char *key;
	json_t *entry;
	json_object_foreach(snap, key, entry)
	{
		const json_t *rec = json_object_get(entry, "recorded-content");
		const char *name = case_name(key);
		if (json_object_size(rec) == 0) {
			empty++; /* a stale parametrization: AWS recorded nothing */
			continue;
		}
		char *param = param_of(key);
		if (strncmp(name, "test_put_events_with_input_path_nested", 38) == 0) {
			const char *d = strstr(name, "event_detail1") ? dup_detail : test_detail;
			run_path_case(name, "{\"Id\":\"t\",\"InputPath\":\"$.detail.payload\"}", d,
			              "<uuid:3>", first_body(rec, "message"));
		} else if (strcmp(name, "test_put_events_with_input_path_max_level_depth") == 0) {
			run_path_case(name,
			              "{\"Id\":\"t\",\"InputPath\":\"$.detail.payload.sf_id\"}",
			              test_detail, "<uuid:3>", first_body(rec, "message"));
		} else if (strcmp(name, "test_put_events_with_input_path_multiple_targets") == 0) {
			run_path_case(name, "{\"Id\":\"t1\",\"InputPath\":\"$.detail\"}",
			              test_detail, "<uuid:3>", first_body(rec, "message-queue-1"));
			run_path_case(name, "{\"Id\":\"t2\"}", test_detail, "<uuid:3>",
			              first_body(rec, "message-queue-2"));
		} else if (strcmp(name, "test_put_events_with_input_path") == 0) {
			run_path_case(name, "{\"Id\":\"t\",\"InputPath\":\"$.detail\"}",
			              test_detail, "<uuid:3>", first_body(rec, "message"));
		} else if (strncmp(name, "test_put_events_with_input_transformer_input_template_",
		                   54)
		           == 0) {
			const char *tmpl = param ? param
			        : strstr(name, "_json")
			        ? "{\"detailType\": <detail-type>,  \"time\": <timestamp>, "
			          "\"command\": <command>}"
			        : "\"Event of <detail-type> type, at time <timestamp>, info "
			          "extracted from detail <command>\"";
			run_transformer_case(name, map_all, tmpl, test_detail, "<uuid:3>", &rec_ctx,
			                     first_body(rec, "custom-variables-match-all"), NULL);
			run_transformer_case(
			        name, map_missing, tmpl, test_detail, "<uuid:3>", &rec_ctx,
			        first_body(rec, "custom-variables-not-match-all"), NULL);
		} else if (strcmp(name, "test_put_events_with_input_transformer_missing_keys") == 0
		           || strcmp(name, "test_put_event_input_path_and_input_transformer")
		                   == 0) {
			bool missing = strstr(name, "missing_keys") != NULL;
			const json_t *e
			        = json_object_get(rec,
			                          missing ? "missing-key-exception-error"
			                                  : "duplicated-input-operations-error");
			const json_t *error = json_object_get(e, "Error");
			json_t *t = json_pack(
			        "{s:s, s:s, s:{s:o, s:s}}", "Id", "<target-id>", "Arn",
			        "arn:aws:sqs:us-east-1:111111111111:q", "InputTransformer",
			        "InputPathsMap", parse(map_all), "InputTemplate",
			        missing ? "\"Event of <detail-type> type, with not defined key "
			                  "<notdefinedkey>\""
			                : "{\"detailType\": <detail-type>,  \"time\": <timestamp>, "
			                  "\"command\": <command>}");
			if (!missing)
				json_object_set_new(t, "InputPath", json_string("$.detail"));
			struct sl_error err;
			xform_t *x = NULL;
			sl_err rc = xform_new(t, 1, &x, &err);
			json_decref(t);
			cr_assert_neq(rc, SL_OK, "%s: compiled", name);
			cr_expect_str_eq(sl_err_aws_type(rc),
			                 json_string_value(json_object_get(error, "Code")));
			cr_expect_str_eq(err.message,
			                 json_string_value(json_object_get(error, "Message")));
			cr_expect_eq(
			        sl_err_http_status(rc),
			        json_integer_value(json_object_get(
			                json_object_get(e, "ResponseMetadata"), "HTTPStatusCode")));
		} else if (strcmp(name, "test_input_transformer_predefined_variables") == 0
		           || strncmp(name, "test_input_transformer_predefined_variables[", 44)
		                   == 0) {
			cr_assert_not_null(param, "%s", key);
			run_transformer_case(name, NULL, param, test_detail, "<uuid:2>", &rec_ctx,
			                     first_body(rec, "messages"), "originalEvent");
		} else if (strncmp(name, "test_input_transformer_nested_keys_replacement[", 47)
		           == 0) {
			cr_assert_not_null(param, "%s", key);
			run_transformer_case(name, map_nested, param, special_detail, "<uuid:3>",
			                     &rec_ctx,
			                     first_body(rec, "input-transformed-messages"), NULL);
		} else {
			cr_assert_fail("snapshot case not understood: %s", key);
		}
		sl_free(param);
		ran++;
	}
	json_decref(snap);
	/* 31 recorded entries, 4 of them empty: all 27 others must have been checked */
	cr_expect_eq(ran, 27, "ran %d AWS-recorded cases", ran);
	cr_expect_eq(empty, 4);
}

/* Targets AWS accepted at PutTargets and listed back (test_events.snapshot.json): an
 * InputPath that matches nothing is still a valid configuration. */
static int
compile_listed_targets(const json_t *v)
{
	int n = 0;
	if (json_is_object(v)) {
		const json_t *targets = json_object_get(v, "Targets");
		size_t i;
		const json_t *t;
		json_array_foreach(targets, i, t)
		{
			struct sl_error err;
			xform_t *x = NULL;
			cr_expect_eq(xform_new(t, (unsigned)i + 1, &x, &err), SL_OK, "%s",
			             sl_error_text(&err));
			xform_free(x);
			n++;
		}
		const char *k;
		json_t *m;
		json_object_foreach((json_t *)v, k, m)
		{
			if (strcmp(k, "Targets") != 0)
				n += compile_listed_targets(m);
		}
	} else if (json_is_array(v)) {
		size_t i;
		const json_t *m;
		json_array_foreach(v, i, m)
		{
			n += compile_listed_targets(m);
		}
	}
	return n;
}

Test(xform, aws_accepted_targets_compile)
{
	const char *shared = getenv("SLUICE_SHARED");
	if (!shared)
		cr_skip_test("SLUICE_SHARED is not set; the AWS-recorded cases live there");
	char path[1024];
	snprintf(path, sizeof path,
	         "%s/corpus/patterns/localstack-eventbridge-snapshots/test_events.snapshot.json",
	         shared);
	json_error_t je;
	json_t *snap = json_load_file(path, 0, &je);
	if (!snap)
		cr_skip_test("missing %s (%s)", path, je.text);
	int n = compile_listed_targets(snap);
	json_decref(snap);
	cr_expect_geq(n, 7, "only %d listed targets found", n);
}

/* The three templates LocalStack's AWS-validated test expects no delivery for. */
Test(xform, object_inside_string_of_json_template_is_not_delivered)
{
	const char *map
	        = "{\"userId\":\"$.detail.payload.acc_id\",\"payload\":\"$.detail.payload\","
	          "\"listsingle\":\"$.detail.listsingle\"}";
	const char *tmpls[] = {
		"{\"not_valid\": \"users-service/users/<payload>\", \"bod\": <payload>}",
		"{\"payload\": \"<payload>\"}",
		"{\"singlelistitem\": \"<listsingle>\"}",
	};
	char *ev = envelope("e1", special_detail);
	for (size_t i = 0; i < 3; i++) {
		xform_t *x = transformer(map, tmpls[i]);
		char msg[1024];
		cr_expect_eq(render_rc(x, ev, msg, sizeof msg), SL_ERR_INVALID_ARG, "%s", tmpls[i]);
		cr_expect(strstr(msg, "not be valid JSON") != NULL, "%s", msg);
		xform_free(x);
	}
	sl_free(ev);
}

/* ---- limits ---- */

static json_t *
map_of(int n)
{
	json_t *m = json_object();
	for (int i = 0; i < n; i++) {
		char k[16];
		snprintf(k, sizeof k, "v%d", i);
		json_object_set_new(m, k, json_string("$.detail.a"));
	}
	return m;
}

Test(xform, hundred_variables_accepted_hundred_and_one_refused)
{
	for (int n = 100; n <= 101; n++) {
		json_t *t = json_pack("{s:s, s:{s:o, s:s}}", "Id", "t1", "InputTransformer",
		                      "InputPathsMap", map_of(n), "InputTemplate",
		                      "{\"a\": <v0>, \"b\": \"<v99>\"}");
		struct sl_error err;
		xform_t *x = NULL;
		sl_err rc = xform_new(t, 3, &x, &err);
		json_decref(t);
		if (n == 100) {
			cr_assert_eq(rc, SL_OK, "%s", sl_error_text(&err));
			char *out = render_ok(x, "{\"detail\":{\"a\":7}}");
			cr_expect_str_eq(out, "{\"a\": 7, \"b\": \"7\"}");
			sl_free(out);
			xform_free(x);
		} else {
			cr_assert_eq(rc, SL_ERR_INVALID_ARG);
			cr_expect_str_eq(
			        err.message,
			        "1 validation error detected: Value at "
			        "'targets.3.member.inputTransformer.inputPathsMap' failed "
			        "to satisfy constraint: Member must have length less than or "
			        "equal to 100");
		}
	}
}

static char *
string_template(size_t chars, const char *unit)
{
	size_t ul = strlen(unit);
	char *s = sl_malloc(chars * ul + 1);
	cr_assert_not_null(s);
	s[0] = '"';
	size_t w = 1;
	for (size_t i = 1; i + 1 < chars; i++) {
		memcpy(s + w, unit, ul);
		w += ul;
	}
	s[w++] = '"';
	s[w] = 0;
	return s;
}

Test(xform, template_of_8192_characters_accepted_8193_refused)
{
	char msg[1024];
	char *t = string_template(8192, "a");
	cr_expect_eq(transformer_err(NULL, t, msg, sizeof msg), SL_OK, "%s", msg);
	sl_free(t);
	t = string_template(8193, "a");
	cr_expect_eq(transformer_err(NULL, t, msg, sizeof msg), SL_ERR_INVALID_ARG);
	cr_expect(strstr(msg,
	                 "'targets.1.member.inputTransformer.inputTemplate' failed to "
	                 "satisfy constraint: Member must have length less than or equal "
	                 "to 8192")
	                  != NULL,
	          "%s", msg);
	sl_free(t);
	/* characters, not bytes: 8192 two-byte characters fit */
	t = string_template(8192, "\xc3\xa9");
	cr_expect_eq(transformer_err(NULL, t, msg, sizeof msg), SL_OK, "%s", msg);
	sl_free(t);
	/* an astral character counts twice, as in UTF-16 */
	t = string_template(4098, "\xf0\x9f\x98\x80"); /* 2 + 2 * 4096 units */
	cr_expect_eq(transformer_err(NULL, t, msg, sizeof msg), SL_ERR_INVALID_ARG);
	sl_free(t);
	cr_expect_eq(transformer_err(NULL, "", msg, sizeof msg), SL_ERR_INVALID_ARG);
	cr_expect(strstr(msg, "Member must have length greater than or equal to 1") != NULL, "%s",
	          msg);
}

Test(xform, input_and_input_path_limits)
{
	char *big = sl_malloc(8200);
	big[0] = '"';
	memset(big + 1, 'x', 8190);
	big[8191] = '"';
	big[8192] = 0;
	json_t *t = json_pack("{s:s, s:s}", "Id", "t", "Input", big);
	struct sl_error err;
	xform_t *x = NULL;
	cr_expect_eq(xform_new(t, 1, &x, &err), SL_OK, "%s", err.message);
	xform_free(x);
	x = NULL;
	json_decref(t);
	memmove(big + 2, big + 1, 8192);
	big[1] = 'x'; /* 8193 characters */
	t = json_pack("{s:s, s:s}", "Id", "t", "Input", big);
	cr_expect_eq(xform_new(t, 2, &x, &err), SL_ERR_INVALID_ARG);
	cr_expect_str_eq(err.message,
	                 "1 validation error detected: Value at "
	                 "'targets.2.member.input' failed to satisfy constraint: "
	                 "Member must have length less than or equal to 8192");
	json_decref(t);
	sl_free(big);

	char path[300] = "$";
	for (int i = 1; i < 256; i++)
		path[i] = i % 2 ? '.' : 'a';
	path[255] = 'a';
	path[256] = 0;
	t = json_pack("{s:s, s:s}", "Id", "t", "InputPath", path);
	cr_expect_eq(xform_new(t, 1, &x, &err), SL_OK, "%s", err.message);
	xform_free(x);
	x = NULL;
	json_decref(t);
	strcat(path, "b");
	t = json_pack("{s:s, s:s}", "Id", "t", "InputPath", path);
	cr_expect_eq(xform_new(t, 1, &x, &err), SL_ERR_INVALID_ARG);
	cr_expect(strstr(err.message, "less than or equal to 256") != NULL, "%s", err.message);
	json_decref(t);
}

/* ---- variable names and placeholders ---- */

Test(xform, reserved_and_malformed_variable_names)
{
	char msg[1024];
	cr_expect_eq(transformer_err("{\"aws.events.rule-name\":\"$.detail\"}", "\"x\"", msg,
	                             sizeof msg),
	             SL_ERR_INVALID_ARG);
	cr_expect(strstr(msg, "reserved") != NULL, "%s", msg);
	cr_expect_eq(transformer_err("{\"AWS.x\":\"$.detail\"}", "\"x\"", msg, sizeof msg),
	             SL_ERR_INVALID_ARG);
	cr_expect_str_eq(msg,
	                 "1 validation error detected: Value 'AWS.x' at "
	                 "'targets.1.member.inputTransformer.inputPathsMap' failed to "
	                 "satisfy constraint: Map keys must satisfy constraint: [Member must "
	                 "satisfy regular expression pattern: [A-Za-z0-9\\_\\-]+]");
	cr_expect_eq(transformer_err("{\"a b\":\"$.detail\"}", "\"x\"", msg, sizeof msg),
	             SL_ERR_INVALID_ARG);
	cr_expect_eq(transformer_err("{\"\":\"$.detail\"}", "\"x\"", msg, sizeof msg),
	             SL_ERR_INVALID_ARG);
	/* dashes and underscores are fine (the recorded cases use detail-type) */
	cr_expect_eq(transformer_err("{\"a-b_C9\":\"$.detail\"}", "\"<a-b_C9>\"", msg, sizeof msg),
	             SL_OK, "%s", msg);
	/* the values must be strings */
	cr_expect_eq(transformer_err("{\"a\":5}", "\"x\"", msg, sizeof msg), SL_ERR_SERIALIZATION);
}

Test(xform, reserved_variables_need_no_map)
{
	const char *ev = "{\"version\":\"0\",\"id\":\"i1\",\"detail-type\":\"dt\",\"source\":\"s\","
	                 "\"account\":\"1\",\"time\":\"2015-11-11T21:29:54Z\",\"region\":\"r\","
	                 "\"resources\":[\"a\"],\"detail\":{\"k\":1},\"replay-name\":\"rp\"}";
	expect(NULL, "\"<aws.events.rule-name> triggered at <aws.events.event.ingestion-time>\"",
	       ev, "\"r1 triggered at 2015-11-11T21:29:54Z\"");
	expect(NULL, "{\"arn\": <aws.events.rule-arn>, \"n\": \"<aws.events.rule-name>\"}", ev,
	       "{\"arn\": \"arn:aws:events:us-east-1:123456789012:rule/r1\", \"n\": \"r1\"}");
	expect(NULL, "{\"e\": <aws.events.event>}", ev,
	       "{\"e\": {\"id\":\"i1\",\"account\":\"1\",\"detailType\":\"dt\",\"time\":"
	       "\"2015-11-11T21:29:54Z\",\"source\":\"s\",\"region\":\"r\",\"resources\":[\"a\"],"
	       "\"version\":\"0\",\"replay-name\":\"rp\"}}");
	expect(NULL, "[<aws.events.event.json>]", ev,
	       "[" /* the whole event, as written */
	       "{\"version\":\"0\",\"id\":\"i1\",\"detail-type\":\"dt\",\"source\":\"s\","
	       "\"account\":\"1\",\"time\":\"2015-11-11T21:29:54Z\",\"region\":\"r\","
	       "\"resources\":[\"a\"],\"detail\":{\"k\":1},\"replay-name\":\"rp\"}]");
	/* a rule name with a quote stays valid JSON */
	xform_t *x = transformer(
	        NULL, "{\"n\": <aws.events.rule-name>, \"s\": \"<aws.events.rule-name>\"}");
	struct xform_ctx c = { "a", "q\"\\\n", 0 };
	char *out = NULL;
	size_t n;
	cr_assert_eq(xform_render(x, ev, strlen(ev), &c, &out, &n, NULL), SL_OK);
	cr_expect_str_eq(out, "{\"n\": \"q\\\"\\\\\\n\", \"s\": \"q\\\"\\\\\\n\"}");
	sl_free(out);
	xform_free(x);
}

Test(xform, unknown_placeholder_and_literal_angle_brackets)
{
	char msg[1024];
	cr_expect_eq(transformer_err("{\"a\":\"$.detail\"}", "\"<a> <b>\"", msg, sizeof msg),
	             SL_ERR_INVALID_ARG);
	cr_expect_str_eq(msg, "InputTemplate for target t1 contains invalid placeholder b.");
	cr_expect_eq(transformer_err(NULL, "\"<aws.events.other>\"", msg, sizeof msg),
	             SL_ERR_INVALID_ARG);
	/* '<' that does not open a placeholder is text */
	expect("{\"a\":\"$.detail.a\"}", "\"1 < 2 and <a b> and x<>y and <a>\"",
	       "{\"detail\":{\"a\":\"v\"}}", "\"1 < 2 and <a b> and x<>y and v\"");
}

/* ---- values ---- */

static const char *rich_event
        = "{\"id\":\"e\",\"detail\":{\"s\":\"plain\",\"q\":"
          "\"a\\\"b\\\\c\\n\\u00e9\xc3\xa9\xf0\x9f\x98\x80\","
          "\"i\":-0,\"f\":0.1,\"big\":123456789012345678901234567890,\"exp\":1E+400,"
          "\"t\":true,\"fa\":false,\"nul\":null,\"obj\":{ \"k\" : [ 1, \"two\" ] , \"e\":{}},"
          "\"list\":[{\"id\":\"x1\",\"n\":1},{\"id\":\"x2\"},{\"n\":3}],\"empty\":[],"
          "\"a\":{\"b\":{\"c\":{\"d\":\"deep\"}}},\"dup\":1,\"dup\":2,\"k\\u0065y\":\"esc\"}}";

static const char *rich_map
        = "{\"s\":\"$.detail.s\",\"q\":\"$.detail.q\",\"i\":\"$.detail.i\",\"f\":\"$.detail.f\","
          "\"big\":\"$.detail.big\",\"exp\":\"$.detail.exp\",\"t\":\"$.detail.t\",\"fa\":"
          "\"$.detail.fa\",\"nul\":\"$.detail.nul\",\"obj\":\"$.detail.obj\",\"l1\":"
          "\"$.detail.list[1]\",\"l0id\":\"$.detail.list[0].id\",\"l9\":\"$.detail.list[9]\","
          "\"ids\":\"$.detail.list[*].id\",\"star\":\"$.detail.obj.*\",\"d\":\"$.detail.a.b.c.d\","
          "\"miss\":\"$.detail.nope.deeper\",\"dup\":\"$.detail.dup\",\"key\":\"$.detail.key\","
          "\"notobj\":\"$.detail.s.x\",\"whole\":\"$\"}";

Test(xform, json_template_values_keep_their_exact_text)
{
	expect(rich_map,
	       "{\"i\": <i>, \"f\": <f>, \"big\": <big>, \"exp\": <exp>, \"t\": <t>, \"fa\": <fa>, "
	       "\"nul\": <nul>, \"obj\": <obj>, \"miss\": <miss>, \"l9\": <l9>}",
	       rich_event,
	       "{\"i\": -0, \"f\": 0.1, \"big\": 123456789012345678901234567890, \"exp\": 1E+400, "
	       "\"t\": true, \"fa\": false, \"nul\": null, \"obj\": {\"k\":[1,\"two\"],\"e\":{}}, "
	       "\"miss\": \"\", \"l9\": \"\"}");
	expect(rich_map, "[<l1>, <l0id>, <ids>, <star>, <d>, <dup>, <key>, <notobj>]", rich_event,
	       "[{\"id\":\"x2\"}, \"x1\", [\"x1\",\"x2\"], [[1,\"two\"],{}], \"deep\", 2, \"esc\", "
	       "\"\"]");
}

Test(xform, strings_inside_json_strings_stay_escaped)
{
	xform_t *x
	        = transformer(rich_map, "{\"msg\": \"s=<s> q=<q> i=<i> t=<t> n=<nul> m=<miss>.\"}");
	char *out = render_ok(x, rich_event);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	cr_assert_not_null(j, "not JSON: %s", out);
	cr_expect_str_eq(
	        json_string_value(json_object_get(j, "msg")),
	        "s=plain q=a\"b\\c\n\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80 i=-0 t=true n=null m=.");
	json_decref(j);
	sl_free(out);
	xform_free(x);
}

Test(xform, string_template_versus_json_template)
{
	/* quoted string template: contents escaped as in the event, objects without quotes */
	expect(rich_map, "\"<s> <q> <obj> <ids> <f>\"", rich_event,
	       "\"plain a\\\"b\\\\c\\n\\u00e9\xc3\xa9\xf0\x9f\x98\x80 {k:[1,two],e:{}} [x1,x2] "
	       "0.1\"");
	/* the same placeholder bare in a JSON template is the JSON value */
	expect(rich_map, "{\"v\": <s>, \"o\": <obj>}", rich_event,
	       "{\"v\": \"plain\", \"o\": {\"k\":[1,\"two\"],\"e\":{}}}");
	/* an unquoted string template is plain text: values unescaped */
	expect(rich_map, "<s> is <q>; <obj>", rich_event,
	       "plain is a\"b\\c\n\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80; {k:[1,two],e:{}}");
	/* escaped quotes in the template are kept, placeholders inside them still work */
	expect(rich_map, "\"instance \\\"<s>\\\" is in <t>\"", rich_event,
	       "\"instance \\\"plain\\\" is in true\"");
	/* missing values are empty in text */
	expect(rich_map, "\"[<miss>]\"", rich_event, "\"[]\"");
}

Test(xform, input_path_and_constant_input)
{
	xform_t *x = compile_ok("{\"Id\":\"t\",\"InputPath\":\"$.detail.obj\"}");
	char *out = render_ok(x, rich_event);
	cr_expect_str_eq(out, "{\"k\":[1,\"two\"],\"e\":{}}");
	sl_free(out);
	cr_expect_eq(xform_kind(x), XFORM_INPUT_PATH);
	xform_free(x);

	x = compile_ok("{\"Id\":\"t\",\"InputPath\":\"$.detail.nothing\"}");
	char msg[512];
	cr_expect_eq(render_rc(x, rich_event, msg, sizeof msg), SL_ERR_NOT_FOUND);
	cr_expect(strstr(msg, "$.detail.nothing") != NULL, "%s", msg);
	xform_free(x);

	x = compile_ok("{\"Id\":\"t\",\"InputPath\":\"$\"}");
	out = render_ok(x, "  {\"a\" : 1}  ");
	cr_expect_str_eq(out, "{\"a\":1}");
	sl_free(out);
	xform_free(x);

	x = compile_ok("{\"Id\":\"t\",\"Input\":\"{\\\"fixed\\\": [1, 2]}\"}");
	cr_expect_eq(xform_kind(x), XFORM_INPUT);
	out = render_ok(x, rich_event);
	cr_expect_str_eq(out, "{\"fixed\": [1, 2]}");
	sl_free(out);
	xform_free(x);

	x = compile_ok("{\"Id\":\"t\",\"Input\":null,\"InputPath\":null}");
	cr_expect_eq(xform_kind(x), XFORM_EVENT);
	out = render_ok(x, rich_event);
	cr_expect_str_eq(out, rich_event);
	sl_free(out);
	xform_free(x);

	const char *m = compile_err("{\"Id\":\"t\",\"Input\":\"{not json\"}", SL_ERR_INVALID_ARG);
	cr_expect_str_eq(m,
	                 "Input for target t is not valid JSON text: expected a quoted member "
	                 "name at line 1, column 2.");
	compile_err("{\"Id\":\"t\",\"Input\":{\"a\":1}}", SL_ERR_SERIALIZATION);
	m = compile_err(
	        "{\"Id\":\"t\",\"Input\":\"1\",\"InputTransformer\":{\"InputTemplate\":\"x\"}}",
	        SL_ERR_INVALID_ARG);
	cr_expect_str_eq(m,
	                 "Only one of Input, InputPath, or InputTransformer must be provided "
	                 "for target t.");
}

Test(xform, malformed_paths)
{
	const char *bad[]
	        = { "detail.a",        "$.", "$..a", "$.a[", "$.a[x]", "$.a['b']", "$.a b", "$a",
		    "$.a[1234567890]", "" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char t[128];
		snprintf(t, sizeof t, "{\"Id\":\"t\",\"InputPath\":\"%s\"}", bad[i]);
		const char *m = compile_err(t, SL_ERR_INVALID_ARG);
		cr_expect(strstr(m, "is not a valid JSON path: expected") != NULL, "%s", m);
	}
	xform_free(compile_ok("{\"Id\":\"t\",\"InputPath\":\"$.detail.a-b_c/d[0][*].*\"}"));
}

Test(xform, malformed_templates)
{
	char msg[1024];
	const char *map = "{\"v\":\"$.detail\"}";
	cr_expect_eq(transformer_err(map, "{\"a\": <v>", msg, sizeof msg), SL_ERR_INVALID_ARG);
	cr_expect_str_eq(msg,
	                 "InputTemplate for target t1 is not valid JSON: expected ',' or '}' "
	                 "at line 1, column 10.");
	cr_expect_eq(transformer_err(map, "{\n  \"a\": <v>,\n  \"b\" 1\n}", msg, sizeof msg),
	             SL_ERR_INVALID_ARG);
	cr_expect(strstr(msg, "expected ':' after a member name at line 3, column 7") != NULL, "%s",
	          msg);
	cr_expect_eq(transformer_err(map, "{<v>: 1}", msg, sizeof msg), SL_ERR_INVALID_ARG);
	cr_expect(strstr(msg, "as an object key") != NULL, "%s", msg);
	cr_expect_eq(transformer_err(map, "{\"k<v>\" : 1}", msg, sizeof msg), SL_ERR_INVALID_ARG);
	cr_expect(strstr(msg, "in an object key") != NULL, "%s", msg);
	cr_expect_eq(transformer_err(map, "{\"a\": \"<aws.events.event>\"}", msg, sizeof msg),
	             SL_ERR_INVALID_ARG);
	cr_expect(strstr(msg, "only be used as a JSON value") != NULL, "%s", msg);
	cr_expect_eq(transformer_err(map, "[<v>, ]", msg, sizeof msg), SL_ERR_INVALID_ARG);
	cr_expect_eq(transformer_err(map, "{\"a\": <v> <v>}", msg, sizeof msg), SL_ERR_INVALID_ARG);
	cr_expect_eq(transformer_err(map, "{\"a\": 1} trailing", msg, sizeof msg),
	             SL_ERR_INVALID_ARG);
	/* a string template may be anything non-empty */
	cr_expect_eq(transformer_err(map, "\"unterminated <v>", msg, sizeof msg), SL_OK, "%s", msg);
	/* wrong shapes */
	json_t *t = parse("{\"Id\":\"t\",\"InputTransformer\":{\"InputPathsMap\":{}}}");
	struct sl_error err;
	xform_t *x = NULL;
	cr_expect_eq(xform_new(t, 1, &x, &err), SL_ERR_INVALID_ARG);
	cr_expect_str_eq(err.message,
	                 "1 validation error detected: Value null at "
	                 "'targets.1.member.inputTransformer.inputTemplate' failed to "
	                 "satisfy constraint: Member must not be null");
	json_decref(t);
	compile_err("{\"Id\":\"t\",\"InputTransformer\":\"x\"}", SL_ERR_SERIALIZATION);
	compile_err("{\"Id\":\"t\",\"InputTransformer\":{\"InputTemplate\":3}}",
	            SL_ERR_SERIALIZATION);
	compile_err("{\"Id\":\"t\",\"InputTransformer\":{\"InputTemplate\":\"x\","
	            "\"InputPathsMap\":[]}}",
	            SL_ERR_SERIALIZATION);
	compile_err("[1]", SL_ERR_SERIALIZATION);
}

Test(xform, hostile_events_are_refused_cleanly)
{
	xform_t *x = transformer("{\"v\":\"$.detail\"}", "{\"a\": <v>}");
	const char *bad[] = { "",
		              "   ",
		              "{\"detail\":",
		              "[1]",
		              "\"s\"",
		              "{\"a\":1}x",
		              "{\"a\":\"\x01\"}",
		              "{\"a\":\"\xff\"}",
		              "{\"a\":\"\\x\"}",
		              "{\"a\":01}",
		              "{\"a\":tru}",
		              "{\"a\":\"\\u12\"}",
		              "{'a':1}" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect_eq(render_rc(x, bad[i], NULL, 0), SL_ERR_PARSE, "event %zu", i);
	/* nesting deeper than the scanner allows */
	size_t depth = 5000;
	char *deep = sl_malloc(depth * 2 + 16);
	size_t w = 0;
	w += (size_t)sprintf(deep, "{\"detail\":");
	for (size_t i = 0; i < depth; i++)
		deep[w++] = '[';
	for (size_t i = 0; i < depth; i++)
		deep[w++] = ']';
	deep[w++] = '}';
	deep[w] = 0;
	char msg[512];
	cr_expect_eq(render_rc(x, deep, msg, sizeof msg), SL_ERR_PARSE);
	cr_expect(strstr(msg, "nesting") != NULL, "%s", msg);
	sl_free(deep);
	/* a NULL event */
	char *out = NULL;
	size_t n;
	cr_expect_eq(xform_render(x, NULL, 0, NULL, &out, &n, NULL), SL_ERR_PARSE);
	xform_free(x);
	xform_free(NULL);
}

/* ---- out of memory ---- */

Test(xform, oom_walk_over_compile_and_render)
{
	json_t *t = parse("{\"Id\":\"t\",\"InputTransformer\":{\"InputPathsMap\":{\"a\":"
	                  "\"$.detail.obj\",\"b\":\"$.detail.list[*].id\",\"c\":\"$.detail.s\"},"
	                  "\"InputTemplate\":\"{\\\"x\\\": <a>, \\\"y\\\": <b>, \\\"z\\\": "
	                  "\\\"<c> <aws.events.rule-name>\\\", \\\"e\\\": <aws.events.event>}\"}}");
	xform_t *x = NULL;
	int failures = 0;
	for (long n = 0;; n++) {
		struct sl_error err;
		sl_alloc_fail_after(n);
		sl_err rc = xform_new(t, 1, &x, &err);
		sl_alloc_fail_after(-1);
		if (rc == SL_OK)
			break;
		cr_assert_eq(rc, SL_ERR_NOMEM, "allocation %ld: %s", n, sl_error_text(&err));
		cr_assert_null(x);
		failures++;
		cr_assert_lt(n, 10000);
	}
	cr_expect_gt(failures, 5, "the walk must have failed some allocations");
	json_decref(t);

	char *want = render_ok(x, rich_event);
	failures = 0;
	for (long n = 0;; n++) {
		char *out = NULL;
		size_t len;
		struct sl_error err;
		sl_alloc_fail_after(n);
		sl_err rc = xform_render(x, rich_event, strlen(rich_event), &default_ctx, &out,
		                         &len, &err);
		sl_alloc_fail_after(-1);
		if (rc == SL_OK) {
			cr_expect_str_eq(out, want);
			sl_free(out);
			break;
		}
		cr_assert_eq(rc, SL_ERR_NOMEM, "allocation %ld: %s", n, sl_error_text(&err));
		cr_assert_null(out);
		failures++;
		cr_assert_lt(n, 10000);
	}
	cr_expect_gt(failures, 0);
	sl_free(want);
	xform_free(x);
}

/* ---- properties over mutated inputs ---- */

static uint32_t
next_rand(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Overwrites 1 to 3 bytes; `bytes` also draws a control byte and a lone UTF-8 lead byte
 * (a template arrives through jansson, which already refuses those). */
static void
mutate(char *s, size_t n, uint32_t *seed, bool bytes)
{
	static const char alphabet[] = "{}[]\":,\\<>.$ 0a-eE+\x01\xc3";
	size_t m = sizeof alphabet - 1 - (bytes ? 0 : 2);
	int edits = 1 + (int)(next_rand(seed) % 3);
	for (int i = 0; i < edits && n; i++)
		s[next_rand(seed) % n] = alphabet[next_rand(seed) % m];
}

/* A JSON template's successful output is always JSON, whatever the event; a broken event
 * is always SL_ERR_PARSE, never a crash. */
Test(xform, mutated_events_yield_json_or_a_parse_error)
{
	const char *ev0 = "{\"id\":\"e\",\"detail\":{\"s\":\"a\\\"b\",\"n\":[1,2.5,{\"x\":null}],"
	                  "\"o\":{\"k\":\"v\",\"t\":true}},\"time\":\"2020-01-01T00:00:00Z\"}";
	xform_t *x = transformer("{\"s\":\"$.detail.s\",\"n\":\"$.detail.n\",\"o\":\"$.detail.o\","
	                         "\"w\":\"$.detail.n[*]\",\"k\":\"$.detail.o.k\"}",
	                         "{\"a\": <s>, \"b\": [<n>, <w>], \"c\": <o>, \"d\": \"<s> <k>\", "
	                         "\"e\": <aws.events.event>, \"f\": <aws.events.event.json>}");
	uint32_t seed = 12345;
	size_t n = strlen(ev0);
	char *ev = sl_malloc(n + 1);
	int ok = 0, parse = 0;
	for (int i = 0; i < 3000; i++) {
		memcpy(ev, ev0, n + 1);
		mutate(ev, n, &seed, true);
		char *out = NULL;
		size_t len;
		sl_err rc = xform_render(x, ev, n, &default_ctx, &out, &len, NULL);
		cr_assert(rc == SL_OK || rc == SL_ERR_PARSE, "rc %s for %s", sl_err_name(rc), ev);
		if (rc != SL_OK) {
			parse++;
			continue;
		}
		ok++;
		json_error_t je;
		json_t *in = json_loads(ev, 0, &je);
		cr_assert_not_null(in, "rendered an event jansson refuses: %s", ev);
		json_decref(in);
		json_t *j = json_loads(out, 0, &je);
		cr_assert_not_null(j, "output is not JSON (%s):\n%s\nevent: %s", je.text, out, ev);
		json_decref(j);
		sl_free(out);
	}
	cr_expect_gt(ok, 100);
	cr_expect_gt(parse, 100);
	sl_free(ev);
	xform_free(x);
}

/* Mutated templates either compile or are refused with a ValidationException; what
 * compiles renders to JSON (JSON template) or is refused as not deliverable. */
Test(xform, mutated_templates_compile_or_are_refused)
{
	const char *t0 = "{\"a\": <s>, \"b\": [<n>, \"x<k>y\"], \"c\": {\"d\": <o>}}";
	const char *map = "{\"s\":\"$.detail.s\",\"n\":\"$.detail.n\",\"o\":\"$.detail.o\","
	                  "\"k\":\"$.detail.o.k\"}";
	const char *ev = "{\"detail\":{\"s\":\"a\\\"b\",\"n\":[1,2],\"o\":{\"k\":\"v\"}}}";
	uint32_t seed = 777;
	size_t n = strlen(t0);
	char *t = sl_malloc(n + 1);
	int compiled = 0, refused = 0;
	for (int i = 0; i < 3000; i++) {
		memcpy(t, t0, n + 1);
		mutate(t, n, &seed, false);
		char msg[1024];
		sl_err rc = transformer_err(map, t, msg, sizeof msg);
		if (rc != SL_OK) {
			cr_assert_eq(rc, SL_ERR_INVALID_ARG, "%s: %s", t, msg);
			cr_assert(msg[0] != 0);
			refused++;
			continue;
		}
		compiled++;
		xform_t *x = transformer(map, t);
		char *out = NULL;
		size_t len;
		rc = xform_render(x, ev, strlen(ev), &default_ctx, &out, &len, NULL);
		cr_assert(rc == SL_OK || rc == SL_ERR_INVALID_ARG, "%s", t);
		const char *first = t;
		while (*first == ' ')
			first++;
		if (rc == SL_OK && (*first == '{' || *first == '[')) {
			json_error_t je;
			json_t *j = json_loads(out, 0, &je);
			cr_assert_not_null(j, "template %s gave non-JSON %s (%s)", t, out, je.text);
			json_decref(j);
		}
		sl_free(out);
		xform_free(x);
	}
	cr_expect_gt(compiled, 100);
	cr_expect_gt(refused, 100);
	sl_free(t);
}
