/*
 * test_patterns.c - the pattern engine operator by operator, the flattener, the machine
 * (add/remove, many rules, stats), limits, and an OOM walk over compile and match.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <pthread.h>

#include "bus/pat_internal.h"
#include "bus/pattern.h"
#include "common/sl_alloc.h"
#include "common/sl_err.h"

static void
setup(void)
{
	sl_alloc_init();
}

TestSuite(patterns, .init = setup);

static void
expect(const char *pattern, const char *event, bool want, int line)
{
	struct sl_error err;
	sl_error_clear(&err);
	bool match = !want;
	sl_err rc = pat_test(pattern, event, &match, &err);
	cr_assert_eq(rc, SL_OK, "line %d: %s on %s: %s", line, pattern, event, sl_error_text(&err));
	cr_assert_eq(match, want, "line %d: %s on %s: expected %s", line, pattern, event,
	             want ? "a match" : "no match");
}

#define M(p, e) expect(p, e, true, __LINE__)
#define N(p, e) expect(p, e, false, __LINE__)

static void
expect_error(const char *pattern, sl_err code, const char *msg, int line)
{
	struct sl_error err;
	sl_error_clear(&err);
	bool match;
	sl_err rc = pat_test(pattern, "{}", &match, &err);
	cr_assert_eq(rc, code, "line %d: %s: got %s (%s)", line, pattern, sl_err_name(rc),
	             sl_error_text(&err));
	cr_assert(strstr(sl_error_text(&err), msg), "line %d: %s: message '%s' lacks '%s'", line,
	          pattern, sl_error_text(&err), msg);
}

#define E(p, msg) expect_error(p, SL_ERR_INVALID_PATTERN, msg, __LINE__)

Test(patterns, exact_values)
{
	M("{\"a\":[\"x\"]}", "{\"a\":\"x\"}");
	N("{\"a\":[\"x\"]}", "{\"a\":\"X\"}");
	N("{\"a\":[\"x\"]}", "{\"b\":\"x\"}");
	M("{\"a\":[\"x\",\"y\"]}", "{\"a\":\"y\"}");
	M("{\"a\":[300]}", "{\"a\":300.0}");
	M("{\"a\":[300]}", "{\"a\":3e2}");
	N("{\"a\":[300]}", "{\"a\":\"300\"}");
	N("{\"a\":[\"300\"]}", "{\"a\":300}");
	M("{\"a\":[0]}", "{\"a\":-0.0}");
	M("{\"a\":[true]}", "{\"a\":true}");
	N("{\"a\":[true]}", "{\"a\":\"true\"}");
	M("{\"a\":[false]}", "{\"a\":false}");
	M("{\"a\":[null]}", "{\"a\":null}");
	N("{\"a\":[null]}", "{\"a\":\"null\"}");
	N("{\"a\":[null]}", "{}");
	M("{\"a\":[\"\"]}", "{\"a\":\"\"}");
	N("{\"a\":[\"\"]}", "{\"a\":null}");
	/* a string holding JSON is not parsed */
	N("{\"a\":{\"b\":[\"x\"]}}", "{\"a\":\"{\\\"b\\\":\\\"x\\\"}\"}");
}

Test(patterns, nesting_arrays_and_dots)
{
	M("{\"a\":{\"b\":[\"x\"]}}", "{\"a\":{\"b\":\"x\"}}");
	M("{\"a\":{\"b\":[\"x\"]}}", "{\"a.b\":\"x\"}");
	M("{\"a.b\":[\"x\"]}", "{\"a\":{\"b\":\"x\"}}");
	M("{\"a\":[\"x\"]}", "{\"a\":[\"y\",\"x\"]}");
	N("{\"a\":[\"x\"]}", "{\"a\":[]}");
	M("{\"a\":{\"b\":[1]}}", "{\"a\":[{\"b\":2},{\"b\":1}]}");
	M("{\"a\":[\"x\"]}", "{\"a\":[[\"y\"],[\"x\"]]}");
	/* two fields must come from the same element of an array of objects */
	M("{\"a\":{\"b\":[1],\"c\":[2]}}", "{\"a\":[{\"b\":1,\"c\":2}]}");
	N("{\"a\":{\"b\":[1],\"c\":[2]}}", "{\"a\":[{\"b\":1},{\"c\":2}]}");
	M("{\"a\":{\"b\":[1],\"c\":[2]}}", "{\"a\":[{\"b\":1},{\"b\":1,\"c\":2}]}");
	/* fields outside the array go with any element */
	M("{\"a\":{\"b\":[1]},\"v\":[\"k\"]}", "{\"a\":[{\"b\":1}],\"v\":\"k\"}");
	/* objects are not leaves */
	N("{\"a\":[\"x\"]}", "{\"a\":{\"b\":\"x\"}}");
	/* fields the pattern does not name are ignored, whatever their shape */
	M("{\"a\":[1]}", "{\"z\":[{\"q\":[1,{\"r\":null}]}],\"a\":1,\"y\":\"\\u00e9\"}");
	/* duplicate key in the pattern: the last one wins */
	M("{\"a\":[\"x\"],\"a\":[\"y\"]}", "{\"a\":\"y\"}");
	N("{\"a\":[\"x\"],\"a\":[\"y\"]}", "{\"a\":\"x\"}");
	/* an empty pattern matches everything */
	M("{}", "{\"a\":1}");
}

