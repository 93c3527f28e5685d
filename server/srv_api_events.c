/*
 * srv_api_events.c - EventBridge operations that need no bus state: TestEventPattern.
 * The same pattern engine and messages as `sluice test-pattern` and PutRule.
 */
#include <string.h>

#include "bus/pattern.h"
#include "server/srv_api.h"

/* AWS wants a full envelope: these members, as strings (resources may be left out). */
static bool
valid_envelope(const char *text)
{
	json_t *ev = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	static const char *const required[]
	        = { "id", "account", "source", "time", "region", "detail-type" };
	bool ok = json_is_object(ev);
	for (size_t i = 0; ok && i < sizeof required / sizeof required[0]; i++)
		ok = json_is_string(json_object_get(ev, required[i]));
	json_t *res = json_object_get(ev, "resources");
	if (ok && res && !json_is_array(res))
		ok = false;
	json_decref(ev);
	return ok;
}

static sl_err
op_test_event_pattern(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	json_t *p = json_object_get(body, "EventPattern"), *e = json_object_get(body, "Event");
	if (!json_is_string(p))
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "1 validation error detected: Value null at 'eventPattern' failed "
		        "to satisfy constraint: Member must not be null");
	if (!json_is_string(e))
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "1 validation error detected: Value null at 'event' failed to "
		                    "satisfy constraint: Member must not be null");
	/* the pattern is checked first, as AWS does */
	sl_err rc = pat_validate(json_string_value(p), json_string_length(p), err);
	if (rc)
		return rc;
	if (!valid_envelope(json_string_value(e)))
		return sl_error_set(err, SL_ERR_INVALID_ARG, "Parameter Event is not valid.");
	bool match = false;
	if ((rc = pat_test(json_string_value(p), json_string_value(e), &match, err)))
		return rc;
	srv_reply_json(req, json_pack("{s:b}", "Result", match));
	return SL_OK;
}

sl_err
srv_api_events_register(srv_t *s)
{
	return srv_register_op(s, "AWSEvents.TestEventPattern", op_test_event_pattern, NULL);
}
