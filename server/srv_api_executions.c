/*
 * srv_api_executions.c - AWSStepFunctions executions: StartExecution, DescribeExecution,
 * GetExecutionHistory, ListExecutions, StopExecution, DescribeStateMachineForExecution,
 * StartSyncExecution.
 *
 * EXPRESS machines run on the express engine (srv_engine.h): StartExecution answers once
 * their start record committed, StartSyncExecution when they end. As AWS, ListExecutions
 * refuses EXPRESS machines (StateMachineTypeNotSupported) and the per-execution calls refuse
 * express ARNs (InvalidArn); StartSyncExecution refuses STANDARD machines.
 * With --mock-config, "stateMachineArn#TestCase" runs with that test case's task responses.
 *
 * The work is the stepper's (srv_engine.c drives it); this file checks the requests,
 * maps ARNs to machine names and revisions, and answers in AWS's shapes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "server/srv_api.h"
#include "server/srv_engine.h"
#include "stepper/step_mock.h"

#define NAME_CAP 81

/* ---- request fields ----------------------------------------------------------------------- */

static sl_err
bool_field(json_t *body, const char *field, bool *set, bool *out, struct sl_error *err)
{
	json_t *v = json_object_get(body, field);
	*set = v && !json_is_null(v);
	if (*set && !json_is_boolean(v))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "Field '%s': expected a boolean",
		                    field);
	*out = *set && json_is_true(v);
	return SL_OK;
}

/* ---- ARNs --------------------------------------------------------------------------------- */

/* "arn:aws:states:R:A:stateMachine:NAME[:VERSION]" -> name, version (0 = none). */
static sl_err
parse_machine_arn(const char *arn, char name[NAME_CAP], uint32_t *version, struct sl_error *err)
{
	char buf[512];
	struct sl_arn a;
	sl_err rc = srv_sfn_arn(arn, "stateMachine:", buf, sizeof buf, &a, err);
	if (rc)
		return rc;
	if (!a.resource[13])
		return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%s'", arn);
	char *nm = a.resource + 13, *qual = strchr(nm, ':');
	*version = 0;
	if (qual) {
		*qual++ = '\0';
		char *end;
		unsigned long v = strtoul(qual, &end, 10);
		if (!*qual || *end || v == 0 || v > UINT32_MAX)
			return sl_error_set(err, SL_ERR_SM_NOT_FOUND,
			                    "State Machine Does Not Exist: '%s'", arn);
		*version = (uint32_t)v;
	}
	if (strlen(nm) >= NAME_CAP)
		return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%s'", arn);
	if (strcmp(a.region, sl_arn_region()) != 0 || strcmp(a.account, sl_arn_account()) != 0)
		return sl_error_set(err, SL_ERR_SM_NOT_FOUND, "State Machine Does Not Exist: '%s'",
		                    arn);
	snprintf(name, NAME_CAP, "%s", nm);
	return SL_OK;
}

/* "arn:aws:states:R:A:execution:MACHINE:NAME"; another region or account is not here. */
static sl_err
check_exec_arn(const char *arn, struct sl_error *err)
{
	char buf[STEP_ARN_MAX];
	struct sl_arn a;
	sl_err rc = srv_sfn_arn(arn, NULL, buf, sizeof buf, &a, err);
	if (rc)
		return rc;
	if (strncmp(a.resource, "express:", 8) == 0) // AWS: no per-execution calls on EXPRESS
		return sl_error_set(
		        err, SL_ERR_INVALID_ARN,
		        "Invalid Arn: 'Resource type not valid in this context: express'");
	if (strncmp(a.resource, "execution:", 10) != 0)
		return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%s'", arn);
	const char *machine = a.resource + 10, *colon = strchr(machine, ':');
	if (!colon || colon == machine || !colon[1] || strchr(colon + 1, ':'))
		return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%s'", arn);
	if (strcmp(a.region, sl_arn_region()) != 0 || strcmp(a.account, sl_arn_account()) != 0)
		return sl_error_set(err, SL_ERR_EXEC_NOT_FOUND, "Execution Does Not Exist: '%s'",
		                    arn);
	return SL_OK;
}

/* A record of STORE_DB_MACHINES by the layout srv_api.h documents. */
static sl_err
machine_record(store_txn_t *txn, int tag, const char *name, uint32_t n, json_t **out)
{
	struct store_key k;
	store_key_init(&k);
	store_key_u32(&k, (uint32_t)tag);
	store_key_str(&k, name);
	store_key_u32(&k, n);
	struct store_val v;
	sl_err rc = store_get(txn, STORE_DB_MACHINES, k.buf, k.len, &v);
	if (rc)
		return rc;
	*out = json_loadb(v.data, v.len, 0, NULL);
	return *out ? SL_OK : SL_ERR_STORE;
}