Test(patterns, prefix_suffix)
{
	M("{\"a\":[{\"prefix\":\"us-\"}]}", "{\"a\":\"us-east\"}");
	N("{\"a\":[{\"prefix\":\"us-\"}]}", "{\"a\":\"eu-west\"}");
	M("{\"a\":[{\"prefix\":\"\"}]}", "{\"a\":\"\"}");
	N("{\"a\":[{\"prefix\":\"\"}]}", "{\"a\":5}");
	N("{\"a\":[{\"prefix\":\"1\"}]}", "{\"a\":12}");
	M("{\"a\":[{\"prefix\":{\"equals-ignore-case\":\"US-\"}}]}", "{\"a\":\"us-east\"}");
	M("{\"a\":[{\"suffix\":\".png\"}]}", "{\"a\":\"x.png\"}");
	N("{\"a\":[{\"suffix\":\".png\"}]}", "{\"a\":\"x.PNG\"}");
	M("{\"a\":[{\"suffix\":{\"equals-ignore-case\":\".png\"}}]}", "{\"a\":\"x.PNG\"}");
	M("{\"a\":[{\"suffix\":\"\"}]}", "{\"a\":\"abc\"}");
	M("{\"a\":[{\"prefix\":\"ab\"},{\"prefix\":\"abc\"}]}", "{\"a\":\"abcd\"}");
	E("{\"a\":[{\"prefix\":[\"x\"]}]}", "prefix match pattern must be a string");
	E("{\"a\":[{\"suffix\":1}]}", "suffix match pattern must be a string");
}

Test(patterns, equals_ignore_case_unicode)
{
	M("{\"a\":[{\"equals-ignore-case\":\"alice\"}]}", "{\"a\":\"ALICE\"}");
	N("{\"a\":[{\"equals-ignore-case\":\"alice\"}]}", "{\"a\":\"alicia\"}");
	M("{\"a\":[{\"equals-ignore-case\":\"STRASSE\"}]}", "{\"a\":\"stra\\u00dfe\"}");
	M("{\"a\":[{\"equals-ignore-case\":\"stra\xc3\x9f\x65\"}]}", "{\"a\":\"STRASSE\"}");
	M("{\"a\":[{\"equals-ignore-case\":\"\xce\x9f\xce\xa3\"}]}",
	  "{\"a\":\"\xce\xbf\xcf\x82\"}");
	M("{\"a\":[{\"equals-ignore-case\":\"\xc3\x89\x43OLE\"}]}", "{\"a\":\"\xc3\xa9\x63ole\"}");
	N("{\"a\":[{\"equals-ignore-case\":\"1\"}]}", "{\"a\":1}");
	E("{\"a\":[{\"equals-ignore-case\":1}]}",
	  "equals-ignore-case match pattern must be a string");
}

Test(patterns, wildcard)
{
	M("{\"a\":[{\"wildcard\":\"*/lib/*.jar\"}]}", "{\"a\":\"/usr/lib/x.jar\"}");
	N("{\"a\":[{\"wildcard\":\"*/lib/*.jar\"}]}", "{\"a\":\"/usr/lib/x.war\"}");
	M("{\"a\":[{\"wildcard\":\"a*\"}]}", "{\"a\":\"a\"}");
	M("{\"a\":[{\"wildcard\":\"*\"}]}", "{\"a\":\"\"}");
	N("{\"a\":[{\"wildcard\":\"\"}]}", "{\"a\":\"x\"}");
	M("{\"a\":[{\"wildcard\":\"\"}]}", "{\"a\":\"\"}");
	M("{\"a\":[{\"wildcard\":\"a*b*a\"}]}", "{\"a\":\"aba\"}");
	N("{\"a\":[{\"wildcard\":\"a*b*a\"}]}", "{\"a\":\"ab\"}");
	M("{\"a\":[{\"wildcard\":\"a*aa\"}]}", "{\"a\":\"aaa\"}");
	N("{\"a\":[{\"wildcard\":\"a*aa\"}]}", "{\"a\":\"aa\"}");
	/* escapes: \\* is a literal star, \\\\ a literal backslash */
	M("{\"a\":[{\"wildcard\":\"x\\\\*y\"}]}", "{\"a\":\"x*y\"}");
	N("{\"a\":[{\"wildcard\":\"x\\\\*y\"}]}", "{\"a\":\"xzy\"}");
	M("{\"a\":[{\"wildcard\":\"x\\\\\\\\*\"}]}", "{\"a\":\"x\\\\abc\"}");
	N("{\"a\":[{\"wildcard\":\"1*\"}]}", "{\"a\":12}");
	E("{\"a\":[{\"wildcard\":\"x\\\\y\"}]}", "Invalid escape character at pos 1");
	E("{\"a\":[{\"wildcard\":\"ab**\"}]}", "Consecutive wildcard characters at pos 3");
	E("{\"a\":[{\"wildcard\":\"*:*:*:*:*:event-bus/*\"}]}", "Rule is too complex");
	E("{\"a\":[{\"wildcard\":[\"x\"]}]}", "wildcard match pattern must be a string");
}

