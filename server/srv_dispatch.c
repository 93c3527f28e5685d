/*
 * srv_dispatch.c - queues of tasks for workers, waiting polls, leases (see srv_dispatch.h),
 * and GetActivityTask.
 *
 * Tokens live in one hash table whatever their state: queued (in their name's FIFO),
 * leased (handed out, in the lease list) or ended (a leased token the store no longer
 * awaits, kept a while so a late result is told TaskTimedOut). A forgotten queued token
 * leaves the table at once and its queue node is dropped when it reaches the front.
 *
 * Commit callbacks (offers, leases) only change memory and activate the match event: they
 * may run in the middle of a srv_batch call that committed a full batch.
 */
#include "server/srv_dispatch.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_log.h"
#include "server/srv_engine.h"
#include "server/srv_internal.h"

#define TOKEN_BUCKETS   65536
#define NAME_BUCKETS    1024
#define SWEEP_EVERY_S   10
#define ENDED_KEEP_MS   (10 * 60 * 1000)
#define NAME_MAX_LEN    256
#define WORKER_MAX_LEN  256
#define RESCAN_LOW_MARK (SRV_DISPATCH_QUEUE_CAP / 2)

enum tstate { T_QUEUED, T_LEASED, T_ENDED };

struct dq;

struct tent {
	char token[STEP_TOKEN_LEN + 1];
	enum tstate st;
	bool dead;          /* queued node of a forgotten token (no longer in the table) */
	bool lambda_invoke; /* arn:aws:states:::lambda:invoke: the worker gets Payload */
	struct dq *q;
	struct tent *hnext, *qnext;
	struct tent *lprev, *lnext;
	int64_t at_ms;
};

struct dq {
	char *name;
	struct tent *head, *tail;
	size_t n; /* nodes, forgotten ones included */
	/* for /metrics: live tokens queued and leased now, and totals */
	size_t queued, leased;
	uint64_t handed_out, timed_out;
	struct dq *hnext;
};

struct got {
	char token[STEP_TOKEN_LEN + 1];
	const char *name;
	json_t *input;
	int64_t timeout_s, heartbeat_s;
	bool lambda_invoke;
};

struct srv_dispatch_poll {
	srv_dispatch_t *d;
	char **names;
	size_t n_names;
	unsigned max;
	char *worker;
	srv_req_t *http_req;
	srv_dispatch_answer_fn fn;
	void *arg;
	struct event *deadline;
	struct srv_dispatch_poll *prev, *next;
	bool waiting;
	struct got *got;
	size_t n_got;
};

struct offer {
	srv_dispatch_t *d;
	char token[STEP_TOKEN_LEN + 1];
	char *name;
	bool lambda_invoke;
};

struct srv_dispatch {
	srv_t *srv;
	step_engine_t *eng;
	const struct step_effects *fx;
	struct tent *tokens[TOKEN_BUCKETS];
	struct dq *names[NAME_BUCKETS];
	struct tent *leases; /* leased and ended entries, newest first */
	struct srv_dispatch_poll *wait_head, *wait_tail;
	size_t n_waiting;
	struct event *match_ev, *sweep_ev;
	unsigned pending_cbs; /* commit callbacks that still point here */
	bool stopping, freed, overflow_logged, need_rescan;
	struct srv_dispatch_stats stats;
	srv_dispatch_t *next;
};

static srv_dispatch_t *dispatchers;

srv_dispatch_t *
srv_dispatch_of(srv_t *s)
{
	for (srv_dispatch_t *d = dispatchers; d; d = d->next)
		if (d->srv == s)
			return d;
	return NULL;
}

/* ---- tables --------------------------------------------------------------------------- */

static uint32_t
hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct tent *
tok_find(srv_dispatch_t *d, const char *token)
{
	for (struct tent *e = d->tokens[hash(token) % TOKEN_BUCKETS]; e; e = e->hnext)
		if (strcmp(e->token, token) == 0)
			return e;
	return NULL;
}

static void
tok_unhash(srv_dispatch_t *d, struct tent *e)
{
	for (struct tent **p = &d->tokens[hash(e->token) % TOKEN_BUCKETS]; *p; p = &(*p)->hnext)
		if (*p == e) {
			*p = e->hnext;
			e->hnext = NULL;
			return;
		}
}

static void
lease_unlink(srv_dispatch_t *d, struct tent *e)
{
	if (e->lprev)
		e->lprev->lnext = e->lnext;
	else if (d->leases == e)
		d->leases = e->lnext;
	if (e->lnext)
		e->lnext->lprev = e->lprev;
	e->lprev = e->lnext = NULL;
}

static void
lease_link(srv_dispatch_t *d, struct tent *e)
{
	e->lprev = NULL;
	e->lnext = d->leases;
	if (d->leases)
		d->leases->lprev = e;
	d->leases = e;
}

