/*
 * sched_tz.c - IANA time zones from TZif files (RFC 8536, versions 1-4) and the POSIX TZ
 * string of their footer, without the process-wide TZ/localtime state (the daemon is
 * multi-threaded and setenv("TZ") is not thread-safe). Also the calendar helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus/sched_internal.h"
#include "common/sl_alloc.h"

#define TZIF_MAX_FILE   (1u << 20) /* real files are a few KiB */
#define TZIF_HEADER_LEN 44
#define UTOFF_MIN       (-89999) /* RFC 8536 3.2: -25h+1s .. 26h-1s */
#define UTOFF_MAX       93599
#define NEAR_WINDOW_S   (27 * 3600) /* wider than any offset, so a window holds every reading */

/* ---- calendar ---------------------------------------------------------------------------- */

int64_t
sched_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* Eras of 400 years (146097 days) make the leap rule exact with integer arithmetic. */
int64_t
sched_days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = sched_floor_div(y, 400);
	int64_t yoe = y - era * 400;
	int64_t mp = (m + 9) % 12;
	int64_t doy = (153 * mp + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void
sched_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
	int64_t z = days + 719468;
	int64_t era = sched_floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static bool
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
sched_days_in_month(int64_t y, int m)
{
	static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

int
sched_weekday(int64_t days)
{
	/* 1970-01-01 was a Thursday */
	int64_t w = (days + 4) % 7;
	return (int)(w < 0 ? w + 7 : w);
}

static int64_t
clamp_s(int64_t t)
{
	return t < SCHED_S_MIN ? SCHED_S_MIN : t > SCHED_S_MAX ? SCHED_S_MAX : t;
}

/* ---- the zone ---------------------------------------------------------------------------- */

enum rule_kind { RULE_JULIAN1, RULE_JULIAN0, RULE_MWD };

struct posix_rule {
	enum rule_kind kind;
	int a, b, c;  /* Jn: a = n; n: a = n; Mm.w.d: a = m, b = w, c = d */
	int32_t time; /* seconds after local midnight, in the time before the change */
};

struct posix_tz {
	bool present;
	bool has_dst;
	int32_t std_off; /* east positive */
	int32_t dst_off;
	struct posix_rule start, end;
};

struct sched_tz {
	char *name;
	size_t timecnt;
	int64_t *trans;
	uint8_t *idx;
	size_t typecnt;
	int32_t *utoff;
	struct posix_tz footer;
};

void
sched_tz_free(sched_tz_t *tz)
{
	if (!tz)
		return;
	sl_free(tz->name);
	sl_free(tz->trans);
	sl_free(tz->idx);
	sl_free(tz->utoff);
	sl_free(tz);
}

const char *
sched_tz_name(const sched_tz_t *tz)
{
	return tz ? tz->name : "UTC";
}

/* ---- POSIX TZ strings (RFC 8536 3.3, POSIX.1 8.3) ---------------------------------------- */

static bool
px_name(const char **sp)
{
	const char *s = *sp;
	size_t n = 0;
	if (*s == '<') {
		s++;
		while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')
		       || (*s >= '0' && *s <= '9') || *s == '+' || *s == '-') {
			s++;
			n++;
		}
		if (*s != '>' || n < 3)
			return false;
		*sp = s + 1;
		return true;
	}
	while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) {
		s++;
		n++;
	}
	if (n < 3)
		return false;
	*sp = s;
	return true;
}

static bool
px_num(const char **sp, int max_digits, int lo, int hi, int *out)
{
	const char *s = *sp;
	int v = 0, n = 0;
	while (*s >= '0' && *s <= '9' && n < max_digits) {
		v = v * 10 + (*s - '0');
		s++;
		n++;
	}
	if (n == 0 || v < lo || v > hi)
		return false;
	*out = v;
	*sp = s;
	return true;
}

/* [+-]hh[:mm[:ss]]; hours up to max_h (24 for offsets, 167 for rule times in v3+). */
static bool
px_hms(const char **sp, int max_h, int32_t *out)
{
	const char *s = *sp;
	int sign = 1, h, m = 0, sec = 0;
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	if (!px_num(&s, 3, 0, max_h, &h))
		return false;
	if (*s == ':') {
		s++;
		if (!px_num(&s, 2, 0, 59, &m))
			return false;
		if (*s == ':') {
			s++;
			if (!px_num(&s, 2, 0, 59, &sec))
				return false;
		}
	}
	*out = sign * (h * 3600 + m * 60 + sec);
	*sp = s;
	return true;
}

