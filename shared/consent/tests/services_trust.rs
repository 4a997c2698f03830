//! Trust: the defects of issue 13, each proven here (lost and unanswered carrier
//! calls, crashes mid-reply, resends, number owner changes, carrier blocks).

use chrono::{DateTime, Duration, Utc};
use consent::approval::PendingAuthorization;
use consent::fakes::{
    mins, noon, past_due_vars, phone, queued_alert, reminder_vars, wrong, CarrierScript,
    InMemoryStore, World, DEALER_NAME, DEALER_NUMBER,
};
use consent::ledger::ConsentEvent;
use consent::message::{Message, MessageKind, MessageStatus, OutboundEnvelope};
use consent::ports::{ConsentReader, Contact, ContactStore, Dealer, DealerStore, WorkQueueName};
use consent::service::authorization::{self as auth};
use consent::service::delivery::{self, DeliverOutcome};
use consent::service::replies::{self, InboundSms, ReplyOutcome};
use consent::{Category, DealerId, DomainError, MessageId, PhoneNumber};
use serde_json::json;

#[tokio::test]
async fn a_carrier_that_took_the_text_but_never_answered_is_found_in_its_list_not_sent_again() {
    // GIVEN a queued text and a carrier that accepts it, then never answers in time
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(1, CarrierScript::AcceptThenTimeout);

    // WHEN the worker delivers it, and SQS hands the record out again
    let first = w.deliver(&m.id, noon()).await;
    let again = w.deliver(&m.id, noon() + Duration::seconds(40)).await;

    // THEN the carrier's message list shows it took the text: sent, with the carrier's id
    let DeliverOutcome::Sent { carrier_message_id } = first else {
        panic!("expected Sent, got {first:?}");
    };
    assert!(matches!(again, DeliverOutcome::Skipped { .. }), "{again:?}");
    // AND the phone got the text exactly once, and nobody is asked to look at it
    assert_eq!(w.carrier_copies(&m).len(), 1);
    let stored = w.message(&m.id);
    assert_eq!(stored.status, MessageStatus::Sent);
    assert_eq!(stored.carrier_message_id, Some(carrier_message_id));
    assert!(w.store.work_items().is_empty());
}

#[tokio::test]
async fn a_text_lost_on_its_way_to_the_carrier_is_sent_once_more_after_the_list_says_so() {
    // GIVEN a carrier that never got the request and never answered
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(1, CarrierScript::LostThenTimeout);

    // WHEN the worker delivers it
    let outcome = w.deliver(&m.id, noon()).await;

    // THEN the list did not have it, so it was sent once more: one copy at the phone
    assert!(
        matches!(outcome, DeliverOutcome::Sent { .. }),
        "{outcome:?}"
    );
    assert_eq!(w.carrier_copies(&m).len(), 1);
    assert_eq!(w.message(&m.id).status, MessageStatus::Sent);
}

#[tokio::test]
async fn an_unknown_outcome_the_list_cannot_settle_goes_to_staff_never_a_second_text() {
    // GIVEN a carrier that takes the text without answering and whose list is down
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(1, CarrierScript::AcceptThenTimeout);
    w.carrier.fail_next(1, CarrierScript::ListUnavailable);

    // WHEN the worker delivers it, and the record comes again
    let first = w.deliver(&m.id, noon()).await;
    let again = w.deliver(&m.id, noon() + Duration::seconds(40)).await;

    // THEN it fails to staff, and the phone has exactly the one copy the carrier took
    assert!(matches!(first, DeliverOutcome::Failed { .. }), "{first:?}");
    assert!(matches!(again, DeliverOutcome::Skipped { .. }), "{again:?}");
    assert_eq!(w.carrier_copies(&m).len(), 1);
    assert_eq!(w.message(&m.id).status, MessageStatus::Failed);
    let items = w.store.work_items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].queue, WorkQueueName::FailedSends);
    assert_eq!(items[0].message_id.as_ref(), Some(&m.id));
}

