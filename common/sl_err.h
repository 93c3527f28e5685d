/*
 * sl_err.h - the one error enum of sluice.
 *
 * Every module returns an sl_err. The list below is the single source: each entry gives
 * the code, the AWS error name the HTTP layer puts in `__type`, the HTTP status, and a
 * default message. The HTTP layer maps codes mechanically; nobody writes a status by hand.
 * Add new codes at the end of a group; the numeric values are not persisted anywhere.
 */
#ifndef SLUICE_COMMON_SL_ERR_H
#define SLUICE_COMMON_SL_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* X(code, aws_type, http_status, default_message) */
#define SL_ERR_LIST(X)                                                                             \
	X(SL_OK, "", 200, "success")                                                               \
	/* generic, process-level */                                                               \
	X(SL_ERR_NOMEM, "InternalFailure", 500, "out of memory")                                   \
	X(SL_ERR_IO, "InternalFailure", 500, "input/output error")                                 \
	X(SL_ERR_INTERNAL, "InternalFailure", 500, "internal error")                               \
	X(SL_ERR_STORE, "InternalFailure", 500, "storage error")                                   \
	X(SL_ERR_STORE_SCHEMA, "InternalFailure", 500, "data directory has an unsupported schema") \
	X(SL_ERR_STORE_BUSY, "InternalFailure", 500, "data directory is in use")                   \
	X(SL_ERR_NOT_FOUND, "ResourceNotFoundException", 400, "not found")                         \
	X(SL_ERR_EXISTS, "ResourceAlreadyExistsException", 400, "already exists")                  \
	X(SL_ERR_INVALID_ARG, "ValidationException", 400, "invalid argument")                      \
	X(SL_ERR_LIMIT, "LimitExceededException", 400, "limit exceeded")                           \
	X(SL_ERR_TOO_LARGE, "RequestEntityTooLarge", 413, "request body too large")                \
	X(SL_ERR_BUSY, "ThrottlingException", 400, "rate exceeded")                                \
	X(SL_ERR_SHUTTING_DOWN, "ServiceUnavailable", 503, "server is shutting down")              \
	X(SL_ERR_UNAVAILABLE, "ServiceUnavailable", 503, "service unavailable")                    \
	X(SL_ERR_TIMEOUT, "RequestTimeout", 408, "timed out")                                      \
	X(SL_ERR_PARSE, "SerializationException", 400, "malformed input")                          \
	/* wire and dispatch */                                                                    \
	X(SL_ERR_UNKNOWN_OPERATION, "UnknownOperationException", 400, "unknown operation")         \
	X(SL_ERR_SERIALIZATION, "SerializationException", 400, "request body is not valid JSON")   \
	X(SL_ERR_MISSING_ACTION, "MissingAction", 400, "missing X-Amz-Target header")              \
	X(SL_ERR_UNSUPPORTED_PROTOCOL, "UnsupportedProtocolException", 400,                        \
	  "unsupported protocol: only the AWS JSON 1.0/1.1 protocols are served")                  \
	X(SL_ERR_ACCESS_DENIED, "AccessDeniedException", 400, "access denied")                     \
	X(SL_ERR_SIGNATURE, "InvalidSignatureException", 400, "request signature does not match")  \
	/* EventBridge */                                                                          \
	X(SL_ERR_INVALID_PATTERN, "InvalidEventPatternException", 400,                             \
	  "Event pattern is not valid.")                                                           \
	X(SL_ERR_EB_NOT_FOUND, "ResourceNotFoundException", 400, "resource does not exist")        \
	X(SL_ERR_EB_EXISTS, "ResourceAlreadyExistsException", 400, "resource already exists")      \
	X(SL_ERR_EB_CONCURRENT, "ConcurrentModificationException", 400, "concurrent modification") \
	X(SL_ERR_EB_ILLEGAL_STATUS, "IllegalStatusException", 400, "illegal status")               \
	X(SL_ERR_EB_MANAGED_RULE, "ManagedRuleException", 400, "managed rule")                     \
	/* Step Functions */                                                                       \
	X(SL_ERR_INVALID_DEFINITION, "InvalidDefinition", 400, "invalid state machine definition") \
	X(SL_ERR_INVALID_NAME, "InvalidName", 400, "invalid name")                                 \
	X(SL_ERR_INVALID_ARN, "InvalidArn", 400, "invalid ARN")                                    \
	X(SL_ERR_INVALID_EXECUTION_INPUT, "InvalidExecutionInput", 400, "invalid execution input") \
	X(SL_ERR_INVALID_TOKEN, "InvalidToken", 400, "invalid token")                              \
	X(SL_ERR_INVALID_OUTPUT, "InvalidOutput", 400, "invalid output")                           \
	X(SL_ERR_SM_EXISTS, "StateMachineAlreadyExists", 400, "state machine already exists")      \
	X(SL_ERR_SM_NOT_FOUND, "StateMachineDoesNotExist", 400, "state machine does not exist")    \
	X(SL_ERR_SM_DELETING, "StateMachineDeleting", 400, "state machine is being deleted")       \
	X(SL_ERR_SM_TYPE_NOT_SUPPORTED, "StateMachineTypeNotSupported", 400,                       \
	  "operation not supported by this state machine type")                                    \
	X(SL_ERR_EXEC_EXISTS, "ExecutionAlreadyExists", 400, "execution already exists")           \
	X(SL_ERR_EXEC_NOT_FOUND, "ExecutionDoesNotExist", 400, "execution does not exist")         \
	X(SL_ERR_EXEC_LIMIT, "ExecutionLimitExceeded", 400, "execution limit exceeded")            \
	X(SL_ERR_EXEC_NOT_REDRIVABLE, "ExecutionNotRedrivable", 400,                               \
	  "execution is not redrivable")                                                           \
	X(SL_ERR_ACTIVITY_NOT_FOUND, "ActivityDoesNotExist", 400, "activity does not exist")       \
	X(SL_ERR_ACTIVITY_LIMIT, "ActivityLimitExceeded", 400, "activity limit exceeded")          \
	X(SL_ERR_ACTIVITY_WORKER_LIMIT, "ActivityWorkerLimitExceeded", 400,                        \
	  "too many workers are polling this activity")                                            \
	X(SL_ERR_TASK_NOT_FOUND, "TaskDoesNotExist", 400, "task does not exist")                   \
	X(SL_ERR_TASK_TIMED_OUT, "TaskTimedOut", 400, "task timed out")                            \
	X(SL_ERR_TOO_MANY_TAGS, "TooManyTags", 400, "too many tags")                               \
	X(SL_ERR_MAP_RUN_NOT_FOUND, "ResourceNotFound", 400, "map run does not exist")             \
	X(SL_ERR_SFN_VALIDATION, "ValidationException", 400, "validation error")                   \
	X(SL_ERR_CONFLICT, "ConflictException", 400, "conflict")

