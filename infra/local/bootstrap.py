"""Create infra/template.yaml's resources on the AWS emulator.

    python -m infra.local.bootstrap --stack texting-dev [--endpoint http://127.0.0.1:4566]
        [--param Name=Value ...] [--env-out .local/texting-dev.env]

Creates DynamoDB tables (keys, GSIs, then TTL), SQS queues (dead-letter queues first: resources are
created in dependency order), event buses, event rules with their SQS targets and queue policies.
Physical names are `{stack}-{LogicalId}` (a bus takes its resolved Name). Running it twice is fine.
Resources that only exist in AWS (functions, the HTTP API, IAM, ...) are listed and skipped: the local
gateway and bridge play their part. Writes the union of the functions' resolved environments (plus the
URL of every queue as `{LOGICAL_ID}_URL`) to the env file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, Callable, Mapping

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.local import template as tpl

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"

# Types that exist only in AWS: the local gateway, bridge and cargo-lambda stand in for them.
SKIPPED_TYPES = {
    "AWS::Serverless::Function": "served by cargo lambda watch",
    "AWS::Serverless::HttpApi": "served by the local gateway",
    "AWS::Serverless::Api": "served by the local gateway",
    "AWS::Lambda::Function": "served by cargo lambda watch",
    "AWS::Lambda::Permission": "not enforced locally",
    "AWS::Lambda::EventSourceMapping": "played by the local bridge",
    "AWS::IAM::Role": "not enforced locally",
    "AWS::IAM::Policy": "not enforced locally",
    "AWS::IAM::ManagedPolicy": "not enforced locally",
    "AWS::Logs::LogGroup": "logs go to the terminal",
    "AWS::ApiGatewayV2::Api": "served by the local gateway",
    "AWS::ApiGatewayV2::Stage": "served by the local gateway",
    "AWS::ApiGatewayV2::Route": "served by the local gateway",
    "AWS::ApiGatewayV2::Integration": "served by the local gateway",
    "AWS::ApiGatewayV2::Authorizer": "played by the local gateway",
}

# CloudFormation queue properties that are SQS attributes of the same name.
_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "MaximumMessageSize",
                     "ReceiveMessageWaitTimeSeconds", "FifoQueue", "ContentBasedDeduplication",
                     "SqsManagedSseEnabled")


class BootstrapError(Exception):
    """A problem worth one clear line, not a traceback."""


def _snake(name: str) -> str:
    """`OutboundDLQ` -> `OUTBOUND_DLQ`, `AutomationQueue` -> `AUTOMATION_QUEUE`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).upper()


