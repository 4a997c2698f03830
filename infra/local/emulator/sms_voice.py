"""End User Messaging SMS behind the emulator: moto has no `pinpoint-sms-voice-v2`, so requests signed for
`sms-voice` are handed, as they came, to the fake carrier that plays it (`--sms-voice-url`). The middleware
sits inside the IAM enforcer: a function reaches the service only with what its policy allows, as in AWS.
Without a URL such a request is answered as AWS answers an operation it does not know."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Callable, Iterable

from infra.local import authz

_HOP_HEADERS = ("X-Amz-Target", "Content-Type", "Authorization", "X-Amz-Date")


class SmsVoiceProxy:
    """WSGI middleware: `sms-voice` requests to `url`, everything else to `app`."""

    def __init__(self, app: Callable[..., Iterable[bytes]], url: str | None, timeout: float = 60.0) -> None:
        self.app, self.url, self.timeout = app, url, timeout

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        who = authz.caller(environ)
        if who is None or who.service != "sms-voice":
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if not self.url:
            return _answer(start_response, 400, {"__type": "UnknownOperationException",
                                                 "Message": "End User Messaging is not emulated here (--sms-voice-url)"})
        headers = {h: environ[f"HTTP_{h.upper().replace('-', '_')}"] for h in _HOP_HEADERS
                   if f"HTTP_{h.upper().replace('-', '_')}" in environ}
        headers["Content-Type"] = environ.get("CONTENT_TYPE") or "application/x-amz-json-1.0"
        req = urllib.request.Request(self.url.rstrip("/") + "/", data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:  # noqa: S310 - the local fake
                status, answer, kept = res.status, res.read(), res.headers
        except urllib.error.HTTPError as e:
            status, answer, kept = e.code, e.read(), e.headers
        except OSError as e:  # the fake is down: the service is unavailable
            return _answer(start_response, 503, {"__type": "ServiceUnavailableException", "Message": str(e)})
        start_response(f"{status} {'OK' if status == 200 else 'Error'}",
                       [("Content-Type", kept.get("Content-Type", "application/x-amz-json-1.0")),
                        ("x-amzn-RequestId", kept.get("x-amzn-RequestId", "")),
                        ("Content-Length", str(len(answer)))])
        return [answer]


def _answer(start_response: Callable[..., Any], status: int, body: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(f"{status} Error", [("Content-Type", "application/x-amz-json-1.0"),
                                       ("Content-Length", str(len(data)))])
    return [data]
