//! The short fault run: the same faults and the same zeros as `make chaos`, on fewer texts
//! (`stack_tests::chaos`). The seed is printed; `CHAOS_SEED` repeats a run.

use stack_tests::chaos::{run, ChaosConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_fault_run_loses_no_reply_and_doubles_no_effect() {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(1)
        });
    let report = run(&ChaosConfig::short(seed)).await;
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
