//! The carrier's limits: what may hold a claimed text back just before the carrier
//! call, and why a text waits in the queue instead of going now.

use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::message::{OutboundEnvelope, StatusReason};

/// What may hold a claimed text back just before the carrier call: the carrier's limits
/// (a number's sending rate, a brand's daily segments). It is asked only by a delivery
/// whose claim won, so a duplicate record or a redelivery never spends a limit.
#[async_trait::async_trait]
pub trait SendGate: Send + Sync {
    async fn admit(
        &self,
        envelope: &OutboundEnvelope,
        now: DateTime<Utc>,
    ) -> Result<Admission, StoreError>;
}

/// A gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// Over the number's sending rate: wait in the queue a few seconds.
    Wait,
    /// Over a limit that lasts: back on the time index until then.
    HoldUntil {
        until: DateTime<Utc>,
        reason: StatusReason,
    },
}

/// Why a text waits in the outbound queue (a new, delayed record) instead of going now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// Its number's sending rate is spent for this second.
    NumberRate,
    /// The carrier answered 429: too many requests at once.
    CarrierBusy,
}
