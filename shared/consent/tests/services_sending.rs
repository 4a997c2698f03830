//! Sending: consent and template checks, idempotency keys, schedules and quiet hours,
//! cancelation, number changes, suppression, and deleting a contact's waiting texts.

use chrono::{DateTime, Duration, TimeZone, Utc};
use consent::fakes::{
    late_evening, mins, noon, offer_vars, past_due_vars, phone, reminder_vars, World, DEALER_NUMBER,
};
use consent::ledger::ConsentStatus;
use consent::message::StatusReason;
use consent::message::{MessageKind, MessageStatus, Origin};
use consent::ports::WorkQueueName;
use consent::service::delivery::{self, DeliverOutcome};
use consent::service::replies::ReplyOutcome;
use consent::service::sending::{self, SendAccepted};
use consent::{Category, DealerId, DomainError};

#[tokio::test]
async fn a_template_of_a_category_the_number_has_not_authorized_is_refused() {
    // GIVEN only accounting authorized
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;

    // WHEN staff send a marketing offer
    let result = w.send("marketing-offer", offer_vars(), None, noon()).await;

    // THEN consent for marketing is required and nothing is stored
    assert!(
        matches!(
            result,
            Err(DomainError::ConsentRequired {
                category: Category::Marketing
            })
        ),
        "{result:?}"
    );
    assert!(w.messages_of(MessageKind::Template).is_empty());
}

#[tokio::test]
async fn missing_template_variables_are_a_render_error() {
    // GIVEN accounting authorized
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let mut variables = past_due_vars();
    variables.remove("paymentUrl");

    // WHEN staff send a past due alert without its payment link
    let result = w.send("past-due-alert", variables, None, noon()).await;

    // THEN the render error names the missing variable and nothing is stored
    match result {
        Err(DomainError::Render(consent::template::RenderError::MissingVariables(names))) => {
            assert_eq!(names, vec!["paymentUrl".to_owned()]);
        }
        other => panic!("expected a render error, got {other:?}"),
    }
    assert!(w.messages_of(MessageKind::Template).is_empty());
}

/// A Past Due Alert sent with idempotency key K-1 (the same body each time).
async fn send_with_k1(w: &World, at: DateTime<Utc>) -> SendAccepted {
    w.send_with_key(
        "past-due-alert",
        past_due_vars(),
        None,
        Some(("K-1", "body-a")),
        at,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_replays_the_first_message() {
    // GIVEN a send with key K
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let first = send_with_k1(&w, noon()).await;
    assert!(!first.replayed);

    // WHEN the same request comes again with K
    let second = send_with_k1(&w, noon() + mins(1)).await;

    // THEN it is the first message again; one message is stored
    assert!(second.replayed);
    assert_eq!(second.message.id, first.message.id);
    assert_eq!(w.messages_of(MessageKind::Template).len(), 1);
    // AND it goes to the person once, though the retry handed it to the queue again (the
    // first request may have died before it did)
    let queued = w.queued_ids();
    assert_eq!(
        queued.iter().filter(|id| **id == first.message.id).count(),
        2
    );
    let outcomes = [
        w.deliver(&first.message.id, noon() + mins(2)).await,
        w.deliver(&first.message.id, noon() + mins(2)).await,
    ];
    assert!(
        matches!(outcomes[0], DeliverOutcome::Sent { .. }),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes[1],
        DeliverOutcome::Skipped {
            status: Some(MessageStatus::Sent)
        }
    );
    assert_eq!(w.carrier_copies(&first.message).len(), 1);
}

#[tokio::test]
async fn a_retried_send_whose_first_request_died_before_the_queue_queues_it_at_once() {
    // GIVEN a send stored `queued` by a request that died before it reached the queue
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let first = send_with_k1(&w, noon()).await;
    w.queue.drain();

    // WHEN the portal retries it with the same key
    let again = send_with_k1(&w, noon()).await;

    // THEN the text is on the queue now, not after dispatch's five-minute requeue, and goes
    assert!(again.replayed);
    assert_eq!(w.queued_ids(), vec![first.message.id.clone()]);
    let sent = w.deliver(&first.message.id, noon()).await;
    assert!(matches!(sent, DeliverOutcome::Sent { .. }), "{sent:?}");

    // AND a retry once the text is on its way queues nothing more
    w.queue.drain();
    let late = send_with_k1(&w, noon() + mins(1)).await;
    assert!(late.replayed);
    assert!(w.queued_ids().is_empty());
    assert_eq!(w.carrier_copies(&first.message).len(), 1);
}

#[tokio::test]
async fn the_same_idempotency_key_with_another_body_is_refused() {
    // GIVEN a send with key K
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.send_with_key(
        "past-due-alert",
        past_due_vars(),
        None,
        Some(("K-1", "body-a")),
        noon(),
    )
    .await
    .unwrap();

    // WHEN another request reuses K
    let result = w
        .send_with_key(
            "text-to-pay-reminder",
            reminder_vars(),
            None,
            Some(("K-1", "body-b")),
            noon(),
        )
        .await;

    // THEN it is refused and nothing new is stored
    assert!(
        matches!(result, Err(DomainError::IdempotencyKeyReused)),
        "{result:?}"
    );
    assert_eq!(w.messages_of(MessageKind::Template).len(), 1);
}

#[tokio::test]
async fn a_schedule_more_than_a_minute_in_the_past_is_invalid() {
    // GIVEN accounting authorized
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;

    // WHEN staff schedule a text 61 s in the past
    let result = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() - Duration::seconds(61)),
            noon(),
        )
        .await;

    // THEN it is invalid
    assert!(matches!(result, Err(DomainError::Invalid(_))), "{result:?}");
    assert!(w.messages_of(MessageKind::Template).is_empty());

    // AND 30 s in the past is clock skew: it goes now
    let ok = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() - Duration::seconds(30)),
            noon(),
        )
        .await
        .unwrap();
    assert_eq!(ok.message.status, MessageStatus::Queued);
}

