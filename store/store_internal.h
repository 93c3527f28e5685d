/*
 * store_internal.h - the structures shared by store.c, store_batch.c and store_cursor.c.
 * Not installed, not included outside store/.
 */
#ifndef SLUICE_STORE_STORE_INTERNAL_H
#define SLUICE_STORE_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>

#include "store/store.h"

/* A transaction handle: a short read transaction, or the (innermost) transaction of the
 * open batch. Cursors opened on it are listed so they can be closed before LMDB frees them. */
struct store_txn {
	store_t *st;
	MDB_txn *mt;          /* read txn, or the batch's innermost txn */
	store_batch_t *batch; /* NULL for a read transaction */
	store_cursor_t *cursors;
};

enum store_op_kind { STORE_OP_PUT, STORE_OP_DEL };

/* One logged mutation; key and value bytes live in the batch's arena. */
struct store_op {
	unsigned char kind;
	unsigned char db;
	size_t off; /* key at arena + off, value right after it */
	size_t klen;
	size_t vlen;
};

struct store_mark {
	size_t nops;
	size_t arena_len;
};

struct store_cb {
	store_done_fn fn;
	void *arg;
};

struct store_batch {
	store_t *st;
	struct store_txn txn;
	/* stack[0] is the top-level write txn, stack[depth] the innermost savepoint */
	MDB_txn **stack;
	size_t depth, stack_cap;
	bool live; /* stack holds live LMDB txns */

	struct store_op *ops;
	size_t nops, ops_cap;
	unsigned char *arena;
	size_t arena_len, arena_cap;

	struct store_mark *marks; /* marks[i]: log length when savepoint i+1 began */
	size_t marks_cap;

	struct store_cb *cbs;
	size_t ncbs, cbs_cap;

	sl_err poison; /* set when the batch can no longer be committed */
};

enum store_cur_mode {
	STORE_CUR_UNSET,     /* never positioned: next starts at the first key, prev at the last */
	STORE_CUR_INCLUSIVE, /* next/prev return pos itself if present, else its neighbour */
	STORE_CUR_EXCLUSIVE, /* next/prev return the neighbour of pos */
	STORE_CUR_END,
};

struct store_cursor {
	struct store_txn *txn; /* NULL once the transaction ended */
	store_cursor_t *next, *prev;
	enum store_db db;
	MDB_cursor *mc; /* NULL until first use and after any change of the txn chain */
	bool on_pos;    /* mc is known to sit exactly on pos */
	enum store_cur_mode mode;
	unsigned char pos[STORE_MAX_KEY];
	size_t poslen;
	unsigned char prefix[STORE_MAX_KEY];
	size_t plen;
};

struct store {
	MDB_env *env;
	MDB_dbi dbi[STORE_DB__COUNT];
	char *dir;
	int lock_fd;
	size_t map_size;
	size_t max_batch_ops;
	store_batch_t *batch;
	/* read txns may begin and end on any thread: read_mu guards the fields below, and map
	 * growth holds it (and sets growing) so no read txn begins during the remap */
	pthread_mutex_t read_mu;
	pthread_cond_t read_cv; /* signalled when reads_open drops to 0 or growth ends */
	bool growing;
	struct store_txn *spare_read; /* a reset read txn kept for reuse */
	unsigned reads_open;
	bool fail_next_commit;
	bool map_full_next_commit;
	struct store_stats stats;
	char errbuf[256];
};

/* store.c */
sl_err store_rc(store_t *st, int rc, const char *what);
sl_err store_grow_map(store_t *st);

/* store_cursor.c: close the LMDB cursors of txn (they reopen lazily), or detach them all. */
void store_cursors_suspend(struct store_txn *txn);
void store_cursors_detach(struct store_txn *txn);
/* After a write: LMDB may have moved its cursors, so ours re-seek by key on their next step. */
void store_cursors_unpin(struct store_txn *txn);

#endif
