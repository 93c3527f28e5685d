/*
 * srv_engine.c - drives the stepper from the server loop (see srv_engine.h).
 *
 * Two engines, one code path: the durable engine writes in the server's batch (group
 * commit, fsync); the EXPRESS engine writes in the batch of a scratch store that is never
 * fsync'd and is emptied at start. Each has its own run slice, timer and effects (struct
 * srv_engine holds them); the machines, the dispatcher and the mocks belong to the durable
 * one (the root). Express executions leave two records in the durable store: their start
 * and their end.
 */
#include <dirent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "common/sl_log.h"
#include "server/srv_api.h"
#include "server/srv_dispatch.h"
#include "server/srv_engine.h"
#include "server/srv_internal.h"
#include "statemachines/statemachines.h"
#include "stepper/step_mock.h"

/* Timers fired per loop iteration: a burst of due timers must not stall HTTP. */
#define FIRE_SLICE 256
/* AWS's limit for an EXPRESS execution (sync or async). */
#define EXPRESS_MAX_MS (5 * 60 * 1000)
/* The scratch store is emptied when no express execution runs and this many ended. */
#define WIPE_AFTER 2048
#define XBUCKETS   4096
/* Durable records of express executions, in STORE_DB_EXECUTIONS under tags no execution
 * ARN can start with: 'R' arn -> record (start, then end), 'P' arn -> still running. */
#define XTAG_REC  0x00785200u
#define XTAG_PEND 0x00785000u

struct compiled {
	char *name;
	uint32_t revision;
	struct sm_machine *m;
};

/* An EXPRESS execution in flight. */
struct xrun {
	char arn[STEP_ARN_MAX];  /* the engine's: "...:execution:M:INAME" */
	char xarn[STEP_ARN_MAX]; /* AWS's: "...:express:M:NAME:ID", the durable records' key */
	char machine[81];
	char name[81];  /* as the client gave it (or a UUID) */
	char iname[81]; /* the engine's: name, or ID while another of that name runs */
	uint32_t revision;
	int64_t start_ms;
	json_t *input;
	bool is_sync;
	bool timed_out;
	srv_req_t *sync; /* the StartSyncExecution request still waiting, or NULL */
	struct srv_engine *x;
	struct xrun *hnext;
};

/* An execution whose tasks --mock-config answers. */
struct mrun {
	char *arn;
	struct step_mock *mock;
	json_t *attempts; /* state name -> attempts so far */
	struct mrun *hnext;
};

/* A mocked task waiting to be answered (outside the effect that announced it). */
struct mtask {
	char token[STEP_TOKEN_LEN + 1];
	char *arn, *state;
	struct mtask *next;
};

struct srv_engine {
	srv_t *srv;
	struct srv_engine *root; /* the durable engine (itself for the durable one) */
	struct srv_engine *x;    /* root: its EXPRESS engine */
	store_t *scratch;        /* EXPRESS: the scratch store, else NULL */
	step_engine_t *step;
	struct step_effects fx;
	struct event *run_ev;   /* a zero timeout: the next slice of runnable frames */
	struct event *timer_ev; /* the earliest timer */
	struct event *mock_ev;  /* mocked tasks to answer */
	struct event *flush_ev; /* EXPRESS: commit the scratch batch */
	struct event *sweep_ev; /* EXPRESS: 5-minute limit, vanished sync clients */
	int64_t armed_due;      /* INT64_MAX when timer_ev is not armed */
	struct mtask *mq_head, *mq_tail;
	bool replaying; /* step_tasks_replay at start: the records are committed */
	/* root only */
	struct compiled *mc;
	size_t n_mc, cap_mc;
	uint64_t tasks_waiting;
	srv_dispatch_t *dispatch;
	srv_engine_status_fn on_status;
	void *on_status_arg;
	json_t *mock_doc;
	struct mrun *mr[XBUCKETS];
	/* EXPRESS only */
	struct xrun *xr[XBUCKETS];
	size_t n_xr;
	uint64_t ended_since_wipe;
	char (*purge)[STEP_ARN_MAX]; /* ended: their records leave the scratch store */
	size_t n_purge, cap_purge;
	struct srv_engine_express_stats xstats;
	srv_engine_t *next;
};

/* The server has no slot for module state, so engines are found by their server. */
static srv_engine_t *engines;

srv_engine_t *
srv_engine_of(srv_t *s)
{
	for (srv_engine_t *e = engines; e; e = e->next)
		if (e->srv == s)
			return e;
	return NULL;
}

step_engine_t *
srv_engine_stepper(srv_engine_t *e)
{
	return e->step;
}

const struct step_effects *
srv_engine_effects(srv_engine_t *e)
{
	return &e->fx;
}

static uint32_t
hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % XBUCKETS;
}

/* The open batch of e's store: the server's (group commit) or the scratch one. */
static sl_err
ebatch(srv_engine_t *e, store_batch_t **b)
{
	if (!e->scratch)
		return srv_batch(e->srv, b);
	store_batch_t *cur = store_batch_current(e->scratch);
	if (cur && store_batch_full(cur))
		(void)store_batch_commit(e->scratch); // never inside a savepoint: see xcall_begin
	sl_err rc = store_batch_get(e->scratch, b);
	if (rc == SL_OK && !cur)
		event_active(e->flush_ev, EV_TIMEOUT, 0);
	return rc;
}

/* ---- machines ------------------------------------------------------------------------- */

static const struct sm_machine *
cached(srv_engine_t *e, const char *name, uint32_t revision)
{
	for (size_t i = 0; i < e->n_mc; i++)
		if (e->mc[i].revision == revision && strcmp(e->mc[i].name, name) == 0)
			return e->mc[i].m;
	return NULL;
}

sl_err
srv_engine_machine(srv_engine_t *e, store_txn_t *txn, const char *name, uint32_t *revision,
                   const struct sm_machine **out, struct sl_error *err)
{
	e = e->root;
	const struct sm_machine *m = *revision ? cached(e, name, *revision) : NULL;
	if (m) {
		*out = m;
		return SL_OK;
	}
	char *def = NULL;
	uint32_t rev = 0;
	sl_err rc = srv_machine_definition(txn, name, *revision, &def, &rev);
	if (rc == SL_ERR_SM_NOT_FOUND)
		return sl_error_set(err, rc, "State Machine Does Not Exist: '%s' (revision %u)",
		                    name, *revision);
	if (rc)
		return sl_error_set(err, rc, "cannot read the definition of '%s'", name);
	if ((m = cached(e, name, rev))) {
		sl_free(def);
		*revision = rev;
		*out = m;
		return SL_OK;
	}
	if (e->n_mc == e->cap_mc) {
		size_t cap = e->cap_mc ? e->cap_mc * 2 : 16;
		struct compiled *n = sl_reallocarray(e->mc, cap, sizeof *n);
		if (!n) {
			sl_free(def);
			return SL_ERR_NOMEM;
		}
		e->mc = n;
		e->cap_mc = cap;
	}
	struct sm_problems problems = { 0 };
	struct sm_machine *cm = NULL;
	rc = sm_definition_compile_text(def, strlen(def), NULL, SM_FORMAT_AUTO, &cm, &problems);
	sl_free(def);
	if (rc != SL_OK) {
		char *msg = rc == SL_ERR_NOMEM ? NULL : sm_problems_aws_message(&problems);
		sm_problems_clear(&problems);
		if (!msg)
			return SL_ERR_NOMEM;
		rc = sl_error_set(err, SL_ERR_INVALID_DEFINITION, "%s", msg);
		sl_free(msg);
		return rc;
	}
	sm_problems_clear(&problems);
	char *nm = sl_strdup(name);
	if (!nm) {
		sm_machine_free(cm);
		return SL_ERR_NOMEM;
	}
	e->mc[e->n_mc++] = (struct compiled) { nm, rev, cm };
	*revision = rev;
	*out = cm;
	return SL_OK;
}

