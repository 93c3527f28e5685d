/*
 * fuzz_definition.c - libFuzzer target for the definition loader and validator: any bytes,
 * as JSON, YAML or sniffed, must load and compile (or be refused) without crashing,
 * leaking or reading out of bounds. The first byte picks the format so one corpus covers
 * all three paths.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/sl_alloc.h"
#include "statemachines/statemachines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	if (!initialised) {
		sl_alloc_init();
		initialised = 1;
	}
	if (size == 0)
		return 0;
	enum sm_format fmt = (enum sm_format)(data[0] % 3);
	struct sm_problems problems = { 0 };
	struct sm_machine *m = NULL;
	sm_definition_compile_text((const char *)data + 1, size - 1, "fuzz", fmt, &m, &problems);
	/* every problem must carry a location and a message */
	for (size_t i = 0; i < problems.count; i++)
		if (!problems.items[i].location[0] || !problems.items[i].message[0])
			__builtin_trap();
	char *aws = sm_problems_aws_message(&problems);
	sl_free(aws);
	sm_machine_free(m);
	sm_problems_clear(&problems);
	return 0;
}
