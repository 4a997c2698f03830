//! The outbound queue's consumer: for each record, re-check and claim the message,
//! call the carrier once, record the result; report only failed records.

pub mod config;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use consent_adapters::sqs::Visibility;

use consent::approval::CodeHasher;
use consent::message::{MessageStatus, OutboundEnvelope};
use consent::ports::{
    Carrier, ConsentReader, ConsentWriter, MessageStore, PendingStore, WorkQueue,
};
use consent::service::delivery::{deliver_envelope, DeliverOutcome, DeliverPorts, STALE_CLAIM};

#[derive(Clone)]
pub struct App {
    pub consent: Arc<dyn ConsentReader>,
    pub consent_writer: Arc<dyn ConsentWriter>,
    pub messages: Arc<dyn MessageStore>,
    pub carrier: Arc<dyn Carrier>,
    pub work: Arc<dyn WorkQueue>,
    pub pending: Arc<dyn PendingStore>,
    /// The code key: opens approval code texts' sealed codes.
    pub codes: CodeHasher,
    pub visibility: Arc<dyn Visibility>,
    /// What one record may take at most (the carrier's timeouts and the writes around
    /// the call): a record is started only while this much of the invocation is left.
    pub record_budget: Duration,
    pub public_base_url: Option<String>,
    /// The ARN of the outbound dead-letter queue: its records fail their message and go
    /// to staff (the function is also that queue's consumer).
    pub dead_letter_arn: Option<String>,
}

pub async fn handle(app: &App, event: SqsEvent, now: DateTime<Utc>) -> SqsBatchResponse {
    handle_before(app, event, now, None).await
}

/// Handles the batch's records one after another while the invocation's `deadline`
/// leaves room for one more (`App::record_budget`); the records not started are
/// reported failed and handed back to the queue at once, so a timeout never strands
/// a record in the middle of the batch.
pub async fn handle_before(
    app: &App,
    event: SqsEvent,
    now: DateTime<Utc>,
    deadline: Option<Instant>,
) -> SqsBatchResponse {
    let ports = DeliverPorts {
        consent: app.consent.as_ref(),
        consent_writer: app.consent_writer.as_ref(),
        messages: app.messages.as_ref(),
        carrier: app.carrier.as_ref(),
        work: app.work.as_ref(),
        pending: app.pending.as_ref(),
        codes: &app.codes,
    };
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        if deadline.is_some_and(|d| Instant::now() + app.record_budget > d) {
            tracing::warn!(sqs_message_id = %id, "not enough of the invocation left; handed back");
            if let Some(handle) = record.receipt_handle.as_deref() {
                app.visibility.delay(handle, Duration::ZERO).await;
            }
            push_failure(&mut response, id);
            continue;
        }
        let span = tracing::info_span!("record", sqs_message_id = %id);
        let _enter = span.enter();
        let dead_lettered = app.dead_letter_arn.is_some()
            && record.event_source_arn.as_deref() == app.dead_letter_arn.as_deref();
        let envelope: OutboundEnvelope =
            match serde_json::from_str(record.body.as_deref().unwrap_or("")) {
                Ok(e) => e,
                Err(e) if dead_lettered => {
                    // Nothing to attach it to: it stays logged (by id), not retried forever.
                    tracing::error!(error = %e, "dead-lettered record is malformed; dropped");
                    continue;
                }
                Err(e) => {
                    // A poison record: fail it so redrive moves it to the DLQ after maxReceiveCount.
                    tracing::error!(error = %e, "outbound record is malformed");
                    push_failure(&mut response, id);
                    continue;
                }
            };
        if dead_lettered {
            match consent::service::delivery::dead_lettered(&ports, &envelope.message_id, now).await
            {
                Ok(outcome) => {
                    tracing::warn!(message_id = %envelope.message_id, outcome = ?outcome, "dead-lettered message handed to staff")
                }
                Err(e) => {
                    tracing::error!(message_id = %envelope.message_id, error = %e, "dead-lettered record not handled; retrying");
                    push_failure(&mut response, id);
                }
            }
            continue;
        }
        // How many times SQS handed this record out: the carrier attempt number.
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse::<u32>().ok())
            .unwrap_or(1);
        let outcome = deliver_envelope(
            &ports,
            &envelope,
            receive_count,
            app.public_base_url.as_deref(),
            now,
        )
        .await;
        match outcome {
            Ok(DeliverOutcome::RetryLater { after }) => {
                tracing::warn!(message_id = %envelope.message_id, retry_in_s = after.as_secs(), "carrier unavailable; retrying");
                if let Some(handle) = record.receipt_handle.as_deref() {
                    app.visibility
                        .delay(handle, after.min(Duration::from_secs(43_200)))
                        .await;
                }
                push_failure(&mut response, id);
            }
            Ok(DeliverOutcome::Skipped {
                status: Some(MessageStatus::Sending),
            }) => {
                // A fresh claim by another worker, or by one that died mid-call. Dropping
                // the record would leave the message in `sending` for good in the second
                // case: come back once the claim is stale, when deliver fails it for staff.
                tracing::warn!(message_id = %envelope.message_id, "message is claimed by another delivery; checking again later");
                if let Some(handle) = record.receipt_handle.as_deref() {
                    let stale = STALE_CLAIM.to_std().unwrap_or(Duration::from_secs(300));
                    app.visibility.delay(handle, stale).await;
                }
                push_failure(&mut response, id);
            }
            Ok(outcome) => {
                tracing::info!(message_id = %envelope.message_id, outcome = ?outcome, "delivered record");
            }
            Err(e) => {
                tracing::error!(message_id = %envelope.message_id, error = %e, "delivery failed; retrying");
                push_failure(&mut response, id);
            }
        }
    }
    response
}

fn push_failure(response: &mut SqsBatchResponse, id: String) {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    response.batch_item_failures.push(failure);
}
