//! Ports: narrow traits, one per capability, that the services use and the adapters
//! implement (DynamoDB, SQS, EventBridge, carrier HTTP) — and the fakes, in memory.
//!
//! Each function's IAM policy in infra/template.yaml grants exactly the actions of the
//! ports it is wired with.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::approval::{CodeHasher, PendingAuthorization};
use crate::automation::Automation;
use crate::category::Category;
use crate::error::StoreError;
use crate::ids::{AccountId, ContactId, DealId, DealerId, MessageId};
use crate::ledger::{ConsentState, LedgerEntry};
use crate::message::{Message, MessageStatus, Outbound};
use crate::phone::PhoneNumber;
use crate::template::DealerTemplate;

pub type StoreResult<T> = Result<T, StoreError>;

/// A dealer's texting settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dealer {
    pub id: DealerId,
    pub name: String,
    pub texting_number: PhoneNumber,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_contact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// A person on accounts and deals, with the cell number they are texted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: ContactId,
    pub dealer_id: DealerId,
    pub name: String,
    pub phone: PhoneNumber,
    #[serde(default)]
    pub account_ids: Vec<AccountId>,
    #[serde(default)]
    pub deal_ids: Vec<DealId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[async_trait]
pub trait DealerStore: Send + Sync {
    async fn dealer(&self, id: &DealerId) -> StoreResult<Option<Dealer>>;
    /// Saves the settings and claims the texting number for this dealer atomically
    /// (`Conflict` when another dealer holds it); releases `previous_number`.
    async fn put_dealer(
        &self,
        dealer: &Dealer,
        previous_number: Option<&PhoneNumber>,
    ) -> StoreResult<()>;
    /// Which dealer texts from this number.
    async fn dealer_by_number(&self, number: &PhoneNumber) -> StoreResult<Option<DealerId>>;
}

/// A texting number the operator provisioned, with the carrier account it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionedNumber {
    pub number: PhoneNumber,
    pub carrier_account: String,
    /// The dealer it was provisioned for: only that dealer may text from it (None: an
    /// item from before numbers named their dealer, which no dealer may take).
    pub dealer: Option<DealerId>,
}

/// The operator's allow-list of texting numbers: a dealer can only text from one of them.
#[async_trait]
pub trait NumberDirectory: Send + Sync {
    async fn provisioned(&self, number: &PhoneNumber) -> StoreResult<Option<ProvisionedNumber>>;
}

/// A dealer's automations (`DEALER#d` / `AUTOMATION#<eventType>`).
#[async_trait]
pub trait AutomationStore: Send + Sync {
    async fn automations(&self, dealer: &DealerId) -> StoreResult<Vec<Automation>>;
    async fn automation(
        &self,
        dealer: &DealerId,
        event_type: &str,
    ) -> StoreResult<Option<Automation>>;
    async fn put_automation(&self, dealer: &DealerId, automation: &Automation) -> StoreResult<()>;
}

/// A dealer's own templates (`DEALER#d` / `TEMPLATE#name`).
#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// The dealer's templates, by name.
    async fn dealer_templates(&self, dealer: &DealerId) -> StoreResult<Vec<DealerTemplate>>;
    async fn dealer_template(
        &self,
        dealer: &DealerId,
        name: &str,
    ) -> StoreResult<Option<DealerTemplate>>;
    /// Stores `template` if the stored version is still `previous` (`None`: none stored):
    /// `Conflict` otherwise, so two edits from one read cannot both land.
    async fn put_template(
        &self,
        dealer: &DealerId,
        template: &DealerTemplate,
        previous: Option<u32>,
    ) -> StoreResult<()>;
    /// Deletes the template; false when there was none.
    async fn delete_template(&self, dealer: &DealerId, name: &str) -> StoreResult<bool>;
}

