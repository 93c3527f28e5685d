/*
 * test_pattern_anchor.c - rules indexed under one selective (anchor) slot and verified on
 * the rest: many rules sharing a value cost only the rules that nearly match, and every
 * operator gives the same answers whichever slot a rule is anchored on (checked against
 * the rule alone in its own machine, before and after removals and re-adds).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/pat_internal.h"
#include "bus/pattern.h"
#include "common/sl_alloc.h"
#include "common/sl_err.h"

static void
setup(void)
{
	sl_alloc_init();
}

TestSuite(pattern_anchor, .init = setup);

static void
add(pat_machine_t *m, const char *name, const char *pattern)
{
	struct sl_error err;
	sl_error_clear(&err);
	sl_err rc = pat_machine_add_rule(m, name, pattern, strlen(pattern), NULL, &err);
	cr_assert_eq(rc, SL_OK, "%s: %s", pattern, sl_error_text(&err));
}

static void
del(pat_machine_t *m, const char *name)
{
	struct sl_error err;
	sl_error_clear(&err);
	cr_assert_eq(pat_machine_remove_rule(m, name, &err), SL_OK, "%s", sl_error_text(&err));
}

static size_t
match_n(pat_machine_t *m, const char *ev, uint32_t *ids, size_t cap)
{
	struct sl_error err;
	sl_error_clear(&err);
	size_t n = 0;
	sl_err rc = pat_machine_match_ids(m, ev, strlen(ev), ids, cap, &n, &err);
	cr_assert_eq(rc, SL_OK, "%s: %s", ev, sl_error_text(&err));
	return n;
}

Test(pattern_anchor, many_rules_share_a_value)
{
	pat_machine_t *m;
	struct sl_error err;
	cr_assert_eq(pat_machine_new(&m, &err), SL_OK);
	char name[32], pat[128], ev[128];
	uint32_t id[10000], ids[4];
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof name, "r%d", i);
		snprintf(pat, sizeof pat, "{\"source\":[\"bench\"],\"detail-type\":[\"t%d\"]}", i);
		cr_assert_eq(pat_machine_add_rule(m, name, pat, strlen(pat), &id[i], &err), SL_OK);
	}
	for (int i = 0; i < 10000; i += 997) {
		snprintf(ev, sizeof ev, "{\"source\":\"bench\",\"detail-type\":\"t%d\"}", i);
		cr_assert_eq(match_n(m, ev, ids, 4), 1, "%s", ev);
		cr_assert_eq(ids[0], id[i]);
		/* the shared value is the anchor of at most the first rule added */
		cr_assert_leq(pat_machine_candidates(m), 2, "%s: %zu candidates", ev,
		              pat_machine_candidates(m));
		snprintf(ev, sizeof ev, "{\"source\":\"other\",\"detail-type\":\"t%d\"}", i);
		cr_assert_eq(match_n(m, ev, ids, 4), 0, "%s", ev);
	}
	cr_assert_eq(match_n(m, "{\"source\":\"bench\"}", ids, 4), 0);
	cr_assert_leq(pat_machine_candidates(m), 1);
	/* removing the rule anchored on the shared value changes nothing for the others */
	del(m, "r0");
	cr_assert_eq(match_n(m, "{\"source\":\"bench\",\"detail-type\":\"t1\"}", ids, 4), 1);
	cr_assert_eq(match_n(m, "{\"source\":\"bench\",\"detail-type\":\"t0\"}", ids, 4), 0);
	pat_machine_free(m);
}

