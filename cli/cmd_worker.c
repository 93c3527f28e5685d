/*
 * cmd_worker.c - `sluice worker`: serve activities by running a shell command per task.
 *
 * The task input (JSON) goes to the command's stdin; its stdout (one JSON value) is the
 * result. A non-zero exit is a failure: error and cause come from a JSON object
 * {"error": ..., "cause": ...} on the last line of stderr, or are `Exit.<code>` and the tail
 * of stderr. The command runs in its own process group, which is killed when the task's
 * TimeoutSeconds passes or the server cancels the task, so no grandchild outlives it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/sl_clock.h"
#include "common/sl_log.h"
#include "workers/sluice_worker.h"

#define MAX_STDOUT    (256 * 1024 + 1) /* one over the payload limit, to detect overflow */
#define STDERR_TAIL   4096
#define KILL_GRACE_MS 2000

struct exec_conf {
	const char *command;
};

struct buf {
	char *data;
	size_t len, cap;
	size_t dropped; /* bytes dropped from the front (stderr keeps its tail) */
};

static int
buf_append(struct buf *b, const char *p, size_t n, size_t limit, int keep_tail)
{
	if (keep_tail && b->len + n > limit) {
		/* keep only the last `limit` bytes */
		if (n >= limit) {
			b->dropped += b->len + n - limit;
			p += n - limit;
			n = limit;
			b->len = 0;
		} else {
			size_t cut = b->len + n - limit;
			memmove(b->data, b->data + cut, b->len - cut);
			b->len -= cut;
			b->dropped += cut;
		}
	}
	if (!keep_tail && b->len + n > limit)
		n = limit > b->len ? limit - b->len : 0;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static void
set_env_u(const char *k, unsigned v)
{
	char s[32];
	snprintf(s, sizeof s, "%u", v);
	setenv(k, s, 1);
}

/* Child side: own process group, pipes on 0/1/2, environment, then the shell. */
static void
exec_child(const struct exec_conf *c, const struct sluice_task *t, int in, int out, int err)
{
	setpgid(0, 0);
	dup2(in, 0);
	dup2(out, 1);
	dup2(err, 2);
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	signal(SIGPIPE, SIG_DFL);
	setenv("SLUICE_TASK_TOKEN", t->token, 1);
	setenv("SLUICE_ACTIVITY", t->activity, 1);
	set_env_u("SLUICE_TASK_TIMEOUT", t->timeout_s);
	set_env_u("SLUICE_TASK_HEARTBEAT", t->heartbeat_s);
	execl("/bin/sh", "sh", "-c", c->command, (char *)NULL);
	_exit(127);
}

/* Fills error/cause from a non-zero exit. */
static void
explain_failure(int status, struct buf *err, struct sluice_result *r)
{
	if (err->len) {
		/* last non-empty line of stderr */
		size_t end = err->len;
		while (end > 0 && (err->data[end - 1] == '\n' || err->data[end - 1] == '\r'))
			end--;
		size_t start = end;
		while (start > 0 && err->data[start - 1] != '\n')
			start--;
		json_t *j = json_loadb(err->data + start, end - start, 0, NULL);
		if (json_is_object(j) && json_is_string(json_object_get(j, "error"))) {
			r->error = strdup(json_string_value(json_object_get(j, "error")));
			json_t *cause = json_object_get(j, "cause");
			if (json_is_string(cause))
				r->cause = strdup(json_string_value(cause));
			else if (cause)
				r->cause = json_dumps(cause, JSON_COMPACT | JSON_ENCODE_ANY);
			json_decref(j);
			return;
		}
		json_decref(j);
	}
	char name[64];
	if (WIFSIGNALED(status))
		snprintf(name, sizeof name, "Signal.%s",
		         sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status))
		                                        : "UNKNOWN");
	else
		snprintf(name, sizeof name, "Exit.%d", WEXITSTATUS(status));
	r->error = strdup(name);
	r->cause = strdup(err->len ? err->data : "");
}

