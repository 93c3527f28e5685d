/*
 * schedule.h - schedule expressions of scheduled rules: parsing, next fire times, time zones,
 * missed runs and backfill. Pure: no store, no clock, no I/O except reading tzdata files.
 *
 * Grammar (docs/SCHEDULES.md has the full text):
 *   rate(N unit)      unit minute|hour|day when N = 1, minutes|hours|days otherwise; N >= 1.
 *                     Slots are anchor + k * N * unit for every integer k: elapsed time, so
 *                     `rate(1 day)` is 24 h even across a DST change (as AWS Scheduler).
 *   cron(m h dom mon dow year)   AWS's six fields with * ? , - / L W #; exactly one of dom
 *                     and dow is `?`; dow 1-7 = SUN-SAT; years 1970-2199.
 *   at(yyyy-mm-ddThh:mm:ss)      one time, as a wall-clock time in the schedule's zone.
 * Every refused expression gives SL_ERR_INVALID_ARG with AWS's message, exactly
 * SCHED_INVALID_MESSAGE; sched_parse_diag() also says where and why.
 *
 * Time zones (a sluice extension; AWS rules run in UTC): cron and at() are wall-clock times in
 * an IANA zone read from /usr/share/zoneinfo (TZif v1..v4, including the POSIX TZ footer for
 * instants past the file's table). Daylight saving:
 *   - a wall time that does not exist (spring-forward gap) fires at the first instant after the
 *     gap: 02:30 on the day New York springs forward fires at 03:00 EDT (07:00Z); several
 *     slots inside one gap collapse into that one instant. (AWS Scheduler skips such a time
 *     instead; a nightly ETL prefers a late run to a missing day.)
 *   - a wall time that occurs twice (fall-back overlap) fires once, at its first occurrence:
 *     01:30 on the day New York falls back fires at 01:30 EDT (05:30Z), not at 01:30 EST. A
 *     cron that fires every minute therefore pauses for the repeated hour.
 *
 * Threading: a sched_t and a sched_tz_t are immutable after construction (sched_set_anchor
 * aside) and may be read from any number of threads at once. No function touches the
 * process-wide TZ or localtime state.
 */
#ifndef SLUICE_BUS_SCHEDULE_H
#define SLUICE_BUS_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sl_err.h"

/* AWS's ValidationException text for every refused expression, byte for byte. */
#define SCHED_INVALID_MESSAGE "Parameter ScheduleExpression is not valid."
#define SCHED_EXPR_MAX        256 /* PutRule's ScheduleExpression limit */
#define SCHED_TZ_NAME_MAX     64
#define SCHED_YEAR_MIN        1970
#define SCHED_YEAR_MAX        2199
#define SCHED_TZ_DIR          "/usr/share/zoneinfo"

typedef struct sched sched_t;
typedef struct sched_tz sched_tz_t;

enum sched_kind {
	SCHED_RATE,
	SCHED_CRON,
	SCHED_AT,
};

/* Why an expression was refused: AWS's message says nothing, a CLI user needs more. */
struct sched_diag {
	int field;     /* cron field 1..6 (minutes .. year), 0 when not about one field */
	size_t offset; /* byte offset in the expression where the problem starts */
	char reason[160];
};

/*
 * Parses expr (borrowed). tz is an IANA zone name such as "Europe/Berlin" (borrowed), or NULL
 * for UTC. On success *out is a new schedule the caller frees with sched_free. Errors:
 * SL_ERR_INVALID_ARG (err->message = SCHED_INVALID_MESSAGE for the expression, a message
 * naming the zone for a bad tz), SL_ERR_NOMEM, SL_ERR_IO (tzdata unreadable).
 * diag (may be NULL) receives the detail when the expression is refused.
 */
sl_err sched_parse(const char *expr, const char *tz, sched_t **out, struct sl_error *err);
sl_err sched_parse_diag(const char *expr, const char *tz, sched_t **out, struct sl_error *err,
                        struct sched_diag *diag);
/* Frees s; NULL is fine. */
void sched_free(sched_t *s);

enum sched_kind sched_kind(const sched_t *s);
/* The expression as given, and the zone name ("UTC" when none was given). Borrowed from s. */
const char *sched_expression(const sched_t *s);
const char *sched_tz_label(const sched_t *s);
/* rate(): the period in ms; 0 for cron and at. */
int64_t sched_rate_period_ms(const sched_t *s);

/*
 * rate() schedules fire relative to an anchor, the rule's creation time as AWS does: slots are
 * anchor + k * period. The default anchor is 0 (the epoch), so `rate(1 hour)` fires on the
 * hour. Ignored by cron and at. Not thread-safe against concurrent readers of s.
 */
void sched_set_anchor(sched_t *s, int64_t anchor_ms);

