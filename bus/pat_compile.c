/*
 * pat_compile.c - pattern JSON -> checked rule (struct pat_rule): leaf slots with their
 * alternatives, $or expanded into conjunctions. Error texts are event-ruler's, which AWS
 * returns as InvalidEventPatternException reasons.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "bus/pat_internal.h"
#include "common/sl_alloc.h"

#define REASON "Event pattern is not valid. Reason: "

struct conjlist {
	size_t n, cap;
	struct pat_conj *v;
};

struct cctx {
	struct pat_rule *r;
	size_t cap_slots;
	struct sl_error *err;
};

static sl_err
nomem(struct cctx *c)
{
	return sl_error_set(c->err, SL_ERR_NOMEM, "out of memory compiling an event pattern");
}

static void
val_free(struct pat_val *v)
{
	sl_free(v->key);
	pat_wild_free(&v->wild);
	for (size_t i = 0; i < v->nkeys; i++) {
		if (v->keys)
			sl_free(v->keys[i]);
		if (v->wilds)
			pat_wild_free(&v->wilds[i]);
	}
	sl_free(v->keys);
	sl_free(v->key_lens);
	sl_free(v->wilds);
}

static void
conjlist_free(struct conjlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		sl_free(l->v[i].slots);
	sl_free(l->v);
	memset(l, 0, sizeof *l);
}

void
pat_rule_free(struct pat_rule *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nslots; i++) {
		for (size_t j = 0; j < r->slots[i].nvals; j++)
			val_free(&r->slots[i].vals[j]);
		sl_free(r->slots[i].vals);
		sl_free(r->slots[i].path);
	}
	sl_free(r->slots);
	for (size_t i = 0; i < r->nconj; i++)
		sl_free(r->conj[i].slots);
	sl_free(r->conj);
	sl_free(r);
}

static bool
conj_push(struct conjlist *l, uint32_t *slots, size_t n)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 4;
		struct pat_conj *nv = sl_reallocarray(l->v, nc, sizeof *nv);
		if (!nv)
			return false;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n].slots = slots;
	l->v[l->n++].nslots = n;
	return true;
}

/* out = out x b (every conjunction of out joined with every one of b). */
static sl_err
cross(struct cctx *c, struct conjlist *out, const struct conjlist *b)
{
	if (b->n == 1 && b->v[0].nslots == 0)
		return SL_OK;
	if (out->n * b->n > PAT_MAX_OR_COMBINATIONS)
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
		                    REASON "The $or expansion of the pattern has over %d "
		                           "combinations",
		                    PAT_MAX_OR_COMBINATIONS);
	struct conjlist res = { 0 };
	for (size_t i = 0; i < out->n; i++) {
		for (size_t j = 0; j < b->n; j++) {
			size_t n = out->v[i].nslots + b->v[j].nslots;
			if (n > PAT_MAX_RULE_FIELDS) {
				conjlist_free(&res);
				return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
				                    REASON "Rule has more than %d fields",
				                    PAT_MAX_RULE_FIELDS);
			}
			uint32_t *s = sl_calloc(n ? n : 1, sizeof *s);
			if (!s || !conj_push(&res, s, n)) {
				sl_free(s);
				conjlist_free(&res);
				return nomem(c);
			}
			memcpy(s, out->v[i].slots, out->v[i].nslots * sizeof *s);
			memcpy(s + out->v[i].nslots, b->v[j].slots, b->v[j].nslots * sizeof *s);
		}
	}
	conjlist_free(out);
	*out = res;
	return SL_OK;
}

static sl_err
set_str(struct cctx *c, char **dst, size_t *dlen, const char *s, size_t n, char type)
{
	size_t off = type ? 1 : 0;
	char *k = sl_malloc(n + off + 1);
	if (!k)
		return nomem(c);
	if (type)
		k[0] = type;
	memcpy(k + off, s, n);
	k[n + off] = '\0';
	*dst = k;
	*dlen = n + off;
	return SL_OK;
}

static sl_err
set_folded(struct cctx *c, char **dst, size_t *dlen, const char *s, size_t n)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	if (!pat_fold(s, n, &buf, &len, &cap)) {
		sl_free(buf);
		return nomem(c);
	}
	buf[len] = '\0';
	*dst = buf;
	*dlen = len;
	return SL_OK;
}

