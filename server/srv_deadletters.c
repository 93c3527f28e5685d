/*
 * srv_deadletters.c - the dead-letter table (deliveries that ran out of retries on a target
 * with a DeadLetterConfig) and its sluice-specific operations:
 *   SluiceEvents.ListDeadLetters, GetDeadLetter, RedriveDeadLetters, PurgeDeadLetters.
 *
 * Records (STORE_DB_DEADLETTERS):
 *   u32('D') i64(at ms) raw(id) -> {"id", "at", "bus", "rule", "ruleArn", "target",
 *                                   "targetArn", "eventId", "attempts", "input", "event"?,
 *                                   "deadLetterArn", "lastError", "attributes", "delivery"}
 *   u32('I') raw(id)            -> the 'D' key (lookup by id)
 * The id is the delivery's id. A redrive writes the saved delivery back, attempt 0 and due
 * now, and deletes the dead letter, in one batch.
 */
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "common/sl_log.h"
#include "server/srv_bus.h"
#include "server/srv_deliver_int.h"

#define ID_LEN          SL_UUID_STRLEN
#define DKEY_LEN        (4 + 8 + ID_LEN)
#define BULK_MAX        1000
#define DL_LIST_DEFAULT 100

enum { TAG_DEAD = 'D', TAG_INDEX = 'I' };

static void
index_key(struct store_key *k, const char *id)
{
	store_key_init(k);
	store_key_u32(k, TAG_INDEX);
	store_key_raw(k, id, strlen(id));
}

static const char *
str(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "";
}

/* The original event text from the bus's log, or NULL (events may be pruned one day). */
static json_t *
original_event(store_txn_t *txn, json_t *rec)
{
	json_t *seq = json_object_get(rec, "seq");
	if (!json_is_integer(seq))
		return NULL;
	struct store_key k;
	store_key_init(&k);
	store_key_str(&k, str(rec, "bus"));
	store_key_u64(&k, (uint64_t)json_integer_value(seq));
	struct store_val v;
	if (store_get(txn, STORE_DB_EVENTS, k.buf, k.len, &v) != SL_OK)
		return NULL;
	return json_stringn(v.data, v.len); /* as stored: numbers keep their digits */
}

sl_err
deadletter_put(store_txn_t *txn, json_t *rec, const char *code, const char *message,
               const char *condition, int64_t attempt)
{
	const char *id = str(rec, "id");
	if (strlen(id) != ID_LEN)
		return SL_ERR_STORE;
	int64_t now = sl_clock_now_ms();
	char retries[24];
	snprintf(retries, sizeof retries, "%lld", (long long)attempt);
	json_t *attrs = json_pack("{s:s,s:s,s:s,s:s,s:s}", "RULE_ARN", str(rec, "ruleArn"),
	                          "TARGET_ARN", str(rec, "arn"), "ERROR_CODE", code,
	                          "ERROR_MESSAGE", message, "RETRY_ATTEMPTS", retries);
	if (attrs && condition
	    && json_object_set_new(attrs, "EXHAUSTED_RETRY_CONDITION", json_string(condition))) {
		json_decref(attrs);
		attrs = NULL;
	}
	if (!attrs)
		return SL_ERR_NOMEM;
	json_t *dl
	        = json_pack("{s:s,s:I,s:s,s:s,s:s,s:O,s:s,s:s,s:I,s:s,s:s,s:{s:s,s:s},s:o,s:O}",
	                    "id", id, "at", (json_int_t)now, "bus", str(rec, "bus"), "rule",
	                    str(rec, "rule"), "ruleArn", str(rec, "ruleArn"), "target",
	                    json_object_get(rec, "target"), "targetArn", str(rec, "arn"), "eventId",
	                    str(rec, "eventId"), "attempts", (json_int_t)(attempt + 1), "input",
	                    str(rec, "input"), "deadLetterArn", str(rec, "dlq"), "lastError",
	                    "code", code, "message", message, "attributes", attrs, "delivery", rec);
	if (!dl)
		return SL_ERR_NOMEM;
	json_t *ev = original_event(txn, rec);
	if (ev)
		json_object_set_new(dl, "event", ev);
	struct store_key k, ik;
	store_key_init(&k);
	store_key_u32(&k, TAG_DEAD);
	store_key_i64(&k, now);
	store_key_raw(&k, id, ID_LEN);
	index_key(&ik, id);
	sl_err rc = bus_put_json(txn, STORE_DB_DEADLETTERS, &k, dl);
	if (rc == SL_OK)
		rc = store_put(txn, STORE_DB_DEADLETTERS, ik.buf, ik.len, k.buf, k.len);
	json_decref(dl);
	return rc;
}

