use std::sync::Arc;

use consent_adapters::config;
use consent_adapters::SqsWebhookInbox;
use inbound::config::Config;
use inbound::{handle, App};
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (config, aws) = config::start(Config::from_env).await?;
    let secrets = consent_adapters::aws_sdk_secretsmanager::Client::new(&aws);
    // Read off the init path: the first webhook waits for it.
    let auth_token = Arc::new(config.auth_token.deferred_versions(&secrets));
    let app = App {
        inbox: Arc::new(SqsWebhookInbox::new(
            consent_adapters::aws_sdk_sqs::Client::new(&aws),
            config.inbound_queue_url,
            config.status_queue_url,
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
