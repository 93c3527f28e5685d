/*
 * cmd_executions.c - `sluice executions list|describe|history|watch|start|stop|redrive`:
 * executions of
 * a running server, through the Step Functions API.
 *
 * watch follows an execution by polling GetExecutionHistory: each poll pages backwards
 * (reverseOrder, nextToken) from the newest event down to the last one already shown, so
 * a poll costs one small call however long the history is. It prints one line per
 * top-level state entered and left, and for Map states a progress line counted from the
 * MapIteration* events (rewritten in place on a terminal, one line per poll otherwise).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_api.h"
#include "cli/cli_http.h"
#include "common/sl_alloc.h"
#include "common/sl_clock.h"

#define WATCH_POLL_MS  200
#define WATCH_MAPS_MAX 32
#define INPUT_MAX      (256 * 1024)

struct ex_opts {
	const char *endpoint;
	const char *machine;
	const char *status;
	const char *input;
	const char *name;
	const char *error;
	const char *cause;
	bool reverse;
	bool json;
	bool watch;
	bool sync;
	long timeout_s;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: sluice executions list [--state-machine NAME|ARN] [--status STATUS]\n"
	        "       sluice executions describe ARN|NAME [--state-machine NAME]\n"
	        "       sluice executions history ARN|NAME [--reverse] [--json]\n"
	        "       sluice executions watch ARN|NAME [--timeout SECONDS]\n"
	        "       sluice executions start --state-machine NAME|ARN [--input JSON|@FILE]\n"
	        "                               [--name NAME] [--watch | --sync]\n"
	        "       sluice executions stop ARN|NAME [--error E] [--cause C]\n"
	        "       sluice executions redrive ARN|NAME\n"
	        "\n"
	        "An execution NAME is looked up among the executions of --state-machine, or of\n"
	        "every machine. watch prints each top-level state as it is entered (>) and left\n"
	        "(<), with the time since the start, and the progress of Map states, then the\n"
	        "output. start --sync runs an EXPRESS machine with StartSyncExecution and prints\n"
	        "its answer (status, output or error) when it ends. Every command takes --endpoint "
	        "URL (default $SLUICE_ENDPOINT "
	        "or\n" CLI_DEFAULT_ENDPOINT ").\n"
	        "Exit codes: 0 ok (watch: SUCCEEDED), 1 watch: the execution failed, timed out\n"
	        "or was aborted, 2 bad usage or refused by the server, 3 server unreachable.\n");
}

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int
fail(const char *what, sl_err rc, const struct sl_error *err)
{
	fprintf(stderr, "sluice executions: %s%s%s\n", what ? what : "", what ? ": " : "",
	        sl_error_text(err));
	return cli_api_exit_code(rc);
}

/* Epoch seconds (a JSON number) as "2026-11-24T02:00:00Z"; "-" when absent. */
static void
fmt_time(json_t *v, char out[32])
{
	if (!json_is_number(v)) {
		snprintf(out, 32, "-");
		return;
	}
	sl_clock_format_rfc3339_s((int64_t)(json_number_value(v) * 1000.0), out);
}

static void
print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2));
	if (s)
		printf("%s\n", s);
	free(s);
}

/* ---- finding executions ----------------------------------------------------------------- */

