/*
 * wk_proto.h - the task protocol between the server and worker processes, over NNG REQ/REP.
 *
 * Both ends link this file: a worker needs only common/ and workers/. Every message is one
 * small JSON object with a protocol version "v" and a "type":
 *
 *   worker -> server (REQ)                         server -> worker (REP)
 *   poll      {id, worker, activities[], max,     tasks {id, tasks: [{token, activity, input,
 *              wait_ms}                                  timeout_s, heartbeat_s}]}  ([] = none)
 *   success   {token, output}                      ok    {}
 *   failure   {token, error, cause}                error {error, message}, error one of
 *   heartbeat {token}                                    TaskDoesNotExist, TaskTimedOut,
 *                                                         MalformedFrame, UnsupportedVersion,
 *                                                         Unauthorized, UnknownMessage,
 *                                                         PayloadTooLarge, ...
 * Any message may carry "auth" (the --workers-token secret). A poll id lets the server answer
 * a poll once even when NNG's REQ re-sends it (reference/dependencies.md, "REQ re-sends").
 *
 * Decoding is strict: unknown types, wrong field types, missing fields, over-long strings,
 * too many activities and payloads over the limit are refused with a message saying which
 * field and what was expected. Decoded strings borrow from the message's JSON tree.
 */
#ifndef SLUICE_WORKERS_WK_PROTO_H
#define SLUICE_WORKERS_WK_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sl_err.h"

#define WK_PROTO_VERSION 1

enum wk_msg_type {
	WK_MSG_POLL,
	WK_MSG_TASKS,
	WK_MSG_SUCCESS,
	WK_MSG_FAILURE,
	WK_MSG_HEARTBEAT,
	WK_MSG_OK,
	WK_MSG_ERROR,
};

/* Protocol-level error names (the "error" of an error reply). */
#define WK_ERR_MALFORMED    "MalformedFrame"
#define WK_ERR_VERSION      "UnsupportedVersion"
#define WK_ERR_UNAUTHORIZED "Unauthorized"
#define WK_ERR_UNKNOWN      "UnknownMessage"
#define WK_ERR_TOO_LARGE    "PayloadTooLarge"

struct wk_limits {
	size_t max_frame;      /* whole message bytes (also NNG_OPT_RECVMAXSZ); 0 = 1 MiB */
	size_t max_payload;    /* serialized input/output bytes; 0 = 256 KiB */
	size_t max_activities; /* per poll; 0 = 64 */
	unsigned max_tasks;    /* per poll; 0 = 64 */
	uint32_t max_wait_ms;  /* per poll; 0 = 60000 */
};

/* One task handed to a worker. */
struct wk_task {
	const char *token;
	const char *activity;
	json_t *input;        /* borrowed */
	uint32_t timeout_s;   /* 0 = none */
	uint32_t heartbeat_s; /* 0 = none */
};

/* A decoded message. Pointers borrow from root, which the message owns. */
struct wk_msg {
	enum wk_msg_type type;
	const char *auth; /* NULL when absent */
	/* poll */
	const char *poll_id;
	const char *worker;
	const char **activities;
	size_t n_activities;
	unsigned max_tasks;
	uint32_t wait_ms;
	/* tasks */
	struct wk_task *tasks;
	size_t n_tasks;
	/* success / failure / heartbeat */
	const char *token;
	json_t *output;      /* success: borrowed */
	const char *error;   /* failure: the task's error name; error reply: the protocol error */
	const char *cause;   /* failure: cause (may be NULL) */
	const char *message; /* error reply */
	json_t *root;
};

/* Decodes one frame. On failure err says what and where; out is left cleared. */
sl_err wk_msg_decode(const void *buf, size_t len, const struct wk_limits *lim, struct wk_msg *out,
                     struct sl_error *err);
/* Releases what decode allocated; safe on a cleared or already-cleared message. */
void wk_msg_clear(struct wk_msg *m);

const char *wk_msg_type_name(enum wk_msg_type t);

/*
 * Encoders return a new NUL-terminated buffer (sl_free it) and its length. auth may be NULL.
 * JSON arguments are borrowed.
 */
sl_err wk_encode_poll(const char *auth, const char *poll_id, const char *worker,
                      const char *const *activities, size_t n_activities, unsigned max_tasks,
                      uint32_t wait_ms, char **out, size_t *out_len);
sl_err wk_encode_tasks(const char *poll_id, const struct wk_task *tasks, size_t n, char **out,
                       size_t *out_len);
sl_err wk_encode_success(const char *auth, const char *token, json_t *output, char **out,
                         size_t *out_len);
sl_err wk_encode_failure(const char *auth, const char *token, const char *error, const char *cause,
                         char **out, size_t *out_len);
sl_err wk_encode_heartbeat(const char *auth, const char *token, char **out, size_t *out_len);
sl_err wk_encode_ok(char **out, size_t *out_len);
sl_err wk_encode_error(const char *error, const char *message, char **out, size_t *out_len);

/* Limits with defaults filled in. */
void wk_limits_resolve(const struct wk_limits *in, struct wk_limits *out);

#endif
