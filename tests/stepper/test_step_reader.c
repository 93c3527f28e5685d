/*
 * test_step_reader.c - Map's ItemReader over local files (JSON, JSON lines, CSV,
 * listObjectsV2), its limits and errors, and ItemBatcher, run through the engine.
 */
#include <sys/stat.h>

#include "tests/stepper/step_test_util.h"

static char root[64];

/* A fresh root with the bucket directory "b". */
static void
setup_root(void)
{
	snprintf(root, sizeof root, "/tmp/step-reader-XXXXXX");
	cr_assert(mkdtemp(root));
	char *b = sl_asprintf("%s/b", root);
	cr_assert(mkdir(b, 0700) == 0);
	sl_free(b);
}

static void
teardown_root(void)
{
	step_test_rmtree(root);
}

TestSuite(step_reader, .init = setup_root, .fini = teardown_root);

static void
put_file(const char *rel, const char *text)
{
	char *p = sl_asprintf("%s/%s", root, rel);
	for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = 0; // parent directories first
		mkdir(p, 0700);
		*s = '/';
	}
	FILE *f = fopen(p, "wb");
	cr_assert(f, "cannot write %s", p);
	fputs(text, f);
	fclose(f);
	sl_free(p);
}

/* A distributed Map that returns its items (reader and batcher JSON fragments may be
 * empty), followed by extra state fields (Catch, ...). */
static char *
map_def(const char *reader, const char *batcher, const char *extra)
{
	return sl_asprintf(
	        "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",%s%s%s%s"
	        "\"ItemProcessor\":{\"ProcessorConfig\":{\"Mode\":\"DISTRIBUTED\","
	        "\"ExecutionType\":\"STANDARD\"},\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":"
	        "\"Pass\",\"End\":true}}},\"End\":true%s}}}",
	        reader, *reader && *batcher ? "," : "", batcher, *reader || *batcher ? "," : "",
	        extra);
}

static char *
reader(const char *key, const char *config)
{
	return sl_asprintf("\"ItemReader\":{\"Resource\":\"arn:aws:states:::s3:getObject\","
	                   "\"Parameters\":{\"Bucket\":\"b\",\"Key\":\"%s\"},"
	                   "\"ReaderConfig\":{%s}}",
	                   key, config);
}

static void
run(const char *rd, const char *bt, const char *input, struct step_local_result *r)
{
	char *def = map_def(rd, bt, "");
	struct step_options o = { .jitter_seed = 7, .item_reader_root = root };
	step_test_run(def, input, NULL, &o, r);
	sl_free(def);
}

static void
expect_cause(const struct step_local_result *r, const char *part)
{
	cr_expect(r->cause && strstr(r->cause, part), "cause %s, want it to hold '%s'",
	          r->cause ? r->cause : "(none)", part);
}

Test(step_reader, json_array)
{
	put_file("b/items.json", "[1, {\"a\": \"x\"}, [2], null]");
	char *rd = reader("items.json", "\"InputType\":\"JSON\"");
	struct step_local_result r;
	run(rd, "", "{}", &r);
	step_test_expect_output(&r, "[1, {\"a\": \"x\"}, [2], null]");
	cr_expect_eq(step_test_count_events(&r, "MapRunStarted"), 1);
	step_local_result_clear(&r);
	sl_free(rd);
}

Test(step_reader, json_not_an_array)
{
	put_file("b/obj.json", "{\"a\": 1}");
	char *rd = reader("obj.json", "\"InputType\":\"JSON\"");
	struct step_local_result r;
	run(rd, "", "{}", &r);
	step_test_expect_error(&r, "States.ItemReaderFailed");
	expect_cause(&r, "must hold a JSON array");
	step_local_result_clear(&r);
	sl_free(rd);
}

