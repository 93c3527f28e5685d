/*
 * step_maprun.c - distributed Map: iterations as child executions in a Map Run.
 *
 * The parent's Map frame keeps its fan-out counters and the children's results exactly as
 * an inline Map does (step_fanout.c); only an iteration's body is a separate execution: its
 * record, its history, its own `$$.Execution`. A child is started lazily (at most
 * MaxConcurrency waiting) with a link record under the parent's frame; when it closes, it
 * finds that link, removes it and reports to the parent in the same batch, as a child
 * frame would. Removing the link first is what lets the parent abort children (a failed
 * threshold, a stop) without hearing from them again.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "statemachines/statemachines.h"
#include "stepper/step_maprun.h"

static const char *const counter_names[]
        = { "pending", "running", "succeeded", "failed", "timedOut", "aborted" };
enum { CN_PENDING, CN_RUNNING, CN_SUCCEEDED, CN_FAILED, CN_TIMED_OUT, CN_ABORTED, CN_COUNT };

static sl_err mark_failed_children(struct step_ctx *c, struct step_frame *f, const char *mrarn);

const struct sm_machine *
step_maprun_walk(const struct sm_machine *m, json_t *sub)
{
	size_t i;
	json_t *step;
	json_array_foreach(sub, i, step)
	{
		size_t s = (size_t)json_integer_value(json_array_get(step, 0));
		size_t b = (size_t)json_integer_value(json_array_get(step, 1));
		if (!m || s >= m->n_states)
			return NULL;
		const struct sm_state *st = &m->states[s];
		if (st->type == SM_STATE_PARALLEL && b < st->u.parallel.n_branches)
			m = st->u.parallel.branches[b];
		else if (st->type == SM_STATE_MAP && b == 0)
			m = st->u.map.processor;
		else
			return NULL;
	}
	return m;
}

static void
key_side(struct store_key *k, const char *arn, uint32_t frame, const char *tag)
{
	step_key_frame(k, arn, frame);
	store_key_raw(k, tag, 1);
}

static void
key_link(struct store_key *k, const char *arn, uint32_t frame, uint32_t idx)
{
	key_side(k, arn, frame, "C");
	store_key_u32(k, idx);
}

sl_err
step_maprun_arn(struct step_ctx *c, uint32_t frame, char out[STEP_ARN_MAX])
{
	struct store_key k;
	key_side(&k, c->arn, frame, "M");
	json_t *v = NULL;
	out[0] = 0;
	sl_err e = step_get_json(c->txn, STORE_DB_FRAMES, &k, 'M', &v);
	if (e == SL_ERR_NOT_FOUND)
		return SL_OK;
	if (e != SL_OK)
		return e;
	snprintf(out, STEP_ARN_MAX, "%s", step_jstr(v, "a") ? step_jstr(v, "a") : "");
	json_decref(v);
	return SL_OK;
}

static sl_err
mr_load(store_txn_t *txn, const char *mrarn, json_t **out)
{
	struct store_key k;
	step_key_exec(&k, mrarn);
	return step_get_json(txn, STORE_DB_EXECUTIONS, &k, 'M', out);
}

static sl_err
mr_save(store_txn_t *txn, const char *mrarn, json_t *rec)
{
	struct store_key k;
	step_key_exec(&k, mrarn);
	return step_put_json(txn, STORE_DB_EXECUTIONS, &k, 'M', rec);
}

/* Moves `items` items (and one execution) from counter `from` to counter `to` (-1: none). */
static sl_err
mr_move(store_txn_t *txn, const char *mrarn, int from, int to, int64_t items)
{
	json_t *rec = NULL;
	sl_err e = mr_load(txn, mrarn, &rec);
	if (e == SL_ERR_NOT_FOUND)
		return SL_OK;
	if (e != SL_OK)
		return e;
	const char *groups[2] = { "ec", "ic" };
	int64_t d[2] = { 1, items };
	for (int g = 0; g < 2; g++) {
		json_t *o = json_object_get(rec, groups[g]);
		if (from >= 0) {
			int64_t v = step_jint(o, counter_names[from], 0) - d[g];
			json_object_set_new(o, counter_names[from], json_integer(v < 0 ? 0 : v));
		}
		if (to >= 0)
			json_object_set_new(
			        o, counter_names[to],
			        json_integer(step_jint(o, counter_names[to], 0) + d[g]));
	}
	e = mr_save(txn, mrarn, rec);
	json_decref(rec);
	return e;
}

static json_t *
counters(int64_t total, int64_t pending, int64_t succeeded)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	for (int i = 0; i < CN_COUNT; i++)
		json_object_set_new(o, counter_names[i], json_integer(0));
	json_object_set_new(o, "pending", json_integer(pending));
	json_object_set_new(o, "succeeded", json_integer(succeeded));
	json_object_set_new(o, "total", json_integer(total));
	return o;
}

/* Items per iteration: 1, or the size of an ItemBatcher batch. */
static sl_err
iteration_items(struct step_ctx *c, struct step_frame *f, uint32_t idx, int64_t *out)
{
	const struct sm_map *mp = &f->m->states[f->st].u.map;
	*out = 1;
	if (!mp->item_batcher)
		return SL_OK;
	json_t *one = NULL;
	sl_err e = step_reader_get(c, f, idx, &one);
	if (e != SL_OK)
		return e;
	*out = (int64_t)json_array_size(json_object_get(one, "Items"));
	json_decref(one);
	return SL_OK;
}

static sl_err
index_put(store_txn_t *txn, const char *owner, int64_t ms, const char *arn)
{
	struct store_key ik;
	store_key_init(&ik);
	store_key_str(&ik, owner);
	store_key_i64(&ik, ms);
	store_key_raw(&ik, arn, strlen(arn));
	return store_put(txn, STORE_DB_EXEC_INDEX, ik.buf, ik.len, "", 0);
}

/* "<machine>/<label>": the name child executions and the map run are filed under. */
static void
qualified_name(struct step_ctx *c, const char *label, char *out, size_t cap)
{
	const char *smarn = step_jstr(c->exec, "stateMachineArn");
	const char *m = smarn ? strstr(smarn, ":stateMachine:") : NULL;
	m = m ? m + strlen(":stateMachine:") : step_jstr(c->exec, "machine");
	// a child's own machine is "<machine>/<label>": nested runs file under the top name
	size_t n = strcspn(m ? m : "", "/");
	snprintf(out, cap, "%.*s/%s", (int)n, m ? m : "", label);
}

