/*
 * cmd_put_events.c - `sluice put-events`: one event from arguments, or many from a file of
 * JSON lines (or one JSON array of entries), sent in PutEvents calls of at most 10 entries
 * and under 256 KB each. Each accepted event's id goes to stdout; each refused entry is
 * reported on stderr with where it came from; the exit code is 1 if any entry failed.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_http.h"
#include "common/sl_alloc.h"
#include "common/sl_clock.h"

#define PUT_MAX_ENTRIES  10
#define PUT_MAX_BYTES    (256 * 1024)
#define PUT_FILE_LIMIT   ((size_t)1 << 30)
#define PUT_CALL_TIMEOUT 60

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: sluice put-events --source S --detail-type T [--detail JSON|@FILE]\n"
	        "                         [--bus NAME|ARN] [--time TIME] [--resource ARN]...\n"
	        "       sluice put-events -f FILE|-\n"
	        "\n"
	        "Puts events on a bus through PutEvents. With -f, FILE (or stdin) holds one entry\n"
	        "per line (JSON lines) or one JSON array of entries, with PutEvents' keys:\n"
	        "  {\"Source\": \"app\", \"DetailType\": \"t\", \"Detail\": {...}, "
	        "\"EventBusName\": "
	        "\"b\",\n"
	        "   \"Time\": \"2026-11-24T02:00:00Z\", \"Resources\": [...]}\n"
	        "Detail may be an object (sent as its JSON text) or a string. Entries are sent\n"
	        "10 at a time and under 256 KB per call. Prints each event id; refused entries\n"
	        "go to stderr. --detail defaults to {}; TIME is RFC 3339.\n"
	        "Every command takes --endpoint URL (default $SLUICE_ENDPOINT "
	        "or " CLI_DEFAULT_ENDPOINT ").\n"
	        "Exit codes: 0 all put, 1 some entries refused, 2 bad input, 3 server "
	        "unreachable or failing.\n");
}

struct batch {
	json_t *entries; /* the request's Entries */
	size_t bytes;
	size_t where[PUT_MAX_ENTRIES]; /* line (or array index + 1) of each entry */
};

struct tally {
	size_t ok, failed;
	bool by_line; /* where[] is a line number (JSON lines), else an array index */
};

/* Sends the batch; prints ids and failures; empties it. */
static int
flush(const char *endpoint, struct batch *b, struct tally *t)
{
	size_t n = json_array_size(b->entries);
	if (!n)
		return CLI_OK;
	json_t *req = json_pack("{s:O}", "Entries", b->entries), *ans = NULL;
	struct sl_error err = { 0 };
	sl_err rc = req
	        ? cli_aws_call(endpoint, "AWSEvents.PutEvents", req, PUT_CALL_TIMEOUT, &ans, &err)
	        : SL_ERR_NOMEM;
	json_decref(req);
	json_array_clear(b->entries);
	b->bytes = 0;
	if (rc) {
		fprintf(stderr, "sluice put-events: %s\n",
		        err.code ? sl_error_text(&err) : sl_err_message(rc));
		json_decref(ans);
		return rc == SL_ERR_INVALID_ARG ? CLI_USAGE : CLI_RUNTIME;
	}
	json_t *res = json_object_get(ans, "Entries");
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(res, i);
		const char *id = json_string_value(json_object_get(e, "EventId"));
		if (id) {
			printf("%s\n", id);
			t->ok++;
			continue;
		}
		const char *code = json_string_value(json_object_get(e, "ErrorCode"));
		const char *msg = json_string_value(json_object_get(e, "ErrorMessage"));
		fprintf(stderr, "%s %zu: %s: %s\n", t->by_line ? "line" : "entry", b->where[i],
		        code ? code : "Error", msg ? msg : "(no message)");
		t->failed++;
	}
	json_decref(ans);
	return CLI_OK;
}

/* Normalises one entry (a Detail object becomes its text, an RFC 3339 Time becomes epoch
 * seconds) and adds it, flushing first when it would not fit. */
static int
add_entry(const char *endpoint, struct batch *b, struct tally *t, json_t *e, size_t where)
{
	if (!json_is_object(e)) {
		fprintf(stderr, "%s %zu: not a JSON object\n", t->by_line ? "line" : "entry",
		        where);
		t->failed++;
		return CLI_OK;
	}
	json_t *d = json_object_get(e, "Detail");
	if (json_is_object(d) || json_is_array(d)) {
		char *txt = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!txt)
			return CLI_RUNTIME;
		json_object_set_new(e, "Detail", json_string(txt));
		free(txt);
	}
	json_t *tm = json_object_get(e, "Time");
	int64_t ms;
	if (json_is_string(tm)) {
		if (!sl_clock_parse_rfc3339(json_string_value(tm), &ms)) {
			fprintf(stderr, "%s %zu: Time '%s' is not an RFC 3339 time\n",
			        t->by_line ? "line" : "entry", where, json_string_value(tm));
			t->failed++;
			return CLI_OK;
		}
		json_object_set_new(e, "Time", json_real((double)ms / 1000.0));
	}
	char *txt = json_dumps(e, JSON_COMPACT);
	size_t len = txt ? strlen(txt) : 0;
	free(txt);
	/* the JSON text is larger than AWS's size formula counts, so this stays under */
	if (json_array_size(b->entries) == PUT_MAX_ENTRIES
	    || (json_array_size(b->entries) && b->bytes + len > PUT_MAX_BYTES)) {
		int code = flush(endpoint, b, t);
		if (code)
			return code;
	}
	b->where[json_array_size(b->entries)] = where;
	json_array_append(b->entries, e);
	b->bytes += len;
	return CLI_OK;
}