/* Removes a leased or ended entry completely. */
static void
lease_drop(srv_dispatch_t *d, struct tent *e)
{
	if (e->st == T_LEASED) {
		d->stats.leased--;
		e->q->leased--;
	}
	tok_unhash(d, e);
	lease_unlink(d, e);
	sl_free(e);
}

static struct dq *
queue_get(srv_dispatch_t *d, const char *name, bool create)
{
	uint32_t b = hash(name) % NAME_BUCKETS;
	for (struct dq *q = d->names[b]; q; q = q->hnext)
		if (strcmp(q->name, name) == 0)
			return q;
	if (!create)
		return NULL;
	struct dq *q = SL_NEW(struct dq);
	if (!q || !(q->name = sl_strdup(name))) {
		sl_free(q);
		return NULL;
	}
	q->hnext = d->names[b];
	d->names[b] = q;
	return q;
}

static void
queue_push(struct dq *q, struct tent *e, bool front)
{
	e->q = q;
	e->qnext = NULL;
	if (!q->head) {
		q->head = q->tail = e;
	} else if (front) {
		e->qnext = q->head;
		q->head = e;
	} else {
		q->tail->qnext = e;
		q->tail = e;
	}
	q->n++;
}

/* The front live entry of q, dropping forgotten ones; NULL when empty. */
static struct tent *
queue_pop(srv_dispatch_t *d, struct dq *q)
{
	(void)d;
	while (q->head) {
		struct tent *e = q->head;
		q->head = e->qnext;
		if (!q->head)
			q->tail = NULL;
		q->n--;
		e->qnext = NULL;
		if (!e->dead)
			return e;
		sl_free(e);
	}
	return NULL;
}

/* Queues a token under name. false when over the cap (the store keeps it). */
static bool
enqueue(srv_dispatch_t *d, const char *token, const char *name, bool lambda_invoke)
{
	if (tok_find(d, token))
		return true; /* queued or leased already */
	if (d->stats.queued >= SRV_DISPATCH_QUEUE_CAP) {
		d->stats.overflowed++;
		d->need_rescan = true;
		if (!d->overflow_logged)
			sl_warn("dispatch",
			        "more than %d tasks wait for workers: the rest stay in the store "
			        "and are queued again when the queues drain",
			        SRV_DISPATCH_QUEUE_CAP);
		d->overflow_logged = true;
		return false;
	}
	struct dq *q = queue_get(d, name, true);
	struct tent *e = q ? SL_NEW(struct tent) : NULL;
	if (!e) {
		d->need_rescan = true;
		sl_errorf("dispatch", "out of memory queueing a task for '%s'", name);
		return false;
	}
	snprintf(e->token, sizeof e->token, "%s", token);
	e->st = T_QUEUED;
	e->lambda_invoke = lambda_invoke;
	uint32_t b = hash(token) % TOKEN_BUCKETS;
	e->hnext = d->tokens[b];
	d->tokens[b] = e;
	queue_push(q, e, false);
	q->queued++;
	d->stats.queued++;
	return true;
}

static void
kick(srv_dispatch_t *d)
{
	if (d->match_ev && !d->freed)
		event_active(d->match_ev, EV_TIMEOUT, 0);
}

/* ---- what a task is called ------------------------------------------------------------ */

/* The queue of a task: the activity or function name; for lambda:invoke the FunctionName
 * (a name, a partial or full ARN; a qualifier is dropped); else the resource as written. */
static void
queue_name(const struct step_task *t, char *out, size_t cap, bool *lambda_invoke)
{
	*lambda_invoke = false;
	if ((t->kind == SM_RESOURCE_ACTIVITY || t->kind == SM_RESOURCE_LAMBDA) && t->name) {
		snprintf(out, cap, "%s", t->name);
		return;
	}
	if (t->kind == SM_RESOURCE_SERVICE && t->name && strcmp(t->name, "lambda") == 0 && t->action
	    && strcmp(t->action, "invoke") == 0) {
		const char *fn = json_string_value(json_object_get(t->input, "FunctionName"));
		if (fn && fn[0]) {
			const char *p = strstr(fn, ":function:");
			if (p)
				fn = p + strlen(":function:");
			size_t n = strcspn(fn, ":");
			snprintf(out, cap, "%.*s", (int)n, fn);
			*lambda_invoke = true;
			return;
		}
	}
	snprintf(out, cap, "%s", t->resource ? t->resource : "");
}

/* ---- offers --------------------------------------------------------------------------- */

static void dispatch_release(srv_dispatch_t *d);

static void
on_offer_commit(void *arg, sl_err status)
{
	struct offer *o = arg;
	srv_dispatch_t *d = o->d;
	d->pending_cbs--;
	if (status == SL_OK && !d->freed) {
		enqueue(d, o->token, o->name, o->lambda_invoke);
		kick(d);
	}
	sl_free(o->name);
	sl_free(o);
	if (d->freed)
		dispatch_release(d);
}

