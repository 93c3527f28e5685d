/*
 * srv_api_activities.c - Step Functions activities and the task-answer half of the activity
 * worker API: CreateActivity, DescribeActivity, ListActivities, DeleteActivity;
 * SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat (GetActivityTask is the dispatcher's,
 * srv_dispatch.c).
 *
 * Records in STORE_DB_ACTIVITIES (JSON values):
 *   'A' name -> {"name", "created" (epoch ms), "tags": [{"key", "value"}, ...]}
 * Keys are store_key_u32('A') + store_key_str(name), so a prefix scan over 'A' lists the
 * activities in name order (ListActivities pages by name). An activity is only a name: the
 * tasks of executions that use it live in the stepper's records (tasks, task_tokens), so
 * deleting an activity leaves running executions and their queued tasks alone, as in AWS.
 *
 * The Send* operations answer a task token through the server's stepper in the request's
 * batch: the answer leaves after the commit that records the task's result, and a refused
 * answer changes nothing (the request's savepoint is rolled back).
 */
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "server/srv_api.h"
#include "server/srv_dispatch.h"
#include "server/srv_engine.h"

#define NAME_MAX_LEN   80
#define ARN_MAX_LEN    256
#define LIST_DEFAULT   100
#define TAGS_MAX       50
#define TAG_KEY_MAX    128
#define TAG_VALUE_MAX  256
#define TOKEN_MAX_LEN  2048
#define ERROR_MAX_LEN  256
#define CAUSE_MAX_LEN  32768
#define ACTIVITY_LIMIT 10000 /* AWS's historical default quota of activities per region */

enum { TAG_ACTIVITY = 'A' };

/* ---- request fields ----------------------------------------------------------------------- */

/* AWS's length constraints are ValidationExceptions with this wording. */
static sl_err
too_long(struct sl_error *err, const char *field, size_t max)
{
	return sl_error_set(err, SL_ERR_SFN_VALIDATION,
	                    "1 validation error detected: Value at '%s' failed to satisfy "
	                    "constraint: Member must have length less than or equal to %zu",
	                    field, max);
}

static sl_err
too_short(struct sl_error *err, const char *field)
{
	return sl_error_set(err, SL_ERR_SFN_VALIDATION,
	                    "1 validation error detected: Value at '%s' failed to satisfy "
	                    "constraint: Member must have length greater than or equal to 1",
	                    field);
}

/* AWS's name rules: 1..80 characters, none of white space, brackets, wildcards, the listed
 * punctuation, or control characters (C0, DEL, and C1 in UTF-8). */
static bool
valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || strchr(" <>{}[]?*\"#%\\^|~`$&,;:/", *p))
			return false;
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return false;
	}
	return true;
}

/* tags: an array of at most 50 {"key" 1..128, "value" 0..256}; copied into *out. */
static sl_err
check_tags(json_t *body, const char *name, json_t **out, struct sl_error *err)
{
	json_t *tags = json_object_get(body, "tags");
	*out = NULL;
	if (!tags || json_is_null(tags))
		return SL_OK;
	if (!json_is_array(tags))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "Field 'tags': expected a list");
	if (json_array_size(tags) > TAGS_MAX)
		return sl_error_set(err, SL_ERR_TOO_MANY_TAGS,
		                    "Too many tags: %zu tags on '%s', at most %d are allowed",
		                    json_array_size(tags), name, TAGS_MAX);
	json_t *copy = json_array();
	if (!copy)
		return SL_ERR_NOMEM;
	size_t i;
	json_t *t;
	json_array_foreach(tags, i, t)
	{
		json_t *k = json_object_get(t, "key"), *v = json_object_get(t, "value");
		sl_err rc = SL_OK;
		if (!json_is_object(t) || (k && !json_is_string(k)) || (v && !json_is_string(v)))
			rc = sl_error_set(err, SL_ERR_SERIALIZATION,
			                  "Field 'tags.%zu': expected {\"key\": string, \"value\": "
			                  "string}",
			                  i + 1);
		else if (!k || json_string_length(k) == 0)
			rc = too_short(err, "tags.member.key");
		else if (json_string_length(k) > TAG_KEY_MAX)
			rc = too_long(err, "tags.member.key", TAG_KEY_MAX);
		else if (v && json_string_length(v) > TAG_VALUE_MAX)
			rc = too_long(err, "tags.member.value", TAG_VALUE_MAX);
		else if (json_array_append_new(copy,
		                               json_pack("{s:O,s:s}", "key", k, "value",
		                                         v ? json_string_value(v) : "")))
			rc = SL_ERR_NOMEM;
		if (rc) {
			json_decref(copy);
			return rc;
		}
	}
	*out = copy;
	return SL_OK;
}

