/*
 * srv_api_machines.c - Step Functions' state machine operations: CreateStateMachine,
 * DescribeStateMachine, UpdateStateMachine, DeleteStateMachine, ListStateMachines,
 * PublishStateMachineVersion, ListStateMachineVersions, ValidateStateMachineDefinition.
 *
 * Definitions are validated and compiled (statemachines/) before anything is stored, and
 * stored as the text the user sent. Writes go through the request's batch, so the answer
 * leaves only after the commit; a failed request rolls its writes back.
 */
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "server/srv_api.h"
#include "statemachines/statemachines.h"

#define NAME_MAX_LEN 80
#define LIST_DEFAULT 100

enum { TAG_META = 'M', TAG_REV = 'R', TAG_VERSION = 'V' };

json_t *
srv_json_time(int64_t ms)
{
	return json_real((double)ms / 1000.0);
}

/* ---- keys and records ------------------------------------------------------------------- */

static void
key_of(struct store_key *k, int tag, const char *name, uint32_t n)
{
	store_key_init(k);
	store_key_u32(k, (uint32_t)tag);
	if (name)
		store_key_str(k, name);
	if (n)
		store_key_u32(k, n);
}

static sl_err
get_record(store_txn_t *txn, int tag, const char *name, uint32_t n, json_t **out)
{
	struct store_key k;
	key_of(&k, tag, name, n);
	struct store_val v;
	sl_err rc = store_get(txn, STORE_DB_MACHINES, k.buf, k.len, &v);
	if (rc)
		return rc;
	*out = json_loadb(v.data, v.len, 0, NULL);
	return *out ? SL_OK : SL_ERR_STORE;
}

static sl_err
put_record(store_txn_t *txn, int tag, const char *name, uint32_t n, json_t *rec)
{
	struct store_key k;
	key_of(&k, tag, name, n);
	char *text = json_dumps(rec, JSON_COMPACT);
	if (!text)
		return SL_ERR_NOMEM;
	sl_err rc = store_put(txn, STORE_DB_MACHINES, k.buf, k.len, text, strlen(text));
	sl_free(text);
	return rc;
}

static uint32_t
rec_u32(json_t *rec, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(rec, key));
	return v > 0 && v <= UINT32_MAX ? (uint32_t)v : 0;
}

static const char *
rec_str(json_t *rec, const char *key)
{
	return json_string_value(json_object_get(rec, key));
}

sl_err
srv_machine_definition(store_txn_t *txn, const char *name, uint32_t revision, char **definition,
                       uint32_t *out_revision)
{
	json_t *meta = NULL, *rev = NULL;
	sl_err rc = get_record(txn, TAG_META, name, 0, &meta);
	if (rc)
		return rc == SL_ERR_NOT_FOUND ? SL_ERR_SM_NOT_FOUND : rc;
	if (!revision)
		revision = rec_u32(meta, "revision");
	json_decref(meta);
	if ((rc = get_record(txn, TAG_REV, name, revision, &rev)))
		return rc == SL_ERR_NOT_FOUND ? SL_ERR_SM_NOT_FOUND : rc;
	*definition = sl_strdup(rec_str(rev, "definition"));
	json_decref(rev);
	if (!*definition)
		return SL_ERR_NOMEM;
	if (out_revision)
		*out_revision = revision;
	return SL_OK;
}

/* ---- request fields ----------------------------------------------------------------------- */

/* AWS's name rules: 1..80 characters, none of whitespace, brackets, wildcards, the listed
 * punctuation or control characters. */
static bool
valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || strchr(" \t\n\r<>{}[]?*\"#%\\^|~`$&,;:/", *p))
			return false;
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) /* C1 controls */
			return false;
	}
	return true;
}

