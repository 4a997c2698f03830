"""A Twilio-compatible fake carrier: receives sends, shows them, and lets a person play the phone.

    python -m infra.local.fake_carrier [--host 127.0.0.1] [--port 4010]

Twilio's side:
  POST /2010-04-01/Accounts/{AccountSid}/Messages.json   form To, From, Body, StatusCallback; basic auth
       AccountSid:TWILIO_AUTH_TOKEN. 201 with Twilio's JSON; then status callbacks (sent, delivered),
       signed with X-Twilio-Signature, are posted to StatusCallback. With more than CARRIER_MAX_CONCURRENT
       sends in flight: 429 with Twilio error 20429 (Too Many Requests), and the send is not processed.
  GET  /2010-04-01/Accounts/{AccountSid}/Messages.json   Twilio's message list, same basic auth: filters To,
       From, DateSent, DateSent< and DateSent> (sent as DateSent%3C= / DateSent%3E=; YYYY-MM-DD, UTC,
       inclusive), PageSize (default 50, max 1000), Page; newest first; every message (sent through the API
       or received) with its current status and date_sent (RFC 2822); next_page_uri when there are more.
  GET  /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json   the account's numbers (Twilio's list JSON,
       `incoming_phone_numbers`), same basic auth: filters PhoneNumber (the number or a part of it, `*` for any
       digit) and FriendlyName, PageSize, Page. Each has a stable sid PN... (from the number).
  GET  /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{PN sid}.json   one number; 404 (20404) if unknown
  POST /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{PN sid}.json   Twilio's Update, form-encoded:
       SmsUrl, SmsMethod, SmsFallbackUrl, SmsFallbackMethod, SmsApplicationSid, StatusCallback (calls'),
       StatusCallbackMethod, Voice*, FriendlyName are kept; other parameters are ignored, as Twilio ignores
       ones it does not know; 400 (20001) for a method other than GET/POST or a URL that is not http(s).
  The REST API answers 401 (20003) for credentials other than AccountSid:TWILIO_AUTH_TOKEN.
Webhooks (the inbound SMS and the status callbacks) are delivered as Twilio does: an answer (4xx, 5xx) is
  not retried, a connection that failed is retried once; Twilio's connection overrides in the URL's
  fragment change that: #ct=5000&rt=15000&tt=15000&rc=1&rp=ct (connect and read timeouts, total time for
  all attempts in ms; retry count, max 5; retry policy: comma-separated 4xx, 5xx, ct, rt, or all). The
  fragment is neither sent nor signed; every attempt carries the same I-Twilio-Idempotency-Token.
Test controls:
  GET /messages?to=E164 (or from=)   what was sent and received, newest last
  DELETE /messages                   forget everything
  POST /reply {"from","to","body"}   the phone replies: a signed inbound webhook to the SmsUrl configured on the
                                     number `to` (with its SmsMethod and its URL's connection overrides), else
                                     to INBOUND_WEBHOOK_URL;
                                     answers with the service's status and body (of the last attempt;
                                     X-Webhook-Attempts says how many), 502 if it never answered
  POST /fail {"count","status","code"}   the next N sends fail with that HTTP status and Twilio error code
  POST /hang {"count","seconds"}         the next N sends sleep first (client timeouts)
  POST /accept-and-hang {"count","seconds"}   the next N sends are accepted (the message reaches the
                                     phone and its status callbacks follow) but answered only after
                                     that many seconds (default 30): past the client's timeout
  POST /accept-then-fail {"count","status","code"}   the next N sends are accepted (as above) but answered
                                     with that 5xx status (default 500) and a Twilio error (code 20500)
  POST /callbacks {"duplicate","reorder"}   probabilities (0..1) that a status callback is posted twice,
                                     and that a message's `delivered` callback is posted before `sent`
  POST /limits {"maxConcurrent","latencyMs"}   sends in flight at once before 429 (0: no limit), and the
                                     time each admitted send takes before its answer (ms, default 0)
  GET /                              an HTML page: the conversation and a form to reply
Environment: TWILIO_AUTH_TOKEN (else .env.local), INBOUND_WEBHOOK_URL (where a text to a number with no SmsUrl
goes; default http://127.0.0.1:3000/v1/carrier/twilio/inbound, may carry connection overrides), CARRIER_NUMBERS
(the account's numbers, NUMBER_POOL's syntax; default: NUMBER_POOL and DEMO_TEXTING_NUMBER),
STATUS_CALLBACK_DELAY_SECONDS (default 0.2), STATUS_CALLBACK_DUPLICATE and STATUS_CALLBACK_REORDER
(default 0.0), CARRIER_SEED (the random choices'; default random, printed at start), CARRIER_MAX_CONCURRENT
(default 0: no limit).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import html
import http.client
import json
import os
import random
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email.utils import format_datetime
from typing import Any, Callable, Iterable, Iterator, Mapping
from urllib.parse import parse_qs, urldefrag, urlencode, urlsplit, urlunsplit

from infra.local.common import ENV_LOCAL, JsonHandler, Server, read_env_file
from infra.local.numbers import expand

DEFAULT_INBOUND_URL = "http://127.0.0.1:3000/v1/carrier/twilio/inbound"
API_VERSION = "2010-04-01"
GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
           "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXT = set("^{}\\[~]|€\f")
RETRY_KINDS = frozenset({"4xx", "5xx", "ct", "rt"})  # what a webhook attempt can end in, short of success
OVERRIDE_BOUNDS = {"ct": (100, 10000), "rt": (100, 15000), "tt": (100, 15000), "rc": (0, 5)}
PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000
REQUIRED = (("To", 21604, "A 'To' phone number is required."),
            ("From", 21603, "A 'From' phone number is required."),
            ("Body", 21602, "Message body is required."))


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


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def rfc2822(moment: datetime) -> str:
    """Twilio's dates: `Mon, 07 Dec 2026 10:00:00 +0000`."""
    return format_datetime(moment.astimezone(timezone.utc))


