/*
 * crash_store - what was acknowledged survives SIGKILL.
 *
 * Each round fork+execs crash_writer (so LMDB is never used across fork), lets it commit
 * batches for a random short time, kills it with SIGKILL, then reopens the store and checks
 * that every range the writer acknowledged (after its commit callback said SL_OK) is present
 * with the exact value, and that no rolled-back write is. Rounds and delays are fixed by a
 * seed, so the run is bounded: ROUNDS rounds of at most MAX_DELAY_MS each.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/sl_clock.h"
#include "crash_common.h"
#include "store/store.h"
#include "store_test_util.h"

#define ROUNDS       30
#define MAX_DELAY_MS 200
#define SEED         20261124u

struct range {
	uint32_t round, first, last;
};

struct child {
	pid_t pid;
	int fd;
	char buf[4096];
	size_t len;
	bool eof, ready;
	struct range *acks;
	size_t nacks, cap;
};

static void
parse_lines(struct child *c)
{
	char *p = c->buf, *end = c->buf + c->len, *nl;
	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		*nl = 0;
		struct range r;
		if (strcmp(p, "R") == 0) {
			c->ready = true;
		} else if (sscanf(p, "A %u %u %u", &r.round, &r.first, &r.last) == 3) {
			if (c->nacks == c->cap) {
				c->cap = c->cap ? c->cap * 2 : 256;
				c->acks = realloc(c->acks, c->cap * sizeof(*c->acks));
				cr_assert_not_null(c->acks);
			}
			c->acks[c->nacks++] = r;
		} else {
			cr_assert_fail("crash_writer sent an unexpected line: %s", p);
		}
		p = nl + 1;
	}
	c->len = (size_t)(end - p);
	memmove(c->buf, p, c->len);
}

/* Reads what the child sent, waiting at most timeout_ms (-1: until data or EOF). */
static void
pump(struct child *c, int timeout_ms)
{
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	int r = poll(&pfd, 1, timeout_ms);
	if (r < 0 && errno == EINTR)
		return;
	cr_assert_geq(r, 0, "poll: %s", strerror(errno));
	if (r == 0)
		return;
	ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n < 0 && errno == EINTR)
		return;
	cr_assert_geq(n, 0, "read: %s", strerror(errno));
	if (n == 0) {
		c->eof = true;
		return;
	}
	c->len += (size_t)n;
	parse_lines(c);
}

static void
start(struct child *c, const char *helper, const char *dir, uint32_t round)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char rbuf[16], sbuf[16];
	snprintf(rbuf, sizeof(rbuf), "%u", round);
	snprintf(sbuf, sizeof(sbuf), "%u", SEED);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(helper, helper, dir, rbuf, sbuf, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	c->pid = pid;
	c->fd = p[0];
	c->len = 0;
	c->eof = c->ready = false;
}

static uint64_t
rnd(uint64_t *s)
{
	*s = crash_mix(*s + 0x9e3779b97f4a7c15ull);
	return *s;
}

static void
verify(const char *dir, const struct range *acks, size_t nacks, uint32_t round_lo,
       uint32_t round_hi)
{
	struct store_options o = { .initial_map_size = 256 << 10 };
	struct sl_error err = { 0 };
	store_t *st;
	cr_assert_eq(store_open(dir, &o, &st, &err), SL_OK, "reopen after kill: %s",
	             sl_error_text(&err));
	store_txn_t *t;
	cr_assert_eq(store_read_begin(st, &t), SL_OK);
	static unsigned char want[CRASH_VAL_MAX];
	unsigned char k[8];
	for (size_t i = 0; i < nacks; i++) {
		if (acks[i].round < round_lo || acks[i].round > round_hi)
			continue;
		for (uint32_t s = acks[i].first; s <= acks[i].last; s++) {
			crash_key(k, acks[i].round, s);
			struct store_val v;
			sl_err e = store_get(t, STORE_DB_EVENTS, k, 8, &v);
			cr_assert_eq(e, SL_OK, "round %u seq %u was acknowledged but is missing",
			             acks[i].round, s);
			size_t len = crash_val(want, acks[i].round, s);
			cr_assert_eq(v.len, len, "round %u seq %u: length", acks[i].round, s);
			cr_assert_eq(memcmp(v.data, want, len), 0, "round %u seq %u: value",
			             acks[i].round, s);
		}
	}
	/* no rolled-back write of these rounds may be there */
	store_cursor_t *c;
	cr_assert_eq(store_cursor_open(t, STORE_DB_EVENTS, &c), SL_OK);
	for (uint32_t r = round_lo; r <= round_hi; r++) {
		crash_key(k, r, CRASH_ROLLBACK_BIT);
		cr_assert_eq(store_cursor_seek_prefix(c, k, 5), SL_OK);
		struct store_val kv;
		cr_assert_eq(store_cursor_next(c, &kv, NULL), SL_ERR_NOT_FOUND,
		             "round %u: a rolled-back write is in the store", r);
	}
	store_cursor_close(c);
	store_read_end(t);
	store_free(st);
}

