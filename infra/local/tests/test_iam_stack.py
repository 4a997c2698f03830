"""The real template on the emulator: each function's calls are allowed or refused by its own Policies.

Every call pattern the functions make (read from shared/adapters/src/*.rs, functions/*/src/main.rs and
the services each function runs) is made here with that function's credentials and must be allowed;
removing from a copy of the template an action or resource the product needs makes that very call fail
with AWS's AccessDenied, and the emulator logs the denial in one line.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import PARAMS, TWILIO_TOKEN, unique, without

from infra.local import template as tpl
from infra.local.bootstrap import Bootstrap

ADMIN = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
DENIED = ("AccessDeniedException", "AccessDenied")


@dataclass
class Stack:
    boot: Bootstrap
    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        return self.boot.environment()

    def client(self, service: str, function: str | None = None) -> Any:
        """A client signed as `function` (its own key), or as an administrator."""
        creds = ADMIN if function is None else {"aws_access_key_id": self.boot.identities()[function].access_key_id,
                                                "aws_secret_access_key": "local", "aws_session_token": "local"}
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1", **creds)

    def resource(self, lid: str, attr: str = "Ref") -> str:
        return self.boot.resolver.resources[lid][attr]


def bootstrap(endpoint: str, template: dict[str, Any] | None = None) -> Stack:
    boot = Bootstrap(template or tpl.load(), unique("iam"), PARAMS, endpoint=endpoint, log=lambda line: None,
                     secrets={"CodeHashKeySecret": "local-code-hash-key", "TwilioAuthTokenSecret": TWILIO_TOKEN})
    boot.run()
    return Stack(boot, endpoint)


@pytest.fixture(scope="module")
def stack(moto_endpoint: str) -> Stack:
    return bootstrap(moto_endpoint)


def outcome(call: Callable[[], Any]) -> str:
    """'ok', or the error code of a refused call."""
    try:
        call()
        return "ok"
    except ClientError as e:
        return str(e.response["Error"]["Code"])


# -------------------------------------------------------------------------------------- the call patterns

def key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def fresh(prefix: str) -> str:
    return f"{prefix}#{uuid.uuid4().hex[:8]}"


def get_item(s: Stack, fn: str) -> Any:
    return s.client("dynamodb", fn).get_item(TableName=s.env["TABLE_NAME"], Key=key(fresh("DEALER"), "PROFILE"))


def put_item(s: Stack, fn: str) -> Any:
    return s.client("dynamodb", fn).put_item(TableName=s.env["TABLE_NAME"], Item=key(fresh("MSG"), "MESSAGE"),
                                             ConditionExpression="attribute_not_exists(PK)")


def update_item(s: Stack, fn: str) -> Any:
    return s.client("dynamodb", fn).update_item(
        TableName=s.env["TABLE_NAME"], Key=key(fresh("RATE"), "1"), UpdateExpression="ADD #c :one",
        ExpressionAttributeNames={"#c": "count"}, ExpressionAttributeValues={":one": {"N": "1"}})


def delete_item(s: Stack, fn: str) -> Any:
    return s.client("dynamodb", fn).delete_item(TableName=s.env["TABLE_NAME"], Key=key(fresh("INBOUND"), "DEDUP"))


def query_table(s: Stack, fn: str) -> Any:
    return s.client("dynamodb", fn).query(
        TableName=s.env["TABLE_NAME"], KeyConditionExpression="PK = :pk AND begins_with(SK, :p)",
        ExpressionAttributeValues={":pk": {"S": fresh("DEALER")}, ":p": {"S": "CONTACT#"}})


def query_index(index: str, pk: str) -> Callable[[Stack, str], Any]:
    def call(s: Stack, fn: str) -> Any:
        return s.client("dynamodb", fn).query(
            TableName=s.env["TABLE_NAME"], IndexName=index, KeyConditionExpression=f"{pk} = :pk",
            ExpressionAttributeValues={":pk": {"S": fresh("X")}}, Select="COUNT" if index == "GSI2" else "ALL_ATTRIBUTES")
    call.__name__ = f"query_{index}"
    return call


def batch_get(s: Stack, fn: str) -> Any:
    return s.client("dynamodb", fn).batch_get_item(RequestItems={s.env["TABLE_NAME"]: {
        "Keys": [key(fresh("DEALER"), "CONSENT"), key(fresh("DEALER"), "PENDING#service")], "ConsistentRead": True}})


def transact(*kinds: str) -> Callable[[Stack, str], Any]:
    """A TransactWriteItems of these item kinds (each on its own new item), as the adapters build them."""
    def call(s: Stack, fn: str) -> Any:
        table = s.env["TABLE_NAME"]
        items = []
        for kind in kinds:
            k = key(fresh(kind.upper()), "X")
            items.append({
                "Put": {"Put": {"TableName": table, "Item": k, "ConditionExpression": "attribute_not_exists(PK)"}},
                "Update": {"Update": {"TableName": table, "Key": k, "UpdateExpression": "SET #s = :s",
                                      "ExpressionAttributeNames": {"#s": "status"},
                                      "ExpressionAttributeValues": {":s": {"S": "sending"}}}},
                "Delete": {"Delete": {"TableName": table, "Key": k}},
                "ConditionCheck": {"ConditionCheck": {"TableName": table, "Key": k,
                                                      "ConditionExpression": "attribute_not_exists(PK)"}},
            }[kind])
        return s.client("dynamodb", fn).transact_write_items(TransactItems=items)
    call.__name__ = "transact_" + "_".join(kinds)
    return call


def send_batch(s: Stack, fn: str) -> Any:
    return s.client("sqs", fn).send_message_batch(QueueUrl=s.env["OUTBOUND_QUEUE_URL"], Entries=[
        {"Id": "0", "MessageBody": json.dumps({"messageId": "m"}), "DelaySeconds": 0}])


def store_webhook(s: Stack, fn: str) -> Any:
    return s.client("sqs", fn).send_message(
        QueueUrl=s.env["INBOUND_QUEUE_URL"], MessageBody=json.dumps({"kind": "reply"}),
        MessageGroupId=fresh("reply"), MessageDeduplicationId=fresh("SM"))


def store_status(s: Stack, fn: str) -> Any:
    return s.client("sqs", fn).send_message(QueueUrl=s.env["STATUS_QUEUE_URL"], MessageBody=json.dumps({"kind": "status"}))


def change_visibility(s: Stack, fn: str, queue: str = "OUTBOUND_QUEUE_URL") -> Any:
    admin = s.client("sqs")
    url = s.env[queue]
    admin.send_message(QueueUrl=url, MessageBody="retry me")
    (message,) = admin.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=2)["Messages"]
    return s.client("sqs", fn).change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                                         VisibilityTimeout=0)


def change_dlq_visibility(s: Stack, fn: str) -> Any:
    """deliver consumes OutboundDLQ too: a record's visibility changes on the queue it came from."""
    return change_visibility(s, fn, "OUTBOUND_DLQ_URL")


