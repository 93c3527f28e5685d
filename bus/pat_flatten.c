/*
 * pat_flatten.c - streaming event reader. Walks the raw JSON once, descends only into
 * objects some rule names a path below, decodes only leaves of named paths, and checks
 * the syntax of everything it skips. No DOM is built.
 */
#include <string.h>

#include "bus/pat_internal.h"
#include "common/sl_alloc.h"

struct fl {
	const char *s;
	size_t n, i;
	struct pat_flat *f;
	pat_path_lookup_fn lookup;
	void *ctx;
	struct sl_error *err;
	uint32_t next_array;
	size_t nstack;
	int depth;
};

static sl_err
bad(struct fl *p, const char *what)
{
	return sl_error_set(p->err, SL_ERR_INVALID_ARG, "event is not valid JSON: %s at byte %zu",
	                    what, p->i);
}

static sl_err
nomem(struct fl *p)
{
	return sl_error_set(p->err, SL_ERR_NOMEM, "out of memory reading an event");
}

/* Number scanning runs without bounds checks: every text handed to the scanners ends
 * (after trimming) with '}' or ']', which stops it, and it only starts before the end. */
static inline void
ws(struct fl *p)
{
	const char *s = p->s;
	size_t i = p->i, n = p->n;
	while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
		i++;
	p->i = i;
}

static bool
grow(void **buf, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 16;
	while (nc < need)
		nc *= 2;
	void *nb = sl_reallocarray(*buf, nc, elem);
	if (!nb)
		return false;
	*buf = nb;
	*cap = nc;
	return true;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
hex4(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	for (int k = 0; k < 4; k++) {
		int h = hexval(s[k]);
		if (h < 0)
			return false;
		v = v << 4 | (uint32_t)h;
	}
	*out = v;
	return true;
}

static size_t
put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Length of a valid UTF-8 sequence at s, or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t k = 1; k < len; k++)
		if ((s[k] & 0xC0) != 0x80)
			return 0;
	if (c == 0xE0 && s[1] < 0xA0)
		return 0; /* overlong */
	if (c == 0xED && s[1] > 0x9F)
		return 0; /* surrogate */
	if (c == 0xF0 && s[1] < 0x90)
		return 0;
	if (c == 0xF4 && s[1] > 0x8F)
		return 0;
	return len;
}

/* Skips a string (p->i at the opening quote), checking escapes and control bytes. */
static sl_err
skip_string(struct fl *p, bool *escaped)
{
	const char *s = p->s;
	size_t i = p->i + 1, n = p->n;
	*escaped = false;
	for (;;) {
		while (i < n && s[i] != '"' && s[i] != '\\' && (unsigned char)s[i] >= 0x20)
			i++;
		if (i >= n) {
			p->i = i;
			return bad(p, "unterminated string");
		}
		if (s[i] == '"') {
			p->i = i + 1;
			return SL_OK;
		}
		if (s[i] == '\\') {
			*escaped = true;
			if (i + 1 >= n)
				break;
			char e = s[i + 1];
			if (e == 'u') {
				uint32_t cp;
				if (i + 6 > n || !hex4(s + i + 2, &cp)) {
					p->i = i;
					return bad(p, "bad \\u escape");
				}
				i += 6;
			} else if (strchr("\"\\/bfnrt", e) && e) {
				i += 2;
			} else {
				p->i = i;
				return bad(p, "bad escape");
			}
			continue;
		}
		p->i = i;
		return bad(p, "control character in string");
	}
	p->i = i;
	return bad(p, "unterminated string");
}

/* Decodes the string at p->i into *out (len *olen), checking UTF-8. */
static sl_err
decode_string(struct fl *p, char **out, size_t *olen, size_t *ocap)
{
	size_t start = p->i + 1;
	bool escaped;
	sl_err rc = skip_string(p, &escaped);
	if (rc)
		return rc;
	size_t end = p->i - 1, n = end - start;
	if (!grow((void **)out, ocap, *olen + n + 1, 1))
		return nomem(p);
	const unsigned char *s = (const unsigned char *)p->s;
	char *o = *out + *olen;
	for (size_t i = start; i < end;) {
		if (s[i] == '\\') {
			char e = (char)s[i + 1];
			uint32_t cp = 0;
			switch (e) {
			case 'b': *o++ = '\b'; break;
			case 'f': *o++ = '\f'; break;
			case 'n': *o++ = '\n'; break;
			case 'r': *o++ = '\r'; break;
			case 't': *o++ = '\t'; break;
			case 'u':
				hex4((const char *)s + i + 2, &cp);
				if (cp >= 0xD800 && cp <= 0xDBFF && i + 12 <= end
				    && s[i + 6] == '\\' && s[i + 7] == 'u') {
					uint32_t lo;
					if (hex4((const char *)s + i + 8, &lo) && lo >= 0xDC00
					    && lo <= 0xDFFF) {
						cp = 0x10000 + ((cp - 0xD800) << 10)
						        + (lo - 0xDC00);
						i += 6;
					}
				}
				if (cp >= 0xD800 && cp <= 0xDFFF)
					cp = 0xFFFD; /* lone surrogate: no UTF-8 form */
				o += put_utf8(o, cp);
				i += 6;
				continue;
			default: *o++ = e; break;
			}
			i += 2;
			continue;
		}
		size_t l = utf8_len(s + i, end - i);
		if (!l) {
			p->i = i;
			return bad(p, "invalid UTF-8 in string");
		}
		memcpy(o, s + i, l);
		o += l;
		i += l;
	}
	*olen = (size_t)(o - *out);
	return SL_OK;
}

