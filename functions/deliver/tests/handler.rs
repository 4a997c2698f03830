//! Handler tests of the deliver function: the outbound-queue SQS event in events/
//! (its body an `OutboundEnvelope`, pointed at a message the test queued) handled
//! in-process over the in-memory fakes and the fake carrier.
//!
//! `noon()` is 2026-06-10 16:00 UTC = 12:00 EDT for the customer's +1 202 number.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use consent::fakes::{self, grant_by_code, CarrierScript, FakeCarrier};
use consent::ledger::{Actor, ConsentEvent};
use consent::message::StatusReason;
use consent::message::{Message, MessageStatus, Origin, OutboundEnvelope};
use consent::ports::{Carrier, DeliveryClaims, MessageReader, WorkQueueName};
use consent::service::authorization as auth;
use consent::service::sending;
use consent::{Category, ContactId, DealerId, PhoneNumber, StaffUserId};
use consent_adapters::secrets::{Deferred, SecretError};
use consent_adapters::sqs::{BoxFuture, Visibility};
use deliver::{handle, App};

const DELIVER_SQS: &str = include_str!("../../../events/deliver-sqs.json");

const DEALER: &str = "demo-dealer";
const DEALER_NUMBER: &str = "+12025550100";
const CUSTOMER: &str = "+12025550143";
const BASE_URL: &str = "http://127.0.0.1:3000";

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::from_e164(s).unwrap()
}

fn dealer() -> DealerId {
    DealerId::parse(DEALER).unwrap()
}

fn staff() -> StaffUserId {
    StaffUserId::parse("staff-1").unwrap()
}

// ------------------------------------------------------------------ events

fn fixture_record() -> Value {
    let event: Value = serde_json::from_str(DELIVER_SQS).expect("fixture is JSON");
    event["Records"][0].clone()
}

/// The fixture's record carrying `body`, under this SQS message id.
const DLQ_ARN: &str = "arn:aws:sqs:us-east-1:000000000000:texting-OutboundDLQ";

fn record(body: &str, sqs_message_id: &str) -> Value {
    let mut r = fixture_record();
    r["body"] = json!(body);
    r["messageId"] = json!(sqs_message_id);
    r["receiptHandle"] = json!(format!("receipt-{sqs_message_id}"));
    r
}

/// The record SQS delivers for what the function queued: the envelope, serialized
/// as the SQS adapter serializes it.
fn record_for(envelope: &OutboundEnvelope, sqs_message_id: &str) -> Value {
    record(&serde_json::to_string(envelope).unwrap(), sqs_message_id)
}

/// One record per envelope, ids `sqs-0`, `sqs-1`, ...
fn records_for(envelopes: &[OutboundEnvelope]) -> Vec<Value> {
    envelopes
        .iter()
        .enumerate()
        .map(|(i, e)| record_for(e, &format!("sqs-{i}")))
        .collect()
}

