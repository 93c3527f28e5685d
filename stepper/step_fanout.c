/*
 * step_fanout.c - Parallel branches and Map iterations: child frames created lazily (at
 * most MaxConcurrency alive), their results kept under the parent's key until all are in,
 * tolerated failures, and the abort of the other children when one fails the state.
 * A DISTRIBUTED Map's iterations are child executions instead of child frames
 * (step_maprun.c); the counters and results here are the same.
 *
 * Results: a child's result is stored with tag 'R' when it succeeded and 'X' when it failed
 * (a tolerated failure's {"Error","Cause"}), so that a failed top-level fan-out can keep the
 * succeeded ones for RedriveExecution (step_redrive.c) and a redrive re-runs only the rest.
 */
#include <math.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "stepper/step_int.h"
#include "stepper/step_maprun.h"

static bool
is_map(const struct step_frame *f)
{
	return f->m->states[f->st].type == SM_STATE_MAP;
}

static bool
is_distributed(const struct step_frame *f)
{
	return is_map(f) && f->m->states[f->st].u.map.mode == SM_MAP_DISTRIBUTED;
}

static sl_err
simple_event(struct step_ctx *c, struct step_frame *f, const char *what)
{
	char type[48];
	snprintf(type, sizeof type, "%sState%s", is_map(f) ? "Map" : "Parallel", what);
	return step_event(c, f, type, NULL, NULL);
}

static sl_err
iteration_event(struct step_ctx *c, struct step_frame *f, const char *what, uint32_t idx)
{
	if (!is_map(f) || is_distributed(f))
		return SL_OK;
	char type[48], key[64];
	snprintf(type, sizeof type, "MapIteration%s", what);
	snprintf(key, sizeof key, "mapIteration%sEventDetails", what);
	json_t *d = json_pack("{s:s, s:i}", "name", f->m->states[f->st].name, "index", (int)idx);
	return d ? step_event(c, f, type, key, d) : SL_ERR_NOMEM;
}

/* The items of a Map: ItemsPath over the effective input, which must be an array. */
static sl_err
map_items(struct step_ctx *c, struct step_frame *f, json_t *ctx, json_t **items,
          struct step_fault *ft)
{
	const struct sm_map *mp = &f->m->states[f->st].u.map;
	sl_err e0 = step_frame_eff(c, f);
	if (e0 != SL_OK)
		return e0;
	if (!mp->items_path) {
		*items = json_incref(f->eff);
	} else {
		struct sm_fault sf = { 0 };
		sl_err e = sm_path_get_fault(mp->items_path, f->eff, ctx, items, &sf);
		if (e == SL_ERR_NOT_FOUND) {
			step_fault_runtime(ft, f, "States.Runtime", "%s", sf.cause);
			return SL_ERR_INVALID_ARG;
		}
		if (e != SL_OK)
			return e;
	}
	if (!json_is_array(*items)) {
		char *s = step_dumps(*items);
		step_fault_runtime(ft, f, "States.Runtime",
		                   "Map state input must be an array but was: %s", s ? s : "?");
		sl_free(s);
		json_decref(*items);
		*items = NULL;
		return SL_ERR_INVALID_ARG;
	}
	return SL_OK;
}

/* A ...Path number field of Map, with AWS's run-time checks. */
static sl_err
map_number(struct step_frame *f, struct sm_path *p, json_t *ctx, const char *field, bool integer,
           double max, double *out, struct step_fault *ft)
{
	json_t *v = NULL;
	struct sm_fault sf = { 0 };
	sl_err e = sm_path_get_fault(p, f->eff, ctx, &v, &sf);
	if (e == SL_ERR_NOT_FOUND) {
		step_fault_runtime(ft, f, "States.Runtime", "%s", sf.cause);
		return SL_ERR_INVALID_ARG;
	}
	if (e != SL_OK)
		return e;
	char *s = step_dumps(v);
	e = SL_OK;
	if (integer ? !json_is_integer(v) : !json_is_number(v)) {
		step_fault_runtime(
		        ft, f, "States.Runtime",
		        "The %s field refers to value \"%s\" which is not a valid %s: %s", field,
		        s ? s : "?", integer ? "integer" : "float", sm_path_text(p));
		e = SL_ERR_INVALID_ARG;
	} else if (json_number_value(v) < 0) {
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)(strlen(field) - 4), field);
		step_fault_runtime(ft, f, "States.Runtime", "%s cannot be negative.", name);
		e = SL_ERR_INVALID_ARG;
	} else if (max > 0 && json_number_value(v) > max) {
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)(strlen(field) - 4), field);
		step_fault_runtime(ft, f, "States.Runtime", "%s cannot be greater than %g.", name,
		                   max);
		e = SL_ERR_INVALID_ARG;
	} else {
		*out = json_number_value(v);
	}
	sl_free(s);
	json_decref(v);
	return e;
}

