//! The outbound queue's consumer: for each record, re-check and claim the message,
//! call the carrier once, record the result; report only failed records.

pub mod config;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use consent_adapters::sqs::Visibility;
use futures::stream::{self, StreamExt};
use tracing::Instrument;

use consent::message::{Outbound, OutboundEnvelope};
use consent::ports::{
    Carrier, CodeKey, ConsentReader, ConsentWriter, DealerStore, MessageStore, OutboundQueue,
    PendingStore, RateLimiter, WorkQueue,
};
use consent::service::delivery::{
    deliver_envelope, Admission, CarrierLimits, DeliverOutcome, DeliverPorts, SendGate, WaitReason,
};

#[derive(Clone)]
pub struct App {
    pub dealers: Arc<dyn DealerStore>,
    pub consent: Arc<dyn ConsentReader>,
    pub consent_writer: Arc<dyn ConsentWriter>,
    pub messages: Arc<dyn MessageStore>,
    pub carrier: Arc<dyn Carrier>,
    pub work: Arc<dyn WorkQueue>,
    pub pending: Arc<dyn PendingStore>,
    /// The code key: opens approval code texts' sealed codes.
    pub codes: Arc<dyn CodeKey>,
    /// The outbound queue's visibility (its receipt handles are good there only).
    pub visibility: Arc<dyn Visibility>,
    /// The dead-letter queue's, for the records received from it (`None`: its own
    /// visibility timeout applies).
    pub dead_letter_visibility: Option<Arc<dyn Visibility>>,
    /// What one record may take at most (the carrier's timeouts and the writes around
    /// the call): a record is started only while this much of the invocation is left.
    pub record_budget: Duration,
    pub public_base_url: Option<String>,
    /// The ARN of the outbound dead-letter queue: its records fail their message and go
    /// to staff (the function is also that queue's consumer).
    pub dead_letter_arn: Option<String>,
    /// Texts per second the carrier takes from one texting number (`None`: no limit).
    pub send_rate: Option<u32>,
    /// Segments a day one dealer's brand may send (T-Mobile's 10DLC cap; `None`: no cap).
    pub brand_daily_segments: Option<u32>,
    /// The per-number sending rate's and the brands' daily counters.
    pub limits: Arc<dyn RateLimiter>,
    /// The outbound queue: a text over its number's rate goes back to wait there.
    pub queue: Arc<dyn OutboundQueue>,
}

/// The longest a text waits in the queue between two tries of its number's rate.
pub const MAX_RATE_WAIT: Duration = Duration::from_secs(16);

/// The carrier's limits (the domain's rules over this function's settings), asked by a
/// delivery whose claim won, so a duplicate record never spends them.
#[async_trait::async_trait]
impl SendGate for App {
    async fn admit(
        &self,
        envelope: &OutboundEnvelope,
        now: DateTime<Utc>,
    ) -> Result<Admission, consent::StoreError> {
        CarrierLimits {
            send_rate: self.send_rate,
            brand_daily_segments: self.brand_daily_segments,
            limits: self.limits.as_ref(),
        }
        .admit(envelope, now)
        .await
    }
}

/// How long a text over its number's rate waits before its next try: 2, 4, 8, then 16
/// seconds, so a long backlog on one number is retried a few times, not every second;
/// its message id spreads texts of the same second apart by up to half of that.
fn rate_wait(envelope: &OutboundEnvelope) -> u32 {
    let base = (2u32 << envelope.rate_waits.min(3)).min(MAX_RATE_WAIT.as_secs() as u32);
    let spread = envelope
        .message_id
        .to_string()
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    base + spread % (base / 2 + 1)
}

pub async fn handle(app: &App, event: SqsEvent, now: DateTime<Utc>) -> SqsBatchResponse {
    handle_before(app, event, now, None).await
}

/// Records worked at once: a whole batch (the event source's `BatchSize` is 10). Each
/// record mostly waits on the carrier, so ten in flight cost one instance the time of
/// the slowest instead of the sum.
pub const RECORDS_AT_ONCE: usize = 10;

