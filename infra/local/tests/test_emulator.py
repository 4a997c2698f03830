"""The emulator launcher: state kept across a restart, and the moto patches (SQS send cost,
transaction rollback) that change no API answer."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import boto3
from botocore.config import Config
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
    # End User Messaging's topics and their queue subscription (the two-way channel).
    sns = restartable.client("sns")
    topic = sns.create_topic(Name=unique("replies"))["TopicArn"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

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
    # A topic still delivers to the queue it was subscribed to.
    restartable.client("sns").publish(TopicArn=topic, Message="a reply")
    got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    assert json.loads(got[0]["Body"])["Message"] == "a reply"


def test_no_acknowledged_write_is_lost_across_a_restart(restartable: Emulator) -> None:
    """AWS never loses a write it answered 200. Writers keep going, on kept-alive connections, while
    the emulator is stopped: every write answered before it went away is there after the restart (a
    request it never answered may or may not have happened, as after a timeout on AWS)."""
    ddb, sqs = restartable.client("dynamodb"), restartable.client("sqs")
    table = unique("t")
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}])
    queue = sqs.create_queue(QueueName=unique("q"))["QueueUrl"]
    # A state of some size, so that writing it takes a while (as a run's does): a write let in
    # while the file is written would be answered and lost (seen in a fault run's restart).
    ballast = "x" * 350_000
    for n in range(150):
        ddb.put_item(TableName=table, Item={"PK": {"S": f"ballast-{n}"}, "v": {"S": ballast + str(n)}})
    acked: dict[str, list[int]] = {"dynamodb": [], "sqs": []}
    stop = threading.Event()
    config = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5)

    def write(service: str, worker: int) -> None:
        client = boto3.client(service, endpoint_url=restartable.endpoint, config=config, **CREDENTIALS)
        for n in range(worker * 100_000, worker * 100_000 + 5_000):
            if stop.is_set():
                return
            try:
                if service == "dynamodb":
                    client.put_item(TableName=table, Item={"PK": {"S": str(n)}})
                else:
                    client.send_message(QueueUrl=queue, MessageBody=str(n))
            except Exception:  # noqa: BLE001 - the emulator went away: no answer, no claim
                return
            acked[service].append(n)

    writers = [threading.Thread(target=write, args=(service, w))
               for service in ("dynamodb", "sqs") for w in range(6)]
    for t in writers:
        t.start()
    deadline = time.monotonic() + 20
    while min(len(a) for a in acked.values()) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    restartable.stop()
    stop.set()
    for t in writers:
        t.join(15)
    assert min(len(a) for a in acked.values()) >= 30, "the writers never got going"
    restartable.start()
    ddb, sqs = restartable.client("dynamodb"), restartable.client("sqs")
    kept = set()
    pages = ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    for page in pages:
        kept.update(int(i["PK"]["S"]) for i in page["Items"] if not i["PK"]["S"].startswith("ballast"))
    lost = sorted(set(acked["dynamodb"]) - kept)
    assert not lost, f"{len(lost)} of {len(acked['dynamodb'])} acknowledged puts lost: {lost[:10]}"
    bodies: set[int] = set()
    for _ in range(200):
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=300).get("Messages", [])
        if not got:
            break
        bodies.update(int(m["Body"]) for m in got)
    lost = sorted(set(acked["sqs"]) - bodies)
    assert not lost, f"{len(lost)} of {len(acked['sqs'])} acknowledged sends lost: {lost[:10]}"


def test_a_stop_lets_the_requests_inside_finish_and_answers_none_that_come_after() -> None:
    """The gate a stop closes before the state is saved (`stopping.py`): a request already inside
    finishes before `close` returns, so what it answers is in the snapshot; one that arrives after
    is never answered; a long poll is not waited for."""
    inside, go_on, handled = threading.Event(), threading.Event(), []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/inside":
            inside.set()
            go_on.wait(5)
        handled.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"ok"]

    gate = emulator.stopping.StopGate(app)
    answered: dict[str, Any] = {}

    def call(path: str, target: str = "") -> None:
        answered[path] = gate({"PATH_INFO": path, "HTTP_X_AMZ_TARGET": target}, lambda *a: None)

    threading.Thread(target=call, args=("/inside",), daemon=True).start()
    assert inside.wait(5)
    closing = threading.Thread(target=lambda: answered.setdefault("close", gate.close(timeout=5)), daemon=True)
    closing.start()
    time.sleep(0.2)
    assert closing.is_alive(), "close returned with a request still inside"
    late = threading.Thread(target=call, args=("/late",), daemon=True)
    late.start()
    go_on.set()
    closing.join(5)
    assert answered["close"] == 0 and handled == ["/inside"]
    late.join(0.5)
    assert late.is_alive() and "/late" not in answered and "/late" not in handled
    # A long poll passes a closed gate: it only receives (what it takes comes back after a restart).
    call("/poll", "AmazonSQS.ReceiveMessage")
    assert answered["/poll"] == [b"ok"]


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

    monkeypatch.setattr(emulator.persistence, "snapshot", broken)  # save() looks it up there
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


def test_only_the_administrator_keys_and_registered_functions_get_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """The launcher admits `test`, its environment's AWS_ACCESS_KEY_ID (what `make dev`'s bootstrap signs
    with) and each --admin-key; a request signed with any other key is refused as AWS refuses an unknown
    access key id, and never reaches moto."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADEVSHELLKEY00000")
    port = free_port()
    proc = start_emulator(port, "--admin-key", "AKIALAUNCHERKEY00000")
    endpoint = f"http://127.0.0.1:{port}"
    try:
        def client(service: str, key: str) -> Any:
            return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                                aws_access_key_id=key, aws_secret_access_key="x")

        for key in ("test", "AKIADEVSHELLKEY00000", "AKIALAUNCHERKEY00000"):
            client("dynamodb", key).list_tables()
            client("sqs", key).create_queue(QueueName=f"q-{key}")
        for service, call, code in (("dynamodb", lambda c: c.create_table(
                TableName="nobody", BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}]), "UnrecognizedClientException"),
                                    ("sqs", lambda c: c.create_queue(QueueName="nobody"), "InvalidClientTokenId")):
            with pytest.raises(ClientError) as refused:
                call(client(service, "AKIANOBODYKNOWS00000"))
            assert refused.value.response["Error"]["Code"] == code
        admin = client("dynamodb", "test")
        assert "nobody" not in admin.list_tables()["TableNames"]
        queues = client("sqs", "test").list_queues().get("QueueUrls", [])
        assert len(queues) == 3 and not any(q.endswith("/nobody") for q in queues)
    finally:
        proc.terminate()
        proc.wait(10)


