/*
 * sched_next.c - next fire times. Cron fields are matched on the naive wall clock of the
 * schedule's zone; each matching wall time is then mapped to its instant by the DST rules of
 * schedule.h (first occurrence, or the end of a gap). That mapping never decreases as the
 * wall time increases, so the first match whose instant is after `after` is the answer.
 */
#include <string.h>

#include "bus/sched_internal.h"

#define DAY_S 86400

static bool
year_ok(const struct sched_cron *c, int64_t y)
{
	int b = (int)(y - SCHED_YEAR_MIN);
	return (c->years[b / 64] >> (b % 64)) & 1;
}

static bool
day_ok(const struct sched_cron *c, int64_t y, int mo, int d)
{
	int dim = sched_days_in_month(y, mo);
	int64_t first = sched_days_from_civil(y, mo, 1);
	if (!c->dom_any) {
		switch (c->dom_mode) {
		case SCHED_DOM_SET: return (c->dom_bits >> d) & 1;
		case SCHED_DOM_LAST: return d == dim;
		case SCHED_DOM_LAST_WD: {
			int wd = sched_weekday(first + dim - 1);
			return d == dim - (wd == 6 ? 1 : wd == 0 ? 2 : 0);
		}
		case SCHED_DOM_NEAR_WD:
		default: {
			/* nearest weekday to n, never leaving the month (Quartz's W) */
			int n = c->dom_arg, target = n;
			if (n > dim)
				return false;
			int wd = sched_weekday(first + n - 1);
			if (wd == 6)
				target = n == 1 ? 3 : n - 1;
			else if (wd == 0)
				target = n == dim ? n - 2 : n + 1;
			return d == target;
		}
		}
	}
	int wd = sched_weekday(first + d - 1) + 1; /* 1 = SUN .. 7 = SAT */
	switch (c->dow_mode) {
	case SCHED_DOW_SET: return (c->dow_bits >> wd) & 1;
	case SCHED_DOW_LAST: return wd == c->dow_arg && d + 7 > dim;
	case SCHED_DOW_NTH:
	default: return wd == c->dow_arg && (d - 1) / 7 + 1 == c->dow_nth;
	}
}

static int
lowest_bit_from(uint64_t bits, int from)
{
	if (from > 63)
		return -1;
	uint64_t m = bits >> from;
	return m ? from + __builtin_ctzll(m) : -1;
}

bool
sched_cron_next_local(const struct sched_cron *c, int64_t local_s, int64_t *out_s)
{
	int64_t y;
	int mo, d, h, mi;
	if (local_s < (int64_t)SCHED_S_MIN)
		local_s = SCHED_S_MIN;
	if (local_s > (int64_t)SCHED_S_MAX)
		return false;
	int64_t start = sched_floor_div(local_s, 60) * 60 + 60;
	int64_t days = sched_floor_div(start, DAY_S), sod = start - days * DAY_S;
	sched_civil_from_days(days, &y, &mo, &d);
	h = (int)(sod / 3600);
	mi = (int)(sod % 3600 / 60);
	if (y < SCHED_YEAR_MIN) {
		y = SCHED_YEAR_MIN;
		mo = d = 1;
		h = mi = 0;
	}
	/* each step moves a field forward and resets the smaller ones: at most years * 400 */
	for (;;) {
		if (y > SCHED_YEAR_MAX)
			return false;
		if (!year_ok(c, y)) {
			y++;
			mo = d = 1;
			h = mi = 0;
			continue;
		}
		if (mo > 12) {
			y++;
			mo = 1;
			continue;
		}
		if (!((c->months >> mo) & 1) || d > sched_days_in_month(y, mo)) {
			mo++;
			d = 1;
			h = mi = 0;
			continue;
		}
		if (!day_ok(c, y, mo, d)) {
			d++;
			h = mi = 0;
			continue;
		}
		int hh = lowest_bit_from(c->hours, h);
		if (hh < 0 || hh > 23) {
			d++;
			h = mi = 0;
			continue;
		}
		if (hh != h) {
			h = hh;
			mi = 0;
		}
		int mm = lowest_bit_from(c->minutes, mi);
		if (mm < 0 || mm > 59) {
			h++;
			mi = 0;
			continue;
		}
		*out_s = sched_days_from_civil(y, mo, d) * DAY_S + h * 3600 + mm * 60;
		return true;
	}
}

/* The smallest UTC offset in effect within two days of t. */
static int32_t
min_offset_near(const sched_tz_t *tz, int64_t t)
{
	int64_t lo = t - 2 * DAY_S, hi = t + 2 * DAY_S, at;
	int32_t m = sched_tz_offset(tz, lo), ob, oa;
	for (int i = 0;
	     i < 16 && sched_tz_next_transition(tz, lo, &at, &ob, &oa) == SL_OK && at <= hi; i++) {
		if (oa < m)
			m = oa;
		lo = at;
	}
	return m;
}

