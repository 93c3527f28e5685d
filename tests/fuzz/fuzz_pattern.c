/*
 * fuzz_pattern.c - libFuzzer target for the pattern compiler: any bytes as an event
 * pattern must compile or be refused with a message, never crash, leak or read out of
 * bounds; a pattern that compiles is added to a machine, matched, and removed again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus/pattern.h"
#include "common/sl_alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *events[] = {
	"{\"source\":\"aws.ec2\",\"detail\":{\"state\":\"running\",\"n\":5,\"ip\":\"10.0.0.1\"}}",
	"{\"a\":[{\"b\":1,\"c\":\"x\"},{\"b\":2}],\"d\":null,\"e\":[],\"f\":{}}",
	"{\"detail\":{\"list\":[\"a\",\"B\",3.5e2,true,false,null],\"s\":\"stra\\u00dfe\"}}",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	if (!initialised) {
		sl_alloc_init();
		initialised = 1;
	}
	/* an exact-size copy: any read past the end is caught */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	pat_machine_t *m;
	struct sl_error err;
	if (pat_machine_new(&m, &err) != SL_OK) {
		free(text);
		return 0;
	}
	if (pat_machine_add_rule(m, "fuzz", text, size, NULL, &err) == SL_OK) {
		for (size_t i = 0; i < sizeof events / sizeof *events; i++) {
			uint32_t ids[2];
			size_t n;
			if (pat_machine_match_ids(m, events[i], strlen(events[i]), ids, 2, &n, &err)
			    != SL_OK)
				abort(); /* the events are valid: matching them cannot fail */
		}
		if (pat_machine_remove_rule(m, "fuzz", &err) != SL_OK)
			abort();
		struct pat_stats st;
		pat_machine_stats(m, &st);
		if (st.rules != 0 || st.fields != 0)
			abort(); /* removal must leave nothing behind */
	} else if (err.message[0] == '\0') {
		abort(); /* every refusal explains itself */
	}
	pat_machine_free(m);
	free(text);
	return 0;
}
