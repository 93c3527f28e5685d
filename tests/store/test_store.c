#include <criterion/criterion.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "store/store.h"
#include "store/store_testing.h"
#include "store_test_util.h"

static char *dir;

static void
setup(void)
{
	dir = st_util_mkdtemp();
	cr_assert_not_null(dir);
}

static void
teardown(void)
{
	st_util_rmdir(dir);
	dir = NULL;
}

static store_t *
open_store(size_t map)
{
	struct store_options o = { .initial_map_size = map };
	struct sl_error err = { 0 };
	store_t *st = NULL;
	sl_err e = store_open(dir, &o, &st, &err);
	cr_assert_eq(e, SL_OK, "store_open: %s", sl_error_text(&err));
	return st;
}

static void
put_str(store_t *st, enum store_db db, const char *k, const char *v)
{
	store_batch_t *b;
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	cr_assert_eq(store_put(store_batch_txn(b), db, k, strlen(k), v, strlen(v)), SL_OK);
}

static void
del_str(store_t *st, enum store_db db, const char *k)
{
	store_batch_t *b;
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	cr_assert_eq(store_del(store_batch_txn(b), db, k, strlen(k)), SL_OK);
}

/* The value of k as a string, or NULL when absent (read through a fresh read txn). */
static char *
get_str(store_t *st, enum store_db db, const char *k)
{
	store_txn_t *t;
	cr_assert_eq(store_read_begin(st, &t), SL_OK);
	struct store_val v;
	sl_err e = store_get(t, db, k, strlen(k), &v);
	char *r = NULL;
	if (e == SL_OK)
		r = strndup(v.data, v.len);
	else
		cr_assert_eq(e, SL_ERR_NOT_FOUND);
	store_read_end(t);
	return r;
}

static void
assert_value(store_t *st, enum store_db db, const char *k, const char *want)
{
	char *got = get_str(st, db, k);
	if (!want) {
		cr_assert_null(got, "key %s should be absent, has %s", k, got);
		return;
	}
	cr_assert_not_null(got, "key %s missing", k);
	cr_assert_str_eq(got, want, "key %s", k);
	free(got);
}

TestSuite(store, .init = setup, .fini = teardown);

/* --- open, close, schema, lock ----------------------------------------------------------- */

Test(store, open_creates_directory_and_data_persists)
{
	char sub[600];
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	struct sl_error err = { 0 };
	store_t *st;
	cr_assert_eq(store_open(sub, NULL, &st, &err), SL_OK, "%s", sl_error_text(&err));
	struct stat sb;
	cr_assert_eq(stat(sub, &sb), 0);
	cr_assert(S_ISDIR(sb.st_mode));
	cr_assert_eq(sb.st_mode & 0777, 0700, "mode %o", sb.st_mode & 0777);
	store_batch_t *b;
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	cr_assert_eq(store_put(store_batch_txn(b), STORE_DB_BUSES, "default", 7, "{}", 2), SL_OK);
	cr_assert_eq(store_batch_commit(st), SL_OK);
	cr_assert_null(store_batch_current(st));
	store_free(st);

	cr_assert_eq(store_open(sub, NULL, &st, &err), SL_OK, "%s", sl_error_text(&err));
	store_txn_t *t;
	cr_assert_eq(store_read_begin(st, &t), SL_OK);
	struct store_val v;
	cr_assert_eq(store_get(t, STORE_DB_BUSES, "default", 7, &v), SL_OK);
	cr_assert_eq(v.len, 2);
	cr_assert_eq(memcmp(v.data, "{}", 2), 0);
	/* the schema version was written on first open */
	cr_assert_eq(store_get(t, STORE_DB_META, "schema", 6, &v), SL_OK);
	cr_assert_eq(v.len, 4);
	cr_assert_eq(store_decode_u32(v.data), STORE_SCHEMA_VERSION);
	store_read_end(t);
	store_free(st);
}

Test(store, open_refuses_bad_arguments)
{
	struct sl_error err = { 0 };
	store_t *st = (store_t *)1;
	cr_assert_eq(store_open("", NULL, &st, &err), SL_ERR_INVALID_ARG);
	cr_assert_null(st);
	struct store_options o = { .initial_map_size = 1000 };
	cr_assert_eq(store_open(dir, &o, &st, &err), SL_ERR_INVALID_ARG);
	cr_assert(strstr(err.message, "initial_map_size"), "%s", err.message);
	char file[600];
	snprintf(file, sizeof(file), "%s/plain", dir);
	FILE *f = fopen(file, "w");
	cr_assert_not_null(f);
	fclose(f);
	cr_assert_eq(store_open(file, NULL, &st, &err), SL_ERR_INVALID_ARG);
	cr_assert(strstr(err.message, "not a directory"), "%s", err.message);
}

Test(store, garbage_data_file_is_a_clear_error)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < 16384; i++)
		fputc((i * 7919) & 0xFF, f);
	fclose(f);
	struct sl_error err = { 0 };
	store_t *st = NULL;
	sl_err e = store_open(dir, NULL, &st, &err);
	cr_assert_neq(e, SL_OK);
	cr_assert_null(st);
	cr_assert(strstr(err.message, "cannot open LMDB environment in"), "%s", err.message);
	cr_assert(strstr(err.message, dir), "%s", err.message);
}

