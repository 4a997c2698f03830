"""The bridge turns queue messages into SQS events and honours batchItemFailures."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time

import boto3
import pytest
from conftest import PARAMS, FakeLambda, unique

from infra.local import template as tpl
from infra.local.bootstrap import Bootstrap
from infra.local.bridge import Bridge


def sqs_client(endpoint: str):  # noqa: ANN201 - boto3 clients are untyped
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture
def stack(moto_endpoint: str) -> tuple[str, dict[str, str]]:
    name = unique("bridge")
    boot = Bootstrap(tpl.load(), name, PARAMS, endpoint=moto_endpoint, log=lambda line: None)
    boot.run()
    return name, boot.environment()


def counts(sqs, url: str) -> tuple[int, int]:  # noqa: ANN001
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def outbound_source() -> tpl.SqsSource:
    (source,) = [s for s in tpl.sqs_sources(tpl.load()) if s.queue == "OutboundQueue"]
    return source


def test_only_failed_records_stay_in_the_queue(moto_endpoint: str, stack: tuple[str, dict[str, str]],
                                               fake_lambda: FakeLambda) -> None:
    name, env = stack
    sqs = sqs_client(moto_endpoint)
    url = env["OUTBOUND_QUEUE_URL"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"messageId": f"m{i}"}),
                         MessageAttributes={"kind": {"DataType": "String", "StringValue": "send"}})
    fake_lambda.respond = lambda fn, ev: (200, {"batchItemFailures": [
        {"itemIdentifier": r["messageId"]} for r in ev["Records"] if json.loads(r["body"])["messageId"] == "m1"]}, {})
    bridge = Bridge(tpl.load(), name, endpoint=moto_endpoint, lambda_endpoint=fake_lambda.endpoint,
                    invoke_timeout=5, log=lambda line: None)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    deadline = time.monotonic() + 10
    while sum(len(ev["Records"]) for _, ev in fake_lambda.calls) < 3 and time.monotonic() < deadline:
        bridge.poll_once(outbound_source(), url, arn)
    records = [r for fn, ev in fake_lambda.calls for r in ev["Records"]]
    assert {fn for fn, _ in fake_lambda.calls} == {"deliver"}
    assert sorted(json.loads(r["body"])["messageId"] for r in records) == ["m0", "m1", "m2"]
    record = records[0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn
    assert record["awsRegion"] == "us-east-1" and record["md5OfBody"]
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} \
        <= set(record["attributes"])
    assert record["messageAttributes"]["kind"]["stringValue"] == "send"
    assert record["messageAttributes"]["kind"]["dataType"] == "String"
    assert counts(sqs, url) == (0, 1), "m1 waits for its visibility timeout; m0 and m2 were deleted"


def test_a_failed_invocation_keeps_every_record(moto_endpoint: str, stack: tuple[str, dict[str, str]],
                                                fake_lambda: FakeLambda) -> None:
    name, env = stack
    sqs = sqs_client(moto_endpoint)
    url = env["OUTBOUND_QUEUE_URL"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"b{i}"} for i in range(2)])
    fake_lambda.respond = lambda fn, ev: (200, {"errorType": "Panic", "errorMessage": "boom"},
                                          {"X-Amz-Function-Error": "Unhandled"})
    bridge = Bridge(tpl.load(), name, endpoint=moto_endpoint, lambda_endpoint=fake_lambda.endpoint,
                    invoke_timeout=5, log=lambda line: None)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    deadline = time.monotonic() + 10
    while sum(len(ev["Records"]) for _, ev in fake_lambda.calls) < 2 and time.monotonic() < deadline:
        bridge.poll_once(outbound_source(), url, arn)
    assert counts(sqs, url) == (0, 2)


def test_threads_poll_and_stop(moto_endpoint: str, stack: tuple[str, dict[str, str]],
                               fake_lambda: FakeLambda) -> None:
    name, env = stack
    sqs = sqs_client(moto_endpoint)
    fake_lambda.respond = lambda fn, ev: (200, {"batchItemFailures": []}, {})
    bridge = Bridge(tpl.load(), name, endpoint=moto_endpoint, lambda_endpoint=fake_lambda.endpoint,
                    schedule_period=0.2, invoke_timeout=5, log=lambda line: None)
    bridge.start()
    try:
        sqs.send_message(QueueUrl=env["AUTOMATION_QUEUE_URL"], MessageBody='{"detail-type":"AutoPayFailed"}')
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            functions = {fn for fn, _ in fake_lambda.calls}
            if {"automate", "dispatch"} <= functions:
                break
            time.sleep(0.05)
        assert {"automate", "dispatch"} <= {fn for fn, _ in fake_lambda.calls}
        scheduled = next(ev for fn, ev in fake_lambda.calls if fn == "dispatch")
        assert scheduled["detail-type"] == "Scheduled Event" and scheduled["source"] == "aws.events"
        assert scheduled["resources"][0].startswith("arn:aws:events:us-east-1:")
    finally:
        started = time.monotonic()
        bridge.stop(timeout=5)
        assert time.monotonic() - started < 5
    assert counts(sqs, env["AUTOMATION_QUEUE_URL"]) == (0, 0)


def test_several_batches_are_in_flight_at_once(moto_endpoint: str, stack: tuple[str, dict[str, str]],
                                               fake_lambda: FakeLambda) -> None:
    """Like Lambda's pollers, the bridge invokes the consumer with several batches concurrently."""
    name, env = stack
    sqs = sqs_client(moto_endpoint)
    url = env["AUTOMATION_QUEUE_URL"]
    for batch in range(3):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"{batch}-{i}"} for i in range(10)])
    lock = threading.Lock()
    state = {"now": 0, "peak": 0, "records": 0}

    def respond(fn: str, event: dict) -> tuple[int, dict, dict]:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.5)
        with lock:
            state["now"] -= 1
            state["records"] += len(event["Records"])
        return 200, {"batchItemFailures": []}, {}

    fake_lambda.respond = respond
    bridge = Bridge(tpl.load(), name, endpoint=moto_endpoint, lambda_endpoint=fake_lambda.endpoint,
                    invoke_timeout=5, log=lambda line: None, pollers=3)
    bridge.start()
    try:
        deadline = time.monotonic() + 15
        while state["records"] < 30:
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
    finally:
        bridge.stop(timeout=5)
    assert state["peak"] >= 2, f"batches were invoked one at a time: {state}"
    assert counts(sqs, url) == (0, 0)


