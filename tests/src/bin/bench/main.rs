//! `make bench`: cold start, AWS requests per delivered message, end-to-end throughput,
//! the dispatch burst and portal latency, each next to a reference measured in the same
//! run. Prints a table and writes `target/bench/latest.json`.
//!
//! Needs the release binaries of the functions and of the references in
//! `tests/refs` (`make bench` builds them) and the project's virtualenv (the emulator
//! and the local stack). The tool itself runs as the dev build `make test` made. Every
//! loop is bounded in count and time.

mod burst;
mod cold_start;
mod cost;
mod function_work;
mod local_stack;
mod requests;
mod webhooks;

use burst::dispatch_bursts;
use cold_start::cold_start;
use cost::cost;
use local_stack::{latency, portal, throughput};
use requests::requests_per_message;

use std::path::PathBuf;
use std::time::Instant;

use chrono::Utc;
use serde_json::{json, Value};

use stack_tests::{repo_root, LocalStack};

const FUNCTIONS: [&str; 10] = [
    "authorize",
    "inbound",
    "webhooks",
    "send",
    "settings",
    "automate",
    "queues",
    "dispatch",
    "deliver",
    "publish",
];
/// Instances the local Lambda service runs per function (infra/local/lambdas.py).
pub(crate) const DEFAULT_LAMBDA_CONCURRENCY: usize = 4;
const COLD_RUNS: usize = 31;
/// Secrets each function reads from Secrets Manager at init.
/// The secrets each binary reads at cold start (the references doing the same reads last).
const SECRETS_READ: [(&str, u32); 5] = [
    ("authorize", 1),
    ("inbound", 1),
    ("deliver", 2),
    ("sdk-floor-1-secret", 1),
    ("sdk-floor-2-secrets", 2),
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

// ------------------------------------------------------------------ report

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map(|kb| round(kb / 1_048_576.0, 1));
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "memory_gb": mem_gb,
        "arch": std::env::consts::ARCH,
    })
}

/// Writes what was measured so far: a long section (the burst) never loses the others.
fn save(out: &Value) {
    let dir = repo_root().join("target").join("bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("latest.json"),
        serde_json::to_string_pretty(out).unwrap_or_default(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let started = Instant::now();
    // Where infra/local/release.py builds: target/release as deployed (position-independent),
    // target/<host>/release with the fast start (position-dependent).
    let release: PathBuf = repo_root().join("target").join("release");
    let fast_start: PathBuf = repo_root()
        .join("target")
        .join(format!("{}-unknown-linux-gnu", std::env::consts::ARCH))
        .join("release");
    let only: Vec<String> = std::env::args().skip(1).collect();
    // The cost needs the requests per text and the functions' work from the throughput run.
    let wants = |k: &str| {
        only.is_empty()
            || only.iter().any(|o| o == k)
            || (only.iter().any(|o| o == "cost")
                && (k == "requests_per_message" || k == "throughput"))
    };
    let mut out = json!({"date": Utc::now().to_rfc3339(), "machine": machine()});
    if wants("cold_start") {
        eprintln!("bench: cold start ...");
        out["cold_start"] = cold_start(&release, "position-independent, as deployed").await;
        save(&out);
        eprintln!("bench: cold start with FAST_START=1 ...");
        out["cold_start_fast_start"] =
            cold_start(&fast_start, "position-dependent (FAST_START=1)").await;
        save(&out);
    }
    if wants("requests_per_message") {
        eprintln!("bench: requests per message ...");
        out["requests_per_message"] = requests_per_message().await;
        save(&out);
    }
    if wants("latency") || wants("throughput") {
        eprintln!("bench: starting the local stack ...");
        // The schedule fires every minute, as in AWS: moto answers index queries by
        // scanning the table, so a faster tick would measure the emulator, not the service.
        // Release builds, as deployed; the bench's one texting number without a sending
        // rate (production spreads texts over thousands of numbers, each at its own rate).
        let stack = LocalStack::start(
            "bench",
            &[
                ("SCHEDULE_PERIOD_SECONDS", "60"),
                ("DEV_PROFILE", "release"),
                ("SEND_RATE_PER_NUMBER", "0"),
            ],
        );
        let http = portal(&stack).await;
        if wants("latency") {
            eprintln!("bench: latency ...");
            out["latency"] = latency(&stack, &http).await;
            save(&out);
        }
        if wants("throughput") {
            eprintln!("bench: throughput ...");
            out["throughput"] = throughput(&stack, &http).await;
            save(&out);
        }
    }
    if wants("fault_run") {
        eprintln!("bench: fault run, with and without faults ...");
        out["fault_run"] = fault_run().await;
        save(&out);
    }
    if wants("dispatch_burst") {
        eprintln!("bench: dispatch burst ...");
        out["dispatch_burst"] = dispatch_bursts().await;
        save(&out);
    }
    if let (Some(requests), Some(throughput)) = (
        out.get("requests_per_message").cloned(),
        out.get("throughput").cloned(),
    ) {
        out["cost"] = cost(&requests, &throughput, out.get("dispatch_burst"));
        // The emulator's work the throughput run made: texts a second times the AWS requests
        // each takes (the event source mapping's included), next to its raw request rate.
        let per_text = requests["immediate"]["total"].as_f64().unwrap_or(f64::NAN)
            + requests["immediate"]["event_source_mapping"]["total"]
                .as_f64()
                .unwrap_or(0.0);
        let used = throughput["delivered_per_second"]
            .as_f64()
            .unwrap_or(f64::NAN)
            * per_text;
        let raw = throughput["reference"]["emulator_raw_requests_per_second"]
            .as_f64()
            .unwrap_or(f64::NAN);
        out["throughput"]["emulator_requests_per_second_used"] = json!(round(used, 1));
        out["throughput"]["ratio_requests_used_to_raw"] = json!(round(used / raw, 3));
    }
    out["bench_seconds"] = json!(round(started.elapsed().as_secs_f64(), 1));
    save(&out);
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    eprintln!(
        "bench: wrote target/bench/latest.json in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// The medium fault run (`stack_tests::chaos`) with its faults, next to the same run without
/// them, on each carrier: what the faults cost in throughput (goal: at least 0.8x), and the zeros.
async fn fault_run() -> Value {
    use stack_tests::chaos::{run, ChaosCarrier, ChaosConfig};
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261206);
    let mut by_carrier = serde_json::Map::new();
    for carrier in [ChaosCarrier::Twilio, ChaosCarrier::EndUserMessaging] {
        let faulty = run(&ChaosConfig::medium(seed).on(carrier)).await;
        let clean = run(&ChaosConfig::medium(seed).without_faults().on(carrier)).await;
        let name = serde_json::to_value(carrier)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        by_carrier.insert(
            name,
            json!({
                "with_faults": faulty,
                "reference": {"without_faults": clean},
                "violations": faulty.violations(),
                "ratio_throughput_with_faults_to_without": round(faulty.delivered_per_second / clean.delivered_per_second, 2),
            }),
        );
    }
    json!({
        "method": "the medium fault run (stack_tests::chaos: the short run's faults, 360 texts and 60 replies to 12 contacts) with its faults (DynamoDB throttling and 500s, GSI lag, carrier 429/500/silence, killed instances, one emulator restart), then the same seed without them, with the dealer's number on Twilio and on End User Messaging; delivered_per_second = template texts at the phones from the first send to the last text",
        "goal": "on each carrier, the fault run's throughput at least 0.8x the fault-free run's, and every guarantee's count 0",
        "by_carrier": by_carrier,
    })
}
