"""The emulator's DynamoDB fault injection (`--dynamodb-throttle-rate`, `--dynamodb-error-rate`,
`/_local/faults`): a faulted request is answered as DynamoDB answers a throttled request or an internal
error, before it is processed, and the AWS SDKs retry both."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import REPO_ROOT, free_port, start_emulator, unique

from infra.local import emulator

CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
THROTTLED_BODY = {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                  "message": "The level of configured provisioned throughput for the table was exceeded. Consider "
                             "increasing your provisioning level with the UpdateTable API."}
ERROR_BODY = {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "Internal server error"}
FUNCTION_KEY = "ASIAFAULTEDFUNCTION0"


class Launched:
    def __init__(self, port: int, proc: Any, log: Path) -> None:
        self.endpoint = f"http://127.0.0.1:{port}"
        self.proc = proc
        self.log = log

    def client(self, service: str, config: Config | None = None, key: str = "test") -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1", config=config,
                            aws_access_key_id=key, aws_secret_access_key="x")

    def faults(self, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(doc).encode() if doc is not None else None
        req = urllib.request.Request(f"{self.endpoint}/_local/faults", data=data, method="POST" if data else "GET")
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - local
            return json.load(resp)


@pytest.fixture()
def launch(tmp_path: Path) -> Iterator[Any]:
    started: list[Launched] = []

    def start(*args: str) -> Launched:
        port, log = free_port(), tmp_path / f"emulator-{len(started)}.log"
        launched = Launched(port, start_emulator(port, *args, log=log), log)
        started.append(launched)
        return launched

    yield start
    for launched in started:
        launched.proc.terminate()
        launched.proc.wait(10)


def raw_put(endpoint: str, key: str = "test") -> tuple[int, dict[str, str], Any]:
    """A PutItem as an SDK sends it (the signature is not checked), answered as sent."""
    req = urllib.request.Request(endpoint, method="POST", data=json.dumps({
        "TableName": "t", "Item": {"PK": {"S": "raw"}}}).encode(), headers={
        "X-Amz-Target": "DynamoDB_20120810.PutItem", "Content-Type": "application/x-amz-json-1.0",
        "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/dynamodb/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - local
            return resp.status, dict(resp.headers), json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.load(e)


def create_table(ddb: Any, name: str = "t") -> None:
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}])


def error_of(call: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as failed:
        call()
    response = failed.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def test_at_rate_one_every_dynamodb_request_fails_before_it_is_processed(
        launch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """EMULATOR_DYNAMODB_THROTTLE_RATE=1: every DynamoDB request is throttled (400) and nothing changes;
    at an error rate of 1 every one is a 500; DynamoDB Streams, SQS and moto's and our endpoints never
    are; exemptAdmin lets the administrator key through while a function's key still gets faults;
    the faults are counted per operation."""
    monkeypatch.setenv("EMULATOR_DYNAMODB_THROTTLE_RATE", "1")
    emu = launch("--seed", "5")
    assert "DynamoDB faults: throttled 1, internal errors 0 of requests, seed 5" in emu.log.read_text()
    ddb = emu.client("dynamodb", NO_RETRIES)
    status, headers, body = raw_put(emu.endpoint)
    assert (status, body) == (400, THROTTLED_BODY)
    assert headers["Content-Type"] == "application/x-amz-json-1.0" and len(headers["x-amzn-RequestId"]) == 52
    assert error_of(lambda: create_table(ddb)) == ("ProvisionedThroughputExceededException", 400,
                                                   THROTTLED_BODY["message"])
    assert error_of(ddb.list_tables)[0] == "ProvisionedThroughputExceededException"
    emu.client("sqs", NO_RETRIES).list_queues()
    emu.client("dynamodbstreams", NO_RETRIES).list_streams()
    urllib.request.urlopen(f"{emu.endpoint}/moto-api/", timeout=5).read()  # noqa: S310
    urllib.request.urlopen(f"{emu.endpoint}/_local/operations", timeout=5).read()  # noqa: S310

    # The administrator exempted: the harness sets up (a table, an item, a function's identity).
    assert emu.faults({"exemptAdmin": True})["exemptAdmin"] is True
    create_table(ddb)
    ddb.put_item(TableName="t", Item={"PK": {"S": "A"}, "n": {"N": "0"}})
    table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t"
    doc = {"identities": [{"accessKeyId": FUNCTION_KEY, "roleArn": "arn:aws:iam::123456789012:role/r",
                           "sessionName": "fn", "statements": [
                               {"Effect": "Allow", "Action": ["dynamodb:*"], "Resource": [table_arn]}]}]}
    req = urllib.request.Request(f"{emu.endpoint}/_local/iam/identities", data=json.dumps(doc).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).read()  # noqa: S310
    function = emu.client("dynamodb", NO_RETRIES, key=FUNCTION_KEY)
    assert error_of(lambda: function.get_item(TableName="t", Key={"PK": {"S": "A"}}))[:2] == (
        "ProvisionedThroughputExceededException", 400)
    assert raw_put(emu.endpoint, key=FUNCTION_KEY)[0] == 400

    # Nobody exempted: writes of every kind fail and change nothing.
    emu.faults({"exemptAdmin": False})
    writes = [
        lambda: ddb.put_item(TableName="t", Item={"PK": {"S": "A"}, "n": {"N": "9"}}),
        lambda: ddb.update_item(TableName="t", Key={"PK": {"S": "A"}}, UpdateExpression="SET n = :n",
                                ExpressionAttributeValues={":n": {"N": "9"}}),
        lambda: ddb.delete_item(TableName="t", Key={"PK": {"S": "A"}}),
        lambda: ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": {"PK": {"S": "B"}}}}]),
        lambda: ddb.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": {"PK": {"S": "C"}}}}]}),
    ]
    for write in writes:
        assert error_of(write)[:2] == ("ProvisionedThroughputExceededException", 400)
    state = emu.faults({"dynamodbThrottleRate": 0, "dynamodbErrorRate": 1})
    assert (state["dynamodbThrottleRate"], state["dynamodbErrorRate"], state["exemptAdmin"]) == (0, 1, False)
    for write in writes:
        assert error_of(write) == ("InternalServerError", 500, "Internal server error")
    status, _, body = raw_put(emu.endpoint)
    assert (status, body) == (500, ERROR_BODY)

    state = emu.faults({"dynamodbErrorRate": 0})
    assert ddb.scan(TableName="t")["Items"] == [{"PK": {"S": "A"}, "n": {"N": "0"}}]
    assert state["seed"] == 5
    assert (state["throttled"], state["errors"]) == (10, 6)
    ops = state["operations"]
    assert ops["DynamoDB_20120810.PutItem"] == {"throttled": 3, "errors": 2}
    assert ops["DynamoDB_20120810.CreateTable"] == {"throttled": 1, "errors": 0}
    assert ops["DynamoDB_20120810.GetItem"] == {"throttled": 1, "errors": 0}
    assert ops["DynamoDB_20120810.TransactWriteItems"] == {"throttled": 1, "errors": 1}
    assert not any("Streams" in name or "SQS" in name for name in ops)


def test_at_rate_zero_nothing_fails(moto_endpoint: str) -> None:
    def faults() -> dict[str, Any]:
        with urllib.request.urlopen(f"{moto_endpoint}/_local/faults", timeout=5) as resp:  # noqa: S310
            return json.load(resp)

    assert faults()["dynamodbThrottleRate"] == faults()["dynamodbErrorRate"] == 0
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint, config=NO_RETRIES, **CREDENTIALS)
    table = unique("calm")
    create_table(ddb, table)
    for n in range(50):
        ddb.put_item(TableName=table, Item={"PK": {"S": str(n)}})
    assert ddb.scan(TableName=table, Select="COUNT")["Count"] == 50
    state = faults()
    assert (state["throttled"], state["errors"], state["operations"]) == (0, 0, {})


@pytest.mark.parametrize("mode", ["legacy", "standard"])
def test_the_sdk_retries_every_injected_fault(launch: Any, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a throttle rate of 0.3 and an error rate of 0.2 (half the requests fail) boto3's retry handler,
    in both its modes, retries each fault (they are its throttling and transient errors) until the
    request gets through: every write lands, and the retries it counted are the faults injected."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)  # no waiting
    emu = launch("--dynamodb-throttle-rate", "0.3", "--dynamodb-error-rate", "0.2", "--seed", "11")
    ddb = emu.client("dynamodb", Config(retries={"mode": mode, "total_max_attempts": 30}))
    retries = ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                               AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                               KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}]
                               )["ResponseMetadata"]["RetryAttempts"]
    for n in range(20):
        retries += ddb.put_item(TableName="t", Item={"PK": {"S": str(n)}})["ResponseMetadata"]["RetryAttempts"]
    state = emu.faults({"exemptAdmin": True})
    assert state["throttled"] > 0 and state["errors"] > 0
    assert retries == state["throttled"] + state["errors"]
    assert ddb.scan(TableName="t", Select="COUNT")["Count"] == 20


class _App:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.calls += 1
        start_response("200 OK", [])
        return [b"{}"]


def _request(faults: emulator.DynamoDBFaults, target: str, key: str = "test") -> str:
    statuses: list[str] = []
    environ = {"PATH_INFO": "/", "REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": target,
               "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/dynamodb/aws4_request"}
    list(faults(environ, lambda status, headers: statuses.append(status)))
    return statuses[0]


def test_the_faults_are_drawn_by_the_seed_and_only_for_dynamodb() -> None:
    def pattern(seed: int) -> list[str]:
        faults = emulator.DynamoDBFaults(_App(), throttle_rate=0.2, error_rate=0.2, seed=seed)
        return [_request(faults, "DynamoDB_20120810.GetItem") for _ in range(200)]

    first = pattern(1)
    assert first == pattern(1) and first != pattern(2)
    assert {s.split()[0] for s in first} == {"200", "400", "500"}
    assert 20 < first.count("400 Bad Request") < 60 and 20 < first.count("500 Internal Server Error") < 60
    app = _App()
    faults = emulator.DynamoDBFaults(app, throttle_rate=1.0, seed=1)
    for target in ("DynamoDBStreams_20120810.GetRecords", "AmazonSQS.SendMessage", "AWSEvents.PutEvents"):
        assert _request(faults, target) == "200 OK"
    assert _request(faults, "DynamoDB_20120810.PutItem") == "400 Bad Request" and app.calls == 3


def test_a_bad_faults_document_is_refused_and_changes_nothing() -> None:
    faults = emulator.DynamoDBFaults(_App(), throttle_rate=0.1)
    for doc in ({"dynamodbThrottleRate": 1.5}, {"dynamodbErrorRate": "0.1"}, {"throttleRate": 0.5},
                {"exemptAdmin": "yes"}, {"dynamodbErrorRate": 0.5, "dynamodbThrottleRate": -1}, [0.5]):
        with pytest.raises(ValueError):
            faults.configure(doc)
    assert (faults.throttle_rate, faults.error_rate, faults.exempt_admin) == (0.1, 0.0, False)
    statuses: list[str] = []
    body = b"not json"
    environ = {"PATH_INFO": "/_local/faults", "REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body)}
    answer = json.loads(b"".join(faults(environ, lambda status, headers: statuses.append(status))))
    assert statuses == ["400 Bad Request"] and "bad faults document" in answer["message"]


def test_a_bad_rate_is_refused_at_start() -> None:
    for option, value in (("--dynamodb-throttle-rate", "1.5"), ("--dynamodb-error-rate", "often")):
        out = subprocess.run([sys.executable, "-m", "infra.local.emulator", "-p", str(free_port()), option, value],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        assert out.returncode == 2 and f"{option} " in out.stderr and "want a probability" in out.stderr
