"""`make deploy` from this checkout, as on a fresh machine, gets as far as the AWS call it needs credentials
for: it installs the pinned SAM CLI, `sam build` builds every function of the template for arm64 with the
pinned cargo-lambda and zig, and `sam deploy CONFIG=...` (no questions) stops at AWS for want of
credentials. Nothing reaches AWS: every credential source is emptied and the instance metadata service
is off.

The build is the release build as `make deploy` makes it, with LTO and one codegen unit relaxed
(CARGO_PROFILE_RELEASE_*) so that it takes minutes, not a quarter of an hour: the same toolchain, target,
linker and SAM steps. ~10 min on 2 cores the first time (the arm64 dependencies), seconds after.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import REPO_ROOT

from infra.local import template as tpl

AARCH64 = 0xB7  # ELF e_machine of arm64
TIMEOUT = 40 * 60


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return int.from_bytes(header[18:20], "little")


def test_make_deploy_builds_every_function_for_arm64_and_stops_only_for_credentials(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text((REPO_ROOT / "infra" / "samconfig.example.toml").read_text())
    build_dir = REPO_ROOT / ".aws-sam" / "build"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SAM_")) and k not in ("VIRTUAL_ENV",)}
    env.update({
        # No credentials from anywhere: the first AWS call must be where it stops.
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-creds"),
        "AWS_EC2_METADATA_DISABLED": "true", "SAM_CLI_TELEMETRY": "0", "HOME": str(tmp_path),
        "CARGO_HOME": os.environ.get("CARGO_HOME", str(Path.home() / ".cargo")),
        "RUSTUP_HOME": os.environ.get("RUSTUP_HOME", str(Path.home() / ".rustup")),
        # The release profile, quicker to build (see the docstring).
        "CARGO_PROFILE_RELEASE_LTO": "false", "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "16",
    })
    done = subprocess.run(["make", "deploy", f"CONFIG={config}"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    output = done.stdout + done.stderr
    assert done.returncode != 0, "a deploy without credentials cannot succeed"
    assert "Build Succeeded" in output, output[-6000:]
    functions = tpl.functions(tpl.load())
    for lid in functions:
        binary = build_dir / lid / "bootstrap"
        assert binary.exists(), f"sam build made no {binary}\n{output[-3000:]}"
        assert elf_machine(binary) == AARCH64, f"{binary} is not arm64"
    # It stopped at AWS, for want of credentials, not before.
    assert "Error: Unable to locate credentials" in output, output[-3000:]