#[tokio::test]
async fn a_send_at_23_00_local_is_deferred_to_08_00_the_next_morning() {
    // GIVEN accounting authorized
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let queued_before = w.queue.sent().len();

    // WHEN staff send a text at 23:00 in the recipient's zone
    let m = w
        .send("past-due-alert", past_due_vars(), None, late_evening())
        .await
        .unwrap()
        .message;

    // THEN it is deferred, visibly, to 08:00 local the next day, and not queued
    assert_eq!(m.status, MessageStatus::Deferred);
    assert_eq!(m.status_reason, Some(StatusReason::QuietHours));
    assert_eq!(
        m.send_at,
        consent::Zone::named("America/New_York")
            .unwrap()
            .with_ymd_and_hms(2026, 6, 11, 8, 0, 0)
            .unwrap()
    );
    assert_eq!(
        m.send_at,
        Utc.with_ymd_and_hms(2026, 6, 11, 12, 0, 0).unwrap()
    );
    assert_eq!(w.queue.sent().len(), queued_before);
    // AND dispatch leaves it until then, and queues it at 08:00
    assert_eq!(w.dispatch(late_evening() + mins(60)).await.queued, 0);
    assert_eq!(w.dispatch(m.send_at).await.queued, 1);
    assert_eq!(w.message(&m.id).status, MessageStatus::Queued);
}

#[tokio::test]
async fn a_scheduled_message_can_be_canceled_but_a_queued_one_cannot() {
    // GIVEN a scheduled text and a queued text
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let scheduled = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(90)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    let queued = w
        .send("past-due-alert", past_due_vars(), None, noon())
        .await
        .unwrap()
        .message;

    // WHEN staff cancel both
    let canceled = sending::cancel(&w.store, &w.dealer, &scheduled.id, noon() + mins(1))
        .await
        .unwrap();
    let refused = sending::cancel(&w.store, &w.dealer, &queued.id, noon() + mins(1)).await;

    // THEN the scheduled one is canceled and dispatch never queues it
    assert_eq!(canceled.status, MessageStatus::Canceled);
    assert_eq!(w.message(&scheduled.id).status, MessageStatus::Canceled);
    assert_eq!(w.dispatch(noon() + mins(90)).await.queued, 0);
    assert!(!w.queued_ids().contains(&scheduled.id));
    // AND the queued one cannot be canceled
    match refused {
        Err(DomainError::NotCancelable { status }) => assert_eq!(status, "queued"),
        other => panic!("expected NotCancelable, got {other:?}"),
    }
    assert_eq!(w.message(&queued.id).status, MessageStatus::Queued);
}

#[tokio::test]
async fn texts_made_before_the_dealer_changed_its_number_go_from_the_new_one() {
    // GIVEN a queued text (its queue record made) and a scheduled text, from the dealer's
    // number
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let queued = w
        .send("past-due-alert", past_due_vars(), None, noon())
        .await
        .unwrap()
        .message;
    let record = w
        .queue
        .sent()
        .into_iter()
        .map(|o| o.envelope)
        .find(|e| e.message_id == queued.id)
        .expect("the queued text's record");
    let scheduled = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(90)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    assert_eq!(queued.from, phone(DEALER_NUMBER));

    // WHEN the dealer changes its texting number, releasing the old one
    let new_number = phone("+12025550177");
    w.move_dealer_to(&new_number).await;

    // THEN the queued text's old record delivers it from the new number
    let outcome = delivery::deliver_envelope(&w.deliver_ports(), &record, None, noon() + mins(1))
        .await
        .unwrap();
    assert!(
        matches!(outcome, DeliverOutcome::Sent { .. }),
        "{outcome:?}"
    );
    let sent = w.carrier_copies(&w.message(&queued.id));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].from, new_number);
    assert_eq!(w.message(&queued.id).from, new_number);
    // AND the scheduled one, when due, goes from the new number too
    assert_eq!(w.dispatch(noon() + mins(90)).await.queued, 1);
    w.deliver(&scheduled.id, noon() + mins(90)).await;
    assert_eq!(w.message(&scheduled.id).status, MessageStatus::Sent);
    let sent = w.carrier_copies(&w.message(&scheduled.id));
    assert_eq!(sent.len(), 2, "the two texts (same words)");
    assert!(sent.iter().all(|s| s.from == new_number), "{sent:?}");
}

