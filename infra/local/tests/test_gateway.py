"""The gateway routes the template's HTTP API, authorizes like API Gateway and speaks payload v2.0."""

from __future__ import annotations

import base64
import http.client
import json
import time
from typing import Any, Iterator

import pytest
from conftest import FakeLambda, serve

from cryptography.hazmat.primitives.asymmetric import rsa
from issuer import Issuer

from infra.local import oidc
from infra.local.gateway import GatewayConfig, make_server

# The identity provider: an OIDC issuer on 127.0.0.1 (discovery document, JWKS, RS256 tokens).
IDP = Issuer()
ISSUER = IDP.url
AUDIENCE = "texting-portal"


def token(**overrides: Any) -> str:
    return IDP.token(AUDIENCE, **overrides)


@pytest.fixture
def gateway(fake_lambda: FakeLambda) -> Iterator[tuple[http.client.HTTPConnection, FakeLambda]]:
    config = GatewayConfig(issuer=ISSUER, audiences=[AUDIENCE], lambda_endpoint=fake_lambda.endpoint,
                           invoke_timeout=5)
    server = make_server("127.0.0.1", 0, config)
    serve(server)
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    yield conn, fake_lambda
    conn.close()
    server.shutdown()
    server.server_close()


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    headers: dict[str, str] = {}
    for k, v in resp.getheaders():  # repeated headers joined, as a client would fold them
        headers[k.lower()] = f"{headers[k.lower()]}, {v}" if k.lower() in headers else v
    return resp.status, headers, resp.read()