static void
run_command(void *arg, const struct sluice_task *t, struct sluice_result *r)
{
	const struct exec_conf *c = arg;
	int pin[2], pout[2], perr[2];
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
		r->error = strdup("Worker.SpawnFailed");
		r->cause = strdup(strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0)
		exec_child(c, t, pin[0], pout[1], perr[1]);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	if (pid < 0) {
		close(pin[1]);
		close(pout[0]);
		close(perr[0]);
		r->error = strdup("Worker.SpawnFailed");
		r->cause = strdup(strerror(errno));
		return;
	}
	setpgid(pid, pid); /* both sides, so the group exists before we may kill it */
	fcntl(pin[1], F_SETFL, O_NONBLOCK);

	struct buf out = { 0 }, err = { 0 };
	size_t written = 0;
	int in_fd = pin[1], out_fd = pout[0], err_fd = perr[0];
	uint64_t start = sl_clock_mono_ns();
	int64_t timeout_ms = t->timeout_s ? (int64_t)t->timeout_s * 1000 : -1;
	int killed = 0; /* 1 = SIGTERM sent, 2 = SIGKILL sent */
	uint64_t term_at = 0;
	const char *why = NULL;
	while (out_fd >= 0 || err_fd >= 0) {
		struct pollfd p[3];
		int n = 0;
		int i_out = -1, i_err = -1, i_in = -1;
		if (out_fd >= 0)
			p[i_out = n++] = (struct pollfd) { out_fd, POLLIN, 0 };
		if (err_fd >= 0)
			p[i_err = n++] = (struct pollfd) { err_fd, POLLIN, 0 };
		if (in_fd >= 0)
			p[i_in = n++] = (struct pollfd) { in_fd, POLLOUT, 0 };
		poll(p, (nfds_t)n, 100);
		char chunk[16384];
		if (i_out >= 0 && p[i_out].revents) {
			ssize_t k = read(out_fd, chunk, sizeof chunk);
			if (k <= 0) {
				close(out_fd);
				out_fd = -1;
			} else {
				buf_append(&out, chunk, (size_t)k, MAX_STDOUT, 0);
			}
		}
		if (i_err >= 0 && p[i_err].revents) {
			ssize_t k = read(err_fd, chunk, sizeof chunk);
			if (k <= 0) {
				close(err_fd);
				err_fd = -1;
			} else {
				buf_append(&err, chunk, (size_t)k, STDERR_TAIL, 1);
			}
		}
		if (i_in >= 0 && p[i_in].revents) {
			ssize_t k = p[i_in].revents & POLLOUT
			        ? write(in_fd, t->input + written, t->input_len - written)
			        : -1;
			if (k > 0)
				written += (size_t)k;
			if (k < 0 || written == t->input_len) {
				close(in_fd);
				in_fd = -1;
			}
		}
		int64_t elapsed = (int64_t)((sl_clock_mono_ns() - start) / 1000000);
		if (!killed
		    && ((timeout_ms >= 0 && elapsed >= timeout_ms) || sluice_task_cancelled(t))) {
			why = sluice_task_cancelled(t) ? "cancelled by the server" : "timed out";
			kill(-pid, SIGTERM);
			killed = 1;
			term_at = sl_clock_mono_ns();
		} else if (killed == 1
		           && sl_clock_mono_ns() - term_at > KILL_GRACE_MS * 1000000ull) {
			kill(-pid, SIGKILL);
			killed = 2;
		}
	}
	if (in_fd >= 0)
		close(in_fd);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	kill(-pid, SIGKILL); /* whatever the command left behind in its group */

	if (why) {
		r->error = strdup("Worker.Timeout");
		r->cause = strdup(why);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (out.len >= MAX_STDOUT) {
			r->error = strdup("States.DataLimitExceeded");
			r->cause = strdup("the command printed more than 256 KiB on stdout");
		} else {
			json_error_t jerr;
			json_t *v = out.len ? json_loadb(out.data, out.len, JSON_DECODE_ANY, &jerr)
			                    : json_null();
			if (!v) {
				r->error = strdup("Worker.InvalidOutput");
				char msg[300];
				snprintf(msg, sizeof msg,
				         "stdout is not one JSON value: %s (line %d, column %d)",
				         jerr.text, jerr.line, jerr.column);
				r->cause = strdup(msg);
			} else {
				r->output = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
				json_decref(v);
			}
		}
	} else {
		explain_failure(status, &err, r);
	}
	free(out.data);
	free(err.data);
}

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: sluice worker --connect URL --activity NAME [--activity NAME ...]\n"
	        "                     --exec 'COMMAND' [--concurrency N] [--name NAME]\n"
	        "                     [--tasks-per-poll N] [--token SECRET] [--tls-ca FILE]\n"
	        "                     [--tls-insecure]\n"
	        "\n"
	        "Serves activities (or Lambda function names) by running COMMAND through /bin/sh\n"
	        "for each task: the task input JSON on stdin, one JSON value on stdout as the\n"
	        "result. A non-zero exit fails the task; its error and cause come from a JSON\n"
	        "object {\"error\": ..., \"cause\": ...} on the last line of stderr, or are\n"
	        "Exit.<code> and the tail of stderr. The command's process group is killed when\n"
	        "the task times out. Environment: SLUICE_TASK_TOKEN, SLUICE_ACTIVITY,\n"
	        "SLUICE_TASK_TIMEOUT, SLUICE_TASK_HEARTBEAT.\n"
	        "\n"
	        "  --connect URL     the server's workers endpoint (default tcp://127.0.0.1:8421,\n"
	        "                    or SLUICE_WORKERS)\n"
	        "  --concurrency N   tasks at once (default 1)\n"
	        "  --tasks-per-poll N  tasks one poll may take, run in turn (1..64, default 1);\n"
	        "                    saves a round trip per task for short tasks\n"
	        "  --token SECRET    the server's --workers-token (or SLUICE_WORKERS_TOKEN)\n"
	        "Stops on SIGTERM or SIGINT after running tasks finish.\n");
}

