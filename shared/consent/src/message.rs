//! Outbound messages and their life cycle.
//!
//! ```text
//! scheduled ──dispatch──▶ queued ──deliver claims──▶ sending ──▶ sent ──callback──▶ delivered
//!     │  ╲                  │                           │
//!     │   deferred (quiet)  └─▶ suppressed (consent)    └─▶ failed (permanent) / queued again (retryable)
//!     └─▶ canceled (staff, until queued)
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::category::Category;
use crate::ids::{AccountId, ContactId, DealId, DealerId, MessageId, StaffUserId};
use crate::ledger::Decision;
use crate::phone::PhoneNumber;
use crate::sms::{self, Encoding};

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

/// Why a message is in its status: kept as its status reason and in its history, in
/// the words below (the stored form; a message stores the string, so what was stored
/// before this type reads back the same). Reasons from outside (a carrier's refusal, a
/// rule's message, a gate's limit) are kept as they come: [`StatusReason::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum StatusReason {
    /// `quiet-hours`: waits for the recipient's allowed hours.
    QuietHours,
    /// `frequency-cap`: the recipient's state caps the category per 24 hours and the cap
    /// is reached.
    FrequencyCap,
    /// `queue-unavailable`: the queue refused it at acceptance; dispatch queues it.
    QueueUnavailable,
    /// `requeued: not picked up`: queued long ago and put on the queue again.
    NotPickedUp,
    /// `canceled by staff`.
    CanceledByStaff,
    /// `not-authorized`: no consent for the category ever given.
    NotAuthorized,
    /// `revoked`: consent for the category taken back by staff in the portal.
    Revoked,
    /// `revoked-by-reply`: the person replied STOP.
    RevokedByReply,
    /// `revoked-by-carrier`: the carrier reported the number blocks the dealer.
    RevokedByCarrier,
    /// `opted-out`: the person opted out of the dealer's number.
    OptedOut,
    /// `consent-required: <category>`: an automated send the rules refused for consent.
    ConsentRequired(Category),
    /// `contact-deleted`: the contact went before its text did.
    ContactDeleted,
    /// `number-changed`: the dealer's texting number changed and no number can take it.
    NumberChanged,
    /// `approval code unreadable`: the sealed code could not be opened.
    CodeUnreadable,
    /// `retrying: limits unreadable`: the carrier's limits could not be read.
    LimitsUnreadable,
    /// `waiting: the number's sending rate`.
    NumberRate,
    /// `waiting: carrier busy`: the carrier answered 429.
    CarrierBusy,
    /// `retrying: <reason>`: a retryable carrier failure, tried again.
    CarrierRetrying(String),
    /// `carrier temporarily unavailable: <reason>`: retryable failures, too many.
    CarrierUnavailable(String),
    /// `carrier-opt-out (<code>)`: the carrier refused the text, the person blocks us.
    CarrierOptOut(u32),
    /// `carrier error <code>`: an error code on a carrier status callback.
    CarrierError(u32),
    /// `delivery interrupted; the approval code is unreadable`.
    InterruptedCodeUnreadable,
    /// `delivery interrupted; the carrier may not have it`.
    InterruptedCarrierUnsure,
    /// `resuming: the carrier does not have it`: a stale claim released.
    CarrierLacksIt,
    /// `not delivered after repeated attempts (dead-lettered)`.
    DeadLettered,
    /// Any other words, kept as given.
    Other(String),
}

