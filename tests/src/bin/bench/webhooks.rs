//! The carrier's side of the local stack: how fast the inbound webhook answers now that it
//! only stores (next to the trivial endpoint), and how long a STOP takes from the carrier's
//! POST to its ledger entry while the throughput run loads the stack.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};

use stack_tests::{sdk_config, LocalStack};

use crate::{percentile, round};

/// Posts signed carrier webhooks to the gateway as Twilio does.
#[derive(Clone)]
pub(crate) struct Carrier {
    client: reqwest::Client,
    url: String,
    token: String,
    dealer_number: String,
}

impl Carrier {
    pub(crate) fn new(stack: &LocalStack, client: reqwest::Client) -> Self {
        Self {
            client,
            // The functions sign-check over PUBLIC_BASE_URL, which the local stack sets to
            // the gateway's address.
            url: format!("{}/v1/carrier/twilio/inbound", stack.gateway),
            token: stack.setting("TWILIO_AUTH_TOKEN").to_owned(),
            dealer_number: "+12025550100".into(),
        }
    }

    /// The person at `from` texts `body`: the webhook's status and how long it took.
    pub(crate) async fn text(&self, from: &str, body: &str, sid: &str) -> (u16, f64) {
        let params: Vec<(String, String)> = [
            ("MessageSid", sid),
            ("SmsSid", sid),
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            ("From", from),
            ("To", self.dealer_number.as_str()),
            ("Body", body),
            ("NumMedia", "0"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let signature = consent::webhook::twilio_signature(&self.token, &self.url, &params);
        let form: String = params
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let started = Instant::now();
        let status = match self
            .client
            .post(&self.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(form)
            .send()
            .await
        {
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

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `total` signed free-text replies, 8 at a time: the inbound webhook's answer times (it
/// verifies, stores on the inbound queue and answers; the acting happens behind it).
pub(crate) async fn inbound_answer_times(carrier: &Carrier, total: usize) -> (Vec<f64>, usize) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (carrier, next) = (carrier.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return out;
                }
                let sid = format!("SMbenchping{}{i:08}", std::process::id());
                out.push(carrier.text("+12025550145", "bench ping", &sid).await);
            }
        }));
    }
    let mut times = Vec::new();
    let mut errors = 0;
    for t in tasks {
        for (status, ms) in t.await.unwrap_or_default() {
            if status == 200 {
                times.push(ms);
            } else {
                errors += 1;
            }
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    (times, errors)
}

/// While `running`, C-2 (+12025550144, authorized) texts STOP, and once it is on the ledger,
/// START: each STOP's time from the carrier's POST to its revocation on the ledger (a strongly
/// consistent read of the number's ledger, as the service itself reads it).
pub(crate) async fn stop_to_ledger(
    emulator: String,
    table: String,
    carrier: Carrier,
    running: Arc<AtomicBool>,
) -> Value {
    let ddb = aws_sdk_dynamodb::Client::new(&sdk_config(&emulator).await);
    let pk = "DEALER#bench-dealer#PHONE#+12025550144";
    let ledger_len = || async {
        ddb.query()
            .table_name(&table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :l)")
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
            .expression_attribute_values(":l", AttributeValue::S("LEDGER#".into()))
            .consistent_read(true)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .map(|o| o.count)
            .unwrap_or(0)
    };
    let mut stops = Vec::new();
    let mut lost = 0;
    let mut n = 0;
    while running.load(Ordering::Relaxed) && n < 200 {
        for (body, timed) in [("STOP", true), ("START", false)] {
            let before = ledger_len().await;
            let sid = format!("SMbenchstop{}{n:06}{body}", std::process::id());
            let started = Instant::now();
            let (status, _) = carrier.text("+12025550144", body, &sid).await;
            let deadline = started + Duration::from_secs(20);
            let mut seen = None;
            while status == 200 && Instant::now() < deadline {
                if ledger_len().await > before {
                    seen = Some(started.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            match (timed, seen) {
                (true, Some(ms)) => stops.push(ms),
                (true, None) => lost += 1,
                _ => {}
            }
        }
        n += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    stops.sort_by(|a, b| a.total_cmp(b));
    json!({
        "method": "C-2 texts STOP (a signed webhook to the gateway), then START once the STOP is on the ledger, one pair a second while the throughput run loads the stack; the time from the POST to the revocation on the ledger (a consistent Query of the number's ledger every 20 ms)",
        "goal": "p99 under 2,000 ms",
        "stops": stops.len(),
        "not_on_the_ledger_within_20_s": lost,
        "p50_ms": round(percentile(&stops, 0.5), 1),
        "p99_ms": round(percentile(&stops, 0.99), 1),
        "max_ms": round(stops.last().copied().unwrap_or(f64::NAN), 1),
    })
}
