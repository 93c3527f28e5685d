/*
 * srv_api_rules.c - EventBridge rules and targets: PutRule, DescribeRule, ListRules,
 * EnableRule, DisableRule, DeleteRule, PutTargets, RemoveTargets, ListTargetsByRule,
 * ListRuleNamesByTarget. Records as srv_bus.h; pattern changes reach the bus's machine
 * from the batch's commit callback.
 */
#include <stdio.h>
#include <string.h>

#include "bus/schedule.h"
#include "bus/transform.h"
#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "server/srv_bus.h"
#include "server/srv_deliver.h"
#include "server/srv_internal.h"
#include "server/srv_schedules.h"

/* Name and EventBusName of a rule request ("Name" or "Rule" names the rule). */
static sl_err
rule_args(json_t *body, const char *field, const char **rule, char bus[BUS_NAME_MAX + 1],
          struct sl_error *err)
{
	const char *given;
	sl_err rc;
	if ((rc = bus_str_field(body, field, true, rule, err))
	    || (rc = bus_str_field(body, "EventBusName", false, &given, err))
	    || (rc = bus_resolve_name(given, bus, err)))
		return rc;
	const char *what = strcmp(field, "Name") == 0 ? "name" : "rule";
	if (strlen(*rule) > RULE_NAME_MAX)
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "1 validation error detected: Value '%s' at '%s' failed to "
		        "satisfy constraint: Member must have length less than or equal "
		        "to 64",
		        *rule, what);
	if (!bus_valid_rule_name(*rule))
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "1 validation error detected: Value '%s' at '%s' failed to "
		                    "satisfy constraint: Member must satisfy regular expression "
		                    "pattern: [\\.\\-_A-Za-z0-9]+",
		                    *rule, what);
	return SL_OK;
}

static sl_err
get_rule(store_txn_t *txn, const char *bus, const char *rule, json_t **out, struct sl_error *err)
{
	struct store_key k;
	bus_rule_key(&k, BUS_TAG_RULE, bus, rule);
	sl_err rc = bus_get_json(txn, STORE_DB_RULES, &k, out);
	if (rc != SL_ERR_NOT_FOUND)
		return rc;
	if ((rc = bus_require(txn, bus, err)))
		return rc;
	return bus_rule_not_found(err, rule, bus);
}

static json_t *
rule_json(json_t *rec)
{
	const char *bus = json_string_value(json_object_get(rec, "bus"));
	const char *name = json_string_value(json_object_get(rec, "name"));
	char arn[BUS_ARN_MAX];
	bus_rule_arn(arn, sizeof arn, bus, name);
	json_t *o = json_pack("{s:s,s:s,s:O,s:s}", "Name", name, "Arn", arn, "State",
	                      json_object_get(rec, "state"), "EventBusName", bus);
	static const char *const opt[][2] = { { "pattern", "EventPattern" },
		                              { "schedule", "ScheduleExpression" },
		                              { "description", "Description" },
		                              { "roleArn", "RoleArn" },
		                              /* sluice extensions (docs/BUS.md) */
		                              { "timezone", "ScheduleExpressionTimezone" },
		                              { "missedRunPolicy", "MissedRunPolicy" } };
	for (size_t i = 0; o && i < sizeof opt / sizeof opt[0]; i++) {
		json_t *v = json_object_get(rec, opt[i][0]);
		if (v)
			json_object_set(o, opt[i][1], v);
	}
	return o;
}

static sl_err
count_rules(store_txn_t *txn, const char *bus, size_t *n)
{
	struct store_key k;
	bus_rule_key(&k, BUS_TAG_RULE, bus, NULL);
	return store_count_prefix(txn, STORE_DB_RULES, k.buf, k.len, n);
}