static bool
px_rule(const char **sp, struct posix_rule *r)
{
	const char *s = *sp;
	if (*s == 'J') {
		s++;
		r->kind = RULE_JULIAN1;
		if (!px_num(&s, 3, 1, 365, &r->a))
			return false;
	} else if (*s == 'M') {
		s++;
		r->kind = RULE_MWD;
		if (!px_num(&s, 2, 1, 12, &r->a) || *s++ != '.' || !px_num(&s, 1, 1, 5, &r->b)
		    || *s++ != '.' || !px_num(&s, 1, 0, 6, &r->c))
			return false;
	} else {
		r->kind = RULE_JULIAN0;
		if (!px_num(&s, 3, 0, 365, &r->a))
			return false;
	}
	r->time = 2 * 3600;
	if (*s == '/') {
		s++;
		if (!px_hms(&s, 167, &r->time))
			return false;
	}
	*sp = s;
	return true;
}

static bool
posix_parse(const char *s, struct posix_tz *p)
{
	int32_t off;
	memset(p, 0, sizeof(*p));
	if (*s == '\0')
		return true; /* empty footer: no rule past the table */
	if (!px_name(&s) || !px_hms(&s, 24, &off))
		return false;
	p->present = true;
	p->std_off = -off; /* POSIX counts west positive */
	if (*s == '\0')
		return true;
	if (!px_name(&s))
		return false;
	p->has_dst = true;
	p->dst_off = p->std_off + 3600;
	if (*s != ',' && *s != '\0') {
		if (!px_hms(&s, 24, &off))
			return false;
		p->dst_off = -off;
	}
	if (*s == '\0') {
		/* no rule: POSIX leaves it to the implementation; the US rule, as glibc */
		p->start = (struct posix_rule) { RULE_MWD, 3, 2, 0, 7200 };
		p->end = (struct posix_rule) { RULE_MWD, 11, 1, 0, 7200 };
		return true;
	}
	if (*s++ != ',' || !px_rule(&s, &p->start) || *s++ != ',' || !px_rule(&s, &p->end))
		return false;
	return *s == '\0';
}

static int64_t
rule_day(const struct posix_rule *r, int64_t y)
{
	int64_t jan1 = sched_days_from_civil(y, 1, 1);
	switch (r->kind) {
	case RULE_JULIAN1: return jan1 + r->a - 1 + (is_leap(y) && r->a >= 60 ? 1 : 0);
	case RULE_JULIAN0: return jan1 + r->a;
	case RULE_MWD:
	default: {
		int64_t first = sched_days_from_civil(y, r->a, 1);
		int64_t day = first + (r->c - sched_weekday(first) + 7) % 7 + 7 * (r->b - 1);
		int dim = sched_days_in_month(y, r->a);
		while (day >= first + dim)
			day -= 7;
		return day;
	}
	}
}

struct px_event {
	int64_t at;
	int32_t off_after;
};

/*
 * The rule's changes for years y0 .. y0+3, sorted; returns how many. Each year pairs its own
 * start and end, as tzcode does: when DST would last a whole year or more, that year has no
 * change (all-year DST, RFC 8536's "EST5EDT4,0/0,J365/25").
 */
static int
posix_events(const struct posix_tz *p, int64_t y0, struct px_event ev[8])
{
	int n = 0;
	for (int i = 0; i < 4; i++) {
		int64_t y = y0 + i;
		int64_t s = rule_day(&p->start, y) * 86400 + p->start.time - p->std_off;
		int64_t e = rule_day(&p->end, y) * 86400 + p->end.time - p->dst_off;
		int64_t year_s = (is_leap(y) ? 366 : 365) * 86400LL;
		if (e < s) {
			ev[n++] = (struct px_event) { e, p->std_off };
			ev[n++] = (struct px_event) { s, p->dst_off };
		} else if (e - s < year_s) {
			ev[n++] = (struct px_event) { s, p->dst_off };
			ev[n++] = (struct px_event) { e, p->std_off };
		}
	}
	for (int i = 1; i < n; i++) {
		struct px_event x = ev[i];
		int j = i - 1;
		while (j >= 0 && ev[j].at > x.at) {
			ev[j + 1] = ev[j];
			j--;
		}
		ev[j + 1] = x;
	}
	return n;
}

static int64_t
year_of(int64_t t)
{
	int64_t y;
	int m, d;
	sched_civil_from_days(sched_floor_div(t, 86400), &y, &m, &d);
	return y;
}

