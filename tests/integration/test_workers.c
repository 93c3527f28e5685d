/*
 * Workers over NNG against the real server: real `sluice worker --exec` processes serve a
 * Map across 4 workers (each item's task succeeds exactly once, ActivityStarted names its
 * worker); a worker SIGKILLed mid-task leads to a heartbeat timeout and a retry on another
 * worker; a result after the lease expired is refused and changes nothing; the
 * --workers-token check; malformed, mistyped and oversized frames from a raw REQ socket;
 * a SIGKILL of the server with tasks queued, then a restart that offers them again;
 * GetActivityTask; TLS on loopback when openssl can make a certificate; polls for several
 * tasks (raw, and `sluice worker --tasks-per-poll`).
 *
 * Every wait is a bounded poll (a hang guard), never a timing assertion.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AWS_CALLS_SERVICE "AWSStepFunctions"
#include "tests/integration/aws_calls.h"
#include "tests/integration/harness.h"

#define SM(name)     "arn:aws:states:us-east-1:000000000000:stateMachine:" name
#define EXEC(m, n)   "arn:aws:states:us-east-1:000000000000:execution:" m ":" n
#define ACT(name)    "arn:aws:states:us-east-1:000000000000:activity:" name
#define ROLE         "arn:aws:iam::000000000000:role/x"
#define DONE_WAIT_MS 60000
#define MAP_ITEMS    1000

/* ---- helpers ------------------------------------------------------------------------------ */

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void
create_machine(const char *name, const char *def)
{
	json_decref(
	        ok("CreateStateMachine",
	           json_pack("{s:s,s:s,s:s}", "name", name, "definition", def, "roleArn", ROLE)));
}

static void
start_exec(const char *machine_arn, const char *name, const char *input)
{
	json_decref(ok("StartExecution",
	               json_pack("{s:s,s:s,s:s}", "stateMachineArn", machine_arn, "name", name,
	                         "input", input)));
}

/* Waits until the execution's history holds at least n events of type. */
static void
wait_events(const char *arn, const char *type, size_t n)
{
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		json_t *ev = exec_history(arn);
		size_t got = events_count(ev, type);
		json_decref(ev);
		if (got >= n)
			return;
		nap_ms(50);
	}
	cr_assert_fail("%s: fewer than %zu %s events after %d ms", arn, n, type, DONE_WAIT_MS);
}

