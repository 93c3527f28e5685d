/*
 * srv_bus.c - EventBridge buses: CreateEventBus, DescribeEventBus, ListEventBuses,
 * DeleteEventBus; the per-bus pattern machines (rebuilt from the store at start-up, changed
 * only after commits) and the helpers the rule and PutEvents files share.
 */
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "common/sl_log.h"
#include "server/srv_archives.h"
#include "server/srv_bus.h"
#include "server/srv_deliver.h"
#include "server/srv_retention.h"

static struct bus_state *all_states;

/* ---- machines ------------------------------------------------------------------------- */

static struct bus_rt *
find_rt(struct bus_state *st, const char *bus)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->buses[i].name, bus) == 0)
			return &st->buses[i];
	return NULL;
}

pat_machine_t *
bus_machine(struct bus_state *st, const char *bus)
{
	struct bus_rt *rt = find_rt(st, bus);
	return rt ? rt->machine : NULL;
}

static sl_err
add_rt(struct bus_state *st, const char *bus)
{
	if (find_rt(st, bus))
		return SL_OK;
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 8;
		struct bus_rt *n = sl_reallocarray(st->buses, cap, sizeof *n);
		if (!n)
			return SL_ERR_NOMEM;
		st->buses = n;
		st->cap = cap;
	}
	struct bus_rt rt = { sl_strdup(bus), NULL };
	if (!rt.name || pat_machine_new(&rt.machine, NULL)) {
		sl_free(rt.name);
		return SL_ERR_NOMEM;
	}
	st->buses[st->n++] = rt;
	return SL_OK;
}

static void
drop_rt(struct bus_state *st, const char *bus)
{
	struct bus_rt *rt = find_rt(st, bus);
	if (!rt)
		return;
	sl_free(rt->name);
	pat_machine_free(rt->machine);
	*rt = st->buses[--st->n];
}

/* A rule's (re)installation; a pattern that no longer compiles is logged and left out. */
static void
install(struct bus_state *st, const char *bus, const char *rule, const char *pattern)
{
	struct bus_rt *rt = find_rt(st, bus);
	if (!rt)
		return;
	(void)pat_machine_remove_rule(rt->machine, rule, NULL);
	if (!pattern)
		return;
	struct sl_error err;
	sl_error_clear(&err);
	if (pat_machine_add_rule(rt->machine, rule, pattern, strlen(pattern), NULL, &err))
		sl_warn("bus", "rule %s on bus %s not routed: %s", rule, bus, sl_error_text(&err));
}

struct change {
	struct bus_state *st;
	char *bus, *rule, *pattern;
	bool drop_bus;
};

static void
apply_change(void *arg, sl_err status)
{
	struct change *c = arg;
	if (status == SL_OK) {
		if (c->rule)
			install(c->st, c->bus, c->rule, c->pattern);
		else if (c->drop_bus)
			drop_rt(c->st, c->bus);
		else if (add_rt(c->st, c->bus))
			sl_warn("bus", "bus %s: no memory for its rule machine", c->bus);
	}
	sl_free(c->bus);
	sl_free(c->rule);
	sl_free(c->pattern);
	sl_free(c);
}

sl_err
bus_on_commit(struct bus_state *st, store_batch_t *b, const char *bus, const char *rule,
              const char *pattern, bool drop_bus)
{
	struct change *c = SL_NEW(struct change);
	if (!c)
		return SL_ERR_NOMEM;
	c->st = st;
	c->drop_bus = drop_bus;
	c->bus = sl_strdup(bus);
	c->rule = rule ? sl_strdup(rule) : NULL;
	c->pattern = pattern ? sl_strdup(pattern) : NULL;
	if (!c->bus || (rule && !c->rule) || (pattern && !c->pattern)) {
		apply_change(c, SL_ERR_NOMEM);
		return SL_ERR_NOMEM;
	}
	sl_err rc = store_batch_on_commit(b, apply_change, c);
	if (rc)
		apply_change(c, rc);
	return rc;
}

/* ---- helpers -------------------------------------------------------------------------- */

sl_err
bus_missing(struct sl_error *err, const char *field)
{
	return sl_error_set(err, SL_ERR_INVALID_ARG,
	                    "1 validation error detected: Value null at '%s' failed to satisfy "
	                    "constraint: Member must not be null",
	                    field);
}

