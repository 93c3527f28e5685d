/*
 * test_dispatch.c - the handler contract of srv.h with real handlers, an in-process server
 * on loopback and a real store: answers wait for the commit (a failed commit turns "ok"
 * into an error), a failing handler's writes are rolled back, deferred answers and their
 * timeouts, a handler that forgets to answer.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "harness.h"
#include "server/srv.h"
#include "store/store_testing.h"

static struct {
	srv_t *srv;
	pthread_t loop;
	char dir[64];
	int port;
	sl_err run_rc;
} t;

/* --- handlers -------------------------------------------------------------------------- */

static sl_err
put_thing(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	const char *key = json_string_value(json_object_get(body, "key"));
	const char *val = json_string_value(json_object_get(body, "value"));
	if (!key || !val)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "key and value are required");
	if (ctx) /* the failing variant: this batch's fsync will fail */
		store_test_fail_next_commit(srv_store(srv_req_server(req)));
	store_batch_t *b;
	sl_err rc = srv_req_batch(req, &b);
	if (rc != SL_OK)
		return rc;
	rc = store_put(store_batch_txn(b), STORE_DB_META, key, strlen(key), val, strlen(val));
	if (rc != SL_OK)
		return rc;
	if (json_is_true(json_object_get(body, "fail")))
		return sl_error_set(err, SL_ERR_INVALID_ARG, "refused after writing %s", key);
	srv_reply_json(req, json_pack("{s:b}", "ok", 1));
	return SL_OK;
}

static sl_err
get_thing(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *key = json_string_value(json_object_get(body, "key"));
	if (!key)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "key is required");
	store_txn_t *txn;
	sl_err rc = store_read_begin(srv_store(srv_req_server(req)), &txn);
	if (rc != SL_OK)
		return rc;
	struct store_val v;
	rc = store_get(txn, STORE_DB_META, key, strlen(key), &v);
	json_t *out
	        = rc == SL_OK ? json_pack("{s:s%}", "value", (const char *)v.data, v.len) : NULL;
	store_read_end(txn);
	if (rc == SL_ERR_NOT_FOUND)
		return sl_error_set(err, SL_ERR_NOT_FOUND, "no thing %s", key);
	if (rc != SL_OK)
		return rc;
	srv_reply_json(req, out);
	return SL_OK;
}

static void
wait_expired(srv_req_t *req, void *arg)
{
	(void)arg;
	srv_reply_json(req, json_pack("{s:b}", "timedOut", 1));
}

static sl_err
wait_op(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)err;
	json_int_t ms = json_integer_value(json_object_get(body, "ms"));
	return srv_req_defer(req, (uint32_t)ms, ctx ? wait_expired : NULL, NULL);
}

static sl_err
no_answer(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)req;
	(void)body;
	(void)ctx;
	(void)err;
	return SL_OK;
}

/* --- fixture --------------------------------------------------------------------------- */

static void *
run_loop(void *arg)
{
	(void)arg;
	struct sl_error e;
	t.run_rc = srv_run(t.srv, &e);
	return NULL;
}

static void
setup(void)
{
	sl_alloc_init();
	sl_log_set_level(SL_LOG_WARN);
	memset(&t, 0, sizeof t);
	snprintf(t.dir, sizeof t.dir, "/tmp/sluice-disp-XXXXXX");
	cr_assert_not_null(mkdtemp(t.dir));
	struct srv_config cfg;
	cr_assert_eq(srv_config_init(&cfg), SL_OK);
	struct sl_error e;
	cr_assert_eq(srv_config_set(&cfg, "data", t.dir, "test", &e), SL_OK);
	cr_assert_eq(srv_config_set(&cfg, "http", "127.0.0.1:0", "test", &e), SL_OK);
	cr_assert_eq(srv_config_set(&cfg, "workers", "tcp://127.0.0.1:0", "test", &e), SL_OK);
	cr_assert_eq(srv_new(&cfg, &t.srv, &e), SL_OK, "%s", e.message);
	srv_config_clear(&cfg);
	static int fail = 1, timeout_fn = 1;
	cr_assert_eq(srv_register_op(t.srv, "AWSEvents.PutThing", put_thing, NULL), SL_OK);
	cr_assert_eq(srv_register_op(t.srv, "AWSEvents.PutThingBadDisk", put_thing, &fail), SL_OK);
	cr_assert_eq(srv_register_op(t.srv, "AWSEvents.GetThing", get_thing, NULL), SL_OK);
	cr_assert_eq(srv_register_op(t.srv, "AWSEvents.Wait", wait_op, &timeout_fn), SL_OK);
	cr_assert_eq(srv_register_op(t.srv, "AWSEvents.WaitBare", wait_op, NULL), SL_OK);
	cr_assert_eq(srv_register_op(t.srv, "AWSEvents.NoAnswer", no_answer, NULL), SL_OK);
	cr_assert_eq(srv_register_op(t.srv, "AWSEvents.GetThing", get_thing, NULL), SL_ERR_EXISTS);
	const char *addr = srv_http_addr(t.srv);
	t.port = atoi(strrchr(addr, ':') + 1);
	cr_assert_eq(pthread_create(&t.loop, NULL, run_loop, NULL), 0);
}

