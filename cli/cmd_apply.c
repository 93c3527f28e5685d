/*
 * cmd_apply.c - `sluice apply -f FILE|DIR ...`: make a running server hold what the app
 * files declare (docs/APP.md).
 *
 * 1. Read and check the app files (nothing is sent when they have problems).
 * 2. Read the server's state through the API (List/Describe calls).
 * 3. Plan: create what is missing, update what differs (definitions and patterns compared
 *    as JSON, not as text), and with --prune delete what the files do not declare.
 * 4. Print the plan; with --dry-run stop there.
 * 5. Apply in dependency order (buses, archives, activities, state machines, rules,
 *    targets; deletions in the reverse order). Each step is one API call, atomic on the
 *    server; the first failure stops the run and is reported with what was applied.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/app_file.h"
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "cli/cli_http.h"
#include "common/sl_alloc.h"

#define APPLY_PATHS_MAX 64

enum kind { K_BUS, K_ARCHIVE, K_ACTIVITY, K_MACHINE, K_RULE, K_TARGET, K_COUNT };
enum op { OP_CREATE, OP_UPDATE, OP_DELETE };

static const char *const kind_word[K_COUNT]
        = { "bus", "archive", "activity", "state machine", "rule", "target" };

struct step {
	enum kind kind;
	enum op op;
	char *name;   /* what the plan line names */
	char *detail; /* the plan line's tail: "(STANDARD)", ": schedule a -> b" */
	const char *target;
	json_t *req;
};

struct plan {
	struct step *steps;
	size_t n;
	size_t kept;      /* server resources not in the files, left alone (no --prune) */
	size_t unchanged; /* declared resources already as declared */
};

/* The server's state as read before planning. */
struct current {
	json_t *buses;      /* ListEventBuses entries */
	json_t *activities; /* ListActivities entries; NULL when the server has none */
	json_t *machines;   /* ListStateMachines entries */
	json_t *rules;      /* ListRules entries of every bus */
	json_t *archives;   /* ListArchives entries; NULL when the server has none */
	char region[64];
	char account[32];
};

struct ctx {
	const char *endpoint;
	bool prune;
	struct app *app;
	struct current cur;
	struct plan plan;
	int code; /* the exit code once something failed */
};

/* ---- small helpers ---------------------------------------------------------------------- */

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool
str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* An entry of arr whose member key equals value (and whose member key2 equals value2 when
 * key2 is given). */
static json_t *
find_by(json_t *arr, const char *key, const char *value, const char *key2, const char *value2)
{
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e)
	{
		if (str_eq(jstr(e, key), value) && (!key2 || str_eq(jstr(e, key2), value2)))
			return e;
	}
	return NULL;
}

/* A JSON text parsed, or NULL. */
static json_t *
parse_text(const char *s)
{
	return s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
}

/* Both texts (or absent) hold the same JSON value. */
static bool
json_text_equal(json_t *want, const char *have_text)
{
	if (!want || !have_text)
		return !want && !have_text;
	json_t *have = parse_text(have_text);
	bool eq = have && json_equal(want, have);
	json_decref(have);
	return eq;
}

static void add_change(char *buf, size_t cap, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
add_change(char *buf, size_t cap, const char *fmt, ...)
{
	size_t n = strlen(buf);
	if (n + 3 >= cap)
		return;
	if (n)
		n += (size_t)snprintf(buf + n, cap - n, "; ");
	else
		n += (size_t)snprintf(buf + n, cap - n, ": ");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + n, cap - n, fmt, ap);
	va_end(ap);
}

static void
add_step(struct ctx *c, enum kind k, enum op op, const char *name, const char *detail,
         const char *target, json_t *req)
{
	if (c->code)
		goto fail;
	struct step *s = sl_reallocarray(c->plan.steps, c->plan.n + 1, sizeof *s);
	if (!s || !req)
		goto nomem;
	c->plan.steps = s;
	s = &s[c->plan.n];
	s->kind = k;
	s->op = op;
	s->name = sl_strdup(name);
	s->detail = sl_strdup(detail ? detail : "");
	s->target = target;
	s->req = req;
	if (!s->name || !s->detail) {
		sl_free(s->name);
		sl_free(s->detail);
		goto nomem;
	}
	c->plan.n++;
	return;
nomem:
	fprintf(stderr, "sluice apply: out of memory\n");
	c->code = CLI_RUNTIME;
fail:
	json_decref(req);
}

/* A plan-time problem (bad reference, unchangeable field): nothing will be applied. */
static void __attribute__((format(printf, 2, 3))) plan_error(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "sluice apply: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	if (!c->code)
		c->code = CLI_USAGE;
}

static void
bus_arn(const struct ctx *c, const char *name, char *out, size_t cap)
{
	json_t *b = find_by(c->cur.buses, "Name", name, NULL, NULL);
	if (b && jstr(b, "Arn"))
		snprintf(out, cap, "%s", jstr(b, "Arn"));
	else
		snprintf(out, cap, "arn:aws:events:%s:%s:event-bus/%s", c->cur.region,
		         c->cur.account, name);
}

