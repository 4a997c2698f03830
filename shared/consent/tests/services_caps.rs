//! Frequency caps: a state's marketing cap defers, never drops, and is checked again
//! at delivery.

use chrono::{DateTime, Duration, Utc};
use consent::fakes::{mins, noon, offer_vars, past_due_vars, World};
use consent::message::StatusReason;
use consent::message::{MessageKind, MessageStatus};
use consent::service::delivery::DeliverOutcome;
use consent::service::sending::{self};
use consent::{Category, MessageId};

/// Miami (+1 305): Florida allows at most 3 marketing texts in any 24 hours.
const MIAMI: &str = "+13055550143";

/// 12:00 EDT in Miami on Wednesday 2026-06-10, plus `h` hours.
fn miami(h: i64) -> DateTime<Utc> {
    noon() + Duration::hours(h)
}

async fn florida_marketing() -> World {
    let w = World::with_customer(MIAMI).await;
    w.grant(Category::Marketing, noon() - mins(5)).await;
    w.grant(Category::Accounting, noon() - mins(4)).await;
    w
}

#[tokio::test]
async fn a_fourth_marketing_text_in_24_hours_to_florida_is_deferred_never_dropped() {
    // GIVEN three marketing texts to a Miami number sent at 12:00, 13:00, 14:00
    let w = florida_marketing().await;
    for h in 0..3 {
        let m = w
            .send("marketing-offer", offer_vars(), None, miami(h))
            .await
            .unwrap()
            .message;
        assert_eq!(m.status, MessageStatus::Queued, "text {h}");
        assert!(matches!(
            w.deliver(&m.id, miami(h)).await,
            DeliverOutcome::Sent { .. }
        ));
    }

    // WHEN staff send a fourth at 15:00
    let fourth = w
        .send("marketing-offer", offer_vars(), None, miami(3))
        .await
        .unwrap()
        .message;

    // THEN it is deferred, with the reason, to 24 hours after the first: 12:00 next day
    assert_eq!(fourth.status, MessageStatus::Deferred);
    assert_eq!(fourth.status_reason, Some(StatusReason::FrequencyCap));
    assert_eq!(fourth.send_at, miami(24));
    // AND an accounting text is not capped
    let bill = w
        .send("past-due-alert", past_due_vars(), None, miami(3))
        .await
        .unwrap()
        .message;
    assert_eq!(bill.status, MessageStatus::Queued);
    // AND dispatch sends the fourth at 12:00 the next day, not before
    assert_eq!(w.dispatch(miami(23)).await.queued, 0);
    assert_eq!(w.dispatch(miami(24)).await.queued, 1);
    assert!(matches!(
        w.deliver(&fourth.id, miami(24)).await,
        DeliverOutcome::Sent { .. }
    ));
}

