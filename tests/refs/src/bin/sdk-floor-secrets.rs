//! The SDK's floor for a function that reads secrets at cold start: the SDK floor plus
//! `BENCH_SECRET_READS` (default 1) GetSecretValue calls started as tasks at init and not
//! awaited before the first poll, the way the functions read theirs, and nothing of ours.
//! The bench times the first poll and when its Secrets Manager answered the reads.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let reads: usize = std::env::var("BENCH_SECRET_READS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let pending: Vec<_> = (0..reads)
        .map(|i| {
            let secrets = secrets.clone();
            tokio::spawn(async move {
                secrets
                    .get_secret_value()
                    .secret_id(format!("floor-secret-{i}"))
                    .send()
                    .await
                    .ok()
                    .and_then(|s| s.secret_string)
            })
        })
        .collect();
    let clients = (
        aws_sdk_dynamodb::Client::new(&aws),
        aws_sdk_sqs::Client::new(&aws),
        aws_sdk_eventbridge::Client::new(&aws),
    );
    let clients = &clients;
    let pending = &pending;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let _ = (clients, pending);
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