#[async_trait]
pub trait ContactStore: Send + Sync {
    async fn contact(&self, dealer: &DealerId, id: &ContactId) -> StoreResult<Option<Contact>>;
    /// Upserts the contact and its account/deal links, only if what is stored is still
    /// `previous` (same `updated_at`; none stored when `None`): `Conflict` otherwise, so
    /// two edits from the same read cannot leave stale links.
    async fn put_contact(&self, contact: &Contact, previous: Option<&Contact>) -> StoreResult<()>;
    /// Deletes the contact and its account and deal links, if it is still as read
    /// (`Conflict` when it was edited or deleted since).
    async fn delete_contact(&self, contact: &Contact) -> StoreResult<()>;
    async fn contacts_by_account(
        &self,
        dealer: &DealerId,
        account: &AccountId,
    ) -> StoreResult<Vec<Contact>>;
    async fn contacts_by_deal(&self, dealer: &DealerId, deal: &DealId)
        -> StoreResult<Vec<Contact>>;
    async fn contacts_by_phone(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<Contact>>;
    /// A page of the contacts linked to an account or a deal, in contact id order, after
    /// `after`; true when more follow. (Stores override this with one bounded Query.)
    async fn linked_contacts(
        &self,
        dealer: &DealerId,
        link: &ContactLink,
        limit: u32,
        after: Option<&ContactId>,
    ) -> StoreResult<(Vec<Contact>, bool)> {
        let mut all = match link {
            ContactLink::Account(a) => self.contacts_by_account(dealer, a).await?,
            ContactLink::Deal(d) => self.contacts_by_deal(dealer, d).await?,
        };
        all.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        all.retain(|c| after.is_none_or(|a| c.id.as_str() > a.as_str()));
        let more = all.len() > limit as usize;
        all.truncate(limit as usize);
        Ok((all, more))
    }
}

/// What a contact list is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactLink {
    Account(AccountId),
    Deal(DealId),
}

/// Consent state with the version it was read at (optimistic concurrency).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// Identifies a pending authorization to consume in the same write as a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingKey {
    pub category: Category,
    pub request_id: String,
}

