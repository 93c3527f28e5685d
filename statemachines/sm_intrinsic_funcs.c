/*
 * sm_intrinsic_funcs.c - the 18 States.* intrinsic functions. Each takes evaluated
 * arguments (borrowed), returns a new reference in *out, and on bad input fills fault with
 * States.IntrinsicFailure and returns SL_ERR_INVALID_ARG.
 *
 * AWS runs these on the JVM, which shows through: States.Format prints objects as Java
 * maps ({a=1, b=[]}) and doubles as Double.toString does; States.MathAdd rounds each
 * operand half up (Math.round); a seeded States.MathRandom uses java.util.Random's
 * generator so a seed gives a stable result.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/sl_alloc.h"
#include "common/sl_id.h"
#include "statemachines/sm_path_int.h"

#define SM_ARRAY_RANGE_MAX  1000
#define SM_ENCODE_MAX_CHARS 10000
#define SM_HASH_MAX_CHARS   10000

#define FAIL(...)           (sm_fault_set(fault, "States.IntrinsicFailure", __VA_ARGS__), SL_ERR_INVALID_ARG)

static const char *
type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* Integers, or reals with no fractional part, within [lo, hi]. */
static bool
get_int(const json_t *v, long long lo, long long hi, long long *out)
{
	long long x;
	if (json_is_integer(v)) {
		x = json_integer_value(v);
	} else if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d != floor(d) || d < -9.2e18 || d > 9.2e18)
			return false;
		x = (long long)d;
	} else {
		return false;
	}
	if (x < lo || x > hi)
		return false;
	*out = x;
	return true;
}

static size_t
utf8_chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

static sl_err
sbuf_to_string(struct sm_sbuf *b, json_t **out)
{
	if (b->oom) {
		sm_sbuf_free(b);
		return SL_ERR_NOMEM;
	}
	*out = json_stringn(b->s ? b->s : "", b->len);
	sm_sbuf_free(b);
	return *out ? SL_OK : SL_ERR_NOMEM;
}

/* ---- States.Format ---------------------------------------------------------------------- */

static void
java_double(double d, struct sm_sbuf *b)
{
	char e[48], digits[24];
	int nd = 0, p;
	if (!isfinite(d)) {
		sm_sbuf_puts(b, isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
		return;
	}
	if (d == 0) {
		sm_sbuf_puts(b, signbit(d) ? "-0.0" : "0.0");
		return;
	}
	for (p = 1; p <= 17; p++) {
		snprintf(e, sizeof(e), "%.*e", p - 1, d);
		if (strtod(e, NULL) == d)
			break;
	}
	const char *s = e;
	if (*s == '-') {
		sm_sbuf_putc(b, '-');
		s++;
	}
	for (; *s && *s != 'e'; s++)
		if (isdigit((unsigned char)*s) && nd < (int)sizeof(digits))
			digits[nd++] = *s;
	int exp = *s == 'e' ? atoi(s + 1) : 0;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	double ad = fabs(d);
	if (ad >= 1e-3 && ad < 1e7) {
		if (exp >= 0) {
			for (int i = 0; i <= exp; i++)
				sm_sbuf_putc(b, i < nd ? digits[i] : '0');
			sm_sbuf_putc(b, '.');
			if (nd > exp + 1)
				sm_sbuf_putn(b, digits + exp + 1, (size_t)(nd - exp - 1));
			else
				sm_sbuf_putc(b, '0');
		} else {
			sm_sbuf_puts(b, "0.");
			for (int i = 0; i < -exp - 1; i++)
				sm_sbuf_putc(b, '0');
			sm_sbuf_putn(b, digits, (size_t)nd);
		}
	} else {
		char x[16];
		sm_sbuf_putc(b, digits[0]);
		sm_sbuf_putc(b, '.');
		if (nd > 1)
			sm_sbuf_putn(b, digits + 1, (size_t)(nd - 1));
		else
			sm_sbuf_putc(b, '0');
		snprintf(x, sizeof(x), "E%d", exp);
		sm_sbuf_puts(b, x);
	}
}

static void
java_render(const json_t *v, struct sm_sbuf *b)
{
	char num[32];
	switch (json_typeof(v)) {
	case JSON_STRING: sm_sbuf_putn(b, json_string_value(v), json_string_length(v)); break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		sm_sbuf_puts(b, num);
		break;
	case JSON_REAL: java_double(json_real_value(v), b); break;
	case JSON_TRUE: sm_sbuf_puts(b, "true"); break;
	case JSON_FALSE: sm_sbuf_puts(b, "false"); break;
	case JSON_NULL: sm_sbuf_puts(b, "null"); break;
	case JSON_ARRAY:
		sm_sbuf_putc(b, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				sm_sbuf_puts(b, ", ");
			java_render(json_array_get(v, i), b);
		}
		sm_sbuf_putc(b, ']');
		break;
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		bool first = true;
		sm_sbuf_putc(b, '{');
		json_object_foreach((json_t *)v, k, x)
		{
			if (!first)
				sm_sbuf_puts(b, ", ");
			first = false;
			sm_sbuf_puts(b, k);
			sm_sbuf_putc(b, '=');
			java_render(x, b);
		}
		sm_sbuf_putc(b, '}');
		break;
	}
	}
}