def probability(value: Any) -> float:
    p = float(value)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a probability is between 0 and 1, not {value!r}")
    return p


def bounded_int(raw: str | None, low: int, high: int, default: int) -> int:
    """`raw` as an int clamped to [low, high]; `default` if absent or not a number."""
    try:
        return min(max(int(raw or ""), low), high)
    except ValueError:
        return default


# --- webhook delivery, as Twilio does it -------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionOverrides:
    """Twilio's webhook connection overrides (URL fragment `#ct=..&rt=..&tt=..&rc=..&rp=..`), defaults as documented."""

    ct: int = 5000  # connect timeout, ms
    rt: int = 15000  # read timeout (for the first byte, and between bytes), ms
    tt: int = 15000  # total time for every attempt, ms
    rc: int = 1  # retries after the first attempt
    rp: frozenset[str] = frozenset({"ct"})  # what is retried: 4xx, 5xx, ct (no connection), rt (no answer)

    @classmethod
    def parse(cls, fragment: str) -> ConnectionOverrides:
        given = {k: v[-1] for k, v in parse_qs(fragment).items()}
        numbers = {k: bounded_int(given.get(k), low, high, getattr(cls, k))
                   for k, (low, high) in OVERRIDE_BOUNDS.items()}
        return cls(**numbers, rp=cls.parse_policy(given.get("rp")))

    @classmethod
    def parse_policy(cls, raw: str | None) -> frozenset[str]:
        kinds = {k.strip().lower() for k in (raw or "").split(",")}
        if "all" in kinds:
            return RETRY_KINDS
        return frozenset(kinds & RETRY_KINDS) or cls.rp

    def retries(self, kind: str, attempt: int, deadline: float) -> bool:
        """Whether an attempt that ended in `kind` (4xx, 5xx, ct, rt; 2xx never) is followed by another."""
        return kind in self.rp and attempt <= self.rc and time.monotonic() < deadline

    def timeouts(self, deadline: float) -> tuple[float, float]:
        """(connect, read) timeouts in seconds for the next attempt, within the total time left."""
        left = max(deadline - time.monotonic(), 0.001)
        return min(self.ct / 1000, left), min(self.rt / 1000, left)


class WebhookError(OSError):
    """A webhook that got no HTTP answer: `kind` is ct (no connection) or rt (no answer in time)."""

    def __init__(self, kind: str, reason: BaseException) -> None:
        super().__init__(f"{'connect' if kind == 'ct' else 'read'} failed: {reason}")
        self.kind = kind
        self.attempts = 1


