//! The single DynamoDB table behind every storage port.
//!
//! Every item's keys, its indexes (GSI1, GSI2, Due) and each access pattern are in
//! docs/data-model.md, the one table of them; the key formats live in `keys`, and one
//! module per aggregate implements its ports (the same names as `consent::fakes`).

mod contacts;
mod dealers;
mod inbound;
mod keys;
mod ledger;
mod limits;
mod messages;
mod pending;
mod work;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use consent::approval::PendingAuthorization;
use consent::automation::Automation;
use consent::ledger::{ConsentState, LedgerEntry};
use consent::message::{Message, MessageStatus};
use consent::ports::*;
use consent::template::DealerTemplate;
use consent::{
    AccountId, Category, ContactId, DealId, DealerId, MessageId, PhoneNumber, StoreError,
};

use crate::attr::{from_item, get_n, n, s, to_attr, to_item, Item};

use keys::*;

const BATCH_GET_MAX: usize = 100;
/// The GSI2 partition of authorization requests awaiting their follow-up time.
const FOLLOW_UP_PK: &str = "FOLLOWUP#authorizations";
const BATCH_RETRIES: u32 = 8;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    due_shards: u32,
    /// Items per Query page (None: DynamoDB's 1 MB pages). Small pages let the contract
    /// suite prove that every page is followed.
    page_limit: Option<i32>,
}

fn unavailable<E>(context: &'static str) -> impl FnOnce(E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| StoreError::unavailable(context, e)
}

/// A stored item that does not read as its type. The key goes to logs, so any phone
/// number in it is redacted.
fn corrupt(key: &str) -> impl FnOnce(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt {
        key: redact_numbers(key),
        reason: e.to_string(),
    }
}

/// Every `+digits` run that is a phone number, redacted as `PhoneNumber::redacted` does
/// everywhere else (`+1*******43`).
fn redact_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '+' || !chars.peek().is_some_and(char::is_ascii_digit) {
            out.push(c);
            continue;
        }
        let mut run = String::from("+");
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            run.push(d);
        }
        match PhoneNumber::parse(&run) {
            Ok(number) => out.push_str(&number.redacted()),
            Err(_) => out.push_str(&"*".repeat(run.len())),
        }
    }
    out
}

fn epoch(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

/// A cursor: the last evaluated key, as URL-safe base64 of its string attributes.
pub(super) fn encode_key_cursor(key: &Item) -> String {
    use base64::Engine;
    let map: serde_json::Map<String, serde_json::Value> = key
        .iter()
        .filter_map(|(k, v)| {
            v.as_s()
                .ok()
                .map(|s| (k.clone(), serde_json::Value::String(s.clone())))
        })
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::Value::Object(map).to_string())
}

/// What a cursor that does not continue the list it is given to is.
pub(super) fn bad_cursor() -> StoreError {
    StoreError::Corrupt {
        key: "cursor".into(),
        reason: "not a cursor of this list".into(),
    }
}

/// The JSON a cursor carries (URL-safe base64 of it), or [`bad_cursor`].
pub(super) fn read_cursor<T: serde::de::DeserializeOwned>(cursor: &str) -> Result<T, StoreError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| bad_cursor())?;
    serde_json::from_slice(&bytes).map_err(|_| bad_cursor())
}

