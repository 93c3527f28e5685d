/*
 * test_sm_express.c - the type-aware check: an EXPRESS machine refuses what EXPRESS
 * executions cannot run (activities, `.sync`, `.sync:2`, `.waitForTaskToken`), with AWS's
 * words and positions like every other problem; a STANDARD machine keeps them.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/statemachines.h"

static const char *const mixed
        = "StartAt: Act\n"                                                      /* 1 */
          "States:\n"                                                           /* 2 */
          "  Act:\n"                                                            /* 3 */
          "    Type: Task\n"                                                    /* 4 */
          "    Resource: arn:aws:states:us-east-1:123456789012:activity:work\n" /* 5 */
          "    Next: Job\n"                                                     /* 6 */
          "  Job:\n"                                                            /* 7 */
          "    Type: Task\n"                                                    /* 8 */
          "    Resource: arn:aws:states:::glue:startJobRun.sync\n"              /* 9 */
          "    Next: Child\n"                                                   /* 10 */
          "  Child:\n"                                                          /* 11 */
          "    Type: Task\n"                                                    /* 12 */
          "    Resource: arn:aws:states:::states:startExecution.sync:2\n"       /* 13 */
          "    Next: Cb\n"                                                      /* 14 */
          "  Cb:\n"                                                             /* 15 */
          "    Type: Task\n"                                                    /* 16 */
          "    Resource: arn:aws:states:::sqs:sendMessage.waitForTaskToken\n"   /* 17 */
          "    Next: Rr\n"                                                      /* 18 */
          "  Rr:\n"                                                             /* 19 */
          "    Type: Task\n"                                                    /* 20 */
          "    Resource: arn:aws:states:::lambda:invoke\n"                      /* 21 */
          "    Next: Fn\n"                                                      /* 22 */
          "  Fn:\n"                                                             /* 23 */
          "    Type: Task\n"                                                    /* 24 */
          "    Resource: arn:aws:lambda:us-east-1:123456789012:function:f\n"    /* 25 */
          "    Next: Fire\n"                                                    /* 26 */
          "  Fire:\n"                                                           /* 27 */
          "    Type: Task\n"                                                    /* 28 */
          "    Resource: arn:aws:states:::states:startExecution\n"              /* 29 */
          "    End: true\n";                                                    /* 30 */

static sl_err
compile(const char *text, enum sm_execution_type type, struct sm_problems *p)
{
	struct sm_machine *m = NULL;
	sl_err rc = sm_definition_compile_text_typed(text, strlen(text), "m.yaml", SM_FORMAT_AUTO,
	                                             type, &m, p);
	cr_assert(rc == SL_OK ? m != NULL : m == NULL);
	sm_machine_free(m);
	return rc;
}

Test(sm_express, standard_keeps_every_pattern)
{
	struct sm_problems p = { 0 };
	cr_assert_eq(compile(mixed, SM_EXECUTION_STANDARD, &p), SL_OK);
	cr_assert_eq(p.count, 0);
	/* the untyped entry point is STANDARD */
	struct sm_machine *m = NULL;
	cr_assert_eq(sm_definition_compile_text(mixed, strlen(mixed), NULL, SM_FORMAT_YAML, &m, &p),
	             SL_OK);
	sm_machine_free(m);
}

Test(sm_express, express_refuses_activity_sync_and_callback)
{
	struct sm_problems p = { 0 };
	cr_assert_eq(compile(mixed, SM_EXECUTION_EXPRESS, &p), SL_ERR_INVALID_DEFINITION);
	cr_assert_eq(p.count, 4, "%zu problems", p.count);
	static const struct {
		const char *location, *pointer, *message;
	} want[] = {
		{ "m.yaml:5:15", "/States/Act/Resource",
		  "SCHEMA_VALIDATION_FAILED: Express state machine does not support Activity ARN" },
		{ "m.yaml:9:15", "/States/Job/Resource",
		  "SCHEMA_VALIDATION_FAILED: Express state machine does not support '.sync' "
		  "service "
		  "integration" },
		{ "m.yaml:13:15", "/States/Child/Resource",
		  "SCHEMA_VALIDATION_FAILED: Express state machine does not support '.sync' "
		  "service "
		  "integration" },
		{ "m.yaml:17:15", "/States/Cb/Resource",
		  "SCHEMA_VALIDATION_FAILED: Express state machine does not support "
		  "'.waitForTaskToken' service integration" },
	};
	for (size_t i = 0; i < 4; i++) {
		cr_expect_str_eq(p.items[i].location, want[i].location, "problem %zu", i);
		cr_expect_str_eq(p.items[i].pointer, want[i].pointer, "problem %zu", i);
		cr_expect_str_eq(p.items[i].message, want[i].message, "problem %zu", i);
	}
	char *aws = sm_problems_aws_message(&p);
	cr_assert_not_null(aws);
	cr_assert(strstr(aws,
	                 "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: "
	                 "Express state machine does not support Activity ARN at "
	                 "/States/Act/Resource, "),
	          "%s", aws);
	sl_free(aws);
	sm_problems_clear(&p);
}

