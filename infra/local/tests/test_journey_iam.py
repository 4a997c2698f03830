"""The product on the whole local stack (`infra.local.dev`, the real function binaries): with the template
as it is, an approval code and then a consented text go out; with a copy whose DeliverFunction policy
lacks dynamodb:ConditionCheckItem, the same journey fails at deliver's claim, as it would in AWS.

Needs the functions built (`make test` builds them before these tests; `cargo build --bins` does too);
skipped otherwise.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from conftest import unique, without
from stack import BUILT, Stack, daytime_zone, DEALER_NUMBER, PHONE

from infra.local import template as tpl

pytestmark = BUILT


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