/* ---- dates -------------------------------------------------------------------------------- */

/* The stepper speaks RFC 3339; AWS's JSON protocol wants epoch seconds. */
static void
date_to_epoch(json_t *o, const char *key)
{
	int64_t ms;
	const char *s = json_string_value(json_object_get(o, key));
	if (s && sl_clock_parse_rfc3339(s, &ms))
		json_object_set_new(o, key, srv_json_time(ms));
}

static void
events_to_epoch(json_t *events)
{
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev) date_to_epoch(ev, "timestamp");
}

/* ---- operations --------------------------------------------------------------------------- */

/* StartExecution (sync false) and StartSyncExecution (sync true). */
static sl_err
start(srv_req_t *req, json_t *body, srv_engine_t *e, bool sync, struct sl_error *err)
{
	const char *smarn, *name, *input_text;
	sl_err rc = srv_sfn_str_field(body, "stateMachineArn", true, &smarn, err);
	if (!rc)
		rc = srv_sfn_str_field(body, "name", false, &name, err);
	if (!rc)
		rc = srv_sfn_str_field(body, "input", false, &input_text, err);
	if (rc)
		return rc;
	// Step Functions Local's mocks: "stateMachineArn#TestCaseName"
	char arnbuf[512];
	const char *test_case = NULL, *hash = strchr(smarn, '#');
	if (hash) {
		if ((size_t)(hash - smarn) >= sizeof arnbuf || !hash[1])
			return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%.300s'",
			                    smarn);
		memcpy(arnbuf, smarn, (size_t)(hash - smarn));
		arnbuf[hash - smarn] = '\0';
		test_case = hash + 1;
		smarn = arnbuf;
	}
	char machine[NAME_CAP];
	uint32_t version = 0, revision = 0;
	if ((rc = parse_machine_arn(smarn, machine, &version, err)))
		return rc;
	struct step_mock *mock = NULL;
	if (test_case && (rc = srv_engine_mock_load(e, machine, test_case, &mock, err))) {
		if (rc == SL_ERR_NOT_FOUND) { // no --mock-config: the '#' is part of a bad ARN
			sl_error_clear(err);
			return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%s#%s'", smarn,
			                    test_case);
		}
		return rc;
	}
	json_t *input = NULL;
	if (input_text) {
		json_error_t je;
		if (!(input = json_loads(input_text, JSON_DECODE_ANY, &je))) {
			step_mock_free(mock);
			return sl_error_set(
			        err, SL_ERR_INVALID_EXECUTION_INPUT,
			        "Invalid execution input: not JSON text (%s at character "
			        "%d)",
			        je.text, je.position);
		}
	}
	store_batch_t *b = NULL;
	if ((rc = srv_req_batch(req, &b)))
		goto out;
	store_txn_t *txn = store_batch_txn(b);
	if (version) {
		json_t *v = NULL;
		if ((rc = machine_record(txn, 'V', machine, version, &v))) {
			if (rc == SL_ERR_NOT_FOUND)
				rc = sl_error_set(err, SL_ERR_SM_NOT_FOUND,
				                  "State Machine Does Not Exist: '%s'", smarn);
			goto out;
		}
		json_int_t r = json_integer_value(json_object_get(v, "revision"));
		json_decref(v);
		revision = r > 0 && r <= UINT32_MAX ? (uint32_t)r : 0;
	}
	// compile here so a missing or broken machine is this request's error
	const struct sm_machine *m = NULL;
	if ((rc = srv_engine_machine(e, txn, machine, &revision, &m, err))) {
		if (rc == SL_ERR_SM_NOT_FOUND) {
			sl_error_clear(err);
			rc = sl_error_set(err, rc, "State Machine Does Not Exist: '%s'", smarn);
		}
		goto out;
	}
	bool express = srv_engine_machine_is_express(txn, machine);
	if (sync && !express) {
		rc = sl_error_set(err, SL_ERR_SM_TYPE_NOT_SUPPORTED,
		                  "This operation is not supported by this type of state machine: "
		                  "StartSyncExecution runs EXPRESS state machines only");
		goto out;
	}
	struct step_start st
	        = { .machine = machine, .revision = revision, .name = name, .input = input };
	char arn[STEP_ARN_MAX];
	if (express) {
		int64_t start_ms = 0;
		rc = srv_engine_express_start(e, req, &st, sync, mock, test_case, arn, &start_ms,
		                              err);
		mock = NULL;
		if (rc == SL_OK && !sync) {
			json_t *out = json_pack("{s:s,s:o}", "executionArn", arn, "startDate",
			                        srv_json_time(start_ms));
			if (!out)
				rc = SL_ERR_NOMEM;
			else
				srv_reply_json(req, out);
		}
		goto out;
	}
	step_engine_t *step = srv_engine_stepper(e);
	rc = step_start(step, b, &st, arn, srv_engine_effects(e), err);
	json_t *d = NULL;
	if (rc == SL_ERR_EXEC_EXISTS) {
		// the same name and input while it runs is the same request again
		struct sl_error e2;
		sl_error_clear(&e2);
		json_t *prev = NULL;
		bool same = false;
		if (sl_arn_format(arn, sizeof arn, "states", "execution", machine, name, NULL)
		            == SL_OK
		    && step_describe(step, txn, arn, &prev, &e2) == SL_OK) {
			const char *ptext = json_string_value(json_object_get(prev, "input"));
			const char *pst = json_string_value(json_object_get(prev, "status"));
			json_t *pin = json_loads(ptext ? ptext : "{}", JSON_DECODE_ANY, NULL);
			json_t *want = input ? json_incref(input) : json_object();
			same = pin && want && json_equal(pin, want) && pst
			        && strcmp(pst, "RUNNING") == 0;
			json_decref(pin);
			json_decref(want);
		}
		if (same) {
			sl_error_clear(err);
			rc = SL_OK;
			d = prev;
		} else {
			json_decref(prev);
		}
	} else if (rc == SL_OK) {
		if (mock) {
			// kept with the start (same batch): a restart mocks it again
			rc = srv_engine_mock_persist(txn, arn, machine, test_case);
			if (rc == SL_OK) {
				rc = srv_engine_mock_attach(e, arn, mock);
				mock = NULL; // taken either way
			}
		}
		if (rc == SL_OK)
			rc = step_describe(step, txn, arn, &d, err);
	}
	if (rc)
		goto out;
	date_to_epoch(d, "startDate");
	json_t *out = json_pack("{s:O,s:O}", "executionArn", json_object_get(d, "executionArn"),
	                        "startDate", json_object_get(d, "startDate"));
	json_decref(d);
	if (!out) {
		rc = SL_ERR_NOMEM;
		goto out;
	}
	srv_reply_json(req, out);