static sl_err fanout_complete(struct step_ctx *c, struct step_frame *f);

/* A child's result: 'R' (succeeded) or 'X' (failed); *ok (may be NULL) tells which. */
static sl_err
get_result(struct step_ctx *c, const struct store_key *k, json_t **out, bool *ok)
{
	struct store_val v;
	sl_err e = store_get(c->txn, STORE_DB_FRAMES, k->buf, k->len, &v);
	if (e != SL_OK)
		return e;
	char tag = v.len > 0 ? ((const char *)v.data)[0] : 0;
	if (tag != 'R' && tag != 'X')
		return SL_ERR_STORE;
	if (ok)
		*ok = tag == 'R';
	json_error_t je;
	*out = json_loadb((const char *)v.data + 1, v.len - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL,
	                  &je);
	return *out ? SL_OK : SL_ERR_STORE;
}

static sl_err
has_result(struct step_ctx *c, struct step_frame *f, uint32_t idx, bool *have)
{
	struct store_key k;
	step_key_result(&k, c->arn, f->id, idx);
	struct store_val v;
	sl_err e = store_get(c->txn, STORE_DB_FRAMES, k.buf, k.len, &v);
	*have = e == SL_OK;
	return e == SL_ERR_NOT_FOUND ? SL_OK : e;
}

/* Deletes every result record of f (a top frame may hold those of a failed attempt). */
static sl_err
drop_stale(struct step_ctx *c, struct step_frame *f)
{
	struct store_key pk;
	step_key_frame(&pk, c->arn, f->id);
	store_key_raw(&pk, "R", 1);
	return store_del_prefix(c->txn, STORE_DB_FRAMES, pk.buf, pk.len);
}

/* A redriven execution enters its failed fan-out again: the succeeded results the failed
 * run kept (step_redrive_keep) become f's results, counted as done. mr receives the map
 * run to redrive ("" when none). */
static sl_err
take_kept(struct step_ctx *c, struct step_frame *f, char mr[STEP_ARN_MAX])
{
	json_t *fan = json_object_get(c->exec, "rdFan");
	if (!fan || step_jint(fan, "st", -1) != (int64_t)f->st)
		return SL_OK;
	if (step_jstr(fan, "mr"))
		snprintf(mr, STEP_ARN_MAX, "%s", step_jstr(fan, "mr"));
	struct store_key pk;
	step_key_exec(&pk, c->arn);
	store_key_raw(&pk, "K", 1);
	store_cursor_t *cur = NULL;
	sl_err e = store_cursor_open(c->txn, STORE_DB_EXECUTIONS, &cur);
	if (e != SL_OK)
		return e;
	uint32_t kept = 0;
	struct store_val k, v;
	e = store_cursor_seek_prefix(cur, pk.buf, pk.len);
	while (e == SL_OK && (e = store_cursor_next(cur, &k, &v)) == SL_OK) {
		uint32_t idx = k.len == pk.len + 4
		        ? store_decode_u32((const unsigned char *)k.data + pk.len)
		        : UINT32_MAX;
		if (idx < f->n) {
			struct store_key rk;
			step_key_result(&rk, c->arn, f->id, idx);
			if ((e = store_put(c->txn, STORE_DB_FRAMES, rk.buf, rk.len, v.data, v.len))
			    != SL_OK)
				break;
			kept++;
		}
		e = store_cursor_del(cur);
	}
	store_cursor_close(cur);
	if (e != SL_ERR_NOT_FOUND)
		return e;
	json_object_del(c->exec, "rdFan");
	if (kept && json_object_set_new(c->exec, "rdKept", json_integer(f->id)))
		return SL_ERR_NOMEM;
	c->exec_dirty = true;
	f->done = kept;
	return SL_OK;
}