void
srv_dispatch_task_effect(srv_dispatch_t *d, const struct step_task *t)
{
	char name[NAME_MAX_LEN + 1];
	bool li;
	queue_name(t, name, sizeof name, &li);
	store_batch_t *b = store_batch_current(srv_store(d->srv));
	if (!b) { /* not from a batch: the record is committed already */
		if (enqueue(d, t->token, name, li))
			kick(d);
		return;
	}
	struct offer *o = SL_NEW(struct offer);
	if (o && !(o->name = sl_strdup(name))) {
		sl_free(o);
		o = NULL;
	}
	if (o) {
		o->d = d;
		o->lambda_invoke = li;
		snprintf(o->token, sizeof o->token, "%s", t->token);
	}
	if (!o || store_batch_on_commit(b, on_offer_commit, o) != SL_OK) {
		if (o) {
			sl_free(o->name);
			sl_free(o);
		}
		d->need_rescan = true; /* found again from the store */
		sl_errorf("dispatch", "cannot queue task %s: will rescan the store", t->token);
		return;
	}
	d->pending_cbs++;
}

void
srv_dispatch_task_replayed(srv_dispatch_t *d, const struct step_task *t)
{
	store_batch_t *b = store_batch_current(srv_store(d->srv));
	struct step_task_info info;
	// a task a worker took before the restart keeps its lease: heartbeat and timeout decide
	if (b && srv_engine_task_info(d->srv, store_batch_txn(b), t->token, &info) == SL_OK
	    && info.state != STEP_TASK_WAITING)
		return;
	char name[NAME_MAX_LEN + 1];
	bool li;
	queue_name(t, name, sizeof name, &li);
	if (enqueue(d, t->token, name, li))
		kick(d);
}

/* ---- hand-out ------------------------------------------------------------------------- */

static void
poll_unwait(srv_dispatch_t *d, srv_dispatch_poll_t *p)
{
	if (!p->waiting)
		return;
	if (p->prev)
		p->prev->next = p->next;
	else
		d->wait_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		d->wait_tail = p->prev;
	p->prev = p->next = NULL;
	p->waiting = false;
	d->n_waiting--;
	if (p->deadline)
		evtimer_del(p->deadline);
}

static void
poll_free(srv_dispatch_poll_t *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_got; i++)
		json_decref(p->got[i].input);
	for (size_t i = 0; i < p->n_names; i++)
		sl_free(p->names[i]);
	sl_free(p->names);
	sl_free(p->got);
	sl_free(p->worker);
	if (p->deadline)
		event_free(p->deadline);
	sl_free(p);
}

static void
answer(srv_dispatch_poll_t *p, sl_err status)
{
	struct srv_dispatch_task tasks[64];
	size_t n = p->n_got < 64 ? p->n_got : 64;
	for (size_t i = 0; i < n; i++)
		tasks[i]
		        = (struct srv_dispatch_task) { .token = p->got[i].token,
			                               .name = p->got[i].name,
			                               .input = p->got[i].input,
			                               .timeout_seconds = p->got[i].timeout_s,
			                               .heartbeat_seconds = p->got[i].heartbeat_s };
	if (p->fn)
		p->fn(p->arg, status, tasks, status == SL_OK ? n : 0);
}

static void
on_lease_commit(void *arg, sl_err status)
{
	srv_dispatch_poll_t *p = arg;
	srv_dispatch_t *d = p->d;
	d->pending_cbs--;
	if (status != SL_OK && !d->freed) {
		// nothing of the lease is in the store: the tasks go back to the front
		sl_warn("dispatch", "a lease could not be committed (%s): %zu task(s) queued again",
		        sl_err_message(status), p->n_got);
		for (size_t i = p->n_got; i-- > 0;) {
			struct tent *e = tok_find(d, p->got[i].token);
			if (!e || e->st != T_LEASED)
				continue;
			lease_unlink(d, e);
			d->stats.leased--;
			e->q->leased--;
			e->st = T_QUEUED;
			struct dq *q = queue_get(d, p->got[i].name, true);
			if (!q) {
				lease_drop(d, e);
				d->need_rescan = true;
				continue;
			}
			queue_push(q, e, true);
			q->queued++;
			d->stats.queued++;
		}
		kick(d);
	}
	if (!p->http_req) /* an HTTP poll was answered already; its reply waits for this */
		answer(p, status);
	poll_free(p);
	if (d->freed)
		dispatch_release(d);
}

/* The payload a worker gets: lambda:invoke's Payload (or {}), else the whole input. */
static json_t *
worker_input(json_t *in, bool lambda_invoke)
{
	if (!lambda_invoke)
		return json_incref(in);
	json_t *p = json_object_get(in, "Payload");
	return p ? json_incref(p) : json_object();
}

/* Leases one queued entry to p in batch b. true when p got it; the entry is dropped when
 * its task is no longer awaited. A store error puts it back and returns false. */
