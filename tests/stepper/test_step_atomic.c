/*
 * test_step_atomic.c - an activation is all or nothing: one allocation made to fail at
 * every position of an activation (sl_alloc_fail_after) leaves either the full activation
 * or none of it, and an engine failure ends the execution FAILED with States.Runtime in a
 * clean write: history ids dense and chained, no frame, token or timer left, the execution
 * record agreeing with its history, and the effects of an undone activation never told.
 */
#include "stepper/step_int.h"
#include "tests/stepper/step_rig.h"

static void
setup(void)
{
	sl_alloc_init();
}

TestSuite(step_atomic, .init = setup);

/* Number of keys under the execution's prefix in db. */
static size_t
count_under(struct rig *r, enum store_db db, const char *arn)
{
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	struct store_key k;
	store_key_init(&k);
	store_key_str(&k, arn);
	size_t n = 0;
	cr_assert_eq(store_count_prefix(txn, db, k.buf, k.len, &n), SL_OK);
	store_read_end(txn);
	return n;
}

static size_t
count_all(struct rig *r, enum store_db db)
{
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	store_cursor_t *cur;
	cr_assert_eq(store_cursor_open(txn, db, &cur), SL_OK);
	cr_assert_eq(store_cursor_seek(cur, NULL, 0), SL_OK);
	struct store_val k, v;
	size_t n = 0;
	while (store_cursor_next(cur, &k, &v) == SL_OK)
		n++;
	store_cursor_close(cur);
	store_read_end(txn);
	return n;
}

