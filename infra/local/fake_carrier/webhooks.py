"""Webhooks as Twilio delivers them: signed (X-Twilio-Signature), an answer never retried, a failed
connection retried once, unless the connection overrides in the URL's fragment say otherwise."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import secrets
import time
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import parse_qs, urldefrag, urlencode, urlsplit, urlunsplit

RETRY_KINDS = frozenset({"4xx", "5xx", "ct", "rt"})  # what a webhook attempt can end in, short of success
OVERRIDE_BOUNDS = {"ct": (100, 10000), "rt": (100, 15000), "tt": (100, 15000), "rc": (0, 5)}


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature: base64(HMAC-SHA1(token, url + each POST param's name+value, sorted by name))."""
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def bounded_int(raw: str | None, low: int, high: int, default: int) -> int:
    """`raw` as an int clamped to [low, high]; `default` if absent or not a number."""
    try:
        return min(max(int(raw or ""), low), high)
    except ValueError:
        return default


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