Test(step_reader, jsonl_lines_and_blank_lines)
{
	put_file("b/sub/items.jsonl", "{\"n\":1}\r\n\n  {\"n\":2}\n\"three\"\n");
	char *rd = reader("sub/items.jsonl", "\"InputType\":\"JSONL\"");
	struct step_local_result r;
	run(rd, "", "{}", &r);
	step_test_expect_output(&r, "[{\"n\":1},{\"n\":2},\"three\"]");
	step_local_result_clear(&r);
	sl_free(rd);
}

Test(step_reader, jsonl_malformed_line_named)
{
	put_file("b/bad.jsonl", "{\"n\":1}\n{\"n\":\n{\"n\":3}\n");
	char *rd = reader("bad.jsonl", "\"InputType\":\"JSONL\"");
	struct step_local_result r;
	run(rd, "", "{}", &r);
	step_test_expect_error(&r, "States.ItemReaderFailed");
	expect_cause(&r, "s3://b/bad.jsonl line 2 is not valid JSON");
	step_local_result_clear(&r);
	sl_free(rd);
}

Test(step_reader, csv_first_row_quoting)
{
	// quoted delimiter, doubled quotes, a line break inside quotes, CRLF, an empty field
	put_file("b/t.csv",
	         "id,name,note\r\n1,\"Smith, J\",\"said \"\"hi\"\"\"\r\n"
	         "2,Lee,\"two\nlines\"\n3,,x\n");
	char *rd = reader("t.csv", "\"InputType\":\"CSV\",\"CSVHeaderLocation\":\"FIRST_ROW\"");
	struct step_local_result r;
	run(rd, "", "{}", &r);
	step_test_expect_output(
	        &r,
	        "[{\"id\":\"1\",\"name\":\"Smith, J\",\"note\":\"said \\\"hi\\\"\"},"
	        "{\"id\":\"2\",\"name\":\"Lee\",\"note\":\"two\\nlines\"},"
	        "{\"id\":\"3\",\"name\":\"\",\"note\":\"x\"}]");
	step_local_result_clear(&r);
	sl_free(rd);
}

Test(step_reader, csv_given_headers_and_pipe)
{
	put_file("b/p.csv", "a|1\nb|\"2|3\"\n");
	char *rd = reader("p.csv",
	                  "\"InputType\":\"CSV\",\"CSVHeaderLocation\":\"GIVEN\","
	                  "\"CSVHeaders\":[\"k\",\"v\"],\"CSVDelimiter\":\"PIPE\"");
	struct step_local_result r;
	run(rd, "", "{}", &r);
	step_test_expect_output(&r, "[{\"k\":\"a\",\"v\":\"1\"},{\"k\":\"b\",\"v\":\"2|3\"}]");
	step_local_result_clear(&r);
	sl_free(rd);
}

Test(step_reader, csv_field_count_mismatch)
{
	put_file("b/m.csv", "a,b\n1,2\n3\n");
	char *rd = reader("m.csv", "\"InputType\":\"CSV\"");
	struct step_local_result r;
	run(rd, "", "{}", &r);
	step_test_expect_error(&r, "States.ItemReaderFailed");
	expect_cause(&r, "line 3 has 1 fields, the header has 2");
	step_local_result_clear(&r);
	sl_free(rd);
}

Test(step_reader, csv_unclosed_quote)
{
	put_file("b/q.csv", "a\n\"open\n");
	char *rd = reader("q.csv", "\"InputType\":\"CSV\"");
	struct step_local_result r;
	run(rd, "", "{}", &r);
	step_test_expect_error(&r, "States.ItemReaderFailed");
	expect_cause(&r, "not closed");
	step_local_result_clear(&r);
	sl_free(rd);
}

Test(step_reader, max_items_and_max_items_path)
{
	put_file("b/n.jsonl", "1\n2\n3\n4\n5\n");
	char *rd = reader("n.jsonl", "\"InputType\":\"JSONL\",\"MaxItems\":2");
	struct step_local_result r;
	run(rd, "", "{}", &r);
	step_test_expect_output(&r, "[1,2]");
	step_local_result_clear(&r);
	sl_free(rd);
	put_file("b/n.csv", "h\n1\n2\n3\n");
	rd = reader("n.csv", "\"InputType\":\"CSV\",\"MaxItemsPath\":\"$.max\"");
	run(rd, "", "{\"max\":1}", &r);
	step_test_expect_output(&r, "[{\"h\":\"1\"}]");
	step_local_result_clear(&r);
	sl_free(rd);
}

