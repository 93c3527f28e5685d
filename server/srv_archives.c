/*
 * srv_archives.c - EventBridge archives and replays: CreateArchive, DescribeArchive,
 * ListArchives, UpdateArchive, DeleteArchive, StartReplay, DescribeReplay, ListReplays,
 * CancelReplay; the archiving hook of bus_publish, the retention prune and the replay job.
 * Layout in srv_archives.h.
 *
 * An archive does not copy events: the bus's log already holds them (STORE_DB_EVENTS), so
 * an archive keeps index entries (archive, time, seq). The archives of a bus are compiled
 * into one pat_machine_t per bus (archives without a pattern take every event); the machines
 * change only from commit callbacks, like the buses' rule machines.
 */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "common/sl_log.h"
#include "server/srv_archives.h"
#include "server/srv_internal.h"

enum { TAG_ARCHIVE = 'A', TAG_COUNT = 'C', TAG_ENTRY = 'E' };

#define DAY_MS (86400LL * 1000)

struct arc_bus {
	char *bus;
	pat_machine_t *m; /* archives with a pattern */
	char **all;       /* archives without one: every event */
	size_t nall;
};

struct arc_state {
	srv_t *srv;
	struct bus_state *bst;
	struct arc_bus *buses;
	size_t n, cap;
	struct event *prune_ev, *replay_ev;
	struct arc_state *next;
};

static struct arc_state *states; /* every state made, found by its bus state */

static struct arc_state *
state_of(struct bus_state *bst)
{
	for (struct arc_state *a = states; a; a = a->next)
		if (a->bst == bst)
			return a;
	return NULL;
}

/* ---- machines ------------------------------------------------------------------------- */

static struct arc_bus *
find_bus(struct arc_state *a, const char *bus)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->buses[i].bus, bus) == 0)
			return &a->buses[i];
	return NULL;
}

static struct arc_bus *
add_bus(struct arc_state *a, const char *bus)
{
	struct arc_bus *ab = find_bus(a, bus);
	if (ab)
		return ab;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 4;
		struct arc_bus *n = sl_reallocarray(a->buses, cap, sizeof *n);
		if (!n)
			return NULL;
		a->buses = n;
		a->cap = cap;
	}
	struct arc_bus nb = { sl_strdup(bus), NULL, NULL, 0 };
	if (!nb.bus || pat_machine_new(&nb.m, NULL)) {
		sl_free(nb.bus);
		return NULL;
	}
	a->buses[a->n] = nb;
	return &a->buses[a->n++];
}

/* Takes archive out of every bus's machine and list. */
static void
uninstall(struct arc_state *a, const char *archive)
{
	for (size_t i = 0; i < a->n; i++) {
		struct arc_bus *ab = &a->buses[i];
		(void)pat_machine_remove_rule(ab->m, archive, NULL);
		for (size_t j = 0; j < ab->nall; j++)
			if (strcmp(ab->all[j], archive) == 0) {
				sl_free(ab->all[j]);
				ab->all[j] = ab->all[--ab->nall];
				break;
			}
	}
}

static void
install(struct arc_state *a, const char *bus, const char *archive, const char *pattern)
{
	uninstall(a, archive);
	struct arc_bus *ab = add_bus(a, bus);
	if (!ab) {
		sl_errorf("archives", "archive %s: no memory for its machine", archive);
		return;
	}
	if (pattern) {
		struct sl_error err;
		sl_error_clear(&err);
		if (pat_machine_add_rule(ab->m, archive, pattern, strlen(pattern), NULL, &err))
			sl_warn("archives", "archive %s not archiving: %s", archive,
			        sl_error_text(&err));
		return;
	}
	char **n = sl_reallocarray(ab->all, ab->nall + 1, sizeof *n);
	char *dup = sl_strdup(archive);
	if (n)
		ab->all = n;
	if (!n || !dup) {
		sl_free(dup);
		sl_errorf("archives", "archive %s: no memory for its machine", archive);
		return;
	}
	ab->all[ab->nall++] = dup;
}

struct change {
	struct arc_state *a;
	char *bus, *archive, *pattern;
	bool remove;
};

static void
apply_change(void *arg, sl_err status)
{
	struct change *c = arg;
	if (status == SL_OK) {
		if (c->remove)
			uninstall(c->a, c->archive);
		else
			install(c->a, c->bus, c->archive, c->pattern);
	}
	sl_free(c->bus);
	sl_free(c->archive);
	sl_free(c->pattern);
	sl_free(c);
}

static sl_err
on_commit_change(struct arc_state *a, store_batch_t *b, const char *bus, const char *archive,
                 const char *pattern, bool remove)
{
	struct change *c = SL_NEW(struct change);
	if (!c)
		return SL_ERR_NOMEM;
	c->a = a;
	c->remove = remove;
	c->bus = sl_strdup(bus);
	c->archive = sl_strdup(archive);
	c->pattern = pattern ? sl_strdup(pattern) : NULL;
	if (!c->bus || !c->archive || (pattern && !c->pattern)) {
		apply_change(c, SL_ERR_NOMEM);
		return SL_ERR_NOMEM;
	}
	sl_err rc = store_batch_on_commit(b, apply_change, c);
	if (rc)
		apply_change(c, rc);
	return rc;
}

/* ---- keys and counters ---------------------------------------------------------------- */

static void
arc_key(struct store_key *k, int tag, const char *archive)
{
	store_key_init(k);
	store_key_u32(k, (uint32_t)tag);
	if (archive)
		store_key_str(k, archive);
}

static sl_err
counters_get(store_txn_t *txn, const char *archive, uint64_t *count, uint64_t *size)
{
	struct store_key k;
	arc_key(&k, TAG_COUNT, archive);
	struct store_val v;
	*count = *size = 0;
	sl_err rc = store_get(txn, STORE_DB_ARCHIVES, k.buf, k.len, &v);
	if (rc == SL_ERR_NOT_FOUND)
		return SL_OK;
	if (rc)
		return rc;
	if (v.len != 16)
		return SL_ERR_STORE;
	*count = store_decode_u64(v.data);
	*size = store_decode_u64((const unsigned char *)v.data + 8);
	return SL_OK;
}

static sl_err
counters_add(store_txn_t *txn, const char *archive, int64_t dcount, int64_t dsize)
{
	uint64_t count, size;
	sl_err rc = counters_get(txn, archive, &count, &size);
	if (rc)
		return rc;
	count = (int64_t)count + dcount < 0 ? 0 : (uint64_t)((int64_t)count + dcount);
	size = (int64_t)size + dsize < 0 ? 0 : (uint64_t)((int64_t)size + dsize);
	struct store_key v, k; /* a key builder encodes the two big-endian words */
	store_key_init(&v);
	store_key_u64(&v, count);
	store_key_u64(&v, size);
	arc_key(&k, TAG_COUNT, archive);
	return store_put(txn, STORE_DB_ARCHIVES, k.buf, k.len, v.buf, v.len);
}

