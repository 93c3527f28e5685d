/*
 * State machines as a service, through the real server: create, describe, update (new
 * revision), publish versions, list with paging, delete, validate; AWS's errors; durability
 * across a SIGKILL; and the aws CLI when it is installed.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AWS_CALLS_SERVICE "AWSStepFunctions"
#include "tests/integration/aws_calls.h"
#include "tests/integration/harness.h"

#define PASS_DEF  "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"End\":true}}}"
#define PASS_DEF2 "{\"StartAt\":\"B\",\"States\":{\"B\":{\"Type\":\"Succeed\"}}}"
#define ARN(name) "arn:aws:states:us-east-1:000000000000:stateMachine:" name

Test(machines, create_describe_update_publish_delete)
{
	start();
	json_t *c = ok("CreateStateMachine",
	               json_pack("{s:s,s:s,s:s}", "name", "etl", "definition", PASS_DEF, "roleArn",
	                         "arn:aws:iam::000000000000:role/x"));
	cr_assert_str_eq(s(c, "stateMachineArn"), ARN("etl"));
	cr_assert(json_is_real(json_object_get(c, "creationDate")));
	json_decref(c);

	/* the same machine again is idempotent; a different one is refused */
	json_decref(ok("CreateStateMachine",
	               json_pack("{s:s,s:s}", "name", "etl", "definition", PASS_DEF)));
	fails("CreateStateMachine", json_pack("{s:s,s:s}", "name", "etl", "definition", PASS_DEF2),
	      "StateMachineAlreadyExists", ARN("etl"));

	json_t *d = ok("DescribeStateMachine", json_pack("{s:s}", "stateMachineArn", ARN("etl")));
	cr_assert_str_eq(s(d, "definition"), PASS_DEF, "the text is kept as written");
	cr_assert_str_eq(s(d, "type"), "STANDARD");
	cr_assert_str_eq(s(d, "status"), "ACTIVE");
	char rev1[64];
	snprintf(rev1, sizeof rev1, "%s", s(d, "revisionId"));
	json_decref(d);

	json_t *u = ok("UpdateStateMachine",
	               json_pack("{s:s,s:s,s:b}", "stateMachineArn", ARN("etl"), "definition",
	                         PASS_DEF2, "publish", 1));
	cr_assert_str_eq(s(u, "stateMachineVersionArn"), ARN("etl:1"));
	cr_assert_str_neq(s(u, "revisionId"), rev1);
	json_decref(u);
	/* publishing the unchanged revision again gives the same version */
	json_t *p = ok("PublishStateMachineVersion",
	               json_pack("{s:s}", "stateMachineArn", ARN("etl")));
	cr_assert_str_eq(s(p, "stateMachineVersionArn"), ARN("etl:1"));
	json_decref(p);
	fails("PublishStateMachineVersion",
	      json_pack("{s:s,s:s}", "stateMachineArn", ARN("etl"), "revisionId", rev1),
	      "ConflictException", rev1);
	json_decref(ok("UpdateStateMachine",
	               json_pack("{s:s,s:s,s:b,s:s}", "stateMachineArn", ARN("etl"), "definition",
	                         PASS_DEF, "publish", 1, "versionDescription", "back to A")));
	json_t *v2
	        = ok("DescribeStateMachine", json_pack("{s:s}", "stateMachineArn", ARN("etl:2")));
	cr_assert_str_eq(s(v2, "definition"), PASS_DEF);
	cr_assert_str_eq(s(v2, "description"), "back to A");
	json_decref(v2);
	json_t *v1
	        = ok("DescribeStateMachine", json_pack("{s:s}", "stateMachineArn", ARN("etl:1")));
	cr_assert_str_eq(s(v1, "definition"), PASS_DEF2, "a version keeps its revision");
	json_decref(v1);

	json_t *lv = ok("ListStateMachineVersions",
	                json_pack("{s:s,s:i}", "stateMachineArn", ARN("etl"), "maxResults", 1));
	json_t *vs = json_object_get(lv, "stateMachineVersions");
	cr_assert_eq(json_array_size(vs), 1);
	cr_assert_str_eq(s(json_array_get(vs, 0), "stateMachineVersionArn"), ARN("etl:2"),
	                 "newest first");
	const char *tok = s(lv, "nextToken");
	cr_assert_not_null(tok);
	json_t *lv2 = ok("ListStateMachineVersions",
	                 json_pack("{s:s,s:s}", "stateMachineArn", ARN("etl"), "nextToken", tok));
	cr_assert_str_eq(s(json_array_get(json_object_get(lv2, "stateMachineVersions"), 0),
	                   "stateMachineVersionArn"),
	                 ARN("etl:1"));
	cr_assert_null(json_object_get(lv2, "nextToken"));
	json_decref(lv);
	json_decref(lv2);

	json_decref(ok("DeleteStateMachine", json_pack("{s:s}", "stateMachineArn", ARN("etl"))));
	fails("DescribeStateMachine", json_pack("{s:s}", "stateMachineArn", ARN("etl")),
	      "StateMachineDoesNotExist", ARN("etl"));
	fails("DescribeStateMachine", json_pack("{s:s}", "stateMachineArn", ARN("etl:1")),
	      "StateMachineDoesNotExist", "etl:1");
	json_decref(ok("DeleteStateMachine", json_pack("{s:s}", "stateMachineArn", ARN("etl"))));
	stop();
}