static void
machine_arn(const struct ctx *c, const char *name, char *out, size_t cap)
{
	json_t *m = find_by(c->cur.machines, "name", name, NULL, NULL);
	if (m && jstr(m, "stateMachineArn"))
		snprintf(out, cap, "%s", jstr(m, "stateMachineArn"));
	else
		snprintf(out, cap, "arn:aws:states:%s:%s:stateMachine:%s", c->cur.region,
		         c->cur.account, name);
}

/* Used by a declared rule, archive or target: never pruned, even when not declared. */
static bool
bus_referenced(const struct app *a, const char *name)
{
	for (size_t i = 0; i < a->nrules; i++) {
		if (strcmp(a->rules[i].bus, name) == 0)
			return true;
		for (size_t j = 0; j < a->rules[i].ntargets; j++)
			if (a->rules[i].targets[j].bus
			    && strcmp(a->rules[i].targets[j].bus, name) == 0)
				return true;
	}
	for (size_t i = 0; i < a->narchives; i++)
		if (strcmp(a->archives[i].bus, name) == 0)
			return true;
	return false;
}

static bool
machine_referenced(const struct app *a, const char *name)
{
	for (size_t i = 0; i < a->nrules; i++)
		for (size_t j = 0; j < a->rules[i].ntargets; j++)
			if (a->rules[i].targets[j].machine
			    && strcmp(a->rules[i].targets[j].machine, name) == 0)
				return true;
	return false;
}

static bool
bus_known(const struct ctx *c, const char *name)
{
	return app_has_bus(c->app, name) || find_by(c->cur.buses, "Name", name, NULL, NULL);
}

/* ---- reading the server's state --------------------------------------------------------- */

/* Reports a failed read and sets the exit code; returns false. */
static bool
read_failed(struct ctx *c, const char *what, const struct sl_error *err)
{
	fprintf(stderr, "sluice apply: reading %s: %s\n", what, sl_error_text(err));
	c->code = CLI_RUNTIME;
	return false;
}

static bool
read_state(struct ctx *c)
{
	struct sl_error err = { 0 };
	const char *type = NULL;
	sl_err rc = cli_api_list(c->endpoint, "AWSEvents.ListEventBuses",
	                         json_pack("{s:i}", "Limit", 100), "EventBuses", "NextToken",
	                         &c->cur.buses, NULL, &err);
	if (rc)
		return read_failed(c, "event buses", &err);
	/* ARNs of things not created yet follow the default bus's region and account */
	snprintf(c->cur.region, sizeof c->cur.region, "us-east-1");
	snprintf(c->cur.account, sizeof c->cur.account, "000000000000");
	json_t *def = find_by(c->cur.buses, "Name", "default", NULL, NULL);
	const char *arn = def ? jstr(def, "Arn") : NULL;
	if (arn && strncmp(arn, "arn:", 4) == 0) {
		char buf[256];
		snprintf(buf, sizeof buf, "%s", arn);
		char *f[6] = { 0 };
		char *p = buf;
		for (int i = 0; i < 5 && p; i++) {
			f[i] = p;
			p = strchr(p, ':');
			if (p)
				*p++ = '\0';
		}
		if (f[3] && f[4] && p) {
			snprintf(c->cur.region, sizeof c->cur.region, "%s", f[3]);
			snprintf(c->cur.account, sizeof c->cur.account, "%s", f[4]);
		}
	}

	rc = cli_api_list(c->endpoint, "AWSStepFunctions.ListActivities",
	                  json_pack("{s:i}", "maxResults", 1000), "activities", "nextToken",
	                  &c->cur.activities, &type, &err);
	if (rc && type && strcmp(type, "UnknownOperationException") == 0) {
		c->cur.activities = NULL;
		if (c->app->nactivities) {
			fprintf(stderr,
			        "sluice apply: the app files declare activities, but the server "
			        "at %s does not serve them (ListActivities: %s)\n",
			        c->endpoint, sl_error_text(&err));
			c->code = CLI_RUNTIME;
			return false;
		}
	} else if (rc) {
		return read_failed(c, "activities", &err);
	}

	rc = cli_api_list(c->endpoint, "AWSStepFunctions.ListStateMachines",
	                  json_pack("{s:i}", "maxResults", 1000), "stateMachines", "nextToken",
	                  &c->cur.machines, NULL, &err);
	if (rc)
		return read_failed(c, "state machines", &err);

	if (!(c->cur.rules = json_array())) {
		sl_error_set(&err, SL_ERR_NOMEM, "out of memory");
		return read_failed(c, "rules", &err);
	}
	size_t i;
	json_t *b;
	json_array_foreach(c->cur.buses, i, b)
	{
		json_t *rules = NULL;
		rc = cli_api_list(
		        c->endpoint, "AWSEvents.ListRules",
		        json_pack("{s:s,s:i}", "EventBusName", jstr(b, "Name"), "Limit", 100),
		        "Rules", "NextToken", &rules, NULL, &err);
		if (rc)
			return read_failed(c, "rules", &err);
		size_t j;
		json_t *r;
		json_array_foreach(rules, j, r)
		{
			if (!jstr(r, "EventBusName"))
				json_object_set_new(r, "EventBusName",
				                    json_string(jstr(b, "Name")));
		}
		json_array_extend(c->cur.rules, rules);
		json_decref(rules);
	}

	rc = cli_api_list(c->endpoint, "AWSEvents.ListArchives", json_pack("{s:i}", "Limit", 100),
	                  "Archives", "NextToken", &c->cur.archives, &type, &err);
	if (rc && type && strcmp(type, "UnknownOperationException") == 0) {
		c->cur.archives = NULL;
		if (c->app->narchives) {
			fprintf(stderr,
			        "sluice apply: the app files declare archives, but the server at "
			        "%s "
			        "does not serve them yet (ListArchives: %s)\n",
			        c->endpoint, sl_error_text(&err));
			c->code = CLI_RUNTIME;
			return false;
		}
	} else if (rc) {
		return read_failed(c, "archives", &err);
	}
	return true;
}

