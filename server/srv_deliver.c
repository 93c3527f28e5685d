/*
 * srv_deliver.c - the deliverer (see srv_deliver.h): scans DELIVERIES in due order from the
 * loop, invokes targets, retries with exponential back-off and full jitter, and moves
 * exhausted deliveries to DEADLETTERS (or drops them with a warning, as AWS does without a
 * dead-letter queue).
 *
 * Scans read committed records only (a short read transaction), so nothing is invoked for
 * an event that is not durable yet. A record being handled is "busy" from the moment it is
 * picked until the batch that deletes or rewrites it commits; scans skip busy records, so
 * no record is handled twice at once.
 */
#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "common/sl_log.h"
#include "server/srv_bus.h"
#include "server/srv_deliver.h"
#include "server/srv_deliver_int.h"
#include "server/srv_engine.h"
#include "server/srv_internal.h"

/* Records picked per scan: a large backlog must not stall HTTP. */
#define SCAN_SLICE 128
/* Records looked at per scan: a backlog of webhooks waiting for a free slot (or of busy
 * records) must not make every scan walk it all. */
#define SCAN_EXAMINE 1024
#define ID_LEN       SL_UUID_STRLEN
#define KEY_LEN      (8 + ID_LEN)

/* What a handled record became; counted in /metrics once its batch commits. */
enum outcome { OUT_NONE, OUT_DELIVERED, OUT_RETRIED, OUT_DEAD, OUT_DROPPED };

struct item {
	unsigned char key[KEY_LEN];
	char id[ID_LEN + 1];
	json_t *rec;
	enum outcome outcome;
};

/* Webhook connections kept for reuse: at most POOL_PER_TARGET (the default in-flight cap,
 * so a steady stream to one target opens no new ones) idle per (scheme, host, port)
 * and POOL_MAX in all; one unused for POOL_IDLE_MS closes (under the 5 s idle timeout of
 * common servers, so the race with a peer's close is rare; the retry below covers it). */
#define POOL_PER_TARGET 64
#define POOL_MAX        128
#define POOL_IDLE_MS    4000
#define POOL_KEY_LEN    300

/* One webhook connection (one request at a time: no pipelining). */
struct pconn {
	srv_deliver_t *d;
	struct evhttp_connection *conn;
	char key[POOL_KEY_LEN]; /* "scheme://host:port" */
	int64_t idle_since;
	bool closed; /* libevent closed it (the peer's close, Connection: close, an error) */
	struct pconn *next;
};

struct http_call {
	srv_deliver_t *d;
	struct item it;
	struct pconn *pc;
	enum evhttp_request_error error;
	bool failed, tls;
	bool reused; /* sent on a pooled connection: a stale one gets one more try */
	struct http_call *next, *prev;
};

static srv_deliver_t *deliverers; /* every deliverer, so the process keeps them reachable */

srv_deliver_t *
srv_deliver_of(srv_t *s)
{
	for (srv_deliver_t *d = deliverers; d; d = d->next)
		if (d->srv == s)
			return d;
	return NULL;
}

/* ---- target kinds --------------------------------------------------------------------- */

enum deliver_kind
deliver_kind_of(const char *arn, char *name, size_t cap)
{
	static const struct {
		const char *prefix;
		enum deliver_kind kind;
	} schemes[] = { { "http://", DELIVER_HTTP },
		        { "https://", DELIVER_HTTPS },
		        { "nng+pub://", DELIVER_NNG } };
	if (name && cap)
		name[0] = '\0';
	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
		if (strncmp(arn, schemes[i].prefix, strlen(schemes[i].prefix)) == 0) {
			if (name && cap)
				snprintf(name, cap, "%s", arn);
			return schemes[i].kind;
		}
	char buf[1024];
	struct sl_arn a;
	if (strlen(arn) >= sizeof buf)
		return DELIVER_OTHER;
	memcpy(buf, arn, strlen(arn) + 1);
	if (sl_arn_parse(buf, &a) != SL_OK)
		return DELIVER_OTHER;
	const char *rest = NULL;
	enum deliver_kind kind = DELIVER_OTHER;
	if (strcmp(a.service, "states") == 0 && strncmp(a.resource, "stateMachine:", 13) == 0)
		rest = a.resource + 13, kind = DELIVER_STATES;
	else if (strcmp(a.service, "events") == 0 && strncmp(a.resource, "event-bus/", 10) == 0)
		rest = a.resource + 10, kind = DELIVER_BUS;
	else if (strcmp(a.service, "logs") == 0 && strncmp(a.resource, "log-group:", 10) == 0)
		rest = a.resource + 10, kind = DELIVER_LOG;
	if (!rest || !*rest)
		return DELIVER_OTHER;
	/* a log group ARN may end in ":*" */
	size_t n = strlen(rest);
	if (kind == DELIVER_LOG && n > 2 && strcmp(rest + n - 2, ":*") == 0)
		n -= 2;
	if (name && cap)
		snprintf(name, cap, "%.*s", (int)n, rest);
	return kind;
}

/* True when arn names this server's region and account (other ones do not exist here). */
static bool
here(const char *arn)
{
	char buf[1024];
	struct sl_arn a;
	if (strlen(arn) >= sizeof buf)
		return false;
	memcpy(buf, arn, strlen(arn) + 1);
	return sl_arn_parse(buf, &a) == SL_OK && strcmp(a.region, sl_arn_region()) == 0
	        && strcmp(a.account, sl_arn_account()) == 0;
}

/* ---- state machines ------------------------------------------------------------------- */

