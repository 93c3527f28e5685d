#!/usr/bin/env python3
"""An activity worker written with boto3 against `sluice serve`, end to end.

Usage: boto3_activity_worker.py http://127.0.0.1:PORT

Creates an activity and a state machine whose Task uses it, starts executions, takes their
tasks with GetActivityTask (long poll), answers with SendTaskHeartbeat / SendTaskSuccess /
SendTaskFailure, and checks the executions' ends and AWS's error classes. Prints one line
per check; exits 0 when all pass, 1 on a failure, 77 (with "GetActivityTask not served yet")
when the server does not serve GetActivityTask.
"""
import json
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::000000000000:role/x"
POLLS = 10  # GetActivityTask calls per task at most (each answered empty within 60 s)


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def client(endpoint):
    # AWS advises a read timeout above GetActivityTask's 60 s hold
    cfg = Config(read_timeout=70, retries={"max_attempts": 1})
    return boto3.client("stepfunctions", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x", config=cfg)


def take_task(sfn, activity_arn):
    for _ in range(POLLS):
        try:
            t = sfn.get_activity_task(activityArn=activity_arn, workerName="boto3-worker")
        except ClientError as e:
            if e.response["Error"]["Code"] == "UnknownOperationException":
                print("SKIP: GetActivityTask not served yet")
                sys.exit(77)
            raise
        if t.get("taskToken"):
            return t["taskToken"], json.loads(t["input"])
    fail("no task after %d polls" % POLLS)


def wait_done(sfn, arn):
    for _ in range(400):  # a hang guard, 20 s
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.05)
    fail("%s still RUNNING" % arn)


def main():
    sfn = client(sys.argv[1])
    act = sfn.create_activity(name="word-count")["activityArn"]
    definition = {
        "StartAt": "Count",
        "States": {
            "Count": {"Type": "Task", "Resource": act, "HeartbeatSeconds": 30,
                      "ResultPath": "$.result", "End": True},
        },
    }
    sm = sfn.create_state_machine(name="py-words", definition=json.dumps(definition),
                                  roleArn=ROLE)["stateMachineArn"]

    # success: count the words of input.text
    ex = sfn.start_execution(stateMachineArn=sm, name="ok",
                             input=json.dumps({"text": "to be or not to be"}))["executionArn"]
    token, task_input = take_task(sfn, act)
    if task_input != {"text": "to be or not to be"}:
        fail("task input %r" % task_input)
    sfn.send_task_heartbeat(taskToken=token)
    sfn.send_task_success(taskToken=token,
                          output=json.dumps({"words": len(task_input["text"].split())}))
    d = wait_done(sfn, ex)
    if d["status"] != "SUCCEEDED":
        fail("status %s" % d["status"])
    out = json.loads(d["output"])
    if out != {"text": "to be or not to be", "result": {"words": 6}}:
        fail("output %r" % out)
    print("success-ok")

    # the token is spent: AWS's modelled exception
    try:
        sfn.send_task_success(taskToken=token, output="{}")
        fail("a spent token was accepted")
    except sfn.exceptions.TaskDoesNotExist:
        print("spent-token-ok")
    try:
        sfn.send_task_success(taskToken="not-a-token", output="{}")
        fail("a malformed token was accepted")
    except sfn.exceptions.InvalidToken:
        print("invalid-token-ok")

    # failure: the error and cause reach the execution
    ex = sfn.start_execution(stateMachineArn=sm, name="bad",
                             input=json.dumps({"text": ""}))["executionArn"]
    token, _ = take_task(sfn, act)
    try:
        sfn.send_task_success(taskToken=token, output="{not json")
        fail("invalid output was accepted")
    except sfn.exceptions.InvalidOutput:
        print("invalid-output-ok")
    sfn.send_task_failure(taskToken=token, error="Words.Empty", cause="no text")
    d = wait_done(sfn, ex)
    if d["status"] != "FAILED" or d.get("error") != "Words.Empty" or d.get("cause") != "no text":
        fail("failed execution %r" % d)
    print("failure-ok")
    print("OK")


if __name__ == "__main__":
    main()
