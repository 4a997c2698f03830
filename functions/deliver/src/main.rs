use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use consent::approval::CodeHasher;
use consent_adapters::secrets;
use consent_adapters::{config, telemetry, DynamoStore, TwilioCarrier};
use deliver::backoff::{BoxFuture, Visibility};
use deliver::{handle_before, App};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

/// Backoff through ChangeMessageVisibility on the outbound queue.
struct SqsVisibility {
    client: consent_adapters::aws_sdk_sqs::Client,
    queue_url: String,
}

impl Visibility for SqsVisibility {
    fn delay<'a>(&'a self, receipt_handle: &'a str, by: Duration) -> BoxFuture<'a> {
        Box::pin(async move {
            let result = self
                .client
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(receipt_handle)
                .visibility_timeout(by.as_secs() as i32)
                .send()
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "ChangeMessageVisibility failed; the queue's timeout applies");
            }
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let secrets = consent_adapters::aws_sdk_secretsmanager::Client::new(&aws);
    let carrier_timeout = Duration::from_secs(config::parsed("CARRIER_TIMEOUT_SECONDS", 10u64)?);
    let carrier = TwilioCarrier::new(
        config::parsed("CARRIER_BASE_URL", "https://api.twilio.com".to_owned())?,
        config::required("TWILIO_ACCOUNT_SID")?,
        secrets::from_env(&secrets, "TWILIO_AUTH_TOKEN_SECRET_ARN").await?,
        carrier_timeout,
    )?;
    let codes = CodeHasher::new(secrets::from_env(&secrets, "CODE_HASH_KEY_SECRET_ARN").await?)?;
    let store = Arc::new(DynamoStore::new(
        consent_adapters::aws_sdk_dynamodb::Client::new(&aws),
        config::required("TABLE_NAME")?,
        config::parsed("DUE_SHARDS", 16u32)?,
    ));
    let app = App {
        consent: store.clone(),
        consent_writer: store.clone(),
        messages: store.clone(),
        pending: store.clone(),
        work: store,
        codes,
        carrier: Arc::new(carrier),
        // The carrier's read and connect timeouts, and the writes around the call.
        record_budget: carrier_timeout + TwilioCarrier::CONNECT_TIMEOUT + Duration::from_secs(5),
        visibility: Arc::new(SqsVisibility {
            client: consent_adapters::aws_sdk_sqs::Client::new(&aws),
            queue_url: config::required("OUTBOUND_QUEUE_URL")?,
        }),
        public_base_url: config::optional("PUBLIC_BASE_URL"),
        dead_letter_arn: config::optional("OUTBOUND_DLQ_ARN"),
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
