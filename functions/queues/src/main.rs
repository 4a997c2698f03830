use std::sync::Arc;

use consent_adapters::config;
use lambda_http::{run, service_fn, Error, Request};
use queues::config::Config;
use queues::{handle, App};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (config, aws) = config::start(Config::from_env).await?;
    let app = App {
        claims: config.claims.clone(),
        desk: Arc::new(config.table.store(&aws)),
    };
    run(service_fn(|req: Request| {
        let app = &app;
        async move { Ok::<_, Error>(handle(app, req, chrono::Utc::now()).await) }
    }))
    .await
}
