/*
 * bench_server.c - start and stop the real server for a benchmark (see bench_server.h).
 */
#include "bench/bench_server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SLUICE_BIN_DEFAULT
#define SLUICE_BIN_DEFAULT "sluice"
#endif

double
bench_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
bench_die(const char *prog, const char *what)
{
	fprintf(stderr, "%s: %s\n", prog, what);
	exit(2);
}

void
bench_server_start(struct bench_server *s, const char *prog, const char *const *extra)
{
	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "/tmp/sluice-bench-XXXXXX");
	if (!mkdtemp(s->dir))
		bench_die(prog, "mkdtemp failed");
	char data[200], logf[200];
	snprintf(data, sizeof data, "%s/data", s->dir);
	snprintf(logf, sizeof logf, "%s/server.log", s->dir);
	const char *bin = getenv("SLUICE_BIN") ? getenv("SLUICE_BIN") : SLUICE_BIN_DEFAULT;
	const char *argv[64] = { bin,           "serve",       "--data",    data,
		                 "--http",      "127.0.0.1:0", "--workers", "tcp://127.0.0.1:0",
		                 "--log-level", "warn" };
	size_t argc = 10;
	for (size_t i = 0; extra && extra[i] && argc < 63; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	int fds[2];
	if (pipe(fds) != 0)
		bench_die(prog, "pipe failed");
	s->pid = fork();
	if (s->pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	FILE *f = fdopen(fds[0], "r");
	char line[1024];
	while (f && fgets(line, sizeof line, f)) {
		const char *p = strstr(line, "ready http=");
		if (p
		    && sscanf(p, "ready http=127.0.0.1:%d workers=%255s", &s->port, s->workers)
		            >= 1)
			break;
		fputs(line, stderr);
	}
	if (!s->port) {
		fprintf(stderr, "%s: %s did not start\n", prog, bin);
		exit(2);
	}
	// the server logs warnings while it runs: a full pipe would block it
	if (fork() == 0) {
		FILE *out = fopen(logf, "w");
		while (fgets(line, sizeof line, f))
			if (out)
				fputs(line, out);
		_exit(0);
	}
	fclose(f);
}

void
bench_server_stop(struct bench_server *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", s->dir);
}
