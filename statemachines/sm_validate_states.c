/*
 * sm_validate_states.c - type-specific checks for Task, Wait, Fail, Parallel and Map.
 */
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/sm_validate_int.h"

/* ---- Task -------------------------------------------------------------------------------- */

/* Splits a Resource into kind, name, action and integration pattern. */
static sl_err
parse_resource(const char *r, struct sm_task *t)
{
	t->kind = SM_RESOURCE_OTHER;
	t->integration = SM_INTEGRATION_REQUEST_RESPONSE;
	if (!strncmp(r, "activity:", 9) && r[9]) {
		t->kind = SM_RESOURCE_ACTIVITY;
		return (t->name = sl_strdup(r + 9)) ? SL_OK : SL_ERR_NOMEM;
	}
	if (!strncmp(r, "arn:", 4)) {
		/* arn:PARTITION:SERVICE:REGION:ACCOUNT:REST */
		const char *f[6];
		const char *s = r;
		int n = 0;
		f[n++] = s;
		while (n < 6 && (s = strchr(s, ':'))) {
			s++;
			f[n++] = s;
		}
		if (n < 6)
			return SL_OK;
		size_t svc_len = (size_t)(f[3] - f[2] - 1);
		const char *rest = f[5];
		if (svc_len == 6 && !strncmp(f[2], "states", 6)) {
			if (!strncmp(rest, "activity:", 9) && rest[9]) {
				t->kind = SM_RESOURCE_ACTIVITY;
				return (t->name = sl_strdup(rest + 9)) ? SL_OK : SL_ERR_NOMEM;
			}
			/* service integration: SERVICE:ACTION or aws-sdk:SERVICE:ACTION, then
			 * the integration pattern as a suffix */
			size_t len = strlen(rest);
			static const struct {
				const char *suffix;
				enum sm_integration pattern;
			} pats[] = { { ".sync:2", SM_INTEGRATION_SYNC2 },
				     { ".sync", SM_INTEGRATION_SYNC },
				     { ".waitForTaskToken", SM_INTEGRATION_WAIT_FOR_TASK_TOKEN } };
			enum sm_integration pattern = SM_INTEGRATION_REQUEST_RESPONSE;
			for (size_t i = 0; i < sizeof pats / sizeof *pats; i++) {
				size_t sl = strlen(pats[i].suffix);
				if (len > sl && !strcmp(rest + len - sl, pats[i].suffix)) {
					pattern = pats[i].pattern;
					len -= sl;
					break;
				}
			}
			const char *act = NULL;
			for (const char *c = rest; c < rest + len; c++)
				if (*c == ':')
					act = c;
			if (!act || act == rest || act + 1 == rest + len)
				return SL_OK;
			t->kind = SM_RESOURCE_SERVICE;
			t->integration = pattern;
			if (!(t->name = sl_strndup(rest, (size_t)(act - rest))))
				return SL_ERR_NOMEM;
			return (t->action = sl_strndup(act + 1, (size_t)(rest + len - act - 1)))
			        ? SL_OK
			        : SL_ERR_NOMEM;
		}
		if (svc_len == 6 && !strncmp(f[2], "lambda", 6) && !strncmp(rest, "function:", 9)
		    && rest[9]) {
			t->kind = SM_RESOURCE_LAMBDA;
			const char *name = rest + 9;
			const char *q = strchr(name, ':');
			t->name = q ? sl_strndup(name, (size_t)(q - name)) : sl_strdup(name);
			return t->name ? SL_OK : SL_ERR_NOMEM;
		}
	}
	return SL_OK;
}

/* EXPRESS executions cannot wait for a job, a callback or an activity worker: AWS refuses
 * such a Resource at CreateStateMachine/UpdateStateMachine with these words. */