#define DIGIT(c) ((unsigned)(unsigned char)(c) - '0' < 10u)

static sl_err
scan_number(struct fl *p)
{
	const char *s = p->s;
	size_t i = p->i;
	if (s[i] == '-')
		i++;
	if (s[i] == '0') {
		i++;
	} else if (DIGIT(s[i])) {
		while (DIGIT(s[i]))
			i++;
	} else {
		p->i = i;
		return bad(p, "expected a digit");
	}
	if (s[i] == '.') {
		i++;
		if (!DIGIT(s[i])) {
			p->i = i;
			return bad(p, "expected a digit after '.'");
		}
		while (DIGIT(s[i]))
			i++;
	}
	if (s[i] == 'e' || s[i] == 'E') {
		i++;
		if (s[i] == '+' || s[i] == '-')
			i++;
		if (!DIGIT(s[i])) {
			p->i = i;
			return bad(p, "expected a digit in exponent");
		}
		while (DIGIT(s[i]))
			i++;
	}
	p->i = i;
	return SL_OK;
}

static sl_err
literal(struct fl *p, const char *word, size_t wl)
{
	if (p->n - p->i < wl || memcmp(p->s + p->i, word, wl) != 0)
		return bad(p, "unexpected character");
	p->i += wl;
	return SL_OK;
}

