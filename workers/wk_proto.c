#include "workers/wk_proto.h"

#include <stdbool.h>
#include <string.h>

#include "common/sl_alloc.h"

/* Bounds on strings that are names, not payloads. AWS caps task tokens at 1,024 chars and
 * activity/worker names at 80; we allow a little more for ARNs as activity names. */
#define WK_MAX_TOKEN   1024
#define WK_MAX_NAME    256
#define WK_MAX_ID      128
#define WK_MAX_ERROR   256
#define WK_MAX_CAUSE   32768
#define WK_MAX_MESSAGE 4096

static const char *const type_names[] = {
	[WK_MSG_POLL] = "poll",           [WK_MSG_TASKS] = "tasks",
	[WK_MSG_SUCCESS] = "success",     [WK_MSG_FAILURE] = "failure",
	[WK_MSG_HEARTBEAT] = "heartbeat", [WK_MSG_OK] = "ok",
	[WK_MSG_ERROR] = "error",
};

const char *
wk_msg_type_name(enum wk_msg_type t)
{
	if ((unsigned)t >= sizeof type_names / sizeof type_names[0])
		return "?";
	return type_names[t];
}

void
wk_limits_resolve(const struct wk_limits *in, struct wk_limits *out)
{
	struct wk_limits l = { 0 };
	if (in)
		l = *in;
	if (!l.max_frame)
		l.max_frame = 1024 * 1024;
	if (!l.max_payload)
		l.max_payload = 256 * 1024;
	if (!l.max_activities)
		l.max_activities = 64;
	if (!l.max_tasks)
		l.max_tasks = 64;
	if (!l.max_wait_ms)
		l.max_wait_ms = 60000;
	*out = l;
}

/* Reads a string field; absent is allowed only when !required. */
static sl_err
get_str(json_t *obj, const char *key, bool required, size_t max, const char **out,
        struct sl_error *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v) {
		*out = NULL;
		if (required)
			return sl_error_set(err, SL_ERR_PARSE,
			                    "field '%s': required string is missing", key);
		return SL_OK;
	}
	if (!json_is_string(v))
		return sl_error_set(err, SL_ERR_PARSE, "field '%s': expected a string", key);
	size_t n = json_string_length(v);
	if (n > max)
		return sl_error_set(err, SL_ERR_PARSE, "field '%s': longer than %zu characters",
		                    key, max);
	if (required && n == 0)
		return sl_error_set(err, SL_ERR_PARSE, "field '%s': must not be empty", key);
	*out = json_string_value(v);
	return SL_OK;
}

static sl_err
get_uint(json_t *obj, const char *key, json_int_t max, json_int_t dflt, json_int_t *out,
         struct sl_error *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v) {
		*out = dflt;
		return SL_OK;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return sl_error_set(err, SL_ERR_PARSE,
		                    "field '%s': expected an integer from 0 to %lld", key,
		                    (long long)max);
	*out = json_integer_value(v);
	return SL_OK;
}

/* Size of v once serialized, for payload limits (compact form, as it is sent). */
static size_t
payload_size(json_t *v)
{
	return json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
}

static sl_err
decode_poll(struct wk_msg *m, const struct wk_limits *l, struct sl_error *err)
{
	sl_err rc;
	json_int_t max, wait;
	if ((rc = get_str(m->root, "id", true, WK_MAX_ID, &m->poll_id, err))
	    || (rc = get_str(m->root, "worker", false, WK_MAX_NAME, &m->worker, err))
	    || (rc = get_uint(m->root, "max", l->max_tasks, 1, &max, err))
	    || (rc = get_uint(m->root, "wait_ms", l->max_wait_ms, 0, &wait, err)))
		return rc;
	if (max == 0)
		return sl_error_set(err, SL_ERR_PARSE, "field 'max': must be at least 1");
	m->max_tasks = (unsigned)max;
	m->wait_ms = (uint32_t)wait;
	json_t *acts = json_object_get(m->root, "activities");
	if (!json_is_array(acts) || json_array_size(acts) == 0)
		return sl_error_set(err, SL_ERR_PARSE,
		                    "field 'activities': expected a non-empty array of names");
	size_t n = json_array_size(acts);
	if (n > l->max_activities)
		return sl_error_set(err, SL_ERR_PARSE, "field 'activities': more than %zu names",
		                    l->max_activities);
	m->activities = sl_calloc(n, sizeof *m->activities);
	if (!m->activities)
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *a = json_array_get(acts, i);
		if (!json_is_string(a) || json_string_length(a) == 0
		    || json_string_length(a) > WK_MAX_NAME)
			return sl_error_set(err, SL_ERR_PARSE,
			                    "field 'activities[%zu]': expected a name of 1 to %d "
			                    "characters",
			                    i, WK_MAX_NAME);
		m->activities[i] = json_string_value(a);
	}
	m->n_activities = n;
	return SL_OK;
}

