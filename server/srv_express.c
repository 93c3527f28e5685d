/*
 * srv_express.c - EXPRESS executions (srv_engine.h): the second engine over the scratch
 * store, the durable start and end records, StartSyncExecution's deferred answer, AWS's
 * 5-minute limit, the scratch store's upkeep, and the re-run after a crash.
 */
#include <dirent.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "common/sl_log.h"
#include "server/srv_api.h"
#include "server/srv_engine_int.h"
#include "server/srv_exec_retention.h"
#include "server/srv_internal.h"

/* The scratch store is emptied when no express execution runs and this many ended. */
#define WIPE_AFTER 2048
/* Durable records of express executions, in STORE_DB_EXECUTIONS under tags no execution
 * ARN can start with: 'R' arn -> record (start, then end), 'P' arn -> still running. */
#define XTAG_REC  0x00785200u
#define XTAG_PEND 0x00785000u

/* ---- EXPRESS records ------------------------------------------------------------------ */

static void
xkey(struct store_key *k, uint32_t tag, const char *arn)
{
	store_key_init(k);
	store_key_u32(k, tag);
	store_key_str(k, arn);
}

static json_t *
xrecord(const struct xrun *r)
{
	json_t *rec = json_pack("{s:s,s:s,s:I,s:s,s:s,s:b,s:I,s:O,s:s}", "arn", r->xarn, "machine",
	                        r->machine, "revision", (json_int_t)r->revision, "name", r->name,
	                        "iname", r->iname, "sync", r->is_sync, "start",
	                        (json_int_t)r->start_ms, "input", r->input, "status", "RUNNING");
	// a workflow's .sync start: the parent's token, answered again by a run after a restart
	if (rec && r->ptoken[0]
	    && (json_object_set_new(rec, "parentToken", json_string(r->ptoken))
	        || json_object_set_new(rec, "parentMode", json_integer(r->pmode)))) {
		json_decref(rec);
		rec = NULL;
	}
	return rec;
}

/* A workflow's .sync/.sync:2 child ended: its parent's task is answered in the durable batch
 * b, as step_builtin_child_closed answers a durable child's parent. */
static void
answer_parent(srv_engine_t *x, store_batch_t *b, const struct xrun *r, enum step_status st,
              int64_t stop_ms, json_t *output, const char *error, const char *cause)
{
	char smarn[STEP_ARN_MAX];
	sl_arn_format(smarn, sizeof smarn, "states", "stateMachine", r->machine, NULL);
	json_t *d = step_child_result(r->xarn, smarn, r->name, st, r->start_ms, stop_ms, r->input,
	                              output, error, cause, r->pmode);
	struct sl_error err;
	sl_error_clear(&err);
	sl_err rc = SL_ERR_NOMEM;
	if (d && st == STEP_SUCCEEDED) {
		rc = srv_engine_task_succeed(x->srv, b, r->ptoken, d, &err);
	} else if (d) {
		char *text = json_dumps(d, JSON_COMPACT);
		if (text)
			rc = srv_engine_task_fail(x->srv, b, r->ptoken, "States.TaskFailed", text,
			                          &err);
		sl_free(text);
	}
	json_decref(d);
	// the parent may have ended meanwhile (stopped, timed out): nobody waits any more
	if (rc == SL_ERR_TASK_NOT_FOUND || rc == SL_ERR_EXEC_NOT_FOUND)
		return;
	if (rc != SL_OK)
		sl_errorf("engine", "the parent task of %s was not answered: %s", r->xarn,
		          err.code ? sl_error_text(&err) : sl_err_message(rc));
	else
		srv_engine_kick(x->root);
}

static sl_err
xput(store_txn_t *txn, const char *arn, json_t *rec)
{
	char *txt = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	if (!txt)
		return SL_ERR_NOMEM;
	struct store_key k;
	xkey(&k, XTAG_REC, arn);
	sl_err rc = store_put(txn, STORE_DB_EXECUTIONS, k.buf, k.len, txt, strlen(txt));
	sl_free(txt);
	return rc;
}

/* Writes the end of an express execution in txn: the record's status, and no longer
 * pending. rec is the start record (modified). */
static sl_err
xput_end(store_txn_t *txn, const char *arn, json_t *rec, enum step_status st, int64_t stop_ms,
         json_t *output, const char *error, const char *cause)
{
	json_object_set_new(rec, "status", json_string(step_status_name(st)));
	json_object_set_new(rec, "stop", json_integer(stop_ms));
	if (output)
		json_object_set(rec, "output", output);
	if (error)
		json_object_set_new(rec, "error", json_string(error));
	if (cause)
		json_object_set_new(rec, "cause", json_string(cause));
	sl_err rc = xput(txn, arn, rec);
	struct store_key k;
	xkey(&k, XTAG_PEND, arn);
	if (rc == SL_OK)
		rc = store_del(txn, STORE_DB_EXECUTIONS, k.buf, k.len);
	if (rc == SL_OK)
		rc = srv_express_closed_put(txn, arn, stop_ms); // the retention finds it by time
	return rc;
}

