"""The AWS emulator: moto's server, with DynamoDB requests serialized and IAM enforced per function.

    python -m infra.local.emulator -H 127.0.0.1 -p 4566 [--state FILE] [--gsi-lag-ms MIN:MAX] [--seed N]
        [--dynamodb-throttle-rate P] [--dynamodb-error-rate P]

moto's threaded server can let two concurrent conditional writes to the same DynamoDB
item both succeed (each reads the item before the other writes). Real DynamoDB never
does, and this service's guarantees (one claim per message, one queueing per dispatch,
one staff user per work item) rest on that. Serializing DynamoDB requests (and DynamoDB
Streams', so GetRecords never sees a transaction half done) restores it; SQS (whose long
polls must not block everything) and EventBridge stay threaded.

moto's SQS also makes every SendMessage cost time linear in the queue's length: it reads
the queue's attributes (which count the visible, delayed and in-flight messages) to learn
whether content-based de-duplication is on, and checks each message's visibility through
a datetime round trip. 10,000 queued messages made one SendMessageBatch take about 2 s.
`patch_sqs` removes both costs without changing what any API returns.

moto's TransactWriteItems deep-copies every table it touches (to roll back a canceled
transaction), so each transaction costs time linear in the table's size: about 0.1 s
at 10,000 items. `patch_dynamodb_transactions` keeps the rollback but copies only the
partitions the transaction writes (the rest of the backup shares the unchanged items), makes the
backup without moto's registry of model instances keeping it (and its copy of the item dict) for
good, and makes a canceled transaction stream nothing: moto's rollback put the items back but left
the stream records of the writes it undid (an INSERT of an item that never existed).

AWS keeps DynamoDB items and SQS messages through anything; moto keeps them in memory.
With `--state FILE` the emulator writes its DynamoDB, SQS, EventBridge, Secrets Manager and Cognito
state (and the registered function identities) to FILE when it is stopped (SIGTERM or
SIGINT) and reads it back when it starts, so a restart loses nothing: queued and in-flight
messages keep their visibility timers and receive counts. A kill -9 loses what changed
since the last start, as a crashed emulator would.

IAM: requests signed with a function's access key are checked against that function's
policy before moto sees them (`infra.local.enforcer`). The administrator keys pass unchecked:
`test` (enforcer.ADMIN_KEY), the AWS_ACCESS_KEY_ID of the launcher's environment (the one `make dev`'s
bootstrap signs with) and each `--admin-key`. A request signed with any other key is refused as AWS
refuses an unknown access key id (UnrecognizedClientException; InvalidClientTokenId for SQS).

moto also looks up each request's service by listing its own package directory and matching URL
patterns under one lock, and werkzeug writes an access-log line per request: together about a
quarter of the emulator's CPU under load. `patch_dispatch` keeps the service found per host name
(the mapping is fixed when moto starts); the access log is off unless `--access-log` is given.
DynamoDB Streams' GetRecords went through moto's generic response serializer at ~3 ms of CPU a
record; `patch_stream_records` answers it with json.dumps of the records moto already keeps in
wire form.

DynamoDB's global secondary indexes are eventually consistent: a write reaches them a moment after
the table (typically well under a second); moto's show it at once, so code that queries an index for
what it just wrote works locally and fails in AWS. With `--gsi-lag-ms MIN:MAX` (or
EMULATOR_GSI_LAG_MS; `0` is off, the default) each write to an item (PutItem, UpdateItem,
DeleteItem, each item of BatchWriteItem and of a successful TransactWriteItems) reaches every GSI
of its table after its own delay, drawn uniformly from MIN..MAX ms by a seeded RNG (`--seed` or
EMULATOR_SEED, else a random seed; printed at start). Until then a Query or Scan with an IndexName
naming a GSI sees the item as it was before that write (absent if it did not exist; a deleted
item's old image stays); several writes to one item show in order as each one's delay passes,
never an older image after a newer one. The table's own reads (GetItem, BatchGetItem, Query and
Scan without IndexName, conditions, transactions' ConditionChecks), local secondary indexes,
PartiQL and streams see every write at once, as before. `GsiLag` keeps, per table, the pending
writes' prior images by primary key, dropped as their delays pass; an index read with nothing
pending costs nothing extra. Pending lag is not saved with `--state`: a restarted emulator's
indexes have caught up.

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

`GET /_local/operations` answers what the emulator has done since it started: per operation
(X-Amz-Target, e.g. `DynamoDB_20120810.TransactWriteItems`) the requests, the seconds spent on
them (a long poll's wait included) and the CPU seconds their threads used, the seconds DynamoDB
requests waited for their turn, and the process's CPU seconds. moto is
one Python process (one core at a time), so CPU seconds per wall second near 1 mean the emulator
is the bottleneck; the bench reads it before and after its throughput run.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import copy
import heapq
import inspect
import json
import os
import pickle
import random
import secrets
import signal
import sys
import threading
import time
import weakref
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

import moto.dynamodb.models as dynamodb_models
import moto.cognitoidp.models as cognito_models
import moto.sqs.models as sqs_models
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table

from moto.backends import get_backend
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

from infra.local import authz, enforcer

_DYNAMODB = threading.Lock()
_WAITED = [0.0]  # seconds DynamoDB requests waited for _DYNAMODB (added to under it)


# DynamoDB and DynamoDB Streams (whose GetRecords must not see a canceled transaction's records
# before they are taken back) run one request at a time.
_SERIALIZED = ("DynamoDB_", "DynamoDBStreams_")


class SerializedDynamoDB:
    """WSGI middleware: one DynamoDB or DynamoDB Streams request at a time, the response read inside
    the lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(_SERIALIZED):
            asked = time.perf_counter()
            with _DYNAMODB:
                _WAITED[0] += time.perf_counter() - asked
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


