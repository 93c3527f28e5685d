/*
 * harness.h - drive the real `sluice serve` from a test: start it on free ports in a
 * fresh data directory, talk HTTP over a plain socket, stop it with a signal.
 *
 * Every wait is bounded (a hang guard, never a timing assertion). The server's stderr
 * goes to DIR/server.log, whose tail h_last_error gives when start-up or stop fails. The
 * server gets SIGKILL when the test process ends (PR_SET_PDEATHSIG), and each Criterion test
 * of a binary linking this file is bounded (SLUICE_TEST_TIMEOUT seconds, default 150).
 */
#ifndef SLUICE_TESTS_HARNESS_H
#define SLUICE_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct h_server {
	pid_t pid;
	char dir[256]; /* the mkdtemp directory: data/ and server.log inside */
	char data[300];
	char log[300];
	char host[128];
	int http_port;
	char workers[128]; /* tcp://127.0.0.1:PORT */
};

/* Starts `$SLUICE_BIN serve --http 127.0.0.1:0 --workers tcp://127.0.0.1:0 --data DIR/data`
 * plus extra (NULL-terminated, may be NULL) and waits for the readiness line. */
bool h_start(struct h_server *s, const char *const *extra);
/* Why the last h_start or h_stop failed, with the tail of the server's log (static text).
 * Under `--tap` Criterion sends the tests' stderr to /dev/null: put this in the assertion's
 * message so that the TAP report says it. */
const char *h_last_error(void);
/* SIGTERM, then waits (bounded); returns the exit status, or -1 if it had to be killed. */
int h_stop(struct h_server *s);
/* Waits (bounded) for a server already told to stop, sending nothing: a second SIGTERM
 * could land after its handlers are gone and kill it. Same result as h_stop. */
int h_wait(struct h_server *s);
/* SIGKILL and reap. */
void h_kill(struct h_server *s);
/* Kills if still running, removes the directory. */
void h_cleanup(struct h_server *s);
/* The server's stderr so far (new string) for diagnostics. */
char *h_log(const struct h_server *s);

struct h_response {
	int status;
	char *head; /* status line and headers, NUL-terminated */
	char *body; /* NUL-terminated */
	size_t body_len;
};

/* A connected TCP socket to 127.0.0.1:port, or -1. */
int h_connect(int port);
/* Writes one request; headers is a NULL-terminated list of "Name: value" (may be NULL).
 * Content-Length is added when body is not NULL. */
bool h_send(int fd, const char *method, const char *path, const char *const *headers,
            const char *body, size_t len);
/* Reads one response (Content-Length framed). false on EOF, error or timeout. */
bool h_recv(int fd, struct h_response *r);
/* Connect, send (with Connection: close), receive, close. */
bool h_request(int port, const char *method, const char *path, const char *const *headers,
               const char *body, size_t len, struct h_response *r);
/* A header's value (case-insensitive name), copied into out; false if absent. */
bool h_header(const struct h_response *r, const char *name, char *out, size_t cap);
void h_response_free(struct h_response *r);

/* Runs a shell command, returns its exit status and (optionally) its output (new string). */
int h_run(const char *cmd, char **output);

#endif
