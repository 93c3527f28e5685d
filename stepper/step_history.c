/*
 * step_history.c - history events in GetExecutionHistory's shape: id, previousEventId,
 * timestamp, type and a `<type>EventDetails` member whose payloads are JSON text.
 */
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "stepper/step_int.h"

char *
step_dumps(json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Payloads are stored as documents and turned into the JSON text AWS shows when the
 * history is read (step_history_page): the hot path escapes each payload once, not twice. */
json_t *
step_payload_details(const char *key, json_t *v)
{
	char dkey[64];
	snprintf(dkey, sizeof dkey, "%sDetails", key);
	return json_pack("{s:O, s:{s:b}}", key, v ? v : json_null(), dkey, "truncated", 0);
}

void
step_event_to_aws(json_t *ev)
{
	static const char *const payload_keys[] = { "input", "output", "parameters" };
	const char *k;
	json_t *d;
	json_object_foreach(ev, k, d)
	{
		if (!json_is_object(d))
			continue;
		for (size_t i = 0; i < sizeof payload_keys / sizeof payload_keys[0]; i++) {
			json_t *p = json_object_get(d, payload_keys[i]);
			if (!p)
				continue;
			char *s = step_dumps(p);
			if (s)
				json_object_set_new(d, payload_keys[i], json_string(s));
			sl_free(s);
		}
	}
}

sl_err
step_event(struct step_ctx *c, struct step_frame *f, const char *type, const char *detail_key,
           json_t *details)
{
	// EXPRESS executions keep no history (AWS shows it only in CloudWatch Logs)
	if (c->eng->opt.no_history) {
		json_decref(details);
		return SL_OK;
	}
	int64_t id = step_jint(c->exec, "nextEvent", 1);
	size_t limit = c->eng->opt.history_limit;
	// The last slot is kept for the failure that the limit itself causes.
	if ((size_t)id > limit && strcmp(type, "ExecutionFailed") != 0) {
		json_decref(details);
		return SL_ERR_LIMIT;
	}
	uint64_t prev = f ? f->prev : (uint64_t)step_jint(c->exec, "lastEvent", 0);
	char ts[32];
	sl_clock_format_rfc3339(sl_clock_now_ms(), ts);
	json_t *ev = json_pack("{s:I, s:I, s:s, s:s}", "id", (json_int_t)id, "previousEventId",
	                       (json_int_t)prev, "timestamp", ts, "type", type);
	if (!ev) {
		json_decref(details);
		return SL_ERR_NOMEM;
	}
	if (detail_key && json_object_set_new(ev, detail_key, details ? details : json_object())) {
		json_decref(ev);
		return SL_ERR_NOMEM;
	} else if (!detail_key) {
		json_decref(details);
	}
	struct store_key k;
	store_key_init(&k);
	store_key_str(&k, c->arn);
	store_key_u64(&k, (uint64_t)id);
	sl_err e = step_put_json(c->txn, STORE_DB_HISTORY, &k, 'E', ev);
	json_decref(ev);
	if (e != SL_OK)
		return e;
	json_object_set_new(c->exec, "nextEvent", json_integer(id + 1));
	json_object_set_new(c->exec, "lastEvent", json_integer(id));
	c->exec_dirty = true;
	if (f)
		f->prev = (uint64_t)id;
	return SL_OK;
}