out:
	step_mock_free(mock);
	json_decref(input);
	if (rc == SL_OK)
		srv_engine_kick(e);
	return rc;
}

static sl_err
op_start(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	return start(req, body, ctx, false, err);
}

static sl_err
op_start_sync(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	return start(req, body, ctx, true, err);
}

/* Opens a read transaction; *txn is ended by the caller. */
static sl_err
read_begin(srv_req_t *req, store_txn_t **txn)
{
	return store_read_begin(srv_store(srv_req_server(req)), txn);
}

static sl_err
op_describe(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	srv_engine_t *e = ctx;
	const char *arn;
	sl_err rc = srv_sfn_str_field(body, "executionArn", true, &arn, err);
	if (!rc)
		rc = check_exec_arn(arn, err);
	store_txn_t *txn = NULL;
	if (rc || (rc = read_begin(req, &txn)))
		return rc;
	json_t *d = NULL;
	rc = step_describe(srv_engine_stepper(e), txn, arn, &d, err);
	if (!rc)
		rc = step_redrive_describe(srv_engine_stepper(e), txn, arn, d, err);
	store_read_end(txn);
	if (rc) {
		json_decref(d);
		return rc;
	}
	date_to_epoch(d, "startDate");
	date_to_epoch(d, "stopDate");
	date_to_epoch(d, "redriveDate");
	srv_reply_json(req, d);
	return SL_OK;
}