/* ---- ARNs and records ----------------------------------------------------------------------- */

static void
activity_arn(char *out, size_t cap, const char *name)
{
	sl_arn_format(out, cap, "states", "activity", name, NULL);
}

/* "arn:aws:states:REGION:ACCOUNT:activity:NAME" -> name. Another region or account names
 * an activity that cannot be here: ActivityDoesNotExist. */
static sl_err
parse_activity_arn(const char *arn, char name[NAME_MAX_LEN + 1], struct sl_error *err)
{
	size_t n = strlen(arn);
	if (n == 0)
		return too_short(err, "activityArn");
	if (n > ARN_MAX_LEN)
		return too_long(err, "activityArn", ARN_MAX_LEN);
	char buf[ARN_MAX_LEN + 1];
	memcpy(buf, arn, n + 1);
	struct sl_arn a;
	if (sl_arn_parse(buf, &a) || strcmp(a.service, "states") != 0)
		return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%s'", arn);
	if (strncmp(a.resource, "activity:", 9) != 0) {
		size_t type_len = strcspn(a.resource, ":");
		return sl_error_set(err, SL_ERR_INVALID_ARN,
		                    "Invalid Arn: 'Resource type not valid in this context: %.*s'",
		                    (int)type_len, a.resource);
	}
	const char *nm = a.resource + 9;
	if (!valid_name(nm))
		return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%s'", arn);
	snprintf(name, NAME_MAX_LEN + 1, "%s", nm);
	if (strcmp(a.region, sl_arn_region()) != 0 || strcmp(a.account, sl_arn_account()) != 0)
		return sl_error_set(err, SL_ERR_ACTIVITY_NOT_FOUND, "Activity Does Not Exist: '%s'",
		                    arn);
	return SL_OK;
}

static void
key_of(struct store_key *k, const char *name)
{
	store_key_init(k);
	store_key_u32(k, TAG_ACTIVITY);
	if (name)
		store_key_str(k, name);
}

static sl_err
get_activity(store_txn_t *txn, const char *name, json_t **out)
{
	struct store_key k;
	key_of(&k, name);
	struct store_val v;
	sl_err rc = store_get(txn, STORE_DB_ACTIVITIES, k.buf, k.len, &v);
	if (rc)
		return rc;
	*out = json_loadb(v.data, v.len, 0, NULL);
	return *out ? SL_OK : SL_ERR_STORE;
}

static int64_t
rec_created(json_t *rec)
{
	return (int64_t)json_integer_value(json_object_get(rec, "created"));
}

/* ---- activities ----------------------------------------------------------------------------- */

static sl_err
op_create(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *name;
	sl_err rc = srv_sfn_str_field(body, "name", true, &name, err);
	if (rc)
		return rc;
	if (!valid_name(name))
		return sl_error_set(err, SL_ERR_INVALID_NAME, "Invalid Name: '%s'", name);
	json_t *tags = NULL;
	if ((rc = check_tags(body, name, &tags, err)))
		return rc;
	char arn[ARN_MAX_LEN + 64];
	activity_arn(arn, sizeof arn, name);
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b))) {
		json_decref(tags);
		return rc;
	}
	store_txn_t *txn = store_batch_txn(b);
	json_t *rec = NULL;
	rc = get_activity(txn, name, &rec);
	if (rc == SL_OK) {
		// idempotent by name: the first creation stands, other tags are ignored (as AWS)
		json_decref(tags);
		int64_t created = rec_created(rec);
		json_decref(rec);
		srv_reply_json(req,
		               json_pack("{s:s,s:o}", "activityArn", arn, "creationDate",
		                         srv_json_time(created)));
		return SL_OK;
	}
	if (rc != SL_ERR_NOT_FOUND) {
		json_decref(tags);
		return rc;
	}
	struct store_key all;
	key_of(&all, NULL);
	size_t count = 0;
	if ((rc = store_count_prefix(txn, STORE_DB_ACTIVITIES, all.buf, all.len, &count))) {
		json_decref(tags);
		return rc;
	}
	if (count >= ACTIVITY_LIMIT) {
		json_decref(tags);
		return sl_error_set(err, SL_ERR_ACTIVITY_LIMIT,
		                    "Activity Limit Exceeded: at most %d activities",
		                    ACTIVITY_LIMIT);
	}
	int64_t now = sl_clock_now_ms();
	rec = json_pack("{s:s,s:I,s:o}", "name", name, "created", (json_int_t)now, "tags",
	                tags ? tags : json_array());
	char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	json_decref(rec);
	if (!text)
		return SL_ERR_NOMEM;
	struct store_key k;
	key_of(&k, name);
	rc = store_put(txn, STORE_DB_ACTIVITIES, k.buf, k.len, text, strlen(text));
	sl_free(text);
	if (rc)
		return rc;
	srv_reply_json(
	        req,
	        json_pack("{s:s,s:o}", "activityArn", arn, "creationDate", srv_json_time(now)));
	return SL_OK;
}