#[tokio::test]
async fn a_text_lost_twice_goes_to_staff_after_one_more_try() {
    // GIVEN a carrier that loses the request twice
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(2, CarrierScript::LostThenTimeout);

    // WHEN the worker delivers it
    let outcome = w.deliver(&m.id, noon()).await;

    // THEN one more try, not a third: the message fails to staff, the phone got nothing
    assert!(
        matches!(outcome, DeliverOutcome::Failed { .. }),
        "{outcome:?}"
    );
    assert!(w.carrier_copies(&m).is_empty());
    assert_eq!(w.store.work_items().len(), 1);
}

#[tokio::test]
async fn a_busy_carrier_429_is_never_an_attempt() {
    // GIVEN a carrier answering 429 (over the account's concurrency) ten times in a row,
    // more than the attempts a text has
    let (w, m) = queued_alert().await;
    w.carrier.fail_next(10, CarrierScript::Throttled);

    // WHEN the text is delivered until it goes
    let mut outcomes = Vec::new();
    for i in 0..11 {
        outcomes.push(w.deliver(&m.id, noon() + Duration::seconds(2 * i)).await);
    }

    // THEN each 429 put it back to wait in the queue, and the eleventh try sent it
    for o in &outcomes[..10] {
        assert_eq!(
            o,
            &DeliverOutcome::WaitInQueue {
                why: delivery::WaitReason::CarrierBusy
            }
        );
    }
    assert!(
        matches!(outcomes[10], DeliverOutcome::Sent { .. }),
        "{:?}",
        outcomes[10]
    );
    // AND only the call that went counts as an attempt; nothing went to staff
    let stored = w.message(&m.id);
    assert_eq!(stored.attempts, 1);
    assert!(w.store.work_items().is_empty());
    assert_eq!(w.carrier_copies(&m).len(), 1);
}

#[tokio::test]
async fn a_code_text_that_fails_voids_its_request() {
    // GIVEN a code text the carrier refuses
    let w = World::new().await;
    w.request(Category::Accounting, noon()).await.unwrap();
    let code = w.last_code();
    let text = w.last_code_text();
    w.carrier.fail_next(1, CarrierScript::Permanent);

    // WHEN it is delivered
    let outcome = w.deliver(&text.id, noon()).await;

    // THEN it failed, its request is void (nobody received that code) and the stored
    // message keeps no sealed code
    assert!(
        matches!(outcome, DeliverOutcome::Failed { .. }),
        "{outcome:?}"
    );
    assert!(matches!(
        w.verify(Category::Accounting, &code, noon() + mins(1))
            .await,
        Err(DomainError::NoPendingRequest)
    ));
    assert_eq!(w.message(&text.id).code, None);
    // AND the failed-sends item says why without the text
    let items = w.store.work_items();
    assert_eq!(items.len(), 1);
    assert!(!items[0]
        .text
        .as_deref()
        .unwrap_or("")
        .contains(code.reveal()));
}

#[tokio::test]
async fn a_queue_record_that_lies_about_the_message_sends_nothing() {
    // GIVEN a marketing text the person never authorized, queued (as a bug or an
    // attacker with queue access would leave it)
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let m = w
        .send("past-due-alert", past_due_vars(), None, noon())
        .await
        .unwrap()
        .message;
    let sent_before = w.carrier.sent().len();

    // WHEN its queue record claims it is a consent-exempt reply, or to another number,
    // or says something else
    for forge in [
        |s: &mut consent::message::DeliverySnapshot| s.kind = MessageKind::Reply,
        |s: &mut consent::message::DeliverySnapshot| s.to = phone("+13125550199"),
        |s: &mut consent::message::DeliverySnapshot| s.body = "Click evil.example".into(),
        |s: &mut consent::message::DeliverySnapshot| s.category = Category::Marketing,
    ] {
        let mut envelope = OutboundEnvelope::for_message(&m, noon());
        forge(envelope.delivery.as_mut().unwrap());
        let outcome = delivery::deliver_envelope(&w.deliver_ports(), &envelope, None, noon())
            .await
            .unwrap();
        // THEN nothing is sent and the message stays as stored
        assert_eq!(outcome, DeliverOutcome::Skipped { status: None });
    }
    assert_eq!(w.carrier.sent().len(), sent_before);
    assert_eq!(w.message(&m.id).status, MessageStatus::Queued);
    // AND the true record still goes
    assert!(matches!(
        w.deliver(&m.id, noon()).await,
        DeliverOutcome::Sent { .. }
    ));
}

