/*
 * app_file.c - the app file parser (app_file.h, docs/APP.md).
 *
 * A file is loaded by the statemachines loader into one JSON tree plus a table from JSON
 * pointers to source positions, then walked here into struct app. Each problem is located
 * at the offending value (or, for an unknown key, at the key) and says what was expected.
 * Walking goes on after a problem so one run reports them all.
 */
#include "cli/app_file.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/pattern.h"
#include "bus/schedule.h"
#include "cli/app_subst.h"
#include "cli/cli.h"
#include "common/sl_alloc.h"
#include "statemachines/statemachines.h"

#define APP_FILES_MAX 1000

struct pctx {
	struct app *a;
	const char *path;
	char *dir; /* definitionFile paths are relative to this */
	struct sm_positions *pos;
	struct sm_problems *pb;
	sl_err fatal; /* SL_ERR_NOMEM stops everything */
	bool bad;
};

static const char *const machine_keys[] = { "type", "definition", "definitionFile", NULL };
static const char *const rule_keys[]
        = { "bus",   "eventPattern", "schedule", "timezone", "missedRuns",
	    "state", "description",  "targets",  NULL };
static const char *const target_keys[] = { "id",
	                                   "arn",
	                                   "stateMachine",
	                                   "bus",
	                                   "input",
	                                   "inputPath",
	                                   "inputTransformer",
	                                   "retryPolicy",
	                                   "deadLetter",
	                                   "roleArn",
	                                   NULL };
static const char *const transformer_keys[] = { "inputPathsMap", "inputTemplate", NULL };
static const char *const retry_keys[]
        = { "maximumRetryAttempts", "maximumEventAgeInSeconds", NULL };
static const char *const archive_keys[]
        = { "bus", "eventPattern", "description", "retentionDays", NULL };
static const char *const bus_keys[] = { "description", NULL };
static const char *const top_keys[]
        = { "stateMachines", "activities", "buses", "rules", "archives", NULL };

/* ---- problems --------------------------------------------------------------------------- */

static char *
location(struct pctx *c, const char *ptr, bool key)
{
	unsigned line = 0, col = 0;
	bool have = key ? sm_positions_find_key(c->pos, ptr, &line, &col)
	                : sm_positions_find(c->pos, ptr, &line, &col);
	return have ? sl_asprintf("%s:%u:%u", c->path, line, col)
	            : sl_asprintf("%s:%s", c->path, *ptr ? ptr : "/");
}

static void __attribute__((format(printf, 4, 5)))
problem(struct pctx *c, const char *ptr, bool key, const char *fmt, ...)
{
	c->bad = true;
	if (c->fatal)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char *loc = location(c, ptr, key);
	if (!loc || sm_problems_add(c->pb, loc, ptr, "%s", msg) != SL_OK)
		c->fatal = SL_ERR_NOMEM;
	sl_free(loc);
}

static char *
child(struct pctx *c, const char *ptr, const char *token)
{
	char *p = sm_pointer_append(ptr, token);
	if (!p)
		c->fatal = SL_ERR_NOMEM;
	return p;
}

static char *
child_index(struct pctx *c, const char *ptr, size_t i)
{
	char *p = sm_pointer_append_index(ptr, i);
	if (!p)
		c->fatal = SL_ERR_NOMEM;
	return p;
}

static char *
dup_or_fail(struct pctx *c, const char *s)
{
	if (!s)
		return NULL;
	char *d = sl_strdup(s);
	if (!d)
		c->fatal = SL_ERR_NOMEM;
	return d;
}

static const char *
kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "a mapping";
	case JSON_ARRAY: return "a list";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* Every key of obj must be in allowed; reports the others at their key. */
static void
check_keys(struct pctx *c, json_t *obj, const char *ptr, const char *const *allowed,
           const char *what)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		bool ok = false;
		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = strcmp(k, allowed[i]) == 0;
		if (ok)
			continue;
		char list[512] = "";
		size_t n = 0;
		for (size_t i = 0; allowed[i] && n < sizeof list; i++)
			n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "",
			                      allowed[i]);
		char *p = child(c, ptr, k);
		if (p)
			problem(c, p, true, "unknown key '%s' in %s (expected one of: %s)", k, what,
			        list);
		sl_free(p);
	}
}

/* An optional string member; *out borrowed. False (after a problem) on a wrong type. */
static bool
get_str(struct pctx *c, json_t *obj, const char *ptr, const char *key, const char **out)
{
	*out = NULL;
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return true;
	if (json_is_string(v) && json_string_length(v) > 0) {
		*out = json_string_value(v);
		return true;
	}
	char *p = child(c, ptr, key);
	if (p)
		problem(c, p, false, "'%s' must be a non-empty string, not %s", key,
		        json_is_string(v) ? "an empty string" : kind(v));
	sl_free(p);
	return false;
}

/* An optional integer member in [lo, hi]; *out untouched when absent. */
static void
get_int(struct pctx *c, json_t *obj, const char *ptr, const char *key, long lo, long hi, long *out,
        bool *present)
{
	json_t *v = json_object_get(obj, key);
	if (present)
		*present = false;
	if (!v || json_is_null(v))
		return;
	char *p = child(c, ptr, key);
	if (!p)
		return;
	if (!json_is_integer(v))
		problem(c, p, false, "'%s' must be an integer, not %s", key, kind(v));
	else if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		problem(c, p, false, "'%s' must be between %ld and %ld", key, lo, hi);
	else {
		*out = (long)json_integer_value(v);
		if (present)
			*present = true;
	}
	sl_free(p);
}