/* One Describe call; NULL after reporting. */
static json_t *
describe(struct ctx *c, const char *target, json_t *req, const char *what)
{
	struct sl_error err = { 0 };
	json_t *ans = NULL;
	sl_err rc = cli_api_call(c->endpoint, target, req, &ans, &err);
	if (rc) {
		json_decref(ans);
		read_failed(c, what, &err);
		return NULL;
	}
	return ans;
}

/* ---- planning --------------------------------------------------------------------------- */

static void
plan_buses(struct ctx *c)
{
	for (size_t i = 0; i < c->app->nbuses; i++) {
		const struct app_bus *b = &c->app->buses[i];
		if (find_by(c->cur.buses, "Name", b->name, NULL, NULL)) {
			c->plan.unchanged++; /* a bus has nothing to update but its description */
			continue;
		}
		json_t *req = json_pack("{s:s}", "Name", b->name);
		if (req && b->description)
			json_object_set_new(req, "Description", json_string(b->description));
		add_step(c, K_BUS, OP_CREATE, b->name, NULL, "AWSEvents.CreateEventBus", req);
	}
	size_t i;
	json_t *e;
	json_array_foreach(c->cur.buses, i, e)
	{
		const char *name = jstr(e, "Name");
		if (!name || strcmp(name, "default") == 0 || app_has_bus(c->app, name)
		    || bus_referenced(c->app, name))
			continue;
		if (!c->prune)
			c->plan.kept++;
		else
			add_step(c, K_BUS, OP_DELETE, name, NULL, "AWSEvents.DeleteEventBus",
			         json_pack("{s:s}", "Name", name));
	}
}

static void
plan_activities(struct ctx *c)
{
	for (size_t i = 0; i < c->app->nactivities; i++) {
		const char *name = c->app->activities[i].name;
		if (find_by(c->cur.activities, "name", name, NULL, NULL))
			c->plan.unchanged++;
		else
			add_step(c, K_ACTIVITY, OP_CREATE, name, NULL,
			         "AWSStepFunctions.CreateActivity",
			         json_pack("{s:s}", "name", name));
	}
	size_t i;
	json_t *e;
	json_array_foreach(c->cur.activities, i, e)
	{
		const char *name = jstr(e, "name");
		bool declared = false;
		for (size_t j = 0; name && j < c->app->nactivities && !declared; j++)
			declared = strcmp(c->app->activities[j].name, name) == 0;
		if (!name || declared)
			continue;
		if (!c->prune)
			c->plan.kept++;
		else
			add_step(c, K_ACTIVITY, OP_DELETE, name, NULL,
			         "AWSStepFunctions.DeleteActivity",
			         json_pack("{s:s}", "activityArn", jstr(e, "activityArn")));
	}
}

/* What changed between two definitions, in words: StartAt and the top-level states. */
static void
definition_changes(json_t *want, json_t *have, char *buf, size_t cap)
{
	if (!str_eq(jstr(want, "StartAt"), jstr(have, "StartAt")))
		add_change(buf, cap, "StartAt %s -> %s",
		           jstr(have, "StartAt") ? jstr(have, "StartAt") : "(none)",
		           jstr(want, "StartAt") ? jstr(want, "StartAt") : "(none)");
	json_t *ws = json_object_get(want, "States"), *hs = json_object_get(have, "States");
	char added[256] = "", removed[256] = "", changed[256] = "";
	const char *k;
	json_t *v;
	json_object_foreach(ws, k, v)
	{
		json_t *h = json_object_get(hs, k);
		char *list = !h ? added : !json_equal(v, h) ? changed : NULL;
		size_t n = list ? strlen(list) : 0;
		if (list && n + 2 < sizeof added)
			snprintf(list + n, sizeof added - n, "%s%s", n ? ", " : "", k);
	}
	json_object_foreach(hs, k, v)
	{
		size_t n = strlen(removed);
		if (!json_object_get(ws, k) && n + 2 < sizeof removed)
			snprintf(removed + n, sizeof removed - n, "%s%s", n ? ", " : "", k);
	}
	if (added[0])
		add_change(buf, cap, "states added: %s", added);
	if (removed[0])
		add_change(buf, cap, "states removed: %s", removed);
	if (changed[0])
		add_change(buf, cap, "states changed: %s", changed);
	if (!buf[0])
		add_change(buf, cap, "definition changed");
}