Test(machines, errors_in_aws_shape)
{
	start();
	fails("CreateStateMachine",
	      json_pack("{s:s,s:s}", "name", "bad name", "definition", PASS_DEF), "InvalidName",
	      "bad name");
	fails("CreateStateMachine", json_pack("{s:s}", "name", "x"), "ValidationException",
	      "'definition'");
	fails("CreateStateMachine",
	      json_pack("{s:s,s:s,s:s}", "name", "x", "definition", PASS_DEF, "type", "FAST"),
	      "ValidationException", "[STANDARD, EXPRESS]");
	fails("CreateStateMachine",
	      json_pack(
	              "{s:s,s:s}", "name", "x", "definition",
	              "{\"StartAt\":\"Nope\",\"States\":{\"A\":{\"Type\":\"Pass\",\"End\":true}}}"),
	      "InvalidDefinition", "Invalid State Machine Definition");
	fails("CreateStateMachine", json_pack("{s:s,s:s}", "name", "x", "definition", "{not json"),
	      "InvalidDefinition", "Invalid State Machine Definition");
	fails("DescribeStateMachine", json_pack("{s:s}", "stateMachineArn", "arn:aws:sqs:x"),
	      "InvalidArn", "Invalid Arn");
	fails("DescribeStateMachine", json_pack("{s:s}", "stateMachineArn", ARN("etl:zero")),
	      "InvalidArn", "version");
	fails("DescribeStateMachine", json_pack("{s:i}", "stateMachineArn", 5),
	      "SerializationException", "stateMachineArn");
	fails("ListStateMachines", json_pack("{s:s}", "nextToken", "zz"), "InvalidToken", "zz");
	fails("UpdateStateMachine", json_pack("{s:s}", "stateMachineArn", ARN("ghost")),
	      "ValidationException", "must be specified");
	fails("UpdateStateMachine",
	      json_pack("{s:s,s:s}", "stateMachineArn", ARN("ghost"), "definition", PASS_DEF),
	      "StateMachineDoesNotExist", "ghost");
	/* nothing half-written: a refused create left no machine behind */
	json_t *l = ok("ListStateMachines", json_object());
	cr_assert_eq(json_array_size(json_object_get(l, "stateMachines")), 0);
	json_decref(l);
	stop();
}

Test(machines, validate_reports_every_problem)
{
	start();
	json_t *v
	        = ok("ValidateStateMachineDefinition", json_pack("{s:s}", "definition", PASS_DEF));
	cr_assert_str_eq(s(v, "result"), "OK");
	cr_assert_eq(json_array_size(json_object_get(v, "diagnostics")), 0);
	json_decref(v);
	v = ok("ValidateStateMachineDefinition",
	       json_pack("{s:s}", "definition",
	                 "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Next\":\"Z\"},"
	                 "\"B\":{\"Type\":\"Bogus\"}}}"));
	cr_assert_str_eq(s(v, "result"), "FAIL");
	json_t *diags = json_object_get(v, "diagnostics");
	cr_assert_geq(json_array_size(diags), 2, "all problems at once: %s", json_dumps(v, 0));
	cr_assert_str_eq(s(json_array_get(diags, 0), "code"), "SCHEMA_VALIDATION_FAILED");
	cr_assert_not_null(s(json_array_get(diags, 0), "location"));
	json_decref(v);
	stop();
}

Test(machines, list_pages_and_survives_sigkill)
{
	start();
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof name, "m%d", i);
		json_decref(ok("CreateStateMachine",
		               json_pack("{s:s,s:s}", "name", name, "definition", PASS_DEF)));
	}
	/* acknowledged means committed: a SIGKILL loses none of them */
	h_kill(&srv);
	char dir[300];
	snprintf(dir, sizeof dir, "%s", srv.data);
	const char *extra[] = { "--data", dir, NULL };
	struct h_server old = srv;
	cr_assert(h_start(&srv, extra), "restart failed");
	const char *token = NULL;
	int seen = 0;
	json_t *page = NULL;
	do {
		json_t *req = json_pack("{s:i}", "maxResults", 2);
		if (token)
			json_object_set_new(req, "nextToken", json_string(token));
		json_t *next = ok("ListStateMachines", req);
		json_decref(page);
		page = next;
		json_t *ms = json_object_get(page, "stateMachines");
		cr_assert_leq(json_array_size(ms), 2);
		for (size_t i = 0; i < json_array_size(ms); i++) {
			char want[16];
			snprintf(want, sizeof want, "m%d", seen++);
			cr_assert_str_eq(s(json_array_get(ms, i), "name"), want);
		}
		token = s(page, "nextToken");
	} while (token);
	json_decref(page);
	cr_assert_eq(seen, 5);
	stop();
	h_cleanup(&old);
}

