//! The short fault run with the dealer's number on End User Messaging: the same faults
//! (the fake carrier plays them on either API) and the same zeros as on Twilio
//! (`tests/chaos.rs`). The seed is printed; `CHAOS_SEED` repeats a run.

use stack_tests::chaos::{run, ChaosCarrier, ChaosConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_fault_run_on_end_user_messaging_loses_no_reply_and_doubles_no_effect() {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(1)
        });
    let report = run(&ChaosConfig::short(seed).on(ChaosCarrier::EndUserMessaging)).await;
    eprintln!(
        "chaos: {}",
        serde_json::to_string(&report).unwrap_or_default()
    );
    assert!(
        report.texts_at_phones > 0,
        "nothing was delivered: {report:?}"
    );
    assert!(report.stops_sent > 0, "the run sent no STOP: {report:?}");
    let violations = report.violations();
    assert!(
        violations.is_empty(),
        "seed {}: {}",
        report.seed,
        violations.join("; ")
    );
}
