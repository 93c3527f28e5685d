/*
 * pat_internal.h - what the pattern engine's files share: the checked rule a pattern
 * compiles to, value matchers, case folding and the event flattener.
 */
#ifndef SLUICE_BUS_PAT_INTERNAL_H
#define SLUICE_BUS_PAT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/pattern.h"

/* ---- typed value keys ----
 * Exact values are compared as byte keys: a type byte then the payload. Numbers use the
 * bits of their double so 300, 300.0 and 3e2 share one key. */
enum {
	PAT_T_STRING = 's',
	PAT_T_NUMBER = 'n',
	PAT_T_TRUE = 't',
	PAT_T_FALSE = 'f',
	PAT_T_NULL = 'z'
};

/* ---- wildcard ---- */
struct pat_wild {
	size_t nparts; /* literal runs between unescaped stars: stars = nparts - 1 */
	char **parts;
	size_t *lens;
};

/* ---- one alternative of a leaf list ---- */
enum pat_kind {
	PK_EXACT,      /* key = typed key */
	PK_EIC,        /* key = folded string */
	PK_PREFIX,     /* key = prefix */
	PK_PREFIX_EIC, /* key = folded prefix */
	PK_SUFFIX,     /* key = suffix */
	PK_SUFFIX_EIC, /* key = folded suffix */
	PK_WILDCARD,
	PK_NUMERIC,
	PK_CIDR,
	PK_EXISTS, /* exists: true (false is a slot flag) */
	PK_ANYBUT,
};

enum pat_ab_kind { AB_VALUES, AB_PREFIX, AB_SUFFIX, AB_EIC, AB_WILDCARD };

struct pat_val {
	enum pat_kind kind;
	char *key;
	size_t key_len;
	struct pat_wild wild; /* PK_WILDCARD */
	/* PK_NUMERIC */
	bool has_lo, has_hi, lo_incl, hi_incl;
	double lo, hi;
	/* PK_CIDR */
	bool v6;
	uint8_t net[16];
	int bits;
	/* PK_ANYBUT: nkeys keys (typed keys, folded strings, prefixes, suffixes) or wilds */
	enum pat_ab_kind ab;
	size_t nkeys;
	char **keys;
	size_t *key_lens;
	struct pat_wild *wilds;
};

/* A leaf path with OR'ed alternatives; absent_ok from {"exists": false}. */
struct pat_slot {
	char *path; /* dotted path, NUL-terminated */
	size_t path_len;
	bool absent_ok;
	size_t nvals;
	struct pat_val *vals;
};

/* One conjunction after $or expansion: indices into the rule's slot pool. */
struct pat_conj {
	size_t nslots;
	uint32_t *slots;
};

struct pat_rule {
	size_t nslots;
	struct pat_slot *slots;
	size_t nconj;
	struct pat_conj *conj;
};

/* Compiles pattern text; messages are AWS's. *out is freed with pat_rule_free. */
sl_err pat_compile(const char *text, size_t len, struct pat_rule **out, struct sl_error *err);
void pat_rule_free(struct pat_rule *r);

/* ---- value matchers (pat_value.c) ---- */
bool pat_wild_match(const struct pat_wild *w, const char *s, size_t n);
void pat_wild_free(struct pat_wild *w);
/* Parses a wildcard pattern, checking escapes, "**" and the complexity cap. */
sl_err pat_wild_parse(const char *s, size_t n, struct pat_wild *out, struct sl_error *err);
/* A number's typed key (9 bytes) from JSON number text; false if not a finite double. */
bool pat_number_key(const char *s, size_t n, char key[9], double *value);
bool pat_numeric_match(const struct pat_val *v, double d);
/* cidr: parse "addr/bits"; match an event string. */
sl_err pat_cidr_parse(const char *s, struct pat_val *v, struct sl_error *err);
bool pat_cidr_match(const struct pat_val *v, const char *s, size_t n);
/* Anything-but over one event value: its type, payload as in typed keys (8 double bytes
 * for numbers), and for strings its folded form when v needs one (AB_EIC). */
bool pat_anybut_match(const struct pat_val *v, char type, const char *s, size_t n,
                      const char *folded, size_t folded_len);
/* Wildcard complexity score (max simultaneously live automaton states); for tests. */
int pat_wild_complexity(const struct pat_wild *w);

/* ---- Unicode full case folding (pat_fold.c) ----
 * Appends fold(s) to *buf (grown with sl_realloc). Invalid UTF-8 bytes are copied as is.
 * Returns false on allocation failure. */
bool pat_fold(const char *s, size_t n, char **buf, size_t *len, size_t *cap);

/* ---- flattener (pat_flatten.c) ---- */

/* What the machine tells the flattener about a dotted path. */
struct pat_path_info {
	int32_t field; /* leaf field id, or -1 */
	bool prefix;   /* some named path continues below it */
};
/* hash is pat_hash(0, path, len) (FNV-1a), computed incrementally by the flattener. */
typedef bool (*pat_path_lookup_fn)(void *ctx, const char *path, size_t len, uint64_t hash,
                                   struct pat_path_info *out);

#define PAT_FNV_BASIS 0xcbf29ce484222325ULL
#define PAT_FNV_PRIME 0x100000001b3ULL

struct pat_fval {
	int32_t field;
	char type;         /* PAT_T_* */
	uint32_t off, len; /* payload: in the event, or in the decode buffer when decoded */
	bool decoded;
	uint32_t mem_off, mem_len; /* array membership pairs in pat_flat.mem */
	double num;                /* PAT_T_NUMBER */
	bool num_ok;               /* finite double */
};

struct pat_amem {
	uint32_t array; /* array instance id within the event */
	uint32_t index; /* element index */
};

struct pat_flat {
	struct pat_fval *vals;
	size_t nvals, cap_vals;
	struct pat_amem *mem;
	size_t nmem, cap_mem;
	char *dec; /* decoded strings */
	size_t ndec, cap_dec;
	char *path; /* current dotted path */
	size_t cap_path;
	struct pat_amem *stack; /* arrays of objects we are inside */
	size_t cap_stack;
	bool has_obj_arrays;
};

void pat_flat_free(struct pat_flat *f);
/* Flattens one event: every leaf whose path lookup names a field. */
sl_err pat_flatten(struct pat_flat *f, const char *ev, size_t len, pat_path_lookup_fn lookup,
                   void *ctx, struct sl_error *err);
static inline const char *
pat_fval_ptr(const struct pat_flat *f, const char *ev, const struct pat_fval *v)
{
	return v->decoded ? f->dec + v->off : ev + v->off;
}

/* Syntax check of any JSON text, without allocating (SL_ERR_INVALID_ARG when bad). */
sl_err pat_json_check(const char *s, size_t len, struct sl_error *err);

/* Subrules that became candidates (their anchor slot hit) in the last pat_machine_match:
 * what the match had to verify. For tests. */
size_t pat_machine_candidates(const pat_machine_t *m);

/* UTF-8 code points in s (invalid bytes count one each). */
size_t pat_utf8_chars(const char *s, size_t n);

#endif
