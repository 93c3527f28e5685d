/*
 * srv_workers.c - the NNG REP socket workers talk to (the wire is workers/wk_proto.h; the
 * whole story is docs/WORKERS.md).
 *
 * A pool of contexts, each with its own aio: receive a frame (NNG thread), hand it to the
 * loop through the bridge, answer there (at once, after a commit, or when a held poll gets
 * tasks or its wait ends), send (NNG thread), receive again. The pool bounds the requests
 * the server holds: polls may hold at most POLLS_HELD of them, so results and heartbeats
 * always find a free context.
 *
 * Every poll is answered once: a poll id seen again (NNG's REQ re-sends a request when its
 * pipe drops, or after its resend time) joins the held poll, or gets the cached answer with
 * the same tasks, never new leases. Frames are untrusted: anything malformed gets an error
 * reply and a log line.
 */
#include <arpa/inet.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_log.h"
#include "server/srv_dispatch.h"
#include "server/srv_engine.h"
#include "server/srv_internal.h"
#include "workers/wk_proto.h"

#define CTX_POOL        256
#define POLLS_HELD      (CTX_POOL - 32)
#define CACHE_BUCKETS   1024
#define CACHE_MAX_ENTS  4096
#define CACHE_MAX_BYTES (16u * 1024 * 1024)
#define STOP_SEND_MS    1000
#define PEM_MAX         (256 * 1024)

enum cstate { C_IDLE, C_RECV, C_LOOP, C_SEND };

struct pent;

struct wctx {
	struct srv_workers *w;
	nng_ctx ctx;
	nng_aio *aio;
	_Atomic int st;
	nng_msg *in;
	struct pent *poll;     /* the poll this context holds or waits on */
	struct wctx *dup_next; /* other contexts waiting on the same poll */
	char token[1025];      /* the result being committed */
	uint32_t pipe;         /* the connection the request came on */
	bool result_done;      /* success/failure: the lease ends with the commit */
};

/* A poll by worker and id: held (owner waiting for tasks) or answered (reply kept). */
struct pent {
	char *key;
	bool answered;
	struct wctx *owner; /* held: the context that answers */
	struct wctx *dups;  /* held: re-sends of the same poll */
	srv_dispatch_poll_t *dp;
	char *reply;
	size_t len;
	char (*tokens)[STEP_TOKEN_LEN + 1]; /* answered: the tasks it leased */
	size_t n_tokens;
	struct pent *hnext;
	struct pent *older, *newer; /* answered entries, oldest first */
};

struct srv_workers {
	srv_t *srv;
	nng_socket sock;
	nng_listener listener;
	nng_tls_config *tls;
	struct wctx ctxs[CTX_POOL];
	struct wk_limits lim;
	struct pent *cache[CACHE_BUCKETS];
	struct pent *oldest, *newest;
	size_t n_cached, cached_bytes, held;
	bool open;
	atomic_bool closing;
};

/* ---- sending -------------------------------------------------------------------------- */

static void
arm_recv(struct wctx *c)
{
	atomic_store(&c->st, C_RECV);
	nng_aio_set_timeout(c->aio, NNG_DURATION_INFINITE);
	nng_ctx_recv(c->ctx, c->aio);
}

/* Loop thread: answers the request c holds with buf (copied). */
static void
send_bytes(struct wctx *c, const char *buf, size_t len)
{
	nng_msg *m = NULL;
	if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, buf, len) != 0) {
		if (m)
			nng_msg_free(m);
		sl_errorf("workers", "out of memory answering a worker");
		arm_recv(c); /* the worker's REQ times out and re-sends */
		return;
	}
	atomic_store(&c->st, C_SEND);
	nng_aio_set_msg(c->aio, m);
	nng_aio_set_timeout(c->aio,
	                    atomic_load(&c->w->closing) ? STOP_SEND_MS : NNG_DURATION_DEFAULT);
	nng_ctx_send(c->ctx, c->aio);
}