static sl_err
op_put_rule(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	const char *name, *pattern, *schedule, *state, *desc, *role, *tz, *policy;
	char bus[BUS_NAME_MAX + 1];
	sl_err rc;
	if ((rc = rule_args(body, "Name", &name, bus, err))
	    || (rc = bus_str_field(body, "EventPattern", false, &pattern, err))
	    || (rc = bus_str_field(body, "ScheduleExpression", false, &schedule, err))
	    || (rc = bus_str_field(body, "State", false, &state, err))
	    || (rc = bus_str_field(body, "Description", false, &desc, err))
	    || (rc = bus_str_field(body, "RoleArn", false, &role, err))
	    || (rc = srv_schedules_check_fields(body, schedule, &tz, &policy, err)))
		return rc;
	if (!pattern && !schedule)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "Parameter(s) EventPattern or ScheduleExpression must be "
		                    "specified.");
	if (state && strcmp(state, "ENABLED") != 0 && strcmp(state, "DISABLED") != 0)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "1 validation error detected: Value '%s' at 'state' failed to "
		                    "satisfy constraint: Member must satisfy enum value set: "
		                    "[ENABLED, DISABLED]",
		                    state);
	if (desc && strlen(desc) > 512)
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "1 validation error detected: Value at 'description' failed to "
		        "satisfy constraint: Member must have length less than or equal "
		        "to 512");
	if (pattern && (rc = pat_validate(pattern, strlen(pattern), err)))
		return rc;
	if (schedule) {
		sched_t *sc = NULL;
		if (strlen(schedule) > 256 || sched_parse(schedule, tz, &sc, NULL) != SL_OK)
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "Parameter ScheduleExpression is not valid.");
		sched_free(sc);
		if (strcmp(bus, BUS_DEFAULT) != 0)
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "ScheduleExpression is supported only on the default "
			                    "event bus.");
	}
	if (!state)
		state = "ENABLED";

	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	if ((rc = bus_require(txn, bus, err)))
		return rc;
	struct store_key k;
	bus_rule_key(&k, BUS_TAG_RULE, bus, name);
	json_t *old = NULL;
	int64_t created = sl_clock_now_ms();
	rc = bus_get_json(txn, STORE_DB_RULES, &k, &old);
	if (rc == SL_OK) {
		created = (int64_t)json_integer_value(json_object_get(old, "created"));
		json_decref(old);
	} else if (rc == SL_ERR_NOT_FOUND) {
		size_t n;
		if ((rc = count_rules(txn, bus, &n)))
			return rc;
		if (n >= srv_req_server(req)->cfg.rules_per_bus)
			return sl_error_set(err, SL_ERR_LIMIT, "%s", BUS_LIMIT_MESSAGE);
	} else {
		return rc;
	}
	json_t *rec = json_pack("{s:s,s:s,s:s,s:I}", "name", name, "bus", bus, "state", state,
	                        "created", (json_int_t)created);
	if (!rec || (pattern && json_object_set_new(rec, "pattern", json_string(pattern)))
	    || (schedule && json_object_set_new(rec, "schedule", json_string(schedule)))
	    || (desc && json_object_set_new(rec, "description", json_string(desc)))
	    || (role && json_object_set_new(rec, "roleArn", json_string(role)))
	    || (tz && json_object_set_new(rec, "timezone", json_string(tz)))
	    || (policy && json_object_set_new(rec, "missedRunPolicy", json_string(policy)))) {
		json_decref(rec);
		return SL_ERR_NOMEM;
	}
	rc = bus_put_json(txn, STORE_DB_RULES, &k, rec);
	if (rc == SL_OK)
		rc = srv_schedules_rule_changed(srv_req_server(req), b, bus, name, rec, err);
	json_decref(rec);
	bool routed = pattern && strcmp(state, "ENABLED") == 0;
	if (rc || (rc = bus_on_commit(ctx, b, bus, name, routed ? pattern : NULL, false)))
		return rc;
	char arn[BUS_ARN_MAX];
	bus_rule_arn(arn, sizeof arn, bus, name);
	srv_reply_json(req, json_pack("{s:s}", "RuleArn", arn));
	return SL_OK;
}

/* The rule a read-only request names (field "Name" or "Rule"), from a short read
 * transaction: *rec is a new reference on success. */
static sl_err
read_rule(srv_req_t *req, json_t *body, const char *field, const char **name,
          char bus[BUS_NAME_MAX + 1], json_t **rec, struct sl_error *err)
{
	sl_err rc = rule_args(body, field, name, bus, err);
	if (rc)
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	rc = get_rule(txn, bus, *name, rec, err);
	store_read_end(txn);
	return rc;
}

static sl_err
op_describe_rule(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *name;
	char bus[BUS_NAME_MAX + 1];
	json_t *rec = NULL;
	sl_err rc = read_rule(req, body, "Name", &name, bus, &rec, err);
	if (rc)
		return rc;
	json_t *o = rule_json(rec);
	json_decref(rec);
	if (o)
		json_object_set_new(o, "CreatedBy", json_string(sl_arn_account()));
	srv_reply_json(req, o);
	return SL_OK;
}

