"""The AWS emulator: moto's server, with DynamoDB requests serialized and IAM enforced per function.

    python -m infra.local.emulator -H 127.0.0.1 -p 4566 [--state FILE] [--gsi-lag-ms MIN:MAX] [--seed N]
        [--dynamodb-throttle-rate P] [--dynamodb-error-rate P]

IAM: requests signed with a function's access key are checked against that function's
policy before moto sees them (`infra.local.enforcer`). The administrator keys pass unchecked:
`test` (enforcer.ADMIN_KEY), the AWS_ACCESS_KEY_ID of the launcher's environment (the one `make dev`'s
bootstrap signs with) and each `--admin-key`. A request signed with any other key is refused as AWS
refuses an unknown access key id (UnrecognizedClientException; InvalidClientTokenId for SQS).

The emulator, one idea per file: `serialized.py` (one DynamoDB request at a time), `speedups.py`
(moto's costs per request removed: SendMessage, the service lookup, the access log, GetRecords),
`transactions.py` (TransactWriteItems' rollback and streams), `gsi_lag.py` (indexes that lag behind
their table), `faults.py` (DynamoDB faults for chaos runs), `operations.py` (`GET /_local/operations`),
`persistence.py` (`--state FILE`), `stopping.py` (a stop answers nothing the saved state lacks),
`sms_voice.py` (End User Messaging SMS, handed to the fake carrier: `--sms-voice-url`); IAM is
`infra.local.enforcer`'s. Each file's docstring says why.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

from infra.local import enforcer
from infra.local.emulator.faults import (DYNAMODB_TARGET, FAULTS_PATH, INTERNAL_ERROR, THROTTLED, DynamoDBFaults,
                                         _rate)
from infra.local.emulator.gsi_lag import GsiLag, enable_gsi_lag, parse_lag
from infra.local.emulator.operations import OPERATIONS_PATH, OperationClock, operation
from infra.local.emulator.persistence import PERSISTED, restore, save, snapshot
from infra.local.emulator.serialized import _DYNAMODB, SerializedDynamoDB
from infra.local.emulator.sms_voice import SmsVoiceProxy
from infra.local.emulator.stopping import StopGate
from infra.local.emulator.speedups import QuietRequestHandler, patch_dispatch, patch_sqs, patch_stream_records
from infra.local.emulator.transactions import patch_dynamodb_transactions

__all__ = [
    "DYNAMODB_TARGET", "FAULTS_PATH", "INTERNAL_ERROR", "OPERATIONS_PATH", "PERSISTED", "THROTTLED", "_DYNAMODB",
    "DynamoDBFaults", "GsiLag", "OperationClock", "QuietRequestHandler", "SerializedDynamoDB", "enable_gsi_lag",
    "main", "operation", "parse_lag", "patch_dispatch", "patch_dynamodb_transactions", "patch_sqs",
    "patch_stream_records", "restore", "save", "snapshot",
]


def _probability_option(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} {text!r}: want a probability from 0 to 1") from None
    return _rate(value, name)


# How long a stop waits for the requests already let in before it saves the state.
_STOP_WAIT_S = 5.0


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.local.emulator", description=__doc__.split("\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    parser.add_argument("--state", type=Path, help="keep DynamoDB, SQS and EventBridge state in this file across restarts")
    parser.add_argument("--sms-voice-url", default=os.environ.get("EMULATOR_SMS_VOICE_URL") or None,
                        help="where End User Messaging SMS requests (signed for sms-voice) go once IAM allowed them: "
                             "the fake carrier (default $EMULATOR_SMS_VOICE_URL; unset: not emulated)")
    parser.add_argument("--access-log", action="store_true", help="log one line per request (costs CPU under load)")
    parser.add_argument("--admin-key", action="append", default=[], metavar="ACCESS_KEY_ID",
                        help=f"an access key id whose requests pass unchecked, besides {enforcer.ADMIN_KEY!r} and "
                             "$AWS_ACCESS_KEY_ID (repeatable); any other unregistered key is refused")
    parser.add_argument("--gsi-lag-ms", metavar="MIN:MAX", default=os.environ.get("EMULATOR_GSI_LAG_MS") or "0",
                        help="each write reaches the tables' global secondary indexes after a delay drawn uniformly "
                             "from MIN..MAX ms, as in DynamoDB (e.g. 50:400; default $EMULATOR_GSI_LAG_MS, else 0: off)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the GSI lag's delays and of the DynamoDB faults (default $EMULATOR_SEED, else "
                             "a random one; printed at start)")
    parser.add_argument("--dynamodb-throttle-rate", metavar="P",
                        default=os.environ.get("EMULATOR_DYNAMODB_THROTTLE_RATE") or "0",
                        help="answer each DynamoDB request with probability P, before it is processed, as DynamoDB "
                             "answers a throttled one (400 ProvisionedThroughputExceededException; default "
                             "$EMULATOR_DYNAMODB_THROTTLE_RATE, else 0: off; POST /_local/faults changes it)")
    parser.add_argument("--dynamodb-error-rate", metavar="P",
                        default=os.environ.get("EMULATOR_DYNAMODB_ERROR_RATE") or "0",
                        help="answer each DynamoDB request with probability P, before it is processed, with HTTP 500 "
                             "InternalServerError (default $EMULATOR_DYNAMODB_ERROR_RATE, else 0: off)")
    args = parser.parse_args(argv)
    try:
        low_ms, high_ms = parse_lag(args.gsi_lag_ms)
        seed = args.seed if args.seed is not None else int(os.environ.get("EMULATOR_SEED") or random.randrange(2**32))
        throttle_rate = _probability_option(args.dynamodb_throttle_rate, "--dynamodb-throttle-rate")
        error_rate = _probability_option(args.dynamodb_error_rate, "--dynamodb-error-rate")
    except ValueError as e:
        parser.error(str(e))
    enforcer.admit([os.environ.get("AWS_ACCESS_KEY_ID"), *args.admin_key])
    patch_dispatch()
    patch_stream_records()
    patch_sqs()
    patch_dynamodb_transactions()
    if high_ms > 0:
        enable_gsi_lag(GsiLag(low_ms, high_ms, seed))
        print(f"emulator: GSI lag {low_ms}:{high_ms} ms per write, seed {seed} (--seed / EMULATOR_SEED repeats it)",
              file=sys.stderr, flush=True)
    else:
        print("emulator: GSI lag off (index queries see every write at once)", file=sys.stderr, flush=True)
    if throttle_rate > 0 or error_rate > 0:
        print(f"emulator: DynamoDB faults: throttled {throttle_rate:g}, internal errors {error_rate:g} of requests, "
              f"seed {seed} (GET/POST {FAULTS_PATH})", file=sys.stderr, flush=True)
    if args.state and args.state.exists():
        count = restore(args.state.read_bytes())
        print(f"emulator: restored {count} service backends from {args.state}", file=sys.stderr, flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]
    try:
        faults = DynamoDBFaults(SerializedDynamoDB(app), throttle_rate, error_rate, seed)
        services = SmsVoiceProxy(faults, args.sms_voice_url)
        gate = StopGate(OperationClock(enforcer.IamEnforcer(services)))
        run_simple(args.host, args.port, gate, threaded=True,
                   request_handler=MotoRequestHandler if args.access_log else QuietRequestHandler)
    finally:
        if args.state:
            unfinished = gate.close(timeout=_STOP_WAIT_S)
            if unfinished:
                print(f"emulator: {unfinished} requests still running after {_STOP_WAIT_S} s; saving without "
                      "waiting for them", file=sys.stderr, flush=True)
            save(args.state)
            print(f"emulator: state saved to {args.state}", file=sys.stderr, flush=True)