sl_err
deliver_start_machine(srv_t *s, store_batch_t *b, const char *arn, const char *input,
                      const char **code, char *msg, size_t msg_cap)
{
	*code = NULL;
	srv_engine_t *e = srv_engine_of(s);
	char name[300];
	if (deliver_kind_of(arn, name, sizeof name) != DELIVER_STATES || !here(arn)) {
		*code = "NO_RESOURCE";
		snprintf(msg, msg_cap, "State Machine Does Not Exist: '%s'", arn);
		return SL_OK;
	}
	if (!e) {
		*code = "NO_RESOURCE";
		snprintf(msg, msg_cap, "this server runs no executions");
		return SL_OK;
	}
	store_txn_t *txn = store_batch_txn(b);
	uint32_t revision = 0;
	char *qual = strchr(name, ':');
	if (qual) {
		/* NAME:VERSION: the version's revision */
		*qual++ = '\0';
		char *end;
		unsigned long v = strtoul(qual, &end, 10);
		struct store_key k;
		store_key_init(&k);
		store_key_u32(&k, 'V');
		store_key_str(&k, name);
		store_key_u32(&k, (uint32_t)v);
		json_t *rec = NULL;
		sl_err rc = *qual && !*end && v > 0 && v <= UINT32_MAX
		        ? bus_get_json(txn, STORE_DB_MACHINES, &k, &rec)
		        : SL_ERR_NOT_FOUND;
		if (rc == SL_ERR_NOT_FOUND) {
			*code = "NO_RESOURCE";
			snprintf(msg, msg_cap, "State Machine Does Not Exist: '%s'", arn);
			return SL_OK;
		}
		if (rc)
			return rc;
		json_int_t r = json_integer_value(json_object_get(rec, "revision"));
		json_decref(rec);
		revision = r > 0 && r <= UINT32_MAX ? (uint32_t)r : 0;
	}
	json_error_t je;
	json_t *in = json_loads(input, JSON_DECODE_ANY, &je);
	if (!in) {
		*code = "INVALID_INPUT";
		snprintf(msg, msg_cap, "Invalid execution input: not JSON text (%s)", je.text);
		return SL_OK;
	}
	struct step_start st = { .machine = name, .revision = revision, .input = in };
	struct sl_error err;
	sl_error_clear(&err);
	sl_err rc = store_savepoint_begin(b);
	if (rc == SL_OK) {
		rc = srv_engine_start(e, b, &st, NULL, &err); // EXPRESS runs on its engine
		if (rc == SL_OK) {
			rc = store_savepoint_release(b);
		} else {
			store_savepoint_rollback(b);
			/* the store's own failures fail the caller's batch; anything else is a
			 * failed invocation, retried by the deliverer */
			if (rc != SL_ERR_NOMEM && rc != SL_ERR_STORE && rc != SL_ERR_IO) {
				*code = rc == SL_ERR_SM_NOT_FOUND ? "NO_RESOURCE"
				        : rc == SL_ERR_INVALID_EXECUTION_INPUT
				                || rc == SL_ERR_INVALID_NAME
				        ? "INVALID_INPUT"
				        : "INTERNAL_ERROR";
				snprintf(msg, msg_cap, "%s", sl_error_text(&err));
				rc = SL_OK;
			}
		}
	}
	json_decref(in);
	if (rc == SL_OK && !*code)
		srv_engine_kick(e);
	return rc;
}

/* ---- busy records --------------------------------------------------------------------- */

static bool
is_busy(srv_deliver_t *d, const char *id)
{
	for (size_t i = 0; i < d->n_busy; i++)
		if (memcmp(d->busy[i], id, ID_LEN) == 0)
			return true;
	return false;
}

static sl_err
set_busy(srv_deliver_t *d, const char *id)
{
	if (d->n_busy == d->cap_busy) {
		size_t cap = d->cap_busy ? d->cap_busy * 2 : 64;
		char(*n)[ID_LEN + 1] = sl_reallocarray(d->busy, cap, sizeof *n);
		if (!n)
			return SL_ERR_NOMEM;
		d->busy = n;
		d->cap_busy = cap;
	}
	memcpy(d->busy[d->n_busy], id, ID_LEN);
	d->busy[d->n_busy++][ID_LEN] = '\0';
	return SL_OK;
}

static void
clear_busy(srv_deliver_t *d, const char *id)
{
	for (size_t i = 0; i < d->n_busy; i++)
		if (memcmp(d->busy[i], id, ID_LEN) == 0) {
			memcpy(d->busy[i], d->busy[--d->n_busy], ID_LEN + 1);
			return;
		}
}

/* ---- scheduling ----------------------------------------------------------------------- */

static void
kick(srv_deliver_t *d)
{
	if (!evtimer_pending(d->scan_ev, NULL)) {
		struct timeval zero = { 0, 0 };
		evtimer_add(d->scan_ev, &zero);
	}
}

static void
arm(srv_deliver_t *d, int64_t due)
{
	if (due >= d->armed_due && evtimer_pending(d->timer_ev, NULL))
		return;
	int64_t delay = due - sl_clock_now_ms();
	if (delay < 0)
		delay = 0;
	struct timeval tv = { (time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000) };
	if (evtimer_add(d->timer_ev, &tv) == 0)
		d->armed_due = due;
}

struct unbusy {
	srv_deliver_t *d;
	char id[ID_LEN + 1];
	enum outcome outcome;
};

static void
on_unbusy(void *arg, sl_err status)
{
	struct unbusy *u = arg;
	srv_deliver_t *d = u->d;
	/* a failed commit left the record as it was: it is picked again */
	if (status == SL_OK)
		switch (u->outcome) {
		case OUT_DELIVERED: d->delivered++; break;
		case OUT_RETRIED: d->retried++; break;
		case OUT_DEAD: d->dead_lettered++; break;
		case OUT_DROPPED: d->dropped++; break;
		case OUT_NONE: break;
		}
	if (status == SL_OK && u->outcome > OUT_DELIVERED)
		d->failures++;
	clear_busy(u->d, u->id);
	kick(u->d);
	sl_free(u);
}

