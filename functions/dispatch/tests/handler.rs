//! Handler tests of the dispatch function: the EventBridge "Scheduled Event" in events/
//! fires a run at its `time` (2026-06-10 16:00 UTC = 12:00 EDT for the +1 202
//! customers) over the in-memory fakes.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use consent::fakes::{self, grant_by_code};
use consent::message::StatusReason;
use consent::message::{Message, MessageStatus, Origin};
use consent::ports::{Contact, ContactStore, MessageReader};
use consent::service::authorization as auth;
use consent::service::sending::{self, SendRequest};
use consent::{Category, ContactId, DealerId, PhoneNumber, StaffUserId};
use dispatch::{handle, App};

const SCHEDULED_EVENT: &str = include_str!("../../../events/dispatch-scheduled-event.json");

const DEALER: &str = "demo-dealer";

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::from_e164(s).unwrap()
}

fn dealer() -> DealerId {
    DealerId::parse(DEALER).unwrap()
}

fn staff() -> StaffUserId {
    StaffUserId::parse("staff-1").unwrap()
}

/// When the schedule fired: the fixture's `time`.
fn fired_at() -> DateTime<Utc> {
    let event: EventBridgeEvent<Value> = serde_json::from_str(SCHEDULED_EVENT).unwrap();
    assert_eq!(event.detail_type, "Scheduled Event");
    assert_eq!(event.source, "aws.events");
    event.time.expect("a scheduled event has a time")
}

/// The one test world (its store, queue and code key) with the dispatch function over it.
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
    /// The demo dealer with contacts C-1001 (+12025550143) and C-1002 (+12025550144),
    /// both of whom authorized accounting texts, stored through the ports and services.
    async fn new() -> Self {
        // C-1001 is the seed's contact; C-1002 is added below.
        let mut seed = fakes::Seed::demo();
        seed.contact.name = "Customer C-1001".into();
        seed.contact.updated_at = fired_at() - Duration::days(30);
        let world = fakes::World::seeded(seed.clone()).await;
        let store = &world.store;
        let app = App {
            consent: Arc::new(store.clone()),
            messages: Arc::new(store.clone()),
            queue: Arc::new(world.queue.clone()),
            pending: Arc::new(store.clone()),
            work: Arc::new(store.clone()),
            shards: 16,
            page: 500,
            budget: StdDuration::from_secs(40),
        };
        let w = World { world, app };
        let second = Contact {
            id: ContactId::parse("C-1002").unwrap(),
            name: "Customer C-1002".into(),
            phone: phone("+12025550144"),
            ..seed.contact
        };
        w.store.put_contact(&second, None).await.unwrap();
        for id in ["C-1001", "C-1002"] {
            w.grant(id, Category::Accounting).await;
        }
        w
    }

    async fn grant(&self, contact: &str, category: Category) {
        let contact = ContactId::parse(contact).unwrap();
        let at = fired_at() - Duration::hours(2);
        let text = grant_by_code(
            &self.store,
            &self.queue,
            (&dealer(), &staff()),
            &contact,
            category,
            at,
        )
        .await;
        // The code text was delivered back then (delivery is not under test here);
        // otherwise dispatch would rightly requeue it as never picked up.
        let mut delivered = text;
        delivered.transition(consent::message::MessageStatus::Sent, at, None);
        self.store.put_message_raw(delivered);
        self.queue.drain();
    }

    /// Staff schedule a Text to Pay reminder an hour before the run.
    async fn schedule(&self, contact: &str, at: DateTime<Utc>) -> Message {
        let variables = json!({"firstName": "Maria", "amount": "412.37", "dueDate": "2026-06-15"});
        let accepted = sending::request_send(
            &self.send_ports(),
            &dealer(),
            Origin::Staff { user: staff() },
            SendRequest {
                contact_id: ContactId::parse(contact).unwrap(),
                ..self.request_for("text-to-pay-reminder", fakes::vars(variables), Some(at))
            },
            None,
            fired_at() - Duration::hours(1),
        )
        .await
        .unwrap();
        assert_eq!(accepted.message.status, MessageStatus::Scheduled);
        accepted.message
    }

    async fn message(&self, id: &consent::MessageId) -> Message {
        self.store.message(id).await.unwrap().unwrap()
    }

    async fn unsubscribe(&self, contact: &str, category: Category) {
        auth::unsubscribe(
            &self.auth(),
            &dealer(),
            &staff(),
            &ContactId::parse(contact).unwrap(),
            category,
            fired_at() - Duration::minutes(30),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn due_scheduled_messages_are_queued_and_marked_queued() {
    // GIVEN reminders due at the run, 30 s into its minute, and two hours later
    let w = World::new().await;
    let now = fired_at();
    let due = w.schedule("C-1001", now).await;
    let due_soon = w.schedule("C-1001", now + Duration::seconds(30)).await;
    let later = w.schedule("C-1001", now + Duration::hours(2)).await;
    assert!(w.queue.sent().is_empty());

    // WHEN the schedule fires
    let report = handle(&w.app, now).await.unwrap();

    // THEN the two due ones are on the outbound queue (delayed to their second) ...
    assert_eq!(report.queued, 2);
    assert_eq!(report.failed, 0);
    let queued = w.queue.sent();
    assert_eq!(queued.len(), 2);
    let delay_of = |m: &Message| {
        queued
            .iter()
            .find(|o| o.envelope.message_id == m.id)
            .map(|o| o.delay_seconds)
    };
    assert_eq!(delay_of(&due), Some(0));
    assert_eq!(delay_of(&due_soon), Some(30));
    for o in &queued {
        assert_eq!(o.envelope.kind, "message.queued");
        assert_eq!(o.envelope.version, 2);
        assert!(
            o.envelope.delivery.is_some(),
            "the envelope carries the delivery snapshot"
        );
        assert_eq!(o.envelope.dealer_id, dealer());
        assert_eq!(o.envelope.time, now);
    }

    // ... and marked queued; the later one still waits
    for m in [&due, &due_soon] {
        let stored = w.message(&m.id).await;
        assert_eq!(stored.status, MessageStatus::Queued);
        assert_eq!(stored.history.last().unwrap().at, now);
    }
    assert_eq!(w.message(&later.id).await.status, MessageStatus::Scheduled);

    // AND the next run finds nothing new to queue
    let report = handle(&w.app, now + Duration::minutes(1)).await.unwrap();
    assert_eq!(report.queued, 0);
    assert_eq!(w.queue.sent().len(), 2);

    // AND the later one goes when it is due
    let report = handle(&w.app, now + Duration::hours(2)).await.unwrap();
    assert_eq!(report.queued, 1);
    assert_eq!(w.message(&later.id).await.status, MessageStatus::Queued);
}

#[tokio::test]
async fn a_due_message_whose_consent_was_revoked_is_suppressed_not_queued() {
    let w = World::new().await;
    let now = fired_at();
    let kept = w.schedule("C-1001", now).await;
    let revoked = w.schedule("C-1002", now).await;
    w.unsubscribe("C-1002", Category::Accounting).await;

    let report = handle(&w.app, now).await.unwrap();

    assert_eq!(report.queued, 1);
    assert_eq!(report.suppressed, 1);
    let queued = w.queue.sent();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].envelope.message_id, kept.id);
    let m = w.message(&revoked.id).await;
    assert_eq!(m.status, MessageStatus::Suppressed);
    assert_eq!(m.status_reason, Some(StatusReason::Revoked));
}