static sl_err
op_history(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	srv_engine_t *e = ctx;
	const char *arn, *token;
	struct step_history_query q = { 0 };
	bool rev_set;
	sl_err rc = srv_sfn_str_field(body, "executionArn", true, &arn, err);
	if (!rc)
		rc = srv_sfn_str_field(body, "nextToken", false, &token, err);
	if (!rc)
		rc = srv_sfn_max_results(body, 0, &q.max_results, err);
	if (!rc)
		rc = bool_field(body, "reverseOrder", &rev_set, &q.reverse, err);
	if (!rc)
		rc = bool_field(body, "includeExecutionData", &q.include_data_set, &q.include_data,
		                err);
	if (!rc)
		rc = check_exec_arn(arn, err);
	store_txn_t *txn = NULL;
	if (rc || (rc = read_begin(req, &txn)))
		return rc;
	q.next_token = token;
	json_t *events = NULL;
	char *next = NULL;
	rc = step_history_page(srv_engine_stepper(e), txn, arn, &q, &events, &next, err);
	store_read_end(txn);
	if (rc)
		return rc;
	events_to_epoch(events);
	return srv_sfn_reply_page(req, "events", events, next);
}

static bool
known_status(const char *s)
{
	static const char *const st[]
	        = { "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE" };
	for (size_t i = 0; i < sizeof st / sizeof *st; i++)
		if (strcmp(s, st[i]) == 0)
			return true;
	return false;
}

/* ListExecutions items carry redriveCount and redriveDate; redriveFilter (may be NULL) keeps
 * the REDRIVEN or NOT_REDRIVEN ones of the page (a filtered page may be short, with
 * nextToken still given, as AWS allows). */
static sl_err
add_redrive_fields(step_engine_t *step, store_txn_t *txn, json_t *items, const char *filter,
                   struct sl_error *err)
{
	for (size_t i = 0; i < json_array_size(items);) {
		json_t *it = json_array_get(items, i);
		json_t *d = json_object();
		if (!d)
			return SL_ERR_NOMEM;
		sl_err rc = step_redrive_describe(
		        step, txn, json_string_value(json_object_get(it, "executionArn")), d, err);
		if (rc == SL_ERR_EXEC_NOT_FOUND) { // listed, record gone: nothing to add
			sl_error_clear(err);
			json_decref(d);
			i++;
			continue;
		}
		if (rc) {
			json_decref(d);
			return rc;
		}
		json_int_t count = json_integer_value(json_object_get(d, "redriveCount"));
		if (filter && (count > 0) != (strcmp(filter, "REDRIVEN") == 0)) {
			json_decref(d);
			json_array_remove(items, i);
			continue;
		}
		json_object_set(it, "redriveCount", json_object_get(d, "redriveCount"));
		if (json_object_get(d, "redriveDate"))
			json_object_set(it, "redriveDate", json_object_get(d, "redriveDate"));
		json_decref(d);
		i++;
	}
	return SL_OK;
}

static sl_err
op_list(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	srv_engine_t *e = ctx;
	const char *smarn, *status, *token, *redrive, *mrarn;
	struct step_list_query q = { 0 };
	sl_err rc = srv_sfn_str_field(body, "stateMachineArn", false, &smarn, err);
	if (!rc)
		rc = srv_sfn_str_field(body, "mapRunArn", false, &mrarn, err);
	if (!rc && !smarn == !mrarn)
		rc = sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                  "Exactly one of stateMachineArn and mapRunArn is required");
	if (!rc)
		rc = srv_sfn_str_field(body, "statusFilter", false, &status, err);
	if (!rc)
		rc = srv_sfn_str_field(body, "redriveFilter", false, &redrive, err);
	if (!rc)
		rc = srv_sfn_str_field(body, "nextToken", false, &token, err);
	if (!rc)
		rc = srv_sfn_max_results(body, 0, &q.max_results, err);
	if (rc)
		return rc;
	if (status && !known_status(status))
		return sl_error_set(
		        err, SL_ERR_SFN_VALIDATION,
		        "1 validation error detected: Value '%s' at 'statusFilter' failed "
		        "to satisfy constraint: Member must satisfy enum value set: "
		        "[RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, "
		        "PENDING_REDRIVE]",
		        status);
	if (redrive && strcmp(redrive, "REDRIVEN") != 0 && strcmp(redrive, "NOT_REDRIVEN") != 0)
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "1 validation error detected: Value '%s' at 'redriveFilter' "
		                    "failed to satisfy constraint: Member must satisfy enum value "
		                    "set: [REDRIVEN, NOT_REDRIVEN]",
		                    redrive);
	char machine[NAME_CAP];
	uint32_t version;
	if (!mrarn && (rc = parse_machine_arn(smarn, machine, &version, err)))
		return rc;
	store_txn_t *txn = NULL;
	if ((rc = read_begin(req, &txn)))
		return rc;
	if (mrarn) { // a map run's child executions (srv_api_mapruns.c)
		if ((rc = srv_api_map_run_check(srv_engine_stepper(e), txn, mrarn, err))) {
			store_read_end(txn);
			return rc;
		}
		q.machine = mrarn;
		redrive = NULL; // not applied to a map run's children
	} else {
		char *def = NULL;
		if ((rc = srv_machine_definition(txn, machine, 0, &def, NULL))) {
			store_read_end(txn);
			return rc == SL_ERR_SM_NOT_FOUND
			        ? sl_error_set(err, rc, "State Machine Does Not Exist: '%s'", smarn)
			        : rc;
		}
		sl_free(def);
		if (srv_engine_machine_is_express(txn, machine)) {
			store_read_end(txn);
			return sl_error_set(
			        err, SL_ERR_SM_TYPE_NOT_SUPPORTED,
			        "This operation is not supported by this type of state machine: "
			        "ListExecutions does not list EXPRESS executions");
		}
		q.machine = machine;
	}
	q.status = status;
	q.next_token = token;
	json_t *items = NULL;
	char *next = NULL;
	rc = step_list_executions(srv_engine_stepper(e), txn, &q, &items, &next, err);
	if (!rc)
		rc = add_redrive_fields(srv_engine_stepper(e), txn, items, redrive, err);
	store_read_end(txn);
	if (rc) {
		json_decref(items);
		sl_free(next);
		return rc;
	}
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		date_to_epoch(it, "startDate");
		date_to_epoch(it, "stopDate");
		date_to_epoch(it, "redriveDate");
		if (mrarn)
			json_object_set_new(it, "mapRunArn", json_string(mrarn));
	}
	return srv_sfn_reply_page(req, "executions", items, next);
}

