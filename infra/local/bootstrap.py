"""Create infra/template.yaml's resources on the AWS emulator.

    python -m infra.local.bootstrap --stack texting-dev [--endpoint http://127.0.0.1:4566]
        [--param Name=Value ...] [--secret LogicalId=Value ...] [--env-out .local/texting-dev.env]
        [--functions-out .local/texting-dev.functions.json]

Creates DynamoDB tables (keys, GSIs, then TTL), SQS queues (dead-letter queues first: resources are
created in dependency order), event buses, event rules with their SQS targets and queue policies, the
Cognito user pool with its app client and groups (when their Condition holds), and Secrets Manager
secrets (Ref is the secret's ARN; a GenerateSecretString secret takes the value given
with --secret, else a generated one on creation; a given value or a SecretString replaces the stored
one). Physical names are `{stack}-{LogicalId}` (a bus takes its resolved Name). Running it twice is fine.
Resources that only exist in AWS (functions, the HTTP API, IAM, ...) are listed and skipped: the local
Lambda service, gateway and bridge play their part.

Each function gets its own identity: an access key id derived from the stack and its logical id, and
its `Policies` resolved to the bootstrapped resources' ARNs, registered with the emulator
(`infra.local.enforcer`), which then allows or refuses every call signed with that key as IAM would.

Writes the union of the functions' resolved environments (plus the URL of every queue as
`{LOGICAL_ID}_URL`) to the env file, and with --functions-out each function's own environment (with its
credentials), Timeout and MemorySize as JSON for the local Lambda service (`infra.local.lambdas`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, Callable, Mapping

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.local import template as tpl
from infra.local.enforcer import REGISTRY_PATH
from infra.local.iam import Identity, access_key_id, statements_of

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"

# Types that exist only in AWS: the local Lambda service, gateway and bridge stand in for them.
SKIPPED_TYPES = {
    "AWS::Serverless::Function": "served by the local Lambda service",
    "AWS::Serverless::HttpApi": "served by the local gateway",
    "AWS::Serverless::Api": "served by the local gateway",
    "AWS::Lambda::Function": "served by the local Lambda service",
    "AWS::Lambda::Permission": "not enforced locally",
    "AWS::Lambda::EventSourceMapping": "played by the local bridge",
    "AWS::CloudWatch::Alarm": "not evaluated locally (the dead-letter queues can be read directly)",
    "AWS::IAM::Role": "not supported locally (functions' Policies are enforced)",
    "AWS::IAM::Policy": "not supported locally (functions' Policies are enforced)",
    "AWS::IAM::ManagedPolicy": "not supported locally (functions' Policies are enforced)",
    "AWS::Logs::LogGroup": "logs go to the terminal",
    "AWS::ApiGatewayV2::Api": "served by the local gateway",
    "AWS::ApiGatewayV2::Stage": "served by the local gateway",
    "AWS::ApiGatewayV2::Route": "served by the local gateway",
    "AWS::ApiGatewayV2::Integration": "served by the local gateway",
    "AWS::ApiGatewayV2::Authorizer": "played by the local gateway",
    # Operations (docs/operations.md): what watches, notifies and keeps backups in AWS; nothing of
    # the local stack reads them.
    "AWS::CloudWatch::Dashboard": "not drawn locally (its queries read CloudWatch Logs; logs go to the terminal)",
    "AWS::KMS::Key": "the emulator's topics are not encrypted at rest",
    "AWS::Backup::BackupVault": "the local table is not backed up (the emulator keeps its state in its --state file)",
    "AWS::Backup::BackupPlan": "the local table is not backed up (the emulator keeps its state in its --state file)",
    "AWS::Backup::BackupSelection": "the local table is not backed up (the emulator keeps its state in its --state file)",
    "AWS::Events::EventBusPolicy": "one account locally: the DMS's account is not simulated",
}

# CloudFormation queue properties that are SQS attributes of the same name.
_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "MaximumMessageSize",
                     "ReceiveMessageWaitTimeSeconds", "FifoQueue", "ContentBasedDeduplication",
                     "SqsManagedSseEnabled", "DeduplicationScope", "FifoThroughputLimit")


class BootstrapError(Exception):
    """A problem worth one clear line, not a traceback."""


def _snake(name: str) -> str:
    """`OutboundDLQ` -> `OUTBOUND_DLQ`, `AutomationQueue` -> `AUTOMATION_QUEUE`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).upper()


