/*
 * srv_main.c - the daemon's lifecycle: open, run the loop, drain on a signal, close.
 *
 * Group commit: every write opens (or joins) the store's batch and activates the flush
 * event, which has the lowest priority, so it runs only when the loop has no other ready
 * event: everything that arrived together is committed with one fsync.
 */
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_log.h"
#include "server/srv_internal.h"

void
srv_commit(srv_t *s)
{
	if (!store_batch_current(s->store))
		return;
	sl_err rc = store_batch_commit(s->store);
	if (rc != SL_OK)
		sl_errorf("store", "commit failed: %s", sl_err_message(rc));
	srv_check_drained(s);
}

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_t *s = arg;
	s->metrics.flushes++;
	srv_commit(s);
}

void
srv_flush_soon(srv_t *s)
{
	event_active(s->flush_ev, EV_TIMEOUT, 0);
}

sl_err
srv_batch_get(srv_t *s, bool may_commit, store_batch_t **out)
{
	store_batch_t *cur = store_batch_current(s->store);
	if (cur && may_commit && store_batch_full(cur)) {
		s->metrics.early_commits++;
		srv_commit(s);
		cur = NULL;
	}
	sl_err rc = store_batch_get(s->store, out);
	if (rc != SL_OK)
		return rc;
	if (!cur) {
		s->batch_gen++;
		s->batch_opened_ns = sl_clock_mono_ns();
	}
	srv_flush_soon(s);
	return SL_OK;
}

sl_err
srv_batch(srv_t *s, store_batch_t **out)
{
	return srv_batch_get(s, true, out);
}

/* --- stopping -------------------------------------------------------------------------- */

static void
finish(srv_t *s)
{
	if (s->stopped)
		return;
	s->stopped = true;
	srv_commit(s);
	event_base_loopbreak(s->base);
}

/* Called whenever a request completes or a batch commits. */
void
srv_check_drained(srv_t *s)
{
	if (s->stopping && !s->stopped && s->inflight == 0 && !store_batch_current(s->store))
		finish(s);
}

static void
on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_t *s = arg;
	sl_warn("server", "%zu request(s) still in flight after %us: stopping anyway", s->inflight,
	        s->cfg.drain_timeout_s);
	finish(s);
}

void
srv_stop(srv_t *s)
{
	if (s->stopping)
		return;
	s->stopping = true;
	sl_info("server", "stopping: no new connections, draining %zu request(s)", s->inflight);
	srv_http_stop_accepting(s);
	srv_workers_stop(s);
	srv_req_expire_all(s);
	struct timeval tv = { (time_t)s->cfg.drain_timeout_s, 0 };
	s->drain_ev = evtimer_new(s->base, on_drain_timeout, s);
	if (s->drain_ev)
		evtimer_add(s->drain_ev, &tv);
	else
		finish(s);
	srv_check_drained(s);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	srv_t *s = arg;
	if (s->stopping) {
		sl_warn("server", "second %s: stopping now", sig == SIGINT ? "SIGINT" : "SIGTERM");
		finish(s);
		return;
	}
	sl_info("server", "%s received", sig == SIGINT ? "SIGINT" : "SIGTERM");
	srv_stop(s);
}

/* --- lifecycle ------------------------------------------------------------------------- */

sl_err
srv_new(const struct srv_config *cfg, srv_t **out, struct sl_error *err)
{
	static bool threads_on;
	if (!threads_on) {
		/* before any base exists: NNG threads call event_active on ours */
		if (evthread_use_pthreads() != 0)
			return sl_error_set(err, SL_ERR_INTERNAL, "libevent without pthreads");
		threads_on = true;
	}
	srv_t *s = SL_NEW(srv_t);
	if (!s)
		return SL_ERR_NOMEM;
	sl_err rc = SL_ERR_NOMEM;
	s->cfg = *cfg;
	s->cfg.data_dir = sl_strdup(cfg->data_dir);
	s->cfg.http = sl_strdup(cfg->http);
	s->cfg.workers = sl_strdup(cfg->workers);
	s->cfg.region = sl_strdup(cfg->region);
	s->cfg.account = sl_strdup(cfg->account);
	s->cfg.workers_token = cfg->workers_token ? sl_strdup(cfg->workers_token) : NULL;
	s->cfg.workers_cert = cfg->workers_cert ? sl_strdup(cfg->workers_cert) : NULL;
	s->cfg.workers_key = cfg->workers_key ? sl_strdup(cfg->workers_key) : NULL;
	s->cfg.item_reader_root = cfg->item_reader_root ? sl_strdup(cfg->item_reader_root) : NULL;
	s->cfg.mock_config = cfg->mock_config ? sl_strdup(cfg->mock_config) : NULL;
	if (!s->cfg.data_dir || !s->cfg.http || !s->cfg.workers || !s->cfg.region || !s->cfg.account
	    || (cfg->workers_token && !s->cfg.workers_token)
	    || (cfg->workers_cert && !s->cfg.workers_cert)
	    || (cfg->workers_key && !s->cfg.workers_key)
	    || (cfg->item_reader_root && !s->cfg.item_reader_root)
	    || (cfg->mock_config && !s->cfg.mock_config))
		goto fail;
	if ((rc = sl_arn_configure(s->cfg.region, s->cfg.account)) != SL_OK) {
		sl_error_set(err, rc, "invalid region or account");
		goto fail;
	}

	rc = SL_ERR_NOMEM;
	s->base = event_base_new();
	if (!s->base || event_base_priority_init(s->base, SRV_NPRIO) != 0)
		goto fail;
	s->flush_ev = event_new(s->base, -1, 0, on_flush, s);
	s->sig_int = evsignal_new(s->base, SIGINT, on_signal, s);
	s->sig_term = evsignal_new(s->base, SIGTERM, on_signal, s);
	if (!s->flush_ev || !s->sig_int || !s->sig_term)
		goto fail;
	event_priority_set(s->flush_ev, SRV_PRIO_FLUSH);
	event_priority_set(s->sig_int, SRV_PRIO_HIGH);
	event_priority_set(s->sig_term, SRV_PRIO_HIGH);
	if ((rc = srv_bridge_new(s->base, &s->bridge)) != SL_OK)
		goto fail;

	if ((rc = store_open(s->cfg.data_dir, NULL, &s->store, err)) != SL_OK)
		goto fail;
	if ((rc = srv_http_start(s, err)) != SL_OK)
		goto fail;
	if ((rc = srv_workers_start(s, err)) != SL_OK)
		goto fail;
	*out = s;
	return SL_OK;
fail:
	if (rc == SL_ERR_NOMEM && err && err->code == SL_OK)
		sl_error_set(err, rc, "out of memory starting the server");
	srv_free(s);
	return rc;
}

