/*
 * pat_machine.c - all rules of a bus in one machine.
 *
 * Paths named by any rule live in one hash map (which the flattener consults per key);
 * each leaf path owns a field with one index per matcher family: exact and case-folded
 * values in hash maps, prefixes and suffixes in tries, wildcards in a trie keyed by their
 * literal head, and per-value checks (numeric, cidr, anything-but, exists) in a list.
 * A value's hits credit (subrule, slot) pairs; a subrule whose required slots are all
 * credited is a candidate, confirmed by counting alone when the event has no arrays of
 * objects and otherwise by an array-consistency check over the credited values.
 */
#include <string.h>

#include "bus/pat_index.h"
#include "bus/pat_internal.h"
#include "common/sl_alloc.h"

struct field {
	struct pat_hmap exact, eic;
	struct pat_trie pre, pre_eic, suf, suf_eic, wild;
	struct pat_tlist others;
	uint32_t fold_users; /* matchers that need the folded value */
	uint32_t live;       /* slots using this field */
};

struct subslot {
	int32_t field;
	bool absent_ok;
};

struct sub {
	uint32_t rule;
	uint32_t nslots, npos;
	bool live, has_absent;
	struct subslot *slots;
};

struct rule {
	char *name;
	struct pat_rule *pr;
	uint32_t *subs;
	uint32_t nsubs;
	bool live;
};

struct sub_scr {
	uint32_t gen, count, heads;
	bool cand;
};

struct hit {
	uint32_t val;
	int32_t next;
};

struct pat_machine {
	struct pat_hmap paths, names;
	struct field **fields;
	uint32_t nfields, cap_fields;
	int32_t *free_fields;
	uint32_t nfree_fields, cap_free_fields;
	struct sub *subs;
	uint32_t nsubs, cap_subs, live_subs;
	uint32_t *free_subs, nfree_subs, cap_free_subs;
	struct rule *rules;
	uint32_t nrules, cap_rules, live_rules;
	uint32_t *free_rules, nfree_rules, cap_free_rules;
	uint32_t *always; /* subrules with no required slot */
	uint32_t nalways, cap_always;
	/* per-event scratch */
	uint32_t gen;
	struct sub_scr *sscr;
	uint32_t *rgen;
	size_t cap_scr, cap_rscr;
	int32_t *heads;
	size_t nheads, cap_heads;
	struct hit *hits;
	size_t nhits, cap_hits;
	uint32_t *cands;
	size_t ncands, cap_cands;
	uint32_t *fgen;
	int32_t *fhead;
	size_t cap_fscr;
	int32_t *vnext;
	size_t cap_vnext;
	char *fold;
	size_t cap_fold;
	int32_t *chosen;
	size_t cap_chosen;
	uint32_t group[PAT_MAX_RULE_FIELDS], order[PAT_MAX_RULE_FIELDS];
	struct pat_flat flat;
	const char *ev;
};

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

static bool
grow32(void **buf, uint32_t *cap, uint32_t need, size_t elem)
{
	size_t c = *cap;
	bool ok = grow(buf, &c, need, elem);
	*cap = (uint32_t)c;
	return ok;
}

sl_err
pat_machine_new(pat_machine_t **out, struct sl_error *err)
{
	*out = SL_NEW(pat_machine_t);
	if (!*out)
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory creating a pattern machine");
	return SL_OK;
}

static void
field_free(struct field *f)
{
	if (!f)
		return;
	pat_hmap_free(&f->exact);
	pat_hmap_free(&f->eic);
	pat_trie_free(&f->pre);
	pat_trie_free(&f->pre_eic);
	pat_trie_free(&f->suf);
	pat_trie_free(&f->suf_eic);
	pat_trie_free(&f->wild);
	pat_tlist_free(&f->others);
	sl_free(f);
}

void
pat_machine_free(pat_machine_t *m)
{
	if (!m)
		return;
	pat_hmap_free(&m->paths);
	pat_hmap_free(&m->names);
	for (uint32_t i = 0; i < m->nfields; i++)
		field_free(m->fields[i]);
	sl_free(m->fields);
	sl_free(m->free_fields);
	for (uint32_t i = 0; i < m->nsubs; i++)
		sl_free(m->subs[i].slots);
	sl_free(m->subs);
	sl_free(m->free_subs);
	for (uint32_t i = 0; i < m->nrules; i++) {
		sl_free(m->rules[i].name);
		pat_rule_free(m->rules[i].pr);
		sl_free(m->rules[i].subs);
	}
	sl_free(m->rules);
	sl_free(m->free_rules);
	sl_free(m->always);
	sl_free(m->sscr);
	sl_free(m->rgen);
	sl_free(m->heads);
	sl_free(m->hits);
	sl_free(m->cands);
	sl_free(m->fgen);
	sl_free(m->fhead);
	sl_free(m->vnext);
	sl_free(m->fold);
	sl_free(m->chosen);
	pat_flat_free(&m->flat);
	sl_free(m);
}

