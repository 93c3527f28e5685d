/*
 * store_key.c - composite keys that sort as tuples under LMDB's byte-wise comparison.
 */
#include "store/store.h"

#include <openssl/sha.h>
#include <string.h>

#define STORE_KEY_STR_MAX 200

void
store_key_init(struct store_key *k)
{
	k->len = 0;
	k->overflow = false;
}

/* A component that does not fit poisons the key: len 0 makes put/get/del and prefix seeks
 * refuse it, so a truncated key can never alias another one. */
static bool
room(struct store_key *k, size_t n)
{
	if (k->overflow)
		return false;
	if (n > STORE_MAX_KEY - k->len) {
		k->overflow = true;
		k->len = 0;
		return false;
	}
	return true;
}

void
store_key_u64(struct store_key *k, uint64_t v)
{
	if (!room(k, 8))
		return;
	for (int i = 7; i >= 0; i--) {
		k->buf[k->len + (size_t)i] = (unsigned char)v;
		v >>= 8;
	}
	k->len += 8;
}

void
store_key_u32(struct store_key *k, uint32_t v)
{
	if (!room(k, 4))
		return;
	for (int i = 3; i >= 0; i--) {
		k->buf[k->len + (size_t)i] = (unsigned char)v;
		v >>= 8;
	}
	k->len += 4;
}

void
store_key_i64(struct store_key *k, int64_t v)
{
	store_key_u64(k, (uint64_t)v ^ ((uint64_t)1 << 63));
}

void
store_key_str(struct store_key *k, const char *s)
{
	size_t n = strlen(s);
	if (n > STORE_KEY_STR_MAX) {
		if (!room(k, 1 + SHA256_DIGEST_LENGTH))
			return;
		k->buf[k->len] = 0xFF;
		SHA256((const unsigned char *)s, n, k->buf + k->len + 1);
		k->len += 1 + SHA256_DIGEST_LENGTH;
		return;
	}
	if (!room(k, n + 1))
		return;
	memcpy(k->buf + k->len, s, n);
	k->buf[k->len + n] = 0;
	k->len += n + 1;
}

void
store_key_raw(struct store_key *k, const void *p, size_t n)
{
	if (!room(k, n))
		return;
	if (n)
		memcpy(k->buf + k->len, p, n);
	k->len += n;
}

uint64_t
store_decode_u64(const void *p)
{
	const unsigned char *b = p;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

uint32_t
store_decode_u32(const void *p)
{
	const unsigned char *b = p;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

int64_t
store_decode_i64(const void *p)
{
	return (int64_t)(store_decode_u64(p) ^ ((uint64_t)1 << 63));
}