/* ---- archiving ------------------------------------------------------------------------ */

struct hit {
	store_txn_t *txn;
	uint64_t seq;
	size_t len;
	int64_t at; /* the event's time: the index entry's order */
	sl_err rc;
};

static sl_err
index_event(struct hit *h, const char *archive)
{
	struct store_key k, v;
	arc_key(&k, TAG_ENTRY, archive);
	store_key_i64(&k, h->at);
	store_key_u64(&k, h->seq);
	store_key_init(&v);
	store_key_u64(&v, h->len);
	sl_err rc = store_put(h->txn, STORE_DB_ARCHIVES, k.buf, k.len, v.buf, v.len);
	return rc ? rc : counters_add(h->txn, archive, 1, (int64_t)h->len);
}

static bool
on_hit(void *ctx, uint32_t id, const char *archive)
{
	(void)id;
	struct hit *h = ctx;
	h->rc = index_event(h, archive);
	return h->rc == SL_OK;
}

/* The envelope's "time" (what AWS replays by) into *ms; false when it has none.
 * bus_envelope writes it before "detail"; the quoted key cannot occur inside a JSON string,
 * where quotes are escaped. */
static bool
event_time_of(const char *text, size_t len, int64_t *ms)
{
	static const char key[] = "\"time\":\"";
	const char *end = text + len, *p = text;
	while (p < end && (p = memchr(p, '"', (size_t)(end - p))) != NULL) {
		if ((size_t)(end - p) > sizeof key + 32 && memcmp(p, key, sizeof key - 1) == 0) {
			char when[33];
			const char *v = p + sizeof key - 1, *q = memchr(v, '"', 32);
			if (!q)
				break;
			memcpy(when, v, (size_t)(q - v));
			when[q - v] = '\0';
			return sl_clock_parse_rfc3339(when, ms);
		}
		if ((size_t)(end - p) > 9 && memcmp(p, "\"detail\":", 9) == 0)
			break;
		p++;
	}
	return false;
}

/* The envelope's "time", else now. */
static int64_t
event_time(const char *text, size_t len)
{
	int64_t ms;
	return event_time_of(text, len, &ms) ? ms : sl_clock_now_ms();
}

/* Whether archive's index has an entry for seq: a point lookup at the event's time, or (an
 * envelope without a readable time was indexed at its arrival) a walk of the index. */
static sl_err
archive_has(store_txn_t *txn, const char *archive, uint64_t seq, bool timed, int64_t at, bool *held)
{
	struct store_key k;
	arc_key(&k, TAG_ENTRY, archive);
	if (timed) {
		store_key_i64(&k, at);
		store_key_u64(&k, seq);
		struct store_val v;
		sl_err rc = store_get(txn, STORE_DB_ARCHIVES, k.buf, k.len, &v);
		*held = rc == SL_OK;
		return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
	}
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, STORE_DB_ARCHIVES, &c);
	struct store_val kv, vv;
	if (rc == SL_OK && (rc = store_cursor_seek_prefix(c, k.buf, k.len)) == SL_OK)
		while (!*held && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK)
			*held = kv.len == k.len + 16
			        && store_decode_u64((const unsigned char *)kv.data + k.len + 8)
			                == seq;
	store_cursor_close(c);
	return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
}

sl_err
srv_archives_holds(store_txn_t *txn, const char *bus, uint64_t seq, const char *text, size_t len,
                   bool *held)
{
	*held = false;
	int64_t at = 0;
	bool timed = event_time_of(text, len, &at);
	struct store_key pk;
	arc_key(&pk, TAG_ARCHIVE, NULL);
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, STORE_DB_ARCHIVES, &c);
	if (rc)
		return rc;
	struct store_val kv, vv;
	if ((rc = store_cursor_seek_prefix(c, pk.buf, pk.len)) == SL_OK)
		while (!*held && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			json_t *rec = json_loadb(vv.data, vv.len, 0, NULL);
			const char *name = json_string_value(json_object_get(rec, "name"));
			const char *abus = json_string_value(json_object_get(rec, "bus"));
			if (!rec)
				rc = SL_ERR_NOMEM; /* records are written by us: only memory fails
				                    */
			else if (name && abus && strcmp(abus, bus) == 0)
				rc = archive_has(txn, name, seq, timed, at, held);
			json_decref(rec);
			if (rc)
				break;
		}
	store_cursor_close(c);
	return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
}

sl_err
srv_archives_on_event(struct bus_state *st, store_batch_t *b, const char *bus, uint64_t seq,
                      const char *text, size_t len, struct sl_error *err)
{
	struct arc_state *a = st ? state_of(st) : NULL;
	struct arc_bus *ab = a ? find_bus(a, bus) : NULL;
	if (!ab)
		return SL_OK;
	struct hit h = { store_batch_txn(b), seq, len, event_time(text, len), SL_OK };
	for (size_t i = 0; i < ab->nall && h.rc == SL_OK; i++)
		h.rc = index_event(&h, ab->all[i]);
	if (h.rc)
		return h.rc;
	sl_err rc = pat_machine_match(ab->m, text, len, on_hit, &h, err);
	return rc ? rc : h.rc;
}

/* ---- request helpers ------------------------------------------------------------------ */

static void
archive_arn(char *out, size_t cap, const char *archive)
{
	snprintf(out, cap, "arn:aws:events:%s:%s:archive/%s", sl_arn_region(), sl_arn_account(),
	         archive);
}

static void
replay_arn(char *out, size_t cap, const char *replay)
{
	snprintf(out, cap, "arn:aws:events:%s:%s:replay/%s", sl_arn_region(), sl_arn_account(),
	         replay);
}

static json_t *
ts(int64_t ms)
{
	return json_real((double)ms / 1000.0);
}

static sl_err
name_arg(json_t *body, const char *field, const char *what, size_t max, const char **out,
         struct sl_error *err)
{
	sl_err rc = bus_str_field(body, field, true, out, err);
	if (rc)
		return rc;
	size_t n = strlen(*out);
	bool ok = n >= 1 && n <= max;
	for (const char *p = *out; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		        || (*p >= '0' && *p <= '9') || strchr(".-_", *p);
	if (!ok)
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "1 validation error detected: Value '%s' at '%s' failed to "
		        "satisfy constraint: Member must satisfy regular expression "
		        "pattern: [\\.\\-_A-Za-z0-9]+ and have length between 1 and %zu",
		        *out, what, max);
	return SL_OK;
}

/* The bus name of an event bus ARN (or name). */
static sl_err
source_bus(const char *arn, char bus[BUS_NAME_MAX + 1], struct sl_error *err)
{
	if (strncmp(arn, "arn:", 4) != 0 || !strstr(arn, ":event-bus/"))
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "Parameter EventSourceArn is not valid. Reason: Provided Arn is "
		        "not in correct format.");
	return bus_resolve_name(arn, bus, err);
}

