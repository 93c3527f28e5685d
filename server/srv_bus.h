/*
 * srv_bus.h - the event bus service core shared by srv_bus.c, srv_api_rules.c and
 * srv_api_putevents.c (server-internal).
 *
 * Records (JSON text):
 *   BUSES  str(bus)                         -> {"name", "created", "description"?}
 *   RULES  u32('R') str(bus) str(rule)      -> {"name", "bus", "state", "created",
 *                                              "pattern"?, "schedule"?, "description"?,
 *                                              "roleArn"?}
 *   RULES  u32('T') str(bus) str(rule) str(id) -> the PutTargets target object as sent
 *   EVENTS str(bus) u64(seq)                -> the event envelope (seq from 1 per bus)
 *   DELIVERIES i64(due ms) raw(id)          -> {"id", "bus", "rule", "ruleArn", "eventId",
 *                                              "target", "arn", "seq", "attempt", "input",
 *                                              "due"}
 * Every enabled pattern rule is also in its bus's pat_machine_t; the machines change only
 * from commit callbacks, so they never run ahead of the store.
 */
#ifndef SLUICE_SERVER_SRV_BUS_H
#define SLUICE_SERVER_SRV_BUS_H

#include <jansson.h>
#include <stdbool.h>

#include "bus/pattern.h"
#include "server/srv_api.h"

#define BUS_DEFAULT       "default"
#define BUS_NAME_MAX      256
#define RULE_NAME_MAX     64
#define TARGET_ID_MAX     64
#define RULES_PER_BUS     300
#define TARGETS_PER_RULE  5
#define TARGETS_PER_CALL  10
#define LIST_LIMIT_MAX    100
#define BUS_ARN_MAX       512
#define BUS_LIMIT_MESSAGE "The requested resource exceeds the maximum number allowed."

enum { BUS_TAG_RULE = 'R', BUS_TAG_TARGET = 'T' };

struct bus_rt {
	char *name;
	pat_machine_t *machine;
};

struct bus_state {
	srv_t *srv;
	struct bus_rt *buses;
	size_t n, cap;
	/* bus-to-bus hops of the event being published by a bus target (srv_deliver.c): its
	 * deliveries carry it, so a loop of buses ends */
	unsigned hops;
	struct bus_state *next; /* every state ever made, so the process keeps them reachable */
};

/* The machine of a bus, or NULL when the bus has no committed record yet. */
pat_machine_t *bus_machine(struct bus_state *st, const char *bus);

/* Schedules a machine change for after the batch commits: pattern NULL removes the rule;
 * rule NULL with drop_bus removes the bus, with pattern NULL and !drop_bus adds the bus. */
sl_err bus_on_commit(struct bus_state *st, store_batch_t *b, const char *bus, const char *rule,
                     const char *pattern, bool drop_bus);

/* Request helpers. */
sl_err bus_str_field(json_t *body, const char *field, bool required, const char **out,
                     struct sl_error *err);
sl_err bus_missing(struct sl_error *err, const char *field);
/* EventBusName by name or ARN (NULL = default) into out. */
sl_err bus_resolve_name(const char *given, char out[BUS_NAME_MAX + 1], struct sl_error *err);
bool bus_valid_rule_name(const char *s);
sl_err bus_limit(json_t *body, size_t *limit, struct sl_error *err);
/* Paging tokens: the hex of the last name returned. */
char *bus_token_encode(const char *last);
sl_err bus_token_decode(json_t *body, char *out, size_t cap, struct sl_error *err);

void bus_arn(char *out, size_t cap, const char *bus);
void bus_rule_arn(char *out, size_t cap, const char *bus, const char *rule);

/* Records. get: SL_ERR_NOT_FOUND when absent. */
sl_err bus_get_json(store_txn_t *txn, enum store_db db, const struct store_key *k, json_t **out);
sl_err bus_put_json(store_txn_t *txn, enum store_db db, const struct store_key *k, json_t *rec);
void bus_rule_key(struct store_key *k, int tag, const char *bus, const char *rule);
/* SL_OK if the bus exists, else ResourceNotFoundException "Event bus X does not exist." */
sl_err bus_require(store_txn_t *txn, const char *bus, struct sl_error *err);
sl_err bus_rule_not_found(struct sl_error *err, const char *rule, const char *bus);
/* Number of targets of a rule. */
sl_err bus_count_targets(store_txn_t *txn, const char *bus, const char *rule, size_t *n);
/* Deletes a rule's targets (and the rule when with_rule). */
sl_err bus_delete_rule_records(store_txn_t *txn, const char *bus, const char *rule, bool with_rule);

/* AWS's event envelope as JSON text (new string): detail (JSON object text, NULL = {}) is
 * spliced in as written so numbers keep their digits; replay_name is added when set. */
struct bus_envelope_fields {
	const char *id;
	int64_t time_ms;
	const char *source;
	const char *detail_type;
	json_t *resources; /* array of strings or NULL */
	const char *detail;
	const char *replay_name;
};
char *bus_envelope(const struct bus_envelope_fields *f);

/* Appends an envelope (text) to bus's log, routes it through the bus's machine and writes
 * the deliveries of every matched enabled rule's targets, all in b. bus must exist. */
sl_err bus_publish(struct bus_state *st, store_batch_t *b, const char *bus, const char *event_id,
                   const char *text, struct sl_error *err);

/* PutEvents' whole work for Entries (borrowed): request-level checks (an error with err),
 * per-entry checks, publishing; *answer is PutEvents' answer (new reference). */
sl_err bus_put_entries(struct bus_state *st, store_batch_t *b, json_t *entries, json_t **answer,
                       struct sl_error *err);

/* A scheduled rule's event: appended to bus's log and delivered to rule's targets only (AWS
 * sends a schedule's events to its own rule, not through the bus's patterns). */
sl_err bus_publish_to_rule(store_batch_t *b, const char *bus, const char *rule,
                           const char *event_id, const char *text);

sl_err srv_api_rules_register(srv_t *s, struct bus_state *st);
sl_err srv_api_putevents_register(srv_t *s, struct bus_state *st);

#endif
