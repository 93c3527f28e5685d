/*
 * srv_retention.c - the bus logs' retention: arrival marks and the bounded prune
 * (srv_retention.h, docs/BUS.md "Retention").
 */
#include "server/srv_retention.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_log.h"
#include "server/srv_archives.h"
#include "server/srv_internal.h"

#define MARK_TAG "event-mark"

/* The marks' interval; 0: retention is off and no mark is written. One per process, like
 * the server itself. */
static int64_t mark_ms;

static void
mark_prefix(struct store_key *k, const char *bus)
{
	store_key_init(k);
	store_key_str(k, MARK_TAG);
	if (bus)
		store_key_str(k, bus);
}

sl_err
srv_retention_mark(store_txn_t *txn, const char *bus, uint64_t seq)
{
	if (mark_ms <= 0)
		return SL_OK;
	int64_t now = sl_clock_now_ms();
	int64_t end = (now / mark_ms + 1) * mark_ms;
	struct store_key k, v;
	mark_prefix(&k, bus);
	store_key_i64(&k, end);
	store_key_init(&v);
	store_key_u64(&v, seq);
	store_key_raw(&v, bus, strlen(bus)); /* the key may hold a long name as its hash */
	return store_put(txn, STORE_DB_META, k.buf, k.len, v.buf, v.len);
}

/* ---- the prune ------------------------------------------------------------------------ */

enum phase { P_IDLE, P_DELIVERIES, P_PRUNE };

struct rbus {
	char *bus;
	uint64_t next;    /* the next seq to look at */
	uint64_t horizon; /* this pass: seqs up to here arrived before the cutoff */
	uint64_t pending; /* this pass: the lowest seq a pending delivery refers to */
};

struct retention {
	srv_t *srv;
	int64_t keep_ms;
	int every_s; /* between passes */
	struct event *ev;
	enum phase phase;
	struct rbus *b;
	size_t n, cap, cur;
	unsigned char dkey[STORE_MAX_KEY]; /* the deliveries read so far end at this key */
	size_t dkey_len;
	int64_t restart_at;
	uint64_t pruned, kept;
	struct retention *next;
};

static struct retention *all;

static struct retention *
of(srv_t *s)
{
	for (struct retention *r = all; r; r = r->next)
		if (r->srv == s)
			return r;
	return NULL;
}

static struct rbus *
find(struct retention *r, const char *bus, size_t blen, bool create)
{
	for (size_t i = 0; i < r->n; i++)
		if (strlen(r->b[i].bus) == blen && memcmp(r->b[i].bus, bus, blen) == 0)
			return &r->b[i];
	if (!create)
		return NULL;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		struct rbus *nb = sl_reallocarray(r->b, cap, sizeof *nb);
		if (!nb)
			return NULL;
		r->b = nb;
		r->cap = cap;
	}
	char *name = sl_strndup(bus, blen);
	if (!name)
		return NULL;
	r->b[r->n] = (struct rbus) { name, 0, 0, UINT64_MAX };
	return &r->b[r->n++];
}

sl_err
srv_retention_last_seq(store_txn_t *txn, const char *bus, uint64_t *seq)
{
	struct store_key k;
	store_key_init(&k);
	store_key_str(&k, bus);
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, STORE_DB_EVENTS, &c);
	if (rc)
		return rc;
	struct store_val kv, vv;
	*seq = 0;
	if ((rc = store_cursor_seek_last_prefix(c, k.buf, k.len)) == SL_OK
	    && (rc = store_cursor_prev(c, &kv, &vv)) == SL_OK && kv.len == k.len + 8)
		*seq = store_decode_u64((const unsigned char *)kv.data + k.len);
	store_cursor_close(c);
	return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
}

/* A pass begins: each bus's horizon from its marks (the marks older than the cutoff but the
 * newest of them are deleted: that one alone says where the old events end). Marks are few
 * (about 100 per bus per retention period), so this is one step. */
