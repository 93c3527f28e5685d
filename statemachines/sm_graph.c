/*
 * sm_graph.c - the compiled graph's helpers: freeing, names, lookups, RFC 3339 times.
 */
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/sm_validate_int.h"

const char *
sm_state_type_name(enum sm_state_type t)
{
	static const char *const names[]
	        = { "Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map" };
	return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

size_t
sm_machine_find(const struct sm_machine *m, const char *name)
{
	for (size_t i = 0; i < m->n_states; i++)
		if (m->states[i].name && !strcmp(m->states[i].name, name))
			return i;
	return SM_NO_STATE;
}

/* ---- RFC 3339 ---------------------------------------------------------------------------- */

static bool
digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static int64_t
days_from_civil(int y, int m, int d)
{
	/* proleptic Gregorian days since 1970-01-01 */
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
days_in_month(int y, int m)
{
	static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : dm[m - 1];
}

bool
sm_time_parse(const char *s, struct sm_time *out)
{
	int y, mo, d, h, mi, sec;
	/* YYYY-MM-DDTHH:MM:SS */
	if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo)
	    || s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't')
	    || !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':'
	    || !digits(s + 17, 2, &sec))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
		return false;
	const char *p = s + 19;
	int32_t nanos = 0;
	if (*p == '.') {
		p++;
		int n = 0;
		int32_t scale = 100000000;
		while (*p >= '0' && *p <= '9') {
			if (n < 9) {
				nanos += (int32_t)(*p - '0') * scale;
				scale /= 10;
			}
			n++;
			p++;
		}
		if (n == 0)
			return false;
	}
	int offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23
		    || om > 59)
			return false;
		offset = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return false;
	}
	if (*p)
		return false;
	if (sec == 60)
		sec = 59; /* a leap second compares as the second before it */
	out->seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
	out->nanos = nanos;
	return true;
}

int
sm_time_compare(const struct sm_time *a, const struct sm_time *b)
{
	if (a->seconds != b->seconds)
		return a->seconds < b->seconds ? -1 : 1;
	if (a->nanos != b->nanos)
		return a->nanos < b->nanos ? -1 : 1;
	return 0;
}

/* ---- freeing ----------------------------------------------------------------------------- */

void
sm_error_match_clear(struct sm_error_match *m)
{
	for (size_t i = 0; i < m->n_names; i++)
		sl_free(m->names[i]);
	sl_free(m->names);
	memset(m, 0, sizeof *m);
}

static void
rule_clear(struct sm_choice_rule *r)
{
	sm_path_free(r->variable);
	sm_path_free(r->operand.path);
	json_decref(r->operand.literal);
	for (size_t i = 0; i < r->n_children; i++)
		rule_clear(&r->children[i]);
	sl_free(r->children);
	sm_template_free(r->assign);
}

static void
expr_clear(struct sm_expr *e)
{
	sm_path_free(e->path);
	sm_intrinsic_free(e->fn);
}

void
sm_state_clear(struct sm_state *st)
{
	sl_free(st->name);
	sl_free(st->comment);
	sm_path_free(st->input_path.path);
	sm_path_free(st->output_path.path);
	sm_path_free(st->result_path.path);
	sm_template_free(st->parameters);
	sm_template_free(st->result_selector);
	json_decref(st->result);
	sm_template_free(st->assign);
	for (size_t i = 0; i < st->n_retry; i++)
		sm_error_match_clear(&st->retry[i].errors);
	sl_free(st->retry);
	for (size_t i = 0; i < st->n_catch; i++) {
		sm_error_match_clear(&st->catch_[i].errors);
		sm_path_free(st->catch_[i].result_path.path);
		sm_template_free(st->catch_[i].assign);
	}
	sl_free(st->catch_);
	switch (st->type) {
	case SM_STATE_TASK:
		sl_free(st->u.task.resource);
		sl_free(st->u.task.name);
		sl_free(st->u.task.action);
		sm_path_free(st->u.task.timeout_seconds_path);
		sm_path_free(st->u.task.heartbeat_seconds_path);
		break;
	case SM_STATE_CHOICE:
		for (size_t i = 0; i < st->u.choice.n_rules; i++)
			rule_clear(&st->u.choice.rules[i]);
		sl_free(st->u.choice.rules);
		break;
	case SM_STATE_WAIT:
		sm_path_free(st->u.wait.seconds_path);
		sm_path_free(st->u.wait.timestamp_path);
		sl_free(st->u.wait.timestamp_text);
		break;
	case SM_STATE_FAIL:
		sl_free(st->u.fail.error);
		sl_free(st->u.fail.cause);
		expr_clear(&st->u.fail.error_path);
		expr_clear(&st->u.fail.cause_path);
		break;
	case SM_STATE_PARALLEL:
		for (size_t i = 0; i < st->u.parallel.n_branches; i++)
			sm_machine_free(st->u.parallel.branches[i]);
		sl_free(st->u.parallel.branches);
		break;
	case SM_STATE_MAP:
		sm_machine_free(st->u.map.processor);
		sm_path_free(st->u.map.items_path);
		sm_template_free(st->u.map.item_selector);
		sm_path_free(st->u.map.max_concurrency_path);
		sm_path_free(st->u.map.tolerated_failure_count_path);
		sm_path_free(st->u.map.tolerated_failure_percentage_path);
		json_decref(st->u.map.item_reader);
		json_decref(st->u.map.item_batcher);
		json_decref(st->u.map.result_writer);
		sl_free(st->u.map.label);
		break;
	default: break;
	}
	memset(st, 0, sizeof *st);
}

void
sm_machine_free(struct sm_machine *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_states; i++)
		sm_state_clear(&m->states[i]);
	sl_free(m->states);
	sl_free(m->comment);
	sl_free(m->version);
	sl_free(m);
}
