/*
 * step_local.h - runs one execution to its end in-process: the small imperative shell that
 * `sluice run` and the tests use around the engine. Tasks are answered from a mock
 * configuration; waits, back-offs and timeouts either elapse for real (the call sleeps) or,
 * with virtual_time, the fake clock jumps to the next due timer whenever nothing else can
 * move.
 */
#ifndef SLUICE_STEPPER_STEP_LOCAL_H
#define SLUICE_STEPPER_STEP_LOCAL_H

#include <jansson.h>
#include <stdbool.h>

#include "statemachines/sm_graph.h"
#include "stepper/step_mock.h"
#include "stepper/stepper.h"
#include "store/store.h"

struct step_local_options {
	const struct step_mock *mock; /* may be NULL: then a Task state is an error */
	bool virtual_time;            /* installs the fake clock (and leaves it installed) */
	const struct step_options *engine;
	bool want_history;
};

struct step_local_result {
	enum step_status status;
	json_t *output;  /* SUCCEEDED */
	char *error;     /* may be NULL */
	char *cause;     /* may be NULL */
	json_t *history; /* when want_history */
};

/*
 * Registers machine under name, starts it with input (borrowed, NULL = {}) on st (an open
 * store whose batch the call commits as it goes) and drives it to the end. SL_OK means the
 * execution ended (in any status); an error means the run could not go on (a Task with no
 * mocked response: SL_ERR_NOT_FOUND with the state named in err).
 */
sl_err step_local_run(store_t *st, const struct sm_machine *machine, const char *name,
                      json_t *input, const struct step_local_options *opt,
                      struct step_local_result *out, struct sl_error *err);
void step_local_result_clear(struct step_local_result *r);

#endif