/* Lists records under a key prefix, after the token, at most limit; each record becomes
 * an element through fn (NULL = skip). */
typedef json_t *(*list_fn)(json_t *rec, void *arg);

static sl_err
list_records(srv_req_t *req, json_t *body, const struct store_key *pk, const char *name_key,
             const char *prefix, list_fn fn, void *arg, const char *out_key, struct sl_error *err)
{
	size_t limit;
	char after[BUS_NAME_MAX + 1];
	sl_err rc;
	if ((rc = bus_limit(body, &limit, err))
	    || (rc = bus_token_decode(body, after, sizeof after, err)))
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	store_cursor_t *c = NULL;
	json_t *list = json_array(), *out = NULL;
	char *next = NULL, *last = NULL;
	if (!list) {
		rc = SL_ERR_NOMEM;
		goto done;
	}
	struct store_val kv, vv;
	if ((rc = store_cursor_open(txn, STORE_DB_RULES, &c)) == SL_OK)
		rc = store_cursor_seek_prefix(c, pk->buf, pk->len);
	while (rc == SL_OK && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
		json_t *rec = json_loadb(vv.data, vv.len, 0, NULL);
		const char *name = json_string_value(json_object_get(rec, name_key));
		if (!name) {
			json_decref(rec);
			rc = SL_ERR_STORE;
			break;
		}
		if ((after[0] && strcmp(name, after) <= 0)
		    || (prefix && strncmp(name, prefix, strlen(prefix)) != 0)) {
			json_decref(rec);
			continue;
		}
		json_t *el = fn(rec, arg);
		if (el && json_array_size(list) == limit) {
			json_decref(el);
			json_decref(rec);
			next = last ? bus_token_encode(last) : NULL;
			rc = next ? SL_ERR_NOT_FOUND : SL_ERR_NOMEM;
			break;
		}
		if (el) {
			sl_free(last);
			last = sl_strdup(name);
			if (!last || json_array_append_new(list, el)) {
				json_decref(rec);
				rc = SL_ERR_NOMEM;
				break;
			}
		}
		json_decref(rec);
	}
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
done:
	store_cursor_close(c);
	store_read_end(txn);
	if (rc == SL_OK && (out = json_pack("{s:O}", out_key, list)) && next)
		json_object_set_new(out, "NextToken", json_string(next));
	json_decref(list);
	sl_free(next);
	sl_free(last);
	if (rc)
		return rc;
	if (!out)
		return SL_ERR_NOMEM;
	srv_reply_json(req, out);
	return SL_OK;
}

static json_t *
rule_el(json_t *rec, void *arg)
{
	(void)arg;
	return rule_json(rec);
}

static sl_err
op_list_rules(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *prefix, *given;
	char bus[BUS_NAME_MAX + 1];
	sl_err rc;
	if ((rc = bus_str_field(body, "NamePrefix", false, &prefix, err))
	    || (rc = bus_str_field(body, "EventBusName", false, &given, err))
	    || (rc = bus_resolve_name(given, bus, err)))
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	rc = bus_require(txn, bus, err);
	store_read_end(txn);
	if (rc)
		return rc;
	struct store_key k;
	bus_rule_key(&k, BUS_TAG_RULE, bus, NULL);
	return list_records(req, body, &k, "name", prefix, rule_el, NULL, "Rules", err);
}

static sl_err
set_state(srv_req_t *req, json_t *body, struct bus_state *st, const char *state,
          struct sl_error *err)
{
	const char *name;
	char bus[BUS_NAME_MAX + 1];
	sl_err rc = rule_args(body, "Name", &name, bus, err);
	if (rc)
		return rc;
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	json_t *rec = NULL;
	if ((rc = get_rule(txn, bus, name, &rec, err)))
		return rc;
	struct store_key k;
	bus_rule_key(&k, BUS_TAG_RULE, bus, name);
	const char *pattern = json_string_value(json_object_get(rec, "pattern"));
	if ((rc = json_object_set_new(rec, "state", json_string(state)) ? SL_ERR_NOMEM : SL_OK)
	    || (rc = bus_put_json(txn, STORE_DB_RULES, &k, rec))
	    || (rc = srv_schedules_rule_changed(srv_req_server(req), b, bus, name, rec, err))
	    || (rc = bus_on_commit(st, b, bus, name, strcmp(state, "ENABLED") == 0 ? pattern : NULL,
	                           false))) {
		json_decref(rec);
		return rc;
	}
	json_decref(rec);
	srv_reply_json(req, NULL);
	return SL_OK;
}

