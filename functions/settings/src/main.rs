use std::sync::Arc;

use consent_adapters::config;
use lambda_http::{run, service_fn, Error, Request};
use settings::config::Config;
use settings::{handle, App};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (config, aws) = config::start(Config::from_env).await?;
    let store = Arc::new(config.table.store(&aws));
    let app = App {
        claims: config.claims.clone(),
        dealers: store.clone(),
        numbers: store.clone(),
        templates: store.clone(),
        automations: store,
        number_pool: config.number_pool,
    };
    run(service_fn(|req: Request| {
        let app = &app;
        async move { Ok::<_, Error>(handle(app, req, chrono::Utc::now()).await) }
    }))
    .await
}
