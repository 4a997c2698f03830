//! Publishing domain events to EventBridge: PutEvents in tens, failures checked.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use consent::ports::{BusEvent, EventPublisher, StoreResult};
use consent::StoreError;

pub const PUT_EVENTS_BATCH: usize = 10;

#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[BusEvent]) -> StoreResult<()> {
        for chunk in events.chunks(PUT_EVENTS_BATCH) {
            let entries = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(&e.source)
                        .detail_type(&e.detail_type)
                        .detail(e.detail.to_string())
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| StoreError::unavailable("EventBridge PutEvents", e))?;
            if out.failed_entry_count > 0 {
                let codes: Vec<String> = out
                    .entries
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|e| e.error_code)
                    .collect();
                return Err(StoreError::Partial(format!(
                    "PutEvents failed for {} of {} entries: {}",
                    out.failed_entry_count,
                    chunk.len(),
                    codes.join(", ")
                )));
            }
        }
        Ok(())
    }
}
