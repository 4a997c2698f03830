"""The local API Gateway (HTTP API, payload format 2.0) in front of the local Lambda service.

    python -m infra.local.gateway [--host 127.0.0.1] [--port 3000]

Routes come from infra/template.yaml (each function's HttpApi events). Routes behind the JWT authorizer
need `Authorization: Bearer <token>` that the authorizer accepts (infra.local.oidc: an RSA-signed token
of the issuer JWT_ISSUER, checked against its JWKS, for one of the audiences JWT_AUDIENCE), else 401
{"message":"Unauthorized"} as API Gateway answers. The bootstrap resolves both from the template's
authorizer (the stack's user pool and its app client, unless CreateUserPool is "false"). A request no route matches, whatever its method (TRACE, CONNECT, a method the path has no
route for), is 404 {"message":"Not Found"} as an HTTP API answers it. The request becomes a v2.0 event
POSTed to the invoke API at $LAMBDA_ENDPOINT/2015-03-31/functions/<binary>/invocations (default
http://127.0.0.1:9000); the function's answer is translated back. Environment: JWT_ISSUER, JWT_AUDIENCE
(comma-separated), AWS_ENDPOINT_URL (where an issuer on an AWS host is reached), LAMBDA_ENDPOINT,
INVOKE_TIMEOUT_SECONDS (default 30, API Gateway's limit).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from infra.local import oidc
from infra.local import template as tpl
from infra.local.common import MAX_BODY, JsonHandler, Server, serve_until_interrupted

TEXT_TYPES = re.compile(r"^(text/|application/(json|.*\+json|xml|.*\+xml|javascript|graphql))", re.I)
UNAUTHORIZED = {"message": "Unauthorized"}
# An HTTP API's answer to a request no route matches (an unknown path, or a method the path has no route
# for: TRACE, CONNECT, PATCH, ...): 404 with this body, as application/json. HTTP APIs have no 405.
NOT_FOUND = b'{"message":"Not Found"}'
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP method (RFC 9110's token)


# ------------------------------------------------------------------------------------------------ routing

@dataclass(frozen=True)
class CompiledRoute:
    """A template route with its path regex; `specificity` orders candidates as API Gateway does."""

    route: tpl.Route
    pattern: re.Pattern[str]
    specificity: tuple[int, int, int]

    @classmethod
    def compile(cls, route: tpl.Route) -> "CompiledRoute":
        parts, literals, greedy = [], 0, False
        for segment in route.path.strip("/").split("/"):
            m = re.fullmatch(r"\{([A-Za-z0-9_.\-]+)(\+?)\}", segment)
            if m and m.group(2):
                parts.append(f"(?P<{_group(m.group(1))}>.+)")
                greedy = True
            elif m:
                parts.append(f"(?P<{_group(m.group(1))}>[^/]+)")
            else:
                parts.append(re.escape(segment))
                literals += 1
        regex = "^/" + "/".join(parts) + "/?$" if route.path != "/" else "^/$"
        return cls(route, re.compile(regex), (0 if greedy else 1, literals, len(parts)))

    def match(self, path: str) -> dict[str, str] | None:
        m = self.pattern.match(path)
        if m is None:
            return None
        return {_ungroup(k): unquote(v) for k, v in m.groupdict().items()}


def _group(name: str) -> str:
    return "p_" + name.encode().hex()


def _ungroup(group: str) -> str:
    return bytes.fromhex(group[2:]).decode()


class Router:
    """Finds the route for (method, path): the most specific match wins."""

    def __init__(self, routes: list[tpl.Route]) -> None:
        self.routes = [CompiledRoute.compile(r) for r in routes]

    def match(self, method: str, path: str) -> tuple[tpl.Route | None, dict[str, str], list[str]]:
        """(route, path parameters, methods allowed on the path); route is None when nothing matched."""
        found = [(c, p) for c in self.routes if (p := c.match(path)) is not None]
        allowed = sorted({c.route.method for c, _ in found})
        with_method = [(c, p) for c, p in found if c.route.method in (method, "ANY")]
        if not with_method:
            return None, {}, allowed
        best, params = max(with_method, key=lambda cp: cp[0].specificity)
        return best.route, params, allowed


# ------------------------------------------------------------------------------------------------- events

def stringify_claim(value: Any) -> str:
    """API Gateway hands JWT claims to the function as strings (lists as "[a b]")."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, list):
        return "[" + " ".join(stringify_claim(v) for v in value) + "]"
    return json.dumps(value, separators=(",", ":"))


