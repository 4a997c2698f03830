"""The emulator's GSI lag (`--gsi-lag-ms MIN:MAX`): each write reaches the global secondary indexes
only after its own delay, as in DynamoDB, while the table's own reads see it at once.

Most tests run moto in-process with the launcher's patch and a clock the test moves, so the delays
are exact; the launcher's own tests (real time, loopback only) check the option, the environment
fallback, the printed seed and that a restart drops what is pending."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from conftest import REPO_ROOT, free_port, start_emulator, unique

from infra.local import emulator

CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += ms / 1000.0


class FixedDelays(emulator.GsiLag):
    """A GsiLag whose delays are given in order (ms), for the tests of several writes to one item."""

    def __init__(self, clock: Clock, *delays_ms: float) -> None:
        super().__init__(0, 1000, seed=0, clock=clock)
        self.delays = list(delays_ms)

    def delay(self) -> float:
        return self.delays.pop(0) / 1000.0


def create_table(ddb: Any, name: str = "t") -> None:
    """The template's key shape: PK/SK, a GSI on GSI1PK/GSI1SK, and (to show it does not lag) an LSI."""
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("PK", "SK", "GSI1PK", "GSI1SK", "L")],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "GSI1", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "GSI1PK", "KeyType": "HASH"},
                                               {"AttributeName": "GSI1SK", "KeyType": "RANGE"}]}],
        LocalSecondaryIndexes=[{"IndexName": "LSI", "Projection": {"ProjectionType": "ALL"},
                                "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"},
                                              {"AttributeName": "L", "KeyType": "RANGE"}]}])


def item(pk: str, status: str, **more: str) -> dict[str, Any]:
    """An item indexed in GSI1 under its status (GSI1PK = STATUS#<status>)."""
    attrs = {"PK": pk, "SK": "A", "GSI1PK": f"STATUS#{status}", "GSI1SK": pk, "status": status, **more}
    return {k: {"S": v} for k, v in attrs.items()}


def key(pk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": "A"}}


def in_index(ddb: Any, status: str, table: str = "t") -> dict[str, str]:
    """PK -> status of the items GSI1 shows under `status` (a Query on the index)."""
    items = ddb.query(TableName=table, IndexName="GSI1", KeyConditionExpression="GSI1PK = :p",
                      ExpressionAttributeValues={":p": {"S": f"STATUS#{status}"}})["Items"]
    return {i["PK"]["S"]: i["status"]["S"] for i in items}


def scanned(ddb: Any, table: str = "t") -> dict[str, str]:
    """PK -> status of every item GSI1 shows (a Scan of the index)."""
    return {i["PK"]["S"]: i["status"]["S"] for i in ddb.scan(TableName=table, IndexName="GSI1")["Items"]}


def in_table(ddb: Any, pk: str, table: str = "t") -> str | None:
    got = ddb.get_item(TableName=table, Key=key(pk)).get("Item")
    return got and got["status"]["S"]


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def ddb(clock: Clock) -> Iterator[Any]:
    """moto in-process with the launcher's GSI lag at 300:300 ms on `clock`; the lag is off again after."""
    from moto import mock_aws

    emulator.patch_dynamodb_transactions()
    emulator.enable_gsi_lag(emulator.GsiLag(300, 300, seed=1, clock=clock))
    try:
        with mock_aws():
            client = boto3.client("dynamodb", **CREDENTIALS)
            create_table(client)
            yield client
    finally:
        emulator.enable_gsi_lag(None)


def test_a_put_reaches_the_index_only_after_its_delay(ddb: Any, clock: Clock) -> None:
    ddb.put_item(TableName="t", Item=item("A", "new"))
    assert in_index(ddb, "new") == {} and scanned(ddb) == {}
    clock.advance(299)
    assert in_index(ddb, "new") == {} and scanned(ddb) == {}
    clock.advance(2)
    assert in_index(ddb, "new") == {"A": "new"} and scanned(ddb) == {"A": "new"}


def test_the_tables_own_reads_see_a_write_at_once(ddb: Any) -> None:
    """GetItem, BatchGetItem, Query and Scan without IndexName, a condition on the item and a
    transaction's ConditionCheck are strongly consistent, as in DynamoDB; so is an LSI here."""
    ddb.put_item(TableName="t", Item=item("A", "new", L="x"))
    assert in_index(ddb, "new") == {}
    assert in_table(ddb, "A") == "new"
    got = ddb.batch_get_item(RequestItems={"t": {"Keys": [key("A")]}})["Responses"]["t"]
    assert [i["status"]["S"] for i in got] == ["new"]
    assert ddb.query(TableName="t", KeyConditionExpression="PK = :p",
                     ExpressionAttributeValues={":p": {"S": "A"}})["Count"] == 1
    assert ddb.scan(TableName="t")["Count"] == 1
    assert ddb.query(TableName="t", IndexName="LSI", KeyConditionExpression="PK = :p",
                     ExpressionAttributeValues={":p": {"S": "A"}})["Count"] == 1
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName="t", Item=item("A", "again"), ConditionExpression="attribute_not_exists(PK)")
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[{"ConditionCheck": {
            "TableName": "t", "Key": key("A"), "ConditionExpression": "attribute_not_exists(PK)"}}])


