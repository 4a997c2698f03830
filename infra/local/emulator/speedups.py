"""moto's costs per request and per message, removed without changing what any API returns.

moto's SQS makes every SendMessage cost time linear in the queue's length: it reads
the queue's attributes (which count the visible, delayed and in-flight messages) to learn
whether content-based de-duplication is on, and checks each message's visibility through
a datetime round trip. 10,000 queued messages made one SendMessageBatch take about 2 s.
`patch_sqs` removes both costs without changing what any API returns.

moto also looks up each request's service by listing its own package directory and matching URL
patterns under one lock, and werkzeug writes an access-log line per request: together about a
quarter of the emulator's CPU under load. `patch_dispatch` keeps the service found per host name
(the mapping is fixed when moto starts); the access log is off unless `--access-log` is given.
DynamoDB Streams' GetRecords went through moto's generic response serializer at ~3 ms of CPU a
record; `patch_stream_records` answers it with json.dumps of the records moto already keeps in
wire form.
"""

from __future__ import annotations

import base64
import calendar
import json
import threading
import time
from datetime import datetime
from typing import Any

import moto.sqs.models as sqs_models
from moto.server import DomainDispatcherApplication, MotoRequestHandler


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