Test(step_reader, key_from_input_path)
{
	put_file("b/in.json", "[7]");
	char *rd = sl_asprintf("\"ItemReader\":{\"Resource\":\"arn:aws:states:::s3:getObject\","
	                       "\"Parameters\":{\"Bucket\":\"b\",\"Key.$\":\"$.key\"},"
	                       "\"ReaderConfig\":{\"InputType\":\"JSON\"}}");
	struct step_local_result r;
	run(rd, "", "{\"key\":\"in.json\"}", &r);
	step_test_expect_output(&r, "[7]");
	step_local_result_clear(&r);
	sl_free(rd);
}

Test(step_reader, paths_outside_the_root_refused)
{
	struct step_local_result r;
	const char *keys[] = { "../../etc/passwd", "/etc/passwd", "a/../../x" };
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		char *rd = reader(keys[i], "\"InputType\":\"JSON\"");
		run(rd, "", "{}", &r);
		step_test_expect_error(&r, "States.ItemReaderFailed");
		expect_cause(&r, "relative path");
		step_local_result_clear(&r);
		sl_free(rd);
	}
	// a symbolic link that leads out of the root
	char *ln = sl_asprintf("%s/b/out.json", root);
	cr_assert(symlink("/etc/hostname", ln) == 0);
	sl_free(ln);
	char *rd = reader("out.json", "\"InputType\":\"JSON\"");
	run(rd, "", "{}", &r);
	step_test_expect_error(&r, "States.ItemReaderFailed");
	expect_cause(&r, "outside the item reader root");
	step_local_result_clear(&r);
	sl_free(rd);
	// a bucket that is not one directory name
	rd = sl_asprintf("\"ItemReader\":{\"Resource\":\"arn:aws:states:::s3:getObject\","
	                 "\"Parameters\":{\"Bucket\":\"..\",\"Key\":\"x\"},"
	                 "\"ReaderConfig\":{\"InputType\":\"JSON\"}}");
	run(rd, "", "{}", &r);
	step_test_expect_error(&r, "States.ItemReaderFailed");
	expect_cause(&r, "one directory name");
	step_local_result_clear(&r);
	sl_free(rd);
}

Test(step_reader, no_root_refused)
{
	put_file("b/items.json", "[1]");
	char *rd = reader("items.json", "\"InputType\":\"JSON\"");
	char *def = map_def(rd, "", "");
	struct step_local_result r;
	step_test_run(def, "{}", NULL, NULL, &r);
	step_test_expect_error(&r, "States.ItemReaderFailed");
	expect_cause(&r, "--item-reader-root");
	step_local_result_clear(&r);
	sl_free(def);
	sl_free(rd);
}

Test(step_reader, missing_file_caught)
{
	char *rd = reader("nope.json", "\"InputType\":\"JSON\"");
	char *def = map_def(rd, "",
	                    ",\"Catch\":[{\"ErrorEquals\":[\"States.ItemReaderFailed\"],"
	                    "\"ResultPath\":\"$.err\",\"Next\":\"C\"}]},\"C\":{\"Type\":\"Pass\","
	                    "\"End\":true");
	struct step_options o = { .jitter_seed = 7, .item_reader_root = root };
	struct step_local_result r;
	step_test_run(def, "{\"v\":1}", NULL, &o, &r);
	cr_expect_eq(r.status, STEP_SUCCEEDED, "status %s (%s)", step_status_name(r.status),
	             r.cause ? r.cause : "");
	json_t *err = json_object_get(r.output, "err");
	cr_expect_str_eq(json_string_value(json_object_get(err, "Error")),
	                 "States.ItemReaderFailed");
	cr_expect(strstr(json_string_value(json_object_get(err, "Cause")), "nope.json"));
	cr_expect_eq(json_integer_value(json_object_get(r.output, "v")), 1);
	step_local_result_clear(&r);
	sl_free(def);
	sl_free(rd);
}

