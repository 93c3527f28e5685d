#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_err.h"
#include "common/sl_id.h"
#include "common/sl_log.h"

Test(common_err, table_maps_codes_mechanically)
{
	cr_assert_str_eq(sl_err_aws_type(SL_ERR_UNKNOWN_OPERATION), "UnknownOperationException");
	cr_assert_eq(sl_err_http_status(SL_ERR_UNKNOWN_OPERATION), 400);
	cr_assert_eq(sl_err_http_status(SL_ERR_TOO_LARGE), 413);
	cr_assert_str_eq(sl_err_aws_type(SL_ERR_EXEC_EXISTS), "ExecutionAlreadyExists");
	cr_assert_str_eq(sl_err_name(SL_ERR_NOMEM), "SL_ERR_NOMEM");
	/* out-of-range codes fall back to InternalFailure, never crash */
	cr_assert_str_eq(sl_err_aws_type((sl_err)9999), "InternalFailure");
	cr_assert_eq(sl_err_http_status((sl_err)-1), 500);
}

Test(common_err, error_set_formats_and_returns_code)
{
	struct sl_error e;
	sl_error_clear(&e);
	cr_assert_str_eq(sl_error_text(&e), "success");
	sl_err rc = sl_error_set(&e, SL_ERR_INVALID_ARG, "field %s: expected %d", "x", 3);
	cr_assert_eq(rc, SL_ERR_INVALID_ARG);
	cr_assert_eq(e.code, SL_ERR_INVALID_ARG);
	cr_assert_str_eq(sl_error_text(&e), "field x: expected 3");
	cr_assert_eq(sl_error_set(NULL, SL_ERR_IO, "ignored"), SL_ERR_IO);
}

Test(common_alloc, nth_allocation_fails_once)
{
	sl_alloc_fail_after(2);
	void *a = sl_malloc(8), *b = sl_malloc(8), *c = sl_malloc(8), *d = sl_malloc(8);
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_null(c);
	cr_assert_not_null(d);
	sl_free(a);
	sl_free(b);
	sl_free(d);
	cr_assert_null(sl_reallocarray(NULL, SIZE_MAX / 2, 4), "overflow must be refused");
}

Test(common_alloc, jansson_uses_the_same_allocator)
{
	sl_alloc_init();
	sl_alloc_fail_after(0);
	json_t *j = json_object();
	cr_assert_null(j, "jansson's first allocation must go through sl_malloc");
	sl_alloc_fail_after(-1);
	j = json_pack("{s:i}", "a", 1);
	cr_assert_not_null(j);
	json_decref(j);
}

Test(common_alloc, strdup_and_asprintf)
{
	char *s = sl_asprintf("%s-%d", "x", 42);
	cr_assert_str_eq(s, "x-42");
	char *d = sl_strndup("abcdef", 3);
	cr_assert_str_eq(d, "abc");
	sl_free(s);
	sl_free(d);
}

Test(common_clock, fake_clock_moves_only_by_hand)
{
	sl_clock_fake_enable(1000);
	cr_assert_eq(sl_clock_now_ms(), 1000);
	sl_clock_fake_advance(500);
	cr_assert_eq(sl_clock_now_ms(), 1500);
	sl_clock_fake_set(42);
	cr_assert_eq(sl_clock_now_ms(), 42);
	sl_clock_fake_disable();
	cr_assert_gt(sl_clock_now_ms(), 1700000000000LL);
}

