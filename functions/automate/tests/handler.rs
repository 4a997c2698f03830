//! Handler tests of the automate function: the SQS event in events/ (its record body is
//! the EventBridge event the rule delivered) handled in-process over the fakes.
//!
//! `noon()` is 2026-06-10 16:00 UTC = 12:00 EDT for the customer's +1 202 number.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use automate::{handle, App};
use consent::automation::Automation;
use consent::fakes::{self, grant_by_code, FakeQueue, InMemoryStore};
use consent::message::StatusReason;
use consent::message::{Message, MessageKind, MessageStatus, Origin};
use consent::ports::{AutomationStore, Contact, ContactStore, StoreResult, WorkQueueName};
use consent::{
    AccountId, Category, ContactId, DealId, DealerId, PhoneNumber, StaffUserId, StoreError,
};

const AUTOPAY_FAILED: &str = include_str!("../../../events/automate-sqs-autopayfailed.json");

const DEALER: &str = "demo-dealer";
const CUSTOMER: &str = "+12025550143";

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::from_e164(s).unwrap()
}

fn dealer() -> DealerId {
    DealerId::parse(DEALER).unwrap()
}

// ------------------------------------------------------------------ events

fn fixture() -> Value {
    serde_json::from_str(AUTOPAY_FAILED).expect("fixture is JSON")
}

/// The EventBridge event inside the fixture's (only) record.
fn bus_event() -> Value {
    serde_json::from_str(fixture()["Records"][0]["body"].as_str().unwrap()).unwrap()
}

/// The fixture's record with another body and SQS message id.
fn record(body: &str, sqs_message_id: &str) -> Value {
    let mut r = fixture()["Records"][0].clone();
    r["body"] = json!(body);
    r["messageId"] = json!(sqs_message_id);
    r
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

// ------------------------------------------------------------------ world

struct World {
    store: InMemoryStore,
    queue: FakeQueue,
    app: App,
}

impl World {
    /// The demo dealer and contact C-1001 (account A-1001), stored through the ports.
    async fn new() -> Self {
        let world = fakes::World::seeded({
            let mut seed = fakes::Seed::demo();
            seed.contact.deal_ids = vec![DealId::parse("D-2001").unwrap()];
            seed
        })
        .await;
        let (store, queue) = (world.store.clone(), world.queue.clone());
        let app = App {
            dealers: Arc::new(store.clone()),
            contacts: Arc::new(store.clone()),
            templates: Arc::new(store.clone()),
            consent: Arc::new(store.clone()),
            messages: Arc::new(store.clone()),
            queue: Arc::new(queue.clone()),
            number_pool: Vec::new(),
            automations: Arc::new(store.clone()),
            work: Arc::new(store.clone()),
        };
        World { store, queue, app }
    }

    /// The person authorizes `category` with the code texted to them.
    async fn grant(&self, category: Category) {
        let staff = StaffUserId::parse("staff-1").unwrap();
        let contact = ContactId::parse("C-1001").unwrap();
        let at = noon() - Duration::hours(1);
        grant_by_code(
            &self.store,
            &self.queue,
            (&dealer(), &staff),
            &contact,
            category,
            at,
        )
        .await;
        self.queue.drain();
    }

    fn template_messages(&self) -> Vec<Message> {
        self.store
            .messages()
            .into_iter()
            .filter(|m| m.kind == MessageKind::Template)
            .collect()
    }
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn the_fixture_is_an_sqs_event_carrying_an_autopayfailed_bus_event() {
    let event: SqsEvent = serde_json::from_str(AUTOPAY_FAILED).unwrap();
    assert_eq!(event.records.len(), 1);
    let r = &event.records[0];
    assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
    let bus: automate::BusEnvelope = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
    assert_eq!(bus.detail_type, "AutoPayFailed");
    assert_eq!(bus.detail.dealer_id, dealer());
    assert_eq!(bus.detail.contact_id.as_str(), "C-1001");
}

#[tokio::test]
async fn autopayfailed_for_a_consented_contact_queues_the_template() {
    // GIVEN the person authorized accounting texts
    let w = World::new().await;
    w.grant(Category::Accounting).await;

    // WHEN the fixture's AutoPayFailed event arrives
    let event: SqsEvent = serde_json::from_str(AUTOPAY_FAILED).unwrap();
    let response = handle(&w.app, event, noon()).await;

    // THEN no failures, and one Auto Pay Failure text is stored and queued
    assert!(response.batch_item_failures.is_empty());
    let messages = w.template_messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.status, MessageStatus::Queued);
    assert_eq!(m.template.as_deref(), Some("auto-pay-failure"));
    assert_eq!(m.category, Category::Accounting);
    assert_eq!(m.to, phone(CUSTOMER));
    assert_eq!(m.account_id, Some(AccountId::parse("A-1001").unwrap()));
    assert_eq!(
        m.origin,
        Origin::Automation {
            event: "AutoPayFailed".into(),
            // the producer's key of the event, not EventBridge's id (which a retry changes)
            event_id: bus_event()["detail"]["idempotencyKey"]
                .as_str()
                .unwrap()
                .into(),
        }
    );
    assert_eq!(
        m.body,
        "Demo Motors: Hi Maria, your automatic payment of $412.37 due Jun 15, 2026 did not \
         go through. Please update your payment method at https://pay.demo-motors.example/p/7Hq2x \
         or call us. Reply STOP to opt out."
    );
    let queued = w.queue.sent();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].envelope.message_id, m.id);
}

