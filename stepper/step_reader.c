/*
 * step_reader.c - Map's ItemReader over local files and ItemBatcher.
 *
 * There is no S3 here: "arn:aws:states:::s3:getObject" reads the file ROOT/Bucket/Key and
 * "arn:aws:states:::s3:listObjectsV2" lists the regular files under ROOT/Bucket (keys
 * starting with Prefix), where ROOT is step_options.item_reader_root. Without a root the
 * reader is off. Bucket is one path segment, Key a relative path without ".." segments, and
 * the real path of what is read must stay under the real root (symbolic links cannot lead
 * out of it), so a workflow cannot read arbitrary files.
 *
 * The items are read when the Map starts, one at a time from the file in memory (bounded by
 * item_reader_max_bytes), each passed through ItemSelector into the open batch when there is
 * an ItemBatcher, and written as one record per item (or batch) under the Map frame's key
 * in the same store batch; iterations fetch their own record as they are created, also
 * after a restart, so only the items in flight are ever held.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/sl_alloc.h"
#include "stepper/step_int.h"

#define READER_DEFAULT_MAX_BYTES (64u * 1024 * 1024)
#define READER_MAX_ITEMS         100000000
#define LIST_MAX_DEPTH           32
#define LIST_MAX_OBJECTS         1000000

static size_t
max_bytes(const struct step_ctx *c)
{
	return c->eng->opt.item_reader_max_bytes ? c->eng->opt.item_reader_max_bytes
	                                         : READER_DEFAULT_MAX_BYTES;
}

/* ---- locating the file ------------------------------------------------------------------ */

static bool
bad_segment(const char *s, size_t n)
{
	return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

/* Key: relative, no "." or ".." segment, no empty segment. */
static bool
key_ok(const char *k, bool allow_empty)
{
	if (!*k)
		return allow_empty;
	if (k[0] == '/')
		return false;
	const char *p = k;
	for (;;) {
		const char *sl = strchr(p, '/');
		size_t n = sl ? (size_t)(sl - p) : strlen(p);
		if (bad_segment(p, n) || (n == 0 && sl))
			return false;
		if (!sl)
			return true;
		p = sl + 1;
	}
}

/* The real path of ROOT/bucket[/key], checked to lie inside the real root. NULL with ft set
 * (States.ItemReaderFailed) otherwise. */
static char *
local_path(struct step_ctx *c, struct step_frame *f, const char *bucket, const char *key,
           struct step_fault *ft)
{
	const char *root = c->eng->opt.item_reader_root;
	ft->has_error = false; // NULL with no error: out of memory
	if (!root || !*root) {
		step_fault_runtime(ft, f, "States.ItemReaderFailed",
		                   "ItemReader reads local files only under a root directory, and "
		                   "none is set (sluice serve/run --item-reader-root DIR)");
		return NULL;
	}
	if (!bucket || !*bucket || strchr(bucket, '/') || bad_segment(bucket, strlen(bucket))) {
		step_fault_runtime(ft, f, "States.ItemReaderFailed",
		                   "ItemReader Parameters.Bucket must be one directory name under "
		                   "the item reader root, not '%s'",
		                   bucket ? bucket : "(missing)");
		return NULL;
	}
	if (key && !key_ok(key, false)) {
		step_fault_runtime(ft, f, "States.ItemReaderFailed",
		                   "ItemReader Parameters.Key '%s' must be a relative path without "
		                   "'.' or '..' segments",
		                   key);
		return NULL;
	}
	char rroot[PATH_MAX], rpath[PATH_MAX];
	if (!realpath(root, rroot)) {
		step_fault_runtime(ft, f, "States.ItemReaderFailed",
		                   "the item reader root '%s' cannot be opened: %s", root,
		                   strerror(errno));
		return NULL;
	}
	char *want = key ? sl_asprintf("%s/%s/%s", rroot, bucket, key)
	                 : sl_asprintf("%s/%s", rroot, bucket);
	if (!want)
		return NULL;
	if (!realpath(want, rpath)) {
		step_fault_runtime(ft, f, "States.ItemReaderFailed", "cannot open s3://%s/%s: %s",
		                   bucket, key ? key : "", strerror(errno));
		sl_free(want);
		return NULL;
	}
	sl_free(want);
	size_t rl = strlen(rroot);
	if (strncmp(rpath, rroot, rl) != 0 || (rpath[rl] != '/' && rroot[rl - 1] != '/')) {
		step_fault_runtime(ft, f, "States.ItemReaderFailed",
		                   "s3://%s/%s leads outside the item reader root", bucket,
		                   key ? key : "");
		return NULL;
	}
	return sl_strdup(rpath);
}

static sl_err
read_file(struct step_ctx *c, struct step_frame *f, const char *path, const char *shown, char **buf,
          size_t *len, struct step_fault *ft)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		step_fault_runtime(ft, f, "States.ItemReaderFailed", "cannot open %s: %s", shown,
		                   strerror(errno));
		return SL_ERR_INVALID_ARG;
	}
	struct stat sb;
	if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
		fclose(fp);
		step_fault_runtime(ft, f, "States.ItemReaderFailed", "%s is not a regular file",
		                   shown);
		return SL_ERR_INVALID_ARG;
	}
	size_t cap = max_bytes(c);
	if ((uint64_t)sb.st_size > cap) {
		fclose(fp);
		step_fault_runtime(ft, f, "States.ItemReaderFailed",
		                   "%s is %lld bytes, over the item reader's limit of %zu bytes",
		                   shown, (long long)sb.st_size, cap);
		return SL_ERR_INVALID_ARG;
	}
	char *b = sl_malloc((size_t)sb.st_size + 1);
	if (!b) {
		fclose(fp);
		return SL_ERR_NOMEM;
	}
	size_t n = fread(b, 1, (size_t)sb.st_size, fp);
	bool bad = ferror(fp);
	fclose(fp);
	if (bad) {
		sl_free(b);
		step_fault_runtime(ft, f, "States.ItemReaderFailed", "cannot read %s", shown);
		return SL_ERR_INVALID_ARG;
	}
	b[n] = 0;
	*buf = b;
	*len = n;
	return SL_OK;
}

