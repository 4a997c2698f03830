//! Outbound messages and their life cycle.
//!
//! ```text
//! scheduled ──dispatch──▶ queued ──deliver claims──▶ sending ──▶ sent ──callback──▶ delivered
//!     │  ╲                  │                           │
//!     │   deferred (quiet   └─▶ suppressed (consent)    └─▶ failed (permanent) / queued again (retryable)
//!     │   hours, caps)
//!     └─▶ canceled (staff, until queued)
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::category::Category;
use crate::ids::{AccountId, ContactId, DealId, DealerId, MessageId, StaffUserId};
use crate::phone::PhoneNumber;
use crate::sms::{self, Encoding};

mod reason;

pub use reason::StatusReason;

/// A queued message not claimed by delivery within this long is queued again.
pub const REQUEUE_AFTER: chrono::Duration = chrono::Duration::minutes(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Scheduled,
    Deferred,
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
    Suppressed,
    Canceled,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Scheduled => "scheduled",
            MessageStatus::Deferred => "deferred",
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Failed => "failed",
            MessageStatus::Suppressed => "suppressed",
            MessageStatus::Canceled => "canceled",
        }
    }

    /// Handed to the carrier (or being handed): the person may have it.
    pub fn went_to_carrier(self) -> bool {
        matches!(
            self,
            MessageStatus::Sending | MessageStatus::Sent | MessageStatus::Delivered
        )
    }

    /// Waiting in the time index for dispatch.
    pub fn is_waiting(self) -> bool {
        matches!(self, MessageStatus::Scheduled | MessageStatus::Deferred)
    }

    /// Nothing more will happen to it (apart from carrier callbacks on sent).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageStatus::Delivered
                | MessageStatus::Failed
                | MessageStatus::Suppressed
                | MessageStatus::Canceled
        )
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message exists; decides which rules apply at delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageKind {
    /// A template text from staff or an automated task: consent and quiet hours apply.
    Template,
    /// Staff's own words (an answer to the person's reply): the same rules as a template.
    Text,
    /// The approval code text the person asked staff for: transactional, no consent yet.
    ApprovalCode,
    /// A required answer to the person's own message (STOP/HELP/Agree confirmations):
    /// sent even after a STOP, never marketing.
    Reply,
}

impl MessageKind {
    /// Texts staff or a task chose to send (a template or staff's own words): consent,
    /// opt-outs, quiet hours and caps apply. Codes and required answers are exempt.
    pub fn is_under_consent(self) -> bool {
        matches!(self, MessageKind::Template | MessageKind::Text)
    }
}

/// Who asked for the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Origin {
    Staff { user: StaffUserId },
    Automation { event: String, event_id: String },
    System,
}

/// One status change, kept on the message as its visible history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: MessageStatus,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<StatusReason>,
}

/// An outbound text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: MessageId,
    pub dealer_id: DealerId,
    pub kind: MessageKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    pub to: PhoneNumber,
    pub from: PhoneNumber,
    pub category: Category,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_version: Option<u32>,
    pub body: String,
    /// The template variables as given (kept with the message for history and PAY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<serde_json::Map<String, serde_json::Value>>,
    pub encoding: Encoding,
    pub segments: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub origin: Origin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<DealId>,
    /// The recipient's own IANA zone when the contact has one (quiet hours).
    #[serde(
        default,
        with = "crate::zone::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub recipient_time_zone: Option<crate::zone::Zone>,
    pub created_at: DateTime<Utc>,
    /// What staff asked for (None = now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
    /// When it is due to go (after any quiet-hours deferral).
    pub send_at: DateTime<Utc>,
    pub status: MessageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<StatusReason>,
    pub history: Vec<StatusChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_message_id: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    /// An approval code text's code, sealed (the body holds the mask), and the request
    /// it belongs to. Removed once the text has gone or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<SealedCode>,
}

/// What every new message is made of: who texts whom, what, and why it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub dealer_id: DealerId,
    pub kind: MessageKind,
    pub to: PhoneNumber,
    pub from: PhoneNumber,
    pub category: Category,
    pub body: String,
    pub origin: Origin,
}

/// The code of an approval code text, in the only form it is stored or queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedCode {
    /// `CodeHasher::seal` of the code for this message id.
    pub sealed: String,
    /// The authorization request it answers: void if the text fails or is suppressed.
    pub request_id: String,
    /// The request's send count when this code was made: a failed text voids the request
    /// only while it still holds this code (absent on texts made before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sends: Option<u32>,
}