/* Splits a state machine ARN into name and version (0 = none). */
static sl_err
parse_machine_arn(const char *arn, char name[NAME_MAX_LEN + 1], uint32_t *version,
                  struct sl_error *err)
{
	char buf[512];
	if (strlen(arn) >= sizeof buf)
		return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%.200s...'", arn);
	memcpy(buf, arn, strlen(arn) + 1);
	struct sl_arn a;
	if (sl_arn_parse(buf, &a) || strcmp(a.service, "states") != 0
	    || strncmp(a.resource, "stateMachine:", 13) != 0)
		return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%s'", arn);
	char *nm = a.resource + 13;
	char *qual = strchr(nm, ':');
	*version = 0;
	if (qual) {
		*qual++ = '\0';
		char *end;
		unsigned long v = strtoul(qual, &end, 10);
		if (!*qual || *end || v == 0 || v > UINT32_MAX)
			return sl_error_set(err, SL_ERR_INVALID_ARN,
			                    "Invalid Arn: 'Invalid version qualifier: %s'", qual);
		*version = (uint32_t)v;
	}
	if (!valid_name(nm))
		return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%s'", arn);
	/* another region or account names a machine that cannot be here */
	if (strcmp(a.region, sl_arn_region()) != 0 || strcmp(a.account, sl_arn_account()) != 0)
		return sl_error_set(err, SL_ERR_SM_NOT_FOUND, "State Machine Does Not Exist: '%s'",
		                    arn);
	snprintf(name, NAME_MAX_LEN + 1, "%s", nm);
	return SL_OK;
}

static void
machine_arn(char *out, size_t cap, const char *name, uint32_t version)
{
	char v[16];
	snprintf(v, sizeof v, "%u", version);
	sl_arn_format(out, cap, "states", "stateMachine", name, version ? v : NULL, NULL);
}

static sl_err
not_found(struct sl_error *err, const char *arn)
{
	return sl_error_set(err, SL_ERR_SM_NOT_FOUND, "State Machine Does Not Exist: '%s'", arn);
}

/* The validator's name for a machine type (NULL: STANDARD, AWS's default). */
static enum sm_execution_type
machine_type(const char *type)
{
	return type && !strcmp(type, "EXPRESS") ? SM_EXECUTION_EXPRESS : SM_EXECUTION_STANDARD;
}

/* Validates and compiles a definition for a machine of type (EXPRESS machines refuse what
 * EXPRESS executions cannot run); the problems become AWS's InvalidDefinition. */
static sl_err
check_definition(const char *text, const char *type, struct sl_error *err)
{
	if (strlen(text) > SM_DEFINITION_MAX_BYTES)
		return sl_error_set(
		        err, SL_ERR_SFN_VALIDATION,
		        "1 validation error detected: Value at 'definition' failed to "
		        "satisfy constraint: Member must have length less than or equal "
		        "to %d",
		        SM_DEFINITION_MAX_BYTES);
	struct sm_problems problems = { 0 };
	struct sm_machine *m = NULL;
	sl_err rc = sm_definition_compile_text_typed(text, strlen(text), NULL, SM_FORMAT_AUTO,
	                                             machine_type(type), &m, &problems);
	sm_machine_free(m);
	if (rc == SL_ERR_NOMEM) {
		sm_problems_clear(&problems);
		return sl_error_set(err, rc, "out of memory");
	}
	if (rc) {
		char *msg = sm_problems_aws_message(&problems);
		sl_error_set(err, SL_ERR_INVALID_DEFINITION, "%s",
		             msg ? msg : "Invalid State Machine Definition");
		sl_free(msg);
		sm_problems_clear(&problems);
		return SL_ERR_INVALID_DEFINITION;
	}
	return SL_OK;
}

static sl_err
check_type(const char *type, struct sl_error *err)
{
	if (type && strcmp(type, "STANDARD") != 0 && strcmp(type, "EXPRESS") != 0)
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "1 validation error detected: Value '%s' at 'type' failed to "
		                    "satisfy constraint: Member must satisfy enum value set: "
		                    "[STANDARD, EXPRESS]",
		                    type);
	return SL_OK;
}