def test_operations_are_counted_with_their_cpu(moto_endpoint: str) -> None:
    """`GET /_local/operations` counts each request under its operation, with the CPU it used."""
    def read() -> dict[str, Any]:
        with urllib.request.urlopen(f"{moto_endpoint}/_local/operations", timeout=5) as resp:  # noqa: S310
            return json.load(resp)

    before = read()
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, **CREDENTIALS)
    for _ in range(3):
        ddb.list_tables()
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, **CREDENTIALS)
    sqs.list_queues()
    after = read()

    def requests(totals: dict[str, Any], op: str) -> int:
        return int(totals["operations"].get(op, {}).get("requests", 0))

    assert requests(after, "DynamoDB_20120810.ListTables") - requests(before, "DynamoDB_20120810.ListTables") == 3
    assert requests(after, "AmazonSQS.ListQueues") - requests(before, "AmazonSQS.ListQueues") == 1
    assert after["operations"]["DynamoDB_20120810.ListTables"]["cpu_seconds"] > 0
    assert after["cpu_seconds"] >= before["cpu_seconds"] > 0
    assert after["dynamodb_wait_seconds"] >= before["dynamodb_wait_seconds"] >= 0


def test_the_service_found_for_a_host_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto searches for a host's service once (it listed its package directory on every request)."""
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    emulator.patch_dispatch()
    emulator.patch_dispatch()  # idempotent
    searches = 0
    original = backends.list_of_moto_modules

    def counted() -> Any:
        nonlocal searches
        searches += 1
        return original()

    monkeypatch.setattr(backends, "list_of_moto_modules", counted)
    app = DomainDispatcherApplication(create_backend_app)
    found = {app.get_backend_for_host(h) for h in ["sqs.eu-west-3.amazonaws.com"] * 3}
    assert found == {"sqs"} and searches <= 1
    assert app.get_backend_for_host("dynamodb.eu-west-3.amazonaws.com") == "dynamodb"
    assert app.get_backend_for_host(None) is None


