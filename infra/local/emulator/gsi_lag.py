"""Global secondary indexes that lag behind their table, as DynamoDB's do.

DynamoDB's global secondary indexes are eventually consistent: a write reaches them a moment after
the table (typically well under a second); moto's show it at once, so code that queries an index for
what it just wrote works locally and fails in AWS. With `--gsi-lag-ms MIN:MAX` (or
EMULATOR_GSI_LAG_MS; `0` is off, the default) each write to an item (PutItem, UpdateItem,
DeleteItem, each item of BatchWriteItem and of a successful TransactWriteItems) reaches every GSI
of its table after its own delay, drawn uniformly from MIN..MAX ms by a seeded RNG (`--seed` or
EMULATOR_SEED, else a random seed; printed at start). Until then a Query or Scan with an IndexName
naming a GSI sees the item as it was before that write (absent if it did not exist; a deleted
item's old image stays); several writes to one item show in order as each one's delay passes,
never an older image after a newer one. The table's own reads (GetItem, BatchGetItem, Query and
Scan without IndexName, conditions, transactions' ConditionChecks), local secondary indexes,
PartiQL and streams see every write at once, as before. `GsiLag` keeps, per table, the pending
writes' prior images by primary key, dropped as their delays pass; an index read with nothing
pending costs nothing extra. Pending lag is not saved with `--state`: a restarted emulator's
indexes have caught up.
"""

from __future__ import annotations

import copy
import heapq
import inspect
import random
import time
import weakref
from typing import Any, Callable, Iterable

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from infra.local.emulator.transactions import _detached

_Key = tuple[DynamoType, DynamoType | None]  # an item's primary key: (hash value, range value or None)


class _PendingWrites:
    """One table's writes that its GSIs do not show yet. Per item, in write order, each write's
    time of visibility and the item's image just before it (None: absent), so the index shows the
    image after the latest write whose time has passed: the image before the next write, or the
    table's own item once the last one has passed (the entry is then dropped). A heap of the
    visibility times settles the entries as they pass (one heap entry per write; memory is the
    writes of the last MAX ms)."""

    __slots__ = ("writes", "due", "count")

    def __init__(self) -> None:
        self.writes: dict[_Key, list[tuple[float, Item | None]]] = {}
        self.due: list[tuple[float, int, _Key]] = []
        self.count = 0  # ties in `due` are broken by write order (keys need not be comparable)

    def add(self, key: _Key, before: Item | None, visible_at: float) -> None:
        self.writes.setdefault(key, []).append((visible_at, before))
        self.count += 1
        heapq.heappush(self.due, (visible_at, self.count, key))

    def settle(self, now: float) -> None:
        """Drop what the index shows by `now`: every write whose time passed, and each earlier one."""
        due = self.due
        while due and due[0][0] <= now:
            _, _, key = heapq.heappop(due)
            writes = self.writes.get(key)
            if writes is None:  # settled already (a later write of the item passed first)
                continue
            last = max((i for i, (at, _) in enumerate(writes) if at <= now), default=-1)
            if last == len(writes) - 1:
                del self.writes[key]
            elif last >= 0:
                del writes[: last + 1]

    def shown(self) -> Iterable[tuple[_Key, Item | None]]:
        """Each pending item's image as the index shows it (call `settle` first)."""
        return ((key, writes[0][1]) for key, writes in self.writes.items())


