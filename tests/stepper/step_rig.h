/*
 * step_rig.h - an engine on a real store with every effect recorded, for the stepper
 * suites that drive executions by hand (test_step_engine.c, test_step_redrive.c).
 */
#ifndef SLUICE_TESTS_STEP_RIG_H
#define SLUICE_TESTS_STEP_RIG_H

#include "tests/stepper/step_test_util.h"

/* The fake clock's start. */
#define T0 1700000000000LL

struct rig {
	char dir[64];
	store_t *st;
	step_engine_t *eng;
	struct sm_machine *m;
	/* effects seen */
	char tokens[256][STEP_TOKEN_LEN + 1];
	char states[256][81];
	int n_tasks;
	int max_open_tasks, open_tasks;
	int64_t timers[256];
	int n_timers;
	bool finished;
	enum step_status status;
	char error[256];
	int status_running, status_ended;
	char last_status_input[256];
	struct step_effects fx;
	char item_root[128]; /* step_options.item_reader_root when set (rig_init_root) */
};

/* Compiles def as machine "m", opens a store in a new directory, recovers. */
void rig_init(struct rig *r, const char *def);
/* rig_init with step_options.item_reader_root = root (copied). */
void rig_init_root(struct rig *r, const char *def, const char *root);
/* Simulates a crash after the last commit: everything in memory is dropped. */
void rig_restart(struct rig *r);
void rig_free(struct rig *r);
store_batch_t *rig_batch(struct rig *r);
/* Runs ready frames, fires due timers, commits; until nothing moves. */
void rig_settle(struct rig *r);
/* Starts an execution of "m" (input may be NULL) and settles; the ARN is static. */
char *rig_start(struct rig *r, const char *name, const char *input);
json_t *rig_history(struct rig *r, const char *arn);
/* How many events of history h have the type. */
size_t rig_count_type(json_t *h, const char *type);
/* Answers the task-th task seen: output (JSON text) when ok, else the error "Boom"; settles. */
void rig_answer(struct rig *r, int task, bool ok, const char *output);

#endif
