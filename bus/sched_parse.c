/*
 * sched_parse.c - rate(), cron() and at() expressions, validated as AWS validates them:
 * exact spelling, single spaces, no padding, every refusal with the one AWS message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bus/sched_internal.h"
#include "common/sl_alloc.h"

#define FIELD_MINUTES 1
#define FIELD_HOURS   2
#define FIELD_DOM     3
#define FIELD_MONTH   4
#define FIELD_DOW     5
#define FIELD_YEAR    6

static const char *const field_label[]
        = { "", "minutes", "hours", "day-of-month", "month", "day-of-week", "year" };

struct pctx {
	const char *expr;
	struct sl_error *err;
	struct sched_diag *diag;
};

__attribute__((format(printf, 4, 5))) static sl_err
fail(struct pctx *c, int field, const char *at, const char *fmt, ...)
{
	if (c->diag) {
		va_list ap;
		va_start(ap, fmt);
		c->diag->field = field;
		c->diag->offset = at ? (size_t)(at - c->expr) : 0;
		vsnprintf(c->diag->reason, sizeof(c->diag->reason), fmt, ap);
		va_end(ap);
	}
	return sl_error_set(c->err, SL_ERR_INVALID_ARG, "%s", SCHED_INVALID_MESSAGE);
}

/* Up to max_digits decimal digits; false if none or more. */
static bool
digits(const char **sp, const char *end, int max_digits, long *out)
{
	const char *s = *sp;
	long v = 0;
	int n = 0;
	while (s < end && *s >= '0' && *s <= '9') {
		if (++n > max_digits)
			return false;
		v = v * 10 + (*s - '0');
		s++;
	}
	if (n == 0)
		return false;
	*out = v;
	*sp = s;
	return true;
}

/* ---- rate -------------------------------------------------------------------------------- */

static sl_err
parse_rate(struct pctx *c, const char *s, const char *end, sched_t *out)
{
	static const struct {
		const char *one, *many;
		int64_t ms;
	} units[] = { { "minute", "minutes", 60000 },
		      { "hour", "hours", 3600000 },
		      { "day", "days", 86400000 } };
	long v;
	const char *p = s;
	if (!digits(&p, end, 10, &v))
		return fail(c, 0, s, "rate: expected a whole number of at least 1");
	if (v < 1 || v > INT32_MAX)
		return fail(c, 0, s, "rate: the value must be 1..2147483647");
	if (p >= end || *p != ' ')
		return fail(c, 0, p, "rate: expected one space, then minute(s), hour(s) or day(s)");
	p++;
	size_t ulen = (size_t)(end - p);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		const char *want = v == 1 ? units[i].one : units[i].many;
		const char *other = v == 1 ? units[i].many : units[i].one;
		if (ulen == strlen(want) && memcmp(p, want, ulen) == 0) {
			out->kind = SCHED_RATE;
			out->rate_ms = (int64_t)v * units[i].ms;
			return SL_OK;
		}
		if (ulen == strlen(other) && memcmp(p, other, ulen) == 0)
			return fail(c, 0, p, "rate: the unit is %s for %s", want,
			            v == 1 ? "a value of 1" : "values other than 1");
	}
	return fail(c, 0, p, "rate: expected the unit minute(s), hour(s) or day(s)");
}

/* ---- cron -------------------------------------------------------------------------------- */

static const char *const month_names[]
        = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC" };
