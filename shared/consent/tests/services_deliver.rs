//! Delivery: the deliver worker calling the carrier, retries, failures, opt-outs,
//! quiet hours, stale claims, and replies acted on when delivered again.

use chrono::{Duration, TimeZone, Utc};
use consent::fakes::{
    late_evening, mins, noon, phone, queued_alert, reminder_vars, CarrierScript, World,
    DEALER_NUMBER,
};
use consent::ledger::{Actor, ConsentEvent};
use consent::message::StatusReason;
use consent::message::{MessageKind, MessageStatus};
use consent::ports::WorkQueueName;
use consent::service::authorization::{self as auth};
use consent::service::delivery::DeliverOutcome;
use consent::service::replies::{self, InboundSms, ReplyOutcome};
use consent::Category;

#[tokio::test]
async fn deliver_calls_the_carrier_once_and_records_its_id() {
    // GIVEN a queued text
    let (w, m) = queued_alert().await;

    // WHEN the worker delivers it, and SQS redelivers the record
    let first = w.deliver(&m.id, noon()).await;
    let second = w.deliver(&m.id, noon() + Duration::seconds(30)).await;

    // THEN the carrier got it once, from the dealer's number, and the id is recorded
    let DeliverOutcome::Sent { carrier_message_id } = first else {
        panic!("expected Sent, got {first:?}");
    };
    let sent = w.carrier_copies(&m);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].from, phone(DEALER_NUMBER));
    assert_eq!(sent[0].to, w.phone);
    assert_eq!(sent[0].body, m.body);
    let stored = w.message(&m.id);
    assert_eq!(stored.status, MessageStatus::Sent);
    assert_eq!(
        stored.carrier_message_id.as_deref(),
        Some(carrier_message_id.as_str())
    );
    assert_eq!(stored.attempts, 1);
    // AND the redelivery is skipped
    assert_eq!(
        second,
        DeliverOutcome::Skipped {
            status: Some(MessageStatus::Sent)
        }
    );
}

#[tokio::test]
async fn retryable_carrier_failures_retry_then_send_once() {
    // GIVEN a queued text and a carrier failing the first two attempts
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(2, CarrierScript::Retryable);

    // WHEN the worker delivers it three times
    let a = w.deliver(&m.id, noon()).await;
    let status_between = w.message(&m.id).status;
    let b = w.deliver(&m.id, noon() + Duration::seconds(10)).await;
    let c = w.deliver(&m.id, noon() + Duration::seconds(30)).await;

    // THEN it backs off twice, then it is sent, and the carrier has one copy
    assert_eq!(
        a,
        DeliverOutcome::RetryLater {
            after: std::time::Duration::from_secs(10)
        }
    );
    assert_eq!(status_between, MessageStatus::Queued);
    assert_eq!(
        b,
        DeliverOutcome::RetryLater {
            after: std::time::Duration::from_secs(20)
        }
    );
    assert!(matches!(c, DeliverOutcome::Sent { .. }), "{c:?}");
    assert_eq!(w.carrier_copies(&m).len(), 1);
    let stored = w.message(&m.id);
    assert_eq!(stored.status, MessageStatus::Sent);
    assert_eq!(stored.attempts, 3);
}

#[tokio::test]
async fn a_permanent_carrier_failure_fails_and_goes_to_staff() {
    // GIVEN a queued text and a carrier that refuses it for good
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(1, CarrierScript::Permanent);

    // WHEN the worker delivers it
    let outcome = w.deliver(&m.id, noon()).await;

    // THEN the message failed visibly and a work item on FailedSends points at it
    assert!(
        matches!(outcome, DeliverOutcome::Failed { .. }),
        "{outcome:?}"
    );
    assert_eq!(w.message(&m.id).status, MessageStatus::Failed);
    let items = w.store.work_items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].queue, WorkQueueName::FailedSends);
    assert_eq!(items[0].message_id.as_ref(), Some(&m.id));
    assert_eq!(items[0].contact_id.as_ref(), Some(&w.contact));
    assert!(w.carrier_copies(&m).is_empty());
}

#[tokio::test]
async fn a_carrier_opt_out_suppresses_and_is_recorded_on_the_ledger() {
    // GIVEN a queued text and a carrier that says the number opted out
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(1, CarrierScript::OptedOut);

    // WHEN the worker delivers it
    let outcome = w.deliver(&m.id, noon()).await;

    // THEN the text is suppressed and the block is a ledger entry, so app and carrier agree
    assert!(
        matches!(outcome, DeliverOutcome::Suppressed { .. }),
        "{outcome:?}"
    );
    assert_eq!(w.message(&m.id).status, MessageStatus::Suppressed);
    let by_carrier: Vec<_> = w
        .ledger()
        .into_iter()
        .filter(|e| e.event == ConsentEvent::RevokedByCarrier)
        .collect();
    assert_eq!(by_carrier.len(), 4);
    assert!(by_carrier.iter().all(|e| e.actor == Actor::Carrier));
    assert!(!w
        .consent()
        .await
        .may_send(Category::Accounting)
        .is_allowed());
}

