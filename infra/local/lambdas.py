"""The local Lambda service: the Invoke API in front, the Runtime API behind, instances per function.

    python -m infra.local.lambdas --functions .local/<stack>.functions.json [--host 127.0.0.1]
        [--port 9000] [--concurrency 4] [--endpoint http://127.0.0.1:4566] [--region us-east-1]

What Lambda does, on 127.0.0.1:
- `POST /2015-03-31/functions/<name>/invocations` (the Invoke API, RequestResponse) queues the event
  for the function and answers with its result; a function error or a timeout answers 200 with
  `X-Amz-Function-Error: Unhandled` and Lambda's error payload.
- Each function runs in instances: processes of its binary (`target/debug/<name>`) that poll the Runtime
  API at `AWS_LAMBDA_RUNTIME_API` (`/runtime/<name>/<instance>/2018-06-01/runtime/invocation/next`), one
  invocation at a time each. An instance is started when an event waits and no instance is free, up to
  the function's concurrency (--concurrency, or its ReservedConcurrentExecutions if lower); instances
  stay warm for the next events. So concurrent invocations run concurrently, as in Lambda.
- An instance sees only its function's environment from the template, its own credentials, the
  emulator's endpoint and region, and the variables Lambda sets (AWS_LAMBDA_FUNCTION_NAME, ...).
- Every invocation is bounded by the function's Timeout: the runtime gets the deadline in
  `Lambda-Runtime-Deadline-Ms` (epoch milliseconds) and, past it, the instance is killed (Lambda resets
  the execution environment), the caller gets `Sandbox.Timedout`, and the next event cold-starts.
- A binary that changed (a rebuild) is picked up: instances started from the old one are retired when
  they next ask for work. A missing binary is built first (`cargo build --bin <name>`).
- A runtime process that exits during an invocation (a crash, a kill) fails it as Lambda does:
  `Runtime.ExitError`, "RequestId: ... Error: Runtime exited with error: exit status 101" (or
  "signal: killed"); the next event cold-starts.

Chaos (`Kills`): with `--kill-rate P` (LAMBDA_KILL_RATE, default 0: off) each invocation, with probability P,
has its instance's process killed (SIGKILL) at a moment drawn uniformly from the first min(50 ms, Timeout)
of the invocation, if it is still running then (else nothing happens), as Lambda's environments can die
mid-invocation. Draws come from an RNG seeded with `--seed` (LAMBDA_SEED, else random; printed at start).
`POST /_local/kills {"rate": p, "functions": ["deliver", ...]}` (no `functions`: all) changes it at run
time; `GET /_local/kills` answers the settings and, per function, the invocations drawn (`armed`) and
the processes killed while their invocation ran (`killed`).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from infra.local import release
from infra.local import template as tpl
from infra.local.common import JsonHandler, Server

RUNTIME_PREFIX = "/runtime"
KILLS_PATH = "/_local/kills"
KILL_WINDOW = 0.05  # seconds: a chaos kill lands within the first 50 ms of an invocation (or its Timeout)
INIT_TIMEOUT = 10.0  # Lambda's limit on a function's init phase
DEFAULT_CONCURRENCY = 4

# What Lambda's provided.al2023 environment sets besides the function's own variables.
BASE_ENVIRONMENT = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "_HANDLER": "bootstrap",
    "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
}

_LOG_LOCK = threading.Lock()


def log(line: str) -> None:
    with _LOG_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


@dataclass
class FunctionConfig:
    name: str
    command: list[str]  # the function's executable (and arguments)
    timeout: float  # seconds
    memory: int = 128
    environment: dict[str, str] = field(default_factory=dict)
    concurrency: int = DEFAULT_CONCURRENCY
    build: list[str] | None = None  # how to build command[0] when it is missing
    build_env: dict[str, str] | None = None  # its environment (None: this process's)
    region: str = tpl.DEFAULT_REGION

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{tpl.DEFAULT_ACCOUNT}:function:{self.name}"


def error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class Invocation:
    """One event on its way through the service; `finish` settles it once (first answer wins)."""

    def __init__(self, payload: bytes) -> None:
        self.id = str(uuid.uuid4())
        self.payload = payload
        self.queued_at = time.monotonic()
        self.started_at: float | None = None
        self.deadline_ms = 0
        self.result = b""
        self.function_error: str | None = None
        self.timer: threading.Timer | None = None  # ends the invocation at its deadline
        self.kill_timer: threading.Timer | None = None  # a chaos kill of its instance (Kills)
        self.done = threading.Event()
        self._lock = threading.Lock()

    def finish(self, result: bytes, function_error: str | None = None) -> bool:
        with self._lock:
            if self.done.is_set():
                return False
            self.result, self.function_error = result, function_error
            self.done.set()
        for timer in (self.timer, self.kill_timer):
            if timer is not None:
                timer.cancel()
        return True


class Instance:
    """One execution environment: a process of the function's binary."""

    def __init__(self, number: int, config: FunctionConfig) -> None:
        self.id = secrets.token_hex(6)
        self.number = number
        self.label = f"{config.name}[{number}]"
        self.state = "starting"  # starting -> idle <-> busy -> dead
        self.invocation: Invocation | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.binary_mtime = _mtime(config.command[0])
        self.started_at = time.monotonic()
        self.init_error: bytes | None = None
        self.killed = False  # SIGKILL sent: it gets no further work

    def kill(self) -> None:
        self.killed = True
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.kill()  # SIGKILL, as Lambda ends an environment
            except (ProcessLookupError, PermissionError):
                pass


