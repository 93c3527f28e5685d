/*
 * test_sm_intrinsic.c - the 18 States.* intrinsic functions (statemachines/sm_path.h), part of
 * the test_sm_path binary. Cases named "corpus: X" reproduce the AWS-recorded case X from
 * shared/corpus/asl/intrinsic_functions.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/sm_path.h"
#include "test_sm_path_util.h"

TestSuite(sm_intrinsic, .init = setup, .fini = teardown);

/* ---- intrinsic functions ---------------------------------------------------------------- */

static void
expect_call(const char *call, const char *input, const char *want)
{
	struct sm_intrinsic *f;
	struct sl_error err;
	struct sm_fault fault = { 0 };
	json_t *in = J(input), *ctx = J(ctx_text), *out = NULL;
	cr_assert(sm_intrinsic_is_call(call), "%s", call);
	cr_assert_eq(sm_intrinsic_compile(call, &f, &err), SL_OK, "%s: %s", call, err.message);
	cr_assert_eq(sm_intrinsic_eval(f, in, ctx, &out, &fault), SL_OK, "%s over %s: %s %s", call,
	             input, fault.error, fault.cause);
	assert_json_eq(out, want, call);
	json_decref(out);
	json_decref(in);
	json_decref(ctx);
	sm_intrinsic_free(f);
}

static void
expect_call_fails(const char *call, const char *input, const char *needle)
{
	struct sm_intrinsic *f;
	struct sl_error err;
	struct sm_fault fault = { 0 };
	json_t *in = J(input), *out = NULL;
	cr_assert_eq(sm_intrinsic_compile(call, &f, &err), SL_OK, "%s: %s", call, err.message);
	cr_assert_neq(sm_intrinsic_eval(f, in, NULL, &out, &fault), SL_OK, "%s over %s", call,
	              input);
	cr_assert_null(out);
	cr_assert_str_eq(fault.error, "States.IntrinsicFailure", "%s", call);
	cr_assert(strstr(fault.cause, needle), "%s: cause '%s' lacks '%s'", call, fault.cause,
	          needle);
	json_decref(in);
	sm_intrinsic_free(f);
}

static void
expect_bad_call(const char *call, const char *needle)
{
	struct sm_intrinsic *f = NULL;
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(sm_intrinsic_compile(call, &f, &err), SL_ERR_INVALID_DEFINITION,
	             "'%s' must be refused", call);
	cr_assert_null(f);
	cr_assert(strstr(err.message, needle), "'%s': message '%s' lacks '%s'", call, err.message,
	          needle);
}

static void
expect_fn(const char *fn, const char *fst, const char *want)
{
	char call[256], input[1024];
	snprintf(call, sizeof(call), "States.%s($.FunctionInput)", fn);
	snprintf(input, sizeof(input), "{\"FunctionInput\":%s}", fst);
	expect_call(call, input, want);
}

static void
expect_fn2(const char *fn, const char *fst, const char *snd, const char *want)
{
	char call[256], input[1024];
	snprintf(call, sizeof(call), "States.%s($.FunctionInput.fst, $.FunctionInput.snd)", fn);
	snprintf(input, sizeof(input), "{\"FunctionInput\":{\"fst\":%s,\"snd\":%s}}", fst, snd);
	expect_call(call, input, want);
}

Test(sm_intrinsic, is_call)
{
	cr_assert(sm_intrinsic_is_call("States.Array()"));
	cr_assert(sm_intrinsic_is_call("States.Format ('x')"));
	cr_assert_not(sm_intrinsic_is_call("$.a"));
	cr_assert_not(sm_intrinsic_is_call("States.Array"));
	cr_assert_not(sm_intrinsic_is_call("states.Array()"));
	cr_assert_not(sm_intrinsic_is_call(NULL));
}

static void
expect_format1(const char *fst, const char *want)
{
	char input[512];
	snprintf(input, sizeof(input), "{\"FunctionInput\":%s}", fst);
	expect_call("States.Format('Formatting argument {}.', $.FunctionInput)", input, want);
}