/* One of the words in allowed (NULL-terminated); NULL when absent or wrong. */
static const char *
get_word(struct pctx *c, json_t *obj, const char *ptr, const char *key, const char *const *allowed)
{
	const char *s;
	if (!get_str(c, obj, ptr, key, &s) || !s)
		return NULL;
	for (size_t i = 0; allowed[i]; i++)
		if (strcmp(s, allowed[i]) == 0)
			return allowed[i];
	char list[128] = "";
	size_t n = 0;
	for (size_t i = 0; allowed[i]; i++)
		n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", allowed[i]);
	char *p = child(c, ptr, key);
	if (p)
		problem(c, p, false, "'%s' must be one of %s, not '%s'", key, list, s);
	sl_free(p);
	return NULL;
}

/* ---- names ------------------------------------------------------------------------------ */

/* Rule names, target ids, archive names: [.-_A-Za-z0-9]+ up to max. */
static bool
simple_name(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		      || (*p >= '0' && *p <= '9') || strchr(".-_", *p)))
			return false;
	return true;
}

/* State machine and activity names, as AWS: 1-80 characters, no whitespace, no
 * control characters and none of < > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : / */
static bool
sfn_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 80)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p == 0x7f || strchr("<>{}[]?*\"#%\\^|~`$&,;:/", *p))
			return false;
	return true;
}

/* Bus names: [/.-_A-Za-z0-9]+ up to 256. */
static bool
bus_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 256)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		      || (*p >= '0' && *p <= '9') || strchr("/.-_", *p)))
			return false;
	return true;
}

/* ---- growth ----------------------------------------------------------------------------- */

static void *
grow(struct pctx *c, void *arr, size_t n, size_t size)
{
	void *p = sl_reallocarray(arr, n + 1, size);
	if (!p) {
		c->fatal = SL_ERR_NOMEM;
		return NULL;
	}
	memset((char *)p + n * size, 0, size);
	return p;
}

/* ---- state machines --------------------------------------------------------------------- */

/* Compiles a definition that lives inside the app file: problems are located through the
 * app file's positions, prefix + the validator's pointer. */
static void
check_inline_definition(struct pctx *c, json_t *def, const char *prefix,
                        enum sm_execution_type type)
{
	struct sm_problems probs = { 0 };
	struct sm_machine *m = NULL;
	sl_err rc = sm_machine_compile_typed(def, NULL, type, &m, &probs);
	sm_machine_free(m);
	if (rc == SL_ERR_NOMEM) {
		c->fatal = rc;
	} else if (rc) {
		for (size_t i = 0; i < probs.count && !c->fatal; i++) {
			const struct sm_problem *pr = &probs.items[i];
			char *full = sl_asprintf("%s%s", prefix, pr->pointer);
			if (!full) {
				c->fatal = SL_ERR_NOMEM;
				break;
			}
			/* "Field 'X' is not supported" is best shown at the key X */
			const char *f = strstr(pr->message, "Field '");
			bool key = false;
			if (f) {
				const char *end = strchr(f + 7, '\'');
				char *field = end ? sl_strndup(f + 7, (size_t)(end - f - 7)) : NULL;
				char *kp = field ? sm_pointer_append(full, field) : NULL;
				unsigned l, col;
				if (kp && sm_positions_find_key(c->pos, kp, &l, &col)) {
					sl_free(full);
					full = kp;
					kp = NULL;
					key = true;
				}
				sl_free(kp);
				sl_free(field);
			}
			problem(c, full, key, "%s", pr->message);
			sl_free(full);
		}
		if (probs.dropped)
			problem(c, prefix, false, "%zu more problems in this definition",
			        probs.dropped);
		if (!probs.count)
			problem(c, prefix, false, "invalid definition: %s", sl_err_message(rc));
	}
	sm_problems_clear(&probs);
}

/* Loads and compiles definitionFile; its problems carry its own file:line:column. */
static json_t *
load_definition_file(struct pctx *c, const char *rel, const char *ptr, enum sm_execution_type type)
{
	char *path = rel[0] == '/' || !c->dir ? sl_strdup(rel) : sl_asprintf("%s/%s", c->dir, rel);
	if (!path) {
		c->fatal = SL_ERR_NOMEM;
		return NULL;
	}
	char *text = NULL;
	size_t len = 0;
	struct sl_error err = { 0 };
	json_t *tree = NULL;
	if (cli_read_file(path, SM_DEFINITION_MAX_BYTES + 1, &text, &len, &err)) {
		problem(c, ptr, false, "definitionFile: %s", sl_error_text(&err));
		sl_free(path);
		return NULL;
	}
	struct sm_positions *pos = NULL;
	struct sm_machine *m = NULL;
	size_t before = c->pb->count;
	sl_err rc = sm_definition_load(text, len, path, SM_FORMAT_AUTO, &tree, &pos, c->pb);
	if (rc == SL_OK)
		rc = sm_machine_compile_typed(tree, pos, type, &m, c->pb);
	sm_machine_free(m);
	sm_positions_free(pos);
	sl_free(text);
	if (rc == SL_ERR_NOMEM)
		c->fatal = rc;
	if (rc) {
		c->bad = true;
		if (c->pb->count == before)
			problem(c, ptr, false, "definitionFile %s: %s", path, sl_err_message(rc));
		json_decref(tree);
		tree = NULL;
	}
	sl_free(path);
	return tree;
}

