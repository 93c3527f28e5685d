/*
 * The EXPRESS engine's options: no_history writes no history events (the execution runs
 * the same: Pass, Wait, a mocked Task with Retry, Map, Catch), and a no_sync store holds
 * what the engine wrote within one process.
 */
#include "tests/stepper/step_test_util.h"

#define FLOW                                                                                       \
	"{\"StartAt\":\"P\",\"States\":{"                                                          \
	"\"P\":{\"Type\":\"Pass\",\"Result\":[1,2],\"ResultPath\":\"$.items\",\"Next\":\"W\"},"    \
	"\"W\":{\"Type\":\"Wait\",\"Seconds\":2,\"Next\":\"T\"},"                                  \
	"\"T\":{\"Type\":\"Task\",\"Resource\":\"arn:aws:states:::lambda:invoke\","                \
	"\"Retry\":[{\"ErrorEquals\":[\"Boom\"],\"IntervalSeconds\":1,\"MaxAttempts\":2}],"        \
	"\"ResultPath\":\"$.t\",\"Next\":\"M\"},"                                                  \
	"\"M\":{\"Type\":\"Map\",\"ItemsPath\":\"$.items\",\"ResultPath\":\"$.m\",\"Iterator\":"   \
	"{\"StartAt\":\"I\",\"States\":{\"I\":{\"Type\":\"Pass\",\"End\":true}}},\"End\":true}}}"
#define MOCK "{\"T\":[{\"Throw\":{\"Error\":\"Boom\"}},{\"Return\":{\"ok\":true}}]}"

Test(step_express, no_history_runs_the_same_and_writes_no_event)
{
	struct step_local_result with = { 0 }, without = { 0 };
	struct step_options durable = { .jitter_seed = 7 };
	struct step_options express = { .jitter_seed = 7, .no_history = true };
	step_test_run(FLOW, "{\"a\":1}", MOCK, &durable, &with);
	step_test_run(FLOW, "{\"a\":1}", MOCK, &express, &without);
	step_test_expect_output(&with, "{\"a\":1,\"items\":[1,2],\"t\":{\"ok\":true},\"m\":[1,2]}");
	step_test_expect_output(&without,
	                        "{\"a\":1,\"items\":[1,2],\"t\":{\"ok\":true},\"m\":[1,2]}");
	cr_expect_gt(json_array_size(with.history), 10, "the durable run keeps its history");
	cr_expect_eq(json_array_size(without.history), 0, "no_history wrote %zu event(s)",
	             json_array_size(without.history));
	step_local_result_clear(&with);
	step_local_result_clear(&without);
}

Test(step_express, no_history_failure_is_still_reported)
{
	struct step_local_result r = { 0 };
	struct step_options express = { .no_history = true };
	step_test_run("{\"StartAt\":\"F\",\"States\":{\"F\":{\"Type\":\"Fail\",\"Error\":\"Nope\","
	              "\"Cause\":\"because\"}}}",
	              NULL, NULL, &express, &r);
	step_test_expect_error(&r, "Nope");
	cr_expect(r.cause && strcmp(r.cause, "because") == 0);
	cr_expect_eq(json_array_size(r.history), 0);
	step_local_result_clear(&r);
}

Test(step_express, a_no_sync_store_reads_its_own_commits)
{
	char dir[] = "/tmp/step-express-XXXXXX";
	cr_assert(mkdtemp(dir));
	store_t *st = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	struct store_options o = { .no_sync = true };
	cr_assert_eq(store_open(dir, &o, &st, &err), SL_OK, "%s", sl_error_text(&err));
	store_batch_t *b;
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	cr_assert_eq(store_put(store_batch_txn(b), STORE_DB_META, "k", 1, "v", 1), SL_OK);
	cr_assert_eq(store_batch_commit(st), SL_OK);
	store_txn_t *t;
	cr_assert_eq(store_read_begin(st, &t), SL_OK);
	struct store_val v;
	cr_expect_eq(store_get(t, STORE_DB_META, "k", 1, &v), SL_OK);
	cr_expect(v.len == 1 && memcmp(v.data, "v", 1) == 0);
	store_read_end(t);
	store_free(st);
	step_test_rmtree(dir);
}
