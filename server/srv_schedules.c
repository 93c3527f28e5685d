/*
 * srv_schedules.c - scheduled rules in the server (see srv_schedules.h): one libevent timer
 * at the earliest next fire time, the missed-run policies at start-up, backfills paced by
 * their deliveries, the test clock, and the sluice read operations for tests and debugging.
 *
 * The store is the truth: memory holds only each schedule's next fire time, to arm the
 * timer. A fire reads the record from the batch (so a PutRule earlier in the same batch is
 * seen), publishes the slots' events and writes the record back, all in that batch. A
 * failed commit reloads the next times from the store.
 */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "bus/schedule.h"
#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "common/sl_log.h"
#include "server/srv_bus.h"
#include "server/srv_deliver.h"
#include "server/srv_engine.h"
#include "server/srv_internal.h"
#include "server/srv_schedules.h"

/* Slots fired per timer callback: a burst (ALL after long downtime) must not stall HTTP. */
#define FIRE_SLICE 256
/* AdvanceClock fires at most this many slots per request. */
#define ADVANCE_MAX_SLOTS 100000
/* A backfill covers at most this many slots. */
#define BACKFILL_MAX_SLOTS       100000
#define BACKFILL_MAX_CONCURRENCY 100
/* How often running backfills look whether their deliveries are gone (real time). */
#define BACKFILL_POLL_MS 200
/* Delivery records looked at per check; beyond, the slots count as outstanding. */
#define BACKFILL_SCAN_MAX 50000
#define LIST_EVENTS_MAX   1000

enum { SCHED_TAG_SCHEDULE = 'S', SCHED_TAG_BACKFILL = 'B' };

struct entry {
	char *bus, *rule;
	bool has_next;
	int64_t next_ms;
};

struct sched_state {
	srv_t *srv;
	struct entry *e;
	size_t n, cap;
	struct event *timer_ev;
	int64_t armed; /* INT64_MAX when not armed */
	struct event *bf_ev;
	bool bf_running;
	uint64_t hooked_gen; /* the batch (srv batch_gen) that has our commit hook */
	struct sched_state *next;
};

/* Module state found by server (the server has no slot for it); kept for the process. */
static struct sched_state *states;

static struct sched_state *
state_of(srv_t *s)
{
	for (struct sched_state *st = states; st; st = st->next)
		if (st->srv == s)
			return st;
	return NULL;
}

static void
sched_key(struct store_key *k, const char *bus, const char *rule)
{
	store_key_init(k);
	store_key_u32(k, SCHED_TAG_SCHEDULE);
	if (bus)
		store_key_str(k, bus);
	if (rule)
		store_key_str(k, rule);
}

static int64_t
jint(json_t *o, const char *key, int64_t def)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static const char *
jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ---- memory: next fire times ---------------------------------------------------------- */

static struct entry *
find_entry(struct sched_state *st, const char *bus, const char *rule)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->e[i].rule, rule) == 0 && strcmp(st->e[i].bus, bus) == 0)
			return &st->e[i];
	return NULL;
}

static void
drop_entry(struct sched_state *st, const char *bus, const char *rule)
{
	struct entry *e = find_entry(st, bus, rule);
	if (!e)
		return;
	sl_free(e->bus);
	sl_free(e->rule);
	*e = st->e[--st->n];
}

static sl_err
set_entry(struct sched_state *st, const char *bus, const char *rule, bool has_next, int64_t next)
{
	struct entry *e = find_entry(st, bus, rule);
	if (!e) {
		if (st->n == st->cap) {
			size_t cap = st->cap ? st->cap * 2 : 16;
			struct entry *ne = sl_reallocarray(st->e, cap, sizeof *ne);
			if (!ne)
				return SL_ERR_NOMEM;
			st->e = ne;
			st->cap = cap;
		}
		char *b = sl_strdup(bus), *r = sl_strdup(rule);
		if (!b || !r) {
			sl_free(b);
			sl_free(r);
			return SL_ERR_NOMEM;
		}
		e = &st->e[st->n++];
		e->bus = b;
		e->rule = r;
	}
	e->has_next = has_next;
	e->next_ms = next;
	return SL_OK;
}

/* Arms the timer at the earliest next fire time (a scan: it runs once per fire, not per
 * second, and a bus holds at most a few hundred rules). */
static void
arm(struct sched_state *st)
{
	int64_t min = INT64_MAX;
	for (size_t i = 0; i < st->n; i++)
		if (st->e[i].has_next && st->e[i].next_ms < min)
			min = st->e[i].next_ms;
	if (min == st->armed && evtimer_pending(st->timer_ev, NULL))
		return;
	evtimer_del(st->timer_ev);
	st->armed = INT64_MAX;
	if (min == INT64_MAX)
		return;
	int64_t delay = min - sl_clock_now_ms();
	if (delay < 0)
		delay = 0;
	/* a far slot is re-armed on waking: libevent's timeval need not hold years */
	if (delay > 24LL * 3600 * 1000)
		delay = 24LL * 3600 * 1000;
	struct timeval tv = { (time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000) };
	if (evtimer_add(st->timer_ev, &tv) == 0)
		st->armed = min;
}

/* Reads every schedule record's next time from txn into memory. */
static sl_err
load_entries(struct sched_state *st, store_txn_t *txn)
{
	for (size_t i = 0; i < st->n; i++) {
		sl_free(st->e[i].bus);
		sl_free(st->e[i].rule);
	}
	st->n = 0;
	struct store_key pk;
	sched_key(&pk, NULL, NULL);
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, STORE_DB_SCHEDULES, &c);
	if (rc)
		return rc;
	struct store_val kv, vv;
	if ((rc = store_cursor_seek_prefix(c, pk.buf, pk.len)) == SL_OK)
		while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			json_t *r = json_loadb(vv.data, vv.len, 0, NULL);
			const char *bus = jstr(r, "bus"), *rule = jstr(r, "rule");
			if (bus && rule)
				rc = set_entry(st, bus, rule, json_object_get(r, "next") != NULL,
				               jint(r, "next", 0));
			else
				sl_warn("schedules", "a schedule record is malformed; ignored");
			json_decref(r);
			if (rc)
				break;
		}
	store_cursor_close(c);
	return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
}

