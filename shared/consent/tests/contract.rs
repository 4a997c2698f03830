//! The storage ports' contract (`consent::contract`) on the in-memory store. The same
//! checks run on the DynamoDB adapter in `tests/tests/contract.rs`.

use consent::contract::Ctx;
use consent::fakes::InMemoryStore;

async fn in_memory(name: &str) -> (InMemoryStore, Ctx) {
    (InMemoryStore::new(), Ctx::new(name, 1))
}

consent::store_contract!(in_memory);