/* ---- the sink: item records, batches ------------------------------------------------------ */

/* Where parsed items go, one at a time: straight to their records, or through ItemSelector
 * into the current batch (written when it closes). Only one batch is in memory. */
struct sink {
	struct step_ctx *c;
	struct step_frame *f;
	struct step_fault *ft;
	size_t max;     /* MaxItems */
	size_t n_in;    /* items read */
	uint32_t n_out; /* records written */
	bool batching;
	const struct sm_template *selector; /* batching only: applied before */
	json_t *cx;                         /* context for the selector */
	int64_t per_batch, max_batch_bytes;
	json_t *base, *cur; /* BatchInput; the open batch */
	size_t base_size, cur_size;
};

static void
items_prefix(struct store_key *k, const char *arn, uint32_t id)
{
	step_key_frame(k, arn, id);
	store_key_raw(k, "I", 1);
}

static size_t
json_size(json_t *v)
{
	return json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
}

static sl_err
put_record(struct sink *s, json_t *v)
{
	if (s->n_out == UINT32_MAX) {
		step_fault_runtime(s->ft, s->f, "States.ItemReaderFailed", "too many items");
		return SL_ERR_INVALID_ARG;
	}
	struct store_key k;
	items_prefix(&k, s->c->arn, s->f->id);
	store_key_u32(&k, s->n_out);
	sl_err e = step_put_json(s->c->txn, STORE_DB_FRAMES, &k, 'M', v);
	if (e == SL_OK)
		s->n_out++;
	return e;
}

static sl_err
flush_batch(struct sink *s)
{
	if (!s->cur)
		return SL_OK;
	sl_err e = put_record(s, s->cur);
	json_decref(s->cur);
	s->cur = NULL;
	return e;
}