static const char *const dow_names[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT" };

struct fspec {
	int field;
	int lo, hi;
	int max_incr;
	const char *const *names; /* names[i] is value lo + i */
	int nnames;
	bool slash;
};

static const struct fspec fspecs[7] = {
	[FIELD_MINUTES] = { FIELD_MINUTES, 0, 59, 59, NULL, 0, true },
	[FIELD_HOURS] = { FIELD_HOURS, 0, 23, 23, NULL, 0, true },
	[FIELD_DOM] = { FIELD_DOM, 1, 31, 31, NULL, 0, true },
	[FIELD_MONTH] = { FIELD_MONTH, 1, 12, 12, month_names, 12, true },
	[FIELD_DOW] = { FIELD_DOW, 1, 7, 7, dow_names, 7, false },
	[FIELD_YEAR] = { FIELD_YEAR, SCHED_YEAR_MIN, SCHED_YEAR_MAX,
	                 SCHED_YEAR_MAX - SCHED_YEAR_MIN, NULL, 0, true },
};

/* A number or (month, day-of-week) a three-letter upper-case name, within the field's range. */
static sl_err
value(struct pctx *c, const struct fspec *f, const char **sp, const char *end, int *out)
{
	const char *s = *sp;
	long v;
	if (s < end && *s >= 'A' && *s <= 'Z') {
		for (int i = 0; i < f->nnames; i++) {
			if (end - s >= 3 && memcmp(s, f->names[i], 3) == 0) {
				*out = f->lo + i;
				*sp = s + 3;
				return SL_OK;
			}
		}
		return fail(c, f->field, s, "%s: unknown name, expected %s", field_label[f->field],
		            f->names ? (f->field == FIELD_MONTH ? "JAN..DEC" : "SUN..SAT")
		                     : "a number");
	}
	if (!digits(&s, end, 4, &v))
		return fail(c, f->field, s, "%s: expected a number %d..%d%s", field_label[f->field],
		            f->lo, f->hi, f->names ? " or a name" : "");
	if (v < f->lo || v > f->hi)
		return fail(c, f->field, *sp, "%s: %ld is out of range %d..%d",
		            field_label[f->field], v, f->lo, f->hi);
	*out = (int)v;
	*sp = s;
	return SL_OK;
}

typedef void (*setbit_fn)(void *bits, int v);

static void
set64(void *bits, int v)
{
	*(uint64_t *)bits |= (uint64_t)1 << v;
}
static void
set32(void *bits, int v)
{
	*(uint32_t *)bits |= (uint32_t)1 << v;
}
static void
set16(void *bits, int v)
{
	*(uint16_t *)bits |= (uint16_t)(1u << v);
}
static void
set8(void *bits, int v)
{
	*(uint8_t *)bits |= (uint8_t)(1u << v);
}
static void
set_year(void *bits, int v)
{
	uint64_t *y = bits;
	int b = v - SCHED_YEAR_MIN;
	y[b / 64] |= (uint64_t)1 << (b % 64);
}

/* A list of `*`, `v`, `a-b`, `*` or `v` or `a-b` followed by `/n`, separated by commas. */
static sl_err
parse_list(struct pctx *c, const struct fspec *f, const char *s, const char *end, void *bits,
           setbit_fn set)
{
	for (;;) {
		const char *item = s;
		int a = f->lo, b = f->hi, step = 1;
		bool single = false;
		sl_err rc;
		if (s < end && *s == '*') {
			s++;
		} else {
			if ((rc = value(c, f, &s, end, &a)) != SL_OK)
				return rc;
			b = a;
			single = true;
			if (s < end && *s == '-') {
				single = false;
				s++;
				if ((rc = value(c, f, &s, end, &b)) != SL_OK)
					return rc;
				if (b < a)
					return fail(c, f->field, item,
					            "%s: a range must not end below its start",
					            field_label[f->field]);
			}
		}
		if (s < end && *s == '/') {
			long n;
			if (!f->slash)
				return fail(c, f->field, s, "%s: `/` is not allowed here",
				            field_label[f->field]);
			s++;
			const char *at = s;
			if (!digits(&s, end, 4, &n) || n < 1 || n > f->max_incr)
				return fail(c, f->field, at, "%s: expected an increment 1..%d",
				            field_label[f->field], f->max_incr);
			step = (int)n;
			if (single)
				b = f->hi; /* `5/15` means from 5 to the end */
		}
		for (int v = a; v <= b; v += step)
			set(bits, v);
		if (s == end)
			return SL_OK;
		if (*s != ',')
			return fail(c, f->field, s, "%s: unexpected '%c', expected ',' or the end",
			            field_label[f->field], *s);
		s++;
	}
}

static bool
is_q(const char *s, const char *end)
{
	return end - s == 1 && *s == '?';
}

static sl_err
parse_dom(struct pctx *c, const char *s, const char *end, struct sched_cron *cr)
{
	size_t n = (size_t)(end - s);
	if (is_q(s, end)) {
		cr->dom_any = true;
		return SL_OK;
	}
	if (n == 1 && *s == 'L') {
		cr->dom_mode = SCHED_DOM_LAST;
		return SL_OK;
	}
	if (n == 2 && memcmp(s, "LW", 2) == 0) {
		cr->dom_mode = SCHED_DOM_LAST_WD;
		return SL_OK;
	}
	if (n >= 2 && end[-1] == 'W') {
		const char *p = s;
		long v;
		if (!digits(&p, end - 1, 2, &v) || p != end - 1 || v < 1 || v > 31)
			return fail(c, FIELD_DOM, s,
			            "day-of-month: `W` takes one day 1..31 (15W) or L (LW), alone");
		cr->dom_mode = SCHED_DOM_NEAR_WD;
		cr->dom_arg = (int)v;
		return SL_OK;
	}
	for (const char *p = s; p < end; p++)
		if (*p == 'L' || *p == 'W' || *p == '?')
			return fail(c, FIELD_DOM, p,
			            "day-of-month: `%c` must stand alone in the field", *p);
	cr->dom_mode = SCHED_DOM_SET;
	return parse_list(c, &fspecs[FIELD_DOM], s, end, &cr->dom_bits, set32);
}

static sl_err
parse_dow(struct pctx *c, const char *s, const char *end, struct sched_cron *cr)
{
	const struct fspec *f = &fspecs[FIELD_DOW];
	if (is_q(s, end)) {
		cr->dom_any = false;
		return SL_OK;
	}
	cr->dom_any = true; /* days come from day-of-week */
	if (end - s == 1 && *s == 'L') {
		cr->dow_mode = SCHED_DOW_SET; /* alone, L is the last day of the week */
		cr->dow_bits = 1u << 7;
		return SL_OK;
	}
	const char *hash = memchr(s, '#', (size_t)(end - s));
	if (hash) {
		const char *p = s, *q = hash + 1;
		int d;
		long k;
		sl_err rc = value(c, f, &p, hash, &d);
		if (rc != SL_OK)
			return rc;
		if (p != hash)
			return fail(c, FIELD_DOW, p, "day-of-week: `#` takes one day, as in 3#2");
		if (!digits(&q, end, 1, &k) || q != end || k < 1 || k > 5)
			return fail(c, FIELD_DOW, hash + 1,
			            "day-of-week: expected 1..5 after `#`, and nothing else");
		cr->dow_mode = SCHED_DOW_NTH;
		cr->dow_arg = d;
		cr->dow_nth = (int)k;
		return SL_OK;
	}
	if (end - s >= 2 && end[-1] == 'L') {
		const char *p = s;
		int d;
		sl_err rc = value(c, f, &p, end - 1, &d);
		if (rc != SL_OK)
			return rc;
		if (p != end - 1)
			return fail(c, FIELD_DOW, p, "day-of-week: `L` takes one day, as in 6L");
		cr->dow_mode = SCHED_DOW_LAST;
		cr->dow_arg = d;
		return SL_OK;
	}
	for (const char *p = s; p < end; p++)
		if (*p == 'L' || *p == '?')
			return fail(c, FIELD_DOW, p,
			            "day-of-week: `%c` must stand alone or follow "
			            "one day",
			            *p);
	cr->dow_mode = SCHED_DOW_SET;
	return parse_list(c, f, s, end, &cr->dow_bits, set8);
}

static sl_err
parse_cron(struct pctx *c, const char *s, const char *end, sched_t *out)
{
	const char *fs[6], *fe[6];
	int n = 0;
	const char *p = s;
	for (;;) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		if (n == 6)
			return fail(c, 0, p, "cron: expected 6 fields, found more");
		fs[n] = p;
		fe[n] = sp ? sp : end;
		if (fe[n] == fs[n])
			return fail(c, n + 1, p,
			            "cron: empty field (fields take one space between)");
		n++;
		if (!sp)
			break;
		p = sp + 1;
	}
	if (n != 6)
		return fail(c, 0, end,
		            "cron: expected 6 fields (minutes hours day-of-month month "
		            "day-of-week year), found %d",
		            n);
	struct sched_cron *cr = &out->cron;
	sl_err rc;
	const char *dom_q = is_q(fs[2], fe[2]) ? fs[2] : NULL;
	const char *dow_q = is_q(fs[4], fe[4]) ? fs[4] : NULL;
	if (!dom_q && !dow_q)
		return fail(c, FIELD_DOW, fs[4],
		            "cron: one of day-of-month and day-of-week must be `?`");
	if (dom_q && dow_q)
		return fail(c, FIELD_DOW, fs[4],
		            "cron: day-of-month and day-of-week cannot both be `?`");
	if ((rc = parse_list(c, &fspecs[FIELD_MINUTES], fs[0], fe[0], &cr->minutes, set64))
	    || (rc = parse_list(c, &fspecs[FIELD_HOURS], fs[1], fe[1], &cr->hours, set32))
	    || (rc = parse_list(c, &fspecs[FIELD_MONTH], fs[3], fe[3], &cr->months, set16))
	    || (rc = parse_list(c, &fspecs[FIELD_YEAR], fs[5], fe[5], cr->years, set_year)))
		return rc;
	if (dow_q) {
		if ((rc = parse_dom(c, fs[2], fe[2], cr)) != SL_OK)
			return rc;
		cr->dom_any = false;
	} else {
		if ((rc = parse_dow(c, fs[4], fe[4], cr)) != SL_OK)
			return rc;
		cr->dom_any = true;
	}
	out->kind = SCHED_CRON;
	return SL_OK;
}