#[async_trait]
pub trait ConsentReader: Send + Sync {
    async fn consent(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Versioned<ConsentState>>;
    /// Many numbers at once (BatchGetItem): numbers never touched map to the default state.
    async fn consents(
        &self,
        dealer: &DealerId,
        phones: &[PhoneNumber],
    ) -> StoreResult<HashMap<PhoneNumber, ConsentState>>;
    /// The whole ledger of a number, oldest first.
    async fn history(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<LedgerEntry>>;
    /// A page of the ledger of a number, oldest first, after the entry `after`; true when
    /// more follow. (Stores override this with one bounded Query.)
    async fn history_page(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<(Vec<LedgerEntry>, bool)> {
        let mut all = self.history(dealer, phone).await?;
        all.retain(|e| after.is_none_or(|a| e.id.as_str() > a));
        let more = all.len() > limit as usize;
        all.truncate(limit as usize);
        Ok((all, more))
    }
    /// Did the person at `to` opt out of texts from the texting number `from` (a STOP or
    /// a carrier block), whichever dealer held the number then? Carriers refuse such
    /// texts until the person texts START, so the block belongs to the pair of numbers
    /// and stays when the texting number changes owner.
    async fn opted_out(&self, from: &PhoneNumber, to: &PhoneNumber) -> StoreResult<bool>;
    /// What a send checks before it texts `phone` from `from`: the dealer's consent state
    /// and whether the person opted out of that number. Stores answer both in one request.
    async fn consent_to_text(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        from: &PhoneNumber,
    ) -> StoreResult<(Versioned<ConsentState>, bool)> {
        Ok((
            self.consent(dealer, phone).await?,
            self.opted_out(from, phone).await?,
        ))
    }
}

/// One page of a dealer's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LedgerPage {
    pub entries: Vec<LedgerEntry>,
    /// Pass back to get the next page; None at the end.
    pub next_cursor: Option<String>,
}

/// The dealer-wide ledger by time, for audits (Query GSI2 `DEALER#d#LEDGER`).
#[async_trait]
pub trait LedgerExport: Send + Sync {
    /// The dealer's entries with `from <= at < to`, oldest first (ties by id), at most
    /// `limit` (1 or more) per page. `cursor` is a page's `next_cursor`; one that did
    /// not come from this dealer's export is `Corrupt` with key `cursor`.
    async fn ledger_between(
        &self,
        dealer: &DealerId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
        cursor: Option<&str>,
    ) -> StoreResult<LedgerPage>;
}

/// One consent change for [`ConsentWriter::append`].
#[derive(Debug, Clone, Copy)]
pub struct ConsentChange<'a> {
    /// The state's version the change was decided on (0: none stored yet).
    pub expected_version: u64,
    pub entries: &'a [LedgerEntry],
    /// The state the entries fold to.
    pub new_state: &'a ConsentState,
    /// Pending authorizations the change consumes (deleted with it, if still the same request).
    pub consumed: &'a [PendingKey],
    /// The carrier message id of the reply whose effect this is, if a reply's.
    pub acted: Option<&'a str>,
}

#[async_trait]
pub trait ConsentWriter: Send + Sync {
    /// Appends ledger entries and stores the state they fold to, in one transaction,
    /// only if the stored version is still `expected_version` (else `Conflict`).
    /// Pending authorizations named in `consumed` are deleted in the same transaction.
    /// With `acted`, the reply's acted mark (the categories changed) is written in the
    /// same transaction, only if it is not there yet (else `Conflict`): the effect and its
    /// mark exist together or not at all.
    async fn append(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        change: ConsentChange<'_>,
    ) -> StoreResult<()>;
    /// Records (STOP, carrier block) or lifts (START) the opt-out of `to` from `from`.
    async fn set_opted_out(
        &self,
        from: &PhoneNumber,
        to: &PhoneNumber,
        opted_out: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait PendingStore: Send + Sync {
    async fn pending(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
    ) -> StoreResult<Option<PendingAuthorization>>;
    async fn pending_for_number(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
    ) -> StoreResult<Vec<PendingAuthorization>>;
    /// Pending requests for many numbers at once (contact listings).
    async fn pending_for_numbers(
        &self,
        dealer: &DealerId,
        phones: &[PhoneNumber],
    ) -> StoreResult<Vec<PendingAuthorization>>;
    /// Creates the request for (dealer, phone, category) when none is live there: absent,
    /// expired by the new request's creation, or its tries used up (`Conflict` otherwise:
    /// two Authorize clicks at once make one request, and the code already texted stays
    /// the one that works).
    async fn put_pending(&self, pending: &PendingAuthorization) -> StoreResult<()>;
    /// Takes one try of the request, before its code is compared: adds one to the stored
    /// attempts only if it is still the same request (request id) with tries left, and
    /// answers the request as stored after the write (`None`: replaced, gone or used up).
    async fn take_attempt(
        &self,
        pending: &PendingAuthorization,
    ) -> StoreResult<Option<PendingAuthorization>>;
    /// A resend: stores the request's new code hash and send count (`pending.sends`), only
    /// if it is still the same request at the send count before it (`Conflict` otherwise:
    /// of two resends at once, one wins); its attempts are left as stored.
    async fn replace_code(&self, pending: &PendingAuthorization) -> StoreResult<()>;
    /// Voids the request if it is still `request_id` and, when `sends` is given, still
    /// holds the code of that send (its code text failed or was suppressed; a later
    /// resend's code stays live); nothing happens otherwise.
    async fn void(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: Category,
        request_id: &str,
        sends: Option<u32>,
    ) -> StoreResult<()>;
    /// Requests created at or before `created_before` that are still stored (never
    /// completed) and not followed up yet.
    async fn overdue(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<PendingAuthorization>>;
    /// Marks a request followed up, if it is still that request (`Conflict` otherwise).
    async fn mark_followed_up(&self, pending: &PendingAuthorization) -> StoreResult<()>;
}

/// The outcome of taking one unit of a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    Limited { retry_after: Duration },
}

#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes `units` of `key` for the fixed window (of `window`, counted from the epoch)
    /// containing `at` if the window's total stays within `limit`; else takes nothing.
    async fn acquire_units(
        &self,
        key: &str,
        units: u32,
        limit: u32,
        window: Duration,
        at: DateTime<Utc>,
    ) -> StoreResult<RateDecision>;

    /// Takes one unit of `key` for the fixed window containing `at` if fewer than `limit` were taken.
    async fn acquire(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        at: DateTime<Utc>,
    ) -> StoreResult<RateDecision> {
        self.acquire_units(key, 1, limit, window, at).await
    }
}

/// When the fixed window of `window` seconds containing `at` ends (epoch-aligned, as
/// [`RateLimiter`] counts): the `retry_after` of a refusal.
pub fn window_left(window: Duration, at: DateTime<Utc>) -> Duration {
    let secs = window.as_secs().max(1) as i64;
    let bucket = at.timestamp().div_euclid(secs);
    Duration::from_secs(((bucket + 1) * secs - at.timestamp()).max(1) as u64)
}

/// How long an idempotency key answers with its first result.
pub const IDEMPOTENCY_TTL: chrono::Duration = chrono::Duration::days(7);

/// An idempotency key and what it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyRecord {
    pub dealer_id: DealerId,
    pub key: String,
    /// Fingerprint of the request body, so reuse with another body is detected.
    pub request_hash: String,
    pub message_id: MessageId,
    pub created_at: DateTime<Utc>,
}

/// A consent condition checked atomically with a delivery claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentGuard {
    pub dealer: DealerId,
    pub phone: PhoneNumber,
    pub category: Category,
}

