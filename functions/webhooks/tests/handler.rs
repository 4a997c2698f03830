//! Handler tests of the webhooks function: the stored webhooks of events/webhooks-sqs.json
//! (a STOP, then a START, of one person) acted on in-process over the in-memory fakes.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, Duration, TimeZone, Utc};

use consent::fakes::{FakeBus, FakeQueue, InMemoryStore};
use consent::ledger::{Actor, ConsentEvent, ConsentState, ConsentStatus, LedgerEntry};
use consent::ports::{ConsentChange, ConsentReader, ConsentWriter, Dealer, DealerStore};
use consent::{Category, DealerId, PhoneNumber};
use webhooks::{handle, process_record, App, RecordOutcome};

const FIXTURE: &str = include_str!("../../../events/webhooks-sqs.json");

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 10).unwrap()
}

fn dealer() -> DealerId {
    DealerId::parse("demo-dealer").unwrap()
}

fn person() -> PhoneNumber {
    PhoneNumber::parse("+12025550143").unwrap()
}

struct World {
    store: InMemoryStore,
    queue: FakeQueue,
    app: App,
}

impl World {
    /// Demo Motors on +12025550100; the person authorized accounting.
    async fn new() -> Self {
        let store = InMemoryStore::new();
        let queue = FakeQueue::new();
        store
            .put_dealer(
                &Dealer {
                    id: dealer(),
                    name: "Demo Motors".into(),
                    texting_number: PhoneNumber::parse("+12025550100").unwrap(),
                    help_contact: None,
                    time_zone: None,
                },
                None,
            )
            .await
            .unwrap();
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
            queue: Arc::new(queue.clone()),
            events: Arc::new(FakeBus::new()),
            work: Arc::new(store.clone()),
            inbound: Arc::new(store.clone()),
            numbers: Arc::new(store.clone()),
        };
        World { store, queue, app }
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
        process_record(&w.app, "{\"kind\":\"reply\"}", now()).await,
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
