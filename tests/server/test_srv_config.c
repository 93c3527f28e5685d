/*
 * test_srv_config.c - `sluice serve` settings: YAML file, flags, and their errors.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "server/srv.h"

static struct srv_config cfg;
static struct sl_error err;

static void
setup(void)
{
	sl_alloc_init();
	cr_assert_eq(srv_config_init(&cfg), SL_OK);
	sl_error_clear(&err);
}

static void
teardown(void)
{
	srv_config_clear(&cfg);
}

static sl_err
load(const char *text)
{
	return srv_config_load_yaml(&cfg, text, strlen(text), "t.yaml", &err);
}

/* The error message starts with want (file:line:column and what was expected). */
static void
expect_error(const char *text, const char *want)
{
	cr_assert_eq(load(text), SL_ERR_INVALID_ARG, "accepted: %s", text);
	cr_assert(strstr(err.message, want) != NULL, "message '%s' lacks '%s'", err.message, want);
}

TestSuite(srv_config, .init = setup, .fini = teardown);

Test(srv_config, defaults)
{
	cr_assert_str_eq(cfg.data_dir, "./sluice-data");
	cr_assert_str_eq(cfg.http, "127.0.0.1:8420");
	cr_assert_str_eq(cfg.workers, "tcp://127.0.0.1:8421");
	cr_assert_str_eq(cfg.region, "us-east-1");
	cr_assert_str_eq(cfg.account, "000000000000");
	cr_assert_eq(cfg.max_body, 1024 * 1024);
	cr_assert_eq(cfg.log_level, SL_LOG_INFO);
	cr_assert_eq(cfg.log_format, SL_LOG_PLAIN);
}

Test(srv_config, full_file)
{
	cr_assert_eq(load("# sluice\n"
	                  "data: /var/lib/sluice\n"
	                  "http: 0.0.0.0:9000\n"
	                  "workers: \"tcp://127.0.0.1:9001\"\n"
	                  "region: eu-west-1\n"
	                  "account: '123456789012'\n"
	                  "log-level: debug\n"
	                  "log-format: json\n"
	                  "limits:\n"
	                  "  max-body: 2M\n"
	                  "  max-header: 16K\n"
	                  "  max-connections: 50\n"
	                  "  idle-timeout: 5\n"
	                  "  drain-timeout: 0\n"),
	             SL_OK, "%s", err.message);
	cr_assert_str_eq(cfg.data_dir, "/var/lib/sluice");
	cr_assert_str_eq(cfg.http, "0.0.0.0:9000");
	cr_assert_str_eq(cfg.workers, "tcp://127.0.0.1:9001");
	cr_assert_str_eq(cfg.region, "eu-west-1");
	cr_assert_str_eq(cfg.account, "123456789012");
	cr_assert_eq(cfg.log_level, SL_LOG_DEBUG);
	cr_assert_eq(cfg.log_format, SL_LOG_JSON);
	cr_assert_eq(cfg.max_body, 2 * 1024 * 1024);
	cr_assert_eq(cfg.max_header, 16 * 1024);
	cr_assert_eq(cfg.max_connections, 50);
	cr_assert_eq(cfg.idle_timeout_s, 5);
	cr_assert_eq(cfg.drain_timeout_s, 0);
}

Test(srv_config, empty_file_keeps_defaults)
{
	cr_assert_eq(load(""), SL_OK, "%s", err.message);
	cr_assert_eq(load("# only a comment\n"), SL_OK, "%s", err.message);
	cr_assert_str_eq(cfg.http, "127.0.0.1:8420");
}

Test(srv_config, unknown_key_names_line_and_column)
{
	expect_error("data: x\nbogus: 1\n", "t.yaml:2:1: unknown setting 'bogus'");
	expect_error("limits:\n  max-bodies: 3\n", "t.yaml:2:3: unknown limit 'max-bodies'");
}