/* Writes version n of name pointing at revision; returns its ARN. */
static sl_err
publish(store_txn_t *txn, json_t *meta, const char *name, const char *description, int64_t now,
        char *arn, size_t cap, int64_t *created)
{
	uint32_t revision = rec_u32(meta, "revision");
	uint32_t last = rec_u32(meta, "version");
	if (last) {
		/* publishing an unchanged revision again answers the version it already has */
		json_t *v = NULL;
		if (get_record(txn, TAG_VERSION, name, last, &v) == SL_OK
		    && rec_u32(v, "revision") == revision) {
			*created = (int64_t)json_integer_value(json_object_get(v, "created"));
			json_decref(v);
			machine_arn(arn, cap, name, last);
			return SL_OK;
		}
		json_decref(v);
	}
	json_t *v = json_pack("{s:I,s:I}", "revision", (json_int_t)revision, "created",
	                      (json_int_t)now);
	if (!v
	    || (description && json_object_set_new(v, "description", json_string(description)))) {
		json_decref(v);
		return SL_ERR_NOMEM;
	}
	sl_err rc = put_record(txn, TAG_VERSION, name, last + 1, v);
	json_decref(v);
	if (rc)
		return rc;
	if (json_object_set_new(meta, "version", json_integer(last + 1)))
		return SL_ERR_NOMEM;
	*created = now;
	machine_arn(arn, cap, name, last + 1);
	return put_record(txn, TAG_META, name, 0, meta);
}

static sl_err
new_revision(store_txn_t *txn, const char *name, uint32_t revision, const char *definition,
             const char *role_arn, int64_t now, char revision_id[SL_UUID_STRLEN + 1])
{
	sl_err rc = sl_uuid4(revision_id);
	if (rc)
		return rc;
	json_t *r = json_pack("{s:s,s:s,s:I}", "definition", definition, "revisionId", revision_id,
	                      "created", (json_int_t)now);
	if (!r || (role_arn && json_object_set_new(r, "roleArn", json_string(role_arn)))) {
		json_decref(r);
		return SL_ERR_NOMEM;
	}
	rc = put_record(txn, TAG_REV, name, revision, r);
	json_decref(r);
	return rc;
}

/* ---- operations --------------------------------------------------------------------------- */

static sl_err
op_create(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *name, *definition, *role_arn, *type, *vdesc;
	sl_err rc;
	if ((rc = srv_sfn_str_field(body, "name", true, &name, err))
	    || (rc = srv_sfn_str_field(body, "definition", true, &definition, err))
	    || (rc = srv_sfn_str_field(body, "roleArn", false, &role_arn, err))
	    || (rc = srv_sfn_str_field(body, "type", false, &type, err))
	    || (rc = srv_sfn_str_field(body, "versionDescription", false, &vdesc, err)))
		return rc;
	json_t *pub = json_object_get(body, "publish");
	if (pub && !json_is_boolean(pub))
		return sl_error_set(err, SL_ERR_SERIALIZATION,
		                    "Field 'publish': expected a boolean");
	if (!valid_name(name))
		return sl_error_set(err, SL_ERR_INVALID_NAME, "Invalid Name: '%s'", name);
	if ((rc = check_type(type, err)) || (rc = check_definition(definition, type, err)))
		return rc;
	if (!type)
		type = "STANDARD";

	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	char arn[512], varn[512] = "";
	machine_arn(arn, sizeof arn, name, 0);
	json_t *meta = NULL;
	rc = get_record(txn, TAG_META, name, 0, &meta);
	if (rc == SL_OK) {
		/* AWS: creating the same machine again is idempotent, a different one is refused */
		json_t *rev = NULL;
		bool same = strcmp(rec_str(meta, "type"), type) == 0
		        && get_record(txn, TAG_REV, name, rec_u32(meta, "revision"), &rev) == SL_OK
		        && strcmp(rec_str(rev, "definition"), definition) == 0
		        && (!role_arn
		            || (rec_str(rev, "roleArn")
		                && strcmp(rec_str(rev, "roleArn"), role_arn) == 0));
		json_decref(rev);
		int64_t created = (int64_t)json_integer_value(json_object_get(meta, "created"));
		json_decref(meta);
		if (!same)
			return sl_error_set(err, SL_ERR_SM_EXISTS,
			                    "State Machine Already Exists: '%s'", arn);
		srv_reply_json(req,
		               json_pack("{s:s,s:o}", "stateMachineArn", arn, "creationDate",
		                         srv_json_time(created)));
		return SL_OK;
	}
	if (rc != SL_ERR_NOT_FOUND)
		return rc;
	int64_t now = sl_clock_now_ms();
	char revision_id[SL_UUID_STRLEN + 1];
	meta = json_pack("{s:s,s:s,s:I,s:I,s:i,s:i}", "name", name, "type", type, "created",
	                 (json_int_t)now, "updated", (json_int_t)now, "revision", 1, "version", 0);
	if (!meta)
		return SL_ERR_NOMEM;
	int64_t vcreated = 0;
	if ((rc = put_record(txn, TAG_META, name, 0, meta))
	    || (rc = new_revision(txn, name, 1, definition, role_arn, now, revision_id))
	    || (json_is_true(pub)
	        && (rc = publish(txn, meta, name, vdesc, now, varn, sizeof varn, &vcreated)))) {
		json_decref(meta);
		return rc;
	}
	json_decref(meta);
	json_t *out = json_pack("{s:s,s:o}", "stateMachineArn", arn, "creationDate",
	                        srv_json_time(now));
	if (out && varn[0])
		json_object_set_new(out, "stateMachineVersionArn", json_string(varn));
	srv_reply_json(req, out);
	return SL_OK;
}

