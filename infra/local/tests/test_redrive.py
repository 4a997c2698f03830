"""The operator's redrive (infra/redrive.py) of every dead-letter queue of the template, on the emulator: messages
dead-lettered the real way (receives past the queue's maxReceiveCount) arrive back on their source queue, FIFO
included; a wrong queue is a clear error. The move-task path (AWS; moto does not implement it) on a stubbed client."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from conftest import PARAMS, unique

from infra import redrive
from infra.local import template as tpl
from infra.local.bootstrap import Bootstrap

REGION = "us-east-1"
TEMPLATE = tpl.load()
SOURCES = redrive.dead_letter_sources(TEMPLATE)
# The template's queues as they are defined there, without the rest of the stack (whose other resources the
# tests do not need).
QUEUES_ONLY = {**TEMPLATE, "Resources": {lid: res for lid, res in TEMPLATE["Resources"].items()
                                         if res.get("Type") == "AWS::SQS::Queue"}}


@dataclass
class Stack:
    name: str
    sqs: Any

    def url(self, lid: str) -> str:
        return self.sqs.get_queue_url(QueueName=tpl.queue_name(TEMPLATE, self.name, lid))["QueueUrl"]

    def fifo(self, lid: str) -> bool:
        return bool(TEMPLATE["Resources"][lid]["Properties"].get("FifoQueue"))

    def dead_letter(self, dlq: str, body: str, group: str = "g1", dedup: str | None = None) -> str:
        """Sends `body` to the DLQ's source queue and receives it until the redrive policy moves it to the DLQ,
        as a failing consumer would; its MessageId."""
        source = SOURCES[dlq]
        url = self.url(source)
        extra = {"MessageGroupId": group, "MessageDeduplicationId": dedup or body} if self.fifo(source) else {}
        sent = self.sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "test"}}, **extra)
        for _ in range(20):
            got = self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, MaxNumberOfMessages=10).get("Messages")
            if not got:
                break
        else:
            pytest.fail(f"{body} was never dead-lettered")
        return sent["MessageId"]

    def drain(self, lid: str) -> list[dict[str, Any]]:
        url, out = self.url(lid), []
        for _ in range(10):
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                           MessageAttributeNames=["All"]).get("Messages", [])
            if not got:
                break
            out += got
            self.sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)])
        return out

    def visible(self, lid: str) -> int:
        return redrive.counts(self.sqs, self.url(lid))[0]


@pytest.fixture
def stack(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Stack:
    for k, v in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    name = unique("redrive")
    Bootstrap(QUEUES_ONLY, name, PARAMS, endpoint=moto_endpoint, log=lambda line: None).run()
    return Stack(name, boto3.client("sqs", endpoint_url=moto_endpoint))


def test_the_template_has_the_dead_letter_queues_the_tool_knows() -> None:
    assert SOURCES == {"OutboundDLQ": "OutboundQueue", "AutomationDLQ": "AutomationQueue",
                       "InboundDLQ": "InboundQueue", "StatusDLQ": "StatusQueue", "EumDLQ": "EumQueue"}


@pytest.mark.parametrize("dlq", sorted(SOURCES))
def test_every_dead_letter_queue_is_redriven_to_its_source(stack: Stack, dlq: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(3):
        stack.dead_letter(dlq, f"{dlq} message {n}")
    assert stack.visible(dlq) == 3
    assert redrive.main([dlq, "--stack", stack.name]) == 0
    out = capsys.readouterr().out
    assert "does not implement StartMessageMoveTask (moto does not): moving with receive, send, delete" in out
    assert f"CloudFormation does not know stack {stack.name}: using the local stack's queue" in out
    assert f"moved 3 messages from {stack.url(dlq)} to {stack.url(SOURCES[dlq])}" in out
    arrived = stack.drain(SOURCES[dlq])
    assert sorted(m["Body"] for m in arrived) == [f"{dlq} message {n}" for n in range(3)]
    assert all(m["MessageAttributes"]["kind"]["StringValue"] == "test" for m in arrived), "attributes kept"
    assert stack.visible(dlq) == 0 and redrive.counts(stack.sqs, stack.url(dlq)) == (0, 0)


def test_fifo_keeps_group_and_order_and_is_not_dropped_as_its_originals_duplicate(
        stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    # Two replies of one person and one of another, dead-lettered within seconds of their first send: in AWS
    # the source queue still remembers their de-duplication ids for 5 minutes (moto forgets an id once its
    # message is gone), so the redriven copies must carry other ids.
    ids = {"STOP": stack.dead_letter("InboundDLQ", "STOP", group="dealer#person-a", dedup="reply:SM1"),
           "START": stack.dead_letter("InboundDLQ", "START", group="dealer#person-a", dedup="reply:SM2"),
           "Agree": stack.dead_letter("InboundDLQ", "Agree", group="dealer#person-b", dedup="reply:SM3")}

    assert redrive.main([stack.url("InboundDLQ")]) == 0
    arrived = stack.drain("InboundQueue")
    by_group: dict[str, list[str]] = {}
    for m in arrived:
        by_group.setdefault(m["Attributes"]["MessageGroupId"], []).append(m["Body"])
        assert m["Attributes"]["MessageDeduplicationId"] == ids[m["Body"]], \
            "de-duplicated by the dead-letter copy's MessageId, as AWS itself does, never by the original's id"
    assert by_group == {"dealer#person-a": ["STOP", "START"], "dealer#person-b": ["Agree"]}, "groups and order kept"
    assert "moved 3 messages" in capsys.readouterr().out


def test_a_run_stopped_between_send_and_delete_then_run_again_queues_nothing_twice(
        stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    stack.dead_letter("InboundDLQ", "STOP", group="dealer#person-a", dedup="reply:SM1")
    stack.dead_letter("InboundDLQ", "HELP", group="dealer#person-b", dedup="reply:SM2")
    real_client = boto3.client

    class CutShort:
        """The SQS client of a run stopped after its sends: every delete fails."""

        def __init__(self, client: Any) -> None:
            self.client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

        def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "cut short"}}, "DeleteMessageBatch")

    monkeypatch.setattr(boto3, "client", lambda service, **kw: CutShort(real_client(service, **kw))
                        if service == "sqs" else real_client(service, **kw))
    assert redrive.main(["InboundDLQ", "--stack", stack.name]) == 1
    captured = capsys.readouterr()
    assert "its delete from the dead-letter queue failed" in captured.err and "cut short" in captured.err
    assert "2 moved but not deleted" in captured.out
    assert stack.visible("InboundDLQ") == 2, "still in the DLQ, visible again for a re-run"

    monkeypatch.setattr(boto3, "client", real_client)
    assert redrive.main(["InboundDLQ", "--stack", stack.name]) == 0
    assert sorted(m["Body"] for m in stack.drain("InboundQueue")) == ["HELP", "STOP"], "each once"
    assert stack.visible("InboundDLQ") == 0


def test_a_dry_run_lists_and_moves_nothing(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    ids = [stack.dead_letter("StatusDLQ", f"status {n}") for n in range(2)]
    assert redrive.main(["StatusDLQ", "--stack", stack.name, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert all(f"would move message {i} (receive count " in out for i in ids)
    assert "status 0" not in out, "never a message's body"
    assert "would move 2 messages" in out
    assert stack.visible("StatusDLQ") == 2 and stack.visible("StatusQueue") == 0


def test_max_moves_at_most_that_many(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(3):
        stack.dead_letter("AutomationDLQ", f"automation {n}")
    assert redrive.main(["AutomationDLQ", "--stack", stack.name, "--max", "2"]) == 0
    out = capsys.readouterr().out
    assert "--max given: moving with receive, send, delete" in out and "moved 2 messages" in out
    assert stack.visible("AutomationDLQ") == 1 and len(stack.drain("AutomationQueue")) == 2


def test_by_name_and_the_move_task_method_where_it_is_missing(stack: Stack,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    stack.dead_letter("OutboundDLQ", "outbound")
    assert redrive.main(["InboundDLQ", "--stack", stack.name, "--method", "move-task"]) == 2
    assert "does not implement StartMessageMoveTask; use --method copy" in capsys.readouterr().err
    assert redrive.main([f"{stack.name}-OutboundDLQ", "--method", "copy"]) == 0
    assert [m["Body"] for m in stack.drain("OutboundQueue")] == ["outbound"]


@pytest.mark.parametrize("args, problem", [
    (["NoSuchDLQ"], "there is no queue 'NoSuchDLQ'; give a dead-letter queue's logical id (AutomationDLQ, "
                    "EumDLQ, InboundDLQ, OutboundDLQ, StatusDLQ) with STACK=, or its URL or name"),
    (["InboundDLQ"], "QUEUE=InboundDLQ is the template's logical id: give the stack too"),
    (["InboundDLQ", "--stack", "no-such-stack"], "no stack no-such-stack: CloudFormation does not know it, and "
                                                 "there is no local stack's queue no-such-stack-InboundDLQ.fifo"),
    (["OutboundQueue", "--stack", "{stack}"], "OutboundQueue is not a dead-letter queue; its dead-letter queue is "
                                              "OutboundDLQ: make redrive QUEUE=OutboundDLQ"),
    (["Table", "--stack", "{stack}"], "Table is a AWS::DynamoDB::Table, not a queue"),
    (["PublishFailures", "--stack", "{stack}"], "PublishFailures is not a dead-letter queue of a queue"),
    (["{stack}-PublishFailures"], "make replay-publish-failures QUEUE_URL=<its URL>"),
    (["{stack}-InboundQueue.fifo"], "is not the dead-letter queue of any queue"),
    (["http://127.0.0.1:1/000000000000/gone"], "there is no queue http://127.0.0.1:1/000000000000/gone"),
])
def test_a_queue_that_cannot_be_redriven_is_a_clear_error(stack: Stack, capsys: pytest.CaptureFixture[str],
                                                          args: list[str], problem: str) -> None:
    code = redrive.main([a.replace("{stack}", stack.name) for a in args])
    assert code in (1, 2)
    assert problem in capsys.readouterr().err


# --- the move task (AWS), on a stubbed client --------------------------------------------------------------


DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/texting-InboundDLQ-abc.fifo"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:texting-InboundDLQ-abc.fifo"
SOURCE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/texting-InboundQueue-abc.fifo"
SOURCE_ARN = "arn:aws:sqs:us-east-1:123456789012:texting-InboundQueue-abc.fifo"


def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("sqs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x",
                          endpoint_url="https://sqs.us-east-1.amazonaws.com")
    return client, Stubber(client)


def counts_answer(stub: Stubber, visible: int) -> None:
    stub.add_response("get_queue_attributes", {"Attributes": {
        "ApproximateNumberOfMessages": str(visible), "ApproximateNumberOfMessagesNotVisible": "0"}})


def task(status: str, moved: int, **extra: Any) -> dict[str, Any]:
    return {"Results": [{"Status": status, "SourceArn": DLQ_ARN, "DestinationArn": SOURCE_ARN,
                         "ApproximateNumberOfMessagesMoved": moved, "ApproximateNumberOfMessagesToMove": 4,
                         "StartedTimestamp": 1796612549498, **extra}]}


def test_the_move_task_is_started_to_the_source_and_watched_to_completion(
        capsys: pytest.CaptureFixture[str]) -> None:
    client, stub = stubbed()
    counts_answer(stub, 4)
    stub.add_response("get_queue_attributes", {"Attributes": {"QueueArn": SOURCE_ARN}},
                      {"QueueUrl": SOURCE_URL, "AttributeNames": ["QueueArn"]})
    stub.add_response("start_message_move_task", {"TaskHandle": "h1"},
                      {"SourceArn": DLQ_ARN, "DestinationArn": SOURCE_ARN, "MaxNumberOfMessagesPerSecond": 10})
    stub.add_response("list_message_move_tasks", task("RUNNING", 1, TaskHandle="h1"))
    stub.add_response("list_message_move_tasks", task("RUNNING", 1, TaskHandle="h1"))
    stub.add_response("list_message_move_tasks", task("COMPLETED", 4))
    with stub:
        q = redrive.Queues(DLQ_URL, DLQ_ARN, True, [SOURCE_URL])
        assert redrive.Redrive(client, q).move_task([], 10, 60, sleep=lambda s: None) == 0
    stub.assert_no_pending_responses()
    out = capsys.readouterr().out
    assert "started a message move task (StartMessageMoveTask)" in out and "at 10/s" in out
    assert out.count("RUNNING: 1 of 4") == 1 and "COMPLETED: 4 of 4 messages moved" in out


def test_a_running_task_is_watched_not_started_twice_and_a_failed_one_is_an_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    client, stub = stubbed()
    counts_answer(stub, 4)
    stub.add_response("list_message_move_tasks", task("FAILED", 2, FailureReason="AccessDenied on the destination"))
    with stub:
        q = redrive.Queues(DLQ_URL, DLQ_ARN, True, [SOURCE_URL])
        running = task("RUNNING", 1, TaskHandle="h0")["Results"]
        assert redrive.Redrive(client, q).move_task(running, None, 60, sleep=lambda s: None) == 1
    stub.assert_no_pending_responses()
    captured = capsys.readouterr()
    assert "already running" in captured.out and "ended FAILED: AccessDenied on the destination" in captured.err


def test_a_task_still_running_after_the_wait_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    client, stub = stubbed()
    counts_answer(stub, 4)
    stub.add_response("list_message_move_tasks", task("RUNNING", 1, TaskHandle="h0"))
    with stub:
        q = redrive.Queues(DLQ_URL, DLQ_ARN, True, [SOURCE_URL])
        assert redrive.Redrive(client, q).move_task(task("RUNNING", 1)["Results"], None, 0) == 0
    out = capsys.readouterr().out
    assert f"aws sqs list-message-move-tasks --source-arn {DLQ_ARN}" in out
    assert "aws sqs cancel-message-move-task --task-handle h0" in out


def test_which_endpoints_implement_move_tasks() -> None:
    client, stub = stubbed()
    stub.add_client_error("list_message_move_tasks", "500", "<html>Internal Server Error</html>", 500)
    stub.add_client_error("list_message_move_tasks", "AccessDenied", "not allowed", 403)
    stub.add_response("list_message_move_tasks", {"Results": []})
    with stub:
        assert redrive.move_tasks_supported(client, DLQ_ARN) == (False, [])
        with pytest.raises(ClientError):
            redrive.move_tasks_supported(client, DLQ_ARN)
        assert redrive.move_tasks_supported(client, DLQ_ARN) == (True, [])


def test_when_is_utc() -> None:
    assert redrive.when("1796612549498") == dt.datetime(2026, 12, 7, 3, 2, 29, tzinfo=dt.timezone.utc).isoformat()
    assert json.dumps(redrive.when(None)) == '"?"'