/* ---- retention (srv_exec_retention.c) ------------------------------------------------- */

sl_err
srv_express_closed_put(store_txn_t *txn, const char *xarn, int64_t stop_ms)
{
	struct store_key k;
	step_closed_key(&k, EXEC_RETENTION_XOWNER, stop_ms, xarn);
	return k.overflow ? SL_OK : store_put(txn, STORE_DB_CLOSED, k.buf, k.len, "", 0);
}

sl_err
srv_express_drop_record(store_txn_t *txn, const char *xarn)
{
	struct store_key k;
	xkey(&k, XTAG_REC, xarn);
	sl_err rc = store_del(txn, STORE_DB_EXECUTIONS, k.buf, k.len);
	xkey(&k, XTAG_PEND, xarn);
	return rc == SL_OK ? store_del(txn, STORE_DB_EXECUTIONS, k.buf, k.len) : rc;
}

#define XINDEX_MARKER "closed-index-express"

sl_err
srv_express_index_closed(store_txn_t *txn, size_t *indexed)
{
	*indexed = 0;
	struct store_val v, k;
	sl_err rc = store_get(txn, STORE_DB_META, XINDEX_MARKER, strlen(XINDEX_MARKER), &v);
	if (rc != SL_ERR_NOT_FOUND)
		return rc;
	struct store_key pk;
	store_key_init(&pk);
	store_key_u32(&pk, XTAG_REC);
	store_cursor_t *c = NULL;
	if ((rc = store_cursor_open(txn, STORE_DB_EXECUTIONS, &c)) != SL_OK)
		return rc;
	rc = store_cursor_seek_prefix(c, pk.buf, pk.len);
	while (rc == SL_OK && (rc = store_cursor_next(c, &k, &v)) == SL_OK) {
		json_t *rec = json_loadb(v.data, v.len, 0, NULL);
		const char *arn = json_string_value(json_object_get(rec, "arn"));
		json_t *stop = json_object_get(rec, "stop");
		if (arn && json_is_integer(stop)
		    && (rc = srv_express_closed_put(txn, arn, json_integer_value(stop))) == SL_OK)
			(*indexed)++;
		json_decref(rec);
	}
	store_cursor_close(c);
	if (rc == SL_ERR_NOT_FOUND)
		rc = store_put(txn, STORE_DB_META, XINDEX_MARKER, strlen(XINDEX_MARKER), "1", 1);
	return rc;
}

static struct xrun *
xfind(srv_engine_t *x, const char *arn)
{
	for (struct xrun *r = x->xr[srv_engine_hash(arn)]; r; r = r->hnext)
		if (strcmp(r->arn, arn) == 0)
			return r;
	return NULL;
}

static void
xunlink(srv_engine_t *x, struct xrun *r)
{
	for (struct xrun **p = &x->xr[srv_engine_hash(r->arn)]; *p; p = &(*p)->hnext)
		if (*p == r) {
			*p = r->hnext;
			x->n_xr--;
			return;
		}
}

static void
xfree(struct xrun *r)
{
	if (!r)
		return;
	json_decref(r->input);
	sl_free(r);
}

static struct xrun *
xnew(srv_engine_t *x, const char *arn, const char *xarn, const char *machine, uint32_t revision,
     const char *name, const char *iname, json_t *input, int64_t start_ms, bool is_sync)
{
	struct xrun *r = SL_NEW(struct xrun);
	if (!r)
		return NULL;
	snprintf(r->arn, sizeof r->arn, "%s", arn);
	snprintf(r->xarn, sizeof r->xarn, "%s", xarn);
	snprintf(r->machine, sizeof r->machine, "%s", machine);
	snprintf(r->name, sizeof r->name, "%s", name);
	snprintf(r->iname, sizeof r->iname, "%s", iname);
	r->revision = revision;
	r->start_ms = start_ms;
	r->input = input ? json_incref(input) : json_object();
	r->is_sync = is_sync;
	r->x = x;
	if (!r->input) {
		sl_free(r);
		return NULL;
	}
	return r;
}

static void
xlink(srv_engine_t *x, struct xrun *r)
{
	uint32_t h = srv_engine_hash(r->arn);
	r->hnext = x->xr[h];
	x->xr[h] = r;
	x->n_xr++;
}

