"""Rebuild the function binaries when the Rust sources change (`make dev`'s watch).

The local Lambda service runs `target/debug/<name>` and retires instances of a binary that changed, so
rebuilding is all a code change needs. `Rebuilder` polls the sources' modification times (no watcher
dependency) and, once they have been quiet for a second, runs one `cargo build --bin a --bin b ...`
(the dev profile `make dev` prebuilt with), its output prefixed with [build].
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterable

from infra.local import template as tpl

WATCHED = ("functions", "shared", "Cargo.toml", "Cargo.lock")
SUFFIXES = (".rs", ".toml", ".lock", ".json", ".csv")


def sources_mtime(root: Path = tpl.REPO_ROOT, watched: Iterable[str] = WATCHED) -> float:
    """The newest modification time among the sources the functions are built from."""
    newest = 0.0
    for name in watched:
        path = root / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
            continue
        for directory, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d not in ("target", ".git")]
            for file in files:
                if file.endswith(SUFFIXES):
                    try:
                        newest = max(newest, os.stat(os.path.join(directory, file)).st_mtime)
                    except OSError:
                        pass
    return newest


class Rebuilder:
    """A daemon thread: sources changed and quiet for `settle` seconds -> one cargo build."""

    def __init__(self, binaries: Iterable[str], env: dict[str, str], period: float = 1.0, settle: float = 1.0,
                 root: Path = tpl.REPO_ROOT, command: list[str] | None = None) -> None:
        self.command = command or ["cargo", "build", "--manifest-path", str(root / "Cargo.toml"),
                                   *[arg for binary in sorted(binaries) for arg in ("--bin", binary)]]
        self.env, self.period, self.settle, self.root = env, period, settle, root
        self.stopping = threading.Event()
        self.build: subprocess.Popen[bytes] | None = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        built = sources_mtime(self.root)
        while not self.stopping.wait(self.period):
            seen = sources_mtime(self.root)
            if seen <= built or time.time() - seen < self.settle:
                continue
            built = seen
            self.log("sources changed: rebuilding the functions")
            self.build = subprocess.Popen(self.command, cwd=self.root, env=self.env, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            assert self.build.stdout is not None
            for raw in iter(self.build.stdout.readline, b""):
                self.log(raw.decode(errors="replace").rstrip())
            code = self.build.wait()
            self.log("rebuilt: new invocations run the new code" if code == 0
                     else f"build failed (exit {code}): the functions keep running the last good build")

    def stop(self) -> None:
        self.stopping.set()
        if self.build is not None and self.build.poll() is None:
            try:
                os.killpg(self.build.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass

    @staticmethod
    def log(line: str) -> None:
        sys.stdout.write(f"[build] {line}\n")
        sys.stdout.flush()