/// A reminder answered PAY, and the "reply CONFIRM" request delivered: the request.
async fn pay_requested(w: &World) -> Message {
    w.grant(Category::Accounting, noon()).await;
    let reminder = w
        .send("text-to-pay-reminder", reminder_vars(), None, noon())
        .await
        .unwrap()
        .message;
    w.deliver(&reminder.id, noon()).await;
    w.reply("SM-pay", "PAY", noon() + mins(5)).await;
    let ask = w
        .messages_of(MessageKind::Reply)
        .into_iter()
        .find(|m| m.template.as_deref() == Some(replies::PAY_CONFIRM_MARKER))
        .unwrap();
    w.deliver(&ask.id, noon() + mins(5)).await;
    ask
}

#[tokio::test]
async fn confirm_twice_is_one_payment_request() {
    // GIVEN a pay request waiting for CONFIRM
    let w = World::new().await;
    let ask = pay_requested(&w).await;

    // WHEN CONFIRM is handled but its answer cannot be queued (the delivery fails after
    // the event was published) and the same MessageSid is delivered again
    let sms = InboundSms {
        carrier_message_id: "SM-confirm".into(),
        from: w.phone.clone(),
        to: phone(DEALER_NUMBER),
        body: "CONFIRM".into(),
    };
    w.queue.fail_next(1);
    assert!(
        replies::handle_inbound(&w.inbound(), &sms, noon() + mins(7))
            .await
            .is_err()
    );
    assert_eq!(
        replies::handle_inbound(&w.inbound(), &sms, noon() + mins(7))
            .await
            .unwrap(),
        ReplyOutcome::PaymentConfirmed
    );
    // AND the person texts CONFIRM again, a new MessageSid, within the 30 minutes
    let again = w.reply("SM-confirm-2", "confirm", noon() + mins(8)).await;

    // THEN the second CONFIRM confirms nothing more
    assert_eq!(again, ReplyOutcome::AlreadyConfirmed);
    // AND every publication carries the pay request's one id, so the payment system acts once
    let events = w.bus.published();
    assert_eq!(
        events.len(),
        2,
        "the redelivery republished; nothing else did"
    );
    for e in &events {
        assert_eq!(
            e.detail["id"],
            json!(replies::confirmation_event_id(&ask.id))
        );
    }
    // AND the person got one thank-you
    let thanks = w
        .messages_of(MessageKind::Reply)
        .into_iter()
        .filter(|m| m.body.contains("payment request was sent"))
        .count();
    assert_eq!(thanks, 1);
}

/// A queue and a bus that crash with the store (its write budget), as one killed
/// instance would stop making every call.
struct Crashing<'a>(&'a World);

#[async_trait::async_trait]
impl consent::ports::OutboundQueue for Crashing<'_> {
    async fn enqueue(
        &self,
        items: &[consent::message::Outbound],
    ) -> consent::ports::StoreResult<Vec<MessageId>> {
        self.0.store.take_write()?;
        self.0.queue.enqueue(items).await
    }
}

#[async_trait::async_trait]
impl consent::ports::EventPublisher for Crashing<'_> {
    async fn publish(
        &self,
        events: &[consent::ports::BusEvent],
    ) -> consent::ports::StoreResult<()> {
        self.0.store.take_write()?;
        self.0.bus.publish(events).await
    }
}