static void
parse_machine(struct pctx *c, const char *name, json_t *v, const char *ptr)
{
	if (!sfn_name(name))
		problem(c, ptr, true,
		        "state machine name '%s' is not valid (1-80 characters, no spaces or any "
		        "of <>{}[]?*\"#%%\\^|~`$&,;:/)",
		        name);
	if (!json_is_object(v)) {
		problem(c, ptr, false,
		        "state machine '%s' must be a mapping with 'definition' or "
		        "'definitionFile', not %s",
		        name, kind(v));
		return;
	}
	check_keys(c, v, ptr, machine_keys, "a state machine");
	static const char *const types[] = { "STANDARD", "EXPRESS", NULL };
	const char *type = get_word(c, v, ptr, "type", types);
	/* an EXPRESS machine's definition is checked against the EXPRESS rules */
	enum sm_execution_type et
	        = type && !strcmp(type, "EXPRESS") ? SM_EXECUTION_EXPRESS : SM_EXECUTION_STANDARD;
	json_t *def = json_object_get(v, "definition");
	const char *file = NULL;
	bool file_ok = get_str(c, v, ptr, "definitionFile", &file);
	json_t *tree = NULL;
	if (def && file) {
		char *p = child(c, ptr, "definitionFile");
		if (p)
			problem(c, p, true, "give 'definition' or 'definitionFile', not both");
		sl_free(p);
	} else if (def) {
		char *p = child(c, ptr, "definition");
		if (p && !json_is_object(def))
			problem(c, p, false,
			        "'definition' must be a mapping (the States Language definition), "
			        "not %s",
			        kind(def));
		else if (p) {
			check_inline_definition(c, def, p, et);
			tree = json_incref(def);
		}
		sl_free(p);
	} else if (file) {
		char *p = child(c, ptr, "definitionFile");
		if (p)
			tree = load_definition_file(c, file, p, et);
		sl_free(p);
	} else if (file_ok) {
		problem(c, ptr, true, "state machine '%s' needs 'definition' or 'definitionFile'",
		        name);
	}
	for (size_t i = 0; i < c->a->nmachines; i++)
		if (strcmp(c->a->machines[i].name, name) == 0) {
			problem(c, ptr, true, "state machine '%s' is also declared at %s", name,
			        c->a->machines[i].where);
			json_decref(tree);
			return;
		}
	struct app_machine *arr = grow(c, c->a->machines, c->a->nmachines, sizeof *arr);
	if (!arr) {
		json_decref(tree);
		return;
	}
	c->a->machines = arr;
	struct app_machine *m = &arr[c->a->nmachines++];
	m->name = dup_or_fail(c, name);
	m->type = dup_or_fail(c, type ? type : "STANDARD");
	m->definition = tree;
	m->where = location(c, ptr, true);
	if (!m->where)
		c->fatal = SL_ERR_NOMEM;
}

/* ---- activities and buses --------------------------------------------------------------- */

static void
add_activity(struct pctx *c, const char *name, const char *ptr)
{
	if (!sfn_name(name)) {
		problem(c, ptr, false,
		        "activity name '%s' is not valid (1-80 characters, no spaces or "
		        "any of <>{}[]?*\"#%%\\^|~`$&,;:/)",
		        name);
		return;
	}
	for (size_t i = 0; i < c->a->nactivities; i++)
		if (strcmp(c->a->activities[i].name, name) == 0) {
			problem(c, ptr, false, "activity '%s' is also declared at %s", name,
			        c->a->activities[i].where);
			return;
		}
	struct app_activity *arr = grow(c, c->a->activities, c->a->nactivities, sizeof *arr);
	if (!arr)
		return;
	c->a->activities = arr;
	struct app_activity *x = &arr[c->a->nactivities++];
	x->name = dup_or_fail(c, name);
	if (!(x->where = location(c, ptr, false)))
		c->fatal = SL_ERR_NOMEM;
}

static void
add_bus(struct pctx *c, const char *name, const char *description, const char *ptr, bool key)
{
	if (!bus_name(name)) {
		problem(c, ptr, key, "bus name '%s' is not valid (1-256 of A-Z a-z 0-9 . - _ /)",
		        name);
		return;
	}
	if (strcmp(name, "default") == 0)
		return; /* always there; declaring it is harmless */
	for (size_t i = 0; i < c->a->nbuses; i++)
		if (strcmp(c->a->buses[i].name, name) == 0) {
			problem(c, ptr, key, "bus '%s' is also declared at %s", name,
			        c->a->buses[i].where);
			return;
		}
	struct app_bus *arr = grow(c, c->a->buses, c->a->nbuses, sizeof *arr);
	if (!arr)
		return;
	c->a->buses = arr;
	struct app_bus *b = &arr[c->a->nbuses++];
	b->name = dup_or_fail(c, name);
	b->description = dup_or_fail(c, description);
	if (!(b->where = location(c, ptr, key)))
		c->fatal = SL_ERR_NOMEM;
}

