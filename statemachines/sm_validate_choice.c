/*
 * sm_validate_choice.c - Choice rules: one operator per rule, Variable with the data tests,
 * And/Or/Not nesting, Next only at the top, operands typed by their family.
 */
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/sm_validate_int.h"

enum family { F_STRING, F_NUMERIC, F_BOOLEAN, F_TIMESTAMP, F_TYPE_TEST };

static const struct op_info {
	const char *name;
	enum sm_choice_op op;
	enum family family;
	bool has_path_variant;
} ops[] = {
	{ "StringEquals", SM_OP_STRING_EQUALS, F_STRING, true },
	{ "StringLessThan", SM_OP_STRING_LESS_THAN, F_STRING, true },
	{ "StringGreaterThan", SM_OP_STRING_GREATER_THAN, F_STRING, true },
	{ "StringLessThanEquals", SM_OP_STRING_LESS_THAN_EQUALS, F_STRING, true },
	{ "StringGreaterThanEquals", SM_OP_STRING_GREATER_THAN_EQUALS, F_STRING, true },
	{ "StringMatches", SM_OP_STRING_MATCHES, F_STRING, false },
	{ "NumericEquals", SM_OP_NUMERIC_EQUALS, F_NUMERIC, true },
	{ "NumericLessThan", SM_OP_NUMERIC_LESS_THAN, F_NUMERIC, true },
	{ "NumericGreaterThan", SM_OP_NUMERIC_GREATER_THAN, F_NUMERIC, true },
	{ "NumericLessThanEquals", SM_OP_NUMERIC_LESS_THAN_EQUALS, F_NUMERIC, true },
	{ "NumericGreaterThanEquals", SM_OP_NUMERIC_GREATER_THAN_EQUALS, F_NUMERIC, true },
	{ "BooleanEquals", SM_OP_BOOLEAN_EQUALS, F_BOOLEAN, true },
	{ "TimestampEquals", SM_OP_TIMESTAMP_EQUALS, F_TIMESTAMP, true },
	{ "TimestampLessThan", SM_OP_TIMESTAMP_LESS_THAN, F_TIMESTAMP, true },
	{ "TimestampGreaterThan", SM_OP_TIMESTAMP_GREATER_THAN, F_TIMESTAMP, true },
	{ "TimestampLessThanEquals", SM_OP_TIMESTAMP_LESS_THAN_EQUALS, F_TIMESTAMP, true },
	{ "TimestampGreaterThanEquals", SM_OP_TIMESTAMP_GREATER_THAN_EQUALS, F_TIMESTAMP, true },
	{ "IsNull", SM_OP_IS_NULL, F_TYPE_TEST, false },
	{ "IsPresent", SM_OP_IS_PRESENT, F_TYPE_TEST, false },
	{ "IsNumeric", SM_OP_IS_NUMERIC, F_TYPE_TEST, false },
	{ "IsString", SM_OP_IS_STRING, F_TYPE_TEST, false },
	{ "IsBoolean", SM_OP_IS_BOOLEAN, F_TYPE_TEST, false },
	{ "IsTimestamp", SM_OP_IS_TIMESTAMP, F_TYPE_TEST, false },
};

const char *
sm_choice_op_name(enum sm_choice_op op)
{
	switch (op) {
	case SM_OP_AND: return "And";
	case SM_OP_OR: return "Or";
	case SM_OP_NOT: return "Not";
	default: break;
	}
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
		if (ops[i].op == op)
			return ops[i].name;
	return "?";
}

/* Finds the comparison a key names ("NumericEqualsPath" -> NumericEquals, path). */
static const struct op_info *
find_op(const char *key, bool *is_path)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
		size_t nl = strlen(ops[i].name);
		if (!strncmp(key, ops[i].name, nl)) {
			if (kl == nl) {
				*is_path = false;
				return &ops[i];
			}
			if (ops[i].has_path_variant && !strcmp(key + nl, "Path")) {
				*is_path = true;
				return &ops[i];
			}
		}
	}
	return NULL;
}

static const char *
family_type(enum family f)
{
	switch (f) {
	case F_STRING: return "a STRING";
	case F_NUMERIC: return "a NUMBER";
	case F_TIMESTAMP: return "an RFC3339 timestamp STRING";
	default: return "a BOOLEAN";
	}
}

static void rule(struct vctx *v, json_t *r, const char *p, const struct vnames *names, bool top,
                 unsigned depth, struct sm_choice_rule *out);

