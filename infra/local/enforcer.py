"""The emulator's IAM gate: requests signed with a function's key are checked against its policy.

A WSGI middleware in front of moto. The bootstrap registers each function's identity (its access key
id, role and resolved policy statements) at `POST /_local/iam/identities` (`GET` lists them). A request
signed with a registered key is mapped to the IAM checks it needs (`authz.checks`); if any is refused it
never reaches moto: the caller gets AWS's AccessDenied answer for that protocol and the emulator's log
one line.

Requests signed with an administrator key pass unchecked: `ADMIN_KEY` (`test`, the key of the local
stack's own clients: the bootstrap, the bridge, `make dev`, the Python and Rust tests, .env.example)
and whatever the launcher adds with `admit` (`python -m infra.local.emulator` adds the
AWS_ACCESS_KEY_ID of its environment, which `make dev`'s bootstrap shares, and each `--admin-key`).
Any other key fails closed: the request never reaches moto and the caller gets AWS's answer to an
unknown access key id (`authz.unrecognized`: UnrecognizedClientException, SQS's InvalidClientTokenId),
as a function whose key was never registered (or was registered on another emulator) would get from
AWS. Unsigned requests pass (moto's /moto-api, the emulator's /_local endpoints; the SDKs sign every
call).
"""

from __future__ import annotations

import io
import json
import sys
import threading
from typing import Any, Callable, Iterable

from infra.local import authz
from infra.local.iam import ALLOW, Identity

REGISTRY_PATH = "/_local/iam/identities"
ACCOUNT = "123456789012"  # moto's default account

ADMIN_KEY = "test"  # the local stack's administrator access key id (its secret is `test` too; never checked)

_IDENTITIES: dict[str, Identity] = {}
_ADMINS: set[str] = {ADMIN_KEY}
_LOCK = threading.Lock()


def admit(keys: Iterable[str | None]) -> None:
    """Make these access key ids administrators: their requests pass unchecked (empty ones are ignored)."""
    with _LOCK:
        _ADMINS.update(k for k in keys if k)


def is_admin(access_key_id: str) -> bool:
    with _LOCK:
        return access_key_id in _ADMINS


def admins() -> list[str]:
    with _LOCK:
        return sorted(_ADMINS)


def register(identities: Iterable[Identity]) -> int:
    with _LOCK:
        count = 0
        for identity in identities:
            _IDENTITIES[identity.access_key_id] = identity
            count += 1
        return count


def identity(access_key_id: str) -> Identity | None:
    with _LOCK:
        return _IDENTITIES.get(access_key_id)


def export() -> list[dict[str, Any]]:
    """The registered identities, as JSON (kept in the emulator's state file across restarts)."""
    with _LOCK:
        return [i.to_json() for i in _IDENTITIES.values()]


def load(docs: Iterable[dict[str, Any]]) -> int:
    return register(Identity.from_json(d) for d in docs)


def _secret_arn(region: str) -> Callable[[str], str | None]:
    def lookup(name: str) -> str | None:
        from moto.backends import get_backend

        secret = get_backend("secretsmanager")[ACCOUNT][region].secrets.get(name)
        return secret.arn if secret is not None else None

    return lookup


def _log(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class IamEnforcer:
    """WSGI middleware: the registry endpoint, and the policy check of function-signed requests."""

    def __init__(self, app: Callable[..., Iterable[bytes]], log: Callable[[str], None] = _log) -> None:
        self.app = app
        self.log = log

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == REGISTRY_PATH:
            return self.registry(environ, start_response)
        who = authz.caller(environ)
        if who is None or is_admin(who.access_key_id):
            return self.app(environ, start_response)
        found = identity(who.access_key_id)
        body = _read_body(environ)
        call = authz.Call(service=who.service, region=who.region, account=ACCOUNT,
                          target=environ.get("HTTP_X_AMZ_TARGET", ""), body=body,
                          path=environ.get("PATH_INFO", "/"), query=environ.get("QUERY_STRING", ""),
                          content_type=environ.get("CONTENT_TYPE", ""), secret_arn=_secret_arn(who.region))
        if found is None:
            self.log(f"emulator: iam: refused unknown access key {who.access_key_id}: {who.service} "
                     f"{call.operation_and_params()[0] or environ.get('REQUEST_METHOD', '?')} "
                     "(neither a registered function identity nor an administrator key)")
            return _answer(start_response, *authz.unrecognized(call))
        for check in authz.checks(call):
            decision = found.decide(check.action, check.resource)
            if decision != ALLOW:
                message = found.denial(check.action, check.resource, decision)
                self.log(f"emulator: iam: denied {found.session_name}: {check.action} on {check.resource} "
                         f"({decision}, role {found.role_arn.rsplit('/', 1)[-1]})")
                return _answer(start_response, *authz.denial(call, message))
        return self.app(environ, start_response)

    @staticmethod
    def registry(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                docs = json.loads(_read_body(environ) or b"{}")["identities"]
                answer: dict[str, Any] = {"registered": load(docs)}
                status = "200 OK"
            except (ValueError, KeyError, TypeError) as e:
                answer, status = {"message": f"bad identities document: {e}"}, "400 Bad Request"
        else:
            answer, status = {"identities": export()}, "200 OK"
        payload = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


def _answer(start_response: Callable[..., Any], status: int, headers: list[tuple[str, str]],
            payload: bytes) -> Iterable[bytes]:
    start_response(f"{status} {'Forbidden' if status == 403 else 'Bad Request'}",
                   headers + [("Content-Length", str(len(payload)))])
    return [payload]


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back for moto."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    body = stream.read(int(length)) if length else stream.read() if environ.get("wsgi.input_terminated") else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body
