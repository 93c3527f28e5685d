/*
 * store_cursor.c - ordered iteration with optional prefix, forward and backward.
 *
 * A cursor remembers its position as a key copy, so it survives what invalidates LMDB
 * cursors in a batch: savepoints, map growth (the txns are rebuilt), and writes through
 * other handles. Its LMDB cursor is opened lazily in the batch's innermost txn and closed
 * before that txn chain changes; when not known to sit on its key it re-seeks by key.
 */
#include "store/store_internal.h"

#include <string.h>

#include "common/sl_alloc.h"

static void
unlink_cursor(store_cursor_t *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (c->txn)
		c->txn->cursors = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

void
store_cursors_suspend(struct store_txn *txn)
{
	for (store_cursor_t *c = txn->cursors; c; c = c->next) {
		if (c->mc) {
			mdb_cursor_close(c->mc);
			c->mc = NULL;
		}
		c->on_pos = false;
	}
}

void
store_cursors_unpin(struct store_txn *txn)
{
	for (store_cursor_t *c = txn->cursors; c; c = c->next)
		c->on_pos = false;
}

void
store_cursors_detach(struct store_txn *txn)
{
	store_cursors_suspend(txn);
	store_cursor_t *c = txn->cursors;
	while (c) {
		store_cursor_t *n = c->next;
		c->txn = NULL;
		c->next = c->prev = NULL;
		c = n;
	}
	txn->cursors = NULL;
}

sl_err
store_cursor_open(store_txn_t *txn, enum store_db db, store_cursor_t **out)
{
	*out = NULL;
	if (!txn || (unsigned)db >= STORE_DB__COUNT)
		return SL_ERR_INVALID_ARG;
	if (txn->batch && txn->batch->poison)
		return txn->batch->poison;
	store_cursor_t *c = SL_NEW(store_cursor_t);
	if (!c)
		return SL_ERR_NOMEM;
	c->txn = txn;
	c->db = db;
	c->mode = STORE_CUR_UNSET;
	c->next = txn->cursors;
	if (c->next)
		c->next->prev = c;
	txn->cursors = c;
	*out = c;
	return SL_OK;
}

void
store_cursor_close(store_cursor_t *c)
{
	if (!c)
		return;
	if (c->mc)
		mdb_cursor_close(c->mc);
	if (c->txn)
		unlink_cursor(c);
	sl_free(c);
}

static sl_err
usable(store_cursor_t *c)
{
	if (!c || !c->txn)
		return SL_ERR_INVALID_ARG; /* its transaction has ended */
	if (c->txn->batch && c->txn->batch->poison)
		return c->txn->batch->poison;
	if (!c->mc) {
		int rc = mdb_cursor_open(c->txn->mt, c->txn->st->dbi[c->db], &c->mc);
		if (rc) {
			c->mc = NULL;
			return store_rc(c->txn->st, rc, "cursor open");
		}
		c->on_pos = false;
	}
	return SL_OK;
}

sl_err
store_cursor_seek(store_cursor_t *c, const void *key, size_t klen)
{
	if (!c || !c->txn || (key && (klen == 0 || klen > STORE_MAX_KEY)))
		return SL_ERR_INVALID_ARG;
	c->plen = 0;
	c->on_pos = false;
	if (!key) {
		c->mode = STORE_CUR_UNSET;
		return SL_OK;
	}
	memcpy(c->pos, key, klen);
	c->poslen = klen;
	c->mode = STORE_CUR_INCLUSIVE;
	return SL_OK;
}

sl_err
store_cursor_seek_prefix(store_cursor_t *c, const void *prefix, size_t plen)
{
	if (!prefix || plen == 0 || plen > STORE_MAX_KEY)
		return SL_ERR_INVALID_ARG;
	sl_err e = store_cursor_seek(c, prefix, plen);
	if (e)
		return e;
	memcpy(c->prefix, prefix, plen);
	c->plen = plen;
	return SL_OK;
}

static bool
has_prefix(const store_cursor_t *c, const MDB_val *k)
{
	return k->mv_size >= c->plen && memcmp(k->mv_data, c->prefix, c->plen) == 0;
}

static bool
is_pos(const store_cursor_t *c, const MDB_val *k)
{
	return k->mv_size == c->poslen && memcmp(k->mv_data, c->pos, c->poslen) == 0;
}

/* Lands on key k: remember it, hand it out. */
static sl_err
land(store_cursor_t *c, int rc, MDB_val *k, MDB_val *v, struct store_val *key,
     struct store_val *val)
{
	if (rc == MDB_NOTFOUND) {
		c->mode = STORE_CUR_END;
		return SL_ERR_NOT_FOUND;
	}
	if (rc) {
		c->on_pos = false;
		return store_rc(c->txn->st, rc, "cursor");
	}
	if (k->mv_size > STORE_MAX_KEY || (c->plen && !has_prefix(c, k))) {
		c->mode = STORE_CUR_END;
		return SL_ERR_NOT_FOUND;
	}
	memcpy(c->pos, k->mv_data, k->mv_size);
	c->poslen = k->mv_size;
	c->mode = STORE_CUR_EXCLUSIVE;
	c->on_pos = true;
	if (key)
		*key = (struct store_val) { k->mv_data, k->mv_size };
	if (val)
		*val = (struct store_val) { v->mv_data, v->mv_size };
	return SL_OK;
}

static sl_err
step(store_cursor_t *c, bool fwd, struct store_val *key, struct store_val *val)
{
	sl_err e = usable(c);
	if (e)
		return e;
	if (c->mode == STORE_CUR_END)
		return SL_ERR_NOT_FOUND;
	MDB_val k = { 0, NULL }, v = { 0, NULL };
	int rc;
	bool incl = c->mode == STORE_CUR_INCLUSIVE;
	if (c->mode == STORE_CUR_UNSET) {
		rc = mdb_cursor_get(c->mc, &k, &v, fwd ? MDB_FIRST : MDB_LAST);
	} else if (c->on_pos) {
		rc = mdb_cursor_get(c->mc, &k, &v,
		                    incl          ? MDB_GET_CURRENT
		                            : fwd ? MDB_NEXT
		                                  : MDB_PREV);
	} else {
		k = (MDB_val) { c->poslen, c->pos };
		rc = mdb_cursor_get(c->mc, &k, &v, MDB_SET_RANGE);
		if (fwd) {
			if (rc == 0 && !incl && is_pos(c, &k))
				rc = mdb_cursor_get(c->mc, &k, &v, MDB_NEXT);
		} else if (rc == MDB_NOTFOUND) {
			rc = mdb_cursor_get(c->mc, &k, &v, MDB_LAST);
		} else if (rc == 0 && !(incl && is_pos(c, &k))) {
			rc = mdb_cursor_get(c->mc, &k, &v, MDB_PREV);
		}
	}
	return land(c, rc, &k, &v, key, val);
}

sl_err
store_cursor_next(store_cursor_t *c, struct store_val *key, struct store_val *val)
{
	return step(c, true, key, val);
}

sl_err
store_cursor_prev(store_cursor_t *c, struct store_val *key, struct store_val *val)
{
	return step(c, false, key, val);
}

sl_err
store_cursor_seek_last_prefix(store_cursor_t *c, const void *prefix, size_t plen)
{
	if (!prefix || plen == 0 || plen > STORE_MAX_KEY)
		return SL_ERR_INVALID_ARG;
	sl_err e = usable(c);
	if (e)
		return e;
	memcpy(c->prefix, prefix, plen);
	c->plen = plen;
	/* the smallest key above every key with the prefix: drop trailing 0xFF, add one */
	unsigned char succ[STORE_MAX_KEY];
	size_t n = plen;
	memcpy(succ, prefix, plen);
	while (n > 0 && succ[n - 1] == 0xFF)
		n--;
	MDB_val k = { 0, NULL }, v;
	int rc;
	if (n == 0) {
		rc = mdb_cursor_get(c->mc, &k, &v, MDB_LAST);
	} else {
		succ[n - 1]++;
		k = (MDB_val) { n, succ };
		rc = mdb_cursor_get(c->mc, &k, &v, MDB_SET_RANGE);
		if (rc == 0)
			rc = mdb_cursor_get(c->mc, &k, &v, MDB_PREV);
		else if (rc == MDB_NOTFOUND)
			rc = mdb_cursor_get(c->mc, &k, &v, MDB_LAST);
	}
	e = land(c, rc, &k, &v, NULL, NULL);
	if (e == SL_ERR_NOT_FOUND)
		return SL_OK; /* nothing with the prefix: prev answers NOT_FOUND */
	if (e)
		return e;
	c->mode = STORE_CUR_INCLUSIVE;
	return SL_OK;
}

sl_err
store_cursor_del(store_cursor_t *c)
{
	if (!c || !c->txn || !c->txn->batch || c->mode != STORE_CUR_EXCLUSIVE)
		return SL_ERR_INVALID_ARG;
	unsigned char key[STORE_MAX_KEY];
	size_t klen = c->poslen;
	memcpy(key, c->pos, klen);
	/* by key through the batch, so the delete is logged for replay */
	return store_del(c->txn, c->db, key, klen);
}

sl_err
store_count_prefix(store_txn_t *txn, enum store_db db, const void *prefix, size_t plen, size_t *out)
{
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, db, &c);
	if (rc)
		return rc;
	*out = 0;
	struct store_val kv, vv;
	if ((rc = store_cursor_seek_prefix(c, prefix, plen)) == SL_OK)
		while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK)
			(*out)++;
	store_cursor_close(c);
	return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
}

sl_err
store_del_prefix(store_txn_t *txn, enum store_db db, const void *prefix, size_t plen)
{
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, db, &c);
	if (rc)
		return rc;
	struct store_val kv, vv;
	if ((rc = store_cursor_seek_prefix(c, prefix, plen)) == SL_OK)
		while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK)
			if ((rc = store_cursor_del(c)))
				break;
	store_cursor_close(c);
	return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
}
