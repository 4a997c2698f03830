"""Release builds as deployed, in one place: `make bench-build`, `make dev` with the release profile
and the local Lambda service's rebuilds all build and run the same binaries.

Release binaries are linked as position-dependent executables (`-C relocation-model=static`): a PIE
binary is relocated by the loader at every start, and ours carry 30,000-67,000 relocations (the
time-zone tables, the SDK's) in 0.6-1.6 MB of data the loader copies page by page before `main`.
Without them a function reaches its first poll 1-3 ms sooner (docs/decisions.md). The flag must
not reach the proc macros and build scripts (shared libraries), so the build names its target:
`--target <host>` gives the flag to the target's artifacts only, which land in
target/<host>/release/.

    python -m infra.local.release -p send -p deliver ...   # what `make bench-build` runs
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


def binary_dir() -> Path:
    return REPO_ROOT / "target" / host_triple() / "release"


def environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's) plus the target's flags."""
    env = dict(os.environ if base is None else base)
    env[f"CARGO_TARGET_{host_triple().upper().replace('-', '_')}_RUSTFLAGS"] = RUSTFLAGS
    return env


def command(packages: list[str], bins: list[str] | None = None) -> list[str]:
    """`cargo build` of `packages` (`-p` each) or of the named `bins` for release as deployed."""
    selection = ([a for b in bins for a in ("--bin", b)] if bins
                 else ["--bins", *[a for p in packages for a in ("-p", p)]])
    return ["cargo", "build", "--manifest-path", str(REPO_ROOT / "Cargo.toml"), "--release",
            "--target", host_triple(), *selection]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    packages = [args[i + 1] for i, a in enumerate(args) if a == "-p" and i + 1 < len(args)]
    if not packages or len(packages) * 2 != len(args):
        print("usage: python -m infra.local.release -p <package> [-p <package> ...]", file=sys.stderr)
        return 2
    return subprocess.call(command(packages), env=environment())


if __name__ == "__main__":
    raise SystemExit(main())
