"""The bootstrap creates the template's resources on a real moto server, idempotently."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
import yaml
from conftest import PARAMS, REPO_ROOT, TWILIO_TOKEN, free_port, start_emulator, unique

from infra.local import template as tpl
from infra.local.fake_carrier import Carrier, make_server
from infra.local.fake_carrier.sms_voice import SmsVoice


def run_bootstrap(endpoint: str, stack: str, tmp_path: Path, template: Path = tpl.TEMPLATE_PATH,
                  params: dict[str, str] = PARAMS, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "infra.local.bootstrap", "--stack", stack, "--endpoint", endpoint,
           "--template", str(template), "--env-out", str(tmp_path / f"{stack}.env"), *extra]
    for key, value in params.items():
        cmd += ["--param", f"{key}={value}"]
    env = {"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_REGION": "us-east-1"}
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)


def client(service: str, endpoint: str):  # noqa: ANN201 - boto3 clients are untyped
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture(scope="module")
def stack(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    name = unique("boot")
    out = tmp_path_factory.mktemp("env")
    result = run_bootstrap(moto_endpoint, name, out)
    assert result.returncode == 0, result.stderr
    env = dict(line.split("=", 1) for line in (out / f"{name}.env").read_text().splitlines())
    return name, env


def test_table_with_gsis_and_ttl(moto_endpoint: str, stack: tuple[str, dict[str, str]]) -> None:
    name, env = stack
    ddb = client("dynamodb", moto_endpoint)
    table = ddb.describe_table(TableName=f"{name}-Table")["Table"]
    assert env["TABLE_NAME"] == f"{name}-Table"
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"PK": "HASH", "SK": "RANGE"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    gsis = {g["IndexName"]: {k["AttributeName"]: k["KeyType"] for k in g["KeySchema"]}
            for g in table["GlobalSecondaryIndexes"]}
    assert gsis == {"GSI1": {"GSI1PK": "HASH", "GSI1SK": "RANGE"}, "GSI2": {"GSI2PK": "HASH", "GSI2SK": "RANGE"},
                    "Due": {"DuePK": "HASH", "DueSK": "RANGE"}}
    ttl = ddb.describe_time_to_live(TableName=f"{name}-Table")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl")


def test_queues_with_redrive_to_their_dlq(moto_endpoint: str, stack: tuple[str, dict[str, str]]) -> None:
    name, env = stack
    sqs = client("sqs", moto_endpoint)
    for queue, dlq in (("OutboundQueue", "OutboundDLQ"), ("AutomationQueue", "AutomationDLQ")):
        url = sqs.get_queue_url(QueueName=f"{name}-{queue}")["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        dlq_url = sqs.get_queue_url(QueueName=f"{name}-{dlq}")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        assert json.loads(attrs["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}
        expected = tpl.load()["Resources"][queue]["Properties"]["VisibilityTimeout"]
        assert attrs["VisibilityTimeout"] == str(expected)
    assert env["OUTBOUND_QUEUE_URL"].endswith(f"/{name}-OutboundQueue")
    assert env["AUTOMATION_QUEUE_URL"].endswith(f"/{name}-AutomationQueue")
    dlq = sqs.get_queue_url(QueueName=f"{name}-OutboundDLQ")["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["MessageRetentionPeriod"])[
        "Attributes"]["MessageRetentionPeriod"] == "1209600"


def test_bus_rule_routes_automation_events_to_the_queue(moto_endpoint: str,
                                                         stack: tuple[str, dict[str, str]]) -> None:
    name, env = stack
    events = client("events", moto_endpoint)
    bus = f"{name}-texting"
    assert env["EVENT_BUS_NAME"] == bus
    (target,) = events.list_targets_by_rule(Rule=f"{name}-AutomationRule", EventBusName=bus)["Targets"]
    assert target["Arn"].endswith(f":{name}-AutomationQueue")
    detail = {"dealerId": "demo-dealer", "contactId": "C-3001", "accountId": "A-1001", "variables": {}}
    sent = events.put_events(Entries=[
        {"EventBusName": bus, "Source": "dms", "DetailType": "AutoPayFailed", "Detail": json.dumps(detail)},
        {"EventBusName": bus, "Source": "dms", "DetailType": "SomethingElse", "Detail": "{}"},
        {"EventBusName": bus, "Source": "dms.payments", "DetailType": "PaymentPastDue", "Detail": json.dumps(detail)},
        # the DMS's types from a source that is not the DMS's ("dms" or "dms.<system>") text nobody
        {"EventBusName": bus, "Source": "dmsx", "DetailType": "AutoPayFailed", "Detail": json.dumps(detail)},
        {"EventBusName": bus, "Source": "texting.consent", "DetailType": "AutoPayFailed", "Detail": json.dumps(detail)},
    ])
    assert sent["FailedEntryCount"] == 0
    sqs = client("sqs", moto_endpoint)
    received: list[dict] = []
    deadline = time.monotonic() + 10
    while len(received) < 2 and time.monotonic() < deadline:
        received += sqs.receive_message(QueueUrl=env["AUTOMATION_QUEUE_URL"], MaxNumberOfMessages=10,
                                        WaitTimeSeconds=1).get("Messages", [])
    routed = sorted((e["source"], e["detail-type"]) for e in (json.loads(m["Body"]) for m in received))
    assert routed == [("dms", "AutoPayFailed"), ("dms.payments", "PaymentPastDue")], \
        "only the DMS's events of the mapped types match the rule"
    assert all(json.loads(m["Body"])["detail"] == detail for m in received)


def test_running_twice_is_fine(moto_endpoint: str, stack: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    name, env = stack
    result = run_bootstrap(moto_endpoint, name, tmp_path)
    assert result.returncode == 0, result.stderr
    again = dict(line.split("=", 1) for line in (tmp_path / f"{name}.env").read_text().splitlines())
    assert again == env


def test_unknown_resource_type_is_one_clear_line(moto_endpoint: str, tmp_path: Path) -> None:
    doc = tpl.load()
    doc["Resources"]["Foo"] = {"Type": "AWS::Made::Up", "Properties": {}}
    broken = tmp_path / "template.yaml"
    broken.write_text(yaml.safe_dump(doc))
    name = unique("bad")
    result = run_bootstrap(moto_endpoint, name, tmp_path, template=broken)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "bootstrap: resource 'Foo' has type 'AWS::Made::Up' which the local stack does not know"]
    names = client("dynamodb", moto_endpoint).list_tables()["TableNames"]
    assert f"{name}-Table" not in names, "nothing is created when the template has an unknown type"


def test_missing_parameter_is_one_clear_line(moto_endpoint: str, tmp_path: Path) -> None:
    params = {k: v for k, v in PARAMS.items() if k != "TwilioAccountSid"}
    result = run_bootstrap(moto_endpoint, unique("miss"), tmp_path, params=params)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "TwilioAccountSid" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_visibility_timeout_of_each_sqs_source_is_six_times_its_consumers_timeout() -> None:
    """AWS's rule for an SQS event source (checked here because the local stack now enforces Timeout)."""
    doc = tpl.load()
    settings = tpl.function_settings(doc)
    for source in tpl.sqs_sources(doc):
        visibility = int(doc["Resources"][source.queue]["Properties"].get("VisibilityTimeout", 30))
        assert visibility >= 6 * settings[source.function].timeout, source