Test(step_reader, file_size_cap)
{
	put_file("b/big.json", "[1,2,3,4,5,6,7,8,9,10]");
	char *rd = reader("big.json", "\"InputType\":\"JSON\"");
	char *def = map_def(rd, "", "");
	struct step_options o
	        = { .jitter_seed = 7, .item_reader_root = root, .item_reader_max_bytes = 8 };
	struct step_local_result r;
	step_test_run(def, "{}", NULL, &o, &r);
	step_test_expect_error(&r, "States.ItemReaderFailed");
	expect_cause(&r, "over the item reader's limit of 8 bytes");
	step_local_result_clear(&r);
	sl_free(def);
	sl_free(rd);
}

Test(step_reader, item_over_payload_limit)
{
	put_file("b/l.jsonl", "\"short\"\n\"a longer string than the limit allows\"\n");
	char *rd = reader("l.jsonl", "\"InputType\":\"JSONL\"");
	char *def = map_def(rd, "", "");
	struct step_options o = { .jitter_seed = 7, .item_reader_root = root, .payload_limit = 20 };
	struct step_local_result r;
	step_test_run(def, "{}", NULL, &o, &r);
	step_test_expect_error(&r, "States.DataLimitExceeded");
	expect_cause(&r, "item 1 is larger than the payload limit");
	step_local_result_clear(&r);
	sl_free(def);
	sl_free(rd);
}

Test(step_reader, batch_by_count)
{
	put_file("b/n.json", "[1,2,3,4,5]");
	char *rd = reader("n.json", "\"InputType\":\"JSON\"");
	struct step_local_result r;
	run(rd, "\"ItemBatcher\":{\"MaxItemsPerBatch\":2}", "{}", &r);
	step_test_expect_output(&r, "[{\"Items\":[1,2]},{\"Items\":[3,4]},{\"Items\":[5]}]");
	step_local_result_clear(&r);
	// the Path variant, over ItemsPath (no reader)
	run("\"ItemsPath\":\"$.xs\"", "\"ItemBatcher\":{\"MaxItemsPerBatchPath\":\"$.per\"}",
	    "{\"xs\":[1,2,3],\"per\":3}", &r);
	step_test_expect_output(&r, "[{\"Items\":[1,2,3]}]");
	step_local_result_clear(&r);
	run("\"ItemsPath\":\"$.xs\"", "\"ItemBatcher\":{\"MaxItemsPerBatchPath\":\"$.per\"}",
	    "{\"xs\":[1],\"per\":0}", &r);
	step_test_expect_error(&r, "States.Runtime");
	step_local_result_clear(&r);
	sl_free(rd);
}

Test(step_reader, batch_by_bytes)
{
	// {"Items":[]} is 12 bytes; each item "aaaa" 6 bytes, 7 with its comma: a 26-byte
	// batch holds two items (12 + 6 + 7 = 25), not three (32)
	struct step_local_result r;
	run("\"ItemsPath\":\"$.xs\"", "\"ItemBatcher\":{\"MaxInputBytesPerBatch\":26}",
	    "{\"xs\":[\"aaaa\",\"bbbb\",\"cccc\",\"dddd\",\"eeee\"]}", &r);
	step_test_expect_output(&r,
	                        "[{\"Items\":[\"aaaa\",\"bbbb\"]},{\"Items\":[\"cccc\","
	                        "\"dddd\"]},{\"Items\":[\"eeee\"]}]");
	step_local_result_clear(&r);
	// an item that cannot fit any batch
	run("\"ItemsPath\":\"$.xs\"", "\"ItemBatcher\":{\"MaxInputBytesPerBatchPath\":\"$.max\"}",
	    "{\"xs\":[\"a\",\"a much longer item\"],\"max\":20}", &r);
	step_test_expect_error(&r, "States.ItemReaderFailed");
	expect_cause(&r, "item 1 alone makes a batch");
	step_local_result_clear(&r);
}

