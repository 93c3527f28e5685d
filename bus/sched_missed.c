/*
 * sched_missed.c - which slots to fire after downtime or a late loop, by the rule's
 * missed-run policy (skip | once | all). Pure: the caller stores last/next fire times.
 */
#include <string.h>

#include "bus/sched_internal.h"
#include "common/sl_alloc.h"

static const char *const policy_names[] = { "skip", "once", "all" };

sl_err
sched_missed_parse(const char *name, enum sched_missed *out, struct sl_error *err)
{
	for (int i = 0; name && i < 3; i++) {
		if (strcmp(name, policy_names[i]) == 0) {
			*out = (enum sched_missed)i;
			return SL_OK;
		}
	}
	return sl_error_set(err, SL_ERR_INVALID_ARG,
	                    "missed-run policy '%.64s' is not valid: expected skip, once or all",
	                    name ? name : "(null)");
}

const char *
sched_missed_name(enum sched_missed policy)
{
	return (unsigned)policy < 3 ? policy_names[policy] : "skip";
}

void
sched_due_release(struct sched_due *d)
{
	if (!d)
		return;
	sl_free(d->slots);
	memset(d, 0, sizeof(*d));
}

static sl_err
push(struct sched_due *d, size_t *capacity, int64_t slot)
{
	if (d->n == *capacity) {
		size_t nc = *capacity ? *capacity * 2 : 8;
		int64_t *p = sl_reallocarray(d->slots, nc, sizeof(*p));
		if (!p)
			return SL_ERR_NOMEM;
		d->slots = p;
		*capacity = nc;
	}
	d->slots[d->n++] = slot;
	return SL_OK;
}

static void
arm_after(const sched_t *s, int64_t t, struct sched_due *out)
{
	out->has_next = sched_next(s, t, &out->next_ms) == SL_OK;
}

sl_err
sched_due(const sched_t *s, int64_t last_ms, int64_t now_ms, enum sched_missed policy,
          int64_t grace_ms, size_t cap, struct sched_due *out)
{
	if (!out)
		return SL_ERR_INVALID_ARG;
	memset(out, 0, sizeof(*out));
	if (!s || grace_ms < 0 || (unsigned)policy > SCHED_MISSED_ALL
	    || (policy == SCHED_MISSED_ALL && cap == 0))
		return SL_ERR_INVALID_ARG;
	if (now_ms <= last_ms) {
		arm_after(s, last_ms, out);
		return SL_OK;
	}
	size_t capacity = 0;
	sl_err rc;
	if (policy != SCHED_MISSED_ALL) {
		int64_t x;
		rc = sched_prev(s, last_ms, now_ms, &x);
		if (rc == SL_OK) {
			/* x <= now_ms, so the unsigned difference is exact */
			bool fresh = (uint64_t)now_ms - (uint64_t)x <= (uint64_t)grace_ms;
			if ((policy == SCHED_MISSED_ONCE || fresh)
			    && (rc = push(out, &capacity, x)) != SL_OK)
				goto out_release;
		} else if (rc != SL_ERR_NOT_FOUND) {
			goto out_release;
		}
		arm_after(s, now_ms, out);
		return SL_OK;
	}
	int64_t cursor = last_ms, x;
	for (;;) {
		rc = sched_next(s, cursor, &x);
		if (rc == SL_ERR_NOT_FOUND)
			return SL_OK; /* no later slot at all: nothing to arm */
		if (rc != SL_OK)
			goto out_release;
		if (x > now_ms || out->n == cap) {
			out->more = x <= now_ms;
			out->has_next = true;
			out->next_ms = x;
			return SL_OK;
		}
		if ((rc = push(out, &capacity, x)) != SL_OK)
			goto out_release;
		cursor = x;
	}
out_release:
	sched_due_release(out);
	return rc;
}
