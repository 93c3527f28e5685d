/*
 * cli_http.h - the client side of the AWS JSON protocol, for `sluice` commands that talk
 * to a running server (libevent's HTTP client, one request at a time).
 *
 * The endpoint is --endpoint, else SLUICE_ENDPOINT, else http://127.0.0.1:8420.
 */
#ifndef SLUICE_CLI_CLI_HTTP_H
#define SLUICE_CLI_CLI_HTTP_H

#include <jansson.h>

#include "common/sl_err.h"

#define CLI_DEFAULT_ENDPOINT "http://127.0.0.1:8420"

/* The endpoint to use given an --endpoint value (may be NULL). */
const char *cli_endpoint(const char *flag);

/*
 * POSTs body (borrowed) as operation target ("AWSStepFunctions.DescribeStateMachine") and
 * waits for the answer (bounded by timeout_s). On HTTP 200, *out is the answer object. On
 * an AWS error answer, returns SL_ERR_INVALID_ARG with err->message
 * "<__type>: <message>" and *out is the error object (so callers can look at __type). On a
 * connection failure, returns SL_ERR_UNAVAILABLE with a message naming the endpoint.
 */
sl_err cli_aws_call(const char *endpoint, const char *target, json_t *body, int timeout_s,
                    json_t **out, struct sl_error *err);

#endif
