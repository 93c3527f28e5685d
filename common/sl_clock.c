#include "common/sl_clock.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static atomic_bool fake_on;
static atomic_llong fake_now;

int64_t
sl_clock_now_ms(void)
{
	if (atomic_load_explicit(&fake_on, memory_order_relaxed))
		return atomic_load(&fake_now);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
sl_clock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
sl_clock_fake_enable(int64_t start_ms)
{
	atomic_store(&fake_now, start_ms);
	atomic_store(&fake_on, true);
}

void
sl_clock_fake_set(int64_t now_ms)
{
	atomic_store(&fake_now, now_ms);
}

void
sl_clock_fake_advance(int64_t delta_ms)
{
	atomic_fetch_add(&fake_now, delta_ms);
}

void
sl_clock_fake_disable(void)
{
	atomic_store(&fake_on, false);
}

bool
sl_clock_is_fake(void)
{
	return atomic_load(&fake_on);
}

static void
split_ms(int64_t ms, time_t *sec, int *frac)
{
	int64_t s = ms / 1000, f = ms % 1000;
	if (f < 0) {
		f += 1000;
		s -= 1;
	}
	*sec = (time_t)s;
	*frac = (int)f;
}

static void
put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
}

/* Every history event carries a timestamp: formatted by hand (Hinnant's civil_from_days),
 * not gmtime_r + strftime + snprintf, for years 1000..9999 (strftime pads no others); other years
 * take the slow path. */
void
sl_clock_format_rfc3339(int64_t ms, char out[32])
{
	time_t sec;
	int frac;
	split_ms(ms, &sec, &frac);
	int64_t days = (int64_t)sec / 86400, rem = (int64_t)sec % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	if (y < 1000 || y > 9999) {
		struct tm tm;
		gmtime_r(&sec, &tm);
		size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(out + n, 32 - n, ".%03dZ", frac);
		return;
	}
	put2(out, (unsigned)(y / 100));
	put2(out + 2, (unsigned)(y % 100));
	out[4] = '-';
	put2(out + 5, m);
	out[7] = '-';
	put2(out + 8, d);
	out[10] = 'T';
	put2(out + 11, (unsigned)(rem / 3600));
	out[13] = ':';
	put2(out + 14, (unsigned)(rem / 60 % 60));
	out[16] = ':';
	put2(out + 17, (unsigned)(rem % 60));
	out[19] = '.';
	out[20] = (char)('0' + frac / 100);
	put2(out + 21, (unsigned)(frac % 100));
	out[23] = 'Z';
	out[24] = 0;
}

void
sl_clock_format_rfc3339_s(int64_t ms, char out[32])
{
	time_t sec;
	int frac;
	split_ms(ms, &sec, &frac);
	struct tm tm;
	gmtime_r(&sec, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool
digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static int64_t
days_from_civil(int y, int m, int d)
{
	/* Howard Hinnant's civil-days algorithm: proleptic Gregorian, no time zone database. */
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (unsigned)(m + (m > 2 ? -3 : 9)) + 2) / 5 + (unsigned)d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

bool
sl_clock_parse_rfc3339(const char *s, int64_t *out_ms)
{
	const char *p = s;
	int y, mo, d, h, mi, se, ms = 0;
	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-'
	    || !digits(&p, 2, &d))
		return false;
	if (*p != 'T' && *p != 't')
		return false;
	p++;
	if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':'
	    || !digits(&p, 2, &se))
		return false;
	if (*p == '.') {
		p++;
		int nd = 0;
		while (isdigit((unsigned char)*p)) {
			if (nd < 3)
				ms = ms * 10 + (*p - '0');
			nd++;
			p++;
		}
		if (nd == 0)
			return false;
		for (; nd < 3; nd++)
			ms *= 10;
	}
	int off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;
		p++;
		if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om))
			return false;
		if (oh > 23 || om > 59)
			return false;
		off = sign * (oh * 60 + om);
	} else {
		return false;
	}
	if (*p != '\0')
		return false;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return false;
	int64_t days = days_from_civil(y, mo, d);
	int64_t secs = days * 86400 + h * 3600 + mi * 60 + (se == 60 ? 59 : se) - off * 60;
	*out_ms = secs * 1000 + ms;
	return true;
}