/* Every execution of one machine (arn given) or of all machines, newest first. */
static sl_err
list_executions(const struct ex_opts *o, const char *machine_arn, json_t **out,
                struct sl_error *err)
{
	json_t *machines = NULL;
	sl_err rc;
	if (machine_arn) {
		machines = json_pack("[{s:s}]", "stateMachineArn", machine_arn);
	} else if ((rc = cli_api_list(o->endpoint, "AWSStepFunctions.ListStateMachines",
	                              json_pack("{s:i}", "maxResults", 1000), "stateMachines",
	                              "nextToken", &machines, NULL, err))) {
		return rc;
	}
	json_t *all = json_array();
	size_t i;
	json_t *m;
	rc = all && machines ? SL_OK : sl_error_set(err, SL_ERR_NOMEM, "out of memory");
	json_array_foreach(machines, i, m)
	{
		if (rc)
			break;
		json_t *req = json_pack("{s:s,s:i}", "stateMachineArn", jstr(m, "stateMachineArn"),
		                        "maxResults", 1000);
		if (req && o->status)
			json_object_set_new(req, "statusFilter", json_string(o->status));
		json_t *items = NULL;
		rc = cli_api_list(o->endpoint, "AWSStepFunctions.ListExecutions", req, "executions",
		                  "nextToken", &items, NULL, err);
		if (!rc)
			json_array_extend(all, items);
		json_decref(items);
	}
	json_decref(machines);
	if (rc) {
		json_decref(all);
		return rc;
	}
	/* newest first across machines: insertion sort is fine for a listing */
	size_t n = json_array_size(all);
	for (size_t a = 1; a < n; a++) {
		json_t *x = json_incref(json_array_get(all, a));
		double xs = json_number_value(json_object_get(x, "startDate"));
		size_t b = a;
		while (b > 0
		       && json_number_value(
		                  json_object_get(json_array_get(all, b - 1), "startDate"))
		               < xs) {
			json_array_set(all, b, json_array_get(all, b - 1));
			b--;
		}
		json_array_set_new(all, b, x);
	}
	*out = all;
	return SL_OK;
}

/* ARN or NAME to the execution's ARN. */
static int
resolve_execution(const struct ex_opts *o, const char *ref, char *arn, size_t cap)
{
	if (strncmp(ref, "arn:", 4) == 0) {
		snprintf(arn, cap, "%s", ref);
		return CLI_OK;
	}
	struct sl_error err = { 0 };
	char marn[600];
	sl_err rc;
	if (o->machine
	    && (rc = cli_api_machine_arn(o->endpoint, o->machine, marn, sizeof marn, &err)))
		return fail(NULL, rc, &err);
	json_t *all = NULL;
	if ((rc = list_executions(o, o->machine ? marn : NULL, &all, &err)))
		return fail("listing executions", rc, &err);
	size_t i, found = 0;
	json_t *e;
	json_array_foreach(all, i, e)
	{
		if (jstr(e, "name") && strcmp(jstr(e, "name"), ref) == 0) {
			if (found++ == 0)
				snprintf(arn, cap, "%s", jstr(e, "executionArn"));
		}
	}
	json_decref(all);
	if (found == 1)
		return CLI_OK;
	if (found)
		fprintf(stderr,
		        "sluice executions: %zu executions are named '%s'; give the ARN or "
		        "--state-machine\n",
		        found, ref);
	else
		fprintf(stderr, "sluice executions: no execution named '%s'\n", ref);
	return CLI_USAGE;
}

/* ---- list, describe, history ------------------------------------------------------------ */

static int
do_list(const struct ex_opts *o)
{
	struct sl_error err = { 0 };
	char marn[600];
	sl_err rc;
	if (o->machine
	    && (rc = cli_api_machine_arn(o->endpoint, o->machine, marn, sizeof marn, &err)))
		return fail(NULL, rc, &err);
	json_t *all = NULL;
	if ((rc = list_executions(o, o->machine ? marn : NULL, &all, &err)))
		return fail("listing executions", rc, &err);
	size_t i;
	json_t *e;
	json_array_foreach(all, i, e)
	{
		char start[32], stop[32];
		fmt_time(json_object_get(e, "startDate"), start);
		fmt_time(json_object_get(e, "stopDate"), stop);
		printf("%-10s %-20s %-20s %s\n", jstr(e, "status") ? jstr(e, "status") : "?", start,
		       stop, jstr(e, "executionArn") ? jstr(e, "executionArn") : "?");
	}
	json_decref(all);
	return CLI_OK;
}

