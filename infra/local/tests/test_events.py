"""The events the publisher puts on the bus are the ones docs/events/ describes: every detail the publish
handler test produced (written to API_SAMPLES_DIR by `make test-rust`) validates against its schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

REPO = Path(__file__).resolve().parents[3]
SCHEMAS = REPO / "docs" / "events"


def test_the_schemas_are_valid_json_schema() -> None:
    for path in SCHEMAS.glob("*.schema.json"):
        Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_every_published_detail_matches_its_schema() -> None:
    directory = os.environ.get("API_SAMPLES_DIR")
    if not directory:
        pytest.fail("API_SAMPLES_DIR is not set: run `make test` (test-rust writes the events this test reads)")
    samples = [json.loads(p.read_text()) for p in sorted(Path(directory).glob("event-*.json"))]
    kinds = {s["detailType"] for s in samples}
    assert {"ConsentChanged", "MessageStatusChanged"} <= kinds, f"only {kinds}: run `make test-rust` first"
    for sample in samples:
        schema = json.loads((SCHEMAS / f"{sample['detailType']}.schema.json").read_text())
        errors = list(Draft202012Validator(schema).iter_errors(sample["detail"]))
        assert not errors, f"{sample['detailType']}: {errors[0].message} in {sample['detail']}"
