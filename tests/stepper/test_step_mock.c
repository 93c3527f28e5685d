/*
 * test_step_mock.c - mock configuration parsing: Step Functions Local's MockConfigFile and
 * the short form, attempt ranges, and clear errors for bad files.
 */
#include "tests/stepper/step_test_util.h"

static struct step_mock *
parse_ok(const char *text, const char *machine, const char *tcase)
{
	json_t *d = step_test_json(text);
	struct step_mock *m = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(step_mock_parse(d, machine, tcase, &m, &err), SL_OK, "%s",
	             sl_error_text(&err));
	json_decref(d);
	return m;
}

static void
parse_bad(const char *text, const char *tcase, const char *needle)
{
	json_t *d = step_test_json(text);
	struct step_mock *m = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	cr_expect_eq(step_mock_parse(d, NULL, tcase, &m, &err), SL_ERR_INVALID_ARG, "accepted %s",
	             text);
	cr_expect_null(m);
	cr_expect(strstr(sl_error_text(&err), needle), "message '%s' lacks '%s'",
	          sl_error_text(&err), needle);
	json_decref(d);
}

static const char *FULL
        = "{\"StateMachines\":{\"M\":{\"TestCases\":{\"Happy\":{\"T\":\"Ok\"},\"Sad\":{\"T\":"
          "\"Flaky\"}}}},\"MockedResponses\":{\"Ok\":{\"0\":{\"Return\":{\"v\":1}}},\"Flaky\":{"
          "\"0\":{\"Throw\":{\"Error\":\"E\",\"Cause\":\"c\"}},\"1-2\":{\"Return\":2}}}}";

Test(step_mock, full_form_with_ranges)
{
	struct step_mock *m = parse_ok(FULL, NULL, "Sad");
	json_t *ret;
	const char *e, *c;
	cr_assert_eq(step_mock_response(m, "T", 0, &ret, &e, &c), SL_OK);
	cr_expect_str_eq(e, "E");
	cr_expect_str_eq(c, "c");
	cr_assert_eq(step_mock_response(m, "T", 2, &ret, &e, &c), SL_OK);
	cr_expect_eq(json_integer_value(ret), 2);
	cr_expect_null(e);
	cr_expect_eq(step_mock_response(m, "T", 3, &ret, &e, &c), SL_ERR_NOT_FOUND);
	cr_expect_eq(step_mock_response(m, "Other", 0, &ret, &e, &c), SL_ERR_NOT_FOUND);
	step_mock_free(m);
}

Test(step_mock, short_form_and_object_causes)
{
	struct step_mock *m
	        = parse_ok("{\"T\":[{\"Return\":1},{\"Throw\":{\"Error\":\"X\",\"Cause\":"
	                   "{\"errorMessage\":\"m\"}}}]}",
	                   NULL, NULL);
	json_t *ret;
	const char *e, *c;
	cr_assert_eq(step_mock_response(m, "T", 1, &ret, &e, &c), SL_OK);
	cr_expect_str_eq(e, "X");
	cr_expect_str_eq(c, "{\"errorMessage\":\"m\"}");
	step_mock_free(m);
}

Test(step_mock, errors_name_the_place)
{
	parse_bad(FULL, NULL, "2 test cases are defined");
	parse_bad(FULL, "Nope", "no test case named 'Nope'");
	parse_bad("{\"T\":{\"Return\":1}}", NULL, "/T: expected an array");
	parse_bad("{\"T\":[{\"Return\":1,\"Throw\":{}}]}", NULL, "/T/0: expected exactly one");
	parse_bad("{\"T\":[{\"Throw\":{\"Error\":5}}]}", NULL, "/T/0/Throw");
	parse_bad("{\"StateMachines\":{\"M\":{\"TestCases\":{\"A\":{\"T\":\"R\"}}}},"
	          "\"MockedResponses\":{\"R\":{\"x\":{\"Return\":1}}}}",
	          NULL, "/MockedResponses/R/x");
	parse_bad("{\"StateMachines\":{\"M\":{\"TestCases\":{\"A\":{\"T\":\"R\"}}}},"
	          "\"MockedResponses\":{\"R\":{\"0-99999999\":{\"Return\":1}}}}",
	          NULL, "below 10000");
	parse_bad("{\"StateMachines\":{\"M\":{\"TestCases\":{\"A\":{\"T\":\"Missing\"}}}},"
	          "\"MockedResponses\":{}}",
	          NULL, "/MockedResponses/Missing: not defined");
	parse_bad("[1]", NULL, "expected a JSON object");
}
