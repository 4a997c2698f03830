//! One behaviour contract for the storage ports, run against the in-memory store
//! (`shared/consent/tests/contract.rs`) and the DynamoDB adapter on the emulator
//! (`tests/tests/contract.rs`). A fake that allows what DynamoDB refuses, or the
//! reverse, fails here: conditions, conflicts, indexes, pagination and expiry.
//!
//! Each check takes the store and a [`Ctx`] naming a dealer of its own, so checks run
//! in parallel on one table. `store_contract!` turns the list into tests.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::approval::{PendingAuthorization, MAX_ATTEMPTS};
use crate::category::Category;
use crate::error::StoreError;
use crate::ids::{AccountId, ContactId, DealerId, MessageId, StaffUserId};
use crate::ledger::{Actor, ConsentEvent, ConsentState, LedgerEntry};
use crate::message::{
    Message, MessageKind, MessageStatus, Origin, SealedCode, StatusChange, REQUEUE_AFTER,
};
use crate::phone::PhoneNumber;
use crate::ports::*;

/// Every storage port, as one store implements them.
pub trait Store:
    DealerStore
    + ContactStore
    + ConsentReader
    + ConsentWriter
    + LedgerExport
    + PendingStore
    + MessageStore
    + InboundLog
    + Conversations
    + TemplateStore
    + AutomationStore
    + WorkQueue
    + WorkQueueDesk
    + RateLimiter
{
}

impl<T> Store for T where
    T: DealerStore
        + ContactStore
        + ConsentReader
        + ConsentWriter
        + LedgerExport
        + PendingStore
        + MessageStore
        + InboundLog
        + Conversations
        + TemplateStore
        + AutomationStore
        + WorkQueue
        + WorkQueueDesk
        + RateLimiter
{
}

/// What a check needs besides the store.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// A dealer no other check uses.
    pub dealer: DealerId,
    /// Shards of the due index the store spreads messages over.
    pub shards: u32,
}

impl Ctx {
    pub fn new(name: &str, shards: u32) -> Self {
        let dealer = DealerId::parse(format!("contract-{name}").replace('_', "-"))
            .unwrap_or_else(|e| panic!("{e}"));
        Self { dealer, shards }
    }