static bool
hand_out(srv_dispatch_t *d, srv_dispatch_poll_t *p, store_batch_t *b, struct tent *e,
         bool *store_failed)
{
	struct step_started st;
	struct sl_error err;
	sl_error_clear(&err);
	sl_err rc = store_savepoint_begin(b);
	if (rc == SL_OK) {
		rc = srv_engine_task_started(d->srv, b, e->token, p->worker, &st, &err);
		if (rc == SL_OK && (rc = store_savepoint_release(b)) != SL_OK)
			json_decref(st.input);
		else if (rc != SL_OK)
			store_savepoint_rollback(b);
	}
	if (rc == SL_ERR_TASK_NOT_FOUND || rc == SL_ERR_CONFLICT || rc == SL_ERR_INVALID_TOKEN) {
		d->stats.queued--;
		e->q->queued--;
		d->stats.dropped_stale++;
		tok_unhash(d, e);
		sl_free(e);
		return false;
	}
	if (rc != SL_OK) {
		sl_errorf("dispatch", "cannot lease task %s: %s", e->token,
		          err.code ? sl_error_text(&err) : sl_err_message(rc));
		queue_push(e->q, e, true);
		*store_failed = true;
		return false;
	}
	struct got *g = &p->got[p->n_got++];
	snprintf(g->token, sizeof g->token, "%s", e->token);
	g->name = e->q->name;
	g->input = worker_input(st.input, e->lambda_invoke);
	g->lambda_invoke = e->lambda_invoke;
	g->timeout_s = st.timeout_seconds;
	g->heartbeat_s = st.heartbeat_seconds;
	json_decref(st.input);
	for (size_t i = 0; i < p->n_names; i++)
		if (strcmp(p->names[i], g->name) == 0)
			g->name = p->names[i]; /* valid as long as the poll */
	d->stats.queued--;
	d->stats.leased++;
	d->stats.handed_out++;
	e->q->queued--;
	e->q->leased++;
	e->q->handed_out++;
	e->st = T_LEASED;
	e->at_ms = sl_clock_now_ms();
	lease_link(d, e);
	return true;
}

static bool
poll_has_work(srv_dispatch_t *d, srv_dispatch_poll_t *p)
{
	for (size_t i = 0; i < p->n_names; i++) {
		struct dq *q = queue_get(d, p->names[i], false);
		if (q && q->n)
			return true;
	}
	return false;
}

/* A waiting HTTP poll whose client hung up: withdrawn, nobody to give a task to. */
static bool
poll_gone(srv_dispatch_poll_t *p)
{
	return p->http_req && (!p->http_req->ev || p->http_req->replied);
}

/* Fills p from its queues; returns true if p was answered (or is waiting for its commit). */
static bool
fill(srv_dispatch_t *d, srv_dispatch_poll_t *p, bool *store_failed)
{
	if (!poll_has_work(d, p))
		return false;
	store_batch_t *b = NULL;
	sl_err rc = p->http_req ? srv_req_batch(p->http_req, &b) : srv_batch(d->srv, &b);
	if (rc != SL_OK) {
		sl_errorf("dispatch", "no store batch for a lease: %s", sl_err_message(rc));
		*store_failed = true;
		return false;
	}
	for (size_t i = 0; i < p->n_names && p->n_got < p->max && !*store_failed; i++) {
		struct dq *q = queue_get(d, p->names[i], false);
		while (q && p->n_got < p->max && !*store_failed) {
			struct tent *e = queue_pop(d, q);
			if (!e)
				break;
			hand_out(d, p, b, e, store_failed);
		}
	}
	if (p->n_got == 0)
		return false;
	poll_unwait(d, p);
	if (store_batch_on_commit(b, on_lease_commit, p) != SL_OK) {
		/* cannot wait for the commit: the leases are in the batch; answer now rather
		 * than lose them (the commit follows within the loop iteration) */
		sl_errorf("dispatch", "cannot register a lease's commit callback");
		answer(p, SL_OK);
		poll_free(p);
		return true;
	}
	d->pending_cbs++;
	if (p->http_req) {
		answer(p, SL_OK); /* srv_req holds the reply until the commit */
		p->fn = NULL;
	}
	return true;
}

static void rescan(srv_dispatch_t *d);

static void
match(srv_dispatch_t *d)
{
	if (d->freed)
		return;
	if (d->need_rescan && d->stats.queued < RESCAN_LOW_MARK)
		rescan(d);
	bool store_failed = false;
	srv_dispatch_poll_t *p = d->wait_head;
	while (p && d->stats.queued > 0 && !store_failed) {
		srv_dispatch_poll_t *next = p->next;
		if (poll_gone(p)) {
			poll_unwait(d, p);
			if (p->http_req && !p->http_req->replied)
				answer(p, SL_OK);
			poll_free(p);
		} else {
			fill(d, p, &store_failed);
		}
		p = next;
	}
	if (store_failed) { /* try again a little later rather than spin */
		struct timeval tv = { 1, 0 };
		event_add(d->match_ev, &tv);
	}
}

static void
on_match(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	match(arg);
}

/* ---- rescans and sweeps --------------------------------------------------------------- */