def exit_reason(code: int) -> str:
    """How Lambda (its Go runtime interface) words a runtime process's end: "exit status 101", or for a
    signal "signal: killed", "signal: segmentation fault", ..."""
    if code >= 0:
        return f"exit status {code}"
    try:
        return f"signal: {signal.strsignal(-code).lower()}"  # glibc's names are Go's
    except (ValueError, AttributeError):
        return f"signal {-code}"


def _probability(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} {value!r}: want a probability from 0 to 1")
    return float(value)


class Kills:
    """Chaos: with probability `rate` an invocation (of one of `functions`; None: every function) has its
    instance killed with SIGKILL after a delay drawn uniformly from [0, min(KILL_WINDOW, Timeout)], if the
    invocation is still running then. Seeded; thread-safe; counts per function."""

    def __init__(self, rate: float = 0.0, seed: int = 0, functions: Iterable[str] | None = None) -> None:
        self.rate = _probability(rate, "kill rate")
        self.functions: set[str] | None = set(functions) if functions is not None else None
        self.seed = seed
        self.rng = random.Random(f"lambda-kills:{seed}")
        self.lock = threading.Lock()
        self.armed: collections.Counter[str] = collections.Counter()
        self.killed: collections.Counter[str] = collections.Counter()

    def draw(self, function: str, timeout: float) -> float | None:
        """Seconds after which this invocation's instance is to be killed, or None (no kill)."""
        if self.rate <= 0:
            return None
        with self.lock:
            if self.functions is not None and function not in self.functions:
                return None
            if self.rng.random() >= self.rate:
                return None
            self.armed[function] += 1
            return self.rng.uniform(0.0, min(KILL_WINDOW, timeout))

    def count_kill(self, function: str) -> None:
        with self.lock:
            self.killed[function] += 1

    def configure(self, doc: Any, known: Iterable[str]) -> None:
        """`{"rate": p, "functions": [...]}`: the rate (kept if absent) and the functions (all if absent)."""
        if not isinstance(doc, dict) or set(doc) - {"rate", "functions"}:
            raise ValueError('want {"rate": p, "functions": [name, ...]}')
        rate = _probability(doc["rate"], "rate") if "rate" in doc else self.rate
        functions = doc.get("functions")
        if functions is not None:
            if not isinstance(functions, list) or not all(isinstance(f, str) for f in functions):
                raise ValueError("functions: want a list of function names")
            unknown = sorted(set(functions) - set(known))
            if unknown:
                raise ValueError(f"unknown functions {unknown}: the service runs {sorted(known)}")
        with self.lock:
            self.rate = rate
            self.functions = set(functions) if functions is not None else None

    def state(self, known: Iterable[str] = ()) -> dict[str, Any]:
        with self.lock:
            names = sorted(set(known) | set(self.armed) | set(self.killed))
            return {"rate": self.rate, "functions": sorted(self.functions) if self.functions is not None else None,
                    "seed": self.seed, "armed": {n: self.armed[n] for n in names},
                    "killed": {n: self.killed[n] for n in names}}


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


