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
	const struct pat_slot *ps; /* in the rule's compiled pattern, for verification */
};

/* Only the anchor slot (the required slot whose values the fewest other subrules share when
 * the subrule is added) is in the indexes; a hit on it makes the subrule a candidate whose
 * other slots are then checked against the event's values of their fields. */
#define NO_ANCHOR UINT32_MAX

struct sub {
	uint32_t rule;
	uint32_t nslots, npos;
	uint32_t anchor; /* slot index, NO_ANCHOR when no slot is required */
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

/* Per-event working memory; one per thread that matches. */
struct pat_scratch {
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
	struct pat_scratch own; /* for pat_machine_match */
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
scratch_clear(struct pat_scratch *sc)
{
	sl_free(sc->sscr);
	sl_free(sc->rgen);
	sl_free(sc->heads);
	sl_free(sc->hits);
	sl_free(sc->cands);
	sl_free(sc->fgen);
	sl_free(sc->fhead);
	sl_free(sc->vnext);
	sl_free(sc->fold);
	sl_free(sc->chosen);
	pat_flat_free(&sc->flat);
	memset(sc, 0, sizeof *sc);
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
	scratch_clear(&m->own);
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
         struct pat_hmap **hm, struct pat_trie **tr)
{
	uint32_t node;
	struct pat_trie *t = NULL;
	*tr = NULL;
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
	*tr = t;
	return node == UINT32_MAX ? NULL : &t->v[node].t;
}

/* Takes the anchor slot's values out of the indexes (those not there are skipped). */
static void
anchor_unindex(pat_machine_t *m, uint32_t sid)
{
	const struct sub *sb = &m->subs[sid];
	if (sb->anchor == NO_ANCHOR)
		return;
	const struct subslot *ss = &sb->slots[sb->anchor];
	const struct pat_slot *sl = ss->ps;
	struct field *f = m->fields[ss->field];
	for (size_t v = 0; v < sl->nvals; v++) {
		struct pat_hent *he;
		struct pat_hmap *hm;
		struct pat_trie *tr;
		struct pat_tlist *l = val_list(f, &sl->vals[v], false, &he, &hm, &tr);
		if (!l)
			continue;
		uint32_t before = l->n;
		pat_tlist_remove_sub(l, sid);
		if (needs_fold(&sl->vals[v]) && before != l->n)
			f->fold_users -= before - l->n;
		if (he && l->n == 0)
			pat_hmap_del(hm, he);
		/* a trie nobody uses any more goes: removed rules leave no nodes behind */
		if (tr && (tr->ntargets -= before - l->n) == 0)
			pat_trie_free(tr);
	}
}

/* Releases the fields of the first n slots. */
static void
slots_unref(pat_machine_t *m, const struct sub *sb, uint32_t n)
{
	for (uint32_t s = 0; s < n; s++) {
		m->fields[sb->slots[s].field]->live--;
		path_unref(m, sb->slots[s].ps->path, sb->slots[s].ps->path_len);
	}
}

static void
sub_unindex(pat_machine_t *m, uint32_t sid)
{
	anchor_unindex(m, sid);
	slots_unref(m, &m->subs[sid], m->subs[sid].nslots);
}

/*
 * How many subrules a hit on v is likely to credit: the subrules already listed under the
 * same key (exact, folded, prefix, suffix, wildcard head), plus a bias for matchers that
 * many values pass. Anything-but and exists:true pass nearly every value, so a slot made
 * of them is the anchor only when nothing else is required.
 */
#define COST_RANGE 64u
#define COST_BROAD 1000000u

static uint64_t
val_cost(struct field *f, const struct pat_val *v)
{
	struct pat_hent *he;
	struct pat_hmap *hm;
	struct pat_trie *tr;
	const struct pat_tlist *l;
	switch (v->kind) {
	case PK_EXACT:
	case PK_EIC: l = val_list(f, v, false, &he, &hm, &tr); return 1 + (l ? l->n : 0);
	case PK_PREFIX:
	case PK_PREFIX_EIC:
	case PK_SUFFIX:
	case PK_SUFFIX_EIC:
	case PK_WILDCARD: l = val_list(f, v, false, &he, &hm, &tr); return 4 + (l ? l->n : 0);
	case PK_NUMERIC:
	case PK_CIDR: return COST_RANGE + f->others.n;
	default: return COST_BROAD + f->others.n;
	}
}

static sl_err
sub_index(pat_machine_t *m, uint32_t sid, const struct pat_rule *pr, const struct pat_conj *cj)
{
	struct sub *sb = &m->subs[sid];
	sb->anchor = NO_ANCHOR;
	sb->nslots = (uint32_t)cj->nslots;
	uint64_t best = UINT64_MAX;
	for (uint32_t s = 0; s < cj->nslots; s++) {
		const struct pat_slot *sl = &pr->slots[cj->slots[s]];
		int32_t fid;
		if (path_ref(m, sl->path, sl->path_len, &fid)) {
			slots_unref(m, sb, s);
			return SL_ERR_NOMEM;
		}
		sb->slots[s].field = fid;
		sb->slots[s].absent_ok = sl->absent_ok;
		sb->slots[s].ps = sl;
		if (sl->absent_ok)
			continue;
		uint64_t cost = 0;
		for (size_t v = 0; v < sl->nvals; v++)
			cost += val_cost(m->fields[fid], &sl->vals[v]);
		if (cost < best) {
			best = cost;
			sb->anchor = s;
		}
	}
	if (sb->anchor == NO_ANCHOR)
		return SL_OK;
	const struct pat_slot *sl = sb->slots[sb->anchor].ps;
	struct field *f = m->fields[sb->slots[sb->anchor].field];
	for (size_t v = 0; v < sl->nvals; v++) {
		struct pat_hent *he;
		struct pat_hmap *hm;
		struct pat_trie *tr;
		struct pat_tlist *l = val_list(f, &sl->vals[v], true, &he, &hm, &tr);
		if (!l || !pat_tlist_add(l, sid, sb->anchor, &sl->vals[v])) {
			if (he && l && l->n == 0)
				pat_hmap_del(hm, he);
			if (tr && tr->ntargets == 0)
				pat_trie_free(tr); /* created just now, holds nothing */
			sub_unindex(m, sid);
			return SL_ERR_NOMEM;
		}
		if (tr)
			tr->ntargets++;
		if (needs_fold(&sl->vals[v]))
			f->fold_users++;
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
		sub_unindex(m, sid);
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
		               sizeof *m->free_rules)) {
			pat_rule_free(pr);
			return sl_error_set(err, SL_ERR_NOMEM, "out of memory adding rule %s",
			                    name);
		}

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

/* Stamps a subrule's scratch for this event (its slots' hit lists start empty). */
static bool
sub_touch(const pat_machine_t *m, struct pat_scratch *sc, uint32_t sid)
{
	struct sub_scr *ss = &sc->sscr[sid];
	const struct sub *sb = &m->subs[sid];
	if (ss->gen == sc->gen)
		return true;
	if (!grow((void **)&sc->heads, &sc->cap_heads, sc->nheads + sb->nslots, sizeof *sc->heads))
		return false;
	ss->gen = sc->gen;
	ss->count = 0;
	ss->cand = false;
	ss->heads = (uint32_t)sc->nheads;
	for (uint32_t i = 0; i < sb->nslots; i++)
		sc->heads[sc->nheads + i] = -1;
	sc->nheads += sb->nslots;
	return true;
}

/* Records value val for slot of a touched subrule (once per value). */
static bool
add_hit(struct pat_scratch *sc, uint32_t sid, uint32_t slot, uint32_t val)
{
	int32_t *head = &sc->heads[sc->sscr[sid].heads + slot];
	if (*head >= 0 && sc->hits[*head].val == val)
		return true; /* the same value through another alternative */
	if (!grow((void **)&sc->hits, &sc->cap_hits, sc->nhits + 1, sizeof *sc->hits))
		return false;
	sc->hits[sc->nhits] = (struct hit) { val, *head };
	*head = (int32_t)sc->nhits++;
	return true;
}

/* An index hit: only anchor slots are indexed, so the subrule becomes a candidate. */
static bool
credit(const pat_machine_t *m, struct pat_scratch *sc, const struct pat_target *t, uint32_t val)
{
	struct sub_scr *ss = &sc->sscr[t->sub];
	if (!sub_touch(m, sc, t->sub) || !add_hit(sc, t->sub, t->slot, val))
		return false;
	if (!ss->cand) {
		if (!grow((void **)&sc->cands, &sc->cap_cands, sc->ncands + 1, sizeof *sc->cands))
			return false;
		ss->cand = true;
		sc->cands[sc->ncands++] = t->sub;
	}
	return true;
}

static bool
credit_list(const pat_machine_t *m, struct pat_scratch *sc, const struct pat_tlist *l, uint32_t val)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (!credit(m, sc, &l->v[i], val))
			return false;
	return true;
}

static bool
walk_trie(const pat_machine_t *m, struct pat_scratch *sc, const struct pat_trie *t, const char *s,
          size_t n, bool rev, uint32_t val)
{
	if (!t->n)
		return true;
	uint32_t cur = 0;
	for (size_t i = 0;; i++) {
		if (t->v[cur].t.n && !credit_list(m, sc, &t->v[cur].t, val))
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
walk_wild(const pat_machine_t *m, struct pat_scratch *sc, const struct pat_trie *t, const char *s,
          size_t n, uint32_t val)
{
	if (!t->n)
		return true;
	uint32_t cur = 0;
	for (size_t i = 0;; i++) {
		const struct pat_tlist *l = &t->v[cur].t;
		for (uint32_t k = 0; k < l->n; k++)
			if (pat_wild_match(&l->v[k].val->wild, s, n)
			    && !credit(m, sc, &l->v[k], val))
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

/* Matchers evaluated per value: numeric, cidr, anything-but, exists:true. s is the typed
 * payload (NULL for a number that is not a finite double), fs the folded string if needed. */
static bool
other_hit(const struct pat_val *pv, const struct pat_fval *v, const char *s, size_t n,
          const char *fs, size_t fl)
{
	switch (pv->kind) {
	case PK_EXISTS: return true;
	case PK_NUMERIC:
		return v->type == PAT_T_NUMBER && v->num_ok && pat_numeric_match(pv, v->num);
	case PK_CIDR: return v->type == PAT_T_STRING && pat_cidr_match(pv, s, n);
	case PK_ANYBUT:
		if (v->type == PAT_T_NUMBER && !s)
			return true; /* a number we cannot represent equals no listed value */
		return pat_anybut_match(pv, v->type, s, n, fs, fl);
	default: return false;
	}
}

static bool
match_value(const pat_machine_t *m, struct pat_scratch *sc, uint32_t vi)
{
	const struct pat_fval *v = &sc->flat.vals[vi];
	const struct field *f = m->fields[v->field];
	const char *s = pat_fval_ptr(&sc->flat, sc->ev, v);
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
		if (e && !credit_list(m, sc, &e->t, vi))
			return false;
	}
	const char *fs = NULL;
	size_t fl = 0;
	if (v->type == PAT_T_STRING) {
		if (f->fold_users) {
			if (!pat_fold(s, n, &sc->fold, &fl, &sc->cap_fold))
				return false;
			fs = sc->fold;
			if (f->eic.n) {
				const struct pat_hent *e
				        = pat_hmap_get(&f->eic, PAT_T_STRING, fs, fl,
				                       pat_hash(PAT_T_STRING, fs, fl));
				if (e && !credit_list(m, sc, &e->t, vi))
					return false;
			}
			if (!walk_trie(m, sc, &f->pre_eic, fs, fl, false, vi)
			    || !walk_trie(m, sc, &f->suf_eic, fs, fl, true, vi))
				return false;
		}
		if (!walk_trie(m, sc, &f->pre, s, n, false, vi)
		    || !walk_trie(m, sc, &f->suf, s, n, true, vi)
		    || !walk_wild(m, sc, &f->wild, s, n, vi))
			return false;
	}
	for (uint32_t i = 0; i < f->others.n; i++) {
		const struct pat_target *t = &f->others.v[i];
		if (other_hit(t->val, v, s, n, fs, fl) && !credit(m, sc, t, vi))
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
field_has_values(const struct pat_scratch *sc, int32_t field)
{
	return sc->fgen[field] == sc->gen && sc->fhead[field] >= 0;
}

/* Does event value vi pass one of the slot's alternatives? 1 yes, 0 no, -1 out of memory.
 * The same tests the indexes make, one value at a time. */
static int
value_passes(struct pat_scratch *sc, const struct pat_slot *sl, uint32_t vi)
{
	const struct pat_fval *v = &sc->flat.vals[vi];
	const char *s = pat_fval_ptr(&sc->flat, sc->ev, v);
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
	bool str = v->type == PAT_T_STRING;
	const char *fs = NULL;
	size_t fl = 0;
	for (size_t i = 0; i < sl->nvals; i++) {
		const struct pat_val *pv = &sl->vals[i];
		const char *k = pv->key;
		size_t kl = pv->key_len;
		if (str && !fs && needs_fold(pv)) {
			if (!pat_fold(s, n, &sc->fold, &fl, &sc->cap_fold))
				return -1;
			fs = sc->fold;
		}
		bool hit;
		switch (pv->kind) {
		case PK_EXACT: /* typed key: type byte, then payload */
			hit = s && kl == n + 1 && k[0] == v->type && memcmp(k + 1, s, n) == 0;
			break;
		case PK_EIC: hit = str && kl == fl && memcmp(k, fs, fl) == 0; break;
		case PK_PREFIX: hit = str && n >= kl && memcmp(s, k, kl) == 0; break;
		case PK_PREFIX_EIC: hit = str && fl >= kl && memcmp(fs, k, kl) == 0; break;
		case PK_SUFFIX: hit = str && n >= kl && memcmp(s + n - kl, k, kl) == 0; break;
		case PK_SUFFIX_EIC:
			hit = str && fl >= kl && memcmp(fs + fl - kl, k, kl) == 0;
			break;
		case PK_WILDCARD: hit = str && pat_wild_match(&pv->wild, s, n); break;
		default: hit = other_hit(pv, v, s, n, fs, fl); break;
		}
		if (hit)
			return 1;
	}
	return 0;
}

/*
 * A candidate's slots other than its anchor, checked against the event's values of their
 * fields; the values that pass are recorded as the indexes would have. 0 when a required
 * slot has none, -1 when out of memory. Cost: the values of the subrule's fields. Kept out
 * of line: inlined into run(), it made the no-candidate path ~10 % slower (code layout).
 */
__attribute__((noinline)) static int
verify(const pat_machine_t *m, struct pat_scratch *sc, uint32_t sid)
{
	const struct sub *sb = &m->subs[sid];
	if (!sub_touch(m, sc, sid))
		return -1;
	for (uint32_t s = 0; s < sb->nslots; s++) {
		if (s == sb->anchor)
			continue;
		int32_t f = sb->slots[s].field;
		bool any = false;
		if (field_has_values(sc, f))
			for (int32_t w = sc->fhead[f]; w >= 0; w = sc->vnext[w]) {
				int r = value_passes(sc, sb->slots[s].ps, (uint32_t)w);
				if (r < 0 || (r && !add_hit(sc, sid, s, (uint32_t)w)))
					return -1;
				any |= r > 0;
			}
		if (!any && !sb->slots[s].absent_ok)
			return 0;
	}
	return 1;
}

/* Backtracking over one credited value per slot of order[] (or absence for exists:false). */
static bool
choose(struct pat_scratch *sc, const struct sub *sb, const struct sub_scr *ss,
       const uint32_t *order, uint32_t k, uint32_t n)
{
	int32_t *ch = sc->chosen;
	if (k == n) {
		for (uint32_t x = 0; x < n; x++) {
			uint32_t s = order[x];
			if (ch[s] >= 0)
				continue;
			int32_t f = sb->slots[s].field;
			if (!field_has_values(sc, f))
				continue;
			for (int32_t w = sc->fhead[f]; w >= 0; w = sc->vnext[w]) {
				bool ok = true;
				for (uint32_t y = 0; y < n && ok; y++)
					if (ch[order[y]] >= 0
					    && !consistent(&sc->flat, (uint32_t)w,
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
	for (int32_t h = ss->gen == sc->gen ? sc->heads[ss->heads + i] : -1; h >= 0;
	     h = sc->hits[h].next) {
		uint32_t val = sc->hits[h].val;
		/* credits arrive in event order, so the elements of one primitive array (or
		 * one object) are neighbours here: trying one of them is trying them all */
		if (tried >= 0 && same_membership(&sc->flat, val, (uint32_t)tried))
			continue;
		tried = (int32_t)val;
		bool ok = true;
		for (uint32_t y = 0; y < k && ok; y++)
			if (ch[order[y]] >= 0
			    && !consistent(&sc->flat, val, (uint32_t)ch[order[y]]))
				ok = false;
		if (!ok)
			continue;
		ch[i] = (int32_t)val;
		if (choose(sc, sb, ss, order, k + 1, n))
			return true;
	}
	if (sb->slots[i].absent_ok) {
		ch[i] = -1;
		return choose(sc, sb, ss, order, k + 1, n);
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
sub_matches(const pat_machine_t *m, struct pat_scratch *sc, uint32_t sid)
{
	const struct sub *sb = &m->subs[sid];
	const struct sub_scr *ss = &sc->sscr[sid];
	bool touched = ss->gen == sc->gen;
	if (!sc->flat.has_obj_arrays) {
		/* no arrays of objects: every credited value is consistent with every other */
		for (uint32_t s = 0; s < sb->nslots; s++) {
			if (!sb->slots[s].absent_ok)
				continue;
			if (touched && sc->heads[ss->heads + s] >= 0)
				continue;
			if (field_has_values(sc, sb->slots[s].field))
				return false;
		}
		return true;
	}
	uint32_t *grp = sc->group, *order = sc->order, n = sb->nslots;
	bool mixed = false;
	for (uint32_t s = 0; s < n; s++) {
		uint32_t g = ROOT_FREE;
		for (int32_t h = touched ? sc->heads[ss->heads + s] : -1; h >= 0;
		     h = sc->hits[h].next)
			g = root_merge(&sc->flat, g, sc->hits[h].val);
		int32_t f = sb->slots[s].field;
		if (sb->slots[s].absent_ok && field_has_values(sc, f))
			for (int32_t w = sc->fhead[f]; w >= 0; w = sc->vnext[w])
				g = root_merge(&sc->flat, g, (uint32_t)w);
		grp[s] = g;
		mixed |= g == ROOT_MIXED;
	}
	if (mixed) {
		for (uint32_t s = 0; s < n; s++)
			order[s] = s;
		return choose(sc, sb, ss, order, 0, n);
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
		if (!choose(sc, sb, ss, order, 0, k))
			return false;
	}
	return true;
}

static sl_err
run(const pat_machine_t *m, struct pat_scratch *sc, const char *event, size_t len, pat_match_fn fn,
    void *ctx, struct sl_error *err)
{
	/* the machine may have grown since this scratch was last used */
	if (sc->cap_scr < m->nsubs) {
		size_t old = sc->cap_scr;
		if (!grow((void **)&sc->sscr, &sc->cap_scr, m->nsubs, sizeof *sc->sscr))
			goto nomem;
		memset(sc->sscr + old, 0, (sc->cap_scr - old) * sizeof *sc->sscr);
	}
	if (sc->cap_rscr < m->nrules) {
		size_t old = sc->cap_rscr;
		if (!grow((void **)&sc->rgen, &sc->cap_rscr, m->nrules, sizeof *sc->rgen))
			goto nomem;
		memset(sc->rgen + old, 0, (sc->cap_rscr - old) * sizeof *sc->rgen);
	}
	if (++sc->gen == 0) {
		/* stamps wrapped: forget every old one */
		for (size_t i = 0; i < sc->cap_scr; i++)
			sc->sscr[i].gen = 0;
		memset(sc->rgen, 0, sc->cap_rscr * sizeof *sc->rgen);
		if (sc->fgen)
			memset(sc->fgen, 0, sc->cap_fscr * sizeof *sc->fgen);
		sc->gen = 1;
	}
	sc->nheads = sc->nhits = sc->ncands = 0;
	sc->ev = event;
	/* the lookup only reads the machine */
	sl_err rc = pat_flatten(&sc->flat, event, len, lookup_path, (void *)m, err);
	if (rc)
		return rc;
	size_t nv = sc->flat.nvals;
	if (!grow((void **)&sc->vnext, &sc->cap_vnext, nv + 1, sizeof *sc->vnext))
		goto nomem;
	if (sc->cap_fscr < m->nfields) {
		size_t c = sc->cap_fscr;
		if (!grow((void **)&sc->fgen, &c, m->nfields, sizeof *sc->fgen))
			goto nomem;
		c = sc->cap_fscr;
		if (!grow((void **)&sc->fhead, &c, m->nfields, sizeof *sc->fhead))
			goto nomem;
		memset(sc->fgen + sc->cap_fscr, 0, (c - sc->cap_fscr) * sizeof *sc->fgen);
		sc->cap_fscr = c;
	}
	for (size_t i = nv; i-- > 0;) {
		int32_t f = sc->flat.vals[i].field;
		if (sc->fgen[f] != sc->gen) {
			sc->fgen[f] = sc->gen;
			sc->fhead[f] = -1;
		}
		sc->vnext[i] = sc->fhead[f];
		sc->fhead[f] = (int32_t)i;
	}
	for (size_t i = 0; i < nv; i++)
		if (!match_value(m, sc, (uint32_t)i))
			goto nomem;
	size_t maxslots = PAT_MAX_RULE_FIELDS;
	if (!grow((void **)&sc->chosen, &sc->cap_chosen, maxslots, sizeof *sc->chosen))
		goto nomem;
	for (size_t pass = 0; pass < 2; pass++) {
		size_t n = pass == 0 ? sc->ncands : m->nalways;
		for (size_t i = 0; i < n; i++) {
			uint32_t sid = pass == 0 ? sc->cands[i] : m->always[i];
			const struct sub *sb = &m->subs[sid];
			if (sc->rgen[sb->rule] == sc->gen)
				continue;
			int ok = verify(m, sc, sid);
			if (ok < 0)
				goto nomem;
			if (!ok || !sub_matches(m, sc, sid))
				continue;
			sc->rgen[sb->rule] = sc->gen;
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
	return run(m, &m->own, event, len, fn, ctx, err);
}

sl_err
pat_scratch_new(pat_scratch_t **out, struct sl_error *err)
{
	*out = SL_NEW(pat_scratch_t);
	if (!*out)
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory creating match scratch");
	return SL_OK;
}

void
pat_scratch_free(pat_scratch_t *sc)
{
	if (!sc)
		return;
	scratch_clear(sc);
	sl_free(sc);
}

sl_err
pat_machine_match_with(const pat_machine_t *m, pat_scratch_t *sc, const char *event, size_t len,
                       pat_match_fn fn, void *ctx, struct sl_error *err)
{
	return run(m, sc, event, len, fn, ctx, err);
}

size_t
pat_machine_candidates(const pat_machine_t *m)
{
	return m->own.ncands;
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
	sl_err rc = run(m, &m->own, event, len, collect_id, &c, err);
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

static size_t
scratch_bytes(const struct pat_scratch *sc)
{
	return sc->cap_scr * sizeof *sc->sscr + sc->cap_rscr * sizeof *sc->rgen
	        + sc->cap_heads * sizeof *sc->heads + sc->cap_hits * sizeof *sc->hits
	        + sc->cap_cands * sizeof *sc->cands
	        + sc->cap_fscr * (sizeof *sc->fgen + sizeof *sc->fhead)
	        + sc->cap_vnext * sizeof *sc->vnext + sc->cap_fold
	        + sc->cap_chosen * sizeof *sc->chosen + sc->flat.cap_vals * sizeof *sc->flat.vals
	        + sc->flat.cap_mem * sizeof *sc->flat.mem + sc->flat.cap_dec + sc->flat.cap_path
	        + sc->flat.cap_stack * sizeof *sc->flat.stack;
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
	b += m->cap_subs * sizeof *m->subs + m->cap_free_subs * sizeof *m->free_subs;
	for (uint32_t i = 0; i < m->nsubs; i++)
		b += m->subs[i].nslots * sizeof *m->subs[i].slots;
	b += m->cap_rules * sizeof *m->rules + m->cap_free_rules * sizeof *m->free_rules;
	for (uint32_t i = 0; i < m->nrules; i++) {
		const struct rule *r = &m->rules[i];
		if (!r->live)
			continue;
		b += strlen(r->name) + 1 + r->nsubs * sizeof *r->subs + rule_bytes(r->pr);
	}
	b += m->cap_always * sizeof *m->always;
	b += scratch_bytes(&m->own);
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
