/*
 * srv_api.h - the AWS operations the daemon serves, registered on a server by module.
 *
 * Each srv_api_*.c file translates one family of AWS JSON requests into calls of the
 * engines and store, and answers in AWS's shapes and error names.
 */
#ifndef SLUICE_SERVER_SRV_API_H
#define SLUICE_SERVER_SRV_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sl_err.h"
#include "common/sl_id.h"
#include "server/srv.h"
#include "stepper/stepper.h"
#include "store/store.h"

/* Registers every operation this build serves. */
sl_err srv_api_register_all(srv_t *s);

/* Step Functions: state machines, their revisions and versions (srv_api_machines.c). */
sl_err srv_api_machines_register(srv_t *s);
/* Step Functions executions (srv_api_executions.c); needs srv_engine_new first. */
sl_err srv_api_executions_register(srv_t *s);
/* DescribeMapRun, ListMapRuns, UpdateMapRun (srv_api_mapruns.c); needs the engine. */
sl_err srv_api_mapruns_register(srv_t *s);
/* ListExecutions with mapRunArn: the ARN is a map run of this node that exists in txn
 * (InvalidArn, ResourceNotFound otherwise). */
sl_err srv_api_map_run_check(step_engine_t *step, store_txn_t *txn, const char *map_run_arn,
                             struct sl_error *err);
/* Activities and SendTaskSuccess/Failure/Heartbeat (srv_api_activities.c); needs the engine. */
sl_err srv_api_activities_register(srv_t *s);
/* EventBridge: TestEventPattern (srv_api_events.c). */
sl_err srv_api_events_register(srv_t *s);
/* EventBridge buses, rules, targets, PutEvents (srv_bus.c and friends). */
sl_err srv_api_bus_register(srv_t *s);

/*
 * Stored state machines, for the engines. Records are JSON in STORE_DB_MACHINES:
 *   'M' name          -> {"name", "type", "created", "updated", "revision", "version"}
 *   'R' name revision -> {"definition" (text as written), "roleArn", "revisionId", "created"}
 *   'V' name version  -> {"revision", "description", "created"}
 * Revisions start at 1; every update that changes something adds one. Running executions
 * keep the revision they started with.
 */
struct srv_machine_ref {
	char name[81];
	uint32_t revision; /* 0 = the current one */
};
/* The definition text (new string) of name at revision (0 = current) and the revision. */
sl_err srv_machine_definition(store_txn_t *txn, const char *name, uint32_t revision,
                              char **definition, uint32_t *out_revision);

/* Step Functions request fields (srv_sfn_fields.c), with AWS's error wording. A string
 * member, required or optional (NULL when absent); wrong types are SerializationExceptions. */
sl_err srv_sfn_str_field(json_t *body, const char *field, bool required, const char **out,
                         struct sl_error *err);
/* A Step Functions ARN: copied into buf (cap bytes) and parsed into *a (pointing into buf);
 * InvalidArn unless it parses, its service is "states" and its resource starts with prefix
 * (NULL: any). Region and account are the caller's to check. */
sl_err srv_sfn_arn(const char *arn, const char *prefix, char *buf, size_t cap, struct sl_arn *a,
                   struct sl_error *err);
/* Answers a Step Functions page: {member: items, nextToken: next} (items stolen, next
 * sl_freed, either may be NULL: out of memory). */
sl_err srv_sfn_reply_page(srv_req_t *req, const char *member, json_t *items, char *next);
/* maxResults: 1..1000; absent or 0 gives dflt. */
sl_err srv_sfn_max_results(json_t *body, size_t dflt, size_t *out, struct sl_error *err);

/* Epoch milliseconds as AWS's JSON timestamp (epoch seconds with a fraction). */
json_t *srv_json_time(int64_t ms);

#endif
