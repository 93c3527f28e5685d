/*
 * test_step_prune.c - closed executions expire (step_prune.c): executions closed before the
 * cutoff go with everything they own (history, input, listing, map runs and their children),
 * running and recent ones stay, a redriven execution is not taken for its old close, and a
 * prune cut into small slices never shows a parent whose map run lost children.
 */
#include "stepper/step_int.h"
#include "tests/stepper/step_rig.h"

TestSuite(step_prune);

#define DAY_MS (24LL * 3600 * 1000)

static const char *const DEF
        = "{\"StartAt\":\"C\",\"States\":{"
          "\"C\":{\"Type\":\"Choice\",\"Choices\":["
          "{\"Variable\":\"$.fail\",\"IsPresent\":true,\"Next\":\"F\"},"
          "{\"Variable\":\"$.items\",\"IsPresent\":true,\"Next\":\"M\"}],\"Default\":\"W\"},"
          "\"F\":{\"Type\":\"Choice\",\"Choices\":[{\"Variable\":\"$.fail\",\"BooleanEquals\":"
          "true,\"Next\":\"X\"}],\"Default\":\"W\"},"
          "\"X\":{\"Type\":\"Fail\",\"Error\":\"E\",\"Cause\":\"c\"},"
          "\"M\":{\"Type\":\"Map\",\"ItemsPath\":\"$.items\",\"ItemProcessor\":{"
          "\"ProcessorConfig\":{\"Mode\":\"DISTRIBUTED\",\"ExecutionType\":\"STANDARD\"},"
          "\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}},"
          "\"End\":true},"
          "\"W\":{\"Type\":\"Wait\",\"SecondsPath\":\"$.s\",\"End\":true}}}";

static size_t
count_db(struct rig *r, enum store_db db, const char *prefix)
{
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	size_t n = 0;
	if (prefix) {
		struct store_key k;
		store_key_init(&k);
		store_key_str(&k, prefix);
		cr_assert_eq(store_count_prefix(txn, db, k.buf, k.len, &n), SL_OK);
	} else {
		store_cursor_t *cur;
		cr_assert_eq(store_cursor_open(txn, db, &cur), SL_OK);
		cr_assert_eq(store_cursor_seek(cur, NULL, 0), SL_OK);
		struct store_val k, v;
		while (store_cursor_next(cur, &k, &v) == SL_OK)
			n++;
		store_cursor_close(cur);
	}
	store_read_end(txn);
	return n;
}

static sl_err
describe(struct rig *r, const char *arn, char *status, size_t cap)
{
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	json_t *d = NULL;
	sl_err e = step_describe(r->eng, txn, arn, &d, NULL);
	if (e == SL_OK && status)
		snprintf(status, cap, "%s", json_string_value(json_object_get(d, "status")));
	json_decref(d);
	store_read_end(txn);
	return e;
}

static char *
start(struct rig *r, const char *name, const char *input)
{
	static char arns[8][STEP_ARN_MAX];
	static int next;
	char *arn = arns[next++ % 8];
	snprintf(arn, STEP_ARN_MAX, "%s", rig_start(r, name, input));
	return arn;
}

/* The map run children under exec_index: the map run ARNs listed under parent. */
static size_t
children_of(struct rig *r, const char *parent, size_t *records)
{
	store_txn_t *txn;
	cr_assert_eq(store_read_begin(r->st, &txn), SL_OK);
	json_t *runs = NULL;
	char *next = NULL;
	size_t n = 0;
	*records = 0;
	if (step_list_map_runs(r->eng, txn, parent, 0, NULL, &runs, &next, NULL) == SL_OK) {
		size_t i;
		json_t *it;
		json_array_foreach(runs, i, it)
		{
			const char *mr = json_string_value(json_object_get(it, "mapRunArn"));
			struct store_key pk;
			store_key_init(&pk);
			store_key_str(&pk, mr);
			store_cursor_t *cur;
			cr_assert_eq(store_cursor_open(txn, STORE_DB_EXEC_INDEX, &cur), SL_OK);
			cr_assert_eq(store_cursor_seek_prefix(cur, pk.buf, pk.len), SL_OK);
			struct store_val k, v;
			while (store_cursor_next(cur, &k, &v) == SL_OK) {
				n++;
				char child[STEP_ARN_MAX];
				size_t alen = k.len - pk.len - 8;
				memcpy(child, (const char *)k.data + pk.len + 8, alen);
				child[alen] = 0;
				struct store_key xk;
				step_key_exec(&xk, child);
				struct store_val xv;
				if (store_get(txn, STORE_DB_EXECUTIONS, xk.buf, xk.len, &xv)
				    == SL_OK)
					(*records)++;
			}
			store_cursor_close(cur);
		}
	}
	json_decref(runs);
	free(next);
	store_read_end(txn);
	return n;
}

static size_t
prune(struct rig *r, int64_t before, size_t budget, struct step_prune_stats *st)
{
	size_t slices = 0;
	bool more = true;
	while (more) {
		cr_assert_lt(slices, 100000, "the prune does not end");
		struct sl_error err;
		sl_error_clear(&err);
		cr_assert_eq(step_prune(r->eng, rig_batch(r), before, budget, st, &more, &err),
		             SL_OK, "%s", sl_error_text(&err));
		cr_assert_eq(store_batch_commit(r->st), SL_OK);
		slices++;
	}
	return slices;
}

