#include "common/sl_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = SL_LOG_INFO;
static atomic_int log_format = SL_LOG_PLAIN;

static const char *const level_names[] = { "debug", "info", "warn", "error", "off" };

void
sl_log_set_level(enum sl_log_level level)
{
	atomic_store(&log_level, (int)level);
}

void
sl_log_set_format(enum sl_log_format format)
{
	atomic_store(&log_format, (int)format);
}

bool
sl_log_parse_level(const char *s, enum sl_log_level *out)
{
	for (int i = 0; i <= SL_LOG_OFF; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum sl_log_level)i;
			return true;
		}
	}
	return false;
}

bool
sl_log_parse_format(const char *s, enum sl_log_format *out)
{
	if (strcmp(s, "plain") == 0 || strcmp(s, "text") == 0)
		*out = SL_LOG_PLAIN;
	else if (strcmp(s, "json") == 0)
		*out = SL_LOG_JSON;
	else
		return false;
	return true;
}

bool
sl_log_enabled(enum sl_log_level level)
{
	return (int)level >= atomic_load(&log_level);
}

/* Appends s to buf as the inside of a JSON string. */
static size_t
json_escape(char *buf, size_t cap, size_t n, const char *s)
{
	for (; *s && n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", c);
		} else {
			buf[n++] = (char)c;
		}
	}
	return n;
}

void
sl_log(enum sl_log_level level, const char *module, const char *fmt, ...)
{
	if (!sl_log_enabled(level) || level >= SL_LOG_OFF)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[40];
	size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + w, sizeof when - w, ".%03ldZ", ts.tv_nsec / 1000000);

	char line[4096];
	size_t n;
	if (atomic_load(&log_format) == SL_LOG_JSON) {
		n = (size_t)snprintf(line, sizeof line,
		                     "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"", when,
		                     level_names[level]);
		n = json_escape(line, sizeof line, n, module ? module : "");
		n += (size_t)snprintf(line + n, sizeof line - n, "\",\"msg\":\"");
		n = json_escape(line, sizeof line, n, msg);
		n += (size_t)snprintf(line + n, sizeof line - n, "\"}\n");
	} else {
		n = (size_t)snprintf(line, sizeof line, "%s %-5s %s: %s\n", when,
		                     level_names[level], module ? module : "-", msg);
	}
	if (n >= sizeof line) {
		n = sizeof line;
		line[n - 1] = '\n';
	}
	ssize_t wr = write(STDERR_FILENO, line, n);
	(void)wr;
}
