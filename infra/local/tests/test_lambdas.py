"""The local Lambda service runs each function as Lambda does: its own instances and environment,
concurrent invocations, the deadline in the Runtime API, and an invocation ended at its Timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from conftest import PARAMS, REPO_ROOT, free_port, serve, unique

from infra.local import lambdas
from infra.local import template as tpl
from infra.local.bootstrap import Bootstrap, write_functions
from infra.local.bridge import Bridge

FAKE = Path(__file__).with_name("fake_function.py")


class Service:
    """The Lambda service on a free port with the given functions; its log lines are kept."""

    def __init__(self, *configs: lambdas.FunctionConfig) -> None:
        self.lines: list[str] = []
        self.server, self.pools = lambdas.make_server("127.0.0.1", 0, list(configs), log=self.lines.append)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve(self.server)

    def invoke(self, name: str, event: Any, timeout: float = 20) -> tuple[str | None, Any]:
        req = urllib.request.Request(f"{self.endpoint}/2015-03-31/functions/{name}/invocations",
                                     data=json.dumps(event).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local
            return resp.headers.get("X-Amz-Function-Error"), json.loads(resp.read())

    def close(self) -> None:
        for pool in self.pools.values():
            pool.stop()
        self.server.shutdown()
        self.server.server_close()


def fake(name: str = "fake", timeout: float = 5, concurrency: int = 3, **kwargs: Any) -> lambdas.FunctionConfig:
    return lambdas.FunctionConfig(name=name, command=[sys.executable, str(FAKE)], timeout=timeout,
                                  concurrency=concurrency, **kwargs)


@pytest.fixture
def service(request: pytest.FixtureRequest) -> Iterator[Service]:
    configs = getattr(request, "param", None) or [fake()]
    svc = Service(*configs)
    yield svc
    svc.close()


def parallel(svc: Service, name: str, events: list[Any]) -> list[tuple[str | None, Any]]:
    results: list[Any] = [None] * len(events)

    def run(i: int) -> None:
        results[i] = svc.invoke(name, events[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(events))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_concurrent_invocations_run_in_separate_instances(service: Service) -> None:
    service.invoke("fake", {})  # one warm instance
    started = time.monotonic()
    results = parallel(service, "fake", [{"sleep": 0.6, "echo": i} for i in range(3)])
    elapsed = time.monotonic() - started
    assert [r[1]["echo"] for r in results] == [0, 1, 2] and all(r[0] is None for r in results)
    assert len({r[1]["pid"] for r in results}) == 3, "three instances served three events at once"
    assert elapsed < 1.75, f"they ran concurrently ({elapsed:.2f} s for three 0.6 s invocations)"
    again = parallel(service, "fake", [{"echo": i} for i in range(3)])
    assert {r[1]["pid"] for r in again} <= {r[1]["pid"] for r in results}, "warm instances are reused"


@pytest.mark.parametrize("service", [[fake(concurrency=1)]], indirect=True)
def test_concurrency_bounds_the_instances(service: Service) -> None:
    started = time.monotonic()
    results = parallel(service, "fake", [{"sleep": 0.3} for _ in range(3)])
    assert time.monotonic() - started >= 0.9, "one instance: the events waited their turn"
    assert len({r[1]["pid"] for r in results}) == 1


@pytest.mark.parametrize("service", [[fake(environment={"TABLE_NAME": "t1", "AWS_ACCESS_KEY_ID": "ASIAFN"}),
                                      fake(name="other", environment={"TABLE_NAME": "t2"})]], indirect=True)
def test_each_function_sees_only_its_own_environment(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKED_FROM_THE_SERVICE", "1")
    _, first = service.invoke("fake", {"env": True})
    _, second = service.invoke("other", {"env": True})
    env = first["env"]
    assert env["TABLE_NAME"] == "t1" and second["env"]["TABLE_NAME"] == "t2"
    assert env["AWS_ACCESS_KEY_ID"] == "ASIAFN" and "AWS_ACCESS_KEY_ID" not in second["env"]
    assert "LEAKED_FROM_THE_SERVICE" not in env and "LOCAL_STAFF_PASSWORD" not in env and "HOME" not in env
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fake" and env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith(f"{service.endpoint}/runtime/fake/")
    assert set(lambdas.BASE_ENVIRONMENT) <= set(env)


@pytest.mark.parametrize("service", [[fake(timeout=1.0)]], indirect=True)
def test_a_slow_invocation_is_cut_at_the_functions_timeout(service: Service) -> None:
    _, warm = service.invoke("fake", {})
    assert 900 <= warm["deadlineMs"] - warm["receivedMs"] <= 1100, "the deadline is the Timeout from now"
    started = time.monotonic()
    error, payload = service.invoke("fake", {"sleep": 5})
    elapsed = time.monotonic() - started
    assert error == "Unhandled" and payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    assert 0.9 <= elapsed < 2.5, f"ended at the Timeout, not when the function finished ({elapsed:.2f} s)"
    deadline = time.monotonic() + 5
    while _alive(warm["pid"]):
        assert time.monotonic() < deadline, "the timed-out instance was killed"
        time.sleep(0.05)
    _, after = service.invoke("fake", {})
    assert after["pid"] != warm["pid"], "the next event cold-starts a new instance"
    assert any("Status: timeout after 1 s (instance killed)" in line for line in service.lines)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # reaped between the signal and the read
        return False
    return stat.split()[2] != "Z"


def test_function_errors_and_crashes_answer_as_lambda_does(service: Service) -> None:
    assert service.invoke("fake", {"fail": "no such dealer"}) == (
        "Unhandled", {"errorType": "Boom", "errorMessage": "no such dealer"})
    error, payload = service.invoke("fake", {"exit": 101})
    assert error == "Unhandled" and payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("Runtime exited with error: exit status 101")
    assert service.invoke("fake", {"echo": "still serving"})[1]["echo"] == "still serving"
    with pytest.raises(urllib.error.HTTPError) as missing:
        service.invoke("nope", {})
    assert missing.value.code == 404 and missing.value.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"


@pytest.mark.parametrize("service", [[fake(environment={"FAKE_INIT_ERROR": "CODE_HASH_KEY_SECRET_ARN is required"})]],
                         indirect=True)
def test_an_init_failure_fails_the_invocation_that_started_it(service: Service) -> None:
    error, payload = service.invoke("fake", {})
    assert error == "Unhandled"
    assert payload == {"errorType": "Runtime.Config", "errorMessage": "CODE_HASH_KEY_SECRET_ARN is required"}


def test_a_rebuilt_binary_replaces_the_warm_instances(tmp_path: Path) -> None:
    script = tmp_path / "bootstrap"
    script.write_text(f"#!{sys.executable}\n" + FAKE.read_text())
    script.chmod(0o755)
    svc = Service(lambdas.FunctionConfig(name="fn", command=[str(script)], timeout=5, concurrency=1))
    try:
        _, first = svc.invoke("fn", {})
        os.utime(script, (time.time() + 5, time.time() + 5))  # a new build
        _, second = svc.invoke("fn", {})
        assert second["pid"] != first["pid"]
        assert any("retired: fn was rebuilt" in line for line in svc.lines)
    finally:
        svc.close()


def test_the_functions_file_from_the_bootstrap(moto_endpoint: str, tmp_path: Path) -> None:
    boot = Bootstrap(tpl.load(), unique("fns"), PARAMS, endpoint=moto_endpoint, log=lambda line: None)
    boot.run()
    path = tmp_path / "functions.json"
    write_functions(path, boot.functions())
    assert path.stat().st_mode & 0o077 == 0
    configs = {c.name: c for c in lambdas.load_configs(path, 4, "http://127.0.0.1:4566", "us-east-1")}
    settings = tpl.function_settings(tpl.load())
    assert set(configs) == set(settings)
    for name, config in configs.items():
        assert config.timeout == settings[name].timeout and config.concurrency == 4
        assert config.command == [str(tpl.REPO_ROOT / "target" / "debug" / name)]
        assert config.environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
        assert config.environment["AWS_ACCESS_KEY_ID"] == boot.identities()[name].access_key_id
    assert set(configs["queues"].environment) == {
        "TABLE_NAME", "RUST_LOG", "DUE_SHARDS", "SSL_CERT_FILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "CLAIM_DEALER", "CLAIM_USER",
        "CLAIM_ROLES"}
    assert "OUTBOUND_QUEUE_URL" not in configs["queues"].environment
    assert "CODE_HASH_KEY_SECRET_ARN" not in configs["inbound"].environment


def test_a_timed_out_sqs_batch_comes_back_after_the_visibility_timeout(moto_endpoint: str) -> None:
    """The consumer runs past its Timeout: the bridge deletes nothing and the record is received again
    once the queue's visibility timeout has passed."""
    template = {"Resources": {
        "WorkQueue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 2}},
        "SlowFunction": {"Type": "AWS::Serverless::Function", "Metadata": {"BuildProperties": {"Binary": "slow"}},
                         "Properties": {"Timeout": 1, "Events": {"Work": {"Type": "SQS", "Properties": {
                             "Queue": {"Fn::GetAtt": ["WorkQueue", "Arn"]}, "BatchSize": 1,
                             "FunctionResponseTypes": ["ReportBatchItemFailures"]}}}}}}}
    name = unique("slow")
    Bootstrap(template, name, {}, endpoint=moto_endpoint, log=lambda line: None).run()
    svc = Service(fake(name="slow", timeout=tpl.function_settings(template)["slow"].timeout))
    bridge = Bridge(template, name, endpoint=moto_endpoint, lambda_endpoint=svc.endpoint, invoke_timeout=10,
                    log=svc.lines.append, pollers=1)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    url = sqs.get_queue_url(QueueName=f"{name}-WorkQueue")["QueueUrl"]
    message_id = sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"sleep": 3}))["MessageId"]
    bridge.start()
    try:
        deadline = time.monotonic() + 15
        while not any(f"record {message_id} receive 2" in line for line in svc.lines):
            assert time.monotonic() < deadline, "\n".join(svc.lines)
            time.sleep(0.05)
        timeouts = [line for line in svc.lines if "Status: timeout after 1 s" in line]
        assert len(timeouts) >= 1
        failures = [line for line in svc.lines if line.startswith("bridge: slow records=1 failures=1")]
        assert failures and "Sandbox.Timedout" in failures[0]
    finally:
        bridge.stop(timeout=5)
        svc.close()
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                   "ApproximateNumberOfMessagesNotVisible"])
    counts = attrs["Attributes"]
    assert int(counts["ApproximateNumberOfMessages"]) + int(counts["ApproximateNumberOfMessagesNotVisible"]) == 1


