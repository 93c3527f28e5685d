/*
 * test_sm_validate.c - the validator and the compiled graph.
 *
 * tests/corpus/asl-invalid/ holds one invalid definition per rule; each states the single
 * problem it must produce: YAML files in leading comments
 *   # expect: LINE:COLUMN: MESSAGE        (or a JSON pointer where no line is known)
 *   # pointer: /JSON/pointer              (the pointer AWS reports)
 * JSON files in a sibling NAME.expect with the same two lines (without "# "). The valid
 * definitions in tests/corpus/asl-valid/ must compile; the graph tests below check what
 * the stepper will read from a compiled machine.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/statemachines.h"

static char *
read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	size_t cap = 4096, n = 0;
	char *buf = sl_malloc(cap);
	size_t got;
	while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (n + 1 == cap)
			buf = sl_realloc(buf, cap *= 2);
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static char *
corpus_path(const char *sub)
{
	const char *src = getenv("SLUICE_SRC");
	return sl_asprintf("%s/tests/corpus/%s", src ? src : "..", sub);
}

/* Copies the rest of the line after prefix, found at the start of some line of text. */
static char *
line_after(const char *text, const char *prefix)
{
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, prefix, strlen(prefix)) != 0)
			continue;
		const char *s = l + strlen(prefix);
		const char *e = strchr(s, '\n');
		return sl_strndup(s, e ? (size_t)(e - s) : strlen(s));
	}
	return NULL;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* The same tree sent as JSON must give the same problem at the same pointer: validation
 * does not depend on the source format (only the location's form does). */
static bool
same_as_json(const char *name, const char *text, size_t len, const struct sm_problems *yp,
             size_t *compared)
{
	struct sm_problems lp = { 0 };
	json_t *tree = NULL;
	if (sm_definition_load(text, len, NULL, SM_FORMAT_YAML, &tree, NULL, &lp) != SL_OK) {
		sm_problems_clear(&lp);
		return true; /* a loader rule: nothing to compare */
	}
	(*compared)++;
	char *js = json_dumps(tree, JSON_ENCODE_ANY);
	json_decref(tree);
	struct sm_problems jp = { 0 };
	struct sm_machine *m = NULL;
	sm_definition_compile_text(js, strlen(js), NULL, SM_FORMAT_JSON, &m, &jp);
	bool same = jp.count == 1 && yp->count == 1
	        && !strcmp(jp.items[0].message, yp->items[0].message)
	        && !strcmp(jp.items[0].pointer, yp->items[0].pointer);
	if (!same)
		fprintf(stderr, "FAIL %s: as JSON gives %zu problems, first: %s [%s]\n", name,
		        jp.count, jp.count ? jp.items[0].message : "",
		        jp.count ? jp.items[0].pointer : "");
	sm_machine_free(m);
	sm_problems_clear(&jp);
	free(js);
	return same;
}

TestSuite(sm_validate, .init = sl_alloc_init);

Test(sm_validate, invalid_corpus_one_rule_each)
{
	char *dir = corpus_path("asl-invalid");
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, by_name);
	cr_assert_geq(n, 0, "cannot list %s", dir);
	size_t cases = 0, failures = 0, compared = 0;
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		const char *dot = strrchr(name, '.');
		bool json = dot && !strcmp(dot, ".json");
		if (!dot || !(json || !strcmp(dot, ".yaml"))) {
			free(ents[i]);
			continue;
		}
		char *path = sl_asprintf("%s/%s", dir, name);
		size_t len;
		char *text = read_all(path, &len);
		char *expect, *pointer;
		if (json) {
			char *ep = sl_asprintf("%.*s.expect", (int)(strlen(path) - 5), path);
			char *et = read_all(ep, NULL);
			expect = sl_strndup(et, strcspn(et, "\n"));
			pointer = line_after(et, "pointer: ");
			sl_free(et);
			sl_free(ep);
		} else {
			expect = line_after(text, "# expect: ");
			pointer = line_after(text, "# pointer: ");
		}
		cr_assert_not_null(expect, "%s has no expectation", name);
		cr_assert_not_null(pointer, "%s has no pointer", name);
		struct sm_problems p = { 0 };
		struct sm_machine *m = NULL;
		sl_err rc = sm_definition_compile_text(
		        text, len, NULL, json ? SM_FORMAT_JSON : SM_FORMAT_YAML, &m, &p);
		cases++;
		char *got = p.count ? sl_asprintf("%s: %s", p.items[0].location, p.items[0].message)
		                    : sl_strdup("(no problem)");
		if (rc != SL_ERR_INVALID_DEFINITION || p.count != 1 || strcmp(got, expect) != 0
		    || strcmp(p.items[0].pointer, pointer) != 0) {
			failures++;
			fprintf(stderr,
			        "FAIL %s (%s, %zu problems)\n  want: %s [%s]\n  got:  %s [%s]\n",
			        name, sl_err_name(rc), p.count, expect, pointer, got,
			        p.count ? p.items[0].pointer : "");
		}
		cr_assert_null(m);
		if (!json && p.count == 1)
			failures += !same_as_json(name, text, len, &p, &compared);
		sl_free(got);
		sm_problems_clear(&p);
		sl_free(expect);
		sl_free(pointer);
		sl_free(text);
		sl_free(path);
		free(ents[i]);
	}
	free(ents);
	sl_free(dir);
	fprintf(stderr, "invalid definitions: %zu cases (%zu also checked as JSON), %zu failures\n",
	        cases, compared, failures);
	cr_assert_geq(compared, 150);
	cr_assert_geq(cases, 150, "only %zu invalid definitions found", cases);
	cr_assert_eq(failures, 0);
}