/* Writes meta/schema with raw LMDB, as a newer (or broken) sluice would have. */
static void
write_raw_schema(const void *val, size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
	MDB_val k = { 6, "schema" }, v = { len, (void *)val };
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

Test(store, newer_schema_is_refused_naming_both_versions)
{
	store_free(open_store(0));
	unsigned char v[4] = { 0, 0, 0, STORE_SCHEMA_VERSION + 1 };
	write_raw_schema(v, 4);
	struct sl_error err = { 0 };
	store_t *st = NULL;
	cr_assert_eq(store_open(dir, NULL, &st, &err), SL_ERR_STORE_SCHEMA);
	cr_assert_null(st);
	char want[64];
	snprintf(want, sizeof(want), "schema version %d", STORE_SCHEMA_VERSION + 1);
	cr_assert(strstr(err.message, want), "%s", err.message);
	snprintf(want, sizeof(want), "up to version %d", STORE_SCHEMA_VERSION);
	cr_assert(strstr(err.message, want), "%s", err.message);
	cr_assert(strstr(err.message, dir), "%s", err.message);
	/* the refusal released the lock: a correct schema opens again */
	unsigned char ok[4] = { 0, 0, 0, STORE_SCHEMA_VERSION };
	write_raw_schema(ok, 4);
	store_free(open_store(0));
}

Test(store, malformed_schema_is_refused)
{
	store_free(open_store(0));
	write_raw_schema("1", 1);
	struct sl_error err = { 0 };
	store_t *st = NULL;
	cr_assert_eq(store_open(dir, NULL, &st, &err), SL_ERR_STORE_SCHEMA);
	cr_assert(strstr(err.message, "expected a 4-byte version"), "%s", err.message);
}

Test(store, second_open_reports_busy_with_pid)
{
	store_t *st = open_store(0);
	struct sl_error err = { 0 };
	store_t *st2 = NULL;
	cr_assert_eq(store_open(dir, NULL, &st2, &err), SL_ERR_STORE_BUSY);
	cr_assert_null(st2);
	char want[700];
	snprintf(want, sizeof(want), "data directory %s is in use by another process (pid %ld)",
	         dir, (long)getpid());
	cr_assert_str_eq(err.message, want);
	store_free(st);
	st2 = open_store(0);
	store_free(st2);
}

/* --- put, get, del ------------------------------------------------------------------------ */

Test(store, put_get_del_and_visibility)
{
	store_t *st = open_store(0);
	put_str(st, STORE_DB_RULES, "r1", "one");
	put_str(st, STORE_DB_RULES, "r2", "two");
	store_batch_t *b = store_batch_current(st);
	cr_assert_not_null(b);
	cr_assert_eq(store_batch_ops(b), 2);
	/* the batch sees its writes, a read txn does not until commit */
	struct store_val v;
	cr_assert_eq(store_get(store_batch_txn(b), STORE_DB_RULES, "r1", 2, &v), SL_OK);
	cr_assert_eq(v.len, 3);
	assert_value(st, STORE_DB_RULES, "r1", NULL);
	/* same key in another database is another key */
	cr_assert_eq(store_get(store_batch_txn(b), STORE_DB_BUSES, "r1", 2, &v), SL_ERR_NOT_FOUND);
	cr_assert_eq(store_batch_commit(st), SL_OK);
	assert_value(st, STORE_DB_RULES, "r1", "one");

	del_str(st, STORE_DB_RULES, "r1");
	del_str(st, STORE_DB_RULES, "never-there");
	put_str(st, STORE_DB_RULES, "r2", "TWO");
	cr_assert_eq(store_batch_commit(st), SL_OK);
	assert_value(st, STORE_DB_RULES, "r1", NULL);
	assert_value(st, STORE_DB_RULES, "r2", "TWO");

	struct store_stats s;
	store_get_stats(st, &s);
	cr_assert_eq(s.commits, 2);
	cr_assert_eq(s.ops_committed, 5);
	store_free(st);
}

Test(store, writes_through_a_read_txn_and_bad_keys_are_refused)
{
	store_t *st = open_store(0);
	store_txn_t *t;
	cr_assert_eq(store_read_begin(st, &t), SL_OK);
	cr_assert_eq(store_put(t, STORE_DB_EVENTS, "k", 1, "v", 1), SL_ERR_INVALID_ARG);
	cr_assert(strstr(store_last_error(st), "read transaction"), "%s", store_last_error(st));
	cr_assert_eq(store_del(t, STORE_DB_EVENTS, "k", 1), SL_ERR_INVALID_ARG);
	store_cursor_t *c;
	cr_assert_eq(store_cursor_open(t, STORE_DB_EVENTS, &c), SL_OK);
	cr_assert_eq(store_cursor_next(c, NULL, NULL), SL_ERR_NOT_FOUND);
	cr_assert_eq(store_cursor_del(c), SL_ERR_INVALID_ARG);
	store_cursor_close(c);
	store_read_end(t);

	store_batch_t *b;
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	store_txn_t *w = store_batch_txn(b);
	char big[STORE_MAX_KEY + 1];
	memset(big, 'x', sizeof(big));
	cr_assert_eq(store_put(w, STORE_DB_EVENTS, big, sizeof(big), "v", 1), SL_ERR_INVALID_ARG);
	cr_assert_eq(store_put(w, STORE_DB_EVENTS, big, STORE_MAX_KEY, "v", 1), SL_OK);
	cr_assert_eq(store_put(w, STORE_DB_EVENTS, "", 0, "v", 1), SL_ERR_INVALID_ARG);
	cr_assert_eq(store_put(w, (enum store_db)STORE_DB__COUNT, "k", 1, "v", 1),
	             SL_ERR_INVALID_ARG);
	cr_assert_eq(store_put(w, STORE_DB_EVENTS, "k", 1, NULL, 5), SL_ERR_INVALID_ARG);
	cr_assert_eq(store_put(w, STORE_DB_EVENTS, "empty", 5, NULL, 0), SL_OK);
	struct store_key k;
	store_key_init(&k);
	store_key_raw(&k, big, 505);
	store_key_u64(&k, 1);
	cr_assert(k.overflow);
	cr_assert_eq(store_put(w, STORE_DB_EVENTS, k.buf, k.len, "v", 1), SL_ERR_INVALID_ARG);
	cr_assert_eq(store_batch_ops(b), 2, "refused writes are not logged");
	cr_assert_eq(store_batch_commit(st), SL_OK);
	assert_value(st, STORE_DB_EVENTS, "empty", "");
	store_free(st);
}

/* --- cursors ------------------------------------------------------------------------------ */

static void
put_key(store_txn_t *w, const char *s, uint64_t n)
{
	struct store_key k;
	store_key_init(&k);
	store_key_str(&k, s);
	store_key_u64(&k, n);
	char v[64];
	int len = snprintf(v, sizeof(v), "%s/%llu", s, (unsigned long long)n);
	cr_assert_eq(store_put(w, STORE_DB_HISTORY, k.buf, k.len, v, (size_t)len), SL_OK);
}

static void
fill_history(store_t *st)
{
	store_batch_t *b;
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	const char *names[] = { "a", "ab", "b" };
	for (int i = 0; i < 3; i++)
		for (uint64_t n = 1; n <= 5; n++)
			put_key(store_batch_txn(b), names[i], n * 100);
	cr_assert_eq(store_batch_commit(st), SL_OK);
}

static int
collect(store_cursor_t *c, bool fwd, char out[][64], int max)
{
	int n = 0;
	struct store_val k, v;
	while ((fwd ? store_cursor_next(c, &k, &v) : store_cursor_prev(c, &k, &v)) == SL_OK) {
		cr_assert_lt(n, max);
		snprintf(out[n++], 64, "%.*s", (int)v.len, (const char *)v.data);
	}
	return n;
}

Test(store, cursor_prefix_forward_and_backward)
{
	store_t *st = open_store(0);
	fill_history(st);
	store_txn_t *t;
	cr_assert_eq(store_read_begin(st, &t), SL_OK);
	store_cursor_t *c;
	cr_assert_eq(store_cursor_open(t, STORE_DB_HISTORY, &c), SL_OK);
	char got[32][64];

	struct store_key p;
	store_key_init(&p);
	store_key_str(&p, "a");
	cr_assert_eq(store_cursor_seek_prefix(c, p.buf, p.len), SL_OK);
	int n = collect(c, true, got, 32);
	cr_assert_eq(n, 5, "the tuple prefix (\"a\") excludes (\"ab\")");
	for (int i = 0; i < 5; i++) {
		char want[64];
		snprintf(want, sizeof(want), "a/%d", (i + 1) * 100);
		cr_assert_str_eq(got[i], want);
	}
	cr_assert_eq(store_cursor_next(c, NULL, NULL), SL_ERR_NOT_FOUND, "stays at the end");

	cr_assert_eq(store_cursor_seek_last_prefix(c, p.buf, p.len), SL_OK);
	n = collect(c, false, got, 32);
	cr_assert_eq(n, 5);
	cr_assert_str_eq(got[0], "a/500");
	cr_assert_str_eq(got[4], "a/100");

	/* a raw byte prefix "a" covers both "a" and "ab" tuples */
	cr_assert_eq(store_cursor_seek_prefix(c, "a", 1), SL_OK);
	cr_assert_eq(collect(c, true, got, 32), 10);
	cr_assert_eq(store_cursor_seek_last_prefix(c, "a", 1), SL_OK);
	cr_assert_eq(collect(c, false, got, 32), 10);
	cr_assert_str_eq(got[0], "ab/500");
	cr_assert_str_eq(got[9], "a/100");

	/* the last prefix of the keyspace, and one that matches nothing */
	cr_assert_eq(store_cursor_seek_last_prefix(c, "b", 1), SL_OK);
	cr_assert_eq(collect(c, false, got, 32), 5);
	cr_assert_str_eq(got[0], "b/500");
	cr_assert_eq(store_cursor_seek_last_prefix(c, "\xff\xff", 2), SL_OK);
	cr_assert_eq(store_cursor_prev(c, NULL, NULL), SL_ERR_NOT_FOUND);
	cr_assert_eq(store_cursor_seek_prefix(c, "c", 1), SL_OK);
	cr_assert_eq(store_cursor_next(c, NULL, NULL), SL_ERR_NOT_FOUND);
	cr_assert_eq(store_cursor_seek_last_prefix(c, "0", 1), SL_OK);
	cr_assert_eq(store_cursor_prev(c, NULL, NULL), SL_ERR_NOT_FOUND);

	/* seek into the middle, then walk both ways from there */
	struct store_key k;
	store_key_init(&k);
	store_key_str(&k, "ab");
	store_key_u64(&k, 250);
	cr_assert_eq(store_cursor_seek(c, k.buf, k.len), SL_OK);
	struct store_val kv, vv;
	cr_assert_eq(store_cursor_next(c, &kv, &vv), SL_OK);
	cr_assert_eq(vv.len, 6);
	cr_assert_eq(memcmp(vv.data, "ab/300", 6), 0);
	cr_assert_eq(store_decode_u64((const unsigned char *)kv.data + 3), 300);
	cr_assert_eq(store_cursor_prev(c, NULL, &vv), SL_OK);
	cr_assert_eq(memcmp(vv.data, "ab/200", 6), 0);

	/* full scans */
	cr_assert_eq(store_cursor_seek(c, NULL, 0), SL_OK);
	cr_assert_eq(collect(c, true, got, 32), 15);
	cr_assert_eq(store_cursor_seek(c, NULL, 0), SL_OK);
	cr_assert_eq(collect(c, false, got, 32), 15);
	cr_assert_str_eq(got[0], "b/500");
	cr_assert_eq(store_cursor_seek_prefix(c, "", 0), SL_ERR_INVALID_ARG);

	store_cursor_close(c);
	store_read_end(t);
	store_free(st);
}

Test(store, cursor_del_while_iterating_both_ways)
{
	store_t *st = open_store(0);
	fill_history(st);
	store_batch_t *b;
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	store_cursor_t *c;
	cr_assert_eq(store_cursor_open(store_batch_txn(b), STORE_DB_HISTORY, &c), SL_OK);
	cr_assert_eq(store_cursor_del(c), SL_ERR_INVALID_ARG, "not on an entry yet");
	cr_assert_eq(store_cursor_seek_prefix(c, "a", 1), SL_OK);
	struct store_val k, v;
	int i = 0, seen = 0;
	while (store_cursor_next(c, &k, &v) == SL_OK) {
		seen++;
		if (i++ % 2 == 0)
			cr_assert_eq(store_cursor_del(c), SL_OK);
	}
	cr_assert_eq(seen, 10, "deleting does not skip entries");
	/* backwards over "b", deleting everything */
	cr_assert_eq(store_cursor_seek_last_prefix(c, "b", 1), SL_OK);
	seen = 0;
	while (store_cursor_prev(c, &k, &v) == SL_OK) {
		seen++;
		cr_assert_eq(store_cursor_del(c), SL_OK);
	}
	cr_assert_eq(seen, 5);
	cr_assert_eq(store_batch_commit(st), SL_OK);
	cr_assert_eq(store_cursor_next(c, &k, &v), SL_ERR_INVALID_ARG, "txn ended");
	store_cursor_close(c);

	store_txn_t *t;
	cr_assert_eq(store_read_begin(st, &t), SL_OK);
	cr_assert_eq(store_cursor_open(t, STORE_DB_HISTORY, &c), SL_OK);
	char got[32][64];
	cr_assert_eq(collect(c, true, got, 32), 5);
	cr_assert_str_eq(got[0], "a/200");
	cr_assert_str_eq(got[1], "a/400");
	cr_assert_str_eq(got[2], "ab/100");
	cr_assert_str_eq(got[4], "ab/500");
	store_cursor_close(c);
	store_read_end(t);
	store_free(st);
}

Test(store, cursor_survives_savepoints_and_writes)
{
	store_t *st = open_store(0);
	fill_history(st);
	store_batch_t *b;
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	store_txn_t *w = store_batch_txn(b);
	store_cursor_t *c;
	cr_assert_eq(store_cursor_open(w, STORE_DB_HISTORY, &c), SL_OK);
	cr_assert_eq(store_cursor_seek_prefix(c, "b", 1), SL_OK);
	struct store_val k, v;
	cr_assert_eq(store_cursor_next(c, &k, &v), SL_OK); /* b/100 */
	cr_assert_eq(store_savepoint_begin(b), SL_OK);
	put_key(w, "b", 150);
	cr_assert_eq(store_cursor_next(c, &k, &v), SL_OK);
	cr_assert_eq(memcmp(v.data, "b/150", 5), 0, "sees the savepoint's write");
	store_savepoint_rollback(b);
	cr_assert_eq(store_cursor_next(c, &k, &v), SL_OK);
	cr_assert_eq(memcmp(v.data, "b/200", 5), 0, "the rolled-back key vanished under it");
	cr_assert_eq(store_cursor_prev(c, &k, &v), SL_OK);
	cr_assert_eq(memcmp(v.data, "b/100", 5), 0);
	store_cursor_close(c);
	cr_assert_eq(store_batch_commit(st), SL_OK);
	store_free(st);
}

/* --- savepoints --------------------------------------------------------------------------- */

Test(store, savepoints_nest_and_roll_back_exactly_their_ops)
{
	store_t *st = open_store(0);
	put_str(st, STORE_DB_TASKS, "keep", "0");
	put_str(st, STORE_DB_TASKS, "x", "before");
	store_batch_t *b = store_batch_current(st);
	cr_assert_eq(store_savepoint_begin(b), SL_OK); /* request 1 */
	put_str(st, STORE_DB_TASKS, "a", "1");
	put_str(st, STORE_DB_TASKS, "x", "in-1");
	cr_assert_eq(store_savepoint_begin(b), SL_OK); /* request 1, nested */
	put_str(st, STORE_DB_TASKS, "b", "2");
	del_str(st, STORE_DB_TASKS, "keep");
	store_savepoint_rollback(b);
	cr_assert_eq(store_batch_ops(b), 4);
	cr_assert_eq(store_savepoint_begin(b), SL_OK);
	put_str(st, STORE_DB_TASKS, "c", "3");
	cr_assert_eq(store_savepoint_release(b), SL_OK);
	cr_assert_eq(store_savepoint_release(b), SL_OK);
	cr_assert_eq(store_savepoint_begin(b), SL_OK); /* request 2 fails half-way */
	put_str(st, STORE_DB_TASKS, "d", "4");
	put_str(st, STORE_DB_TASKS, "x", "in-2");
	store_savepoint_rollback(b);
	cr_assert_eq(store_savepoint_release(b), SL_ERR_INVALID_ARG, "no savepoint is open");
	cr_assert_eq(store_batch_ops(b), 5);
	cr_assert_eq(store_batch_commit(st), SL_OK);
	assert_value(st, STORE_DB_TASKS, "keep", "0");
	assert_value(st, STORE_DB_TASKS, "a", "1");
	assert_value(st, STORE_DB_TASKS, "b", NULL);
	assert_value(st, STORE_DB_TASKS, "c", "3");
	assert_value(st, STORE_DB_TASKS, "d", NULL);
	assert_value(st, STORE_DB_TASKS, "x", "in-1");
	store_free(st);
}

/* A mark costs nothing; rolling back to it replays the log up to it, keeping the savepoint
 * that was open around it usable. */
Test(store, marks_roll_back_by_replay_inside_a_savepoint)
{
	store_t *st = open_store(0);
	put_str(st, STORE_DB_TASKS, "keep", "0");
	store_batch_t *b = store_batch_current(st);
	cr_assert_eq(store_savepoint_begin(b), SL_OK);
	put_str(st, STORE_DB_TASKS, "a", "1");
	struct store_mark_pos m;
	cr_assert_eq(store_batch_mark(b, &m), SL_OK);
	put_str(st, STORE_DB_TASKS, "b", "2");
	put_str(st, STORE_DB_TASKS, "a", "changed");
	del_str(st, STORE_DB_TASKS, "keep");
	/* a cursor open across the rollback re-seeks by key */
	store_cursor_t *cur = NULL;
	cr_assert_eq(store_cursor_open(store_batch_txn(b), STORE_DB_TASKS, &cur), SL_OK);
	cr_assert_eq(store_cursor_seek(cur, NULL, 0), SL_OK);
	cr_assert_eq(store_batch_rollback_to(b, &m), SL_OK);
	cr_assert_eq(store_batch_ops(b), 2);
	struct store_val k, v;
	cr_assert_eq(store_cursor_next(cur, &k, &v), SL_OK);
	cr_assert(k.len == 1 && memcmp(k.data, "a", 1) == 0);
	cr_assert(v.len == 1 && memcmp(v.data, "1", 1) == 0);
	cr_assert_eq(store_cursor_next(cur, &k, &v), SL_OK);
	cr_assert(k.len == 4 && memcmp(k.data, "keep", 4) == 0);
	cr_assert_eq(store_cursor_next(cur, &k, &v), SL_ERR_NOT_FOUND);
	store_cursor_close(cur);
	/* a mark of another savepoint level is refused */
	struct store_mark_pos inner;
	cr_assert_eq(store_savepoint_begin(b), SL_OK);
	cr_assert_eq(store_batch_mark(b, &inner), SL_OK);
	cr_assert_eq(store_batch_rollback_to(b, &m), SL_ERR_INVALID_ARG);
	put_str(st, STORE_DB_TASKS, "c", "3");
	cr_assert_eq(store_savepoint_release(b), SL_OK);
	cr_assert_eq(store_batch_rollback_to(b, &inner), SL_ERR_INVALID_ARG);
	/* the savepoint opened before the mark still rolls back to where it began */
	cr_assert_eq(store_batch_mark(b, &m), SL_OK);
	cr_assert_eq(store_batch_rollback_to(b, &m), SL_OK, "nothing to undo");
	store_savepoint_rollback(b);
	cr_assert_eq(store_batch_ops(b), 1);
	put_str(st, STORE_DB_TASKS, "d", "4");
	cr_assert_eq(store_batch_mark(b, &m), SL_OK);
	put_str(st, STORE_DB_TASKS, "e", "5");
	cr_assert_eq(store_batch_rollback_to(b, &m), SL_OK);
	cr_assert_eq(store_batch_commit(st), SL_OK);
	assert_value(st, STORE_DB_TASKS, "keep", "0");
	assert_value(st, STORE_DB_TASKS, "a", NULL);
	assert_value(st, STORE_DB_TASKS, "b", NULL);
	assert_value(st, STORE_DB_TASKS, "c", NULL);
	assert_value(st, STORE_DB_TASKS, "d", "4");
	assert_value(st, STORE_DB_TASKS, "e", NULL);
	store_free(st);
}

/* --- commit and callbacks ----------------------------------------------------------------- */

struct cb_log {
	int n;
	int order[8];
	sl_err status[8];
};

struct cb_arg {
	struct cb_log *log;
	int id;
};

static void
record_cb(void *arg, sl_err status)
{
	struct cb_arg *a = arg;
	a->log->order[a->log->n] = a->id;
	a->log->status[a->log->n] = status;
	a->log->n++;
}

Test(store, callbacks_run_in_order_after_commit)
{
	store_t *st = open_store(0);
	struct cb_log log = { 0 };
	struct cb_arg args[3] = { { &log, 1 }, { &log, 2 }, { &log, 3 } };
	put_str(st, STORE_DB_EVENTS, "e1", "x");
	store_batch_t *b = store_batch_current(st);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(store_batch_on_commit(b, record_cb, &args[i]), SL_OK);
	cr_assert_eq(log.n, 0, "nothing runs before the commit");
	cr_assert_eq(store_batch_commit(st), SL_OK);
	cr_assert_eq(log.n, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(log.order[i], i + 1);
		cr_assert_eq(log.status[i], SL_OK);
	}
	cr_assert_eq(store_batch_commit(st), SL_OK, "no batch: nothing to do");
	cr_assert_eq(log.n, 3);
	store_free(st);
}

static store_t *cb_store;
static sl_err cb_saw;

static void
write_again_cb(void *arg, sl_err status)
{
	cb_saw = status;
	/* the committed batch is detached: this opens the next one */
	store_batch_t *b;
	cr_assert_null(store_batch_current(cb_store));
	cr_assert_eq(store_batch_get(cb_store, &b), SL_OK);
	cr_assert_eq(store_put(store_batch_txn(b), STORE_DB_EVENTS, "again", 5, "2", 1), SL_OK);
	cr_assert_eq(store_batch_on_commit(b, record_cb, arg), SL_OK);
}

Test(store, a_callback_may_write_into_the_next_batch)
{
	store_t *st = open_store(0);
	cb_store = st;
	struct cb_log log = { 0 };
	struct cb_arg a = { &log, 7 };
	put_str(st, STORE_DB_EVENTS, "first", "1");
	cr_assert_eq(store_batch_on_commit(store_batch_current(st), write_again_cb, &a), SL_OK);
	cr_assert_eq(store_batch_commit(st), SL_OK);
	cr_assert_eq(cb_saw, SL_OK);
	cr_assert_not_null(store_batch_current(st));
	cr_assert_eq(store_batch_ops(store_batch_current(st)), 1);
	assert_value(st, STORE_DB_EVENTS, "first", "1");
	assert_value(st, STORE_DB_EVENTS, "again", NULL);
	cr_assert_eq(store_batch_commit(st), SL_OK);
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.order[0], 7);
	assert_value(st, STORE_DB_EVENTS, "again", "2");
	store_free(st);
}

