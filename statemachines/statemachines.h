/*
 * statemachines.h - definitions written by people (JSON or YAML) turned into a checked,
 * compiled graph (sm_graph.h) the stepper runs. Pure code: no storage, no network.
 *
 * Flow: sm_definition_load() parses text into one jansson tree plus a side table of source
 * positions; sm_machine_compile() validates the tree and builds struct sm_machine. Both
 * report every problem they find (struct sm_problems), each located as "file:line:column"
 * when the position is known, else as a JSON pointer.
 */
#ifndef SLUICE_STATEMACHINES_STATEMACHINES_H
#define SLUICE_STATEMACHINES_STATEMACHINES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/sl_err.h"
#include "statemachines/sm_graph.h"
#include "statemachines/sm_problems.h"

enum sm_format {
	SM_FORMAT_AUTO, /* JSON when the first non-blank byte is '{' or '[', else YAML */
	SM_FORMAT_JSON,
	SM_FORMAT_YAML,
};

/* Limits of the loader; zero fields take the defaults below. */
struct sm_load_options {
	enum sm_format format;
	/* YAML streams with several documents are an error unless this is set; then the
	 * tree is a JSON array with one element per document. */
	bool multi_document;
	size_t max_nodes; /* nodes after alias expansion (billion laughs cap) */
	size_t max_depth; /* nesting depth */
};

#define SM_LOAD_DEFAULT_MAX_NODES 100000
#define SM_LOAD_DEFAULT_MAX_DEPTH 128
/* AWS's limit on a definition's size. */
#define SM_DEFINITION_MAX_BYTES (1024 * 1024)

/* ---- source positions -------------------------------------------------------------------- */

/* Maps JSON pointers ("/States/A/Next") to 1-based line/column in the source text. */
struct sm_positions;

/* line/column of the node at pointer (its value), or of the nearest ancestor that has one.
 * False when nothing is known (JSON text loaded without positions, pos NULL). */
bool sm_positions_find(const struct sm_positions *pos, const char *pointer, unsigned *line,
                       unsigned *column);
/* The position of the key of the member at pointer (YAML mapping key / JSON member name). */
bool sm_positions_find_key(const struct sm_positions *pos, const char *pointer, unsigned *line,
                           unsigned *column);
const char *sm_positions_filename(const struct sm_positions *pos); /* may be NULL */
void sm_positions_free(struct sm_positions *pos);

/* Appends one token to a JSON pointer, escaping '~' and '/' (RFC 6901). New string. */
char *sm_pointer_append(const char *pointer, const char *token);
char *sm_pointer_append_index(const char *pointer, size_t index);

/* ---- loading ----------------------------------------------------------------------------- */

/*
 * Parses text (len bytes; need not be NUL-terminated) into *out_tree (new reference) and
 * *out_pos (may be NULL if the caller does not want positions). filename only labels
 * locations ("defn.yaml:3:7"); NULL gives bare positions ("3:7"). On failure returns
 * SL_ERR_PARSE (or SL_ERR_TOO_LARGE, SL_ERR_LIMIT, SL_ERR_NOMEM) and adds the reasons to
 * problems.
 */
sl_err sm_definition_load(const char *text, size_t len, const char *filename, enum sm_format fmt,
                          json_t **out_tree, struct sm_positions **out_pos,
                          struct sm_problems *problems);
sl_err sm_definition_load_ex(const char *text, size_t len, const char *filename,
                             const struct sm_load_options *opts, json_t **out_tree,
                             struct sm_positions **out_pos, struct sm_problems *problems);

/* ---- validation and compilation ---------------------------------------------------------- */

/*
 * Validates definition and compiles it. pos may be NULL (locations are then JSON
 * pointers). Returns SL_OK and *out, or SL_ERR_INVALID_DEFINITION with every problem in
 * problems (and *out NULL), or SL_ERR_NOMEM.
 */
sl_err sm_machine_compile(json_t *definition, const struct sm_positions *pos,
                          struct sm_machine **out, struct sm_problems *problems);

/* Load + compile in one call, for text from a file or a request body. */
sl_err sm_definition_compile_text(const char *text, size_t len, const char *filename,
                                  enum sm_format fmt, struct sm_machine **out,
                                  struct sm_problems *problems);

/* The same for a machine of a given type (CreateStateMachine's `type`): an EXPRESS machine
 * also refuses what EXPRESS executions cannot run (activities, `.sync`, `.sync:2` and
 * `.waitForTaskToken` Resources), as AWS does. The untyped calls check as STANDARD. */
sl_err sm_machine_compile_typed(json_t *definition, const struct sm_positions *pos,
                                enum sm_execution_type type, struct sm_machine **out,
                                struct sm_problems *problems);
sl_err sm_definition_compile_text_typed(const char *text, size_t len, const char *filename,
                                        enum sm_format fmt, enum sm_execution_type type,
                                        struct sm_machine **out, struct sm_problems *problems);

/* The message AWS puts in InvalidDefinition for these problems:
 * "Invalid State Machine Definition: 'CODE: text at /pointer, CODE: text at /pointer'".
 * New string, NULL on allocation failure. */
char *sm_problems_aws_message(const struct sm_problems *problems);

#endif
