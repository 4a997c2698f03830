//! Fixed-window rate limits.

use super::*;

#[async_trait]
impl RateLimiter for InMemoryStore {
    async fn acquire(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        at: DateTime<Utc>,
    ) -> StoreResult<RateDecision> {
        let secs = window.as_secs().max(1) as i64;
        let bucket = at.timestamp().div_euclid(secs);
        let mut s = self.lock();
        let count = s.rates.entry((key.to_owned(), bucket)).or_insert(0);
        if *count >= limit {
            let retry = (bucket + 1) * secs - at.timestamp();
            return Ok(RateDecision::Limited {
                retry_after: Duration::from_secs(retry.max(1) as u64),
            });
        }
        *count += 1;
        Ok(RateDecision::Allowed)
    }
}
