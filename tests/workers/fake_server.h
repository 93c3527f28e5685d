/*
 * fake_server.h - a scripted REP server for worker tests: hands out queued tasks (as many
 * per poll as the poll's max asks) and records every result, over real NNG on loopback TCP.
 */
#ifndef SLUICE_TESTS_FAKE_SERVER_H
#define SLUICE_TESTS_FAKE_SERVER_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "workers/wk_proto.h"

struct fake {
	nng_socket sock;
	char url[128];
	pthread_t thread;
	pthread_mutex_t mu;
	struct wk_task queue[16];
	size_t n_queue, next;
	char results[16][1024]; /* "success:TOKEN:OUTPUT" / "failure:TOKEN:ERROR:CAUSE" */
	size_t n_results;
	int heartbeats;
	int queue_beats[16];      /* heartbeats per queued task */
	unsigned most_per_poll;   /* the most tasks one answer carried */
	const char *expire_token; /* heartbeats for it get TaskTimedOut */
	atomic_bool stop;
};

void fake_start(struct fake *f);
void fake_stop(struct fake *f);
size_t fake_results(struct fake *f);
/* Waits (bounded, ~10 s) until n results arrived; false if they did not. */
bool fake_wait_results(struct fake *f, size_t n);
/* The recorded result for token, or NULL. */
const char *fake_result_for(struct fake *f, const char *token);

#endif