static void send_error(struct wctx *c, const char *error, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
send_error(struct wctx *c, const char *error, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char *buf = NULL;
	size_t len = 0;
	// messages may quote worker input that is not UTF-8: fall back to a plain one
	if (wk_encode_error(error, msg, &buf, &len) != SL_OK
	    && wk_encode_error(error, "invalid request", &buf, &len) != SL_OK) {
		arm_recv(c);
		return;
	}
	send_bytes(c, buf, len);
	sl_free(buf);
}

static void
send_ok(struct wctx *c)
{
	char *buf = NULL;
	size_t len = 0;
	if (wk_encode_ok(&buf, &len) != SL_OK) {
		arm_recv(c);
		return;
	}
	send_bytes(c, buf, len);
	sl_free(buf);
}

/* ---- the poll cache ------------------------------------------------------------------- */

static uint32_t
hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct pent *
cache_find(struct srv_workers *w, const char *key)
{
	for (struct pent *p = w->cache[hash(key) % CACHE_BUCKETS]; p; p = p->hnext)
		if (strcmp(p->key, key) == 0)
			return p;
	return NULL;
}

static void
cache_remove(struct srv_workers *w, struct pent *p)
{
	for (struct pent **pp = &w->cache[hash(p->key) % CACHE_BUCKETS]; *pp; pp = &(*pp)->hnext)
		if (*pp == p) {
			*pp = p->hnext;
			break;
		}
	if (p->answered) {
		if (p->older)
			p->older->newer = p->newer;
		else
			w->oldest = p->newer;
		if (p->newer)
			p->newer->older = p->older;
		else
			w->newest = p->older;
		w->n_cached--;
		w->cached_bytes -= p->len;
	}
	sl_free(p->key);
	sl_free(p->reply);
	sl_free(p->tokens);
	sl_free(p);
}

/* Keeps an answered poll's reply for re-sends, within the cache's bounds. */
static void
cache_keep(struct srv_workers *w, struct pent *p, char *reply, size_t len)
{
	p->answered = true;
	p->reply = reply;
	p->len = len;
	p->older = w->newest;
	p->newer = NULL;
	if (w->newest)
		w->newest->newer = p;
	else
		w->oldest = p;
	w->newest = p;
	w->n_cached++;
	w->cached_bytes += len;
	while (w->oldest && (w->n_cached > CACHE_MAX_ENTS || w->cached_bytes > CACHE_MAX_BYTES))
		cache_remove(w, w->oldest);
}

/* ---- polls ---------------------------------------------------------------------------- */

static void
on_poll_answer(void *arg, sl_err status, const struct srv_dispatch_task *tasks, size_t n)
{
	struct pent *p = arg;
	struct wctx *owner = p->owner;
	struct srv_workers *w = owner->w;
	p->dp = NULL;
	p->owner = NULL;
	w->held--;
	struct wk_task wt[64];
	for (size_t i = 0; i < n && i < 64; i++)
		wt[i] = (struct wk_task) {
			.token = tasks[i].token,
			.activity = tasks[i].name,
			.input = tasks[i].input,
			.timeout_s
			= tasks[i].timeout_seconds > 0 && tasks[i].timeout_seconds < 99999999
			        ? (uint32_t)tasks[i].timeout_seconds
			        : 0,
			.heartbeat_s
			= (uint32_t)(tasks[i].heartbeat_seconds > 0 ? tasks[i].heartbeat_seconds
			                                            : 0),
		};
	const char *id = strchr(p->key, '\x1f') + 1;
	char *buf = NULL;
	size_t len = 0;
	sl_err rc = status == SL_OK ? wk_encode_tasks(id, wt, n, &buf, &len)
	                            : wk_encode_error(sl_err_aws_type(status),
	                                              "the tasks could not be leased", &buf, &len);
	struct wctx *dups = p->dups;
	p->dups = NULL;
	for (struct wctx *c = owner; c;) {
		struct wctx *next = c == owner ? dups : c->dup_next;
		c->poll = NULL;
		c->dup_next = NULL;
		if (rc == SL_OK)
			send_bytes(c, buf, len);
		else
			send_error(c, "InternalFailure", "out of memory encoding tasks");
		c = next;
	}
	if (rc == SL_OK && status == SL_OK && n > 0 && !atomic_load(&w->closing)
	    && (p->tokens = sl_calloc(n, sizeof *p->tokens))) {
		for (size_t i = 0; i < n; i++)
			snprintf(p->tokens[i], sizeof p->tokens[i], "%s", tasks[i].token);
		p->n_tokens = n;
		cache_keep(w, p, buf, len); /* a re-send gets these tasks again */
	} else {
		sl_free(buf);
		cache_remove(w, p); /* nothing was leased: a re-send may poll afresh */
	}
}

/* True when some task of an answered poll is still leased and awaited. */
static bool
still_leased(struct srv_workers *w, const struct pent *p)
{
	srv_engine_t *eng = srv_engine_of(w->srv);
	store_batch_t *b = store_batch_current(srv_store(w->srv));
	store_txn_t *txn = b ? store_batch_txn(b) : NULL;
	bool reader = false;
	if (!eng)
		return false;
	if (!txn) {
		if (store_read_begin(srv_store(w->srv), &txn) != SL_OK)
			return true; /* cannot tell: the safe answer is the same answer */
		reader = true;
	}
	bool leased = false;
	for (size_t i = 0; i < p->n_tokens && !leased; i++) {
		struct step_task_info ti;
		leased = srv_engine_task_info(w->srv, txn, p->tokens[i], &ti) != SL_OK
		        || ti.state == STEP_TASK_TAKEN;
	}
	if (reader)
		store_read_end(txn);
	return leased;
}

static void
handle_poll(struct srv_workers *w, struct wctx *c, const struct wk_msg *m)
{
	const char *worker = m->worker ? m->worker : "";
	char *key = sl_asprintf("%s\x1f%s", worker, m->poll_id);
	if (!key) {
		send_error(c, "InternalFailure", "out of memory");
		return;
	}
	struct pent *p = cache_find(w, key);
	if (p && p->answered && !still_leased(w, p)) {
		/* every task it handed out is finished: not a re-send but a worker that started
		 * again under the same name and counts its poll ids from 1 */
		cache_remove(w, p);
		p = NULL;
	}
	if (p) {
		sl_free(key);
		w->srv->metrics.frames_ok++;
		if (p->answered) {
			sl_debug("workers", "poll %s of %s again: same answer", m->poll_id, worker);
			send_bytes(c, p->reply, p->len);
		} else { /* held: answer both when it is answered */
			c->poll = p;
			c->dup_next = p->dups;
			p->dups = c;
		}
		return;
	}
	srv_dispatch_t *d = srv_dispatch_of(w->srv);
	if (!d) {
		sl_free(key);
		send_error(c, "ServiceUnavailable", "this server does not dispatch tasks");
		return;
	}
	if (w->held >= POLLS_HELD) {
		sl_free(key);
		send_error(c, "ThrottlingException", "%zu polls are held already: poll again later",
		           w->held);
		return;
	}
	p = SL_NEW(struct pent);
	if (!p) {
		sl_free(key);
		send_error(c, "InternalFailure", "out of memory");
		return;
	}
	p->key = key;
	p->owner = c;
	uint32_t b = hash(key) % CACHE_BUCKETS;
	p->hnext = w->cache[b];
	w->cache[b] = p;
	c->poll = p;
	w->held++;
	w->srv->metrics.frames_ok++;
	uint32_t wait = m->wait_ms > w->lim.max_wait_ms ? w->lim.max_wait_ms : m->wait_ms;
	struct srv_dispatch_poll_req req = { .names = m->activities,
		                             .n_names = m->n_activities,
		                             .max_tasks = m->max_tasks,
		                             .wait_ms = wait,
		                             .worker = m->worker,
		                             .fn = on_poll_answer,
		                             .arg = p };
	srv_dispatch_poll_t *dp = NULL;
	sl_err rc = srv_dispatch_poll(d, &req, &dp);
	if (rc != SL_OK) {
		w->held--;
		c->poll = NULL;
		p->owner = NULL;
		cache_remove(w, p);
		send_error(c,
		           rc == SL_ERR_SHUTTING_DOWN ? "ServiceUnavailable" : sl_err_aws_type(rc),
		           "poll refused: %s", sl_err_message(rc));
		return;
	}
	if (dp) /* still held; when answered at once, p may be gone already */
		p->dp = dp;
}

/* ---- results -------------------------------------------------------------------------- */

static void
on_result_commit(void *arg, sl_err status)
{
	struct wctx *c = arg;
	if (status != SL_OK) {
		send_error(c, "InternalFailure", "the result could not be committed: %s",
		           sl_err_message(status));
		return;
	}
	if (c->result_done)
		srv_dispatch_done(srv_dispatch_of(c->w->srv), c->token);
	send_ok(c);
}

static bool
is_lambda_invoke(const struct step_task_info *ti)
{
	return ti->kind == SM_RESOURCE_SERVICE && strcmp(ti->name, "lambda") == 0
	        && strcmp(ti->action, "invoke") == 0;
}

static void
handle_result(struct srv_workers *w, struct wctx *c, const struct wk_msg *m)
{
	srv_engine_t *eng = srv_engine_of(w->srv);
	if (!eng) {
		send_error(c, "ServiceUnavailable", "this server runs no executions");
		return;
	}
	store_batch_t *b = NULL;
	sl_err rc = srv_batch(w->srv, &b);
	if (rc == SL_OK && (rc = store_savepoint_begin(b)) != SL_OK)
		b = NULL;
	if (rc != SL_OK) {
		send_error(c, "InternalFailure", "no store batch: %s", sl_err_message(rc));
		return;
	}
	struct sl_error err;
	sl_error_clear(&err);
	struct step_task_info ti;
	rc = srv_engine_task_info(w->srv, store_batch_txn(b), m->token, &ti);
	if (rc == SL_OK && ti.state == STEP_TASK_GONE)
		rc = SL_ERR_TASK_NOT_FOUND;
	bool ack_only = false;
	if (rc == SL_OK && m->type == WK_MSG_SUCCESS) {
		if (ti.integration == SM_INTEGRATION_WAIT_FOR_TASK_TOKEN) {
			// the callback pattern: the execution waits for SendTaskSuccess/Failure
			ack_only = true;
		} else if (is_lambda_invoke(&ti)) {
			json_t *out = json_pack("{s:s, s:O, s:i}", "ExecutedVersion", "$LATEST",
			                        "Payload", m->output, "StatusCode", 200);
			rc = out ? srv_engine_task_succeed(w->srv, b, m->token, out, &err)
			         : SL_ERR_NOMEM;
			json_decref(out);
		} else {
			rc = srv_engine_task_succeed(w->srv, b, m->token, m->output, &err);
		}
	} else if (rc == SL_OK && m->type == WK_MSG_FAILURE) {
		rc = srv_engine_task_fail(w->srv, b, m->token, m->error, m->cause, &err);
	} else if (rc == SL_OK) {
		rc = srv_engine_task_heartbeat(w->srv, b, m->token, &err);
	}
	if (rc != SL_OK || ack_only) {
		store_savepoint_rollback(b);
		if (ack_only) {
			w->srv->metrics.frames_ok++;
			send_ok(c);
			return;
		}
		if (rc == SL_ERR_TASK_NOT_FOUND)
			rc = srv_dispatch_gone_code(w->srv, m->token);
		if (rc == SL_ERR_TASK_NOT_FOUND || rc == SL_ERR_TASK_TIMED_OUT
		    || rc == SL_ERR_INVALID_TOKEN) {
			sl_debug("workers", "%s for task %.64s refused: %s",
			         wk_msg_type_name(m->type), m->token, sl_err_aws_type(rc));
			send_error(c, sl_err_aws_type(rc), "%s: '%.64s'",
			           rc == SL_ERR_TASK_TIMED_OUT          ? "Task Timed Out"
			                   : rc == SL_ERR_INVALID_TOKEN ? "Invalid Token"
			                                                : "Task Does Not Exist",
			           m->token);
			return;
		}
		sl_errorf("workers", "%s for task %.64s failed: %s", wk_msg_type_name(m->type),
		          m->token, err.code ? sl_error_text(&err) : sl_err_message(rc));
		send_error(c, sl_err_aws_type(rc), "%s",
		           err.code ? sl_error_text(&err) : sl_err_message(rc));
		return;
	}
	if ((rc = store_savepoint_release(b)) != SL_OK) {
		/* the batch's state is unknown: fail all of it rather than commit a part */
		store_batch_abort(srv_store(w->srv), rc);
		send_error(c, "InternalFailure", "the result could not be kept");
		return;
	}
	w->srv->metrics.frames_ok++;
	snprintf(c->token, sizeof c->token, "%s", m->token);
	c->result_done = m->type != WK_MSG_HEARTBEAT;
	srv_engine_kick(eng);
	if (store_batch_on_commit(b, on_result_commit, c) != SL_OK) {
		send_error(c, "InternalFailure", "cannot wait for the commit");
		return;
	}
}

/* ---- frames --------------------------------------------------------------------------- */

/* Constant-time comparison of the shared secret. */
static bool
auth_ok(const char *want, const char *got)
{
	if (!want)
		return true;
	if (!got)
		return false;
	size_t n = strlen(want), g = strlen(got);
	unsigned char diff = (unsigned char)(n != g);
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < g ? got[i] : 0);
	return diff == 0;
}