size_t
sm_format_placeholders(const char *raw)
{
	size_t n = 0;
	for (const char *s = raw; *s; s++) {
		if (*s == '\\' && s[1])
			s++;
		else if (s[0] == '{' && s[1] == '}') {
			n++;
			s++;
		}
	}
	return n;
}

static sl_err
fn_format(json_t **argv, size_t argc, const char *raw0, json_t **out, struct sm_fault *fault)
{
	if (!json_is_string(argv[0]))
		return FAIL("The first argument of States.Format must be a string, got %s",
		            type_name(argv[0]));
	/* a template read from the input is written with the same escapes as a literal */
	const char *t = raw0 ? raw0 : json_string_value(argv[0]);
	size_t holes = sm_format_placeholders(t);
	if (holes != argc - 1)
		return FAIL("States.Format has %zu placeholder%s '{}' but %zu argument%s to "
		            "substitute",
		            holes, holes == 1 ? "" : "s", argc - 1, argc == 2 ? "" : "s");
	struct sm_sbuf b = { 0 };
	size_t next = 1;
	for (const char *s = t; *s; s++) {
		if (*s == '\\' && s[1]) {
			sm_sbuf_putc(&b, *++s);
		} else if (s[0] == '{' && s[1] == '}') {
			java_render(argv[next++], &b);
			s++;
		} else {
			sm_sbuf_putc(&b, *s);
		}
	}
	return sbuf_to_string(&b, out);
}

/* ---- JSON ------------------------------------------------------------------------------- */

static sl_err
fn_string_to_json(json_t **argv, size_t argc, const char *raw0, json_t **out,
                  struct sm_fault *fault)
{
	if (!json_is_string(argv[0]))
		return FAIL("States.StringToJson needs a string, got %s", type_name(argv[0]));
	const char *s = json_string_value(argv[0]);
	size_t n = json_string_length(argv[0]);
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	/* AWS: blank text parses to null (corpus: test_string_to_json "" and " ") */
	if (n == 0) {
		*out = json_null();
		return SL_OK;
	}
	json_error_t e;
	*out = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (*out)
		return SL_OK;
	if (json_error_code(&e) == json_error_out_of_memory)
		return SL_ERR_NOMEM;
	return FAIL("States.StringToJson could not parse its argument as JSON: %s at position %d",
	            e.text, e.position);
}

static sl_err
fn_json_to_string(json_t **argv, size_t argc, const char *raw0, json_t **out,
                  struct sm_fault *fault)
{
	struct sm_sbuf b = { 0 };
	sm_json_compact(argv[0], &b);
	return sbuf_to_string(&b, out);
}

static sl_err
fn_json_merge(json_t **argv, size_t argc, const char *raw0, json_t **out, struct sm_fault *fault)
{
	if (!json_is_object(argv[0]) || !json_is_object(argv[1]))
		return FAIL("States.JsonMerge needs two objects, got %s and %s", type_name(argv[0]),
		            type_name(argv[1]));
	if (!json_is_boolean(argv[2]))
		return FAIL("The third argument of States.JsonMerge must be a boolean, got %s",
		            type_name(argv[2]));
	if (json_is_true(argv[2]))
		return FAIL("States.JsonMerge supports only a shallow merge: its third argument "
		            "must be false");
	json_t *r = json_deep_copy(argv[0]);
	json_t *second = json_deep_copy(argv[1]);
	/* shallow: a key in both takes the second object's value whole */
	if (!r || !second || json_object_update(r, second)) {
		json_decref(r);
		json_decref(second);
		return SL_ERR_NOMEM;
	}
	json_decref(second);
	*out = r;
	return SL_OK;
}