#[tokio::test]
async fn consent_revoked_after_queueing_suppresses_without_calling_the_carrier() {
    // GIVEN a queued text, and accounting unsubscribed in the portal before delivery
    let (w, m) = queued_alert().await;
    w.unsubscribe(Category::Accounting, noon() + Duration::seconds(5))
        .await;

    // WHEN the worker delivers it
    let outcome = w.deliver(&m.id, noon() + Duration::seconds(10)).await;

    // THEN it is suppressed and the carrier is never called
    assert_eq!(
        outcome,
        DeliverOutcome::Suppressed {
            reason: "revoked".into()
        }
    );
    assert_eq!(w.message(&m.id).status, MessageStatus::Suppressed);
    assert!(w.carrier_copies(&m).is_empty());
}

#[tokio::test]
async fn a_text_reaching_the_worker_in_quiet_hours_is_deferred_not_sent() {
    // GIVEN a text queued at noon whose record reaches the worker only at 23:00 local
    let (w, m) = queued_alert().await;

    // WHEN the worker delivers it at 23:00
    let outcome = w.deliver(&m.id, late_evening()).await;

    // THEN it goes back to the time index until 08:00 local, without a carrier call
    let eight = Utc.with_ymd_and_hms(2026, 6, 11, 12, 0, 0).unwrap();
    assert!(
        matches!(&outcome, DeliverOutcome::Deferred { until, reason } if *until == eight && *reason == StatusReason::QuietHours),
        "{outcome:?}"
    );
    let stored = w.message(&m.id);
    assert_eq!(stored.status, MessageStatus::Deferred);
    assert_eq!(stored.send_at, eight);
    assert!(w.carrier_copies(&m).is_empty());
    // AND at 08:00 dispatch queues it again and it is sent
    assert_eq!(w.dispatch(eight).await.queued, 1);
    assert!(matches!(
        w.deliver(&m.id, eight).await,
        DeliverOutcome::Sent { .. }
    ));
    assert_eq!(w.carrier_copies(&m).len(), 1);
}

#[tokio::test]
async fn a_claim_older_than_its_holder_can_live_is_settled_by_the_carriers_list() {
    for list_readable in [true, false] {
        // GIVEN a message a worker claimed at noon and never finished (it died before
        // its carrier call)
        let (w, m) = queued_alert().await;
        let mut stuck = w.message(&m.id);
        stuck.transition(MessageStatus::Sending, noon(), None);
        w.store.put_message_raw(stuck);

        // WHEN the record comes back 80 s later (its worker may still be alive: deliver's
        // timeout is 60 s), THEN it is left alone
        let early = w.deliver(&m.id, noon() + Duration::seconds(80)).await;
        assert_eq!(
            early,
            DeliverOutcome::ClaimHeld {
                stale_in: std::time::Duration::from_secs(10)
            }
        );
        assert!(w.store.work_items().is_empty());

        // WHEN it comes back once the claim is stale (90 s)
        if !list_readable {
            w.carrier.fail_next(1, CarrierScript::ListUnavailable);
        }
        let late = w.deliver(&m.id, noon() + Duration::seconds(91)).await;

        if list_readable {
            // THEN the carrier's list does not have it: claimed again and sent, once
            assert!(matches!(late, DeliverOutcome::Sent { .. }), "{late:?}");
            assert_eq!(w.message(&m.id).status, MessageStatus::Sent);
            assert_eq!(w.carrier_copies(&m).len(), 1);
            assert!(w.store.work_items().is_empty());
        } else {
            // THEN the outcome stays unknown: it fails (the carrier may have it, so it is
            // not sent again) and goes to staff
            assert!(matches!(late, DeliverOutcome::Failed { .. }), "{late:?}");
            assert_eq!(w.message(&m.id).status, MessageStatus::Failed);
            let items = w.store.work_items();
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].queue, WorkQueueName::FailedSends);
            assert_eq!(items[0].message_id.as_ref(), Some(&m.id));
            assert!(w.carrier_copies(&m).is_empty());
        }
    }
}

