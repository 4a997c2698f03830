"""Release builds as deployed: position-independent by default; the fast start (position-dependent)
for the Lambda target only, on request; one place for all."""

from __future__ import annotations

import json
from pathlib import Path

from infra.local import dev, lambdas, release


def test_release_builds_are_position_independent_unless_a_fast_start_is_asked_for(monkeypatch) -> None:
    monkeypatch.delenv("FAST_START", raising=False)
    cmd = release.command(["send", "deliver"])
    assert "--target" not in cmd and "--release" in cmd
    assert cmd[-5:] == ["--bins", "-p", "send", "-p", "deliver"]
    assert release.environment({"PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}
    assert release.binary_dir().parts[-2:] == ("target", "release")


def test_the_fast_start_flag_goes_to_the_named_target_only(monkeypatch) -> None:
    monkeypatch.setenv("FAST_START", "1")
    cmd = release.command(["send", "deliver"])
    triple = release.host_triple()
    assert cmd[cmd.index("--target") + 1] == triple and "--release" in cmd
    assert cmd[-5:] == ["--bins", "-p", "send", "-p", "deliver"]
    env = release.environment({"PATH": "/usr/bin"})
    assert env[f"CARGO_TARGET_{triple.upper().replace('-', '_')}_RUSTFLAGS"] == "-C relocation-model=static"
    assert "RUSTFLAGS" not in env, "plain RUSTFLAGS would reach the proc macros and build scripts"
    assert release.binary_dir().parts[-3:] == ("target", triple, "release")


def test_the_local_lambda_service_runs_and_rebuilds_the_same_release_binaries(tmp_path: Path) -> None:
    spec = {"send": {"environment": {}, "timeout": 10}}
    (tmp_path / "functions.json").write_text(json.dumps(spec), encoding="utf-8")
    (rel,) = lambdas.load_configs(tmp_path / "functions.json", 2, None, "us-east-1", profile="release")
    assert rel.command == [str(release.binary_dir() / "send")]
    assert rel.build == release.command([], bins=["send"]) and rel.build_env is not None
    (dbg,) = lambdas.load_configs(tmp_path / "functions.json", 2, None, "us-east-1")
    assert dbg.command[0].endswith("target/debug/send") and dbg.build_env is None
    assert "--target" not in (dbg.build or [])


class _Steps:
    def __init__(self) -> None:
        self.steps: list[tuple[list[str], dict[str, str]]] = []

    def run_step(self, name: str, cmd: list[str], env: dict[str, str]) -> int:
        self.steps.append((cmd, dict(env)))
        return 0


def test_make_dev_builds_the_release_profile_as_the_bench_does() -> None:
    template = {"Resources": {"SendFunction": {"Type": "AWS::Serverless::Function",
                                               "Properties": {"CodeUri": "../", "Handler": "bootstrap",
                                                              "Metadata": {}}}}}
    steps = _Steps()
    names = sorted(dev.tpl.function_settings(template))
    assert names == ["send"]
    dev.prebuild(steps, {"PATH": "/usr/bin"}, template, "release")  # type: ignore[arg-type]
    ((cmd, env),) = steps.steps
    assert cmd == release.command(names) and env == release.environment({"PATH": "/usr/bin"})
    steps = _Steps()
    dev.prebuild(steps, {"PATH": "/usr/bin"}, template, "debug")  # type: ignore[arg-type]
    assert all("--target" not in cmd and env == {"PATH": "/usr/bin"} for cmd, env in steps.steps)