static const struct sm_machine *
resolve(void *arg, store_txn_t *txn, const char *name, uint32_t *revision)
{
	srv_engine_t *e = arg;
	const struct sm_machine *m = *revision ? cached(e->root, name, *revision) : NULL;
	if (m)
		return m;
	// the express engine's txn is the scratch store's: definitions are in the durable one
	bool reader = false;
	if (e->scratch) {
		store_batch_t *b = store_batch_current(srv_store(e->srv));
		txn = b ? store_batch_txn(b) : NULL;
		if (!txn) {
			if (store_read_begin(srv_store(e->srv), &txn) != SL_OK)
				return NULL;
			reader = true;
		}
	}
	struct sl_error err;
	sl_error_clear(&err);
	if (srv_engine_machine(e, txn, name, revision, &m, &err) != SL_OK) {
		sl_warn("engine", "machine '%s' revision %u: %s", name, *revision,
		        sl_error_text(&err));
		m = NULL;
	}
	if (reader)
		store_read_end(txn);
	return m;
}

/* ---- timers and slices ---------------------------------------------------------------- */

static void
arm(srv_engine_t *e, int64_t due_ms)
{
	if (due_ms >= e->armed_due)
		return;
	int64_t delay = due_ms - sl_clock_now_ms();
	if (delay < 0)
		delay = 0;
	struct timeval tv = { (time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000) };
	if (evtimer_add(e->timer_ev, &tv) == 0)
		e->armed_due = due_ms;
}

/* Arms timer_ev at the earliest timer the batch (committed or not) holds. */
static void
rearm_from(srv_engine_t *e, store_txn_t *txn)
{
	int64_t due = 0;
	sl_err rc = step_next_timer(e->step, txn, &due);
	if (rc == SL_OK)
		arm(e, due);
	else if (rc != SL_ERR_NOT_FOUND)
		sl_errorf("engine", "cannot read the next timer: %s", sl_err_message(rc));
}

void
srv_engine_kick(srv_engine_t *e)
{
	if (!evtimer_pending(e->run_ev, NULL)) {
		struct timeval zero = { 0, 0 };
		evtimer_add(e->run_ev, &zero);
	}
}

static void
on_run(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_engine_t *e = arg;
	if (e->srv->stopped || !step_engine_has_ready(e->step))
		return;
	store_batch_t *b = NULL;
	sl_err rc = ebatch(e, &b);
	if (rc != SL_OK) {
		sl_errorf("engine", "no store batch: %s", sl_err_message(rc));
		return;
	}
	struct sl_error err;
	sl_error_clear(&err);
	// a failing frame is dropped from the slice; the others go on in the next one
	if ((rc = step_run_ready(e->step, b, &e->fx, NULL, &err)) != SL_OK)
		sl_errorf("engine", "running executions: %s", sl_error_text(&err));
	// a zero timeout, not event_active: the loop polls HTTP before the next slice
	if (step_engine_has_ready(e->step))
		srv_engine_kick(e);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_engine_t *e = arg;
	e->armed_due = INT64_MAX;
	if (e->srv->stopped)
		return;
	store_batch_t *b = NULL;
	sl_err rc = ebatch(e, &b);
	if (rc != SL_OK) {
		sl_errorf("engine", "no store batch: %s", sl_err_message(rc));
		arm(e, sl_clock_now_ms() + 1000);
		return;
	}
	struct sl_error err;
	sl_error_clear(&err);
	unsigned fired = 0;
	rc = step_fire_timers(e->step, b, sl_clock_now_ms(), FIRE_SLICE, &e->fx, &fired, &err);
	if (rc != SL_OK) {
		sl_errorf("engine", "firing timers: %s", sl_error_text(&err));
		arm(e, sl_clock_now_ms() + 1000); // retry later rather than spin
	}
	rearm_from(e, store_batch_txn(b));
	srv_engine_kick(e);
}

void
srv_engine_clock_changed(srv_engine_t *e)
{
	// the armed delay was computed from the old time: fire now, on_timer re-arms
	for (srv_engine_t *i = e; i; i = i == e ? e->x : NULL) {
		evtimer_del(i->timer_ev);
		i->armed_due = INT64_MAX;
		arm(i, sl_clock_now_ms());
	}
}

/* ---- mocks ---------------------------------------------------------------------------- */

static struct mrun *
mfind(srv_engine_t *root, const char *arn)
{
	for (struct mrun *m = root->mr[hash(arn)]; m; m = m->hnext)
		if (strcmp(m->arn, arn) == 0)
			return m;
	return NULL;
}

static void
mdel(srv_engine_t *root, const char *arn)
{
	for (struct mrun **p = &root->mr[hash(arn)]; *p; p = &(*p)->hnext)
		if (strcmp((*p)->arn, arn) == 0) {
			struct mrun *m = *p;
			*p = m->hnext;
			step_mock_free(m->mock);
			json_decref(m->attempts);
			sl_free(m->arn);
			sl_free(m);
			return;
		}
}

sl_err
srv_engine_mock_attach(srv_engine_t *e, const char *arn, struct step_mock *mock)
{
	srv_engine_t *root = e->root;
	struct mrun *m = SL_NEW(struct mrun);
	if (!m || !(m->arn = sl_strdup(arn)) || !(m->attempts = json_object())) {
		if (m)
			sl_free(m->arn);
		sl_free(m);
		step_mock_free(mock);
		return SL_ERR_NOMEM;
	}
	mdel(root, arn); // a re-run replaces the old one
	m->mock = mock;
	uint32_t h = hash(arn);
	m->hnext = root->mr[h];
	root->mr[h] = m;
	return SL_OK;
}

sl_err
srv_engine_mock_load(srv_engine_t *e, const char *machine, const char *test_case,
                     struct step_mock **out, struct sl_error *err)
{
	json_t *doc = e->root->mock_doc;
	if (!doc)
		return sl_error_set(err, SL_ERR_NOT_FOUND, "the server runs without --mock-config");
	json_t *sm = json_object_get(json_object_get(doc, "StateMachines"), machine);
	json_t *tc = json_object_get(json_object_get(sm, "TestCases"), test_case);
	if (!tc)
		return sl_error_set(
		        err, SL_ERR_SM_NOT_FOUND,
		        "State Machine Does Not Exist: test case '%s' of '%s' is not in "
		        "the mock configuration",
		        test_case, machine);
	return step_mock_parse(doc, machine, test_case, out, err);
}

