use std::sync::Arc;

use consent_adapters::config;
use consent_adapters::EventBridgePublisher;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use publish::config::Config;
use publish::{handle, App, StreamEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (config, aws) = config::start(Config::from_env).await?;
    let app = App {
        events: Arc::new(EventBridgePublisher::new(
            consent_adapters::aws_sdk_eventbridge::Client::new(&aws),
            config.event_bus_name,
        )),
    };
    run(service_fn(|event: LambdaEvent<StreamEvent>| {
        let app = &app;
        async move { Ok::<_, Error>(handle(app, event.payload).await) }
    }))
    .await
}
