/*
 * step_prune.c - closed executions expire: the index by stop time and the bounded prune
 * (stepper.h "retention", docs/STEPPER.md "Retention").
 *
 *   closed  str(owner) i64(stop ms) raw(arn) -> ""   owner "E": this engine's executions
 *
 * step_exec_close writes the entry of a top-level execution in the batch that closes it
 * (a map run's children have none: they go with their parent). A redrive leaves the old
 * entry: the prune finds the record RUNNING again, or closed at another time, and drops
 * only the entry (the new close wrote its own).
 *
 * Order of a deletion, so that a prune cut between slices at any point leaves nothing
 * visible half-gone and nothing unreachable: the record is replaced by a tombstone first
 * (and its listing entry goes: DescribeExecution, GetExecutionHistory and ListExecutions
 * stop finding it at once, and a new execution cannot take its name and meet its remaining
 * history), then everything found by the ARN (history, input, kept results, frames), then
 * each map run (its record, then each child the same way, the child's listing entry after
 * the child), then the map run's listing entry, and the tombstone and the closed entry
 * last: the next slice finds the rest again from them.
 */
#include <string.h>

#include "common/sl_log.h"
#include "stepper/step_int.h"

#define CLOSED_OWNER    "E"
#define BACKFILL_MARKER "closed-index"

void
step_closed_key(struct store_key *k, const char *owner, int64_t stop_ms, const char *arn)
{
	store_key_init(k);
	store_key_str(k, owner);
	store_key_i64(k, stop_ms);
	store_key_raw(k, arn, strlen(arn));
}

sl_err
step_closed_put(struct step_ctx *c, int64_t stop_ms)
{
	// EXPRESS (no history): the server removes those records itself when they end
	if (c->eng->opt.no_history || json_object_get(c->exec, "mapRun"))
		return SL_OK;
	struct store_key k;
	step_closed_key(&k, CLOSED_OWNER, stop_ms, c->arn);
	if (k.overflow)
		return SL_OK; // an ARN too long for a key is never listed either: kept
	return store_put(c->txn, STORE_DB_CLOSED, k.buf, k.len, "", 0);
}

struct prune {
	store_txn_t *txn;
	size_t budget;
	struct step_prune_stats *st;
};

/* Deletes the entry under c (last returned by next). */
static sl_err
del_at(struct prune *p, store_cursor_t *c)
{
	sl_err e = store_cursor_del(c);
	if (e == SL_OK) {
		p->budget--;
		p->st->records++;
	}
	return e;
}

static sl_err
del_key(struct prune *p, enum store_db db, const void *key, size_t len)
{
	sl_err e = store_del(p->txn, db, key, len);
	if (e == SL_OK) {
		p->budget--;
		p->st->records++;
	}
	return e;
}

/* Deletes keys starting with pk (but pk itself when keep_exact) while the budget lasts;
 * *done when none is left. */
static sl_err
del_prefix(struct prune *p, enum store_db db, const struct store_key *pk, bool keep_exact,
           bool *done)
{
	*done = false;
	if (!p->budget)
		return SL_OK;
	store_cursor_t *c = NULL;
	sl_err e = store_cursor_open(p->txn, db, &c);
	if (e != SL_OK)
		return e;
	struct store_val k, v;
	e = store_cursor_seek_prefix(c, pk->buf, pk->len);
	while (e == SL_OK && p->budget && (e = store_cursor_next(c, &k, &v)) == SL_OK)
		if (!keep_exact || k.len != pk->len)
			e = del_at(p, c);
	store_cursor_close(c);
	if (e == SL_ERR_NOT_FOUND) {
		*done = true;
		e = SL_OK;
	}
	return e;
}

/* The first key under pk in exec_index, copied (the ARN after i64 start); false: none. */
static sl_err
first_listed(struct prune *p, const struct store_key *pk, struct store_key *key, char *arn,
             bool *found)
{
	*found = false;
	store_cursor_t *c = NULL;
	sl_err e = store_cursor_open(p->txn, STORE_DB_EXEC_INDEX, &c);
	if (e != SL_OK)
		return e;
	struct store_val k, v;
	e = store_cursor_seek_prefix(c, pk->buf, pk->len);
	while (e == SL_OK && (e = store_cursor_next(c, &k, &v)) == SL_OK) {
		size_t alen = k.len - pk->len - 8;
		if (k.len < pk->len + 9 || alen >= STEP_ARN_MAX)
			continue; // not an entry this engine wrote
		store_key_init(key);
		memcpy(key->buf, k.data, k.len);
		key->len = k.len;
		memcpy(arn, (const char *)k.data + pk->len + 8, alen);
		arn[alen] = 0;
		*found = true;
		break;
	}
	store_cursor_close(c);
	return e == SL_ERR_NOT_FOUND ? SL_OK : e;
}

static sl_err drop_maprun(struct prune *p, const char *mrarn, bool *done);

/* Deletes execution arn and everything it owns, as far as the budget goes. top: a
 * top-level execution (its listing entry goes with its record); a child's listing entry is
 * its caller's to delete once *done. */
