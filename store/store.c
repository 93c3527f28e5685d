/*
 * store.c - the LMDB environment: data directory, lock file, named databases, schema,
 * map growth, read transactions, point reads and statistics.
 */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "common/sl_log.h"

#define STORE_DEFAULT_MAP ((size_t)1 << 30)
#define STORE_MAX_MAP     ((size_t)1 << 40)
#define STORE_MIN_MAP     ((size_t)64 << 10)
#define STORE_GROW_WAIT_S 1

static const char *const db_names[STORE_DB__COUNT] = {
#define STORE_DB_NAME_(id, name) name,
	STORE_DB_LIST(STORE_DB_NAME_)
#undef STORE_DB_NAME_
};

static const uint64_t bucket_us[STORE_COMMIT_BUCKETS]
        = { 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000 };

uint64_t
store_commit_bucket_us(int i)
{
	if (i < 0 || i >= STORE_COMMIT_BUCKETS)
		return UINT64_MAX;
	return bucket_us[i];
}

/* Maps an LMDB or errno code to sl_err and remembers the explanation for store_last_error. */
sl_err
store_rc(store_t *st, int rc, const char *what)
{
	if (rc == 0)
		return SL_OK;
	if (st)
		snprintf(st->errbuf, sizeof(st->errbuf), "%s: %s", what, mdb_strerror(rc));
	switch (rc) {
	case MDB_NOTFOUND: return SL_ERR_NOT_FOUND;
	case ENOMEM: return SL_ERR_NOMEM;
	case EIO:
	case ENOSPC:
	case EACCES:
	case EROFS:
	case EPERM: return SL_ERR_IO;
	default: return SL_ERR_STORE;
	}
}

const char *
store_last_error(const store_t *st)
{
	return st && st->errbuf[0] ? st->errbuf : "";
}

/* mkdir -p with mode 0700 for the components it creates. */
static sl_err
make_dirs(const char *dir, struct sl_error *err)
{
	size_t n = strlen(dir);
	if (n >= PATH_MAX)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "data directory path is longer than %d", PATH_MAX - 1);
	char path[PATH_MAX];
	memcpy(path, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char saved = path[i];
		path[i] = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return sl_error_set(err, SL_ERR_IO, "cannot create data directory %s: %s",
			                    path, strerror(errno));
		path[i] = saved;
	}
	struct stat sb;
	if (stat(dir, &sb) != 0)
		return sl_error_set(err, SL_ERR_IO, "cannot stat data directory %s: %s", dir,
		                    strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return sl_error_set(err, SL_ERR_INVALID_ARG, "data directory %s is not a directory",
		                    dir);
	return SL_OK;
}

/* One writer per directory: LMDB would allow two processes to open it, the design does not. */
static sl_err
take_lock(store_t *st, struct sl_error *err)
{
	char *path = sl_asprintf("%s/sluice.lock", st->dir);
	if (!path)
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		sl_err e = sl_error_set(err, SL_ERR_IO, "cannot open lock file %s: %s", path,
		                        strerror(errno));
		sl_free(path);
		return e;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int saved = errno;
		char buf[32] = { 0 };
		ssize_t r = pread(fd, buf, sizeof(buf) - 1, 0);
		close(fd);
		sl_free(path);
		if (saved != EWOULDBLOCK)
			return sl_error_set(err, SL_ERR_IO, "cannot lock data directory %s: %s",
			                    st->dir, strerror(saved));
		long pid = r > 0 ? strtol(buf, NULL, 10) : 0;
		if (pid > 0)
			return sl_error_set(
			        err, SL_ERR_STORE_BUSY,
			        "data directory %s is in use by another process (pid %ld)", st->dir,
			        pid);
		return sl_error_set(err, SL_ERR_STORE_BUSY,
		                    "data directory %s is in use by another process", st->dir);
	}
	sl_free(path);
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
		sl_err e = sl_error_set(err, SL_ERR_IO, "cannot write lock file in %s: %s", st->dir,
		                        strerror(errno));
		close(fd);
		return e;
	}
	st->lock_fd = fd;
	return SL_OK;
}