Test(sm_intrinsic, format)
{
	/* corpus: intrinsic_functions.TestGeneric.test_format_1 (all seven inputs) */
	expect_format1("\"\"", "\"Formatting argument .\"");
	expect_format1("\" \"", "\"Formatting argument  .\"");
	expect_format1("\"HelloWorld\"", "\"Formatting argument HelloWorld.\"");
	expect_format1("null", "\"Formatting argument null.\"");
	expect_format1("1", "\"Formatting argument 1.\"");
	expect_format1("1.1", "\"Formatting argument 1.1.\"");
	expect_format1("\"{\\\"Arg1\\\": 1, \\\"Arg2\\\": []}\"",
	               "\"Formatting argument {\\\"Arg1\\\": 1, \\\"Arg2\\\": []}.\"");
	/* corpus: intrinsic_functions.TestGeneric.test_format_2 (objects print as Java maps) */
	expect_call("States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, "
	            "$.FunctionInput.snd)",
	            "{\"FunctionInput\":{\"fst\":{\"Arg1\":1,\"Arg2\":[]},\"snd\":{\"Arg1\":1,"
	            "\"Arg2\":[]}}}",
	            "\"Formatting arguments fst={Arg1=1, Arg2=[]} and snd={Arg1=1, Arg2=[]}.\"");
	expect_call("States.Format('Formatting arguments fst={} and snd={}.', $.a, $.b)",
	            "{\"a\":\"\",\"b\":\" \"}", "\"Formatting arguments fst= and snd= .\"");
	/* corpus: intrinsic_functions.TestGeneric.test_context_json_path */
	expect_call("States.Format('fst={} and snd={}.', $$.Execution.Name, $$.StateMachine)", "{}",
	            "\"fst=ex1 and snd={Id=arn:aws:states:us-east-1:000000000000:stateMachine:"
	            "sm-a-b, Name=sm-a-b}.\"");
	/* literals, nested arrays, booleans, Java doubles */
	expect_call("States.Format('{} {} {} {} {}', 'x', 2, true, null, $.l)",
	            "{\"l\":[1,\"a\",[2.5,{\"k\":false}]]}",
	            "\"x 2 true null [1, a, [2.5, {k=false}]]\"");
	expect_call("States.Format('{}|{}|{}|{}', $.a, $.b, $.c, $.d)",
	            "{\"a\":2.0,\"b\":1e21,\"c\":0.0001,\"d\":-1234.5}",
	            "\"2.0|1.0E21|1.0E-4|-1234.5\"");
	/* escapes: \{ \} \' \\ are literal characters, not placeholders */
	expect_call("States.Format('\\{\\} {} \\'q\\' back\\\\slash', 'v')", "{}",
	            "\"{} v 'q' back\\\\slash\"");
	expect_call("States.Format('no placeholders')", "{}", "\"no placeholders\"");
	/* the template may come from the input (AWS docs: States.Format($.template, $.name)) */
	expect_call("States.Format($.template, $.name)",
	            "{\"template\":\"Hello, my name is {}.\",\"name\":\"Arnav\"}",
	            "\"Hello, my name is Arnav.\"");
	expect_call_fails("States.Format($.template, $.name)",
	                  "{\"template\":\"{} and {}\",\"name\":\"x\"}", "2 placeholders");
	expect_call_fails("States.Format($.t)", "{\"t\":5}", "must be a string");
}

Test(sm_intrinsic, format_compile_checks)
{
	expect_bad_call("States.Format('{} {}', 1)", "2 placeholders '{}' but 1 argument");
	expect_bad_call("States.Format('x', 1)", "0 placeholders");
	expect_bad_call("States.Format(1)", "argument 1 of States.Format must be a string");
	expect_bad_call("States.Format()", "at least 1 argument");
}

Test(sm_intrinsic, string_literal_escapes)
{
	/* corpus: intrinsic_functions.TestGeneric.test_escape_sequence (a real newline) */
	expect_call("States.StringSplit('Hello\nWorld', '\n')", "{}", "[\"Hello\",\"World\"]");
	/* corpus: scenarios...test_illegal_escapes_ESCAPE_SEQUENCES_ILLEGAL_INTRINSIC_FUNCTION(_2)
	 */
	expect_bad_call(
	        "States.StringToJson('{\"text\":\"An \\\"escaped double quote\\\" here\"}')",
	        "invalid escape");
	expect_bad_call("States.Format('He said, \\\"Hello, {}!\\\"', 'Test \\\"Name\\\" Here')",
	                "invalid escape");
	expect_bad_call("States.Array('a\\nb')", "invalid escape");
	expect_bad_call("States.Array('open)", "unterminated string literal");
	expect_call("States.Array('it\\'s', 'a\\\\b')", "{}", "[\"it's\",\"a\\\\b\"]");
}

