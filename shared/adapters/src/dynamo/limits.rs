//! Fixed-window rate limits (code texts per number and per dealer).

use super::*;

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn acquire(
        &self,
        key_name: &str,
        limit: u32,
        window: Duration,
        at: DateTime<Utc>,
    ) -> StoreResult<RateDecision> {
        let secs = window.as_secs().max(1) as i64;
        let bucket = at.timestamp().div_euclid(secs);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("RATE#{key_name}"), bucket.to_string())))
            .update_expression("ADD #c :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#c) OR #c < :limit")
            .expression_attribute_names("#c", "count")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":ttl", n((bucket + 2) * secs))
            .send()
            .await;
        match result {
            Ok(_) => Ok(RateDecision::Allowed),
            Err(e) if is_conditional(&e) => Ok(RateDecision::Limited {
                retry_after: Duration::from_secs(
                    ((bucket + 1) * secs - at.timestamp()).max(1) as u64
                ),
            }),
            Err(e) => Err(StoreError::unavailable("DynamoDB UpdateItem (rate)", e)),
        }
    }
}