/* ---- arrays ----------------------------------------------------------------------------- */

static sl_err
fn_array(json_t **argv, size_t argc, const char *raw0, json_t **out, struct sm_fault *fault)
{
	json_t *a = json_array();
	if (!a)
		return SL_ERR_NOMEM;
	for (size_t i = 0; i < argc; i++) {
		if (json_array_append(a, argv[i])) {
			json_decref(a);
			return SL_ERR_NOMEM;
		}
	}
	*out = a;
	return SL_OK;
}

static sl_err
fn_array_partition(json_t **argv, size_t argc, const char *raw0, json_t **out,
                   struct sm_fault *fault)
{
	long long size;
	if (!json_is_array(argv[0]))
		return FAIL("The first argument of States.ArrayPartition must be an array, got %s",
		            type_name(argv[0]));
	if (!get_int(argv[1], 1, INT32_MAX, &size))
		return FAIL("The chunk size of States.ArrayPartition must be a positive integer");
	json_t *r = json_array();
	if (!r)
		return SL_ERR_NOMEM;
	size_t n = json_array_size(argv[0]);
	for (size_t i = 0; i < n; i += (size_t)size) {
		json_t *chunk = json_array();
		if (!chunk || json_array_append_new(r, chunk))
			goto nomem;
		for (size_t j = i; j < n && j < i + (size_t)size; j++)
			if (json_array_append(chunk, json_array_get(argv[0], j)))
				goto nomem;
	}
	*out = r;
	return SL_OK;
nomem:
	json_decref(r);
	return SL_ERR_NOMEM;
}

static sl_err
fn_array_contains(json_t **argv, size_t argc, const char *raw0, json_t **out,
                  struct sm_fault *fault)
{
	if (!json_is_array(argv[0]))
		return FAIL("The first argument of States.ArrayContains must be an array, got %s",
		            type_name(argv[0]));
	bool found = false;
	for (size_t i = 0; i < json_array_size(argv[0]) && !found; i++)
		found = json_equal(json_array_get(argv[0], i), argv[1]);
	*out = json_boolean(found);
	return SL_OK;
}

static sl_err
fn_array_range(json_t **argv, size_t argc, const char *raw0, json_t **out, struct sm_fault *fault)
{
	long long first, last, step;
	if (!get_int(argv[0], INT32_MIN, INT32_MAX, &first)
	    || !get_int(argv[1], INT32_MIN, INT32_MAX, &last)
	    || !get_int(argv[2], INT32_MIN, INT32_MAX, &step))
		return FAIL("The arguments of States.ArrayRange must be integers");
	if (step == 0)
		return FAIL("The step of States.ArrayRange cannot be 0");
	long long count = 0;
	if ((step > 0 && last >= first) || (step < 0 && last <= first))
		count = (last - first) / step + 1;
	if (count > SM_ARRAY_RANGE_MAX)
		return FAIL("States.ArrayRange would create %lld elements; at most %d are allowed",
		            count, SM_ARRAY_RANGE_MAX);
	json_t *r = json_array();
	if (!r)
		return SL_ERR_NOMEM;
	for (long long i = 0; i < count; i++) {
		if (json_array_append_new(r, json_integer(first + i * step))) {
			json_decref(r);
			return SL_ERR_NOMEM;
		}
	}
	*out = r;
	return SL_OK;
}

static sl_err
fn_array_get_item(json_t **argv, size_t argc, const char *raw0, json_t **out,
                  struct sm_fault *fault)
{
	long long idx;
	if (!json_is_array(argv[0]))
		return FAIL("The first argument of States.ArrayGetItem must be an array, got %s",
		            type_name(argv[0]));
	if (!get_int(argv[1], 0, LLONG_MAX, &idx))
		return FAIL("The index of States.ArrayGetItem must be a non-negative integer");
	if ((size_t)idx >= json_array_size(argv[0]))
		return FAIL("The index %lld of States.ArrayGetItem is out of bounds for an array "
		            "of %zu elements",
		            idx, json_array_size(argv[0]));
	*out = json_incref(json_array_get(argv[0], (size_t)idx));
	return SL_OK;
}