def webhook_headers(url: str, params: Mapping[str, str], auth_token: str) -> dict[str, str]:
    """Twilio's headers, signed for `url` (without its fragment); the same for every attempt."""
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(auth_token, url, params),
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": secrets.token_hex(16),
    }


def post_once(url: str, body: bytes | None, headers: Mapping[str, str], timeouts: tuple[float, float],
              method: str = "POST") -> tuple[int, bytes]:
    """One attempt: (status, body), or WebhookError ct if no connection was made, rt if no answer came."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise WebhookError("ct", ValueError(f"no host in {url!r}"))
    connection = (http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection)(
        parts.hostname, parts.port, timeout=timeouts[0])
    try:
        try:
            connection.connect()
        except OSError as e:
            raise WebhookError("ct", e) from e
        connection.sock.settimeout(timeouts[1])
        try:
            connection.request(method, urlunsplit(("", "", parts.path or "/", parts.query, "")), body, dict(headers))
            answer = connection.getresponse()
            return answer.status, answer.read()
        except (OSError, http.client.HTTPException) as e:  # a timeout, or the connection dropped without an answer
            raise WebhookError("rt", e) from e
    finally:
        connection.close()


def deliver_webhook(url: str, params: Mapping[str, str], auth_token: str,
                    method: str = "POST") -> tuple[int, bytes, int]:
    """POST a signed form to a webhook as Twilio does (or, with method GET, the parameters in the query string,
    the whole URL signed), honouring the connection overrides in the URL's fragment: (status, body, attempts) of
    the last attempt; WebhookError (with .attempts) if that one got no answer."""
    target, fragment = urldefrag(url)
    overrides = ConnectionOverrides.parse(fragment)
    if method == "GET":
        target = f"{target}{'&' if urlsplit(target).query else '?'}{urlencode(params)}"
        body, headers = None, webhook_headers(target, {}, auth_token)
        headers.pop("Content-Type")
    else:
        body, headers = urlencode(params).encode(), webhook_headers(target, params, auth_token)
    deadline = time.monotonic() + overrides.tt / 1000
    attempt = 0
    while True:
        attempt += 1
        try:
            status, answer = post_once(target, body, headers, overrides.timeouts(deadline), method)
        except WebhookError as e:
            e.attempts = attempt
            if not overrides.retries(e.kind, attempt, deadline):
                raise
            continue
        if not overrides.retries(f"{status // 100}xx", attempt, deadline):
            return status, answer, attempt


# --- messages ----------------------------------------------------------------------------------------------


@dataclass
class Message:
    sid: str
    to: str
    from_: str
    body: str
    direction: str  # outbound-api (sent by the service) or inbound (a reply from the phone)
    status: str
    account_sid: str = ""
    status_callback: str | None = None
    created: datetime = field(default_factory=utcnow)
    updated: datetime = field(init=False)
    sent: datetime | None = None  # Twilio's date_sent: when it went out (outbound) or came in (inbound)

    def __post_init__(self) -> None:
        self.updated = self.created

    def public(self) -> dict[str, Any]:
        """The test controls' view (GET /messages)."""
        return {"sid": self.sid, "to": self.to, "from": self.from_, "body": self.body, "direction": self.direction,
                "status": self.status, "at": self.created.isoformat(timespec="milliseconds"),
                "status_callback": self.status_callback}

    def resource(self) -> dict[str, Any]:
        """Twilio's Message resource, as Create Message and the list answer it."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid, "api_version": API_VERSION, "body": self.body,
            "date_created": rfc2822(self.created), "date_sent": rfc2822(self.sent) if self.sent else None,
            "date_updated": rfc2822(self.updated), "direction": self.direction, "error_code": None,
            "error_message": None, "from": self.from_, "messaging_service_sid": None, "num_media": "0",
            "num_segments": str(segments(self.body)), "price": None, "price_unit": "USD", "sid": self.sid,
            "status": self.status, "subresource_uris": {"media": f"{uri}/Media.json"}, "to": self.to,
            "uri": f"{uri}.json",
        }


def utc_day(value: str, name: str) -> date:
    """A DateSent filter's day: YYYY-MM-DD in UTC (an ISO 8601 time, as helper libraries send, counts by its
    UTC day)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"Invalid {name}: {value!r} (expected YYYY-MM-DD)") from None
    return (moment.astimezone(timezone.utc) if moment.tzinfo else moment).date()