/* Typed key of a JSON scalar; false when j is not a string or number. */
static sl_err
typed_key(struct cctx *c, json_t *j, char **dst, size_t *dlen)
{
	if (json_is_string(j))
		return set_str(c, dst, dlen, json_string_value(j), json_string_length(j),
		               PAT_T_STRING);
	double d = json_number_value(j);
	if (d == 0)
		d = 0;
	char k[9];
	k[0] = PAT_T_NUMBER;
	memcpy(k + 1, &d, 8);
	return set_str(c, dst, dlen, k, 9, 0);
}

static sl_err
ab_grow(struct cctx *c, struct pat_val *v, size_t n, bool wild)
{
	v->keys = sl_calloc(n, sizeof *v->keys);
	v->key_lens = sl_calloc(n, sizeof *v->key_lens);
	if (wild)
		v->wilds = sl_calloc(n, sizeof *v->wilds);
	if (!v->keys || !v->key_lens || (wild && !v->wilds))
		return nomem(c);
	return SL_OK;
}

static sl_err
compile_anybut(struct cctx *c, json_t *j, struct pat_val *v)
{
	static const char *bad_value
	        = REASON "Value of anything-but must be an array or single string/number value.";
	v->kind = PK_ANYBUT;
	if (json_is_string(j) || json_is_number(j)) {
		v->ab = AB_VALUES;
		if (ab_grow(c, v, 1, false))
			return nomem(c);
		v->nkeys = 1;
		return typed_key(c, j, &v->keys[0], &v->key_lens[0]);
	}
	if (json_is_array(j)) {
		size_t n = json_array_size(j);
		if (n == 0)
			return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
			                    REASON "Empty arrays are not allowed");
		v->ab = AB_VALUES;
		if (ab_grow(c, v, n, false))
			return nomem(c);
		for (size_t i = 0; i < n; i++) {
			json_t *e = json_array_get(j, i);
			if (!json_is_string(e) && !json_is_number(e))
				return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
				                    REASON "Inside anything but list, "
				                           "start|null|boolean is not supported.");
			sl_err rc = typed_key(c, e, &v->keys[i], &v->key_lens[i]);
			v->nkeys = i + 1;
			if (rc)
				return rc;
		}
		return SL_OK;
	}
	if (!json_is_object(j) || json_object_size(j) != 1)
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN, "%s", bad_value);
	const char *op = json_object_iter_key(json_object_iter(j));
	json_t *x = json_object_iter_value(json_object_iter(j));
	const char *type_msg;
	if (strcmp(op, "prefix") == 0 || strcmp(op, "suffix") == 0) {
		v->ab = op[0] == 'p' ? AB_PREFIX : AB_SUFFIX;
		type_msg = REASON "prefix/suffix match pattern must be a string";
	} else if (strcmp(op, "equals-ignore-case") == 0) {
		v->ab = AB_EIC;
		type_msg = REASON "Inside anything-but/equals-ignore-case list, "
		                  "number|start|null|boolean is not supported.";
	} else if (strcmp(op, "wildcard") == 0) {
		v->ab = AB_WILDCARD;
		type_msg = REASON "wildcard match pattern must be a string";
	} else {
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
		                    REASON "Unsupported anything-but pattern: %s", op);
	}
	size_t n = json_is_array(x) ? json_array_size(x) : 1;
	if (json_is_object(x))
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN, "%s", bad_value);
	if (n == 0)
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
		                    REASON "Empty arrays are not allowed");
	if (ab_grow(c, v, n, v->ab == AB_WILDCARD))
		return nomem(c);
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_is_array(x) ? json_array_get(x, i) : x;
		if (!json_is_string(e))
			return sl_error_set(c->err, SL_ERR_INVALID_PATTERN, "%s", type_msg);
		const char *s = json_string_value(e);
		size_t sl = json_string_length(e);
		if (sl == 0 && (v->ab == AB_PREFIX || v->ab == AB_SUFFIX))
			return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
			                    REASON "Null prefix/suffix not allowed");
		sl_err rc;
		if (v->ab == AB_EIC)
			rc = set_folded(c, &v->keys[i], &v->key_lens[i], s, sl);
		else
			rc = set_str(c, &v->keys[i], &v->key_lens[i], s, sl, 0);
		if (!rc && v->ab == AB_WILDCARD)
			rc = pat_wild_parse(s, sl, &v->wilds[i], c->err);
		v->nkeys = i + 1;
		if (rc)
			return rc;
	}
	return SL_OK;
}