Test(sm_validate, valid_corpus_compiles)
{
	char *dir = corpus_path("asl-valid");
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, by_name);
	cr_assert_geq(n, 0, "cannot list %s", dir);
	size_t cases = 0;
	for (int i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.') {
			char *path = sl_asprintf("%s/%s", dir, ents[i]->d_name);
			size_t len;
			char *text = read_all(path, &len);
			struct sm_problems p = { 0 };
			struct sm_machine *m = NULL;
			sl_err rc = sm_definition_compile_text(text, len, ents[i]->d_name,
			                                       SM_FORMAT_AUTO, &m, &p);
			cr_assert_eq(rc, SL_OK, "%s: %s: %s", ents[i]->d_name,
			             p.count ? p.items[0].location : "",
			             p.count ? p.items[0].message : "");
			cr_assert_not_null(m);
			cases++;
			sm_machine_free(m);
			sm_problems_clear(&p);
			sl_free(text);
			sl_free(path);
		}
		free(ents[i]);
	}
	free(ents);
	sl_free(dir);
	cr_assert_geq(cases, 2);
}

static struct sm_machine *
compile_file(const char *name)
{
	char *dir = corpus_path("asl-valid");
	char *path = sl_asprintf("%s/%s", dir, name);
	size_t len;
	char *text = read_all(path, &len);
	struct sm_problems p = { 0 };
	struct sm_machine *m = NULL;
	sl_err rc = sm_definition_compile_text(text, len, name, SM_FORMAT_AUTO, &m, &p);
	cr_assert_eq(rc, SL_OK, "%s", p.count ? p.items[0].message : "");
	sm_problems_clear(&p);
	sl_free(text);
	sl_free(path);
	sl_free(dir);
	return m;
}

static const struct sm_state *
state_named(const struct sm_machine *m, const char *name)
{
	size_t i = sm_machine_find(m, name);
	cr_assert_neq(i, SM_NO_STATE, "no state %s", name);
	return &m->states[i];
}

