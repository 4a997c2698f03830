"""Fixtures for the local-stack tests: a moto server on a free port and a fake Lambda invoke API.

Everything listens on 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from infra.local.common import JsonHandler, Server  # noqa: E402

# Values for the template's parameters that have no default.
PARAMS = {
    "TwilioAccountSid": "AC" + "1" * 32,
    "PublicBaseUrl": "http://127.0.0.1:3000",
}
# The Twilio auth token, as the operator puts it in its secret (never a parameter).
TWILIO_TOKEN = "test-auth-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def serve(server: Server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


def start_emulator(port: int, *extra: str, cwd: Path = REPO_ROOT, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`python -m infra.local.emulator` (moto, as `make dev` runs it) on `port`, answering;
    fails the test loudly (with the emulator's stderr) if it does not start within 20 s. Its stderr
    (a line per IAM denial and per error) goes to `log`, else to a pipe: only for short-lived emulators, since a pipe
    nobody reads fills up and stops the emulator."""
    if not (Path(sys.executable).parent / "moto_server").exists():
        pytest.fail("moto is not installed in this interpreter: run the tests from the project venv (make test-local)")
    err = open(log, "wb") if log is not None else subprocess.PIPE  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen([sys.executable, "-m", "infra.local.emulator", "-H", "127.0.0.1", "-p", str(port), *extra],
                            cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                            stdout=subprocess.DEVNULL, stderr=err)
    if log is not None:
        err.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).read()  # noqa: S310
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                text = log.read_text(errors="replace") if log else proc.stderr.read().decode()  # type: ignore[union-attr]
                pytest.fail(f"the emulator did not start on port {port}: {text[-800:]}")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def emulator_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emulator") / "emulator.log"


@pytest.fixture(scope="session")
def moto_endpoint(emulator_log: Path) -> Iterator[str]:
    """The project's emulator on a free port for the whole session (its log: the `emulator_log` fixture)."""
    port = free_port()
    proc = start_emulator(port, log=emulator_log)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


class FakeLambda:
    """A stand-in for the Lambda invoke API that records events and answers with `respond`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.respond: Callable[[str, dict[str, Any]], tuple[int, Any, dict[str, str]]] = \
            lambda fn, ev: (200, {"statusCode": 200, "body": "ok"}, {})
        fake = self

        class Handler(JsonHandler):
            quiet = True

            def do_POST(self) -> None:
                parts = self.path.split("/")  # /2015-03-31/functions/<name>/invocations
                event = json.loads(self.read_body())
                fake.calls.append((parts[3], event))
                status, body, headers = fake.respond(parts[3], event)
                self.send_json(status, body, headers=headers)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve(self.server)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_lambda() -> Iterator[FakeLambda]:
    fake = FakeLambda()
    yield fake
    fake.close()


def without(template: dict[str, Any], function: str, action: str | None = None,
            resource: str | None = None) -> dict[str, Any]:
    """A copy of the template whose `function` policy lacks `action` (or `resource`, given in Sub form)."""
    doc = copy.deepcopy(template)
    for statement in doc["Resources"][function]["Properties"]["Policies"][0]["Statement"]:
        if "Action" not in statement:  # a conditional statement (Fn::If: End User Messaging's grants)
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if action in actions:
            statement["Action"] = [a for a in actions if a != action] or ["none:None"]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        statement["Resource"] = [r for r in resources if r != {"Fn::Sub": resource}] or ["arn:none"]
    return doc
