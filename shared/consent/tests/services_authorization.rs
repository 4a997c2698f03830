//! Authorization by code: requesting, verifying, expiry and rate limits, portal
//! unsubscribes, contact views and the ledger, over the one test world (`consent::fakes::World`).

use consent::fakes::{mins, noon, phone, wrong, World, DEALER_NAME, DEALER_NUMBER};
use consent::ledger::{Actor, ConsentEvent, ConsentStatus};
use consent::message::{MessageKind, MessageStatus};
use consent::ports::PendingStore;
use consent::service::authorization::{self as auth, AuthorizationView};
use consent::{Category, DomainError};
use serde_json::json;

#[tokio::test]
async fn requesting_authorization_texts_a_code_that_names_dealer_category_agree_and_stop() {
    // GIVEN a contact with no consent
    let w = World::new().await;

    // WHEN staff request accounting texts
    let requested = w.request(Category::Accounting, noon()).await.unwrap();

    // THEN a code text is stored and queued at once, valid for 10 minutes
    assert_eq!(requested.expires_at, noon() + mins(10));
    assert!(!requested.resent);
    let text = w.last_code_text();
    assert_eq!(text.kind, MessageKind::ApprovalCode);
    assert_eq!(text.to, w.phone);
    assert_eq!(text.from, phone(DEALER_NUMBER));
    assert_eq!(text.status, MessageStatus::Queued);
    assert_eq!(w.queued_ids(), vec![text.id.clone()]);
    assert_eq!(w.queue.sent()[0].delay_seconds, 0);
    // AND its body names the dealer and the category, carries 6 digits, AGREE and STOP
    assert!(text.body.starts_with(DEALER_NAME), "{}", text.body);
    assert!(text.body.contains("account and payment"), "{}", text.body);
    assert!(text.body.contains("AGREE"), "{}", text.body);
    assert!(text.body.contains("STOP"), "{}", text.body);
    // AND the stored text and its queue record hold the code only sealed: staff who can
    // read messages cannot read a live code
    let code = w.last_code();
    assert!(text.body.contains("is ******."), "{}", text.body);
    assert!(!text.body.contains(code.reveal()), "{}", text.body);
    let record = serde_json::to_string(&w.queue.sent()[0].envelope).unwrap();
    assert!(!record.contains(code.reveal()), "{record}");
    // AND the request is pending, consent untouched
    assert_eq!(
        w.views(noon()).await[0],
        (Category::Accounting, AuthorizationView::Pending)
    );
    assert!(w.ledger().is_empty());
}

#[tokio::test]
async fn the_right_code_authorizes_and_the_ledger_names_the_staff_user() {
    // GIVEN a code texted for accounting
    let w = World::new().await;
    w.request(Category::Accounting, noon()).await.unwrap();
    let code = w.last_code();

    // WHEN staff type it four minutes later
    let entry = w
        .verify(Category::Accounting, &code, noon() + mins(4))
        .await
        .unwrap();

    // THEN one ledger entry records a grant by code, by that staff user, with the disclosure
    assert_eq!(entry.event, ConsentEvent::GrantedByCode);
    assert_eq!(entry.actor, Actor::Staff(w.staff.clone()));
    assert_eq!(entry.category, Category::Accounting);
    assert_eq!(entry.at, noon() + mins(4));
    assert_eq!(entry.disclosure_version.as_deref(), Some("accounting-v1"));
    // AND the disclosure exactly as texted (code masked) with its SHA-256, as evidence
    let text = w.last_code_text().body;
    let disclosure = entry.disclosure.clone().expect("the disclosure as shown");
    assert_eq!(disclosure.text, text);
    assert!(disclosure.text.contains("******"));
    assert!(!disclosure.text.contains(code.reveal()));
    assert_eq!(disclosure, consent::ledger::Disclosure::of(text));
    assert_eq!(disclosure.sha256.len(), 64);
    assert_eq!(w.ledger(), vec![entry]);
    // AND the number is authorized for accounting only
    assert_eq!(
        w.status_of(Category::Accounting).await,
        ConsentStatus::Authorized
    );
    assert_eq!(w.status_of(Category::Marketing).await, ConsentStatus::None);
    // AND the pending request is consumed: the same code cannot be used again
    let pending = w
        .store
        .pending(&w.dealer, &w.phone, Category::Accounting)
        .await
        .unwrap();
    assert!(pending.is_none());
    assert!(matches!(
        w.verify(Category::Accounting, &code, noon() + mins(5))
            .await,
        Err(DomainError::NoPendingRequest)
    ));
}