Test(store, failed_commit_reaches_every_callback_and_changes_nothing)
{
	store_t *st = open_store(0);
	put_str(st, STORE_DB_EXECUTIONS, "x", "old");
	cr_assert_eq(store_batch_commit(st), SL_OK);

	struct cb_log log = { 0 };
	struct cb_arg args[2] = { { &log, 1 }, { &log, 2 } };
	put_str(st, STORE_DB_EXECUTIONS, "x", "new");
	put_str(st, STORE_DB_EXECUTIONS, "y", "new");
	store_batch_t *b = store_batch_current(st);
	cr_assert_eq(store_batch_on_commit(b, record_cb, &args[0]), SL_OK);
	cr_assert_eq(store_batch_on_commit(b, record_cb, &args[1]), SL_OK);
	store_test_fail_next_commit(st);
	cr_assert_eq(store_batch_commit(st), SL_ERR_IO);
	cr_assert(strstr(store_last_error(st), "injected"), "%s", store_last_error(st));
	cr_assert_eq(log.n, 2);
	cr_assert_eq(log.status[0], SL_ERR_IO);
	cr_assert_eq(log.status[1], SL_ERR_IO);
	cr_assert_eq(log.order[1], 2);
	cr_assert_null(store_batch_current(st));
	assert_value(st, STORE_DB_EXECUTIONS, "x", "old");
	assert_value(st, STORE_DB_EXECUTIONS, "y", NULL);
	struct store_stats s;
	store_get_stats(st, &s);
	cr_assert_eq(s.commit_failures, 1);
	cr_assert_eq(s.commits, 1);

	/* the store goes on */
	put_str(st, STORE_DB_EXECUTIONS, "y", "later");
	cr_assert_eq(store_batch_commit(st), SL_OK);
	assert_value(st, STORE_DB_EXECUTIONS, "y", "later");
	store_free(st);
}