static sl_err
get_archive(store_txn_t *txn, const char *archive, json_t **out, struct sl_error *err)
{
	struct store_key k;
	arc_key(&k, TAG_ARCHIVE, archive);
	sl_err rc = bus_get_json(txn, STORE_DB_ARCHIVES, &k, out);
	if (rc == SL_ERR_NOT_FOUND)
		return sl_error_set(err, SL_ERR_EB_NOT_FOUND, "Archive %s does not exist.",
		                    archive);
	return rc;
}

static sl_err
retention_arg(json_t *body, bool *given, int64_t *days, struct sl_error *err)
{
	json_t *v = json_object_get(body, "RetentionDays");
	*given = v && !json_is_null(v);
	*days = 0;
	if (!*given)
		return SL_OK;
	if (!json_is_integer(v))
		return sl_error_set(err, SL_ERR_SERIALIZATION,
		                    "Field 'RetentionDays': expected an integer");
	*days = (int64_t)json_integer_value(v);
	if (*days < 0 || *days > 1000000)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "1 validation error detected: Value '%lld' at 'retentionDays' "
		                    "failed to satisfy constraint: Member must have value greater "
		                    "than or equal to 0",
		                    (long long)*days);
	return SL_OK;
}

static sl_err
description_arg(json_t *body, const char **desc, struct sl_error *err)
{
	sl_err rc = bus_str_field(body, "Description", false, desc, err);
	if (rc == SL_OK && *desc && strlen(*desc) > 512)
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "1 validation error detected: Value at 'description' failed to "
		        "satisfy constraint: Member must have length less than or equal "
		        "to 512");
	return rc;
}

static json_t *
archive_json(store_txn_t *txn, json_t *rec, bool full)
{
	const char *name = json_string_value(json_object_get(rec, "name"));
	const char *bus = json_string_value(json_object_get(rec, "bus"));
	char arn[BUS_ARN_MAX], src[BUS_ARN_MAX];
	archive_arn(arn, sizeof arn, name);
	bus_arn(src, sizeof src, bus);
	uint64_t count = 0, size = 0;
	if (counters_get(txn, name, &count, &size))
		return NULL;
	json_t *o = json_pack("{s:s,s:s,s:O,s:O,s:I,s:I,s:o}", "ArchiveName", name,
	                      "EventSourceArn", src, "State", json_object_get(rec, "state"),
	                      "RetentionDays", json_object_get(rec, "retention"), "EventCount",
	                      (json_int_t)count, "SizeBytes", (json_int_t)size, "CreationTime",
	                      ts(json_integer_value(json_object_get(rec, "created"))));
	if (o && full) {
		json_object_set_new(o, "ArchiveArn", json_string(arn));
		json_t *p = json_object_get(rec, "pattern"),
		       *d = json_object_get(rec, "description");
		if (p)
			json_object_set(o, "EventPattern", p);
		if (d)
			json_object_set(o, "Description", d);
	}
	return o;
}

/* ---- archive operations --------------------------------------------------------------- */

static sl_err
op_create_archive(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	const char *name, *src, *pattern, *desc;
	char bus[BUS_NAME_MAX + 1];
	bool has_ret;
	int64_t days;
	sl_err rc;
	if ((rc = name_arg(body, "ArchiveName", "archiveName", ARCHIVE_NAME_MAX, &name, err))
	    || (rc = bus_str_field(body, "EventSourceArn", true, &src, err))
	    || (rc = source_bus(src, bus, err))
	    || (rc = bus_str_field(body, "EventPattern", false, &pattern, err))
	    || (rc = description_arg(body, &desc, err))
	    || (rc = retention_arg(body, &has_ret, &days, err)))
		return rc;
	if (pattern && (rc = pat_validate(pattern, strlen(pattern), err)))
		return rc;
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	if ((rc = bus_require(txn, bus, err)))
		return rc;
	struct store_key k;
	arc_key(&k, TAG_ARCHIVE, name);
	struct store_val v;
	if ((rc = store_get(txn, STORE_DB_ARCHIVES, k.buf, k.len, &v)) == SL_OK)
		return sl_error_set(err, SL_ERR_EB_EXISTS, "Archive %s already exists.", name);
	if (rc != SL_ERR_NOT_FOUND)
		return rc;
	int64_t now = sl_clock_now_ms();
	json_t *rec = json_pack("{s:s,s:s,s:I,s:s,s:I}", "name", name, "bus", bus, "retention",
	                        (json_int_t)days, "state", "ENABLED", "created", (json_int_t)now);
	if (!rec || (pattern && json_object_set_new(rec, "pattern", json_string(pattern)))
	    || (desc && json_object_set_new(rec, "description", json_string(desc)))) {
		json_decref(rec);
		return SL_ERR_NOMEM;
	}
	rc = bus_put_json(txn, STORE_DB_ARCHIVES, &k, rec);
	json_decref(rec);
	if (rc || (rc = counters_add(txn, name, 0, 0))
	    || (rc = on_commit_change(ctx, b, bus, name, pattern, false)))
		return rc;
	char arn[BUS_ARN_MAX];
	archive_arn(arn, sizeof arn, name);
	srv_reply_json(req,
	               json_pack("{s:s,s:s,s:o}", "ArchiveArn", arn, "State", "ENABLED",
	                         "CreationTime", ts(now)));
	return SL_OK;
}

static sl_err
op_describe_archive(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *name;
	sl_err rc = name_arg(body, "ArchiveName", "archiveName", ARCHIVE_NAME_MAX, &name, err);
	if (rc)
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	json_t *rec = NULL, *out = NULL;
	if ((rc = get_archive(txn, name, &rec, err)) == SL_OK
	    && !(out = archive_json(txn, rec, true)))
		rc = SL_ERR_NOMEM;
	store_read_end(txn);
	json_decref(rec);
	if (rc)
		return rc;
	srv_reply_json(req, out);
	return SL_OK;
}