sl_err
step_maprun_start(struct step_ctx *c, struct step_frame *f, uint32_t kept, const char *redrive_arn)
{
	const struct sm_map *mp = &f->m->states[f->st].u.map;
	int64_t now = sl_clock_now_ms();
	char mrarn[STEP_ARN_MAX], label[64], id[SL_UUID_STRLEN + 1];
	json_t *rec = NULL;
	sl_err e;
	int64_t total_items = f->n;
	if (mp->item_batcher) {
		total_items = 0;
		for (uint32_t i = 0; i < f->n; i++) {
			int64_t k;
			if ((e = iteration_items(c, f, i, &k)) != SL_OK)
				return e;
			total_items += k;
		}
	}
	if (redrive_arn && mr_load(c->txn, redrive_arn, &rec) == SL_OK) {
		snprintf(mrarn, sizeof mrarn, "%s", redrive_arn);
		snprintf(label, sizeof label, "%s",
		         step_jstr(rec, "label") ? step_jstr(rec, "label") : "");
		int64_t count = step_jint(rec, "redriveCount", 0) + 1;
		// items kept from the earlier runs count as succeeded; the rest waits again
		json_t *ec = counters(f->n, f->n - kept, kept);
		json_t *ic = counters(total_items, total_items - kept, kept);
		int bad = !ec || !ic;
		bad |= json_object_set_new(rec, "ec", ec);
		bad |= json_object_set_new(rec, "ic", ic);
		bad |= json_object_set_new(rec, "status", json_string("RUNNING"));
		bad |= json_object_set_new(rec, "redriveCount", json_integer(count));
		bad |= json_object_set_new(rec, "redriveMs", json_integer(now));
		bad |= json_object_set_new(rec, "frame", json_integer(f->id));
		json_object_del(rec, "stopMs");
		if (bad || (e = mr_save(c->txn, mrarn, rec)) != SL_OK) {
			json_decref(rec);
			return bad ? SL_ERR_NOMEM : e;
		}
		json_decref(rec);
		if ((e = mark_failed_children(c, f, mrarn)) != SL_OK)
			return e;
		json_t *d = json_pack("{s:s, s:I}", "mapRunArn", mrarn, "redriveCount",
		                      (json_int_t)count);
		e = d ? step_event(c, f, "MapRunRedriven", "mapRunRedrivenEventDetails", d)
		      : SL_ERR_NOMEM;
	} else {
		if ((e = sl_uuid4(id)) != SL_OK)
			return e;
		// AWS files an unlabelled run under a generated label
		snprintf(label, sizeof label, "%s", mp->label ? mp->label : id);
		char qn[256];
		qualified_name(c, label, qn, sizeof qn);
		if (sl_arn_format(mrarn, sizeof mrarn, "states", "mapRun", qn, id, NULL) != SL_OK)
			return SL_ERR_INVALID_ARG;
		char smarn[STEP_ARN_MAX];
		if (sl_arn_format(smarn, sizeof smarn, "states", "stateMachine", qn, NULL) != SL_OK)
			return SL_ERR_INVALID_ARG;
		rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:I, s:f, s:o, s:o, s:i}",
		                "mapRunArn", mrarn, "executionArn", c->arn, "stateMachineArn",
		                step_jstr(c->exec, "stateMachineArn"), "childMachineArn", smarn,
		                "label", label, "startMs", (json_int_t)now, "maxConcurrency",
		                (int)mp->max_concurrency, "toleratedFailureCount",
		                (json_int_t)(f->tol_n < 0 ? 0 : f->tol_n),
		                "toleratedFailurePercentage", f->tol_p < 0 ? 0.0 : f->tol_p, "ec",
		                counters(f->n, f->n, 0), "ic",
		                counters(total_items, total_items, 0), "redriveCount", 0);
		if (!rec)
			return SL_ERR_NOMEM;
		json_object_set_new(rec, "status", json_string("RUNNING"));
		json_object_set_new(rec, "frame", json_integer(f->id));
		e = mr_save(c->txn, mrarn, rec);
		json_decref(rec);
		if (e == SL_OK)
			e = index_put(c->txn, c->arn, now, mrarn);
		json_t *d = json_pack("{s:s}", "mapRunArn", mrarn);
		if (e == SL_OK)
			e = d ? step_event(c, f, "MapRunStarted", "mapRunStartedEventDetails", d)
			      : SL_ERR_NOMEM;
		else
			json_decref(d);
	}
	if (e != SL_OK)
		return e;
	if (json_object_set_new(c->exec, "mapRuns", json_true()))
		return SL_ERR_NOMEM;
	c->exec_dirty = true;
	json_t *side = json_pack("{s:s, s:s}", "a", mrarn, "l", label);
	if (!side)
		return SL_ERR_NOMEM;
	struct store_key k;
	key_side(&k, c->arn, f->id, "M");
	e = step_put_json(c->txn, STORE_DB_FRAMES, &k, 'M', side);
	json_decref(side);
	return e;
}

static sl_err
put_link(struct step_ctx *c, struct step_frame *f, uint32_t idx, const char *arn, int64_t items)
{
	struct store_key k;
	json_t *link = json_pack("{s:s, s:I}", "a", arn, "k", (json_int_t)items);
	key_link(&k, c->arn, f->id, idx);
	sl_err e = link ? step_put_json(c->txn, STORE_DB_FRAMES, &k, 'C', link) : SL_ERR_NOMEM;
	json_decref(link);
	return e;
}

/* A redriven run marks, for each item whose last child failed, was aborted or timed out,
 * that child ("D" records under the frame): its turn redrives it, same ARN, as AWS redrives
 * a map run's children. Items kept from before (a result under the frame) are skipped. */
static sl_err
mark_failed_children(struct step_ctx *c, struct step_frame *f, const char *mrarn)
{
	struct store_key pk;
	store_key_init(&pk);
	store_key_str(&pk, mrarn);
	store_cursor_t *cur = NULL;
	sl_err e = store_cursor_open(c->txn, STORE_DB_EXEC_INDEX, &cur);
	if (e != SL_OK)
		return e;
	struct store_val k, v;
	// newest first: the latest child of an item wins
	e = store_cursor_seek_last_prefix(cur, pk.buf, pk.len);
	while (e == SL_OK && (e = store_cursor_prev(cur, &k, &v)) == SL_OK) {
		if (k.len < pk.len + 9 || memcmp(k.data, pk.buf, pk.len) != 0) {
			e = SL_ERR_NOT_FOUND;
			break;
		}
		char child[STEP_ARN_MAX];
		if (!step_index_arn(&k, pk.len, child))
			continue;
		struct store_key xk, rk, dk;
		step_key_exec(&xk, child);
		json_t *x = NULL;
		if (step_get_json(c->txn, STORE_DB_EXECUTIONS, &xk, 'X', &x) != SL_OK)
			continue;
		const char *st = step_jstr(x, "status");
		int64_t idx = step_jint(json_object_get(x, "mapRun"), "i", -1);
		bool failed = st && strcmp(st, "SUCCEEDED") != 0 && strcmp(st, "RUNNING") != 0;
		json_decref(x);
		if (!failed || idx < 0 || idx >= f->n)
			continue;
		struct store_val dummy;
		step_key_result(&rk, c->arn, f->id, (uint32_t)idx);
		key_side(&dk, c->arn, f->id, "D");
		store_key_u32(&dk, (uint32_t)idx);
		if (store_get(c->txn, STORE_DB_FRAMES, rk.buf, rk.len, &dummy) == SL_OK
		    || store_get(c->txn, STORE_DB_FRAMES, dk.buf, dk.len, &dummy) == SL_OK)
			continue;
		json_t *d = json_pack("{s:s}", "a", child);
		e = d ? step_put_json(c->txn, STORE_DB_FRAMES, &dk, 'D', d) : SL_ERR_NOMEM;
		json_decref(d);
	}
	store_cursor_close(cur);
	return e == SL_ERR_NOT_FOUND ? SL_OK : e;
}