/* StartSyncExecution's answer for an ended execution. */
static json_t *
sync_answer(const struct xrun *r, enum step_status st, int64_t stop_ms, json_t *output,
            const char *error, const char *cause)
{
	char smarn[STEP_ARN_MAX];
	sl_arn_format(smarn, sizeof smarn, "states", "stateMachine", r->machine, NULL);
	char *in = json_dumps(r->input, JSON_COMPACT | JSON_ENCODE_ANY);
	int64_t dur = stop_ms - r->start_ms;
	json_t *o = json_pack(
	        "{s:s,s:s,s:s,s:o,s:o,s:s,s:s,s:{s:b},s:{s:I,s:I}}", "executionArn", r->xarn,
	        "stateMachineArn", smarn, "name", r->name, "startDate", srv_json_time(r->start_ms),
	        "stopDate", srv_json_time(stop_ms), "status", step_status_name(st), "input",
	        in ? in : "{}", "inputDetails", "included", 1, "billingDetails",
	        "billedMemoryUsedInMB", (json_int_t)64, "billedDurationInMilliseconds",
	        (json_int_t)((dur < 100 ? 100 : (dur + 99) / 100 * 100)));
	sl_free(in);
	if (!o)
		return NULL;
	if (st == STEP_SUCCEEDED) {
		char *out
		        = json_dumps(output ? output : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
		json_object_set_new(o, "output", json_string(out ? out : "null"));
		json_object_set_new(o, "outputDetails", json_pack("{s:b}", "included", 1));
		sl_free(out);
	}
	if (error)
		json_object_set_new(o, "error", json_string(error));
	if (cause)
		json_object_set_new(o, "cause", json_string(cause));
	return o;
}

/* The execution r ended: its end goes in the durable batch (the sync request's, which
 * then answers from the commit). */
static void
express_ended(srv_engine_t *x, struct xrun *r, enum step_status st, json_t *output,
              const char *error, const char *cause)
{
	srv_t *s = x->srv;
	if (r->timed_out && st == STEP_ABORTED) {
		st = STEP_TIMED_OUT;
		error = "States.Timeout";
		cause = "the EXPRESS execution ran longer than 5 minutes";
	}
	int64_t stop = sl_clock_now_ms();
	store_batch_t *b = NULL;
	sl_err rc = r->sync ? srv_req_batch(r->sync, &b) : srv_batch_get(s, false, &b);
	json_t *rec = xrecord(r);
	if (rc == SL_OK)
		rc = rec
		        ? xput_end(store_batch_txn(b), r->xarn, rec, st, stop, output, error, cause)
		        : SL_ERR_NOMEM;
	json_decref(rec);
	if (rc != SL_OK)
		sl_errorf("engine",
		          "the end of %s was not recorded: %s (it may run again after "
		          "a restart)",
		          r->arn, sl_err_message(rc));
	else if (r->ptoken[0])
		answer_parent(x, b, r, st, stop, output, error, cause);
	if (r->sync) {
		json_t *a = sync_answer(r, st, stop, output, error, cause);
		if (a)
			srv_reply_json(r->sync, a);
		else
			srv_reply_error(r->sync, SL_ERR_NOMEM, "out of memory");
		r->sync = NULL;
	}
	x->xstats.ended++;
	x->ended_since_wipe++;
	// the engine may still write the record in this step: removed at the next flush
	if (x->n_purge == x->cap_purge) {
		size_t nc = x->cap_purge ? x->cap_purge * 2 : 64;
		struct xpurge *n = sl_reallocarray(x->purge, nc, sizeof *n);
		if (!n)
			return; // the idle wipe removes it later
		x->purge = n;
		x->cap_purge = nc;
	}
	struct xpurge *pg = &x->purge[x->n_purge++];
	snprintf(pg->arn, sizeof pg->arn, "%s", r->arn);
	snprintf(pg->machine, sizeof pg->machine, "%s", r->machine);
	pg->start_ms = r->start_ms;
}

/* Deletes the listing entry of an ended execution: stepper.h's exec_index key is the machine,
 * the start time (taken inside step_start, at or just after pg->start_ms), then the ARN. */
static sl_err
purge_index(store_txn_t *txn, const struct xpurge *pg)
{
	struct store_key k;
	store_key_init(&k);
	store_key_str(&k, pg->machine);
	size_t plen = k.len;
	store_key_i64(&k, pg->start_ms);
	store_cursor_t *c = NULL;
	sl_err rc = store_cursor_open(txn, STORE_DB_EXEC_INDEX, &c);
	if (rc != SL_OK)
		return rc;
	struct store_key pk;
	store_key_init(&pk);
	store_key_str(&pk, pg->machine);
	// the prefix bounds the walk to this machine; the seek starts it at the start time
	if ((rc = store_cursor_seek_prefix(c, pk.buf, pk.len)) == SL_OK)
		rc = store_cursor_seek(c, k.buf, k.len);
	size_t alen = strlen(pg->arn);
	struct store_val key, v;
	while (rc == SL_OK && (rc = store_cursor_next(c, &key, &v)) == SL_OK) {
		const unsigned char *kb = key.data;
		if (key.len < plen + 8 || memcmp(kb, pk.buf, plen) != 0)
			break;
		if (store_decode_i64(kb + plen) > pg->start_ms + 1000)
			break; // not found within a second: leave it to the idle wipe
		if (key.len == plen + 8 + alen && memcmp(kb + plen + 8, pg->arn, alen) == 0) {
			rc = store_cursor_del(c);
			break;
		}
	}
	store_cursor_close(c);
	return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
}

/* Removes the records of ended executions from the scratch store (stepper.h's layout:
 * executions, frames and history are keyed by the ARN first; the listing by machine and
 * start), so the store stays small under a steady load and an EXPRESS name may be used
 * again. */
static void
purge_ended(srv_engine_t *x)
{
	if (!x->n_purge)
		return;
	store_batch_t *b = NULL;
	if (srv_engine_batch(x, &b) != SL_OK)
		return;
	static const enum store_db dbs[]
	        = { STORE_DB_EXECUTIONS, STORE_DB_FRAMES, STORE_DB_HISTORY };
	store_txn_t *txn = store_batch_txn(b);
	for (size_t i = 0; i < x->n_purge; i++) {
		struct store_key k;
		store_key_init(&k);
		store_key_str(&k, x->purge[i].arn);
		sl_err rc = SL_OK;
		for (size_t d = 0; d < sizeof dbs / sizeof *dbs && rc == SL_OK; d++)
			rc = store_del_prefix(txn, dbs[d], k.buf, k.len);
		if (rc == SL_OK)
			rc = purge_index(txn, &x->purge[i]);
		if (rc != SL_OK)
			sl_warn("engine", "cannot remove the records of %s: %s", x->purge[i].arn,
			        sl_err_message(rc));
	}
	x->n_purge = 0;
}

static void
on_sync_timeout(srv_req_t *req, void *arg)
{
	struct xrun *r = arg;
	srv_engine_t *x = r->x;
	if (r->sync != req)
		return;
	if (x->srv->stopping) {
		r->sync = NULL;
		srv_reply_error(req, SL_ERR_SHUTTING_DOWN,
		                "the server is stopping before the execution ended");
		return;
	}
	// AWS's limit: the execution times out; express_ended answers the request
	r->timed_out = true;
	store_batch_t *b = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", r->arn); // r is freed by the end
	if (srv_engine_batch(x, &b) == SL_OK)
		(void)step_stop(x->step, b, arn, "States.Timeout", NULL, &x->fx, &err);
	if ((r = xfind(x, arn)) && r->sync == req) {
		r->sync = NULL;
		srv_reply_error(req, SL_ERR_INTERNAL, "the execution could not be stopped");
	}
}

/* Every second: executions past 5 minutes on the server's clock (virtual under
 * --virtual-time) time out; sync requests whose client hung up are let go (the execution
 * runs on: at-most-once, not cancelled). The sync request's own deadline is the backstop
 * in real time. */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_engine_t *x = arg;
	if (x->srv->stopped || x->n_xr == 0)
		return;
	int64_t now = sl_clock_now_ms();
	char(*late)[STEP_ARN_MAX] = NULL;
	size_t n_late = 0, cap = 0;
	for (size_t i = 0; i < XBUCKETS; i++)
		for (struct xrun *r = x->xr[i]; r; r = r->hnext) {
			if (r->sync && r->sync->done) {
				srv_req_t *q = r->sync;
				r->sync = NULL;
				srv_reply_error(q, SL_ERR_TIMEOUT, "the client went away");
			}
			if (r->timed_out || now - r->start_ms < EXPRESS_MAX_MS)
				continue;
			if (n_late == cap) {
				size_t nc = cap ? cap * 2 : 16;
				char(*n)[STEP_ARN_MAX] = sl_reallocarray(late, nc, sizeof *n);
				if (!n)
					break;
				late = n;
				cap = nc;
			}
			r->timed_out = true;
			snprintf(late[n_late++], STEP_ARN_MAX, "%s", r->arn);
		}
	store_batch_t *b = NULL;
	if (n_late && srv_engine_batch(x, &b) == SL_OK)
		for (size_t i = 0; i < n_late; i++) {
			struct sl_error err;
			sl_error_clear(&err);
			if (step_stop(x->step, b, late[i], "States.Timeout", NULL, &x->fx, &err))
				sl_warn("engine", "cannot time out %s: %s", late[i],
				        sl_error_text(&err));
		}
	sl_free(late);
	srv_engine_kick(x);
}

