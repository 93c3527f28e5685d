/*
 * pat_index.h - the machine's building blocks: a byte-keyed hash map and a byte trie,
 * both holding target lists ((subrule, slot) pairs to credit when a value hits).
 */
#ifndef SLUICE_BUS_PAT_INDEX_H
#define SLUICE_BUS_PAT_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/pat_internal.h"

struct pat_target {
	uint32_t sub;
	uint32_t slot;
	const struct pat_val *val; /* for matchers evaluated per value */
};

struct pat_tlist {
	uint32_t n, cap;
	struct pat_target *v;
};

bool pat_tlist_add(struct pat_tlist *l, uint32_t sub, uint32_t slot, const struct pat_val *val);
/* Drops every target of sub. */
void pat_tlist_remove_sub(struct pat_tlist *l, uint32_t sub);
void pat_tlist_free(struct pat_tlist *l);

struct pat_hent {
	uint64_t hash;
	struct pat_tlist t;
	int32_t ival;
	uint32_t leaf_refs, prefix_refs;
	uint32_t klen;
	char key[]; /* type byte (when typed) + payload */
};

/* Open addressing, linear probing; the hash sits in the slot so a miss costs one probe
 * run and no entry is touched unless its hash matches. */
struct pat_hslot {
	uint64_t hash;
	struct pat_hent *e; /* NULL: empty */
};

struct pat_hmap {
	struct pat_hslot *b;
	size_t nb, n;
};

/* type 0: untyped key; otherwise the key is type followed by payload. */
uint64_t pat_hash(char type, const char *s, size_t n);
struct pat_hent *pat_hmap_get(const struct pat_hmap *m, char type, const char *s, size_t n,
                              uint64_t h);
/* Finds or inserts (zeroed, ival -1); NULL on allocation failure. */
struct pat_hent *pat_hmap_put(struct pat_hmap *m, char type, const char *s, size_t n);
void pat_hmap_del(struct pat_hmap *m, struct pat_hent *e);
void pat_hmap_free(struct pat_hmap *m);
size_t pat_hmap_bytes(const struct pat_hmap *m);

struct pat_tnode {
	uint32_t child, sibling; /* 0: none (node 0 is the root) */
	uint8_t byte;
	struct pat_tlist t;
};

struct pat_trie {
	struct pat_tnode *v;
	uint32_t n, cap;
	size_t ntargets;
};

/* Node for key (reversed when rev), created when create; UINT32_MAX when absent/no memory. */
uint32_t pat_trie_node(struct pat_trie *t, const char *key, size_t n, bool rev, bool create);
void pat_trie_free(struct pat_trie *t);
size_t pat_trie_bytes(const struct pat_trie *t);

#endif
