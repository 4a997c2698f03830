"""HS256 JSON Web Tokens for the development portal identity (stdlib only)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Mapping


class InvalidToken(Exception):
    """The token is malformed, badly signed, expired, not yet valid, or for another issuer/audience."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(claims: Mapping[str, Any], secret: str) -> str:
    """Sign `claims` with HS256."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def decode(token: str, secret: str, issuer: str | None = None, audience: str | None = None,
           now: float | None = None) -> dict[str, Any]:
    """Verify an HS256 token and return its claims (checks signature, exp, nbf, and iss/aud if given)."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_unb64url(header_b64))
        claims = json.loads(_unb64url(payload_b64))
        signature = _unb64url(signature_b64)
    except (ValueError, TypeError) as e:
        raise InvalidToken("malformed token") from e
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        raise InvalidToken("unsupported token algorithm")
    expected = hmac.new(secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise InvalidToken("bad signature")
    now = time.time() if now is None else now
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, (int, float)) or now >= exp:
        raise InvalidToken("expired or without exp")
    if nbf is not None and (not isinstance(nbf, (int, float)) or now < nbf):
        raise InvalidToken("not yet valid")
    if issuer and claims.get("iss") != issuer:
        raise InvalidToken("wrong issuer")
    if audience:
        aud = claims.get("aud")
        if audience not in (aud if isinstance(aud, list) else [aud]):
            raise InvalidToken("wrong audience")
    return claims