Test(step_reader, batch_input_merged)
{
	put_file("b/t.csv", "x\n1\n2\n3\n");
	char *rd = reader("t.csv", "\"InputType\":\"CSV\"");
	struct step_local_result r;
	run(rd,
	    "\"ItemBatcher\":{\"MaxItemsPerBatch\":2,\"BatchInput\":{\"run\":\"n1\","
	    "\"day.$\":\"$.day\"}}",
	    "{\"day\":\"2026-11-24\"}", &r);
	step_test_expect_output(&r,
	                        "[{\"run\":\"n1\",\"day\":\"2026-11-24\",\"Items\":[{\"x\":"
	                        "\"1\"},{\"x\":\"2\"}]},{\"run\":\"n1\",\"day\":"
	                        "\"2026-11-24\",\"Items\":[{\"x\":\"3\"}]}]");
	step_local_result_clear(&r);
	sl_free(rd);
}

Test(step_reader, list_objects)
{
	put_file("b/night=1/a.csv", "");
	put_file("b/zz.txt", "12345");
	put_file("b/night=2/c.csv", "abc");
	put_file("b/night=2/b.csv", "ab");
	const char *rd = "\"ItemReader\":{\"Resource\":\"arn:aws:states:::s3:listObjectsV2\","
	                 "\"Parameters\":{\"Bucket\":\"b\",\"Prefix\":\"night=2/\"}}";
	char *def = sl_asprintf(
	        "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",%s,"
	        "\"ItemSelector\":{\"k.$\":\"$$.Map.Item.Value.Key\",\"s.$\":"
	        "\"$$.Map.Item.Value.Size\",\"c.$\":\"$$.Map.Item.Value.StorageClass\"},"
	        "\"ItemProcessor\":{\"ProcessorConfig\":{\"Mode\":\"DISTRIBUTED\","
	        "\"ExecutionType\":\"STANDARD\"},\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":"
	        "\"Pass\",\"End\":true}}},\"End\":true}}}",
	        rd);
	struct step_options o = { .jitter_seed = 7, .item_reader_root = root };
	struct step_local_result r;
	step_test_run(def, "{}", NULL, &o, &r);
	step_test_expect_output(&r,
	                        "[{\"k\":\"night=2/b.csv\",\"s\":2,\"c\":\"STANDARD\"},"
	                        "{\"k\":\"night=2/c.csv\",\"s\":3,\"c\":\"STANDARD\"}]");
	step_local_result_clear(&r);
	sl_free(def);
}

Test(step_reader, item_selector_runs_before_batching)
{
	char *def = sl_asprintf(
	        "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemsPath\":\"$.xs\","
	        "\"ItemSelector\":{\"i.$\":\"$$.Map.Item.Index\",\"v.$\":\"$$.Map.Item.Value\","
	        "\"t.$\":\"$.tag\"},\"ItemBatcher\":{\"MaxItemsPerBatch\":2},"
	        "\"ItemProcessor\":{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\","
	        "\"End\":true}}},\"End\":true}}}");
	struct step_local_result r;
	step_test_run(def, "{\"xs\":[\"a\",\"b\",\"c\"],\"tag\":\"T\"}", NULL, NULL, &r);
	step_test_expect_output(&r,
	                        "[{\"Items\":[{\"i\":0,\"v\":\"a\",\"t\":\"T\"},{\"i\":1,"
	                        "\"v\":\"b\",\"t\":\"T\"}]},{\"Items\":[{\"i\":2,\"v\":\"c\","
	                        "\"t\":\"T\"}]}]");
	step_local_result_clear(&r);
	sl_free(def);
}

/* ---- durability: the items record survives a restart ---------------------------------- */

