"""A Twilio-compatible fake carrier: receives sends, shows them, and lets a person play the phone.

    python -m infra.local.fake_carrier [--host 127.0.0.1] [--port 4010]

Twilio's side:
  POST /2010-04-01/Accounts/{AccountSid}/Messages.json   form To, From, Body, StatusCallback; basic auth
       AccountSid:TWILIO_AUTH_TOKEN. 201 with Twilio's JSON; then status callbacks (sent, delivered),
       signed with X-Twilio-Signature, are posted to StatusCallback.
Test controls:
  GET /messages?to=E164 (or from=)   what was sent and received, newest last
  DELETE /messages                   forget everything
  POST /reply {"from","to","body"}   the phone replies: a signed inbound webhook to INBOUND_WEBHOOK_URL;
                                     answers with the service's status and body
  POST /fail {"count","status","code"}   the next N sends fail with that HTTP status and Twilio error code
  POST /hang {"count","seconds"}         the next N sends sleep first (client timeouts)
  POST /accept-and-hang {"count","seconds"}   the next N sends are accepted (the message reaches the
                                     phone and its status callbacks follow) but answered only after
                                     that many seconds (default 30): past the client's timeout
  GET /                              an HTML page: the conversation and a form to reply
Environment: TWILIO_AUTH_TOKEN (else .env.local), INBOUND_WEBHOOK_URL
(default http://127.0.0.1:3000/v1/carrier/twilio/inbound), STATUS_CALLBACK_DELAY_SECONDS (default 0.2).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import json
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import parse_qs, urlencode, urlsplit

from infra.local.common import ENV_LOCAL, JsonHandler, Server, read_env_file

DEFAULT_INBOUND_URL = "http://127.0.0.1:3000/v1/carrier/twilio/inbound"
API_VERSION = "2010-04-01"
GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
           "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXT = set("^{}\\[~]|€\f")


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature: base64(HMAC-SHA1(token, url + each POST param's name+value, sorted by name))."""
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def segments(body: str) -> int:
    """SMS segment count: GSM-7 160 / 153 per part, else UCS-2 70 / 67."""
    if all(c in GSM7 or c in GSM7_EXT for c in body):
        units = sum(2 if c in GSM7_EXT else 1 for c in body)
        single, multi = 160, 153
    else:
        units = sum(2 if ord(c) > 0xFFFF else 1 for c in body)
        single, multi = 70, 67
    return 1 if units <= single else -(-units // multi)


def post_form(url: str, params: Mapping[str, str], auth_token: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """POST a form the way Twilio does, signed; returns (status, body)."""
    req = urllib.request.Request(url, data=urlencode(params).encode(), method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(auth_token, url, params),
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": secrets.token_hex(16),
    })
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local URLs
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@dataclass
class Message:
    sid: str
    to: str
    from_: str
    body: str
    direction: str  # outbound-api (sent by the service) or inbound (a reply from the phone)
    status: str
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds"))
    status_callback: str | None = None

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d["from"] = d.pop("from_")
        return d


class Carrier:
    """The fake's state: messages and the pending failure/hang injections (thread-safe)."""

    def __init__(self, auth_token: str, inbound_url: str, callback_delay: float = 0.2) -> None:
        self.auth_token = auth_token
        self.inbound_url = inbound_url
        self.callback_delay = callback_delay
        self.lock = threading.Lock()
        self.messages: list[Message] = []
        self.failures: list[tuple[int, int]] = []  # (http status, twilio code) per upcoming send
        self.hangs: list[float] = []  # seconds per upcoming send
        self.late_answers: list[float] = []  # seconds per upcoming send, waited after accepting it

    def add(self, message: Message) -> None:
        with self.lock:
            self.messages.append(message)

    def list(self, to: str | None = None, from_: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [m.public() for m in self.messages
                    if (to is None or m.to == to) and (from_ is None or m.from_ == from_)]

    def next_injection(self) -> tuple[float, tuple[int, int] | None]:
        with self.lock:
            hang = self.hangs.pop(0) if self.hangs else 0.0
            fail = self.failures.pop(0) if self.failures else None
        return hang, fail

    def next_late_answer(self) -> float:
        with self.lock:
            return self.late_answers.pop(0) if self.late_answers else 0.0

    def send_callbacks(self, message: Message, account_sid: str) -> None:
        """Post `sent` then `delivered` to the message's StatusCallback, signed."""
        for status in ("sent", "delivered"):
            time.sleep(self.callback_delay)
            with self.lock:
                message.status = status
            if not message.status_callback:
                continue
            params = {"MessageSid": message.sid, "SmsSid": message.sid, "MessageStatus": status,
                      "SmsStatus": status, "AccountSid": account_sid, "To": message.to, "From": message.from_,
                      "ApiVersion": API_VERSION}
            try:
                code, _ = post_form(message.status_callback, params, self.auth_token)
                log(f"status callback {message.sid} {status} -> {code}")
            except OSError as e:
                log(f"status callback {message.sid} {status} failed: {e}")

    def reply(self, from_: str, to: str, body: str, account_sid: str) -> tuple[int, bytes]:
        """The phone `from_` texts `body` to `to`: a signed inbound webhook to the service."""
        sid = "SM" + secrets.token_hex(16)
        self.add(Message(sid=sid, to=to, from_=from_, body=body, direction="inbound", status="received"))
        params = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": account_sid,
                  "From": from_, "To": to, "Body": body, "NumMedia": "0", "NumSegments": str(segments(body)),
                  "SmsStatus": "received", "ApiVersion": API_VERSION}
        return post_form(self.inbound_url, params, self.auth_token)


def log(line: str) -> None:
    sys.stderr.write(f"fake-carrier: {line}\n")


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


class CarrierHandler(JsonHandler):
    server_version = "fake-carrier"
    carrier: Carrier
    account_sid: str = ""  # the last account seen; used to sign replies

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/messages":
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
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[0] == API_VERSION and parts[1] == "Accounts" and parts[3] == "Messages.json":
            self.create_message(parts[2], body)
        elif path == "/reply":
            self.reply(body)
        elif path == "/fail":
            spec = json.loads(body or b"{}")
            status = int(spec.get("status", 500))
            with self.carrier.lock:
                self.carrier.failures.extend([(status, int(spec.get("code", 20500)))] * int(spec.get("count", 1)))
                pending = len(self.carrier.failures)
            self.send_json(200, {"failing": pending})
        elif path == "/hang":
            spec = json.loads(body or b"{}")
            with self.carrier.lock:
                self.carrier.hangs.extend([float(spec.get("seconds", 30))] * int(spec.get("count", 1)))
                pending = len(self.carrier.hangs)
            self.send_json(200, {"hanging": pending})
        elif path == "/accept-and-hang":
            spec = json.loads(body or b"{}")
            with self.carrier.lock:
                self.carrier.late_answers.extend([float(spec.get("seconds", 30))] * int(spec.get("count", 1)))
                pending = len(self.carrier.late_answers)
            self.send_json(200, {"acceptingLate": pending})
        else:
            self.send_json(404, {"message": "not found"})

    def create_message(self, account_sid: str, raw: bytes) -> None:
        """Twilio's Create Message."""
        expected = "Basic " + base64.b64encode(f"{account_sid}:{self.carrier.auth_token}".encode()).decode()
        if not hmac.compare_digest(self.headers.get("Authorization", ""), expected):
            self.send_json(401, twilio_error(401, 20003, "Authenticate"),
                           headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})
            return
        type(self).account_sid = account_sid
        form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        hang, fail = self.carrier.next_injection()
        if hang:
            time.sleep(hang)
        if fail:
            self.send_json(fail[0], twilio_error(fail[0], fail[1], "injected failure"))
            return
        if not form.get("To"):
            self.send_json(400, twilio_error(400, 21604, "A 'To' phone number is required."))
            return
        if not form.get("From"):
            self.send_json(400, twilio_error(400, 21603, "A 'From' phone number is required."))
            return
        if not form.get("Body"):
            self.send_json(400, twilio_error(400, 21602, "Message body is required."))
            return
        message = Message(sid="SM" + secrets.token_hex(16), to=form["To"], from_=form["From"], body=form["Body"],
                          direction="outbound-api", status="queued", status_callback=form.get("StatusCallback"))
        self.carrier.add(message)
        callbacks = threading.Thread(target=self.carrier.send_callbacks, args=(message, account_sid), daemon=True)
        late = self.carrier.next_late_answer()
        if late:  # the message goes out (and its callbacks follow) while the answer is held back
            callbacks.start()
            log(f"accepted {message.sid} to {message.to}; answering in {late:g} s")
            time.sleep(late)
        now = datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{message.sid}"
        try:
            self.send_created(account_sid, message, now, uri)
        except OSError:  # the client gave up waiting: the message was sent all the same
            log(f"sent {message.sid} to {message.to}; the client was gone before the answer")
            self.close_connection = True
            return
        log(f"sent {message.sid} to {message.to}")
        if not late:
            callbacks.start()

    def send_created(self, account_sid: str, message: Message, now: str, uri: str) -> None:
        self.send_json(201, {
            "account_sid": account_sid, "api_version": API_VERSION, "body": message.body,
            "date_created": now, "date_sent": None, "date_updated": now, "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": message.from_, "messaging_service_sid": None,
            "num_media": "0", "num_segments": str(segments(message.body)), "price": None, "price_unit": "USD",
            "sid": message.sid, "status": "queued", "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": message.to, "uri": f"{uri}.json",
        })

    def reply(self, raw: bytes) -> None:
        from_form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        if from_form:  # the HTML page
            spec: dict[str, Any] = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        else:
            spec = json.loads(raw or b"{}")
        missing = [k for k in ("from", "to", "body") if not spec.get(k)]
        if missing:
            self.send_json(400, {"message": f"missing {', '.join(missing)}"})
            return
        account = self.account_sid or os.environ.get("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
        try:
            status, body = self.carrier.reply(spec["from"], spec["to"], spec["body"], account)
        except OSError as e:
            self.send_json(502, {"message": f"inbound webhook failed: {e}"})
            return
        log(f"reply from {spec['from']} -> {status}")
        if from_form:
            self.send_bytes(303, b"", "text/plain", {"Location": "/"})
        else:
            self.send_bytes(status, body, "application/xml" if body.startswith(b"<") else "application/json")

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


def make_server(host: str, port: int, carrier: Carrier) -> Server:
    handler = type("BoundCarrierHandler", (CarrierHandler,), {"carrier": carrier})
    return Server((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.fake_carrier", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("CARRIER_PORT", 4010)))
    args = parser.parse_args(argv)
    env = {**(read_env_file(ENV_LOCAL) if ENV_LOCAL.exists() else {}), **os.environ}
    token = env.get("TWILIO_AUTH_TOKEN")
    if not token:
        print("fake-carrier: TWILIO_AUTH_TOKEN is not set (and no .env.local)", file=sys.stderr)
        return 1
    carrier = Carrier(token, env.get("INBOUND_WEBHOOK_URL", DEFAULT_INBOUND_URL),
                      float(env.get("STATUS_CALLBACK_DELAY_SECONDS", 0.2)))
    server = make_server(args.host, args.port, carrier)
    print(f"fake-carrier: http://{args.host}:{args.port} (inbound webhooks to {carrier.inbound_url})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