Test(sm_express, short_activity_form_and_other_problems_together)
{
	/* "activity:NAME" is an activity too; unrelated problems are still all reported */
	const char *text = "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Task\","
	                   "\"Resource\":\"activity:a\",\"Foo\":1,\"End\":true}}}";
	struct sm_problems p = { 0 };
	cr_assert_eq(compile(text, SM_EXECUTION_EXPRESS, &p), SL_ERR_INVALID_DEFINITION);
	cr_assert_eq(p.count, 2);
	bool activity = false, field = false;
	for (size_t i = 0; i < p.count; i++) {
		activity |= strstr(p.items[i].message, "Activity ARN") != NULL
		        && !strcmp(p.items[i].pointer, "/States/A/Resource");
		field |= strstr(p.items[i].message, "Field 'Foo' is not supported") != NULL;
	}
	cr_assert(activity && field);
	sm_problems_clear(&p);
}

Test(sm_express, nested_machines_follow_the_type)
{
	/* Parallel branches and inline Map processors run in the EXPRESS execution */
	const char *text
	        = "StartAt: P\n"
	          "States:\n"
	          "  P:\n"
	          "    Type: Parallel\n"
	          "    Next: M\n"
	          "    Branches:\n"
	          "      - StartAt: B\n"
	          "        States:\n"
	          "          B: {Type: Task, Resource: 'arn:aws:states:::ecs:runTask.sync',"
	          " End: true}\n"
	          "  M:\n"
	          "    Type: Map\n"
	          "    End: true\n"
	          "    ItemProcessor:\n"
	          "      StartAt: I\n"
	          "      States:\n"
	          "        I: {Type: Task, Resource: 'activity:x', End: true}\n";
	struct sm_problems p = { 0 };
	cr_assert_eq(compile(text, SM_EXECUTION_STANDARD, &p), SL_OK);
	cr_assert_eq(compile(text, SM_EXECUTION_EXPRESS, &p), SL_ERR_INVALID_DEFINITION);
	cr_assert_eq(p.count, 2);
	cr_expect_str_eq(p.items[0].pointer, "/States/P/Branches/0/States/B/Resource");
	cr_expect_str_eq(p.items[0].location, "m.yaml:9:37");
	cr_expect_str_eq(p.items[1].pointer, "/States/M/ItemProcessor/States/I/Resource");
	sm_problems_clear(&p);
}

Test(sm_express, distributed_express_processor_runs_express_children)
{
	/* a DISTRIBUTED Map with ExecutionType EXPRESS starts its items as EXPRESS executions:
	 * the rules hold inside its processor even in a STANDARD machine, and only there */
	const char *fmt = "StartAt: M\n"
	                  "States:\n"
	                  "  M:\n"
	                  "    Type: Map\n"
	                  "    End: true\n"
	                  "    ItemProcessor:\n"
	                  "      ProcessorConfig: {Mode: DISTRIBUTED, ExecutionType: %s}\n"
	                  "      StartAt: I\n"
	                  "      States:\n"
	                  "        I: {Type: Task, Resource: "
	                  "'arn:aws:states:::lambda:invoke.waitForTaskToken', Next: J}\n"
	                  "        J: {Type: Task, Resource: 'arn:aws:states:::lambda:invoke', "
	                  "End: true}\n";
	char *express = sl_asprintf(fmt, "EXPRESS");
	char *standard = sl_asprintf(fmt, "STANDARD");
	struct sm_problems p = { 0 };
	cr_assert_eq(compile(standard, SM_EXECUTION_STANDARD, &p), SL_OK);
	cr_assert_eq(compile(express, SM_EXECUTION_STANDARD, &p), SL_ERR_INVALID_DEFINITION);
	cr_assert_eq(p.count, 1);
	cr_expect_str_eq(p.items[0].pointer, "/States/M/ItemProcessor/States/I/Resource");
	cr_expect(strstr(p.items[0].message, "'.waitForTaskToken'"));
	sm_problems_clear(&p);
	sl_free(express);
	sl_free(standard);
}

Test(sm_express, typed_compile_out_of_memory_is_clean)
{
	long n;
	for (n = 0; n < 20000; n++) {
		struct sm_problems p = { 0 };
		struct sm_machine *m = NULL;
		sl_alloc_fail_after(n);
		sl_err rc = sm_definition_compile_text_typed(
		        mixed, strlen(mixed), "x", SM_FORMAT_YAML, SM_EXECUTION_EXPRESS, &m, &p);
		sl_alloc_fail_after(-1);
		cr_assert_null(m);
		sm_problems_clear(&p);
		if (rc == SL_ERR_INVALID_DEFINITION)
			break;
		cr_assert_eq(rc, SL_ERR_NOMEM, "n=%ld: %s", n, sl_err_name(rc));
	}
	cr_assert_lt(n, 20000, "compile never finished");
}