static void
express_resource(struct vctx *v, const char *rp, const struct sm_task *t)
{
	if (t->kind == SM_RESOURCE_ACTIVITY)
		v_report(v, rp, SM_SCHEMA "Express state machine does not support Activity ARN");
	else if (t->kind == SM_RESOURCE_SERVICE
	         && t->integration == SM_INTEGRATION_WAIT_FOR_TASK_TOKEN)
		v_report(v, rp,
		         SM_SCHEMA "Express state machine does not support '.waitForTaskToken' "
		                   "service integration");
	else if (t->kind == SM_RESOURCE_SERVICE
	         && t->integration != SM_INTEGRATION_REQUEST_RESPONSE)
		v_report(v, rp,
		         SM_SCHEMA "Express state machine does not support '.sync' service "
		                   "integration");
}

static const char *const credentials_fields[] = { "RoleArn", "RoleArn.$", NULL };

void
v_state_task(struct vctx *v, json_t *s, const char *p, struct sm_state *st)
{
	struct sm_task *t = &st->u.task;
	t->timeout_seconds = SM_TASK_DEFAULT_TIMEOUT_SECONDS;
	json_t *res = v_require(v, s, p, "Resource");
	if (res) {
		char *rp = v_ptr(v, p, "Resource");
		if (rp && (!json_is_string(res) || json_string_length(res) == 0))
			v_report(v, rp,
			         SM_SCHEMA "The value for the field 'Resource' must be a non-empty "
			                   "STRING");
		else if (rp
		         && (!(t->resource = sl_strdup(json_string_value(res)))
		             || parse_resource(t->resource, t) != SL_OK))
			v_nomem(v);
		else if (rp && v->express)
			express_resource(v, rp, t);
		sl_free(rp);
	}
	bool has_to = false, has_top = false, has_hb = false, has_hbp = false;
	v_int(v, s, p, "TimeoutSeconds", 1, 99999999, &t->timeout_seconds, &has_to);
	v_path(v, s, p, "TimeoutSecondsPath", SM_PATH_REFERENCE, &t->timeout_seconds_path,
	       &has_top);
	v_int(v, s, p, "HeartbeatSeconds", 1, 99999999, &t->heartbeat_seconds, &has_hb);
	v_path(v, s, p, "HeartbeatSecondsPath", SM_PATH_REFERENCE, &t->heartbeat_seconds_path,
	       &has_hbp);
	if (has_to && has_top)
		v_report(v, p,
		         SM_SCHEMA "Only one of 'TimeoutSeconds' and 'TimeoutSecondsPath' may be "
		                   "set");
	if (has_hb && has_hbp)
		v_report(v, p,
		         SM_SCHEMA "Only one of 'HeartbeatSeconds' and 'HeartbeatSecondsPath' may "
		                   "be set");
	if (has_hb && t->heartbeat_seconds && !has_top
	    && t->heartbeat_seconds >= t->timeout_seconds)
		v_report_field(v, p, "HeartbeatSeconds",
		               SM_SCHEMA "HeartbeatSeconds must be smaller than TimeoutSeconds");
	json_t *cred = json_object_get(s, "Credentials");
	if (cred) {
		char *cp = v_ptr(v, p, "Credentials");
		if (cp && !json_is_object(cred))
			v_report(v, cp,
			         SM_SCHEMA
			         "The value for the field 'Credentials' must be an OBJECT");
		else if (cp)
			v_check_fields(v, cred, cp, credentials_fields);
		sl_free(cp);
	}
}

/* ---- Wait -------------------------------------------------------------------------------- */

void
v_state_wait(struct vctx *v, json_t *s, const char *p, struct sm_state *st)
{
	struct sm_wait *w = &st->u.wait;
	int count = 0;
	bool present;
	v_int(v, s, p, "Seconds", 0, 99999999, &w->seconds, &w->has_seconds);
	count += w->has_seconds;
	v_path(v, s, p, "SecondsPath", SM_PATH_REFERENCE, &w->seconds_path, &present);
	count += present;
	v_path(v, s, p, "TimestampPath", SM_PATH_REFERENCE, &w->timestamp_path, &present);
	count += present;
	const char *ts = NULL;
	if (v_string(v, s, p, "Timestamp", &ts, &present) && present) {
		if (!sm_time_parse(ts, &w->timestamp)) {
			char *tp = v_ptr(v, p, "Timestamp");
			if (tp)
				v_report(v, tp,
				         SM_SCHEMA "String does not match RFC3339 timestamp");
			sl_free(tp);
		} else if (!(w->timestamp_text = sl_strdup(ts))) {
			v_nomem(v);
		} else {
			w->has_timestamp = true;
		}
	}
	count += present;
	if (count != 1)
		v_report(v, p,
		         SM_SCHEMA
		         "A Wait state must have exactly one of 'Seconds', 'SecondsPath', "
		         "'Timestamp' or 'TimestampPath'");
}

