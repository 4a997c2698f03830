"""What IAM checks an AWS API request needs, and how the service answers when one is refused.

`caller(environ)` reads the access key id, region and service from a request's SigV4 signature.
`checks(call)` maps the request to the (action, resource ARN) pairs IAM evaluates for it:

- DynamoDB (JSON, X-Amz-Target `DynamoDB_20120810.Op`): `dynamodb:Op` on the table ARN; Query and Scan
  with an IndexName on `.../table/T/index/I`; BatchGetItem/BatchWriteItem once per table;
  TransactWriteItems one check per item (Put -> PutItem, Update -> UpdateItem, Delete -> DeleteItem,
  ConditionCheck -> ConditionCheckItem) and TransactGetItems one GetItem per item, as IAM authorizes
  transactions (there is no separate transaction action to grant).
- SQS, JSON (`AmazonSQS.Op`) or query (`Action=Op`) protocol: `sqs:Op` on the queue ARN (from QueueUrl,
  or QueueName for CreateQueue/GetQueueUrl); the batch calls need the single actions (SendMessageBatch ->
  sqs:SendMessage, DeleteMessageBatch -> sqs:DeleteMessage, ChangeMessageVisibilityBatch ->
  sqs:ChangeMessageVisibility).
- EventBridge PutEvents: `events:PutEvents` on each entry's bus (EventBusName, name or ARN; the default
  bus when absent); other EventBridge calls on their named bus or rule.
- Secrets Manager: `secretsmanager:Op` on the secret's ARN (SecretId is an ARN or a name).
- End User Messaging SMS (`PinpointSMSVoiceV2.Op`, signed for `sms-voice`): SendTextMessage on its
  origination identity (a number, its id or ARN; a number's ARN is the fake carrier's) and on its
  configuration set; the number, opt-out list or configuration set the other calls name.
- Anything else: `service:Op` on `*`.

`denial(call, message)` is the answer AWS gives for a refused call in that protocol, and
`unrecognized(call)` its answer to a request signed with an access key id it does not know.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs, urlsplit

from infra.local.fake_carrier.sms_voice import phone_number_id

JSON, QUERY = "json", "query"

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


@dataclass(frozen=True)
class Caller:
    access_key_id: str
    region: str
    service: str  # the SigV4 signing name: dynamodb, sqs, events, secretsmanager, ...


def caller(environ: Mapping[str, Any]) -> Caller | None:
    """Who signed the request (Authorization header, or X-Amz-Credential for presigned URLs)."""
    m = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if m is None:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        credential = (query.get("X-Amz-Credential") or [""])[0]
        m = re.fullmatch(r"([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request", credential)
    return Caller(*m.groups()) if m else None


@dataclass(frozen=True)
class Check:
    action: str
    resource: str


@dataclass
class Call:
    """One request as the emulator received it."""

    service: str
    region: str
    account: str
    target: str  # X-Amz-Target ("" for the query protocol)
    body: bytes
    path: str = "/"
    query: str = ""
    content_type: str = ""
    secret_arn: Callable[[str], str | None] = field(default=lambda name: None)

    @property
    def protocol(self) -> str:
        return JSON if self.target else QUERY

    def operation_and_params(self) -> tuple[str, dict[str, Any]]:
        if self.target:
            try:
                params = json.loads(self.body or b"{}")
            except ValueError:
                params = {}
            return self.target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {}
        form = {k: v[0] for k, v in parse_qs(self.query).items()}
        if "x-www-form-urlencoded" in self.content_type or not self.content_type:
            form.update({k: v[0] for k, v in parse_qs(self.body.decode(errors="replace")).items()})
        return form.get("Action", ""), form

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"


# --------------------------------------------------------------------------------------------- DynamoDB

_TRANSACT_ACTIONS = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
                     "ConditionCheck": "dynamodb:ConditionCheckItem", "Get": "dynamodb:GetItem"}


def _table_arn(call: Call, name: str) -> str:
    return name if name.startswith("arn:") else call.arn("dynamodb", f"table/{name}")


def _dynamodb(call: Call, op: str, params: Mapping[str, Any]) -> list[Check]:
    if op in ("TransactWriteItems", "TransactGetItems"):
        out = []
        for item in params.get("TransactItems") or []:
            for kind, spec in item.items():
                if kind in _TRANSACT_ACTIONS and isinstance(spec, dict):
                    out.append(Check(_TRANSACT_ACTIONS[kind], _table_arn(call, str(spec.get("TableName", "")))))
        return out
    if op in ("BatchGetItem", "BatchWriteItem"):
        return [Check(f"dynamodb:{op}", _table_arn(call, t)) for t in params.get("RequestItems") or {}]
    table = params.get("TableName") or params.get("TableArn") or params.get("ResourceArn")
    if not table:
        return [Check(f"dynamodb:{op}", "*")]
    resource = _table_arn(call, str(table))
    if op in ("Query", "Scan") and params.get("IndexName"):
        resource = f"{resource}/index/{params['IndexName']}"
    return [Check(f"dynamodb:{op}", resource)]


# --------------------------------------------------------------------------------------------------- SQS

_SQS_BATCH = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
              "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


def _sqs(call: Call, op: str, params: Mapping[str, Any]) -> list[Check]:
    action = "sqs:" + _SQS_BATCH.get(op, op)
    url = params.get("QueueUrl")
    if not url and call.protocol == QUERY and call.path.count("/") >= 2:
        url = call.path  # the query protocol may address the queue by the request path
    if url:
        name = urlsplit(str(url)).path.rstrip("/").rsplit("/", 1)[-1]
    else:
        name = params.get("QueueName")
    return [Check(action, call.arn("sqs", str(name)) if name else "*")]


# ------------------------------------------------------------------------------------------- EventBridge

def _bus_arn(call: Call, bus: str | None) -> str:
    bus = bus or "default"
    return bus if bus.startswith("arn:") else call.arn("events", f"event-bus/{bus}")


def _events(call: Call, op: str, params: Mapping[str, Any]) -> list[Check]:
    if op == "PutEvents":
        buses = {_bus_arn(call, e.get("EventBusName")) for e in params.get("Entries") or [] if isinstance(e, dict)}
        return [Check("events:PutEvents", arn) for arn in sorted(buses)]
    rule = params.get("Rule") or (params.get("Name") if "Rule" in op else None)
    if rule:
        bus = params.get("EventBusName")
        prefix = "" if not bus or bus == "default" else f"{bus.rsplit('/', 1)[-1]}/"
        return [Check(f"events:{op}", call.arn("events", f"rule/{prefix}{rule}"))]
    if params.get("EventBusName") or params.get("Name"):
        return [Check(f"events:{op}", _bus_arn(call, params.get("EventBusName") or params.get("Name")))]
    return [Check(f"events:{op}", "*")]


# ---------------------------------------------------------------------------------------- SecretsManager

def _secretsmanager(call: Call, op: str, params: Mapping[str, Any]) -> list[Check]:
    secret = params.get("SecretId")
    if not secret:
        return [Check(f"secretsmanager:{op}", "*")]
    secret = str(secret)
    arn = secret if secret.startswith("arn:") else (call.secret_arn(secret) or call.arn("secretsmanager",
                                                                                        f"secret:{secret}"))
    return [Check(f"secretsmanager:{op}", arn)]


# ------------------------------------------------------------------------------- End User Messaging SMS

def _identity_arn(call: Call, identity: str) -> str:
    """An origination identity's ARN: given as one, as a pool or phone number id, or as the number."""
    if identity.startswith("arn:"):
        return identity
    if identity.startswith("pool-"):
        return call.arn("sms-voice", f"pool/{identity}")
    return call.arn("sms-voice", f"phone-number/{identity if identity.startswith('phone-') else phone_number_id(identity)}")