/// What a delivery claim expects the stored message to be.
#[derive(Debug, Clone, Copy)]
pub struct ClaimExpectation<'a> {
    pub dealer: &'a DealerId,
    pub snapshot: &'a crate::message::DeliverySnapshot,
    /// A capped text: the claim also moves the recipient's cap book on from the
    /// version its check read (`BookMoved` when another writer got there first).
    pub book: Option<&'a CapBookWrite>,
}

/// A person's texts of one category from one dealer that a frequency cap counts,
/// read strongly consistent from the base table: the cap book (one item per dealer,
/// number and category) lists their ids, and the messages are read by key, so their
/// statuses and times are current. No index is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapBook {
    /// 0 when there is no book yet.
    pub version: u64,
    pub messages: Vec<Message>,
}

/// A write that moves a cap book on: conditional on the version read, so two
/// writers that counted the same texts cannot both pass the cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapBookWrite {
    pub dealer: DealerId,
    pub phone: PhoneNumber,
    pub category: crate::Category,
    /// The version the check read (0: no book).
    pub read: u64,
    /// The ids the book lists after the write (texts that may still count).
    pub ids: Vec<MessageId>,
}

/// The result of claiming a queued message for delivery with a consent check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryClaim {
    /// queued -> sending, and consent held at that moment.
    Claimed,
    /// The message is not queued (another worker, canceled, already sent ...).
    NotClaimable(MessageStatus),
    NotFound,
    /// The message is still queued but the category is not authorized any more.
    ConsentMissing,
    /// The stored message is queued but is not what the queue record says (a forged or
    /// corrupted record): nothing is sent.
    Mismatch,
    /// The message is still queued but its recipient opted out of its texting number
    /// (checked for every kind but answers to the person's own texts).
    OptedOut,
    /// The message's contact was deleted: its texts do not go (all kinds but answers to
    /// the person's own texts).
    ContactGone,
    /// The recipient's cap book moved on since the cap was checked (another text was
    /// accepted or claimed): nothing was written; check again.
    BookMoved,
    /// The dealer does not own the message's sending number any more (it changed its
    /// texting number since the message was made): nothing was written.
    NumberMoved,
}

/// A status change recorded by delivery (one history entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub status: MessageStatus,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
    pub carrier_message_id: Option<String>,
    /// A new send time (deferral).
    pub send_at: Option<DateTime<Utc>>,
    /// This record ends a carrier call (a refusal for being busy is not one): the
    /// message's attempt count goes up by one.
    pub attempted: bool,
}

/// Reading messages: by id, and a number's messages in given statuses (GetItem, a
/// Query on GSI1).
#[async_trait]
pub trait MessageReader: Send + Sync {
    async fn message(&self, id: &MessageId) -> StoreResult<Option<Message>>;
    /// Messages to a number from a dealer that are in one of `statuses`.
    async fn by_recipient(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        statuses: &[MessageStatus],
    ) -> StoreResult<Vec<Message>>;
    /// The newest message of a kind (a template name or marker) noted for a number with
    /// [`MessageWriter::note_latest`] (a strongly consistent GetItem).
    async fn latest(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        kind: &str,
    ) -> StoreResult<Option<MessageId>>;
    /// The recipient's cap book for a category, strongly consistent (a GetItem and a
    /// BatchGetItem of the listed messages).
    async fn cap_book(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        category: crate::Category,
    ) -> StoreResult<CapBook>;
}

