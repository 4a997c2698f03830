//! Structured logs: JSON lines in Lambda (CloudWatch), filtered by `RUST_LOG`.
//! Logs carry ids, never message bodies, codes or full phone numbers.

/// Installs the global subscriber once; later calls are ignored (tests).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}