OPERATIONS_PATH = "/_local/operations"


class OperationClock:
    """WSGI middleware: counts and times every request by operation (the response read included;
    the IAM check and moto's work in the request's thread count as its CPU seconds);
    `GET /_local/operations` answers the totals as JSON."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.operations: dict[str, list[float]] = {}  # operation -> [requests, seconds, CPU seconds]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == OPERATIONS_PATH:
            body = json.dumps(self.totals()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return list(self.app(environ, start_response))
        finally:
            self.count(operation(environ), time.perf_counter() - started, time.thread_time() - cpu)

    def count(self, name: str, seconds: float, cpu_seconds: float) -> None:
        with self.lock:
            entry = self.operations.setdefault(name, [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += seconds
            entry[2] += cpu_seconds

    def totals(self) -> dict[str, Any]:
        with self.lock:
            operations = {k: {"requests": int(v[0]), "seconds": round(v[1], 4), "cpu_seconds": round(v[2], 4)}
                          for k, v in self.operations.items()}
        return {"cpu_seconds": round(time.process_time(), 3), "dynamodb_wait_seconds": round(_WAITED[0], 4),
                "operations": operations}


def operation(environ: dict[str, Any]) -> str:
    """The request's operation: its X-Amz-Target (JSON protocols), else the method and first path part."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target)
    first = str(environ.get("PATH_INFO", "/")).strip("/").split("/", 1)[0]
    return f"{environ.get('REQUEST_METHOD', '?')} /{first}"


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


