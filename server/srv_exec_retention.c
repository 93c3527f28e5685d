/*
 * srv_exec_retention.c - closed executions expire: the loop's slices of step_prune and of
 * the EXPRESS records' prune (srv_exec_retention.h).
 */
#include "server/srv_exec_retention.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_log.h"
#include "server/srv_internal.h"
#include "stepper/stepper.h"

struct srv_exec_retention {
	srv_t *srv;
	step_engine_t *step;
	int64_t keep_ms;
	int every_s;
	struct event *ev;
	bool indexed; /* the one-time scan of older data is done */
	struct step_prune_stats stats;
	uint64_t express;
	struct srv_exec_retention *next;
};

/* Like the server itself, one per process in practice; a list so /metrics finds it. */
static struct srv_exec_retention *all;

static struct srv_exec_retention *
of(srv_t *s)
{
	for (struct srv_exec_retention *r = all; r; r = r->next)
		if (r->srv == s)
			return r;
	return NULL;
}

/* Up to *budget EXPRESS records ended before before_ms; *more when the budget ran out. */
static sl_err
prune_express(uint64_t *pruned, store_txn_t *txn, int64_t before_ms, size_t *budget, bool *more)
{
	struct store_key pk;
	store_key_init(&pk);
	store_key_str(&pk, EXEC_RETENTION_XOWNER);
	store_cursor_t *c = NULL;
	sl_err rc = store_cursor_open(txn, STORE_DB_CLOSED, &c);
	if (rc != SL_OK)
		return rc;
	struct store_val k, v;
	rc = store_cursor_seek_prefix(c, pk.buf, pk.len);
	while (rc == SL_OK && (rc = store_cursor_next(c, &k, &v)) == SL_OK) {
		if (*budget < 3) {
			*more = true;
			break;
		}
		size_t alen = k.len - pk.len - 8;
		if (k.len >= pk.len + 9 && alen < STEP_ARN_MAX) {
			if (store_decode_i64((const unsigned char *)k.data + pk.len) >= before_ms)
				break; // in stop order: the rest is younger
			char arn[STEP_ARN_MAX];
			memcpy(arn, (const char *)k.data + pk.len + 8, alen);
			arn[alen] = 0;
			if ((rc = srv_express_drop_record(txn, arn)) != SL_OK)
				break;
			(*pruned)++;
			*budget -= 2;
		}
		rc = store_cursor_del(c);
		(*budget)--;
	}
	store_cursor_close(c);
	return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
}

/* A slice's counts, added to the metrics once its batch has committed: a reader that sees
 * them then finds the executions gone (counted at once, /metrics ran ahead of the store). */
struct pending {
	srv_t *srv;
	struct step_prune_stats stats;
	uint64_t express;
};

static void
on_slice_commit(void *arg, sl_err status)
{
	struct pending *pc = arg;
	struct srv_exec_retention *r = of(pc->srv); /* NULL once freed at shutdown */
	if (status == SL_OK && r) {
		r->stats.executions += pc->stats.executions;
		r->stats.children += pc->stats.children;
		r->stats.map_runs += pc->stats.map_runs;
		r->stats.records += pc->stats.records;
		r->express += pc->express;
	}
	sl_free(pc);
}

