#include "common/sl_id.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static char arn_region[32] = "us-east-1";
static char arn_account[16] = "000000000000";

sl_err
sl_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return SL_ERR_IO;
		}
		p += r;
		n -= (size_t)r;
	}
	return SL_OK;
}

void
sl_hex(const void *bytes, size_t n, char *out)
{
	static const char hexd[] = "0123456789abcdef";
	const unsigned char *b = bytes;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexd[b[i] >> 4];
		out[2 * i + 1] = hexd[b[i] & 15];
	}
	out[2 * n] = '\0';
}

sl_err
sl_uuid4(char out[SL_UUID_STRLEN + 1])
{
	unsigned char b[16];
	sl_err rc = sl_random_bytes(b, sizeof b);
	if (rc)
		return rc;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	char hex[33];
	sl_hex(b, 16, hex);
	snprintf(out, SL_UUID_STRLEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
	         hex + 16, hex + 20);
	return SL_OK;
}

bool
sl_arn_valid_region(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof arn_region)
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-'))
			return false;
	return true;
}

bool
sl_arn_valid_account(const char *s)
{
	if (strlen(s) != 12)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

sl_err
sl_arn_configure(const char *region, const char *account)
{
	if (region && !sl_arn_valid_region(region))
		return SL_ERR_INVALID_ARG;
	if (account && !sl_arn_valid_account(account))
		return SL_ERR_INVALID_ARG;
	if (region)
		snprintf(arn_region, sizeof arn_region, "%s", region);
	if (account)
		snprintf(arn_account, sizeof arn_account, "%s", account);
	return SL_OK;
}

const char *
sl_arn_region(void)
{
	return arn_region;
}

const char *
sl_arn_account(void)
{
	return arn_account;
}

sl_err
sl_arn_format(char *out, size_t cap, const char *service, ...)
{
	int n = snprintf(out, cap, "arn:aws:%s:%s:%s", service, arn_region, arn_account);
	if (n < 0 || (size_t)n >= cap)
		return SL_ERR_INVALID_ARG;
	size_t len = (size_t)n;
	va_list ap;
	va_start(ap, service);
	const char *part;
	while ((part = va_arg(ap, const char *)) != NULL) {
		n = snprintf(out + len, cap - len, ":%s", part);
		if (n < 0 || (size_t)n >= cap - len) {
			va_end(ap);
			return SL_ERR_INVALID_ARG;
		}
		len += (size_t)n;
	}
	va_end(ap);
	return SL_OK;
}

sl_err
sl_arn_parse(char *buf, struct sl_arn *out)
{
	char *parts[6];
	char *p = buf;
	for (int i = 0; i < 5; i++) {
		char *c = strchr(p, ':');
		if (!c)
			return SL_ERR_INVALID_ARN;
		*c = '\0';
		parts[i] = p;
		p = c + 1;
	}
	parts[5] = p;
	if (strcmp(parts[0], "arn") != 0 || !parts[1][0] || !parts[2][0])
		return SL_ERR_INVALID_ARN;
	out->partition = parts[1];
	out->service = parts[2];
	out->region = parts[3];
	out->account = parts[4];
	out->resource = parts[5];
	return SL_OK;
}