/* A `sluice worker` process serving activity with command; name and token may be NULL. */
/* per_poll: --tasks-per-poll N when not 0 */
static pid_t
spawn_worker_n(const char *url, const char *activity, const char *command, const char *name,
               const char *token, bool tls_insecure, unsigned per_poll)
{
	const char *bin = getenv("SLUICE_BIN");
	cr_assert_not_null(bin, "SLUICE_BIN is not set (run through meson test)");
	char log[400];
	snprintf(log, sizeof log, "%s/worker-%s.log", srv.dir, name ? name : "anon");
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* a test that fails half-way leaves no worker behind */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (!freopen(log, "a", stderr))
			_exit(126);
		const char *argv[20] = { bin,      "worker", "--connect", url, "--activity",
			                 activity, "--exec", command,     NULL };
		size_t argc = 8;
		if (name) {
			argv[argc++] = "--name";
			argv[argc++] = name;
		}
		if (token) {
			argv[argc++] = "--token";
			argv[argc++] = token;
		}
		if (tls_insecure)
			argv[argc++] = "--tls-insecure";
		char per[16];
		if (per_poll) {
			snprintf(per, sizeof per, "%u", per_poll);
			argv[argc++] = "--tasks-per-poll";
			argv[argc++] = per;
		}
		argv[argc] = NULL;
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static pid_t
spawn_worker(const char *url, const char *activity, const char *command, const char *name,
             const char *token, bool tls_insecure)
{
	return spawn_worker_n(url, activity, command, name, token, tls_insecure, 0);
}

static void
stop_worker(pid_t pid)
{
	kill(pid, SIGTERM);
	for (int waited = 0; waited < 20000; waited += 20) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		nap_ms(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Waits (bounded) until the dispatcher holds want polls: the server has seen a poll come in
 * or a hang-up withdraw it (NNG tells it on its own threads: a fixed sleep may be short). */
static void
wait_polls_waiting(long want, const char *what)
{
	long v = -1;
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 20) {
		if ((v = metrics_sample("sluice_dispatch_polls_waiting")) == want)
			return;
		nap_ms(20);
	}
	cr_assert_fail("%s: sluice_dispatch_polls_waiting is %ld after %d ms, not %ld", what, v,
	               DONE_WAIT_MS, want);
}

/* ---- a raw REQ socket --------------------------------------------------------------------- */

static nng_socket
raw_open(const char *url)
{
	nng_socket sk;
	cr_assert_eq(nng_req0_open(&sk), 0);
	nng_socket_set_ms(sk, NNG_OPT_RECVTIMEO, 20000);
	nng_socket_set_ms(sk, NNG_OPT_SENDTIMEO, 20000);
	nng_socket_set_ms(sk, NNG_OPT_REQ_RESENDTIME, 600000);
	cr_assert_eq(nng_dial(sk, url, NULL, 0), 0, "dial %s", url);
	return sk;
}

/* Sends one frame and returns the decoded reply, or NULL when none came. */
static json_t *
raw_call(nng_socket sk, const void *frame, size_t len)
{
	if (nng_send(sk, (void *)frame, len, 0) != 0)
		return NULL;
	char *buf = NULL;
	size_t n = 0;
	if (nng_recv(sk, &buf, &n, NNG_FLAG_ALLOC) != 0)
		return NULL;
	json_t *j = json_loadb(buf, n, 0, NULL);
	nng_free(buf, n);
	cr_assert_not_null(j, "reply is not JSON");
	return j;
}

static json_t *
raw_json(nng_socket sk, json_t *frame)
{
	char *txt = json_dumps(frame, JSON_COMPACT);
	json_decref(frame);
	json_t *r = raw_call(sk, txt, strlen(txt));
	cr_assert_not_null(r, "no reply within the socket's 20 s to %.200s", txt);
	free(txt);
	return r;
}

static void
assert_error(json_t *reply, const char *error)
{
	char *t = json_dumps(reply, 0);
	cr_assert_str_eq(s(reply, "error") ? s(reply, "error") : "(none)", error, "%s", t);
	free(t);
	json_decref(reply);
}

/* Sends one SP/TCP frame announcing len bytes as a REQ peer would, by hand: an NNG socket
 * closed while the server refuses such a frame can hang in nng_close (nanomsg/nng#1219).
 * True when the server closes the connection without answering (a bounded wait). */
static bool
oversized_frame_is_dropped(const char *url, size_t len)
{
	const char *colon = strrchr(url, ':');
	cr_assert_not_null(colon, "workers url %s", url);
	int fd = h_connect(atoi(colon + 1));
	cr_assert_geq(fd, 0, "connect %s", url);
	struct timeval tv = { .tv_sec = 20 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	/* SP header: 0, 'S', 'P', version 0, protocol REQ0 (48), reserved; then the
	 * 64-bit big-endian frame length, a request id, and part of the body */
	unsigned char hello[8] = { 0, 'S', 'P', 0, 0, 48, 0, 0 };
	unsigned char frame[12 + 4096] = { 0 };
	uint64_t n = (uint64_t)len + 4;
	for (int i = 0; i < 8; i++)
		frame[i] = (unsigned char)(n >> (56 - 8 * i));
	frame[8] = 0x80; /* request ids have the top bit set */
	memset(frame + 12, ' ', 4096);
	bool sent = send(fd, hello, sizeof hello, MSG_NOSIGNAL) == (ssize_t)sizeof hello;
	cr_assert(sent, "SP header not sent");
	(void)send(fd, frame, sizeof frame, MSG_NOSIGNAL); /* may fail once the server closed */
	char buf[64];
	ssize_t got;
	bool reply = false;
	/* the server's own SP header comes first; after it, only the close */
	size_t seen = 0;
	while ((got = recv(fd, buf, sizeof buf, 0)) > 0) {
		seen += (size_t)got;
		if (seen > 8) {
			reply = true;
			break;
		}
	}
	bool closed = got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
	close(fd);
	return !reply && closed;
}

/* ---- tests -------------------------------------------------------------------------------- */

#define ECHO_MAP_DEF                                                                               \
	"{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemsPath\":\"$.items\","        \
	"\"Iterator\":{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"       \
	"\"" ACT("echo") "\",\"End\":true}}},\"End\":true}}}"

Test(workers, map_across_four_workers_each_task_once)
{
	start();
	create_machine("fan", ECHO_MAP_DEF);
	pid_t w[4];
	char names[4][16];
	for (int i = 0; i < 4; i++) {
		snprintf(names[i], sizeof names[i], "w%d", i);
		w[i] = spawn_worker(srv.workers, "echo", "cat", names[i], NULL, false);
	}
	json_t *items = json_array();
	for (int i = 0; i < MAP_ITEMS; i++)
		json_array_append_new(items, json_pack("{s:i}", "n", i));
	json_t *in = json_pack("{s:o}", "items", items);
	char *txt = json_dumps(in, JSON_COMPACT);
	json_decref(in);
	start_exec(SM("fan"), "big", txt);
	free(txt);
	json_t *d = exec_wait_status(EXEC("fan", "big"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	json_t *out = json_loads(s(d, "output"), 0, NULL);
	cr_assert_eq(json_array_size(out), MAP_ITEMS);
	for (size_t i = 0; i < MAP_ITEMS; i++)
		cr_assert_eq(json_integer_value(json_object_get(json_array_get(out, i), "n")),
		             (json_int_t)i);
	json_decref(out);
	json_decref(d);

	json_t *ev = exec_history(EXEC("fan", "big"));
	cr_assert_eq(events_count(ev, "ActivityScheduled"), MAP_ITEMS);
	cr_assert_eq(events_count(ev, "ActivityStarted"), MAP_ITEMS);
	cr_assert_eq(events_count(ev, "ActivitySucceeded"), MAP_ITEMS);
	cr_assert_eq(events_count(ev, "ActivityFailed") + events_count(ev, "ActivityTimedOut"), 0);
	/* each item's task succeeded exactly once: the outputs are the distinct inputs */
	char *seen = calloc(MAP_ITEMS, 1);
	size_t i;
	json_t *e;
	json_array_foreach(ev, i, e)
	{
		const char *t = s(e, "type");
		if (strcmp(t, "ActivityStarted") == 0) {
			const char *wn = s(json_object_get(e, "activityStartedEventDetails"),
			                   "workerName");
			cr_assert_not_null(wn, "ActivityStarted without workerName");
			bool known = false;
			for (int k = 0; k < 4; k++)
				known |= strcmp(wn, names[k]) == 0;
			cr_assert(known, "workerName %s", wn);
		}
		if (strcmp(t, "ActivitySucceeded") != 0)
			continue;
		json_t *o = json_loads(
		        s(json_object_get(e, "activitySucceededEventDetails"), "output"), 0, NULL);
		json_int_t n = json_integer_value(json_object_get(o, "n"));
		cr_assert(n >= 0 && n < MAP_ITEMS);
		cr_assert_eq(seen[n], 0, "item %lld succeeded twice", (long long)n);
		seen[n] = 1;
		json_decref(o);
	}
	free(seen);
	json_decref(ev);
	for (int k = 0; k < 4; k++)
		stop_worker(w[k]);
	stop();
}

#define SLOW_DEF                                                                                   \
	"{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"activity:slow\","  \
	"\"HeartbeatSeconds\":2,\"Retry\":[{\"ErrorEquals\":[\"States.HeartbeatTimeout\"],"        \
	"\"IntervalSeconds\":1,\"MaxAttempts\":2}],\"End\":true}}}"

Test(workers, killed_worker_times_out_and_the_retry_runs_elsewhere)
{
	start();
	create_machine("slow", SLOW_DEF);
	char mark[400], cmd[600];
	snprintf(mark, sizeof mark, "%s/victim.pid", srv.dir);
	/* the command records its pid (exec keeps it) so the test can reap the orphan */
	snprintf(cmd, sizeof cmd, "echo $$ > %s; exec sleep 30", mark);
	pid_t victim = spawn_worker(srv.workers, "slow", cmd, "victim", NULL, false);
	start_exec(SM("slow"), "s1", "{\"x\":1}");
	wait_events(EXEC("slow", "s1"), "ActivityStarted", 1);
	for (int waited = 0; access(mark, F_OK) != 0 && waited < DONE_WAIT_MS; waited += 20)
		nap_ms(20);
	kill(victim, SIGKILL);
	waitpid(victim, NULL, 0);
	pid_t rescuer = spawn_worker(srv.workers, "slow", "cat", "rescuer", NULL, false);
	json_t *d = exec_wait_status(EXEC("slow", "s1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	cr_assert_str_eq(s(d, "output"), "{\"x\":1}");
	json_decref(d);
	json_t *ev = exec_history(EXEC("slow", "s1"));
	cr_assert_eq(events_count(ev, "ActivityTimedOut"), 1);
	cr_assert_eq(events_count(ev, "ActivitySucceeded"), 1);
	size_t i;
	json_t *e;
	const char *names[2] = { NULL, NULL };
	size_t started = 0;
	json_array_foreach(ev, i, e)
	{
		if (strcmp(s(e, "type"), "ActivityTimedOut") == 0)
			cr_assert_str_eq(
			        s(json_object_get(e, "activityTimedOutEventDetails"), "error"),
			        "States.HeartbeatTimeout");
		if (strcmp(s(e, "type"), "ActivityStarted") == 0 && started < 2)
			names[started++] = s(json_object_get(e, "activityStartedEventDetails"),
			                     "workerName");
	}
	cr_assert_eq(started, 2);
	cr_assert_str_eq(names[0], "victim");
	cr_assert_str_eq(names[1], "rescuer");
	json_decref(ev);
	FILE *f = fopen(mark, "r");
	int orphan = 0;
	if (f && fscanf(f, "%d", &orphan) == 1 && orphan > 1)
		kill(orphan, SIGKILL);
	if (f)
		fclose(f);
	stop_worker(rescuer);
	stop();
}

#define LAPSE_DEF                                                                                  \
	"{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"" ACT(             \
	        "lapse") "\",\"HeartbeatSeconds\":1,\"End\":true}}}"

static json_t *
poll_frame_max(const char *id, const char *activity, const char *auth, int wait_ms, int max)
{
	json_t *f = json_pack("{s:i,s:s,s:s,s:s,s:[s],s:i,s:i}", "v", 1, "type", "poll", "id", id,
	                      "worker", "raw", "activities", activity, "max", max, "wait_ms",
	                      wait_ms);
	if (auth)
		json_object_set_new(f, "auth", json_string(auth));
	return f;
}

static json_t *
poll_frame(const char *id, const char *activity, const char *auth, int wait_ms)
{
	return poll_frame_max(id, activity, auth, wait_ms, 1);
}

Test(workers, a_result_after_the_lease_expired_is_refused_and_changes_nothing)
{
	start();
	create_machine("lapse", LAPSE_DEF);
	start_exec(SM("lapse"), "l1", "{\"k\":\"v\"}");
	nng_socket sk = raw_open(srv.workers);
	json_t *r = raw_json(sk, poll_frame("p1", "lapse", NULL, 20000));
	json_t *t = json_array_get(json_object_get(r, "tasks"), 0);
	cr_assert_not_null(t, "no task: %s", json_dumps(r, 0));
	char tok[64];
	snprintf(tok, sizeof tok, "%s", s(t, "token"));
	cr_assert_str_eq(s(t, "activity"), "lapse");
	cr_assert_eq(json_integer_value(json_object_get(t, "heartbeat_s")), 1);
	cr_assert_str_eq(s(json_object_get(t, "input"), "k"), "v");
	/* the same poll id again (a REQ re-send) gets the same task, not a new lease */
	json_t *again = raw_json(sk, poll_frame("p1", "lapse", NULL, 0));
	cr_assert(json_equal(again, r));
	json_decref(again);
	json_decref(r);
	/* no heartbeat: the lease lapses */
	json_t *d = exec_wait_status(EXEC("lapse", "l1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "FAILED");
	cr_assert_str_eq(s(d, "error"), "States.HeartbeatTimeout");
	json_decref(d);
	json_t *before = exec_history(EXEC("lapse", "l1"));
	assert_error(raw_json(sk,
	                      json_pack("{s:i,s:s,s:s,s:{s:b}}", "v", 1, "type", "success", "token",
	                                tok, "output", "late", true)),
	             "TaskTimedOut");
	assert_error(
	        raw_json(sk, json_pack("{s:i,s:s,s:s}", "v", 1, "type", "heartbeat", "token", tok)),
	        "TaskTimedOut");
	assert_error(raw_json(sk,
	                      json_pack("{s:i,s:s,s:s}", "v", 1, "type", "success", "token",
	                                "0123456789abcdef0123456789abcdef")),
	             "MalformedFrame"); /* success without output */
	assert_error(raw_json(sk,
	                      json_pack("{s:i,s:s,s:s,s:i}", "v", 1, "type", "success", "token",
	                                "0123456789abcdef0123456789abcdef", "output", 1)),
	             "TaskDoesNotExist");
	json_t *after = exec_history(EXEC("lapse", "l1"));
	cr_assert(json_equal(before, after), "the history changed after a refused result");
	json_decref(before);
	json_decref(after);
	d = ok("DescribeExecution", json_pack("{s:s}", "executionArn", EXEC("lapse", "l1")));
	cr_assert_str_eq(s(d, "status"), "FAILED");
	json_decref(d);
	nng_close(sk);
	stop();
}

Test(workers, the_workers_token_is_checked)
{
	const char *extra[] = { "--workers-token", "s3cret", NULL };
	cr_assert(h_start(&srv, extra), "server did not start");
	nng_socket sk = raw_open(srv.workers);
	assert_error(raw_json(sk, poll_frame("a1", "x", NULL, 0)), "Unauthorized");
	assert_error(raw_json(sk, poll_frame("a2", "x", "s3cre", 0)), "Unauthorized");
	assert_error(raw_json(sk, poll_frame("a3", "x", "s3cret!", 0)), "Unauthorized");
	assert_error(raw_json(sk,
	                      json_pack("{s:i,s:s,s:s,s:i,s:s}", "v", 1, "type", "success", "token",
	                                "0123456789abcdef0123456789abcdef", "output", 1, "auth",
	                                "nope")),
	             "Unauthorized");
	json_t *r = raw_json(sk, poll_frame("a4", "x", "s3cret", 0));
	cr_assert(json_is_array(json_object_get(r, "tasks")), "%s", json_dumps(r, 0));
	cr_assert_eq(json_array_size(json_object_get(r, "tasks")), 0);
	json_decref(r);
	nng_close(sk);
	/* a worker with the token serves tasks */
	create_machine("auth",
	               "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\","
	               "\"Resource\":\"activity:authd\",\"End\":true}}}");
	pid_t w = spawn_worker(srv.workers, "authd", "cat", "tok", "s3cret", false);
	start_exec(SM("auth"), "a1", "{\"ok\":true}");
	json_t *d = exec_wait_status(EXEC("auth", "a1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED");
	json_decref(d);
	stop_worker(w);
	stop();
}

Test(workers, malformed_frames_get_error_replies_and_the_server_stays_up)
{
	start();
	nng_socket sk = raw_open(srv.workers);
	const char *garbage[] = { "garbage",
		                  "",
		                  "[1,2]",
		                  "{\"v\":1}",
		                  "{\"v\":\"1\",\"type\":\"poll\"}",
		                  "{\"v\":1,\"type\":\"poll\"}",
		                  "{\"v\":1,\"type\":\"poll\",\"id\":\"x\",\"activities\":[]}",
		                  "{\"v\":1,\"type\":\"poll\",\"id\":\"x\",\"activities\":[1]}",
		                  "{\"v\":1,\"type\":\"poll\",\"id\":\"x\",\"activities\":[\"a\"],"
		                  "\"max\":-1}",
		                  "{\"v\":1,\"type\":\"heartbeat\",\"token\":7}",
		                  "{\"v\":1,\"type\":\"failure\"}",
		                  "{\"v\":1,\"type\":\"poll\",\"v\":1}" };
	for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
		assert_error(raw_call(sk, garbage[i], strlen(garbage[i])), "MalformedFrame");
	assert_error(raw_call(sk, "\xff\xfe{", 3), "MalformedFrame");
	assert_error(raw_json(sk, json_pack("{s:i,s:s}", "v", 2, "type", "poll")),
	             "UnsupportedVersion");
	assert_error(raw_json(sk, json_pack("{s:i,s:s}", "v", 1, "type", "bogus")),
	             "UnknownMessage");
	assert_error(raw_json(sk,
	                      json_pack("{s:i,s:s,s:s,s:[]}", "v", 1, "type", "tasks", "id", "x",
	                                "tasks")),
	             "UnknownMessage");
	/* an output over the 256 KiB payload limit, inside the 1 MiB frame limit */
	char *big = malloc(300 * 1024);
	memset(big, 'a', 300 * 1024 - 1);
	big[300 * 1024 - 1] = 0;
	assert_error(raw_json(sk,
	                      json_pack("{s:i,s:s,s:s,s:s}", "v", 1, "type", "success", "token",
	                                "0123456789abcdef0123456789abcdef", "output", big)),
	             "PayloadTooLarge");
	free(big);
	/* over NNG_OPT_RECVMAXSZ: the server drops the frame and its connection; no reply */
	cr_assert(oversized_frame_is_dropped(srv.workers, 2 * 1024 * 1024),
	          "a frame over the size limit was answered");
	/* still serving: a valid poll on the first socket, and HTTP */
	json_t *r = raw_json(sk, poll_frame("fine", "x", NULL, 0));
	cr_assert_eq(json_array_size(json_object_get(r, "tasks")), 0, "%s", json_dumps(r, 0));
	json_decref(r);
	nng_close(sk);
	create_machine("alive", ECHO_MAP_DEF);
	stop();
}

Test(workers, a_server_sigkill_with_tasks_queued_offers_them_again_after_restart)
{
	start();
	create_machine("fan", ECHO_MAP_DEF);
	start_exec(SM("fan"), "k1",
	           "{\"items\":[{\"n\":0},{\"n\":1},{\"n\":2},{\"n\":3},{\"n\":4},{\"n\":5},"
	           "{\"n\":6},{\"n\":7},{\"n\":8},{\"n\":9}]}");
	wait_events(EXEC("fan", "k1"), "ActivityScheduled", 10);
	/* one task taken by a raw poller that will never answer before the crash */
	nng_socket sk = raw_open(srv.workers);
	json_t *r = raw_json(sk, poll_frame("c1", "echo", NULL, 5000));
	cr_assert_eq(json_array_size(json_object_get(r, "tasks")), 1, "%s", json_dumps(r, 0));
	char tok[64];
	snprintf(tok, sizeof tok, "%s", s(json_array_get(json_object_get(r, "tasks"), 0), "token"));
	json_t *taken_input = json_incref(
	        json_object_get(json_array_get(json_object_get(r, "tasks"), 0), "input"));
	json_decref(r);
	nng_close(sk);
	h_kill(&srv);
	char dir[300];
	snprintf(dir, sizeof dir, "%s", srv.data);
	const char *extra[] = { "--data", dir, NULL };
	struct h_server old = srv;
	cr_assert(h_start(&srv, extra), "restart failed");
	pid_t w = spawn_worker(srv.workers, "echo", "cat", "after", NULL, false);
	/* the leased task keeps its lease: its holder reports after the restart */
	sk = raw_open(srv.workers);
	char *txt = json_dumps(taken_input, JSON_COMPACT | JSON_ENCODE_ANY);
	json_t *okr = raw_json(sk,
	                       json_pack("{s:i,s:s,s:s,s:O}", "v", 1, "type", "success", "token",
	                                 tok, "output", taken_input));
	cr_assert_str_eq(s(okr, "type") ? s(okr, "type") : "(none)", "ok", "%s",
	                 json_dumps(okr, 0));
	json_decref(okr);
	free(txt);
	json_decref(taken_input);
	nng_close(sk);
	json_t *d = exec_wait_status(EXEC("fan", "k1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	json_decref(d);
	json_t *ev = exec_history(EXEC("fan", "k1"));
	cr_assert_eq(events_count(ev, "ActivitySucceeded"), 10);
	cr_assert_eq(events_count(ev, "ActivityStarted"), 10);
	json_decref(ev);
	stop_worker(w);
	stop();
	h_cleanup(&old);
}

Test(workers, get_activity_task_long_polls_the_same_queues)
{
	start();
	create_machine("http",
	               "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\","
	               "\"Resource\":\"" ACT("byhttp") "\",\"End\":true}}}");
	fails("GetActivityTask", json_pack("{s:s}", "activityArn", "not-an-arn"), "InvalidArn",
	      "not-an-arn");
	start_exec(SM("http"), "h1", "{\"via\":\"http\"}");
	json_t *r = ok(
	        "GetActivityTask",
	        json_pack("{s:s,s:s}", "activityArn", ACT("byhttp"), "workerName", "sdk-worker"));
	cr_assert_not_null(s(r, "taskToken"), "%s", json_dumps(r, 0));
	cr_assert_str_eq(s(r, "input"), "{\"via\":\"http\"}");
	/* the token works over NNG as well: the dispatcher serves both */
	nng_socket sk = raw_open(srv.workers);
	json_t *a = raw_json(sk,
	                     json_pack("{s:i,s:s,s:s,s:{s:s}}", "v", 1, "type", "success", "token",
	                               s(r, "taskToken"), "output", "done", "yes"));
	cr_assert_str_eq(s(a, "type") ? s(a, "type") : "(none)", "ok", "%s", json_dumps(a, 0));
	json_decref(a);
	nng_close(sk);
	json_decref(r);
	json_t *d = exec_wait_status(EXEC("http", "h1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED");
	json_decref(d);
	json_t *ev = exec_history(EXEC("http", "h1"));
	size_t i;
	json_t *e;
	bool named = false;
	json_array_foreach(ev, i, e) if (strcmp(s(e, "type"), "ActivityStarted") == 0) named
	        = strcmp(s(json_object_get(e, "activityStartedEventDetails"), "workerName"),
	                 "sdk-worker")
	        == 0;
	cr_assert(named, "ActivityStarted lacks workerName sdk-worker");
	json_decref(ev);
	stop();
}

Test(workers, tls_on_loopback)
{
	if (h_run("command -v openssl >/dev/null 2>&1", NULL) != 0)
		cr_skip_test("openssl is not installed: cannot make a test certificate");
	char dir[] = "/tmp/sluice-tls-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char cmd[1024], cert[300], key[300];
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	snprintf(cmd, sizeof cmd,
	         "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 "
	         "-subj /CN=localhost >/dev/null 2>&1",
	         key, cert);
	cr_assert_eq(h_run(cmd, NULL), 0, "openssl could not make a certificate");
	const char *extra[] = { "--workers", "tls+tcp://127.0.0.1:0", "--workers-cert",
		                cert,        "--workers-key",         key,
		                NULL };
	bool started = h_start(&srv, extra);
	/* the server read the PEM files at start: they can go now, whatever happens next */
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	h_run(cmd, NULL);
	cr_assert(started, "server did not start with TLS");
	cr_assert(strncmp(srv.workers, "tls+tcp://", 10) == 0, "%s", srv.workers);
	create_machine("tls",
	               "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\","
	               "\"Resource\":\"activity:secure\",\"End\":true}}}");
	pid_t w = spawn_worker(srv.workers, "secure", "cat", "tls", NULL, true);
	start_exec(SM("tls"), "t1", "{\"over\":\"tls\"}");
	json_t *d = exec_wait_status(EXEC("tls", "t1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED");
	cr_assert_str_eq(s(d, "output"), "{\"over\":\"tls\"}");
	json_decref(d);
	stop_worker(w);
	stop();
}

Test(workers, sigterm_answers_held_polls_with_no_task)
{
	start();
	nng_socket held = raw_open(srv.workers);
	json_t *f = poll_frame("held", "nothing-here", NULL, 20000);
	char *txt = json_dumps(f, JSON_COMPACT);
	json_decref(f);
	cr_assert_eq(nng_send(held, txt, strlen(txt), 0), 0);
	free(txt);
	wait_polls_waiting(1, "the held poll");
	kill(srv.pid, SIGTERM);
	char *buf = NULL;
	size_t n = 0;
	cr_assert_eq(nng_recv(held, &buf, &n, NNG_FLAG_ALLOC), 0, "the held poll got no answer");
	json_t *ans = json_loadb(buf, n, 0, NULL);
	nng_free(buf, n);
	cr_assert_str_eq(s(ans, "type") ? s(ans, "type") : "(none)", "tasks", "%s",
	                 json_dumps(ans, 0));
	cr_assert_eq(json_array_size(json_object_get(ans, "tasks")), 0);
	json_decref(ans);
	nng_close(held);
	// already told to stop: a second SIGTERM (stop()) could arrive after its handler is gone
	int st = h_wait(&srv);
	cr_assert_eq(st, 0, "the server's exit status after SIGTERM is %d: %s", st, h_last_error());
	h_cleanup(&srv);
}

Test(workers, a_poller_that_hangs_up_is_given_no_task)
{
	start();
	create_machine("gone",
	               "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\","
	               "\"Resource\":\"activity:vanish\",\"End\":true}}}");
	nng_socket a = raw_open(srv.workers);
	json_t *f = poll_frame("lost", "vanish", NULL, 20000);
	char *txt = json_dumps(f, JSON_COMPACT);
	json_decref(f);
	cr_assert_eq(nng_send(a, txt, strlen(txt), 0), 0);
	free(txt);
	wait_polls_waiting(1, "the poll before its hang-up");
	nng_close(a); /* its held poll must not take the task */
	wait_polls_waiting(0, "the hung-up poll withdrawn");
	start_exec(SM("gone"), "g1", "{\"who\":\"live\"}");
	pid_t w = spawn_worker(srv.workers, "vanish", "cat", "live", NULL, false);
	json_t *d = exec_wait_status(EXEC("gone", "g1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED");
	json_decref(d);
	json_t *ev = exec_history(EXEC("gone", "g1"));
	cr_assert_eq(events_count(ev, "ActivityStarted"), 1);
	json_decref(ev);
	stop_worker(w);
	stop();
}

/* Lambda resources are served by workers registered under the function's name: the plain
 * function ARN, lambda:invoke (the worker gets Payload; the state gets Lambda's answer
 * shape) and lambda:invoke.waitForTaskToken (the worker's result only acknowledges). */
#define LAMBDA_DEF                                                                                 \
	"{\"StartAt\":\"Plain\",\"States\":{"                                                      \
	"\"Plain\":{\"Type\":\"Task\",\"Resource\":"                                               \
	"\"arn:aws:lambda:us-east-1:000000000000:function:double:live\",\"ResultPath\":"           \
	"\"$.plain\",\"Next\":\"Invoke\"},"                                                        \
	"\"Invoke\":{\"Type\":\"Task\",\"Resource\":\"arn:aws:states:::lambda:invoke\","           \
	"\"Parameters\":{\"FunctionName\":\"arn:aws:lambda:us-east-1:000000000000:function:"       \
	"double\",\"Payload\":{\"n.$\":\"$.n\"}},\"ResultSelector\":{\"p.$\":\"$.Payload\","       \
	"\"code.$\":\"$.StatusCode\"},\"ResultPath\":\"$.invoked\",\"Next\":\"Callback\"},"        \
	"\"Callback\":{\"Type\":\"Task\",\"Resource\":"                                            \
	"\"arn:aws:states:::lambda:invoke.waitForTaskToken\",\"Parameters\":{\"FunctionName\":"    \
	"\"approve\",\"Payload\":{\"token.$\":\"$$.Task.Token\"}},\"ResultPath\":"                 \
	"\"$.approval\",\"End\":true}}}"

Test(workers, lambda_resources_are_served_by_function_name)
{
	start();
	create_machine("lam", LAMBDA_DEF);
	pid_t dbl = spawn_worker(srv.workers, "double", "cat", "dbl", NULL, false);
	start_exec(SM("lam"), "l1", "{\"n\":21}");
	/* the callback task: a raw worker takes it; its ack does not end the state */
	nng_socket sk = raw_open(srv.workers);
	json_t *t = NULL, *r = NULL;
	for (int i = 0; i < 30 && !t; i++) {
		char id[16];
		snprintf(id, sizeof id, "cb%d", i);
		json_decref(r);
		r = raw_json(sk, poll_frame(id, "approve", NULL, 2000));
		t = json_array_get(json_object_get(r, "tasks"), 0);
	}
	cr_assert_not_null(t, "the callback task never came");
	const char *tok = s(json_object_get(t, "input"), "token");
	cr_assert(tok && strlen(tok) == 32, "%s", json_dumps(t, 0));
	char token[64];
	snprintf(token, sizeof token, "%s", tok);
	json_t *a = raw_json(sk,
	                     json_pack("{s:i,s:s,s:s,s:s}", "v", 1, "type", "success", "token",
	                               token, "output", "invoked"));
	cr_assert_str_eq(s(a, "type") ? s(a, "type") : "(none)", "ok");
	json_decref(a);
	json_decref(r);
	json_t *d = ok("DescribeExecution", json_pack("{s:s}", "executionArn", EXEC("lam", "l1")));
	cr_assert_str_eq(s(d, "status"), "RUNNING");
	json_decref(d);
	/* the callback's answer, sent with the token over the wire */
	a = raw_json(sk, json_pack("{s:i,s:s,s:s}", "v", 1, "type", "heartbeat", "token", token));
	cr_assert_str_eq(s(a, "type") ? s(a, "type") : "(none)", "ok");
	json_decref(a);
	json_decref(
	        ok("SendTaskSuccess",
	           json_pack("{s:s,s:s}", "taskToken", token, "output", "{\"approved\":true}")));
	nng_close(sk);
	d = exec_wait_status(EXEC("lam", "l1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	json_t *out = json_loads(s(d, "output"), 0, NULL);
	json_t *want = json_loads("{\"n\":21,\"plain\":{\"n\":21},\"invoked\":{\"p\":{\"n\":21},"
	                          "\"code\":200},\"approval\":{\"approved\":true}}",
	                          0, NULL);
	cr_assert(json_equal(out, want), "%s", s(d, "output"));
	json_decref(out);
	json_decref(want);
	json_decref(d);
	json_t *ev = exec_history(EXEC("lam", "l1"));
	cr_assert_eq(events_count(ev, "LambdaFunctionStarted"), 1);
	cr_assert_eq(events_count(ev, "LambdaFunctionSucceeded"), 1);
	cr_assert_eq(events_count(ev, "TaskSucceeded"), 2);
	json_decref(ev);
	stop_worker(dbl);
	stop();
}

Test(workers, a_poll_for_several_tasks_gets_as_many_as_are_queued)
{
	start();
	create_machine("fan", ECHO_MAP_DEF);
	start_exec(SM("fan"), "m1", "{\"items\":[{\"n\":0},{\"n\":1},{\"n\":2}]}");
	wait_events(EXEC("fan", "m1"), "ActivityScheduled", 3);
	nng_socket sk = raw_open(srv.workers);
	assert_error(raw_json(sk, poll_frame_max("bad0", "echo", NULL, 0, 0)), "MalformedFrame");
	assert_error(raw_json(sk, poll_frame_max("bad65", "echo", NULL, 0, 65)), "MalformedFrame");
	/* asks for 5, three are queued: all three in one answer, at once */
	json_t *r = raw_json(sk, poll_frame_max("many", "echo", NULL, 20000, 5));
	json_t *tasks = json_object_get(r, "tasks");
	cr_assert_eq(json_array_size(tasks), 3, "%s", json_dumps(r, 0));
	/* a re-send of the same poll gets the same three tasks, no new leases */
	json_t *again = raw_json(sk, poll_frame_max("many", "echo", NULL, 0, 5));
	cr_assert(json_equal(again, r), "%s", json_dumps(again, 0));
	json_decref(again);
	json_t *none = raw_json(sk, poll_frame_max("more", "echo", NULL, 0, 5));
	cr_assert_eq(json_array_size(json_object_get(none, "tasks")), 0, "%s", json_dumps(none, 0));
	json_decref(none);
	json_t *ev = exec_history(EXEC("fan", "m1"));
	cr_assert_eq(events_count(ev, "ActivityStarted"), 3);
	size_t i;
	json_t *e, *t;
	json_array_foreach(ev, i, e) if (strcmp(s(e, "type"), "ActivityStarted") == 0)
	        cr_assert_str_eq(s(json_object_get(e, "activityStartedEventDetails"), "workerName"),
	                         "raw");
	json_decref(ev);
	int seen = 0;
	json_array_foreach(tasks, i, t)
	{
		json_t *in = json_object_get(t, "input");
		json_int_t n = json_integer_value(json_object_get(in, "n"));
		cr_assert(n >= 0 && n < 3 && !(seen & (1 << n)), "input %lld", (long long)n);
		seen |= 1 << n;
		json_t *okr = raw_json(sk,
		                       json_pack("{s:i,s:s,s:s,s:{s:I}}", "v", 1, "type", "success",
		                                 "token", s(t, "token"), "output", "n", n * 10));
		cr_assert_str_eq(s(okr, "type") ? s(okr, "type") : "(none)", "ok", "%s",
		                 json_dumps(okr, 0));
		json_decref(okr);
	}
	cr_assert_eq(seen, 7);
	json_decref(r);
	nng_close(sk);
	json_t *d = exec_wait_status(EXEC("fan", "m1"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	cr_assert_str_eq(s(d, "output"), "[{\"n\":0},{\"n\":10},{\"n\":20}]");
	json_decref(d);
	stop();
}

Test(workers, sluice_worker_with_tasks_per_poll_serves_a_map_once_each)
{
	start();
	create_machine("fan", ECHO_MAP_DEF);
	pid_t w[2];
	w[0] = spawn_worker_n(srv.workers, "echo", "cat", "b0", NULL, false, 8);
	w[1] = spawn_worker_n(srv.workers, "echo", "cat", "b1", NULL, false, 64);
	json_t *items = json_array();
	for (int i = 0; i < 200; i++)
		json_array_append_new(items, json_pack("{s:i}", "n", i));
	json_t *in = json_pack("{s:o}", "items", items);
	char *txt = json_dumps(in, JSON_COMPACT);
	json_decref(in);
	start_exec(SM("fan"), "b", txt);
	free(txt);
	json_t *d = exec_wait_status(EXEC("fan", "b"), NULL, DONE_WAIT_MS);
	cr_assert_str_eq(s(d, "status"), "SUCCEEDED", "%s", json_dumps(d, 0));
	json_t *out = json_loads(s(d, "output"), 0, NULL);
	cr_assert_eq(json_array_size(out), 200);
	for (size_t i = 0; i < 200; i++)
		cr_assert_eq(json_integer_value(json_object_get(json_array_get(out, i), "n")),
		             (json_int_t)i);
	json_decref(out);
	json_decref(d);
	json_t *ev = exec_history(EXEC("fan", "b"));
	cr_assert_eq(events_count(ev, "ActivityStarted"), 200);
	cr_assert_eq(events_count(ev, "ActivitySucceeded"), 200);
	cr_assert_eq(events_count(ev, "ActivityFailed") + events_count(ev, "ActivityTimedOut"), 0);
	json_decref(ev);
	for (int k = 0; k < 2; k++)
		stop_worker(w[k]);
	stop();
}