Test(sm_intrinsic, json_functions)
{
	/* corpus: intrinsic_functions.TestJsonManipulation.test_string_to_json (all ten) */
	expect_fn("StringToJson", "\"\"", "null");
	expect_fn("StringToJson", "\" \"", "null");
	expect_fn("StringToJson", "\"null\"", "null");
	expect_fn("StringToJson", "\"-0\"", "0");
	expect_fn("StringToJson", "\"1\"", "1");
	expect_fn("StringToJson", "\"1.1\"", "1.1");
	expect_fn("StringToJson", "\"true\"", "true");
	expect_fn("StringToJson", "\"\\\"HelloWorld\\\"\"", "\"HelloWorld\"");
	expect_fn("StringToJson", "\"[1, 2, \\\"HelloWorld\\\"]\"", "[1,2,\"HelloWorld\"]");
	expect_fn("StringToJson", "\"{\\\"Arg1\\\": 1, \\\"Arg2\\\": []}\"",
	          "{\"Arg1\":1,\"Arg2\":[]}");
	expect_call_fails("States.StringToJson($.s)", "{\"s\":\"{nope\"}", "could not parse");
	expect_call_fails("States.StringToJson($.s)", "{\"s\":3}", "needs a string");
	/* corpus: intrinsic_functions.TestJsonManipulation.test_json_to_string (all eight) */
	expect_fn("JsonToString", "null", "\"null\"");
	expect_fn("JsonToString", "0", "\"0\"");
	expect_fn("JsonToString", "1", "\"1\"");
	expect_fn("JsonToString", "1.1", "\"1.1\"");
	expect_fn("JsonToString", "true", "\"true\"");
	expect_fn("JsonToString", "\"HelloWorld\"", "\"\\\"HelloWorld\\\"\"");
	expect_fn("JsonToString", "[1, 2, \"HelloWorld\"]", "\"[1,2,\\\"HelloWorld\\\"]\"");
	expect_fn("JsonToString", "{\"Arg1\": 1, \"Arg2\": []}",
	          "\"{\\\"Arg1\\\":1,\\\"Arg2\\\":[]}\"");
	expect_fn("JsonToString", "\"tab\\tnl\\n\\u00e9\"", "\"\\\"tab\\\\tnl\\\\n\u00e9\\\"\"");
	/* corpus: intrinsic_functions.TestJsonManipulation.test_json_merge */
	expect_call("States.JsonMerge($.FunctionInput.fst, $.FunctionInput.snd, false)",
	            "{\"FunctionInput\":{\"fst\":{\"a\":{\"a1\":1,\"a2\":2},\"b\":2,\"d\":3},"
	            "\"snd\":{\"a\":{\"a3\":1,\"a4\":2},\"c\":3,\"d\":4}}}",
	            "{\"a\":{\"a3\":1,\"a4\":2},\"b\":2,\"c\":3,\"d\":4}");
	/* corpus: intrinsic_functions.TestJsonManipulation.test_json_merge_escaped_argument */
	expect_call("States.JsonMerge(States.StringToJson('{\"constant_in_literal\": \"false\"}'), "
	            "$$.Execution.Input, false)",
	            "{}", "{\"constant_in_literal\":\"false\",\"input-value\":0,\"csv\":\"a,b\"}");
	expect_bad_call("States.JsonMerge($.a, $.b, true)", "shallow merge");
	expect_bad_call("States.JsonMerge($.a, $.b, 'false')", "must be a boolean");
	expect_call_fails("States.JsonMerge($.a, $.b, $.deep)", "{\"a\":{},\"b\":{},\"deep\":true}",
	                  "shallow merge");
	expect_call_fails("States.JsonMerge($.a, $.b, false)", "{\"a\":{},\"b\":[]}",
	                  "needs two objects");
}