fn sqs(records: Vec<Value>) -> SqsEvent {
    serde_json::from_value(json!({ "Records": records })).expect("an SQS event")
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

/// Records the visibility changes the handler asks for.
#[derive(Clone, Default)]
struct RecordingVisibility {
    delays: Arc<Mutex<Vec<(String, StdDuration)>>>,
}

impl Visibility for RecordingVisibility {
    fn delay<'a>(&'a self, receipt_handle: &'a str, by: StdDuration) -> BoxFuture<'a> {
        self.delays
            .lock()
            .unwrap()
            .push((receipt_handle.to_owned(), by));
        Box::pin(async {})
    }
}

// ------------------------------------------------------------------ world

/// The one test world (its store, queue, carrier and code key) with the deliver
/// function over it, and the visibility changes the function asks for.
struct World {
    world: fakes::World,
    visibility: RecordingVisibility,
    dead_letter_visibility: RecordingVisibility,
    app: App,
}

impl std::ops::Deref for World {
    type Target = fakes::World;

    fn deref(&self) -> &fakes::World {
        &self.world
    }
}

impl World {
    /// The demo dealer and contact C-1001, who authorized accounting texts.
    async fn new() -> Self {
        let world = fakes::World::seeded(fakes::Seed::demo()).await;
        let store = &world.store;
        let visibility = RecordingVisibility::default();
        let dead_letter_visibility = RecordingVisibility::default();
        let app = App {
            dealers: Arc::new(store.clone()),
            consent: Arc::new(store.clone()),
            consent_writer: Arc::new(store.clone()),
            messages: Arc::new(store.clone()),
            carrier: Arc::new(world.carrier.clone()),
            work: Arc::new(store.clone()),
            pending: Arc::new(store.clone()),
            codes: Arc::new(world.hasher.clone()),
            visibility: Arc::new(visibility.clone()),
            dead_letter_visibility: Some(Arc::new(dead_letter_visibility.clone())),
            record_budget: std::time::Duration::from_secs(15),
            public_base_url: Some(BASE_URL.into()),
            dead_letter_arn: Some(DLQ_ARN.into()),
            send_rate: Some(3),
            brand_daily_segments: None,
            limits: Arc::new(store.clone()),
            queue: Arc::new(world.queue.clone()),
        };
        let w = World {
            world,
            visibility,
            dead_letter_visibility,
            app,
        };
        w.grant(Category::Accounting).await;
        w
    }

    async fn grant(&self, category: Category) {
        let contact = ContactId::parse("C-1001").unwrap();
        let at = noon() - Duration::hours(1);
        grant_by_code(
            &self.store,
            &self.queue,
            (&dealer(), &staff()),
            &contact,
            category,
            at,
        )
        .await;
        // The code text itself is not delivered in these tests.
        self.queue.drain();
    }

    /// Staff send an Auto Pay Failure text now: stored queued; returns what went on the
    /// outbound queue.
    async fn queued_message(&self) -> OutboundEnvelope {
        let variables = json!({
            "firstName": "Maria",
            "amount": "412.37",
            "dueDate": "2026-06-15",
            "paymentUrl": "https://pay.demo-motors.example/p/7Hq2x",
        });
        let accepted = sending::request_send(
            &self.send_ports(),
            &dealer(),
            Origin::Staff { user: staff() },
            self.request_for("auto-pay-failure", fakes::vars(variables), None),
            None,
            noon() - Duration::seconds(5),
        )
        .await
        .unwrap();
        assert_eq!(accepted.message.status, MessageStatus::Queued);
        let mut queued = self.queue.drain();
        assert_eq!(queued.len(), 1);
        queued.pop().unwrap().envelope
    }

    async fn message(&self, id: &consent::MessageId) -> Message {
        self.store.message(id).await.unwrap().unwrap()
    }
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn the_fixture_carries_an_outbound_envelope_and_an_unknown_message_is_skipped() {
    let w = World::new().await;
    let event: SqsEvent = serde_json::from_str(DELIVER_SQS).unwrap();
    let envelope: OutboundEnvelope =
        serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(envelope.kind, OutboundEnvelope::KIND);
    assert_eq!(envelope.version, 1);
    assert_eq!(envelope.dealer_id, dealer());

    // The fixture's message does not exist here: nothing to do, nothing to retry.
    let response = handle(&w.app, event, noon()).await;

    assert!(response.batch_item_failures.is_empty());
    assert!(w.carrier.sent().is_empty());
}

#[tokio::test]
async fn an_envelope_without_its_snapshot_is_delivered_from_the_stored_message() {
    // GIVEN a version-1 envelope (no delivery snapshot: an older sender, or a record
    // put on the queue by hand) for a queued message, and one naming another dealer
    let w = World::new().await;
    let full = w.queued_message().await;
    let bare = OutboundEnvelope {
        version: 1,
        delivery: None,
        ..full.clone()
    };
    let foreign = OutboundEnvelope {
        dealer_id: DealerId::parse("other-dealer").unwrap(),
        ..bare.clone()
    };

    // WHEN the other dealer's record comes: THEN it is dropped and nothing is sent
    let response = handle(&w.app, sqs(vec![record_for(&foreign, "sqs-0")]), noon()).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(w.carrier.sent().is_empty());
    assert_eq!(
        w.message(&full.message_id).await.status,
        MessageStatus::Queued
    );

    // WHEN the real record comes, twice
    let records = vec![record_for(&bare, "sqs-1"), record_for(&bare, "sqs-2")];
    let response = handle(&w.app, sqs(records), noon()).await;

    // THEN the text goes once, through the same claim with its consent check
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.carrier.sent().len(), 1);
    let m = w.message(&full.message_id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    let statuses: Vec<MessageStatus> = m.history.iter().map(|h| h.status).collect();
    assert_eq!(
        statuses,
        [
            MessageStatus::Queued,
            MessageStatus::Sending,
            MessageStatus::Sent
        ]
    );
}

#[tokio::test]
async fn a_queued_message_goes_to_the_carrier_and_is_marked_sent() {
    let w = World::new().await;
    let envelope = w.queued_message().await;

    let response = handle(&w.app, sqs(vec![record_for(&envelope, "sqs-1")]), noon()).await;

    // THEN no failure, and the carrier got the text once, with the status callback
    assert!(response.batch_item_failures.is_empty());
    let sent = w.carrier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].from, phone(DEALER_NUMBER));
    assert_eq!(sent[0].to, phone(CUSTOMER));
    assert_eq!(
        sent[0].status_callback.as_deref(),
        Some(&*format!(
            "{BASE_URL}/v1/carrier/twilio/status?messageId={}",
            envelope.message_id
        ))
    );
    let inbox = w.carrier.inbox(&phone(CUSTOMER));
    assert_eq!(inbox.len(), 1);
    assert!(
        inbox[0].starts_with("Demo Motors: Hi Maria, your automatic payment of $412.37"),
        "{}",
        inbox[0]
    );

    // AND the message is sent, with the carrier's id
    let m = w.message(&envelope.message_id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    assert_eq!(m.attempts, 1);
    assert_eq!(
        m.carrier_message_id.as_deref(),
        Some("SM00000000000000000000000000000001")
    );
    let statuses: Vec<MessageStatus> = m.history.iter().map(|h| h.status).collect();
    assert_eq!(
        statuses,
        [
            MessageStatus::Queued,
            MessageStatus::Sending,
            MessageStatus::Sent
        ]
    );
}

#[tokio::test]
async fn a_malformed_record_is_reported_and_the_rest_of_the_batch_is_delivered() {
    let w = World::new().await;
    let envelope = w.queued_message().await;
    let mut wrong_shape = serde_json::to_value(&envelope).unwrap();
    wrong_shape.as_object_mut().unwrap().remove("messageId");

    let response = handle(
        &w.app,
        sqs(vec![
            record("{\"id\": \"01JX", "sqs-poison"),
            record(&wrong_shape.to_string(), "sqs-no-message-id"),
            record_for(&envelope, "sqs-good"),
        ]),
        noon(),
    )
    .await;

    assert_eq!(failed_ids(&response), ["sqs-poison", "sqs-no-message-id"]);
    assert_eq!(w.carrier.sent().len(), 1);
    assert_eq!(
        w.message(&envelope.message_id).await.status,
        MessageStatus::Sent
    );
}

#[tokio::test]
async fn a_retryable_carrier_failure_fails_the_record_and_requeues_the_message() {
    let w = World::new().await;
    let envelope = w.queued_message().await;
    w.carrier.fail_next(1, CarrierScript::Retryable);

    let response = handle(&w.app, sqs(vec![record_for(&envelope, "sqs-1")]), noon()).await;

    // THEN the record is reported failed, with a backoff on its visibility
    assert_eq!(failed_ids(&response), ["sqs-1"]);
    assert_eq!(
        *w.visibility.delays.lock().unwrap(),
        [("receipt-sqs-1".to_owned(), StdDuration::from_secs(10))]
    );
    // AND the message is queued again, the attempt counted; the carrier has nothing
    assert!(w.carrier.sent().is_empty());
    let m = w.message(&envelope.message_id).await;
    assert_eq!(m.status, MessageStatus::Queued);
    assert_eq!(
        m.status_reason,
        Some(StatusReason::CarrierRetrying("HTTP 500".into()))
    );
    assert_eq!(m.attempts, 1);

    // AND SQS's redelivery (its receive count now 2) sends it
    let mut again = record_for(&envelope, "sqs-1");
    again["attributes"]["ApproximateReceiveCount"] = json!("2");
    let response = handle(&w.app, sqs(vec![again]), noon() + Duration::seconds(10)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.carrier.sent().len(), 1);
    let m = w.message(&envelope.message_id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    assert_eq!(m.attempts, 2);
}

#[tokio::test]
async fn the_same_record_twice_calls_the_carrier_once() {
    let w = World::new().await;
    let envelope = w.queued_message().await;

    // A duplicate in the same batch (dispatch crashed between queue and status write)
    let response = handle(
        &w.app,
        sqs(vec![
            record_for(&envelope, "sqs-1"),
            record_for(&envelope, "sqs-2"),
        ]),
        noon(),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());

    // ... and the same record redelivered later
    let response = handle(
        &w.app,
        sqs(vec![record_for(&envelope, "sqs-1")]),
        noon() + Duration::minutes(1),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());

    assert_eq!(w.carrier.sent().len(), 1);
    let m = w.message(&envelope.message_id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    assert_eq!(m.attempts, 1);
}

#[tokio::test]
async fn a_message_whose_consent_was_revoked_after_queueing_is_suppressed() {
    let w = World::new().await;
    let envelope = w.queued_message().await;
    auth::unsubscribe(
        &w.auth(),
        &dealer(),
        &staff(),
        &ContactId::parse("C-1001").unwrap(),
        Category::Accounting,
        noon() - Duration::seconds(1),
    )
    .await
    .unwrap();

    let response = handle(&w.app, sqs(vec![record_for(&envelope, "sqs-1")]), noon()).await;

    assert!(response.batch_item_failures.is_empty());
    assert!(w.carrier.sent().is_empty());
    let m = w.message(&envelope.message_id).await;
    assert_eq!(m.status, MessageStatus::Suppressed);
    assert_eq!(m.status_reason, Some(StatusReason::Revoked));
}

#[tokio::test]
async fn a_carrier_opt_out_suppresses_and_revokes_by_carrier() {
    let w = World::new().await;
    let envelope = w.queued_message().await;
    w.carrier.fail_next(1, CarrierScript::OptedOut);

    let response = handle(&w.app, sqs(vec![record_for(&envelope, "sqs-1")]), noon()).await;

    assert!(response.batch_item_failures.is_empty());
    let m = w.message(&envelope.message_id).await;
    assert_eq!(m.status, MessageStatus::Suppressed);
    assert_eq!(m.status_reason, Some(StatusReason::CarrierOptOut(21610)));
    let ledger = w.store.ledger(&dealer(), &phone(CUSTOMER));
    let by_carrier: Vec<_> = ledger
        .iter()
        .filter(|e| e.event == ConsentEvent::RevokedByCarrier)
        .collect();
    assert_eq!(by_carrier.len(), 4);
    assert!(by_carrier.iter().all(|e| e.actor == Actor::Carrier));
}

#[tokio::test]
async fn a_permanent_carrier_failure_fails_the_message_for_staff_not_the_record() {
    let w = World::new().await;
    let envelope = w.queued_message().await;
    w.carrier.fail_next(1, CarrierScript::Permanent);

    let response = handle(&w.app, sqs(vec![record_for(&envelope, "sqs-1")]), noon()).await;

    assert!(response.batch_item_failures.is_empty());
    let m = w.message(&envelope.message_id).await;
    assert_eq!(m.status, MessageStatus::Failed);
    let items = w.store.work_items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].queue, WorkQueueName::FailedSends);
    assert_eq!(items[0].message_id.as_ref(), Some(&envelope.message_id));
    assert_eq!(
        items[0].contact_id,
        Some(ContactId::parse("C-1001").unwrap())
    );
}

#[tokio::test]
async fn a_record_arriving_in_quiet_hours_is_deferred_not_sent() {
    let w = World::new().await;
    let envelope = w.queued_message().await;
    // 22:00 EDT
    let late = Utc.with_ymd_and_hms(2026, 6, 11, 2, 0, 0).unwrap();

    let response = handle(&w.app, sqs(vec![record_for(&envelope, "sqs-1")]), late).await;

    assert!(response.batch_item_failures.is_empty());
    assert!(w.carrier.sent().is_empty());
    let m = w.message(&envelope.message_id).await;
    assert_eq!(m.status, MessageStatus::Deferred);
    assert_eq!(
        m.send_at,
        Utc.with_ymd_and_hms(2026, 6, 11, 12, 0, 0).unwrap()
    );
}

/// What the carrier knew when the worker that claimed a text died.
#[derive(Clone, Copy, Debug)]
enum DiedWhen {
    /// Before its carrier call: the carrier does not have the text.
    BeforeTheCarrierCall,
    /// After the carrier took the text, before the answer was recorded.
    AfterTheCarrierTookIt,
    /// Either; and the carrier's message list cannot be read.
    ListUnreadable,
}

/// A worker claimed the message and died; its record comes back while the claim is
/// fresh (nothing happens, the record waits) and again once it is stale (the carrier's
/// list decides). Returns the world, the envelope and the response to the stale visit.
async fn a_worker_died(when: DiedWhen) -> (World, OutboundEnvelope, SqsBatchResponse) {
    // GIVEN a worker claimed the message (queued -> sending) and died before recording
    // a result: its record comes back after the queue's 60 s visibility timeout
    let w = World::new().await;
    let envelope = w.queued_message().await;
    let claimed_at = noon();
    let snapshot = envelope.delivery.as_ref().unwrap();
    let claim = w
        .store
        .claim_for_delivery(
            &envelope.message_id,
            &consent::ports::ClaimExpectation {
                dealer: &envelope.dealer_id,
                snapshot,
                book: None,
            },
            claimed_at,
            None,
        )
        .await
        .unwrap();
    assert_eq!(claim, consent::ports::DeliveryClaim::Claimed);
    match when {
        DiedWhen::BeforeTheCarrierCall => {}
        DiedWhen::AfterTheCarrierTookIt => {
            let took = consent::ports::CarrierSend {
                message_id: envelope.message_id.clone(),
                promotional: false,
                from: snapshot.from.clone(),
                to: snapshot.to.clone(),
                body: snapshot.body.clone(),
                status_callback: None,
            };
            w.carrier.send(&took).await.unwrap();
        }
        DiedWhen::ListUnreadable => w.carrier.fail_next(1, CarrierScript::ListUnavailable),
    }
    let at_the_carrier = w.carrier.sent().len();

    // WHEN the record is redelivered while the claim is fresh
    let response = handle(
        &w.app,
        sqs(vec![record_for(&envelope, "sqs-1")]),
        claimed_at + Duration::seconds(60),
    )
    .await;

    // THEN the carrier is not called again, and the record is NOT dropped: it is
    // reported failed and comes back the second the claim is stale, not a whole
    // STALE_CLAIM after this visit
    assert_eq!(w.carrier.sent().len(), at_the_carrier);
    assert_eq!(failed_ids(&response), ["sqs-1"]);
    let delays = w.visibility.delays.lock().unwrap().clone();
    assert_eq!(delays.len(), 1);
    assert_eq!(delays[0].0, "receipt-sqs-1");
    let back = claimed_at + Duration::seconds(60) + Duration::from_std(delays[0].1).unwrap();
    let stale = claimed_at + consent::service::delivery::STALE_CLAIM;
    assert!(
        back >= stale && back <= stale + Duration::seconds(1),
        "{delays:?}"
    );
    assert_eq!(
        w.message(&envelope.message_id).await.status,
        MessageStatus::Sending
    );

    // WHEN it comes back after the claim went stale
    let later = claimed_at + Duration::seconds(60) + Duration::from_std(delays[0].1).unwrap();
    let response = handle(&w.app, sqs(vec![record_for(&envelope, "sqs-1")]), later).await;
    (w, envelope, response)
}

#[tokio::test]
async fn a_stale_claim_the_carrier_never_got_is_claimed_again_and_sent_once() {
    let (w, envelope, response) = a_worker_died(DiedWhen::BeforeTheCarrierCall).await;
    // THEN the carrier's list does not have it: claimed again (consent re-checked), sent once
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.carrier.sent().len(), 1);
    let m = w.message(&envelope.message_id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    assert!(m.carrier_message_id.is_some());
    assert!(w.store.work_items().is_empty(), "nothing for staff");
}

#[tokio::test]
async fn a_stale_claim_the_carrier_took_is_recorded_sent_without_a_second_text() {
    let (w, envelope, response) = a_worker_died(DiedWhen::AfterTheCarrierTookIt).await;
    // THEN the carrier's list has it: recorded sent with the carrier's id, no second text
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.carrier.sent().len(), 1, "one text at the phone");
    let m = w.message(&envelope.message_id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    assert_eq!(
        m.carrier_message_id.as_deref(),
        Some("SM00000000000000000000000000000001")
    );
    assert!(w.store.work_items().is_empty(), "nothing for staff");
}

#[tokio::test]
async fn a_stale_claim_whose_carrier_list_cannot_be_read_fails_for_staff() {
    let (w, envelope, response) = a_worker_died(DiedWhen::ListUnreadable).await;
    // THEN the outcome stays unknown: the message fails visibly, for staff, without a
    // second carrier call
    assert!(response.batch_item_failures.is_empty());
    assert!(w.carrier.sent().is_empty());
    let m = w.message(&envelope.message_id).await;
    assert_eq!(m.status, MessageStatus::Failed);
    let items = w.store.work_items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].queue, WorkQueueName::FailedSends);
    assert_eq!(items[0].message_id.as_ref(), Some(&envelope.message_id));
}