@dataclass(frozen=True)
class MessageFilter:
    """Twilio's list filters: To, From, and the days the message was sent on (inclusive)."""

    to: str | None = None
    from_: str | None = None
    first_day: date | None = None
    last_day: date | None = None

    KEYS = ("To", "From", "DateSent", "DateSent<", "DateSent>")

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> MessageFilter:
        days = {k: utc_day(query[k], k) for k in ("DateSent", "DateSent<", "DateSent>") if k in query}
        return cls(query.get("To"), query.get("From"),
                   max((d for k, d in days.items() if k != "DateSent<"), default=None),
                   min((d for k, d in days.items() if k != "DateSent>"), default=None))

    def matches(self, m: Message) -> bool:
        if (self.to is not None and m.to != self.to) or (self.from_ is not None and m.from_ != self.from_):
            return False
        if self.first_day is None and self.last_day is None:
            return True
        day = m.sent.astimezone(timezone.utc).date() if m.sent else None  # not sent yet: no date_sent to match
        return day is not None and (self.first_day or day) <= day <= (self.last_day or day)


def list_page(account_sid: str, resources: list[dict[str, Any]], filters: Mapping[str, str], page: int,
              page_size: int, list_name: str = "Messages") -> dict[str, Any]:
    """Twilio's list JSON for one page of `resources` (already filtered, in the list's order): the page under the
    list's key (`messages`, `incoming_phone_numbers`) and the paging fields."""
    base = f"/{API_VERSION}/Accounts/{account_sid}/{list_name}.json"

    def uri(n: int) -> str:
        return f"{base}?{urlencode({**filters, 'PageSize': page_size, 'Page': n})}"

    start = page * page_size
    shown = resources[start:start + page_size]
    key = re.sub(r"(?<!^)(?=[A-Z])", "_", list_name).lower()
    return {key: shown, "page": page, "page_size": page_size, "start": start,
            "end": start + max(len(shown) - 1, 0), "first_page_uri": uri(0), "uri": uri(page),
            "previous_page_uri": uri(page - 1) if page else None,
            "next_page_uri": uri(page + 1) if len(resources) > start + page_size else None}


def page_of(query: Mapping[str, str]) -> tuple[int, int]:
    """(Page, PageSize) of a list request: PageSize defaults to 50 and is at most 1000."""
    try:
        page, size = int(query.get("Page", 0)), int(query.get("PageSize", PAGE_SIZE))
    except ValueError:
        raise ValueError("Page and PageSize are whole numbers") from None
    if page < 0 or size < 1:
        raise ValueError("Page is at least 0 and PageSize at least 1")
    return page, min(size, MAX_PAGE_SIZE)


def missing_parameter(form: Mapping[str, str]) -> tuple[int, str] | None:
    """Create Message's required parameters: the Twilio error for the first one missing."""
    return next(((code, text) for name, code, text in REQUIRED if not form.get(name)), None)


# --- the account's phone numbers (IncomingPhoneNumbers) ---------------------------------------------------

# The update parameters the fake keeps, as Twilio names them, and the resource's key for each; Twilio
# accepts more (AddressSid, BundleSid, TrunkSid, ...) and, as Twilio does with parameters it does not
# know, the fake ignores the rest.
NUMBER_PARAMETERS = {
    "FriendlyName": "friendly_name", "SmsUrl": "sms_url", "SmsMethod": "sms_method",
    "SmsFallbackUrl": "sms_fallback_url", "SmsFallbackMethod": "sms_fallback_method",
    "SmsApplicationSid": "sms_application_sid", "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method", "VoiceUrl": "voice_url", "VoiceMethod": "voice_method",
    "VoiceFallbackUrl": "voice_fallback_url", "VoiceFallbackMethod": "voice_fallback_method",
    "VoiceApplicationSid": "voice_application_sid", "VoiceCallerIdLookup": "voice_caller_id_lookup",
}
URL_PARAMETERS = ("SmsUrl", "SmsFallbackUrl", "StatusCallback", "VoiceUrl", "VoiceFallbackUrl")
METHOD_PARAMETERS = ("SmsMethod", "SmsFallbackMethod", "StatusCallbackMethod", "VoiceMethod", "VoiceFallbackMethod")