Test(sm_validate, graph_task_and_error_handling)
{
	struct sm_machine *m = compile_file("order-pipeline.yaml");
	cr_assert_eq(m->timeout_seconds, 3600);
	cr_assert_str_eq(m->comment, "Order pipeline");
	cr_assert_str_eq(m->version, "1.0");
	cr_assert_eq(m->start, sm_machine_find(m, "Validate"));
	const struct sm_state *v = state_named(m, "Validate");
	cr_assert_eq(v->type, SM_STATE_TASK);
	cr_assert_eq(v->next, sm_machine_find(m, "Route"));
	cr_assert_not(v->end);
	cr_assert_eq(v->u.task.kind, SM_RESOURCE_LAMBDA);
	cr_assert_str_eq(v->u.task.name, "validate-order");
	cr_assert_eq(v->u.task.timeout_seconds, 30);
	cr_assert_eq(v->u.task.heartbeat_seconds, 10);
	cr_assert_eq(v->input_path.kind, SM_IO_PATH);
	cr_assert_str_eq(sm_path_text(v->input_path.path), "$.order");
	cr_assert_eq(v->output_path.kind, SM_IO_DEFAULT);
	cr_assert_eq(v->result_path.kind, SM_IO_PATH);
	cr_assert_not_null(v->parameters);
	cr_assert_not_null(v->result_selector);
	cr_assert_eq(v->n_retry, 2);
	cr_assert_eq(v->retry[0].errors.n_names, 2);
	cr_assert_str_eq(v->retry[0].errors.names[1], "Lambda.ServiceException");
	cr_assert_not(v->retry[0].errors.matches_all);
	cr_assert_eq(v->retry[0].interval_seconds, 2);
	cr_assert_eq(v->retry[0].max_attempts, 4);
	cr_assert_float_eq(v->retry[0].backoff_rate, 1.5, 1e-12);
	cr_assert_eq(v->retry[0].max_delay_seconds, 20);
	cr_assert_eq(v->retry[0].jitter, SM_JITTER_FULL);
	/* defaults AWS applies */
	cr_assert(v->retry[1].errors.matches_all);
	cr_assert_eq(v->retry[1].interval_seconds, 1);
	cr_assert_eq(v->retry[1].max_attempts, 3);
	cr_assert_float_eq(v->retry[1].backoff_rate, 2.0, 1e-12);
	cr_assert_eq(v->retry[1].jitter, SM_JITTER_NONE);
	cr_assert_eq(v->n_catch, 1);
	cr_assert_eq(v->catch_[0].next, sm_machine_find(m, "Rejected"));
	cr_assert_str_eq(sm_path_text(v->catch_[0].result_path.path), "$.error");

	const struct sm_state *rej = state_named(m, "Rejected");
	cr_assert_eq(rej->type, SM_STATE_FAIL);
	cr_assert_not_null(rej->u.fail.error_path.path);
	cr_assert_null(rej->u.fail.error_path.fn);
	cr_assert_not_null(rej->u.fail.cause_path.fn, "CausePath holds an intrinsic call");
	const struct sm_state *done = state_named(m, "Done");
	cr_assert_eq(done->type, SM_STATE_SUCCEED);
	cr_assert_eq(done->next, SM_NO_STATE);
	sm_machine_free(m);
}

Test(sm_validate, graph_choice_rules_are_trees)
{
	struct sm_machine *m = compile_file("order-pipeline.yaml");
	const struct sm_state *r = state_named(m, "Route");
	cr_assert_eq(r->type, SM_STATE_CHOICE);
	cr_assert_eq(r->u.choice.n_rules, 3);
	cr_assert_eq(r->u.choice.default_next, sm_machine_find(m, "Rejected"));
	const struct sm_choice_rule *and = &r->u.choice.rules[0];
	cr_assert_eq(and->op, SM_OP_AND);
	cr_assert_eq(and->next, sm_machine_find(m, "Fanout"));
	cr_assert_eq(and->n_children, 2);
	cr_assert_eq(and->children[0].op, SM_OP_BOOLEAN_EQUALS);
	cr_assert(and->children[0].operand.boolean);
	cr_assert_str_eq(sm_path_text(and->children[0].variable), "$.validation.valid");
	cr_assert_eq(and->children[0].next, SM_NO_STATE);
	const struct sm_choice_rule *not = &and->children[1];
	cr_assert_eq(not ->op, SM_OP_NOT);
	cr_assert_eq(not ->n_children, 1);
	cr_assert_eq(not ->children[0].op, SM_OP_NUMERIC_GREATER_THAN);
	cr_assert_float_eq(not ->children[0].operand.number, 1000.0, 1e-9);
	const struct sm_choice_rule *ts = &r->u.choice.rules[1];
	cr_assert_eq(ts->op, SM_OP_TIMESTAMP_LESS_THAN);
	cr_assert_not(ts->operand_is_path);
	cr_assert_eq(ts->operand.time.seconds, 1577836800);
	cr_assert_eq(r->u.choice.rules[2].op, SM_OP_STRING_MATCHES);
	cr_assert_str_eq(r->u.choice.rules[2].operand.string, "eu-*");
	cr_assert_str_eq(sm_choice_op_name(SM_OP_STRING_MATCHES), "StringMatches");
	sm_machine_free(m);
}