#[tokio::test]
async fn a_message_due_in_quiet_hours_is_deferred_to_the_window() {
    let w = World::new().await;
    // Scheduled for 20:59:30 EDT; the run at 21:00 EDT finds it inside quiet hours.
    let at = Utc.with_ymd_and_hms(2026, 6, 11, 0, 59, 30).unwrap();
    let m = w.schedule("C-1001", at).await;
    let run = Utc.with_ymd_and_hms(2026, 6, 11, 1, 0, 0).unwrap();

    let report = handle(&w.app, run).await.unwrap();

    assert_eq!(report.deferred, 1);
    assert_eq!(report.queued, 0);
    assert!(w.queue.sent().is_empty());
    let stored = w.message(&m.id).await;
    assert_eq!(stored.status, MessageStatus::Deferred);
    assert_eq!(stored.status_reason, Some(StatusReason::QuietHours));
    // 08:00 EDT next morning
    assert_eq!(
        stored.send_at,
        Utc.with_ymd_and_hms(2026, 6, 11, 12, 0, 0).unwrap()
    );

    // AND the morning run queues it
    let report = handle(&w.app, stored.send_at).await.unwrap();
    assert_eq!(report.queued, 1);
    assert_eq!(w.queue.sent().len(), 1);
}

#[tokio::test]
async fn when_the_queue_refuses_the_message_a_later_run_requeues_it() {
    // GIVEN a due message and a queue that refuses the next send
    let w = World::new().await;
    let now = fired_at();
    let m = w.schedule("C-1001", now).await;
    w.queue.fail_next(1);

    // WHEN the schedule fires THEN it is marked queued but the send failed
    let report = handle(&w.app, now).await.unwrap();
    assert_eq!(report.failed, 1);
    assert_eq!(w.message(&m.id).await.status, MessageStatus::Queued);
    assert!(w.queue.sent().is_empty());

    // AND a run a minute later leaves it alone (it may still be on its way)
    let report = handle(&w.app, now + Duration::minutes(1)).await.unwrap();
    assert_eq!(report.requeued, 0);
    assert!(w.queue.sent().is_empty());

    // AND once it counts as lost, a run puts it on the queue again, once
    let report = handle(&w.app, now + Duration::minutes(6)).await.unwrap();
    assert_eq!(report.requeued, 1);
    assert_eq!(w.queue.sent().len(), 1);
    let report = handle(&w.app, now + Duration::minutes(6)).await.unwrap();
    assert_eq!(report.requeued, 0);
    assert_eq!(w.queue.sent().len(), 1);
}