/* ---- Fail -------------------------------------------------------------------------------- */

void
v_state_fail(struct vctx *v, json_t *s, const char *p, struct sm_state *st)
{
	struct sm_fail *f = &st->u.fail;
	bool has_e = false, has_ep = false, has_c = false, has_cp = false;
	v_strdup_field(v, s, p, "Error", &f->error);
	has_e = json_object_get(s, "Error") != NULL;
	v_expr(v, s, p, "ErrorPath", &f->error_path, &has_ep);
	v_strdup_field(v, s, p, "Cause", &f->cause);
	has_c = json_object_get(s, "Cause") != NULL;
	v_expr(v, s, p, "CausePath", &f->cause_path, &has_cp);
	if (has_e && has_ep)
		v_report(v, p, SM_SCHEMA "Only one of 'Error' and 'ErrorPath' may be set");
	if (has_c && has_cp)
		v_report(v, p, SM_SCHEMA "Only one of 'Cause' and 'CausePath' may be set");
}

/* ---- Parallel ---------------------------------------------------------------------------- */

void
v_state_parallel(struct vctx *v, json_t *s, const char *p, struct sm_state *st)
{
	json_t *br = v_require(v, s, p, "Branches");
	if (!br)
		return;
	char *bp = v_ptr(v, p, "Branches");
	if (!bp)
		return;
	if (!json_is_array(br) || json_array_size(br) == 0) {
		v_report(v, bp,
		         SM_SCHEMA "The value for the field 'Branches' must be a non-empty ARRAY");
		sl_free(bp);
		return;
	}
	size_t n = json_array_size(br);
	st->u.parallel.branches = sl_calloc(n, sizeof *st->u.parallel.branches);
	if (!st->u.parallel.branches) {
		v_nomem(v);
		sl_free(bp);
		return;
	}
	for (size_t i = 0; i < n && v->fatal == SL_OK; i++) {
		char *ip = v_ptr_index(v, bp, i);
		if (!ip)
			break;
		st->u.parallel.branches[st->u.parallel.n_branches++]
		        = v_machine(v, json_array_get(br, i), ip, false, NULL);
		sl_free(ip);
	}
	sl_free(bp);
}

/* ---- Map --------------------------------------------------------------------------------- */

static bool
one_of(struct vctx *v, json_t *obj, const char *p, const char *field, const char *const *values,
       const char *choices, int *out)
{
	const char *s = NULL;
	bool present = false;
	if (!v_string(v, obj, p, field, &s, &present) || !present)
		return false;
	for (int i = 0; values[i]; i++)
		if (!strcmp(values[i], s)) {
			*out = i;
			return true;
		}
	char *fp = v_ptr(v, p, field);
	if (fp)
		v_report(v, fp, SM_SCHEMA "The value for the field '%s' must be one of [%s]", field,
		         choices);
	sl_free(fp);
	return false;
}

static const char *const processor_extra[] = { "ProcessorConfig", NULL };
static const char *const processor_config_fields[] = { "Mode", "ExecutionType", NULL };
static const char *const reader_fields[] = { "Resource", "Parameters", "ReaderConfig", NULL };
static const char *const reader_config_fields[]
        = { "InputType", "CSVHeaderLocation", "CSVHeaders",   "CSVDelimiter",
	    "MaxItems",  "MaxItemsPath",      "ManifestType", NULL };
