"""The operator's number provisioning (infra/provision.py) on the emulator, pointing the numbers' webhooks at the
stack through the fake carrier's IncomingPhoneNumbers API (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import parse_qs

import boto3
import pytest

from infra import provision
from infra.local.common import JsonHandler, Server
from infra.local.fake_carrier import Carrier, make_server, twilio_signature
from infra.local.fake_carrier.sms_voice import SmsVoice
from infra.local.tests.conftest import free_port, serve, start_emulator, unique

TOKEN = "provision-test-token"
ACCOUNT = "AC" + "d" * 32
DEALER_NUMBERS = ["+12025550100", "+12025550101", "+12025550102"]
NOT_HELD = "+13125550150"


@pytest.fixture
def table(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for k, v in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "test",
                 "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    name = unique("provision")
    boto3.client("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                              {"AttributeName": "SK", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}])
    return name


class Stack:
    """The stack's public side: records the inbound webhooks it gets and answers empty TwiML."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], str]] = []  # (path, form, signature)
        stack = self

        class Handler(JsonHandler):
            quiet = True

            def do_POST(self) -> None:
                form = {k: v[0] for k, v in parse_qs(self.read_body().decode()).items()}
                stack.received.append((self.path, form, self.headers.get("X-Twilio-Signature", "")))
                self.send_bytes(200, b"<Response/>", "application/xml")

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve(self.server)


