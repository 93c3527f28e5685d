/*
 * harness.c - start/stop the real server and a small HTTP/1.1 client (see harness.h).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <criterion/internal/ordered-set.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Longer than any answer a test waits for (GetActivityTask holds 60 s at most). */
#define H_REQUEST_WAIT_S 120

/* hang guards, generous for a loaded 2-core machine running the ASan build */
#define START_WAIT_MS 60000
#define STOP_WAIT_MS  60000
#define IO_WAIT_MS    20000
/* per test, when SLUICE_TEST_TIMEOUT is not set (run-tests sets it for the ASan build) */
#define TEST_TIMEOUT_S 150

static char last_error[4096];

const char *
h_last_error(void)
{
	return last_error[0] ? last_error : "(no harness error recorded)";
}

/* Criterion prints its TAP report only when every test has ended, and under --tap the tests'
 * stderr goes to /dev/null: a test that hangs until meson's timeout leaves no output at all.
 * A per-test bound makes it "not ok - suite::name timed out" while the others still report.
 * Runs in the Criterion runner before any test; an explicit .timeout is kept. */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	const char *env = getenv("SLUICE_TEST_TIMEOUT");
	double limit = env && atof(env) > 0 ? atof(env) : TEST_TIMEOUT_S;
	FOREACH_SET(struct criterion_suite_set * suite, set->suites)
	{
		for (struct criterion_ordered_set_node *t = suite->tests->first; t; t = t->next) {
			struct criterion_test *test = (struct criterion_test *)(t + 1);
			if (test->data && test->data->timeout == 0)
				test->data->timeout = limit;
		}
	}
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

char *
h_log(const struct h_server *s)
{
	FILE *f = fopen(s->log, "rb");
	if (!f)
		return strdup("");
	char *buf = malloc(1 << 20);
	size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (!buf)
		return NULL;
	buf[n] = '\0';
	return buf;
}

/* Parses "sluice: ready http=H:P workers=URL data=D" from the log. */
static bool
parse_ready(struct h_server *s)
{
	char *log = h_log(s);
	if (!log)
		return false;
	char *line = strstr(log, "sluice: ready http=");
	bool ok = false;
	if (line && strchr(line, '\n')) {
		char http[128], workers[128];
		if (sscanf(line, "sluice: ready http=%127s workers=%127s", http, workers) == 2) {
			char *colon = strrchr(http, ':');
			if (colon) {
				*colon = '\0';
				snprintf(s->host, sizeof s->host, "%s", http);
				s->http_port = atoi(colon + 1);
				snprintf(s->workers, sizeof s->workers, "%s", workers);
				ok = s->http_port > 0;
			}
		}
	}
	free(log);
	return ok;
}

#define STR_(x) #x
#define STR(x)  STR_(x)

/* Records why (plus the tail of the server's log) for h_last_error, and prints it to stderr
 * for runs without --tap. */
static void
set_error(const struct h_server *s, const char *why)
{
	char *log = s && s->log[0] ? h_log(s) : NULL;
	size_t n = log ? strlen(log) : 0;
	const char *tail = log ? log + (n > 3000 ? n - 3000 : 0) : "";
	snprintf(last_error, sizeof last_error, "harness: %s%s%s", why,
	         tail[0] ? "; the server's log ends:\n" : "", tail);
	fprintf(stderr, "%s\n", last_error);
	free(log);
}

bool
h_start(struct h_server *s, const char *const *extra)
{
	memset(s, 0, sizeof *s);
	last_error[0] = '\0';
	const char *bin = getenv("SLUICE_BIN");
	if (!bin || access(bin, X_OK) != 0) {
		set_error(NULL, "SLUICE_BIN is not set to an executable");
		return false;
	}
	snprintf(s->dir, sizeof s->dir, "/tmp/sluice-it-XXXXXX");
	if (!mkdtemp(s->dir)) {
		set_error(NULL, "mkdtemp /tmp/sluice-it-XXXXXX failed");
		return false;
	}
	snprintf(s->data, sizeof s->data, "%s/data", s->dir);
	snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);

	const char *argv[64]
	        = { bin,      "serve", "--http", "127.0.0.1:0", "--workers", "tcp://127.0.0.1:0",
		    "--data", s->data };
	size_t argc = 8;
	for (size_t i = 0; extra && extra[i] && argc < 62; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		set_error(NULL, "fork failed");
		return false;
	}
	if (pid == 0) {
		/* a test that fails or times out half-way leaves no server behind */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
		int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	s->pid = pid;
	for (int waited = 0; waited < START_WAIT_MS; waited += 10) {
		if (parse_ready(s))
			return true;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			s->pid = 0;
			set_error(s, "server exited before its readiness line");
			return false;
		}
		sleep_ms(10);
	}
	set_error(s, "no readiness line within " STR(START_WAIT_MS) " ms");
	h_kill(s);
	return false;
}