static void
on_frame(void *arg)
{
	struct wctx *c = arg;
	struct srv_workers *w = c->w;
	nng_msg *in = c->in;
	c->in = NULL;
	if (atomic_load(&w->closing)) {
		nng_msg_free(in);
		atomic_store(&c->st, C_IDLE);
		return;
	}
	atomic_store(&c->st, C_LOOP);
	c->pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(in));
	struct wk_msg m;
	struct sl_error err;
	sl_error_clear(&err);
	sl_err rc = wk_msg_decode(nng_msg_body(in), nng_msg_len(in), &w->lim, &m, &err);
	size_t len = nng_msg_len(in);
	nng_msg_free(in);
	if (rc != SL_OK) {
		const char *e = rc == SL_ERR_TOO_LARGE   ? WK_ERR_TOO_LARGE
		        : rc == SL_ERR_INVALID_ARG       ? WK_ERR_VERSION
		        : rc == SL_ERR_UNKNOWN_OPERATION ? WK_ERR_UNKNOWN
		        : rc == SL_ERR_NOMEM             ? "InternalFailure"
		                                         : WK_ERR_MALFORMED;
		if (rc == SL_ERR_UNKNOWN_OPERATION)
			w->srv->metrics.frames_unknown++;
		else
			w->srv->metrics.frames_malformed++;
		sl_warn("workers", "malformed frame (%zu bytes): %s: %s", len, e,
		        sl_error_text(&err));
		send_error(c, e, "%s", sl_error_text(&err));
		return;
	}
	if (!auth_ok(w->srv->cfg.workers_token, m.auth)) {
		w->srv->metrics.frames_malformed++;
		sl_warn("workers", "refused a %s: %s", wk_msg_type_name(m.type),
		        m.auth ? "wrong token" : "no token");
		send_error(c, WK_ERR_UNAUTHORIZED, "%s",
		           m.auth ? "the token does not match the server's --workers-token"
		                  : "this server needs a token (--workers-token)");
		wk_msg_clear(&m);
		return;
	}
	switch (m.type) {
	case WK_MSG_POLL: handle_poll(w, c, &m); break;
	case WK_MSG_SUCCESS:
	case WK_MSG_FAILURE:
	case WK_MSG_HEARTBEAT: handle_result(w, c, &m); break;
	default:
		w->srv->metrics.frames_unknown++;
		send_error(c, WK_ERR_UNKNOWN, "'%s' is an answer, not a request",
		           wk_msg_type_name(m.type));
		break;
	}
	wk_msg_clear(&m);
}