/* Iteration idx of a redriven run whose earlier child is marked: that child is redriven and
 * reports to this generation of the Map (*done). A child that cannot be redriven any more
 * leaves *done false: a new one starts. */
static sl_err
redrive_child(struct step_ctx *c, struct step_frame *f, uint32_t idx, const char *mrarn,
              int64_t items, bool *done)
{
	struct store_key dk;
	key_side(&dk, c->arn, f->id, "D");
	store_key_u32(&dk, idx);
	json_t *d = NULL;
	*done = false;
	sl_err e = step_get_json(c->txn, STORE_DB_FRAMES, &dk, 'D', &d);
	if (e == SL_ERR_NOT_FOUND)
		return SL_OK;
	if (e != SL_OK)
		return e;
	char child[STEP_ARN_MAX];
	snprintf(child, sizeof child, "%s", step_jstr(d, "a") ? step_jstr(d, "a") : "");
	json_decref(d);
	if ((e = store_del(c->txn, STORE_DB_FRAMES, dk.buf, dk.len)) != SL_OK)
		return e;
	struct sl_error rerr;
	sl_error_clear(&rerr);
	e = step_redrive_txn(c->eng, c->txn, child, NULL, true, NULL, c->fx, &rerr);
	if (e == SL_ERR_EXEC_NOT_REDRIVABLE || e == SL_ERR_EXEC_NOT_FOUND)
		return SL_OK;
	if (e != SL_OK)
		return e;
	// the child now reports to this generation of the Map
	struct step_ctx cc
	        = { .eng = c->eng, .txn = c->txn, .fx = c->fx, .err = c->err, .inline_frame = -1 };
	if ((e = step_exec_load(&cc, child)) == SL_OK) {
		json_t *mr = json_object_get(cc.exec, "mapRun");
		if (!json_is_object(mr)
		    || json_object_set_new(mr, "w", json_integer((json_int_t)f->wk))
		    || json_object_set_new(mr, "f", json_integer(f->id)))
			e = SL_ERR_STORE;
		cc.exec_dirty = true;
	}
	if (e == SL_OK)
		e = step_exec_save(&cc);
	step_ctx_done(&cc);
	if (e == SL_OK)
		e = put_link(c, f, idx, child, items);
	if (e == SL_OK)
		e = mr_move(c->txn, mrarn, CN_PENDING, CN_RUNNING, items);
	*done = e == SL_OK;
	return e;
}

sl_err
step_maprun_spawn(struct step_ctx *c, struct step_frame *f, uint32_t idx, json_t *in)
{
	struct store_key k;
	key_side(&k, c->arn, f->id, "M");
	json_t *side = NULL;
	sl_err e = step_get_json(c->txn, STORE_DB_FRAMES, &k, 'M', &side);
	if (e != SL_OK)
		return e;
	const char *mrarn = step_jstr(side, "a"), *label = step_jstr(side, "l");
	char qn[256], arn[STEP_ARN_MAX], smarn[STEP_ARN_MAX], name[SL_UUID_STRLEN + 1];
	int64_t items = 1, now = sl_clock_now_ms();
	json_t *sub = NULL;
	struct step_frame *kf = NULL;
	struct step_ctx cc
	        = { .eng = c->eng, .txn = c->txn, .fx = c->fx, .err = c->err, .inline_frame = -1 };
	if (!mrarn || !label) {
		e = SL_ERR_STORE;
		goto out;
	}
	qualified_name(c, label, qn, sizeof qn);
	if ((e = sl_uuid4(name)) != SL_OK)
		goto out;
	if (sl_arn_format(arn, sizeof arn, "states", "execution", qn, name, NULL) != SL_OK
	    || sl_arn_format(smarn, sizeof smarn, "states", "stateMachine", qn, NULL) != SL_OK) {
		e = SL_ERR_INVALID_ARG;
		goto out;
	}
	if ((e = iteration_items(c, f, idx, &items)) != SL_OK)
		goto out;
	bool redriven = false;
	if ((e = redrive_child(c, f, idx, mrarn, items, &redriven)) != SL_OK || redriven)
		goto out;
	// the ItemProcessor's place in the top machine: the parent's own path, then this Map
	sub = json_object_get(c->exec, "sub") ? json_deep_copy(json_object_get(c->exec, "sub"))
	                                      : json_array();
	json_t *here = json_deep_copy(f->mp);
	if (!sub || !here || json_array_extend(sub, here)
	    || json_array_append_new(sub, json_pack("[I, i]", (json_int_t)f->st, 0))) {
		json_decref(here);
		e = SL_ERR_NOMEM;
		goto out;
	}
	json_decref(here);
	cc.exec = json_pack("{s:s, s:s, s:O, s:s, s:s, s:I, s:i, s:i, s:O, s:{s:s, s:i, s:I, "
	                    "s:i, s:s, s:I}}",
	                    "executionArn", arn, "stateMachineArn", smarn, "machine",
	                    json_object_get(c->exec, "machine"), "name", name, "status", "RUNNING",
	                    "startMs", (json_int_t)now, "nextEvent", 1, "nextFrame", 2, "sub", sub,
	                    "mapRun", "p", c->arn, "f", (int)f->id, "w", (json_int_t)f->wk, "i",
	                    (int)idx, "m", mrarn, "k", (json_int_t)items);
	if (!cc.exec) {
		e = SL_ERR_NOMEM;
		goto out;
	}
	if (json_object_get(c->exec, "revision"))
		json_object_set(cc.exec, "revision", json_object_get(c->exec, "revision"));
	cc.arn = step_jstr(cc.exec, "executionArn");
	// sub is a path from the top machine (the parent may itself be a child)
	uint32_t rev = (uint32_t)step_jint(c->exec, "revision", 0);
	cc.top = step_maprun_walk(
	        step_machine_get(c->eng, c->txn, step_jstr(c->exec, "machine"), &rev), sub);
	cc.exec_dirty = true;
	if (!cc.top || !(kf = step_frame_new()) || !(kf->mp = json_array())) {
		e = cc.top ? SL_ERR_NOMEM : SL_ERR_STORE;
		goto out;
	}
	kf->id = 1;
	kf->m = cc.top;
	kf->st = cc.top->start;
	kf->in = json_incref(in);
	kf->ph = PH_ENTER;
	json_t *d = step_payload_details("input", in);
	if (d)
		json_object_set_new(d, "roleArn",
		                    json_string("arn:aws:iam::000000000000:role/sluice"));
	e = d ? step_exec_put_input(&cc, in) : SL_ERR_NOMEM;
	if (e == SL_OK)
		e = step_event(&cc, NULL, "ExecutionStarted", "executionStartedEventDetails", d);
	else
		json_decref(d);
	if (e == SL_OK) {
		kf->prev = (uint64_t)step_jint(cc.exec, "lastEvent", 0);
		e = step_frame_save(&cc, kf);
	}
	if (e == SL_OK)
		e = index_put(c->txn, mrarn, now, arn);
	if (e == SL_OK)
		e = step_exec_save(&cc);
	if (e == SL_OK)
		e = put_link(c, f, idx, arn, items);
	if (e == SL_OK)
		e = mr_move(c->txn, mrarn, CN_PENDING, CN_RUNNING, items);
	if (e == SL_OK)
		e = step_ready_push(c->eng, arn, 1);
	if (e == SL_OK && c->fx && c->fx->status) {
		struct step_status_change sc = { .execution_arn = arn,
			                         .state_machine_arn = smarn,
			                         .name = name,
			                         .status = STEP_RUNNING,
			                         .start_ms = now,
			                         .input = in };
		c->fx->status(c->fx->arg, &sc);
	}
out:
	step_frame_free(kf);
	json_decref(sub);
	json_decref(side);
	step_ctx_done(&cc);
	return e;
}