static int
do_describe(const struct ex_opts *o, const char *arn)
{
	struct sl_error err = { 0 };
	json_t *ans = NULL;
	sl_err rc = cli_api_call(o->endpoint, "AWSStepFunctions.DescribeExecution",
	                         json_pack("{s:s}", "executionArn", arn), &ans, &err);
	if (rc) {
		json_decref(ans);
		return fail(NULL, rc, &err);
	}
	print_json(ans);
	json_decref(ans);
	return CLI_OK;
}

/* The event's "<type>EventDetails" object, or NULL. */
static json_t *
details_of(json_t *ev)
{
	const char *k;
	json_t *v;
	json_object_foreach(ev, k, v)
	{
		size_t n = strlen(k);
		if (n > 12 && strcmp(k + n - 12, "EventDetails") == 0 && json_is_object(v))
			return v;
	}
	return NULL;
}

/* The tail of a history line: what the event is about. */
static void
event_summary(json_t *ev, char *out, size_t cap)
{
	json_t *d = details_of(ev);
	out[0] = '\0';
	if (!d)
		return;
	const char *name = jstr(d, "name");
	json_t *index = json_object_get(d, "index");
	size_t n = 0;
	if (name && json_is_integer(index))
		n += (size_t)snprintf(out, cap, "%s[%lld]", name,
		                      (long long)json_integer_value(index));
	else if (name)
		n += (size_t)snprintf(out, cap, "%s", name);
	static const char *const keys[] = { "resource", "error", "cause", "output", "length" };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0] && n < cap; i++) {
		json_t *v = json_object_get(d, keys[i]);
		if (json_is_string(v))
			n += (size_t)snprintf(out + n, cap - n, "%s%s=%s", n ? " " : "", keys[i],
			                      json_string_value(v));
		else if (json_is_integer(v))
			n += (size_t)snprintf(out + n, cap - n, "%s%s=%lld", n ? " " : "", keys[i],
			                      (long long)json_integer_value(v));
	}
}

static int
do_history(const struct ex_opts *o, const char *arn)
{
	struct sl_error err = { 0 };
	json_t *events = NULL;
	json_t *req = json_pack("{s:s,s:i,s:b}", "executionArn", arn, "maxResults", 1000,
	                        "reverseOrder", o->reverse);
	sl_err rc = cli_api_list(o->endpoint, "AWSStepFunctions.GetExecutionHistory", req, "events",
	                         "nextToken", &events, NULL, &err);
	if (rc)
		return fail(NULL, rc, &err);
	if (o->json) {
		print_json(events);
		json_decref(events);
		return CLI_OK;
	}
	double t0 = 0;
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev)
	{
		const char *type = jstr(ev, "type");
		if (type && strcmp(type, "ExecutionStarted") == 0)
			t0 = json_number_value(json_object_get(ev, "timestamp"));
	}
	json_array_foreach(events, i, ev)
	{
		char tail[600];
		event_summary(ev, tail, sizeof tail);
		double t = json_number_value(json_object_get(ev, "timestamp"));
		printf("%5lld %+9.3fs  %-*s%s\n",
		       (long long)json_integer_value(json_object_get(ev, "id")),
		       t0 > 0 ? t - t0 : 0.0, tail[0] ? 29 : 0,
		       jstr(ev, "type") ? jstr(ev, "type") : "?", tail);
	}
	json_decref(events);
	return CLI_OK;
}

/* ---- watch ------------------------------------------------------------------------------ */

struct map_progress {
	char name[96];
	long long entered_id;
	long long total; /* -1 until MapStateStarted */
	long long started, succeeded, failed, aborted;
	bool open, dirty, shown;
	char map_run[512]; /* a distributed Map: its counters come from DescribeMapRun */
};