static sl_err
drop_exec(struct prune *p, const char *arn, bool top, bool *done)
{
	*done = false;
	struct store_key xk;
	step_key_exec(&xk, arn);
	struct store_val v;
	sl_err e = store_get(p->txn, STORE_DB_EXECUTIONS, xk.buf, xk.len, &v);
	bool tomb = e == SL_OK && v.len == 1 && ((const char *)v.data)[0] == STEP_TOMBSTONE;
	if (e == SL_OK && !tomb) {
		if (p->budget < 2)
			return SL_OK;
		if (top) {
			json_t *x = NULL;
			if (v.len < 1 || ((const char *)v.data)[0] != 'X')
				return SL_ERR_STORE;
			if ((e = step_parse_record((const char *)v.data + 1, v.len - 1, &x))
			    != SL_OK)
				return e;
			const char *machine = step_jstr(x, "machine");
			if (machine) {
				struct store_key ik;
				store_key_init(&ik);
				store_key_str(&ik, machine);
				store_key_i64(&ik, step_jint(x, "startMs", 0));
				store_key_raw(&ik, arn, strlen(arn));
				e = ik.overflow ? SL_OK
				                : del_key(p, STORE_DB_EXEC_INDEX, ik.buf, ik.len);
			}
			json_decref(x);
			if (e != SL_OK)
				return e;
		}
		// a top-level name stays taken until everything is gone (a child's is a UUID)
		const char z = STEP_TOMBSTONE;
		e = top ? store_put(p->txn, STORE_DB_EXECUTIONS, xk.buf, xk.len, &z, 1)
		        : store_del(p->txn, STORE_DB_EXECUTIONS, xk.buf, xk.len);
		if (e != SL_OK)
			return e;
		p->budget--;
		p->st->records++;
		tomb = top;
	} else if (e != SL_OK && e != SL_ERR_NOT_FOUND) {
		return e;
	}
	// history, input, kept results, frames: all keyed by the ARN first
	static const enum store_db dbs[]
	        = { STORE_DB_HISTORY, STORE_DB_EXECUTIONS, STORE_DB_FRAMES };
	for (size_t i = 0; i < sizeof dbs / sizeof *dbs; i++) {
		bool d = false;
		if ((e = del_prefix(p, dbs[i], &xk, dbs[i] == STORE_DB_EXECUTIONS, &d)) != SL_OK
		    || !d)
			return e;
	}
	// map runs: exec_index arn, start, map run arn
	for (;;) {
		struct store_key lk;
		char mr[STEP_ARN_MAX];
		bool found = false, d = false;
		if ((e = first_listed(p, &xk, &lk, mr, &found)) != SL_OK)
			return e;
		if (!found)
			break;
		if ((e = drop_maprun(p, mr, &d)) != SL_OK || !d)
			return e;
		if (!p->budget)
			return SL_OK;
		if ((e = del_key(p, STORE_DB_EXEC_INDEX, lk.buf, lk.len)) != SL_OK)
			return e;
		p->st->map_runs++;
	}
	if (tomb) {
		if (!p->budget)
			return SL_OK;
		if ((e = del_key(p, STORE_DB_EXECUTIONS, xk.buf, xk.len)) != SL_OK)
			return e;
	}
	*done = true;
	return SL_OK;
}

static sl_err
drop_maprun(struct prune *p, const char *mrarn, bool *done)
{
	*done = false;
	struct store_key mk;
	step_key_exec(&mk, mrarn);
	bool d = false;
	// the record first: DescribeMapRun stops finding it before its children go
	sl_err e = del_prefix(p, STORE_DB_EXECUTIONS, &mk, false, &d);
	if (e != SL_OK || !d)
		return e;
	for (;;) {
		struct store_key lk;
		char child[STEP_ARN_MAX];
		bool found = false;
		if ((e = first_listed(p, &mk, &lk, child, &found)) != SL_OK)
			return e;
		if (!found)
			break;
		if ((e = drop_exec(p, child, false, &d)) != SL_OK || !d)
			return e;
		if (!p->budget)
			return SL_OK;
		if ((e = del_key(p, STORE_DB_EXEC_INDEX, lk.buf, lk.len)) != SL_OK)
			return e;
		p->st->children++;
	}
	*done = true;
	return SL_OK;
}

/* The closed entry names arn closed at stop: SL_OK with *prune when the record is gone or
 * a tombstone (a deletion under way) or closed at that time; otherwise the entry is stale. */
