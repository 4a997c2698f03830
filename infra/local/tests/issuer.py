"""An OIDC issuer for the gateway's tests: its discovery document and JWKS on 127.0.0.1, and tokens
signed with its RSA key (RS256), or forged ones (HS256, ES256, another RSA key, a kid it never had)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from conftest import serve
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from infra.local.common import Server


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Issuer:
    """Serves /.well-known/openid-configuration and /jwks.json; `token()` signs claims as it would."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                issuer.fetches += 1
                if self.path == "/.well-known/openid-configuration":
                    doc: Any = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks.json"}
                elif self.path == "/jwks.json":
                    doc = {"keys": [issuer.jwk()]}
                else:
                    self.send_error(404)
                    return
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve(self.server)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def jwk(self) -> dict[str, str]:
        public = self.key.public_key().public_numbers()
        return {"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig", "n": _uint(public.n), "e": _uint(public.e)}

    def claims(self, audience: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"dealer_id": "demo-dealer", "sub": "staff-1", "iat": now, "exp": now + 300, "iss": self.url,
                  "aud": audience, **overrides}
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, audience: str, alg: str = "RS256", kid: str | None = None, key: Any = None,
              **overrides: Any) -> str:
        """A token of these claims; `alg` HS256 or ES256, another `key` or `kid` forge one."""
        header = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid or self.kid}).encode())
        payload = b64(json.dumps(self.claims(audience, **overrides)).encode())
        signing_input = f"{header}.{payload}".encode()
        if alg == "HS256":
            signature = hmac.new(b"a-shared-secret", signing_input, hashlib.sha256).digest()
        elif alg == "ES256":
            r, s = decode_dss_signature(ec.generate_private_key(ec.SECP256R1()).sign(
                signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            signature = (key or self.key).sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{b64(signature)}"
