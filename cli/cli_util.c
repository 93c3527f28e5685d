#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/sl_alloc.h"

sl_err
cli_read_file(const char *path, size_t limit, char **out, size_t *out_len, struct sl_error *err)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f)
		return sl_error_set(err, SL_ERR_IO, "%s: %s", path, strerror(errno));
	size_t cap = 4096, len = 0;
	char *buf = sl_malloc(cap);
	if (!buf)
		goto out_nomem;
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > limit) {
				sl_free(buf);
				if (f != stdin)
					fclose(f);
				return sl_error_set(err, SL_ERR_TOO_LARGE,
				                    "%s: larger than %zu bytes", path, limit);
			}
			char *nb = sl_realloc(buf, cap * 2);
			if (!nb)
				goto out_free_buf;
			buf = nb;
			cap *= 2;
		}
		size_t r = fread(buf + len, 1, cap - len - 1, f);
		len += r;
		if (r == 0) {
			if (ferror(f)) {
				sl_free(buf);
				if (f != stdin)
					fclose(f);
				return sl_error_set(err, SL_ERR_IO, "%s: read error", path);
			}
			break;
		}
	}
	if (len > limit) {
		sl_free(buf);
		if (f != stdin)
			fclose(f);
		return sl_error_set(err, SL_ERR_TOO_LARGE, "%s: larger than %zu bytes", path,
		                    limit);
	}
	buf[len] = '\0';
	if (f != stdin)
		fclose(f);
	*out = buf;
	if (out_len)
		*out_len = len;
	return SL_OK;
out_free_buf:
	sl_free(buf);
out_nomem:
	if (f != stdin)
		fclose(f);
	return sl_error_set(err, SL_ERR_NOMEM, "%s: out of memory", path);
}

sl_err
cli_text_or_file(const char *arg, size_t limit, char **out, struct sl_error *err)
{
	if (arg[0] == '@')
		return cli_read_file(arg + 1, limit, out, NULL, err);
	if (strlen(arg) > limit)
		return sl_error_set(err, SL_ERR_TOO_LARGE, "argument larger than %zu bytes", limit);
	*out = sl_strdup(arg);
	return *out ? SL_OK : sl_error_set(err, SL_ERR_NOMEM, "out of memory");
}

bool
cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return true;
	return false;
}

const char *
cli_jstr(json_t *j, const char *k, const char *def)
{
	const char *v = json_string_value(json_object_get(j, k));
	return v ? v : def;
}

const char *
cli_jtime(json_t *j, const char *k, char out[32])
{
	json_t *v = json_object_get(j, k);
	if (!json_is_number(v))
		return "-";
	time_t t = (time_t)json_number_value(v);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

int
cli_print_json(json_t *ans)
{
	char *t = json_dumps(ans, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (t)
		printf("%s\n", t);
	free(t);
	json_decref(ans);
	return CLI_OK;
}