/* ---- paths and fields ---- */

static sl_err
path_ref(pat_machine_t *m, const char *path, size_t len, int32_t *field)
{
	for (size_t i = 0; i < len; i++) {
		if (path[i] != '.')
			continue;
		struct pat_hent *e = pat_hmap_put(&m->paths, 0, path, i);
		if (!e)
			return SL_ERR_NOMEM;
		e->prefix_refs++;
	}
	struct pat_hent *e = pat_hmap_put(&m->paths, 0, path, len);
	if (!e)
		return SL_ERR_NOMEM;
	if (e->ival < 0) {
		struct field *f = SL_NEW(struct field);
		if (!f)
			return SL_ERR_NOMEM;
		int32_t id;
		if (m->nfree_fields) {
			id = m->free_fields[--m->nfree_fields];
		} else {
			if (!grow32((void **)&m->fields, &m->cap_fields, m->nfields + 1,
			            sizeof *m->fields)) {
				sl_free(f);
				return SL_ERR_NOMEM;
			}
			id = (int32_t)m->nfields++;
		}
		m->fields[id] = f;
		e->ival = id;
	}
	e->leaf_refs++;
	m->fields[e->ival]->live++;
	*field = e->ival;
	return SL_OK;
}

static void
path_unref(pat_machine_t *m, const char *path, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (path[i] != '.')
			continue;
		struct pat_hent *e = pat_hmap_get(&m->paths, 0, path, i, pat_hash(0, path, i));
		if (e && --e->prefix_refs == 0 && e->leaf_refs == 0)
			pat_hmap_del(&m->paths, e);
	}
	struct pat_hent *e = pat_hmap_get(&m->paths, 0, path, len, pat_hash(0, path, len));
	if (!e)
		return;
	if (--e->leaf_refs == 0) {
		struct field *f = m->fields[e->ival];
		field_free(f);
		m->fields[e->ival] = NULL;
		if (grow32((void **)&m->free_fields, &m->cap_free_fields, m->nfree_fields + 1,
		           sizeof *m->free_fields))
			m->free_fields[m->nfree_fields++] = e->ival;
		e->ival = -1;
		if (e->prefix_refs == 0)
			pat_hmap_del(&m->paths, e);
	}
}

static bool
needs_fold(const struct pat_val *v)
{
	return v->kind == PK_EIC || v->kind == PK_PREFIX_EIC || v->kind == PK_SUFFIX_EIC
	        || (v->kind == PK_ANYBUT && v->ab == AB_EIC);
}

/* The target list a value lives in (created when create). */
static struct pat_tlist *
val_list(struct field *f, const struct pat_val *v, bool create, struct pat_hent **he,
         struct pat_hmap **hm)
{
	uint32_t node;
	struct pat_trie *t = NULL;
	const char *k = v->key;
	size_t kl = v->key_len;
	bool rev = false;
	*he = NULL;
	switch (v->kind) {
	case PK_EXACT:
	case PK_EIC: {
		struct pat_hmap *map = v->kind == PK_EXACT ? &f->exact : &f->eic;
		struct pat_hent *e;
		if (v->kind == PK_EXACT) /* key is typed */
			e = create ? pat_hmap_put(map, k[0], k + 1, kl - 1)
			           : pat_hmap_get(map, k[0], k + 1, kl - 1,
			                          pat_hash(k[0], k + 1, kl - 1));
		else
			e = create ? pat_hmap_put(map, PAT_T_STRING, k, kl)
			           : pat_hmap_get(map, PAT_T_STRING, k, kl,
			                          pat_hash(PAT_T_STRING, k, kl));
		*he = e;
		*hm = map;
		return e ? &e->t : NULL;
	}
	case PK_PREFIX: t = &f->pre; break;
	case PK_PREFIX_EIC: t = &f->pre_eic; break;
	case PK_SUFFIX: t = &f->suf, rev = true; break;
	case PK_SUFFIX_EIC: t = &f->suf_eic, rev = true; break;
	case PK_WILDCARD:
		t = &f->wild;
		k = v->wild.parts[0];
		kl = v->wild.lens[0];
		break;
	default: return &f->others;
	}
	node = pat_trie_node(t, k, kl, rev, create);
	return node == UINT32_MAX ? NULL : &t->v[node].t;
}