static sl_err
op_enable_rule(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	return set_state(req, body, ctx, "ENABLED", err);
}

static sl_err
op_disable_rule(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	return set_state(req, body, ctx, "DISABLED", err);
}

static sl_err
op_delete_rule(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	const char *name;
	char bus[BUS_NAME_MAX + 1];
	sl_err rc = rule_args(body, "Name", &name, bus, err);
	if (rc)
		return rc;
	json_t *force = json_object_get(body, "Force");
	if (force && !json_is_boolean(force))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "Field 'Force': expected a boolean");
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	if ((rc = bus_require(txn, bus, err)))
		return rc;
	struct store_key k;
	bus_rule_key(&k, BUS_TAG_RULE, bus, name);
	struct store_val v;
	if ((rc = store_get(txn, STORE_DB_RULES, k.buf, k.len, &v)) == SL_ERR_NOT_FOUND) {
		/* AWS: deleting a rule that is not there succeeds */
		srv_reply_json(req, NULL);
		return SL_OK;
	}
	size_t n;
	if (rc || (rc = bus_count_targets(txn, bus, name, &n)))
		return rc;
	if (n && !json_is_true(force))
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "Rule can't be deleted since it has targets.");
	if ((rc = bus_delete_rule_records(txn, bus, name, true))
	    || (rc = srv_schedules_rule_changed(srv_req_server(req), b, bus, name, NULL, err))
	    || (rc = bus_on_commit(ctx, b, bus, name, NULL, false)))
		return rc;
	srv_reply_json(req, NULL);
	return SL_OK;
}

/* ---- targets -------------------------------------------------------------------------- */

static bool
valid_target_id(const char *s)
{
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		      || (*p >= '0' && *p <= '9') || strchr(".-_", *p)))
			return false;
	return *s != '\0';
}

static sl_err
int_range(json_t *obj, const char *field, const char *where, long long lo, long long hi,
          struct sl_error *err)
{
	json_t *v = json_object_get(obj, field);
	if (!v || json_is_null(v))
		return SL_OK;
	if (!json_is_integer(v))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "Field '%s': expected an integer",
		                    field);
	long long n = (long long)json_integer_value(v);
	if (n < lo)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "1 validation error detected: Value '%lld' at '%s' failed to "
		                    "satisfy constraint: Member must have value greater than or "
		                    "equal to %lld",
		                    n, where, lo);
	if (n > hi)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "1 validation error detected: Value '%lld' at '%s' failed to "
		                    "satisfy constraint: Member must have value less than or equal "
		                    "to %lld",
		                    n, where, hi);
	return SL_OK;
}

/* One map of HttpParameters: string values, keys and values at most 512 characters;
 * headers (token names, printable values) are stricter than query parameters. */
static sl_err
check_http_map(json_t *m, const char *field, bool header, struct sl_error *err)
{
	if (!m || json_is_null(m))
		return SL_OK;
	if (!json_is_object(m) || json_object_size(m) > 100)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "HttpParameters.%s must be a map of at most 100 strings",
		                    field);
	const char *k;
	json_t *v;
	json_object_foreach(m, k, v)
	{
		const char *s = json_string_value(v);
		bool ok = s && *k && strlen(k) <= 512 && strlen(s) <= 512;
		for (const char *p = k; ok && *p; p++)
			ok = header ? (*p > 0x20 && *p < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", *p))
			            : (unsigned char)*p >= 0x20 && *p != 0x7f;
		for (const char *p = s; ok && p && *p; p++)
			ok = ((unsigned char)*p >= 0x20 && *p != 0x7f) || (header && *p == '\t');
		if (!ok)
			return sl_error_set(
			        err, SL_ERR_INVALID_ARG,
			        "HttpParameters.%s: '%.64s' is not a valid %s (a string "
			        "of at most 512 printable characters%s)",
			        field, k, header ? "header" : "query parameter",
			        header ? ", the name a token" : "");
	}
	return SL_OK;
}