Test(sm_validate, graph_wait_parallel_map)
{
	struct sm_machine *m = compile_file("order-pipeline.yaml");
	const struct sm_state *h = state_named(m, "Hold");
	cr_assert(h->u.wait.has_seconds);
	cr_assert_eq(h->u.wait.seconds, 10, "YAML 1.2: 010 is ten");
	const struct sm_state *f = state_named(m, "Fanout");
	cr_assert_eq(f->u.parallel.n_branches, 2);
	const struct sm_machine *b0 = f->u.parallel.branches[0];
	cr_assert_eq(b0->n_states, 1);
	cr_assert(b0->states[0].end);
	cr_assert_eq(b0->states[0].u.task.kind, SM_RESOURCE_SERVICE);
	cr_assert_str_eq(b0->states[0].u.task.name, "sqs");
	cr_assert_str_eq(b0->states[0].u.task.action, "sendMessage");
	cr_assert_eq(b0->states[0].u.task.integration, SM_INTEGRATION_WAIT_FOR_TASK_TOKEN);
	const struct sm_state *items = &f->u.parallel.branches[1]->states[0];
	cr_assert_eq(items->type, SM_STATE_MAP);
	cr_assert_eq(items->u.map.mode, SM_MAP_INLINE);
	cr_assert_eq(items->u.map.max_concurrency, 4);
	cr_assert_str_eq(sm_path_text(items->u.map.items_path), "$.order.items");
	cr_assert_not_null(items->u.map.item_selector);
	const struct sm_state *reserve = &items->u.map.processor->states[0];
	cr_assert_eq(reserve->u.task.kind, SM_RESOURCE_ACTIVITY);
	cr_assert_str_eq(reserve->u.task.name, "reserve-stock");
	sm_machine_free(m);

	m = compile_file("distributed-map.json");
	const struct sm_state *p = state_named(m, "Process");
	cr_assert_eq(p->u.map.mode, SM_MAP_DISTRIBUTED);
	cr_assert_eq(p->u.map.execution_type, SM_EXECUTION_EXPRESS);
	cr_assert(p->u.map.has_tolerated_failure_percentage);
	cr_assert_float_eq(p->u.map.tolerated_failure_percentage, 5.0, 1e-12);
	cr_assert_not_null(p->u.map.tolerated_failure_count_path);
	cr_assert_not_null(p->u.map.max_concurrency_path);
	cr_assert_not_null(p->u.map.item_reader);
	cr_assert_not_null(p->u.map.item_batcher);
	cr_assert_not_null(p->u.map.result_writer);
	cr_assert_str_eq(p->u.map.label, "batch");
	const struct sm_state *last = state_named(m, "Last");
	cr_assert_eq(last->result_path.kind, SM_IO_NULL);
	cr_assert_str_eq(json_string_value(json_object_get(last->result, "ok.$")),
	                 "kept literally");
	cr_assert_not_null(state_named(m, "Wait")->u.wait.timestamp_path);
	sm_machine_free(m);
}

static struct sm_task
resource(const char *arn)
{
	char *text = sl_asprintf("{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\","
	                         "\"Resource\":\"%s\",\"End\":true}}}",
	                         arn);
	struct sm_problems p = { 0 };
	struct sm_machine *m = NULL;
	cr_assert_eq(sm_definition_compile_text(text, strlen(text), NULL, SM_FORMAT_JSON, &m, &p),
	             SL_OK);
	struct sm_task t = m->states[0].u.task;
	static char name[128], action[128];
	snprintf(name, sizeof name, "%s", t.name ? t.name : "");
	snprintf(action, sizeof action, "%s", t.action ? t.action : "");
	t.name = name;
	t.action = action;
	t.resource = NULL;
	sm_machine_free(m);
	sl_free(text);
	return t;
}

Test(sm_validate, task_resources_are_classified)
{
	struct sm_task t = resource("arn:aws:states:::lambda:invoke");
	cr_assert_eq(t.kind, SM_RESOURCE_SERVICE);
	cr_assert_str_eq(t.name, "lambda");
	cr_assert_str_eq(t.action, "invoke");
	cr_assert_eq(t.integration, SM_INTEGRATION_REQUEST_RESPONSE);
	t = resource("arn:aws:states:::states:startExecution.sync:2");
	cr_assert_str_eq(t.name, "states");
	cr_assert_str_eq(t.action, "startExecution");
	cr_assert_eq(t.integration, SM_INTEGRATION_SYNC2);
	t = resource("arn:aws:states:::aws-sdk:s3:getObject");
	cr_assert_str_eq(t.name, "aws-sdk:s3");
	cr_assert_str_eq(t.action, "getObject");
	t = resource("arn:aws:states:::batch:submitJob.sync");
	cr_assert_eq(t.integration, SM_INTEGRATION_SYNC);
	t = resource("arn:aws:states:eu-west-1:123456789012:activity:resize");
	cr_assert_eq(t.kind, SM_RESOURCE_ACTIVITY);
	cr_assert_str_eq(t.name, "resize");
	t = resource("arn:aws:lambda:eu-west-1:123456789012:function:thumb");
	cr_assert_eq(t.kind, SM_RESOURCE_LAMBDA);
	cr_assert_str_eq(t.name, "thumb");
	t = resource("<<function_arn>>");
	cr_assert_eq(t.kind, SM_RESOURCE_OTHER);
	t = resource("arn:aws:states:::");
	cr_assert_eq(t.kind, SM_RESOURCE_OTHER);
}

