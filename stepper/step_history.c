/*
 * step_history.c - history events in GetExecutionHistory's shape: id, previousEventId,
 * timestamp, type and a `<type>EventDetails` member whose payloads are JSON text.
 *
 * Events are the engine's hottest writes (a 10-state chain writes 22 per execution): their
 * stored text (a tag byte + compact JSON) is written directly into a buffer, payloads
 * included, never built as a jansson tree and dumped. The stored text parses to the same
 * document the tree would have dumped, member order included.
 */
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "stepper/step_int.h"

/* ---- the buffer ------------------------------------------------------------------------- */

void
step_buf_init(struct step_buf *b)
{
	b->p = b->stack;
	b->len = 0;
	b->cap = sizeof b->stack;
	b->oom = false;
}

void
step_buf_free(struct step_buf *b)
{
	if (b->p != b->stack)
		sl_free(b->p);
	step_buf_init(b);
}

static __attribute__((noinline)) bool
grow(struct step_buf *b, size_t need)
{
	if (b->oom)
		return false;
	size_t ncap = b->cap * 2;
	if (ncap < b->len + need)
		ncap = b->len + need + 256;
	char *n = b->p == b->stack ? sl_malloc(ncap) : sl_realloc(b->p, ncap);
	if (!n) {
		b->oom = true;
		return false;
	}
	if (b->p == b->stack)
		memcpy(n, b->stack, b->len);
	b->p = n;
	b->cap = ncap;
	return true;
}

void
step_buf_add(struct step_buf *b, const void *s, size_t n)
{
	if (b->len + n > b->cap && !grow(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static inline void
add_c(struct step_buf *b, char ch)
{
	if (b->len + 1 > b->cap && !grow(b, 1))
		return;
	b->p[b->len++] = ch;
}

void
step_buf_u64(struct step_buf *b, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof tmp;
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	step_buf_add(b, tmp + i, sizeof tmp - i);
}

void
step_buf_i64(struct step_buf *b, int64_t v)
{
	if (v < 0) {
		add_c(b, '-');
		step_buf_u64(b, (uint64_t)0 - (uint64_t)v);
	} else {
		step_buf_u64(b, (uint64_t)v);
	}
}

/* Length of the prefix of s that needs no escaping: eight bytes at a time (a block with a
 * control character, quote or backslash is then scanned byte by byte). */
static size_t
clean_prefix(const char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
		// a byte below 0x20, or equal to '"' or '\\' (Mycroft's zero-byte test)
		if (((w - ones * 0x20) & ~w & highs) | ((q - ones) & ~q & highs)
		    | ((bs - ones) & ~bs & highs))
			break;
	}
	for (; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == '"' || ch == '\\')
			break;
	}
	return i;
}

/* Escapes as jansson's compact dump does (no JSON_ENSURE_ASCII, no JSON_ESCAPE_SLASH):
 * quote, backslash and control characters; UTF-8 passes through. */
void
step_buf_jstr(struct step_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t clean = clean_prefix(s, n);
	if (clean == n) { // the usual case: nothing to escape, one copy
		if (b->len + n + 2 > b->cap && !grow(b, n + 2))
			return;
		b->p[b->len] = '"';
		memcpy(b->p + b->len + 1, s, n);
		b->p[b->len + 1 + n] = '"';
		b->len += n + 2;
		return;
	}
	add_c(b, '"');
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		step_buf_add(b, s + run, i - run);
		run = i + 1;
		char esc[6] = { '\\', 0, 0, 0, 0, 0 };
		size_t en = 2;
		switch (ch) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			en = 6;
		}
		step_buf_add(b, esc, en);
	}
	step_buf_add(b, s + run, n - run);
	add_c(b, '"');
}

#define STEP_DUMP_MAX_DEPTH 4096

