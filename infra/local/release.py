"""Release builds as deployed, in one place: `make bench-build`, `make dev` with the release profile
and the local Lambda service's rebuilds all build and run the same binaries.

Release binaries are position-independent executables, as `make build` and `make deploy` make them
for AWS: the loader puts the code at a random address (ASLR) and applies the binary's relative
relocations before `main`. FAST_START=1 (`--fast-start`) links them position-dependent instead
(`-C relocation-model=static`): no relocations, a start 1-3 ms shorter, the code at a fixed address
(docs/decisions.md). That flag must not reach the proc macros and build scripts (shared libraries),
so such a build names its target: `--target <host>` gives the flag to the target's artifacts only,
which land in target/<host>/release; the default build lands in target/release.

    python -m infra.local.release [--fast-start] -p send -p deliver ...   # what `make bench-build` runs
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Mapping

from infra.local.template import REPO_ROOT

RUSTFLAGS = "-C relocation-model=static"


def host_triple() -> str:
    """The Linux GNU target of this machine (x86_64 or aarch64), as Lambda's two architectures."""
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return f"{arch}-unknown-linux-gnu"


def fast_start_default() -> bool:
    return os.environ.get("FAST_START", "") not in ("", "0")


def binary_dir(fast_start: bool | None = None) -> Path:
    fast = fast_start_default() if fast_start is None else fast_start
    return REPO_ROOT / "target" / (f"{host_triple()}/release" if fast else "release")


def environment(base: Mapping[str, str] | None = None, fast_start: bool | None = None) -> dict[str, str]:
    """`base` (default: this process's), plus the target's flags for a fast-start build."""
    env = dict(os.environ if base is None else base)
    if fast_start_default() if fast_start is None else fast_start:
        env[f"CARGO_TARGET_{host_triple().upper().replace('-', '_')}_RUSTFLAGS"] = RUSTFLAGS
    return env


def command(packages: list[str], bins: list[str] | None = None, fast_start: bool | None = None) -> list[str]:
    """`cargo build` of `packages` (`-p` each) or of the named `bins` for release as deployed."""
    fast = fast_start_default() if fast_start is None else fast_start
    selection = ([a for b in bins for a in ("--bin", b)] if bins
                 else ["--bins", *[a for p in packages for a in ("-p", p)]])
    target = ["--target", host_triple()] if fast else []
    return ["cargo", "build", "--manifest-path", str(REPO_ROOT / "Cargo.toml"), "--release", *target, *selection]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    fast = "--fast-start" in args
    args = [a for a in args if a != "--fast-start"]
    packages = [args[i + 1] for i, a in enumerate(args) if a == "-p" and i + 1 < len(args)]
    if not packages or len(packages) * 2 != len(args):
        print("usage: python -m infra.local.release [--fast-start] -p <package> [-p <package> ...]", file=sys.stderr)
        return 2
    return subprocess.call(command(packages, fast_start=fast), env=environment(fast_start=fast))


if __name__ == "__main__":
    raise SystemExit(main())
