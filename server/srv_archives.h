/*
 * srv_archives.h - EventBridge archives and replays (server-internal; docs/BUS.md
 * "Archives and replay").
 *
 * Records in STORE_DB_ARCHIVES:
 *   u32('A') str(archive)                 -> {"name", "bus", "pattern"?, "retention" (days,
 *                                            0 = forever), "description"?, "state",
 *                                            "created"}
 *   u32('C') str(archive)                 -> u64(EventCount) u64(SizeBytes), raw 16 bytes
 *   u32('E') str(archive) i64(ms) u64(seq) -> u64(event size): the archive's index entry of
 *                                            the bus's event (bus, seq) in STORE_DB_EVENTS,
 *                                            ms = the envelope's "time" (AWS
 *                                            replays and retains by it)
 * Records in STORE_DB_REPLAYS:
 *   str(replay) -> {"name", "archive", "bus", "start", "end" (ms), "filter"? [rule names],
 *                   "description"?, "state", "reason"?, "created", "ended"?, "last"? (ms of
 *                   the last event replayed), "cur_ms", "cur_seq" (next entry to replay)}
 * An event is indexed in the batch that appends it to the bus's log (bus_publish), so an
 * archive never misses an acknowledged event; a replay's progress is written in the batch of
 * the deliveries it produced, so a crash neither loses nor repeats a replayed event.
 *
 * Threads: loop thread only.
 */
#ifndef SLUICE_SERVER_SRV_ARCHIVES_H
#define SLUICE_SERVER_SRV_ARCHIVES_H

#include "server/srv_bus.h"

#define ARCHIVE_NAME_MAX      48
#define REPLAY_NAME_MAX       64
#define REPLAYS_ACTIVE_MAX    10
#define ARCHIVE_PRUNE_SLICE   1000 /* index entries deleted per batch */
#define ARCHIVE_PRUNE_EVERY_S 600
#define REPLAY_SLICE          100 /* events replayed per batch */

/* Loads the archives' machines, registers the archive and replay operations, starts the
 * retention prune and resumes replays in progress. After the bus operations. */
sl_err srv_api_archives_register(srv_t *s, struct bus_state *st);

/* bus_publish's hook: indexes the event (bus, seq) in every archive of bus it matches, in b.
 * Cheap when the bus has no archive. */
sl_err srv_archives_on_event(struct bus_state *st, store_batch_t *b, const char *bus, uint64_t seq,
                             const char *text, size_t len, struct sl_error *err);

/* Whether a live archive holds the bus's event (bus, seq) with envelope text: its index has
 * an entry for it (entries past the archive's retention are pruned from the index first).
 * The event log's retention (srv_retention.c) keeps such events. */
sl_err srv_archives_holds(store_txn_t *txn, const char *bus, uint64_t seq, const char *text,
                          size_t len, bool *held);

/* Defined in srv_bus_publish.c: bus_publish without archiving, delivering only to the
 * matched rules keep() accepts (keep NULL: all). Replays publish through it. */
typedef bool (*bus_rule_keep_fn)(void *ctx, const char *rule);
sl_err bus_publish_filtered(struct bus_state *st, store_batch_t *b, const char *bus,
                            const char *event_id, const char *text, bus_rule_keep_fn keep,
                            void *keep_ctx, struct sl_error *err);

#endif