/* Skips one value of any shape, iteratively; checks its syntax. */
static sl_err
skip_value(struct fl *p)
{
	const char *s = p->s;
	char open[PAT_MAX_DEPTH + 1]; /* '{' or '[' per level */
	int d = 0;
	bool esc;
	sl_err rc;
value:
	if (p->i >= p->n)
		return bad(p, "unexpected end of input");
	switch (s[p->i]) {
	case '{':
	case '[':
		if (d + p->depth >= PAT_MAX_DEPTH)
			return bad(p, "nesting too deep");
		open[d++] = s[p->i++];
		ws(p);
		if (p->i < p->n && s[p->i] == (open[d - 1] == '{' ? '}' : ']')) {
			p->i++;
			d--;
			goto after;
		}
		if (open[d - 1] == '{')
			goto key;
		goto value;
	case '"':
		if ((rc = skip_string(p, &esc)))
			return rc;
		goto after;
	case 't':
		if ((rc = literal(p, "true", 4)))
			return rc;
		goto after;
	case 'f':
		if ((rc = literal(p, "false", 5)))
			return rc;
		goto after;
	case 'n':
		if ((rc = literal(p, "null", 4)))
			return rc;
		goto after;
	default:
		if ((rc = scan_number(p)))
			return rc;
		goto after;
	}
key:
	if (p->i >= p->n || s[p->i] != '"')
		return bad(p, "expected a string key");
	if ((rc = skip_string(p, &esc)))
		return rc;
	ws(p);
	if (p->i >= p->n || s[p->i] != ':')
		return bad(p, "expected ':'");
	p->i++;
	ws(p);
	goto value;
after:
	if (d == 0)
		return SL_OK;
	ws(p);
	if (p->i < p->n && s[p->i] == ',') {
		p->i++;
		ws(p);
		if (open[d - 1] == '{')
			goto key;
		goto value;
	}
	if (p->i < p->n && s[p->i] == (open[d - 1] == '{' ? '}' : ']')) {
		p->i++;
		d--;
		goto after;
	}
	return bad(p, open[d - 1] == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
}

static sl_err
add_value(struct fl *p, int32_t field, char type, size_t off, size_t len, bool decoded)
{
	struct pat_flat *f = p->f;
	if (!grow((void **)&f->vals, &f->cap_vals, f->nvals + 1, sizeof *f->vals)
	    || !grow((void **)&f->mem, &f->cap_mem, f->nmem + p->nstack, sizeof *f->mem))
		return nomem(p);
	if (len > UINT32_MAX || off > UINT32_MAX)
		return bad(p, "value too large");
	struct pat_fval *v = &f->vals[f->nvals++];
	v->field = field;
	v->type = type;
	v->off = (uint32_t)off;
	v->len = (uint32_t)len;
	v->decoded = decoded;
	v->mem_off = (uint32_t)f->nmem;
	v->mem_len = (uint32_t)p->nstack;
	if (p->nstack)
		memcpy(f->mem + f->nmem, f->stack, p->nstack * sizeof *f->mem);
	f->nmem += p->nstack;
	v->num_ok = false;
	if (type == PAT_T_NUMBER) {
		char key[9];
		v->num_ok = pat_number_key(p->s + off, len, key, &v->num);
	}
	return SL_OK;
}

static sl_err parse_object(struct fl *p, size_t plen, uint64_t h);

/* A value at a path the machine knows about (info from the lookup). */
static sl_err
parse_value(struct fl *p, size_t plen, uint64_t h, const struct pat_path_info *info)
{
	if (p->i >= p->n)
		return bad(p, "unexpected end of input");
	char c = p->s[p->i];
	sl_err rc;
	if (c == '{')
		return info->prefix ? parse_object(p, plen, h) : skip_value(p);
	if (c == '[') {
		if (++p->depth > PAT_MAX_DEPTH)
			return bad(p, "nesting too deep");
		uint32_t id = p->next_array++;
		p->i++;
		ws(p);
		if (p->i < p->n && p->s[p->i] == ']') {
			p->i++;
			p->depth--;
			return SL_OK;
		}
		for (uint32_t k = 0;; k++) {
			if (p->i >= p->n)
				return bad(p, "unexpected end of input");
			char e = p->s[p->i];
			if ((e == '{' && info->prefix) || e == '[') {
				/* values inside this element must come from the same element */
				if (!grow((void **)&p->f->stack, &p->f->cap_stack, p->nstack + 1,
				          sizeof *p->f->stack))
					return nomem(p);
				p->f->stack[p->nstack].array = id;
				p->f->stack[p->nstack++].index = k;
				if (e == '{')
					p->f->has_obj_arrays = true;
				rc = parse_value(p, plen, h, info);
				p->nstack--;
			} else {
				rc = parse_value(p, plen, h, info);
			}
			if (rc)
				return rc;
			ws(p);
			if (p->i < p->n && p->s[p->i] == ',') {
				p->i++;
				ws(p);
				continue;
			}
			if (p->i < p->n && p->s[p->i] == ']') {
				p->i++;
				p->depth--;
				return SL_OK;
			}
			return bad(p, "expected ',' or ']'");
		}
	}
	if (info->field < 0)
		return skip_value(p);
	size_t start = p->i;
	switch (c) {
	case '"': {
		bool esc;
		size_t save = p->i;
		if ((rc = skip_string(p, &esc)))
			return rc;
		const unsigned char *s = (const unsigned char *)p->s;
		bool plain = !esc;
		for (size_t i = start + 1; plain && i < p->i - 1; i++)
			if (s[i] >= 0x80)
				plain = false;
		if (plain)
			return add_value(p, info->field, PAT_T_STRING, start + 1, p->i - start - 2,
			                 false);
		p->i = save;
		size_t off = p->f->ndec;
		if ((rc = decode_string(p, &p->f->dec, &p->f->ndec, &p->f->cap_dec)))
			return rc;
		return add_value(p, info->field, PAT_T_STRING, off, p->f->ndec - off, true);
	}
	case 't':
		if ((rc = literal(p, "true", 4)))
			return rc;
		return add_value(p, info->field, PAT_T_TRUE, start, 0, false);
	case 'f':
		if ((rc = literal(p, "false", 5)))
			return rc;
		return add_value(p, info->field, PAT_T_FALSE, start, 0, false);
	case 'n':
		if ((rc = literal(p, "null", 4)))
			return rc;
		return add_value(p, info->field, PAT_T_NULL, start, 0, false);
	default:
		if ((rc = scan_number(p)))
			return rc;
		return add_value(p, info->field, PAT_T_NUMBER, start, p->i - start, false);
	}
}

/* Reads the key at p->i into f->path after plen (and a dot), hashing as it goes. */
static sl_err
read_key(struct fl *p, size_t plen, uint64_t h, size_t *klen, uint64_t *kh)
{
	struct pat_flat *f = p->f;
	const char *s = p->s;
	size_t k = plen, i = p->i + 1;
	if (!grow((void **)&f->path, &f->cap_path, plen + 64, 1))
		return nomem(p);
	if (plen) {
		f->path[k++] = '.';
		h = (h ^ '.') * PAT_FNV_PRIME;
	}
	/* plain ASCII keys, the usual case, are copied and hashed in one pass */
	for (; i < p->n && k < f->cap_path; i++, k++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"') {
			p->i = i + 1;
			*klen = k;
			*kh = h;
			return SL_OK;
		}
		if (c == '\\' || c < 0x20 || c >= 0x80)
			break;
		f->path[k] = (char)c;
		h = (h ^ c) * PAT_FNV_PRIME;
	}
	k = plen + (plen ? 1 : 0);
	size_t cap = f->cap_path;
	sl_err rc = decode_string(p, &f->path, &k, &cap);
	f->cap_path = cap;
	if (rc)
		return rc;
	*klen = k;
	*kh = PAT_FNV_BASIS;
	for (size_t x = 0; x < k; x++)
		*kh = (*kh ^ (unsigned char)f->path[x]) * PAT_FNV_PRIME;
	return SL_OK;
}

