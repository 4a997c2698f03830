use std::sync::Arc;

use consent_adapters::{
    cache, config, secrets, telemetry, CachedDealers, DynamoStore, EventBridgePublisher,
    SqsOutboundQueue,
};
use inbound::{handle, App};
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let public_base_url = config::optional("PUBLIC_BASE_URL");
    let aws = config::aws().await;
    let secrets = consent_adapters::aws_sdk_secretsmanager::Client::new(&aws);
    let auth_token = secrets::from_env(&secrets, "TWILIO_AUTH_TOKEN_SECRET_ARN").await?;
    let store = Arc::new(DynamoStore::new(
        consent_adapters::aws_sdk_dynamodb::Client::new(&aws),
        config::required("TABLE_NAME")?,
        config::parsed("DUE_SHARDS", 16u32)?,
    ));
    let app = App {
        dealers: Arc::new(CachedDealers::new((*store).clone(), cache::DEALER_TTL)),
        contacts: store.clone(),
        consent: store.clone(),
        consent_writer: store.clone(),
        pending: store.clone(),
        messages: store.clone(),
        work: store.clone(),
        inbound: store,
        queue: Arc::new(SqsOutboundQueue::new(
            consent_adapters::aws_sdk_sqs::Client::new(&aws),
            config::required("OUTBOUND_QUEUE_URL")?,
        )),
        events: Arc::new(EventBridgePublisher::new(
            consent_adapters::aws_sdk_eventbridge::Client::new(&aws),
            config::required("EVENT_BUS_NAME")?,
        )),
        auth_token,
        public_base_url,
    };
    run(service_fn(|req: Request| {
        let app = &app;
        async move { Ok::<_, Error>(handle(app, req, chrono::Utc::now()).await) }
    }))
    .await
}
