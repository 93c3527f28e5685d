/*
 * test_schedule.c - schedule expressions: AWS's validation corpus, next-fire tables computed
 * by hand, DST in America/New_York and Europe/Berlin, TZif parsing (real, crafted, corrupt),
 * missed-run policies, backfill bounds, and random input.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus/schedule.h"
#include "common/sl_alloc.h"
#include "common/sl_clock.h"

#define NONE INT64_MIN

static int64_t
T(const char *rfc3339)
{
	int64_t ms;
	cr_assert(sl_clock_parse_rfc3339(rfc3339, &ms), "bad test time %s", rfc3339);
	return ms;
}

static const char *
fmt(int64_t ms, char buf[32])
{
	if (ms == NONE)
		return "(none)";
	sl_clock_format_rfc3339_s(ms, buf);
	return buf;
}

static sched_t *
parse_ok(const char *expr, const char *tz)
{
	sched_t *s = NULL;
	struct sl_error err;
	struct sched_diag d;
	sl_err rc = sched_parse_diag(expr, tz, &s, &err, &d);
	cr_assert_eq(rc, SL_OK, "%s (tz %s) refused: %s / %s", expr, tz ? tz : "UTC",
	             sl_error_text(&err), d.reason);
	return s;
}

/* Checks that, starting after `after`, the next slots are exactly want[] (NONE ends). */
static void
check_next(const char *expr, const char *tz, const char *after, const char *const *want)
{
	sched_t *s = parse_ok(expr, tz);
	int64_t cur = T(after);
	for (int i = 0;; i++) {
		int64_t got = NONE;
		sl_err rc = sched_next(s, cur, &got);
		char a[32], b[32];
		if (!want[i]) {
			cr_assert_eq(rc, SL_ERR_NOT_FOUND, "%s: after %s expected no slot, got %s",
			             expr, fmt(cur, a), fmt(got, b));
			break;
		}
		if (strcmp(want[i], "...") == 0)
			break;
		cr_assert_eq(rc, SL_OK, "%s: after %s expected %s, got rc %d", expr, fmt(cur, a),
		             want[i], rc);
		cr_assert_eq(got, T(want[i]), "%s (tz %s): after %s expected %s, got %s", expr,
		             tz ? tz : "UTC", fmt(cur, a), want[i], fmt(got, b));
		cur = got;
	}
	sched_free(s);
}

#define NEXT(expr, tz, after, ...)                                                                 \
	do {                                                                                       \
		const char *const w_[] = { __VA_ARGS__ };                                          \
		check_next(expr, tz, after, w_);                                                   \
	} while (0)
#define MORE "..."

/* ---- the AWS-validated corpus ------------------------------------------------------------ */

Test(sched_parse, aws_validated_corpus)
{
	const char *dir = getenv("SLUICE_SHARED");
	char path[1024];
	snprintf(path, sizeof(path),
	         "%s/corpus/patterns/derived/"
	         "eventbridge-rule-schedule-expressions-aws-validated.json",
	         dir ? dir : "../shared");
	if (access(path, R_OK) != 0)
		cr_skip_test("corpus file %s is missing (set SLUICE_SHARED)", path);
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr);
	cr_assert_not_null(root, "%s: %s", path, jerr.text);
	size_t i, nvalid = 0, ninvalid = 0;
	json_t *c;
	json_array_foreach(json_object_get(root, "valid"), i, c)
	{
		const char *expr = json_string_value(json_object_get(c, "expr"));
		cr_assert_not_null(expr);
		sched_free(parse_ok(expr, NULL));
		nvalid++;
	}
	json_array_foreach(json_object_get(root, "invalid"), i, c)
	{
		const char *expr = json_string_value(json_object_get(c, "expr"));
		const char *msg = json_string_value(json_object_get(c, "aws_message"));
		cr_assert(expr && msg);
		sched_t *s = NULL;
		struct sl_error err;
		sl_err rc = sched_parse(expr, NULL, &s, &err);
		cr_assert_eq(rc, SL_ERR_INVALID_ARG, "%s accepted", expr);
		cr_assert_null(s);
		cr_assert_str_eq(err.message, msg, "%s", expr);
		cr_assert_str_eq(sl_err_aws_type(err.code),
		                 json_string_value(json_object_get(c, "expected")));
		ninvalid++;
	}
	cr_assert_eq(nvalid, 17);
	cr_assert_eq(ninvalid, 22);
	json_decref(root);
}

/* ---- parsing beyond the corpus ----------------------------------------------------------- */