Test(store, commit_with_open_savepoint_fails_cleanly)
{
	store_t *st = open_store(0);
	struct cb_log log = { 0 };
	struct cb_arg a = { &log, 1 };
	put_str(st, STORE_DB_EXECUTIONS, "x", "1");
	store_batch_t *b = store_batch_current(st);
	cr_assert_eq(store_batch_on_commit(b, record_cb, &a), SL_OK);
	cr_assert_eq(store_savepoint_begin(b), SL_OK);
	cr_assert_eq(store_batch_commit(st), SL_ERR_INTERNAL);
	cr_assert(strstr(store_last_error(st), "savepoint"), "%s", store_last_error(st));
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.status[0], SL_ERR_INTERNAL);
	assert_value(st, STORE_DB_EXECUTIONS, "x", NULL);
	store_free(st);
}

Test(store, abort_and_free_run_callbacks_with_the_status)
{
	store_t *st = open_store(0);
	struct cb_log log = { 0 };
	struct cb_arg a = { &log, 1 }, c = { &log, 2 };
	put_str(st, STORE_DB_TIMERS, "t", "1");
	cr_assert_eq(store_batch_on_commit(store_batch_current(st), record_cb, &a), SL_OK);
	store_batch_abort(st, SL_ERR_TIMEOUT);
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.status[0], SL_ERR_TIMEOUT);
	assert_value(st, STORE_DB_TIMERS, "t", NULL);
	put_str(st, STORE_DB_TIMERS, "t", "2");
	cr_assert_eq(store_batch_on_commit(store_batch_current(st), record_cb, &c), SL_OK);
	store_free(st);
	cr_assert_eq(log.n, 2);
	cr_assert_eq(log.status[1], SL_ERR_SHUTTING_DOWN);
	st = open_store(0);
	assert_value(st, STORE_DB_TIMERS, "t", NULL);
	store_free(st);
	store_free(NULL);
}

