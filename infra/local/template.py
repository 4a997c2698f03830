"""Read infra/template.yaml for the local stack.

The template is the single source of truth: the bootstrap creates its resources on the emulator, the
gateway serves its HTTP routes and the bridge plays its SQS and schedule triggers. This module loads the
YAML (CloudFormation short tags included), resolves intrinsic functions against known values, and lists
the pieces the local stack needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "infra" / "template.yaml"

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"  # moto's default account

_SHORT_TAGS = (
    "Ref", "Condition", "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
    "FindInMap", "GetAZs", "Base64", "ImportValue", "Cidr", "Transform", "Length", "ToJsonString",
)


class TemplateError(Exception):
    """A template construct the local stack cannot resolve."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Tag value` into the long form `{"Fn::Tag": value}` / `{"Ref": value}`."""


def _make_constructor(tag: str):
    key = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":  # !GetAtt Res.Attr is short for [Res, Attr]
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


for _tag in _SHORT_TAGS:
    _CfnLoader.add_constructor(f"!{_tag}", _make_constructor(_tag))


def load(path: Path | str = TEMPLATE_PATH) -> dict[str, Any]:
    """Load a CloudFormation/SAM template, short tags included."""
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(doc, dict) or "Resources" not in doc:
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources)")
    return doc


# --------------------------------------------------------------------------------------------- resolver

class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::If and conditions.

    `resources` maps a logical id to its attributes; the key "Ref" holds what `!Ref` returns, other keys
    are `!GetAtt` attribute names (e.g. "Arn"). `parameters` holds parameter values (template defaults
    are applied by `from_template`).
    """

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str],
                 resources: dict[str, dict[str, str]] | None = None,
                 stack: str = "local", region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT) -> None:
        self.template = template
        self.resources: dict[str, dict[str, str]] = resources if resources is not None else {}
        self.values: dict[str, Any] = {
            "AWS::StackName": stack,
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/local",
        }
        self.values.update(parameters)

    @classmethod
    def from_template(cls, template: Mapping[str, Any], params: Mapping[str, str] | None = None,
                      **kwargs: Any) -> "Resolver":
        """A resolver with the template's parameter defaults overridden by `params`."""
        values: dict[str, str] = {}
        for name, spec in (template.get("Parameters") or {}).items():
            if name in (params or {}):
                values[name] = str(params[name])  # type: ignore[index]
            elif "Default" in spec:
                values[name] = str(spec["Default"])
        unknown = set(params or {}) - set(template.get("Parameters") or {})
        if unknown:
            raise TemplateError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        return cls(template, values, **kwargs)

    def missing_parameters(self) -> list[str]:
        """Template parameters that have neither a default nor a given value."""
        return [p for p in (self.template.get("Parameters") or {}) if p not in self.values]

    @property
    def stack(self) -> str:
        return str(self.values["AWS::StackName"])

    def ref(self, name: str) -> Any:
        if name in self.values:
            spec = (self.template.get("Parameters") or {}).get(name) or {}
            if spec.get("Type") == "CommaDelimitedList" and isinstance(self.values[name], str):
                # As CloudFormation: "a,b" -> ["a", "b"], "" -> [""].
                return [v.strip() for v in self.values[name].split(",")]
            return self.values[name]
        if name in self.resources and "Ref" in self.resources[name]:
            return self.resources[name]["Ref"]
        if name in (self.template.get("Parameters") or {}):
            raise TemplateError(f"parameter '{name}' has no value (pass --param {name}=...)")
        raise TemplateError(f"cannot resolve Ref '{name}': not a parameter or a resolved resource")

    def get_att(self, name: str, attr: str) -> Any:
        try:
            return self.resources[name][attr]
        except KeyError:
            raise TemplateError(f"cannot resolve GetAtt '{name}.{attr}'") from None

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"unknown condition '{name}'")
        return bool(self.resolve(conditions[name]))

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic function inside `value` (recursively)."""
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, arg)
        out = {}
        for k, v in value.items():
            r = self.resolve(v)
            if r is not _NO_VALUE:
                out[k] = r
        return out

    def sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, extra = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, extra = arg, {}

        def replace(m: re.Match[str]) -> str:
            expr = m.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in extra:
                return str(extra[expr])
            if "." in expr and not expr.startswith("AWS::"):
                res, attr = expr.split(".", 1)
                return str(self.get_att(res, attr))
            return str(self.ref(expr))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


_NO_VALUE = object()


def _ref(r: Resolver, arg: str) -> Any:
    return _NO_VALUE if arg == "AWS::NoValue" else r.ref(arg)


def _get_att(r: Resolver, arg: Any) -> Any:
    name, attr = arg if isinstance(arg, list) else str(arg).split(".", 1)
    return r.get_att(name, r.resolve(attr))


def _join(r: Resolver, arg: list[Any]) -> str:
    sep, items = arg
    return str(sep).join(str(i) for i in r.resolve(items))


def _select(r: Resolver, arg: list[Any]) -> Any:
    index, items = arg
    return r.resolve(items)[int(r.resolve(index))]


def _split(r: Resolver, arg: list[Any]) -> list[str]:
    sep, text = arg
    return str(r.resolve(text)).split(sep)


def _if(r: Resolver, arg: list[Any]) -> Any:
    name, when_true, when_false = arg
    return r.resolve(when_true if r.condition(name) else when_false)


_INTRINSICS: dict[str, Any] = {
    "Ref": _ref,
    "Fn::GetAtt": _get_att,
    "Fn::Sub": lambda r, a: r.sub(a),
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::If": _if,
    "Fn::Equals": lambda r, a: str(r.resolve(a[0])) == str(r.resolve(a[1])),
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Fn::And": lambda r, a: all(r.resolve(x) for x in a),
    "Fn::Or": lambda r, a: any(r.resolve(x) for x in a),
    "Condition": lambda r, a: r.condition(a),
}


def references(value: Any) -> set[str]:
    """Logical ids (and parameter names) that `value` refers to through Ref, GetAtt or Sub."""
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= references(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else str(v).split(".", 1)[0])
            elif k == "Fn::Sub":
                text = v[0] if isinstance(v, list) else v
                for expr in re.findall(r"\$\{([^}!][^}]*)\}", text):
                    found.add(expr.split(".", 1)[0])
                if isinstance(v, list):
                    found |= references(v[1])
            else:
                found |= references(v)
    return found


# --------------------------------------------------------------------------------------------- listings

@dataclass(frozen=True)
class Route:
    """One HTTP API route: `GET /v1/messages/{messageId}` served by the binary `send`."""

    method: str
    path: str
    function: str  # binary name
    auth_none: bool

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class SqsSource:
    """An SQS event source mapping: `queue` (logical id) feeds `function` in batches."""

    queue: str
    function: str
    batch_size: int
    report_batch_item_failures: bool
    max_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency: batches in flight at most


@dataclass(frozen=True)
class ScheduleSource:
    """A Schedule event: `function` is invoked on `rate` (e.g. "rate(1 minute)")."""

    name: str  # {FunctionLogicalId}{EventName}, also the local rule name suffix
    function: str
    rate: str


def functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The template's AWS::Serverless::Function resources by logical id."""
    return {lid: res for lid, res in template["Resources"].items()
            if res.get("Type") == "AWS::Serverless::Function"}


