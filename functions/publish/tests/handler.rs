//! Handler tests of the publish function: the stream event in events/ handled
//! in-process with an in-memory bus.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{json, Value};

use consent::fakes::FakeBus;
use consent::ports::{BusEvent, EventPublisher, StoreResult};
use consent::StoreError;
use publish::{handle, App, ItemFailure, StreamEvent};

const STREAM: &str = include_str!("../../../events/publish-stream.json");

fn stream() -> StreamEvent {
    serde_json::from_str(STREAM).expect("a DynamoDB stream event")
}

#[tokio::test]
async fn a_grant_and_a_sent_text_become_two_events_in_stream_order() {
    let bus = FakeBus::new();
    let app = App {
        events: Arc::new(bus.clone()),
    };

    let response = handle(&app, stream()).await;

    assert!(response.batch_item_failures.is_empty());
    let events = bus.published();
    assert_eq!(
        events.len(),
        2,
        "the attempts-only change makes no event: {events:?}"
    );
    assert_eq!(events[0].detail_type, "ConsentChanged");
    assert_eq!(
        events[0].detail,
        json!({
            "version": 1,
            "id": "01JXA6Z3Q8M4V2N7K5P9R1T0AA",
            "dealerId": "demo-dealer",
            "phone": "+12025550143",
            "category": "accounting",
            "change": "grant",
            "event": "granted-by-code",
            "channel": "portal",
            "at": "2026-06-10T16:00:00Z",
        })
    );
    assert_eq!(events[1].detail_type, "MessageStatusChanged");
    let d = &events[1].detail;
    assert_eq!(d["id"], "01JXA6Z3Q8M4V2N7K5P9R1T0WB:3");
    assert_eq!(
        (d["status"].as_str(), d["previousStatus"].as_str()),
        (Some("sent"), Some("sending"))
    );
    assert_eq!(d["contactId"], "C-1001");
    assert_eq!(d["at"], "2026-06-10T16:00:02Z");
    assert!(events.iter().all(|e| e.source == "texting.consent"));
    // make test holds these details to docs/events/*.schema.json (test_events.py).
    for e in &events {
        consent_adapters::http::write_sample(
            "event",
            &json!({"detailType": e.detail_type, "detail": e.detail}),
        );
    }
}

/// A bus that refuses every PutEvents.
struct DownBus;

#[async_trait]
impl EventPublisher for DownBus {
    async fn publish(&self, _: &[BusEvent]) -> StoreResult<()> {
        Err(StoreError::Partial("1 of 2 entries failed".into()))
    }
}

/// A bus that refuses once, then takes everything.
struct FlakyBus {
    refused: Mutex<bool>,
    taken: Mutex<Vec<BusEvent>>,
}

#[async_trait]
impl EventPublisher for FlakyBus {
    async fn publish(&self, events: &[BusEvent]) -> StoreResult<()> {
        let mut refused = self.refused.lock().unwrap();
        if !*refused {
            *refused = true;
            return Err(StoreError::Partial("throttled".into()));
        }
        self.taken.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_put_events_resumes_the_stream_from_the_first_record_not_published() {
    let app = App {
        events: Arc::new(DownBus),
    };
    let response = handle(&app, stream()).await;
    assert_eq!(
        response.batch_item_failures,
        vec![ItemFailure {
            item_identifier: "100000000000000000001".into()
        }]
    );
    // AND the retry, from there, publishes everything
    let flaky = Arc::new(FlakyBus {
        refused: Mutex::new(false),
        taken: Mutex::new(Vec::new()),
    });
    let app = App {
        events: flaky.clone(),
    };
    assert!(!handle(&app, stream()).await.batch_item_failures.is_empty());
    assert!(handle(&app, stream()).await.batch_item_failures.is_empty());
    assert_eq!(flaky.taken.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn an_unreadable_image_is_skipped_not_retried_forever() {
    let bus = FakeBus::new();
    let app = App {
        events: Arc::new(bus.clone()),
    };
    let mut event: Value = serde_json::from_str(STREAM).unwrap();
    event["Records"][0]["dynamodb"]["NewImage"]["category"] = json!({"S": "billing"});
    let response = handle(&app, serde_json::from_value(event).unwrap()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(bus.published().len(), 1, "the message's event still goes");
}
