//! The dispatch burst: texts due in one minute, queued by dispatch passes, at two sizes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};

use consent::message::{Message, MessageKind, MessageStatus, NewMessage, Origin};
use consent::ports::MessageWriter;
use consent::service::sending::{dispatch, DispatchPorts};
use consent::{Category, DealerId, PhoneNumber};
use stack_tests::portal::daytime_zone;
use stack_tests::Stack;

use crate::requests::{per_message, Counted};
use crate::round;

/// The burst at two sizes, so the time per text as it grows is visible.
pub(crate) async fn dispatch_bursts() -> Value {
    let small = dispatch_burst(1_000).await;
    let large = dispatch_burst(10_000).await;
    let per_1000 = |v: &Value| {
        v["seconds_until_all_queued"].as_f64().unwrap_or(f64::NAN)
            / v["messages"].as_f64().unwrap_or(f64::NAN)
            * 1000.0
    };
    let (a, b) = (per_1000(&small), per_1000(&large));
    let mut out = large.clone();
    out["seconds_per_1000_texts"] = json!({"at_1000": round(a, 2), "at_10000": round(b, 2)});
    out["growth_10000_vs_1000"] = json!(round(b / a, 2));
    out["at_1000"] = small;
    out
}

async fn dispatch_burst(n: usize) -> Value {
    let stack = Stack::create("bench-burst").await;
    let c = Counted::new(&stack).await;
    let due = Utc::now() + chrono::Duration::seconds(20);
    let phone = PhoneNumber::from_e164("+12025550143").unwrap_or_else(|e| panic!("{e}"));
    let store = Arc::new(c.store.clone());
    let seeding = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (store, next, dealer, phone) =
            (store.clone(), next.clone(), c.dealer.clone(), phone.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let m = burst_message(
                    &dealer,
                    &phone,
                    due + chrono::Duration::milliseconds((i % 40_000) as i64),
                );
                let _ = store.create(&m, None).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let seed_secs = seeding.elapsed().as_secs_f64();
    // The emulator's raw SendMessageBatch rate, same queue, same run.
    let raw_started = Instant::now();
    let mut raw_sent = 0;
    while raw_started.elapsed() < Duration::from_secs(3) {
        let entries: Vec<_> = (0..10)
            .map(|i| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body("{}")
                    .build()
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        if c.sqs
            .send_message_batch()
            .queue_url(&c.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .is_ok()
        {
            raw_sent += 10;
        }
    }
    let raw_rate = raw_sent as f64 / raw_started.elapsed().as_secs_f64();
    c.sqs
        .purge_queue()
        .queue_url(&c.queue_url)
        .send()
        .await
        .ok();
    // Wait until the minute is due, then dispatch like the function does (passes until done).
    let wait = (due - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    c.counter.take();
    let ports = DispatchPorts {
        consent: &c.store,
        due: &c.store,
        messages: &c.store,
        queue: &c.queue,
    };
    let started = Instant::now();
    let mut queued = 0;
    while queued < n && started.elapsed() < Duration::from_secs(300) {
        let report = dispatch(
            &ports,
            0..c.store.due_shards(),
            Utc::now() + chrono::Duration::seconds(60),
            1000,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        queued += report.queued;
        if report.queued == 0 {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let counts = c.counter.take();
    let (ops, total) = per_message(&counts, n);
    json!({
        "method": format!("{n} messages due in the same minute across {} shards, created on the emulator; dispatch passes (as the function runs them) until all are queued", c.store.due_shards()),
        "messages": n,
        "queued": queued,
        "seconds_until_all_queued": round(secs, 1),
        "queued_per_second": round(queued as f64 / secs, 1),
        "requests_per_message": {"by_operation": ops, "total": total},
        "seed_seconds": round(seed_secs, 1),
        "reference": {"emulator_raw_send_message_batch_messages_per_second": round(raw_rate, 1)},
        "ratio_to_raw_send_message_batch": round((queued as f64 / secs) / raw_rate, 3),
    })
}

fn burst_message(dealer: &DealerId, phone: &PhoneNumber, at: chrono::DateTime<Utc>) -> Message {
    let parts = NewMessage {
        dealer_id: dealer.clone(),
        kind: MessageKind::Template,
        to: phone.clone(),
        from: PhoneNumber::from_e164("+12025550100").unwrap_or_else(|e| panic!("{e}")),
        category: Category::Accounting,
        body: "Bench Motors: your automatic payment did not go through. Reply STOP to opt out."
            .to_owned(),
        origin: Origin::System,
    };
    Message {
        template: Some("auto-pay-failure".into()),
        template_version: Some(1),
        recipient_time_zone: consent::Zone::named(&daytime_zone(Utc::now())).ok(),
        requested_at: Some(at),
        send_at: at,
        ..Message::new(parts, MessageStatus::Scheduled, None, Utc::now())
    }
}