sl_err
step_fanout_start(struct step_ctx *c, struct step_frame *f, json_t *eff, json_t *ctx)
{
	const struct sm_state *s = &f->m->states[f->st];
	struct step_fault ft;
	sl_err e = SL_OK;
	json_decref(f->eff);
	f->eff = NULL;
	json_decref(f->ferr);
	f->ferr = NULL;
	// a top frame keeps a failed fan-out's results (for a redrive): an earlier attempt's go
	if (f->parent < 0 && (e = drop_stale(c, f)) != SL_OK)
		return e;
	// a new generation: children of an earlier attempt of this state report into nothing
	f->wk++;
	f->nx = f->alive = f->done = f->failed = 0;
	f->tol_n = -1;
	f->tol_p = -1;
	if (s->type == SM_STATE_PARALLEL) {
		if (s->parameters)
			e = step_io_template(c, f, s->parameters, eff, ctx, &f->eff, &ft);
		else
			f->eff = json_incref(eff);
		if (e != SL_OK)
			goto fail;
		f->n = f->maxc = (uint32_t)s->u.parallel.n_branches;
		if ((e = simple_event(c, f, "Started")) != SL_OK)
			return e;
	} else {
		const struct sm_map *mp = &s->u.map;
		f->eff = json_incref(eff);
		json_t *items = NULL;
		if (!mp->item_reader && (e = map_items(c, f, ctx, &items, &ft)) != SL_OK)
			goto fail;
		if (mp->item_reader || mp->item_batcher) {
			// read or batched items get a record each: iterations fetch theirs lazily
			e = step_reader_run(c, f, ctx, items, &f->n, &ft);
		} else if (json_array_size(items) > UINT32_MAX) {
			step_fault_runtime(&ft, f, "States.Runtime", "too many items");
			e = SL_ERR_INVALID_ARG;
		} else {
			f->n = (uint32_t)json_array_size(items);
		}
		json_decref(items);
		if (e != SL_OK)
			goto fail;
		double d;
		f->maxc = (uint32_t)mp->max_concurrency;
		if (mp->max_concurrency_path) {
			if ((e = map_number(f, mp->max_concurrency_path, ctx, "MaxConcurrencyPath",
			                    true, 0, &d, &ft))
			    != SL_OK)
				goto fail;
			f->maxc = d > 4294967295.0 ? 0 : (uint32_t)d;
		}
		if (mp->has_tolerated_failure_count)
			f->tol_n = mp->tolerated_failure_count;
		if (mp->tolerated_failure_count_path) {
			if ((e = map_number(f, mp->tolerated_failure_count_path, ctx,
			                    "ToleratedFailureCountPath", true, 0, &d, &ft))
			    != SL_OK)
				goto fail;
			f->tol_n = (int64_t)d;
		}
		if (mp->has_tolerated_failure_percentage)
			f->tol_p = mp->tolerated_failure_percentage;
		if (mp->tolerated_failure_percentage_path) {
			if ((e = map_number(f, mp->tolerated_failure_percentage_path, ctx,
			                    "ToleratedFailurePercentagePath", false, 100, &d, &ft))
			    != SL_OK)
				goto fail;
			f->tol_p = d;
		}
		if (f->maxc == 0 || f->maxc > c->eng->opt.map_concurrency_cap)
			f->maxc = c->eng->opt.map_concurrency_cap;
		json_t *d2 = json_pack("{s:i}", "length", (int)f->n);
		if (!d2)
			return SL_ERR_NOMEM;
		if ((e = step_event(c, f, "MapStateStarted", "mapStateStartedEventDetails", d2))
		    != SL_OK)
			return e;
	}
	// a redriven execution: the results its last run kept come back, their children do not
	char redrive_mr[STEP_ARN_MAX] = "";
	if (f->parent < 0 && (e = take_kept(c, f, redrive_mr)) != SL_OK)
		return e;
	if (is_distributed(f)
	    && (e = step_maprun_start(c, f, f->done, redrive_mr[0] ? redrive_mr : NULL)) != SL_OK)
		return e;
	f->ph = PH_KIDS;
	if (f->n == 0)
		return step_fanout_child_done(c, f, f->wk, 0, true, NULL, NULL);
	// written once; children are created from it lazily, maybe after a restart
	struct store_key k;
	step_key_eff(&k, c->arn, f->id);
	if ((e = step_put_json(c->txn, STORE_DB_FRAMES, &k, 'E', f->eff)) != SL_OK)
		return e;
	char key[STEP_ARN_MAX + 64];
	snprintf(key, sizeof key, "E|%s|%u|%llu", c->arn, f->id, (unsigned long long)f->wk);
	step_cache_put(c->eng, key, f->eff);
	step_key_frame(&k, c->arn, f->id);
	store_key_raw(&k, "N", 1);
	if ((e = step_put_json(c->txn, STORE_DB_FRAMES, &k, 'N', f->in)) != SL_OK)
		return e;
	snprintf(key, sizeof key, "N|%s|%u|%llu", c->arn, f->id, (unsigned long long)f->wk);
	step_cache_put(c->eng, key, f->in);
	f->in_aux = true;
	if ((e = step_fanout_spawn(c, f)) != SL_OK || f->ph != PH_KIDS)
		return e;
	// every child was kept from before the redrive: nothing will report
	return f->done + f->failed == f->n ? fanout_complete(c, f) : SL_OK;
fail:
	if (e == SL_ERR_INVALID_ARG && is_map(f)) {
		sl_err d = step_reader_drop(c, f); // item records of a Map that did not start
		if (d != SL_OK)
			return d;
	}
	if (e == SL_ERR_INVALID_ARG)
		return step_state_error(c, f, &ft);
	return e;
}