#[tokio::test]
async fn a_record_that_met_a_store_error_comes_back_in_seconds_then_later_each_time() {
    // GIVEN a queued text and a table that refuses every write (throttled past the SDK's
    // retries, or 500s)
    let w = World::new().await;
    let envelope = w.queued_message().await;
    w.store.crash_after_writes(0);
    let mut delays = Vec::new();
    for received in 1..=5 {
        // WHEN its record arrives for the n-th time
        let mut r = record_for(&envelope, "sqs-1");
        r["attributes"]["ApproximateReceiveCount"] = json!(received.to_string());
        let response = handle(&w.app, sqs(vec![r]), noon()).await;
        // THEN nothing is sent and the record comes back, after a delay of its own
        assert_eq!(failed_ids(&response), ["sqs-1"]);
        delays.push(
            w.visibility
                .delays
                .lock()
                .unwrap()
                .last()
                .unwrap()
                .1
                .as_secs(),
        );
    }
    assert!(w.carrier.sent().is_empty());
    // 15 s first (not the queue's 6-minute visibility timeout), then longer each time,
    // never past the visibility timeout: ~9 minutes over the five receives before the DLQ
    assert_eq!(delays, [15, 45, 135, 360, 360]);

    // AND once the table is back the text goes, once
    w.store.recover();
    let response = handle(&w.app, sqs(vec![record_for(&envelope, "sqs-1")]), noon()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.carrier.sent().len(), 1);
}

