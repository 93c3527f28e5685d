#include "cli/cli_api.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_http.h"

sl_err
cli_api_call(const char *endpoint, const char *target, json_t *body, json_t **out,
             struct sl_error *err)
{
	sl_err rc = cli_aws_call(endpoint, target, body, CLI_API_TIMEOUT, out, err);
	json_decref(body);
	return rc;
}

sl_err
cli_api_list(const char *endpoint, const char *target, json_t *req, const char *member,
             const char *token_key, json_t **items, const char **error_type, struct sl_error *err)
{
	static char type[128];
	*items = NULL;
	if (error_type)
		*error_type = NULL;
	json_t *all = json_array();
	if (!all || !req) {
		json_decref(all);
		json_decref(req);
		return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	}
	/* a bound on pages so a server that keeps answering tokens cannot loop us forever */
	for (int page = 0; page < 100000; page++) {
		json_t *ans = NULL;
		sl_err rc = cli_aws_call(endpoint, target, req, CLI_API_TIMEOUT, &ans, err);
		if (rc) {
			const char *t = json_string_value(json_object_get(ans, "__type"));
			if (t && error_type) {
				snprintf(type, sizeof type, "%s", t);
				*error_type = type;
			}
			json_decref(ans);
			json_decref(req);
			json_decref(all);
			return rc;
		}
		json_t *arr = json_object_get(ans, member);
		if (arr && json_array_extend(all, arr)) {
			json_decref(ans);
			json_decref(req);
			json_decref(all);
			return sl_error_set(err, SL_ERR_NOMEM, "out of memory");
		}
		json_t *tok = json_object_get(ans, token_key);
		if (!json_is_string(tok) || !json_string_length(tok)) {
			json_decref(ans);
			json_decref(req);
			*items = all;
			return SL_OK;
		}
		json_object_set(req, token_key, tok);
		json_decref(ans);
	}
	json_decref(req);
	json_decref(all);
	return sl_error_set(err, SL_ERR_LIMIT, "%s: too many pages", target);
}

sl_err
cli_api_machine_arn(const char *endpoint, const char *name, char *arn, size_t cap,
                    struct sl_error *err)
{
	if (strncmp(name, "arn:", 4) == 0) {
		snprintf(arn, cap, "%s", name);
		return SL_OK;
	}
	json_t *items = NULL;
	sl_err rc = cli_api_list(endpoint, "AWSStepFunctions.ListStateMachines",
	                         json_pack("{s:i}", "maxResults", 1000), "stateMachines",
	                         "nextToken", &items, NULL, err);
	if (rc)
		return rc;
	size_t i;
	json_t *m;
	json_array_foreach(items, i, m)
	{
		const char *n = json_string_value(json_object_get(m, "name"));
		const char *a = json_string_value(json_object_get(m, "stateMachineArn"));
		if (n && a && strcmp(n, name) == 0) {
			snprintf(arn, cap, "%s", a);
			json_decref(items);
			return SL_OK;
		}
	}
	json_decref(items);
	return sl_error_set(err, SL_ERR_NOT_FOUND, "no state machine named '%s'", name);
}

int
cli_api_exit_code(sl_err rc)
{
	if (rc == SL_OK)
		return CLI_OK;
	return rc == SL_ERR_INVALID_ARG || rc == SL_ERR_NOT_FOUND ? CLI_USAGE : CLI_RUNTIME;
}

int
cli_call(const char *endpoint, const char *target, json_t *body, int timeout_s, const char *who,
         json_t **out)
{
	struct sl_error err = { 0 };
	json_t *ans = NULL;
	sl_err rc
	        = body ? cli_aws_call(endpoint, target, body, timeout_s, &ans, &err) : SL_ERR_NOMEM;
	json_decref(body);
	if (rc) {
		fprintf(stderr, "sluice %s: %s\n", who,
		        err.code ? sl_error_text(&err) : sl_err_message(rc));
		json_decref(ans);
		return rc == SL_ERR_INVALID_ARG ? CLI_USAGE : CLI_RUNTIME;
	}
	*out = ans;
	return CLI_OK;
}
