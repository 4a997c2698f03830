"""`make dev`: the whole local stack in one command, stopped cleanly with Ctrl-C.

    python -m infra.local.dev [--stack texting-dev] [--emulator-port 4566] [--gateway-port 3000]
        [--carrier-port 4010] [--lambda-port 9000] [--portal-port 8080] [--env-file .env.local] [--health-timeout SECONDS]
        [--emulator-state FILE] [--emulator-gsi-lag-ms MIN:MAX] [--lambda-concurrency N] [--template FILE]
        [--no-build] [--no-seed] [--no-lambda]

1. Loads .env.local (created from .env.example with fresh secrets if absent).
2. Checks that the gateway, carrier and lambda ports are free. If the emulator port is taken by something
   that answers as an AWS emulator (LocalStack, or a moto you started) it is used as is; otherwise
   moto (`python -m infra.local.emulator`: moto_server with DynamoDB requests serialized and each
   function's calls checked against its IAM policy) is started on it, keeping its data in
   --emulator-state FILE (DEV_EMULATOR_STATE) across runs when given. Its global secondary indexes lag
   behind their table as DynamoDB's do: each write reaches them after a delay drawn from
   --emulator-gsi-lag-ms MIN:MAX (DEV_EMULATOR_GSI_LAG_MS, from the shell or the env file; default
   50:400; 0 is off), so code that queries an index for what it just wrote fails here as in AWS.
3. Creates infra/template.yaml's resources on the emulator (infra.local.bootstrap): the secrets take
   their values from .env.local (SECRETS_FROM_ENV), each function's identity and policy are registered;
   writes the union of the functions' environments to .local/<stack>.env and each function's own
   settings to .local/<stack>.functions.json.
4. Builds each function binary (`cargo build --bin <name>`; skip with --no-build), then starts, each in
   its own process group: the local Lambda service (infra.local.lambdas: each function in its own
   instances, with only its own environment and credentials, up to --lambda-concurrency at once, every
   invocation bounded by its Timeout; rebuilt on source changes unless --no-build), the gateway, the
   fake carrier, the bridge (SQS triggers and the dispatch schedule) and the reference portal's web
   server (infra.local.portal; its origin is added to PORTAL_ORIGINS, the API's CORS origins).
5. Waits for GET /v1/health through the gateway, seeds the demo dealer and contacts from
   infra/local/seed.json through the HTTP API, prints the addresses, a token and the portal's
   signed-in link.

Tests can run a second stack beside the first with other ports and a stack name, e.g.
`python -m infra.local.dev --stack texting-test --emulator-port 4567 --gateway-port 3001
--carrier-port 4011 --lambda-port 9001 --no-seed` (or DEV_STACK, DEV_EMULATOR_PORT, DEV_GATEWAY_PORT,
DEV_CARRIER_PORT, DEV_LAMBDA_PORT). With a non-default gateway or carrier port, PUBLIC_BASE_URL and
CARRIER_BASE_URL follow those ports. The line "dev: ready" is printed once everything answers.

This module is `run` and the settings it starts the stack with; the child processes are
`supervisor.py`'s, the port checks `ports.py`'s, the health wait and the demo data `seeding.py`'s.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from infra.local import numbers, release
from infra.local import template as tpl
from infra.local.bootstrap import Bootstrap, BootstrapError, write_env, write_functions
from infra.local.common import ENV_EXAMPLE, ENV_LOCAL, ensure_env_local, ensure_generated, read_env_file
from infra.local.lambdas import DEFAULT_CONCURRENCY
from infra.local.ports import Ports, answers_as_aws, check_ports, port_in_use, who_listens
from infra.local.rebuild import Rebuilder
from infra.local.seeding import SEED_FILE, http, seed, wait_for_health
from infra.local.supervisor import STOP_GRACE, Children, DevError, wait_until
from infra.local.token import TokenError, issue

# Re-exported: the supervisor, the port checks and the seeding were part of this module.
__all__ = ["SEED_FILE", "STOP_GRACE", "Children", "DevError", "Ports", "answers_as_aws", "check_ports", "http",
           "main", "port_in_use", "run", "seed", "wait_for_health", "wait_until", "who_listens"]

VENV_BIN = tpl.REPO_ROOT / ".venv" / "bin"
HEALTH_TIMEOUT = 20 * 60  # the first compile of the workspace can take minutes
GSI_LAG_MS = "50:400"  # the emulator's GSI lag (ms, MIN:MAX) unless DEV_EMULATOR_GSI_LAG_MS says otherwise

# Template parameter <- .env.local variable.
PARAMS_FROM_ENV = {
    "PortalOrigins": "PORTAL_ORIGINS",
    "TwilioAccountSid": "TWILIO_ACCOUNT_SID",
    "CarrierBaseUrl": "CARRIER_BASE_URL",
    "CarrierTimeoutSeconds": "CARRIER_TIMEOUT_SECONDS",
    "SendRatePerNumber": "SEND_RATE_PER_NUMBER",
    "DailySegmentsPerBrand": "DAILY_SEGMENTS_PER_BRAND",
    "PublicBaseUrl": "PUBLIC_BASE_URL",
    "NumberPool": "NUMBER_POOL",
    "DueShards": "DUE_SHARDS",
    "LogLevel": "LOG_LEVEL",
    "CaBundle": "SSL_CERT_FILE",
    "EndUserMessagingConfigurationSet": "EUM_CONFIGURATION_SET",
    "EndUserMessagingOriginationArns": "EUM_ORIGINATION_ARNS",
}


# Secret resource (its value locally) <- .env.local variable. A GenerateSecretString secret without one
# gets a generated value when it is first created.
SECRETS_FROM_ENV = {
    "CodeHashKeySecret": "CODE_HASH_KEY",
    # The operator's step in AWS (docs/operations.md): the account's token goes into the secret.
    "TwilioAuthTokenSecret": "TWILIO_AUTH_TOKEN",
}


# ----------------------------------------------------------------------------------------------- builds

def prebuild(children: Children, env: Mapping[str, str], template: Mapping[str, Any], profile: str = "debug") -> None:
    """Build each function binary the Lambda service runs (target/debug/<name>, or the release build as
    deployed: infra.local.release), so the first invocations do not wait for a compile. A failure is a warning: the watch rebuilds when the code is fixed."""
    binaries = sorted(tpl.function_settings(template))
    print(f"dev: building {', '.join(binaries)} ({profile}; the first build takes several minutes)", flush=True)
    if profile == "release":
        # One command for every function, as `make bench-build` runs it: the same feature set, so
        # what it built is reused (a per-binary build would unify features differently and rebuild).
        started = time.monotonic()
        code = children.run_step("build", release.command(binaries), release.environment(env))
        print(f"dev: release build {'done' if code == 0 else f'failed (exit {code})'} in "
              f"{time.monotonic() - started:.0f} s", flush=True)
        return
    for binary in binaries:
        started = time.monotonic()
        code = children.run_step("build", ["cargo", "build", "--manifest-path", "Cargo.toml", "--bin", binary], env)
        if code == 0:
            print(f"dev: built {binary} in {time.monotonic() - started:.0f} s", flush=True)
        else:
            print(f"dev: warning: `cargo build --bin {binary}` failed (exit {code}); continuing", flush=True)


# ------------------------------------------------------------------------------------------------- main

def child_environment(settings: Mapping[str, str], stack_env: Mapping[str, str], ports: Ports) -> dict[str, str]:
    """What every child sees: the shell, .env.local, the stack's resources, and the local endpoints."""
    env = {**os.environ, **settings, **stack_env}
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports.emulator}",
        "AWS_REGION": settings.get("AWS_REGION") or tpl.DEFAULT_REGION,
        "AWS_DEFAULT_REGION": settings.get("AWS_REGION") or tpl.DEFAULT_REGION,
        "AWS_ACCESS_KEY_ID": settings.get("AWS_ACCESS_KEY_ID") or "test",
        "AWS_SECRET_ACCESS_KEY": settings.get("AWS_SECRET_ACCESS_KEY") or "test",
        "LAMBDA_ENDPOINT": f"http://127.0.0.1:{ports.lambda_}",
        # As the numbers' webhook is configured in Twilio: retried on a 5xx or a failed
        # connection (Twilio's connection overrides; by default it retries neither a 5xx nor
        # a read timeout).
        "INBOUND_WEBHOOK_URL": f"http://127.0.0.1:{ports.gateway}/v1/carrier/twilio/inbound#rc=3&rp=all",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("AWS_PROFILE", None)
    return env