sl_err
bus_str_field(json_t *body, const char *field, bool required, const char **out,
              struct sl_error *err)
{
	json_t *v = json_object_get(body, field);
	*out = NULL;
	if (!v || json_is_null(v)) {
		if (!required)
			return SL_OK;
		char lower[64];
		snprintf(lower, sizeof lower, "%s", field);
		lower[0] = (char)(lower[0] >= 'A' && lower[0] <= 'Z' ? lower[0] + 32 : lower[0]);
		return bus_missing(err, lower);
	}
	if (!json_is_string(v))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "Field '%s': expected a string",
		                    field);
	*out = json_string_value(v);
	return SL_OK;
}

static bool
valid_chars(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		      || (*p >= '0' && *p <= '9') || strchr(extra, *p)))
			return false;
	return true;
}

bool
bus_valid_rule_name(const char *s)
{
	return valid_chars(s, RULE_NAME_MAX, ".-_");
}

static bool
valid_bus_name(const char *s)
{
	return valid_chars(s, BUS_NAME_MAX, ".-_");
}

sl_err
bus_resolve_name(const char *given, char out[BUS_NAME_MAX + 1], struct sl_error *err)
{
	if (!given) {
		snprintf(out, BUS_NAME_MAX + 1, "%s", BUS_DEFAULT);
		return SL_OK;
	}
	const char *name = given;
	if (strncmp(given, "arn:", 4) == 0) {
		const char *slash = strstr(given, ":event-bus/");
		if (!slash)
			return sl_error_set(
			        err, SL_ERR_INVALID_ARG,
			        "Parameter %s is not valid. Reason: Provided Arn is not "
			        "in correct format.",
			        given);
		name = slash + strlen(":event-bus/");
	}
	if (!valid_bus_name(name))
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "1 validation error detected: Value '%s' at 'eventBusName' "
		        "failed to satisfy constraint: Member must satisfy regular "
		        "expression pattern: (arn:aws[\\w-]*:events:[a-z]+-[a-z]+-[\\w-]+:"
		        "[0-9]{12}:event-bus\\/)?[/\\.\\-_A-Za-z0-9]+",
		        given);
	snprintf(out, BUS_NAME_MAX + 1, "%s", name);
	return SL_OK;
}

sl_err
bus_limit(json_t *body, size_t *limit, struct sl_error *err)
{
	json_t *v = json_object_get(body, "Limit");
	*limit = LIST_LIMIT_MAX;
	if (!v || json_is_null(v))
		return SL_OK;
	if (!json_is_integer(v))
		return sl_error_set(err, SL_ERR_SERIALIZATION,
		                    "Field 'Limit': expected an integer");
	json_int_t n = json_integer_value(v);
	if (n < 1 || n > LIST_LIMIT_MAX)
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "1 validation error detected: Value '%lld' at 'limit' failed to "
		        "satisfy constraint: Member must have value between 1 and %d",
		        (long long)n, LIST_LIMIT_MAX);
	*limit = (size_t)n;
	return SL_OK;
}