static sl_err
numeric_bound(struct cctx *c, struct pat_val *v, const char *op, json_t *num)
{
	if (!num || !json_is_number(num))
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
		                    REASON "Value of %s must be numeric", op);
	double d = json_number_value(num);
	bool lower = op[0] == '>', upper = op[0] == '<', eq = op[0] == '=';
	if (eq) {
		if (v->has_lo || v->has_hi)
			return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
			                    REASON "Bad numeric range operator: %s", op);
		v->has_lo = v->has_hi = v->lo_incl = v->hi_incl = true;
		v->lo = v->hi = d;
		return SL_OK;
	}
	if ((lower && v->has_lo) || (upper && v->has_hi) || (v->has_lo && v->has_hi))
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
		                    REASON "Bad numeric range operator: %s", op);
	if (lower) {
		v->has_lo = true;
		v->lo_incl = op[1] == '=';
		v->lo = d;
	} else {
		v->has_hi = true;
		v->hi_incl = op[1] == '=';
		v->hi = d;
	}
	return SL_OK;
}

static sl_err
compile_numeric(struct cctx *c, json_t *j, struct pat_val *v)
{
	v->kind = PK_NUMERIC;
	if (!json_is_array(j))
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
		                    REASON "Value of numeric must be an array.");
	size_t n = json_array_size(j);
	if (n == 0)
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
		                    REASON "Empty arrays are not allowed");
	for (size_t i = 0; i < n; i += 2) {
		json_t *o = json_array_get(j, i);
		const char *op = json_is_string(o) ? json_string_value(o) : NULL;
		if (!op
		    || (strcmp(op, "=") && strcmp(op, "<") && strcmp(op, "<=") && strcmp(op, ">")
		        && strcmp(op, ">=")))
			return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
			                    REASON "Unrecognized numeric range operator: %s",
			                    op ? op : "(not a string)");
		sl_err rc = numeric_bound(c, v, op, json_array_get(j, i + 1));
		if (rc)
			return rc;
	}
	if (v->has_lo && v->has_hi
	    && (v->lo > v->hi || (v->lo == v->hi && !(v->lo_incl && v->hi_incl))))
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
		                    REASON "Bad numeric range: bottom must be less than top");
	if (v->has_lo && v->has_hi && v->lo == v->hi) {
		/* ["=", x] is the exact number x: a hash probe instead of a per-value check */
		double d = v->lo == 0 ? 0 : v->lo;
		char k[9];
		k[0] = PAT_T_NUMBER;
		memcpy(k + 1, &d, 8);
		v->kind = PK_EXACT;
		return set_str(c, &v->key, &v->key_len, k, 9, 0);
	}
	return SL_OK;
}

/* prefix / suffix, plain or {"equals-ignore-case": s}. */
static sl_err
compile_affix(struct cctx *c, json_t *x, struct pat_val *v, bool prefix)
{
	if (json_is_string(x)) {
		v->kind = prefix ? PK_PREFIX : PK_SUFFIX;
		return set_str(c, &v->key, &v->key_len, json_string_value(x), json_string_length(x),
		               0);
	}
	json_t *eic = json_is_object(x) && json_object_size(x) == 1
	        ? json_object_get(x, "equals-ignore-case")
	        : NULL;
	if (eic && json_is_string(eic)) {
		v->kind = prefix ? PK_PREFIX_EIC : PK_SUFFIX_EIC;
		return set_folded(c, &v->key, &v->key_len, json_string_value(eic),
		                  json_string_length(eic));
	}
	return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
	                    REASON "%s match pattern must be a string",
	                    prefix ? "prefix" : "suffix");
}

static bool
is_operator(const char *k)
{
	static const char *ops[] = { "prefix",  "suffix", "equals-ignore-case", "wildcard",
		                     "numeric", "exists", "anything-but",       "cidr" };
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
		if (strcmp(k, ops[i]) == 0)
			return true;
	return false;
}