static sl_err
op_stop(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	srv_engine_t *e = ctx;
	const char *arn, *error, *cause;
	sl_err rc = srv_sfn_str_field(body, "executionArn", true, &arn, err);
	if (!rc)
		rc = srv_sfn_str_field(body, "error", false, &error, err);
	if (!rc)
		rc = srv_sfn_str_field(body, "cause", false, &cause, err);
	if (!rc)
		rc = check_exec_arn(arn, err);
	if (rc)
		return rc;
	if (error && strlen(error) > 256)
		return sl_error_set(
		        err, SL_ERR_SFN_VALIDATION,
		        "1 validation error detected: Value at 'error' failed to satisfy "
		        "constraint: Member must have length less than or equal to 256");
	if (cause && strlen(cause) > 32768)
		return sl_error_set(
		        err, SL_ERR_SFN_VALIDATION,
		        "1 validation error detected: Value at 'cause' failed to satisfy "
		        "constraint: Member must have length less than or equal to 32768");
	store_batch_t *b = NULL;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	step_engine_t *step = srv_engine_stepper(e);
	if ((rc = step_stop(step, b, arn, error, cause, srv_engine_effects(e), err)))
		return rc;
	json_t *d = NULL;
	if ((rc = step_describe(step, store_batch_txn(b), arn, &d, err)))
		return rc;
	date_to_epoch(d, "stopDate");
	json_t *stop = json_object_get(d, "stopDate");
	json_t *out = json_pack("{s:O}", "stopDate", stop ? stop : json_null());
	json_decref(d);
	if (!out)
		return SL_ERR_NOMEM;
	srv_reply_json(req, out);
	srv_engine_kick(e);
	return SL_OK;
}

/* RedriveExecution: the execution reopens in the request's batch; redriveDate answers once
 * that batch committed. */
static sl_err
op_redrive(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	srv_engine_t *e = ctx;
	const char *arn, *token;
	sl_err rc = srv_sfn_str_field(body, "executionArn", true, &arn, err);
	if (!rc)
		rc = srv_sfn_str_field(body, "clientToken", false, &token, err);
	if (!rc)
		rc = check_exec_arn(arn, err);
	if (rc)
		return rc;
	if (token && (strlen(token) < 1 || strlen(token) > 64))
		return sl_error_set(
		        err, SL_ERR_SFN_VALIDATION,
		        "1 validation error detected: Value at 'clientToken' failed to satisfy "
		        "constraint: Member must have length between 1 and 64");
	store_batch_t *b = NULL;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	int64_t date = 0;
	if ((rc = step_redrive(srv_engine_stepper(e), b, arn, token, &date, srv_engine_effects(e),
	                       err)))
		return rc;
	json_t *out = json_pack("{s:o}", "redriveDate", srv_json_time(date));
	if (!out)
		return SL_ERR_NOMEM;
	srv_reply_json(req, out);
	srv_engine_kick(e);
	return SL_OK;
}

