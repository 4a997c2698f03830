use std::sync::Arc;

use consent_adapters::config::{self, Env};
use consent_adapters::{cache, telemetry, CachedDealers, EventBridgePublisher, SqsOutboundQueue};
use inbound::config::Config;
use inbound::{handle, App};
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env(&Env::process())?;
    let aws = config::aws().await;
    let secrets = consent_adapters::aws_sdk_secretsmanager::Client::new(&aws);
    // Read off the init path: the first webhook waits for it.
    let auth_token = Arc::new(config.auth_token.deferred(&secrets));
    let store = Arc::new(config.table.store(&aws));
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
            config.outbound_queue_url,
        )),
        events: Arc::new(EventBridgePublisher::new(
            consent_adapters::aws_sdk_eventbridge::Client::new(&aws),
            config.event_bus_name,
        )),
        auth_token,
        public_base_url: config.public_base_url,
    };
    run(service_fn(|req: Request| {
        let app = &app;
        async move { Ok::<_, Error>(handle(app, req, chrono::Utc::now()).await) }
    }))
    .await
}