#[tokio::test]
async fn an_authorization_request_never_completed_goes_to_staff_after_a_day_once() {
    // GIVEN a code texted to C-1001 for marketing that nobody ever verified
    let w = World::new().await;
    let ports = w.auth();
    let asked_at = fired_at() - Duration::hours(2);
    auth::request(
        &ports,
        &dealer(),
        &staff(),
        &ContactId::parse("C-1001").unwrap(),
        Category::Marketing,
        asked_at,
    )
    .await
    .unwrap();

    // WHEN the schedule fires the same day THEN nothing is raised yet
    let report = handle(&w.app, fired_at()).await.unwrap();
    assert_eq!(report.follow_ups, 0);

    // WHEN it fires a day after the request THEN one item on the authorizations queue
    let report = handle(
        &w.app,
        asked_at + Duration::hours(24) + Duration::minutes(1),
    )
    .await
    .unwrap();
    assert_eq!(report.follow_ups, 1);
    let items: Vec<_> = w
        .store
        .work_items()
        .into_iter()
        .filter(|i| i.kind == "authorization-pending-too-long")
        .collect();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].queue,
        consent::ports::WorkQueueName::Authorizations
    );
    assert_eq!(
        items[0].contact_id,
        Some(ContactId::parse("C-1001").unwrap())
    );
    assert!(items[0].text.as_deref().unwrap_or("").contains("marketing"));

    // AND later runs do not raise it again
    let report = handle(&w.app, asked_at + Duration::hours(30))
        .await
        .unwrap();
    assert_eq!(report.follow_ups, 0);
}

#[test]
fn a_run_never_plans_past_its_deadline() {
    use std::time::Duration as Std;
    // The template gives dispatch 50 s and it is configured for 40 s of passes: the
    // deadline, less one pass, bounds it.
    assert_eq!(
        dispatch::pass_budget(Std::from_secs(40), Std::from_secs(50)),
        Std::from_secs(35)
    );
    // Plenty of time: the configured budget.
    assert_eq!(
        dispatch::pass_budget(Std::from_secs(40), Std::from_secs(900)),
        Std::from_secs(40)
    );
    // Less than a pass left: no second pass.
    assert_eq!(
        dispatch::pass_budget(Std::from_secs(40), Std::from_secs(10)),
        Std::ZERO
    );
}

/// Consent that never answers (a stalled read): the pass waits on it.
struct Stalled;

#[async_trait::async_trait]
impl consent::ports::ConsentReader for Stalled {
    async fn consent(
        &self,
        _: &DealerId,
        _: &PhoneNumber,
    ) -> Result<consent::ports::Versioned<consent::ledger::ConsentState>, consent::StoreError> {
        std::future::pending().await
    }
    async fn consents(
        &self,
        _: &DealerId,
        _: &[PhoneNumber],
    ) -> Result<
        std::collections::HashMap<PhoneNumber, consent::ledger::ConsentState>,
        consent::StoreError,
    > {
        std::future::pending().await
    }
    async fn history(
        &self,
        _: &DealerId,
        _: &PhoneNumber,
    ) -> Result<Vec<consent::ledger::LedgerEntry>, consent::StoreError> {
        std::future::pending().await
    }
    async fn opted_out(
        &self,
        _: &PhoneNumber,
        _: &PhoneNumber,
    ) -> Result<bool, consent::StoreError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_pass_that_stalls_is_cut_at_the_budget_and_leaves_its_texts_for_a_later_run() {
    // GIVEN a due text and a consent read that never answers
    let mut w = World::new().await;
    let now = fired_at();
    let due = w.schedule("C-1001", now).await;
    w.app.consent = Arc::new(Stalled);

    // WHEN a run with a 40 s budget starts (the clock is tokio's, paused and advanced)
    let started = tokio::time::Instant::now();
    let report = tokio::time::timeout(StdDuration::from_secs(3600), handle(&w.app, now))
        .await
        .expect("the run ends by itself")
        .unwrap();

    // THEN it ends within its budget and the pass reserve, having queued nothing, and the
    // text still waits for the next run
    assert!(started.elapsed() <= StdDuration::from_secs(40) + dispatch::PASS_RESERVE);
    assert_eq!(report.queued, 0);
    assert_eq!(w.message(&due.id).await.status, MessageStatus::Scheduled);
}
