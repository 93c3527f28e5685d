/*
 * srv_sfn_fields.c - request fields shared by the Step Functions operations (machines,
 * executions, activities), so every one words its validation errors as AWS does.
 */
#include <string.h>

#include "common/sl_alloc.h"
#include "server/srv_api.h"

sl_err
srv_sfn_str_field(json_t *body, const char *field, bool required, const char **out,
                  struct sl_error *err)
{
	json_t *v = json_object_get(body, field);
	*out = NULL;
	if (!v || json_is_null(v)) {
		if (!required)
			return SL_OK;
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "1 validation error detected: Value null at '%s' failed to "
		                    "satisfy constraint: Member must not be null",
		                    field);
	}
	if (!json_is_string(v))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "Field '%s': expected a string",
		                    field);
	*out = json_string_value(v);
	return SL_OK;
}

sl_err
srv_sfn_max_results(json_t *body, size_t dflt, size_t *out, struct sl_error *err)
{
	json_t *v = json_object_get(body, "maxResults");
	*out = dflt;
	if (!v || json_is_null(v))
		return SL_OK;
	if (!json_is_integer(v))
		return sl_error_set(err, SL_ERR_SERIALIZATION,
		                    "Field 'maxResults': expected an integer");
	json_int_t n = json_integer_value(v);
	if (n < 0 || n > 1000)
		return sl_error_set(err, SL_ERR_SFN_VALIDATION,
		                    "1 validation error detected: Value '%lld' at 'maxResults' "
		                    "failed to satisfy constraint: Member must have value less "
		                    "than or equal to 1000",
		                    (long long)n);
	if (n > 0)
		*out = (size_t)n;
	return SL_OK;
}

sl_err
srv_sfn_arn(const char *arn, const char *prefix, char *buf, size_t cap, struct sl_arn *a,
            struct sl_error *err)
{
	size_t n = strlen(arn);
	if (n >= cap)
		return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%.200s...'", arn);
	memcpy(buf, arn, n + 1);
	if (sl_arn_parse(buf, a) || strcmp(a->service, "states") != 0
	    || (prefix && strncmp(a->resource, prefix, strlen(prefix)) != 0))
		return sl_error_set(err, SL_ERR_INVALID_ARN, "Invalid Arn: '%s'", arn);
	return SL_OK;
}

sl_err
srv_sfn_reply_page(srv_req_t *req, const char *member, json_t *items, char *next)
{
	json_t *out = items ? json_pack("{s:o}", member, items) : NULL;
	if (out && next)
		json_object_set_new(out, "nextToken", json_string(next));
	sl_free(next);
	if (!out)
		return SL_ERR_NOMEM;
	srv_reply_json(req, out);
	return SL_OK;
}
