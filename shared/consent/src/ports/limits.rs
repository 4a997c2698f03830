//! The rate-limit port: units taken from fixed windows counted from the epoch.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreResult;

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