sl_err
step_maprun_end(struct step_ctx *c, uint32_t frame, const char *status, bool only_running)
{
	char mrarn[STEP_ARN_MAX];
	sl_err e = step_maprun_arn(c, frame, mrarn);
	if (e != SL_OK || !mrarn[0])
		return e;
	json_t *rec = NULL;
	if ((e = mr_load(c->txn, mrarn, &rec)) != SL_OK)
		return e == SL_ERR_NOT_FOUND ? SL_OK : e;
	const char *cur = step_jstr(rec, "status");
	if (!only_running || (cur && strcmp(cur, "RUNNING") == 0)) {
		json_object_set_new(rec, "status", json_string(status));
		json_object_set_new(rec, "stopMs", json_integer(sl_clock_now_ms()));
		e = mr_save(c->txn, mrarn, rec);
	}
	json_decref(rec);
	return e;
}

struct link {
	char *arn;
	uint32_t idx;
	int64_t items;
};

/* The links under prefix (a frame's "C" records, or every record of an execution). */
static sl_err
scan_links(struct step_ctx *c, const struct store_key *pk, bool want_frames, struct link **out,
           size_t *n)
{
	store_cursor_t *cur = NULL;
	sl_err e = store_cursor_open(c->txn, STORE_DB_FRAMES, &cur);
	if (e != SL_OK)
		return e;
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	struct store_val k, v;
	e = store_cursor_seek_prefix(cur, pk->buf, pk->len);
	while (e == SL_OK && (e = store_cursor_next(cur, &k, &v)) == SL_OK) {
		char tag = v.len > 0 ? ((const char *)v.data)[0] : 0;
		if (tag != (want_frames ? 'M' : 'C') || k.len < 5)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			struct link *nl = sl_reallocarray(*out, cap, sizeof **out);
			if (!nl) {
				e = SL_ERR_NOMEM;
				break;
			}
			*out = nl;
		}
		struct link *l = &(*out)[*n];
		memset(l, 0, sizeof *l);
		if (want_frames) {
			// key: arn, frame id, "M"
			l->idx = store_decode_u32((const unsigned char *)k.data + k.len - 5);
		} else {
			json_error_t je;
			json_t *o = json_loadb((const char *)v.data + 1, v.len - 1, 0, &je);
			const char *a = step_jstr(o, "a");
			l->arn = a ? sl_strdup(a) : NULL;
			l->items = step_jint(o, "k", 1);
			l->idx = store_decode_u32((const unsigned char *)k.data + k.len - 4);
			json_decref(o);
			if (!l->arn) {
				e = SL_ERR_STORE;
				break;
			}
		}
		(*n)++;
	}
	store_cursor_close(cur);
	if (e != SL_ERR_NOT_FOUND) {
		for (size_t i = 0; i < *n; i++)
			sl_free((*out)[i].arn);
		sl_free(*out);
		*out = NULL;
		*n = 0;
		return e;
	}
	return SL_OK;
}

sl_err
step_maprun_abort_children(struct step_ctx *c, uint32_t frame)
{
	char mrarn[STEP_ARN_MAX];
	sl_err e = step_maprun_arn(c, frame, mrarn);
	if (e != SL_OK || !mrarn[0])
		return e;
	struct store_key pk;
	key_side(&pk, c->arn, frame, "C");
	struct link *ls = NULL;
	size_t n = 0;
	if ((e = scan_links(c, &pk, false, &ls, &n)) != SL_OK)
		return e;
	for (size_t i = 0; e == SL_OK && i < n; i++) {
		struct store_key k;
		key_link(&k, c->arn, frame, ls[i].idx);
		// the link goes first: the child's close then reports to nobody
		e = store_del(c->txn, STORE_DB_FRAMES, k.buf, k.len);
		if (e == SL_OK)
			e = mr_move(c->txn, mrarn, CN_RUNNING, CN_ABORTED, ls[i].items);
		struct step_ctx cc = { .eng = c->eng,
			               .txn = c->txn,
			               .fx = c->fx,
			               .err = c->err,
			               .inline_frame = -1 };
		if (e == SL_OK && (e = step_exec_load(&cc, ls[i].arn)) == SL_OK
		    && strcmp(step_jstr(cc.exec, "status"), "RUNNING") == 0) {
			e = step_exec_close(&cc, STEP_ABORTED, NULL, NULL, NULL);
			if (e == SL_OK)
				e = step_exec_save(&cc);
		}
		if (e == SL_ERR_EXEC_NOT_FOUND) {
			if (c->err)
				sl_error_clear(c->err);
			e = SL_OK;
		}
		step_ctx_done(&cc);
	}
	for (size_t i = 0; i < n; i++)
		sl_free(ls[i].arn);
	sl_free(ls);
	return e;
}

sl_err
step_maprun_closing(struct step_ctx *c, enum step_status st)
{
	(void)st;
	if (!json_object_get(c->exec, "mapRuns"))
		return SL_OK; // never started a map run: no scan on the common path
	struct store_key pk;
	store_key_init(&pk);
	store_key_str(&pk, c->arn);
	struct link *fr = NULL;
	size_t n = 0;
	sl_err e = scan_links(c, &pk, true, &fr, &n);
	for (size_t i = 0; e == SL_OK && i < n; i++) {
		// the Map state's MapRunAborted, as when its branch is aborted (step_fanout.c);
		// a full history has no room for it and still closes
		struct step_frame *f = NULL;
		if ((e = step_frame_load(c, fr[i].idx, &f)) == SL_OK) {
			e = step_event(c, f, "MapRunAborted", NULL, NULL);
			step_frame_free(f);
			if (e == SL_ERR_LIMIT)
				e = SL_OK;
		} else if (e == SL_ERR_NOT_FOUND) {
			e = SL_OK;
		}
		if (e == SL_OK)
			e = step_maprun_abort_children(c, fr[i].idx);
		if (e == SL_OK)
			e = step_maprun_end(c, fr[i].idx, "ABORTED", true);
	}
	sl_free(fr);
	return e;
}

static int
counter_of(enum step_status st)
{
	switch (st) {
	case STEP_SUCCEEDED: return CN_SUCCEEDED;
	case STEP_TIMED_OUT: return CN_TIMED_OUT;
	case STEP_ABORTED: return CN_ABORTED;
	default: return CN_FAILED;
	}
}

