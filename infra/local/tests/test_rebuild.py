"""make dev rebuilds the functions when their sources change (the Lambda service then retires old instances)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from infra.local.rebuild import Rebuilder, sources_mtime


def test_a_source_change_runs_one_build_once_the_sources_are_quiet(tmp_path: Path) -> None:
    source = tmp_path / "functions" / "send" / "src" / "main.rs"
    source.parent.mkdir(parents=True)
    source.write_text("fn main() {}")
    (tmp_path / "functions" / "notes.txt").write_text("not a source")
    (tmp_path / "target").mkdir()
    marker = tmp_path / "builds"
    build = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('built\\n')"]
    rebuilder = Rebuilder(["send"], dict(os.environ), period=0.05, settle=0.2, root=tmp_path, command=build)
    assert rebuilder.command == build
    assert Rebuilder(["send", "deliver"], {}, root=tmp_path).command[-4:] == ["--bin", "deliver", "--bin", "send"]
    rebuilder.start()
    try:
        time.sleep(0.3)
        assert not marker.exists(), "nothing changed: no build"
        (tmp_path / "target" / "x.rs").write_text("")  # target/ is not a source
        (tmp_path / "functions" / "notes.txt").write_text("still not a source")
        time.sleep(0.5)
        assert not marker.exists()
        later = time.time() + 1
        os.utime(source, (later, later))
        deadline = time.monotonic() + 10
        while not marker.exists():
            assert time.monotonic() < deadline, "the change was rebuilt"
            time.sleep(0.05)
        time.sleep(0.5)
        assert marker.read_text() == "built\n", "one build per change"
    finally:
        rebuilder.stop()
    assert sources_mtime(tmp_path) >= later