/// What acting on replies left behind, to compare a crashed and redelivered run with a
/// clean one.
#[derive(Debug, PartialEq, Eq)]
struct Effects {
    ledger: Vec<(Category, ConsentEvent)>,
    answers: Vec<String>,
    /// Answers still queued that no queue record carries (they would wait for a requeue).
    answers_not_queued: usize,
    staff_items: usize,
    payment_event_ids: std::collections::BTreeSet<String>,
    opted_out: bool,
}

/// What acting on replies in `w` left behind.
async fn effects(w: &World) -> Effects {
    let queued: std::collections::HashSet<MessageId> = w
        .queue
        .sent()
        .into_iter()
        .map(|o| o.envelope.message_id)
        .collect();
    let answers = w.messages_of(MessageKind::Reply);
    Effects {
        ledger: w.ledger().iter().map(|e| (e.category, e.event)).collect(),
        answers_not_queued: answers
            .iter()
            .filter(|m| m.status == MessageStatus::Queued && !queued.contains(&m.id))
            .count(),
        answers: answers.into_iter().map(|m| m.body).collect(),
        staff_items: w.store.work_items().len(),
        payment_event_ids: w
            .bus
            .published()
            .iter()
            .filter(|e| e.detail_type == replies::TEXT_TO_PAY_CONFIRMED)
            .map(|e| e.detail["id"].to_string())
            .collect(),
        opted_out: w
            .store
            .opted_out(&phone(DEALER_NUMBER), &w.phone)
            .await
            .unwrap(),
    }
}

#[tokio::test]
async fn a_reply_acts_exactly_once_wherever_an_instance_dies() {
    // Each kind of reply, with what it needs set up first.
    type Setup = for<'a> fn(&'a World) -> futures::future::BoxFuture<'a, ()>;
    let nothing: Setup = |_| Box::pin(async {});
    let granted: Setup = |w| {
        Box::pin(async move {
            w.grant(Category::Accounting, noon()).await;
            w.grant(Category::Service, noon()).await;
        })
    };
    let requested: Setup = |w| {
        Box::pin(async move {
            w.request(Category::Marketing, noon()).await.unwrap();
        })
    };
    let stopped: Setup = |w| {
        Box::pin(async move {
            w.grant(Category::Service, noon()).await;
            w.reply("SM-before", "STOP", noon()).await;
        })
    };
    let pay: Setup = |w| {
        Box::pin(async move {
            pay_requested(w).await;
        })
    };
    let cases: [(&str, &str, Setup); 7] = [
        ("STOP", "STOP", granted),
        ("Agree", "Agree", requested),
        ("START", "START", stopped),
        ("HELP", "HELP", nothing),
        ("PAY", "PAY", pay),
        ("CONFIRM", "CONFIRM", pay),
        ("free text", "Is my car ready?", granted),
    ];
    for (name, body, setup) in cases {
        // GIVEN the effects of one clean delivery
        let clean = World::new().await;
        setup(&clean).await;
        clean.reply("SM-x", body, noon() + mins(10)).await;
        let expected = effects(&clean).await;
        assert_eq!(expected.answers_not_queued, 0, "{name}");
        let mut crash_points = 0;
        for budget in 0..40 {
            // WHEN the instance dies after `budget` writes (store, queue or bus), and the
            // stored webhook is delivered again, twice
            let w = World::new().await;
            setup(&w).await;
            let sms = InboundSms {
                carrier_message_id: "SM-x".into(),
                from: w.phone.clone(),
                to: phone(DEALER_NUMBER),
                body: body.into(),
            };
            let crashing = Crashing(&w);
            let mut ports = w.inbound();
            ports.queue = &crashing;
            ports.events = &crashing;
            w.store.crash_after_writes(budget);
            let first = replies::handle_inbound(&ports, &sms, noon() + mins(10)).await;
            w.store.recover();
            if first.is_ok() {
                // Every write fitted in the budget: no more crash points for this kind.
                break;
            }
            crash_points += 1;
            let again = replies::handle_inbound(&w.inbound(), &sms, noon() + mins(10))
                .await
                .unwrap();
            assert_ne!(again, ReplyOutcome::Duplicate, "{name} at {budget}");
            assert_eq!(
                w.reply("SM-x", body, noon() + mins(10)).await,
                ReplyOutcome::Duplicate,
                "{name} at {budget}"
            );
            // THEN what it did is what one clean delivery does: no effect lost, none doubled
            assert_eq!(
                effects(&w).await,
                expected,
                "{name}, crashed after {budget} writes"
            );
        }
        assert!(
            crash_points >= 2,
            "{name}: only {crash_points} crash points"
        );
    }
}

