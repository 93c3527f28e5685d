/*
 * srv_bus_publish.c - what happens to an accepted event on any path (PutEvents, schedules,
 * a bus target, replay): its envelope is appended to the bus's log in STORE_DB_EVENTS, it is
 * routed through the bus's machine, and one delivery record is written per target of every
 * matched enabled rule, all in the caller's batch.
 */
#include <stdio.h>
#include <string.h>

#include "bus/transform.h"
#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "server/srv_archives.h"
#include "server/srv_bus.h"
#include "server/srv_deliver.h"
#include "server/srv_retention.h"

/* Next event sequence number of bus: one past the last stored (the batch sees its own). */
static sl_err
next_seq(store_txn_t *txn, const char *bus, uint64_t *seq)
{
	sl_err rc = srv_retention_last_seq(txn, bus, seq);
	if (rc == SL_OK)
		*seq += 1;
	return rc;
}

char *
bus_envelope(const struct bus_envelope_fields *f)
{
	char when[32];
	sl_clock_format_rfc3339_s(f->time_ms, when);
	json_t *env
	        = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "version", "0", "id", f->id,
	                    "detail-type", f->detail_type, "source", f->source, "account",
	                    sl_arn_account(), "time", when, "region", sl_arn_region(), "resources",
	                    json_is_array(f->resources) ? json_incref(f->resources) : json_array());
	if (env && f->replay_name
	    && json_object_set_new(env, "replay-name", json_string(f->replay_name))) {
		json_decref(env);
		return NULL;
	}
	char *head = env ? json_dumps(env, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(env);
	if (!head)
		return NULL;
	head[strlen(head) - 1] = '\0'; /* drop the closing brace */
	char *text = sl_asprintf("%s,\"detail\":%s}", head, f->detail ? f->detail : "{}");
	sl_free(head);
	return text;
}

struct route {
	struct bus_state *st; /* NULL: no engine at hand, state machines go through records */
	store_batch_t *batch;
	store_txn_t *txn;
	const char *bus, *event, *event_id;
	size_t len;
	uint64_t seq;
	int64_t now;
	sl_err rc;
	size_t deliveries;
	bus_rule_keep_fn keep; /* replays: only these matched rules (NULL: all) */
	void *keep_ctx;
};

/* The target's retry policy and dead-letter queue, copied into its delivery records. */
static sl_err
add_policy(json_t *d, json_t *t)
{
	json_t *rp = json_object_get(t, "RetryPolicy"),
	       *dl = json_object_get(t, "DeadLetterConfig");
	json_t *n = json_object_get(rp, "MaximumRetryAttempts");
	json_t *age = json_object_get(rp, "MaximumEventAgeInSeconds");
	json_t *dlq = json_object_get(dl, "Arn");
	if (json_object_set_new(d, "maxRetries",
	                        json_integer(json_is_integer(n) ? json_integer_value(n)
	                                                        : DELIVER_DEFAULT_RETRIES))
	    || json_object_set_new(d, "maxAgeS",
	                           json_integer(json_is_integer(age) ? json_integer_value(age)
	                                                             : DELIVER_DEFAULT_AGE_S))
	    || (json_is_string(dlq) && json_object_set(d, "dlq", dlq)))
		return SL_ERR_NOMEM;
	return SL_OK;
}

/* A state machine target's execution, started in the event's batch (exactly once). On a
 * failed start (no such machine, input not JSON) *last is the error for the record the
 * deliverer retries. */
static sl_err
start_inline(struct route *r, const char *arn, const char *input, bool *started, json_t **last)
{
	*started = false;
	*last = NULL;
	if (!r->st || !r->st->srv || deliver_kind_of(arn, NULL, 0) != DELIVER_STATES
	    || srv_deliver_paused(r->st->srv))
		return SL_OK;
	const char *code = NULL;
	char msg[512];
	sl_err rc = deliver_start_machine(r->st->srv, r->batch, arn, input, &code, msg, sizeof msg);
	if (rc)
		return rc;
	if (!code) {
		*started = true;
		return SL_OK;
	}
	*last = json_pack("{s:s,s:s}", "code", code, "message", msg);
	return *last ? SL_OK : SL_ERR_NOMEM;
}

/* Per target of a matched rule: a state machine's execution now, else (or when that start
 * fails) one delivery record, due now, attempt 0. */
