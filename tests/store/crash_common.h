/*
 * crash_common.h - what the crash writer writes, so the checker can recompute it.
 * Key: be32(round) be32(seq); rolled-back keys have the top bit of seq set and must never
 * be found. Value: 16..2063 pseudo-random bytes derived from (round, seq).
 */
#ifndef SLUICE_TESTS_STORE_CRASH_COMMON_H
#define SLUICE_TESTS_STORE_CRASH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define CRASH_ROLLBACK_BIT 0x80000000u
#define CRASH_VAL_MAX      2064

static inline uint64_t
crash_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static inline void
crash_key(unsigned char k[8], uint32_t round, uint32_t seq)
{
	for (int i = 0; i < 4; i++) {
		k[i] = (unsigned char)(round >> (24 - 8 * i));
		k[4 + i] = (unsigned char)(seq >> (24 - 8 * i));
	}
}

/* Fills v (CRASH_VAL_MAX bytes) and returns the length. */
static inline size_t
crash_val(unsigned char *v, uint32_t round, uint32_t seq)
{
	uint64_t s = crash_mix(((uint64_t)round << 32) | seq);
	size_t len = 16 + (size_t)(s % (CRASH_VAL_MAX - 16));
	for (size_t i = 0; i < len; i++) {
		s = crash_mix(s + i);
		v[i] = (unsigned char)s;
	}
	return len;
}

#endif
