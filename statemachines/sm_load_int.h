/*
 * sm_load_int.h - what the loader files (sm_load.c, sm_yaml.c) and the validator share:
 * the position table's writer side and location strings.
 */
#ifndef SLUICE_STATEMACHINES_SM_LOAD_INT_H
#define SLUICE_STATEMACHINES_SM_LOAD_INT_H

#include "statemachines/statemachines.h"

struct sm_positions *sm_positions_new(const char *filename);
/* Records the value position (and the key position, 0 when none) of the node at pointer.
 * Copies pointer. */
sl_err sm_positions_put(struct sm_positions *pos, const char *pointer, unsigned line,
                        unsigned column, unsigned key_line, unsigned key_column);

/* "file:line:col", "line:col" without a file, or a copy of pointer when line is 0
 * ("/" stands for the root pointer ""). New string. */
char *sm_location_format(const char *filename, unsigned line, unsigned column, const char *pointer);

/* YAML text -> jansson tree (sm_yaml.c). opts are complete (defaults filled in). */
sl_err sm_yaml_load(const char *text, size_t len, const char *filename,
                    const struct sm_load_options *opts, json_t **out, struct sm_positions *pos,
                    struct sm_problems *problems);

#endif