struct watch {
	const struct ex_opts *o;
	const char *arn;
	long long seen; /* the last event id processed */
	double t0;
	double last_ts; /* the newest event's time: progress lines use the server's clock */
	json_t *top;    /* top-level state name -> anything; NULL: every state is shown */
	/* event id -> top-level Task state name, along the previousEventId chain of that
	 * state's frame, so a TaskFailed (which names no state) can be attributed */
	json_t *task_chain;
	struct map_progress maps[WATCH_MAPS_MAX];
	size_t nmaps;
	bool tty;
	bool progress_on_screen; /* a progress line without its newline (tty) */
	int result;              /* -1 running, else the exit code */
};

static void
clear_progress(struct watch *w)
{
	if (w->progress_on_screen) {
		printf("\r\033[K");
		w->progress_on_screen = false;
	}
}

static void
progress_line(struct watch *w, struct map_progress *m, double elapsed, bool final)
{
	long long running = m->started - m->succeeded - m->failed - m->aborted;
	char total[32];
	if (m->total >= 0)
		snprintf(total, sizeof total, "%lld", m->total);
	else
		snprintf(total, sizeof total, "?");
	char bar[24] = "";
	if (w->tty && m->total > 0) {
		int width = 20;
		long long fill = (m->succeeded + m->failed) * width / m->total;
		bar[0] = '[';
		for (int i = 0; i < width; i++)
			bar[i + 1] = i < fill ? '#' : '.';
		bar[width + 1] = ']';
		bar[width + 2] = '\0';
	}
	clear_progress(w);
	printf("[%9.3fs]   %s %s%s%lld/%s succeeded, %lld failed, %lld running", elapsed, m->name,
	       bar, bar[0] ? " " : "", m->succeeded, total, m->failed, running);
	if (m->aborted)
		printf(", %lld aborted", m->aborted);
	if (w->tty && !final) {
		w->progress_on_screen = true;
	} else {
		printf("\n");
	}
	m->dirty = false;
	m->shown = true;
	fflush(stdout);
}

static struct map_progress *
map_by_name(struct watch *w, const char *name)
{
	for (size_t i = 0; name && i < w->nmaps; i++)
		if (w->maps[i].open && strcmp(w->maps[i].name, name) == 0)
			return &w->maps[i];
	return NULL;
}

/* "PassStateEntered" -> "Pass" (into out) when type ends with suffix. */
static bool
state_event(const char *type, const char *suffix, char *out, size_t cap)
{
	size_t n = strlen(type), s = strlen(suffix);
	if (n <= s || strcmp(type + n - s, suffix) != 0)
		return false;
	snprintf(out, cap, "%.*s", (int)(n - s), type);
	return true;
}

static void
watch_line(struct watch *w, double elapsed, const char *fmt, const char *a, const char *b)
{
	clear_progress(w);
	printf("[%9.3fs] ", elapsed);
	printf(fmt, a, b);
	printf("\n");
	fflush(stdout);
}

static void map_run_counts(struct watch *w, struct map_progress *m);