/// Writing messages: new ones with their idempotency key, and status changes made on
/// a message read before (PutItem / TransactWriteItems of Puts, GetItem of the key).
#[async_trait]
pub trait MessageWriter: Send + Sync {
    /// Stores a new message (and its idempotency record, atomically). `Conflict` when
    /// the idempotency key exists already and has not expired by the record's time.
    async fn create(
        &self,
        message: &Message,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()>;
    /// Notes `id` as the newest message of `kind` to a number (a PutItem), so a reply to
    /// it (PAY to a Text to Pay reminder, CONFIRM to a pay request) finds it on the base
    /// table, not on an index that may not show it yet.
    async fn note_latest(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        kind: &str,
        id: &MessageId,
    ) -> StoreResult<()>;
    /// `create` of a text a frequency cap counts, with its cap book moved on in the same
    /// transaction. `Conflict` also when the book is no longer at `book.read`.
    async fn create_counted(
        &self,
        message: &Message,
        idempotency: Option<&IdempotencyRecord>,
        book: &CapBookWrite,
    ) -> StoreResult<()>;
    /// The key's record, unless it expired by `at` (`IDEMPOTENCY_TTL` after it was
    /// made): an expired key is absent, and `create` may take it again.
    async fn idempotency(
        &self,
        dealer: &DealerId,
        key: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<IdempotencyRecord>>;
    /// Replaces the message if its stored status is still `expected` and it has not
    /// changed since it was read: the new version carries exactly one more history entry
    /// than the stored one (`Conflict` otherwise). Every transition appends one entry, so
    /// this is an optimistic lock that also covers same-status transitions (a requeue).
    async fn save(&self, message: &Message, expected: MessageStatus) -> StoreResult<()>;
}

/// Delivery's two writes around the carrier call: the claim (a transaction with its
/// condition checks) and the result (UpdateItem).
#[async_trait]
pub trait DeliveryClaims: Send + Sync {
    /// queued -> sending in one conditional write that also checks that the stored
    /// message is what `expected` (the queue record's copy) says, that the dealer still
    /// owns the sending number (`NumberMoved`), that the recipient has
    /// not opted out of the sending number (unless it is a reply), and, when `consent` is
    /// given, that the category is authorized for the number at that moment.
    async fn claim_for_delivery(
        &self,
        id: &MessageId,
        expected: &ClaimExpectation<'_>,
        at: DateTime<Utc>,
        consent: Option<&ConsentGuard>,
    ) -> StoreResult<DeliveryClaim>;
    /// A queued message whose dealer changed its texting number goes from the new one:
    /// `from` -> `to` if it is still queued and still from `from` (false otherwise).
    async fn repoint(
        &self,
        id: &MessageId,
        from: &PhoneNumber,
        to: &PhoneNumber,
    ) -> StoreResult<bool>;
    /// Records a delivery outcome if the stored status is still `from` (`Conflict` otherwise).
    async fn record_delivery(
        &self,
        id: &MessageId,
        from: MessageStatus,
        record: &DeliveryRecord,
    ) -> StoreResult<()>;
}

/// The due-time index dispatch reads (a Query on the `Due` index per shard).
#[async_trait]
pub trait DueIndex: Send + Sync {
    /// Messages of one shard of the time index whose index time (see
    /// `Message::index_time`) is at or before `until`: waiting ones that are due and
    /// queued ones that were never picked up.
    async fn due(&self, shard: u32, until: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Message>>;
}

/// Every message capability, for the functions that need most of them (the narrow
/// traits above say which store actions each use case takes).
pub trait MessageStore: MessageReader + MessageWriter + DeliveryClaims + DueIndex {}

impl<T: MessageReader + MessageWriter + DeliveryClaims + DueIndex> MessageStore for T {}

#[async_trait]
pub trait OutboundQueue: Send + Sync {
    /// Queues messages (batched by the adapter). Returns the ids that could not be queued.
    async fn enqueue(&self, items: &[Outbound]) -> StoreResult<Vec<MessageId>>;
}

/// An event published to the bus, in an envelope (`detail` carries id, version, time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusEvent {
    pub source: String,
    pub detail_type: String,
    pub detail: serde_json::Value,
}

#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes all events (batched by 10); fails if any entry failed.
    async fn publish(&self, events: &[BusEvent]) -> StoreResult<()>;
}

/// What to hand the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierSend {
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub body: String,
    /// Where the carrier reports delivery status.
    pub status_callback: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierReceipt {
    pub carrier_message_id: String,
}

/// How a carrier call failed.
#[derive(Debug, thiserror::Error)]
pub enum CarrierError {
    /// Over the account's concurrent requests (Twilio 429, error 20429): never processed,
    /// always safe to send again, and not a failed attempt.
    #[error("carrier busy (too many requests at once)")]
    Throttled { retry_after: Option<Duration> },
    /// A connection that never opened, a 503: not taken, try again later (an attempt).
    #[error("carrier temporarily unavailable: {reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The request may have reached the carrier (a timeout after it was sent, an
    /// unreadable success, a 500/502/504): sending again could text the person twice, so
    /// the carrier's message list is asked first ([`Carrier::find_sent`]).
    #[error("carrier outcome unknown: {reason}")]
    Unknown { reason: String },
    /// The number has opted out at the carrier (Twilio 21610).
    #[error("recipient has opted out at the carrier (code {code})")]
    OptedOut { code: u32 },
    /// Any other refusal: sending again will not help. `reason` is ours (an HTTP status,
    /// the carrier's error code), never the carrier's text, which can hold the number.
    #[error("carrier refused the message (code {code:?}): {reason}")]
    Permanent { code: Option<u32>, reason: String },
}

/// The approval-code key. It comes from a secret that may still be on its way when the first
/// event after a cold start arrives (the read runs off the init path): only the operations
/// that hash, seal or open a code wait for it, and a key that cannot be read is a transient
/// failure (`StoreError::Unavailable`), never a code checked or sent without it.
#[async_trait]
pub trait CodeKey: Send + Sync {
    async fn key(&self) -> Result<Arc<CodeHasher>, StoreError>;