def test_secrets_functions_file_and_identities_from_the_command_line(moto_endpoint: str, tmp_path: Path) -> None:
    name = unique("cli")
    functions = tmp_path / "functions.json"
    result = run_bootstrap(moto_endpoint, name, tmp_path, tpl.TEMPLATE_PATH, PARAMS,
                           "--secret", "CodeHashKeySecret=from-the-command-line",
                           "--secret", f"TwilioAuthTokenSecret={TWILIO_TOKEN}", "--functions-out", str(functions))
    assert result.returncode == 0, result.stderr
    assert "function identities registered" in result.stdout
    env = dict(line.split("=", 1) for line in (tmp_path / f"{name}.env").read_text().splitlines())
    secrets = client("secretsmanager", moto_endpoint)
    value = secrets.get_secret_value(SecretId=env["CODE_HASH_KEY_SECRET_ARN"])["SecretString"]
    assert value == "from-the-command-line"
    assert secrets.get_secret_value(SecretId=env["TWILIO_AUTH_TOKEN_SECRET_ARN"])["SecretString"] == \
        TWILIO_TOKEN
    doc = json.loads(functions.read_text())
    assert doc["deliver"]["timeout"] == 60 and doc["dispatch"]["timeout"] == 50 and doc["queues"]["timeout"] == 10
    assert doc["deliver"]["environment"]["CODE_HASH_KEY_SECRET_ARN"] == env["CODE_HASH_KEY_SECRET_ARN"]
    assert len({f["environment"]["AWS_ACCESS_KEY_ID"] for f in doc.values()}) == len(doc), "one key each"
    bad = run_bootstrap(moto_endpoint, name, tmp_path, tpl.TEMPLATE_PATH, PARAMS, "--secret", "Nope=x")
    assert bad.returncode == 1 and bad.stderr.strip() == "bootstrap: --secret for unknown secret resource(s): Nope"


