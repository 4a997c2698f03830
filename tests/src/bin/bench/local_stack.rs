//! The local stack: portal latency and end-to-end throughput, next to the emulator's raw
//! rates (in texts and in GetItem) and its own CPU per operation.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Map, Value};

use consent::fakes::FakeCarrier;
use stack_tests::portal::daytime_zone;
use stack_tests::{LocalStack, Stack};

use crate::function_work::FunctionWork;
use crate::requests::{bench_code_key, Counted};
use crate::webhooks::{inbound_answer_times, stop_to_ledger, Carrier};
use crate::{percentile, round, DEFAULT_LAMBDA_CONCURRENCY};

async fn raw_emulator_rate(stack: &LocalStack) -> f64 {
    // GetItem round trips on a throwaway key, 8 at a time for 3 s: what the stack's
    // emulator itself can do on this machine, the ceiling of everything above it.
    let sdk = stack_tests::sdk_config(&stack.emulator).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = stack
        .resources
        .get("TABLE_NAME")
        .cloned()
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(3);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (ddb, table) = (ddb.clone(), table.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let key = std::collections::HashMap::from([
                    (
                        "PK".to_owned(),
                        aws_sdk_dynamodb::types::AttributeValue::S(format!("RAW#{w}")),
                    ),
                    (
                        "SK".to_owned(),
                        aws_sdk_dynamodb::types::AttributeValue::S("X".into()),
                    ),
                ]);
                if ddb
                    .get_item()
                    .table_name(&table)
                    .set_key(Some(key))
                    .send()
                    .await
                    .is_ok()
                {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// The emulator's raw rate in texts: the requests a text makes (the send service's, the
/// event source mapping's receive and delete, the deliver service's) sent straight to the
/// stack's emulator through the real adapters, by 8 senders and 8 deliverers at once, with
/// no gateway, Lambda service or bridge between: what the local stack would do if
/// everything above the emulator cost nothing. Its own table and queue (the running
/// bridge does not see them).
async fn raw_text_rate(stack: &LocalStack, client: &reqwest::Client, texts: usize) -> Value {
    const WORKERS: usize = 8;
    let counted =
        Arc::new(Counted::new(&Stack::create_on("bench-raw", &stack.emulator).await).await);
    let operations_before = emulator_operations(client, &stack.emulator).await;
    let carrier = Arc::new(FakeCarrier::new());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // When the last text reached the carrier (the deliverers' last long polls come after).
    let all_sent: Arc<Mutex<Option<Instant>>> = Arc::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (c, next) = (counted.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= texts || Instant::now() > deadline {
                    break;
                }
                c.send(i, false).await;
            }
        });
        let (c, carrier, all_sent) = (counted.clone(), carrier.clone(), all_sent.clone());
        tasks.spawn(async move {
            let codes = bench_code_key();
            let ports = c.deliver_ports(&carrier, &codes);
            while carrier.sent().len() < texts && Instant::now() < deadline {
                let records = c.receive(1).await;
                c.deliver_records(&ports, &records).await;
                if carrier.sent().len() >= texts {
                    let mut at = all_sent.lock().unwrap_or_else(|e| e.into_inner());
                    at.get_or_insert_with(Instant::now);
                }
                c.delete(&records).await;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            // A sender or deliverer failed: the rate would be the deadline's, not the emulator's.
            tasks.abort_all();
            return json!({"error": format!("the raw run failed: {e}")});
        }
    }
    let finished = *all_sent.lock().unwrap_or_else(|e| e.into_inner());
    let Some(finished) = finished else {
        return json!({"error": format!("{} of {texts} texts reached the carrier within 300 s", carrier.sent().len())});
    };
    let secs = (finished - started).as_secs_f64();
    let delivered = carrier.sent().len();
    let operations_after = emulator_operations(client, &stack.emulator).await;
    // The emulator's counters cover the run up to this reading.
    let read_after = started.elapsed().as_secs_f64();
    json!({
        "texts": delivered,
        "seconds": round(secs, 1),
        "texts_per_second": round(delivered as f64 / secs, 2),
        "emulator_work": emulator_work(&operations_before, &operations_after, read_after, delivered),
    })
}

pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Http {
    async fn timed(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        key: Option<String>,
    ) -> (u16, f64) {
        let started = Instant::now();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let status = match req.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                let _ = r.bytes().await;
                s
            }
            Err(_) => 0,
        };
        (status, started.elapsed().as_secs_f64() * 1000.0)
    }
}

