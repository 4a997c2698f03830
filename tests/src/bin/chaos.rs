//! `make chaos`: the fault run (`stack_tests::chaos`) at full size. Prints its figures and
//! writes them to `target/chaos/latest.json`; exits non-zero when a guarantee broke.
//!
//! `chaos [--seed N] [--short | --medium] [--carrier end-user-messaging]` (the seed defaults
//! to the clock; it is printed; the dealer's number is on Twilio unless `--carrier` says
//! otherwise; `--medium` is the bench's fault run with faults).

use std::time::{SystemTime, UNIX_EPOCH};

use stack_tests::chaos::{run, ChaosCarrier, ChaosConfig};
use stack_tests::repo_root;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seed = args
        .iter()
        .position(|a| a == "--seed")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(1)
        });
    let carrier = match args
        .iter()
        .position(|a| a == "--carrier")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
    {
        None | Some("twilio") => ChaosCarrier::Twilio,
        Some("end-user-messaging") => ChaosCarrier::EndUserMessaging,
        Some(other) => {
            eprintln!("chaos: --carrier twilio or end-user-messaging, not {other:?}");
            std::process::exit(2);
        }
    };
    let config = if args.iter().any(|a| a == "--short") {
        ChaosConfig::short(seed)
    } else if args.iter().any(|a| a == "--medium") {
        ChaosConfig::medium(seed)
    } else {
        ChaosConfig::full(seed)
    }
    .on(carrier);
    let report = run(&config).await;
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    println!("{text}");
    let dir = repo_root().join("target").join("chaos");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("latest.json"), &text);
    let violations = report.violations();
    println!(
        "chaos: seed {}: texts without consent {}, texts at the phone twice {}, replies not acted on {}, STOPs acted on {} of {}, texts stuck {}",
        report.seed,
        report.texts_without_consent,
        report.texts_twice,
        report.replies_not_acted,
        report.stops_acted,
        report.stops_sent,
        report.stuck
    );
    if !violations.is_empty() {
        eprintln!(
            "chaos: FAILED (seed {}): {}",
            report.seed,
            violations.join("; ")
        );
        std::process::exit(1);
    }
}