/* ---- shapes --------------------------------------------------------------------------- */

static json_t *
summary(json_t *dl)
{
	json_t *last = json_object_get(dl, "lastError");
	json_t *o = json_pack(
	        "{s:s,s:o,s:s,s:s,s:O,s:s,s:s,s:O,s:s,s:s}", "Id", str(dl, "id"), "DeadLetteredAt",
	        srv_json_time((int64_t)json_integer_value(json_object_get(dl, "at"))),
	        "EventBusName", str(dl, "bus"), "Rule", str(dl, "rule"), "TargetId",
	        json_object_get(dl, "target"), "TargetArn", str(dl, "targetArn"), "EventId",
	        str(dl, "eventId"), "Attempts", json_object_get(dl, "attempts"), "ErrorCode",
	        str(last, "code"), "ErrorMessage", str(last, "message"));
	return o;
}

static json_t *
detail(json_t *dl)
{
	json_t *o = summary(dl);
	if (!o)
		return NULL;
	json_object_set_new(o, "RuleArn", json_string(str(dl, "ruleArn")));
	json_object_set_new(o, "DeadLetterArn", json_string(str(dl, "deadLetterArn")));
	json_object_set_new(o, "Input", json_string(str(dl, "input")));
	json_t *ev = json_object_get(dl, "event");
	if (json_is_string(ev))
		json_object_set(o, "Event", ev);
	json_object_set(o, "Attributes", json_object_get(dl, "attributes"));
	return o;
}

/* ---- request fields ------------------------------------------------------------------- */

struct selection {
	const char *rule;
	char bus[BUS_NAME_MAX + 1];
	bool bus_set;
	json_t *ids; /* borrowed array of strings or NULL */
};

static sl_err
selection_args(json_t *body, struct selection *sel, struct sl_error *err)
{
	const char *bus;
	sl_err rc;
	memset(sel, 0, sizeof *sel);
	if ((rc = bus_str_field(body, "Rule", false, &sel->rule, err))
	    || (rc = bus_str_field(body, "EventBusName", false, &bus, err)))
		return rc;
	if (bus) {
		if ((rc = bus_resolve_name(bus, sel->bus, err)))
			return rc;
		sel->bus_set = true;
	}
	json_t *ids = json_object_get(body, "Ids");
	if (ids && !json_is_null(ids)) {
		if (!json_is_array(ids) || json_array_size(ids) > BULK_MAX)
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "Ids must be a list of at most %d dead-letter ids",
			                    BULK_MAX);
		for (size_t i = 0; i < json_array_size(ids); i++)
			if (!json_is_string(json_array_get(ids, i)))
				return sl_error_set(err, SL_ERR_SERIALIZATION,
				                    "Ids[%zu]: expected a string", i + 1);
		sel->ids = ids;
	}
	return SL_OK;
}

static bool
selected(const struct selection *sel, json_t *dl)
{
	if (sel->rule && strcmp(sel->rule, str(dl, "rule")) != 0)
		return false;
	if (sel->bus_set && strcmp(sel->bus, str(dl, "bus")) != 0)
		return false;
	return true;
}

/* The dead letter of id into *dl and its key into dkey; SL_ERR_NOT_FOUND when absent. */
static sl_err
lookup(store_txn_t *txn, const char *id, json_t **dl, unsigned char dkey[DKEY_LEN])
{
	if (strlen(id) != ID_LEN)
		return SL_ERR_NOT_FOUND;
	struct store_key ik;
	index_key(&ik, id);
	struct store_val v;
	sl_err rc = store_get(txn, STORE_DB_DEADLETTERS, ik.buf, ik.len, &v);
	if (rc)
		return rc;
	if (v.len != DKEY_LEN)
		return SL_ERR_STORE;
	memcpy(dkey, v.data, DKEY_LEN);
	if ((rc = store_get(txn, STORE_DB_DEADLETTERS, dkey, DKEY_LEN, &v)))
		return rc == SL_ERR_NOT_FOUND ? SL_ERR_STORE : rc;
	*dl = json_loadb(v.data, v.len, 0, NULL);
	return *dl ? SL_OK : SL_ERR_STORE;
}

static sl_err
not_found(struct sl_error *err, const char *id)
{
	return sl_error_set(err, SL_ERR_EB_NOT_FOUND, "Dead letter %s does not exist.", id);
}

/* ---- operations ----------------------------------------------------------------------- */

