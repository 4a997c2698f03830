//! Inbound de-duplication.

use super::*;

#[async_trait]
impl InboundLog for InMemoryStore {
    async fn first_delivery(
        &self,
        carrier_message_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(self
            .lock()
            .inbound
            .insert(carrier_message_id.to_owned(), at)
            .is_none())
    }

    async fn forget(&self, carrier_message_id: &str) -> StoreResult<()> {
        self.lock().inbound.remove(carrier_message_id);
        Ok(())
    }
}
