/*
 * sched_bench.c - what schedules cost: parsing, next fire time in UTC and in a zone across
 * a DST change, and backfill enumeration. Prints one line per figure.
 *   bench_schedule [iterations]     (default 200000)
 */
#include <stdio.h>
#include <stdlib.h>

#include "bus/schedule.h"
#include "common/sl_clock.h"

static double
per_s(uint64_t n, uint64_t ns)
{
	return ns ? (double)n * 1e9 / (double)ns : 0.0;
}

static int
bench_parse(long iters)
{
	static const char *const exprs[]
	        = { "cron(0/5 8-17 ? * MON-FRI *)", "cron(15 10 ? * 6L 2002-2005)",
		    "rate(5 minutes)", "cron(0 2 ? * SAT#3 *)" };
	uint64_t t0 = sl_clock_mono_ns();
	for (long i = 0; i < iters; i++) {
		sched_t *s = NULL;
		if (sched_parse(exprs[i % 4], NULL, &s, NULL) != SL_OK)
			return 1;
		sched_free(s);
	}
	uint64_t ns = sl_clock_mono_ns() - t0;
	printf("parse (UTC, 4 expressions round-robin): %.0f parses/s\n",
	       per_s((uint64_t)iters, ns));
	t0 = sl_clock_mono_ns();
	long n = iters / 20 ? iters / 20 : 1;
	for (long i = 0; i < n; i++) {
		sched_t *s = NULL;
		if (sched_parse("cron(0 2 * * ? *)", "Europe/Berlin", &s, NULL) != SL_OK)
			return 1;
		sched_free(s);
	}
	ns = sl_clock_mono_ns() - t0;
	printf("parse with zone Europe/Berlin (reads the TZif file): %.0f parses/s\n",
	       per_s((uint64_t)n, ns));
	return 0;
}

static int
bench_next(const char *expr, const char *tz, long iters)
{
	sched_t *s = NULL;
	struct sl_error err;
	if (sched_parse(expr, tz, &s, &err) != SL_OK) {
		fprintf(stderr, "%s: %s\n", expr, err.message);
		return 1;
	}
	int64_t start, x = 0;
	/* from 2026-01-01: crosses both of 2026's DST changes for the dense expressions */
	sl_clock_parse_rfc3339("2026-01-01T00:00:00Z", &start);
	int64_t cur = start;
	uint64_t t0 = sl_clock_mono_ns();
	for (long i = 0; i < iters; i++) {
		if (sched_next(s, cur, &x) != SL_OK)
			cur = start;
		else
			cur = x;
	}
	uint64_t ns = sl_clock_mono_ns() - t0;
	printf("next %-28s %-17s %.0f calls/s (%.0f ns/call)\n", expr, tz ? tz : "UTC",
	       per_s((uint64_t)iters, ns), (double)ns / (double)iters);
	sched_free(s);
	return 0;
}

static int
bench_backfill(void)
{
	sched_t *s = NULL;
	if (sched_parse("cron(* * * * ? *)", "America/New_York", &s, NULL) != SL_OK)
		return 1;
	int64_t from, to, slot;
	sl_clock_parse_rfc3339("2026-01-01T00:00:00Z", &from);
	sl_clock_parse_rfc3339("2027-01-01T00:00:00Z", &to);
	struct sched_iter it;
	uint64_t n = 0, t0 = sl_clock_mono_ns();
	sched_iter_init(&it, s, from, to);
	while (sched_iter_next(&it, &slot) == SL_OK)
		n++;
	uint64_t ns = sl_clock_mono_ns() - t0;
	printf("backfill a year of cron(* * * * ? *) in America/New_York: %llu slots in %.1f ms "
	       "(%.0f slots/s)\n",
	       (unsigned long long)n, (double)ns / 1e6, per_s(n, ns));
	sched_free(s);
	return 0;
}

int
main(int argc, char **argv)
{
	long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	if (iters < 1)
		iters = 1;
	int rc = bench_parse(iters);
	rc |= bench_next("cron(0 2 * * ? *)", NULL, iters);
	rc |= bench_next("cron(0 2 * * ? *)", "Europe/Berlin", iters);
	rc |= bench_next("cron(0/5 * * * ? *)", "America/New_York", iters);
	rc |= bench_next("cron(0 10 ? * 6L *)", NULL, iters);
	rc |= bench_next("rate(5 minutes)", NULL, iters);
	rc |= bench_backfill();
	return rc;
}