/// Handles the batch's records concurrently (at most [`RECORDS_AT_ONCE`]), each started
/// only while the invocation's `deadline` leaves room for it (`App::record_budget`); the
/// records not started are reported failed and handed back to the queue at once, so a
/// timeout never strands a record in the middle of the batch.
pub async fn handle_before(
    app: &App,
    event: SqsEvent,
    now: DateTime<Utc>,
    deadline: Option<Instant>,
) -> SqsBatchResponse {
    let ports = DeliverPorts {
        dealers: app.dealers.as_ref(),
        consent: app.consent.as_ref(),
        consent_writer: app.consent_writer.as_ref(),
        messages: app.messages.as_ref(),
        carrier: app.carrier.as_ref(),
        work: app.work.as_ref(),
        pending: app.pending.as_ref(),
        codes: app.codes.as_ref(),
        gate: Some(app),
    };
    let ports = &ports;
    let failed: Vec<Option<String>> = stream::iter(event.records)
        .map(|record| {
            let id = record.message_id.clone().unwrap_or_default();
            let span = tracing::info_span!("record", sqs_message_id = %id);
            async move {
                if deadline.is_some_and(|d| Instant::now() + app.record_budget > d) {
                    tracing::warn!("not enough of the invocation left; handed back");
                    if let (Some(handle), Some(visibility)) =
                        (record.receipt_handle.as_deref(), app.visibility_of(&record))
                    {
                        visibility.delay(handle, Duration::ZERO).await;
                    }
                    return Some(id);
                }
                (!handle_record(app, ports, &record, now).await).then_some(id)
            }
            .instrument(span)
        })
        .buffer_unordered(RECORDS_AT_ONCE)
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for id in failed.into_iter().flatten() {
        push_failure(&mut response, id);
    }
    response
}

impl App {
    fn is_dead_lettered(&self, record: &SqsMessage) -> bool {
        self.dead_letter_arn.is_some()
            && record.event_source_arn.as_deref() == self.dead_letter_arn.as_deref()
    }

    /// The visibility of the queue `record` came from (deliver consumes two).
    fn visibility_of(&self, record: &SqsMessage) -> Option<&dyn Visibility> {
        if self.is_dead_lettered(record) {
            self.dead_letter_visibility.as_deref()
        } else {
            Some(self.visibility.as_ref())
        }
    }
}

