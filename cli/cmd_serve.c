/*
 * cmd_serve.c - `sluice serve`: run the daemon until SIGINT/SIGTERM.
 *
 * Settings come from the defaults, then --config FILE, then the other flags, so a flag
 * always wins over the file.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/sl_clock.h"
#include "common/sl_log.h"
#include "server/srv.h"
#include "server/srv_api.h"
#include "server/srv_engine.h"
#include "server/srv_exec_retention.h"

static void
serve_usage(FILE *out)
{
	fprintf(out,
	        "usage: sluice serve [options]\n\n"
	        "Runs the event bus and workflow server until SIGINT or SIGTERM.\n\n"
	        "options:\n"
	        "  --data DIR            data directory (default %s)\n"
	        "  --http ADDR:PORT      HTTP API address (default %s; port 0 = any free port)\n"
	        "  --workers NNG_URL     worker socket (default %s; tcp://, tls+tcp://, ipc://)\n"
	        "  --workers-token SECRET  workers must send it with every message\n"
	        "  --workers-cert FILE   tls+tcp://: PEM certificate (chain) of the worker socket\n"
	        "  --workers-key FILE    tls+tcp://: PEM private key (YAML: workers-token,\n"
	        "                        workers-cert, workers-key)\n"
	        "  --config FILE         YAML file with the same keys (data, http, workers, "
	        "region,\n"
	        "                        account, log-level, log-format, limits: {max-body,\n"
	        "                        max-header, max-connections, idle-timeout, "
	        "drain-timeout});\n"
	        "                        flags override it\n"
	        "  --region R            region in ARNs (default us-east-1)\n"
	        "  --account A           12-digit account in ARNs (default 000000000000)\n"
	        "  --log-level L         debug, info, warn, error or off (default info)\n"
	        "  --log-format F        plain or json (default plain)\n"
	        "  --delivery-backoff-ms N      first retry back-off ceiling (default 1000)\n"
	        "  --delivery-backoff-cap-ms N  largest back-off ceiling (default 300000)\n"
	        "  --delivery-timeout-ms N      one HTTP delivery's time-out (default 5000)\n"
	        "  --delivery-max-inflight N    HTTP deliveries at once (default 64)\n"
	        "  --delivery-paused            keep delivery records without processing them\n"
	        "                        (YAML: delivery: {backoff-ms, backoff-cap-ms, "
	        "timeout-ms,\n"
	        "                        max-inflight, paused})\n"
	        "  --rules-per-bus N     rules on one bus (default 300, AWS's quota; "
	        "limits.rules-per-bus)\n"
	        "  --event-retention D   keep bus events this long (default 24h; 90m, 7d, ...; 0 "
	        "keeps\n"
	        "                        all); archived events and those of pending deliveries "
	        "stay\n"
	        "                        (YAML: event-retention)\n"
	        "  --execution-retention D  delete executions closed longer ago than D "
	        "(default\n"
	        "                        90d as AWS; 0 keeps all) with their histories and map "
	        "runs\n"
	        "                        (YAML: execution-retention)\n"
	        "  --item-reader-root DIR  Map ItemReader files: s3://BUCKET/KEY is "
	        "DIR/BUCKET/KEY\n"
	        "                        (YAML: item-reader-root; unset: ItemReader fails)\n"
	        "  --mock-config FILE    Step Functions Local's MockConfigFile: start with\n"
	        "                        stateMachineArn#TestCase to mock that execution's tasks\n"
	        "                        (YAML: mock-config)\n"
	        "  --virtual-time START  TEST ONLY: the wall clock is fake, starts at START\n"
	        "                        (RFC 3339 or epoch ms) and moves only with the\n"
	        "                        Sluice.AdvanceClock operation\n"
	        "  -h, --help            this text\n\n"
	        "Once listening it prints one line on stderr:\n"
	        "  sluice: ready http=HOST:PORT workers=URL data=DIR\n",
	        SRV_DEFAULT_DATA, SRV_DEFAULT_HTTP, SRV_DEFAULT_WORKERS);
}

struct flag_value {
	const char *key, *flag, *value;
};

int
cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "http", required_argument, NULL, 'H' },
		{ "workers", required_argument, NULL, 'w' },
		{ "config", required_argument, NULL, 'c' },
		{ "region", required_argument, NULL, 'r' },
		{ "account", required_argument, NULL, 'a' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "log-format", required_argument, NULL, 'f' },
		{ "delivery-backoff-ms", required_argument, NULL, 'B' },
		{ "delivery-backoff-cap-ms", required_argument, NULL, 'C' },
		{ "delivery-timeout-ms", required_argument, NULL, 'T' },
		{ "delivery-max-inflight", required_argument, NULL, 'I' },
		{ "delivery-paused", no_argument, NULL, 'P' },
		{ "rules-per-bus", required_argument, NULL, 'R' },
		{ "virtual-time", required_argument, NULL, 'V' },
		{ "workers-token", required_argument, NULL, 'K' },
		{ "workers-cert", required_argument, NULL, 'E' },
		{ "workers-key", required_argument, NULL, 'Y' },
		{ "item-reader-root", required_argument, NULL, 'G' },
		{ "event-retention", required_argument, NULL, 'D' },
		{ "execution-retention", required_argument, NULL, 'X' },
		{ "mock-config", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct flag_value flags[24];
	size_t nflags = 0;
	const char *config = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *key = NULL, *flag = NULL;
		switch (c) {
		case 'h': serve_usage(stdout); return CLI_OK;
		case 'c': config = optarg; continue;
		case 'd': key = "data", flag = "--data"; break;
		case 'H': key = "http", flag = "--http"; break;
		case 'w': key = "workers", flag = "--workers"; break;
		case 'r': key = "region", flag = "--region"; break;
		case 'a': key = "account", flag = "--account"; break;
		case 'l': key = "log-level", flag = "--log-level"; break;
		case 'f': key = "log-format", flag = "--log-format"; break;
		case 'B': key = "delivery.backoff-ms", flag = "--delivery-backoff-ms"; break;
		case 'C':
			key = "delivery.backoff-cap-ms", flag = "--delivery-backoff-cap-ms";
			break;
		case 'T': key = "delivery.timeout-ms", flag = "--delivery-timeout-ms"; break;
		case 'I': key = "delivery.max-inflight", flag = "--delivery-max-inflight"; break;
		case 'P': key = "delivery.paused", flag = "--delivery-paused"; break;
		case 'R': key = "limits.rules-per-bus", flag = "--rules-per-bus"; break;
		case 'V': key = "virtual-time", flag = "--virtual-time"; break;
		case 'K': key = "workers-token", flag = "--workers-token"; break;
		case 'E': key = "workers-cert", flag = "--workers-cert"; break;
		case 'Y': key = "workers-key", flag = "--workers-key"; break;
		case 'G': key = "item-reader-root", flag = "--item-reader-root"; break;
		case 'D': key = "event-retention", flag = "--event-retention"; break;
		case 'X': key = "execution-retention", flag = "--execution-retention"; break;
		case 'M': key = "mock-config", flag = "--mock-config"; break;
		default: serve_usage(stderr); return CLI_USAGE;
		}
		if (nflags == sizeof flags / sizeof flags[0]) {
			fprintf(stderr, "sluice serve: too many options\n");
			return CLI_USAGE;
		}
		flags[nflags++] = (struct flag_value) { key, flag, c == 'P' ? "true" : optarg };
	}
	if (optind < argc) {
		fprintf(stderr, "sluice serve: unexpected argument '%s'\n", argv[optind]);
		serve_usage(stderr);
		return CLI_USAGE;
	}

	struct srv_config cfg;
	struct sl_error err;
	sl_error_clear(&err);
	if (srv_config_init(&cfg) != SL_OK) {
		fprintf(stderr, "sluice serve: out of memory\n");
		return CLI_RUNTIME;
	}
	sl_err rc = config ? srv_config_load_file(&cfg, config, &err) : SL_OK;
	for (size_t i = 0; rc == SL_OK && i < nflags; i++)
		rc = srv_config_set(&cfg, flags[i].key, flags[i].value, flags[i].flag, &err);
	if (rc != SL_OK) {
		fprintf(stderr, "sluice serve: %s\n",
		        err.code != SL_OK ? sl_error_text(&err) : sl_err_message(rc));
		srv_config_clear(&cfg);
		return rc == SL_ERR_NOMEM || rc == SL_ERR_IO ? CLI_RUNTIME : CLI_USAGE;
	}
	sl_log_set_level(cfg.log_level);
	if (cfg.virtual_time) /* before anything reads the clock */
		sl_clock_fake_enable(cfg.virtual_time_ms);
	sl_log_set_format(cfg.log_format);
	signal(SIGPIPE, SIG_IGN); /* a client that hangs up must not kill the server */

	srv_t *s = NULL;
	rc = srv_new(&cfg, &s, &err);
	srv_config_clear(&cfg);
	srv_engine_t *eng = NULL;
	if (rc == SL_OK)
		rc = srv_engine_new(s, &eng, &err);
	srv_exec_retention_t *ret = NULL;
	if (rc == SL_OK)
		rc = srv_exec_retention_start(s, eng, &ret, &err);
	if (rc == SL_OK && (rc = srv_api_register_all(s)) != SL_OK)
		sl_error_set(&err, rc, "cannot register the API operations");
	if (rc == SL_OK)
		rc = srv_run(s, &err);
	srv_exec_retention_free(ret);
	srv_engine_free(eng);
	srv_free(s);
	if (rc != SL_OK) {
		fprintf(stderr, "sluice serve: %s\n",
		        err.code != SL_OK ? sl_error_text(&err) : sl_err_message(rc));
		return CLI_RUNTIME;
	}
	return CLI_OK;
}