char *
bus_token_encode(const char *last)
{
	size_t n = strlen(last);
	char *out = sl_malloc(2 * n + 1);
	if (out)
		sl_hex(last, n, out);
	return out;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

sl_err
bus_token_decode(json_t *body, char *out, size_t cap, struct sl_error *err)
{
	const char *tok;
	sl_err rc = bus_str_field(body, "NextToken", false, &tok, err);
	out[0] = '\0';
	if (rc || !tok)
		return rc;
	size_t n = strlen(tok);
	if (n == 0 || n % 2 || n / 2 >= cap)
		goto bad;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(tok[2 * i]), lo = hexval(tok[2 * i + 1]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			goto bad;
		out[i] = (char)(hi * 16 + lo);
	}
	out[n / 2] = '\0';
	return SL_OK;
bad:
	return sl_error_set(err, SL_ERR_INVALID_ARG, "The NextToken provided is invalid.");
}

void
bus_arn(char *out, size_t cap, const char *bus)
{
	snprintf(out, cap, "arn:aws:events:%s:%s:event-bus/%s", sl_arn_region(), sl_arn_account(),
	         bus);
}

void
bus_rule_arn(char *out, size_t cap, const char *bus, const char *rule)
{
	if (strcmp(bus, BUS_DEFAULT) == 0)
		snprintf(out, cap, "arn:aws:events:%s:%s:rule/%s", sl_arn_region(),
		         sl_arn_account(), rule);
	else
		snprintf(out, cap, "arn:aws:events:%s:%s:rule/%s/%s", sl_arn_region(),
		         sl_arn_account(), bus, rule);
}

sl_err
bus_get_json(store_txn_t *txn, enum store_db db, const struct store_key *k, json_t **out)
{
	struct store_val v;
	sl_err rc = store_get(txn, db, k->buf, k->len, &v);
	if (rc)
		return rc;
	*out = json_loadb(v.data, v.len, 0, NULL);
	return *out ? SL_OK : SL_ERR_STORE;
}

sl_err
bus_put_json(store_txn_t *txn, enum store_db db, const struct store_key *k, json_t *rec)
{
	char *text = json_dumps(rec, JSON_COMPACT);
	if (!text)
		return SL_ERR_NOMEM;
	sl_err rc = store_put(txn, db, k->buf, k->len, text, strlen(text));
	sl_free(text);
	return rc;
}

static void
bus_key(struct store_key *k, const char *bus)
{
	store_key_init(k);
	store_key_str(k, bus);
}

void
bus_rule_key(struct store_key *k, int tag, const char *bus, const char *rule)
{
	store_key_init(k);
	store_key_u32(k, (uint32_t)tag);
	store_key_str(k, bus);
	if (rule)
		store_key_str(k, rule);
}

sl_err
bus_require(store_txn_t *txn, const char *bus, struct sl_error *err)
{
	struct store_key k;
	bus_key(&k, bus);
	struct store_val v;
	sl_err rc = store_get(txn, STORE_DB_BUSES, k.buf, k.len, &v);
	if (rc == SL_ERR_NOT_FOUND)
		return sl_error_set(err, SL_ERR_EB_NOT_FOUND, "Event bus %s does not exist.", bus);
	return rc;
}

sl_err
bus_rule_not_found(struct sl_error *err, const char *rule, const char *bus)
{
	return sl_error_set(err, SL_ERR_EB_NOT_FOUND, "Rule %s does not exist on EventBus %s.",
	                    rule, bus);
}

sl_err
bus_count_targets(store_txn_t *txn, const char *bus, const char *rule, size_t *n)
{
	struct store_key k;
	bus_rule_key(&k, BUS_TAG_TARGET, bus, rule);
	return store_count_prefix(txn, STORE_DB_RULES, k.buf, k.len, n);
}

sl_err
bus_delete_rule_records(store_txn_t *txn, const char *bus, const char *rule, bool with_rule)
{
	struct store_key k;
	bus_rule_key(&k, BUS_TAG_TARGET, bus, rule);
	sl_err rc = store_del_prefix(txn, STORE_DB_RULES, k.buf, k.len);
	if (rc || !with_rule)
		return rc;
	bus_rule_key(&k, BUS_TAG_RULE, bus, rule);
	return store_del(txn, STORE_DB_RULES, k.buf, k.len);
}

/* ---- operations ----------------------------------------------------------------------- */

static json_t *
bus_json(const char *name, json_t *rec)
{
	char arn[BUS_ARN_MAX];
	bus_arn(arn, sizeof arn, name);
	int64_t created = (int64_t)json_integer_value(json_object_get(rec, "created"));
	json_t *o = json_pack("{s:s,s:s,s:o,s:o}", "Name", name, "Arn", arn, "CreationTime",
	                      srv_json_time(created), "LastModifiedTime", srv_json_time(created));
	json_t *d = json_object_get(rec, "description");
	if (o && d)
		json_object_set(o, "Description", d);
	return o;
}

static sl_err
op_create_bus(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	const char *name, *desc, *source;
	sl_err rc;
	if ((rc = bus_str_field(body, "Name", true, &name, err))
	    || (rc = bus_str_field(body, "Description", false, &desc, err))
	    || (rc = bus_str_field(body, "EventSourceName", false, &source, err)))
		return rc;
	if (!valid_bus_name(name))
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "1 validation error detected: Value '%s' at 'name' failed to "
		                    "satisfy constraint: Member must satisfy regular expression "
		                    "pattern: [/\\.\\-_A-Za-z0-9]+",
		                    name);
	if (source)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "Partner event sources are not supported: EventSourceName");
	if (desc && strlen(desc) > 512)
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "1 validation error detected: Value at 'description' failed to "
		        "satisfy constraint: Member must have length less than or equal "
		        "to 512");
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	struct store_key k;
	bus_key(&k, name);
	struct store_val v;
	if ((rc = store_get(txn, STORE_DB_BUSES, k.buf, k.len, &v)) == SL_OK)
		return sl_error_set(err, SL_ERR_EB_EXISTS, "Event bus %s already exists.", name);
	if (rc != SL_ERR_NOT_FOUND)
		return rc;
	json_t *rec
	        = json_pack("{s:s,s:I}", "name", name, "created", (json_int_t)sl_clock_now_ms());
	if (!rec || (desc && json_object_set_new(rec, "description", json_string(desc)))) {
		json_decref(rec);
		return SL_ERR_NOMEM;
	}
	rc = bus_put_json(txn, STORE_DB_BUSES, &k, rec);
	json_decref(rec);
	if (rc || (rc = bus_on_commit(ctx, b, name, NULL, NULL, false)))
		return rc;
	char arn[BUS_ARN_MAX];
	bus_arn(arn, sizeof arn, name);
	srv_reply_json(req, json_pack("{s:s}", "EventBusArn", arn));
	return SL_OK;
}