static void
combinator(struct vctx *v, json_t *r, const char *p, const char *key, const struct vnames *names,
           unsigned depth, struct sm_choice_rule *out)
{
	json_t *val = json_object_get(r, key);
	char *kp = v_ptr(v, p, key);
	if (!kp)
		return;
	if (out->op == SM_OP_NOT) {
		if (!json_is_object(val)) {
			v_report(v, kp,
			         SM_SCHEMA "The value for the field 'Not' must be an OBJECT");
		} else if (!(out->children = SL_NEW(struct sm_choice_rule))) {
			v_nomem(v);
		} else {
			out->n_children = 1;
			rule(v, val, kp, names, false, depth + 1, out->children);
		}
		sl_free(kp);
		return;
	}
	if (!json_is_array(val) || json_array_size(val) == 0) {
		v_report(v, kp, SM_SCHEMA "The value for the field '%s' must be a non-empty ARRAY",
		         key);
		sl_free(kp);
		return;
	}
	size_t n = json_array_size(val);
	if (!(out->children = sl_calloc(n, sizeof *out->children))) {
		v_nomem(v);
		sl_free(kp);
		return;
	}
	for (size_t i = 0; i < n && v->fatal == SL_OK; i++) {
		char *ip = v_ptr_index(v, kp, i);
		if (!ip)
			break;
		json_t *child = json_array_get(val, i);
		out->n_children++;
		out->children[i].next = SM_NO_STATE;
		if (!json_is_object(child))
			v_report(v, ip, SM_SCHEMA "A Choice Rule must be an OBJECT");
		else
			rule(v, child, ip, names, false, depth + 1, &out->children[i]);
		sl_free(ip);
	}
	sl_free(kp);
}

static void
operand(struct vctx *v, json_t *val, const char *p, const char *key, const struct op_info *oi,
        bool is_path, struct sm_choice_rule *out)
{
	char *kp = v_ptr(v, p, key);
	if (!kp)
		return;
	out->operand.literal = json_incref(val);
	if (is_path) {
		struct sl_error err;
		sl_err crc = SL_OK;
		sl_error_clear(&err);
		if (!json_is_string(val)) {
			v_report(v, kp,
			         SM_SCHEMA "The value for the field '%s' must be a valid "
			                   "ReferencePath",
			         key);
		} else if (v_uses_variable(json_string_value(val))) {
			v_variable_problem(v, p, key, json_string_value(val));
		} else if ((crc = sm_path_compile(json_string_value(val), SM_PATH_REFERENCE,
		                                  &out->operand.path, &err))
		           != SL_OK) {
			if ((crc == SL_ERR_NOMEM || err.code == SL_ERR_NOMEM))
				v_nomem(v);
			else
				v_report(v, kp,
				         SM_SCHEMA "The value for the field '%s' must be a valid "
				                   "ReferencePath (%s)",
				         key, sl_error_text(&err));
		}
		sl_free(kp);
		return;
	}
	bool ok;
	switch (oi->family) {
	case F_STRING:
		ok = json_is_string(val);
		if (ok)
			out->operand.string = json_string_value(val);
		break;
	case F_NUMERIC:
		ok = json_is_number(val);
		if (ok)
			out->operand.number = json_number_value(val);
		break;
	case F_TIMESTAMP:
		ok = json_is_string(val)
		        && sm_time_parse(json_string_value(val), &out->operand.time);
		if (ok)
			out->operand.string = json_string_value(val);
		break;
	default:
		ok = json_is_boolean(val);
		if (ok)
			out->operand.boolean = json_is_true(val);
		break;
	}
	if (!ok)
		v_report(v, kp, SM_SCHEMA "The value for the field '%s' must be %s", key,
		         family_type(oi->family));
	sl_free(kp);
}

