"""The fake's state and what it does with it: the messages and numbers it holds, the failures and hangs
queued for the next sends, the status callbacks' odds, the concurrency limit, and the settings the
environment gives it."""

from __future__ import annotations

import contextlib
import random
import secrets
import sys
import threading
import time
from typing import Any, Iterable, Iterator, Mapping

from infra.local.fake_carrier.messages import Message, MessageFilter, segments
from infra.local.fake_carrier.phone_numbers import PhoneNumber, number_filter
from infra.local.fake_carrier.rest import API_VERSION, utcnow
from infra.local.fake_carrier.webhooks import deliver_webhook
from infra.local.numbers import expand

DEFAULT_INBOUND_URL = "http://127.0.0.1:3000/v1/carrier/twilio/inbound"


def probability(value: Any) -> float:
    p = float(value)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a probability is between 0 and 1, not {value!r}")
    return p


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

    def reply(self, from_: str, to: str, body: str, account_sid: str, sid: str) -> tuple[int, bytes, int]:
        """The phone `from_` texts `body` to `to` as message `sid` (`new_sid()`): a signed inbound webhook to
        the number's SmsUrl (else INBOUND_WEBHOOK_URL); (status, body, attempts) as `deliver_webhook`."""
        message = Message(sid=sid, to=to, from_=from_, body=body, direction="inbound", status="received",
                          account_sid=account_sid)
        message.sent = message.created
        self.add(message)
        params = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": account_sid,
                  "From": from_, "To": to, "Body": body, "NumMedia": "0", "NumSegments": str(segments(body)),
                  "SmsStatus": "received", "ApiVersion": API_VERSION}
        url, method = self.inbound_target(to)
        return deliver_webhook(url, params, self.auth_token, method)


def new_sid() -> str:
    """A message sid as Twilio writes one: SM and 32 hex digits."""
    return "SM" + secrets.token_hex(16)


def log(line: str) -> None:
    sys.stderr.write(f"fake-carrier: {line}\n")


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