/* NNG thread. */
static void
on_aio(void *arg)
{
	struct wctx *c = arg;
	struct srv_workers *w = c->w;
	int rv = nng_aio_result(c->aio);
	if (atomic_load(&c->st) == C_SEND) {
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(c->aio));
		if (atomic_load(&w->closing) || rv == NNG_ECLOSED) {
			atomic_store(&c->st, C_IDLE);
			return;
		}
		arm_recv(c);
		return;
	}
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED || atomic_load(&w->closing)) {
		if (rv == 0)
			nng_msg_free(nng_aio_get_msg(c->aio));
		atomic_store(&c->st, C_IDLE);
		return;
	}
	if (rv != 0) {
		sl_warn("workers", "receive failed: %s", nng_strerror(rv));
		arm_recv(c);
		return;
	}
	c->in = nng_aio_get_msg(c->aio);
	atomic_store(&c->st, C_LOOP);
	if (srv_bridge_post(w->srv->bridge, on_frame, c) != SL_OK) {
		nng_msg_free(c->in);
		c->in = NULL;
		arm_recv(c);
	}
}

/* ---- connections that go away -------------------------------------------------------- */

struct gone {
	struct srv_workers *w;
	uint32_t pipe;
};

/* Loop thread: a worker's connection closed. Its held polls are withdrawn, so no task is
 * leased to a requester that cannot receive it (a REP reply to a vanished REQ "succeeds"). */
