/*
 * A seeded random walk of puts, deletes, cursor steps, cursor deletes, savepoints, commits
 * and aborts, checked step by step against an in-memory model. The map starts at 64 KiB so
 * growth (abort, remap, replay with savepoints open) happens in the middle of it.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store_test_util.h"

#define NKEYS     200
#define VMAX      1500
#define MAX_DEPTH 4
#define STEPS     6000

struct model {
	bool present[NKEYS];
	unsigned short len[NKEYS];
	unsigned char val[NKEYS][VMAX];
};

/* The model's cursor, straight from the header's contract. */
struct mcur {
	enum { M_UNSET, M_INCL, M_EXCL, M_END } mode;
	int pos;
};

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	uint64_t x = rng_state += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void
mkkey(unsigned char k[2], int i)
{
	k[0] = 0x10;
	k[1] = (unsigned char)i;
}

static int
m_step(const struct model *m, struct mcur *c, bool fwd)
{
	if (c->mode == M_END)
		return -1;
	int from, incl = c->mode == M_INCL;
	if (c->mode == M_UNSET)
		from = fwd ? 0 : NKEYS - 1;
	else
		from = incl ? c->pos : (fwd ? c->pos + 1 : c->pos - 1);
	for (int i = from; i >= 0 && i < NKEYS; i += fwd ? 1 : -1)
		if (m->present[i]) {
			c->mode = M_EXCL;
			c->pos = i;
			return i;
		}
	c->mode = M_END;
	return -1;
}

static void
check_db(store_t *st, const struct model *m)
{
	store_txn_t *t;
	cr_assert_eq(store_read_begin(st, &t), SL_OK);
	store_cursor_t *c;
	cr_assert_eq(store_cursor_open(t, STORE_DB_FRAMES, &c), SL_OK);
	struct store_val k, v;
	int i = 0;
	while (store_cursor_next(c, &k, &v) == SL_OK) {
		while (i < NKEYS && !m->present[i])
			i++;
		cr_assert_lt(i, NKEYS, "the store has a key the model does not");
		cr_assert_eq(k.len, 2);
		cr_assert_eq(((const unsigned char *)k.data)[1], i, "key order or content");
		cr_assert_eq(v.len, m->len[i]);
		cr_assert_eq(memcmp(v.data, m->val[i], v.len), 0);
		i++;
	}
	while (i < NKEYS && !m->present[i])
		i++;
	cr_assert_eq(i, NKEYS, "the store lacks key %d", i);
	store_cursor_close(c);
	store_read_end(t);
}

