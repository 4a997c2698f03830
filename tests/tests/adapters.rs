//! The AWS adapters against the emulator: conditional writes, batching, partial
//! failures, the sharded due index. Each test bootstraps its own stack (own table
//! and queues) from infra/template.yaml, so they run in parallel.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use consent::approval::PendingAuthorization;
use consent::category::Category;
use consent::contract::eventually;
use consent::ledger::{Actor, ConsentEvent, ConsentState, LedgerEntry};
use consent::message::{
    Message, MessageKind, MessageStatus, NewMessage, Origin, Outbound, OutboundEnvelope,
};
use consent::ports::*;
use consent::{
    AccountId, ContactId, DealId, DealerId, MessageId, PhoneNumber, StaffUserId, StoreError,
};
use consent_adapters::{DynamoStore, EventBridgePublisher, SqsOutboundQueue};
use stack_tests::Stack;

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, h, m, 0).unwrap()
}

/// `dealer_id()`, for closures that read an index until it has caught up.
static DEALER_ID: std::sync::LazyLock<DealerId> = std::sync::LazyLock::new(dealer_id);

fn dealer_id() -> DealerId {
    DealerId::parse("d-1").unwrap()
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

async fn store(stack: &Stack) -> DynamoStore {
    DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&stack.sdk),
        stack.var("TABLE_NAME"),
        4,
    )
}

/// The demo dealer owns the texting number its messages go from (a claim checks it).
async fn own_number(s: &DynamoStore) {
    let dealer = Dealer {
        id: dealer_id(),
        name: "Demo Motors".into(),
        texting_number: phone("(202) 555-0100"),
        help_contact: None,
        time_zone: None,
    };
    s.put_dealer(&dealer, None).await.unwrap();
}

fn message(id: &str, status: MessageStatus, send_at: DateTime<Utc>) -> Message {
    let parts = NewMessage {
        dealer_id: dealer_id(),
        kind: MessageKind::Template,
        to: phone("(202) 555-0143"),
        from: phone("(202) 555-0100"),
        category: Category::Accounting,
        body: "Demo Motors: your auto pay failed.".into(),
        origin: Origin::Staff {
            user: StaffUserId::parse("staff-1").unwrap(),
        },
    };
    Message {
        id: MessageId::parse(id).unwrap(),
        template: Some("auto-pay-failure".into()),
        template_version: Some(1),
        notes: Some("called twice".into()),
        send_at,
        ..Message::new(parts, status, None, t(12, 0))
    }
}

#[tokio::test]
async fn dealer_numbers_are_claimed_once() {
    // GIVEN a dealer with a texting number
    let stack = Stack::create("dealers").await;
    let s = store(&stack).await;
    let number = phone("(202) 555-0100");
    let d1 = Dealer {
        id: dealer_id(),
        name: "Demo Motors".into(),
        texting_number: number.clone(),
        help_contact: None,
        time_zone: None,
    };
    s.put_dealer(&d1, None).await.unwrap();
    // WHEN another dealer claims the same number THEN it conflicts
    let d2 = Dealer {
        id: DealerId::parse("d-2").unwrap(),
        ..d1.clone()
    };
    assert!(matches!(
        s.put_dealer(&d2, None).await,
        Err(StoreError::Conflict(_))
    ));
    // AND the owner can save again, and is found by number
    s.put_dealer(&d1, Some(&number)).await.unwrap();
    assert_eq!(
        s.dealer_by_number(&number).await.unwrap(),
        Some(dealer_id())
    );
    assert_eq!(s.dealer(&dealer_id()).await.unwrap(), Some(d1.clone()));
    // WHEN the owner moves to another number THEN the old one is released
    let moved = Dealer {
        texting_number: phone("(202) 555-0101"),
        ..d1
    };
    s.put_dealer(&moved, Some(&number)).await.unwrap();
    assert_eq!(s.dealer_by_number(&number).await.unwrap(), None);
    s.put_dealer(&d2, None).await.unwrap();
}