static sl_err
fn_array_length(json_t **argv, size_t argc, const char *raw0, json_t **out, struct sm_fault *fault)
{
	if (!json_is_array(argv[0]))
		return FAIL("The argument of States.ArrayLength must be an array, got %s",
		            type_name(argv[0]));
	*out = json_integer((json_int_t)json_array_size(argv[0]));
	return *out ? SL_OK : SL_ERR_NOMEM;
}

static sl_err
fn_array_unique(json_t **argv, size_t argc, const char *raw0, json_t **out, struct sm_fault *fault)
{
	if (!json_is_array(argv[0]))
		return FAIL("The argument of States.ArrayUnique must be an array, got %s",
		            type_name(argv[0]));
	json_t *r = json_array();
	if (!r)
		return SL_ERR_NOMEM;
	for (size_t i = 0; i < json_array_size(argv[0]); i++) {
		json_t *x = json_array_get(argv[0], i);
		bool seen = false;
		for (size_t j = 0; j < json_array_size(r) && !seen; j++)
			seen = json_equal(json_array_get(r, j), x);
		if (!seen && json_array_append(r, x)) {
			json_decref(r);
			return SL_ERR_NOMEM;
		}
	}
	*out = r;
	return SL_OK;
}

/* ---- encodings and hashes --------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static sl_err
fn_base64_encode(json_t **argv, size_t argc, const char *raw0, json_t **out, struct sm_fault *fault)
{
	if (!json_is_string(argv[0]))
		return FAIL("States.Base64Encode needs a string, got %s", type_name(argv[0]));
	const unsigned char *s = (const unsigned char *)json_string_value(argv[0]);
	size_t n = json_string_length(argv[0]);
	if (utf8_chars((const char *)s, n) > SM_ENCODE_MAX_CHARS)
		return FAIL("The input of States.Base64Encode is limited to %d characters",
		            SM_ENCODE_MAX_CHARS);
	struct sm_sbuf b = { 0 };
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		char q[4] = { b64[(v >> 18) & 63], b64[(v >> 12) & 63],
			      i + 1 < n ? b64[(v >> 6) & 63] : '=', i + 2 < n ? b64[v & 63] : '=' };
		sm_sbuf_putn(&b, q, 4);
	}
	return sbuf_to_string(&b, out);
}

static int
b64_value(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;
	return p ? (int)(p - b64) : -1;
}

static sl_err
fn_base64_decode(json_t **argv, size_t argc, const char *raw0, json_t **out, struct sm_fault *fault)
{
	if (!json_is_string(argv[0]))
		return FAIL("States.Base64Decode needs a string, got %s", type_name(argv[0]));
	const char *s = json_string_value(argv[0]);
	size_t n = json_string_length(argv[0]);
	if (utf8_chars(s, n) > SM_ENCODE_MAX_CHARS)
		return FAIL("The input of States.Base64Decode is limited to %d characters",
		            SM_ENCODE_MAX_CHARS);
	size_t pad = 0;
	while (pad < 2 && n > pad && s[n - 1 - pad] == '=')
		pad++;
	size_t body = n - pad;
	if ((pad && n % 4 != 0) || body % 4 == 1)
		return FAIL("The input of States.Base64Decode is not valid Base64");
	struct sm_sbuf b = { 0 };
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < body; i++) {
		int v = b64_value(s[i]);
		if (v < 0) {
			sm_sbuf_free(&b);
			return FAIL("The input of States.Base64Decode is not valid Base64 "
			            "(character %zu)",
			            i + 1);
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			sm_sbuf_putc(&b, (char)((acc >> bits) & 0xFF));
		}
	}
	if (b.oom) {
		sm_sbuf_free(&b);
		return SL_ERR_NOMEM;
	}
	if (!sm_utf8_valid(b.s ? b.s : "", b.len)) {
		sm_sbuf_free(&b);
		return FAIL("States.Base64Decode produced bytes that are not valid UTF-8 text");
	}
	return sbuf_to_string(&b, out);
}

static sl_err
fn_hash(json_t **argv, size_t argc, const char *raw0, json_t **out, struct sm_fault *fault)
{
	static const struct {
		const char *name;
		const EVP_MD *(*md)(void);
	} algs[] = { { "MD5", EVP_md5 },
		     { "SHA-1", EVP_sha1 },
		     { "SHA-256", EVP_sha256 },
		     { "SHA-384", EVP_sha384 },
		     { "SHA-512", EVP_sha512 } };
	if (!json_is_string(argv[1]))
		return FAIL("The algorithm of States.Hash must be a string, got %s",
		            type_name(argv[1]));
	const EVP_MD *md = NULL;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(json_string_value(argv[1]), algs[i].name) == 0)
			md = algs[i].md();
	if (!md)
		return FAIL("States.Hash does not support the algorithm '%.64s'; use MD5, SHA-1, "
		            "SHA-256, SHA-384 or SHA-512",
		            json_string_value(argv[1]));
	struct sm_sbuf text = { 0 };
	const char *data;
	size_t n;
	if (json_is_string(argv[0])) {
		data = json_string_value(argv[0]);
		n = json_string_length(argv[0]);
	} else {
		/* non-string data is hashed as its JSON text */
		sm_json_compact(argv[0], &text);
		if (text.oom)
			return SL_ERR_NOMEM;
		data = text.s ? text.s : "";
		n = text.len;
	}
	if (utf8_chars(data, n) > SM_HASH_MAX_CHARS) {
		sm_sbuf_free(&text);
		return FAIL("The input of States.Hash is limited to %d characters",
		            SM_HASH_MAX_CHARS);
	}
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	int ok = EVP_Digest(data, n, digest, &dlen, md, NULL);
	sm_sbuf_free(&text);
	if (!ok)
		return FAIL("States.Hash failed to compute the digest");
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	sl_hex(digest, dlen, hex);
	*out = json_string(hex);
	return *out ? SL_OK : SL_ERR_NOMEM;
}