Test(srv_config, bad_values_name_line_and_column)
{
	expect_error("http: nope\n", "t.yaml:1:7: expected HOST:PORT");
	expect_error("http: 127.0.0.1:70000\n", "t.yaml:1:7: port 70000 is over 65535");
	expect_error("workers: http://x:1\n", "t.yaml:1:10: expected an NNG URL");
	expect_error("region: US_EAST\n", "t.yaml:1:9: expected a region");
	expect_error("account: 12\n", "t.yaml:1:10: expected a 12-digit account id");
	expect_error("log-level: loud\n", "t.yaml:1:12: expected debug, info");
	expect_error("log-format: xml\n", "t.yaml:1:13: expected plain or json");
	expect_error("limits:\n  max-body: -5\n", "t.yaml:2:13: expected a size in bytes");
	expect_error("limits:\n  max-body: 10\n", "t.yaml:2:13: 10 is out of range");
	expect_error("limits:\n  max-connections: 0\n", "t.yaml:2:20: 0 is out of range");
	expect_error("limits:\n  max-connections: 1x\n", "t.yaml:2:20: expected a whole number");
	expect_error("data:\n", "t.yaml:1:6: expected a single value for 'data'");
}

Test(srv_config, wrong_shapes)
{
	expect_error("- a\n- b\n", "t.yaml:1:1: expected a mapping of settings");
	expect_error("limits: 5\n", "t.yaml:1:9: expected a mapping of limits");
	expect_error("data: [a, b]\n", "t.yaml:1:7: expected a single value for 'data'");
	expect_error("data: a\ndata: b\n", "t.yaml:2:1: setting given twice: 'data'");
	expect_error("data: a\n---\ndata: b\n", "expected one YAML document");
	expect_error("data: &x a\nhttp: *x\n", "t.yaml:2:7: expected a single value for 'http'");
}

Test(srv_config, syntax_error_has_position)
{
	expect_error("data: \"unterminated\n", "t.yaml:");
	cr_assert(strstr(err.message, "t.yaml:2:") != NULL || strstr(err.message, "t.yaml:1:"),
	          "%s", err.message);
	expect_error("data: a\n  - b: [\n", "t.yaml:");
}

Test(srv_config, flags_override_file)
{
	cr_assert_eq(load("http: 127.0.0.1:1000\nregion: eu-west-1\n"), SL_OK);
	cr_assert_eq(srv_config_set(&cfg, "http", "127.0.0.1:0", "--http", &err), SL_OK);
	cr_assert_str_eq(cfg.http, "127.0.0.1:0");
	cr_assert_str_eq(cfg.region, "eu-west-1");
	cr_assert_eq(srv_config_set(&cfg, "http", "noport", "--http", &err), SL_ERR_INVALID_ARG);
	cr_assert(strncmp(err.message, "--http: ", 8) == 0, "%s", err.message);
	cr_assert_str_eq(cfg.http, "127.0.0.1:0", "a refused value must not be kept");
	cr_assert_eq(srv_config_set(&cfg, "nosuch", "1", "--nosuch", &err), SL_ERR_INVALID_ARG);
}

Test(srv_config, hostport_forms)
{
	char host[64];
	uint16_t port;
	cr_assert_eq(srv_parse_hostport("[::1]:8420", host, sizeof host, &port, &err), SL_OK);
	cr_assert_str_eq(host, "::1");
	cr_assert_eq(port, 8420);
	cr_assert_eq(srv_parse_hostport("localhost:0", host, sizeof host, &port, &err), SL_OK);
	cr_assert_eq(port, 0);
	cr_assert_neq(srv_parse_hostport(":80", host, sizeof host, &port, &err), SL_OK);
	cr_assert_neq(srv_parse_hostport("a:", host, sizeof host, &port, &err), SL_OK);
	cr_assert_neq(srv_parse_hostport("a b:1", host, sizeof host, &port, &err), SL_OK);
	cr_assert_neq(srv_parse_hostport("[::1]80", host, sizeof host, &port, &err), SL_OK);
	cr_assert_neq(srv_parse_hostport("a:123456", host, sizeof host, &port, &err), SL_OK);
}

