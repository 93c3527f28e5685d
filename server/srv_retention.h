/*
 * srv_retention.h - the bus logs' retention (server-internal; docs/BUS.md "Retention").
 *
 * Every bus's log (STORE_DB_EVENTS, str(bus) u64(seq)) would grow for ever; `sluice serve
 * --event-retention DURATION` (default 24 h, 0 = keep everything) bounds it. The log keeps
 * no arrival time per event, so arrival marks are written beside it, in STORE_DB_META:
 *   str("event-mark") str(bus) i64(end ms) -> u64(seq): the last seq the bus's log had
 *                                             when the clock passed end
 * one key per bus per interval of RETENTION_MARK_MIN_MS..MAX_MS (retention / 100), written
 * in the batch that appends the event. Every event with seq <= the value of a mark whose end
 * is older than now - retention arrived before the cutoff.
 *
 * A pass of the prune, in slices of RETENTION_SLICE records per loop iteration (one batch
 * each), deletes such events unless one is still needed:
 *   - held by a live archive (its index has an entry: srv_archives_holds);
 *   - referred to by a pending delivery (the records of STORE_DB_DELIVERIES are read first:
 *     the lowest seq per bus; a dead letter made later still finds its original event);
 *   - the last event of its bus (sequence numbers must not be reused).
 * Replays read archived events through the archive's index, so they are covered by the
 * first rule. Passes run every RETENTION_EVERY_S, back to back while there is work; each bus
 * remembers where the last pass stopped and starts from its beginning again every
 * RETENTION_RESTART_MS (events kept then may have been released since).
 *
 * Threads: loop thread only.
 */
#ifndef SLUICE_SERVER_SRV_RETENTION_H
#define SLUICE_SERVER_SRV_RETENTION_H

#include <stdint.h>

#include "server/srv.h"
#include "store/store.h"

#define RETENTION_DEFAULT_S   (24 * 3600) /* AWS retries an event for at most 24 h */
#define RETENTION_MARK_MIN_MS (60 * 1000)
#define RETENTION_MARK_MAX_MS (3600 * 1000)
#define RETENTION_SLICE       1000 /* records read or deleted per loop iteration */
#define RETENTION_EVERY_S     60
#define RETENTION_RESTART_MS  (3600 * 1000)

/* bus_publish's hook, in the batch that appends seq to bus's log: keeps the arrival mark of
 * the current interval. Nothing when retention is off. */
sl_err srv_retention_mark(store_txn_t *txn, const char *bus, uint64_t seq);
/* The last seq of bus's log, 0 when empty (bus_publish appends at one past it). */
sl_err srv_retention_last_seq(store_txn_t *txn, const char *bus, uint64_t *seq);

/* Starts the prune with s's configuration (cfg.event_retention_s); after the bus
 * operations. */
sl_err srv_retention_start(srv_t *s);

/* sluice_events_pruned_total and sluice_events_kept_total for GET /metrics. */
struct evbuffer;
sl_err srv_retention_metrics(srv_t *s, struct evbuffer *out);

#endif
