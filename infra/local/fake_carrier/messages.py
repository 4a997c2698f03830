"""Texts as Twilio keeps them: the Message resource, its segment count, the list's filters and Create
Message's required parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Mapping

from infra.local.fake_carrier.rest import API_VERSION, rfc2822, utcnow

GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
           "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXT = set("^{}\\[~]|€\f")
REQUIRED = (("To", 21604, "A 'To' phone number is required."),
            ("From", 21603, "A 'From' phone number is required."),
            ("Body", 21602, "Message body is required."))


def segments(body: str) -> int:
    """SMS segment count: GSM-7 160 / 153 per part, else UCS-2 70 / 67."""
    if all(c in GSM7 or c in GSM7_EXT for c in body):
        units = sum(2 if c in GSM7_EXT else 1 for c in body)
        single, multi = 160, 153
    else:
        units = sum(2 if ord(c) > 0xFFFF else 1 for c in body)
        single, multi = 70, 67
    return 1 if units <= single else -(-units // multi)


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
    api: str = "twilio"  # or end-user-messaging: which of the fake's APIs sent it
    context: dict[str, str] | None = None  # End User Messaging's: as the sender gave it
    message_type: str | None = None  # End User Messaging's TRANSACTIONAL or PROMOTIONAL
    configuration_set: str | None = None

    def __post_init__(self) -> None:
        self.updated = self.created

    def public(self) -> dict[str, Any]:
        """The test controls' view (GET /messages)."""
        view = {"sid": self.sid, "to": self.to, "from": self.from_, "body": self.body, "direction": self.direction,
                "status": self.status, "at": self.created.isoformat(timespec="milliseconds"),
                "status_callback": self.status_callback, "api": self.api}
        if self.api == "end-user-messaging" and self.direction == "outbound-api":
            view.update(context=self.context, messageType=self.message_type, configurationSet=self.configuration_set)
        return view

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


def missing_parameter(form: Mapping[str, str]) -> tuple[int, str] | None:
    """Create Message's required parameters: the Twilio error for the first one missing."""
    return next(((code, text) for name, code, text in REQUIRED if not form.get(name)), None)
