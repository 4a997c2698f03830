//! The single DynamoDB table behind every storage port.
//!
//! Key design and access patterns: docs/data-model.md. In short:
//!
//! | item              | PK                          | SK                 | secondary                                   |
//! |-------------------|-----------------------------|--------------------|---------------------------------------------|
//! | dealer settings   | `DEALER#d`                  | `PROFILE`          |                                             |
//! | number owner      | `NUMBER#+1..`               | `OWNER`            |                                             |
//! | provisioned number| `NUMBER#+1..`               | `PROVISIONED`      | the operator's allow-list (carrier account) |
//! | number opt-out    | `OPTOUT#from#to`            | `OPTOUT`           | STOP/carrier block of a texting number; START deletes |
//! | contact           | `DEALER#d`                  | `CONTACT#c`        | GSI1 `DEALER#d#PHONE#p` / `CONTACT#c`       |
//! | account/deal link | `DEALER#d#ACCOUNT#a` (`DEAL#`) | `CONTACT#c`     | (a copy of the contact)                     |
//! | consent state     | `DEALER#d#PHONE#p`          | `CONSENT`          | `version` for optimistic writes             |
//! | ledger entry      | `DEALER#d#PHONE#p`          | `LEDGER#ulid`      | never expires                               |
//! | pending request   | `DEALER#d#PHONE#p`          | `PENDING#category` | `ttl`                                       |
//! | message           | `MSG#id`                    | `MESSAGE`          | GSI1 `DEALER#d#PHONE#p` / `MSG#id`; Due `DUE#shard` / `epochms#id` while waiting |
//! | idempotency key   | `DEALER#d#IDEM#key`         | `IDEM`             | `ttl`                                       |
//! | inbound dedup     | `INBOUND#sid`               | `DEDUP`            | never expires (as long as the ledger)       |
//! | rate bucket       | `RATE#key`                  | `bucket`           | `ttl`                                       |
//! | work item         | `DEALER#d#QUEUE#q`          | `ITEM#ulid`        | GSI2 `DEALER#d#QUEUE#q#STATUS#s` / `ITEM#ulid` |

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use consent::approval::PendingAuthorization;
use consent::ledger::{ConsentState, LedgerEntry};
use consent::message::{Message, MessageStatus};
use consent::ports::*;
use consent::{
    AccountId, Category, ContactId, DealId, DealerId, MessageId, PhoneNumber, StoreError,
};

use crate::attr::{from_item, get_n, n, s, to_attr, to_item, Item};

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
/// number in it is redacted (`+1********43`).
fn corrupt(key: &str) -> impl FnOnce(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt {
        key: redact_numbers(key),
        reason: e.to_string(),
    }
}

/// Every `+digits` run with all but its first and last two digits starred.
fn redact_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '+' || !chars.peek().is_some_and(char::is_ascii_digit) {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            digits.push(d);
        }
        let n = digits.len();
        out.push('+');
        for (i, d) in digits.chars().enumerate() {
            out.push(if i == 0 || i + 2 >= n { d } else { '*' });
        }
    }
    out
}

fn phone_pk(dealer: &DealerId, phone: &PhoneNumber) -> String {
    format!("DEALER#{dealer}#PHONE#{phone}")
}

/// The opt-out of a person (`to`) from a texting number (`from`), whoever owns it.
fn opt_out_pk(from: &PhoneNumber, to: &PhoneNumber) -> String {
    format!("OPTOUT#{from}#{to}")
}

fn msg_pk(id: &MessageId) -> String {
    format!("MSG#{id}")
}