static int
from_file(const char *endpoint, const char *path)
{
	char *text;
	size_t len;
	struct sl_error err = { 0 };
	if (cli_read_file(path, PUT_FILE_LIMIT, &text, &len, &err)) {
		fprintf(stderr, "sluice put-events: %s\n", sl_error_text(&err));
		return CLI_USAGE;
	}
	struct batch b = { json_array(), 0, { 0 } };
	struct tally t = { 0, 0, true };
	int code = b.entries ? CLI_OK : CLI_RUNTIME;
	size_t lead = strspn(text, " \t\r\n");
	if (code == CLI_OK && text[lead] == '[') {
		json_error_t je;
		json_t *all = json_loadb(text, len, 0, &je);
		t.by_line = false;
		if (!json_is_array(all)) {
			fprintf(stderr, "sluice put-events: %s:%d:%d: %s\n", path, je.line,
			        je.column, all ? "expected an array of entries" : je.text);
			code = CLI_USAGE;
		}
		for (size_t i = 0; code == CLI_OK && i < json_array_size(all); i++)
			code = add_entry(endpoint, &b, &t, json_array_get(all, i), i + 1);
		json_decref(all);
	} else {
		size_t line = 0;
		for (char *p = text, *nl; code == CLI_OK && p < text + len; p = nl + 1) {
			line++;
			nl = memchr(p, '\n', (size_t)(text + len - p));
			if (!nl)
				nl = text + len;
			size_t l = (size_t)(nl - p);
			if (strspn(p, " \t\r") >= l)
				continue; /* blank line */
			json_error_t je;
			json_t *e = json_loadb(p, l, 0, &je);
			if (!e) {
				fprintf(stderr, "line %zu: not JSON: %s\n", line, je.text);
				t.failed++;
				continue;
			}
			code = add_entry(endpoint, &b, &t, e, line);
			json_decref(e);
		}
	}
	if (code == CLI_OK)
		code = flush(endpoint, &b, &t);
	json_decref(b.entries);
	sl_free(text);
	fprintf(stderr, "%zu event(s) put, %zu refused\n", t.ok, t.failed);
	if (code)
		return code;
	return t.failed ? CLI_NO : CLI_OK;
}

int
cmd_put_events(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "source", required_argument, NULL, 's' },
		{ "detail-type", required_argument, NULL, 't' },
		{ "detail", required_argument, NULL, 'd' },
		{ "bus", required_argument, NULL, 'b' },
		{ "time", required_argument, NULL, 'T' },
		{ "resource", required_argument, NULL, 'r' },
		{ "file", required_argument, NULL, 'f' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *source = NULL, *type = NULL, *detail = NULL, *bus = NULL, *when = NULL;
	const char *file = NULL, *ep = NULL;
	json_t *resources = json_array();
	int c, code = CLI_OK;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hf:", opts, NULL)) != -1) {
		switch (c) {
		case 's': source = optarg; break;
		case 't': type = optarg; break;
		case 'd': detail = optarg; break;
		case 'b': bus = optarg; break;
		case 'T': when = optarg; break;
		case 'r': json_array_append_new(resources, json_string(optarg)); break;
		case 'f': file = optarg; break;
		case 'e': ep = optarg; break;
		case 'h':
			usage(stdout);
			json_decref(resources);
			return CLI_OK;
		default:
			usage(stderr);
			json_decref(resources);
			return CLI_USAGE;
		}
	}
	const char *endpoint = cli_endpoint(ep);
	if (optind < argc || (file && (source || type || detail || bus || when))
	    || (!file && (!source || !type))) {
		fprintf(stderr,
		        optind < argc ? "sluice put-events: unexpected argument '%s'\n"
		                : file
		                ? "sluice put-events: -f takes no other event option\n"
		                : "sluice put-events: --source and --detail-type are needed\n",
		        optind < argc ? argv[optind] : "");
		usage(stderr);
		json_decref(resources);
		return CLI_USAGE;
	}
	if (file) {
		json_decref(resources);
		return from_file(endpoint, file);
	}
	char *dtext = NULL;
	struct sl_error err = { 0 };
	if (detail && cli_text_or_file(detail, PUT_MAX_BYTES, &dtext, &err)) {
		fprintf(stderr, "sluice put-events: %s\n", sl_error_text(&err));
		json_decref(resources);
		return CLI_USAGE;
	}
	json_t *e = json_pack("{s:s,s:s,s:s}", "Source", source, "DetailType", type, "Detail",
	                      dtext ? dtext : "{}");
	sl_free(dtext);
	if (e && bus)
		json_object_set_new(e, "EventBusName", json_string(bus));
	if (e && when)
		json_object_set_new(e, "Time", json_string(when));
	if (e && json_array_size(resources))
		json_object_set(e, "Resources", resources);
	json_decref(resources);
	if (!e)
		return CLI_RUNTIME;
	struct batch b = { json_array(), 0, { 0 } };
	struct tally t = { 0, 0, false };
	code = b.entries ? add_entry(endpoint, &b, &t, e, 1) : CLI_RUNTIME;
	if (code == CLI_OK)
		code = flush(endpoint, &b, &t);
	json_decref(e);
	json_decref(b.entries);
	if (code)
		return code;
	return t.failed ? CLI_NO : CLI_OK;
}
