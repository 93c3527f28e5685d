/*
 * store.h - all durable state of sluice: one LMDB environment in the data directory.
 *
 * Model (DESIGN.md, "Durability: group commit, ack after commit"):
 *   - The core thread owns one write batch at a time. A batch is an LMDB write transaction
 *     opened lazily by the first write of a loop iteration; every mutation of that iteration
 *     goes into it, and reads through the batch see those writes.
 *   - store_batch_commit() commits it (fsync, full durability: never MDB_NOSYNC) and then
 *     runs the batch's completion callbacks in the order they were added, with SL_OK. If the
 *     commit fails, nothing of the batch is in the store and every callback gets the error.
 *     Nothing may be acknowledged to anyone before its callback says SL_OK.
 *   - The batch keeps a log of its puts and deletes, so an MDB_MAP_FULL is handled by
 *     aborting, growing the map and replaying the log: callers never see it.
 *   - A savepoint (a nested LMDB transaction) lets one request undo its own writes when it
 *     fails half-way, without touching the rest of the batch.
 *   - Reads outside a batch use a short read transaction: never hold one across loop
 *     iterations (it pins pages and the file grows).
 *
 * Threads: a store_t and its batch belong to the thread that opened it (the core thread).
 * Read transactions may be begun, used and ended from any thread (MDB_NOTLS), one thread
 * at a time per transaction. Map growth waits up to 1 s for open read transactions; if one
 * stays open (e.g. the core thread holds one while writing), growth fails and so does the
 * batch (SL_ERR_STORE, see store_last_error).
 *
 * A batch that hit an unrecoverable failure (map cannot grow, LMDB error during replay) is
 * poisoned: every later write and store_batch_commit return that error, and the commit
 * runs the callbacks with it.
 *
 * Keys: at most STORE_MAX_KEY bytes (LMDB's 511); build keys with the store_key helpers,
 * which hash any component that could be longer. Values returned by get/cursors point into
 * the map and are valid only until the transaction ends.
 */
#ifndef SLUICE_STORE_STORE_H
#define SLUICE_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sl_err.h"

#define STORE_SCHEMA_VERSION 1
#define STORE_MAX_KEY        511

/* The named databases of DESIGN.md's keyspace. */
#define STORE_DB_LIST(X)                                                                           \
	X(META, "meta")                                                                            \
	X(BUSES, "buses")                                                                          \
	X(RULES, "rules")                                                                          \
	X(EVENTS, "events")                                                                        \
	X(DELIVERIES, "deliveries")                                                                \
	X(DEADLETTERS, "deadletters")                                                              \
	X(SCHEDULES, "schedules")                                                                  \
	X(ARCHIVES, "archives")                                                                    \
	X(REPLAYS, "replays")                                                                      \
	X(MACHINES, "machines")                                                                    \
	X(ACTIVITIES, "activities")                                                                \
	X(EXECUTIONS, "executions")                                                                \
	X(EXEC_INDEX, "exec_index")                                                                \
	X(FRAMES, "frames")                                                                        \
	X(HISTORY, "history")                                                                      \
	X(TASKS, "tasks")                                                                          \
	X(TASK_TOKENS, "task_tokens")                                                              \
	X(TIMERS, "timers")                                                                        \
	X(CLOSED, "closed")

enum store_db {
#define STORE_DB_ENUM_(id, name) STORE_DB_##id,
	STORE_DB_LIST(STORE_DB_ENUM_)
#undef STORE_DB_ENUM_
	        STORE_DB__COUNT
};

typedef struct store store_t;
typedef struct store_batch store_batch_t;
typedef struct store_txn store_txn_t;
typedef struct store_cursor store_cursor_t;

struct store_options {
	size_t initial_map_size; /* bytes; 0 = default (1 GiB); grows on demand */
	size_t max_batch_ops;    /* commit early when a batch holds this many ops; 0 = 4096 */
	unsigned max_readers;    /* 0 = 126 */
	/* Scratch stores only (EXPRESS executions): MDB_NOSYNC|MDB_NOMETASYNC, never fsync'd;
	 * a crash may lose or tear the data, so the owner empties it at start. */
	bool no_sync;
};

