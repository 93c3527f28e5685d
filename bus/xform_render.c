/*
 * xform_render.c - renders what a target receives for one event.
 *
 * How a value is written depends on where its placeholder stands (AWS-recorded behaviour,
 * see docs/TRANSFORMS.md):
 *   bare in a JSON template     its JSON text, compacted ("x", 42, {"a":1}); missing -> ""
 *   inside a "string"           a string's contents as escaped in the event; numbers,
 *                               booleans and null as their text; an object or array is
 *                               written without its quotes ({a:1}) in a string template and
 *                               refused in a JSON template (AWS drops such an event)
 *   outside quotes, string tpl  the same, unescaped (plain text)
 */
#include "bus/xform_internal.h"

#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"

struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

static void
sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom || n == 0)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *np = sl_realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void
sb_putc(struct sbuf *b, char c)
{
	sb_put(b, &c, 1);
}

/* ---- reading the event ---- */

static size_t
utf8_put(unsigned cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

static unsigned
hex4(const char *p)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

/* Decodes one character of validated string contents at *pp into o (up to 4 bytes). */
static size_t
decode_one(const char **pp, const char *e, char *o)
{
	const char *p = *pp;
	if (*p != '\\') {
		*o = *p;
		*pp = p + 1;
		return 1;
	}
	char c = p[1];
	*pp = p + 2;
	switch (c) {
	case 'b': *o = '\b'; return 1;
	case 'f': *o = '\f'; return 1;
	case 'n': *o = '\n'; return 1;
	case 'r': *o = '\r'; return 1;
	case 't': *o = '\t'; return 1;
	case 'u': break;
	default: *o = c; return 1;
	}
	unsigned cp = hex4(p + 2);
	*pp = p + 6;
	if (cp >= 0xD800 && cp <= 0xDBFF && e - *pp >= 6 && (*pp)[0] == '\\' && (*pp)[1] == 'u') {
		unsigned lo = hex4(*pp + 2);
		if (lo >= 0xDC00 && lo <= 0xDFFF) {
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			*pp += 6;
		}
	}
	if (cp >= 0xD800 && cp <= 0xDFFF)
		cp = 0xFFFD; /* a lone surrogate has no UTF-8 form */
	return utf8_put(cp, o);
}

/* Does the string contents [s, e) (escapes as written) equal key? */
static bool
key_eq(const char *s, const char *e, const char *key, size_t klen)
{
	if (!memchr(s, '\\', (size_t)(e - s)))
		return (size_t)(e - s) == klen && memcmp(s, key, klen) == 0;
	size_t i = 0;
	while (s < e) {
		char o[4];
		size_t n = decode_one(&s, e, o);
		if (i + n > klen || memcmp(key + i, o, n) != 0)
			return false;
		i += n;
	}
	return i == klen;
}

/* Value of member `key` of the object at p (last one wins, as in a parsed tree). */
static bool
obj_find(const char *p, const char *e, const char *key, size_t klen, const char **vp)
{
	bool found = false;
	p = xform_json_ws(p + 1, e);
	while (p < e && *p == '"') {
		const char *kend = xform_json_string_end(p, e);
		bool match = key_eq(p + 1, kend - 1, key, klen);
		p = xform_json_ws(kend, e);
		p = xform_json_ws(p + 1, e); /* ':' */
		if (match) {
			*vp = p;
			found = true;
		}
		p = xform_json_ws(xform_json_skip(p, e), e);
		if (p < e && *p == ',')
			p = xform_json_ws(p + 1, e);
		else
			break;
	}
	return found;
}

static bool
arr_find(const char *p, const char *e, size_t index, const char **vp)
{
	p = xform_json_ws(p + 1, e);
	if (p < e && *p == ']')
		return false;
	for (size_t i = 0; p < e; i++) {
		if (i == index) {
			*vp = p;
			return true;
		}
		p = xform_json_ws(xform_json_skip(p, e), e);
		if (p < e && *p == ',')
			p = xform_json_ws(p + 1, e);
		else
			break;
	}
	return false;
}

static void
emit_compact(struct sbuf *b, const char *p, const char *e)
{
	while (p < e) {
		if (*p == '"') {
			const char *s = xform_json_string_end(p, e);
			sb_put(b, p, (size_t)(s - p));
			p = s;
			continue;
		}
		const char *s = p;
		while (p < e && *p != '"' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			p++;
		sb_put(b, s, (size_t)(p - s));
		p = xform_json_ws(p, e);
	}
}

/* Writes string contents (escapes as written), decoded to plain text when `decode`. */
static void
emit_contents(struct sbuf *b, const char *s, const char *e, bool decode)
{
	if (!decode) {
		sb_put(b, s, (size_t)(e - s));
		return;
	}
	while (s < e) {
		const char *run = s;
		while (s < e && *s != '\\')
			s++;
		sb_put(b, run, (size_t)(s - run));
		if (s < e) {
			char o[4];
			size_t n = decode_one(&s, e, o);
			sb_put(b, o, n);
		}
	}
}

/* An object or array written without the quotes of its strings: {a:1,b:[x,y]}. */
static void
emit_unquoted(struct sbuf *b, const char *p, const char *e, bool decode)
{
	while (p < e) {
		if (*p == '"') {
			const char *s = xform_json_string_end(p, e);
			emit_contents(b, p + 1, s - 1, decode);
			p = s;
			continue;
		}
		const char *s = p;
		while (p < e && *p != '"' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			p++;
		sb_put(b, s, (size_t)(p - s));
		p = xform_json_ws(p, e);
	}
}

/* Appends every match of segs under the value at p, comma-separated. */
static void
collect(struct sbuf *b, const struct xform_seg *segs, size_t nsegs, const char *p, const char *e,
        bool *first)
{
	if (nsegs == 0) {
		if (!*first)
			sb_putc(b, ',');
		*first = false;
		emit_compact(b, p, xform_json_skip(p, e));
		return;
	}
	const char *v;
	switch (segs->kind) {
	case XFORM_SEG_KEY:
		if (*p == '{' && obj_find(p, e, segs->key, segs->key_len, &v))
			collect(b, segs + 1, nsegs - 1, v, e, first);
		return;
	case XFORM_SEG_INDEX:
		if (*p == '[' && arr_find(p, e, segs->index, &v))
			collect(b, segs + 1, nsegs - 1, v, e, first);
		return;
	case XFORM_SEG_ANY:
		if (*p != '{' && *p != '[')
			return;
		bool obj = *p == '{';
		p = xform_json_ws(p + 1, e);
		while (p < e && *p != '}' && *p != ']') {
			if (obj) {
				p = xform_json_ws(xform_json_string_end(p, e), e);
				p = xform_json_ws(p + 1, e);
			}
			collect(b, segs + 1, nsegs - 1, p, e, first);
			p = xform_json_ws(xform_json_skip(p, e), e);
			if (p < e && *p == ',')
				p = xform_json_ws(p + 1, e);
		}
		return;
	}
}

/* A placeholder's value: a span of JSON text, or plain text (the reserved strings). */
struct val {
	const char *p, *e;
	bool found;
	bool text;
	char *owned;
};

/* Resolves path in the event [p, e); a wildcard path yields an owned list. */
static sl_err
resolve(const struct xform_path *path, const char *p, const char *e, struct val *v)
{
	memset(v, 0, sizeof(*v));
	if (path->wildcard) {
		struct sbuf b = { 0 };
		bool first = true;
		sb_putc(&b, '[');
		collect(&b, path->segs, path->nsegs, p, e, &first);
		sb_putc(&b, ']');
		if (b.oom) {
			sl_free(b.p);
			return SL_ERR_NOMEM;
		}
		v->owned = b.p;
		v->p = b.p;
		v->e = b.p + b.n;
		v->found = true;
		return SL_OK;
	}
	for (size_t i = 0; i < path->nsegs; i++) {
		const struct xform_seg *s = &path->segs[i];
		const char *n;
		if (s->kind == XFORM_SEG_KEY) {
			if (*p != '{' || !obj_find(p, e, s->key, s->key_len, &n))
				return SL_OK;
		} else {
			if (*p != '[' || !arr_find(p, e, s->index, &n))
				return SL_OK;
		}
		p = n;
	}
	v->p = p;
	v->e = xform_json_skip(p, e);
	v->found = true;
	return SL_OK;
}

/* aws.events.event: the envelope without detail, detail-type spelled detailType, members in
 * the order AWS delivers them, then any others in event order. */
static void
build_event_object(struct sbuf *b, const char *p, const char *e)
{
	static const char *const order[] = { "id",     "account", "detail-type", "time",
		                             "source", "region",  "resources",   "version" };
	enum { NORDER = sizeof order / sizeof order[0] };
	const char *at[NORDER] = { 0 };
	bool first = true;
	sb_putc(b, '{');
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			for (int i = 0; i < NORDER; i++) {
				if (!at[i])
					continue;
				if (!first)
					sb_putc(b, ',');
				first = false;
				const char *name = i == 2 ? "detailType" : order[i];
				sb_putc(b, '"');
				sb_put(b, name, strlen(name));
				sb_put(b, "\":", 2);
				emit_compact(b, at[i], xform_json_skip(at[i], e));
			}
		}
		const char *q = xform_json_ws(p + 1, e);
		while (q < e && *q == '"') {
			const char *kend = xform_json_string_end(q, e);
			const char *k = q + 1;
			size_t kl = (size_t)(kend - 1 - k);
			const char *v = xform_json_ws(xform_json_ws(kend, e) + 1, e);
			int known = -1;
			for (int i = 0; i < NORDER; i++)
				if (strlen(order[i]) == kl && memcmp(order[i], k, kl) == 0)
					known = i;
			bool detail = kl == 6 && memcmp(k, "detail", 6) == 0;
			if (pass == 0 && known >= 0)
				at[known] = v;
			if (pass == 1 && known < 0 && !detail) {
				if (!first)
					sb_putc(b, ',');
				first = false;
				sb_put(b, q, (size_t)(kend - q));
				sb_putc(b, ':');
				emit_compact(b, v, xform_json_skip(v, e));
			}
			q = xform_json_ws(xform_json_skip(v, e), e);
			if (q < e && *q == ',')
				q = xform_json_ws(q + 1, e);
			else
				break;
		}
	}
	sb_putc(b, '}');
}

static void
emit_text_escaped(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '"': sb_put(b, "\\\"", 2); break;
		case '\\': sb_put(b, "\\\\", 2); break;
		case '\n': sb_put(b, "\\n", 2); break;
		case '\r': sb_put(b, "\\r", 2); break;
		case '\t': sb_put(b, "\\t", 2); break;
		case '\b': sb_put(b, "\\b", 2); break;
		case '\f': sb_put(b, "\\f", 2); break;
		default:
			if (c < 0x20) {
				static const char hex[] = "0123456789abcdef";
				char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
				sb_put(b, u, 6);
			} else {
				sb_putc(b, (char)c);
			}
		}
	}
}

