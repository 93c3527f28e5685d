#include <criterion/criterion.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "workers/wk_proto.h"

static struct wk_msg
decode_ok(const char *text)
{
	struct wk_msg m;
	struct sl_error e;
	sl_err rc = wk_msg_decode(text, strlen(text), NULL, &m, &e);
	cr_assert_eq(rc, SL_OK, "decode %s: %s", text, e.message);
	return m;
}

static void
decode_fails(const char *text, sl_err want, const char *msg_part)
{
	struct wk_msg m;
	struct sl_error e = { 0 };
	sl_err rc = wk_msg_decode(text, strlen(text), NULL, &m, &e);
	cr_assert_eq(rc, want, "decode %s: got %s (%s)", text, sl_err_name(rc), e.message);
	cr_assert(strstr(e.message, msg_part) != NULL, "message '%s' lacks '%s'", e.message,
	          msg_part);
	cr_assert_null(m.root, "a failed decode leaves the message cleared");
}

Test(wk_proto, poll_round_trip)
{
	const char *acts[] = { "extract", "arn:aws:states:us-east-1:000000000000:activity:load" };
	char *buf;
	size_t len;
	cr_assert_eq(wk_encode_poll("s3cret", "p-1", "w1", acts, 2, 4, 20000, &buf, &len), SL_OK);
	struct wk_msg m = decode_ok(buf);
	cr_assert_eq(m.type, WK_MSG_POLL);
	cr_assert_str_eq(m.auth, "s3cret");
	cr_assert_str_eq(m.poll_id, "p-1");
	cr_assert_str_eq(m.worker, "w1");
	cr_assert_eq(m.n_activities, 2);
	cr_assert_str_eq(m.activities[1], acts[1]);
	cr_assert_eq(m.max_tasks, 4);
	cr_assert_eq(m.wait_ms, 20000);
	wk_msg_clear(&m);
	sl_free(buf);
}

Test(wk_proto, tasks_round_trip_keeps_input_json)
{
	json_t *in = json_pack("{s:s,s:[i,i]}", "file", "a.jsonl", "n", 1, 2);
	struct wk_task t[2]
	        = { { "tok1", "extract", in, 300, 30 }, { "tok2", "load", NULL, 0, 0 } };
	char *buf;
	cr_assert_eq(wk_encode_tasks("p-9", t, 2, &buf, NULL), SL_OK);
	struct wk_msg m = decode_ok(buf);
	cr_assert_eq(m.type, WK_MSG_TASKS);
	cr_assert_eq(m.n_tasks, 2);
	cr_assert_str_eq(m.tasks[0].token, "tok1");
	cr_assert(json_equal(m.tasks[0].input, in));
	cr_assert_eq(m.tasks[0].timeout_s, 300);
	cr_assert_eq(m.tasks[0].heartbeat_s, 30);
	cr_assert(json_is_null(m.tasks[1].input));
	wk_msg_clear(&m);
	sl_free(buf);
	json_decref(in);
}

Test(wk_proto, empty_tasks_answer)
{
	char *buf;
	cr_assert_eq(wk_encode_tasks("p-2", NULL, 0, &buf, NULL), SL_OK);
	struct wk_msg m = decode_ok(buf);
	cr_assert_eq(m.n_tasks, 0);
	cr_assert_null(m.tasks);
	wk_msg_clear(&m);
	sl_free(buf);
}

Test(wk_proto, results_round_trip)
{
	char *buf;
	json_t *out = json_pack("{s:i}", "rows", 42);
	cr_assert_eq(wk_encode_success(NULL, "t", out, &buf, NULL), SL_OK);
	struct wk_msg m = decode_ok(buf);
	cr_assert_eq(m.type, WK_MSG_SUCCESS);
	cr_assert(json_equal(m.output, out));
	cr_assert_null(m.auth);
	wk_msg_clear(&m);
	sl_free(buf);
	json_decref(out);

	cr_assert_eq(wk_encode_failure("k", "t", "Etl.BadFile", "line 3: not JSON", &buf, NULL),
	             SL_OK);
	m = decode_ok(buf);
	cr_assert_eq(m.type, WK_MSG_FAILURE);
	cr_assert_str_eq(m.error, "Etl.BadFile");
	cr_assert_str_eq(m.cause, "line 3: not JSON");
	wk_msg_clear(&m);
	sl_free(buf);

	cr_assert_eq(wk_encode_heartbeat(NULL, "t", &buf, NULL), SL_OK);
	m = decode_ok(buf);
	cr_assert_eq(m.type, WK_MSG_HEARTBEAT);
	cr_assert_str_eq(m.token, "t");
	wk_msg_clear(&m);
	sl_free(buf);

	cr_assert_eq(wk_encode_error(WK_ERR_UNAUTHORIZED, "bad token", &buf, NULL), SL_OK);
	m = decode_ok(buf);
	cr_assert_eq(m.type, WK_MSG_ERROR);
	cr_assert_str_eq(m.error, "Unauthorized");
	cr_assert_str_eq(m.message, "bad token");
	wk_msg_clear(&m);
	sl_free(buf);

	cr_assert_eq(wk_encode_ok(&buf, NULL), SL_OK);
	m = decode_ok(buf);
	cr_assert_eq(m.type, WK_MSG_OK);
	wk_msg_clear(&m);
	sl_free(buf);
}