/* The input of child idx: the branch input, or the Map item through ItemSelector. */
static sl_err
child_input(struct step_ctx *c, struct step_frame *f, uint32_t idx, json_t *item, json_t **out,
            struct step_fault *ft)
{
	if (!is_map(f)) {
		*out = json_incref(f->eff);
		return SL_OK;
	}
	const struct sm_map *mp = &f->m->states[f->st].u.map;
	if (!mp->item_selector || mp->item_batcher) { // batched items were selected before
		*out = json_incref(item);
		return SL_OK;
	}
	json_t *ctx = step_context(c, f);
	json_t *mi = json_pack("{s:{s:i, s:O}}", "Item", "Index", (int)idx, "Value", item);
	if (!ctx || !mi || json_object_set_new(ctx, "Map", mi)) {
		json_decref(ctx);
		return SL_ERR_NOMEM;
	}
	sl_err e = step_io_template(c, f, mp->item_selector, f->eff, ctx, out, ft);
	json_decref(ctx);
	return e;
}

sl_err
step_fanout_spawn(struct step_ctx *c, struct step_frame *f)
{
	const struct sm_state *s = &f->m->states[f->st];
	json_t *items = NULL;
	struct step_fault ft;
	sl_err e = SL_OK;
	if (f->alive < f->maxc && f->nx < f->n && (e = step_frame_eff(c, f)) != SL_OK)
		return e;
	// read or batched items are fetched one by one from their records
	const struct sm_map *mp = is_map(f) ? &s->u.map : NULL;
	bool kept = mp && (mp->item_reader || mp->item_batcher);
	if (is_map(f) && !kept && f->alive < f->maxc && f->nx < f->n) {
		json_t *ctx = step_context(c, f);
		if (!ctx)
			return SL_ERR_NOMEM;
		e = map_items(c, f, ctx, &items, &ft);
		json_decref(ctx);
		if (e != SL_OK)
			goto fail;
	}
	bool redo = f->parent < 0 && step_jint(c->exec, "rdKept", 0) == (int64_t)f->id;
	while (f->alive < f->maxc && f->nx < f->n) {
		uint32_t idx = f->nx;
		json_t *in = NULL, *one = NULL;
		bool have = false;
		if (redo && (e = has_result(c, f, idx, &have)) != SL_OK)
			goto fail;
		if (have) {
			f->nx++;
			continue;
		}
		if (kept && (e = step_reader_get(c, f, idx, &one)) != SL_OK)
			goto fail;
		e = child_input(c, f, idx, kept ? one : json_array_get(items, idx), &in, &ft);
		json_decref(one);
		if (e != SL_OK)
			goto fail;
		if (is_distributed(f)) {
			e = step_maprun_spawn(c, f, idx, in);
			json_decref(in);
			if (e != SL_OK)
				goto fail;
			f->nx++;
			f->alive++;
			continue;
		}
		struct step_frame *k = step_frame_new();
		if (!k) {
			json_decref(in);
			e = SL_ERR_NOMEM;
			goto fail;
		}
		k->id = step_next_frame_id(c);
		k->parent = f->id;
		k->pidx = idx;
		k->depth = f->depth + 1;
		k->mp = json_deep_copy(f->mp);
		json_t *step = json_pack("[I, i]", (json_int_t)f->st, is_map(f) ? 0 : (int)idx);
		if (!k->mp || !step || json_array_append_new(k->mp, step)) {
			if (!k->mp)
				json_decref(step); /* append_new takes step only when it runs */
			json_decref(in);
			step_frame_free(k);
			e = SL_ERR_NOMEM;
			goto fail;
		}
		k->m = is_map(f) ? s->u.map.processor : s->u.parallel.branches[idx];
		k->st = k->m->start;
		k->in = in;
		k->ph = PH_ENTER;
		k->pw = f->wk;
		if ((e = iteration_event(c, f, "Started", idx)) == SL_OK) {
			k->prev = f->prev;
			e = step_frame_save(c, k);
		}
		if (e == SL_OK)
			e = step_ready_push(c->eng, c->arn, k->id);
		step_frame_free(k);
		if (e != SL_OK)
			goto fail;
		f->nx++;
		f->alive++;
	}
	json_decref(items);
	return SL_OK;
fail:
	json_decref(items);
	if (e == SL_ERR_INVALID_ARG) {
		if ((e = step_kill_children(c, f)) != SL_OK)
			return e;
		if (is_distributed(f) && (e = step_maprun_end(c, f->id, "FAILED", false)) != SL_OK)
			return e;
		f->ph = PH_RERUN;
		return step_state_error(c, f, &ft);
	}
	return e;
}