/* Request-level checks of target i (1-based), as AWS's validation layer words them. */
static sl_err
check_target(json_t *t, unsigned i, struct sl_error *err)
{
	char where[96];
	if (!json_is_object(t))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "Targets[%u]: expected an object",
		                    i);
	json_t *id = json_object_get(t, "Id"), *arn = json_object_get(t, "Arn");
	snprintf(where, sizeof where, "targets.%u.member.id", i);
	if (!json_is_string(id))
		return bus_missing(err, where);
	const char *ids = json_string_value(id);
	if (strlen(ids) > TARGET_ID_MAX)
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "1 validation error detected: Value '%s' at '%s' failed to "
		        "satisfy constraint: Member must have length less than or equal "
		        "to 64",
		        ids, where);
	if (!valid_target_id(ids))
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "1 validation error detected: Value '%s' at '%s' failed to "
		                    "satisfy constraint: Member must satisfy regular expression "
		                    "pattern: [\\.\\-_A-Za-z0-9]+",
		                    ids, where);
	snprintf(where, sizeof where, "targets.%u.member.arn", i);
	if (!json_is_string(arn))
		return bus_missing(err, where);
	json_t *rp = json_object_get(t, "RetryPolicy");
	if (rp && !json_is_null(rp)) {
		if (!json_is_object(rp))
			return sl_error_set(err, SL_ERR_SERIALIZATION,
			                    "Field 'RetryPolicy': expected an object");
		char w1[96], w2[96];
		snprintf(w1, sizeof w1, "targets.%u.member.retryPolicy.maximumRetryAttempts", i);
		snprintf(w2, sizeof w2, "targets.%u.member.retryPolicy.maximumEventAgeInSeconds",
		         i);
		sl_err rc;
		if ((rc = int_range(rp, "MaximumRetryAttempts", w1, 0, 185, err))
		    || (rc = int_range(rp, "MaximumEventAgeInSeconds", w2, 60, 86400, err)))
			return rc;
	}
	json_t *dl = json_object_get(t, "DeadLetterConfig");
	if (dl && !json_is_null(dl)
	    && (!json_is_object(dl)
	        || (json_object_get(dl, "Arn") && !json_is_string(json_object_get(dl, "Arn")))))
		return sl_error_set(
		        err, SL_ERR_SERIALIZATION,
		        "Field 'DeadLetterConfig': expected an object with a string Arn");
	/* webhook headers and query parameters (AWS's API destination fields) */
	json_t *hp = json_object_get(t, "HttpParameters");
	if (hp && !json_is_null(hp)) {
		sl_err rc;
		if (!json_is_object(hp))
			return sl_error_set(err, SL_ERR_SERIALIZATION,
			                    "Field 'HttpParameters': expected an object");
		if ((rc = check_http_map(json_object_get(hp, "HeaderParameters"),
		                         "HeaderParameters", true, err))
		    || (rc = check_http_map(json_object_get(hp, "QueryStringParameters"),
		                            "QueryStringParameters", false, err)))
			return rc;
	}
	xform_t *x = NULL;
	sl_err rc = xform_new(t, i, &x, err);
	xform_free(x);
	return rc;
}

/* An ARN AWS would accept as a target (per-entry check): arn:PARTITION:SERVICE:...:... */
static bool
arn_ok(const char *arn)
{
	char buf[1600];
	if (strlen(arn) >= sizeof buf)
		return false;
	memcpy(buf, arn, strlen(arn) + 1);
	struct sl_arn a;
	return sl_arn_parse(buf, &a) == SL_OK && a.service[0] && a.resource[0];
}

/* Why a target Arn is refused (per-entry), or NULL: an ARN, or a sluice webhook URL. */
static const char *
target_arn_problem(const char *arn)
{
	switch (deliver_kind_of(arn, NULL, 0)) {
	case DELIVER_HTTP:
	case DELIVER_HTTPS: {
		struct evhttp_uri *u = strlen(arn) < 1600 ? evhttp_uri_parse(arn) : NULL;
		const char *host = u ? evhttp_uri_get_host(u) : NULL;
		bool ok = host && *host && !evhttp_uri_get_userinfo(u);
		evhttp_uri_free(u);
		return ok ? NULL
		          : "Provided Arn is not in correct format: expected an ARN or an "
		            "http(s)://HOST[:PORT]/PATH URL.";
	}
	case DELIVER_NNG: {
		const char *u = arn + strlen("nng+pub://");
		bool ok = strlen(u) < 512
		        && ((strncmp(u, "tcp://", 6) == 0 && strchr(u + 6, ':'))
		            || (strncmp(u, "ipc://", 6) == 0 && u[6])
		            || (strncmp(u, "inproc://", 9) == 0 && u[9]));
		return ok ? NULL
		          : "Provided Arn is not in correct format: expected nng+pub:// followed "
		            "by an "
		            "NNG URL tcp://HOST:PORT, ipc://PATH or inproc://NAME.";
	}
	default: return arn_ok(arn) ? NULL : "Provided Arn is not in correct format.";
	}
}