/* The record's fate is written in b: it stays busy until b commits. */
static sl_err
release_on_commit(srv_deliver_t *d, store_batch_t *b, const struct item *it)
{
	const char *id = it->id;
	struct unbusy *u = SL_NEW(struct unbusy);
	if (!u) {
		clear_busy(d, id);
		return SL_ERR_NOMEM;
	}
	u->d = d;
	u->outcome = it->outcome;
	memcpy(u->id, id, ID_LEN + 1);
	sl_err rc = store_batch_on_commit(b, on_unbusy, u);
	if (rc)
		on_unbusy(u, rc);
	return rc;
}

static void
on_wrote_commit(void *arg, sl_err status)
{
	srv_deliver_t *d = arg;
	d->kick_pending = false;
	if (status == SL_OK)
		kick(d);
}

bool
srv_deliver_paused(srv_t *s)
{
	srv_deliver_t *d = srv_deliver_of(s);
	return d && d->paused;
}

void
srv_deliver_wrote(srv_t *s, store_batch_t *b)
{
	for (srv_deliver_t *d = deliverers; d; d = d->next)
		if ((!s || d->srv == s) && !d->kick_pending
		    && store_batch_on_commit(b, on_wrote_commit, d) == SL_OK)
			d->kick_pending = true;
}

/* ---- outcomes ------------------------------------------------------------------------- */

