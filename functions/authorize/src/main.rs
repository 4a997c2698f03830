use std::sync::Arc;

use authorize::{handle, App};
use consent::approval::CodeHasher;
use consent_adapters::{config, secrets, telemetry, DynamoStore, SqsOutboundQueue};
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let number_pool = config::number_pool("NUMBER_POOL")?;
    let aws = config::aws().await;
    let secrets = consent_adapters::aws_sdk_secretsmanager::Client::new(&aws);
    let hasher = CodeHasher::new(secrets::from_env(&secrets, "CODE_HASH_KEY_SECRET_ARN").await?)?;
    let store = Arc::new(DynamoStore::new(
        consent_adapters::aws_sdk_dynamodb::Client::new(&aws),
        config::required("TABLE_NAME")?,
        config::parsed("DUE_SHARDS", 16u32)?,
    ));
    let queue = Arc::new(SqsOutboundQueue::new(
        consent_adapters::aws_sdk_sqs::Client::new(&aws),
        config::required("OUTBOUND_QUEUE_URL")?,
    ));
    let app = App {
        dealers: store.clone(),
        contacts: store.clone(),
        consent: store.clone(),
        consent_writer: store.clone(),
        pending: store.clone(),
        limits: store.clone(),
        numbers: store.clone(),
        messages: store,
        queue,
        hasher,
        number_pool,
    };
    run(service_fn(|req: Request| {
        let app = &app;
        async move { Ok::<_, Error>(handle(app, req, chrono::Utc::now()).await) }
    }))
    .await
}