def test_an_update_shows_the_old_image_in_the_index_meanwhile(ddb: Any, clock: Clock) -> None:
    ddb.put_item(TableName="t", Item=item("A", "new", note="first"))
    clock.advance(300)
    ddb.update_item(TableName="t", Key=key("A"), UpdateExpression="SET #s = :s, GSI1PK = :p, note = :n",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":s": {"S": "sent"}, ":p": {"S": "STATUS#sent"}, ":n": {"S": "second"}})
    assert in_table(ddb, "A") == "sent"
    clock.advance(299)
    assert in_index(ddb, "new") == {"A": "new"} and in_index(ddb, "sent") == {}
    old = ddb.scan(TableName="t", IndexName="GSI1")["Items"]
    assert [i["note"]["S"] for i in old] == ["first"]  # the whole old image, not only its keys
    clock.advance(2)
    assert in_index(ddb, "new") == {} and in_index(ddb, "sent") == {"A": "sent"}


def test_an_update_that_creates_the_item_lags_too(ddb: Any, clock: Clock) -> None:
    ddb.update_item(TableName="t", Key=key("B"), UpdateExpression="SET #s = :s, GSI1PK = :p, GSI1SK = :k",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":s": {"S": "new"}, ":p": {"S": "STATUS#new"}, ":k": {"S": "B"}})
    assert in_table(ddb, "B") == "new" and in_index(ddb, "new") == {}
    clock.advance(300)
    assert in_index(ddb, "new") == {"B": "new"}


def test_a_delete_keeps_the_old_image_in_the_index_meanwhile(ddb: Any, clock: Clock) -> None:
    ddb.put_item(TableName="t", Item=item("A", "new"))
    clock.advance(300)
    ddb.delete_item(TableName="t", Key=key("A"))
    assert in_table(ddb, "A") is None
    clock.advance(299)
    assert in_index(ddb, "new") == {"A": "new"} and scanned(ddb) == {"A": "new"}
    clock.advance(2)
    assert in_index(ddb, "new") == {} and scanned(ddb) == {}


