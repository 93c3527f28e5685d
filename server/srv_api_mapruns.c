/*
 * srv_api_mapruns.c - the Map Run operations of Step Functions: DescribeMapRun,
 * ListMapRuns, UpdateMapRun (the children of a run are listed by ListExecutions with
 * mapRunArn, srv_api_executions.c, after srv_api_map_run_check). The records are the stepper's
 * (step_maprun.c).
 */
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "server/srv_api.h"
#include "server/srv_engine.h"
#include "stepper/stepper.h"

/* A map run ARN of this node: "arn:aws:states:<region>:<account>:mapRun:<m>/<label>:<id>". */
static sl_err
check_map_run_arn(const char *arn, struct sl_error *err)
{
	char buf[STEP_ARN_MAX];
	struct sl_arn a;
	sl_err rc = srv_sfn_arn(arn, "mapRun:", buf, sizeof buf, &a, err);
	if (rc)
		return rc;
	const char *rest = a.resource + 7, *slash = strchr(rest, '/');
	if (!slash || slash == rest || !strchr(slash, ':'))
		return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%s'", arn);
	if (strcmp(a.region, sl_arn_region()) != 0 || strcmp(a.account, sl_arn_account()) != 0)
		return sl_error_set(err, SL_ERR_MAP_RUN_NOT_FOUND, "Map Run Does Not Exist: '%s'",
		                    arn);
	return SL_OK;
}

static sl_err
check_exec_arn(const char *arn, struct sl_error *err)
{
	char buf[STEP_ARN_MAX];
	struct sl_arn a;
	return srv_sfn_arn(arn, "execution:", buf, sizeof buf, &a, err);
}

/* Epoch ms members as AWS's timestamps under their API names. */
static void
ms_to_time(json_t *o, const char *from, const char *to)
{
	json_t *v = json_object_get(o, from);
	if (json_is_integer(v))
		json_object_set_new(o, to, srv_json_time(json_integer_value(v)));
	json_object_del(o, from);
}

static sl_err
op_describe(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	srv_engine_t *e = ctx;
	const char *arn;
	sl_err rc = srv_sfn_str_field(body, "mapRunArn", true, &arn, err);
	if (!rc)
		rc = check_map_run_arn(arn, err);
	store_txn_t *txn = NULL;
	if (rc || (rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	json_t *d = NULL;
	rc = step_describe_map_run(srv_engine_stepper(e), txn, arn, &d, err);
	store_read_end(txn);
	if (rc)
		return rc;
	ms_to_time(d, "startMs", "startDate");
	ms_to_time(d, "stopMs", "stopDate");
	ms_to_time(d, "redriveMs", "redriveDate");
	json_object_del(d, "stateMachineArn");
	json_object_del(d, "childMachineArn");
	srv_reply_json(req, d);
	return SL_OK;
}

static sl_err
op_list(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	srv_engine_t *e = ctx;
	const char *arn, *token;
	size_t max = 0;
	sl_err rc = srv_sfn_str_field(body, "executionArn", true, &arn, err);
	if (!rc)
		rc = srv_sfn_str_field(body, "nextToken", false, &token, err);
	if (!rc)
		rc = srv_sfn_max_results(body, 100, &max, err);
	if (!rc)
		rc = check_exec_arn(arn, err);
	store_txn_t *txn = NULL;
	if (rc || (rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	json_t *items = NULL;
	char *next = NULL;
	rc = step_list_map_runs(srv_engine_stepper(e), txn, arn, max, token, &items, &next, err);
	store_read_end(txn);
	if (rc)
		return rc;
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		ms_to_time(it, "startMs", "startDate");
		ms_to_time(it, "stopMs", "stopDate");
	}
	return srv_sfn_reply_page(req, "mapRuns", items, next);
}

/* UpdateMapRun: the new limits apply to the running Map in the request's batch. */
static sl_err
op_update(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	srv_engine_t *e = ctx;
	const char *arn;
	sl_err rc = srv_sfn_str_field(body, "mapRunArn", true, &arn, err);
	if (!rc)
		rc = check_map_run_arn(arn, err);
	if (rc)
		return rc;
	struct step_map_run_update u = { -1, -1, -1 };
	json_t *mc = json_object_get(body, "maxConcurrency");
	json_t *tc = json_object_get(body, "toleratedFailureCount");
	json_t *tp = json_object_get(body, "toleratedFailurePercentage");
	if ((mc && !json_is_integer(mc)) || (tc && !json_is_integer(tc))
	    || (tp && !json_is_number(tp)))
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "maxConcurrency and toleratedFailureCount must be integers, "
		                    "toleratedFailurePercentage a number");
	if (mc && (json_integer_value(mc) < 0 || json_integer_value(mc) > 10000))
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "1 validation error detected: Value at 'maxConcurrency' failed "
		                    "to satisfy constraint: Member must have value between 0 and "
		                    "10000");
	if (tc && json_integer_value(tc) < 0)
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "1 validation error detected: Value at 'toleratedFailureCount' "
		                    "failed to satisfy constraint: Member must have value greater "
		                    "than or equal to 0");
	if (tp && (json_number_value(tp) < 0 || json_number_value(tp) > 100))
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "1 validation error detected: Value at "
		                    "'toleratedFailurePercentage' failed to satisfy constraint: "
		                    "Member must have value between 0 and 100");
	if (!mc && !tc && !tp)
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "at least one of maxConcurrency, toleratedFailureCount and "
		                    "toleratedFailurePercentage is required");
	if (mc)
		u.max_concurrency = json_integer_value(mc);
	if (tc)
		u.tolerated_failure_count = json_integer_value(tc);
	if (tp)
		u.tolerated_failure_percentage = json_number_value(tp);
	store_batch_t *b = NULL;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	if ((rc
	     = step_update_map_run(srv_engine_stepper(e), b, arn, &u, srv_engine_effects(e), err)))
		return rc;
	json_t *out = json_object();
	if (!out)
		return SL_ERR_NOMEM;
	srv_reply_json(req, out);
	srv_engine_kick(e);
	return SL_OK;
}

sl_err
srv_api_map_run_check(step_engine_t *step, store_txn_t *txn, const char *map_run_arn,
                      struct sl_error *err)
{
	sl_err rc = check_map_run_arn(map_run_arn, err);
	if (rc)
		return rc;
	// the run must exist: an unknown one is ResourceNotFound, not an empty list
	json_t *d = NULL;
	rc = step_describe_map_run(step, txn, map_run_arn, &d, err);
	json_decref(d);
	return rc;
}

sl_err
srv_api_mapruns_register(srv_t *s)
{
	srv_engine_t *e = srv_engine_of(s);
	if (!e)
		return SL_ERR_INTERNAL;
	static const struct {
		const char *op;
		srv_op_fn fn;
	} ops[] = {
		{ "AWSStepFunctions.DescribeMapRun", op_describe },
		{ "AWSStepFunctions.ListMapRuns", op_list },
		{ "AWSStepFunctions.UpdateMapRun", op_update },
	};
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
		sl_err rc = srv_register_op(s, ops[i].op, ops[i].fn, e);
		if (rc)
			return rc;
	}
	return SL_OK;
}