static int64_t
rec_int(json_t *rec, const char *key, int64_t def)
{
	json_t *v = json_object_get(rec, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static const char *
rec_str(json_t *rec, const char *key)
{
	const char *v = json_string_value(json_object_get(rec, key));
	return v ? v : "";
}

/* Full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
static int64_t
backoff_ms(srv_deliver_t *d, int64_t attempt)
{
	uint64_t ceil = d->backoff_ms;
	for (int64_t i = 0; i < attempt && ceil < d->backoff_cap_ms; i++)
		ceil *= 2;
	if (ceil > d->backoff_cap_ms)
		ceil = d->backoff_cap_ms;
	uint64_t r = 0;
	if (sl_random_bytes(&r, sizeof r) != SL_OK)
		r = sl_clock_mono_ns();
	return (int64_t)(r % (ceil + 1));
}

static sl_err
del_record(store_txn_t *txn, const struct item *it)
{
	return store_del(txn, STORE_DB_DELIVERIES, it->key, KEY_LEN);
}

/* Delivered: the record goes. */
static sl_err
succeeded(srv_deliver_t *d, store_batch_t *b, struct item *it)
{
	sl_err rc = del_record(store_batch_txn(b), it);
	if (rc == SL_OK) {
		it->outcome = OUT_DELIVERED;
		sl_debug("deliver", "delivery %s of event %s to %s done (attempt %" PRId64 ")",
		         it->id, rec_str(it->rec, "eventId"), rec_str(it->rec, "arn"),
		         rec_int(it->rec, "attempt", 0) + 1);
	}
	return rc;
}

/* A failed attempt: retry later, or dead letter / drop when the policy is spent. permanent
 * errors skip the retries (AWS does so for a target that cannot be invoked at all). */
static sl_err
failed(srv_deliver_t *d, store_batch_t *b, struct item *it, const char *code, const char *msg,
       bool permanent)
{
	store_txn_t *txn = store_batch_txn(b);
	json_t *rec = it->rec;
	int64_t now = sl_clock_now_ms();
	int64_t attempt = rec_int(rec, "attempt", 0);
	int64_t created = rec_int(rec, "created", rec_int(rec, "due", now));
	int64_t max_retries = rec_int(rec, "maxRetries", DELIVER_DEFAULT_RETRIES);
	int64_t max_age_ms = rec_int(rec, "maxAgeS", DELIVER_DEFAULT_AGE_S) * 1000;
	json_t *last = json_pack("{s:s,s:s}", "code", code, "message", msg);
	if (!last || json_object_set_new(rec, "lastError", last))
		return SL_ERR_NOMEM;
	const char *condition = NULL;
	if (!permanent) {
		int64_t due = now + backoff_ms(d, attempt);
		if (attempt >= max_retries) {
			condition = "MaximumRetryAttempts";
		} else if (due - created > max_age_ms) {
			condition = "MaximumEventAgeInSeconds";
		} else {
			struct store_key k;
			store_key_init(&k);
			store_key_i64(&k, due);
			store_key_raw(&k, it->id, ID_LEN);
			sl_err rc;
			if (json_object_set_new(rec, "attempt", json_integer(attempt + 1))
			    || json_object_set_new(rec, "due", json_integer(due)))
				return SL_ERR_NOMEM;
			if ((rc = del_record(txn, it))
			    || (rc = bus_put_json(txn, STORE_DB_DELIVERIES, &k, rec)))
				return rc;
			it->outcome = OUT_RETRIED;
			sl_info("deliver",
			        "delivery %s of event %s to %s failed (attempt %" PRId64
			        "): %s %s; retry in %" PRId64 " ms",
			        it->id, rec_str(rec, "eventId"), rec_str(rec, "arn"), attempt + 1,
			        code, msg, due - now);
			return SL_OK;
		}
	}
	sl_err rc = del_record(txn, it);
	if (rc)
		return rc;
	const char *dlq = json_string_value(json_object_get(rec, "dlq"));
	if (dlq) {
		if ((rc = deadletter_put(txn, rec, code, msg, condition, attempt)))
			return rc;
		it->outcome = OUT_DEAD;
		sl_warn("deliver",
		        "delivery %s of event %s to %s (rule %s) moved to the dead letters after "
		        "%" PRId64 " attempt(s): %s %s",
		        it->id, rec_str(rec, "eventId"), rec_str(rec, "arn"), rec_str(rec, "rule"),
		        attempt + 1, code, msg);
	} else {
		it->outcome = OUT_DROPPED;
		sl_warn("deliver",
		        "event %s for %s (rule %s on bus %s) dropped after %" PRId64
		        " attempt(s): %s %s (the target has no DeadLetterConfig)",
		        rec_str(rec, "eventId"), rec_str(rec, "arn"), rec_str(rec, "rule"),
		        rec_str(rec, "bus"), attempt + 1, code, msg);
	}
	return SL_OK;
}

/* ---- target kinds run in the loop ----------------------------------------------------- */

static sl_err
to_bus(srv_deliver_t *d, store_batch_t *b, struct item *it, const char *bus)
{
	store_txn_t *txn = store_batch_txn(b);
	struct sl_error err;
	sl_error_clear(&err);
	sl_err rc = here(rec_str(it->rec, "arn"))
	        ? bus_require(txn, bus, &err)
	        : sl_error_set(&err, SL_ERR_EB_NOT_FOUND,
	                       "Event bus %s is in another region or account.", bus);
	if (rc == SL_ERR_EB_NOT_FOUND)
		return failed(d, b, it, "NO_RESOURCE", sl_error_text(&err), false);
	if (rc)
		return rc;
	const char *input = rec_str(it->rec, "input");
	json_t *ev = json_loads(input, 0, NULL);
	const char *eid = json_string_value(json_object_get(ev, "id"));
	bool ok = json_is_object(ev) && eid;
	char id[ID_LEN + 1];
	if (ok)
		snprintf(id, sizeof id, "%.36s", eid);
	json_decref(ev);
	if (!ok)
		return failed(d, b, it, "INVALID_INPUT",
		              "the input for an event bus target is not an event (a JSON object "
		              "with an id)",
		              true);
	int64_t hops = rec_int(it->rec, "hops", 0) + 1;
	if (hops > DELIVER_BUS_HOPS_MAX) {
		char msg[160];
		snprintf(msg, sizeof msg,
		         "the event already went through %d bus targets: a loop of buses?",
		         DELIVER_BUS_HOPS_MAX);
		return failed(d, b, it, "LOOP_DETECTED", msg, true);
	}
	if ((rc = store_savepoint_begin(b)))
		return rc;
	d->bus->hops = (unsigned)hops;
	rc = bus_publish(d->bus, b, bus, id, input, &err);
	d->bus->hops = 0;
	if (rc == SL_OK && (rc = succeeded(d, b, it)) == SL_OK)
		return store_savepoint_release(b);
	store_savepoint_rollback(b);
	if (rc == SL_ERR_NOMEM || rc == SL_ERR_STORE || rc == SL_ERR_IO)
		return rc;
	return failed(d, b, it, "INVALID_INPUT", sl_error_text(&err), true);
}

static sl_err
to_machine(srv_deliver_t *d, store_batch_t *b, struct item *it)
{
	const char *code = NULL;
	char msg[512];
	sl_err rc = deliver_start_machine(d->srv, b, rec_str(it->rec, "arn"),
	                                  rec_str(it->rec, "input"), &code, msg, sizeof msg);
	if (rc)
		return rc;
	if (code)
		return failed(d, b, it, code, msg, false);
	return succeeded(d, b, it);
}

static sl_err
to_log(srv_deliver_t *d, store_batch_t *b, struct item *it, const char *group)
{
	const char *input = rec_str(it->rec, "input");
	json_t *head = json_pack("{s:s,s:s,s:s,s:s}", "logGroup", group, "rule",
	                         rec_str(it->rec, "rule"), "bus", rec_str(it->rec, "bus"),
	                         "eventId", rec_str(it->rec, "eventId"));
	char *h = head ? json_dumps(head, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(head);
	if (!h)
		return SL_ERR_NOMEM;
	/* JSON input is spliced as rendered (numbers keep their digits); other text quoted */
	json_t *probe = json_loads(input, JSON_DECODE_ANY, NULL);
	char *quoted = probe ? NULL : json_dumps(json_string(input), JSON_ENCODE_ANY);
	json_decref(probe);
	h[strlen(h) - 1] = '\0';
	sl_info("log-target", "%s,\"event\":%s}", h, probe ? input : quoted ? quoted : "null");
	sl_free(quoted);
	sl_free(h);
	return succeeded(d, b, it);
}

/* ---- NNG publishers ------------------------------------------------------------------- */

struct pub_socket {
	char *url;
	nng_socket sock;
	struct pub_socket *next;
};

/* The listening PUB socket of url, opened on first use. */
static int
pub_socket(srv_deliver_t *d, const char *url, nng_socket *out)
{
	for (struct pub_socket *p = d->pubs; p; p = p->next)
		if (strcmp(p->url, url) == 0) {
			*out = p->sock;
			return 0;
		}
	struct pub_socket *p = SL_NEW(struct pub_socket);
	if (!p || !(p->url = sl_strdup(url))) {
		sl_free(p);
		return NNG_ENOMEM;
	}
	int rv = nng_pub0_open(&p->sock);
	if (rv == 0 && (rv = nng_listen(p->sock, url, NULL, 0)) != 0)
		nng_close(p->sock);
	if (rv != 0) {
		sl_free(p->url);
		sl_free(p);
		return rv;
	}
	sl_info("deliver", "publishing events on %s", url);
	p->next = d->pubs;
	d->pubs = p;
	*out = p->sock;
	return 0;
}

/* One message: the topic (the rule ARN's resource after "rule/": RULE on the default bus,
 * BUS/RULE elsewhere), a newline, the input. */
static sl_err
to_nng(srv_deliver_t *d, store_batch_t *b, struct item *it, const char *target)
{
	const char *url = target + strlen("nng+pub://");
	nng_socket sock;
	int rv = pub_socket(d, url, &sock);
	char msg[300];
	if (rv != 0) {
		snprintf(msg, sizeof msg, "cannot listen on %.200s: %s", url, nng_strerror(rv));
		return failed(d, b, it, "CONNECTION_ERROR", msg, false);
	}
	const char *bus = rec_str(it->rec, "bus"), *rule = rec_str(it->rec, "rule");
	const char *input = rec_str(it->rec, "input");
	bool dflt = strcmp(bus, BUS_DEFAULT) == 0;
	char *m = sl_asprintf("%s%s%s\n%s", dflt ? "" : bus, dflt ? "" : "/", rule, input);
	if (!m)
		return SL_ERR_NOMEM;
	/* PUB never waits for subscribers: a slow or absent one misses the message */
	rv = nng_send(sock, m, strlen(m), NNG_FLAG_NONBLOCK);
	sl_free(m);
	if (rv != 0) {
		snprintf(msg, sizeof msg, "cannot publish on %.200s: %s", url, nng_strerror(rv));
		return failed(d, b, it, "CONNECTION_ERROR", msg, false);
	}
	return succeeded(d, b, it);
}

/* ---- HTTP ----------------------------------------------------------------------------- */

static void
on_conn_close(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	((struct pconn *)arg)->closed = true;
}

static bool
pconn_alive(const struct pconn *pc)
{
	return !pc->closed && bufferevent_getfd(evhttp_connection_get_bufferevent(pc->conn)) >= 0;
}

/* Frees pc from the loop later: never inside libevent's callbacks of that connection. */
static void
pconn_bury(srv_deliver_t *d, struct pconn *pc)
{
	pc->next = d->dead;
	d->dead = pc;
	if (!evtimer_pending(d->reap_ev, NULL)) {
		struct timeval zero = { 0, 0 };
		evtimer_add(d->reap_ev, &zero);
	}
}

static void
on_reap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_deliver_t *d = arg;
	while (d->dead) {
		struct pconn *pc = d->dead;
		d->dead = pc->next;
		evhttp_connection_free(pc->conn); /* may call on_conn_close: pc is still there */
		sl_free(pc);
	}
}

/* An open idle connection to key, or NULL; closed ones met on the way are freed. */
static struct pconn *
pool_take(srv_deliver_t *d, const char *key)
{
	for (struct pconn **pp = &d->idle; *pp;) {
		struct pconn *pc = *pp;
		if (strcmp(pc->key, key) != 0) {
			pp = &pc->next;
			continue;
		}
		*pp = pc->next;
		d->n_idle--;
		if (pconn_alive(pc))
			return pc;
		pconn_bury(d, pc);
	}
	return NULL;
}

static void
pool_put(srv_deliver_t *d, struct pconn *pc)
{
	unsigned same = 0;
	for (struct pconn *p = d->idle; p; p = p->next)
		same += strcmp(p->key, pc->key) == 0;
	if (!pconn_alive(pc) || same >= POOL_PER_TARGET || d->n_idle >= POOL_MAX || d->srv->stopping
	    || d->srv->stopped) {
		pconn_bury(d, pc);
		return;
	}
	pc->idle_since = sl_clock_now_ms();
	pc->next = d->idle;
	d->idle = pc;
	d->n_idle++;
	if (!evtimer_pending(d->sweep_ev, NULL)) {
		struct timeval sec = { 1, 0 };
		evtimer_add(d->sweep_ev, &sec);
	}
}

/* Closes idle connections unused for POOL_IDLE_MS and those the peers closed. */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_deliver_t *d = arg;
	int64_t now = sl_clock_now_ms();
	for (struct pconn **pp = &d->idle; *pp;) {
		struct pconn *pc = *pp;
		if (pconn_alive(pc) && now - pc->idle_since < POOL_IDLE_MS && !d->srv->stopping
		    && !d->srv->stopped) {
			pp = &pc->next;
			continue;
		}
		*pp = pc->next;
		d->n_idle--;
		pconn_bury(d, pc);
	}
	if (d->n_idle) {
		struct timeval sec = { 1, 0 };
		evtimer_add(d->sweep_ev, &sec);
	}
}

static void
call_free(struct http_call *c)
{
	srv_deliver_t *d = c->d;
	if (c->prev)
		c->prev->next = c->next;
	else
		d->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	json_decref(c->it.rec);
	sl_free(c);
}

static void
on_http_error(enum evhttp_request_error e, void *arg)
{
	struct http_call *c = arg;
	c->failed = true;
	c->error = e;
}

static bool http_start(srv_deliver_t *d, struct item *it, const char *url, bool tls, bool fresh,
                       char *why, size_t why_cap);

static void
on_http_done(struct evhttp_request *req, void *arg)
{
	struct http_call *c = arg;
	srv_deliver_t *d = c->d;
	int status = req && !c->failed ? evhttp_request_get_response_code(req) : 0;
	char tls_error[160] = "";
	struct pconn *pc = c->pc;
	c->pc = NULL;
	if (c->tls && !status) {
		/* why the handshake failed (certificate, protocol), when OpenSSL says */
		unsigned long e = bufferevent_get_openssl_error(
		        evhttp_connection_get_bufferevent(pc->conn));
		if (e)
			ERR_error_string_n(e, tls_error, sizeof tls_error);
	}
	/* an answer leaves the connection reusable unless it was closed (Connection: close) */
	if (status)
		pool_put(d, pc);
	else
		pconn_bury(d, pc);
	d->inflight--;
	if (!status && c->reused
	    && (!c->failed || c->error == EVREQ_HTTP_EOF || c->error == EVREQ_HTTP_BUFFER_ERROR)) {
		/* the peer may have closed the idle connection as the request went out: once
		 * more on a new connection, not counted against the RetryPolicy */
		char why[300];
		d->stale_retries++;
		if (http_start(d, &c->it, rec_str(c->it.rec, "arn"), c->tls, true, why,
		               sizeof why)) {
			c->it.rec = NULL; /* the new call owns it */
			call_free(c);
			return;
		}
	}
	store_batch_t *b = NULL;
	sl_err rc = srv_batch(d->srv, &b);
	if (rc == SL_OK) {
		/* the record is busy, so it is still there; check anyway */
		struct store_val v;
		rc = store_get(store_batch_txn(b), STORE_DB_DELIVERIES, c->it.key, KEY_LEN, &v);
		if (rc == SL_OK) {
			if (status >= 200 && status < 300) {
				rc = succeeded(d, b, &c->it);
			} else {
				char msg[256]; /* room for the TLS error text */
				const char *code = "HTTP_ERROR";
				if (status)
					snprintf(msg, sizeof msg, "HTTP status %d", status);
				else if (c->failed && c->error == EVREQ_HTTP_TIMEOUT) {
					code = "TIMEOUT";
					snprintf(msg, sizeof msg, "no answer within %u ms",
					         d->timeout_ms);
				} else {
					code = "CONNECTION_ERROR";
					snprintf(msg, sizeof msg,
					         "connection failed or closed before an answer%s%s",
					         tls_error[0] ? ": TLS " : "", tls_error);
				}
				/* as AWS's API destinations: these statuses and 5xx are worth
				 * another try, any other answer would come again */
				bool retry = !status || status >= 500 || status == 401
				        || status == 407 || status == 409 || status == 429;
				rc = failed(d, b, &c->it, code, msg, !retry);
			}
		} else if (rc == SL_ERR_NOT_FOUND) {
			rc = SL_OK;
		}
	}
	if (rc != SL_OK) {
		sl_errorf("deliver", "delivery %s: cannot record the outcome: %s", c->it.id,
		          sl_err_message(rc));
		clear_busy(d, c->it.id);
	} else {
		release_on_commit(d, b, &c->it);
	}
	call_free(c);
	kick(d);
}

/* The target's HeaderParameters; the ones this server sets itself are kept as they are. */
static int
add_headers(struct evkeyvalq *h, json_t *http)
{
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(http, "HeaderParameters"), k, v)
	{
		if (!json_is_string(v) || evhttp_find_header(h, k))
			continue;
		if (evhttp_add_header(h, k, json_string_value(v)))
			return -1;
	}
	return 0;
}