static const char *const batcher_fields[]
        = { "MaxItemsPerBatch",          "MaxItemsPerBatchPath", "MaxInputBytesPerBatch",
	    "MaxInputBytesPerBatchPath", "BatchInput",           NULL };
static const char *const writer_fields[] = { "Resource", "Parameters", "WriterConfig", NULL };

static void
item_reader(struct vctx *v, json_t *r, const char *p, struct sm_map *m)
{
	if (!json_is_object(r)) {
		v_report(v, p, SM_SCHEMA "The value for the field 'ItemReader' must be an OBJECT");
		return;
	}
	v_check_fields(v, r, p, reader_fields);
	json_t *res = v_require(v, r, p, "Resource");
	if (res && !json_is_string(res)) {
		char *rp = v_ptr(v, p, "Resource");
		if (rp)
			v_report(v, rp,
			         SM_SCHEMA "The value for the field 'Resource' must be a STRING");
		sl_free(rp);
	}
	struct sm_template *params = NULL;
	v_template(v, r, p, "Parameters", &params);
	sm_template_free(params); /* checked here; the stepper compiles readers when it runs them */
	json_t *cfg = json_object_get(r, "ReaderConfig");
	if (cfg) {
		char *cp = v_ptr(v, p, "ReaderConfig");
		if (!cp)
			return;
		if (!json_is_object(cfg)) {
			v_report(v, cp,
			         SM_SCHEMA
			         "The value for the field 'ReaderConfig' must be an OBJECT");
		} else {
			v_check_fields(v, cfg, cp, reader_config_fields);
			static const char *const types[]
			        = { "CSV", "JSON", "JSONL", "MANIFEST", "PARQUET", NULL };
			static const char *const hdr[] = { "FIRST_ROW", "GIVEN", NULL };
			static const char *const delim[]
			        = { "COMMA", "PIPE", "SEMICOLON", "SPACE", "TAB", NULL };
			int it = -1, hl = -1, dl = -1;
			one_of(v, cfg, cp, "InputType", types,
			       "CSV, JSON, JSONL, MANIFEST, PARQUET", &it);
			one_of(v, cfg, cp, "CSVHeaderLocation", hdr, "FIRST_ROW, GIVEN", &hl);
			one_of(v, cfg, cp, "CSVDelimiter", delim,
			       "COMMA, PIPE, SEMICOLON, SPACE, TAB", &dl);
			json_t *headers = json_object_get(cfg, "CSVHeaders");
			if (hl == 1 && !headers)
				v_report(v, cp,
				         SM_SCHEMA
				         "CSVHeaders must be set when CSVHeaderLocation is "
				         "GIVEN");
			if (headers && !json_is_array(headers)) {
				char *hp = v_ptr(v, cp, "CSVHeaders");
				if (hp)
					v_report(v, hp,
					         SM_SCHEMA
					         "The value for the field 'CSVHeaders' must "
					         "be an ARRAY of strings");
				sl_free(hp);
			}
			int64_t mi;
			bool has_mi = false, has_mip = false;
			v_int(v, cfg, cp, "MaxItems", 0, 100000000, &mi, &has_mi);
			struct sm_path *mip = NULL;
			v_path(v, cfg, cp, "MaxItemsPath", SM_PATH_REFERENCE, &mip, &has_mip);
			sm_path_free(mip);
			if (has_mi && has_mip)
				v_report(v, cp,
				         SM_SCHEMA
				         "Only one of 'MaxItems' and 'MaxItemsPath' may be "
				         "set");
		}
		sl_free(cp);
	}
	if (!(m->item_reader = json_deep_copy(r)))
		v_nomem(v);
}