static void
parse_name_list(struct pctx *c, json_t *v, const char *ptr, bool buses)
{
	const char *what = buses ? "buses" : "activities";
	if (buses && json_is_object(v)) {
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e)
		{
			char *p = child(c, ptr, k);
			if (!p)
				return;
			const char *desc = NULL;
			if (json_is_object(e)) {
				check_keys(c, e, p, bus_keys, "a bus");
				get_str(c, e, p, "description", &desc);
			} else if (!json_is_null(e)) {
				problem(c, p, false, "bus '%s' must be empty or a mapping, not %s",
				        k, kind(e));
			}
			add_bus(c, k, desc, p, true);
			sl_free(p);
		}
		return;
	}
	if (!json_is_array(v)) {
		problem(c, ptr, false, "'%s' must be a list of names%s, not %s", what,
		        buses ? " or a mapping" : "", kind(v));
		return;
	}
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		char *p = child_index(c, ptr, i);
		if (!p)
			return;
		if (!json_is_string(e))
			problem(c, p, false, "%s entries must be names (strings), not %s", what,
			        kind(e));
		else if (buses)
			add_bus(c, json_string_value(e), NULL, p, false);
		else
			add_activity(c, json_string_value(e), p);
		sl_free(p);
	}
}

/* ---- rules ------------------------------------------------------------------------------ */

/* eventPattern: a mapping (or JSON text), checked as PutRule would; new reference. */
static json_t *
parse_pattern(struct pctx *c, json_t *v, const char *ptr)
{
	json_t *pat = NULL;
	if (json_is_object(v)) {
		pat = json_incref(v);
	} else if (json_is_string(v)) {
		json_error_t je;
		pat = json_loads(json_string_value(v), 0, &je);
		if (!json_is_object(pat)) {
			problem(c, ptr, false, "'eventPattern' text is not a JSON object: %s",
			        pat ? "not an object" : je.text);
			json_decref(pat);
			return NULL;
		}
	} else {
		problem(c, ptr, false, "'eventPattern' must be a mapping, not %s", kind(v));
		return NULL;
	}
	char *text = json_dumps(pat, JSON_COMPACT);
	struct sl_error err = { 0 };
	if (!text) {
		c->fatal = SL_ERR_NOMEM;
	} else if (pat_validate(text, strlen(text), &err) != SL_OK) {
		problem(c, ptr, false, "invalid event pattern: %s", sl_error_text(&err));
		json_decref(pat);
		pat = NULL;
	}
	free(text);
	return pat;
}

/* The Arn-like strings of a target: checked only for being strings; the server checks
 * their shape. */
static void
parse_target(struct pctx *c, struct app_rule *r, json_t *v, const char *ptr)
{
	if (!json_is_object(v)) {
		problem(c, ptr, false, "a target must be a mapping, not %s", kind(v));
		return;
	}
	check_keys(c, v, ptr, target_keys, "a target");
	struct app_target t = { 0 };
	const char *id, *arn, *machine, *bus, *path, *role;
	get_str(c, v, ptr, "id", &id);
	get_str(c, v, ptr, "arn", &arn);
	get_str(c, v, ptr, "stateMachine", &machine);
	get_str(c, v, ptr, "bus", &bus);
	get_str(c, v, ptr, "inputPath", &path);
	get_str(c, v, ptr, "roleArn", &role);
	if (!id && !json_object_get(v, "id"))
		problem(c, ptr, false, "a target needs an 'id'");
	else if (id && !simple_name(id, 64)) {
		char *p = child(c, ptr, "id");
		if (p)
			problem(c, p, false,
			        "target id '%s' is not valid (1-64 of A-Z a-z 0-9 . - _)", id);
		sl_free(p);
	}
	if (!!arn + !!machine + !!bus != 1)
		problem(c, ptr, false,
		        "a target needs exactly one of 'arn', 'stateMachine', 'bus'");
	json_t *input = json_object_get(v, "input");
	json_t *tr = json_object_get(v, "inputTransformer");
	if (!!input + !!path + !!tr > 1)
		problem(c, ptr, false,
		        "give at most one of 'input', 'inputPath', 'inputTransformer'");
	if (tr) {
		char *p = child(c, ptr, "inputTransformer");
		if (p && !json_is_object(tr)) {
			problem(c, p, false, "'inputTransformer' must be a mapping, not %s",
			        kind(tr));
		} else if (p) {
			check_keys(c, tr, p, transformer_keys, "inputTransformer");
			const char *tmpl;
			get_str(c, tr, p, "inputTemplate", &tmpl);
			json_t *map = json_object_get(tr, "inputPathsMap");
			char *mp = child(c, p, "inputPathsMap");
			bool map_ok = true;
			if (map && !json_is_object(map)) {
				map_ok = false;
				if (mp)
					problem(c, mp, false,
					        "'inputPathsMap' must be a mapping of names to "
					        "paths");
			} else if (map) {
				const char *k;
				json_t *e;
				json_object_foreach(map, k, e)
				{
					if (json_is_string(e))
						continue;
					map_ok = false;
					char *ep = mp ? sm_pointer_append(mp, k) : NULL;
					if (ep)
						problem(c, ep, false,
						        "path of '%s' must be a string", k);
					sl_free(ep);
				}
			}
			sl_free(mp);
			if (!tmpl && !json_object_get(tr, "inputTemplate"))
				problem(c, p, false, "'inputTransformer' needs an 'inputTemplate'");
			if (tmpl && map_ok) {
				t.transformer = json_pack("{s:s}", "InputTemplate", tmpl);
				if (map && t.transformer)
					json_object_set(t.transformer, "InputPathsMap", map);
				if (!t.transformer)
					c->fatal = SL_ERR_NOMEM;
			}
		}
		sl_free(p);
	}
	json_t *rp = json_object_get(v, "retryPolicy");
	if (rp) {
		char *p = child(c, ptr, "retryPolicy");
		if (p && !json_is_object(rp)) {
			problem(c, p, false, "'retryPolicy' must be a mapping, not %s", kind(rp));
		} else if (p) {
			check_keys(c, rp, p, retry_keys, "retryPolicy");
			long att = 0, age = 0;
			bool has_att, has_age;
			get_int(c, rp, p, "maximumRetryAttempts", 0, 185, &att, &has_att);
			get_int(c, rp, p, "maximumEventAgeInSeconds", 60, 86400, &age, &has_age);
			if ((t.retry = json_object())) {
				if (has_att)
					json_object_set_new(t.retry, "MaximumRetryAttempts",
					                    json_integer(att));
				if (has_age)
					json_object_set_new(t.retry, "MaximumEventAgeInSeconds",
					                    json_integer(age));
			} else {
				c->fatal = SL_ERR_NOMEM;
			}
		}
		sl_free(p);
	}
	json_t *dl = json_object_get(v, "deadLetter");
	if (dl && !json_is_false(dl) && !json_is_null(dl)) {
		char *p = child(c, ptr, "deadLetter");
		if (json_is_true(dl))
			t.dead_letter = json_object();
		else if (json_is_string(dl) && json_string_length(dl))
			t.dead_letter = json_pack("{s:O}", "Arn", dl);
		else if (p)
			problem(c, p, false,
			        "'deadLetter' must be true (sluice's dead-letter store) or a queue "
			        "ARN, not %s",
			        kind(dl));
		sl_free(p);
	}
	for (size_t i = 0; id && i < r->ntargets; i++)
		if (strcmp(r->targets[i].id, id) == 0) {
			char *p = child(c, ptr, "id");
			if (p)
				problem(c, p, false, "target id '%s' is used twice in rule '%s'",
				        id, r->name);
			sl_free(p);
		}
	if (c->bad || c->fatal || !id) {
		json_decref(t.transformer);
		json_decref(t.retry);
		json_decref(t.dead_letter);
		return;
	}
	struct app_target *arr = grow(c, r->targets, r->ntargets, sizeof *arr);
	if (!arr) {
		json_decref(t.transformer);
		json_decref(t.retry);
		json_decref(t.dead_letter);
		return;
	}
	r->targets = arr;
	t.id = dup_or_fail(c, id);
	t.arn = dup_or_fail(c, arn);
	t.machine = dup_or_fail(c, machine);
	t.bus = dup_or_fail(c, bus);
	t.input = input ? json_incref(input) : NULL;
	t.input_path = dup_or_fail(c, path);
	t.role_arn = dup_or_fail(c, role);
	if (!(t.where = location(c, ptr, false)))
		c->fatal = SL_ERR_NOMEM;
	arr[r->ntargets++] = t;
}