/* A connection that speaks TLS to host: the peer's certificate must chain to a trusted CA
 * (the system store, or SSL_CERT_FILE / SSL_CERT_DIR) and name host (SNI sent for names). */
static struct evhttp_connection *
tls_connection(srv_deliver_t *d, const char *host, int port)
{
	SSL *ssl = d->tls ? SSL_new(d->tls) : NULL;
	if (!ssl)
		return NULL;
	unsigned char addr[16];
	bool ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
	if ((ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
	        : X509_VERIFY_PARAM_set1_host(vp, host, 0))
	            != 1
	    || (!ip && SSL_set_tlsext_host_name(ssl, host) != 1)) {
		SSL_free(ssl);
		return NULL;
	}
	struct bufferevent *bev
	        = bufferevent_openssl_socket_new(d->srv->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	struct evhttp_connection *conn = evhttp_connection_base_bufferevent_new(
	        d->srv->base, d->dns, bev, host, (unsigned short)(port > 0 ? port : 443));
	if (!conn)
		bufferevent_free(bev);
	return conn;
}

/* A new connection to host:port (not yet connected: evhttp connects on the request). */
static struct pconn *
pconn_new(srv_deliver_t *d, const char *key, const char *host, int port, bool tls)
{
	struct pconn *pc = SL_NEW(struct pconn);
	if (!pc)
		return NULL;
	pc->d = d;
	snprintf(pc->key, sizeof pc->key, "%s", key);
	pc->conn = tls ? tls_connection(d, host, port)
	               : evhttp_connection_base_new(d->srv->base, d->dns, host,
	                                            (unsigned short)(port > 0 ? port : 80));
	if (!pc->conn) {
		sl_free(pc);
		return NULL;
	}
	struct timeval tv = { d->timeout_ms / 1000, (d->timeout_ms % 1000) * 1000 };
	evhttp_connection_set_timeout_tv(pc->conn, &tv);
	evhttp_connection_set_retries(pc->conn, 0);
	/* only the status matters: a receiver cannot make the server buffer a large answer */
	evhttp_connection_set_max_headers_size(pc->conn, 64 * 1024);
	evhttp_connection_set_max_body_size(pc->conn, 1024 * 1024);
	evhttp_connection_set_closecb(pc->conn, on_conn_close, pc);
	d->conns_opened++;
	return pc;
}

/* Starts the POST on a pooled connection to the target, or on a new one (always when
 * fresh); false when the URL is unusable (the caller fails the delivery). */
static bool
http_start(srv_deliver_t *d, struct item *it, const char *url, bool tls, bool fresh, char *why,
           size_t why_cap)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *host = u ? evhttp_uri_get_host(u) : NULL;
	if (!host || !*host) {
		snprintf(why, why_cap, "not a usable URL: %.200s", url);
		evhttp_uri_free(u);
		return false;
	}
	int port = evhttp_uri_get_port(u);
	const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
	char *target = sl_asprintf("%s%s%s", path && *path ? path : "/", query ? "?" : "",
	                           query ? query : "");
	/* the target's QueryStringParameters, encoded, after the URL's own query */
	json_t *http = json_object_get(it->rec, "http");
	const char *qk;
	json_t *qv;
	json_object_foreach(json_object_get(http, "QueryStringParameters"), qk, qv)
	{
		char *ek = target ? evhttp_encode_uri(qk) : NULL;
		char *ev = ek
		        ? evhttp_encode_uri(json_string_value(qv) ? json_string_value(qv) : "")
		        : NULL;
		char *next = ev
		        ? sl_asprintf("%s%s%s=%s", target, strchr(target, '?') ? "&" : "?", ek, ev)
		        : NULL;
		free(ek);
		free(ev);
		sl_free(target);
		target = next;
	}
	struct http_call *c = SL_NEW(struct http_call);
	struct evhttp_request *req = NULL;
	if (!target || !c)
		goto fail;
	c->d = d;
	c->it = *it;
	c->tls = tls;
	char key[POOL_KEY_LEN];
	snprintf(key, sizeof key, "%s://%.255s:%d", tls ? "https" : "http", host,
	         port > 0      ? port
	                 : tls ? 443
	                       : 80);
	c->pc = fresh ? NULL : pool_take(d, key);
	c->reused = c->pc != NULL;
	if (!c->pc && !(c->pc = pconn_new(d, key, host, port, tls)))
		goto fail;
	if (!(req = evhttp_request_new(on_http_done, c)))
		goto fail;
	evhttp_request_set_error_cb(req, on_http_error);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char attempt[24];
	snprintf(attempt, sizeof attempt, "%" PRId64, rec_int(it->rec, "attempt", 0) + 1);
	const char *input = rec_str(it->rec, "input");
	char hosthdr[300];
	if (port > 0)
		snprintf(hosthdr, sizeof hosthdr, "%.255s:%d", host, port);
	else
		snprintf(hosthdr, sizeof hosthdr, "%.255s", host);
	if (evhttp_add_header(h, "Host", hosthdr) || evhttp_add_header(h, "User-Agent", "sluice")
	    || evhttp_add_header(h, "Content-Type", "application/json")
	    || evhttp_add_header(h, "X-Sluice-Rule", rec_str(it->rec, "rule"))
	    || evhttp_add_header(h, "X-Sluice-Event-Id", rec_str(it->rec, "eventId"))
	    || evhttp_add_header(h, "X-Sluice-Delivery-Id", it->id)
	    || evhttp_add_header(h, "X-Sluice-Attempt", attempt) || add_headers(h, http)
	    || evbuffer_add(evhttp_request_get_output_buffer(req), input, strlen(input)))
		goto fail;
	if (evhttp_make_request(c->pc->conn, req, EVHTTP_REQ_POST, target) != 0) {
		req = NULL; /* freed by evhttp_make_request on failure */
		goto fail;
	}
	if (c->reused)
		d->conns_reused++;
	sl_free(target);
	evhttp_uri_free(u);
	c->next = d->calls;
	if (d->calls)
		d->calls->prev = c;
	d->calls = c;
	d->inflight++;
	return true;
fail:
	if (req)
		evhttp_request_free(req);
	if (c && c->pc)
		pconn_bury(d, c->pc);
	sl_free(c);
	sl_free(target);
	evhttp_uri_free(u);
	snprintf(why, why_cap, "cannot start a request to %.200s", url);
	return false;
}