static void
mock_queue(srv_engine_t *e, const struct step_task *t)
{
	struct mtask *q = SL_NEW(struct mtask);
	if (!q || !(q->arn = sl_strdup(t->execution_arn))
	    || !(q->state = sl_strdup(t->state_name))) {
		if (q)
			sl_free(q->arn);
		sl_free(q);
		sl_errorf("engine", "out of memory: mocked task %s is not answered", t->token);
		return;
	}
	snprintf(q->token, sizeof q->token, "%s", t->token);
	if (e->mq_tail)
		e->mq_tail->next = q;
	else
		e->mq_head = q;
	e->mq_tail = q;
	event_active(e->mock_ev, EV_TIMEOUT, 0);
}

/* Answers one mocked task as Step Functions Local does: the test case's response for this
 * attempt of the state, or States.Runtime when it gives none. */
static sl_err
mock_answer(srv_engine_t *e, store_batch_t *b, const struct mtask *q, struct sl_error *err)
{
	struct mrun *m = mfind(e->root, q->arn);
	if (!m)
		return SL_OK; // the execution ended meanwhile
	unsigned attempt = (unsigned)json_integer_value(json_object_get(m->attempts, q->state));
	json_object_set_new(m->attempts, q->state, json_integer(attempt + 1));
	struct step_started st;
	sl_err rc = step_task_started(e->step, b, q->token, "mock", &e->fx, &st, err);
	if (rc != SL_OK)
		return rc;
	json_decref(st.input);
	json_t *ret = NULL;
	const char *error = NULL, *cause = NULL;
	if (step_mock_response(m->mock, q->state, attempt, &ret, &error, &cause) != SL_OK) {
		char msg[300];
		snprintf(msg, sizeof msg, "no mocked response for attempt %u of state '%.200s'",
		         attempt, q->state);
		return step_task_fail(e->step, b, q->token, "States.Runtime", msg, &e->fx, err);
	}
	if (error)
		return step_task_fail(e->step, b, q->token, error, cause, &e->fx, err);
	return step_task_succeed(e->step, b, q->token, ret, &e->fx, err);
}

static void
on_mock(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_engine_t *e = arg;
	while (e->mq_head && !e->srv->stopped) {
		struct mtask *q = e->mq_head;
		e->mq_head = q->next;
		if (!e->mq_head)
			e->mq_tail = NULL;
		store_batch_t *b = NULL;
		struct sl_error err;
		sl_error_clear(&err);
		sl_err rc = ebatch(e, &b);
		if (rc == SL_OK && (rc = store_savepoint_begin(b)) == SL_OK) {
			rc = mock_answer(e, b, q, &err);
			if (rc == SL_OK)
				rc = store_savepoint_release(b);
			else
				store_savepoint_rollback(b);
		}
		if (rc != SL_OK && rc != SL_ERR_TASK_NOT_FOUND)
			sl_errorf("engine", "mocked task %s of %s: %s", q->token, q->arn,
			          err.code ? sl_error_text(&err) : sl_err_message(rc));
		sl_free(q->arn);
		sl_free(q->state);
		sl_free(q);
	}
	srv_engine_kick(e);
}

/* ---- EXPRESS records ------------------------------------------------------------------ */

static void
xkey(struct store_key *k, uint32_t tag, const char *arn)
{
	store_key_init(k);
	store_key_u32(k, tag);
	store_key_str(k, arn);
}

static json_t *
xrecord(const struct xrun *r)
{
	return json_pack("{s:s,s:s,s:I,s:s,s:s,s:b,s:I,s:O,s:s}", "arn", r->xarn, "machine",
	                 r->machine, "revision", (json_int_t)r->revision, "name", r->name, "iname",
	                 r->iname, "sync", r->is_sync, "start", (json_int_t)r->start_ms, "input",
	                 r->input, "status", "RUNNING");
}

static sl_err
xput(store_txn_t *txn, const char *arn, json_t *rec)
{
	char *txt = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	if (!txt)
		return SL_ERR_NOMEM;
	struct store_key k;
	xkey(&k, XTAG_REC, arn);
	sl_err rc = store_put(txn, STORE_DB_EXECUTIONS, k.buf, k.len, txt, strlen(txt));
	sl_free(txt);
	return rc;
}

/* Writes the end of an express execution in txn: the record's status, and no longer
 * pending. rec is the start record (modified). */
static sl_err
xput_end(store_txn_t *txn, const char *arn, json_t *rec, enum step_status st, int64_t stop_ms,
         json_t *output, const char *error, const char *cause)
{
	json_object_set_new(rec, "status", json_string(step_status_name(st)));
	json_object_set_new(rec, "stop", json_integer(stop_ms));
	if (output)
		json_object_set(rec, "output", output);
	if (error)
		json_object_set_new(rec, "error", json_string(error));
	if (cause)
		json_object_set_new(rec, "cause", json_string(cause));
	sl_err rc = xput(txn, arn, rec);
	struct store_key k;
	xkey(&k, XTAG_PEND, arn);
	if (rc == SL_OK)
		rc = store_del(txn, STORE_DB_EXECUTIONS, k.buf, k.len);
	return rc;
}

static struct xrun *
xfind(srv_engine_t *x, const char *arn)
{
	for (struct xrun *r = x->xr[hash(arn)]; r; r = r->hnext)
		if (strcmp(r->arn, arn) == 0)
			return r;
	return NULL;
}

static void
xunlink(srv_engine_t *x, struct xrun *r)
{
	for (struct xrun **p = &x->xr[hash(r->arn)]; *p; p = &(*p)->hnext)
		if (*p == r) {
			*p = r->hnext;
			x->n_xr--;
			return;
		}
}

static void
xfree(struct xrun *r)
{
	if (!r)
		return;
	json_decref(r->input);
	sl_free(r);
}

static struct xrun *
xnew(srv_engine_t *x, const char *arn, const char *xarn, const char *machine, uint32_t revision,
     const char *name, const char *iname, json_t *input, int64_t start_ms, bool is_sync)
{
	struct xrun *r = SL_NEW(struct xrun);
	if (!r)
		return NULL;
	snprintf(r->arn, sizeof r->arn, "%s", arn);
	snprintf(r->xarn, sizeof r->xarn, "%s", xarn);
	snprintf(r->machine, sizeof r->machine, "%s", machine);
	snprintf(r->name, sizeof r->name, "%s", name);
	snprintf(r->iname, sizeof r->iname, "%s", iname);
	r->revision = revision;
	r->start_ms = start_ms;
	r->input = input ? json_incref(input) : json_object();
	r->is_sync = is_sync;
	r->x = x;
	if (!r->input) {
		sl_free(r);
		return NULL;
	}
	return r;
}

