/*
 * srv_schedules.h - scheduled rules firing durably, backfills, and the test clock
 * (server-internal; docs/SCHEDULES.md "In the server").
 *
 * Records in STORE_DB_SCHEDULES (JSON):
 *   u32('S') str(bus) str(rule) -> {"bus", "rule", "expr", "tz", "policy", "anchor",
 *                                   "last", "next"?}   one per ENABLED schedule rule
 *   u32('B') raw(id)            -> {"id", "bus", "rule", "from", "to", "cursor", "max",
 *                                   "fired", "total", "outstanding": [event ids], "state"}
 * "last" is the last slot fired (or consumed by the missed-run policy), or the time the
 * schedule was (re)enabled; "next" is the slot the timer waits for (absent: no more slots).
 * A slot's event and the record's progress are written in one batch, so a crash neither
 * loses nor repeats a slot.
 *
 * Threads: loop thread only.
 */
#ifndef SLUICE_SERVER_SRV_SCHEDULES_H
#define SLUICE_SERVER_SRV_SCHEDULES_H

#include <jansson.h>

#include "common/sl_err.h"
#include "server/srv.h"
#include "store/store.h"

/* A skipped slot still fires when the loop is at most this late (SKIP policy). */
#define SCHED_GRACE_MS (60 * 1000)

/* Recovers the schedule records (firing what the missed-run policies say is due after
 * downtime), resumes backfills, arms the timer, registers SluiceEvents.ListSchedules,
 * SluiceEvents.BackfillSchedule, SluiceEvents.DescribeBackfill, SluiceEvents.ListEvents and,
 * when the wall clock is fake (--virtual-time), Sluice.AdvanceClock. After the bus
 * operations are registered. */
sl_err srv_api_schedules_register(srv_t *s);

/*
 * A rule's record was written (rec, the rule record as stored) or deleted (rec NULL) in b,
 * inside a request: writes, rewrites or deletes its schedule record in b and re-arms the
 * timer after the commit. Rules without ScheduleExpression or not ENABLED have none.
 */
sl_err srv_schedules_rule_changed(srv_t *s, store_batch_t *b, const char *bus, const char *rule,
                                  json_t *rec, struct sl_error *err);

/* Checks the sluice extension fields of a PutRule: ScheduleExpressionTimezone (an IANA zone
 * from tzdata, default UTC) and MissedRunPolicy (skip|once|all). *tz and *policy are
 * borrowed from body, NULL when absent. */
sl_err srv_schedules_check_fields(json_t *body, const char *schedule, const char **tz,
                                  const char **policy, struct sl_error *err);

#endif
