"""`python -m infra.local.portal`: portal/ as static files, config.js naming this stack's API, nothing
outside portal/, and a Content-Security-Policy that lets the page call only its own origin and the API."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from conftest import free_port, serve

from infra.local import dev
from infra.local.common import JsonHandler, Server
from infra.local.portal import PORTAL_DIR, make_handler

API = "http://127.0.0.1:3999"


@pytest.fixture
def portal() -> Iterator[str]:
    server = Server(("127.0.0.1", 0), make_handler(PORTAL_DIR, API))
    serve(server)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - local
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_the_page_and_its_modules_are_served_with_their_types_and_policy(portal: str) -> None:
    status, headers, body = get(portal + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<script type="module" src="app.js">' in body
    assert "connect-src 'self' " + API in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    for module in sorted(p.name for p in PORTAL_DIR.glob("*.js")):
        status, headers, _ = get(f"{portal}/{module}")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript"), module


def test_config_names_this_stacks_api(portal: str) -> None:
    status, _, body = get(portal + "/config.js")
    assert status == 200
    assert f'export const API_BASE = "{API}";' in body.decode()
    assert 'export const API_BASE = "http://127.0.0.1:3000";' in (PORTAL_DIR / "config.js").read_text()


@pytest.mark.parametrize("path", ["/../Makefile", "/%2e%2e/.env.local", "/nothing.js", "/vendor"])
def test_nothing_outside_the_portal_nor_missing_is_served(portal: str, path: str) -> None:
    status, _, _ = get(portal + path)
    assert status == 404


def test_make_dev_allows_the_portals_origin_and_prints_a_signed_in_link(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("PORTAL_ORIGINS=http://127.0.0.1:8080\n")
    ports = dev.Ports(portal=free_port())
    settings = dev.local_settings(env_file, ports, example=env_file)
    assert settings["PORTAL_ORIGINS"] == f"http://127.0.0.1:8080,http://127.0.0.1:{ports.portal}"
    assert dev.local_settings(env_file, dev.Ports(), example=env_file)["PORTAL_ORIGINS"] == "http://127.0.0.1:8080"
    assert dev.portal_link(ports, "T.O.K") == f"http://127.0.0.1:{ports.portal}/#account=A-1001&token=T.O.K"


def test_the_sign_in_passage_takes_only_the_two_calls_of_a_sign_in() -> None:
    """POST /_identity plays Cognito's public endpoint for InitiateAuth and RespondToAuthChallenge only:
    an administrator's call (which needs AWS credentials in AWS) is refused before the emulator sees it."""
    seen: list[str] = []

    class Upstream(JsonHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            seen.append(self.headers.get("X-Amz-Target", ""))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_json(200, {"AuthenticationResult": {"IdToken": "t"}}, "application/x-amz-json-1.1")

    upstream = Server(("127.0.0.1", 0), Upstream)
    serve(upstream)
    server = Server(("127.0.0.1", 0), make_handler(PORTAL_DIR, API, "client-1",
                                                    f"http://127.0.0.1:{upstream.server_address[1]}"))
    serve(server)
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def post(target: str, path: str = "/_identity") -> int:
        req = urllib.request.Request(base + path, data=b'{"ClientId":"client-1"}', method="POST",
                                     headers={"X-Amz-Target": f"AWSCognitoIdentityProviderService.{target}",
                                              "Content-Type": "application/x-amz-json-1.1"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - local
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    try:
        assert post("InitiateAuth") == 200 and post("RespondToAuthChallenge") == 200
        for admin in ("AdminCreateUser", "AdminSetUserPassword", "AdminAddUserToGroup", "ListUsers"):
            assert post(admin) == 400, admin
        assert post("InitiateAuth", "/somewhere-else") == 404
        assert seen == ["AWSCognitoIdentityProviderService.InitiateAuth",
                        "AWSCognitoIdentityProviderService.RespondToAuthChallenge"]
        _, _, body = get(base + "/config.js")
        assert 'export const CLIENT_ID = "client-1";' in body.decode()
        assert 'export const IDENTITY_ENDPOINT = "/_identity";' in body.decode()
    finally:
        for s in (server, upstream):
            s.shutdown()
            s.server_close()