#[tokio::test]
async fn a_dead_lettered_record_fails_its_message_and_goes_to_staff() {
    // GIVEN a queued message whose record the queue gave up on
    let w = World::new().await;
    let envelope = w.queued_message().await;
    let mut dead = record_for(&envelope, "dlq-1");
    dead["eventSourceARN"] = json!(DLQ_ARN);

    // WHEN the dead-letter queue's record arrives
    let response = handle(&w.app, sqs(vec![dead.clone()]), noon()).await;

    // THEN it is consumed, the message failed with the reason, and staff have an item
    assert!(response.batch_item_failures.is_empty());
    assert!(w.carrier.sent().is_empty(), "a dead letter is never sent");
    let m = w.message(&envelope.message_id).await;
    assert_eq!(m.status, MessageStatus::Failed);
    assert!(m
        .status_reason
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
        .contains("dead-lettered"));
    let items = w.store.work_items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].queue, consent::ports::WorkQueueName::FailedSends);
    assert_eq!(items[0].message_id.as_ref(), Some(&envelope.message_id));

    // AND the same dead letter again changes nothing more
    let response = handle(&w.app, sqs(vec![dead]), noon()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.store.work_items().len(), 1);
}

#[tokio::test]
async fn records_the_deadline_leaves_no_room_for_are_handed_back_untouched() {
    // GIVEN a batch of two queued texts and an invocation with less time left than one
    // record may take (a carrier call and its writes)
    let w = World::new().await;
    let first = w.queued_message().await;
    let second = w.queued_message().await;
    let deadline = std::time::Instant::now() + StdDuration::from_secs(5);

    // WHEN deliver handles the batch
    let response = deliver::handle_before(
        &w.app,
        sqs(vec![
            record_for(&first, "sqs-1"),
            record_for(&second, "sqs-2"),
        ]),
        noon(),
        Some(deadline),
    )
    .await;

    // THEN neither is started: both are reported failed and handed back at once, the
    // carrier is not called and both messages stay queued for the next invocation
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["sqs-1", "sqs-2"]);
    assert!(w.carrier.sent().is_empty());
    let delays = w.visibility.delays.lock().unwrap().clone();
    assert_eq!(delays.len(), 2);
    assert!(delays.iter().all(|(_, by)| by.is_zero()));
    for e in [&first, &second] {
        let m = w.store.message(&e.message_id).await.unwrap().unwrap();
        assert_eq!(m.status, MessageStatus::Queued);
    }
}

