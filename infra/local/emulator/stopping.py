"""Stopping without breaking a promise: nothing is answered that the saved state lacks.

AWS never loses a write it answered 200. moto's threaded server keeps answering on its open
connections while the process saves its state and exits, so a write let in after the snapshot
was answered and then lost with the process (seen in the fault run: a text recorded `sent` by
deliver came back `sending` after the restart). The gate closes first: a request that arrives
once the emulator is stopping is never let in and never answered (its client sees the
connection go, as from a process that went away, and retries); the state is saved only after
the requests already in have finished. SQS long polls are not waited for: they only receive,
and a message received after the snapshot comes back after the restart, as at-least-once
delivery allows.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterable

# Receives that may wait up to 20 s for a message (WaitTimeSeconds): not waited for.
_LONG_POLLS = ("AmazonSQS.ReceiveMessage",)


class StopGate:
    """WSGI middleware: counts the requests inside; `close` lets no more in and waits for them."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self._changed = threading.Condition()
        self._inside = 0
        self._closed = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "") in _LONG_POLLS:
            return self.app(environ, start_response)
        with self._changed:
            if self._closed:
                # Never answered: the thread waits for the process to end (daemon threads do not
                # hold it up), and the client's connection goes with it.
                while True:
                    self._changed.wait()
            self._inside += 1
        try:
            # The whole response is made inside: what it answers is in the state before `close`
            # returns.
            return list(self.app(environ, start_response))
        finally:
            with self._changed:
                self._inside -= 1
                self._changed.notify_all()

    def close(self, timeout: float) -> int:
        """Lets no request in from now on and waits up to `timeout` seconds for those inside to
        finish; returns how many are still inside."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._closed = True
            while self._inside > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return self._inside