Test(sm_intrinsic, arrays)
{
	/* corpus: intrinsic_functions.TestArray.test_array_0 / test_array_2 */
	expect_call("States.Array()", "{}", "[]");
	expect_fn2("Array", "null", "null", "[null,null]");
	expect_fn2("Array", "1.1", "1.1", "[1.1,1.1]");
	expect_fn2("Array", "{\"Arg1\":1,\"Arg2\":[]}", "{\"Arg1\":1,\"Arg2\":[]}",
	           "[{\"Arg1\":1,\"Arg2\":[]},{\"Arg1\":1,\"Arg2\":[]}]");
	expect_call("States.Array('a', 1, -2.5, true, false, null, States.Array())", "{}",
	            "[\"a\",1,-2.5,true,false,null,[]]");
	/* corpus: intrinsic_functions.TestArray.test_array_contains (all nine) */
	expect_fn2("ArrayContains", "[]", "null", "false");
	expect_fn2("ArrayContains", "[]", "[]", "false");
	expect_fn2("ArrayContains", "[]", "1", "false");
	expect_fn2("ArrayContains", "[[1,2,3],2]", "null", "false");
	expect_fn2("ArrayContains", "[[1,2,3],2]", "[1,2,3]", "true");
	expect_fn2("ArrayContains", "[{\"1\":2,\"2\":[]}]", "[]", "false");
	expect_fn2("ArrayContains", "[{\"1\":2,\"2\":[]}]", "{\"1\":2,\"2\":[]}", "true");
	expect_fn2("ArrayContains", "[true,false]", "true", "true");
	expect_fn2("ArrayContains", "[true,false]", "false", "true");
	/* corpus: intrinsic_functions.TestArray.test_array_partition (a sample of the 25) */
	expect_fn2("ArrayPartition", "[]", "1", "[]");
	expect_fn2("ArrayPartition", "[0,1]", "1", "[[0],[1]]");
	expect_fn2("ArrayPartition", "[0,1]", "5", "[[0,1]]");
	expect_fn2("ArrayPartition", "[0,1,2]", "2", "[[0,1],[2]]");
	expect_fn2("ArrayPartition", "[0,1,2,3]", "3", "[[0,1,2],[3]]");
	expect_fn2("ArrayPartition", "[0,1,2,3]", "2", "[[0,1],[2,3]]");
	expect_call_fails("States.ArrayPartition($.a, 0)", "{\"a\":[1]}", "positive integer");
	expect_call_fails("States.ArrayPartition($.a, $.n)", "{\"a\":[1],\"n\":1.5}",
	                  "positive integer");
	expect_call_fails("States.ArrayPartition($.a, 1)", "{\"a\":{}}", "must be an array");
	expect_bad_call("States.ArrayPartition($.a, 'x')", "must be an integer");
	expect_bad_call("States.ArrayPartition($.a, 1.5)", "must be an integer");
	expect_bad_call("States.ArrayPartition('a', 1)", "must be an array");
	/* corpus: intrinsic_functions.TestArray.test_array_range (all four) */
	expect_call("States.ArrayRange(0, 9, 3)", "{}", "[0,3,6,9]");
	expect_call("States.ArrayRange(0, 10, 3)", "{}", "[0,3,6,9]");
	expect_call("States.ArrayRange(1, 9, 9)", "{}", "[1]");
	expect_call("States.ArrayRange(1, 9, 2)", "{}", "[1,3,5,7,9]");
	expect_call("States.ArrayRange(5, 1, -2)", "{}", "[5,3,1]");
	expect_call("States.ArrayRange(5, 1, 1)", "{}", "[]");
	expect_call_fails("States.ArrayRange(1, 1001, 1)", "{}", "at most 1000");
	expect_call_fails("States.ArrayRange(1, 2, 0)", "{}", "cannot be 0");
	expect_call_fails("States.ArrayRange($.a, 2, 1)", "{\"a\":\"1\"}", "must be integers");
	expect_bad_call("States.ArrayRange(1, 2)", "takes 3 arguments, got 2");
}

