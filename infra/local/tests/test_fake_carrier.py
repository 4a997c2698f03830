"""The fake carrier signs like Twilio, checks basic auth, and lets a test play the phone."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Iterator
from urllib.parse import parse_qs, urlencode

import pytest
from conftest import serve

from infra.local.common import JsonHandler, Server
from infra.local.fake_carrier import Carrier, make_server, segments, twilio_signature

TOKEN = "carrier-test-token"
SID = "AC" + "a" * 32


def test_twilio_published_example_vector() -> None:
    # Twilio's documented validateRequest example (twilio-python / twilio-php RequestValidator tests).
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}
    assert twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) \
        == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_segments() -> None:
    assert segments("a" * 160) == 1
    assert segments("a" * 161) == 2
    assert segments("é" * 160) == 1  # é is in GSM-7
    assert segments("ü" * 70 + "🚗") == 2  # not GSM-7: UCS-2 70/67


class Webhooks:
    """A service stand-in that records the webhooks it receives and answers 200 with TwiML."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], str]] = []  # (path, form, signature)
        self.arrived = threading.Condition()
        hooks = self

        class Handler(JsonHandler):
            quiet = True

            def do_POST(self) -> None:
                form = {k: v[0] for k, v in parse_qs(self.read_body().decode()).items()}
                with hooks.arrived:
                    hooks.received.append((self.path, form, self.headers.get("X-Twilio-Signature", "")))
                    hooks.arrived.notify_all()
                self.send_bytes(200, b"<Response/>", "application/xml")

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve(self.server)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[str, dict[str, str], str]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, timeout), self.received
            return list(self.received)


@pytest.fixture
def setup() -> Iterator[tuple[str, Webhooks]]:
    hooks = Webhooks()
    carrier = Carrier(TOKEN, f"{hooks.base}/v1/carrier/twilio/inbound", callback_delay=0.01)
    server = make_server("127.0.0.1", 0, carrier)
    server.RequestHandlerClass.quiet = True  # type: ignore[attr-defined]
    serve(server)
    yield f"http://127.0.0.1:{server.server_address[1]}", hooks
    server.shutdown()
    hooks.server.shutdown()


def call(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def send(base: str, form: dict[str, str], sid: str = SID, token: str = TOKEN) -> tuple[int, Any]:
    auth = base64.b64encode(f"{sid}:{token}".encode()).decode()
    return call("POST", f"{base}/2010-04-01/Accounts/{sid}/Messages.json", urlencode(form).encode(),
                {"Authorization": f"Basic {auth}", "Content-Type": "application/x-www-form-urlencoded"})


def test_reply_posts_a_verifiably_signed_webhook(setup: tuple[str, Webhooks]) -> None:
    base, hooks = setup
    req = urllib.request.Request(f"{base}/reply", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"from": "+13125550142", "to": "+12025550100", "body": "Agree"}).encode())
    with urllib.request.urlopen(req, timeout=10) as res:  # noqa: S310 - loopback
        status, body, sid = res.status, res.read().decode(), res.headers["X-Message-Sid"]
    assert (status, body) == (200, "<Response/>")
    ((path, form, signature),) = hooks.wait_for(1)
    assert form["MessageSid"] == sid  # the phone's side knows which text it was
    assert path == "/v1/carrier/twilio/inbound"
    assert signature == twilio_signature(TOKEN, f"{hooks.base}{path}", form)
    assert signature != twilio_signature("another-token", f"{hooks.base}{path}", form)
    assert form["From"] == "+13125550142" and form["To"] == "+12025550100" and form["Body"] == "Agree"
    assert form["MessageSid"].startswith("SM") and len(form["MessageSid"]) == 34
    assert (form["NumMedia"], form["NumSegments"], form["ApiVersion"]) == ("0", "1", "2010-04-01")