def test_several_writes_to_an_item_reach_the_index_in_order(clock: Clock) -> None:
    """Each write shows once its delay passed; an older image never shows after a newer one did,
    even when the newer write's delay is the shorter one."""
    from moto import mock_aws

    try:
        with mock_aws():
            ddb = boto3.client("dynamodb", **CREDENTIALS)
            create_table(ddb)
            # The first write shows at 100 ms, the second (written at 50 ms) at 350 ms.
            emulator.enable_gsi_lag(FixedDelays(clock, 100, 300))
            ddb.put_item(TableName="t", Item=item("A", "v1"))
            clock.advance(50)
            ddb.put_item(TableName="t", Item=item("A", "v2"))
            assert scanned(ddb) == {}
            clock.advance(60)
            assert scanned(ddb) == {"A": "v1"}
            clock.advance(250)
            assert scanned(ddb) == {"A": "v2"}
            # The first write shows at 300 ms, the second (written at 50 ms) at 150 ms: it wins, and
            # the first one's image never shows.
            emulator.enable_gsi_lag(FixedDelays(clock, 300, 100))
            ddb.put_item(TableName="t", Item=item("B", "v1"))
            clock.advance(50)
            ddb.put_item(TableName="t", Item=item("B", "v2"))
            clock.advance(90)
            assert "B" not in scanned(ddb)
            clock.advance(20)
            assert scanned(ddb)["B"] == "v2"
            clock.advance(200)
            assert scanned(ddb)["B"] == "v2"
            # Three writes, the middle one shows first: put, update, delete.
            emulator.enable_gsi_lag(FixedDelays(clock, 500, 100, 500))
            ddb.put_item(TableName="t", Item=item("C", "v1"))
            ddb.update_item(TableName="t", Key=key("C"), UpdateExpression="SET #s = :s",
                            ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "v2"}})
            ddb.delete_item(TableName="t", Key=key("C"))
            assert "C" not in scanned(ddb)
            clock.advance(100)
            assert scanned(ddb)["C"] == "v2"
            clock.advance(400)
            assert "C" not in scanned(ddb)
    finally:
        emulator.enable_gsi_lag(None)


def test_transactions_lag_and_a_canceled_one_records_nothing(ddb: Any, clock: Clock) -> None:
    ddb.put_item(TableName="t", Item=item("U", "new"))
    ddb.put_item(TableName="t", Item=item("D", "new"))
    clock.advance(300)
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": "t", "Item": item("P", "new")}},
        {"Update": {"TableName": "t", "Key": key("U"), "UpdateExpression": "SET #s = :s, GSI1PK = :p",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":s": {"S": "sent"}, ":p": {"S": "STATUS#sent"}}}},
        {"Delete": {"TableName": "t", "Key": key("D")}}])
    assert (in_table(ddb, "P"), in_table(ddb, "U"), in_table(ddb, "D")) == ("new", "sent", None)
    assert scanned(ddb) == {"U": "new", "D": "new"}
    clock.advance(100)
    # A canceled transaction (its Put written, then its ConditionCheck failing) is rolled back
    # and records nothing; the writes pending from before it stay pending.
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": item("X", "new")}},
            {"ConditionCheck": {"TableName": "t", "Key": key("U"), "ConditionExpression": "attribute_not_exists(PK)"}}])
    assert in_table(ddb, "X") is None
    assert scanned(ddb) == {"U": "new", "D": "new"}
    clock.advance(201)
    assert scanned(ddb) == {"P": "new", "U": "sent"}


def test_batch_writes_lag(ddb: Any, clock: Clock) -> None:
    ddb.put_item(TableName="t", Item=item("D", "new"))
    clock.advance(300)
    ddb.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": item("A", "new")}},
                                             {"PutRequest": {"Item": item("B", "new")}},
                                             {"DeleteRequest": {"Key": key("D")}}]})
    assert (in_table(ddb, "A"), in_table(ddb, "B"), in_table(ddb, "D")) == ("new", "new", None)
    assert in_index(ddb, "new") == {"D": "new"}
    clock.advance(300)
    assert in_index(ddb, "new") == {"A": "new", "B": "new"}