/* One {"op": x} element of a leaf list; *absent set by exists:false (no value added). */
static sl_err
compile_op(struct cctx *c, json_t *obj, struct pat_val *v, bool *absent, bool *added)
{
	if (json_object_size(obj) != 1)
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
		                    REASON "Only one key allowed in match expression");
	const char *op = json_object_iter_key(json_object_iter(obj));
	json_t *x = json_object_iter_value(json_object_iter(obj));
	*added = true;
	if (strcmp(op, "prefix") == 0)
		return compile_affix(c, x, v, true);
	if (strcmp(op, "suffix") == 0)
		return compile_affix(c, x, v, false);
	if (strcmp(op, "equals-ignore-case") == 0) {
		if (!json_is_string(x))
			return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
			                    REASON
			                    "equals-ignore-case match pattern must be a string");
		v->kind = PK_EIC;
		return set_folded(c, &v->key, &v->key_len, json_string_value(x),
		                  json_string_length(x));
	}
	if (strcmp(op, "wildcard") == 0) {
		if (!json_is_string(x))
			return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
			                    REASON "wildcard match pattern must be a string");
		v->kind = PK_WILDCARD;
		return pat_wild_parse(json_string_value(x), json_string_length(x), &v->wild,
		                      c->err);
	}
	if (strcmp(op, "numeric") == 0)
		return compile_numeric(c, x, v);
	if (strcmp(op, "anything-but") == 0)
		return compile_anybut(c, x, v);
	if (strcmp(op, "cidr") == 0) {
		if (!json_is_string(x))
			return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
			                    REASON "prefix match pattern must be a string");
		v->kind = PK_CIDR;
		return pat_cidr_parse(json_string_value(x), v, c->err);
	}
	if (strcmp(op, "exists") == 0) {
		if (!json_is_boolean(x))
			return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
			                    REASON
			                    "exists match pattern must be either true or false.");
		if (json_is_false(x)) {
			*absent = true;
			*added = false;
			return SL_OK;
		}
		v->kind = PK_EXISTS;
		return SL_OK;
	}
	return sl_error_set(c->err, SL_ERR_INVALID_PATTERN, REASON "Unrecognized match type %s",
	                    op);
}

static sl_err
compile_leaf(struct cctx *c, const char *path, json_t *arr, uint32_t *slot_out)
{
	size_t n = json_array_size(arr);
	if (n == 0)
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
		                    REASON "Empty arrays are not allowed");
	struct pat_rule *r = c->r;
	if (r->nslots == c->cap_slots) {
		size_t nc = c->cap_slots ? c->cap_slots * 2 : 4;
		struct pat_slot *ns = sl_reallocarray(r->slots, nc, sizeof *ns);
		if (!ns)
			return nomem(c);
		r->slots = ns;
		c->cap_slots = nc;
	}
	struct pat_slot *s = &r->slots[r->nslots];
	memset(s, 0, sizeof *s);
	s->path = sl_strdup(path);
	s->vals = sl_calloc(n, sizeof *s->vals);
	*slot_out = (uint32_t)r->nslots++;
	if (!s->path || !s->vals)
		return nomem(c);
	s->path_len = strlen(path);
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(arr, i);
		struct pat_val *v = &s->vals[s->nvals];
		sl_err rc = SL_OK;
		bool added = true;
		v->kind = PK_EXACT;
		if (json_is_string(e) || json_is_number(e)) {
			rc = typed_key(c, e, &v->key, &v->key_len);
		} else if (json_is_true(e) || json_is_false(e) || json_is_null(e)) {
			char t = json_is_true(e)   ? PAT_T_TRUE
			        : json_is_false(e) ? PAT_T_FALSE
			                           : PAT_T_NULL;
			rc = set_str(c, &v->key, &v->key_len, &t, 1, 0);
		} else if (json_is_object(e)) {
			rc = compile_op(c, e, v, &s->absent_ok, &added);
		} else {
			rc = sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
			                  REASON "Match value must be String, number, true, false, "
			                         "or null");
		}
		if (added)
			s->nvals++;
		if (rc)
			return rc;
	}
	return SL_OK;
}

/* An array under "$or" is an $or when its first element is a field object, not an operator. */
static bool
is_or(json_t *v)
{
	if (!json_is_array(v) || json_array_size(v) == 0)
		return false;
	json_t *first = json_array_get(v, 0);
	if (!json_is_object(first))
		return false;
	void *it = json_object_iter(first);
	return !it || !is_operator(json_object_iter_key(it));
}

static sl_err compile_object(struct cctx *c, json_t *obj, const char *prefix, int depth,
                             struct conjlist *out);

static sl_err
compile_or(struct cctx *c, json_t *arr, const char *prefix, int depth, struct conjlist *out)
{
	size_t n = json_array_size(arr);
	if (n < 2)
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
		                    REASON "$or needs an array of at least 2 objects");
	struct conjlist alts = { 0 };
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(arr, i);
		if (!json_is_object(e)) {
			conjlist_free(&alts);
			return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
			                    REASON "$or elements must be objects");
		}
		struct conjlist one = { 0 };
		sl_err rc = compile_object(c, e, prefix, depth + 1, &one);
		if (!rc && alts.n + one.n > PAT_MAX_OR_COMBINATIONS)
			rc = sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
			                  REASON "The $or expansion of the pattern has over %d "
			                         "combinations",
			                  PAT_MAX_OR_COMBINATIONS);
		for (size_t k = 0; !rc && k < one.n; k++) {
			if (!conj_push(&alts, one.v[k].slots, one.v[k].nslots))
				rc = nomem(c);
			else
				one.v[k].slots = NULL;
		}
		conjlist_free(&one);
		if (rc) {
			conjlist_free(&alts);
			return rc;
		}
	}
	sl_err rc = cross(c, out, &alts);
	conjlist_free(&alts);
	return rc;
}