/*
 * The first slot strictly after after_ms (epoch ms) into *out_ms. Slots are whole minutes for
 * cron, whole seconds for at(), anchor-relative for rate(). SL_ERR_NOT_FOUND when there is
 * none: at() not after after_ms, a cron past 2199 or whose year list is exhausted, a rate slot
 * beyond the int64 range.
 */
sl_err sched_next(const sched_t *s, int64_t after_ms, int64_t *out_ms);

/* The latest slot in (lo_ms, hi_ms], or SL_ERR_NOT_FOUND. */
sl_err sched_prev(const sched_t *s, int64_t lo_ms, int64_t hi_ms, int64_t *out_ms);

/*
 * Backfill enumeration: every slot in [from_ms, to_ms), in order. The iterator borrows s.
 *   struct sched_iter it; sched_iter_init(&it, s, from, to);
 *   while (sched_iter_next(&it, &slot) == SL_OK) fire(slot);
 * sched_iter_next returns SL_ERR_NOT_FOUND at the end (and keeps returning it).
 */
struct sched_iter {
	const sched_t *s;
	int64_t cursor; /* slots are > cursor */
	int64_t to_ms;
	bool done;
};
void sched_iter_init(struct sched_iter *it, const sched_t *s, int64_t from_ms, int64_t to_ms);
sl_err sched_iter_next(struct sched_iter *it, int64_t *slot_ms);

/*
 * Missed runs. After downtime (or a slow loop) the daemon asks which slots in
 * (last_ms, now_ms] to fire. last_ms is the last fired slot, or the rule's creation time when
 * it never fired.
 *   SKIP (AWS's behaviour, the default): only the latest due slot, and only when it is at most
 *        grace_ms old (the loop was late, not down); every older slot is dropped.
 *   ONCE: the latest due slot, however old: one catch-up run for the newest missed day.
 *   ALL:  every due slot, oldest first, at most cap of them; `more` then says the rest are
 *        still due: fire these, store the last as last_ms, and ask again.
 * The event's `time` is the slot, so a late run processes the right day.
 */
enum sched_missed {
	SCHED_MISSED_SKIP,
	SCHED_MISSED_ONCE,
	SCHED_MISSED_ALL,
};

struct sched_due {
	int64_t *slots; /* ascending; owned, release with sched_due_release */
	size_t n;
	bool more;       /* ALL hit the cap: more slots <= now_ms are due */
	bool has_next;   /* next_ms is valid */
	int64_t next_ms; /* the slot to arm a timer for: the first slot after the last one due
	                    (<= now_ms when `more`) */
};

sl_err sched_due(const sched_t *s, int64_t last_ms, int64_t now_ms, enum sched_missed policy,
                 int64_t grace_ms, size_t cap, struct sched_due *out);
void sched_due_release(struct sched_due *d);

/* "skip" | "once" | "all" (as written in a rule's sluice extension fields). */
sl_err sched_missed_parse(const char *name, enum sched_missed *out, struct sl_error *err);
const char *sched_missed_name(enum sched_missed policy);

/*
 * Time zones, also usable on their own. sched_tz_open reads SCHED_TZ_DIR/name (name checked:
 * letters, digits, "_+-./", no ".." component, at most SCHED_TZ_NAME_MAX bytes).
 * sched_tz_open_file reads any path; sched_tz_parse parses TZif bytes (borrowed) from memory.
 * name is copied. Errors: SL_ERR_INVALID_ARG (bad name, unknown zone, corrupt data: the
 * message says where), SL_ERR_IO, SL_ERR_NOMEM.
 */
sl_err sched_tz_open(const char *name, sched_tz_t **out, struct sl_error *err);
sl_err sched_tz_open_file(const char *path, const char *name, sched_tz_t **out,
                          struct sl_error *err);
sl_err sched_tz_parse(const unsigned char *data, size_t len, const char *name, sched_tz_t **out,
                      struct sl_error *err);
void sched_tz_free(sched_tz_t *tz);
const char *sched_tz_name(const sched_tz_t *tz);
/* UTC offset in seconds (east positive) in effect at utc_s (epoch seconds). */
int32_t sched_tz_offset(const sched_tz_t *tz, int64_t utc_s);
/* The first change of offset strictly after after_s; SL_ERR_NOT_FOUND when none. */
sl_err sched_tz_next_transition(const sched_tz_t *tz, int64_t after_s, int64_t *at_s,
                                int32_t *off_before, int32_t *off_after);
/* The instant a wall-clock time (seconds since 1970-01-01T00:00 local) fires at, by the DST
 * rules above: first occurrence when repeated, end of the gap when skipped. */
int64_t sched_tz_local_to_utc(const sched_tz_t *tz, int64_t local_s);

#endif