/* Empties every database of the scratch store (no execution runs: all of it is done). */
static void
wipe(srv_engine_t *x)
{
	store_batch_t *b = NULL;
	if (store_batch_get(x->scratch, &b) != SL_OK)
		return;
	sl_err rc = SL_OK;
	for (int db = 0; db < STORE_DB__COUNT && rc == SL_OK; db++) {
		store_cursor_t *c = NULL;
		if ((rc = store_cursor_open(store_batch_txn(b), (enum store_db)db, &c)) != SL_OK)
			break;
		struct store_val k, v;
		rc = store_cursor_seek(c, NULL, 0);
		while (rc == SL_OK && (rc = store_cursor_next(c, &k, &v)) == SL_OK)
			rc = store_cursor_del(c);
		store_cursor_close(c);
		if (rc == SL_ERR_NOT_FOUND)
			rc = SL_OK;
	}
	if (rc != SL_OK) {
		store_batch_abort(x->scratch, rc);
		sl_warn("engine", "cannot empty the express store: %s", sl_err_message(rc));
		return;
	}
	if (store_batch_commit(x->scratch) == SL_OK) {
		x->ended_since_wipe = 0;
		x->n_purge = 0;
		x->xstats.wipes++;
	}
}

static void
on_xflush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_engine_t *x = arg;
	purge_ended(x);
	sl_err rc = store_batch_commit(x->scratch);
	if (rc != SL_OK)
		sl_errorf("engine", "express store commit failed: %s", sl_err_message(rc));
	if (x->n_xr == 0 && x->ended_since_wipe >= WIPE_AFTER && !step_engine_has_ready(x->step))
		wipe(x);
}