static sl_err
decode_tasks(struct wk_msg *m, const struct wk_limits *l, struct sl_error *err)
{
	sl_err rc = get_str(m->root, "id", true, WK_MAX_ID, &m->poll_id, err);
	if (rc)
		return rc;
	json_t *arr = json_object_get(m->root, "tasks");
	if (!json_is_array(arr))
		return sl_error_set(err, SL_ERR_PARSE, "field 'tasks': expected an array");
	size_t n = json_array_size(arr);
	if (n > l->max_tasks)
		return sl_error_set(err, SL_ERR_PARSE, "field 'tasks': more than %u tasks",
		                    l->max_tasks);
	if (n == 0)
		return SL_OK;
	m->tasks = sl_calloc(n, sizeof *m->tasks);
	if (!m->tasks)
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *t = json_array_get(arr, i);
		struct wk_task *wt = &m->tasks[i];
		json_int_t to, hb;
		if (!json_is_object(t))
			return sl_error_set(err, SL_ERR_PARSE,
			                    "field 'tasks[%zu]': expected an object", i);
		if ((rc = get_str(t, "token", true, WK_MAX_TOKEN, &wt->token, err))
		    || (rc = get_str(t, "activity", true, WK_MAX_NAME, &wt->activity, err))
		    || (rc = get_uint(t, "timeout_s", 99999999, 0, &to, err))
		    || (rc = get_uint(t, "heartbeat_s", 99999999, 0, &hb, err)))
			return rc;
		wt->input = json_object_get(t, "input");
		if (!wt->input)
			return sl_error_set(err, SL_ERR_PARSE, "field 'tasks[%zu].input': missing",
			                    i);
		wt->timeout_s = (uint32_t)to;
		wt->heartbeat_s = (uint32_t)hb;
	}
	m->n_tasks = n;
	return SL_OK;
}

sl_err
wk_msg_decode(const void *buf, size_t len, const struct wk_limits *lim, struct wk_msg *out,
              struct sl_error *err)
{
	struct wk_limits l;
	wk_limits_resolve(lim, &l);
	memset(out, 0, sizeof *out);
	if (len > l.max_frame)
		return sl_error_set(err, SL_ERR_TOO_LARGE, "frame of %zu bytes exceeds %zu bytes",
		                    len, l.max_frame);
	json_error_t jerr;
	out->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!out->root)
		return sl_error_set(err, SL_ERR_PARSE, "not JSON: %s at byte %d", jerr.text,
		                    jerr.position);
	sl_err rc;
	const char *type;
	if (!json_is_object(out->root)) {
		rc = sl_error_set(err, SL_ERR_PARSE, "expected a JSON object");
		goto out_clear;
	}
	json_t *v = json_object_get(out->root, "v");
	if (!json_is_integer(v)) {
		rc = sl_error_set(err, SL_ERR_PARSE,
		                  "field 'v': expected the protocol version (%d)",
		                  WK_PROTO_VERSION);
		goto out_clear;
	}
	if (json_integer_value(v) != WK_PROTO_VERSION) {
		rc = sl_error_set(err, SL_ERR_INVALID_ARG,
		                  "protocol version %lld is not supported (this end speaks %d)",
		                  (long long)json_integer_value(v), WK_PROTO_VERSION);
		goto out_clear;
	}
	if ((rc = get_str(out->root, "auth", false, WK_MAX_TOKEN, &out->auth, err)))
		goto out_clear;
	/* error replies carry "error" and no type */
	if (!json_object_get(out->root, "type") && json_object_get(out->root, "error")) {
		out->type = WK_MSG_ERROR;
		if ((rc = get_str(out->root, "error", true, WK_MAX_ERROR, &out->error, err))
		    || (rc
		        = get_str(out->root, "message", false, WK_MAX_MESSAGE, &out->message, err)))
			goto out_clear;
		return SL_OK;
	}
	if ((rc = get_str(out->root, "type", true, 32, &type, err)))
		goto out_clear;
	size_t ntypes = sizeof type_names / sizeof type_names[0];
	size_t t = 0;
	while (t < ntypes && strcmp(type, type_names[t]) != 0)
		t++;
	if (t == ntypes || t == WK_MSG_ERROR) {
		rc = sl_error_set(err, SL_ERR_UNKNOWN_OPERATION, "unknown message type '%s'", type);
		goto out_clear;
	}
	out->type = (enum wk_msg_type)t;
	switch (out->type) {
	case WK_MSG_POLL: rc = decode_poll(out, &l, err); break;
	case WK_MSG_TASKS: rc = decode_tasks(out, &l, err); break;
	case WK_MSG_SUCCESS:
		if ((rc = get_str(out->root, "token", true, WK_MAX_TOKEN, &out->token, err)))
			break;
		out->output = json_object_get(out->root, "output");
		if (!out->output)
			rc = sl_error_set(err, SL_ERR_PARSE, "field 'output': missing");
		else if (payload_size(out->output) > l.max_payload)
			rc = sl_error_set(err, SL_ERR_TOO_LARGE,
			                  "field 'output': larger than %zu bytes", l.max_payload);
		break;
	case WK_MSG_FAILURE:
		if (!(rc = get_str(out->root, "token", true, WK_MAX_TOKEN, &out->token, err))
		    && !(rc = get_str(out->root, "error", false, WK_MAX_ERROR, &out->error, err)))
			rc = get_str(out->root, "cause", false, WK_MAX_CAUSE, &out->cause, err);
		break;
	case WK_MSG_HEARTBEAT:
		rc = get_str(out->root, "token", true, WK_MAX_TOKEN, &out->token, err);
		break;
	case WK_MSG_OK:
	case WK_MSG_ERROR: break;
	}
	if (rc)
		goto out_clear;
	return SL_OK;
