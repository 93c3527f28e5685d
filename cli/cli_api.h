/*
 * cli_api.h - what the commands that talk to a running server share on top of
 * cli_aws_call: whole listings across pages, name-to-ARN look-ups.
 */
#ifndef SLUICE_CLI_CLI_API_H
#define SLUICE_CLI_CLI_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/sl_err.h"

/* Seconds any one call may take. */
#define CLI_API_TIMEOUT 60

/* One call (body stolen); as cli_aws_call. *out is the answer or the AWS error object. */
sl_err cli_api_call(const char *endpoint, const char *target, json_t *body, json_t **out,
                    struct sl_error *err);

/*
 * A List operation through every page: req (stolen) is sent with token_key ("nextToken" or
 * "NextToken") set from the previous answer; the elements of each answer's member are
 * appended to *items (a new array). On an AWS error, *error_type (may be NULL) gets the
 * __type (borrowed from a static copy, valid until the next call).
 */
sl_err cli_api_list(const char *endpoint, const char *target, json_t *req, const char *member,
                    const char *token_key, json_t **items, const char **error_type,
                    struct sl_error *err);

/* The ARN of the state machine named name (an ARN is copied as it is). SL_ERR_NOT_FOUND
 * with a message when there is none. */
sl_err cli_api_machine_arn(const char *endpoint, const char *name, char *arn, size_t cap,
                           struct sl_error *err);

/* One AWS call (body stolen; NULL counts as out of memory). On failure prints
 * "sluice WHO: message" and returns 2 (bad input) or 3; else CLI_OK with *out the answer. */
int cli_call(const char *endpoint, const char *target, json_t *body, int timeout_s, const char *who,
             json_t **out);
/* The exit code (cli.h) for a failed call: 2 when the server refused the request, 3 when
 * it could not be reached or failed. */
int cli_api_exit_code(sl_err rc);

#endif