Test(patterns, anything_but)
{
	const char *p = "{\"a\":[{\"anything-but\":\"x\"}]}";
	M(p, "{\"a\":\"y\"}");
	N(p, "{\"a\":\"x\"}");
	M(p, "{\"a\":null}");
	M(p, "{\"a\":5}");
	N(p, "{}");
	M(p, "{\"a\":[\"x\",\"y\"]}");
	N(p, "{\"a\":[\"x\",\"x\"]}");
	M("{\"a\":[{\"anything-but\":[100,200]}]}", "{\"a\":300}");
	N("{\"a\":[{\"anything-but\":[100,200]}]}", "{\"a\":100.0}");
	M("{\"a\":[{\"anything-but\":[100,200]}]}", "{\"a\":\"100\"}");
	M("{\"a\":[{\"anything-but\":{\"prefix\":\"init\"}}]}", "{\"a\":\"done\"}");
	N("{\"a\":[{\"anything-but\":{\"prefix\":\"init\"}}]}", "{\"a\":\"initial\"}");
	M("{\"a\":[{\"anything-but\":{\"prefix\":\"1\"}}]}", "{\"a\":12}");
	N("{\"a\":[{\"anything-but\":{\"prefix\":[\"a\",\"b\"]}}]}", "{\"a\":\"bb\"}");
	N("{\"a\":[{\"anything-but\":{\"suffix\":\".png\"}}]}", "{\"a\":\"x.png\"}");
	M("{\"a\":[{\"anything-but\":{\"suffix\":\".png\"}}]}", "{\"a\":\"x.jpg\"}");
	N("{\"a\":[{\"anything-but\":{\"equals-ignore-case\":[\"X\",\"y\"]}}]}", "{\"a\":\"Y\"}");
	M("{\"a\":[{\"anything-but\":{\"equals-ignore-case\":\"X\"}}]}", "{\"a\":\"z\"}");
	N("{\"a\":[{\"anything-but\":{\"wildcard\":\"*/dir/*\"}}]}", "{\"a\":\"/a/dir/b\"}");
	M("{\"a\":[{\"anything-but\":{\"wildcard\":\"\"}}]}", "{\"a\":\"x\"}");
	E("{\"a\":[{\"anything-but\":null}]}", "Value of anything-but must be an array or single");
	E("{\"a\":[{\"anything-but\":[\"a\",true]}]}", "Inside anything but list");
	E("{\"a\":[{\"anything-but\":{\"prefix\":\"\"}}]}", "Null prefix/suffix not allowed");
	E("{\"a\":[{\"anything-but\":{\"prefix\":{\"equals-ignore-case\":\"x\"}}}]}",
	  "Value of anything-but must be an array or single");
	E("{\"a\":[{\"anything-but\":{\"equals-ignore-case\":[1]}}]}",
	  "Inside anything-but/equals-ignore-case list");
	E("{\"a\":[{\"anything-but\":{\"contains\":\"x\"}}]}", "Unsupported anything-but pattern");
	E("{\"a\":[{\"anything-but\":[]}]}", "Empty arrays are not allowed");
}

Test(patterns, numeric)
{
	const char *p = "{\"a\":[{\"numeric\":[\">\",0,\"<=\",5]}]}";
	M(p, "{\"a\":5}");
	M(p, "{\"a\":0.0001}");
	N(p, "{\"a\":0}");
	N(p, "{\"a\":5.0001}");
	N(p, "{\"a\":\"3\"}");
	N(p, "{\"a\":null}");
	M(p, "{\"a\":[10,3]}");
	M("{\"a\":[{\"numeric\":[\"=\",3.018e2]}]}", "{\"a\":301.8}");
	M("{\"a\":[{\"numeric\":[\"=\",5]}]}", "{\"a\":5.0}");
	N("{\"a\":[{\"numeric\":[\"=\",5]}]}", "{\"a\":\"5\"}");
	M("{\"a\":[{\"numeric\":[\"=\",0]}]}", "{\"a\":-0}");
	M("{\"a\":[{\"numeric\":[\">=\",5,\"<=\",5]}]}", "{\"a\":5}");
	M("{\"a\":[{\"numeric\":[\">=\",-1e300]}]}", "{\"a\":-5}");
	M("{\"a\":[{\"numeric\":[\"<\",1e-300]}]}", "{\"a\":-1e308}");
	N("{\"a\":[{\"numeric\":[\"<\",0]}]}", "{\"a\":1e400}");
	E("{\"a\":[{\"numeric\":[\">\",0,\">\",1]}]}", "Bad numeric range operator: >");
	E("{\"a\":[{\"numeric\":[\"=\",0,\"<\",1]}]}", "Bad numeric range operator: <");
	E("{\"a\":[{\"numeric\":[\">\",0,\"<\"]}]}", "Value of < must be numeric");
	E("{\"a\":[{\"numeric\":[\"~\",0]}]}", "Unrecognized numeric range operator: ~");
	E("{\"a\":[{\"numeric\":10}]}", "Value of numeric must be an array.");
	E("{\"a\":[{\"numeric\":[\">\",5,\"<\",1]}]}", "bottom must be less than top");
}

Test(patterns, cidr)
{
	M("{\"a\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"a\":\"10.0.0.255\"}");
	N("{\"a\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"a\":\"10.0.1.0\"}");
	M("{\"a\":[{\"cidr\":\"10.0.0.0/9\"}]}", "{\"a\":\"10.127.3.4\"}");
	N("{\"a\":[{\"cidr\":\"10.0.0.0/9\"}]}", "{\"a\":\"10.128.3.4\"}");
	M("{\"a\":[{\"cidr\":\"0.0.0.0/0\"}]}", "{\"a\":\"1.2.3.4\"}");
	M("{\"a\":[{\"cidr\":\"2001:db8:1234:1a00::/64\"}]}", "{\"a\":\"2001:db8:1234:1a00::7\"}");
	N("{\"a\":[{\"cidr\":\"2001:db8:1234:1a00::/64\"}]}", "{\"a\":\"2001:db8:1234:1a01::7\"}");
	N("{\"a\":[{\"cidr\":\"10.0.0.0/8\"}]}", "{\"a\":\"::ffff:10.0.0.1x\"}");
	N("{\"a\":[{\"cidr\":\"10.0.0.0/8\"}]}", "{\"a\":\"not an ip\"}");
	N("{\"a\":[{\"cidr\":\"10.0.0.0/8\"}]}", "{\"a\":10}");
	E("{\"a\":[{\"cidr\":\"10.0.0.0\"}]}", "Malformed CIDR, one '/' required");
	E("{\"a\":[{\"cidr\":\"10.0.0.0/x\"}]}", "mask bits must be an integer");
	E("{\"a\":[{\"cidr\":\"10.0.0.0/33\"}]}", "mask bits must be between 0 and 32");
	E("{\"a\":[{\"cidr\":\"300.0.0.0/8\"}]}", "Nonstandard IP address: 300.0.0.0");
	E("{\"a\":[{\"cidr\":1}]}", "prefix match pattern must be a string");
}

