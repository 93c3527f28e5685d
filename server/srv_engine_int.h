/*
 * srv_engine_int.h - what srv_engine.c (the engines, machines, mocks, task routing) and
 * srv_express.c (EXPRESS executions) share. Loop thread only.
 */
#ifndef SLUICE_SERVER_SRV_ENGINE_INT_H
#define SLUICE_SERVER_SRV_ENGINE_INT_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/srv_dispatch.h"
#include "server/srv_engine.h"
#include "stepper/step_mock.h"

/* AWS's limit for an EXPRESS execution (sync or async). */
#define EXPRESS_MAX_MS (5 * 60 * 1000)
/* The scratch store is emptied when no express execution runs and this many ended. */
#define WIPE_AFTER 2048
#define XBUCKETS   4096
/* Durable records of express executions, in STORE_DB_EXECUTIONS under tags no execution
 * ARN can start with: 'R' arn -> record (start, then end), 'P' arn -> still running. */
#define XTAG_REC  0x00785200u
#define XTAG_PEND 0x00785000u

struct compiled {
	char *name;
	uint32_t revision;
	struct sm_machine *m;
};

/* An EXPRESS execution in flight. */
struct xrun {
	char arn[STEP_ARN_MAX];  /* the engine's: "...:execution:M:INAME" */
	char xarn[STEP_ARN_MAX]; /* AWS's: "...:express:M:NAME:ID", the durable records' key */
	char machine[81];
	char name[81];  /* as the client gave it (or a UUID) */
	char iname[81]; /* the engine's: name, or ID while another of that name runs */
	uint32_t revision;
	int64_t start_ms;
	json_t *input;
	bool is_sync;
	bool timed_out;
	srv_req_t *sync; /* the StartSyncExecution request still waiting, or NULL */
	/* a workflow's .sync (pmode 1) or .sync:2 (2) start: the parent's task token, which the
	 * end answers; "" otherwise */
	char ptoken[STEP_TOKEN_LEN + 1];
	int pmode;
	struct srv_engine *x;
	struct xrun *hnext;
};

/* An execution whose tasks --mock-config answers. */
struct mrun {
	char *arn;
	struct step_mock *mock;
	json_t *attempts; /* state name -> attempts so far */
	struct mrun *hnext;
};

/* A mocked task waiting to be answered (outside the effect that announced it). */
struct mtask {
	char token[STEP_TOKEN_LEN + 1];
	char *arn, *state;
	struct mtask *next;
};

/* An ended EXPRESS execution whose records are still in the scratch store. */
struct xpurge {
	char arn[STEP_ARN_MAX];
	char machine[81];
	int64_t start_ms; /* taken just before step_start: the listing key's time or earlier */
};

struct srv_engine {
	srv_t *srv;
	struct srv_engine *root; /* the durable engine (itself for the durable one) */
	struct srv_engine *x;    /* root: its EXPRESS engine */
	store_t *scratch;        /* EXPRESS: the scratch store, else NULL */
	step_engine_t *step;
	struct step_effects fx;
	struct event *run_ev;   /* a zero timeout: the next slice of runnable frames */
	struct event *timer_ev; /* the earliest timer */
	struct event *mock_ev;  /* mocked tasks to answer */
	struct event *flush_ev; /* EXPRESS: commit the scratch batch */
	struct event *sweep_ev; /* EXPRESS: 5-minute limit, vanished sync clients */
	int64_t armed_due;      /* INT64_MAX when timer_ev is not armed */
	struct mtask *mq_head, *mq_tail;
	bool replaying; /* step_tasks_replay at start: the records are committed */
	/* root only */
	struct compiled *mc;
	size_t n_mc, cap_mc;
	uint64_t tasks_waiting;
	srv_dispatch_t *dispatch;
	srv_engine_status_fn on_status;
	void *on_status_arg;
	json_t *mock_doc;
	struct mrun *mr[XBUCKETS];
	/* EXPRESS only */
	struct xrun *xr[XBUCKETS];
	size_t n_xr;
	uint64_t ended_since_wipe;
	struct xpurge *purge; /* ended: their records leave the scratch store */
	size_t n_purge, cap_purge;
	struct srv_engine_express_stats xstats;
	srv_engine_t *next;
};

/* srv_engine.c */
uint32_t srv_engine_hash(const char *s); /* 0 .. XBUCKETS-1 */
/* The open batch of e's store: the server's (group commit) or the scratch one. */
sl_err srv_engine_batch(srv_engine_t *e, store_batch_t **b);
/* The events, effects and step engine every engine has; clear undoes it. */
sl_err srv_engine_init_common(srv_engine_t *e, srv_t *s, srv_engine_t *root, store_t *st,
                              bool express);
void srv_engine_clear_common(srv_engine_t *e);
/* Forgets the mocks of execution arn. */
void srv_engine_mock_drop(srv_engine_t *root, const char *arn);

/* srv_express.c */
sl_err srv_express_new(srv_engine_t *root, struct sl_error *err);
void srv_express_free(srv_engine_t *x);
/* Start-up: runs again or closes the express executions the last process left. */
sl_err srv_express_recover(srv_engine_t *e, store_batch_t *b, struct sl_error *err);
/* The finished effect of the express engine. */
void srv_express_finished(srv_engine_t *x, const struct step_finished *f);

#endif