/* ---- at ---------------------------------------------------------------------------------- */

static sl_err
parse_at(struct pctx *c, const char *s, const char *end, sched_t *out, int64_t *local_s)
{
	/* yyyy-mm-ddThh:mm:ss, each number its exact width */
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	if (end - s != (ptrdiff_t)(sizeof(shape) - 1))
		return fail(c, 0, s, "at: expected yyyy-mm-ddThh:mm:ss");
	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		bool ok = shape[i] == 'd' ? (s[i] >= '0' && s[i] <= '9') : s[i] == shape[i];
		if (!ok)
			return fail(c, 0, s + i, "at: expected yyyy-mm-ddThh:mm:ss");
	}
#define NUM(off, w)                                                                                \
	(w == 4 ? (s[off] - '0') * 1000 + (s[off + 1] - '0') * 100 + (s[off + 2] - '0') * 10       \
	                 + (s[off + 3] - '0')                                                      \
	        : (s[off] - '0') * 10 + (s[off + 1] - '0'))
	int y = NUM(0, 4), mo = NUM(5, 2), d = NUM(8, 2), h = NUM(11, 2), mi = NUM(14, 2),
	    sec = NUM(17, 2);
#undef NUM
	if (y < SCHED_YEAR_MIN || y > SCHED_YEAR_MAX)
		return fail(c, 0, s, "at: the year must be %d..%d", SCHED_YEAR_MIN, SCHED_YEAR_MAX);
	if (mo < 1 || mo > 12)
		return fail(c, 0, s + 5, "at: the month must be 01..12");
	if (d < 1 || d > sched_days_in_month(y, mo))
		return fail(c, 0, s + 8, "at: %04d-%02d has no day %02d", y, mo, d);
	if (h > 23 || mi > 59 || sec > 59)
		return fail(c, 0, s + 11, "at: the time must be 00:00:00..23:59:59");
	*local_s = sched_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	out->kind = SCHED_AT;
	return SL_OK;
}