static void
reload(struct sched_state *st)
{
	store_txn_t *txn;
	sl_err rc = store_read_begin(srv_store(st->srv), &txn);
	if (rc == SL_OK) {
		rc = load_entries(st, txn);
		store_read_end(txn);
	}
	if (rc)
		sl_errorf("schedules", "cannot reload the schedules: %s", sl_err_message(rc));
	arm(st);
}

static void
on_fire_commit(void *arg, sl_err status)
{
	struct sched_state *st = arg;
	if (status != SL_OK) {
		sl_warn("schedules", "a batch with fired slots failed (%s): reloading",
		        sl_err_message(status));
		reload(st);
	}
}

/* ---- firing --------------------------------------------------------------------------- */

/* The schedule of a record (expression, zone, anchor); *policy too when not NULL. */
static sl_err
record_sched(json_t *rec, sched_t **out, enum sched_missed *policy)
{
	const char *expr = jstr(rec, "expr"), *tz = jstr(rec, "tz"), *pol = jstr(rec, "policy");
	if (!expr)
		return SL_ERR_STORE;
	sl_err rc = sched_parse(expr, tz && strcmp(tz, "UTC") != 0 ? tz : NULL, out, NULL);
	if (rc)
		return rc;
	sched_set_anchor(*out, jint(rec, "anchor", 0));
	if (policy && (!pol || sched_missed_parse(pol, policy, NULL) != SL_OK))
		*policy = SCHED_MISSED_SKIP;
	return SL_OK;
}

/* Publishes the scheduled event of one slot to the rule's targets, in b. */
static sl_err
publish_slot(store_batch_t *b, const char *bus, const char *rule, int64_t slot, bool backfill,
             char id[SL_UUID_STRLEN + 1])
{
	char arn[BUS_ARN_MAX];
	bus_rule_arn(arn, sizeof arn, bus, rule);
	sl_err rc = sl_uuid4(id);
	if (rc)
		return rc;
	json_t *res = json_pack("[s]", arn);
	if (!res)
		return SL_ERR_NOMEM;
	struct bus_envelope_fields f = { .id = id,
		                         .time_ms = slot,
		                         .source = "aws.events",
		                         .detail_type = "Scheduled Event",
		                         .resources = res,
		                         .detail = backfill ? "{\"backfill\":true}" : "{}" };
	char *text = bus_envelope(&f);
	json_decref(res);
	if (!text)
		return SL_ERR_NOMEM;
	rc = bus_publish_to_rule(b, bus, rule, id, text);
	sl_free(text);
	return rc;
}

/*
 * Fires what is due of one schedule record (key k) at now, at most cap slots, in b, and
 * updates memory. *fired counts the slots; *more says slots <= now remain (ALL, capped).
 */
static sl_err
fire_record(struct sched_state *st, store_batch_t *b, const struct store_key *k, int64_t now,
            size_t cap, size_t *fired, bool *more)
{
	store_txn_t *txn = store_batch_txn(b);
	json_t *rec = NULL;
	sl_err rc = bus_get_json(txn, STORE_DB_SCHEDULES, k, &rec);
	if (rc)
		return rc;
	const char *bus = jstr(rec, "bus"), *rule = jstr(rec, "rule");
	sched_t *sc = NULL;
	enum sched_missed policy;
	if (!bus || !rule || (rc = record_sched(rec, &sc, &policy))) {
		sl_warn("schedules", "schedule record of %s/%s is unusable; dropped",
		        bus ? bus : "?", rule ? rule : "?");
		if (bus && rule)
			drop_entry(st, bus, rule);
		rc = store_del(txn, STORE_DB_SCHEDULES, k->buf, k->len);
		json_decref(rec);
		return rc;
	}
	int64_t last = jint(rec, "last", now);
	struct sched_due due = { 0 };
	if ((rc = sched_due(sc, last, now, policy, SCHED_GRACE_MS, cap ? cap : 1, &due)))
		goto out;
	for (size_t i = 0; i < due.n && rc == SL_OK; i++) {
		char id[SL_UUID_STRLEN + 1];
		rc = publish_slot(b, bus, rule, due.slots[i], false, id);
	}
	if (rc)
		goto out;
	int64_t consumed = last, p;
	if (due.n)
		consumed = due.slots[due.n - 1];
	if (!due.more && sched_prev(sc, last, now, &p) == SL_OK && p > consumed)
		consumed = p; /* slots the policy skipped are consumed too */
	int64_t next = 0;
	bool has_next = due.has_next;
	if (has_next)
		next = due.next_ms;
	else if (!due.more)
		has_next = sched_next(sc, consumed, &next) == SL_OK;
	json_object_set_new(rec, "last", json_integer((json_int_t)consumed));
	json_object_set_new(rec, "fired", json_integer(jint(rec, "fired", 0) + (json_int_t)due.n));
	if (due.n)
		json_object_set_new(rec, "lastFired",
		                    json_integer((json_int_t)due.slots[due.n - 1]));
	if (has_next)
		json_object_set_new(rec, "next", json_integer((json_int_t)next));
	else
		json_object_del(rec, "next");
	if ((rc = bus_put_json(txn, STORE_DB_SCHEDULES, k, rec)) == SL_OK)
		rc = set_entry(st, bus, rule, has_next, next);
	*fired += due.n;
	*more = due.more;
	if (due.n > 1) /* a catch-up after downtime is worth a line; a regular fire is not */
		sl_info("schedules", "%s/%s: fired %zu missed slot(s) (%s)", bus, rule, due.n,
		        sched_missed_name(policy));
	else if (due.n)
		sl_debug("schedules", "%s/%s: fired", bus, rule);
out:
	sched_due_release(&due);
	sched_free(sc);
	json_decref(rec);
	return rc;
}