static void
sub_unindex(pat_machine_t *m, uint32_t sid, const struct pat_rule *pr, const struct pat_conj *cj)
{
	for (uint32_t s = 0; s < cj->nslots; s++) {
		const struct pat_slot *sl = &pr->slots[cj->slots[s]];
		struct pat_hent *pe = pat_hmap_get(&m->paths, 0, sl->path, sl->path_len,
		                                   pat_hash(0, sl->path, sl->path_len));
		if (!pe || pe->ival < 0)
			continue;
		struct field *f = m->fields[pe->ival];
		for (size_t v = 0; v < sl->nvals; v++) {
			struct pat_hent *he;
			struct pat_hmap *hm;
			struct pat_tlist *l = val_list(f, &sl->vals[v], false, &he, &hm);
			if (!l)
				continue;
			uint32_t before = l->n;
			pat_tlist_remove_sub(l, sid);
			if (needs_fold(&sl->vals[v]) && before != l->n)
				f->fold_users -= before - l->n;
			if (he && l->n == 0)
				pat_hmap_del(hm, he);
		}
		f->live--;
		path_unref(m, sl->path, sl->path_len);
	}
}

static sl_err
sub_index(pat_machine_t *m, uint32_t sid, const struct pat_rule *pr, const struct pat_conj *cj)
{
	struct sub *sb = &m->subs[sid];
	for (uint32_t s = 0; s < cj->nslots; s++) {
		const struct pat_slot *sl = &pr->slots[cj->slots[s]];
		int32_t fid;
		if (path_ref(m, sl->path, sl->path_len, &fid)) {
			/* undo the slots before this one */
			struct pat_conj part = { s, cj->slots };
			sub_unindex(m, sid, pr, &part);
			return SL_ERR_NOMEM;
		}
		struct field *f = m->fields[fid];
		sb->slots[s].field = fid;
		sb->slots[s].absent_ok = sl->absent_ok;
		for (size_t v = 0; v < sl->nvals; v++) {
			struct pat_hent *he;
			struct pat_hmap *hm;
			struct pat_tlist *l = val_list(f, &sl->vals[v], true, &he, &hm);
			if (!l || !pat_tlist_add(l, sid, s, &sl->vals[v])) {
				if (he && l && l->n == 0)
					pat_hmap_del(hm, he);
				struct pat_conj part = { s + 1, cj->slots };
				sub_unindex(m, sid, pr, &part);
				return SL_ERR_NOMEM;
			}
			if (needs_fold(&sl->vals[v]))
				f->fold_users++;
		}
	}
	return SL_OK;
}

static void
always_remove(pat_machine_t *m, uint32_t sid)
{
	for (uint32_t i = 0; i < m->nalways; i++)
		if (m->always[i] == sid) {
			m->always[i] = m->always[--m->nalways];
			return;
		}
}

static void
rule_drop(pat_machine_t *m, uint32_t rid)
{
	struct rule *r = &m->rules[rid];
	for (uint32_t i = 0; i < r->nsubs; i++) {
		uint32_t sid = r->subs[i];
		struct sub *sb = &m->subs[sid];
		sub_unindex(m, sid, r->pr, &r->pr->conj[i]);
		if (sb->npos == 0)
			always_remove(m, sid);
		sl_free(sb->slots);
		memset(sb, 0, sizeof *sb);
		m->free_subs[m->nfree_subs++] = sid;
		m->live_subs--;
	}
	sl_free(r->subs);
	sl_free(r->name);
	pat_rule_free(r->pr);
	memset(r, 0, sizeof *r);
	m->free_rules[m->nfree_rules++] = rid;
	m->live_rules--;
}

static sl_err
alloc_sub(pat_machine_t *m, uint32_t *sid)
{
	if (m->nfree_subs) {
		*sid = m->free_subs[--m->nfree_subs];
		return SL_OK;
	}
	if (!grow32((void **)&m->subs, &m->cap_subs, m->nsubs + 1, sizeof *m->subs))
		return SL_ERR_NOMEM;
	if (!grow32((void **)&m->free_subs, &m->cap_free_subs, m->nsubs + 1, sizeof *m->free_subs))
		return SL_ERR_NOMEM;
	if (!grow((void **)&m->sscr, &m->cap_scr, m->nsubs + 1, sizeof *m->sscr))
		return SL_ERR_NOMEM;
	m->sscr[m->nsubs] = (struct sub_scr) { 0 };
	memset(&m->subs[m->nsubs], 0, sizeof *m->subs);
	*sid = m->nsubs++;
	return SL_OK;
}

