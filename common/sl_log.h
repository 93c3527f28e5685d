/*
 * sl_log.h - leveled logging to stderr, as plain text or JSON lines (--log-format json).
 * Thread-safe: each record is written with one write(2).
 */
#ifndef SLUICE_COMMON_SL_LOG_H
#define SLUICE_COMMON_SL_LOG_H

#include <stdbool.h>

enum sl_log_level { SL_LOG_DEBUG, SL_LOG_INFO, SL_LOG_WARN, SL_LOG_ERROR, SL_LOG_OFF };
enum sl_log_format { SL_LOG_PLAIN, SL_LOG_JSON };

void sl_log_set_level(enum sl_log_level level);
void sl_log_set_format(enum sl_log_format format);
/* Parses "debug|info|warn|error|off" / "plain|json"; false on an unknown word. */
bool sl_log_parse_level(const char *s, enum sl_log_level *out);
bool sl_log_parse_format(const char *s, enum sl_log_format *out);
bool sl_log_enabled(enum sl_log_level level);

/* module is a short word ("store", "http"); the message is one line. */
void sl_log(enum sl_log_level level, const char *module, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define sl_debug(mod, ...)  sl_log(SL_LOG_DEBUG, mod, __VA_ARGS__)
#define sl_info(mod, ...)   sl_log(SL_LOG_INFO, mod, __VA_ARGS__)
#define sl_warn(mod, ...)   sl_log(SL_LOG_WARN, mod, __VA_ARGS__)
#define sl_errorf(mod, ...) sl_log(SL_LOG_ERROR, mod, __VA_ARGS__)

#endif