/* Loads meta (and the revision a version points at) for a (maybe qualified) ARN. */
static sl_err
lookup(store_txn_t *txn, const char *arn, char name[NAME_MAX_LEN + 1], uint32_t *version,
       json_t **meta, json_t **rev, json_t **ver, struct sl_error *err)
{
	sl_err rc = parse_machine_arn(arn, name, version, err);
	if (rc)
		return rc;
	*meta = *rev = NULL;
	if (ver)
		*ver = NULL;
	if ((rc = get_record(txn, TAG_META, name, 0, meta)))
		return rc == SL_ERR_NOT_FOUND ? not_found(err, arn) : rc;
	uint32_t revision = rec_u32(*meta, "revision");
	if (*version) {
		json_t *v = NULL;
		if ((rc = get_record(txn, TAG_VERSION, name, *version, &v)))
			return rc == SL_ERR_NOT_FOUND ? not_found(err, arn) : rc;
		revision = rec_u32(v, "revision");
		if (ver)
			*ver = v;
		else
			json_decref(v);
	}
	if ((rc = get_record(txn, TAG_REV, name, revision, rev)))
		return rc == SL_ERR_NOT_FOUND ? not_found(err, arn) : rc;
	return SL_OK;
}

/* For writes on the machine itself (update, publish): the request's batch, and the
 * machine's records; a version ARN is refused, what names the operation for the message. */
static sl_err
lookup_for_write(srv_req_t *req, const char *arn, const char *what, store_txn_t **txn,
                 char name[NAME_MAX_LEN + 1], json_t **meta, json_t **rev, struct sl_error *err)
{
	store_batch_t *b;
	uint32_t version;
	sl_err rc = srv_req_batch(req, &b);
	if (rc)
		return rc;
	*txn = store_batch_txn(b);
	if ((rc = lookup(*txn, arn, name, &version, meta, rev, NULL, err)))
		return rc;
	if (version)
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "Cannot %s a state machine version: '%s'", what, arn);
	return SL_OK;
}