def _kills(svc: Service, doc: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(f"{svc.endpoint}/_local/kills", data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - local
        return json.load(resp)


@pytest.mark.parametrize("service", [[fake(concurrency=1)]], indirect=True)
def test_a_killed_instance_fails_its_invocation_as_lambda_does_and_the_next_cold_starts(service: Service) -> None:
    """At a kill rate of 1 the instance running an invocation is killed (SIGKILL) within its first 50 ms:
    the caller gets Runtime.ExitError "Runtime exited with error: signal: killed" for its request id
    (long before the function would have answered), and at rate 0 the next event runs in a new process."""
    _, warm = service.invoke("fake", {})
    assert _kills(service, {"rate": 1.0})["rate"] == 1.0
    req = urllib.request.Request(f"{service.endpoint}/2015-03-31/functions/fake/invocations",
                                 data=json.dumps({"sleep": 3}).encode(), method="POST")
    started = time.monotonic()
    with urllib.request.urlopen(req, timeout=20) as resp:  # noqa: S310 - local
        error, request_id, payload = (resp.headers["X-Amz-Function-Error"], resp.headers["x-amzn-RequestId"],
                                      json.loads(resp.read()))
    assert time.monotonic() - started < 2, "killed mid-invocation, not after it"
    assert error == "Unhandled"
    assert payload == {"errorType": "Runtime.ExitError",
                       "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"}
    deadline = time.monotonic() + 5
    while _alive(warm["pid"]):
        assert time.monotonic() < deadline, "the instance's process was killed"
        time.sleep(0.05)
    _kills(service, {"rate": 0})
    error, after = service.invoke("fake", {"echo": "fresh"})
    assert error is None and after["echo"] == "fresh" and after["pid"] != warm["pid"]
    assert sum("cold start" in line for line in service.lines) == 2
    state = _kills(service)
    assert (state["rate"], state["functions"], state["armed"], state["killed"]) == (0, None, {"fake": 1}, {"fake": 1})
    assert any(line.startswith("lambdas: fake[1] killed (chaos)") for line in service.lines)


@pytest.mark.parametrize("service", [[fake(), fake(name="other")]], indirect=True)
def test_kills_hit_only_the_functions_named_and_none_at_rate_zero(service: Service) -> None:
    for n in range(10):
        assert service.invoke("fake", {"echo": n})[1]["echo"] == n
    state = _kills(service)
    assert state["armed"] == state["killed"] == {"fake": 0, "other": 0}
    _kills(service, {"rate": 1, "functions": ["other"]})
    assert service.invoke("fake", {"sleep": 0.2, "echo": "spared"})[1]["echo"] == "spared"
    error, payload = service.invoke("other", {"sleep": 0.2})
    assert error == "Unhandled" and payload["errorMessage"].endswith("signal: killed")
    state = _kills(service)
    assert (state["functions"], state["killed"]) == (["other"], {"fake": 0, "other": 1})
    with pytest.raises(urllib.error.HTTPError) as refused:
        _kills(service, {"rate": 1, "functions": ["nope"]})
    assert refused.value.code == 400
    for bad in ({"rate": 2}, {"rate": "1"}, {"functions": "other"}, {"kill": 1}):
        with pytest.raises(urllib.error.HTTPError):
            _kills(service, bad)
    assert _kills(service)["rate"] == 1 and _kills(service)["functions"] == ["other"]


def test_the_kills_are_drawn_by_the_seed_within_the_window() -> None:
    def draws(seed: int) -> list[float | None]:
        kills = lambdas.Kills(0.5, seed)
        return [kills.draw("fn", timeout=0.02 if i % 2 else 5) for i in range(200)]

    first = draws(1)
    assert first == draws(1) and first != draws(2)
    delays = [d for d in first if d is not None]
    assert 60 < len(delays) < 140
    assert all(0 <= d <= 0.05 for d in delays)
    assert all(d <= 0.02 for i, d in enumerate(first) if d is not None and i % 2)  # within the Timeout too
    assert lambdas.Kills(0.0).draw("fn", 5) is None


def test_the_service_takes_its_kill_rate_and_seed_from_the_environment(tmp_path: Path) -> None:
    """LAMBDA_KILL_RATE and LAMBDA_SEED (the fallbacks of --kill-rate and --seed): printed at start and
    answered by GET /_local/kills (no function is invoked: nothing is built)."""
    functions = tmp_path / "functions.json"
    functions.write_text(json.dumps({"deliver": {"environment": {}, "timeout": 5}}))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "infra.local.lambdas", "--functions", str(functions),
                             "--port", str(port)], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "LAMBDA_KILL_RATE": "0.25",
                                 "LAMBDA_SEED": "99"})
    try:
        assert proc.stdout is not None
        lines = []
        while not any("invoke API on" in line for line in lines):
            line = proc.stdout.readline().decode()
            assert line, "".join(lines)
            lines.append(line)
        assert any("kill rate 0.25 of invocations, seed 99" in line for line in lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_local/kills", timeout=5) as resp:  # noqa: S310
            state = json.load(resp)
        assert (state["rate"], state["seed"], state["killed"]) == (0.25, 99, {"deliver": 0})
    finally:
        proc.terminate()
        proc.wait(10)
    bad = subprocess.run([sys.executable, "-m", "infra.local.lambdas", "--functions", str(functions),
                          "--kill-rate", "1.5"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert bad.returncode == 2 and "want a probability" in bad.stderr
