"""Checks a portal token as API Gateway's HTTP API JWT authorizer does, against the issuer's keys.

The authorizer (AWS's developer guide, "Control access to HTTP APIs with JWT authorizers"):
1. takes the token from the identity source, alone or after `Bearer `;
2. decodes it, and checks its algorithm and signature with the public key named by its `kid` in the
   issuer's JWKS (`jwks_uri` of `{issuer}/.well-known/openid-configuration`). Only RSA algorithms
   are supported: an ES256 or HS256 token is refused;
3. checks `iss` (the configured issuer), `aud` or `client_id` (one of the configured audiences),
   `exp` (in the future), `nbf` and `iat` (not in the future).

Keys are fetched on first use and again when a token names a `kid` not among them (an issuer that
rotated its keys), at most once per REFETCH_SECONDS, so a flood of made-up kids costs nothing.

Locally the issuer of the stack's user pool is `https://cognito-idp.{region}.amazonaws.com/{pool}`:
as the AWS SDKs reach every AWS host at AWS_ENDPOINT_URL, so does this (`endpoint`), where moto
serves the pool's discovery document and JWKS.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

REFETCH_SECONDS = 60.0
# RSA algorithms and their hashes; API Gateway takes no other family.
_RSA = {"RS256": hashes.SHA256, "RS384": hashes.SHA384, "RS512": hashes.SHA512}


class InvalidToken(Exception):
    """Why the authorizer refuses a token (the caller answers 401 whatever the reason)."""


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int(text: str) -> int:
    return int.from_bytes(_unb64url(text), "big")


def fetch_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - the configured issuer
        return json.loads(resp.read())


def aws_host_to(endpoint: str | None) -> Callable[[str], str]:
    """Maps a URL on an AWS host (`*.amazonaws.com`) to `endpoint`, keeping its path; others as they are."""

    def rewrite(url: str) -> str:
        parts = urlsplit(url)
        if endpoint and (parts.hostname or "").endswith(".amazonaws.com"):
            return endpoint.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        return url

    return rewrite


class JwtAuthorizer:
    """One authorizer: its issuer and audiences, and the issuer's keys once fetched."""

    def __init__(self, issuer: str, audiences: Sequence[str], rewrite: Callable[[str], str] = lambda u: u,
                 fetch: Callable[[str], Any] = fetch_json, clock: Callable[[], float] = time.time) -> None:
        if not issuer or not any(audiences):
            raise ValueError("a JWT authorizer needs an issuer and at least one audience")
        self.issuer = issuer.rstrip("/")
        self.audiences = [a for a in audiences if a]
        self.rewrite = rewrite
        self.fetch = fetch
        self.clock = clock
        self._keys: dict[str, Mapping[str, Any]] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------------------------------- keys

    def _refresh(self) -> None:
        discovery = self.fetch(self.rewrite(f"{self.issuer}/.well-known/openid-configuration"))
        jwks_uri = discovery.get("jwks_uri") if isinstance(discovery, dict) else None
        if not isinstance(jwks_uri, str):
            raise InvalidToken("the issuer's discovery document names no jwks_uri")
        jwks = self.fetch(self.rewrite(jwks_uri))
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        self._keys = {k["kid"]: k for k in keys or [] if isinstance(k, dict) and isinstance(k.get("kid"), str)}

    def key(self, kid: str) -> Mapping[str, Any]:
        with self._lock:
            now = time.monotonic()
            stale = self._fetched_at is None or (kid not in self._keys and now - self._fetched_at >= REFETCH_SECONDS)
            if stale:
                self._fetched_at = now
                try:
                    self._refresh()
                except (OSError, ValueError) as e:
                    raise InvalidToken(f"cannot read the issuer's keys: {e}") from e
            found = self._keys.get(kid)
        if found is None:
            raise InvalidToken("no key of the issuer has this kid")
        return found

    # ------------------------------------------------------------------------------------- checking

    def claims(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims if the authorizer would let it through, else InvalidToken."""
        token = (authorization or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        try:
            header_b64, payload_b64, signature_b64 = token.split(".")
            header = json.loads(_unb64url(header_b64))
            claims = json.loads(_unb64url(payload_b64))
            signature = _unb64url(signature_b64)
        except (ValueError, TypeError) as e:
            raise InvalidToken("malformed token") from e
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise InvalidToken("malformed token")
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in _RSA:
            raise InvalidToken(f"unsupported algorithm {alg!r} (only RSA)")
        if not isinstance(kid, str):
            raise InvalidToken("no kid in the token's header")
        jwk = self.key(kid)
        if jwk.get("kty") != "RSA" or jwk.get("alg", alg) != alg or jwk.get("use", "sig") != "sig":
            raise InvalidToken("the key does not sign with this algorithm")
        try:
            public = rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
            public.verify(signature, f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(), _RSA[alg]())
        except (InvalidSignature, KeyError, ValueError, TypeError) as e:
            raise InvalidToken("bad signature") from e
        self.check_claims(claims)
        return claims

    def check_claims(self, claims: Mapping[str, Any]) -> None:
        now = self.clock()
        if claims.get("iss") != self.issuer:
            raise InvalidToken("wrong issuer")
        aud = claims.get("aud", claims.get("client_id"))
        audiences = aud if isinstance(aud, list) else [aud]
        if not any(a in self.audiences for a in audiences):
            raise InvalidToken("wrong audience")
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or now >= exp:
            raise InvalidToken("expired or without exp")
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is not None and (not isinstance(value, (int, float)) or now < value):
                raise InvalidToken(f"{name} is in the future")