/* ---- the scan ------------------------------------------------------------------------- */

/* Handles one picked record; the item's rec passes to an HTTP call or is released here. */
static void
handle(srv_deliver_t *d, struct item *it)
{
	char name[1024];
	const char *arn = rec_str(it->rec, "arn");
	enum deliver_kind kind = deliver_kind_of(arn, name, sizeof name);
	if (set_busy(d, it->id) != SL_OK) {
		json_decref(it->rec);
		return;
	}
	if (kind == DELIVER_HTTP || kind == DELIVER_HTTPS) {
		char why[300];
		if (http_start(d, it, name, kind == DELIVER_HTTPS, false, why, sizeof why))
			return; /* the call owns it now */
		kind = DELIVER_OTHER;
		snprintf(name, sizeof name, "%s", why);
	}
	store_batch_t *b = NULL;
	sl_err rc = srv_batch(d->srv, &b);
	if (rc == SL_OK) {
		switch (kind) {
		case DELIVER_STATES: rc = to_machine(d, b, it); break;
		case DELIVER_BUS: rc = to_bus(d, b, it, name); break;
		case DELIVER_LOG: rc = to_log(d, b, it, name); break;
		case DELIVER_NNG: rc = to_nng(d, b, it, name); break;
		case DELIVER_HTTPS:
		case DELIVER_OTHER:
		case DELIVER_HTTP: {
			char msg[1200];
			snprintf(msg, sizeof msg, "sluice cannot invoke this target: %s",
			         kind == DELIVER_OTHER && name[0] ? name : arn);
			rc = failed(d, b, it, "UNSUPPORTED_TARGET", msg, true);
			break;
		}
		}
	}
	if (rc != SL_OK) {
		sl_errorf("deliver", "delivery %s: %s", it->id, sl_err_message(rc));
		clear_busy(d, it->id);
		arm(d, sl_clock_now_ms() + 1000); /* try again later rather than spin */
	} else {
		release_on_commit(d, b, it);
	}
	json_decref(it->rec);
}