static sl_err
op_describe(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *arn;
	char name[NAME_MAX_LEN + 1];
	sl_err rc = srv_sfn_str_field(body, "activityArn", true, &arn, err);
	if (rc || (rc = parse_activity_arn(arn, name, err)))
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	json_t *rec = NULL;
	rc = get_activity(txn, name, &rec);
	store_read_end(txn);
	if (rc == SL_ERR_NOT_FOUND)
		return sl_error_set(err, SL_ERR_ACTIVITY_NOT_FOUND, "Activity Does Not Exist: '%s'",
		                    arn);
	if (rc)
		return rc;
	char canon[ARN_MAX_LEN + 64];
	activity_arn(canon, sizeof canon, name);
	json_t *out = json_pack("{s:s,s:s,s:o}", "activityArn", canon, "name", name, "creationDate",
	                        srv_json_time(rec_created(rec)));
	json_decref(rec);
	if (!out)
		return SL_ERR_NOMEM;
	srv_reply_json(req, out);
	return SL_OK;
}

static sl_err
op_delete(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *arn;
	char name[NAME_MAX_LEN + 1];
	sl_err rc = srv_sfn_str_field(body, "activityArn", true, &arn, err);
	if (!rc)
		rc = parse_activity_arn(arn, name, err);
	if (rc == SL_ERR_ACTIVITY_NOT_FOUND) {
		// another region or account: nothing here to delete, and AWS answers {}
		sl_error_clear(err);
		srv_reply_json(req, NULL);
		return SL_OK;
	}
	if (rc)
		return rc;
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	// deleting an activity that is not there succeeds, as in AWS
	struct store_key k;
	key_of(&k, name);
	if ((rc = store_del(store_batch_txn(b), STORE_DB_ACTIVITIES, k.buf, k.len)))
		return rc;
	srv_reply_json(req, NULL);
	return SL_OK;
}

