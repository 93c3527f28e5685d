#include "common/sl_alloc.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown = -1;

/* Every allocation passes here: while injection is off this is one relaxed load, no locked
 * instruction (a shared counter here cost 6 % of the engine's time). */
static inline int
should_fail(void)
{
	long c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
	if (c < 0)
		return 0;
	c = atomic_fetch_sub(&fail_countdown, 1);
	if (c == 0) {
		atomic_store(&fail_countdown, -1);
		return 1;
	}
	return 0;
}

void
sl_alloc_fail_after(long n)
{
	atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

bool
sl_alloc_fail_pending(void)
{
	return atomic_load(&fail_countdown) >= 0;
}

static atomic_ulong failures;

/* Counted only when an allocation fails: the success path stays as it was. */
static void *
counted(void *p)
{
	if (!p)
		atomic_fetch_add_explicit(&failures, 1, memory_order_relaxed);
	return p;
}

unsigned long
sl_alloc_failures(void)
{
	return atomic_load_explicit(&failures, memory_order_relaxed);
}

void *
sl_malloc(size_t size)
{
	if (should_fail())
		return counted(NULL);
	return counted(malloc(size ? size : 1));
}

void *
sl_calloc(size_t n, size_t size)
{
	if (should_fail())
		return counted(NULL);
	if (n == 0 || size == 0)
		return counted(calloc(1, 1));
	return counted(calloc(n, size));
}

void *
sl_realloc(void *p, size_t size)
{
	if (should_fail())
		return counted(NULL);
	return counted(realloc(p, size ? size : 1));
}

void *
sl_reallocarray(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return sl_realloc(p, n * size);
}

void
sl_free(void *p)
{
	free(p);
}

char *
sl_strndup(const char *s, size_t n)
{
	char *d = sl_malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *
sl_strdup(const char *s)
{
	return s ? sl_strndup(s, strlen(s)) : NULL;
}

char *
sl_asprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *s = sl_malloc((size_t)n + 1);
	if (!s)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

void
sl_alloc_init(void)
{
	json_set_alloc_funcs(sl_malloc, sl_free);
}