@dataclass
class World:
    table: str
    carrier: Carrier
    carrier_base: str
    stack: Stack

    def run(self, *numbers: str, token: str | None = TOKEN, extra: tuple[str, ...] = ()) -> int:
        argv = ["--table", self.table, "--account", ACCOUNT, "--dealer", "demo-dealer", "--base-url", self.stack.base,
                "--carrier-base-url", self.carrier_base, *extra, *(numbers or DEALER_NUMBERS)]
        return provision.main(argv, env={"TWILIO_AUTH_TOKEN": token} if token else {})

    def sms_url(self, number: str) -> str:
        return self.carrier.numbers[number].settings["sms_url"]

    def reply(self, to: str) -> int:
        req = urllib.request.Request(f"{self.carrier_base}/reply", method="POST",
                                     data=json.dumps({"from": "+13125550142", "to": to, "body": "STOP"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - local
            return resp.status


@pytest.fixture
def world(table: str) -> Iterator[World]:
    stack = Stack()
    carrier = Carrier(TOKEN, f"{stack.base}/default-inbound", callback_delay=0.01,
                      numbers=[*DEALER_NUMBERS, "+12025550199"])
    server = make_server("127.0.0.1", 0, carrier)
    server.RequestHandlerClass.quiet = True  # type: ignore[attr-defined]
    serve(server)
    yield World(table, carrier, f"http://127.0.0.1:{server.server_address[1]}", stack)
    server.shutdown()
    stack.server.shutdown()


def provisioned(table: str, number: str) -> dict | None:
    item = boto3.resource("dynamodb").Table(table).get_item(
        Key={"PK": f"NUMBER#{number}", "SK": "PROVISIONED"}).get("Item")
    return item


def test_numbers_and_ranges_are_provisioned_with_their_account_then_removed(table: str) -> None:
    assert provision.main(["--table", table, "--account", "AC123", "--dealer", "demo-dealer",
                           "+12025550100..+12025550102", "+13125550150"]) == 0
    for n in ("+12025550100", "+12025550101", "+12025550102", "+13125550150"):
        assert provisioned(table, n)["carrierAccount"] == "AC123"
        assert provisioned(table, n)["dealerId"] == "demo-dealer"
    assert provisioned(table, "+12025550103") is None
    assert provision.main(["--table", table, "--remove", "+12025550101"]) == 0
    assert provisioned(table, "+12025550101") is None
    assert provisioned(table, "+12025550100") is not None


def test_bad_input_is_refused_and_writes_nothing(table: str) -> None:
    assert provision.main(["--table", table, "--account", "AC1", "+12025550199..+12025550100"]) == 2
    assert provision.main(["--table", table, "+12025550100"]) == 2
    # a number names the dealer it is for
    assert provision.main(["--table", table, "--account", "AC1", "+12025550100"]) == 2
    assert provision.main(["--table", table, "--account", "AC1", "--dealer", "no spaces", "+12025550100"]) == 2
    # pointing webhooks needs a real account sid and an http(s) base URL
    for extra in (["--account", "AC1", "--base-url", "https://api.example.test"],
                  ["--account", ACCOUNT, "--base-url", "api.example.test"],
                  ["--account", ACCOUNT, "--base-url", "https://api.example.test/#x"]):
        assert provision.main(["--table", table, "--dealer", "d", *extra, "+12025550100"]) == 2, extra
    assert provisioned(table, "+12025550100") is None


def test_without_a_base_url_the_webhooks_are_not_changed_and_the_output_says_so(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert provision.main(["--table", world.table, "--account", ACCOUNT, "--dealer", "demo-dealer",
                           "--carrier-base-url", world.carrier_base, "+12025550100"], env={}) == 0
    assert provisioned(world.table, "+12025550100") is not None
    assert "webhooks NOT changed (no --base-url / BASE_URL)" in capsys.readouterr().out
    assert world.sms_url("+12025550100") == ""


def test_the_webhooks_point_at_the_stack_then_the_table_and_a_rerun_changes_nothing(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert world.run("+12025550100..+12025550102") == 0
    url = f"{world.stack.base}/v1/carrier/twilio/inbound#rc=3&rp=all"
    for number in DEALER_NUMBERS:
        settings = world.carrier.numbers[number].settings
        assert (settings["sms_url"], settings["sms_method"], settings["status_callback"]) == (url, "POST", ""), \
            "SmsUrl with the retry fragment; the number's StatusCallback (calls') untouched"
        assert provisioned(world.table, number)["dealerId"] == "demo-dealer"
    assert world.sms_url("+12025550199") == "", "only the numbers asked for"
    out = capsys.readouterr().out
    assert "provisioned 3 number(s)" in out and "webhooks: 3 set, 0 already set" in out
    assert f"{world.stack.base}/v1/carrier/twilio/status?messageId=" in out

    updated = world.carrier.numbers["+12025550100"].updated
    assert world.run() == 0, "idempotent"
    assert "webhooks: 0 set, 3 already set" in capsys.readouterr().out
    assert world.carrier.numbers["+12025550100"].updated == updated, "an SmsUrl already set is not posted again"


def test_a_text_to_a_provisioned_number_reaches_the_stack_signed(world: World) -> None:
    assert world.run("+12025550100") == 0
    assert world.reply("+12025550100") == 200
    ((path, form, signature),) = world.stack.received
    assert path == "/v1/carrier/twilio/inbound" and form["To"] == "+12025550100"
    assert signature == twilio_signature(TOKEN, f"{world.stack.base}/v1/carrier/twilio/inbound", form), \
        "signed over the base URL the stack checks, without the fragment"


def test_a_number_the_account_does_not_hold_is_named_and_nothing_changes(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert world.run("+12025550100", NOT_HELD) == 1
    err = capsys.readouterr().err
    assert f"the account {ACCOUNT} does not hold {NOT_HELD}" in err and "Nothing was changed" in err
    assert "+12025550100" not in err.split("does not hold")[1], "only the missing number is named"
    assert world.sms_url("+12025550100") == "" and provisioned(world.table, "+12025550100") is None
    assert provisioned(world.table, NOT_HELD) is None


def test_a_number_an_sms_application_takes_is_refused(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.carrier.numbers["+12025550101"].settings["sms_application_sid"] = "MG" + "0" * 32
    assert world.run() == 1
    assert "Messaging Service takes the texts of +12025550101 (MG" in capsys.readouterr().err
    assert all(world.sms_url(n) == "" and provisioned(world.table, n) is None for n in DEALER_NUMBERS)


def test_wrong_or_missing_credentials_change_nothing(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert world.run(token="wrong") == 1
    err = capsys.readouterr().err
    assert "HTTP 401 (Twilio 20003" in err and "check --account and the auth token" in err
    assert world.run(token=None) == 1
    assert "set TWILIO_AUTH_TOKEN in the environment or give --token-secret-arn" in capsys.readouterr().err
    for flag in ("--auth-token", "--token"):  # the token is never a command-line argument
        with pytest.raises(SystemExit):
            world.run(extra=(flag, TOKEN))
    assert all(world.sms_url(n) == "" and provisioned(world.table, n) is None for n in DEALER_NUMBERS)


def test_the_token_from_the_stacks_secret(world: World) -> None:
    arn = boto3.client("secretsmanager").create_secret(Name=unique("twilio-token"), SecretString=TOKEN)["ARN"]
    assert world.run("+12025550100", token=None, extra=("--token-secret-arn", arn)) == 0
    assert world.sms_url("+12025550100").endswith("/v1/carrier/twilio/inbound#rc=3&rp=all")
    assert world.run("+12025550100", token=None, extra=("--token-secret-arn", arn + "-gone")) == 1


def test_a_run_cut_short_provisions_only_the_numbers_pointed_and_a_rerun_mends_it(
        world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real_update = provision.TwilioNumbers.update
    calls = []

    def flaky(self: provision.TwilioNumbers, sid: str, form: Any) -> dict[str, Any]:
        calls.append(sid)
        if len(calls) == 2:
            raise provision.CarrierError("POST ...: HTTP 503", 503)
        return real_update(self, sid, form)

    monkeypatch.setattr(provision.TwilioNumbers, "update", flaky)
    assert world.run() == 1
    err = capsys.readouterr().err
    assert "+12025550101: POST ...: HTTP 503" in err and "1 number(s) before it" in err
    assert provisioned(world.table, "+12025550100") is not None and world.sms_url("+12025550100")
    assert provisioned(world.table, "+12025550101") is None and world.sms_url("+12025550101") == "", \
        "not written to the table before its webhook is set"
    assert provisioned(world.table, "+12025550102") is None

    monkeypatch.setattr(provision.TwilioNumbers, "update", real_update)
    assert world.run() == 0
    assert "webhooks: 2 set, 1 already set" in capsys.readouterr().out
    assert all(provisioned(world.table, n) and world.sms_url(n) for n in DEALER_NUMBERS)


def test_removing_leaves_the_webhooks(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert world.run("+12025550100") == 0
    assert provision.main(["--table", world.table, "--remove", "--base-url", world.stack.base, "+12025550100"],
                          env={}) == 0
    assert provisioned(world.table, "+12025550100") is None
    assert world.sms_url("+12025550100"), "a text to a number given up is still handled (#25)"
    assert "are left as they are" in capsys.readouterr().out


# ------------------------------------------------------------------------------ End User Messaging numbers

EUM_NUMBERS = ["+16465550100", "+16465550101"]
AWS_ACCOUNT = "123456789012"
TOPIC = "arn:aws:sns:us-east-1:123456789012:texting-EumRepliesTopic"


@dataclass
class EumWorld:
    table: str
    sms_voice: SmsVoice

    def run(self, *numbers: str, extra: tuple[str, ...] = ("--two-way-topic-arn", TOPIC)) -> int:
        argv = ["--table", self.table, "--carrier", "end-user-messaging", "--account", AWS_ACCOUNT,
                "--dealer", "demo-dealer", *extra, *(numbers or EUM_NUMBERS)]
        return provision.main(argv, env={})


@pytest.fixture
def eum_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[EumWorld]:
    carrier = Carrier(TOKEN, "http://127.0.0.1:9/none")
    sms_voice = SmsVoice(carrier, [*EUM_NUMBERS, "+16465550199"])
    server = make_server("127.0.0.1", 0, carrier, sms_voice)
    server.RequestHandlerClass.quiet = True  # type: ignore[attr-defined]
    serve(server)
    port = free_port()
    emulator = start_emulator(port, "--sms-voice-url", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        for k, v in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
                     "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                     "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(k, v)
        name = unique("provision-eum")
        boto3.client("dynamodb").create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                  {"AttributeName": "SK", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}])
        yield EumWorld(name, sms_voice)
    finally:
        emulator.kill()
        emulator.wait(5)
        server.shutdown()


def test_end_user_messaging_numbers_get_the_stacks_two_way_channel_then_the_table(
        eum_world: EumWorld, capsys: pytest.CaptureFixture[str]) -> None:
    assert eum_world.run() == 0
    out = capsys.readouterr().out
    for number in EUM_NUMBERS:
        info = eum_world.sms_voice.numbers[number]
        assert (info.two_way_enabled, info.two_way_channel_arn, info.self_managed_opt_outs) == (True, TOPIC, False)
        item = provisioned(eum_world.table, number)
        assert item is not None
        assert (item["carrier"], item["carrierAccount"], item["dealerId"], item["optOutList"]) == (
            "end-user-messaging", AWS_ACCOUNT, "demo-dealer", "Default")
        assert item["originationArn"] in out  # what EndUserMessagingOriginationArns must hold
    assert "2 set, 0 already set" in out
    assert eum_world.run() == 0
    assert "0 set, 2 already set" in capsys.readouterr().out


def test_an_end_user_messaging_number_the_account_lacks_stops_the_run_before_anything_changes(
        eum_world: EumWorld, capsys: pytest.CaptureFixture[str]) -> None:
    assert eum_world.run(EUM_NUMBERS[0], "+16465550150") == 1
    assert "+16465550150" in capsys.readouterr().err
    assert not eum_world.sms_voice.numbers[EUM_NUMBERS[0]].two_way_enabled
    assert provisioned(eum_world.table, EUM_NUMBERS[0]) is None


def test_end_user_messaging_bad_input_is_refused_and_writes_nothing(
        eum_world: EumWorld, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--account", "AC" + "d" * 32], ["--base-url", "https://api.example.com"],
                 ["--two-way-topic-arn", "texting-replies"]):
        full = ["--table", eum_world.table, "--carrier", "end-user-messaging", "--account", AWS_ACCOUNT,
                "--dealer", "demo-dealer", *argv, EUM_NUMBERS[0]]
        assert provision.main(full, env={}) == 2, argv
    assert provisioned(eum_world.table, EUM_NUMBERS[0]) is None
    # Without a topic: provisioned, the channel left as it is, and the output says so.
    assert eum_world.run(EUM_NUMBERS[0], extra=()) == 0
    assert "NOT changed" in capsys.readouterr().out
    assert provisioned(eum_world.table, EUM_NUMBERS[0]) is not None
    assert not eum_world.sms_voice.numbers[EUM_NUMBERS[0]].two_way_enabled
