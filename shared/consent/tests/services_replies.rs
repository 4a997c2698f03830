//! Replies and carrier status: AGREE, STOP/START, HELP, PAY/CONFIRM, free text, texts
//! to numbers a dealer gave up, and carrier status reports.

use chrono::{DateTime, Duration, Utc};
use consent::fakes::{
    late_evening, mins, noon, past_due_vars, phone, reminder_vars, World, DEALER, DEALER_NAME,
    DEALER_NUMBER,
};
use consent::ledger::{Actor, Channel, ConsentEvent, ConsentStatus};
use consent::message::StatusReason;
use consent::message::{Message, MessageKind, MessageStatus};
use consent::ports::{
    ConsentReader, ConversationEntry, Conversations, PendingStore, WorkQueueName,
};
use consent::service::authorization::AuthorizationView;
use consent::service::delivery::DeliverOutcome;
use consent::service::replies::{
    self, InboundSms, ReplyOutcome, StatusReport, TEXT_TO_PAY_CONFIRMED,
};
use consent::{Category, DealerId};
use serde_json::json;

#[tokio::test]
async fn agree_grants_the_one_waiting_request_and_answers_once() {
    // GIVEN a code texted for service
    let w = World::new().await;
    w.request(Category::Service, noon()).await.unwrap();

    // WHEN the person replies "Agree" (with spaces and punctuation)
    let outcome = w.reply("SM-agree-1", "  Agree! ", noon() + mins(2)).await;

    // THEN the request is granted by reply, with the carrier message id and the
    // disclosure version as evidence
    assert_eq!(outcome, ReplyOutcome::Agreed(vec![Category::Service]));
    let ledger = w.ledger();
    assert_eq!(ledger.len(), 1);
    let e = &ledger[0];
    assert_eq!(e.category, Category::Service);
    assert_eq!(e.event, ConsentEvent::GrantedByReply);
    assert_eq!(e.actor, Actor::Phone);
    assert_eq!(e.evidence.as_deref(), Some("SM-agree-1"));
    assert_eq!(e.disclosure_version.as_deref(), Some("service-v1"));
    let shown = w.last_code_text().body;
    assert_eq!(e.disclosure, Some(consent::ledger::Disclosure::of(shown)));
    assert_eq!(
        w.status_of(Category::Service).await,
        ConsentStatus::Authorized
    );
    // AND exactly one confirmation is texted, naming what was granted
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1);
    assert!(answers[0].body.starts_with(DEALER_NAME));
    assert!(answers[0].body.contains("service"), "{}", answers[0].body);
    assert!(answers[0].body.contains("STOP"));
}

#[tokio::test]
async fn a_bare_agree_with_several_requests_waiting_grants_nothing_and_asks_which() {
    // GIVEN codes texted for service, then five seconds later for marketing
    let w = World::new().await;
    w.request(Category::Service, noon()).await.unwrap();
    w.request(Category::Marketing, noon() + Duration::seconds(5))
        .await
        .unwrap();

    // WHEN the person replies a bare "Agree" (meant for service: the most recent request
    // is not always the text it answers)
    let outcome = w.reply("SM-which-1", "Agree", noon() + mins(1)).await;

    // THEN nothing is granted: both requests still wait
    assert_eq!(
        outcome,
        ReplyOutcome::AskedWhich(vec![Category::Service, Category::Marketing])
    );
    assert!(w.ledger().is_empty(), "{:?}", w.ledger());
    assert_eq!(
        w.store
            .pending_for_number(&w.dealer, &w.phone)
            .await
            .unwrap()
            .len(),
        2
    );
    // AND the person is asked which, with replies that do it
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1);
    let question = &answers[0].body;
    assert!(question.starts_with(DEALER_NAME), "{question}");
    for option in ["AGREE SERVICE", "AGREE MARKETING", "AGREE ALL"] {
        assert!(question.contains(option), "{question}");
    }

    // WHEN they answer "Agree service"
    let outcome = w
        .reply("SM-which-2", "Agree service", noon() + mins(2))
        .await;

    // THEN service alone is granted; marketing still waits
    assert_eq!(outcome, ReplyOutcome::Agreed(vec![Category::Service]));
    assert_eq!(
        w.status_of(Category::Service).await,
        ConsentStatus::Authorized
    );
    assert_eq!(w.status_of(Category::Marketing).await, ConsentStatus::None);
    let pending = w
        .store
        .pending_for_number(&w.dealer, &w.phone)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].category, Category::Marketing);

    // AND a bare Agree now answers the one request left
    assert_eq!(
        w.reply("SM-which-3", "Agree", noon() + mins(3)).await,
        ReplyOutcome::Agreed(vec![Category::Marketing])
    );
}

