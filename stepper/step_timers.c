/*
 * step_timers.c - durable timers: key (due ms, kind, arn, frame, wake counter), value the
 * task token for task timers. A timer whose frame moved on (another wake counter) is stale
 * and ignored when it fires, so nothing has to be cancelled.
 */
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "stepper/step_int.h"

sl_err
step_timer_arm(struct step_ctx *c, int64_t due_ms, enum step_timer_kind kind, uint32_t frame,
               uint64_t wk, const char *token)
{
	struct store_key k;
	store_key_init(&k);
	store_key_i64(&k, due_ms);
	store_key_u32(&k, (uint32_t)kind);
	store_key_u32(&k, frame);
	store_key_u64(&k, wk);
	// raw, not str: the ARN is read back from the key and must never be hashed
	store_key_raw(&k, c->arn, strlen(c->arn));
	const char *v = token ? token : "";
	sl_err e = store_put(c->txn, STORE_DB_TIMERS, k.buf, k.len, v, strlen(v));
	if (e == SL_OK && c->fx && c->fx->timer)
		c->fx->timer(c->fx->arg, due_ms);
	return e;
}

sl_err
step_next_timer(step_engine_t *eng, store_txn_t *txn, int64_t *due_ms)
{
	(void)eng;
	store_cursor_t *cur = NULL;
	sl_err e = store_cursor_open(txn, STORE_DB_TIMERS, &cur);
	if (e != SL_OK)
		return e;
	struct store_val k, v;
	if ((e = store_cursor_seek(cur, NULL, 0)) == SL_OK
	    && (e = store_cursor_next(cur, &k, &v)) == SL_OK) {
		if (k.len < 8)
			e = SL_ERR_STORE;
		else
			*due_ms = store_decode_i64(k.data);
	}
	store_cursor_close(cur);
	return e;
}

struct fired {
	int64_t due;
	uint32_t kind, frame;
	uint64_t wk;
	char *arn;
	char tok[STEP_TOKEN_LEN + 1];
};

static sl_err fire_one(step_engine_t *eng, store_txn_t *txn, const struct fired *t,
                       const struct step_effects *fx, struct sl_error *err);

sl_err
step_fire_timers(step_engine_t *eng, store_batch_t *b, int64_t now_ms, unsigned limit,
                 const struct step_effects *fx, unsigned *fired, struct sl_error *err)
{
	store_txn_t *txn = store_batch_txn(b);
	unsigned n = 0;
	sl_err e = SL_OK;
	if (fired)
		*fired = 0;
	while (limit == 0 || n < limit) {
		store_cursor_t *cur = NULL;
		if ((e = store_cursor_open(txn, STORE_DB_TIMERS, &cur)) != SL_OK)
			return e;
		struct store_val k, v;
		struct fired t = { 0 };
		e = store_cursor_seek(cur, NULL, 0);
		if (e == SL_OK)
			e = store_cursor_next(cur, &k, &v);
		if (e == SL_OK && (k.len < 8 + 4 + 4 + 8 + 1 || v.len > STEP_TOKEN_LEN))
			e = SL_ERR_STORE;
		if (e == SL_OK) {
			const unsigned char *p = k.data;
			t.due = store_decode_i64(p);
			if (t.due > now_ms) {
				store_cursor_close(cur);
				e = SL_ERR_NOT_FOUND;
				break;
			}
			t.kind = store_decode_u32(p + 8);
			t.frame = store_decode_u32(p + 12);
			t.wk = store_decode_u64(p + 16);
			t.arn = sl_strndup((const char *)p + 24, k.len - 24);
			memcpy(t.tok, v.data, v.len);
			t.tok[v.len] = 0;
			if (!t.arn)
				e = SL_ERR_NOMEM;
			else
				e = store_cursor_del(cur);
		}
		store_cursor_close(cur);
		// each firing is one activation; the timer itself stays consumed
		struct step_act a;
		if (e == SL_OK && (e = step_act_begin(eng, b, fx, &a)) == SL_OK
		    && (e = step_act_end(&a, fire_one(eng, txn, &t, &a.fx, err))) != SL_OK)
			e = step_act_fail(eng, b, t.arn, e, fx, err);
		sl_free(t.arn);
		if (e != SL_OK)
			break;
		n++;
	}
	if (fired)
		*fired = n;
	return e == SL_ERR_NOT_FOUND ? SL_OK : e;
}

static sl_err
fire_one(step_engine_t *eng, store_txn_t *txn, const struct fired *t, const struct step_effects *fx,
         struct sl_error *err)
{
	struct step_ctx c = { .eng = eng, .txn = txn, .fx = fx, .err = err };
	sl_err e = step_exec_load(&c, t->arn);
	if (e == SL_ERR_EXEC_NOT_FOUND)
		return SL_OK;
	if (e != SL_OK)
		goto out;
	if (strcmp(step_jstr(c.exec, "status"), "RUNNING") != 0)
		goto out;
	// a redrive arms a new execution timeout marked with its redriveCount
	if (t->kind == TK_EXEC_TIMEOUT && (int64_t)t->wk != step_jint(c.exec, "redriveCount", 0))
		goto out;
	if (t->kind == TK_EXEC_TIMEOUT) {
		e = step_exec_close(&c, STEP_TIMED_OUT, NULL, "States.Timeout",
		                    "The execution timed out");
		goto out;
	}
	struct step_frame *f = NULL;
	e = step_frame_load(&c, t->frame, &f);
	if (e == SL_ERR_NOT_FOUND) {
		e = SL_OK;
		goto out;
	}
	if (e != SL_OK)
		goto out;
	if (f->wk != t->wk) {
		step_frame_free(f);
		goto out;
	}
	struct step_fault ft;
	switch (t->kind) {
	case TK_WAIT:
	case TK_RETRY:
		if ((t->kind == TK_WAIT && f->ph != PH_WAIT)
		    || (t->kind == TK_RETRY && f->ph != PH_RETRY))
			break;
		// PH_RERUN on a Wait state runs its exit; on others the state's work again
		f->wk++;
		f->ph = PH_RERUN;
		if ((e = step_frame_save(&c, f)) == SL_OK)
			e = step_ready_push(eng, c.arn, f->id);
		break;
	case TK_TASK_TIMEOUT:
	case TK_HEARTBEAT:
		if (f->ph != PH_TASK || strcmp(f->tok, t->tok) != 0)
			break;
		if (t->kind == TK_HEARTBEAT) {
			// a heartbeat since this timer was armed moved the deadline: stale
			struct store_key tk;
			store_key_init(&tk);
			store_key_raw(&tk, t->tok, strlen(t->tok));
			json_t *rec = NULL;
			e = step_get_json(c.txn, STORE_DB_TASK_TOKENS, &tk, 'T', &rec);
			int64_t hb_due = e == SL_OK ? step_jint(rec, "hbDue", 0) : 0;
			json_decref(rec);
			if (e != SL_OK || hb_due != t->due) {
				e = e == SL_ERR_NOT_FOUND ? SL_OK : e;
				break;
			}
		}
		e = step_task_resolve(&c, f, false, NULL,
		                      t->kind == TK_HEARTBEAT ? "States.HeartbeatTimeout"
		                                              : "States.Timeout",
		                      NULL);
		if (e == SL_OK && !c.closed)
			e = step_frame_save(&c, f);
		break;
	default:
		step_fault_set(&ft, "States.Runtime", "unknown timer kind %u", t->kind);
		e = step_frame_fail(&c, f, &ft);
		break;
	}
	step_frame_free(f);
out:
	if (e == SL_OK)
		e = step_exec_save(&c);
	step_ctx_done(&c);
	return e;
}