impl Message {
    /// A message made at `now` under a new id, measured from its body, due at once, in
    /// `status` (with `reason`) from the start of its history. The rest (contact,
    /// template, schedule, ...) starts empty: the use case sets what it knows.
    pub fn new(
        parts: NewMessage,
        status: MessageStatus,
        reason: Option<StatusReason>,
        now: DateTime<Utc>,
    ) -> Message {
        let (encoding, segments) = sms::measure(&parts.body);
        Message {
            id: MessageId::generate(),
            dealer_id: parts.dealer_id,
            kind: parts.kind,
            contact_id: None,
            to: parts.to,
            from: parts.from,
            category: parts.category,
            template: None,
            template_version: None,
            body: parts.body,
            variables: None,
            encoding,
            segments,
            notes: None,
            origin: parts.origin,
            account_id: None,
            deal_id: None,
            recipient_time_zone: None,
            created_at: now,
            requested_at: None,
            send_at: now,
            status,
            status_reason: reason.clone(),
            history: vec![StatusChange {
                status,
                at: now,
                reason,
            }],
            carrier_message_id: None,
            attempts: 0,
            code: None,
        }
    }

    /// Records a status change (the store makes it conditional on the previous status).
    pub fn transition(
        &mut self,
        status: MessageStatus,
        at: DateTime<Utc>,
        reason: Option<StatusReason>,
    ) {
        self.status = status;
        self.status_reason = reason.clone();
        self.history.push(StatusChange { status, at, reason });
    }

    /// Where the message sits in the due-time index, if anywhere: a waiting message at
    /// its send time; a queued one at the moment it counts as lost (queued but never
    /// picked up, e.g. the queue send failed after the status was written), so dispatch
    /// puts it on the queue again. Delivery removes it from the index when it claims it.
    pub fn index_time(&self) -> Option<DateTime<Utc>> {
        match self.status {
            MessageStatus::Scheduled | MessageStatus::Deferred => Some(self.send_at),
            MessageStatus::Queued => {
                let queued_at = self
                    .history
                    .iter()
                    .rev()
                    .find(|h| h.status == MessageStatus::Queued)
                    .map(|h| h.at)
                    .unwrap_or(self.created_at);
                Some(queued_at + REQUEUE_AFTER)
            }
            _ => None,
        }
    }

    /// What delivery needs of it (and what its claim checks against the stored message).
    pub fn snapshot(&self) -> DeliverySnapshot {
        DeliverySnapshot {
            to: self.to.clone(),
            from: self.from.clone(),
            body: self.body.clone(),
            category: self.category,
            kind: self.kind,
            recipient_time_zone: self.recipient_time_zone.clone(),
            contact_id: self.contact_id.clone(),
            account_id: self.account_id.clone(),
            deal_id: self.deal_id.clone(),
            code: self.code.clone(),
        }
    }

    /// Does the stored message say what a queue envelope claims it says? Delivery acts
    /// only on what is stored: a queue record cannot change who is texted, what, or make
    /// a text consent-exempt.
    pub fn agrees_with(&self, dealer: &DealerId, snap: &DeliverySnapshot) -> bool {
        &self.dealer_id == dealer
            && self.kind == snap.kind
            && self.to == snap.to
            && self.from == snap.from
            && self.body == snap.body
            && self.category == snap.category
            && self.code == snap.code
    }

    /// Is consent needed for this message at delivery?
    pub fn needs_consent(&self) -> bool {
        self.kind.is_under_consent()
    }

    /// Do quiet hours apply? Answers to the person's own message and codes they are
    /// waiting for go at once.
    pub fn honours_quiet_hours(&self) -> bool {
        self.kind.is_under_consent()
    }
}

/// What travels on the outbound queue: the message id in an envelope, with what the
/// carrier call needs (so delivery claims and re-checks consent in one conditional
/// write instead of reading the message first). A queued message no longer changes,
/// so the copy is exact; the queue is encrypted at rest like the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundEnvelope {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    pub time: DateTime<Utc>,
    pub dealer_id: DealerId,
    pub message_id: MessageId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySnapshot>,
    /// How many times it went back to the queue to wait for its number's sending rate.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rate_waits: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The fields of a queued message that delivery needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliverySnapshot {
    pub to: PhoneNumber,
    pub from: PhoneNumber,
    pub body: String,
    pub category: Category,
    pub kind: MessageKind,
    #[serde(
        default,
        with = "crate::zone::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub recipient_time_zone: Option<crate::zone::Zone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<DealId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<SealedCode>,
}

impl OutboundEnvelope {
    pub const KIND: &'static str = "message.queued";

    /// An envelope with only the id (delivery reads the message).
    pub fn new(dealer_id: DealerId, message_id: MessageId, time: DateTime<Utc>) -> Self {
        Self {
            id: crate::ids::new_ulid(),
            kind: Self::KIND.to_owned(),
            version: 1,
            time,
            dealer_id,
            message_id,
            delivery: None,
            rate_waits: 0,
        }
    }

    /// The envelope for a queued message, carrying its delivery snapshot.
    pub fn for_message(m: &Message, time: DateTime<Utc>) -> Self {
        Self {
            version: 2,
            delivery: Some(m.snapshot()),
            ..Self::new(m.dealer_id.clone(), m.id.clone(), time)
        }
    }
}