/* Fires every schedule due at now in b, at most limit slots; *more when some remain. */
static sl_err
fire_due(struct sched_state *st, store_batch_t *b, int64_t now, size_t limit, size_t *fired,
         bool *more)
{
	*more = false;
	sl_err rc = SL_OK;
	bool any = false;
	/* collect first: fire_record changes the array */
	size_t n = 0;
	struct due_key {
		struct store_key k;
		char *bus, *rule;
	} *keys = NULL;
	for (size_t i = 0; i < st->n; i++)
		if (st->e[i].has_next && st->e[i].next_ms <= now)
			n++;
	if (!n)
		return SL_OK;
	if (!(keys = sl_reallocarray(NULL, n, sizeof *keys)))
		return SL_ERR_NOMEM;
	size_t nk = 0;
	for (size_t i = 0; i < st->n && rc == SL_OK; i++)
		if (st->e[i].has_next && st->e[i].next_ms <= now) {
			struct due_key *d = &keys[nk++];
			sched_key(&d->k, st->e[i].bus, st->e[i].rule);
			d->bus = sl_strdup(st->e[i].bus);
			d->rule = sl_strdup(st->e[i].rule);
			if (!d->bus || !d->rule)
				rc = SL_ERR_NOMEM;
		}
	for (size_t i = 0; i < nk && rc == SL_OK; i++) {
		if (*fired >= limit) {
			*more = true;
			break;
		}
		bool m = false;
		rc = fire_record(st, b, &keys[i].k, now, limit - *fired, fired, &m);
		if (rc == SL_ERR_NOT_FOUND) {
			/* deleted earlier in this batch: forget it now, or the timer (and
			 * AdvanceClock) would see it due again and again until the commit */
			drop_entry(st, keys[i].bus, keys[i].rule);
			rc = SL_OK;
		}
		*more = *more || m;
		any = true;
	}
	for (size_t i = 0; i < nk; i++) {
		sl_free(keys[i].bus);
		sl_free(keys[i].rule);
	}
	sl_free(keys);
	/* one reload hook per batch is enough */
	if (any && rc == SL_OK && st->hooked_gen != st->srv->batch_gen
	    && (rc = store_batch_on_commit(b, on_fire_commit, st)) == SL_OK)
		st->hooked_gen = st->srv->batch_gen;
	return rc;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct sched_state *st = arg;
	st->armed = INT64_MAX;
	if (st->srv->stopped)
		return;
	store_batch_t *b = NULL;
	size_t fired = 0;
	bool more = false;
	sl_err rc = srv_batch(st->srv, &b);
	if (rc == SL_OK)
		rc = fire_due(st, b, sl_clock_now_ms(), FIRE_SLICE, &fired, &more);
	if (rc != SL_OK) {
		sl_errorf("schedules", "firing schedules: %s", sl_err_message(rc));
		struct timeval tv = { 1, 0 }; /* retry later rather than spin */
		evtimer_add(st->timer_ev, &tv);
		return;
	}
	if (more) {
		struct timeval zero = { 0, 0 };
		evtimer_add(st->timer_ev, &zero);
		return;
	}
	arm(st);
}

/* ---- rules changing ------------------------------------------------------------------- */

struct change {
	struct sched_state *st;
	char *bus, *rule;
	bool remove, has_next;
	int64_t next;
};

static void
on_change_commit(void *arg, sl_err status)
{
	struct change *c = arg;
	if (status == SL_OK) {
		if (c->remove)
			drop_entry(c->st, c->bus, c->rule);
		else if (set_entry(c->st, c->bus, c->rule, c->has_next, c->next) != SL_OK)
			sl_errorf("schedules", "out of memory tracking %s", c->rule);
		arm(c->st);
	}
	sl_free(c->bus);
	sl_free(c->rule);
	sl_free(c);
}

sl_err
srv_schedules_check_fields(json_t *body, const char *schedule, const char **tz, const char **policy,
                           struct sl_error *err)
{
	sl_err rc;
	if ((rc = bus_str_field(body, "ScheduleExpressionTimezone", false, tz, err))
	    || (rc = bus_str_field(body, "MissedRunPolicy", false, policy, err)))
		return rc;
	if ((*tz || *policy) && !schedule)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "ScheduleExpressionTimezone and MissedRunPolicy need a "
		                    "ScheduleExpression.");
	if (*tz) {
		sched_tz_t *z = NULL;
		struct sl_error e2;
		sl_error_clear(&e2);
		rc = sched_tz_open(*tz, &z, &e2);
		sched_tz_free(z);
		if (rc == SL_ERR_NOMEM)
			return rc;
		if (rc)
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "Parameter ScheduleExpressionTimezone is not valid: %s",
			                    sl_error_text(&e2));
	}
	enum sched_missed m;
	if (*policy && sched_missed_parse(*policy, &m, NULL) != SL_OK)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "Parameter MissedRunPolicy is not valid: expected skip, once "
		                    "or all, got '%.64s'.",
		                    *policy);
	return SL_OK;
}