fn epoch(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([("PK".to_owned(), s(pk)), ("SK".to_owned(), s(sk))])
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

#[async_trait]
impl NumberDirectory for DynamoStore {
    async fn provisioned(&self, number: &PhoneNumber) -> StoreResult<Option<ProvisionedNumber>> {
        let Some(item) = self.get(format!("NUMBER#{number}"), "PROVISIONED").await? else {
            return Ok(None);
        };
        Ok(Some(ProvisionedNumber {
            number: number.clone(),
            carrier_account: item
                .get("carrierAccount")
                .and_then(|a| a.as_s().ok())
                .cloned()
                .unwrap_or_default(),
        }))
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

/// The key of a pending authorization (one per number and category).
fn pending_key(p: &PendingAuthorization) -> HashMap<String, AttributeValue> {
    key(
        phone_pk(&p.dealer_id, &p.phone),
        format!("PENDING#{}", p.category),
    )
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

#[async_trait]
impl DealerStore for DynamoStore {
    async fn dealer(&self, id: &DealerId) -> StoreResult<Option<Dealer>> {
        self.get(format!("DEALER#{id}"), "PROFILE")
            .await?
            .map(|i| from_item(&i).map_err(corrupt(id.as_str())))
            .transpose()
    }

    async fn put_dealer(
        &self,
        dealer: &Dealer,
        previous_number: Option<&PhoneNumber>,
    ) -> StoreResult<()> {
        let mut profile = to_item(dealer).map_err(corrupt(dealer.id.as_str()))?;
        profile.extend(key(format!("DEALER#{}", dealer.id), "PROFILE"));
        let mut owner = key(format!("NUMBER#{}", dealer.texting_number), "OWNER");
        owner.insert("dealerId".into(), s(dealer.id.as_str()));
        let owner_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(owner))
            .condition_expression("attribute_not_exists(PK) OR dealerId = :me")
            .expression_attribute_values(":me", s(dealer.id.as_str()));
        let mut items = vec![
            put(&self.table, profile, None)?,
            TransactWriteItem::builder()
                .put(owner_put.build().map_err(unavailable("building Put"))?)
                .build(),
        ];
        if let Some(prev) = previous_number.filter(|p| *p != &dealer.texting_number) {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("NUMBER#{prev}"), "OWNER")))
                .condition_expression("attribute_not_exists(PK) OR dealerId = :me")
                .expression_attribute_values(":me", s(dealer.id.as_str()))
                .build()
                .map_err(unavailable("building Delete"))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        transact(
            &self.client,
            items,
            "texting number belongs to another dealer",
        )
        .await
    }

    async fn dealer_by_number(&self, number: &PhoneNumber) -> StoreResult<Option<DealerId>> {
        let Some(item) = self.get(format!("NUMBER#{number}"), "OWNER").await? else {
            return Ok(None);
        };
        crate::attr::get_s(&item, "dealerId")
            .map(DealerId::parse)
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                key: format!("NUMBER#{}", number.redacted()),
                reason: e.to_string(),
            })
    }
}

impl DynamoStore {
    fn contact_from(item: &Item) -> Result<Contact, StoreError> {
        from_item(item).map_err(corrupt("contact"))
    }

    async fn linked(&self, pk: String) -> StoreResult<Vec<Contact>> {
        self.query_all(None, "PK", pk, "SK", "CONTACT#")
            .await?
            .iter()
            .map(Self::contact_from)
            .collect()
    }
}

#[async_trait]
impl ContactStore for DynamoStore {
    async fn contact(&self, dealer: &DealerId, id: &ContactId) -> StoreResult<Option<Contact>> {
        self.get(format!("DEALER#{dealer}"), &format!("CONTACT#{id}"))
            .await?
            .map(|i| Self::contact_from(&i))
            .transpose()
    }

    async fn put_contact(&self, contact: &Contact, previous: Option<&Contact>) -> StoreResult<()> {
        let d = &contact.dealer_id;
        let sk = format!("CONTACT#{}", contact.id);
        let body = to_item(contact).map_err(corrupt(contact.id.as_str()))?;
        let mut main = body.clone();
        main.extend(key(format!("DEALER#{d}"), sk.clone()));
        main.insert("GSI1PK".into(), s(phone_pk(d, &contact.phone)));
        main.insert("GSI1SK".into(), s(sk.clone()));
        // Only over what was read: a new contact must not exist, an edit must find the
        // version it was made from (else its link changes would be computed on stale data).
        let main = match previous {
            None => Put::builder().condition_expression("attribute_not_exists(PK)"),
            Some(prev) => Put::builder()
                .condition_expression("#updated = :previous")
                .expression_attribute_names("#updated", "updatedAt")
                .expression_attribute_values(
                    ":previous",
                    to_attr(&serde_json::to_value(prev.updated_at).map_err(corrupt("contact"))?),
                ),
        }
        .table_name(&self.table)
        .set_item(Some(main))
        .build()
        .map_err(unavailable("building Put"))?;
        let mut items = vec![TransactWriteItem::builder().put(main).build()];
        let links: Vec<String> = contact
            .account_ids
            .iter()
            .map(|a| format!("DEALER#{d}#ACCOUNT#{a}"))
            .chain(
                contact
                    .deal_ids
                    .iter()
                    .map(|x| format!("DEALER#{d}#DEAL#{x}")),
            )
            .collect();
        for pk in &links {
            let mut link = body.clone();
            link.extend(key(pk.clone(), sk.clone()));
            items.push(put(&self.table, link, None)?);
        }
        if let Some(prev) = previous {
            let stale = prev
                .account_ids
                .iter()
                .map(|a| format!("DEALER#{d}#ACCOUNT#{a}"))
                .chain(prev.deal_ids.iter().map(|x| format!("DEALER#{d}#DEAL#{x}")))
                .filter(|pk| !links.contains(pk));
            for pk in stale {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk, sk.clone())))
                    .build()
                    .map_err(unavailable("building Delete"))?;
                items.push(TransactWriteItem::builder().delete(delete).build());
            }
        }
        if items.len() > 100 {
            return Err(StoreError::Partial(
                "a contact may be on at most 99 accounts and deals".into(),
            ));
        }
        transact(&self.client, items, "contact changed").await
    }

    async fn contacts_by_account(
        &self,
        dealer: &DealerId,
        account: &AccountId,
    ) -> StoreResult<Vec<Contact>> {
        self.linked(format!("DEALER#{dealer}#ACCOUNT#{account}"))
            .await
    }

    async fn contacts_by_deal(
        &self,
        dealer: &DealerId,
        deal: &DealId,
    ) -> StoreResult<Vec<Contact>> {
        self.linked(format!("DEALER#{dealer}#DEAL#{deal}")).await
    }

    async fn contacts_by_phone(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<Contact>> {
        self.query_all(
            Some("GSI1"),
            "GSI1PK",
            phone_pk(dealer, phone),
            "GSI1SK",
            "CONTACT#",
        )
        .await?
        .iter()
        .map(Self::contact_from)
        .collect()
    }
}

