/*
 * step_exec.c - execution and frame records: keys, JSON encoding, load and save.
 */
#include <string.h>

#include "common/sl_alloc.h"
#include "stepper/step_int.h"
#include "stepper/step_maprun.h"

void
step_key_exec(struct store_key *k, const char *arn)
{
	store_key_init(k);
	store_key_str(k, arn);
}

bool
step_index_arn(const struct store_val *k, size_t plen, char out[STEP_ARN_MAX])
{
	if (k->len < plen + 9 || k->len - plen - 8 >= STEP_ARN_MAX)
		return false;
	size_t alen = k->len - plen - 8;
	memcpy(out, (const char *)k->data + plen + 8, alen);
	out[alen] = 0;
	return true;
}

void
step_key_frame(struct store_key *k, const char *arn, uint32_t id)
{
	store_key_init(k);
	store_key_str(k, arn);
	store_key_u32(k, id);
}

void
step_key_input(struct store_key *k, const char *arn)
{
	step_key_exec(k, arn);
	store_key_raw(k, "I", 1);
}

void
step_key_eff(struct store_key *k, const char *arn, uint32_t id)
{
	step_key_frame(k, arn, id);
	store_key_raw(k, "E", 1);
}

static uint64_t
fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

json_t *
step_cache_get(step_engine_t *eng, const char *key)
{
	struct step_cache_ent *e = &eng->cache[fnv(key) % STEP_CACHE_SLOTS];
	return e->key && strcmp(e->key, key) == 0 ? e->v : NULL;
}

void
step_cache_put(step_engine_t *eng, const char *key, json_t *v)
{
	struct step_cache_ent *e = &eng->cache[fnv(key) % STEP_CACHE_SLOTS];
	char *k = sl_strdup(key);
	if (!k)
		return; // a cache: failing to fill it costs time only
	sl_free(e->key);
	json_decref(e->v);
	e->key = k;
	e->v = json_incref(v);
}

void
step_cache_clear(step_engine_t *eng)
{
	for (size_t i = 0; i < STEP_CACHE_SLOTS; i++) {
		sl_free(eng->cache[i].key);
		json_decref(eng->cache[i].v);
		eng->cache[i].key = NULL;
		eng->cache[i].v = NULL;
	}
}

json_t *
step_exec_input(struct step_ctx *c)
{
	char key[STEP_ARN_MAX + 8];
	snprintf(key, sizeof key, "I|%s", c->arn);
	json_t *v = step_cache_get(c->eng, key);
	if (v)
		return v;
	struct store_key k;
	step_key_input(&k, c->arn);
	if (step_get_json(c->txn, STORE_DB_EXECUTIONS, &k, 'I', &v) != SL_OK)
		return NULL;
	step_cache_put(c->eng, key, v);
	json_decref(v);
	return step_cache_get(c->eng, key);
}

sl_err
step_exec_put_input(struct step_ctx *c, json_t *input)
{
	struct store_key k;
	step_key_input(&k, c->arn);
	const char *s;
	size_t n;
	struct step_buf b;
	step_buf_init(&b);
	sl_err e = step_payload_text(c, input, &s, &n);
	if (e == SL_OK) {
		step_buf_add(&b, "I", 1);
		step_buf_add(&b, s, n);
		e = b.oom ? SL_ERR_NOMEM
		          : store_put(c->txn, STORE_DB_EXECUTIONS, k.buf, k.len, b.p, b.len);
	}
	step_buf_free(&b);
	char key[STEP_ARN_MAX + 8];
	snprintf(key, sizeof key, "I|%s", c->arn);
	if (e == SL_OK)
		step_cache_put(c->eng, key, input);
	return e;
}

sl_err
step_frame_in(struct step_ctx *c, struct step_frame *f)
{
	if (f->in || !f->in_aux)
		return SL_OK;
	char key[STEP_ARN_MAX + 64];
	snprintf(key, sizeof key, "N|%s|%u|%llu", c->arn, f->id, (unsigned long long)f->wk);
	json_t *v = step_cache_get(c->eng, key);
	if (v) {
		f->in = json_incref(v);
		return SL_OK;
	}
	struct store_key k;
	step_key_frame(&k, c->arn, f->id);
	store_key_raw(&k, "N", 1);
	sl_err e = step_get_json(c->txn, STORE_DB_FRAMES, &k, 'N', &f->in);
	if (e == SL_OK)
		step_cache_put(c->eng, key, f->in);
	return e;
}