#[tokio::test]
async fn another_dealers_message_is_not_found() {
    // GIVEN a scheduled text of our dealer
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let m = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(90)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    let other = DealerId::parse("other-dealer").unwrap();

    // WHEN another dealer reads or cancels it
    let read = sending::message_of(&w.store, &other, &m.id).await;
    let cancel = sending::cancel(&w.store, &other, &m.id, noon()).await;

    // THEN it does not exist for them, and it is unchanged
    assert!(
        matches!(read, Err(DomainError::NotFound { .. })),
        "{read:?}"
    );
    assert!(
        matches!(cancel, Err(DomainError::NotFound { .. })),
        "{cancel:?}"
    );
    assert_eq!(w.message(&m.id).status, MessageStatus::Scheduled);
}

#[tokio::test]
async fn a_queue_failure_leaves_an_immediate_send_scheduled_not_lost() {
    // GIVEN accounting authorized and a queue that refuses the next send
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.queue.fail_next(1);

    // WHEN staff send now
    let m = w
        .send("past-due-alert", past_due_vars(), None, noon())
        .await
        .unwrap()
        .message;

    // THEN the message waits in the time index, due now
    assert_eq!(m.status, MessageStatus::Scheduled);
    assert_eq!(m.status_reason, Some(StatusReason::QueueUnavailable));
    assert_eq!(w.message(&m.id).status, MessageStatus::Scheduled);
    assert!(!w.queued_ids().contains(&m.id));
    // AND the next dispatch run queues it
    assert_eq!(w.dispatch(noon() + mins(1)).await.queued, 1);
    assert!(w.queued_ids().contains(&m.id));
}

#[tokio::test]
async fn an_automated_send_without_consent_is_recorded_suppressed_once() {
    // GIVEN a contact with no consent
    let w = World::new().await;
    let event = || w.request_for("auto-pay-failure", past_due_vars(), None);
    let work = &w.store;
    let auto = |now| {
        let ports = w.send_ports();
        let dealer = w.dealer.clone();
        async move {
            sending::automated_send(
                &ports,
                work,
                &dealer,
                "AutoPayFailed",
                &consent::message::EventKey::parse("evt-42").unwrap(),
                event(),
                now,
            )
            .await
        }
    };

    // WHEN the DMS event arrives, and is delivered again
    let first = auto(noon()).await.unwrap();
    let second = auto(noon() + mins(1)).await.unwrap();

    // THEN one suppressed message records why, and the redelivery replays it
    assert_eq!(first.message.status, MessageStatus::Suppressed);
    assert_eq!(
        first.message.status_reason,
        Some(StatusReason::ConsentRequired(Category::Accounting))
    );
    assert!(
        matches!(first.message.origin, Origin::Automation { ref event_id, .. } if event_id == "evt-42")
    );
    assert!(second.replayed);
    assert_eq!(second.message.id, first.message.id);
    assert_eq!(w.messages_of(MessageKind::Template).len(), 1);
    assert!(w.queue.sent().is_empty());
    // AND one item on the automation-failures queue tells staff why, once
    let items: Vec<_> = w
        .store
        .work_items()
        .into_iter()
        .filter(|i| i.queue == WorkQueueName::AutomationFailures)
        .collect();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].message_id.as_ref(), Some(&first.message.id));
    assert_eq!(
        items[0].text.as_deref(),
        Some("AutoPayFailed: consent-required: accounting")
    );
}

#[tokio::test]
async fn deleting_a_contact_cancels_its_waiting_texts_and_voids_its_requests() {
    // GIVEN accounting authorized with a text scheduled for tomorrow, and a marketing
    // request pending (its code texted)
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let scheduled = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + Duration::hours(24)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    assert_eq!(scheduled.status, MessageStatus::Scheduled);
    w.request(Category::Marketing, noon()).await.unwrap();

    // WHEN staff delete the contact
    let removed = consent::service::contacts::remove(
        &w.contacts_ports(),
        &w.dealer,
        &w.contact,
        noon() + mins(1),
    )
    .await
    .unwrap();

    // THEN its scheduled text is canceled and its request void, in that operation
    assert_eq!((removed.canceled, removed.voided), (1, 1));
    assert_eq!(w.message(&scheduled.id).status, MessageStatus::Canceled);
    // AND dispatch sends nothing tomorrow
    assert_eq!(w.dispatch(noon() + Duration::hours(25)).await.queued, 0);
    // AND an Agree afterwards grants nothing (it goes to staff)
    let agreed = w.reply("SM-after-delete", "Agree", noon() + mins(2)).await;
    assert!(!matches!(agreed, ReplyOutcome::Agreed(_)), "{agreed:?}");
    // AND the number's evidence stays
    assert_eq!(
        w.status_of(Category::Accounting).await,
        ConsentStatus::Authorized
    );
}