/// A pending store where a guess lands between a resend's read and its write.
struct GuessDuringResend<'a>(&'a InMemoryStore);

#[async_trait::async_trait]
impl consent::ports::PendingStore for GuessDuringResend<'_> {
    async fn pending(
        &self,
        d: &DealerId,
        p: &PhoneNumber,
        c: Category,
    ) -> consent::ports::StoreResult<Option<PendingAuthorization>> {
        self.0.pending(d, p, c).await
    }
    async fn pending_for_number(
        &self,
        d: &DealerId,
        p: &PhoneNumber,
    ) -> consent::ports::StoreResult<Vec<PendingAuthorization>> {
        self.0.pending_for_number(d, p).await
    }
    async fn pending_for_numbers(
        &self,
        d: &DealerId,
        p: &[PhoneNumber],
    ) -> consent::ports::StoreResult<Vec<PendingAuthorization>> {
        self.0.pending_for_numbers(d, p).await
    }
    async fn put_pending(&self, p: &PendingAuthorization) -> consent::ports::StoreResult<()> {
        self.0.take_attempt(p).await?;
        self.0.put_pending(p).await
    }
    async fn take_attempt(
        &self,
        p: &PendingAuthorization,
    ) -> consent::ports::StoreResult<Option<PendingAuthorization>> {
        self.0.take_attempt(p).await
    }
    async fn replace_code(&self, p: &PendingAuthorization) -> consent::ports::StoreResult<()> {
        self.0.take_attempt(p).await?;
        self.0.replace_code(p).await
    }
    async fn void(
        &self,
        d: &DealerId,
        p: &PhoneNumber,
        c: Category,
        r: &str,
        n: Option<u32>,
    ) -> consent::ports::StoreResult<()> {
        self.0.void(d, p, c, r, n).await
    }
    async fn overdue(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> consent::ports::StoreResult<Vec<PendingAuthorization>> {
        self.0.overdue(before, limit).await
    }
    async fn mark_followed_up(&self, p: &PendingAuthorization) -> consent::ports::StoreResult<()> {
        self.0.mark_followed_up(p).await
    }
}

#[tokio::test]
async fn a_resend_keeps_the_tries_already_counted() {
    // GIVEN a request with three wrong tries
    let w = World::new().await;
    w.request(Category::Accounting, noon()).await.unwrap();
    let first = w.last_code();
    for _ in 0..3 {
        let _ = w.verify(Category::Accounting, &wrong(&first), noon()).await;
    }

    // WHEN staff click Authorize again inside the window while a fourth guess lands
    // between the resend's read and its write
    let racing = GuessDuringResend(&w.store);
    let mut ports = w.auth();
    ports.pending = &racing;
    let again = auth::request(
        &ports,
        &w.dealer,
        &w.staff,
        &w.contact,
        Category::Accounting,
        noon() + mins(1),
    )
    .await
    .unwrap();
    assert!(again.resent);
    let code = w.last_code();

    // THEN all four tries stay counted: one wrong guess uses the request up, and even
    // the right code is refused after it
    assert!(matches!(
        w.verify(Category::Accounting, &wrong(&code), noon() + mins(2))
            .await,
        Err(DomainError::CodeExpired)
    ));
    assert!(matches!(
        w.verify(Category::Accounting, &code, noon() + mins(2))
            .await,
        Err(DomainError::CodeExpired)
    ));
}