def number_sid(number: str) -> str:
    """A number's IncomingPhoneNumber sid (PN + 32 hex), the same for the same number on every run."""
    return "PN" + hashlib.md5(number.encode()).hexdigest()  # noqa: S324 - an identifier, not a secret


def friendly(number: str) -> str:
    """Twilio's default friendly name: `(202) 555-0100` for a North American number, else the number."""
    if len(number) == 12 and number.startswith("+1"):
        return f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    return number


@dataclass
class PhoneNumber:
    """One of the account's numbers (Twilio's IncomingPhoneNumber): its webhooks as last configured."""

    number: str
    sid: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # the resource's keys for NUMBER_PARAMETERS
    created: datetime = field(default_factory=utcnow)
    updated: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.sid = self.sid or number_sid(self.number)
        self.updated = self.created
        defaults = {key: "" for key in NUMBER_PARAMETERS.values()}
        defaults.update({NUMBER_PARAMETERS[k]: "POST" for k in METHOD_PARAMETERS},
                        friendly_name=friendly(self.number), voice_caller_id_lookup=False)
        self.settings = {**defaults, **self.settings}

    def update(self, form: Mapping[str, str]) -> None:
        """Twilio's Update: the parameters given replace the stored ones (an empty URL clears it); ValueError for a
        method other than GET or POST or a URL that is not http(s)."""
        for name in METHOD_PARAMETERS:
            if name in form and form[name].upper() not in ("GET", "POST"):
                raise ValueError(f"{name} must be GET or POST, not {form[name]!r}")
        for name in URL_PARAMETERS:
            if form.get(name) and urlsplit(form[name]).scheme not in ("http", "https"):
                raise ValueError(f"{name} is not an http(s) URL: {form[name]!r}")
        for name, key in NUMBER_PARAMETERS.items():
            if name not in form:
                continue
            value: Any = form[name]
            if name in METHOD_PARAMETERS:
                value = value.upper()
            elif name == "VoiceCallerIdLookup":
                value = value.lower() == "true"
            self.settings[key] = value
        self.updated = utcnow()

    def inbound(self) -> tuple[str, str] | None:
        """(SmsUrl, SmsMethod) where a text to this number is posted, if an SmsUrl is configured (and no SMS
        application, which the fake does not model, takes the number's texts)."""
        if self.settings["sms_url"] and not self.settings["sms_application_sid"]:
            return self.settings["sms_url"], self.settings["sms_method"]
        return None

    def resource(self, account_sid: str) -> dict[str, Any]:
        """Twilio's IncomingPhoneNumber resource."""
        uri = f"/{API_VERSION}/Accounts/{account_sid}/IncomingPhoneNumbers/{self.sid}"
        return {
            "account_sid": account_sid, "address_requirements": "none", "address_sid": None,
            "api_version": API_VERSION, "beta": False, "bundle_sid": None,
            "capabilities": {"fax": False, "mms": True, "sms": True, "voice": True},
            "date_created": rfc2822(self.created), "date_updated": rfc2822(self.updated),
            "emergency_address_sid": None, "emergency_address_status": "unregistered",
            "emergency_status": "Inactive", "identity_sid": None, "origin": "twilio",
            "phone_number": self.number, "sid": self.sid, "status": "in-use",
            "subresource_uris": {"assigned_add_ons": f"{uri}/AssignedAddOns.json"}, "trunk_sid": None,
            "uri": f"{uri}.json", "voice_receive_mode": "voice", **self.settings,
        }


def number_filter(raw: str | None) -> re.Pattern[str] | None:
    """Twilio's PhoneNumber filter: the whole number or a part of it, `*` standing for any one digit."""
    if raw is None:
        return None
    wanted = "".join(raw.split())  # a `+` sent unencoded arrives as a space
    return re.compile("".join(r"\d" if c == "*" else re.escape(c) for c in wanted))


# --- the carrier -------------------------------------------------------------------------------------------