static const char *
js(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Checks an ended execution; returns true when it FAILED with States.Runtime. */
static bool
check_ended(struct rig *r, const char *arn, const char *success_type, long at)
{
	json_t *h = rig_history(r, arn);
	size_t n = json_array_size(h);
	cr_assert_geq(n, 2);
	for (size_t i = 0; i < n; i++) {
		json_t *ev = json_array_get(h, i);
		cr_assert_eq(json_integer_value(json_object_get(ev, "id")), (json_int_t)i + 1,
		             "history ids are dense");
		cr_assert_lt(json_integer_value(json_object_get(ev, "previousEventId")),
		             (json_int_t)i + 1);
	}
	cr_assert_str_eq(js(json_array_get(h, 0), "type"), "ExecutionStarted");
	json_t *last = json_array_get(h, n - 1);
	const char *type = js(last, "type");
	bool failed = strcmp(type, "ExecutionFailed") == 0;
	if (failed) {
		json_t *d = json_object_get(last, "executionFailedEventDetails");
		cr_assert_str_eq(js(d, "error"), "States.Runtime");
		cr_assert(js(d, "cause") && strstr(js(d, "cause"), "could not run"), "%s",
		          js(d, "cause"));
	} else {
		cr_assert_str_eq(type, success_type, "failing allocation %ld", at);
	}
	for (size_t i = 1; i + 1 < n; i++) {
		const char *t = js(json_array_get(h, i), "type");
		cr_assert(strncmp(t, "Execution", 9) != 0, "an execution event mid-history: %s", t);
	}
	// the record agrees with the history
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	json_t *d = NULL;
	cr_assert_eq(step_describe(r->eng, txn, arn, &d, NULL), SL_OK);
	store_read_end(txn);
	cr_assert_str_eq(js(d, "status"), failed ? "FAILED" : "SUCCEEDED");
	json_decref(d);
	json_decref(h);
	// nothing of the execution is left running
	cr_assert_eq(count_under(r, STORE_DB_FRAMES, arn), 0);
	cr_assert_eq(count_all(r, STORE_DB_TASK_TOKENS), 0);
	// (a queue entry may stay behind an execution that ended while its task was out, as
	// after StopExecution: its token is gone, so no worker is given it)
	// the effects told exactly one end, the one recorded
	cr_assert(r->finished);
	cr_assert_eq(r->status, failed ? STEP_FAILED : STEP_SUCCEEDED);
	cr_assert_eq(r->status_ended, 1);
	return failed;
}

static const char *const RUN_DEF
        = "{\"StartAt\":\"A\",\"States\":{"
          "\"A\":{\"Type\":\"Pass\",\"Parameters\":{\"id.$\":\"$$.Execution.Name\",\"v.$\":"
          "\"$.v\"},\"Next\":\"B\"},"
          "\"B\":{\"Type\":\"Choice\",\"Choices\":[{\"Variable\":\"$.v\",\"NumericEquals\":1,"
          "\"Next\":\"C\"}],\"Default\":\"C\"},"
          "\"C\":{\"Type\":\"Parallel\",\"Branches\":["
          "{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"Result\":[1,\"x\"],"
          "\"End\":true}}},"
          "{\"StartAt\":\"Q\",\"States\":{\"Q\":{\"Type\":\"Pass\",\"End\":true}}}],"
          "\"ResultPath\":\"$.r\",\"End\":true}}}";

/* Every allocation of the runs (the activations of a Pass, a Choice and a Parallel with its
 * branches) made to fail once, each on a fresh execution. */
Test(step_atomic, a_failed_allocation_in_a_run_undoes_the_activation)
{
	struct rig r;
	rig_init(&r, RUN_DEF);
	int failed = 0;
	bool done = false;
	for (long n = 0; !done; n++) {
		cr_assert_lt(n, 20000, "the walk does not end");
		char name[32];
		snprintf(name, sizeof name, "x%ld", n);
		struct sl_error err;
		sl_error_clear(&err);
		static char arn[STEP_ARN_MAX];
		json_t *in = step_test_json("{\"v\":1}");
		struct step_start req = { .machine = "m", .name = name, .input = in };
		cr_assert_eq(step_start(r.eng, rig_batch(&r), &req, arn, &r.fx, &err), SL_OK);
		json_decref(in);
		cr_assert_eq(store_batch_commit(r.st), SL_OK);
		r.finished = false;
		r.status_ended = 0;
		// one failing allocation somewhere in the first run of this execution
		store_batch_t *b = rig_batch(&r);
		sl_alloc_fail_after(n);
		sl_err e = step_run_ready(r.eng, b, &r.fx, NULL, &err);
		done = sl_alloc_fail_pending(); // n went past the run's last allocation
		sl_alloc_fail_after(-1);
		cr_assert_eq(e, SL_OK, "at %ld: %s", n, sl_error_text(&err));
		cr_assert_eq(store_batch_commit(r.st), SL_OK);
		rig_settle(&r);
		if (check_ended(&r, arn, "ExecutionSucceeded", n)) {
			failed++;
			cr_assert_not(done, "nothing failed, yet the execution did");
		}
	}
	cr_assert_gt(failed, 10, "the walk failed activations (%d)", failed);
	rig_free(&r);
}

static const char *const TASK_DEF
        = "{\"StartAt\":\"T\",\"States\":{"
          "\"T\":{\"Type\":\"Task\",\"Resource\":\"arn:aws:states:::lambda:invoke\","
          "\"ResultSelector\":{\"p.$\":\"$.Payload\",\"n.$\":\"$$.State.Name\"},"
          "\"Next\":\"W\"},"
          "\"W\":{\"Type\":\"Wait\",\"Seconds\":5,\"Next\":\"E\"},"
          "\"E\":{\"Type\":\"Succeed\"}}}";

/* A worker's answer and the Wait timer it leads to, failing at every allocation: the answer
 * either moves the execution on completely or ends it FAILED; never half. */
Test(step_atomic, a_failed_allocation_in_a_task_answer_undoes_it)
{
	struct rig r;
	rig_init(&r, TASK_DEF);
	int failed = 0;
	bool done = false;
	for (long n = 0; !done; n++) {
		cr_assert_lt(n, 20000, "the walk does not end");
		char name[32];
		snprintf(name, sizeof name, "t%ld", n);
		r.n_tasks = r.open_tasks = 0; // the rig keeps 256 tokens
		int before = 0;
		char *arn = rig_start(&r, name, "{}");
		cr_assert_eq(r.n_tasks, before + 1);
		r.finished = false;
		r.status_ended = 0;
		struct sl_error err;
		sl_error_clear(&err);
		json_t *out = step_test_json("{\"Payload\":{\"ok\":true}}");
		store_batch_t *b = rig_batch(&r);
		sl_alloc_fail_after(n);
		sl_err e = step_task_succeed(r.eng, b, r.tokens[before], out, &r.fx, &err);
		done = sl_alloc_fail_pending();
		sl_alloc_fail_after(-1);
		if (e != SL_OK) {
			// refused before the task was found (memory ran out while looking):
			// nothing was written and the task still waits
			cr_assert_eq(e, SL_ERR_NOMEM, "at %ld: %s %s", n, sl_err_name(e),
			             sl_error_text(&err));
			cr_assert_not(r.finished);
			cr_assert_eq(
			        step_task_succeed(r.eng, b, r.tokens[before], out, &r.fx, &err),
			        SL_OK);
		}
		json_decref(out);
		cr_assert_eq(store_batch_commit(r.st), SL_OK);
		rig_settle(&r);
		sl_clock_fake_advance(6000);
		rig_settle(&r);
		if (check_ended(&r, arn, "ExecutionSucceeded", n)) {
			failed++;
			cr_assert_not(done, "nothing failed, yet the execution did");
		}
		cr_assert_eq(count_all(&r, STORE_DB_TIMERS), 0);
	}
	cr_assert_gt(failed, 10, "the walk failed answers (%d)", failed);
	rig_free(&r);
}

/* StopExecution failing at every allocation: either the execution is ABORTED completely or
 * it is untouched and still waits on its task. */
Test(step_atomic, a_failed_allocation_in_a_stop_changes_nothing)
{
	struct rig r;
	rig_init(&r, TASK_DEF);
	int refused = 0;
	bool done = false;
	for (long n = 0; !done; n++) {
		cr_assert_lt(n, 20000, "the walk does not end");
		char name[32];
		snprintf(name, sizeof name, "s%ld", n);
		r.n_tasks = r.open_tasks = 0;
		char *arn = rig_start(&r, name, "{}");
		json_t *h0 = rig_history(&r, arn);
		size_t n0 = json_array_size(h0);
		json_decref(h0);
		r.finished = false;
		r.status_ended = 0;
		struct sl_error err;
		sl_error_clear(&err);
		store_batch_t *b = rig_batch(&r);
		sl_alloc_fail_after(n);
		sl_err e = step_stop(r.eng, b, arn, "Stop", "by test", &r.fx, &err);
		done = sl_alloc_fail_pending();
		sl_alloc_fail_after(-1);
		cr_assert_eq(store_batch_commit(r.st), SL_OK);
		json_t *h = rig_history(&r, arn);
		store_txn_t *txn;
		cr_assert_eq(store_read_begin(r.st, &txn), SL_OK);
		json_t *d = NULL;
		cr_assert_eq(step_describe(r.eng, txn, arn, &d, NULL), SL_OK);
		store_read_end(txn);
		if (e != SL_OK) {
			refused++;
			cr_assert_str_eq(js(d, "status"), "RUNNING");
			cr_assert_eq(json_array_size(h), n0, "no event of the undone stop stays");
			cr_assert_eq(count_under(&r, STORE_DB_FRAMES, arn), 1);
			cr_assert_not(r.finished, "an undone stop told nobody");
			cr_assert_eq(
			        step_stop(r.eng, rig_batch(&r), arn, "Stop", "again", &r.fx, &err),
			        SL_OK);
			cr_assert_eq(store_batch_commit(r.st), SL_OK);
		} else {
			cr_assert_str_eq(js(d, "status"), "ABORTED");
			cr_assert_eq(json_array_size(h), n0 + 1);
			cr_assert_str_eq(js(json_array_get(h, n0), "type"), "ExecutionAborted");
			cr_assert_eq(count_under(&r, STORE_DB_FRAMES, arn), 0);
		}
		json_decref(d);
		json_decref(h);
		cr_assert(r.finished);
		cr_assert_eq(r.status, STEP_ABORTED);
		cr_assert_eq(r.status_ended, 1);
	}
	cr_assert_gt(refused, 5, "the walk refused stops (%d)", refused);
	rig_free(&r);
}

static const char *const LEASE_DEF
        = "{\"StartAt\":\"T\",\"States\":{"
          "\"T\":{\"Type\":\"Task\",\"Resource\":"
          "\"arn:aws:states:us-east-1:000000000000:activity:act\","
          "\"HeartbeatSeconds\":30,\"TimeoutSeconds\":100,\"End\":true}}}";

/* A worker taking a task (step_task_started with leases: the lease, ActivityStarted, the
 * heartbeat timer) failing at every allocation: either all of it or none, and the task
 * can be taken again after a refusal. */
Test(step_atomic, a_failed_allocation_in_a_task_start_changes_nothing)
{
	struct rig r;
	rig_init(&r, LEASE_DEF);
	r.eng->opt.lease_tasks = true;
	int refused = 0;
	bool done = false;
	for (long n = 0; !done; n++) {
		cr_assert_lt(n, 20000, "the walk does not end");
		char name[32];
		snprintf(name, sizeof name, "l%ld", n);
		r.n_tasks = r.open_tasks = r.n_timers = 0;
		char *arn = rig_start(&r, name, "{}");
		cr_assert_eq(r.n_tasks, 1);
		json_t *h0 = rig_history(&r, arn);
		size_t n0 = json_array_size(h0);
		json_decref(h0);
		int timers0 = r.n_timers;
		struct sl_error err;
		sl_error_clear(&err);
		struct step_started out;
		store_batch_t *b = rig_batch(&r);
		sl_alloc_fail_after(n);
		sl_err e = step_task_started(r.eng, b, r.tokens[0], "w1", &r.fx, &out, &err);
		done = sl_alloc_fail_pending();
		sl_alloc_fail_after(-1);
		cr_assert_eq(store_batch_commit(r.st), SL_OK);
		json_t *h = rig_history(&r, arn);
		store_txn_t *txn;
		struct step_task_info ti;
		cr_assert_eq(store_read_begin(r.st, &txn), SL_OK);
		cr_assert_eq(step_task_info(r.eng, txn, r.tokens[0], &ti), SL_OK);
		store_read_end(txn);
		if (e != SL_OK) {
			refused++;
			cr_assert_eq(out.input, NULL);
			cr_assert_eq(json_array_size(h), n0, "no event of the undone start stays");
			cr_assert_eq(ti.state, STEP_TASK_WAITING, "the lease was undone");
			cr_assert_eq(r.n_timers, timers0, "an undone start told nobody");
			sl_error_clear(&err);
			cr_assert_eq(step_task_started(r.eng, rig_batch(&r), r.tokens[0], "w1",
			                               &r.fx, &out, &err),
			             SL_OK, "%s", sl_error_text(&err));
			cr_assert_eq(store_batch_commit(r.st), SL_OK);
			json_decref(h);
			h = rig_history(&r, arn);
		} else {
			cr_assert_eq(ti.state, STEP_TASK_TAKEN);
		}
		cr_assert_eq(json_array_size(h), n0 + 1);
		cr_assert_eq(rig_count_type(h, "ActivityStarted"), 1);
		cr_assert_eq(r.n_timers, timers0 + 1, "the heartbeat timer, told once");
		json_decref(h);
		json_decref(out.input);
		// the execution goes on from the lease
		json_t *res = step_test_json("{\"ok\":1}");
		cr_assert_eq(step_task_succeed(r.eng, rig_batch(&r), r.tokens[0], res, &r.fx, &err),
		             SL_OK);
		json_decref(res);
		cr_assert_eq(store_batch_commit(r.st), SL_OK);
		rig_settle(&r);
		h = rig_history(&r, arn);
		cr_assert_str_eq(js(json_array_get(h, json_array_size(h) - 1), "type"),
		                 "ExecutionSucceeded");
		for (size_t i = 0; i < json_array_size(h); i++)
			cr_assert_eq(
			        json_integer_value(json_object_get(json_array_get(h, i), "id")),
			        (json_int_t)i + 1);
		json_decref(h);
	}
	cr_assert_gt(refused, 5, "the walk refused task starts (%d)", refused);
	rig_free(&r);
}

static const char *const REDRIVE_DEF
        = "{\"StartAt\":\"A\",\"States\":{"
          "\"A\":{\"Type\":\"Pass\",\"Result\":{\"x\":1},\"Next\":\"T\"},"
          "\"T\":{\"Type\":\"Task\",\"Resource\":\"arn:aws:states:::lambda:invoke\","
          "\"TimeoutSeconds\":100,\"End\":true}},\"TimeoutSeconds\":1000}";

/* RedriveExecution failing at every allocation: either the execution runs again
 * completely (ExecutionRedriven, a new task) or it is still FAILED as it was. */
Test(step_atomic, a_failed_allocation_in_a_redrive_changes_nothing)
{
	struct rig r;
	rig_init(&r, REDRIVE_DEF);
	int refused = 0;
	bool done = false;
	for (long n = 0; !done; n++) {
		cr_assert_lt(n, 20000, "the walk does not end");
		char name[32];
		snprintf(name, sizeof name, "r%ld", n);
		r.n_tasks = r.open_tasks = 0;
		char *arn = rig_start(&r, name, "{}");
		struct sl_error err;
		sl_error_clear(&err);
		cr_assert_eq(
		        step_task_fail(r.eng, rig_batch(&r), r.tokens[0], "Boom", "c", &r.fx, &err),
		        SL_OK);
		cr_assert_eq(store_batch_commit(r.st), SL_OK);
		rig_settle(&r);
		json_t *h0 = rig_history(&r, arn);
		size_t n0 = json_array_size(h0);
		json_decref(h0);
		int running0 = r.status_running;
		store_batch_t *b = rig_batch(&r);
		sl_alloc_fail_after(n);
		sl_err e = step_redrive(r.eng, b, arn, NULL, NULL, &r.fx, &err);
		done = sl_alloc_fail_pending();
		sl_alloc_fail_after(-1);
		cr_assert_eq(store_batch_commit(r.st), SL_OK);
		rig_settle(&r);
		json_t *h = rig_history(&r, arn);
		store_txn_t *txn;
		cr_assert_eq(store_read_begin(r.st, &txn), SL_OK);
		json_t *d = NULL;
		cr_assert_eq(step_describe(r.eng, txn, arn, &d, NULL), SL_OK);
		store_read_end(txn);
		if (e != SL_OK) {
			refused++;
			cr_assert_str_eq(js(d, "status"), "FAILED");
			cr_assert_eq(json_array_size(h), n0,
			             "no event of the undone redrive stays");
			cr_assert_eq(count_under(&r, STORE_DB_FRAMES, arn), 0);
			cr_assert_eq(r.status_running, running0, "an undone redrive told nobody");
			cr_assert_eq(r.n_tasks, 1);
			sl_error_clear(&err);
			cr_assert_eq(
			        step_redrive(r.eng, rig_batch(&r), arn, NULL, NULL, &r.fx, &err),
			        SL_OK, "%s", sl_error_text(&err));
			cr_assert_eq(store_batch_commit(r.st), SL_OK);
			rig_settle(&r);
			json_decref(h);
			h = rig_history(&r, arn);
		}
		json_decref(d);
		cr_assert_eq(rig_count_type(h, "ExecutionRedriven"), 1);
		cr_assert_eq(r.status_running, running0 + 1);
		cr_assert_eq(r.n_tasks, 2, "the redriven state asked for its task, once");
		r.finished = false;
		r.status_ended = 0;
		json_t *res = step_test_json("{\"ok\":1}");
		cr_assert_eq(step_task_succeed(r.eng, rig_batch(&r), r.tokens[1], res, &r.fx, &err),
		             SL_OK, "%s", sl_error_text(&err));
		json_decref(res);
		cr_assert_eq(store_batch_commit(r.st), SL_OK);
		rig_settle(&r);
		// the whole history: ids dense, one redrive, the end recorded and told once
		json_decref(h);
		h = rig_history(&r, arn);
		for (size_t i = 0; i < json_array_size(h); i++)
			cr_assert_eq(
			        json_integer_value(json_object_get(json_array_get(h, i), "id")),
			        (json_int_t)i + 1);
		cr_assert_str_eq(js(json_array_get(h, json_array_size(h) - 1), "type"),
		                 "ExecutionSucceeded");
		cr_assert_eq(rig_count_type(h, "ExecutionFailed"), 1);
		json_decref(h);
		cr_assert_eq(count_under(&r, STORE_DB_FRAMES, arn), 0);
		cr_assert_eq(count_all(&r, STORE_DB_TASK_TOKENS), 0);
		cr_assert(r.finished);
		cr_assert_eq(r.status, STEP_SUCCEEDED);
		cr_assert_eq(r.status_ended, 1);
	}
	cr_assert_gt(refused, 5, "the walk refused redrives (%d)", refused);
	rig_free(&r);
}

/* The record caches follow the store: a record changed by another writer (here, by hand)
 * is read from the store, not from the engine's memory. */
Test(step_atomic, record_caches_follow_the_store)
{
	struct rig r;
	rig_init(&r, TASK_DEF);
	char *arn = rig_start(&r, "cached", "{}");
	struct store_key k;
	store_key_init(&k);
	store_key_str(&k, arn);
	store_batch_t *b = rig_batch(&r);
	struct store_val v;
	cr_assert_eq(store_get(store_batch_txn(b), STORE_DB_EXECUTIONS, k.buf, k.len, &v), SL_OK);
	char *text = strndup(v.data, v.len);
	char *at = strstr(text, "\"status\":\"RUNNING\"");
	cr_assert_not_null(at, "%s", text);
	memcpy(at, "\"status\":\"ABORTED\"", 18);
	cr_assert_eq(store_put(store_batch_txn(b), STORE_DB_EXECUTIONS, k.buf, k.len, text,
	                       strlen(text)),
	             SL_OK);
	free(text);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r.st, &txn), SL_OK);
	json_t *d = NULL;
	cr_assert_eq(step_describe(r.eng, txn, arn, &d, NULL), SL_OK);
	store_read_end(txn);
	cr_assert_str_eq(js(d, "status"), "ABORTED");
	json_decref(d);
	// the engine acts on the stored record too: a stop finds nothing running to stop
	json_t *h0 = rig_history(&r, arn);
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_stop(r.eng, rig_batch(&r), arn, "E", "c", &r.fx, &err), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	json_t *h = rig_history(&r, arn);
	cr_assert_eq(json_array_size(h), json_array_size(h0));
	cr_assert_not(r.finished);
	json_decref(h0);
	json_decref(h);
	rig_free(&r);
}