static sl_err
new_batch(struct sink *s)
{
	json_t *b = s->base ? json_deep_copy(s->base) : json_object();
	json_t *a = json_array();
	if (!b || !a || json_object_set_new(b, "Items", a)) {
		json_decref(b);
		return SL_ERR_NOMEM;
	}
	s->cur = b;
	return SL_OK;
}

/* One item (borrowed). */
static sl_err
sink_item(struct sink *s, json_t *v)
{
	size_t i = s->n_in++;
	if (step_payload_too_large(s->c, v)) {
		step_fault_runtime(s->ft, s->f, "States.DataLimitExceeded",
		                   "item %zu is larger than the payload limit of %zu bytes", i,
		                   s->c->eng->opt.payload_limit);
		return SL_ERR_INVALID_ARG;
	}
	if (!s->batching)
		return put_record(s, v);
	json_t *sel = NULL;
	sl_err e = SL_OK;
	if (s->selector) {
		// ItemSelector runs on each item before batching ($$.Map.Item: the item)
		json_t *mi
		        = json_pack("{s:{s:I, s:O}}", "Item", "Index", (json_int_t)i, "Value", v);
		if (!mi || json_object_set_new(s->cx, "Map", mi))
			return SL_ERR_NOMEM;
		if ((e = step_io_template(s->c, s->f, s->selector, s->f->eff, s->cx, &sel, s->ft))
		    != SL_OK)
			return e;
		v = sel;
	}
	size_t vs = json_size(v);
	size_t n = s->cur ? json_array_size(json_object_get(s->cur, "Items")) : 0;
	if (s->base_size + vs > (size_t)s->max_batch_bytes) {
		step_fault_runtime(s->ft, s->f, "States.ItemReaderFailed",
		                   "item %zu alone makes a batch of %zu bytes, over the "
		                   "MaxInputBytesPerBatch of %lld bytes",
		                   i, s->base_size + vs, (long long)s->max_batch_bytes);
		e = SL_ERR_INVALID_ARG;
	} else if (n > 0
	           && ((int64_t)n >= s->per_batch
	               || s->cur_size + 1 + vs > (size_t)s->max_batch_bytes)) {
		// the item would break a limit (a comma per item): it opens the next batch
		e = flush_batch(s);
		n = 0;
	}
	if (e == SL_OK && !s->cur)
		e = new_batch(s);
	if (e == SL_OK) {
		s->cur_size = n == 0 ? s->base_size + vs : s->cur_size + 1 + vs;
		if (json_array_append(json_object_get(s->cur, "Items"), v))
			e = SL_ERR_NOMEM;
	}
	json_decref(sel);
	return e;
}

static bool
sink_full(const struct sink *s)
{
	return s->n_in >= s->max;
}

/* ---- parsers ------------------------------------------------------------------------------ */

static bool
is_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* A JSON array, one element at a time (jansson stops after each value). */
static sl_err
parse_json(struct sink *s, const char *shown, const char *b, size_t len)
{
	size_t p = 0;
	while (p < len && is_ws(b[p]))
		p++;
	if (p >= len || b[p] != '[') {
		step_fault_runtime(s->ft, s->f, "States.ItemReaderFailed",
		                   "%s must hold a JSON array (InputType JSON)", shown);
		return SL_ERR_INVALID_ARG;
	}
	p++;
	bool first = true;
	while (!sink_full(s)) {
		while (p < len && is_ws(b[p]))
			p++;
		if (p < len && b[p] == ']' && first)
			break;
		json_error_t je;
		json_t *v
		        = json_loadb(b + p, len - p, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &je);
		if (!v) {
			step_fault_runtime(s->ft, s->f, "States.ItemReaderFailed",
			                   "%s is not valid JSON: %s near byte %zu", shown, je.text,
			                   p + (size_t)je.position);
			return SL_ERR_INVALID_ARG;
		}
		p += (size_t)je.position;
		sl_err e = sink_item(s, v);
		json_decref(v);
		if (e != SL_OK)
			return e;
		first = false;
		while (p < len && is_ws(b[p]))
			p++;
		if (p < len && b[p] == ',') {
			p++;
			continue;
		}
		if (p < len && b[p] == ']')
			break;
		step_fault_runtime(s->ft, s->f, "States.ItemReaderFailed",
		                   "%s is not valid JSON: ',' or ']' expected near byte %zu", shown,
		                   p);
		return SL_ERR_INVALID_ARG;
	}
	return SL_OK;
}