Test(store_crash, acknowledged_writes_survive_sigkill, .timeout = 300)
{
	const char *helper = getenv("STORE_CRASH_HELPER");
	if (!helper || access(helper, X_OK) != 0)
		cr_skip_test("STORE_CRASH_HELPER is not set to the crash_writer binary");
	char *dir = st_util_mkdtemp();
	cr_assert_not_null(dir);
	uint64_t rng = SEED;
	struct child c = { 0 };
	size_t total = 0;
	for (uint32_t round = 0; round < ROUNDS; round++) {
		size_t before = c.nacks;
		start(&c, helper, dir, round);
		while (!c.ready && !c.eof)
			pump(&c, -1);
		cr_assert(c.ready, "round %u: crash_writer exited before opening the store", round);
		if (round == 0) {
			/* at least one acknowledged batch, so the check below always has work */
			while (c.nacks == before && !c.eof)
				pump(&c, -1);
		} else {
			int delay = (int)(rnd(&rng) % MAX_DELAY_MS);
			uint64_t end = sl_clock_mono_ns() + (uint64_t)delay * 1000000u;
			uint64_t now;
			while (!c.eof && (now = sl_clock_mono_ns()) < end)
				pump(&c, (int)((end - now) / 1000000u) + 1);
		}
		cr_assert_not(c.eof, "round %u: crash_writer died before the kill", round);
		kill(c.pid, SIGKILL);
		int status;
		cr_assert_eq(waitpid(c.pid, &status, 0), c.pid);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		          "round %u: crash_writer ended with status %d", round, status);
		while (!c.eof)
			pump(&c, -1);
		close(c.fd);
		cr_assert_eq(c.len, 0, "round %u: a partial line reached the pipe", round);
		for (size_t i = before; i < c.nacks; i++)
			total += c.acks[i].last - c.acks[i].first + 1;
		verify(dir, c.acks, c.nacks, round, round);
	}
	/* and everything acknowledged in every round is still there at the end */
	verify(dir, c.acks, c.nacks, 0, ROUNDS - 1);
	cr_assert_gt(total, 0);
	cr_log_info("%zu acknowledged records over %d kills", total, ROUNDS);
	free(c.acks);
	st_util_rmdir(dir);
}

Test(store_crash, a_second_process_is_told_who_holds_the_directory, .timeout = 60)
{
	const char *helper = getenv("STORE_CRASH_HELPER");
	if (!helper || access(helper, X_OK) != 0)
		cr_skip_test("STORE_CRASH_HELPER is not set to the crash_writer binary");
	char *dir = st_util_mkdtemp();
	cr_assert_not_null(dir);
	struct child c = { 0 };
	start(&c, helper, dir, 0);
	while (!c.ready && !c.eof)
		pump(&c, -1);
	cr_assert(c.ready, "crash_writer exited before opening the store");
	struct sl_error err = { 0 };
	store_t *st = NULL;
	sl_err e = store_open(dir, NULL, &st, &err);
	char want[64];
	snprintf(want, sizeof(want), "in use by another process (pid %ld)", (long)c.pid);
	kill(c.pid, SIGKILL);
	waitpid(c.pid, NULL, 0);
	close(c.fd);
	cr_assert_eq(e, SL_ERR_STORE_BUSY, "%s", sl_error_text(&err));
	cr_assert(strstr(err.message, want), "%s", err.message);
	/* the kill released the lock */
	cr_assert_eq(store_open(dir, NULL, &st, &err), SL_OK, "%s", sl_error_text(&err));
	store_free(st);
	free(c.acks);
	st_util_rmdir(dir);
}
