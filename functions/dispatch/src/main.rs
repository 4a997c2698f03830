use std::sync::Arc;
use std::time::Duration;

use consent_adapters::config;
use consent_adapters::SqsOutboundQueue;
use dispatch::config::Config;
use dispatch::{handle_for, pass_budget, App};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (config, aws) = config::start(Config::from_env).await?;
    let store = Arc::new(config.table.store(&aws));
    let app = App {
        consent: store.clone(),
        pending: store.clone(),
        work: store.clone(),
        messages: store,
        queue: Arc::new(SqsOutboundQueue::from_sdk(&aws, config.outbound_queue_url)),
        shards: config.table.due_shards,
        page: config.page,
        budget: config.budget,
    };
    run(service_fn(|event: LambdaEvent<Value>| {
        let app = &app;
        async move {
            // Never outlive the invocation: keep one pass's worth of its time in hand.
            let remaining = Duration::from_millis(
                event
                    .context
                    .deadline
                    .saturating_sub(chrono::Utc::now().timestamp_millis().max(0) as u64),
            );
            let budget = pass_budget(app.budget, remaining);
            let report = handle_for(app, chrono::Utc::now(), budget).await?;
            Ok::<_, Error>(json!({"followUps": report.follow_ups, "requeued": report.requeued, "queued": report.queued, "deferred": report.deferred, "suppressed": report.suppressed, "skipped": report.skipped, "failed": report.failed}))
        }
    }))
    .await
}
