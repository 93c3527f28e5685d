/*
 * srv_config.c - `sluice serve` settings: defaults, a YAML file, then command-line flags.
 *
 * The file is one mapping with the flag names as keys, plus a nested `limits` mapping.
 * Everything is validated here, so the server never starts on a value it cannot honour;
 * every message says where the value came from (file:line:column or --flag).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/sl_alloc.h"
#include "common/sl_clock.h"
#include "common/sl_id.h"
#include "server/srv.h"

#define CONFIG_FILE_MAX (1024 * 1024)
#define MAX_BODY_LIMIT  (64u * 1024 * 1024)

sl_err
srv_config_init(struct srv_config *c)
{
	memset(c, 0, sizeof *c);
	c->data_dir = sl_strdup(SRV_DEFAULT_DATA);
	c->http = sl_strdup(SRV_DEFAULT_HTTP);
	c->workers = sl_strdup(SRV_DEFAULT_WORKERS);
	c->region = sl_strdup("us-east-1");
	c->account = sl_strdup("000000000000");
	c->log_level = SL_LOG_INFO;
	c->log_format = SL_LOG_PLAIN;
	c->max_body = SRV_DEFAULT_MAX_BODY;
	c->max_header = 64 * 1024;
	c->max_connections = 1024;
	c->idle_timeout_s = 60;
	c->drain_timeout_s = 10;
	c->rules_per_bus = 300;
	c->delivery_backoff_ms = 1000;
	c->delivery_backoff_cap_ms = 300 * 1000;
	c->delivery_timeout_ms = 5000;
	c->delivery_max_inflight = 64;
	c->event_retention_s = 24 * 3600;
	c->execution_retention_s = 90LL * 24 * 3600; // AWS keeps a closed execution 90 days
	if (!c->data_dir || !c->http || !c->workers || !c->region || !c->account) {
		srv_config_clear(c);
		return SL_ERR_NOMEM;
	}
	return SL_OK;
}

void
srv_config_clear(struct srv_config *c)
{
	if (!c)
		return;
	sl_free(c->data_dir);
	sl_free(c->http);
	sl_free(c->workers);
	sl_free(c->region);
	sl_free(c->account);
	sl_free(c->workers_token);
	sl_free(c->workers_cert);
	sl_free(c->workers_key);
	sl_free(c->item_reader_root);
	sl_free(c->mock_config);
	memset(c, 0, sizeof *c);
}

sl_err
srv_parse_hostport(const char *s, char *host, size_t host_cap, uint16_t *port, struct sl_error *err)
{
	const char *colon, *hs, *he;
	if (s[0] == '[') {
		he = strchr(s, ']');
		if (!he || he[1] != ':')
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "expected [IPV6]:PORT, got '%.64s'", s);
		hs = s + 1;
		colon = he + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "expected HOST:PORT, got '%.64s'", s);
		hs = s;
		he = colon;
	}
	size_t hl = (size_t)(he - hs);
	if (hl == 0 || hl >= host_cap)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "expected a host name or address before ':' in '%.64s'", s);
	for (const char *p = hs; p < he; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != ':')
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "host in '%.64s' has a character that is not allowed",
			                    s);
	const char *ps = colon + 1;
	if (*ps == '\0' || strlen(ps) > 5)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "expected a port number 0-65535 after ':' in '%.64s'", s);
	unsigned long v = 0;
	for (const char *p = ps; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "expected a port number 0-65535 after ':' in '%.64s'",
			                    s);
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "port %lu is over 65535", v);
	memcpy(host, hs, hl);
	host[hl] = '\0';
	*port = (uint16_t)v;
	return SL_OK;
}

/* A duration: 0 (off), or a number with s, m, h or d, from 60 s to 3650 days. */
static sl_err
parse_duration(const char *v, const char *where, int64_t *out, struct sl_error *err)
{
	char *end;
	errno = 0;
	unsigned long long n = isdigit((unsigned char)v[0]) ? strtoull(v, &end, 10) : 0;
	if (isdigit((unsigned char)v[0]) && !errno && n == 0 && *end == '\0') {
		*out = 0;
		return SL_OK;
	}
	long long mul = 0;
	if (isdigit((unsigned char)v[0]) && !errno && end[0] && !end[1])
		mul = end[0] == 's'     ? 1
		        : end[0] == 'm' ? 60
		        : end[0] == 'h' ? 3600
		        : end[0] == 'd' ? 86400
		                        : 0;
	if (!mul || n > 3650ULL * 86400 || n * (unsigned long long)mul < 60
	    || n * (unsigned long long)mul > 3650ULL * 86400)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "%s: expected 0 or a duration such as 90m, 24h or 7d (60 s to "
		                    "3650 d), got '%.64s'",
		                    where, v);
	*out = (int64_t)(n * (unsigned long long)mul);
	return SL_OK;
}

