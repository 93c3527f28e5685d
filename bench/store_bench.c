/*
 * bench_store - durable records per second versus batch size (group commit).
 *
 * For batch sizes 1, 2, 4, ..., 1024 it writes 512-byte records, one fully durable commit
 * (fsync) per batch, for a bounded time per size, and prints one line per size:
 *   batch=N records/s=R commits/s=C p50_commit_us=X p99_commit_us=Y
 * commit latency is store_batch_commit alone (the puts are not in it).
 *
 * Usage: bench_store [--dir DIR] [--seconds S] [--max-batch N]
 * Without --dir a temporary directory is made under TMPDIR (or /tmp) and removed after.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_log.h"
#include "store/store.h"

#define RECORD_LEN           512
#define KEYSPACE             (1u << 18) /* keys are reused so the file stays ~150 MB */
#define MAX_RECORDS_PER_SIZE 8000000u

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_store [--dir DIR] [--seconds S] [--max-batch N]\n");
	exit(2);
}

static void
die(const char *what, sl_err e, store_t *st)
{
	fprintf(stderr, "bench_store: %s: %s (%s)\n", what, sl_err_name(e),
	        st ? store_last_error(st) : "");
	exit(1);
}

int
main(int argc, char **argv)
{
	const char *dir = NULL;
	double seconds = 1.0;
	unsigned max_batch = 1024;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--max-batch") == 0 && i + 1 < argc)
			max_batch = (unsigned)strtoul(argv[++i], NULL, 10);
		else
			usage();
	}
	if (seconds <= 0 || seconds > 600 || max_batch == 0 || max_batch > 65536)
		usage();
	sl_log_set_level(SL_LOG_WARN);

	char tmpl[512];
	bool temp = dir == NULL;
	if (temp) {
		const char *base = getenv("TMPDIR");
		snprintf(tmpl, sizeof(tmpl), "%s/sluice-bench-store-XXXXXX",
		         base && *base ? base : "/tmp");
		dir = mkdtemp(tmpl);
		if (!dir) {
			perror("bench_store: mkdtemp");
			return 1;
		}
	}
	struct sl_error err = { 0 };
	store_t *st;
	sl_err e = store_open(dir, NULL, &st, &err);
	if (e) {
		fprintf(stderr, "bench_store: %s\n", sl_error_text(&err));
		return 1;
	}

	printf("# bench_store: %d-byte records, one fsync'd commit per batch, %.1f s per size, "
	       "dir %s\n# reproduce: %s%s%s --seconds %g --max-batch %u\n",
	       RECORD_LEN, seconds, dir, argv[0], temp ? "" : " --dir ", temp ? "" : dir, seconds,
	       max_batch);
	fflush(stdout);

	unsigned char val[RECORD_LEN];
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (unsigned char)(i * 31 + 7);
	size_t lat_cap = 1 << 16;
	uint64_t *lat = sl_reallocarray(NULL, lat_cap, sizeof(*lat));
	if (!lat)
		return 1;
	uint64_t seq = 0;
	uint64_t budget_ns = (uint64_t)(seconds * 1e9);
	for (unsigned n = 1; n <= max_batch; n *= 2) {
		size_t commits = 0;
		uint64_t records = 0;
		uint64_t t0 = sl_clock_mono_ns(), now = t0;
		while (now - t0 < budget_ns && records < MAX_RECORDS_PER_SIZE) {
			store_batch_t *b;
			if ((e = store_batch_get(st, &b)))
				die("batch", e, st);
			store_txn_t *w = store_batch_txn(b);
			for (unsigned i = 0; i < n; i++, seq++) {
				struct store_key k;
				store_key_init(&k);
				store_key_u64(&k, seq % KEYSPACE);
				memcpy(val, &seq, sizeof(seq));
				if ((e = store_put(w, STORE_DB_EVENTS, k.buf, k.len, val,
				                   sizeof(val))))
					die("put", e, st);
			}
			uint64_t c0 = sl_clock_mono_ns();
			if ((e = store_batch_commit(st)))
				die("commit", e, st);
			now = sl_clock_mono_ns();
			if (commits == lat_cap) {
				lat_cap *= 2;
				lat = sl_reallocarray(lat, lat_cap, sizeof(*lat));
				if (!lat)
					return 1;
			}
			lat[commits++] = now - c0;
			records += n;
		}
		double el = (double)(now - t0) / 1e9;
		qsort(lat, commits, sizeof(*lat), cmp_u64);
		uint64_t p50 = lat[(commits - 1) / 2] / 1000;
		uint64_t p99 = lat[(size_t)((double)(commits - 1) * 0.99)] / 1000;
		printf("batch=%u records/s=%.0f commits/s=%.0f p50_commit_us=%llu "
		       "p99_commit_us=%llu\n",
		       n, (double)records / el, (double)commits / el, (unsigned long long)p50,
		       (unsigned long long)p99);
		fflush(stdout);
	}
	struct store_stats s;
	store_get_stats(st, &s);
	printf("# map_size=%zu used_bytes=%zu map_growths=%llu commits=%llu\n", s.map_size,
	       s.used_bytes, (unsigned long long)s.map_growths, (unsigned long long)s.commits);
	sl_free(lat);
	store_free(st);
	if (temp)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