/* Writes one value at one position; SL_ERR_INVALID_ARG when it cannot stand there. */
static sl_err
emit_value(struct sbuf *b, const struct val *v, enum xform_pos pos, bool json_template)
{
	if (!v->found) {
		if (pos == XFORM_POS_VALUE)
			sb_put(b, "\"\"", 2);
		return SL_OK;
	}
	if (v->text) {
		if (pos == XFORM_POS_VALUE)
			sb_putc(b, '"');
		if (pos == XFORM_POS_TEXT)
			sb_put(b, v->p, strlen(v->p));
		else
			emit_text_escaped(b, v->p);
		if (pos == XFORM_POS_VALUE)
			sb_putc(b, '"');
		return SL_OK;
	}
	if (pos == XFORM_POS_VALUE) {
		emit_compact(b, v->p, v->e);
		return SL_OK;
	}
	bool decode = pos == XFORM_POS_TEXT;
	switch (*v->p) {
	case '"': emit_contents(b, v->p + 1, v->e - 1, decode); return SL_OK;
	case '{':
	case '[':
		if (json_template)
			return SL_ERR_INVALID_ARG;
		emit_unquoted(b, v->p, v->e, decode);
		return SL_OK;
	default: sb_put(b, v->p, (size_t)(v->e - v->p)); return SL_OK;
	}
}