Test(sm_intrinsic, array_range_limit_is_inclusive)
{
	struct sm_intrinsic *f;
	struct sm_fault fault;
	json_t *out;
	cr_assert_eq(sm_intrinsic_compile("States.ArrayRange(1, 1000, 1)", &f, NULL), SL_OK);
	cr_assert_eq(sm_intrinsic_eval(f, NULL, NULL, &out, &fault), SL_OK);
	cr_assert_eq(json_array_size(out), 1000);
	cr_assert_eq(json_integer_value(json_array_get(out, 999)), 1000);
	json_decref(out);
	sm_intrinsic_free(f);
}

Test(sm_intrinsic, array_items)
{
	/* corpus: intrinsic_functions.TestSfnIntrinsicFunctionsArray.test_array_get_item,
	 * test_array_length, test_array_unique */
	expect_fn2("ArrayGetItem", "[1,2,3,4,5,6,7,8,9]", "5", "6");
	expect_fn("ArrayLength", "[1,2,3,4,5,6,7,8,9]", "9");
	const char *dups = "[null,null,true,true,false,false,1,1,1.1,0,0,\"HelloWorld\","
	                   "\"HelloWorld\",[],[],[null],[null],{\"a\":1,\"b\":2},"
	                   "{\"a\":1,\"b\":2},{\"a\":1,\"b\":1}]";
	expect_fn("ArrayLength", dups, "20");
	expect_fn("ArrayUnique", dups,
	          "[null,true,false,1,1.1,0,\"HelloWorld\",[],[null],{\"a\":1,\"b\":2},"
	          "{\"a\":1,\"b\":1}]");
	expect_fn("ArrayLength", "[]", "0");
	expect_call_fails("States.ArrayGetItem($.a, 3)", "{\"a\":[1,2,3]}", "out of bounds");
	expect_call_fails("States.ArrayGetItem($.a, $.i)", "{\"a\":[1],\"i\":-1}",
	                  "non-negative integer");
	expect_call_fails("States.ArrayLength($.a)", "{\"a\":\"abc\"}", "must be an array");
	expect_call_fails("States.ArrayUnique($.a)", "{\"a\":null}", "must be an array");
	/* corpus: intrinsic_functions.TestGeneric.test_nested_calls_1 / _2 */
	expect_call("States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), 0)", "{}",
	            "\"sm\"");
	expect_call("States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), "
	            "States.MathAdd(States.ArrayLength(States.StringSplit($$.StateMachine.Name, "
	            "'-')), -1))",
	            "{}", "\"b\"");
}

Test(sm_intrinsic, base64)
{
	/* corpus: intrinsic_functions.TestEncodeDecode.test_base_64_encode / _decode */
	expect_fn("Base64Encode", "\"\"", "\"\"");
	expect_fn("Base64Encode", "\"Data to encode\"", "\"RGF0YSB0byBlbmNvZGU=\"");
	expect_fn("Base64Decode", "\"\"", "\"\"");
	expect_fn("Base64Decode", "\"RGF0YSB0byBlbmNvZGU=\"", "\"Data to encode\"");
	expect_fn("Base64Encode", "\"ab\"", "\"YWI=\"");
	expect_fn("Base64Encode", "\"\u00e9t\u00e9\"", "\"w6l0w6k=\"");
	expect_fn("Base64Decode", "\"w6l0w6k=\"", "\"\u00e9t\u00e9\"");
	expect_fn("Base64Decode", "\"YWI\"", "\"ab\"");
	expect_call_fails("States.Base64Decode($.s)", "{\"s\":\"@@@@\"}", "not valid Base64");
	expect_call_fails("States.Base64Decode($.s)", "{\"s\":\"YWJjZ\"}", "not valid Base64");
	expect_call_fails("States.Base64Decode($.s)", "{\"s\":\"/w==\"}", "not valid UTF-8");
	expect_call_fails("States.Base64Encode($.s)", "{\"s\":1}", "needs a string");
}

static json_t *
long_string_input(size_t n, char c)
{
	char *s = malloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	json_t *in = json_pack("{s:s}", "s", s);
	free(s);
	return in;
}