def _sms_voice(call: Call, op: str, params: Mapping[str, Any]) -> list[Check]:
    action = f"sms-voice:{op}"
    identities = [params[k] for k in ("OriginationIdentity", "PhoneNumberId") if params.get(k)]
    named = [_identity_arn(call, str(i)) for i in [*identities, *(params.get("PhoneNumberIds") or [])]]
    if params.get("ConfigurationSetName"):
        named.append(call.arn("sms-voice", f"configuration-set/{params['ConfigurationSetName']}"))
    if params.get("OptOutListName"):
        named.append(call.arn("sms-voice", f"opt-out-list/{params['OptOutListName']}"))
    return [Check(action, arn) for arn in named] or [Check(action, "*")]


_SERVICES: dict[str, Callable[[Call, str, Mapping[str, Any]], list[Check]]] = {
    "dynamodb": _dynamodb, "sqs": _sqs, "events": _events, "secretsmanager": _secretsmanager,
    "sms-voice": _sms_voice,
}


def checks(call: Call) -> list[Check]:
    """Every (action, resource) IAM must allow for `call` to go through."""
    op, params = call.operation_and_params()
    handler = _SERVICES.get(call.service)
    if handler is None:
        return [Check(f"{call.service}:{op}", "*")]
    return handler(call, op, params)