#[tokio::test]
async fn a_dead_lettered_record_handed_back_is_made_visible_on_its_own_queue() {
    // GIVEN a batch of a record from the outbound queue and one from its dead-letter queue,
    // and no time left for either: each receipt handle is good on its own queue only
    let w = World::new().await;
    let (fresh, dead) = (w.queued_message().await, w.queued_message().await);
    let mut dead_record = record_for(&dead, "dlq-1");
    dead_record["eventSourceARN"] = json!(DLQ_ARN);
    let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
    deliver::handle_before(
        &w.app,
        sqs(vec![record_for(&fresh, "sqs-1"), dead_record]),
        noon(),
        Some(deadline),
    )
    .await;
    let handles = |v: &RecordingVisibility| -> Vec<String> {
        v.delays
            .lock()
            .unwrap()
            .iter()
            .map(|(h, _)| h.clone())
            .collect()
    };
    // THEN each queue is asked about its own record only
    let (outbound, dead_letters) = (handles(&w.visibility), handles(&w.dead_letter_visibility));
    assert_eq!((outbound.len(), dead_letters.len()), (1, 1));
    assert_ne!(outbound, dead_letters);
    assert!(dead_letters[0].contains("dlq-1"), "{dead_letters:?}");
}

// ------------------------------------------------------------------ the number's sending rate

