"""Sign a staff user in to the local stack's user pool and print their ID token (the portal's token).

    python -m infra.local.token --dealer demo-dealer --user staff-1 [--role dealer-admin ...]
        [--stack texting-dev] [--endpoint http://127.0.0.1:4566]

The local stack's Cognito user pool (moto's, created by the bootstrap from infra/template.yaml) plays the
identity provider. The user is created when missing, with the dealer in `custom:dealer_id`; an existing
user is moved to that dealer and put in exactly the groups named by --role (none: plain staff), so the
command gives any dealer's staff a token whatever ran before. Then it signs in (USER_PASSWORD_AUTH with
the portal's app client) with the local staff password (LOCAL_STAFF_PASSWORD in .env.local, which the
portal's sign-in screen takes too) and prints the ID token, RS256-signed by the pool: the last line.

The pool and its client come from the stack's env file (.local/<stack>.env, written by `make dev`); the
emulator from AWS_ENDPOINT_URL in .env.local unless --endpoint says otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.local.common import ENV_LOCAL, ensure_env_local, ensure_generated, read_env_file
from infra.local.template import REPO_ROOT

DEALER_ATTRIBUTE = "custom:dealer_id"


class TokenError(Exception):
    """Why no token could be had, in one line."""


def stack_env_file(stack: str) -> Path:
    return REPO_ROOT / ".local" / f"{stack}.env"


def cognito_client(endpoint: str, settings: Mapping[str, str]) -> Any:
    return boto3.session.Session(
        aws_access_key_id=settings.get("AWS_ACCESS_KEY_ID") or "test",
        aws_secret_access_key=settings.get("AWS_SECRET_ACCESS_KEY") or "test",
        region_name=settings.get("AWS_REGION") or "us-east-1",
    ).client("cognito-idp", endpoint_url=endpoint)


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def ensure_user(cognito: Any, pool_id: str, dealer: str, user: str, roles: Sequence[str], password: str) -> None:
    """The user exists, works for `dealer`, is in exactly the groups `roles`, and signs in with `password`."""
    try:
        found = cognito.admin_get_user(UserPoolId=pool_id, Username=user)
        attributes = {a["Name"]: a["Value"] for a in found.get("UserAttributes", [])}
        if attributes.get(DEALER_ATTRIBUTE) != dealer:
            cognito.admin_update_user_attributes(UserPoolId=pool_id, Username=user,
                                                 UserAttributes=[{"Name": DEALER_ATTRIBUTE, "Value": dealer}])
    except ClientError as e:
        if _code(e) != "UserNotFoundException":
            raise
        try:
            cognito.admin_create_user(UserPoolId=pool_id, Username=user, MessageAction="SUPPRESS",
                                      UserAttributes=[{"Name": DEALER_ATTRIBUTE, "Value": dealer}])
        except ClientError as again:  # another `make token` created them a moment ago
            if _code(again) != "UsernameExistsException":
                raise
            cognito.admin_update_user_attributes(UserPoolId=pool_id, Username=user,
                                                 UserAttributes=[{"Name": DEALER_ATTRIBUTE, "Value": dealer}])
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=user, Password=password, Permanent=True)
    current = {g["GroupName"] for g in cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username=user)["Groups"]}
    for role in sorted(set(roles) - current):
        try:
            cognito.get_group(GroupName=role, UserPoolId=pool_id)
        except ClientError as e:
            if _code(e) != "ResourceNotFoundException":
                raise
            try:
                cognito.create_group(GroupName=role, UserPoolId=pool_id)
            except ClientError as again:
                if _code(again) != "GroupExistsException":
                    raise
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=user, GroupName=role)
    for group in sorted(current - set(roles)):
        cognito.admin_remove_user_from_group(UserPoolId=pool_id, Username=user, GroupName=group)


def sign_in(cognito: Any, client_id: str, user: str, password: str) -> str:
    """The ID token of a USER_PASSWORD_AUTH sign-in with the portal's app client."""
    result = cognito.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                   AuthParameters={"USERNAME": user, "PASSWORD": password})
    return str(result["AuthenticationResult"]["IdToken"])


def issue(settings: Mapping[str, str], stack_env: Mapping[str, str], endpoint: str, dealer: str, user: str,
          roles: Sequence[str] = ()) -> str:
    """A token for `user` of `dealer` with `roles`, from the stack's user pool (TokenError if it cannot)."""
    pool_id, client_id = stack_env.get("USER_POOL_ID"), stack_env.get("USER_POOL_CLIENT_ID")
    if not pool_id or not client_id:
        raise TokenError("the stack has no user pool (CreateUserPool is not \"true\"?): its env names no "
                         "USER_POOL_ID / USER_POOL_CLIENT_ID")
    password = settings.get("LOCAL_STAFF_PASSWORD")
    if not password:
        raise TokenError("LOCAL_STAFF_PASSWORD is not set")
    cognito = cognito_client(endpoint, settings)
    try:
        ensure_user(cognito, pool_id, dealer, user, roles, password)
        return sign_in(cognito, client_id, user, password)
    except ClientError as e:
        raise TokenError(f"the user pool {pool_id} at {endpoint} refused: {e}") from None
    except BotoCoreError as e:
        raise TokenError(f"cannot reach the emulator at {endpoint} ({e}): is `make dev` running?") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.token", description=__doc__.split("\n")[0])
    parser.add_argument("--dealer", required=True, help=f"dealer id (the user's {DEALER_ATTRIBUTE})")
    parser.add_argument("--user", required=True, help="staff user name (the token's cognito:username)")
    parser.add_argument("--role", action="append", default=[], help="a role, i.e. a group of the pool "
                        "(claim cognito:groups; repeatable), e.g. dealer-admin, which PUT /v1/dealer needs")
    parser.add_argument("--stack", default=os.environ.get("DEV_STACK", "texting-dev"),
                        help="the local stack (its .local/<stack>.env names the pool)")
    parser.add_argument("--env-file", default=str(ENV_LOCAL), help="the local settings (.env.local)")
    parser.add_argument("--endpoint", help="the emulator (default: AWS_ENDPOINT_URL of the settings)")
    args = parser.parse_args(argv)
    env_file = Path(args.env_file)
    if env_file == ENV_LOCAL and ensure_env_local():
        print(f"created {ENV_LOCAL} with fresh secrets", file=sys.stderr)
    ensure_generated(env_file, "LOCAL_STAFF_PASSWORD")
    settings = {**read_env_file(env_file), **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
    stack_file = stack_env_file(args.stack)
    if not stack_file.exists():
        print(f"token: no local stack {args.stack!r} ({stack_file} is missing): start it with `make dev`",
              file=sys.stderr)
        return 1
    endpoint = args.endpoint or settings.get("AWS_ENDPOINT_URL") or "http://127.0.0.1:4566"
    try:
        token = issue(settings, read_env_file(stack_file), endpoint, args.dealer, args.user, args.role)
    except TokenError as e:
        print(f"token: {e}", file=sys.stderr)
        return 1
    roles = f", roles {', '.join(args.role)}" if args.role else ""
    print(f"# portal token for dealer {args.dealer}, user {args.user}{roles} (the user pool's ID token, 1 h)")
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
