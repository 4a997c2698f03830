"""The fake carrier behaves as Twilio documents: webhook delivery and its connection overrides, status callbacks
twice or out of order, the REST concurrency limit (429 / 20429), accepted-then-5xx sends, the message list, and the
account's numbers (IncomingPhoneNumbers), whose SmsUrl receives the texts sent to them.

Everything listens on 127.0.0.1 and every wait is bounded (timeouts come from the fragment overrides).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator
from urllib.parse import parse_qs, urlencode

import pytest
from conftest import free_port, serve

from infra.local.common import JsonHandler, Server
from infra.local.fake_carrier import (Carrier, WebhookError, carrier_from_env, deliver_webhook, make_server,
                                      number_sid, twilio_error, twilio_signature)

TOKEN = "carrier-test-token"
SID = "AC" + "b" * 32
PHONE, OTHER_PHONE, DEALER, OTHER_DEALER = "+13125550142", "+13125550143", "+12025550100", "+12025550101"
RFC2822 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                     r"\d\d:\d\d:\d\d \+0000$")


@dataclass
class Hook:
    path: str
    form: dict[str, str]
    signature: str
    token: str


class Service:
    """A service stand-in: records every webhook and answers as scripted, a (status, delay) per request, then 200."""

    def __init__(self) -> None:
        self.received: list[Hook] = []
        self.script: list[tuple[int, float]] = []
        self.arrived = threading.Condition()
        service = self

        class Handler(JsonHandler):
            quiet = True

            def do_POST(self) -> None:
                form = {k: v[0] for k, v in parse_qs(self.read_body().decode()).items()}
                with service.arrived:
                    service.received.append(Hook(self.path, form, self.headers.get("X-Twilio-Signature", ""),
                                                 self.headers.get("I-Twilio-Idempotency-Token", "")))
                    service.arrived.notify_all()
                    status, delay = service.script.pop(0) if service.script else (200, 0.0)
                time.sleep(delay)
                try:
                    self.send_bytes(status, b"<Response/>" if status < 300 else b"oops", "application/xml")
                except OSError:  # the carrier stopped waiting
                    pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve(self.server)

    def answer(self, *script: tuple[int, float]) -> None:
        with self.arrived:
            self.script.extend(script)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Hook]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, timeout), self.received
            return list(self.received)


@dataclass
class Stack:
    base: str
    service: Service
    carrier: Carrier


@pytest.fixture
def stack() -> Iterator[Stack]:
    service = Service()
    carrier = Carrier(TOKEN, f"{service.base}/inbound", callback_delay=0.01, seed=1, numbers=[DEALER, OTHER_DEALER])
    server = make_server("127.0.0.1", 0, carrier)
    server.RequestHandlerClass.quiet = True  # type: ignore[attr-defined]
    serve(server)
    yield Stack(f"http://127.0.0.1:{server.server_address[1]}", service, carrier)
    server.shutdown()
    service.server.shutdown()


def call(method: str, url: str, data: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """(status, JSON or text body, headers)."""
    raw_data = json.dumps(data).encode() if isinstance(data, dict) else data
    req = urllib.request.Request(url, data=raw_data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            raw, status, answer_headers = resp.read(), resp.status, resp.headers
    except urllib.error.HTTPError as e:
        raw, status, answer_headers = e.read(), e.code, e.headers
    try:
        return status, json.loads(raw), answer_headers
    except ValueError:
        return status, raw.decode(), answer_headers


def basic(sid: str = SID, token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()}


def send(base: str, to: str = PHONE, body: str = "Your code is 123456", **extra: str) -> tuple[int, Any]:
    form = {"To": to, "From": DEALER, "Body": body, **extra}
    status, answer, _ = call("POST", f"{base}/2010-04-01/Accounts/{SID}/Messages.json", urlencode(form).encode(),
                             {**basic(), "Content-Type": "application/x-www-form-urlencoded"})
    return status, answer


def reply(base: str, body: str = "Agree", from_: str = PHONE) -> tuple[int, Any, Any]:
    return call("POST", f"{base}/reply", {"from": from_, "to": DEALER, "body": body},
                {"Content-Type": "application/json"})


def list_messages(base: str, query: str = "", headers: dict[str, str] | None = None) -> tuple[int, Any]:
    status, answer, _ = call("GET", f"{base}/2010-04-01/Accounts/{SID}/Messages.json{query}",
                             headers=basic() if headers is None else headers)
    return status, answer


def wait_delivered(base: str, count: int) -> None:
    deadline = time.monotonic() + 5
    while [m["status"] for m in call("GET", f"{base}/messages")[1] if m["direction"] == "outbound-api"] \
            != ["delivered"] * count:
        assert time.monotonic() < deadline, call("GET", f"{base}/messages")[1]
        time.sleep(0.02)


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}/inbound"  # nothing listens there: the connection is refused


# --- webhook delivery ----------------------------------------------------------------------------------


def test_a_5xx_answer_is_not_retried_by_default(stack: Stack) -> None:
    stack.service.answer((500, 0.0))
    status, body, headers = reply(stack.base)
    assert (status, body, headers["X-Webhook-Attempts"]) == (500, "oops", "1")
    assert len(stack.service.received) == 1


def test_overrides_retry_5xx_with_one_token_signed_without_the_fragment(stack: Stack) -> None:
    url = f"{stack.service.base}/inbound"
    stack.carrier.inbound_url = f"{url}#rc=3&rp=5xx&ct=1000&rt=2000&tt=5000"
    stack.service.answer((503, 0.0), (502, 0.0))
    status, body, headers = reply(stack.base)
    assert (status, body, headers["X-Webhook-Attempts"]) == (200, "<Response/>", "3"), "the last attempt's answer"
    hooks = stack.service.received
    assert [h.path for h in hooks] == ["/inbound"] * 3, "the fragment is not sent"
    assert len({h.token for h in hooks}) == 1 and len(hooks[0].token) == 32, "one idempotency token for the retries"
    for hook in hooks:
        assert hook.signature == twilio_signature(TOKEN, url, hook.form), "signed without the fragment"
    assert hooks[0].signature != twilio_signature(TOKEN, stack.carrier.inbound_url, hooks[0].form)


def test_a_failed_connection_is_retried_once_by_default(stack: Stack) -> None:
    url = closed_url()
    for fragment, attempts in (("", 2), ("#rc=0", 1), ("#rc=4", 5), ("#rc=9", 6), ("#rc=2&rp=5xx", 1)):
        with pytest.raises(WebhookError) as failed:
            deliver_webhook(url + fragment, {"Body": "hi"}, TOKEN)
        assert (failed.value.kind, failed.value.attempts) == ("ct", attempts), fragment
    stack.carrier.inbound_url = url
    status, body, _ = reply(stack.base)
    assert status == 502 and body["attempts"] == 2 and "inbound webhook failed" in body["message"]


def test_a_read_timeout_is_retried_only_under_rp_rt(stack: Stack) -> None:
    url = f"{stack.service.base}/inbound"
    stack.service.answer((200, 1.0))
    started = time.monotonic()
    with pytest.raises(WebhookError) as failed:
        deliver_webhook(f"{url}#rt=200", {"Body": "hi"}, TOKEN)
    assert (failed.value.kind, failed.value.attempts) == ("rt", 1)
    assert time.monotonic() - started < 0.9
    stack.service.answer((200, 1.0))
    started = time.monotonic()
    assert deliver_webhook(f"{url}#rt=200&rp=rt", {"Body": "hi"}, TOKEN) == (200, b"<Response/>", 2)
    assert time.monotonic() - started < 0.9


def test_total_time_bounds_every_attempt(stack: Stack) -> None:
    stack.service.answer(*[(200, 1.0)] * 6)
    started = time.monotonic()
    with pytest.raises(WebhookError) as failed:
        deliver_webhook(f"{stack.service.base}/inbound#rc=5&rp=all&rt=300&tt=700", {"Body": "hi"}, TOKEN)
    assert failed.value.kind == "rt" and 2 <= failed.value.attempts <= 3, failed.value.attempts
    assert time.monotonic() - started < 1.0


def test_a_4xx_answer_is_retried_only_under_rp_4xx(stack: Stack) -> None:
    url = f"{stack.service.base}/inbound"
    stack.service.answer(*[(404, 0.0)] * 10)
    assert deliver_webhook(url, {"Body": "hi"}, TOKEN) == (404, b"oops", 1)
    assert deliver_webhook(f"{url}#rc=2&rp=5xx,ct", {"Body": "hi"}, TOKEN) == (404, b"oops", 1)
    assert deliver_webhook(f"{url}#rc=2&rp=4xx", {"Body": "hi"}, TOKEN) == (404, b"oops", 3)
    assert deliver_webhook(f"{url}#rc=1&rp=all", {"Body": "hi"}, TOKEN) == (404, b"oops", 2)


def test_status_callbacks_are_delivered_the_same_way(stack: Stack) -> None:
    url = f"{stack.service.base}/status"
    stack.service.answer((500, 0.0))
    assert send(stack.base, StatusCallback=url)[0] == 201
    assert [h.form["MessageStatus"] for h in stack.service.wait_for(2)] == ["sent", "delivered"]
    time.sleep(0.2)
    assert len(stack.service.received) == 2, "a 5xx status callback is not retried by default"

    stack.service.received.clear()
    stack.service.answer((500, 0.0))
    assert send(stack.base, StatusCallback=f"{url}#rc=1&rp=5xx")[0] == 201
    hooks = stack.service.wait_for(3)
    assert [h.form["MessageStatus"] for h in hooks] == ["sent", "sent", "delivered"]
    assert hooks[0].token == hooks[1].token != hooks[2].token
    for hook in hooks:
        assert hook.path == "/status" and hook.signature == twilio_signature(TOKEN, url, hook.form)


# --- status callbacks twice and out of order --------------------------------------------------------------


def test_callback_plans_follow_the_seed() -> None:
    def plans(carrier: Carrier) -> list[list[tuple[str, list[str]]]]:
        return [carrier.callback_plan() for _ in range(40)]

    seeded = plans(Carrier(TOKEN, "", seed=42, duplicate=0.5, reorder=0.5))
    assert seeded == plans(Carrier(TOKEN, "", seed=42, duplicate=0.5, reorder=0.5)), "the same seed, the same plans"
    assert seeded != plans(Carrier(TOKEN, "", seed=43, duplicate=0.5, reorder=0.5))
    assert [("sent", []), ("delivered", ["delivered", "sent"])] in seeded, "delivered sometimes overtakes sent"
    assert any(len(posts) > len(set(posts)) for plan in seeded for _, posts in plan), "a callback sometimes twice"
    in_order = [("sent", ["sent"]), ("delivered", ["delivered"])]
    assert plans(Carrier(TOKEN, "", seed=42)) == [in_order] * 40, "by default: once each, in order"
    assert isinstance(Carrier(TOKEN, "").seed, int)


def test_callbacks_twice_and_out_of_order_at_runtime(stack: Stack) -> None:
    callback = f"{stack.service.base}/status"
    status, odds, _ = call("POST", f"{stack.base}/callbacks", {"duplicate": 1, "reorder": 1})
    assert (status, odds) == (200, {"duplicate": 1.0, "reorder": 1.0, "seed": 1})
    status, created = send(stack.base, StatusCallback=callback)
    assert status == 201
    hooks = stack.service.wait_for(4)
    assert [h.form["MessageStatus"] for h in hooks] == ["delivered", "delivered", "sent", "sent"]
    assert {h.form["MessageSid"] for h in hooks} == {created["sid"]}
    wait_delivered(stack.base, 1)  # the message itself went sent, then delivered

    assert call("POST", f"{stack.base}/callbacks", {"duplicate": 0})[1]["reorder"] == 1.0, "reorder stays"
    stack.service.received.clear()
    send(stack.base, StatusCallback=callback)
    assert [h.form["MessageStatus"] for h in stack.service.wait_for(2)] == ["delivered", "sent"]
    assert call("POST", f"{stack.base}/callbacks", {"reorder": 1.5})[0] == 400
    assert call("POST", f"{stack.base}/callbacks", b"[1]")[0] == 400


def test_environment_settings() -> None:
    carrier = carrier_from_env({}, TOKEN)
    assert (carrier.duplicate, carrier.reorder, carrier.max_concurrent) == (0.0, 0.0, 0)
    assert isinstance(carrier.seed, int)
    carrier = carrier_from_env({"CARRIER_SEED": "7", "STATUS_CALLBACK_DUPLICATE": "0.25",
                                "STATUS_CALLBACK_REORDER": "0.5", "CARRIER_MAX_CONCURRENT": "3"}, TOKEN)
    assert (carrier.seed, carrier.duplicate, carrier.reorder, carrier.max_concurrent) == (7, 0.25, 0.5, 3)
    assert carrier.callback_plan() == Carrier(TOKEN, "", seed=7, duplicate=0.25, reorder=0.5).callback_plan()
    with pytest.raises(ValueError):
        carrier_from_env({"STATUS_CALLBACK_REORDER": "1.5"}, TOKEN)


# --- the REST concurrency limit ---------------------------------------------------------------------------


def burst(base: str, count: int) -> list[tuple[int, Any]]:
    """`count` sends at once."""
    start, answers = threading.Barrier(count), []
    lock = threading.Lock()

    def one(n: int) -> None:
        start.wait(5)
        answer = send(base, body=f"text {n}")
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return answers


def test_over_the_concurrency_limit_a_send_is_answered_429_and_not_processed(stack: Stack) -> None:
    status, limits, _ = call("POST", f"{stack.base}/limits", {"latencyMs": 300})
    assert (status, limits) == (200, {"maxConcurrent": 0, "latencyMs": 300.0, "inFlight": 0})
    assert sorted(s for s, _ in burst(stack.base, 5)) == [201] * 5, "no limit by default"

    call("DELETE", f"{stack.base}/messages")
    assert call("POST", f"{stack.base}/limits", {"maxConcurrent": 2, "latencyMs": 800})[1]["maxConcurrent"] == 2
    started = time.monotonic()
    answers = burst(stack.base, 5)
    assert time.monotonic() - started < 2
    assert sorted(s for s, _ in answers) == [201, 201, 429, 429, 429]
    assert all(body == twilio_error(429, 20429, "Too Many Requests") for s, body in answers if s == 429)
    assert len(call("GET", f"{stack.base}/messages")[1]) == 2, "a 429 was never processed"
    assert call("POST", f"{stack.base}/limits", {"latencyMs": 0})[1] == {"maxConcurrent": 2, "latencyMs": 0.0,
                                                                         "inFlight": 0}
    assert send(stack.base)[0] == 201, "the places were given back"
    assert call("POST", f"{stack.base}/limits", {"maxConcurrent": -1})[0] == 400


# --- accepted, then answered 5xx --------------------------------------------------------------------------


def test_accept_then_fail(stack: Stack) -> None:
    status, pending, _ = call("POST", f"{stack.base}/accept-then-fail", {"count": 1, "status": 502})
    assert (status, pending) == (200, {"acceptingThenFailing": 1})
    status, body = send(stack.base, StatusCallback=f"{stack.service.base}/status")
    assert (status, body) == (502, twilio_error(502, 20500, "Bad Gateway"))
    listed = call("GET", f"{stack.base}/messages?to=%2B13125550142")[1]
    assert [m["body"] for m in listed] == ["Your code is 123456"], "the phone got the text"
    hooks = stack.service.wait_for(2)
    assert [h.form["MessageStatus"] for h in hooks] == ["sent", "delivered"]
    assert hooks[0].form["MessageSid"] == listed[0]["sid"]
    assert send(stack.base)[0] == 201, "only the next send"
    assert call("POST", f"{stack.base}/accept-then-fail", {"status": 200})[0] == 400


# --- the message list -------------------------------------------------------------------------------------


def test_the_list_needs_basic_auth(stack: Stack) -> None:
    status, body = list_messages(stack.base, headers={})
    assert status == 401 and body["code"] == 20003
    assert list_messages(stack.base, headers=basic(token="wrong"))[0] == 401
    assert list_messages(stack.base)[0] == 200


def test_the_list_newest_first_with_current_status(stack: Stack) -> None:
    created = [send(stack.base, to=to, body=f"text {n}")[1] for n, to in enumerate((PHONE, OTHER_PHONE, PHONE))]
    assert reply(stack.base, "Agree")[0] == 200
    wait_delivered(stack.base, 3)
    status, listing = list_messages(stack.base)
    assert status == 200
    messages = listing["messages"]
    assert [m["body"] for m in messages] == ["Agree", "text 2", "text 1", "text 0"]
    assert [(m["direction"], m["status"]) for m in messages] == [("inbound", "received")] + \
        [("outbound-api", "delivered")] * 3
    for resource, answer in zip(messages[1:], reversed(created)):
        assert set(resource) == set(answer), "the resource Create Message answers"
        assert {k: v for k, v in resource.items() if k not in ("status", "date_sent", "date_updated")} == \
            {k: v for k, v in answer.items() if k not in ("status", "date_sent", "date_updated")}
        assert answer["status"] == "queued" and answer["date_sent"] is None
    assert all(RFC2822.match(m["date_sent"]) and RFC2822.match(m["date_created"]) for m in messages), messages
    base_uri = f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert (listing["page"], listing["page_size"], listing["next_page_uri"]) == (0, 50, None)
    assert listing["uri"].startswith(base_uri) and listing["first_page_uri"].startswith(base_uri)
    assert [m["body"] for m in list_messages(stack.base, "?To=%2B13125550142")[1]["messages"]] == ["text 2", "text 0"]
    assert [m["body"] for m in list_messages(stack.base, "?From=%2B13125550142")[1]["messages"]] == ["Agree"]
    assert list_messages(stack.base, f"?To=%2B13125550142&From={DEALER.replace('+', '%2B')}")[1]["messages"] \
        == messages[1:2] + messages[3:]


def test_the_list_in_pages(stack: Stack) -> None:
    for n in range(5):
        send(stack.base, body=f"text {n}")
    page = list_messages(stack.base, "?PageSize=2")[1]
    seen = []
    while True:
        assert page["page_size"] == 2 and len(page["messages"]) <= 2
        seen += [m["body"] for m in page["messages"]]
        if page["next_page_uri"] is None:
            break
        page = call("GET", stack.base + page["next_page_uri"], headers=basic())[1]
    assert seen == [f"text {n}" for n in reversed(range(5))] and page["page"] == 2
    assert list_messages(stack.base, "?PageSize=5000")[1]["page_size"] == 1000
    assert list_messages(stack.base, "?PageSize=0")[0] == 400


def test_the_list_by_date_sent(stack: Stack) -> None:
    for day in (5, 6, 7):
        send(stack.base, body=f"December {day}")
    wait_delivered(stack.base, 3)
    sent_at = {5: datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc),
               6: datetime(2026, 12, 6, 23, 59, 59, tzinfo=timezone.utc),
               7: datetime(2026, 12, 7, 0, 0, tzinfo=timezone.utc)}
    with stack.carrier.lock:
        for message, day in zip(stack.carrier.messages, (5, 6, 7)):
            message.sent = sent_at[day]

    def days(query: str) -> list[str]:
        status, listing = list_messages(stack.base, query)
        assert status == 200, listing
        return [m["body"].split()[-1] for m in listing["messages"]]

    assert days("?DateSent=2026-12-06") == ["6"]
    assert days("?DateSent%3C=2026-12-06") == ["6", "5"], "on or before the day"
    assert days("?DateSent%3E=2026-12-06") == ["7", "6"], "on or after the day"
    assert days("?DateSent%3E=2026-12-06&DateSent%3C=2026-12-06") == ["6"]
    assert days("?DateSent=2026-12-07T01:00:00%2B02:00") == ["6"], "a time counts by its UTC day"
    assert days("?DateSent=2026-12-08") == []
    listing = list_messages(stack.base, "?DateSent%3C=2026-12-06")[1]
    assert "DateSent%3C=2026-12-06" in listing["first_page_uri"]
    assert listing["messages"][1]["date_sent"] == "Sat, 05 Dec 2026 10:00:00 +0000"
    status, body = list_messages(stack.base, "?DateSent=yesterday")
    assert status == 400 and body["status"] == 400


# --- the account's numbers (IncomingPhoneNumbers) --------------------------------------------------------


NUMBERS = f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers"


def numbers_api(base: str, method: str = "GET", path: str = ".json", form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = urlencode(form).encode() if form is not None else None
    extra = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
    status, answer, _ = call(method, f"{base}{NUMBERS}{path}", data, {**(basic() if headers is None else headers),
                                                                       **extra})
    return status, answer


def test_the_numbers_list_in_twilios_shape_filtered_by_phone_number(stack: Stack) -> None:
    status, listing = numbers_api(stack.base)
    assert status == 200
    assert [n["phone_number"] for n in listing["incoming_phone_numbers"]] == [DEALER, OTHER_DEALER]
    assert (listing["page"], listing["page_size"], listing["start"], listing["next_page_uri"]) == (0, 50, 0, None)
    assert listing["uri"].startswith(f"{NUMBERS}.json?") and listing["first_page_uri"].startswith(f"{NUMBERS}.json?")
    number = listing["incoming_phone_numbers"][0]
    assert number["sid"] == number_sid(DEALER) and re.fullmatch(r"PN[0-9a-f]{32}", number["sid"])
    assert (number["account_sid"], number["friendly_name"], number["sms_url"], number["sms_method"],
            number["status_callback"], number["uri"]) == (
        SID, "(202) 555-0100", "", "POST", "", f"{NUMBERS}/{number['sid']}.json")
    assert number["capabilities"]["sms"] is True and RFC2822.match(number["date_created"])

    only = numbers_api(stack.base, path=f".json?{urlencode({'PhoneNumber': OTHER_DEALER})}")[1]
    assert [n["phone_number"] for n in only["incoming_phone_numbers"]] == [OTHER_DEALER]
    assert "PhoneNumber=%2B12025550101" in only["uri"]
    assert len(numbers_api(stack.base, path=".json?PhoneNumber=555010*")[1]["incoming_phone_numbers"]) == 2, \
        "a part of the number, * for any digit"
    assert numbers_api(stack.base, path=".json?PhoneNumber=%2B13125550100")[1]["incoming_phone_numbers"] == []
    paged = numbers_api(stack.base, path=".json?PageSize=1")[1]
    assert len(paged["incoming_phone_numbers"]) == 1 and paged["next_page_uri"] is not None


def test_one_number_and_an_unknown_sid(stack: Stack) -> None:
    sid = number_sid(DEALER)
    status, number = numbers_api(stack.base, path=f"/{sid}.json")
    assert (status, number["phone_number"], number["sid"]) == (200, DEALER, sid)
    unknown = "PN" + "0" * 32
    for method, form in (("GET", None), ("POST", {"SmsUrl": "https://example.test/in"})):
        status, error = numbers_api(stack.base, method, f"/{unknown}.json", form)
        assert status == 404 and set(error) == {"code", "message", "more_info", "status"}, (method, error)
        assert (error["code"], error["status"]) == (20404, 404) and unknown in error["message"]
        assert error["more_info"] == "https://www.twilio.com/docs/errors/20404"


def test_the_numbers_api_needs_basic_auth(stack: Stack) -> None:
    sid = number_sid(DEALER)
    for method, path, form in (("GET", ".json", None), ("GET", f"/{sid}.json", None),
                               ("POST", f"/{sid}.json", {"SmsUrl": "https://evil.test/in"})):
        for headers in ({}, basic(token="wrong"), basic(sid="AC" + "c" * 32)):
            status, error = numbers_api(stack.base, method, path, form, headers)
            assert (status, error["code"], error["status"]) == (401, 20003, 401), (method, path, headers)
    assert numbers_api(stack.base, path=f"/{sid}.json")[1]["sms_url"] == "", "nothing changed"


def test_an_update_keeps_the_known_parameters_and_ignores_the_rest(stack: Stack) -> None:
    sid = number_sid(DEALER)
    url = f"{stack.service.base}/v1/carrier/twilio/inbound#rc=3&rp=all"
    status, number = numbers_api(stack.base, "POST", f"/{sid}.json", {
        "SmsUrl": url, "SmsMethod": "POST", "StatusCallback": "https://example.test/calls",
        "SmsFallbackUrl": "", "NoSuchParameter": "x", "TrunkSid": "TK" + "0" * 32})
    assert status == 200, number
    assert (number["sms_url"], number["sms_method"], number["status_callback"], number["sms_fallback_url"]) == (
        url, "POST", "https://example.test/calls", "")
    assert "NoSuchParameter" not in number and "no_such_parameter" not in number and number["trunk_sid"] is None
    assert numbers_api(stack.base, path=f"/{sid}.json")[1] == number, "stored"
    assert numbers_api(stack.base, "POST", f"/{sid}.json", {"FriendlyName": "Demo"})[1]["sms_url"] == url, \
        "a parameter not given stays"
    for bad in ({"SmsMethod": "PUT"}, {"SmsUrl": "ftp://example.test/in"}):
        status, error = numbers_api(stack.base, "POST", f"/{sid}.json", {**bad, "FriendlyName": "changed"})
        assert (status, error["code"]) == (400, 20001), bad
    assert numbers_api(stack.base, path=f"/{sid}.json")[1]["friendly_name"] == "Demo", "a refused update changes nothing"


def test_a_text_goes_to_the_numbers_sms_url_with_its_retry_fragment(stack: Stack) -> None:
    url = f"{stack.service.base}/configured"
    numbers_api(stack.base, "POST", f"/{number_sid(DEALER)}.json", {"SmsUrl": f"{url}#rc=2&rp=5xx", "SmsMethod": "POST"})
    stack.service.answer((503, 0.0))
    status, body, headers = reply(stack.base)
    assert (status, body, headers["X-Webhook-Attempts"]) == (200, "<Response/>", "2"), "retried as the fragment says"
    hooks = stack.service.received
    assert [h.path for h in hooks] == ["/configured"] * 2, "the number's SmsUrl, not INBOUND_WEBHOOK_URL"
    assert all(h.signature == twilio_signature(TOKEN, url, h.form) for h in hooks), "signed without the fragment"
    assert hooks[0].form["To"] == DEALER and hooks[0].token == hooks[1].token

    stack.service.received.clear()
    status, _, _ = call("POST", f"{stack.base}/reply", {"from": PHONE, "to": OTHER_DEALER, "body": "hi"},
                        {"Content-Type": "application/json"})
    assert status == 200 and [h.path for h in stack.service.received] == ["/inbound"], \
        "a number with no SmsUrl: INBOUND_WEBHOOK_URL, as before"
    stack.service.received.clear()
    call("POST", f"{stack.base}/reply", {"from": PHONE, "to": "+14155550100", "body": "hi"},
         {"Content-Type": "application/json"})
    assert [h.path for h in stack.service.received] == ["/inbound"], "a number the account does not hold"


def test_a_numbers_sms_method_get_puts_the_parameters_in_the_signed_query(stack: Stack) -> None:
    seen: list[tuple[str, str]] = []

    class Handler(JsonHandler):
        quiet = True

        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("X-Twilio-Signature", "")))
            self.send_bytes(200, b"<Response/>", "application/xml")

    server = Server(("127.0.0.1", 0), Handler)
    serve(server)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        numbers_api(stack.base, "POST", f"/{number_sid(DEALER)}.json", {"SmsUrl": f"{base}/in?x=1", "SmsMethod": "get"})
        assert reply(stack.base, "Agree")[0] == 200
        (path, signature), = seen
        form = {k: v[0] for k, v in parse_qs(path.split("?", 1)[1]).items()}
        assert form["x"] == "1" and form["Body"] == "Agree" and form["To"] == DEALER
        assert signature == twilio_signature(TOKEN, base + path, {}), "the whole URL is signed, no POST parameters"
    finally:
        server.shutdown()


def test_the_account_holds_the_local_stacks_numbers() -> None:
    carrier = carrier_from_env({"NUMBER_POOL": "+12025550101..+12025550103", "DEMO_TEXTING_NUMBER": "+12025550100"},
                               TOKEN)
    assert list(carrier.numbers) == ["+12025550101", "+12025550102", "+12025550103", "+12025550100"]
    assert list(carrier_from_env({"NUMBER_POOL": "+12025550101", "CARRIER_NUMBERS": "+13125550100"},
                                 TOKEN).numbers) == ["+13125550100"]
    assert carrier_from_env({}, TOKEN).numbers == {}
    with pytest.raises(ValueError):
        carrier_from_env({"CARRIER_NUMBERS": "+1202..."}, TOKEN)