sl_err
srv_schedules_rule_changed(srv_t *s, store_batch_t *b, const char *bus, const char *rule,
                           json_t *rec, struct sl_error *err)
{
	struct sched_state *st = state_of(s);
	if (!st)
		return SL_OK; /* schedules not started (in-process tests of the rules API) */
	store_txn_t *txn = store_batch_txn(b);
	struct store_key k;
	sched_key(&k, bus, rule);
	const char *expr = rec ? jstr(rec, "schedule") : NULL;
	const char *state = rec ? jstr(rec, "state") : NULL;
	bool scheduled = expr && state && strcmp(state, "ENABLED") == 0;
	struct store_val v;
	sl_err grc;
	/* pattern rules (the common case) have nothing to do unless they had a schedule */
	if (!scheduled && !find_entry(st, bus, rule)
	    && (grc = store_get(txn, STORE_DB_SCHEDULES, k.buf, k.len, &v)) != SL_OK)
		return grc == SL_ERR_NOT_FOUND ? SL_OK : grc;
	struct change *c = SL_NEW(struct change);
	if (!c)
		return SL_ERR_NOMEM;
	c->st = st;
	c->bus = sl_strdup(bus);
	c->rule = sl_strdup(rule);
	sl_err rc = c->bus && c->rule ? SL_OK : SL_ERR_NOMEM;
	json_t *old = NULL, *nrec = NULL;
	sched_t *sc = NULL;
	if (rc)
		goto fail;
	if (!scheduled) {
		c->remove = true;
		if ((rc = store_del(txn, STORE_DB_SCHEDULES, k.buf, k.len)))
			goto fail;
	} else {
		const char *tz = jstr(rec, "timezone");
		const char *pol = jstr(rec, "missedRunPolicy");
		int64_t anchor = jint(rec, "created", 0), now = sl_clock_now_ms();
		nrec = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:i}", "bus", bus, "rule", rule,
		                 "expr", expr, "tz", tz ? tz : "UTC", "policy", pol ? pol : "skip",
		                 "anchor", (json_int_t)anchor, "last", (json_int_t)now, "fired", 0);
		if (!nrec) {
			rc = SL_ERR_NOMEM;
			goto fail;
		}
		rc = bus_get_json(txn, STORE_DB_SCHEDULES, &k, &old);
		if (rc == SL_OK
		    && json_equal(json_object_get(old, "expr"), json_object_get(nrec, "expr"))
		    && json_equal(json_object_get(old, "tz"), json_object_get(nrec, "tz"))
		    && json_equal(json_object_get(old, "anchor"),
		                  json_object_get(nrec, "anchor"))) {
			/* the same timetable keeps its progress; a new policy applies from now */
			json_object_set(nrec, "last", json_object_get(old, "last"));
			json_object_set(nrec, "fired", json_object_get(old, "fired"));
			if (json_object_get(old, "lastFired"))
				json_object_set(nrec, "lastFired",
				                json_object_get(old, "lastFired"));
		} else if (rc != SL_OK && rc != SL_ERR_NOT_FOUND) {
			goto fail;
		}
		if ((rc = record_sched(nrec, &sc, NULL))) {
			rc = sl_error_set(err, SL_ERR_INVALID_ARG, "%s", SCHED_INVALID_MESSAGE);
			goto fail;
		}
		int64_t next = 0;
		c->has_next = sched_next(sc, jint(nrec, "last", now), &next) == SL_OK;
		c->next = next;
		if (c->has_next)
			json_object_set_new(nrec, "next", json_integer((json_int_t)next));
		if ((rc = bus_put_json(txn, STORE_DB_SCHEDULES, &k, nrec)))
			goto fail;
	}
	sched_free(sc);
	json_decref(old);
	json_decref(nrec);
	if ((rc = store_batch_on_commit(b, on_change_commit, c))) {
		on_change_commit(c, rc);
		return rc;
	}
	return SL_OK;
fail:
	sched_free(sc);
	json_decref(old);
	json_decref(nrec);
	sl_free(c->bus);
	sl_free(c->rule);
	sl_free(c);
	return rc;
}

/* Every ENABLED schedule rule without a schedule record gets one (data written before
 * schedules fired, or by hand). */
static sl_err
adopt_rules(srv_t *s, store_batch_t *b)
{
	store_txn_t *txn = store_batch_txn(b);
	struct store_key pk;
	store_key_init(&pk);
	store_key_u32(&pk, BUS_TAG_RULE);
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, STORE_DB_RULES, &c);
	if (rc)
		return rc;
	json_t *todo = json_array();
	struct store_val kv, vv;
	if (!todo)
		rc = SL_ERR_NOMEM;
	else if ((rc = store_cursor_seek_prefix(c, pk.buf, pk.len)) == SL_OK)
		while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			json_t *r = json_loadb(vv.data, vv.len, 0, NULL);
			const char *state = jstr(r, "state");
			if (jstr(r, "schedule") && jstr(r, "bus") && jstr(r, "name") && state
			    && strcmp(state, "ENABLED") == 0)
				json_array_append(todo, r);
			json_decref(r);
		}
	store_cursor_close(c);
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
	size_t i;
	json_t *r;
	json_array_foreach(todo, i, r)
	{
		struct store_key k;
		struct store_val v;
		sched_key(&k, jstr(r, "bus"), jstr(r, "name"));
		if (rc || store_get(txn, STORE_DB_SCHEDULES, k.buf, k.len, &v) == SL_OK)
			continue;
		struct sl_error err;
		sl_error_clear(&err);
		rc = srv_schedules_rule_changed(s, b, jstr(r, "bus"), jstr(r, "name"), r, &err);
		if (rc == SL_ERR_INVALID_ARG) {
			sl_warn("schedules", "rule %s: %s; not scheduled", jstr(r, "name"),
			        sl_error_text(&err));
			rc = SL_OK;
		}
	}
	json_decref(todo);
	return rc;
}

/* ---- backfills ------------------------------------------------------------------------ */

static void
backfill_key(struct store_key *k, const char *id)
{
	store_key_init(k);
	store_key_u32(k, SCHED_TAG_BACKFILL);
	if (id)
		store_key_raw(k, id, strlen(id));
}

