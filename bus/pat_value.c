/*
 * pat_value.c - value matchers that are not table lookups: wildcard, numeric ranges,
 * cidr, anything-but; and the number canonicalisation shared by patterns and events.
 */
#include <arpa/inet.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bus/pat_internal.h"
#include "common/sl_alloc.h"

#define WILD_TOO_COMPLEX                                                                           \
	"Rule is too complex - try using fewer wildcard characters or fewer repeating "            \
	"character sequences after a wildcard character"
/* Largest accepted score. AWS rejects the colon-separated five-star ARN pattern of the
 * corpus and accepts the repeated "/dir" one; docs/PATTERNS.md lists the scores. */
#define WILD_MAX_COMPLEXITY 8

void
pat_wild_free(struct pat_wild *w)
{
	for (size_t i = 0; w->parts && i < w->nparts; i++)
		sl_free(w->parts[i]);
	sl_free(w->parts);
	sl_free(w->lens);
	memset(w, 0, sizeof *w);
}

/* ---- complexity: subset construction over the pattern's own alphabet ----
 * A set of live positions is kept as a short sorted array; only the bytes that some live
 * position can consume (plus one "any other byte") lead anywhere different, so each set
 * costs a handful of steps. Exploration stops past WILD_SCORE_LIMIT live positions or
 * 8 sets per pattern position, so even a 4,096-character pattern is judged quickly. */

#define WILD_SCORE_LIMIT 16

struct wset {
	uint16_t n;
	uint16_t pos[WILD_SCORE_LIMIT + 2];
};

/* Adds p (and, when p is a star, p + 1: a star may match nothing) keeping order. */
static void
wset_add(struct wset *w, const int *tok, size_t nt, size_t p)
{
	for (;;) {
		uint16_t k = 0;
		while (k < w->n && w->pos[k] < p)
			k++;
		if (k < w->n && w->pos[k] == p)
			return;
		if (w->n > WILD_SCORE_LIMIT)
			return; /* already over the limit: the caller stops */
		memmove(&w->pos[k + 1], &w->pos[k], (size_t)(w->n - k) * sizeof w->pos[0]);
		w->pos[k] = (uint16_t)p;
		w->n++;
		if (p < nt && tok[p] < 0)
			p++;
		else
			return;
	}
}

static size_t
wset_hash(const struct wset *w)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (uint16_t i = 0; i < w->n; i++)
		h = (h ^ w->pos[i]) * 0x100000001b3ULL;
	return (size_t)h;
}

int
pat_wild_complexity(const struct pat_wild *w)
{
	size_t nt = 0;
	for (size_t i = 0; i < w->nparts; i++)
		nt += w->lens[i] + (i + 1 < w->nparts);
	if (nt >= UINT16_MAX)
		return 1 << 30;
	/* a pattern without stars walks through nt + 1 sets: allow a few per position */
	size_t maxsets = 8 * (nt + 2), nslots = 1;
	while (nslots < maxsets * 2)
		nslots *= 2;
	int *tok = sl_calloc(nt + 1, sizeof *tok);
	struct wset *sets = sl_calloc(maxsets, sizeof *sets);
	uint32_t *slots = sl_calloc(nslots, sizeof *slots); /* set index + 1, 0: empty */
	if (!tok || !sets || !slots) {
		sl_free(tok);
		sl_free(sets);
		sl_free(slots);
		return -1;
	}
	size_t k = 0;
	for (size_t i = 0; i < w->nparts; i++) {
		for (size_t j = 0; j < w->lens[i]; j++)
			tok[k++] = (unsigned char)w->parts[i][j];
		if (i + 1 < w->nparts)
			tok[k++] = -1;
	}
	size_t nsets = 1;
	int best = 0;
	wset_add(&sets[0], tok, nt, 0);
	slots[wset_hash(&sets[0]) & (nslots - 1)] = 1;
	for (size_t s = 0; s < nsets; s++) {
		if (sets[s].n > best)
			best = sets[s].n;
		if (best > WILD_SCORE_LIMIT)
			break;
		/* the bytes live positions consume, then -2 for any other byte */
		int alpha[WILD_SCORE_LIMIT + 3], na = 0;
		for (uint16_t x = 0; x < sets[s].n; x++) {
			size_t p = sets[s].pos[x];
			if (p >= nt || tok[p] < 0)
				continue;
			bool dup = false;
			for (int y = 0; y < na && !dup; y++)
				dup = alpha[y] == tok[p];
			if (!dup)
				alpha[na++] = tok[p];
		}
		alpha[na++] = -2;
		for (int a = 0; a < na; a++) {
			struct wset nx = { 0 };
			for (uint16_t x = 0; x < sets[s].n; x++) {
				size_t p = sets[s].pos[x];
				if (p >= nt)
					continue;
				if (tok[p] < 0)
					wset_add(&nx, tok, nt,
					         p); /* a star eats the byte and stays */
				else if (tok[p] == alpha[a])
					wset_add(&nx, tok, nt, p + 1);
			}
			if (nx.n == 0)
				continue;
			size_t h = wset_hash(&nx) & (nslots - 1);
			bool dup = false;
			for (; slots[h]; h = (h + 1) & (nslots - 1)) {
				const struct wset *o = &sets[slots[h] - 1];
				if (o->n == nx.n
				    && memcmp(o->pos, nx.pos, nx.n * sizeof nx.pos[0]) == 0) {
					dup = true;
					break;
				}
			}
			if (dup)
				continue;
			if (nsets == maxsets) {
				best = 1 << 30;
				goto out;
			}
			sets[nsets++] = nx;
			slots[h] = (uint32_t)nsets;
		}
	}
out:
	sl_free(tok);
	sl_free(sets);
	sl_free(slots);
	return best;
}