/* A borrowed byte string (a key or a value). */
struct store_val {
	const void *data;
	size_t len;
};

/* Opens (creating if needed) the data directory dir. Refuses a newer schema with
 * SL_ERR_STORE_SCHEMA and a message naming both versions. Runs mdb_reader_check. */
sl_err store_open(const char *dir, const struct store_options *opt, store_t **out,
                  struct sl_error *err);
/* Aborts any open batch (its callbacks get SL_ERR_SHUTTING_DOWN), closes. NULL is fine. */
void store_free(store_t *st);
/* The explanation of the last LMDB-level failure ("grow map: ..."), or "" (borrowed). */
const char *store_last_error(const store_t *st);

/* --- write batches (group commit) ------------------------------------------------------ */

/* The open batch, opening it if none is. */
sl_err store_batch_get(store_t *st, store_batch_t **out);
/* The open batch or NULL: the loop's flush hook uses it to know whether to commit. */
store_batch_t *store_batch_current(store_t *st);
/* The batch's transaction, for puts, deletes, gets and cursors. */
store_txn_t *store_batch_txn(store_batch_t *b);
/* Number of puts and deletes in the batch. */
size_t store_batch_ops(const store_batch_t *b);
/* True when the batch reached max_batch_ops: the caller should commit now. */
bool store_batch_full(const store_batch_t *b);

typedef void (*store_done_fn)(void *arg, sl_err status);
/* Runs fn(arg, status) after the batch commits (SL_OK) or fails (the error). */
sl_err store_batch_on_commit(store_batch_t *b, store_done_fn fn, void *arg);

/* Commits the open batch if there is one (fsync), then runs its callbacks in order. */
sl_err store_batch_commit(store_t *st);
/* Aborts the open batch; its callbacks run with status. */
void store_batch_abort(store_t *st, sl_err status);

/* Savepoints: undo one request's writes without losing the rest of the batch. Nest freely;
 * every begin is matched by exactly one release or rollback, innermost first. */
sl_err store_savepoint_begin(store_batch_t *b);
sl_err store_savepoint_release(store_batch_t *b);
void store_savepoint_rollback(store_batch_t *b);

/* Marks: positions in the batch's op log. Taking one costs nothing; rolling back to one
 * throws the LMDB transactions away and replays the log up to it (the whole batch so far):
 * for undoing rare failures on hot paths where a savepoint per unit of work costs too much
 * (an LMDB nested txn allocates and merges its dirty page list). A mark can be rolled back
 * to while the savepoints open when it was taken are still open and no other is. */
struct store_mark_pos {
	size_t nops, arena_len, depth;
};
/* Fails only when the batch is poisoned. */
sl_err store_batch_mark(store_batch_t *b, struct store_mark_pos *m);
/* SL_ERR_INVALID_ARG when the savepoints changed since the mark; the poison if replay fails
 * (the batch is then poisoned, as for any failed replay). */
sl_err store_batch_rollback_to(store_batch_t *b, const struct store_mark_pos *m);

/* --- transactions ---------------------------------------------------------------------- */

/* A short read-only transaction; end it before returning to the loop. */
sl_err store_read_begin(store_t *st, store_txn_t **out);
void store_read_end(store_txn_t *txn);

/* SL_ERR_NOT_FOUND when absent. */
sl_err store_get(store_txn_t *txn, enum store_db db, const void *key, size_t klen,
                 struct store_val *out);
/* Write operations: only on a batch's transaction (a read txn gets SL_ERR_INVALID_ARG).
 * Keys are 1..STORE_MAX_KEY bytes; key and value are copied. */
sl_err store_put(store_txn_t *txn, enum store_db db, const void *key, size_t klen, const void *val,
                 size_t vlen);
/* Deleting an absent key is not an error. */
sl_err store_del(store_txn_t *txn, enum store_db db, const void *key, size_t klen);

