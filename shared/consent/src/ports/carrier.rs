//! The carrier port: handing a text to the carrier, how a carrier call fails, and
//! finding a text the carrier may already have taken.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ids::MessageId;
use crate::phone::PhoneNumber;

/// What to hand the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierSend {
    /// Ours: a carrier that keeps context with a text (End User Messaging) reports it back
    /// with every event of the text.
    pub message_id: MessageId,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub body: String,
    /// Marketing: carriers that price or route by message type (End User Messaging's
    /// `PROMOTIONAL`) are told so; codes, account and service texts are transactional.
    pub promotional: bool,
    /// Where the carrier reports delivery status (a carrier that takes one per text).
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

/// A carrier's own list of the people who opted out of a number. End User Messaging keeps
/// one and refuses to text anyone on it; Twilio lifts its block itself when the person
/// texts START. Our ledger and such a list agree both ways: a STOP the carrier took is on
/// the ledger (the person's text, or the carrier's refusal), and the list is lifted only
/// when the person said START, never because staff authorized again.
#[async_trait]
pub trait CarrierOptOuts: Send + Sync {
    /// The person said START to `number`: take them off its carrier's list (nothing on it
    /// is done already).
    async fn lift(&self, number: &PhoneNumber, person: &PhoneNumber) -> Result<(), CarrierError>;
}
