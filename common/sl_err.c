#include "common/sl_err.h"

#include <stdio.h>
#include <string.h>

struct err_facts {
	const char *name;
	const char *aws_type;
	int status;
	const char *message;
};

static const struct err_facts err_table[] = {
#define SL_ERR_ROW_(code, type, status, msg) [code] = { #code, type, status, msg },
	SL_ERR_LIST(SL_ERR_ROW_)
#undef SL_ERR_ROW_
};

static const struct err_facts *
facts(sl_err code)
{
	if ((unsigned)code >= SL_ERR__COUNT)
		return &err_table[SL_ERR_INTERNAL];
	return &err_table[code];
}

const char *
sl_err_name(sl_err code)
{
	return facts(code)->name;
}

const char *
sl_err_aws_type(sl_err code)
{
	return facts(code)->aws_type;
}

int
sl_err_http_status(sl_err code)
{
	return facts(code)->status;
}

const char *
sl_err_message(sl_err code)
{
	return facts(code)->message;
}

sl_err
sl_error_setv(struct sl_error *e, sl_err code, const char *fmt, va_list ap)
{
	if (!e)
		return code;
	e->code = code;
	if (fmt)
		vsnprintf(e->message, sizeof e->message, fmt, ap);
	else
		snprintf(e->message, sizeof e->message, "%s", sl_err_message(code));
	return code;
}

sl_err
sl_error_set(struct sl_error *e, sl_err code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sl_error_setv(e, code, fmt, ap);
	va_end(ap);
	return code;
}

void
sl_error_clear(struct sl_error *e)
{
	if (!e)
		return;
	e->code = SL_OK;
	e->message[0] = '\0';
}

const char *
sl_error_text(const struct sl_error *e)
{
	if (!e)
		return "";
	if (e->message[0])
		return e->message;
	return sl_err_message(e->code);
}
