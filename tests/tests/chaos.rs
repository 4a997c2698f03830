//! The short fault run: the same faults and the same zeros as `make chaos`, on fewer texts
//! (`stack_tests::chaos`). The seed is printed; `CHAOS_SEED` repeats a run.

use stack_tests::chaos::{hold, seed_from_env, ChaosConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_fault_run_loses_no_reply_and_doubles_no_effect() {
    hold(&ChaosConfig::short(seed_from_env())).await;
}