sl_err
step_frame_eff(struct step_ctx *c, struct step_frame *f)
{
	if (f->eff)
		return SL_OK;
	char key[STEP_ARN_MAX + 64];
	snprintf(key, sizeof key, "E|%s|%u|%llu", c->arn, f->id, (unsigned long long)f->wk);
	json_t *v = step_cache_get(c->eng, key);
	if (v) {
		f->eff = json_incref(v);
		return SL_OK;
	}
	struct store_key k;
	step_key_eff(&k, c->arn, f->id);
	sl_err e = step_get_json(c->txn, STORE_DB_FRAMES, &k, 'E', &f->eff);
	if (e == SL_OK)
		step_cache_put(c->eng, key, f->eff);
	return e;
}

void
step_key_result(struct store_key *k, const char *arn, uint32_t id, uint32_t idx)
{
	step_key_frame(k, arn, id);
	store_key_raw(k, "R", 1);
	store_key_u32(k, idx);
}

/* Values are a tag byte then compact JSON: recovery scans tell frames from results by it. */
sl_err
step_put_json(store_txn_t *txn, enum store_db db, const struct store_key *k, char tag, json_t *v)
{
	struct step_buf b;
	step_buf_init(&b);
	step_buf_add(&b, &tag, 1);
	sl_err e = SL_ERR_NOMEM;
	if (step_buf_json(&b, v))
		e = store_put(txn, db, k->buf, k->len, b.p, b.len);
	step_buf_free(&b);
	return e;
}

sl_err
step_parse_record(const char *p, size_t n, json_t **out)
{
	json_error_t je;
	unsigned long failed = sl_alloc_failures();
	*out = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (*out && sl_alloc_failures() != failed) {
		// jansson may have dropped a character instead of failing: not to be trusted
		json_decref(*out);
		*out = NULL;
		return SL_ERR_NOMEM;
	}
	if (*out)
		return SL_OK;
	if (json_error_code(&je) == json_error_out_of_memory)
		return SL_ERR_NOMEM;
	// jansson does not always say that memory ran out: a failure that does not repeat was
	// that, not a damaged record (a damaged record must not fail a healthy execution)
	json_t *again = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	json_decref(again);
	return again ? SL_ERR_NOMEM : SL_ERR_STORE;
}

sl_err
step_get_json(store_txn_t *txn, enum store_db db, const struct store_key *k, char tag, json_t **out)
{
	struct store_val v;
	sl_err e = store_get(txn, db, k->buf, k->len, &v);
	if (e != SL_OK)
		return e;
	if (v.len < 1 || ((const char *)v.data)[0] != tag)
		return v.len == 1 && ((const char *)v.data)[0] == STEP_TOMBSTONE ? SL_ERR_NOT_FOUND
		                                                                 : SL_ERR_STORE;
	return step_parse_record((const char *)v.data + 1, v.len - 1, out);
}

int64_t
step_jint(json_t *o, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return dflt;
}

const char *
step_jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

const struct sm_machine *
step_machine_get(step_engine_t *eng, store_txn_t *txn, const char *name, uint32_t *revision)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < eng->n_machines; i++)
		if (strcmp(eng->machines[i].name, name) == 0)
			return eng->machines[i].m;
	return eng->resolve ? eng->resolve(eng->resolve_arg, txn, name, revision) : NULL;
}

static struct step_hot_ent *
hot_slot(step_engine_t *eng, const char *arn)
{
	return &eng->hot[fnv(arn) % STEP_HOT_SLOTS];
}

static void
hot_drop(struct step_hot_ent *h)
{
	sl_free(h->arn);
	json_decref(h->exec);
	sl_free(h->text);
	memset(h, 0, sizeof *h);
}

void
step_hot_clear(step_engine_t *eng)
{
	for (size_t i = 0; i < STEP_HOT_SLOTS; i++)
		hot_drop(&eng->hot[i]);
}

/* The record saved last for arn, if the stored bytes v are still its text. */
static json_t *
hot_take(step_engine_t *eng, const char *arn, const struct store_val *v, char **text)
{
	struct step_hot_ent *h = hot_slot(eng, arn);
	if (!h->arn || strcmp(h->arn, arn) != 0)
		return NULL;
	json_t *ex = NULL;
	if (h->len == v->len && memcmp(h->text, v->data, v->len) == 0) {
		ex = h->exec;
		h->exec = NULL;
		*text = h->text; // the loader keeps it: an unchanged record goes back when done
		h->text = NULL;
	}
	hot_drop(h);
	return ex;
}