sl_err
step_maprun_child_closed(struct step_ctx *c, enum step_status st, json_t *output, const char *error,
                         const char *cause)
{
	json_t *mr = json_object_get(c->exec, "mapRun");
	if (!mr)
		return SL_OK;
	const char *parent = step_jstr(mr, "p"), *mrarn = step_jstr(mr, "m");
	uint32_t frame = (uint32_t)step_jint(mr, "f", 0), idx = (uint32_t)step_jint(mr, "i", 0);
	uint64_t pw = (uint64_t)step_jint(mr, "w", 0);
	if (!parent || !mrarn)
		return SL_ERR_STORE;
	struct store_key k;
	key_link(&k, parent, frame, idx);
	json_t *link = NULL;
	sl_err e = step_get_json(c->txn, STORE_DB_FRAMES, &k, 'C', &link);
	if (e == SL_ERR_NOT_FOUND)
		return SL_OK; // the parent stopped waiting (aborted us, or its Map ended)
	if (e != SL_OK)
		return e;
	bool mine = step_jstr(link, "a") && strcmp(step_jstr(link, "a"), c->arn) == 0;
	int64_t items = step_jint(link, "k", 1);
	json_decref(link);
	if (!mine)
		return SL_OK;
	if ((e = store_del(c->txn, STORE_DB_FRAMES, k.buf, k.len)) != SL_OK)
		return e;
	if ((e = mr_move(c->txn, mrarn, CN_RUNNING, counter_of(st), items)) != SL_OK)
		return e;
	// the closed record first: the parent may read it now (ResultWriter)
	c->exec_dirty = true;
	if ((e = step_exec_save(c)) != SL_OK)
		return e;
	char parent_arn[STEP_ARN_MAX];
	snprintf(parent_arn, sizeof parent_arn, "%s", parent);
	struct step_ctx pc
	        = { .eng = c->eng, .txn = c->txn, .fx = c->fx, .err = c->err, .inline_frame = -1 };
	struct step_frame *pf = NULL;
	e = step_exec_load(&pc, parent_arn);
	if (e == SL_ERR_EXEC_NOT_FOUND) {
		if (c->err)
			sl_error_clear(c->err);
		e = SL_OK;
		goto out;
	}
	if (e != SL_OK || strcmp(step_jstr(pc.exec, "status"), "RUNNING") != 0)
		goto out;
	if ((e = step_frame_load(&pc, frame, &pf)) == SL_ERR_NOT_FOUND) {
		e = SL_OK;
		goto out;
	}
	if (e != SL_OK)
		goto out;
	struct step_fault ft;
	step_fault_set(&ft, error, cause ? "%s" : NULL, cause);
	if (st == STEP_ABORTED && !error)
		step_fault_set(&ft, "States.Aborted", "%s", "The child execution was aborted.");
	else if (st == STEP_TIMED_OUT && !error)
		step_fault_set(&ft, "States.Timeout", NULL);
	e = step_fanout_child_done(&pc, pf, pw, idx, st == STEP_SUCCEEDED, output, &ft);
	if (e == SL_OK && !pf->gone && !pc.closed)
		e = step_frame_save(&pc, pf);
	if (e == SL_OK)
		e = step_exec_save(&pc);
out:
	step_frame_free(pf);
	step_ctx_done(&pc);
	return e;
}

/* ---- ResultWriter: the run's results as files under the item reader root --------------------- */

/* One path segment: not empty, not "." or "..", no '/'. */
static bool
segment_ok(const char *p, size_t n)
{
	return n > 0 && !(n == 1 && p[0] == '.') && !(n == 2 && p[0] == '.' && p[1] == '.')
	        && !memchr(p, '/', n);
}