/* ---- math ------------------------------------------------------------------------------- */

/* java.util.Random, so that the same seed gives the same number every time. */
struct sm_jrandom {
	uint64_t seed;
};

static int32_t
jrandom_next(struct sm_jrandom *r, int bits)
{
	r->seed = (r->seed * 0x5DEECE66DULL + 0xBULL) & ((1ULL << 48) - 1);
	return (int32_t)(r->seed >> (48 - bits));
}

static int32_t
jrandom_next_int(struct sm_jrandom *r, int32_t bound)
{
	if ((bound & -bound) == bound)
		return (int32_t)(((int64_t)bound * (int64_t)jrandom_next(r, 31)) >> 31);
	int32_t bits, val;
	do {
		bits = jrandom_next(r, 31);
		val = bits % bound;
	} while ((int64_t)bits - val + (bound - 1) > INT32_MAX);
	return val;
}

static sl_err
fn_math_random(json_t **argv, size_t argc, const char *raw0, json_t **out, struct sm_fault *fault)
{
	long long start, end, seed = 0;
	if (!get_int(argv[0], INT32_MIN, INT32_MAX, &start)
	    || !get_int(argv[1], INT32_MIN, INT32_MAX, &end))
		return FAIL("The start and end of States.MathRandom must be integers");
	if (argc == 3 && !get_int(argv[2], LLONG_MIN, LLONG_MAX, &seed))
		return FAIL("The seed of States.MathRandom must be an integer");
	if (end <= start)
		return FAIL("The end of States.MathRandom (%lld) must be greater than its start "
		            "(%lld)",
		            end, start);
	long long span = end - start;
	long long v;
	if (span > INT32_MAX)
		return FAIL("The range of States.MathRandom is too large");
	if (argc == 3) {
		struct sm_jrandom r = { ((uint64_t)seed ^ 0x5DEECE66DULL) & ((1ULL << 48) - 1) };
		v = start + jrandom_next_int(&r, (int32_t)span);
	} else {
		uint64_t x;
		if (sl_random_bytes(&x, sizeof(x)))
			return FAIL("States.MathRandom could not read random bytes");
		v = start + (long long)(x % (uint64_t)span);
	}
	*out = json_integer(v);
	return *out ? SL_OK : SL_ERR_NOMEM;
}

/* Java's Math.round: half rounds up (1.5 -> 2, -1.5 -> -1, -2.5 -> -2), as the corpus
 * (test_math_add) shows AWS does to each operand. */
static bool
round_operand(const json_t *v, long long *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
	} else if (json_is_real(v)) {
		double r = floor(json_real_value(v) + 0.5);
		if (!isfinite(r) || r < INT32_MIN || r > INT32_MAX)
			return false;
		*out = (long long)r;
	} else {
		return false;
	}
	return *out >= INT32_MIN && *out <= INT32_MAX;
}