def build_event(*, method: str, raw_path: str, raw_query: str, headers: list[tuple[str, str]], body: bytes,
                route: tpl.Route, path_params: Mapping[str, str], source_ip: str,
                claims: Mapping[str, Any] | None, protocol: str = "HTTP/1.1") -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    merged["x-forwarded-proto"] = "http"
    merged["x-forwarded-for"] = f"{merged['x-forwarded-for']}, {source_ip}" if "x-forwarded-for" in merged \
        else source_ip
    query: dict[str, str] = {}
    for k, v in parse_qsl(raw_query, keep_blank_values=True):
        query[k] = f"{query[k]},{v}" if k in query else v
    host = merged.get("host", "127.0.0.1")
    now = time.time()
    request_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": tpl.DEFAULT_ACCOUNT,
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".")[0].split(":")[0],
            "http": {"method": method, "path": raw_path, "protocol": protocol, "sourceIp": source_ip,
                     "userAgent": merged.get("user-agent", "")},
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_params:
        event["pathParameters"] = dict(path_params)
    if claims is not None:
        scope = claims.get("scope")
        event["requestContext"]["authorizer"] = {"jwt": {
            "claims": {k: stringify_claim(v) for k, v in claims.items()},
            "scopes": scope.split() if isinstance(scope, str) else None,
        }}
    if body:
        if TEXT_TYPES.match(merged.get("content-type", "")):
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:  # like API Gateway: form posts and binary arrive base64-encoded
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


@dataclass
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def translate_response(payload: Any) -> HttpAnswer:
    """A v2.0 function result -> HTTP answer (a result without statusCode is a 200 JSON body)."""
    if not isinstance(payload, dict) or "statusCode" not in payload:
        return HttpAnswer(200, [("content-type", "application/json")], json.dumps(payload).encode())
    headers: list[tuple[str, str]] = [(k, str(v)) for k, v in (payload.get("headers") or {}).items()]
    for k, values in (payload.get("multiValueHeaders") or {}).items():
        headers.extend((k, str(v)) for v in values)
    headers.extend(("set-cookie", c) for c in payload.get("cookies") or [])
    raw = payload.get("body")
    if raw is None:
        body = b""
    elif payload.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    else:
        body = raw.encode() if isinstance(raw, str) else json.dumps(raw).encode()
    if not any(k.lower() == "content-type" for k, _ in headers) and body:
        headers.append(("content-type", "application/json"))
    return HttpAnswer(int(payload["statusCode"]), headers, body)


# ------------------------------------------------------------------------------------------------ invoker

class FunctionError(Exception):
    """The function failed (error payload) or the invoke API could not be reached."""