sl_err
pat_machine_add_rule(pat_machine_t *m, const char *name, const char *pattern, size_t len,
                     uint32_t *rule_id, struct sl_error *err)
{
	size_t nl = strlen(name);
	struct pat_hent *ne = pat_hmap_get(&m->names, 0, name, nl, pat_hash(0, name, nl));
	if (ne)
		return sl_error_set(err, SL_ERR_EXISTS, "rule %s already exists", name);
	struct pat_rule *pr;
	sl_err rc = pat_compile(pattern, len, &pr, err);
	if (rc)
		return rc;
	uint32_t rid;
	if (m->nfree_rules) {
		rid = m->free_rules[--m->nfree_rules];
	} else {
		if (!grow32((void **)&m->rules, &m->cap_rules, m->nrules + 1, sizeof *m->rules)
		    || !grow32((void **)&m->free_rules, &m->cap_free_rules, m->nrules + 1,
		               sizeof *m->free_rules)
		    || !grow((void **)&m->rgen, &m->cap_rscr, m->nrules + 1, sizeof *m->rgen)) {
			pat_rule_free(pr);
			return sl_error_set(err, SL_ERR_NOMEM, "out of memory adding rule %s",
			                    name);
		}
		m->rgen[m->nrules] = 0;
		rid = m->nrules++;
	}
	struct rule *r = &m->rules[rid];
	memset(r, 0, sizeof *r);
	r->pr = pr;
	r->live = true;
	r->name = sl_strdup(name);
	r->subs = sl_calloc(pr->nconj ? pr->nconj : 1, sizeof *r->subs);
	m->live_rules++;
	if (!r->name || !r->subs)
		goto nomem;
	for (uint32_t i = 0; i < pr->nconj; i++) {
		uint32_t sid;
		if (alloc_sub(m, &sid))
			goto nomem;
		struct sub *sb = &m->subs[sid];
		const struct pat_conj *cj = &pr->conj[i];
		sb->slots = sl_calloc(cj->nslots ? cj->nslots : 1, sizeof *sb->slots);
		if (!sb->slots) {
			m->free_subs[m->nfree_subs++] = sid;
			goto nomem;
		}
		if (sub_index(m, sid, pr, cj)) {
			sl_free(sb->slots);
			sb->slots = NULL;
			m->free_subs[m->nfree_subs++] = sid;
			goto nomem;
		}
		sb->rule = rid;
		sb->live = true;
		sb->nslots = (uint32_t)cj->nslots;
		for (uint32_t s = 0; s < sb->nslots; s++) {
			if (sb->slots[s].absent_ok)
				sb->has_absent = true;
			else
				sb->npos++;
		}
		if (sb->npos == 0) {
			if (!grow32((void **)&m->always, &m->cap_always, m->nalways + 1,
			            sizeof *m->always)) {
				r->subs[r->nsubs++] = sid;
				m->live_subs++;
				goto nomem;
			}
			m->always[m->nalways++] = sid;
		}
		r->subs[r->nsubs++] = sid;
		m->live_subs++;
	}
	ne = pat_hmap_put(&m->names, 0, name, nl);
	if (!ne)
		goto nomem;
	ne->ival = (int32_t)rid;
	if (rule_id)
		*rule_id = rid;
	return SL_OK;
nomem:
	rule_drop(m, rid);
	return sl_error_set(err, SL_ERR_NOMEM, "out of memory adding rule %s", name);
}

sl_err
pat_machine_remove_rule(pat_machine_t *m, const char *name, struct sl_error *err)
{
	size_t nl = strlen(name);
	struct pat_hent *ne = pat_hmap_get(&m->names, 0, name, nl, pat_hash(0, name, nl));
	if (!ne)
		return sl_error_set(err, SL_ERR_NOT_FOUND, "rule %s does not exist", name);
	uint32_t rid = (uint32_t)ne->ival;
	pat_hmap_del(&m->names, ne);
	rule_drop(m, rid);
	return SL_OK;
}

/* ---- matching ---- */

static bool
lookup_path(void *ctx, const char *path, size_t len, uint64_t hash, struct pat_path_info *out)
{
	pat_machine_t *m = ctx;
	struct pat_hent *e = pat_hmap_get(&m->paths, 0, path, len, hash);
	if (!e)
		return false;
	out->field = e->leaf_refs ? e->ival : -1;
	out->prefix = e->prefix_refs > 0;
	return true;
}

static bool
credit(pat_machine_t *m, const struct pat_target *t, uint32_t val)
{
	struct sub_scr *ss = &m->sscr[t->sub];
	const struct sub *sb = &m->subs[t->sub];
	if (ss->gen != m->gen) {
		if (!grow((void **)&m->heads, &m->cap_heads, m->nheads + sb->nslots,
		          sizeof *m->heads))
			return false;
		ss->gen = m->gen;
		ss->count = 0;
		ss->cand = false;
		ss->heads = (uint32_t)m->nheads;
		for (uint32_t i = 0; i < sb->nslots; i++)
			m->heads[m->nheads + i] = -1;
		m->nheads += sb->nslots;
	}
	int32_t *head = &m->heads[ss->heads + t->slot];
	if (*head >= 0 && m->hits[*head].val == val)
		return true; /* the same value through another alternative */
	if (!grow((void **)&m->hits, &m->cap_hits, m->nhits + 1, sizeof *m->hits))
		return false;
	if (*head < 0 && !sb->slots[t->slot].absent_ok)
		ss->count++;
	m->hits[m->nhits] = (struct hit) { val, *head };
	*head = (int32_t)m->nhits++;
	if (ss->count == sb->npos && !ss->cand) {
		if (!grow((void **)&m->cands, &m->cap_cands, m->ncands + 1, sizeof *m->cands))
			return false;
		ss->cand = true;
		m->cands[m->ncands++] = t->sub;
	}
	return true;
}

