"""The ports `make dev` needs: free ones checked, the process holding a busy one named, and an AWS
emulator already answering on the emulator's port reused."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from infra.local.supervisor import DevError


@dataclass(frozen=True)
class Ports:
    emulator: int = 4566
    gateway: int = 3000
    carrier: int = 4010
    lambda_: int = 9000
    portal: int = 8080


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def who_listens(port: int) -> str | None:
    """The command line of the process listening on `port` (Linux /proc; None if unknown)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                inodes.add(fields[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
                if m and m.group(1) in inodes:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                    return f"pid {proc.name}: {cmd[:120]}"
        except OSError:
            continue
    return None


def answers_as_aws(port: int) -> bool:
    """True if an AWS emulator (moto, LocalStack) answers DynamoDB ListTables on the port."""
    import boto3
    from botocore.config import Config

    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test",
                          config=Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 1}))
    try:
        client.list_tables(Limit=1)
        return True
    except Exception:  # noqa: BLE001 - anything else is "not an emulator"
        return False


def check_ports(ports: Ports) -> bool:
    """Fail if a service port is taken; True if an emulator already answers on the emulator port."""
    for port, what in ((ports.gateway, "gateway"), (ports.carrier, "fake carrier"), (ports.lambda_, "lambda"),
                       (ports.portal, "portal")):
        if port_in_use(port):
            user = who_listens(port)
            raise DevError(f"port {port} ({what}) is in use{f' by {user}' if user else ''} "
                           "— is another `make dev` running?")
    if not port_in_use(ports.emulator):
        return False
    if answers_as_aws(ports.emulator):
        return True
    user = who_listens(ports.emulator)
    raise DevError(f"port {ports.emulator} (AWS emulator) is in use{f' by {user}' if user else ''} "
                   "and does not answer as an AWS emulator")