static void
parse_rule(struct pctx *c, const char *name, json_t *v, const char *ptr)
{
	if (!simple_name(name, 64))
		problem(c, ptr, true, "rule name '%s' is not valid (1-64 of A-Z a-z 0-9 . - _)",
		        name);
	if (!json_is_object(v)) {
		problem(c, ptr, false, "rule '%s' must be a mapping, not %s", name, kind(v));
		return;
	}
	check_keys(c, v, ptr, rule_keys, "a rule");
	const char *bus, *schedule, *tz, *desc;
	static const char *const states[] = { "ENABLED", "DISABLED", NULL };
	static const char *const missed[] = { "skip", "once", "all", NULL };
	get_str(c, v, ptr, "bus", &bus);
	get_str(c, v, ptr, "schedule", &schedule);
	get_str(c, v, ptr, "timezone", &tz);
	get_str(c, v, ptr, "description", &desc);
	const char *state = get_word(c, v, ptr, "state", states);
	const char *miss = get_word(c, v, ptr, "missedRuns", missed);
	if (!bus)
		bus = "default";
	else if (!bus_name(bus)) {
		char *p = child(c, ptr, "bus");
		if (p)
			problem(c, p, false, "bus name '%s' is not valid", bus);
		sl_free(p);
	}
	if (desc && strlen(desc) > 512) {
		char *p = child(c, ptr, "description");
		if (p)
			problem(c, p, false, "'description' is longer than 512 characters");
		sl_free(p);
	}
	json_t *pv = json_object_get(v, "eventPattern");
	json_t *pattern = NULL;
	if (pv && schedule)
		problem(c, ptr, true, "rule '%s' has both 'eventPattern' and 'schedule'; give one",
		        name);
	else if (!pv && !schedule && !json_object_get(v, "schedule"))
		problem(c, ptr, true, "rule '%s' needs 'eventPattern' or 'schedule'", name);
	if (pv) {
		char *p = child(c, ptr, "eventPattern");
		if (p)
			pattern = parse_pattern(c, pv, p);
		sl_free(p);
	}
	if (schedule) {
		char *p = child(c, ptr, "schedule");
		sched_t *sc = NULL;
		struct sl_error err = { 0 };
		struct sched_diag diag = { 0 };
		sl_err rc = sched_parse_diag(schedule, tz, &sc, &err, &diag);
		sched_free(sc);
		if (rc == SL_ERR_NOMEM)
			c->fatal = rc;
		else if (rc && p && tz && !diag.reason[0]) {
			/* the expression is fine; the zone is not */
			char *zp = child(c, ptr, "timezone");
			if (zp)
				problem(c, zp, false, "%s", sl_error_text(&err));
			sl_free(zp);
		} else if (rc && p) {
			problem(c, p, false, "invalid schedule '%s': %s", schedule,
			        diag.reason[0] ? diag.reason : sl_error_text(&err));
		}
		if (p && strcmp(bus, "default") != 0)
			problem(c, p, false,
			        "a schedule rule must be on the default bus (not '%s')", bus);
		sl_free(p);
	} else if (tz || miss) {
		problem(c, ptr, true, "'timezone' and 'missedRuns' apply to schedule rules only");
	}
	for (size_t i = 0; i < c->a->nrules; i++)
		if (strcmp(c->a->rules[i].name, name) == 0
		    && strcmp(c->a->rules[i].bus, bus) == 0) {
			problem(c, ptr, true, "rule '%s' is also declared at %s", name,
			        c->a->rules[i].where);
			json_decref(pattern);
			return;
		}
	struct app_rule *arr = grow(c, c->a->rules, c->a->nrules, sizeof *arr);
	if (!arr) {
		json_decref(pattern);
		return;
	}
	c->a->rules = arr;
	struct app_rule *r = &arr[c->a->nrules++];
	r->name = dup_or_fail(c, name);
	r->bus = dup_or_fail(c, bus);
	r->pattern = pattern;
	r->schedule = dup_or_fail(c, schedule);
	r->timezone = dup_or_fail(c, tz);
	r->missed = dup_or_fail(c, miss);
	r->state = dup_or_fail(c, state ? state : "ENABLED");
	r->description = dup_or_fail(c, desc);
	if (!(r->where = location(c, ptr, true)))
		c->fatal = SL_ERR_NOMEM;
	json_t *targets = json_object_get(v, "targets");
	if (!targets || json_is_null(targets))
		return;
	char *tp = child(c, ptr, "targets");
	if (!tp)
		return;
	if (!json_is_array(targets)) {
		problem(c, tp, false, "'targets' must be a list, not %s", kind(targets));
	} else if (json_array_size(targets) > 5) {
		problem(c, tp, false, "a rule has at most 5 targets, not %zu",
		        json_array_size(targets));
	} else {
		size_t i;
		json_t *t;
		json_array_foreach(targets, i, t)
		{
			char *p = child_index(c, tp, i);
			if (!p)
				break;
			bool was_bad = c->bad;
			c->bad = false;
			parse_target(c, r, t, p);
			c->bad = c->bad || was_bad;
			sl_free(p);
		}
	}
	sl_free(tp);
}