Test(srv_config, file_errors_name_the_file)
{
	char path[] = "/tmp/srvcfg-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	const char *text = "http: 127.0.0.1:1\nworkers: x\n";
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cr_assert_eq(srv_config_load_file(&cfg, path, &err), SL_ERR_INVALID_ARG);
	char want[64];
	snprintf(want, sizeof want, "%s:2:10:", path);
	cr_assert(strncmp(err.message, want, strlen(want)) == 0, "%s", err.message);
	unlink(path);
	cr_assert_eq(srv_config_load_file(&cfg, "/nonexistent/sluice.yaml", &err),
	             SL_ERR_INVALID_ARG);
	cr_assert(strstr(err.message, "/nonexistent/sluice.yaml: cannot open") != NULL);
}

/* Every allocation failure is a clean SL_ERR_NOMEM, never a crash or a leak (ASan). */
Test(srv_config, out_of_memory_walk)
{
	const char *text = "data: /d\nhttp: 127.0.0.1:1\nlimits:\n  max-body: 4096\n";
	for (long n = 0;; n++) {
		struct srv_config c;
		sl_alloc_fail_after(n);
		sl_err rc = srv_config_init(&c);
		if (rc == SL_OK) {
			rc = srv_config_load_yaml(&c, text, strlen(text), "t.yaml", NULL);
			srv_config_clear(&c);
		}
		sl_alloc_fail_after(-1);
		if (rc == SL_OK)
			break;
		cr_assert_eq(rc, SL_ERR_NOMEM, "n=%ld: %s", n, sl_err_name(rc));
		cr_assert_lt(n, 100);
	}
}

/* The delivery settings: defaults, the `delivery` mapping, and their errors. */
Test(srv_config, delivery_settings)
{
	cr_assert_eq(cfg.delivery_backoff_ms, 1000);
	cr_assert_eq(cfg.delivery_backoff_cap_ms, 300000);
	cr_assert_eq(cfg.delivery_timeout_ms, 5000);
	cr_assert_eq(cfg.delivery_max_inflight, 64);
	cr_assert(!cfg.delivery_paused);
	cr_assert_eq(load("delivery:\n  backoff-ms: 20\n  backoff-cap-ms: 100\n  timeout-ms: 250\n"
	                  "  max-inflight: 8\n  paused: true\nlimits:\n  max-body: 4096\n"),
	             SL_OK, "%s", err.message);
	cr_assert_eq(cfg.delivery_backoff_ms, 20);
	cr_assert_eq(cfg.delivery_backoff_cap_ms, 100);
	cr_assert_eq(cfg.delivery_timeout_ms, 250);
	cr_assert_eq(cfg.delivery_max_inflight, 8);
	cr_assert(cfg.delivery_paused);
	cr_assert_eq(cfg.max_body, 4096);
	expect_error("delivery:\n  retries: 3\n", "t.yaml:2:3: unknown delivery setting 'retries'");
	expect_error("delivery:\n  timeout-ms: 5\n", "t.yaml:2:15: 5 is out of range");
	expect_error("delivery:\n  paused: maybe\n", "t.yaml:2:11: expected true or false");
	expect_error("delivery: 5\n", "t.yaml:1:11: expected a mapping of delivery settings");
	cr_assert_eq(
	        srv_config_set(&cfg, "delivery.max-inflight", "0", "--delivery-max-inflight", &err),
	        SL_ERR_INVALID_ARG);
	cr_assert(strstr(err.message, "--delivery-max-inflight: 0 is out of range"), "%s",
	          err.message);
}

/* Map ItemReader's root directory: off by default, from the file or the flag. */
Test(srv_config, item_reader_root)
{
	cr_assert_null(cfg.item_reader_root);
	cr_assert_eq(load("item-reader-root: /srv/etl\n"), SL_OK, "%s", err.message);
	cr_assert_str_eq(cfg.item_reader_root, "/srv/etl");
	cr_assert_eq(srv_config_set(&cfg, "item-reader-root", "/data", "--item-reader-root", &err),
	             SL_OK);
	cr_assert_str_eq(cfg.item_reader_root, "/data");
	cr_assert_eq(srv_config_set(&cfg, "item-reader-root", "", "--item-reader-root", &err),
	             SL_ERR_INVALID_ARG);
	cr_assert(strstr(err.message, "--item-reader-root: expected a directory"), "%s",
	          err.message);
}