#[tokio::test]
async fn a_provisioned_number_names_its_carrier_and_the_items_of_before_are_on_twilio() {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    let stack = Stack::create("carriers").await;
    let s = store(&stack).await;
    let client = aws_sdk_dynamodb::Client::new(&stack.sdk);
    // As `make provision-numbers` writes them: before numbers named a carrier, and after.
    for (number, carrier) in [
        ("+12025550100", None),
        ("+12025550101", Some("end-user-messaging")),
        ("+12025550102", Some("pigeon")),
    ] {
        let mut put = client
            .put_item()
            .table_name(stack.var("TABLE_NAME"))
            .item("PK", V::S(format!("NUMBER#{number}")))
            .item("SK", V::S("PROVISIONED".into()))
            .item("carrierAccount", V::S("AC1".into()))
            .item("dealerId", V::S(dealer_id().as_str().into()));
        if let Some(c) = carrier {
            put = put
                .item("carrier", V::S(c.into()))
                .item("optOutList", V::S("texting-opt-outs".into()));
        }
        put.send().await.unwrap();
    }
    // An End User Messaging number's opt-out list (what a START lifts); none on Twilio's.
    let list_of = |n: &'static str| {
        let s = &s;
        async move {
            s.provisioned(&phone(n))
                .await
                .unwrap()
                .unwrap()
                .opt_out_list
        }
    };
    assert_eq!(
        list_of("+12025550101").await.as_deref(),
        Some("texting-opt-outs")
    );
    assert_eq!(list_of("+12025550100").await, None);
    let carrier_of = |n: &'static str| {
        let s = &s;
        async move { s.provisioned(&phone(n)).await.map(|p| p.unwrap().carrier) }
    };
    assert_eq!(
        carrier_of("+12025550100").await.unwrap(),
        CarrierKind::Twilio
    );
    assert_eq!(
        carrier_of("+12025550101").await.unwrap(),
        CarrierKind::EndUserMessaging
    );
    // A carrier no adapter knows is a corrupt item, never a guess at another carrier.
    assert!(matches!(
        carrier_of("+12025550102").await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn contacts_are_listed_by_account_deal_and_phone_and_stale_links_removed() {
    let stack = Stack::create("contacts").await;
    let s = store(&stack).await;
    let mut c = Contact {
        id: ContactId::parse("c-1").unwrap(),
        dealer_id: dealer_id(),
        name: "Ann".into(),
        phone: phone("(202) 555-0143"),
        account_ids: vec![AccountId::parse("A-1").unwrap()],
        deal_ids: vec![DealId::parse("D-1").unwrap()],
        time_zone: None,
        updated_at: t(12, 0),
    };
    s.put_contact(&c, None).await.unwrap();
    let a1 = AccountId::parse("A-1").unwrap();
    assert_eq!(
        s.contacts_by_account(&dealer_id(), &a1).await.unwrap(),
        vec![c.clone()]
    );
    // The phone lookup is an index (GSI1): eventually consistent.
    eventually(
        || s.contacts_by_phone(&DEALER_ID, &c.phone),
        |r| r.as_ref().is_ok_and(|v| v.len() == 1),
    )
    .await
    .unwrap();
    assert_eq!(
        s.contacts_by_deal(&dealer_id(), &DealId::parse("D-1").unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.contacts_by_phone(&dealer_id(), &c.phone)
            .await
            .unwrap()
            .len(),
        1
    );
    // WHEN the contact moves to another account THEN the old link is gone
    let previous = c.clone();
    c.account_ids = vec![AccountId::parse("A-2").unwrap()];
    s.put_contact(&c, Some(&previous)).await.unwrap();
    assert!(s
        .contacts_by_account(&dealer_id(), &a1)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.contacts_by_account(&dealer_id(), &AccountId::parse("A-2").unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
    // AND another dealer sees nothing
    assert!(s
        .contact(&DealerId::parse("other").unwrap(), &c.id)
        .await
        .unwrap()
        .is_none());
}

/// Every shard's due messages up to `until`.
async fn due_all(s: &DynamoStore, until: DateTime<Utc>) -> Vec<Message> {
    let mut due = Vec::new();
    for shard in 0..s.due_shards() {
        due.extend(s.due(shard, until, 100).await.unwrap());
    }
    due
}

fn entry(category: Category, event: ConsentEvent, at: DateTime<Utc>) -> LedgerEntry {
    LedgerEntry {
        id: consent::ids::new_ulid(),
        dealer_id: dealer_id(),
        phone: phone("(202) 555-0143"),
        category,
        event,
        actor: Actor::Phone,
        at,
        evidence: Some("SM1".into()),
        disclosure_version: None,
        disclosure: None,
        words: Some("STOP".into()),
        sequence: None,
    }
}

#[tokio::test]
async fn consent_appends_are_versioned_and_consume_pending_requests() {
    let stack = Stack::create("consent").await;
    let s = store(&stack).await;
    let p = phone("(202) 555-0143");
    let pending = PendingAuthorization {
        dealer_id: dealer_id(),
        phone: p.clone(),
        category: Category::Accounting,
        request_id: "r1".into(),
        code_hash: "abc".into(),
        contact_id: ContactId::parse("c-1").unwrap(),
        requested_by: StaffUserId::parse("staff-1").unwrap(),
        created_at: t(12, 0),
        expires_at: t(12, 10),
        attempts: 0,
        sends: 1,
        disclosure_version: "accounting-v1".into(),
        disclosure_text: None,
    };
    s.put_pending(&pending).await.unwrap();
    // A try is taken once per call; another request's id takes nothing.
    let taken = s.take_attempt(&pending).await.unwrap().unwrap();
    assert_eq!(taken.attempts, 1);
    let other = PendingAuthorization {
        request_id: "r0".into(),
        ..pending.clone()
    };
    assert_eq!(s.take_attempt(&other).await.unwrap(), None);
    assert_eq!(
        s.pending(&dealer_id(), &p, Category::Accounting)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        1
    );
    assert_eq!(
        s.pending_for_numbers(&dealer_id(), std::slice::from_ref(&p))
            .await
            .unwrap()
            .len(),
        1
    );

    let grant = entry(Category::Accounting, ConsentEvent::GrantedByCode, t(12, 1));
    let state = ConsentState::from_ledger([&grant]);
    let consumed = [PendingKey {
        category: Category::Accounting,
        request_id: "r1".into(),
    }];
    s.append(
        &dealer_id(),
        &p,
        ConsentChange {
            expected_version: 0,
            entries: std::slice::from_ref(&grant),
            new_state: &state,
            consumed: &consumed,
            acted: None,
        },
    )
    .await
    .unwrap();
    // The same expected version again loses.
    assert!(matches!(
        s.append(
            &dealer_id(),
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
    let read = s.consent(&dealer_id(), &p).await.unwrap();
    assert_eq!(read.version, 1);
    assert!(read.value.may_send(Category::Accounting).is_allowed());
    assert!(s
        .pending(&dealer_id(), &p, Category::Accounting)
        .await
        .unwrap()
        .is_none());

    let stop = entry(Category::Accounting, ConsentEvent::RevokedByReply, t(12, 2));
    let mut next = read.value.clone();
    next.apply(&stop);
    s.append(
        &dealer_id(),
        &p,
        ConsentChange {
            expected_version: 1,
            entries: std::slice::from_ref(&stop),
            new_state: &next,
            consumed: &[],
            acted: None,
        },
    )
    .await
    .unwrap();
    let history = s.history(&dealer_id(), &p).await.unwrap();
    assert_eq!(history, vec![grant, stop]);
    // Ledger entries are evidence for at least the TCPA's four years: nothing expires them.
    let raw = aws_sdk_dynamodb::Client::new(&stack.sdk)
        .query()
        .table_name(stack.var("TABLE_NAME"))
        .key_condition_expression("PK = :pk AND begins_with(SK, :l)")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("DEALER#{}#PHONE#{p}", dealer_id())),
        )
        .expression_attribute_values(
            ":l",
            aws_sdk_dynamodb::types::AttributeValue::S("LEDGER#".into()),
        )
        .send()
        .await
        .unwrap();
    let items = raw.items.unwrap_or_default();
    assert_eq!(items.len(), 2);
    assert!(items
        .iter()
        .all(|i| !i.contains_key("ttl") && i.contains_key("GSI2SK")));
    assert_eq!(
        ConsentState::from_ledger(&history),
        s.consent(&dealer_id(), &p).await.unwrap().value
    );
    // Many numbers at once: untouched ones are the default state.
    let other = phone("(202) 555-0199");
    let many = s
        .consents(&dealer_id(), &[p.clone(), other.clone()])
        .await
        .unwrap();
    assert!(!many[&p].may_send(Category::Accounting).is_allowed());
    assert_eq!(many[&other], ConsentState::default());
}

#[tokio::test]
async fn rate_limits_and_inbound_dedup_are_conditional() {
    let stack = Stack::create("limits").await;
    let s = store(&stack).await;
    for _ in 0..3 {
        assert_eq!(
            s.acquire("k", 3, Duration::from_secs(3600), t(12, 0))
                .await
                .unwrap(),
            RateDecision::Allowed
        );
    }
    match s
        .acquire("k", 3, Duration::from_secs(3600), t(12, 30))
        .await
        .unwrap()
    {
        RateDecision::Limited { retry_after } => assert_eq!(retry_after, Duration::from_secs(1800)),
        other => panic!("expected a limit, got {other:?}"),
    }
    // A finished reply stays finished: a signed webhook replayed long after is a duplicate.
    assert!(!s.finished("SM1").await.unwrap());
    s.finish("SM1", t(12, 0)).await.unwrap();
    s.finish("SM1", t(12, 1)).await.unwrap();
    assert!(s.finished("SM1").await.unwrap());
}

#[tokio::test]
async fn messages_claim_once_and_follow_the_due_index() {
    let stack = Stack::create("messages").await;
    let s = Arc::new(store(&stack).await);
    own_number(&s).await;
    // An idempotent create conflicts the second time.
    let m = message(
        "01JMSG000000000000000000A1",
        MessageStatus::Queued,
        t(12, 0),
    );
    let record = IdempotencyRecord {
        dealer_id: dealer_id(),
        key: "k1".into(),
        request_hash: "h".into(),
        message_id: m.id.clone(),
        created_at: Utc::now(),
    };
    s.create(&m, Some(&record)).await.unwrap();
    let again = message(
        "01JMSG000000000000000000A2",
        MessageStatus::Queued,
        t(12, 0),
    );
    assert!(matches!(
        s.create(&again, Some(&record)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(s.message(&again.id).await.unwrap().is_none());
    assert_eq!(
        s.idempotency(&dealer_id(), "k1", t(12, 0))
            .await
            .unwrap()
            .unwrap()
            .message_id,
        m.id
    );

    // Two workers race to claim: exactly one wins.
    let (a, b) = tokio::join!(claim(&s, &m, t(12, 0), None), claim(&s, &m, t(12, 0), None));
    let wins = [a.unwrap(), b.unwrap()]
        .into_iter()
        .filter(|c| *c == DeliveryClaim::Claimed)
        .count();
    assert_eq!(wins, 1);
    let claimed = s.message(&m.id).await.unwrap().unwrap();
    assert_eq!(claimed.status, MessageStatus::Sending);
    assert_eq!(
        claimed.history.last().unwrap().status,
        MessageStatus::Sending
    );
    // Saving with a stale expected status conflicts.
    assert!(matches!(
        s.save(&claimed, MessageStatus::Queued).await,
        Err(StoreError::Conflict(_))
    ));

    // Scheduled messages are found by the due index across shards, only when due.
    let mut ids = Vec::new();
    let mut scheduled = Vec::new();
    for i in 0..12 {
        let sm = message(
            &format!("01JMSG0000000000000000B{i:03}"),
            MessageStatus::Scheduled,
            t(13, i),
        );
        s.create(&sm, None).await.unwrap();
        ids.push(sm.id.clone());
        scheduled.push(sm);
    }
    let due = eventually(|| due_all(&s, t(13, 5)), |d| d.len() == 6).await;
    assert_eq!(due.len(), 6, "minutes 0..=5 are due");
    // Only a queued message can be claimed: dispatch queues scheduled ones first.
    assert_eq!(
        claim(&s, &scheduled[11], t(13, 0), None).await.unwrap(),
        DeliveryClaim::NotClaimable(MessageStatus::Scheduled)
    );
    // Leaving the waiting states (here: canceled) removes it from the index.
    let mut canceled = s.message(&ids[0]).await.unwrap().unwrap();
    canceled.transition(MessageStatus::Canceled, t(12, 30), None);
    s.save(&canceled, MessageStatus::Scheduled).await.unwrap();
    let again_due = eventually(|| due_all(&s, t(13, 5)), |d| d.len() == 5).await;
    assert_eq!(again_due.len(), 5);
    // The recipient index (GSI1) lags its table as DynamoDB's does: read as a reader of
    // an index must, until it has caught up.
    let to_number = eventually(
        || async {
            s.by_recipient(
                &dealer_id(),
                &phone("(202) 555-0143"),
                &[MessageStatus::Scheduled],
            )
            .await
            .unwrap()
        },
        |m| m.len() == 11,
    )
    .await;
    assert_eq!(to_number.len(), 11);
}

#[tokio::test]
async fn outbound_queue_batches_in_tens() {
    let stack = Stack::create("queue").await;
    let url = stack.var("OUTBOUND_QUEUE_URL").to_owned();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let queue = SqsOutboundQueue::new(sqs.clone(), url.clone());
    let items: Vec<Outbound> = (0..23)
        .map(|i| Outbound {
            envelope: OutboundEnvelope::new(
                dealer_id(),
                MessageId::parse(format!("m{i}")).unwrap(),
                t(12, 0),
            ),
            delay_seconds: 0,
        })
        .collect();
    assert!(queue.enqueue(&items).await.unwrap().is_empty());
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            let env: OutboundEnvelope = serde_json::from_str(m.body.as_deref().unwrap()).unwrap();
            assert_eq!(env.kind, "message.queued");
            seen.insert(env.message_id.to_string());
        }
        if seen.len() == 23 {
            break;
        }
    }
    assert_eq!(seen.len(), 23);
}

#[tokio::test]
async fn events_reach_the_automation_queue_through_the_rule() {
    let stack = Stack::create("events").await;
    let bus = EventBridgePublisher::new(
        aws_sdk_eventbridge::Client::new(&stack.sdk),
        stack.var("EVENT_BUS_NAME"),
    );
    let events: Vec<BusEvent> = (0..12)
        .map(|i| BusEvent {
            source: "dms".into(),
            detail_type: if i % 2 == 0 {
                "AutoPayFailed".into()
            } else {
                "Unrouted".into()
            },
            detail: serde_json::json!({"dealerId": "d-1", "contactId": "c-1", "n": i}),
        })
        .collect();
    bus.publish(&events).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let url = stack.var("AUTOMATION_QUEUE_URL");
    let mut got = 0;
    for _ in 0..10 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            let v: serde_json::Value = serde_json::from_str(m.body.as_deref().unwrap()).unwrap();
            assert_eq!(v["detail-type"], "AutoPayFailed");
            got += 1;
        }
        if got == 6 {
            break;
        }
    }
    assert_eq!(got, 6, "only the routed detail-type arrives");
}

#[tokio::test]
async fn work_queues_page_filter_and_claim_once() {
    use consent::service::queues;
    let stack = Stack::create("work").await;
    let s = store(&stack).await;
    // GIVEN 7 replies, 3 of them from contact c-2
    let mut ids = Vec::new();
    for i in 0..7u32 {
        let item = WorkItem {
            id: consent::ids::new_ulid(),
            dealer_id: dealer_id(),
            queue: WorkQueueName::Replies,
            kind: "reply-needs-attention".into(),
            contact_id: Some(ContactId::parse(if i % 2 == 0 { "c-1" } else { "c-2" }).unwrap()),
            phone: None,
            account_id: None,
            deal_id: None,
            message_id: None,
            text: Some(format!("reply {i}")),
            created_at: t(12, i),
            status: WorkItemStatus::Open,
            handling: Default::default(),
        };
        s.add_item(&item).await.unwrap();
        ids.push(item.id);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // (the open list is an index: eventually consistent)
    eventually(
        || s.open_count(&DEALER_ID, WorkQueueName::Replies),
        |n| n.as_ref().is_ok_and(|n| *n as usize >= ids.len()),
    )
    .await
    .unwrap();
    // WHEN listed 3 at a time, newest first THEN every item comes once, in order
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..5 {
        let page = s
            .items(
                &dealer_id(),
                WorkQueueName::Replies,
                &ItemQuery {
                    status: Some(WorkItemStatus::Open),
                    contact_id: None,
                    account_id: None,
                    newest_first: true,
                    limit: 3,
                    cursor: cursor.clone(),
                },
            )
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|w| w.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
    // AND a filter by contact
    let c2 = s
        .items(
            &dealer_id(),
            WorkQueueName::Replies,
            &ItemQuery {
                status: None,
                contact_id: Some(ContactId::parse("c-2").unwrap()),
                account_id: None,
                newest_first: false,
                limit: 10,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(c2.items.len(), 3);
    // AND a cursor from another list is refused
    let other = s
        .items(
            &DealerId::parse("other").unwrap(),
            WorkQueueName::Replies,
            &ItemQuery {
                status: Some(WorkItemStatus::Open),
                contact_id: None,
                account_id: None,
                newest_first: true,
                limit: 3,
                cursor: Some(encode_first_cursor(&s).await),
            },
        )
        .await;
    assert!(matches!(other, Err(StoreError::Corrupt { .. })));

    // WHEN two staff users race to claim the same item THEN exactly one wins
    let (a, b) = (
        StaffUserId::parse("ann").unwrap(),
        StaffUserId::parse("bob").unwrap(),
    );
    let d = dealer_id();
    let (ra, rb) = tokio::join!(
        queues::claim(&s, &d, WorkQueueName::Replies, &ids[0], &a, t(13, 0)),
        queues::claim(&s, &d, WorkQueueName::Replies, &ids[0], &b, t(13, 0)),
    );
    assert_eq!(
        [ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{ra:?} {rb:?}"
    );
    assert_eq!(
        eventually(
            || s.open_count(&DEALER_ID, WorkQueueName::Replies),
            |n| n.as_ref().is_ok_and(|n| *n == 6)
        )
        .await
        .unwrap(),
        6
    );
    // AND resolving removes it from the open list for good
    let winner = if ra.is_ok() { &a } else { &b };
    queues::resolve(
        &s,
        &dealer_id(),
        WorkQueueName::Replies,
        &ids[0],
        winner,
        Some("called back".into()),
        t(13, 5),
    )
    .await
    .unwrap();
    let resolved = s
        .item(&dealer_id(), WorkQueueName::Replies, &ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resolved.status, WorkItemStatus::Resolved);
    assert_eq!(resolved.handling.note.as_deref(), Some("called back"));
    assert_eq!(
        eventually(
            || s.open_count(&DEALER_ID, WorkQueueName::Replies),
            |n| n.as_ref().is_ok_and(|n| *n == 6)
        )
        .await
        .unwrap(),
        6
    );
}

async fn encode_first_cursor(s: &DynamoStore) -> String {
    s.items(
        &dealer_id(),
        WorkQueueName::Replies,
        &ItemQuery {
            status: Some(WorkItemStatus::Open),
            contact_id: None,
            account_id: None,
            newest_first: true,
            limit: 1,
            cursor: None,
        },
    )
    .await
    .unwrap()
    .next_cursor
    .expect("more than one item")
}

#[tokio::test]
async fn overlapping_dispatch_runs_queue_each_message_once() {
    use consent::service::sending::{dispatch, DispatchPorts};
    // GIVEN 30 template messages due now, for a number with consent
    let stack = Stack::create("dispatch").await;
    let s = store(&stack).await;
    let p = phone("(202) 555-0143");
    let grant = entry(Category::Accounting, ConsentEvent::GrantedByCode, t(11, 0));
    s.append(
        &dealer_id(),
        &p,
        ConsentChange {
            expected_version: 0,
            entries: std::slice::from_ref(&grant),
            new_state: &ConsentState::from_ledger([&grant]),
            consumed: &[],
            acted: None,
        },
    )
    .await
    .unwrap();
    for i in 0..30 {
        let mut m = message(
            &format!("01JMSG0000000000000000D{i:03}"),
            MessageStatus::Scheduled,
            t(16, 0),
        );
        m.recipient_time_zone = Some(consent::Zone::named("America/New_York").unwrap());
        s.create(&m, None).await.unwrap();
    }
    let url = stack.var("OUTBOUND_QUEUE_URL").to_owned();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let queue = SqsOutboundQueue::new(sqs.clone(), url.clone());
    let ports = DispatchPorts {
        consent: &s,
        due: &s,
        messages: &s,
        queue: &queue,
    };
    // (the due index is eventually consistent: the texts are in it before the runs)
    eventually(|| due_all(&s, t(16, 0)), |d| d.len() == 30).await;
    // WHEN two runs overlap (12:00 EDT)
    let (a, b) = tokio::join!(
        dispatch(&ports, 0..4, t(16, 0), 100),
        dispatch(&ports, 0..4, t(16, 0), 100)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    // THEN between them every message was marked once and sent once
    assert_eq!(a.queued + b.queued, 30, "{a:?} {b:?}");
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..20 {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let batch = out.messages.unwrap_or_default();
        for m in &batch {
            let env: OutboundEnvelope = serde_json::from_str(m.body.as_deref().unwrap()).unwrap();
            *seen.entry(env.message_id.to_string()).or_insert(0) += 1;
        }
        if batch.is_empty() && seen.len() == 30 {
            break;
        }
    }
    assert_eq!(seen.len(), 30);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
}

#[tokio::test]
async fn delivery_claims_check_consent_in_the_same_write() {
    // GIVEN accounting authorized, marketing not, and two queued messages
    let stack = Stack::create("claims").await;
    let s = store(&stack).await;
    own_number(&s).await;
    let p = phone("(202) 555-0143");
    let grant = entry(Category::Accounting, ConsentEvent::GrantedByCode, t(11, 0));
    s.append(
        &dealer_id(),
        &p,
        ConsentChange {
            expected_version: 0,
            entries: std::slice::from_ref(&grant),
            new_state: &ConsentState::from_ledger([&grant]),
            consumed: &[],
            acted: None,
        },
    )
    .await
    .unwrap();
    let accounting = message(
        "01JMSG0000000000000000E001",
        MessageStatus::Queued,
        t(12, 0),
    );
    let mut marketing = message(
        "01JMSG0000000000000000E002",
        MessageStatus::Queued,
        t(12, 0),
    );
    marketing.category = Category::Marketing;
    s.create(&accounting, None).await.unwrap();
    s.create(&marketing, None).await.unwrap();
    let guard = |category| ConsentGuard {
        dealer: dealer_id(),
        phone: p.clone(),
        category,
    };

    // WHEN delivery claims them with the consent check
    let a = claim(
        &s,
        &accounting,
        t(12, 1),
        Some(&guard(Category::Accounting)),
    )
    .await
    .unwrap();
    let m = claim(&s, &marketing, t(12, 1), Some(&guard(Category::Marketing)))
        .await
        .unwrap();

    // THEN the authorized one is claimed, once; the other is refused and stays queued
    assert_eq!(a, DeliveryClaim::Claimed);
    assert_eq!(
        claim(
            &s,
            &accounting,
            t(12, 1),
            Some(&guard(Category::Accounting))
        )
        .await
        .unwrap(),
        DeliveryClaim::NotClaimable(MessageStatus::Sending)
    );
    assert_eq!(m, DeliveryClaim::ConsentMissing);
    assert_eq!(
        s.message(&marketing.id).await.unwrap().unwrap().status,
        MessageStatus::Queued
    );
    let never_stored = message(
        "01JMSG0000000000000000E999",
        MessageStatus::Queued,
        t(12, 0),
    );
    assert_eq!(
        claim(&s, &never_stored, t(12, 1), None).await.unwrap(),
        DeliveryClaim::NotFound
    );

    // AND the result is recorded on the claimed message, conditionally
    let sent = DeliveryRecord {
        status: MessageStatus::Sent,
        at: t(12, 2),
        reason: None,
        carrier_message_id: Some("SM123".into()),
        send_at: None,
        attempted: true,
    };
    s.record_delivery(&accounting.id, MessageStatus::Sending, &sent)
        .await
        .unwrap();
    assert!(matches!(
        s.record_delivery(&accounting.id, MessageStatus::Sending, &sent)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let stored = s.message(&accounting.id).await.unwrap().unwrap();
    assert_eq!(stored.status, MessageStatus::Sent);
    assert_eq!(stored.carrier_message_id.as_deref(), Some("SM123"));
    assert_eq!(
        stored.history.iter().map(|h| h.status).collect::<Vec<_>>(),
        [
            MessageStatus::Queued,
            MessageStatus::Sending,
            MessageStatus::Sent
        ]
    );
    // AND a deferral puts the message back in the due index at its new time
    let later = DeliveryRecord {
        status: MessageStatus::Deferred,
        at: t(12, 2),
        reason: Some("quiet-hours".into()),
        carrier_message_id: None,
        send_at: Some(t(20, 0)),
        attempted: false,
    };
    s.record_delivery(&marketing.id, MessageStatus::Queued, &later)
        .await
        .unwrap();
    let at_new_time = |due: &Vec<Message>| {
        due.iter()
            .any(|d| d.id == marketing.id && d.send_at == t(20, 0))
    };
    let due = eventually(|| due_all(&s, t(20, 0)), at_new_time).await;
    assert!(at_new_time(&due), "{due:?}");
}

#[tokio::test]
async fn authorization_requests_never_completed_are_found_once_for_follow_up() {
    let stack = Stack::create("followup").await;
    let s = store(&stack).await;
    let request = |category, request_id: &str, created_at| PendingAuthorization {
        dealer_id: dealer_id(),
        phone: phone("(202) 555-0143"),
        category,
        request_id: request_id.into(),
        code_hash: "h".into(),
        contact_id: ContactId::parse("c-1").unwrap(),
        requested_by: StaffUserId::parse("staff-1").unwrap(),
        created_at,
        expires_at: created_at + chrono::Duration::minutes(10),
        attempts: 0,
        sends: 1,
        disclosure_version: "v1".into(),
        disclosure_text: None,
    };
    // GIVEN one old request and one recent one
    let old = request(Category::Sales, "r-old", t(10, 0));
    s.put_pending(&old).await.unwrap();
    s.put_pending(&request(Category::Service, "r-new", t(12, 0)))
        .await
        .unwrap();
    // THEN only the old one is overdue (the follow-up index is eventually consistent), and
    // it is marked once
    let overdue = eventually(
        || s.overdue(t(11, 0), 100),
        |o| o.as_ref().is_ok_and(|o| !o.is_empty()),
    )
    .await
    .unwrap();
    assert_eq!(
        overdue
            .iter()
            .map(|p| p.request_id.as_str())
            .collect::<Vec<_>>(),
        ["r-old"]
    );
    s.mark_followed_up(&old).await.unwrap();
    assert!(matches!(
        s.mark_followed_up(&old).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(eventually(
        || s.overdue(t(11, 0), 100),
        |o| o.as_ref().is_ok_and(|o| o.is_empty())
    )
    .await
    .unwrap()
    .is_empty());
}

/// Claims `m` for delivery as deliver does, expecting what `m` says.
async fn claim(
    s: &DynamoStore,
    m: &Message,
    at: DateTime<Utc>,
    guard: Option<&ConsentGuard>,
) -> Result<DeliveryClaim, StoreError> {
    let snapshot = m.snapshot();
    let expected = consent::ports::ClaimExpectation {
        dealer: &m.dealer_id,
        snapshot: &snapshot,
        book: None,
    };
    s.claim_for_delivery(&m.id, &expected, at, guard).await
}
