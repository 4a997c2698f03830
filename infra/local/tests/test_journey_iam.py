"""The product on the whole local stack (`infra.local.dev`, the real function binaries): with the template
as it is, an approval code and then a consented text go out; with a copy whose DeliverFunction policy
lacks dynamodb:ConditionCheckItem, the same journey fails at deliver's claim, as it would in AWS.

Needs the functions built (`make test` builds them before these tests; `cargo build --bins` does too);
skipped otherwise.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from conftest import REPO_ROOT, free_port, unique, without

from infra.local import template as tpl
from infra.local.common import ENV_EXAMPLE, read_env_file
from infra.local.token import make_token

BINARIES = [REPO_ROOT / "target" / "debug" / name for name in tpl.function_settings(tpl.load())]
pytestmark = pytest.mark.skipif(not all(b.exists() for b in BINARIES),
                                reason="the function binaries are not built (make test builds them first)")

PHONE = "+13125550143"
DEALER_NUMBER = "+12025550101"  # in the pool: a number the dealer may take
SETTINGS = {
    "PORTAL_JWT_SECRET": "test-portal-secret-0123456789abcdef",
    "TWILIO_AUTH_TOKEN": "test-twilio-auth-token",
    "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
    "CODE_HASH_KEY": "test-code-hash-key-0123456789abcdef",
    "SCHEDULE_PERIOD_SECONDS": "2",
    "NUMBER_POOL": "+12025550101,+12025550102",
}


def daytime_zone() -> str:
    """A zone where it is early afternoon now, so quiet hours never get in the way."""
    behind = (datetime.now(timezone.utc).hour - 13) % 24
    behind = behind - 24 if behind > 12 else behind
    return "Etc/UTC" if behind == 0 else f"Etc/GMT+{behind}" if behind > 0 else f"Etc/GMT-{-behind}"


class Stack:
    """`python -m infra.local.dev` on free ports with its own emulator and the given template."""

    def __init__(self, tmp_path: Path, template: Path) -> None:
        self.name = unique("journey")
        settings = {**read_env_file(ENV_EXAMPLE), **SETTINGS}
        env_file = tmp_path / f"{self.name}.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        self.settings = settings
        ports = [free_port() for _ in range(4)]
        self.gateway, self.carrier = f"http://127.0.0.1:{ports[1]}", f"http://127.0.0.1:{ports[2]}"
        self.log = tmp_path / f"{self.name}.log"
        self.emulator_log = REPO_ROOT / ".local" / f"{self.name}-moto.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "infra.local.dev", "--no-seed", "--no-build", "--stack", self.name,
                 "--emulator-port", str(ports[0]), "--gateway-port", str(ports[1]), "--carrier-port", str(ports[2]),
                 "--lambda-port", str(ports[3]), "--env-file", str(env_file), "--template", str(template)],
                cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        deadline = time.monotonic() + 120
        while "dev: ready" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the stack did not start:\n{self.tail()}")
            time.sleep(0.2)
        self.token = make_token("journey-motors", "staff-1", 3600, settings, roles=["dealer-admin"])

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

    def texts(self, seen: int, within: float) -> list[dict[str, Any]]:
        """The texts the phone got, once there are more than `seen` (or when `within` seconds passed)."""
        deadline = time.monotonic() + within
        while True:
            inbox = [m for m in self.call("GET", f"/messages?to={PHONE.replace('+', '%2B')}", base=self.carrier)[1]
                     if m["from"] == DEALER_NUMBER]
            if len(inbox) > seen or time.monotonic() > deadline:
                return inbox
            time.sleep(0.3)


def request_code(stack: Stack) -> None:
    """Dealer and contact set up, then an approval code asked for: deliver claims and sends its text."""
    stack.ok("PUT", "/v1/dealer", {"name": "Journey Motors", "textingNumber": DEALER_NUMBER,
                                   "helpContact": "(202) 555-0199"}, 200)
    stack.ok("PUT", "/v1/contacts/C-1", {"name": "Ann", "phone": PHONE, "accountIds": ["A-1"], "dealIds": [],
                                         "timeZone": daytime_zone()}, 201)
    stack.ok("POST", "/v1/contacts/C-1/authorizations", {"category": "accounting"}, 202)


def consented_send(stack: Stack) -> str:
    """The code by text, verified; then a payment text sent now. Its message id."""
    (code_text,) = stack.texts(0, within=30)
    code = re.search(r"\b(\d{6})\b", code_text["body"]).group(1)  # type: ignore[union-attr]
    verified = stack.ok("POST", "/v1/contacts/C-1/authorizations/accounting/verify", {"code": code}, 200)
    assert verified["status"] == "authorized"
    sent = stack.ok("POST", "/v1/messages", {"contactId": "C-1", "template": "auto-pay-failure", "variables": {
        "firstName": "Ann", "amount": "412.50", "dueDate": "2026-12-01", "paymentUrl": "https://pay.example.com/a1"}},
        202, headers={"Idempotency-Key": unique("send")})
    return str(sent["messageId"])


@pytest.fixture
def stack_with(tmp_path: Path) -> Iterator[Any]:
    started: list[Stack] = []

    def start(template: dict[str, Any] | None) -> Stack:
        path = tpl.TEMPLATE_PATH
        if template is not None:
            path = tmp_path / "template.yaml"
            path.write_text(yaml.safe_dump(template))
        started.append(Stack(tmp_path, path))
        return started[-1]

    yield start
    for stack in started:
        stack.stop()


def test_the_template_lets_a_consented_text_through(stack_with: Any) -> None:
    stack = stack_with(None)
    request_code(stack)
    message_id = consented_send(stack)
    inbox = stack.texts(1, within=30)
    assert len(inbox) == 2 and "$412.50" in inbox[1]["body"], stack.tail()
    deadline = time.monotonic() + 30
    while stack.call("GET", f"/v1/messages/{message_id}")[1]["status"] not in ("sent", "delivered"):
        assert time.monotonic() < deadline, stack.tail()
        time.sleep(0.3)
    assert "emulator: iam: denied" not in stack.emulator_log.read_text(errors="replace")


def test_without_condition_check_item_deliver_cannot_claim_and_no_text_goes(stack_with: Any) -> None:
    """Every claim deliver makes is a transaction with a ConditionCheck (the pending code for a code
    text, the consent for a consented text): without dynamodb:ConditionCheckItem nothing reaches the phone."""
    stack = stack_with(without(tpl.load(), "DeliverFunction", "dynamodb:ConditionCheckItem"))
    request_code(stack)
    assert stack.texts(0, within=10) == [], "the approval code must not reach the phone"
    denials = [line for line in stack.emulator_log.read_text(errors="replace").splitlines()
               if line.startswith("emulator: iam: denied deliver: dynamodb:ConditionCheckItem on arn:aws:dynamodb:")]
    assert denials, stack.tail()
    assert re.search(r"bridge: deliver records=\d+ failures=[1-9]", stack.log.read_text(errors="replace")), \
        stack.tail()