static void
plan_machines(struct ctx *c)
{
	for (size_t i = 0; i < c->app->nmachines && !c->code; i++) {
		const struct app_machine *m = &c->app->machines[i];
		char *def = json_dumps(m->definition, JSON_INDENT(2));
		json_t *have = find_by(c->cur.machines, "name", m->name, NULL, NULL);
		if (!def) {
			plan_error(c, "out of memory");
			c->code = CLI_RUNTIME;
			return;
		}
		if (!have) {
			char detail[64];
			snprintf(detail, sizeof detail, " (%s)", m->type);
			add_step(c, K_MACHINE, OP_CREATE, m->name, detail,
			         "AWSStepFunctions.CreateStateMachine",
			         json_pack("{s:s,s:s,s:s}", "name", m->name, "definition", def,
			                   "type", m->type));
			free(def);
			continue;
		}
		const char *arn = jstr(have, "stateMachineArn");
		json_t *d = describe(c, "AWSStepFunctions.DescribeStateMachine",
		                     json_pack("{s:s}", "stateMachineArn", arn), "a state machine");
		if (!d) {
			free(def);
			return;
		}
		const char *type = jstr(d, "type");
		if (type && strcmp(type, m->type) != 0) {
			plan_error(c,
			           "%s: state machine %s is %s on the server; a type cannot be "
			           "changed (delete it or use another name)",
			           m->where, m->name, type);
		} else {
			json_t *cur = parse_text(jstr(d, "definition"));
			if (cur && json_equal(cur, m->definition)) {
				c->plan.unchanged++;
			} else {
				char detail[1024] = "";
				definition_changes(m->definition, cur, detail, sizeof detail);
				add_step(c, K_MACHINE, OP_UPDATE, m->name, detail,
				         "AWSStepFunctions.UpdateStateMachine",
				         json_pack("{s:s,s:s}", "stateMachineArn", arn,
				                   "definition", def));
			}
			json_decref(cur);
		}
		json_decref(d);
		free(def);
	}
	size_t i;
	json_t *e;
	json_array_foreach(c->cur.machines, i, e)
	{
		const char *name = jstr(e, "name");
		if (!name || app_find_machine(c->app, name) || machine_referenced(c->app, name))
			continue;
		if (!c->prune)
			c->plan.kept++;
		else
			add_step(c, K_MACHINE, OP_DELETE, name, NULL,
			         "AWSStepFunctions.DeleteStateMachine",
			         json_pack("{s:s}", "stateMachineArn", jstr(e, "stateMachineArn")));
	}
}

static const char *
or_none(const char *s)
{
	return s ? s : "(none)";
}

/* "NAME" on the default bus, "BUS/NAME" elsewhere. */
static void
rule_label(const char *bus, const char *name, char *out, size_t cap)
{
	if (!bus || strcmp(bus, "default") == 0)
		snprintf(out, cap, "%s", name);
	else
		snprintf(out, cap, "%s/%s", bus, name);
}

static json_t *
rule_request(const struct app_rule *r)
{
	json_t *req = json_pack("{s:s,s:s,s:s}", "Name", r->name, "EventBusName", r->bus, "State",
	                        r->state);
	if (!req)
		return NULL;
	if (r->pattern) {
		char *text = json_dumps(r->pattern, JSON_COMPACT);
		if (!text) {
			json_decref(req);
			return NULL;
		}
		json_object_set_new(req, "EventPattern", json_string(text));
		free(text);
	}
	if (r->schedule)
		json_object_set_new(req, "ScheduleExpression", json_string(r->schedule));
	if (r->description)
		json_object_set_new(req, "Description", json_string(r->description));
	/* sluice extensions, sent only when set so an AWS endpoint sees plain PutRule */
	if (r->timezone)
		json_object_set_new(req, "ScheduleExpressionTimezone", json_string(r->timezone));
	if (r->missed)
		json_object_set_new(req, "MissedRunPolicy", json_string(r->missed));
	return req;
}

/* The target as PutTargets wants it; NULL after a plan error. */
static json_t *
target_request(struct ctx *c, const struct app_rule *r, const struct app_target *t)
{
	char arn[600];
	if (t->arn) {
		snprintf(arn, sizeof arn, "%s", t->arn);
	} else if (t->machine) {
		if (!app_find_machine(c->app, t->machine)
		    && !find_by(c->cur.machines, "name", t->machine, NULL, NULL)) {
			plan_error(
			        c,
			        "%s: target %s of rule %s: no state machine named '%s' in the app "
			        "files or on the server",
			        t->where, t->id, r->name, t->machine);
			return NULL;
		}
		machine_arn(c, t->machine, arn, sizeof arn);
	} else {
		if (!bus_known(c, t->bus)) {
			plan_error(
			        c,
			        "%s: target %s of rule %s: no bus named '%s' in the app files or "
			        "on the server",
			        t->where, t->id, r->name, t->bus);
			return NULL;
		}
		bus_arn(c, t->bus, arn, sizeof arn);
	}
	json_t *o = json_pack("{s:s,s:s}", "Id", t->id, "Arn", arn);
	if (!o)
		return NULL;
	if (t->input) {
		char *s = json_dumps(t->input, JSON_COMPACT | JSON_ENCODE_ANY);
		json_object_set_new(o, "Input", json_string(s ? s : "null"));
		free(s);
	}
	if (t->input_path)
		json_object_set_new(o, "InputPath", json_string(t->input_path));
	if (t->transformer)
		json_object_set(o, "InputTransformer", t->transformer);
	if (t->retry && json_object_size(t->retry))
		json_object_set(o, "RetryPolicy", t->retry);
	if (t->dead_letter && json_object_get(t->dead_letter, "Arn")) {
		json_object_set(o, "DeadLetterConfig", t->dead_letter);
	} else if (t->dead_letter) {
		/* `deadLetter: true`: sluice keeps dead letters itself, under a queue ARN that
		 * only names them (the deliverer dead-letters only targets with an Arn) */
		char dlq[300];
		snprintf(dlq, sizeof dlq, "arn:aws:sqs:%s:%s:%s", c->cur.region, c->cur.account,
		         APP_DEAD_LETTERS);
		json_object_set_new(o, "DeadLetterConfig", json_pack("{s:s}", "Arn", dlq));
	}
	if (t->role_arn)
		json_object_set_new(o, "RoleArn", json_string(t->role_arn));
	return o;
}