Test(pattern_anchor, rules_whose_only_fields_are_shared)
{
	pat_machine_t *m;
	struct sl_error err;
	cr_assert_eq(pat_machine_new(&m, &err), SL_OK);
	char name[32];
	uint32_t ids[512];
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof name, "s%d", i);
		add(m, name,
		    i % 2 ? "{\"source\":[\"bench\"]}"
		          : "{\"source\":[\"bench\"],\"detail-type\":[\"d\"]}");
	}
	cr_assert_eq(match_n(m, "{\"source\":\"bench\",\"detail-type\":\"d\"}", ids, 512), 200);
	cr_assert_eq(match_n(m, "{\"source\":\"bench\",\"detail-type\":\"e\"}", ids, 512), 100);
	cr_assert_eq(match_n(m, "{\"source\":\"bench\"}", ids, 512), 100);
	cr_assert_eq(match_n(m, "{\"detail-type\":\"d\"}", ids, 512), 0);
	for (int i = 0; i < 200; i += 3) {
		snprintf(name, sizeof name, "s%d", i);
		del(m, name);
	}
	/* 67 removed: 34 of the two-field rules (even i), 33 one-field (odd) */
	cr_assert_eq(match_n(m, "{\"source\":\"bench\",\"detail-type\":\"d\"}", ids, 512), 133);
	cr_assert_eq(match_n(m, "{\"source\":\"bench\"}", ids, 512), 67);
	pat_machine_free(m);
}

/* Operators put in the selective position of rules that also name shared values. */
static const char *ops[] = {
	"[\"abc\"]",
	"[{\"prefix\":\"ab\"}]",
	"[{\"suffix\":\"bc\"}]",
	"[{\"equals-ignore-case\":\"ABC\"}]",
	"[{\"prefix\":{\"equals-ignore-case\":\"AB\"}}]",
	"[{\"suffix\":{\"equals-ignore-case\":\"BC\"}}]",
	"[{\"wildcard\":\"a*c\"}]",
	"[{\"wildcard\":\"*c\"}]",
	"[{\"numeric\":[\">\",5]}]",
	"[{\"anything-but\":\"abc\"}]",
	"[{\"anything-but\":{\"prefix\":\"a\"}}]",
	"[{\"exists\":true}]",
	"[{\"exists\":false}]",
	"[{\"cidr\":\"10.0.0.0/8\"}]",
	"[\"abc\",{\"numeric\":[\"=\",7]},null]",
	"[{\"exists\":false},\"abd\"]",
};
#define NOPS (sizeof ops / sizeof *ops)

/* %s is the operator. */
static const char *shapes[] = {
	"{\"x\":%s}",
	"{\"source\":[\"bench\"],\"x\":%s}",
	"{\"source\":[\"bench\"],\"x\":%s,\"y\":[1,2]}",
	"{\"$or\":[{\"source\":[\"bench\"],\"x\":%s},{\"y\":[3],\"source\":[\"other\"]}]}",
	"{\"arr\":{\"x\":%s,\"y\":[1]}}",
	"{\"source\":[\"bench\"],\"arr\":{\"x\":%s,\"y\":[1]}}",
	"{\"x\":%s,\"y\":[{\"exists\":true}]}",
};
#define NSHAPES (sizeof shapes / sizeof *shapes)
#define NFILL   150
#define NRULES  (NOPS * NSHAPES + 2 * NFILL)

static char *
rule_text(size_t i)
{
	char *t;
	if (i < NOPS * NSHAPES) {
		t = sl_asprintf(shapes[i % NSHAPES], ops[i / NSHAPES]);
	} else if (i < NOPS * NSHAPES + NFILL) {
		/* makes source=bench and y=1 expensive anchors */
		t = sl_asprintf("{\"source\":[\"bench\"],\"y\":[1],\"f\":[%zu]}", i);
	} else {
		t = sl_asprintf("{\"y\":[1],\"arr\":{\"y\":[1]},\"g\":[%zu]}", i);
	}
	cr_assert_not_null(t);
	return t;
}

static const char *xs[] = { "\"abc\"", "\"ABC\"", "\"abd\"",      "\"xbc\"",          "7", "8",
	                    "3",       "null",    "\"10.1.2.3\"", "[\"zz\",\"abc\"]", NULL };
static const char *srcs[] = { "\"bench\"", "\"other\"", NULL };
static const char *ys[] = { "1", "3", NULL };
static const char *arrs[] = {
	NULL,
	"[{\"x\":\"abc\",\"y\":1}]",
	"[{\"x\":\"abc\",\"y\":2},{\"x\":\"zz\",\"y\":1}]",
	"[{\"x\":\"ABC\",\"y\":1},{\"x\":8,\"y\":1}]",
	"[{\"y\":1},{\"x\":\"abd\",\"y\":3}]",
};