#[tokio::test]
async fn agree_all_grants_every_waiting_request_and_the_question_is_asked_in_the_persons_language()
{
    // GIVEN codes texted for accounting and for sales
    let w = World::new().await;
    w.request(Category::Accounting, noon()).await.unwrap();
    w.request(Category::Sales, noon() + mins(1)).await.unwrap();

    // WHEN the person replies "Acepto"
    let outcome = w.reply("SM-es-which", "Acepto", noon() + mins(2)).await;

    // THEN they are asked which, in Spanish
    assert_eq!(
        outcome,
        ReplyOutcome::AskedWhich(vec![Category::Accounting, Category::Sales])
    );
    let question = w.messages_of(MessageKind::Reply)[0].body.clone();
    for option in ["ACEPTO CUENTA", "ACEPTO VENTAS", "ACEPTO TODO"] {
        assert!(question.contains(option), "{question}");
    }

    // WHEN they answer "Acepto todo"
    let outcome = w.reply("SM-es-all", "Acepto todo", noon() + mins(3)).await;

    // THEN both are granted by that one reply, confirmed once in Spanish
    assert_eq!(
        outcome,
        ReplyOutcome::Agreed(vec![Category::Accounting, Category::Sales])
    );
    let ledger = w.ledger();
    assert_eq!(ledger.len(), 2);
    assert!(ledger
        .iter()
        .all(|e| e.event == ConsentEvent::GrantedByReply
            && e.evidence.as_deref() == Some("SM-es-all")));
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 2);
    assert!(
        answers
            .iter()
            .any(|a| a.body.contains("de cuenta y pagos y de ventas")),
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_redelivered_webhook_is_a_duplicate_and_changes_nothing() {
    // GIVEN the person agreed to accounting with message SM-1
    let w = World::new().await;
    w.request(Category::Accounting, noon()).await.unwrap();
    w.reply("SM-1", "Agree", noon() + mins(1)).await;
    // AND staff then requested service
    w.request(Category::Service, noon() + mins(2))
        .await
        .unwrap();
    let ledger = w.ledger().len();
    let messages = w.store.messages().len();

    // WHEN the carrier posts SM-1 again
    let outcome = w.reply("SM-1", "Agree", noon() + mins(3)).await;

    // THEN it is a duplicate: service stays pending, nothing is recorded or texted
    assert_eq!(outcome, ReplyOutcome::Duplicate);
    assert_eq!(w.ledger().len(), ledger);
    assert_eq!(w.store.messages().len(), messages);
    assert_eq!(
        w.views(noon() + mins(3)).await[1],
        (Category::Service, AuthorizationView::Pending)
    );
    // AND the conversation shows the reply once, read as an Agree
    let page = w
        .store
        .conversation(&w.dealer, &w.phone, 50, None)
        .await
        .unwrap();
    let inbound: Vec<_> = page
        .entries
        .iter()
        .filter_map(|e| match e {
            ConversationEntry::Inbound(t) => Some(t),
            ConversationEntry::Outbound(_) => None,
        })
        .collect();
    assert_eq!(inbound.len(), 1);
    assert_eq!(
        (inbound[0].body.as_str(), inbound[0].read_as.as_str()),
        ("Agree", "agree")
    );
}

/// GIVEN accounting authorized, a pending service request whose code text is not
/// delivered yet, and three waiting accounting texts (scheduled, deferred, queued);
/// WHEN the person sends `body`; THEN everything is revoked, the four waiting texts
/// are suppressed and exactly one confirmation goes out.
async fn opt_out_scenario(body: &str) {
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.request(Category::Service, noon()).await.unwrap();
    let code_text = w.last_code_text();
    let scheduled = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(120)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    let deferred = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(late_evening()),
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
    assert_eq!(
        [scheduled.status, deferred.status, queued.status],
        [
            MessageStatus::Scheduled,
            MessageStatus::Deferred,
            MessageStatus::Queued
        ]
    );

    let outcome = w.reply("SM-stop-1", body, noon() + mins(5)).await;

    assert_eq!(
        outcome,
        ReplyOutcome::OptedOut {
            revoked: Category::ALL.to_vec(),
            suppressed: 4
        }
    );
    for c in Category::ALL {
        assert!(
            !w.consent().await.may_send(c).is_allowed(),
            "{c} still allowed"
        );
    }
    let ledger = w.ledger();
    let stops: Vec<_> = ledger
        .iter()
        .filter(|e| e.event == ConsentEvent::RevokedByReply)
        .collect();
    assert_eq!(stops.len(), 4);
    assert!(stops
        .iter()
        .all(|e| e.actor == Actor::Phone && e.evidence.as_deref() == Some("SM-stop-1")));
    // Each revocation records the words the person used and the channel.
    assert!(
        stops
            .iter()
            .all(|e| e.words.as_deref() == Some(body) && e.event.channel() == Channel::Sms),
        "{stops:?}"
    );
    for m in [&scheduled, &deferred, &queued, &code_text] {
        let now = w.message(&m.id);
        assert_eq!(now.status, MessageStatus::Suppressed);
        assert_eq!(now.status_reason, Some(StatusReason::OptedOut));
    }
    // The pending service request is void, and its code text never goes out.
    assert_eq!(
        w.views(noon() + mins(5)).await[1],
        (Category::Service, AuthorizationView::Revoked)
    );
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1, "exactly one confirmation");
    assert!(
        answers[0].body.contains("unsubscribed"),
        "{}",
        answers[0].body
    );
    assert!(w.queued_ids().contains(&answers[0].id));
    // The confirmation goes out at once (well within the 5 minutes the rules allow),
    // though the ledger now says revoked, and carries nothing but the confirmation.
    assert!(matches!(
        w.deliver(&answers[0].id, noon() + mins(5)).await,
        DeliverOutcome::Sent { .. }
    ));
    assert_eq!(answers[0].send_at, noon() + mins(5));
    assert_ne!(answers[0].category, Category::Marketing);
    let late = w.deliver(&code_text.id, noon() + mins(5)).await;
    assert_eq!(
        late,
        DeliverOutcome::Skipped {
            status: Some(MessageStatus::Suppressed)
        }
    );
    assert!(w.carrier_copies(&code_text).is_empty());

    // AND a second STOP changes no status and is not answered again, but is on the
    // ledger: the person's own word, which a START they texted before it cannot undo
    let again = w.reply("SM-stop-2", "STOP", noon() + mins(6)).await;
    assert_eq!(
        again,
        ReplyOutcome::OptedOut {
            revoked: vec![],
            suppressed: 0
        }
    );
    assert_eq!(w.messages_of(MessageKind::Reply).len(), 1);
    let after = w.ledger();
    assert_eq!(after.len(), ledger.len() + Category::ALL.len());
    assert!(after[ledger.len()..]
        .iter()
        .all(|e| e.event == ConsentEvent::RevokedByReply
            && e.evidence.as_deref() == Some("SM-stop-2")));
}

