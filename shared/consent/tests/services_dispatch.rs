//! Dispatch: due texts queued once, consent rechecked at dispatch, and dispatch fanning
//! out over the due index's shards.

use chrono::{DateTime, Duration, Utc};
use consent::fakes::{mins, noon, past_due_vars, FakeQueue, InMemoryStore, World};
use consent::message::StatusReason;
use consent::message::{Message, MessageKind, MessageStatus};
use consent::service::sending::{self, DispatchPorts, DispatchReport};
use consent::{Category, MessageId};

#[tokio::test]
async fn dispatch_queues_due_messages_once_with_sub_minute_delays() {
    // GIVEN two texts due at 12:10:00 and 12:10:30 EDT and one due at 14:00
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let at = noon() + mins(10);
    let a = w
        .send("past-due-alert", past_due_vars(), Some(at), noon())
        .await
        .unwrap()
        .message;
    let b = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(at + Duration::seconds(30)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    let later = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(120)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    let before = w.queue.sent().len();

    // WHEN dispatch runs at 12:10, twice
    let first = w.dispatch(at).await;
    let second = w.dispatch(at).await;

    // THEN the due ones are queued once, each with its delay within the minute
    assert_eq!(first.queued, 2, "{first:?}");
    assert_eq!(second, DispatchReport::default());
    let sent = w.queue.sent();
    assert_eq!(sent.len(), before + 2);
    let delay = |id: &MessageId| {
        let found: Vec<_> = sent
            .iter()
            .filter(|o| &o.envelope.message_id == id)
            .collect();
        assert_eq!(found.len(), 1, "queued exactly once");
        found[0].delay_seconds
    };
    assert_eq!(delay(&a.id), 0);
    assert_eq!(delay(&b.id), 30);
    assert!(sent[before..].iter().all(|o| o.delay_seconds <= 60));
    assert_eq!(w.message(&a.id).status, MessageStatus::Queued);
    assert_eq!(w.message(&b.id).status, MessageStatus::Queued);
    // AND the later one still waits
    assert_eq!(w.message(&later.id).status, MessageStatus::Scheduled);
}

#[tokio::test]
async fn a_stop_between_scheduling_and_dispatch_keeps_the_text_from_going() {
    // GIVEN a text scheduled for 12:30
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let m = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(30)),
            noon(),
        )
        .await
        .unwrap()
        .message;

    // WHEN the person replies STOP at 12:05 and dispatch runs at 12:30
    w.reply("SM-stop", "STOP", noon() + mins(5)).await;
    let report = w.dispatch(noon() + mins(30)).await;

    // THEN it is suppressed and never queued
    assert_eq!(report.queued, 0);
    assert_eq!(w.message(&m.id).status, MessageStatus::Suppressed);
    assert!(!w.queued_ids().contains(&m.id));
}

#[tokio::test]
async fn dispatch_rechecks_consent_and_suppresses_after_a_portal_unsubscribe() {
    // GIVEN a text scheduled for 12:30, and accounting unsubscribed in the portal at 12:05
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let m = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(30)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    w.unsubscribe(Category::Accounting, noon() + mins(5)).await;
    assert_eq!(w.message(&m.id).status, MessageStatus::Scheduled);

    // WHEN dispatch runs at 12:30
    let report = w.dispatch(noon() + mins(30)).await;

    // THEN dispatch suppresses it with the reason instead of queueing it
    assert_eq!(report.suppressed, 1, "{report:?}");
    assert_eq!(report.queued, 0);
    let now = w.message(&m.id);
    assert_eq!(now.status, MessageStatus::Suppressed);
    assert_eq!(now.status_reason, Some(StatusReason::Revoked));
    assert!(!w.queued_ids().contains(&m.id));
}

// ------------------------------------------------------------------ dispatch fans out

/// The in-memory store's due index spread over shards by message id, counting the shard
/// reads in flight at once (each takes a little while, as a Query does).
struct Shards<'a> {
    store: &'a InMemoryStore,
    count: u32,
    in_flight: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl consent::ports::DueIndex for Shards<'_> {
    async fn due(
        &self,
        shard: u32,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Message>, consent::StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.in_flight.fetch_sub(1, SeqCst);
        let all = consent::ports::DueIndex::due(self.store, 0, until, u32::MAX).await?;
        Ok(all
            .into_iter()
            .filter(|m| m.id.as_str().bytes().map(u32::from).sum::<u32>() % self.count == shard)
            .take(limit as usize)
            .collect())
    }
}

/// The fake queue, keeping each `enqueue` call's size.
struct CountingQueue<'a> {
    inner: &'a FakeQueue,
    calls: std::sync::Mutex<Vec<usize>>,
}

#[async_trait::async_trait]
impl consent::ports::OutboundQueue for CountingQueue<'_> {
    async fn enqueue(
        &self,
        items: &[consent::message::Outbound],
    ) -> Result<Vec<MessageId>, consent::StoreError> {
        self.calls.lock().unwrap().push(items.len());
        self.inner.enqueue(items).await
    }
}

#[tokio::test]
async fn dispatch_reads_shards_at_once_and_queues_each_shards_group_when_marked() {
    // GIVEN 40 texts due at 10:00 spread over 16 shards
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    for _ in 0..40 {
        w.send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(60)),
            noon(),
        )
        .await
        .unwrap();
    }
    w.queue.drain();
    let shards = Shards {
        store: &w.store,
        count: 16,
        in_flight: Default::default(),
        most: Default::default(),
    };
    let queue = CountingQueue {
        inner: &w.queue,
        calls: Default::default(),
    };
    let ports = DispatchPorts {
        consent: &w.store,
        due: &shards,
        messages: &w.store,
        queue: &queue,
    };

    // WHEN one pass runs when they are due
    let report = sending::dispatch(&ports, 0..16, noon() + mins(60), 100)
        .await
        .unwrap();

    // THEN every text is queued once; SHARDS_AT_ONCE shard reads ran together, never
    // more; and each shard's group went to the queue on its own, as soon as it was
    // marked (one call per shard that had texts, not one at the end of the pass)
    assert_eq!(report.queued, 40);
    assert_eq!(w.queue.drain().len(), 40);
    assert_eq!(
        shards.most.load(std::sync::atomic::Ordering::SeqCst),
        sending::SHARDS_AT_ONCE
    );
    let calls = queue.calls.lock().unwrap().clone();
    let busy_shards = (0..16u32)
        .filter(|s| {
            w.store.messages().iter().any(|m| {
                m.kind == MessageKind::Template
                    && m.id.as_str().bytes().map(u32::from).sum::<u32>() % 16 == *s
            })
        })
        .count();
    assert_eq!(calls.len(), busy_shards, "{calls:?}");
    assert_eq!(calls.iter().sum::<usize>(), 40);
}