class QuietRequestHandler(MotoRequestHandler):
    """moto's request handler without werkzeug's access-log line per request (errors still go to stderr)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


_HOSTS_KEPT = 256  # host names whose service is remembered (a stray Host header cannot grow it further)


def patch_dispatch() -> None:
    """Remember the service moto finds for a host name instead of searching again on every request."""
    cls = DomainDispatcherApplication
    if getattr(cls, "_texting_patched", False):
        return
    original = cls.get_backend_for_host
    found: dict[str, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host is None:
            return None
        if host in found:
            return found[host]
        backend = original(self, host)
        if len(found) < _HOSTS_KEPT:
            found[host] = backend
        return backend

    cls.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
    cls._texting_patched = True  # type: ignore[attr-defined]


def _wire_value(value: Any) -> Any:
    """What moto's serializer sends for a value json.dumps cannot: a timestamp as epoch seconds cut
    to the millisecond (a whole number without milliseconds; naive datetimes are UTC), bytes as
    base64."""
    if isinstance(value, datetime):
        seconds = calendar.timegm(value.utctimetuple())
        millis = value.microsecond // 1000
        return seconds + millis / 1000 if millis else seconds
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


def patch_stream_records() -> None:
    """Answer GetRecords with json.dumps: moto's generic response serializer spent about 3 ms of CPU
    per stream record (a third of the emulator's work per text under load), and moto keeps the
    records in their wire form already. The handler moto had stays at `_texting_original`."""
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    if getattr(DynamoDBStreamsHandler, "_texting_patched", False):
        return

    def get_records(self: Any) -> tuple[int, dict[str, str], str]:
        limit = self._get_param("Limit")
        result = self.backend.get_records(self._get_param("ShardIterator"), 1000 if limit is None else limit)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(result, default=_wire_value)

    DynamoDBStreamsHandler._texting_original = DynamoDBStreamsHandler.get_records  # type: ignore[attr-defined]
    DynamoDBStreamsHandler.get_records = get_records  # type: ignore[method-assign]
    DynamoDBStreamsHandler._texting_patched = True  # type: ignore[attr-defined]


_SENDING = threading.local()


def _fast_unix_time_millis(dt: Any = None) -> float:
    """moto's unix_time_millis (milliseconds since the epoch, float) without the datetime round trip."""
    return time.time() * 1000.0 if dt is None else _ORIGINAL_UNIX_TIME_MILLIS(dt)


_ORIGINAL_UNIX_TIME_MILLIS = sqs_models.unix_time_millis


def _counting(prop: property) -> property:
    """A queue count that is not computed inside SendMessage, which reads only ContentBasedDeduplication
    from the attributes it builds; every other caller (GetQueueAttributes) gets the real count."""

    def get(queue: Any) -> int:
        return 0 if getattr(_SENDING, "active", False) else prop.fget(queue)  # type: ignore[misc]

    return property(get)


def patch_sqs() -> None:
    """Make moto's SendMessage cost independent of the queue's length (see the module docstring)."""
    if getattr(sqs_models, "_texting_patched", False):
        return
    sqs_models.unix_time_millis = _fast_unix_time_millis
    queue = sqs_models.Queue
    for name in ("approximate_number_of_messages", "approximate_number_of_messages_delayed",
                 "approximate_number_of_messages_not_visible"):
        setattr(queue, name, _counting(getattr(queue, name)))
    original = sqs_models.SQSBackend.send_message

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        _SENDING.active = True
        try:
            return original(self, *args, **kwargs)
        finally:
            _SENDING.active = False

    sqs_models.SQSBackend.send_message = send_message  # type: ignore[method-assign]
    sqs_models._texting_patched = True  # type: ignore[attr-defined]


# Partition keys (table name -> hash values, or None: unknown, copy it all) that the running
# TransactWriteItems writes; set only while it runs (DynamoDB requests are serialized).
_TRANSACTION: dict[str, set[Any] | None] | None = None


def _table_copy(table: Any, memo: dict[int, Any]) -> Any:
    """Table.__deepcopy__: inside a transaction, a rollback backup that deep-copies only the written
    partitions (all of them if the written keys are unknown) and shares everything else, the stream
    shard included (the transaction changes nothing else; `patch_dynamodb_transactions` takes back
    its stream records); anywhere else (CreateBackup) a full deep copy, as before. Made with
    object.__new__, not Table's: moto's BaseModel.__new__ keeps every instance it makes in
    Table.instances_tracked for good, and a backup holds a copy of the table's item dict."""
    cls = type(table)
    new = object.__new__(cls)
    memo[id(table)] = new
    if _TRANSACTION is None:
        for name, value in table.__dict__.items():
            setattr(new, name, copy.deepcopy(value, memo))
        return new
    new.__dict__.update(table.__dict__)
    new.items = table.items.copy()  # keeps the stored hashes: DynamoType hashing is slow
    written = _TRANSACTION.get(table.name)
    for hash_value in table.items if written is None else written:
        if hash_value in table.items:
            new.items[hash_value] = _partition_copy(table.items[hash_value])
    return new


def _partition_copy(partition: Any) -> Any:
    """A copy of a table's partition (an Item, or a dict of range value -> Item) whose items the
    transaction cannot change, made without moto tracking the copies (see `_detached`)."""
    if isinstance(partition, Item):
        return _detached(partition)
    return {range_value: _detached(item) for range_value, item in partition.items()}


def patch_dynamodb_transactions() -> None:
    """Make a transaction's rollback backup cost the written partitions, not the whole table, and
    make a canceled transaction leave nothing behind: moto puts its backup in the table's place, so
    the table object the stream shard (and every shard iterator) points at would be a stale one;
    here the table keeps its identity and gets its state back from the backup, and the stream
    records the transaction's writes added are cut off again (DynamoDB streams only committed
    writes). DynamoDB Streams requests are serialized with DynamoDB's (`SerializedDynamoDB`), so no
    GetRecords sees records that are then taken back."""
    backend = dynamodb_models.DynamoDBBackend
    if getattr(backend, "_texting_patched", False):
        return
    Table.__deepcopy__ = _table_copy  # type: ignore[attr-defined]
    original = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        global _TRANSACTION
        written: dict[str, set[Any] | None] = {}
        for entry in transact_items:
            for op in entry.values():
                name = op.get("TableName") if isinstance(op, dict) else None
                table = self.tables.get(name) if name else None
                if table is None:
                    continue
                attrs = op.get("Item") or op.get("Key") or {}
                keys = written.setdefault(name, set())
                if keys is not None and isinstance(attrs.get(table.hash_key_attr), dict):
                    keys.add(DynamoType(attrs[table.hash_key_attr]))
                else:  # a malformed key: every partition is copied (moto then rejects it)
                    written[name] = None
        tables = {name: self.tables[name] for name in written}
        streamed = {name: (t.stream_shard, len(t.stream_shard.items)) for name, t in tables.items()
                    if t.stream_shard is not None}
        _TRANSACTION = written
        try:
            return original(self, transact_items)
        except BaseException:
            for name, table in tables.items():
                restored = self.tables.get(name)
                if restored is not None and restored is not table:  # moto's backup: its state, our object
                    table.__dict__.update(restored.__dict__)
                    self.tables[name] = table
            for shard, length in streamed.values():
                del shard.items[length:]
            raise
        finally:
            _TRANSACTION = None

    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    backend._texting_patched = True  # type: ignore[attr-defined]


# ------------------------------------------------------------------------ GSI eventual consistency

_Key = tuple[DynamoType, DynamoType | None]  # an item's primary key: (hash value, range value or None)


class _PendingWrites:
    """One table's writes that its GSIs do not show yet. Per item, in write order, each write's
    time of visibility and the item's image just before it (None: absent), so the index shows the
    image after the latest write whose time has passed: the image before the next write, or the
    table's own item once the last one has passed (the entry is then dropped). A heap of the
    visibility times settles the entries as they pass (one heap entry per write; memory is the
    writes of the last MAX ms)."""

    __slots__ = ("writes", "due", "count")

    def __init__(self) -> None:
        self.writes: dict[_Key, list[tuple[float, Item | None]]] = {}
        self.due: list[tuple[float, int, _Key]] = []
        self.count = 0  # ties in `due` are broken by write order (keys need not be comparable)

    def add(self, key: _Key, before: Item | None, visible_at: float) -> None:
        self.writes.setdefault(key, []).append((visible_at, before))
        self.count += 1
        heapq.heappush(self.due, (visible_at, self.count, key))

    def settle(self, now: float) -> None:
        """Drop what the index shows by `now`: every write whose time passed, and each earlier one."""
        due = self.due
        while due and due[0][0] <= now:
            _, _, key = heapq.heappop(due)
            writes = self.writes.get(key)
            if writes is None:  # settled already (a later write of the item passed first)
                continue
            last = max((i for i, (at, _) in enumerate(writes) if at <= now), default=-1)
            if last == len(writes) - 1:
                del self.writes[key]
            elif last >= 0:
                del writes[: last + 1]

    def shown(self) -> Iterable[tuple[_Key, Item | None]]:
        """Each pending item's image as the index shows it (call `settle` first)."""
        return ((key, writes[0][1]) for key, writes in self.writes.items())


class GsiLag:
    """How far every GSI lags behind its table: each write to an item becomes visible to index
    queries and scans after its own delay, drawn uniformly from [low_ms, high_ms] by a seeded RNG."""

    def __init__(self, low_ms: int, high_ms: int, seed: int, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= low_ms <= high_ms:
            raise ValueError(f"GSI lag {low_ms}:{high_ms} ms: want 0 <= MIN <= MAX")
        self.low_ms, self.high_ms, self.seed = low_ms, high_ms, seed
        self.rng = random.Random(seed)
        self.clock = clock
        # Table -> its pending writes; weak: a deleted table's go with it, and nothing of it is
        # pickled with the backends (a restored emulator starts with every index caught up).
        self.tables: weakref.WeakKeyDictionary[Table, _PendingWrites] = weakref.WeakKeyDictionary()

    def delay(self) -> float:
        return self.rng.uniform(self.low_ms, self.high_ms) / 1000.0

    def record(self, table: Table, key: _Key, before: Item | None) -> None:
        """A write to `key` (whose image before it was `before`) has just been made to `table`."""
        pending = self.tables.get(table)
        if pending is None:
            pending = self.tables[table] = _PendingWrites()
        now = self.clock()
        pending.settle(now)
        pending.add(key, before, now + self.delay())

    def view(self, table: Table, index_name: str | None) -> Table | None:
        """A stand-in for `table` whose items are what the GSI `index_name` shows now, or None when
        the index shows the table as it is (not a GSI, or no write pending)."""
        pending = self.tables.get(table)
        if pending is None or not index_name or not pending.writes:
            return None
        if not any(index.name == index_name for index in table.global_indexes or ()):
            return None  # a local secondary index, or an unknown one (moto reports it)
        pending.settle(self.clock())
        if not pending.writes:
            return None
        items = copy.copy(table.items)  # the partitions, shared; the pending ones replaced below
        ranged = table.range_key_attr is not None
        copied: set[Any] = set()
        for (hash_value, range_value), image in pending.shown():
            if not ranged:
                if image is None:
                    items.pop(hash_value, None)
                else:
                    items[hash_value] = image
                continue
            if hash_value not in copied:
                items[hash_value] = dict(items.get(hash_value) or {})
                copied.add(hash_value)
            if image is None:
                items[hash_value].pop(range_value, None)
            else:
                items[hash_value][range_value] = image
        view = object.__new__(type(table))  # not Table(): moto tracks every model it constructs
        view.__dict__.update(table.__dict__)
        view.items = items
        return view


_GSI_LAG: GsiLag | None = None  # set by enable_gsi_lag; None: every index shows its table at once
# The index-visible writes of the running TransactWriteItems, recorded only if it succeeds (it runs
# alone: DynamoDB requests are serialized).
_LAG_BUFFER: list[tuple[Table, _Key, Item | None]] | None = None


def _item_key(table: Table, attrs: Any) -> _Key | None:
    """The primary key named by an item's or a Key's attributes, as moto keys its items; None if
    malformed (moto then rejects the request itself)."""
    try:
        hash_value = DynamoType(attrs[table.hash_key_attr])
        range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    except Exception:  # noqa: BLE001 - whatever moto makes of it, nothing is recorded
        return None
    return hash_value, range_value


def _stored(table: Table, key: _Key) -> Item | None:
    """The table's item at `key`, without moto's validation (nor a defaultdict partition created)."""
    hash_value, range_value = key
    part = table.items.get(hash_value)
    if table.range_key_attr is None:
        return part if isinstance(part, Item) else None
    return part.get(range_value) if isinstance(part, dict) else None


def _detached(item: Item | None) -> Item | None:
    """A copy of an item that UpdateItem, which changes items in place, cannot change; made as
    Item.__deepcopy__ does but without moto tracking the copy as a model instance."""
    if item is None:
        return None
    new = object.__new__(Item)
    new.hash_key, new.range_key = item.hash_key, item.range_key
    attrs = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.__init__(attrs, {name: copy.deepcopy(value) for name, value in item.attrs.items()})
    new.attrs = attrs
    return new


def _lagged_write(original: Callable[..., Any], key_of: str, copy_before: bool) -> Callable[..., Any]:
    """Wraps a backend write whose argument after the table's name is `key_of` (put_item: the item's
    attributes; update_item, delete_item: the key) so that a successful write to a table with GSIs
    is recorded."""

    def write(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        lag = _GSI_LAG
        table = self.tables.get(table_name) if lag is not None else None
        if lag is None or table is None or not table.global_indexes:
            return original(self, table_name, *args, **kwargs)
        attrs = kwargs[key_of] if key_of in kwargs else (args[0] if args else None)
        key = _item_key(table, attrs) if isinstance(attrs, dict) else None
        before = _stored(table, key) if key is not None else None
        if copy_before:
            before = _detached(before)
        result = original(self, table_name, *args, **kwargs)
        if key is not None:
            if _LAG_BUFFER is not None:
                _LAG_BUFFER.append((table, key, before))
            else:
                lag.record(table, key, before)
        return result

    return write


def _lagged_read(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps Table.query / Table.scan: with an IndexName naming a GSI that has writes pending, they
    run over what that index shows (the base table's reads go through untouched)."""
    signature = inspect.signature(original)

    def read(self: Table, *args: Any, **kwargs: Any) -> Any:
        lag = _GSI_LAG
        pending = lag.tables.get(self) if lag is not None else None
        if pending is None or not pending.writes:
            return original(self, *args, **kwargs)
        index_name = signature.bind(self, *args, **kwargs).arguments.get("index_name")
        view = lag.view(self, index_name)
        return original(self if view is None else view, *args, **kwargs)

    return read


def enable_gsi_lag(lag: GsiLag | None) -> None:
    """Make every GSI lag behind its table as `lag` says (None: index reads see every write at once,
    as moto does). The first call patches moto's DynamoDB backend and Table (idempotent)."""
    global _GSI_LAG
    _GSI_LAG = lag
    backend = dynamodb_models.DynamoDBBackend
    if getattr(backend, "_texting_gsi_lag_patched", False):
        return
    backend.put_item = _lagged_write(backend.put_item, "item_attrs", copy_before=False)  # type: ignore[method-assign]
    backend.update_item = _lagged_write(backend.update_item, "key", copy_before=True)  # type: ignore[method-assign]
    backend.delete_item = _lagged_write(backend.delete_item, "key", copy_before=False)  # type: ignore[method-assign]
    original_transaction = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        global _LAG_BUFFER
        lag = _GSI_LAG
        if lag is None:
            return original_transaction(self, transact_items)
        tables = dict(self.tables)
        _LAG_BUFFER = []
        try:
            original_transaction(self, transact_items)
            written = _LAG_BUFFER
        except BaseException:
            # Canceled: nothing of the transaction is recorded; the writes pending from before it
            # stay pending. (patch_dynamodb_transactions keeps each table's object; moto alone puts
            # its backup copy in the table's place, and the pending writes move to the copy.)
            for name, table in tables.items():
                restored = self.tables.get(name)
                if restored is not None and restored is not table and table in lag.tables:
                    lag.tables[restored] = lag.tables.pop(table)
            raise
        finally:
            _LAG_BUFFER = None
        for table, key, before in written:
            lag.record(table, key, before)

    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    Table.query = _lagged_read(Table.query)  # type: ignore[method-assign]
    Table.scan = _lagged_read(Table.scan)  # type: ignore[method-assign]
    backend._texting_gsi_lag_patched = True  # type: ignore[attr-defined]


def parse_lag(text: str) -> tuple[int, int]:
    """`MIN:MAX` milliseconds (or `N`: N:N); `0` / `0:0` is off."""
    low, _, high = text.strip().partition(":")
    try:
        bounds = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"GSI lag {text!r}: want MIN:MAX milliseconds, e.g. 50:400 (0 is off)") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise ValueError(f"GSI lag {text!r}: want 0 <= MIN <= MAX")
    return bounds


# The services whose state outlives a restart (the ones the template uses).
PERSISTED = ("dynamodb", "sqs", "events", "secretsmanager", "cognito-idp")
_IDENTITIES_KEY = "_local_iam"  # the enforcer's registered identities, beside the backends


def _queue_state(queue: Any) -> dict[str, Any]:
    state = dict(queue.__dict__)
    state.pop("_messages_lock", None)  # a threading.Condition: recreated on load
    return state


def _queue_restore(queue: Any, state: dict[str, Any]) -> None:
    queue.__dict__.update(state)
    queue._messages_lock = threading.Condition()


sqs_models.Queue.__getstate__ = _queue_state  # type: ignore[attr-defined]
sqs_models.Queue.__setstate__ = _queue_restore  # type: ignore[attr-defined]


def _pool_state(pool: Any) -> dict[str, Any]:
    state = dict(pool.__dict__)
    state.pop("json_web_key", None)  # an OpenSSL key object: moto loads the same one from its resources
    return state


def _pool_restore(pool: Any, state: dict[str, Any]) -> None:
    pool.__dict__.update(state)
    pool.json_web_key = cognito_models.jwk.RSAKey.import_key(
        cognito_models.load_resource("cognitoidp/resources/jwks-private.json"))


cognito_models.CognitoIdpUserPool.__getstate__ = _pool_state  # type: ignore[attr-defined]
cognito_models.CognitoIdpUserPool.__setstate__ = _pool_restore  # type: ignore[attr-defined]


def snapshot() -> bytes:
    """Every account's and region's backend of the persisted services, and the registered function
    identities, pickled (DynamoDB quiesced)."""
    with _DYNAMODB:
        state: dict[str, Any] = {
            service: [(account, region, backend) for account, region, backend in get_backend(service).iter_backends()]
            for service in PERSISTED
        }
        state[_IDENTITIES_KEY] = enforcer.export()
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def restore(data: bytes) -> int:
    """Puts the backends of a snapshot in place; returns how many region backends were restored."""
    state = pickle.loads(data)  # noqa: S301 - our own file, written by snapshot()
    enforcer.load(state.pop(_IDENTITIES_KEY, []))
    restored = 0
    for service, backends in state.items():
        live = get_backend(service)
        for account, region, backend in backends:
            # dict.__setitem__: moto's own __getitem__ would create an empty backend first.
            dict.__setitem__(live[account], region, backend)
            restored += 1
    return restored


def save(path: Path) -> None:
    """Writes the snapshot atomically (a half-written file never replaces a good one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(snapshot())
    os.replace(tmp, path)


def _probability_option(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} {text!r}: want a probability from 0 to 1") from None
    return _rate(value, name)


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.local.emulator", description=__doc__.split("\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    parser.add_argument("--state", type=Path, help="keep DynamoDB, SQS and EventBridge state in this file across restarts")
    parser.add_argument("--access-log", action="store_true", help="log one line per request (costs CPU under load)")
    parser.add_argument("--admin-key", action="append", default=[], metavar="ACCESS_KEY_ID",
                        help=f"an access key id whose requests pass unchecked, besides {enforcer.ADMIN_KEY!r} and "
                             "$AWS_ACCESS_KEY_ID (repeatable); any other unregistered key is refused")
    parser.add_argument("--gsi-lag-ms", metavar="MIN:MAX", default=os.environ.get("EMULATOR_GSI_LAG_MS") or "0",
                        help="each write reaches the tables' global secondary indexes after a delay drawn uniformly "
                             "from MIN..MAX ms, as in DynamoDB (e.g. 50:400; default $EMULATOR_GSI_LAG_MS, else 0: off)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the GSI lag's delays and of the DynamoDB faults (default $EMULATOR_SEED, else "
                             "a random one; printed at start)")
    parser.add_argument("--dynamodb-throttle-rate", metavar="P",
                        default=os.environ.get("EMULATOR_DYNAMODB_THROTTLE_RATE") or "0",
                        help="answer each DynamoDB request with probability P, before it is processed, as DynamoDB "
                             "answers a throttled one (400 ProvisionedThroughputExceededException; default "
                             "$EMULATOR_DYNAMODB_THROTTLE_RATE, else 0: off; POST /_local/faults changes it)")
    parser.add_argument("--dynamodb-error-rate", metavar="P",
                        default=os.environ.get("EMULATOR_DYNAMODB_ERROR_RATE") or "0",
                        help="answer each DynamoDB request with probability P, before it is processed, with HTTP 500 "
                             "InternalServerError (default $EMULATOR_DYNAMODB_ERROR_RATE, else 0: off)")
    args = parser.parse_args(argv)
    try:
        low_ms, high_ms = parse_lag(args.gsi_lag_ms)
        seed = args.seed if args.seed is not None else int(os.environ.get("EMULATOR_SEED") or random.randrange(2**32))
        throttle_rate = _probability_option(args.dynamodb_throttle_rate, "--dynamodb-throttle-rate")
        error_rate = _probability_option(args.dynamodb_error_rate, "--dynamodb-error-rate")
    except ValueError as e:
        parser.error(str(e))
    enforcer.admit([os.environ.get("AWS_ACCESS_KEY_ID"), *args.admin_key])
    patch_dispatch()
    patch_stream_records()
    patch_sqs()
    patch_dynamodb_transactions()
    if high_ms > 0:
        enable_gsi_lag(GsiLag(low_ms, high_ms, seed))
        print(f"emulator: GSI lag {low_ms}:{high_ms} ms per write, seed {seed} (--seed / EMULATOR_SEED repeats it)",
              file=sys.stderr, flush=True)
    else:
        print("emulator: GSI lag off (index queries see every write at once)", file=sys.stderr, flush=True)
    if throttle_rate > 0 or error_rate > 0:
        print(f"emulator: DynamoDB faults: throttled {throttle_rate:g}, internal errors {error_rate:g} of requests, "
              f"seed {seed} (GET/POST {FAULTS_PATH})", file=sys.stderr, flush=True)
    if args.state and args.state.exists():
        count = restore(args.state.read_bytes())
        print(f"emulator: restored {count} service backends from {args.state}", file=sys.stderr, flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]
    try:
        faults = DynamoDBFaults(SerializedDynamoDB(app), throttle_rate, error_rate, seed)
        run_simple(args.host, args.port, OperationClock(enforcer.IamEnforcer(faults)), threaded=True,
                   request_handler=MotoRequestHandler if args.access_log else QuietRequestHandler)
    finally:
        if args.state:
            save(args.state)
            print(f"emulator: state saved to {args.state}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