static bool
credit_list(pat_machine_t *m, const struct pat_tlist *l, uint32_t val)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (!credit(m, &l->v[i], val))
			return false;
	return true;
}

static bool
walk_trie(pat_machine_t *m, const struct pat_trie *t, const char *s, size_t n, bool rev,
          uint32_t val)
{
	if (!t->n)
		return true;
	uint32_t cur = 0;
	for (size_t i = 0;; i++) {
		if (t->v[cur].t.n && !credit_list(m, &t->v[cur].t, val))
			return false;
		if (i == n)
			return true;
		uint8_t c = (uint8_t)s[rev ? n - 1 - i : i];
		uint32_t ch = t->v[cur].child;
		while (ch && t->v[ch].byte != c)
			ch = t->v[ch].sibling;
		if (!ch)
			return true;
		cur = ch;
	}
}

static bool
walk_wild(pat_machine_t *m, const struct pat_trie *t, const char *s, size_t n, uint32_t val)
{
	if (!t->n)
		return true;
	uint32_t cur = 0;
	for (size_t i = 0;; i++) {
		const struct pat_tlist *l = &t->v[cur].t;
		for (uint32_t k = 0; k < l->n; k++)
			if (pat_wild_match(&l->v[k].val->wild, s, n) && !credit(m, &l->v[k], val))
				return false;
		if (i == n)
			return true;
		uint32_t ch = t->v[cur].child;
		while (ch && t->v[ch].byte != (uint8_t)s[i])
			ch = t->v[ch].sibling;
		if (!ch)
			return true;
		cur = ch;
	}
}

static bool
match_value(pat_machine_t *m, uint32_t vi)
{
	const struct pat_fval *v = &m->flat.vals[vi];
	const struct field *f = m->fields[v->field];
	const char *s = pat_fval_ptr(&m->flat, m->ev, v);
	size_t n = v->len;
	char numkey[8];
	if (v->type == PAT_T_NUMBER) {
		if (v->num_ok) {
			memcpy(numkey, &v->num, 8);
			s = numkey;
			n = 8;
		} else {
			s = NULL;
		}
	}
	if (f->exact.n && s) {
		const struct pat_hent *e
		        = pat_hmap_get(&f->exact, v->type, s, n, pat_hash(v->type, s, n));
		if (e && !credit_list(m, &e->t, vi))
			return false;
	}
	const char *fs = NULL;
	size_t fl = 0;
	if (v->type == PAT_T_STRING) {
		if (f->fold_users) {
			if (!pat_fold(s, n, &m->fold, &fl, &m->cap_fold))
				return false;
			fs = m->fold;
			if (f->eic.n) {
				const struct pat_hent *e
				        = pat_hmap_get(&f->eic, PAT_T_STRING, fs, fl,
				                       pat_hash(PAT_T_STRING, fs, fl));
				if (e && !credit_list(m, &e->t, vi))
					return false;
			}
			if (!walk_trie(m, &f->pre_eic, fs, fl, false, vi)
			    || !walk_trie(m, &f->suf_eic, fs, fl, true, vi))
				return false;
		}
		if (!walk_trie(m, &f->pre, s, n, false, vi)
		    || !walk_trie(m, &f->suf, s, n, true, vi) || !walk_wild(m, &f->wild, s, n, vi))
			return false;
	}
	for (uint32_t i = 0; i < f->others.n; i++) {
		const struct pat_target *t = &f->others.v[i];
		const struct pat_val *pv = t->val;
		bool hit = false;
		switch (pv->kind) {
		case PK_EXISTS: hit = true; break;
		case PK_NUMERIC:
			hit = v->type == PAT_T_NUMBER && v->num_ok && pat_numeric_match(pv, v->num);
			break;
		case PK_CIDR: hit = v->type == PAT_T_STRING && pat_cidr_match(pv, s, n); break;
		case PK_ANYBUT:
			if (v->type == PAT_T_NUMBER && !s)
				hit = true; /* a number we cannot represent equals no listed value
				             */
			else
				hit = pat_anybut_match(pv, v->type, s, n, fs, fl);
			break;
		default: break;
		}
		if (hit && !credit(m, t, vi))
			return false;
	}
	return true;
}