#[tokio::test]
async fn a_texting_number_that_changes_owner_keeps_its_opt_outs() {
    // GIVEN the person replied STOP to the dealer's texting number
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.reply("SM-stop", "STOP", noon() + mins(1)).await;

    // WHEN the number moves to another dealer who knows the person (no ledger there)
    let other = DealerId::parse("next-owner").unwrap();
    w.store
        .put_dealer(
            &Dealer {
                id: w.dealer.clone(),
                name: DEALER_NAME.into(),
                texting_number: phone("+12025550109"),
                help_contact: None,
                time_zone: None,
            },
            Some(&phone(DEALER_NUMBER)),
        )
        .await
        .unwrap();
    w.store
        .put_dealer(
            &Dealer {
                id: other.clone(),
                name: "Next Owner Motors".into(),
                texting_number: phone(DEALER_NUMBER),
                help_contact: None,
                time_zone: None,
            },
            None,
        )
        .await
        .unwrap();
    w.store
        .put_contact(
            &Contact {
                id: w.contact.clone(),
                dealer_id: other.clone(),
                name: "Maria Lopez".into(),
                phone: w.phone.clone(),
                account_ids: vec![],
                deal_ids: vec![],
                time_zone: None,
                updated_at: noon(),
            },
            None,
        )
        .await
        .unwrap();

    // THEN the new owner cannot text a code there: 409 opted-out, nothing queued
    let queued_before = w.queue.sent().len();
    let refused = auth::request(
        &w.auth(),
        &other,
        &w.staff,
        &w.contact,
        Category::Service,
        noon() + mins(2),
    )
    .await;
    assert!(
        matches!(refused, Err(DomainError::OptedOut { ref from }) if *from == phone(DEALER_NUMBER)),
        "{refused:?}"
    );
    assert_eq!(w.queue.sent().len(), queued_before);

    // AND after the person texts START to the number, it can
    let start = InboundSms {
        carrier_message_id: "SM-start".into(),
        from: w.phone.clone(),
        to: phone(DEALER_NUMBER),
        body: "START".into(),
    };
    replies::handle_inbound(&w.inbound(), &start, noon() + mins(3))
        .await
        .unwrap();
    auth::request(
        &w.auth(),
        &other,
        &w.staff,
        &w.contact,
        Category::Service,
        noon() + mins(4),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_text_queued_before_a_carrier_block_is_suppressed_at_delivery() {
    // GIVEN an accounting text queued, then the carrier reports the number blocked us on
    // another message (a status callback with 21610)
    let (w, m) = queued_alert().await;
    consent::ports::ConsentWriter::set_opted_out(
        &w.store,
        &phone(DEALER_NUMBER),
        &w.phone,
        true,
        noon(),
    )
    .await
    .unwrap();

    // WHEN the worker delivers the queued text
    let outcome = w.deliver(&m.id, noon()).await;

    // THEN it is suppressed at the claim, and the carrier never sees it
    assert_eq!(
        outcome,
        DeliverOutcome::Suppressed {
            reason: "opted-out".into()
        }
    );
    assert!(w.carrier_copies(&m).is_empty());
}

#[tokio::test]
async fn a_portal_unsubscribe_does_not_block_a_new_code_request_but_stop_does() {
    // GIVEN staff unsubscribed the person from accounting in the portal
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.unsubscribe(Category::Accounting, noon() + mins(1)).await;

    // WHEN staff ask again THEN a code is texted: the carrier does not block the number
    assert!(w
        .request(Category::Accounting, noon() + mins(2))
        .await
        .is_ok());

    // BUT after the person replies STOP, a request is refused at once, naming the number
    w.reply("SM-stop-2", "STOP", noon() + mins(3)).await;
    let queued = w.queue.sent().len();
    assert!(matches!(
        w.request(Category::Service, noon() + mins(4)).await,
        Err(DomainError::OptedOut { .. })
    ));
    assert_eq!(w.queue.sent().len(), queued);
}