static sl_err kill_frame(struct step_ctx *c, struct step_frame *parent, uint32_t id);

/* Deletes what f's fan-out wrote; keep: its children's results stay (a top frame failing
 * keeps them for a redrive, step_redrive_keep). */
static sl_err
drop_results(struct step_ctx *c, struct step_frame *f, bool keep)
{
	for (uint32_t i = 0; !keep && i < f->nx; i++) {
		struct store_key k;
		step_key_result(&k, c->arn, f->id, i);
		sl_err e = store_del(c->txn, STORE_DB_FRAMES, k.buf, k.len);
		if (e != SL_OK)
			return e;
	}
	struct store_key k;
	step_key_eff(&k, c->arn, f->id);
	sl_err e = store_del(c->txn, STORE_DB_FRAMES, k.buf, k.len);
	if (e == SL_OK)
		e = step_frame_in(c, f);
	step_key_frame(&k, c->arn, f->id);
	store_key_raw(&k, "N", 1);
	if (e == SL_OK)
		e = store_del(c->txn, STORE_DB_FRAMES, k.buf, k.len);
	if (e == SL_OK && is_map(f))
		e = step_reader_drop(c, f);
	f->in_aux = false;
	return e;
}

/* The ids of f's live children: a scan of the execution's frames (aborts are rare, so the
 * frames do not keep a list that every child completion would have to rewrite). */
static sl_err
children_of(struct step_ctx *c, struct step_frame *f, uint32_t **ids, size_t *n)
{
	struct store_key pk;
	store_key_init(&pk);
	store_key_str(&pk, c->arn);
	store_cursor_t *cur = NULL;
	sl_err e = store_cursor_open(c->txn, STORE_DB_FRAMES, &cur);
	if (e != SL_OK)
		return e;
	size_t cap = 0;
	*ids = NULL;
	*n = 0;
	struct store_val k, v;
	e = store_cursor_seek_prefix(cur, pk.buf, pk.len);
	while (e == SL_OK && (e = store_cursor_next(cur, &k, &v)) == SL_OK) {
		if (v.len < 2 || ((const char *)v.data)[0] != 'F')
			continue;
		json_error_t je;
		json_t *o = json_loadb((const char *)v.data + 1, v.len - 1, 0, &je);
		if (!o) {
			e = SL_ERR_STORE;
			break;
		}
		bool mine = step_jint(o, "p", -1) == (int64_t)f->id
		        && (uint64_t)step_jint(o, "pw", 0) == f->wk;
		json_decref(o);
		if (!mine)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			uint32_t *nn = sl_reallocarray(*ids, cap, sizeof **ids);
			if (!nn) {
				e = SL_ERR_NOMEM;
				break;
			}
			*ids = nn;
		}
		(*ids)[(*n)++] = store_decode_u32((const unsigned char *)k.data + k.len - 4);
	}
	store_cursor_close(cur);
	if (e != SL_ERR_NOT_FOUND) {
		sl_free(*ids);
		*ids = NULL;
		return e;
	}
	return SL_OK;
}