static sl_err
op_describe_bus(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *given;
	char name[BUS_NAME_MAX + 1];
	sl_err rc;
	if ((rc = bus_str_field(body, "Name", false, &given, err))
	    || (rc = bus_resolve_name(given, name, err)))
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	struct store_key k;
	bus_key(&k, name);
	json_t *rec = NULL;
	rc = bus_get_json(txn, STORE_DB_BUSES, &k, &rec);
	store_read_end(txn);
	if (rc == SL_ERR_NOT_FOUND)
		return sl_error_set(err, SL_ERR_EB_NOT_FOUND, "Event bus %s does not exist.", name);
	if (rc)
		return rc;
	srv_reply_json(req, bus_json(name, rec));
	json_decref(rec);
	return SL_OK;
}

static sl_err
op_list_buses(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *prefix;
	size_t limit;
	char after[BUS_NAME_MAX + 1];
	sl_err rc;
	if ((rc = bus_str_field(body, "NamePrefix", false, &prefix, err))
	    || (rc = bus_limit(body, &limit, err))
	    || (rc = bus_token_decode(body, after, sizeof after, err)))
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	store_cursor_t *c = NULL;
	json_t *list = json_array(), *out = NULL;
	char *next = NULL;
	if (!list) {
		rc = SL_ERR_NOMEM;
		goto done;
	}
	if ((rc = store_cursor_open(txn, STORE_DB_BUSES, &c)))
		goto done;
	struct store_key k;
	/* resume after the token, or start at the prefix when the token lies before it */
	bool from_token = after[0] && (!prefix || strcmp(after, prefix) >= 0);
	bus_key(&k, from_token ? after : (prefix ? prefix : ""));
	/* a prefix key ends in the separator: drop it so longer names follow */
	size_t klen = from_token ? k.len : k.len - 1;
	rc = store_cursor_seek(c, klen ? k.buf : NULL, klen);
	struct store_val kv, vv;
	while (rc == SL_OK && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
		json_t *rec = json_loadb(vv.data, vv.len, 0, NULL);
		const char *name = json_string_value(json_object_get(rec, "name"));
		if (!name) {
			json_decref(rec);
			rc = SL_ERR_STORE;
			break;
		}
		if (from_token && strcmp(name, after) == 0) {
			json_decref(rec);
			continue;
		}
		if (prefix && strncmp(name, prefix, strlen(prefix)) != 0) {
			json_decref(rec);
			break;
		}
		if (json_array_size(list) == limit) {
			next = bus_token_encode(json_string_value(
			        json_object_get(json_array_get(list, limit - 1), "Name")));
			json_decref(rec);
			rc = next ? SL_ERR_NOT_FOUND : SL_ERR_NOMEM;
			break;
		}
		json_array_append_new(list, bus_json(name, rec));
		json_decref(rec);
	}
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
done:
	store_cursor_close(c);
	store_read_end(txn);
	if (rc == SL_OK && (out = json_pack("{s:O}", "EventBuses", list)) && next)
		json_object_set_new(out, "NextToken", json_string(next));
	json_decref(list);
	sl_free(next);
	if (rc)
		return rc;
	if (!out)
		return SL_ERR_NOMEM;
	srv_reply_json(req, out);
	return SL_OK;
}

static sl_err
op_delete_bus(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	const char *given;
	char name[BUS_NAME_MAX + 1];
	sl_err rc;
	if ((rc = bus_str_field(body, "Name", true, &given, err))
	    || (rc = bus_resolve_name(given, name, err)))
		return rc;
	if (strcmp(name, BUS_DEFAULT) == 0)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "Cannot delete event bus default.");
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	if ((rc = bus_require(txn, name, err)))
		return rc;
	struct store_key k;
	/* the bus's rules and targets go with it */
	bus_rule_key(&k, BUS_TAG_TARGET, name, NULL);
	if ((rc = store_del_prefix(txn, STORE_DB_RULES, k.buf, k.len)))
		return rc;
	bus_rule_key(&k, BUS_TAG_RULE, name, NULL);
	if ((rc = store_del_prefix(txn, STORE_DB_RULES, k.buf, k.len)))
		return rc;
	bus_key(&k, name);
	if ((rc = store_del(txn, STORE_DB_BUSES, k.buf, k.len))
	    || (rc = bus_on_commit(ctx, b, name, NULL, NULL, true)))
		return rc;
	srv_reply_json(req, NULL);
	return SL_OK;
}