static int32_t
posix_offset(const struct posix_tz *p, int64_t t)
{
	if (!p->has_dst)
		return p->std_off;
	struct px_event ev[8];
	int n = posix_events(p, year_of(t + p->std_off) - 2, ev);
	if (n == 0)
		return p->dst_off;
	/* before the first event of the window, the state is the one that event leaves */
	int32_t cur = ev[0].off_after == p->dst_off ? p->std_off : p->dst_off;
	for (int i = 0; i < n && ev[i].at <= t; i++)
		cur = ev[i].off_after;
	return cur;
}

static bool
posix_next(const struct posix_tz *p, int64_t after, int64_t *at, int32_t *before, int32_t *aft)
{
	if (!p->has_dst)
		return false;
	int32_t cur = posix_offset(p, after);
	int64_t y = year_of(after + p->std_off) - 1;
	for (int pass = 0; pass < 2; pass++, y += 3) {
		struct px_event ev[8];
		int n = posix_events(p, y, ev);
		for (int i = 0; i < n;) {
			int j = i;
			int32_t o = cur;
			while (j < n && ev[j].at == ev[i].at)
				o = ev[j++].off_after;
			if (ev[i].at > after && o != cur) {
				*at = ev[i].at;
				*before = cur;
				*aft = o;
				return true;
			}
			if (ev[i].at > after)
				cur = o;
			i = j;
		}
	}
	return false;
}

/* ---- lookups ----------------------------------------------------------------------------- */

