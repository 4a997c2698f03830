"""The account's phone numbers (Twilio's IncomingPhoneNumbers): each number's webhooks as last configured,
the resource Twilio answers with, and the PhoneNumber filter of its list."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping
from urllib.parse import urlsplit

from infra.local.fake_carrier.rest import API_VERSION, rfc2822, utcnow


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
