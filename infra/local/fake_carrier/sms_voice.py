"""AWS End User Messaging SMS (`pinpoint-sms-voice-v2`) as the fake carrier plays it.

moto has no such service, so the fake speaks its JSON protocol (awsJson 1.0: `POST /`, `X-Amz-Target:
PinpointSMSVoiceV2.<Operation>`, errors as `{"__type": ..., "Message": ...}`). The functions reach it as
they reach AWS, through the emulator (`AWS_ENDPOINT_URL`): the emulator checks the caller's IAM policy and
hands requests signed for `sms-voice` on to the fake (`--sms-voice-url`).

It behaves as AWS documents, not as we would like:
- a number texts through End User Messaging only if the account holds it there (`EUM_NUMBERS`), with a
  configuration set the account has (`EUM_CONFIGURATION_SETS`); anything else is ResourceNotFoundException;
- above the account's concurrent requests a send is ThrottlingException (HTTP 400), never processed;
- a person on the number's opt-out list is refused: ConflictException, Reason
  DESTINATION_PHONE_NUMBER_OPTED_OUT. A text beginning with an opt-out keyword puts them there and is
  answered by the service itself, as a HELP is, while the number's opt-outs are not self-managed; nothing
  takes them off but `DeleteOptedOutNumber`, which lifts a person once in 30 days;
- the injected failures of the fake's controls apply as they do to Twilio's API (a send taken, then
  answered 500 or never answered, is at the phone all the same).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from infra.local.fake_carrier.carrier import Carrier, log
from infra.local.fake_carrier.messages import Message
from infra.local.numbers import expand

TARGET_PREFIX = "PinpointSMSVoiceV2."
CONTENT_TYPE = "application/x-amz-json-1.0"
ACCOUNT = "123456789012"  # the emulator's account (infra.local.enforcer.ACCOUNT)
OPTED_OUT = "DESTINATION_PHONE_NUMBER_OPTED_OUT"
DEFAULT_OPT_OUT_LIST = "Default"
# AWS's required opt-out keywords (US and Canada); a text that begins with one opts the person out.
OPT_OUT_KEYWORDS = {"ARRET", "CANCEL", "END", "OPT-OUT", "OPTOUT", "QUIT", "REMOVE", "STOP", "TD", "UNSUBSCRIBE"}
# What the service answers by itself while opt-outs are not self-managed (the number's keyword messages).
STOP_ANSWER = "You have been unsubscribed and will receive no further messages. Reply HELP for help."
HELP_ANSWER = "Reply STOP to unsubscribe. Msg&data rates may apply."
# DeleteOptedOutNumber takes a person off a list once in this many days.
RELIST_DAYS = 30
# How often End User Messaging tries to publish a text or an event to a topic that does not answer
# (0.25 s doubling to 10 s: about two minutes).
PUBLISH_ATTEMPTS = 16


def phone_number_id(number: str) -> str:
    """The fake's id of a number it holds (AWS's are phone- and 32 hex digits; these are stable)."""
    return "phone-" + number.lstrip("+")


def phone_number_arn(number: str, region: str = "us-east-1") -> str:
    return f"arn:aws:sms-voice:{region}:{ACCOUNT}:phone-number/{phone_number_id(number)}"


class SmsVoiceError(Exception):
    """An error answer: HTTP status, the `__type` and what goes with it."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.kind, self.extra = status, kind, extra

    def body(self) -> dict[str, Any]:
        return {"__type": self.kind, "Message": str(self), **self.extra}


def not_found(resource_type: str, resource_id: str) -> SmsVoiceError:
    return SmsVoiceError(400, "ResourceNotFoundException", f"The {resource_type} {resource_id} was not found.",
                         ResourceType=resource_type, ResourceId=resource_id)