/* ---- start-up ------------------------------------------------------------------------- */

/* The default bus record, written and committed at once on first start. */
static sl_err
ensure_default(store_t *store)
{
	store_batch_t *b;
	sl_err rc = store_batch_get(store, &b);
	if (rc)
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	struct store_key k;
	bus_key(&k, BUS_DEFAULT);
	struct store_val v;
	if ((rc = store_get(txn, STORE_DB_BUSES, k.buf, k.len, &v)) == SL_ERR_NOT_FOUND) {
		json_t *rec = json_pack("{s:s,s:I}", "name", BUS_DEFAULT, "created",
		                        (json_int_t)sl_clock_now_ms());
		rc = rec ? bus_put_json(txn, STORE_DB_BUSES, &k, rec) : SL_ERR_NOMEM;
		json_decref(rec);
	}
	if (rc) {
		store_batch_abort(store, rc);
		return rc;
	}
	return store_batch_commit(store);
}

/* Machines for every bus, holding every enabled pattern rule. */
static sl_err
rebuild(struct bus_state *st, store_t *store)
{
	store_txn_t *txn;
	sl_err rc = store_read_begin(store, &txn);
	if (rc)
		return rc;
	store_cursor_t *c = NULL;
	struct store_val kv, vv;
	if ((rc = store_cursor_open(txn, STORE_DB_BUSES, &c)) == SL_OK
	    && (rc = store_cursor_seek(c, NULL, 0)) == SL_OK)
		while (rc == SL_OK && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			json_t *rec = json_loadb(vv.data, vv.len, 0, NULL);
			const char *name = json_string_value(json_object_get(rec, "name"));
			rc = name ? add_rt(st, name) : SL_ERR_STORE;
			json_decref(rec);
		}
	store_cursor_close(c);
	c = NULL;
	size_t rules = 0;
	struct store_key k;
	store_key_init(&k);
	store_key_u32(&k, BUS_TAG_RULE);
	if (rc == SL_ERR_NOT_FOUND && (rc = store_cursor_open(txn, STORE_DB_RULES, &c)) == SL_OK
	    && (rc = store_cursor_seek_prefix(c, k.buf, k.len)) == SL_OK)
		while (rc == SL_OK && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			json_t *rec = json_loadb(vv.data, vv.len, 0, NULL);
			const char *bus = json_string_value(json_object_get(rec, "bus"));
			const char *name = json_string_value(json_object_get(rec, "name"));
			const char *state = json_string_value(json_object_get(rec, "state"));
			const char *pattern = json_string_value(json_object_get(rec, "pattern"));
			if (!bus || !name || !state)
				rc = SL_ERR_STORE;
			else if (pattern && strcmp(state, "ENABLED") == 0) {
				install(st, bus, name, pattern);
				rules++;
			}
			json_decref(rec);
		}
	store_cursor_close(c);
	store_read_end(txn);
	if (rc == SL_ERR_NOT_FOUND) {
		sl_info("bus", "%zu bus(es), %zu enabled pattern rule(s) loaded", st->n, rules);
		return SL_OK;
	}
	return rc;
}

sl_err
srv_api_bus_register(srv_t *s)
{
	struct bus_state *st = SL_NEW(struct bus_state);
	if (!st)
		return SL_ERR_NOMEM;
	/* the server has no teardown hook for API state: keep it reachable for the process */
	st->srv = s;
	st->next = all_states;
	all_states = st;
	sl_err rc;
	if ((rc = ensure_default(srv_store(s))) || (rc = rebuild(st, srv_store(s))))
		return rc;
	static const struct {
		const char *op;
		srv_op_fn fn;
	} ops[] = {
		{ "AWSEvents.CreateEventBus", op_create_bus },
		{ "AWSEvents.DescribeEventBus", op_describe_bus },
		{ "AWSEvents.ListEventBuses", op_list_buses },
		{ "AWSEvents.DeleteEventBus", op_delete_bus },
	};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if ((rc = srv_register_op(s, ops[i].op, ops[i].fn, st)))
			return rc;
	if ((rc = srv_api_rules_register(s, st)) || (rc = srv_deliver_start(s, st))
	    || (rc = srv_api_archives_register(s, st)) || (rc = srv_retention_start(s)))
		return rc;
	return srv_api_putevents_register(s, st);
}