/* Keeps in *ids (array of event ids) those that still have a delivery record. */
static sl_err
still_outstanding(store_txn_t *txn, json_t *ids, json_t **out)
{
	*out = json_array();
	if (!*out)
		return SL_ERR_NOMEM;
	size_t n = json_array_size(ids);
	if (!n)
		return SL_OK;
	bool *hit = sl_calloc(n, sizeof *hit);
	if (!hit)
		return SL_ERR_NOMEM;
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, STORE_DB_DELIVERIES, &c);
	struct store_val kv, vv;
	size_t seen = 0;
	bool capped = false;
	if (rc == SL_OK && (rc = store_cursor_seek(c, NULL, 0)) == SL_OK)
		while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			if (++seen > BACKFILL_SCAN_MAX) {
				capped = true;
				break;
			}
			/* the event id (a UUID) appears only in records of that event's
			 * deliveries, whatever the record's formatting */
			for (size_t i = 0; i < n; i++) {
				const char *id = json_string_value(json_array_get(ids, i));
				if (!hit[i] && id
				    && memmem(vv.data, vv.len, id, strlen(id)) != NULL)
					hit[i] = true;
			}
		}
	store_cursor_close(c);
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
	for (size_t i = 0; rc == SL_OK && i < n; i++)
		if (hit[i] || capped)
			json_array_append(*out, json_array_get(ids, i));
	sl_free(hit);
	return rc;
}

/* One pacing step of a running backfill (its record rec, key k) in b: forgets slots whose
 * deliveries are gone, fires slots while fewer than max are outstanding. */
static sl_err
backfill_step(store_batch_t *b, const struct store_key *k, json_t *rec, bool *running)
{
	store_txn_t *txn = store_batch_txn(b);
	const char *bus = jstr(rec, "bus"), *rule = jstr(rec, "rule");
	json_t *left = NULL;
	sched_t *sc = NULL;
	sl_err rc = still_outstanding(txn, json_object_get(rec, "outstanding"), &left);
	if (rc)
		goto out;
	size_t max = (size_t)jint(rec, "max", 1);
	int64_t cursor = jint(rec, "cursor", 0), to = jint(rec, "to", 0);
	bool done = json_is_true(json_object_get(rec, "exhausted"));
	if (!done && json_array_size(left) < max) {
		if ((rc = record_sched(rec, &sc, NULL)))
			goto out;
		struct sched_iter it;
		sched_iter_init(&it, sc, cursor + 1, to);
		int64_t slot;
		while (json_array_size(left) < max) {
			if (sched_iter_next(&it, &slot) != SL_OK) {
				done = true;
				break;
			}
			char id[SL_UUID_STRLEN + 1];
			if ((rc = publish_slot(b, bus, rule, slot, true, id)))
				goto out;
			json_array_append_new(left, json_string(id));
			cursor = slot;
			json_object_set_new(rec, "fired", json_integer(jint(rec, "fired", 0) + 1));
		}
		/* the last slot may have been the range's last: look one ahead */
		if (!done && sched_iter_next(&it, &slot) != SL_OK)
			done = true;
	}
	json_object_set_new(rec, "cursor", json_integer((json_int_t)cursor));
	json_object_set_new(rec, "exhausted", json_boolean(done));
	json_object_set(rec, "outstanding", left);
	*running = !(done && json_array_size(left) == 0);
	json_object_set_new(rec, "state", json_string(*running ? "RUNNING" : "COMPLETED"));
	rc = bus_put_json(txn, STORE_DB_SCHEDULES, k, rec);
out:
	sched_free(sc);
	json_decref(left);
	return rc;
}

static void
bf_arm(struct sched_state *st)
{
	struct timeval tv = { 0, BACKFILL_POLL_MS * 1000 };
	if (!evtimer_pending(st->bf_ev, NULL))
		evtimer_add(st->bf_ev, &tv);
}

/* Steps every running backfill in b; *any says whether some still run. */
static sl_err
backfills_step(store_batch_t *b, bool *any)
{
	*any = false;
	store_txn_t *txn = store_batch_txn(b);
	struct store_key pk;
	backfill_key(&pk, NULL);
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, STORE_DB_SCHEDULES, &c);
	if (rc)
		return rc;
	json_t *run = json_array();
	struct store_val kv, vv;
	if (!run)
		rc = SL_ERR_NOMEM;
	else if ((rc = store_cursor_seek_prefix(c, pk.buf, pk.len)) == SL_OK)
		while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			json_t *r = json_loadb(vv.data, vv.len, 0, NULL);
			const char *state = jstr(r, "state");
			if (state && strcmp(state, "RUNNING") == 0)
				json_array_append(run, r);
			json_decref(r);
		}
	store_cursor_close(c);
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
	size_t i;
	json_t *r;
	json_array_foreach(run, i, r)
	{
		struct store_key k;
		bool running = false;
		if (rc || !jstr(r, "id"))
			continue;
		backfill_key(&k, jstr(r, "id"));
		rc = backfill_step(b, &k, r, &running);
		*any = *any || running;
	}
	json_decref(run);
	return rc;
}

static void
on_bf_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct sched_state *st = arg;
	if (st->srv->stopped)
		return;
	store_batch_t *b = NULL;
	bool any = true;
	sl_err rc = srv_batch(st->srv, &b);
	if (rc == SL_OK)
		rc = backfills_step(b, &any);
	if (rc)
		sl_errorf("schedules", "stepping backfills: %s", sl_err_message(rc));
	st->bf_running = any;
	if (any)
		bf_arm(st);
}