Test(sm_intrinsic, encode_and_hash_limits)
{
	const char *calls[] = { "States.Base64Encode($.s)", "States.Base64Decode($.s)",
		                "States.Hash($.s, 'SHA-256')" };
	for (size_t i = 0; i < 3; i++) {
		struct sm_intrinsic *f;
		struct sm_fault fault;
		json_t *out = NULL;
		cr_assert_eq(sm_intrinsic_compile(calls[i], &f, NULL), SL_OK);
		json_t *ok = long_string_input(10000, 'A'), *big = long_string_input(10001, 'A');
		cr_assert_eq(sm_intrinsic_eval(f, ok, NULL, &out, &fault), SL_OK, "%s: %s",
		             calls[i], fault.cause);
		json_decref(out);
		out = NULL;
		cr_assert_eq(sm_intrinsic_eval(f, big, NULL, &out, &fault), SL_ERR_INVALID_ARG);
		cr_assert(strstr(fault.cause, "limited to 10000 characters"), "%s", fault.cause);
		json_decref(ok);
		json_decref(big);
		sm_intrinsic_free(f);
	}
}

Test(sm_intrinsic, hash)
{
	/* corpus: intrinsic_functions.TestHashCalculations.test_hash (all five) */
	expect_fn2("Hash", "\"input data\"", "\"MD5\"", "\"812f45842bc6d66ee14572ce20db8e86\"");
	expect_fn2("Hash", "\"input data\"", "\"SHA-1\"",
	           "\"aaff4a450a104cd177d28d18d74485e8cae074b7\"");
	expect_fn2("Hash", "\"input data\"", "\"SHA-256\"",
	           "\"b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3\"");
	expect_fn2(
	        "Hash", "\"input data\"", "\"SHA-384\"",
	        "\"d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb2"
	        "7e1fb9e9374a15562\"");
	expect_fn2(
	        "Hash", "\"input data\"", "\"SHA-512\"",
	        "\"6ce4adb348546d4f449c4d25aad9a7c9cb711d9e91982d3f0b29ca2f3f47d4ce2deba23bf2954f0"
	        "f1d593fc50283731a533d30d425402d4f91316d871303aac4\"");
	expect_call("States.Hash('input data', 'MD5')", "{}",
	            "\"812f45842bc6d66ee14572ce20db8e86\"");
	expect_call_fails("States.Hash('x', 'SHA-3')", "{}", "does not support the algorithm");
	expect_call_fails("States.Hash('x', $.a)", "{\"a\":1}", "must be a string");
}

