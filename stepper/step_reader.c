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
 * The items are read once when the Map starts, grouped into batches when there is an
 * ItemBatcher, and written once under the Map frame's key (like its effective input): the
 * iterations are created lazily from that record, also after a restart. Memory is bounded
 * by the file size cap (item_reader_max_bytes), not streamed.
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

/* ---- parsers ------------------------------------------------------------------------------ */

static sl_err
parse_json(struct step_frame *f, const char *shown, const char *b, size_t len, json_t **out,
           struct step_fault *ft)
{
	json_error_t je;
	json_t *v = json_loadb(b, len, JSON_DECODE_ANY, &je);
	if (!v) {
		step_fault_runtime(ft, f, "States.ItemReaderFailed",
		                   "%s is not valid JSON: %s at line %d, column %d", shown, je.text,
		                   je.line, je.column);
		return SL_ERR_INVALID_ARG;
	}
	if (!json_is_array(v)) {
		json_decref(v);
		step_fault_runtime(ft, f, "States.ItemReaderFailed",
		                   "%s must hold a JSON array (InputType JSON)", shown);
		return SL_ERR_INVALID_ARG;
	}
	*out = v;
	return SL_OK;
}

static sl_err
parse_jsonl(struct step_frame *f, const char *shown, const char *b, size_t len, size_t max,
            json_t **out, struct step_fault *ft)
{
	json_t *arr = json_array();
	if (!arr)
		return SL_ERR_NOMEM;
	size_t line = 0;
	const char *p = b, *end = b + len;
	while (p < end && json_array_size(arr) < max) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		line++;
		const char *q = p;
		while (q < le && (*q == ' ' || *q == '\t' || *q == '\r'))
			q++;
		if (q < le) { // blank lines carry no item
			json_error_t je;
			json_t *v = json_loadb(p, (size_t)(le - p), JSON_DECODE_ANY, &je);
			if (!v) {
				json_decref(arr);
				step_fault_runtime(ft, f, "States.ItemReaderFailed",
				                   "%s line %zu is not valid JSON: %s", shown, line,
				                   je.text);
				return SL_ERR_INVALID_ARG;
			}
			if (json_array_append_new(arr, v)) {
				json_decref(arr);
				return SL_ERR_NOMEM;
			}
		}
		p = nl ? nl + 1 : end;
	}
	*out = arr;
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
parse_csv(struct step_frame *f, const char *shown, json_t *cfg, const char *b, size_t len,
          size_t max, json_t **out, struct step_fault *ft)
{
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
	bool given = hl && strcmp(hl, "GIVEN") == 0;
	json_t *headers = NULL;
	if (given) {
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
	json_t *arr = json_array();
	if (!arr) {
		json_decref(headers);
		return SL_ERR_NOMEM;
	}
	const char *p = b, *end = b + len;
	if (len >= 3 && memcmp(b, "\xEF\xBB\xBF", 3) == 0)
		p += 3; // a UTF-8 byte order mark is not part of the first header
	size_t line = 0;
	sl_err e = SL_OK;
	while (p < end && json_array_size(arr) < max) {
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
		if (!o || json_array_append_new(arr, o)) {
			e = SL_ERR_NOMEM;
			break;
		}
	}
	json_decref(headers);
	if (e != SL_OK) {
		json_decref(arr);
		return e;
	}
	*out = arr;
	return SL_OK;
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

/* The first failing item over the payload limit: States.DataLimitExceeded. */
static sl_err
check_items(struct step_ctx *c, struct step_frame *f, json_t *items, const char *what,
            struct step_fault *ft)
{
	size_t i;
	json_t *v;
	json_array_foreach(items, i, v)
	{
		if (step_payload_too_large(c, v)) {
			step_fault_runtime(ft, f, "States.DataLimitExceeded",
			                   "%s %zu is larger than the payload limit of %zu bytes",
			                   what, i, c->eng->opt.payload_limit);
			return SL_ERR_INVALID_ARG;
		}
	}
	return SL_OK;
}

sl_err
step_reader_load(struct step_ctx *c, struct step_frame *f, json_t *ctx, json_t **items,
                 struct step_fault *ft)
{
	json_t *r = f->m->states[f->st].u.map.item_reader;
	json_t *cfg = json_object_get(r, "ReaderConfig");
	const char *res = step_jstr(r, "Resource");
	sl_err e = step_frame_eff(c, f);
	if (e != SL_OK)
		return e;
	int64_t max = READER_MAX_ITEMS;
	if (json_is_integer(json_object_get(cfg, "MaxItems"))
	    && json_integer_value(json_object_get(cfg, "MaxItems")) > 0)
		max = json_integer_value(json_object_get(cfg, "MaxItems"));
	if (step_jstr(cfg, "MaxItemsPath")) {
		if ((e = path_count(f, cfg, "MaxItemsPath", ctx, true, &max, ft)) != SL_OK)
			return e;
		if (max == 0 || max > READER_MAX_ITEMS)
			max = READER_MAX_ITEMS; // 0, as for MaxItems, means no limit
	}
	json_t *params = NULL;
	json_t *pt = json_object_get(r, "Parameters");
	if (pt) {
		struct sm_template *t = NULL;
		if ((e = sm_template_compile(pt, &t, NULL)) != SL_OK)
			return e == SL_ERR_NOMEM ? e : SL_ERR_INTERNAL;
		e = step_io_template(c, f, t, f->eff, ctx, &params, ft);
		sm_template_free(t);
		if (e != SL_OK)
			return e;
	} else {
		params = json_object();
		if (!params)
			return SL_ERR_NOMEM;
	}
	json_t *out = NULL;
	const char *bucket = step_jstr(params, "Bucket");
	if (res && strcmp(res, "arn:aws:states:::s3:listObjectsV2") == 0) {
		e = list_objects(c, f, params, &out, ft);
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
			e = parse_json(f, shown, buf, len, &out, ft);
		} else if (strcmp(type, "JSONL") == 0) {
			e = parse_jsonl(f, shown, buf, len, (size_t)max, &out, ft);
		} else if (strcmp(type, "CSV") == 0) {
			e = parse_csv(f, shown, cfg, buf, len, (size_t)max, &out, ft);
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
	if (e != SL_OK)
		return e;
	while (json_array_size(out) > (size_t)max)
		json_array_remove(out, json_array_size(out) - 1);
	if ((e = check_items(c, f, out, "item", ft)) != SL_OK) {
		json_decref(out);
		return e;
	}
	*items = out;
	return SL_OK;
}

/* ---- ItemBatcher -------------------------------------------------------------------------- */

static size_t
json_size(json_t *v)
{
	return json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
}

static sl_err
new_batch(json_t *base, json_t **out)
{
	json_t *b = base ? json_deep_copy(base) : json_object();
	json_t *a = json_array();
	if (!b || !a || json_object_set_new(b, "Items", a)) {
		json_decref(b);
		return SL_ERR_NOMEM;
	}
	*out = b;
	return SL_OK;
}

/* ItemSelector runs on each item before batching ($$.Map.Item.Index/Value: the item). */
static sl_err
select_items(struct step_ctx *c, struct step_frame *f, json_t *ctx, json_t **items,
             struct step_fault *ft)
{
	const struct sm_template *t = f->m->states[f->st].u.map.item_selector;
	json_t *out = json_array(), *cx = json_copy(ctx);
	sl_err e = out && cx ? SL_OK : SL_ERR_NOMEM;
	size_t i;
	json_t *v;
	json_array_foreach(*items, i, v)
	{
		if (e != SL_OK)
			break;
		json_t *r = NULL;
		json_t *mi
		        = json_pack("{s:{s:I, s:O}}", "Item", "Index", (json_int_t)i, "Value", v);
		if (!mi || json_object_set_new(cx, "Map", mi))
			e = SL_ERR_NOMEM;
		else if ((e = step_io_template(c, f, t, f->eff, cx, &r, ft)) == SL_OK
		         && json_array_append_new(out, r))
			e = SL_ERR_NOMEM;
	}
	json_decref(cx);
	if (e != SL_OK) {
		json_decref(out);
		return e;
	}
	json_decref(*items);
	*items = out;
	return SL_OK;
}

sl_err
step_reader_batch(struct step_ctx *c, struct step_frame *f, json_t *ctx, json_t **items,
                  struct step_fault *ft)
{
	json_t *bt = f->m->states[f->st].u.map.item_batcher;
	sl_err e = step_frame_eff(c, f);
	if (e != SL_OK)
		return e;
	int64_t max_items = INT64_MAX, max_bytes_b = (int64_t)c->eng->opt.payload_limit;
	if (json_is_integer(json_object_get(bt, "MaxItemsPerBatch")))
		max_items = json_integer_value(json_object_get(bt, "MaxItemsPerBatch"));
	if (step_jstr(bt, "MaxItemsPerBatchPath")
	    && (e = path_count(f, bt, "MaxItemsPerBatchPath", ctx, false, &max_items, ft)) != SL_OK)
		return e;
	if (json_is_integer(json_object_get(bt, "MaxInputBytesPerBatch")))
		max_bytes_b = json_integer_value(json_object_get(bt, "MaxInputBytesPerBatch"));
	if (step_jstr(bt, "MaxInputBytesPerBatchPath")
	    && (e = path_count(f, bt, "MaxInputBytesPerBatchPath", ctx, false, &max_bytes_b, ft))
	            != SL_OK)
		return e;
	if (max_bytes_b > (int64_t)c->eng->opt.payload_limit)
		max_bytes_b = (int64_t)c->eng->opt.payload_limit; // a batch is one child's input
	json_t *base = NULL;
	json_t *bi = json_object_get(bt, "BatchInput");
	if (bi) {
		struct sm_template *t = NULL;
		if ((e = sm_template_compile(bi, &t, NULL)) != SL_OK)
			return e == SL_ERR_NOMEM ? e : SL_ERR_INTERNAL;
		e = step_io_template(c, f, t, f->eff, ctx, &base, ft);
		sm_template_free(t);
		if (e != SL_OK)
			return e;
		json_object_del(base, "Items"); // the batch's own member wins
	}
	if (f->m->states[f->st].u.map.item_selector
	    && (e = select_items(c, f, ctx, items, ft)) != SL_OK) {
		json_decref(base);
		return e;
	}
	json_t *batches = json_array(), *cur = NULL;
	size_t base_size = 0, cur_size = 0;
	if (!batches) {
		json_decref(base);
		return SL_ERR_NOMEM;
	}
	if ((e = new_batch(base, &cur)) == SL_OK)
		base_size = json_size(cur);
	size_t i;
	json_t *v;
	json_array_foreach(*items, i, v)
	{
		if (e != SL_OK)
			break;
		json_t *arr = json_object_get(cur, "Items");
		size_t n = json_array_size(arr);
		size_t vs = json_size(v);
		if (base_size + vs > (size_t)max_bytes_b) {
			step_fault_runtime(ft, f, "States.ItemReaderFailed",
			                   "item %zu alone makes a batch of %zu bytes, over the "
			                   "MaxInputBytesPerBatch of %lld bytes",
			                   i, base_size + vs, (long long)max_bytes_b);
			e = SL_ERR_INVALID_ARG;
			break;
		}
		// the next item joins the batch unless it breaks a limit (a comma per item)
		if (n > 0 && ((int64_t)n >= max_items || cur_size + 1 + vs > (size_t)max_bytes_b)) {
			if (json_array_append_new(batches, cur)) {
				cur = NULL;
				e = SL_ERR_NOMEM;
				break;
			}
			cur = NULL;
			if ((e = new_batch(base, &cur)) != SL_OK)
				break;
			arr = json_object_get(cur, "Items");
			n = 0;
		}
		cur_size = n == 0 ? base_size + vs : cur_size + 1 + vs;
		if (json_array_append(arr, v))
			e = SL_ERR_NOMEM;
	}
	if (e == SL_OK && json_array_size(json_object_get(cur, "Items")) > 0) {
		if (json_array_append_new(batches, cur))
			e = SL_ERR_NOMEM;
		cur = NULL;
	}
	json_decref(cur);
	json_decref(base);
	if (e != SL_OK) {
		json_decref(batches);
		return e;
	}
	json_decref(*items);
	*items = batches;
	return SL_OK;
}

/* ---- the item records -------------------------------------------------------------------- */

static void
items_prefix(struct store_key *k, const char *arn, uint32_t id)
{
	step_key_frame(k, arn, id);
	store_key_raw(k, "I", 1);
}

sl_err
step_reader_put(struct step_ctx *c, struct step_frame *f, json_t *items)
{
	size_t i;
	json_t *v;
	json_array_foreach(items, i, v)
	{
		struct store_key k;
		items_prefix(&k, c->arn, f->id);
		store_key_u32(&k, (uint32_t)i);
		sl_err e = step_put_json(c->txn, STORE_DB_FRAMES, &k, 'M', v);
		if (e != SL_OK)
			return e;
	}
	return SL_OK;
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