class FunctionPool:
    """The instances of one function and the events waiting for one of them."""

    def __init__(self, config: FunctionConfig, runtime_base: str, log: Callable[[str], None] = log,
                 kills: Kills | None = None) -> None:
        self.config = config
        self.kills = kills
        self.runtime_base = runtime_base.rstrip("/")
        self.log = log
        self.cond = threading.Condition()
        self.pending: collections.deque[Invocation] = collections.deque()
        self.instances: dict[str, Instance] = {}
        self.started = 0  # instances ever started (numbers them)
        self.stopping = False
        self._build_lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ invoke

    def invoke(self, payload: bytes) -> Invocation:
        """Queue `payload` and wait until the function answered, failed or timed out."""
        invocation = Invocation(payload)
        with self.cond:
            self.pending.append(invocation)
            self._scale()
            self.cond.notify_all()
        invocation.done.wait()
        return invocation

    def _scale(self) -> None:
        """Start an instance if events wait and every instance is busy (call with the lock held)."""
        free = sum(1 for i in self.instances.values() if i.state in ("starting", "idle"))
        if len(self.pending) > free and len(self.instances) < self.config.concurrency and not self.stopping:
            self.started += 1
            instance = Instance(self.started, self.config)
            self.instances[instance.id] = instance
            threading.Thread(target=self._run, args=(instance,), daemon=True).start()

    def _run(self, instance: Instance) -> None:
        """Start the instance's process, wait for it to end, settle what it left behind."""
        program = self.config.command[0]
        if not Path(program).exists() and self.config.build:
            self._build()
        env = {**BASE_ENVIRONMENT, **self.config.environment,
               "AWS_LAMBDA_FUNCTION_NAME": self.config.name,
               "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.config.memory),
               "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.config.name}",
               "AWS_LAMBDA_LOG_STREAM_NAME": f"{datetime.now(timezone.utc):%Y/%m/%d}/[$LATEST]{instance.id}",
               "AWS_LAMBDA_RUNTIME_API": f"{self.runtime_base}{RUNTIME_PREFIX}/{self.config.name}/{instance.id}"}
        try:
            # In the service's process group: whoever stops the service's group stops its instances too.
            instance.process = subprocess.Popen(self.config.command, env=env, cwd=tpl.REPO_ROOT,
                                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT)
        except OSError as e:
            self.log(f"lambdas: {instance.label} cannot start {program}: {e}")
            self._ended(instance, lambda rid: error_payload(
                "Runtime.InvalidEntrypoint", f"RequestId: {rid} Error: cannot start {program}: {e}"))
            return
        self.log(f"lambdas: {instance.label} cold start (pid {instance.process.pid})")
        threading.Thread(target=self._init_watchdog, args=(instance,), daemon=True).start()
        assert instance.process.stdout is not None
        for raw in iter(instance.process.stdout.readline, b""):
            self.log(f"{instance.label} {raw.decode(errors='replace').rstrip()}")
        code = instance.process.wait()
        self._ended(instance, lambda rid: instance.init_error or error_payload(
            "Runtime.ExitError", f"RequestId: {rid} Error: Runtime exited with error: {exit_reason(code)}"))

    def _build(self) -> None:
        with self._build_lock:
            if Path(self.config.command[0]).exists() or not self.config.build:
                return
            self.log(f"lambdas: building {self.config.name}: {' '.join(self.config.build)}")
            subprocess.run(self.config.build, cwd=tpl.REPO_ROOT, stdin=subprocess.DEVNULL, check=False,
                           env=self.config.build_env)

    def _init_watchdog(self, instance: Instance) -> None:
        """Lambda gives an init phase INIT_TIMEOUT seconds."""
        time.sleep(INIT_TIMEOUT)
        if instance.state == "starting":
            self.log(f"lambdas: {instance.label} init did not finish within {INIT_TIMEOUT:g} s")
            instance.init_error = error_payload("Sandbox.Timedout", f"Error: Init timed out after "
                                                                    f"{INIT_TIMEOUT:.2f} seconds")
            instance.kill()

    def _ended(self, instance: Instance, error_for: Callable[[str], bytes]) -> None:
        """The instance's process is gone: its running event fails; an init failure fails a waiting one
        (with the error `error_for(request_id)`)."""
        with self.cond:
            was = instance.state
            instance.state = "dead"
            self.instances.pop(instance.id, None)
            running = instance.invocation
            if running is None and was == "starting" and self.pending:
                running = self.pending.popleft()  # the event whose cold start this was
            self.cond.notify_all()
        if running is not None and running.finish(error := error_for(running.id), "Unhandled"):
            self.log(f"lambdas: {instance.label} failed: {error.decode(errors='replace')}")
        with self.cond:
            self._scale()

    # ------------------------------------------------------------------------------------- runtime API

    def next_event(self, instance_id: str) -> Invocation | None:
        """Runtime API `next`: block until an event is there; None if the instance must stop."""
        with self.cond:
            instance = self.instances.get(instance_id)
            if instance is None or instance.killed:
                return None
            if instance.state == "starting":
                init_ms = (time.monotonic() - instance.started_at) * 1000
                self.log(f"lambdas: {instance.label} ready (init {init_ms:.0f} ms)")
            instance.state, instance.invocation = "idle", None
            self.cond.notify_all()
            while True:
                if _mtime(self.config.command[0]) != instance.binary_mtime:  # checked before taking work
                    self.log(f"lambdas: {instance.label} retired: {self.config.name} was rebuilt")
                    instance.state = "dead"
                    self.instances.pop(instance.id, None)
                    instance.kill()
                    self._scale()
                    return None
                if self.pending or instance.state != "idle" or self.stopping:
                    break
                self.cond.wait(1.0)
            if instance.state != "idle" or self.stopping:
                return None
            invocation = self.pending.popleft()
            instance.state, instance.invocation = "busy", invocation
            invocation.started_at = time.monotonic()
            invocation.deadline_ms = int(time.time() * 1000 + self.config.timeout * 1000)
            invocation.timer = threading.Timer(self.config.timeout, self._timed_out, args=(instance, invocation))
            invocation.timer.daemon = True
            invocation.timer.start()
            delay = self.kills.draw(self.config.name, self.config.timeout) if self.kills is not None else None
            if delay is not None:
                invocation.kill_timer = threading.Timer(delay, self._chaos_kill, args=(instance, invocation))
                invocation.kill_timer.daemon = True
                invocation.kill_timer.start()
        return invocation

    def _chaos_kill(self, instance: Instance, invocation: Invocation) -> None:
        """Kill the instance if `invocation` is still running in it; the process's end answers it
        (`_ended`: Runtime.ExitError, "signal: killed") unless its answer was already on the way."""
        with self.cond:
            if instance.invocation is not invocation or invocation.done.is_set() or instance.killed:
                return
            instance.kill()
        assert self.kills is not None
        self.kills.count_kill(self.config.name)
        ms = (time.monotonic() - (invocation.started_at or invocation.queued_at)) * 1000
        self.log(f"lambdas: {instance.label} killed (chaos) {ms:.0f} ms into RequestId: {invocation.id}")

    def _timed_out(self, instance: Instance, invocation: Invocation) -> None:
        message = f"RequestId: {invocation.id} Error: Task timed out after {self.config.timeout:.2f} seconds"
        if invocation.finish(error_payload("Sandbox.Timedout", message), "Unhandled"):
            self.log(f"REPORT {instance.label} RequestId: {invocation.id} Status: timeout after "
                     f"{self.config.timeout:g} s (instance killed)")
            instance.kill()

    def answer(self, instance_id: str, request_id: str, body: bytes, error: bool) -> bool:
        """Runtime API `response` / `error`; False if the request id is not this instance's."""
        with self.cond:
            instance = self.instances.get(instance_id)
            invocation = instance.invocation if instance else None
        if instance is None or invocation is None or invocation.id != request_id:
            return False
        if invocation.finish(body, "Unhandled" if error else None):
            ms = (time.monotonic() - (invocation.started_at or invocation.queued_at)) * 1000
            self.log(f"REPORT {instance.label} RequestId: {request_id} Duration: {ms:.0f} ms"
                     f"{' Status: error' if error else ''}")
        return True

    def init_failed(self, instance_id: str, body: bytes) -> None:
        """Runtime API `init/error`: the process exits next; its error goes to the waiting event."""
        with self.cond:
            instance = self.instances.get(instance_id)
        if instance is not None:
            instance.init_error = body or error_payload("Runtime.InitError", "init failed")

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            instances = list(self.instances.values())
            self.cond.notify_all()
        for instance in instances:
            instance.kill()