static void
xlink(srv_engine_t *x, struct xrun *r)
{
	uint32_t h = hash(r->arn);
	r->hnext = x->xr[h];
	x->xr[h] = r;
	x->n_xr++;
}

/* StartSyncExecution's answer for an ended execution. */
static json_t *
sync_answer(const struct xrun *r, enum step_status st, int64_t stop_ms, json_t *output,
            const char *error, const char *cause)
{
	char smarn[STEP_ARN_MAX];
	sl_arn_format(smarn, sizeof smarn, "states", "stateMachine", r->machine, NULL);
	char *in = json_dumps(r->input, JSON_COMPACT | JSON_ENCODE_ANY);
	int64_t dur = stop_ms - r->start_ms;
	json_t *o = json_pack(
	        "{s:s,s:s,s:s,s:o,s:o,s:s,s:s,s:{s:b},s:{s:I,s:I}}", "executionArn", r->xarn,
	        "stateMachineArn", smarn, "name", r->name, "startDate", srv_json_time(r->start_ms),
	        "stopDate", srv_json_time(stop_ms), "status", step_status_name(st), "input",
	        in ? in : "{}", "inputDetails", "included", 1, "billingDetails",
	        "billedMemoryUsedInMB", (json_int_t)64, "billedDurationInMilliseconds",
	        (json_int_t)((dur < 100 ? 100 : (dur + 99) / 100 * 100)));
	sl_free(in);
	if (!o)
		return NULL;
	if (st == STEP_SUCCEEDED) {
		char *out
		        = json_dumps(output ? output : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
		json_object_set_new(o, "output", json_string(out ? out : "null"));
		json_object_set_new(o, "outputDetails", json_pack("{s:b}", "included", 1));
		sl_free(out);
	}
	if (error)
		json_object_set_new(o, "error", json_string(error));
	if (cause)
		json_object_set_new(o, "cause", json_string(cause));
	return o;
}

/* The execution r ended: its end goes in the durable batch (the sync request's, which
 * then answers from the commit). */
static void
express_ended(srv_engine_t *x, struct xrun *r, enum step_status st, json_t *output,
              const char *error, const char *cause)
{
	srv_t *s = x->srv;
	if (r->timed_out && st == STEP_ABORTED) {
		st = STEP_TIMED_OUT;
		error = "States.Timeout";
		cause = "the EXPRESS execution ran longer than 5 minutes";
	}
	int64_t stop = sl_clock_now_ms();
	store_batch_t *b = NULL;
	sl_err rc = r->sync ? srv_req_batch(r->sync, &b) : srv_batch_get(s, false, &b);
	json_t *rec = xrecord(r);
	if (rc == SL_OK)
		rc = rec
		        ? xput_end(store_batch_txn(b), r->xarn, rec, st, stop, output, error, cause)
		        : SL_ERR_NOMEM;
	json_decref(rec);
	if (rc != SL_OK)
		sl_errorf("engine",
		          "the end of %s was not recorded: %s (it may run again after "
		          "a restart)",
		          r->arn, sl_err_message(rc));
	if (r->sync) {
		json_t *a = sync_answer(r, st, stop, output, error, cause);
		if (a)
			srv_reply_json(r->sync, a);
		else
			srv_reply_error(r->sync, SL_ERR_NOMEM, "out of memory");
		r->sync = NULL;
	}
	x->xstats.ended++;
	x->ended_since_wipe++;
	// the engine may still write the record in this step: removed at the next flush
	if (x->n_purge == x->cap_purge) {
		size_t nc = x->cap_purge ? x->cap_purge * 2 : 64;
		char(*n)[STEP_ARN_MAX] = sl_reallocarray(x->purge, nc, sizeof *n);
		if (!n)
			return; // the idle wipe removes it later
		x->purge = n;
		x->cap_purge = nc;
	}
	snprintf(x->purge[x->n_purge++], STEP_ARN_MAX, "%s", r->arn);
}

/* Removes the records of ended executions from the scratch store (stepper.h's layout:
 * executions, frames and history are keyed by the ARN first), so the store stays small and
 * an EXPRESS name may be used again, as AWS allows. The listing index stays until the next
 * idle wipe. */
static void
purge_ended(srv_engine_t *x)
{
	if (!x->n_purge)
		return;
	store_batch_t *b = NULL;
	if (ebatch(x, &b) != SL_OK)
		return;
	static const enum store_db dbs[]
	        = { STORE_DB_EXECUTIONS, STORE_DB_FRAMES, STORE_DB_HISTORY };
	for (size_t i = 0; i < x->n_purge; i++) {
		struct store_key k;
		store_key_init(&k);
		store_key_str(&k, x->purge[i]);
		for (size_t d = 0; d < sizeof dbs / sizeof *dbs; d++)
			if (store_del_prefix(store_batch_txn(b), dbs[d], k.buf, k.len) != SL_OK)
				sl_warn("engine", "cannot remove the records of %s", x->purge[i]);
	}
	x->n_purge = 0;
}

static void
on_sync_timeout(srv_req_t *req, void *arg)
{
	struct xrun *r = arg;
	srv_engine_t *x = r->x;
	if (r->sync != req)
		return;
	if (x->srv->stopping) {
		r->sync = NULL;
		srv_reply_error(req, SL_ERR_SHUTTING_DOWN,
		                "the server is stopping before the execution ended");
		return;
	}
	// AWS's limit: the execution times out; express_ended answers the request
	r->timed_out = true;
	store_batch_t *b = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	char arn[STEP_ARN_MAX];
	snprintf(arn, sizeof arn, "%s", r->arn); // r is freed by the end
	if (ebatch(x, &b) == SL_OK)
		(void)step_stop(x->step, b, arn, "States.Timeout", NULL, &x->fx, &err);
	if ((r = xfind(x, arn)) && r->sync == req) {
		r->sync = NULL;
		srv_reply_error(req, SL_ERR_INTERNAL, "the execution could not be stopped");
	}
}

/* Every second: executions past 5 minutes on the server's clock (virtual under
 * --virtual-time) time out; sync requests whose client hung up are let go (the execution
 * runs on: at-most-once, not cancelled). The sync request's own deadline is the backstop
 * in real time. */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_engine_t *x = arg;
	if (x->srv->stopped || x->n_xr == 0)
		return;
	int64_t now = sl_clock_now_ms();
	char(*late)[STEP_ARN_MAX] = NULL;
	size_t n_late = 0, cap = 0;
	for (size_t i = 0; i < XBUCKETS; i++)
		for (struct xrun *r = x->xr[i]; r; r = r->hnext) {
			if (r->sync && r->sync->done) {
				srv_req_t *q = r->sync;
				r->sync = NULL;
				srv_reply_error(q, SL_ERR_TIMEOUT, "the client went away");
			}
			if (r->timed_out || now - r->start_ms < EXPRESS_MAX_MS)
				continue;
			if (n_late == cap) {
				size_t nc = cap ? cap * 2 : 16;
				char(*n)[STEP_ARN_MAX] = sl_reallocarray(late, nc, sizeof *n);
				if (!n)
					break;
				late = n;
				cap = nc;
			}
			r->timed_out = true;
			snprintf(late[n_late++], STEP_ARN_MAX, "%s", r->arn);
		}
	store_batch_t *b = NULL;
	if (n_late && ebatch(x, &b) == SL_OK)
		for (size_t i = 0; i < n_late; i++) {
			struct sl_error err;
			sl_error_clear(&err);
			if (step_stop(x->step, b, late[i], "States.Timeout", NULL, &x->fx, &err))
				sl_warn("engine", "cannot time out %s: %s", late[i],
				        sl_error_text(&err));
		}
	sl_free(late);
	srv_engine_kick(x);
}