static char *
event_text(size_t e)
{
	size_t nx = sizeof xs / sizeof *xs, ns = sizeof srcs / sizeof *srcs,
	       ny = sizeof ys / sizeof *ys;
	const char *x = xs[e % nx], *s = srcs[(e / nx) % ns], *y = ys[(e / nx / ns) % ny];
	const char *a = arrs[e / nx / ns / ny];
	char buf[512];
	int n = snprintf(buf, sizeof buf, "{\"id\":1");
	if (x)
		n += snprintf(buf + n, sizeof buf - (size_t)n, ",\"x\":%s", x);
	if (s)
		n += snprintf(buf + n, sizeof buf - (size_t)n, ",\"source\":%s", s);
	if (y)
		n += snprintf(buf + n, sizeof buf - (size_t)n, ",\"y\":%s", y);
	if (a)
		n += snprintf(buf + n, sizeof buf - (size_t)n, ",\"arr\":%s", a);
	snprintf(buf + n, sizeof buf - (size_t)n, "}");
	return sl_strdup(buf);
}
#define NEVENTS (11 * 3 * 3 * 5)

/* Every event: the machine's matches are exactly the live rules that match alone. */
static void
compare(pat_machine_t *m, char **texts, const bool *live, const uint32_t *ids, char **events,
        bool (*alone)[NRULES], const char *when)
{
	static uint32_t got[NRULES];
	for (size_t e = 0; e < NEVENTS; e++) {
		size_t n = match_n(m, events[e], got, NRULES);
		cr_assert_leq(n, NRULES);
		static bool seen[NRULES];
		memset(seen, 0, sizeof seen);
		for (size_t k = 0; k < n; k++)
			for (size_t r = 0; r < NRULES; r++)
				if (live[r] && ids[r] == got[k])
					seen[r] = true;
		size_t want = 0;
		for (size_t r = 0; r < NRULES; r++) {
			if (!live[r])
				continue;
			want += alone[e][r];
			cr_assert_eq(seen[r], alone[e][r], "%s: rule %s on %s: machine says %d",
			             when, texts[r], events[e], seen[r]);
		}
		cr_assert_eq(n, want, "%s: %s: %zu matches, want %zu", when, events[e], n, want);
	}
}

static void
add_rule(pat_machine_t *m, char **texts, bool *live, uint32_t *ids, size_t r)
{
	char name[32];
	struct sl_error err;
	snprintf(name, sizeof name, "r%zu", r);
	cr_assert_eq(pat_machine_add_rule(m, name, texts[r], strlen(texts[r]), &ids[r], &err),
	             SL_OK, "%s: %s", texts[r], sl_error_text(&err));
	live[r] = true;
}

Test(pattern_anchor, operators_in_the_selective_position)
{
	static char *texts[NRULES], *events[NEVENTS];
	static bool live[NRULES], alone[NEVENTS][NRULES];
	static uint32_t ids[NRULES];
	struct sl_error err;
	for (size_t r = 0; r < NRULES; r++)
		texts[r] = rule_text(r);
	for (size_t e = 0; e < NEVENTS; e++) {
		events[e] = event_text(e);
		for (size_t r = 0; r < NRULES; r++)
			cr_assert_eq(pat_test(texts[r], events[e], &alone[e][r], &err), SL_OK,
			             "%s on %s: %s", texts[r], events[e], sl_error_text(&err));
	}
	pat_machine_t *m;
	cr_assert_eq(pat_machine_new(&m, &err), SL_OK);
	/* fillers first, so source=bench and y=1 are already shared when the others come */
	for (size_t r = NOPS * NSHAPES; r < NRULES; r++)
		add_rule(m, texts, live, ids, r);
	for (size_t r = 0; r < NOPS * NSHAPES; r++)
		add_rule(m, texts, live, ids, r);
	compare(m, texts, live, ids, events, alone, "all rules");
	char name[32];
	for (size_t r = 0; r < NRULES; r += 2) {
		snprintf(name, sizeof name, "r%zu", r);
		del(m, name);
		live[r] = false;
	}
	compare(m, texts, live, ids, events, alone, "after removing half");
	/* re-added in reverse: now the operator rules come before most sharers */
	for (size_t r = NRULES; r-- > 0;)
		if (!live[r])
			add_rule(m, texts, live, ids, r);
	compare(m, texts, live, ids, events, alone, "after re-adding");
	for (size_t r = 0; r < NRULES; r++) {
		snprintf(name, sizeof name, "r%zu", r);
		del(m, name);
		live[r] = false;
	}
	struct pat_stats st;
	pat_machine_stats(m, &st);
	cr_assert_eq(st.rules, 0);
	cr_assert_eq(st.fields, 0);
	pat_machine_free(m);
	for (size_t r = 0; r < NRULES; r++)
		sl_free(texts[r]);
	for (size_t e = 0; e < NEVENTS; e++)
		sl_free(events[e]);
}

