/*
 * srv_api_putevents.c - PutEvents: validate each entry, build AWS's envelope, store it in
 * STORE_DB_EVENTS, route it through its bus's machine and write one delivery record per
 * matched enabled rule and target, all in the request's batch: the answer (after the
 * commit) means the events and their deliveries are durable.
 */
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "server/srv_bus.h"
#include "server/srv_engine.h"

#define ENTRIES_MAX     10
#define ENTRIES_MAX_SIZ (256 * 1024)

/* AWS's size formula: 14 bytes when Time is set, plus the UTF-8 bytes of Source,
 * DetailType, Detail and each Resource. */
static size_t
entry_size(json_t *e)
{
	size_t n = 0;
	json_t *t = json_object_get(e, "Time");
	if (t && !json_is_null(t))
		n += 14;
	static const char *const f[] = { "Source", "DetailType", "Detail" };
	for (size_t i = 0; i < 3; i++)
		n += json_string_length(json_object_get(e, f[i]));
	json_t *r = json_object_get(e, "Resources");
	for (size_t i = 0; i < json_array_size(r); i++)
		n += json_string_length(json_array_get(r, i));
	return n;
}

/* Types the wire protocol would refuse before any per-entry check. */
static sl_err
check_types(json_t *e, size_t i, struct sl_error *err)
{
	if (!json_is_object(e))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "Entries[%zu]: expected an object",
		                    i + 1);
	static const char *const s[]
	        = { "Source", "DetailType", "Detail", "EventBusName", "TraceHeader" };
	for (size_t k = 0; k < sizeof s / sizeof s[0]; k++) {
		json_t *v = json_object_get(e, s[k]);
		if (v && !json_is_null(v) && !json_is_string(v))
			return sl_error_set(err, SL_ERR_SERIALIZATION,
			                    "Entries[%zu].%s: expected a string", i + 1, s[k]);
	}
	json_t *t = json_object_get(e, "Time");
	if (t && !json_is_null(t) && !json_is_number(t))
		return sl_error_set(err, SL_ERR_SERIALIZATION,
		                    "Entries[%zu].Time: expected epoch seconds (a number)", i + 1);
	json_t *r = json_object_get(e, "Resources");
	if (r && !json_is_null(r)) {
		if (!json_is_array(r))
			return sl_error_set(err, SL_ERR_SERIALIZATION,
			                    "Entries[%zu].Resources: expected a list", i + 1);
		for (size_t k = 0; k < json_array_size(r); k++)
			if (!json_is_string(json_array_get(r, k)))
				return sl_error_set(
				        err, SL_ERR_SERIALIZATION,
				        "Entries[%zu].Resources[%zu]: expected a string", i + 1,
				        k + 1);
	}
	return SL_OK;
}

static json_t *
entry_error(const char *code, const char *msg)
{
	return json_pack("{s:s,s:s}", "ErrorCode", code, "ErrorMessage", msg);
}

/* The router reads events at most PAT_MAX_DEPTH deep; the envelope adds one level. */
static bool
depth_ok(const char *text)
{
	int depth = 0;
	bool in_string = false;
	for (const char *p = text; *p; p++) {
		if (in_string) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				in_string = false;
		} else if (*p == '"') {
			in_string = true;
		} else if (*p == '{' || *p == '[') {
			if (++depth >= PAT_MAX_DEPTH)
				return false;
		} else if (*p == '}' || *p == ']') {
			depth--;
		}
	}
	return true;
}

/* The entry's per-entry failure as AWS words it, or NULL when the entry is fine. */
static json_t *
entry_problem(json_t *e)
{
	static const char *const req[] = { "Source", "DetailType", "Detail" };
	for (size_t i = 0; i < 3; i++) {
		const char *v = json_string_value(json_object_get(e, req[i]));
		if (!v || !*v) {
			char msg[128];
			snprintf(msg, sizeof msg,
			         "Parameter %s is not valid. Reason: %s is a required argument.",
			         req[i], req[i]);
			return entry_error("InvalidArgument", msg);
		}
	}
	const char *text = json_string_value(json_object_get(e, "Detail"));
	json_t *d = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	bool ok = json_is_object(d) && depth_ok(text);
	json_decref(d);
	return ok ? NULL : entry_error("MalformedDetail", "Detail is malformed.");
}