/* ---- entry points ------------------------------------------------------------------------ */

static bool
wrapped(const char *expr, size_t len, const char *kw, const char **s, const char **e)
{
	size_t k = strlen(kw);
	if (len < k + 1 || memcmp(expr, kw, k) != 0 || expr[len - 1] != ')')
		return false;
	*s = expr + k;
	*e = expr + len - 1;
	return true;
}

sl_err
sched_parse_diag(const char *expr, const char *tz, sched_t **out, struct sl_error *err,
                 struct sched_diag *diag)
{
	struct pctx c = { expr, err, diag };
	if (diag)
		memset(diag, 0, sizeof(*diag));
	if (!out)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "sched_parse: no out parameter");
	*out = NULL;
	if (!expr)
		return fail(&c, 0, NULL, "no expression");
	size_t len = strnlen(expr, SCHED_EXPR_MAX + 1);
	if (len > SCHED_EXPR_MAX)
		return fail(&c, 0, expr, "longer than %d bytes", SCHED_EXPR_MAX);
	sched_t *s = SL_NEW(sched_t);
	if (!s || !(s->expr = sl_strndup(expr, len))) {
		sl_free(s);
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	}
	const char *b, *e;
	int64_t local_at = 0;
	sl_err rc;
	if (wrapped(expr, len, "rate(", &b, &e))
		rc = parse_rate(&c, b, e, s);
	else if (wrapped(expr, len, "cron(", &b, &e))
		rc = parse_cron(&c, b, e, s);
	else if (wrapped(expr, len, "at(", &b, &e))
		rc = parse_at(&c, b, e, s, &local_at);
	else
		rc = fail(&c, 0, expr, "expected rate(...), cron(...) or at(...)");
	if (rc == SL_OK && tz) {
		struct sl_error te;
		sl_error_clear(&te);
		rc = sched_tz_open(tz, &s->tz, &te);
		if (rc != SL_OK)
			sl_error_set(err, rc,
			             "Parameter ScheduleExpressionTimezone is not valid: %.900s",
			             te.message);
	}
	if (rc != SL_OK) {
		sched_free(s);
		return rc;
	}
	if (s->kind == SCHED_AT)
		s->at_ms = sched_tz_local_to_utc(s->tz, local_at) * 1000;
	*out = s;
	return SL_OK;
}

sl_err
sched_parse(const char *expr, const char *tz, sched_t **out, struct sl_error *err)
{
	return sched_parse_diag(expr, tz, out, err, NULL);
}

void
sched_free(sched_t *s)
{
	if (!s)
		return;
	sched_tz_free(s->tz);
	sl_free(s->expr);
	sl_free(s);
}

enum sched_kind
sched_kind(const sched_t *s)
{
	return s->kind;
}

const char *
sched_expression(const sched_t *s)
{
	return s->expr;
}

const char *
sched_tz_label(const sched_t *s)
{
	return sched_tz_name(s->tz);
}

int64_t
sched_rate_period_ms(const sched_t *s)
{
	return s->kind == SCHED_RATE ? s->rate_ms : 0;
}

void
sched_set_anchor(sched_t *s, int64_t anchor_ms)
{
	s->anchor_ms = anchor_ms;
}