fn consent_from(item: &Item) -> Result<Versioned<ConsentState>, StoreError> {
    let version = get_n(item, "version").unwrap_or(0);
    let value = match item.get("state") {
        Some(a) => serde_json::from_value(crate::attr::from_attr(a)).map_err(corrupt("consent"))?,
        None => ConsentState::default(),
    };
    Ok(Versioned { value, version })
}

#[async_trait]
impl ConsentReader for DynamoStore {
    async fn consent(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Versioned<ConsentState>> {
        match self.get(phone_pk(dealer, phone), "CONSENT").await? {
            Some(item) => consent_from(&item),
            None => Ok(Versioned::default()),
        }
    }

    async fn consents(
        &self,
        dealer: &DealerId,
        phones: &[PhoneNumber],
    ) -> StoreResult<HashMap<PhoneNumber, ConsentState>> {
        let keys = phones
            .iter()
            .map(|p| key(phone_pk(dealer, p), "CONSENT"))
            .collect();
        let mut out: HashMap<PhoneNumber, ConsentState> = phones
            .iter()
            .map(|p| (p.clone(), ConsentState::default()))
            .collect();
        for item in self.batch_get(keys).await? {
            let phone =
                crate::attr::get_s(&item, "phone").and_then(|p| PhoneNumber::from_e164(p).ok());
            if let Some(phone) = phone {
                out.insert(phone, consent_from(&item)?.value);
            }
        }
        Ok(out)
    }

    async fn history(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<LedgerEntry>> {
        self.query_all(None, "PK", phone_pk(dealer, phone), "SK", "LEDGER#")
            .await?
            .iter()
            .map(|i| from_item(i).map_err(corrupt("ledger entry")))
            .collect()
    }

    async fn opted_out(&self, from: &PhoneNumber, to: &PhoneNumber) -> StoreResult<bool> {
        Ok(self.get(opt_out_pk(from, to), "OPTOUT").await?.is_some())
    }
}

#[async_trait]
impl ConsentWriter for DynamoStore {
    async fn set_opted_out(
        &self,
        from: &PhoneNumber,
        to: &PhoneNumber,
        opted_out: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let k = key(opt_out_pk(from, to), "OPTOUT");
        if opted_out {
            let mut item = k;
            item.insert("since".into(), s(at.to_rfc3339()));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(unavailable("DynamoDB PutItem (opt-out)"))?;
        } else {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(k))
                .send()
                .await
                .map_err(unavailable("DynamoDB DeleteItem (opt-out)"))?;
        }
        Ok(())
    }

    async fn append(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        expected_version: u64,
        entries: &[LedgerEntry],
        new_state: &ConsentState,
        consumed: &[PendingKey],
    ) -> StoreResult<()> {
        let pk = phone_pk(dealer, phone);
        let state = serde_json::to_value(new_state).map_err(corrupt(&pk))?;
        let mut state_item = key(pk.clone(), "CONSENT");
        state_item.insert("version".into(), n(expected_version + 1));
        state_item.insert("state".into(), to_attr(&state));
        state_item.insert("phone".into(), s(phone.as_str()));
        state_item.insert("dealerId".into(), s(dealer.as_str()));
        let condition = if expected_version == 0 {
            "attribute_not_exists(PK)"
        } else {
            "version = :v"
        };
        let mut state_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(state_item))
            .condition_expression(condition);
        if expected_version != 0 {
            state_put = state_put.expression_attribute_values(":v", n(expected_version));
        }
        let mut items = vec![TransactWriteItem::builder()
            .put(state_put.build().map_err(unavailable("building Put"))?)
            .build()];
        for e in entries {
            let mut item = to_item(e).map_err(corrupt(&pk))?;
            item.extend(key(pk.clone(), format!("LEDGER#{}", e.id)));
            items.push(put(&self.table, item, Some("attribute_not_exists(PK)"))?);
        }
        for c in consumed {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk.clone(), format!("PENDING#{}", c.category))))
                .condition_expression("requestId = :r")
                .expression_attribute_values(":r", s(c.request_id.clone()))
                .build()
                .map_err(unavailable("building Delete"))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        transact(&self.client, items, "consent changed concurrently").await
    }
}