def test_stream_records_carry_every_attribute_type_as_written(moto_endpoint: str) -> None:
    """GetRecords (answered without moto's slow serializer) gives the events, keys, old and new images
    of every attribute type, creation times and the next iterator as DynamoDB Streams does."""
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, **CREDENTIALS)
    streams = boto3.client("dynamodbstreams", endpoint_url=moto_endpoint, **CREDENTIALS)
    table = unique("streamed")
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                           {"AttributeName": "SK", "AttributeType": "S"}],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    first = {"PK": {"S": "M#1"}, "SK": {"S": "A"}, "n": {"N": "2.5"}, "b": {"B": b"\x00\xff"}, "t": {"BOOL": True},
             "z": {"NULL": True}, "l": {"L": [{"S": "x"}, {"M": {"k": {"N": "1"}}}]}, "ss": {"SS": ["a", "b"]},
             "ns": {"NS": ["1", "2"]}, "bs": {"BS": [b"\x01"]}, "s": {"S": "é ☎ \" \\"}}
    second = {**first, "n": {"N": "3"}}
    written_from = time.time()
    ddb.put_item(TableName=table, Item=first)
    ddb.put_item(TableName=table, Item=second)
    ddb.delete_item(TableName=table, Key={"PK": {"S": "M#1"}, "SK": {"S": "A"}})
    written_to = time.time()

    out = streams.get_records(ShardIterator=iterator, Limit=10)
    records = out["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert all(r["eventSource"] == "aws:dynamodb" and r["awsRegion"] == "us-east-1" for r in records)
    change = [r["dynamodb"] for r in records]
    assert all(c["Keys"] == {"PK": {"S": "M#1"}, "SK": {"S": "A"}} for c in change)
    assert change[0]["NewImage"] == first and "OldImage" not in change[0]
    assert change[1]["OldImage"] == first and change[1]["NewImage"] == second
    assert change[2]["OldImage"] == second and "NewImage" not in change[2]
    assert all(written_from - 1 <= c["ApproximateCreationDateTime"].timestamp() <= written_to + 1 for c in change)
    assert [int(c["SequenceNumber"]) for c in change] == sorted(int(c["SequenceNumber"]) for c in change)
    assert streams.get_records(ShardIterator=out["NextShardIterator"], Limit=10)["Records"] == []


def test_stream_records_answer_as_motos_own_handler_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The patched GetRecords answers what moto's own handler answers (status, content type, body),
    for every attribute type, a Limit smaller than the records, and nothing new."""
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import Client

    emulator.patch_stream_records()
    client = Client(DomainDispatcherApplication(create_backend_app))

    def call(target: str, body: dict[str, Any]) -> Any:
        service = "dynamodb"  # DynamoDB Streams signs as dynamodb too
        headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0",
                   "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20261202/us-east-1/{service}/aws4_request, "
                                    "SignedHeaders=host, Signature=0"}
        return client.post("/", data=json.dumps(body), headers=headers)

    table = unique("wire")
    created = call("DynamoDB_20120810.CreateTable", {
        "TableName": table, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "PK", "AttributeType": "S"}],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}})
    assert created.status_code == 200, created.get_data(as_text=True)
    arn = json.loads(created.get_data())["TableDescription"]["LatestStreamArn"]
    item = {"PK": {"S": "k"}, "n": {"N": "2.5"}, "b": {"B": "AP8="}, "t": {"BOOL": False}, "z": {"NULL": True},
            "l": {"L": [{"S": ""}, {"M": {}}]}, "ss": {"SS": ["a"]}, "ns": {"NS": ["1"]}, "bs": {"BS": ["AQ=="]}}
    for n in ("1", "2"):
        assert call("DynamoDB_20120810.PutItem", {"TableName": table, "Item": {**item, "n": {"N": n}}}).status_code == 200
    shard = json.loads(call("DynamoDBStreams_20120810.DescribeStream", {"StreamArn": arn}).get_data())[
        "StreamDescription"]["Shards"][0]["ShardId"]
    iterator = json.loads(call("DynamoDBStreams_20120810.GetShardIterator", {
        "StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}).get_data())["ShardIterator"]

    def both(body: dict[str, Any]) -> list[tuple[int, str, Any]]:
        answers = []
        for handler in (DynamoDBStreamsHandler.get_records, DynamoDBStreamsHandler._texting_original):
            monkeypatch.setattr(DynamoDBStreamsHandler, "get_records", handler)
            resp = call("DynamoDBStreams_20120810.GetRecords", body)
            answer = json.loads(resp.get_data())
            nexts.append(answer.pop("NextShardIterator"))  # a new iterator each call, in both
            answers.append((resp.status_code, resp.headers.get("Content-Type"), answer))
        monkeypatch.undo()
        return answers

    nexts: list[str] = []
    ours, mocos = both({"ShardIterator": iterator})
    assert len(ours[2]["Records"]) == 2 and ours == mocos
    ours, mocos = both({"ShardIterator": iterator, "Limit": 1})
    assert len(ours[2]["Records"]) == 1 and ours == mocos
    ours, mocos = both({"ShardIterator": nexts[-2], "Limit": 1})
    assert [r["eventName"] for r in ours[2]["Records"]] == ["MODIFY"] and ours == mocos
    ours, mocos = both({"ShardIterator": nexts[-2]})
    assert ours[2]["Records"] == [] and ours == mocos


def test_a_canceled_transaction_streams_nothing(moto_endpoint: str) -> None:
    """DynamoDB streams only what a transaction committed: a canceled one (its Put and Update made,
    then its ConditionCheck failing) leaves no stream record; a committed one leaves exactly its
    own, numbered on from the records before, and an iterator taken before the cancel still reads
    them (the table's shard stays the same one)."""
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, **CREDENTIALS)
    streams = boto3.client("dynamodbstreams", endpoint_url=moto_endpoint, **CREDENTIALS)
    table = unique("txstream")
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    ddb.put_item(TableName=table, Item={"PK": {"S": "C"}, "n": {"N": "0"}})
    ddb.put_item(TableName=table, Item={"PK": {"S": "E"}})
    put = {"Put": {"TableName": table, "Item": {"PK": {"S": "D"}, "n": {"N": "1"}}}}
    update = {"Update": {"TableName": table, "Key": {"PK": {"S": "C"}}, "UpdateExpression": "SET n = :n",
                         "ExpressionAttributeValues": {":n": {"N": "2"}}}}
    failing = {"ConditionCheck": {"TableName": table, "Key": {"PK": {"S": "E"}},
                                  "ConditionExpression": "attribute_not_exists(PK)"}}
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[put, update, failing])
    assert "Item" not in ddb.get_item(TableName=table, Key={"PK": {"S": "D"}})
    assert ddb.get_item(TableName=table, Key={"PK": {"S": "C"}})["Item"]["n"] == {"N": "0"}
    out = streams.get_records(ShardIterator=iterator)
    assert [(r["eventName"], r["dynamodb"]["Keys"]["PK"]["S"]) for r in out["Records"]] == [("INSERT", "C"),
                                                                                            ("INSERT", "E")]
    first = int(out["Records"][-1]["dynamodb"]["SequenceNumber"])

    ddb.transact_write_items(TransactItems=[put, update])
    out = streams.get_records(ShardIterator=out["NextShardIterator"])
    records = out["Records"]
    assert [(r["eventName"], r["dynamodb"]["Keys"]["PK"]["S"]) for r in records] == [("INSERT", "D"), ("MODIFY", "C")]
    assert records[0]["dynamodb"]["NewImage"] == {"PK": {"S": "D"}, "n": {"N": "1"}}
    assert records[1]["dynamodb"]["OldImage"]["n"] == {"N": "0"} and records[1]["dynamodb"]["NewImage"]["n"] == {"N": "2"}
    assert [int(r["dynamodb"]["SequenceNumber"]) for r in records] == [first + 1, first + 2]
    assert streams.get_records(ShardIterator=out["NextShardIterator"])["Records"] == []