static bool
count_cb(void *ctx, uint32_t id, const char *name)
{
	(void)id;
	(void)name;
	(*(int *)ctx)++;
	return true;
}

static const char *oom_rules[] = {
	"{\"source\":[\"bench\"],\"f\":[1]}",
	"{\"source\":[\"bench\"],\"f\":[2]}",
	"{\"source\":[\"bench\"],\"x\":[{\"prefix\":\"ab\"}],\"y\":[1,2],"
	"\"arr\":{\"x\":[\"abc\"],\"y\":[1]}}",
	"{\"source\":[\"bench\"],\"z\":[{\"exists\":false}],\"x\":[{\"equals-ignore-case\":\"ABC\"}"
	"]}",
	"{\"z\":[{\"exists\":false}],\"w\":[{\"exists\":false},\"q\"]}",
};
#define NOOM (sizeof oom_rules / sizeof *oom_rules)

static sl_err
oom_round(int *hits, struct sl_error *err)
{
	static const char *ev
	        = "{\"source\":\"bench\",\"x\":\"abc\",\"y\":2,\"arr\":[{\"x\":\"abc\","
	          "\"y\":1},{\"x\":\"zz\",\"y\":3}]}";
	pat_machine_t *m = NULL;
	char name[16];
	sl_err rc = pat_machine_new(&m, err);
	for (size_t i = 0; i < NOOM && rc == SL_OK; i++) {
		snprintf(name, sizeof name, "r%zu", i);
		rc = pat_machine_add_rule(m, name, oom_rules[i], strlen(oom_rules[i]), NULL, err);
	}
	if (rc == SL_OK)
		rc = pat_machine_match(m, ev, strlen(ev), count_cb, hits, err);
	for (size_t i = 0; i < NOOM && rc == SL_OK; i++) {
		snprintf(name, sizeof name, "r%zu", i);
		rc = pat_machine_remove_rule(m, name, err);
	}
	pat_machine_free(m);
	return rc;
}

/* Anchor choice, verification and removal under every allocation failure: NOMEM (or, for a
 * failure inside jansson, a pattern error), never a crash, a leak or a wrong answer. */
Test(pattern_anchor, oom_walk)
{
	struct sl_error err;
	int want = 0;
	cr_assert_eq(oom_round(&want, &err), SL_OK, "%s", sl_error_text(&err));
	cr_assert_eq(want,
	             3); /* the prefix/array rule, the ignore-case rule, the exists:false one */
	bool completed = false;
	long k;
	for (k = 0; k < 100000 && !completed; k++) {
		int hits = 0;
		sl_alloc_fail_after(k);
		sl_err rc = oom_round(&hits, &err);
		sl_alloc_fail_after(-1);
		cr_assert(rc == SL_OK || rc == SL_ERR_NOMEM || rc == SL_ERR_INVALID_PATTERN,
		          "k=%ld: %s", k, sl_error_text(&err));
		if (rc == SL_OK) {
			cr_assert_eq(hits, want, "k=%ld", k);
			completed = true;
		}
	}
	cr_assert(completed);
	cr_assert_gt(k, 100, "only %ld allocations walked", k);
}
