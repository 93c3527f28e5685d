/*
 * store_test_util.h - temporary data directories for the store tests.
 */
#ifndef SLUICE_TESTS_STORE_TEST_UTIL_H
#define SLUICE_TESTS_STORE_TEST_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
st_util_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Creates a fresh directory under TMPDIR (or /tmp); the caller frees the path with
 * st_util_rmdir. */
static inline char *
st_util_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[512];
	snprintf(tmpl, sizeof(tmpl), "%s/sluice-store-XXXXXX", base && *base ? base : "/tmp");
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

static inline void
st_util_rmdir(char *dir)
{
	if (!dir)
		return;
	nftw(dir, st_util_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

#endif
