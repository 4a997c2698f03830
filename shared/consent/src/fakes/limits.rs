//! Fixed-window rate limits.

use super::*;

#[async_trait]
impl RateLimiter for InMemoryStore {
    async fn acquire_units(
        &self,
        key: &str,
        units: u32,
        limit: u32,
        window: Duration,
        at: DateTime<Utc>,
    ) -> StoreResult<RateDecision> {
        let secs = window.as_secs().max(1) as i64;
        let bucket = at.timestamp().div_euclid(secs);
        let mut s = self.lock();
        let count = s.rates.entry((key.to_owned(), bucket)).or_insert(0);
        if units > limit || *count > limit - units {
            return Ok(RateDecision::Limited {
                retry_after: crate::ports::window_left(window, at),
            });
        }
        *count += units;
        Ok(RateDecision::Allowed)
    }
}