static sl_err
cron_next(const sched_t *s, int64_t after_ms, int64_t *out_ms)
{
	int64_t after_s = sched_floor_div(after_ms, 1000);
	if (after_s > SCHED_S_MAX - 3 * DAY_S)
		return SL_ERR_NOT_FOUND;
	if (after_s < SCHED_S_MIN + 3 * DAY_S)
		after_s = SCHED_S_MIN + 3 * DAY_S;
	int64_t local = after_s + min_offset_near(s->tz, after_s) - 61;
	/* at most the matches within one offset change (a day of minutes) are behind `after` */
	for (int guard = 0; guard < 4 * 24 * 60; guard++) {
		int64_t m;
		if (!sched_cron_next_local(&s->cron, local, &m))
			return SL_ERR_NOT_FOUND;
		int64_t t = sched_tz_local_to_utc(s->tz, m);
		if (t > after_s) {
			*out_ms = t * 1000;
			return SL_OK;
		}
		local = m;
	}
	return SL_ERR_INTERNAL;
}

sl_err
sched_next(const sched_t *s, int64_t after_ms, int64_t *out_ms)
{
	if (!s || !out_ms)
		return SL_ERR_INVALID_ARG;
	switch (s->kind) {
	case SCHED_AT:
		if (s->at_ms <= after_ms)
			return SL_ERR_NOT_FOUND;
		*out_ms = s->at_ms;
		return SL_OK;
	case SCHED_RATE: {
		__extension__ __int128 diff = (__int128)after_ms - s->anchor_ms;
		__extension__ __int128 k = diff / s->rate_ms;
		if (diff % s->rate_ms < 0)
			k--;
		__extension__ __int128 v = (__int128)s->anchor_ms + (k + 1) * s->rate_ms;
		if (v > INT64_MAX)
			return SL_ERR_NOT_FOUND;
		*out_ms = (int64_t)v;
		return SL_OK;
	}
	case SCHED_CRON:
	default: return cron_next(s, after_ms, out_ms);
	}
}

/*
 * The last slot <= top, given a slot x <= top. Bisects rather than walks, so a dense cron
 * looked at over years costs a few dozen sched_next calls.
 */
static sl_err
last_slot(const sched_t *s, int64_t x, int64_t top, int64_t *out_ms)
{
	for (;;) {
		int64_t y, z;
		if (sched_next(s, x, &y) != SL_OK || y > top) {
			*out_ms = x;
			return SL_OK;
		}
		/* x < y <= top: look in the upper half of [y, top] first */
		int64_t m = y + (int64_t)(((uint64_t)top - (uint64_t)y) / 2);
		if (sched_next(s, m, &z) == SL_OK && z <= top) {
			x = z;
		} else {
			top = m;
			x = y;
		}
	}
}

sl_err
sched_prev(const sched_t *s, int64_t lo_ms, int64_t hi_ms, int64_t *out_ms)
{
	if (!s || !out_ms)
		return SL_ERR_INVALID_ARG;
	if (hi_ms <= lo_ms)
		return SL_ERR_NOT_FOUND;
	if (s->kind == SCHED_AT) {
		if (s->at_ms <= lo_ms || s->at_ms > hi_ms)
			return SL_ERR_NOT_FOUND;
		*out_ms = s->at_ms;
		return SL_OK;
	}
	if (s->kind == SCHED_RATE) {
		__extension__ __int128 diff = (__int128)hi_ms - s->anchor_ms;
		__extension__ __int128 k = diff / s->rate_ms;
		if (diff % s->rate_ms < 0)
			k--;
		__extension__ __int128 v = (__int128)s->anchor_ms + k * s->rate_ms;
		if (v <= lo_ms)
			return SL_ERR_NOT_FOUND;
		*out_ms = (int64_t)v;
		return SL_OK;
	}
	/* widen a window back from hi until it holds a slot, then walk to its last one */
	uint64_t span = (uint64_t)hi_ms - (uint64_t)lo_ms, w = 60000;
	for (;;) {
		/* hi - w lies inside (lo, hi) when w < span: the unsigned difference is exact */
		int64_t start = span > w ? (int64_t)((uint64_t)hi_ms - w) : lo_ms, x;
		sl_err rc = sched_next(s, start, &x);
		if (rc == SL_OK && x <= hi_ms)
			return last_slot(s, x, hi_ms, out_ms);
		if (rc != SL_OK && rc != SL_ERR_NOT_FOUND)
			return rc;
		if (start == lo_ms)
			return SL_ERR_NOT_FOUND;
		w = w > UINT64_MAX / 4 ? UINT64_MAX : w * 4;
	}
}

void
sched_iter_init(struct sched_iter *it, const sched_t *s, int64_t from_ms, int64_t to_ms)
{
	memset(it, 0, sizeof(*it));
	it->s = s;
	it->cursor = from_ms == INT64_MIN ? INT64_MIN : from_ms - 1;
	it->to_ms = to_ms;
	it->done = !s || from_ms >= to_ms;
}

sl_err
sched_iter_next(struct sched_iter *it, int64_t *slot_ms)
{
	int64_t x;
	if (it->done)
		return SL_ERR_NOT_FOUND;
	sl_err rc = sched_next(it->s, it->cursor, &x);
	if (rc != SL_OK || x >= it->to_ms) {
		it->done = true;
		return rc == SL_OK || rc == SL_ERR_NOT_FOUND ? SL_ERR_NOT_FOUND : rc;
	}
	it->cursor = x;
	*slot_ms = x;
	return SL_OK;
}