sl_err
step_exec_load(struct step_ctx *c, const char *arn)
{
	struct store_key k;
	step_key_exec(&k, arn);
	json_t *ex = NULL;
	struct store_val raw;
	char *text = NULL;
	sl_err e = store_get(c->txn, STORE_DB_EXECUTIONS, k.buf, k.len, &raw);
	if (e == SL_OK && !(ex = hot_take(c->eng, arn, &raw, &text))) {
		if (raw.len == 1 && ((const char *)raw.data)[0] == STEP_TOMBSTONE)
			e = SL_ERR_NOT_FOUND; // being deleted by the retention
		else if (raw.len < 1 || ((const char *)raw.data)[0] != 'X')
			e = SL_ERR_STORE;
		else
			e = step_parse_record((const char *)raw.data + 1, raw.len - 1, &ex);
		// the text read is what the record is until it changes (a copy failing costs
		// only a parse next time)
		if (e == SL_OK && raw.len <= STEP_HOT_MAX_TEXT && (text = sl_malloc(raw.len)))
			memcpy(text, raw.data, raw.len);
	}
	if (e == SL_OK) {
		sl_free(c->saved);
		c->saved = text;
		c->saved_len = raw.len;
		c->saved_loaded = true;
	} else {
		sl_free(text);
	}
	if (e == SL_ERR_NOT_FOUND)
		return sl_error_set(c->err, SL_ERR_EXEC_NOT_FOUND, "Execution Does Not Exist: '%s'",
		                    arn);
	if (e != SL_OK)
		return sl_error_set(c->err, e, "execution record of '%s' is unreadable", arn);
	c->exec = ex;
	c->arn = step_jstr(ex, "executionArn");
	json_int_t rv = json_integer_value(json_object_get(ex, "revision"));
	uint32_t revision = rv > 0 && rv <= UINT32_MAX ? (uint32_t)rv : 0;
	// an execution recorded without a revision runs whatever is current
	c->top = step_machine_get(c->eng, c->txn, step_jstr(ex, "machine"), &revision);
	// a map run's child runs the ItemProcessor of a Map in its parent's machine
	if (c->top && json_object_get(ex, "sub"))
		c->top = step_maprun_walk(c->top, json_object_get(ex, "sub"));
	if (!c->arn)
		return sl_error_set(c->err, SL_ERR_STORE, "execution record of '%s' has no ARN",
		                    arn);
	return SL_OK;
}

sl_err
step_exec_save(struct step_ctx *c)
{
	if (!c->exec || !c->exec_dirty)
		return SL_OK;
	struct store_key k;
	step_key_exec(&k, c->arn);
	struct step_buf b;
	step_buf_init(&b);
	step_buf_add(&b, "X", 1);
	sl_err e = SL_ERR_NOMEM;
	if (step_buf_json(&b, c->exec))
		e = store_put(c->txn, STORE_DB_EXECUTIONS, k.buf, k.len, b.p, b.len);
	if (e == SL_OK) {
		c->exec_dirty = false;
		// kept for the next load of this execution (a missing copy only costs a parse)
		sl_free(c->saved);
		c->saved_len = b.len;
		c->saved_loaded = false;
		c->saved = b.p == b.stack ? sl_malloc(b.len) : b.p;
		if (c->saved && b.p == b.stack)
			memcpy(c->saved, b.p, b.len);
		if (b.p != b.stack)
			step_buf_init(&b); // the heap buffer is c->saved now
	}
	step_buf_free(&b);
	return e;
}

void
step_ctx_done(struct step_ctx *c)
{
	// a record only read is kept if it is still its text: code may have changed it in
	// place without marking it dirty when it then gave up (one dump, off the hot path)
	if (c->exec && c->saved && !c->exec_dirty && c->arn && c->saved_loaded) {
		struct step_buf b;
		step_buf_init(&b);
		step_buf_add(&b, "X", 1);
		if (!step_buf_json(&b, c->exec) || b.len != c->saved_len
		    || memcmp(b.p, c->saved, b.len) != 0) {
			sl_free(c->saved);
			c->saved = NULL;
		}
		step_buf_free(&b);
	}
	if (c->exec && c->saved && !c->exec_dirty && c->arn && c->saved_len <= STEP_HOT_MAX_TEXT) {
		struct step_hot_ent *h = hot_slot(c->eng, c->arn);
		char *arn = sl_strdup(c->arn);
		if (arn) {
			hot_drop(h);
			h->arn = arn;
			h->exec = c->exec;
			h->text = c->saved;
			h->len = c->saved_len;
			c->exec = NULL;
			c->saved = NULL;
		}
	}
	json_decref(c->exec);
	sl_free(c->saved);
	c->saved = NULL;
	c->exec = NULL;
	c->arn = NULL;
	step_memo_clear(c);
}