/* ---- archives --------------------------------------------------------------------------- */

static void
parse_archive(struct pctx *c, const char *name, json_t *v, const char *ptr)
{
	if (!simple_name(name, 48))
		problem(c, ptr, true, "archive name '%s' is not valid (1-48 of A-Z a-z 0-9 . - _)",
		        name);
	if (!json_is_object(v)) {
		problem(c, ptr, false, "archive '%s' must be a mapping, not %s", name, kind(v));
		return;
	}
	check_keys(c, v, ptr, archive_keys, "an archive");
	const char *bus, *desc;
	get_str(c, v, ptr, "bus", &bus);
	get_str(c, v, ptr, "description", &desc);
	long days = 0;
	get_int(c, v, ptr, "retentionDays", 0, 2147483647L, &days, NULL);
	json_t *pattern = NULL, *pv = json_object_get(v, "eventPattern");
	if (pv) {
		char *p = child(c, ptr, "eventPattern");
		if (p)
			pattern = parse_pattern(c, pv, p);
		sl_free(p);
	}
	for (size_t i = 0; i < c->a->narchives; i++)
		if (strcmp(c->a->archives[i].name, name) == 0) {
			problem(c, ptr, true, "archive '%s' is also declared at %s", name,
			        c->a->archives[i].where);
			json_decref(pattern);
			return;
		}
	struct app_archive *arr = grow(c, c->a->archives, c->a->narchives, sizeof *arr);
	if (!arr) {
		json_decref(pattern);
		return;
	}
	c->a->archives = arr;
	struct app_archive *x = &arr[c->a->narchives++];
	x->name = dup_or_fail(c, name);
	x->bus = dup_or_fail(c, bus ? bus : "default");
	x->pattern = pattern;
	x->description = dup_or_fail(c, desc);
	x->retention_days = days;
	if (!(x->where = location(c, ptr, true)))
		c->fatal = SL_ERR_NOMEM;
}

/* ---- files ------------------------------------------------------------------------------ */

typedef void (*entry_fn)(struct pctx *c, const char *name, json_t *v, const char *ptr);

static void
parse_map(struct pctx *c, json_t *root, const char *key, entry_fn fn)
{
	json_t *m = json_object_get(root, key);
	if (!m || json_is_null(m))
		return;
	char *ptr = child(c, "", key);
	if (!ptr)
		return;
	if (!json_is_object(m)) {
		problem(c, ptr, false, "'%s' must be a mapping of names to entries, not %s", key,
		        kind(m));
	} else {
		const char *k;
		json_t *v;
		json_object_foreach(m, k, v)
		{
			char *p = child(c, ptr, k);
			if (!p)
				break;
			fn(c, k, v, p);
			sl_free(p);
		}
	}
	sl_free(ptr);
}

static bool
is_definition(json_t *root)
{
	return json_is_object(root)
	        && (json_object_get(root, "StartAt") || json_object_get(root, "States"));
}