static bool
consistent(const struct pat_flat *fl, uint32_t a, uint32_t b)
{
	const struct pat_fval *x = &fl->vals[a], *y = &fl->vals[b];
	uint32_t n = x->mem_len < y->mem_len ? x->mem_len : y->mem_len;
	const struct pat_amem *p = fl->mem + x->mem_off, *q = fl->mem + y->mem_off;
	for (uint32_t i = 0; i < n; i++) {
		if (p[i].array != q[i].array)
			return true;
		if (p[i].index != q[i].index)
			return false;
	}
	return true;
}

/* Values with the same array memberships are interchangeable in the search below. */
static bool
same_membership(const struct pat_flat *fl, uint32_t a, uint32_t b)
{
	const struct pat_fval *x = &fl->vals[a], *y = &fl->vals[b];
	return x->mem_len == y->mem_len
	        && (x->mem_len == 0
	            || memcmp(fl->mem + x->mem_off, fl->mem + y->mem_off,
	                      x->mem_len * sizeof *fl->mem)
	                    == 0);
}

static bool
field_has_values(const pat_machine_t *m, int32_t field)
{
	return m->fgen[field] == m->gen && m->fhead[field] >= 0;
}

/* Backtracking over one credited value per slot of order[] (or absence for exists:false). */
static bool
choose(pat_machine_t *m, const struct sub *sb, const struct sub_scr *ss, const uint32_t *order,
       uint32_t k, uint32_t n)
{
	int32_t *ch = m->chosen;
	if (k == n) {
		for (uint32_t x = 0; x < n; x++) {
			uint32_t s = order[x];
			if (ch[s] >= 0)
				continue;
			int32_t f = sb->slots[s].field;
			if (!field_has_values(m, f))
				continue;
			for (int32_t w = m->fhead[f]; w >= 0; w = m->vnext[w]) {
				bool ok = true;
				for (uint32_t y = 0; y < n && ok; y++)
					if (ch[order[y]] >= 0
					    && !consistent(&m->flat, (uint32_t)w,
					                   (uint32_t)ch[order[y]]))
						ok = false;
				if (ok)
					return false; /* a value exists where absence was needed */
			}
		}
		return true;
	}
	uint32_t i = order[k];
	int32_t tried = -1;
	for (int32_t h = ss->gen == m->gen ? m->heads[ss->heads + i] : -1; h >= 0;
	     h = m->hits[h].next) {
		uint32_t val = m->hits[h].val;
		/* credits arrive in event order, so the elements of one primitive array (or
		 * one object) are neighbours here: trying one of them is trying them all */
		if (tried >= 0 && same_membership(&m->flat, val, (uint32_t)tried))
			continue;
		tried = (int32_t)val;
		bool ok = true;
		for (uint32_t y = 0; y < k && ok; y++)
			if (ch[order[y]] >= 0 && !consistent(&m->flat, val, (uint32_t)ch[order[y]]))
				ok = false;
		if (!ok)
			continue;
		ch[i] = (int32_t)val;
		if (choose(m, sb, ss, order, k + 1, n))
			return true;
	}
	if (sb->slots[i].absent_ok) {
		ch[i] = -1;
		return choose(m, sb, ss, order, k + 1, n);
	}
	return false;
}

#define ROOT_FREE  UINT32_MAX
#define ROOT_MIXED (UINT32_MAX - 1)

static uint32_t
root_merge(const struct pat_flat *fl, uint32_t g, uint32_t val)
{
	const struct pat_fval *v = &fl->vals[val];
	if (v->mem_len == 0 || g == ROOT_MIXED)
		return g;
	uint32_t r = fl->mem[v->mem_off].array;
	return g == ROOT_FREE ? r : g == r ? g : ROOT_MIXED;
}

/*
 * Values under different outermost arrays never constrain each other, so the slots are
 * split by the outermost array their values live in and each group is searched alone:
 * independent arrays cost the sum of their sizes, not the product.
 */
