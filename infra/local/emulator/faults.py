"""DynamoDB faults injected for chaos runs: throttled requests and internal errors.

Fault injection for chaos runs (`DynamoDBFaults`): with `--dynamodb-throttle-rate P` (or
EMULATOR_DYNAMODB_THROTTLE_RATE) each DynamoDB request (X-Amz-Target DynamoDB_20120810.*; not DynamoDB
Streams, SQS, moto's /moto-api or our /_local endpoints) is, with probability P, answered before it is
processed (nothing changes) as DynamoDB answers a throttled request: HTTP 400
ProvisionedThroughputExceededException, which every AWS SDK retries with backoff. With
`--dynamodb-error-rate P` (EMULATOR_DYNAMODB_ERROR_RATE) it is answered HTTP 500 InternalServerError
(retried as transient). Default 0: off. The draws come from their own RNG seeded with `--seed`.
`GET /_local/faults` answers the rates and the faults injected per operation; `POST /_local/faults
{"dynamodbThrottleRate": p, "dynamodbErrorRate": q, "exemptAdmin": true}` changes them at run time
(`exemptAdmin`: requests signed with an administrator key get no faults, so a test harness can read the
table; off unless set).
"""

from __future__ import annotations

import json
import random
import secrets
import threading
from typing import Any, Callable, Iterable

from infra.local import authz, enforcer

FAULTS_PATH = "/_local/faults"
DYNAMODB_TARGET = "DynamoDB_20120810."  # the DynamoDB JSON API (not DynamoDB Streams: DynamoDBStreams_20120810.)
_DYNAMODB_ERROR = "com.amazonaws.dynamodb.v20120810#"
# What DynamoDB answers when a request is throttled: every AWS SDK (botocore in both retry modes, the
# Rust SDK's AwsErrorCodeClassifier, JS v3) lists ProvisionedThroughputExceededException among its
# throttling errors and retries it with backoff; a 500 is retried as a transient error.
THROTTLED = (400, "Bad Request", {"__type": _DYNAMODB_ERROR + "ProvisionedThroughputExceededException",
                                  "message": "The level of configured provisioned throughput for the table was "
                                             "exceeded. Consider increasing your provisioning level with the "
                                             "UpdateTable API."})
INTERNAL_ERROR = (500, "Internal Server Error", {"__type": _DYNAMODB_ERROR + "InternalServerError",
                                                 "message": "Internal server error"})
_FAULT_SETTINGS = {"dynamodbThrottleRate": "throttle_rate", "dynamodbErrorRate": "error_rate",
                   "exemptAdmin": "exempt_admin"}


def _rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} {value!r}: want a probability from 0 to 1")
    return float(value)


class DynamoDBFaults:
    """WSGI middleware: fault injection for chaos runs. Each DynamoDB request (X-Amz-Target
    DynamoDB_20120810.*) is, with probability `throttle_rate`, answered as DynamoDB answers a
    throttled request (HTTP 400 ProvisionedThroughputExceededException) and else, with probability
    `error_rate`, with HTTP 500 InternalServerError, before it reaches moto (nothing is written, the
    DynamoDB lock is not taken). One draw per request from an RNG seeded with `seed` (a stream of its
    own: the GSI lag's delays stay as they were): throttled below `throttle_rate`, an error below
    `throttle_rate + error_rate`. With `exempt_admin`, requests signed with an administrator key pass.
    `GET /_local/faults` answers the settings and the faults injected (in all and per operation);
    `POST /_local/faults {"dynamodbThrottleRate", "dynamodbErrorRate", "exemptAdmin"}` changes the
    settings given (the others stay) and answers as GET does."""

    def __init__(self, app: Callable[..., Iterable[bytes]], throttle_rate: float = 0.0, error_rate: float = 0.0,
                 seed: int = 0, exempt_admin: bool = False) -> None:
        self.app = app
        self.throttle_rate = _rate(throttle_rate, "DynamoDB throttle rate")
        self.error_rate = _rate(error_rate, "DynamoDB error rate")
        self.exempt_admin = exempt_admin
        self.seed = seed
        self.rng = random.Random(f"dynamodb-faults:{seed}")
        self.lock = threading.Lock()
        self.injected: dict[str, dict[str, int]] = {}  # operation -> {"throttled": n, "errors": n}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == FAULTS_PATH:
            return self.control(environ, start_response)
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        fault = self.draw(target, environ) if target.startswith(DYNAMODB_TARGET) else None
        if fault is None:
            return self.app(environ, start_response)
        _drain(environ)
        status, reason, doc = fault
        body = json.dumps(doc).encode()
        start_response(f"{status} {reason}", [("Content-Type", "application/x-amz-json-1.0"),
                                              ("x-amzn-RequestId", secrets.token_hex(26).upper()),
                                              ("Content-Length", str(len(body)))])
        return [body]

    def draw(self, target: str, environ: dict[str, Any]) -> tuple[int, str, dict[str, str]] | None:
        """The fault to answer this request with, if any (counted)."""
        if self.throttle_rate <= 0 and self.error_rate <= 0:
            return None
        if self.exempt_admin:
            who = authz.caller(environ)
            if who is not None and enforcer.is_admin(who.access_key_id):
                return None
        with self.lock:
            draw = self.rng.random()
            if draw < self.throttle_rate:
                fault, kind = THROTTLED, "throttled"
            elif draw < self.throttle_rate + self.error_rate:
                fault, kind = INTERNAL_ERROR, "errors"
            else:
                return None
            counts = self.injected.setdefault(target, {"throttled": 0, "errors": 0})
            counts[kind] += 1
        return fault

    def state(self) -> dict[str, Any]:
        with self.lock:
            operations = {name: dict(counts) for name, counts in sorted(self.injected.items())}
            return {"dynamodbThrottleRate": self.throttle_rate, "dynamodbErrorRate": self.error_rate,
                    "exemptAdmin": self.exempt_admin, "seed": self.seed,
                    "throttled": sum(c["throttled"] for c in operations.values()),
                    "errors": sum(c["errors"] for c in operations.values()), "operations": operations}

    def configure(self, doc: Any) -> None:
        """Apply a POSTed settings document (all checked before any is applied)."""
        if not isinstance(doc, dict):
            raise ValueError("want a JSON object")
        unknown = sorted(set(doc) - set(_FAULT_SETTINGS))
        if unknown:
            raise ValueError(f"unknown settings {unknown}: want {sorted(_FAULT_SETTINGS)}")
        changes: dict[str, Any] = {}
        for key in ("dynamodbThrottleRate", "dynamodbErrorRate"):
            if key in doc:
                changes[_FAULT_SETTINGS[key]] = _rate(doc[key], key)
        if "exemptAdmin" in doc:
            if not isinstance(doc["exemptAdmin"], bool):
                raise ValueError(f"exemptAdmin {doc['exemptAdmin']!r}: want true or false")
            changes["exempt_admin"] = doc["exemptAdmin"]
        with self.lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def control(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status = "200 OK"
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                self.configure(json.loads(_drain(environ) or b"{}"))
                answer: dict[str, Any] = self.state()
            except ValueError as e:  # JSONDecodeError included
                answer, status = {"message": f"bad faults document: {e}"}, "400 Bad Request"
        else:
            answer = self.state()
        body = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _drain(environ: dict[str, Any]) -> bytes:
    """The request's body, read (a keep-alive connection must not be left holding it)."""
    stream = environ.get("wsgi.input")
    length = environ.get("CONTENT_LENGTH")
    if stream is None:
        return b""
    return stream.read(int(length)) if length else stream.read() if environ.get("wsgi.input_terminated") else b""