/* An API time: RFC 3339 text, or epoch seconds as AWS's JSON timestamps. */
static sl_err
api_time(json_t *body, const char *field, bool required, int64_t *out, struct sl_error *err)
{
	json_t *v = json_object_get(body, field);
	if (!v || json_is_null(v)) {
		if (required)
			return bus_missing(err, field);
		return SL_ERR_NOT_FOUND;
	}
	if (json_is_number(v)) {
		*out = (int64_t)(json_number_value(v) * 1000.0);
		return SL_OK;
	}
	if (json_is_string(v) && sl_clock_parse_rfc3339(json_string_value(v), out))
		return SL_OK;
	return sl_error_set(err, SL_ERR_INVALID_ARG,
	                    "Parameter %s is not valid: expected an RFC 3339 time or epoch "
	                    "seconds.",
	                    field);
}

/* The rule a sluice operation names ("Rule" or "Name", EventBusName?) read from txn. */
static sl_err
named_rule(store_txn_t *txn, json_t *body, const char **rule, char bus[BUS_NAME_MAX + 1],
           json_t **rec, struct sl_error *err)
{
	const char *given;
	sl_err rc;
	if ((rc = bus_str_field(body, "Rule", true, rule, err))
	    || (rc = bus_str_field(body, "EventBusName", false, &given, err))
	    || (rc = bus_resolve_name(given, bus, err)))
		return rc;
	if (!bus_valid_rule_name(*rule) || strlen(*rule) > RULE_NAME_MAX)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "Parameter Rule is not valid.");
	struct store_key k;
	bus_rule_key(&k, BUS_TAG_RULE, bus, *rule);
	if ((rc = bus_get_json(txn, STORE_DB_RULES, &k, rec)) == SL_ERR_NOT_FOUND) {
		if ((rc = bus_require(txn, bus, err)))
			return rc;
		return bus_rule_not_found(err, *rule, bus);
	}
	return rc;
}

static json_t *
time_json(int64_t ms)
{
	char t[32];
	sl_clock_format_rfc3339_s(ms, t);
	return json_string(t);
}

static json_t *
backfill_json(json_t *rec)
{
	json_t *o = json_pack(
	        "{s:O,s:O,s:O,s:O,s:o,s:o,s:O,s:O,s:I}", "BackfillId", json_object_get(rec, "id"),
	        "Rule", json_object_get(rec, "rule"), "EventBusName", json_object_get(rec, "bus"),
	        "State", json_object_get(rec, "state"), "From", time_json(jint(rec, "from", 0)),
	        "To", time_json(jint(rec, "to", 0)), "Slots", json_object_get(rec, "total"),
	        "Fired", json_object_get(rec, "fired"), "Outstanding",
	        (json_int_t)json_array_size(json_object_get(rec, "outstanding")));
	if (o && jint(rec, "fired", 0) > 0)
		json_object_set_new(o, "LastSlot", time_json(jint(rec, "cursor", 0)));
	return o;
}

static void
on_backfill_commit(void *arg, sl_err status)
{
	struct sched_state *st = arg;
	if (status == SL_OK) {
		st->bf_running = true;
		bf_arm(st);
	}
}

static sl_err
op_backfill(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	struct sched_state *st = ctx;
	int64_t from, to;
	sl_err rc;
	if ((rc = api_time(body, "From", true, &from, err))
	    || (rc = api_time(body, "To", true, &to, err)))
		return rc;
	json_t *mc = json_object_get(body, "MaxConcurrency");
	json_int_t max = 1;
	if (mc && !json_is_null(mc)) {
		if (!json_is_integer(mc))
			return sl_error_set(err, SL_ERR_SERIALIZATION,
			                    "Field 'MaxConcurrency': expected an integer");
		max = json_integer_value(mc);
		if (max < 1 || max > BACKFILL_MAX_CONCURRENCY)
			return sl_error_set(
			        err, SL_ERR_INVALID_ARG,
			        "Parameter MaxConcurrency is not valid: expected 1 to %d.",
			        BACKFILL_MAX_CONCURRENCY);
	}
	if (to <= from)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "Parameter To is not valid: it must be after From.");
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	const char *rule;
	char bus[BUS_NAME_MAX + 1];
	json_t *rrec = NULL, *rec = NULL;
	sched_t *sc = NULL;
	if ((rc = named_rule(txn, body, &rule, bus, &rrec, err)))
		return rc;
	const char *expr = jstr(rrec, "schedule"), *tz = jstr(rrec, "timezone");
	if (!expr) {
		json_decref(rrec);
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "Rule %s has no ScheduleExpression: nothing to backfill.",
		                    rule);
	}
	char id[SL_UUID_STRLEN + 1];
	if ((rc = sl_uuid4(id))
	    || !(rec = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:i,s:[],s:s,s:b}", "id",
	                         id, "bus", bus, "rule", rule, "expr", expr, "tz", tz ? tz : "UTC",
	                         "anchor", (json_int_t)jint(rrec, "created", 0), "from",
	                         (json_int_t)from, "to", (json_int_t)to, "cursor",
	                         (json_int_t)(from - 1), "max", max, "fired", 0, "outstanding",
	                         "state", "RUNNING", "exhausted", 0))) {
		json_decref(rrec);
		return rc ? rc : SL_ERR_NOMEM;
	}
	json_decref(rrec);
	if ((rc = record_sched(rec, &sc, NULL)))
		goto out;
	struct sched_iter it;
	sched_iter_init(&it, sc, from, to);
	int64_t slot;
	size_t total = 0;
	while (sched_iter_next(&it, &slot) == SL_OK)
		if (++total > BACKFILL_MAX_SLOTS) {
			rc = sl_error_set(
			        err, SL_ERR_INVALID_ARG,
			        "The range holds more than %d slots: backfill it in parts.",
			        BACKFILL_MAX_SLOTS);
			goto out;
		}
	json_object_set_new(rec, "total", json_integer((json_int_t)total));
	struct store_key k;
	backfill_key(&k, id);
	bool running;
	if ((rc = backfill_step(b, &k, rec, &running))
	    || (running && (rc = store_batch_on_commit(b, on_backfill_commit, st))))
		goto out;
	srv_reply_json(req, backfill_json(rec));