Test(patterns, exists_null_missing)
{
	M("{\"a\":[{\"exists\":true}]}", "{\"a\":null}");
	M("{\"a\":[{\"exists\":true}]}", "{\"a\":\"\"}");
	N("{\"a\":[{\"exists\":true}]}", "{}");
	N("{\"a\":[{\"exists\":true}]}", "{\"a\":{\"b\":1}}");
	N("{\"a\":[{\"exists\":true}]}", "{\"a\":[]}");
	M("{\"a\":[{\"exists\":false}]}", "{}");
	M("{\"a\":[{\"exists\":false}]}", "{\"a\":{\"b\":1}}");
	M("{\"a\":[{\"exists\":false}]}", "{\"a\":[]}");
	N("{\"a\":[{\"exists\":false}]}", "{\"a\":null}");
	M("{\"a\":[{\"exists\":false},\"x\"]}", "{\"a\":\"x\"}");
	M("{\"a\":[{\"exists\":false},\"x\"]}", "{}");
	N("{\"a\":[{\"exists\":false},\"x\"]}", "{\"a\":\"y\"}");
	/* exists:false inside an array of objects is judged per element */
	M("{\"d\":{\"a\":[1],\"b\":[{\"exists\":false}]}}",
	  "{\"d\":[{\"a\":1,\"b\":2},{\"a\":1}]}");
	N("{\"d\":{\"a\":[1],\"b\":[{\"exists\":false}]}}", "{\"d\":[{\"a\":1,\"b\":2}]}");
	E("{\"a\":[{\"exists\":\"yes\"}]}", "exists match pattern must be either true or false.");
}

/* Three nested $or groups of first, 10 and 10 alternatives. */
static void
or_groups(char *buf, size_t cap, int first)
{
	size_t o = (size_t)snprintf(buf, cap, "{");
	for (int g = 0; g < 3; g++) {
		int n = g == 0 ? first : 10;
		o += (size_t)snprintf(buf + o, cap - o, "%s\"g%d\":{\"$or\":[", g ? "," : "", g);
		for (int i = 0; i < n; i++)
			o += (size_t)snprintf(buf + o, cap - o, "%s{\"f%d\":[%d]}", i ? "," : "", i,
			                      i);
		o += (size_t)snprintf(buf + o, cap - o, "]}");
	}
	snprintf(buf + o, cap - o, "}");
	cr_assert_lt(o, cap - 1);
}

Test(patterns, or_expansion)
{
	const char *p = "{\"s\":[\"x\"],\"$or\":[{\"a\":[1]},{\"b\":[2]}]}";
	M(p, "{\"s\":\"x\",\"a\":1}");
	M(p, "{\"s\":\"x\",\"b\":2}");
	N(p, "{\"s\":\"x\",\"a\":2}");
	N(p, "{\"a\":1}");
	const char *nested = "{\"$or\":[{\"a\":[1]},{\"$or\":[{\"b\":[2]},{\"c\":{\"d\":[3]}}]}]}";
	M(nested, "{\"c\":{\"d\":3}}");
	N(nested, "{\"c\":{\"d\":4}}");
	/* $or inside a nested object keeps its path */
	M("{\"d\":{\"$or\":[{\"a\":[1]},{\"b\":[2]}]}}", "{\"d\":{\"b\":2}}");
	/* operator lists under a key named $or are a plain field */
	M("{\"$or\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"$or\":\"10.0.0.3\"}");
	M("{\"$or\":{\"k\":[\"v\"]}}", "{\"$or\":{\"k\":\"v\"}}");
	E("{\"$or\":[{\"a\":[1]}]}", "$or");
	/* 11 x 10 x 10 = 1100 combinations: over the limit; 10 x 10 x 10 is allowed */
	char big[2048];
	or_groups(big, sizeof big, 11);
	E(big, "1000");
	or_groups(big, sizeof big, 10);
	M(big, "{\"g0\":{\"f3\":3},\"g1\":{\"f0\":0},\"g2\":{\"f9\":9}}");
}

Test(patterns, invalid_patterns)
{
	E("{\"a\":[]}", "Empty arrays are not allowed");
	E("{\"a\":42}", "\"a\" must be an object or an array");
	E("{\"a\":\"v\"}", "\"a\" must be an object or an array");
	E("{\"a\":[{\"NUMERIC\":[\"=\",5]}]}", "Unrecognized match type NUMERIC");
	E("{\"a\":[[1]]}", "Match value must be String, number, true, false, or null");
	E("{\"a\":[{\"prefix\":\"x\",\"suffix\":\"y\"}]}", "Only one key allowed");
	E("[1]", "Filter is not an object");
	E("{\"a\":", "Event pattern is not valid. Reason:");
	/* 4,096 characters (not bytes) is the limit */
	size_t n = 4097;
	char *p = malloc(n + 1);
	cr_assert_not_null(p);
	memset(p, ' ', n);
	memcpy(p, "{\"a\":[\"x\"]}", 11);
	p[n] = '\0';
	expect_error(p, SL_ERR_INVALID_ARG, "4096", __LINE__);
	p[n - 1] = '\0';
	M(p, "{\"a\":\"x\"}");
	free(p);
	/* 2,000 two-byte characters are 4,000 bytes over... fine as characters */
	char *u = malloc(4200);
	cr_assert_not_null(u);
	strcpy(u, "{\"a\":[\"");
	size_t k = strlen(u);
	for (int i = 0; i < 2000; i++) {
		u[k++] = '\xc3';
		u[k++] = '\xa9';
	}
	strcpy(u + k, "\"]}");
	N(u, "{\"a\":\"x\"}");
	free(u);
}