fn pending_from(item: &Item) -> Result<PendingAuthorization, StoreError> {
    from_item(item).map_err(corrupt("pending authorization"))
}

#[async_trait]
impl PendingStore for DynamoStore {
    async fn pending(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
    ) -> StoreResult<Option<PendingAuthorization>> {
        self.get(phone_pk(dealer, phone), &format!("PENDING#{category}"))
            .await?
            .map(|i| pending_from(&i))
            .transpose()
    }

    async fn pending_for_number(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<PendingAuthorization>> {
        self.query_all(None, "PK", phone_pk(dealer, phone), "SK", "PENDING#")
            .await?
            .iter()
            .map(pending_from)
            .collect()
    }

    async fn pending_for_numbers(
        &self,
        dealer: &DealerId,
        phones: &[PhoneNumber],
    ) -> StoreResult<Vec<PendingAuthorization>> {
        let keys = phones
            .iter()
            .flat_map(|p| Category::ALL.map(|c| key(phone_pk(dealer, p), format!("PENDING#{c}"))))
            .collect();
        self.batch_get(keys)
            .await?
            .iter()
            .map(pending_from)
            .collect()
    }

    async fn put_pending(&self, p: &PendingAuthorization) -> StoreResult<()> {
        let pk = phone_pk(&p.dealer_id, &p.phone);
        let mut item = to_item(p).map_err(corrupt(&pk))?;
        item.extend(pending_key(p));
        // Kept two days past expiry: "expired" is told apart from "never asked", and a
        // request never completed is still there for the follow-up a day later.
        item.insert("ttl".into(), n(epoch(p.expires_at) + 2 * 24 * 3600));
        // The follow-up index (sparse: removed once followed up, deleted when completed).
        item.insert("GSI2PK".into(), s(FOLLOW_UP_PK));
        item.insert(
            "GSI2SK".into(),
            s(format!(
                "{:013}#{}",
                p.created_at.timestamp_millis().max(0),
                p.request_id
            )),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable("DynamoDB PutItem"))?;
        Ok(())
    }

    async fn overdue(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<PendingAuthorization>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI2")
            .key_condition_expression("GSI2PK = :pk AND GSI2SK <= :until")
            .expression_attribute_values(":pk", s(FOLLOW_UP_PK))
            .expression_attribute_values(
                ":until",
                s(format!(
                    "{:013}#~",
                    created_before.timestamp_millis().max(0)
                )),
            )
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(unavailable("DynamoDB Query (follow-ups)"))?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(pending_from)
            .collect()
    }

    async fn mark_followed_up(&self, p: &PendingAuthorization) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(pending_key(p)))
            .update_expression("REMOVE GSI2PK, GSI2SK SET followedUp = :true")
            .condition_expression("requestId = :r AND attribute_exists(GSI2PK)")
            .expression_attribute_values(":r", s(p.request_id.clone()))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .send()
            .await;
        conditional_write(
            result,
            "pending authorization changed",
            "DynamoDB UpdateItem (follow-up)",
        )
    }

    async fn take_attempt(
        &self,
        p: &PendingAuthorization,
    ) -> StoreResult<Option<PendingAuthorization>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(pending_key(p)))
            .update_expression("SET attempts = attempts + :one")
            .condition_expression("requestId = :r AND attempts < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":r", s(p.request_id.clone()))
            .expression_attribute_values(":max", n(consent::approval::MAX_ATTEMPTS))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .as_ref()
                .map(pending_from)
                .transpose()?
                .map(Some)
                .ok_or(StoreError::Partial(
                    "UpdateItem returned no attributes".into(),
                )),
            Err(e) if is_conditional(&e) => Ok(None),
            Err(e) => Err(StoreError::unavailable("DynamoDB UpdateItem (attempts)", e)),
        }
    }

    async fn replace_code(&self, p: &PendingAuthorization) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(pending_key(p)))
            .update_expression("SET codeHash = :h, sends = :sends")
            .condition_expression("requestId = :r")
            .expression_attribute_values(":h", s(p.code_hash.clone()))
            .expression_attribute_values(":sends", n(p.sends))
            .expression_attribute_values(":r", s(p.request_id.clone()))
            .send()
            .await;
        conditional_write(
            result,
            "pending authorization changed",
            "DynamoDB UpdateItem (resend)",
        )
    }

    async fn void(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
        request_id: &str,
    ) -> StoreResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                phone_pk(dealer, phone),
                format!("PENDING#{category}"),
            )))
            .condition_expression("requestId = :r")
            .expression_attribute_values(":r", s(request_id.to_owned()))
            .send()
            .await;
        match conditional_write(result, "replaced", "DynamoDB DeleteItem (void)") {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn acquire(
        &self,
        key_name: &str,
        limit: u32,
        window: Duration,
        at: DateTime<Utc>,
    ) -> StoreResult<RateDecision> {
        let secs = window.as_secs().max(1) as i64;
        let bucket = at.timestamp().div_euclid(secs);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("RATE#{key_name}"), bucket.to_string())))
            .update_expression("ADD #c :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#c) OR #c < :limit")
            .expression_attribute_names("#c", "count")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":ttl", n((bucket + 2) * secs))
            .send()
            .await;
        match result {
            Ok(_) => Ok(RateDecision::Allowed),
            Err(e) if is_conditional(&e) => Ok(RateDecision::Limited {
                retry_after: Duration::from_secs(
                    ((bucket + 1) * secs - at.timestamp()).max(1) as u64
                ),
            }),
            Err(e) => Err(StoreError::unavailable("DynamoDB UpdateItem (rate)", e)),
        }
    }
}