/* Which fields of a target differ ("" when none). */
static void
target_changes(json_t *want, json_t *have, char *buf, size_t cap)
{
	static const char *const fields[][2] = { { "Arn", "arn" },
		                                 { "InputPath", "inputPath" },
		                                 { "InputTransformer", "inputTransformer" },
		                                 { "RetryPolicy", "retryPolicy" },
		                                 { "DeadLetterConfig", "deadLetter" },
		                                 { "RoleArn", "roleArn" } };
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		json_t *w = json_object_get(want, fields[i][0]);
		json_t *h = json_object_get(have, fields[i][0]);
		if (h && json_is_object(h) && json_object_size(h) == 0 && !w
		    && strcmp(fields[i][0], "RetryPolicy") == 0)
			h = NULL;
		if ((w || h) && !(w && h && json_equal(w, h))) {
			if (json_is_string(w) || json_is_string(h))
				add_change(buf, cap, "%s %s -> %s", fields[i][1],
				           or_none(json_string_value(h)),
				           or_none(json_string_value(w)));
			else
				add_change(buf, cap, "%s changed", fields[i][1]);
		}
	}
	json_t *win = parse_text(jstr(want, "Input"));
	if (!json_text_equal(win, jstr(have, "Input")))
		add_change(buf, cap, "input changed");
	json_decref(win);
	const char *k;
	json_t *v;
	json_object_foreach(have, k, v)
	{
		if (strcmp(k, "Id") != 0 && strcmp(k, "Input") != 0 && !json_object_get(want, k)
		    && !(strcmp(k, "RetryPolicy") == 0 && json_object_size(v) == 0))
			add_change(buf, cap, "%s removed", k);
	}
}

static void
plan_targets(struct ctx *c, const struct app_rule *r, bool exists)
{
	char label[200];
	rule_label(r->bus, r->name, label, sizeof label);
	json_t *have = NULL;
	if (exists) {
		struct sl_error err = { 0 };
		sl_err rc = cli_api_list(c->endpoint, "AWSEvents.ListTargetsByRule",
		                         json_pack("{s:s,s:s,s:i}", "Rule", r->name, "EventBusName",
		                                   r->bus, "Limit", 100),
		                         "Targets", "NextToken", &have, NULL, &err);
		if (rc) {
			read_failed(c, "targets", &err);
			return;
		}
	}
	for (size_t i = 0; i < r->ntargets && !c->code; i++) {
		const struct app_target *t = &r->targets[i];
		json_t *want = target_request(c, r, t);
		if (!want)
			break;
		char name[300];
		snprintf(name, sizeof name, "%s/%s", label, t->id);
		json_t *h = find_by(have, "Id", t->id, NULL, NULL);
		char detail[1024] = "";
		if (h)
			target_changes(want, h, detail, sizeof detail);
		if (h && !detail[0]) {
			c->plan.unchanged++;
			json_decref(want);
			continue;
		}
		if (!h)
			snprintf(detail, sizeof detail, " -> %s%s",
			         t->machine       ? "state machine "
			                 : t->bus ? "bus "
			                          : "",
			         t->machine       ? t->machine
			                 : t->bus ? t->bus
			                          : t->arn);
		add_step(c, K_TARGET, h ? OP_UPDATE : OP_CREATE, name, detail,
		         "AWSEvents.PutTargets",
		         json_pack("{s:s,s:s,s:[o]}", "Rule", r->name, "EventBusName", r->bus,
		                   "Targets", want));
	}
	size_t i;
	json_t *e;
	json_array_foreach(have, i, e)
	{
		const char *id = jstr(e, "Id");
		bool declared = false;
		for (size_t j = 0; id && j < r->ntargets && !declared; j++)
			declared = strcmp(r->targets[j].id, id) == 0;
		if (!id || declared)
			continue;
		if (!c->prune) {
			c->plan.kept++;
			continue;
		}
		char name[300];
		snprintf(name, sizeof name, "%s/%s", label, id);
		add_step(c, K_TARGET, OP_DELETE, name, NULL, "AWSEvents.RemoveTargets",
		         json_pack("{s:s,s:s,s:[s]}", "Rule", r->name, "EventBusName", r->bus,
		                   "Ids", id));
	}
	json_decref(have);
}

