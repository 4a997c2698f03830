//! The SDK's own floor for cold-start figures: the hello-world plus what every function
//! needs before its first poll and nothing of ours (the shared AWS configuration from
//! the environment and DynamoDB, SQS and EventBridge clients), built and measured
//! exactly like the product's functions.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clients = (
        aws_sdk_dynamodb::Client::new(&aws),
        aws_sdk_sqs::Client::new(&aws),
        aws_sdk_eventbridge::Client::new(&aws),
    );
    let clients = &clients;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let _ = clients;
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