int
cmd_worker(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "connect", required_argument, 0, 'c' },
		{ "activity", required_argument, 0, 'a' },
		{ "exec", required_argument, 0, 'e' },
		{ "concurrency", required_argument, 0, 'n' },
		{ "name", required_argument, 0, 'N' },
		{ "tasks-per-poll", required_argument, 0, 'P' },
		{ "token", required_argument, 0, 't' },
		{ "tls-ca", required_argument, 0, 'C' },
		{ "tls-insecure", no_argument, 0, 'I' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *activities[64];
	size_t n_act = 0;
	struct sluice_worker_options o = { .handle_signals = 1 };
	o.url = getenv("SLUICE_WORKERS") ? getenv("SLUICE_WORKERS") : "tcp://127.0.0.1:8421";
	o.token = getenv("SLUICE_WORKERS_TOKEN");
	struct exec_conf conf = { 0 };
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': o.url = optarg; break;
		case 'a':
			if (n_act == sizeof activities / sizeof activities[0]) {
				fprintf(stderr, "sluice worker: at most 64 --activity\n");
				return CLI_USAGE;
			}
			activities[n_act++] = optarg;
			break;
		case 'e': conf.command = optarg; break;
		case 'n': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 1024) {
				fprintf(stderr,
				        "sluice worker: --concurrency: expected 1..1024, got "
				        "'%s'\n",
				        optarg);
				return CLI_USAGE;
			}
			o.concurrency = (unsigned)v;
			break;
		}
		case 'N': o.name = optarg; break;
		case 'P': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (!*optarg || *end || v < 1 || v > 64) {
				fprintf(stderr,
				        "sluice worker: --tasks-per-poll: expected 1..64, got "
				        "'%s'\n",
				        optarg);
				return CLI_USAGE;
			}
			o.tasks_per_poll = (unsigned)v;
			break;
		}
		case 't': o.token = optarg; break;
		case 'C': o.tls_ca_file = optarg; break;
		case 'I': o.tls_insecure = 1; break;
		case 'h': usage(stdout); return CLI_OK;
		default: usage(stderr); return CLI_USAGE;
		}
	}
	if (optind < argc || n_act == 0 || !conf.command) {
		fprintf(stderr, "sluice worker: %s\n\n",
		        optind < argc ? "unexpected argument"
		                      : (n_act == 0 ? "at least one --activity is required"
		                                    : "--exec COMMAND is required"));
		usage(stderr);
		return CLI_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	sluice_worker_t *w;
	int rc = sluice_worker_new(&o, &w);
	if (rc) {
		fprintf(stderr, "sluice worker: cannot use '%s': %s\n", o.url,
		        sluice_worker_strerror(rc));
		return CLI_USAGE;
	}
	for (size_t i = 0; i < n_act; i++) {
		if ((rc = sluice_worker_register(w, activities[i], run_command, &conf))) {
			fprintf(stderr, "sluice worker: --activity '%s': %s\n", activities[i],
			        rc == SL_ERR_EXISTS ? "given twice" : sluice_worker_strerror(rc));
			sluice_worker_free(w);
			return CLI_USAGE;
		}
	}
	rc = sluice_worker_run(w);
	sluice_worker_free(w);
	return rc ? CLI_RUNTIME : CLI_OK;
}
