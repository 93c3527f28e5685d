/*
 * Map ItemReader through the real server: `sluice serve --item-reader-root DIR` reads
 * s3://BUCKET/KEY as DIR/BUCKET/KEY; without the option the Map fails with
 * States.ItemReaderFailed. Waits are bounded polls (hang guards).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AWS_CALLS_SERVICE "AWSStepFunctions"
#include "tests/integration/aws_calls.h"
#include "tests/integration/harness.h"

#define SM(name)     "arn:aws:states:us-east-1:000000000000:stateMachine:" name
#define ROLE         "arn:aws:iam::000000000000:role/x"
#define DONE_WAIT_MS 20000

/* Rows of a CSV file in batches of two, each batch tagged from the input. */
#define CSV_DEF                                                                                    \
	"{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemReader\":{\"Resource\":"     \
	"\"arn:aws:states:::s3:getObject\",\"Parameters\":{\"Bucket\":\"in\",\"Key.$\":"           \
	"\"$.key\"},\"ReaderConfig\":{\"InputType\":\"CSV\"}},\"ItemBatcher\":{"                   \
	"\"MaxItemsPerBatch\":2,\"BatchInput\":{\"night.$\":\"$.night\"}},\"ItemProcessor\":{"     \
	"\"ProcessorConfig\":{\"Mode\":\"DISTRIBUTED\",\"ExecutionType\":\"STANDARD\"},"           \
	"\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}},\"End\":true}}}"

static char root[64];

static json_t *
run_once(const char *input)
{
	json_decref(ok(
	        "CreateStateMachine",
	        json_pack("{s:s,s:s,s:s}", "name", "csv", "definition", CSV_DEF, "roleArn", ROLE)));
	json_t *r = ok("StartExecution",
	               json_pack("{s:s,s:s}", "stateMachineArn", SM("csv"), "input", input));
	char *arn = strdup(s(r, "executionArn"));
	json_decref(r);
	for (int waited = 0; waited < DONE_WAIT_MS; waited += 50) {
		json_t *d = ok("DescribeExecution", json_pack("{s:s}", "executionArn", arn));
		if (strcmp(s(d, "status"), "RUNNING") != 0) {
			free(arn);
			return d;
		}
		json_decref(d);
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
	}
	cr_assert_fail("%s still RUNNING after %d ms", arn, DONE_WAIT_MS);
	return NULL;
}

static void
make_root(void)
{
	snprintf(root, sizeof root, "/tmp/sluice-ir-XXXXXX");
	cr_assert(mkdtemp(root));
	char p[128];
	snprintf(p, sizeof p, "%s/in", root);
	cr_assert(mkdir(p, 0700) == 0);
	snprintf(p, sizeof p, "%s/in/rows.csv", root);
	FILE *f = fopen(p, "w");
	cr_assert(f);
	fputs("id,name\n1,\"a, b\"\n2,c\n3,d\n", f);
	fclose(f);
}

static void
drop_root(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	cr_expect_eq(h_run(cmd, NULL), 0);
}

Test(item_reader, reads_a_local_csv_under_the_root)
{
	make_root();
	const char *extra[] = { "--item-reader-root", root, NULL };
	cr_assert(h_start(&srv, extra), "server did not start");
	json_t *d = run_once("{\"key\":\"rows.csv\",\"night\":\"n1\"}");
	cr_expect_str_eq(s(d, "status"), "SUCCEEDED", "%s", s(d, "cause") ? s(d, "cause") : "");
	json_t *want = json_loads("[{\"night\":\"n1\",\"Items\":[{\"id\":\"1\",\"name\":\"a, b\"},"
	                          "{\"id\":\"2\",\"name\":\"c\"}]},{\"night\":\"n1\",\"Items\":["
	                          "{\"id\":\"3\",\"name\":\"d\"}]}]",
	                          0, NULL);
	json_t *got = s(d, "output") ? json_loads(s(d, "output"), 0, NULL) : NULL;
	cr_expect(want && got && json_equal(want, got), "output %s", s(d, "output"));
	json_decref(want);
	json_decref(got);
	json_decref(d);
	// a key that leaves the root is refused
	d = run_once("{\"key\":\"../in/rows.csv\",\"night\":\"n1\"}");
	cr_expect_str_eq(s(d, "status"), "FAILED");
	cr_expect_str_eq(s(d, "error"), "States.ItemReaderFailed");
	json_decref(d);
	stop();
	drop_root();
}

Test(item_reader, off_without_a_root)
{
	start();
	json_t *d = run_once("{\"key\":\"rows.csv\",\"night\":\"n1\"}");
	cr_expect_str_eq(s(d, "status"), "FAILED");
	cr_expect_str_eq(s(d, "error"), "States.ItemReaderFailed");
	cr_expect(s(d, "cause") && strstr(s(d, "cause"), "--item-reader-root"), "%s",
	          s(d, "cause"));
	json_decref(d);
	stop();
}
