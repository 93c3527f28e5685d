/*
 * srv_deliver.h - the deliverer: turns the DELIVERIES records written by bus_publish into
 * target invocations, with retries, back-off and dead letters (server-internal).
 *
 * Target kinds (by the target's Arn):
 *   arn:aws:states:R:A:stateMachine:NAME[:VERSION]  StartExecution in the batch that writes
 *                                                   (or deletes) the record: exactly once
 *   arn:aws:events:R:A:event-bus/NAME               bus_publish in the batch that deletes
 *                                                   the record: exactly once
 *   http(s)://HOST[:PORT]/PATH                      POST of the input; the record is deleted
 *                                                   after a 2xx: at least once
 *   arn:aws:logs:R:A:log-group:NAME                 one JSON line in the server log
 *   nng+pub://NNG-URL                               "TOPIC\nINPUT" on a listening PUB socket
 * Other ARNs are accepted by PutTargets (as AWS does) but cannot be invoked here: their
 * deliveries fail at once with UNSUPPORTED_TARGET (dead letter or drop, no retries).
 *
 * Records:
 *   DELIVERIES  i64(due) raw(id)        -> the delivery (srv_bus.h) plus "created",
 *                                          "maxRetries", "maxAgeS", "dlq"?, "lastError"?
 *   DEADLETTERS u32('D') i64(at) raw(id) -> the dead letter (docs/BUS.md)
 *   DEADLETTERS u32('I') raw(id)        -> the 'D' key of that dead letter
 *
 * Threads: loop thread only.
 */
#ifndef SLUICE_SERVER_SRV_DELIVER_H
#define SLUICE_SERVER_SRV_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/sl_err.h"
#include "server/srv.h"
#include "store/store.h"

struct bus_state;
struct evbuffer;

enum deliver_kind {
	DELIVER_STATES,
	DELIVER_BUS,
	DELIVER_HTTP,
	DELIVER_HTTPS,
	DELIVER_LOG,
	DELIVER_NNG,
	DELIVER_OTHER,
};

#define DELIVER_DEFAULT_RETRIES 185
#define DELIVER_DEFAULT_AGE_S   86400
/* An event passes through at most this many bus targets (a loop of buses ends). */
#define DELIVER_BUS_HOPS_MAX 4

/* The kind of a target Arn; name (cap bytes, may be NULL) receives the machine name with
 * its qualifier, the bus name or the log group. */
enum deliver_kind deliver_kind_of(const char *arn, char *name, size_t cap);

/* Starts the execution of a state machine target in b (inside a savepoint). On SL_OK,
 * *code is NULL when the execution started, else an ERROR_CODE ("NO_RESOURCE",
 * "INVALID_INPUT") with msg filled: a failed invocation to retry. Other returns are store
 * or memory errors. */
sl_err deliver_start_machine(srv_t *s, store_batch_t *b, const char *arn, const char *input,
                             const char **code, char *msg, size_t msg_cap);

/* Creates the deliverer of s (bus routing state st), registers the SluiceEvents dead-letter
 * operations and schedules a scan of everything due (recovery after a restart). */
sl_err srv_deliver_start(srv_t *s, struct bus_state *st);

/* True when s runs with --delivery-paused: nothing is invoked, not even state machines in
 * the event's batch (their records wait like the others). */
bool srv_deliver_paused(srv_t *s);

/* Delivery records were written in b: scan once it commits. s NULL = every deliverer. */
void srv_deliver_wrote(srv_t *s, store_batch_t *b);

/* Appends the deliverer's counters to /metrics. */
sl_err srv_deliver_metrics(srv_t *s, struct evbuffer *out);

#endif
