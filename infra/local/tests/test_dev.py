"""Pieces of `make dev` that do not need the functions: env file creation, port checks, token."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import boto3
import pytest
from conftest import REPO_ROOT, free_port

from infra.local import dev, numbers, oidc
from infra.local import template as tpl
from infra.local.bootstrap import Bootstrap
from infra.local.common import ENV_EXAMPLE, ensure_env_local, ensure_generated, read_env_file
from infra.local.token import TokenError, issue


def test_env_local_is_created_from_the_example_with_fresh_secrets(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    assert ensure_env_local(first, ENV_EXAMPLE) and ensure_env_local(second, ENV_EXAMPLE)
    assert not ensure_env_local(first, ENV_EXAMPLE), "an existing file is left alone"
    a, b = read_env_file(first), read_env_file(second)
    for key in ("TWILIO_AUTH_TOKEN", "CODE_HASH_KEY", "LOCAL_STAFF_PASSWORD"):
        assert len(a[key]) >= 24 and a[key] != b[key]
    password = a["LOCAL_STAFF_PASSWORD"]  # the user pool's policy: 12+, upper and lower case, a digit
    assert any(c.isupper() for c in password) and any(c.islower() for c in password) and any(c.isdigit() for c in password)
    assert a["TWILIO_ACCOUNT_SID"].startswith("AC") and len(a["TWILIO_ACCOUNT_SID"]) == 34
    assert a["PUBLIC_BASE_URL"] == "http://127.0.0.1:3000"
    pool = numbers.expand(a["NUMBER_POOL"])
    assert len(pool) >= 300 and len(set(pool)) == len(pool), "several hundred distinct numbers"
    assert len({n[:5] for n in pool}) >= 3, "across a few area codes"
    assert all(n[5:9] == "5550" and n[9] == "1" for n in pool), "all fictional 555-01xx numbers"
    # The pool is the local allow-list: the demo dealer may take its number, which is handed out last.
    assert pool[-1] == a["DEMO_TEXTING_NUMBER"] and pool.count(a["DEMO_TEXTING_NUMBER"]) == 1
    for number in pool + [a["DEMO_TEXTING_NUMBER"]]:  # valid NANP E.164: NPA and NXX start with 2-9
        assert len(number) == 12 and number[:2] == "+1" and number[2] in "23456789" and number[5] in "23456789"
    assert first.stat().st_mode & 0o077 == 0, "secrets are readable by the owner only"


def test_an_older_env_local_gets_the_staff_password_once(tmp_path: Path) -> None:
    older = tmp_path / "local.env"
    older.write_text("TWILIO_AUTH_TOKEN=t")  # no final newline, no LOCAL_STAFF_PASSWORD
    ensure_generated(older, "LOCAL_STAFF_PASSWORD")
    first = read_env_file(older)
    ensure_generated(older, "LOCAL_STAFF_PASSWORD")
    assert read_env_file(older) == first and first["TWILIO_AUTH_TOKEN"] == "t" and first["LOCAL_STAFF_PASSWORD"]


def test_make_token_signs_in_to_the_stacks_user_pool(moto_endpoint: str) -> None:
    """`make token` creates the user in the pool (moto's Cognito) with the dealer and roles asked for, signs
    in, and the ID token passes the gateway's authorizer with the claims the functions read; asked again
    for another dealer or other roles, the same user is moved, never given both."""
    stack = f"token-{os.getpid()}"
    boot = Bootstrap(tpl.load(), stack, {"TwilioAccountSid": "AC1"}, endpoint=moto_endpoint, log=lambda _: None)
    boot.run()
    env = boot.environment()
    assert (env["CLAIM_DEALER"], env["CLAIM_USER"], env["CLAIM_ROLES"]) == (
        "custom:dealer_id", "cognito:username", "cognito:groups")
    settings = {"LOCAL_STAFF_PASSWORD": "Test-staff-password-1A", "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
    authorizer = oidc.JwtAuthorizer(env["JWT_ISSUER"], env["JWT_AUDIENCE"].split(","), oidc.aws_host_to(moto_endpoint))

    admin = authorizer.claims(issue(settings, env, moto_endpoint, "dealer-a", "staff-7", ["dealer-admin"]))
    assert (admin["custom:dealer_id"], admin["cognito:username"], admin["cognito:groups"]) == (
        "dealer-a", "staff-7", ["dealer-admin"])
    assert admin["token_use"] == "id" and admin["iss"] == env["JWT_ISSUER"]
    moved = authorizer.claims(issue(settings, env, moto_endpoint, "dealer-b", "staff-7"))
    assert moved["custom:dealer_id"] == "dealer-b" and "cognito:groups" not in moved
    other = authorizer.claims(issue(settings, env, moto_endpoint, "dealer-b", "staff-8", ["auditor", "dealer-admin"]))
    assert sorted(other["cognito:groups"]) == ["auditor", "dealer-admin"]
    with pytest.raises(TokenError, match="USER_POOL_ID"):
        issue(settings, {}, moto_endpoint, "dealer-a", "staff-7")


def test_make_token_without_a_running_stack_says_to_start_it(tmp_path: Path) -> None:
    env_file = tmp_path / "local.env"
    env_file.write_text("LOCAL_STAFF_PASSWORD=Test-staff-password-1A\n")
    done = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "python"), "-m", "infra.local.token", "--dealer", "d",
                           "--user", "u", "--stack", "never-started", "--env-file", str(env_file)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "start it with `make dev`" in done.stderr


def test_a_busy_port_is_named_with_its_user() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = dev.Ports(emulator=free_port(), gateway=port, carrier=free_port(), lambda_=free_port(), portal=free_port())
        with pytest.raises(dev.DevError, match=rf"port {port} \(gateway\) is in use by pid \d+: .*another `make dev`"):
            dev.check_ports(ports)


def test_a_running_emulator_is_reused(moto_endpoint: str) -> None:
    port = int(moto_endpoint.rsplit(":", 1)[1])
    assert dev.check_ports(dev.Ports(emulator=port, gateway=free_port(), carrier=free_port(),
                                     lambda_=free_port(), portal=free_port())) is True
    assert dev.check_ports(dev.Ports(emulator=free_port(), gateway=free_port(), carrier=free_port(),
                                     lambda_=free_port(), portal=free_port())) is False


def test_with_an_emulator_state_file_make_devs_data_outlives_a_restart(tmp_path: Path) -> None:
    """`make dev` with DEV_EMULATOR_STATE / --emulator-state: the emulator it starts saves its data
    when stopped (as make dev stops it) and the next one starts from it."""
    state = tmp_path / "emulator.state"
    assert "--state" not in dev.emulator_command(4566, None)
    port = free_port()
    cmd = dev.emulator_command(port, str(state))
    assert cmd[-2:] == ["--state", str(state)]
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
    for run in range(2):
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            assert dev.wait_until(lambda: dev.answers_as_aws(port), 30), "the emulator did not start"
            ddb = boto3.client("dynamodb", endpoint_url=endpoint, **credentials)
            if run == 0:
                ddb.create_table(TableName="dev-data", BillingMode="PAY_PER_REQUEST",
                                 AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                                 KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}])
                ddb.put_item(TableName="dev-data", Item={"PK": {"S": "contact"}})
            else:
                assert ddb.get_item(TableName="dev-data", Key={"PK": {"S": "contact"}})["Item"]
        finally:
            os.killpg(proc.pid, signal.SIGTERM)  # as make dev's Ctrl-C stops its children
            assert proc.wait(20) == 0
        assert state.exists()


def test_base_urls_follow_non_default_ports(tmp_path: Path) -> None:
    env_file = tmp_path / "x.env"
    env_file.write_text("PUBLIC_BASE_URL=http://127.0.0.1:3000\nCARRIER_BASE_URL=http://127.0.0.1:4010\n")
    assert dev.local_settings(env_file, dev.Ports())["PUBLIC_BASE_URL"] == "http://127.0.0.1:3000"
    moved = dev.local_settings(env_file, dev.Ports(gateway=3001, carrier=4011))
    assert (moved["PUBLIC_BASE_URL"], moved["CARRIER_BASE_URL"]) == ("http://127.0.0.1:3001", "http://127.0.0.1:4011")


def test_the_stacks_secrets_and_parameters_come_from_env_local() -> None:
    """Every mapped parameter exists in the template; every mapped secret is a secret resource."""
    from infra.local import template as tpl

    doc = tpl.load()
    assert set(dev.PARAMS_FROM_ENV) <= set(doc["Parameters"])
    for secret, variable in dev.SECRETS_FROM_ENV.items():
        assert doc["Resources"][secret]["Type"] == "AWS::SecretsManager::Secret"
        assert variable in read_env_file(ENV_EXAMPLE)
    assert dev.SECRETS_FROM_ENV == {"CodeHashKeySecret": "CODE_HASH_KEY", "TwilioAuthTokenSecret": "TWILIO_AUTH_TOKEN"}
    # The Twilio token is never a stack parameter (each deploy would ask for it and overwrite the secret).
    assert not any("Twilio" in p and "Token" in p for p in doc["Parameters"])


def test_a_malformed_number_pool_stops_make_dev_with_one_line(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    with pytest.raises(dev.DevError) as bad:
        dev.number_pool({"NUMBER_POOL": "+12025550199..+12025550101"}, env_file)
    assert str(bad.value) == f"{env_file}: NUMBER_POOL: '+12025550199..+12025550101' runs backwards"
    assert dev.number_pool({"NUMBER_POOL": "+12025550101..+12025550103"}, env_file) == [
        "+12025550101", "+12025550102", "+12025550103"]


def test_a_setting_added_to_the_example_reaches_an_older_env_local(tmp_path: Path) -> None:
    example = tmp_path / "example.env"
    example.write_text("CODE_HASH_KEY=\nPORTAL_ORIGINS=http://127.0.0.1:8080\nNUMBER_POOL=+12025550101\n")
    older = tmp_path / "local.env"  # created before PORTAL_ORIGINS existed
    older.write_text("CODE_HASH_KEY=s3cret\nNUMBER_POOL=+12025550199\n")
    settings = dev.local_settings(older, dev.Ports(), example)
    assert settings["PORTAL_ORIGINS"] == "http://127.0.0.1:8080"
    assert settings["NUMBER_POOL"] == "+12025550199", "the developer's own value wins"
    assert settings["CODE_HASH_KEY"] == "s3cret"