def test_an_emulator_that_is_not_ours_is_used_without_iam(tmp_path: Path) -> None:
    """Plain moto_server (or a LocalStack) has no identity registry: the stack still boots, with a warning."""
    from conftest import free_port
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client("dynamodb", f"http://127.0.0.1:{port}").list_tables()
                break
            except Exception:  # noqa: BLE001 - not up yet
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.1)
        result = run_bootstrap(f"http://127.0.0.1:{port}", unique("plain"), tmp_path)
        assert result.returncode == 0, result.stderr
        assert "is not infra.local.emulator: IAM is not enforced there" in result.stdout
    finally:
        proc.terminate()
        proc.wait(10)


def test_end_user_messaging_topics_queue_and_configuration_set(tmp_path: Path) -> None:
    """With EndUserMessagingConfigurationSet, the topics deliver to EumQueue (SNS's envelope kept) and the
    configuration set is made at the fake carrier, its event destination the events topic; twice is fine."""
    carrier = Carrier("token", "http://127.0.0.1:9/none")
    sms_voice = SmsVoice(carrier, ["+16465550100"])
    server = make_server("127.0.0.1", 0, carrier, sms_voice)
    server.RequestHandlerClass.quiet = True  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    emulator = start_emulator(port, "--sms-voice-url", f"http://127.0.0.1:{server.server_address[1]}")
    endpoint = f"http://127.0.0.1:{port}"
    try:
        name = unique("eum")
        params = {**PARAMS, "EndUserMessagingConfigurationSet": "texting"}
        for run in range(2):
            result = run_bootstrap(endpoint, name, tmp_path, tpl.TEMPLATE_PATH, params)
            assert result.returncode == 0, (run, result.stderr)
        env = dict(line.split("=", 1) for line in (tmp_path / f"{name}.env").read_text().splitlines())
        sns = client("sns", endpoint)
        topics = {t["TopicArn"] for t in sns.list_topics()["Topics"]}
        replies, events = env["EUM_REPLIES_TOPIC_ARN"], env["EUM_EVENTS_TOPIC_ARN"]
        assert {replies, events} <= topics
        for topic in (replies, events):
            (sub,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]  # once, however often run
            assert (sub["Protocol"], sub["Endpoint"]) == ("sqs", env["EUM_QUEUE_ARN"])
        assert sms_voice.configuration_sets == {"texting": {"texting-status": events}}
    finally:
        emulator.kill()
        emulator.wait(5)
        server.shutdown()


def test_end_user_messaging_without_an_emulated_service_is_one_clear_line(moto_endpoint: str, tmp_path: Path) -> None:
    result = run_bootstrap(moto_endpoint, unique("eum"), tmp_path, tpl.TEMPLATE_PATH,
                           {**PARAMS, "EndUserMessagingConfigurationSet": "texting"})
    assert result.returncode != 0
    assert "does not emulate End User Messaging" in result.stderr
