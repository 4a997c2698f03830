"""End User Messaging SMS as the local world plays it: the fake carrier speaks `pinpoint-sms-voice-v2`'s JSON
protocol, and the emulator hands it the requests a function's IAM policy allows, as AWS would."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import PARAMS, TWILIO_TOKEN, free_port, start_emulator, unique

from infra.local import template as tpl
from infra.local.bootstrap import Bootstrap
from infra.local.fake_carrier import Carrier, make_server
from infra.local.fake_carrier import sms_voice as sms_voice_module
from infra.local.fake_carrier.sms_voice import SmsVoice, phone_number_arn

DEALER = "+17135550100"
OTHER = "+17135550101"  # held too, but the function's policy does not name it
PHONE = "+13125550142"
KEY = "ASIAFUNCTIONEUM0TEST"
ARN = "arn:aws:sms-voice:us-east-1:123456789012"


class World:
    def __init__(self, emulator: str, fake: str, carrier: Carrier, sms_voice: SmsVoice) -> None:
        self.emulator, self.fake, self.carrier, self.sms_voice = emulator, fake, carrier, sms_voice

    def client(self, key: str = KEY) -> Any:
        return boto3.client("pinpoint-sms-voice-v2", endpoint_url=self.emulator, region_name="us-east-1",
                            aws_access_key_id=key, aws_secret_access_key="x",
                            config=Config(retries={"total_max_attempts": 1}))

    def send(self, origination: str = DEALER, to: str = PHONE, **extra: Any) -> dict[str, Any]:
        return self.client().send_text_message(DestinationPhoneNumber=to, OriginationIdentity=origination,
                                               MessageBody="Your payment was received.",
                                               ConfigurationSetName="texting", **extra)

    def control(self, path: str, spec: dict[str, Any]) -> Any:
        req = urllib.request.Request(f"{self.fake}{path}", data=json.dumps(spec).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as res:  # noqa: S310 - loopback
            return res.read()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    carrier = Carrier("token", "http://127.0.0.1:9/none", callback_delay=0.01)
    sms_voice = SmsVoice(carrier, [DEALER, OTHER], ["texting"])
    server = make_server("127.0.0.1", 0, carrier, sms_voice)
    server.RequestHandlerClass.quiet = True  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fake = f"http://127.0.0.1:{server.server_address[1]}"
    port = free_port()
    emulator = start_emulator(port, "--sms-voice-url", fake)
    endpoint = f"http://127.0.0.1:{port}"
    policy = {"identities": [{"accessKeyId": KEY, "roleArn": "arn:aws:iam::123456789012:role/deliver",
                              "sessionName": "deliver", "statements": [
                                  {"Effect": "Allow", "Action": ["sms-voice:SendTextMessage"],
                                   "Resource": [f"{ARN}:configuration-set/texting", phone_number_arn(DEALER)]}]}]}
    req = urllib.request.Request(f"{endpoint}/_local/iam/identities", data=json.dumps(policy).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()  # noqa: S310 - loopback
    try:
        yield World(endpoint, fake, carrier, sms_voice)
    finally:
        emulator.kill()
        emulator.wait(5)
        server.shutdown()


def sent_to(world: World, phone: str) -> list[dict[str, Any]]:
    return [m for m in world.carrier.list(phone) if m["direction"] == "outbound-api"]


def test_a_send_reaches_the_phone_with_its_context_type_and_configuration_set(world: World) -> None:
    before = len(sent_to(world, PHONE))
    answer = world.send(Context={"messageId": "m-1"}, MessageType="PROMOTIONAL")
    (text,) = sent_to(world, PHONE)[before:]
    assert text["sid"] == answer["MessageId"] and text["from"] == DEALER and text["api"] == "end-user-messaging"
    assert (text["context"], text["messageType"], text["configurationSet"]) == ({"messageId": "m-1"}, "PROMOTIONAL",
                                                                              "texting")


def test_iam_allows_only_the_numbers_and_configuration_set_the_policy_names(world: World) -> None:
    before = len(sent_to(world, PHONE))
    for denied in ({"origination": OTHER}, {"origination": phone_number_arn(OTHER)}):
        with pytest.raises(ClientError) as e:
            world.send(**denied)
        assert e.value.response["Error"]["Code"] == "AccessDeniedException", denied
    with pytest.raises(ClientError) as e:
        world.client().send_text_message(DestinationPhoneNumber=PHONE, OriginationIdentity=DEALER, MessageBody="x",
                                         ConfigurationSetName="another")
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        world.client().describe_phone_numbers()
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert len(sent_to(world, PHONE)) == before  # nothing refused went out
    # The administrator (an operator's provisioning) reaches the rest of the API.
    numbers = world.client("test").describe_phone_numbers()["PhoneNumbers"]
    assert {n["PhoneNumber"] for n in numbers} == {DEALER, OTHER}


def test_a_number_or_configuration_set_the_account_lacks_is_not_found(world: World) -> None:
    admin = world.client("test")
    for kwargs, kind in (({"OriginationIdentity": "+17135550199"}, "phone-number"),
                         ({"OriginationIdentity": DEALER, "ConfigurationSetName": "nope"}, "configuration-set")):
        with pytest.raises(ClientError) as e:
            admin.send_text_message(DestinationPhoneNumber=PHONE, MessageBody="x", **kwargs)
        assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert e.value.response["ResourceType"] == kind


def test_a_stop_puts_the_person_on_the_opt_out_list_and_a_send_is_refused_until_it_is_deleted(world: World) -> None:
    person = "+13125550177"
    world.sms_voice.heard(person, DEALER, "stop", "m-stop")
    with pytest.raises(ClientError) as e:
        world.send(to=person)
    assert e.value.response["Error"]["Code"] == "ConflictException"
    assert e.value.response["Reason"] == "DESTINATION_PHONE_NUMBER_OPTED_OUT"
    assert sent_to(world, person) == []
    admin = world.client("test")
    listed = admin.describe_opted_out_numbers(OptOutListName="Default")["OptedOutNumbers"]
    assert person in {n["OptedOutNumber"] for n in listed}
    # The service answered the STOP itself; a START changes nothing on the list.
    answers = [m for m in world.carrier.list(person) if m["direction"] == "outbound-reply"]
    assert [a["body"] for a in answers] == [sms_voice_module.STOP_ANSWER]
    world.sms_voice.heard(person, DEALER, "START", "m-start")
    with pytest.raises(ClientError) as e:
        world.send(to=person)
    assert e.value.response["Reason"] == "DESTINATION_PHONE_NUMBER_OPTED_OUT"
    admin.delete_opted_out_number(OptOutListName="Default", OptedOutNumber=person)
    world.send(to=person)
    assert len(sent_to(world, person)) == 1
    with pytest.raises(ClientError) as e:  # not on the list any more
        admin.delete_opted_out_number(OptOutListName="Default", OptedOutNumber=person)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # Opted out again within 30 days: the list keeps them this time.
    world.sms_voice.heard(person, DEALER, "Stop please", "m-stop-2")
    with pytest.raises(ClientError) as e:
        admin.delete_opted_out_number(OptOutListName="Default", OptedOutNumber=person)
    assert e.value.response["Error"]["Code"] == "ValidationException"


def test_above_the_account_concurrency_a_send_is_throttled_and_not_processed(world: World) -> None:
    world.control("/limits", {"maxConcurrent": 1, "latencyMs": 1500})
    clients = [world.client() for _ in range(4)]  # made before, so the sends overlap
    try:
        results: list[str] = []

        def one(client: Any) -> None:
            try:
                client.send_text_message(DestinationPhoneNumber="+13125550188", OriginationIdentity=DEALER,
                                         MessageBody="x", ConfigurationSetName="texting")
                results.append("sent")
            except ClientError as e:
                results.append(e.response["Error"]["Code"])

        threads = [threading.Thread(target=one, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    finally:
        world.control("/limits", {"maxConcurrent": 0, "latencyMs": 0})
    assert "ThrottlingException" in results and set(results) <= {"ThrottlingException", "sent"}, results
    assert len(sent_to(world, "+13125550188")) == results.count("sent")  # a throttled send is not processed


def test_a_send_taken_then_answered_500_is_at_the_phone_all_the_same(world: World) -> None:
    world.control("/accept-then-fail", {"count": 1, "status": 500})
    with pytest.raises(ClientError) as e:
        world.send(to="+13125550199")
    assert e.value.response["Error"]["Code"] == "InternalServerException"
    assert len(sent_to(world, "+13125550199")) == 1


def test_without_a_url_the_emulator_answers_as_for_an_unknown_operation() -> None:
    port = free_port()
    emulator = start_emulator(port)
    try:
        client = boto3.client("pinpoint-sms-voice-v2", endpoint_url=f"http://127.0.0.1:{port}",
                              region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="x",
                              config=Config(retries={"total_max_attempts": 1}))
        with pytest.raises(ClientError) as e:
            client.describe_phone_numbers()
        assert e.value.response["Error"]["Code"] == "UnknownOperationException"
    finally:
        emulator.kill()
        emulator.wait(5)


def test_texts_and_delivery_events_are_published_to_the_stacks_topics_as_aws_does(world: World) -> None:
    admin = {"endpoint_url": world.emulator, "region_name": "us-east-1", "aws_access_key_id": "test",
             "aws_secret_access_key": "test"}
    sns, sqs = boto3.client("sns", **admin), boto3.client("sqs", **admin)
    replies = sns.create_topic(Name="texting-EumRepliesTopic")["TopicArn"]
    events = sns.create_topic(Name="texting-EumEventsTopic")["TopicArn"]
    queue = sqs.create_queue(QueueName="texting-EumQueue")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for topic in (replies, events):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    world.sms_voice.publish = sms_voice_module.sns_publisher(world.emulator, "us-east-1")
    sms = world.client("test")
    sms.create_configuration_set(ConfigurationSetName="with-events")
    sms.create_event_destination(ConfigurationSetName="with-events", EventDestinationName="status",
                                 MatchingEventTypes=["TEXT_ALL"], SnsDestination={"TopicArn": events})
    sms.update_phone_number(PhoneNumberId=phone_number_arn(DEALER), TwoWayEnabled=True, TwoWayChannelArn=replies)
    try:
        sent = sms.send_text_message(DestinationPhoneNumber=PHONE, OriginationIdentity=DEALER, MessageBody="hi",
                                     ConfigurationSetName="with-events", Context={"messageId": "01JOURMESSAGE"})
        assert world.sms_voice.heard(PHONE, DEALER, "Agree", "in-1") is True
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                got.append(json.loads(m["Body"]))
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for envelope in got:
            assert envelope["Type"] == "Notification"  # SNS's envelope, raw delivery off
            by_topic.setdefault(envelope["TopicArn"], []).append(json.loads(envelope["Message"]))
        (text,) = by_topic[replies]
        assert (text["originationNumber"], text["destinationNumber"], text["messageBody"], text["inboundMessageId"]) \
            == (PHONE, DEALER, "Agree", "in-1")
        assert [e["eventType"] for e in by_topic[events]] == ["TEXT_SUCCESSFUL", "TEXT_DELIVERED"]
        assert {e["messageId"] for e in by_topic[events]} == {sent["MessageId"]}
        assert all(e["context"] == {"messageId": "01JOURMESSAGE"} for e in by_topic[events])
    finally:
        world.sms_voice.publish = None
        sms.update_phone_number(PhoneNumberId=DEALER, TwoWayEnabled=False)


def test_the_templates_policies_let_deliver_alone_send_and_only_from_the_named_numbers(world: World) -> None:
    """The real template, booted with End User Messaging: deliver may call SendTextMessage with the stack's
    configuration set from the origination ARNs the operator named; no other function may, and deliver may do
    nothing else with the service."""
    numbers = phone_number_arn(DEALER)
    boot = Bootstrap(tpl.load(), unique("eumiam"), {**PARAMS, "EndUserMessagingConfigurationSet": "texting",
                                                    "EndUserMessagingOriginationArns": numbers},
                     endpoint=world.emulator, log=lambda line: None,
                     secrets={"CodeHashKeySecret": "local-code-hash-key", "TwilioAuthTokenSecret": TWILIO_TOKEN})
    boot.run()
    identities = boot.identities()

    def as_function(name: str) -> Any:
        return boto3.client("pinpoint-sms-voice-v2", endpoint_url=world.emulator, region_name="us-east-1",
                            aws_access_key_id=identities[name].access_key_id, aws_secret_access_key="local",
                            aws_session_token="local", config=Config(retries={"total_max_attempts": 1}))

    def outcome(name: str, origination: str = DEALER, config: str = "texting") -> str:
        try:
            as_function(name).send_text_message(DestinationPhoneNumber=PHONE, OriginationIdentity=origination,
                                                MessageBody="x", ConfigurationSetName=config)
            return "ok"
        except ClientError as e:
            return str(e.response["Error"]["Code"])

    assert outcome("deliver") == "ok"
    assert outcome("deliver", origination=OTHER) == "AccessDeniedException"
    assert outcome("deliver", config="another") == "AccessDeniedException"
    for other in sorted(set(identities) - {"deliver"}):
        assert outcome(other) == "AccessDeniedException", other
    for call in (lambda c: c.describe_phone_numbers(),
                 lambda c: c.delete_opted_out_number(OptOutListName="Default", OptedOutNumber=PHONE),
                 lambda c: c.update_phone_number(PhoneNumberId=DEALER, TwoWayEnabled=False)):
        with pytest.raises(ClientError) as e:
            call(as_function("deliver"))
        assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    # A START: the webhooks function takes the person off the stack's opt-out list, and no other.
    world.sms_voice.heard(PHONE, DEALER, "STOP", "m-iam-stop")
    as_function("webhooks").delete_opted_out_number(OptOutListName="Default", OptedOutNumber=PHONE)
    with pytest.raises(ClientError) as e:
        as_function("webhooks").delete_opted_out_number(OptOutListName="another", OptedOutNumber=PHONE)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"


def test_a_text_taken_while_sns_is_away_is_published_once_it_answers(world: World) -> None:
    """AWS's own publishing is durable: a topic that does not answer for a moment (the emulator
    restarting) gets the person's text when it is back, not never."""
    published: list[tuple[str, dict[str, Any]]] = []
    failures = [ConnectionError("SNS away")] * 2

    def flaky(topic: str, payload: dict[str, Any]) -> None:
        if failures:
            raise failures.pop()
        published.append((topic, payload))

    number = world.sms_voice.numbers[DEALER]
    channel = (number.two_way_enabled, number.two_way_channel_arn)
    number.two_way_enabled, number.two_way_channel_arn = True, "arn:aws:sns:us-east-1:123456789012:replies"
    world.sms_voice.publish = flaky
    try:
        assert world.sms_voice.heard("+13125550166", DEALER, "Agree", "m-away") is True
        deadline = time.monotonic() + 10
        while not published and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        world.sms_voice.publish = None
        number.two_way_enabled, number.two_way_channel_arn = channel
    assert [p["inboundMessageId"] for _, p in published] == ["m-away"]