class GsiLag:
    """How far every GSI lags behind its table: each write to an item becomes visible to index
    queries and scans after its own delay, drawn uniformly from [low_ms, high_ms] by a seeded RNG."""

    def __init__(self, low_ms: int, high_ms: int, seed: int, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= low_ms <= high_ms:
            raise ValueError(f"GSI lag {low_ms}:{high_ms} ms: want 0 <= MIN <= MAX")
        self.low_ms, self.high_ms, self.seed = low_ms, high_ms, seed
        self.rng = random.Random(seed)
        self.clock = clock
        # Table -> its pending writes; weak: a deleted table's go with it, and nothing of it is
        # pickled with the backends (a restored emulator starts with every index caught up).
        self.tables: weakref.WeakKeyDictionary[Table, _PendingWrites] = weakref.WeakKeyDictionary()

    def delay(self) -> float:
        return self.rng.uniform(self.low_ms, self.high_ms) / 1000.0

    def record(self, table: Table, key: _Key, before: Item | None) -> None:
        """A write to `key` (whose image before it was `before`) has just been made to `table`."""
        pending = self.tables.get(table)
        if pending is None:
            pending = self.tables[table] = _PendingWrites()
        now = self.clock()
        pending.settle(now)
        pending.add(key, before, now + self.delay())

    def view(self, table: Table, index_name: str | None) -> Table | None:
        """A stand-in for `table` whose items are what the GSI `index_name` shows now, or None when
        the index shows the table as it is (not a GSI, or no write pending)."""
        pending = self.tables.get(table)
        if pending is None or not index_name or not pending.writes:
            return None
        if not any(index.name == index_name for index in table.global_indexes or ()):
            return None  # a local secondary index, or an unknown one (moto reports it)
        pending.settle(self.clock())
        if not pending.writes:
            return None
        items = copy.copy(table.items)  # the partitions, shared; the pending ones replaced below
        ranged = table.range_key_attr is not None
        copied: set[Any] = set()
        for (hash_value, range_value), image in pending.shown():
            if not ranged:
                if image is None:
                    items.pop(hash_value, None)
                else:
                    items[hash_value] = image
                continue
            if hash_value not in copied:
                items[hash_value] = dict(items.get(hash_value) or {})
                copied.add(hash_value)
            if image is None:
                items[hash_value].pop(range_value, None)
            else:
                items[hash_value][range_value] = image
        view = object.__new__(type(table))  # not Table(): moto tracks every model it constructs
        view.__dict__.update(table.__dict__)
        view.items = items
        return view


_GSI_LAG: GsiLag | None = None  # set by enable_gsi_lag; None: every index shows its table at once
# The index-visible writes of the running TransactWriteItems, recorded only if it succeeds (it runs
# alone: DynamoDB requests are serialized).
_LAG_BUFFER: list[tuple[Table, _Key, Item | None]] | None = None


def _item_key(table: Table, attrs: Any) -> _Key | None:
    """The primary key named by an item's or a Key's attributes, as moto keys its items; None if
    malformed (moto then rejects the request itself)."""
    try:
        hash_value = DynamoType(attrs[table.hash_key_attr])
        range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    except Exception:  # noqa: BLE001 - whatever moto makes of it, nothing is recorded
        return None
    return hash_value, range_value


def _stored(table: Table, key: _Key) -> Item | None:
    """The table's item at `key`, without moto's validation (nor a defaultdict partition created)."""
    hash_value, range_value = key
    part = table.items.get(hash_value)
    if table.range_key_attr is None:
        return part if isinstance(part, Item) else None
    return part.get(range_value) if isinstance(part, dict) else None


def _lagged_write(original: Callable[..., Any], key_of: str, copy_before: bool) -> Callable[..., Any]:
    """Wraps a backend write whose argument after the table's name is `key_of` (put_item: the item's
    attributes; update_item, delete_item: the key) so that a successful write to a table with GSIs
    is recorded."""

    def write(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        lag = _GSI_LAG
        table = self.tables.get(table_name) if lag is not None else None
        if lag is None or table is None or not table.global_indexes:
            return original(self, table_name, *args, **kwargs)
        attrs = kwargs[key_of] if key_of in kwargs else (args[0] if args else None)
        key = _item_key(table, attrs) if isinstance(attrs, dict) else None
        before = _stored(table, key) if key is not None else None
        if copy_before:
            before = _detached(before)
        result = original(self, table_name, *args, **kwargs)
        if key is not None:
            if _LAG_BUFFER is not None:
                _LAG_BUFFER.append((table, key, before))
            else:
                lag.record(table, key, before)
        return result

    return write


def _lagged_read(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps Table.query / Table.scan: with an IndexName naming a GSI that has writes pending, they
    run over what that index shows (the base table's reads go through untouched)."""
    signature = inspect.signature(original)

    def read(self: Table, *args: Any, **kwargs: Any) -> Any:
        lag = _GSI_LAG
        pending = lag.tables.get(self) if lag is not None else None
        if pending is None or not pending.writes:
            return original(self, *args, **kwargs)
        index_name = signature.bind(self, *args, **kwargs).arguments.get("index_name")
        view = lag.view(self, index_name)
        return original(self if view is None else view, *args, **kwargs)

    return read


def enable_gsi_lag(lag: GsiLag | None) -> None:
    """Make every GSI lag behind its table as `lag` says (None: index reads see every write at once,
    as moto does). The first call patches moto's DynamoDB backend and Table (idempotent)."""
    global _GSI_LAG
    _GSI_LAG = lag
    backend = dynamodb_models.DynamoDBBackend
    if getattr(backend, "_texting_gsi_lag_patched", False):
        return
    backend.put_item = _lagged_write(backend.put_item, "item_attrs", copy_before=False)  # type: ignore[method-assign]
    backend.update_item = _lagged_write(backend.update_item, "key", copy_before=True)  # type: ignore[method-assign]
    backend.delete_item = _lagged_write(backend.delete_item, "key", copy_before=False)  # type: ignore[method-assign]
    original_transaction = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        global _LAG_BUFFER
        lag = _GSI_LAG
        if lag is None:
            return original_transaction(self, transact_items)
        tables = dict(self.tables)
        _LAG_BUFFER = []
        try:
            original_transaction(self, transact_items)
            written = _LAG_BUFFER
        except BaseException:
            # Canceled: nothing of the transaction is recorded; the writes pending from before it
            # stay pending. (patch_dynamodb_transactions keeps each table's object; moto alone puts
            # its backup copy in the table's place, and the pending writes move to the copy.)
            for name, table in tables.items():
                restored = self.tables.get(name)
                if restored is not None and restored is not table and table in lag.tables:
                    lag.tables[restored] = lag.tables.pop(table)
            raise
        finally:
            _LAG_BUFFER = None
        for table, key, before in written:
            lag.record(table, key, before)

    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    Table.query = _lagged_read(Table.query)  # type: ignore[method-assign]
    Table.scan = _lagged_read(Table.scan)  # type: ignore[method-assign]
    backend._texting_gsi_lag_patched = True  # type: ignore[attr-defined]


def parse_lag(text: str) -> tuple[int, int]:
    """`MIN:MAX` milliseconds (or `N`: N:N); `0` / `0:0` is off."""
    low, _, high = text.strip().partition(":")
    try:
        bounds = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"GSI lag {text!r}: want MIN:MAX milliseconds, e.g. 50:400 (0 is off)") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise ValueError(f"GSI lag {text!r}: want 0 <= MIN <= MAX")
    return bounds