#[tokio::test]
async fn stop_revokes_everything_suppresses_waiting_texts_and_confirms_once() {
    opt_out_scenario("STOP").await;
}

#[tokio::test]
async fn a_revocation_in_plain_words_works_like_stop() {
    opt_out_scenario("Stop texting me please").await;
}

#[tokio::test]
async fn start_restores_what_stop_removed_but_not_a_portal_unsubscribe() {
    // GIVEN accounting and service authorized, service then unsubscribed in the portal,
    // sales and marketing never authorized, and then a STOP
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.grant(Category::Service, noon()).await;
    w.unsubscribe(Category::Service, noon() + mins(1)).await;
    w.reply("SM-stop", "STOP", noon() + mins(2)).await;

    // WHEN the person replies START
    let outcome = w.reply("SM-start", "START", noon() + mins(3)).await;

    // THEN only accounting, which the STOP removed, is restored
    assert_eq!(outcome, ReplyOutcome::OptedIn(vec![Category::Accounting]));
    let state = w.consent().await;
    assert!(state.may_send(Category::Accounting).is_allowed());
    assert!(
        !state.may_send(Category::Service).is_allowed(),
        "portal unsubscribe stays"
    );
    assert!(
        !state.may_send(Category::Sales).is_allowed(),
        "never authorized"
    );
    assert!(
        !state.may_send(Category::Marketing).is_allowed(),
        "never authorized"
    );
    let restored: Vec<_> = w
        .ledger()
        .into_iter()
        .filter(|e| e.event == ConsentEvent::RestoredByStart)
        .map(|e| e.category)
        .collect();
    assert_eq!(restored, vec![Category::Accounting]);
    // AND the STOP confirmation and the START confirmation were texted
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 2);
}