/* Stops f's children; their results stay. */
static sl_err
kill_only(struct step_ctx *c, struct step_frame *f)
{
	if (is_distributed(f)) {
		f->alive = 0;
		sl_err e = step_maprun_abort_children(c, f->id);
		return e == SL_OK ? step_maprun_end(c, f->id, "ABORTED", true) : e;
	}
	uint32_t *ids = NULL;
	size_t n = 0;
	sl_err e = children_of(c, f, &ids, &n);
	for (size_t i = 0; e == SL_OK && i < n; i++)
		e = kill_frame(c, f, ids[i]);
	sl_free(ids);
	f->alive = 0;
	return e;
}

sl_err
step_kill_children(struct step_ctx *c, struct step_frame *f)
{
	sl_err e = kill_only(c, f);
	return e == SL_OK ? drop_results(c, f, false) : e;
}

static sl_err
kill_frame(struct step_ctx *c, struct step_frame *parent, uint32_t id)
{
	struct step_frame *k = NULL;
	sl_err e = step_frame_load(c, id, &k);
	if (e == SL_ERR_NOT_FOUND)
		return SL_OK;
	if (e != SL_OK)
		return e;
	if (k->ph == PH_KIDS)
		e = step_kill_children(c, k);
	// a distributed Map inside a branch or iteration that is aborted: its run is aborted too
	if (e == SL_OK && k->ph == PH_KIDS && is_distributed(k))
		e = step_event(c, k, "MapRunAborted", NULL, NULL);
	if (e == SL_OK && k->ph == PH_TASK)
		e = step_event(c, k, "TaskStateAborted", NULL, NULL);
	if (e == SL_OK)
		e = iteration_event(c, parent, "Aborted", k->pidx);
	if (e == SL_OK)
		e = step_frame_delete(c, k);
	step_frame_free(k);
	return e;
}

static sl_err
gather(struct step_ctx *c, struct step_frame *f, json_t **out)
{
	json_t *arr = json_array();
	if (!arr)
		return SL_ERR_NOMEM;
	for (uint32_t i = 0; i < f->n; i++) {
		struct store_key k;
		step_key_result(&k, c->arn, f->id, i);
		json_t *v = NULL;
		sl_err e = get_result(c, &k, &v, NULL);
		if (e == SL_OK && json_array_append_new(arr, v))
			e = SL_ERR_NOMEM;
		if (e == SL_OK)
			e = store_del(c->txn, STORE_DB_FRAMES, k.buf, k.len);
		if (e != SL_OK) {
			json_decref(arr);
			return e;
		}
	}
	*out = arr;
	return SL_OK;
}

static bool
threshold_exceeded(const struct step_frame *f)
{
	if (f->failed == 0)
		return false;
	if (f->tol_n < 0 && f->tol_p < 0)
		return true;
	if (f->tol_n >= 0 && (int64_t)f->failed > f->tol_n)
		return true;
	if (f->tol_p >= 0 && (double)f->failed * 100.0 > f->tol_p * (double)f->n)
		return true;
	return false;
}