static void
on_pipe_gone(void *arg)
{
	struct gone *g = arg;
	struct srv_workers *w = g->w;
	uint32_t pipe = g->pipe;
	sl_free(g);
	if (atomic_load(&w->closing))
		return;
	char *empty = NULL;
	size_t elen = 0;
	for (size_t i = 0; i < CTX_POOL; i++) {
		struct wctx *c = &w->ctxs[i];
		struct pent *p = c->poll;
		if (!p || c->pipe != pipe || p->owner != c)
			continue;
		/* a re-send on a live connection takes the poll over */
		struct wctx **dp = &p->dups;
		while (*dp && (*dp)->pipe == pipe)
			dp = &(*dp)->dup_next;
		struct wctx *heir = *dp;
		if (heir) {
			*dp = heir->dup_next;
			heir->dup_next = NULL;
			p->owner = heir;
		} else {
			srv_dispatch_t *d = srv_dispatch_of(w->srv);
			if (d && p->dp)
				srv_dispatch_cancel(d, p->dp);
			w->held--;
		}
		c->poll = NULL;
		const char *id = strchr(p->key, '\x1f') + 1;
		if (!empty && wk_encode_tasks(id, NULL, 0, &empty, &elen) != SL_OK)
			empty = NULL;
		/* the context must answer to be free again; nobody will read it */
		if (empty)
			send_bytes(c, empty, elen);
		else
			arm_recv(c);
		if (!heir) {
			for (struct wctx *dc = p->dups, *next; dc; dc = next) {
				next = dc->dup_next;
				dc->poll = NULL;
				dc->dup_next = NULL;
				if (empty)
					send_bytes(dc, empty, elen);
				else
					arm_recv(dc);
			}
			p->dups = NULL;
			p->owner = NULL;
			cache_remove(w, p);
		}
		sl_free(empty);
		empty = NULL;
		sl_debug("workers", "a worker's connection closed: its held poll is withdrawn");
	}
}

