"""IAM as the emulator applies it: policy evaluation, the checks each request needs, AWS's denials."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from infra.local import authz, enforcer
from infra.local.iam import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Identity, Statement, access_key_id, statements_of

ACCOUNT = "123456789012"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/s-Table"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:s-OutboundQueue"
BUS = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/s-texting"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:s-TwilioAuthTokenSecret-AbCdEf"


def identity(*statements: dict) -> Identity:
    parsed, ignored = statements_of([{"Version": "2012-10-17", "Statement": list(statements)}])
    return Identity("ASIAEXAMPLE", f"arn:aws:iam::{ACCOUNT}:role/s-DeliverFunctionRole", "deliver", parsed)


POLICY = identity(
    {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
     "Resource": [TABLE, f"{TABLE}/index/*"]},
    {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE},
    {"Effect": "Allow", "Action": "events:Put*", "Resource": BUS},
    {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET},
    {"Effect": "Allow", "Action": "dynamodb:Describe?able", "Resource": "*"},
    {"Effect": "Deny", "Action": "dynamodb:*", "Resource": f"{TABLE}/index/Secret"},
    {"Effect": "Allow", "NotAction": "dynamodb:*", "Resource": "arn:aws:s3:::bucket/*"},
    {"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": TABLE, "Condition": {"Bool": {"x": "true"}}},
)


@pytest.mark.parametrize("action, resource, decision", [
    ("dynamodb:GetItem", TABLE, ALLOW),
    ("DynamoDB:getitem", TABLE, ALLOW),  # actions are case-insensitive
    ("dynamodb:GetItem", TABLE.replace("s-Table", "s-table"), IMPLICIT_DENY),  # resources are not
    ("dynamodb:GetItem", TABLE.replace("s-Table", "other-Table"), IMPLICIT_DENY),
    ("dynamodb:Query", f"{TABLE}/index/GSI1", ALLOW),  # ${Table.Arn}/index/*
    ("dynamodb:Query", f"{TABLE}/index/Secret", EXPLICIT_DENY),  # an explicit deny wins
    ("dynamodb:UpdateItem", TABLE, IMPLICIT_DENY),  # deny by default
    ("dynamodb:DeleteItem", TABLE, IMPLICIT_DENY),
    ("dynamodb:ConditionCheckItem", TABLE, IMPLICIT_DENY),
    ("dynamodb:DescribeTable", TABLE, ALLOW),  # ? matches one character
    ("dynamodb:Scan", TABLE, IMPLICIT_DENY),  # a condition is never met locally
    ("sqs:SendMessage", QUEUE, ALLOW),
    ("sqs:SendMessage", QUEUE.replace("OutboundQueue", "OutboundDLQ"), IMPLICIT_DENY),
    ("sqs:ChangeMessageVisibility", QUEUE, IMPLICIT_DENY),
    ("events:PutEvents", BUS, ALLOW),  # events:Put*
    ("events:PutEvents", BUS.replace("s-texting", "default"), IMPLICIT_DENY),
    ("secretsmanager:GetSecretValue", SECRET, ALLOW),
    ("secretsmanager:GetSecretValue", SECRET.replace("Twilio", "Other"), IMPLICIT_DENY),
    ("s3:GetObject", "arn:aws:s3:::bucket/key", ALLOW),  # NotAction
])
def test_policy_evaluation(action: str, resource: str, decision: str) -> None:
    assert POLICY.decide(action, resource) == decision


def test_wildcard_actions_and_resources_and_not_resource() -> None:
    everything = identity({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:aws:dynamodb:*:*:table/s-*"})
    assert everything.decide("dynamodb:ConditionCheckItem", TABLE) == ALLOW
    assert everything.decide("dynamodb:Query", f"{TABLE}/index/Due") == ALLOW  # * spans '/'
    assert everything.decide("sqs:SendMessage", QUEUE) == IMPLICIT_DENY
    not_resource = identity({"Effect": "Allow", "Action": "sqs:*", "NotResource": QUEUE})
    assert not_resource.decide("sqs:SendMessage", QUEUE) == IMPLICIT_DENY
    assert not_resource.decide("sqs:SendMessage", QUEUE + "2") == ALLOW


def test_statements_that_grant_nothing_locally_are_reported() -> None:
    statements, ignored = statements_of(["AWSLambdaBasicExecutionRole", {"DynamoDBCrudPolicy": {"TableName": "t"}},
                                         {"Statement": {"Effect": "Allow", "Action": "sqs:*", "Resource": "*",
                                                        "Condition": {"Bool": {"aws:SecureTransport": "true"}}}}])
    assert len(statements) == 1 and statements[0].conditional
    assert len(ignored) == 3 and "Condition" in ignored[2]


def test_denial_names_the_principal_action_and_resource() -> None:
    assert POLICY.principal == f"arn:aws:sts::{ACCOUNT}:assumed-role/s-DeliverFunctionRole/deliver"
    assert POLICY.denial("dynamodb:ConditionCheckItem", TABLE, IMPLICIT_DENY) == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/s-DeliverFunctionRole/deliver is not authorized to perform: "
        f"dynamodb:ConditionCheckItem on resource: {TABLE} because no identity-based policy allows the "
        "dynamodb:ConditionCheckItem action")
    assert POLICY.denial("dynamodb:Query", TABLE, EXPLICIT_DENY).endswith(
        "with an explicit deny in an identity-based policy")


def test_identities_round_trip_and_keys_are_stable_per_stack_and_function() -> None:
    assert Identity.from_json(POLICY.to_json()).statements == POLICY.statements
    key = access_key_id("texting-dev", "DeliverFunction")
    assert key == access_key_id("texting-dev", "DeliverFunction") and key.startswith("ASIA") and len(key) == 20
    assert key != access_key_id("texting-test", "DeliverFunction") != access_key_id("texting-dev", "SendFunction")
    assert Statement.parse({"Effect": "Allow", "Action": "a:b", "Resource": "*"}).applies("a:b", "x")


# ------------------------------------------------------------------------------------- request -> checks

def ddb(op: str, params: dict) -> authz.Call:
    return authz.Call("dynamodb", "us-east-1", ACCOUNT, f"DynamoDB_20120810.{op}", json.dumps(params).encode())


def checks(call: authz.Call) -> list[tuple[str, str]]:
    return [(c.action, c.resource) for c in authz.checks(call)]


KEY = {"PK": {"S": "a"}, "SK": {"S": "b"}}


@pytest.mark.parametrize("call, expected", [
    (ddb("GetItem", {"TableName": "s-Table", "Key": KEY}), [("dynamodb:GetItem", TABLE)]),
    (ddb("Query", {"TableName": "s-Table", "KeyConditionExpression": "PK = :p"}), [("dynamodb:Query", TABLE)]),
    (ddb("Query", {"TableName": "s-Table", "IndexName": "GSI1"}), [("dynamodb:Query", f"{TABLE}/index/GSI1")]),
    (ddb("Scan", {"TableName": TABLE, "IndexName": "Due"}), [("dynamodb:Scan", f"{TABLE}/index/Due")]),
    (ddb("TransactWriteItems", {"TransactItems": [
        {"Update": {"TableName": "s-Table", "Key": KEY, "UpdateExpression": "SET a = :a"}},
        {"ConditionCheck": {"TableName": "s-Table", "Key": KEY, "ConditionExpression": "attribute_exists(PK)"}},
        {"Put": {"TableName": "s-Table", "Item": KEY}},
        {"Delete": {"TableName": "other", "Key": KEY}}]}),
     [("dynamodb:UpdateItem", TABLE), ("dynamodb:ConditionCheckItem", TABLE), ("dynamodb:PutItem", TABLE),
      ("dynamodb:DeleteItem", TABLE.replace("s-Table", "other"))]),
    (ddb("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "s-Table", "Key": KEY}}]}),
     [("dynamodb:GetItem", TABLE)]),
    (ddb("BatchGetItem", {"RequestItems": {"s-Table": {"Keys": [KEY]}, "t2": {"Keys": [KEY]}}}),
     [("dynamodb:BatchGetItem", TABLE), ("dynamodb:BatchGetItem", TABLE.replace("s-Table", "t2"))]),
    (ddb("BatchWriteItem", {"RequestItems": {"s-Table": [{"PutRequest": {"Item": KEY}}]}}),
     [("dynamodb:BatchWriteItem", TABLE)]),
    (ddb("ListTables", {}), [("dynamodb:ListTables", "*")]),
    (authz.Call("sqs", "us-east-1", ACCOUNT, "AmazonSQS.SendMessageBatch",
                json.dumps({"QueueUrl": "http://127.0.0.1:4566/123456789012/s-OutboundQueue", "Entries": []}).encode()),
     [("sqs:SendMessage", QUEUE)]),
    (authz.Call("sqs", "us-east-1", ACCOUNT, "AmazonSQS.ChangeMessageVisibility",
                json.dumps({"QueueUrl": "http://localhost:4566/123456789012/s-OutboundQueue"}).encode()),
     [("sqs:ChangeMessageVisibility", QUEUE)]),
    (authz.Call("sqs", "us-east-1", ACCOUNT, "", b"Action=DeleteMessageBatch&QueueUrl=http%3A%2F%2F127.0.0.1%3A4566"
                b"%2F123456789012%2Fs-OutboundQueue&Version=2012-11-05", content_type="application/x-www-form-urlencoded"),
     [("sqs:DeleteMessage", QUEUE)]),
    (authz.Call("sqs", "us-east-1", ACCOUNT, "", b"Action=SendMessage&MessageBody=x",
                path="/123456789012/s-OutboundQueue", content_type="application/x-www-form-urlencoded"),
     [("sqs:SendMessage", QUEUE)]),
    (authz.Call("sqs", "us-east-1", ACCOUNT, "AmazonSQS.GetQueueUrl", b'{"QueueName": "s-OutboundQueue"}'),
     [("sqs:GetQueueUrl", QUEUE)]),
    (authz.Call("events", "us-east-1", ACCOUNT, "AWSEvents.PutEvents", json.dumps({"Entries": [
        {"EventBusName": "s-texting"}, {"EventBusName": BUS}, {"Source": "x"}]}).encode()),
     [("events:PutEvents", BUS.replace("s-texting", "default")), ("events:PutEvents", BUS)]),
    (authz.Call("secretsmanager", "us-east-1", ACCOUNT, "secretsmanager.GetSecretValue",
                json.dumps({"SecretId": SECRET}).encode()), [("secretsmanager:GetSecretValue", SECRET)]),
    (authz.Call("secretsmanager", "us-east-1", ACCOUNT, "secretsmanager.GetSecretValue",
                b'{"SecretId": "s-TwilioAuthTokenSecret"}', secret_arn=lambda name: SECRET),
     [("secretsmanager:GetSecretValue", SECRET)]),
])
def test_request_checks(call: authz.Call, expected: list[tuple[str, str]]) -> None:
    assert checks(call) == expected


def test_the_caller_comes_from_the_signature() -> None:
    header = ("AWS4-HMAC-SHA256 Credential=ASIAKEY/20260101/us-east-1/dynamodb/aws4_request, "
              "SignedHeaders=host;x-amz-date, Signature=abc")
    assert authz.caller({"HTTP_AUTHORIZATION": header}) == authz.Caller("ASIAKEY", "us-east-1", "dynamodb")
    presigned = "X-Amz-Credential=ASIAKEY%2F20260101%2Feu-west-1%2Fsqs%2Faws4_request&X-Amz-Signature=x"
    assert authz.caller({"QUERY_STRING": presigned}) == authz.Caller("ASIAKEY", "eu-west-1", "sqs")
    assert authz.caller({}) is None


def test_denials_have_each_protocols_shape() -> None:
    status, headers, body = authz.denial(ddb("PutItem", {}), "User: x is not authorized")
    assert status == 400 and ("Content-Type", "application/x-amz-json-1.0") in headers
    assert json.loads(body) == {"__type": "com.amazon.coral.service#AccessDeniedException",
                                "Message": "User: x is not authorized"}
    sqs_json = authz.Call("sqs", "us-east-1", ACCOUNT, "AmazonSQS.SendMessage", b"{}")
    status, headers, body = authz.denial(sqs_json, "no")
    assert status == 400 and ("x-amzn-query-error", "AccessDenied;Sender") in headers
    status, headers, body = authz.denial(authz.Call("sqs", "us-east-1", ACCOUNT, "", b"Action=SendMessage"), "a<b")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"<Message>a&lt;b</Message>" in body
    events = authz.Call("events", "us-east-1", ACCOUNT, "AWSEvents.PutEvents", b"{}")
    assert ("Content-Type", "application/x-amz-json-1.1") in authz.denial(events, "no")[1]


def test_unknown_keys_are_refused_in_each_protocols_shape() -> None:
    """AWS's answer to an access key id it does not know: UnrecognizedClientException (HTTP 400) in the
    JSON protocols, InvalidClientTokenId (HTTP 403) from SQS in both of its protocols."""
    invalid = "The security token included in the request is invalid."
    status, headers, body = authz.unrecognized(ddb("PutItem", {}))
    assert status == 400 and ("Content-Type", "application/x-amz-json-1.0") in headers
    assert json.loads(body) == {"__type": "com.amazon.coral.service#UnrecognizedClientException", "message": invalid}
    for target, content_type in (("AWSEvents.PutEvents", "application/x-amz-json-1.1"),
                                 ("secretsmanager.GetSecretValue", "application/x-amz-json-1.1")):
        service = "events" if target.startswith("AWSEvents") else "secretsmanager"
        status, headers, body = authz.unrecognized(authz.Call(service, "us-east-1", ACCOUNT, target, b"{}"))
        assert status == 400 and ("Content-Type", content_type) in headers
        assert json.loads(body)["__type"].endswith("#UnrecognizedClientException")
    sqs_json = authz.Call("sqs", "us-east-1", ACCOUNT, "AmazonSQS.SendMessage", b"{}")
    status, headers, body = authz.unrecognized(sqs_json)
    assert status == 403 and ("x-amzn-query-error", "InvalidClientTokenId;Sender") in headers
    assert json.loads(body) == {"__type": "com.amazon.coral.service#InvalidClientTokenId", "message": invalid}
    status, headers, body = authz.unrecognized(authz.Call("sqs", "us-east-1", ACCOUNT, "", b"Action=SendMessage"))
    assert status == 403 and ("Content-Type", "text/xml") in headers
    assert b"<Code>InvalidClientTokenId</Code>" in body and f"<Message>{invalid}</Message>".encode() in body


# ------------------------------------------------------------------------------------------- the enforcer

def _request(key: str | None, target: str = "DynamoDB_20120810.GetItem", body: bytes = b"{}",
             path: str = "/") -> dict[str, Any]:
    content_type = "application/x-amz-json-1.0" if target else "application/x-www-form-urlencoded"
    environ: dict[str, Any] = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "",
                               "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)),
                               "wsgi.input": io.BytesIO(body)}
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    if key is not None:
        service = "sqs" if target.startswith("AmazonSQS") or not target else "dynamodb"
        environ["HTTP_AUTHORIZATION"] = (f"AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/{service}/"
                                         "aws4_request, SignedHeaders=host, Signature=0")
    return environ


def test_the_enforcer_passes_administrators_and_refuses_unknown_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: `test` (and the keys the launcher admits) pass unchecked, a registered function's key
    is held to its policy, any other key never reaches moto; unsigned requests (moto-api) pass."""
    monkeypatch.setattr(enforcer, "_IDENTITIES", {})
    monkeypatch.setattr(enforcer, "_ADMINS", {enforcer.ADMIN_KEY})
    reached: list[str] = []
    lines: list[str] = []

    def moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        reached.append(environ.get("HTTP_AUTHORIZATION", "unsigned"))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    gate = enforcer.IamEnforcer(moto, log=lines.append)

    def call(environ: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            answer.update(status=status, headers=dict(headers))

        body = b"".join(gate(environ, start_response))
        return answer["status"], answer["headers"], body

    fn = Identity("ASIAFUNCTION", "arn:aws:iam::123456789012:role/r", "fn", [
        Statement("Allow", ("dynamodb:GetItem",), (), ("*",))])
    enforcer.register([fn])
    body = json.dumps({"TableName": "t", "Key": KEY}).encode()

    assert call(_request("test", body=body))[0] == "200 OK"
    assert call(_request(None, target="", path="/moto-api/"))[0] == "200 OK"
    assert call(_request("ASIAFUNCTION", body=body))[0] == "200 OK"
    assert len(reached) == 3
    status, _, denied = call(_request("ASIAFUNCTION", "DynamoDB_20120810.PutItem", body))
    assert status == "400 Bad Request" and b"AccessDeniedException" in denied

    status, headers, refused = call(_request("AKIASOMEONEELSE00000", body=body))
    assert status == "400 Bad Request" and headers["Content-Length"] == str(len(refused))
    assert json.loads(refused)["__type"].endswith("#UnrecognizedClientException")
    status, headers, refused = call(_request("AKIASOMEONEELSE00000", "AmazonSQS.ListQueues"))
    assert status == "403 Forbidden" and headers["x-amzn-query-error"] == "InvalidClientTokenId;Sender"
    assert lines[-1].startswith("emulator: iam: refused unknown access key AKIASOMEONEELSE00000: sqs ListQueues")
    status, _, refused = call(_request("AKIASOMEONEELSE00000", target="", body=b"Action=ListQueues"))
    assert status == "403 Forbidden" and b"<Code>InvalidClientTokenId</Code>" in refused
    assert len(reached) == 3, "no refused request reached moto"
    assert len([line for line in lines if "refused unknown access key" in line]) == 3

    enforcer.admit([None, "", "AKIASOMEONEELSE00000"])  # what the launcher does with --admin-key
    assert call(_request("AKIASOMEONEELSE00000", "DynamoDB_20120810.DeleteTable", body))[0] == "200 OK"
    assert enforcer.admins() == ["AKIASOMEONEELSE00000", "test"]
