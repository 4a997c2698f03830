//! Events for the DMS: reads the table's change stream (ledger entries and messages, as
//! the template's FilterCriteria let through) and publishes `ConsentChanged` and
//! `MessageStatusChanged` to the project's bus, in stream order.
//!
//! A batch is published in order; when a PutEvents fails, the first record whose events
//! were not all published is reported in `batchItemFailures`, so Lambda retries from
//! there (records before it are done). An image that cannot be read is logged and
//! skipped: retrying cannot mend it.

pub mod config;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use consent::ports::{BusEvent, EventPublisher};
use consent::service::changes::{events_for, Change};
use consent_adapters::attr::image_to_json;

pub struct App {
    pub events: Arc<dyn EventPublisher>,
}

/// A DynamoDB stream event as Lambda delivers it (only what is read).
#[derive(Debug, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

#[derive(Debug, Deserialize)]
pub struct StreamRecord {
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    pub dynamodb: StreamChange,
}

#[derive(Debug, Deserialize)]
pub struct StreamChange {
    #[serde(rename = "Keys", default)]
    pub keys: Map<String, Value>,
    #[serde(rename = "NewImage")]
    pub new_image: Option<Map<String, Value>>,
    #[serde(rename = "OldImage")]
    pub old_image: Option<Map<String, Value>>,
    #[serde(rename = "SequenceNumber", default)]
    pub sequence_number: String,
}

/// The answer: where Lambda must resume (the stream's partial batch response).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// Most entries in one PutEvents.
const PUT_EVENTS_MAX: usize = 10;

pub async fn handle(app: &App, event: StreamEvent) -> BatchResponse {
    // (index of the record, its event), in stream order.
    let mut pending: Vec<(usize, BusEvent)> = Vec::new();
    for (i, record) in event.records.iter().enumerate() {
        let change = Change {
            event_name: record.event_name.clone(),
            sort_key: record
                .dynamodb
                .keys
                .get("SK")
                .and_then(|v| v.get("S"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            old: record.dynamodb.old_image.as_ref().map(image_to_json),
            new: record.dynamodb.new_image.as_ref().map(image_to_json),
        };
        match events_for(&change) {
            Ok(events) => pending.extend(events.into_iter().map(|e| (i, e))),
            Err(e) => tracing::error!(
                sequence = %record.dynamodb.sequence_number,
                error = %e,
                "stream record skipped"
            ),
        }
    }
    for chunk in pending.chunks(PUT_EVENTS_MAX) {
        let events: Vec<BusEvent> = chunk.iter().map(|(_, e)| e.clone()).collect();
        if let Err(e) = app.events.publish(&events).await {
            let first = chunk[0].0;
            tracing::error!(error = %e, "PutEvents failed; the stream resumes from this record");
            return BatchResponse {
                batch_item_failures: vec![ItemFailure {
                    item_identifier: event.records[first].dynamodb.sequence_number.clone(),
                }],
            };
        }
    }
    tracing::info!(
        records = event.records.len(),
        events = pending.len(),
        "published"
    );
    BatchResponse::default()
}