def put_events(s: Stack, fn: str) -> Any:
    out = s.client("events", fn).put_events(Entries=[{"EventBusName": s.env["EVENT_BUS_NAME"], "Source": "texting",
                                                      "DetailType": "TextToPayConfirmed", "Detail": "{}"}])
    assert out["FailedEntryCount"] == 0
    return out


def secret(lid: str) -> Callable[[Stack, str], Any]:
    def call(s: Stack, fn: str) -> Any:
        variable = {"CodeHashKeySecret": "CODE_HASH_KEY_SECRET_ARN",
                    "TwilioAuthTokenSecret": "TWILIO_AUTH_TOKEN_SECRET_ARN"}[lid]
        # What the function reads it by (the ARN in its environment); a function without it tries anyway.
        arn = s.boot.functions()[fn]["environment"].get(variable) or s.resource(lid)
        return s.client("secretsmanager", fn).get_secret_value(SecretId=arn)
    call.__name__ = f"get_{lid}"
    return call


# What each function calls, from its ports' adapters (DynamoStore, SqsOutboundQueue, EventBridgePublisher,
# SqsVisibility, the secrets) and the services it runs.
CALLS: dict[str, list[Callable[[Stack, str], Any]]] = {
    "authorize": [  # dealers, contacts, consent + ledger, pending codes, rate limits, code texts
        get_item, put_item, update_item, query_table, batch_get,
        transact("Put", "Put", "Delete"),  # put_dealer (number moved), put_contact (stale links), append (consumed)
        send_batch, secret("CodeHashKeySecret"),
        query_index("GSI2", "GSI2PK"),  # the dealer's ledger by time (consent evidence export)
        query_index("GSI1", "GSI1PK")],  # a deleted contact's waiting texts
    "inbound": [store_webhook, store_status, secret("TwilioAuthTokenSecret")],  # storage first: the signed webhook queued
    "webhooks": [  # acting on stored webhooks: dealer by number, Agree/STOP/START/HELP/PAY/CONFIRM, status reports
        get_item, put_item, delete_item, query_table, query_index("GSI1", "GSI1PK"),
        transact("Put", "Put", "Delete"), send_batch, put_events],
    # consent and the number's opt-out in one BatchGetItem before a send; a capped state's texts: the cap
    # book and its messages (GetItem, BatchGetItem), created with the book moved on (Put, Update, Put), and
    # a person without a book yet counted on GSI1
    "send": [get_item, batch_get, put_item, transact("Put", "Put"), transact("Put", "Update", "Put"), send_batch,
             query_index("GSI1", "GSI1PK"), query_table],
    # the dealer with its number's owner item (and the old number's, given up), its own templates and automations
    "settings": [get_item, put_item, query_table, delete_item, transact("Put", "Put"), transact("Put", "Put", "Delete")],
    "automate": [get_item, batch_get, put_item, transact("Put", "Put"), transact("Put", "Update", "Put"), send_batch,
                 query_index("GSI1", "GSI1PK")],
    "queues": [get_item, put_item, query_table, query_index("GSI2", "GSI2PK")],
    "dispatch": [query_index("Due", "DuePK"), query_index("GSI2", "GSI2PK"), batch_get, put_item, update_item,
                 send_batch],
    "publish": [put_events],  # events for the DMS (the stream is read by the mapping, with this role)
    "deliver": [  # claim (with a ConditionCheck: consent or pending code), record, fail for staff, void a code, carrier blocks
        get_item, put_item, update_item, delete_item, transact("Update", "ConditionCheck", "ConditionCheck"),
        transact("Update"), batch_get,  # the cap book's messages
        transact("Update", "ConditionCheck", "ConditionCheck", "Update"),  # a capped claim moves the book on
        transact("Put", "Put"), change_visibility, change_dlq_visibility,
        secret("TwilioAuthTokenSecret"), secret("CodeHashKeySecret"),
        query_index("GSI1", "GSI1PK"),  # the frequency cap of a person without a cap book yet
        send_batch],  # a text over its number's sending rate goes back on the queue
}