def test_a_table_with_only_a_hash_key(ddb: Any, clock: Clock) -> None:
    ddb.create_table(TableName="h", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                           {"AttributeName": "G", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
                     GlobalSecondaryIndexes=[{"IndexName": "ByG", "Projection": {"ProjectionType": "ALL"},
                                              "KeySchema": [{"AttributeName": "G", "KeyType": "HASH"}]}])

    def by_g(g: str) -> list[str]:
        return [i["PK"]["S"] for i in ddb.query(TableName="h", IndexName="ByG", KeyConditionExpression="G = :g",
                                                ExpressionAttributeValues={":g": {"S": g}})["Items"]]

    ddb.put_item(TableName="h", Item={"PK": {"S": "a"}, "G": {"S": "1"}})
    assert by_g("1") == []
    clock.advance(300)
    ddb.put_item(TableName="h", Item={"PK": {"S": "a"}, "G": {"S": "2"}})
    assert (by_g("1"), by_g("2")) == (["a"], [])
    clock.advance(300)
    ddb.delete_item(TableName="h", Key={"PK": {"S": "a"}})
    assert (by_g("1"), by_g("2")) == ([], ["a"])
    clock.advance(300)
    assert (by_g("1"), by_g("2")) == ([], [])


def test_what_is_pending_is_dropped_once_shown(ddb: Any, clock: Clock) -> None:
    """Memory is the writes of the last MAX ms: entries go once their delay passed."""
    lag = emulator.gsi_lag._GSI_LAG
    assert lag is not None
    for n in range(50):
        ddb.put_item(TableName="t", Item=item(f"I{n}", "new"))
    backend_table = next(iter(lag.tables))
    assert len(lag.tables[backend_table].writes) == 50
    clock.advance(300)
    ddb.put_item(TableName="t", Item=item("last", "new"))
    pending = lag.tables[backend_table]
    assert len(pending.writes) == 1 and len(pending.due) == 1
    clock.advance(300)
    assert len(in_index(ddb, "new")) == 51
    assert not pending.writes and not pending.due


def test_with_the_lag_off_the_index_sees_a_write_at_once(clock: Clock) -> None:
    from moto import mock_aws

    emulator.enable_gsi_lag(emulator.GsiLag(300, 300, seed=1, clock=clock))
    emulator.enable_gsi_lag(None)  # the patch stays, and passes everything through
    with mock_aws():
        ddb = boto3.client("dynamodb", **CREDENTIALS)
        create_table(ddb)
        ddb.put_item(TableName="t", Item=item("A", "new"))
        assert in_index(ddb, "new") == {"A": "new"}
        ddb.delete_item(TableName="t", Key=key("A"))
        assert in_index(ddb, "new") == {}


def test_the_delays_are_drawn_from_the_range_by_the_seed() -> None:
    first, second = (emulator.GsiLag(50, 400, seed=7) for _ in range(2))
    delays = [first.delay() for _ in range(200)]
    assert delays == [second.delay() for _ in range(200)]
    assert all(0.05 <= d <= 0.4 for d in delays) and max(delays) - min(delays) > 0.2
    assert emulator.parse_lag("50:400") == (50, 400)
    assert emulator.parse_lag("0") == emulator.parse_lag("0:0") == (0, 0)
    assert emulator.parse_lag("300") == (300, 300)
    for bad in ("400:50", "-1:5", "fast", "1:2:3"):
        with pytest.raises(ValueError):
            emulator.parse_lag(bad)


# ------------------------------------------------------------------------------ the launcher itself

def test_the_launcher_lags_its_indexes_by_the_environments_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EMULATOR_GSI_LAG_MS=300:300 (the fallback of --gsi-lag-ms) and EMULATOR_SEED: a put is not in the
    index for 300 ms after it was sent, and is once 300 ms passed after it was answered; the seed
    is printed."""
    monkeypatch.setenv("EMULATOR_GSI_LAG_MS", "300:300")
    monkeypatch.setenv("EMULATOR_SEED", "4242")
    port, log = free_port(), tmp_path / "emulator.log"
    proc = start_emulator(port, log=log)
    try:
        assert "GSI lag 300:300 ms per write, seed 4242" in log.read_text()
        ddb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", **CREDENTIALS)
        table = unique("lag")
        create_table(ddb, table)
        sent = time.monotonic()
        ddb.put_item(TableName=table, Item=item("A", "new"))
        answered = time.monotonic()
        assert in_table(ddb, "A", table) == "new"
        seen_at = None
        while seen_at is None:
            asked = time.monotonic()
            found = in_index(ddb, "new", table)
            done = time.monotonic()
            if found:
                seen_at = asked
            else:
                assert asked < answered + 0.3, "not in the index 300 ms after the put was answered"
            assert found == {} or done >= sent + 0.3, "in the index before 300 ms passed"
            assert done - sent < 10
            time.sleep(0.02)
        assert found == {"A": "new"}
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_restart_drops_the_pending_lag(tmp_path: Path) -> None:
    """What is pending is not saved: after a restart from the state file the index shows every item
    (as an index long caught up would); new writes lag again."""
    port, state, log = free_port(), tmp_path / "state", tmp_path / "emulator.log"
    endpoint = f"http://127.0.0.1:{port}"
    proc = start_emulator(port, "--state", str(state), "--gsi-lag-ms", "5000:5000", "--seed", "1", log=log)
    try:
        ddb = boto3.client("dynamodb", endpoint_url=endpoint, **CREDENTIALS)
        create_table(ddb)
        ddb.put_item(TableName="t", Item=item("A", "new"))
        assert in_index(ddb, "new") == {}
        proc.terminate()
        assert proc.wait(20) == 0
        assert "GSI lag 5000:5000 ms per write, seed 1 " in log.read_text()
        proc = start_emulator(port, "--state", str(state), "--gsi-lag-ms", "5000:5000", log=log)
        assert "restored" in log.read_text()
        ddb = boto3.client("dynamodb", endpoint_url=endpoint, **CREDENTIALS)
        assert in_index(ddb, "new") == {"A": "new"}
        ddb.put_item(TableName="t", Item=item("B", "new"))
        assert in_index(ddb, "new") == {"A": "new"}
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_bad_lag_is_refused_at_start() -> None:
    out = subprocess.run([sys.executable, "-m", "infra.local.emulator", "-p", str(free_port()),
                          "--gsi-lag-ms", "400:50"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert out.returncode == 2 and "MIN <= MAX" in out.stderr


def test_make_dev_passes_its_default_lag_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make dev` starts the emulator with --gsi-lag-ms 50:400; DEV_EMULATOR_GSI_LAG_MS (the shell's, else
    the env file's) or --emulator-gsi-lag-ms changes it; --state stays last."""
    from infra.local import dev

    monkeypatch.delenv("DEV_EMULATOR_GSI_LAG_MS", raising=False)

    def lag(argv: list[str], settings: dict[str, str]) -> str:
        parsed = {}

        def run(args: Any) -> int:
            parsed["args"] = args
            return 0

        monkeypatch.setattr(dev, "run", run)
        monkeypatch.setattr(dev.signal, "signal", lambda *_: None)  # main's handlers: not in pytest's process
        dev.main(argv)
        return dev.gsi_lag(parsed["args"], settings)

    assert lag([], {}) == dev.GSI_LAG_MS == "50:400"
    assert lag([], {"DEV_EMULATOR_GSI_LAG_MS": "0"}) == "0"
    assert lag(["--emulator-gsi-lag-ms", "10:20"], {"DEV_EMULATOR_GSI_LAG_MS": "0"}) == "10:20"
    monkeypatch.setenv("DEV_EMULATOR_GSI_LAG_MS", "300")
    assert lag([], {"DEV_EMULATOR_GSI_LAG_MS": "0"}) == "300"
    for bad in ("400:50", "fast"):
        with pytest.raises(dev.DevError):
            lag(["--emulator-gsi-lag-ms", bad], {})
    cmd = dev.emulator_command(4566, "/tmp/state", "AKIAKEY", "50:400")
    assert cmd[-4:] == ["--gsi-lag-ms", "50:400", "--state", "/tmp/state"]
    assert "--gsi-lag-ms" not in dev.emulator_command(4566, None)