Test(patterns, malformed_events)
{
	static const char *bad[] = { "",
		                     "[]",
		                     "{",
		                     "{\"a\":}",
		                     "{\"a\":1,}",
		                     "{\"a\":01}",
		                     "{\"a\":\"x}",
		                     "{\"a\":\"\\q\"}",
		                     "{\"a\":tru}",
		                     "{\"a\":1} x",
		                     "{\"a\":\"\x01\"}",
		                     "{\"a\":[1,]}",
		                     "{\"a\":\"\\u12\"}",
		                     "{a:1}",
		                     "{\"a\":1 \"b\":2}",
		                     "{\"z\":[1,2}" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct sl_error err;
		sl_error_clear(&err);
		bool match;
		sl_err rc = pat_test("{\"a\":[1]}", bad[i], &match, &err);
		cr_assert_eq(rc, SL_ERR_INVALID_ARG, "event '%s' accepted", bad[i]);
		cr_assert(strstr(sl_error_text(&err), "at byte"), "%s", sl_error_text(&err));
	}
	/* invalid UTF-8 in a named field */
	struct sl_error err;
	bool match;
	cr_assert_eq(pat_test("{\"a\":[\"x\"]}", "{\"a\":\"\xff\"}", &match, &err),
	             SL_ERR_INVALID_ARG);
	/* nesting beyond the limit is an error, not a stack overflow */
	size_t depth = 100000;
	char *deep = malloc(depth * 2 + 16);
	cr_assert_not_null(deep);
	strcpy(deep, "{\"a\":");
	size_t o = strlen(deep);
	for (size_t i = 0; i < depth; i++)
		deep[o++] = '[';
	for (size_t i = 0; i < depth; i++)
		deep[o++] = ']';
	strcpy(deep + o, "}");
	cr_assert_eq(pat_test("{\"a\":[1]}", deep, &match, &err), SL_ERR_INVALID_ARG);
	cr_assert(strstr(sl_error_text(&err), "nesting"), "%s", sl_error_text(&err));
	free(deep);
}

Test(patterns, escapes_and_unicode_in_events)
{
	M("{\"a\":[\"x\\\"y\"]}", "{\"a\":\"x\\\"y\"}");
	M("{\"a\":[\"\xc3\xa9\"]}", "{\"a\":\"\\u00e9\"}");
	M("{\"a\":[\"\xc3\xa9\"]}", "{\"a\":\"\\u00E9\"}");
	M("{\"a\":[\"\xf0\x9f\x98\x80\"]}", "{\"a\":\"\\ud83d\\ude00\"}");
	M("{\"a\":[\"/\"]}", "{\"a\":\"\\/\"}");
	M("{\"a\":[\"\\n\\t\"]}", "{\"a\":\"\\n\\t\"}");
	/* escaped keys */
	M("{\"a b\":[1]}", "{\"a\\u0020b\":1}");
	M("{\"\xc3\xa9\":{\"k\":[1]}}", "{\"\\u00e9\":{\"k\":1}}");
	/* escapes in skipped fields are checked but not decoded */
	M("{\"a\":[1]}", "{\"b\":\"\\ud83d\\ude00\\\"\",\"a\":1}");
}

