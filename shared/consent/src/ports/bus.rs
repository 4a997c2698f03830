//! The event bus port: events published in an envelope.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreResult;

/// An event published to the bus, in an envelope (`detail` carries id, version, time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusEvent {
    pub source: String,
    pub detail_type: String,
    pub detail: serde_json::Value,
}

#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes all events (batched by 10); fails if any entry failed.
    async fn publish(&self, events: &[BusEvent]) -> StoreResult<()>;
}