def queue_name(template: Mapping[str, Any], stack: str, logical_id: str) -> str:
    """A queue's physical name: its QueueName, else {stack}-{LogicalId} (plus .fifo for a FIFO queue)."""
    props = (template["Resources"][logical_id].get("Properties") or {})
    return props.get("QueueName") or f"{stack}-{logical_id}" + (".fifo" if props.get("FifoQueue") else "")


def binary_name(logical_id: str, resource: Mapping[str, Any]) -> str:
    """The cargo binary of a function: Metadata.BuildProperties.Binary (else the logical id, lowercased)."""
    binary = ((resource.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
    return binary or logical_id.removesuffix("Function").lower()


def _events(resource: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return (resource.get("Properties") or {}).get("Events") or {}


def _auth_none(template: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
    authorizer = (props.get("Auth") or {}).get("Authorizer")
    if authorizer is not None:
        return authorizer == "NONE"
    api_ref = (props.get("ApiId") or {}).get("Ref") if isinstance(props.get("ApiId"), dict) else None
    api = template["Resources"].get(api_ref, {}) if api_ref else {}
    api_auth = ((api.get("Properties") or {}).get("Auth")
                or ((template.get("Globals") or {}).get("HttpApi") or {}).get("Auth") or {})
    return not api_auth.get("DefaultAuthorizer")


def routes(template: Mapping[str, Any]) -> list[Route]:
    """Every HttpApi route of every function."""
    out = []
    for lid, res in functions(template).items():
        for event in _events(res).values():
            if event.get("Type") == "HttpApi":
                props = event.get("Properties") or {}
                out.append(Route(method=str(props.get("Method", "ANY")).upper(), path=props.get("Path", "/"),
                                 function=binary_name(lid, res), auth_none=_auth_none(template, props)))
    return out


@dataclass(frozen=True)
class Cors:
    """The HTTP API's CorsConfiguration, resolved."""

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    def allows(self, origin: str) -> bool:
        return origin in self.allow_origins or "*" in self.allow_origins


def cors(template: Mapping[str, Any], params: Mapping[str, str] | None = None) -> Cors | None:
    """The CORS configuration of the template's HTTP API with these parameter values (None: no CORS)."""
    resolver = Resolver.from_template(template, params)
    for res in (template.get("Resources") or {}).values():
        if res.get("Type") != "AWS::Serverless::HttpApi":
            continue
        config = resolver.resolve((res.get("Properties") or {}).get("CorsConfiguration", _NO_VALUE))
        if not isinstance(config, Mapping):
            return None
        listed = lambda key: tuple(str(v) for v in (config.get(key) or []) if str(v))  # noqa: E731
        origins = listed("AllowOrigins")
        if not origins:
            return None
        return Cors(allow_origins=origins, allow_methods=tuple(m.upper() for m in listed("AllowMethods")),
                    allow_headers=tuple(h.lower() for h in listed("AllowHeaders")),
                    expose_headers=tuple(h.lower() for h in listed("ExposeHeaders")),
                    max_age=int(config["MaxAge"]) if config.get("MaxAge") is not None else None,
                    allow_credentials=bool(config.get("AllowCredentials")))
    return None


def jwt_authorizer(template: Mapping[str, Any], resolver: "Resolver") -> tuple[str, list[str]] | None:
    """The issuer and audiences of the HTTP API's default JWT authorizer, resolved (None: no JWT authorizer)."""
    for res in (template.get("Resources") or {}).values():
        if res.get("Type") != "AWS::Serverless::HttpApi":
            continue
        auth = (res.get("Properties") or {}).get("Auth") or {}
        authorizer = (auth.get("Authorizers") or {}).get(auth.get("DefaultAuthorizer")) or {}
        config = authorizer.get("JwtConfiguration")
        if config is None:
            return None
        issuer = resolver.resolve(config.get("issuer"))
        audiences = resolver.resolve(config.get("audience") or [])
        return str(issuer), [str(a) for a in audiences]
    return None


def _parameter_default(template: Mapping[str, Any], value: Any) -> Any:
    """A `!Ref` to a template parameter read as the parameter's Default; anything else as it is."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return ((template.get("Parameters") or {}).get(value["Ref"]) or {}).get("Default")
    return value


def sqs_sources(template: Mapping[str, Any]) -> list[SqsSource]:
    """Every SQS event source: which queue feeds which function."""
    out = []
    for lid, res in functions(template).items():
        for event in _events(res).values():
            if event.get("Type") == "SQS":
                props = event.get("Properties") or {}
                queue = props["Queue"]
                queue_id = queue["Fn::GetAtt"][0] if isinstance(queue, dict) and "Fn::GetAtt" in queue else None
                if queue_id is None:
                    raise TemplateError(f"{lid}: SQS event Queue must be !GetAtt <Queue>.Arn")
                maximum = _parameter_default(template, (props.get("ScalingConfig") or {}).get("MaximumConcurrency"))
                out.append(SqsSource(queue=queue_id, function=binary_name(lid, res),
                                     batch_size=int(props.get("BatchSize", 10)),
                                     report_batch_item_failures="ReportBatchItemFailures"
                                     in (props.get("FunctionResponseTypes") or []),
                                     max_concurrency=int(maximum) if maximum else None))
    return out


@dataclass(frozen=True)
class StreamSource:
    """A DynamoDB stream event source: `table`'s (logical id) stream feeds `function`."""

    table: str
    function: str
    batch_size: int
    report_batch_item_failures: bool
    max_retries: int
    filters: tuple[str, ...] = ()  # FilterCriteria patterns (JSON)
    on_failure: str | None = None  # DestinationConfig.OnFailure: the queue's logical id (`!GetAtt <Queue>.Arn`)


def stream_sources(template: Mapping[str, Any]) -> list[StreamSource]:
    """Every DynamoDB (stream) event source."""
    out = []
    for lid, res in functions(template).items():
        for event in _events(res).values():
            if event.get("Type") == "DynamoDB":
                props = event.get("Properties") or {}
                stream = props["Stream"]
                table = stream["Fn::GetAtt"][0] if isinstance(stream, dict) and "Fn::GetAtt" in stream else None
                if table is None:
                    raise TemplateError(f"{lid}: a DynamoDB event's Stream must be !GetAtt <Table>.StreamArn")
                filters = tuple(f["Pattern"] for f in ((props.get("FilterCriteria") or {}).get("Filters") or []))
                failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
                on_failure = failure["Fn::GetAtt"][0] if isinstance(failure, dict) and "Fn::GetAtt" in failure else None
                out.append(StreamSource(table=table, function=binary_name(lid, res),
                                        batch_size=int(props.get("BatchSize", 100)),
                                        report_batch_item_failures="ReportBatchItemFailures"
                                        in (props.get("FunctionResponseTypes") or []),
                                        max_retries=int(props.get("MaximumRetryAttempts", -1)),
                                        filters=filters, on_failure=on_failure))
    return out


def matches(pattern: Any, event: Any) -> bool:
    """EventBridge-style content filtering as Lambda applies FilterCriteria: a pattern's keys must be in
    the event; a list of candidates matches a value equal to one of them, or a `{"prefix": ...}`."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(k in event and matches(v, event[k]) for k, v in pattern.items())
    if isinstance(pattern, list):
        return any((isinstance(c, dict) and "prefix" in c and isinstance(event, str)
                    and event.startswith(c["prefix"])) or c == event for c in pattern)
    return pattern == event


def schedules(template: Mapping[str, Any]) -> list[ScheduleSource]:
    """Every Schedule (or ScheduleV2) event."""
    out = []
    for lid, res in functions(template).items():
        for name, event in _events(res).items():
            if event.get("Type") in ("Schedule", "ScheduleV2"):
                props = event.get("Properties") or {}
                rate = props.get("Schedule") or props.get("ScheduleExpression")
                out.append(ScheduleSource(name=f"{lid}{name}", function=binary_name(lid, res), rate=rate))
    return out


def rate_seconds(expression: str) -> int:
    """Seconds of a `rate(N unit)` expression (cron expressions are not supported locally)."""
    m = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not m:
        raise TemplateError(f"unsupported schedule expression {expression!r} (only rate(...) locally)")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[m.group(2).rstrip("s")]
    return int(m.group(1)) * unit


def function_environment(template: Mapping[str, Any], resolver: Resolver) -> dict[str, dict[str, str]]:
    """Each function's resolved environment (Globals merged with its own), keyed by binary name."""
    global_vars = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}) \
        .get("Variables") or {}
    out: dict[str, dict[str, str]] = {}
    for lid, res in functions(template).items():
        own = ((res.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        merged = {**global_vars, **own}
        out[binary_name(lid, res)] = {k: str(v) for k, v in resolver.resolve(merged).items()}
    return out


@dataclass(frozen=True)
class FunctionSettings:
    """What Lambda needs to run one function: its limits, from its Properties or the Globals."""

    logical_id: str
    name: str  # binary name: also the local function name (invoke API path, AWS_LAMBDA_FUNCTION_NAME)
    timeout: int  # seconds (Lambda's default is 3)
    memory: int  # MB (Lambda's default is 128)
    reserved_concurrency: int | None


def _function_property(template: Mapping[str, Any], resource: Mapping[str, Any], name: str) -> Any:
    own = resource.get("Properties") or {}
    if name in own:
        return own[name]
    return ((template.get("Globals") or {}).get("Function") or {}).get(name)


def function_settings(template: Mapping[str, Any]) -> dict[str, FunctionSettings]:
    """Each function's settings, keyed by binary name (a function's Timeout overrides the Globals')."""
    out = {}
    for lid, res in functions(template).items():
        reserved = _function_property(template, res, "ReservedConcurrentExecutions")
        out[binary_name(lid, res)] = FunctionSettings(
            logical_id=lid, name=binary_name(lid, res),
            timeout=int(_function_property(template, res, "Timeout") or 3),
            memory=int(_function_property(template, res, "MemorySize") or 128),
            reserved_concurrency=int(reserved) if reserved is not None else None)
    return out


def function_policies(template: Mapping[str, Any], resolver: Resolver) -> dict[str, list[Any]]:
    """Each function's `Policies` (a SAM function's execution role), resolved, keyed by binary name."""
    out = {}
    for lid, res in functions(template).items():
        policies = (res.get("Properties") or {}).get("Policies") or []
        out[binary_name(lid, res)] = resolver.resolve(policies if isinstance(policies, list) else [policies])
    return out