/* --- map growth ----------------------------------------------------------------------------- */

#define GROW_N    4000
#define GROW_VLEN 1000

static void
grow_val(char *v, int i)
{
	memset(v, 'a' + i % 26, GROW_VLEN);
	snprintf(v, 16, "%d:", i);
}

static void
grow_key(struct store_key *k, int i)
{
	store_key_init(k);
	store_key_u32(k, (uint32_t)i);
}

Test(store, map_grows_transparently_inside_one_batch)
{
	store_t *st = open_store(64 << 10);
	struct store_stats s;
	store_get_stats(st, &s);
	cr_assert_eq(s.map_size, 64 << 10);
	struct cb_log log = { 0 };
	struct cb_arg a = { &log, 1 };
	store_batch_t *b;
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	cr_assert_eq(store_batch_on_commit(b, record_cb, &a), SL_OK);
	store_txn_t *w = store_batch_txn(b);
	char v[GROW_VLEN];
	struct store_key k;
	/* a third plain, a third in a released savepoint, a third in a rolled-back nested one:
	 * growth replays must keep that structure */
	for (int i = 0; i < GROW_N; i++) {
		if (i == GROW_N / 3)
			cr_assert_eq(store_savepoint_begin(b), SL_OK);
		if (i == 2 * GROW_N / 3)
			cr_assert_eq(store_savepoint_begin(b), SL_OK);
		grow_key(&k, i);
		grow_val(v, i);
		cr_assert_eq(store_put(w, STORE_DB_EVENTS, k.buf, k.len, v, GROW_VLEN), SL_OK,
		             "put %d: %s", i, store_last_error(st));
	}
	store_savepoint_rollback(b);
	cr_assert_eq(store_savepoint_release(b), SL_OK);
	cr_assert_eq(store_batch_commit(st), SL_OK, "%s", store_last_error(st));
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.status[0], SL_OK);
	store_get_stats(st, &s);
	cr_assert_gt(s.map_growths, 0);
	cr_assert_gt(s.map_size, (size_t)GROW_N / 2 * GROW_VLEN);
	cr_assert_gt(s.used_bytes, (size_t)GROW_N / 2 * GROW_VLEN);
	cr_assert_leq(s.used_bytes, s.map_size);
	store_free(st);

	st = open_store(64 << 10);
	store_txn_t *t;
	cr_assert_eq(store_read_begin(st, &t), SL_OK);
	char want[GROW_VLEN];
	for (int i = 0; i < GROW_N; i++) {
		grow_key(&k, i);
		struct store_val got;
		sl_err e = store_get(t, STORE_DB_EVENTS, k.buf, k.len, &got);
		if (i >= 2 * GROW_N / 3) {
			cr_assert_eq(e, SL_ERR_NOT_FOUND, "key %d was rolled back", i);
			continue;
		}
		cr_assert_eq(e, SL_OK, "key %d", i);
		grow_val(want, i);
		cr_assert_eq(got.len, GROW_VLEN);
		cr_assert_eq(memcmp(got.data, want, GROW_VLEN), 0, "value %d", i);
	}
	store_read_end(t);
	store_free(st);
}