static void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Opens every named database and checks or writes the schema version, in one write txn. */
static sl_err
open_dbs(store_t *st, struct sl_error *err)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc)
		return sl_error_set(err, store_rc(st, rc, "begin"), "data directory %s: %s",
		                    st->dir, st->errbuf);
	for (int i = 0; i < STORE_DB__COUNT; i++) {
		rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &st->dbi[i]);
		if (rc) {
			mdb_txn_abort(txn);
			return sl_error_set(err, store_rc(st, rc, "open database"),
			                    "data directory %s: cannot open database %s: %s",
			                    st->dir, db_names[i], mdb_strerror(rc));
		}
	}
	MDB_val k = { 6, (void *)"schema" }, v;
	rc = mdb_get(txn, st->dbi[STORE_DB_META], &k, &v);
	if (rc == MDB_NOTFOUND) {
		unsigned char buf[4];
		put_be32(buf, STORE_SCHEMA_VERSION);
		v.mv_size = 4;
		v.mv_data = buf;
		rc = mdb_put(txn, st->dbi[STORE_DB_META], &k, &v, 0);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		if (rc)
			return sl_error_set(
			        err, store_rc(st, rc, "write schema"),
			        "data directory %s: cannot write the schema version: %s", st->dir,
			        mdb_strerror(rc));
		return SL_OK;
	}
	if (rc) {
		mdb_txn_abort(txn);
		return sl_error_set(err, store_rc(st, rc, "read schema"),
		                    "data directory %s: cannot read the schema version: %s",
		                    st->dir, mdb_strerror(rc));
	}
	if (v.mv_size != 4) {
		mdb_txn_abort(txn);
		return sl_error_set(err, SL_ERR_STORE_SCHEMA,
		                    "data directory %s: meta/schema holds %zu bytes, expected a "
		                    "4-byte version",
		                    st->dir, v.mv_size);
	}
	const unsigned char *p = v.mv_data;
	uint32_t ver = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (ver == 0 || ver > STORE_SCHEMA_VERSION) {
		mdb_txn_abort(txn);
		return sl_error_set(err, SL_ERR_STORE_SCHEMA,
		                    "data directory %s has schema version %" PRIu32
		                    ", this sluice supports up to version %d",
		                    st->dir, ver, STORE_SCHEMA_VERSION);
	}
	/* The dbi handles opened here stay valid after commit. */
	rc = mdb_txn_commit(txn);
	if (rc)
		return sl_error_set(err, store_rc(st, rc, "commit"), "data directory %s: %s",
		                    st->dir, st->errbuf);
	return SL_OK;
}

static void
refresh_map_size(store_t *st)
{
	MDB_envinfo info;
	if (mdb_env_info(st->env, &info) == 0)
		st->map_size = info.me_mapsize;
}

static bool
data_file_exists(const char *dir)
{
	char path[PATH_MAX];
	struct stat sb;
	int n = snprintf(path, sizeof(path), "%s/data.mdb", dir);
	return n > 0 && (size_t)n < sizeof(path) && stat(path, &sb) == 0 && sb.st_size > 0;
}