/* Empties every database of the scratch store (no execution runs: all of it is done). */
static void
wipe(srv_engine_t *x)
{
	store_batch_t *b = NULL;
	if (store_batch_get(x->scratch, &b) != SL_OK)
		return;
	sl_err rc = SL_OK;
	for (int db = 0; db < STORE_DB__COUNT && rc == SL_OK; db++) {
		store_cursor_t *c = NULL;
		if ((rc = store_cursor_open(store_batch_txn(b), (enum store_db)db, &c)) != SL_OK)
			break;
		struct store_val k, v;
		rc = store_cursor_seek(c, NULL, 0);
		while (rc == SL_OK && (rc = store_cursor_next(c, &k, &v)) == SL_OK)
			rc = store_cursor_del(c);
		store_cursor_close(c);
		if (rc == SL_ERR_NOT_FOUND)
			rc = SL_OK;
	}
	if (rc != SL_OK) {
		store_batch_abort(x->scratch, rc);
		sl_warn("engine", "cannot empty the express store: %s", sl_err_message(rc));
		return;
	}
	if (store_batch_commit(x->scratch) == SL_OK) {
		x->ended_since_wipe = 0;
		x->n_purge = 0;
		x->xstats.wipes++;
	}
}

static void
on_xflush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_engine_t *x = arg;
	purge_ended(x);
	sl_err rc = store_batch_commit(x->scratch);
	if (rc != SL_OK)
		sl_errorf("engine", "express store commit failed: %s", sl_err_message(rc));
	if (x->n_xr == 0 && x->ended_since_wipe >= WIPE_AFTER && !step_engine_has_ready(x->step))
		wipe(x);
}

/* The start of an EXPRESS execution: its durable record goes in req's batch, or in b when
 * req is NULL (a caller's batch, e.g. an EventBridge target's). */
static sl_err
xstart(srv_engine_t *e, srv_req_t *req, store_batch_t *b, const struct step_start *st, bool sync,
       struct step_mock *mock, char *arn_out, int64_t *start_ms, struct sl_error *err)
{
	srv_engine_t *x = e->root->x;
	// AWS: "...:express:MACHINE:NAME:ID"; an unnamed execution is named by its ID
	char id[SL_UUID_STRLEN + 1], xarn[STEP_ARN_MAX];
	struct step_start s2 = *st;
	if (sl_uuid4(id) != SL_OK) {
		step_mock_free(mock);
		return SL_ERR_INTERNAL;
	}
	if (!s2.name)
		s2.name = id;
	purge_ended(x); // a name used before may be used again
	store_batch_t *xb = NULL;
	sl_err rc = ebatch(x, &xb);
	if (rc == SL_OK && (rc = store_savepoint_begin(xb)) != SL_OK)
		xb = NULL;
	if (rc != SL_OK) {
		step_mock_free(mock);
		return rc;
	}
	char arn[STEP_ARN_MAX];
	int64_t now = sl_clock_now_ms();
	struct xrun *r = NULL;
	json_t *rec = NULL;
	rc = step_start(x->step, xb, &s2, arn, &x->fx, err);
	if (rc == SL_ERR_EXEC_EXISTS && s2.name != id) {
		// AWS runs EXPRESS executions of one name side by side: this one runs as its ID
		sl_error_clear(err);
		s2.name = id;
		rc = step_start(x->step, xb, &s2, arn, &x->fx, err);
	}
	const char *name = st->name ? st->name : id;
	if (rc == SL_OK
	    && sl_arn_format(xarn, sizeof xarn, "states", "express", st->machine, name, id, NULL)
	            != SL_OK)
		rc = sl_error_set(err, SL_ERR_INVALID_NAME, "names too long for an ARN");
	if (rc == SL_OK
	    && !(r = xnew(x, arn, xarn, st->machine, st->revision, name, s2.name, st->input, now,
	                  sync)))
		rc = SL_ERR_NOMEM;
	if (rc == SL_OK && (!req || (rc = srv_req_batch(req, &b)) == SL_OK)) {
		struct store_key k;
		xkey(&k, XTAG_PEND, xarn);
		rc = (rec = xrecord(r)) ? xput(store_batch_txn(b), xarn, rec) : SL_ERR_NOMEM;
		if (rc == SL_OK)
			rc = store_put(store_batch_txn(b), STORE_DB_EXECUTIONS, k.buf, k.len, "",
			               0);
		json_decref(rec);
	}
	bool mocked = false;
	if (rc == SL_OK && mock)
		mocked = (rc = srv_engine_mock_attach(e, arn, mock)) == SL_OK; // taken either way
	else
		step_mock_free(mock);
	if (rc == SL_OK && sync) {
		r->sync = req;
		rc = srv_req_defer(req, EXPRESS_MAX_MS, on_sync_timeout, r);
	}
	if (rc == SL_OK)
		rc = store_savepoint_release(xb);
	else
		store_savepoint_rollback(xb);
	if (rc != SL_OK) {
		if (mocked)
			mdel(e->root, arn);
		xfree(r);
		return rc;
	}
	xlink(x, r);
	x->xstats.started++;
	if (arn_out)
		snprintf(arn_out, STEP_ARN_MAX, "%s", xarn);
	if (start_ms)
		*start_ms = now;
	srv_engine_kick(x);
	return SL_OK;
}

sl_err
srv_engine_express_start(srv_engine_t *e, srv_req_t *req, const struct step_start *st, bool sync,
                         struct step_mock *mock, char *arn_out, int64_t *start_ms,
                         struct sl_error *err)
{
	return xstart(e, req, NULL, st, sync, mock, arn_out, start_ms, err);
}

bool
srv_engine_machine_is_express(store_txn_t *txn, const char *name)
{
	struct store_key k;
	store_key_init(&k);
	store_key_u32(&k, 'M');
	store_key_str(&k, name);
	struct store_val v;
	if (store_get(txn, STORE_DB_MACHINES, k.buf, k.len, &v) != SL_OK)
		return false;
	json_t *m = json_loadb(v.data, v.len, 0, NULL);
	const char *type = json_string_value(json_object_get(m, "type"));
	bool x = type && strcmp(type, "EXPRESS") == 0;
	json_decref(m);
	return x;
}