Test(store_model, random_walk_matches_the_model, .timeout = 120)
{
	char *dir = st_util_mkdtemp();
	cr_assert_not_null(dir);
	struct store_options o = { .initial_map_size = 64 << 10 };
	struct sl_error err = { 0 };
	store_t *st;
	cr_assert_eq(store_open(dir, &o, &st, &err), SL_OK, "%s", sl_error_text(&err));
	static struct model committed, cur, saved[MAX_DEPTH];
	int depth = 0;
	/* STORE_MODEL_SEED replays another walk (for local exploration) */
	const char *seed = getenv("STORE_MODEL_SEED");
	rng_state = seed ? strtoull(seed, NULL, 10) : 42;
	store_batch_t *b = NULL;
	store_cursor_t *c = NULL;
	struct mcur mc = { M_UNSET, 0 };
	unsigned char key[2], val[VMAX];
	int commits = 0, rollbacks = 0, cdels = 0;

	for (int step = 0; step < STEPS; step++) {
		if (!b) {
			cr_assert_eq(store_batch_get(st, &b), SL_OK);
			cr_assert_eq(store_cursor_open(store_batch_txn(b), STORE_DB_FRAMES, &c),
			             SL_OK);
			mc.mode = M_UNSET;
		}
		store_txn_t *w = store_batch_txn(b);
		int op = (int)(rnd() % 100), i = (int)(rnd() % NKEYS);
		mkkey(key, i);
		if (op < 30) {
			size_t len = rnd() % VMAX;
			for (size_t j = 0; j < len; j++)
				val[j] = (unsigned char)rnd();
			cr_assert_eq(store_put(w, STORE_DB_FRAMES, key, 2, val, len), SL_OK,
			             "step %d: %s", step, store_last_error(st));
			cur.present[i] = true;
			cur.len[i] = (unsigned short)len;
			memcpy(cur.val[i], val, len);
		} else if (op < 40) {
			cr_assert_eq(store_del(w, STORE_DB_FRAMES, key, 2), SL_OK);
			cur.present[i] = false;
		} else if (op < 45) {
			struct store_val v;
			sl_err e = store_get(w, STORE_DB_FRAMES, key, 2, &v);
			cr_assert_eq(e, cur.present[i] ? SL_OK : SL_ERR_NOT_FOUND, "step %d", step);
			if (e == SL_OK) {
				cr_assert_eq(v.len, cur.len[i]);
				cr_assert_eq(memcmp(v.data, cur.val[i], v.len), 0);
			}
		} else if (op < 50) {
			cr_assert_eq(store_cursor_seek(c, key, 2), SL_OK);
			mc = (struct mcur) { M_INCL, i };
		} else if (op < 70) {
			bool fwd = op < 62;
			struct store_val k, v;
			sl_err e
			        = fwd ? store_cursor_next(c, &k, &v) : store_cursor_prev(c, &k, &v);
			int want = m_step(&cur, &mc, fwd);
			if (want < 0) {
				cr_assert_eq(e, SL_ERR_NOT_FOUND, "step %d: cursor found a key",
				             step);
			} else {
				cr_assert_eq(e, SL_OK, "step %d: cursor missed key %d", step, want);
				cr_assert_eq(((const unsigned char *)k.data)[1], want, "step %d",
				             step);
				cr_assert_eq(v.len, cur.len[want]);
				cr_assert_eq(memcmp(v.data, cur.val[want], v.len), 0);
			}
		} else if (op < 75) {
			sl_err e = store_cursor_del(c);
			if (mc.mode == M_EXCL) {
				cr_assert_eq(e, SL_OK);
				cur.present[mc.pos] = false;
				cdels++;
			} else {
				cr_assert_eq(e, SL_ERR_INVALID_ARG);
			}
		} else if (op < 83) {
			if (depth < MAX_DEPTH) {
				cr_assert_eq(store_savepoint_begin(b), SL_OK);
				saved[depth++] = cur;
			}
		} else if (op < 89) {
			if (depth > 0) {
				store_savepoint_rollback(b);
				cur = saved[--depth];
				rollbacks++;
			}
		} else if (op < 95) {
			if (depth > 0) {
				cr_assert_eq(store_savepoint_release(b), SL_OK);
				depth--;
			}
		} else if (op < 99) {
			if (depth == 0) {
				cr_assert_eq(store_batch_commit(st), SL_OK, "%s",
				             store_last_error(st));
				cr_assert_eq(store_cursor_next(c, NULL, NULL), SL_ERR_INVALID_ARG);
				store_cursor_close(c);
				b = NULL;
				committed = cur;
				commits++;
				check_db(st, &committed);
			}
		} else {
			store_cursor_close(c);
			store_batch_abort(st, SL_ERR_INTERNAL);
			b = NULL;
			depth = 0;
			cur = committed;
			check_db(st, &committed);
		}
	}
	if (b) {
		store_cursor_close(c);
		while (depth-- > 0)
			cr_assert_eq(store_savepoint_release(b), SL_OK);
		cr_assert_eq(store_batch_commit(st), SL_OK);
		committed = cur;
	}
	check_db(st, &committed);
	struct store_stats s;
	store_get_stats(st, &s);
	cr_assert_gt(s.map_growths, 0, "the walk should have grown the map");
	cr_assert_gt(commits, 0);
	cr_assert_gt(rollbacks, 0);
	cr_assert_gt(cdels, 0);
	cr_log_info("seed %llu: %d commits, %d rollbacks, %d cursor deletes, %llu map growths",
	            (unsigned long long)(seed ? strtoull(seed, NULL, 10) : 42), commits, rollbacks,
	            cdels, (unsigned long long)s.map_growths);
	store_free(st);
	st_util_rmdir(dir);
}