sl_err
store_open(const char *dir, const struct store_options *opt, store_t **out, struct sl_error *err)
{
	*out = NULL;
	if (!dir || !*dir)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "data directory: expected a path");
	struct store_options o = { 0 };
	if (opt)
		o = *opt;
	if (o.initial_map_size == 0)
		o.initial_map_size = STORE_DEFAULT_MAP;
	if (o.initial_map_size < STORE_MIN_MAP || o.initial_map_size > STORE_MAX_MAP)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "initial_map_size: expected %zu to %zu bytes, got %zu",
		                    STORE_MIN_MAP, STORE_MAX_MAP, o.initial_map_size);
	if (o.max_batch_ops == 0)
		o.max_batch_ops = 4096;
	if (o.max_readers == 0)
		o.max_readers = 126;

	sl_err e = make_dirs(dir, err);
	if (e)
		return e;
	store_t *st = SL_NEW(store_t);
	if (!st)
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	st->lock_fd = -1;
	st->max_batch_ops = o.max_batch_ops;
	pthread_mutex_init(&st->read_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st->read_cv, &ca);
	pthread_condattr_destroy(&ca);
	st->dir = sl_strdup(dir);
	if (!st->dir) {
		e = sl_error_set(err, SL_ERR_NOMEM, "out of memory");
		goto out_free;
	}
	e = take_lock(st, err);
	if (e)
		goto out_free;

	int rc = mdb_env_create(&st->env);
	if (rc) {
		st->env = NULL;
		e = sl_error_set(err, store_rc(st, rc, "env"), "cannot create LMDB environment: %s",
		                 mdb_strerror(rc));
		goto out_free;
	}
	rc = mdb_env_set_maxdbs(st->env, STORE_DB__COUNT);
	if (!rc)
		rc = mdb_env_set_maxreaders(st->env, o.max_readers);
	/* A new environment gets the configured size; an existing one keeps the size recorded
	 * in its file when that is larger (set below), so a grown map is not shrunk at restart. */
	if (!rc && !data_file_exists(st->dir))
		rc = mdb_env_set_mapsize(st->env, o.initial_map_size);
	/* Full durability unless no_sync (scratch): no WRITEMAP. NOTLS: read txns may move between
	 * threads and coexist with the core thread's write txn. */
	if (!rc)
		rc = mdb_env_open(st->env, st->dir,
		                  MDB_NOTLS | (o.no_sync ? MDB_NOSYNC | MDB_NOMETASYNC : 0), 0600);
	if (rc) {
		e = sl_error_set(err, store_rc(st, rc, "open"),
		                 "cannot open LMDB environment in %s: %s", st->dir,
		                 mdb_strerror(rc));
		goto out_free;
	}
	int dead = 0;
	rc = mdb_reader_check(st->env, &dead);
	if (rc) {
		e = sl_error_set(err, store_rc(st, rc, "reader check"),
		                 "data directory %s: reader check failed: %s", st->dir,
		                 mdb_strerror(rc));
		goto out_free;
	}
	if (dead > 0)
		sl_info("store", "cleared %d stale reader slot(s) in %s", dead, st->dir);
	refresh_map_size(st);
	if (st->map_size < o.initial_map_size) {
		rc = mdb_env_set_mapsize(st->env, o.initial_map_size);
		if (rc) {
			e = sl_error_set(err, store_rc(st, rc, "map size"),
			                 "data directory %s: cannot set the map size to %zu: %s",
			                 st->dir, o.initial_map_size, mdb_strerror(rc));
			goto out_free;
		}
	}
	e = open_dbs(st, err);
	if (e)
		goto out_free;
	refresh_map_size(st);
	st->errbuf[0] = '\0';
	*out = st;
	return SL_OK;

out_free:
	if (st->env)
		mdb_env_close(st->env);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	sl_free(st->dir);
	pthread_mutex_destroy(&st->read_mu);
	pthread_cond_destroy(&st->read_cv);
	sl_free(st);
	return e;
}

void
store_free(store_t *st)
{
	if (!st)
		return;
	store_batch_abort(st, SL_ERR_SHUTTING_DOWN);
	if (st->spare_read) {
		mdb_txn_abort(st->spare_read->mt);
		sl_free(st->spare_read);
	}
	mdb_env_close(st->env);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	sl_free(st->dir);
	pthread_mutex_destroy(&st->read_mu);
	pthread_cond_destroy(&st->read_cv);
	sl_free(st);
}

/* Doubles the map. Only legal with no transaction of this process active: the batch has
 * aborted its own, and a read txn open now would keep pointers into the old mapping. The
 * read mutex keeps other threads from beginning one during the remap. Read txns are
 * short by contract, so growth waits up to STORE_GROW_WAIT_S for the open ones. */
