/*
 * sl_clock.h - the clock every engine reads, replaceable by tests and by `--virtual-time`.
 *
 * Wall time (epoch milliseconds) drives timestamps, timers and schedules. A test installs
 * a fake clock and moves it by hand, so schedules and waits are tested without sleeping.
 * Monotonic time is for measuring durations only (benchmarks, latency metrics) and is
 * never faked.
 */
#ifndef SLUICE_COMMON_SL_CLOCK_H
#define SLUICE_COMMON_SL_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch, from the real or the fake clock. */
int64_t sl_clock_now_ms(void);
/* Monotonic nanoseconds (never faked). */
uint64_t sl_clock_mono_ns(void);

/* Installs a fake wall clock starting at start_ms; it moves only with sl_clock_fake_*. */
void sl_clock_fake_enable(int64_t start_ms);
void sl_clock_fake_set(int64_t now_ms);
void sl_clock_fake_advance(int64_t delta_ms);
void sl_clock_fake_disable(void);
bool sl_clock_is_fake(void);

/* Formats epoch ms as RFC 3339 UTC with milliseconds ("2026-11-24T02:00:00.000Z"). */
void sl_clock_format_rfc3339(int64_t ms, char out[32]);
/* Same, without the fraction ("2026-11-24T02:00:00Z"), as EventBridge's `time`. */
void sl_clock_format_rfc3339_s(int64_t ms, char out[32]);
/* Parses RFC 3339 / ISO 8601 ("2026-11-24T02:00:00Z", "...T02:00:00.5+01:00"); false if not. */
bool sl_clock_parse_rfc3339(const char *s, int64_t *out_ms);

#endif