static sl_err
op_list_archives(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *prefix, *src, *state;
	char bus[BUS_NAME_MAX + 1], after[ARCHIVE_NAME_MAX + 2];
	size_t limit;
	sl_err rc;
	if ((rc = bus_str_field(body, "NamePrefix", false, &prefix, err))
	    || (rc = bus_str_field(body, "EventSourceArn", false, &src, err))
	    || (src && (rc = source_bus(src, bus, err)))
	    || (rc = bus_str_field(body, "State", false, &state, err))
	    || (rc = bus_limit(body, &limit, err))
	    || (rc = bus_token_decode(body, after, sizeof after, err)))
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	json_t *list = json_array();
	char *token = NULL;
	store_cursor_t *c = NULL;
	struct store_key pk;
	arc_key(&pk, TAG_ARCHIVE, NULL);
	struct store_val kv, vv;
	if (!list)
		rc = SL_ERR_NOMEM;
	else if ((rc = store_cursor_open(txn, STORE_DB_ARCHIVES, &c)) == SL_OK)
		rc = store_cursor_seek_prefix(c, pk.buf, pk.len);
	while (rc == SL_OK && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
		json_t *rec = json_loadb(vv.data, vv.len, 0, NULL);
		const char *name = json_string_value(json_object_get(rec, "name"));
		const char *rbus = json_string_value(json_object_get(rec, "bus"));
		const char *rstate = json_string_value(json_object_get(rec, "state"));
		bool take = name && rbus && rstate && (!after[0] || strcmp(name, after) > 0)
		        && (!prefix || strncmp(name, prefix, strlen(prefix)) == 0)
		        && (!src || strcmp(rbus, bus) == 0)
		        && (!state || strcmp(rstate, state) == 0);
		if (take && json_array_size(list) == limit) {
			json_t *last = json_array_get(list, limit - 1);
			token = bus_token_encode(
			        json_string_value(json_object_get(last, "ArchiveName")));
			json_decref(rec);
			break;
		}
		json_t *o = take ? archive_json(txn, rec, false) : NULL;
		if (take && (!o || json_array_append_new(list, o)))
			rc = SL_ERR_NOMEM;
		json_decref(rec);
	}
	store_cursor_close(c);
	store_read_end(txn);
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
	json_t *out = rc ? NULL : json_pack("{s:o}", "Archives", list);
	if (rc || !out) {
		if (!rc)
			list = NULL; /* json_pack stole it */
		json_decref(list);
		sl_free(token);
		return rc ? rc : SL_ERR_NOMEM;
	}
	if (token)
		json_object_set_new(out, "NextToken", json_string(token));
	sl_free(token);
	srv_reply_json(req, out);
	return SL_OK;
}

static sl_err
op_update_archive(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	const char *name, *pattern, *desc;
	bool has_ret;
	int64_t days;
	sl_err rc;
	if ((rc = name_arg(body, "ArchiveName", "archiveName", ARCHIVE_NAME_MAX, &name, err))
	    || (rc = bus_str_field(body, "EventPattern", false, &pattern, err))
	    || (rc = description_arg(body, &desc, err))
	    || (rc = retention_arg(body, &has_ret, &days, err)))
		return rc;
	if (pattern && (rc = pat_validate(pattern, strlen(pattern), err)))
		return rc;
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	json_t *rec = NULL;
	if ((rc = get_archive(txn, name, &rec, err)))
		return rc;
	if ((pattern && json_object_set_new(rec, "pattern", json_string(pattern)))
	    || (desc && json_object_set_new(rec, "description", json_string(desc)))
	    || (has_ret && json_object_set_new(rec, "retention", json_integer(days)))) {
		json_decref(rec);
		return SL_ERR_NOMEM;
	}
	struct store_key k;
	arc_key(&k, TAG_ARCHIVE, name);
	const char *bus = json_string_value(json_object_get(rec, "bus"));
	const char *pat = json_string_value(json_object_get(rec, "pattern"));
	char arn[BUS_ARN_MAX];
	archive_arn(arn, sizeof arn, name);
	json_t *out = json_pack("{s:s,s:O,s:o}", "ArchiveArn", arn, "State",
	                        json_object_get(rec, "state"), "CreationTime",
	                        ts(json_integer_value(json_object_get(rec, "created"))));
	if (!out)
		rc = SL_ERR_NOMEM;
	if (rc == SL_OK && !bus)
		rc = SL_ERR_STORE;
	if (rc == SL_OK && (rc = bus_put_json(txn, STORE_DB_ARCHIVES, &k, rec)) == SL_OK)
		rc = on_commit_change(ctx, b, bus, name, pat, false);
	json_decref(rec);
	if (rc) {
		json_decref(out);
		return rc;
	}
	srv_reply_json(req, out);
	return SL_OK;
}

static sl_err
op_delete_archive(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	const char *name;
	sl_err rc = name_arg(body, "ArchiveName", "archiveName", ARCHIVE_NAME_MAX, &name, err);
	if (rc)
		return rc;
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	json_t *rec = NULL;
	if ((rc = get_archive(txn, name, &rec, err)))
		return rc;
	json_decref(rec);
	struct store_key k;
	arc_key(&k, TAG_ENTRY, name);
	if ((rc = store_del_prefix(txn, STORE_DB_ARCHIVES, k.buf, k.len)))
		return rc;
	arc_key(&k, TAG_COUNT, name);
	if ((rc = store_del(txn, STORE_DB_ARCHIVES, k.buf, k.len)))
		return rc;
	arc_key(&k, TAG_ARCHIVE, name);
	if ((rc = store_del(txn, STORE_DB_ARCHIVES, k.buf, k.len))
	    || (rc = on_commit_change(ctx, b, "", name, NULL, true)))
		return rc;
	srv_reply_json(req, NULL);
	return SL_OK;
}

/* ---- retention ------------------------------------------------------------------------ */

/* Deletes up to *budget index entries older than their archive's retention. */
static sl_err
prune_archive(store_txn_t *txn, const char *name, int64_t cutoff, size_t *budget)
{
	struct store_key pk;
	arc_key(&pk, TAG_ENTRY, name);
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, STORE_DB_ARCHIVES, &c);
	if (rc)
		return rc;
	struct store_val kv, vv;
	int64_t n = 0, bytes = 0;
	if ((rc = store_cursor_seek_prefix(c, pk.buf, pk.len)) == SL_OK)
		while (*budget && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			if (kv.len != pk.len + 16 || vv.len != 8) {
				rc = SL_ERR_STORE;
				break;
			}
			if (store_decode_i64((const unsigned char *)kv.data + pk.len) >= cutoff)
				break;
			bytes += (int64_t)store_decode_u64(vv.data);
			if ((rc = store_cursor_del(c)))
				break;
			n++;
			(*budget)--;
		}
	store_cursor_close(c);
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
	return rc == SL_OK && n ? counters_add(txn, name, -n, -bytes) : rc;
}

/* One bounded slice of the prune; *more when the budget ran out. */
static sl_err
prune_step(store_batch_t *b, bool *more)
{
	store_txn_t *txn = store_batch_txn(b);
	size_t budget = ARCHIVE_PRUNE_SLICE;
	int64_t now = sl_clock_now_ms();
	struct store_key pk;
	arc_key(&pk, TAG_ARCHIVE, NULL);
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, STORE_DB_ARCHIVES, &c);
	if (rc)
		return rc;
	struct store_val kv, vv;
	if ((rc = store_cursor_seek_prefix(c, pk.buf, pk.len)) == SL_OK)
		while (budget && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			json_t *rec = json_loadb(vv.data, vv.len, 0, NULL);
			const char *name = json_string_value(json_object_get(rec, "name"));
			int64_t days
			        = (int64_t)json_integer_value(json_object_get(rec, "retention"));
			if (name && days > 0)
				rc = prune_archive(txn, name, now - days * DAY_MS, &budget);
			json_decref(rec);
		}
	store_cursor_close(c);
	*more = budget == 0;
	return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
}