/* The start of an EXPRESS execution: its durable record goes in req's batch, or in dtxn
 * when req is NULL (a caller's transaction: an EventBridge target's, a parent workflow's). */
static sl_err
xstart(srv_engine_t *e, srv_req_t *req, store_txn_t *dtxn, const struct step_start *st, bool sync,
       const char *ptoken, int pmode, struct step_mock *mock, const char *test_case, char *arn_out,
       int64_t *start_ms, struct sl_error *err)
{
	srv_engine_t *x = e->root->x;
	// AWS: "...:express:MACHINE:NAME:ID"; an unnamed execution is named by its ID
	char id[SL_UUID_STRLEN + 1], xarn[STEP_ARN_MAX];
	struct step_start s2 = *st;
	if (sl_uuid4(id) != SL_OK) {
		step_mock_free(mock);
		return SL_ERR_INTERNAL;
	}
	if (!s2.name)
		s2.name = id;
	purge_ended(x); // a name used before may be used again
	store_batch_t *xb = NULL;
	sl_err rc = srv_engine_batch(x, &xb);
	if (rc == SL_OK && (rc = store_savepoint_begin(xb)) != SL_OK)
		xb = NULL;
	if (rc != SL_OK) {
		step_mock_free(mock);
		return rc;
	}
	char arn[STEP_ARN_MAX];
	int64_t now = sl_clock_now_ms();
	struct xrun *r = NULL;
	json_t *rec = NULL;
	rc = step_start(x->step, xb, &s2, arn, &x->fx, err);
	if (rc == SL_ERR_EXEC_EXISTS && s2.name != id) {
		// AWS runs EXPRESS executions of one name side by side: this one runs as its ID
		sl_error_clear(err);
		s2.name = id;
		rc = step_start(x->step, xb, &s2, arn, &x->fx, err);
	}
	const char *name = st->name ? st->name : id;
	if (rc == SL_OK
	    && sl_arn_format(xarn, sizeof xarn, "states", "express", st->machine, name, id, NULL)
	            != SL_OK)
		rc = sl_error_set(err, SL_ERR_INVALID_NAME, "names too long for an ARN");
	if (rc == SL_OK
	    && !(r = xnew(x, arn, xarn, st->machine, st->revision, name, s2.name, st->input, now,
	                  sync)))
		rc = SL_ERR_NOMEM;
	if (rc == SL_OK && ptoken) {
		snprintf(r->ptoken, sizeof r->ptoken, "%s", ptoken);
		r->pmode = pmode;
	}
	store_batch_t *rb = NULL;
	if (rc == SL_OK && req && (rc = srv_req_batch(req, &rb)) == SL_OK)
		dtxn = store_batch_txn(rb);
	if (rc == SL_OK) {
		struct store_key k;
		xkey(&k, XTAG_PEND, xarn);
		rec = xrecord(r);
		// a run again after a restart is mocked by the same test case
		if (rec && mock && test_case
		    && json_object_set_new(rec, "testCase", json_string(test_case)) != 0) {
			json_decref(rec);
			rec = NULL;
		}
		rc = rec ? xput(dtxn, xarn, rec) : SL_ERR_NOMEM;
		if (rc == SL_OK)
			rc = store_put(dtxn, STORE_DB_EXECUTIONS, k.buf, k.len, "", 0);
		json_decref(rec);
	}
	bool mocked = false;
	if (rc == SL_OK && mock)
		mocked = (rc = srv_engine_mock_attach(e, arn, mock)) == SL_OK; // taken either way
	else
		step_mock_free(mock);
	if (rc == SL_OK && sync) {
		r->sync = req;
		rc = srv_req_defer(req, EXPRESS_MAX_MS, on_sync_timeout, r);
	}
	if (rc == SL_OK)
		rc = store_savepoint_release(xb);
	else
		store_savepoint_rollback(xb);
	if (rc != SL_OK) {
		if (mocked)
			srv_engine_mock_drop(e->root, arn);
		xfree(r);
		return rc;
	}
	xlink(x, r);
	x->xstats.started++;
	if (arn_out)
		snprintf(arn_out, STEP_ARN_MAX, "%s", xarn);
	if (start_ms)
		*start_ms = now;
	srv_engine_kick(x);
	return SL_OK;
}

