//! Fixed-window rate limits (code texts per number and per dealer, texts per number per
//! second, segments per brand per day).

use super::*;

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn acquire_units(
        &self,
        key_name: &str,
        units: u32,
        limit: u32,
        window: Duration,
        at: DateTime<Utc>,
    ) -> StoreResult<RateDecision> {
        let secs = window.as_secs().max(1) as i64;
        let bucket = at.timestamp().div_euclid(secs);
        if units > limit {
            return Ok(RateDecision::Limited {
                retry_after: window_left(window, at),
            });
        }
        // One conditional ADD: the count after it never passes `limit`, however many ask at once.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("RATE#{key_name}"), bucket.to_string())))
            .update_expression("ADD #c :units SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#c) OR #c <= :room")
            .expression_attribute_names("#c", "count")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":units", n(units))
            .expression_attribute_values(":room", n(limit - units))
            .expression_attribute_values(":ttl", n((bucket + 2) * secs))
            .send()
            .await;
        match result {
            Ok(_) => Ok(RateDecision::Allowed),
            Err(e) if is_conditional(&e) => Ok(RateDecision::Limited {
                retry_after: window_left(window, at),
            }),
            Err(e) => Err(StoreError::unavailable("DynamoDB UpdateItem (rate)", e)),
        }
    }
}