#[tokio::test]
async fn wrong_codes_count_down_and_the_fifth_voids_the_request() {
    // GIVEN a code texted for service
    let w = World::new().await;
    w.request(Category::Service, noon()).await.unwrap();
    let code = w.last_code();
    let bad = wrong(&code);

    // WHEN staff type a wrong code four times
    for left in [4, 3, 2, 1] {
        // THEN each answer says how many tries are left
        match w.verify(Category::Service, &bad, noon() + mins(1)).await {
            Err(DomainError::WrongCode { attempts_left }) => assert_eq!(attempts_left, left),
            other => panic!("expected WrongCode({left}), got {other:?}"),
        }
    }
    // AND the fifth wrong try voids the request
    assert!(matches!(
        w.verify(Category::Service, &bad, noon() + mins(1)).await,
        Err(DomainError::CodeExpired)
    ));
    // AND afterwards even the right code is refused
    assert!(matches!(
        w.verify(Category::Service, &code, noon() + mins(2)).await,
        Err(DomainError::CodeExpired)
    ));
    assert!(w.ledger().is_empty());
    assert_eq!(w.status_of(Category::Service).await, ConsentStatus::None);
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    // GIVEN a code texted at noon
    let w = World::new().await;
    w.request(Category::Accounting, noon()).await.unwrap();
    let code = w.last_code();

    // WHEN staff type the right code exactly 10 minutes later
    let result = w
        .verify(Category::Accounting, &code, noon() + mins(10))
        .await;

    // THEN it has expired and nothing was granted
    assert!(
        matches!(result, Err(DomainError::CodeExpired)),
        "{result:?}"
    );
    assert!(w.ledger().is_empty());
    // AND the portal no longer shows it pending
    assert_eq!(
        w.views(noon() + mins(10)).await[0],
        (Category::Accounting, AuthorizationView::None)
    );
}

#[tokio::test]
async fn a_repeat_request_within_the_window_resends_the_same_request() {
    // GIVEN a code texted at noon
    let w = World::new().await;
    let first = w.request(Category::Sales, noon()).await.unwrap();

    // WHEN staff click Authorize again three minutes later
    let second = w.request(Category::Sales, noon() + mins(3)).await.unwrap();

    // THEN the same request is texted again, keeping its expiry
    assert!(second.resent);
    assert_eq!(second.expires_at, first.expires_at);
    assert_eq!(w.messages_of(MessageKind::ApprovalCode).len(), 2);
    // AND the code in the newest text authorizes
    let entry = w
        .verify(Category::Sales, &w.last_code(), noon() + mins(4))
        .await
        .unwrap();
    assert_eq!(entry.event, ConsentEvent::GrantedByCode);

    // AND after the window a request is a new one with a new expiry
    w.unsubscribe(Category::Sales, noon() + mins(5)).await;
    let third = w.request(Category::Sales, noon() + mins(20)).await.unwrap();
    assert!(!third.resent);
    assert_eq!(third.expires_at, noon() + mins(30));
}

