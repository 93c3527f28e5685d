/*
 * srv_sfn_fields.c - request fields shared by the Step Functions operations (machines,
 * executions, activities), so every one words its validation errors as AWS does.
 */
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