static sl_err
op_describe(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *arn;
	sl_err rc = srv_sfn_str_field(body, "stateMachineArn", true, &arn, err);
	if (rc)
		return rc;
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	char name[NAME_MAX_LEN + 1];
	uint32_t version;
	json_t *meta = NULL, *rev = NULL, *ver = NULL;
	rc = lookup(txn, arn, name, &version, &meta, &rev, &ver, err);
	store_read_end(txn);
	if (rc)
		goto out;
	char qarn[512];
	machine_arn(qarn, sizeof qarn, name, version);
	/* a version's creation date is the version's own */
	int64_t created = (int64_t)json_integer_value(json_object_get(ver ? ver : meta, "created"));
	json_t *out = json_pack("{s:s,s:s,s:s,s:O,s:s,s:s,s:o,s:{s:s,s:b},s:{s:b}}",
	                        "stateMachineArn", qarn, "name", name, "status", "ACTIVE",
	                        "definition", json_object_get(rev, "definition"), "roleArn",
	                        rec_str(rev, "roleArn") ? rec_str(rev, "roleArn")
	                                                : "arn:aws:iam::000000000000:role/sluice",
	                        "type", rec_str(meta, "type"), "creationDate",
	                        srv_json_time(created), "loggingConfiguration", "level", "OFF",
	                        "includeExecutionData", 0, "tracingConfiguration", "enabled", 0);
	if (out && rec_str(rev, "revisionId"))
		json_object_set_new(out, "revisionId", json_string(rec_str(rev, "revisionId")));
	if (out && ver && rec_str(ver, "description"))
		json_object_set_new(out, "description", json_string(rec_str(ver, "description")));
	srv_reply_json(req, out);
out:
	json_decref(meta);
	json_decref(rev);
	json_decref(ver);
	return rc;
}

static sl_err
op_update(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *arn, *definition, *role_arn, *vdesc;
	sl_err rc;
	if ((rc = srv_sfn_str_field(body, "stateMachineArn", true, &arn, err))
	    || (rc = srv_sfn_str_field(body, "definition", false, &definition, err))
	    || (rc = srv_sfn_str_field(body, "roleArn", false, &role_arn, err))
	    || (rc = srv_sfn_str_field(body, "versionDescription", false, &vdesc, err)))
		return rc;
	json_t *pub = json_object_get(body, "publish");
	if (pub && !json_is_boolean(pub))
		return sl_error_set(err, SL_ERR_SERIALIZATION,
		                    "Field 'publish': expected a boolean");
	if (!definition && !role_arn && !json_object_get(body, "loggingConfiguration")
	    && !json_object_get(body, "tracingConfiguration"))
		return sl_error_set(
		        err, SL_ERR_SFN_VALIDATION,
		        "Either the definition, the roleArn, the loggingConfiguration or "
		        "the tracingConfiguration must be specified");
	if (vdesc && !json_is_true(pub))
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "Version description can only be set when publish is true");
	if (definition && (rc = check_definition(definition, NULL, err)))
		return rc;
	store_txn_t *txn;
	char name[NAME_MAX_LEN + 1];
	json_t *meta = NULL, *rev = NULL;
	if ((rc = lookup_for_write(req, arn, "update", &txn, name, &meta, &rev, err)))
		goto out;
	/* the machine's type is known only now: an EXPRESS machine's new definition is
	 * checked again against the EXPRESS rules */
	const char *type = rec_str(meta, "type");
	if (definition && machine_type(type) == SM_EXECUTION_EXPRESS
	    && (rc = check_definition(definition, type, err)))
		goto out;
	const char *cur_def = rec_str(rev, "definition");
	const char *cur_role = rec_str(rev, "roleArn");
	bool changed = (definition && strcmp(definition, cur_def) != 0)
	        || (role_arn && (!cur_role || strcmp(role_arn, cur_role) != 0));
	int64_t now = sl_clock_now_ms();
	const char *revision_id = rec_str(rev, "revisionId");
	char new_id[SL_UUID_STRLEN + 1];
	if (changed) {
		uint32_t revision = rec_u32(meta, "revision") + 1;
		if ((rc = new_revision(txn, name, revision, definition ? definition : cur_def,
		                       role_arn ? role_arn : cur_role, now, new_id)))
			goto out;
		revision_id = new_id;
		if (json_object_set_new(meta, "revision", json_integer(revision))
		    || json_object_set_new(meta, "updated", json_integer(now))) {
			rc = SL_ERR_NOMEM;
			goto out;
		}
		if ((rc = put_record(txn, TAG_META, name, 0, meta)))
			goto out;
	}
	char varn[512] = "";
	int64_t vcreated;
	if (json_is_true(pub)
	    && (rc = publish(txn, meta, name, vdesc, now, varn, sizeof varn, &vcreated)))
		goto out;
	int64_t updated = (int64_t)json_integer_value(json_object_get(meta, "updated"));
	json_t *out = json_pack("{s:o,s:s}", "updateDate", srv_json_time(updated), "revisionId",
	                        revision_id);
	if (out && varn[0])
		json_object_set_new(out, "stateMachineVersionArn", json_string(varn));
	srv_reply_json(req, out);
