"""The fake's HTTP server: Twilio's REST API (Messages, IncomingPhoneNumbers) and the test controls routed
to the Carrier, each send's answer (429, injected failures, late answers), and the page to play the phone."""

from __future__ import annotations

import base64
import hmac
import html
import http.client
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from infra.local.common import JsonHandler, Server
from infra.local.fake_carrier.carrier import Carrier, log, new_sid
from infra.local.fake_carrier.messages import Message, MessageFilter, missing_parameter
from infra.local.fake_carrier.sms_voice import CONTENT_TYPE, TARGET_PREFIX, SmsVoice
from infra.local.fake_carrier.rest import ApiPath, list_page, page_of, twilio_error
from infra.local.fake_carrier.webhooks import WebhookError


@dataclass
class Answer:
    """A send's answer, and what follows it once the client has it."""

    status: int
    body: dict[str, Any]
    message: Message | None = None  # the message sent, if one was
    then: Callable[[], None] | None = None


class CarrierHandler(JsonHandler):
    server_version = "fake-carrier"
    carrier: Carrier
    sms_voice: SmsVoice | None = None  # the account's End User Messaging side, if it has one
    account_sid: str = ""  # the last account seen; used to sign replies
    CONTROLS = {"/reply": "reply", "/fail": "fail", "/hang": "hang", "/accept-and-hang": "accept_and_hang",
                "/accept-then-fail": "accept_then_fail", "/callbacks": "callbacks", "/limits": "limits"}

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        api = ApiPath.parse(parts.path)
        if api is not None:
            if not self.authorized(api.account):
                return
            if api == ApiPath(api.account, "Messages"):
                self.list_messages(api.account, parts.query)
            elif api == ApiPath(api.account, "IncomingPhoneNumbers"):
                self.list_numbers(api.account, parts.query)
            elif api.resource == "IncomingPhoneNumbers" and (number := self.carrier.number(api.sid or "")):
                self.send_json(200, number.resource(api.account))
            else:
                self.send_json(404, api.not_found())
        elif parts.path == "/messages":
            self.send_json(200, self.carrier.list(query.get("to"), query.get("from")))
        elif parts.path == "/":
            self.send_bytes(200, self.page().encode(), "text/html; charset=utf-8")
        else:
            self.send_json(404, {"message": "not found"})

    def do_DELETE(self) -> None:
        self.read_body()
        if urlsplit(self.path).path == "/messages":
            with self.carrier.lock:
                self.carrier.messages.clear()
            self.send_bytes(204, b"")
        else:
            self.send_json(404, {"message": "not found"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self.read_body()
        target = self.headers.get("X-Amz-Target", "")
        if path == "/" and target.startswith(TARGET_PREFIX) and self.sms_voice is not None:
            # End User Messaging's API, as the emulator hands it on (it checked the caller's IAM policy).
            status, answer = self.sms_voice.handle(target, body)
            self.send_json(status, answer, CONTENT_TYPE, {"x-amzn-RequestId": str(uuid.uuid4())})
            return
        api = ApiPath.parse(path)
        control: Callable[[bytes], None] | None = getattr(self, self.CONTROLS.get(path, ""), None)
        if api is not None:
            if api == ApiPath(api.account, "Messages"):
                self.create_message(api.account, body)
            elif not self.authorized(api.account):
                return
            elif api.resource == "IncomingPhoneNumbers" and api.sid:
                self.update_number(api, body)
            else:
                self.send_json(404, api.not_found())
        elif control is None:
            self.send_json(404, {"message": "not found"})
        else:
            try:
                control(body)
            except (ValueError, TypeError) as e:  # not JSON, not an object, or out of range
                self.send_json(400, {"message": f"bad request: {e}"})

    # --- Twilio's REST API ---

    def authorized(self, account_sid: str) -> bool:
        """Basic auth AccountSid:auth token, as Twilio checks it; answers 401 if not."""
        expected = "Basic " + base64.b64encode(f"{account_sid}:{self.carrier.auth_token}".encode()).decode()
        if hmac.compare_digest(self.headers.get("Authorization", ""), expected):
            return True
        self.send_json(401, twilio_error(401, 20003, "Authenticate"),
                       headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})
        return False

    def create_message(self, account_sid: str, raw: bytes) -> None:
        """Twilio's Create Message, within the account's concurrency limit (else 429, not processed). The answer is
        written once the request has left the limit: a client holding it may send again at once."""
        if not self.authorized(account_sid):
            return
        type(self).account_sid = account_sid
        with self.carrier.rest_slot() as admitted:
            answer = self.process_message(account_sid, raw) if admitted else \
                Answer(429, twilio_error(429, 20429, "Too Many Requests"))
        self.send_answer(answer)

    def process_message(self, account_sid: str, raw: bytes) -> Answer:
        """An admitted send: its processing time, the injections, validation, then the message and its callbacks."""
        time.sleep(self.carrier.latency)
        form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        hang, fail = self.carrier.next_injection()
        if hang:
            time.sleep(hang)
        if fail:
            return Answer(fail[0], twilio_error(fail[0], fail[1], "injected failure"))
        missing = missing_parameter(form)
        if missing:
            return Answer(400, twilio_error(400, *missing))
        message = Message(sid=new_sid(), to=form["To"], from_=form["From"], body=form["Body"],
                          direction="outbound-api", status="queued", account_sid=account_sid,
                          status_callback=form.get("StatusCallback"))
        self.carrier.add(message)
        created = self.carrier.resource(message)  # as it was when created: queued, not sent yet
        callbacks = threading.Thread(target=self.carrier.send_callbacks, args=(message, account_sid), daemon=True)
        late = self.carrier.next_of(self.carrier.late_answers, 0.0)
        failure = self.carrier.next_of(self.carrier.failed_answers, None)
        if not (late or failure):
            return Answer(201, created, message, callbacks.start)
        callbacks.start()  # the message goes out (and its callbacks follow) whatever the answer says
        if late:
            log(f"accepted {message.sid} to {message.to}; answering in {late:g} s")
            time.sleep(late)
        if failure:
            reason = http.client.responses.get(failure[0], "Server Error")
            return Answer(failure[0], twilio_error(failure[0], failure[1], reason), message)
        return Answer(201, created, message)

    def send_answer(self, answer: Answer) -> None:
        """Write a send's answer, then run what follows it; if the client is gone, the message was sent all the same."""
        sent = f"sent {answer.message.sid} to {answer.message.to}" if answer.message else None
        try:
            self.send_json(answer.status, answer.body)
        except OSError:
            log(f"{sent or f'answer {answer.status} not given'}; the client was gone before the answer")
            self.close_connection = True
            return
        if sent:
            log(sent + ("" if answer.status == 201 else f"; answered {answer.status}"))
        elif answer.status == 429:
            log("too many concurrent requests: answered 429")
        if answer.then:
            answer.then()

    def list_messages(self, account_sid: str, raw_query: str) -> None:
        """Twilio's Read multiple Message resources (the caller checked the credentials)."""
        query = {k: v[-1] for k, v in parse_qs(raw_query).items()}
        try:
            wanted = MessageFilter.from_query(query)
            page, page_size = page_of(query)
        except ValueError as e:
            self.send_json(400, twilio_error(400, 20001, str(e)))
            return
        filters = {k: query[k] for k in MessageFilter.KEYS if k in query}
        self.send_json(200, list_page(account_sid, self.carrier.find(wanted), filters, page, page_size))

    def list_numbers(self, account_sid: str, raw_query: str) -> None:
        """Twilio's Read multiple IncomingPhoneNumber resources: filters PhoneNumber (the number or a part of it,
        `*` for any digit) and FriendlyName; PageSize, Page."""
        query = {k: v[-1] for k, v in parse_qs(raw_query).items()}
        try:
            page, page_size = page_of(query)
        except ValueError as e:
            self.send_json(400, twilio_error(400, 20001, str(e)))
            return
        found = self.carrier.find_numbers(account_sid, query.get("PhoneNumber"), query.get("FriendlyName"))
        filters = {k: query[k] for k in ("PhoneNumber", "FriendlyName") if k in query}
        self.send_json(200, list_page(account_sid, found, filters, page, page_size, "IncomingPhoneNumbers"))

    def update_number(self, api: ApiPath, raw: bytes) -> None:
        """Twilio's Update an IncomingPhoneNumber resource (form-encoded; parameters it does not keep are ignored)."""
        form = {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        try:
            updated = self.carrier.update_number(api.sid or "", api.account, form)
        except ValueError as e:
            self.send_json(400, twilio_error(400, 20001, str(e)))
            return
        if updated is None:
            self.send_json(404, api.not_found())
            return
        log(f"number {updated['phone_number']}: SmsUrl {updated['sms_url'] or '(none)'} ({updated['sms_method']})")
        self.send_json(200, updated)

    # --- test controls ---

    def spec(self, raw: bytes) -> dict[str, Any]:
        spec = json.loads(raw or b"{}")
        if not isinstance(spec, dict):
            raise ValueError("expected a JSON object")
        return spec

    def fail(self, raw: bytes) -> None:
        spec = self.spec(raw)
        failure = (int(spec.get("status", 500)), int(spec.get("code", 20500)))
        pending = self.carrier.enqueue(self.carrier.failures, failure, int(spec.get("count", 1)))
        self.send_json(200, {"failing": pending})

    def hang(self, raw: bytes) -> None:
        spec = self.spec(raw)
        pending = self.carrier.enqueue(self.carrier.hangs, float(spec.get("seconds", 30)), int(spec.get("count", 1)))
        self.send_json(200, {"hanging": pending})

    def accept_and_hang(self, raw: bytes) -> None:
        spec = self.spec(raw)
        pending = self.carrier.enqueue(self.carrier.late_answers, float(spec.get("seconds", 30)),
                                       int(spec.get("count", 1)))
        self.send_json(200, {"acceptingLate": pending})

    def accept_then_fail(self, raw: bytes) -> None:
        spec = self.spec(raw)
        status = int(spec.get("status", 500))
        if not 500 <= status <= 599:
            raise ValueError(f"status is a 5xx, not {status}")
        pending = self.carrier.enqueue(self.carrier.failed_answers, (status, int(spec.get("code", 20500))),
                                       int(spec.get("count", 1)))
        self.send_json(200, {"acceptingThenFailing": pending})

    def callbacks(self, raw: bytes) -> None:
        spec = self.spec(raw)
        self.send_json(200, self.carrier.set_callback_odds(spec.get("duplicate"), spec.get("reorder")))

    def limits(self, raw: bytes) -> None:
        spec = self.spec(raw)
        self.send_json(200, self.carrier.set_limits(spec.get("maxConcurrent"), spec.get("latencyMs")))

    def reply(self, raw: bytes) -> None:
        from_form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        if from_form:  # the HTML page
            spec: dict[str, Any] = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        else:
            spec = self.spec(raw)
        missing = [k for k in ("from", "to", "body") if not spec.get(k)]
        if missing:
            self.send_json(400, {"message": f"missing {', '.join(missing)}"})
            return
        account = self.account_sid or os.environ.get("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
        # The reply's sid, whatever the webhook's fate: a test finds what the service did with it.
        sid = new_sid()
        if self.sms_voice is not None and self.sms_voice.holds(spec["to"]):
            # A number on End User Messaging: the text goes to its two-way channel (SNS), not a webhook;
            # once the service took it, getting it there is the service's job (it retries).
            sid = str(uuid.uuid4())
            accepted = self.sms_voice.heard(spec["from"], spec["to"], spec["body"], sid)
            self.send_json(200 if accepted else 502, {"sid": sid, "accepted": bool(accepted)},
                           headers={"X-Message-Sid": sid})
            return
        try:
            status, body, attempts = self.carrier.reply(spec["from"], spec["to"], spec["body"], account, sid)
        except WebhookError as e:
            self.send_json(502, {"message": f"inbound webhook failed: {e}", "attempts": e.attempts, "sid": sid},
                           headers={"X-Message-Sid": sid})
            return
        except (OSError, ValueError) as e:  # e.g. a malformed INBOUND_WEBHOOK_URL
            self.send_json(502, {"message": f"inbound webhook failed: {e}", "sid": sid},
                           headers={"X-Message-Sid": sid})
            return
        log(f"reply {sid} from {spec['from']} -> {status} ({attempts} attempt(s))")
        if from_form:
            self.send_bytes(303, b"", "text/plain", {"Location": "/"})
        else:
            self.send_bytes(status, body, "application/xml" if body.startswith(b"<") else "application/json",
                            {"X-Webhook-Attempts": str(attempts), "X-Message-Sid": sid})

    def page(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(m['at'])}</td><td>{html.escape(m['from'])}</td><td>{html.escape(m['to'])}</td>"
            f"<td>{html.escape(m['direction'])}</td><td>{html.escape(m['status'])}</td>"
            f"<td>{html.escape(m['body'])}</td></tr>"
            for m in self.carrier.list())
        last = self.carrier.list()[-1:] or [{"to": "", "from": ""}]
        phone = last[0]["to"] if last[0].get("direction") == "outbound-api" else last[0]["from"]
        dealer = last[0]["from"] if last[0].get("direction") == "outbound-api" else last[0]["to"]
        return f"""<!doctype html><html><head><meta charset="utf-8"><title>Fake carrier</title>
<meta http-equiv="refresh" content="5"><style>body{{font-family:sans-serif}}td{{padding:2px 8px}}</style></head>
<body><h1>Fake carrier</h1><table><tr><th>at</th><th>from</th><th>to</th><th>direction</th><th>status</th>
<th>body</th></tr>{rows}</table>
<h2>Reply as the phone</h2><form method="post" action="/reply">
from (phone) <input name="from" value="{html.escape(phone)}"> to (dealer) <input name="to" value="{html.escape(dealer)}">
<input name="body" size="40" placeholder="Agree"> <button>send</button></form></body></html>"""


def make_server(host: str, port: int, carrier: Carrier, sms_voice: SmsVoice | None = None) -> Server:
    handler = type("BoundCarrierHandler", (CarrierHandler,), {"carrier": carrier, "sms_voice": sms_voice})
    return Server((host, port), handler)
