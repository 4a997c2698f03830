"""`make dev`'s processes: each child in its own process group, its output prefixed with its name,
stopped newest first (SIGTERM, then SIGKILL after a grace period); and why the stack could not start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Mapping

from infra.local import template as tpl

STOP_GRACE = 5.0


class DevError(Exception):
    """Why the stack could not start, in one line."""


class Children:
    """Child processes, each in its own process group, with their output prefixed by name."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, cmd: list[str], env: Mapping[str, str],
              log_file: Path | None = None) -> subprocess.Popen[bytes]:
        """Start `cmd`; its output goes to our stdout prefixed with [name], or to `log_file`."""
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(log_file, "ab") as out:
                proc = subprocess.Popen(cmd, cwd=tpl.REPO_ROOT, env=dict(env), stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        else:
            proc = subprocess.Popen(cmd, cwd=tpl.REPO_ROOT, env=dict(env), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            threading.Thread(target=self._pump, args=(name, proc), daemon=True).start()
        self.procs.append((name, proc))
        return proc

    @staticmethod
    def _pump(name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            sys.stdout.write(f"[{name}] {raw.decode(errors='replace').rstrip()}\n")
            sys.stdout.flush()

    def run_step(self, name: str, cmd: list[str], env: Mapping[str, str]) -> int:
        """Run `cmd` to completion (output prefixed), still stoppable by Ctrl-C; returns its exit code."""
        proc = self.start(name, cmd, env)
        try:
            return proc.wait()
        finally:
            if proc.poll() is not None:
                self.procs.remove((name, proc))

    def dead(self) -> str | None:
        """Name and exit code of a child that exited, if any."""
        for name, proc in self.procs:
            if proc.poll() is not None:
                return f"{name} exited with code {proc.returncode}"
        return None

    def stop(self) -> None:
        """Newest first: SIGTERM the process group, SIGKILL it if still there after STOP_GRACE seconds."""
        for _, proc in reversed(self.procs):
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)  # also reaps anything the child left in its group
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                pass


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False
