/*
 * app_subst.h - environment variables in app files, replaced before the text is parsed.
 *
 * ${NAME} and ${NAME:-default} are replaced by the environment's values before the text is
 * parsed (so a value can be a number, a list item or part of a string); $${ stands for a
 * literal ${. Nothing else is special: the States Language's $. and $$. pass as written.
 * References in comments are left alone. A value is escaped for the quoted string it lands
 * in; outside quotes a value with a line break is refused (it would change the structure).
 *
 * The positions the parser finds in the substituted text are mapped back to the file with
 * app_subst_fix_problems, so problems point at what the user wrote.
 */
#ifndef SLUICE_CLI_APP_SUBST_H
#define SLUICE_CLI_APP_SUBST_H

#include <stdbool.h>
#include <stddef.h>

#include "common/sl_err.h"
#include "statemachines/sm_problems.h"

struct app_subst_edit {
	size_t old_at, old_len; /* the reference in the file */
	size_t new_at, new_len; /* its value in the text parsed */
};

struct app_subst {
	const char *old;
	size_t old_len;
	struct app_subst_edit *edits;
	size_t n, cap;
};

/* What to substitute: problems are located as path:line:column. */
struct app_subst_in {
	const char *path;
	struct sm_problems *pb; /* NULL: unset variables become empty, silently */
	const char *text;
	size_t len;
	bool bad;
};

/* Replaces the references of in->text: *out (new, NUL-terminated) and *out_len; the edits
 * in *s (release with app_subst_free, also after an error). SL_ERR_PARSE after problems
 * (an unset variable without default, a malformed reference), SL_ERR_NOMEM. */
sl_err app_subst_text(struct app_subst_in *in, char **out, size_t *out_len, struct app_subst *s);
void app_subst_free(struct app_subst *s);

/* Rewrites the "path:LINE:COL" locations of problems[from..], found in the substituted text
 * now, to the positions in the file. */
sl_err app_subst_fix_problems(const struct app_subst *s, const char *now, size_t now_len,
                              const char *path, struct sm_problems *pb, size_t from);

#endif