    /// After a code that did not verify or open with `stale` (what `key` gave): the key
    /// read again, if it may have been rotated since (bounded by the adapter); `None` when
    /// nothing newer can be had.
    async fn reread(&self, _stale: &Arc<CodeHasher>) -> Option<Arc<CodeHasher>> {
        None
    }
}

#[async_trait]
impl CodeKey for CodeHasher {
    async fn key(&self) -> Result<Arc<CodeHasher>, StoreError> {
        Ok(Arc::new(self.clone()))
    }
}

#[async_trait]
pub trait Carrier: Send + Sync {
    async fn send(&self, message: &CarrierSend) -> Result<CarrierReceipt, CarrierError>;
    /// The text the carrier took for `message` since `since` (same from, to and body), if
    /// it has one: how an unknown outcome is resolved before anything is sent again.
    async fn find_sent(
        &self,
        message: &CarrierSend,
        since: DateTime<Utc>,
    ) -> Result<Option<CarrierReceipt>, CarrierError>;
}

/// A text the person sent to the dealer's number, kept for the conversation view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundText {
    /// Time-ordered (ULID), sorted with the outbound messages' ids.
    pub id: String,
    pub dealer_id: DealerId,
    /// The person.
    pub from: PhoneNumber,
    /// The dealer's texting number.
    pub to: PhoneNumber,
    pub body: String,
    pub carrier_message_id: String,
    pub received_at: DateTime<Utc>,
    /// What the service read it as (`opt-out`, `agree`, `help`, ..., `other`).
    pub read_as: String,
    /// The language it was answered in (`en`, `es`, `fr`).
    pub language: String,
}

/// One line of a conversation, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationEntry {
    Outbound(Box<Message>),
    Inbound(InboundText),
}

impl ConversationEntry {
    pub fn id(&self) -> &str {
        match self {
            ConversationEntry::Outbound(m) => m.id.as_str(),
            ConversationEntry::Inbound(t) => &t.id,
        }
    }
}

/// One page of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConversationPage {
    pub entries: Vec<ConversationEntry>,
    pub next_cursor: Option<String>,
}

/// The texts between a dealer and a number, both ways (Query GSI1 `DEALER#d#PHONE#p`,
/// newest first).
#[async_trait]
pub trait Conversations: Send + Sync {
    /// At most `limit` (1 or more) entries older than the cursor's, newest first. A cursor
    /// that is not from this conversation is `Corrupt` with key `cursor`.
    async fn conversation(
        &self,
        dealer: &DealerId,
        phone: &PhoneNumber,
        limit: u32,
        cursor: Option<&str>,
    ) -> StoreResult<ConversationPage>;
}

/// The consent change a reply made: written in the transaction of the change itself
/// ([`ConsentWriter::append`] with `acted`), so a redelivered reply finds what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActedMark {
    pub categories: Vec<Category>,
}