static sl_err
render_template(const xform_t *x, const char *ev, const char *ee, const struct xform_ctx *ctx,
                struct sbuf *b, struct sl_error *err)
{
	struct val cache[XFORM_MAX_VARIABLES];
	bool have[XFORM_MAX_VARIABLES] = { 0 };
	struct sbuf evobj = { 0 };
	char when[32] = "";
	sl_err rc = SL_OK;

	for (size_t i = 0; i < x->npieces && rc == SL_OK; i++) {
		const struct xform_piece *pc = &x->pieces[i];
		sb_put(b, x->tmpl + pc->lit_off, pc->lit_len);
		struct val v = { 0 };
		v.found = true;
		switch (pc->src) {
		case XFORM_SRC_VAR:
			if (!have[pc->var]) {
				rc = resolve(&x->vars[pc->var].path, ev, ee, &cache[pc->var]);
				if (rc != SL_OK) {
					sl_error_set(err, rc, NULL);
					break;
				}
				have[pc->var] = true;
			}
			v = cache[pc->var];
			break;
		case XFORM_SRC_RULE_ARN:
			v.text = true;
			v.p = ctx && ctx->rule_arn ? ctx->rule_arn : "";
			break;
		case XFORM_SRC_RULE_NAME:
			v.text = true;
			v.p = ctx && ctx->rule_name ? ctx->rule_name : "";
			break;
		case XFORM_SRC_INGESTION_TIME:
			if (!when[0])
				sl_clock_format_rfc3339_s(ctx ? ctx->ingestion_time_ms : 0, when);
			v.text = true;
			v.p = when;
			break;
		case XFORM_SRC_EVENT:
			if (!evobj.p)
				build_event_object(&evobj, ev, ee);
			if (evobj.oom) {
				rc = sl_error_set(err, SL_ERR_NOMEM, NULL);
				break;
			}
			v.p = evobj.p;
			v.e = evobj.p + evobj.n;
			break;
		case XFORM_SRC_EVENT_JSON:
			v.p = ev;
			v.e = xform_json_skip(ev, ee);
			break;
		}
		if (rc != SL_OK)
			break;
		if (emit_value(b, &v, pc->pos, x->json_template) != SL_OK) {
			const char *name = pc->src == XFORM_SRC_VAR ? x->vars[pc->var].name : "?";
			rc = sl_error_set(
			        err, SL_ERR_INVALID_ARG,
			        "InputTemplate placeholder <%s> stands inside a JSON string "
			        "but its value is a JSON %s; the transformed input would not "
			        "be valid JSON, so the event is not delivered to this target",
			        name, *v.p == '{' ? "object" : "array");
		}
	}
	if (rc == SL_OK)
		sb_put(b, x->tmpl + x->tail_off, x->tmpl_len - x->tail_off);
	for (size_t i = 0; i < x->nvars; i++)
		if (have[i])
			sl_free(cache[i].owned);
	sl_free(evobj.p);
	return rc;
}