def local_settings(env_file: Path, ports: Ports, example: Path = ENV_EXAMPLE) -> dict[str, str]:
    """.env.local, with the base URLs following non-default gateway/carrier ports. A setting added to
    .env.example after .env.local was created (e.g. PORTAL_ORIGINS) takes the example's value, so an
    older checkout gets it too; secrets are never taken from the example (they are empty there)."""
    defaults = {k: v for k, v in read_env_file(example).items() if v} if example.exists() else {}
    settings = {**defaults, **read_env_file(env_file)}
    if ports.gateway != Ports.gateway:
        settings["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{ports.gateway}"
    if ports.carrier != Ports.carrier:
        settings["CARRIER_BASE_URL"] = f"http://127.0.0.1:{ports.carrier}"
    origins = [o for o in settings.get("PORTAL_ORIGINS", "").split(",") if o.strip()]
    if (portal := portal_origin(ports)) not in origins:
        settings["PORTAL_ORIGINS"] = ",".join([*origins, portal])
    return settings


def portal_origin(ports: Ports) -> str:
    return f"http://127.0.0.1:{ports.portal}"


def portal_link(ports: Ports, token: str, screen: str = "account=A-1001") -> str:
    """The signed-in link staff follow from the DMS: the screen and the token in the fragment."""
    return f"{portal_origin(ports)}/#{screen}&token={token}"


def number_pool(settings: Mapping[str, str], env_file: Path) -> list[str]:
    """The numbers NUMBER_POOL stands for (the functions get it as written: ranges stay compact)."""
    try:
        return numbers.expand(settings.get("NUMBER_POOL", ""))
    except numbers.PoolError as e:
        raise DevError(f"{env_file}: {e}") from None


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def emulator_command(port: int, state: str | None, admin_key: str | None = None,
                     gsi_lag_ms: str | None = None, sms_voice_url: str | None = None) -> list[str]:
    """The emulator launcher on `port`; with `state`, its data survives a restart (saved on stop).
    `admin_key`: the key the stack's own processes sign with (settings' AWS_ACCESS_KEY_ID), allowed
    as an administrator (any other key the emulator does not know is refused). `gsi_lag_ms`
    (MIN:MAX): how far its global secondary indexes lag behind their table. `sms_voice_url`: the fake
    carrier, which plays End User Messaging SMS behind the emulator."""
    cmd = [str(VENV_BIN / "python"), "-m", "infra.local.emulator", "-H", "127.0.0.1", "-p", str(port)]
    if sms_voice_url:
        cmd += ["--sms-voice-url", sms_voice_url]
    if admin_key:
        cmd += ["--admin-key", admin_key]
    if gsi_lag_ms:
        cmd += ["--gsi-lag-ms", gsi_lag_ms]
    return [*cmd, "--state", state] if state else cmd


def gsi_lag(args: argparse.Namespace, settings: Mapping[str, str]) -> str:
    """The emulator's GSI lag: --emulator-gsi-lag-ms, else DEV_EMULATOR_GSI_LAG_MS (shell, then the env
    file), else GSI_LAG_MS; MIN:MAX milliseconds (or N: N:N; 0 is off)."""
    value = (args.emulator_gsi_lag_ms or settings.get("DEV_EMULATOR_GSI_LAG_MS") or GSI_LAG_MS).strip()
    m = re.fullmatch(r"(\d+)(?::(\d+))?", value)
    if m is None or int(m.group(1)) > int(m.group(2) or m.group(1)):
        raise DevError(f"GSI lag {value!r} (DEV_EMULATOR_GSI_LAG_MS / --emulator-gsi-lag-ms): want MIN:MAX "
                       "milliseconds with MIN <= MAX, e.g. 50:400 (0 is off)")
    return value


def run(args: argparse.Namespace) -> int:
    """Start everything, wait for Ctrl-C / SIGTERM (KeyboardInterrupt), stop everything."""
    ports = Ports(args.emulator_port, args.gateway_port, args.carrier_port, args.lambda_port, args.portal_port)
    env_file = Path(args.env_file)
    if env_file == ENV_LOCAL and ensure_env_local():
        print(f"dev: created {ENV_LOCAL} from .env.example with fresh secrets", flush=True)
    ensure_generated(env_file, "LOCAL_STAFF_PASSWORD")  # a .env.local from before the user pool
    settings = local_settings(env_file, ports)
    children = Children()
    stoppers: list[Callable[[], None]] = []
    try:
        print(f"dev: NUMBER_POOL holds {len(number_pool(settings, env_file))} numbers", flush=True)
        reuse_emulator = check_ports(ports)
        endpoint = f"http://127.0.0.1:{ports.emulator}"
        if reuse_emulator:
            print(f"dev: using the AWS emulator already answering on {endpoint}", flush=True)
        else:
            moto_log = tpl.REPO_ROOT / ".local" / f"{args.stack}-moto.log"
            print(f"dev: starting the emulator (moto) on {endpoint} (log: {moto_log})", flush=True)
            if args.emulator_state:
                print(f"dev: the emulator keeps its state in {args.emulator_state} across runs", flush=True)
            lag = gsi_lag(args, settings)
            print(f"dev: the emulator's GSIs lag {lag} ms behind their table (DEV_EMULATOR_GSI_LAG_MS; 0 is off)",
                  flush=True)
            children.start("moto", emulator_command(ports.emulator, args.emulator_state,
                                                    settings.get("AWS_ACCESS_KEY_ID"), lag,
                                                    f"http://127.0.0.1:{ports.carrier}"),
                           {**os.environ, "PYTHONUNBUFFERED": "1"}, log_file=moto_log)
            if not wait_until(lambda: answers_as_aws(ports.emulator), 30):
                raise DevError(f"moto_server did not answer on {endpoint} within 30 s")

        # The fake carrier first: it also plays End User Messaging, whose configuration set the bootstrap
        # makes through the emulator.
        children.start("carrier", [sys.executable, "-m", "infra.local.fake_carrier", "--port", str(ports.carrier)],
                       child_environment(settings, {}, ports))
        if not wait_until(lambda: port_in_use(ports.carrier), 15):
            raise DevError(children.dead() or f"the fake carrier did not start on port {ports.carrier} within 15 s")
        params = {p: settings[v] for p, v in PARAMS_FROM_ENV.items() if v in settings}
        secrets = {s: settings[v] for s, v in SECRETS_FROM_ENV.items() if settings.get(v)}
        region = settings.get("AWS_REGION") or tpl.DEFAULT_REGION
        template = tpl.load(args.template)
        boot = Bootstrap(template, args.stack, params, endpoint=endpoint, region=region, secrets=secrets,
                         log=lambda line: print(f"[bootstrap] {line}", flush=True))
        boot.run()
        stack_env = boot.environment()
        stack_env_file = tpl.REPO_ROOT / ".local" / f"{args.stack}.env"
        write_env(stack_env_file, stack_env)
        functions_file = tpl.REPO_ROOT / ".local" / f"{args.stack}.functions.json"
        write_functions(functions_file, boot.functions())
        env = child_environment(settings, stack_env, ports)

        profile = args.profile or settings.get("DEV_PROFILE") or "debug"
        if not args.no_lambda:
            if not args.no_build:
                prebuild(children, env, template, profile)
                if profile == "debug":  # the watch rebuilds the debug binaries on change
                    rebuilder = Rebuilder(tpl.function_settings(template), env)
                    rebuilder.start()
                    stoppers.append(rebuilder.stop)
            children.start("lambda", [sys.executable, "-m", "infra.local.lambdas", "--functions", str(functions_file),
                                      "--host", "127.0.0.1", "--port", str(ports.lambda_), "--endpoint", endpoint,
                                      "--region", region, "--concurrency", str(args.lambda_concurrency),
                                      "--profile", profile], env)
        py = [sys.executable, "-m"]
        children.start("gateway", py + ["infra.local.gateway", "--port", str(ports.gateway),
                                         "--template", args.template], env)
        children.start("bridge", py + ["infra.local.bridge", "--stack", args.stack, "--endpoint", endpoint,
                                        "--template", args.template], env)
        base = f"http://127.0.0.1:{ports.gateway}"
        children.start("portal", py + ["infra.local.portal", "--port", str(ports.portal), "--api-base", base,
                                        "--client-id", stack_env.get("USER_POOL_CLIENT_ID", ""),
                                        "--identity-upstream", endpoint], env)
        if not wait_until(lambda: all(port_in_use(p) for p in (ports.gateway, ports.carrier, ports.portal)), 15):
            raise DevError(children.dead() or "the gateway, the fake carrier or the portal did not start within 15 s")

        # The demo staff user administers the demo dealer (PUT /v1/dealer needs the dealer-admin role).
        token = issue(settings, stack_env, endpoint, "demo-dealer", "staff-1", ["dealer-admin"])
        if not args.no_lambda:
            wait_for_health(base, children, args.health_timeout)
            if not args.no_seed:
                seed(base, settings, token)
        print(f"""
dev: ready — stack {args.stack}
  HTTP API (gateway)  {base}
  AWS emulator        {endpoint}
  fake carrier        http://127.0.0.1:{ports.carrier}   (open it in a browser to play the phone)
  lambda invoke API   http://127.0.0.1:{ports.lambda_}   (each function: its own env, IAM identity and Timeout)
  functions           {functions_file}
  reference portal    {portal_origin(ports)}/
  portal sign-in       staff-1 / {settings["LOCAL_STAFF_PASSWORD"]}   (`make token DEALER=... USER=...` makes others)
  demo dealer token (demo-dealer / staff-1, role dealer-admin; the user pool's ID token, valid 1 h):
{token}
  the portal, signed in as demo-dealer staff, on account A-1001:
{portal_link(ports, token)}
Ctrl-C stops everything.""", flush=True)

        while (dead := children.dead()) is None:
            time.sleep(1)
        raise DevError(dead)
    except KeyboardInterrupt:
        print("dev: stopping", flush=True)
        return 0
    except (DevError, BootstrapError, TokenError, tpl.TemplateError) as e:
        print(f"dev: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        for stop in stoppers:
            stop()
        children.stop()


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m infra.local.dev", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default=env.get("DEV_STACK", "texting-dev"))
    parser.add_argument("--emulator-port", type=int, default=int(env.get("DEV_EMULATOR_PORT", Ports.emulator)))
    parser.add_argument("--gateway-port", type=int, default=int(env.get("DEV_GATEWAY_PORT", Ports.gateway)))
    parser.add_argument("--carrier-port", type=int, default=int(env.get("DEV_CARRIER_PORT", Ports.carrier)))
    parser.add_argument("--lambda-port", type=int, default=int(env.get("DEV_LAMBDA_PORT", Ports.lambda_)))
    parser.add_argument("--portal-port", type=int, default=int(env.get("DEV_PORTAL_PORT", Ports.portal)))
    parser.add_argument("--env-file", default=str(ENV_LOCAL))
    parser.add_argument("--template", default=env.get("DEV_TEMPLATE") or str(tpl.TEMPLATE_PATH),
                        help="the template to run (default infra/template.yaml; tests run altered copies)")
    parser.add_argument("--emulator-state", default=env.get("DEV_EMULATOR_STATE") or None,
                        help="keep the emulator's data in this file across runs (default: start empty)")
    parser.add_argument("--emulator-gsi-lag-ms", metavar="MIN:MAX", default=env.get("DEV_EMULATOR_GSI_LAG_MS") or None,
                        help="each write reaches the emulator's global secondary indexes after MIN..MAX ms, as in "
                             f"DynamoDB (DEV_EMULATOR_GSI_LAG_MS, also read from the env file; default {GSI_LAG_MS}; "
                             "0 is off)")
    parser.add_argument("--health-timeout", type=float, default=HEALTH_TIMEOUT)
    parser.add_argument("--lambda-concurrency", type=int,
                        default=int(env.get("DEV_LAMBDA_CONCURRENCY", DEFAULT_CONCURRENCY)),
                        help="instances each function may run at once (default %(default)s)")
    parser.add_argument("--profile", choices=["debug", "release"], default=env.get("DEV_PROFILE") or None,
                        help="run the functions' debug (default) or release builds (DEV_PROFILE, also read "
                             "from the env file; benchmarks use release, as deployed)")
    parser.add_argument("--no-seed", action="store_true", help="do not create the demo dealer and contacts")
    parser.add_argument("--no-build", action="store_true",
                        help="do not build the functions first nor on change (a missing one is built on first use)")
    parser.add_argument("--no-lambda", action="store_true",
                        help="do not start the local Lambda service (something else serves the invoke API)")
    args = parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM):  # explicit: a background job may inherit SIGINT ignored
        signal.signal(sig, _interrupt)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