static sl_err
op_machine_for(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	srv_engine_t *e = ctx;
	const char *arn;
	sl_err rc = srv_sfn_str_field(body, "executionArn", true, &arn, err);
	if (!rc)
		rc = check_exec_arn(arn, err);
	store_txn_t *txn = NULL;
	if (rc || (rc = read_begin(req, &txn)))
		return rc;
	char machine[NAME_CAP];
	uint32_t revision = 0;
	json_t *rev = NULL, *meta = NULL, *child = NULL;
	rc = step_execution_machine(srv_engine_stepper(e), txn, arn, machine, sizeof machine,
	                            &revision, err);
	if (!rc) {
		struct store_key k;
		store_key_init(&k);
		store_key_u32(&k, 'M');
		store_key_str(&k, machine);
		struct store_val v;
		if (store_get(txn, STORE_DB_MACHINES, k.buf, k.len, &v) == SL_OK)
			meta = json_loadb(v.data, v.len, 0, NULL);
		if (!revision)
			revision = (uint32_t)json_integer_value(json_object_get(meta, "revision"));
		if (machine_record(txn, 'R', machine, revision, &rev) != SL_OK)
			rc = sl_error_set(err, SL_ERR_SM_NOT_FOUND,
			                  "State Machine Does Not Exist: the machine of '%s' was "
			                  "deleted",
			                  arn);
	}
	// a map run's child runs its Map's ItemProcessor (stepper/step_maprun.c)
	if (!rc && json_is_string(json_object_get(rev, "definition"))) {
		sl_err c2 = step_map_child_definition(
		        srv_engine_stepper(e), txn, arn,
		        json_string_value(json_object_get(rev, "definition")), &child, err);
		if (c2 != SL_OK && c2 != SL_ERR_NOT_FOUND)
			rc = c2;
	}
	store_read_end(txn);
	if (rc) {
		json_decref(meta);
		json_decref(rev);
		json_decref(child);
		return rc;
	}
	char smarn[STEP_ARN_MAX];
	sl_arn_format(smarn, sizeof smarn, "states", "stateMachine", machine, NULL);
	const char *role = json_string_value(json_object_get(rev, "roleArn"));
	json_t *created = json_object_get(rev, "created");
	if (!created)
		created = json_object_get(meta, "updated");
	json_t *out = json_pack(
	        "{s:s,s:s,s:O,s:s,s:o,s:{s:s,s:b},s:{s:b}}", "stateMachineArn", smarn, "name",
	        machine, "definition", json_object_get(rev, "definition"), "roleArn",
	        role ? role : "arn:aws:iam::000000000000:role/sluice", "updateDate",
	        srv_json_time(json_integer_value(created)), "loggingConfiguration", "level", "OFF",
	        "includeExecutionData", 0, "tracingConfiguration", "enabled", 0);
	if (out && json_is_string(json_object_get(rev, "revisionId")))
		json_object_set(out, "revisionId", json_object_get(rev, "revisionId"));
	// a child: definition, stateMachineArn, name, label, mapRunArn of its ItemProcessor
	if (out && child)
		json_object_update(out, child);
	json_decref(child);
	json_decref(rev);
	json_decref(meta);
	if (!out)
		return SL_ERR_NOMEM;
	srv_reply_json(req, out);
	return SL_OK;
}

sl_err
srv_api_executions_register(srv_t *s)
{
	srv_engine_t *e = srv_engine_of(s);
	if (!e)
		return SL_ERR_INTERNAL; // cmd_serve creates the engine before registering
	static const struct {
		const char *op;
		srv_op_fn fn;
	} ops[] = {
		{ "AWSStepFunctions.StartExecution", op_start },
		{ "AWSStepFunctions.StartSyncExecution", op_start_sync },
		{ "AWSStepFunctions.DescribeExecution", op_describe },
		{ "AWSStepFunctions.GetExecutionHistory", op_history },
		{ "AWSStepFunctions.ListExecutions", op_list },
		{ "AWSStepFunctions.StopExecution", op_stop },
		{ "AWSStepFunctions.RedriveExecution", op_redrive },
		{ "AWSStepFunctions.DescribeStateMachineForExecution", op_machine_for },
	};
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
		sl_err rc = srv_register_op(s, ops[i].op, ops[i].fn, e);
		if (rc)
			return rc;
	}
	return SL_OK;
}
