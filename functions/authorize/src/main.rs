use std::sync::Arc;

use authorize::config::Config;
use authorize::{handle, App};
use consent_adapters::config;
use consent_adapters::SqsOutboundQueue;
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (config, aws) = config::start(Config::from_env).await?;
    let secrets = consent_adapters::aws_sdk_secretsmanager::Client::new(&aws);
    // Read off the init path: only code requests and verifications wait for it.
    let hasher = Arc::new(config.code_key.deferred_code_key(&secrets));
    let store = Arc::new(config.table.store(&aws));
    let app = App {
        claims: config.claims.clone(),
        dealers: store.clone(),
        contacts: store.clone(),
        consent: store.clone(),
        consent_writer: store.clone(),
        pending: store.clone(),
        limits: store.clone(),
        numbers: store.clone(),
        ledger: store.clone(),
        messages: store,
        queue: Arc::new(SqsOutboundQueue::from_sdk(&aws, config.outbound_queue_url)),
        hasher,
        number_pool: config.number_pool,
    };
    run(service_fn(|req: Request| {
        let app = &app;
        async move { Ok::<_, Error>(handle(app, req, chrono::Utc::now()).await) }
    }))
    .await
}