static void
scan(srv_deliver_t *d)
{
	if (d->paused || d->srv->stopping || d->srv->stopped)
		return;
	int64_t now = sl_clock_now_ms(), next_due = INT64_MAX;
	struct item *items = sl_reallocarray(NULL, SCAN_SLICE, sizeof *items);
	if (!items) {
		arm(d, now + 1000);
		return;
	}
	size_t n = 0;
	store_txn_t *txn = NULL;
	store_cursor_t *c = NULL;
	sl_err rc = store_read_begin(srv_store(d->srv), &txn);
	if (rc == SL_OK && (rc = store_cursor_open(txn, STORE_DB_DELIVERIES, &c)) == SL_OK)
		rc = store_cursor_seek(c, NULL, 0);
	struct store_val kv, vv;
	size_t http_room = d->max_inflight > d->inflight ? d->max_inflight - d->inflight : 0;
	bool more = false, capped = false;
	size_t examined = 0;
	while (rc == SL_OK && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
		if (++examined > SCAN_EXAMINE) {
			capped = true;
			break;
		}
		if (kv.len != KEY_LEN)
			continue; /* not a delivery record of this layout */
		int64_t due = store_decode_i64(kv.data);
		if (due > now) {
			next_due = due;
			break;
		}
		const char *id = (const char *)kv.data + 8;
		if (is_busy(d, id))
			continue;
		if (n == SCAN_SLICE) {
			more = true;
			break;
		}
		json_t *rec = json_loadb(vv.data, vv.len, 0, NULL);
		if (!rec) {
			sl_errorf("deliver", "delivery %.36s: unreadable record", id);
			continue;
		}
		const char *arn = rec_str(rec, "arn");
		if (strncmp(arn, "http://", 7) == 0 || strncmp(arn, "https://", 8) == 0) {
			if (http_room == 0) {
				json_decref(rec); /* picked again when a call finishes */
				continue;
			}
			http_room--;
		}
		struct item *it = &items[n++];
		memcpy(it->key, kv.data, KEY_LEN);
		it->outcome = OUT_NONE;
		memcpy(it->id, id, ID_LEN);
		it->id[ID_LEN] = '\0';
		it->rec = rec;
	}
	store_cursor_close(c);
	if (txn)
		store_read_end(txn);
	if (rc != SL_OK && rc != SL_ERR_NOT_FOUND) {
		sl_errorf("deliver", "cannot read deliveries: %s", sl_err_message(rc));
		next_due = now + 1000;
	}
	for (size_t i = 0; i < n; i++)
		handle(d, &items[i]);
	sl_free(items);
	if (more)
		kick(d);
	else if (capped)
		arm(d, now + 1000); /* commits and finished calls kick sooner; this is a floor */
	else if (next_due != INT64_MAX)
		arm(d, next_due);
}