static void
rescan_task(void *arg, const struct step_task *t)
{
	srv_dispatch_t *d = arg;
	if (d->stats.queued >= SRV_DISPATCH_QUEUE_CAP) {
		d->need_rescan = true;
		return;
	}
	srv_dispatch_task_replayed(d, t);
}

static void
rescan(srv_dispatch_t *d)
{
	store_batch_t *b = NULL;
	if (srv_batch(d->srv, &b) != SL_OK)
		return;
	d->need_rescan = false;
	d->overflow_logged = false;
	d->stats.rescans++;
	struct step_effects fx = { .arg = d, .task = rescan_task };
	struct sl_error err;
	sl_error_clear(&err);
	if (step_tasks_replay(d->eng, store_batch_txn(b), &fx, &err) != SL_OK) {
		sl_errorf("dispatch", "rescanning tasks: %s", sl_error_text(&err));
		d->need_rescan = true;
	}
	sl_info("dispatch", "rescanned the store: %zu task(s) queued", d->stats.queued);
}

/* Leases whose tasks ended without their worker's answer become "ended" (a late result is
 * told TaskTimedOut); ended entries are forgotten after ENDED_KEEP_MS. */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_dispatch_t *d = arg;
	store_txn_t *txn = NULL;
	if (!d->leases || store_read_begin(srv_store(d->srv), &txn) != SL_OK)
		return;
	int64_t now = sl_clock_now_ms();
	for (struct tent *e = d->leases, *next; e; e = next) {
		next = e->lnext;
		if (e->st == T_ENDED) {
			if (now - e->at_ms > ENDED_KEEP_MS)
				lease_drop(d, e);
			continue;
		}
		struct step_task_info info;
		if (srv_engine_task_info(d->srv, txn, e->token, &info) == SL_OK
		    && info.state == STEP_TASK_GONE) {
			e->st = T_ENDED;
			e->at_ms = now;
			d->stats.leased--;
			d->stats.timed_out++;
			e->q->leased--;
			e->q->timed_out++;
		}
	}
	store_read_end(txn);
}

/* ---- polls ---------------------------------------------------------------------------- */

static void
on_poll_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_dispatch_poll_t *p = arg;
	poll_unwait(p->d, p);
	answer(p, SL_OK);
	poll_free(p);
}

sl_err
srv_dispatch_poll(srv_dispatch_t *d, const struct srv_dispatch_poll_req *req,
                  srv_dispatch_poll_t **out)
{
	if (out)
		*out = NULL;
	if (d->stopping || d->freed)
		return SL_ERR_SHUTTING_DOWN;
	if (d->n_waiting >= SRV_DISPATCH_MAX_POLLS)
		return SL_ERR_LIMIT;
	if (req->n_names == 0 || req->max_tasks == 0 || !req->fn)
		return SL_ERR_INVALID_ARG;
	srv_dispatch_poll_t *p = SL_NEW(srv_dispatch_poll_t);
	if (!p)
		return SL_ERR_NOMEM;
	p->d = d;
	p->max = req->max_tasks > 64 ? 64 : req->max_tasks;
	p->fn = req->fn;
	p->arg = req->arg;
	p->http_req = req->http_req;
	p->names = sl_calloc(req->n_names, sizeof *p->names);
	p->got = sl_calloc(p->max, sizeof *p->got);
	const char *wn = req->worker && req->worker[0] ? req->worker : "unnamed";
	p->worker = sl_strndup(wn, strnlen(wn, WORKER_MAX_LEN));
	if (!p->names || !p->got || !p->worker) {
		poll_free(p);
		return SL_ERR_NOMEM;
	}
	for (size_t i = 0; i < req->n_names; i++) {
		const char *nm = req->names[i];
		if (!(p->names[i] = sl_strndup(nm, strnlen(nm, NAME_MAX_LEN)))) {
			poll_free(p);
			return SL_ERR_NOMEM;
		}
		p->n_names++;
	}
	if (!p->http_req && req->wait_ms > 0) {
		p->deadline = evtimer_new(srv_base(d->srv), on_poll_deadline, p);
		if (!p->deadline) {
			poll_free(p);
			return SL_ERR_NOMEM;
		}
		event_priority_set(p->deadline, SRV_PRIO_NORMAL);
	}
	// FIFO: a new poll takes tasks only when nobody waits before it
	p->waiting = true;
	p->prev = d->wait_tail;
	if (d->wait_tail)
		d->wait_tail->next = p;
	else
		d->wait_head = p;
	d->wait_tail = p;
	d->n_waiting++;
	bool store_failed = false;
	if (p == d->wait_head && fill(d, p, &store_failed))
		return SL_OK;
	if (req->wait_ms == 0 && !p->http_req) {
		poll_unwait(d, p);
		answer(p, SL_OK);
		poll_free(p);
		return SL_OK;
	}
	if (p->deadline) {
		struct timeval tv = { (time_t)(req->wait_ms / 1000),
			              (suseconds_t)(req->wait_ms % 1000) * 1000 };
		evtimer_add(p->deadline, &tv);
	}
	if (p != d->wait_head)
		kick(d);
	if (out)
		*out = p;
	return SL_OK;
}