sl_err
srv_engine_start(srv_engine_t *e, store_batch_t *b, const struct step_start *st, char *arn_out,
                 struct sl_error *err)
{
	e = e->root;
	if (srv_engine_machine_is_express(store_batch_txn(b), st->machine))
		return xstart(e, NULL, b, st, false, NULL, arn_out, NULL, err);
	sl_err rc = step_start(e->step, b, st, arn_out, &e->fx, err);
	if (rc == SL_OK)
		srv_engine_kick(e);
	return rc;
}

void
srv_engine_express_stats(srv_engine_t *e, struct srv_engine_express_stats *out)
{
	srv_engine_t *x = e->root->x;
	*out = x->xstats;
	out->running = x->n_xr;
}

sl_err
srv_engine_metrics(srv_t *s, struct evbuffer *out)
{
	srv_engine_t *e = srv_engine_of(s);
	if (!e || !e->x)
		return SL_OK;
	struct srv_engine_express_stats st;
	srv_engine_express_stats(e, &st);
	int n = evbuffer_add_printf(
	        out,
	        "# HELP sluice_express_executions_running EXPRESS executions in flight.\n"
	        "# TYPE sluice_express_executions_running gauge\n"
	        "sluice_express_executions_running %zu\n"
	        "# HELP sluice_express_executions_total EXPRESS executions by event.\n"
	        "# TYPE sluice_express_executions_total counter\n"
	        "sluice_express_executions_total{event=\"started\"} %llu\n"
	        "sluice_express_executions_total{event=\"ended\"} %llu\n"
	        "sluice_express_executions_total{event=\"rerun\"} %llu\n"
	        "# HELP sluice_express_store_wipes_total Times the scratch store was emptied.\n"
	        "# TYPE sluice_express_store_wipes_total counter\n"
	        "sluice_express_store_wipes_total %llu\n",
	        st.running, (unsigned long long)st.started, (unsigned long long)st.ended,
	        (unsigned long long)st.rerun, (unsigned long long)st.wipes);
	return n < 0 ? SL_ERR_NOMEM : SL_OK;
}

/* ---- effects -------------------------------------------------------------------------- */

static void
on_task(void *arg, const struct step_task *t)
{
	srv_engine_t *e = arg;
	srv_engine_t *root = e->root;
	if (mfind(root, t->execution_arn)) {
		mock_queue(e, t);
		return;
	}
	root->tasks_waiting++;
	sl_debug("engine", "task for '%s' in %s waits for a worker (%s)", t->state_name,
	         t->execution_arn, t->resource);
	// the record is in the open batch: the dispatcher queues it once that commits
	if (root->dispatch && e->replaying)
		srv_dispatch_task_replayed(root->dispatch, t);
	else if (root->dispatch)
		srv_dispatch_task_effect(root->dispatch, t);
}

static void
on_timer_fx(void *arg, int64_t due_ms)
{
	arm(arg, due_ms);
}

void
srv_engine_set_status_hook(srv_engine_t *e, srv_engine_status_fn fn, void *arg)
{
	e->on_status = fn;
	e->on_status_arg = arg;
}

static void
on_status(void *arg, const struct step_status_change *sc)
{
	srv_engine_t *e = arg;
	if (!e->on_status)
		return;
	store_batch_t *b = NULL;
	sl_err rc = srv_batch(e->srv, &b);
	if (rc == SL_OK && (rc = store_savepoint_begin(b)) == SL_OK) {
		if ((rc = e->on_status(e->on_status_arg, b, sc)) == SL_OK)
			rc = store_savepoint_release(b);
		else
			store_savepoint_rollback(b);
	}
	// the transition stays committed: a lost notification must not undo an execution
	if (rc != SL_OK)
		sl_warn("engine", "status change of %s not published: %s", sc->execution_arn,
		        sl_err_message(rc));
}

static void
on_finished(void *arg, const struct step_finished *f)
{
	srv_engine_t *e = arg;
	sl_info("engine", "%s %s", f->execution_arn, step_status_name(f->status));
	mdel(e->root, f->execution_arn);
	struct xrun *r = e->scratch ? xfind(e, f->execution_arn) : NULL;
	if (r) {
		xunlink(e, r);
		express_ended(e, r, f->status, f->output, f->error, f->cause);
		xfree(r);
	}
}

/* ---- tasks, routed -------------------------------------------------------------------- */

/* The engine that awaits token: the express one when its scratch store knows the token. */
static srv_engine_t *
owner(srv_t *s, const char *token, struct step_task_info *xi)
{
	srv_engine_t *e = srv_engine_of(s);
	if (!e || !e->x)
		return e;
	srv_engine_t *x = e->x;
	store_batch_t *xb = store_batch_current(x->scratch);
	store_txn_t *txn = xb ? store_batch_txn(xb) : NULL;
	bool reader = false;
	if (!txn) {
		if (store_read_begin(x->scratch, &txn) != SL_OK)
			return e;
		reader = true;
	}
	struct step_task_info ti;
	bool mine = step_task_info(x->step, txn, token, &ti) == SL_OK && ti.state != STEP_TASK_GONE;
	if (reader)
		store_read_end(txn);
	if (mine && xi)
		*xi = ti;
	return mine ? x : e;
}

sl_err
srv_engine_task_info(srv_t *s, store_txn_t *txn, const char *token, struct step_task_info *out)
{
	srv_engine_t *o = owner(s, token, out);
	if (!o)
		return SL_ERR_INTERNAL;
	return o->scratch ? SL_OK : step_task_info(o->step, txn, token, out);
}

enum tcall { T_STARTED, T_SUCCEED, T_FAIL, T_HEARTBEAT };

struct targs {
	const char *token, *worker, *error, *cause;
	json_t *output;
	struct step_started *started;
};

static sl_err
tcall(srv_engine_t *o, store_batch_t *b, enum tcall what, const struct targs *a,
      struct sl_error *err)
{
	switch (what) {
	case T_STARTED:
		return step_task_started(o->step, b, a->token, a->worker, &o->fx, a->started, err);
	case T_SUCCEED: return step_task_succeed(o->step, b, a->token, a->output, &o->fx, err);
	case T_FAIL: return step_task_fail(o->step, b, a->token, a->error, a->cause, &o->fx, err);
	case T_HEARTBEAT: return step_task_heartbeat(o->step, b, a->token, &o->fx, err);
	}
	return SL_ERR_INTERNAL;
}

/* Runs one task input on the engine that awaits the token; the express engine's writes go
 * in its scratch batch under a savepoint of their own. */
static sl_err
routed(srv_t *s, store_batch_t *b, enum tcall what, const struct targs *a, struct sl_error *err)
{
	srv_engine_t *o = owner(s, a->token, NULL);
	if (!o)
		return sl_error_set(err, SL_ERR_INTERNAL, "this server runs no executions");
	if (!o->scratch)
		return tcall(o, b, what, a, err);
	store_batch_t *xb = NULL;
	sl_err rc = ebatch(o, &xb);
	if (rc == SL_OK && (rc = store_savepoint_begin(xb)) == SL_OK) {
		if ((rc = tcall(o, xb, what, a, err)) == SL_OK)
			rc = store_savepoint_release(xb);
		else
			store_savepoint_rollback(xb);
	}
	if (rc == SL_OK)
		srv_engine_kick(o);
	return rc;
}