#[tokio::test]
async fn only_the_persons_start_lifts_the_carriers_opt_out_list_and_a_failed_lift_records_nothing_yet(
) {
    // GIVEN accounting authorized, then a STOP (the carrier's list has the person too)
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.reply("SM-stop", "STOP", noon() + mins(1)).await;

    // WHEN staff try to authorize again in the portal
    let again = w.request(Category::Accounting, noon() + mins(2)).await;
    // THEN it is refused until the person texts START, and the carrier's list stays
    assert!(
        matches!(again, Err(consent::DomainError::OptedOut { .. })),
        "{again:?}"
    );
    assert!(w.opt_outs.lifted().is_empty());

    // WHEN the person texts START while the carrier's list cannot be reached
    w.opt_outs.fail_next(1);
    let failed = replies::handle_inbound(
        &w.inbound(),
        &InboundSms {
            carrier_message_id: "SM-start".into(),
            from: w.phone.clone(),
            to: phone(DEALER_NUMBER),
            body: "START".into(),
        },
        noon() + mins(4),
    )
    .await;
    // THEN nothing is recorded yet: the START is acted on again, list first
    assert!(failed.is_err(), "{failed:?}");
    assert!(!w
        .consent()
        .await
        .may_send(Category::Accounting)
        .is_allowed());
    let outcome = w.reply("SM-start", "START", noon() + mins(5)).await;
    assert_eq!(outcome, ReplyOutcome::OptedIn(vec![Category::Accounting]));
    assert_eq!(
        w.opt_outs.lifted(),
        vec![(phone(DEALER_NUMBER), w.phone.clone())]
    );
}

/// A START that came after a later STOP restored nothing: accounting stays stopped.
async fn the_last_stop_stands(w: &World, outcome: &ReplyOutcome) {
    assert_ne!(*outcome, ReplyOutcome::OptedIn(vec![Category::Accounting]));
    assert!(!w
        .consent()
        .await
        .may_send(Category::Accounting)
        .is_allowed());
    assert!(!w
        .ledger()
        .iter()
        .any(|e| e.event == ConsentEvent::RestoredByStart));
}

