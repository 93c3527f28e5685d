#include <criterion/criterion.h>
#include <openssl/sha.h>
#include <string.h>

#include "store/store.h"

static int
cmp_keys(const struct store_key *a, const struct store_key *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->buf, b->buf, n);
	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

/* Tuples given in ascending order must encode to ascending byte strings. */
static void
assert_ascending(struct store_key *keys, int n)
{
	for (int i = 1; i < n; i++)
		cr_assert_lt(cmp_keys(&keys[i - 1], &keys[i]), 0, "key %d !< key %d", i - 1, i);
}

Test(store_key, u64_and_u32_sort_numerically_and_round_trip)
{
	const uint64_t v[]
	        = { 0, 1, 255, 256, 65535, 1ull << 32, (1ull << 63) - 1, 1ull << 63, UINT64_MAX };
	struct store_key k[9];
	for (int i = 0; i < 9; i++) {
		store_key_init(&k[i]);
		store_key_u64(&k[i], v[i]);
		cr_assert_eq(k[i].len, 8);
		cr_assert_eq(store_decode_u64(k[i].buf), v[i]);
	}
	assert_ascending(k, 9);
	const uint32_t w[] = { 0, 1, 256, 1u << 31, UINT32_MAX };
	struct store_key q[5];
	for (int i = 0; i < 5; i++) {
		store_key_init(&q[i]);
		store_key_u32(&q[i], w[i]);
		cr_assert_eq(store_decode_u32(q[i].buf), w[i]);
	}
	assert_ascending(q, 5);
}

Test(store_key, i64_negatives_sort_first)
{
	const int64_t v[] = { INT64_MIN, -1000000, -256, -1, 0, 1, 255, INT64_MAX };
	struct store_key k[8];
	for (int i = 0; i < 8; i++) {
		store_key_init(&k[i]);
		store_key_i64(&k[i], v[i]);
		cr_assert_eq(store_decode_i64(k[i].buf), v[i]);
	}
	assert_ascending(k, 8);
}

Test(store_key, string_tuples_sort_as_tuples)
{
	/* ("a", 9) < ("a", 10) < ("ab", 0) < ("b", 0): the separator ends "a" before "ab" */
	struct store_key k[4];
	const char *s[] = { "a", "a", "ab", "b" };
	const uint64_t n[] = { 9, 10, 0, 0 };
	for (int i = 0; i < 4; i++) {
		store_key_init(&k[i]);
		store_key_str(&k[i], s[i]);
		store_key_u64(&k[i], n[i]);
	}
	assert_ascending(k, 4);
	cr_assert_eq(k[0].len, 2 + 8);
	cr_assert_eq(k[0].buf[1], 0);
	/* mixed tuple: (bus, i64 time, seq) */
	struct store_key m[3];
	const int64_t t[] = { -5, -5, 7 };
	const uint32_t q[] = { 1, 2, 0 };
	for (int i = 0; i < 3; i++) {
		store_key_init(&m[i]);
		store_key_str(&m[i], "default");
		store_key_i64(&m[i], t[i]);
		store_key_u32(&m[i], q[i]);
	}
	assert_ascending(m, 3);
}

Test(store_key, long_strings_are_hashed)
{
	char a[300], b[300];
	memset(a, 'x', sizeof(a) - 1);
	a[sizeof(a) - 1] = 0;
	memcpy(b, a, sizeof(b));
	b[250] = 'y';
	struct store_key ka, kb, ka2;
	store_key_init(&ka);
	store_key_str(&ka, a);
	store_key_init(&kb);
	store_key_str(&kb, b);
	store_key_init(&ka2);
	store_key_str(&ka2, a);
	cr_assert_eq(ka.len, 1 + 32);
	cr_assert_eq(ka.buf[0], 0xFF);
	unsigned char d[32];
	SHA256((const unsigned char *)a, strlen(a), d);
	cr_assert_eq(memcmp(ka.buf + 1, d, 32), 0);
	cr_assert_eq(cmp_keys(&ka, &ka2), 0);
	cr_assert_neq(cmp_keys(&ka, &kb), 0);
	/* exactly 200 bytes is kept verbatim, 201 is hashed */
	char c[202];
	memset(c, 'z', 201);
	c[201] = 0;
	struct store_key k201;
	store_key_init(&k201);
	store_key_str(&k201, c);
	cr_assert_eq(k201.len, 33);
	c[200] = 0;
	struct store_key k200;
	store_key_init(&k200);
	store_key_str(&k200, c);
	cr_assert_eq(k200.len, 201);
	cr_assert_eq(k200.buf[200], 0);
}

Test(store_key, overflow_poisons_the_key)
{
	struct store_key k;
	store_key_init(&k);
	unsigned char raw[STORE_MAX_KEY];
	memset(raw, 1, sizeof(raw));
	store_key_raw(&k, raw, STORE_MAX_KEY - 4);
	store_key_u32(&k, 7);
	cr_assert_eq(k.len, STORE_MAX_KEY, "an exact fit is fine");
	cr_assert_not(k.overflow);
	store_key_u32(&k, 8);
	cr_assert(k.overflow);
	cr_assert_eq(k.len, 0);
	store_key_u64(&k, 1);
	cr_assert_eq(k.len, 0, "stays poisoned");
	store_key_init(&k);
	cr_assert_not(k.overflow);
	for (int i = 0; i < 4; i++)
		store_key_str(&k,
		              "a 200-byte-or-shorter component repeated to overflow the key "
		              "a 200-byte-or-shorter component repeated to overflow the key "
		              "a 200-byte-or-shorter component");
	cr_assert(k.overflow);
}