sl_err
srv_engine_task_started(srv_t *s, store_batch_t *b, const char *token, const char *worker_name,
                        struct step_started *out, struct sl_error *err)
{
	struct targs a = { .token = token, .worker = worker_name, .started = out };
	return routed(s, b, T_STARTED, &a, err);
}

sl_err
srv_engine_task_succeed(srv_t *s, store_batch_t *b, const char *token, json_t *output,
                        struct sl_error *err)
{
	struct targs a = { .token = token, .output = output };
	return routed(s, b, T_SUCCEED, &a, err);
}

sl_err
srv_engine_task_fail(srv_t *s, store_batch_t *b, const char *token, const char *error,
                     const char *cause, struct sl_error *err)
{
	struct targs a = { .token = token, .error = error, .cause = cause };
	return routed(s, b, T_FAIL, &a, err);
}

sl_err
srv_engine_task_heartbeat(srv_t *s, store_batch_t *b, const char *token, struct sl_error *err)
{
	struct targs a = { .token = token };
	return routed(s, b, T_HEARTBEAT, &a, err);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

/* The events and effects every engine has. */
static sl_err
engine_init(srv_engine_t *e, srv_t *s, srv_engine_t *root, store_t *st, bool express)
{
	e->srv = s;
	e->root = root ? root : e;
	e->armed_due = INT64_MAX;
	e->fx = (struct step_effects) { .arg = e,
		                        .task = on_task,
		                        .timer = on_timer_fx,
		                        .finished = on_finished,
		                        // AWS sends status-change events for STANDARD only
		                        .status = express ? NULL : on_status };
	// tasks are Started when a worker takes them (srv_dispatch.c)
	struct step_options opt = { .lease_tasks = true,
		                    .item_reader_root = s->cfg.item_reader_root,
		                    .no_history = express };
	sl_err rc = step_engine_new(st, &opt, &e->step);
	if (rc != SL_OK)
		return rc;
	step_engine_set_resolver(e->step, resolve, e);
	e->run_ev = evtimer_new(srv_base(s), on_run, e);
	e->timer_ev = evtimer_new(srv_base(s), on_timer, e);
	e->mock_ev = event_new(srv_base(s), -1, 0, on_mock, e);
	if (!e->run_ev || !e->timer_ev || !e->mock_ev)
		return SL_ERR_NOMEM;
	// engine work yields to requests and runs before the group commit
	event_priority_set(e->run_ev, SRV_PRIO_NORMAL);
	event_priority_set(e->timer_ev, SRV_PRIO_NORMAL);
	event_priority_set(e->mock_ev, SRV_PRIO_NORMAL);
	return SL_OK;
}

static void
engine_clear(srv_engine_t *e)
{
	if (e->run_ev)
		event_free(e->run_ev);
	if (e->timer_ev)
		event_free(e->timer_ev);
	if (e->mock_ev)
		event_free(e->mock_ev);
	while (e->mq_head) {
		struct mtask *q = e->mq_head;
		e->mq_head = q->next;
		sl_free(q->arn);
		sl_free(q->state);
		sl_free(q);
	}
	step_engine_free(e->step);
}

/* DATA/express, emptied: what it held died with the last process (never fsync'd). */
static sl_err
scratch_open(srv_t *s, store_t **out, struct sl_error *err)
{
	char *dir = sl_asprintf("%s/express", s->cfg.data_dir);
	if (!dir)
		return SL_ERR_NOMEM;
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char *p = sl_asprintf("%s/%s", dir, de->d_name);
			if (p && unlink(p) != 0)
				sl_warn("engine", "cannot remove %s", p);
			sl_free(p);
		}
		closedir(d);
	}
	struct store_options o = { .no_sync = true, .max_batch_ops = 65536 };
	sl_err rc = store_open(dir, &o, out, err);
	sl_free(dir);
	return rc;
}

static sl_err
express_new(srv_engine_t *root, struct sl_error *err)
{
	srv_engine_t *x = SL_NEW(srv_engine_t);
	if (!x)
		return SL_ERR_NOMEM;
	root->x = x;
	sl_err rc = scratch_open(root->srv, &x->scratch, err);
	if (rc != SL_OK)
		return rc;
	if ((rc = engine_init(x, root->srv, root, x->scratch, true)) != SL_OK)
		return sl_error_set(err, rc, "cannot create the EXPRESS engine");
	x->flush_ev = event_new(srv_base(root->srv), -1, 0, on_xflush, x);
	x->sweep_ev = event_new(srv_base(root->srv), -1, EV_PERSIST, on_sweep, x);
	if (!x->flush_ev || !x->sweep_ev)
		return SL_ERR_NOMEM;
	event_priority_set(x->flush_ev, SRV_PRIO_FLUSH);
	event_priority_set(x->sweep_ev, SRV_PRIO_NORMAL);
	struct timeval sec = { 1, 0 };
	evtimer_add(x->sweep_ev, &sec);
	return SL_OK;
}

/* Start-up: express executions with a start and no end. Asynchronous ones run again from
 * the beginning (at-least-once); synchronous ones are closed ABORTED (at-most-once). */
