/*
 * sched_internal.h - what the sched_*.c files share: the parsed schedule and calendar math.
 */
#ifndef SLUICE_BUS_SCHED_INTERNAL_H
#define SLUICE_BUS_SCHED_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/schedule.h"

/* Seconds bounds of instants we compute with (years 1..9999), so no arithmetic overflows. */
#define SCHED_S_MIN (-62135596800LL)
#define SCHED_S_MAX (253402300799LL)

/* Day-of-month modes beyond a plain bit set. */
enum sched_dom_mode {
	SCHED_DOM_SET,     /* dom_bits */
	SCHED_DOM_LAST,    /* L */
	SCHED_DOM_LAST_WD, /* LW */
	SCHED_DOM_NEAR_WD, /* nW: dom_arg = n */
};

enum sched_dow_mode {
	SCHED_DOW_SET,  /* dow_bits, bit 1 = SUN .. bit 7 = SAT */
	SCHED_DOW_LAST, /* nL: dow_arg = n, last such weekday of the month */
	SCHED_DOW_NTH,  /* n#k: dow_arg = n, dow_nth = k */
};

struct sched_cron {
	uint64_t minutes;  /* bit m */
	uint32_t hours;    /* bit h */
	uint16_t months;   /* bit 1..12 */
	uint64_t years[4]; /* bit (y - SCHED_YEAR_MIN) */
	bool dom_any;      /* dom is `?`: days are chosen by dow */
	enum sched_dom_mode dom_mode;
	uint32_t dom_bits; /* bit 1..31 */
	int dom_arg;
	enum sched_dow_mode dow_mode;
	uint8_t dow_bits;
	int dow_arg;
	int dow_nth;
};

struct sched {
	enum sched_kind kind;
	char *expr;
	sched_tz_t *tz; /* NULL = UTC */
	int64_t rate_ms;
	int64_t anchor_ms;
	int64_t at_ms;
	struct sched_cron cron;
};

/* Calendar (proleptic Gregorian), days since 1970-01-01. */
int64_t sched_days_from_civil(int64_t y, int m, int d);
void sched_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
int sched_days_in_month(int64_t y, int m);
/* 0 = Sunday .. 6 = Saturday. */
int sched_weekday(int64_t days);
int64_t sched_floor_div(int64_t a, int64_t b);

/* Cron evaluation on naive wall-clock seconds: the first matching minute strictly after
 * local_s; false when none up to SCHED_YEAR_MAX. */
bool sched_cron_next_local(const struct sched_cron *c, int64_t local_s, int64_t *out_s);

#endif
