"""The AWS emulator: moto's server, with DynamoDB requests serialized.

    python -m infra.local.emulator -H 127.0.0.1 -p 4566

moto's threaded server can let two concurrent conditional writes to the same DynamoDB
item both succeed (each reads the item before the other writes). Real DynamoDB never
does, and this service's guarantees (one claim per message, one queueing per dispatch,
one staff user per work item) rest on that. Serializing DynamoDB requests restores
it; SQS (whose long polls must not block everything) and EventBridge stay threaded.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, Callable, Iterable

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app, signal_handler
from werkzeug.serving import run_simple

_DYNAMODB = threading.Lock()


class SerializedDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, the response read inside the lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _DYNAMODB:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.local.emulator", description=__doc__.split("\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal_handler)
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]
    run_simple(args.host, args.port, SerializedDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    sys.exit(main())
