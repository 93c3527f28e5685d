/*
 * step_read.c - reads for the API: DescribeExecution, GetExecutionHistory (paged),
 * ListExecutions. They use any transaction (a short read transaction is the norm).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "stepper/step_int.h"

sl_err
step_describe(step_engine_t *eng, store_txn_t *txn, const char *arn, json_t **out,
              struct sl_error *err)
{
	struct step_ctx c = { .eng = eng, .txn = txn, .err = err, .inline_frame = -1 };
	sl_err e = step_exec_load(&c, arn);
	if (e != SL_OK)
		return e;
	json_t *x = c.exec;
	char start[32], stop[32];
	sl_clock_format_rfc3339(step_jint(x, "startMs", 0), start);
	json_t *o = json_pack("{s:O, s:O, s:O, s:O, s:s}", "executionArn",
	                      json_object_get(x, "executionArn"), "stateMachineArn",
	                      json_object_get(x, "stateMachineArn"), "name",
	                      json_object_get(x, "name"), "status", json_object_get(x, "status"),
	                      "startDate", start);
	if (!o) {
		step_ctx_done(&c);
		return SL_ERR_NOMEM;
	}
	char *in = step_dumps(step_exec_input(&c));
	if (in)
		json_object_set_new(o, "input", json_string(in));
	sl_free(in);
	if (json_object_get(x, "stopMs")) {
		sl_clock_format_rfc3339(step_jint(x, "stopMs", 0), stop);
		json_object_set_new(o, "stopDate", json_string(stop));
	}
	if (json_object_get(x, "output")) {
		char *s = step_dumps(json_object_get(x, "output"));
		if (s)
			json_object_set_new(o, "output", json_string(s));
		sl_free(s);
	}
	if (step_jstr(x, "error"))
		json_object_set(o, "error", json_object_get(x, "error"));
	if (step_jstr(x, "cause"))
		json_object_set(o, "cause", json_object_get(x, "cause"));
	// a distributed Map's child names the map run that started it
	if (step_jstr(json_object_get(x, "mapRun"), "m"))
		json_object_set(o, "mapRunArn", json_object_get(json_object_get(x, "mapRun"), "m"));
	step_ctx_done(&c);
	*out = o;
	return SL_OK;
}

/* Drops the payloads of an event (includeExecutionData = false). */
static void
strip_data(json_t *ev)
{
	const char *k;
	json_t *d;
	json_object_foreach(ev, k, d)
	{
		if (!json_is_object(d))
			continue;
		json_object_del(d, "input");
		json_object_del(d, "output");
		json_object_del(d, "inputDetails");
		json_object_del(d, "outputDetails");
		json_object_del(d, "parameters");
	}
}

/* Tokens are "h" + the event id to continue from: opaque to clients, checked here. */
static bool
parse_token(const char *tok, char tag, uint64_t *out)
{
	if (!tok || tok[0] != tag || !tok[1])
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(tok + 1, &end, 10);
	if (*end || errno || v == 0)
		return false;
	*out = v;
	return true;
}

