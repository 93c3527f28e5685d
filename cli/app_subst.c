/*
 * app_subst.c - environment variables in app files (app_subst.h, docs/APP.md).
 */
#include "cli/app_subst.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"

#define SUBST_VALUE_MAX 65536

void
app_subst_free(struct app_subst *s)
{
	sl_free(s->edits);
	memset(s, 0, sizeof *s);
}

/* Line and column (1-based, in characters as the YAML loader counts) of offset in text. */
static void
line_col(const char *text, size_t len, size_t off, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)text[i] & 0xC0) != 0x80) {
			(*col)++;
		}
	}
}

/* The offset of (line, col) in text; len when past the end. */
static size_t
offset_of(const char *text, size_t len, unsigned line, unsigned col)
{
	size_t i = 0;
	for (unsigned l = 1; l < line && i < len; i++)
		if (text[i] == '\n')
			l++;
	for (unsigned c = 1; i < len && text[i] != '\n'; i++) {
		if (((unsigned char)text[i] & 0xC0) != 0x80 && c++ == col)
			break;
	}
	return i;
}

/* Maps a position of the substituted text back to the file: inside a value, to the start of
 * its reference. */
static void
subst_map(const struct app_subst *s, const char *now, size_t now_len, unsigned *line, unsigned *col)
{
	if (!s || !s->n || !*line)
		return;
	size_t off = offset_of(now, now_len, *line, *col);
	size_t old = off;
	for (size_t i = 0; i < s->n; i++) {
		const struct app_subst_edit *e = &s->edits[i];
		if (off < e->new_at)
			break;
		if (off < e->new_at + e->new_len) {
			old = e->old_at;
			break;
		}
		old = off - (e->new_at + e->new_len) + e->old_at + e->old_len;
	}
	line_col(s->old, s->old_len, old, line, col);
}

static bool
name_start(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static bool
name_char(char ch)
{
	return name_start(ch) || (ch >= '0' && ch <= '9');
}

struct sbuf {
	char *p;
	size_t len, cap;
	bool nomem;
};

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->nomem)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = sl_realloc(b->p, cap);
		if (!p) {
			b->nomem = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* value escaped for where it lands: quote is '"', '\'' or 0 (plain). false (nothing added)
 * when a plain value holds a line break. */
static bool
sb_value(struct sbuf *b, const char *v, size_t n, char quote)
{
	if (quote == 0 && (memchr(v, '\n', n) || memchr(v, '\r', n)))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (quote == '"' && (ch == '"' || ch == '\\')) {
			char esc[2] = { '\\', (char)ch };
			sb_add(b, esc, 2);
		} else if (quote == '"' && ch < 0x20) {
			char esc[8];
			snprintf(esc, sizeof esc, "\\u%04x", ch);
			sb_add(b, esc, 6);
		} else if (quote == '\'' && ch == '\'') {
			sb_add(b, "''", 2);
		} else {
			sb_add(b, v + i, 1);
		}
	}
	return true;
}

static sl_err
subst_problem(struct app_subst_in *c, size_t at, const char *fmt, const char *a, const char *b)
{
	c->bad = true;
	if (!c->pb)
		return SL_OK;
	unsigned line, col;
	line_col(c->text, c->len, at, &line, &col);
	char *loc = sl_asprintf("%s:%u:%u", c->path, line, col);
	char msg[512];
	snprintf(msg, sizeof msg, fmt, a, b);
	sl_err rc = loc ? sm_problems_add(c->pb, loc, "", "%s", msg) : SL_ERR_NOMEM;
	sl_free(loc);
	return rc;
}

/* True when the character before i (on its line, ignoring blanks) can start a YAML scalar,
 * so a quote at i opens a quoted string (an apostrophe inside a plain scalar does not). */
static bool
scalar_start(const char *t, size_t i)
{
	while (i > 0 && (t[i - 1] == ' ' || t[i - 1] == '\t'))
		i--;
	return i == 0 || strchr("\n:-[{,?", t[i - 1]) != NULL;
}

/* Replaces the references of text; *out (new, NUL-terminated) and the edits in *s. Problems
 * (unset variable, bad reference) go to c->pb; SL_ERR_PARSE then. */