out:
	json_decref(meta);
	json_decref(rev);
	return rc;
}

/* Deletes every key of tag under name (revisions or versions). */
static sl_err
delete_all(store_txn_t *txn, int tag, const char *name)
{
	struct store_key k;
	key_of(&k, tag, name, 0);
	return store_del_prefix(txn, STORE_DB_MACHINES, k.buf, k.len);
}

static sl_err
op_delete(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *arn;
	sl_err rc = srv_sfn_str_field(body, "stateMachineArn", true, &arn, err);
	if (rc)
		return rc;
	char name[NAME_MAX_LEN + 1];
	uint32_t version;
	rc = parse_machine_arn(arn, name, &version, err);
	if (rc == SL_ERR_SM_NOT_FOUND) {
		/* another region or account: nothing here to delete, which AWS answers with {} */
		srv_reply_json(req, NULL);
		return SL_OK;
	}
	if (rc)
		return rc;
	store_batch_t *b;
	if ((rc = srv_req_batch(req, &b)))
		return rc;
	store_txn_t *txn = store_batch_txn(b);
	struct store_key k;
	if (version) {
		key_of(&k, TAG_VERSION, name, version);
		rc = store_del(txn, STORE_DB_MACHINES, k.buf, k.len);
	} else {
		/* AWS answers success for a machine that is already gone */
		key_of(&k, TAG_META, name, 0);
		if (!(rc = store_del(txn, STORE_DB_MACHINES, k.buf, k.len))
		    && !(rc = delete_all(txn, TAG_REV, name)))
			rc = delete_all(txn, TAG_VERSION, name);
	}
	if (rc)
		return rc;
	srv_reply_json(req, NULL);
	return SL_OK;
}