static void
stop_on_loop(void *arg)
{
	srv_stop(arg);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void
teardown(void)
{
	if (t.srv) {
		srv_bridge_post(srv_bridge(t.srv), stop_on_loop, t.srv);
		pthread_join(t.loop, NULL);
		srv_free(t.srv);
	}
	nftw(t.dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(srv_dispatch, .init = setup, .fini = teardown);

static json_t *
call(const char *op, const char *body, int want_status)
{
	char target[128];
	snprintf(target, sizeof target, "X-Amz-Target: AWSEvents.%s", op);
	const char *h[] = { target, "Content-Type: application/x-amz-json-1.1", NULL };
	struct h_response r;
	cr_assert(h_request(t.port, "POST", "/", h, body, strlen(body), &r), "%s: no answer", op);
	cr_assert_eq(r.status, want_status, "%s: %d %s", op, r.status, r.body);
	json_t *j = json_loads(r.body, 0, NULL);
	cr_assert(json_is_object(j), "%s: %s", op, r.body);
	h_response_free(&r);
	return j;
}

static const char *
str(json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

Test(srv_dispatch, write_then_read)
{
	json_t *j = call("PutThing", "{\"key\":\"a\",\"value\":\"1\"}", 200);
	cr_assert(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	j = call("GetThing", "{\"key\":\"a\"}", 200);
	cr_assert_str_eq(str(j, "value"), "1");
	json_decref(j);
	j = call("GetThing", "{\"key\":\"zz\"}", 400);
	cr_assert_str_eq(str(j, "__type"), "ResourceNotFoundException");
	cr_assert_str_eq(str(j, "message"), "no thing zz");
	json_decref(j);
	j = call("PutThing", "{\"key\":\"a\"}", 400);
	cr_assert_str_eq(str(j, "__type"), "ValidationException");
	json_decref(j);
}

Test(srv_dispatch, failed_commit_turns_the_answer_into_an_error)
{
	json_t *j = call("PutThingBadDisk", "{\"key\":\"b\",\"value\":\"2\"}", 500);
	cr_assert_str_eq(str(j, "__type"), "InternalFailure");
	json_decref(j);
	j = call("GetThing", "{\"key\":\"b\"}", 400);
	cr_assert_str_eq(str(j, "__type"), "ResourceNotFoundException");
	json_decref(j);
	/* the next batch commits normally */
	json_decref(call("PutThing", "{\"key\":\"b\",\"value\":\"3\"}", 200));
	j = call("GetThing", "{\"key\":\"b\"}", 200);
	cr_assert_str_eq(str(j, "value"), "3");
	json_decref(j);
}

Test(srv_dispatch, handler_error_rolls_back_its_writes)
{
	json_t *j = call("PutThing", "{\"key\":\"c\",\"value\":\"x\",\"fail\":true}", 400);
	cr_assert_str_eq(str(j, "__type"), "ValidationException");
	cr_assert_str_eq(str(j, "message"), "refused after writing c");
	json_decref(j);
	j = call("GetThing", "{\"key\":\"c\"}", 400);
	cr_assert_str_eq(str(j, "__type"), "ResourceNotFoundException");
	json_decref(j);
}

Test(srv_dispatch, deferred_answers_and_timeouts)
{
	json_t *j = call("Wait", "{\"ms\":50}", 200);
	cr_assert(json_is_true(json_object_get(j, "timedOut")));
	json_decref(j);
	j = call("WaitBare", "{\"ms\":50}", 408);
	cr_assert_str_eq(str(j, "__type"), "RequestTimeout");
	json_decref(j);
}

Test(srv_dispatch, handler_without_answer_is_an_internal_error)
{
	json_t *j = call("NoAnswer", "{}", 500);
	cr_assert_str_eq(str(j, "__type"), "InternalFailure");
	cr_assert(strstr(str(j, "message"), "AWSEvents.NoAnswer returned without an answer"));
	json_decref(j);
}

/* A long poll still waiting when the server stops is answered by its timeout function. */
static void *
waiter(void *arg)
{
	json_t **out = arg;
	*out = call("Wait", "{\"ms\":100000}", 200);
	return NULL;
}

Test(srv_dispatch, shutdown_answers_long_polls)
{
	json_t *ans = NULL;
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, waiter, &ans), 0);
	/* wait until the poll is in flight: a bounded check of the metrics, not a timing */
	for (int i = 0; i < 2000; i++) {
		struct h_response r;
		cr_assert(h_request(t.port, "GET", "/metrics", NULL, NULL, 0, &r));
		bool waiting = strstr(r.body, "sluice_http_inflight_requests 2") != NULL;
		h_response_free(&r);
		if (waiting)
			break;
		usleep(5000);
	}
	srv_bridge_post(srv_bridge(t.srv), stop_on_loop, t.srv);
	pthread_join(th, NULL);
	cr_assert_not_null(ans);
	cr_assert(json_is_true(json_object_get(ans, "timedOut")));
	json_decref(ans);
}

/* A client that hangs up during a long poll: the late answer goes nowhere, nothing breaks. */
Test(srv_dispatch, client_gone_during_long_poll)
{
	for (int i = 0; i < 5; i++) {
		int fd = h_connect(t.port);
		cr_assert(fd >= 0);
		const char *h[] = { "X-Amz-Target: AWSEvents.Wait", NULL };
		cr_assert(h_send(fd, "POST", "/", h, "{\"ms\":30}", 9));
		close(fd);
	}
	json_t *j = call("Wait", "{\"ms\":60}", 200);
	cr_assert(json_is_true(json_object_get(j, "timedOut")));
	json_decref(j);
	json_decref(call("PutThing", "{\"key\":\"d\",\"value\":\"4\"}", 200));
}