/* Stores one valid entry and its deliveries; *problem is set for a per-entry failure. */
static sl_err
put_one(struct bus_state *st, store_batch_t *b, json_t *e, char *id, json_t **problem,
        struct sl_error *err)
{
	char bus[BUS_NAME_MAX + 1];
	struct sl_error e2;
	sl_error_clear(&e2);
	const char *given = json_string_value(json_object_get(e, "EventBusName"));
	sl_err rc = bus_resolve_name(given, bus, &e2);
	if (rc == SL_OK)
		rc = bus_require(store_batch_txn(b), bus, &e2);
	if (rc == SL_ERR_INVALID_ARG || rc == SL_ERR_EB_NOT_FOUND) {
		*problem = entry_error(rc == SL_ERR_INVALID_ARG ? "InvalidArgument"
		                                                : "ResourceNotFoundException",
		                       e2.message);
		return *problem ? SL_OK : SL_ERR_NOMEM;
	}
	if (rc)
		return rc;
	int64_t when = sl_clock_now_ms();
	json_t *t = json_object_get(e, "Time");
	if (json_is_number(t)) {
		double secs = json_number_value(t);
		if (!(secs >= 0 && secs < 253402300800.0)) {
			*problem
			        = entry_error("InvalidArgument",
			                      "Parameter Time is not valid. Reason: Time is out of "
			                      "range.");
			return *problem ? SL_OK : SL_ERR_NOMEM;
		}
		when = (int64_t)(secs * 1000.0);
	}
	if ((rc = sl_uuid4(id)))
		return rc;
	struct bus_envelope_fields f = {
		.id = id,
		.time_ms = when,
		.source = json_string_value(json_object_get(e, "Source")),
		.detail_type = json_string_value(json_object_get(e, "DetailType")),
		.resources = json_object_get(e, "Resources"),
		.detail = json_string_value(json_object_get(e, "Detail")),
	};
	char *text = bus_envelope(&f);
	if (!text)
		return SL_ERR_NOMEM;
	rc = bus_publish(st, b, bus, id, text, err);
	sl_free(text);
	return rc;
}

sl_err
bus_put_entries(struct bus_state *st, store_batch_t *b, json_t *entries, json_t **answer,
                struct sl_error *err)
{
	*answer = NULL;
	if (!entries || json_is_null(entries))
		return bus_missing(err, "entries");
	if (!json_is_array(entries))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "Field 'Entries': expected a list");
	size_t n = json_array_size(entries);
	if (n < 1 || n > ENTRIES_MAX)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "1 validation error detected: Value at 'entries' failed to "
		                    "satisfy constraint: Member must have length %s",
		                    n ? "less than or equal to 10" : "greater than or equal to 1");
	size_t total = 0;
	sl_err rc;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(entries, i);
		if ((rc = check_types(e, i, err)))
			return rc;
		total += entry_size(e);
	}
	if (total >= ENTRIES_MAX_SIZ)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "Total size of the entries in the request is over the limit.");
	json_t *out = json_array();
	size_t failed = 0;
	if (!out)
		return SL_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(entries, i), *problem = entry_problem(e);
		char id[SL_UUID_STRLEN + 1];
		if (!problem && (rc = put_one(st, b, e, id, &problem, err))) {
			json_decref(out);
			return rc;
		}
		if (problem)
			failed++;
		if (json_array_append_new(out,
		                          problem ? problem : json_pack("{s:s}", "EventId", id))) {
			json_decref(out);
			return SL_ERR_NOMEM;
		}
	}
	*answer = json_pack("{s:I,s:o}", "FailedEntryCount", (json_int_t)failed, "Entries", out);
	return *answer ? SL_OK : SL_ERR_NOMEM;
}