/// One record; false when it must come back (reported as a batch item failure).
async fn handle_record(
    app: &App,
    ports: &DeliverPorts<'_>,
    record: &SqsMessage,
    now: DateTime<Utc>,
) -> bool {
    let dead_lettered = app.is_dead_lettered(record);
    let envelope: OutboundEnvelope =
        match serde_json::from_str(record.body.as_deref().unwrap_or("")) {
            Ok(e) => e,
            Err(e) if dead_lettered => {
                // Nothing to attach it to: it stays logged (by id), not retried forever.
                tracing::error!(error = %e, "dead-lettered record is malformed; dropped");
                return true;
            }
            Err(e) => {
                // A poison record: fail it so redrive moves it to the DLQ after maxReceiveCount.
                tracing::error!(error = %e, "outbound record is malformed");
                return false;
            }
        };
    if dead_lettered {
        return match consent::service::delivery::dead_lettered(ports, &envelope.message_id, now)
            .await
        {
            Ok(outcome) => {
                tracing::warn!(message_id = %envelope.message_id, kind = outcome.kind(), reason = outcome.reason().map(tracing::field::display), outcome = ?outcome, "dead-lettered message handed to staff");
                true
            }
            Err(e) => {
                tracing::error!(message_id = %envelope.message_id, error = %e, "dead-lettered record not handled; retrying");
                false
            }
        };
    }
    let outcome = deliver_envelope(ports, &envelope, app.public_base_url.as_deref(), now).await;
    match outcome {
        Ok(DeliverOutcome::WaitInQueue { why }) => wait_in_queue(app, record, envelope, why).await,
        Ok(DeliverOutcome::RetryLater { after }) => {
            tracing::warn!(message_id = %envelope.message_id, retry_in_s = after.as_secs(), "carrier unavailable; retrying");
            hand_back(app, record, after).await
        }
        Ok(DeliverOutcome::ClaimHeld { stale_in }) => {
            // A fresh claim by another worker, or by one that died mid-call. Dropping
            // the record would leave the message in `sending` for good in the second
            // case: come back once the claim is stale (a second later, as visibility
            // counts whole seconds), when the carrier's message list settles it.
            let after = Duration::from_secs(stale_in.as_secs() + 1);
            tracing::warn!(message_id = %envelope.message_id, retry_in_s = after.as_secs(), "message is claimed by another delivery; checking again once the claim is stale");
            hand_back(app, record, after).await
        }
        Ok(outcome) => {
            tracing::info!(message_id = %envelope.message_id, kind = outcome.kind(), reason = outcome.reason().map(tracing::field::display), outcome = ?outcome, "delivered record");
            true
        }
        Err(e) => {
            // A store or queue error (throttled past the SDK's retries, a 500): nothing
            // was sent on a guess, and the record comes back soon rather than after the
            // queue's 6-minute visibility timeout, later each time it fails.
            let after = store_retry(record);
            tracing::error!(message_id = %envelope.message_id, error = %e, retry_in_s = after.as_secs(), "delivery failed; retrying");
            hand_back(app, record, after).await
        }
    }
}

/// Hands the record back to the outbound queue, to come again after `after` (its
/// visibility; the adapter holds it to SQS's 12 hours): reported failed, never dropped.
async fn hand_back(app: &App, record: &SqsMessage, after: Duration) -> bool {
    if let Some(handle) = record.receipt_handle.as_deref() {
        app.visibility.delay(handle, after).await;
    }
    false
}

/// When a record that failed for a store or queue error comes back: 15 s after its first
/// receive, then 45 s, 135 s, then the queue's 360 s, so a short outage costs seconds
/// and a long one still takes its five receives (about 9 minutes) before the
/// dead-letter queue.
pub fn store_retry(record: &SqsMessage) -> Duration {
    let received: u32 = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let seconds = 15u64.saturating_mul(3u64.saturating_pow(received.saturating_sub(1).min(8)));
    Duration::from_secs(seconds.min(360))
}

/// Puts a text that must wait (its number's rate, a busy carrier) back on the queue,
/// delayed: a new record (with a fresh receive count, so waiting never counts toward the
/// dead-letter queue), and this one done. Should both stay (a crash between the two), the
/// claim sends it once.
async fn wait_in_queue(
    app: &App,
    record: &SqsMessage,
    mut envelope: OutboundEnvelope,
    why: WaitReason,
) -> bool {
    let delay_seconds = rate_wait(&envelope);
    envelope.rate_waits += 1;
    let message_id = envelope.message_id.clone();
    let waits = envelope.rate_waits;
    match app
        .queue
        .enqueue(&[Outbound {
            envelope,
            delay_seconds,
        }])
        .await
    {
        Ok(failed) if failed.is_empty() => {
            tracing::info!(message_id = %message_id, wait_s = delay_seconds, waits, why = ?why, "waiting in the queue");
            true
        }
        Ok(_) | Err(_) => {
            // This record waits instead: it comes back after the same wait, not after
            // the queue's 6-minute visibility timeout.
            tracing::warn!(message_id = %message_id, why = ?why, wait_s = delay_seconds, "must wait and was not re-queued; its record waits instead");
            hand_back(app, record, Duration::from_secs(delay_seconds.into())).await
        }
    }
}

fn push_failure(response: &mut SqsBatchResponse, id: String) {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    response.batch_item_failures.push(failure);
}