def test_a_stream_batch_given_up_goes_to_the_failure_queue_as_lambda_sends_it(
        moto_endpoint: str, stack: tuple[str, dict[str, str]], fake_lambda: FakeLambda) -> None:
    """After MaximumRetryAttempts the OnFailure queue gets Lambda's invocation record: the batch's place in
    the stream (shard, first and last sequence numbers, arrival times, size, stream) in AWS's layout."""
    name, _ = stack
    (source,) = tpl.stream_sources(tpl.load())
    assert source.on_failure == "PublishFailures"
    source = dataclasses.replace(source, max_retries=1)  # two invocations, not eleven
    fake_lambda.respond = lambda fn, ev: (200, {"errorType": "Panic", "errorMessage": "boom"},
                                          {"X-Amz-Function-Error": "Unhandled"})
    bridge = Bridge(tpl.load(), name, endpoint=moto_endpoint, lambda_endpoint=fake_lambda.endpoint,
                    invoke_timeout=5, log=lambda line: None)
    reading = threading.Event()
    get_shard_iterator = bridge.streams.get_shard_iterator

    def spy(**kwargs: str) -> dict:
        out = get_shard_iterator(**kwargs)
        reading.set()  # the bridge reads from LATEST: write only once it is reading
        return out

    bridge.streams.get_shard_iterator = spy
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    streams = boto3.client("dynamodbstreams", endpoint_url=moto_endpoint, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
    table = f"{name}-Table"
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    sqs = sqs_client(moto_endpoint)
    url = sqs.get_queue_url(QueueName=f"{name}-PublishFailures")["QueueUrl"]
    bridge._spawn(bridge.poll_stream, source)
    try:
        assert reading.wait(10), "the bridge never read the stream"
        for sk in ("LEDGER#01J0000000000000000000001", "CONSENT", "LEDGER#01J0000000000000000000002"):
            ddb.put_item(TableName=table, Item={"PK": {"S": "DEALER#d1#PHONE#+13125550100"}, "SK": {"S": sk}})
        bodies: list[dict] = []
        deadline = time.monotonic() + 15
        while sum(b["DDBStreamBatchInfo"]["batchSize"] for b in bodies) < 2 and time.monotonic() < deadline:
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                bodies.append(json.loads(m["Body"]))
    finally:
        bridge.stop(timeout=5)
    invoked = [r["dynamodb"]["Keys"]["SK"]["S"] for _, ev in fake_lambda.calls for r in ev["Records"]]
    assert "CONSENT" not in invoked and {fn for fn, _ in fake_lambda.calls} == {"publish"}
    assert sum(b["DDBStreamBatchInfo"]["batchSize"] for b in bodies) == 2, bodies
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    sequence = {r["dynamodb"]["Keys"]["SK"]["S"]: r["dynamodb"]["SequenceNumber"]
                for r in streams.get_records(ShardIterator=iterator)["Records"]}
    assert bodies[0]["DDBStreamBatchInfo"]["startSequenceNumber"] == sequence["LEDGER#01J0000000000000000000001"]
    assert bodies[-1]["DDBStreamBatchInfo"]["endSequenceNumber"] == sequence["LEDGER#01J0000000000000000000002"]
    for body in bodies:
        assert set(body) == {"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"}
        request = body["requestContext"]
        assert set(request) == {"requestId", "functionArn", "condition", "approximateInvokeCount"}
        assert request["condition"] == "RetryAttemptsExhausted" and request["approximateInvokeCount"] == 2
        assert request["functionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:publish"
        assert body["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
        assert body["version"] == "1.0"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"])
        info = body["DDBStreamBatchInfo"]
        assert set(info) == {"shardId", "startSequenceNumber", "endSequenceNumber", "approximateArrivalOfFirstRecord",
                             "approximateArrivalOfLastRecord", "batchSize", "streamArn"}
        assert info["shardId"] == shard["ShardId"] and info["streamArn"] == arn
        assert int(info["startSequenceNumber"]) <= int(info["endSequenceNumber"])
        for key in ("approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info[key])