Test(machines, aws_cli_round_trip)
{
	if (system("command -v aws >/dev/null 2>&1") != 0)
		cr_skip_test("aws CLI is not installed (apt-get install awscli)");
	start();
	char cmd[2048], *out = NULL;
	const char *env
	        = "AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 "
	          "AWS_PAGER= aws --output json";
	snprintf(cmd, sizeof cmd,
	         "%s --endpoint-url http://127.0.0.1:%d stepfunctions create-state-machine "
	         "--name cli --role-arn arn:aws:iam::000000000000:role/x --definition '%s' 2>&1",
	         env, srv.http_port, PASS_DEF);
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, ARN("cli")), "%s", out);
	free(out);
	snprintf(cmd, sizeof cmd,
	         "%s --endpoint-url http://127.0.0.1:%d stepfunctions describe-state-machine "
	         "--state-machine-arn %s 2>&1",
	         env, srv.http_port, ARN("cli"));
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, "\"ACTIVE\""), "%s", out);
	free(out);
	snprintf(cmd, sizeof cmd,
	         "%s --endpoint-url http://127.0.0.1:%d stepfunctions describe-state-machine "
	         "--state-machine-arn %s 2>&1",
	         env, srv.http_port, ARN("nope"));
	cr_assert_neq(h_run(cmd, &out), 0);
	cr_assert(strstr(out, "StateMachineDoesNotExist"), "%s", out);
	free(out);
	stop();
}

Test(machines, sluice_state_machines_command)
{
	start();
	const char *bin = getenv("SLUICE_BIN");
	char cmd[2048], *out = NULL, yaml[400], bad[400];
	snprintf(yaml, sizeof yaml, "%s/m.yaml", srv.dir);
	snprintf(bad, sizeof bad, "%s/bad.yaml", srv.dir);
	FILE *f = fopen(yaml, "w");
	fputs("StartAt: A\nStates:\n  A:\n    Type: Pass\n    Result: {ok: yes, n: 010}\n"
	      "    End: true\n",
	      f);
	fclose(f);
	f = fopen(bad, "w");
	fputs("StartAt: B\nStates:\n  A:\n    Type: Pass\n    End: true\n", f);
	fclose(f);
	char env[128];
	snprintf(env, sizeof env, "SLUICE_ENDPOINT=http://127.0.0.1:%d", srv.http_port);

	snprintf(cmd, sizeof cmd, "%s %s state-machines create demo %s --publish 2>&1", env, bin,
	         yaml);
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	cr_assert(strstr(out, ARN("demo:1")), "%s", out);
	free(out);
	/* YAML became JSON with 1.2 typing: yes is a string, 010 is ten */
	snprintf(cmd, sizeof cmd, "%s %s state-machines describe demo 2>&1", env, bin);
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	json_t *d = json_loads(out, 0, NULL);
	cr_assert_not_null(d, "%s", out);
	json_t *def = json_loads(s(d, "definition"), 0, NULL);
	json_t *res
	        = json_object_get(json_object_get(json_object_get(def, "States"), "A"), "Result");
	cr_assert_str_eq(json_string_value(json_object_get(res, "ok")), "yes");
	cr_assert_eq(json_integer_value(json_object_get(res, "n")), 10);
	json_decref(def);
	json_decref(d);
	free(out);
	/* a bad file is refused locally with FILE:LINE:COLUMN, nothing is sent */
	snprintf(cmd, sizeof cmd, "%s %s state-machines create bad %s 2>&1", env, bin, bad);
	cr_assert_eq(h_run(cmd, &out), 2, "%s", out);
	cr_assert(strstr(out, "bad.yaml:1:10:"), "%s", out);
	free(out);
	snprintf(cmd, sizeof cmd, "%s %s state-machines delete demo 2>&1", env, bin);
	cr_assert_eq(h_run(cmd, &out), 0, "%s", out);
	free(out);
	snprintf(cmd, sizeof cmd, "%s %s state-machines describe demo 2>&1", env, bin);
	cr_assert_eq(h_run(cmd, &out), 2, "%s", out);
	free(out);
	stop();
	snprintf(cmd, sizeof cmd, "SLUICE_ENDPOINT=http://127.0.0.1:1 %s state-machines list 2>&1",
	         bin);
	cr_assert_eq(h_run(cmd, &out), 3, "%s", out);
	cr_assert(strstr(out, "no answer"), "%s", out);
	free(out);
}
