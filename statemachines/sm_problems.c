#include "statemachines/sm_problems.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"

sl_err
sm_problems_add(struct sm_problems *p, const char *location, const char *pointer, const char *fmt,
                ...)
{
	if (p->count >= SM_PROBLEMS_MAX) {
		p->dropped++;
		return SL_OK;
	}
	if (p->count == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 8;
		struct sm_problem *n = sl_reallocarray(p->items, ncap, sizeof *n);
		if (!n)
			return SL_ERR_NOMEM;
		p->items = n;
		p->cap = ncap;
	}
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	struct sm_problem *e = &p->items[p->count];
	e->location = sl_strdup(location ? location : "");
	e->pointer = sl_strdup(pointer ? pointer : "");
	e->message = sl_strdup(buf);
	if (!e->location || !e->pointer || !e->message) {
		sl_free(e->location);
		sl_free(e->pointer);
		sl_free(e->message);
		return SL_ERR_NOMEM;
	}
	p->count++;
	return SL_OK;
}

void
sm_problems_clear(struct sm_problems *p)
{
	for (size_t i = 0; i < p->count; i++) {
		sl_free(p->items[i].location);
		sl_free(p->items[i].pointer);
		sl_free(p->items[i].message);
	}
	sl_free(p->items);
	memset(p, 0, sizeof *p);
}