static sl_err
op_put_targets(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *rule;
	char bus[BUS_NAME_MAX + 1];
	sl_err rc = rule_args(body, "Rule", &rule, bus, err);
	if (rc)
		return rc;
	json_t *targets = json_object_get(body, "Targets");
	if (!targets || json_is_null(targets))
		return bus_missing(err, "targets");
	if (!json_is_array(targets))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "Field 'Targets': expected a list");
	size_t nt = json_array_size(targets);
	if (nt < 1 || nt > TARGETS_PER_CALL)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "1 validation error detected: Value at 'targets' failed to "
		                    "satisfy constraint: Member must have length %s",
		                    nt ? "less than or equal to 10" : "greater than or equal to 1");
	for (size_t i = 0; i < nt; i++)
		if ((rc = check_target(json_array_get(targets, i), (unsigned)i + 1, err)))
			return rc;
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	json_t *rec = NULL;
	if ((rc = get_rule(txn, bus, rule, &rec, err)))
		return rc;
	json_decref(rec);
	size_t have;
	if ((rc = bus_count_targets(txn, bus, rule, &have)))
		return rc;
	json_t *failed = json_array();
	if (!failed)
		return SL_ERR_NOMEM;
	for (size_t i = 0; i < nt && rc == SL_OK; i++) {
		json_t *t = json_array_get(targets, i);
		const char *id = json_string_value(json_object_get(t, "Id"));
		const char *arn = json_string_value(json_object_get(t, "Arn"));
		const char *problem = target_arn_problem(arn);
		if (problem) {
			json_array_append_new(failed,
			                      json_pack("{s:s,s:s,s:s}", "TargetId", id,
			                                "ErrorCode", "ValidationException",
			                                "ErrorMessage", problem));
			continue;
		}
		struct store_key k;
		bus_rule_key(&k, BUS_TAG_TARGET, bus, rule);
		store_key_str(&k, id);
		struct store_val v;
		rc = store_get(txn, STORE_DB_RULES, k.buf, k.len, &v);
		if (rc == SL_ERR_NOT_FOUND) {
			if (have >= TARGETS_PER_RULE) {
				json_decref(failed);
				return sl_error_set(err, SL_ERR_LIMIT, "%s", BUS_LIMIT_MESSAGE);
			}
			have++;
		} else if (rc) {
			break;
		}
		rc = bus_put_json(txn, STORE_DB_RULES, &k, t);
	}
	if (rc) {
		json_decref(failed);
		return rc;
	}
	srv_reply_json(req,
	               json_pack("{s:I,s:o}", "FailedEntryCount",
	                         (json_int_t)json_array_size(failed), "FailedEntries", failed));
	return SL_OK;
}

static sl_err
op_remove_targets(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *rule;
	char bus[BUS_NAME_MAX + 1];
	sl_err rc = rule_args(body, "Rule", &rule, bus, err);
	if (rc)
		return rc;
	json_t *ids = json_object_get(body, "Ids");
	if (!ids || json_is_null(ids))
		return bus_missing(err, "ids");
	if (!json_is_array(ids))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "Field 'Ids': expected a list");
	size_t n = json_array_size(ids);
	if (n < 1 || n > 100)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "1 validation error detected: Value at 'ids' failed to satisfy "
		                    "constraint: Member must have length between 1 and 100");
	for (size_t i = 0; i < n; i++)
		if (!json_is_string(json_array_get(ids, i)))
			return sl_error_set(err, SL_ERR_SERIALIZATION,
			                    "Ids[%zu]: expected a string", i + 1);
	json_t *force = json_object_get(body, "Force");
	if (force && !json_is_boolean(force))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "Field 'Force': expected a boolean");
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	json_t *rec = NULL;
	if ((rc = get_rule(txn, bus, rule, &rec, err)))
		return rc;
	json_decref(rec);
	for (size_t i = 0; i < n && rc == SL_OK; i++) {
		struct store_key k;
		bus_rule_key(&k, BUS_TAG_TARGET, bus, rule);
		store_key_str(&k, json_string_value(json_array_get(ids, i)));
		rc = store_del(txn, STORE_DB_RULES, k.buf, k.len);
	}
	if (rc)
		return rc;
	srv_reply_json(req, json_pack("{s:i,s:[]}", "FailedEntryCount", 0, "FailedEntries"));
	return SL_OK;
}