@pytest.mark.parametrize("function, call", [(f, c) for f, calls in CALLS.items() for c in calls],
                         ids=[f"{f}-{c.__name__}" for f, calls in CALLS.items() for c in calls])
def test_the_template_allows_every_call_each_function_makes(stack: Stack, function: str, call: Callable) -> None:
    assert outcome(lambda: call(stack, function)) == "ok"


# Least privilege: what a function does not do, it may not do. (A transaction of Puts only needs
# dynamodb:PutItem, as in IAM: there is no separate transaction action to grant or to lack.)
REFUSED = [
    ("queues", send_batch), ("queues", transact("Delete")), ("queues", secret("CodeHashKeySecret")),
    ("send", query_index("GSI2", "GSI2PK")), ("send", change_visibility), ("send", put_events),
    # a template is deleted by the settings function only: send holds no DeleteItem
    ("send", delete_item),
    ("settings", send_batch), ("settings", secret("CodeHashKeySecret")), ("settings", query_index("GSI1", "GSI1PK")),
    ("settings", update_item), ("settings", put_events),
    ("webhooks", change_dlq_visibility),
    ("authorize", query_index("Due", "DuePK")), ("authorize", secret("TwilioAuthTokenSecret")),
    ("inbound", get_item), ("inbound", put_item), ("inbound", send_batch), ("inbound", put_events),
    ("inbound", secret("CodeHashKeySecret")),
    ("webhooks", update_item), ("webhooks", secret("TwilioAuthTokenSecret")), ("webhooks", store_webhook), ("webhooks", store_status),
    ("dispatch", get_item), ("dispatch", transact("Put", "Delete")), ("send", secret("TwilioAuthTokenSecret")),
    ("publish", get_item), ("publish", send_batch),
    ("deliver", query_table), ("deliver", query_index("Due", "DuePK")), ("automate", put_events),
]


