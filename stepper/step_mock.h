/*
 * step_mock.h - mocked task responses for `sluice run --mock` (and later the server's
 * --mock-config): AWS Step Functions Local's MockConfigFile, or the short form
 *   {"StateName": [{"Return": v} | {"Throw": {"Error": "...", "Cause": "..."}}, ...]}
 * with one entry per attempt. Parsing checks everything (the file is untrusted) and says
 * where a problem is as a JSON pointer.
 */
#ifndef SLUICE_STEPPER_STEP_MOCK_H
#define SLUICE_STEPPER_STEP_MOCK_H

#include <jansson.h>

#include "common/sl_err.h"

/* Ranges like "1-20000" are refused above this many attempts. */
#define STEP_MOCK_MAX_ATTEMPTS 10000

struct step_mock;

/*
 * doc is borrowed. machine (may be NULL) picks the entry of StateMachines (else the only
 * one); test_case (may be NULL) picks the TestCases entry (else the only one). Errors are
 * SL_ERR_INVALID_ARG with a message naming the place.
 */
sl_err step_mock_parse(json_t *doc, const char *machine, const char *test_case,
                       struct step_mock **out, struct sl_error *err);
void step_mock_free(struct step_mock *m);

/* The response for attempt (0-based) of state: *ret (borrowed) for Return, or *error and
 * *cause (borrowed, cause may be NULL) for Throw. SL_ERR_NOT_FOUND when none is given. */
sl_err step_mock_response(const struct step_mock *m, const char *state, unsigned attempt,
                          json_t **ret, const char **error, const char **cause);

#endif
