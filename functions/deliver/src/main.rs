use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use consent::ports::Carrier;
use consent_adapters::carriers::Carriers;
use consent_adapters::config;
use consent_adapters::eum::EndUserMessagingCarrier;
use consent_adapters::sqs::{SqsOutboundQueue, SqsVisibility};
use consent_adapters::TwilioCarrier;
use deliver::config::Config;
use deliver::{handle_before, App};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (config, aws) = config::start(Config::from_env).await?;
    let secrets = consent_adapters::aws_sdk_secretsmanager::Client::new(&aws);
    // Both secrets read off the init path, at once: a record waits for the carrier's token
    // only at the carrier call, and for the code key only to open a code text.
    let (base_url, account_sid, timeout) = (
        config.carrier_base_url,
        config.carrier_account_sid,
        config.carrier_timeout,
    );
    let carrier = config
        .carrier_auth_token
        .deferred_map(&secrets, move |token| {
            TwilioCarrier::new(base_url.clone(), account_sid.clone(), token, timeout)
        });
    let codes = Arc::new(config.code_key.deferred_code_key(&secrets));
    let store = Arc::new(config.table.store(&aws));
    // Each text goes through the carrier its number is on; End User Messaging only where
    // the stack names a configuration set for it.
    let end_user_messaging = config.end_user_messaging_configuration_set.map(|set| {
        Arc::new(EndUserMessagingCarrier::new(
            &aws,
            set,
            config.carrier_timeout,
        )) as Arc<dyn Carrier>
    });
    let carrier = Carriers::new(Arc::new(carrier), end_user_messaging, store.clone());
    let sqs = consent_adapters::aws_sdk_sqs::Client::new(&aws);
    let app = App {
        dealers: store.clone(),
        consent: store.clone(),
        consent_writer: store.clone(),
        messages: store.clone(),
        pending: store.clone(),
        work: store.clone(),
        limits: store,
        codes,
        carrier: Arc::new(carrier),
        // The carrier's read and connect timeouts (both carriers' are the same), and the
        // writes around the call (with the read of the number's carrier).
        record_budget: config.carrier_timeout
            + TwilioCarrier::CONNECT_TIMEOUT
            + Duration::from_secs(5),
        visibility: Arc::new(SqsVisibility::new(
            sqs.clone(),
            config.outbound_queue_url.clone(),
        )),
        dead_letter_visibility: config.dead_letter_url.map(|url| {
            Arc::new(SqsVisibility::new(sqs.clone(), url))
                as Arc<dyn consent_adapters::sqs::Visibility>
        }),
        queue: Arc::new(SqsOutboundQueue::new(sqs, config.outbound_queue_url)),
        send_rate: config.send_rate_per_number,
        brand_daily_segments: config.daily_segments_per_brand,
        public_base_url: config.public_base_url,
        dead_letter_arn: config.dead_letter_arn,
    };
    run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let app = &app;
        async move {
            let deadline = deadline_instant(event.context.deadline);
            Ok::<_, Error>(
                handle_before(app, event.payload, chrono::Utc::now(), Some(deadline)).await,
            )
        }
    }))
    .await
}

/// The invocation's deadline (epoch milliseconds from the runtime API) as an `Instant`.
fn deadline_instant(deadline_ms: u64) -> std::time::Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    std::time::Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}