static bool
dump(struct step_buf *b, json_t *v, unsigned depth)
{
	if (depth > STEP_DUMP_MAX_DEPTH)
		return false; // jansson refuses cycles; this refuses them (and absurd depth) too
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		add_c(b, '{');
		bool first = true;
		for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
			if (!first)
				add_c(b, ',');
			first = false;
			step_buf_jstr(b, json_object_iter_key(it), json_object_iter_key_len(it));
			add_c(b, ':');
			if (!dump(b, json_object_iter_value(it), depth + 1))
				return false;
		}
		add_c(b, '}');
		break;
	}
	case JSON_ARRAY: {
		add_c(b, '[');
		size_t n = json_array_size(v);
		for (size_t i = 0; i < n; i++) {
			if (i)
				add_c(b, ',');
			if (!dump(b, json_array_get(v, i), depth + 1))
				return false;
		}
		add_c(b, ']');
		break;
	}
	case JSON_STRING: step_buf_jstr(b, json_string_value(v), json_string_length(v)); break;
	case JSON_INTEGER: step_buf_i64(b, json_integer_value(v)); break;
	case JSON_REAL: {
		// rare: jansson's own formatting (precision, ".0"), so sizes and text agree
		char tmp[64];
		size_t n = json_dumpb(v, tmp, sizeof tmp, JSON_COMPACT | JSON_ENCODE_ANY);
		if (n == 0 || n > sizeof tmp)
			return false;
		step_buf_add(b, tmp, n);
		break;
	}
	case JSON_TRUE: step_buf_add(b, "true", 4); break;
	case JSON_FALSE: step_buf_add(b, "false", 5); break;
	case JSON_NULL: step_buf_add(b, "null", 4); break;
	}
	return true;
}

bool
step_buf_json(struct step_buf *b, json_t *v)
{
	return v && dump(b, v, 0) && !b->oom;
}

/* ---- payloads ----------------------------------------------------------------------------- */