@pytest.mark.parametrize("function, call", REFUSED, ids=[f"{f}-{c.__name__}" for f, c in REFUSED])
def test_what_a_function_does_not_need_is_refused(stack: Stack, function: str, call: Callable) -> None:
    assert outcome(lambda: call(stack, function)) in DENIED


def test_an_unknown_key_is_refused_as_aws_refuses_it(stack: Stack, emulator_log: Path) -> None:
    """Only the administrator key and the registered functions' keys get through: a key the emulator does
    not know (a stale function key, another stack's, a typo) is refused before moto sees the call, as AWS
    refuses an unknown access key id, for every service the functions use."""
    assert outcome(lambda: stack.client("dynamodb").scan(TableName=stack.env["TABLE_NAME"])) == "ok"

    def anyone(service: str) -> Any:
        return boto3.client(service, endpoint_url=stack.endpoint, region_name="us-east-1",
                            aws_access_key_id="AKIASOMEONEELSE00000", aws_secret_access_key="x")

    table, queue = stack.env["TABLE_NAME"], stack.env["OUTBOUND_QUEUE_URL"]
    admin = stack.client("dynamodb")
    admin.put_item(TableName=table, Item=key("UNKNOWN#1", "KEY"))
    calls = {
        "dynamodb": (lambda: anyone("dynamodb").delete_item(TableName=table, Key=key("UNKNOWN#1", "KEY")),
                     "UnrecognizedClientException", 400),
        "sqs": (lambda: anyone("sqs").list_queues(), "InvalidClientTokenId", 403),
        "events": (lambda: anyone("events").put_events(Entries=[{
            "Source": "test", "DetailType": "t", "Detail": "{}", "EventBusName": stack.env["EVENT_BUS_NAME"]}]),
            "UnrecognizedClientException", 400),
        "secretsmanager": (lambda: anyone("secretsmanager").get_secret_value(
            SecretId=stack.resource("CodeHashKeySecret")), "UnrecognizedClientException", 400),
    }
    for service, (call, code, status) in calls.items():
        with pytest.raises(ClientError) as refused:
            call()
        error = refused.value.response["Error"]
        assert (error["Code"], error["Message"], refused.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
            code, "The security token included in the request is invalid.", status), service
    assert "Item" in admin.get_item(TableName=table, Key=key("UNKNOWN#1", "KEY"), ConsistentRead=True), \
        "the refused DeleteItem never reached moto"
    # SQS's query protocol (what older SDKs speak): 403 with the XML ErrorResponse.
    req = urllib.request.Request(stack.endpoint + "/", method="POST", data=(
        f"Action=SendMessage&Version=2012-11-05&MessageBody=x&QueueUrl={queue}").encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Authorization": "AWS4-HMAC-SHA256 Credential=AKIASOMEONEELSE00000/20260101/us-east-1/sqs/"
                                  "aws4_request, SignedHeaders=host, Signature=0"})
    with pytest.raises(urllib.error.HTTPError) as refused_query:
        urllib.request.urlopen(req, timeout=5)  # noqa: S310
    assert refused_query.value.code == 403
    assert "<Code>InvalidClientTokenId</Code>" in refused_query.value.read().decode()
    deadline = time.monotonic() + 5
    while "emulator: iam: refused unknown access key AKIASOMEONEELSE00000: " not in emulator_log.read_text(
            errors="replace"):
        assert time.monotonic() < deadline, "the refusal is logged"
        time.sleep(0.05)