sl_err
step_history_page(step_engine_t *eng, store_txn_t *txn, const char *arn,
                  const struct step_history_query *q, json_t **out, char **next_token,
                  struct sl_error *err)
{
	struct step_ctx c = { .eng = eng, .txn = txn, .err = err, .inline_frame = -1 };
	*out = NULL;
	if (next_token)
		*next_token = NULL;
	sl_err e = step_exec_load(&c, arn);
	if (e != SL_OK)
		return e;
	int64_t last = step_jint(c.exec, "nextEvent", 1) - 1;
	step_ctx_done(&c);
	size_t max = q && q->max_results ? q->max_results : 100;
	if (max > 1000)
		return sl_error_set(
		        err, SL_ERR_SFN_VALIDATION,
		        "1 validation error detected: Value '%zu' at 'maxResults' failed "
		        "to satisfy constraint: Member must have value less than or "
		        "equal to 1000",
		        max);
	bool reverse = q && q->reverse;
	uint64_t from = reverse ? (uint64_t)last : 1;
	if (q && q->next_token && !parse_token(q->next_token, 'h', &from))
		return sl_error_set(err, SL_ERR_INVALID_TOKEN, "Invalid Token: '%s'",
		                    q->next_token);
	json_t *arr = json_array();
	if (!arr)
		return SL_ERR_NOMEM;
	uint64_t id = from;
	for (; id >= 1 && id <= (uint64_t)last && json_array_size(arr) < max;
	     id = reverse ? id - 1 : id + 1) {
		struct store_key k;
		store_key_init(&k);
		store_key_str(&k, arn);
		store_key_u64(&k, id);
		json_t *ev = NULL;
		e = step_get_json(txn, STORE_DB_HISTORY, &k, 'E', &ev);
		if (e != SL_OK) {
			json_decref(arr);
			return sl_error_set(err, e, "history event %llu of '%s' is unreadable",
			                    (unsigned long long)id, arn);
		}
		if (q && q->include_data_set && !q->include_data)
			strip_data(ev);
		step_event_to_aws(ev);
		json_array_append_new(arr, ev);
	}
	if (next_token && id >= 1 && id <= (uint64_t)last) {
		*next_token = sl_asprintf("h%llu", (unsigned long long)id);
		if (!*next_token) {
			json_decref(arr);
			return SL_ERR_NOMEM;
		}
	}
	*out = arr;
	return SL_OK;
}

sl_err
step_history(step_engine_t *eng, store_txn_t *txn, const char *arn, json_t **out,
             struct sl_error *err)
{
	json_t *all = json_array();
	if (!all)
		return SL_ERR_NOMEM;
	struct step_history_query q = { .max_results = 1000 };
	char *tok = NULL;
	for (;;) {
		json_t *page = NULL;
		char *next = NULL;
		q.next_token = tok;
		sl_err e = step_history_page(eng, txn, arn, &q, &page, &next, err);
		sl_free(tok);
		if (e != SL_OK) {
			json_decref(all);
			return e;
		}
		json_array_extend(all, page);
		json_decref(page);
		if (!next)
			break;
		tok = next;
	}
	*out = all;
	return SL_OK;
}

/* One ListExecutions item from an execution record. */
bool
step_page_token_decode(const char *token, char tag, const struct store_key *prefix,
                       unsigned char *resume, size_t *rlen)
{
	size_t n = strlen(token);
	bool ok = token[0] == tag && n % 2 == 1 && (n - 1) / 2 <= STORE_MAX_KEY;
	*rlen = 0;
	for (size_t i = 1; ok && i < n; i += 2) {
		unsigned v;
		ok = sscanf(token + i, "%2x", &v) == 1;
		resume[(*rlen)++] = (unsigned char)v;
	}
	return ok && *rlen >= prefix->len && memcmp(resume, prefix->buf, prefix->len) == 0;
}

char *
step_page_token_encode(char tag, const struct store_val *k)
{
	char *t = sl_malloc(k->len * 2 + 2);
	if (t) {
		t[0] = tag;
		sl_hex(k->data, k->len, t + 1);
	}
	return t;
}

static json_t *
list_item(json_t *x)
{
	char start[32];
	sl_clock_format_rfc3339(step_jint(x, "startMs", 0), start);
	json_t *o = json_pack("{s:O, s:O, s:O, s:O, s:s}", "executionArn",
	                      json_object_get(x, "executionArn"), "stateMachineArn",
	                      json_object_get(x, "stateMachineArn"), "name",
	                      json_object_get(x, "name"), "status", json_object_get(x, "status"),
	                      "startDate", start);
	if (o && json_object_get(x, "stopMs")) {
		char stop[32];
		sl_clock_format_rfc3339(step_jint(x, "stopMs", 0), stop);
		json_object_set_new(o, "stopDate", json_string(stop));
	}
	// a map run's child: how many items it processed (a batch's size, else one)
	if (o && json_object_get(x, "mapRun"))
		json_object_set_new(o, "itemCount",
		                    json_integer(step_jint(json_object_get(x, "mapRun"), "k", 1)));
	return o;
}