static void
on_scan(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	scan(arg);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_deliver_t *d = arg;
	d->armed_due = INT64_MAX;
	scan(d);
}

/* ---- metrics and start ---------------------------------------------------------------- */

sl_err
srv_deliver_metrics(srv_t *s, struct evbuffer *out)
{
	srv_deliver_t *d = srv_deliver_of(s);
	if (!d)
		return SL_OK;
	if (evbuffer_add_printf(
	            out,
	            "# HELP sluice_deliveries_total Target invocations finished, by outcome.\n"
	            "# TYPE sluice_deliveries_total counter\n"
	            "sluice_deliveries_total{outcome=\"delivered\"} %" PRIu64 "\n"
	            "sluice_deliveries_total{outcome=\"retried\"} %" PRIu64 "\n"
	            "sluice_deliveries_total{outcome=\"dead_lettered\"} %" PRIu64 "\n"
	            "sluice_deliveries_total{outcome=\"dropped\"} %" PRIu64 "\n"
	            "# HELP sluice_delivery_failures_total Failed target invocations.\n"
	            "# TYPE sluice_delivery_failures_total counter\n"
	            "sluice_delivery_failures_total %" PRIu64 "\n"
	            "# HELP sluice_deliveries_inflight HTTP deliveries waiting for an answer.\n"
	            "# TYPE sluice_deliveries_inflight gauge\n"
	            "sluice_deliveries_inflight %u\n"
	            "# HELP sluice_delivery_connections_total Webhook connections: opened, "
	            "requests sent on a kept-alive one, stale ones retried on a new one.\n"
	            "# TYPE sluice_delivery_connections_total counter\n"
	            "sluice_delivery_connections_total{event=\"opened\"} %" PRIu64 "\n"
	            "sluice_delivery_connections_total{event=\"reused\"} %" PRIu64 "\n"
	            "sluice_delivery_connections_total{event=\"stale_retry\"} %" PRIu64 "\n"
	            "# HELP sluice_delivery_connections_idle Webhook connections kept open, idle.\n"
	            "# TYPE sluice_delivery_connections_idle gauge\n"
	            "sluice_delivery_connections_idle %u\n",
	            d->delivered, d->retried, d->dead_lettered, d->dropped, d->failures,
	            d->inflight, d->conns_opened, d->conns_reused, d->stale_retries, d->n_idle)
	    < 0)
		return SL_ERR_NOMEM;
	return SL_OK;
}

sl_err
srv_deliver_start(srv_t *s, struct bus_state *st)
{
	srv_deliver_t *d = SL_NEW(srv_deliver_t);
	if (!d)
		return SL_ERR_NOMEM;
	d->srv = s;
	d->bus = st;
	d->armed_due = INT64_MAX;
	d->backoff_ms = s->cfg.delivery_backoff_ms ? s->cfg.delivery_backoff_ms : 1000;
	d->backoff_cap_ms
	        = s->cfg.delivery_backoff_cap_ms ? s->cfg.delivery_backoff_cap_ms : 300 * 1000;
	if (d->backoff_cap_ms < d->backoff_ms)
		d->backoff_cap_ms = d->backoff_ms;
	d->timeout_ms = s->cfg.delivery_timeout_ms ? s->cfg.delivery_timeout_ms : 5000;
	d->max_inflight = s->cfg.delivery_max_inflight ? s->cfg.delivery_max_inflight : 64;
	d->paused = s->cfg.delivery_paused;
	/* kept reachable for the process, as the bus state (no teardown hook in srv_t) */
	d->next = deliverers;
	deliverers = d;
	d->scan_ev = evtimer_new(s->base, on_scan, d);
	d->timer_ev = evtimer_new(s->base, on_timer, d);
	d->reap_ev = evtimer_new(s->base, on_reap, d);
	d->sweep_ev = evtimer_new(s->base, on_sweep, d);
	if (!d->scan_ev || !d->timer_ev || !d->reap_ev || !d->sweep_ev)
		return SL_ERR_NOMEM;
	event_priority_set(d->scan_ev, SRV_PRIO_NORMAL);
	event_priority_set(d->timer_ev, SRV_PRIO_NORMAL);
	/* name resolution off the loop; numeric hosts need none */
	d->dns = evdns_base_new(
	        s->base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!d->dns)
		sl_warn("deliver", "no DNS resolver: webhook host names resolve on the loop");
	/* https:// targets: peers verified against the system's CAs (or SSL_CERT_FILE/DIR) */
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx && SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1
	    && SSL_CTX_set_default_verify_paths(ctx) == 1) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		d->tls = ctx;
	} else {
		SSL_CTX_free(ctx);
		sl_warn("deliver", "no TLS context: https:// deliveries will fail");
	}
	sl_err rc = deadletter_register(s, d);
	if (rc)
		return rc;
	if (d->paused)
		sl_info("deliver", "deliveries are paused (--delivery-paused)");
	else
		kick(d); /* everything due after a restart */
	return SL_OK;
}