static sl_err
begin_pass(struct retention *r, store_txn_t *txn)
{
	int64_t now = sl_clock_now_ms(), cutoff = now - r->keep_ms;
	if (now >= r->restart_at) {
		for (size_t i = 0; i < r->n; i++)
			r->b[i].next = 0;
		r->restart_at = now + RETENTION_RESTART_MS;
	}
	for (size_t i = 0; i < r->n; i++) {
		r->b[i].horizon = 0;
		r->b[i].pending = UINT64_MAX;
	}
	struct store_key pk;
	mark_prefix(&pk, NULL);
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, STORE_DB_META, &c);
	if (rc)
		return rc;
	struct store_val kv, vv;
	struct rbus *prev_bus = NULL;
	unsigned char prev_key[STORE_MAX_KEY];
	size_t prev_len = 0;
	if ((rc = store_cursor_seek_prefix(c, pk.buf, pk.len)) == SL_OK)
		while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			if (kv.len < pk.len + 9 || vv.len <= 8)
				continue; /* not a mark */
			int64_t end = store_decode_i64((const char *)kv.data + kv.len - 8);
			if (end > cutoff)
				continue;
			struct rbus *rb = find(r, (const char *)vv.data + 8, vv.len - 8, true);
			if (!rb) {
				rc = SL_ERR_NOMEM;
				break;
			}
			/* an older mark of the same bus is superseded by this one */
			if (prev_bus == rb
			    && (rc = store_del(txn, STORE_DB_META, prev_key, prev_len)))
				break;
			rb->horizon = store_decode_u64(vv.data);
			prev_bus = rb;
			prev_len = kv.len;
			memcpy(prev_key, kv.data, kv.len);
		}
	store_cursor_close(c);
	if (rc != SL_ERR_NOT_FOUND && rc != SL_OK)
		return rc;
	for (size_t i = 0; i < r->n; i++) {
		uint64_t last;
		if ((rc = srv_retention_last_seq(txn, r->b[i].bus, &last)))
			return rc;
		if (r->b[i].horizon >= last) /* the last event stays: seqs are not reused */
			r->b[i].horizon = last ? last - 1 : 0;
	}
	r->dkey_len = 0;
	r->cur = 0;
	return SL_OK;
}

/* Up to RETENTION_SLICE pending deliveries: the lowest seq each bus's records refer to.
 * *done when all were read. A record written meanwhile is for an event appended after the
 * horizon was taken, or a retry moved to a later key (read again, or for the first time). */
static sl_err
read_deliveries(struct retention *r, store_txn_t *txn, bool *done)
{
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, STORE_DB_DELIVERIES, &c);
	if (rc)
		return rc;
	struct store_val kv, vv;
	size_t n = 0;
	rc = store_cursor_seek(c, r->dkey_len ? r->dkey : NULL, r->dkey_len);
	while (rc == SL_OK && n < RETENTION_SLICE
	       && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
		if (r->dkey_len && kv.len == r->dkey_len && memcmp(kv.data, r->dkey, kv.len) == 0)
			continue; /* where the last slice stopped */
		n++;
		memcpy(r->dkey, kv.data, kv.len);
		r->dkey_len = kv.len;
		json_t *d = json_loadb(vv.data, vv.len, 0, NULL);
		const char *bus = json_string_value(json_object_get(d, "bus"));
		json_t *seq = json_object_get(d, "seq");
		struct rbus *rb
		        = bus && json_is_integer(seq) ? find(r, bus, strlen(bus), false) : NULL;
		if (rb && (uint64_t)json_integer_value(seq) < rb->pending)
			rb->pending = (uint64_t)json_integer_value(seq);
		json_decref(d);
	}
	store_cursor_close(c);
	*done = rc == SL_ERR_NOT_FOUND;
	return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
}

/* Deletes up to *budget old, unneeded events of rb. *done when rb has nothing left. */
static sl_err
prune_bus(struct retention *r, store_txn_t *txn, struct rbus *rb, size_t *budget, bool *done)
{
	uint64_t limit = rb->horizon;
	if (rb->pending != UINT64_MAX && rb->pending <= limit)
		limit = rb->pending ? rb->pending - 1 : 0;
	*done = true;
	if (rb->next > limit)
		return SL_OK;
	struct store_key pk, k;
	store_key_init(&pk);
	store_key_str(&pk, rb->bus);
	k = pk;
	store_key_u64(&k, rb->next);
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, STORE_DB_EVENTS, &c);
	if (rc)
		return rc;
	struct store_val kv, vv;
	if ((rc = store_cursor_seek_prefix(c, pk.buf, pk.len)) == SL_OK
	    && (rc = store_cursor_seek(c, k.buf, k.len)) == SL_OK)
		while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			if (kv.len != pk.len + 8)
				continue;
			uint64_t seq = store_decode_u64((const unsigned char *)kv.data + pk.len);
			if (seq > limit) {
				rb->next = seq;
				break;
			}
			if (*budget == 0) {
				*done = false;
				break;
			}
			(*budget)--;
			bool held = false;
			if ((rc = srv_archives_holds(txn, rb->bus, seq, vv.data, vv.len, &held)))
				break;
			if (held)
				r->kept++;
			else if ((rc = store_cursor_del(c)) == SL_OK)
				r->pruned++;
			else
				break;
			rb->next = seq + 1;
		}
	store_cursor_close(c);
	if (rc == SL_ERR_NOT_FOUND) {
		rb->next = limit + 1;
		rc = SL_OK;
	}
	return rc;
}