static bool
sub_matches(pat_machine_t *m, uint32_t sid)
{
	const struct sub *sb = &m->subs[sid];
	const struct sub_scr *ss = &m->sscr[sid];
	bool touched = ss->gen == m->gen;
	if (!m->flat.has_obj_arrays) {
		/* no arrays of objects: every credited value is consistent with every other */
		for (uint32_t s = 0; s < sb->nslots; s++) {
			if (!sb->slots[s].absent_ok)
				continue;
			if (touched && m->heads[ss->heads + s] >= 0)
				continue;
			if (field_has_values(m, sb->slots[s].field))
				return false;
		}
		return true;
	}
	uint32_t *grp = m->group, *order = m->order, n = sb->nslots;
	bool mixed = false;
	for (uint32_t s = 0; s < n; s++) {
		uint32_t g = ROOT_FREE;
		for (int32_t h = touched ? m->heads[ss->heads + s] : -1; h >= 0;
		     h = m->hits[h].next)
			g = root_merge(&m->flat, g, m->hits[h].val);
		int32_t f = sb->slots[s].field;
		if (sb->slots[s].absent_ok && field_has_values(m, f))
			for (int32_t w = m->fhead[f]; w >= 0; w = m->vnext[w])
				g = root_merge(&m->flat, g, (uint32_t)w);
		grp[s] = g;
		mixed |= g == ROOT_MIXED;
	}
	if (mixed) {
		for (uint32_t s = 0; s < n; s++)
			order[s] = s;
		return choose(m, sb, ss, order, 0, n);
	}
	for (uint32_t s = 0; s < n; s++) {
		if (grp[s] == ROOT_MIXED - 1)
			continue; /* already searched with its group */
		uint32_t g = grp[s], k = 0;
		for (uint32_t t = s; t < n; t++) {
			if (grp[t] == g) {
				order[k++] = t;
				grp[t] = ROOT_MIXED - 1;
			}
		}
		if (!choose(m, sb, ss, order, 0, k))
			return false;
	}
	return true;
}

static sl_err
run(pat_machine_t *m, const char *event, size_t len, pat_match_fn fn, void *ctx,
    struct sl_error *err)
{
	if (++m->gen == 0) {
		/* stamps wrapped: forget every old one */
		for (uint32_t i = 0; i < m->nsubs; i++)
			m->sscr[i].gen = 0;
		memset(m->rgen, 0, m->nrules * sizeof *m->rgen);
		if (m->fgen)
			memset(m->fgen, 0, m->cap_fscr * sizeof *m->fgen);
		m->gen = 1;
	}
	m->nheads = m->nhits = m->ncands = 0;
	m->ev = event;
	sl_err rc = pat_flatten(&m->flat, event, len, lookup_path, m, err);
	if (rc)
		return rc;
	size_t nv = m->flat.nvals;
	if (!grow((void **)&m->vnext, &m->cap_vnext, nv + 1, sizeof *m->vnext))
		goto nomem;
	if (m->cap_fscr < m->nfields) {
		size_t c = m->cap_fscr;
		if (!grow((void **)&m->fgen, &c, m->nfields, sizeof *m->fgen))
			goto nomem;
		c = m->cap_fscr;
		if (!grow((void **)&m->fhead, &c, m->nfields, sizeof *m->fhead))
			goto nomem;
		memset(m->fgen + m->cap_fscr, 0, (c - m->cap_fscr) * sizeof *m->fgen);
		m->cap_fscr = c;
	}
	for (size_t i = nv; i-- > 0;) {
		int32_t f = m->flat.vals[i].field;
		if (m->fgen[f] != m->gen) {
			m->fgen[f] = m->gen;
			m->fhead[f] = -1;
		}
		m->vnext[i] = m->fhead[f];
		m->fhead[f] = (int32_t)i;
	}
	for (size_t i = 0; i < nv; i++)
		if (!match_value(m, (uint32_t)i))
			goto nomem;
	size_t maxslots = PAT_MAX_RULE_FIELDS;
	if (!grow((void **)&m->chosen, &m->cap_chosen, maxslots, sizeof *m->chosen))
		goto nomem;
	for (size_t pass = 0; pass < 2; pass++) {
		size_t n = pass == 0 ? m->ncands : m->nalways;
		for (size_t i = 0; i < n; i++) {
			uint32_t sid = pass == 0 ? m->cands[i] : m->always[i];
			const struct sub *sb = &m->subs[sid];
			if (m->rgen[sb->rule] == m->gen || !sub_matches(m, sid))
				continue;
			m->rgen[sb->rule] = m->gen;
			if (!fn(ctx, sb->rule, m->rules[sb->rule].name))
				return SL_OK;
		}
	}
	return SL_OK;
nomem:
	return sl_error_set(err, SL_ERR_NOMEM, "out of memory matching an event");
}

sl_err
pat_machine_match(pat_machine_t *m, const char *event, size_t len, pat_match_fn fn, void *ctx,
                  struct sl_error *err)
{
	return run(m, event, len, fn, ctx, err);
}

struct ids_ctx {
	uint32_t *ids;
	size_t cap, n;
};

static bool
collect_id(void *ctx, uint32_t rule_id, const char *name)
{
	struct ids_ctx *c = ctx;
	(void)name;
	if (c->n < c->cap)
		c->ids[c->n] = rule_id;
	c->n++;
	return true;
}

