"""The whole local stack (`python -m infra.local.dev`, the real function binaries) on free ports, for
the tests that use the product end to end: the IAM journey and the portal in a browser.

Needs the functions built (`make test` builds them before these tests; `cargo build --bins` does too);
the tests that use it are skipped otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT, free_port, unique

from infra.local import template as tpl
from infra.local.common import ENV_EXAMPLE, read_env_file
from infra.local.token import cognito_client, issue, stack_env_file

BINARIES = [REPO_ROOT / "target" / "debug" / name for name in tpl.function_settings(tpl.load())]
BUILT = pytest.mark.skipif(not all(b.exists() for b in BINARIES),
                           reason="the function binaries are not built (make test builds them first)")

PHONE = "+13125550143"
DEALER_NUMBER = "+12025550101"  # in the pool: a number the dealer may take
SETTINGS = {
    "LOCAL_STAFF_PASSWORD": "Test-staff-password-0123456789-Aa1",
    "TWILIO_AUTH_TOKEN": "test-twilio-auth-token",
    "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
    "CODE_HASH_KEY": "test-code-hash-key-0123456789abcdef",
    "SCHEDULE_PERIOD_SECONDS": "2",
    "NUMBER_POOL": "+12025550101,+12025550102",
}


def zone_where_it_is(hour: int) -> str:
    """A zone (Etc/GMT±N) whose clocks show `hour` o'clock now."""
    behind = (datetime.now(timezone.utc).hour - hour) % 24
    behind = behind - 24 if behind > 12 else behind
    return "Etc/UTC" if behind == 0 else f"Etc/GMT+{behind}" if behind > 0 else f"Etc/GMT-{-behind}"


def daytime_zone() -> str:
    """A zone where it is early afternoon now, so quiet hours never get in the way."""
    return zone_where_it_is(13)


class Stack:
    """`python -m infra.local.dev` on free ports with its own emulator and the given template."""

    def __init__(self, tmp_path: Path, template: Path, dealer: str = "journey-motors") -> None:
        self.name = unique("journey")
        settings = {**read_env_file(ENV_EXAMPLE), **SETTINGS}
        env_file = tmp_path / f"{self.name}.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        self.settings = settings
        ports = [free_port() for _ in range(5)]
        self.gateway, self.carrier = f"http://127.0.0.1:{ports[1]}", f"http://127.0.0.1:{ports[2]}"
        self.portal = f"http://127.0.0.1:{ports[4]}"
        self.log = tmp_path / f"{self.name}.log"
        self.emulator_log = REPO_ROOT / ".local" / f"{self.name}-moto.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "infra.local.dev", "--no-seed", "--no-build", "--stack", self.name,
                 "--emulator-port", str(ports[0]), "--gateway-port", str(ports[1]), "--carrier-port", str(ports[2]),
                 "--lambda-port", str(ports[3]), "--portal-port", str(ports[4]), "--env-file", str(env_file), "--template", str(template)],
                cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        deadline = time.monotonic() + 120
        while "dev: ready" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the stack did not start:\n{self.tail()}")
            time.sleep(0.2)
        self.emulator = f"http://127.0.0.1:{ports[0]}"
        self.token = self.sign_in(dealer, "staff-1", ["dealer-admin"])

    @property
    def resources(self) -> dict[str, str]:
        """The stack's env (.local/<stack>.env): its resources' names, the user pool's ids, ..."""
        return read_env_file(stack_env_file(self.name))

    def cognito(self) -> Any:
        """An administrator's client of the stack's user pool (moto's Cognito)."""
        return cognito_client(self.emulator, self.settings)

    def sign_in(self, dealer: str, user: str, roles: list[str] | None = None) -> str:
        """A token from the stack's user pool, as `make token` gets it."""
        return issue(self.settings, read_env_file(stack_env_file(self.name)), self.emulator, dealer, user, roles or [])

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for leftover in (REPO_ROOT / ".local").glob(f"{self.name}*"):
            leftover.unlink()

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             base: str | None = None) -> tuple[int, Any]:
        req = urllib.request.Request((base or self.gateway) + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.token}", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - local
                raw, status = resp.read(), resp.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def ok(self, method: str, path: str, body: Any, expected: int, **kwargs: Any) -> Any:
        status, value = self.call(method, path, body, **kwargs)
        assert status == expected, f"{method} {path}: {status} {value}\n{self.tail()}"
        return value

    def texts(self, seen: int, within: float, phone: str = PHONE,
              sender: str = DEALER_NUMBER) -> list[dict[str, Any]]:
        """The texts `phone` got from `sender`, once there are more than `seen` (or when `within` seconds
        passed)."""
        deadline = time.monotonic() + within
        while True:
            # What the service sent (not a carrier's own answers to STOP and HELP).
            inbox = [m for m in self.call("GET", f"/messages?to={phone.replace('+', '%2B')}", base=self.carrier)[1]
                     if m["from"] == sender and m["direction"] != "outbound-reply"]
            if len(inbox) > seen or time.monotonic() > deadline:
                return inbox
            time.sleep(0.3)
