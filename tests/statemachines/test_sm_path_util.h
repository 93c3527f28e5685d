/*
 * test_sm_path_util.h - helpers shared by the two source files of the test_sm_path binary
 * (test_sm_path.c: paths, ResultPath, templates, OOM walks, corpus replay;
 * test_sm_intrinsic.c: intrinsic functions).
 */
#ifndef SLUICE_TESTS_SM_PATH_UTIL_H
#define SLUICE_TESTS_SM_PATH_UTIL_H

#include <jansson.h>
#include <stddef.h>

/* Criterion's workers end without running LeakSanitizer, so ASan builds ask for a leak
 * check after every test. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define SM_LEAK_CHECK() __lsan_do_recoverable_leak_check()
#else
#define SM_LEAK_CHECK() 0
#endif

void setup(void);
void teardown(void);
/* Parses test JSON (any value), failing the test on bad text. */
json_t *J(const char *text);
/* Compact text of v for messages; free() it. */
char *dump(const json_t *v);
void assert_json_eq(json_t *got, const char *want, const char *what);
/* A context object shaped like the one the stepper builds. */
extern const char *const ctx_text;

/* Deterministic generator for the hostile-text tests. */
unsigned fuzz_next(unsigned bound);
void fuzz_text(char *buf, size_t cap, const char *prefix);
void fuzz_mutate(char *buf, size_t cap, const char *seed);

#endif