/* Decimal with an optional K/M suffix (KiB/MiB), bounded. */
static sl_err
parse_size(const char *v, const char *where, size_t lo, size_t hi, size_t *out,
           struct sl_error *err)
{
	char *end;
	if (!isdigit((unsigned char)v[0]))
		goto bad;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno)
		goto bad;
	unsigned long long mul = 1;
	if (*end == 'k' || *end == 'K') {
		mul = 1024;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		mul = 1024 * 1024;
		end++;
	}
	if (*end != '\0' || n > ULLONG_MAX / mul)
		goto bad;
	n *= mul;
	if (n < lo || n > hi)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "%s: %llu is out of range %zu-%zu",
		                    where, n, lo, hi);
	*out = (size_t)n;
	return SL_OK;
bad:
	return sl_error_set(err, SL_ERR_INVALID_ARG,
	                    "%s: expected a size in bytes (optionally with K or M), got '%.64s'",
	                    where, v);
}

static sl_err
parse_uint(const char *v, const char *where, unsigned lo, unsigned hi, unsigned *out,
           struct sl_error *err)
{
	char *end;
	errno = 0;
	unsigned long n = isdigit((unsigned char)v[0]) ? strtoul(v, &end, 10) : 0;
	if (!isdigit((unsigned char)v[0]) || errno || *end != '\0')
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "%s: expected a whole number, got '%.64s'", where, v);
	if (n < lo || n > hi)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "%s: %lu is out of range %u-%u", where,
		                    n, lo, hi);
	*out = (unsigned)n;
	return SL_OK;
}

/* --virtual-time START: RFC 3339 ("2026-03-27T00:00:00Z") or epoch milliseconds. */
static sl_err
parse_virtual_time(struct srv_config *c, const char *v, const char *where, struct sl_error *err)
{
	char *end;
	errno = 0;
	long long ms = isdigit((unsigned char)v[0]) ? strtoll(v, &end, 10) : -1;
	if (ms >= 0 && !errno && *end == '\0') {
		c->virtual_time_ms = ms;
	} else if (!sl_clock_parse_rfc3339(v, &c->virtual_time_ms) || c->virtual_time_ms < 0) {
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "%s: expected an RFC 3339 time (2026-03-27T00:00:00Z) or epoch "
		                    "milliseconds, got '%.64s'",
		                    where, v);
	}
	c->virtual_time = true;
	return SL_OK;
}

static sl_err
replace_str(char **slot, const char *v)
{
	char *d = sl_strdup(v);
	if (!d)
		return SL_ERR_NOMEM;
	sl_free(*slot);
	*slot = d;
	return SL_OK;
}

static sl_err
check_workers_url(const char *v, const char *where, struct sl_error *err)
{
	if (strncmp(v, "tcp://", 6) == 0 || strncmp(v, "tls+tcp://", 10) == 0) {
		char host[256];
		uint16_t port;
		struct sl_error e;
		const char *hp = strstr(v, "://") + 3;
		if (srv_parse_hostport(hp, host, sizeof host, &port, &e) != SL_OK)
			return sl_error_set(err, SL_ERR_INVALID_ARG, "%s: %s", where, e.message);
		return SL_OK;
	}
	if ((strncmp(v, "ipc://", 6) == 0 || strncmp(v, "inproc://", 9) == 0)
	    && strlen(strstr(v, "://") + 3) > 0)
		return SL_OK;
	return sl_error_set(err, SL_ERR_INVALID_ARG,
	                    "%s: expected an NNG URL tcp://HOST:PORT, tls+tcp://HOST:PORT, "
	                    "ipc://PATH or inproc://NAME, got '%.64s'",
	                    where, v);
}