sl_err
pat_machine_match_ids(pat_machine_t *m, const char *event, size_t len, uint32_t *ids, size_t cap,
                      size_t *n, struct sl_error *err)
{
	struct ids_ctx c = { ids, cap, 0 };
	sl_err rc = run(m, event, len, collect_id, &c, err);
	*n = c.n;
	return rc;
}

static size_t
rule_bytes(const struct pat_rule *r)
{
	size_t b = sizeof *r + r->nslots * sizeof *r->slots + r->nconj * sizeof *r->conj;
	for (size_t i = 0; i < r->nslots; i++) {
		const struct pat_slot *s = &r->slots[i];
		b += s->path_len + 1 + s->nvals * sizeof *s->vals;
		for (size_t j = 0; j < s->nvals; j++) {
			const struct pat_val *v = &s->vals[j];
			b += v->key_len + 1 + v->nkeys * (sizeof(char *) + sizeof(size_t));
			for (size_t k = 0; k < v->nkeys; k++)
				b += v->key_lens[k] + 1;
			for (size_t k = 0; k < v->wild.nparts; k++)
				b += v->wild.lens[k] + 1 + sizeof(char *) + sizeof(size_t);
		}
	}
	for (size_t i = 0; i < r->nconj; i++)
		b += r->conj[i].nslots * sizeof(uint32_t);
	return b;
}

void
pat_machine_stats(const pat_machine_t *m, struct pat_stats *out)
{
	memset(out, 0, sizeof *out);
	out->rules = m->live_rules;
	out->subrules = m->live_subs;
	size_t b = sizeof *m + pat_hmap_bytes(&m->paths) + pat_hmap_bytes(&m->names);
	b += m->cap_fields * sizeof *m->fields + m->cap_free_fields * sizeof *m->free_fields;
	for (uint32_t i = 0; i < m->nfields; i++) {
		const struct field *f = m->fields[i];
		if (!f)
			continue;
		out->fields++;
		b += sizeof *f + pat_hmap_bytes(&f->exact) + pat_hmap_bytes(&f->eic)
		        + pat_trie_bytes(&f->pre) + pat_trie_bytes(&f->pre_eic)
		        + pat_trie_bytes(&f->suf) + pat_trie_bytes(&f->suf_eic)
		        + pat_trie_bytes(&f->wild) + f->others.cap * sizeof *f->others.v;
	}
	b += m->cap_subs * sizeof *m->subs + m->cap_free_subs * sizeof *m->free_subs
	        + m->cap_scr * sizeof *m->sscr;
	for (uint32_t i = 0; i < m->nsubs; i++)
		b += m->subs[i].nslots * sizeof *m->subs[i].slots;
	b += m->cap_rules * sizeof *m->rules + m->cap_free_rules * sizeof *m->free_rules
	        + m->cap_rscr * sizeof *m->rgen;
	for (uint32_t i = 0; i < m->nrules; i++) {
		const struct rule *r = &m->rules[i];
		if (!r->live)
			continue;
		b += strlen(r->name) + 1 + r->nsubs * sizeof *r->subs + rule_bytes(r->pr);
	}
	b += m->cap_always * sizeof *m->always;
	b += m->cap_heads * sizeof *m->heads + m->cap_hits * sizeof *m->hits
	        + m->cap_cands * sizeof *m->cands
	        + m->cap_fscr * (sizeof *m->fgen + sizeof *m->fhead)
	        + m->cap_vnext * sizeof *m->vnext + m->cap_fold + m->cap_chosen * sizeof *m->chosen;
	b += m->flat.cap_vals * sizeof *m->flat.vals + m->flat.cap_mem * sizeof *m->flat.mem
	        + m->flat.cap_dec + m->flat.cap_path + m->flat.cap_stack * sizeof *m->flat.stack;
	out->bytes = b;
}

sl_err
pat_validate(const char *pattern, size_t len, struct sl_error *err)
{
	struct pat_rule *r;
	sl_err rc = pat_compile(pattern, len, &r, err);
	pat_rule_free(r);
	return rc;
}

static bool
set_true(void *ctx, uint32_t rule_id, const char *name)
{
	(void)rule_id;
	(void)name;
	*(bool *)ctx = true;
	return false;
}

sl_err
pat_test(const char *pattern_text, const char *event_text, bool *match, struct sl_error *err)
{
	pat_machine_t *m;
	*match = false;
	sl_err rc = pat_machine_new(&m, err);
	if (rc)
		return rc;
	rc = pat_machine_add_rule(m, "test", pattern_text, strlen(pattern_text), NULL, err);
	if (!rc)
		rc = pat_machine_match(m, event_text, strlen(event_text), set_true, match, err);
	pat_machine_free(m);
	return rc;
}