static void
on_prune(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct arc_state *a = arg;
	if (a->srv->stopped)
		return;
	store_batch_t *b;
	bool more = false;
	sl_err rc = srv_batch(a->srv, &b);
	if (rc == SL_OK)
		rc = prune_step(b, &more);
	if (rc)
		sl_errorf("archives", "retention prune: %s", sl_err_message(rc));
	struct timeval tv = { more ? 0 : ARCHIVE_PRUNE_EVERY_S, 0 };
	evtimer_add(a->prune_ev, &tv);
}

/* ---- replays -------------------------------------------------------------------------- */

static void
replay_kick(struct arc_state *a)
{
	struct timeval zero = { 0, 0 };
	if (!evtimer_pending(a->replay_ev, NULL))
		evtimer_add(a->replay_ev, &zero);
}

static void
kick_after_commit(void *arg, sl_err status)
{
	if (status == SL_OK)
		replay_kick(arg);
}

static bool
active(const char *state)
{
	return strcmp(state, "STARTING") == 0 || strcmp(state, "RUNNING") == 0
	        || strcmp(state, "CANCELLING") == 0;
}

/* A time field: epoch seconds (what the SDKs send) or RFC 3339 text. */
static sl_err
time_arg(json_t *body, const char *field, int64_t *ms, struct sl_error *err)
{
	json_t *v = json_object_get(body, field);
	if (!v || json_is_null(v)) {
		char lower[64];
		snprintf(lower, sizeof lower, "%c%s", field[0] + 32, field + 1);
		return bus_missing(err, lower);
	}
	if (json_is_number(v)) {
		double s = json_number_value(v);
		if (s > -1e13 && s < 1e13) {
			*ms = (int64_t)(s * 1000.0);
			return SL_OK;
		}
	} else if (json_is_string(v) && sl_clock_parse_rfc3339(json_string_value(v), ms)) {
		return SL_OK;
	}
	return sl_error_set(err, SL_ERR_SERIALIZATION, "Field '%s': expected a timestamp", field);
}

/* The rule names of FilterArns (rule ARNs of bus) into a new array. */
static sl_err
filter_rules(json_t *dest, const char *bus, json_t **out, struct sl_error *err)
{
	json_t *f = json_object_get(dest, "FilterArns");
	*out = NULL;
	if (!f || json_is_null(f))
		return SL_OK;
	if (!json_is_array(f))
		return sl_error_set(err, SL_ERR_SERIALIZATION,
		                    "Field 'FilterArns': expected a list of strings");
	json_t *names = json_array();
	if (!names)
		return SL_ERR_NOMEM;
	size_t i;
	json_t *v;
	json_array_foreach(f, i, v)
	{
		const char *arn = json_string_value(v);
		const char *r = arn ? strstr(arn, ":rule/") : NULL;
		const char *name = r ? r + strlen(":rule/") : NULL;
		const char *slash = name ? strchr(name, '/') : NULL;
		bool ok = name && strncmp(arn, "arn:", 4) == 0;
		if (ok && slash)
			ok = (size_t)(slash - name) == strlen(bus)
			        && strncmp(name, bus, strlen(bus)) == 0;
		else if (ok)
			ok = strcmp(bus, BUS_DEFAULT) == 0;
		if (ok && slash)
			name = slash + 1;
		if (!ok || !bus_valid_rule_name(name)) {
			json_decref(names);
			return sl_error_set(
			        err, SL_ERR_INVALID_ARG,
			        "Parameter FilterArns is not valid. Reason: %s is not a "
			        "rule of the destination event bus.",
			        arn ? arn : "(not a string)");
		}
		if (json_array_append_new(names, json_string(name))) {
			json_decref(names);
			return SL_ERR_NOMEM;
		}
	}
	*out = names;
	return SL_OK;
}

static sl_err
count_active(store_txn_t *txn, size_t *n)
{
	store_cursor_t *c;
	sl_err rc = store_cursor_open(txn, STORE_DB_REPLAYS, &c);
	if (rc)
		return rc;
	struct store_val kv, vv;
	*n = 0;
	if ((rc = store_cursor_seek(c, NULL, 0)) == SL_OK)
		while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			json_t *rec = json_loadb(vv.data, vv.len, 0, NULL);
			const char *st = json_string_value(json_object_get(rec, "state"));
			if (st && active(st))
				(*n)++;
			json_decref(rec);
		}
	store_cursor_close(c);
	return rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
}

static void
replay_key(struct store_key *k, const char *name)
{
	store_key_init(k);
	store_key_str(k, name);
}