class Invoker:
    """Calls the Lambda invoke API over one keep-alive connection per thread."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        parts = urlsplit(endpoint)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def invoke(self, function: str, event: Mapping[str, Any]) -> Any:
        """Invoke `function` with `event` and return its decoded result; FunctionError on failure."""
        data = json.dumps(event).encode()
        path = f"/2015-03-31/functions/{function}/invocations"
        for attempt in (1, 2):  # a pooled connection the server closed is retried once
            conn = self._connection()
            try:
                conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError) as e:
                conn.close()
                self._local.conn = None
                if attempt == 2 or isinstance(e, (TimeoutError, ConnectionRefusedError)):
                    raise FunctionError(f"invoke {function}: {e}") from e
        if resp.status >= 300 or resp.getheader("X-Amz-Function-Error"):
            raise FunctionError(f"invoke {function}: HTTP {resp.status}: {raw[:500]!r}")
        try:
            result = json.loads(raw) if raw else None
        except ValueError as e:
            raise FunctionError(f"invoke {function}: not JSON: {raw[:200]!r}") from e
        if isinstance(result, dict) and "errorType" in result and "statusCode" not in result:
            raise FunctionError(f"invoke {function}: {result.get('errorType')}: {result.get('errorMessage')}")
        return result


# ------------------------------------------------------------------------------------------------ handler

@dataclass
class GatewayConfig:
    # The template's JWT authorizer, resolved: its issuer and audiences.
    issuer: str
    audiences: list[str]
    # AWS_ENDPOINT_URL: an issuer on an AWS host (a Cognito user pool) is reached there.
    aws_endpoint: str | None = None
    lambda_endpoint: str = "http://127.0.0.1:9000"
    invoke_timeout: float = 30.0
    # The template's PortalOrigins parameter (comma-separated): the origins CORS allows.
    portal_origins: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "GatewayConfig":
        issuer = env.get("JWT_ISSUER", "")
        audiences = [a.strip() for a in env.get("JWT_AUDIENCE", "").split(",") if a.strip()]
        if not issuer or not audiences:
            raise SystemExit("gateway: JWT_ISSUER and JWT_AUDIENCE are not set (the bootstrap's stack env has them)")
        return cls(issuer=issuer, audiences=audiences, aws_endpoint=env.get("AWS_ENDPOINT_URL") or None,
                   lambda_endpoint=env.get("LAMBDA_ENDPOINT", cls.lambda_endpoint),
                   invoke_timeout=float(env.get("INVOKE_TIMEOUT_SECONDS", cls.invoke_timeout)),
                   portal_origins=env.get("PORTAL_ORIGINS", ""))

    def authorizer(self) -> oidc.JwtAuthorizer:
        return oidc.JwtAuthorizer(self.issuer, self.audiences, oidc.aws_host_to(self.aws_endpoint))


class GatewayHandler(JsonHandler):
    """Routes, authorizes, invokes, translates. One instance per request (stdlib style)."""

    server_version = "gateway"
    router: Router
    config: GatewayConfig
    jwt: oidc.JwtAuthorizer
    invoker: Invoker
    cors: tpl.Cors | None

    # Every method goes through the routing (http.server would answer a method without a do_<METHOD>
    # with its own 501 HTML page): the methods RFC 9110 defines and PATCH here, any other method token
    # (an extension method such as PROPFIND) via __getattr__.
    def do_GET(self) -> None:
        self.handle_api()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_CONNECT = do_OPTIONS = do_TRACE = do_PATCH = do_GET

    def __getattr__(self, name: str) -> Any:
        """`do_<METHOD>` for an extension method (http.server dispatches on `hasattr(self, "do_" + method)`)."""
        if name.startswith("do_") and _TOKEN.fullmatch(name[3:]):
            return self.handle_api
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def handle_api(self) -> None:
        started = time.monotonic()
        origin = self.headers.get("Origin")
        if (self.cors and self.command == "OPTIONS" and origin
                and self.headers.get("Access-Control-Request-Method")):
            self.preflight(origin)
            return
        # The gateway's own answers (401, 404, 413) carry the CORS headers too, so the portal can read them.
        own = dict(self.cors_headers(origin)) if self.cors and origin and self.cors.allows(origin) else {}
        parts = urlsplit(self.path)
        raw_path, raw_query = parts.path or "/", parts.query
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.refuse_large_body(length, own)
            return
        body = self.rfile.read(length) if length else b""
        route, path_params, allowed = self.router.match(self.command, raw_path)
        if route is None:
            # As an HTTP API: no route for this method on this path is 404 {"message":"Not Found"}, whatever
            # the method and whether or not the path has routes for other methods; no authorizer, no function.
            others = f" (the path has routes for {'/'.join(allowed)})" if allowed else ""
            sys.stderr.write(f"gateway: no route for {self.command} {raw_path}{others} -> 404\n")
            self.send_bytes(404, NOT_FOUND, "application/json", own)
            return
        claims = None
        if not route.auth_none:
            claims = self.authorize()
            if claims is None:
                self.send_json(401, UNAUTHORIZED, headers=own)
                return
        event = build_event(method=self.command, raw_path=raw_path, raw_query=raw_query,
                            headers=list(self.headers.items()), body=body, route=route,
                            path_params=path_params, source_ip=self.client_address[0], claims=claims,
                            protocol=self.request_version)
        try:
            answer = translate_response(self.invoker.invoke(route.function, event))
        except FunctionError as e:
            # An integration timeout, or no invoke API yet (the Lambda service still starting): 503.
            unavailable = isinstance(e.__cause__, (TimeoutError, ConnectionRefusedError))
            sys.stderr.write(f"gateway: {route.route_key} -> {route.function} failed: {e}\n")
            status, message = (503, "Service Unavailable") if unavailable else (500, "Internal Server Error")
            self.send_json(status, {"message": message})
            return
        extra = [("Apigw-Requestid", event["requestContext"]["requestId"]), ("Date", formatdate(usegmt=True))]
        headers = answer.headers
        if self.cors:
            # As API Gateway with a CORS configuration: the function's own CORS headers are ignored, and
            # an allowed origin gets the configured ones.
            headers = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            if origin and self.cors.allows(origin):
                extra += self.cors_headers(origin)
                if self.cors.expose_headers:
                    extra.append(("Access-Control-Expose-Headers", ",".join(self.cors.expose_headers)))
        self.send_response(answer.status)
        for k, v in headers + extra:
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)
        sys.stderr.write(f"gateway: {route.route_key} -> {route.function} {answer.status} "
                         f"{(time.monotonic() - started) * 1000:.0f} ms\n")

    def cors_headers(self, origin: str) -> list[tuple[str, str]]:
        assert self.cors is not None
        star = "*" in self.cors.allow_origins and not self.cors.allow_credentials
        out = [("Access-Control-Allow-Origin", "*" if star else origin)]
        if self.cors.allow_credentials:
            out.append(("Access-Control-Allow-Credentials", "true"))
        if not star:
            out.append(("Vary", "Origin"))
        return out

    def preflight(self, origin: str) -> None:
        """API Gateway answers a CORS preflight itself: 204, with the CORS headers only for an allowed
        origin (the browser then refuses the real request); no authorizer, no function."""
        assert self.cors is not None
        headers: list[tuple[str, str]] = []
        if self.cors.allows(origin):
            headers = self.cors_headers(origin)
            if self.cors.allow_methods:
                headers.append(("Access-Control-Allow-Methods", ",".join(self.cors.allow_methods)))
            if self.cors.allow_headers:
                headers.append(("Access-Control-Allow-Headers", ",".join(self.cors.allow_headers)))
            if self.cors.max_age is not None:
                headers.append(("Access-Control-Max-Age", str(self.cors.max_age)))
        self.send_response(204)
        for k, v in headers + [("Date", formatdate(usegmt=True)), ("Content-Length", "0")]:
            self.send_header(k, v)
        self.end_headers()
        sys.stderr.write(f"gateway: preflight {self.path} from {origin} "
                         f"{'allowed' if headers else 'refused'}\n")

    def refuse_large_body(self, length: int, own: Mapping[str, str]) -> None:
        """413 like API Gateway; the body is drained (up to a bound) so the client reads the answer."""
        if length <= 8 * MAX_BODY:
            while length > 0 and (chunk := self.rfile.read(min(length, 1 << 20))):
                length -= len(chunk)
        else:
            self.close_connection = True
        self.send_json(413, {"message": "Request Entity Too Large"},
                       headers={**own, **({"Connection": "close"} if self.close_connection else {})})

    def authorize(self) -> dict[str, Any] | None:
        try:
            return self.jwt.claims(self.headers.get("Authorization"))
        except oidc.InvalidToken:
            return None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the handler logs its own line
        pass


def make_server(host: str, port: int, config: GatewayConfig,
                routes: list[tpl.Route] | None = None, template: dict[str, Any] | None = None) -> Server:
    """A ready-to-serve gateway (call serve_forever); routes and CORS come from infra/template.yaml
    (CORS with the config's portal origins as the PortalOrigins parameter)."""
    template = template if template is not None else tpl.load()
    params = {"PortalOrigins": config.portal_origins} if config.portal_origins else None
    handler = type("BoundGatewayHandler", (GatewayHandler,), {
        "router": Router(routes if routes is not None else tpl.routes(template)),
        "config": config,
        "jwt": config.authorizer(),
        "invoker": Invoker(config.lambda_endpoint, config.invoke_timeout),
        "cors": tpl.cors(template, params),
    })
    return Server((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.gateway", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", 3000)))
    parser.add_argument("--template", default=str(tpl.TEMPLATE_PATH))
    args = parser.parse_args(argv)
    config = GatewayConfig.from_env(os.environ)
    template = tpl.load(args.template)
    server = make_server(args.host, args.port, config, tpl.routes(template), template)
    print(f"gateway: http://{args.host}:{args.port} -> {config.lambda_endpoint} "
          f"({len(server.RequestHandlerClass.router.routes)} routes)", flush=True)  # type: ignore[attr-defined]
    return serve_until_interrupted(server)


if __name__ == "__main__":
    sys.exit(main())