static char *
read_shared(const char *rel)
{
	const char *shared = getenv("SLUICE_SHARED");
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", shared ? shared : "", rel);
	FILE *f = shared ? fopen(path, "rb") : NULL;
	if (!f)
		cr_skip_test("%s not found (set SLUICE_SHARED)", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

Test(patterns, big_event)
{
	char *ev = read_shared("corpus/patterns/event-ruler/bigEvent.json");
	char *rule = read_shared("corpus/patterns/event-ruler/bigEventRule.json");
	cr_assert_eq(strlen(ev), 255820);
	M(rule, ev);
	/* and a pattern naming nothing in it */
	N("{\"detail\":{\"nope\":[1]}}", ev);
	free(ev);
	free(rule);
}

struct rec {
	uint32_t ids[16];
	size_t n;
};

static bool
rec_cb(void *ctx, uint32_t id, const char *name)
{
	struct rec *r = ctx;
	(void)name;
	if (r->n < 16)
		r->ids[r->n] = id;
	r->n++;
	return true;
}

Test(patterns, machine_add_remove)
{
	pat_machine_t *m;
	struct sl_error err;
	cr_assert_eq(pat_machine_new(&m, &err), SL_OK);
	uint32_t a, b, c;
	cr_assert_eq(pat_machine_add_rule(m, "a", "{\"k\":[\"x\"]}", strlen("{\"k\":[\"x\"]}"), &a,
	                                  &err),
	             SL_OK);
	cr_assert_eq(pat_machine_add_rule(m, "b", "{\"k\":[{\"prefix\":\"x\"}]}",
	                                  strlen("{\"k\":[{\"prefix\":\"x\"}]}"), &b, &err),
	             SL_OK, "%s", sl_error_text(&err));
	cr_assert_eq(pat_machine_add_rule(m, "a", "{\"k\":[\"y\"]}", strlen("{\"k\":[\"y\"]}"),
	                                  NULL, &err),
	             SL_ERR_EXISTS);
	struct rec r = { 0 };
	cr_assert_eq(
	        pat_machine_match(m, "{\"k\":\"x\"}", strlen("{\"k\":\"x\"}"), rec_cb, &r, &err),
	        SL_OK);
	cr_assert_eq(r.n, 2);
	struct pat_stats st;
	pat_machine_stats(m, &st);
	cr_assert_eq(st.rules, 2);
	cr_assert_eq(st.fields, 1);
	size_t bytes2 = st.bytes;
	cr_assert_eq(pat_machine_remove_rule(m, "a", &err), SL_OK);
	cr_assert_eq(pat_machine_remove_rule(m, "a", &err), SL_ERR_NOT_FOUND);
	r.n = 0;
	cr_assert_eq(
	        pat_machine_match(m, "{\"k\":\"x\"}", strlen("{\"k\":\"x\"}"), rec_cb, &r, &err),
	        SL_OK);
	cr_assert_eq(r.n, 1);
	cr_assert_eq(r.ids[0], b);
	/* the freed id is reused */
	cr_assert_eq(pat_machine_add_rule(m, "c", "{\"j\":[{\"exists\":false}]}",
	                                  strlen("{\"j\":[{\"exists\":false}]}"), &c, &err),
	             SL_OK);
	cr_assert_eq(c, a);
	r.n = 0;
	cr_assert_eq(
	        pat_machine_match(m, "{\"k\":\"q\"}", strlen("{\"k\":\"q\"}"), rec_cb, &r, &err),
	        SL_OK);
	cr_assert_eq(r.n, 1);
	cr_assert_eq(r.ids[0], c);
	cr_assert_eq(pat_machine_remove_rule(m, "b", &err), SL_OK);
	cr_assert_eq(pat_machine_remove_rule(m, "c", &err), SL_OK);
	pat_machine_stats(m, &st);
	cr_assert_eq(st.rules, 0);
	cr_assert_eq(st.fields, 0);
	cr_assert_eq(st.subrules, 0);
	cr_assert_lt(st.bytes, bytes2 * 4);
	r.n = 0;
	cr_assert_eq(
	        pat_machine_match(m, "{\"k\":\"x\"}", strlen("{\"k\":\"x\"}"), rec_cb, &r, &err),
	        SL_OK);
	cr_assert_eq(r.n, 0);
	/* a bad pattern leaves the machine as it was */
	cr_assert_eq(pat_machine_add_rule(m, "bad", "{\"k\":[]}", strlen("{\"k\":[]}"), NULL, &err),
	             SL_ERR_INVALID_PATTERN);
	pat_machine_stats(m, &st);
	cr_assert_eq(st.rules, 0);
	pat_machine_free(m);
}

Test(patterns, hundred_thousand_rules)
{
	pat_machine_t *m;
	struct sl_error err;
	cr_assert_eq(pat_machine_new(&m, &err), SL_OK);
	enum { N_RULES = 100000 };
	char name[32], pat[96];
	for (int i = 0; i < N_RULES; i++) {
		snprintf(name, sizeof name, "r%d", i);
		int n = snprintf(pat, sizeof pat,
		                 "{\"detail\":{\"id\":[\"v%d\"],\"n\":[{\"numeric\":[\">\",%d]}]}}",
		                 i, i % 7);
		cr_assert_eq(pat_machine_add_rule(m, name, pat, (size_t)n, NULL, &err), SL_OK, "%s",
		             sl_error_text(&err));
	}
	struct pat_stats st;
	pat_machine_stats(m, &st);
	cr_assert_eq(st.rules, N_RULES);
	fprintf(stderr, "100000 rules: %zu bytes (%zu per rule)\n", st.bytes, st.bytes / N_RULES);
	cr_assert_lt(st.bytes / N_RULES, 4096, "memory per rule is %zu bytes", st.bytes / N_RULES);
	struct rec r = { 0 };
	const char *ev = "{\"detail\":{\"id\":\"v77777\",\"n\":100}}";
	cr_assert_eq(pat_machine_match(m, ev, strlen(ev), rec_cb, &r, &err), SL_OK);
	cr_assert_eq(r.n, 1);
	r.n = 0;
	ev = "{\"detail\":{\"id\":\"v77777\",\"n\":0}}";
	cr_assert_eq(pat_machine_match(m, ev, strlen(ev), rec_cb, &r, &err), SL_OK);
	cr_assert_eq(r.n, 0);
	for (int i = 0; i < N_RULES; i += 2) {
		snprintf(name, sizeof name, "r%d", i);
		cr_assert_eq(pat_machine_remove_rule(m, name, &err), SL_OK);
	}
	pat_machine_stats(m, &st);
	cr_assert_eq(st.rules, N_RULES / 2);
	r.n = 0;
	ev = "{\"detail\":{\"id\":\"v77777\",\"n\":100}}";
	cr_assert_eq(pat_machine_match(m, ev, strlen(ev), rec_cb, &r, &err), SL_OK);
	cr_assert_eq(r.n, 1);
	r.n = 0;
	ev = "{\"detail\":{\"id\":\"v77776\",\"n\":100}}";
	cr_assert_eq(pat_machine_match(m, ev, strlen(ev), rec_cb, &r, &err), SL_OK);
	cr_assert_eq(r.n, 0);
	pat_machine_free(m);
}

static bool
stop_cb(void *ctx, uint32_t id, const char *name)
{
	(void)id;
	(void)name;
	(*(int *)ctx)++;
	return false;
}

Test(patterns, match_ids_and_early_stop)
{
	pat_machine_t *m;
	struct sl_error err;
	cr_assert_eq(pat_machine_new(&m, &err), SL_OK);
	for (int i = 0; i < 5; i++) {
		char name[8];
		snprintf(name, sizeof name, "r%d", i);
		cr_assert_eq(pat_machine_add_rule(m, name, "{\"a\":[{\"exists\":true}]}", 23, NULL,
		                                  &err),
		             SL_OK);
	}
	uint32_t ids[3];
	size_t n;
	cr_assert_eq(pat_machine_match_ids(m, "{\"a\":1}", strlen("{\"a\":1}"), ids, 3, &n, &err),
	             SL_OK);
	cr_assert_eq(n, 5);
	int calls = 0;
	cr_assert_eq(pat_machine_match(m, "{\"a\":1}", strlen("{\"a\":1}"), stop_cb, &calls, &err),
	             SL_OK);
	cr_assert_eq(calls, 1);
	pat_machine_free(m);
}

static bool
count_cb(void *ctx, uint32_t id, const char *name)
{
	(void)id;
	(void)name;
	(*(int *)ctx)++;
	return true;
}

/* Every allocation of add_rule and match may fail: the answer is NOMEM, never a crash or leak. */
Test(patterns, oom_walk)
{
	const char *pattern
	        = "{\"source\":[\"aws.ec2\",{\"prefix\":\"x\"}],\"detail\":{\"$or\":[{\"s\":[{"
	          "\"anything-but\":"
	          "{\"wildcard\":[\"*a*\",\"b*\"]}}]},{\"n\":[{\"numeric\":[\">\",1]}],\"ip\":[{"
	          "\"cidr\":"
	          "\"10.0.0.0/"
	          "8\"}],\"c\":[{\"equals-ignore-case\":\"X\"},{\"suffix\":{\"equals-ignore-"
	          "case\":\"Y\"}}]}],\"z\":[{\"exists\":false}]}}";
	const char *event
	        = "{\"source\":\"aws.ec2\",\"detail\":[{\"s\":\"q\\u00e9\",\"n\":5,\"ip\":"
	          "\"10.1.2.3\",\"c\":\"x\"},{\"z\":1}]}";
	bool completed = false;
	long k;
	for (k = 0; k < 100000 && !completed; k++) {
		pat_machine_t *m = NULL;
		struct sl_error err;
		sl_alloc_fail_after(k);
		sl_err rc = pat_machine_new(&m, &err);
		if (rc == SL_OK)
			rc = pat_machine_add_rule(m, "r", pattern, strlen(pattern), NULL, &err);
		int hits = 0;
		if (rc == SL_OK)
			rc = pat_machine_match(m, event, strlen(event), count_cb, &hits, &err);
		if (rc == SL_OK)
			rc = pat_machine_remove_rule(m, "r", &err);
		sl_alloc_fail_after(-1);
		/* jansson's lexer drops a byte when its buffer cannot grow, so a failure inside
		 * json_loadb may surface as a (wrong) pattern error rather than NOMEM */
		cr_assert(rc == SL_OK || rc == SL_ERR_NOMEM || rc == SL_ERR_INVALID_PATTERN,
		          "k=%ld: %s", k, sl_error_text(&err));
		if (rc == SL_OK) {
			cr_assert_eq(hits, 1, "k=%ld", k);
			completed = true;
		}
		pat_machine_free(m);
	}
	cr_assert(completed);
	/* every allocation up to the first full run was made to fail once */
	cr_assert_gt(k, 50, "only %ld allocations walked", k);
	fprintf(stderr, "oom walk: %ld allocation failures survived\n", k - 1);
}

/* The fast decimal path must give strtod's double, bit for bit. */
Test(patterns, number_canonical_matches_strtod)
{
	char buf[64], key[9];
	double v;
	unsigned seed = 12345;
	for (long k = 0; k < 400000; k++) {
		seed = seed * 1103515245u + 12345u;
		double x = ((double)(seed >> 8) / (double)(1u << 24) - 0.5)
		        * pow(10, (int)(seed % 12) - 4);
		int prec = 1 + (int)((seed >> 4) % 21);
		snprintf(buf, sizeof buf, "%.*f", prec, x);
		cr_assert(pat_number_key(buf, strlen(buf), key, &v), "%s", buf);
		double r = strtod(buf, NULL);
		if (r == 0)
			r = 0;
		cr_assert(memcmp(&r, &v, 8) == 0, "%s: %.17g vs strtod %.17g", buf, v, r);
	}
	static const char *edge[] = { "9007199254740992",
		                      "9007199254740993",
		                      "1e22",
		                      "1e23",
		                      "0.0000000000000000000001",
		                      "123456789012345678901234567890",
		                      "-0",
		                      "4.9e-324",
		                      "1.7976931348623157e308" };
	for (size_t i = 0; i < sizeof edge / sizeof *edge; i++) {
		cr_assert(pat_number_key(edge[i], strlen(edge[i]), key, &v), "%s", edge[i]);
		double r = strtod(edge[i], NULL);
		if (r == 0)
			r = 0;
		cr_assert(memcmp(&r, &v, 8) == 0, "%s", edge[i]);
	}
}

/* Inputs the fuzzers found, in exact-size buffers so an over-read is caught under ASan. */
Test(patterns, fuzz_regressions)
{
	static const char *evs[] = { "{\"d\": {\"a\": \"hello\", \"b\": \"nopde\"}",
		                     "{\"a\":{\"b\":1}",
		                     "{\"a\":[{\"b\":1}",
		                     "{\"a\":-}",
		                     "{\"a\":1.}",
		                     "{\"a\":1e}",
		                     "}" };
	pat_machine_t *m;
	struct sl_error err;
	cr_assert_eq(pat_machine_new(&m, &err), SL_OK);
	const char *p = "{\"a\":{\"b\":[1]},\"d\":{\"a\":[{\"exists\":true}]}}";
	cr_assert_eq(pat_machine_add_rule(m, "r", p, strlen(p), NULL, &err), SL_OK);
	for (size_t i = 0; i < sizeof evs / sizeof *evs; i++) {
		size_t n = strlen(evs[i]);
		char *buf = malloc(n);
		cr_assert_not_null(buf);
		memcpy(buf, evs[i], n);
		int hits = 0;
		cr_assert_eq(pat_machine_match(m, buf, n, count_cb, &hits, &err),
		             SL_ERR_INVALID_ARG, "%s", evs[i]);
		free(buf);
	}
	pat_machine_free(m);
}

/* Large independent arrays: the consistency search must not multiply their sizes (these
 * would take 10^9 steps and more if it did). */
Test(patterns, array_consistency_search_stays_small)
{
	size_t cap = 64 * 1024, o = 0;
	char *ev = malloc(cap);
	cr_assert_not_null(ev);
	o += (size_t)snprintf(ev + o, cap - o, "{");
	const char *names[] = { "p", "q", "r" };
	for (int a = 0; a < 3; a++) {
		o += (size_t)snprintf(ev + o, cap - o, "\"%s\":[", names[a]);
		for (int i = 0; i < 1000; i++)
			o += (size_t)snprintf(ev + o, cap - o, "%s{\"v\":%d}", i ? "," : "", i);
		o += (size_t)snprintf(ev + o, cap - o, "],\"%s%s\":[", names[a], "prim");
		for (int i = 0; i < 1000; i++)
			o += (size_t)snprintf(ev + o, cap - o, "%s%d", i ? "," : "", i);
		o += (size_t)snprintf(ev + o, cap - o, "],");
	}
	snprintf(ev + o, cap - o, "\"d\":[{\"x\":1},{\"y\":1},{\"x\":2,\"y\":2}]}");
	N("{\"p\":{\"v\":[{\"exists\":true}]},\"q\":{\"v\":[{\"exists\":true}]},"
	  "\"r\":{\"v\":[{\"exists\":true}]},\"d\":{\"x\":[1],\"y\":[1]}}",
	  ev);
	M("{\"p\":{\"v\":[{\"exists\":true}]},\"q\":{\"v\":[{\"exists\":true}]},"
	  "\"r\":{\"v\":[{\"exists\":true}]},\"d\":{\"x\":[2],\"y\":[2]}}",
	  ev);
	N("{\"pprim\":[{\"exists\":true}],\"qprim\":[{\"exists\":true}],\"rprim\":[{"
	  "\"numeric\":[\">\",0]}],\"d\":{\"x\":[1],\"y\":[1],\"z\":[{\"exists\":false}]}}",
	  ev);
	M("{\"pprim\":[{\"exists\":true}],\"qprim\":[{\"exists\":true}],\"rprim\":[{"
	  "\"numeric\":[\">\",0]}],\"d\":{\"x\":[1],\"z\":[{\"exists\":false}]}}",
	  ev);
	free(ev);
}

/* Several threads match against one machine, each with its own scratch. */
struct worker {
	const pat_machine_t *m;
	int ok;
};

static const char *mt_events[] = {
	"{\"source\":\"a\",\"d\":[{\"x\":1,\"y\":2},{\"x\":3}],\"n\":5}",
	"{\"source\":\"b\",\"d\":[{\"x\":1},{\"y\":2}],\"n\":-1}",
	"{\"source\":\"A\",\"s\":\"stra\u00dfe\"}",
};
static const size_t mt_want[] = { 3, 1, 2 };

static bool
count_cb2(void *ctx, uint32_t id, const char *name)
{
	(void)id;
	(void)name;
	(*(size_t *)ctx)++;
	return true;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	pat_scratch_t *sc;
	struct sl_error err;
	if (pat_scratch_new(&sc, &err) != SL_OK)
		return NULL;
	w->ok = 1;
	for (int k = 0; k < 20000 && w->ok; k++) {
		size_t i = (size_t)k % 3, n = 0;
		if (pat_machine_match_with(w->m, sc, mt_events[i], strlen(mt_events[i]), count_cb2,
		                           &n, &err)
		            != SL_OK
		    || n != mt_want[i])
			w->ok = 0;
	}
	pat_scratch_free(sc);
	return NULL;
}

Test(patterns, threads_with_own_scratch)
{
	static const char *rules[] = {
		"{\"source\":[\"a\"]}",
		"{\"d\":{\"x\":[1],\"y\":[2]}}",
		"{\"n\":[{\"numeric\":[\">\",0]}]}",
		"{\"source\":[{\"equals-ignore-case\":\"a\"}],\"s\":[{\"exists\":true}]}",
		"{\"s\":[{\"equals-ignore-case\":\"STRASSE\"}]}",
		"{\"source\":[{\"anything-but\":[\"a\",\"A\"]}]}",
	};
	pat_machine_t *m;
	struct sl_error err;
	cr_assert_eq(pat_machine_new(&m, &err), SL_OK);
	for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
		char name[8];
		snprintf(name, sizeof name, "r%zu", i);
		cr_assert_eq(pat_machine_add_rule(m, name, rules[i], strlen(rules[i]), NULL, &err),
		             SL_OK, "%s", sl_error_text(&err));
	}
	/* the expected counts, single-threaded first */
	for (size_t i = 0; i < 3; i++) {
		size_t n = 0;
		cr_assert_eq(pat_machine_match(m, mt_events[i], strlen(mt_events[i]), count_cb2, &n,
		                               &err),
		             SL_OK);
		cr_assert_eq(n, mt_want[i], "event %zu: %zu matches", i, n);
	}
	pthread_t t[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker) { m, 0 };
		cr_assert_eq(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert(w[i].ok, "thread %d saw a wrong answer", i);
	}
	pat_machine_free(m);
}

/* Adding and removing rules round after round (new prefixes each round) does not grow the
 * machine: what stays is the capacity of id tables and hash slots from the peak. */
Test(patterns, churn_returns_memory)
{
	pat_machine_t *m;
	struct sl_error err;
	cr_assert_eq(pat_machine_new(&m, &err), SL_OK);
	const char *keep = "{\"k\":[{\"prefix\":\"keep\"}]}";
	cr_assert_eq(pat_machine_add_rule(m, "keep", keep, strlen(keep), NULL, &err), SL_OK);
	struct pat_stats st0, st1 = { 0 }, st;
	size_t n = 0;
	const char *ev = "{\"k\":\"keeper\",\"j\":\"abc\"}";
	cr_assert_eq(pat_machine_match(m, ev, strlen(ev), count_cb2, &n, &err), SL_OK);
	pat_machine_stats(m, &st0);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 2000; i++) {
			char name[16], p[160];
			snprintf(name, sizeof name, "r%d", i);
			int pl = snprintf(p, sizeof p,
			                  "{\"j\":[{\"prefix\":\"p%d-%d\"},{\"suffix\":\"s%d\"},"
			                  "{\"wildcard\":\"w%d*x\"},\"e%d\"],\"z%d\":[1]}",
			                  round, i, i, i, i, i);
			cr_assert_eq(pat_machine_add_rule(m, name, p, (size_t)pl, NULL, &err),
			             SL_OK, "%s", sl_error_text(&err));
		}
		for (int i = 0; i < 2000; i++) {
			char name[16];
			snprintf(name, sizeof name, "r%d", i);
			cr_assert_eq(pat_machine_remove_rule(m, name, &err), SL_OK);
		}
		n = 0;
		cr_assert_eq(pat_machine_match(m, ev, strlen(ev), count_cb2, &n, &err), SL_OK);
		cr_assert_eq(n, 1);
		if (round == 0)
			pat_machine_stats(m, &st1); /* scratch has caught up with the peak too */
	}
	pat_machine_stats(m, &st);
	cr_assert_eq(st.rules, 1);
	cr_assert_eq(st.fields, 1);
	cr_assert_leq(st.bytes, st1.bytes, "%zu bytes after 3 rounds, %zu after 1 (%zu at start)",
	              st.bytes, st1.bytes, st0.bytes);
	pat_machine_free(m);
}