#[tokio::test]
async fn texts_over_the_numbers_rate_wait_in_the_queue_and_go_in_later_seconds() {
    // GIVEN ten queued texts from the dealer's one number, in one batch, at 3 a second
    let w = World::new().await;
    let mut envelopes = Vec::new();
    for _ in 0..10 {
        envelopes.push(w.queued_message().await);
    }
    let records = records_for(&envelopes);

    // WHEN deliver works the batch
    let response = handle(&w.app, sqs(records), noon()).await;

    // THEN three go to the carrier; seven go back on the queue, delayed, as new records
    // (the batch reports no failure, so no receive count grows toward the DLQ)
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.carrier.sent().len(), 3);
    let waiting = w.queue.drain();
    assert_eq!(waiting.len(), 7);
    for o in &waiting {
        assert_eq!(o.envelope.rate_waits, 1);
        assert!((2..=3).contains(&o.delay_seconds), "{}", o.delay_seconds);
        assert_eq!(
            w.message(&o.envelope.message_id).await.status,
            MessageStatus::Queued
        );
    }

    // WHEN they come back two seconds later: three more go, four wait longer
    let again = waiting
        .iter()
        .enumerate()
        .map(|(i, o)| record_for(&o.envelope, &format!("again-{i}")))
        .collect();
    let response = handle(&w.app, sqs(again), noon() + Duration::seconds(2)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.carrier.sent().len(), 6);
    let still = w.queue.drain();
    assert_eq!(still.len(), 4);
    assert!(still
        .iter()
        .all(|o| o.envelope.rate_waits == 2 && (4..=6).contains(&o.delay_seconds)));

    // AND six different texts were sent, each once
    let mut sent = 0;
    for e in &envelopes {
        if w.message(&e.message_id).await.status == MessageStatus::Sent {
            sent += 1;
        }
    }
    assert_eq!(sent, 6);
}