class Bootstrap:
    """Creates one stack's resources on the emulator and remembers their Ref/GetAtt values."""

    def __init__(self, template: Mapping[str, Any], stack: str, params: Mapping[str, str],
                 endpoint: str = DEFAULT_ENDPOINT, region: str | None = None,
                 log: Callable[[str], None] = print, secrets: Mapping[str, str] | None = None) -> None:
        self.template = template
        self.region = region or os.environ.get("AWS_REGION") or tpl.DEFAULT_REGION
        self.resolver = tpl.Resolver.from_template(template, params, stack=stack, region=self.region)
        missing = self.resolver.missing_parameters()
        if missing:
            raise BootstrapError("missing parameter value(s): " + ", ".join(
                f"--param {m}=..." for m in missing))
        self.stack = stack
        self.endpoint = endpoint.rstrip("/")
        self.log = log
        self.secret_values = dict(secrets or {})
        unknown = set(self.secret_values) - {lid for lid, res in template["Resources"].items()
                                             if res.get("Type") == "AWS::SecretsManager::Secret"}
        if unknown:
            raise BootstrapError(f"--secret for unknown secret resource(s): {', '.join(sorted(unknown))}")
        session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
            region_name=self.region)
        self.ddb = session.client("dynamodb", endpoint_url=endpoint)
        self.sqs = session.client("sqs", endpoint_url=endpoint)
        self.events = session.client("events", endpoint_url=endpoint)
        self.secretsmanager = session.client("secretsmanager", endpoint_url=endpoint)
        self.cognito = session.client("cognito-idp", endpoint_url=endpoint)
        self.sns = session.client("sns", endpoint_url=endpoint)
        # End User Messaging SMS: the emulator hands it to the fake carrier (infra.local.emulator.sms_voice).
        self.sms_voice = session.client("pinpoint-sms-voice-v2", endpoint_url=endpoint)
        self.extras: dict[str, str] = {}
        self._creators: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "AWS::DynamoDB::Table": self.table,
            "AWS::SQS::Queue": self.queue,
            "AWS::SQS::QueuePolicy": self.queue_policy,
            "AWS::Events::EventBus": self.event_bus,
            "AWS::Events::Rule": self.rule,
            "AWS::SecretsManager::Secret": self.secret,
            "AWS::Cognito::UserPool": self.user_pool,
            "AWS::Cognito::UserPoolClient": self.user_pool_client,
            "AWS::Cognito::UserPoolGroup": self.user_pool_group,
            "AWS::SNS::Topic": self.topic,
            "AWS::SNS::TopicPolicy": self.topic_policy,
            "AWS::SNS::Subscription": self.subscription,
            "AWS::SMSVOICE::ConfigurationSet": self.configuration_set,
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
        """Create (or update) every resource the emulator can hold, then register the functions' identities."""
        for lid in self.order():
            res = self.template["Resources"][lid]
            rtype = res["Type"]
            if res.get("Condition") and not self.resolver.condition(res["Condition"]):
                self.log(f"  skip   {lid} (condition {res['Condition']} is false)")
                continue
            if rtype in SKIPPED_TYPES:
                self._stand_in(lid, rtype)
                self.log(f"  skip   {lid} ({rtype}: {SKIPPED_TYPES[rtype]})")
                continue
            props = self.resolver.resolve(res.get("Properties") or {})
            self._creators[rtype](lid, props)
        self.register_identities()
        authorizer = tpl.jwt_authorizer(self.template, self.resolver)
        if authorizer:
            # What the local gateway checks tokens against (the HTTP API's JWT authorizer).
            issuer, audiences = authorizer
            self.extras["JWT_ISSUER"] = issuer
            self.extras["JWT_AUDIENCE"] = ",".join(audiences)

    def _stand_in(self, lid: str, rtype: str) -> None:
        """Ref/Arn values for skipped resources, so the rest of the template still resolves."""
        name = f"{self.stack}-{lid}"
        if "Function" in rtype:
            arn = f"arn:aws:lambda:{self.region}:{tpl.DEFAULT_ACCOUNT}:function:{name}"
        else:
            arn = f"arn:aws:local:{self.region}:{tpl.DEFAULT_ACCOUNT}:{name}"
        self.resolver.resources[lid] = {"Ref": name, "Arn": arn}

    # ------------------------------------------------------------------------------------ identities

    def identities(self) -> dict[str, Identity]:
        """Each function's identity (keyed by function name): its key, role and resolved policy."""
        settings = tpl.function_settings(self.template)
        out = {}
        for name, policies in tpl.function_policies(self.template, self.resolver).items():
            lid = settings[name].logical_id
            statements, ignored = statements_of(policies)
            for what in ignored:
                self.log(f"  warn   {lid}: {what} grants nothing locally")
            out[name] = Identity(access_key_id=access_key_id(self.stack, lid),
                                 role_arn=f"arn:aws:iam::{tpl.DEFAULT_ACCOUNT}:role/{self.stack}-{lid}Role",
                                 session_name=name, statements=statements)
        return out

    def register_identities(self) -> None:
        """Tell the emulator each function's policy; an emulator that is not ours does not enforce IAM."""
        identities = self.identities()
        doc = json.dumps({"identities": [i.to_json() for i in identities.values()]}).encode()
        req = urllib.request.Request(self.endpoint + REGISTRY_PATH, data=doc, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the emulator's URL
                ok = resp.status == 200 and "registered" in json.loads(resp.read())
        except (OSError, ValueError):
            ok = False
        if ok:
            self.log(f"  iam    {len(identities)} function identities registered (each call checked "
                     "against its function's Policies)")
        else:
            self.log(f"  warn   the emulator at {self.endpoint} is not infra.local.emulator: "
                     "IAM is not enforced there")

    def functions(self) -> dict[str, dict[str, Any]]:
        """What the local Lambda service runs: each function's own environment (the template's, plus its
        credentials), Timeout and MemorySize, keyed by function name."""
        identities = self.identities()
        settings = tpl.function_settings(self.template)
        out = {}
        for name, env in tpl.function_environment(self.template, self.resolver).items():
            s = settings[name]
            out[name] = {
                "logicalId": s.logical_id, "timeout": s.timeout, "memory": s.memory,
                "reservedConcurrency": s.reserved_concurrency,
                "environment": {**env, "AWS_ACCESS_KEY_ID": identities[name].access_key_id,
                                "AWS_SECRET_ACCESS_KEY": "local-secret-access-key",
                                "AWS_SESSION_TOKEN": "local-session-token"},
            }
        return out

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
        if props.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
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
        name = tpl.queue_name(self.template, self.stack, lid)
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


    def topic(self, lid: str, props: dict[str, Any]) -> None:
        # Not encrypted locally (KmsMasterKeyId names a key the emulator does not hold); CreateTopic is
        # idempotent for a name.
        name = props.get("TopicName") or f"{self.stack}-{lid}"
        arn = self.sns.create_topic(Name=name)["TopicArn"]
        self.resolver.resources[lid] = {"Ref": arn, "TopicArn": arn, "TopicName": name}
        self.log(f"  ready  {lid} (topic {name})")

    def topic_policy(self, lid: str, props: dict[str, Any]) -> None:
        policy = json.dumps(props["PolicyDocument"])
        for arn in props.get("Topics") or []:
            self.sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=policy)
        self.resolver.resources[lid] = {"Ref": f"{self.stack}-{lid}"}
        self.log(f"  apply  {lid} (topic policy)")

    def subscription(self, lid: str, props: dict[str, Any]) -> None:
        protocol = props["Protocol"]
        if protocol != "sqs":
            self.resolver.resources[lid] = {"Ref": f"{self.stack}-{lid}"}
            self.log(f"  skip   {lid} ({protocol} subscription: nothing local receives it)")
            return
        topic, endpoint = props["TopicArn"], props["Endpoint"]
        existing = [s["SubscriptionArn"] for s in self.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
                    if s["Protocol"] == "sqs" and s["Endpoint"] == endpoint]
        arn = existing[0] if existing else self.sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=endpoint,
            Attributes={"RawMessageDelivery": str(bool(props.get("RawMessageDelivery"))).lower()})["SubscriptionArn"]
        self.resolver.resources[lid] = {"Ref": arn}
        self.log(f"  {'exists' if existing else 'create':6} {lid} ({topic.rsplit(':', 1)[-1]} -> {endpoint.rsplit(':', 1)[-1]})")

    def configuration_set(self, lid: str, props: dict[str, Any]) -> None:
        """End User Messaging's configuration set and its event destinations, made at the fake carrier through
        the emulator, as CloudFormation makes them in AWS."""
        name = props["ConfigurationSetName"]
        try:
            self.sms_voice.create_configuration_set(ConfigurationSetName=name)
            verb = "create"
        except ClientError as e:
            code = e.response["Error"]["Code"]
            if code == "UnknownOperationException":
                raise BootstrapError(f"'{lid}': the emulator at {self.endpoint} does not emulate End User Messaging "
                                     "(start it with --sms-voice-url, as make dev does)") from None
            if code != "ConflictException":
                raise
            verb = "exists"
        for d in props.get("EventDestinations") or []:
            try:
                self.sms_voice.create_event_destination(
                    ConfigurationSetName=name, EventDestinationName=d["EventDestinationName"],
                    MatchingEventTypes=d["MatchingEventTypes"], SnsDestination=d["SnsDestination"])
            except ClientError as e:
                if e.response["Error"]["Code"] != "ConflictException":
                    raise
        arn = f"arn:aws:sms-voice:{self.region}:{tpl.DEFAULT_ACCOUNT}:configuration-set/{name}"
        self.resolver.resources[lid] = {"Ref": name, "Arn": arn}
        self.log(f"  {verb:6} {lid} (End User Messaging configuration set {name})")

    def secret(self, lid: str, props: dict[str, Any]) -> None:
        name = props.get("Name") or f"{self.stack}-{lid}"
        value = self.secret_values.get(lid, props.get("SecretString"))
        try:
            arn = self.secretsmanager.describe_secret(SecretId=name)["ARN"]
            current = self.secretsmanager.get_secret_value(SecretId=arn)["SecretString"]
            if value is not None and value != current:
                self.secretsmanager.put_secret_value(SecretId=arn, SecretString=value)
                verb = "update"
            else:
                verb = "exists"
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            if value is None:
                value = self.generated(props.get("GenerateSecretString") or {})
            args = {"Name": name, "SecretString": value}
            if props.get("Description"):
                args["Description"] = props["Description"]
            arn = self.secretsmanager.create_secret(**args)["ARN"]
            verb = "create"
        self.resolver.resources[lid] = {"Ref": arn, "Id": arn}
        self.log(f"  {verb:6} {lid} (secret {name})")

    def user_pool(self, lid: str, props: dict[str, Any]) -> None:
        """A Cognito user pool (moto's): found by name, else created with the template's schema and policies."""
        name = props.get("UserPoolName") or f"{self.stack}-{lid}"
        pools = self.cognito.list_user_pools(MaxResults=60)["UserPools"]
        pool_id = next((p["Id"] for p in pools if p["Name"] == name), None)
        verb = "exists"
        if pool_id is None:
            keys = ("Policies", "Schema", "AdminCreateUserConfig", "UsernameConfiguration", "MfaConfiguration",
                    "AccountRecoverySetting", "DeletionProtection")
            pool_id = self.cognito.create_user_pool(PoolName=name, **{k: props[k] for k in keys if k in props}
                                                    )["UserPool"]["Id"]
            verb = "create"
        arn = f"arn:aws:cognito-idp:{self.region}:{tpl.DEFAULT_ACCOUNT}:userpool/{pool_id}"
        self.resolver.resources[lid] = {
            "Ref": pool_id, "Arn": arn, "ProviderName": f"cognito-idp.{self.region}.amazonaws.com/{pool_id}",
            "ProviderURL": f"https://cognito-idp.{self.region}.amazonaws.com/{pool_id}"}
        self.extras["USER_POOL_ID"] = pool_id
        self.log(f"  {verb:6} {lid} (user pool {name}: {pool_id})")

    def user_pool_client(self, lid: str, props: dict[str, Any]) -> None:
        """An app client of a pool: found by name, else created (no secret, the template's auth flows)."""
        pool_id, name = props["UserPoolId"], props.get("ClientName") or lid
        clients = self.cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
        client_id = next((c["ClientId"] for c in clients if c["ClientName"] == name), None)
        verb = "exists"
        if client_id is None:
            keys = ("GenerateSecret", "ExplicitAuthFlows", "PreventUserExistenceErrors", "ReadAttributes",
                    "WriteAttributes", "IdTokenValidity", "AccessTokenValidity", "RefreshTokenValidity",
                    "TokenValidityUnits", "EnableTokenRevocation")
            client_id = self.cognito.create_user_pool_client(
                UserPoolId=pool_id, ClientName=name, **{k: props[k] for k in keys if k in props}
            )["UserPoolClient"]["ClientId"]
            verb = "create"
        self.resolver.resources[lid] = {"Ref": client_id, "ClientId": client_id}
        self.extras["USER_POOL_CLIENT_ID"] = client_id
        self.log(f"  {verb:6} {lid} (app client {name}: {client_id})")

    def user_pool_group(self, lid: str, props: dict[str, Any]) -> None:
        pool_id, name = props["UserPoolId"], props.get("GroupName") or lid
        try:
            self.cognito.get_group(GroupName=name, UserPoolId=pool_id)
            verb = "exists"
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            args = {"Description": props["Description"]} if props.get("Description") else {}
            self.cognito.create_group(GroupName=name, UserPoolId=pool_id, **args)
            verb = "create"
        self.resolver.resources[lid] = {"Ref": name}
        self.log(f"  {verb:6} {lid} (group {name} of {pool_id})")

    def generated(self, spec: Mapping[str, Any]) -> str:
        """A GenerateSecretString value (no --secret given): Secrets Manager's own random password."""
        keys = ("PasswordLength", "ExcludeCharacters", "ExcludeNumbers", "ExcludePunctuation",
                "ExcludeUppercase", "ExcludeLowercase", "IncludeSpace", "RequireEachIncludedType")
        args = {k: (int(v) if k == "PasswordLength" else v) for k, v in spec.items() if k in keys}
        password = self.secretsmanager.get_random_password(**args)["RandomPassword"]
        if spec.get("SecretStringTemplate") and spec.get("GenerateStringKey"):
            doc = json.loads(spec["SecretStringTemplate"])
            doc[spec["GenerateStringKey"]] = password
            return json.dumps(doc)
        return password