sl_err
pat_wild_parse(const char *s, size_t n, struct pat_wild *out, struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	size_t stars = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\') {
			if (i + 1 >= n || (s[i + 1] != '*' && s[i + 1] != '\\'))
				return sl_error_set(
				        err, SL_ERR_INVALID_PATTERN,
				        "Event pattern is not valid. Reason: Invalid escape "
				        "character at pos %zu",
				        i);
			i++;
		} else if (s[i] == '*') {
			if (i + 1 < n && s[i + 1] == '*')
				return sl_error_set(
				        err, SL_ERR_INVALID_PATTERN,
				        "Event pattern is not valid. Reason: Consecutive "
				        "wildcard characters at pos %zu",
				        i + 1);
			stars++;
		}
	}
	out->nparts = stars + 1;
	out->parts = sl_calloc(out->nparts, sizeof *out->parts);
	out->lens = sl_calloc(out->nparts, sizeof *out->lens);
	if (!out->parts || !out->lens)
		goto nomem;
	size_t p = 0;
	char *cur = sl_malloc(n + 1);
	if (!cur)
		goto nomem;
	size_t cl = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\') {
			cur[cl++] = s[++i];
		} else if (s[i] == '*') {
			cur[cl] = '\0';
			out->parts[p] = cur;
			out->lens[p++] = cl;
			cur = sl_malloc(n + 1);
			if (!cur)
				goto nomem;
			cl = 0;
		} else {
			cur[cl++] = s[i];
		}
	}
	cur[cl] = '\0';
	out->parts[p] = cur;
	out->lens[p] = cl;
	int score = pat_wild_complexity(out);
	if (score < 0)
		goto nomem;
	if (score > WILD_MAX_COMPLEXITY) {
		pat_wild_free(out);
		return sl_error_set(err, SL_ERR_INVALID_PATTERN,
		                    "Event pattern is not valid. Reason: " WILD_TOO_COMPLEX);
	}
	return SL_OK;
nomem:
	pat_wild_free(out);
	return sl_error_set(err, SL_ERR_NOMEM, "out of memory compiling a wildcard");
}

bool
pat_wild_match(const struct pat_wild *w, const char *s, size_t n)
{
	size_t np = w->nparts;
	if (np == 1)
		return n == w->lens[0] && memcmp(s, w->parts[0], n) == 0;
	size_t head = w->lens[0], tail = w->lens[np - 1];
	if (head + tail > n || memcmp(s, w->parts[0], head) != 0
	    || memcmp(s + n - tail, w->parts[np - 1], tail) != 0)
		return false;
	/* with only stars between the literal runs, leftmost placement of each run is optimal */
	size_t pos = head, end = n - tail;
	for (size_t i = 1; i + 1 < np; i++) {
		size_t l = w->lens[i];
		if (l == 0)
			continue;
		if (end - pos < l)
			return false;
		const char *f = memmem(s + pos, end - pos, w->parts[i], l);
		if (!f)
			return false;
		pos = (size_t)(f - s) + l;
	}
	return true;
}

/*
 * Decimal text -> double without strtod for the common shapes; NAN when it cannot be sure.
 * Mantissas up to 2^53 with powers of ten up to 22 are exact in doubles, so one IEEE divide
 * rounds correctly. Longer mantissas (to 19 digits, powers to 27) are exact in x87 long
 * double; the long double quotient is used unless it lies within one of its own units of
 * a point halfway between two doubles, where rounding twice could differ from rounding once.
 */
static double
fast_number(const char *s, size_t n)
{
	static const double p10[]
	        = { 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
		    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };
	size_t i = 0;
	bool neg = false;
	if (i < n && s[i] == '-') {
		neg = true;
		i++;
	}
	uint64_t m = 0;
	int digits = 0, e10 = 0;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		if (m || s[i] != '0')
			digits++;
		m = m * 10 + (uint64_t)(s[i] - '0');
		if (digits > 19)
			return NAN;
	}
	if (i < n && s[i] == '.') {
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
			if (m || s[i] != '0')
				digits++;
			m = m * 10 + (uint64_t)(s[i] - '0');
			e10--;
			if (digits > 19)
				return NAN;
		}
	}
	if (i != n)
		return NAN; /* exponents go to strtod */
	double d;
	if (m <= ((uint64_t)1 << 53) && e10 >= -22) {
		d = e10 ? (double)m / p10[-e10] : (double)m;
	} else {
#if LDBL_MANT_DIG == 64
		if (e10 < -27)
			return NAN;
		/* exact: 10^27 needs 63 significant bits */
		static const long double p10l[]
		        = { 1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
			    1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
			    1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L };
		long double q = (long double)m / p10l[-e10];
		if (q < 2.3e-308L)
			return NAN;
		uint64_t sig;
		memcpy(&sig, &q, sizeof sig); /* x87: the 64-bit significand comes first */
		uint64_t low = sig & 0x7FF;   /* the 11 bits a double drops */
		if (low >= 0x3FF && low <= 0x401)
			return NAN;
		d = (double)q;
#else
		return NAN;
#endif
	}
	return neg ? -d : d;
}