uint32_t
step_next_frame_id(struct step_ctx *c)
{
	int64_t id = step_jint(c->exec, "nextFrame", 1);
	// in place: an allocation failing here would hand the same id out twice
	json_t *x = json_object_get(c->exec, "nextFrame");
	if (json_is_integer(x))
		json_integer_set(x, id + 1);
	else
		json_object_set_new(c->exec, "nextFrame", json_integer(id + 1));
	c->exec_dirty = true;
	return (uint32_t)id;
}

struct step_frame *
step_frame_new(void)
{
	struct step_frame *f = SL_NEW(struct step_frame);
	if (!f)
		return NULL;
	f->parent = -1;
	f->tol_n = -1;
	f->tol_p = -1;
	return f;
}

void
step_frame_free(struct step_frame *f)
{
	if (!f)
		return;
	json_decref(f->mp);
	json_decref(f->in);
	json_decref(f->rc);
	json_decref(f->eff);
	json_decref(f->ferr);
	sl_free(f);
}

sl_err
step_frame_resolve(struct step_ctx *c, struct step_frame *f)
{
	const struct sm_machine *m = c->top;
	if (!m)
		return sl_error_set(c->err, SL_ERR_SM_NOT_FOUND,
		                    "state machine '%s' of execution '%s' is not registered",
		                    step_jstr(c->exec, "machine"), c->arn);
	// the frame's path: (state, branch) steps into Parallel branches and Map processors
	m = step_maprun_walk(m, f->mp);
	if (m && f->st < m->n_states) {
		f->m = m;
		return SL_OK;
	}
	return sl_error_set(c->err, SL_ERR_STORE,
	                    "frame %u of '%s' does not fit its state machine (was it replaced?)",
	                    f->id, c->arn);
}

/* ---- frames as last saved (see eng->fhot) ---- */

static struct step_fhot_ent *
fhot_slot(step_engine_t *eng, const char *arn, uint32_t id)
{
	return &eng->fhot[(fnv(arn) ^ (id * 0x9E3779B1u)) % STEP_HOT_SLOTS];
}

static void
fhot_drop(struct step_fhot_ent *h)
{
	sl_free(h->arn);
	step_frame_free(h->f);
	sl_free(h->text);
	memset(h, 0, sizeof *h);
}

void
step_fhot_clear(step_engine_t *eng)
{
	for (size_t i = 0; i < STEP_HOT_SLOTS; i++)
		fhot_drop(&eng->fhot[i]);
}

/* A copy sharing the immutable documents; the retry counters change in place: copied. */
static struct step_frame *
frame_clone(const struct step_frame *f)
{
	struct step_frame *k = step_frame_new();
	if (!k)
		return NULL;
	*k = *f;
	k->rc = NULL;
	if (f->rc && !(k->rc = json_deep_copy(f->rc))) {
		sl_free(k);
		return NULL;
	}
	k->mp = json_incref(f->mp);
	k->in = json_incref(f->in);
	k->eff = json_incref(f->eff);
	k->ferr = json_incref(f->ferr);
	k->gone = false;
	return k;
}

/* Keeps a copy of f as just saved with text b (a failed copy only costs a parse later). */
static void
fhot_put(step_engine_t *eng, const char *arn, const struct step_frame *f, struct step_buf *b)
{
	struct step_fhot_ent *h = fhot_slot(eng, arn, f->id);
	fhot_drop(h);
	size_t len = b->len;
	if (len > STEP_HOT_MAX_TEXT)
		return;
	struct step_frame *k = frame_clone(f);
	char *a = sl_strdup(arn);
	char *t = b->p == b->stack ? sl_malloc(b->len) : b->p;
	if (!k || !a || !t) {
		step_frame_free(k);
		sl_free(a);
		if (t != b->p)
			sl_free(t);
		return;
	}
	if (b->p == b->stack)
		memcpy(t, b->p, b->len);
	else
		step_buf_init(b); // the heap buffer now belongs to the entry
	h->arn = a;
	h->id = f->id;
	h->f = k;
	h->text = t;
	h->len = len;
}