def test_authorized_request_arrives_as_a_v2_event(gateway: tuple[http.client.HTTPConnection, FakeLambda]) -> None:
    conn, fake = gateway
    status, _, _ = request(conn, "POST", "/v1/contacts/C%2D1/authorizations/marketing/verify?a=1&a=2&b=x%20y",
                           b'{"code":"123456"}', {"Authorization": f"Bearer {token()}",
                                                  "Content-Type": "application/json",
                                                  "Cookie": "s=1; t=2", "X-Multi": "v"})
    assert status == 200
    ((function, event),) = fake.calls
    assert function == "authorize"
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /v1/contacts/{contactId}/authorizations/{category}/verify"
    assert event["rawPath"] == "/v1/contacts/C%2D1/authorizations/marketing/verify"
    assert event["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert event["pathParameters"] == {"contactId": "C-1", "category": "marketing"}
    assert event["cookies"] == ["s=1", "t=2"] and "cookie" not in event["headers"]
    assert event["headers"]["x-multi"] == "v" and event["headers"]["x-forwarded-proto"] == "http"
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert (event["body"], event["isBase64Encoded"]) == ('{"code":"123456"}', False)
    ctx = event["requestContext"]
    assert ctx["http"]["method"] == "POST" and ctx["http"]["sourceIp"] == "127.0.0.1"
    assert ctx["stage"] == "$default" and ctx["routeKey"] == event["routeKey"]
    assert ctx["domainName"].startswith("127.0.0.1") and isinstance(ctx["timeEpoch"], int)
    claims = ctx["authorizer"]["jwt"]["claims"]
    assert claims["dealer_id"] == "demo-dealer" and claims["sub"] == "staff-1"
    assert all(isinstance(v, str) for v in claims.values()), "API Gateway hands claims over as strings"


@pytest.mark.parametrize("authorization", [
    lambda: None,
    lambda: "Bearer ",
    lambda: f"Bearer {token(exp=int(time.time()) - 10)}",
    lambda: f"Bearer {token(exp=None)}",
    lambda: f"Bearer {token(aud='someone-else')}",
    lambda: f"Bearer {token(iss='https://evil.example')}",
    lambda: f"Bearer {token(nbf=int(time.time()) + 600)}",
    lambda: f"Bearer {token(iat=int(time.time()) + 600)}",
    # Signed with a shared secret, or with an elliptic curve: API Gateway takes RSA only.
    lambda: f"Bearer {token(alg='HS256')}",
    lambda: f"Bearer {token(alg='ES256')}",
    # Another RSA key under the issuer's kid, and a kid the issuer never had.
    lambda: f"Bearer {token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))}",
    lambda: f"Bearer {token(kid='made-up')}",
    lambda: "Bearer not.a.jwt",
], ids=["none", "empty", "expired", "no-exp", "wrong-audience", "wrong-issuer", "not-yet-valid", "issued-later",
        "hs256", "es256", "forged-signature", "unknown-kid", "garbage"])
def test_bad_or_missing_token_is_401_and_the_function_is_not_called(
        gateway: tuple[http.client.HTTPConnection, FakeLambda], authorization: Any) -> None:
    conn, fake = gateway
    value = authorization()
    headers = {"Authorization": value} if value is not None else {}
    status, hdrs, body = request(conn, "GET", "/v1/dealer", headers=headers)
    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    assert fake.calls == []


def test_a_token_of_the_client_id_passes_and_a_bare_token_is_read_too(
        gateway: tuple[http.client.HTTPConnection, FakeLambda]) -> None:
    """An access token names its client in client_id instead of aud; the identity source may hold the
    token without `Bearer`."""
    conn, fake = gateway
    assert request(conn, "GET", "/v1/dealer", headers={
        "Authorization": f"Bearer {token(aud=None, client_id=AUDIENCE)}"})[0] == 200
    assert request(conn, "GET", "/v1/dealer", headers={"Authorization": token()})[0] == 200
    assert len(fake.calls) == 2


def test_keys_are_fetched_once_and_again_for_a_rotated_kid() -> None:
    """The JWKS is read on first use and re-read when a token names a kid not in it (the issuer rotated
    its keys), at most once a minute however many unknown kids arrive."""
    idp = Issuer()
    try:
        authorizer = oidc.JwtAuthorizer(idp.url, [AUDIENCE])
        for _ in range(3):
            authorizer.claims(idp.token(AUDIENCE))
        assert idp.fetches == 2  # the discovery document and the JWKS, once
        idp.key, idp.kid = rsa.generate_private_key(public_exponent=65537, key_size=2048), "test-key-2"
        authorizer._fetched_at = time.monotonic() - oidc.REFETCH_SECONDS  # a minute later
        assert authorizer.claims(idp.token(AUDIENCE))["sub"] == "staff-1"
        assert idp.fetches == 4
        for kid in ("made-up-1", "made-up-2", "made-up-3"):
            with pytest.raises(oidc.InvalidToken):
                authorizer.claims(idp.token(AUDIENCE, kid=kid))
        assert idp.fetches == 4, "unknown kids within the minute fetch nothing"
    finally:
        idp.close()


def test_carrier_routes_need_no_token_and_form_bodies_are_base64(
        gateway: tuple[http.client.HTTPConnection, FakeLambda]) -> None:
    conn, fake = gateway
    status, _, _ = request(conn, "POST", "/v1/carrier/twilio/inbound", b"From=%2B1&Body=Agree",
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    ((function, event),) = fake.calls
    assert function == "inbound" and "authorizer" not in event["requestContext"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"From=%2B1&Body=Agree"


NOT_FOUND = (404, "application/json", b'{"message":"Not Found"}')


def not_found(answer: tuple[int, dict[str, str], bytes]) -> bool:
    status, headers, body = answer
    return (status, headers.get("content-type"), body) == NOT_FOUND and headers["content-length"] == str(len(body))


def test_a_request_no_route_matches_is_404_not_found(gateway: tuple[http.client.HTTPConnection, FakeLambda]) -> None:
    """As an HTTP API answers: an unknown path, or a method the path has no route for, is 404
    {"message":"Not Found"} (no 405, no Allow), before the authorizer and without calling a function."""
    conn, fake = gateway
    assert not_found(request(conn, "GET", "/v1/nothing-here"))
    for method in ("PATCH", "POST", "DELETE"):  # /v1/dealer has GET and PUT routes only
        answer = request(conn, method, "/v1/dealer", b"{}", headers={"Authorization": f"Bearer {token()}"})
        assert not_found(answer) and "allow" not in answer[1], method
    assert not_found(request(conn, "PATCH", "/v1/dealer"))  # no token: still 404, not 401
    status, headers, body = request(conn, "HEAD", "/v1/nothing-here")
    assert (status, headers["content-type"], body) == (404, "application/json", b"")
    assert fake.calls == []
    fake.respond = lambda fn, ev: (200, {"statusCode": 200, "body": "{}"}, {})
    assert request(conn, "GET", "/v1/health")[0] == 200, "the connection is still usable"


@pytest.mark.parametrize("method, path", [
    ("TRACE", "/v1/health"), ("TRACE", "/"), ("CONNECT", "/v1/dealer"), ("CONNECT", "127.0.0.1:443"),
    ("OPTIONS", "/v1/health"), ("PROPFIND", "/v1/dealer"), ("PURGE", "/v1/nothing-here"),
])
def test_every_method_goes_through_the_routing(gateway: tuple[http.client.HTTPConnection, FakeLambda],
                                               method: str, path: str) -> None:
    """http.server's 501 HTML page for a method without a handler never shows: TRACE, CONNECT, OPTIONS
    without CORS and extension methods get the routing's answer, on a connection that stays usable."""
    conn, fake = gateway
    answer = request(conn, method, path, b"x", {"Content-Type": "text/plain"})
    assert not_found(answer), answer
    assert fake.calls == []
    fake.respond = lambda fn, ev: (200, {"statusCode": 200, "body": "{}"}, {})
    assert request(conn, "GET", "/v1/health")[0] == 200 and len(fake.calls) == 1


def test_response_translation(gateway: tuple[http.client.HTTPConnection, FakeLambda]) -> None:
    conn, fake = gateway
    fake.respond = lambda fn, ev: (200, {
        "statusCode": 202, "headers": {"content-type": "application/problem+json", "x-one": "1"},
        "multiValueHeaders": {"x-many": ["a", "b"]}, "cookies": ["c=1; Path=/"],
        "body": base64.b64encode(b'{"ok":true}').decode(), "isBase64Encoded": True}, {})
    status, headers, body = request(conn, "POST", "/v1/messages", b"{}",
                                    {"Authorization": f"Bearer {token()}", "Content-Type": "application/json"})
    assert (status, body) == (202, b'{"ok":true}')
    assert headers["content-type"] == "application/problem+json" and headers["x-one"] == "1"
    assert headers["set-cookie"] == "c=1; Path=/" and headers["x-many"] == "a, b"
    assert headers["content-length"] == str(len(body))
    # keep-alive: the same connection serves the next request
    fake.respond = lambda fn, ev: (200, {"hello": "world"}, {})
    status, headers, body = request(conn, "GET", "/v1/health")
    assert (status, json.loads(body), headers["content-type"]) == (200, {"hello": "world"}, "application/json")


def test_function_error_is_500(gateway: tuple[http.client.HTTPConnection, FakeLambda]) -> None:
    conn, fake = gateway
    fake.respond = lambda fn, ev: (200, {"errorType": "Panic", "errorMessage": "boom"},
                                   {"X-Amz-Function-Error": "Unhandled"})
    status, _, body = request(conn, "GET", "/v1/health")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    fake.respond = lambda fn, ev: (500, {"errorType": "x", "errorMessage": "y"}, {})
    assert request(conn, "GET", "/v1/health")[0] == 500


def test_body_over_6_mb_is_413(gateway: tuple[http.client.HTTPConnection, FakeLambda]) -> None:
    conn, fake = gateway
    status, _, _ = request(conn, "POST", "/v1/carrier/twilio/inbound", b"x" * (6 * 1024 * 1024 + 1),
                           {"Content-Type": "application/octet-stream"})
    assert status == 413 and fake.calls == []


# --------------------------------------------------------------------------------------------- CORS

PORTAL = "http://127.0.0.1:8080"


@pytest.fixture
def cors_gateway(fake_lambda: FakeLambda) -> Iterator[tuple[http.client.HTTPConnection, FakeLambda]]:
    config = GatewayConfig(issuer=ISSUER, audiences=[AUDIENCE], lambda_endpoint=fake_lambda.endpoint,
                           invoke_timeout=5, portal_origins=f"{PORTAL},http://localhost:8080")
    server = make_server("127.0.0.1", 0, config)
    serve(server)
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    yield conn, fake_lambda
    conn.close()
    server.shutdown()
    server.server_close()


def test_a_preflight_from_the_portal_is_answered_without_token_or_function(
        cors_gateway: tuple[http.client.HTTPConnection, FakeLambda]) -> None:
    conn, fake = cors_gateway
    status, headers, body = request(conn, "OPTIONS", "/v1/messages", headers={
        "Origin": PORTAL, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"})
    assert status == 204 and body == b""
    assert headers["access-control-allow-origin"] == PORTAL
    assert set(headers["access-control-allow-methods"].split(",")) >= {"GET", "POST", "PUT", "DELETE"}
    assert set(headers["access-control-allow-headers"].split(",")) >= {"authorization", "content-type",
                                                                      "idempotency-key"}
    assert headers["access-control-max-age"] == "600"
    assert fake.calls == []


def test_another_origin_gets_no_cors_headers(cors_gateway: tuple[http.client.HTTPConnection, FakeLambda]) -> None:
    conn, fake = cors_gateway
    status, headers, _ = request(conn, "OPTIONS", "/v1/messages", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert status == 204
    assert not any(k.startswith("access-control-") for k in headers)
    fake.respond = lambda fn, ev: (200, {"statusCode": 200, "headers": {"access-control-allow-origin": "*"},
                                         "body": "{}"}, {})
    status, headers, _ = request(conn, "GET", "/v1/templates", headers={
        "Origin": "https://evil.example", "Authorization": f"Bearer {token()}"})
    assert status == 200
    assert not any(k.startswith("access-control-") for k in headers), "the function's own CORS headers are dropped"


def test_an_allowed_origin_gets_cors_headers_on_the_real_answer(
        cors_gateway: tuple[http.client.HTTPConnection, FakeLambda]) -> None:
    conn, fake = cors_gateway
    status, headers, _ = request(conn, "GET", "/v1/templates", headers={
        "Origin": "http://localhost:8080", "Authorization": f"Bearer {token()}"})
    assert status == 200
    assert headers["access-control-allow-origin"] == "http://localhost:8080"
    assert "x-next-cursor" in headers["access-control-expose-headers"].split(",")
    # Even a 401 carries them, so the portal can read why.
    status, headers, _ = request(conn, "GET", "/v1/templates", headers={"Origin": PORTAL})
    assert status == 401 and headers.get("access-control-allow-origin") == PORTAL


def test_without_portal_origins_there_is_no_cors(gateway: tuple[http.client.HTTPConnection, FakeLambda]) -> None:
    conn, _ = gateway
    answer = request(conn, "OPTIONS", "/v1/messages", headers={
        "Origin": PORTAL, "Access-Control-Request-Method": "POST"})
    assert not_found(answer) and "access-control-allow-origin" not in answer[1]


def test_a_request_no_route_matches_from_the_portal_is_404_with_cors_headers(
        cors_gateway: tuple[http.client.HTTPConnection, FakeLambda]) -> None:
    """The preflight stays CORS's answer (any method, any path); the real request is then a readable 404."""
    conn, fake = cors_gateway
    status, headers, _ = request(conn, "OPTIONS", "/v1/nothing-here", headers={
        "Origin": PORTAL, "Access-Control-Request-Method": "PATCH"})
    assert status == 204 and headers["access-control-allow-origin"] == PORTAL
    for method, path in (("PATCH", "/v1/dealer"), ("TRACE", "/v1/nothing-here"), ("OPTIONS", "/v1/dealer")):
        answer = request(conn, method, path, headers={"Origin": PORTAL, "Authorization": f"Bearer {token()}"})
        assert not_found(answer) and answer[1]["access-control-allow-origin"] == PORTAL, method
    assert fake.calls == []