/* NNG thread. */
static void
on_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct srv_workers *w = arg;
	if (ev != NNG_PIPE_EV_REM_POST || atomic_load(&w->closing))
		return;
	struct gone *g = SL_NEW(struct gone);
	if (!g)
		return;
	g->w = w;
	g->pipe = (uint32_t)nng_pipe_id(pipe);
	if (srv_bridge_post(w->srv->bridge, on_pipe_gone, g) != SL_OK)
		sl_free(g);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static char *
read_pem(const char *path, struct sl_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		sl_error_set(err, SL_ERR_IO, "cannot read %s", path);
		return NULL;
	}
	char *buf = sl_malloc(PEM_MAX + 1);
	size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
	fclose(f);
	if (!buf || n == 0 || n > PEM_MAX) {
		sl_free(buf);
		sl_error_set(err, SL_ERR_INVALID_ARG, "%s: expected a PEM file of at most %d bytes",
		             path, PEM_MAX);
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

static sl_err
setup_tls(srv_t *s, struct srv_workers *w, struct sl_error *err)
{
	const struct srv_config *cfg = &s->cfg;
	if (!cfg->workers_cert || !cfg->workers_key)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "%s needs --workers-cert and --workers-key", cfg->workers);
	char *cert = read_pem(cfg->workers_cert, err);
	char *key = cert ? read_pem(cfg->workers_key, err) : NULL;
	if (!cert || !key) {
		sl_free(cert);
		return SL_ERR_INVALID_ARG;
	}
	int rv = nng_tls_config_alloc(&w->tls, NNG_TLS_MODE_SERVER);
	if (rv == 0)
		rv = nng_tls_config_own_cert(w->tls, cert, key, NULL);
	if (rv == 0)
		rv = nng_listener_set_ptr(w->listener, NNG_OPT_TLS_CONFIG, w->tls);
	sl_free(cert);
	sl_free(key);
	if (rv != 0)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "workers TLS (%s, %s): %s",
		                    cfg->workers_cert, cfg->workers_key, nng_strerror(rv));
	return SL_OK;
}