# ------------------------------------------------------------------------------------------------ denial

INVALID_TOKEN = "The security token included in the request is invalid."
_QUERY_NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"


def _error(call: Call, message: str, *, json_code: str, json_status: int, query_code: str,
           message_key: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of an AWS error in the call's protocol.

    JSON protocols: `__type` com.amazon.coral.service#<json_code> (the SDKs take the code after '#');
    SQS's JSON protocol also carries `x-amzn-query-error: <query_code>;Sender`, which query-compatible
    SDKs (botocore and the Rust one) report as the code. Query protocol: HTTP 403 with an XML
    ErrorResponse whose Code is `query_code`."""
    request_id = str(uuid.uuid4())
    if call.protocol == QUERY:
        body = (f"<?xml version=\"1.0\"?><ErrorResponse xmlns=\"{_QUERY_NAMESPACE}\">"
                f"<Error><Type>Sender</Type><Code>{query_code}</Code><Message>{_xml(message)}</Message>"
                f"<Detail/></Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        return 403, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body
    version = "1.0" if call.service in ("dynamodb", "sqs", "sms-voice") else "1.1"
    headers = [("Content-Type", f"application/x-amz-json-{version}"), ("x-amzn-RequestId", request_id)]
    if call.service == "sqs":
        headers.append(("x-amzn-query-error", f"{query_code};Sender"))
    body = json.dumps({"__type": f"com.amazon.coral.service#{json_code}", message_key: message}).encode()
    return json_status, headers, body


def denial(call: Call, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of AWS's AccessDenied answer in the call's protocol.

    JSON protocols: HTTP 400, `__type` ...#AccessDeniedException (SQS's JSON protocol with
    `x-amzn-query-error: AccessDenied;Sender`, reported as the code "AccessDenied"). Query protocol (SQS):
    HTTP 403 with an XML ErrorResponse, Code AccessDenied."""
    return _error(call, message, json_code="AccessDeniedException", json_status=400, query_code="AccessDenied",
                  message_key="Message")


def unrecognized(call: Call) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of AWS's answer to a request signed with an access key id it does not know
    ("The security token included in the request is invalid.").

    DynamoDB (and its Streams), EventBridge, Secrets Manager and the other JSON protocols: HTTP 400,
    `__type` ...#UnrecognizedClientException. SQS answers InvalidClientTokenId with HTTP 403 in both its
    protocols: JSON (`__type` ...#InvalidClientTokenId and `x-amzn-query-error: InvalidClientTokenId;Sender`)
    and query (XML ErrorResponse, Code InvalidClientTokenId), as the query protocol's other services
    (STS, IAM, SNS) do."""
    sqs = call.service == "sqs"
    return _error(call, INVALID_TOKEN, json_code="InvalidClientTokenId" if sqs else "UnrecognizedClientException",
                  json_status=403 if sqs else 400, query_code="InvalidClientTokenId", message_key="message")


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