#[tokio::test]
async fn a_start_delivered_after_a_later_stop_does_not_undo_it() {
    // GIVEN accounting authorized; the person texts START, then STOP a minute later, and a
    // carrier that keeps no order delivers the STOP first
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.reply("SM-stop-first", "STOP", noon() + mins(2)).await;
    assert!(!w
        .consent()
        .await
        .may_send(Category::Accounting)
        .is_allowed());

    // WHEN the START, texted before that STOP, arrives
    let outcome = w.reply("SM-start-late", "START", noon() + mins(1)).await;

    // THEN the person's last word stands: nothing is restored
    the_last_stop_stands(&w, &outcome).await;
    // AND a START texted after the STOP restores, as always
    let outcome = w.reply("SM-start", "START", noon() + mins(3)).await;
    assert_eq!(outcome, ReplyOutcome::OptedIn(vec![Category::Accounting]));
}

#[tokio::test]
async fn a_start_between_two_stops_delivered_after_the_second_does_not_undo_it() {
    // GIVEN accounting authorized, then stopped
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.reply("SM-stop-1", "STOP", noon() + mins(1)).await;
    let answers = w.messages_of(MessageKind::Reply).len();

    // WHEN the person texts START, then STOP again, and a carrier that keeps no order
    // delivers the second STOP first
    let second = w.reply("SM-stop-2", "STOP", noon() + mins(3)).await;

    // THEN the second STOP is on the ledger on its own evidence, though it changes no
    // status, and the person is not told of an opt-out twice
    assert_eq!(
        second,
        ReplyOutcome::OptedOut {
            revoked: vec![],
            suppressed: 0
        }
    );
    let recorded = |sid: &str| {
        w.ledger()
            .iter()
            .filter(|e| e.event == ConsentEvent::RevokedByReply)
            .filter(|e| e.evidence.as_deref() == Some(sid))
            .count()
    };
    assert_eq!(recorded("SM-stop-2"), Category::ALL.len());
    assert_eq!(w.messages_of(MessageKind::Reply).len(), answers);
    // AND delivered again, it is neither recorded nor answered again
    w.reply("SM-stop-2", "STOP", noon() + mins(3)).await;
    assert_eq!(recorded("SM-stop-2"), Category::ALL.len());
    assert_eq!(w.messages_of(MessageKind::Reply).len(), answers);

    // WHEN the START, texted between the two STOPs, arrives
    let outcome = w.reply("SM-start-between", "START", noon() + mins(2)).await;

    // THEN the person's last word stands: nothing restored, the carrier's list kept
    the_last_stop_stands(&w, &outcome).await;
    assert!(w.opt_outs.lifted().is_empty());
    // AND a START texted after both restores what the first STOP took away
    let outcome = w.reply("SM-start", "START", noon() + mins(4)).await;
    assert_eq!(outcome, ReplyOutcome::OptedIn(vec![Category::Accounting]));
    assert_eq!(w.opt_outs.lifted().len(), 1);
}

#[tokio::test]
async fn help_answers_with_the_dealer_name_and_how_to_stop() {
    // GIVEN a known dealer number
    let w = World::new().await;

    // WHEN the person texts HELP
    let outcome = w.reply("SM-help", "help", noon()).await;

    // THEN the answer names the dealer and says how to stop
    assert_eq!(outcome, ReplyOutcome::Help);
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1);
    assert!(answers[0].body.contains(DEALER_NAME), "{}", answers[0].body);
    assert!(answers[0].body.contains("STOP"), "{}", answers[0].body);
    assert!(answers[0].body.contains("Msg&data rates may apply"));
    assert!(w.ledger().is_empty());
}

