//! Acts on the carrier webhooks `inbound` stored (the inbound FIFO queue): a person's
//! reply (Agree, STOP, START, HELP, PAY, CONFIRM, free text for staff) and the carrier's
//! status reports.
//!
//! Each webhook is acted on exactly once however often the queue delivers it
//! (`consent::service::replies::handle_inbound`). Records of one group (one person's texts
//! to one number) must be acted on in order: after the first record that fails, this and
//! every later record of the batch are handed back, so a STOP is never passed by the
//! START that followed it. What keeps failing goes to the dead-letter queue and its alarm.
//!
//! End User Messaging's texts and delivery events come the same way, from its own queue
//! (the stack's two SNS topics deliver there): read into the same webhooks, acted on alike.

pub mod config;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use tracing::Instrument;

use consent::ports::{
    CarrierOptOuts, ConsentReader, ConsentWriter, ContactStore, DealerStore, EventPublisher,
    InboundLog, MessageStore, NumberDirectory, OutboundQueue, PendingStore, WorkQueue,
};
use consent::service::replies::{self, InboundPorts, InboundSms, StatusPorts, StatusReport};
use consent::webhook::CarrierWebhook;
use consent_adapters::eum::{self, events::Topics};

#[derive(Clone)]
pub struct App {
    pub dealers: Arc<dyn DealerStore>,
    pub contacts: Arc<dyn ContactStore>,
    pub consent: Arc<dyn ConsentReader>,
    pub consent_writer: Arc<dyn ConsentWriter>,
    pub pending: Arc<dyn PendingStore>,
    pub messages: Arc<dyn MessageStore>,
    pub queue: Arc<dyn OutboundQueue>,
    pub events: Arc<dyn EventPublisher>,
    pub work: Arc<dyn WorkQueue>,
    pub inbound: Arc<dyn InboundLog>,
    pub numbers: Arc<dyn NumberDirectory>,
    /// The carriers' opt-out lists: a START lifts the person off the number's.
    pub opt_outs: Arc<dyn CarrierOptOuts>,
    /// End User Messaging's queue (its two topics deliver there) and the topics; `None`:
    /// this stack has no End User Messaging.
    pub end_user_messaging: Option<EumSource>,
}

/// Where End User Messaging's notifications come from: a record of this queue is SNS's
/// envelope of a person's text or a delivery event, from one of these topics only.
#[derive(Debug, Clone)]
pub struct EumSource {
    pub queue_arn: String,
    pub topics: Topics,
}

/// What became of one stored webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Acted on (or found acted on before).
    Done,
    /// Not acted on yet: the record goes back to the queue.
    Retry,
}

/// Reads one record: End User Messaging's notification from its queue, else a webhook
/// `inbound` stored. `Ok(None)`: nothing to act on.
fn webhook_of(
    app: &App,
    source: Option<&str>,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Option<CarrierWebhook>, String> {
    match &app.end_user_messaging {
        Some(eum) if source == Some(eum.queue_arn.as_str()) => {
            eum::events::read(body, &eum.topics, now).map_err(|e| e.to_string())
        }
        _ => serde_json::from_str(body)
            .map(Some)
            .map_err(|e| e.to_string()),
    }
}

/// Acts on one record of `source` (its queue's ARN); `now` is the time of this delivery.
pub async fn process_record(
    app: &App,
    source: Option<&str>,
    body: &str,
    now: DateTime<Utc>,
) -> RecordOutcome {
    let webhook = match webhook_of(app, source, body, now) {
        Ok(Some(w)) => w,
        Ok(None) => {
            tracing::info!(
                "End User Messaging notification with nothing this service acts on; ignored"
            );
            return RecordOutcome::Done;
        }
        Err(e) => {
            // Only this service and End User Messaging (through the stack's own topics) write
            // these queues: a body it cannot read, or from a topic not ours, is kept (retried,
            // then dead-lettered with an alarm), never dropped and never acted on.
            tracing::error!(error = %e, "stored webhook unreadable; retried, then dead-lettered");
            return RecordOutcome::Retry;
        }
    };
    let result = match &webhook {
        CarrierWebhook::Reply {
            carrier_message_id,
            from,
            to,
            body,
            received_at,
        } => {
            let sms = InboundSms {
                carrier_message_id: carrier_message_id.clone(),
                from: from.clone(),
                to: to.clone(),
                body: body.clone(),
            };
            let ports = InboundPorts {
                dealers: app.dealers.as_ref(),
                contacts: app.contacts.as_ref(),
                consent: app.consent.as_ref(),
                consent_writer: app.consent_writer.as_ref(),
                pending: app.pending.as_ref(),
                messages: app.messages.as_ref(),
                queue: app.queue.as_ref(),
                events: app.events.as_ref(),
                work: app.work.as_ref(),
                inbound: app.inbound.as_ref(),
                numbers: app.numbers.as_ref(),
                opt_outs: app.opt_outs.as_ref(),
            };
            // Decided as of when the person texted, however late this delivery is.
            replies::handle_inbound(&ports, &sms, *received_at)
                .await
                .map(|outcome| {
                    tracing::info!(message_sid = %sms.carrier_message_id, from = %sms.from.redacted(), outcome = ?outcome, "reply acted on");
                })
        }
        CarrierWebhook::Status {
            message_id,
            carrier_message_id,
            status,
            error_code,
            ..
        } => {
            let report = StatusReport {
                message_id: message_id.clone(),
                carrier_message_id: carrier_message_id.clone(),
                status: status.clone(),
                error_code: *error_code,
            };
            let ports = StatusPorts {
                consent: app.consent.as_ref(),
                consent_writer: app.consent_writer.as_ref(),
                messages: app.messages.as_ref(),
            };
            replies::handle_status(&ports, &report, now)
                .await
                .map(|status| {
                    tracing::info!(message_id = %report.message_id, reported = %report.status, error_code = report.error_code, status = ?status, "status report acted on");
                })
        }
    };
    match result {
        Ok(()) => RecordOutcome::Done,
        Err(e) => {
            tracing::error!(message_sid = %webhook.carrier_message_id(), error = %e, "webhook not acted on yet; retried");
            RecordOutcome::Retry
        }
    }
}

/// One batch, in order: from the first record that must be retried on, every record is
/// handed back (a FIFO source's rule: later records of its group must not pass it).
pub async fn handle(app: &App, event: SqsEvent, now: DateTime<Utc>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut failed = false;
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        if !failed {
            let span = tracing::info_span!("record", message_id = %id);
            let source = record.event_source_arn.as_deref();
            failed = process_record(app, source, record.body.as_deref().unwrap_or(""), now)
                .instrument(span)
                .await
                == RecordOutcome::Retry;
        }
        if failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