sl_err
step_list_executions(step_engine_t *eng, store_txn_t *txn, const struct step_list_query *q,
                     json_t **out, char **next_token, struct sl_error *err)
{
	*out = NULL;
	if (next_token)
		*next_token = NULL;
	if (!q || !q->machine)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "a state machine is required");
	size_t max = q->max_results ? q->max_results : 100;
	if (max > 1000)
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "maxResults must be at most 1000, got %zu", max);
	struct store_key pk;
	store_key_init(&pk);
	store_key_str(&pk, q->machine);
	// resume key: the prefix, then start ms and ARN of the next item (hex-encoded)
	unsigned char resume[STORE_MAX_KEY];
	size_t rlen = 0;
	if (q->next_token && !step_page_token_decode(q->next_token, 'x', &pk, resume, &rlen))
		return sl_error_set(err, SL_ERR_INVALID_TOKEN, "Invalid Token: '%s'",
		                    q->next_token);
	store_cursor_t *cur = NULL;
	sl_err e = store_cursor_open(txn, STORE_DB_EXEC_INDEX, &cur);
	if (e != SL_OK)
		return e;
	json_t *arr = json_array();
	if (!arr) {
		store_cursor_close(cur);
		return SL_ERR_NOMEM;
	}
	// newest first, as AWS lists them
	e = rlen ? store_cursor_seek(cur, resume, rlen)
	         : store_cursor_seek_last_prefix(cur, pk.buf, pk.len);
	struct store_val k, v;
	while (e == SL_OK && (e = store_cursor_prev(cur, &k, &v)) == SL_OK) {
		if (k.len < pk.len || memcmp(k.data, pk.buf, pk.len) != 0) {
			e = SL_ERR_NOT_FOUND;
			break;
		}
		if (json_array_size(arr) == max) {
			if (next_token && !(*next_token = step_page_token_encode('x', &k))) {
				e = SL_ERR_NOMEM;
				break;
			}
			e = SL_ERR_NOT_FOUND;
			break;
		}
		// the ARN is the last component: after the machine and the 8-byte start time
		char buf[STEP_ARN_MAX];
		if (!step_index_arn(&k, pk.len, buf))
			continue;
		struct step_ctx c = { .eng = eng, .txn = txn, .inline_frame = -1 };
		if (step_exec_load(&c, buf) != SL_OK) {
			step_ctx_done(&c);
			continue;
		}
		const char *status = step_jstr(c.exec, "status");
		if (!q->status || (status && strcmp(q->status, status) == 0)) {
			json_t *it = list_item(c.exec);
			if (!it || json_array_append_new(arr, it))
				e = SL_ERR_NOMEM;
		}
		step_ctx_done(&c);
	}
	store_cursor_close(cur);
	if (e != SL_ERR_NOT_FOUND) {
		json_decref(arr);
		if (next_token) {
			sl_free(*next_token);
			*next_token = NULL;
		}
		return sl_error_set(err, e, "listing executions of '%s' failed", q->machine);
	}
	*out = arr;
	return SL_OK;
}

sl_err
step_execution_machine(step_engine_t *eng, store_txn_t *txn, const char *arn, char *name_out,
                       size_t name_cap, uint32_t *revision, struct sl_error *err)
{
	struct store_key k;
	step_key_exec(&k, arn);
	json_t *ex = NULL;
	(void)eng;
	sl_err e = step_get_json(txn, STORE_DB_EXECUTIONS, &k, 'X', &ex);
	if (e == SL_ERR_NOT_FOUND)
		return sl_error_set(err, SL_ERR_EXEC_NOT_FOUND, "Execution Does Not Exist: '%s'",
		                    arn);
	if (e != SL_OK)
		return sl_error_set(err, e, "execution record of '%s' is unreadable", arn);
	const char *m = step_jstr(ex, "machine");
	json_int_t rv = json_integer_value(json_object_get(ex, "revision"));
	snprintf(name_out, name_cap, "%s", m ? m : "");
	*revision = rv > 0 && rv <= UINT32_MAX ? (uint32_t)rv : 0;
	json_decref(ex);
	return SL_OK;
}