class Carrier:
    """The fake's state: messages, the pending failure/hang injections, the callback odds and the concurrency
    limit (thread-safe)."""

    def __init__(self, auth_token: str, inbound_url: str, callback_delay: float = 0.2, *, seed: int | None = None,
                 duplicate: float = 0.0, reorder: float = 0.0, max_concurrent: int = 0,
                 numbers: Iterable[str] = ()) -> None:
        self.auth_token = auth_token
        self.inbound_url = inbound_url  # where a text to a number without an SmsUrl goes
        self.callback_delay = callback_delay
        self.lock = threading.Lock()
        self.messages: list[Message] = []
        self.numbers: dict[str, PhoneNumber] = {}  # the account's numbers, by E.164, in the order given
        self.add_numbers(numbers)
        self.failures: list[tuple[int, int]] = []  # (http status, twilio code) per upcoming send
        self.hangs: list[float] = []  # seconds per upcoming send
        self.late_answers: list[float] = []  # seconds per upcoming send, waited after accepting it
        self.failed_answers: list[tuple[int, int]] = []  # (http status, twilio code) per upcoming send, after accepting
        self.seed = secrets.randbits(32) if seed is None else seed
        self.rng = random.Random(self.seed)
        self.duplicate = probability(duplicate)  # a status callback is posted twice
        self.reorder = probability(reorder)  # a message's delivered callback is posted before its sent one
        self.max_concurrent = 0
        self.latency = 0.0  # seconds each admitted send takes before its answer
        self.in_flight = 0
        self.set_limits(max_concurrent, 0)

    def add(self, message: Message) -> None:
        with self.lock:
            self.messages.append(message)

    def add_numbers(self, numbers: Iterable[str]) -> None:
        """The account holds these numbers too (a number it holds already keeps its settings)."""
        with self.lock:
            for number in numbers:
                self.numbers.setdefault(number, PhoneNumber(number))

    def find_numbers(self, account_sid: str, phone_number: str | None,
                     friendly_name: str | None) -> list[dict[str, Any]]:
        """Twilio's resources of the account's numbers matching the filters, in the order the account got them."""
        pattern = number_filter(phone_number)
        with self.lock:
            return [n.resource(account_sid) for n in self.numbers.values()
                    if (pattern is None or pattern.search(n.number))
                    and (friendly_name is None or n.settings["friendly_name"] == friendly_name)]

    def number(self, sid: str) -> PhoneNumber | None:
        with self.lock:
            return next((n for n in self.numbers.values() if n.sid == sid), None)

    def update_number(self, sid: str, account_sid: str, form: Mapping[str, str]) -> dict[str, Any] | None:
        """Twilio's Update IncomingPhoneNumber: the resource as updated, None for an unknown sid; ValueError for a
        bad parameter (nothing changed)."""
        with self.lock:
            number = next((n for n in self.numbers.values() if n.sid == sid), None)
            if number is None:
                return None
            number.update(form)
            return number.resource(account_sid)

    def inbound_target(self, to: str) -> tuple[str, str]:
        """(URL, method) a text to `to` is posted to: the number's SmsUrl when one is configured, else
        INBOUND_WEBHOOK_URL (a number the account does not hold, or one not configured yet)."""
        with self.lock:
            number = self.numbers.get(to)
            configured = number.inbound() if number else None
        return configured or (self.inbound_url, "POST")

    def list(self, to: str | None = None, from_: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [m.public() for m in self.messages
                    if (to is None or m.to == to) and (from_ is None or m.from_ == from_)]

    def find(self, wanted: MessageFilter) -> list[dict[str, Any]]:
        """Twilio's resources of the messages `wanted`, newest first."""
        with self.lock:
            return [m.resource() for m in reversed(self.messages) if wanted.matches(m)]

    def resource(self, message: Message) -> dict[str, Any]:
        with self.lock:
            return message.resource()

    def set_status(self, message: Message, status: str) -> None:
        with self.lock:
            message.status, message.updated = status, utcnow()
            if status == "sent":
                message.sent = message.updated

    def enqueue(self, queue: list[Any], item: Any, count: int) -> int:
        """Add `item` for the next `count` sends to one of the injection queues; how many are pending."""
        with self.lock:
            queue.extend([item] * count)
            return len(queue)

    def next_of(self, queue: list[Any], default: Any) -> Any:
        with self.lock:
            return queue.pop(0) if queue else default

    def next_injection(self) -> tuple[float, tuple[int, int] | None]:
        return self.next_of(self.hangs, 0.0), self.next_of(self.failures, None)

    def set_callback_odds(self, duplicate: Any = None, reorder: Any = None) -> dict[str, Any]:
        """Change the probabilities given (the others stay); the current ones, and the seed."""
        with self.lock:
            self.duplicate = self.duplicate if duplicate is None else probability(duplicate)
            self.reorder = self.reorder if reorder is None else probability(reorder)
            return {"duplicate": self.duplicate, "reorder": self.reorder, "seed": self.seed}

    def set_limits(self, max_concurrent: Any = None, latency_ms: Any = None) -> dict[str, Any]:
        """Change the limits given (the others stay); the current ones, and the sends in flight."""
        limit = None if max_concurrent is None else int(max_concurrent)
        latency = None if latency_ms is None else float(latency_ms) / 1000
        if (limit or 0) < 0 or (latency or 0) < 0:
            raise ValueError("maxConcurrent and latencyMs are at least 0")
        with self.lock:
            self.max_concurrent = self.max_concurrent if limit is None else limit
            self.latency = self.latency if latency is None else latency
            return {"maxConcurrent": self.max_concurrent, "latencyMs": self.latency * 1000, "inFlight": self.in_flight}

    @contextlib.contextmanager
    def rest_slot(self) -> Iterator[bool]:
        """A place among the account's concurrent REST requests: yields False (holding nothing) if none is free."""
        with self.lock:
            admitted = not self.max_concurrent or self.in_flight < self.max_concurrent
            self.in_flight += admitted
        try:
            yield admitted
        finally:
            with self.lock:
                self.in_flight -= admitted

    def callback_plan(self) -> list[tuple[str, list[str]]]:
        """For each status a sent message reaches (sent, then delivered), the callbacks posted when it does: in that
        order, unless `delivered` overtakes `sent` (odds `reorder`); each may be posted twice (odds `duplicate`)."""
        with self.lock:
            overtaken = self.rng.random() < self.reorder
            posts = {s: [s] * (2 if self.rng.random() < self.duplicate else 1) for s in ("sent", "delivered")}
        if overtaken:
            return [("sent", []), ("delivered", posts["delivered"] + posts["sent"])]
        return [("sent", posts["sent"]), ("delivered", posts["delivered"])]

    def send_callbacks(self, message: Message, account_sid: str) -> None:
        """The message goes out (sent, then delivered); its status callbacks follow the plan."""
        for status, callbacks in self.callback_plan():
            time.sleep(self.callback_delay)
            self.set_status(message, status)
            for posted in callbacks:
                self.post_status_callback(message, posted, account_sid)

    def post_status_callback(self, message: Message, status: str, account_sid: str) -> None:
        """Post one status callback to the message's StatusCallback, signed."""
        if not message.status_callback:
            return
        params = {"MessageSid": message.sid, "SmsSid": message.sid, "MessageStatus": status, "SmsStatus": status,
                  "AccountSid": account_sid, "To": message.to, "From": message.from_, "ApiVersion": API_VERSION}
        try:
            code, _, attempts = deliver_webhook(message.status_callback, params, self.auth_token)
            log(f"status callback {message.sid} {status} -> {code} ({attempts} attempt(s))")
        except (OSError, ValueError) as e:
            log(f"status callback {message.sid} {status} failed: {e}")

    def reply(self, from_: str, to: str, body: str, account_sid: str) -> tuple[int, bytes, int]:
        """The phone `from_` texts `body` to `to`: a signed inbound webhook to the number's SmsUrl (else
        INBOUND_WEBHOOK_URL); (status, body, attempts) as `deliver_webhook`."""
        sid = "SM" + secrets.token_hex(16)
        message = Message(sid=sid, to=to, from_=from_, body=body, direction="inbound", status="received",
                          account_sid=account_sid)
        message.sent = message.created
        self.add(message)
        params = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": account_sid,
                  "From": from_, "To": to, "Body": body, "NumMedia": "0", "NumSegments": str(segments(body)),
                  "SmsStatus": "received", "ApiVersion": API_VERSION}
        url, method = self.inbound_target(to)
        return deliver_webhook(url, params, self.auth_token, method)