fn message_from(item: &Item) -> Result<Message, StoreError> {
    from_item(item).map_err(corrupt("message"))
}

#[async_trait]
impl MessageStore for DynamoStore {
    async fn message(&self, id: &MessageId) -> StoreResult<Option<Message>> {
        self.get(msg_pk(id), "MESSAGE")
            .await?
            .map(|i| message_from(&i))
            .transpose()
    }

    async fn create(
        &self,
        message: &Message,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()> {
        let item = self.message_item(message)?;
        let Some(record) = idempotency else {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK)")
                .send()
                .await;
            return conditional_write(result, "message exists", "DynamoDB PutItem");
        };
        let mut idem = to_item(record).map_err(corrupt("idempotency"))?;
        idem.extend(key(
            format!("DEALER#{}#IDEM#{}", record.dealer_id, record.key),
            "IDEM",
        ));
        idem.insert(
            "ttl".into(),
            n(epoch(record.created_at) + IDEMPOTENCY_TTL.num_seconds()),
        );
        // An expired key DynamoDB has not deleted yet counts as absent, as on read.
        let idem = Put::builder()
            .table_name(&self.table)
            .set_item(Some(idem))
            .condition_expression("attribute_not_exists(PK) OR #ttl < :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", n(epoch(record.created_at)))
            .build()
            .map_err(unavailable("building Put"))?;
        transact(
            &self.client,
            vec![
                TransactWriteItem::builder().put(idem).build(),
                put(&self.table, item, Some("attribute_not_exists(PK)"))?,
            ],
            "idempotency key exists",
        )
        .await
    }

    async fn idempotency(
        &self,
        dealer: &DealerId,
        key_name: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let Some(item) = self
            .get(format!("DEALER#{dealer}#IDEM#{key_name}"), "IDEM")
            .await?
        else {
            return Ok(None);
        };
        let record: IdempotencyRecord = from_item(&item).map_err(corrupt("idempotency"))?;
        // TTL deletion is eventual: an expired key is treated as absent.
        let expired = at.timestamp() > get_n(&item, "ttl").map(|t| t as i64).unwrap_or(i64::MAX);
        Ok((!expired).then_some(record))
    }

    async fn save(&self, message: &Message, expected: MessageStatus) -> StoreResult<()> {
        let item = self.message_item(message)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#status = :expected AND size(#history) = :seen")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#history", "history")
            .expression_attribute_values(":expected", s(expected.as_str()))
            .expression_attribute_values(":seen", n(message.history.len().saturating_sub(1)))
            .send()
            .await;
        conditional_write(result, "message status changed", "DynamoDB PutItem")
    }