Test(store, map_full_at_commit_grows_and_retries)
{
	store_t *st = open_store(0);
	struct cb_log log = { 0 };
	struct cb_arg a = { &log, 1 };
	put_str(st, STORE_DB_FRAMES, "f1", "one");
	del_str(st, STORE_DB_FRAMES, "f0");
	put_str(st, STORE_DB_FRAMES, "f2", "two");
	cr_assert_eq(store_batch_on_commit(store_batch_current(st), record_cb, &a), SL_OK);
	store_test_map_full_next_commit(st);
	cr_assert_eq(store_batch_commit(st), SL_OK, "%s", store_last_error(st));
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.status[0], SL_OK);
	struct store_stats s;
	store_get_stats(st, &s);
	cr_assert_eq(s.map_growths, 1);
	cr_assert_eq(s.map_size, (size_t)2 << 30);
	cr_assert_eq(s.commits, 1);
	cr_assert_eq(s.commit_failures, 0);
	assert_value(st, STORE_DB_FRAMES, "f1", "one");
	assert_value(st, STORE_DB_FRAMES, "f2", "two");
	store_free(st);
	/* the larger map persists */
	st = open_store(0);
	store_get_stats(st, &s);
	cr_assert_eq(s.map_size, (size_t)2 << 30);
	store_free(st);
}

