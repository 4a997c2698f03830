use std::sync::Arc;

use automate::config::Config;
use automate::{handle, App};
use aws_lambda_events::event::sqs::SqsEvent;
use consent_adapters::config;
use consent_adapters::{cache, CachedDealers, SqsOutboundQueue};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (config, aws) = config::start(Config::from_env).await?;
    let store = Arc::new(config.table.store(&aws));
    let app = App {
        dealers: Arc::new(CachedDealers::new((*store).clone(), cache::DEALER_TTL)),
        contacts: store.clone(),
        templates: store.clone(),
        automations: store.clone(),
        work: store.clone(),
        consent: store.clone(),
        messages: store,
        queue: Arc::new(SqsOutboundQueue::from_sdk(&aws, config.outbound_queue_url)),
        number_pool: config.number_pool,
    };
    run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let app = &app;
        async move { Ok::<_, Error>(handle(app, event.payload, chrono::Utc::now()).await) }
    }))
    .await
}
