//! The storage ports' contract (`consent::contract`) on the DynamoDB adapter against the
//! emulator: the same checks the in-memory store passes (shared/consent/tests/contract.rs).
//! Query pages hold one item here, so "follows every page" is really exercised.

use consent::contract::Ctx;
use consent_adapters::{aws_sdk_dynamodb, DynamoStore};
use stack_tests::Stack;

async fn dynamodb(name: &str) -> (DynamoStore, Ctx) {
    let stack = Stack::create("ct").await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&stack.sdk),
        stack.var("TABLE_NAME"),
        4,
    )
    .with_page_limit(1);
    (store, Ctx::new(name, 4))
}

consent::store_contract!(dynamodb);
