use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use consent_adapters::carriers::{OptOutList, OptOutLists};
use consent_adapters::config;
use consent_adapters::eum::events::Topics;
use consent_adapters::eum::EumOptOutList;
use consent_adapters::{cache, CachedDealers, EventBridgePublisher, SqsOutboundQueue};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use webhooks::config::Config;
use webhooks::{handle, App, EumSource};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (config, aws) = config::start(Config::from_env).await?;
    let store = Arc::new(config.table.store(&aws));
    // A START lifts End User Messaging's opt-out list of the number (Twilio lifts its own).
    let lists = config
        .end_user_messaging
        .as_ref()
        .map(|_| Arc::new(EumOptOutList::new(&aws)) as Arc<dyn OptOutList>);
    let app = App {
        opt_outs: Arc::new(OptOutLists::new(lists, store.clone())),
        dealers: Arc::new(CachedDealers::new((*store).clone(), cache::DEALER_TTL)),
        contacts: store.clone(),
        consent: store.clone(),
        consent_writer: store.clone(),
        pending: store.clone(),
        messages: store.clone(),
        work: store.clone(),
        inbound: store.clone(),
        numbers: store,
        end_user_messaging: config.end_user_messaging.map(|c| EumSource {
            queue_arn: c.queue_arn,
            topics: Topics {
                replies: c.replies_topic_arn,
                events: c.events_topic_arn,
            },
        }),
        queue: Arc::new(SqsOutboundQueue::from_sdk(&aws, config.outbound_queue_url)),
        events: Arc::new(EventBridgePublisher::new(
            consent_adapters::aws_sdk_eventbridge::Client::new(&aws),
            config.event_bus_name,
        )),
    };
    run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let app = &app;
        async move { Ok::<_, Error>(handle(app, event.payload, chrono::Utc::now()).await) }
    }))
    .await
}