char *
step_dumps(json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

void
step_memo_clear(struct step_ctx *c)
{
	json_decref(c->memo_v);
	sl_free(c->memo_s);
	c->memo_v = NULL;
	c->memo_s = NULL;
	c->memo_n = 0;
}

sl_err
step_payload_text(struct step_ctx *c, json_t *v, const char **s, size_t *n)
{
	if (!v)
		v = json_null();
	if (c->memo_v != v || !c->memo_s) {
		struct step_buf b;
		step_buf_init(&b);
		if (!step_buf_json(&b, v)) {
			step_buf_free(&b);
			return SL_ERR_NOMEM;
		}
		char *t = b.p == b.stack ? sl_malloc(b.len ? b.len : 1) : b.p;
		if (!t) {
			step_buf_free(&b);
			return SL_ERR_NOMEM;
		}
		if (b.p == b.stack)
			memcpy(t, b.p, b.len);
		step_memo_clear(c);
		c->memo_v = json_incref(v);
		c->memo_s = t;
		c->memo_n = b.len;
	}
	*s = c->memo_s;
	*n = c->memo_n;
	return SL_OK;
}

/* Payloads are stored as documents and turned into the JSON text AWS shows when the
 * history is read (step_history_page): the hot path escapes each payload once, not twice. */
json_t *
step_payload_details(const char *key, json_t *v)
{
	char dkey[64];
	size_t kl = strlen(key);
	if (kl + sizeof "Details" > sizeof dkey)
		return NULL;
	memcpy(dkey, key, kl);
	memcpy(dkey + kl, "Details", sizeof "Details");
	return json_pack("{s:O, s:{s:b}}", key, v ? v : json_null(), dkey, "truncated", 0);
}

void
step_event_to_aws(json_t *ev)
{
	static const char *const payload_keys[] = { "input", "output", "parameters" };
	const char *k;
	json_t *d;
	json_object_foreach(ev, k, d)
	{
		if (!json_is_object(d))
			continue;
		for (size_t i = 0; i < sizeof payload_keys / sizeof payload_keys[0]; i++) {
			json_t *p = json_object_get(d, payload_keys[i]);
			if (!p)
				continue;
			char *s = step_dumps(p);
			if (s)
				json_object_set_new(d, payload_keys[i], json_string(s));
			sl_free(s);
		}
	}
}

/* ---- events ------------------------------------------------------------------------------- */

static void
set_int(json_t *o, const char *key, int64_t v)
{
	json_t *x = json_object_get(o, key);
	if (json_is_integer(x))
		json_integer_set(x, v); // no allocation, no rehash: this runs twice per event
	else
		json_object_set_new(o, key, json_integer(v));
}

static void
add_lit(struct step_buf *b, const char *s)
{
	step_buf_add(b, s, strlen(s));
}

/* Writes the envelope up to the details' value; *id: the new event's id. */
static sl_err
event_begin(struct step_ctx *c, struct step_frame *f, const char *type, const char *detail_key,
            struct step_buf *b, int64_t *id)
{
	*id = step_jint(c->exec, "nextEvent", 1);
	size_t limit = c->eng->opt.history_limit;
	// The last slot is kept for the failure that the limit itself causes.
	if ((size_t)*id > limit && strcmp(type, "ExecutionFailed") != 0)
		return SL_ERR_LIMIT;
	uint64_t prev = f ? f->prev : (uint64_t)step_jint(c->exec, "lastEvent", 0);
	// events of one millisecond share the formatted time
	step_engine_t *eng = c->eng;
	int64_t now = sl_clock_now_ms();
	if (now != eng->ts_ms || !eng->ts[0]) {
		sl_clock_format_rfc3339(now, eng->ts);
		eng->ts_ms = now;
	}
	const char *ts = eng->ts;
	step_buf_init(b);
	add_lit(b, "E{\"id\":");
	step_buf_i64(b, *id);
	add_lit(b, ",\"previousEventId\":");
	step_buf_u64(b, prev);
	add_lit(b, ",\"timestamp\":");
	step_buf_jstr(b, ts, strlen(ts));
	add_lit(b, ",\"type\":");
	step_buf_jstr(b, type, strlen(type));
	if (detail_key) {
		add_c(b, ',');
		step_buf_jstr(b, detail_key, strlen(detail_key));
		add_c(b, ':');
	}
	return SL_OK;
}

static sl_err
event_end(struct step_ctx *c, struct step_frame *f, struct step_buf *b, int64_t id)
{
	add_c(b, '}');
	sl_err e = SL_ERR_NOMEM;
	if (!b->oom) {
		struct store_key k;
		store_key_init(&k);
		store_key_str(&k, c->arn);
		store_key_u64(&k, (uint64_t)id);
		e = store_put(c->txn, STORE_DB_HISTORY, k.buf, k.len, b->p, b->len);
	}
	step_buf_free(b);
	if (e != SL_OK)
		return e;
	set_int(c->exec, "nextEvent", id + 1);
	set_int(c->exec, "lastEvent", id);
	c->exec_dirty = true;
	if (f)
		f->prev = (uint64_t)id;
	return SL_OK;
}

sl_err
step_event(struct step_ctx *c, struct step_frame *f, const char *type, const char *detail_key,
           json_t *details)
{
	// EXPRESS executions keep no history (AWS shows it only in CloudWatch Logs)
	if (c->eng->opt.no_history) {
		json_decref(details);
		return SL_OK;
	}
	struct step_buf b;
	int64_t id;
	sl_err e = event_begin(c, f, type, detail_key, &b, &id);
	if (e != SL_OK) {
		json_decref(details);
		return e;
	}
	if (detail_key) {
		if (!details)
			add_lit(&b, "{}");
		else if (!step_buf_json(&b, details))
			b.oom = true;
	}
	json_decref(details);
	return event_end(c, f, &b, id);
}

sl_err
step_event_payload(struct step_ctx *c, struct step_frame *f, const char *type,
                   const char *detail_key, const char *pkey, json_t *payload, const char *xkey,
                   const char *xval)
{
	if (c->eng->opt.no_history) // EXPRESS: see step_event
		return SL_OK;
	const char *s;
	size_t n;
	sl_err e = step_payload_text(c, payload, &s, &n);
	if (e != SL_OK)
		return e;
	struct step_buf b;
	int64_t id;
	if ((e = event_begin(c, f, type, detail_key, &b, &id)) != SL_OK)
		return e;
	// {"<pkey>":<payload>,"<pkey>Details":{"truncated":false}[,"<xkey>":"<xval>"]}
	size_t pl = strlen(pkey);
	add_lit(&b, "{\"");
	step_buf_add(&b, pkey, pl);
	add_lit(&b, "\":");
	step_buf_add(&b, s, n);
	add_lit(&b, ",\"");
	step_buf_add(&b, pkey, pl);
	add_lit(&b, "Details\":{\"truncated\":false}");
	if (xkey) {
		add_c(&b, ',');
		step_buf_jstr(&b, xkey, strlen(xkey));
		add_c(&b, ':');
		step_buf_jstr(&b, xval, strlen(xval));
	}
	add_c(&b, '}');
	return event_end(c, f, &b, id);
}