fn send_body(scheduled: bool) -> Value {
    let mut b = json!({"contactId": "C-1", "template": "auto-pay-failure", "variables": {"firstName": "Ann", "amount": "412.50", "dueDate": "2026-12-01", "paymentUrl": "https://pay.example.com/a1"}});
    if scheduled {
        b["scheduledAt"] = json!((Utc::now() + chrono::Duration::days(30)).to_rfc3339());
    }
    b
}

async fn run_concurrent<F, Fut>(total: usize, concurrency: usize, make: F) -> (Vec<f64>, usize, f64)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (u16, f64)> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (make, next) = (make.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(300);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total || Instant::now() > deadline {
                    break;
                }
                out.push(make(i).await);
            }
            out
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        for (status, ms) in t.await.unwrap_or_default() {
            if (200..300).contains(&status) {
                latencies.push(ms);
            } else {
                errors += 1;
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    (latencies, errors, started.elapsed().as_secs_f64())
}

/// `total` POST /v1/messages, `concurrency` at a time, each with its own idempotency key
/// (`{key}-{pid}-{i}`), sent now or scheduled a month ahead: latencies, errors, seconds.
async fn post_texts(
    http: &Arc<Http>,
    total: usize,
    concurrency: usize,
    scheduled: bool,
    key: &'static str,
) -> (Vec<f64>, usize, f64) {
    let h = http.clone();
    let pid = std::process::id();
    run_concurrent(total, concurrency, move |i| {
        let h = h.clone();
        async move {
            h.timed(
                reqwest::Method::POST,
                "/v1/messages",
                Some(send_body(scheduled)),
                Some(format!("{key}-{pid}-{i}")),
            )
            .await
        }
    })
    .await
}

fn latency_summary(lat: &[f64], errors: usize) -> Value {
    json!({"p50_ms": round(percentile(lat, 0.5), 1), "p99_ms": round(percentile(lat, 0.99), 1), "requests": lat.len(), "errors": errors})
}

pub(crate) async fn portal(stack: &LocalStack) -> Arc<Http> {
    let http = Arc::new(Http {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(16)
            .build()
            .unwrap_or_else(|e| panic!("{e}")),
        base: stack.gateway.clone(),
        token: stack.token("bench-dealer", "staff-1"),
    });
    let (s, _) = http
        .timed(
            reqwest::Method::PUT,
            "/v1/dealer",
            Some(json!({"name": "Bench Motors", "textingNumber": "+12025550100"})),
            None,
        )
        .await;
    assert_eq!(s, 200, "dealer settings");
    for (i, phone) in ["(202) 555-0143", "(202) 555-0144", "(202) 555-0145"]
        .iter()
        .enumerate()
    {
        let (s, _) = http
            .timed(reqwest::Method::PUT, &format!("/v1/contacts/C-{}", i + 1), Some(json!({"name": "Ann", "phone": phone, "accountIds": ["A-1"], "timeZone": daytime_zone(Utc::now())})), None)
            .await;
        assert!(s == 200 || s == 201, "contact {s}");
    }
    // Consent by code, read from the fake carrier, as a user would: C-1 takes the texts,
    // C-2 texts STOP and START during the throughput run.
    for (contact, to) in [("C-1", "%2B12025550143"), ("C-2", "%2B12025550144")] {
        grant_by_code(&http, stack, contact, to).await;
    }
    http
}

/// Staff request `contact`'s accounting consent; the code is read off the fake carrier's
/// texts to `to` (URL-encoded) and verified.
async fn grant_by_code(http: &Http, stack: &LocalStack, contact: &str, to: &str) {
    let (s, _) = http
        .timed(
            reqwest::Method::POST,
            &format!("/v1/contacts/{contact}/authorizations"),
            Some(json!({"category": "accounting"})),
            None,
        )
        .await;
    assert_eq!(s, 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        let list: Vec<Value> = http
            .client
            .get(format!("{}/messages?to={to}", stack.carrier))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_default();
        if let Some(code) = list
            .iter()
            .rev()
            .filter_map(|m| m["body"].as_str())
            .find_map(|b| {
                b.split(|c: char| !c.is_ascii_digit())
                    .find(|t| t.len() == 6)
                    .map(str::to_owned)
            })
        {
            break code;
        }
        assert!(Instant::now() < deadline, "no code text");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let (s, _) = http
        .timed(
            reqwest::Method::POST,
            &format!("/v1/contacts/{contact}/authorizations/accounting/verify"),
            Some(json!({"code": code})),
            None,
        )
        .await;
    assert_eq!(s, 200, "verify");
}

pub(crate) async fn latency(stack: &LocalStack, http: &Arc<Http>) -> Value {
    const N: usize = 200;
    const C: usize = 8;
    let h = http.clone();
    let (health, he, _) = run_concurrent(N, C, move |_| {
        let h = h.clone();
        async move {
            h.timed(reqwest::Method::GET, "/v1/health", None, None)
                .await
        }
    })
    .await;
    let h = http.clone();
    let (list, le, _) = run_concurrent(N, C, move |_| {
        let h = h.clone();
        async move {
            h.timed(
                reqwest::Method::GET,
                "/v1/accounts/A-1/contacts",
                None,
                None,
            )
            .await
        }
    })
    .await;
    let (send, se, _) = post_texts(http, N, C, true, "lat").await;
    let carrier = Carrier::new(stack, http.client.clone());
    let (inbound, ie) = inbound_answer_times(&carrier, N).await;
    let health_p99 = percentile(&health, 0.99);
    json!({
        "method": format!("{N} requests each at concurrency {C} through the local gateway (Python) to the local Lambda service (release builds as deployed, several instances per function) on the emulator; the inbound webhook: signed free-text replies as the carrier posts them"),
        "list_contacts": latency_summary(&list, le),
        "send": latency_summary(&send, se),
        "inbound_webhook": latency_summary(&inbound, ie),
        "inbound_webhook_goal": "p50 and p99 within 2x the trivial endpoint's p99 (it only verifies and stores)",
        "inbound_webhook_p99_to_trivial_p99": round(percentile(&inbound, 0.99) / health_p99, 2),
        "reference": {"trivial_endpoint_health": latency_summary(&health, he)},
    })
}

/// Texts in the throughput run: 2,000 (about 2.5 minutes here); `BENCH_MESSAGES=N` for
/// a quicker or a longer run.
fn throughput_messages() -> usize {
    std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

pub(crate) async fn throughput(stack: &LocalStack, http: &Arc<Http>) -> Value {
    let n_messages = throughput_messages();
    let carrier = stack.carrier.clone();
    let count_delivered = move |client: reqwest::Client| {
        let carrier = carrier.clone();
        async move {
            let list: Vec<Value> = client
                .get(format!("{carrier}/messages?to=%2B12025550143"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            Some(
                list.iter()
                    .filter(|m| m["body"].as_str().is_some_and(|b| b.contains("$412.50")))
                    .count(),
            )
        }
    };
    let before = count_delivered(http.client.clone()).await.unwrap_or(0);
    let raw = raw_emulator_rate(stack).await;
    let raw_texts = raw_text_rate(stack, &http.client, (n_messages / 4).clamp(50, 500)).await;
    let log_from = std::fs::metadata(&stack.log).map(|m| m.len()).unwrap_or(0);
    let operations_before = emulator_operations(&http.client, &stack.emulator).await;
    let started = Instant::now();
    // A person texts STOP (and START) now and then while the texts go out.
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let stops = {
        let (carrier, running) = (Carrier::new(stack, http.client.clone()), running.clone());
        let (emulator, table) = (
            stack.emulator.clone(),
            stack
                .resources
                .get("TABLE_NAME")
                .cloned()
                .unwrap_or_default(),
        );
        tokio::spawn(async move { stop_to_ledger(emulator, table, carrier, running).await })
    };
    let (_, errors, accept_secs) = post_texts(http, n_messages, 8, false, "tp").await;
    let deadline = Instant::now() + Duration::from_secs(420);
    let mut delivered = 0;
    while Instant::now() < deadline {
        delivered = count_delivered(http.client.clone())
            .await
            .unwrap_or(0)
            .saturating_sub(before);
        if delivered >= n_messages - errors {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let stop_to_ledger = stops.await.unwrap_or(Value::Null);
    let rate = delivered as f64 / secs;
    let operations_after = emulator_operations(&http.client, &stack.emulator).await;
    let emulator = emulator_work(&operations_before, &operations_after, secs, delivered);
    let served_rate = emulator["requests_per_second"].as_f64().unwrap_or(f64::NAN);
    let raw_texts_rate = raw_texts["texts_per_second"].as_f64().unwrap_or(f64::NAN);
    // Let the last status callbacks and stream events land before reading the log.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let work = FunctionWork::read(&stack.log, log_from);
    json!({
        "method": format!("{n_messages} POST /v1/messages at concurrency 8 through the local stack (release builds, each function in up to {} instances, one texting number without a sending rate), until all are at the fake carrier. References in the same run, on the same emulator: its raw rate in texts (the requests a text makes, sent straight to it through the real adapters by 8 senders and 8 deliverers, no gateway, Lambda service or bridge) and its raw GetItem rate at concurrency 8. emulator_work: the emulator's CPU (one Python process: 1.0 is all it has) and requests during the run, from its /_local/operations", DEFAULT_LAMBDA_CONCURRENCY),
        "goal": "at least a quarter of the emulator's raw rate, both counted in texts (ratio_delivered_to_raw_texts >= 0.25)",
        "function_work": work.per_text(delivered.max(1)),
        "messages": n_messages,
        "accepted_errors": errors,
        "delivered": delivered,
        "accept_seconds": round(accept_secs, 1),
        "end_to_end_seconds": round(secs, 1),
        "delivered_per_second": round(rate, 1),
        "reference": {
            "emulator_raw_requests_per_second": round(raw, 1),
            "emulator_raw_texts": raw_texts,
        },
        "ratio_delivered_to_raw_texts": round(rate / raw_texts_rate, 3),
        "ratio_delivered_to_raw_requests": round(rate / raw, 4),
        "emulator_requests_served_per_second": round(served_rate, 1),
        "ratio_emulator_requests_served_to_raw": round(served_rate / raw, 3),
        "emulator_work": emulator,
        "stop_to_ledger": stop_to_ledger,
    })
}

/// What the emulator reports at `/_local/operations` (infra/local/emulator/operations.py): its CPU
/// seconds and, per operation, requests and CPU seconds.
async fn emulator_operations(client: &reqwest::Client, emulator: &str) -> Value {
    match client
        .get(format!("{emulator}/_local/operations"))
        .send()
        .await
    {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// The emulator's work between two readings: its share of one core (moto is one Python
/// process: near 1.0 it is the bottleneck) and the operations that used the most CPU.
fn emulator_work(before: &Value, after: &Value, secs: f64, texts: usize) -> Value {
    let read = |v: &Value| v["cpu_seconds"].is_number() && v["operations"].is_object();
    if !read(before) || !read(after) {
        return json!({"error": "the emulator's /_local/operations did not answer before and after"});
    }
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let cpu = f(&after["cpu_seconds"]) - f(&before["cpu_seconds"]);
    let waited = f(&after["dynamodb_wait_seconds"]) - f(&before["dynamodb_wait_seconds"]);
    let mut ops: Vec<(String, f64, f64)> = after["operations"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let b = &before["operations"][k];
                    (
                        k.clone(),
                        f(&v["requests"]) - f(&b["requests"]),
                        f(&v["cpu_seconds"]) - f(&b["cpu_seconds"]),
                    )
                })
                .filter(|(_, n, _)| *n > 0.0)
                .collect()
        })
        .unwrap_or_default();
    ops.sort_by(|a, b| b.2.total_cmp(&a.2));
    let n = texts.max(1) as f64;
    let top: Map<String, Value> = ops
        .iter()
        .take(12)
        .map(|(k, requests, cpu)| {
            (
                k.clone(),
                json!({"requests_per_text": round(requests / n, 2), "cpu_ms_per_request": round(cpu * 1000.0 / requests.max(1.0), 2), "cpu_ms_per_text": round(cpu * 1000.0 / n, 2)}),
            )
        })
        .collect();
    json!({
        "cpu_seconds_per_second": round(cpu / secs, 3),
        "cpu_ms_per_text": round(cpu * 1000.0 / n, 1),
        "dynamodb_wait_seconds_per_second": round(waited / secs, 3),
        "requests_per_second": round(ops.iter().map(|o| o.1).sum::<f64>() / secs, 1),
        "requests_per_text": round(ops.iter().map(|o| o.1).sum::<f64>() / n, 1),
        "by_operation": top,
    })
}