def test_send_refuses_bad_basic_auth(setup: tuple[str, Webhooks]) -> None:
    base, _ = setup
    status, body = send(base, {"To": "+13125550142", "From": "+12025550100", "Body": "hi"}, token="wrong")
    assert status == 401 and body["code"] == 20003
    status, _ = call("POST", f"{base}/2010-04-01/Accounts/{SID}/Messages.json", b"To=x")
    assert status == 401
    assert call("GET", f"{base}/messages")[1] == []


def test_send_lists_and_calls_back_signed(setup: tuple[str, Webhooks]) -> None:
    base, hooks = setup
    callback = f"{hooks.base}/v1/carrier/twilio/status"
    status, body = send(base, {"To": "+13125550142", "From": "+12025550100", "Body": "Your code is 123456",
                               "StatusCallback": callback})
    assert status == 201
    assert body["sid"].startswith("SM") and body["status"] == "queued" and body["num_segments"] == "1"
    assert (body["to"], body["from"], body["account_sid"]) == ("+13125550142", "+12025550100", SID)
    listed = call("GET", f"{base}/messages?to=%2B13125550142")[1]
    assert [m["sid"] for m in listed] == [body["sid"]] and listed[0]["body"] == "Your code is 123456"
    callbacks = hooks.wait_for(2)
    assert [c[1]["MessageStatus"] for c in callbacks] == ["sent", "delivered"]
    for path, form, signature in callbacks:
        assert form["MessageSid"] == body["sid"] and form["AccountSid"] == SID
        assert signature == twilio_signature(TOKEN, callback, form)
    deadline = time.monotonic() + 5
    while call("GET", f"{base}/messages")[1][0]["status"] != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_injected_failures_then_recovery(setup: tuple[str, Webhooks]) -> None:
    base, _ = setup
    call("POST", f"{base}/fail", json.dumps({"count": 1, "status": 400, "code": 21610}).encode())
    form = {"To": "+13125550142", "From": "+12025550100", "Body": "hi"}
    status, body = send(base, form)
    assert status == 400 and body == {"code": 21610, "message": "injected failure", "status": 400,
                                      "more_info": "https://www.twilio.com/docs/errors/21610"}
    assert send(base, form)[0] == 201
    call("POST", f"{base}/hang", json.dumps({"count": 1, "seconds": 0.3}).encode())
    started = time.monotonic()
    assert send(base, form)[0] == 201
    assert time.monotonic() - started >= 0.3
    assert call("DELETE", f"{base}/messages")[0] == 204
    assert call("GET", f"{base}/messages")[1] == []


def test_accept_then_hang_past_the_client_timeout(setup: tuple[str, Webhooks]) -> None:
    """The message reaches the phone (and its callbacks come), but the answer comes after the client gave up."""
    base, hooks = setup
    status, body = call("POST", f"{base}/accept-and-hang", json.dumps({"count": 1, "seconds": 3}).encode())
    assert (status, body) == (200, {"acceptingLate": 1})
    callback = f"{hooks.base}/v1/carrier/twilio/status"
    form = {"To": "+13125550142", "From": "+12025550100", "Body": "Your code is 123456", "StatusCallback": callback}
    auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    req = urllib.request.Request(f"{base}/2010-04-01/Accounts/{SID}/Messages.json", data=urlencode(form).encode(),
                                 method="POST", headers={"Authorization": f"Basic {auth}",
                                                         "Content-Type": "application/x-www-form-urlencoded"})
    started = time.monotonic()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        urllib.request.urlopen(req, timeout=0.5)  # noqa: S310 - the client's timeout
    assert time.monotonic() - started < 2
    listed = call("GET", f"{base}/messages?to=%2B13125550142")[1]
    assert len(listed) == 1 and listed[0]["body"] == "Your code is 123456", "the phone got the text"
    assert [c[1]["MessageStatus"] for c in hooks.wait_for(2)] == ["sent", "delivered"]
    started = time.monotonic()
    assert send(base, {k: v for k, v in form.items() if k != "StatusCallback"})[0] == 201
    assert time.monotonic() - started < 1, "only the next send was held back"
