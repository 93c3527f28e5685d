/*
 * store_batch.c - the write batch: one LMDB write transaction (plus nested ones for
 * savepoints), an op log that copies every put and delete, map growth by replay, group
 * commit and completion callbacks.
 */
#include "store/store_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "store/store_testing.h"

static void
batch_free(store_batch_t *b)
{
	sl_free(b->stack);
	sl_free(b->ops);
	sl_free(b->arena);
	sl_free(b->marks);
	sl_free(b->cbs);
	sl_free(b);
}

/* Aborts the live txns stack[0..top], innermost first. */
static void
chain_abort(store_batch_t *b, size_t top)
{
	if (!b->live)
		return;
	for (size_t i = top + 1; i-- > 0;)
		mdb_txn_abort(b->stack[i]);
	b->live = false;
}

static int
begin_top(store_t *st, MDB_txn **out)
{
	int rc = mdb_txn_begin(st->env, NULL, 0, out);
	if (rc == MDB_MAP_RESIZED) {
		/* another process grew the map: adopt its size */
		rc = mdb_env_set_mapsize(st->env, 0);
		if (rc == 0)
			rc = mdb_txn_begin(st->env, NULL, 0, out);
	}
	return rc;
}

static sl_err
reserve(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return SL_OK;
	size_t n = *cap ? *cap : 8;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return SL_ERR_NOMEM;
		n *= 2;
	}
	void *q = sl_reallocarray(*p, n, elem);
	if (!q)
		return SL_ERR_NOMEM;
	*p = q;
	*cap = n;
	return SL_OK;
}

sl_err
store_batch_get(store_t *st, store_batch_t **out)
{
	if (st->batch) {
		*out = st->batch;
		return SL_OK;
	}
	*out = NULL;
	store_batch_t *b = SL_NEW(store_batch_t);
	if (!b)
		return SL_ERR_NOMEM;
	b->st = st;
	b->txn.st = st;
	b->txn.batch = b;
	if (reserve((void **)&b->stack, &b->stack_cap, 4, sizeof(*b->stack))) {
		batch_free(b);
		return SL_ERR_NOMEM;
	}
	int rc = begin_top(st, &b->stack[0]);
	if (rc) {
		batch_free(b);
		return store_rc(st, rc, "begin write txn");
	}
	b->live = true;
	b->txn.mt = b->stack[0];
	st->batch = b;
	*out = b;
	return SL_OK;
}

store_batch_t *
store_batch_current(store_t *st)
{
	return st->batch;
}

store_txn_t *
store_batch_txn(store_batch_t *b)
{
	return &b->txn;
}

size_t
store_batch_ops(const store_batch_t *b)
{
	return b->nops;
}

bool
store_batch_full(const store_batch_t *b)
{
	return b->nops >= b->st->max_batch_ops;
}

sl_err
store_batch_on_commit(store_batch_t *b, store_done_fn fn, void *arg)
{
	if (!b || !fn || b->st->batch != b)
		return SL_ERR_INVALID_ARG;
	if (reserve((void **)&b->cbs, &b->cbs_cap, b->ncbs + 1, sizeof(*b->cbs)))
		return SL_ERR_NOMEM;
	b->cbs[b->ncbs++] = (struct store_cb) { fn, arg };
	return SL_OK;
}

/* --- op log and replay ------------------------------------------------------------------ */

static sl_err
log_append(store_batch_t *b, enum store_op_kind kind, enum store_db db, const void *key,
           size_t klen, const void *val, size_t vlen)
{
	if (reserve((void **)&b->ops, &b->ops_cap, b->nops + 1, sizeof(*b->ops)))
		return SL_ERR_NOMEM;
	if (vlen > SIZE_MAX - klen - b->arena_len)
		return SL_ERR_NOMEM;
	size_t need = b->arena_len + klen + vlen;
	if (need > b->arena_cap) {
		size_t n = b->arena_cap ? b->arena_cap : 4096;
		while (n < need) {
			if (n > SIZE_MAX / 2)
				return SL_ERR_NOMEM;
			n *= 2;
		}
		unsigned char *a = sl_realloc(b->arena, n);
		if (!a)
			return SL_ERR_NOMEM;
		b->arena = a;
		b->arena_cap = n;
	}
	struct store_op *op = &b->ops[b->nops++];
	op->kind = (unsigned char)kind;
	op->db = (unsigned char)db;
	op->off = b->arena_len;
	op->klen = klen;
	op->vlen = vlen;
	memcpy(b->arena + b->arena_len, key, klen);
	if (vlen)
		memcpy(b->arena + b->arena_len + klen, val, vlen);
	b->arena_len = need;
	return SL_OK;
}

static void
log_pop(store_batch_t *b)
{
	b->nops--;
	b->arena_len = b->ops[b->nops].off;
}