#[tokio::test]
async fn pay_then_confirm_publishes_a_payment_request_event() {
    // GIVEN a Text to Pay reminder for $412.37, sent to the person
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let reminder = w
        .send("text-to-pay-reminder", reminder_vars(), None, noon())
        .await
        .unwrap()
        .message;
    assert!(matches!(
        w.deliver(&reminder.id, noon()).await,
        DeliverOutcome::Sent { .. }
    ));

    // WHEN the person replies PAY
    let outcome = w.reply("SM-pay", "PAY", noon() + mins(5)).await;

    // THEN they are asked to CONFIRM the amount, and nothing is published yet
    assert_eq!(outcome, ReplyOutcome::PayConfirmationRequested);
    let ask = w
        .messages_of(MessageKind::Reply)
        .into_iter()
        .find(|m| m.template.as_deref() == Some(replies::PAY_CONFIRM_MARKER))
        .expect("a CONFIRM request");
    assert!(ask.body.contains("CONFIRM"), "{}", ask.body);
    assert!(ask.body.contains("$412.37"), "{}", ask.body);
    assert!(w.bus.published().is_empty());

    // WHEN that text is delivered and the person replies CONFIRM
    assert!(matches!(
        w.deliver(&ask.id, noon() + mins(5)).await,
        DeliverOutcome::Sent { .. }
    ));
    let outcome = w.reply("SM-confirm", "CONFIRM", noon() + mins(7)).await;

    // THEN one payment request event goes to the bus with the amount and the dealer
    assert_eq!(outcome, ReplyOutcome::PaymentConfirmed);
    let events = w.bus.published();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail_type, TEXT_TO_PAY_CONFIRMED);
    assert_eq!(events[0].source, replies::EVENT_SOURCE);
    let d = &events[0].detail;
    assert_eq!(d["dealerId"], json!(DEALER));
    assert_eq!(d["amount"], json!("412.37"));
    assert_eq!(d["contactId"], json!("C-1001"));
    assert_eq!(d["accountId"], json!("A-77"));
    assert_eq!(d["reminderMessageId"], json!(reminder.id.as_str()));
    assert_eq!(d["confirmationCarrierMessageId"], json!("SM-confirm"));
    assert_eq!(d["type"], json!(TEXT_TO_PAY_CONFIRMED));
}

/// A text from the person to `to`.
async fn text_to(w: &World, sid: &str, to: &str, body: &str, now: DateTime<Utc>) -> ReplyOutcome {
    let sms = InboundSms {
        carrier_message_id: sid.into(),
        from: w.phone.clone(),
        to: phone(to),
        body: body.into(),
    };
    replies::handle_inbound(&w.inbound(), &sms, now)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stop_to_the_number_a_dealer_gave_up_revokes_that_dealers_consent_and_is_confirmed() {
    // GIVEN the person authorized accounting texts from the dealer's number, which the
    // operator provisioned for it, and a text waits to go
    let w = World::new().await;
    w.store.provision(&phone(DEALER_NUMBER), "AC-1", &w.dealer);
    w.grant(Category::Accounting, noon()).await;
    let waiting = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(90)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    // AND the dealer moves to a new number
    let new_number = phone("+12025550177");
    w.move_dealer_to(&new_number).await;

    // WHEN the person replies STOP to the old number, which no dealer owns now
    let outcome = text_to(&w, "SM-old-stop", DEALER_NUMBER, "STOP", noon() + mins(5)).await;

    // THEN it is recorded as that dealer's opt-out: consent revoked with the reply as
    // evidence, the waiting text suppressed, the old number blocked for the person
    assert!(
        matches!(&outcome, ReplyOutcome::OptedOut { revoked, suppressed: 1 } if revoked.contains(&Category::Accounting)),
        "{outcome:?}"
    );
    assert!(w
        .ledger()
        .iter()
        .any(|e| e.event == ConsentEvent::RevokedByReply
            && e.evidence.as_deref() == Some("SM-old-stop")));
    assert_eq!(w.message(&waiting.id).status, MessageStatus::Suppressed);
    assert!(w
        .store
        .opted_out(&phone(DEALER_NUMBER), &w.phone)
        .await
        .unwrap());
    // AND one confirmation naming the dealer goes, from the number it owns now
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1);
    assert!(
        answers[0].body.starts_with(DEALER_NAME),
        "{}",
        answers[0].body
    );
    assert!(answers[0].body.contains("START"), "{}", answers[0].body);
    assert!(matches!(
        w.deliver(&answers[0].id, noon() + mins(6)).await,
        DeliverOutcome::Sent { .. }
    ));
    assert_eq!(w.carrier_copies(&answers[0])[0].from, new_number);
    // AND words to the old number still reach the dealer's staff
    assert_eq!(
        text_to(
            &w,
            "SM-old-words",
            DEALER_NUMBER,
            "who is this?",
            noon() + mins(7)
        )
        .await,
        ReplyOutcome::Queued
    );
    assert_eq!(w.store.work_items().len(), 1);
}

