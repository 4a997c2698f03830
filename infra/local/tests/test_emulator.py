"""The emulator launcher: state kept across a restart, and the moto patches (SQS send cost,
transaction rollback) that change no API answer."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import free_port, start_emulator, unique

from infra.local import emulator

CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


class Emulator:
    """`python -m infra.local.emulator --state FILE` on a fixed port, restartable."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = start_emulator(self.port, "--state", str(self.state))

    def stop(self, sig: int = signal.SIGTERM) -> str:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("the emulator did not stop within 20 s of a SIGTERM")
        self.proc = None
        return err.decode()

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, **CREDENTIALS)


@pytest.fixture()
def restartable(tmp_path: Path) -> Iterator[Emulator]:
    emu = Emulator(tmp_path / "emulator.state")
    emu.start()
    yield emu
    if emu.proc is not None:
        emu.proc.kill()
        emu.proc.wait(5)


def test_state_survives_a_restart(restartable: Emulator) -> None:
    ddb, sqs, events = (restartable.client(s) for s in ("dynamodb", "sqs", "events"))
    table = unique("t")
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}])
    ddb.put_item(TableName=table, Item={"PK": {"S": "consent"}, "status": {"S": "authorized"}})
    queue = sqs.create_queue(QueueName=unique("q"), Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(3)])
    in_flight = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, AttributeNames=["All"])["Messages"][0]
    bus = unique("bus")
    events.create_event_bus(Name=bus)
    events.put_rule(Name="r", EventBusName=bus, EventPattern=json.dumps({"source": ["dms"]}))

    err = restartable.stop()
    assert "state saved" in err
    assert restartable.state.stat().st_size > 0
    restartable.start()
    ddb, sqs, events = (restartable.client(s) for s in ("dynamodb", "sqs", "events"))

    item = ddb.get_item(TableName=table, Key={"PK": {"S": "consent"}}, ConsistentRead=True)["Item"]
    assert item["status"] == {"S": "authorized"}
    # A conditional write still sees the restored item.
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName=table, Item={"PK": {"S": "consent"}}, ConditionExpression="attribute_not_exists(PK)")
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "2"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"  # still in flight, timer kept
    bodies = set()
    for _ in range(5):
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            bodies.add(m["Body"])
    assert bodies == {"m0", "m1", "m2"} - {in_flight["Body"]}
    # The in-flight message's receipt handle from before the restart still deletes it.
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=in_flight["ReceiptHandle"])
    assert sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])[
        "Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "2"
    assert [r["Name"] for r in events.list_rules(EventBusName=bus)["Rules"]] == ["r"]
    # Long polls still wake on new messages (the queue's condition variable was recreated).
    sqs.send_message(QueueUrl=queue, MessageBody="after")
    got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    assert got[0]["Body"] == "after"


def test_without_a_state_file_it_stops_cleanly_and_writes_nothing(tmp_path: Path) -> None:
    proc = start_emulator(free_port(), cwd=tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not any(tmp_path.iterdir())


def test_a_half_written_snapshot_never_replaces_a_good_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state"
    path.write_bytes(b"good")

    def broken() -> bytes:
        raise RuntimeError("disk full")

    monkeypatch.setattr(emulator, "snapshot", broken)
    with pytest.raises(RuntimeError):
        emulator.save(path)
    assert path.read_bytes() == b"good"


def test_patched_sqs_counts_stay_exact() -> None:
    """The patch only skips the counts inside SendMessage; GetQueueAttributes still counts."""
    emulator.patch_sqs()
    emulator.patch_sqs()  # idempotent
    from moto import mock_aws

    with mock_aws():
        sqs = boto3.client("sqs", **CREDENTIALS)
        queue = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "MessageBody": str(i), **({"DelaySeconds": 600} if i == 0 else {})} for i in range(5)])
        sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)
        attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesDelayed"],
                attrs["ApproximateNumberOfMessagesNotVisible"]) == ("3", "1", "1")
        fifo = sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true",
                                                                 "ContentBasedDeduplication": "true"})["QueueUrl"]
        for _ in range(2):
            sqs.send_message(QueueUrl=fifo, MessageBody="same", MessageGroupId="g")
        attrs = sqs.get_queue_attributes(QueueUrl=fifo, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        assert attrs["ApproximateNumberOfMessages"] == "1"  # content-based de-duplication still applies


def test_patched_transactions_still_roll_back_everything() -> None:
    """Only the written partitions are copied for the rollback; a canceled transaction still
    leaves every item as it was (updates, puts to new partitions, deletes), a successful one
    writes them all, and a backup (CreateBackup) is still a full copy."""
    emulator.patch_dynamodb_transactions()
    emulator.patch_dynamodb_transactions()  # idempotent
    from moto import mock_aws

    with mock_aws():
        ddb = boto3.client("dynamodb", **CREDENTIALS)
        ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                               {"AttributeName": "SK", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                                    {"AttributeName": "SK", "KeyType": "RANGE"}])
        for pk in ("A", "B", "C"):
            ddb.put_item(TableName="t", Item={"PK": {"S": pk}, "SK": {"S": "1"}, "n": {"N": "0"}})

        def key(pk: str) -> dict[str, Any]:
            return {"PK": {"S": pk}, "SK": {"S": "1"}}

        def n(pk: str) -> Any:
            item = ddb.get_item(TableName="t", Key=key(pk)).get("Item")
            return item and item["n"]["N"]

        update = {"Update": {"TableName": "t", "Key": key("A"), "UpdateExpression": "SET n = :n",
                             "ExpressionAttributeValues": {":n": {"N": "1"}}}}
        put_new = {"Put": {"TableName": "t", "Item": {**key("D"), "n": {"N": "1"}}}}
        delete = {"Delete": {"TableName": "t", "Key": key("B")}}
        failing = {"ConditionCheck": {"TableName": "t", "Key": key("C"),
                                      "ConditionExpression": "attribute_not_exists(PK)"}}
        with pytest.raises(ddb.exceptions.TransactionCanceledException) as canceled:
            ddb.transact_write_items(TransactItems=[update, put_new, delete, failing])
        reasons = [r["Code"] for r in canceled.value.response["CancellationReasons"]]
        assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
        assert (n("A"), n("B"), n("C"), n("D")) == ("0", "0", "0", None)
        # Two operations on one item: rejected, nothing written.
        with pytest.raises(ddb.exceptions.ClientError):
            ddb.transact_write_items(TransactItems=[update, {"Delete": {"TableName": "t", "Key": key("A")}}])
        assert n("A") == "0"
        ddb.transact_write_items(TransactItems=[update, put_new, delete])
        assert (n("A"), n("B"), n("C"), n("D")) == ("1", None, "0", "1")
        arn = ddb.create_backup(TableName="t", BackupName="before")["BackupDetails"]["BackupArn"]
        ddb.put_item(TableName="t", Item={**key("C"), "n": {"N": "9"}})
        restored = ddb.restore_table_from_backup(TargetTableName="restored", BackupArn=arn)
        assert restored["TableDescription"]["TableName"] == "restored"
        assert ddb.get_item(TableName="restored", Key=key("C"))["Item"]["n"]["N"] == "0"


