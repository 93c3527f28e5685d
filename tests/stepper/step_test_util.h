/*
 * step_test_util.h - helpers the stepper tests share: temporary stores, the shared
 * directory, running one definition text to its end.
 */
#ifndef SLUICE_TESTS_STEPPER_STEP_TEST_UTIL_H
#define SLUICE_TESTS_STEPPER_STEP_TEST_UTIL_H

#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/sl_alloc.h"

static inline int
step_test_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void
step_test_rmtree(const char *dir)
{
	nftw(dir, step_test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* $SLUICE_SHARED/rel, or NULL when the variable is not set. New string. */
static inline char *
step_test_shared(const char *rel)
{
	const char *shared = getenv("SLUICE_SHARED");
	return shared ? sl_asprintf("%s/%s", shared, rel) : NULL;
}

#endif