static void
item_batcher(struct vctx *v, json_t *b, const char *p, struct sm_map *m)
{
	if (!json_is_object(b)) {
		v_report(v, p, SM_SCHEMA "The value for the field 'ItemBatcher' must be an OBJECT");
		return;
	}
	v_check_fields(v, b, p, batcher_fields);
	int64_t x;
	bool a = false, ap = false, c = false, cpr = false;
	v_int(v, b, p, "MaxItemsPerBatch", 1, 100000000, &x, &a);
	v_int(v, b, p, "MaxInputBytesPerBatch", 1, 262144, &x, &c);
	struct sm_path *tmp = NULL;
	v_path(v, b, p, "MaxItemsPerBatchPath", SM_PATH_REFERENCE, &tmp, &ap);
	sm_path_free(tmp);
	tmp = NULL;
	v_path(v, b, p, "MaxInputBytesPerBatchPath", SM_PATH_REFERENCE, &tmp, &cpr);
	sm_path_free(tmp);
	if (a && ap)
		v_report(v, p,
		         SM_SCHEMA "Only one of 'MaxItemsPerBatch' and 'MaxItemsPerBatchPath' may "
		                   "be set");
	if (c && cpr)
		v_report(v, p,
		         SM_SCHEMA "Only one of 'MaxInputBytesPerBatch' and "
		                   "'MaxInputBytesPerBatchPath' may be set");
	if (!a && !ap && !c && !cpr)
		v_report(v, p,
		         SM_SCHEMA "An ItemBatcher must set at least one of MaxItemsPerBatch(Path) "
		                   "or MaxInputBytesPerBatch(Path)");
	json_t *bi = json_object_get(b, "BatchInput");
	if (bi && !json_is_object(bi)) {
		char *bp = v_ptr(v, p, "BatchInput");
		if (bp)
			v_report(v, bp,
			         SM_SCHEMA
			         "The value for the field 'BatchInput' must be an OBJECT");
		sl_free(bp);
	}
	if (!(m->item_batcher = json_deep_copy(b)))
		v_nomem(v);
}

static void
result_writer(struct vctx *v, json_t *w, const char *p, struct sm_map *m)
{
	if (!json_is_object(w)) {
		v_report(v, p,
		         SM_SCHEMA "The value for the field 'ResultWriter' must be an OBJECT");
		return;
	}
	v_check_fields(v, w, p, writer_fields);
	struct sm_template *params = NULL;
	v_template(v, w, p, "Parameters", &params);
	sm_template_free(params);
	if (!(m->result_writer = json_deep_copy(w)))
		v_nomem(v);
}

static void
processor(struct vctx *v, json_t *s, const char *p, struct sm_map *m)
{
	json_t *ip = json_object_get(s, "ItemProcessor");
	json_t *it = json_object_get(s, "Iterator");
	const char *field = ip ? "ItemProcessor" : "Iterator";
	if (ip && it) {
		v_report(v, p, SM_SCHEMA "Only one of 'ItemProcessor' and 'Iterator' may be set");
		return;
	}
	if (!ip && !it) {
		v_report(v, p, SM_SCHEMA "These fields are required: [ItemProcessor]");
		return;
	}
	json_t *def = ip ? ip : it;
	char *pp = v_ptr(v, p, field);
	if (!pp)
		return;
	json_t *cfg = json_is_object(def) ? json_object_get(def, "ProcessorConfig") : NULL;
	if (cfg) {
		char *cp = v_ptr(v, pp, "ProcessorConfig");
		if (cp && !json_is_object(cfg)) {
			v_report(v, cp,
			         SM_SCHEMA "The value for the field 'ProcessorConfig' must be an "
			                   "OBJECT");
		} else if (cp) {
			v_check_fields(v, cfg, cp, processor_config_fields);
			static const char *const modes[] = { "INLINE", "DISTRIBUTED", NULL };
			static const char *const types[] = { "STANDARD", "EXPRESS", NULL };
			int mode = 0, et = 0;
			if (one_of(v, cfg, cp, "Mode", modes, "INLINE, DISTRIBUTED", &mode))
				m->mode = (enum sm_map_mode)mode;
			if (one_of(v, cfg, cp, "ExecutionType", types, "STANDARD, EXPRESS", &et))
				m->execution_type = (enum sm_execution_type)et;
			if (m->mode == SM_MAP_DISTRIBUTED && !json_object_get(cfg, "ExecutionType"))
				v_report(v, cp,
				         SM_SCHEMA "These fields are required: [ExecutionType]");
			if (m->mode == SM_MAP_INLINE && json_object_get(cfg, "ExecutionType"))
				v_report_field(v, cp, "ExecutionType",
				               SM_SCHEMA
				               "Field 'ExecutionType' is only supported in "
				               "DISTRIBUTED mode");
		}
		sl_free(cp);
	}
	/* A DISTRIBUTED processor with ExecutionType EXPRESS runs its items as EXPRESS
	 * executions, so the EXPRESS rules hold inside it. */
	bool saved_express = v->express;
	if (m->mode == SM_MAP_DISTRIBUTED && m->execution_type == SM_EXECUTION_EXPRESS)
		v->express = true;
	m->processor = v_machine(v, def, pp, false, processor_extra);
	v->express = saved_express;
	sl_free(pp);
}