class Bootstrap:
    """Creates one stack's resources on the emulator and remembers their Ref/GetAtt values."""

    def __init__(self, template: Mapping[str, Any], stack: str, params: Mapping[str, str],
                 endpoint: str = DEFAULT_ENDPOINT, region: str | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.template = template
        self.region = region or os.environ.get("AWS_REGION") or tpl.DEFAULT_REGION
        self.resolver = tpl.Resolver.from_template(template, params, stack=stack, region=self.region)
        missing = self.resolver.missing_parameters()
        if missing:
            raise BootstrapError("missing parameter value(s): " + ", ".join(
                f"--param {m}=..." for m in missing))
        self.stack = stack
        self.log = log
        session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
            region_name=self.region)
        self.ddb = session.client("dynamodb", endpoint_url=endpoint)
        self.sqs = session.client("sqs", endpoint_url=endpoint)
        self.events = session.client("events", endpoint_url=endpoint)
        self.extras: dict[str, str] = {}
        self._creators: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "AWS::DynamoDB::Table": self.table,
            "AWS::SQS::Queue": self.queue,
            "AWS::SQS::QueuePolicy": self.queue_policy,
            "AWS::Events::EventBus": self.event_bus,
            "AWS::Events::Rule": self.rule,
        }

    # ------------------------------------------------------------------------------------------ driver

    def order(self) -> list[str]:
        """Logical ids in dependency order; fails on an unknown type before anything is created."""
        resources = self.template["Resources"]
        for lid, res in resources.items():
            rtype = res.get("Type")
            if rtype not in self._creators and rtype not in SKIPPED_TYPES:
                raise BootstrapError(f"resource '{lid}' has type '{rtype}' which the local stack does not know")
        graph = {lid: {d for d in tpl.references(res) | set(res.get("DependsOn") or []) if d in resources}
                 for lid, res in resources.items()}
        try:
            return list(TopologicalSorter(graph).static_order())
        except CycleError as e:
            raise BootstrapError(f"dependency cycle between resources: {e.args[1]}") from None

    def run(self) -> None:
        """Create (or update) every resource the emulator can hold."""
        for lid in self.order():
            res = self.template["Resources"][lid]
            rtype = res["Type"]
            if rtype in SKIPPED_TYPES:
                self._stand_in(lid, rtype)
                self.log(f"  skip   {lid} ({rtype}: {SKIPPED_TYPES[rtype]})")
                continue
            props = self.resolver.resolve(res.get("Properties") or {})
            self._creators[rtype](lid, props)

    def _stand_in(self, lid: str, rtype: str) -> None:
        """Ref/Arn values for skipped resources, so the rest of the template still resolves."""
        name = f"{self.stack}-{lid}"
        if "Function" in rtype:
            arn = f"arn:aws:lambda:{self.region}:{tpl.DEFAULT_ACCOUNT}:function:{name}"
        else:
            arn = f"arn:aws:local:{self.region}:{tpl.DEFAULT_ACCOUNT}:{name}"
        self.resolver.resources[lid] = {"Ref": name, "Arn": arn}

    def environment(self) -> dict[str, str]:
        """Union of the functions' resolved environments plus the extras for the bridge."""
        env: dict[str, str] = {}
        for function, variables in tpl.function_environment(self.template, self.resolver).items():
            for key, value in variables.items():
                if key in env and env[key] != value:
                    self.log(f"  warn   {key} differs between functions; keeping {env[key]!r} ({function})")
                env.setdefault(key, value)
        for key, value in self.extras.items():
            env.setdefault(key, value)
        env["STACK_NAME"] = self.stack
        return env

    # --------------------------------------------------------------------------------------- resources

    def table(self, lid: str, props: dict[str, Any]) -> None:
        name = props.get("TableName") or f"{self.stack}-{lid}"
        args: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "ProvisionedThroughput" in props:
            args["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        try:
            desc = self.ddb.create_table(**args)["TableDescription"]
            verb = "create"
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceInUseException":
                raise
            desc = self.ddb.describe_table(TableName=name)["Table"]
            verb = "exists"
        ttl = props.get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled"):
            current = self.ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                self.ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                    "AttributeName": ttl["AttributeName"], "Enabled": True})
        self.resolver.resources[lid] = {"Ref": name, "Arn": desc["TableArn"],
                                        "StreamArn": desc.get("LatestStreamArn", "")}
        self.log(f"  {verb:6} {lid} (table {name})")

    def queue(self, lid: str, props: dict[str, Any]) -> None:
        name = props.get("QueueName") or f"{self.stack}-{lid}" + (".fifo" if props.get("FifoQueue") else "")
        attributes = {k: _attr(props[k]) for k in _QUEUE_ATTRIBUTES if k in props}
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        try:
            # CreateQueue is idempotent for the same name and attributes.
            url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            verb = "ready"
        except ClientError as e:
            if e.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            settable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
            if settable:
                self.sqs.set_queue_attributes(QueueUrl=url, Attributes=settable)
            verb = "update"
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.resolver.resources[lid] = {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}
        self.extras[f"{_snake(lid)}_URL"] = url
        self.log(f"  {verb:6} {lid} (queue {name})")

    def queue_policy(self, lid: str, props: dict[str, Any]) -> None:
        policy = json.dumps(props["PolicyDocument"])
        for url in props.get("Queues") or []:
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        self.resolver.resources[lid] = {"Ref": f"{self.stack}-{lid}"}
        self.log(f"  apply  {lid} (queue policy)")

    def event_bus(self, lid: str, props: dict[str, Any]) -> None:
        name = props.get("Name") or f"{self.stack}-{lid}"
        try:
            arn = self.events.create_event_bus(Name=name)["EventBusArn"]
            verb = "create"
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
            arn = self.events.describe_event_bus(Name=name)["Arn"]
            verb = "exists"
        self.resolver.resources[lid] = {"Ref": name, "Arn": arn, "Name": name}
        self.log(f"  {verb:6} {lid} (event bus {name})")

    def rule(self, lid: str, props: dict[str, Any]) -> None:
        name = props.get("Name") or f"{self.stack}-{lid}"
        if "EventPattern" not in props:
            self.resolver.resources[lid] = {"Ref": name, "Arn": ""}
            self.log(f"  skip   {lid} (schedule-only rule: the local bridge fires schedules)")
            return
        bus = props.get("EventBusName", "default")
        args: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED"),
                                "EventPattern": json.dumps(props["EventPattern"])}
        if props.get("Description"):
            args["Description"] = props["Description"]
        arn = self.events.put_rule(**args)["RuleArn"]
        targets = []
        for target in props.get("Targets") or []:
            if ":sqs:" not in str(target.get("Arn")):
                raise BootstrapError(f"rule '{lid}' target '{target.get('Id')}' is not an SQS queue: "
                                     "the emulator only routes rules to SQS targets")
            targets.append({k: v for k, v in target.items() if k in ("Id", "Arn", "Input", "InputPath")})
        if targets:
            self.events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self.resolver.resources[lid] = {"Ref": name, "Arn": arn}
        self.log(f"  put    {lid} (rule {name} on {bus}, {len(targets)} target(s))")


def _attr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_env(path: Path, env: Mapping[str, str]) -> None:
    """Write KEY=VALUE lines (values are single-line; no quoting needed for cargo-lambda's --env-file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())), encoding="utf-8")


def parse_params(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise BootstrapError(f"--param {pair!r} is not Name=Value")
        key, value = pair.split("=", 1)
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.bootstrap", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", required=True, help="stack name; physical names are {stack}-{LogicalId}")
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", DEFAULT_ENDPOINT))
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="template parameter value (repeatable)")
    parser.add_argument("--template", default=str(tpl.TEMPLATE_PATH))
    parser.add_argument("--env-out", help="env file to write (default .local/<stack>.env)")
    args = parser.parse_args(argv)
    try:
        boot = Bootstrap(tpl.load(args.template), args.stack, parse_params(args.param), endpoint=args.endpoint)
        print(f"bootstrap: stack {args.stack} on {args.endpoint}")
        boot.run()
        env_out = Path(args.env_out) if args.env_out else tpl.REPO_ROOT / ".local" / f"{args.stack}.env"
        write_env(env_out, boot.environment())
        print(f"bootstrap: wrote {env_out}")
    except (BootstrapError, tpl.TemplateError, OSError) as e:
        print(f"bootstrap: {e}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as e:
        print(f"bootstrap: emulator at {args.endpoint} refused: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
