"""The emulator's state kept across a restart (`--state FILE`).

AWS keeps DynamoDB items and SQS messages through anything; moto keeps them in memory.
With `--state FILE` the emulator writes its DynamoDB, SQS, EventBridge, Secrets Manager, Cognito and SNS
state (and the registered function identities) to FILE when it is stopped (SIGTERM or
SIGINT) and reads it back when it starts, so a restart loses nothing: queued and in-flight
messages keep their visibility timers and receive counts. A kill -9 loses what changed
since the last start, as a crashed emulator would.
"""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path
from typing import Any

import moto.cognitoidp.models as cognito_models
import moto.sqs.models as sqs_models
from moto.backends import get_backend

from infra.local import enforcer
from infra.local.emulator.serialized import _DYNAMODB

# The services whose state outlives a restart (the ones the template uses).
PERSISTED = ("dynamodb", "sqs", "events", "secretsmanager", "cognito-idp", "sns")
_IDENTITIES_KEY = "_local_iam"  # the enforcer's registered identities, beside the backends


def _queue_state(queue: Any) -> dict[str, Any]:
    state = dict(queue.__dict__)
    state.pop("_messages_lock", None)  # a threading.Condition: recreated on load
    return state


def _queue_restore(queue: Any, state: dict[str, Any]) -> None:
    queue.__dict__.update(state)
    queue._messages_lock = threading.Condition()


sqs_models.Queue.__getstate__ = _queue_state  # type: ignore[attr-defined]
sqs_models.Queue.__setstate__ = _queue_restore  # type: ignore[attr-defined]


def _pool_state(pool: Any) -> dict[str, Any]:
    state = dict(pool.__dict__)
    state.pop("json_web_key", None)  # an OpenSSL key object: moto loads the same one from its resources
    return state


def _pool_restore(pool: Any, state: dict[str, Any]) -> None:
    pool.__dict__.update(state)
    pool.json_web_key = cognito_models.jwk.RSAKey.import_key(
        cognito_models.load_resource("cognitoidp/resources/jwks-private.json"))


cognito_models.CognitoIdpUserPool.__getstate__ = _pool_state  # type: ignore[attr-defined]
cognito_models.CognitoIdpUserPool.__setstate__ = _pool_restore  # type: ignore[attr-defined]


def snapshot() -> bytes:
    """Every account's and region's backend of the persisted services, and the registered function
    identities, pickled (DynamoDB quiesced)."""
    with _DYNAMODB:
        state: dict[str, Any] = {
            service: [(account, region, backend) for account, region, backend in get_backend(service).iter_backends()]
            for service in PERSISTED
        }
        state[_IDENTITIES_KEY] = enforcer.export()
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def restore(data: bytes) -> int:
    """Puts the backends of a snapshot in place; returns how many region backends were restored."""
    state = pickle.loads(data)  # noqa: S301 - our own file, written by snapshot()
    enforcer.load(state.pop(_IDENTITIES_KEY, []))
    restored = 0
    for service, backends in state.items():
        live = get_backend(service)
        for account, region, backend in backends:
            # dict.__setitem__: moto's own __getitem__ would create an empty backend first.
            dict.__setitem__(live[account], region, backend)
            restored += 1
    return restored


def save(path: Path) -> None:
    """Writes the snapshot atomically (a half-written file never replaces a good one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(snapshot())
    os.replace(tmp, path)