static sl_err
op_list(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	struct selection sel;
	sl_err rc = selection_args(body, &sel, err);
	if (rc)
		return rc;
	json_t *mr = json_object_get(body, "MaxResults");
	size_t limit = DL_LIST_DEFAULT;
	if (mr && !json_is_null(mr)) {
		if (!json_is_integer(mr) || json_integer_value(mr) < 1
		    || json_integer_value(mr) > 100)
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "MaxResults must be a whole number from 1 to 100");
		limit = (size_t)json_integer_value(mr);
	}
	const char *token;
	if ((rc = bus_str_field(body, "NextToken", false, &token, err)))
		return rc;
	unsigned char after[DKEY_LEN];
	if (token) {
		bool good = strlen(token) == 2 * DKEY_LEN;
		for (size_t i = 0; good && i < DKEY_LEN; i++) {
			unsigned x;
			good = sscanf(token + 2 * i, "%2x", &x) == 1;
			after[i] = (unsigned char)x;
		}
		if (!good)
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "The NextToken provided is invalid.");
	}
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	store_cursor_t *c = NULL;
	json_t *list = json_array();
	char next[2 * DKEY_LEN + 1] = "";
	struct store_key pk;
	store_key_init(&pk);
	store_key_u32(&pk, TAG_DEAD);
	if (!list)
		rc = SL_ERR_NOMEM;
	if (rc == SL_OK && (rc = store_cursor_open(txn, STORE_DB_DEADLETTERS, &c)) == SL_OK)
		rc = token ? store_cursor_seek(c, after, DKEY_LEN)
		           : store_cursor_seek_prefix(c, pk.buf, pk.len);
	struct store_val kv, vv;
	unsigned char last[DKEY_LEN];
	while (rc == SL_OK && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
		if (kv.len != DKEY_LEN || memcmp(kv.data, pk.buf, pk.len) != 0) {
			rc = SL_ERR_NOT_FOUND;
			break;
		}
		if (token && memcmp(kv.data, after, DKEY_LEN) == 0)
			continue;
		json_t *dl = json_loadb(vv.data, vv.len, 0, NULL);
		if (!dl || !selected(&sel, dl)) {
			json_decref(dl);
			continue;
		}
		if (json_array_size(list) == limit) {
			sl_hex(last, DKEY_LEN, next);
			json_decref(dl);
			rc = SL_ERR_NOT_FOUND;
			break;
		}
		json_array_append_new(list, summary(dl));
		json_decref(dl);
		memcpy(last, kv.data, DKEY_LEN);
	}
	store_cursor_close(c);
	store_read_end(txn);
	if (rc != SL_ERR_NOT_FOUND) {
		json_decref(list);
		return rc;
	}
	json_t *out = json_pack("{s:o}", "DeadLetters", list);
	if (out && next[0])
		json_object_set_new(out, "NextToken", json_string(next));
	if (!out)
		return SL_ERR_NOMEM;
	srv_reply_json(req, out);
	return SL_OK;
}

static sl_err
op_get(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *id;
	sl_err rc = bus_str_field(body, "Id", true, &id, err);
	if (rc)
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	json_t *dl = NULL;
	unsigned char dkey[DKEY_LEN];
	rc = lookup(txn, id, &dl, dkey);
	store_read_end(txn);
	if (rc == SL_ERR_NOT_FOUND)
		return not_found(err, id);
	if (rc)
		return rc;
	json_t *out = detail(dl);
	json_decref(dl);
	if (!out)
		return SL_ERR_NOMEM;
	srv_reply_json(req, out);
	return SL_OK;
}

/* Deletes a dead letter; with redrive, writes its delivery back first, due now. */
static sl_err
settle(store_txn_t *txn, json_t *dl, const unsigned char dkey[DKEY_LEN], bool redrive)
{
	sl_err rc;
	const char *id = str(dl, "id");
	if (redrive) {
		json_t *rec = json_deep_copy(json_object_get(dl, "delivery"));
		int64_t now = sl_clock_now_ms();
		if (!json_is_object(rec) || strlen(id) != ID_LEN) {
			json_decref(rec);
			return SL_ERR_STORE;
		}
		json_object_del(rec, "lastError");
		if (json_object_set_new(rec, "attempt", json_integer(0))
		    || json_object_set_new(rec, "due", json_integer(now))
		    || json_object_set_new(rec, "created", json_integer(now))) {
			json_decref(rec);
			return SL_ERR_NOMEM;
		}
		struct store_key k;
		store_key_init(&k);
		store_key_i64(&k, now);
		store_key_raw(&k, id, ID_LEN);
		rc = bus_put_json(txn, STORE_DB_DELIVERIES, &k, rec);
		json_decref(rec);
		if (rc)
			return rc;
	}
	struct store_key ik;
	index_key(&ik, id);
	if ((rc = store_del(txn, STORE_DB_DEADLETTERS, dkey, DKEY_LEN)))
		return rc;
	return store_del(txn, STORE_DB_DEADLETTERS, ik.buf, ik.len);
}