static void
watch_event(struct watch *w, json_t *ev)
{
	const char *type = jstr(ev, "type");
	json_t *d = details_of(ev);
	double ts = json_number_value(json_object_get(ev, "timestamp"));
	if (!type)
		return;
	if (ts > w->last_ts)
		w->last_ts = ts;
	if (strcmp(type, "ExecutionStarted") == 0) {
		w->t0 = ts;
		watch_line(w, 0, "started %s%s", w->arn, "");
		return;
	}
	double el = w->t0 > 0 ? ts - w->t0 : 0;
	char st[48];
	const char *name = d ? jstr(d, "name") : NULL;
	bool top = name && (!w->top || json_object_get(w->top, name));
	char idk[32], prevk[32];
	snprintf(idk, sizeof idk, "%lld", (long long)json_integer_value(json_object_get(ev, "id")));
	snprintf(prevk, sizeof prevk, "%lld",
	         (long long)json_integer_value(json_object_get(ev, "previousEventId")));
	const char *task = json_string_value(json_object_get(w->task_chain, prevk));
	if (task && w->task_chain) {
		json_object_set_new(w->task_chain, idk, json_string(task));
		size_t n = strlen(type);
		bool failed = (n > 6 && strcmp(type + n - 6, "Failed") == 0)
		        || (n > 8 && strcmp(type + n - 8, "TimedOut") == 0);
		if (failed && strncmp(type, "Execution", 9) != 0 && !strstr(type, "State")) {
			char cause[160];
			snprintf(cause, sizeof cause, "%s",
			         d && jstr(d, "cause") ? jstr(d, "cause") : "");
			clear_progress(w);
			printf("[%9.3fs] ! %s %s: %s%s%s\n", el, task, type,
			       d && jstr(d, "error") ? jstr(d, "error") : "-", cause[0] ? ": " : "",
			       cause);
			fflush(stdout);
		}
	}
	// every Task, inner ones too: a Map item's task failure must name its own state
	if (state_event(type, "StateEntered", st, sizeof st) && name && strcmp(st, "Task") == 0
	    && w->task_chain)
		json_object_set_new(w->task_chain, idk, json_string(name));
	if (state_event(type, "StateEntered", st, sizeof st) && top) {
		watch_line(w, el, "> %s (%s)", name, st);
		if (strcmp(st, "Map") == 0 && w->nmaps < WATCH_MAPS_MAX) {
			struct map_progress *m = &w->maps[w->nmaps++];
			memset(m, 0, sizeof *m);
			snprintf(m->name, sizeof m->name, "%s", name);
			m->entered_id = json_integer_value(json_object_get(ev, "id"));
			m->total = -1;
			m->open = true;
		}
	} else if (state_event(type, "StateExited", st, sizeof st) && top) {
		struct map_progress *m = map_by_name(w, name);
		if (m && m->map_run[0])
			map_run_counts(w, m);
		if (m) {
			progress_line(w, m, el, true);
			m->open = false;
		}
		watch_line(w, el, "< %s%s", name, "");
	} else if (strcmp(type, "MapStateStarted") == 0) {
		long long prev = json_integer_value(json_object_get(ev, "previousEventId"));
		for (size_t i = 0; i < w->nmaps; i++)
			if (w->maps[i].open && w->maps[i].entered_id == prev) {
				w->maps[i].total = json_integer_value(json_object_get(d, "length"));
				w->maps[i].dirty = true;
			}
	} else if (strcmp(type, "MapRunStarted") == 0 || strcmp(type, "MapRunRedriven") == 0) {
		// a distributed Map has no iteration events: the poll reads its run's counters
		const char *mr = d ? jstr(d, "mapRunArn") : NULL;
		for (size_t i = w->nmaps; mr && i > 0; i--)
			if (w->maps[i - 1].open) {
				snprintf(w->maps[i - 1].map_run, sizeof w->maps[i - 1].map_run,
				         "%s", mr);
				break;
			}
	} else if (strncmp(type, "MapIteration", 12) == 0) {
		struct map_progress *m = map_by_name(w, name);
		if (!m)
			return;
		const char *what = type + 12;
		if (strcmp(what, "Started") == 0)
			m->started++;
		else if (strcmp(what, "Succeeded") == 0)
			m->succeeded++;
		else if (strcmp(what, "Failed") == 0)
			m->failed++;
		else if (strcmp(what, "Aborted") == 0)
			m->aborted++;
		m->dirty = true;
	} else if (strcmp(type, "ExecutionSucceeded") == 0) {
		clear_progress(w);
		printf("SUCCEEDED in %.3fs\n%s\n", el,
		       d && jstr(d, "output") ? jstr(d, "output") : "null");
		w->result = CLI_OK;
	} else if (strcmp(type, "ExecutionFailed") == 0 || strcmp(type, "ExecutionTimedOut") == 0
	           || strcmp(type, "ExecutionAborted") == 0) {
		clear_progress(w);
		const char *word = type[9] == 'F' ? "FAILED"
		        : type[9] == 'T'          ? "TIMED_OUT"
		                                  : "ABORTED";
		printf("%s in %.3fs\nerror: %s\ncause: %s\n", word, el,
		       d && jstr(d, "error") ? jstr(d, "error") : "-",
		       d && jstr(d, "cause") && *jstr(d, "cause") ? jstr(d, "cause") : "-");
		w->result = CLI_NO;
	}
}

