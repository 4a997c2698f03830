"""The AWS emulator: moto's server, with DynamoDB requests serialized and IAM enforced per function.

    python -m infra.local.emulator -H 127.0.0.1 -p 4566 [--state FILE]

moto's threaded server can let two concurrent conditional writes to the same DynamoDB
item both succeed (each reads the item before the other writes). Real DynamoDB never
does, and this service's guarantees (one claim per message, one queueing per dispatch,
one staff user per work item) rest on that. Serializing DynamoDB requests restores
it; SQS (whose long polls must not block everything) and EventBridge stay threaded.

moto's SQS also makes every SendMessage cost time linear in the queue's length: it reads
the queue's attributes (which count the visible, delayed and in-flight messages) to learn
whether content-based de-duplication is on, and checks each message's visibility through
a datetime round trip. 10,000 queued messages made one SendMessageBatch take about 2 s.
`patch_sqs` removes both costs without changing what any API returns.

moto's TransactWriteItems deep-copies every table it touches (to roll back a canceled
transaction), so each transaction costs time linear in the table's size: about 0.1 s
at 10,000 items. `patch_dynamodb_transactions` keeps the rollback but copies only the
partitions the transaction writes (the rest of the backup shares the unchanged items).

AWS keeps DynamoDB items and SQS messages through anything; moto keeps them in memory.
With `--state FILE` the emulator writes its DynamoDB, SQS, EventBridge and Secrets Manager
state (and the registered function identities) to FILE when it is stopped (SIGTERM or
SIGINT) and reads it back when it starts, so a restart loses nothing: queued and in-flight
messages keep their visibility timers and receive counts. A kill -9 loses what changed
since the last start, as a crashed emulator would.

IAM: requests signed with a function's access key are checked against that function's
policy before moto sees them (`infra.local.enforcer`); every other key is unrestricted.

moto also looks up each request's service by listing its own package directory and matching URL
patterns under one lock, and werkzeug writes an access-log line per request: together about a
quarter of the emulator's CPU under load. `patch_dispatch` keeps the service found per host name
(the mapping is fixed when moto starts); the access log is off unless `--access-log` is given.
DynamoDB Streams' GetRecords went through moto's generic response serializer at ~3 ms of CPU a
record; `patch_stream_records` answers it with json.dumps of the records moto already keeps in
wire form.

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
import json
import os
import pickle
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

import moto.dynamodb.models as dynamodb_models
import moto.sqs.models as sqs_models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

from moto.backends import get_backend
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

from infra.local import enforcer

_DYNAMODB = threading.Lock()
_WAITED = [0.0]  # seconds DynamoDB requests waited for _DYNAMODB (added to under it)


class SerializedDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, the response read inside the lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
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
    """Table.__deepcopy__: inside a transaction, a backup that deep-copies only the written
    partitions and shares the others (the transaction cannot change them); anywhere else
    (CreateBackup) a full deep copy, as before."""
    cls = type(table)
    new = cls.__new__(cls)
    memo[id(table)] = new
    written = _TRANSACTION.get(table.name) if _TRANSACTION is not None else None
    if written is None:
        for name, value in table.__dict__.items():
            setattr(new, name, copy.deepcopy(value, memo))
        return new
    new.__dict__.update(table.__dict__)
    new.items = table.items.copy()  # keeps the stored hashes: DynamoType hashing is slow
    for hash_value in written:
        if hash_value in table.items:
            new.items[hash_value] = copy.deepcopy(table.items[hash_value], memo)
    return new


def patch_dynamodb_transactions() -> None:
    """Make a transaction's rollback backup cost the written partitions, not the whole table."""
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
                else:  # a malformed key: moto copies (and then rejects) as it always did
                    written[name] = None
        _TRANSACTION = written
        try:
            return original(self, transact_items)
        finally:
            _TRANSACTION = None

    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    backend._texting_patched = True  # type: ignore[attr-defined]


# The services whose state outlives a restart (the ones the template uses).
PERSISTED = ("dynamodb", "sqs", "events", "secretsmanager")
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


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.local.emulator", description=__doc__.split("\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    parser.add_argument("--state", type=Path, help="keep DynamoDB, SQS and EventBridge state in this file across restarts")
    parser.add_argument("--access-log", action="store_true", help="log one line per request (costs CPU under load)")
    args = parser.parse_args(argv)
    patch_dispatch()
    patch_stream_records()
    patch_sqs()
    patch_dynamodb_transactions()
    if args.state and args.state.exists():
        count = restore(args.state.read_bytes())
        print(f"emulator: restored {count} service backends from {args.state}", file=sys.stderr, flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]
    try:
        run_simple(args.host, args.port, OperationClock(enforcer.IamEnforcer(SerializedDynamoDB(app))), threaded=True,
                   request_handler=MotoRequestHandler if args.access_log else QuietRequestHandler)
    finally:
        if args.state:
            save(args.state)
            print(f"emulator: state saved to {args.state}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