Test(sm_intrinsic, math_add)
{
	/* corpus: intrinsic_functions.TestMathOperations.test_math_add (all seventeen) */
	static const char *cases[][3] = {
		{ "-9", "3", "-6" },       { "1.49", "1.5", "3" },    { "-1.5", "0", "-1" },
		{ "-1.51", "0", "-2" },    { "0.5", "0", "1" },       { "2.5", "0", "3" },
		{ "3.5", "0", "4" },       { "-0.5", "0.5", "1" },    { "-0.5", "0", "0" },
		{ "-2.5", "0", "-2" },     { "1.5", "1.51", "4" },    { "-3.5", "0", "-3" },
		{ "-1.49", "-1.5", "-2" }, { "-1.5", "-1.51", "-3" }, { "1.49", "0", "1" },
		{ "1.49", "-1.49", "0" },  { "1.5", "0", "2" },       { "1.51", "0", "2" },
		{ "-1.49", "0", "-1" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_fn2("MathAdd", cases[i][0], cases[i][1], cases[i][2]);
	expect_call("States.MathAdd(2147483647, -1)", "{}", "2147483646");
	expect_call_fails("States.MathAdd($.a, 1)", "{\"a\":\"1\"}", "must be numbers");
	expect_call_fails("States.MathAdd($.a, 1)", "{\"a\":2147483648}", "must be numbers");
	expect_bad_call("States.MathAdd(1)", "takes 2 arguments, got 1");
	expect_bad_call("States.MathAdd(1, 'a')", "argument 2 of States.MathAdd must be a number");
}

Test(sm_intrinsic, math_random)
{
	struct sm_intrinsic *f;
	struct sm_fault fault;
	json_t *a, *b;
	cr_assert_eq(sm_intrinsic_compile("States.MathRandom(1, 999, 1234)", &f, NULL), SL_OK);
	cr_assert_eq(sm_intrinsic_eval(f, NULL, NULL, &a, &fault), SL_OK);
	cr_assert_eq(sm_intrinsic_eval(f, NULL, NULL, &b, &fault), SL_OK);
	cr_assert(json_is_integer(a));
	cr_assert(json_equal(a, b), "a seed gives the same number every time");
	cr_assert(json_integer_value(a) >= 1 && json_integer_value(a) < 999);
	json_decref(a);
	json_decref(b);
	sm_intrinsic_free(f);
	cr_assert_eq(sm_intrinsic_compile("States.MathRandom($.lo, $.hi)", &f, NULL), SL_OK);
	json_t *in = J("{\"lo\":-3,\"hi\":3}");
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(sm_intrinsic_eval(f, in, NULL, &a, &fault), SL_OK);
		json_int_t v = json_integer_value(a);
		cr_assert(v >= -3 && v < 3, "%lld out of [-3, 3)", (long long)v);
		json_decref(a);
	}
	json_decref(in);
	sm_intrinsic_free(f);
	expect_call("States.MathRandom(7, 8)", "{}", "7");
	expect_call_fails("States.MathRandom(5, 5)", "{}", "must be greater than its start");
	expect_call_fails("States.MathRandom($.a, 5)", "{\"a\":1.5}", "must be integers");
	expect_bad_call("States.MathRandom(1)", "takes 2 to 3 arguments, got 1");
}

Test(sm_intrinsic, string_split)
{
	/* corpus: intrinsic_functions.TestStringOperations.test_string_split (all seven) */
	expect_fn2("StringSplit", "\" \"", "\",\"", "[\" \"]");
	expect_fn2("StringSplit", "\" , \"", "\",\"", "[\" \",\" \"]");
	expect_fn2("StringSplit", "\", , ,\"", "\",\"", "[\" \",\" \"]");
	expect_fn2("StringSplit", "\",,,,\"", "\",\"", "[]");
	expect_fn2("StringSplit", "\"1,2,3,4,5\"", "\",\"", "[\"1\",\"2\",\"3\",\"4\",\"5\"]");
	expect_fn2("StringSplit", "\"This.is+a,test=string\"", "\".+,=\"",
	           "[\"This\",\"is\",\"a\",\"test\",\"string\"]");
	expect_fn2("StringSplit", "\"split on T and \\nnew line\"", "\"T\\n\"",
	           "[\"split on \",\" and \",\"new line\"]");
	/* corpus: intrinsic_functions.TestStringOperations.test_string_split_context_object */
	expect_call("States.StringSplit($$.Execution.Input.csv, ',')", "{}", "[\"a\",\"b\"]");
	/* multi-byte delimiters are whole characters */
	expect_fn2("StringSplit", "\"a\u00e9b\u00e8c\"", "\"\u00e9\"", "[\"a\",\"b\u00e8c\"]");
	expect_call_fails("States.StringSplit($.a, ',')", "{\"a\":1}", "needs two strings");
}

Test(sm_intrinsic, uuid)
{
	struct sm_intrinsic *f;
	struct sm_fault fault;
	json_t *a, *b;
	cr_assert_eq(sm_intrinsic_compile("States.UUID()", &f, NULL), SL_OK);
	cr_assert_eq(sm_intrinsic_eval(f, NULL, NULL, &a, &fault), SL_OK);
	cr_assert_eq(sm_intrinsic_eval(f, NULL, NULL, &b, &fault), SL_OK);
	const char *s = json_string_value(a);
	cr_assert_eq(strlen(s), 36);
	cr_assert_eq(s[14], '4', "version 4: %s", s);
	cr_assert(strchr("89ab", s[19]), "RFC 4122 variant: %s", s);
	cr_assert_str_neq(s, json_string_value(b));
	json_decref(a);
	json_decref(b);
	sm_intrinsic_free(f);
	expect_bad_call("States.UUID(1)", "takes 0 arguments, got 1");
}

Test(sm_intrinsic, syntax_and_arity)
{
	expect_bad_call("States.Nope()", "unknown intrinsic function");
	expect_bad_call("States.Array(", "expected a string in single quotes");
	expect_bad_call("States.Array(1 2)", "expected ',' or ')'");
	expect_bad_call("States.Array(1) x", "unexpected text after the call");
	expect_bad_call("States.Array(foo)", "expected a string in single quotes");
	expect_bad_call("States.Array($.a b)", "argument $.a b");
	expect_bad_call("States.ArrayLength()", "takes 1 argument, got 0");
	expect_bad_call("States.StringToJson(1)", "must be a string");
	expect_bad_call("States.Array(1e999)", "invalid number");
	expect_bad_call("States.Array('\xff')", "not valid UTF-8");
	cr_assert_eq(sm_intrinsic_compile(NULL, &(struct sm_intrinsic *) { NULL }, NULL),
	             SL_ERR_INVALID_DEFINITION);
	/* paths with brackets, quotes, commas and filters inside arguments */
	expect_call("States.Array($['a,b'], $.l[?(@.x == ')')].x, $.l[0,1].x)",
	            "{\"a,b\":1,\"l\":[{\"x\":\")\"},{\"x\":2}]}", "[1,[\")\"],[\")\",2]]");
	expect_call("States.Array ( 1 , 'x' )  ", "{}", "[1,\"x\"]");
}

Test(sm_intrinsic, nesting_limit)
{
	char call[1024] = "";
	for (int i = 0; i < 10; i++)
		strcat(call, "States.Array(");
	strcat(call, "1");
	for (int i = 0; i < 10; i++)
		strcat(call, ")");
	expect_call(call, "{}", "[[[[[[[[[[1]]]]]]]]]]");
	char deeper[1024] = "States.Array(";
	strcat(deeper, call);
	strcat(deeper, ")");
	expect_bad_call(deeper, "nested at most 10 deep");
}

Test(sm_intrinsic, missing_path_argument)
{
	expect_call_fails("States.Array($.nope)", "{\"a\":1}",
	                  "The JSONPath '$.nope' given to States.Array could not be found in the "
	                  "input '{\"a\":1}'");
	/* a multi path over missing data is [] and not a failure */
	expect_call("States.ArrayLength($.nope[*])", "{}", "0");
}

Test(sm_intrinsic, random_text_never_crashes)
{
	static const char *names[]
	        = { "States.Array(",   "States.Format(",    "States.ArrayRange(",
		    "States.Hash(",    "States.JsonMerge(", "States.StringSplit(",
		    "States.MathAdd(", "States.Nope(" };
	json_t *doc = J("{\"a\":[1,2],\"s\":\"x,y\",\"o\":{}}");
	int compiled = 0;
	for (int i = 0; i < 20000; i++) {
		char text[256];
		struct sm_intrinsic *f;
		struct sm_fault fault;
		static const char *seeds[] = {
			"States.Format('{} and \\{\\} {}', $.a[0], States.Array(1, 'x'))",
			"States.ArrayRange(1, States.MathAdd($.a[1], 3), 1)",
			"States.JsonMerge($.o, States.StringToJson('{\"k\": 1}'), false)",
			"States.StringSplit($.s, ','), States.Hash($.s, 'MD5')",
			"States.ArrayGetItem(States.StringSplit($$.s, ','), 1)",
		};
		if (i % 4 == 0) {
			fuzz_text(text, sizeof(text) - 2, names[fuzz_next(8)]);
			if (i % 8)
				strcat(text, ")");
		} else {
			fuzz_mutate(text, sizeof(text), seeds[fuzz_next(5)]);
		}
		sl_err rc = sm_intrinsic_compile(text, &f, NULL);
		cr_assert(rc == SL_OK || rc == SL_ERR_INVALID_DEFINITION, "%s: %s", text,
		          sl_err_name(rc));
		if (rc)
			continue;
		compiled++;
		json_t *out = NULL;
		rc = sm_intrinsic_eval(f, doc, doc, &out, &fault);
		cr_assert(rc == SL_OK || rc == SL_ERR_INVALID_ARG, "%s: %s", text, sl_err_name(rc));
		json_decref(out);
		sm_intrinsic_free(f);
	}
	cr_log_info("%d of 20000 random calls compiled", compiled);
	json_decref(doc);
}
