//! Message checks: a queued message is in the due index, idempotency keys expire, the
//! newest message of a kind reads back at once, and cap books move on only from the
//! version read.

use super::support::*;

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