Test(store, growth_with_a_read_txn_open_fails_the_batch_cleanly)
{
	store_t *st = open_store(64 << 10);
	store_txn_t *t;
	cr_assert_eq(store_read_begin(st, &t), SL_OK);
	struct cb_log log = { 0 };
	struct cb_arg a = { &log, 1 };
	store_batch_t *b;
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	cr_assert_eq(store_batch_on_commit(b, record_cb, &a), SL_OK);
	char v[GROW_VLEN] = { 0 };
	struct store_key k;
	sl_err e = SL_OK;
	for (int i = 0; i < 1000 && e == SL_OK; i++) {
		grow_key(&k, i);
		e = store_put(store_batch_txn(b), STORE_DB_EVENTS, k.buf, k.len, v, sizeof(v));
	}
	cr_assert_eq(e, SL_ERR_STORE);
	cr_assert(strstr(store_last_error(st), "read transaction"), "%s", store_last_error(st));
	cr_assert_eq(store_put(store_batch_txn(b), STORE_DB_EVENTS, "z", 1, "v", 1), SL_ERR_STORE,
	             "the batch stays failed");
	store_read_end(t);
	cr_assert_eq(store_batch_commit(st), SL_ERR_STORE);
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.status[0], SL_ERR_STORE);
	/* the next batch grows normally */
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	for (int i = 0; i < 200; i++) {
		grow_key(&k, i);
		cr_assert_eq(
		        store_put(store_batch_txn(b), STORE_DB_EVENTS, k.buf, k.len, v, sizeof(v)),
		        SL_OK);
	}
	cr_assert_eq(store_batch_commit(st), SL_OK);
	store_free(st);
}

struct reader_arg {
	store_t *st;
	atomic_bool stop;
	long reads;
	sl_err failed;
};

static void *
reader_main(void *p)
{
	struct reader_arg *a = p;
	do {
		store_txn_t *t;
		sl_err e = store_read_begin(a->st, &t);
		if (e) {
			a->failed = e;
			break;
		}
		struct store_val v;
		e = store_get(t, STORE_DB_BUSES, "k", 1, &v);
		store_read_end(t);
		if (e && e != SL_ERR_NOT_FOUND) {
			a->failed = e;
			break;
		}
		a->reads++;
	} while (!atomic_load(&a->stop));
	return NULL;
}

Test(store, growth_waits_for_readers_on_other_threads)
{
	store_t *st = open_store(64 << 10);
	struct reader_arg ra = { .st = st };
	atomic_init(&ra.stop, false);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, reader_main, &ra), 0);
	store_batch_t *b;
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	char v[GROW_VLEN];
	struct store_key k;
	for (int i = 0; i < GROW_N; i++) {
		grow_key(&k, i);
		grow_val(v, i);
		cr_assert_eq(
		        store_put(store_batch_txn(b), STORE_DB_EVENTS, k.buf, k.len, v, GROW_VLEN),
		        SL_OK, "put %d: %s", i, store_last_error(st));
	}
	cr_assert_eq(store_batch_commit(st), SL_OK, "%s", store_last_error(st));
	atomic_store(&ra.stop, true);
	pthread_join(th, NULL);
	cr_assert_eq(ra.failed, SL_OK);
	cr_assert_gt(ra.reads, 0);
	struct store_stats s;
	store_get_stats(st, &s);
	cr_assert_gt(s.map_growths, 0);
	store_free(st);
}