static sl_err
op_start_replay(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	struct arc_state *a = ctx;
	const char *name, *src, *desc, *dest_arn;
	int64_t start, end;
	sl_err rc;
	if ((rc = name_arg(body, "ReplayName", "replayName", REPLAY_NAME_MAX, &name, err))
	    || (rc = bus_str_field(body, "EventSourceArn", true, &src, err))
	    || (rc = description_arg(body, &desc, err))
	    || (rc = time_arg(body, "EventStartTime", &start, err))
	    || (rc = time_arg(body, "EventEndTime", &end, err)))
		return rc;
	json_t *dest = json_object_get(body, "Destination");
	if (!dest || json_is_null(dest))
		return bus_missing(err, "destination");
	if (!json_is_object(dest))
		return sl_error_set(err, SL_ERR_SERIALIZATION,
		                    "Field 'Destination': expected an object");
	if ((rc = bus_str_field(dest, "Arn", true, &dest_arn, err)))
		return rc;
	const char *slash = strstr(src, ":archive/");
	if (strncmp(src, "arn:", 4) != 0 || !slash)
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "Parameter EventSourceArn is not valid. Reason: Provided Arn is "
		        "not in correct format.");
	const char *archive = slash + strlen(":archive/");
	if (start >= end)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "Parameter EventEndTime is not valid. Reason: EventStartTime "
		                    "must be before EventEndTime.");
	if (start > sl_clock_now_ms())
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "Parameter EventStartTime is not valid. Reason: EventStartTime "
		                    "cannot be in the future.");
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	json_t *arec = NULL, *filter = NULL, *rec = NULL;
	if ((rc = get_archive(txn, archive, &arec, err)))
		return rc;
	char bus[BUS_NAME_MAX + 1], dbus[BUS_NAME_MAX + 1];
	snprintf(bus, sizeof bus, "%s", json_string_value(json_object_get(arec, "bus")));
	json_decref(arec);
	if ((rc = source_bus(dest_arn, dbus, err)))
		return rc;
	/* an unknown destination bus is not found, a known other one is a cross-bus replay */
	if (strcmp(bus, dbus) != 0 && (rc = bus_require(txn, dbus, err)))
		return rc;
	if (strcmp(bus, dbus) != 0)
		return sl_error_set(
		        err, SL_ERR_INVALID_ARG,
		        "Parameter Destination.Arn is not valid. Reason: Cross event bus "
		        "replay is not permitted.");
	struct store_key k;
	replay_key(&k, name);
	struct store_val v;
	if ((rc = store_get(txn, STORE_DB_REPLAYS, k.buf, k.len, &v)) == SL_OK)
		return sl_error_set(err, SL_ERR_EB_EXISTS, "Replay %s already exists.", name);
	size_t n;
	if (rc != SL_ERR_NOT_FOUND || (rc = count_active(txn, &n)))
		return rc;
	if (n >= REPLAYS_ACTIVE_MAX)
		return sl_error_set(err, SL_ERR_LIMIT, "%s", BUS_LIMIT_MESSAGE);
	if ((rc = filter_rules(dest, bus, &filter, err)))
		return rc;
	int64_t now = sl_clock_now_ms();
	rec = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:I,s:I,s:I}", "name", name, "archive", archive,
	                "bus", bus, "start", (json_int_t)start, "end", (json_int_t)end, "state",
	                "STARTING", "created", (json_int_t)now, "cur_ms", (json_int_t)start,
	                "cur_seq", (json_int_t)0);
	if (!rec || (filter && json_object_set(rec, "filter", filter))
	    || (desc && json_object_set_new(rec, "description", json_string(desc))))
		rc = SL_ERR_NOMEM;
	json_decref(filter);
	if (rc == SL_OK && (rc = bus_put_json(txn, STORE_DB_REPLAYS, &k, rec)) == SL_OK)
		rc = store_batch_on_commit(b, kick_after_commit, a);
	json_decref(rec);
	if (rc)
		return rc;
	char arn[BUS_ARN_MAX];
	replay_arn(arn, sizeof arn, name);
	srv_reply_json(req,
	               json_pack("{s:s,s:s,s:o}", "ReplayArn", arn, "State", "STARTING",
	                         "ReplayStartTime", ts(now)));
	return SL_OK;
}

static json_t *
replay_json(json_t *rec, bool full)
{
	const char *name = json_string_value(json_object_get(rec, "name"));
	const char *archive = json_string_value(json_object_get(rec, "archive"));
	char arn[BUS_ARN_MAX];
	archive_arn(arn, sizeof arn, archive ? archive : "");
	json_t *o
	        = json_pack("{s:s,s:s,s:O,s:o,s:o,s:o}", "ReplayName", name, "EventSourceArn", arn,
	                    "State", json_object_get(rec, "state"), "EventStartTime",
	                    ts(json_integer_value(json_object_get(rec, "start"))), "EventEndTime",
	                    ts(json_integer_value(json_object_get(rec, "end"))), "ReplayStartTime",
	                    ts(json_integer_value(json_object_get(rec, "created"))));
	if (!o)
		return NULL;
	json_t *v;
	if ((v = json_object_get(rec, "last")))
		json_object_set_new(o, "EventLastReplayedTime", ts(json_integer_value(v)));
	if ((v = json_object_get(rec, "ended")))
		json_object_set_new(o, "ReplayEndTime", ts(json_integer_value(v)));
	if ((v = json_object_get(rec, "reason")))
		json_object_set(o, "StateReason", v);
	if (!full)
		return o;
	replay_arn(arn, sizeof arn, name);
	json_object_set_new(o, "ReplayArn", json_string(arn));
	if ((v = json_object_get(rec, "description")))
		json_object_set(o, "Description", v);
	char bus_a[BUS_ARN_MAX];
	bus_arn(bus_a, sizeof bus_a, json_string_value(json_object_get(rec, "bus")));
	json_t *d = json_pack("{s:s}", "Arn", bus_a);
	json_t *f = json_object_get(rec, "filter");
	if (d && f) {
		json_t *arns = json_array();
		size_t i;
		json_array_foreach(f, i, v)
		{
			char ra[BUS_ARN_MAX];
			bus_rule_arn(ra, sizeof ra, json_string_value(json_object_get(rec, "bus")),
			             json_string_value(v));
			json_array_append_new(arns, json_string(ra));
		}
		json_object_set_new(d, "FilterArns", arns);
	}
	json_object_set_new(o, "Destination", d);
	return o;
}

static sl_err
op_describe_replay(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *name;
	sl_err rc = name_arg(body, "ReplayName", "replayName", REPLAY_NAME_MAX, &name, err);
	if (rc)
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	struct store_key k;
	replay_key(&k, name);
	json_t *rec = NULL;
	rc = bus_get_json(txn, STORE_DB_REPLAYS, &k, &rec);
	store_read_end(txn);
	if (rc == SL_ERR_NOT_FOUND)
		return sl_error_set(err, SL_ERR_EB_NOT_FOUND, "Replay %s does not exist.", name);
	if (rc)
		return rc;
	json_t *out = replay_json(rec, true);
	json_decref(rec);
	if (!out)
		return SL_ERR_NOMEM;
	srv_reply_json(req, out);
	return SL_OK;
}