sl_err
srv_config_set(struct srv_config *c, const char *key, const char *v, const char *where,
               struct sl_error *err)
{
	sl_err rc;
	if (strcmp(key, "data") == 0) {
		if (v[0] == '\0' || strlen(v) > 4000)
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "%s: expected a directory path", where);
		return replace_str(&c->data_dir, v);
	}
	if (strcmp(key, "http") == 0) {
		char host[256];
		uint16_t port;
		struct sl_error e;
		if (srv_parse_hostport(v, host, sizeof host, &port, &e) != SL_OK)
			return sl_error_set(err, SL_ERR_INVALID_ARG, "%s: %s", where, e.message);
		return replace_str(&c->http, v);
	}
	if (strcmp(key, "workers") == 0) {
		if ((rc = check_workers_url(v, where, err)) != SL_OK)
			return rc;
		return replace_str(&c->workers, v);
	}
	if (strcmp(key, "workers-token") == 0) {
		if (v[0] == '\0' || strlen(v) > 1024)
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "%s: expected a secret of 1 to 1024 characters", where);
		return replace_str(&c->workers_token, v);
	}
	if (strcmp(key, "workers-cert") == 0 || strcmp(key, "workers-key") == 0) {
		if (v[0] == '\0' || strlen(v) > 4000)
			return sl_error_set(err, SL_ERR_INVALID_ARG, "%s: expected a PEM file path",
			                    where);
		return replace_str(key[8] == 'c' ? &c->workers_cert : &c->workers_key, v);
	}
	if (strcmp(key, "item-reader-root") == 0) {
		if (v[0] == '\0' || strlen(v) > 4000)
			return sl_error_set(err, SL_ERR_INVALID_ARG, "%s: expected a directory",
			                    where);
		return replace_str(&c->item_reader_root, v);
	}
	if (strcmp(key, "mock-config") == 0) {
		if (v[0] == '\0' || strlen(v) > 4000)
			return sl_error_set(err, SL_ERR_INVALID_ARG, "%s: expected a file path",
			                    where);
		return replace_str(&c->mock_config, v);
	}
	if (strcmp(key, "region") == 0) {
		if (!sl_arn_valid_region(v))
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "%s: expected a region like us-east-1, got '%.64s'",
			                    where, v);
		return replace_str(&c->region, v);
	}
	if (strcmp(key, "account") == 0) {
		if (!sl_arn_valid_account(v))
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "%s: expected a 12-digit account id, got '%.64s'",
			                    where, v);
		return replace_str(&c->account, v);
	}
	if (strcmp(key, "log-level") == 0) {
		if (!sl_log_parse_level(v, &c->log_level))
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "%s: expected debug, info, warn, error or off, got "
			                    "'%.64s'",
			                    where, v);
		return SL_OK;
	}
	if (strcmp(key, "log-format") == 0) {
		if (!sl_log_parse_format(v, &c->log_format))
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "%s: expected plain or json, got '%.64s'", where, v);
		return SL_OK;
	}
	if (strcmp(key, "limits.max-body") == 0)
		return parse_size(v, where, 1024, MAX_BODY_LIMIT, &c->max_body, err);
	if (strcmp(key, "limits.max-header") == 0)
		return parse_size(v, where, 1024, 1024 * 1024, &c->max_header, err);
	if (strcmp(key, "limits.max-connections") == 0)
		return parse_uint(v, where, 1, 65536, &c->max_connections, err);
	if (strcmp(key, "limits.idle-timeout") == 0)
		return parse_uint(v, where, 1, 3600, &c->idle_timeout_s, err);
	if (strcmp(key, "limits.drain-timeout") == 0)
		return parse_uint(v, where, 0, 600, &c->drain_timeout_s, err);
	if (strcmp(key, "limits.rules-per-bus") == 0)
		return parse_uint(v, where, 1, 1000000, &c->rules_per_bus, err);
	if (strcmp(key, "virtual-time") == 0)
		return parse_virtual_time(c, v, where, err);
	if (strcmp(key, "event-retention") == 0)
		return parse_duration(v, where, &c->event_retention_s, err);
	if (strcmp(key, "execution-retention") == 0)
		return parse_duration(v, where, &c->execution_retention_s, err);
	if (strcmp(key, "delivery.backoff-ms") == 0)
		return parse_uint(v, where, 1, 3600 * 1000, &c->delivery_backoff_ms, err);
	if (strcmp(key, "delivery.backoff-cap-ms") == 0)
		return parse_uint(v, where, 1, 24 * 3600 * 1000, &c->delivery_backoff_cap_ms, err);
	if (strcmp(key, "delivery.timeout-ms") == 0)
		return parse_uint(v, where, 10, 600 * 1000, &c->delivery_timeout_ms, err);
	if (strcmp(key, "delivery.max-inflight") == 0)
		return parse_uint(v, where, 1, 4096, &c->delivery_max_inflight, err);
	if (strcmp(key, "delivery.paused") == 0) {
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
			return sl_error_set(err, SL_ERR_INVALID_ARG,
			                    "%s: expected true or false, got '%.64s'", where, v);
		c->delivery_paused = strcmp(v, "true") == 0;
		return SL_OK;
	}
	return sl_error_set(err, SL_ERR_INVALID_ARG, "%s: unknown setting '%.64s'", where, key);
}