Test(sched_parse, more_valid_forms)
{
	static const char *const ok[] = {
		"rate(1 minute)",
		"rate(1 hour)",
		"rate(1 day)",
		"rate(2 minutes)",
		"rate(2147483647 days)",
		"cron(0 0 L * ? *)",
		"cron(0 0 LW * ? *)",
		"cron(0 0 15W * ? *)",
		"cron(0 0 ? * L *)",
		"cron(0 0 ? * FRIL *)",
		"cron(0 0 ? * 3#2 *)",
		"cron(0 0 ? * SUN,SAT *)",
		"cron(*/20 * * * ? *)",
		"cron(5/20 * * * ? *)",
		"cron(0 0 1 */3 ? *)",
		"cron(0 0 1 JAN-MAR,OCT ? *)",
		"cron(0 0 1 1 ? 1970,2199)",
		"cron(0 0 1 1 ? 2000/10)",
		"cron(0-59 0-23 1-31 1-12 ? *)",
		"at(2026-11-24T02:00:00)",
		"at(2028-02-29T23:59:59)",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		sched_free(parse_ok(ok[i], NULL));
	sched_t *s = parse_ok("rate(5 minutes)", NULL);
	cr_assert_eq(sched_kind(s), SCHED_RATE);
	cr_assert_eq(sched_rate_period_ms(s), 300000);
	cr_assert_str_eq(sched_expression(s), "rate(5 minutes)");
	cr_assert_str_eq(sched_tz_label(s), "UTC");
	sched_free(s);
	s = parse_ok("cron(0 2 * * ? *)", "Europe/Berlin");
	cr_assert_eq(sched_kind(s), SCHED_CRON);
	cr_assert_eq(sched_rate_period_ms(s), 0);
	cr_assert_str_eq(sched_tz_label(s), "Europe/Berlin");
	sched_free(s);
}

Test(sched_parse, more_invalid_forms)
{
	static const char *const bad[] = {
		"",
		"rate",
		"rate(",
		"rate(1minute)",
		"rate(1  minute)",
		"rate(+5 minutes)",
		"rate(2147483648 minutes)",
		"rate(5 minutes) ",
		"RATE(5 minutes)",
		"cron()",
		"cron(0 10 * * ?)",
		"cron(0 10 * * ? * *)",
		"cron(0 10  * * ? *)",
		"cron( 0 10 * * ? *)",
		"cron(0 10 * * ? *) ",
		"cron(60 10 * * ? *)",
		"cron(0 24 * * ? *)",
		"cron(0 0 0 * ? *)",
		"cron(0 0 32 * ? *)",
		"cron(0 0 1 13 ? *)",
		"cron(0 0 ? * 0 *)",
		"cron(0 0 ? * 8 *)",
		"cron(0 0 1 1 ? 1969)",
		"cron(0 0 1 1 ? 2200)",
		"cron(0 0 ? * ? *)",
		"cron(0 0 1 * 1 *)",
		"cron(0 0 1 jan ? *)",
		"cron(0 0 ? * mon *)",
		"cron(0 0 1 JANUARY ? *)",
		"cron(0/0 * * * ? *)",
		"cron(0/60 * * * ? *)",
		"cron(10-5 * * * ? *)",
		"cron(0 0 1,L * ? *)",
		"cron(0 0 1W,15 * ? *)",
		"cron(0 0 32W * ? *)",
		"cron(0 0 W * ? *)",
		"cron(0 0 ? * 3#6 *)",
		"cron(0 0 ? * 3#0 *)",
		"cron(0 0 ? * 3#2,4 *)",
		"cron(0 0 ? * 1,6L *)",
		"cron(0 0 ? * */2 *)",
		"cron(0 0 ?,1 * ? *)",
		"cron(, * * * ? *)",
		"cron(1, * * * ? *)",
		"cron(1-* * * * ? *)",
		"cron(-1 * * * ? *)",
		"cron(00000 * * * ? *)",
		"at(2026-02-29T00:00:00)",
		"at(2026-11-24T24:00:00)",
		"at(2026-11-24 02:00:00)",
		"at(2026-11-24T02:00)",
		"at(2026-11-24T02:00:00Z)",
		"at(1969-12-31T23:59:59)",
		"at(2200-01-01T00:00:00)",
		"at(2026-13-01T00:00:00)",
		"at()",
		"cron",
		"rate(1 minute)\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sched_t *s = (sched_t *)1;
		struct sl_error err;
		struct sched_diag d;
		sl_err rc = sched_parse_diag(bad[i], NULL, &s, &err, &d);
		cr_assert_eq(rc, SL_ERR_INVALID_ARG, "'%s' accepted", bad[i]);
		cr_assert_null(s);
		cr_assert_str_eq(err.message, SCHED_INVALID_MESSAGE, "'%s'", bad[i]);
		cr_assert_neq(d.reason[0], '\0', "'%s': no reason given", bad[i]);
	}
	char longexpr[400];
	memset(longexpr, '1', sizeof(longexpr));
	memcpy(longexpr, "rate(", 5);
	strcpy(longexpr + 300, " minutes)");
	sched_t *s = NULL;
	cr_assert_eq(sched_parse(longexpr, NULL, &s, NULL), SL_ERR_INVALID_ARG);
	cr_assert_eq(sched_parse(NULL, NULL, &s, NULL), SL_ERR_INVALID_ARG);
}

Test(sched_parse, diag_says_where_and_why)
{
	sched_t *s = NULL;
	struct sched_diag d;
	cr_assert_eq(sched_parse_diag("cron(71 8 1 * ? *)", NULL, &s, NULL, &d),
	             SL_ERR_INVALID_ARG);
	cr_assert_eq(d.field, 1);
	cr_assert_eq(d.offset, 5);
	cr_assert_str_eq(d.reason, "minutes: 71 is out of range 0..59");
	cr_assert_eq(sched_parse_diag("cron(0 1 * * * *)", NULL, &s, NULL, &d), SL_ERR_INVALID_ARG);
	cr_assert_eq(d.field, 5);
	cr_assert_str_eq(d.reason, "cron: one of day-of-month and day-of-week must be `?`");
	cr_assert_eq(sched_parse_diag("rate(1 minutes)", NULL, &s, NULL, &d), SL_ERR_INVALID_ARG);
	cr_assert_str_eq(d.reason, "rate: the unit is minute for a value of 1");
	cr_assert_eq(sched_parse_diag("cron(7 20 * * NOT *)", NULL, &s, NULL, &d),
	             SL_ERR_INVALID_ARG);
	cr_assert_eq(d.field, 5);
	cr_assert_eq(d.offset, 14);
}

/* ---- next fire times in UTC, computed by hand -------------------------------------------- */

Test(sched_next, cron_tables_utc)
{
	/* 2026-11-24 is a Tuesday; 10:00 every day */
	NEXT("cron(0 10 * * ? *)", NULL, "2026-11-24T09:59:59Z", "2026-11-24T10:00:00Z",
	     "2026-11-25T10:00:00Z", MORE);
	/* strictly after: exactly on a slot moves on to the next */
	NEXT("cron(0 10 * * ? *)", NULL, "2026-11-24T10:00:00Z", "2026-11-25T10:00:00Z", MORE);
	NEXT("cron(0 10 * * ? *)", NULL, "2026-11-24T10:00:00.001Z", "2026-11-25T10:00:00Z", MORE);
	NEXT("cron(0/15 * * * ? *)", NULL, "2026-11-24T23:07:00Z", "2026-11-24T23:15:00Z",
	     "2026-11-24T23:30:00Z", "2026-11-24T23:45:00Z", "2026-11-25T00:00:00Z", MORE);
	/* Friday 18:00 -> Monday */
	NEXT("cron(0 18 ? * MON-FRI *)", NULL, "2026-11-27T18:00:00Z", "2026-11-30T18:00:00Z",
	     "2026-12-01T18:00:00Z", MORE);
	/* first of the month, over the year end */
	NEXT("cron(0 8 1 * ? *)", NULL, "2026-12-01T08:00:00Z", "2027-01-01T08:00:00Z",
	     "2027-02-01T08:00:00Z", MORE);
	NEXT("cron(5,35 14 * * ? *)", NULL, "2026-11-24T14:05:00Z", "2026-11-24T14:35:00Z",
	     "2026-11-25T14:05:00Z", MORE);
	/* 6L = last Friday, only 2002-2005: Dec 2005's last Friday is the 30th, then nothing */
	NEXT("cron(15 10 ? * 6L 2002-2005)", NULL, "2005-12-01T00:00:00Z", "2005-12-30T10:15:00Z",
	     NULL);
	NEXT("cron(15 10 ? * 6L 2002-2005)", NULL, "2026-01-01T00:00:00Z", NULL);
	/* before the range: Jan 2002's last Friday is the 25th */
	NEXT("cron(15 10 ? * 6L 2002-2005)", NULL, "1999-06-01T00:00:00Z", "2002-01-25T10:15:00Z",
	     MORE);
	/* third Saturday: Nov 2026 Saturdays are 7, 14, 21, 28; Dec 5, 12, 19 */
	NEXT("cron(0 2 ? * SAT#3 *)", NULL, "2026-11-01T00:00:00Z", "2026-11-21T02:00:00Z",
	     "2026-12-19T02:00:00Z", MORE);
	NEXT("cron(* * ? * SAT#3 *)", NULL, "2026-11-21T23:58:00Z", "2026-11-21T23:59:00Z",
	     "2026-12-19T00:00:00Z", "2026-12-19T00:01:00Z", MORE);
	/* 1-5 = SUN-THU; 2022-01-01 is a Saturday; only January 2022, 05:00-05:55 */
	NEXT("cron(0/5 5 ? JAN 1-5 2022)", NULL, "2022-01-01T00:00:00Z", "2022-01-02T05:00:00Z",
	     "2022-01-02T05:05:00Z", MORE);
	/* Jan 30 2022 is a Sunday, Jan 31 a Monday: the last slot is Jan 31 05:55 */
	NEXT("cron(0/5 5 ? JAN 1-5 2022)", NULL, "2022-01-29T12:00:00Z", "2022-01-30T05:00:00Z",
	     MORE);
	NEXT("cron(0/5 5 ? JAN 1-5 2022)", NULL, "2022-01-31T05:50:00Z", "2022-01-31T05:55:00Z",
	     NULL);
	/* L alone in day-of-week is Saturday */
	NEXT("cron(0 12 ? * L *)", NULL, "2026-11-24T00:00:00Z", "2026-11-28T12:00:00Z", MORE);
	/* quarterly: months 1, 4, 7, 10 */
	NEXT("cron(0 0 1 */3 ? *)", NULL, "2026-11-24T00:00:00Z", "2027-01-01T00:00:00Z",
	     "2027-04-01T00:00:00Z", MORE);
	/* 5/20 = minutes 5, 25, 45 */
	NEXT("cron(5/20 9 * * ? *)", NULL, "2026-11-24T09:05:00Z", "2026-11-24T09:25:00Z",
	     "2026-11-24T09:45:00Z", "2026-11-25T09:05:00Z", MORE);
	/* every minute, over midnight and a month end */
	NEXT("cron(* * * * ? *)", NULL, "2026-11-30T23:58:30Z", "2026-11-30T23:59:00Z",
	     "2026-12-01T00:00:00Z", MORE);
	/* midnight: exactly at it moves a day; a millisecond before gives it */
	NEXT("cron(0 0 * * ? *)", NULL, "2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z", MORE);
	NEXT("cron(0 0 * * ? *)", NULL, "2026-11-23T23:59:59.999Z", "2026-11-24T00:00:00Z", MORE);
}

Test(sched_next, month_ends_and_leap_years)
{
	/* L: 2028 is a leap year, 2027 is not */
	NEXT("cron(0 0 L * ? *)", NULL, "2028-02-01T00:00:00Z", "2028-02-29T00:00:00Z",
	     "2028-03-31T00:00:00Z", "2028-04-30T00:00:00Z", MORE);
	NEXT("cron(0 0 L * ? *)", NULL, "2027-02-01T00:00:00Z", "2027-02-28T00:00:00Z", MORE);
	/* L in February of 2100: not a leap year (divisible by 100, not 400); 2000 was */
	NEXT("cron(0 0 L 2 ? 2100)", NULL, "2026-01-01T00:00:00Z", "2100-02-28T00:00:00Z", NULL);
	NEXT("cron(0 0 L 2 ? 2000)", NULL, "1999-01-01T00:00:00Z", "2000-02-29T00:00:00Z", NULL);
	/* Feb 29 only in leap years: 2028, then 2032; 2100 is skipped */
	NEXT("cron(0 0 29 2 ? *)", NULL, "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z",
	     "2032-02-29T00:00:00Z", MORE);
	NEXT("cron(0 0 29 FEB ? 2096-2104)", NULL, "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z",
	     NULL);
	/* the 31st skips the short months */
	NEXT("cron(0 0 31 * ? *)", NULL, "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z",
	     "2026-05-31T00:00:00Z", MORE);
	/* a day that never exists: no slot at all */
	NEXT("cron(0 0 31 2 ? *)", NULL, "2026-01-01T00:00:00Z", NULL);
	NEXT("cron(0 0 30 FEB ? *)", NULL, "1970-01-01T00:00:00Z", NULL);
	/* the very last minute of the range */
	NEXT("cron(59 23 31 12 ? 2199)", NULL, "2199-12-31T23:58:00Z", "2199-12-31T23:59:00Z",
	     NULL);
	/* LW: Feb 28 2026 is a Saturday -> Fri 27; May 31 2026 is a Sunday -> Fri 29 */
	NEXT("cron(0 0 LW 2,5 ? 2026)", NULL, "2026-01-01T00:00:00Z", "2026-02-27T00:00:00Z",
	     "2026-05-29T00:00:00Z", NULL);
	/* 15W: Aug 15 2026 is a Saturday -> Fri 14; Nov 15 2026 a Sunday -> Mon 16 */
	NEXT("cron(0 0 15W 8,11 ? 2026)", NULL, "2026-01-01T00:00:00Z", "2026-08-14T00:00:00Z",
	     "2026-11-16T00:00:00Z", NULL);
	/* 1W never leaves the month: Aug 1 2026 is a Saturday -> Mon 3, not Fri Jul 31 */
	NEXT("cron(0 0 1W 8 ? 2026)", NULL, "2026-01-01T00:00:00Z", "2026-08-03T00:00:00Z", NULL);
	/* 31W: May 31 2026 is a Sunday -> Fri 29; June has no 31st */
	NEXT("cron(0 0 31W 5,6 ? 2026)", NULL, "2026-01-01T00:00:00Z", "2026-05-29T00:00:00Z",
	     NULL);
	/* 5#5 = fifth Thursday: 2026 has them in Jan, Apr, Jul, Oct, Dec (29, 30, 30, 29, 31) */
	NEXT("cron(0 0 ? * 5#5 2026)", NULL, "2026-01-01T00:00:00Z", "2026-01-29T00:00:00Z",
	     "2026-04-30T00:00:00Z", "2026-07-30T00:00:00Z", "2026-10-29T00:00:00Z",
	     "2026-12-31T00:00:00Z", NULL);
	/* 5L = last Thursday: Feb 2026 -> 26 */
	NEXT("cron(0 0 ? 2 5L 2026)", NULL, "2026-01-01T00:00:00Z", "2026-02-26T00:00:00Z", NULL);
	/* year steps: 2000/10 -> 2030, 2040 */
	NEXT("cron(0 0 1 1 ? 2000/10)", NULL, "2026-06-01T00:00:00Z", "2030-01-01T00:00:00Z",
	     "2040-01-01T00:00:00Z", MORE);
}

Test(sched_next, rate_and_at)
{
	sched_t *s = parse_ok("rate(5 minutes)", NULL);
	int64_t x;
	/* anchor = creation time: slots at :02:30, :07:30, ... */
	sched_set_anchor(s, T("2026-11-24T10:02:30Z"));
	cr_assert_eq(sched_next(s, T("2026-11-24T10:10:00Z"), &x), SL_OK);
	cr_assert_eq(x, T("2026-11-24T10:12:30Z"));
	cr_assert_eq(sched_next(s, T("2026-11-24T10:12:30Z"), &x), SL_OK);
	cr_assert_eq(x, T("2026-11-24T10:17:30Z"));
	/* before the anchor too (backfill before creation) */
	cr_assert_eq(sched_next(s, T("2026-11-24T09:56:00Z"), &x), SL_OK);
	cr_assert_eq(x, T("2026-11-24T09:57:30Z"));
	cr_assert_eq(sched_next(s, INT64_MAX - 10, &x), SL_ERR_NOT_FOUND);
	cr_assert_eq(sched_next(s, INT64_MIN, &x), SL_OK);
	sched_free(s);

	/* rate(1 day) is elapsed time, even over New York's spring-forward */
	s = parse_ok("rate(1 day)", "America/New_York");
	sched_set_anchor(s, T("2026-03-07T12:00:00Z"));
	cr_assert_eq(sched_next(s, T("2026-03-07T12:00:00Z"), &x), SL_OK);
	cr_assert_eq(x, T("2026-03-08T12:00:00Z"));
	cr_assert_eq(sched_next(s, x, &x), SL_OK);
	cr_assert_eq(x, T("2026-03-09T12:00:00Z"));
	sched_free(s);

	s = parse_ok("at(2026-11-24T10:00:00)", NULL);
	cr_assert_eq(sched_kind(s), SCHED_AT);
	cr_assert_eq(sched_next(s, T("2026-11-24T09:00:00Z"), &x), SL_OK);
	cr_assert_eq(x, T("2026-11-24T10:00:00Z"));
	cr_assert_eq(sched_next(s, T("2026-11-24T10:00:00Z"), &x), SL_ERR_NOT_FOUND);
	sched_free(s);
	/* at() in a zone is wall-clock: 10:00 in Berlin in winter is 09:00Z */
	s = parse_ok("at(2026-11-24T10:00:00)", "Europe/Berlin");
	cr_assert_eq(sched_next(s, 0, &x), SL_OK);
	cr_assert_eq(x, T("2026-11-24T09:00:00Z"));
	sched_free(s);
}

/* ---- daylight saving --------------------------------------------------------------------- */

Test(sched_dst, new_york_spring_forward_gap)
{
	/* 2026-03-08: 02:00 EST jumps to 03:00 EDT at 07:00Z; 02:30 does not exist and fires at
	 * the end of the gap, 03:00 EDT = 07:00Z; the day after, 02:30 EDT = 06:30Z */
	NEXT("cron(30 2 * * ? *)", "America/New_York", "2026-03-07T12:00:00Z",
	     "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", MORE);
	/* the day before, 02:30 EST = 07:30Z */
	NEXT("cron(30 2 * * ? *)", "America/New_York", "2026-03-06T12:00:00Z",
	     "2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", MORE);
	/* four slots inside the gap collapse into one */
	NEXT("cron(0/15 2 * * ? *)", "America/New_York", "2026-03-08T06:00:00Z",
	     "2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z", MORE);
	/* 03:00 exists (it is the gap's end): fires once at 07:00Z */
	NEXT("cron(0 3 * * ? *)", "America/New_York", "2026-03-07T12:00:00Z",
	     "2026-03-08T07:00:00Z", "2026-03-09T07:00:00Z", MORE);
	/* 01:59 EST is just before the gap: 06:59Z */
	NEXT("cron(59 1 * * ? *)", "America/New_York", "2026-03-07T12:00:00Z",
	     "2026-03-08T06:59:00Z", "2026-03-09T05:59:00Z", MORE);
}

Test(sched_dst, new_york_fall_back_overlap)
{
	/* 2026-11-01: 02:00 EDT falls back to 01:00 EST at 06:00Z; 01:30 happens at 05:30Z
	 * (EDT) and 06:30Z (EST): only the first fires */
	NEXT("cron(30 1 * * ? *)", "America/New_York", "2026-10-31T12:00:00Z",
	     "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", MORE);
	/* every minute of 01:xx: the repeated hour does not fire again */
	NEXT("cron(* 1 * * ? *)", "America/New_York", "2026-11-01T05:58:00Z",
	     "2026-11-01T05:59:00Z", "2026-11-02T06:00:00Z", MORE);
	/* asked from inside the second 01:xx, the next is 02:00 EST = 07:00Z */
	NEXT("cron(0 * * * ? *)", "America/New_York", "2026-11-01T06:10:00Z",
	     "2026-11-01T07:00:00Z", MORE);
	/* hourly across the fall-back: 00:00 EDT 04:00Z, 01:00 EDT 05:00Z, (01:00 EST skipped),
	 * 02:00 EST 07:00Z */
	NEXT("cron(0 * * * ? *)", "America/New_York", "2026-11-01T03:30:00Z",
	     "2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", MORE);
	/* at() in the overlap takes the first occurrence, in the gap the gap's end */
	int64_t x;
	sched_t *s = parse_ok("at(2026-11-01T01:30:00)", "America/New_York");
	cr_assert_eq(sched_next(s, 0, &x), SL_OK);
	cr_assert_eq(x, T("2026-11-01T05:30:00Z"));
	sched_free(s);
	s = parse_ok("at(2026-03-08T02:30:00)", "America/New_York");
	cr_assert_eq(sched_next(s, 0, &x), SL_OK);
	cr_assert_eq(x, T("2026-03-08T07:00:00Z"));
	sched_free(s);
}

Test(sched_dst, berlin_both_transitions)
{
	/* 2026-03-29: 02:00 CET -> 03:00 CEST at 01:00Z; 02:30 fires at 01:00Z */
	NEXT("cron(30 2 * * ? *)", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z",
	     "2026-03-30T00:30:00Z", MORE);
	/* 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00Z; 02:30 is 00:30Z (CEST) and 01:30Z
	 * (CET): only the first */
	NEXT("cron(30 2 * * ? *)", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z",
	     "2026-10-26T01:30:00Z", MORE);
	/* a nightly 02:00 ETL in Berlin over a whole year keeps its wall-clock time */
	NEXT("cron(0 2 * * ? *)", "Europe/Berlin", "2026-01-14T12:00:00Z", "2026-01-15T01:00:00Z",
	     MORE);
	NEXT("cron(0 2 * * ? *)", "Europe/Berlin", "2026-07-14T12:00:00Z", "2026-07-15T00:00:00Z",
	     MORE);
	/* last Sunday of the month at 02:30, on the transition days themselves */
	NEXT("cron(30 2 ? 3,10 1L 2026)", "Europe/Berlin", "2026-01-01T00:00:00Z",
	     "2026-03-29T01:00:00Z", "2026-10-25T00:30:00Z", NULL);
}

Test(sched_dst, beyond_the_table_uses_the_footer)
{
	/* Debian's tzdata lists transitions up to 2037; later ones come from the TZ string */
	sched_tz_t *tz = NULL;
	struct sl_error err;
	cr_assert_eq(sched_tz_open("Europe/Berlin", &tz, &err), SL_OK, "%s", err.message);
	int64_t at;
	int32_t ob, oa;
	/* last Sunday of March 2040 is the 25th, of October the 28th; 01:00Z both */
	cr_assert_eq(sched_tz_next_transition(tz, T("2040-01-01T00:00:00Z") / 1000, &at, &ob, &oa),
	             SL_OK);
	cr_assert_eq(at, T("2040-03-25T01:00:00Z") / 1000);
	cr_assert_eq(ob, 3600);
	cr_assert_eq(oa, 7200);
	cr_assert_eq(sched_tz_next_transition(tz, at, &at, &ob, &oa), SL_OK);
	cr_assert_eq(at, T("2040-10-28T01:00:00Z") / 1000);
	cr_assert_eq(oa, 3600);
	cr_assert_eq(sched_tz_offset(tz, T("2040-03-25T00:59:59Z") / 1000), 3600);
	cr_assert_eq(sched_tz_offset(tz, T("2040-03-25T01:00:00Z") / 1000), 7200);
	cr_assert_eq(sched_tz_offset(tz, T("2199-07-01T00:00:00Z") / 1000), 7200);
	/* table and footer meet seamlessly: 2037-10-25 is the last listed transition */
	cr_assert_eq(sched_tz_next_transition(tz, T("2037-06-01T00:00:00Z") / 1000, &at, &ob, &oa),
	             SL_OK);
	cr_assert_eq(at, T("2037-10-25T01:00:00Z") / 1000);
	cr_assert_eq(sched_tz_next_transition(tz, at, &at, &ob, &oa), SL_OK);
	cr_assert_eq(at, T("2038-03-28T01:00:00Z") / 1000);
	sched_tz_free(tz);
	/* New York 2040: spring forward Mar 11 07:00Z, fall back Nov 4 06:00Z */
	NEXT("cron(30 2 * * ? *)", "America/New_York", "2040-03-10T12:00:00Z",
	     "2040-03-11T07:00:00Z", "2040-03-12T06:30:00Z", MORE);
	NEXT("cron(30 1 * * ? *)", "America/New_York", "2040-11-03T12:00:00Z",
	     "2040-11-04T05:30:00Z", "2040-11-05T06:30:00Z", MORE);
	NEXT("cron(30 2 * * ? *)", "Europe/Berlin", "2040-03-24T12:00:00Z", "2040-03-25T01:00:00Z",
	     MORE);
}

/* ---- TZif: crafted, truncated, corrupt --------------------------------------------------- */

static unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	unsigned char *buf = malloc(1 << 20);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* A v2 file with no transitions and one type (offset 0): the footer decides everything. */
static size_t
craft_footer_only(const char *tzstring, unsigned char f[512])
{
	size_t n = 0;
	for (int part = 0; part < 2; part++) {
		memset(f + n, 0, 44);
		memcpy(f + n, "TZif2", 5);
		put32(f + n + 36, 1);
		put32(f + n + 40, 4);
		n += 44;
		memset(f + n, 0, 6);
		n += 6;
		memcpy(f + n, "XXX", 4);
		n += 4;
	}
	f[n++] = '\n';
	memcpy(f + n, tzstring, strlen(tzstring));
	n += strlen(tzstring);
	f[n++] = '\n';
	return n;
}

Test(sched_tz, footer_rules_all_year_and_southern)
{
	unsigned char f[512];
	sched_tz_t *tz = NULL;
	struct sl_error err;
	int64_t at;
	int32_t ob, oa;
	/* RFC 8536 3.3.1: DST all year, leap years included */
	size_t n = craft_footer_only("EST5EDT4,0/0,J365/25", f);
	cr_assert_eq(sched_tz_parse(f, n, "alldst", &tz, &err), SL_OK, "%s", err.message);
	static const char *const when[]
	        = { "2026-01-01T00:00:00Z", "2026-01-01T05:00:00Z", "2026-07-01T00:00:00Z",
		    "2026-12-31T23:59:59Z", "2028-02-29T12:00:00Z", "2028-12-31T23:00:00Z" };
	for (size_t i = 0; i < 6; i++)
		cr_assert_eq(sched_tz_offset(tz, T(when[i]) / 1000), -14400, "%s", when[i]);
	cr_assert_eq(sched_tz_next_transition(tz, T("2026-06-01T00:00:00Z") / 1000, &at, &ob, &oa),
	             SL_ERR_NOT_FOUND);
	sched_tz_free(tz);
	/* Sydney's rule: DST ends the first Sunday of April at 03:00 AEDT (2026-04-05, i.e.
	 * 04-04T16:00Z), starts the first Sunday of October at 02:00 AEST (10-03T16:00Z) */
	n = craft_footer_only("AEST-10AEDT,M10.1.0,M4.1.0/3", f);
	cr_assert_eq(sched_tz_parse(f, n, "south", &tz, &err), SL_OK, "%s", err.message);
	cr_assert_eq(sched_tz_offset(tz, T("2026-04-04T15:59:59Z") / 1000), 39600);
	cr_assert_eq(sched_tz_offset(tz, T("2026-04-04T16:00:00Z") / 1000), 36000);
	cr_assert_eq(sched_tz_offset(tz, T("2026-10-03T15:59:59Z") / 1000), 36000);
	cr_assert_eq(sched_tz_offset(tz, T("2026-10-03T16:00:00Z") / 1000), 39600);
	cr_assert_eq(sched_tz_next_transition(tz, T("2026-05-01T00:00:00Z") / 1000, &at, &ob, &oa),
	             SL_OK);
	cr_assert_eq(at, T("2026-10-03T16:00:00Z") / 1000);
	cr_assert_eq(ob, 36000);
	cr_assert_eq(oa, 39600);
	sched_tz_free(tz);
	/* fixed offsets, quoted names, minutes */
	n = craft_footer_only("<+0530>-5:30", f);
	cr_assert_eq(sched_tz_parse(f, n, "fixed", &tz, &err), SL_OK, "%s", err.message);
	cr_assert_eq(sched_tz_offset(tz, T("2026-07-01T00:00:00Z") / 1000), 19800);
	sched_tz_free(tz);
	static const char *const bad[] = { "EST",
		                           "E5",
		                           "EST5EDT,M3.2.0",
		                           "EST5EDT,M13.1.0,M11.1.0",
		                           "EST5EDT,J0,J365",
		                           "EST25",
		                           "<E>5",
		                           "EST5EDT,M3.2.0,M11.1.0x",
		                           "EST5EDT,M3.2.0/168,M11.1.0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = craft_footer_only(bad[i], f);
		cr_assert_eq(sched_tz_parse(f, n, "bad", &tz, &err), SL_ERR_INVALID_ARG, "'%s'",
		             bad[i]);
	}
}

Test(sched_tz, footer_only_v2_file)
{
	/* a v2 file with no transitions at all: everything comes from the POSIX string */
	unsigned char f[256];
	size_t n = 0;
	for (int part = 0; part < 2; part++) {
		memset(f + n, 0, 44);
		memcpy(f + n, "TZif2", 5);
		put32(f + n + 36, 1); /* typecnt */
		put32(f + n + 40, 4); /* charcnt */
		n += 44;
		put32(f + n, (uint32_t)-18000); /* EST */
		f[n + 4] = 0;
		f[n + 5] = 0;
		n += 6;
		memcpy(f + n, "EST", 4);
		n += 4;
	}
	const char *footer = "\nEST5EDT,M3.2.0,M11.1.0\n";
	memcpy(f + n, footer, strlen(footer));
	n += strlen(footer);
	sched_tz_t *tz = NULL;
	struct sl_error err;
	cr_assert_eq(sched_tz_parse(f, n, "crafted", &tz, &err), SL_OK, "%s", err.message);
	cr_assert_eq(sched_tz_offset(tz, T("2026-01-15T00:00:00Z") / 1000), -18000);
	cr_assert_eq(sched_tz_offset(tz, T("2026-07-15T00:00:00Z") / 1000), -14400);
	cr_assert_eq(sched_tz_offset(tz, T("2026-03-08T06:59:59Z") / 1000), -18000);
	cr_assert_eq(sched_tz_offset(tz, T("2026-03-08T07:00:00Z") / 1000), -14400);
	/* 01:30 local on the fall-back day, first occurrence */
	cr_assert_eq(sched_tz_local_to_utc(tz, T("2026-11-01T01:30:00Z") / 1000),
	             T("2026-11-01T05:30:00Z") / 1000);
	sched_tz_free(tz);
	/* a bad footer is refused with where */
	memcpy(f + n - strlen(footer), "\nEST5EDT,M3.2.9,M11.1.0\n", strlen(footer));
	cr_assert_eq(sched_tz_parse(f, n, "crafted", &tz, &err), SL_ERR_INVALID_ARG);
	cr_assert(strstr(err.message, "POSIX TZ string"), "%s", err.message);
}

Test(sched_tz, version1_file_and_every_truncation)
{
	size_t len = 0;
	unsigned char *buf = slurp("/usr/share/zoneinfo/Europe/Berlin", &len);
	if (!buf)
		cr_skip_test("no /usr/share/zoneinfo/Europe/Berlin on this machine");
	sched_tz_t *tz = NULL;
	struct sl_error err;
	/* every proper prefix fails cleanly; the whole file parses */
	for (size_t cut = 0; cut < len; cut++) {
		cr_assert_eq(sched_tz_parse(buf, cut, "Europe/Berlin", &tz, &err),
		             SL_ERR_INVALID_ARG, "prefix of %zu bytes accepted", cut);
		cr_assert(strstr(err.message, "Europe/Berlin") && strstr(err.message, "byte"), "%s",
		          err.message);
	}
	cr_assert_eq(sched_tz_parse(buf, len, "Europe/Berlin", &tz, NULL), SL_OK);
	sched_tz_free(tz);
	/* the same file as version 1: its 32-bit block alone, version byte 0 */
	uint32_t timecnt = (uint32_t)buf[32] << 24 | buf[33] << 16 | buf[34] << 8 | buf[35];
	uint32_t typecnt = (uint32_t)buf[36] << 24 | buf[37] << 16 | buf[38] << 8 | buf[39];
	uint32_t charcnt = (uint32_t)buf[40] << 24 | buf[41] << 16 | buf[42] << 8 | buf[43];
	uint32_t isstd = (uint32_t)buf[24] << 24 | buf[25] << 16 | buf[26] << 8 | buf[27];
	uint32_t isut = (uint32_t)buf[20] << 24 | buf[21] << 16 | buf[22] << 8 | buf[23];
	size_t v1 = 44 + timecnt * 5 + typecnt * 6 + charcnt + isstd + isut;
	buf[4] = 0;
	cr_assert_eq(sched_tz_parse(buf, v1, "v1", &tz, &err), SL_OK, "%s", err.message);
	cr_assert_eq(sched_tz_offset(tz, T("2026-01-15T00:00:00Z") / 1000), 3600);
	cr_assert_eq(sched_tz_offset(tz, T("2026-07-15T00:00:00Z") / 1000), 7200);
	/* no footer in v1: after the table's end (2037) the last type stays */
	cr_assert_eq(sched_tz_offset(tz, T("2040-07-15T00:00:00Z") / 1000), 3600);
	sched_tz_free(tz);
	free(buf);
}

Test(sched_tz, corrupt_files_on_disk)
{
	size_t len = 0;
	unsigned char *buf = slurp("/usr/share/zoneinfo/America/New_York", &len);
	if (!buf)
		cr_skip_test("no /usr/share/zoneinfo/America/New_York on this machine");
	char dir[] = "/tmp/sched_tz_XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[128];
	struct {
		const char *what;
		size_t cut;
		int flip; /* byte index to overwrite, -1 none */
		unsigned char val;
		const char *expect;
	} cases[] = {
		{ "truncated header", 30, -1, 0, "truncated header" },
		{ "truncated data", 200, -1, 0, "truncated" },
		{ "bad magic", 0, 0, 'X', "magic" },
		{ "bad version", 0, 4, '9', "version" },
		{ "typecnt 0", 0, 39, 0, "typecnt" },
		{ "no footer newline", 1, -1, 0, "footer" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned char *copy = malloc(len);
		memcpy(copy, buf, len);
		size_t n = cases[i].cut ? (cases[i].cut == 1 ? len - 1 : cases[i].cut) : len;
		if (cases[i].flip >= 0)
			copy[cases[i].flip] = cases[i].val;
		snprintf(path, sizeof(path), "%s/zone%zu", dir, i);
		FILE *f = fopen(path, "wb");
		fwrite(copy, 1, n, f);
		fclose(f);
		free(copy);
		sched_tz_t *tz = (sched_tz_t *)1;
		struct sl_error err;
		cr_assert_eq(sched_tz_open_file(path, "Corrupt/Zone", &tz, &err),
		             SL_ERR_INVALID_ARG, "%s accepted", cases[i].what);
		cr_assert(strstr(err.message, cases[i].expect)
		                  && strstr(err.message, "Corrupt/Zone"),
		          "%s: %s", cases[i].what, err.message);
		unlink(path);
	}
	/* a directory and a missing file are unknown zones, not crashes */
	sched_tz_t *tz = NULL;
	struct sl_error err;
	cr_assert_eq(sched_tz_open_file(dir, "Dir", &tz, &err), SL_ERR_INVALID_ARG);
	snprintf(path, sizeof(path), "%s/missing", dir);
	cr_assert_eq(sched_tz_open_file(path, "Missing", &tz, &err), SL_ERR_INVALID_ARG);
	cr_assert(strstr(err.message, "unknown"), "%s", err.message);
	rmdir(dir);
	free(buf);
}

Test(sched_tz, random_byte_flips_never_crash)
{
	size_t len = 0;
	unsigned char *buf = slurp("/usr/share/zoneinfo/America/New_York", &len);
	if (!buf)
		cr_skip_test("no /usr/share/zoneinfo/America/New_York on this machine");
	unsigned char *copy = malloc(len);
	uint64_t seed = 42;
	int accepted = 0, refused = 0;
	for (int iter = 0; iter < 3000; iter++) {
		memcpy(copy, buf, len);
		for (int k = 0; k < 3; k++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			copy[(seed >> 33) % len] = (unsigned char)(seed >> 17);
		}
		sched_tz_t *tz = NULL;
		struct sl_error err;
		sl_err rc = sched_tz_parse(copy, len, "fuzz", &tz, &err);
		cr_assert(rc == SL_OK || rc == SL_ERR_INVALID_ARG, "rc %d", rc);
		if (rc == SL_OK) {
			accepted++;
			int64_t at, t = T("2026-11-01T00:00:00Z") / 1000;
			int32_t ob, oa, o = sched_tz_offset(tz, t);
			cr_assert(o >= -89999 && o <= 93599);
			(void)sched_tz_next_transition(tz, t, &at, &ob, &oa);
			(void)sched_tz_local_to_utc(tz, t);
			sched_tz_free(tz);
		} else {
			refused++;
		}
	}
	cr_assert_gt(accepted, 0);
	cr_assert_gt(refused, 0);
	free(copy);
	free(buf);
}

Test(sched_tz, bad_zone_names)
{
	static const char *const bad[] = { "Mars/Olympus_Mons",
		                           "../../etc/passwd",
		                           "/etc/localtime",
		                           "America",
		                           "",
		                           "Europe//Berlin",
		                           "Europe/Berlin/",
		                           ".hidden",
		                           "Europe/.Berlin",
		                           "Europe/Berlin\n",
		                           "Europe/Ber lin",
		                           "A_very_long_name_that_is_longer_than_sixty_four_bytes_"
		                           "for_sure_yes" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sched_t *s = (sched_t *)1;
		struct sl_error err;
		sl_err rc = sched_parse("cron(0 2 * * ? *)", bad[i], &s, &err);
		cr_assert_eq(rc, SL_ERR_INVALID_ARG, "zone '%s' accepted", bad[i]);
		cr_assert_null(s);
		cr_assert(strncmp(err.message,
		                  "Parameter ScheduleExpressionTimezone is not valid: ", 51)
		                  == 0,
		          "%s", err.message);
	}
	sched_t *s = NULL;
	struct sl_error err;
	cr_assert_eq(sched_parse("cron(0 2 * * ? *)", "Mars/Olympus_Mons", &s, &err),
	             SL_ERR_INVALID_ARG);
	cr_assert(strstr(err.message, "'Mars/Olympus_Mons' is unknown"), "%s", err.message);
	/* the expression is checked first: a bad expression gives AWS's message */
	cr_assert_eq(sched_parse("cron(0 2 * * * *)", "Mars/Olympus_Mons", &s, &err),
	             SL_ERR_INVALID_ARG);
	cr_assert_str_eq(err.message, SCHED_INVALID_MESSAGE);
	/* real zones, including UTC itself */
	sched_free(parse_ok("cron(0 2 * * ? *)", "UTC"));
	sched_free(parse_ok("cron(0 2 * * ? *)", "Asia/Kolkata"));
	NEXT("cron(0 2 * * ? *)", "Asia/Kolkata", "2026-11-24T00:00:00Z", "2026-11-24T20:30:00Z",
	     MORE);
}

/* ---- missed runs ------------------------------------------------------------------------- */

static void
due_is(const struct sched_due *d, size_t n, const char *const *want)
{
	cr_assert_eq(d->n, n, "expected %zu slots, got %zu", n, d->n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(d->slots[i], T(want[i]), "slot %zu: expected %s", i, want[i]);
}

Test(sched_missed, policies_after_downtime)
{
	sched_t *s = parse_ok("rate(1 hour)", NULL);
	struct sched_due d;
	int64_t last = T("2026-11-24T00:00:00Z"), now = T("2026-11-24T05:30:00Z");
	/* down from 00:00 to 05:30: slots 01:00 .. 05:00 were missed */
	cr_assert_eq(sched_due(s, last, now, SCHED_MISSED_SKIP, 60000, 100, &d), SL_OK);
	due_is(&d, 0, NULL);
	cr_assert(d.has_next);
	cr_assert_eq(d.next_ms, T("2026-11-24T06:00:00Z"));
	sched_due_release(&d);
	/* skip still fires a slot the loop is merely late for (within the grace) */
	cr_assert_eq(
	        sched_due(s, last, T("2026-11-24T05:00:20Z"), SCHED_MISSED_SKIP, 60000, 100, &d),
	        SL_OK);
	due_is(&d, 1, (const char *const[]) { "2026-11-24T05:00:00Z" });
	sched_due_release(&d);
	cr_assert_eq(sched_due(s, last, now, SCHED_MISSED_ONCE, 60000, 100, &d), SL_OK);
	due_is(&d, 1, (const char *const[]) { "2026-11-24T05:00:00Z" });
	cr_assert_eq(d.next_ms, T("2026-11-24T06:00:00Z"));
	sched_due_release(&d);
	cr_assert_eq(sched_due(s, last, now, SCHED_MISSED_ALL, 60000, 100, &d), SL_OK);
	due_is(&d, 5,
	       (const char *const[]) { "2026-11-24T01:00:00Z", "2026-11-24T02:00:00Z",
	                               "2026-11-24T03:00:00Z", "2026-11-24T04:00:00Z",
	                               "2026-11-24T05:00:00Z" });
	cr_assert(!d.more);
	cr_assert_eq(d.next_ms, T("2026-11-24T06:00:00Z"));
	sched_due_release(&d);
	/* the cap bounds one batch; asking again from the last fired slot resumes in order */
	cr_assert_eq(sched_due(s, last, now, SCHED_MISSED_ALL, 60000, 2, &d), SL_OK);
	due_is(&d, 2, (const char *const[]) { "2026-11-24T01:00:00Z", "2026-11-24T02:00:00Z" });
	cr_assert(d.more);
	cr_assert_eq(d.next_ms, T("2026-11-24T03:00:00Z"));
	int64_t resume = d.slots[1];
	sched_due_release(&d);
	cr_assert_eq(sched_due(s, resume, now, SCHED_MISSED_ALL, 60000, 2, &d), SL_OK);
	due_is(&d, 2, (const char *const[]) { "2026-11-24T03:00:00Z", "2026-11-24T04:00:00Z" });
	cr_assert(d.more);
	resume = d.slots[1];
	sched_due_release(&d);
	cr_assert_eq(sched_due(s, resume, now, SCHED_MISSED_ALL, 60000, 2, &d), SL_OK);
	due_is(&d, 1, (const char *const[]) { "2026-11-24T05:00:00Z" });
	cr_assert(!d.more);
	sched_due_release(&d);
	/* nothing due when now is not past last */
	cr_assert_eq(sched_due(s, now, now, SCHED_MISSED_ALL, 0, 10, &d), SL_OK);
	due_is(&d, 0, NULL);
	cr_assert_eq(d.next_ms, T("2026-11-24T06:00:00Z"));
	sched_due_release(&d);
	/* bad arguments */
	cr_assert_eq(sched_due(s, last, now, SCHED_MISSED_ALL, 0, 0, &d), SL_ERR_INVALID_ARG);
	cr_assert_eq(sched_due(s, last, now, SCHED_MISSED_SKIP, -1, 1, &d), SL_ERR_INVALID_ARG);
	cr_assert_eq(sched_due(s, last, now, (enum sched_missed)7, 0, 1, &d), SL_ERR_INVALID_ARG);
	sched_free(s);
}

Test(sched_missed, nightly_etl_in_a_zone)
{
	/* 02:00 New York (07:00Z in November); last run Nov 20, back up Nov 23 at 12:00Z */
	sched_t *s = parse_ok("cron(0 2 * * ? *)", "America/New_York");
	struct sched_due d;
	int64_t last = T("2026-11-20T07:00:00Z"), now = T("2026-11-23T12:00:00Z");
	cr_assert_eq(sched_due(s, last, now, SCHED_MISSED_ONCE, 60000, 10, &d), SL_OK);
	due_is(&d, 1, (const char *const[]) { "2026-11-23T07:00:00Z" });
	cr_assert_eq(d.next_ms, T("2026-11-24T07:00:00Z"));
	sched_due_release(&d);
	cr_assert_eq(sched_due(s, last, now, SCHED_MISSED_ALL, 60000, 10, &d), SL_OK);
	due_is(&d, 3,
	       (const char *const[]) { "2026-11-21T07:00:00Z", "2026-11-22T07:00:00Z",
	                               "2026-11-23T07:00:00Z" });
	sched_due_release(&d);
	cr_assert_eq(sched_due(s, last, now, SCHED_MISSED_SKIP, 60000, 10, &d), SL_OK);
	due_is(&d, 0, NULL);
	sched_due_release(&d);
	sched_free(s);
	/* a yearly cron down for two years: once finds the latest slot far back */
	s = parse_ok("cron(0 0 1 1 ? *)", NULL);
	cr_assert_eq(sched_due(s, T("2020-01-01T00:00:00Z"), T("2022-06-01T00:00:00Z"),
	                       SCHED_MISSED_ONCE, 0, 10, &d),
	             SL_OK);
	due_is(&d, 1, (const char *const[]) { "2022-01-01T00:00:00Z" });
	sched_due_release(&d);
	sched_free(s);
	/* at(): missed while down, fired once by ONCE, then nothing to arm */
	s = parse_ok("at(2026-11-22T09:00:00)", NULL);
	cr_assert_eq(sched_due(s, last, now, SCHED_MISSED_ONCE, 0, 10, &d), SL_OK);
	due_is(&d, 1, (const char *const[]) { "2026-11-22T09:00:00Z" });
	cr_assert(!d.has_next);
	sched_due_release(&d);
	sched_free(s);
}

Test(sched_missed, policy_names)
{
	enum sched_missed p;
	struct sl_error err;
	cr_assert_eq(sched_missed_parse("skip", &p, &err), SL_OK);
	cr_assert_eq(p, SCHED_MISSED_SKIP);
	cr_assert_eq(sched_missed_parse("once", &p, &err), SL_OK);
	cr_assert_eq(p, SCHED_MISSED_ONCE);
	cr_assert_eq(sched_missed_parse("all", &p, &err), SL_OK);
	cr_assert_eq(p, SCHED_MISSED_ALL);
	cr_assert_str_eq(sched_missed_name(SCHED_MISSED_ALL), "all");
	cr_assert_eq(sched_missed_parse("SKIP", &p, &err), SL_ERR_INVALID_ARG);
	cr_assert_str_eq(err.message,
	                 "missed-run policy 'SKIP' is not valid: expected skip, once or all");
	cr_assert_eq(sched_missed_parse(NULL, &p, &err), SL_ERR_INVALID_ARG);
}

/* ---- backfill ---------------------------------------------------------------------------- */

static size_t
collect(const sched_t *s, int64_t from, int64_t to, int64_t *out, size_t max)
{
	struct sched_iter it;
	size_t n = 0;
	int64_t x;
	sched_iter_init(&it, s, from, to);
	while (n < max && sched_iter_next(&it, &x) == SL_OK)
		out[n++] = x;
	return n;
}

Test(sched_backfill, bounds_are_from_inclusive_to_exclusive)
{
	sched_t *s = parse_ok("cron(0 2 * * ? *)", NULL);
	int64_t got[16];
	size_t n = collect(s, T("2026-11-01T02:00:00Z"), T("2026-11-04T02:00:00Z"), got, 16);
	cr_assert_eq(n, 3);
	cr_assert_eq(got[0], T("2026-11-01T02:00:00Z"));
	cr_assert_eq(got[1], T("2026-11-02T02:00:00Z"));
	cr_assert_eq(got[2], T("2026-11-03T02:00:00Z"));
	/* one millisecond later on both ends shifts both */
	n = collect(s, T("2026-11-01T02:00:00.001Z"), T("2026-11-04T02:00:00.001Z"), got, 16);
	cr_assert_eq(n, 3);
	cr_assert_eq(got[0], T("2026-11-02T02:00:00Z"));
	cr_assert_eq(got[2], T("2026-11-04T02:00:00Z"));
	/* empty and reversed ranges */
	cr_assert_eq(collect(s, T("2026-11-01T02:00:00Z"), T("2026-11-01T02:00:00Z"), got, 16), 0);
	cr_assert_eq(collect(s, T("2026-11-05T00:00:00Z"), T("2026-11-01T00:00:00Z"), got, 16), 0);
	/* the iterator stays finished */
	struct sched_iter it;
	int64_t x;
	sched_iter_init(&it, s, T("2026-11-01T00:00:00Z"), T("2026-11-01T03:00:00Z"));
	cr_assert_eq(sched_iter_next(&it, &x), SL_OK);
	cr_assert_eq(sched_iter_next(&it, &x), SL_ERR_NOT_FOUND);
	cr_assert_eq(sched_iter_next(&it, &x), SL_ERR_NOT_FOUND);
	sched_free(s);
	/* a zone's DST days: Berlin 02:30 over the spring-forward weekend */
	s = parse_ok("cron(30 2 * * ? *)", "Europe/Berlin");
	n = collect(s, T("2026-03-28T00:00:00Z"), T("2026-03-31T00:00:00Z"), got, 16);
	cr_assert_eq(n, 3);
	cr_assert_eq(got[0], T("2026-03-28T01:30:00Z"));
	cr_assert_eq(got[1], T("2026-03-29T01:00:00Z"));
	cr_assert_eq(got[2], T("2026-03-30T00:30:00Z"));
	sched_free(s);
	/* rate with its anchor: every 10 minutes from 00:03 */
	s = parse_ok("rate(10 minutes)", NULL);
	sched_set_anchor(s, T("2026-11-24T00:03:00Z"));
	n = collect(s, T("2026-11-24T00:00:00Z"), T("2026-11-24T00:30:00Z"), got, 16);
	cr_assert_eq(n, 3);
	cr_assert_eq(got[0], T("2026-11-24T00:03:00Z"));
	cr_assert_eq(got[2], T("2026-11-24T00:23:00Z"));
	sched_free(s);
	/* a whole year of a 15-minute cron: 365 * 96 slots, all in order */
	s = parse_ok("cron(0/15 * * * ? *)", NULL);
	sched_iter_init(&it, s, T("2026-01-01T00:00:00Z"), T("2027-01-01T00:00:00Z"));
	size_t count = 0;
	int64_t prev = INT64_MIN;
	while (sched_iter_next(&it, &x) == SL_OK) {
		cr_assert_gt(x, prev);
		prev = x;
		count++;
	}
	cr_assert_eq(count, 365 * 96);
	sched_free(s);
}

Test(sched_backfill, prev_finds_the_latest_slot)
{
	sched_t *s = parse_ok("cron(0 9 ? * MON *)", NULL);
	int64_t x;
	/* Mondays: Nov 23 2026 and Nov 16 */
	cr_assert_eq(sched_prev(s, T("2026-01-01T00:00:00Z"), T("2026-11-24T12:00:00Z"), &x),
	             SL_OK);
	cr_assert_eq(x, T("2026-11-23T09:00:00Z"));
	cr_assert_eq(sched_prev(s, T("2026-01-01T00:00:00Z"), T("2026-11-23T09:00:00Z"), &x),
	             SL_OK);
	cr_assert_eq(x, T("2026-11-23T09:00:00Z"));
	cr_assert_eq(sched_prev(s, T("2026-11-23T09:00:00Z"), T("2026-11-24T12:00:00Z"), &x),
	             SL_ERR_NOT_FOUND);
	sched_free(s);
}

/* ---- robustness -------------------------------------------------------------------------- */

Test(sched_parse, random_input_never_crashes)
{
	static const char alphabet[] = "cronateLW#?*,-/() 0123456789JANFEBMONSUNSATminutesdayhr:T";
	static const char *const seeds[] = { "cron(0/5 8-17 ? * MON-FRI *)",
		                             "cron(15 10 ? * 6L 2002-2005)",
		                             "rate(5 minutes)",
		                             "at(2026-11-24T02:00:00)",
		                             "cron(0 0 15W * ? *)",
		                             "cron(0 2 ? * SAT#3 *)" };
	uint64_t seed = 7;
	char buf[80];
	int accepted = 0;
	for (int iter = 0; iter < 40000; iter++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		size_t n;
		if (iter % 2) {
			/* mutate a valid expression */
			const char *base = seeds[(seed >> 40) % 6];
			n = strlen(base);
			memcpy(buf, base, n + 1);
			for (int k = 0; k < 2; k++) {
				seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
				buf[(seed >> 33) % n]
				        = alphabet[(seed >> 20) % (sizeof(alphabet) - 1)];
			}
		} else {
			n = (seed >> 33) % 40;
			memcpy(buf, (seed >> 50) % 2 ? "cron(" : "rate(", 5);
			for (size_t i = 5; i < n; i++) {
				seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
				buf[i] = (seed >> 60) == 0
				        ? (char)(seed >> 20)
				        : alphabet[(seed >> 20) % (sizeof(alphabet) - 1)];
				if (buf[i] == '\0')
					buf[i] = '~';
			}
			buf[n > 5 ? n : 5] = '\0';
		}
		sched_t *s = NULL;
		struct sl_error err;
		sl_err rc = sched_parse(buf, NULL, &s, &err);
		cr_assert(rc == SL_OK || rc == SL_ERR_INVALID_ARG, "'%s': rc %d", buf, rc);
		if (rc == SL_OK) {
			int64_t x;
			accepted++;
			sl_err r2 = sched_next(s, T("2026-11-24T00:00:00Z"), &x);
			cr_assert(r2 == SL_OK || r2 == SL_ERR_NOT_FOUND, "'%s': next rc %d", buf,
			          r2);
			sched_free(s);
		} else {
			cr_assert_str_eq(err.message, SCHED_INVALID_MESSAGE, "'%s'", buf);
		}
	}
	cr_assert_gt(accepted, 0);
}

Test(sched_parse, out_of_memory_is_clean)
{
	/* walk the n-th allocation failing until parsing (with a zone) succeeds */
	for (long n = 0;; n++) {
		sched_t *s = NULL;
		struct sl_error err;
		sl_alloc_fail_after(n);
		sl_err rc = sched_parse("cron(0 2 * * ? *)", "Europe/Berlin", &s, &err);
		sl_alloc_fail_after(-1);
		if (rc == SL_OK) {
			cr_assert_gt(n, 2, "expected several allocations");
			sched_free(s);
			break;
		}
		cr_assert_eq(rc, SL_ERR_NOMEM, "n=%ld: rc %d (%s)", n, rc, err.message);
		cr_assert_null(s);
	}
}

Test(sched_next, extreme_instants_are_safe)
{
	static const char *const exprs[]
	        = { "cron(0 2 * * ? *)", "rate(1 minute)", "at(2026-11-24T02:00:00)" };
	static const char *const zones[] = { NULL, "America/New_York" };
	for (size_t i = 0; i < 3; i++) {
		for (size_t z = 0; z < 2; z++) {
			sched_t *s = parse_ok(exprs[i], zones[z]);
			int64_t x;
			/* the first slot of all, and none after the end of time */
			cr_assert_eq(sched_next(s, INT64_MIN, &x), SL_OK, "%s", exprs[i]);
			cr_assert_eq(sched_next(s, INT64_MAX, &x), SL_ERR_NOT_FOUND, "%s",
			             exprs[i]);
			cr_assert_eq(sched_prev(s, INT64_MIN, INT64_MAX, &x), SL_OK, "%s",
			             exprs[i]);
			sched_free(s);
		}
	}
	/* the first cron slot is in 1970; the last in 2199 */
	sched_t *s = parse_ok("cron(0 2 * * ? *)", NULL);
	int64_t x;
	cr_assert_eq(sched_next(s, INT64_MIN, &x), SL_OK);
	cr_assert_eq(x, T("1970-01-01T02:00:00Z"));
	cr_assert_eq(sched_prev(s, INT64_MIN, INT64_MAX, &x), SL_OK);
	cr_assert_eq(x, T("2199-12-31T02:00:00Z"));
	sched_free(s);
	sched_tz_t *tz = NULL;
	cr_assert_eq(sched_tz_open("Europe/Berlin", &tz, NULL), SL_OK);
	int64_t at;
	int32_t ob, oa;
	cr_assert_eq(sched_tz_offset(tz, INT64_MAX), 7200 - 3600); /* year 9999 winter: CET */
	(void)sched_tz_offset(tz, INT64_MIN);
	(void)sched_tz_local_to_utc(tz, INT64_MIN);
	(void)sched_tz_local_to_utc(tz, INT64_MAX);
	cr_assert_eq(sched_tz_next_transition(tz, INT64_MAX, &at, &ob, &oa), SL_ERR_NOT_FOUND);
	sched_tz_free(tz);
}

Test(sched_backfill, prev_agrees_with_a_forward_walk)
{
	static const char *const exprs[] = { "cron(* * * * ? *)",     "cron(0/7 3-5 ? * MON,FRI *)",
		                             "cron(30 2 L * ? *)",    "cron(0 1 ? * 1#2 2026-2027)",
		                             "cron(15 1 * 3,11 ? *)", "rate(13 minutes)" };
	static const char *const zones[] = { NULL, "America/New_York", "Europe/Berlin" };
	uint64_t seed = 99;
	for (size_t i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++) {
		for (size_t z = 0; z < 3; z++) {
			sched_t *s = parse_ok(exprs[i], zones[z]);
			for (int k = 0; k < 12; k++) {
				seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
				/* windows of up to ~10 days within 2026 */
				int64_t lo = T("2026-01-01T00:00:00Z")
				        + (int64_t)((seed >> 30) % (360ULL * 86400000));
				int64_t hi = lo + (int64_t)((seed >> 11) % (10ULL * 86400000));
				struct sched_iter it;
				int64_t x, want = NONE, got = NONE;
				sched_iter_init(&it, s, lo + 1, hi + 1);
				while (sched_iter_next(&it, &x) == SL_OK)
					want = x;
				sl_err rc = sched_prev(s, lo, hi, &got);
				char a[32], b[32];
				cr_assert_eq(rc, want == NONE ? SL_ERR_NOT_FOUND : SL_OK);
				cr_assert_eq(got, want,
				             "%s %s: prev in (%lld, %lld] is %s, walk says %s",
				             exprs[i], zones[z] ? zones[z] : "UTC", (long long)lo,
				             (long long)hi, fmt(got, a), fmt(want, b));
			}
			sched_free(s);
		}
	}
}

Test(sched_missed, out_of_memory_is_clean)
{
	sched_t *s = parse_ok("rate(1 minute)", NULL);
	struct sched_due d;
	/* 600 due slots grow the array several times; each failure is clean */
	for (long n = 0;; n++) {
		sl_alloc_fail_after(n);
		sl_err rc = sched_due(s, T("2026-11-24T00:00:00Z"), T("2026-11-24T10:00:00Z"),
		                      SCHED_MISSED_ALL, 0, 1000, &d);
		sl_alloc_fail_after(-1);
		if (rc == SL_OK) {
			cr_assert_eq(d.n, 600);
			cr_assert_gt(n, 3, "expected several growths");
			sched_due_release(&d);
			break;
		}
		cr_assert_eq(rc, SL_ERR_NOMEM, "n=%ld: rc %d", n, rc);
		cr_assert_null(d.slots);
		cr_assert_eq(d.n, 0);
	}
	sched_free(s);
}