Test(common_clock, rfc3339_round_trip)
{
	char buf[32];
	sl_clock_format_rfc3339(1795420800250LL, buf);
	cr_assert_str_eq(buf, "2026-11-23T08:00:00.250Z");
	sl_clock_format_rfc3339_s(1795420800250LL, buf);
	cr_assert_str_eq(buf, "2026-11-23T08:00:00Z");
	int64_t ms;
	cr_assert(sl_clock_parse_rfc3339("2026-11-23T08:00:00.25Z", &ms));
	cr_assert_eq(ms, 1795420800250LL);
	cr_assert(sl_clock_parse_rfc3339("2026-11-23T09:30:00+01:30", &ms));
	cr_assert_eq(ms, 1795420800000LL);
	cr_assert(sl_clock_parse_rfc3339("1969-12-31T23:59:59Z", &ms));
	cr_assert_eq(ms, -1000);
	cr_assert_not(sl_clock_parse_rfc3339("2026-02-30T00:00:00Z", &ms));
	cr_assert_not(sl_clock_parse_rfc3339("2025-02-29T00:00:00Z", &ms));
	cr_assert_not(sl_clock_parse_rfc3339("2026-11-23 08:00:00Z", &ms));
	cr_assert_not(sl_clock_parse_rfc3339("2026-11-23T08:00:00", &ms));
	cr_assert_not(sl_clock_parse_rfc3339("2026-11-23T08:00:00Zjunk", &ms));
	cr_assert_not(sl_clock_parse_rfc3339("", &ms));
}

Test(common_id, uuid4_shape_and_uniqueness)
{
	char a[37], b[37];
	cr_assert_eq(sl_uuid4(a), SL_OK);
	cr_assert_eq(sl_uuid4(b), SL_OK);
	cr_assert_eq(strlen(a), 36);
	cr_assert_eq(a[8], '-');
	cr_assert_eq(a[14], '4', "version nibble");
	cr_assert(strchr("89ab", a[19]) != NULL, "variant bits");
	cr_assert_str_neq(a, b);
}

Test(common_id, arn_format_and_parse)
{
	char buf[256];
	cr_assert_eq(sl_arn_configure("eu-west-1", "123456789012"), SL_OK);
	cr_assert_eq(sl_arn_format(buf, sizeof buf, "states", "stateMachine", "etl", NULL), SL_OK);
	cr_assert_str_eq(buf, "arn:aws:states:eu-west-1:123456789012:stateMachine:etl");
	cr_assert_eq(sl_arn_configure("Bad Region", NULL), SL_ERR_INVALID_ARG);
	cr_assert_eq(sl_arn_configure(NULL, "12"), SL_ERR_INVALID_ARG);
	cr_assert_str_eq(sl_arn_region(), "eu-west-1");
	cr_assert_eq(sl_arn_format(buf, 10, "states", "x", NULL), SL_ERR_INVALID_ARG);
	struct sl_arn arn;
	cr_assert_eq(sl_arn_parse(buf, &arn), SL_ERR_INVALID_ARN);
	char s[] = "arn:aws:states:us-east-1:000000000000:execution:m:run:1";
	cr_assert_eq(sl_arn_parse(s, &arn), SL_OK);
	cr_assert_str_eq(arn.service, "states");
	cr_assert_str_eq(arn.resource, "execution:m:run:1");
	sl_arn_configure("us-east-1", "000000000000");
}

Test(common_log, parse_words)
{
	enum sl_log_level l;
	enum sl_log_format f;
	cr_assert(sl_log_parse_level("warn", &l));
	cr_assert_eq(l, SL_LOG_WARN);
	cr_assert_not(sl_log_parse_level("loud", &l));
	cr_assert(sl_log_parse_format("json", &f));
	cr_assert_eq(f, SL_LOG_JSON);
	cr_assert_not(sl_log_parse_format("xml", &f));
}

/* The hand-made formatter agrees with gmtime_r + strftime on every path it takes. */
Test(common_clock, rfc3339_matches_strftime)
{
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		// years 0001..9999, both sides of 1970, and some near the edges
		int64_t ms = (int64_t)(x % 315537897600000ull) - 62135596800000LL;
		if (i < 64)
			ms = (i % 2 ? -1 : 1) * (int64_t)i * 999;
		time_t sec = (time_t)(ms / 1000 - (ms % 1000 < 0));
		int frac = (int)(((ms % 1000) + 1000) % 1000);
		struct tm tm;
		gmtime_r(&sec, &tm);
		char want[40], got[32];
		size_t n = strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(want + n, sizeof want - n, ".%03dZ", frac);
		sl_clock_format_rfc3339(ms, got);
		cr_assert_str_eq(got, want, "at %lld", (long long)ms);
	}
}