#[tokio::test]
async fn approval_codes_and_replies_are_delivered_without_consent_even_at_night() {
    // GIVEN a number with no consent and a code text requested at 23:00 local
    let w = World::new().await;
    w.request(Category::Accounting, late_evening())
        .await
        .unwrap();
    let code_text = w.last_code_text();
    let code = w.last_code();

    // WHEN it is delivered at 23:00 local
    let a = w.deliver(&code_text.id, late_evening()).await;

    // THEN it reaches the carrier
    assert!(matches!(a, DeliverOutcome::Sent { .. }), "{a:?}");

    // AND WHEN the person replies STOP and the confirmation is delivered
    w.reply("SM-stop", "STOP", late_evening() + mins(1)).await;
    let confirmation = w.messages_of(MessageKind::Reply).remove(0);
    let b = w.deliver(&confirmation.id, late_evening() + mins(1)).await;

    // THEN the confirmation reaches the carrier too, though every category is revoked
    assert!(matches!(b, DeliverOutcome::Sent { .. }), "{b:?}");
    // AND the phone got the code text with the code in it (the stored one is masked)
    let inbox = w.carrier.inbox(&w.phone);
    let texted = code_text.body.replace("******", code.reveal());
    assert_eq!(inbox, vec![texted, confirmation.body]);
    // AND once it went, the store keeps no sealed code either
    assert_eq!(w.message(&code_text.id).code, None);
}

/// A texting queue that is down: every add fails like an unreachable table.
struct DownWorkQueue;

#[derive(Debug)]
struct Down;

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("down")
    }
}

impl std::error::Error for Down {}

#[async_trait::async_trait]
impl consent::ports::WorkQueue for DownWorkQueue {
    async fn add_item(&self, _: &consent::ports::WorkItem) -> consent::ports::StoreResult<()> {
        Err(consent::StoreError::unavailable("work queue", Down))
    }
}

#[tokio::test]
async fn a_reply_that_failed_is_acted_on_when_it_is_delivered_again() {
    // GIVEN the texting queues are down when a free-text reply arrives
    let w = World::new().await;
    let sms = InboundSms {
        carrier_message_id: "SM-retry".into(),
        from: w.phone.clone(),
        to: phone(DEALER_NUMBER),
        body: "Is my car ready?".into(),
    };
    let mut ports = w.inbound();
    ports.work = &DownWorkQueue;
    // WHEN it is handled THEN it fails (the stored webhook stays on the inbound queue)
    assert!(replies::handle_inbound(&ports, &sms, noon()).await.is_err());
    // AND the queue's redelivery of the same MessageSid is acted on, not dropped as a duplicate
    assert_eq!(
        replies::handle_inbound(&w.inbound(), &sms, noon())
            .await
            .unwrap(),
        ReplyOutcome::Queued
    );
    assert_eq!(w.store.work_items().len(), 1);
}

#[tokio::test]
async fn stop_after_a_portal_unsubscribe_is_recorded_and_confirmed_once() {
    // GIVEN every category unsubscribed in the portal
    let w = World::new().await;
    for c in Category::ALL {
        auth::unsubscribe(&w.auth(), &w.dealer, &w.staff, &w.contact, c, noon())
            .await
            .unwrap();
    }
    // WHEN the person texts STOP
    let outcome = w.reply("SM-stop-1", "STOP", noon() + mins(1)).await;
    // THEN their own revocation is on the ledger for every category, with one confirmation
    match outcome {
        ReplyOutcome::OptedOut { revoked, .. } => assert_eq!(revoked.len(), 4),
        other => panic!("expected an opt-out, got {other:?}"),
    }
    let by_reply = w
        .ledger()
        .iter()
        .filter(|e| e.event == ConsentEvent::RevokedByReply)
        .count();
    assert_eq!(by_reply, 4);
    assert_eq!(w.messages_of(MessageKind::Reply).len(), 1);
    // AND a second STOP is on the ledger (four more entries) but sends nothing more
    w.reply("SM-stop-2", "stop", noon() + mins(2)).await;
    assert_eq!(w.ledger().len(), 12);
    assert_eq!(w.messages_of(MessageKind::Reply).len(), 1);
    // AND START restores nothing the portal removed
    w.reply("SM-start", "START", noon() + mins(3)).await;
    assert!(w.consent().await.authorized().is_empty());
}

#[tokio::test]
async fn the_confirm_request_carries_its_marker_from_the_start() {
    // GIVEN a sent Text to Pay reminder and a PAY reply
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let reminder = w
        .send("text-to-pay-reminder", reminder_vars(), None, noon())
        .await
        .unwrap()
        .message;
    w.deliver(&reminder.id, noon()).await;
    w.reply("SM-pay", "PAY", noon() + mins(1)).await;
    // THEN the queued CONFIRM request already names what it confirms (no later rewrite
    // that a delivery worker could race)
    let ask = w
        .messages_of(MessageKind::Reply)
        .into_iter()
        .find(|m| m.template.as_deref() == Some(replies::PAY_CONFIRM_MARKER))
        .expect("a CONFIRM request");
    assert_eq!(ask.status, MessageStatus::Queued);
    assert_eq!(ask.history.len(), 1);
    assert_eq!(ask.contact_id, Some(w.contact.clone()));
}
