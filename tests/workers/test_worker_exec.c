/*
 * `sluice worker --exec` as a real process against the scripted REP server: results,
 * failures from stderr, exit codes, timeouts that kill the whole process group, bad output,
 * and a clean stop on SIGTERM.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/sl_alloc.h"
#include "tests/workers/fake_server.h"

static pid_t
start_worker(const char *url, const char *command, const char *concurrency)
{
	const char *bin = getenv("SLUICE_BIN");
	cr_assert_not_null(bin, "SLUICE_BIN must name the sluice binary (set by meson)");
	pid_t pid = fork();
	if (pid == 0) {
		execl(bin, bin, "worker", "--connect", url, "--activity", "job", "--exec", command,
		      "--concurrency", concurrency, "--name", "exec-test", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int
stop_worker(pid_t pid)
{
	kill(pid, SIGTERM);
	int status = -1;
	for (int i = 0; i < 500; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	cr_assert_fail("worker did not stop within 10 s of SIGTERM");
	return status;
}

static void
expect_result(struct fake *f, const char *token, const char *want)
{
	const char *r = fake_result_for(f, token);
	cr_assert_not_null(r, "no result for %s", token);
	cr_assert_str_eq(r, want);
}

Test(worker_exec, stdout_is_the_result_and_stdin_the_input)
{
	sl_alloc_init();
	struct fake f;
	fake_start(&f);
	json_t *in = json_pack("{s:s,s:i}", "file", "part-001.jsonl", "n", 3);
	f.queue[0] = (struct wk_task) { "t-cat", "job", in, 30, 0 };
	f.n_queue = 1;
	pid_t pid = start_worker(f.url, "cat", "1");
	cr_assert(fake_wait_results(&f, 1));
	int st = stop_worker(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	expect_result(&f, "t-cat", "success:t-cat:{\"file\":\"part-001.jsonl\",\"n\":3}");
	fake_stop(&f);
	json_decref(in);
}

Test(worker_exec, failures_timeouts_and_bad_output)
{
	sl_alloc_init();
	struct fake f;
	fake_start(&f);
	char pidfile[] = "/tmp/sluice-exec-XXXXXX";
	int fd = mkstemp(pidfile);
	cr_assert_geq(fd, 0);
	close(fd);
	struct {
		const char *token, *mode;
		unsigned timeout;
	} cases[] = {
		{ "t-json-err", "jsonerr", 30 }, { "t-exit", "exit5", 30 },
		{ "t-env", "env", 30 },          { "t-bad", "badjson", 30 },
		{ "t-slow", "slow", 1 },         { "t-empty", "empty", 30 },
	};
	json_t *inputs[6];
	for (int i = 0; i < 6; i++) {
		inputs[i] = json_pack("{s:s}", "mode", cases[i].mode);
		f.queue[i] = (struct wk_task) { cases[i].token, "job", inputs[i], cases[i].timeout,
			                        0 };
	}
	f.n_queue = 6;
	char script[1024];
	snprintf(script, sizeof script,
	         "in=$(cat); case \"$in\" in "
	         "*jsonerr*) echo noise >&2; echo '{\"error\":\"Etl.BadRow\",\"cause\":\"row 7\"}' "
	         ">&2; exit 3;; "
	         "*exit5*) echo 'disk full' >&2; exit 5;; "
	         "*env*) printf '\"%%s/%%s\"' \"$SLUICE_ACTIVITY\" \"$SLUICE_TASK_TIMEOUT\";; "
	         "*badjson*) echo 'not json';; "
	         "*slow*) (sleep 30 & echo $! > %s; wait) ; sleep 30;; "
	         "*empty*) ;; esac",
	         pidfile);
	pid_t pid = start_worker(f.url, script, "3");
	cr_assert(fake_wait_results(&f, 6), "got %zu of 6 results", fake_results(&f));
	int st = stop_worker(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	expect_result(&f, "t-json-err", "failure:t-json-err:Etl.BadRow:row 7");
	expect_result(&f, "t-exit", "failure:t-exit:Exit.5:disk full\n");
	expect_result(&f, "t-env", "success:t-env:\"job/30\"");
	const char *bad = fake_result_for(&f, "t-bad");
	cr_assert_not_null(bad);
	cr_assert(strncmp(bad, "failure:t-bad:Worker.InvalidOutput:", 35) == 0, "%s", bad);
	expect_result(&f, "t-slow", "failure:t-slow:Worker.Timeout:timed out");
	expect_result(&f, "t-empty", "success:t-empty:null");

	/* the grandchild started by the timed-out command must be gone too */
	FILE *pf = fopen(pidfile, "r");
	cr_assert_not_null(pf);
	int gpid = 0;
	cr_assert_eq(fscanf(pf, "%d", &gpid), 1);
	fclose(pf);
	unlink(pidfile);
	int alive = 1;
	for (int i = 0; i < 100 && alive; i++) {
		alive = kill(gpid, 0) == 0;
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
	}
	cr_assert_not(alive, "process %d of the timed-out command's group survived", gpid);
	fake_stop(&f);
	for (int i = 0; i < 6; i++)
		json_decref(inputs[i]);
}

Test(worker_exec, usage_errors_exit_2)
{
	const char *bin = getenv("SLUICE_BIN");
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s worker --activity a >/dev/null 2>&1", bin);
	int st = system(cmd);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "missing --exec");
	snprintf(cmd, sizeof cmd, "%s worker --exec true >/dev/null 2>&1", bin);
	st = system(cmd);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "missing --activity");
	snprintf(cmd, sizeof cmd,
	         "%s worker --activity a --exec true --concurrency 0 >/dev/null 2>&1", bin);
	st = system(cmd);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "bad concurrency");
	snprintf(cmd, sizeof cmd, "%s worker --help >/dev/null", bin);
	st = system(cmd);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
