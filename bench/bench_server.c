/*
 * bench_server.c - start and stop the real server for a benchmark (see bench_server.h).
 */
#include "bench/bench_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

void
bench_conn_open(struct bench_conn *c, const char *prog, int port)
{
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
		bench_die(prog, "cannot connect to the server");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->len = 0;
}

static void
write_all(int fd, const char *prog, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			bench_die(prog, "write to the server failed");
		p += w;
		n -= (size_t)w;
	}
}

const char *
bench_call(struct bench_conn *c, const char *prog, const char *target, const char *json,
           const char *want)
{
	bool sfn = strncmp(target, "AWSStepFunctions.", 17) == 0;
	char head[256];
	int hl = snprintf(
	        head, sizeof head,
	        "POST / HTTP/1.1\r\nHost: bench\r\nX-Amz-Target: %s\r\n"
	        "Content-Type: application/x-amz-json-1.%d\r\nContent-Length: %zu\r\n\r\n",
	        target, sfn ? 0 : 1, strlen(json));
	write_all(c->fd, prog, head, (size_t)hl);
	write_all(c->fd, prog, json, strlen(json));
	size_t hend = 0, clen = 0;
	for (;;) {
		char *e = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
		if (e && !hend) {
			hend = (size_t)(e - c->buf) + 4;
			const char *cl = strcasestr(c->buf, "content-length:");
			clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
		}
		if (hend && c->len >= hend + clen)
			break;
		if (c->len + 1 >= sizeof c->buf)
			bench_die(prog, "answer too large");
		ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			bench_die(prog, "the server closed the connection");
		c->len += (size_t)r;
		c->buf[c->len] = '\0';
	}
	c->buf[hend + clen] = '\0';
	if (atoi(c->buf + 9) != 200 || (want && !strstr(c->buf + hend, want))) {
		fprintf(stderr, "%s: %s answered: %s\n", prog, target, c->buf);
		exit(2);
	}
	// one request at a time: more bytes would be an answer to nothing
	if (c->len != hend + clen)
		bench_die(prog, "unexpected pipelined bytes");
	c->len = 0;
	return c->buf + hend;
}