static int
hex_digit(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* The token is the hex of the last name answered; the next page starts after it. */
static sl_err
decode_token(const char *token, char after[NAME_MAX_LEN + 1], struct sl_error *err)
{
	size_t n = strlen(token);
	bool ok = n > 0 && n % 2 == 0 && n / 2 <= NAME_MAX_LEN;
	for (size_t i = 0; ok && i < n / 2; i++) {
		int hi = hex_digit(token[2 * i]), lo = hex_digit(token[2 * i + 1]);
		ok = hi >= 0 && lo >= 0 && (hi || lo);
		after[i] = (char)(hi * 16 + lo);
	}
	if (!ok)
		return sl_error_set(err, SL_ERR_INVALID_TOKEN, "Invalid Token: '%.100s'", token);
	after[n / 2] = '\0';
	return SL_OK;
}

static sl_err
op_list(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	size_t max;
	const char *token;
	sl_err rc;
	if ((rc = srv_sfn_max_results(body, LIST_DEFAULT, &max, err))
	    || (rc = srv_sfn_str_field(body, "nextToken", false, &token, err)))
		return rc;
	char after[NAME_MAX_LEN + 1] = "";
	if (token && (rc = decode_token(token, after, err)))
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	json_t *list = json_array();
	store_cursor_t *c = NULL;
	struct store_key k;
	key_of(&k, after[0] ? after : NULL);
	struct store_key prefix;
	key_of(&prefix, NULL);
	if (!list) {
		rc = SL_ERR_NOMEM;
		goto out;
	}
	// a seek drops the cursor's prefix: resume at the token's key, stop at the prefix's end
	if ((rc = store_cursor_open(txn, STORE_DB_ACTIVITIES, &c))
	    || (rc = store_cursor_seek(c, k.buf, k.len)))
		goto out;
	struct store_val kv, vv;
	char last[NAME_MAX_LEN + 1] = "";
	bool more = false;
	while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
		if (kv.len < prefix.len || memcmp(kv.data, prefix.buf, prefix.len) != 0) {
			rc = SL_ERR_NOT_FOUND;
			break;
		}
		json_t *rec = json_loadb(vv.data, vv.len, 0, NULL);
		const char *nm = json_string_value(json_object_get(rec, "name"));
		// the seek lands on the token's own name when it still exists: skip it
		if (!nm || (after[0] && strcmp(nm, after) <= 0)) {
			json_decref(rec);
			continue;
		}
		if (json_array_size(list) == max) {
			json_decref(rec);
			more = true;
			break;
		}
		char arn[ARN_MAX_LEN + 64];
		activity_arn(arn, sizeof arn, nm);
		json_array_append_new(list,
		                      json_pack("{s:s,s:s,s:o}", "activityArn", arn, "name", nm,
		                                "creationDate", srv_json_time(rec_created(rec))));
		snprintf(last, sizeof last, "%s", nm);
		json_decref(rec);
	}
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
out:
	store_cursor_close(c);
	store_read_end(txn);
	if (rc) {
		json_decref(list);
		return rc;
	}
	json_t *out = json_pack("{s:o}", "activities", list);
	if (out && more) {
		char hex[2 * NAME_MAX_LEN + 1];
		sl_hex(last, strlen(last), hex);
		json_object_set_new(out, "nextToken", json_string(hex));
	}
	if (!out)
		return SL_ERR_NOMEM;
	srv_reply_json(req, out);
	return SL_OK;
}

/* ---- task answers --------------------------------------------------------------------------- */

/* A token of the form the stepper hands out (STEP_TOKEN_LEN lower-case hex digits); other
 * strings cannot name a task: InvalidToken, before any store access. */
static sl_err
check_token(const char *token, struct sl_error *err)
{
	size_t n = strlen(token);
	if (n == 0)
		return too_short(err, "taskToken");
	if (n > TOKEN_MAX_LEN)
		return too_long(err, "taskToken", TOKEN_MAX_LEN);
	bool ok = n == STEP_TOKEN_LEN;
	for (size_t i = 0; ok && i < n; i++)
		ok = hex_digit(token[i]) >= 0;
	if (!ok)
		return sl_error_set(err, SL_ERR_INVALID_TOKEN, "Invalid Token: '%.100s%s'", token,
		                    n > 100 ? "..." : "");
	return SL_OK;
}

/* The stepper's answer for a token it no longer waits on: TaskTimedOut when a worker of this
 * server held the task's lease and the task ended without its answer (the dispatcher
 * remembers), else TaskDoesNotExist (unknown, answered, or a callback task that timed out:
 * its token is gone like a finished one). */
static sl_err
task_error(srv_req_t *req, sl_err rc, const char *token, struct sl_error *err)
{
	if (rc != SL_ERR_TASK_NOT_FOUND && rc != SL_ERR_EXEC_NOT_FOUND)
		return rc;
	sl_error_clear(err);
	if (srv_dispatch_gone_code(srv_req_server(req), token) == SL_ERR_TASK_TIMED_OUT)
		return sl_error_set(err, SL_ERR_TASK_TIMED_OUT, "Task Timed Out: '%s'", token);
	return sl_error_set(err, SL_ERR_TASK_NOT_FOUND, "Task Does Not Exist: '%s'", token);
}

struct forget {
	srv_t *srv;
	char token[STEP_TOKEN_LEN + 1];
};

static void
forget_committed(void *arg, sl_err status)
{
	struct forget *f = arg;
	if (status == SL_OK)
		srv_dispatch_forget(f->srv, f->token);
	sl_free(f);
}

/* Once the answer is durable the dispatcher drops the task's queue entry and lease; a
 * failed commit leaves the task waiting and still queued. */