static sl_err
op_list_replays(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *prefix, *src, *state;
	char after[REPLAY_NAME_MAX + 2];
	size_t limit;
	sl_err rc;
	if ((rc = bus_str_field(body, "NamePrefix", false, &prefix, err))
	    || (rc = bus_str_field(body, "EventSourceArn", false, &src, err))
	    || (rc = bus_str_field(body, "State", false, &state, err))
	    || (rc = bus_limit(body, &limit, err))
	    || (rc = bus_token_decode(body, after, sizeof after, err)))
		return rc;
	const char *src_archive = src && strstr(src, ":archive/")
	        ? strstr(src, ":archive/") + strlen(":archive/")
	        : src;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	json_t *list = json_array();
	char *token = NULL;
	store_cursor_t *c = NULL;
	struct store_val kv, vv;
	if (!list)
		rc = SL_ERR_NOMEM;
	else if ((rc = store_cursor_open(txn, STORE_DB_REPLAYS, &c)) == SL_OK)
		rc = store_cursor_seek(c, NULL, 0);
	while (rc == SL_OK && (rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
		json_t *rec = json_loadb(vv.data, vv.len, 0, NULL);
		const char *name = json_string_value(json_object_get(rec, "name"));
		const char *ra = json_string_value(json_object_get(rec, "archive"));
		const char *rs = json_string_value(json_object_get(rec, "state"));
		bool take = name && ra && rs && (!after[0] || strcmp(name, after) > 0)
		        && (!prefix || strncmp(name, prefix, strlen(prefix)) == 0)
		        && (!src_archive || strcmp(ra, src_archive) == 0)
		        && (!state || strcmp(rs, state) == 0);
		if (take && json_array_size(list) == limit) {
			json_t *last = json_array_get(list, limit - 1);
			token = bus_token_encode(
			        json_string_value(json_object_get(last, "ReplayName")));
			json_decref(rec);
			break;
		}
		json_t *o = take ? replay_json(rec, false) : NULL;
		if (take && (!o || json_array_append_new(list, o)))
			rc = SL_ERR_NOMEM;
		json_decref(rec);
	}
	store_cursor_close(c);
	store_read_end(txn);
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
	if (rc) {
		json_decref(list);
		sl_free(token);
		return rc;
	}
	json_t *out = json_pack("{s:o}", "Replays", list);
	if (out && token)
		json_object_set_new(out, "NextToken", json_string(token));
	sl_free(token);
	if (!out)
		return SL_ERR_NOMEM;
	srv_reply_json(req, out);
	return SL_OK;
}

static sl_err
op_cancel_replay(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	const char *name;
	sl_err rc = name_arg(body, "ReplayName", "replayName", REPLAY_NAME_MAX, &name, err);
	if (rc)
		return rc;
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	struct store_key k;
	replay_key(&k, name);
	json_t *rec = NULL;
	if ((rc = bus_get_json(txn, STORE_DB_REPLAYS, &k, &rec)) == SL_ERR_NOT_FOUND)
		return sl_error_set(err, SL_ERR_EB_NOT_FOUND, "Replay %s does not exist.", name);
	if (rc)
		return rc;
	const char *st = json_string_value(json_object_get(rec, "state"));
	if (!st || (strcmp(st, "STARTING") != 0 && strcmp(st, "RUNNING") != 0)) {
		json_decref(rec);
		return sl_error_set(err, SL_ERR_EB_ILLEGAL_STATUS,
		                    "Replay %s is not in a state that can be cancelled.", name);
	}
	if (json_object_set_new(rec, "state", json_string("CANCELLING")))
		rc = SL_ERR_NOMEM;
	if (rc == SL_OK && (rc = bus_put_json(txn, STORE_DB_REPLAYS, &k, rec)) == SL_OK)
		rc = store_batch_on_commit(b, kick_after_commit, ctx);
	json_decref(rec);
	if (rc)
		return rc;
	char arn[BUS_ARN_MAX];
	replay_arn(arn, sizeof arn, name);
	srv_reply_json(req, json_pack("{s:s,s:s}", "ReplayArn", arn, "State", "CANCELLING"));
	return SL_OK;
}

/* ---- the replay job ------------------------------------------------------------------- */

static bool
keep_rule(void *ctx, const char *rule)
{
	json_t *names = ctx, *v;
	size_t i;
	json_array_foreach(names, i, v) if (strcmp(json_string_value(v), rule) == 0) return true;
	return false;
}

/* The archived envelope with "replay-name" added: spliced after the opening brace so the
 * rest of the text (numbers' digits) stays as written. */
static char *
with_replay_name(const char *text, size_t len, const char *replay)
{
	if (len < 2 || text[0] != '{')
		return NULL;
	return sl_asprintf("{\"replay-name\":\"%s\",%.*s", replay, (int)(len - 1), text + 1);
}

static sl_err
replay_one(struct arc_state *a, store_batch_t *b, json_t *rec, const char *bus, uint64_t seq,
           json_t *filter)
{
	store_txn_t *txn = store_batch_txn(b);
	struct store_key k;
	store_key_init(&k);
	store_key_str(&k, bus);
	store_key_u64(&k, seq);
	struct store_val v;
	sl_err rc = store_get(txn, STORE_DB_EVENTS, k.buf, k.len, &v);
	if (rc == SL_ERR_NOT_FOUND)
		return SL_OK; /* the bus's log no longer holds it */
	if (rc)
		return rc;
	json_t *env = json_loadb(v.data, v.len, 0, NULL);
	const char *id = json_string_value(json_object_get(env, "id"));
	char *text = id
	        ? with_replay_name(v.data, v.len, json_string_value(json_object_get(rec, "name")))
	        : NULL;
	if (!text) {
		json_decref(env);
		return SL_OK; /* not an envelope: nothing to replay */
	}
	struct sl_error err;
	sl_error_clear(&err);
	rc = bus_publish_filtered(a->bst, b, bus, id, text, filter ? keep_rule : NULL, filter,
	                          &err);
	sl_free(text);
	json_decref(env);
	return rc;
}

/* Advances one replay by up to *budget events; rewrites its record in b. */
static sl_err
replay_step(struct arc_state *a, store_batch_t *b, const struct store_key *rk, json_t *rec,
            size_t *budget, bool *more)
{
	store_txn_t *txn = store_batch_txn(b);
	const char *state = json_string_value(json_object_get(rec, "state"));
	const char *archive = json_string_value(json_object_get(rec, "archive"));
	const char *bus = json_string_value(json_object_get(rec, "bus"));
	if (!state || !archive || !bus)
		return SL_ERR_STORE;
	int64_t now = sl_clock_now_ms();
	if (strcmp(state, "CANCELLING") == 0) {
		json_object_set_new(rec, "state", json_string("CANCELLED"));
		json_object_set_new(rec, "ended", json_integer(now));
		return bus_put_json(txn, STORE_DB_REPLAYS, rk, rec);
	}
	struct store_key ak;
	arc_key(&ak, TAG_ARCHIVE, archive);
	struct store_val av;
	sl_err rc = store_get(txn, STORE_DB_ARCHIVES, ak.buf, ak.len, &av);
	if (rc == SL_ERR_NOT_FOUND) {
		json_object_set_new(rec, "state", json_string("FAILED"));
		json_object_set_new(rec, "reason", json_string("The archive was deleted."));
		json_object_set_new(rec, "ended", json_integer(now));
		return bus_put_json(txn, STORE_DB_REPLAYS, rk, rec);
	}
	if (rc)
		return rc;
	int64_t end = json_integer_value(json_object_get(rec, "end"));
	int64_t cur_ms = json_integer_value(json_object_get(rec, "cur_ms"));
	uint64_t cur_seq = (uint64_t)json_integer_value(json_object_get(rec, "cur_seq"));
	json_t *filter = json_object_get(rec, "filter");
	struct store_key pk, sk;
	arc_key(&pk, TAG_ENTRY, archive);
	sk = pk;
	store_key_i64(&sk, cur_ms);
	store_key_u64(&sk, cur_seq);
	store_cursor_t *c;
	if ((rc = store_cursor_open(txn, STORE_DB_ARCHIVES, &c)))
		return rc;
	bool done = false;
	int64_t last = -1;
	struct store_val kv, vv;
	if ((rc = store_cursor_seek(c, sk.buf, sk.len)) == SL_OK)
		while (*budget) {
			if ((rc = store_cursor_next(c, &kv, &vv)) == SL_ERR_NOT_FOUND
			    || (rc == SL_OK
			        && (kv.len < pk.len || memcmp(kv.data, pk.buf, pk.len) != 0))) {
				done = true; /* past the archive's entries */
				rc = SL_OK;
				break;
			}
			if (rc)
				break;
			if (kv.len != pk.len + 16) {
				rc = SL_ERR_STORE;
				break;
			}
			const unsigned char *p = (const unsigned char *)kv.data + pk.len;
			int64_t ms = store_decode_i64(p);
			uint64_t seq = store_decode_u64(p + 8);
			if (ms > end) {
				done = true;
				break;
			}
			/* ms and seq are copied: the cursor's bytes do not outlive a write */
			if ((rc = replay_one(a, b, rec, bus, seq, filter)))
				break;
			last = ms;
			cur_ms = ms;
			cur_seq = seq + 1;
			(*budget)--;
		}
	store_cursor_close(c);
	if (rc)
		return rc;
	json_object_set_new(rec, "cur_ms", json_integer(cur_ms));
	json_object_set_new(rec, "cur_seq", json_integer((json_int_t)cur_seq));
	if (last >= 0)
		json_object_set_new(rec, "last", json_integer(last));
	json_object_set_new(rec, "state", json_string(done ? "COMPLETED" : "RUNNING"));
	if (done)
		json_object_set_new(rec, "ended", json_integer(now));
	else
		*more = true;
	return bus_put_json(txn, STORE_DB_REPLAYS, rk, rec);
}

static sl_err
replays_step(struct arc_state *a, store_batch_t *b, bool *more)
{
	store_txn_t *txn = store_batch_txn(b);
	size_t budget = REPLAY_SLICE;
	*more = false;
	/* names first: replay_step writes the replays database */
	json_t *names = json_array();
	if (!names)
		return SL_ERR_NOMEM;
	store_cursor_t *c = NULL;
	sl_err rc = store_cursor_open(txn, STORE_DB_REPLAYS, &c);
	struct store_val kv, vv;
	if (rc == SL_OK && (rc = store_cursor_seek(c, NULL, 0)) == SL_OK)
		while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			json_t *rec = json_loadb(vv.data, vv.len, 0, NULL);
			const char *st = json_string_value(json_object_get(rec, "state"));
			if (st && active(st))
				json_array_append(names, json_object_get(rec, "name"));
			json_decref(rec);
		}
	store_cursor_close(c);
	if (rc == SL_ERR_NOT_FOUND)
		rc = SL_OK;
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v)
	{
		if (rc || !budget) {
			*more = *more || !rc;
			break;
		}
		struct store_key k;
		replay_key(&k, json_string_value(v));
		json_t *rec = NULL;
		if ((rc = bus_get_json(txn, STORE_DB_REPLAYS, &k, &rec)))
			break;
		rc = replay_step(a, b, &k, rec, &budget, more);
		json_decref(rec);
	}
	json_decref(names);
	return rc;
}