    async fn claim_for_delivery(
        &self,
        id: &MessageId,
        expected: &ClaimExpectation<'_>,
        at: DateTime<Utc>,
        consent: Option<&ConsentGuard>,
    ) -> StoreResult<DeliveryClaim> {
        let change = serde_json::json!({"status": "sending", "at": at});
        let snap = expected.snapshot;
        // The stored message must be what the queue record says: who, from where, what,
        // under which category and kind (and, for a code text, the same sealed code).
        let code_condition = match &snap.code {
            Some(_) => "#code.#sealed = :sealed",
            None => "attribute_not_exists(#code)",
        };
        let mut claim = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(msg_pk(id), "MESSAGE")))
            .update_expression("SET #status = :sending, #history = list_append(#history, :change) REMOVE DuePK, DueSK, statusReason")
            .condition_expression(format!(
                "#status = :queued AND #dealer = :dealer AND #kind = :kind AND #to = :to \
                 AND #from = :from AND #body = :body AND #category = :category AND {code_condition}"
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#history", "history")
            .expression_attribute_names("#dealer", "dealerId")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_names("#to", "to")
            .expression_attribute_names("#from", "from")
            .expression_attribute_names("#body", "body")
            .expression_attribute_names("#category", "category")
            .expression_attribute_names("#code", "code")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":queued", s("queued"))
            .expression_attribute_values(":dealer", s(expected.dealer.as_str()))
            .expression_attribute_values(":kind", to_attr(&serde_json::to_value(snap.kind).map_err(corrupt(id.as_str()))?))
            .expression_attribute_values(":to", s(snap.to.as_str()))
            .expression_attribute_values(":from", s(snap.from.as_str()))
            .expression_attribute_values(":body", s(snap.body.clone()))
            .expression_attribute_values(":category", s(snap.category.as_str()))
            .expression_attribute_values(":change", AttributeValue::L(vec![to_attr(&change)]));
        if let Some(code) = &snap.code {
            claim = claim
                .expression_attribute_names("#sealed", "sealed")
                .expression_attribute_values(":sealed", s(code.sealed.clone()));
        }
        let claim = claim.build().map_err(unavailable("building Update"))?;
        let mut items = vec![TransactWriteItem::builder().update(claim).build()];
        // Everything but an answer to the person's own text stops at an opt-out of the
        // sending number.
        let opt_out_checked = snap.kind != consent::message::MessageKind::Reply;
        if opt_out_checked {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(opt_out_pk(&snap.from, &snap.to), "OPTOUT")))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .map_err(unavailable("building ConditionCheck"))?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        if let Some(g) = consent {
            // The consent state's stored form: state.categories[slot].status.
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(phone_pk(&g.dealer, &g.phone), "CONSENT")))
                .condition_expression(format!(
                    "#state.#categories[{}].#status = :authorized",
                    consent::ledger::slot(g.category)
                ))
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#categories", "categories")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":authorized", s("authorized"))
                .build()
                .map_err(unavailable("building ConditionCheck"))?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let reasons = match result {
            Ok(_) => return Ok(DeliveryClaim::Claimed),
            Err(e) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
                match e.as_service_error() {
                    Some(E::TransactionCanceledException(t)) => t
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code() == Some("ConditionalCheckFailed"))
                        .collect::<Vec<bool>>(),
                    _ => {
                        return Err(StoreError::unavailable(
                            "DynamoDB TransactWriteItems (claim)",
                            e,
                        ))
                    }
                }
            }
        };
        if reasons.first().copied().unwrap_or(false) {
            return Ok(match self.message(id).await? {
                Some(m) if m.status == MessageStatus::Queued => DeliveryClaim::Mismatch,
                Some(m) => DeliveryClaim::NotClaimable(m.status),
                None => DeliveryClaim::NotFound,
            });
        }
        let consent_at = if opt_out_checked {
            if reasons.get(1).copied().unwrap_or(false) {
                return Ok(DeliveryClaim::OptedOut);
            }
            2
        } else {
            1
        };
        if reasons.get(consent_at).copied().unwrap_or(false) {
            return Ok(DeliveryClaim::ConsentMissing);
        }
        Err(StoreError::Partial(
            "the claim was canceled for another reason".into(),
        ))
    }

    async fn record_delivery(
        &self,
        id: &MessageId,
        from: MessageStatus,
        r: &DeliveryRecord,
    ) -> StoreResult<()> {
        let change = serde_json::to_value(consent::message::StatusChange {
            status: r.status,
            at: r.at,
            reason: r.reason.clone(),
        })
        .map_err(corrupt(id.as_str()))?;
        let mut set = vec!["#status = :to", "#history = list_append(#history, :change)"];
        let mut remove = Vec::new();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(msg_pk(id), "MESSAGE")))
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#history", "history")
            .expression_attribute_values(":to", s(r.status.as_str()))
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":change", AttributeValue::L(vec![to_attr(&change)]));
        match &r.reason {
            Some(reason) => {
                set.push("statusReason = :reason");
                update = update.expression_attribute_values(":reason", s(reason.clone()));
            }
            None => remove.push("statusReason"),
        }
        if let Some(c) = &r.carrier_message_id {
            set.push("carrierMessageId = :carrier");
            update = update.expression_attribute_values(":carrier", s(c.clone()));
        }
        if let Some(a) = r.attempts {
            set.push("attempts = :attempts");
            update = update.expression_attribute_values(":attempts", n(a));
        }
        if let Some(t) = r.send_at {
            set.push("sendAt = :sendAt");
            set.push("dueEpoch = :dueEpoch");
            update = update
                .expression_attribute_values(
                    ":sendAt",
                    to_attr(&serde_json::to_value(t).map_err(corrupt(id.as_str()))?),
                )
                .expression_attribute_values(":dueEpoch", n(epoch(t)));
        }
        // The due index follows the new status, as `Message::index_time` defines it.
        let index_at = match r.status {
            MessageStatus::Scheduled | MessageStatus::Deferred => r.send_at,
            MessageStatus::Queued => Some(r.at + consent::message::REQUEUE_AFTER),
            _ => None,
        };
        match index_at {
            Some(at) => {
                set.push("DuePK = :duePK");
                set.push("DueSK = :dueSK");
                update = update
                    .expression_attribute_values(":duePK", s(format!("DUE#{}", self.shard_of(id))))
                    .expression_attribute_values(
                        ":dueSK",
                        s(format!("{:013}#{id}", at.timestamp_millis().max(0))),
                    );
            }
            None => remove.extend(["DuePK", "DueSK"]),
        }
        // A code text's sealed code is kept only while it may still go.
        if r.status != MessageStatus::Queued {
            remove.push("code");
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        conditional_write(
            update.update_expression(expression).send().await,
            "message status changed",
            "DynamoDB UpdateItem (delivery)",
        )
    }

    async fn due(&self, shard: u32, until: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Message>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("Due")
            .key_condition_expression("DuePK = :pk AND DueSK <= :until")
            .expression_attribute_values(":pk", s(format!("DUE#{shard}")))
            .expression_attribute_values(
                ":until",
                s(format!("{:013}#~", until.timestamp_millis().max(0))),
            )
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(unavailable("DynamoDB Query (due)"))?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(message_from)
            // The index is eventually consistent: keep only what is still waiting.
            .filter(|m| m.as_ref().map(|m| m.index_time().is_some()).unwrap_or(true))
            .collect()
    }

    async fn by_recipient(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        statuses: &[MessageStatus],
    ) -> StoreResult<Vec<Message>> {
        let items = self
            .query_all(
                Some("GSI1"),
                "GSI1PK",
                phone_pk(dealer, phone),
                "GSI1SK",
                "MSG#",
            )
            .await?;
        let mut out = Vec::new();
        for item in &items {
            let m = message_from(item)?;
            if statuses.contains(&m.status) {
                out.push(m);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl InboundLog for DynamoStore {
    async fn first_delivery(
        &self,
        carrier_message_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // Kept as long as the ledger (never expired): a replayed signed START years later
        // must not act again on someone who said STOP since.
        let mut item = key(format!("INBOUND#{carrier_message_id}"), "DEDUP");
        item.insert("receivedAt".into(), s(at.to_rfc3339()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_conditional(&e) => Ok(false),
            Err(e) => Err(StoreError::unavailable("DynamoDB PutItem (dedup)", e)),
        }
    }

    async fn forget(&self, carrier_message_id: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("INBOUND#{carrier_message_id}"), "DEDUP")))
            .send()
            .await
            .map_err(unavailable("DynamoDB DeleteItem (dedup)"))?;
        Ok(())
    }
}

fn queue_pk(dealer: &DealerId, queue: WorkQueueName) -> String {
    format!("DEALER#{dealer}#QUEUE#{}", queue.as_str())
}

fn work_item(w: &WorkItem) -> Result<Item, StoreError> {
    let pk = queue_pk(&w.dealer_id, w.queue);
    let mut item = to_item(w).map_err(corrupt(&pk))?;
    item.extend(key(pk.clone(), format!("ITEM#{}", w.id)));
    item.insert(
        "GSI2PK".into(),
        s(format!("{pk}#STATUS#{}", w.status.as_str())),
    );
    item.insert("GSI2SK".into(), s(format!("ITEM#{}", w.id)));
    Ok(item)
}

/// Cursors are the last evaluated key, as URL-safe base64 of its string attributes.
fn encode_cursor(key: &Item) -> String {
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

fn decode_cursor(cursor: &str, pk: &str) -> Result<Item, StoreError> {
    use base64::Engine;
    let bad = || StoreError::Corrupt {
        key: "cursor".into(),
        reason: "not a cursor of this list".into(),
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| bad())?;
    let map: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    // A cursor only continues the list it came from (no reading other partitions).
    let same_list = map.get("PK").is_some_and(|v| v == pk)
        && map.get("SK").is_some_and(|v| v.starts_with("ITEM#"))
        && map.len() <= 4;
    if !same_list {
        return Err(bad());
    }
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}

#[async_trait]
impl WorkQueue for DynamoStore {
    async fn add_item(&self, w: &WorkItem) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(work_item(w)?))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(unavailable("DynamoDB PutItem (work item)"))?;
        Ok(())
    }
}