static sl_err
forget_after_commit(srv_req_t *req, store_batch_t *b, const char *token)
{
	struct forget *f = SL_NEW(struct forget);
	if (!f)
		return SL_ERR_NOMEM;
	f->srv = srv_req_server(req);
	snprintf(f->token, sizeof f->token, "%s", token);
	sl_err rc = store_batch_on_commit(b, forget_committed, f);
	if (rc)
		sl_free(f);
	return rc;
}

static sl_err
token_field(json_t *body, const char **token, struct sl_error *err)
{
	sl_err rc = srv_sfn_str_field(body, "taskToken", true, token, err);
	return rc ? rc : check_token(*token, err);
}

static sl_err
op_task_success(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	srv_engine_t *e = ctx;
	const char *token, *text;
	sl_err rc;
	if ((rc = token_field(body, &token, err))
	    || (rc = srv_sfn_str_field(body, "output", true, &text, err)))
		return rc;
	size_t n = strlen(text);
	if (n > STEP_DEFAULT_PAYLOAD_LIMIT)
		return sl_error_set(
		        err, SL_ERR_INVALID_OUTPUT,
		        "Invalid Output: the output is %zu bytes, more than the %d bytes "
		        "a task may return",
		        n, STEP_DEFAULT_PAYLOAD_LIMIT);
	json_error_t je;
	json_t *output = json_loadb(text, n, JSON_DECODE_ANY, &je);
	if (!output)
		return sl_error_set(err, SL_ERR_INVALID_OUTPUT,
		                    "Invalid Output: not JSON text (%s at character %d)", je.text,
		                    je.position);
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)) == SL_OK)
		rc = srv_engine_task_succeed(srv_req_server(req), b, token, output, err);
	json_decref(output);
	if (rc == SL_OK)
		rc = forget_after_commit(req, b, token);
	if (rc)
		return task_error(req, rc, token, err);
	srv_reply_json(req, NULL);
	srv_engine_kick(e);
	return SL_OK;
}

static sl_err
op_task_failure(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	srv_engine_t *e = ctx;
	const char *token, *error, *cause;
	sl_err rc;
	if ((rc = token_field(body, &token, err))
	    || (rc = srv_sfn_str_field(body, "error", false, &error, err))
	    || (rc = srv_sfn_str_field(body, "cause", false, &cause, err)))
		return rc;
	if (error && strlen(error) > ERROR_MAX_LEN)
		return too_long(err, "error", ERROR_MAX_LEN);
	if (cause && strlen(cause) > CAUSE_MAX_LEN)
		return too_long(err, "cause", CAUSE_MAX_LEN);
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)) == SL_OK)
		rc = srv_engine_task_fail(srv_req_server(req), b, token, error, cause, err);
	if (rc == SL_OK)
		rc = forget_after_commit(req, b, token);
	if (rc)
		return task_error(req, rc, token, err);
	srv_reply_json(req, NULL);
	srv_engine_kick(e);
	return SL_OK;
}

static sl_err
op_task_heartbeat(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *token;
	sl_err rc = token_field(body, &token, err);
	if (rc)
		return rc;
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)) == SL_OK)
		rc = srv_engine_task_heartbeat(srv_req_server(req), b, token, err);
	if (rc)
		return task_error(req, rc, token, err);
	srv_reply_json(req, NULL);
	return SL_OK;
}

sl_err
srv_api_activities_register(srv_t *s)
{
	srv_engine_t *e = srv_engine_of(s);
	if (!e)
		return SL_ERR_INTERNAL; // cmd_serve creates the engine before registering
	static const struct {
		const char *op;
		srv_op_fn fn;
		bool engine;
	} ops[] = {
		{ "AWSStepFunctions.CreateActivity", op_create, false },
		{ "AWSStepFunctions.DescribeActivity", op_describe, false },
		{ "AWSStepFunctions.ListActivities", op_list, false },
		{ "AWSStepFunctions.DeleteActivity", op_delete, false },
		{ "AWSStepFunctions.SendTaskSuccess", op_task_success, true },
		{ "AWSStepFunctions.SendTaskFailure", op_task_failure, true },
		{ "AWSStepFunctions.SendTaskHeartbeat", op_task_heartbeat, true },
	};
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
		sl_err rc = srv_register_op(s, ops[i].op, ops[i].fn, ops[i].engine ? e : NULL);
		if (rc)
			return rc;
	}
	return SL_OK;
}