/* Events newer than w->seen, oldest first (new array); NULL after reporting. */
static json_t *
new_events(struct watch *w, sl_err *rc_out)
{
	json_t *batch = json_array();
	json_t *req = json_pack("{s:s,s:i,s:b}", "executionArn", w->arn, "maxResults", 1000,
	                        "reverseOrder", 1);
	struct sl_error err = { 0 };
	bool more = batch && req;
	*rc_out = more ? SL_OK : SL_ERR_NOMEM;
	while (more) {
		json_t *ans = NULL;
		sl_err rc = cli_aws_call(w->o->endpoint, "AWSStepFunctions.GetExecutionHistory",
		                         req, CLI_API_TIMEOUT, &ans, &err);
		if (rc) {
			fail(NULL, rc, &err);
			json_decref(ans);
			*rc_out = rc;
			json_decref(batch);
			batch = NULL;
			break;
		}
		size_t i;
		json_t *ev;
		more = false;
		json_array_foreach(json_object_get(ans, "events"), i, ev)
		{
			if (json_integer_value(json_object_get(ev, "id")) <= w->seen) {
				more = false;
				goto page_done;
			}
			json_array_insert(batch, 0, ev);
		}
		json_t *tok = json_object_get(ans, "nextToken");
		if (json_is_string(tok)) {
			json_object_set(req, "nextToken", tok);
			more = true;
		}
	page_done:
		json_decref(ans);
	}
	json_decref(req);
	return batch;
}

/* A distributed Map's progress from its map run's executionCounts. */
static void
map_run_counts(struct watch *w, struct map_progress *m)
{
	struct sl_error err = { 0 };
	json_t *ans = NULL;
	if (cli_api_call(w->o->endpoint, "AWSStepFunctions.DescribeMapRun",
	                 json_pack("{s:s}", "mapRunArn", m->map_run), &ans, &err)
	    != SL_OK) {
		json_decref(ans);
		return;
	}
	json_t *c = json_object_get(ans, "executionCounts");
	long long v[5];
	const char *k[5] = { "total", "succeeded", "failed", "aborted", "running" };
	for (int i = 0; i < 5; i++)
		v[i] = (long long)json_integer_value(json_object_get(c, k[i]));
	json_decref(ans);
	long long started = v[1] + v[2] + v[3] + v[4];
	if (v[0] != m->total || v[1] != m->succeeded || v[2] != m->failed || v[3] != m->aborted
	    || started != m->started) {
		m->total = v[0];
		m->succeeded = v[1];
		m->failed = v[2];
		m->aborted = v[3];
		m->started = started;
		m->dirty = true;
	}
}