Test(step_prune, old_closed_executions_go_with_all_they_own)
{
	struct rig r;
	rig_init(&r, DEF);
	char *done_old = start(&r, "done-old", "{\"s\":0}");
	char *map_old = start(&r, "map-old", "{\"items\":[1,2,3,4,5,6,7,8,9,10,11,12]}");
	char *running = start(&r, "running", "{\"s\":100000000}");
	char *failed_old = start(&r, "failed-old", "{\"fail\":true}");
	char st[32];
	cr_assert_eq(describe(&r, map_old, st, sizeof st), SL_OK);
	cr_assert_str_eq(st, "SUCCEEDED");
	size_t recs = 0;
	cr_assert_eq(children_of(&r, map_old, &recs), 12);
	cr_assert_eq(recs, 12);
	sl_clock_fake_advance(10 * DAY_MS);
	char *recent = start(&r, "recent", "{\"s\":0}");
	char *failed_recent = start(&r, "failed-recent", "{\"fail\":true}");
	cr_assert_eq(describe(&r, failed_recent, st, sizeof st), SL_OK);
	cr_assert_str_eq(st, "FAILED");
	cr_assert_eq(count_db(&r, STORE_DB_CLOSED, NULL), 5, "running is not indexed");

	struct step_prune_stats stats = { 0 };
	prune(&r, sl_clock_now_ms() - DAY_MS, 1000, &stats);
	cr_assert_eq(stats.executions, 3);
	cr_assert_eq(stats.map_runs, 1);
	cr_assert_eq(stats.children, 12);
	cr_assert_eq(describe(&r, done_old, NULL, 0), SL_ERR_EXEC_NOT_FOUND);
	cr_assert_eq(describe(&r, map_old, NULL, 0), SL_ERR_EXEC_NOT_FOUND);
	cr_assert_eq(describe(&r, failed_old, NULL, 0), SL_ERR_EXEC_NOT_FOUND);
	const char *gone[] = { done_old, map_old, failed_old };
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(count_db(&r, STORE_DB_HISTORY, gone[i]), 0);
		cr_assert_eq(count_db(&r, STORE_DB_EXECUTIONS, gone[i]), 0);
		cr_assert_eq(count_db(&r, STORE_DB_EXEC_INDEX, gone[i]), 0);
	}
	// the only listing left: the three kept executions under their machine; no map run,
	// no child record anywhere
	cr_assert_eq(count_db(&r, STORE_DB_EXEC_INDEX, NULL), 3);
	cr_assert_eq(count_db(&r, STORE_DB_EXEC_INDEX, "m"), 3);
	cr_assert_eq(count_db(&r, STORE_DB_EXECUTIONS, NULL), 3 * 2 + 0 /* record + input */);
	cr_assert_eq(count_db(&r, STORE_DB_CLOSED, NULL), 2);
	cr_assert_eq(describe(&r, running, st, sizeof st), SL_OK);
	cr_assert_str_eq(st, "RUNNING");
	cr_assert_eq(describe(&r, recent, st, sizeof st), SL_OK);
	cr_assert_str_eq(st, "SUCCEEDED");
	cr_assert_gt(count_db(&r, STORE_DB_HISTORY, recent), 2);
	// a recent failed execution can still be redriven
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_redrive(r.eng, rig_batch(&r), failed_recent, NULL, NULL, &r.fx, &err),
	             SL_OK, "%s", sl_error_text(&err));
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	// a second pass finds nothing more
	struct step_prune_stats again = { 0 };
	cr_assert_eq(prune(&r, sl_clock_now_ms() - DAY_MS, 1000, &again), 1);
	cr_assert_eq(again.executions, 0);
	rig_free(&r);
}

/* A failed execution redriven after its close: its old closed entry no longer names it
 * (it runs, or closed at another time); the entry goes, the execution stays. */
Test(step_prune, a_redriven_execution_is_not_taken_for_its_old_close)
{
	struct rig r;
	rig_init(&r, DEF);
	char *arn = start(&r, "again", "{\"fail\":true}");
	sl_clock_fake_advance(DAY_MS);
	// the machine decides on $.fail: the redrive runs state X again, so make it pass by
	// the Wait: rdIn is the Fail state's input, which fails again; that is fine here
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_redrive(r.eng, rig_batch(&r), arn, NULL, NULL, &r.fx, &err), SL_OK, "%s",
	             sl_error_text(&err));
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	rig_settle(&r);
	cr_assert_eq(count_db(&r, STORE_DB_CLOSED, NULL), 2, "the old close and the new one");
	struct step_prune_stats stats = { 0 };
	prune(&r, sl_clock_now_ms() - 1000, 1000, &stats);
	cr_assert_eq(stats.executions, 0);
	cr_assert_eq(count_db(&r, STORE_DB_CLOSED, NULL), 1);
	char st[32];
	cr_assert_eq(describe(&r, arn, st, sizeof st), SL_OK);
	cr_assert_str_eq(st, "FAILED");
	prune(&r, sl_clock_now_ms() + 1, 1000, &stats);
	cr_assert_eq(stats.executions, 1);
	cr_assert_eq(describe(&r, arn, NULL, 0), SL_ERR_EXEC_NOT_FOUND);
	cr_assert_eq(count_db(&r, STORE_DB_CLOSED, NULL), 0);
	rig_free(&r);
}

