//! The carrier's limits: what may hold a claimed text back just before the carrier
//! call, and why a text waits in the queue instead of going now.

use chrono::{DateTime, Utc};

use crate::brand;
use crate::error::StoreError;
use crate::message::{OutboundEnvelope, StatusReason};
use crate::phone::PhoneNumber;
use crate::ports::{RateDecision, RateLimiter};
use crate::sms;

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

/// The carrier's two limits, as the operator sets them: texts a second from one number
/// (the number's throughput) and segments a day from one dealer's brand (T-Mobile's
/// 10DLC cap, counted on the carrier's day). `None` is no limit.
pub struct CarrierLimits<'a> {
    pub send_rate: Option<u32>,
    pub brand_daily_segments: Option<u32>,
    pub limits: &'a dyn RateLimiter,
}

/// The rate counter of a texting number.
fn rate_key(from: &PhoneNumber) -> String {
    format!("SEND#{from}")
}

/// The number's second first, then the brand's day. Only texts under consent count
/// against the brand's day (codes and required answers go regardless). The count runs
/// ahead of what the carrier took (a call that then failed), never behind.
#[async_trait::async_trait]
impl SendGate for CarrierLimits<'_> {
    async fn admit(
        &self,
        envelope: &OutboundEnvelope,
        now: DateTime<Utc>,
    ) -> Result<Admission, StoreError> {
        let Some(snap) = &envelope.delivery else {
            return Ok(Admission::Go);
        };
        if let Some(rate) = self.send_rate {
            let second = std::time::Duration::from_secs(1);
            if let RateDecision::Limited { .. } = self
                .limits
                .acquire(&rate_key(&snap.from), rate, second, now)
                .await?
            {
                return Ok(Admission::Wait);
            }
        }
        let Some(cap) = self
            .brand_daily_segments
            .filter(|_| snap.kind.is_under_consent())
        else {
            return Ok(Admission::Go);
        };
        let (clock, next_day) = brand::carrier_day(now);
        let segments = sms::segments(&snap.body).max(1);
        let key = brand::brand_key(&envelope.dealer_id);
        Ok(
            match self
                .limits
                .acquire_units(&key, segments, cap, brand::CARRIER_DAY, clock)
                .await?
            {
                RateDecision::Allowed => Admission::Go,
                RateDecision::Limited { .. } => Admission::HoldUntil {
                    until: next_day,
                    reason: StatusReason::BrandDailyCap,
                },
            },
        )
    }
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