static sl_err
op_list(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	size_t max;
	const char *token;
	sl_err rc;
	if ((rc = srv_sfn_max_results(body, LIST_DEFAULT, &max, err))
	    || (rc = srv_sfn_str_field(body, "nextToken", false, &token, err)))
		return rc;
	/* the token is the hex of the last name answered: resume after it */
	char after[NAME_MAX_LEN + 1] = "";
	if (token) {
		size_t n = strlen(token);
		if (n % 2 || n / 2 > NAME_MAX_LEN)
			return sl_error_set(err, SL_ERR_INVALID_TOKEN, "Invalid Token: '%s'",
			                    token);
		for (size_t i = 0; i < n / 2; i++) {
			unsigned x;
			if (sscanf(token + 2 * i, "%2x", &x) != 1)
				return sl_error_set(err, SL_ERR_INVALID_TOKEN,
				                    "Invalid Token: '%s'", token);
			after[i] = (char)x;
		}
		after[n / 2] = '\0';
	}
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	json_t *list = json_array(), *out = json_object();
	store_cursor_t *c = NULL;
	struct store_key k;
	key_of(&k, TAG_META, NULL, 0);
	if (!list || !out || (rc = store_cursor_open(txn, STORE_DB_MACHINES, &c))
	    || (rc = store_cursor_seek_prefix(c, k.buf, k.len)))
		goto out;
	struct store_val kv, vv;
	char last[NAME_MAX_LEN + 1] = "";
	bool more = false;
	while ((rc = store_cursor_next(c, &kv, &vv)) == SL_OK) {
		json_t *meta = json_loadb(vv.data, vv.len, 0, NULL);
		const char *nm = rec_str(meta, "name");
		if (!nm || (after[0] && strcmp(nm, after) <= 0)) {
			json_decref(meta);
			continue;
		}
		if (json_array_size(list) == max) {
			json_decref(meta);
			more = true;
			break;
		}
		char arn[512];
		machine_arn(arn, sizeof arn, nm, 0);
		json_array_append_new(list,
		                      json_pack("{s:s,s:s,s:s,s:o}", "stateMachineArn", arn, "name",
		                                nm, "type", rec_str(meta, "type"), "creationDate",
		                                srv_json_time(json_integer_value(
		                                        json_object_get(meta, "created")))));
		snprintf(last, sizeof last, "%s", nm);
		json_decref(meta);
	}
	rc = rc == SL_ERR_NOT_FOUND ? SL_OK : rc;
	if (rc == SL_OK) {
		json_object_set(out, "stateMachines", list);
		if (more) {
			char hex[2 * NAME_MAX_LEN + 1];
			sl_hex(last, strlen(last), hex);
			json_object_set_new(out, "nextToken", json_string(hex));
		}
	}
out:
	store_cursor_close(c);
	store_read_end(txn);
	json_decref(list);
	if (rc) {
		json_decref(out);
		return rc;
	}
	srv_reply_json(req, out);
	return SL_OK;
}

static sl_err
op_publish(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *arn, *revision_id, *desc;
	sl_err rc;
	if ((rc = srv_sfn_str_field(body, "stateMachineArn", true, &arn, err))
	    || (rc = srv_sfn_str_field(body, "revisionId", false, &revision_id, err))
	    || (rc = srv_sfn_str_field(body, "description", false, &desc, err)))
		return rc;
	store_txn_t *txn;
	char name[NAME_MAX_LEN + 1];
	json_t *meta = NULL, *rev = NULL;
	if ((rc = lookup_for_write(req, arn, "publish", &txn, name, &meta, &rev, err)))
		goto out;
	if (revision_id && strcmp(revision_id, rec_str(rev, "revisionId")) != 0) {
		rc = sl_error_set(
		        err, SL_ERR_CONFLICT,
		        "Failed to publish the State Machine version for revision %s. The "
		        "current State Machine revision is %s.",
		        revision_id, rec_str(rev, "revisionId"));
		goto out;
	}
	char varn[512];
	int64_t created;
	if ((rc = publish(txn, meta, name, desc, sl_clock_now_ms(), varn, sizeof varn, &created)))
		goto out;
	srv_reply_json(req,
	               json_pack("{s:o,s:s}", "creationDate", srv_json_time(created),
	                         "stateMachineVersionArn", varn));
out:
	json_decref(meta);
	json_decref(rev);
	return rc;
}