static sl_err
entry_current(struct prune *p, const char *arn, int64_t stop, bool *prune)
{
	*prune = false;
	struct store_key xk;
	step_key_exec(&xk, arn);
	struct store_val v;
	sl_err e = store_get(p->txn, STORE_DB_EXECUTIONS, xk.buf, xk.len, &v);
	if (e == SL_ERR_NOT_FOUND) {
		*prune = true;
		return SL_OK;
	}
	if (e != SL_OK)
		return e;
	if (v.len == 1 && ((const char *)v.data)[0] == STEP_TOMBSTONE) {
		*prune = true; // a deletion under way
		return SL_OK;
	}
	json_t *x = NULL;
	if (v.len < 1 || ((const char *)v.data)[0] != 'X')
		return SL_ERR_STORE;
	if ((e = step_parse_record((const char *)v.data + 1, v.len - 1, &x)) != SL_OK)
		return e;
	const char *status = step_jstr(x, "status");
	*prune = status && strcmp(status, "RUNNING") != 0 && step_jint(x, "stopMs", -1) == stop;
	json_decref(x);
	return SL_OK;
}

sl_err
step_prune(step_engine_t *eng, store_batch_t *b, int64_t before_ms, size_t budget,
           struct step_prune_stats *stats, bool *more, struct sl_error *err)
{
	(void)eng;
	*more = false;
	struct prune p = { .txn = store_batch_txn(b), .budget = budget, .st = stats };
	struct store_key pk;
	store_key_init(&pk);
	store_key_str(&pk, CLOSED_OWNER);
	store_cursor_t *c = NULL;
	sl_err e = store_cursor_open(p.txn, STORE_DB_CLOSED, &c);
	if (e != SL_OK)
		return sl_error_set(err, e, "cannot read the closed executions");
	struct store_val k, v;
	e = store_cursor_seek_prefix(c, pk.buf, pk.len);
	while (e == SL_OK && (e = store_cursor_next(c, &k, &v)) == SL_OK) {
		if (!p.budget) {
			*more = true;
			break;
		}
		char arn[STEP_ARN_MAX];
		if (!step_index_arn(&k, pk.len, arn)) {
			e = del_at(&p, c); // not an entry this engine wrote
			continue;
		}
		int64_t stop = store_decode_i64((const unsigned char *)k.data + pk.len);
		if (stop >= before_ms)
			break; // in stop order: the rest is younger
		bool current = false, done = false;
		p.budget--; // reading the entry costs as much as a deletion
		if ((e = entry_current(&p, arn, stop, &current)) != SL_OK)
			break;
		if (current && (e = drop_exec(&p, arn, true, &done)) != SL_OK)
			break;
		if (current && !done) {
			*more = true;
			break;
		}
		if ((e = store_cursor_del(c)) != SL_OK)
			break;
		if (current)
			stats->executions++;
	}
	store_cursor_close(c);
	if (e == SL_ERR_NOT_FOUND)
		e = SL_OK;
	if (e != SL_OK)
		return sl_error_set(err, e, "pruning closed executions failed");
	return SL_OK;
}

sl_err
step_prune_backfill(step_engine_t *eng, store_batch_t *b, size_t *indexed, struct sl_error *err)
{
	(void)eng;
	*indexed = 0;
	store_txn_t *txn = store_batch_txn(b);
	struct store_val v;
	sl_err e = store_get(txn, STORE_DB_META, BACKFILL_MARKER, strlen(BACKFILL_MARKER), &v);
	if (e == SL_OK)
		return SL_OK;
	if (e != SL_ERR_NOT_FOUND)
		return sl_error_set(err, e, "cannot read meta/%s", BACKFILL_MARKER);
	store_cursor_t *c = NULL;
	if ((e = store_cursor_open(txn, STORE_DB_EXECUTIONS, &c)) != SL_OK)
		return sl_error_set(err, e, "cannot scan executions");
	struct store_val k;
	e = store_cursor_seek(c, NULL, 0);
	while (e == SL_OK && (e = store_cursor_next(c, &k, &v)) == SL_OK) {
		// execution records only (not inputs, kept results, map runs, EXPRESS records)
		if (v.len < 2 || ((const char *)v.data)[0] != 'X'
		    || ((const char *)v.data)[1] != '{')
			continue;
		json_t *x = NULL;
		if (step_parse_record((const char *)v.data + 1, v.len - 1, &x) != SL_OK)
			continue; // unreadable: left as it is
		const char *arn = step_jstr(x, "executionArn"), *status = step_jstr(x, "status");
		int64_t stop = step_jint(x, "stopMs", -1);
		if (arn && status && strcmp(status, "RUNNING") != 0 && stop >= 0
		    && !json_object_get(x, "mapRun")) {
			struct store_key ck;
			step_closed_key(&ck, CLOSED_OWNER, stop, arn);
			if (!ck.overflow
			    && (e = store_put(txn, STORE_DB_CLOSED, ck.buf, ck.len, "", 0))
			            == SL_OK)
				(*indexed)++;
		}
		json_decref(x);
	}
	store_cursor_close(c);
	if (e == SL_ERR_NOT_FOUND)
		e = store_put(txn, STORE_DB_META, BACKFILL_MARKER, strlen(BACKFILL_MARKER), "1", 1);
	if (e != SL_OK)
		return sl_error_set(err, e, "indexing closed executions failed");
	if (*indexed)
		sl_info("stepper", "indexed %zu closed executions written before the index",
		        *indexed);
	return SL_OK;
}
