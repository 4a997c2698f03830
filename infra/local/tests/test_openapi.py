"""docs/openapi.yaml is a valid OpenAPI 3.1 description of exactly the template's routes, and every
response the handler and security tests saw (written by `make test-rust` to API_SAMPLES_DIR) is one
it describes: a documented status, a documented content type, and a body its schema accepts."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource

from infra.local import template as tpl

REPO = Path(__file__).resolve().parents[3]
SPEC_PATH = REPO / "docs" / "openapi.yaml"
METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


def test_the_description_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_the_description_has_exactly_the_templates_routes(spec: dict[str, Any]) -> None:
    described = {f"{m.upper()} {path}" for path, item in spec["paths"].items() for m in item if m in METHODS}
    routed = {r.route_key for r in tpl.routes(tpl.load())}
    assert described == routed, f"only described: {described - routed}; only routed: {routed - described}"
    # A route without a token in the template is one without security in the description.
    for r in tpl.routes(tpl.load()):
        method, path = r.route_key.split(" ", 1)
        op = spec["paths"][path][method.lower()]
        open_route = op.get("security", spec["security"]) in ([], [{"twilioSignature": []}])
        assert open_route == r.auth_none, r.route_key


def test_every_problem_type_is_described(spec: dict[str, Any]) -> None:
    source = (REPO / "shared" / "adapters" / "src" / "http" / "catalog.rs").read_text()
    listed = set(re.findall(r'ProblemType \{ slug: "([a-z-]+)"', source))
    assert len(listed) >= 20
    assert set(spec["components"]["schemas"]["ProblemSlug"]["enum"]) == listed


def _samples() -> list[dict[str, Any]]:
    directory = os.environ.get("API_SAMPLES_DIR")
    if not directory:
        pytest.fail("API_SAMPLES_DIR is not set: run `make test` (test-rust writes the samples this test reads)")
    files = sorted(f for f in Path(directory).glob("*.json") if not f.name.startswith("event-"))
    if len(files) < 100:
        pytest.fail(f"only {len(files)} responses in {directory}: run `make test-rust` first")
    return [json.loads(f.read_text()) for f in files]


def _operation(spec: dict[str, Any], route: str) -> dict[str, Any]:
    method, path = route.split(" ", 1)
    return spec["paths"][path][method.lower()]


def test_every_response_the_tests_saw_is_described(spec: dict[str, Any]) -> None:
    registry = Registry().with_resource("urn:spec", Resource.from_contents(
        {**spec, "$schema": "https://json-schema.org/draft/2020-12/schema"}))
    routes = {r.route_key for r in tpl.routes(tpl.load())}
    problems: list[str] = []
    checked = 0
    matchers = sorted(((re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", r.split(" ", 1)[1]) + "$"),
                        r.split(" ", 1)[0], r.count("{"), r) for r in routes), key=lambda m: m[2])
    for sample in _samples():
        if "route" not in sample:  # a journey request: method and path, routed as the gateway does
            sample["route"] = next((r for rx, m, _, r in matchers if m == sample["method"]
                                    and rx.match(sample["path"])), "")
        route, status = sample["route"], str(sample["status"])
        if route not in routes:
            continue  # a test calling a route the gateway would not route (404 before any function)
        responses = _operation(spec, route)["responses"]
        response = responses.get(status)
        if response is None:
            problems.append(f"{route}: status {status} is not described")
            continue
        if "$ref" in response:
            response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        content = response.get("content")
        media = sample["contentType"].split(";")[0].strip()
        if not content:
            if sample["body"]:
                problems.append(f"{route} {status}: a body where none is described")
            continue
        if media not in content:
            problems.append(f"{route} {status}: content type {media!r} is not described ({sorted(content)})")
            continue
        schema = content[media].get("schema", {})
        if not media.endswith("json"):
            checked += 1
            continue
        body = json.loads(sample["body"])
        validator = Draft202012Validator(_rebase(schema), registry=registry)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        if errors:
            problems.append(f"{route} {status}: {errors[0].message} at {list(errors[0].path)} in {sample['body'][:300]}")
        checked += 1
    assert checked >= 100, f"only {checked} responses checked"
    assert not problems, "\n".join(sorted(set(problems))[:40])


def _rebase(value: Any) -> Any:
    """Inline schemas refer to components as `#/components/...`: point them at the registered spec."""
    if isinstance(value, dict):
        return {k: ("urn:spec" + v if k == "$ref" and isinstance(v, str) and v.startswith("#/") else _rebase(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase(v) for v in value]
    return value
