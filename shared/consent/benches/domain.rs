//! Benchmarks of the pure domain rules: `cargo bench -p consent --bench domain`.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use consent::quiet_hours::QuietHours;
use consent::{reply, template, Category, PhoneNumber};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Map, Value};

/// Representative inbound replies (a sample of `reply::labelled_examples`).
const REPLIES: [&str; 20] = [
    "STOP",
    "Stop please",
    "🛑🛑 STOP 🛑🛑",
    "PLEASE STOP TEXTING ME",
    "I don't want these texts anymore",
    "Remove me from your list",
    "No más mensajes por favor",
    "STOP. I sold that car last year.",
    "I'll stop by the dealership tomorrow",
    "Can you cancel my appointment?",
    "at the end of the month",
    "weekend works",
    "Agree",
    "Yes I agree",
    "YES!",
    "help me understand my bill",
    "Pay now",
    "CONFIRM",
    "What time do you close today?",
    "Sounds good, send it over. Will the service end by 5? Thanks so much for the reminder!",
];

fn reply_classify(c: &mut Criterion) {
    let mut group = c.benchmark_group("reply_classify");
    group.throughput(Throughput::Elements(REPLIES.len() as u64));
    group.bench_function("20 replies", |b| {
        b.iter(|| {
            for body in REPLIES {
                black_box(reply::classify(black_box(body)));
            }
        })
    });
    group.finish();
}

fn template_render(c: &mut Criterion) {
    let t = template::find("text-to-pay-reminder").expect("catalog has text-to-pay-reminder");
    let vars: Map<String, Value> = [
        ("firstName", json!("Maria")),
        ("amount", json!("$1,412.37")),
        ("dueDate", json!("2026-12-03")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    c.bench_function("template_render", |b| {
        b.iter(|| black_box(t.render(black_box(&vars), black_box("Sunrise Motors"))))
    });
}

fn quiet_hours_is_allowed(c: &mut Criterion) {
    let qh = QuietHours::standard();
    let boise = PhoneNumber::from_e164("+12085550123").expect("valid number");
    let miami = PhoneNumber::from_e164("+13055550123").expect("valid number");
    let at = Utc.with_ymd_and_hms(2026, 6, 14, 15, 30, 0).unwrap();
    c.bench_function("quiet_hours_is_allowed", |b| {
        b.iter(|| {
            black_box(qh.is_allowed(black_box(&boise), None, Category::Service, black_box(at)));
            black_box(qh.is_allowed(black_box(&miami), None, Category::Marketing, black_box(at)));
        })
    });
}

fn quiet_hours_next_allowed(c: &mut Criterion) {
    let qh = QuietHours::standard();
    let alabama = PhoneNumber::from_e164("+12055550123").expect("valid number");
    // Sunday 10:00 Central: Alabama marketing is deferred to Monday 08:00.
    let at = Utc.with_ymd_and_hms(2026, 6, 14, 15, 0, 0).unwrap();
    c.bench_function("quiet_hours_next_allowed", |b| {
        b.iter(|| {
            black_box(qh.next_allowed(
                black_box(&alabama),
                None,
                Category::Marketing,
                black_box(at),
            ))
        })
    });
}

fn consent_decision(c: &mut Criterion) {
    use consent::ledger::{Actor, ConsentEvent, ConsentState, LedgerEntry};
    use consent::DealerId;
    let dealer = DealerId::parse("d1").expect("valid id");
    let phone = PhoneNumber::from_e164("+12025550143").expect("valid number");
    let at = Utc.with_ymd_and_hms(2026, 6, 10, 16, 0, 0).unwrap();
    let ledger: Vec<LedgerEntry> = [
        (Category::Accounting, ConsentEvent::GrantedByCode),
        (Category::Marketing, ConsentEvent::GrantedByReply),
        (Category::Service, ConsentEvent::RevokedByPortal),
        (Category::Marketing, ConsentEvent::RevokedByReply),
        (Category::Marketing, ConsentEvent::RestoredByStart),
        (Category::Sales, ConsentEvent::RevokedByCarrier),
    ]
    .into_iter()
    .map(|(category, event)| LedgerEntry::new(&dealer, &phone, category, event, Actor::Phone, at))
    .collect();
    let state = ConsentState::from_ledger(&ledger);
    let mut group = c.benchmark_group("consent_decision");
    group.throughput(Throughput::Elements(Category::ALL.len() as u64));
    group.bench_function("may_send x4", |b| {
        b.iter(|| {
            for category in Category::ALL {
                black_box(black_box(&state).may_send(black_box(category)));
            }
        })
    });
    group.finish();
    c.bench_function("consent_fold_6_entries", |b| {
        b.iter(|| black_box(ConsentState::from_ledger(black_box(&ledger))))
    });
}

criterion_group!(
    benches,
    reply_classify,
    template_render,
    quiet_hours_is_allowed,
    quiet_hours_next_allowed,
    consent_decision,
);
criterion_main!(benches);
