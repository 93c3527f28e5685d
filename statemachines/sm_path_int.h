/*
 * sm_path_int.h - internals shared by sm_path.c, sm_path_filter.c, sm_intrinsic*.c and
 * sm_template.c. Not a public header: nothing outside statemachines/sm_path* includes it.
 */
#ifndef SLUICE_STATEMACHINES_SM_PATH_INT_H
#define SLUICE_STATEMACHINES_SM_PATH_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/sl_err.h"
#include "statemachines/sm_path.h"

/* ---- growable string -------------------------------------------------------------------- */

struct sm_sbuf {
	char *s;
	size_t len, cap;
	bool oom; /* sticky: once an append failed every later one is a no-op */
};

void sm_sbuf_free(struct sm_sbuf *b);
void sm_sbuf_putn(struct sm_sbuf *b, const char *s, size_t n);
void sm_sbuf_puts(struct sm_sbuf *b, const char *s);
void sm_sbuf_putc(struct sm_sbuf *b, char c);

/* True if s[0..n) is well-formed UTF-8 (jansson refuses anything else in strings). */
bool sm_utf8_valid(const char *s, size_t n);
/* Shortest text that reads back as the same double, JSON style ("1.1", "2.0", "1e+21"). */
void sm_fmt_real(double d, char *buf, size_t cap);
/* Compact JSON (no spaces, UTF-8 kept, shortest reals) appended to b. */
void sm_json_compact(const json_t *v, struct sm_sbuf *b);
/* Sets fault (may be NULL) to error and the formatted cause, truncated to fit. */
void sm_fault_set(struct sm_fault *f, const char *error, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Compact JSON of v into buf (cap bytes), cut with "..." when longer. */
void sm_fault_json(const json_t *v, char *buf, size_t cap);

/* ---- compiled paths --------------------------------------------------------------------- */

enum sm_pseg_kind {
	SM_SEG_NAME,     /* .a  ['a'] */
	SM_SEG_INDEX,    /* [3] [-1] */
	SM_SEG_WILDCARD, /* .*  [*] */
	SM_SEG_SLICE,    /* [1:5:2] */
	SM_SEG_UNION,    /* [0,1]  ['a','b'] */
	SM_SEG_FILTER,   /* [?(...)] */
};

struct sm_union_item {
	char *name; /* NULL: an index */
	long index;
};

struct sm_filter;

struct sm_pseg {
	enum sm_pseg_kind kind;
	bool descend; /* preceded by "..": applies to the node and all its descendants */
	char *name;
	long index;
	long slice[3];
	bool has[3];
	size_t n_items;
	struct sm_union_item *items;
	struct sm_filter *filter;
};

/* Parser state over one path text (shared with the filter parser, which reads @-paths). */
struct sm_pparse {
	const char *text; /* whole text, for messages */
	size_t pos;
	struct sl_error *err;
	bool reference; /* reference paths refuse multi-valued segments */
	bool in_filter; /* stop at operators, spaces and ')' */
	int depth;      /* filter nesting, bounded */
};

sl_err sm_parse_error(struct sm_pparse *pp, const char *what);
/* Reads segments until the end of a path; *multi set if one can yield several values. */
sl_err sm_parse_segments(struct sm_pparse *pp, struct sm_pseg **segs, size_t *n, bool *multi);
void sm_segs_free(struct sm_pseg *segs, size_t n);

/* A list of borrowed nodes. */
struct sm_nodes {
	json_t **v;
	size_t n, cap;
};
sl_err sm_nodes_push(struct sm_nodes *l, json_t *v);
void sm_nodes_free(struct sm_nodes *l);

/* Applies segments to start. root is what `$` means inside filters. Definite paths set
 * *missing (and the index of the first missing segment in *miss_at) when a step fails. */
sl_err sm_segs_eval(const struct sm_pseg *segs, size_t n, json_t *root, json_t *start,
                    struct sm_nodes *out, bool *missing, size_t *miss_at);

/* ---- filters (sm_path_filter.c) --------------------------------------------------------- */

sl_err sm_filter_parse(struct sm_pparse *pp, struct sm_filter **out);
void sm_filter_free(struct sm_filter *f);
/* *match set when node satisfies the filter. */
sl_err sm_filter_match(const struct sm_filter *f, json_t *root, json_t *node, bool *match);

/* ---- intrinsic functions (sm_intrinsic_funcs.c) ---------------------------------------- */

enum sm_argtype {
	SM_T_ANY = 0,
	SM_T_STR = 1 << 0,
	SM_T_NUM = 1 << 1,
	SM_T_INT = 1 << 2,
	SM_T_BOOL = 1 << 3,
	SM_T_ARR = 1 << 4,
	SM_T_OBJ = 1 << 5,
	SM_T_NULL = 1 << 6,
};

/* argv values are borrowed; raw0 is the escaped text of a literal first argument (or
 * NULL), which States.Format needs to tell "\{" from "{". */
typedef sl_err (*sm_ifunc_fn)(json_t **argv, size_t argc, const char *raw0, json_t **out,
                              struct sm_fault *fault);

struct sm_ifunc {
	const char *name;       /* without "States." */
	int min_args, max_args; /* max -1: unbounded */
	unsigned types[4];      /* per position; the last one repeats for variadic functions */
	sm_ifunc_fn fn;
};

const struct sm_ifunc *sm_ifunc_find(const char *name, size_t len);
/* Number of unescaped "{}" in a Format template written with escapes. */
size_t sm_format_placeholders(const char *raw);

#endif