struct rig {
	store_t *st;
	step_engine_t *eng;
	struct sm_machine *m;
	char dir[64];
	char tokens[16][STEP_TOKEN_LEN + 1];
	json_t *inputs[16];
	int n_tasks, open, max_open;
	bool finished;
	enum step_status status;
	struct step_effects fx;
};

static void
rig_task(void *arg, const struct step_task *t)
{
	struct rig *r = arg;
	cr_assert_lt(r->n_tasks, 16);
	snprintf(r->tokens[r->n_tasks], sizeof r->tokens[0], "%s", t->token);
	r->inputs[r->n_tasks++] = json_deep_copy(t->input);
	if (++r->open > r->max_open)
		r->max_open = r->open;
}

static void
rig_finished(void *arg, const struct step_finished *f)
{
	struct rig *r = arg;
	// a distributed Map's child executions ("...:execution:m/label:id") end on their own
	const char *x = strstr(f->execution_arn, ":execution:");
	if (x && strchr(x + 11, '/'))
		return;
	r->finished = true;
	r->status = f->status;
}

static void
rig_open(struct rig *r)
{
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(store_open(r->dir, NULL, &r->st, &err), SL_OK, "%s", sl_error_text(&err));
	struct step_options o = { .jitter_seed = 1, .item_reader_root = root };
	cr_assert_eq(step_engine_new(r->st, &o, &r->eng), SL_OK);
	cr_assert_eq(step_engine_add_machine(r->eng, "m", r->m), SL_OK);
	store_batch_t *b = NULL;
	cr_assert_eq(store_batch_get(r->st, &b), SL_OK);
	cr_assert_eq(step_engine_recover(r->eng, b, &err), SL_OK, "%s", sl_error_text(&err));
	cr_assert_eq(store_batch_commit(r->st), SL_OK);
}

static store_batch_t *
rig_batch(struct rig *r)
{
	store_batch_t *b = NULL;
	cr_assert_eq(store_batch_get(r->st, &b), SL_OK);
	return b;
}

static void
rig_settle(struct rig *r)
{
	for (int i = 0; i < 1000; i++) {
		bool ran = step_engine_has_ready(r->eng);
		cr_assert_eq(step_run_ready(r->eng, rig_batch(r), &r->fx, NULL, NULL), SL_OK);
		cr_assert_eq(store_batch_commit(r->st), SL_OK);
		if (!ran)
			return;
	}
	cr_assert_fail("engine did not settle");
}

static void
rig_restart(struct rig *r)
{
	store_batch_abort(r->st, SL_ERR_SHUTTING_DOWN);
	step_engine_free(r->eng);
	store_free(r->st);
	rig_open(r);
	rig_settle(r);
}

