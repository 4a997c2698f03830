//! Handler tests of the webhooks function: the stored webhooks of events/webhooks-sqs.json
//! (a STOP, then a START, of one person) acted on in-process over the in-memory fakes.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, Duration, TimeZone, Utc};

use consent::fakes;
use consent::ledger::{Actor, ConsentEvent, ConsentState, ConsentStatus, LedgerEntry};
use consent::ports::{ConsentChange, ConsentReader, ConsentWriter};
use consent::{Category, DealerId, PhoneNumber};
use consent_adapters::eum::events::Topics;
use webhooks::{handle, process_record, App, EumSource, RecordOutcome};

const FIXTURE: &str = include_str!("../../../events/webhooks-sqs.json");
/// End User Messaging's queue, where the stack's two topics deliver.
const EUM_QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:texting-EumQueue";

fn topics() -> Topics {
    Topics {
        replies: "arn:aws:sns:us-east-1:123456789012:texting-EumReplies".into(),
        events: "arn:aws:sns:us-east-1:123456789012:texting-EumEvents".into(),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 10).unwrap()
}

fn dealer() -> DealerId {
    DealerId::parse("demo-dealer").unwrap()
}

fn person() -> PhoneNumber {
    PhoneNumber::parse("+12025550143").unwrap()
}

/// The one test world (its store, queue, bus and opt-out lists) with the webhooks
/// function over it.
struct World {
    world: fakes::World,
    app: App,
}

impl std::ops::Deref for World {
    type Target = fakes::World;

    fn deref(&self) -> &fakes::World {
        &self.world
    }
}

impl World {
    /// Demo Motors on +12025550100 and its contact, the person, who authorized accounting.
    async fn new() -> Self {
        let world = fakes::World::seeded(fakes::Seed::demo()).await;
        let store = &world.store;
        let grant = LedgerEntry::new(
            &dealer(),
            &person(),
            Category::Accounting,
            ConsentEvent::GrantedByReply,
            Actor::Phone,
            now() - Duration::days(3),
        );
        let state = ConsentState::from_ledger([&grant]);
        store
            .append(
                &dealer(),
                &person(),
                ConsentChange {
                    expected_version: 0,
                    entries: &[grant],
                    new_state: &state,
                    consumed: &[],
                    acted: None,
                },
            )
            .await
            .unwrap();
        let app = App {
            dealers: Arc::new(store.clone()),
            contacts: Arc::new(store.clone()),
            consent: Arc::new(store.clone()),
            consent_writer: Arc::new(store.clone()),
            pending: Arc::new(store.clone()),
            messages: Arc::new(store.clone()),
            queue: Arc::new(world.queue.clone()),
            events: Arc::new(world.bus.clone()),
            work: Arc::new(store.clone()),
            inbound: Arc::new(store.clone()),
            numbers: Arc::new(store.clone()),
            opt_outs: Arc::new(world.opt_outs.clone()),
            end_user_messaging: Some(EumSource {
                queue_arn: EUM_QUEUE.into(),
                topics: topics(),
            }),
        };
        World { world, app }
    }

    async fn accounting(&self) -> ConsentStatus {
        self.store
            .consent(&dealer(), &person())
            .await
            .unwrap()
            .value
            .get(Category::Accounting)
            .status
    }
}

fn fixture() -> SqsEvent {
    serde_json::from_str(FIXTURE).unwrap()
}

#[tokio::test]
async fn the_fixture_acts_in_order_stop_then_start() {
    let w = World::new().await;

    let response = handle(&w.app, fixture(), now()).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.accounting().await, ConsentStatus::Authorized);
    let events: Vec<ConsentEvent> = w
        .store
        .ledger(&dealer(), &person())
        .iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        events,
        [
            ConsentEvent::GrantedByReply,
            ConsentEvent::RevokedByReply,
            ConsentEvent::RevokedByReply,
            ConsentEvent::RevokedByReply,
            ConsentEvent::RevokedByReply,
            ConsentEvent::RestoredByStart,
        ]
    );
    // One confirmation each.
    assert_eq!(w.queue.sent().len(), 2);
}