    /// This check's texting number (one per check, so checks that own their number do not
    /// take each other's on a shared table).
    pub fn number(&self) -> PhoneNumber {
        let h = self
            .dealer
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_0000_01b3)
            });
        phone(&format!("+1202555{:04}", h % 10_000))
    }

    fn id(&self, n: u32) -> MessageId {
        // ULID-shaped, unique per dealer and n.
        let tag: u32 = self
            .dealer
            .as_str()
            .bytes()
            .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
        MessageId::parse(format!("01K{tag:010}{n:013}")).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// GSIs are eventually consistent (DynamoDB's, and the local emulator's, which lag behind
/// the table as DynamoDB's do): what a check reads back from an index it reads until
/// `holds`, for at most 5 s, and returns the last read. A store must never need this for
/// a rule; a check of an index's contents may.
pub async fn eventually<T, F, Fut>(mut read: F, holds: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let value = read().await;
        if holds(&value) || std::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// A queued template message of a contract dealer (for tests elsewhere in the crate).
#[cfg(test)]
pub(crate) fn sample_message() -> Message {
    message(&Ctx::new("sample", 4), 1, MessageStatus::Queued, t0())
}

fn message(ctx: &Ctx, n: u32, status: MessageStatus, at: DateTime<Utc>) -> Message {
    Message {
        id: ctx.id(n),
        dealer_id: ctx.dealer.clone(),
        kind: MessageKind::Template,
        contact_id: None,
        to: phone("+12025550143"),
        from: ctx.number(),
        category: Category::Accounting,
        template: Some("past-due-alert".into()),
        template_version: Some(1),
        body: "Your payment is past due.".into(),
        variables: None,
        encoding: crate::sms::Encoding::Gsm7,
        segments: 1,
        notes: None,
        origin: Origin::System,
        account_id: None,
        deal_id: None,
        recipient_time_zone: None,
        created_at: at,
        requested_at: None,
        send_at: at,
        status,
        status_reason: None,
        history: vec![StatusChange {
            status,
            at,
            reason: None,
        }],
        carrier_message_id: None,
        attempts: 0,
        code: None,
    }
}

fn pending(ctx: &Ctx, request_id: &str) -> PendingAuthorization {
    PendingAuthorization {
        dealer_id: ctx.dealer.clone(),
        phone: phone("+12025550143"),
        category: Category::Accounting,
        request_id: request_id.into(),
        code_hash: "hash-1".into(),
        contact_id: ContactId::parse("c-1").unwrap(),
        requested_by: StaffUserId::parse("staff-1").unwrap(),
        created_at: t0(),
        expires_at: t0() + Duration::minutes(10),
        attempts: 0,
        sends: 1,
        disclosure_version: "accounting-v1".into(),
        disclosure_text: None,
    }
}

async fn due_everywhere<S: Store>(s: &S, ctx: &Ctx, until: DateTime<Utc>) -> Vec<MessageId> {
    let mut ids = Vec::new();
    for shard in 0..ctx.shards {
        let due = s.due(shard, until, 1000).await.unwrap();
        ids.extend(
            due.into_iter()
                .filter(|m| m.dealer_id == ctx.dealer)
                .map(|m| m.id),
        );
    }
    ids
}

/// A message stored as queued is in the due index at the time it counts as lost, so a
/// failed queue send is requeued, never stranded.
pub async fn queued_messages_are_indexed_for_requeue<S: Store>(s: &S, ctx: &Ctx) {
    let m = message(ctx, 1, MessageStatus::Queued, t0());
    s.create(&m, None).await.unwrap();
    let ids = vec![m.id.clone()];
    assert_eq!(
        eventually(
            || due_everywhere(s, ctx, t0() + REQUEUE_AFTER),
            |d| *d == ids
        )
        .await,
        ids
    );
    assert!(
        due_everywhere(s, ctx, t0() + REQUEUE_AFTER - Duration::seconds(1))
            .await
            .is_empty()
    );
    // Saved as queued again (a requeue), it moves to its new time.
    let mut again = m.clone();
    again.transition(MessageStatus::Queued, t0() + REQUEUE_AFTER, None);
    s.save(&again, MessageStatus::Queued).await.unwrap();
    assert!(eventually(
        || due_everywhere(s, ctx, t0() + REQUEUE_AFTER),
        |d| d.is_empty()
    )
    .await
    .is_empty());
    assert_eq!(
        due_everywhere(s, ctx, t0() + REQUEUE_AFTER * 2).await,
        vec![m.id]
    );
}

/// A long ledger comes back whole, however many pages it takes.
pub async fn a_long_ledger_comes_back_whole<S: Store>(s: &S, ctx: &Ctx) {
    let p = phone("+12025550143");
    let mut state = ConsentState::default();
    for round in 0..3i64 {
        let version = round as u64;
        let entries: Vec<LedgerEntry> = (0..25)
            .map(|i| {
                let event = if i % 2 == 0 {
                    ConsentEvent::GrantedByCode
                } else {
                    ConsentEvent::RevokedByPortal
                };
                LedgerEntry::new(
                    &ctx.dealer,
                    &p,
                    Category::Accounting,
                    event,
                    Actor::Staff(StaffUserId::parse("staff-1").unwrap()),
                    t0() + Duration::minutes(round * 25 + i),
                )
            })
            .collect();
        for e in &entries {
            state.apply(e);
        }
        s.append(
            &ctx.dealer,
            &p,
            ConsentChange {
                expected_version: version,
                entries: &entries,
                new_state: &state,
                consumed: &[],
                acted: None,
            },
        )
        .await
        .unwrap();
    }
    assert_eq!(s.history(&ctx.dealer, &p).await.unwrap().len(), 75);
    // A stale version conflicts and writes nothing.
    assert!(matches!(
        s.append(
            &ctx.dealer,
            &p,
            ConsentChange {
                expected_version: 0,
                entries: &[],
                new_state: &state,
                consumed: &[],
                acted: None,
            },
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
}

/// The dealer-wide export returns exactly `[from, to)` of one dealer, oldest first,
/// across pages, and refuses a cursor it did not hand out or handed to another dealer.
pub async fn the_ledger_export_pages_a_period_of_one_dealer<S: Store>(s: &S, ctx: &Ctx) {
    let other = DealerId::parse(format!("{}-other", ctx.dealer)).unwrap();
    let staff = || Actor::Staff(StaffUserId::parse("staff-1").unwrap());
    let (from, to) = (t0(), t0() + Duration::hours(10));
    let mut expected = Vec::new();
    for (i, number) in ["+12025550143", "+13055550144", "+14155550145"]
        .iter()
        .enumerate()
    {
        let p = phone(number);
        // Entries from an hour before `from` to exactly `to`, two at the same instant.
        let times: Vec<DateTime<Utc>> = [-60i64, 0, 0, 90, 300, 599, 600]
            .iter()
            .map(|m| from + Duration::minutes(*m + i as i64))
            .map(|t| t.min(to))
            .collect();
        let entries: Vec<LedgerEntry> = times
            .iter()
            .map(|at| {
                LedgerEntry::new(
                    &ctx.dealer,
                    &p,
                    Category::Service,
                    ConsentEvent::GrantedByCode,
                    staff(),
                    *at,
                )
            })
            .collect();
        let mut state = ConsentState::default();
        entries.iter().for_each(|e| state.apply(e));
        s.append(
            &ctx.dealer,
            &p,
            ConsentChange {
                expected_version: 0,
                entries: &entries,
                new_state: &state,
                consumed: &[],
                acted: None,
            },
        )
        .await
        .unwrap();
        let theirs: Vec<LedgerEntry> = times
            .iter()
            .map(|at| {
                LedgerEntry::new(
                    &other,
                    &p,
                    Category::Service,
                    ConsentEvent::GrantedByCode,
                    staff(),
                    *at,
                )
            })
            .collect();
        s.append(
            &other,
            &p,
            ConsentChange {
                expected_version: 0,
                entries: &theirs,
                new_state: &state,
                consumed: &[],
                acted: None,
            },
        )
        .await
        .unwrap();
        expected.extend(entries.into_iter().filter(|e| e.at >= from && e.at < to));
    }
    expected.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    eventually(
        || s.ledger_between(&ctx.dealer, from, to, 100, None),
        |p| p.as_ref().is_ok_and(|p| p.entries.len() == expected.len()),
    )
    .await
    .unwrap();

    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s
            .ledger_between(&ctx.dealer, from, to, 4, cursor.as_deref())
            .await
            .unwrap();
        assert!(page.entries.len() <= 4);
        got.extend(page.entries);
        pages += 1;
        assert!(pages <= 10, "the export does not end");
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let ids = |v: &[LedgerEntry]| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&got), ids(&expected));
    assert_eq!(got.len(), 13, "5 + 4 + 4 inside the period");

    // Another dealer's cursor, or a made-up one, is refused.
    let first = s
        .ledger_between(&ctx.dealer, from, to, 2, None)
        .await
        .unwrap();
    let theirs = first.next_cursor.expect("more than one page");
    for bad in [theirs.as_str(), "not-a-cursor", ""] {
        let dealer = if bad == theirs { &other } else { &ctx.dealer };
        let refused = s.ledger_between(dealer, from, to, 2, Some(bad)).await;
        assert!(
            matches!(&refused, Err(StoreError::Corrupt { key, .. }) if key == "cursor"),
            "{bad:?}: {refused:?}"
        );
    }
    // An empty period is an empty page.
    let none = s
        .ledger_between(&ctx.dealer, to, to, 10, None)
        .await
        .unwrap();
    assert!(none.entries.is_empty() && none.next_cursor.is_none());
}

/// The open count counts every open item, however many pages it takes.
pub async fn open_counts_count_every_item<S: Store>(s: &S, ctx: &Ctx) {
    for i in 0..60 {
        s.add_item(&WorkItem {
            id: format!("01K{:023}", i),
            dealer_id: ctx.dealer.clone(),
            queue: WorkQueueName::Replies,
            kind: "reply-needs-attention".into(),
            contact_id: None,
            phone: None,
            account_id: None,
            deal_id: None,
            message_id: None,
            text: None,
            created_at: t0(),
            status: WorkItemStatus::Open,
            handling: Default::default(),
        })
        .await
        .unwrap();
    }
    assert_eq!(
        eventually(
            || s.open_count(&ctx.dealer, WorkQueueName::Replies),
            |n| n.as_ref().is_ok_and(|n| *n == 60)
        )
        .await
        .unwrap(),
        60
    );
}

/// Two edits made from the same read: the second conflicts, so no stale link stays.
/// The conversation of a number: outbound messages and inbound texts, newest first,
/// across pages; an inbound text is kept once however often its webhook is retried; a
/// cursor only continues its own conversation; inbound texts never pass for messages.
pub async fn conversations_interleave_both_directions<S: Store>(s: &S, ctx: &Ctx) {
    let p = phone("+12025550188");
    let other = phone("+12025550189");
    let mut expected = Vec::new();
    for i in 0..5u32 {
        let mut m = message(ctx, 100 + i, MessageStatus::Sent, t0());
        m.to = p.clone();
        s.create(&m, None).await.unwrap();
        expected.push(m.id.as_str().to_owned());
        let text = InboundText {
            id: crate::ids::new_ulid(),
            dealer_id: ctx.dealer.clone(),
            from: p.clone(),
            to: phone("+12025550100"),
            body: format!("reply {i}"),
            carrier_message_id: format!("SM-{}-{i}", ctx.dealer),
            received_at: t0(),
            read_as: "other".into(),
            language: "en".into(),
        };
        s.record_text(&text).await.unwrap();
        // The webhook retried: a second copy with a new id is not kept.
        s.record_text(&InboundText {
            id: crate::ids::new_ulid(),
            ..text.clone()
        })
        .await
        .unwrap();
        expected.push(text.id.clone());
    }
    let mut m = message(ctx, 200, MessageStatus::Sent, t0());
    m.to = other.clone();
    s.create(&m, None).await.unwrap();
    expected.sort();
    expected.reverse();
    eventually(
        || s.conversation(&ctx.dealer, &p, 100, None),
        |c| c.as_ref().is_ok_and(|c| c.entries.len() == expected.len()),
    )
    .await
    .unwrap();
    eventually(
        || s.by_recipient(&ctx.dealer, &other, &[MessageStatus::Sent]),
        |m| m.as_ref().is_ok_and(|m| m.len() == 1),
    )
    .await
    .unwrap();

    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let page = s
            .conversation(&ctx.dealer, &p, 3, cursor.as_deref())
            .await
            .unwrap();
        assert!(page.entries.len() <= 3);
        got.extend(page.entries.iter().map(|e| e.id().to_owned()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got, expected, "newest first, both directions, each once");
    // A cursor of this conversation does not continue another number's.
    let first = s.conversation(&ctx.dealer, &p, 2, None).await.unwrap();
    let refused = s
        .conversation(&ctx.dealer, &other, 2, first.next_cursor.as_deref())
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Corrupt { key, .. }) if key == "cursor"),
        "{refused:?}"
    );
    // Inbound texts are not messages.
    let messages = s
        .by_recipient(&ctx.dealer, &p, &[MessageStatus::Sent])
        .await
        .unwrap();
    assert_eq!(messages.len(), 5);
}

/// A dealer's automations are theirs alone, one per event type.
pub async fn automations_are_per_dealer_and_event_type<S: Store>(s: &S, ctx: &Ctx) {
    let other = DealerId::parse(format!("{}-other", ctx.dealer)).unwrap();
    let setting = |event: &str, enabled| crate::automation::Automation {
        event_type: event.into(),
        template: "service-reminder".into(),
        enabled,
        updated_at: t0(),
        updated_by: "admin-1".into(),
    };
    s.put_automation(&ctx.dealer, &setting("ServiceDue", true))
        .await
        .unwrap();
    s.put_automation(&ctx.dealer, &setting("ServiceDue", false))
        .await
        .unwrap();
    s.put_automation(&ctx.dealer, &setting("VehicleSold", true))
        .await
        .unwrap();
    let mut all = s.automations(&ctx.dealer).await.unwrap();
    all.sort_by(|a, b| a.event_type.cmp(&b.event_type));
    assert_eq!(
        all,
        vec![setting("ServiceDue", false), setting("VehicleSold", true)]
    );
    assert_eq!(
        s.automation(&ctx.dealer, "ServiceDue").await.unwrap(),
        Some(setting("ServiceDue", false))
    );
    assert!(s.automations(&other).await.unwrap().is_empty());
    assert_eq!(s.automation(&other, "ServiceDue").await.unwrap(), None);
}

/// A dealer's template changes only from the version read, and is the dealer's alone.
pub async fn templates_change_from_the_version_read<S: Store>(s: &S, ctx: &Ctx) {
    let other = DealerId::parse(format!("{}-other", ctx.dealer)).unwrap();
    let v1 = crate::template::DealerTemplate {
        name: "recall".into(),
        title: "Recall".into(),
        category: Category::Service,
        body: "{dealerName}: recall for your {model}.".into(),
        placeholder_types: Default::default(),
        version: 1,
        updated_at: t0(),
        updated_by: "staff-1".into(),
    };
    s.put_template(&ctx.dealer, &v1, None).await.unwrap();
    assert!(matches!(
        s.put_template(&ctx.dealer, &v1, None).await,
        Err(StoreError::Conflict(_))
    ));
    let v2 = crate::template::DealerTemplate {
        version: 2,
        body: "{dealerName}: recall notice for your {model}.".into(),
        ..v1.clone()
    };
    s.put_template(&ctx.dealer, &v2, Some(1)).await.unwrap();
    assert!(matches!(
        s.put_template(&ctx.dealer, &v2, Some(1)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.dealer_templates(&ctx.dealer).await.unwrap(),
        vec![v2.clone()]
    );
    assert_eq!(s.dealer_template(&other, "recall").await.unwrap(), None);
    assert!(!s.delete_template(&other, "recall").await.unwrap());
    assert!(s.delete_template(&ctx.dealer, "recall").await.unwrap());
    assert!(!s.delete_template(&ctx.dealer, "recall").await.unwrap());
    assert_eq!(
        s.dealer_template(&ctx.dealer, "recall").await.unwrap(),
        None
    );
}

/// Contact lists and a number's ledger page in order, one bounded read per page.
pub async fn lists_page_in_order<S: Store>(s: &S, ctx: &Ctx) {
    let account = AccountId::parse("A-P").unwrap();
    let link = ContactLink::Account(account.clone());
    for i in (1..=7).rev() {
        let c = Contact {
            id: ContactId::parse(format!("c-p{i}")).unwrap(),
            dealer_id: ctx.dealer.clone(),
            name: "P".into(),
            phone: phone(&format!("+1202555016{i}")),
            account_ids: vec![account.clone()],
            deal_ids: vec![],
            time_zone: None,
            updated_at: t0(),
        };
        s.put_contact(&c, None).await.unwrap();
    }
    let mut pages = Vec::new();
    let mut after: Option<ContactId> = None;
    loop {
        let (page, more) = s
            .linked_contacts(&ctx.dealer, &link, 3, after.as_ref())
            .await
            .unwrap();
        pages.push(
            page.iter()
                .map(|c| c.id.as_str().to_owned())
                .collect::<Vec<_>>(),
        );
        after = page.last().map(|c| c.id.clone());
        if !more {
            break;
        }
        assert!(pages.len() < 5, "the list ends");
    }
    assert_eq!(
        pages,
        [
            vec!["c-p1", "c-p2", "c-p3"],
            vec!["c-p4", "c-p5", "c-p6"],
            vec!["c-p7"]
        ]
    );
    let p = phone("+12025550199");
    let entries: Vec<LedgerEntry> = (0..5)
        .map(|i| {
            LedgerEntry::new(
                &ctx.dealer,
                &p,
                Category::Sales,
                ConsentEvent::RevokedByPortal,
                Actor::Staff(StaffUserId::parse("staff-1").unwrap()),
                t0() + Duration::minutes(i),
            )
        })
        .collect();
    let state = ConsentState::from_ledger(&entries);
    s.append(
        &ctx.dealer,
        &p,
        ConsentChange {
            expected_version: 0,
            entries: &entries,
            new_state: &state,
            consumed: &[],
            acted: None,
        },
    )
    .await
    .unwrap();
    let (first, more) = s.history_page(&ctx.dealer, &p, 2, None).await.unwrap();
    assert!(more);
    let (rest, more) = s
        .history_page(&ctx.dealer, &p, 10, Some(&first[1].id))
        .await
        .unwrap();
    assert!(!more);
    let ids: Vec<_> = first.iter().chain(&rest).map(|e| e.id.clone()).collect();
    assert_eq!(
        ids,
        entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );
}

/// Deleting a contact removes it and its links, only from the version read; the
/// number's consent ledger stays.
pub async fn a_deleted_contact_leaves_its_ledger<S: Store>(s: &S, ctx: &Ctx) {
    let account = AccountId::parse("A-9").unwrap();
    let deal = crate::ids::DealId::parse("D-9").unwrap();
    let p = phone("+12025550177");
    let contact = Contact {
        id: ContactId::parse("c-9").unwrap(),
        dealer_id: ctx.dealer.clone(),
        name: "Dana".into(),
        phone: p.clone(),
        account_ids: vec![account.clone()],
        deal_ids: vec![deal.clone()],
        time_zone: None,
        updated_at: t0(),
    };
    s.put_contact(&contact, None).await.unwrap();
    let grant = LedgerEntry::new(
        &ctx.dealer,
        &p,
        Category::Service,
        ConsentEvent::GrantedByCode,
        Actor::Staff(StaffUserId::parse("staff-1").unwrap()),
        t0(),
    );
    let state = ConsentState::from_ledger([&grant]);
    s.append(
        &ctx.dealer,
        &p,
        ConsentChange {
            expected_version: 0,
            entries: std::slice::from_ref(&grant),
            new_state: &state,
            consumed: &[],
            acted: None,
        },
    )
    .await
    .unwrap();
    // An edit made after the read: the delete from the old read conflicts.
    let edited = Contact {
        name: "Dana R.".into(),
        updated_at: t0() + Duration::minutes(1),
        ..contact.clone()
    };
    s.put_contact(&edited, Some(&contact)).await.unwrap();
    assert!(matches!(
        s.delete_contact(&contact).await,
        Err(StoreError::Conflict(_))
    ));
    s.delete_contact(&edited).await.unwrap();
    assert_eq!(s.contact(&ctx.dealer, &contact.id).await.unwrap(), None);
    assert!(s
        .contacts_by_account(&ctx.dealer, &account)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .contacts_by_deal(&ctx.dealer, &deal)
        .await
        .unwrap()
        .is_empty());
    assert!(eventually(
        || s.contacts_by_phone(&ctx.dealer, &p),
        |c| c.as_ref().is_ok_and(|c| c.is_empty())
    )
    .await
    .unwrap()
    .is_empty());
    // Deleting it again finds nothing to delete.
    assert!(matches!(
        s.delete_contact(&edited).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.history(&ctx.dealer, &p).await.unwrap(), vec![grant]);
}

pub async fn contact_edits_from_one_read_conflict<S: Store>(s: &S, ctx: &Ctx) {
    let a1 = AccountId::parse("A-1").unwrap();
    let a2 = AccountId::parse("A-2").unwrap();
    let a3 = AccountId::parse("A-3").unwrap();
    let first = Contact {
        id: ContactId::parse("c-1").unwrap(),
        dealer_id: ctx.dealer.clone(),
        name: "Alex".into(),
        phone: phone("+12025550143"),
        account_ids: vec![a1.clone()],
        deal_ids: vec![],
        time_zone: None,
        updated_at: t0(),
    };
    s.put_contact(&first, None).await.unwrap();
    // Creating it again as if new conflicts.
    assert!(matches!(
        s.put_contact(&first, None).await,
        Err(StoreError::Conflict(_))
    ));
    let edit = |account: &AccountId, minute| Contact {
        account_ids: vec![account.clone()],
        updated_at: t0() + Duration::minutes(minute),
        ..first.clone()
    };
    s.put_contact(&edit(&a2, 1), Some(&first)).await.unwrap();
    assert!(matches!(
        s.put_contact(&edit(&a3, 2), Some(&first)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(s
        .contacts_by_account(&ctx.dealer, &a1)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.contacts_by_account(&ctx.dealer, &a2).await.unwrap().len(),
        1
    );
    assert!(s
        .contacts_by_account(&ctx.dealer, &a3)
        .await
        .unwrap()
        .is_empty());
}

/// An idempotency key answers for its time to live, then is absent and can be taken again.
pub async fn expired_idempotency_keys_are_absent_and_free<S: Store>(s: &S, ctx: &Ctx) {
    let record = |n: u32, at: DateTime<Utc>| IdempotencyRecord {
        dealer_id: ctx.dealer.clone(),
        key: "k-1".into(),
        request_hash: "h".into(),
        message_id: ctx.id(n),
        created_at: at,
    };
    let first = message(ctx, 1, MessageStatus::Queued, t0());
    s.create(&first, Some(&record(1, t0()))).await.unwrap();
    let later = t0() + IDEMPOTENCY_TTL + Duration::hours(1);
    assert_eq!(
        s.idempotency(&ctx.dealer, "k-1", t0() + Duration::days(1))
            .await
            .unwrap()
            .map(|r| r.message_id),
        Some(first.id)
    );
    assert_eq!(
        s.idempotency(&ctx.dealer, "k-1", later).await.unwrap(),
        None
    );
    let second = message(ctx, 2, MessageStatus::Queued, later);
    s.create(&second, Some(&record(2, later))).await.unwrap();
    let third = message(ctx, 3, MessageStatus::Queued, later);
    assert!(matches!(
        s.create(&third, Some(&record(3, later + Duration::hours(1))))
            .await,
        Err(StoreError::Conflict(_))
    ));
}

/// A request is made once however many Authorize clicks race; a live one is never
/// replaced (an expired or used-up one is); of two resends at once one wins; a failed
/// code text voids its request only while the request still holds that text's code.
pub async fn pending_requests_are_made_once_and_a_stale_code_voids_nothing<S: Store>(
    s: &S,
    ctx: &Ctx,
) {
    let racers: Vec<PendingAuthorization> =
        (0..6).map(|k| pending(ctx, &format!("r-{k}"))).collect();
    let made = futures_join_all(racers.iter().map(|p| s.put_pending(p))).await;
    assert_eq!(made.iter().filter(|r| r.is_ok()).count(), 1, "{made:?}");
    assert!(made
        .iter()
        .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict(_)))));
    let live = s
        .pending(&ctx.dealer, &racers[0].phone, Category::Accounting)
        .await
        .unwrap()
        .unwrap();
    // Two resends of it at once (both read send 1): one wins
    let resends: Vec<PendingAuthorization> = ["hash-a", "hash-b"]
        .iter()
        .map(|h| PendingAuthorization {
            code_hash: (*h).into(),
            sends: 2,
            ..live.clone()
        })
        .collect();
    let resent = futures_join_all(resends.iter().map(|p| s.replace_code(p))).await;
    assert_eq!(resent.iter().filter(|r| r.is_ok()).count(), 1, "{resent:?}");
    // The first code's text failed: the request now holds send 2's code, so it stays
    s.void(
        &ctx.dealer,
        &live.phone,
        live.category,
        &live.request_id,
        Some(1),
    )
    .await
    .unwrap();
    let after = s
        .pending(&ctx.dealer, &live.phone, live.category)
        .await
        .unwrap()
        .expect("a later resend's code stays live");
    assert_eq!(after.sends, 2);
    // ... and send 2's text failing voids it
    s.void(
        &ctx.dealer,
        &live.phone,
        live.category,
        &live.request_id,
        Some(2),
    )
    .await
    .unwrap();
    assert!(s
        .pending(&ctx.dealer, &live.phone, live.category)
        .await
        .unwrap()
        .is_none());
    // An expired request is replaced by a new one
    let old = PendingAuthorization {
        request_id: "r-old".into(),
        category: Category::Service,
        ..pending(ctx, "r-old")
    };
    s.put_pending(&old).await.unwrap();
    let later = PendingAuthorization {
        request_id: "r-later".into(),
        category: Category::Service,
        created_at: old.expires_at + Duration::seconds(1),
        expires_at: old.expires_at + Duration::minutes(11),
        ..pending(ctx, "r-later")
    };
    s.put_pending(&later).await.unwrap();
    let early = PendingAuthorization {
        request_id: "r-early".into(),
        created_at: later.created_at + Duration::seconds(5),
        ..later.clone()
    };
    assert!(matches!(
        s.put_pending(&early).await,
        Err(StoreError::Conflict(_))
    ));
}

/// However many guesses race, at most MAX_ATTEMPTS tries are taken.
pub async fn tries_are_taken_at_most_five_times_in_parallel<S: Store>(s: &S, ctx: &Ctx) {
    let p = pending(ctx, "r-1");
    s.put_pending(&p).await.unwrap();
    let guesses = (0..30).map(|_| s.take_attempt(&p));
    let taken = futures_join_all(guesses).await;
    let granted = taken
        .into_iter()
        .map(|r| r.unwrap())
        .filter(Option::is_some)
        .count();
    assert_eq!(granted, MAX_ATTEMPTS as usize);
    let stored = s
        .pending(&ctx.dealer, &p.phone, p.category)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.attempts, MAX_ATTEMPTS);
}

/// A resend changes the code and the send count, never the tries counted; only the
/// same request can be resent or voided.
pub async fn resends_keep_tries_and_void_takes_the_same_request<S: Store>(s: &S, ctx: &Ctx) {
    let p = pending(ctx, "r-1");
    s.put_pending(&p).await.unwrap();
    s.take_attempt(&p).await.unwrap().unwrap();
    s.take_attempt(&p).await.unwrap().unwrap();
    let resent = PendingAuthorization {
        code_hash: "hash-2".into(),
        sends: 2,
        ..p.clone()
    };
    s.replace_code(&resent).await.unwrap();
    let stored = s
        .pending(&ctx.dealer, &p.phone, p.category)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.attempts, stored.code_hash.as_str(), stored.sends),
        (2, "hash-2", 2)
    );
    let other = pending(ctx, "r-0");
    assert!(matches!(
        s.replace_code(&other).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.take_attempt(&other).await.unwrap(), None);
    s.void(&ctx.dealer, &p.phone, p.category, "r-0", None)
        .await
        .unwrap();
    assert!(s
        .pending(&ctx.dealer, &p.phone, p.category)
        .await
        .unwrap()
        .is_some());
    s.void(&ctx.dealer, &p.phone, p.category, "r-1", None)
        .await
        .unwrap();
    assert!(s
        .pending(&ctx.dealer, &p.phone, p.category)
        .await
        .unwrap()
        .is_none());
}

/// A carrier message id is acted on once, for as long as the ledger is kept.
pub async fn inbound_ids_never_expire<S: Store>(s: &S, ctx: &Ctx) {
    let sid = format!("SM-{}", ctx.dealer);
    assert!(!s.finished(&sid).await.unwrap());
    s.finish(&sid, t0()).await.unwrap();
    // A replay five years on is still finished (no expiry), and finishing again is harmless.
    s.finish(&sid, t0() + Duration::days(5 * 365))
        .await
        .unwrap();
    assert!(s.finished(&sid).await.unwrap());
    assert!(!s.finished(&format!("{sid}-other")).await.unwrap());
}

/// A reply's consent change and its acted mark are written together, once: a second
/// change under the same mark is refused whole, and the mark says what the first changed.
pub async fn a_replys_consent_change_carries_its_acted_mark_once<S: Store>(s: &S, ctx: &Ctx) {
    let p = phone("+12025550183");
    let sid = format!("SM-acted-{}", ctx.dealer);
    assert_eq!(s.acted(&sid).await.unwrap(), None);
    let revoke = |c| {
        LedgerEntry::new(
            &ctx.dealer,
            &p,
            c,
            ConsentEvent::RevokedByReply,
            Actor::Phone,
            t0(),
        )
        .with_evidence(sid.clone())
    };
    let entries = vec![revoke(Category::Service), revoke(Category::Sales)];
    let state = ConsentState::from_ledger(entries.iter());
    s.append(
        &ctx.dealer,
        &p,
        ConsentChange {
            expected_version: 0,
            entries: &entries,
            new_state: &state,
            consumed: &[],
            acted: Some(&sid),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        s.acted(&sid).await.unwrap(),
        Some(ActedMark {
            categories: vec![Category::Service, Category::Sales]
        })
    );
    // The same reply again, at the version it now reads: the mark refuses it, nothing written.
    let again = vec![revoke(Category::Marketing)];
    let mut next = state.clone();
    for e in &again {
        next.apply(e);
    }
    assert!(matches!(
        s.append(
            &ctx.dealer,
            &p,
            ConsentChange {
                expected_version: 1,
                entries: &again,
                new_state: &next,
                consumed: &[],
                acted: Some(&sid),
            },
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.history(&ctx.dealer, &p).await.unwrap().len(), 2);
    assert_eq!(s.consent(&ctx.dealer, &p).await.unwrap().version, 1);
    // A change without a mark, or with another reply's, still goes through.
    s.append(
        &ctx.dealer,
        &p,
        ConsentChange {
            expected_version: 1,
            entries: &again,
            new_state: &next,
            consumed: &[],
            acted: Some(&format!("{sid}-2")),
        },
    )
    .await
    .unwrap();
    assert_eq!(s.history(&ctx.dealer, &p).await.unwrap().len(), 3);
}

/// One pay request is confirmed by one CONFIRM: the claim is kept for the first CONFIRM
/// (its redelivery holds it again), never for another, even when they race.
pub async fn a_pay_request_is_confirmed_once<S: Store>(s: &S, ctx: &Ctx) {
    let request = MessageId::generate();
    let racers: Vec<String> = (0..12)
        .map(|i| format!("SM-confirm-{}-{i}", ctx.dealer))
        .collect();
    let claims =
        futures::future::join_all(racers.iter().map(|sid| s.claim_confirmation(&request, sid)))
            .await;
    let winners: Vec<&String> = racers
        .iter()
        .zip(&claims)
        .filter(|(_, c)| matches!(c, Ok(true)))
        .map(|(sid, _)| sid)
        .collect();
    assert_eq!(winners.len(), 1, "{claims:?}");
    assert!(s.claim_confirmation(&request, winners[0]).await.unwrap());
    let loser = racers.iter().find(|r| *r != winners[0]).unwrap();
    assert!(!s.claim_confirmation(&request, loser).await.unwrap());
    // Another request is free.
    assert!(s
        .claim_confirmation(&MessageId::generate(), loser)
        .await
        .unwrap());
}

/// A staff item is added once per id: a second add with the same id is a conflict and
/// keeps the first.
pub async fn work_items_are_added_once_per_id<S: Store>(s: &S, ctx: &Ctx) {
    let item = WorkItem {
        id: crate::ids::new_ulid(),
        dealer_id: ctx.dealer.clone(),
        queue: WorkQueueName::Replies,
        kind: "reply-needs-attention".into(),
        contact_id: None,
        phone: Some(phone("+12025550184")),
        account_id: None,
        deal_id: None,
        message_id: None,
        text: Some("first".into()),
        created_at: t0(),
        status: WorkItemStatus::Open,
        handling: Default::default(),
    };
    s.add_item(&item).await.unwrap();
    let second = WorkItem {
        text: Some("second".into()),
        ..item.clone()
    };
    assert!(matches!(
        s.add_item(&second).await,
        Err(StoreError::Conflict(_))
    ));
    let kept = s
        .item(&ctx.dealer, WorkQueueName::Replies, &item.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.text.as_deref(), Some("first"));
    assert_eq!(
        eventually(
            || s.open_count(&ctx.dealer, WorkQueueName::Replies),
            |n| n.as_ref().is_ok_and(|n| *n == 1)
        )
        .await
        .unwrap(),
        1
    );
}

/// A claim holds only for what is stored; a code text's sealed code goes once it went.
pub async fn claims_check_the_stored_message<S: Store>(s: &S, ctx: &Ctx) {
    own_number(s, ctx, &ctx.number(), None).await;
    let mut m = message(ctx, 1, MessageStatus::Queued, t0());
    m.kind = MessageKind::ApprovalCode;
    m.code = Some(SealedCode {
        sealed: "c2VhbGVk".into(),
        request_id: "r-1".into(),
        sends: Some(1),
    });
    s.create(&m, None).await.unwrap();
    let true_copy = m.snapshot();
    let forgeries = [
        crate::message::DeliverySnapshot {
            kind: MessageKind::Reply,
            ..true_copy.clone()
        },
        crate::message::DeliverySnapshot {
            to: phone("+13125550199"),
            ..true_copy.clone()
        },
        crate::message::DeliverySnapshot {
            body: "other".into(),
            ..true_copy.clone()
        },
        crate::message::DeliverySnapshot {
            code: None,
            ..true_copy.clone()
        },
    ];
    for forged in &forgeries {
        let expected = ClaimExpectation {
            dealer: &ctx.dealer,
            snapshot: forged,
            book: None,
        };
        assert_eq!(
            s.claim_for_delivery(&m.id, &expected, t0(), None)
                .await
                .unwrap(),
            DeliveryClaim::Mismatch
        );
    }
    let other_dealer = DealerId::parse("someone-else").unwrap();
    let foreign = ClaimExpectation {
        dealer: &other_dealer,
        snapshot: &true_copy,
        book: None,
    };
    assert_eq!(
        s.claim_for_delivery(&m.id, &foreign, t0(), None)
            .await
            .unwrap(),
        DeliveryClaim::Mismatch
    );
    let expected = ClaimExpectation {
        dealer: &ctx.dealer,
        snapshot: &true_copy,
        book: None,
    };
    let (a, b) = futures_join2(
        s.claim_for_delivery(&m.id, &expected, t0(), None),
        s.claim_for_delivery(&m.id, &expected, t0(), None),
    )
    .await;
    let wins = [a.unwrap(), b.unwrap()]
        .into_iter()
        .filter(|c| *c == DeliveryClaim::Claimed)
        .count();
    assert_eq!(wins, 1);
    let sent = DeliveryRecord {
        status: MessageStatus::Sent,
        at: t0(),
        reason: None,
        carrier_message_id: Some("SM-1".into()),
        send_at: None,
        attempted: true,
    };
    s.record_delivery(&m.id, MessageStatus::Sending, &sent)
        .await
        .unwrap();
    let stored = s.message(&m.id).await.unwrap().unwrap();
    assert_eq!(stored.status, MessageStatus::Sent);
    assert_eq!(stored.code, None);
    // The call was counted on the message.
    assert_eq!(stored.attempts, m.attempts + 1);
}

/// An opt-out belongs to the pair of numbers; a claim stops at it, except for answers
/// to the person's own texts; START (clearing it) lets texts through again.
pub async fn opt_outs_stop_claims_but_not_replies<S: Store>(s: &S, ctx: &Ctx) {
    own_number(s, ctx, &ctx.number(), None).await;
    let template = message(ctx, 1, MessageStatus::Queued, t0());
    let mut reply = message(ctx, 2, MessageStatus::Queued, t0());
    reply.kind = MessageKind::Reply;
    s.create(&template, None).await.unwrap();
    s.create(&reply, None).await.unwrap();
    // Another texting number of the same person is not blocked by it.
    let other_number = phone("+12025550199");
    s.set_opted_out(&template.from, &template.to, true, t0())
        .await
        .unwrap();
    assert!(s.opted_out(&template.from, &template.to).await.unwrap());
    assert!(!s.opted_out(&other_number, &template.to).await.unwrap());
    let (state, blocked) = s
        .consent_to_text(&ctx.dealer, &template.to, &template.from)
        .await
        .unwrap();
    assert_eq!((state.version, blocked), (0, true));
    let (_, blocked) = s
        .consent_to_text(&ctx.dealer, &template.to, &other_number)
        .await
        .unwrap();
    assert!(!blocked);
    assert_eq!(
        claim_as_stored(s, ctx, &template).await,
        DeliveryClaim::OptedOut
    );
    assert_eq!(
        claim_as_stored(s, ctx, &reply).await,
        DeliveryClaim::Claimed
    );
    s.set_opted_out(&template.from, &template.to, false, t0())
        .await
        .unwrap();
    assert!(!s.opted_out(&template.from, &template.to).await.unwrap());
    assert_eq!(
        claim_as_stored(s, ctx, &template).await,
        DeliveryClaim::Claimed
    );
}

/// A cap book moves on only from the version its writer read: of writers that read
/// the same version (a create or a claim) exactly one wins, however many race; the
/// book reads back at once (no index lag) with the listed messages as they are now,
/// and each category has its own.
pub async fn cap_books_move_on_from_the_version_read<S: Store>(s: &S, ctx: &Ctx) {
    own_number(s, ctx, &ctx.number(), None).await;
    let mut first = message(ctx, 1, MessageStatus::Queued, t0());
    first.category = Category::Marketing;
    let book = |read: u64, ids: Vec<MessageId>| CapBookWrite {
        dealer: ctx.dealer.clone(),
        phone: first.to.clone(),
        category: Category::Marketing,
        read,
        ids,
    };
    assert_eq!(
        s.cap_book(&ctx.dealer, &first.to, Category::Marketing)
            .await
            .unwrap(),
        CapBook::default()
    );
    s.create_counted(&first, None, &book(0, vec![first.id.clone()]))
        .await
        .unwrap();
    let read = s
        .cap_book(&ctx.dealer, &first.to, Category::Marketing)
        .await
        .unwrap();
    assert_eq!(read.version, 1);
    assert_eq!(read.messages, vec![first.clone()], "read back at once");
    assert_eq!(
        s.cap_book(&ctx.dealer, &first.to, Category::Service)
            .await
            .unwrap(),
        CapBook::default(),
        "a book per category"
    );

    // Eight creates that all read version 1: one is stored, the others stored nothing.
    let racers: Vec<Message> = (10..18)
        .map(|n| Message {
            category: Category::Marketing,
            ..message(ctx, n, MessageStatus::Queued, t0())
        })
        .collect();
    let writes: Vec<CapBookWrite> = racers
        .iter()
        .map(|m| book(1, vec![first.id.clone(), m.id.clone()]))
        .collect();
    let results = futures_join_all(
        racers
            .iter()
            .zip(&writes)
            .map(|(m, w)| s.create_counted(m, None, w)),
    )
    .await;
    let won: Vec<&Message> = racers
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|(m, _)| m)
        .collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for (m, r) in racers.iter().zip(&results) {
        if r.is_err() {
            assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
            assert_eq!(s.message(&m.id).await.unwrap(), None, "nothing stored");
        }
    }
    let read = s
        .cap_book(&ctx.dealer, &first.to, Category::Marketing)
        .await
        .unwrap();
    assert_eq!(read.version, 2);
    assert_eq!(read.messages.len(), 2);

    // A claim from a stale read is refused and leaves the message queued; from the
    // current one it claims and moves the book on.
    let snapshot = first.snapshot();
    let stale = book(1, vec![first.id.clone()]);
    let claim = |b| ClaimExpectation {
        dealer: &ctx.dealer,
        snapshot: &snapshot,
        book: Some(b),
    };
    assert_eq!(
        s.claim_for_delivery(&first.id, &claim(&stale), t0(), None)
            .await
            .unwrap(),
        DeliveryClaim::BookMoved
    );
    assert_eq!(
        s.message(&first.id).await.unwrap().unwrap().status,
        MessageStatus::Queued
    );
    let current = book(2, vec![first.id.clone(), won[0].id.clone()]);
    assert_eq!(
        s.claim_for_delivery(&first.id, &claim(&current), t0(), None)
            .await
            .unwrap(),
        DeliveryClaim::Claimed
    );
    let read = s
        .cap_book(&ctx.dealer, &first.to, Category::Marketing)
        .await
        .unwrap();
    assert_eq!(read.version, 3);
    let statuses: Vec<MessageStatus> = read.messages.iter().map(|m| m.status).collect();
    assert!(statuses.contains(&MessageStatus::Sending), "{statuses:?}");
}

/// A deleted contact's texts are not claimed (answers to the person's own texts are).
/// The check's dealer takes `number` as its texting number (releasing `previous`).
async fn own_number<S: Store>(
    s: &S,
    ctx: &Ctx,
    number: &PhoneNumber,
    previous: Option<&PhoneNumber>,
) {
    let dealer = Dealer {
        id: ctx.dealer.clone(),
        name: "Contract Motors".into(),
        texting_number: number.clone(),
        help_contact: None,
        time_zone: None,
    };
    s.put_dealer(&dealer, previous).await.unwrap();
}

/// A dealer that changed its texting number sends nothing from the old one: the claim
/// stops (`NumberMoved`, nothing written), the message is moved to the new number once
/// (only while it is queued and still from the old one), and claims from there.
pub async fn claims_stop_when_the_dealer_changed_its_number<S: Store>(s: &S, ctx: &Ctx) {
    let old = ctx.number();
    own_number(s, ctx, &old, None).await;
    let m = message(ctx, 1, MessageStatus::Queued, t0());
    let sent_before = message(ctx, 2, MessageStatus::Queued, t0());
    for m in [&m, &sent_before] {
        s.create(m, None).await.unwrap();
    }
    assert_eq!(
        claim_as_stored(s, ctx, &sent_before).await,
        DeliveryClaim::Claimed
    );
    // The dealer moves to another number.
    let new = phone(&format!(
        "+1202555{:04}",
        (old.as_str()[8..].parse::<u32>().unwrap() + 1) % 10_000
    ));
    own_number(s, ctx, &new, Some(&old)).await;
    assert_eq!(
        claim_as_stored(s, ctx, &m).await,
        DeliveryClaim::NumberMoved
    );
    assert_eq!(
        s.message(&m.id).await.unwrap().unwrap().status,
        MessageStatus::Queued
    );
    // Moved once; a second move from the old number finds nothing to move.
    assert!(s.repoint(&m.id, &old, &new).await.unwrap());
    assert!(!s.repoint(&m.id, &old, &new).await.unwrap());
    // A message no longer queued is not moved.
    assert!(!s.repoint(&sent_before.id, &old, &new).await.unwrap());
    let moved = s.message(&m.id).await.unwrap().unwrap();
    assert_eq!(moved.from, new);
    assert_eq!(
        claim_as_stored(s, ctx, &moved).await,
        DeliveryClaim::Claimed
    );
}

pub async fn claims_stop_at_a_deleted_contact<S: Store>(s: &S, ctx: &Ctx) {
    own_number(s, ctx, &ctx.number(), None).await;
    let contact = Contact {
        id: ContactId::parse("c-gone").unwrap(),
        dealer_id: ctx.dealer.clone(),
        name: "Gale".into(),
        phone: phone("+12025550143"),
        account_ids: vec![],
        deal_ids: vec![],
        time_zone: None,
        updated_at: t0(),
    };
    s.put_contact(&contact, None).await.unwrap();
    let for_contact = |n| Message {
        contact_id: Some(contact.id.clone()),
        ..message(ctx, n, MessageStatus::Queued, t0())
    };
    let (first, second) = (for_contact(1), for_contact(2));
    let reply = Message {
        kind: MessageKind::Reply,
        ..for_contact(3)
    };
    for m in [&first, &second, &reply] {
        s.create(m, None).await.unwrap();
    }
    assert_eq!(
        claim_as_stored(s, ctx, &first).await,
        DeliveryClaim::Claimed
    );
    s.delete_contact(&contact).await.unwrap();
    assert_eq!(
        claim_as_stored(s, ctx, &second).await,
        DeliveryClaim::ContactGone
    );
    assert_eq!(
        s.message(&second.id).await.unwrap().unwrap().status,
        MessageStatus::Queued
    );
    assert_eq!(
        claim_as_stored(s, ctx, &reply).await,
        DeliveryClaim::Claimed
    );
}

/// The newest message of a kind reads back at once (no index), per dealer, number and
/// kind, the later note replacing the earlier.
pub async fn latest_messages_are_noted_per_number_and_kind_and_read_back_at_once<S: Store>(
    s: &S,
    ctx: &Ctx,
) {
    let (p, other) = (phone("+12025550143"), phone("+12025550144"));
    let (pay, confirm) = ("text-to-pay-reminder", "pay-confirm");
    assert_eq!(s.latest(&ctx.dealer, &p, pay).await.unwrap(), None);
    s.note_latest(&ctx.dealer, &p, pay, &ctx.id(1))
        .await
        .unwrap();
    assert_eq!(
        s.latest(&ctx.dealer, &p, pay).await.unwrap(),
        Some(ctx.id(1))
    );
    s.note_latest(&ctx.dealer, &p, pay, &ctx.id(2))
        .await
        .unwrap();
    assert_eq!(
        s.latest(&ctx.dealer, &p, pay).await.unwrap(),
        Some(ctx.id(2))
    );
    assert_eq!(s.latest(&ctx.dealer, &p, confirm).await.unwrap(), None);
    assert_eq!(s.latest(&ctx.dealer, &other, pay).await.unwrap(), None);
}

/// Claims `m` expecting what it says.
async fn claim_as_stored<S: Store>(s: &S, ctx: &Ctx, m: &Message) -> DeliveryClaim {
    let snapshot = m.snapshot();
    let expected = ClaimExpectation {
        dealer: &ctx.dealer,
        snapshot: &snapshot,
        book: None,
    };
    s.claim_for_delivery(&m.id, &expected, t0(), None)
        .await
        .unwrap()
}

/// Polls futures together (no runtime dependency in this crate): each is driven to
/// completion, interleaved at every await, as a runtime would.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

async fn futures_join2<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let mut a = Box::pin(a);
    let mut b = Box::pin(b);
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    (ra.expect("finished"), rb.expect("finished"))
}

/// Units are taken whole or not at all, a window never holds more than its limit however
/// many ask at once, and the next window starts from nothing.
pub async fn rate_limits_take_units_within_the_window_and_never_pass_it_in_parallel<S: Store>(
    s: &S,
    ctx: &Ctx,
) {
    use std::time::Duration as Std;
    let key = format!("contract#{}", ctx.dealer);
    let day = Std::from_secs(86_400);
    let at = t0();
    let allowed = |d: StoreResult<RateDecision>| matches!(d.unwrap(), RateDecision::Allowed);
    assert!(allowed(s.acquire_units(&key, 3, 5, day, at).await));
    let refused = s.acquire_units(&key, 3, 5, day, at).await.unwrap();
    assert_eq!(
        refused,
        RateDecision::Limited {
            retry_after: window_left(day, at)
        },
        "3 more would pass 5: nothing taken"
    );
    assert!(
        allowed(s.acquire_units(&key, 2, 5, day, at).await),
        "exactly 5"
    );
    assert!(!allowed(s.acquire(&key, 5, day, at).await));
    assert!(!allowed(
        s.acquire_units(&key, 6, 5, day, at + chrono::Duration::days(1))
            .await
    ));
    assert!(allowed(
        s.acquire_units(&key, 5, 5, day, at + chrono::Duration::days(1))
            .await
    ));
    // 20 at once for a limit of 7, one unit each: exactly 7 taken.
    let second = format!("contract-race#{}", ctx.dealer);
    let racing = (0..20).map(|_| s.acquire(&second, 7, Std::from_secs(60), at));
    let granted = futures_join_all(racing)
        .await
        .into_iter()
        .filter(|d| matches!(d, Ok(RateDecision::Allowed)))
        .count();
    assert_eq!(granted, 7);
}

/// One test per check: `store_contract!(make)` where `make(name)` is an async fn
/// returning `(store, Ctx)` for a check named `name`.
#[macro_export]
macro_rules! store_contract {
    ($make:path) => {
        $crate::store_contract!(@each $make;
            queued_messages_are_indexed_for_requeue,
            a_long_ledger_comes_back_whole,
            the_ledger_export_pages_a_period_of_one_dealer,
            open_counts_count_every_item,
            contact_edits_from_one_read_conflict,
            a_deleted_contact_leaves_its_ledger,
            conversations_interleave_both_directions,
            lists_page_in_order,
            templates_change_from_the_version_read,
            automations_are_per_dealer_and_event_type,
            expired_idempotency_keys_are_absent_and_free,
            tries_are_taken_at_most_five_times_in_parallel,
            pending_requests_are_made_once_and_a_stale_code_voids_nothing,
            resends_keep_tries_and_void_takes_the_same_request,
            inbound_ids_never_expire,
            a_replys_consent_change_carries_its_acted_mark_once,
            a_pay_request_is_confirmed_once,
            latest_messages_are_noted_per_number_and_kind_and_read_back_at_once,
            work_items_are_added_once_per_id,
            claims_check_the_stored_message,
            opt_outs_stop_claims_but_not_replies,
            claims_stop_at_a_deleted_contact,
            claims_stop_when_the_dealer_changed_its_number,
            cap_books_move_on_from_the_version_read,
            rate_limits_take_units_within_the_window_and_never_pass_it_in_parallel);
    };
    (@each $make:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (store, ctx) = $make(stringify!($check)).await;
                $crate::contract::$check(&store, &ctx).await;
            }
        )*
    };
}