static int
do_watch(const struct ex_opts *o, const char *arn)
{
	struct watch w = { .o = o,
		           .arn = arn,
		           .result = -1,
		           .tty = isatty(STDOUT_FILENO) == 1,
		           .task_chain = json_object() };
	/* the top-level states of the revision this execution runs */
	struct sl_error err = { 0 };
	json_t *ans = NULL;
	if (cli_api_call(o->endpoint, "AWSStepFunctions.DescribeStateMachineForExecution",
	                 json_pack("{s:s}", "executionArn", arn), &ans, &err)
	    == SL_OK) {
		json_t *def = json_loads(jstr(ans, "definition") ? jstr(ans, "definition") : "", 0,
		                         NULL);
		if (json_is_object(json_object_get(def, "States")))
			w.top = json_incref(json_object_get(def, "States"));
		json_decref(def);
	}
	json_decref(ans);
	uint64_t deadline = o->timeout_s > 0
	        ? sl_clock_mono_ns() + (uint64_t)o->timeout_s * 1000000000ull
	        : 0;
	int code = CLI_OK;
	while (w.result < 0) {
		sl_err rc;
		json_t *batch = new_events(&w, &rc);
		if (!batch) {
			code = cli_api_exit_code(rc);
			break;
		}
		size_t i;
		json_t *ev;
		json_array_foreach(batch, i, ev)
		{
			long long id = json_integer_value(json_object_get(ev, "id"));
			if (id <= w.seen)
				continue;
			w.seen = id;
			watch_event(&w, ev);
			if (w.result >= 0)
				break;
		}
		json_decref(batch);
		if (w.result >= 0)
			break;
		for (size_t m = 0; m < w.nmaps; m++)
			if (w.maps[m].open && w.maps[m].map_run[0])
				map_run_counts(&w, &w.maps[m]);
		/* one progress line per poll and map at most */
		for (size_t m = 0; m < w.nmaps; m++)
			if (w.maps[m].open && w.maps[m].dirty) {
				double el
				        = w.t0 > 0 ? (double)sl_clock_now_ms() / 1000.0 - w.t0 : 0;
				progress_line(&w, &w.maps[m], el < 0 ? 0 : el, false);
			}
		if (deadline && sl_clock_mono_ns() > deadline) {
			clear_progress(&w);
			fprintf(stderr, "sluice executions: %s is still running after %ld s\n", arn,
			        o->timeout_s);
			code = CLI_RUNTIME;
			break;
		}
		struct timespec ts = { 0, WATCH_POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
	json_decref(w.top);
	json_decref(w.task_chain);
	fflush(stdout);
	return w.result >= 0 ? w.result : code;
}

static int
do_stop(const struct ex_opts *o, const char *arn)
{
	struct sl_error err = { 0 };
	json_t *req = json_pack("{s:s}", "executionArn", arn), *ans = NULL;
	if (req && o->error)
		json_object_set_new(req, "error", json_string(o->error));
	if (req && o->cause)
		json_object_set_new(req, "cause", json_string(o->cause));
	sl_err rc = cli_api_call(o->endpoint, "AWSStepFunctions.StopExecution", req, &ans, &err);
	json_decref(ans);
	if (rc)
		return fail(NULL, rc, &err);
	printf("stopped %s\n", arn);
	return CLI_OK;
}

/* RedriveExecution: a FAILED, TIMED_OUT or ABORTED execution restarts at its failed state. */
static int
do_redrive(const struct ex_opts *o, const char *arn)
{
	struct sl_error err = { 0 };
	json_t *req = json_pack("{s:s}", "executionArn", arn), *ans = NULL;
	sl_err rc = cli_api_call(o->endpoint, "AWSStepFunctions.RedriveExecution", req, &ans, &err);
	json_decref(ans);
	if (rc)
		return fail(NULL, rc, &err);
	printf("redriven %s\n", arn);
	return CLI_OK;
}

static int
do_start(const struct ex_opts *o)
{
	if (!o->machine) {
		fprintf(stderr, "sluice executions start: --state-machine is required\n");
		return CLI_USAGE;
	}
	if (o->sync && o->watch) {
		fprintf(stderr, "sluice executions start: --sync and --watch exclude each other\n");
		return CLI_USAGE;
	}
	struct sl_error err = { 0 };
	char marn[600];
	sl_err rc = cli_api_machine_arn(o->endpoint, o->machine, marn, sizeof marn, &err);
	if (rc)
		return fail(NULL, rc, &err);
	json_t *req = json_pack("{s:s}", "stateMachineArn", marn);
	if (o->input) {
		char *text = NULL;
		if ((rc = cli_text_or_file(o->input, INPUT_MAX, &text, &err))) {
			json_decref(req);
			fail("--input", rc, &err);
			return CLI_USAGE;
		}
		json_object_set_new(req, "input", json_string(text));
		sl_free(text);
	}
	if (o->name)
		json_object_set_new(req, "name", json_string(o->name));
	json_t *ans = NULL;
	if (o->sync) {
		// the answer comes when the execution ends: AWS's 5 minutes at most, and a margin
		rc = cli_aws_call(o->endpoint, "AWSStepFunctions.StartSyncExecution", req, 330,
		                  &ans, &err);
		json_decref(req);
		if (rc) {
			json_decref(ans);
			return fail(NULL, rc, &err);
		}
		char *text = json_dumps(ans, JSON_INDENT(2));
		printf("%s\n", text ? text : "{}");
		sl_free(text);
		bool ok = jstr(ans, "status") && strcmp(jstr(ans, "status"), "SUCCEEDED") == 0;
		json_decref(ans);
		return ok ? CLI_OK : 1;
	}
	if ((rc = cli_api_call(o->endpoint, "AWSStepFunctions.StartExecution", req, &ans, &err))) {
		json_decref(ans);
		return fail(NULL, rc, &err);
	}
	char arn[600];
	snprintf(arn, sizeof arn, "%s", jstr(ans, "executionArn") ? jstr(ans, "executionArn") : "");
	json_decref(ans);
	if (!o->watch) {
		printf("%s\n", arn);
		return CLI_OK;
	}
	return do_watch(o, arn);
}

int
cmd_executions(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, 0, 'E' },
		{ "state-machine", required_argument, 0, 'm' },
		{ "status", required_argument, 0, 's' },
		{ "input", required_argument, 0, 'i' },
		{ "name", required_argument, 0, 'n' },
		{ "reverse", no_argument, 0, 'r' },
		{ "json", no_argument, 0, 'j' },
		{ "watch", no_argument, 0, 'w' },
		{ "sync", no_argument, 0, 'S' },
		{ "timeout", required_argument, 0, 't' },
		{ "error", required_argument, 0, 'e' },
		{ "cause", required_argument, 0, 'c' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct ex_opts o = { 0 };
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'E': o.endpoint = optarg; break;
		case 'm': o.machine = optarg; break;
		case 's': o.status = optarg; break;
		case 'i': o.input = optarg; break;
		case 'n': o.name = optarg; break;
		case 'r': o.reverse = true; break;
		case 'j': o.json = true; break;
		case 'w': o.watch = true; break;
		case 'S': o.sync = true; break;
		case 'e': o.error = optarg; break;
		case 'c': o.cause = optarg; break;
		case 't': {
			char *end;
			o.timeout_s = strtol(optarg, &end, 10);
			if (*end || o.timeout_s < 0) {
				fprintf(stderr,
				        "sluice executions: --timeout takes whole seconds\n");
				return CLI_USAGE;
			}
			break;
		}
		case 'h': usage(stdout); return CLI_OK;
		default: usage(stderr); return CLI_USAGE;
		}
	}
	o.endpoint = cli_endpoint(o.endpoint);
	int n = argc - optind;
	char **a = argv + optind;
	const char *verb = n > 0 ? a[0] : "";
	if (strcmp(verb, "list") == 0 && n == 1)
		return do_list(&o);
	if (strcmp(verb, "start") == 0 && n == 1)
		return do_start(&o);
	if (n == 2
	    && (strcmp(verb, "describe") == 0 || strcmp(verb, "history") == 0
	        || strcmp(verb, "watch") == 0 || strcmp(verb, "stop") == 0
	        || strcmp(verb, "redrive") == 0)) {
		char arn[600];
		int code = resolve_execution(&o, a[1], arn, sizeof arn);
		if (code)
			return code;
		if (verb[0] == 'd')
			return do_describe(&o, arn);
		if (verb[0] == 'h')
			return do_history(&o, arn);
		if (verb[0] == 's')
			return do_stop(&o, arn);
		if (verb[0] == 'r')
			return do_redrive(&o, arn);
		return do_watch(&o, arn);
	}
	usage(stderr);
	return CLI_USAGE;
}
