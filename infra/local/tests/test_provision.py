"""The operator's number provisioning (infra/provision.py) on the emulator."""

from __future__ import annotations

import boto3
import pytest

from infra import provision
from infra.local.tests.conftest import unique


@pytest.fixture
def table(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for k, v in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "test",
                 "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    name = unique("provision")
    boto3.client("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                              {"AttributeName": "SK", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}])
    return name


def provisioned(table: str, number: str) -> dict | None:
    item = boto3.resource("dynamodb").Table(table).get_item(
        Key={"PK": f"NUMBER#{number}", "SK": "PROVISIONED"}).get("Item")
    return item


def test_numbers_and_ranges_are_provisioned_with_their_account_then_removed(table: str) -> None:
    assert provision.main(["--table", table, "--account", "AC123", "--dealer", "demo-dealer",
                           "+12025550100..+12025550102", "+13125550150"]) == 0
    for n in ("+12025550100", "+12025550101", "+12025550102", "+13125550150"):
        assert provisioned(table, n)["carrierAccount"] == "AC123"
        assert provisioned(table, n)["dealerId"] == "demo-dealer"
    assert provisioned(table, "+12025550103") is None
    assert provision.main(["--table", table, "--remove", "+12025550101"]) == 0
    assert provisioned(table, "+12025550101") is None
    assert provisioned(table, "+12025550100") is not None


def test_bad_input_is_refused_and_writes_nothing(table: str) -> None:
    assert provision.main(["--table", table, "--account", "AC1", "+12025550199..+12025550100"]) == 2
    assert provision.main(["--table", table, "+12025550100"]) == 2
    # a number names the dealer it is for
    assert provision.main(["--table", table, "--account", "AC1", "+12025550100"]) == 2
    assert provision.main(["--table", table, "--account", "AC1", "--dealer", "no spaces", "+12025550100"]) == 2
    assert provisioned(table, "+12025550100") is None