static int
apply_op(store_batch_t *b, MDB_txn *txn, const struct store_op *op)
{
	MDB_val k = { op->klen, b->arena + op->off };
	if (op->kind == STORE_OP_PUT) {
		MDB_val v = { op->vlen, b->arena + op->off + op->klen };
		return mdb_put(txn, b->st->dbi[op->db], &k, &v, 0);
	}
	int rc = mdb_del(txn, b->st->dbi[op->db], &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static sl_err
poison(store_batch_t *b, sl_err e)
{
	if (!b->poison)
		b->poison = e ? e : SL_ERR_STORE;
	return b->poison;
}

/* Throws the LMDB txns away and rebuilds them from the op log, growing the map first when
 * grow is set (and again whenever the replay itself fills the map). Savepoints that are open
 * are re-opened at the log positions where they began. */
static sl_err
rebuild(store_batch_t *b, bool grow)
{
	store_t *st = b->st;
	store_cursors_suspend(&b->txn);
	chain_abort(b, b->depth);
	for (;;) {
		if (grow) {
			sl_err e = store_grow_map(st);
			if (e)
				return poison(b, e);
		}
		int rc = begin_top(st, &b->stack[0]);
		if (rc)
			return poison(b, store_rc(st, rc, "begin write txn"));
		b->live = true;
		size_t level = 0;
		for (size_t i = 0; rc == 0 && i <= b->nops; i++) {
			while (rc == 0 && level < b->depth && b->marks[level].nops == i) {
				rc = mdb_txn_begin(st->env, b->stack[level], 0,
				                   &b->stack[level + 1]);
				if (rc == 0)
					level++;
			}
			if (rc == 0 && i < b->nops)
				rc = apply_op(b, b->stack[level], &b->ops[i]);
		}
		if (rc == 0) {
			b->txn.mt = b->stack[b->depth];
			return SL_OK;
		}
		chain_abort(b, level);
		if (rc != MDB_MAP_FULL)
			return poison(b, store_rc(st, rc, "replay"));
		grow = true;
	}
}

/* After a failed LMDB write: MAP_FULL grows and replays (the op stays); anything else drops
 * the op and replays the rest, since LMDB marks the txn unusable. */
static sl_err
after_write_failure(store_batch_t *b, int rc, const char *what)
{
	if (rc == MDB_MAP_FULL)
		return rebuild(b, true);
	sl_err e = store_rc(b->st, rc, what);
	log_pop(b);
	sl_err r = rebuild(b, false);
	return r ? r : e;
}

static sl_err
write_check(store_txn_t *txn, enum store_db db, const void *key, size_t klen)
{
	if (!txn || (unsigned)db >= STORE_DB__COUNT || !key || klen == 0 || klen > STORE_MAX_KEY)
		return SL_ERR_INVALID_ARG;
	if (!txn->batch) {
		snprintf(txn->st->errbuf, sizeof(txn->st->errbuf),
		         "write refused: a read transaction cannot write");
		return SL_ERR_INVALID_ARG;
	}
	if (txn->batch->poison)
		return txn->batch->poison;
	return SL_OK;
}

sl_err
store_put(store_txn_t *txn, enum store_db db, const void *key, size_t klen, const void *val,
          size_t vlen)
{
	sl_err e = write_check(txn, db, key, klen);
	if (e)
		return e;
	if ((!val && vlen) || vlen > UINT32_MAX)
		return SL_ERR_INVALID_ARG;
	store_batch_t *b = txn->batch;
	e = log_append(b, STORE_OP_PUT, db, key, klen, val, vlen);
	if (e)
		return e;
	int rc = apply_op(b, b->txn.mt, &b->ops[b->nops - 1]);
	store_cursors_unpin(&b->txn);
	return rc ? after_write_failure(b, rc, "put") : SL_OK;
}

sl_err
store_del(store_txn_t *txn, enum store_db db, const void *key, size_t klen)
{
	sl_err e = write_check(txn, db, key, klen);
	if (e)
		return e;
	store_batch_t *b = txn->batch;
	e = log_append(b, STORE_OP_DEL, db, key, klen, NULL, 0);
	if (e)
		return e;
	int rc = apply_op(b, b->txn.mt, &b->ops[b->nops - 1]);
	store_cursors_unpin(&b->txn);
	return rc ? after_write_failure(b, rc, "del") : SL_OK;
}

/* --- savepoints ------------------------------------------------------------------------- */

sl_err
store_savepoint_begin(store_batch_t *b)
{
	if (!b)
		return SL_ERR_INVALID_ARG;
	if (b->poison)
		return b->poison;
	if (reserve((void **)&b->stack, &b->stack_cap, b->depth + 2, sizeof(*b->stack))
	    || reserve((void **)&b->marks, &b->marks_cap, b->depth + 1, sizeof(*b->marks)))
		return SL_ERR_NOMEM;
	/* no LMDB cursor may be shadowed into the child: they reopen lazily in it */
	store_cursors_suspend(&b->txn);
	MDB_txn *child;
	int rc = mdb_txn_begin(b->st->env, b->stack[b->depth], 0, &child);
	if (rc)
		return store_rc(b->st, rc, "savepoint");
	b->marks[b->depth] = (struct store_mark) { b->nops, b->arena_len };
	b->stack[++b->depth] = child;
	b->txn.mt = child;
	return SL_OK;
}

sl_err
store_savepoint_release(store_batch_t *b)
{
	if (!b || b->depth == 0)
		return SL_ERR_INVALID_ARG;
	store_cursors_suspend(&b->txn);
	if (!b->live) {
		b->depth--;
		return b->poison;
	}
	int rc = mdb_txn_commit(b->stack[b->depth]);
	b->depth--;
	if (rc == 0) {
		b->txn.mt = b->stack[b->depth];
		return SL_OK;
	}
	/* the child is gone and its parent may be unusable: rebuild with the ops merged */
	return rebuild(b, rc == MDB_MAP_FULL);
}

void
store_savepoint_rollback(store_batch_t *b)
{
	if (!b || b->depth == 0)
		return;
	store_cursors_suspend(&b->txn);
	if (b->live)
		mdb_txn_abort(b->stack[b->depth]);
	b->depth--;
	b->nops = b->marks[b->depth].nops;
	b->arena_len = b->marks[b->depth].arena_len;
	b->txn.mt = b->live ? b->stack[b->depth] : NULL;
}

/* --- marks ------------------------------------------------------------------------------- */

sl_err
store_batch_mark(store_batch_t *b, struct store_mark_pos *m)
{
	if (!b || !m)
		return SL_ERR_INVALID_ARG;
	if (b->poison)
		return b->poison;
	*m = (struct store_mark_pos) { b->nops, b->arena_len, b->depth };
	return SL_OK;
}

sl_err
store_batch_rollback_to(store_batch_t *b, const struct store_mark_pos *m)
{
	if (!b || !m || m->depth != b->depth || m->nops > b->nops
	    || (b->depth > 0 && b->marks[b->depth - 1].nops > m->nops))
		return SL_ERR_INVALID_ARG;
	if (b->poison)
		return b->poison;
	if (m->nops == b->nops)
		return SL_OK;
	b->nops = m->nops;
	b->arena_len = m->arena_len;
	return rebuild(b, false);
}

/* --- commit ------------------------------------------------------------------------------- */

static void
record_latency(store_t *st, uint64_t ns)
{
	st->stats.commit_ns_total += ns;
	uint64_t us = ns / 1000;
	int i = 0;
	while (i < STORE_COMMIT_BUCKETS && us > store_commit_bucket_us(i))
		i++;
	st->stats.commit_hist[i]++;
}

/* The batch is already detached from the store, so callbacks may open the next one. */
static void
finish(store_batch_t *b, sl_err status)
{
	store_cursors_detach(&b->txn);
	for (size_t i = 0; i < b->ncbs; i++)
		b->cbs[i].fn(b->cbs[i].arg, status);
	batch_free(b);
}

sl_err
store_batch_commit(store_t *st)
{
	store_batch_t *b = st->batch;
	if (!b)
		return SL_OK;
	sl_err status = b->poison;
	if (!status && b->depth > 0) {
		snprintf(st->errbuf, sizeof(st->errbuf), "commit with %zu open savepoint(s)",
		         b->depth);
		status = SL_ERR_INTERNAL;
	}
	uint64_t t0 = sl_clock_mono_ns();
	while (!status) {
		/* LMDB frees a write txn's cursors when it ends: close ours first */
		store_cursors_suspend(&b->txn);
		if (st->fail_next_commit) {
			st->fail_next_commit = false;
			snprintf(st->errbuf, sizeof(st->errbuf),
			         "commit: failure injected by store_test_fail_next_commit");
			status = SL_ERR_IO;
			break;
		}
		int rc;
		if (st->map_full_next_commit) {
			st->map_full_next_commit = false;
			chain_abort(b, 0);
			rc = MDB_MAP_FULL;
		} else {
			rc = mdb_txn_commit(b->stack[0]);
		}
		b->live = false; /* freed by LMDB, committed or not */
		if (rc == 0)
			break;
		if (rc == MDB_MAP_FULL) {
			status = rebuild(b, true);
			continue;
		}
		status = store_rc(st, rc, "commit");
	}
	st->batch = NULL;
	if (status == SL_OK) {
		st->stats.commits++;
		st->stats.ops_committed += b->nops;
		record_latency(st, sl_clock_mono_ns() - t0);
	} else {
		chain_abort(b, b->depth);
		st->stats.commit_failures++;
	}
	finish(b, status);
	return status;
}

void
store_batch_abort(store_t *st, sl_err status)
{
	store_batch_t *b = st->batch;
	if (!b)
		return;
	st->batch = NULL;
	store_cursors_suspend(&b->txn);
	chain_abort(b, b->depth);
	finish(b, status);
}

void
store_test_fail_next_commit(store_t *st)
{
	st->fail_next_commit = true;
}

void
store_test_map_full_next_commit(store_t *st)
{
	st->map_full_next_commit = true;
}
