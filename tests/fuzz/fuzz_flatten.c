/*
 * fuzz_flatten.c - libFuzzer target for the streaming event reader: any bytes as an event
 * against a machine whose rules name nested paths, arrays, dotted keys and every operator
 * family; the reader must match or refuse with a message, never crash or read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus/pattern.h"
#include "common/sl_alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *rules[] = {
	"{\"a\":{\"b\":[1,\"x\",null,true]}}",
	"{\"a\":{\"b\":[{\"exists\":true}],\"c\":[{\"exists\":false}]}}",
	"{\"a.b\":[{\"prefix\":\"x\"}],\"d\":[{\"suffix\":{\"equals-ignore-case\":\"Y\"}}]}",
	"{\"d\":[{\"wildcard\":\"*a*b\"},{\"anything-but\":{\"wildcard\":\"q*\"}}]}",
	"{\"e\":[{\"numeric\":[\">\",0,\"<=\",100]},{\"cidr\":\"10.0.0.0/8\"}]}",
	"{\"$or\":[{\"f\":[{\"equals-ignore-case\":\"STRASSE\"}]},{\"g\":{\"h\":[\"\"]}}]}",
	"{\"\\u00e9\":[{\"anything-but\":[\"a\",\"b\"]}],\"a\":{\"c\":[{\"exists\":true}]}}",
};

static pat_machine_t *machine;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sl_error err;
	if (!machine) {
		sl_alloc_init();
		if (pat_machine_new(&machine, &err) != SL_OK)
			abort();
		for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
			char name[8] = { 'r', (char)('0' + i), 0 };
			if (pat_machine_add_rule(machine, name, rules[i], strlen(rules[i]), NULL,
			                         &err)
			    != SL_OK)
				abort();
		}
	}
	char *ev = malloc(size ? size : 1);
	if (!ev)
		return 0;
	memcpy(ev, data, size);
	uint32_t ids[8];
	size_t n;
	sl_err rc = pat_machine_match_ids(machine, ev, size, ids, 8, &n, &err);
	if (rc != SL_OK && (rc != SL_ERR_INVALID_ARG || err.message[0] == '\0'))
		abort(); /* a refusal is an invalid-argument error with a message */
	free(ev);
	return 0;
}