static void
plan_rules(struct ctx *c)
{
	for (size_t i = 0; i < c->app->nrules && !c->code; i++) {
		const struct app_rule *r = &c->app->rules[i];
		char label[200];
		rule_label(r->bus, r->name, label, sizeof label);
		if (!bus_known(c, r->bus)) {
			plan_error(
			        c,
			        "%s: rule %s: no bus named '%s' in the app files or on the server",
			        r->where, r->name, r->bus);
			break;
		}
		json_t *have = find_by(c->cur.rules, "Name", r->name, "EventBusName", r->bus);
		json_t *d = NULL;
		if (have) {
			/* DescribeRule carries every field, the sluice extensions included */
			d = describe(
			        c, "AWSEvents.DescribeRule",
			        json_pack("{s:s,s:s}", "Name", r->name, "EventBusName", r->bus),
			        "a rule");
			if (!d)
				return;
		}
		char detail[1024] = "";
		if (d) {
			if (!json_text_equal(r->pattern, jstr(d, "EventPattern")))
				add_change(detail, sizeof detail, "%s",
				           r->pattern && jstr(d, "EventPattern") ? "pattern changed"
				                   : r->pattern                  ? "pattern added"
				                                : "pattern removed");
			if (!str_eq(r->schedule, jstr(d, "ScheduleExpression")))
				add_change(detail, sizeof detail, "schedule %s -> %s",
				           or_none(jstr(d, "ScheduleExpression")),
				           or_none(r->schedule));
			if (!str_eq(r->state, jstr(d, "State")))
				add_change(detail, sizeof detail, "state %s -> %s",
				           or_none(jstr(d, "State")), r->state);
			if (!str_eq(r->description, jstr(d, "Description")))
				add_change(detail, sizeof detail, "description changed");
			/* unset means the default: UTC, skip */
			const char *tz = jstr(d, "ScheduleExpressionTimezone");
			if (!str_eq(r->timezone ? r->timezone : "UTC", tz ? tz : "UTC"))
				add_change(detail, sizeof detail, "timezone %s -> %s",
				           tz ? tz : "UTC", r->timezone ? r->timezone : "UTC");
			const char *mr = jstr(d, "MissedRunPolicy");
			if (!str_eq(r->missed ? r->missed : "skip", mr ? mr : "skip"))
				add_change(detail, sizeof detail, "missedRuns %s -> %s",
				           mr ? mr : "skip", r->missed ? r->missed : "skip");
			json_decref(d);
		} else {
			snprintf(detail, sizeof detail, " (%s%s)",
			         r->schedule ? "schedule " : "pattern",
			         r->schedule ? r->schedule : "");
		}
		if (have && !detail[0])
			c->plan.unchanged++;
		else
			add_step(c, K_RULE, have ? OP_UPDATE : OP_CREATE, label, detail,
			         "AWSEvents.PutRule", rule_request(r));
		plan_targets(c, r, have != NULL);
	}
	size_t i;
	json_t *e;
	json_array_foreach(c->cur.rules, i, e)
	{
		const char *name = jstr(e, "Name"), *bus = jstr(e, "EventBusName");
		bool declared = false;
		for (size_t j = 0; name && bus && j < c->app->nrules && !declared; j++)
			declared = strcmp(c->app->rules[j].name, name) == 0
			        && strcmp(c->app->rules[j].bus, bus) == 0;
		if (!name || !bus || declared)
			continue;
		if (!c->prune) {
			c->plan.kept++;
			continue;
		}
		char label[200];
		rule_label(bus, name, label, sizeof label);
		add_step(c, K_RULE, OP_DELETE, label, NULL, "AWSEvents.DeleteRule",
		         json_pack("{s:s,s:s,s:b}", "Name", name, "EventBusName", bus, "Force", 1));
	}
}