static sl_err
parse_jsonl(struct sink *s, const char *shown, const char *b, size_t len)
{
	size_t line = 0;
	const char *p = b, *end = b + len;
	while (p < end && !sink_full(s)) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		line++;
		const char *q = p;
		while (q < le && is_ws(*q))
			q++;
		if (q < le) { // blank lines carry no item
			json_error_t je;
			json_t *v = json_loadb(p, (size_t)(le - p), JSON_DECODE_ANY, &je);
			if (!v) {
				step_fault_runtime(s->ft, s->f, "States.ItemReaderFailed",
				                   "%s line %zu is not valid JSON: %s", shown, line,
				                   je.text);
				return SL_ERR_INVALID_ARG;
			}
			sl_err e = sink_item(s, v);
			json_decref(v);
			if (e != SL_OK)
				return e;
		}
		p = nl ? nl + 1 : end;
	}
	return SL_OK;
}

/* One CSV record (RFC 4180: quoted fields may hold the delimiter, "" and line breaks) from
 * *pp; fields is filled with strings. *line counts physical lines for messages. */
static sl_err
csv_record(const char **pp, const char *end, char delim, json_t *fields, size_t *line,
           bool *bad_quote)
{
	const char *p = *pp;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	sl_err e = SL_OK;
	for (;;) {
		n = 0;
		bool quoted = p < end && *p == '"';
		if (quoted) {
			p++;
			for (;;) {
				if (p >= end) {
					*bad_quote = true;
					goto out;
				}
				if (*p == '"') {
					if (p + 1 < end && p[1] == '"') {
						p++;
					} else {
						p++;
						break;
					}
				} else if (*p == '\n') {
					(*line)++;
				}
				if (n + 1 >= cap) {
					cap = cap ? cap * 2 : 64;
					char *nb = sl_realloc(buf, cap);
					if (!nb) {
						e = SL_ERR_NOMEM;
						goto out;
					}
					buf = nb;
				}
				buf[n++] = *p++;
			}
			if (p < end && *p != delim && *p != '\n' && *p != '\r') {
				*bad_quote = true;
				goto out;
			}
		} else {
			while (p < end && *p != delim && *p != '\n' && *p != '\r') {
				if (n + 1 >= cap) {
					cap = cap ? cap * 2 : 64;
					char *nb = sl_realloc(buf, cap);
					if (!nb) {
						e = SL_ERR_NOMEM;
						goto out;
					}
					buf = nb;
				}
				buf[n++] = *p++;
			}
		}
		if (json_array_append_new(fields, json_stringn(buf ? buf : "", n))) {
			e = SL_ERR_NOMEM;
			goto out;
		}
		if (p < end && *p == delim) {
			p++;
			continue;
		}
		if (p < end && *p == '\r')
			p++;
		if (p < end && *p == '\n')
			p++;
		break;
	}
out:
	sl_free(buf);
	*pp = p;
	return e;
}