static sl_err
fn_math_add(json_t **argv, size_t argc, const char *raw0, json_t **out, struct sm_fault *fault)
{
	long long a, b;
	if (!round_operand(argv[0], &a) || !round_operand(argv[1], &b))
		return FAIL("The arguments of States.MathAdd must be numbers between -2147483648 "
		            "and 2147483647");
	*out = json_integer(a + b);
	return *out ? SL_OK : SL_ERR_NOMEM;
}

/* ---- strings ---------------------------------------------------------------------------- */

static size_t
utf8_len(unsigned char c)
{
	return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

static bool
is_delim(const char *s, size_t clen, const char *delims, size_t dn)
{
	for (size_t i = 0; i < dn;) {
		size_t dl = utf8_len((unsigned char)delims[i]);
		if (dl == clen && i + dl <= dn && memcmp(delims + i, s, clen) == 0)
			return true;
		i += dl;
	}
	return false;
}

static sl_err
fn_string_split(json_t **argv, size_t argc, const char *raw0, json_t **out, struct sm_fault *fault)
{
	if (!json_is_string(argv[0]) || !json_is_string(argv[1]))
		return FAIL("States.StringSplit needs two strings, got %s and %s",
		            type_name(argv[0]), type_name(argv[1]));
	const char *s = json_string_value(argv[0]);
	size_t n = json_string_length(argv[0]);
	const char *d = json_string_value(argv[1]);
	size_t dn = json_string_length(argv[1]);
	json_t *r = json_array();
	if (!r)
		return SL_ERR_NOMEM;
	size_t tok = 0;
	for (size_t i = 0; i <= n;) {
		size_t cl = i < n ? utf8_len((unsigned char)s[i]) : 0;
		if (i + cl > n)
			cl = n - i;
		if (i == n || is_delim(s + i, cl, d, dn)) {
			/* every delimiter character separates; empty tokens are dropped (corpus:
			 * test_string_split ",,,," -> []) */
			if (i > tok && json_array_append_new(r, json_stringn(s + tok, i - tok))) {
				json_decref(r);
				return SL_ERR_NOMEM;
			}
			if (i == n)
				break;
			tok = i + cl;
		}
		i += cl;
	}
	*out = r;
	return SL_OK;
}

static sl_err
fn_uuid(json_t **argv, size_t argc, const char *raw0, json_t **out, struct sm_fault *fault)
{
	char u[SL_UUID_STRLEN + 1];
	if (sl_uuid4(u))
		return FAIL("States.UUID could not read random bytes");
	*out = json_string(u);
	return *out ? SL_OK : SL_ERR_NOMEM;
}

/* ---- table ------------------------------------------------------------------------------ */

#define A   SM_T_ANY
#define S   SM_T_STR
#define N   SM_T_NUM
#define I   SM_T_INT
#define B   SM_T_BOOL
#define ARR SM_T_ARR
#define OBJ SM_T_OBJ

static const struct sm_ifunc funcs[] = {
	{ "Format", 1, -1, { S, A, A, A }, fn_format },
	{ "StringToJson", 1, 1, { S }, fn_string_to_json },
	{ "JsonToString", 1, 1, { A }, fn_json_to_string },
	{ "Array", 0, -1, { A, A, A, A }, fn_array },
	{ "ArrayPartition", 2, 2, { ARR, I }, fn_array_partition },
	{ "ArrayContains", 2, 2, { ARR, A }, fn_array_contains },
	{ "ArrayRange", 3, 3, { I, I, I }, fn_array_range },
	{ "ArrayGetItem", 2, 2, { ARR, I }, fn_array_get_item },
	{ "ArrayLength", 1, 1, { ARR }, fn_array_length },
	{ "ArrayUnique", 1, 1, { ARR }, fn_array_unique },
	{ "Base64Encode", 1, 1, { S }, fn_base64_encode },
	{ "Base64Decode", 1, 1, { S }, fn_base64_decode },
	{ "Hash", 2, 2, { A, S }, fn_hash },
	{ "JsonMerge", 3, 3, { OBJ, OBJ, B }, fn_json_merge },
	{ "MathRandom", 2, 3, { I, I, I }, fn_math_random },
	{ "MathAdd", 2, 2, { N, N }, fn_math_add },
	{ "StringSplit", 2, 2, { S, S }, fn_string_split },
	{ "UUID", 0, 0, { A }, fn_uuid },
};

const struct sm_ifunc *
sm_ifunc_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++)
		if (strlen(funcs[i].name) == len && memcmp(funcs[i].name, name, len) == 0)
			return &funcs[i];
	return NULL;
}
