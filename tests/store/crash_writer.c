/*
 * crash_writer - the child of the crash test: writes batches of random sizes into the store
 * in DIR forever and, after each commit callback with SL_OK, reports the acknowledged range
 * on stdout ("A round first last"). The parent kills it with SIGKILL at a random moment.
 * Usage: crash_writer DIR ROUND SEED
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash_common.h"
#include "store/store.h"

struct ack {
	uint32_t round, first, last;
};

static void
write_all(const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, buf, n);
		if (w <= 0)
			_exit(3); /* the parent is gone */
		buf += w;
		n -= (size_t)w;
	}
}

static void
on_commit(void *arg, sl_err status)
{
	struct ack *a = arg;
	if (status != SL_OK) {
		fprintf(stderr, "crash_writer: commit failed: %s\n", sl_err_name(status));
		_exit(4);
	}
	char line[64];
	int n = snprintf(line, sizeof(line), "A %u %u %u\n", a->round, a->first, a->last);
	/* one write of a short line: atomic on a pipe, so a kill never leaves half a line */
	write_all(line, (size_t)n);
}

static void
check(sl_err e, const char *what, store_t *st)
{
	if (e != SL_OK) {
		fprintf(stderr, "crash_writer: %s: %s (%s)\n", what, sl_err_name(e),
		        store_last_error(st));
		exit(2);
	}
}

int
main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: crash_writer DIR ROUND SEED\n");
		return 2;
	}
	uint32_t round = (uint32_t)strtoul(argv[2], NULL, 10);
	uint64_t rng = crash_mix(strtoull(argv[3], NULL, 10) + round);
	/* a small map, so growth (abort, remap, replay) also happens under the kill */
	struct store_options o = { .initial_map_size = 256 << 10 };
	struct sl_error err = { 0 };
	store_t *st;
	if (store_open(argv[1], &o, &st, &err) != SL_OK) {
		fprintf(stderr, "crash_writer: %s\n", sl_error_text(&err));
		return 2;
	}
	write_all("R\n", 2);
	static unsigned char v[CRASH_VAL_MAX];
	unsigned char k[8];
	struct ack ack = { round, 0, 0 };
	uint32_t seq = 0;
	for (;;) {
		rng = crash_mix(rng);
		uint32_t n = 1 + (uint32_t)(rng % 64);
		store_batch_t *b;
		check(store_batch_get(st, &b), "batch", st);
		store_txn_t *w = store_batch_txn(b);
		ack.first = seq;
		for (uint32_t i = 0; i < n; i++, seq++) {
			crash_key(k, round, seq);
			size_t len = crash_val(v, round, seq);
			check(store_put(w, STORE_DB_EVENTS, k, 8, v, len), "put", st);
		}
		ack.last = seq - 1;
		if (rng >> 60 == 0) {
			/* a request that fails half-way: its writes must never appear */
			check(store_savepoint_begin(b), "savepoint", st);
			for (uint32_t i = 0; i < 4; i++) {
				crash_key(k, round, (seq + i) | CRASH_ROLLBACK_BIT);
				check(store_put(w, STORE_DB_EVENTS, k, 8, v, 100), "put", st);
			}
			store_savepoint_rollback(b);
		}
		check(store_batch_on_commit(b, on_commit, &ack), "on_commit", st);
		check(store_batch_commit(st), "commit", st);
	}
}