static sl_err
express_recover(srv_engine_t *e, store_batch_t *b, struct sl_error *err)
{
	srv_engine_t *x = e->x;
	store_txn_t *txn = store_batch_txn(b);
	struct store_key pk;
	store_key_init(&pk);
	store_key_u32(&pk, XTAG_PEND);
	store_cursor_t *c = NULL;
	sl_err rc = store_cursor_open(txn, STORE_DB_EXECUTIONS, &c);
	if (rc != SL_OK)
		return rc;
	// the keys, not the ARNs: a long ARN is hashed in its key (store_key_str)
	struct store_key *keys = NULL;
	size_t n = 0, cap = 0;
	struct store_val k, v;
	rc = store_cursor_seek_prefix(c, pk.buf, pk.len);
	while (rc == SL_OK && (rc = store_cursor_next(c, &k, &v)) == SL_OK) {
		if (k.len <= 4 || k.len > STORE_MAX_KEY)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct store_key *nk = sl_reallocarray(keys, nc, sizeof *nk);
			if (!nk) {
				rc = SL_ERR_NOMEM;
				break;
			}
			keys = nk;
			cap = nc;
		}
		store_key_init(&keys[n]);
		memcpy(keys[n].buf, k.data, k.len);
		keys[n++].len = k.len;
	}
	store_cursor_close(c);
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
	store_batch_t *xb = NULL;
	for (size_t i = 0; i < n && rc == SL_OK; i++) {
		struct store_key rk = keys[i];
		struct store_key ptag;
		store_key_init(&ptag);
		store_key_u32(&ptag, XTAG_REC);
		memcpy(rk.buf, ptag.buf, 4); // the same ARN under the record's tag
		json_t *rec = NULL;
		if (store_get(txn, STORE_DB_EXECUTIONS, rk.buf, rk.len, &v) == SL_OK)
			rec = json_loadb(v.data, v.len, 0, NULL);
		const char *machine = json_string_value(json_object_get(rec, "machine"));
		const char *name = json_string_value(json_object_get(rec, "name"));
		const char *xarn = json_string_value(json_object_get(rec, "arn"));
		if (!machine || !name || !xarn) {
			sl_warn("engine", "an EXPRESS start record is unreadable: dropped");
			rc = store_del(txn, STORE_DB_EXECUTIONS, keys[i].buf, keys[i].len);
			json_decref(rec);
			continue;
		}
		char arns_i[STEP_ARN_MAX];
		snprintf(arns_i, sizeof arns_i, "%s", xarn);
		int64_t now = sl_clock_now_ms();
		if (json_is_true(json_object_get(rec, "sync"))) {
			sl_info("engine",
			        "synchronous %s was cut by a stop: ABORTED, not run again", arns_i);
			rc = xput_end(
			        txn, arns_i, rec, STEP_ABORTED, now, NULL, "States.Runtime",
			        "the server stopped during this synchronous EXPRESS execution "
			        "(at-most-once: not run again)");
			json_decref(rec);
			continue;
		}
		uint32_t rev = (uint32_t)json_integer_value(json_object_get(rec, "revision"));
		json_t *input = json_object_get(rec, "input");
		const char *iname = json_string_value(json_object_get(rec, "iname"));
		struct step_start st = { .machine = machine,
			                 .revision = rev,
			                 .name = iname ? iname : name,
			                 .input = input };
		struct sl_error e2;
		sl_error_clear(&e2);
		char arn[STEP_ARN_MAX];
		struct xrun *r = NULL;
		sl_err r2 = ebatch(x, &xb);
		if (r2 == SL_OK)
			r2 = step_start(x->step, xb, &st, arn, &x->fx, &e2);
		if (r2 == SL_OK
		    && !(r = xnew(x, arn, arns_i, machine, rev, name, st.name, input,
		                  json_integer_value(json_object_get(rec, "start")), false)))
			r2 = SL_ERR_NOMEM;
		if (r2 == SL_OK) {
			xlink(x, r);
			x->xstats.rerun++;
			sl_info("engine", "EXPRESS %s runs again from the start (at-least-once)",
			        arns_i);
		} else {
			sl_warn("engine", "EXPRESS %s cannot run again: %s", arns_i,
			        e2.code ? sl_error_text(&e2) : sl_err_message(r2));
			rc = xput_end(txn, arns_i, rec, STEP_FAILED, now, NULL, "States.Runtime",
			              e2.code ? sl_error_text(&e2) : sl_err_message(r2));
		}
		json_decref(rec);
	}
	sl_free(keys);
	if (rc != SL_OK)
		return sl_error_set(err, rc, "cannot recover EXPRESS executions");
	if (x->n_xr)
		srv_engine_kick(x);
	return SL_OK;
}

/* --mock-config: read once at start; each execution parses its test case from it. */
static sl_err
mock_config_load(srv_engine_t *e, struct sl_error *err)
{
	const char *path = e->srv->cfg.mock_config;
	if (!path)
		return SL_OK;
	json_error_t je;
	e->mock_doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!e->mock_doc)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "--mock-config %s: %s (line %d)", path,
		                    je.text, je.line);
	if (!json_is_object(json_object_get(e->mock_doc, "StateMachines")))
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "--mock-config %s: expected an object with StateMachines and "
		                    "MockedResponses (Step Functions Local's MockConfigFile)",
		                    path);
	return SL_OK;
}

sl_err
srv_engine_new(srv_t *s, srv_engine_t **out, struct sl_error *err)
{
	srv_engine_t *e = SL_NEW(srv_engine_t);
	if (!e)
		return SL_ERR_NOMEM;
	e->next = engines;
	engines = e;
	sl_err rc = engine_init(e, s, NULL, srv_store(s), false);
	if (rc != SL_OK) {
		srv_engine_free(e);
		return sl_error_set(err, rc, "cannot create the execution engine");
	}
	if ((rc = mock_config_load(e, err)) != SL_OK || (rc = express_new(e, err)) != SL_OK) {
		if (err && err->code == SL_OK)
			sl_error_set(err, rc, "cannot create the EXPRESS engine");
		srv_engine_free(e);
		return rc;
	}
	if ((rc = srv_dispatch_new(s, e->step, &e->fx, &e->dispatch, err)) != SL_OK
	    || (rc = srv_api_tasks_register(s)) != SL_OK) {
		if (err && err->code == SL_OK)
			sl_error_set(err, rc, "cannot start task dispatch");
		srv_engine_free(e);
		return rc;
	}
	store_batch_t *b = NULL;
	if ((rc = srv_batch(s, &b)) == SL_OK
	    && (rc = step_engine_recover(e->step, b, err)) == SL_OK) {
		e->replaying = true;
		rc = step_tasks_replay(e->step, store_batch_txn(b), &e->fx, err);
		e->replaying = false;
	}
	if (rc == SL_OK)
		rc = express_recover(e, b, err);
	if (rc != SL_OK) {
		if (err && err->code == SL_OK)
			sl_error_set(err, rc, "cannot recover executions");
		srv_engine_free(e);
		return rc;
	}
	if (e->tasks_waiting)
		sl_info("engine", "%llu task(s) in flight wait for workers",
		        (unsigned long long)e->tasks_waiting);
	rearm_from(e, store_batch_txn(b));
	srv_engine_kick(e);
	*out = e;
	return SL_OK;
}

static void
express_free(srv_engine_t *x)
{
	if (!x)
		return;
	if (x->flush_ev)
		event_free(x->flush_ev);
	if (x->sweep_ev)
		event_free(x->sweep_ev);
	for (size_t i = 0; i < XBUCKETS; i++)
		while (x->xr[i]) {
			struct xrun *r = x->xr[i];
			x->xr[i] = r->hnext;
			if (r->sync)
				srv_reply_error(r->sync, SL_ERR_SHUTTING_DOWN,
				                "the server stopped");
			xfree(r);
		}
	engine_clear(x);
	sl_free(x->purge);
	if (x->scratch) {
		store_batch_abort(x->scratch, SL_ERR_SHUTTING_DOWN);
		store_free(x->scratch);
	}
	sl_free(x);
}

void
srv_engine_free(srv_engine_t *e)
{
	if (!e)
		return;
	for (srv_engine_t **p = &engines; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	srv_dispatch_free(e->dispatch);
	express_free(e->x);
	engine_clear(e);
	for (size_t i = 0; i < e->n_mc; i++) {
		sl_free(e->mc[i].name);
		sm_machine_free(e->mc[i].m);
	}
	sl_free(e->mc);
	for (size_t i = 0; i < XBUCKETS; i++)
		while (e->mr[i])
			mdel(e, e->mr[i]->arn);
	json_decref(e->mock_doc);
	sl_free(e);
}