bool
pat_number_key(const char *s, size_t n, char key[9], double *value)
{
	double d = fast_number(s, n);
	if (isnan(d)) {
		char small[64], *buf = small;
		if (n >= sizeof small) {
			buf = sl_malloc(n + 1);
			if (!buf)
				return false;
		}
		memcpy(buf, s, n);
		buf[n] = '\0';
		char *end;
		d = strtod(buf, &end);
		bool ok = end == buf + n && isfinite(d);
		if (buf != small)
			sl_free(buf);
		if (!ok)
			return false;
	}
	if (d == 0)
		d = 0; /* -0 and 0 are one value */
	key[0] = PAT_T_NUMBER;
	memcpy(key + 1, &d, 8);
	*value = d;
	return true;
}

bool
pat_numeric_match(const struct pat_val *v, double d)
{
	if (v->has_lo && (v->lo_incl ? d < v->lo : d <= v->lo))
		return false;
	if (v->has_hi && (v->hi_incl ? d > v->hi : d >= v->hi))
		return false;
	return true;
}

static bool
parse_ip(const char *s, uint8_t out[16], bool *v6)
{
	if (inet_pton(AF_INET, s, out) == 1) {
		*v6 = false;
		return true;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*v6 = true;
		return true;
	}
	return false;
}

sl_err
pat_cidr_parse(const char *s, struct pat_val *v, struct sl_error *err)
{
	const char *slash = strchr(s, '/');
	if (!slash || strchr(slash + 1, '/'))
		return sl_error_set(err, SL_ERR_INVALID_PATTERN,
		                    "Event pattern is not valid. Reason: Malformed CIDR, one '/' "
		                    "required");
	const char *m = slash + 1;
	size_t ml = strlen(m);
	if (ml == 0 || ml > 3 || strspn(m, "0123456789") != ml)
		return sl_error_set(err, SL_ERR_INVALID_PATTERN,
		                    "Event pattern is not valid. Reason: Malformed CIDR, mask bits "
		                    "must be an integer");
	char addr[64];
	size_t al = (size_t)(slash - s);
	if (al >= sizeof addr
	    || (memcpy(addr, s, al), addr[al] = '\0', !parse_ip(addr, v->net, &v->v6)))
		return sl_error_set(
		        err, SL_ERR_INVALID_PATTERN,
		        "Event pattern is not valid. Reason: Nonstandard IP address: %.*s",
		        (int)(al > 200 ? 200 : al), s);
	v->bits = atoi(m);
	if (v->bits > (v->v6 ? 128 : 32))
		return sl_error_set(err, SL_ERR_INVALID_PATTERN,
		                    "Event pattern is not valid. Reason: Malformed CIDR, mask bits "
		                    "must be between 0 and %d",
		                    v->v6 ? 128 : 32);
	return SL_OK;
}

bool
pat_cidr_match(const struct pat_val *v, const char *s, size_t n)
{
	char buf[64];
	uint8_t ip[16];
	bool v6;
	if (n >= sizeof buf)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!parse_ip(buf, ip, &v6) || v6 != v->v6)
		return false;
	int full = v->bits / 8, rest = v->bits % 8;
	if (memcmp(ip, v->net, (size_t)full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xFF << (8 - rest));
		return (ip[full] & mask) == (v->net[full] & mask);
	}
	return true;
}

bool
pat_anybut_match(const struct pat_val *v, char type, const char *s, size_t n, const char *folded,
                 size_t folded_len)
{
	if (v->ab != AB_VALUES && type != PAT_T_STRING)
		return true; /* only strings can hit a prefix/suffix/case/wildcard exclusion */
	for (size_t i = 0; i < v->nkeys; i++) {
		const char *k = v->keys ? v->keys[i] : NULL;
		size_t kl = v->key_lens ? v->key_lens[i] : 0;
		switch (v->ab) {
		case AB_VALUES:
			if (k[0] == type && kl - 1 == n && memcmp(k + 1, s, n) == 0)
				return false;
			break;
		case AB_PREFIX:
			if (kl <= n && memcmp(s, k, kl) == 0)
				return false;
			break;
		case AB_SUFFIX:
			if (kl <= n && memcmp(s + n - kl, k, kl) == 0)
				return false;
			break;
		case AB_EIC:
			if (kl == folded_len && memcmp(folded, k, kl) == 0)
				return false;
			break;
		case AB_WILDCARD:
			if (pat_wild_match(&v->wilds[i], s, n))
				return false;
			break;
		}
	}
	return true;
}