Test(store, batch_full_at_max_batch_ops)
{
	struct store_options o = { .max_batch_ops = 3 };
	struct sl_error err = { 0 };
	store_t *st;
	cr_assert_eq(store_open(dir, &o, &st, &err), SL_OK, "%s", sl_error_text(&err));
	put_str(st, STORE_DB_META, "a", "1");
	put_str(st, STORE_DB_META, "b", "1");
	cr_assert_not(store_batch_full(store_batch_current(st)));
	del_str(st, STORE_DB_META, "c");
	cr_assert(store_batch_full(store_batch_current(st)));
	cr_assert_eq(store_batch_commit(st), SL_OK);
	store_free(st);
}

/* --- stats ----------------------------------------------------------------------------------- */

Test(store, stats_and_histogram)
{
	store_t *st = open_store(0);
	for (int i = 0; i < 5; i++) {
		put_str(st, STORE_DB_META, "n", "v");
		cr_assert_eq(store_batch_commit(st), SL_OK);
	}
	struct store_stats s;
	store_get_stats(st, &s);
	cr_assert_eq(s.commits, 5);
	cr_assert_eq(s.map_size, (size_t)1 << 30);
	cr_assert_gt(s.used_bytes, 0);
	cr_assert_gt(s.commit_ns_total, 0);
	uint64_t sum = 0;
	for (int i = 0; i <= STORE_COMMIT_BUCKETS; i++)
		sum += s.commit_hist[i];
	cr_assert_eq(sum, 5);
	cr_assert_eq(store_commit_bucket_us(0), 50);
	cr_assert_eq(store_commit_bucket_us(STORE_COMMIT_BUCKETS - 1), 250000);
	cr_assert_eq(store_commit_bucket_us(STORE_COMMIT_BUCKETS), UINT64_MAX);
	for (int i = 1; i < STORE_COMMIT_BUCKETS; i++)
		cr_assert_gt(store_commit_bucket_us(i), store_commit_bucket_us(i - 1));
	store_free(st);
}

/* --- out of memory ------------------------------------------------------------------------- */

Test(store, oom_walk_over_open)
{
	long n;
	for (n = 0; n < 1000; n++) {
		struct sl_error err = { 0 };
		store_t *st = NULL;
		sl_alloc_fail_after(n);
		sl_err e = store_open(dir, NULL, &st, &err);
		sl_alloc_fail_after(-1);
		if (e == SL_OK) {
			store_free(st);
			break;
		}
		cr_assert_eq(e, SL_ERR_NOMEM, "n=%ld: %s", n, sl_error_text(&err));
		cr_assert_null(st);
	}
	cr_assert_gt(n, 0, "store_open allocates");
	cr_assert_lt(n, 1000);
}

Test(store, oom_walk_over_a_batch)
{
	store_t *st = open_store(0);
	struct cb_log log = { 0 };
	struct cb_arg a = { &log, 1 };
	long n;
	int fails = 0;
	for (n = 0; n < 1000; n++) {
		store_batch_t *b = NULL;
		sl_alloc_fail_after(n);
		sl_err e = store_batch_get(st, &b);
		for (int i = 0; e == SL_OK && i < 50; i++) {
			char k[16];
			snprintf(k, sizeof(k), "k%ld-%d", n, i);
			e = store_put(store_batch_txn(b), STORE_DB_TASKS, k, strlen(k), k,
			              strlen(k));
			if (e == SL_OK && i == 25)
				e = store_savepoint_begin(b);
			if (e == SL_OK && i == 26)
				e = store_savepoint_release(b);
		}
		if (e == SL_OK)
			e = store_batch_on_commit(b, record_cb, &a);
		sl_alloc_fail_after(-1);
		if (e == SL_OK) {
			cr_assert_eq(store_batch_commit(st), SL_OK);
			break;
		}
		fails++;
		cr_assert_eq(e, SL_ERR_NOMEM, "n=%ld", n);
		/* a failed allocation leaves the batch usable: drop it and go on */
		store_batch_abort(st, e);
	}
	cr_assert_gt(fails, 0);
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.status[0], SL_OK);
	store_free(st);
}

Test(store, count_and_delete_by_prefix)
{
	store_t *st = open_store(0);
	fill_history(st);
	struct store_key p;
	store_key_init(&p);
	store_key_str(&p, "a");
	store_batch_t *b;
	cr_assert_eq(store_batch_get(st, &b), SL_OK);
	store_txn_t *t = store_batch_txn(b);
	size_t n;
	cr_assert_eq(store_count_prefix(t, STORE_DB_HISTORY, p.buf, p.len, &n), SL_OK);
	cr_assert_eq(n, 5, "the tuple (\"a\") excludes (\"ab\")");
	cr_assert_eq(store_count_prefix(t, STORE_DB_HISTORY, "a", 1, &n), SL_OK);
	cr_assert_eq(n, 10);
	cr_assert_eq(store_count_prefix(t, STORE_DB_HISTORY, "zz", 2, &n), SL_OK);
	cr_assert_eq(n, 0);
	cr_assert_eq(store_del_prefix(t, STORE_DB_HISTORY, p.buf, p.len), SL_OK);
	cr_assert_eq(store_del_prefix(t, STORE_DB_HISTORY, "zz", 2), SL_OK, "nothing to delete");
	cr_assert_eq(store_batch_commit(st), SL_OK);
	store_txn_t *r;
	cr_assert_eq(store_read_begin(st, &r), SL_OK);
	cr_assert_eq(store_count_prefix(r, STORE_DB_HISTORY, "a", 1, &n), SL_OK);
	cr_assert_eq(n, 5, "only the (\"ab\") keys are left");
	cr_assert_eq(store_count_prefix(r, STORE_DB_HISTORY, "b", 1, &n), SL_OK);
	cr_assert_eq(n, 5);
	cr_assert_neq(store_del_prefix(r, STORE_DB_HISTORY, "b", 1), SL_OK,
	              "a read transaction cannot delete");
	store_read_end(r);
	store_free(st);
}
