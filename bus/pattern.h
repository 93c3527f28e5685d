/*
 * pattern.h - EventBridge event patterns: compile rules into one machine, match raw events.
 *
 * A pat_machine_t holds every rule of a bus. Matching reads the raw event bytes with a
 * streaming flattener that only decodes fields some rule names; the cost of an event is
 * the cost of its named fields, not the number of rules. Rules can be added and removed
 * one at a time. pat_machine_match uses scratch inside the machine, so it is for one
 * thread at a time; pat_machine_match_with lets several threads match at once.
 */
#ifndef SLUICE_BUS_PATTERN_H
#define SLUICE_BUS_PATTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sl_err.h"

/* AWS limits: EventPattern length (characters) and $or expansion. */
#define PAT_MAX_PATTERN_CHARS   4096
#define PAT_MAX_OR_COMBINATIONS 1000
/* Fields (leaf paths) per expanded rule, as event-ruler's MAXIMUM_RULE_SIZE. */
#define PAT_MAX_RULE_FIELDS 256
/* Nesting depth accepted in events and patterns. */
#define PAT_MAX_DEPTH 256

typedef struct pat_machine pat_machine_t;

struct pat_stats {
	size_t rules;    /* named rules */
	size_t subrules; /* after $or expansion */
	size_t fields;   /* distinct leaf paths named by some rule */
	size_t bytes;    /* heap bytes held by the machine (structures, not malloc overhead) */
};

/* Called once per matching rule and event; return false to stop matching early. */
typedef bool (*pat_match_fn)(void *ctx, uint32_t rule_id, const char *rule_name);

sl_err pat_machine_new(pat_machine_t **out, struct sl_error *err);
void pat_machine_free(pat_machine_t *m);

/*
 * Compiles pattern (JSON text, len bytes) and adds it under name (unique in the machine).
 * Errors: SL_ERR_INVALID_PATTERN with AWS's InvalidEventPatternException text,
 * SL_ERR_INVALID_ARG for a pattern over PAT_MAX_PATTERN_CHARS, SL_ERR_EXISTS for a name
 * already present. *rule_id (may be NULL) is the id passed to match callbacks; ids of
 * removed rules are reused.
 */
sl_err pat_machine_add_rule(pat_machine_t *m, const char *name, const char *pattern, size_t len,
                            uint32_t *rule_id, struct sl_error *err);
/* SL_ERR_NOT_FOUND when no rule has that name. */
sl_err pat_machine_remove_rule(pat_machine_t *m, const char *name, struct sl_error *err);

/*
 * Matches one event (JSON object text, len bytes) and calls fn for each matching rule.
 * A malformed event gives SL_ERR_INVALID_ARG and a message with the byte offset.
 */
sl_err pat_machine_match(pat_machine_t *m, const char *event, size_t len, pat_match_fn fn,
                         void *ctx, struct sl_error *err);
/*
 * Matching from several threads: each thread owns a scratch and calls
 * pat_machine_match_with; any number may run at once as long as no rule is added or
 * removed meanwhile (e.g. readers of a rwlock around add/remove). A scratch follows the
 * machine's growth by itself.
 */
typedef struct pat_scratch pat_scratch_t;
sl_err pat_scratch_new(pat_scratch_t **out, struct sl_error *err);
void pat_scratch_free(pat_scratch_t *sc);
sl_err pat_machine_match_with(const pat_machine_t *m, pat_scratch_t *sc, const char *event,
                              size_t len, pat_match_fn fn, void *ctx, struct sl_error *err);

/* Same as pat_machine_match, filling ids[0..cap) and *n with the number of matching rules (may
 * exceed cap). */
sl_err pat_machine_match_ids(pat_machine_t *m, const char *event, size_t len, uint32_t *ids,
                             size_t cap, size_t *n, struct sl_error *err);

void pat_machine_stats(const pat_machine_t *m, struct pat_stats *out);

/* Only checks a pattern (PutRule, CreateArchive). */
sl_err pat_validate(const char *pattern, size_t len, struct sl_error *err);

/* TestEventPattern: does event match pattern? Pattern errors as pat_machine_add_rule. */
sl_err pat_test(const char *pattern_text, const char *event_text, bool *match,
                struct sl_error *err);

#endif
