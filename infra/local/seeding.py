"""The stack's first requests through its HTTP API: waiting for GET /v1/health, then the demo dealer and
contacts of infra/local/seed.json."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping

from infra.local.supervisor import Children, DevError

SEED_FILE = Path(__file__).with_name("seed.json")


def http(method: str, url: str, body: Any = None, token: str | None = None,
         timeout: float = 40.0) -> tuple[int, str]:
    """A JSON request; returns (status, body text); status 0 when the server could not be reached."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local URL
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (OSError, urllib.error.URLError) as e:
        return 0, str(e)


def wait_for_health(base: str, children: Children, timeout: float) -> None:
    started = time.monotonic()
    last_report = started
    print(f"dev: waiting for {base}/v1/health (the first compile can take several minutes)", flush=True)
    while True:
        status, _ = http("GET", f"{base}/v1/health", timeout=35)
        if status == 200:
            print(f"dev: functions answer after {time.monotonic() - started:.0f} s", flush=True)
            return
        if (dead := children.dead()) is not None:
            raise DevError(f"{dead} while waiting for the functions")
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            raise DevError(f"GET /v1/health did not answer 200 within {timeout:.0f} s (last status {status}); "
                           "see the [lambda] lines above")
        if time.monotonic() - last_report >= 15:
            print(f"dev: still waiting for the functions ({elapsed:.0f} s, last status {status})", flush=True)
            last_report = time.monotonic()
        time.sleep(2)


def _expand(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), value)
    if isinstance(value, list):
        return [_expand(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, env) for k, v in value.items()}
    return value


def seed(base: str, settings: Mapping[str, str], token: str, retry_for: float = 300.0) -> None:
    """Create the demo dealer and contacts through the HTTP API; failures are warnings."""
    data = _expand(json.loads(SEED_FILE.read_text(encoding="utf-8")), settings)
    requests = [("PUT", "/v1/dealer", data["dealer"]["settings"])]
    requests += [("PUT", f"/v1/contacts/{c['id']}", {k: v for k, v in c.items() if k != "id"})
                 for c in data["contacts"]]
    deadline = time.monotonic() + retry_for
    for method, path, body in requests:
        while True:  # 502/503/0: a function still compiling (the Lambda service builds a missing one first)
            status, text = http(method, base + path, body, token)
            if status not in (0, 502, 503, 504) or time.monotonic() > deadline:
                break
            time.sleep(3)
        if 200 <= status < 300:
            print(f"dev: seeded {method} {path} -> {status}", flush=True)
        else:
            print(f"dev: warning: seeding {method} {path} -> {status} {text[:200]} "
                  "(is the function implemented yet?)", flush=True)