def test_function_identities_and_secrets_survive_a_restart(restartable: Emulator) -> None:
    """The registered identities (and Secrets Manager) are part of the saved state: after a restart a
    function's key is still held to its policy, and its secret is still there."""
    ddb = restartable.client("dynamodb")
    ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}])
    secret = restartable.client("secretsmanager").create_secret(Name="s", SecretString="v")["ARN"]
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/t"
    doc = {"identities": [{"accessKeyId": "ASIAFUNCTION0000TEST", "roleArn": "arn:aws:iam::123456789012:role/r",
                           "sessionName": "fn", "statements": [
                               {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": [table]},
                               {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": [secret]}]}]}
    req = urllib.request.Request(f"{restartable.endpoint}/_local/iam/identities", data=json.dumps(doc).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    assert json.loads(urllib.request.urlopen(req, timeout=5).read()) == {"registered": 1}  # noqa: S310

    def as_function(service: str) -> Any:
        return boto3.client(service, endpoint_url=restartable.endpoint, region_name="us-east-1",
                            aws_access_key_id="ASIAFUNCTION0000TEST", aws_secret_access_key="x")

    for run in range(2):
        fn = as_function("dynamodb")
        fn.get_item(TableName="t", Key={"PK": {"S": "a"}})
        with pytest.raises(ClientError) as denied:
            fn.put_item(TableName="t", Item={"PK": {"S": "a"}})
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException", f"run {run}"
        assert as_function("secretsmanager").get_secret_value(SecretId="s")["SecretString"] == "v"
        if run == 0:
            restartable.stop()
            restartable.start()