#[async_trait]
impl WorkQueueDesk for DynamoStore {
    async fn item(
        &self,
        dealer: &DealerId,
        queue: WorkQueueName,
        id: &str,
    ) -> StoreResult<Option<WorkItem>> {
        self.get(queue_pk(dealer, queue), &format!("ITEM#{id}"))
            .await?
            .map(|i| from_item(&i).map_err(corrupt("work item")))
            .transpose()
    }

    async fn items(
        &self,
        dealer: &DealerId,
        queue: WorkQueueName,
        q: &ItemQuery,
    ) -> StoreResult<ItemPage> {
        let pk = queue_pk(dealer, queue);
        let mut start = q
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, &pk))
            .transpose()?;
        let mut items = Vec::new();
        let mut filters = Vec::new();
        if q.contact_id.is_some() {
            filters.push("contactId = :contact");
        }
        if q.account_id.is_some() {
            filters.push("accountId = :account");
        }
        // Bounded: a filtered page may need a few reads to fill.
        for _ in 0..10 {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .scan_index_forward(!q.newest_first)
                .limit((q.limit - items.len() as u32).max(1) as i32)
                .set_exclusive_start_key(start.take());
            query = match q.status {
                Some(status) => query
                    .index_name("GSI2")
                    .key_condition_expression("GSI2PK = :pk")
                    .expression_attribute_values(
                        ":pk",
                        s(format!("{pk}#STATUS#{}", status.as_str())),
                    ),
                None => query
                    .key_condition_expression("PK = :pk AND begins_with(SK, :item)")
                    .expression_attribute_values(":pk", s(pk.clone()))
                    .expression_attribute_values(":item", s("ITEM#")),
            };
            if !filters.is_empty() {
                query = query.filter_expression(filters.join(" AND "));
            }
            if let Some(c) = &q.contact_id {
                query = query.expression_attribute_values(":contact", s(c.as_str()));
            }
            if let Some(a) = &q.account_id {
                query = query.expression_attribute_values(":account", s(a.as_str()));
            }
            let out = query
                .send()
                .await
                .map_err(unavailable("DynamoDB Query (work items)"))?;
            for i in out.items.unwrap_or_default() {
                items.push(from_item::<WorkItem>(&i).map_err(corrupt("work item"))?);
            }
            start = out.last_evaluated_key;
            if start.is_none() || items.len() as u32 >= q.limit {
                break;
            }
        }
        // Base-table keys continue either list (index keys carry PK and SK too).
        let next_cursor = start.map(|k| encode_cursor(&k));
        Ok(ItemPage { items, next_cursor })
    }

    async fn open_count(&self, dealer: &DealerId, queue: WorkQueueName) -> StoreResult<u64> {
        let mut count = 0u64;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("GSI2")
                .set_limit(self.page_limit)
                .key_condition_expression("GSI2PK = :pk")
                .expression_attribute_values(
                    ":pk",
                    s(format!("{}#STATUS#open", queue_pk(dealer, queue))),
                )
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable("DynamoDB Query (count)"))?;
            count += out.count.max(0) as u64;
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(count)
    }

    async fn save_item(&self, w: &WorkItem, expected: WorkItemStatus) -> StoreResult<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(work_item(w)?))
            .condition_expression("#status = :expected")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expected", s(expected.as_str()))
            .send()
            .await;
        conditional_write(result, "work item changed", "DynamoDB PutItem (work item)")
    }
}

#[cfg(test)]
mod redaction_tests {
    #[test]
    fn keys_in_errors_hold_no_full_number() {
        assert_eq!(
            super::redact_numbers("DEALER#d-1#PHONE#+12025550143"),
            "DEALER#d-1#PHONE#+1********43"
        );
        assert_eq!(super::redact_numbers("MSG#01J+"), "MSG#01J+");
    }
}