#[tokio::test]
async fn after_a_record_that_fails_every_later_record_is_handed_back() {
    // GIVEN the table is down when the batch arrives
    let w = World::new().await;
    w.store.crash_after_writes(0);

    // WHEN the batch (STOP, then START) is handled
    let response = handle(&w.app, fixture(), now()).await;

    // THEN both records go back: the START must not pass the STOP
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let ids: Vec<String> = fixture()
        .records
        .iter()
        .map(|r| r.message_id.clone().unwrap())
        .collect();
    assert_eq!(failed, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(w.accounting().await, ConsentStatus::Authorized);

    // AND the redelivered batch acts on both, in order, once
    w.store.recover();
    assert!(handle(&w.app, fixture(), now())
        .await
        .batch_item_failures
        .is_empty());
    assert!(handle(&w.app, fixture(), now())
        .await
        .batch_item_failures
        .is_empty());
    assert_eq!(w.accounting().await, ConsentStatus::Authorized);
    assert_eq!(w.queue.sent().len(), 2);
}

#[tokio::test]
async fn an_unreadable_record_is_kept_for_the_dead_letter_queue_never_dropped() {
    let w = World::new().await;
    assert_eq!(
        process_record(&w.app, None, "{\"kind\":\"reply\"}", now()).await,
        RecordOutcome::Retry
    );
}

#[tokio::test]
async fn a_record_after_one_that_failed_is_not_acted_on_before_it() {
    // GIVEN a batch whose first record cannot be acted on (unreadable) and whose second, a
    // STOP of the same group, could be
    let w = World::new().await;
    let mut event = fixture();
    event.records[0].body = Some("{\"kind\":\"reply\"}".into());
    let stop_id = event.records[1].message_id.clone().unwrap();
    event.records[1].body = fixture().records[0].body.clone();

    // WHEN the batch is handled
    let response = handle(&w.app, event, now()).await;

    // THEN the STOP is handed back with it, not acted on out of order
    assert_eq!(response.batch_item_failures.len(), 2);
    assert!(response
        .batch_item_failures
        .iter()
        .any(|f| f.item_identifier == stop_id));
    assert_eq!(w.accounting().await, ConsentStatus::Authorized);
}

/// SNS's envelope of End User Messaging's payload, as the EUM queue holds it.
fn notification(topic: &str, message: serde_json::Value) -> String {
    serde_json::json!({"Type": "Notification", "MessageId": "0b1e7d36-3c0c-5f43-9a5b-000000000001",
        "TopicArn": topic, "Message": message.to_string(), "Timestamp": "2026-06-10T16:00:00.000Z"})
    .to_string()
}

/// A person's text as two-way SMS publishes it.
fn eum_text(body: &str, id: &str) -> serde_json::Value {
    serde_json::json!({"originationNumber": "+12025550143", "destinationNumber": "+12025550100",
        "messageKeyword": "KEYWORD_123456789012", "messageBody": body, "inboundMessageId": id})
}

/// One record received from `source` (a queue's ARN).
fn record_from(source: &str, body: String) -> SqsEvent {
    let mut event = fixture();
    event.records.truncate(1);
    event.records[0].event_source_arn = Some(source.into());
    event.records[0].body = Some(body);
    event
}

#[tokio::test]
async fn a_stop_through_end_user_messaging_is_acted_on_as_twilios_once_however_often_it_comes() {
    let w = World::new().await;
    let stop = notification(
        &topics().replies,
        eum_text("stop", "cae173d2-66b9-564c-8309-21f858e9fb84"),
    );
    // SNS delivers at least once: the same notification twice.
    for _ in 0..2 {
        let response = handle(&w.app, record_from(EUM_QUEUE, stop.clone()), now()).await;
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(w.accounting().await, ConsentStatus::Revoked);
    let revoked: Vec<_> = w
        .store
        .history(&dealer(), &person())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == ConsentEvent::RevokedByReply && e.category == Category::Accounting)
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        revoked[0].evidence.as_deref(),
        Some("cae173d2-66b9-564c-8309-21f858e9fb84")
    );
    // Its confirmation goes out as any answer does (the outbound queue).
    assert_eq!(w.queue.sent().len(), 1);
}

#[tokio::test]
async fn a_notification_from_a_topic_not_ours_is_kept_for_the_dead_letter_queue_never_acted_on() {
    let w = World::new().await;
    let forged = notification(
        "arn:aws:sns:us-east-1:666666666666:texting-EumReplies",
        eum_text("STOP", "forged-1"),
    );
    let response = handle(&w.app, record_from(EUM_QUEUE, forged), now()).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(w.accounting().await, ConsentStatus::Authorized);
}

#[tokio::test]
async fn the_queue_a_record_came_from_decides_how_it_is_read() {
    let w = World::new().await;
    // A stored Twilio webhook on End User Messaging's queue is not End User Messaging's...
    let stored = fixture().records[0].body.clone().unwrap();
    assert_eq!(
        process_record(&w.app, Some(EUM_QUEUE), &stored, now()).await,
        RecordOutcome::Retry
    );
    // ...and End User Messaging's envelope on the inbound queue is not a stored webhook.
    let stop = notification(&topics().replies, eum_text("STOP", "m-2"));
    let inbound_queue = fixture().records[0].event_source_arn.clone();
    assert_eq!(
        process_record(&w.app, inbound_queue.as_deref(), &stop, now()).await,
        RecordOutcome::Retry
    );
    assert_eq!(w.accounting().await, ConsentStatus::Authorized);
    // An event for a text that is not ours changes nothing and is done with.
    let foreign = notification(
        &topics().events,
        serde_json::json!({"eventType": "TEXT_DELIVERED", "messageId": "x", "context": {}}),
    );
    assert_eq!(
        process_record(&w.app, Some(EUM_QUEUE), &foreign, now()).await,
        RecordOutcome::Done
    );
}