Test(sm_validate, rfc3339_times)
{
	struct sm_time a, b;
	cr_assert(sm_time_parse("2016-03-14T01:59:00Z", &a));
	cr_assert_eq(a.seconds, 1457920740);
	cr_assert(sm_time_parse("2016-03-14T03:59:00.5+02:00", &b));
	cr_assert_eq(b.seconds, 1457920740);
	cr_assert_eq(b.nanos, 500000000);
	cr_assert_eq(sm_time_compare(&a, &b), -1);
	cr_assert(sm_time_parse("2024-02-29T23:59:60Z", &a), "leap day and leap second");
	const char *bad[] = { "2016-03-14T01:59:00",      "2016-03-14 01:59:00Z",
		              "2023-02-29T00:00:00Z",     "2016-03-14T24:00:00Z",
		              "2016-3-14T01:59:00Z",      "2016-03-14T01:59:00.Z",
		              "2016-03-14T01:59:00+0200", "",
		              "2016-03-14T01:59:00Zjunk" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		cr_assert_not(sm_time_parse(bad[i], &a), "'%s' must be refused", bad[i]);
}

Test(sm_validate, all_problems_at_once_and_aws_message)
{
	const char *text = "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Next\":\"B\","
	                   "\"Foo\":1},\"C\":{\"Type\":\"Wait\",\"Seconds\":-1,\"End\":true}}}";
	struct sm_problems p = { 0 };
	struct sm_machine *m = NULL;
	cr_assert_eq(sm_definition_compile_text(text, strlen(text), NULL, SM_FORMAT_JSON, &m, &p),
	             SL_ERR_INVALID_DEFINITION);
	cr_assert_eq(p.count, 4);
	char *aws = sm_problems_aws_message(&p);
	cr_assert_str_eq(aws,
	                 "Invalid State Machine Definition: '"
	                 "SCHEMA_VALIDATION_FAILED: Field 'Foo' is not supported at /States/A, "
	                 "MISSING_TRANSITION_TARGET: Missing 'Next' target: B at /States/A/Next, "
	                 "SCHEMA_VALIDATION_FAILED: The value for the field 'Seconds' must be "
	                 "between 0 and 99999999 at /States/C/Seconds, "
	                 "MISSING_TRANSITION_TARGET: State \"C\" is not reachable. at /States/C'");
	sl_free(aws);
	sm_problems_clear(&p);
}

Test(sm_validate, compile_out_of_memory_is_clean)
{
	char *dir = corpus_path("asl-valid");
	char *path = sl_asprintf("%s/order-pipeline.yaml", dir);
	size_t len;
	char *text = read_all(path, &len);
	long n;
	for (n = 0; n < 20000; n++) {
		struct sm_problems p = { 0 };
		struct sm_machine *m = NULL;
		sl_alloc_fail_after(n);
		sl_err rc = sm_definition_compile_text(text, len, "x", SM_FORMAT_YAML, &m, &p);
		sl_alloc_fail_after(-1);
		if (rc == SL_OK) {
			sm_problems_clear(&p);
			sm_machine_free(m);
			break;
		}
		cr_assert_eq(rc, SL_ERR_NOMEM, "n=%ld: %s %s", n, sl_err_name(rc),
		             p.count ? p.items[0].message : "");
		sm_problems_clear(&p);
		cr_assert_null(m);
	}
	cr_assert_lt(n, 20000, "compile never succeeded");
	sl_free(text);
	sl_free(path);
	sl_free(dir);
}

Test(sm_validate, problem_list_is_capped)
{
	/* 1,500 unknown fields: the list stops at SM_PROBLEMS_MAX and counts the rest */
	size_t cap = 64 * 1024, n = 0;
	char *text = sl_malloc(cap);
	n += (size_t)snprintf(text + n, cap - n,
	                      "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":"
	                      "\"Pass\",\"End\":true");
	for (int i = 0; i < 1500; i++)
		n += (size_t)snprintf(text + n, cap - n, ",\"X%d\":1", i);
	snprintf(text + n, cap - n, "}}}");
	struct sm_problems p = { 0 };
	struct sm_machine *m = NULL;
	cr_assert_eq(sm_definition_compile_text(text, strlen(text), NULL, SM_FORMAT_JSON, &m, &p),
	             SL_ERR_INVALID_DEFINITION);
	cr_assert_eq(p.count, SM_PROBLEMS_MAX);
	cr_assert_eq(p.dropped, 1500 - SM_PROBLEMS_MAX);
	cr_assert_null(m);
	sm_problems_clear(&p);
	sl_free(text);
}
