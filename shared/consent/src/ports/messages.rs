//! Message ports: creating messages with their idempotency keys, reading them, the
//! delivery claim and its result around the carrier call, cap books, and the due index
//! dispatch reads.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::category::Category;
use crate::error::StoreResult;
use crate::ids::{DealerId, MessageId};
use crate::message::{Message, MessageStatus, StatusReason};
use crate::phone::PhoneNumber;

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
    pub reason: Option<StatusReason>,
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