static sl_err
deliver_rule(struct route *r, const char *rule)
{
	char rule_arn[BUS_ARN_MAX];
	bus_rule_arn(rule_arn, sizeof rule_arn, r->bus, rule);
	struct store_key pk;
	bus_rule_key(&pk, BUS_TAG_TARGET, r->bus, rule);
	store_cursor_t *c;
	sl_err rc = store_cursor_open(r->txn, STORE_DB_RULES, &c);
	if (rc)
		return rc;
	struct store_val kv, vv;
	struct xform_ctx xc = { rule_arn, rule, r->now };
	if ((rc = store_cursor_seek_prefix(c, pk.buf, pk.len)) == SL_OK)
		while (rc == SL_OK && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			json_t *t = json_loadb(vv.data, vv.len, 0, NULL);
			xform_t *x = NULL;
			char *input = NULL;
			size_t ilen;
			/* targets were validated on PutTargets; AWS drops an event whose input
			 * cannot be rendered (InputPath matching nothing, invalid JSON) */
			if (!t || xform_new(t, 1, &x, NULL)
			    || xform_render(x, r->event, r->len, &xc, &input, &ilen, NULL)) {
				xform_free(x);
				json_decref(t);
				continue;
			}
			xform_free(x);
			const char *arn = json_string_value(json_object_get(t, "Arn"));
			bool started = false;
			json_t *last = NULL;
			if ((rc = start_inline(r, arn, input, &started, &last)) || started) {
				sl_free(input);
				json_decref(t);
				if (rc)
					break;
				continue;
			}
			char id[SL_UUID_STRLEN + 1];
			json_t *d = NULL;
			if ((rc = sl_uuid4(id)) == SL_OK
			    && !(d = json_pack("{s:s,s:s,s:s,s:s,s:s,s:O,s:s,s:I,s:i,s:s,s:I}",
			                       "id", id, "bus", r->bus, "rule", rule, "ruleArn",
			                       rule_arn, "eventId", r->event_id, "target",
			                       json_object_get(t, "Id"), "arn",
			                       json_string_value(json_object_get(t, "Arn")), "seq",
			                       (json_int_t)r->seq, "attempt", 0, "input", input,
			                       "due", (json_int_t)r->now)))
				rc = SL_ERR_NOMEM;
			if (rc == SL_OK
			    && (json_object_set_new(d, "created", json_integer(r->now))
			        || (r->st && r->st->hops
			            && json_object_set_new(d, "hops", json_integer(r->st->hops)))
			        || (json_is_object(json_object_get(t, "HttpParameters"))
			            && json_object_set(d, "http",
			                               json_object_get(t, "HttpParameters")))
			        || (rc = add_policy(d, t))
			        || (last && json_object_set(d, "lastError", last))))
				rc = rc ? rc : SL_ERR_NOMEM;
			json_decref(last);
			sl_free(input);
			json_decref(t);
			if (rc) {
				json_decref(d);
				break;
			}
			struct store_key k;
			store_key_init(&k);
			store_key_i64(&k, r->now);
			store_key_raw(&k, id, SL_UUID_STRLEN);
			rc = bus_put_json(r->txn, STORE_DB_DELIVERIES, &k, d);
			json_decref(d);
			r->deliveries++;
		}
	store_cursor_close(c);
	if (r->deliveries)
		srv_deliver_wrote(r->st ? r->st->srv : NULL, r->batch);
	return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
}

static bool
on_match(void *ctx, uint32_t rule_id, const char *rule_name)
{
	(void)rule_id;
	struct route *r = ctx;
	if (r->keep && !r->keep(r->keep_ctx, rule_name))
		return true;
	r->rc = deliver_rule(r, rule_name);
	return r->rc == SL_OK;
}

/* Appends text to bus's log; *seq receives its sequence number. The arrival mark goes in
 * the same batch (the retention prunes by it). */
static sl_err
append(store_txn_t *txn, const char *bus, const char *text, size_t len, uint64_t *seq)
{
	struct store_key k;
	store_key_init(&k);
	store_key_str(&k, bus);
	sl_err rc = next_seq(txn, bus, seq);
	if (rc == SL_OK) {
		store_key_u64(&k, *seq);
		rc = store_put(txn, STORE_DB_EVENTS, k.buf, k.len, text, len);
	}
	return rc ? rc : srv_retention_mark(txn, bus, *seq);
}

sl_err
bus_publish(struct bus_state *st, store_batch_t *b, const char *bus, const char *event_id,
            const char *text, struct sl_error *err)
{
	store_txn_t *txn = store_batch_txn(b);
	size_t len = strlen(text);
	uint64_t seq;
	sl_err rc = append(txn, bus, text, len, &seq);
	if (rc == SL_OK)
		rc = srv_archives_on_event(st, b, bus, seq, text, len, err);
	pat_machine_t *m = bus_machine(st, bus);
	if (rc == SL_OK && m) {
		struct route r = { st,    b, txn,  bus, text, event_id, len, seq, sl_clock_now_ms(),
			           SL_OK, 0, NULL, NULL };
		rc = pat_machine_match(m, text, len, on_match, &r, err);
		if (rc == SL_OK)
			rc = r.rc;
	}
	return rc;
}

sl_err
bus_publish_filtered(struct bus_state *st, store_batch_t *b, const char *bus, const char *event_id,
                     const char *text, bus_rule_keep_fn keep, void *keep_ctx, struct sl_error *err)
{
	store_txn_t *txn = store_batch_txn(b);
	size_t len = strlen(text);
	uint64_t seq;
	sl_err rc = append(txn, bus, text, len, &seq);
	pat_machine_t *m = bus_machine(st, bus);
	if (rc == SL_OK && m) {
		struct route r
		        = { st,    b, txn,  bus,     text, event_id, len, seq, sl_clock_now_ms(),
			    SL_OK, 0, keep, keep_ctx };
		rc = pat_machine_match(m, text, len, on_match, &r, err);
		if (rc == SL_OK)
			rc = r.rc;
	}
	return rc;
}

sl_err
bus_publish_to_rule(store_batch_t *b, const char *bus, const char *rule, const char *event_id,
                    const char *text)
{
	store_txn_t *txn = store_batch_txn(b);
	size_t len = strlen(text);
	uint64_t seq;
	sl_err rc = append(txn, bus, text, len, &seq);
	if (rc == SL_OK) {
		struct route r = { NULL,  b, txn,  bus, text, event_id, len, seq, sl_clock_now_ms(),
			           SL_OK, 0, NULL, NULL };
		rc = deliver_rule(&r, rule);
	}
	return rc;
}
