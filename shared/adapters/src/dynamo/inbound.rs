//! Inbound de-duplication by carrier message id.

use super::*;

#[async_trait]
impl InboundLog for DynamoStore {
    async fn first_delivery(
        &self,
        carrier_message_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // Kept as long as the ledger (never expired): a replayed signed START years later
        // must not act again on someone who said STOP since.
        let mut item = key(format!("INBOUND#{carrier_message_id}"), "DEDUP");
        item.insert("receivedAt".into(), s(at.to_rfc3339()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_conditional(&e) => Ok(false),
            Err(e) => Err(StoreError::unavailable("DynamoDB PutItem (dedup)", e)),
        }
    }

    async fn forget(&self, carrier_message_id: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("INBOUND#{carrier_message_id}"), "DEDUP")))
            .send()
            .await
            .map_err(unavailable("DynamoDB DeleteItem (dedup)"))?;
        Ok(())
    }
}