void
srv_dispatch_cancel(srv_dispatch_t *d, srv_dispatch_poll_t *p)
{
	if (!p || !p->waiting)
		return;
	poll_unwait(d, p);
	poll_free(p);
}

void
srv_dispatch_stop(srv_dispatch_t *d)
{
	if (!d)
		return;
	d->stopping = true;
	while (d->wait_head) {
		srv_dispatch_poll_t *p = d->wait_head;
		poll_unwait(d, p);
		answer(p, SL_OK);
		poll_free(p);
	}
}

/* ---- tokens answered elsewhere -------------------------------------------------------- */

void
srv_dispatch_forget(srv_t *s, const char *token)
{
	srv_dispatch_t *d = s ? srv_dispatch_of(s) : NULL;
	struct tent *e = d && token ? tok_find(d, token) : NULL;
	if (!e)
		return;
	if (e->st == T_QUEUED) {
		tok_unhash(d, e);
		e->dead = true; /* freed when it reaches the front of its queue */
		d->stats.queued--;
		e->q->queued--;
		return;
	}
	lease_drop(d, e);
}

void
srv_dispatch_done(srv_dispatch_t *d, const char *token)
{
	struct tent *e = d && token ? tok_find(d, token) : NULL;
	if (e && e->st != T_QUEUED)
		lease_drop(d, e);
}

sl_err
srv_dispatch_gone_code(srv_t *s, const char *token)
{
	srv_dispatch_t *d = s ? srv_dispatch_of(s) : NULL;
	struct tent *e = d && token ? tok_find(d, token) : NULL;
	if (!e || e->st == T_QUEUED)
		return SL_ERR_TASK_NOT_FOUND;
	if (e->st == T_LEASED) {
		e->st = T_ENDED;
		e->at_ms = sl_clock_now_ms();
		d->stats.leased--;
		d->stats.timed_out++;
		e->q->leased--;
		e->q->timed_out++;
	}
	return SL_ERR_TASK_TIMED_OUT;
}

void
srv_dispatch_get_stats(const srv_dispatch_t *d, struct srv_dispatch_stats *out)
{
	*out = d->stats;
	out->polls_waiting = d->n_waiting;
}

/* ---- metrics -------------------------------------------------------------------------- */

/* Queue names come from definitions, so a client can create many: /metrics shows this many
 * by name (in name order) and sums the rest under activity="_other". */
#define METRIC_NAMES_MAX 200

