/*
 * pat_index.c - hash map and trie used by the pattern machine.
 */
#include <string.h>

#include "bus/pat_index.h"
#include "common/sl_alloc.h"

bool
pat_tlist_add(struct pat_tlist *l, uint32_t sub, uint32_t slot, const struct pat_val *val)
{
	if (l->n == l->cap) {
		uint32_t nc = l->cap ? l->cap * 2 : 2;
		struct pat_target *nv = sl_reallocarray(l->v, nc, sizeof *nv);
		if (!nv)
			return false;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = (struct pat_target) { sub, slot, val };
	return true;
}

void
pat_tlist_remove_sub(struct pat_tlist *l, uint32_t sub)
{
	uint32_t o = 0;
	for (uint32_t i = 0; i < l->n; i++)
		if (l->v[i].sub != sub)
			l->v[o++] = l->v[i];
	l->n = o;
	if (o == 0) {
		sl_free(l->v);
		l->v = NULL;
		l->cap = 0;
	}
}

void
pat_tlist_free(struct pat_tlist *l)
{
	sl_free(l->v);
	memset(l, 0, sizeof *l);
}

uint64_t
pat_hash(char type, const char *s, size_t n)
{
	/* FNV-1a, 64 bit: short keys, no alignment needs */
	uint64_t h = 0xcbf29ce484222325ULL;
	if (type) {
		h ^= (unsigned char)type;
		h *= 0x100000001b3ULL;
	}
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static bool
key_eq(const struct pat_hent *e, char type, const char *s, size_t n)
{
	if (type)
		return e->klen == n + 1 && e->key[0] == type && memcmp(e->key + 1, s, n) == 0;
	return e->klen == n && memcmp(e->key, s, n) == 0;
}

struct pat_hent *
pat_hmap_get(const struct pat_hmap *m, char type, const char *s, size_t n, uint64_t h)
{
	if (!m->nb)
		return NULL;
	size_t mask = m->nb - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct pat_hslot *sl = &m->b[i];
		if (!sl->e)
			return NULL;
		if (sl->hash == h && key_eq(sl->e, type, s, n))
			return sl->e;
	}
}

static void
slot_insert(struct pat_hslot *b, size_t nb, struct pat_hent *e)
{
	size_t mask = nb - 1, i = e->hash & mask;
	while (b[i].e)
		i = (i + 1) & mask;
	b[i].hash = e->hash;
	b[i].e = e;
}

static bool
rehash(struct pat_hmap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 16;
	struct pat_hslot *b = sl_calloc(nb, sizeof *b);
	if (!b)
		return false;
	for (size_t i = 0; i < m->nb; i++)
		if (m->b[i].e)
			slot_insert(b, nb, m->b[i].e);
	sl_free(m->b);
	m->b = b;
	m->nb = nb;
	return true;
}

struct pat_hent *
pat_hmap_put(struct pat_hmap *m, char type, const char *s, size_t n)
{
	uint64_t h = pat_hash(type, s, n);
	struct pat_hent *e = pat_hmap_get(m, type, s, n, h);
	if (e)
		return e;
	/* at most half full keeps probe runs short */
	if ((m->n + 1) * 2 > m->nb && !rehash(m))
		return NULL;
	size_t kl = n + (type ? 1 : 0);
	e = sl_calloc(1, sizeof *e + kl + 1);
	if (!e)
		return NULL;
	e->hash = h;
	e->ival = -1;
	e->klen = (uint32_t)kl;
	if (type)
		e->key[0] = type;
	memcpy(e->key + (type ? 1 : 0), s, n);
	slot_insert(m->b, m->nb, e);
	m->n++;
	return e;
}

void
pat_hmap_del(struct pat_hmap *m, struct pat_hent *e)
{
	size_t mask = m->nb - 1, i = e->hash & mask;
	while (m->b[i].e && m->b[i].e != e)
		i = (i + 1) & mask;
	if (m->b[i].e == e) {
		/* backward-shift deletion: pull later members of the run into the hole */
		size_t hole = i;
		for (size_t j = (i + 1) & mask; m->b[j].e; j = (j + 1) & mask) {
			size_t home = m->b[j].hash & mask;
			bool movable = hole <= j ? (home <= hole || home > j)
			                         : (home <= hole && home > j);
			if (movable) {
				m->b[hole] = m->b[j];
				hole = j;
			}
		}
		m->b[hole].e = NULL;
		m->b[hole].hash = 0;
		m->n--;
	}
	pat_tlist_free(&e->t);
	sl_free(e);
}

void
pat_hmap_free(struct pat_hmap *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		if (m->b[i].e) {
			pat_tlist_free(&m->b[i].e->t);
			sl_free(m->b[i].e);
		}
	}
	sl_free(m->b);
	memset(m, 0, sizeof *m);
}

size_t
pat_hmap_bytes(const struct pat_hmap *m)
{
	size_t b = m->nb * sizeof *m->b;
	for (size_t i = 0; i < m->nb; i++) {
		const struct pat_hent *e = m->b[i].e;
		if (e)
			b += sizeof *e + e->klen + 1 + e->t.cap * sizeof *e->t.v;
	}
	return b;
}

static uint32_t
trie_new_node(struct pat_trie *t, uint8_t byte)
{
	if (t->n == t->cap) {
		uint32_t nc = t->cap ? t->cap * 2 : 8;
		struct pat_tnode *nv = sl_reallocarray(t->v, nc, sizeof *nv);
		if (!nv)
			return UINT32_MAX;
		t->v = nv;
		t->cap = nc;
	}
	memset(&t->v[t->n], 0, sizeof t->v[t->n]);
	t->v[t->n].byte = byte;
	return t->n++;
}

uint32_t
pat_trie_node(struct pat_trie *t, const char *key, size_t n, bool rev, bool create)
{
	if (t->n == 0) {
		if (!create || trie_new_node(t, 0) == UINT32_MAX)
			return UINT32_MAX;
	}
	uint32_t cur = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)key[rev ? n - 1 - i : i];
		uint32_t ch = t->v[cur].child;
		while (ch && t->v[ch].byte != c)
			ch = t->v[ch].sibling;
		if (!ch) {
			if (!create)
				return UINT32_MAX;
			ch = trie_new_node(t, c);
			if (ch == UINT32_MAX)
				return UINT32_MAX;
			t->v[ch].sibling = t->v[cur].child;
			t->v[cur].child = ch;
		}
		cur = ch;
	}
	return cur;
}

void
pat_trie_free(struct pat_trie *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		pat_tlist_free(&t->v[i].t);
	sl_free(t->v);
	memset(t, 0, sizeof *t);
}

size_t
pat_trie_bytes(const struct pat_trie *t)
{
	size_t b = t->cap * sizeof *t->v;
	for (uint32_t i = 0; i < t->n; i++)
		b += t->v[i].t.cap * sizeof *t->v[i].t.v;
	return b;
}