def test_transactions_leave_no_table_in_motos_registry() -> None:
    """moto's models register every instance they make (Table.instances_tracked, kept for good); the
    rollback backup of each TransactWriteItems, a Table holding a copy of the item dict, must not be
    one of them. A canceled transaction leaves the table object itself in place (not moto's backup)."""
    from moto import mock_aws
    from moto.backends import get_backend
    from moto.dynamodb.models.table import Table

    emulator.patch_dynamodb_transactions()
    with mock_aws():
        ddb = boto3.client("dynamodb", **CREDENTIALS)
        ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}])
        ddb.put_item(TableName="t", Item={"PK": {"S": "A"}, "n": {"N": "0"}})
        live = get_backend("dynamodb")["123456789012"]["us-east-1"].tables["t"]
        tracked = len(Table.instances_tracked)
        for i in range(100):
            ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": "t", "Item": {"PK": {"S": f"P{i}"}}}},
                {"Update": {"TableName": "t", "Key": {"PK": {"S": "A"}}, "UpdateExpression": "SET n = n + :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}}])
            if i % 10 == 0:
                with pytest.raises(ddb.exceptions.TransactionCanceledException):
                    ddb.transact_write_items(TransactItems=[
                        {"Put": {"TableName": "t", "Item": {"PK": {"S": "X"}}}},
                        {"ConditionCheck": {"TableName": "t", "Key": {"PK": {"S": "A"}},
                                            "ConditionExpression": "attribute_not_exists(PK)"}}])
        assert len(Table.instances_tracked) == tracked
        assert get_backend("dynamodb")["123456789012"]["us-east-1"].tables["t"] is live
        assert ddb.get_item(TableName="t", Key={"PK": {"S": "A"}})["Item"]["n"] == {"N": "100"}
        assert "Item" not in ddb.get_item(TableName="t", Key={"PK": {"S": "X"}})
        assert ddb.scan(TableName="t", Select="COUNT")["Count"] == 101


def test_dynamodb_streams_requests_wait_for_the_dynamodb_lock() -> None:
    """GetRecords runs between DynamoDB requests, never during one (a transaction's records may still
    be taken back); SQS and moto's own endpoints do not wait."""
    served: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        served.append(environ.get("HTTP_X_AMZ_TARGET", environ["PATH_INFO"]))
        start_response("200 OK", [])
        return [b"{}"]

    middleware = emulator.SerializedDynamoDB(app)

    def call(target: str | None, path: str = "/") -> threading.Thread:
        environ = {"PATH_INFO": path, **({"HTTP_X_AMZ_TARGET": target} if target else {})}
        thread = threading.Thread(target=lambda: list(middleware(environ, lambda *a: None)), daemon=True)
        thread.start()
        return thread

    with emulator._DYNAMODB:
        waiting = [call("DynamoDBStreams_20120810.GetRecords"), call("DynamoDB_20120810.GetItem")]
        free = [call("AmazonSQS.ReceiveMessage"), call(None, "/moto-api/")]
        for thread in free:
            thread.join(5)
        time.sleep(0.2)
        assert sorted(served) == ["/moto-api/", "AmazonSQS.ReceiveMessage"]
    for thread in waiting:
        thread.join(5)
    assert len(served) == 4