/* One slice of the pass; *more when another should follow at once. */
static sl_err
step(struct retention *r, store_batch_t *b, bool *more)
{
	store_txn_t *txn = store_batch_txn(b);
	sl_err rc = SL_OK;
	*more = true;
	switch (r->phase) {
	case P_IDLE:
		if ((rc = begin_pass(r, txn)) == SL_OK)
			r->phase = P_DELIVERIES;
		break;
	case P_DELIVERIES: {
		bool done = false;
		if ((rc = read_deliveries(r, txn, &done)) == SL_OK && done)
			r->phase = P_PRUNE;
		break;
	}
	case P_PRUNE: {
		size_t budget = RETENTION_SLICE;
		while (rc == SL_OK && budget && r->cur < r->n) {
			bool done = false;
			if ((rc = prune_bus(r, txn, &r->b[r->cur], &budget, &done)) == SL_OK
			    && done)
				r->cur++;
		}
		if (rc == SL_OK && r->cur >= r->n) {
			r->phase = P_IDLE;
			*more = false;
		}
		break;
	}
	}
	return rc;
}

/* A slice's counts, added to the metrics once its batch has committed: a reader that sees
 * them then finds the events gone (counted at once, /metrics ran ahead of the store). */
struct pending {
	srv_t *srv;
	uint64_t pruned, kept;
};

static void
on_slice_commit(void *arg, sl_err status)
{
	struct pending *pc = arg;
	struct retention *r = of(pc->srv); /* NULL once freed at shutdown */
	if (status == SL_OK && r) {
		r->pruned += pc->pruned;
		r->kept += pc->kept;
	}
	sl_free(pc);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct retention *r = arg;
	if (r->srv->stopped)
		return;
	store_batch_t *b;
	bool more = false;
	sl_err rc = srv_batch(r->srv, &b);
	uint64_t pruned0 = r->pruned, kept0 = r->kept;
	if (rc == SL_OK)
		rc = step(r, b, &more);
	struct pending *pc = NULL;
	if (r->pruned != pruned0 || r->kept != kept0)
		pc = SL_NEW(struct pending);
	if (pc) {
		pc->srv = r->srv;
		pc->pruned = r->pruned - pruned0;
		pc->kept = r->kept - kept0;
		if (store_batch_on_commit(b, on_slice_commit, pc) == SL_OK) {
			r->pruned = pruned0;
			r->kept = kept0;
		} else {
			sl_free(pc); /* counted at once, as when out of memory */
		}
	}
	if (rc) {
		sl_errorf("retention", "event log prune: %s", sl_err_message(rc));
		r->phase = P_IDLE; /* the batch may not commit: start the pass again later */
		more = false;
	}
	struct timeval tv = { more ? 0 : r->every_s, 0 };
	evtimer_add(r->ev, &tv);
}

sl_err
srv_retention_start(srv_t *s)
{
	int64_t keep_s = s->cfg.event_retention_s;
	if (keep_s <= 0) {
		mark_ms = 0;
		sl_info("retention", "bus logs are kept indefinitely (--event-retention 0)");
		return SL_OK;
	}
	struct retention *r = SL_NEW(struct retention);
	if (!r)
		return SL_ERR_NOMEM;
	/* like the bus state: no teardown hook, kept reachable for the process */
	r->srv = s;
	r->keep_ms = keep_s * 1000;
	/* on the fake clock (tests) a pass follows Sluice.AdvanceClock within a second */
	r->every_s = s->cfg.virtual_time ? 1 : RETENTION_EVERY_S;
	r->next = all;
	all = r;
	mark_ms = r->keep_ms / 100;
	if (mark_ms < RETENTION_MARK_MIN_MS)
		mark_ms = RETENTION_MARK_MIN_MS;
	if (mark_ms > RETENTION_MARK_MAX_MS)
		mark_ms = RETENTION_MARK_MAX_MS;
	r->ev = evtimer_new(srv_base(s), on_tick, r);
	if (!r->ev)
		return SL_ERR_NOMEM;
	event_priority_set(r->ev, SRV_PRIO_NORMAL);
	struct timeval zero = { 0, 0 };
	evtimer_add(r->ev, &zero);
	return SL_OK;
}

sl_err
srv_retention_metrics(srv_t *s, struct evbuffer *out)
{
	struct retention *r = of(s);
	if (evbuffer_add_printf(out,
	                        "# HELP sluice_events_pruned_total Events deleted from the bus "
	                        "logs by the retention.\n"
	                        "# TYPE sluice_events_pruned_total counter\n"
	                        "sluice_events_pruned_total %" PRIu64 "\n"
	                        "# HELP sluice_events_kept_total Events past the retention kept "
	                        "because an archive holds them (counted per pass).\n"
	                        "# TYPE sluice_events_kept_total counter\n"
	                        "sluice_events_kept_total %" PRIu64 "\n",
	                        r ? r->pruned : 0, r ? r->kept : 0)
	    < 0)
		return SL_ERR_NOMEM;
	return SL_OK;
}