#[tokio::test]
async fn a_stop_to_a_number_we_hold_that_no_dealer_texts_from_blocks_it_until_start() {
    // GIVEN a number provisioned for a dealer that has not signed up
    let w = World::new().await;
    let spare = "+12025550188";
    w.store.provision(
        &phone(spare),
        "AC-1",
        &DealerId::parse("not-signed-up").unwrap(),
    );

    // WHEN the person texts STOP to it
    let outcome = text_to(&w, "SM-spare-stop", spare, "Stop texting me", noon()).await;

    // THEN the number is blocked for the person, whoever takes it later
    assert_eq!(outcome, ReplyOutcome::NumberOptedOut);
    assert!(w.store.opted_out(&phone(spare), &w.phone).await.unwrap());
    // AND the same STOP delivered again is a duplicate
    assert_eq!(
        text_to(&w, "SM-spare-stop", spare, "Stop texting me", noon()).await,
        ReplyOutcome::Duplicate
    );
    // AND START lifts the block
    assert_eq!(
        text_to(&w, "SM-spare-start", spare, "START", noon() + mins(1)).await,
        ReplyOutcome::NumberOptedIn
    );
    assert!(!w.store.opted_out(&phone(spare), &w.phone).await.unwrap());
    // AND the carrier's list of that number too
    assert_eq!(w.opt_outs.lifted(), vec![(phone(spare), w.phone.clone())]);
}

#[tokio::test]
async fn pay_without_a_reminder_goes_to_staff() {
    // GIVEN no Text to Pay reminder was sent
    let w = World::new().await;

    // WHEN the person replies PAY
    let outcome = w.reply("SM-pay", "pay", noon()).await;

    // THEN a person looks at it; nothing is asked or published
    assert_eq!(outcome, ReplyOutcome::Queued);
    assert_eq!(w.store.work_items().len(), 1);
    assert!(w.messages_of(MessageKind::Reply).is_empty());
    assert!(w.bus.published().is_empty());
}

#[tokio::test]
async fn free_text_goes_to_the_replies_queue_linked_to_the_contact() {
    // GIVEN a known contact
    let w = World::new().await;

    // WHEN they text something that needs a person ("weekend" is not END)
    let body = "Can I bring the car in this weekend?";
    let outcome = w.reply("SM-free", body, noon()).await;

    // THEN one open work item on the Replies queue links the contact and account
    assert_eq!(outcome, ReplyOutcome::Queued);
    let items = w.store.work_items();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.queue, WorkQueueName::Replies);
    assert_eq!(item.kind, "reply-needs-attention");
    assert_eq!(item.contact_id.as_ref(), Some(&w.contact));
    assert_eq!(item.account_id.as_ref().map(|a| a.as_str()), Some("A-77"));
    assert_eq!(item.phone.as_ref(), Some(&w.phone));
    assert_eq!(item.text.as_deref(), Some(body));
    assert_eq!(item.status, consent::ports::WorkItemStatus::Open);
    // AND consent is untouched and nothing is texted back
    assert!(w.ledger().is_empty());
    assert!(w.store.messages().is_empty());
}

