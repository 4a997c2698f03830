"""One DynamoDB request at a time, as DynamoDB's own consistency needs.

moto's threaded server can let two concurrent conditional writes to the same DynamoDB
item both succeed (each reads the item before the other writes). Real DynamoDB never
does, and this service's guarantees (one claim per message, one queueing per dispatch,
one staff user per work item) rest on that. Serializing DynamoDB requests (and DynamoDB
Streams', so GetRecords never sees a transaction half done) restores it; SQS (whose long
polls must not block everything) and EventBridge stay threaded.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterable

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
