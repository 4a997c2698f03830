use std::sync::Arc;

use consent_adapters::{config, telemetry, DynamoStore};
use lambda_http::{run, service_fn, Error, Request};
use queues::{handle, App};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let store = Arc::new(DynamoStore::new(
        consent_adapters::aws_sdk_dynamodb::Client::new(&aws),
        config::required("TABLE_NAME")?,
        config::parsed("DUE_SHARDS", 16u32)?,
    ));
    let app = App { desk: store };
    run(service_fn(|req: Request| {
        let app = &app;
        async move { Ok::<_, Error>(handle(app, req, chrono::Utc::now()).await) }
    }))
    .await
}