#[tokio::test]
async fn texts_accepted_together_go_as_planned_though_each_goes_a_little_late() {
    // GIVEN five offers accepted at 12:00 Miami: three queued, two deferred to 24 hours
    // after the first two
    let w = florida_marketing().await;
    let mut queued = Vec::new();
    let mut deferred = Vec::new();
    for _ in 0..5 {
        let m = w
            .send("marketing-offer", offer_vars(), None, miami(0))
            .await
            .unwrap()
            .message;
        match m.status {
            MessageStatus::Queued => queued.push(m),
            MessageStatus::Deferred => deferred.push(m),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((queued.len(), deferred.len()), (3, 2));
    // WHEN the queued ones go a few seconds after their planned time (the number's
    // rate, the queue), the last one 20 seconds late
    for (k, m) in queued.iter().enumerate() {
        let late = miami(0) + Duration::seconds(5 + 5 * k as i64);
        // THEN each still goes: the texts deferred after it were planned around it
        assert!(
            matches!(w.deliver(&m.id, late).await, DeliverOutcome::Sent { .. }),
            "text {k}"
        );
    }
    // AND the deferred ones, due 24 hours after the first two were planned, wait again
    // until 24 hours after those actually went: never four in 24 hours at the phone
    assert_eq!(w.dispatch(miami(24)).await.queued, 2);
    for m in &deferred {
        let outcome = w.deliver(&m.id, miami(24)).await;
        assert!(
            matches!(outcome, DeliverOutcome::Deferred { .. }),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn texts_scheduled_ahead_count_against_the_cap() {
    // GIVEN three marketing texts scheduled for tomorrow 09:00, 10:00 and 11:00 Miami
    let w = florida_marketing().await;
    for h in [21, 22, 23] {
        let m = w
            .send("marketing-offer", offer_vars(), Some(miami(h)), miami(0))
            .await
            .unwrap()
            .message;
        assert_eq!(m.status, MessageStatus::Scheduled);
    }
    // WHEN staff send one now (12:00): the period 12:00-12:00 would hold four
    let now = w
        .send("marketing-offer", offer_vars(), None, miami(0))
        .await
        .unwrap()
        .message;
    // THEN it waits until 24 hours after tomorrow's 09:00 text
    assert_eq!(now.status, MessageStatus::Deferred);
    assert_eq!(now.status_reason, Some(StatusReason::FrequencyCap));
    assert_eq!(now.send_at, miami(21 + 24));
    // AND a canceled one stops counting: the next send goes now
    let first = w.messages_of(MessageKind::Template)[0].clone();
    sending::cancel(&w.store, &w.dealer, &first.id, miami(0))
        .await
        .unwrap();
    let after_cancel = w
        .send("marketing-offer", offer_vars(), None, miami(0))
        .await
        .unwrap()
        .message;
    assert_eq!(after_cancel.status, MessageStatus::Queued);
}

#[tokio::test]
async fn delivery_checks_the_cap_again_and_defers_a_text_that_would_be_the_fourth() {
    // GIVEN three marketing texts accepted at the same moment by racing requests (each
    // saw two before it), queued together with a fourth sent earlier
    let w = florida_marketing().await;
    let early = w
        .send("marketing-offer", offer_vars(), None, miami(0))
        .await
        .unwrap()
        .message;
    assert!(matches!(
        w.deliver(&early.id, miami(0)).await,
        DeliverOutcome::Sent { .. }
    ));
    let mut racing = Vec::new();
    for _ in 0..2 {
        racing.push(
            w.send("marketing-offer", offer_vars(), None, miami(1))
                .await
                .unwrap()
                .message,
        );
    }
    // The third racer's accept did not see the second (written as a race would leave it).
    let mut third = racing[1].clone();
    third.id = MessageId::generate();
    w.store.put_message_raw(third.clone());

    // WHEN the worker delivers them one after another
    let mut outcomes = Vec::new();
    for m in [&racing[0], &racing[1], &third] {
        outcomes.push(w.deliver(&m.id, miami(1)).await);
    }

    // THEN two go and the one that would be the fourth is deferred to 24 hours after
    // the first text, with the reason
    let sent = outcomes
        .iter()
        .filter(|o| matches!(o, DeliverOutcome::Sent { .. }))
        .count();
    assert_eq!(sent, 2, "{outcomes:?}");
    let deferred: Vec<_> = [&racing[0], &racing[1], &third]
        .into_iter()
        .map(|m| w.message(&m.id))
        .filter(|m| m.status == MessageStatus::Deferred)
        .collect();
    assert_eq!(deferred.len(), 1, "{outcomes:?}");
    assert_eq!(deferred[0].send_at, miami(24));
    assert_eq!(deferred[0].status_reason, Some(StatusReason::FrequencyCap));
    assert!(outcomes.contains(&DeliverOutcome::Deferred {
        until: miami(24),
        reason: "frequency-cap".into()
    }));
    assert_eq!(
        w.carrier_copies(&early).len(),
        3,
        "three offers reached the phone"
    );
}

#[tokio::test]
async fn a_washington_number_has_no_cap() {
    // GIVEN a D.C. number (no state cap) with marketing authorized
    let w = World::new().await;
    w.grant(Category::Marketing, noon() - mins(5)).await;
    // WHEN five marketing texts are sent within an hour THEN all are queued
    for i in 0..5 {
        let m = w
            .send("marketing-offer", offer_vars(), None, noon() + mins(i))
            .await
            .unwrap()
            .message;
        assert_eq!(m.status, MessageStatus::Queued);
    }
}