def log(line: str) -> None:
    sys.stderr.write(f"fake-carrier: {line}\n")


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


@dataclass(frozen=True)
class ApiPath:
    """A REST API path: `/2010-04-01/Accounts/{account}/{resource}.json` (a list) or
    `/2010-04-01/Accounts/{account}/{resource}/{sid}.json` (one instance)."""

    account: str
    resource: str
    sid: str | None = None

    @classmethod
    def parse(cls, path: str) -> ApiPath | None:
        parts = path.strip("/").split("/")
        if len(parts) not in (4, 5) or parts[0] != API_VERSION or parts[1] != "Accounts" \
                or not parts[-1].endswith(".json"):
            return None
        last = parts[-1].removesuffix(".json")
        return cls(parts[2], last) if len(parts) == 4 else cls(parts[2], parts[3], last)

    def not_found(self) -> dict[str, Any]:
        """Twilio's 20404 for a resource it does not have."""
        where = f"/{self.resource}/{self.sid}" if self.sid else f"/{self.resource}"
        return twilio_error(404, 20404, f"The requested resource /{API_VERSION}/Accounts/{self.account}{where}.json "
                                        "was not found")


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
        message = Message(sid="SM" + secrets.token_hex(16), to=form["To"], from_=form["From"], body=form["Body"],
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
        try:
            status, body, attempts = self.carrier.reply(spec["from"], spec["to"], spec["body"], account)
        except WebhookError as e:
            self.send_json(502, {"message": f"inbound webhook failed: {e}", "attempts": e.attempts})
            return
        except (OSError, ValueError) as e:  # e.g. a malformed INBOUND_WEBHOOK_URL
            self.send_json(502, {"message": f"inbound webhook failed: {e}"})
            return
        log(f"reply from {spec['from']} -> {status} ({attempts} attempt(s))")
        if from_form:
            self.send_bytes(303, b"", "text/plain", {"Location": "/"})
        else:
            self.send_bytes(status, body, "application/xml" if body.startswith(b"<") else "application/json",
                            {"X-Webhook-Attempts": str(attempts)})

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


def account_numbers(env: Mapping[str, str]) -> list[str]:
    """The numbers the account holds: CARRIER_NUMBERS if set, else the local stack's NUMBER_POOL and
    DEMO_TEXTING_NUMBER (NUMBER_POOL's syntax; PoolError, a ValueError, for a malformed one)."""
    if "CARRIER_NUMBERS" in env:
        return expand(env["CARRIER_NUMBERS"])
    return expand(",".join(v for v in (env.get("NUMBER_POOL"), env.get("DEMO_TEXTING_NUMBER")) if v))


def carrier_from_env(env: Mapping[str, str], token: str) -> Carrier:
    """The Carrier the environment describes (ValueError for a malformed setting)."""
    seed = env.get("CARRIER_SEED")
    return Carrier(token, env.get("INBOUND_WEBHOOK_URL", DEFAULT_INBOUND_URL),
                   float(env.get("STATUS_CALLBACK_DELAY_SECONDS", 0.2)), seed=int(seed) if seed else None,
                   duplicate=float(env.get("STATUS_CALLBACK_DUPLICATE", 0.0)),
                   reorder=float(env.get("STATUS_CALLBACK_REORDER", 0.0)),
                   max_concurrent=int(env.get("CARRIER_MAX_CONCURRENT", 0)), numbers=account_numbers(env))


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
    try:
        carrier = carrier_from_env(env, token)
    except ValueError as e:
        print(f"fake-carrier: {e}", file=sys.stderr)
        return 1
    server = make_server(args.host, args.port, carrier)
    print(f"fake-carrier: http://{args.host}:{args.port} ({len(carrier.numbers)} numbers; inbound webhooks to each "
          f"number's SmsUrl, else {carrier.inbound_url}; "
          f"CARRIER_SEED={carrier.seed}, duplicate {carrier.duplicate:g}, reorder {carrier.reorder:g}, "
          f"max concurrent {carrier.max_concurrent or 'unlimited'})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
