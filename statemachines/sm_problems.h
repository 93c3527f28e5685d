/*
 * sm_problems.h - the list of problems a definition has, reported all at once.
 *
 * Each problem has a location ("file:line:column" when the source position is known, else a
 * JSON pointer such as "/States/A/Next") and a message in AWS's words where AWS has words.
 */
#ifndef SLUICE_STATEMACHINES_SM_PROBLEMS_H
#define SLUICE_STATEMACHINES_SM_PROBLEMS_H

#include <stddef.h>

#include "common/sl_err.h"

struct sm_problem {
	char *location; /* "file:line:col" or a JSON pointer */
	char *pointer;  /* always the JSON pointer ("" for the root) */
	char *message;
};

/* Zero-initialise (`struct sm_problems p = { 0 };`) before first use. */
struct sm_problems {
	struct sm_problem *items;
	size_t count;
	size_t cap;
	/* A problem list never grows beyond this many entries; later ones are counted only. */
	size_t dropped;
};

/* Caps the list so a hostile definition cannot make the report unbounded. */
#define SM_PROBLEMS_MAX 1000

/* Appends a problem; copies location, pointer and the formatted message. */
sl_err sm_problems_add(struct sm_problems *p, const char *location, const char *pointer,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Frees every entry and zeroes the list so it can be reused. */
void sm_problems_clear(struct sm_problems *p);

#endif