/// The key a cursor stands for, if `same_list` accepts its attributes: a cursor only
/// continues the list it came from (no reading other partitions).
pub(super) fn decode_key_cursor(
    cursor: &str,
    same_list: impl Fn(&HashMap<String, String>) -> bool,
) -> Result<Item, StoreError> {
    let map: HashMap<String, String> = read_cursor(cursor)?;
    if !same_list(&map) {
        return Err(bad_cursor());
    }
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, due_shards: u32) -> Self {
        Self {
            client,
            table: table.into(),
            due_shards: due_shards.max(1),
            page_limit: None,
        }
    }

    /// The same store reading at most `items` per Query page.
    pub fn with_page_limit(mut self, items: i32) -> Self {
        self.page_limit = Some(items.max(1));
        self
    }

    /// The shard of the due-time index a message lives in (stable per id).
    pub fn shard_of(&self, id: &MessageId) -> u32 {
        // FNV-1a: stable across processes and versions, unlike the std hasher.
        let mut h: u32 = 0x811c_9dc5;
        for b in id.as_str().bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        h % self.due_shards
    }

    pub fn due_shards(&self) -> u32 {
        self.due_shards
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(unavailable("DynamoDB GetItem"))?;
        Ok(out.item)
    }

    /// An unconditional PutItem (a note, a mark, a setting that the last writer decides).
    async fn put_item(&self, item: Item, context: &'static str) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable(context))?;
        Ok(())
    }

    /// A PutItem of an item that must not exist yet: `Conflict(conflict)` when it does.
    async fn put_new(
        &self,
        item: Item,
        conflict: &'static str,
        context: &'static str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        conditional_write(result, conflict, context)
    }

    /// A strongly consistent GetItem: for marks a writer must see as soon as they exist.
    async fn get_consistent(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("DynamoDB GetItem"))?;
        Ok(out.item)
    }

    async fn query_all(
        &self,
        index: Option<&str>,
        pk_name: &str,
        pk: String,
        sk_name: &str,
        sk_prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        // Every page: a partial answer (a ledger or a recipient's texts cut short) would
        // be a wrong answer. The function's timeout bounds it.
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .set_limit(self.page_limit)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_names("#sk", sk_name)
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(sk_prefix))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable("DynamoDB Query"))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(items)
    }

    /// One bounded page of a partition's items under a sort-key prefix, after the sort
    /// key `after` (exclusive), ascending; true when more follow.
    async fn query_page(
        &self,
        pk: String,
        sk_prefix: &str,
        limit: u32,
        after: Option<String>,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let start = after.map(|sk| key(pk.clone(), sk));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX))
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(sk_prefix))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable("DynamoDB Query (page)"))?;
        let mut items = out.items.unwrap_or_default();
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        Ok((items, more))
    }

    /// BatchGetItem in chunks of 100, retrying unprocessed keys with backoff.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending: Vec<Item> = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == BATCH_RETRIES {
                    return Err(StoreError::Partial(format!(
                        "BatchGetItem left {} keys unprocessed",
                        pending.len()
                    )));
                }
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
                }
                attempt += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(unavailable("building BatchGetItem"))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(unavailable("DynamoDB BatchGetItem"))?;
                if let Some(mut r) = out.responses {
                    found.extend(r.remove(&self.table).unwrap_or_default());
                }
                if let Some(mut u) = out.unprocessed_keys {
                    if let Some(k) = u.remove(&self.table) {
                        pending = k.keys;
                    }
                }
            }
        }
        Ok(found)
    }

    fn message_item(&self, m: &Message) -> Result<Item, StoreError> {
        let mut item = to_item(m).map_err(corrupt(m.id.as_str()))?;
        item.extend(key(msg_pk(&m.id), "MESSAGE"));
        item.insert("GSI1PK".into(), s(phone_pk(&m.dealer_id, &m.to)));
        item.insert("GSI1SK".into(), s(format!("MSG#{}", m.id)));
        item.insert("dueEpoch".into(), n(epoch(m.send_at)));
        // The due index holds what `Message::index_time` says: waiting messages at their
        // send time, queued ones at the time they count as lost (requeue).
        if let Some(at) = m.index_time() {
            item.insert("DuePK".into(), s(format!("DUE#{}", self.shard_of(&m.id))));
            item.insert(
                "DueSK".into(),
                s(format!("{:013}#{}", at.timestamp_millis().max(0), m.id)),
            );
        }
        Ok(item)
    }
}

fn is_conditional<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// A conditional write's result: `Conflict(conflict)` when its condition failed.
fn conditional_write<T, E, R>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
    conflict: &'static str,
    operation: &'static str,
) -> StoreResult<()>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_conditional(&e) => Err(StoreError::Conflict(conflict)),
        Err(e) => Err(StoreError::unavailable(operation, e)),
    }
}

fn is_canceled_by_condition(
    e: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_smithy_runtime_api::http::Response,
    >,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match e.as_service_error() {
        Some(E::TransactionCanceledException(t)) => t
            .cancellation_reasons()
            .iter()
            .any(|r| r.code() == Some("ConditionalCheckFailed")),
        _ => false,
    }
}

fn put(table: &str, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .build()
        .map_err(unavailable("building Put"))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

async fn transact(
    client: &Client,
    items: Vec<TransactWriteItem>,
    conflict: &'static str,
) -> Result<(), StoreError> {
    match client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_canceled_by_condition(&e) => Err(StoreError::Conflict(conflict)),
        Err(e) => Err(StoreError::unavailable("DynamoDB TransactWriteItems", e)),
    }
}

#[cfg(test)]
mod redaction_tests {
    #[test]
    fn keys_in_errors_hold_no_full_number() {
        assert_eq!(
            super::redact_numbers("DEALER#d-1#PHONE#+12025550143"),
            "DEALER#d-1#PHONE#+1*******43"
        );
        assert_eq!(super::redact_numbers("MSG#01J+"), "MSG#01J+");
    }
}
