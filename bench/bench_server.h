/*
 * bench_server.h - what the benchmarks that drive a real `sluice serve` share: start it on
 * free loopback ports in a temporary data directory, stop it, and a clock.
 */
#ifndef SLUICE_BENCH_SERVER_H
#define SLUICE_BENCH_SERVER_H

#include <stddef.h>
#include <sys/types.h>

struct bench_server {
	pid_t pid;
	int port;          /* HTTP */
	char workers[256]; /* the workers socket's URL */
	char dir[128];     /* the temporary directory: data/ and server.log inside */
};

/* Starts $SLUICE_BIN (else the build tree's binary) as `serve` with --log-level warn and
 * extra (NULL-terminated, may be NULL), waits for its readiness line, then drains its stderr
 * into DIR/server.log so it never blocks. prog names the benchmark in messages. Exits the
 * process with status 2 if the server does not start. */
void bench_server_start(struct bench_server *s, const char *prog, const char *const *extra);
/* SIGTERM, wait, remove the directory. */
void bench_server_stop(struct bench_server *s);

/* Monotonic seconds. */
double bench_now_s(void);
/* Prints "prog: what" and exits with status 2. */
void bench_die(const char *prog, const char *what);

/* A keep-alive HTTP connection to the server on loopback. */
struct bench_conn {
	int fd;
	char buf[1 << 16];
	size_t len;
};
/* Connects (TCP_NODELAY) to 127.0.0.1:port; dies on failure. */
void bench_conn_open(struct bench_conn *c, const char *prog, int port);
/* One AWS JSON POST to target (AWSStepFunctions.* as JSON 1.0, the rest 1.1); dies unless
 * the answer is 200 and its body contains want (may be NULL). Returns the body, in c->buf,
 * valid until the next call. */
const char *bench_call(struct bench_conn *c, const char *prog, const char *target, const char *json,
                       const char *want);

#endif
