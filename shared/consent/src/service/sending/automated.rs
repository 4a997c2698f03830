//! Automated sends: a DMS event's text, sent once per event; a refusal by the rules is
//! kept as a suppressed message and raised to staff instead of failing the event.

use chrono::{DateTime, Utc};

use crate::error::{DomainError, StoreError};
use crate::ids::{DealerId, MessageId};
use crate::message::{
    EventKey, Message, MessageKind, MessageStatus, NewMessage, Origin, StatusReason,
};
use crate::ports::{
    Contact, IdempotencyRecord, WorkItem, WorkItemStatus, WorkQueue, WorkQueueName,
};
use crate::template::Resolved;

use super::accept::{replay, request_send, SendAccepted, SendRequest};
use super::compose::resolve_template;
use super::ports::SendPorts;
use crate::service::truncate;

/// The template an automated-task event sends.
pub fn template_for_event(detail_type: &str) -> Option<&'static str> {
    crate::automation::default_template(detail_type)
}

/// An automated-task send. A refusal by the rules (no consent, bad variables,
/// unknown contact) is recorded as a suppressed message with the reason instead of
/// failing, so the event is not retried in a loop, and raises an item on the
/// dealer's `automation-failures` queue so staff see it. Only infrastructure errors fail.
/// `event_key` is the producer's idempotency key of the event (the same on every retry of
/// it): one send per key and dealer.
pub async fn automated_send(
    ports: &SendPorts<'_>,
    work: &dyn WorkQueue,
    dealer_id: &DealerId,
    event: &str,
    event_key: &EventKey,
    request: SendRequest,
    now: DateTime<Utc>,
) -> Result<SendAccepted, DomainError> {
    // The producer's key, not EventBridge's id: a DMS that retries PutEvents sends the same
    // key under a new event id, and must text once. The origin keeps it as the event's id.
    let idempotency = event_key.idempotency();
    let origin = Origin::Automation {
        event: event.to_owned(),
        event_id: event_key.as_str().to_owned(),
    };
    let contact_id = request.contact_id.clone();
    let template_name = request.template.clone();
    match request_send(
        ports,
        dealer_id,
        origin.clone(),
        request,
        Some(idempotency.clone()),
        now,
    )
    .await
    {
        Ok(accepted) => Ok(accepted),
        Err(DomainError::Store(e)) => Err(DomainError::Store(e)),
        Err(refusal) => {
            let reason = match &refusal {
                DomainError::ConsentRequired { category } => {
                    StatusReason::ConsentRequired(*category)
                }
                DomainError::OptedOut { .. } => StatusReason::OptedOut,
                other => StatusReason::Other(other.to_string()),
            };
            let contact = ports.contacts.contact(dealer_id, &contact_id).await?;
            let dealer = ports.dealers.dealer(dealer_id).await?;
            let summary = format!(
                "{}: {}",
                truncate(event, 64),
                truncate(&reason.to_string(), 300)
            );
            let failure = |message_id: Option<MessageId>, contact: Option<&Contact>| WorkItem {
                id: crate::ids::new_ulid(),
                dealer_id: dealer_id.clone(),
                queue: WorkQueueName::AutomationFailures,
                kind: "automated-send-refused".into(),
                contact_id: Some(contact_id.clone()),
                phone: contact.map(|c| c.phone.clone()),
                account_id: contact.and_then(|c| c.account_ids.first().cloned()),
                deal_id: None,
                message_id,
                text: Some(summary.clone()),
                created_at: now,
                status: WorkItemStatus::Open,
                handling: Default::default(),
            };
            let (Some(contact), Some(dealer)) = (contact, dealer.as_ref()) else {
                tracing::warn!(dealer = %dealer_id, event_id = event_key.as_str(), reason = %reason, "automated send refused: unknown contact or dealer");
                if dealer.is_some() {
                    work.add_item(&failure(None, None)).await?;
                }
                return Err(refusal);
            };
            let tpl = resolve_template(ports, dealer_id, &template_name).await?;
            let parts = NewMessage {
                dealer_id: dealer_id.clone(),
                kind: MessageKind::Template,
                to: contact.phone.clone(),
                from: dealer.texting_number.clone(),
                category: tpl
                    .as_ref()
                    .map(Resolved::category)
                    .unwrap_or(crate::Category::Accounting),
                body: String::new(),
                origin,
            };
            // Nothing was rendered: no body, no segments.
            let message = Message {
                contact_id: Some(contact.id.clone()),
                template: Some(template_name),
                template_version: tpl.as_ref().map(Resolved::version),
                segments: 0,
                account_id: contact.account_ids.first().cloned(),
                recipient_time_zone: contact.time_zone.clone(),
                ..Message::new(parts, MessageStatus::Suppressed, Some(reason.clone()), now)
            };
            let record = IdempotencyRecord {
                dealer_id: dealer_id.clone(),
                key: idempotency.key().to_owned(),
                request_hash: idempotency.fingerprint().to_owned(),
                message_id: message.id.clone(),
                created_at: now,
            };
            match ports.messages.create(&message, Some(&record)).await {
                Ok(()) => {
                    // Once per event: a redelivered event replays the first message below.
                    work.add_item(&failure(Some(message.id.clone()), Some(&contact)))
                        .await?;
                    Ok(SendAccepted {
                        message,
                        replayed: false,
                    })
                }
                Err(StoreError::Conflict(_)) => replay(ports, dealer_id, &idempotency, now)
                    .await?
                    .ok_or(DomainError::Conflict(
                        "the idempotent message is missing".into(),
                    )),
                Err(e) => Err(e.into()),
            }
        }
    }
}