#[async_trait]
pub trait InboundLog: Send + Sync {
    /// Keeps an inbound text for the conversation view, once per carrier message id (a
    /// retried webhook keeps the first copy).
    async fn record_text(&self, text: &InboundText) -> StoreResult<()>;
    /// Whether every effect of this carrier message is done (a strongly consistent read).
    async fn finished(&self, carrier_message_id: &str) -> StoreResult<bool>;
    /// Marks a carrier message as acted on in full; kept as long as the ledger (never
    /// expires), so a replay years later is still a duplicate.
    async fn finish(&self, carrier_message_id: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// The consent change this carrier message made, if it made one.
    async fn acted(&self, carrier_message_id: &str) -> StoreResult<Option<ActedMark>>;
    /// Claims a pay request for the CONFIRM with this carrier message id (a conditional
    /// write, never expiring): true when this CONFIRM holds the claim (taken now or by an
    /// earlier delivery of the same CONFIRM), false when another CONFIRM took it.
    async fn claim_confirmation(
        &self,
        request: &MessageId,
        carrier_message_id: &str,
    ) -> StoreResult<bool>;
}

/// Where a signed carrier webhook is kept until it is acted on: durable storage first, so
/// the webhook is answered 200 at once (the carrier does not retry a 5xx) and a consumer
/// acts with retries and a dead-letter queue.
#[async_trait]
pub trait WebhookInbox: Send + Sync {
    async fn store(&self, webhook: &crate::webhook::CarrierWebhook) -> StoreResult<()>;
}

/// A texting queue (worklist) for staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkQueueName {
    Replies,
    FailedSends,
    Authorizations,
    /// Automated sends the rules refused (no consent, unknown contact, bad variables).
    AutomationFailures,
}

/// An item on a texting queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkItem {
    pub id: String,
    pub dealer_id: DealerId,
    pub queue: WorkQueueName,
    /// reply-needs-attention, send-failed, authorization-pending-too-long, ...
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<DealId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub created_at: DateTime<Utc>,
    pub status: WorkItemStatus,
    /// Who works it and how it ended.
    #[serde(default, flatten)]
    pub handling: Handling,
}

/// Where a work item is in its life: open -> claimed (by one user) -> resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkItemStatus {
    Open,
    Claimed,
    Resolved,
}

impl WorkItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkItemStatus::Open => "open",
            WorkItemStatus::Claimed => "claimed",
            WorkItemStatus::Resolved => "resolved",
        }
    }
}

impl WorkQueueName {
    pub const ALL: [WorkQueueName; 4] = [
        WorkQueueName::Replies,
        WorkQueueName::FailedSends,
        WorkQueueName::Authorizations,
        WorkQueueName::AutomationFailures,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkQueueName::Replies => "replies",
            WorkQueueName::FailedSends => "failed-sends",
            WorkQueueName::Authorizations => "authorizations",
            WorkQueueName::AutomationFailures => "automation-failures",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.as_str() == s)
    }
}

/// Claim and resolution details of a work item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<crate::ids::StaffUserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<crate::ids::StaffUserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A worklist query: filters, order and a cursor (opaque to callers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemQuery {
    pub status: Option<WorkItemStatus>,
    pub contact_id: Option<ContactId>,
    pub account_id: Option<AccountId>,
    pub newest_first: bool,
    pub limit: u32,
    pub cursor: Option<String>,
}

/// One page of a worklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPage {
    pub items: Vec<WorkItem>,
    /// Pass back to get the next page; None at the end.
    pub next_cursor: Option<String>,
}

#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Adds an item; `Conflict` when an item with its id exists (it is kept as it is).
    async fn add_item(&self, item: &WorkItem) -> StoreResult<()>;
}

/// Reading and working the texting queues (the portal's worklists).
#[async_trait]
pub trait WorkQueueDesk: Send + Sync {
    async fn item(
        &self,
        dealer: &DealerId,
        queue: WorkQueueName,
        id: &str,
    ) -> StoreResult<Option<WorkItem>>;
    async fn items(
        &self,
        dealer: &DealerId,
        queue: WorkQueueName,
        query: &ItemQuery,
    ) -> StoreResult<ItemPage>;
    async fn open_count(&self, dealer: &DealerId, queue: WorkQueueName) -> StoreResult<u64>;
    /// Replaces the item if its stored status is still `expected` (`Conflict` otherwise).
    async fn save_item(&self, item: &WorkItem, expected: WorkItemStatus) -> StoreResult<()>;
}