/* One slice; *more when another should follow at once. */
static sl_err
slice(struct srv_exec_retention *r, store_batch_t *b, bool *more, struct sl_error *err)
{
	*more = false;
	if (!r->indexed) {
		size_t n = 0, nx = 0;
		sl_err rc = step_prune_backfill(r->step, b, &n, err);
		if (rc == SL_OK)
			rc = srv_express_index_closed(store_batch_txn(b), &nx);
		if (rc != SL_OK)
			return rc;
		if (nx)
			sl_info("retention",
			        "indexed %zu ended EXPRESS records written before the index", nx);
		r->indexed = true;
		*more = true;
		return SL_OK;
	}
	int64_t before = sl_clock_now_ms() - r->keep_ms;
	bool more_x = false;
	struct pending *pc = SL_NEW(struct pending);
	if (!pc)
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	pc->srv = r->srv;
	sl_err rc = store_batch_on_commit(b, on_slice_commit, pc);
	if (rc != SL_OK) {
		sl_free(pc);
		return rc;
	}
	rc = step_prune(r->step, b, before, EXEC_RETENTION_SLICE, &pc->stats, more, err);
	size_t budget = EXEC_RETENTION_SLICE;
	if (rc == SL_OK && !*more)
		rc = prune_express(&pc->express, store_batch_txn(b), before, &budget, &more_x);
	*more = *more || more_x;
	return rc;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct srv_exec_retention *r = arg;
	if (r->srv->stopped)
		return;
	store_batch_t *b;
	bool more = false;
	struct sl_error err;
	sl_error_clear(&err);
	sl_err rc = srv_batch(r->srv, &b);
	if (rc == SL_OK)
		rc = slice(r, b, &more, &err);
	if (rc != SL_OK) {
		sl_errorf("retention", "execution prune: %s",
		          err.code != SL_OK ? sl_error_text(&err) : sl_err_message(rc));
		more = false; // tried again at the next tick: every step is found again
	}
	struct timeval tv = { more ? 0 : r->every_s, 0 };
	evtimer_add(r->ev, &tv);
}

sl_err
srv_exec_retention_start(srv_t *s, srv_engine_t *e, srv_exec_retention_t **out,
                         struct sl_error *err)
{
	*out = NULL;
	int64_t keep_s = s->cfg.execution_retention_s;
	if (keep_s <= 0) {
		sl_info("retention",
		        "closed executions are kept indefinitely (--execution-retention 0)");
		return SL_OK;
	}
	struct srv_exec_retention *r = SL_NEW(struct srv_exec_retention);
	if (!r)
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	r->srv = s;
	r->step = srv_engine_stepper(e);
	r->keep_ms = keep_s * 1000;
	// on the fake clock (tests) a pass follows Sluice.AdvanceClock within a second
	r->every_s = s->cfg.virtual_time ? 1 : EXEC_RETENTION_EVERY_S;
	if (!(r->ev = evtimer_new(srv_base(s), on_tick, r))) {
		sl_free(r);
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	}
	event_priority_set(r->ev, SRV_PRIO_NORMAL);
	r->next = all;
	all = r;
	struct timeval zero = { 0, 0 };
	evtimer_add(r->ev, &zero);
	*out = r;
	return SL_OK;
}

void
srv_exec_retention_free(srv_exec_retention_t *r)
{
	if (!r)
		return;
	for (struct srv_exec_retention **p = &all; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	event_free(r->ev);
	sl_free(r);
}

sl_err
srv_exec_retention_metrics(srv_t *s, struct evbuffer *out)
{
	struct srv_exec_retention *r = of(s);
	struct step_prune_stats z = { 0 };
	const struct step_prune_stats *st = r ? &r->stats : &z;
	if (evbuffer_add_printf(
	            out,
	            "# HELP sluice_executions_pruned_total Closed executions deleted by the "
	            "execution retention.\n"
	            "# TYPE sluice_executions_pruned_total counter\n"
	            "sluice_executions_pruned_total %" PRIu64 "\n"
	            "# HELP sluice_map_run_children_pruned_total Map run child executions "
	            "deleted with their parent.\n"
	            "# TYPE sluice_map_run_children_pruned_total counter\n"
	            "sluice_map_run_children_pruned_total %" PRIu64 "\n"
	            "# HELP sluice_map_runs_pruned_total Map runs deleted with their parent.\n"
	            "# TYPE sluice_map_runs_pruned_total counter\n"
	            "sluice_map_runs_pruned_total %" PRIu64 "\n"
	            "# HELP sluice_execution_records_pruned_total Store records deleted by the "
	            "execution retention.\n"
	            "# TYPE sluice_execution_records_pruned_total counter\n"
	            "sluice_execution_records_pruned_total %" PRIu64 "\n"
	            "# HELP sluice_express_records_pruned_total Ended EXPRESS execution records "
	            "deleted by the execution retention.\n"
	            "# TYPE sluice_express_records_pruned_total counter\n"
	            "sluice_express_records_pruned_total %" PRIu64 "\n",
	            st->executions, st->children, st->map_runs, st->records, r ? r->express : 0)
	    < 0)
		return SL_ERR_NOMEM;
	return SL_OK;
}