sl_err
srv_engine_express_start(srv_engine_t *e, srv_req_t *req, const struct step_start *st, bool sync,
                         struct step_mock *mock, const char *test_case, char *arn_out,
                         int64_t *start_ms, struct sl_error *err)
{
	return xstart(e, req, NULL, st, sync, NULL, 0, mock, test_case, arn_out, start_ms, err);
}

bool
srv_engine_machine_is_express(store_txn_t *txn, const char *name)
{
	struct store_key k;
	store_key_init(&k);
	store_key_u32(&k, 'M');
	store_key_str(&k, name);
	struct store_val v;
	if (store_get(txn, STORE_DB_MACHINES, k.buf, k.len, &v) != SL_OK)
		return false;
	json_t *m = json_loadb(v.data, v.len, 0, NULL);
	const char *type = json_string_value(json_object_get(m, "type"));
	bool x = type && strcmp(type, "EXPRESS") == 0;
	json_decref(m);
	return x;
}

sl_err
srv_engine_start(srv_engine_t *e, store_batch_t *b, const struct step_start *st, char *arn_out,
                 struct sl_error *err)
{
	e = e->root;
	if (srv_engine_machine_is_express(store_batch_txn(b), st->machine))
		return xstart(e, NULL, store_batch_txn(b), st, false, NULL, 0, NULL, NULL, arn_out,
		              NULL, err);
	sl_err rc = step_start(e->step, b, st, arn_out, &e->fx, err);
	if (rc == SL_OK)
		srv_engine_kick(e);
	return rc;
}

void
srv_engine_express_stats(srv_engine_t *e, struct srv_engine_express_stats *out)
{
	srv_engine_t *x = e->root->x;
	*out = x->xstats;
	out->running = x->n_xr;
}

sl_err
srv_engine_metrics(srv_t *s, struct evbuffer *out)
{
	srv_engine_t *e = srv_engine_of(s);
	if (!e || !e->x)
		return SL_OK;
	struct srv_engine_express_stats st;
	srv_engine_express_stats(e, &st);
	int n = evbuffer_add_printf(
	        out,
	        "# HELP sluice_express_executions_running EXPRESS executions in flight.\n"
	        "# TYPE sluice_express_executions_running gauge\n"
	        "sluice_express_executions_running %zu\n"
	        "# HELP sluice_express_executions_total EXPRESS executions by event.\n"
	        "# TYPE sluice_express_executions_total counter\n"
	        "sluice_express_executions_total{event=\"started\"} %llu\n"
	        "sluice_express_executions_total{event=\"ended\"} %llu\n"
	        "sluice_express_executions_total{event=\"rerun\"} %llu\n"
	        "# HELP sluice_express_store_wipes_total Times the scratch store was emptied.\n"
	        "# TYPE sluice_express_store_wipes_total counter\n"
	        "sluice_express_store_wipes_total %llu\n",
	        st.running, (unsigned long long)st.started, (unsigned long long)st.ended,
	        (unsigned long long)st.rerun, (unsigned long long)st.wipes);
	struct store_stats ss;
	store_get_stats(e->x->scratch, &ss);
	if (n >= 0)
		n = evbuffer_add_printf(
		        out,
		        "# HELP sluice_express_store_used_bytes Bytes in use in the "
		        "EXPRESS scratch store.\n"
		        "# TYPE sluice_express_store_used_bytes gauge\n"
		        "sluice_express_store_used_bytes %zu\n",
		        ss.used_bytes);
	return n < 0 ? SL_ERR_NOMEM : SL_OK;
}

/* DATA/express, emptied: what it held died with the last process (never fsync'd). */
static sl_err
scratch_open(srv_t *s, store_t **out, struct sl_error *err)
{
	char *dir = sl_asprintf("%s/express", s->cfg.data_dir);
	if (!dir)
		return SL_ERR_NOMEM;
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char *p = sl_asprintf("%s/%s", dir, de->d_name);
			if (p && unlink(p) != 0)
				sl_warn("engine", "cannot remove %s", p);
			sl_free(p);
		}
		closedir(d);
	}
	struct store_options o = { .no_sync = true, .max_batch_ops = 65536 };
	sl_err rc = store_open(dir, &o, out, err);
	sl_free(dir);
	return rc;
}

