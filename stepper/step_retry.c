/*
 * step_retry.c - ErrorEquals matching and retry back-off (IntervalSeconds, BackoffRate,
 * MaxDelaySeconds, JitterStrategy) with the engine's seeded RNG.
 */
#include <math.h>
#include <string.h>

#include "stepper/step_int.h"

/* States.Runtime is never caught nor retried, not even by its own name (recorded AWS
 * histories). A States.DataLimitExceeded the engine raises ends the frame before Retry and
 * Catch are looked at; one a task reports is an ordinary task error (recorded: States.ALL
 * catches it). */
static bool
uncatchable_by_all(const char *error)
{
	return strcmp(error, "States.Runtime") == 0;
}

bool
step_error_matches(const struct sm_error_match *m, const char *error, bool is_task)
{
	const char *err = error ? error : "";
	if (uncatchable_by_all(err))
		return false;
	for (size_t i = 0; i < m->n_names; i++) {
		const char *n = m->names[i];
		if (strcmp(n, err) == 0)
			return true;
		if (strcmp(n, "States.ALL") == 0 && !uncatchable_by_all(err))
			return true;
		// States.TaskFailed stands for every task error but a timeout.
		if (is_task && strcmp(n, "States.TaskFailed") == 0 && !uncatchable_by_all(err)
		    && strcmp(err, "States.Timeout") != 0
		    && strcmp(err, "States.HeartbeatTimeout") != 0)
			return true;
	}
	return false;
}

/* splitmix64: small, seedable, good enough for jitter. */
uint64_t
step_rand(step_engine_t *eng)
{
	uint64_t z = (eng->rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

int64_t
step_retry_delay_ms(step_engine_t *eng, const struct sm_retrier *r, int64_t attempt)
{
	double d = (double)r->interval_seconds * 1000.0
	        * pow(r->backoff_rate, (double)(attempt - 1));
	if (r->max_delay_seconds > 0 && d > (double)r->max_delay_seconds * 1000.0)
		d = (double)r->max_delay_seconds * 1000.0;
	// a year is far beyond any execution's life; keeps the conversion defined
	if (!(d < 3.2e10))
		d = 3.2e10;
	int64_t ms = (int64_t)d;
	if (r->jitter == SM_JITTER_FULL && ms > 0)
		ms = (int64_t)(step_rand(eng) % (uint64_t)(ms + 1));
	return ms;
}
