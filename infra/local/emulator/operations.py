"""What the emulator has done: requests, seconds and CPU seconds per operation.

`GET /_local/operations` answers what the emulator has done since it started: per operation
(X-Amz-Target, e.g. `DynamoDB_20120810.TransactWriteItems`) the requests, the seconds spent on
them (a long poll's wait included) and the CPU seconds their threads used, the seconds DynamoDB
requests waited for their turn, and the process's CPU seconds. moto is
one Python process (one core at a time), so CPU seconds per wall second near 1 mean the emulator
is the bottleneck; the bench reads it before and after its throughput run.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Iterable

from infra.local.emulator.serialized import _WAITED

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