static json_t *
target_el(json_t *rec, void *arg)
{
	(void)arg;
	return json_incref(rec);
}

static sl_err
op_list_targets(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *rule;
	char bus[BUS_NAME_MAX + 1];
	json_t *rec = NULL;
	sl_err rc = read_rule(req, body, "Rule", &rule, bus, &rec, err);
	json_decref(rec);
	if (rc)
		return rc;
	struct store_key k;
	bus_rule_key(&k, BUS_TAG_TARGET, bus, rule);
	return list_records(req, body, &k, "Id", NULL, target_el, NULL, "Targets", err);
}

/* ListRuleNamesByTarget walks the bus's rules and looks each one's targets up. */
struct by_target {
	store_txn_t *txn;
	const char *bus, *arn;
	sl_err rc;
};

static json_t *
rule_if_target(json_t *rec, void *arg)
{
	struct by_target *bt = arg;
	const char *name = json_string_value(json_object_get(rec, "name"));
	struct store_key k;
	bus_rule_key(&k, BUS_TAG_TARGET, bt->bus, name);
	store_cursor_t *c;
	if (store_cursor_open(bt->txn, STORE_DB_RULES, &c))
		return NULL;
	bool hit = false;
	struct store_val kv, vv;
	if (store_cursor_seek_prefix(c, k.buf, k.len) == SL_OK)
		while (!hit && store_cursor_next(c, &kv, &vv) == SL_OK) {
			json_t *t = json_loadb(vv.data, vv.len, 0, NULL);
			const char *arn = json_string_value(json_object_get(t, "Arn"));
			hit = arn && strcmp(arn, bt->arn) == 0;
			json_decref(t);
		}
	store_cursor_close(c);
	return hit ? json_string(name) : NULL;
}

static sl_err
op_rule_names_by_target(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *arn, *given;
	char bus[BUS_NAME_MAX + 1];
	sl_err rc;
	if ((rc = bus_str_field(body, "TargetArn", true, &arn, err))
	    || (rc = bus_str_field(body, "EventBusName", false, &given, err))
	    || (rc = bus_resolve_name(given, bus, err)))
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	rc = bus_require(txn, bus, err);
	if (rc) {
		store_read_end(txn);
		return rc;
	}
	struct by_target bt = { txn, bus, arn, SL_OK };
	struct store_key k;
	bus_rule_key(&k, BUS_TAG_RULE, bus, NULL);
	rc = list_records(req, body, &k, "name", NULL, rule_if_target, &bt, "RuleNames", err);
	store_read_end(txn);
	return rc;
}

sl_err
srv_api_rules_register(srv_t *s, struct bus_state *st)
{
	static const struct {
		const char *op;
		srv_op_fn fn;
	} ops[] = {
		{ "AWSEvents.PutRule", op_put_rule },
		{ "AWSEvents.DescribeRule", op_describe_rule },
		{ "AWSEvents.ListRules", op_list_rules },
		{ "AWSEvents.EnableRule", op_enable_rule },
		{ "AWSEvents.DisableRule", op_disable_rule },
		{ "AWSEvents.DeleteRule", op_delete_rule },
		{ "AWSEvents.PutTargets", op_put_targets },
		{ "AWSEvents.RemoveTargets", op_remove_targets },
		{ "AWSEvents.ListTargetsByRule", op_list_targets },
		{ "AWSEvents.ListRuleNamesByTarget", op_rule_names_by_target },
	};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		sl_err rc = srv_register_op(s, ops[i].op, ops[i].fn, st);
		if (rc)
			return rc;
	}
	return SL_OK;
}