static struct step_frame *
fhot_take(step_engine_t *eng, const char *arn, uint32_t id, const struct store_val *v)
{
	struct step_fhot_ent *h = fhot_slot(eng, arn, id);
	if (!h->arn || h->id != id || strcmp(h->arn, arn) != 0)
		return NULL;
	struct step_frame *f = NULL;
	if (h->len == v->len && memcmp(h->text, v->data, v->len) == 0) {
		f = h->f;
		h->f = NULL;
	}
	fhot_drop(h);
	return f;
}

static json_t *
jref(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return v ? json_incref(v) : NULL;
}

sl_err
step_frame_load(struct step_ctx *c, uint32_t id, struct step_frame **out)
{
	struct store_key k;
	step_key_frame(&k, c->arn, id);
	struct store_val raw;
	sl_err e = store_get(c->txn, STORE_DB_FRAMES, k.buf, k.len, &raw);
	if (e != SL_OK)
		return e;
	struct step_frame *f = fhot_take(c->eng, c->arn, id, &raw);
	if (f)
		goto resolve;
	json_t *o = NULL;
	if (raw.len < 1 || ((const char *)raw.data)[0] != 'F')
		return SL_ERR_STORE;
	if ((e = step_parse_record((const char *)raw.data + 1, raw.len - 1, &o)) != SL_OK)
		return e;
	f = step_frame_new();
	if (!f) {
		json_decref(o);
		return SL_ERR_NOMEM;
	}
	f->id = id;
	f->parent = step_jint(o, "p", -1);
	f->pidx = (uint32_t)step_jint(o, "pi", 0);
	f->mp = jref(o, "mp");
	f->st = (size_t)step_jint(o, "st", 0);
	f->in = jref(o, "in");
	f->ph = (enum step_phase)step_jint(o, "ph", 0);
	f->rc = jref(o, "rc");
	f->prev = (uint64_t)step_jint(o, "pv", 0);
	f->entered_event = (uint64_t)step_jint(o, "ee", 0);
	f->entered_ms = step_jint(o, "em", 0);
	f->wk = (uint64_t)step_jint(o, "wk", 0);
	f->depth = (uint32_t)step_jint(o, "d", 0);
	const char *tok = step_jstr(o, "tok");
	if (tok)
		snprintf(f->tok, sizeof f->tok, "%s", tok);
	f->pw = (uint64_t)step_jint(o, "pw", 0);
	f->in_aux = json_is_true(json_object_get(o, "ia"));
	f->n = (uint32_t)step_jint(o, "n", 0);
	f->nx = (uint32_t)step_jint(o, "nx", 0);
	f->alive = (uint32_t)step_jint(o, "al", 0);
	f->done = (uint32_t)step_jint(o, "dn", 0);
	f->failed = (uint32_t)step_jint(o, "fl", 0);
	f->maxc = (uint32_t)step_jint(o, "mc", 0);
	f->tol_n = step_jint(o, "tn", -1);
	json_t *tp = json_object_get(o, "tp");
	f->tol_p = json_is_number(tp) ? json_number_value(tp) : -1;
	f->ferr = jref(o, "fe");
	json_decref(o);
	if (!f->mp || !json_is_array(f->mp)) {
		step_frame_free(f);
		return sl_error_set(c->err, SL_ERR_STORE, "frame %u of '%s' is malformed", id,
		                    c->arn);
	}
resolve:
	if ((e = step_frame_resolve(c, f)) != SL_OK
	    || (f->ph != PH_KIDS && (e = step_frame_in(c, f)) != SL_OK)) {
		step_frame_free(f);
		return e;
	}
	*out = f;
	return SL_OK;
}