Test(step_reader, items_survive_a_restart)
{
	put_file("b/six.jsonl", "1\n2\n3\n4\n5\n6\n");
	struct rig r;
	memset(&r, 0, sizeof r);
	snprintf(r.dir, sizeof r.dir, "/tmp/step-rdr-XXXXXX");
	cr_assert(mkdtemp(r.dir));
	r.m = step_test_compile(
	        "{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"MaxConcurrency\":2,"
	        "\"ItemReader\":{\"Resource\":\"arn:aws:states:::s3:getObject\",\"Parameters\":"
	        "{\"Bucket\":\"b\",\"Key\":\"six.jsonl\"},\"ReaderConfig\":{\"InputType\":"
	        "\"JSONL\"}},\"ItemBatcher\":{\"MaxItemsPerBatch\":2},"
	        "\"ItemProcessor\":{\"ProcessorConfig\":{\"Mode\":\"DISTRIBUTED\","
	        "\"ExecutionType\":\"STANDARD\"},\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":"
	        "\"Task\",\"Resource\":\"arn:aws:lambda:us-east-1:000000000000:function:f\","
	        "\"End\":true}}},\"End\":true}}}");
	r.fx = (struct step_effects) { .arg = &r, .task = rig_task, .finished = rig_finished };
	rig_open(&r);
	char arn[STEP_ARN_MAX];
	struct step_start req = { .machine = "m", .name = "e1" };
	cr_assert_eq(step_start(r.eng, rig_batch(&r), &req, arn, &r.fx, NULL), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	rig_settle(&r);
	cr_assert_eq(r.n_tasks, 2, "MaxConcurrency 2: %d tasks", r.n_tasks);
	// the file is read once, when the Map starts: the rest comes from the store
	char *p = sl_asprintf("%s/b/six.jsonl", root);
	cr_assert(unlink(p) == 0);
	sl_free(p);
	int answered = 0;
	while (!r.finished && answered < r.n_tasks) {
		rig_restart(&r);
		cr_assert_eq(step_task_succeed(r.eng, rig_batch(&r), r.tokens[answered],
		                               r.inputs[answered], &r.fx, NULL),
		             SL_OK);
		r.open--;
		answered++;
		cr_assert_eq(store_batch_commit(r.st), SL_OK);
		rig_settle(&r);
	}
	cr_expect(r.finished);
	cr_expect_eq(r.status, STEP_SUCCEEDED);
	cr_expect_eq(answered, 3);
	cr_expect_eq(r.max_open, 2);
	store_txn_t *txn = NULL;
	cr_assert_eq(store_read_begin(r.st, &txn), SL_OK);
	json_t *d = NULL;
	cr_assert_eq(step_describe(r.eng, txn, arn, &d, NULL), SL_OK);
	json_t *want = step_test_json("[{\"Items\":[1,2]},{\"Items\":[3,4]},{\"Items\":[5,6]}]");
	json_t *got = step_test_json(json_string_value(json_object_get(d, "output")));
	cr_expect(json_equal(want, got), "output %s",
	          json_string_value(json_object_get(d, "output")));
	// nothing of the Map is left under the execution's frames
	struct store_key k;
	store_key_init(&k);
	store_key_str(&k, arn);
	size_t n = 99;
	cr_assert_eq(store_count_prefix(txn, STORE_DB_FRAMES, k.buf, k.len, &n), SL_OK);
	cr_expect_eq(n, 0, "%zu frame records left", n);
	store_read_end(txn);
	json_decref(want);
	json_decref(got);
	json_decref(d);
	for (int i = 0; i < r.n_tasks; i++)
		json_decref(r.inputs[i]);
	step_engine_free(r.eng);
	store_free(r.st);
	sm_machine_free(r.m);
	step_test_rmtree(r.dir);
}

Test(step_reader, json_array_read_element_by_element)
{
	struct step_local_result r;
	put_file("b/empty.json", " [ ] ");
	char *rd = reader("empty.json", "\"InputType\":\"JSON\"");
	run(rd, "", "{}", &r);
	step_test_expect_output(&r, "[]");
	step_local_result_clear(&r);
	sl_free(rd);
	// MaxItems stops before the broken tail is reached
	put_file("b/tail.json", "[{\"a\":[1,2]}, \"x\", 3, {broken");
	rd = reader("tail.json", "\"InputType\":\"JSON\",\"MaxItems\":3");
	run(rd, "", "{}", &r);
	step_test_expect_output(&r, "[{\"a\":[1,2]},\"x\",3]");
	step_local_result_clear(&r);
	sl_free(rd);
	rd = reader("tail.json", "\"InputType\":\"JSON\"");
	run(rd, "", "{}", &r);
	step_test_expect_error(&r, "States.ItemReaderFailed");
	expect_cause(&r, "s3://b/tail.json is not valid JSON");
	step_local_result_clear(&r);
	sl_free(rd);
	put_file("b/nocomma.json", "[1 2]");
	rd = reader("nocomma.json", "\"InputType\":\"JSON\"");
	run(rd, "", "{}", &r);
	step_test_expect_error(&r, "States.ItemReaderFailed");
	expect_cause(&r, "',' or ']' expected near byte 3");
	step_local_result_clear(&r);
	sl_free(rd);
}