# ------------------------------------------------------------------------------------------------- server

_INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations/?$")
_RUNTIME = re.compile(rf"^{RUNTIME_PREFIX}/([^/]+)/([^/]+)/2018-06-01/runtime/"
                      r"(invocation/next|invocation/([^/]+)/(response|error)|init/error)$")


class LambdaHandler(JsonHandler):
    server_version = "lambdas"
    quiet = True
    pools: dict[str, FunctionPool]
    kills: Kills

    def do_GET(self) -> None:
        if self.path.split("?")[0] == KILLS_PATH:
            self.send_json(200, self.kills.state(self.pools))
            return
        m = _RUNTIME.match(self.path.split("?")[0])
        if m is None or m.group(3) != "invocation/next":
            self.send_json(404, {"message": "not found"})
            return
        pool = self.pools.get(m.group(1))
        invocation = pool.next_event(m.group(2)) if pool else None
        if invocation is None or pool is None:
            self.close_connection = True  # the instance is being stopped: no answer
            return
        trace = f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"
        self.send_bytes(200, invocation.payload, headers={
            "Lambda-Runtime-Aws-Request-Id": invocation.id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": pool.config.arn,
            "Lambda-Runtime-Trace-Id": trace,
        })

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        body = self.read_body()
        if path == KILLS_PATH:
            try:
                self.kills.configure(json.loads(body or b"{}"), self.pools)
            except ValueError as e:  # JSONDecodeError included
                self.send_json(400, {"message": f"bad kills document: {e}"})
                return
            self.send_json(200, self.kills.state(self.pools))
            return
        if (m := _INVOKE.match(path)) is not None:
            self.invoke(m.group(1), body)
            return
        m = _RUNTIME.match(path)
        pool = self.pools.get(m.group(1)) if m else None
        if m is None or pool is None:
            self.send_json(404, {"message": "not found"})
        elif m.group(3) == "init/error":
            pool.init_failed(m.group(2), body)
            self.send_json(202, {"status": "OK"})
        elif m.group(3) == "invocation/next":
            self.send_json(405, {"message": "GET only"})
        elif pool.answer(m.group(2), m.group(4), body, error=m.group(5) == "error"):
            self.send_json(202, {"status": "OK"})
        else:
            self.send_json(400, {"errorType": "InvalidRequestID", "errorMessage": "unknown request id"})

    def invoke(self, name: str, body: bytes) -> None:
        name = name.split(":function:")[-1].split(":")[0]  # a name, a partial or a full ARN
        pool = self.pools.get(name)
        if pool is None:
            self.send_json(404, {"Type": "User", "Message": f"Function not found: "
                                 f"arn:aws:lambda:{tpl.DEFAULT_REGION}:{tpl.DEFAULT_ACCOUNT}:function:{name}"},
                           headers={"x-amzn-ErrorType": "ResourceNotFoundException"})
            return
        invocation = pool.invoke(body)
        headers = {"X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": invocation.id}
        if invocation.function_error:
            headers["X-Amz-Function-Error"] = invocation.function_error
        self.send_bytes(200, invocation.result, headers=headers)


