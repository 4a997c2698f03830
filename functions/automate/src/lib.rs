//! Automated tasks: DMS events routed by an EventBridge rule to a queue become sends
//! of the mapped template under the same consent and quiet-hour rules.

pub mod config;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use consent::automation;
use consent::message::EventKey;
use consent::ports::{
    AutomationStore, ConsentReader, ContactStore, DealerStore, MessageStore, OutboundQueue,
    TemplateStore, WorkQueue,
};
use consent::service::sending::{automated_send, SendPorts, SendRequest};
use consent::{AccountId, ContactId, DealId, DealerId, DomainError, PhoneNumber};

#[derive(Clone)]
pub struct App {
    pub dealers: Arc<dyn DealerStore>,
    pub contacts: Arc<dyn ContactStore>,
    /// The dealers' own templates (an automation may name one).
    pub templates: Arc<dyn TemplateStore>,
    pub consent: Arc<dyn ConsentReader>,
    pub messages: Arc<dyn MessageStore>,
    pub queue: Arc<dyn OutboundQueue>,
    pub number_pool: Vec<PhoneNumber>,
    /// Which template each event type sends, per dealer (else the built-in mapping).
    pub automations: Arc<dyn AutomationStore>,
    /// Where refused automated sends are raised for staff.
    pub work: Arc<dyn WorkQueue>,
}

/// An EventBridge event as the rule delivers it to SQS.
#[derive(Debug, Deserialize)]
pub struct BusEnvelope {
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: TaskDetail,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDetail {
    /// The DMS's own id of the business event (a payment attempt, a service appointment):
    /// the same on every PutEvents retry, which EventBridge gives a new event id. Automated
    /// sends de-duplicate on it (docs/events/README.md). Required.
    pub idempotency_key: EventKey,
    pub dealer_id: DealerId,
    pub contact_id: ContactId,
    pub account_id: Option<AccountId>,
    pub deal_id: Option<DealId>,
    #[serde(default)]
    pub variables: Map<String, Value>,
}

/// What happened to one record.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordOutcome {
    Accepted,
    /// Malformed or unmappable: logged and dropped (retrying cannot help).
    Dropped,
    /// Infrastructure failure: the record is retried.
    Retry,
}

pub async fn process_record(app: &App, body: &str, now: DateTime<Utc>) -> RecordOutcome {
    let event: BusEnvelope = match serde_json::from_str(body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "automation event is malformed; dropped");
            return RecordOutcome::Dropped;
        }
    };
    let setting = match app
        .automations
        .automation(&event.detail.dealer_id, &event.detail_type)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(event_id = %event.id, error = %e, "automation settings unreadable; will retry");
            return RecordOutcome::Retry;
        }
    };
    let Some(template) = automation::template_for(&event.detail_type, setting.as_ref()) else {
        tracing::info!(detail_type = %event.detail_type, event_id = %event.id, "no template for this event type, or the dealer turned it off; dropped");
        return RecordOutcome::Dropped;
    };
    let ports = SendPorts {
        dealers: app.dealers.as_ref(),
        contacts: app.contacts.as_ref(),
        templates: app.templates.as_ref(),
        consent: app.consent.as_ref(),
        messages: app.messages.as_ref(),
        queue: app.queue.as_ref(),
        number_pool: &app.number_pool,
    };
    let request = SendRequest {
        contact_id: event.detail.contact_id,
        template: template.to_owned(),
        variables: event.detail.variables,
        notes: None,
        scheduled_at: None,
        account_id: event.detail.account_id,
        deal_id: event.detail.deal_id,
    };
    match automated_send(
        &ports,
        app.work.as_ref(),
        &event.detail.dealer_id,
        &event.detail_type,
        &event.detail.idempotency_key,
        request,
        now,
    )
    .await
    {
        Ok(accepted) => {
            tracing::info!(event_id = %event.id, message_id = %accepted.message.id, status = %accepted.message.status, "automated send");
            RecordOutcome::Accepted
        }
        Err(DomainError::Store(e)) => {
            tracing::error!(event_id = %event.id, error = %e, "automated send failed; will retry");
            RecordOutcome::Retry
        }
        Err(e) => {
            tracing::warn!(event_id = %event.id, reason = %e, "automated send refused; dropped");
            RecordOutcome::Dropped
        }
    }
}

pub async fn handle(app: &App, event: SqsEvent, now: DateTime<Utc>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("record", message_id = %id);
        let _enter = span.enter();
        let outcome = process_record(app, record.body.as_deref().unwrap_or(""), now).await;
        if outcome == RecordOutcome::Retry {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