out_clear:
	wk_msg_clear(out);
	return rc;
}

void
wk_msg_clear(struct wk_msg *m)
{
	sl_free(m->activities);
	sl_free(m->tasks);
	json_decref(m->root);
	memset(m, 0, sizeof *m);
}

/* Serializes obj (stolen) into a new buffer. */
static sl_err
finish(json_t *obj, char **out, size_t *out_len)
{
	if (!obj)
		return SL_ERR_NOMEM;
	char *s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!s)
		return SL_ERR_NOMEM;
	*out = s;
	if (out_len)
		*out_len = strlen(s);
	return SL_OK;
}

static json_t *
base(const char *type, const char *auth)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	if (json_object_set_new(o, "v", json_integer(WK_PROTO_VERSION))
	    || (type && json_object_set_new(o, "type", json_string(type)))
	    || (auth && json_object_set_new(o, "auth", json_string(auth)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Adds key: string (copied) or fails the whole object. */
static json_t *
add_str(json_t *o, const char *key, const char *val)
{
	if (!o || !val)
		return o;
	if (json_object_set_new(o, key, json_string(val))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
add_new(json_t *o, const char *key, json_t *val)
{
	if (!o) {
		json_decref(val);
		return NULL;
	}
	if (!val || json_object_set_new(o, key, val)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

sl_err
wk_encode_poll(const char *auth, const char *poll_id, const char *worker,
               const char *const *activities, size_t n_activities, unsigned max_tasks,
               uint32_t wait_ms, char **out, size_t *out_len)
{
	json_t *acts = json_array();
	for (size_t i = 0; acts && i < n_activities; i++) {
		if (json_array_append_new(acts, json_string(activities[i]))) {
			json_decref(acts);
			acts = NULL;
		}
	}
	json_t *o = add_str(add_str(base("poll", auth), "id", poll_id), "worker", worker);
	o = add_new(o, "activities", acts);
	o = add_new(o, "max", json_integer(max_tasks));
	o = add_new(o, "wait_ms", json_integer(wait_ms));
	return finish(o, out, out_len);
}

sl_err
wk_encode_tasks(const char *poll_id, const struct wk_task *tasks, size_t n, char **out,
                size_t *out_len)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		json_t *t = add_str(add_str(json_object(), "token", tasks[i].token), "activity",
		                    tasks[i].activity);
		t = add_new(t, "input", json_incref(tasks[i].input ? tasks[i].input : json_null()));
		t = add_new(t, "timeout_s", json_integer(tasks[i].timeout_s));
		t = add_new(t, "heartbeat_s", json_integer(tasks[i].heartbeat_s));
		if (!t || json_array_append_new(arr, t)) {
			json_decref(arr);
			arr = NULL;
		}
	}
	json_t *o = add_new(add_str(base("tasks", NULL), "id", poll_id), "tasks", arr);
	return finish(o, out, out_len);
}

sl_err
wk_encode_success(const char *auth, const char *token, json_t *output, char **out, size_t *out_len)
{
	json_t *o = add_str(base("success", auth), "token", token);
	o = add_new(o, "output", json_incref(output ? output : json_null()));
	return finish(o, out, out_len);
}

sl_err
wk_encode_failure(const char *auth, const char *token, const char *error, const char *cause,
                  char **out, size_t *out_len)
{
	json_t *o = add_str(base("failure", auth), "token", token);
	o = add_str(add_str(o, "error", error), "cause", cause);
	return finish(o, out, out_len);
}

sl_err
wk_encode_heartbeat(const char *auth, const char *token, char **out, size_t *out_len)
{
	return finish(add_str(base("heartbeat", auth), "token", token), out, out_len);
}

sl_err
wk_encode_ok(char **out, size_t *out_len)
{
	return finish(base("ok", NULL), out, out_len);
}

sl_err
wk_encode_error(const char *error, const char *message, char **out, size_t *out_len)
{
	json_t *o = add_str(add_str(base(NULL, NULL), "error", error), "message", message);
	return finish(o, out, out_len);
}
