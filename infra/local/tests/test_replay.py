"""The operator's replay of PublishFailures (infra/replay_publish_failures.py) on the emulator, against a fake
invoke API: the batch's records are read back from the stream, filtered and handed to publish as Lambda does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from conftest import PARAMS, FakeLambda, unique

from infra import replay_publish_failures as replay
from infra.local import template as tpl
from infra.local.bootstrap import Bootstrap
from infra.local.bridge import on_failure_message, stream_record

REGION = "us-east-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:publish"
LEDGER = {"PK": {"S": "DEALER#d1#PHONE#+13125550100"}, "SK": {"S": "LEDGER#01J00000000000000000000001"},
          "kind": {"S": "GRANT"}, "at": {"S": "2026-01-02T03:04:05Z"}}
OTHER = {"PK": {"S": "DEALER#d1#PHONE#+13125550100"}, "SK": {"S": "CONSENT"}, "state": {"S": "granted"}}
MESSAGE = {"PK": {"S": "MSG#01J00000000000000000000002"}, "SK": {"S": "MESSAGE"}, "status": {"S": "sent"}}


@dataclass
class Stack:
    name: str
    url: str  # PublishFailures
    arn: str  # the table's stream
    shard: str
    sqs: Any
    ddb: Any
    streams: Any

    def write_and_read(self) -> list[dict[str, Any]]:
        """Writes a ledger entry, an item the filters drop and a message; their records in Lambda's shape."""
        for item in (LEDGER, OTHER, MESSAGE):
            self.ddb.put_item(TableName=f"{self.name}-Table", Item=item)
        iterator = self.streams.get_shard_iterator(StreamArn=self.arn, ShardId=self.shard,
                                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = [stream_record(r, self.arn, REGION)
                   for r in self.streams.get_records(ShardIterator=iterator)["Records"]]
        assert [r["dynamodb"]["Keys"]["SK"]["S"] for r in records] == ["LEDGER#01J00000000000000000000001",
                                                                       "CONSENT", "MESSAGE"]
        return records

    def fail(self, records: list[dict[str, Any]], **info: Any) -> None:
        """PublishFailures gets the bridge's (Lambda's) record of a batch given up on; `info` overrides."""
        body = on_failure_message(records, self.shard, FUNCTION_ARN, 11, 200, "Unhandled")
        body["DDBStreamBatchInfo"].update(info)
        self.sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps(body))

    def counts(self) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def stack(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Stack:
    for k, v in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_ENDPOINT_URL_LAMBDA", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(replay, "EMPTY_READ_PAUSE", 0.01)  # the range past the stream's end ends sooner
    name = unique("replay")
    Bootstrap(tpl.load(), name, PARAMS, endpoint=moto_endpoint, log=lambda line: None).run()
    sqs, ddb, streams = (boto3.client(s, endpoint_url=moto_endpoint) for s in ("sqs", "dynamodb", "dynamodbstreams"))
    arn = ddb.describe_table(TableName=f"{name}-Table")["Table"]["LatestStreamArn"]
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    url = sqs.get_queue_url(QueueName=f"{name}-PublishFailures")["QueueUrl"]
    return Stack(name, url, arn, shard["ShardId"], sqs, ddb, streams)


def run(stack: Stack, fake: FakeLambda, *extra: str) -> int:
    return replay.main(["--queue-url", stack.url, "--function-name", "publish",
                        "--lambda-endpoint", fake.endpoint, *extra])


def test_a_batch_is_replayed_with_the_records_the_filters_keep_and_its_message_deleted(
        stack: Stack, fake_lambda: FakeLambda, capsys: pytest.CaptureFixture[str]) -> None:
    records = stack.write_and_read()
    kept = [records[0], records[2]]  # the ledger entry and the message, not CONSENT
    stack.fail(kept)
    fake_lambda.respond = lambda fn, ev: (200, {"batchItemFailures": []}, {})
    assert run(stack, fake_lambda) == 0
    assert fake_lambda.calls == [("publish", {"Records": kept})]
    (_, event), = fake_lambda.calls
    assert all(r["eventSource"] == "aws:dynamodb" and r["eventSourceARN"] == stack.arn and r["eventVersion"]
               and r["eventName"] == "INSERT" and r["awsRegion"] == REGION for r in event["Records"])
    assert event["Records"][0]["dynamodb"]["NewImage"] == LEDGER
    assert event["Records"][1]["dynamodb"]["NewImage"] == MESSAGE
    assert stack.counts() == (0, 0), "the replayed message is deleted"
    assert capsys.readouterr().out.splitlines()[-1] == \
        "replay: replayed 1 batches, 2 records, 0 kept for a person"


@pytest.mark.parametrize("answer", [
    (200, {"batchItemFailures": [{"itemIdentifier": "x"}]}, {}),
    (200, {"errorType": "PutEventsFailed", "errorMessage": "throttled"}, {"X-Amz-Function-Error": "Unhandled"}),
], ids=["batch-item-failures", "function-error"])
def test_a_failed_invocation_keeps_the_message(stack: Stack, fake_lambda: FakeLambda,
                                               capsys: pytest.CaptureFixture[str], answer: tuple) -> None:
    records = stack.write_and_read()
    stack.fail([records[0], records[2]])
    fake_lambda.respond = lambda fn, ev: answer
    assert run(stack, fake_lambda) == 1
    assert len(fake_lambda.calls) == 1
    assert stack.counts() == (1, 0), "kept, and visible again for the next run and the alarm"
    out = capsys.readouterr()
    assert "kept (run again once the cause is fixed)" in out.err
    assert out.out.splitlines()[-1].startswith("replay: replayed 0 batches, 0 records, 1 kept for a person")


def test_a_batch_no_longer_in_the_stream_keeps_its_message_and_is_reported(
        stack: Stack, fake_lambda: FakeLambda, capsys: pytest.CaptureFixture[str]) -> None:
    records = stack.write_and_read()
    last = int(records[-1]["dynamodb"]["SequenceNumber"])
    stack.fail([records[0], records[2]], startSequenceNumber=str(last + 10), endSequenceNumber=str(last + 11))
    stack.fail([records[0], records[2]], batchSize=3)  # one of its records is gone
    stack.sqs.send_message(QueueUrl=stack.url, MessageBody="not a failure record")
    assert run(stack, fake_lambda) == 1
    assert fake_lambda.calls == [], "nothing is published from a partial batch"
    assert stack.counts() == (3, 0)
    out = capsys.readouterr()
    assert f"NOT IN THE STREAM: 2 of 2 records of shard {stack.shard} sequence {last + 10}..{last + 11}" in out.err
    assert (f"NOT IN THE STREAM: 1 of 3 records of shard {stack.shard} sequence "
            f"{records[0]['dynamodb']['SequenceNumber']}..{records[2]['dynamodb']['SequenceNumber']}") in out.err
    assert "not a DynamoDB stream failure record (not JSON)" in out.err
    assert out.out.splitlines()[-1] == ("replay: replayed 0 batches, 0 records, 3 kept for a person (2 no longer in "
                                        "the stream, 0 failed, 1 not a stream failure record)")


def test_a_trimmed_range_is_reported_as_gone(stack: Stack) -> None:
    """AWS answers GetShardIterator for a trimmed sequence number with TrimmedDataAccessException (moto
    never trims its streams, so the answer is stubbed)."""
    records = stack.write_and_read()
    stack.fail([records[0], records[2]])
    stubbed = boto3.client("dynamodbstreams", region_name=REGION)
    stubber = Stubber(stubbed)
    stubber.add_client_error("get_shard_iterator", service_error_code="TrimmedDataAccessException",
                             service_message="The operation attempted to read past the oldest stream record")
    reports: list[str] = []
    calls: list[Any] = []
    with stubber:
        summary = replay.Replay(stack.sqs, lambda region: stubbed, calls.append,
                                replay.stream_filters(tpl.load()), stack.url, log=lambda line: None,
                                report=reports.append).run(10)
    assert (summary.gone, summary.replayed, calls) == (1, 0, [])
    assert "NOT IN THE STREAM: 2 of 2 records" in reports[0] and "TrimmedDataAccessException" in reports[0]
    assert stack.counts() == (1, 0)


def test_dry_run_lists_and_invokes_nothing(stack: Stack, fake_lambda: FakeLambda,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    records = stack.write_and_read()
    stack.fail([records[0], records[2]])
    assert run(stack, fake_lambda, "--dry-run") == 0
    assert fake_lambda.calls == []
    assert stack.counts() == (1, 0)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"replay: would replay 2 records of shard {stack.shard} sequence "
                             f"{records[0]['dynamodb']['SequenceNumber']}..{records[2]['dynamodb']['SequenceNumber']}")
    assert out[-1] == "replay: would replay 1 batches, 2 records, 0 kept for a person"


def test_an_emulator_endpoint_without_a_lambda_endpoint_is_refused(stack: Stack) -> None:
    """The emulator's own Lambda does not run the functions: locally the invoke API must be given."""
    assert replay.main(["--queue-url", stack.url, "--function-name", "publish"]) == 2
