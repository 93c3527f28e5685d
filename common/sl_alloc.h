/*
 * sl_alloc.h - the allocator every module uses (and jansson too, after sl_alloc_init).
 *
 * Library code returns SL_ERR_NOMEM when these return NULL; only main() decides to abort.
 * Fault injection: sl_alloc_fail_after(n) makes the (n+1)-th allocation from now fail, and
 * every later one succeed again, so a test can walk n = 0, 1, 2, ... over a constructor until
 * it succeeds and check each failure is a clean SL_ERR_NOMEM with no leak (SQLite's
 * *fault.test, libuv's test-loop-oom in miniature). The check is one relaxed atomic load.
 */
#ifndef SLUICE_COMMON_SL_ALLOC_H
#define SLUICE_COMMON_SL_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *sl_malloc(size_t size);
void *sl_calloc(size_t n, size_t size); /* overflow-checked */
void *sl_realloc(void *p, size_t size);
/* Array growth: realloc to n * size with overflow check. */
void *sl_reallocarray(void *p, size_t n, size_t size);
void sl_free(void *p);
char *sl_strdup(const char *s);
char *sl_strndup(const char *s, size_t n);
/* printf into a new string; NULL on failure. */
char *sl_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Routes jansson's allocations through sl_malloc/sl_free. Call once, before any json_*. */
void sl_alloc_init(void);

/* Fault injection for tests. n < 0 disables it (the default). */
void sl_alloc_fail_after(long n);
/* True while an injected failure is armed and has not happened yet: a walk over code whose
 * failures are absorbed (caches) knows when n went past its last allocation. */
bool sl_alloc_fail_pending(void);
/* How many allocations have failed so far (injected or real). jansson's parser drops
 * characters silently when an allocation fails inside it: a caller compares this before
 * and after a parse to know the result cannot be trusted. */
unsigned long sl_alloc_failures(void);

#define SL_NEW(type) ((type *)sl_calloc(1, sizeof(type)))

#endif
