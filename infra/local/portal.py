"""The reference portal's web server for `make dev`: the static files of portal/, with config.js
naming the API this stack's gateway answers on and the user pool's app client staff sign in with.

    python -m infra.local.portal [--port 8080] [--api-base http://127.0.0.1:3000]
        [--client-id ID --identity-upstream http://127.0.0.1:4566]

GET and HEAD of files under portal/ (no listing, no path outside it). Every answer carries a
Content-Security-Policy that lets the page run only its own scripts and call only the API and itself.

Sign-in: in AWS the page calls Cognito's public endpoint (cognito-idp.<region>.amazonaws.com, which
answers browsers' CORS requests). Locally the pool is moto's, behind the emulator, so this server plays
that endpoint at POST /_identity: it passes the two calls a sign-in makes (InitiateAuth and
RespondToAuthChallenge, which need no AWS credentials) to the emulator and nothing else.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

from infra.local.common import JsonHandler, Server, serve_until_interrupted
from infra.local.template import REPO_ROOT

PORTAL_DIR = REPO_ROOT / "portal"
TYPES = {".js": "text/javascript; charset=utf-8", ".html": "text/html; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}


IDENTITY_PATH = "/_identity"
# The unauthenticated calls of a sign-in: the only ones passed on to the emulator.
IDENTITY_TARGETS = {"AWSCognitoIdentityProviderService.InitiateAuth",
                    "AWSCognitoIdentityProviderService.RespondToAuthChallenge"}
MAX_IDENTITY_BODY = 16 * 1024


def config_js(api_base: str, client_id: str = "") -> bytes:
    """What portal/config.js says, with this stack's API address and app client."""
    return (f"// Served by infra.local.portal for this stack.\n"
            f"export const API_BASE = {json.dumps(api_base.rstrip('/'))};\n"
            f"export const IDENTITY_ENDPOINT = {json.dumps(IDENTITY_PATH)};\n"
            f"export const CLIENT_ID = {json.dumps(client_id)};\n"
            f"export const USER_CLAIM = \"cognito:username\";\n").encode()


def make_handler(root: Path, api_base: str, client_id: str = "",
                 identity_upstream: str | None = None) -> type[JsonHandler]:
    csp = (f"default-src 'self'; connect-src 'self' {api_base.rstrip('/')}; img-src 'self' data:; "
           "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

    class Handler(JsonHandler):
        server_version = "portal"

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            path = unquote(urlsplit(self.path).path)
            if path == "/":
                path = "/index.html"
            headers = {"Content-Security-Policy": csp, "Cache-Control": "no-store",
                       "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
            if path == "/config.js":
                self.send_bytes(200, config_js(api_base, client_id), TYPES[".js"], headers)
                return
            file = (root / path.lstrip("/")).resolve()
            if root.resolve() not in file.parents or not file.is_file():
                self.send_bytes(404, b"not found\n", "text/plain; charset=utf-8", headers)
                return
            kind = TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            self.send_bytes(200, file.read_bytes(), kind, headers)

        do_HEAD = do_GET

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            """Cognito's public endpoint, for the two calls of a sign-in (see the module's docstring)."""
            target = self.headers.get("X-Amz-Target", "")
            length = int(self.headers.get("Content-Length") or 0)
            if urlsplit(self.path).path != IDENTITY_PATH or not identity_upstream:
                self.send_bytes(404, b"not found\n", "text/plain; charset=utf-8")
                return
            if target not in IDENTITY_TARGETS or not 0 < length <= MAX_IDENTITY_BODY:
                self.send_json(400, {"__type": "InvalidParameterException",
                                     "message": "only a sign-in (InitiateAuth, RespondToAuthChallenge) is passed on"},
                               "application/x-amz-json-1.1")
                return
            body = self.rfile.read(length)
            req = urllib.request.Request(identity_upstream.rstrip("/") + "/", data=body, method="POST", headers={
                "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the emulator
                    status, answer = resp.status, resp.read()
            except urllib.error.HTTPError as e:
                status, answer = e.code, e.read()
            except OSError:
                status, answer = 503, json.dumps({"__type": "ServiceUnavailable",
                                                  "message": "the emulator does not answer"}).encode()
            self.send_bytes(status, answer, "application/x-amz-json-1.1", {"Cache-Control": "no-store"})

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            if len(args) > 1 and str(args[1]).startswith(("4", "5")):
                super().log_message(format, *args)

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.portal", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--api-base", default="http://127.0.0.1:3000")
    parser.add_argument("--root", default=str(PORTAL_DIR))
    parser.add_argument("--client-id", default="", help="the user pool's app client for the portal")
    parser.add_argument("--identity-upstream", help="the emulator serving the user pool (sign-in calls go there)")
    args = parser.parse_args(argv)
    server = Server((args.host, args.port), make_handler(Path(args.root), args.api_base, args.client_id,
                                                         args.identity_upstream))
    print(f"portal: serving {args.root} on http://{args.host}:{args.port}/ (API {args.api_base})", flush=True)
    return serve_until_interrupted(server, poll_interval=0.2)


if __name__ == "__main__":
    sys.exit(main())
