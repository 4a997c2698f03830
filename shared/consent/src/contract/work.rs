//! Work-queue checks: open counts, and items added once per id.

use super::support::*;

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