sl_err
step_fanout_child_done(struct step_ctx *c, struct step_frame *f, uint64_t pw, uint32_t idx, bool ok,
                       json_t *output, struct step_fault *ft)
{
	sl_err e;
	if (f->n > 0) {
		if (f->ph != PH_KIDS || pw != f->wk)
			return SL_OK; // a late child of a state that already ended
		f->alive--;
		struct store_key k;
		step_key_result(&k, c->arn, f->id, idx);
		json_t *r = output;
		json_t *eo = NULL;
		if (ok) {
			f->done++;
		} else {
			f->failed++;
			eo = json_object();
			if (!eo)
				return SL_ERR_NOMEM;
			if (ft->has_error)
				json_object_set_new(eo, "Error", json_string(ft->error));
			if (ft->has_cause)
				json_object_set_new(eo, "Cause", json_string(ft->cause));
			if (!f->ferr)
				f->ferr = json_incref(eo);
			r = eo;
		}
		e = step_put_json(c->txn, STORE_DB_FRAMES, &k, ok ? 'R' : 'X', r);
		json_decref(eo);
		if (e == SL_OK)
			e = iteration_event(c, f, ok ? "Succeeded" : "Failed", idx);
		if (e != SL_OK)
			return e;
		if (threshold_exceeded(f)) {
			struct step_fault fail;
			// a map run fails by its threshold, 0 when none is given
			if (is_map(f) && (f->tol_n >= 0 || f->tol_p >= 0 || is_distributed(f))) {
				step_fault_set(
				        &fail, "States.ExceedToleratedFailureThreshold",
				        "The specified tolerated failure threshold was exceeded");
			} else {
				fail = *ft;
			}
			// a top frame keeps the results: the execution fails and may be redriven
			e = kill_only(c, f);
			if (e == SL_OK)
				e = drop_results(c, f, f->parent < 0);
			if (e != SL_OK)
				return e;
			if (is_distributed(f)) {
				json_t *d = json_pack("{s:s, s:s}", "error", fail.error, "cause",
				                      fail.cause);
				if (!d)
					return SL_ERR_NOMEM;
				e = step_maprun_end(c, f->id, "FAILED", false);
				if (e == SL_OK)
					e = step_event(c, f, "MapRunFailed",
					               "mapRunFailedEventDetails", d);
				else
					json_decref(d);
				if (e != SL_OK)
					return e;
			}
			if ((e = simple_event(c, f, "Failed")) != SL_OK)
				return e;
			f->ph = PH_RERUN;
			return step_state_error(c, f, &fail);
		}
		if (f->done + f->failed < f->n)
			return step_fanout_spawn(c, f);
	}
	return fanout_complete(c, f);
}

static sl_err
fanout_complete(struct step_ctx *c, struct step_frame *f)
{
	json_t *results = NULL;
	sl_err e;
	struct step_fault wft;
	bool wfailed = false;
	if (is_distributed(f) && f->m->states[f->st].u.map.result_writer) {
		// ResultWriter: the children's records go to files one by one, nothing is gathered
		e = step_frame_eff(c, f);
		if (e == SL_OK
		    && (e = step_maprun_write_results(c, f, &results, &wft))
		            == SL_ERR_INVALID_ARG) {
			wfailed = true;
			e = SL_OK;
		}
		for (uint32_t i = 0; e == SL_OK && i < f->n; i++) {
			struct store_key k;
			step_key_result(&k, c->arn, f->id, i);
			e = store_del(c->txn, STORE_DB_FRAMES, k.buf, k.len);
		}
	} else {
		e = gather(c, f, &results);
	}
	if (e != SL_OK) {
		json_decref(results);
		return e;
	}
	if (f->parent < 0 && json_object_get(c->exec, "rdKept")) {
		json_object_del(c->exec, "rdKept");
		c->exec_dirty = true;
	}
	if (is_distributed(f) && wfailed) {
		json_t *d = json_pack("{s:s, s:s}", "error", wft.error, "cause", wft.cause);
		e = d ? step_maprun_end(c, f->id, "FAILED", false) : SL_ERR_NOMEM;
		if (e == SL_OK)
			e = step_event(c, f, "MapRunFailed", "mapRunFailedEventDetails", d);
		else
			json_decref(d);
	} else if (is_distributed(f)) {
		e = step_maprun_end(c, f->id, "SUCCEEDED", false);
		if (e == SL_OK)
			e = step_event(c, f, "MapRunSucceeded", NULL, NULL);
	}
	if (e == SL_OK)
		e = simple_event(c, f, wfailed ? "Failed" : "Succeeded");
	if (e == SL_OK && f->n > 0) {
		struct store_key k;
		step_key_eff(&k, c->arn, f->id);
		e = store_del(c->txn, STORE_DB_FRAMES, k.buf, k.len);
		if (e == SL_OK)
			e = step_frame_in(c, f);
		step_key_frame(&k, c->arn, f->id);
		store_key_raw(&k, "N", 1);
		if (e == SL_OK)
			e = store_del(c->txn, STORE_DB_FRAMES, k.buf, k.len);
		if (e == SL_OK && is_map(f))
			e = step_reader_drop(c, f);
		f->in_aux = false;
	}
	json_decref(f->eff);
	f->eff = NULL;
	f->ph = PH_RERUN;
	if (e == SL_OK)
		e = wfailed ? step_state_error(c, f, &wft) : step_state_finish(c, f, results);
	json_decref(results);
	return e;
}
