/*
 * pat_fold.c - Unicode full case folding for equals-ignore-case ("STRASSE" == "straße").
 * The table is generated at build time (gen_fold.py); ASCII is folded inline.
 */
#include <string.h>

#include "bus/pat_internal.h"
#include "common/sl_alloc.h"

struct pat_fold_row {
	uint32_t cp;
	uint8_t len;
	char s[7];
};
extern const struct pat_fold_row pat_fold_rows[];
extern const size_t pat_fold_nrows;

static const struct pat_fold_row *
fold_find(uint32_t cp)
{
	size_t lo = 0, hi = pat_fold_nrows;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pat_fold_rows[mid].cp == cp)
			return &pat_fold_rows[mid];
		if (pat_fold_rows[mid].cp < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Decodes one UTF-8 sequence; returns its length, or 0 when invalid. */
static size_t
utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t len;
	uint32_t v, min;
	if ((c & 0xE0) == 0xC0) {
		len = 2, v = c & 0x1F, min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3, v = c & 0x0F, min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return len;
}

size_t
pat_utf8_chars(const char *s, size_t n)
{
	size_t count = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l = utf8_decode((const unsigned char *)s + i, n - i, &cp);
		i += l ? l : 1;
		count++;
	}
	return count;
}

static bool
grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 64;
	while (nc < need)
		nc *= 2;
	char *nb = sl_realloc(*buf, nc);
	if (!nb)
		return false;
	*buf = nb;
	*cap = nc;
	return true;
}

bool
pat_fold(const char *s, size_t n, char **buf, size_t *len, size_t *cap)
{
	/* a fold grows a code point to at most 3 code points of 3 bytes: 9x is always enough */
	if (!grow(buf, cap, *len + n * 3 + 1))
		return false;
	char *o = *buf + *len;
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		if (c < 0x80) {
			*o++ = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
			i++;
			continue;
		}
		uint32_t cp;
		size_t l = utf8_decode(u + i, n - i, &cp);
		const struct pat_fold_row *row = l ? fold_find(cp) : NULL;
		if (row && row->len > l) {
			size_t used = (size_t)(o - *buf);
			if (!grow(buf, cap, used + (n - i) * 3 + row->len + 1))
				return false;
			o = *buf + used;
		}
		if (row) {
			memcpy(o, row->s, row->len);
			o += row->len;
		} else {
			memcpy(o, u + i, l ? l : 1);
			o += l ? l : 1;
		}
		i += l ? l : 1;
	}
	*len = (size_t)(o - *buf);
	return true;
}
