/*
 * srv_deliver_int.h - what srv_deliver.c (the deliverer) and srv_deadletters.c (the
 * SluiceEvents dead-letter operations) share. Loop thread only.
 */
#ifndef SLUICE_SERVER_SRV_DELIVER_INT_H
#define SLUICE_SERVER_SRV_DELIVER_INT_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/sl_id.h"
#include "server/srv_deliver.h"

struct http_call;
struct pconn;
struct evdns_base;
struct pub_socket;

typedef struct srv_deliver {
	srv_t *srv;
	struct bus_state *bus;
	struct event *scan_ev;  /* a zero timeout: scan soon */
	struct event *timer_ev; /* the earliest due record */
	int64_t armed_due;
	struct evdns_base *dns;
	char (*busy)[SL_UUID_STRLEN + 1]; /* ids picked and not yet settled by a commit */
	size_t n_busy, cap_busy;
	struct http_call *calls;
	unsigned inflight;
	struct ssl_ctx_st *tls;  /* SSL_CTX of https:// targets, or NULL */
	struct pub_socket *pubs; /* one NNG PUB socket per nng+pub:// URL, listening */
	bool kick_pending;       /* a scan is due when the open batch commits */
	/* webhook connections kept open for reuse (keep-alive), newest first, and those
	 * waiting to be freed outside libevent's callbacks */
	struct pconn *idle, *dead;
	unsigned n_idle;
	struct event *reap_ev;  /* frees the dead ones soon */
	struct event *sweep_ev; /* closes idle ones past POOL_IDLE_MS */
	/* options */
	unsigned backoff_ms, backoff_cap_ms, timeout_ms, max_inflight;
	bool paused;
	/* counters */
	uint64_t delivered, retried, dead_lettered, dropped, failures;
	uint64_t conns_opened, conns_reused, stale_retries;
	struct srv_deliver *next;
} srv_deliver_t;

srv_deliver_t *srv_deliver_of(srv_t *s);

/* Writes the dead letter of delivery rec in txn. condition is "MaximumRetryAttempts",
 * "MaximumEventAgeInSeconds" or NULL (an error that skips retries); attempt is the last
 * attempt's number from 0. */
sl_err deadletter_put(store_txn_t *txn, json_t *rec, const char *code, const char *message,
                      const char *condition, int64_t attempt);

/* Registers SluiceEvents.ListDeadLetters, GetDeadLetter, RedriveDeadLetters,
 * PurgeDeadLetters. */
sl_err deadletter_register(srv_t *s, srv_deliver_t *d);

#endif