/* --- YAML ------------------------------------------------------------------------------ */

static const char *const top_keys[] = { "data",
	                                "http",
	                                "workers",
	                                "region",
	                                "account",
	                                "log-level",
	                                "log-format",
	                                "limits",
	                                "delivery",
	                                "workers-token",
	                                "workers-cert",
	                                "workers-key",
	                                "event-retention",
	                                "execution-retention",
	                                "item-reader-root",
	                                "mock-config" };
static const char *const limit_keys[] = { "max-body",     "max-header",    "max-connections",
	                                  "idle-timeout", "drain-timeout", "rules-per-bus" };
static const char *const delivery_keys[]
        = { "backoff-ms", "backoff-cap-ms", "timeout-ms", "max-inflight", "paused" };

struct yctx {
	yaml_parser_t p;
	const char *name;
	struct sl_error *err;
};

static sl_err
yfail(struct yctx *y, const yaml_mark_t *m, const char *msg, const char *detail)
{
	return sl_error_set(y->err, SL_ERR_INVALID_ARG, "%s:%zu:%zu: %s%s%.64s%s", y->name,
	                    m->line + 1, m->column + 1, msg, detail ? " '" : "",
	                    detail ? detail : "", detail ? "'" : "");
}

static sl_err
ynext(struct yctx *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->p, ev)) {
		const char *problem = y->p.problem ? y->p.problem : "malformed YAML";
		if (y->p.error == YAML_MEMORY_ERROR)
			return SL_ERR_NOMEM;
		return sl_error_set(y->err, SL_ERR_INVALID_ARG, "%s:%zu:%zu: %s", y->name,
		                    y->p.problem_mark.line + 1, y->p.problem_mark.column + 1,
		                    problem);
	}
	return SL_OK;
}

static bool
in_list(const char *k, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(k, list[i]) == 0)
			return true;
	return false;
}

/* Reads one mapping of scalar values (or, at the top, the `limits` and `delivery`
 * mappings); section is NULL at the top, else the nested mapping's name. */
static sl_err
load_mapping(struct yctx *y, struct srv_config *c, const char *section)
{
	bool top = !section, limits = section && strcmp(section, "limits") == 0;
	const char *const *keys = top ? top_keys : limits ? limit_keys : delivery_keys;
	size_t nkeys = top ? sizeof top_keys / sizeof top_keys[0]
	        : limits   ? sizeof limit_keys / sizeof limit_keys[0]
	                   : sizeof delivery_keys / sizeof delivery_keys[0];
	unsigned seen = 0;
	sl_err rc;
	for (;;) {
		yaml_event_t k;
		if ((rc = ynext(y, &k)) != SL_OK)
			return rc;
		if (k.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&k);
			return SL_OK;
		}
		if (k.type != YAML_SCALAR_EVENT) {
			rc = yfail(y, &k.start_mark, "expected a setting name", NULL);
			yaml_event_delete(&k);
			return rc;
		}
		char key[64];
		snprintf(key, sizeof key, "%s", (const char *)k.data.scalar.value);
		yaml_mark_t kmark = k.start_mark;
		bool known = strlen((const char *)k.data.scalar.value) < sizeof key
		        && in_list(key, keys, nkeys);
		yaml_event_delete(&k);
		if (!known)
			return yfail(y, &kmark,
			             top              ? "unknown setting"
			                     : limits ? "unknown limit"
			                              : "unknown delivery setting",
			             key);
		size_t idx = 0;
		while (strcmp(keys[idx], key) != 0)
			idx++;
		if (seen & (1u << idx))
			return yfail(y, &kmark, "setting given twice:", key);
		seen |= 1u << idx;

		yaml_event_t v;
		if ((rc = ynext(y, &v)) != SL_OK)
			return rc;
		if (top && (strcmp(key, "limits") == 0 || strcmp(key, "delivery") == 0)) {
			bool map = v.type == YAML_MAPPING_START_EVENT;
			yaml_mark_t vm = v.start_mark;
			yaml_event_delete(&v);
			if (!map)
				return yfail(y, &vm,
				             strcmp(key, "limits") == 0
				                     ? "expected a mapping of limits (max-body, "
				                       "max-connections, ...) under"
				                     : "expected a mapping of delivery settings "
				                       "(backoff-ms, timeout-ms, ...) under",
				             key);
			if ((rc = load_mapping(y, c,
			                       strcmp(key, "limits") == 0 ? "limits" : "delivery"))
			    != SL_OK)
				return rc;
			continue;
		}
		if (v.type != YAML_SCALAR_EVENT || v.data.scalar.length == 0) {
			rc = yfail(y, &v.start_mark, "expected a single value for", key);
			yaml_event_delete(&v);
			return rc;
		}
		if (strlen((const char *)v.data.scalar.value) != v.data.scalar.length) {
			rc = yfail(y, &v.start_mark, "value contains a NUL byte:", key);
			yaml_event_delete(&v);
			return rc;
		}
		char where[512], full[80];
		snprintf(where, sizeof where, "%s:%zu:%zu", y->name, v.start_mark.line + 1,
		         v.start_mark.column + 1);
		snprintf(full, sizeof full, "%s%s%s", top ? "" : section, top ? "" : ".", key);
		rc = srv_config_set(c, full, (const char *)v.data.scalar.value, where, y->err);
		yaml_event_delete(&v);
		if (rc != SL_OK)
			return rc;
	}
}