/* Index of the last transition <= t, or -1. */
static ptrdiff_t
last_le(const sched_tz_t *tz, int64_t t)
{
	size_t lo = 0, hi = tz->timecnt;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (tz->trans[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ptrdiff_t)lo - 1;
}

int32_t
sched_tz_offset(const sched_tz_t *tz, int64_t utc_s)
{
	if (!tz)
		return 0;
	int64_t t = clamp_s(utc_s);
	if (tz->timecnt == 0)
		return tz->footer.present ? posix_offset(&tz->footer, t) : tz->utoff[0];
	ptrdiff_t i = last_le(tz, t);
	if (i < 0)
		return tz->utoff[0];
	if ((size_t)i == tz->timecnt - 1 && tz->footer.present)
		return posix_offset(&tz->footer, t);
	return tz->utoff[tz->idx[i]];
}

sl_err
sched_tz_next_transition(const sched_tz_t *tz, int64_t after_s, int64_t *at_s, int32_t *off_before,
                         int32_t *off_after)
{
	if (!tz || after_s >= SCHED_S_MAX)
		return SL_ERR_NOT_FOUND;
	int64_t t = clamp_s(after_s);
	int32_t cur = sched_tz_offset(tz, t);
	if (tz->timecnt > 0 && t < tz->trans[tz->timecnt - 1]) {
		for (size_t j = (size_t)(last_le(tz, t) + 1); j < tz->timecnt; j++) {
			int32_t o = tz->utoff[tz->idx[j]];
			if (j == tz->timecnt - 1 && tz->footer.present)
				o = posix_offset(&tz->footer, tz->trans[j]);
			if (o != cur) {
				*at_s = tz->trans[j];
				*off_before = cur;
				*off_after = o;
				return SL_OK;
			}
		}
		t = tz->trans[tz->timecnt - 1];
	}
	for (int k = 0;
	     tz->footer.present && k < 4 && posix_next(&tz->footer, t, at_s, off_before, off_after);
	     k++) {
		if (*at_s > SCHED_S_MAX)
			break;
		if (*off_after != cur) {
			*off_before = cur;
			return SL_OK;
		}
		t = *at_s;
	}
	return SL_ERR_NOT_FOUND;
}

int64_t
sched_tz_local_to_utc(const sched_tz_t *tz, int64_t local_s)
{
	if (!tz)
		return local_s;
	local_s = clamp_s(local_s);
	int64_t lo = clamp_s(local_s - NEAR_WINDOW_S), hi = clamp_s(local_s + NEAR_WINDOW_S);
	int32_t offs[16];
	int n = 0;
	offs[n++] = sched_tz_offset(tz, lo);
	int64_t at, t = lo;
	int32_t ob, oa;
	while (n < 16 && sched_tz_next_transition(tz, t, &at, &ob, &oa) == SL_OK && at <= hi) {
		offs[n++] = oa;
		t = at;
	}
	bool found = false;
	int64_t best = 0;
	for (int i = 0; i < n; i++) {
		int64_t u = local_s - offs[i];
		if (sched_tz_offset(tz, u) == offs[i] && (!found || u < best)) {
			best = u;
			found = true;
		}
	}
	if (found)
		return best;
	/* in a gap: the transition that jumped over local_s */
	t = lo;
	while (sched_tz_next_transition(tz, t, &at, &ob, &oa) == SL_OK && at <= hi) {
		if (at + ob <= local_s && local_s < at + oa)
			return at;
		t = at;
	}
	return local_s - sched_tz_offset(tz, local_s - sched_tz_offset(tz, local_s));
}

/* ---- TZif -------------------------------------------------------------------------------- */

struct rd {
	const unsigned char *p;
	size_t len, pos;
};

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t
be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_counts {
	uint32_t isut, isstd, leap, time, type, chars;
};

static sl_err
bad(struct sl_error *err, const char *name, size_t at, const char *what)
{
	return sl_error_set(err, SL_ERR_INVALID_ARG,
	                    "time zone '%s': not valid TZif data: %s (at byte %zu)", name, what,
	                    at);
}

static sl_err
read_header(struct rd *r, const char *name, int *version, struct tzif_counts *c,
            struct sl_error *err)
{
	if (r->len - r->pos < TZIF_HEADER_LEN)
		return bad(err, name, r->pos, "truncated header, expected 44 bytes");
	const unsigned char *h = r->p + r->pos;
	if (memcmp(h, "TZif", 4) != 0)
		return bad(err, name, r->pos, "expected the magic \"TZif\"");
	if (h[4] != 0 && (h[4] < '2' || h[4] > '4'))
		return bad(err, name, r->pos + 4, "unsupported version, expected 1 to 4");
	*version = h[4] == 0 ? 1 : h[4] - '0';
	c->isut = be32(h + 20);
	c->isstd = be32(h + 24);
	c->leap = be32(h + 28);
	c->time = be32(h + 32);
	c->type = be32(h + 36);
	c->chars = be32(h + 40);
	r->pos += TZIF_HEADER_LEN;
	if (c->type == 0 || c->type > 256)
		return bad(err, name, r->pos - 8, "typecnt must be 1..256");
	if (c->chars == 0)
		return bad(err, name, r->pos - 4, "charcnt must not be 0");
	if ((c->isut != 0 && c->isut != c->type) || (c->isstd != 0 && c->isstd != c->type))
		return bad(err, name, r->pos - 24, "isutcnt/isstdcnt must be 0 or typecnt");
	if (c->leap != 0)
		return bad(err, name, r->pos - 16,
		           "leap-second zones (\"right/\") are not supported, use the POSIX zone");
	return SL_OK;
}

static uint64_t
block_len(const struct tzif_counts *c, unsigned tsize)
{
	return (uint64_t)c->time * (tsize + 1) + (uint64_t)c->type * 6 + c->chars
	        + (uint64_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

static sl_err
read_block(struct rd *r, const char *name, const struct tzif_counts *c, unsigned tsize,
           sched_tz_t *tz, struct sl_error *err)
{
	if (block_len(c, tsize) > r->len - r->pos)
		return bad(err, name, r->pos, "truncated data block");
	const unsigned char *p = r->p + r->pos;
	tz->timecnt = c->time;
	tz->typecnt = c->type;
	tz->trans = sl_calloc(c->time ? c->time : 1, sizeof(int64_t));
	tz->idx = sl_calloc(c->time ? c->time : 1, 1);
	tz->utoff = sl_calloc(c->type, sizeof(int32_t));
	if (!tz->trans || !tz->idx || !tz->utoff)
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < c->time; i++) {
		tz->trans[i] = tsize == 8 ? be64(p + 8 * i) : (int32_t)be32(p + 4 * i);
		if (i > 0 && tz->trans[i] <= tz->trans[i - 1])
			return bad(err, name, r->pos + tsize * i,
			           "transition times must be strictly ascending");
	}
	p += (size_t)c->time * tsize;
	for (size_t i = 0; i < c->time; i++) {
		tz->idx[i] = p[i];
		if (p[i] >= c->type)
			return bad(err, name, (size_t)(p - r->p) + i,
			           "transition type index beyond typecnt");
	}
	p += c->time;
	for (size_t i = 0; i < c->type; i++) {
		int32_t off = (int32_t)be32(p + 6 * i);
		if (off < UTOFF_MIN || off > UTOFF_MAX)
			return bad(err, name, (size_t)(p - r->p) + 6 * i,
			           "UT offset out of range -89999..93599");
		if (p[6 * i + 4] > 1)
			return bad(err, name, (size_t)(p - r->p) + 6 * i + 4,
			           "isdst must be 0 or 1");
		if (p[6 * i + 5] >= c->chars)
			return bad(err, name, (size_t)(p - r->p) + 6 * i + 5,
			           "designation index beyond charcnt");
		tz->utoff[i] = off;
	}
	r->pos += block_len(c, tsize);
	return SL_OK;
}

static sl_err
read_footer(struct rd *r, const char *name, sched_tz_t *tz, struct sl_error *err)
{
	if (r->pos >= r->len || r->p[r->pos] != '\n')
		return bad(err, name, r->pos, "expected the footer's opening newline");
	size_t start = r->pos + 1, end = start;
	while (end < r->len && r->p[end] != '\n' && r->p[end] != '\0')
		end++;
	if (end >= r->len || r->p[end] != '\n' || end - start > 255)
		return bad(err, name, start, "footer TZ string not closed by a newline");
	char s[256];
	memcpy(s, r->p + start, end - start);
	s[end - start] = '\0';
	if (!posix_parse(s, &tz->footer))
		return bad(err, name, start, "footer is not a POSIX TZ string");
	r->pos = end + 1;
	return SL_OK;
}

sl_err
sched_tz_parse(const unsigned char *data, size_t len, const char *name, sched_tz_t **out,
               struct sl_error *err)
{
	if (!name)
		name = "(unnamed)";
	if (!data || !out)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "time zone '%s': no data", name);
	sched_tz_t *tz = SL_NEW(sched_tz_t);
	if (!tz || !(tz->name = sl_strdup(name))) {
		sl_free(tz);
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	}
	struct rd r = { data, len, 0 };
	struct tzif_counts c;
	int version;
	sl_err rc = read_header(&r, name, &version, &c, err);
	if (rc == SL_OK && version >= 2) {
		/* the v1 block is only for old readers: skip it, then the 64-bit one */
		if (block_len(&c, 4) > r.len - r.pos)
			rc = bad(err, name, r.pos, "truncated version 1 data block");
		else
			r.pos += block_len(&c, 4);
		if (rc == SL_OK)
			rc = read_header(&r, name, &version, &c, err);
		if (rc == SL_OK)
			rc = read_block(&r, name, &c, 8, tz, err);
		if (rc == SL_OK)
			rc = read_footer(&r, name, tz, err);
	} else if (rc == SL_OK) {
		rc = read_block(&r, name, &c, 4, tz, err);
	}
	if (rc != SL_OK) {
		sched_tz_free(tz);
		return rc;
	}
	*out = tz;
	return SL_OK;
}

sl_err
sched_tz_open_file(const char *path, const char *name, sched_tz_t **out, struct sl_error *err)
{
	if (!name)
		name = path;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "time zone '%s' is unknown: no file %s", name, path);
		return sl_error_set(err, SL_ERR_IO, "time zone '%s': cannot open %s: %s", name,
		                    path, strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)TZIF_MAX_FILE) {
		close(fd);
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "time zone '%s' is unknown: %s is not a TZif file of at most "
		                    "1 MiB",
		                    name, path);
	}
	size_t len = (size_t)st.st_size, got = 0;
	unsigned char *buf = sl_malloc(len ? len : 1);
	if (!buf) {
		close(fd);
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	}
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	sl_err rc = sched_tz_parse(buf, got, name, out, err);
	sl_free(buf);
	return rc;
}

static bool
tz_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > SCHED_TZ_NAME_MAX || name[0] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool comp_start = i == 0 || name[i - 1] == '/';
		if (comp_start && (ch == '.' || ch == '/'))
			return false; /* no "..", no hidden files, no empty component */
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
		      || (ch >= '0' && ch <= '9') || ch == '_' || ch == '+' || ch == '-'
		      || ch == '.' || ch == '/'))
			return false;
	}
	return name[n - 1] != '/';
}

sl_err
sched_tz_open(const char *name, sched_tz_t **out, struct sl_error *err)
{
	if (!name || !tz_name_ok(name))
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "time zone '%s' is not valid: expected an IANA name such as "
		                    "\"Europe/Berlin\" (letters, digits, _+-./, at most %d bytes)",
		                    name ? name : "(null)", SCHED_TZ_NAME_MAX);
	char path[sizeof(SCHED_TZ_DIR) + SCHED_TZ_NAME_MAX + 2];
	snprintf(path, sizeof(path), "%s/%s", SCHED_TZ_DIR, name);
	return sched_tz_open_file(path, name, out, err);
}
