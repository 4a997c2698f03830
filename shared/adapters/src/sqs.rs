//! The queues on SQS: the outbound queue (SendMessageBatch in tens, partial failures
//! reported) and the inbound webhook queue.

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

use consent::message::Outbound;
use consent::ports::{OutboundQueue, StoreResult, WebhookInbox};
use consent::webhook::CarrierWebhook;
use consent::{MessageId, StoreError};

/// SQS's batch limit.
pub const SQS_BATCH: usize = 10;

#[derive(Clone, Debug)]
pub struct SqsOutboundQueue {
    client: Client,
    queue_url: String,
}

impl SqsOutboundQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// The queue at `queue_url`, with a client of the function's SDK configuration.
    pub fn from_sdk(aws: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::new(Client::new(aws), queue_url)
    }
}

#[async_trait]
impl OutboundQueue for SqsOutboundQueue {
    async fn enqueue(&self, items: &[Outbound]) -> StoreResult<Vec<MessageId>> {
        let mut failed = Vec::new();
        for chunk in items.chunks(SQS_BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, o) in chunk.iter().enumerate() {
                let body = serde_json::to_string(&o.envelope).map_err(|e| StoreError::Corrupt {
                    key: o.envelope.message_id.to_string(),
                    reason: e.to_string(),
                })?;
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .delay_seconds(o.delay_seconds.min(900) as i32)
                        .build()
                        .map_err(|e| {
                            StoreError::unavailable("building SendMessageBatch entry", e)
                        })?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| StoreError::unavailable("SQS SendMessageBatch", e))?;
            for f in out.failed {
                tracing::warn!(entry = %f.id, code = %f.code, sender_fault = f.sender_fault, "SendMessageBatch entry failed");
                if let Some(o) = f.id.parse::<usize>().ok().and_then(|i| chunk.get(i)) {
                    failed.push(o.envelope.message_id.clone());
                }
            }
        }
        Ok(failed)
    }
}

/// The inbound webhook queues: a signed webhook is kept here before it is answered. A
/// person's texts go to the FIFO replies queue, the carrier's status reports to a queue of
/// their own, so a STOP never waits behind a burst's delivery reports.
#[derive(Clone, Debug)]
pub struct SqsWebhookInbox {
    client: Client,
    replies_url: String,
    statuses_url: String,
}

impl SqsWebhookInbox {
    pub fn new(
        client: Client,
        replies_url: impl Into<String>,
        statuses_url: impl Into<String>,
    ) -> Self {
        Self {
            client,
            replies_url: replies_url.into(),
            statuses_url: statuses_url.into(),
        }
    }
}

#[async_trait]
impl WebhookInbox for SqsWebhookInbox {
    async fn store(&self, webhook: &CarrierWebhook) -> StoreResult<()> {
        let body = serde_json::to_string(webhook).map_err(|e| StoreError::Corrupt {
            key: webhook.carrier_message_id().to_owned(),
            reason: e.to_string(),
        })?;
        let send = self.client.send_message().message_body(body);
        let send = match webhook {
            // A FIFO queue: one person's texts are acted on in the order they came, and a
            // webhook the carrier sent twice within five minutes is kept once.
            CarrierWebhook::Reply { .. } => send
                .queue_url(&self.replies_url)
                .message_group_id(webhook.order_key())
                .message_deduplication_id(dedup_id(&webhook.dedup_key())),
            // A standard queue: status reports come twice and out of order anyway, and
            // applying one is idempotent and never moves a message backwards.
            CarrierWebhook::Status { .. } => send.queue_url(&self.statuses_url),
        };
        send.send()
            .await
            .map_err(|e| StoreError::unavailable("SQS SendMessage (inbound webhook)", e))?;
        Ok(())
    }
}

/// SQS takes de-duplication ids of at most 128 characters of `[!-~]`.
fn dedup_id(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(128)
        .collect()
}

/// Changing a received record's visibility: an SQS-consumer concern (retry backoff,
/// handing back records a batch did not start).
pub trait Visibility: Send + Sync {
    /// Delays the record's next delivery by `by` (zero: at once). Best effort: on failure
    /// the queue's own visibility timeout applies.
    fn delay<'a>(&'a self, receipt_handle: &'a str, by: std::time::Duration) -> BoxFuture<'a>;
}

pub type BoxFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// Visibility through ChangeMessageVisibility on one queue.
#[derive(Clone, Debug)]
pub struct SqsVisibility {
    client: Client,
    queue_url: String,
}

impl SqsVisibility {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

/// Pauses before the second and third ChangeMessageVisibility, after the SDK's own retries:
/// a record comes back in seconds rather than after the queue's visibility timeout (6
/// minutes for the outbound queue) when SQS was away for a moment, as a store outage often
/// is with it.
const VISIBILITY_RETRY_PAUSES: [std::time::Duration; 2] = [
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(3),
];

impl Visibility for SqsVisibility {
    fn delay<'a>(&'a self, receipt_handle: &'a str, by: std::time::Duration) -> BoxFuture<'a> {
        Box::pin(async move {
            let mut pauses = VISIBILITY_RETRY_PAUSES.iter();
            loop {
                let result = self
                    .client
                    .change_message_visibility()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt_handle)
                    .visibility_timeout(by.as_secs().min(43_200) as i32)
                    .send()
                    .await;
                let Err(e) = result else { return };
                match pauses.next() {
                    Some(pause) => tokio::time::sleep(*pause).await,
                    None => {
                        tracing::warn!(error = %e, "ChangeMessageVisibility failed; the queue's timeout applies");
                        return;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An SQS endpoint on loopback that answers 500 to the first `failures` requests, then
    /// 200; returns its URL and the count of requests it saw.
    async fn flaky_sqs(failures: usize) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = vec![0u8; 16 * 1024];
                let _ = socket.read(&mut buf).await;
                let (status, body) = if n < failures {
                    ("500 Internal Server Error", r#"{"__type":"InternalError"}"#)
                } else {
                    ("200 OK", "{}")
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (url, seen)
    }

    fn client(url: &str) -> Client {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::for_tests())
            .endpoint_url(url)
            // One attempt per call: what the adapter adds is seen alone.
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
            .build();
        Client::from_conf(config)
    }

    #[tokio::test]
    async fn a_visibility_change_sqs_refused_is_asked_again_before_the_queue_timeout_applies() {
        // GIVEN an SQS that fails the first request
        let (url, seen) = flaky_sqs(1).await;
        let visibility = SqsVisibility::new(client(&url), format!("{url}/000000000000/q"));

        // WHEN a record's visibility is changed
        visibility
            .delay("receipt-1", std::time::Duration::from_secs(15))
            .await;

        // THEN it was asked again, and the second answer took
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_visibility_change_is_asked_three_times_at_most() {
        let (url, seen) = flaky_sqs(usize::MAX).await;
        let visibility = SqsVisibility::new(client(&url), format!("{url}/000000000000/q"));
        visibility
            .delay("receipt-1", std::time::Duration::from_secs(15))
            .await;
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    }
}