static int
cmp_dq(const void *x, const void *y)
{
	return strcmp((*(struct dq *const *)x)->name, (*(struct dq *const *)y)->name);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static sl_err
add_label(struct evbuffer *out, const char *v)
{
	for (; *v; v++) {
		int rc = *v == '\\'  ? evbuffer_add(out, "\\\\", 2)
		        : *v == '"'  ? evbuffer_add(out, "\\\"", 2)
		        : *v == '\n' ? evbuffer_add(out, "\\n", 2)
		                     : evbuffer_add(out, v, 1);
		if (rc)
			return SL_ERR_NOMEM;
	}
	return SL_OK;
}

struct qsample {
	const char *name;
	uint64_t v[4]; /* queued, leased, handed out, timed out */
};

static sl_err
family(struct evbuffer *out, const char *name, const char *type, const char *help,
       const struct qsample *s, size_t n, int field)
{
	if (evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0)
		return SL_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		if (evbuffer_add_printf(out, "%s{activity=\"", name) < 0
		    || add_label(out, s[i].name) != SL_OK
		    || evbuffer_add_printf(out, "\"} %" PRIu64 "\n", s[i].v[field]) < 0)
			return SL_ERR_NOMEM;
	return SL_OK;
}

sl_err
srv_dispatch_metrics(srv_t *s, struct evbuffer *out)
{
	srv_dispatch_t *d = srv_dispatch_of(s);
	if (!d)
		return SL_OK;
	if (evbuffer_add_printf(
	            out,
	            "# HELP sluice_dispatch_tasks_queued Tasks waiting in memory for a worker.\n"
	            "# TYPE sluice_dispatch_tasks_queued gauge\n"
	            "sluice_dispatch_tasks_queued %zu\n"
	            "# HELP sluice_dispatch_tasks_leased Tasks handed to a worker, not answered "
	            "yet.\n# TYPE sluice_dispatch_tasks_leased gauge\n"
	            "sluice_dispatch_tasks_leased %zu\n"
	            "# HELP sluice_dispatch_polls_waiting Worker polls waiting for a task.\n"
	            "# TYPE sluice_dispatch_polls_waiting gauge\n"
	            "sluice_dispatch_polls_waiting %zu\n"
	            "# HELP sluice_dispatch_tasks_total Tasks leaving the queues, by outcome.\n"
	            "# TYPE sluice_dispatch_tasks_total counter\n"
	            "sluice_dispatch_tasks_total{outcome=\"handed_out\"} %" PRIu64 "\n"
	            "sluice_dispatch_tasks_total{outcome=\"dropped_stale\"} %" PRIu64 "\n"
	            "sluice_dispatch_tasks_total{outcome=\"overflowed\"} %" PRIu64 "\n"
	            "sluice_dispatch_tasks_total{outcome=\"timed_out\"} %" PRIu64 "\n"
	            "# HELP sluice_dispatch_rescans_total Rescans of the store for tasks the "
	            "queues had no room for.\n# TYPE sluice_dispatch_rescans_total counter\n"
	            "sluice_dispatch_rescans_total %" PRIu64 "\n",
	            d->stats.queued, d->stats.leased, d->n_waiting, d->stats.handed_out,
	            d->stats.dropped_stale, d->stats.overflowed, d->stats.timed_out,
	            d->stats.rescans)
	    < 0)
		return SL_ERR_NOMEM;
	size_t n = 0;
	for (size_t b = 0; b < NAME_BUCKETS; b++)
		for (struct dq *q = d->names[b]; q; q = q->hnext)
			n++;
	if (n == 0)
		return SL_OK;
	struct dq **all = sl_calloc(n, sizeof *all);
	struct qsample *smp
	        = sl_calloc(n <= METRIC_NAMES_MAX ? n : METRIC_NAMES_MAX + 1, sizeof *smp);
	if (!all || !smp) {
		sl_free(all);
		sl_free(smp);
		return SL_ERR_NOMEM;
	}
	size_t i = 0;
	for (size_t b = 0; b < NAME_BUCKETS; b++)
		for (struct dq *q = d->names[b]; q; q = q->hnext)
			all[i++] = q;
	qsort(all, n, sizeof *all, cmp_dq);
	size_t ns = n <= METRIC_NAMES_MAX ? n : METRIC_NAMES_MAX + 1;
	for (i = 0; i < n; i++) {
		struct qsample *x = &smp[i < METRIC_NAMES_MAX ? i : METRIC_NAMES_MAX];
		x->name = i < METRIC_NAMES_MAX ? all[i]->name : "_other";
		x->v[0] += all[i]->queued;
		x->v[1] += all[i]->leased;
		x->v[2] += all[i]->handed_out;
		x->v[3] += all[i]->timed_out;
	}
	sl_err rc;
	if ((rc = family(out, "sluice_activity_tasks_queued", "gauge",
	                 "Tasks waiting for a worker, by activity (queue name).", smp, ns, 0))
	    || (rc
	        = family(out, "sluice_activity_tasks_leased", "gauge",
	                 "Tasks handed to a worker and not answered yet, by activity.", smp, ns, 1))
	    || (rc = family(out, "sluice_activity_tasks_handed_out_total", "counter",
	                    "Tasks handed to a worker, by activity.", smp, ns, 2))
	    || (rc = family(out, "sluice_activity_tasks_timed_out_total", "counter",
	                    "Leased tasks that ended without their worker's answer (timed out, "
	                    "or the execution stopped), by activity.",
	                    smp, ns, 3)))
		sl_debug("dispatch", "/metrics: %s", sl_err_message(rc));
	sl_free(all);
	sl_free(smp);
	return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

sl_err
srv_dispatch_new(srv_t *s, step_engine_t *eng, const struct step_effects *fx, srv_dispatch_t **out,
                 struct sl_error *err)
{
	srv_dispatch_t *d = SL_NEW(srv_dispatch_t);
	if (!d)
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	d->srv = s;
	d->eng = eng;
	d->fx = fx;
	d->match_ev = event_new(srv_base(s), -1, 0, on_match, d);
	d->sweep_ev = event_new(srv_base(s), -1, EV_PERSIST, on_sweep, d);
	if (!d->match_ev || !d->sweep_ev) {
		if (d->match_ev)
			event_free(d->match_ev);
		if (d->sweep_ev)
			event_free(d->sweep_ev);
		sl_free(d);
		return sl_error_set(err, SL_ERR_NOMEM, "cannot create the dispatcher's events");
	}
	event_priority_set(d->match_ev, SRV_PRIO_NORMAL);
	event_priority_set(d->sweep_ev, SRV_PRIO_NORMAL);
	struct timeval tv = { SWEEP_EVERY_S, 0 };
	event_add(d->sweep_ev, &tv);
	d->next = dispatchers;
	dispatchers = d;
	*out = d;
	return SL_OK;
}

static void
dispatch_release(srv_dispatch_t *d)
{
	if (d->pending_cbs > 0)
		return;
	sl_free(d);
}

void
srv_dispatch_free(srv_dispatch_t *d)
{
	if (!d)
		return;
	srv_dispatch_stop(d);
	sl_info("dispatch",
	        "%llu task(s) handed out, %llu stale dropped, %zu queued and %zu leased at exit",
	        (unsigned long long)d->stats.handed_out, (unsigned long long)d->stats.dropped_stale,
	        d->stats.queued, d->stats.leased);
	for (srv_dispatch_t **p = &dispatchers; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	event_free(d->match_ev);
	event_free(d->sweep_ev);
	d->match_ev = d->sweep_ev = NULL;
	while (d->leases) /* before the queues: a lease counts in its queue's metrics */
		lease_drop(d, d->leases);
	for (size_t b = 0; b < NAME_BUCKETS; b++)
		for (struct dq *q = d->names[b], *nq; q; q = nq) {
			nq = q->hnext;
			while (q->head) {
				struct tent *e = q->head;
				q->head = e->qnext;
				if (e->dead)
					sl_free(e);
				else
					tok_unhash(d, e), sl_free(e);
			}
			sl_free(q->name);
			sl_free(q);
		}
	d->freed = true;
	dispatch_release(d);
}

/* ---- GetActivityTask ------------------------------------------------------------------ */

struct http_poll {
	srv_dispatch_poll_t *poll;
	srv_req_t *req;
};

static void
http_answer(void *arg, sl_err status, const struct srv_dispatch_task *tasks, size_t n)
{
	struct http_poll *hp = arg;
	srv_req_t *req = hp->req;
	sl_free(hp); /* the expiry function is cancelled by the answer */
	if (req->replied)
		return;
	if (status != SL_OK) {
		srv_reply_error(req, status, "the task could not be leased: %s",
		                sl_err_message(status));
		return;
	}
	if (n == 0) {
		srv_reply_json(req, json_object()); /* AWS: taskToken absent */
		return;
	}
	char *in = json_dumps(tasks[0].input, JSON_COMPACT | JSON_ENCODE_ANY);
	json_t *o = in ? json_pack("{s:s, s:s}", "taskToken", tasks[0].token, "input", in) : NULL;
	sl_free(in);
	if (!o) {
		srv_reply_error(req, SL_ERR_NOMEM, "out of memory");
		return;
	}
	srv_reply_json(req, o);
}

static void
http_expire(srv_req_t *req, void *arg)
{
	struct http_poll *hp = arg;
	srv_dispatch_t *d = srv_dispatch_of(srv_req_server(req));
	if (d && hp->poll)
		srv_dispatch_cancel(d, hp->poll);
	sl_free(hp);
	srv_reply_json(req, json_object());
}

static sl_err
get_activity_task(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	json_t *arn = json_object_get(body, "activityArn");
	json_t *wn = json_object_get(body, "workerName");
	if (!json_is_string(arn))
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "1 validation error detected: Value null at 'activityArn' "
		                    "failed to satisfy constraint: Member must not be null");
	if (wn && (!json_is_string(wn) || json_string_length(wn) > 80))
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "1 validation error detected: Value at 'workerName' failed to "
		                    "satisfy constraint: Member must have length less than or "
		                    "equal to 80");
	const char *a = json_string_value(arn);
	const char *p = strstr(a, ":activity:");
	if (strncmp(a, "arn:", 4) != 0 || !strstr(a, ":states:") || !p || !p[10]
	    || strlen(p + 10) > 80 || strchr(p + 10, ':'))
		return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%s'", a);
	srv_dispatch_t *d = srv_dispatch_of(srv_req_server(req));
	if (!d)
		return sl_error_set(err, SL_ERR_UNAVAILABLE, "task dispatch is not running");
	struct http_poll *hp = SL_NEW(struct http_poll);
	if (!hp)
		return SL_ERR_NOMEM;
	hp->req = req;
	sl_err rc = srv_req_defer(req, SRV_DISPATCH_HTTP_WAIT_MS, http_expire, hp);
	if (rc != SL_OK) {
		sl_free(hp);
		return sl_error_set(err, rc, "cannot wait for a task");
	}
	const char *name = p + 10;
	struct srv_dispatch_poll_req pr = { .names = &name,
		                            .n_names = 1,
		                            .max_tasks = 1,
		                            .wait_ms = SRV_DISPATCH_HTTP_WAIT_MS,
		                            .worker = wn ? json_string_value(wn) : NULL,
		                            .http_req = req,
		                            .fn = http_answer,
		                            .arg = hp };
	srv_dispatch_poll_t *poll = NULL;
	rc = srv_dispatch_poll(d, &pr, &poll);
	if (rc != SL_OK) {
		// the deferral's expiry would free hp: answer here, which cancels it
		srv_reply_error(req, rc == SL_ERR_LIMIT ? SL_ERR_ACTIVITY_WORKER_LIMIT : rc, "%s",
		                rc == SL_ERR_LIMIT ? "too many pollers wait for tasks"
		                                   : sl_err_message(rc));
		sl_free(hp);
		return SL_OK;
	}
	if (poll) /* still waiting (an answer frees hp) */
		hp->poll = poll;
	return SL_OK;
}

sl_err
srv_api_tasks_register(srv_t *s)
{
	return srv_register_op(s, "AWSStepFunctions.GetActivityTask", get_activity_task, NULL);
}