/// A queue send request: the envelope and how long SQS should hold it (0..=900 s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub envelope: OutboundEnvelope,
    pub delay_seconds: u32,
}

/// A stable fingerprint of a request body (idempotency: same key, different body).
pub fn request_fingerprint(bytes: &[u8]) -> String {
    use sha2::Digest;
    crate::approval::hex(&sha2::Sha256::digest(bytes))
}

/// Longest `Idempotency-Key` a caller may send.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// What makes a send idempotent: the caller's key and the fingerprint of the request it
/// came with, read once where the request comes in. The same key with the same request
/// gets the first answer; with another request it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    key: String,
    fingerprint: String,
}

/// A key that is not 1 to [`MAX_IDEMPOTENCY_KEY`] visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters")]
pub struct BadIdempotencyKey;

impl Idempotency {
    /// The caller's `key` (surrounding spaces dropped) for the request whose body is `request`.
    pub fn new(key: &str, request: &[u8]) -> Result<Self, BadIdempotencyKey> {
        let key = key.trim();
        if key.is_empty()
            || key.len() > MAX_IDEMPOTENCY_KEY
            || !key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(BadIdempotencyKey);
        }
        Ok(Self {
            key: key.to_owned(),
            fingerprint: request_fingerprint(request),
        })
    }

    /// An automated send's: the key it derives from its event names the request too (one
    /// text per event and dealer, whatever the event carried).
    pub fn of_event(key: String) -> Self {
        let fingerprint = request_fingerprint(key.as_bytes());
        Self { key, fingerprint }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// Longest idempotency key a DMS event may carry.
pub const MAX_EVENT_KEY: usize = 200;

/// A DMS event's own idempotency key (`idempotencyKey` in its detail): the id of the
/// business event, the same on every retry of it, 1 to [`MAX_EVENT_KEY`] printable ASCII
/// characters. Read once where the event comes in; automated sends de-duplicate on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKey(String);

/// An event key that is not 1 to [`MAX_EVENT_KEY`] printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("idempotencyKey: 1 to {MAX_EVENT_KEY} printable ASCII characters")]
pub struct BadEventKey;

impl EventKey {
    pub fn parse(key: &str) -> Result<Self, BadEventKey> {
        if (1..=MAX_EVENT_KEY).contains(&key.len())
            && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        {
            Ok(Self(key.to_owned()))
        } else {
            Err(BadEventKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The idempotency of the automated send this event makes: one text per event and
    /// dealer.
    pub fn idempotency(&self) -> Idempotency {
        Idempotency::of_event(format!("event:{}", self.0))
    }
}

impl<'de> Deserialize<'de> for EventKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        EventKey::parse(&key).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::{BadEventKey, BadIdempotencyKey, EventKey, Idempotency, MAX_IDEMPOTENCY_KEY};

    #[test]
    fn an_event_key_is_read_once_and_names_one_send() {
        let key = EventKey::parse("payments:autopay attempt 88412").unwrap();
        assert_eq!(
            key.idempotency(),
            EventKey::parse("payments:autopay attempt 88412")
                .unwrap()
                .idempotency()
        );
        assert_eq!(
            key.idempotency().key(),
            "event:payments:autopay attempt 88412"
        );
        for bad in ["", "tab\there", "caf\u{e9}"] {
            assert_eq!(EventKey::parse(bad), Err(BadEventKey), "{bad:?}");
        }
        assert!(EventKey::parse(&"k".repeat(200)).is_ok());
        assert_eq!(EventKey::parse(&"k".repeat(201)), Err(BadEventKey));
        let refused = serde_json::from_str::<EventKey>("\"\"").unwrap_err();
        assert!(
            refused.to_string().contains("idempotencyKey: 1 to 200"),
            "{refused}"
        );
    }

    #[test]
    fn an_idempotency_key_is_read_once_with_its_requests_fingerprint() {
        let first = Idempotency::new("  order-17  ", br#"{"a":1}"#).unwrap();
        assert_eq!(first.key(), "order-17");
        // The same key with the same request is the same pair; with another, not.
        assert_eq!(
            Idempotency::new("order-17", br#"{"a":1}"#),
            Ok(first.clone())
        );
        let other = Idempotency::new("order-17", br#"{"a":2}"#).unwrap();
        assert_eq!(other.key(), first.key());
        assert_ne!(other.fingerprint(), first.fingerprint());
        for bad in [
            "",
            "   ",
            "two words",
            "caf\u{e9}",
            &"k".repeat(MAX_IDEMPOTENCY_KEY + 1),
        ] {
            assert_eq!(
                Idempotency::new(bad, b"{}"),
                Err(BadIdempotencyKey),
                "{bad:?}"
            );
        }
        assert!(Idempotency::new(&"k".repeat(MAX_IDEMPOTENCY_KEY), b"{}").is_ok());
    }
}