#[tokio::test]
async fn autopayfailed_without_consent_is_recorded_suppressed_and_not_retried() {
    // GIVEN the person authorized service texts only
    let w = World::new().await;
    w.grant(Category::Service).await;

    let event: SqsEvent = serde_json::from_str(AUTOPAY_FAILED).unwrap();
    let response = handle(&w.app, event, noon()).await;

    // THEN no batch failure (retrying cannot help), a suppressed message with the
    // reason, and nothing queued
    assert!(response.batch_item_failures.is_empty());
    let messages = w.template_messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.status, MessageStatus::Suppressed);
    assert_eq!(
        m.status_reason,
        Some(StatusReason::ConsentRequired(Category::Accounting))
    );
    assert_eq!(m.contact_id, Some(ContactId::parse("C-1001").unwrap()));
    assert!(w.queue.sent().is_empty());

    // AND staff find it on the automation-failures queue, with the reason
    let items: Vec<_> = w
        .store
        .work_items()
        .into_iter()
        .filter(|i| i.queue == WorkQueueName::AutomationFailures)
        .collect();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].text.as_deref(),
        Some("AutoPayFailed: consent-required: accounting")
    );

    // AND the same event again records nothing more
    let event: SqsEvent = serde_json::from_str(AUTOPAY_FAILED).unwrap();
    let response = handle(&w.app, event, noon() + Duration::minutes(1)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.template_messages().len(), 1);
    assert_eq!(w.store.work_items().len(), 1);
}

#[tokio::test]
async fn a_dealers_automation_setting_picks_the_template_or_turns_the_event_off() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let setting = |template: &str, enabled| Automation {
        event_type: "AutoPayFailed".into(),
        template: template.into(),
        enabled,
        updated_at: noon(),
        updated_by: "admin-1".into(),
    };
    // GIVEN the dealer turned AutoPayFailed off WHEN it arrives THEN nothing is sent
    w.store
        .put_automation(&dealer(), &setting("auto-pay-failure", false))
        .await
        .unwrap();
    let response = handle(
        &w.app,
        serde_json::from_str(AUTOPAY_FAILED).unwrap(),
        noon(),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert!(w.template_messages().is_empty());
    // GIVEN it maps to Past Due Alert instead THEN that template is sent
    w.store
        .put_automation(&dealer(), &setting("past-due-alert", true))
        .await
        .unwrap();
    let mut event = bus_event();
    event["detail"]["variables"] = json!({"firstName": "Maria", "amount": "412.37", "dueDate": "2026-06-15", "paymentUrl": "https://pay.demo-motors.example/p/7Hq2x"});
    let response = handle(
        &w.app,
        sqs(vec![record(
            &event.to_string(),
            "00000000-0000-4000-8000-0000000000a1",
        )]),
        noon(),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let sent = w.template_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].template.as_deref(), Some("past-due-alert"));
}

