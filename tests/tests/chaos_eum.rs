//! The short fault run with the dealer's number on End User Messaging: the same faults
//! (the fake carrier plays them on either API) and the same zeros as on Twilio
//! (`tests/chaos.rs`). The seed is printed; `CHAOS_SEED` repeats a run.

use stack_tests::chaos::{hold, seed_from_env, ChaosCarrier, ChaosConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_fault_run_on_end_user_messaging_loses_no_reply_and_doubles_no_effect() {
    hold(&ChaosConfig::short(seed_from_env()).on(ChaosCarrier::EndUserMessaging)).await;
}
