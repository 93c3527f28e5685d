/*
 * app_file.h - the app file (docs/APP.md): state machines, activities, buses, rules with
 * their targets, and archives, declared in YAML or JSON, read into one model that
 * `sluice validate` checks and `sluice apply` makes real.
 *
 * Loading goes through the statemachines loader (libyaml/jansson with a position table),
 * so every problem is reported as "file:line:column: message", and all problems are
 * reported at once. Unknown keys are errors. Definitions are validated with the
 * statemachines module.
 */
#ifndef SLUICE_CLI_APP_FILE_H
#define SLUICE_CLI_APP_FILE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/sl_err.h"
#include "statemachines/sm_problems.h"

struct app_machine {
	char *name;
	char *type;         /* "STANDARD" or "EXPRESS" */
	json_t *definition; /* the ASL tree */
	char *where;        /* file:line:column of the entry */
};

struct app_target {
	char *id;
	char *arn;     /* exactly one of arn, machine, bus */
	char *machine; /* state machine name, resolved to its ARN by apply */
	char *bus;     /* bus name, resolved to its ARN by apply */
	json_t *input; /* any JSON value, sent as its JSON text; NULL if none */
	char *input_path;
	json_t *transformer; /* {"InputPathsMap"?, "InputTemplate"} as PutTargets wants */
	json_t *retry;       /* {"MaximumRetryAttempts"?, "MaximumEventAgeInSeconds"?} */
	json_t *dead_letter; /* {"Arn"} as DeadLetterConfig; {} for sluice's default queue
	                      * (APP_DEAD_LETTERS); NULL if none */
	char *role_arn;
	char *where;
};

/* The queue name `deadLetter: true` stands for: arn:aws:sqs:REGION:ACCOUNT:sluice-dead-letters
 * (`sluice dead-letters list` shows what landed there). */
#define APP_DEAD_LETTERS "sluice-dead-letters"

struct app_rule {
	char *name;
	char *bus;       /* "default" unless given */
	json_t *pattern; /* exactly one of pattern, schedule */
	char *schedule;
	char *timezone; /* sluice extension; NULL if not set */
	char *missed;   /* "skip" | "once" | "all"; NULL if not set */
	char *state;    /* "ENABLED" (default) or "DISABLED" */
	char *description;
	struct app_target *targets;
	size_t ntargets;
	char *where;
};

struct app_bus {
	char *name;
	char *description;
	char *where;
};

struct app_activity {
	char *name;
	char *where;
};

struct app_archive {
	char *name;
	char *bus;
	json_t *pattern; /* NULL: every event */
	char *description;
	long retention_days; /* 0: indefinitely */
	char *where;
};

struct app {
	struct app_machine *machines;
	size_t nmachines;
	struct app_activity *activities;
	size_t nactivities;
	struct app_bus *buses;
	size_t nbuses;
	struct app_rule *rules;
	size_t nrules;
	struct app_archive *archives;
	size_t narchives;
	size_t files; /* app files read */
};

struct app *app_new(void);
void app_free(struct app *a);

/*
 * Reads one app file, or every *.yaml, *.yml and *.json file of a directory (not
 * recursive, in name order; files that are lone state machine definitions are skipped, as
 * they are usually referenced by definitionFile). Every problem is appended to problems
 * ("file:line:column" locations). Returns SL_OK, SL_ERR_PARSE when the files have
 * problems, SL_ERR_IO or SL_ERR_NOMEM.
 */
sl_err app_load_path(struct app *a, const char *path, struct sm_problems *problems);

/* Reads one app file whose text is already in memory (path labels locations and anchors
 * definitionFile paths). */
sl_err app_load_text(struct app *a, const char *text, size_t len, const char *path,
                     struct sm_problems *problems);

/* True when text (a YAML or JSON document) looks like an app file rather than a lone state
 * machine definition: a mapping with an app key and no StartAt/States. */
bool app_text_is_app(const char *text, size_t len);

const struct app_machine *app_find_machine(const struct app *a, const char *name);
bool app_has_bus(const struct app *a, const char *name);

#endif