#[tokio::test]
async fn malformed_or_unmappable_records_are_dropped_not_failed() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let mut no_contact = bus_event();
    no_contact["detail"]
        .as_object_mut()
        .unwrap()
        .remove("contactId");
    let mut bad_dealer = bus_event();
    bad_dealer["detail"]["dealerId"] = json!("demo#dealer");
    let mut unknown_type = bus_event();
    unknown_type["detail-type"] = json!("VehicleSold");
    let mut unknown_contact = bus_event();
    unknown_contact["detail"]["contactId"] = json!("C-4040");
    let mut bad_variables = bus_event();
    bad_variables["detail"]["variables"]["amount"] = json!("a lot");

    let event = sqs(vec![
        record("not json at all", "00000000-0000-4000-8000-000000000001"),
        record("", "00000000-0000-4000-8000-000000000002"),
        record(
            &no_contact.to_string(),
            "00000000-0000-4000-8000-000000000003",
        ),
        record(
            &bad_dealer.to_string(),
            "00000000-0000-4000-8000-000000000004",
        ),
        record(
            &unknown_type.to_string(),
            "00000000-0000-4000-8000-000000000005",
        ),
        record(
            &unknown_contact.to_string(),
            "00000000-0000-4000-8000-000000000006",
        ),
    ]);
    let response = handle(&w.app, event, noon()).await;

    assert!(response.batch_item_failures.is_empty());
    assert!(w.template_messages().is_empty());
    assert!(w.queue.sent().is_empty());

    // Variables that do not fit the template: recorded as suppressed with the reason.
    let mut invalid = bad_variables.clone();
    invalid["id"] = json!("7c0f5a2e-bad0-4a55-9e3b-0d6a8c1f2e47");
    let response = handle(
        &w.app,
        sqs(vec![record(
            &invalid.to_string(),
            "00000000-0000-4000-8000-000000000007",
        )]),
        noon(),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let messages = w.template_messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].status, MessageStatus::Suppressed);
    assert!(messages[0]
        .status_reason
        .as_ref()
        .unwrap()
        .to_string()
        .contains("amount"));
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn the_same_event_delivered_twice_sends_once() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    let body = bus_event().to_string();

    // EventBridge and SQS deliver at least once: the same event under two SQS ids,
    // in one batch and again in a later one.
    let event = sqs(vec![
        record(&body, "00000000-0000-4000-8000-00000000000a"),
        record(&body, "00000000-0000-4000-8000-00000000000b"),
    ]);
    let response = handle(&w.app, event, noon()).await;
    assert!(response.batch_item_failures.is_empty());
    let again = sqs(vec![record(&body, "00000000-0000-4000-8000-00000000000c")]);
    let response = handle(&w.app, again, noon() + Duration::minutes(3)).await;
    assert!(response.batch_item_failures.is_empty());

    assert_eq!(w.template_messages().len(), 1);
    assert_eq!(w.queue.sent().len(), 1);

    // The DMS retries its PutEvents: EventBridge gives the same business event a new id;
    // the producer's idempotency key is the same, so nothing more is sent.
    let mut retried = bus_event();
    retried["id"] = json!("5b1e2c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e");
    let response = handle(
        &w.app,
        sqs(vec![record(
            &retried.to_string(),
            "00000000-0000-4000-8000-00000000000e",
        )]),
        noon() + Duration::minutes(4),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.template_messages().len(), 1);

    // A different event (its own key) for the same contact is a new send.
    let mut next = bus_event();
    next["id"] = json!("0d3c6f9a-1b2e-4c5d-8e7f-9a0b1c2d3e4f");
    next["detail"]["idempotencyKey"] = json!("dms-payments:autopay-attempt-88413");
    let response = handle(
        &w.app,
        sqs(vec![record(
            &next.to_string(),
            "00000000-0000-4000-8000-00000000000d",
        )]),
        noon() + Duration::minutes(5),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.template_messages().len(), 2);
}

/// Contacts behind a store that is down.
struct DownContacts;

fn down() -> StoreError {
    StoreError::unavailable(
        "DynamoDB GetItem",
        std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"),
    )
}

#[async_trait]
impl ContactStore for DownContacts {
    async fn contact(&self, _: &DealerId, _: &ContactId) -> StoreResult<Option<Contact>> {
        Err(down())
    }
    async fn put_contact(&self, _: &Contact, _: Option<&Contact>) -> StoreResult<()> {
        Err(down())
    }
    async fn delete_contact(&self, _: &Contact) -> StoreResult<()> {
        Err(down())
    }
    async fn contacts_by_account(&self, _: &DealerId, _: &AccountId) -> StoreResult<Vec<Contact>> {
        Err(down())
    }
    async fn contacts_by_deal(&self, _: &DealerId, _: &DealId) -> StoreResult<Vec<Contact>> {
        Err(down())
    }
    async fn contacts_by_phone(&self, _: &DealerId, _: &PhoneNumber) -> StoreResult<Vec<Contact>> {
        Err(down())
    }
}

#[tokio::test]
async fn an_infrastructure_failure_fails_only_that_record() {
    // GIVEN the contact store is down
    let mut w = World::new().await;
    w.grant(Category::Accounting).await;
    w.app.contacts = Arc::new(DownContacts);

    // WHEN a batch holds a valid event and a malformed record
    let failing = "00000000-0000-4000-8000-0000000000f1";
    let event = sqs(vec![
        record(&bus_event().to_string(), failing),
        record("{\"broken\":", "00000000-0000-4000-8000-0000000000f2"),
    ]);
    let response = handle(&w.app, event, noon()).await;

    // THEN only the valid event is reported failed, to be retried
    assert_eq!(failed_ids(&response), [failing]);
    assert!(w.template_messages().is_empty());
    assert!(w.queue.sent().is_empty());
}

#[tokio::test]
async fn an_event_without_its_idempotency_key_is_refused_as_malformed() {
    let w = World::new().await;
    w.grant(Category::Accounting).await;
    for key in [json!(null), json!(""), json!("x".repeat(201))] {
        let mut event = bus_event();
        match key {
            Value::Null => {
                event["detail"]
                    .as_object_mut()
                    .unwrap()
                    .remove("idempotencyKey");
            }
            k => event["detail"]["idempotencyKey"] = k,
        }
        let response = handle(
            &w.app,
            sqs(vec![record(
                &event.to_string(),
                "00000000-0000-4000-8000-0000000000f1",
            )]),
            noon(),
        )
        .await;
        // Dropped (retrying cannot fix it), never sent
        assert!(response.batch_item_failures.is_empty());
    }
    assert!(w.template_messages().is_empty());
    assert!(w.queue.sent().is_empty());
}