#[tokio::test]
async fn more_than_five_code_texts_per_number_per_day_are_rate_limited() {
    // GIVEN five code texts to the number today (across categories)
    let w = World::new().await;
    for (i, c) in [
        Category::Accounting,
        Category::Service,
        Category::Sales,
        Category::Marketing,
        Category::Accounting,
    ]
    .into_iter()
    .enumerate()
    {
        w.request(c, noon() + mins(i as i64)).await.unwrap();
    }

    // WHEN staff ask for a sixth
    let result = w.request(Category::Service, noon() + mins(30)).await;

    // THEN it is refused with a time to retry, and no text goes out
    match result {
        Err(DomainError::RateLimited { retry_after }) => {
            assert!(retry_after > std::time::Duration::ZERO);
            assert!(retry_after <= std::time::Duration::from_secs(24 * 3600));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(w.messages_of(MessageKind::ApprovalCode).len(), 5);
    assert_eq!(w.queue.sent().len(), 5);
}

#[tokio::test]
async fn unsubscribing_revokes_by_portal_and_is_idempotent() {
    // GIVEN the number authorized accounting
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;

    // WHEN staff unsubscribe accounting, twice
    w.unsubscribe(Category::Accounting, noon() + mins(1)).await;
    w.unsubscribe(Category::Accounting, noon() + mins(2)).await;

    // THEN one portal revocation by that staff user is on the ledger
    let ledger = w.ledger();
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[1].event, ConsentEvent::RevokedByPortal);
    assert_eq!(ledger[1].actor, Actor::Staff(w.staff.clone()));
    assert_eq!(ledger[1].at, noon() + mins(1));
    assert_eq!(
        w.status_of(Category::Accounting).await,
        ConsentStatus::Revoked
    );
}

#[tokio::test]
async fn contact_views_show_none_pending_authorized_and_revoked() {
    // GIVEN accounting authorized, sales authorized then unsubscribed,
    // service requested (pending), marketing never touched
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.grant(Category::Sales, noon()).await;
    w.unsubscribe(Category::Sales, noon() + mins(1)).await;
    w.request(Category::Service, noon() + mins(2))
        .await
        .unwrap();

    // WHEN the portal lists the contact
    let views = w.views(noon() + mins(3)).await;

    // THEN each category shows its own state
    assert_eq!(
        views,
        vec![
            (Category::Accounting, AuthorizationView::Authorized),
            (Category::Service, AuthorizationView::Pending),
            (Category::Sales, AuthorizationView::Revoked),
            (Category::Marketing, AuthorizationView::None),
        ]
    );
    // AND once the service code expires it is no longer pending
    assert_eq!(
        w.views(noon() + mins(13)).await[1],
        (Category::Service, AuthorizationView::None)
    );
}

#[tokio::test]
async fn history_returns_the_ledger_oldest_first() {
    // GIVEN a grant, an unsubscribe and a grant again, an hour apart
    let w = World::new().await;
    w.grant(Category::Service, noon()).await;
    w.unsubscribe(Category::Service, noon() + mins(60)).await;
    w.grant(Category::Service, noon() + mins(120)).await;

    // WHEN the portal asks for the history
    let (contact, entries) = auth::history(&w.auth(), &w.dealer, &w.contact)
        .await
        .unwrap();

    // THEN it is the contact's number's ledger, oldest first
    assert_eq!(contact.id, w.contact);
    let events: Vec<_> = entries.iter().map(|e| (e.event, e.at)).collect();
    assert_eq!(
        events,
        vec![
            (ConsentEvent::GrantedByCode, noon()),
            (ConsentEvent::RevokedByPortal, noon() + mins(60)),
            (ConsentEvent::GrantedByCode, noon() + mins(120)),
        ]
    );
}

#[tokio::test]
async fn requesting_an_already_authorized_category_is_a_conflict() {
    // GIVEN accounting authorized
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let texts = w.queue.sent().len();

    // WHEN staff request accounting again
    let result = w.request(Category::Accounting, noon() + mins(1)).await;

    // THEN it is a conflict and no code is texted
    assert!(
        matches!(result, Err(DomainError::Conflict(_))),
        "{result:?}"
    );
    assert_eq!(w.queue.sent().len(), texts);
}

#[tokio::test]
async fn a_numbers_ledger_entries_carry_a_strictly_increasing_sequence() {
    // GIVEN two grants by code, then STOP (four revocations in one change), then START
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    w.grant(Category::Service, noon()).await;
    w.reply("SM-seq-stop", "STOP", noon() + mins(1)).await;
    w.reply("SM-seq-start", "START", noon() + mins(2)).await;

    // THEN every entry has a sequence, strictly increasing in the order they were written,
    // the ones of one change next to each other
    let sequences: Vec<u64> = w.ledger().iter().map(|e| e.sequence.unwrap()).collect();
    assert!(sequences.len() >= 8, "{sequences:?}");
    assert!(sequences.windows(2).all(|p| p[0] < p[1]), "{sequences:?}");
    // AND the event for the DMS carries it
    let last = w.ledger().last().cloned().unwrap();
    let change = consent::service::changes::Change {
        event_name: "INSERT".into(),
        sort_key: format!("LEDGER#{}", last.id),
        old: None,
        new: Some(serde_json::to_value(&last).unwrap()),
    };
    let events = consent::service::changes::events_for(&change).unwrap();
    assert_eq!(events[0].detail["sequence"], json!(last.sequence));
}