#[tokio::test]
async fn a_text_over_the_rate_whose_requeue_fails_waits_on_its_own_record() {
    // GIVEN four queued texts from the dealer's one number, at 3 a second, and a queue
    // that refuses the next send (SQS throttled, or the emulator restarting)
    let w = World::new().await;
    let mut envelopes = Vec::new();
    for _ in 0..4 {
        envelopes.push(w.queued_message().await);
    }
    let records = records_for(&envelopes);
    w.queue.fail_next(1);

    // WHEN deliver works the batch
    let response = handle(&w.app, sqs(records), noon()).await;

    // THEN three go; the fourth could not go back on the queue as a new record, so its
    // own record is reported failed and comes back after its wait (seconds), not after
    // the queue's 6-minute visibility timeout
    assert_eq!(w.carrier.sent().len(), 3);
    assert!(w.queue.drain().is_empty());
    let failed = failed_ids(&response);
    assert_eq!(failed.len(), 1);
    let delays = w.visibility.delays.lock().unwrap().clone();
    assert_eq!(delays.len(), 1, "{delays:?}");
    assert_eq!(delays[0].0, format!("receipt-{}", failed[0]));
    assert!(
        (StdDuration::from_secs(1)..=StdDuration::from_secs(3)).contains(&delays[0].1),
        "{delays:?}"
    );
}

/// A carrier that takes a while to answer and counts the calls in flight at once.
struct SlowCarrier {
    inner: FakeCarrier,
    in_flight: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl consent::ports::Carrier for SlowCarrier {
    async fn send(
        &self,
        message: &consent::ports::CarrierSend,
    ) -> Result<consent::ports::CarrierReceipt, consent::ports::CarrierError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        self.in_flight.fetch_sub(1, SeqCst);
        self.inner.send(message).await
    }

    async fn find_sent(
        &self,
        message: &consent::ports::CarrierSend,
        since: chrono::DateTime<Utc>,
    ) -> Result<Option<consent::ports::CarrierReceipt>, consent::ports::CarrierError> {
        self.inner.find_sent(message, since).await
    }
}

#[tokio::test]
async fn a_batchs_records_are_worked_at_once_up_to_the_bound() {
    // GIVEN ten queued texts and a carrier that answers after a while (no rate limit here)
    let mut w = World::new().await;
    let slow = Arc::new(SlowCarrier {
        inner: w.carrier.clone(),
        in_flight: Default::default(),
        most: Default::default(),
    });
    w.app.carrier = slow.clone();
    w.app.send_rate = None;
    let mut records = Vec::new();
    for i in 0..12 {
        records.push(record_for(&w.queued_message().await, &format!("sqs-{i}")));
    }

    // WHEN deliver works a batch of twelve
    let response = handle(&w.app, sqs(records), noon()).await;

    // THEN all go, RECORDS_AT_ONCE of them at the carrier together, never more
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.carrier.sent().len(), 12);
    assert_eq!(
        slow.most.load(std::sync::atomic::Ordering::SeqCst),
        deliver::RECORDS_AT_ONCE
    );
}

#[tokio::test]
async fn unreadable_carrier_credentials_send_nothing_and_the_retry_sends_once() {
    let mut w = World::new().await;
    let envelope = w.queued_message().await;
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (counted, carrier) = (reads.clone(), w.carrier.clone());
    // The token's read at cold start fails; the next one answers.
    w.app.carrier = Arc::new(Deferred::start(move || {
        let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let carrier = carrier.clone();
        async move {
            match n {
                0 => Err(SecretError::Empty("TWILIO_AUTH_TOKEN_SECRET_ARN")),
                _ => Ok(carrier),
            }
        }
    }));

    let response = handle(&w.app, sqs(vec![record_for(&envelope, "sqs-1")]), noon()).await;
    assert_eq!(failed_ids(&response), ["sqs-1"]);
    assert!(w.carrier.sent().is_empty());
    let m = w.message(&envelope.message_id).await;
    assert_eq!(m.status, MessageStatus::Queued);
    assert_eq!(
        m.status_reason,
        Some(StatusReason::CarrierRetrying(
            "carrier credentials unreadable".into()
        ))
    );

    let mut again = record_for(&envelope, "sqs-1");
    again["attributes"]["ApproximateReceiveCount"] = json!("2");
    let response = handle(&w.app, sqs(vec![again]), noon() + Duration::seconds(10)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.carrier.sent().len(), 1);
    assert_eq!(
        w.message(&envelope.message_id).await.status,
        MessageStatus::Sent
    );
}