/* Slices of 16 records: between any two, the parent is either whole (with every child) or
 * gone from the API; at the end nothing of it is left. */
Test(step_prune, small_slices_never_show_a_parent_without_its_children)
{
	struct rig r;
	rig_init(&r, DEF);
	char *map_old = start(&r, "map",
	                      "{\"items\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,"
	                      "18,19,20,21,22,23,24,25,26,27,28,29,30]}");
	size_t recs = 0;
	cr_assert_eq(children_of(&r, map_old, &recs), 30);
	sl_clock_fake_advance(DAY_MS);
	struct step_prune_stats stats = { 0 };
	bool more = true;
	size_t slices = 0;
	int refused = 0;
	struct sl_error err;
	while (more) {
		cr_assert_lt(slices++, 10000);
		sl_error_clear(&err);
		cr_assert_eq(step_prune(r.eng, rig_batch(&r), sl_clock_now_ms(), 16, &stats, &more,
		                        &err),
		             SL_OK, "%s", sl_error_text(&err));
		cr_assert_eq(store_batch_commit(r.st), SL_OK);
		if (describe(&r, map_old, NULL, 0) == SL_OK) {
			cr_assert_eq(children_of(&r, map_old, &recs), 30);
			cr_assert_eq(recs, 30, "a kept parent keeps every child");
		} else if (more) {
			// half-deleted: its name stays taken, so nothing new meets its remains
			struct step_start req = { .machine = "m", .name = "map", .input = NULL };
			sl_error_clear(&err);
			cr_assert_eq(step_start(r.eng, rig_batch(&r), &req, NULL, &r.fx, &err),
			             SL_ERR_EXEC_EXISTS);
			cr_assert_eq(store_batch_commit(r.st), SL_OK);
			refused++;
		}
	}
	cr_assert_gt(refused, 0, "a start met a deletion under way");
	cr_assert_gt(slices, 5, "the prune was cut into slices (%zu)", slices);
	cr_assert_eq(stats.executions, 1);
	cr_assert_eq(stats.children, 30);
	cr_assert_eq(count_db(&r, STORE_DB_EXECUTIONS, NULL), 0);
	cr_assert_eq(count_db(&r, STORE_DB_HISTORY, NULL), 0);
	cr_assert_eq(count_db(&r, STORE_DB_EXEC_INDEX, NULL), 0);
	cr_assert_eq(count_db(&r, STORE_DB_CLOSED, NULL), 0);
	// the name is free again, and the new execution's history is its own
	char *again = start(&r, "map", "{\"s\":0}");
	json_t *h = rig_history(&r, again);
	cr_assert_eq(json_array_size(h), (size_t)count_db(&r, STORE_DB_HISTORY, NULL));
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(h, 0), "type")),
	                 "ExecutionStarted");
	json_decref(h);
	rig_free(&r);
}

/* Data written before the index: one scan at start indexes the closed executions, once. */
Test(step_prune, executions_closed_before_the_index_are_found_once)
{
	struct rig r;
	rig_init(&r, DEF);
	char *a = start(&r, "a", "{\"s\":0}");
	start(&r, "b", "{\"s\":100000000}");
	char *c = start(&r, "c", "{\"fail\":true}");
	// as an older sluice left it: no closed index, no marker
	store_batch_t *b = rig_batch(&r);
	cr_assert_eq(store_del_prefix(store_batch_txn(b), STORE_DB_CLOSED, "E", 1), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	cr_assert_eq(count_db(&r, STORE_DB_CLOSED, NULL), 0);
	size_t n = 0;
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_prune_backfill(r.eng, rig_batch(&r), &n, &err), SL_OK, "%s",
	             sl_error_text(&err));
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	cr_assert_eq(n, 2);
	cr_assert_eq(count_db(&r, STORE_DB_CLOSED, NULL), 2);
	// once: the marker makes the next start skip the scan
	cr_assert_eq(step_prune_backfill(r.eng, rig_batch(&r), &n, &err), SL_OK);
	cr_assert_eq(store_batch_commit(r.st), SL_OK);
	cr_assert_eq(n, 0);
	sl_clock_fake_advance(DAY_MS);
	struct step_prune_stats stats = { 0 };
	prune(&r, sl_clock_now_ms(), 1000, &stats);
	cr_assert_eq(stats.executions, 2);
	cr_assert_eq(describe(&r, a, NULL, 0), SL_ERR_EXEC_NOT_FOUND);
	cr_assert_eq(describe(&r, c, NULL, 0), SL_ERR_EXEC_NOT_FOUND);
	cr_assert_eq(count_db(&r, STORE_DB_EXEC_INDEX, NULL), 1);
	rig_free(&r);
}
