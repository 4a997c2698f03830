use std::sync::Arc;

use automate::{handle, App};
use aws_lambda_events::event::sqs::SqsEvent;
use consent_adapters::{cache, config, telemetry, CachedDealers, DynamoStore, SqsOutboundQueue};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let number_pool = config::number_pool("NUMBER_POOL")?;
    let aws = config::aws().await;
    let store = Arc::new(DynamoStore::new(
        consent_adapters::aws_sdk_dynamodb::Client::new(&aws),
        config::required("TABLE_NAME")?,
        config::parsed("DUE_SHARDS", 16u32)?,
    ));
    let app = App {
        dealers: Arc::new(CachedDealers::new((*store).clone(), cache::DEALER_TTL)),
        contacts: store.clone(),
        consent: store.clone(),
        messages: store,
        queue: Arc::new(SqsOutboundQueue::new(
            consent_adapters::aws_sdk_sqs::Client::new(&aws),
            config::required("OUTBOUND_QUEUE_URL")?,
        )),
        number_pool,
    };
    run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let app = &app;
        async move { Ok::<_, Error>(handle(app, event.payload, chrono::Utc::now()).await) }
    }))
    .await
}