/* The durable engine's hook for a workflow's startExecution: an EXPRESS machine starts on
 * the express engine as StartExecution would (its start record in the parent's
 * transaction); with .sync/.sync:2 its end answers the parent's token (answer_parent). A
 * STANDARD one is left to the durable engine. A parent activation that is undone after this
 * leaves the express child running without its start record (at-least-once, as EXPRESS). */
static sl_err
start_child(void *arg, store_txn_t *txn, const struct step_start *req, const char *token, int mode,
            char *arn_out, bool *taken, struct sl_error *err)
{
	srv_engine_t *root = arg;
	*taken = srv_engine_machine_is_express(txn, req->machine);
	if (!*taken)
		return SL_OK;
	return xstart(root, NULL, txn, req, false, token, mode, NULL, NULL, arn_out, NULL, err);
}

/* The express engine's hook: a STANDARD child of an EXPRESS execution (fire-and-forget)
 * starts on the durable engine in the durable batch, as StartExecution would, so it is
 * durable and DescribeExecution finds it. EXPRESS children stay on the express engine:
 * starting one through xstart from inside its own activation could commit its scratch batch
 * under the activation's savepoint. */
static sl_err
start_child_x(void *arg, store_txn_t *txn, const struct step_start *req, const char *token,
              int mode, char *arn_out, bool *taken, struct sl_error *err)
{
	(void)txn;
	(void)mode;
	srv_engine_t *root = arg;
	*taken = false;
	if (token) // .sync from an EXPRESS machine: refused at creation since; as before
		return SL_OK;
	store_batch_t *b = NULL;
	sl_err rc = srv_batch_get(root->srv, false, &b);
	if (rc != SL_OK || srv_engine_machine_is_express(store_batch_txn(b), req->machine))
		return rc;
	if ((rc = step_start(root->step, b, req, arn_out, &root->fx, err)) == SL_OK) {
		*taken = true;
		srv_engine_kick(root);
	}
	return rc;
}

sl_err
srv_express_new(srv_engine_t *root, struct sl_error *err)
{
	srv_engine_t *x = SL_NEW(srv_engine_t);
	if (!x)
		return SL_ERR_NOMEM;
	root->x = x;
	step_engine_set_start_child(root->step, start_child, root);
	sl_err rc = scratch_open(root->srv, &x->scratch, err);
	if (rc != SL_OK)
		return rc;
	if ((rc = srv_engine_init_common(x, root->srv, root, x->scratch, true)) != SL_OK)
		return sl_error_set(err, rc, "cannot create the EXPRESS engine");
	step_engine_set_start_child(x->step, start_child_x, root);
	x->flush_ev = event_new(srv_base(root->srv), -1, 0, on_xflush, x);
	x->sweep_ev = event_new(srv_base(root->srv), -1, EV_PERSIST, on_sweep, x);
	if (!x->flush_ev || !x->sweep_ev)
		return SL_ERR_NOMEM;
	event_priority_set(x->flush_ev, SRV_PRIO_FLUSH);
	event_priority_set(x->sweep_ev, SRV_PRIO_NORMAL);
	struct timeval sec = { 1, 0 };
	evtimer_add(x->sweep_ev, &sec);
	return SL_OK;
}

/* Start-up: express executions with a start and no end. Asynchronous ones run again from
 * the beginning (at-least-once); synchronous ones are closed ABORTED (at-most-once). */