static sl_err
parse_csv(struct sink *s, const char *shown, json_t *cfg, const char *b, size_t len)
{
	struct step_frame *f = s->f;
	struct step_fault *ft = s->ft;
	const char *dl = step_jstr(cfg, "CSVDelimiter");
	char delim = ',';
	if (dl && strcmp(dl, "PIPE") == 0)
		delim = '|';
	else if (dl && strcmp(dl, "SEMICOLON") == 0)
		delim = ';';
	else if (dl && strcmp(dl, "SPACE") == 0)
		delim = ' ';
	else if (dl && strcmp(dl, "TAB") == 0)
		delim = '\t';
	const char *hl = step_jstr(cfg, "CSVHeaderLocation");
	json_t *headers = NULL;
	if (hl && strcmp(hl, "GIVEN") == 0) {
		headers = json_incref(json_object_get(cfg, "CSVHeaders"));
		size_t i;
		json_t *h;
		json_array_foreach(headers, i, h)
		{
			if (!json_is_string(h)) {
				json_decref(headers);
				step_fault_runtime(ft, f, "States.ItemReaderFailed",
				                   "CSVHeaders must be an array of strings");
				return SL_ERR_INVALID_ARG;
			}
		}
	}
	const char *p = b, *end = b + len;
	if (len >= 3 && memcmp(b, "\xEF\xBB\xBF", 3) == 0)
		p += 3; // a UTF-8 byte order mark is not part of the first header
	size_t line = 0;
	sl_err e = SL_OK;
	while (p < end && !sink_full(s)) {
		line++;
		size_t at = line;
		if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) {
			p += *p == '\r' ? 2 : 1; // blank lines carry no record
			continue;
		}
		json_t *fields = json_array();
		if (!fields) {
			e = SL_ERR_NOMEM;
			break;
		}
		bool bad = false;
		if ((e = csv_record(&p, end, delim, fields, &line, &bad)) != SL_OK) {
			json_decref(fields);
			break;
		}
		if (bad) {
			json_decref(fields);
			step_fault_runtime(ft, f, "States.ItemReaderFailed",
			                   "%s line %zu: a quoted field is not closed properly",
			                   shown, at);
			e = SL_ERR_INVALID_ARG;
			break;
		}
		if (!headers) {
			headers = fields;
			continue;
		}
		if (json_array_size(fields) != json_array_size(headers)) {
			step_fault_runtime(ft, f, "States.ItemReaderFailed",
			                   "%s line %zu has %zu fields, the header has %zu", shown,
			                   at, json_array_size(fields), json_array_size(headers));
			json_decref(fields);
			e = SL_ERR_INVALID_ARG;
			break;
		}
		json_t *o = json_object();
		size_t i;
		json_t *v;
		json_array_foreach(fields, i, v)
		{
			if (o
			    && json_object_set(o, json_string_value(json_array_get(headers, i)), v))
				json_decref(o), o = NULL;
		}
		json_decref(fields);
		if (!o) {
			e = SL_ERR_NOMEM;
			break;
		}
		e = sink_item(s, o);
		json_decref(o);
		if (e != SL_OK)
			break;
	}
	json_decref(headers);
	return e;
}

/* ---- listObjectsV2 ------------------------------------------------------------------------ */

struct lister {
	json_t *arr;
	const char *prefix;
	bool full; /* more than LIST_MAX_OBJECTS matched */
};

static int
cmp_key(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "Key")),
	              json_string_value(json_object_get(*(json_t *const *)b, "Key")));
}

/* Regular files under dir (symbolic links are not followed), keys relative to the bucket. */
static sl_err
list_dir(struct lister *l, const char *dir, const char *rel, int depth)
{
	if (depth > LIST_MAX_DEPTH)
		return SL_OK;
	DIR *d = opendir(dir);
	if (!d)
		return SL_OK;
	sl_err e = SL_OK;
	struct dirent *de;
	while (e == SL_OK && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *path = sl_asprintf("%s/%s", dir, de->d_name);
		char *key = *rel ? sl_asprintf("%s/%s", rel, de->d_name) : sl_strdup(de->d_name);
		struct stat sb;
		if (!path || !key) {
			e = SL_ERR_NOMEM;
		} else if (lstat(path, &sb) != 0) {
			// gone meanwhile: not listed
		} else if (S_ISDIR(sb.st_mode)) {
			size_t kl = strlen(key), pl = strlen(l->prefix);
			// only directories that can hold matching keys
			if (strncmp(key, l->prefix, kl < pl ? kl : pl) == 0)
				e = list_dir(l, path, key, depth + 1);
		} else if (S_ISREG(sb.st_mode) && strncmp(key, l->prefix, strlen(l->prefix)) == 0
		           && json_array_size(l->arr) >= LIST_MAX_OBJECTS) {
			l->full = true;
			e = SL_ERR_LIMIT;
		} else if (S_ISREG(sb.st_mode) && strncmp(key, l->prefix, strlen(l->prefix)) == 0) {
			json_t *o = json_pack("{s:s, s:I, s:I, s:s}", "Key", key, "Size",
			                      (json_int_t)sb.st_size, "LastModified",
			                      (json_int_t)sb.st_mtime, "StorageClass", "STANDARD");
			if (!o || json_array_append_new(l->arr, o))
				e = SL_ERR_NOMEM;
		}
		sl_free(path);
		sl_free(key);
	}
	closedir(d);
	return e;
}

