//! Delivery: the moment of sending. Re-check, claim, call the carrier once, record.
//!
//! One room each: the claim ([`claim`]), the carrier call ([`send`]), the carrier's
//! limits ([`gate`]), what became of a text ([`outcome`]) and texts stuck mid-delivery
//! ([`stale`]). Everything public is re-exported here, so callers name
//! `service::delivery::...` whichever room holds it.

pub mod claim;
pub mod gate;
pub mod outcome;
pub mod request;
pub mod send;
pub mod stale;

pub use gate::{Admission, SendGate, WaitReason};
pub use outcome::hold_until;
pub use request::{status_callback, LIST_CLOCK_SKEW};
pub use send::{deliver_envelope, LIMITS_RETRY, MAX_CARRIER_ATTEMPTS};
pub use stale::{dead_lettered, STALE_CLAIM};

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};

use crate::message::MessageStatus;
use crate::ports::{
    Carrier, CodeKey, ConsentReader, ConsentWriter, DealerStore, MessageStore, PendingStore,
    WorkQueue,
};

/// What delivering one record touches.
pub struct DeliverPorts<'a> {
    /// The dealer's texting number now (a text queued before it changed goes from the
    /// new one).
    pub dealers: &'a dyn DealerStore,
    pub consent: &'a dyn ConsentReader,
    pub consent_writer: &'a dyn ConsentWriter,
    pub messages: &'a dyn MessageStore,
    pub carrier: &'a dyn Carrier,
    pub work: &'a dyn WorkQueue,
    /// Approval requests whose code text failed are voided here.
    pub pending: &'a dyn PendingStore,
    /// Opens the sealed code of an approval code text (the code key).
    pub codes: &'a dyn CodeKey,
    /// The carrier's limits, asked after the claim (none: no limits).
    pub gate: Option<&'a dyn SendGate>,
}

/// What happened to one queued record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliverOutcome {
    Sent {
        carrier_message_id: String,
    },
    /// Consent was gone at the moment of sending.
    Suppressed {
        reason: String,
    },
    /// Held back to the time index until `until`: quiet hours, a frequency cap, the
    /// brand's daily cap (`reason`, as the message's status reason).
    Deferred {
        until: DateTime<Utc>,
        reason: String,
    },
    /// Nothing to do (already handled, canceled, or unknown).
    Skipped {
        status: Option<MessageStatus>,
    },
    /// Try the record again after this long (the SQS record is reported failed).
    RetryLater {
        after: StdDuration,
    },
    /// Back to `queued`, to go in a few seconds: the consumer puts a new, delayed record
    /// on the queue (waiting is never a failed receive, so it never dead-letters).
    WaitInQueue {
        why: WaitReason,
    },
    Failed {
        reason: String,
    },
}

impl DeliverOutcome {
    /// What became of the text, in a word the dashboard counts by: sent, suppressed,
    /// deferred, failed, skipped, retry or waiting.
    pub fn kind(&self) -> &'static str {
        match self {
            DeliverOutcome::Sent { .. } => "sent",
            DeliverOutcome::Suppressed { .. } => "suppressed",
            DeliverOutcome::Deferred { .. } => "deferred",
            DeliverOutcome::Skipped { .. } => "skipped",
            DeliverOutcome::RetryLater { .. } => "retry",
            DeliverOutcome::WaitInQueue { .. } => "waiting",
            DeliverOutcome::Failed { .. } => "failed",
        }
    }

    /// Why, for the outcomes that have a reason (`opted-out`, `quiet-hours`, ...).
    pub fn reason(&self) -> Option<&str> {
        match self {
            DeliverOutcome::Suppressed { reason }
            | DeliverOutcome::Deferred { reason, .. }
            | DeliverOutcome::Failed { reason } => Some(reason),
            _ => None,
        }
    }
}