/* The record's text, in frame_encode's member order (a loaded record is the same). */
static bool
frame_write(struct step_ctx *c, const struct step_frame *f, struct step_buf *b)
{
#define LIT(s) step_buf_add(b, s, sizeof s - 1)
	LIT("F{\"a\":");
	step_buf_jstr(b, c->arn, strlen(c->arn));
	LIT(",\"p\":");
	step_buf_i64(b, f->parent);
	LIT(",\"pi\":");
	step_buf_u64(b, f->pidx);
	LIT(",\"mp\":");
	if (!step_buf_json(b, f->mp))
		return false;
	LIT(",\"st\":");
	step_buf_u64(b, f->st);
	if (f->in_aux) {
		LIT(",\"ia\":true");
	} else {
		const char *s;
		size_t n;
		if (step_payload_text(c, f->in, &s, &n) != SL_OK)
			return false;
		LIT(",\"in\":");
		step_buf_add(b, s, n);
	}
	LIT(",\"ph\":");
	step_buf_i64(b, f->ph);
	if (f->rc) {
		LIT(",\"rc\":");
		if (!step_buf_json(b, f->rc))
			return false;
	}
	LIT(",\"pv\":");
	step_buf_u64(b, f->prev);
	LIT(",\"ee\":");
	step_buf_u64(b, f->entered_event);
	LIT(",\"em\":");
	step_buf_i64(b, f->entered_ms);
	LIT(",\"wk\":");
	step_buf_u64(b, f->wk);
	LIT(",\"d\":");
	step_buf_u64(b, f->depth);
	if (f->tok[0]) {
		LIT(",\"tok\":");
		step_buf_jstr(b, f->tok, strlen(f->tok));
	}
	if (f->pw) {
		LIT(",\"pw\":");
		step_buf_u64(b, f->pw);
	}
	if (f->ph == PH_KIDS) {
		LIT(",\"n\":");
		step_buf_u64(b, f->n);
		LIT(",\"nx\":");
		step_buf_u64(b, f->nx);
		LIT(",\"al\":");
		step_buf_u64(b, f->alive);
		LIT(",\"dn\":");
		step_buf_u64(b, f->done);
		LIT(",\"fl\":");
		step_buf_u64(b, f->failed);
		LIT(",\"mc\":");
		step_buf_u64(b, f->maxc);
		LIT(",\"tn\":");
		step_buf_i64(b, f->tol_n);
		// a real, in jansson's notation
		json_t *tp = json_real(f->tol_p);
		LIT(",\"tp\":");
		bool ok = step_buf_json(b, tp);
		json_decref(tp);
		if (!ok)
			return false;
		if (f->ferr) {
			LIT(",\"fe\":");
			if (!step_buf_json(b, f->ferr))
				return false;
		}
	}
	LIT("}");
#undef LIT
	return !b->oom;
}

sl_err
step_frame_save(struct step_ctx *c, struct step_frame *f)
{
	struct step_buf b;
	step_buf_init(&b);
	if (!frame_write(c, f, &b)) {
		step_buf_free(&b);
		return SL_ERR_NOMEM;
	}
	struct store_key k;
	step_key_frame(&k, c->arn, f->id);
	sl_err e = store_put(c->txn, STORE_DB_FRAMES, k.buf, k.len, b.p, b.len);
	if (e == SL_OK)
		fhot_put(c->eng, c->arn, f, &b);
	step_buf_free(&b);
	return e;
}

sl_err
step_frame_delete(struct step_ctx *c, struct step_frame *f)
{
	struct store_key k;
	step_key_frame(&k, c->arn, f->id);
	if (f->tok[0]) {
		struct store_key tk;
		store_key_init(&tk);
		store_key_raw(&tk, f->tok, strlen(f->tok));
		sl_err e = store_del(c->txn, STORE_DB_TASK_TOKENS, tk.buf, tk.len);
		if (e != SL_OK)
			return e;
	}
	return store_del(c->txn, STORE_DB_FRAMES, k.buf, k.len);
}

sl_err
step_ready_push(step_engine_t *eng, const char *arn, uint32_t frame)
{
	if (eng->r_len == eng->r_cap) {
		size_t ncap = eng->r_cap ? eng->r_cap * 2 : 64;
		struct step_ready *n = sl_calloc(ncap, sizeof *n);
		if (!n)
			return SL_ERR_NOMEM;
		for (size_t i = 0; i < eng->r_len; i++)
			n[i] = eng->ready[(eng->r_head + i) % eng->r_cap];
		sl_free(eng->ready);
		eng->ready = n;
		eng->r_cap = ncap;
		eng->r_head = 0;
	}
	char *a = sl_strdup(arn);
	if (!a)
		return SL_ERR_NOMEM;
	struct step_ready *r = &eng->ready[(eng->r_head + eng->r_len) % eng->r_cap];
	r->arn = a;
	r->frame = frame;
	eng->r_len++;
	return SL_OK;
}