#[tokio::test]
async fn texts_over_the_brands_daily_segments_wait_for_the_next_pacific_day_codes_do_not() {
    // GIVEN a brand allowed two of these texts' segments a day, no per-second rate
    let mut w = World::new().await;
    let first = w.queued_message().await;
    let segments = consent::sms::segments(&first.delivery.as_ref().unwrap().body);
    w.app.brand_daily_segments = Some(2 * segments);
    w.app.send_rate = None;
    let envelopes = [first, w.queued_message().await, w.queued_message().await];
    let records = records_for(&envelopes);

    // WHEN deliver works them: two go, the third is held until Pacific midnight
    let response = handle(&w.app, sqs(records), noon()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.carrier.sent().len(), 2);
    let mut held = Vec::new();
    for e in &envelopes {
        let m = w.message(&e.message_id).await;
        if m.status == MessageStatus::Deferred {
            assert_eq!(m.status_reason, Some(StatusReason::BrandDailyCap));
            assert_eq!(
                m.send_at,
                Utc.with_ymd_and_hms(2026, 6, 11, 7, 0, 0).unwrap()
            );
            held.push(m);
        }
    }
    assert_eq!(held.len(), 1, "nothing dropped, nothing failed");

    // AND an approval code text still goes the same day
    consent::service::authorization::request(
        &w.auth(),
        &dealer(),
        &staff(),
        &ContactId::parse("C-1001").unwrap(),
        Category::Service,
        noon(),
    )
    .await
    .unwrap();
    let code = w.queue.drain().pop().unwrap().envelope;
    let response = handle(&w.app, sqs(vec![record_for(&code, "code-1")]), noon()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.carrier.sent().len(), 3);

    // AND on the next Pacific day the brand sends again
    let next_day = w.queued_message().await;
    let at = Utc.with_ymd_and_hms(2026, 6, 11, 16, 0, 0).unwrap();
    let response = handle(&w.app, sqs(vec![record_for(&next_day, "sqs-9")]), at).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.carrier.sent().len(), 4);
}

#[tokio::test]
async fn a_text_waiting_for_its_numbers_second_does_not_spend_the_brands_day() {
    // GIVEN one text a second per number and two texts' segments a day
    let mut w = World::new().await;
    let first = w.queued_message().await;
    let segments = consent::sms::segments(&first.delivery.as_ref().unwrap().body);
    w.app.brand_daily_segments = Some(2 * segments);
    w.app.send_rate = Some(1);
    let envelopes = [first, w.queued_message().await];
    let records = records_for(&envelopes);

    // WHEN one goes and the other waits for the next second, twice over
    handle(&w.app, sqs(records), noon()).await;
    assert_eq!(w.carrier.sent().len(), 1);
    let mut at = noon();
    for _ in 0..2 {
        let waiting = w.queue.drain();
        assert_eq!(waiting.len(), 1);
        let other = record_for(&waiting[0].envelope, "again");
        // the same second: over the rate again
        handle(&w.app, sqs(vec![other.clone()]), at).await;
        at += Duration::seconds(2);
        if !w.queue.sent().is_empty() {
            continue;
        }
        handle(&w.app, sqs(vec![other]), at).await;
    }

    // THEN the second text went: its waits did not count toward the brand's day
    assert_eq!(w.carrier.sent().len(), 2);
}

#[tokio::test]
async fn a_duplicate_record_spends_no_rate_slot_and_no_brand_segment() {
    // GIVEN one text a second per number and one text's segments a day; a message whose
    // record is on the queue twice (dispatch requeued it, or SQS delivered it twice)
    let mut w = World::new().await;
    let first = w.queued_message().await;
    let segments = consent::sms::segments(&first.delivery.as_ref().unwrap().body);
    w.app.brand_daily_segments = Some(2 * segments);
    w.app.send_rate = Some(1);
    handle(
        &w.app,
        sqs(records_for(std::slice::from_ref(&first))),
        noon(),
    )
    .await;
    assert_eq!(w.carrier.sent().len(), 1);

    // WHEN the duplicate comes a second later, then another text
    let duplicate = record_for(&first, "duplicate");
    handle(&w.app, sqs(vec![duplicate]), noon() + Duration::seconds(1)).await;
    let second = w.queued_message().await;
    handle(
        &w.app,
        sqs(records_for(std::slice::from_ref(&second))),
        noon() + Duration::seconds(1),
    )
    .await;

    // THEN the duplicate did nothing, and the other text took the second and the day's
    // last segments: it went
    assert!(w.queue.drain().is_empty(), "nothing had to wait");
    assert_eq!(w.carrier.sent().len(), 2);
    assert_eq!(
        w.message(&second.message_id).await.status,
        MessageStatus::Sent
    );
}