impl StatusReason {
    /// The stored words of a reason without a value, `None` for the others.
    fn fixed(&self) -> Option<&'static str> {
        Some(match self {
            StatusReason::QuietHours => "quiet-hours",
            StatusReason::FrequencyCap => "frequency-cap",
            StatusReason::QueueUnavailable => "queue-unavailable",
            StatusReason::NotPickedUp => "requeued: not picked up",
            StatusReason::CanceledByStaff => "canceled by staff",
            StatusReason::NotAuthorized => "not-authorized",
            StatusReason::Revoked => "revoked",
            StatusReason::RevokedByReply => "revoked-by-reply",
            StatusReason::RevokedByCarrier => "revoked-by-carrier",
            StatusReason::OptedOut => "opted-out",
            StatusReason::ContactDeleted => "contact-deleted",
            StatusReason::NumberChanged => "number-changed",
            StatusReason::CodeUnreadable => "approval code unreadable",
            StatusReason::LimitsUnreadable => "retrying: limits unreadable",
            StatusReason::NumberRate => "waiting: the number's sending rate",
            StatusReason::CarrierBusy => "waiting: carrier busy",
            StatusReason::InterruptedCodeUnreadable => {
                "delivery interrupted; the approval code is unreadable"
            }
            StatusReason::InterruptedCarrierUnsure => {
                "delivery interrupted; the carrier may not have it"
            }
            StatusReason::CarrierLacksIt => "resuming: the carrier does not have it",
            StatusReason::DeadLettered => "not delivered after repeated attempts (dead-lettered)",
            StatusReason::ConsentRequired(_)
            | StatusReason::CarrierRetrying(_)
            | StatusReason::CarrierUnavailable(_)
            | StatusReason::CarrierOptOut(_)
            | StatusReason::CarrierError(_)
            | StatusReason::Other(_) => return None,
        })
    }

    /// Every reason without a value (to read stored words back).
    const FIXED: [StatusReason; 20] = [
        StatusReason::QuietHours,
        StatusReason::FrequencyCap,
        StatusReason::QueueUnavailable,
        StatusReason::NotPickedUp,
        StatusReason::CanceledByStaff,
        StatusReason::NotAuthorized,
        StatusReason::Revoked,
        StatusReason::RevokedByReply,
        StatusReason::RevokedByCarrier,
        StatusReason::OptedOut,
        StatusReason::ContactDeleted,
        StatusReason::NumberChanged,
        StatusReason::CodeUnreadable,
        StatusReason::LimitsUnreadable,
        StatusReason::NumberRate,
        StatusReason::CarrierBusy,
        StatusReason::InterruptedCodeUnreadable,
        StatusReason::InterruptedCarrierUnsure,
        StatusReason::CarrierLacksIt,
        StatusReason::DeadLettered,
    ];

    /// The reason stored words stand for: one of ours when they are exactly its words,
    /// else [`StatusReason::Other`]. Writing the result gives back the same words.
    pub fn parse(s: &str) -> StatusReason {
        if let Some(fixed) = Self::FIXED.iter().find(|r| r.fixed() == Some(s)) {
            return fixed.clone();
        }
        let valued = if let Some(c) = s.strip_prefix("consent-required: ") {
            c.parse().ok().map(StatusReason::ConsentRequired)
        } else if let Some(r) = s.strip_prefix("retrying: ") {
            Some(StatusReason::CarrierRetrying(r.to_owned()))
        } else if let Some(r) = s.strip_prefix("carrier temporarily unavailable: ") {
            Some(StatusReason::CarrierUnavailable(r.to_owned()))
        } else if let Some(code) = s
            .strip_prefix("carrier-opt-out (")
            .and_then(|r| r.strip_suffix(')'))
        {
            code.parse().ok().map(StatusReason::CarrierOptOut)
        } else if let Some(code) = s.strip_prefix("carrier error ") {
            code.parse().ok().map(StatusReason::CarrierError)
        } else {
            None
        };
        // Only words it writes the same way ("carrier error 07" stays as it came).
        match valued {
            Some(r) if r.to_string() == s => r,
            _ => StatusReason::Other(s.to_owned()),
        }
    }
}

impl std::fmt::Display for StatusReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(words) = self.fixed() {
            return f.write_str(words);
        }
        match self {
            StatusReason::ConsentRequired(c) => write!(f, "consent-required: {c}"),
            StatusReason::CarrierRetrying(r) => write!(f, "retrying: {r}"),
            StatusReason::CarrierUnavailable(r) => {
                write!(f, "carrier temporarily unavailable: {r}")
            }
            StatusReason::CarrierOptOut(code) => write!(f, "carrier-opt-out ({code})"),
            StatusReason::CarrierError(code) => write!(f, "carrier error {code}"),
            StatusReason::Other(words) => f.write_str(words),
            _ => Ok(()),
        }
    }
}

impl std::str::FromStr for StatusReason {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(StatusReason::parse(s))
    }
}

impl From<String> for StatusReason {
    fn from(s: String) -> Self {
        StatusReason::parse(&s)
    }
}

impl From<&str> for StatusReason {
    fn from(s: &str) -> Self {
        StatusReason::parse(s)
    }
}

impl From<StatusReason> for String {
    fn from(r: StatusReason) -> Self {
        r.to_string()
    }
}

/// Why consent refuses a text, in the words [`Decision::reason`] gives it.
impl From<Decision> for StatusReason {
    fn from(d: Decision) -> Self {
        StatusReason::parse(d.reason())
    }
}

