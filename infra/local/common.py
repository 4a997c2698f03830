"""Small pieces shared by the local stack's servers and scripts: env files and a JSON HTTP handler."""

from __future__ import annotations

import json
import secrets
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Mapping

from infra.local.template import REPO_ROOT

ENV_LOCAL = REPO_ROOT / ".env.local"
MAX_BODY = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit


def read_env_file(path: Path | str) -> dict[str, str]:
    """Parse KEY=VALUE lines; blank lines and `#` comments are ignored, surrounding quotes removed."""
    out: dict[str, str] = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key] = value
    return out


class Server(ThreadingHTTPServer):
    """Threaded HTTP server whose worker threads never keep the process alive."""

    daemon_threads = True
    allow_reuse_address = True


class JsonHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive) handler with helpers for bodies and JSON answers; logs one line per request."""

    protocol_version = "HTTP/1.1"
    server_version = "local"
    quiet = False  # subclasses or tests may silence the access log

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_bytes(self, status: int, body: bytes, content_type: str = "application/json",
                   headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, value: Any, content_type: str = "application/json",
                  headers: Mapping[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(value).encode(), content_type, headers)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if not self.quiet:
            sys.stderr.write(f"{self.server_version}: {self.address_string()} {format % args}\n")


ENV_EXAMPLE = REPO_ROOT / ".env.example"

# Secrets left empty in .env.example get fresh random values when .env.local is created.
_GENERATED = {
    # The local user pool's password policy wants 12+ characters with upper, lower case and a digit.
    "LOCAL_STAFF_PASSWORD": lambda: "Local-" + secrets.token_hex(8) + "-Aa1",
    "TWILIO_AUTH_TOKEN": lambda: secrets.token_hex(16),
    "TWILIO_ACCOUNT_SID": lambda: "AC" + secrets.token_hex(16),
    "CODE_HASH_KEY": lambda: secrets.token_hex(32),
}


def ensure_env_local(path: Path = ENV_LOCAL, example: Path = ENV_EXAMPLE) -> bool:
    """Create `path` from `example` with freshly generated secrets if it does not exist; True if created."""
    if path.exists():
        return False
    lines = []
    for line in example.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not value.strip() and key.strip() in _GENERATED:
            line = f"{key}={_GENERATED[key.strip()]()}"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return True


def ensure_generated(path: Path, key: str) -> None:
    """A generated setting that an older `path` lacks (or has empty) is appended with a fresh value."""
    if not path.exists() or read_env_file(path).get(key):
        return
    text = path.read_text(encoding="utf-8")
    with path.open("a", encoding="utf-8") as f:
        f.write(("" if not text or text.endswith("\n") else "\n") + f"{key}={_GENERATED[key]()}\n")


def serve_until_interrupted(server: ThreadingHTTPServer, poll_interval: float = 0.5) -> int:
    """Serves until Ctrl-C (or `make dev` stopping the group), then closes the socket; exit status 0."""
    try:
        server.serve_forever(poll_interval=poll_interval)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