sl_err
srv_run(srv_t *s, struct sl_error *err)
{
	if (event_add(s->sig_int, NULL) != 0 || event_add(s->sig_term, NULL) != 0)
		return sl_error_set(err, SL_ERR_INTERNAL, "cannot install signal handlers");
	char line[1024];
	int n = snprintf(line, sizeof line, "sluice: ready http=%s workers=%s data=%s\n",
	                 s->http_addr, s->workers_addr, s->cfg.data_dir);
	if (n > 0)
		(void)!write(STDERR_FILENO, line,
		             (size_t)n < sizeof line ? (size_t)n : sizeof line);
	sl_info("server", "serving AWS JSON on http://%s, workers on %s, %zu operation(s)",
	        s->http_addr, s->workers_addr, s->n_ops);
	if (event_base_dispatch(s->base) < 0)
		return sl_error_set(err, SL_ERR_INTERNAL, "event loop failed");
	/* a loop that ended without srv_stop (no events left) still drains the batch */
	srv_req_expire_all(s);
	srv_commit(s);
	sl_info("server", "stopped");
	return SL_OK;
}

void
srv_free(srv_t *s)
{
	if (!s)
		return;
	// Freeing the events gives the signals back their default action: a repeated SIGTERM
	// during the teardown below would kill the process with everything already committed
	// and report 143 instead of 0. Ignore them from here on (SIGKILL still ends a hang).
	if (s->sig_int) {
		event_free(s->sig_int);
		signal(SIGINT, SIG_IGN);
	}
	if (s->sig_term) {
		event_free(s->sig_term);
		signal(SIGTERM, SIG_IGN);
	}
	if (s->drain_ev)
		event_free(s->drain_ev);
	srv_workers_stop(s);
	if (s->base)
		srv_req_expire_all(s);
	/* pending commit callbacks answer their requests before the connections go */
	if (s->store)
		srv_commit(s);
	srv_http_free(s);
	srv_bridge_free(s->bridge);
	srv_workers_free(s);
	store_free(s->store);
	if (s->flush_ev)
		event_free(s->flush_ev);
	if (s->base)
		event_base_free(s->base);
	for (size_t i = 0; i < s->n_ops; i++)
		sl_free(s->ops[i].name);
	sl_free(s->ops);
	srv_metrics_free(s);
	srv_config_clear(&s->cfg);
	sl_free(s);
}

struct event_base *
srv_base(srv_t *s)
{
	return s->base;
}

store_t *
srv_store(srv_t *s)
{
	return s->store;
}

srv_bridge_t *
srv_bridge(srv_t *s)
{
	return s->bridge;
}

const char *
srv_http_addr(const srv_t *s)
{
	return s->http_addr;
}

const char *
srv_workers_addr(const srv_t *s)
{
	return s->workers_addr;
}

sl_err
srv_register_op(srv_t *s, const char *name, srv_op_fn fn, void *ctx)
{
	for (size_t i = 0; i < s->n_ops; i++)
		if (strcmp(s->ops[i].name, name) == 0)
			return SL_ERR_EXISTS;
	if (s->n_ops == s->cap_ops) {
		size_t cap = s->cap_ops ? s->cap_ops * 2 : 32;
		struct srv_op *n = sl_reallocarray(s->ops, cap, sizeof *n);
		if (!n)
			return SL_ERR_NOMEM;
		s->ops = n;
		s->cap_ops = cap;
	}
	char *d = sl_strdup(name);
	if (!d)
		return SL_ERR_NOMEM;
	s->ops[s->n_ops++] = (struct srv_op) { d, fn, ctx };
	return SL_OK;
}