def test_identities_are_registered_per_function(stack: Stack) -> None:
    with urllib.request.urlopen(f"{stack.endpoint}/_local/iam/identities", timeout=5) as resp:  # noqa: S310
        registered = {i["accessKeyId"]: i for i in json.loads(resp.read())["identities"]}
    for name, identity in stack.boot.identities().items():
        doc = registered[identity.access_key_id]
        assert doc["sessionName"] == name
        assert doc["roleArn"].endswith(f":role/{stack.boot.stack}-{tpl.function_settings(tpl.load())[name].logical_id}Role")
    env = stack.boot.functions()["deliver"]["environment"]
    assert env["AWS_ACCESS_KEY_ID"] == stack.boot.identities()["deliver"].access_key_id
    assert env["TWILIO_AUTH_TOKEN_SECRET_ARN"].startswith("arn:aws:secretsmanager:us-east-1:")


# ------------------------------------------------------------------------- a needed grant taken away

REMOVALS = [
    ("DeliverFunction", "dynamodb:ConditionCheckItem", None, "deliver", transact("Update", "ConditionCheck"),
     "dynamodb:ConditionCheckItem on resource: {table}"),
    ("WebhooksFunction", None, "${Table.Arn}/index/*", "webhooks", query_index("GSI1", "GSI1PK"),
     "dynamodb:Query on resource: {table}/index/GSI1"),
    ("DeliverFunction", "dynamodb:DeleteItem", None, "deliver", delete_item, "dynamodb:DeleteItem"),
    ("WebhooksFunction", "events:PutEvents", None, "webhooks", put_events, "events:PutEvents on resource: {bus}"),
    ("InboundFunction", "sqs:SendMessage", None, "inbound", store_webhook, "sqs:SendMessage on resource: {inbound}"),
    ("SendFunction", "sqs:SendMessage", None, "send", send_batch, "sqs:SendMessage on resource: {queue}"),
    ("AuthorizeFunction", "secretsmanager:GetSecretValue", None, "authorize", secret("CodeHashKeySecret"),
     "secretsmanager:GetSecretValue"),
    ("SendFunction", None, "${Table.Arn}/index/GSI1", "send", query_index("GSI1", "GSI1PK"),
     "dynamodb:Query on resource: {table}/index/GSI1"),
    ("DispatchFunction", None, "${Table.Arn}/index/*", "dispatch", query_index("Due", "DuePK"),
     "dynamodb:Query on resource: {table}/index/Due"),
]


@pytest.mark.parametrize("lid, action, resource, function, call, denied", REMOVALS,
                         ids=[f"{r[0]}-{r[1] or r[2]}" for r in REMOVALS])
def test_removing_a_needed_grant_denies_the_call(moto_endpoint: str, emulator_log: Path, stack: Stack, lid: str,
                                                 action: str | None, resource: str | None, function: str,
                                                 call: Callable, denied: str) -> None:
    assert outcome(lambda: call(stack, function)) == "ok", "the template as it is allows the call"
    broken = bootstrap(moto_endpoint, without(tpl.load(), lid, action, resource))
    with pytest.raises(ClientError) as refused:
        call(broken, function)
    error = refused.value.response["Error"]
    assert error["Code"] in DENIED
    names = {"table": broken.resource("Table", "Arn"), "bus": broken.resource("EventBus", "Arn"),
             "queue": broken.resource("OutboundQueue", "Arn"), "inbound": broken.resource("InboundQueue", "Arn")}
    principal = f"arn:aws:sts::123456789012:assumed-role/{broken.boot.stack}-{lid}Role/{function}"
    assert error["Message"].startswith(f"User: {principal} is not authorized to perform: {denied.format(**names)}")
    assert error["Message"].endswith("because no identity-based policy allows the "
                                     f"{error['Message'].split('perform: ')[1].split(' ')[0]} action")
    deadline = time.monotonic() + 5
    while f"emulator: iam: denied {function}: " not in emulator_log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the denial is logged"
        time.sleep(0.05)