/// One status change, kept on the message as its visible history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: MessageStatus,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_time_zone: Option<String>,
    pub created_at: DateTime<Utc>,
    /// What staff asked for (None = now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
    /// When it is due to go (after any quiet-hours deferral).
    pub send_at: DateTime<Utc>,
    pub status: MessageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
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
        let reason = reason.map(String::from);
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
    pub fn transition(&mut self, status: MessageStatus, at: DateTime<Utc>, reason: Option<String>) {
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_time_zone: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::ConsentEvent;

    /// Every reason with the words it is stored as (the words stored before the type).
    fn every_reason() -> Vec<(StatusReason, &'static str)> {
        vec![
            (StatusReason::QuietHours, "quiet-hours"),
            (StatusReason::FrequencyCap, "frequency-cap"),
            (StatusReason::QueueUnavailable, "queue-unavailable"),
            (StatusReason::NotPickedUp, "requeued: not picked up"),
            (StatusReason::CanceledByStaff, "canceled by staff"),
            (StatusReason::NotAuthorized, "not-authorized"),
            (StatusReason::Revoked, "revoked"),
            (StatusReason::RevokedByReply, "revoked-by-reply"),
            (StatusReason::RevokedByCarrier, "revoked-by-carrier"),
            (StatusReason::OptedOut, "opted-out"),
            (
                StatusReason::ConsentRequired(Category::Marketing),
                "consent-required: marketing",
            ),
            (StatusReason::ContactDeleted, "contact-deleted"),
            (StatusReason::NumberChanged, "number-changed"),
            (StatusReason::CodeUnreadable, "approval code unreadable"),
            (
                StatusReason::LimitsUnreadable,
                "retrying: limits unreadable",
            ),
            (
                StatusReason::NumberRate,
                "waiting: the number's sending rate",
            ),
            (StatusReason::CarrierBusy, "waiting: carrier busy"),
            (
                StatusReason::CarrierRetrying("HTTP 500".into()),
                "retrying: HTTP 500",
            ),
            (
                StatusReason::CarrierUnavailable("HTTP 503".into()),
                "carrier temporarily unavailable: HTTP 503",
            ),
            (
                StatusReason::CarrierOptOut(21610),
                "carrier-opt-out (21610)",
            ),
            (StatusReason::CarrierError(30007), "carrier error 30007"),
            (
                StatusReason::InterruptedCodeUnreadable,
                "delivery interrupted; the approval code is unreadable",
            ),
            (
                StatusReason::InterruptedCarrierUnsure,
                "delivery interrupted; the carrier may not have it",
            ),
            (
                StatusReason::CarrierLacksIt,
                "resuming: the carrier does not have it",
            ),
            (
                StatusReason::DeadLettered,
                "not delivered after repeated attempts (dead-lettered)",
            ),
            (
                StatusReason::Other("brand-daily-cap".into()),
                "brand-daily-cap",
            ),
        ]
    }

    #[test]
    fn every_reason_is_written_as_it_was_stored_and_read_back_as_itself() {
        for (reason, words) in every_reason() {
            // GIVEN a reason WHEN written THEN its stored words
            assert_eq!(reason.to_string(), words);
            assert_eq!(String::from(reason.clone()), words);
            // WHEN the words are read back THEN the same reason
            assert_eq!(words.parse::<StatusReason>(), Ok(reason.clone()));
            // AND serialized, it is the bare string
            let json = serde_json::to_value(&reason).unwrap();
            assert_eq!(json, serde_json::Value::String(words.to_owned()));
            assert_eq!(
                serde_json::from_value::<StatusReason>(json).unwrap(),
                reason
            );
        }
    }

    #[test]
    fn every_fixed_reason_is_read_back() {
        for reason in StatusReason::FIXED {
            let words = reason.fixed().unwrap();
            assert_eq!(StatusReason::parse(words), reason);
        }
    }

    #[test]
    fn words_from_outside_are_kept_as_they_came() {
        for words in [
            "",
            "carrier refused the message (code Some(30007)): HTTP 400",
            "carrier error 07",
            "carrier error",
            "carrier-opt-out (x)",
            "consent-required: Marketing",
            "consent-required: weather",
            "unknown template \"x\"",
        ] {
            let reason = StatusReason::parse(words);
            assert_eq!(reason, StatusReason::Other(words.to_owned()), "{words}");
            assert_eq!(reason.to_string(), words);
        }
    }

    #[test]
    fn a_consent_refusal_is_written_in_the_decisions_words() {
        let since = DateTime::<Utc>::UNIX_EPOCH;
        for (decision, reason) in [
            (Decision::NeverAuthorized, StatusReason::NotAuthorized),
            (
                Decision::Revoked {
                    by: ConsentEvent::RevokedByReply,
                    since,
                },
                StatusReason::RevokedByReply,
            ),
            (
                Decision::Revoked {
                    by: ConsentEvent::RevokedByCarrier,
                    since,
                },
                StatusReason::RevokedByCarrier,
            ),
            (
                Decision::Revoked {
                    by: ConsentEvent::RevokedByPortal,
                    since,
                },
                StatusReason::Revoked,
            ),
        ] {
            assert_eq!(StatusReason::from(decision), reason);
            assert_eq!(reason.to_string(), decision.reason());
        }
    }
}