static void
plan_archives(struct ctx *c)
{
	for (size_t i = 0; i < c->app->narchives && !c->code; i++) {
		const struct app_archive *x = &c->app->archives[i];
		if (!bus_known(c, x->bus)) {
			plan_error(c,
			           "%s: archive %s: no bus named '%s' in the app files or on the "
			           "server",
			           x->where, x->name, x->bus);
			return;
		}
		char src[600];
		bus_arn(c, x->bus, src, sizeof src);
		char *pat = x->pattern ? json_dumps(x->pattern, JSON_COMPACT) : NULL;
		json_t *have = find_by(c->cur.archives, "ArchiveName", x->name, NULL, NULL);
		json_t *d = have
		        ? describe(c, "AWSEvents.DescribeArchive",
		                   json_pack("{s:s}", "ArchiveName", x->name), "an archive")
		        : NULL;
		if (have && !d) {
			free(pat);
			return;
		}
		char detail[1024] = "";
		json_t *req = json_pack("{s:s}", "ArchiveName", x->name);
		if (req && pat)
			json_object_set_new(req, "EventPattern", json_string(pat));
		if (req && x->description)
			json_object_set_new(req, "Description", json_string(x->description));
		if (req)
			json_object_set_new(req, "RetentionDays", json_integer(x->retention_days));
		if (d) {
			if (!str_eq(jstr(d, "EventSourceArn"), src)) {
				plan_error(c,
				           "%s: archive %s records %s on the server; its bus "
				           "cannot be "
				           "changed (delete it or use another name)",
				           x->where, x->name, or_none(jstr(d, "EventSourceArn")));
				json_decref(req);
				json_decref(d);
				free(pat);
				return;
			}
			if (!json_text_equal(x->pattern, jstr(d, "EventPattern")))
				add_change(detail, sizeof detail, "pattern changed");
			if (!str_eq(x->description, jstr(d, "Description")))
				add_change(detail, sizeof detail, "description changed");
			long days = (long)json_integer_value(json_object_get(d, "RetentionDays"));
			if (days != x->retention_days)
				add_change(detail, sizeof detail, "retentionDays %ld -> %ld", days,
				           x->retention_days);
			json_decref(d);
			if (!detail[0]) {
				c->plan.unchanged++;
				json_decref(req);
			} else {
				add_step(c, K_ARCHIVE, OP_UPDATE, x->name, detail,
				         "AWSEvents.UpdateArchive", req);
			}
		} else {
			if (req)
				json_object_set_new(req, "EventSourceArn", json_string(src));
			snprintf(detail, sizeof detail, " (bus %s)", x->bus);
			add_step(c, K_ARCHIVE, OP_CREATE, x->name, detail,
			         "AWSEvents.CreateArchive", req);
		}
		free(pat);
	}
	size_t i;
	json_t *e;
	json_array_foreach(c->cur.archives, i, e)
	{
		const char *name = jstr(e, "ArchiveName");
		bool declared = false;
		for (size_t j = 0; name && j < c->app->narchives && !declared; j++)
			declared = strcmp(c->app->archives[j].name, name) == 0;
		if (!name || declared)
			continue;
		if (!c->prune)
			c->plan.kept++;
		else
			add_step(c, K_ARCHIVE, OP_DELETE, name, NULL, "AWSEvents.DeleteArchive",
			         json_pack("{s:s}", "ArchiveName", name));
	}
}

/* Creations and updates in dependency order, then deletions in the reverse order. */
static int
step_rank(const struct step *s)
{
	return s->op == OP_DELETE ? 2 * K_COUNT - (int)s->kind : (int)s->kind;
}

static int
cmp_steps(const void *x, const void *y)
{
	const struct step *a = x, *b = y;
	int d = step_rank(a) - step_rank(b);
	/* qsort is not stable: the pointer order is the insertion order */
	return d ? d : (a < b ? -1 : a > b);
}

/* ---- output and application ------------------------------------------------------------- */

static char
op_sym(enum op op)
{
	return op == OP_CREATE ? '+' : op == OP_UPDATE ? '~' : '-';
}

static void
print_step(FILE *f, const char *indent, const struct step *s)
{
	fprintf(f, "%s%c %s %s%s\n", indent, op_sym(s->op), kind_word[s->kind], s->name, s->detail);
}

/* Runs one step; false (after reporting) when it failed. */
static bool
run_step(struct ctx *c, const struct step *s)
{
	struct sl_error err = { 0 };
	json_t *ans = NULL;
	sl_err rc = cli_api_call(c->endpoint, s->target, json_incref(s->req), &ans, &err);
	char why[1200] = "";
	if (rc) {
		snprintf(why, sizeof why, "%s", sl_error_text(&err));
	} else if (json_integer_value(json_object_get(ans, "FailedEntryCount")) > 0) {
		json_t *fe = json_array_get(json_object_get(ans, "FailedEntries"), 0);
		snprintf(why, sizeof why, "%s: %s", or_none(jstr(fe, "ErrorCode")),
		         or_none(jstr(fe, "ErrorMessage")));
	}
	json_decref(ans);
	static const char *const verb[] = { "create", "update", "delete" };
	if (why[0]) {
		printf("  FAILED to %s %s %s: %s\n", verb[s->op], kind_word[s->kind], s->name, why);
		return false;
	}
	static const char *const done[] = { "created", "updated", "deleted" };
	printf("  %s %s %s\n", done[s->op], kind_word[s->kind], s->name);
	fflush(stdout);
	return true;
}

static void
count_ops(const struct step *steps, size_t n, size_t counts[3])
{
	counts[0] = counts[1] = counts[2] = 0;
	for (size_t i = 0; i < n; i++)
		counts[steps[i].op]++;
}

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: sluice apply -f FILE|DIR [-f ...] [--dry-run] [--prune] [--endpoint URL]\n"
	        "\n"
	        "Makes the server hold what the app files declare (docs/APP.md): prints the\n"
	        "plan (+ create, ~ change, - delete), then applies it through the API.\n"
	        "  -f, --file PATH  an app file, or a directory of *.yaml/*.yml/*.json app files\n"
	        "  --dry-run        print the plan and stop\n"
	        "  --prune          also delete what the files do not declare (never the\n"
	        "                   default bus)\n"
	        "  --endpoint URL   default $SLUICE_ENDPOINT or " CLI_DEFAULT_ENDPOINT "\n"
	        "Exit codes: 0 applied (or nothing to change), 2 bad app files or references,\n"
	        "3 server unreachable or a step failed (the steps before it stay applied).\n");
}