static void
on_replay(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct arc_state *a = arg;
	if (a->srv->stopped)
		return;
	store_batch_t *b;
	bool more = false;
	sl_err rc = srv_batch(a->srv, &b);
	if (rc == SL_OK)
		rc = replays_step(a, b, &more);
	if (rc) {
		sl_errorf("archives", "replays: %s", sl_err_message(rc));
		struct timeval tv = { 1, 0 }; /* retry later rather than spin */
		evtimer_add(a->replay_ev, &tv);
		return;
	}
	if (more)
		replay_kick(a);
}

/* ---- start-up ------------------------------------------------------------------------- */

static sl_err
load(struct arc_state *a)
{
	store_txn_t *txn;
	sl_err rc = store_read_begin(srv_store(a->srv), &txn);
	if (rc)
		return rc;
	struct store_key pk;
	arc_key(&pk, TAG_ARCHIVE, NULL);
	store_cursor_t *c = NULL;
	struct store_val kv, vv;
	size_t n = 0;
	if ((rc = store_cursor_open(txn, STORE_DB_ARCHIVES, &c)) == SL_OK
	    && (rc = store_cursor_seek_prefix(c, pk.buf, pk.len)) == SL_OK)
		while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
			json_t *rec = json_loadb(vv.data, vv.len, 0, NULL);
			const char *name = json_string_value(json_object_get(rec, "name"));
			const char *bus = json_string_value(json_object_get(rec, "bus"));
			if (name && bus) {
				install(a, bus, name,
				        json_string_value(json_object_get(rec, "pattern")));
				n++;
			}
			json_decref(rec);
		}
	store_cursor_close(c);
	store_read_end(txn);
	if (rc == SL_ERR_NOT_FOUND) {
		if (n)
			sl_info("archives", "%zu archive(s) loaded", n);
		return SL_OK;
	}
	return rc;
}

sl_err
srv_api_archives_register(srv_t *s, struct bus_state *st)
{
	struct arc_state *a = SL_NEW(struct arc_state);
	if (!a)
		return SL_ERR_NOMEM;
	/* like the bus state: no teardown hook, kept reachable for the process */
	a->srv = s;
	a->bst = st;
	a->next = states;
	states = a;
	a->prune_ev = evtimer_new(srv_base(s), on_prune, a);
	a->replay_ev = evtimer_new(srv_base(s), on_replay, a);
	if (!a->prune_ev || !a->replay_ev)
		return SL_ERR_NOMEM;
	event_priority_set(a->prune_ev, SRV_PRIO_NORMAL);
	event_priority_set(a->replay_ev, SRV_PRIO_NORMAL);
	sl_err rc = load(a);
	if (rc)
		return rc;
	struct timeval zero = { 0, 0 };
	evtimer_add(a->prune_ev, &zero);
	evtimer_add(a->replay_ev, &zero); /* resumes replays in progress */
	static const struct {
		const char *op;
		srv_op_fn fn;
	} ops[] = {
		{ "AWSEvents.CreateArchive", op_create_archive },
		{ "AWSEvents.DescribeArchive", op_describe_archive },
		{ "AWSEvents.ListArchives", op_list_archives },
		{ "AWSEvents.UpdateArchive", op_update_archive },
		{ "AWSEvents.DeleteArchive", op_delete_archive },
		{ "AWSEvents.StartReplay", op_start_replay },
		{ "AWSEvents.DescribeReplay", op_describe_replay },
		{ "AWSEvents.ListReplays", op_list_replays },
		{ "AWSEvents.CancelReplay", op_cancel_replay },
	};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if ((rc = srv_register_op(s, ops[i].op, ops[i].fn, a)))
			return rc;
	return SL_OK;
}