static sl_err
list_objects(struct step_ctx *c, struct step_frame *f, json_t *params, json_t **out,
             struct step_fault *ft)
{
	const char *bucket = step_jstr(params, "Bucket");
	const char *prefix = step_jstr(params, "Prefix");
	if (!prefix)
		prefix = "";
	char *dir = local_path(c, f, bucket, NULL, ft);
	if (!dir)
		return ft->has_error ? SL_ERR_INVALID_ARG : SL_ERR_NOMEM;
	struct lister l = { .arr = json_array(), .prefix = prefix };
	sl_err e = l.arr ? list_dir(&l, dir, "", 0) : SL_ERR_NOMEM;
	if (l.full) {
		step_fault_runtime(ft, f, "States.ItemReaderFailed",
		                   "s3://%s/%s matches more than %d objects", bucket, prefix,
		                   LIST_MAX_OBJECTS);
		e = SL_ERR_INVALID_ARG;
	}
	sl_free(dir);
	if (e != SL_OK) {
		json_decref(l.arr);
		return e;
	}
	// S3 lists keys in UTF-8 binary order
	size_t n = json_array_size(l.arr);
	json_t **v = n ? sl_calloc(n, sizeof *v) : NULL;
	if (n && !v) {
		json_decref(l.arr);
		return SL_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(l.arr, i));
	qsort(v, n, sizeof *v, cmp_key);
	json_array_clear(l.arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(l.arr, v[i]);
	sl_free(v);
	*out = l.arr;
	return SL_OK;
}
/* ---- ItemReader --------------------------------------------------------------------------- */

/* A ...Path number over the state input: a positive integer (zero allowed when zero_ok). */
static sl_err
path_count(struct step_frame *f, json_t *obj, const char *field, json_t *ctx, bool zero_ok,
           int64_t *out, struct step_fault *ft)
{
	struct sm_path *p = NULL;
	sl_err e = sm_path_compile(step_jstr(obj, field), SM_PATH_REFERENCE, &p, NULL);
	if (e != SL_OK)
		return e == SL_ERR_NOMEM ? e : SL_ERR_INTERNAL; // validated at compile time
	json_t *v = NULL;
	struct sm_fault sf = { 0 };
	e = sm_path_get_fault(p, f->eff, ctx, &v, &sf);
	if (e == SL_ERR_NOT_FOUND) {
		step_fault_runtime(ft, f, "States.Runtime", "%s", sf.cause);
		e = SL_ERR_INVALID_ARG;
	} else if (e == SL_OK) {
		if (!json_is_integer(v) || json_integer_value(v) < (zero_ok ? 0 : 1)) {
			char *s = step_dumps(v);
			step_fault_runtime(
			        ft, f, "States.Runtime",
			        "The %s field refers to value \"%s\" which is not a valid "
			        "%s integer: %s",
			        field, s ? s : "?", zero_ok ? "non-negative" : "positive",
			        sm_path_text(p));
			sl_free(s);
			e = SL_ERR_INVALID_ARG;
		} else {
			*out = json_integer_value(v);
		}
		json_decref(v);
	}
	sm_path_free(p);
	return e;
}

static sl_err
read_items(struct sink *s, json_t *ctx)
{
	struct step_ctx *c = s->c;
	struct step_frame *f = s->f;
	struct step_fault *ft = s->ft;
	json_t *r = f->m->states[f->st].u.map.item_reader;
	json_t *cfg = json_object_get(r, "ReaderConfig");
	const char *res = step_jstr(r, "Resource");
	sl_err e = SL_OK;
	int64_t max = READER_MAX_ITEMS;
	json_t *mi = json_object_get(cfg, "MaxItems");
	if (json_is_integer(mi) && json_integer_value(mi) > 0)
		max = json_integer_value(mi);
	if (step_jstr(cfg, "MaxItemsPath")) {
		if ((e = path_count(f, cfg, "MaxItemsPath", ctx, true, &max, ft)) != SL_OK)
			return e;
		if (max == 0 || max > READER_MAX_ITEMS)
			max = READER_MAX_ITEMS; // 0, as for MaxItems, means no limit
	}
	s->max = (size_t)max;
	json_t *params = NULL;
	json_t *pt = json_object_get(r, "Parameters");
	if (pt) {
		struct sm_template *t = NULL;
		if ((e = sm_template_compile(pt, &t, NULL)) != SL_OK)
			return e == SL_ERR_NOMEM ? e : SL_ERR_INTERNAL; // validated at compile time
		e = step_io_template(c, f, t, f->eff, ctx, &params, ft);
		sm_template_free(t);
		if (e != SL_OK)
			return e;
	} else if (!(params = json_object())) {
		return SL_ERR_NOMEM;
	}
	const char *bucket = step_jstr(params, "Bucket");
	if (res && strcmp(res, "arn:aws:states:::s3:listObjectsV2") == 0) {
		json_t *out = NULL;
		if ((e = list_objects(c, f, params, &out, ft)) == SL_OK) {
			for (size_t i = 0; e == SL_OK && i < json_array_size(out) && !sink_full(s);
			     i++)
				e = sink_item(s, json_array_get(out, i));
			json_decref(out);
		}
	} else if (res && strcmp(res, "arn:aws:states:::s3:getObject") == 0) {
		const char *key = step_jstr(params, "Key");
		const char *type = step_jstr(cfg, "InputType");
		char *shown = sl_asprintf("s3://%s/%s", bucket ? bucket : "", key ? key : "");
		char *path = NULL, *buf = NULL;
		size_t len = 0;
		if (!shown) {
			e = SL_ERR_NOMEM;
		} else if (!key) {
			step_fault_runtime(
			        ft, f, "States.ItemReaderFailed",
			        "ItemReader Parameters must give a Key for s3:getObject");
			e = SL_ERR_INVALID_ARG;
		} else if (!type) {
			step_fault_runtime(
			        ft, f, "States.ItemReaderFailed",
			        "ItemReader over s3:getObject needs ReaderConfig.InputType");
			e = SL_ERR_INVALID_ARG;
		} else if (!(path = local_path(c, f, bucket, key, ft))) {
			e = ft->has_error ? SL_ERR_INVALID_ARG : SL_ERR_NOMEM;
		} else if ((e = read_file(c, f, path, shown, &buf, &len, ft)) != SL_OK) {
			// ft says why
		} else if (strcmp(type, "JSON") == 0) {
			e = parse_json(s, shown, buf, len);
		} else if (strcmp(type, "JSONL") == 0) {
			e = parse_jsonl(s, shown, buf, len);
		} else if (strcmp(type, "CSV") == 0) {
			e = parse_csv(s, shown, cfg, buf, len);
		} else {
			step_fault_runtime(
			        ft, f, "States.ItemReaderFailed",
			        "ItemReader InputType %s is not supported by sluice (JSON, "
			        "JSONL and CSV are)",
			        type);
			e = SL_ERR_INVALID_ARG;
		}
		sl_free(buf);
		sl_free(path);
		sl_free(shown);
	} else {
		step_fault_runtime(ft, f, "States.ItemReaderFailed",
		                   "ItemReader Resource %s is not supported by sluice "
		                   "(arn:aws:states:::s3:getObject and "
		                   "arn:aws:states:::s3:listObjectsV2 over local files are)",
		                   res ? res : "(missing)");
		e = SL_ERR_INVALID_ARG;
	}
	json_decref(params);
	return e;
}

static sl_err
batch_setup(struct sink *s, json_t *ctx)
{
	struct step_frame *f = s->f;
	const struct sm_map *mp = &f->m->states[f->st].u.map;
	json_t *bt = mp->item_batcher;
	size_t limit = s->c->eng->opt.payload_limit;
	sl_err e = SL_OK;
	s->batching = true;
	s->per_batch = INT64_MAX;
	s->max_batch_bytes = (int64_t)limit;
	if (json_is_integer(json_object_get(bt, "MaxItemsPerBatch")))
		s->per_batch = json_integer_value(json_object_get(bt, "MaxItemsPerBatch"));
	if (step_jstr(bt, "MaxItemsPerBatchPath")
	    && (e = path_count(f, bt, "MaxItemsPerBatchPath", ctx, false, &s->per_batch, s->ft))
	            != SL_OK)
		return e;
	if (json_is_integer(json_object_get(bt, "MaxInputBytesPerBatch")))
		s->max_batch_bytes
		        = json_integer_value(json_object_get(bt, "MaxInputBytesPerBatch"));
	if (step_jstr(bt, "MaxInputBytesPerBatchPath")
	    && (e = path_count(f, bt, "MaxInputBytesPerBatchPath", ctx, false, &s->max_batch_bytes,
	                       s->ft))
	            != SL_OK)
		return e;
	if (s->max_batch_bytes > (int64_t)limit)
		s->max_batch_bytes = (int64_t)limit; // a batch is one child's input
	json_t *bi = json_object_get(bt, "BatchInput");
	if (bi) {
		struct sm_template *t = NULL;
		if ((e = sm_template_compile(bi, &t, NULL)) != SL_OK)
			return e == SL_ERR_NOMEM ? e : SL_ERR_INTERNAL;
		e = step_io_template(s->c, f, t, f->eff, ctx, &s->base, s->ft);
		sm_template_free(t);
		if (e != SL_OK)
			return e;
		json_object_del(s->base, "Items"); // the batch's own member wins
	}
	if ((e = new_batch(s)) != SL_OK)
		return e;
	s->base_size = json_size(s->cur);
	json_decref(s->cur);
	s->cur = NULL;
	if (mp->item_selector) {
		s->selector = mp->item_selector;
		if (!(s->cx = json_copy(ctx)))
			return SL_ERR_NOMEM;
	}
	return SL_OK;
}

sl_err
step_reader_run(struct step_ctx *c, struct step_frame *f, json_t *ctx, json_t *items, uint32_t *n,
                struct step_fault *ft)
{
	const struct sm_map *mp = &f->m->states[f->st].u.map;
	struct sink s = { .c = c, .f = f, .ft = ft, .max = SIZE_MAX };
	ft->has_error = false;
	sl_err e = step_frame_eff(c, f);
	if (e == SL_OK && mp->item_batcher)
		e = batch_setup(&s, ctx);
	if (e == SL_OK && items) {
		for (size_t i = 0; e == SL_OK && i < json_array_size(items) && !sink_full(&s); i++)
			e = sink_item(&s, json_array_get(items, i));
	} else if (e == SL_OK) {
		e = read_items(&s, ctx);
	}
	if (e == SL_OK)
		e = flush_batch(&s);
	json_decref(s.cur);
	json_decref(s.base);
	json_decref(s.cx);
	if (e == SL_ERR_INVALID_ARG) {
		// a state error: no partial item records stay behind
		sl_err d = step_reader_drop(c, f);
		if (d != SL_OK)
			return d;
	}
	if (e == SL_OK)
		*n = s.n_out;
	return e;
}

sl_err
step_reader_get(struct step_ctx *c, struct step_frame *f, uint32_t idx, json_t **item)
{
	struct store_key k;
	items_prefix(&k, c->arn, f->id);
	store_key_u32(&k, idx);
	return step_get_json(c->txn, STORE_DB_FRAMES, &k, 'M', item);
}

sl_err
step_reader_drop(struct step_ctx *c, struct step_frame *f)
{
	struct store_key k;
	items_prefix(&k, c->arn, f->id);
	return store_del_prefix(c->txn, STORE_DB_FRAMES, k.buf, k.len);
}