static sl_err
parse_object(struct fl *p, size_t plen, uint64_t h)
{
	if (++p->depth > PAT_MAX_DEPTH)
		return bad(p, "nesting too deep");
	p->i++;
	ws(p);
	if (p->i < p->n && p->s[p->i] == '}') {
		p->i++;
		p->depth--;
		return SL_OK;
	}
	for (;;) {
		if (p->i >= p->n || p->s[p->i] != '"')
			return bad(p, "expected a string key");
		size_t klen = 0;
		uint64_t kh = 0;
		sl_err rc = read_key(p, plen, h, &klen, &kh);
		if (rc)
			return rc;
		struct pat_path_info info;
		if (!p->lookup(p->ctx, p->f->path, klen, kh, &info)) {
			info.field = -1;
			info.prefix = false;
		}
		ws(p);
		if (p->i >= p->n || p->s[p->i] != ':')
			return bad(p, "expected ':'");
		p->i++;
		ws(p);
		if (info.field < 0 && !info.prefix)
			rc = skip_value(p);
		else
			rc = parse_value(p, klen, kh, &info);
		if (rc)
			return rc;
		ws(p);
		if (p->i < p->n && p->s[p->i] == ',') {
			p->i++;
			ws(p);
			continue;
		}
		if (p->i < p->n && p->s[p->i] == '}') {
			p->i++;
			p->depth--;
			return SL_OK;
		}
		return bad(p, "expected ',' or '}'");
	}
}

/* Drops trailing whitespace; false unless the text then ends with one of closers. */
static bool
trim_to_closer(const char *s, size_t *len, const char *closers)
{
	size_t n = *len;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t'))
		n--;
	if (!n || !strchr(closers, s[n - 1]))
		return false;
	*len = n;
	return true;
}

void
pat_flat_free(struct pat_flat *f)
{
	sl_free(f->vals);
	sl_free(f->mem);
	sl_free(f->dec);
	sl_free(f->path);
	sl_free(f->stack);
	memset(f, 0, sizeof *f);
}

sl_err
pat_flatten(struct pat_flat *f, const char *ev, size_t len, pat_path_lookup_fn lookup, void *ctx,
            struct sl_error *err)
{
	f->nvals = f->nmem = f->ndec = 0;
	f->has_obj_arrays = false;
	if (!trim_to_closer(ev, &len, "}"))
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "event is not valid JSON: expected an object ending with '}' at "
		        "byte %zu",
		        len);
	struct fl p = { .s = ev, .n = len, .f = f, .lookup = lookup, .ctx = ctx, .err = err };
	ws(&p);
	if (p.s[p.i] != '{')
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "event is not valid JSON: expected an object at byte %zu", p.i);
	sl_err rc = parse_object(&p, 0, PAT_FNV_BASIS);
	if (rc)
		return rc;
	if (p.i != p.n)
		return bad(&p, "unexpected data after the event object");
	return SL_OK;
}

sl_err
pat_json_check(const char *s, size_t len, struct sl_error *err)
{
	if (!trim_to_closer(s, &len, "}]"))
		return sl_error_set(err, SL_ERR_INVALID_ARG, "not a JSON object or array");
	struct fl p = { .s = s, .n = len, .err = err };
	ws(&p);
	sl_err rc = skip_value(&p);
	if (rc)
		return rc;
	if (p.i != p.n)
		return bad(&p, "unexpected data after the value");
	return SL_OK;
}