static bool
text_is_definition(const char *text, size_t len)
{
	struct sm_problems pb = { 0 };
	json_t *root = NULL;
	bool def = sm_definition_load(text, len, NULL, SM_FORMAT_AUTO, &root, NULL, &pb) == SL_OK
	        && is_definition(root);
	json_decref(root);
	sm_problems_clear(&pb);
	return def;
}

static bool
shape_is_app(const char *text, size_t len)
{
	struct sm_problems pb = { 0 };
	json_t *root = NULL;
	bool app = false;
	if (sm_definition_load(text, len, NULL, SM_FORMAT_AUTO, &root, NULL, &pb) == SL_OK
	    && json_is_object(root) && !is_definition(root))
		for (size_t i = 0; top_keys[i] && !app; i++)
			app = json_object_get(root, top_keys[i]) != NULL;
	json_decref(root);
	sm_problems_clear(&pb);
	return app;
}

bool
app_text_is_app(const char *text, size_t len)
{
	/* only the shape matters: unset variables and bad references read as nothing, and
	 * the text as written is tried too (a bad reference can break the substituted one) */
	struct app_subst_in sc = { NULL, NULL, text, len, false };
	struct app_subst sub;
	char *now = NULL;
	size_t now_len = 0;
	sl_err rc = app_subst_text(&sc, &now, &now_len, &sub);
	app_subst_free(&sub);
	bool app = rc != SL_ERR_NOMEM && shape_is_app(now, now_len);
	sl_free(now);
	return app || (rc != SL_OK && shape_is_app(text, len));
}

/* Only blanks and YAML comments. */
static bool
blank(const char *text, size_t len)
{
	bool comment = false;
	for (size_t i = 0; i < len; i++) {
		char ch = text[i];
		if (ch == '\n')
			comment = false;
		else if (ch == '#' && !comment)
			comment = true;
		else if (!comment && ch != ' ' && ch != '\t' && ch != '\r')
			return false;
	}
	return true;
}

/* skip_definitions: a lone definition is skipped silently (directory reads) instead of
 * being reported. */
static sl_err load_tree(struct app *a, const char *text, size_t len, const char *path,
                        struct sm_problems *problems, bool skip_definitions);

static sl_err
load_text(struct app *a, const char *text, size_t len, const char *path,
          struct sm_problems *problems, bool skip_definitions)
{
	if (blank(text, len)) {
		a->files++; /* an empty app file (or only comments) declares nothing */
		return SL_OK;
	}
	/* definitions sit in app directories as written (no substitution): skip them first,
	 * so a ${...} in one is not taken for an app file's variable */
	if (skip_definitions && text_is_definition(text, len))
		return SL_OK;
	struct app_subst_in sc = { path, problems, text, len, false };
	struct app_subst sub;
	char *now = NULL;
	size_t now_len = 0, before = problems->count;
	sl_err rc = app_subst_text(&sc, &now, &now_len, &sub);
	if (rc == SL_OK) {
		rc = load_tree(a, now, now_len, path, problems, skip_definitions);
		/* positions found in the substituted text, told as positions in the file */
		sl_err frc = app_subst_fix_problems(&sub, now, now_len, path, problems, before);
		if (frc)
			rc = frc;
	}
	app_subst_free(&sub);
	sl_free(now);
	return rc;
}

static sl_err
load_tree(struct app *a, const char *text, size_t len, const char *path,
          struct sm_problems *problems, bool skip_definitions)
{
	struct pctx c = { .a = a, .path = path, .pb = problems };
	json_t *root = NULL;
	size_t before = problems->count;
	if (blank(text, len)) {
		a->files++;
		return SL_OK;
	}
	sl_err rc = sm_definition_load(text, len, path, SM_FORMAT_AUTO, &root, &c.pos, problems);
	if (rc)
		return rc == SL_ERR_NOMEM ? rc : SL_ERR_PARSE;
	if (skip_definitions && is_definition(root)) {
		json_decref(root);
		sm_positions_free(c.pos);
		return SL_OK;
	}
	const char *slash = strrchr(path, '/');
	c.dir = slash ? sl_strndup(path, (size_t)(slash - path)) : NULL;
	if (slash && !c.dir)
		c.fatal = SL_ERR_NOMEM;
	if (json_is_null(root) || (json_is_object(root) && json_object_size(root) == 0)) {
		/* an empty app file declares nothing; fine */
	} else if (!json_is_object(root)) {
		problem(&c, "", false, "an app file must be a mapping with keys %s, not %s",
		        "stateMachines, activities, buses, rules, archives", kind(root));
	} else if (is_definition(root)) {
		problem(&c, "", false,
		        "this is a lone state machine definition, not an app file; reference it "
		        "from an app file's stateMachines with definitionFile");
	} else {
		check_keys(&c, root, "", top_keys, "the app file");
		parse_map(&c, root, "stateMachines", parse_machine);
		json_t *v;
		if ((v = json_object_get(root, "activities")) && !json_is_null(v))
			parse_name_list(&c, v, "/activities", false);
		if ((v = json_object_get(root, "buses")) && !json_is_null(v))
			parse_name_list(&c, v, "/buses", true);
		parse_map(&c, root, "rules", parse_rule);
		parse_map(&c, root, "archives", parse_archive);
	}
	a->files++;
	json_decref(root);
	sm_positions_free(c.pos);
	sl_free(c.dir);
	if (c.fatal)
		return c.fatal;
	return c.bad || problems->count != before ? SL_ERR_PARSE : SL_OK;
}