static void
ctx_clear(struct ctx *c)
{
	for (size_t i = 0; i < c->plan.n; i++) {
		sl_free(c->plan.steps[i].name);
		sl_free(c->plan.steps[i].detail);
		json_decref(c->plan.steps[i].req);
	}
	sl_free(c->plan.steps);
	json_decref(c->cur.buses);
	json_decref(c->cur.activities);
	json_decref(c->cur.machines);
	json_decref(c->cur.rules);
	json_decref(c->cur.archives);
	app_free(c->app);
}

static int
apply_plan(struct ctx *c, bool dry_run)
{
	struct plan *p = &c->plan;
	if (p->n)
		qsort(p->steps, p->n, sizeof *p->steps, cmp_steps);
	if (p->n == 0) {
		printf("nothing to change (%zu resource%s up to date)\n", p->unchanged,
		       p->unchanged == 1 ? "" : "s");
	} else {
		size_t k[3];
		count_ops(p->steps, p->n, k);
		printf("plan: %zu to create, %zu to change, %zu to delete\n", k[0], k[1], k[2]);
		for (size_t i = 0; i < p->n; i++)
			print_step(stdout, "", &p->steps[i]);
	}
	if (p->kept)
		printf("%zu resource%s on the server not in the app files: kept (--prune deletes "
		       "them)\n",
		       p->kept, p->kept == 1 ? " is" : "s are");
	if (dry_run) {
		if (p->n)
			printf("dry run: nothing was changed\n");
		return CLI_OK;
	}
	if (p->n == 0)
		return CLI_OK;
	printf("applying:\n");
	fflush(stdout);
	for (size_t i = 0; i < p->n; i++) {
		if (run_step(c, &p->steps[i]))
			continue;
		size_t k[3];
		count_ops(p->steps, i, k);
		printf("stopped: %zu of %zu changes applied (%zu created, %zu changed, %zu "
		       "deleted); not applied:\n",
		       i, p->n, k[0], k[1], k[2]);
		for (size_t j = i; j < p->n; j++)
			print_step(stdout, "  ", &p->steps[j]);
		printf("each applied change is complete on the server; fix the problem and run "
		       "`sluice apply` again\n");
		return CLI_RUNTIME;
	}
	size_t k[3];
	count_ops(p->steps, p->n, k);
	printf("applied: %zu created, %zu changed, %zu deleted\n", k[0], k[1], k[2]);
	return CLI_OK;
}

int
cmd_apply(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, 0, 'f' }, { "dry-run", no_argument, 0, 'n' },
		{ "prune", no_argument, 0, 'p' },      { "endpoint", required_argument, 0, 'E' },
		{ "help", no_argument, 0, 'h' },       { 0, 0, 0, 0 },
	};
	const char *paths[APPLY_PATHS_MAX];
	size_t npaths = 0;
	bool dry_run = false;
	struct ctx c = { 0 };
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			if (npaths == APPLY_PATHS_MAX) {
				fprintf(stderr, "sluice apply: at most %d -f paths\n",
				        APPLY_PATHS_MAX);
				return CLI_USAGE;
			}
			paths[npaths++] = optarg;
			break;
		case 'n': dry_run = true; break;
		case 'p': c.prune = true; break;
		case 'E': c.endpoint = optarg; break;
		case 'h': usage(stdout); return CLI_OK;
		default: usage(stderr); return CLI_USAGE;
		}
	}
	if (npaths == 0 || optind != argc) {
		usage(stderr);
		return CLI_USAGE;
	}
	c.endpoint = cli_endpoint(c.endpoint);
	if (!(c.app = app_new())) {
		fprintf(stderr, "sluice apply: out of memory\n");
		return CLI_RUNTIME;
	}
	struct sm_problems problems = { 0 };
	sl_err rc = SL_OK;
	for (size_t i = 0; i < npaths && rc != SL_ERR_NOMEM; i++) {
		sl_err r = app_load_path(c.app, paths[i], &problems);
		if (r && !rc)
			rc = r;
		else if (r == SL_ERR_NOMEM)
			rc = r;
	}
	/* the same name in two -f files is caught by the loader (one model) */
	for (size_t i = 0; i < problems.count; i++)
		fprintf(stderr, "%s: %s\n", problems.items[i].location, problems.items[i].message);
	if (problems.dropped)
		fprintf(stderr, "%zu more problems not shown\n", problems.dropped);
	sm_problems_clear(&problems);
	if (rc) {
		fprintf(stderr, "sluice apply: nothing was sent: fix the app files first\n");
		ctx_clear(&c);
		return rc == SL_ERR_NOMEM ? CLI_RUNTIME : CLI_USAGE;
	}
	if (read_state(&c)) {
		plan_buses(&c);
		plan_archives(&c);
		plan_activities(&c);
		plan_machines(&c);
		plan_rules(&c);
	}
	int code = c.code;
	if (code)
		fprintf(stderr, "sluice apply: nothing was changed\n");
	else
		code = apply_plan(&c, dry_run);
	ctx_clear(&c);
	fflush(stdout);
	return code;
}
