//! Queue ports: the outbound queue that delivery reads, and the inbox that keeps a
//! carrier webhook until it is acted on.

use async_trait::async_trait;

use crate::error::StoreResult;
use crate::ids::MessageId;
use crate::message::Outbound;

#[async_trait]
pub trait OutboundQueue: Send + Sync {
    /// Queues messages (batched by the adapter). Returns the ids that could not be queued.
    async fn enqueue(&self, items: &[Outbound]) -> StoreResult<Vec<MessageId>>;
}

/// Where a signed carrier webhook is kept until it is acted on: durable storage first, so
/// the webhook is answered 200 at once (the carrier does not retry a 5xx) and a consumer
/// acts with retries and a dead-letter queue.
#[async_trait]
pub trait WebhookInbox: Send + Sync {
    async fn store(&self, webhook: &crate::webhook::CarrierWebhook) -> StoreResult<()>;
}