#[tokio::test]
async fn a_text_to_an_unknown_dealer_number_is_not_acted_on() {
    // GIVEN a number no dealer texts from
    let w = World::new().await;
    let sms = InboundSms {
        carrier_message_id: "SM-x".into(),
        from: w.phone.clone(),
        to: phone("+13125550199"),
        body: "STOP".into(),
    };

    // WHEN a text arrives for it
    let outcome = replies::handle_inbound(&w.inbound(), &sms, noon())
        .await
        .unwrap();

    // THEN it is reported as an unknown dealer and nothing changes
    assert_eq!(outcome, ReplyOutcome::UnknownDealer);
    assert!(w.ledger().is_empty());
    assert!(w.store.messages().is_empty());
    assert!(w.store.work_items().is_empty());
}

/// Sends and delivers a past-due alert; returns the stored message and its carrier id.
async fn sent_alert(w: &World) -> (Message, String) {
    let m = w
        .send("past-due-alert", past_due_vars(), None, noon())
        .await
        .unwrap()
        .message;
    let DeliverOutcome::Sent { carrier_message_id } = w.deliver(&m.id, noon()).await else {
        panic!("not sent");
    };
    (w.message(&m.id), carrier_message_id)
}

#[tokio::test]
async fn a_carrier_opt_out_report_becomes_ledger_entries() {
    // GIVEN an accounting text the carrier accepted
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let (m, sid) = sent_alert(&w).await;

    // WHEN the carrier reports it undelivered with error 21610 (unsubscribed recipient)
    let report = StatusReport {
        message_id: m.id.clone(),
        carrier_message_id: sid.clone(),
        status: "undelivered".into(),
        error_code: Some(21610),
    };
    let status = replies::handle_status(&w.status_ports(), &report, noon() + mins(1))
        .await
        .unwrap();

    // THEN the message failed and every category is revoked by the carrier
    assert_eq!(status, Some(MessageStatus::Failed));
    assert_eq!(w.message(&m.id).status, MessageStatus::Failed);
    let by_carrier: Vec<_> = w
        .ledger()
        .into_iter()
        .filter(|e| e.event == ConsentEvent::RevokedByCarrier)
        .collect();
    assert_eq!(by_carrier.len(), 4);
    assert!(by_carrier
        .iter()
        .all(|e| e.actor == Actor::Carrier
            && e.evidence.as_deref().is_some_and(|ev| ev.contains(&sid))));
    assert_eq!(
        StatusReason::refusing(w.consent().await.may_send(Category::Accounting)),
        Some(StatusReason::RevokedByCarrier)
    );
}

#[tokio::test]
async fn a_delivered_report_marks_the_message_delivered() {
    // GIVEN an accounting text the carrier accepted
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let (m, sid) = sent_alert(&w).await;
    assert_eq!(m.status, MessageStatus::Sent);

    // WHEN a report with another carrier id arrives, THEN it changes nothing
    let stale = StatusReport {
        message_id: m.id.clone(),
        carrier_message_id: "SM-someone-else".into(),
        status: "delivered".into(),
        error_code: None,
    };
    let result = replies::handle_status(&w.status_ports(), &stale, noon())
        .await
        .unwrap();
    assert_eq!(result, None);
    assert_eq!(w.message(&m.id).status, MessageStatus::Sent);

    // WHEN the carrier reports "delivered"
    let report = StatusReport {
        carrier_message_id: sid,
        ..stale
    };
    let status = replies::handle_status(&w.status_ports(), &report, noon() + mins(1))
        .await
        .unwrap();

    // THEN the message is delivered
    assert_eq!(status, Some(MessageStatus::Delivered));
    assert_eq!(w.message(&m.id).status, MessageStatus::Delivered);
    assert_eq!(
        w.status_of(Category::Accounting).await,
        ConsentStatus::Authorized
    );
}
