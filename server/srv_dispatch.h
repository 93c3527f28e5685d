/*
 * srv_dispatch.h - task dispatch: the stepper's tasks handed to workers (NNG polls from
 * srv_workers.c, GetActivityTask long polls over HTTP).
 *
 * Model
 *   - In-memory FIFO queues per resource name (activity name, Lambda function name, or the
 *     resource as written for other resources), filled from the stepper's task effect only
 *     after the batch that wrote the task commits, and at start from step_tasks_replay.
 *     The queues are a cache of the store: bounded (SRV_DISPATCH_QUEUE_CAP tokens); over
 *     the cap a task is not queued (logged) and is found again by a rescan of the store
 *     once the queues have room. Tasks stay durable in the store regardless.
 *   - Waiting polls are served in arrival order. A poll is answered as soon as a task for
 *     one of its names is ready, or with no task when its wait ends.
 *   - Hand-out is a lease: step_task_started writes the lease and ActivityStarted (with the
 *     worker's name) in the store batch, and the poll's answer leaves from the commit
 *     callback. A task whose token is no longer awaited (answered over HTTP, stopped,
 *     timed out, rolled back) is dropped at hand-out.
 *   - The dispatcher remembers which tokens it leased, so a result for a token whose task
 *     ended without that answer is told TaskTimedOut rather than TaskDoesNotExist.
 *
 * Threads: loop thread only.
 */
#ifndef SLUICE_SERVER_SRV_DISPATCH_H
#define SLUICE_SERVER_SRV_DISPATCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sl_err.h"
#include "server/srv.h"
#include "stepper/stepper.h"

#define SRV_DISPATCH_QUEUE_CAP    200000 /* tokens queued in memory, all names together */
#define SRV_DISPATCH_MAX_POLLS    4096   /* polls waiting at once (NNG and HTTP) */
#define SRV_DISPATCH_HTTP_WAIT_MS 55000  /* GetActivityTask answers empty before AWS's 60 s */

typedef struct srv_dispatch srv_dispatch_t;
typedef struct srv_dispatch_poll srv_dispatch_poll_t;

/* One task handed out; borrowed for the answer callback. */
struct srv_dispatch_task {
	const char *token;
	const char *name; /* the queue it came from (one of the poll's names) */
	json_t *input;
	int64_t timeout_seconds;
	int64_t heartbeat_seconds; /* 0 = none */
};

/* The answer of a poll, called exactly once unless the poll is cancelled first: n == 0
 * when its wait ended (or the server is stopping); status != SL_OK when the lease could
 * not be committed (then n == 0 too). */
typedef void (*srv_dispatch_answer_fn)(void *arg, sl_err status,
                                       const struct srv_dispatch_task *tasks, size_t n);

struct srv_dispatch_poll_req {
	const char *const *names; /* copied */
	size_t n_names;
	unsigned max_tasks;  /* >= 1 */
	uint32_t wait_ms;    /* 0 = answer at once */
	const char *worker;  /* name recorded in ActivityStarted; may be NULL */
	srv_req_t *http_req; /* for GetActivityTask: the lease is written in its batch */
	srv_dispatch_answer_fn fn;
	void *arg;
};

/* Creates the dispatcher of s for eng (srv_engine.c does, before replaying tasks). */
sl_err srv_dispatch_new(srv_t *s, step_engine_t *eng, const struct step_effects *fx,
                        srv_dispatch_t **out, struct sl_error *err);
/* Answers waiting polls empty and frees. NULL is fine. */
void srv_dispatch_free(srv_dispatch_t *d);
/* The dispatcher of s, or NULL (a server without an engine). */
srv_dispatch_t *srv_dispatch_of(srv_t *s);

/* The stepper's task effect: queues t once the open batch commits. */
void srv_dispatch_task_effect(srv_dispatch_t *d, const struct step_task *t);
/* Start-up: queues t now (it comes from committed records). */
void srv_dispatch_task_replayed(srv_dispatch_t *d, const struct step_task *t);

/* Registers a poll; it may be answered before this returns (a task was ready, or wait_ms
 * is 0). *out (may be NULL) is the handle for srv_dispatch_cancel, NULL once answered.
 * SL_ERR_LIMIT when SRV_DISPATCH_MAX_POLLS polls wait already, SL_ERR_SHUTTING_DOWN. */
sl_err srv_dispatch_poll(srv_dispatch_t *d, const struct srv_dispatch_poll_req *req,
                         srv_dispatch_poll_t **out);
/* Withdraws a waiting poll without answering it. */
void srv_dispatch_cancel(srv_dispatch_t *d, srv_dispatch_poll_t *p);
/* Answers every waiting poll empty and refuses new ones (SIGTERM). */
void srv_dispatch_stop(srv_dispatch_t *d);

/* A task's token was answered or ended through another path (HTTP SendTaskSuccess,
 * SendTaskFailure): forget its queue entry and lease. Safe for unknown tokens and when s
 * has no dispatcher. */
void srv_dispatch_forget(srv_t *s, const char *token);
/* Called after a worker's answer for token committed: the lease is done. */
void srv_dispatch_done(srv_dispatch_t *d, const char *token);
/* The error for a result whose token the stepper does not await (SL_ERR_TASK_NOT_FOUND
 * from step_task_*): SL_ERR_TASK_TIMED_OUT when this server leased the token and its task
 * ended without the leaseholder's answer (timeout, execution stopped), else
 * SL_ERR_TASK_NOT_FOUND. */
sl_err srv_dispatch_gone_code(srv_t *s, const char *token);

/* Counters for logs, /metrics and tests. */
struct srv_dispatch_stats {
	size_t queued, leased, polls_waiting;
	uint64_t handed_out, dropped_stale, overflowed, rescans;
	uint64_t timed_out; /* leases whose task ended without the worker's answer */
};
void srv_dispatch_get_stats(const srv_dispatch_t *d, struct srv_dispatch_stats *out);
/* The counters above and, per queue name (activity), tasks queued, leased, handed out and
 * timed out, as Prometheus text for GET /metrics. Nothing when s has no dispatcher. */
struct evbuffer;
sl_err srv_dispatch_metrics(srv_t *s, struct evbuffer *out);

/* GetActivityTask (AWSStepFunctions.GetActivityTask), registered by srv_engine_new. */
sl_err srv_api_tasks_register(srv_t *s);

#endif