sl_err
app_subst_text(struct app_subst_in *c, char **out, size_t *out_len, struct app_subst *s)
{
	const char *t = c->text;
	size_t len = c->len, lit = 0;
	struct sbuf b = { 0 };
	char quote = 0;
	bool comment = false;
	sl_err rc = SL_OK;
	memset(s, 0, sizeof *s);
	s->old = t;
	s->old_len = len;
	for (size_t i = 0; i < len && rc == SL_OK; i++) {
		char ch = t[i];
		if (ch == '\n') {
			comment = false;
			if (quote == '\'')
				quote = 0; /* a multi-line quoted string is rare; resync per line */
			continue;
		}
		if (comment)
			continue;
		if (quote == '"' && ch == '\\') {
			i++;
			continue;
		}
		if (quote && ch == quote) {
			if (quote == '\'' && i + 1 < len && t[i + 1] == '\'')
				i++;
			else
				quote = 0;
			continue;
		}
		if (!quote && (ch == '"' || ch == '\'') && scalar_start(t, i)) {
			quote = ch;
			continue;
		}
		if (!quote && ch == '#'
		    && (i == 0 || t[i - 1] == ' ' || t[i - 1] == '\t' || t[i - 1] == '\n')) {
			comment = true;
			continue;
		}
		if (ch != '$')
			continue;
		size_t ref = i, end;
		const char *value = "";
		size_t vlen = 0;
		if (i + 2 < len && t[i + 1] == '$' && t[i + 2] == '{') {
			end = i + 2; /* $${ -> ${ */
			value = "$";
			vlen = 1;
		} else if (i + 1 < len && t[i + 1] == '{') {
			size_t n = i + 2;
			while (n < len && name_char(t[n]))
				n++;
			const char *nl = memchr(t + i, '\n', len - i);
			const char *close
			        = memchr(t + n, '}', (size_t)((nl ? nl : t + len) - (t + n)));
			if (n == i + 2 || !name_start(t[i + 2]) || !close
			    || !(t[n] == '}' || (t[n] == ':' && n + 1 < len && t[n + 1] == '-'))) {
				size_t show = close ? (size_t)(close - (t + i)) + 1 : n - i;
				char refs[128];
				snprintf(refs, sizeof refs, "%.*s", (int)(show < 100 ? show : 100),
				         t + i);
				rc = subst_problem(
				        c, i,
				        "invalid variable reference '%s' (expected ${NAME} or "
				        "${NAME:-default}, NAME letters, digits and _; write "
				        "$${ for a literal ${)%s",
				        refs, "");
				end = close ? (size_t)(close - t) : n - 1;
				goto replace; /* by nothing: the rest of the file still parses */
			}
			end = (size_t)(close - t);
			char name[256];
			size_t nlen = n - (i + 2);
			if (nlen >= sizeof name) {
				rc = subst_problem(
				        c, i, "a variable name is longer than 255 characters%s%s",
				        "", "");
				goto replace;
			}
			memcpy(name, t + i + 2, nlen);
			name[nlen] = '\0';
			value = getenv(name);
			if (t[n] == ':') { /* ${NAME:-default}: unset or empty takes the default */
				if (!value || !*value) {
					value = t + n + 2;
					vlen = end - (n + 2);
				} else {
					vlen = strlen(value);
				}
			} else if (!value) {
				rc = subst_problem(
				        c, i,
				        "environment variable %s is not set (give it a default "
				        "with ${%s:-default})",
				        name, name);
				goto replace;
			} else {
				vlen = strlen(value);
			}
			if (vlen > SUBST_VALUE_MAX) {
				rc = subst_problem(
				        c, i,
				        "environment variable %s is longer than 65536 bytes%s",
				        name, "");
				goto replace;
			}
		} else {
			continue;
		}
	replace:
		if (rc == SL_ERR_NOMEM)
			break;
		if (c->bad) { /* after a problem: the reference reads as nothing (a placeholder
			       * when no problem is reported, so the shape still parses) */
			value = c->pb ? "" : "x";
			vlen = c->pb ? 0 : 1;
		}
		sb_add(&b, t + lit, ref - lit);
		size_t at = b.len;
		if (t[ref + 1] == '$') {
			sb_add(&b, "${", 2);
		} else if (!sb_value(&b, value, vlen, quote)) {
			char nm[128];
			snprintf(nm, sizeof nm, "%.*s",
			         (int)(end - ref + 1 < 100 ? end - ref + 1 : 100), t + ref);
			rc = subst_problem(
			        c, ref,
			        "the value of %s holds a line break: use it inside double "
			        "quotes%s",
			        nm, "");
		}
		if (s->n == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 8;
			struct app_subst_edit *e = sl_reallocarray(s->edits, cap, sizeof *e);
			if (!e)
				b.nomem = true;
			else {
				s->edits = e;
				s->cap = cap;
			}
		}
		if (!b.nomem)
			s->edits[s->n++]
			        = (struct app_subst_edit) { ref, end + 1 - ref, at, b.len - at };
		lit = end + 1;
		i = end;
	}
	sb_add(&b, t + lit, len - lit);
	if (b.nomem || rc == SL_ERR_NOMEM) {
		sl_free(b.p);
		app_subst_free(s);
		return SL_ERR_NOMEM;
	}
	*out = b.p;
	*out_len = b.len;
	if (!b.p) { /* empty text */
		*out = sl_strdup("");
		if (!*out)
			return SL_ERR_NOMEM;
	}
	return c->bad ? SL_ERR_PARSE : SL_OK;
}

/* Rewrites "path:LINE:COL" locations of problems[from..] to positions in the file. */
sl_err
app_subst_fix_problems(const struct app_subst *s, const char *now, size_t now_len, const char *path,
                       struct sm_problems *pb, size_t from)
{
	if (!s->n)
		return SL_OK;
	size_t plen = strlen(path);
	for (size_t i = from; i < pb->count; i++) {
		char *loc = pb->items[i].location;
		unsigned line, col;
		char rest;
		if (strncmp(loc, path, plen) != 0 || loc[plen] != ':'
		    || sscanf(loc + plen + 1, "%u:%u%c", &line, &col, &rest) != 2)
			continue;
		subst_map(s, now, now_len, &line, &col);
		char *n = sl_asprintf("%s:%u:%u", path, line, col);
		if (!n)
			return SL_ERR_NOMEM;
		sl_free(loc);
		pb->items[i].location = n;
	}
	return SL_OK;
}