out:
	sched_free(sc);
	json_decref(rec);
	return rc;
}

static sl_err
op_describe_backfill(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *id;
	sl_err rc = bus_str_field(body, "BackfillId", true, &id, err);
	if (rc)
		return rc;
	if (strlen(id) != SL_UUID_STRLEN)
		return sl_error_set(err, SL_ERR_NOT_FOUND, "Backfill %.64s does not exist.", id);
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	struct store_key k;
	backfill_key(&k, id);
	json_t *rec = NULL;
	rc = bus_get_json(txn, STORE_DB_SCHEDULES, &k, &rec);
	store_read_end(txn);
	if (rc == SL_ERR_NOT_FOUND)
		return sl_error_set(err, rc, "Backfill %s does not exist.", id);
	if (rc)
		return rc;
	srv_reply_json(req, backfill_json(rec));
	json_decref(rec);
	return SL_OK;
}

/* ---- read operations ------------------------------------------------------------------ */

static sl_err
op_list_schedules(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *given;
	char bus[BUS_NAME_MAX + 1];
	sl_err rc;
	if ((rc = bus_str_field(body, "EventBusName", false, &given, err))
	    || (rc = bus_resolve_name(given, bus, err)))
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	if ((rc = bus_require(txn, bus, err))) {
		store_read_end(txn);
		return rc;
	}
	json_t *list = json_array();
	struct store_key pk;
	bus_rule_key(&pk, BUS_TAG_RULE, bus, NULL);
	store_cursor_t *c = NULL;
	struct store_val kv, vv;
	if (!list)
		rc = SL_ERR_NOMEM;
	else if ((rc = store_cursor_open(txn, STORE_DB_RULES, &c)) == SL_OK
	         && (rc = store_cursor_seek_prefix(c, pk.buf, pk.len)) == SL_OK)
		while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			json_t *r = json_loadb(vv.data, vv.len, 0, NULL);
			const char *name = jstr(r, "name"), *tz = jstr(r, "timezone");
			const char *pol = jstr(r, "missedRunPolicy");
			if (!jstr(r, "schedule") || !name) {
				json_decref(r);
				continue;
			}
			json_t *o = json_pack(
			        "{s:s,s:s,s:O,s:s,s:s,s:O}", "Name", name, "EventBusName", bus,
			        "ScheduleExpression", json_object_get(r, "schedule"),
			        "ScheduleExpressionTimezone", tz ? tz : "UTC", "MissedRunPolicy",
			        pol ? pol : "skip", "State", json_object_get(r, "state"));
			struct store_key k;
			sched_key(&k, bus, name);
			json_t *srec = NULL;
			if (o && bus_get_json(txn, STORE_DB_SCHEDULES, &k, &srec) == SL_OK) {
				if (json_object_get(srec, "lastFired"))
					json_object_set_new(o, "LastFireTime",
					                    time_json(jint(srec, "lastFired", 0)));
				if (json_object_get(srec, "next"))
					json_object_set_new(o, "NextFireTime",
					                    time_json(jint(srec, "next", 0)));
				json_object_set(o, "Fired", json_object_get(srec, "fired"));
			}
			json_decref(srec);
			json_decref(r);
			if (!o || json_array_append_new(list, o)) {
				rc = SL_ERR_NOMEM;
				break;
			}
		}
	store_cursor_close(c);
	store_read_end(txn);
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
	if (rc) {
		json_decref(list);
		return rc;
	}
	srv_reply_json(req, json_pack("{s:o}", "Schedules", list));
	return SL_OK;
}

/* A bus's log from sequence After (exclusive), for tests and debugging. */
static sl_err
op_list_events(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *given;
	char bus[BUS_NAME_MAX + 1];
	sl_err rc;
	if ((rc = bus_str_field(body, "EventBusName", false, &given, err))
	    || (rc = bus_resolve_name(given, bus, err)))
		return rc;
	json_t *after = json_object_get(body, "After"), *lim = json_object_get(body, "Limit");
	if ((after && !json_is_integer(after)) || (lim && !json_is_integer(lim)))
		return sl_error_set(err, SL_ERR_SERIALIZATION,
		                    "Fields 'After' and 'Limit': expected integers");
	json_int_t a = after ? json_integer_value(after) : 0;
	json_int_t limit = lim ? json_integer_value(lim) : 100;
	if (a < 0 || limit < 1 || limit > LIST_EVENTS_MAX)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "After must be >= 0 and Limit 1 to %d.", LIST_EVENTS_MAX);
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	if ((rc = bus_require(txn, bus, err))) {
		store_read_end(txn);
		return rc;
	}
	struct store_key pk, k;
	store_key_init(&pk);
	store_key_str(&pk, bus);
	k = pk;
	store_key_u64(&k, (uint64_t)a + 1);
	json_t *list = json_array();
	uint64_t last = (uint64_t)a;
	store_cursor_t *c = NULL;
	struct store_val kv, vv;
	if (!list)
		rc = SL_ERR_NOMEM;
	else if ((rc = store_cursor_open(txn, STORE_DB_EVENTS, &c)) == SL_OK
	         && (rc = store_cursor_seek_prefix(c, pk.buf, pk.len)) == SL_OK
	         && (rc = store_cursor_seek(c, k.buf, k.len)) == SL_OK)
		while ((json_int_t)json_array_size(list) < limit
		       && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			if (kv.len != pk.len + 8 || memcmp(kv.data, pk.buf, pk.len) != 0) {
				rc = SL_ERR_NOT_FOUND;
				break;
			}
			last = store_decode_u64((const unsigned char *)kv.data + pk.len);
			json_t *ev = json_loadb(vv.data, vv.len, 0, NULL);
			if (!ev
			    || json_array_append_new(
			            list,
			            json_pack("{s:I,s:o}", "Seq", (json_int_t)last, "Event", ev))) {
				rc = SL_ERR_NOMEM;
				break;
			}
		}
	store_cursor_close(c);
	store_read_end(txn);
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
	if (rc) {
		json_decref(list);
		return rc;
	}
	srv_reply_json(req, json_pack("{s:o,s:I}", "Events", list, "Last", (json_int_t)last));
	return SL_OK;
}

