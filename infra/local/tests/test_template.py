"""The template loader reads the real infra/template.yaml."""

from __future__ import annotations

import json
import re

import pytest

from infra.local import template as tpl


@pytest.fixture(scope="module")
def doc() -> dict:
    return tpl.load()


def test_short_tags_become_long_form(doc: dict) -> None:
    env = doc["Globals"]["Function"]["Environment"]["Variables"]
    assert env["TABLE_NAME"] == {"Ref": "Table"}
    redrive = doc["Resources"]["OutboundQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["OutboundDLQ", "Arn"]}


def test_routes(doc: dict) -> None:
    routes = {r.route_key: r for r in tpl.routes(doc)}
    assert routes["PUT /v1/dealer"].function == "settings"
    assert routes["POST /v1/contacts/{contactId}/authorizations/{category}/verify"].function == "authorize"
    assert routes["POST /v1/messages"].function == "send"
    assert routes["GET /v1/messages/{messageId}"].function == "send"
    assert routes["POST /v1/carrier/twilio/inbound"].function == "inbound"
    no_auth = {k for k, r in routes.items() if r.auth_none}
    assert no_auth == {"POST /v1/carrier/twilio/inbound", "POST /v1/carrier/twilio/status", "GET /v1/health",
                       "GET /problems/{problem}"}
    assert routes["POST /v1/queues/{queue}/items/{itemId}/claim"].function == "queues"
    assert routes["GET /v1/consent-evidence"].function == "authorize"
    assert routes["POST /v1/contacts/batch"].function == "authorize"
    assert routes["GET /v1/contacts/{contactId}/messages"].function == "send"
    # The dealer-admin routes are the settings function's (send holds no DeleteItem for them).
    for key in ["GET /v1/dealer", "GET /v1/templates", "PUT /v1/templates/{name}", "DELETE /v1/templates/{name}",
                "GET /v1/automations", "PUT /v1/automations/{eventType}"]:
        assert routes[key].function == "settings", key
    assert len(routes) == 32


def test_cors_follows_the_portal_origins_parameter(doc: dict) -> None:
    assert tpl.cors(doc) is None, "no origins by default: no CORS"
    cors = tpl.cors(doc, {"PortalOrigins": "http://127.0.0.1:8080,http://localhost:8080"})
    assert cors is not None
    assert cors.allow_origins == ("http://127.0.0.1:8080", "http://localhost:8080")
    assert cors.allows("http://localhost:8080") and not cors.allows("http://localhost:8081")
    assert "idempotency-key" in cors.allow_headers and "DELETE" in cors.allow_methods
    assert cors.max_age == 600 and not cors.allow_credentials


def test_sqs_sources_and_schedule(doc: dict) -> None:
    sources = {s.queue: s for s in tpl.sqs_sources(doc)}
    # deliver's source is chosen, not defaulted: 10 records, at most DeliverConcurrency batches in flight
    # (its default, 10: 100 carrier requests at once, sized to the carrier account; docs/capacity.md)
    assert sources["OutboundQueue"] == tpl.SqsSource("OutboundQueue", "deliver", 10, True, max_concurrency=10)
    assert sources["InboundQueue"] == tpl.SqsSource("InboundQueue", "webhooks", 10, True)
    assert sources["StatusQueue"] == tpl.SqsSource("StatusQueue", "webhooks", 10, True)
    assert sources["EumQueue"] == tpl.SqsSource("EumQueue", "webhooks", 10, True)
    assert sources["OutboundDLQ"] == tpl.SqsSource("OutboundDLQ", "deliver", 10, True)
    assert sources["AutomationQueue"] == tpl.SqsSource("AutomationQueue", "automate", 10, True)
    (schedule,) = tpl.schedules(doc)
    assert (schedule.function, schedule.rate) == ("dispatch", "rate(1 minute)")
    assert tpl.rate_seconds(schedule.rate) == 60


def test_environment_resolution(doc: dict) -> None:
    resolver = tpl.Resolver.from_template(doc, {"TwilioAccountSid": "AC1"}, stack="s1")
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:s1-{}-AbCdEf"
    resolver.resources.update({
        "Table": {"Ref": "s1-Table"},
        "OutboundQueue": {"Ref": "http://q/outbound"},
        "InboundQueue": {"Ref": "http://q/inbound.fifo"},
        "StatusQueue": {"Ref": "http://q/status"},
        "OutboundDLQ": {"Ref": "http://q/dlq", "Arn": "arn:aws:sqs:us-east-1:000000000000:s1-OutboundDLQ"},
        "EventBus": {"Ref": "s1-texting"},
        "HttpApi": {"Ref": "api123"},
        "CodeHashKeySecret": {"Ref": secret.format("CodeHashKeySecret")},
        "TwilioAuthTokenSecret": {"Ref": secret.format("TwilioAuthTokenSecret")},
    })
    env = tpl.function_environment(doc, resolver)
    assert set(env) == {"authorize", "inbound", "send", "settings", "automate", "queues", "dispatch", "deliver",
                        "publish", "webhooks"}
    ca = {"SSL_CERT_FILE": "/etc/pki/tls/certs/ca-bundle.crt"}  # the CaBundle default (Amazon Linux 2023)
    claims = {"CLAIM_DEALER": "custom:dealer_id", "CLAIM_USER": "cognito:username", "CLAIM_ROLES": "cognito:groups"}
    assert env["queues"] == {"TABLE_NAME": "s1-Table", "RUST_LOG": "info", "DUE_SHARDS": "32", **ca, **claims}
    assert env["deliver"]["OUTBOUND_DLQ_ARN"] == "arn:aws:sqs:us-east-1:000000000000:s1-OutboundDLQ"
    assert env["deliver"]["OUTBOUND_DLQ_URL"] == "http://q/dlq"  # it consumes the DLQ too
    assert env["send"] == {"TABLE_NAME": "s1-Table", "RUST_LOG": "info", "OUTBOUND_QUEUE_URL": "http://q/outbound",
                           "NUMBER_POOL": "", "DUE_SHARDS": "32", **ca, **claims}
    # The dealer's settings: the table and the claims, no queue and no secret.
    assert env["settings"] == {"TABLE_NAME": "s1-Table", "RUST_LOG": "info", "NUMBER_POOL": "", "DUE_SHARDS": "32",
                               **ca, **claims}
    assert env["webhooks"]["EVENT_BUS_NAME"] == "s1-texting"
    # Without End User Messaging the webhooks function reads no notification of it.
    assert [env["webhooks"][k] for k in ("EUM_QUEUE_ARN", "EUM_REPLIES_TOPIC_ARN", "EUM_EVENTS_TOPIC_ARN")] == \
        ["", "", ""]
    assert env["inbound"]["INBOUND_QUEUE_URL"] == "http://q/inbound.fifo"
    assert env["inbound"]["STATUS_QUEUE_URL"] == "http://q/status"
    assert "TABLE_NAME" in env["inbound"]  # the Globals' (unused: inbound only stores on its queue)
    # Secrets are never plain values: the functions get the secrets' ARNs (Ref of a secret).
    assert env["inbound"]["TWILIO_AUTH_TOKEN_SECRET_ARN"] == secret.format("TwilioAuthTokenSecret")
    assert env["authorize"]["CODE_HASH_KEY_SECRET_ARN"] == secret.format("CodeHashKeySecret")
    assert not any("tok" == v for variables in env.values() for v in variables.values())
    # PublicBaseUrl empty: deliver falls back to the API's execute-api URL (Fn::If + Fn::Sub).
    assert env["deliver"]["PUBLIC_BASE_URL"] == "https://api123.execute-api.us-east-1.amazonaws.com"
    assert env["deliver"]["CARRIER_BASE_URL"] == "https://api.twilio.com"


def test_sub_and_references() -> None:
    r = tpl.Resolver({"Resources": {}}, {"P": "v"}, {"Res": {"Ref": "r", "Arn": "arn:x"}}, stack="st")
    assert r.resolve({"Fn::Sub": "${AWS::StackName}-${P}-${Res}-${Res.Arn}-${!Literal}"}) == "st-v-r-arn:x-${Literal}"
    assert r.resolve({"Fn::Sub": ["${X}/${P}", {"X": {"Ref": "Res"}}]}) == "r/v"
    assert r.resolve({"Fn::Join": [",", ["a", {"Ref": "P"}]]}) == "a,v"
    assert tpl.references({"a": [{"Ref": "A"}, {"Fn::GetAtt": ["B", "Arn"]}, {"Fn::Sub": "${C.Arn}${!D}"}]}) \
        == {"A", "B", "C"}
    with pytest.raises(tpl.TemplateError):
        r.resolve({"Ref": "Nope"})


def test_function_settings_take_each_timeout_or_the_globals(doc: dict) -> None:
    settings = tpl.function_settings(doc)
    assert set(settings) == {"authorize", "inbound", "send", "settings", "automate", "queues", "dispatch", "deliver",
                             "publish", "webhooks"}
    globals_timeout = doc["Globals"]["Function"]["Timeout"]
    for name, s in settings.items():
        own = doc["Resources"][s.logical_id]["Properties"].get("Timeout")
        assert s.timeout == (own or globals_timeout), name
        own_memory = doc["Resources"][s.logical_id]["Properties"].get("MemorySize")
        assert s.memory == (own_memory or doc["Globals"]["Function"]["MemorySize"]), name
    assert settings["deliver"].timeout == 60 and settings["dispatch"].timeout == 50
    # Sized for CPU from the bench's figures (the template says why): never 128 MB functions.
    assert settings["deliver"].memory >= 512 and settings["dispatch"].memory >= 1024
    assert settings["queues"].timeout == globals_timeout


def test_a_claim_is_stale_only_after_deliver_can_no_longer_hold_it(doc: dict) -> None:
    """`STALE_CLAIM` (shared/consent/src/service/delivery/stale.rs) says a claim that old has
    no live holder: deliver's Timeout plus time for the dead worker's last request to reach the
    carrier's message list. A longer Timeout here without a longer STALE_CLAIM there would let
    a live worker's claim be taken as dead and its text sent twice."""
    source = (tpl.REPO_ROOT / "shared/consent/src/service/delivery/stale.rs").read_text()
    match = re.search(r"pub const STALE_CLAIM: Duration = Duration::seconds\((\d+)\);", source)
    assert match, "STALE_CLAIM is no longer a plain number of seconds: update this check"
    stale = int(match.group(1))
    deliver = tpl.function_settings(doc)["deliver"].timeout
    assert stale >= deliver + 30, f"STALE_CLAIM {stale} s against deliver's Timeout {deliver} s"


def test_function_policies_resolve_to_arns(doc: dict) -> None:
    resolver = tpl.Resolver.from_template(doc, {"TwilioAccountSid": "AC1"}, stack="s1")
    for lid, res in doc["Resources"].items():
        resolver.resources.setdefault(lid, {"Ref": f"ref:{lid}", "Arn": f"arn:{lid}", "StreamArn": f"arn:{lid}/stream/1"})
    policies = tpl.function_policies(doc, resolver)
    (queues,) = policies["queues"]
    assert queues["Statement"][0]["Resource"] == ["arn:Table", "arn:Table/index/*"]
    deliver = {a for st in policies["deliver"][0]["Statement"] for a in
               (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    assert "dynamodb:ConditionCheckItem" in deliver and "sqs:ChangeMessageVisibility" in deliver


def _resolver(doc: dict, params: dict[str, str]) -> tpl.Resolver:
    resolver = tpl.Resolver.from_template(doc, {"TwilioAccountSid": "AC1", **params}, stack="s1")
    for lid in doc["Resources"]:
        resolver.resources.setdefault(lid, {"Ref": f"ref:{lid}", "Arn": f"arn:{lid}", "StreamArn": f"arn:{lid}/s/1"})
    return resolver


def _deliver_sms_voice(doc: dict, params: dict[str, str]) -> tuple[str, list[dict]]:
    """deliver's EUM_CONFIGURATION_SET and its statements on sms-voice, with these parameters."""
    resolver = _resolver(doc, params)
    statements = [st for policy in tpl.function_policies(doc, resolver)["deliver"] for st in policy["Statement"]]
    on_sms = [st for st in statements
              if any(a.startswith("sms-voice:") for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"]))]
    return tpl.function_environment(doc, resolver)["deliver"]["EUM_CONFIGURATION_SET"], on_sms


def test_end_user_messaging_notifications_come_from_the_stacks_two_topics_only(doc: dict) -> None:
    resources = doc["Resources"]
    conditional = {lid for lid, r in resources.items() if r.get("Condition") == "HasEndUserMessaging"}
    assert conditional >= {"EumTopicKey", "EumRepliesTopic", "EumEventsTopic", "EumTopicsPolicy",
                           "EumRepliesSubscription", "EumEventsSubscription", "EumQueuePolicy", "EumConfigurationSet"}
    for sub in ("EumRepliesSubscription", "EumEventsSubscription"):
        props = resources[sub]["Properties"]
        # The envelope is kept: its TopicArn is what the function checks.
        assert props["Protocol"] == "sqs" and not props.get("RawMessageDelivery")
        assert props["Endpoint"] == {"Fn::GetAtt": ["EumQueue", "Arn"]}
    (statement,) = resources["EumQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == [{"Ref": "EumRepliesTopic"},
                                                                     {"Ref": "EumEventsTopic"}]
    (publish,) = resources["EumTopicsPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert publish["Principal"] == {"Service": "sms-voice.amazonaws.com"} and publish["Action"] == "sns:Publish"
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (destination,) = resources["EumConfigurationSet"]["Properties"]["EventDestinations"]
    assert destination["SnsDestination"]["TopicArn"] == {"Ref": "EumEventsTopic"}
    # With End User Messaging the function is told the queue and both topics.
    resolver = _resolver(doc, {"EndUserMessagingConfigurationSet": "texting"})
    env = tpl.function_environment(doc, resolver)["webhooks"]
    assert (env["EUM_QUEUE_ARN"], env["EUM_REPLIES_TOPIC_ARN"], env["EUM_EVENTS_TOPIC_ARN"]) == (
        "arn:EumQueue", "ref:EumRepliesTopic", "ref:EumEventsTopic")


def test_end_user_messaging_is_granted_only_on_what_the_operator_names(doc: dict) -> None:
    # Without a configuration set: Twilio only, and no grant at all on End User Messaging.
    assert _deliver_sms_voice(doc, {}) == ("", [])
    number = "arn:aws:sms-voice:us-east-1:000000000000:phone-number/phone-0123456789abcdef"
    pool = "arn:aws:sms-voice:us-east-1:000000000000:pool/pool-0123456789abcdef"
    env, (statement,) = _deliver_sms_voice(doc, {"EndUserMessagingConfigurationSet": "texting",
                                                 "EndUserMessagingOriginationArns": f"{number},{pool}"})
    assert env == "texting"
    assert statement["Action"] == "sms-voice:SendTextMessage"
    assert statement["Resource"] == [
        "arn:aws:sms-voice:us-east-1:123456789012:configuration-set/texting", number, pool]
    # Only the functions that text hold it.
    resolver = _resolver(doc, {"EndUserMessagingConfigurationSet": "t", "EndUserMessagingOriginationArns": number})
    policies = tpl.function_policies(doc, resolver)
    holders = {name for name, p in policies.items() if "sms-voice:SendTextMessage" in json.dumps(p)}
    assert holders == {"deliver"}
    # A START lifts the opt-out list: the webhooks function alone, on the stack's list alone.
    lifting = [st for name, p in policies.items() for policy in p for st in policy["Statement"]
               if "sms-voice:" in json.dumps(st["Action"]) and name != "deliver"]
    assert lifting == [{"Effect": "Allow", "Action": "sms-voice:DeleteOptedOutNumber",
                        "Resource": "arn:aws:sms-voice:us-east-1:123456789012:opt-out-list/Default"}]
    assert "webhooks" in {name for name, p in policies.items() if "DeleteOptedOutNumber" in json.dumps(p)}


def test_stream_sources_and_their_filters(doc: dict) -> None:
    (source,) = tpl.stream_sources(doc)
    assert (source.table, source.function, source.report_batch_item_failures) == ("Table", "publish", True)
    patterns = [json.loads(p) for p in source.filters]
    record = lambda sk: {"eventName": "MODIFY", "dynamodb": {"Keys": {"PK": {"S": "x"}, "SK": {"S": sk}}}}  # noqa: E731
    kept = lambda sk: any(tpl.matches(p, record(sk)) for p in patterns)  # noqa: E731
    assert kept("LEDGER#01J") and kept("MESSAGE")
    assert not kept("CONSENT") and not kept("PENDING#accounting") and not kept("MESSAGES")


def test_the_automation_rule_routes_exactly_the_event_types_a_dealer_can_map(doc: dict) -> None:
    """`PUT /v1/automations/{eventType}` takes the types of consent::automation::DEFAULTS only: the bus
    rule must route each of them to the automation queue, and nothing else (a mapping it never routes
    would never fire)."""
    source = (tpl.REPO_ROOT / "shared" / "consent" / "src" / "automation.rs").read_text()
    defaults = source[source.index("pub const DEFAULTS"):source.index("];", source.index("pub const DEFAULTS"))]
    mappable = set(re.findall(r'\("([A-Za-z0-9]+)",', defaults))
    routed = set(doc["Resources"]["AutomationRule"]["Properties"]["EventPattern"]["detail-type"])
    assert mappable and mappable == routed


# ------------------------------------------------------------------------------------------ operations

def _resolved(doc: dict, value: object) -> object:
    """`value` resolved with every resource standing in (Ref, Arn, QueueName)."""
    resolver = tpl.Resolver.from_template(doc, {"TwilioAccountSid": "AC1"}, stack="s1")
    for lid in doc["Resources"]:
        resolver.resources.setdefault(lid, {"Ref": f"ref-{lid}", "Arn": f"arn:{lid}", "QueueName": f"s1-{lid}"})
    return resolver.resolve(value)


def _log_lines() -> dict[str, set[str]]:
    """What the Rust code logs: each tracing event's message (its last string literal) -> its field names."""
    macro = re.compile(r"tracing::(?:trace|debug|info|warn|error)!\((.*?)\);", re.S)
    lines: dict[str, set[str]] = {}
    for path in [*tpl.REPO_ROOT.glob("functions/*/src/**/*.rs"), *tpl.REPO_ROOT.glob("shared/*/src/**/*.rs")]:
        for body in macro.findall(path.read_text()):
            literals = re.findall(r'"((?:[^"\\]|\\.)*)"', body)
            if literals:
                lines.setdefault(literals[-1], set()).update(re.findall(r"\b(\w+)\s*=(?!=)", body))
    return lines


def test_the_dashboard_queries_only_what_the_functions_log(doc: dict) -> None:
    """Every message a log widget filters on is one a function logs, every field it reads is one of those
    lines' fields (tracing's JSON puts them under `fields`), and the outcome kinds it counts are words
    `DeliverOutcome::kind` gives (the `kind` field of deliver's lines)."""
    body = json.loads(_resolved(doc, doc["Resources"]["Dashboard"]["Properties"]["DashboardBody"]))
    queries = [w["properties"]["query"] for w in body["widgets"] if w["type"] == "log"]
    assert len(queries) >= 5
    lines = _log_lines()
    assert "delivered record" in lines and "kind" in lines["delivered record"], "the reader of the Rust code works"
    delivery = (tpl.REPO_ROOT / "shared" / "consent" / "src" / "service" / "delivery" / "outcome.rs").read_text()
    kind_fn = delivery[delivery.index("pub fn kind(&self)"):]
    kinds = set(re.findall(r'=> "(\w+)"', kind_fn[:kind_fn.index("\n    }\n")]))
    assert {"sent", "suppressed", "deferred", "failed"} <= kinds, kinds
    for query in queries:
        assert query.startswith("SOURCE 'ref-"), query
        messages = re.findall(r'`fields\.message` = "([^"]+)"', query)
        for listed in re.findall(r"`fields\.message` in \[([^\]]+)\]", query):
            messages += re.findall(r'"([^"]+)"', listed)
        assert set(messages) <= set(lines), f"not logged: {set(messages) - set(lines)}"
        for field in set(re.findall(r"`fields\.(\w+)`", query)) - {"message"}:
            assert any(field in lines[m] for m in messages or lines), (field, query)
        counted = re.findall(r'`fields\.kind` = "(\w+)"', query)
        for listed in re.findall(r"`fields\.kind` in \[([^\]]+)\]", query):
            counted += re.findall(r'"([^"]+)"', listed)
        assert set(counted) <= kinds, (set(counted) - kinds, query)


def _operations_anchors() -> set[str]:
    doc = (tpl.REPO_ROOT / "docs" / "operations.md").read_text()
    return {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", doc, flags=re.M)}


def test_every_alarm_says_what_it_means_and_where_its_runbook_is(doc: dict) -> None:
    alarms = {lid: r["Properties"] for lid, r in doc["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    anchors = _operations_anchors()
    for lid, props in alarms.items():
        m = re.search(r"Runbook: docs/operations\.md#([a-z0-9-]+)", props["AlarmDescription"])
        assert m and m.group(1) in anchors, lid
        assert props["TreatMissingData"] in ("notBreaching", "breaching"), lid
        assert props["AlarmActions"] == props["OKActions"], lid
        assert props["AlarmActions"] == [{"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"},
                                                     {"Ref": "AlarmTopicArn"}]}], lid
    watched = json.dumps(list(alarms.values()))
    # every dead-letter queue (a redrive target, or the stream's OnFailure destination) has an alarm
    dlqs = {r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            for r in doc["Resources"].values() if "RedrivePolicy" in (r.get("Properties") or {})}
    dlqs |= {s.on_failure for s in tpl.stream_sources(doc) if s.on_failure}
    assert dlqs == {"OutboundDLQ", "AutomationDLQ", "InboundDLQ", "StatusDLQ", "EumDLQ", "PublishFailures"}
    for queue in dlqs:
        assert f'{{"Fn::GetAtt": ["{queue}", "QueueName"]}}' in watched, queue
    # and every function its errors and its throttles
    for lid in tpl.functions(doc):
        for metric in ("Errors", "Throttles"):
            assert any(p.get("MetricName") == metric and p["Dimensions"] == [{"Name": "FunctionName",
                                                                               "Value": {"Ref": lid}}]
                       for p in alarms.values()), (lid, metric)
