/*
 * sluice_worker.h - write a sluice worker in C.
 *
 * A worker is a long-lived process that dials the sluice server over NNG (tcp://, ipc://,
 * tls+tcp://), registers handlers by activity or Lambda function name, and runs tasks:
 *
 *     static void extract(void *arg, const struct sluice_task *t, struct sluice_result *r) {
 *             r->output = strdup("{\"rows\": 42}");      // JSON text, malloc'd
 *     }
 *     struct sluice_worker_options o = { .url = "tcp://127.0.0.1:8421", .concurrency = 4,
 *                                        .handle_signals = 1 };
 *     sluice_worker_t *w;
 *     sluice_worker_new(&o, &w);
 *     sluice_worker_register(w, "extract-transform", extract, NULL);
 *     sluice_worker_run(w);     // until SIGTERM/SIGINT or sluice_worker_stop()
 *     sluice_worker_free(w);
 *
 * Each of `concurrency` threads polls for up to `tasks_per_poll` tasks (default 1) and runs
 * them one after another. More than one per poll saves a round trip and a commit per task
 * on the server for short tasks; the tasks taken are leased at once, so a long task delays
 * the ones behind it (their TimeoutSeconds runs). While a task runs or waits its turn,
 * heartbeats are sent for it automatically (a third of the task's HeartbeatSeconds). If the server
 * says the task timed out or no longer exists, the task is marked cancelled (sluice_task_cancelled)
 * and its result is discarded. The connection is re-established with back-off when it drops. On
 * stop, polling ends, running handlers are allowed to finish and report, then sluice_worker_run
 * returns.
 *
 * Delivery is at-least-once: a task whose result never reached the server is retried by the
 * server after its lease (TimeoutSeconds / HeartbeatSeconds), as in Step Functions.
 *
 * Functions return 0 on success or a positive sluice error code; sluice_worker_strerror
 * explains one. Thread-safety: handlers run on the worker's threads, concurrently.
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sluice_worker sluice_worker_t;

struct sluice_worker_options {
	const char *url;         /* server's workers endpoint, e.g. tcp://127.0.0.1:8421 */
	const char *name;        /* worker name in history events; default host:pid */
	unsigned concurrency;    /* tasks run at once; default 1 */
	const char *token;       /* the server's --workers-token, if set */
	const char *tls_ca_file; /* tls+tcp://: CA to verify the server (PEM) */
	const char *tls_server_name;
	int tls_insecure;        /* tls+tcp:// without verifying the server (testing only) */
	uint32_t poll_wait_ms;   /* long-poll wait; default 20000 */
	int handle_signals;      /* sluice_worker_run stops on SIGTERM and SIGINT */
	size_t max_message;      /* bytes; default 1 MiB */
	unsigned tasks_per_poll; /* tasks one poll may take (run in turn); default 1, max 64 */
};

struct sluice_task {
	const char *token;    /* the task token (also for SendTaskSuccess by HTTP) */
	const char *activity; /* the activity or function name it was registered under */
	const char *input;    /* the task input, JSON text */
	size_t input_len;
	uint32_t timeout_s;   /* 0 = none */
	uint32_t heartbeat_s; /* 0 = none */
	void *internal_;      /* the worker's bookkeeping; do not touch */
};

/* What a handler fills in: output (success, JSON text) or error (+ cause) for a failure.
 * Strings are malloc'd by the handler and freed by the library. If neither is set the task
 * fails with error "Worker.NoResult". */
struct sluice_result {
	char *output;
	char *error;
	char *cause;
};

typedef void (*sluice_handler_fn)(void *arg, const struct sluice_task *task,
                                  struct sluice_result *result);

int sluice_worker_new(const struct sluice_worker_options *opt, sluice_worker_t **out);
/* Registers a handler; call before sluice_worker_run. name is copied. */
int sluice_worker_register(sluice_worker_t *w, const char *name, sluice_handler_fn fn, void *arg);
/* Runs until stopped. Returns 0 after a clean stop. */
int sluice_worker_run(sluice_worker_t *w);
/* Asks a running worker to stop (any thread; not from a signal handler: use handle_signals). */
void sluice_worker_stop(sluice_worker_t *w);
void sluice_worker_free(sluice_worker_t *w);

/* True once the server told the worker this task timed out or is gone: stop early. */
int sluice_task_cancelled(const struct sluice_task *task);

const char *sluice_worker_strerror(int code);

/* Counters, for logs and tests. */
struct sluice_worker_stats {
	uint64_t tasks_succeeded, tasks_failed, tasks_cancelled, results_refused;
	uint64_t polls, heartbeats, reconnects;
};
void sluice_worker_get_stats(sluice_worker_t *w, struct sluice_worker_stats *out);

#ifdef __cplusplus
}
#endif
#endif