/* Makes dir/seg (one level) unless it exists as a directory. */
static bool
mkdir_one(const char *path)
{
	struct stat sb;
	if (mkdir(path, 0755) == 0)
		return true;
	return errno == EEXIST && lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* One ResultWriter entry for a child (DescribeExecution-like, AWS's capitalized keys). */
static json_t *
result_entry(store_txn_t *txn, json_t *x)
{
	char start[32], stop[32];
	sl_clock_format_rfc3339(step_jint(x, "startMs", 0), start);
	sl_clock_format_rfc3339(step_jint(x, "stopMs", 0), stop);
	json_t *o
	        = json_pack("{s:O, s:O, s:O, s:O, s:s, s:s, s:I}", "ExecutionArn",
	                    json_object_get(x, "executionArn"), "Name", json_object_get(x, "name"),
	                    "StateMachineArn", json_object_get(x, "stateMachineArn"), "Status",
	                    json_object_get(x, "status"), "StartDate", start, "StopDate", stop,
	                    "RedriveCount", (json_int_t)step_jint(x, "redriveCount", 0));
	if (!o)
		return NULL;
	struct store_key k;
	step_key_input(&k, step_jstr(x, "executionArn"));
	json_t *in = NULL;
	if (step_get_json(txn, STORE_DB_EXECUTIONS, &k, 'I', &in) == SL_OK) {
		char *t = step_dumps(in);
		json_object_set_new(o, "Input", json_string(t ? t : "null"));
		json_object_set_new(o, "InputDetails", json_pack("{s:b}", "Included", 1));
		sl_free(t);
		json_decref(in);
	}
	if (json_object_get(x, "output")) {
		char *t = step_dumps(json_object_get(x, "output"));
		json_object_set_new(o, "Output", json_string(t ? t : "null"));
		json_object_set_new(o, "OutputDetails", json_pack("{s:b}", "Included", 1));
		sl_free(t);
	}
	if (step_jstr(x, "error"))
		json_object_set(o, "Error", json_object_get(x, "error"));
	if (step_jstr(x, "cause"))
		json_object_set(o, "Cause", json_object_get(x, "cause"));
	return o;
}

struct rfile {
	const char *kind; /* SUCCEEDED, FAILED, PENDING */
	char *tmp, *path, *key;
	FILE *fp;
	size_t n;
	long size;
};

sl_err
step_maprun_write_results(struct step_ctx *c, struct step_frame *f, json_t **out,
                          struct step_fault *ft)
{
	const struct sm_map *mp = &f->m->states[f->st].u.map;
	const char *root = c->eng->opt.item_reader_root;
	char mrarn[STEP_ARN_MAX], rroot[PATH_MAX], rdir[PATH_MAX];
	struct rfile files[3]
	        = { { .kind = "SUCCEEDED" }, { .kind = "FAILED" }, { .kind = "PENDING" } };
	json_t *params = NULL, *manifest = NULL;
	char *dir = NULL, *prefix_key = NULL;
	store_cursor_t *cur = NULL;
	sl_err e = step_maprun_arn(c, f->id, mrarn);
	*out = NULL;
	if (e != SL_OK)
		return e;
	if (!root || !*root) {
		step_fault_runtime(ft, f, "States.ResultWriterFailed",
		                   "ResultWriter writes local files only under a root directory, "
		                   "and none is set (sluice serve/run --item-reader-root DIR)");
		return SL_ERR_INVALID_ARG;
	}
	const char *res = step_jstr(mp->result_writer, "Resource");
	if (!res || strcmp(res, "arn:aws:states:::s3:putObject") != 0) {
		step_fault_runtime(
		        ft, f, "States.ResultWriterFailed",
		        "ResultWriter supports the resource arn:aws:states:::s3:putObject "
		        "only, not '%s'",
		        res ? res : "(missing)");
		return SL_ERR_INVALID_ARG;
	}
	json_t *pt = json_object_get(mp->result_writer, "Parameters");
	if (pt) {
		struct sm_template *t = NULL;
		json_t *ctx = step_context(c, f);
		if (!ctx)
			return SL_ERR_NOMEM;
		if ((e = sm_template_compile(pt, &t, NULL)) == SL_OK)
			e = step_io_template(c, f, t, f->eff, ctx, &params, ft);
		else if (e != SL_ERR_NOMEM)
			e = SL_ERR_INTERNAL; // validated when the machine was compiled
		sm_template_free(t);
		json_decref(ctx);
		if (e != SL_OK)
			return e;
	}
	const char *bucket = step_jstr(params, "Bucket");
	const char *prefix = step_jstr(params, "Prefix");
	e = SL_ERR_INVALID_ARG;
	if (!bucket || !segment_ok(bucket, strlen(bucket))) {
		step_fault_runtime(
		        ft, f, "States.ResultWriterFailed",
		        "ResultWriter Parameters.Bucket must be one directory name under "
		        "the item reader root, not '%s'",
		        bucket ? bucket : "(missing)");
		goto out;
	}
	// the prefix: relative segments (trailing '/' allowed), each a directory to make
	char pfx[1024] = "";
	for (const char *p = prefix ? prefix : ""; *p;) {
		size_t n = strcspn(p, "/");
		if (!segment_ok(p, n) || strlen(pfx) + n + 2 > sizeof pfx) {
			step_fault_runtime(
			        ft, f, "States.ResultWriterFailed",
			        "ResultWriter Parameters.Prefix '%s' must be a relative path "
			        "without '.' or '..' segments",
			        prefix);
			goto out;
		}
		strncat(pfx, p, n);
		strcat(pfx, "/");
		p += n;
		while (*p == '/')
			p++;
	}
	const char *id = strrchr(mrarn, ':');
	id = id ? id + 1 : "run";
	if (!realpath(root, rroot)) {
		step_fault_runtime(ft, f, "States.ResultWriterFailed",
		                   "the item reader root '%s' cannot be opened: %s", root,
		                   strerror(errno));
		goto out;
	}
	// the bucket must exist, as an S3 bucket does; the prefix and run directories are made
	char *bdir = sl_asprintf("%s/%s", rroot, bucket);
	char rb[PATH_MAX];
	bool inside = bdir && realpath(bdir, rb) && strncmp(rb, rroot, strlen(rroot)) == 0
	        && rb[strlen(rroot)] == '/';
	if (!bdir) {
		e = SL_ERR_NOMEM;
		goto out;
	}
	sl_free(bdir);
	if (!inside) {
		step_fault_runtime(ft, f, "States.ResultWriterFailed",
		                   "the bucket '%s' is not a directory under the item reader root",
		                   bucket);
		goto out;
	}
	dir = sl_strdup(rb);
	for (const char *p = pfx; dir && *p;) {
		size_t n = strcspn(p, "/");
		char *d = sl_asprintf("%s/%.*s", dir, (int)n, p);
		sl_free(dir);
		dir = d;
		if (dir && !mkdir_one(dir)) {
			step_fault_runtime(ft, f, "States.ResultWriterFailed",
			                   "cannot make the prefix '%s' under bucket '%s': %s", pfx,
			                   bucket, strerror(errno));
			goto out;
		}
		p += n + 1;
	}
	char *d = dir ? sl_asprintf("%s/%s", dir, id) : NULL;
	sl_free(dir);
	dir = d;
	if (!dir) {
		e = SL_ERR_NOMEM;
		goto out;
	}
	// no symbolic link may lead the files out of the bucket
	if (!mkdir_one(dir) || !realpath(dir, rdir) || strncmp(rdir, rb, strlen(rb)) != 0) {
		step_fault_runtime(ft, f, "States.ResultWriterFailed",
		                   "cannot make the result directory %s%s under bucket '%s'", pfx,
		                   id, bucket);
		goto out;
	}
	if (!(prefix_key = sl_asprintf("%s%s/", pfx, id))) {
		e = SL_ERR_NOMEM;
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		files[i].path = sl_asprintf("%s/%s_0.json", rdir, files[i].kind);
		files[i].tmp = sl_asprintf("%s/.%s_0.json.tmp", rdir, files[i].kind);
		files[i].key = sl_asprintf("%s%s_0.json", prefix_key, files[i].kind);
		if (!files[i].path || !files[i].tmp || !files[i].key) {
			e = SL_ERR_NOMEM;
			goto out;
		}
		if (!(files[i].fp = fopen(files[i].tmp, "w"))) {
			step_fault_runtime(ft, f, "States.ResultWriterFailed",
			                   "cannot write %s: %s", files[i].key, strerror(errno));
			goto out;
		}
		fputc('[', files[i].fp);
	}
	// the children, oldest first, one entry at a time: memory stays one record
	struct store_key pk;
	store_key_init(&pk);
	store_key_str(&pk, mrarn);
	if ((e = store_cursor_open(c->txn, STORE_DB_EXEC_INDEX, &cur)) != SL_OK)
		goto out;
	struct store_val k, v;
	e = store_cursor_seek_prefix(cur, pk.buf, pk.len);
	while (e == SL_OK && (e = store_cursor_next(cur, &k, &v)) == SL_OK) {
		char child[STEP_ARN_MAX];
		if (!step_index_arn(&k, pk.len, child))
			continue;
		struct store_key xk;
		step_key_exec(&xk, child);
		json_t *x = NULL;
		if (step_get_json(c->txn, STORE_DB_EXECUTIONS, &xk, 'X', &x) != SL_OK)
			continue;
		const char *st = step_jstr(x, "status");
		struct rfile *rf = !st || strcmp(st, "RUNNING") == 0 ? &files[2]
		        : strcmp(st, "SUCCEEDED") == 0               ? &files[0]
		                                                     : &files[1];
		json_t *ent = result_entry(c->txn, x);
		json_decref(x);
		char *t = ent ? json_dumps(ent, JSON_COMPACT) : NULL;
		json_decref(ent);
		if (!t) {
			e = SL_ERR_NOMEM;
			break;
		}
		if (rf->n++)
			fputc(',', rf->fp);
		fputs(t, rf->fp);
		free(t);
	}
	if (e != SL_ERR_NOT_FOUND)
		goto out;
	e = SL_ERR_INVALID_ARG;
	manifest = json_pack("{s:s, s:s, s:{s:[], s:[], s:[]}}", "DestinationBucket", bucket,
	                     "MapRunArn", mrarn, "ResultFiles", "FAILED", "PENDING", "SUCCEEDED");
	if (!manifest) {
		e = SL_ERR_NOMEM;
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		fputc(']', files[i].fp);
		files[i].size = ftell(files[i].fp);
		bool bad = ferror(files[i].fp) != 0;
		bad |= fclose(files[i].fp) != 0;
		files[i].fp = NULL;
		// an empty kind has no file, as AWS writes none
		if (!bad && files[i].n == 0) {
			unlink(files[i].tmp);
			continue;
		}
		if (bad || rename(files[i].tmp, files[i].path) != 0) {
			step_fault_runtime(ft, f, "States.ResultWriterFailed",
			                   "cannot write %s: %s", files[i].key, strerror(errno));
			goto out;
		}
		json_array_append_new(
		        json_object_get(json_object_get(manifest, "ResultFiles"), files[i].kind),
		        json_pack("{s:s, s:I}", "Key", files[i].key, "Size",
		                  (json_int_t)files[i].size));
	}
	char *mpath = sl_asprintf("%s/manifest.json", rdir);
	char *mtmp = sl_asprintf("%s/.manifest.json.tmp", rdir);
	bool ok = mpath && mtmp
	        && json_dump_file(manifest, mtmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0
	        && rename(mtmp, mpath) == 0;
	if (!ok && mpath && mtmp)
		step_fault_runtime(ft, f, "States.ResultWriterFailed",
		                   "cannot write %smanifest.json: %s", prefix_key, strerror(errno));
	sl_free(mpath);
	sl_free(mtmp);
	if (!ok)
		goto out;
	char mkey[1200];
	snprintf(mkey, sizeof mkey, "%smanifest.json", prefix_key);
	*out = json_pack("{s:s, s:{s:s, s:s}}", "MapRunArn", mrarn, "ResultWriterDetails", "Bucket",
	                 bucket, "Key", mkey);
	e = *out ? SL_OK : SL_ERR_NOMEM;
out:
	if (cur)
		store_cursor_close(cur);
	for (int i = 0; i < 3; i++) {
		if (files[i].fp) {
			fclose(files[i].fp);
			unlink(files[i].tmp);
		}
		sl_free(files[i].tmp);
		sl_free(files[i].path);
		sl_free(files[i].key);
	}
	json_decref(manifest);
	json_decref(params);
	sl_free(dir);
	sl_free(prefix_key);
	return e;
}

sl_err
step_map_child_definition(step_engine_t *eng, store_txn_t *txn, const char *arn,
                          const char *definition, json_t **out, struct sl_error *err)
{
	struct step_ctx c = { .eng = eng, .txn = txn, .err = err, .inline_frame = -1 };
	*out = NULL;
	sl_err e = step_exec_load(&c, arn);
	if (e != SL_OK)
		return e;
	json_t *mr = json_object_get(c.exec, "mapRun"), *sub = json_object_get(c.exec, "sub");
	if (!mr || !json_is_array(sub)) {
		step_ctx_done(&c);
		return SL_ERR_NOT_FOUND;
	}
	uint32_t rev = (uint32_t)step_jint(c.exec, "revision", 0);
	const struct sm_machine *m = step_machine_get(eng, txn, step_jstr(c.exec, "machine"), &rev);
	json_t *tree = NULL;
	struct sm_problems pr = { 0 };
	e = sm_definition_load(definition, strlen(definition), NULL, SM_FORMAT_AUTO, &tree, NULL,
	                       &pr);
	sm_problems_clear(&pr);
	json_t *node = tree;
	size_t i;
	json_t *step;
	// the same walk as step_maprun_walk, by state names in the definition as written
	json_array_foreach(sub, i, step)
	{
		size_t si = (size_t)json_integer_value(json_array_get(step, 0));
		size_t b = (size_t)json_integer_value(json_array_get(step, 1));
		if (!m || !node || si >= m->n_states) {
			node = NULL;
			break;
		}
		const struct sm_state *st = &m->states[si];
		json_t *sj = json_object_get(json_object_get(node, "States"), st->name);
		if (st->type == SM_STATE_MAP) {
			json_t *p = json_object_get(sj, "ItemProcessor");
			node = p ? p : json_object_get(sj, "Iterator");
			m = st->u.map.processor;
		} else if (st->type == SM_STATE_PARALLEL && b < st->u.parallel.n_branches) {
			node = json_array_get(json_object_get(sj, "Branches"), b);
			m = st->u.parallel.branches[b];
		} else {
			node = NULL;
		}
	}
	json_t *o = NULL;
	if (e == SL_OK && node) {
		char *text = step_dumps(node);
		const char *smarn = step_jstr(c.exec, "stateMachineArn");
		const char *name = smarn ? strstr(smarn, ":stateMachine:") : NULL;
		name = name ? name + strlen(":stateMachine:") : "";
		const char *label = strchr(name, '/');
		o = text ? json_pack("{s:s, s:s, s:s, s:s, s:O}", "definition", text,
		                     "stateMachineArn", smarn ? smarn : "", "name", name, "label",
		                     label ? label + 1 : "", "mapRunArn", json_object_get(mr, "m"))
		         : NULL;
		sl_free(text);
		e = o ? SL_OK : SL_ERR_NOMEM;
	} else if (e == SL_OK || e == SL_ERR_PARSE) {
		e = sl_error_set(err, SL_ERR_SM_NOT_FOUND,
		                 "the ItemProcessor of '%s' is not in its machine's definition",
		                 arn);
	}
	json_decref(tree);
	step_ctx_done(&c);
	*out = o;
	return e;
}

/* ---- reads and UpdateMapRun ---------------------------------------------------------------- */

static json_t *
counts_out(json_t *o)
{
	json_t *r = json_object();
	if (!r)
		return NULL;
	for (int i = 0; i < CN_COUNT; i++)
		json_object_set_new(r, counter_names[i],
		                    json_integer(step_jint(o, counter_names[i], 0)));
	json_object_set_new(r, "total", json_integer(step_jint(o, "total", 0)));
	json_object_set_new(r, "resultsWritten", json_integer(0));
	json_object_set_new(r, "failuresNotRedrivable", json_integer(0));
	json_object_set_new(r, "pendingRedrive", json_integer(0));
	return r;
}

sl_err
step_describe_map_run(step_engine_t *eng, store_txn_t *txn, const char *arn, json_t **out,
                      struct sl_error *err)
{
	(void)eng;
	json_t *rec = NULL;
	sl_err e = mr_load(txn, arn, &rec);
	if (e == SL_ERR_NOT_FOUND)
		return sl_error_set(err, SL_ERR_MAP_RUN_NOT_FOUND, "Map Run Does Not Exist: '%s'",
		                    arn);
	if (e != SL_OK)
		return sl_error_set(err, e, "map run record of '%s' is unreadable", arn);
	json_t *o = json_pack(
	        "{s:O, s:O, s:O, s:I, s:I, s:O, s:o, s:o, s:I}", "mapRunArn",
	        json_object_get(rec, "mapRunArn"), "executionArn",
	        json_object_get(rec, "executionArn"), "status", json_object_get(rec, "status"),
	        "startMs", (json_int_t)step_jint(rec, "startMs", 0), "maxConcurrency",
	        (json_int_t)step_jint(rec, "maxConcurrency", 0), "toleratedFailurePercentage",
	        json_object_get(rec, "toleratedFailurePercentage"), "itemCounts",
	        counts_out(json_object_get(rec, "ic")), "executionCounts",
	        counts_out(json_object_get(rec, "ec")), "toleratedFailureCount",
	        (json_int_t)step_jint(rec, "toleratedFailureCount", 0));
	if (o) {
		json_object_set_new(o, "redriveCount",
		                    json_integer(step_jint(rec, "redriveCount", 0)));
		if (json_object_get(rec, "stopMs"))
			json_object_set_new(o, "stopMs", json_integer(step_jint(rec, "stopMs", 0)));
		if (json_object_get(rec, "redriveMs"))
			json_object_set_new(o, "redriveMs",
			                    json_integer(step_jint(rec, "redriveMs", 0)));
		json_object_set(o, "stateMachineArn", json_object_get(rec, "stateMachineArn"));
		json_object_set(o, "childMachineArn", json_object_get(rec, "childMachineArn"));
	}
	json_decref(rec);
	if (!o)
		return SL_ERR_NOMEM;
	*out = o;
	return SL_OK;
}

sl_err
step_list_map_runs(step_engine_t *eng, store_txn_t *txn, const char *exec_arn, size_t max,
                   const char *next_token, json_t **out, char **next, struct sl_error *err)
{
	*out = NULL;
	*next = NULL;
	struct store_key xk;
	step_key_exec(&xk, exec_arn);
	struct store_val xv;
	sl_err e = store_get(txn, STORE_DB_EXECUTIONS, xk.buf, xk.len, &xv);
	if (e == SL_OK && xv.len == 1 && ((const char *)xv.data)[0] == STEP_TOMBSTONE)
		e = SL_ERR_NOT_FOUND; // being deleted by the retention
	if (e == SL_ERR_NOT_FOUND)
		return sl_error_set(err, SL_ERR_EXEC_NOT_FOUND, "Execution Does Not Exist: '%s'",
		                    exec_arn);
	if (e != SL_OK)
		return e;
	if (max == 0)
		max = 100;
	struct store_key pk;
	store_key_init(&pk);
	store_key_str(&pk, exec_arn);
	// tokens: "m" + hex of the index key to continue from
	unsigned char resume[STORE_MAX_KEY];
	size_t rlen = 0;
	if (next_token && !step_page_token_decode(next_token, 'm', &pk, resume, &rlen))
		return sl_error_set(err, SL_ERR_INVALID_TOKEN, "Invalid Token: '%s'", next_token);
	store_cursor_t *cur = NULL;
	if ((e = store_cursor_open(txn, STORE_DB_EXEC_INDEX, &cur)) != SL_OK)
		return e;
	json_t *arr = json_array();
	if (!arr) {
		store_cursor_close(cur);
		return SL_ERR_NOMEM;
	}
	// newest first, as ListExecutions
	e = rlen ? store_cursor_seek(cur, resume, rlen)
	         : store_cursor_seek_last_prefix(cur, pk.buf, pk.len);
	struct store_val k, v;
	while (e == SL_OK && (e = store_cursor_prev(cur, &k, &v)) == SL_OK) {
		if (k.len < pk.len + 9 || memcmp(k.data, pk.buf, pk.len) != 0) {
			e = SL_ERR_NOT_FOUND;
			break;
		}
		if (json_array_size(arr) == max) {
			e = (*next = step_page_token_encode('m', &k)) ? SL_ERR_NOT_FOUND
			                                              : SL_ERR_NOMEM;
			break;
		}
		char buf[STEP_ARN_MAX];
		if (!step_index_arn(&k, pk.len, buf))
			continue;
		json_t *d = NULL;
		if (step_describe_map_run(eng, txn, buf, &d, NULL) != SL_OK)
			continue;
		json_t *it = json_pack("{s:O, s:O, s:O, s:O}", "executionArn",
		                       json_object_get(d, "executionArn"), "mapRunArn",
		                       json_object_get(d, "mapRunArn"), "stateMachineArn",
		                       json_object_get(d, "stateMachineArn"), "startMs",
		                       json_object_get(d, "startMs"));
		if (it && json_object_get(d, "stopMs"))
			json_object_set(it, "stopMs", json_object_get(d, "stopMs"));
		json_decref(d);
		if (!it || json_array_append_new(arr, it))
			e = SL_ERR_NOMEM;
	}
	store_cursor_close(cur);
	if (e != SL_ERR_NOT_FOUND) {
		json_decref(arr);
		sl_free(*next);
		*next = NULL;
		return sl_error_set(err, e, "listing the map runs of '%s' failed", exec_arn);
	}
	*out = arr;
	return SL_OK;
}

sl_err
step_update_map_run(step_engine_t *eng, store_batch_t *b, const char *arn,
                    const struct step_map_run_update *u, const struct step_effects *fx,
                    struct sl_error *err)
{
	store_txn_t *txn = store_batch_txn(b);
	json_t *rec = NULL;
	sl_err e = mr_load(txn, arn, &rec);
	if (e == SL_ERR_NOT_FOUND)
		return sl_error_set(err, SL_ERR_MAP_RUN_NOT_FOUND, "Map Run Does Not Exist: '%s'",
		                    arn);
	if (e != SL_OK)
		return e;
	if (u->max_concurrency >= 0)
		json_object_set_new(rec, "maxConcurrency", json_integer(u->max_concurrency));
	if (u->tolerated_failure_count >= 0)
		json_object_set_new(rec, "toleratedFailureCount",
		                    json_integer(u->tolerated_failure_count));
	if (u->tolerated_failure_percentage >= 0)
		json_object_set_new(rec, "toleratedFailurePercentage",
		                    json_real(u->tolerated_failure_percentage));
	e = mr_save(txn, arn, rec);
	const char *status = step_jstr(rec, "status");
	bool running = status && strcmp(status, "RUNNING") == 0;
	char parent[STEP_ARN_MAX];
	snprintf(parent, sizeof parent, "%s",
	         step_jstr(rec, "executionArn") ? step_jstr(rec, "executionArn") : "");
	uint32_t frame = (uint32_t)step_jint(rec, "frame", 0);
	json_decref(rec);
	if (e != SL_OK || !running || !frame)
		return e;
	// the running Map takes the new limits: more children may start now
	struct step_ctx c = { .eng = eng, .txn = txn, .fx = fx, .err = err, .inline_frame = -1 };
	struct step_frame *f = NULL;
	char cur[STEP_ARN_MAX] = "";
	e = step_exec_load(&c, parent);
	// the frame may have moved on to another Map since: only its current run changes
	if (e == SL_OK && strcmp(step_jstr(c.exec, "status"), "RUNNING") == 0
	    && (e = step_maprun_arn(&c, frame, cur)) == SL_OK && strcmp(cur, arn) == 0
	    && (e = step_frame_load(&c, frame, &f)) == SL_OK && f->ph == PH_KIDS) {
		if (u->max_concurrency >= 0)
			f->maxc = u->max_concurrency == 0
			                || u->max_concurrency > eng->opt.map_concurrency_cap
			        ? eng->opt.map_concurrency_cap
			        : (uint32_t)u->max_concurrency;
		if (u->tolerated_failure_count >= 0)
			f->tol_n = u->tolerated_failure_count;
		if (u->tolerated_failure_percentage >= 0)
			f->tol_p = u->tolerated_failure_percentage;
		e = step_fanout_spawn(&c, f);
		if (e == SL_OK && !f->gone && !c.closed)
			e = step_frame_save(&c, f);
		if (e == SL_OK)
			e = step_exec_save(&c);
	}
	if (e == SL_ERR_NOT_FOUND || e == SL_ERR_EXEC_NOT_FOUND) {
		if (err)
			sl_error_clear(err);
		e = SL_OK;
	}
	step_frame_free(f);
	step_ctx_done(&c);
	return e;
}