static sl_err
op_put_events(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	store_batch_t *b;
	sl_err rc = srv_req_batch(req, &b);
	json_t *answer = NULL;
	if (rc == SL_OK)
		rc = bus_put_entries(ctx, b, json_object_get(body, "Entries"), &answer, err);
	if (rc == SL_OK)
		srv_reply_json(req, answer);
	return rc;
}

/* events:putEvents from a workflow: the engine runs inside the loop's open batch. */
static sl_err
workflow_put_events(void *arg, store_txn_t *txn, json_t *entries, json_t **answer,
                    struct sl_error *err)
{
	struct bus_state *st = arg;
	store_batch_t *b = NULL;
	sl_err rc = srv_batch(st->srv, &b);
	if (rc != SL_OK)
		return rc;
	if (store_batch_txn(b) != txn)
		return sl_error_set(err, SL_ERR_INTERNAL, "putEvents outside the loop's batch");
	return bus_put_entries(st, b, entries, answer, err);
}

/* AWS's "Step Functions Execution Status Change" event on the default bus: input and output
 * as JSON text, dates in epoch milliseconds, stopDate null while RUNNING. */
static sl_err
status_event(void *arg, store_batch_t *b, const struct step_status_change *sc)
{
	struct bus_state *st = arg;
	char *in = sc->input ? json_dumps(sc->input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	char *out = sc->output ? json_dumps(sc->output, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_t *d = json_pack(
	        "{s:s,s:s,s:s,s:s,s:I,s:o,s:o,s:o,s:o,s:o}", "executionArn", sc->execution_arn,
	        "stateMachineArn", sc->state_machine_arn, "name", sc->name, "status",
	        step_status_name(sc->status), "startDate", (json_int_t)sc->start_ms, "stopDate",
	        sc->stop_ms ? json_integer(sc->stop_ms) : json_null(), "input",
	        in ? json_string(in) : json_null(), "inputDetails",
	        json_pack("{s:b}", "included", 1), "output", out ? json_string(out) : json_null(),
	        "outputDetails", out ? json_pack("{s:b}", "included", 1) : json_null());
	sl_free(in);
	sl_free(out);
	if (d && sc->error)
		json_object_set_new(d, "error", json_string(sc->error));
	if (d && sc->cause)
		json_object_set_new(d, "cause", json_string(sc->cause));
	char *detail = d ? json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(d);
	if (!detail)
		return SL_ERR_NOMEM;
	char id[SL_UUID_STRLEN + 1];
	sl_err rc = sl_uuid4(id);
	json_t *res = json_pack("[s]", sc->execution_arn);
	struct bus_envelope_fields f = { .id = id,
		                         .time_ms = sc->stop_ms ? sc->stop_ms : sc->start_ms,
		                         .source = "aws.states",
		                         .detail_type = "Step Functions Execution Status Change",
		                         .resources = res,
		                         .detail = detail };
	char *text = rc == SL_OK && res ? bus_envelope(&f) : NULL;
	json_decref(res);
	sl_free(detail);
	if (rc == SL_OK && !text)
		rc = SL_ERR_NOMEM;
	if (rc == SL_OK)
		rc = bus_publish(st, b, BUS_DEFAULT, id, text, NULL);
	sl_free(text);
	return rc;
}

sl_err
srv_api_putevents_register(srv_t *s, struct bus_state *st)
{
	srv_engine_t *eng = srv_engine_of(s);
	if (eng) {
		step_engine_set_put_events(srv_engine_stepper(eng), workflow_put_events, st);
		srv_engine_set_status_hook(eng, status_event, st);
	}
	return srv_register_op(s, "AWSEvents.PutEvents", op_put_events, st);
}
