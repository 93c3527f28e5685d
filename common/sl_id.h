/*
 * sl_id.h - random identifiers and AWS-form ARNs.
 *
 * Randomness comes from the kernel CSPRNG (getrandom(2)): task tokens and event ids must
 * be unguessable. ARNs use a process-wide region and account, set once by `serve` from its
 * configuration (default us-east-1 / 000000000000, as Step Functions Local).
 */
#ifndef SLUICE_COMMON_SL_ID_H
#define SLUICE_COMMON_SL_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sl_err.h"

#define SL_UUID_STRLEN 36

/* Fills buf with n bytes from the CSPRNG. */
sl_err sl_random_bytes(void *buf, size_t n);
/* Writes a lower-case UUIDv4 and its terminator into out[37]. */
sl_err sl_uuid4(char out[SL_UUID_STRLEN + 1]);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void sl_hex(const void *bytes, size_t n, char *out);

/* Process-wide ARN settings. Both strings are copied; invalid ones are refused. */
sl_err sl_arn_configure(const char *region, const char *account);
const char *sl_arn_region(void);
const char *sl_arn_account(void);
/* True if s is a valid AWS region-looking word (lower-case letters, digits, '-'). */
bool sl_arn_valid_region(const char *s);
/* True if s is 12 decimal digits. */
bool sl_arn_valid_account(const char *s);

/*
 * Formats "arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE" where RESOURCE is the rest of the
 * arguments joined by ':' (e.g. sl_arn_format(buf, n, "states", "stateMachine", "etl",
 * NULL)). Returns SL_ERR_INVALID_ARG if it does not fit.
 */
sl_err sl_arn_format(char *out, size_t cap, const char *service, ...) __attribute__((sentinel));

/* The parts of an ARN, pointing into a caller-owned copy. */
struct sl_arn {
	char *partition, *service, *region, *account, *resource;
};
/* Splits "arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE" in place (buf is modified). */
sl_err sl_arn_parse(char *buf, struct sl_arn *out);

#endif