void
v_state_map(struct vctx *v, json_t *s, const char *p, struct sm_state *st)
{
	struct sm_map *m = &st->u.map;
	processor(v, s, p, m);
	v_path(v, s, p, "ItemsPath", SM_PATH_REFERENCE, &m->items_path, NULL);
	bool has_sel = json_object_get(s, "ItemSelector") != NULL;
	bool has_par = json_object_get(s, "Parameters") != NULL;
	if (has_sel && has_par)
		v_report(v, p, SM_SCHEMA "Only one of 'ItemSelector' and 'Parameters' may be set");
	else
		v_template(v, s, p, has_sel ? "ItemSelector" : "Parameters", &m->item_selector);

	bool a = false, b = false;
	v_int(v, s, p, "MaxConcurrency", 0, 99999999, &m->max_concurrency, &a);
	v_path(v, s, p, "MaxConcurrencyPath", SM_PATH_REFERENCE, &m->max_concurrency_path, &b);
	if (a && b)
		v_report(v, p,
		         SM_SCHEMA "Only one of 'MaxConcurrency' and 'MaxConcurrencyPath' may be "
		                   "set");
	a = b = false;
	v_int(v, s, p, "ToleratedFailureCount", 0, 99999999, &m->tolerated_failure_count,
	      &m->has_tolerated_failure_count);
	v_path(v, s, p, "ToleratedFailureCountPath", SM_PATH_REFERENCE,
	       &m->tolerated_failure_count_path, &b);
	if (m->has_tolerated_failure_count && b)
		v_report(v, p,
		         SM_SCHEMA "Only one of 'ToleratedFailureCount' and "
		                   "'ToleratedFailureCountPath' may be set");
	b = false;
	v_number(v, s, p, "ToleratedFailurePercentage", 0, 100, &m->tolerated_failure_percentage,
	         &m->has_tolerated_failure_percentage);
	v_path(v, s, p, "ToleratedFailurePercentagePath", SM_PATH_REFERENCE,
	       &m->tolerated_failure_percentage_path, &b);
	if (m->has_tolerated_failure_percentage && b)
		v_report(v, p,
		         SM_SCHEMA "Only one of 'ToleratedFailurePercentage' and "
		                   "'ToleratedFailurePercentagePath' may be set");
	v_strdup_field(v, s, p, "Label", &m->label);
	if (m->label && (strlen(m->label) == 0 || strlen(m->label) > 40))
		v_report_field(v, p, "Label",
		               SM_SCHEMA
		               "The value for the field 'Label' must be 1 to 40 characters");

	static const struct {
		const char *field;
		void (*check)(struct vctx *, json_t *, const char *, struct sm_map *);
	} parts[] = { { "ItemReader", item_reader },
		      { "ItemBatcher", item_batcher },
		      { "ResultWriter", result_writer } };
	for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
		json_t *x = json_object_get(s, parts[i].field);
		if (!x)
			continue;
		char *xp = v_ptr(v, p, parts[i].field);
		if (!xp)
			return;
		parts[i].check(v, x, xp, m);
		sl_free(xp);
	}
}