sl_err
srv_workers_start(srv_t *s, struct sl_error *err)
{
	struct srv_workers *w = SL_NEW(struct srv_workers);
	if (!w)
		return SL_ERR_NOMEM;
	w->srv = s;
	s->workers = w;
	wk_limits_resolve(NULL, &w->lim);
	int rv = nng_rep0_open(&w->sock);
	if (rv != 0)
		return sl_error_set(err, SL_ERR_IO, "workers socket: %s", nng_strerror(rv));
	w->open = true;
	if ((rv = nng_socket_set_size(w->sock, NNG_OPT_RECVMAXSZ, w->lim.max_frame)) != 0
	    || (rv = nng_pipe_notify(w->sock, NNG_PIPE_EV_REM_POST, on_pipe_event, w)) != 0)
		return sl_error_set(err, SL_ERR_IO, "workers socket: %s", nng_strerror(rv));
	for (size_t i = 0; i < CTX_POOL; i++) {
		struct wctx *c = &w->ctxs[i];
		c->w = w;
		if ((rv = nng_ctx_open(&c->ctx, w->sock)) != 0
		    || (rv = nng_aio_alloc(&c->aio, on_aio, c)) != 0)
			return sl_error_set(err, SL_ERR_IO, "workers socket: %s", nng_strerror(rv));
	}
	if ((rv = nng_listener_create(&w->listener, w->sock, s->cfg.workers)) != 0)
		return sl_error_set(err, SL_ERR_IO, "cannot listen for workers on %s: %s",
		                    s->cfg.workers, nng_strerror(rv));
	bool tls = strncmp(s->cfg.workers, "tls+", 4) == 0;
	if (tls && setup_tls(s, w, err) != SL_OK)
		return SL_ERR_INVALID_ARG;
	if (!tls && (s->cfg.workers_cert || s->cfg.workers_key))
		sl_warn("workers", "--workers-cert/--workers-key are used only with tls+tcp://");
	if ((rv = nng_listener_start(w->listener, 0)) != 0)
		return sl_error_set(err, SL_ERR_IO, "cannot listen for workers on %s: %s",
		                    s->cfg.workers, nng_strerror(rv));

	snprintf(s->workers_addr, sizeof s->workers_addr, "%s", s->cfg.workers);
	const char *scheme = tls ? "tls+tcp://" : "tcp://";
	if (strncmp(s->cfg.workers, scheme, strlen(scheme)) == 0) {
		nng_sockaddr sa;
		char host[256];
		uint16_t port;
		if ((rv = nng_listener_get_addr(w->listener, NNG_OPT_LOCADDR, &sa)) != 0)
			return sl_error_set(err, SL_ERR_IO, "workers address: %s",
			                    nng_strerror(rv));
		unsigned bound = sa.s_family == NNG_AF_INET6 ? ntohs(sa.s_in6.sa_port)
		                                             : ntohs(sa.s_in.sa_port);
		if (srv_parse_hostport(s->cfg.workers + strlen(scheme), host, sizeof host, &port,
		                       err)
		    != SL_OK)
			return SL_ERR_INVALID_ARG;
		bool v6 = strchr(host, ':') != NULL;
		snprintf(s->workers_addr, sizeof s->workers_addr, "%s%s%s%s:%u", scheme,
		         v6 ? "[" : "", host, v6 ? "]" : "", bound);
	}
	for (size_t i = 0; i < CTX_POOL; i++)
		arm_recv(&w->ctxs[i]);
	return SL_OK;
}

void
srv_workers_stop(srv_t *s)
{
	struct srv_workers *w = s->workers;
	if (!w || atomic_load(&w->closing))
		return;
	atomic_store(&w->closing, true);
	if (s->store)
		srv_commit(s); /* leases and results waiting for a commit are answered */
	srv_dispatch_stop(srv_dispatch_of(s)); /* held polls: answered with no task */
	// stop every receive, let the answers just sent leave (bounded by STOP_SEND_MS)
	for (size_t i = 0; i < CTX_POOL; i++) {
		struct wctx *c = &w->ctxs[i];
		if (!c->aio)
			continue;
		if (atomic_load(&c->st) == C_SEND)
			nng_aio_wait(c->aio);
		else
			nng_aio_stop(c->aio);
	}
	if (w->open)
		nng_close(w->sock);
	w->open = false;
	for (size_t i = 0; i < CTX_POOL; i++)
		if (w->ctxs[i].aio)
			nng_aio_stop(w->ctxs[i].aio);
}

void
srv_workers_free(srv_t *s)
{
	struct srv_workers *w = s->workers;
	if (!w)
		return;
	srv_workers_stop(s);
	for (size_t i = 0; i < CTX_POOL; i++) {
		if (w->ctxs[i].aio)
			nng_aio_free(w->ctxs[i].aio);
		if (w->ctxs[i].in)
			nng_msg_free(w->ctxs[i].in);
	}
	for (size_t b = 0; b < CACHE_BUCKETS; b++)
		while (w->cache[b])
			cache_remove(w, w->cache[b]);
	if (w->tls)
		nng_tls_config_free(w->tls);
	sl_free(w);
	s->workers = NULL;
}