sl_err
srv_config_load_yaml(struct srv_config *c, const char *text, size_t len, const char *name,
                     struct sl_error *err)
{
	struct yctx y = { .name = name, .err = err };
	if (!yaml_parser_initialize(&y.p))
		return SL_ERR_NOMEM;
	yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
	sl_err rc;
	yaml_event_t ev;
	bool doc = false;
	for (;;) {
		if ((rc = ynext(&y, &ev)) != SL_OK)
			goto out;
		yaml_event_type_t t = ev.type;
		yaml_mark_t m = ev.start_mark;
		yaml_event_delete(&ev);
		if (t == YAML_STREAM_END_EVENT)
			break;
		if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_END_EVENT)
			continue;
		if (t == YAML_DOCUMENT_START_EVENT) {
			if (doc) {
				rc = yfail(&y, &m, "expected one YAML document, found another",
				           NULL);
				goto out;
			}
			doc = true;
			if ((rc = ynext(&y, &ev)) != SL_OK)
				goto out;
			t = ev.type;
			m = ev.start_mark;
			bool empty = t == YAML_SCALAR_EVENT && ev.data.scalar.length == 0
			        && ev.data.scalar.plain_implicit;
			yaml_event_delete(&ev);
			if (empty)
				continue; /* an empty file means "all defaults" */
			if (t != YAML_MAPPING_START_EVENT) {
				rc = yfail(&y, &m,
				           "expected a mapping of settings (data, http, ...)",
				           NULL);
				goto out;
			}
			if ((rc = load_mapping(&y, c, NULL)) != SL_OK)
				goto out;
			continue;
		}
		rc = yfail(&y, &m, "unexpected YAML content", NULL);
		goto out;
	}
	rc = SL_OK;
out:
	yaml_parser_delete(&y.p);
	return rc;
}

sl_err
srv_config_load_file(struct srv_config *c, const char *path, struct sl_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return sl_error_set(err, SL_ERR_INVALID_ARG, "%s: cannot open: %s", path,
		                    strerror(errno));
	char *buf = sl_malloc(CONFIG_FILE_MAX + 1);
	if (!buf) {
		fclose(f);
		return SL_ERR_NOMEM;
	}
	size_t n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
	bool failed = ferror(f);
	fclose(f);
	sl_err rc;
	if (failed)
		rc = sl_error_set(err, SL_ERR_IO, "%s: read error", path);
	else if (n > CONFIG_FILE_MAX)
		rc = sl_error_set(err, SL_ERR_INVALID_ARG, "%s: larger than %d bytes", path,
		                  CONFIG_FILE_MAX);
	else
		rc = srv_config_load_yaml(c, buf, n, path, err);
	sl_free(buf);
	return rc;
}