/* ---- the test clock ------------------------------------------------------------------- */

/* Sluice.AdvanceClock {"Seconds": N} or {"To": time}: moves the fake clock forward, firing
 * each schedule slot at its own time on the way (as if that time had passed), then tells
 * the engine its timers may be due. */
static sl_err
op_advance_clock(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	struct sched_state *st = ctx;
	int64_t now = sl_clock_now_ms(), to;
	json_t *secs = json_object_get(body, "Seconds");
	sl_err rc;
	if (secs && !json_is_null(secs)) {
		if (!json_is_number(secs) || json_number_value(secs) < 0
		    || json_number_value(secs) > 1e11)
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "Seconds must be a number from 0 to 1e11.");
		to = now + (int64_t)(json_number_value(secs) * 1000.0);
	} else if ((rc = api_time(body, "To", true, &to, err))) {
		return rc;
	}
	if (to < now)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "The clock only moves forward (now %lld ms, asked %lld ms).",
		                    (long long)now, (long long)to);
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	size_t fired = 0, fired_before = SIZE_MAX;
	int64_t prev_min = INT64_MIN;
	for (;;) {
		int64_t min = INT64_MAX;
		for (size_t i = 0; i < st->n; i++)
			if (st->e[i].has_next && st->e[i].next_ms < min)
				min = st->e[i].next_ms;
		/* stop at the target, at the cap, or if a step changed nothing (a guard) */
		if (min > to || fired >= ADVANCE_MAX_SLOTS
		    || (min == prev_min && fired == fired_before))
			break;
		prev_min = min;
		fired_before = fired;
		if (min > sl_clock_now_ms())
			sl_clock_fake_set(min);
		bool more = false;
		if ((rc = fire_due(st, b, sl_clock_now_ms(), ADVANCE_MAX_SLOTS, &fired, &more)))
			return rc;
	}
	sl_clock_fake_set(to);
	arm(st);
	srv_engine_t *e = srv_engine_of(srv_req_server(req));
	if (e)
		srv_engine_clock_changed(e);
	// retries whose back-off has now passed are due: the deliverer scans after the commit
	srv_deliver_wrote(srv_req_server(req), b);
	if (st->bf_running)
		bf_arm(st);
	char t[32];
	sl_clock_format_rfc3339(to, t);
	srv_reply_json(req,
	               json_pack("{s:s,s:I,s:I}", "Now", t, "NowMs", (json_int_t)to, "FiredSlots",
	                         (json_int_t)fired));
	return SL_OK;
}

/* ---- start-up ------------------------------------------------------------------------- */

sl_err
srv_api_schedules_register(srv_t *s)
{
	struct sched_state *st = SL_NEW(struct sched_state);
	if (!st)
		return SL_ERR_NOMEM;
	st->srv = s;
	st->armed = INT64_MAX;
	st->next = states;
	states = st;
	st->timer_ev = evtimer_new(srv_base(s), on_timer, st);
	st->bf_ev = evtimer_new(srv_base(s), on_bf_timer, st);
	if (!st->timer_ev || !st->bf_ev)
		return SL_ERR_NOMEM;
	event_priority_set(st->timer_ev, SRV_PRIO_NORMAL);
	event_priority_set(st->bf_ev, SRV_PRIO_NORMAL);
	store_batch_t *b = NULL;
	sl_err rc;
	size_t fired = 0;
	bool more = false, bf = false;
	/* downtime: every schedule's missed runs are decided by its policy, in one batch */
	if ((rc = srv_batch(s, &b)) || (rc = load_entries(st, store_batch_txn(b)))
	    || (rc = adopt_rules(s, b)))
		return rc;
	/* adopt_rules' entries arrive by commit callback: load them from the batch now */
	if ((rc = load_entries(st, store_batch_txn(b)))
	    || (rc = fire_due(st, b, sl_clock_now_ms(), FIRE_SLICE, &fired, &more))
	    || (rc = backfills_step(b, &bf)))
		return rc;
	if (fired)
		sl_info("schedules", "fired %zu missed slot(s) at start-up", fired);
	st->bf_running = bf;
	if (bf)
		bf_arm(st);
	if (more) {
		struct timeval zero = { 0, 0 };
		evtimer_add(st->timer_ev, &zero);
	} else {
		arm(st);
	}
	static const struct {
		const char *op;
		srv_op_fn fn;
	} ops[] = {
		{ "SluiceEvents.ListSchedules", op_list_schedules },
		{ "SluiceEvents.BackfillSchedule", op_backfill },
		{ "SluiceEvents.DescribeBackfill", op_describe_backfill },
		{ "SluiceEvents.ListEvents", op_list_events },
	};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if ((rc = srv_register_op(s, ops[i].op, ops[i].fn, st)))
			return rc;
	if (sl_clock_is_fake()) {
		sl_warn("schedules",
		        "virtual time: the wall clock is fake and moves only with "
		        "Sluice.AdvanceClock");
		rc = srv_register_op(s, "Sluice.AdvanceClock", op_advance_clock, st);
	}
	return rc;
}
