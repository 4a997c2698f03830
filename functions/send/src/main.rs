use std::sync::Arc;

use consent_adapters::config;
use consent_adapters::{cache, CachedDealers, SqsOutboundQueue};
use lambda_http::{run, service_fn, Error, Request};
use send::config::Config;
use send::{handle, App};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (config, aws) = config::start(Config::from_env).await?;
    let store = Arc::new(config.table.store(&aws));
    let app = App {
        claims: config.claims.clone(),
        dealers: Arc::new(CachedDealers::new((*store).clone(), cache::DEALER_TTL)),
        contacts: store.clone(),
        templates: store.clone(),
        consent: store.clone(),
        conversations: store.clone(),
        messages: store,
        queue: Arc::new(SqsOutboundQueue::from_sdk(&aws, config.outbound_queue_url)),
        number_pool: config.number_pool,
    };
    run(service_fn(|req: Request| {
        let app = &app;
        async move { Ok::<_, Error>(handle(app, req, chrono::Utc::now()).await) }
    }))
    .await
}