static sl_err
bulk(srv_req_t *req, json_t *body, bool redrive, struct sl_error *err)
{
	struct selection sel;
	sl_err rc = selection_args(body, &sel, err);
	if (rc)
		return rc;
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	json_t *missing = json_array();
	size_t done = 0;
	bool more = false;
	if (!missing)
		return SL_ERR_NOMEM;
	if (sel.ids) {
		for (size_t i = 0; rc == SL_OK && i < json_array_size(sel.ids); i++) {
			const char *id = json_string_value(json_array_get(sel.ids, i));
			json_t *dl = NULL;
			unsigned char dkey[DKEY_LEN];
			rc = lookup(txn, id, &dl, dkey);
			if (rc == SL_OK && !selected(&sel, dl)) {
				json_decref(dl);
				rc = SL_ERR_NOT_FOUND;
			}
			if (rc == SL_ERR_NOT_FOUND) {
				json_array_append_new(missing, json_string(id));
				rc = SL_OK;
				continue;
			}
			if (rc == SL_OK && (rc = settle(txn, dl, dkey, redrive)) == SL_OK)
				done++;
			json_decref(dl);
		}
	} else {
		/* keys first: the loop below deletes what a cursor would walk */
		unsigned char(*keys)[DKEY_LEN] = sl_reallocarray(NULL, BULK_MAX, DKEY_LEN);
		size_t n = 0;
		store_cursor_t *c = NULL;
		struct store_key pk;
		store_key_init(&pk);
		store_key_u32(&pk, TAG_DEAD);
		rc = keys ? store_cursor_open(txn, STORE_DB_DEADLETTERS, &c) : SL_ERR_NOMEM;
		if (rc == SL_OK)
			rc = store_cursor_seek_prefix(c, pk.buf, pk.len);
		struct store_val kv, vv;
		while (rc == SL_OK && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			json_t *dl = json_loadb(vv.data, vv.len, 0, NULL);
			bool want = kv.len == DKEY_LEN && dl && selected(&sel, dl);
			json_decref(dl);
			if (!want)
				continue;
			if (n == BULK_MAX) {
				more = true;
				break;
			}
			memcpy(keys[n++], kv.data, DKEY_LEN);
		}
		store_cursor_close(c);
		if (rc == SL_ERR_NOT_FOUND)
			rc = SL_OK;
		for (size_t i = 0; rc == SL_OK && i < n; i++) {
			struct store_val v;
			json_t *dl = NULL;
			if ((rc = store_get(txn, STORE_DB_DEADLETTERS, keys[i], DKEY_LEN, &v))
			            == SL_OK
			    && !(dl = json_loadb(v.data, v.len, 0, NULL)))
				rc = SL_ERR_STORE;
			if (rc == SL_OK && (rc = settle(txn, dl, keys[i], redrive)) == SL_OK)
				done++;
			json_decref(dl);
		}
		sl_free(keys);
	}
	if (rc) {
		json_decref(missing);
		return rc;
	}
	if (redrive && done)
		srv_deliver_wrote(srv_req_server(req), b);
	sl_info("deliver", "%zu dead letter(s) %s", done, redrive ? "redriven" : "purged");
	srv_reply_json(req,
	               json_pack("{s:I,s:o,s:b}", redrive ? "Redriven" : "Purged", (json_int_t)done,
	                         "NotFound", missing, "More", more));
	return SL_OK;
}

static sl_err
op_redrive(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	return bulk(req, body, true, err);
}

static sl_err
op_purge(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	return bulk(req, body, false, err);
}

sl_err
deadletter_register(srv_t *s, srv_deliver_t *d)
{
	static const struct {
		const char *op;
		srv_op_fn fn;
	} ops[] = {
		{ "SluiceEvents.ListDeadLetters", op_list },
		{ "SluiceEvents.GetDeadLetter", op_get },
		{ "SluiceEvents.RedriveDeadLetters", op_redrive },
		{ "SluiceEvents.PurgeDeadLetters", op_purge },
	};
	sl_err rc = SL_OK;
	for (size_t i = 0; rc == SL_OK && i < sizeof ops / sizeof ops[0]; i++)
		rc = srv_register_op(s, ops[i].op, ops[i].fn, d);
	return rc;
}