sl_err
app_load_text(struct app *a, const char *text, size_t len, const char *path,
              struct sm_problems *problems)
{
	return load_text(a, text, len, path, problems, false);
}

static sl_err
load_file(struct app *a, const char *path, struct sm_problems *problems, bool skip_definitions)
{
	char *text = NULL;
	size_t len = 0;
	struct sl_error err = { 0 };
	sl_err rc = cli_read_file(path, SM_DEFINITION_MAX_BYTES + 1, &text, &len, &err);
	if (rc) {
		if (sm_problems_add(problems, path, "", "%s", sl_error_text(&err)) != SL_OK)
			return SL_ERR_NOMEM;
		return SL_ERR_IO;
	}
	rc = load_text(a, text, len, path, problems, skip_definitions);
	sl_free(text);
	return rc;
}

static int
cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static bool
app_suffix(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.'
	        && ((n > 5 && strcmp(name + n - 5, ".yaml") == 0)
	            || (n > 4 && strcmp(name + n - 4, ".yml") == 0)
	            || (n > 5 && strcmp(name + n - 5, ".json") == 0));
}

sl_err
app_load_path(struct app *a, const char *path, struct sm_problems *problems)
{
	DIR *d = opendir(path);
	if (!d)
		return load_file(a, path, problems, false);
	char **names = NULL;
	size_t n = 0;
	sl_err rc = SL_OK;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!app_suffix(e->d_name))
			continue;
		if (n == APP_FILES_MAX) {
			rc = sm_problems_add(problems, path, "", "more than %d app files",
			                     APP_FILES_MAX)
			        ? SL_ERR_NOMEM
			        : SL_ERR_LIMIT;
			break;
		}
		char **nn = sl_reallocarray(names, n + 1, sizeof *names);
		char *p = nn ? sl_asprintf("%s/%s", path, e->d_name) : NULL;
		if (nn)
			names = nn;
		if (!p) {
			rc = SL_ERR_NOMEM;
			break;
		}
		names[n++] = p;
	}
	closedir(d);
	if (rc == SL_OK)
		qsort(names, n, sizeof *names, cmp_str);
	size_t files_before = a->files;
	for (size_t i = 0; i < n && rc != SL_ERR_NOMEM; i++) {
		sl_err r = load_file(a, names[i], problems, true);
		if (r && rc == SL_OK)
			rc = r;
		else if (r == SL_ERR_NOMEM)
			rc = r;
	}
	for (size_t i = 0; i < n; i++)
		sl_free(names[i]);
	sl_free(names);
	if (rc == SL_OK && a->files == files_before) {
		if (sm_problems_add(problems, path, "", "no app file (*.yaml, *.yml, *.json) here")
		    != SL_OK)
			return SL_ERR_NOMEM;
		return SL_ERR_IO;
	}
	return rc;
}

/* ---- model ------------------------------------------------------------------------------ */

struct app *
app_new(void)
{
	return SL_NEW(struct app);
}

void
app_free(struct app *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nmachines; i++) {
		sl_free(a->machines[i].name);
		sl_free(a->machines[i].type);
		json_decref(a->machines[i].definition);
		sl_free(a->machines[i].where);
	}
	for (size_t i = 0; i < a->nactivities; i++) {
		sl_free(a->activities[i].name);
		sl_free(a->activities[i].where);
	}
	for (size_t i = 0; i < a->nbuses; i++) {
		sl_free(a->buses[i].name);
		sl_free(a->buses[i].description);
		sl_free(a->buses[i].where);
	}
	for (size_t i = 0; i < a->nrules; i++) {
		struct app_rule *r = &a->rules[i];
		for (size_t j = 0; j < r->ntargets; j++) {
			struct app_target *t = &r->targets[j];
			sl_free(t->id);
			sl_free(t->arn);
			sl_free(t->machine);
			sl_free(t->bus);
			json_decref(t->input);
			sl_free(t->input_path);
			json_decref(t->transformer);
			json_decref(t->retry);
			json_decref(t->dead_letter);
			sl_free(t->role_arn);
			sl_free(t->where);
		}
		sl_free(r->targets);
		sl_free(r->name);
		sl_free(r->bus);
		json_decref(r->pattern);
		sl_free(r->schedule);
		sl_free(r->timezone);
		sl_free(r->missed);
		sl_free(r->state);
		sl_free(r->description);
		sl_free(r->where);
	}
	for (size_t i = 0; i < a->narchives; i++) {
		sl_free(a->archives[i].name);
		sl_free(a->archives[i].bus);
		json_decref(a->archives[i].pattern);
		sl_free(a->archives[i].description);
		sl_free(a->archives[i].where);
	}
	sl_free(a->machines);
	sl_free(a->activities);
	sl_free(a->buses);
	sl_free(a->rules);
	sl_free(a->archives);
	sl_free(a);
}

const struct app_machine *
app_find_machine(const struct app *a, const char *name)
{
	for (size_t i = 0; i < a->nmachines; i++)
		if (strcmp(a->machines[i].name, name) == 0)
			return &a->machines[i];
	return NULL;
}

bool
app_has_bus(const struct app *a, const char *name)
{
	if (strcmp(name, "default") == 0)
		return true;
	for (size_t i = 0; i < a->nbuses; i++)
		if (strcmp(a->buses[i].name, name) == 0)
			return true;
	return false;
}
