use std::sync::Arc;
use std::time::Duration;

use consent_adapters::{config, telemetry, DynamoStore, SqsOutboundQueue};
use dispatch::{handle_for, App};

/// The time one pass over every shard may take, kept in hand before the deadline.
const PASS_RESERVE: Duration = Duration::from_secs(15);
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let shards = config::parsed("DUE_SHARDS", 16u32)?;
    let store = Arc::new(DynamoStore::new(
        consent_adapters::aws_sdk_dynamodb::Client::new(&aws),
        config::required("TABLE_NAME")?,
        shards,
    ));
    let app = App {
        consent: store.clone(),
        pending: store.clone(),
        work: store.clone(),
        messages: store,
        queue: Arc::new(SqsOutboundQueue::new(
            consent_adapters::aws_sdk_sqs::Client::new(&aws),
            config::required("OUTBOUND_QUEUE_URL")?,
        )),
        shards,
        page: config::parsed("DISPATCH_PAGE", 500u32)?,
        budget: Duration::from_secs(config::parsed("DISPATCH_BUDGET_SECONDS", 40u64)?),
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
            let budget = app.budget.min(remaining.saturating_sub(PASS_RESERVE));
            let report = handle_for(app, chrono::Utc::now(), budget).await?;
            Ok::<_, Error>(json!({"followUps": report.follow_ups, "requeued": report.requeued, "queued": report.queued, "deferred": report.deferred, "suppressed": report.suppressed, "skipped": report.skipped, "failed": report.failed}))
        }
    }))
    .await
}
