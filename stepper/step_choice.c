/*
 * step_choice.c - Choice rules. Comparisons of mismatched types are false, never errors;
 * a Variable that names nothing is a States.Runtime error except for IsPresent.
 */
#include <math.h>
#include <string.h>

#include "stepper/step_int.h"

/* StringMatches: '*' matches any run of characters; "\*" and "\\" are literal. */
static bool
wildcard(const char *pat, const char *s)
{
	while (*pat) {
		if (*pat == '*') {
			while (*pat == '*')
				pat++;
			if (!*pat)
				return true;
			for (const char *t = s; *t; t++)
				if (wildcard(pat, t))
					return true;
			return wildcard(pat, s + strlen(s));
		}
		char want = *pat;
		if (want == '\\' && (pat[1] == '*' || pat[1] == '\\')) {
			want = pat[1];
			pat++;
		}
		if (*s != want)
			return false;
		pat++;
		s++;
	}
	return *s == 0;
}

static bool
is_timestamp(json_t *v, struct sm_time *t)
{
	struct sm_time tmp;
	return json_is_string(v) && sm_time_parse(json_string_value(v), t ? t : &tmp);
}

static int
cmp_num(double a, double b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

static bool
order_ok(enum sm_choice_op op, int c)
{
	switch (op) {
	case SM_OP_STRING_EQUALS:
	case SM_OP_NUMERIC_EQUALS:
	case SM_OP_TIMESTAMP_EQUALS: return c == 0;
	case SM_OP_STRING_LESS_THAN:
	case SM_OP_NUMERIC_LESS_THAN:
	case SM_OP_TIMESTAMP_LESS_THAN: return c < 0;
	case SM_OP_STRING_GREATER_THAN:
	case SM_OP_NUMERIC_GREATER_THAN:
	case SM_OP_TIMESTAMP_GREATER_THAN: return c > 0;
	case SM_OP_STRING_LESS_THAN_EQUALS:
	case SM_OP_NUMERIC_LESS_THAN_EQUALS:
	case SM_OP_TIMESTAMP_LESS_THAN_EQUALS: return c <= 0;
	case SM_OP_STRING_GREATER_THAN_EQUALS:
	case SM_OP_NUMERIC_GREATER_THAN_EQUALS:
	case SM_OP_TIMESTAMP_GREATER_THAN_EQUALS: return c >= 0;
	default: return false;
	}
}

static sl_err
get_value(const struct step_frame *f, struct sm_path *p, json_t *input, json_t *ctx, json_t **out,
          bool *present, struct step_fault *ft)
{
	struct sm_fault sf = { 0 };
	sl_err e = sm_path_get_fault(p, input, ctx, out, &sf);
	if (e == SL_OK) {
		*present = true;
		return SL_OK;
	}
	*out = NULL;
	*present = false;
	if (e == SL_ERR_NOT_FOUND && ft)
		step_fault_runtime(ft, f, "States.Runtime", "%s", sf.cause);
	return e;
}

static sl_err
eval_rule(const struct step_frame *f, const struct sm_choice_rule *r, json_t *input, json_t *ctx,
          bool *out, struct step_fault *ft)
{
	sl_err e;
	bool b;
	switch (r->op) {
	case SM_OP_AND:
	case SM_OP_OR:
		for (size_t i = 0; i < r->n_children; i++) {
			if ((e = eval_rule(f, &r->children[i], input, ctx, &b, ft)) != SL_OK)
				return e;
			if (r->op == SM_OP_AND ? !b : b) {
				*out = b;
				return SL_OK;
			}
		}
		*out = r->op == SM_OP_AND;
		return SL_OK;
	case SM_OP_NOT:
		if ((e = eval_rule(f, &r->children[0], input, ctx, &b, ft)) != SL_OK)
			return e;
		*out = !b;
		return SL_OK;
	default: break;
	}
	json_t *v = NULL;
	bool present;
	if (r->op == SM_OP_IS_PRESENT) {
		e = get_value(f, r->variable, input, ctx, &v, &present, NULL);
		json_decref(v);
		if (e != SL_OK && e != SL_ERR_NOT_FOUND)
			return e;
		*out = present == r->operand.boolean;
		return SL_OK;
	}
	if ((e = get_value(f, r->variable, input, ctx, &v, &present, ft)) != SL_OK)
		return e == SL_ERR_NOT_FOUND ? SL_ERR_INVALID_ARG : e;
	json_t *opnd = NULL;
	if (r->operand_is_path) {
		if ((e = get_value(f, r->operand.path, input, ctx, &opnd, &present, ft)) != SL_OK) {
			json_decref(v);
			return e == SL_ERR_NOT_FOUND ? SL_ERR_INVALID_ARG : e;
		}
	}
	bool res = false;
	struct sm_time ta, tb;
	switch (r->op) {
	case SM_OP_IS_NULL: res = json_is_null(v) == r->operand.boolean; break;
	case SM_OP_IS_NUMERIC: res = json_is_number(v) == r->operand.boolean; break;
	case SM_OP_IS_STRING: res = json_is_string(v) == r->operand.boolean; break;
	case SM_OP_IS_BOOLEAN: res = json_is_boolean(v) == r->operand.boolean; break;
	case SM_OP_IS_TIMESTAMP: res = is_timestamp(v, NULL) == r->operand.boolean; break;
	case SM_OP_STRING_MATCHES:
		res = json_is_string(v) && wildcard(r->operand.string, json_string_value(v));
		break;
	case SM_OP_STRING_EQUALS:
	case SM_OP_STRING_LESS_THAN:
	case SM_OP_STRING_GREATER_THAN:
	case SM_OP_STRING_LESS_THAN_EQUALS:
	case SM_OP_STRING_GREATER_THAN_EQUALS: {
		const char *b2 = opnd ? json_string_value(opnd) : r->operand.string;
		if (json_is_string(v) && b2)
			res = order_ok(r->op, strcmp(json_string_value(v), b2));
		break;
	}
	case SM_OP_NUMERIC_EQUALS:
	case SM_OP_NUMERIC_LESS_THAN:
	case SM_OP_NUMERIC_GREATER_THAN:
	case SM_OP_NUMERIC_LESS_THAN_EQUALS:
	case SM_OP_NUMERIC_GREATER_THAN_EQUALS:
		if (json_is_number(v) && (!opnd || json_is_number(opnd)))
			res = order_ok(r->op,
			               cmp_num(json_number_value(v),
			                       opnd ? json_number_value(opnd) : r->operand.number));
		break;
	case SM_OP_BOOLEAN_EQUALS:
		if (json_is_boolean(v) && (!opnd || json_is_boolean(opnd)))
			res = json_is_true(v) == (opnd ? json_is_true(opnd) : r->operand.boolean);
		break;
	case SM_OP_TIMESTAMP_EQUALS:
	case SM_OP_TIMESTAMP_LESS_THAN:
	case SM_OP_TIMESTAMP_GREATER_THAN:
	case SM_OP_TIMESTAMP_LESS_THAN_EQUALS:
	case SM_OP_TIMESTAMP_GREATER_THAN_EQUALS:
		if (is_timestamp(v, &ta)) {
			if (opnd)
				present = is_timestamp(opnd, &tb);
			else
				tb = r->operand.time, present = true;
			if (present)
				res = order_ok(r->op, sm_time_compare(&ta, &tb));
		}
		break;
	default: break;
	}
	json_decref(v);
	json_decref(opnd);
	*out = res;
	return SL_OK;
}

sl_err
step_choice_eval(const struct step_frame *f, json_t *input, json_t *ctx, size_t *next,
                 struct step_fault *ft)
{
	const struct sm_state *s = &f->m->states[f->st];
	for (size_t i = 0; i < s->u.choice.n_rules; i++) {
		bool b = false;
		sl_err e = eval_rule(f, &s->u.choice.rules[i], input, ctx, &b, ft);
		if (e != SL_OK)
			return e;
		if (b) {
			*next = s->u.choice.rules[i].next;
			return SL_OK;
		}
	}
	*next = s->u.choice.default_next;
	return SL_OK;
}
