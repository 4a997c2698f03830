"""Pieces of `make dev` that do not need the functions: env file creation, port checks, token."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from conftest import free_port

from infra.local import dev, jwt
from infra.local.common import ENV_EXAMPLE, ensure_env_local, read_env_file
from infra.local.token import make_token


def test_env_local_is_created_from_the_example_with_fresh_secrets(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    assert ensure_env_local(first, ENV_EXAMPLE) and ensure_env_local(second, ENV_EXAMPLE)
    assert not ensure_env_local(first, ENV_EXAMPLE), "an existing file is left alone"
    a, b = read_env_file(first), read_env_file(second)
    for key in ("PORTAL_JWT_SECRET", "TWILIO_AUTH_TOKEN", "CODE_HASH_KEY"):
        assert len(a[key]) >= 32 and a[key] != b[key]
    assert a["TWILIO_ACCOUNT_SID"].startswith("AC") and len(a["TWILIO_ACCOUNT_SID"]) == 34
    assert a["PUBLIC_BASE_URL"] == "http://127.0.0.1:3000"
    pool = a["NUMBER_POOL"].split(",")
    assert a["DEMO_TEXTING_NUMBER"] not in pool
    for number in pool + [a["DEMO_TEXTING_NUMBER"]]:  # valid NANP E.164: NPA and NXX start with 2-9
        assert len(number) == 12 and number[:2] == "+1" and number[2] in "23456789" and number[5] in "23456789"
    assert first.stat().st_mode & 0o077 == 0, "secrets are readable by the owner only"


def test_token_carries_the_portal_claims(tmp_path: Path) -> None:
    env = {"PORTAL_JWT_SECRET": "s", "PORTAL_JWT_ISSUER": "iss", "PORTAL_JWT_AUDIENCE": "aud"}
    claims = jwt.decode(make_token("demo-dealer", "staff-1", 60, env), "s", "iss", "aud")
    assert (claims["dealer_id"], claims["sub"]) == ("demo-dealer", "staff-1")
    assert claims["exp"] - claims["iat"] == 60


def test_a_busy_port_is_named_with_its_user() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = dev.Ports(emulator=free_port(), gateway=port, carrier=free_port(), lambda_=free_port())
        with pytest.raises(dev.DevError, match=rf"port {port} \(gateway\) is in use by pid \d+: .*another `make dev`"):
            dev.check_ports(ports)


def test_a_running_emulator_is_reused(moto_endpoint: str) -> None:
    port = int(moto_endpoint.rsplit(":", 1)[1])
    assert dev.check_ports(dev.Ports(emulator=port, gateway=free_port(), carrier=free_port(),
                                     lambda_=free_port())) is True
    assert dev.check_ports(dev.Ports(emulator=free_port(), gateway=free_port(), carrier=free_port(),
                                     lambda_=free_port())) is False


def test_base_urls_follow_non_default_ports(tmp_path: Path) -> None:
    env_file = tmp_path / "x.env"
    env_file.write_text("PUBLIC_BASE_URL=http://127.0.0.1:3000\nCARRIER_BASE_URL=http://127.0.0.1:4010\n")
    assert dev.local_settings(env_file, dev.Ports())["PUBLIC_BASE_URL"] == "http://127.0.0.1:3000"
    moved = dev.local_settings(env_file, dev.Ports(gateway=3001, carrier=4011))
    assert (moved["PUBLIC_BASE_URL"], moved["CARRIER_BASE_URL"]) == ("http://127.0.0.1:3001", "http://127.0.0.1:4011")