sl_err
store_grow_map(store_t *st)
{
	pthread_mutex_lock(&st->read_mu);
	/* readers are short by contract: hold new ones back and give open ones a moment */
	st->growing = true;
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += STORE_GROW_WAIT_S;
	while (st->reads_open > 0
	       && pthread_cond_timedwait(&st->read_cv, &st->read_mu, &deadline) != ETIMEDOUT)
		;
	sl_err e = SL_OK;
	if (st->reads_open > 0) {
		snprintf(st->errbuf, sizeof(st->errbuf),
		         "map full (%zu bytes) and %u read transaction(s) stayed open for %d s: "
		         "cannot grow",
		         st->map_size, st->reads_open, STORE_GROW_WAIT_S);
		e = SL_ERR_STORE;
	} else if (st->map_size >= STORE_MAX_MAP) {
		snprintf(st->errbuf, sizeof(st->errbuf), "map full at the %zu-byte limit",
		         st->map_size);
		e = SL_ERR_STORE;
	} else {
		int rc = mdb_env_set_mapsize(st->env, st->map_size * 2);
		if (rc) {
			e = store_rc(st, rc, "grow map");
		} else {
			refresh_map_size(st);
			st->stats.map_growths++;
		}
	}
	st->growing = false;
	pthread_cond_broadcast(&st->read_cv);
	pthread_mutex_unlock(&st->read_mu);
	if (e == SL_OK)
		sl_info("store", "map grown to %zu bytes", st->map_size);
	return e;
}

/* --- read transactions ----------------------------------------------------------------- */

sl_err
store_read_begin(store_t *st, store_txn_t **out)
{
	*out = NULL;
	int rc;
	pthread_mutex_lock(&st->read_mu);
	while (st->growing)
		pthread_cond_wait(&st->read_cv, &st->read_mu);
	struct store_txn *t = st->spare_read;
	if (t) {
		st->spare_read = NULL;
		rc = mdb_txn_renew(t->mt);
		if (rc) {
			mdb_txn_abort(t->mt);
			sl_free(t);
			goto out_unlock;
		}
	} else {
		t = SL_NEW(struct store_txn);
		if (!t) {
			pthread_mutex_unlock(&st->read_mu);
			return SL_ERR_NOMEM;
		}
		t->st = st;
		rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &t->mt);
		if (rc) {
			sl_free(t);
			goto out_unlock;
		}
	}
	st->reads_open++;
	*out = t;
out_unlock:
	pthread_mutex_unlock(&st->read_mu);
	return rc ? store_rc(st, rc, "begin read txn") : SL_OK;
}

void
store_read_end(store_txn_t *txn)
{
	if (!txn || txn->batch)
		return;
	store_t *st = txn->st;
	store_cursors_detach(txn);
	pthread_mutex_lock(&st->read_mu);
	if (--st->reads_open == 0)
		pthread_cond_broadcast(&st->read_cv);
	if (!st->spare_read) {
		mdb_txn_reset(txn->mt);
		st->spare_read = txn;
		txn = NULL;
	}
	pthread_mutex_unlock(&st->read_mu);
	if (txn) {
		mdb_txn_abort(txn->mt);
		sl_free(txn);
	}
}

/* --- point reads ------------------------------------------------------------------------- */

sl_err
store_get(store_txn_t *txn, enum store_db db, const void *key, size_t klen, struct store_val *out)
{
	if (!txn || !out || (unsigned)db >= STORE_DB__COUNT || !key || klen == 0
	    || klen > STORE_MAX_KEY)
		return SL_ERR_INVALID_ARG;
	if (txn->batch && txn->batch->poison)
		return txn->batch->poison;
	MDB_val k = { klen, (void *)key }, v;
	int rc = mdb_get(txn->mt, txn->st->dbi[db], &k, &v);
	if (rc)
		return rc == MDB_NOTFOUND ? SL_ERR_NOT_FOUND : store_rc(txn->st, rc, "get");
	out->data = v.mv_data;
	out->len = v.mv_size;
	return SL_OK;
}

/* --- statistics ------------------------------------------------------------------------- */

void
store_get_stats(store_t *st, struct store_stats *out)
{
	*out = st->stats;
	MDB_envinfo info;
	MDB_stat ms;
	if (mdb_env_info(st->env, &info) == 0 && mdb_env_stat(st->env, &ms) == 0) {
		out->map_size = info.me_mapsize;
		out->used_bytes = ((size_t)info.me_last_pgno + 1) * ms.ms_psize;
	} else {
		out->map_size = st->map_size;
		out->used_bytes = 0;
	}
}