int
h_stop(struct h_server *s)
{
	if (s->pid > 0)
		kill(s->pid, SIGTERM);
	return h_wait(s);
}

int
h_wait(struct h_server *s)
{
	last_error[0] = '\0';
	if (s->pid <= 0)
		return -1;
	for (int waited = 0; waited < STOP_WAIT_MS; waited += 10) {
		int st;
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			if (WIFEXITED(st))
				return WEXITSTATUS(st);
			return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		}
		sleep_ms(10);
	}
	set_error(s, "the server did not exit within " STR(STOP_WAIT_MS) " ms");
	h_kill(s);
	return -1;
}

void
h_kill(struct h_server *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void
h_cleanup(struct h_server *s)
{
	h_kill(s);
	if (s->dir[0])
		nftw(s->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	s->dir[0] = '\0';
}

/* --- HTTP client ----------------------------------------------------------------------- */

int
h_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

bool
h_send(int fd, const char *method, const char *path, const char *const *headers, const char *body,
       size_t len)
{
	char head[8192];
	int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, path);
	for (size_t i = 0; headers && headers[i]; i++)
		n += snprintf(head + n, sizeof head - (size_t)n, "%s\r\n", headers[i]);
	if (body)
		n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", len);
	n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
	if (n >= (int)sizeof head)
		return false;
	/* a server that answers early (413) may close before the whole body is sent */
	if (!write_all(fd, head, (size_t)n))
		return false;
	if (body)
		(void)write_all(fd, body, len);
	return true;
}

static ssize_t
read_some(int fd, char *p, size_t n)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	int rc = poll(&pf, 1, IO_WAIT_MS);
	if (rc <= 0)
		return -1;
	ssize_t r;
	do
		r = recv(fd, p, n, 0);
	while (r < 0 && errno == EINTR);
	return r;
}

bool
h_recv(int fd, struct h_response *r)
{
	memset(r, 0, sizeof *r);
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap + 1);
	char *end = NULL;
	while (!end) {
		if (len == cap)
			goto fail;
		ssize_t n = read_some(fd, buf + len, cap - len);
		if (n <= 0)
			goto fail;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	size_t hlen = (size_t)(end - buf) + 4;
	if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1)
		goto fail;
	r->head = strndup(buf, hlen);
	char cl[32];
	size_t blen = h_header(r, "Content-Length", cl, sizeof cl) ? strtoul(cl, NULL, 10) : 0;
	r->body = malloc(blen + 1);
	size_t have = len - hlen < blen ? len - hlen : blen;
	memcpy(r->body, buf + hlen, have);
	while (have < blen) {
		ssize_t n = read_some(fd, r->body + have, blen - have);
		if (n <= 0)
			goto fail;
		have += (size_t)n;
	}
	r->body[blen] = '\0';
	r->body_len = blen;
	free(buf);
	return true;
fail:
	free(buf);
	h_response_free(r);
	return false;
}

bool
h_request(int port, const char *method, const char *path, const char *const *headers,
          const char *body, size_t len, struct h_response *r)
{
	int fd = h_connect(port);
	if (fd < 0)
		return false;
	const char *hs[32];
	size_t n = 0;
	for (size_t i = 0; headers && headers[i] && n < 30; i++)
		hs[n++] = headers[i];
	hs[n++] = "Connection: close";
	hs[n] = NULL;
	// A hang guard, not a timing claim: a server that stops answering fails this request
	// (with a line naming it) instead of hanging the test until its outer bound.
	struct timeval tv = { .tv_sec = H_REQUEST_WAIT_S };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	bool ok = h_send(fd, method, path, hs, body, len) && h_recv(fd, r);
	if (!ok && (errno == EAGAIN || errno == EWOULDBLOCK))
		fprintf(stderr, "# harness: no answer to %s %s within %d s\n", method, path,
		        H_REQUEST_WAIT_S);
	close(fd);
	return ok;
}

bool
h_header(const struct h_response *r, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *p = r->head ? strstr(r->head, "\r\n") : NULL; p; p = strstr(p, "\r\n")) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ')
				v++;
			size_t vl = strcspn(v, "\r\n");
			if (vl >= cap)
				vl = cap - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return true;
		}
	}
	return false;
}

void
h_response_free(struct h_response *r)
{
	free(r->head);
	free(r->body);
	r->head = r->body = NULL;
}

int
h_run(const char *cmd, char **output)
{
	char full[4096];
	snprintf(full, sizeof full, "%s 2>&1", cmd);
	FILE *p = popen(full, "r");
	if (!p)
		return -1;
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap + 1);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, p)) > 0) {
		len += n;
		if (len == cap)
			break;
	}
	/* read the rest to EOF (kept: the first 64 KiB): pclose waits for the command, which
	 * would block forever writing to a full pipe */
	char sink[4096];
	while (fread(sink, 1, sizeof sink, p) > 0)
		;
	if (buf)
		buf[len] = '\0';
	int st = pclose(p);
	if (output)
		*output = buf;
	else
		free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