@dataclass
class EumNumber:
    """A number the account holds in End User Messaging, as DescribePhoneNumbers shows it."""

    number: str
    two_way_enabled: bool = False
    two_way_channel_arn: str = ""
    self_managed_opt_outs: bool = False
    opt_out_list: str = DEFAULT_OPT_OUT_LIST
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def describe(self) -> dict[str, Any]:
        return {"PhoneNumberArn": phone_number_arn(self.number), "PhoneNumberId": phone_number_id(self.number),
                "PhoneNumber": self.number, "Status": "ACTIVE", "IsoCountryCode": "US", "MessageType": "TRANSACTIONAL",
                "NumberCapabilities": ["SMS"], "NumberType": "TEN_DLC", "MonthlyLeasingPrice": "2.00",
                "TwoWayEnabled": self.two_way_enabled, "TwoWayChannelArn": self.two_way_channel_arn or None,
                "SelfManagedOptOutsEnabled": self.self_managed_opt_outs, "OptOutListName": self.opt_out_list,
                "DeletionProtectionEnabled": False, "CreatedTimestamp": self.created.timestamp()}


class SmsVoice:
    """The End User Messaging side of the fake account (thread-safe; the messages are the carrier's)."""

    def __init__(self, carrier: Carrier, numbers: Iterable[str] = (), configuration_sets: Iterable[str] = (),
                 publish: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.carrier = carrier
        self.lock = threading.Lock()
        self.numbers = {n: EumNumber(n) for n in numbers}
        # Each configuration set's event destinations: name -> SNS topic ARN.
        self.configuration_sets: dict[str, dict[str, str]] = {name: {} for name in configuration_sets}
        self.opt_outs: dict[str, dict[str, datetime]] = {DEFAULT_OPT_OUT_LIST: {}}
        self.lifted: dict[tuple[str, str], datetime] = {}  # (list, person): last DeleteOptedOutNumber
        # How a notification reaches an SNS topic (AWS's part): the emulator's SNS, else nowhere.
        self.publish = publish

    def holds(self, number: str) -> bool:
        return number in self.numbers

    # ------------------------------------------------------------------------------------ the protocol

    def handle(self, target: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """One request: (HTTP status, JSON body)."""
        operation = target.removeprefix(TARGET_PREFIX)
        try:
            params = json.loads(raw or b"{}")
            if not isinstance(params, dict):
                raise ValueError("the body is not an object")
        except ValueError as e:
            return 400, SmsVoiceError(400, "SerializationException", str(e)).body()
        handler = {"SendTextMessage": self.send_text_message, "DescribePhoneNumbers": self.describe_phone_numbers,
                   "UpdatePhoneNumber": self.update_phone_number,
                   "DescribeOptedOutNumbers": self.describe_opted_out_numbers,
                   "DeleteOptedOutNumber": self.delete_opted_out_number,
                   "CreateConfigurationSet": self.create_configuration_set,
                   "DescribeConfigurationSets": self.describe_configuration_sets,
                   "CreateEventDestination": self.create_event_destination}.get(operation)
        if handler is None or not target.startswith(TARGET_PREFIX):
            return 400, SmsVoiceError(400, "UnknownOperationException", f"unknown operation {target!r}").body()
        try:
            return 200, handler(params)
        except SmsVoiceError as e:
            return e.status, e.body()

    def number_of(self, identity: str) -> EumNumber:
        """A number by its E.164 form, id or ARN."""
        with self.lock:
            for n in self.numbers.values():
                if identity in (n.number, phone_number_id(n.number), phone_number_arn(n.number)):
                    return n
        raise not_found("phone-number", identity)

    def send_text_message(self, p: dict[str, Any]) -> dict[str, Any]:
        for name in ("DestinationPhoneNumber", "OriginationIdentity", "MessageBody"):
            if not p.get(name):
                raise SmsVoiceError(400, "ValidationException", f"{name} is required.", Reason="FIELD_VALIDATION_FAILED")
        number = self.number_of(p["OriginationIdentity"])
        config = p.get("ConfigurationSetName")
        with self.lock:
            known = not config or config in self.configuration_sets
        if not known:
            raise not_found("configuration-set", config)
        with self.carrier.rest_slot() as admitted:
            if not admitted:
                raise SmsVoiceError(400, "ThrottlingException", "Rate exceeded.")
            return self.admitted_send(number, p)

    def admitted_send(self, number: EumNumber, p: dict[str, Any]) -> dict[str, Any]:
        time.sleep(self.carrier.latency)
        hang, fail = self.carrier.next_injection()
        if hang:
            time.sleep(hang)
        if fail:
            raise injected(fail[0])
        to = p["DestinationPhoneNumber"]
        with self.lock:
            opted_out = to in self.opt_outs.get(number.opt_out_list, {})
        if opted_out:
            raise SmsVoiceError(400, "ConflictException", f"{to} is on the opt-out list {number.opt_out_list}.",
                                Reason=OPTED_OUT, ResourceType="opt-out-list", ResourceId=number.opt_out_list)
        message = Message(sid=str(uuid.uuid4()), to=to, from_=number.number, body=p["MessageBody"],
                          direction="outbound-api", status="delivered", api="end-user-messaging",
                          context=dict(p.get("Context") or {}), message_type=p.get("MessageType", "TRANSACTIONAL"),
                          configuration_set=p.get("ConfigurationSetName"))
        message.sent = message.created
        self.carrier.add(message)
        self.events_after(message, p.get("ConfigurationSetName"))
        late = self.carrier.next_of(self.carrier.late_answers, 0.0)
        failure = self.carrier.next_of(self.carrier.failed_answers, None)
        if late:
            log(f"end-user-messaging: accepted {message.sid} to {to}; answering in {late:g} s")
            time.sleep(late)
        if failure:
            log(f"end-user-messaging: sent {message.sid} to {to}; answered {failure[0]}")
            raise injected(failure[0])
        log(f"end-user-messaging: sent {message.sid} to {to}")
        return {"MessageId": message.sid}

    def events_after(self, message: Message, config: str | None) -> None:
        """The text's delivery events, as its configuration set's event destinations get them: accepted by the
        recipient's carrier, then delivered (after the carrier's callback delay)."""
        with self.lock:
            topics = list(self.configuration_sets.get(config or "", {}).values())
        if not topics or self.publish is None:
            return

        def go() -> None:
            for event_type, status in (("TEXT_SUCCESSFUL", "SUCCESSFUL"), ("TEXT_DELIVERED", "DELIVERED")):
                time.sleep(self.carrier.callback_delay)
                event = {"eventType": event_type, "eventVersion": "1.0",
                         "eventTimestamp": int(time.time() * 1000), "isFinal": event_type == "TEXT_DELIVERED",
                         "originationPhoneNumber": message.from_, "destinationPhoneNumber": message.to,
                         "isInternationalSend": False, "messageId": message.sid,
                         "messageRequestTimestamp": int(message.created.timestamp() * 1000),
                         "messageEncoding": "GSM", "messageType": message.message_type,
                         "messageStatus": status, "messageStatusDescription": "Message has been accepted by phone carrier",
                         "context": message.context or {}, "totalMessageParts": 1}
                for topic in topics:
                    self.notify(topic, event)

        threading.Thread(target=go, daemon=True).start()

    def notify(self, topic: str, payload: dict[str, Any], *, attempts: int = PUBLISH_ATTEMPTS) -> bool:
        """Publish to an SNS topic as End User Messaging does: a text or an event it took is its to deliver,
        so a topic that does not answer (SNS briefly away) is tried again, with backoff, for about two
        minutes. False if it never could (or nothing publishes here)."""
        if self.publish is None:
            return False
        delay = 0.25
        for attempt in range(1, attempts + 1):
            try:
                self.publish(topic, payload)
                return True
            except Exception as e:  # noqa: BLE001 - the emulator's SNS refused or is down: said, tried again
                log(f"end-user-messaging: publishing to {topic} failed (attempt {attempt}): {e}")
                if attempt < attempts:
                    time.sleep(delay)
                    delay = min(delay * 2, 10.0)
        return False

    def describe_phone_numbers(self, p: dict[str, Any]) -> dict[str, Any]:
        wanted = p.get("PhoneNumberIds")
        found = [self.number_of(i) for i in wanted] if wanted else list(self.numbers.values())
        return {"PhoneNumbers": [n.describe() for n in found]}

    def update_phone_number(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("PhoneNumberId"):
            raise SmsVoiceError(400, "ValidationException", "PhoneNumberId is required.",
                                Reason="FIELD_VALIDATION_FAILED")
        number = self.number_of(p["PhoneNumberId"])
        with self.lock:
            if "TwoWayEnabled" in p:
                number.two_way_enabled = bool(p["TwoWayEnabled"])
            if "TwoWayChannelArn" in p:
                number.two_way_channel_arn = str(p["TwoWayChannelArn"])
            if "SelfManagedOptOutsEnabled" in p:
                number.self_managed_opt_outs = bool(p["SelfManagedOptOutsEnabled"])
            if "OptOutListName" in p:
                number.opt_out_list = str(p["OptOutListName"])
                self.opt_outs.setdefault(number.opt_out_list, {})
        return number.describe()

    def create_configuration_set(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("ConfigurationSetName") or ""
        with self.lock:
            if name in self.configuration_sets:
                raise SmsVoiceError(400, "ConflictException", f"The configuration set {name} already exists.",
                                    Reason="RESOURCE_ALREADY_EXISTS", ResourceType="configuration-set",
                                    ResourceId=name)
            self.configuration_sets[name] = {}
        return {"ConfigurationSetName": name,
                "ConfigurationSetArn": f"arn:aws:sms-voice:us-east-1:{ACCOUNT}:configuration-set/{name}"}

    def describe_configuration_sets(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            sets = {n: dict(d) for n, d in self.configuration_sets.items()
                    if not p.get("ConfigurationSetNames") or n in p["ConfigurationSetNames"]}
        return {"ConfigurationSets": [
            {"ConfigurationSetName": n, "ConfigurationSetArn": f"arn:aws:sms-voice:us-east-1:{ACCOUNT}:configuration-set/{n}",
             "EventDestinations": [{"EventDestinationName": d, "Enabled": True, "MatchingEventTypes": ["TEXT_ALL"],
                                    "SnsDestination": {"TopicArn": t}} for d, t in dests.items()]}
            for n, dests in sets.items()]}

    def create_event_destination(self, p: dict[str, Any]) -> dict[str, Any]:
        name, dest = p.get("ConfigurationSetName") or "", p.get("EventDestinationName") or ""
        topic = (p.get("SnsDestination") or {}).get("TopicArn")
        if not topic:
            raise SmsVoiceError(400, "ValidationException", "the fake takes SNS destinations only",
                                Reason="FIELD_VALIDATION_FAILED")
        with self.lock:
            if name not in self.configuration_sets:
                raise not_found("configuration-set", name)
            if dest in self.configuration_sets[name]:
                raise SmsVoiceError(400, "ConflictException", f"The event destination {dest} already exists.",
                                    Reason="RESOURCE_ALREADY_EXISTS", ResourceType="event-destination", ResourceId=dest)
            self.configuration_sets[name][dest] = topic
        return {"ConfigurationSetName": name, "EventDestination": {
            "EventDestinationName": dest, "Enabled": True, "MatchingEventTypes": p.get("MatchingEventTypes") or [],
            "SnsDestination": {"TopicArn": topic}}}

    def opt_out_list(self, p: dict[str, Any]) -> dict[str, datetime]:
        name = p.get("OptOutListName") or ""
        if name not in self.opt_outs:
            raise not_found("opt-out-list", name)
        return self.opt_outs[name]

    def describe_opted_out_numbers(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            entries = dict(self.opt_out_list(p))
        wanted = p.get("OptedOutNumbers")
        return {"OptOutListArn": f"arn:aws:sms-voice:us-east-1:{ACCOUNT}:opt-out-list/{p['OptOutListName']}",
                "OptOutListName": p["OptOutListName"],
                "OptedOutNumbers": [{"OptedOutNumber": n, "OptedOutTimestamp": at.timestamp(), "EndUserOptedOut": True}
                                    for n, at in entries.items() if not wanted or n in wanted]}

    def delete_opted_out_number(self, p: dict[str, Any]) -> dict[str, Any]:
        number = p.get("OptedOutNumber") or ""
        now = datetime.now(timezone.utc)
        with self.lock:
            entries = self.opt_out_list(p)
            if number not in entries:
                raise not_found("opted-out-number", number)
            last = self.lifted.get((p["OptOutListName"], number))
            if last is not None and (now - last).days < RELIST_DAYS:
                raise SmsVoiceError(400, "ValidationException",
                                    f"{number} can only be deleted once every {RELIST_DAYS} days.", Reason="OTHER")
            at = entries.pop(number)
            self.lifted[(p["OptOutListName"], number)] = now
        return {"OptOutListName": p["OptOutListName"], "OptedOutNumber": number,
                "OptedOutTimestamp": at.timestamp(), "EndUserOptedOut": True}

    # --------------------------------------------------------------------------------- the phone's side

    def heard(self, from_: str, to: str, body: str, message_id: str) -> bool | None:
        """A person texted one of its numbers. A STOP puts them on the number's opt-out list and a START takes
        them off it, as End User Messaging does unless the number manages its opt-outs itself; the text goes
        to the number's two-way channel (published in the background, tried again while SNS does not
        answer). None: not one of its numbers; else whether the text was taken for a channel."""
        number = self.numbers.get(to)
        if number is None:
            return None
        words = body.strip().upper().split()
        first = words[0] if words else ""
        answer = None
        with self.lock:
            if not number.self_managed_opt_outs:
                if first in OPT_OUT_KEYWORDS:
                    self.opt_outs.setdefault(number.opt_out_list, {}).setdefault(from_, datetime.now(timezone.utc))
                    answer = STOP_ANSWER
                elif first == "HELP":
                    answer = HELP_ANSWER
            channel = number.two_way_channel_arn if number.two_way_enabled else ""
        message = Message(sid=message_id, to=to, from_=from_, body=body, direction="inbound", status="received",
                          api="end-user-messaging")
        message.sent = message.created
        self.carrier.add(message)
        if answer:
            auto = Message(sid=str(uuid.uuid4()), to=from_, from_=to, body=answer, direction="outbound-reply",
                           status="delivered", api="end-user-messaging")
            auto.sent = auto.created
            self.carrier.add(auto)
        if not channel:
            log(f"end-user-messaging: {to} has no two-way channel: the text from {from_} goes nowhere")
            return False
        if self.publish is None:
            return False
        # The person's text is taken; getting it to the topic is the service's job from here.
        payload = {"originationNumber": from_, "destinationNumber": to, "messageKeyword": "KEYWORD_" + ACCOUNT,
                   "messageBody": body, "inboundMessageId": message_id, "previousPublishedMessageId": None}
        threading.Thread(target=self.notify, args=(channel, payload), daemon=True).start()
        return True


def injected(status: int) -> SmsVoiceError:
    """An injected failure in this API's words: 429 is throttling, 5xx the service's own failure."""
    if status == 429:
        return SmsVoiceError(400, "ThrottlingException", "Rate exceeded.")
    if status >= 500:
        return SmsVoiceError(status, "InternalServerException", "injected failure", RequestId=str(uuid.uuid4()))
    return SmsVoiceError(400, "ValidationException", "injected failure", Reason="OTHER")


def sms_voice_from_env(env: dict[str, str] | Any, carrier: Carrier) -> SmsVoice:
    """The End User Messaging side the environment describes: EUM_NUMBERS (NUMBER_POOL's syntax; default none),
    EUM_CONFIGURATION_SETS (comma-separated; default none: the stack's bootstrap creates its own) and
    AWS_ENDPOINT_URL, the emulator whose SNS gets what End User Messaging publishes."""
    numbers = expand(env.get("EUM_NUMBERS") or "")
    sets = [s.strip() for s in (env.get("EUM_CONFIGURATION_SETS") or "").split(",") if s.strip()]
    endpoint = env.get("AWS_ENDPOINT_URL")
    return SmsVoice(carrier, numbers, sets, sns_publisher(endpoint, env.get("AWS_REGION") or "us-east-1")
                    if endpoint else None)


def sns_publisher(endpoint: str, region: str) -> Callable[[str, dict[str, Any]], None]:
    """Publishes as AWS's own service does: to the emulator's SNS, with the administrator's key."""
    import boto3  # the project's virtualenv has it; only a fake wired to an emulator needs it

    sns = boto3.client("sns", endpoint_url=endpoint, region_name=region, aws_access_key_id="test",
                       aws_secret_access_key="test")

    def publish(topic: str, payload: dict[str, Any]) -> None:
        sns.publish(TopicArn=topic, Message=json.dumps(payload))

    return publish
