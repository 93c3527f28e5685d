/*
 * The machine resolver: executions record the revision they started with and keep it
 * while the current revision changes; registered machines take precedence.
 */
#include "tests/stepper/step_test_util.h"

struct revs {
	struct sm_machine *m[3]; /* by revision 1, 2 */
	uint32_t current;
	unsigned calls;
	bool saw_txn;
};

static const struct sm_machine *
resolve(void *arg, store_txn_t *txn, const char *name, uint32_t *revision)
{
	struct revs *r = arg;
	r->calls++;
	r->saw_txn = r->saw_txn || txn != NULL;
	if (strcmp(name, "m") != 0)
		return NULL;
	if (*revision == 0)
		*revision = r->current;
	return *revision >= 1 && *revision <= 2 ? r->m[*revision] : NULL;
}

struct outs {
	json_t *by_arn;
};

static void
on_finished(void *arg, const struct step_finished *f)
{
	struct outs *o = arg;
	json_object_set(o->by_arn, f->execution_arn, f->output ? f->output : json_null());
}

#define DEF(word)                                                                                  \
	"{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"Result\":\"" word               \
	"\",\"End\":true}}}"

Test(resolver, executions_keep_their_revision)
{
	char dir[] = "/tmp/step-resolver-XXXXXX";
	cr_assert(mkdtemp(dir));
	struct sl_error err;
	sl_error_clear(&err);
	store_t *st = NULL;
	cr_assert_eq(store_open(dir, NULL, &st, &err), SL_OK, "%s", sl_error_text(&err));
	struct revs r = { .m = { NULL, step_test_compile(DEF("r1")), step_test_compile(DEF("r2")) },
		          .current = 1 };
	struct outs o = { .by_arn = json_object() };
	struct step_effects fx = { .arg = &o, .finished = on_finished };
	step_engine_t *eng = NULL;
	cr_assert_eq(step_engine_new(st, NULL, &eng), SL_OK);
	step_engine_set_resolver(eng, resolve, &r);

	store_batch_t *b = NULL;
	char a1[STEP_ARN_MAX], a2[STEP_ARN_MAX], a3[STEP_ARN_MAX];
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	struct step_start s1 = { .machine = "m", .name = "one" };
	cr_assert_eq(step_start(eng, b, &s1, a1, &fx, &err), SL_OK, "%s", sl_error_text(&err));
	r.current = 2; // an update while "one" has not run a single state
	struct step_start s2 = { .machine = "m", .name = "two" };
	cr_assert_eq(step_start(eng, b, &s2, a2, &fx, &err), SL_OK, "%s", sl_error_text(&err));
	struct step_start s3 = { .machine = "m", .revision = 1, .name = "three" };
	cr_assert_eq(step_start(eng, b, &s3, a3, &fx, &err), SL_OK, "%s", sl_error_text(&err));
	struct step_start bad = { .machine = "other", .name = "x" };
	cr_assert_eq(step_start(eng, b, &bad, NULL, &fx, &err), SL_ERR_SM_NOT_FOUND);
	sl_error_clear(&err);
	cr_assert_eq(store_batch_commit(st), SL_OK);

	/* a fresh engine (as after a restart) reads the revisions back from the records */
	step_engine_free(eng);
	cr_assert_eq(step_engine_new(st, NULL, &eng), SL_OK);
	step_engine_set_resolver(eng, resolve, &r);
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	cr_assert_eq(step_engine_recover(eng, b, &err), SL_OK);
	while (step_engine_has_ready(eng))
		cr_assert_eq(step_run_ready(eng, b, &fx, NULL, &err), SL_OK, "%s",
		             sl_error_text(&err));
	cr_assert_eq(store_batch_commit(st), SL_OK);

	cr_assert_str_eq(json_string_value(json_object_get(o.by_arn, a1)), "r1");
	cr_assert_str_eq(json_string_value(json_object_get(o.by_arn, a2)), "r2");
	cr_assert_str_eq(json_string_value(json_object_get(o.by_arn, a3)), "r1");
	cr_assert(r.saw_txn);

	store_txn_t *txn = NULL;
	cr_assert_eq(store_read_begin(st, &txn), SL_OK);
	char name[96];
	uint32_t rev = 0;
	cr_assert_eq(step_execution_machine(eng, txn, a2, name, sizeof name, &rev, &err), SL_OK);
	cr_assert_str_eq(name, "m");
	cr_assert_eq(rev, 2);
	cr_assert_eq(step_execution_machine(eng, txn, a1, name, sizeof name, &rev, &err), SL_OK);
	cr_assert_eq(rev, 1);
	cr_assert_eq(step_execution_machine(eng, txn, "arn:aws:states:us-east-1:0:execution:m:no",
	                                    name, sizeof name, &rev, &err),
	             SL_ERR_EXEC_NOT_FOUND);
	store_read_end(txn);

	step_engine_free(eng);
	json_decref(o.by_arn);
	sm_machine_free(r.m[1]);
	sm_machine_free(r.m[2]);
	store_free(st);
	step_test_rmtree(dir);
}

Test(resolver, registered_machines_come_first)
{
	char dir[] = "/tmp/step-resolver-XXXXXX";
	cr_assert(mkdtemp(dir));
	struct sl_error err;
	sl_error_clear(&err);
	store_t *st = NULL;
	cr_assert_eq(store_open(dir, NULL, &st, &err), SL_OK, "%s", sl_error_text(&err));
	struct revs r = { .m = { NULL, step_test_compile(DEF("resolved")), NULL }, .current = 1 };
	struct sm_machine *reg = step_test_compile(DEF("registered"));
	struct outs o = { .by_arn = json_object() };
	struct step_effects fx = { .arg = &o, .finished = on_finished };
	step_engine_t *eng = NULL;
	cr_assert_eq(step_engine_new(st, NULL, &eng), SL_OK);
	step_engine_set_resolver(eng, resolve, &r);
	cr_assert_eq(step_engine_add_machine(eng, "m", reg), SL_OK);
	store_batch_t *b = NULL;
	char a[STEP_ARN_MAX];
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	struct step_start s1 = { .machine = "m", .name = "one" };
	cr_assert_eq(step_start(eng, b, &s1, a, &fx, &err), SL_OK, "%s", sl_error_text(&err));
	while (step_engine_has_ready(eng))
		cr_assert_eq(step_run_ready(eng, b, &fx, NULL, &err), SL_OK);
	cr_assert_eq(store_batch_commit(st), SL_OK);
	cr_assert_str_eq(json_string_value(json_object_get(o.by_arn, a)), "registered");
	cr_assert_eq(r.calls, 0);
	step_engine_free(eng);
	json_decref(o.by_arn);
	sm_machine_free(r.m[1]);
	sm_machine_free(reg);
	store_free(st);
	step_test_rmtree(dir);
}