/* ---- the stored text: the engine's serializer writes what jansson's compact dump does ---- */

static uint64_t rnd_state = 0x9E3779B97F4A7C15ull;

static uint64_t
rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static json_t *
rnd_string(void)
{
	static const char *const pieces[] = { "a", "é", "\"",   "\\", "\n", "\t", "\x01", "\x1f",
		                              "/", "€", "\x7f", "z9", "𝄞",  " ",  "\r",   "\b" };
	char buf[256];
	size_t n = 0, k = rnd() % 24;
	if (rnd() % 3 == 0) { // a clean run first: the special byte then sits in a later block
		n = 1 + rnd() % 20;
		memset(buf, 'y', n);
	}
	for (size_t i = 0; i < k; i++) {
		const char *p = pieces[rnd() % (sizeof pieces / sizeof *pieces)];
		size_t l = strlen(p);
		memcpy(buf + n, p, l);
		n += l;
	}
	// sometimes a long clean run (the one-copy path) or an embedded NUL
	if (rnd() % 4 == 0) {
		memset(buf + n, 'x', 40);
		n += 40;
	}
	if (rnd() % 8 == 0)
		buf[n++] = 0;
	return json_stringn(buf, n);
}

static json_t *
rnd_doc(int depth)
{
	switch (rnd() % (depth > 3 ? 5 : 7)) {
	case 0: return rnd_string();
	case 1: {
		static const json_int_t ints[] = { 0, -1, 7, INT64_MAX, INT64_MIN, 1000000007 };
		return json_integer(ints[rnd() % 6]);
	}
	case 2: {
		static const double reals[] = { 0.1, -2.5, 1e300, 3.0, 1.0 / 3 };
		return json_real(reals[rnd() % 5]);
	}
	case 3: return rnd() % 2 ? json_true() : json_false();
	case 4: return json_null();
	case 5: {
		json_t *a = json_array();
		for (size_t i = rnd() % 5; i > 0; i--)
			json_array_append_new(a, rnd_doc(depth + 1));
		return a;
	}
	default: {
		json_t *o = json_object();
		for (size_t i = rnd() % 5; i > 0; i--) {
			json_t *k = rnd_string();
			json_object_setn_new(o, json_string_value(k), json_string_length(k),
			                     rnd_doc(depth + 1));
			json_decref(k);
		}
		return o;
	}
	}
}

Test(step_atomic, stored_text_is_jansson_compact_dump)
{
	for (int i = 0; i < 20000; i++) {
		json_t *v = rnd_doc(0);
		char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		cr_assert_not_null(want);
		struct step_buf b;
		step_buf_init(&b);
		cr_assert(step_buf_json(&b, v));
		cr_assert_eq(b.len, strlen(want), "%s", want);
		cr_assert(memcmp(b.p, want, b.len) == 0, "got %.*s want %s", (int)b.len, b.p, want);
		step_buf_free(&b);
		free(want);
		json_decref(v);
	}
}