sl_err
srv_express_recover(srv_engine_t *e, store_batch_t *b, struct sl_error *err)
{
	srv_engine_t *x = e->x;
	store_txn_t *txn = store_batch_txn(b);
	struct store_key pk;
	store_key_init(&pk);
	store_key_u32(&pk, XTAG_PEND);
	store_cursor_t *c = NULL;
	sl_err rc = store_cursor_open(txn, STORE_DB_EXECUTIONS, &c);
	if (rc != SL_OK)
		return rc;
	// the keys, not the ARNs: a long ARN is hashed in its key (store_key_str)
	struct store_key *keys = NULL;
	size_t n = 0, cap = 0;
	struct store_val k, v;
	rc = store_cursor_seek_prefix(c, pk.buf, pk.len);
	while (rc == SL_OK && (rc = store_cursor_next(c, &k, &v)) == SL_OK) {
		if (k.len <= 4 || k.len > STORE_MAX_KEY)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct store_key *nk = sl_reallocarray(keys, nc, sizeof *nk);
			if (!nk) {
				rc = SL_ERR_NOMEM;
				break;
			}
			keys = nk;
			cap = nc;
		}
		store_key_init(&keys[n]);
		memcpy(keys[n].buf, k.data, k.len);
		keys[n++].len = k.len;
	}
	store_cursor_close(c);
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
	store_batch_t *xb = NULL;
	for (size_t i = 0; i < n && rc == SL_OK; i++) {
		struct store_key rk = keys[i];
		struct store_key ptag;
		store_key_init(&ptag);
		store_key_u32(&ptag, XTAG_REC);
		memcpy(rk.buf, ptag.buf, 4); // the same ARN under the record's tag
		json_t *rec = NULL;
		if (store_get(txn, STORE_DB_EXECUTIONS, rk.buf, rk.len, &v) == SL_OK)
			rec = json_loadb(v.data, v.len, 0, NULL);
		const char *machine = json_string_value(json_object_get(rec, "machine"));
		const char *name = json_string_value(json_object_get(rec, "name"));
		const char *xarn = json_string_value(json_object_get(rec, "arn"));
		if (!machine || !name || !xarn) {
			sl_warn("engine", "an EXPRESS start record is unreadable: dropped");
			rc = store_del(txn, STORE_DB_EXECUTIONS, keys[i].buf, keys[i].len);
			json_decref(rec);
			continue;
		}
		char arns_i[STEP_ARN_MAX];
		snprintf(arns_i, sizeof arns_i, "%s", xarn);
		int64_t now = sl_clock_now_ms();
		if (json_is_true(json_object_get(rec, "sync"))) {
			sl_info("engine",
			        "synchronous %s was cut by a stop: ABORTED, not run again", arns_i);
			rc = xput_end(
			        txn, arns_i, rec, STEP_ABORTED, now, NULL, "States.Runtime",
			        "the server stopped during this synchronous EXPRESS execution "
			        "(at-most-once: not run again)");
			json_decref(rec);
			continue;
		}
		uint32_t rev = (uint32_t)json_integer_value(json_object_get(rec, "revision"));
		json_t *input = json_object_get(rec, "input");
		const char *iname = json_string_value(json_object_get(rec, "iname"));
		struct step_start st = { .machine = machine,
			                 .revision = rev,
			                 .name = iname ? iname : name,
			                 .input = input };
		struct sl_error e2;
		sl_error_clear(&e2);
		char arn[STEP_ARN_MAX];
		struct xrun *r = NULL;
		sl_err r2 = srv_engine_batch(x, &xb);
		if (r2 == SL_OK)
			r2 = step_start(x->step, xb, &st, arn, &x->fx, &e2);
		if (r2 == SL_OK
		    && !(r = xnew(x, arn, arns_i, machine, rev, name, st.name, input,
		                  json_integer_value(json_object_get(rec, "start")), false)))
			r2 = SL_ERR_NOMEM;
		const char *ptok = json_string_value(json_object_get(rec, "parentToken"));
		if (r2 == SL_OK && ptok) { // a workflow's .sync child: its end answers the parent
			snprintf(r->ptoken, sizeof r->ptoken, "%s", ptok);
			r->pmode = (int)json_integer_value(json_object_get(rec, "parentMode"));
		}
		const char *tc = json_string_value(json_object_get(rec, "testCase"));
		if (r2 == SL_OK && tc) // started mocked: mocked again
			r2 = srv_engine_mock_restore(e, arn, arns_i, machine, tc);
		if (r2 == SL_OK) {
			xlink(x, r);
			x->xstats.rerun++;
			sl_info("engine", "EXPRESS %s runs again from the start (at-least-once)",
			        arns_i);
		} else {
			sl_warn("engine", "EXPRESS %s cannot run again: %s", arns_i,
			        e2.code ? sl_error_text(&e2) : sl_err_message(r2));
			rc = xput_end(txn, arns_i, rec, STEP_FAILED, now, NULL, "States.Runtime",
			              e2.code ? sl_error_text(&e2) : sl_err_message(r2));
		}
		json_decref(rec);
	}
	sl_free(keys);
	if (rc != SL_OK)
		return sl_error_set(err, rc, "cannot recover EXPRESS executions");
	if (x->n_xr)
		srv_engine_kick(x);
	return SL_OK;
}

void
srv_express_free(srv_engine_t *x)
{
	if (!x)
		return;
	if (x->flush_ev)
		event_free(x->flush_ev);
	if (x->sweep_ev)
		event_free(x->sweep_ev);
	for (size_t i = 0; i < XBUCKETS; i++)
		while (x->xr[i]) {
			struct xrun *r = x->xr[i];
			x->xr[i] = r->hnext;
			if (r->sync)
				srv_reply_error(r->sync, SL_ERR_SHUTTING_DOWN,
				                "the server stopped");
			xfree(r);
		}
	srv_engine_clear_common(x);
	sl_free(x->purge);
	if (x->scratch) {
		store_batch_abort(x->scratch, SL_ERR_SHUTTING_DOWN);
		store_free(x->scratch);
	}
	sl_free(x);
}

void
srv_express_finished(srv_engine_t *x, const struct step_finished *f)
{
	struct xrun *r = xfind(x, f->execution_arn);
	if (r) {
		xunlink(x, r);
		express_ended(x, r, f->status, f->output, f->error, f->cause);
		xfree(r);
	}
}
