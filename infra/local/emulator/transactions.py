"""TransactWriteItems without copying whole tables, and a canceled one leaves nothing behind.

moto's TransactWriteItems deep-copies every table it touches (to roll back a canceled
transaction), so each transaction costs time linear in the table's size: about 0.1 s
at 10,000 items. `patch_dynamodb_transactions` keeps the rollback but copies only the
partitions the transaction writes (the rest of the backup shares the unchanged items), makes the
backup without moto's registry of model instances keeping it (and its copy of the item dict) for
good, and makes a canceled transaction stream nothing: moto's rollback put the items back but left
the stream records of the writes it undid (an INSERT of an item that never existed).
"""

from __future__ import annotations

import copy
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table

# Partition keys (table name -> hash values, or None: unknown, copy it all) that the running
# TransactWriteItems writes; set only while it runs (DynamoDB requests are serialized).
_TRANSACTION: dict[str, set[Any] | None] | None = None


def _table_copy(table: Any, memo: dict[int, Any]) -> Any:
    """Table.__deepcopy__: inside a transaction, a rollback backup that deep-copies only the written
    partitions (all of them if the written keys are unknown) and shares everything else, the stream
    shard included (the transaction changes nothing else; `patch_dynamodb_transactions` takes back
    its stream records); anywhere else (CreateBackup) a full deep copy, as before. Made with
    object.__new__, not Table's: moto's BaseModel.__new__ keeps every instance it makes in
    Table.instances_tracked for good, and a backup holds a copy of the table's item dict."""
    cls = type(table)
    new = object.__new__(cls)
    memo[id(table)] = new
    if _TRANSACTION is None:
        for name, value in table.__dict__.items():
            setattr(new, name, copy.deepcopy(value, memo))
        return new
    new.__dict__.update(table.__dict__)
    new.items = table.items.copy()  # keeps the stored hashes: DynamoType hashing is slow
    written = _TRANSACTION.get(table.name)
    for hash_value in table.items if written is None else written:
        if hash_value in table.items:
            new.items[hash_value] = _partition_copy(table.items[hash_value])
    return new


def _partition_copy(partition: Any) -> Any:
    """A copy of a table's partition (an Item, or a dict of range value -> Item) whose items the
    transaction cannot change, made without moto tracking the copies (see `_detached`)."""
    if isinstance(partition, Item):
        return _detached(partition)
    return {range_value: _detached(item) for range_value, item in partition.items()}


def _detached(item: Item | None) -> Item | None:
    """A copy of an item that UpdateItem, which changes items in place, cannot change; made as
    Item.__deepcopy__ does but without moto tracking the copy as a model instance."""
    if item is None:
        return None
    new = object.__new__(Item)
    new.hash_key, new.range_key = item.hash_key, item.range_key
    attrs = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.__init__(attrs, {name: copy.deepcopy(value) for name, value in item.attrs.items()})
    new.attrs = attrs
    return new


def patch_dynamodb_transactions() -> None:
    """Make a transaction's rollback backup cost the written partitions, not the whole table, and
    make a canceled transaction leave nothing behind: moto puts its backup in the table's place, so
    the table object the stream shard (and every shard iterator) points at would be a stale one;
    here the table keeps its identity and gets its state back from the backup, and the stream
    records the transaction's writes added are cut off again (DynamoDB streams only committed
    writes). DynamoDB Streams requests are serialized with DynamoDB's (`SerializedDynamoDB`), so no
    GetRecords sees records that are then taken back."""
    backend = dynamodb_models.DynamoDBBackend
    if getattr(backend, "_texting_patched", False):
        return
    Table.__deepcopy__ = _table_copy  # type: ignore[attr-defined]
    original = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        global _TRANSACTION
        written: dict[str, set[Any] | None] = {}
        for entry in transact_items:
            for op in entry.values():
                name = op.get("TableName") if isinstance(op, dict) else None
                table = self.tables.get(name) if name else None
                if table is None:
                    continue
                attrs = op.get("Item") or op.get("Key") or {}
                keys = written.setdefault(name, set())
                if keys is not None and isinstance(attrs.get(table.hash_key_attr), dict):
                    keys.add(DynamoType(attrs[table.hash_key_attr]))
                else:  # a malformed key: every partition is copied (moto then rejects it)
                    written[name] = None
        tables = {name: self.tables[name] for name in written}
        streamed = {name: (t.stream_shard, len(t.stream_shard.items)) for name, t in tables.items()
                    if t.stream_shard is not None}
        _TRANSACTION = written
        try:
            return original(self, transact_items)
        except BaseException:
            for name, table in tables.items():
                restored = self.tables.get(name)
                if restored is not None and restored is not table:  # moto's backup: its state, our object
                    table.__dict__.update(restored.__dict__)
                    self.tables[name] = table
            for shard, length in streamed.values():
                del shard.items[length:]
            raise
        finally:
            _TRANSACTION = None

    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    backend._texting_patched = True  # type: ignore[attr-defined]