def _attr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_env(path: Path, env: Mapping[str, str]) -> None:
    """Write KEY=VALUE lines (values are single-line, unquoted)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())), encoding="utf-8")


def write_functions(path: Path, functions: Mapping[str, Any]) -> None:
    """The local Lambda service's input (see `Bootstrap.functions`); readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(functions, indent=2, sort_keys=True), encoding="utf-8")
    path.chmod(0o600)


def parse_params(pairs: list[str], flag: str = "--param") -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise BootstrapError(f"{flag} {pair!r} is not Name=Value")
        key, value = pair.split("=", 1)
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.bootstrap", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", required=True, help="stack name; physical names are {stack}-{LogicalId}")
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", DEFAULT_ENDPOINT))
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="template parameter value (repeatable)")
    parser.add_argument("--secret", action="append", default=[], metavar="LOGICALID=VALUE",
                        help="value of a secret resource (repeatable); a GenerateSecretString secret "
                             "without one gets a generated value")
    parser.add_argument("--template", default=str(tpl.TEMPLATE_PATH))
    parser.add_argument("--env-out", help="env file to write (default .local/<stack>.env)")
    parser.add_argument("--functions-out", help="also write each function's settings (JSON) here")
    args = parser.parse_args(argv)
    try:
        boot = Bootstrap(tpl.load(args.template), args.stack, parse_params(args.param), endpoint=args.endpoint,
                         secrets=parse_params(args.secret, "--secret"))
        print(f"bootstrap: stack {args.stack} on {args.endpoint}")
        boot.run()
        env_out = Path(args.env_out) if args.env_out else tpl.REPO_ROOT / ".local" / f"{args.stack}.env"
        write_env(env_out, boot.environment())
        print(f"bootstrap: wrote {env_out}")
        if args.functions_out:
            write_functions(Path(args.functions_out), boot.functions())
            print(f"bootstrap: wrote {args.functions_out}")
    except (BootstrapError, tpl.TemplateError, OSError) as e:
        print(f"bootstrap: {e}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as e:
        print(f"bootstrap: emulator at {args.endpoint} refused: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