static void
rule(struct vctx *v, json_t *r, const char *p, const struct vnames *names, bool top, unsigned depth,
     struct sm_choice_rule *out)
{
	out->next = SM_NO_STATE;
	if (depth > 64) {
		v_report(v, p, SM_SCHEMA "Choice Rules are nested more than 64 deep");
		return;
	}
	const char *op_key = NULL;
	const struct op_info *oi = NULL;
	bool is_path = false;
	int n_ops = 0;
	bool unknown = false;
	const char *key;
	json_t *val;
	json_object_foreach(r, key, val)
	{
		bool ip = false;
		const struct op_info *f = NULL;
		bool comb = !strcmp(key, "And") || !strcmp(key, "Or") || !strcmp(key, "Not");
		if (!comb)
			f = find_op(key, &ip);
		if (comb || f) {
			if (++n_ops == 1) {
				op_key = key;
				oi = f;
				is_path = ip;
			}
			continue;
		}
		if (!strcmp(key, "Variable") || !strcmp(key, "Comment"))
			continue;
		if (top && (!strcmp(key, "Next") || !strcmp(key, "Assign")))
			continue;
		if (!strcmp(key, "Condition"))
			v_report_field(v, p, key,
			               SM_SCHEMA
			               "The QueryLanguage is set to 'JSONPath', but field "
			               "'Condition' is only supported for the 'JSONata' "
			               "QueryLanguage");
		else if (!top && (!strcmp(key, "Next") || !strcmp(key, "Assign")))
			v_report_field(v, p, key,
			               SM_SCHEMA "Field '%s' is only allowed in a top-level Choice "
			                         "Rule",
			               key);
		else
			v_report_field(v, p, key, SM_SCHEMA "Field '%s' is not supported", key);
		unknown = true;
	}
	if (n_ops == 0 && unknown) {
		/* an unknown field is most likely the misspelt operator: said already */
	} else if (n_ops == 0) {
		v_report(v, p,
		         SM_SCHEMA "A Choice Rule must have exactly one comparison operator or one "
		                   "of And, Or, Not");
	} else if (n_ops > 1) {
		v_report(v, p,
		         SM_SCHEMA "A Choice Rule must have exactly one comparison operator or one "
		                   "of And, Or, Not (found %d)",
		         n_ops);
	} else if (!oi) {
		out->op = !strcmp(op_key, "And") ? SM_OP_AND
		        : !strcmp(op_key, "Or")  ? SM_OP_OR
		                                 : SM_OP_NOT;
		if (json_object_get(r, "Variable"))
			v_report_field(v, p, "Variable",
			               SM_SCHEMA "Field 'Variable' is not allowed with '%s'",
			               op_key);
		combinator(v, r, p, op_key, names, depth, out);
	} else {
		out->op = oi->op;
		out->operand_is_path = is_path;
		json_t *var = json_object_get(r, "Variable");
		if (!var) {
			v_report(v, p, SM_SCHEMA "These fields are required: [Variable]");
		} else {
			char *vp = v_ptr(v, p, "Variable");
			struct sl_error err;
			sl_err crc = SL_OK;
			sl_error_clear(&err);
			if (vp && !json_is_string(var)) {
				v_report(v, vp,
				         SM_SCHEMA "The value for the field 'Variable' must be a "
				                   "valid ReferencePath");
			} else if (vp && v_uses_variable(json_string_value(var))) {
				v_variable_problem(v, p, "Variable", json_string_value(var));
			} else if (vp
			           && (crc
			               = sm_path_compile(json_string_value(var), SM_PATH_REFERENCE,
			                                 &out->variable, &err))
			                   != SL_OK) {
				if ((crc == SL_ERR_NOMEM || err.code == SL_ERR_NOMEM))
					v_nomem(v);
				else
					v_report(v, vp,
					         SM_SCHEMA
					         "The value for the field 'Variable' must be "
					         "a valid ReferencePath (%s)",
					         sl_error_text(&err));
			}
			sl_free(vp);
		}
		operand(v, json_object_get(r, op_key), p, op_key, oi, is_path, out);
	}
	if (top) {
		json_t *next = json_object_get(r, "Next");
		if (!next) {
			v_report(v, p, SM_SCHEMA "These fields are required: [Next]");
			v->graph_broken = true;
		} else if (!json_is_string(next)) {
			char *np = v_ptr(v, p, "Next");
			if (np)
				v_report(v, np,
				         SM_SCHEMA
				         "The value for the field 'Next' must be a STRING");
			v->graph_broken = true;
			sl_free(np);
		} else {
			out->next = v_target(v, names, json_string_value(next), p, "Next");
		}
		v_template(v, r, p, "Assign", &out->assign);
	}
}

void
v_state_choice(struct vctx *v, json_t *s, const char *p, const struct vnames *names,
               struct sm_state *st)
{
	st->u.choice.default_next = SM_NO_STATE;
	json_t *def = json_object_get(s, "Default");
	if (def) {
		if (!json_is_string(def)) {
			char *dp = v_ptr(v, p, "Default");
			if (dp)
				v_report(v, dp,
				         SM_SCHEMA
				         "The value for the field 'Default' must be a STRING");
			v->graph_broken = true;
			sl_free(dp);
		} else {
			st->u.choice.default_next
			        = v_target(v, names, json_string_value(def), p, "Default");
		}
	}
	json_t *choices = v_require(v, s, p, "Choices");
	if (!choices)
		return;
	char *cp = v_ptr(v, p, "Choices");
	if (!cp)
		return;
	if (!json_is_array(choices) || json_array_size(choices) == 0) {
		v_report(v, cp,
		         SM_SCHEMA "The value for the field 'Choices' must be a non-empty ARRAY");
		sl_free(cp);
		return;
	}
	size_t n = json_array_size(choices);
	if (!(st->u.choice.rules = sl_calloc(n, sizeof *st->u.choice.rules))) {
		v_nomem(v);
		sl_free(cp);
		return;
	}
	for (size_t i = 0; i < n && v->fatal == SL_OK; i++) {
		char *ip = v_ptr_index(v, cp, i);
		if (!ip)
			break;
		json_t *r = json_array_get(choices, i);
		st->u.choice.n_rules++;
		st->u.choice.rules[i].next = SM_NO_STATE;
		if (!json_is_object(r)) {
			v_report(v, ip, SM_SCHEMA "A Choice Rule must be an OBJECT");
			v->graph_broken = true;
		} else {
			rule(v, r, ip, names, true, 0, &st->u.choice.rules[i]);
		}
		sl_free(ip);
	}
	sl_free(cp);
}
