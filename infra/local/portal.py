"""The reference portal's web server for `make dev`: the static files of portal/, with config.js
naming the API this stack's gateway answers on.

    python -m infra.local.portal [--port 8080] [--api-base http://127.0.0.1:3000]

Only GET and HEAD of files under portal/ (no listing, no path outside it). Every answer carries a
Content-Security-Policy that lets the page run only its own scripts and call only the API.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from infra.local.common import JsonHandler, Server
from infra.local.template import REPO_ROOT

PORTAL_DIR = REPO_ROOT / "portal"
TYPES = {".js": "text/javascript; charset=utf-8", ".html": "text/html; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}


def config_js(api_base: str) -> bytes:
    """What portal/config.js says, with this stack's API address."""
    return (f"// Served by infra.local.portal for this stack.\n"
            f"export const API_BASE = {json.dumps(api_base.rstrip('/'))};\n").encode()


def make_handler(root: Path, api_base: str) -> type[JsonHandler]:
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
                self.send_bytes(200, config_js(api_base), TYPES[".js"], headers)
                return
            file = (root / path.lstrip("/")).resolve()
            if root.resolve() not in file.parents or not file.is_file():
                self.send_bytes(404, b"not found\n", "text/plain; charset=utf-8", headers)
                return
            kind = TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            self.send_bytes(200, file.read_bytes(), kind, headers)

        do_HEAD = do_GET

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
    args = parser.parse_args(argv)
    server = Server((args.host, args.port), make_handler(Path(args.root), args.api_base))
    print(f"portal: serving {args.root} on http://{args.host}:{args.port}/ (API {args.api_base})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