static sl_err
op_list_versions(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *arn, *token;
	size_t max;
	sl_err rc;
	if ((rc = srv_sfn_str_field(body, "stateMachineArn", true, &arn, err))
	    || (rc = srv_sfn_str_field(body, "nextToken", false, &token, err))
	    || (rc = srv_sfn_max_results(body, LIST_DEFAULT, &max, err)))
		return rc;
	unsigned long below = 0;
	if (token) {
		char *end;
		below = strtoul(token, &end, 10);
		if (!*token || *end || below == 0 || below > UINT32_MAX)
			return sl_error_set(err, SL_ERR_INVALID_TOKEN, "Invalid Token: '%s'",
			                    token);
	}
	store_txn_t *txn;
	if ((rc = store_read_begin(srv_store(srv_req_server(req)), &txn)))
		return rc;
	char name[NAME_MAX_LEN + 1];
	uint32_t version;
	json_t *meta = NULL, *rev = NULL, *list = json_array(), *out = NULL;
	if ((rc = lookup(txn, arn, name, &version, &meta, &rev, NULL, err)))
		goto out;
	uint32_t top = rec_u32(meta, "version");
	if (below && below <= top)
		top = (uint32_t)below - 1;
	uint32_t v = top;
	for (; v > 0 && list; v--) {
		json_t *rec = NULL;
		if (get_record(txn, TAG_VERSION, name, v, &rec) != SL_OK)
			continue; /* deleted version */
		if (json_array_size(list) == max) {
			json_decref(rec);
			break;
		}
		char varn[512];
		machine_arn(varn, sizeof varn, name, v);
		json_array_append_new(
		        list,
		        json_pack("{s:s,s:o}", "stateMachineVersionArn", varn, "creationDate",
		                  srv_json_time(
		                          json_integer_value(json_object_get(rec, "created")))));
		json_decref(rec);
	}
	out = json_pack("{s:O}", "stateMachineVersions", list);
	if (out && v > 0) {
		char next[16];
		snprintf(next, sizeof next, "%u", v + 1);
		json_object_set_new(out, "nextToken", json_string(next));
	}
out:
	store_read_end(txn);
	json_decref(meta);
	json_decref(rev);
	json_decref(list);
	if (rc)
		return rc;
	srv_reply_json(req, out);
	return SL_OK;
}

static sl_err
op_validate(srv_req_t *req, json_t *body, void *ctx, struct sl_error *err)
{
	(void)ctx;
	const char *definition, *type;
	size_t max;
	sl_err rc;
	if ((rc = srv_sfn_str_field(body, "definition", true, &definition, err))
	    || (rc = srv_sfn_str_field(body, "type", false, &type, err))
	    || (rc = check_type(type, err))
	    || (rc = srv_sfn_max_results(body, LIST_DEFAULT, &max, err)))
		return rc;
	struct sm_problems problems = { 0 };
	struct sm_machine *m = NULL;
	rc = sm_definition_compile_text_typed(definition, strlen(definition), NULL, SM_FORMAT_AUTO,
	                                      machine_type(type), &m, &problems);
	sm_machine_free(m);
	if (rc == SL_ERR_NOMEM) {
		sm_problems_clear(&problems);
		return rc;
	}
	json_t *diags = json_array();
	for (size_t i = 0; diags && i < problems.count && i < max; i++)
		json_array_append_new(diags,
		                      json_pack("{s:s,s:s,s:s,s:s}", "severity", "ERROR", "code",
		                                "SCHEMA_VALIDATION_FAILED", "message",
		                                problems.items[i].message, "location",
		                                problems.items[i].pointer));
	bool truncated = problems.count > max || problems.dropped > 0;
	sm_problems_clear(&problems);
	srv_reply_json(req,
	               json_pack("{s:s,s:o,s:b}", "result", rc ? "FAIL" : "OK", "diagnostics",
	                         diags, "truncated", truncated));
	return SL_OK;
}

sl_err
srv_api_machines_register(srv_t *s)
{
	static const struct {
		const char *op;
		srv_op_fn fn;
	} ops[] = {
		{ "AWSStepFunctions.CreateStateMachine", op_create },
		{ "AWSStepFunctions.DescribeStateMachine", op_describe },
		{ "AWSStepFunctions.UpdateStateMachine", op_update },
		{ "AWSStepFunctions.DeleteStateMachine", op_delete },
		{ "AWSStepFunctions.ListStateMachines", op_list },
		{ "AWSStepFunctions.PublishStateMachineVersion", op_publish },
		{ "AWSStepFunctions.ListStateMachineVersions", op_list_versions },
		{ "AWSStepFunctions.ValidateStateMachineDefinition", op_validate },
	};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		sl_err rc = srv_register_op(s, ops[i].op, ops[i].fn, NULL);
		if (rc)
			return rc;
	}
	return SL_OK;
}