sl_err
xform_render(const xform_t *x, const char *event_json, size_t len, const struct xform_ctx *ctx,
             char **out, size_t *out_len, struct sl_error *err)
{
	struct sbuf b = { 0 };
	sl_err rc = SL_OK;

	if (x->kind == XFORM_INPUT) {
		sb_put(&b, x->input, x->input_len);
		goto done;
	}
	if (!event_json)
		return sl_error_set(err, SL_ERR_PARSE, "event is missing");
	const char *ee = event_json + len;
	struct xform_jerr je = { 0, "" };
	if (!xform_json_valid(event_json, ee, &je))
		return sl_error_set(err, SL_ERR_PARSE,
		                    "event is not valid JSON: expected %s at byte %zu", je.what,
		                    je.offset);
	const char *ev = xform_json_ws(event_json, ee);
	if (*ev != '{')
		return sl_error_set(err, SL_ERR_PARSE, "event is not a JSON object");

	switch (x->kind) {
	case XFORM_EVENT: sb_put(&b, event_json, len); break;
	case XFORM_INPUT_PATH: {
		struct val v;
		rc = resolve(&x->path, ev, ee, &v);
		if (rc != SL_OK) {
			sl_error_set(err, rc, NULL);
			break;
		}
		if (!v.found) {
			rc = sl_error_set(err, SL_ERR_NOT_FOUND,
			                  "InputPath %s matches nothing in the event",
			                  x->path.text);
			break;
		}
		emit_compact(&b, v.p, v.e);
		sl_free(v.owned);
		break;
	}
	case XFORM_TRANSFORMER: rc = render_template(x, ev, ee, ctx, &b, err); break;
	case XFORM_INPUT: break;
	}
done:
	if (rc == SL_OK && b.oom)
		rc = sl_error_set(err, SL_ERR_NOMEM, NULL);
	if (rc == SL_OK && !b.p) { /* an empty rendering still gets its own buffer */
		b.p = sl_strdup("");
		if (!b.p)
			rc = sl_error_set(err, SL_ERR_NOMEM, NULL);
	}
	if (rc != SL_OK) {
		sl_free(b.p);
		return rc;
	}
	*out = b.p;
	*out_len = b.n;
	return SL_OK;
}