def test_a_refused_transaction_writes_nothing(moto_endpoint: str) -> None:
    """deliver's claim (Update + ConditionCheck) without dynamodb:ConditionCheckItem: nothing is written."""
    broken = bootstrap(moto_endpoint, without(tpl.load(), "DeliverFunction", "dynamodb:ConditionCheckItem"))
    table = broken.env["TABLE_NAME"]
    admin = broken.client("dynamodb")
    admin.put_item(TableName=table, Item={**key("MSG#1", "MESSAGE"), "status": {"S": "queued"}})
    claim = [{"Update": {"TableName": table, "Key": key("MSG#1", "MESSAGE"), "UpdateExpression": "SET #s = :sending",
                         "ConditionExpression": "#s = :queued", "ExpressionAttributeNames": {"#s": "status"},
                         "ExpressionAttributeValues": {":sending": {"S": "sending"}, ":queued": {"S": "queued"}}}},
             {"ConditionCheck": {"TableName": table, "Key": key("DEALER#d#PHONE#p", "CONSENT"),
                                 "ConditionExpression": "attribute_not_exists(PK)"}}]
    with pytest.raises(ClientError) as refused:
        broken.client("dynamodb", "deliver").transact_write_items(TransactItems=claim)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    item = admin.get_item(TableName=table, Key=key("MSG#1", "MESSAGE"), ConsistentRead=True)["Item"]
    assert item["status"] == {"S": "queued"}
    broken.client("dynamodb", "deliver").transact_write_items(TransactItems=claim[:1])  # Update alone is granted


def test_the_sqs_query_protocol_is_refused_as_sqs_refuses_it(stack: Stack) -> None:
    key_id = stack.boot.identities()["queues"].access_key_id
    req = urllib.request.Request(stack.endpoint + "/", method="POST", data=(
        f"Action=SendMessage&Version=2012-11-05&MessageBody=x&QueueUrl={stack.env['OUTBOUND_QUEUE_URL']}").encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Authorization": f"AWS4-HMAC-SHA256 Credential={key_id}/20260101/us-east-1/sqs/aws4_request, "
                                  "SignedHeaders=host, Signature=0"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=5)  # noqa: S310
    assert refused.value.code == 403
    body = refused.value.read().decode()
    assert "<Code>AccessDenied</Code>" in body and "sqs:SendMessage on resource: arn:aws:sqs:" in body


def test_secrets_hold_the_local_values_and_follow_changes(moto_endpoint: str, stack: Stack) -> None:
    admin = stack.client("secretsmanager")
    code_arn, token_arn = stack.resource("CodeHashKeySecret"), stack.resource("TwilioAuthTokenSecret")
    assert admin.get_secret_value(SecretId=code_arn)["SecretString"] == "local-code-hash-key"
    assert admin.get_secret_value(SecretId=token_arn)["SecretString"] == TWILIO_TOKEN
    assert code_arn.startswith(f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{stack.boot.stack}-CodeHashKeySecret")
    for function, env in stack.boot.functions().items():
        assert not any(v in (TWILIO_TOKEN, "local-code-hash-key") for v in env["environment"].values())
    # A re-bootstrap with other values (a changed .env.local) updates them; the ARNs stay.
    again = Bootstrap(tpl.load(), stack.boot.stack, PARAMS, endpoint=moto_endpoint, log=lambda line: None,
                      secrets={"CodeHashKeySecret": "new-key", "TwilioAuthTokenSecret": "rotated"})
    again.run()
    assert again.resolver.resources["CodeHashKeySecret"]["Ref"] == code_arn
    assert admin.get_secret_value(SecretId=code_arn)["SecretString"] == "new-key"
    assert admin.get_secret_value(SecretId=token_arn)["SecretString"] == "rotated"


def test_a_generated_secret_is_generated_once(moto_endpoint: str) -> None:
    doc = tpl.load()
    name = unique("gen")
    first = Bootstrap(doc, name, PARAMS, endpoint=moto_endpoint, log=lambda line: None)
    first.run()
    arn = first.resolver.resources["CodeHashKeySecret"]["Ref"]
    admin = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1", **ADMIN)
    value = admin.get_secret_value(SecretId=arn)["SecretString"]
    spec = doc["Resources"]["CodeHashKeySecret"]["Properties"]["GenerateSecretString"]
    assert len(value) == spec["PasswordLength"] and value.isalnum()
    Bootstrap(doc, name, PARAMS, endpoint=moto_endpoint, log=lambda line: None).run()
    assert admin.get_secret_value(SecretId=arn)["SecretString"] == value, "kept across bootstraps"