typedef enum sl_err {
#define SL_ERR_ENUM_(code, type, status, msg) code,
	SL_ERR_LIST(SL_ERR_ENUM_)
#undef SL_ERR_ENUM_
	        SL_ERR__COUNT
} sl_err;

/* Static facts of a code. Unknown codes map to SL_ERR_INTERNAL's facts. */
const char *sl_err_name(sl_err code);     /* "SL_ERR_NOMEM" */
const char *sl_err_aws_type(sl_err code); /* "InternalFailure" */
int sl_err_http_status(sl_err code);      /* 500 */
const char *sl_err_message(sl_err code);  /* "out of memory" */

/*
 * An error with its specific message ("Event pattern is not valid. Reason: ..."). Callers
 * pass a `struct sl_error *` (may be NULL) to any function that can explain a failure.
 */
#define SL_ERROR_MSG_MAX 1024
struct sl_error {
	sl_err code;
	char message[SL_ERROR_MSG_MAX];
};

/* Sets *e (if not NULL) to code and the formatted message; returns code, so
 * `return sl_error_set(e, SL_ERR_INVALID_ARG, "...")` reads as one line. */
sl_err sl_error_set(struct sl_error *e, sl_err code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
sl_err sl_error_setv(struct sl_error *e, sl_err code, const char *fmt, va_list ap);
/* Resets to SL_OK with an empty message. */
void sl_error_clear(struct sl_error *e);
/* The message, or the code's default message when none was set. */
const char *sl_error_text(const struct sl_error *e);

#endif