def make_server(host: str, port: int, configs: list[FunctionConfig], log: Callable[[str], None] = log,
                kills: Kills | None = None) -> tuple[Server, dict[str, FunctionPool]]:
    """A ready-to-serve Lambda service (call serve_forever); stop the pools after shutting it down.
    `kills`: the chaos kills (default: none until `POST /_local/kills`)."""
    server = Server((host, port), LambdaHandler)
    base = f"http://{host}:{server.server_address[1]}"
    kills = kills if kills is not None else Kills()
    pools = {c.name: FunctionPool(c, base, log, kills) for c in configs}
    server.RequestHandlerClass = type("BoundLambdaHandler", (LambdaHandler,), {"pools": pools, "kills": kills})
    return server, pools


def load_configs(path: Path, concurrency: int, endpoint: str | None, region: str,
                 profile: str = "debug") -> list[FunctionConfig]:
    """The functions file the bootstrap writes (`--functions-out`), as configs for the binaries of
    `profile` (target/debug, or the release build as deployed: infra.local.release)."""
    doc: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    configs = []
    for name, spec in sorted(doc.items()):
        env = {**spec["environment"], "AWS_REGION": region, "AWS_DEFAULT_REGION": region}
        if endpoint:
            env["AWS_ENDPOINT_URL"] = endpoint
        reserved = spec.get("reservedConcurrency")
        configs.append(FunctionConfig(
            name=name, command=[str((release.binary_dir() if profile == "release"
                                     else tpl.REPO_ROOT / "target" / "debug") / name)],
            timeout=float(spec["timeout"]),
            memory=int(spec.get("memory", 128)), environment=env,
            concurrency=max(1, min(concurrency, reserved if reserved is not None else concurrency)),
            build=(release.command([], bins=[name]) if profile == "release" else
                   ["cargo", "build", "--manifest-path", str(tpl.REPO_ROOT / "Cargo.toml"), "--bin", name]),
            build_env=release.environment() if profile == "release" else None,
            region=region))
    return configs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.lambdas", description=__doc__.split("\n")[0])
    parser.add_argument("--functions", required=True, type=Path, help="the bootstrap's --functions-out file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--profile", choices=["debug", "release"], default="debug",
                        help="run target/<profile>/<name> (release: as deployed, for benchmarks)")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--concurrency", type=int,
                        default=int(os.environ.get("LAMBDA_CONCURRENCY", DEFAULT_CONCURRENCY)),
                        help="instances per function at most (Lambda scales far wider)")
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="the AWS emulator the functions call (AWS_ENDPOINT_URL)")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", tpl.DEFAULT_REGION))
    parser.add_argument("--kill-rate", metavar="P", default=os.environ.get("LAMBDA_KILL_RATE") or "0",
                        help="chaos: kill an invocation's instance (SIGKILL) within its first 50 ms with probability "
                             f"P (default $LAMBDA_KILL_RATE, else 0: off; POST {KILLS_PATH} changes it)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the kills (default $LAMBDA_SEED, else a random one; printed at start)")
    args = parser.parse_args(argv)
    try:
        seed = args.seed if args.seed is not None else int(os.environ.get("LAMBDA_SEED") or random.randrange(2**32))
        try:
            rate = float(args.kill_rate)
        except ValueError:
            raise ValueError(f"--kill-rate {args.kill_rate!r}: want a probability from 0 to 1") from None
        kills = Kills(_probability(rate, "--kill-rate"), seed)
    except ValueError as e:
        parser.error(str(e))
    configs = load_configs(args.functions, args.concurrency, args.endpoint, args.region, args.profile)
    server, pools = make_server(args.host, args.port, configs, kills=kills)
    log(f"lambdas: kill rate {kills.rate:g} of invocations, seed {seed} (--seed / LAMBDA_SEED repeats it; "
        f"POST {KILLS_PATH} changes it)")
    for config in configs:
        log(f"lambdas: {config.name}: Timeout {config.timeout:g} s, {config.memory} MB, "
            f"up to {config.concurrency} instances")
    log(f"lambdas: invoke API on http://{args.host}:{server.server_address[1]}")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop.wait()
    log("lambdas: stopping")
    for pool in pools.values():
        pool.stop()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