/* Cursors iterate keys in order. seek positions at the first key >= key (or the first key
 * when key is NULL); next returns SL_ERR_NOT_FOUND at the end. With a prefix set, iteration
 * stops at the first key that does not start with it.
 *
 * Seeks only position (they answer SL_OK even when nothing matches); the first next/prev
 * after a seek returns the entry sought (next: first key >= key; prev after seek: the last
 * key <= key). seek_prefix needs a prefix of 1..STORE_MAX_KEY bytes: use seek(c, NULL, 0)
 * for a full scan. A batch cursor stays valid across savepoints, map growth and writes in
 * the batch (it remembers its key and re-seeks). When the transaction ends the cursor
 * answers SL_ERR_INVALID_ARG; close it in any case. */
sl_err store_cursor_open(store_txn_t *txn, enum store_db db, store_cursor_t **out);
void store_cursor_close(store_cursor_t *c);
sl_err store_cursor_seek(store_cursor_t *c, const void *key, size_t klen);
sl_err store_cursor_seek_prefix(store_cursor_t *c, const void *prefix, size_t plen);
sl_err store_cursor_next(store_cursor_t *c, struct store_val *key, struct store_val *val);
/* Seek to the last key with the prefix and walk backwards (reverse listings). */
sl_err store_cursor_seek_last_prefix(store_cursor_t *c, const void *prefix, size_t plen);
sl_err store_cursor_prev(store_cursor_t *c, struct store_val *key, struct store_val *val);
/* Deletes the entry last returned by next/prev (batch transactions only; logged like
 * store_del). next/prev then continue from its neighbours. */
sl_err store_cursor_del(store_cursor_t *c);

/* Number of keys that start with prefix. */
sl_err store_count_prefix(store_txn_t *txn, enum store_db db, const void *prefix, size_t plen,
                          size_t *out);
/* Deletes every key that starts with prefix (batch transactions only). */
sl_err store_del_prefix(store_txn_t *txn, enum store_db db, const void *prefix, size_t plen);

/* --- facts for /metrics ---------------------------------------------------------------- */

struct store_stats {
	uint64_t commits;         /* batches committed */
	uint64_t commit_failures; /* batches that failed */
	uint64_t ops_committed;   /* puts + deletes committed */
	uint64_t map_growths;
	uint64_t commit_ns_total;
	/* commit latency histogram buckets (upper bounds in microseconds) */
#define STORE_COMMIT_BUCKETS 12
	uint64_t commit_hist[STORE_COMMIT_BUCKETS + 1];
	size_t map_size;   /* bytes reserved */
	size_t used_bytes; /* pages in use * page size */
};
void store_get_stats(store_t *st, struct store_stats *out);
/* Upper bound of bucket i, in microseconds. */
uint64_t store_commit_bucket_us(int i);

/* --- key encoding ---------------------------------------------------------------------- */

/* A key under construction: components appended in order sort as a tuple. */
struct store_key {
	unsigned char buf[STORE_MAX_KEY];
	size_t len;
	/* set when a component did not fit; len is then 0 and stays 0, so store_put/get/del
	 * and prefix seeks refuse the key (SL_ERR_INVALID_ARG) instead of using a truncation */
	bool overflow;
};
void store_key_init(struct store_key *k);
/* Big-endian so byte order = numeric order. */
void store_key_u64(struct store_key *k, uint64_t v);
void store_key_u32(struct store_key *k, uint32_t v);
/* Signed: sign bit flipped so negative sorts first. */
void store_key_i64(struct store_key *k, int64_t v);
/* A string component: the bytes, then a 0 separator (so "a" < "ab" as tuples). If the
 * string is longer than 200 bytes it is replaced by 0xFF + its SHA-256 (prefix scans over
 * such components then match the whole value only). */
void store_key_str(struct store_key *k, const char *s);
/* Raw bytes without separator (last component only). */
void store_key_raw(struct store_key *k, const void *p, size_t n);

/* Decoding helpers for cursors. */
uint64_t store_decode_u64(const void *p);
uint32_t store_decode_u32(const void *p);
int64_t store_decode_i64(const void *p);

#endif