static sl_err
compile_object(struct cctx *c, json_t *obj, const char *prefix, int depth, struct conjlist *out)
{
	if (depth > PAT_MAX_DEPTH)
		return sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
		                    REASON "pattern nests deeper than %d levels", PAT_MAX_DEPTH);
	uint32_t *empty = sl_calloc(1, sizeof *empty);
	if (!empty || !conj_push(out, empty, 0)) {
		sl_free(empty);
		return nomem(c);
	}
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
	{
		sl_err rc = SL_OK;
		if (strcmp(key, "$or") == 0 && is_or(v)) {
			rc = compile_or(c, v, prefix, depth, out);
			if (rc)
				return rc;
			continue;
		}
		size_t pl = prefix ? strlen(prefix) : 0, kl = strlen(key);
		char *path = sl_malloc(pl + kl + 2);
		if (!path)
			return nomem(c);
		if (prefix) {
			memcpy(path, prefix, pl);
			path[pl++] = '.';
		}
		memcpy(path + pl, key, kl + 1);
		if (json_is_object(v)) {
			struct conjlist sub = { 0 };
			rc = compile_object(c, v, path, depth + 1, &sub);
			if (!rc)
				rc = cross(c, out, &sub);
			conjlist_free(&sub);
		} else if (json_is_array(v)) {
			uint32_t slot = 0;
			rc = compile_leaf(c, path, v, &slot);
			for (size_t i = 0; !rc && i < out->n; i++) {
				struct pat_conj *cj = &out->v[i];
				if (cj->nslots + 1 > PAT_MAX_RULE_FIELDS) {
					rc = sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
					                  REASON "Rule has more than %d fields",
					                  PAT_MAX_RULE_FIELDS);
					break;
				}
				uint32_t *ns
				        = sl_reallocarray(cj->slots, cj->nslots + 1, sizeof *ns);
				if (!ns) {
					rc = nomem(c);
					break;
				}
				ns[cj->nslots++] = slot;
				cj->slots = ns;
			}
		} else {
			rc = sl_error_set(c->err, SL_ERR_INVALID_PATTERN,
			                  REASON "\"%s\" must be an object or an array", key);
		}
		sl_free(path);
		if (rc)
			return rc;
	}
	return SL_OK;
}

sl_err
pat_compile(const char *text, size_t len, struct pat_rule **out, struct sl_error *err)
{
	*out = NULL;
	size_t chars = pat_utf8_chars(text, len);
	if (chars > PAT_MAX_PATTERN_CHARS)
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "1 validation error detected: Value at 'eventPattern' failed to "
		        "satisfy constraint: Member must have length less than or equal "
		        "to %d (pattern has %zu characters)",
		        PAT_MAX_PATTERN_CHARS, chars);
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &je);
	/* jansson may report a failed allocation as a syntax error: a text that passes our own
	 * (allocation-free) syntax check and is refused for no data reason ran out of memory */
	if (!j) {
		enum json_error_code jc = json_error_code(&je);
		bool data = jc == json_error_numeric_overflow || jc == json_error_null_character
		        || jc == json_error_null_byte_in_key || jc == json_error_invalid_utf8
		        || jc == json_error_duplicate_key;
		if (jc == json_error_out_of_memory
		    || (!data && pat_json_check(text, len, NULL) == SL_OK))
			return sl_error_set(err, SL_ERR_NOMEM,
			                    "out of memory reading an event pattern");
	}
	if (!j)
		return sl_error_set(err, SL_ERR_INVALID_PATTERN, REASON "%s at line %d, column %d",
		                    je.text, je.line, je.column);
	if (!json_is_object(j)) {
		json_decref(j);
		return sl_error_set(err, SL_ERR_INVALID_PATTERN, REASON "Filter is not an object");
	}
	struct cctx c = { .err = err };
	c.r = SL_NEW(struct pat_rule);
	if (!c.r) {
		json_decref(j);
		return nomem(&c);
	}
	struct conjlist cl = { 0 };
	sl_err rc = compile_object(&c, j, NULL, 0, &cl);
	json_decref(j);
	if (rc) {
		conjlist_free(&cl);
		pat_rule_free(c.r);
		return rc;
	}
	c.r->conj = cl.v;
	c.r->nconj = cl.n;
	*out = c.r;
	return SL_OK;
}