Test(wk_proto, malformed_frames_say_what_and_where)
{
	decode_fails("", SL_ERR_PARSE, "not JSON");
	decode_fails("{\"v\":1,", SL_ERR_PARSE, "not JSON");
	decode_fails("[1,2]", SL_ERR_PARSE, "expected a JSON object");
	decode_fails("{\"type\":\"poll\"}", SL_ERR_PARSE, "field 'v'");
	decode_fails("{\"v\":2,\"type\":\"poll\"}", SL_ERR_INVALID_ARG, "version 2");
	decode_fails("{\"v\":1}", SL_ERR_PARSE, "field 'type'");
	decode_fails("{\"v\":1,\"type\":\"launch\"}", SL_ERR_UNKNOWN_OPERATION, "'launch'");
	decode_fails("{\"v\":1,\"type\":\"poll\",\"id\":\"p\"}", SL_ERR_PARSE, "'activities'");
	decode_fails("{\"v\":1,\"type\":\"poll\",\"id\":\"p\",\"activities\":[]}", SL_ERR_PARSE,
	             "non-empty");
	decode_fails("{\"v\":1,\"type\":\"poll\",\"id\":\"p\",\"activities\":[3]}", SL_ERR_PARSE,
	             "activities[0]");
	decode_fails("{\"v\":1,\"type\":\"poll\",\"id\":\"p\",\"activities\":[\"a\"],\"max\":0}",
	             SL_ERR_PARSE, "at least 1");
	decode_fails("{\"v\":1,\"type\":\"poll\",\"id\":\"p\",\"activities\":[\"a\"],"
	             "\"wait_ms\":600000}",
	             SL_ERR_PARSE, "'wait_ms'");
	decode_fails("{\"v\":1,\"type\":\"success\",\"token\":\"t\"}", SL_ERR_PARSE, "'output'");
	decode_fails("{\"v\":1,\"type\":\"success\",\"token\":5,\"output\":1}", SL_ERR_PARSE,
	             "'token'");
	decode_fails("{\"v\":1,\"type\":\"heartbeat\",\"token\":\"\"}", SL_ERR_PARSE, "empty");
	decode_fails("{\"v\":1,\"type\":\"poll\",\"v\":1}", SL_ERR_PARSE, "not JSON");
	decode_fails("{\"v\":1,\"type\":\"tasks\",\"id\":\"p\",\"tasks\":[{\"token\":\"t\"}]}",
	             SL_ERR_PARSE, "'activity'");
}

Test(wk_proto, limits_are_enforced)
{
	struct wk_limits l = { .max_payload = 16, .max_activities = 2, .max_frame = 200 };
	struct wk_msg m;
	struct sl_error e;
	const char *big = "{\"v\":1,\"type\":\"success\",\"token\":\"t\",\"output\":\"0123456789"
	                  "0123456789\"}";
	cr_assert_eq(wk_msg_decode(big, strlen(big), &l, &m, &e), SL_ERR_TOO_LARGE);
	const char *acts
	        = "{\"v\":1,\"type\":\"poll\",\"id\":\"p\",\"activities\":[\"a\",\"b\",\"c\"]}";
	cr_assert_eq(wk_msg_decode(acts, strlen(acts), &l, &m, &e), SL_ERR_PARSE);
	cr_assert(strstr(e.message, "more than 2") != NULL);
	char frame[300];
	memset(frame, ' ', sizeof frame);
	cr_assert_eq(wk_msg_decode(frame, sizeof frame, &l, &m, &e), SL_ERR_TOO_LARGE);
}

Test(wk_proto, oom_in_decode_and_encode_is_clean)
{
	sl_alloc_init();
	const char *text = "{\"v\":1,\"type\":\"poll\",\"id\":\"p\",\"activities\":[\"a\",\"b\"]}";
	for (long n = 0;; n++) {
		struct wk_msg m;
		sl_alloc_fail_after(n);
		sl_err rc = wk_msg_decode(text, strlen(text), NULL, &m, NULL);
		sl_alloc_fail_after(-1);
		if (rc == SL_OK) {
			wk_msg_clear(&m);
			cr_assert_gt(n, 0);
			break;
		}
		cr_assert(rc == SL_ERR_PARSE || rc == SL_ERR_NOMEM, "n=%ld rc=%s", n,
		          sl_err_name(rc));
		cr_assert_lt(n, 1000);
	}
	const char *acts[] = { "a" };
	for (long n = 0;; n++) {
		char *buf = NULL;
		sl_alloc_fail_after(n);
		sl_err rc = wk_encode_poll(NULL, "p", "w", acts, 1, 1, 0, &buf, NULL);
		sl_alloc_fail_after(-1);
		if (rc == SL_OK) {
			sl_free(buf);
			break;
		}
		cr_assert_eq(rc, SL_ERR_NOMEM);
		cr_assert_lt(n, 1000);
	}
}
