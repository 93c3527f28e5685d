/*
 * srv_metrics.c - counters and the Prometheus text exposition of GET /metrics.
 *
 * Operation labels come from the registry or a fixed list, never from client input, so a
 * client cannot grow the label set.
 */
#include <inttypes.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_log.h"
#include "server/srv_deliver.h"
#include "server/srv_dispatch.h"
#include "server/srv_engine.h"
#include "server/srv_exec_retention.h"
#include "server/srv_retention.h"
#include "server/srv_internal.h"

void
srv_metrics_count(srv_t *s, const char *op, int status)
{
	struct srv_metrics *m = &s->metrics;
	for (size_t i = 0; i < m->n_req; i++)
		if (m->req[i].status == status && strcmp(m->req[i].op, op) == 0) {
			m->req[i].count++;
			return;
		}
	if (m->n_req == m->cap_req) {
		size_t cap = m->cap_req ? m->cap_req * 2 : 32;
		struct srv_metric_req *n = sl_reallocarray(m->req, cap, sizeof *n);
		if (!n)
			return; /* a lost sample is better than a failed request */
		m->req = n;
		m->cap_req = cap;
	}
	char *name = sl_strdup(op);
	if (!name)
		return;
	m->req[m->n_req++] = (struct srv_metric_req) { name, status, 1 };
}

void
srv_metrics_free(srv_t *s)
{
	for (size_t i = 0; i < s->metrics.n_req; i++)
		sl_free(s->metrics.req[i].op);
	sl_free(s->metrics.req);
	memset(&s->metrics, 0, sizeof s->metrics);
}

#define ADD(...)                                                                                   \
	do {                                                                                       \
		if (evbuffer_add_printf(out, __VA_ARGS__) < 0)                                     \
			return SL_ERR_NOMEM;                                                       \
	} while (0)

static sl_err
counter(struct evbuffer *out, const char *name, const char *help, uint64_t v)
{
	ADD("# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, v);
	return SL_OK;
}

static sl_err
gauge(struct evbuffer *out, const char *name, const char *help, uint64_t v)
{
	ADD("# HELP %s %s\n# TYPE %s gauge\n%s %" PRIu64 "\n", name, help, name, name, v);
	return SL_OK;
}

sl_err
srv_metrics_render(srv_t *s, struct evbuffer *out)
{
	struct srv_metrics *m = &s->metrics;
	sl_err rc;
	ADD("# HELP sluice_http_requests_total HTTP requests answered, by operation and "
	    "status.\n# TYPE sluice_http_requests_total counter\n");
	for (size_t i = 0; i < m->n_req; i++)
		ADD("sluice_http_requests_total{operation=\"%s\",status=\"%d\"} %" PRIu64 "\n",
		    m->req[i].op, m->req[i].status, m->req[i].count);

	srv_conn_sweep(s);
	if ((rc = gauge(out, "sluice_http_open_connections", "HTTP connections open now.",
	                srv_conn_open(s)))
	            != SL_OK
	    || (rc = counter(out, "sluice_http_connections_total", "HTTP connections accepted.",
	                     m->conns_accepted))
	            != SL_OK
	    || (rc = counter(out, "sluice_http_connections_refused_total",
	                     "HTTP connections over the limit, answered 503.", m->conns_refused))
	            != SL_OK
	    || (rc = gauge(out, "sluice_http_inflight_requests", "Requests not yet answered.",
	                   s->inflight))
	            != SL_OK)
		return rc;

	ADD("# HELP sluice_worker_frames_total Frames received on the worker socket, by "
	    "result.\n# TYPE sluice_worker_frames_total counter\n"
	    "sluice_worker_frames_total{result=\"malformed\"} %" PRIu64 "\n"
	    "sluice_worker_frames_total{result=\"unknown_message\"} %" PRIu64 "\n",
	    m->frames_malformed, m->frames_unknown);

	struct store_stats st;
	memset(&st, 0, sizeof st);
	store_get_stats(s->store, &st);
	if ((rc
	     = counter(out, "sluice_store_commits_total", "Write batches committed.", st.commits))
	            != SL_OK
	    || (rc = counter(out, "sluice_store_commit_failures_total",
	                     "Write batches that failed to commit.", st.commit_failures))
	            != SL_OK
	    || (rc = counter(out, "sluice_store_ops_committed_total", "Puts and deletes committed.",
	                     st.ops_committed))
	            != SL_OK
	    || (rc = counter(out, "sluice_store_map_growths_total", "Times the store map grew.",
	                     st.map_growths))
	            != SL_OK
	    || (rc = counter(out, "sluice_store_early_commits_total",
	                     "Batches committed before the end of a loop iteration (full or old).",
	                     m->early_commits))
	            != SL_OK
	    || (rc = gauge(out, "sluice_store_map_bytes", "Bytes reserved for the store map.",
	                   st.map_size))
	            != SL_OK
	    || (rc = gauge(out, "sluice_store_used_bytes", "Bytes of the store in use.",
	                   st.used_bytes))
	            != SL_OK)
		return rc;

	ADD("# HELP sluice_store_commit_seconds Time to commit (fsync) a write batch.\n"
	    "# TYPE sluice_store_commit_seconds histogram\n");
	uint64_t cum = 0;
	for (int i = 0; i < STORE_COMMIT_BUCKETS; i++) {
		cum += st.commit_hist[i];
		uint64_t us = store_commit_bucket_us(i);
		ADD("sluice_store_commit_seconds_bucket{le=\"%" PRIu64 ".%06" PRIu64 "\"} %" PRIu64
		    "\n",
		    us / 1000000, us % 1000000, cum);
	}
	cum += st.commit_hist[STORE_COMMIT_BUCKETS];
	ADD("sluice_store_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	ADD("sluice_store_commit_seconds_sum %" PRIu64 ".%09" PRIu64 "\n",
	    st.commit_ns_total / 1000000000, st.commit_ns_total % 1000000000);
	ADD("sluice_store_commit_seconds_count %" PRIu64 "\n", cum);
	if ((rc = srv_deliver_metrics(s, out)) != SL_OK
	    || (rc = srv_retention_metrics(s, out)) != SL_OK
	    || (rc = srv_exec_retention_metrics(s, out)) != SL_OK
	    || (rc = srv_engine_metrics(s, out)) != SL_OK)
		return rc;
	return srv_dispatch_metrics(s, out);
}
