"""Print a development portal JWT (HS256), as the dealer portal's identity provider would issue.

    python -m infra.local.token --dealer demo-dealer --user staff-1 [--role dealer-admin ...] [--ttl 3600]

Claims: dealer_id, sub (staff user id), iat, exp, roles (a list, when --role is given), and iss/aud when
PORTAL_JWT_ISSUER/PORTAL_JWT_AUDIENCE are set. Settings come from .env.local (created from .env.example if absent); variables already in the
environment win. The token is the last line of the output.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Mapping, Sequence

from infra.local import jwt
from infra.local.common import ENV_LOCAL, ensure_env_local, read_env_file


def make_token(dealer: str, user: str, ttl: int, env: Mapping[str, str], roles: Sequence[str] = ()) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"dealer_id": dealer, "sub": user, "iat": now, "exp": now + ttl}
    if roles:
        claims["roles"] = list(roles)
    if env.get("PORTAL_JWT_ISSUER"):
        claims["iss"] = env["PORTAL_JWT_ISSUER"]
    if env.get("PORTAL_JWT_AUDIENCE"):
        claims["aud"] = env["PORTAL_JWT_AUDIENCE"]
    return jwt.encode(claims, env["PORTAL_JWT_SECRET"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.token", description=__doc__.split("\n")[0])
    parser.add_argument("--dealer", required=True, help="dealer id (claim dealer_id)")
    parser.add_argument("--user", required=True, help="staff user id (claim sub)")
    parser.add_argument("--role", action="append", default=[], help="a role (claim roles; repeatable), "
                        "e.g. dealer-admin, which PUT /v1/dealer needs")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    if ensure_env_local():
        print(f"created {ENV_LOCAL} with fresh secrets", file=sys.stderr)
    env = {**read_env_file(ENV_LOCAL), **os.environ}
    if not env.get("PORTAL_JWT_SECRET"):
        print(f"token: PORTAL_JWT_SECRET is empty in {ENV_LOCAL}", file=sys.stderr)
        return 1
    roles = f", roles {', '.join(args.role)}" if args.role else ""
    print(f"# portal token for dealer {args.dealer}, user {args.user}{roles}, valid {args.ttl} s")
    print(make_token(args.dealer, args.user, args.ttl, env, args.role))
    return 0


if __name__ == "__main__":
    sys.exit(main())
