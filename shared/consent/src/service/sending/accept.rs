//! Accepting a send: a staff request (a template, or staff's own words) checked
//! against the rules, stored once per idempotency key, and queued now or left in the
//! time index for dispatch.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use crate::category::Category;
use crate::error::{DomainError, StoreError};
use crate::ids::{AccountId, ContactId, DealId, DealerId};
use crate::message::{
    Idempotency, Message, MessageStatus, NewMessage, Origin, Outbound, OutboundEnvelope,
    StatusChange, StatusReason,
};
use crate::ports::IdempotencyRecord;
use crate::template::Resolved;

use super::compose::{compose, resolve, Content};
use super::ports::SendPorts;
use super::send_time::{earliest_send, Recipient, CLAIM_ATTEMPTS};
use crate::service::require_dealer;

/// The confirmation staff see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendAccepted {
    pub message: Message,
    /// The same Idempotency-Key was seen before: this is the first answer again.
    pub replayed: bool,
}

/// How far ahead a text may be scheduled.
pub const MAX_SCHEDULE_AHEAD_DAYS: i64 = 365;
/// A `scheduledAt` this far in the past is refused (clock skew tolerance below it).
pub const PAST_TOLERANCE_SECONDS: i64 = 60;
/// Longest staff note kept with a message.
pub const MAX_NOTES_CHARS: usize = 2000;

/// A send request from the portal or an automated task.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub contact_id: ContactId,
    pub template: String,
    pub variables: Map<String, Value>,
    pub notes: Option<String>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub account_id: Option<AccountId>,
    pub deal_id: Option<DealId>,
}

/// Staff's own words to a person (an answer to their reply), instead of a template:
/// the same consent, quiet-hour and cap rules for its category.
#[derive(Debug, Clone)]
pub struct TextRequest {
    pub contact_id: ContactId,
    pub body: String,
    pub category: Category,
    pub notes: Option<String>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub account_id: Option<AccountId>,
    pub deal_id: Option<DealId>,
}

/// A send request of either kind, as `accept` takes it.
struct Draft {
    contact_id: ContactId,
    content: Content,
    notes: Option<String>,
    scheduled_at: Option<DateTime<Utc>>,
    account_id: Option<AccountId>,
    deal_id: Option<DealId>,
}

impl From<SendRequest> for Draft {
    fn from(r: SendRequest) -> Self {
        Draft {
            contact_id: r.contact_id,
            content: Content::Template {
                name: r.template,
                variables: r.variables,
            },
            notes: r.notes,
            scheduled_at: r.scheduled_at,
            account_id: r.account_id,
            deal_id: r.deal_id,
        }
    }
}

impl From<TextRequest> for Draft {
    fn from(r: TextRequest) -> Self {
        Draft {
            contact_id: r.contact_id,
            content: Content::Text {
                body: r.body,
                category: r.category,
            },
            notes: r.notes,
            scheduled_at: r.scheduled_at,
            account_id: r.account_id,
            deal_id: r.deal_id,
        }
    }
}

/// Requests a send: template, consent, rendering, quiet hours, then stored (with
/// its idempotency key, atomically) and either queued now or left for dispatch.
///
/// The idempotency key is not read up front (a retry is the rare case): the store's
/// conditional create detects a reused key, and a refusal checks for a first answer
/// before it is returned, so the same key always gets the same answer.
pub async fn request_send(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    origin: Origin,
    request: SendRequest,
    idempotency: Option<Idempotency>,
    now: DateTime<Utc>,
) -> Result<SendAccepted, DomainError> {
    self::request(ports, dealer_id, origin, request.into(), idempotency, now).await
}

/// Requests staff's own words to a person, under the rules a template of the same
/// category would meet (consent, opt-out, quiet hours, caps, idempotency).
pub async fn request_text(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    origin: Origin,
    request: TextRequest,
    idempotency: Option<Idempotency>,
    now: DateTime<Utc>,
) -> Result<SendAccepted, DomainError> {
    self::request(ports, dealer_id, origin, request.into(), idempotency, now).await
}

async fn request(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    origin: Origin,
    request: Draft,
    idempotency: Option<Idempotency>,
    now: DateTime<Utc>,
) -> Result<SendAccepted, DomainError> {
    match accept(ports, dealer_id, origin, request, idempotency.as_ref(), now).await {
        Ok(accepted) => Ok(accepted),
        Err(DomainError::Store(e)) => Err(DomainError::Store(e)),
        Err(refusal) => {
            if let Some(idempotency) = &idempotency {
                if let Some(found) = retried(ports, dealer_id, idempotency, now).await? {
                    return Ok(found);
                }
            }
            Err(refusal)
        }
    }
}

async fn accept(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    origin: Origin,
    request: Draft,
    idempotency: Option<&Idempotency>,
    now: DateTime<Utc>,
) -> Result<SendAccepted, DomainError> {
    let (kind, category, tpl) = resolve(ports, dealer_id, &request.content).await?;
    if let Some(notes) = &request.notes {
        if notes.chars().count() > MAX_NOTES_CHARS {
            return Err(DomainError::Invalid(format!(
                "notes are longer than {MAX_NOTES_CHARS} characters"
            )));
        }
    }
    if let Some(at) = request.scheduled_at {
        if at < now - Duration::seconds(PAST_TOLERANCE_SECONDS) {
            return Err(DomainError::Invalid("scheduledAt is in the past".into()));
        }
        if at > now + Duration::days(MAX_SCHEDULE_AHEAD_DAYS) {
            return Err(DomainError::Invalid(format!(
                "scheduledAt is more than {MAX_SCHEDULE_AHEAD_DAYS} days ahead"
            )));
        }
    }
    let contact = ports
        .contacts
        .contact(dealer_id, &request.contact_id)
        .await?
        .ok_or(DomainError::NotFound { what: "contact" })?;
    let dealer = require_dealer(ports.dealers, dealer_id, ports.number_pool).await?;
    let (state, opted_out) = ports
        .consent
        .consent_to_text(dealer_id, &contact.phone, &dealer.texting_number)
        .await?;
    if !state.value.may_send(category).is_allowed() {
        return Err(DomainError::ConsentRequired { category });
    }
    // Authorized with this dealer, yet opted out of its number (it STOPped the number's
    // previous owner, or the carrier blocks it): the carrier would refuse the text.
    if opted_out {
        return Err(DomainError::OptedOut {
            from: dealer.texting_number.clone(),
        });
    }
    let (body, variables) = compose(request.content, tpl.as_ref(), category, &dealer.name)?;
    let wanted = request.scheduled_at.unwrap_or(now).max(now);
    let recipient = Recipient {
        dealer: dealer_id,
        phone: &contact.phone,
        time_zone: contact.time_zone.clone(),
        category,
    };
    let parts = NewMessage {
        dealer_id: dealer_id.clone(),
        kind,
        to: contact.phone.clone(),
        from: dealer.texting_number.clone(),
        category,
        body,
        origin,
    };
    // Its status and history are set below, once its send time is known.
    let mut message = Message {
        contact_id: Some(contact.id.clone()),
        template: tpl.as_ref().map(|t| t.name().to_owned()),
        template_version: tpl.as_ref().map(Resolved::version),
        variables,
        notes: request.notes,
        account_id: request
            .account_id
            .or_else(|| contact.account_ids.first().cloned()),
        deal_id: request.deal_id,
        recipient_time_zone: contact.time_zone.clone(),
        requested_at: request.scheduled_at,
        send_at: wanted,
        ..Message::new(parts, MessageStatus::Queued, None, now)
    };
    let record = idempotency.map(|i| IdempotencyRecord {
        dealer_id: dealer_id.clone(),
        key: i.key().to_owned(),
        request_hash: i.fingerprint().to_owned(),
        message_id: message.id.clone(),
        created_at: now,
    });
    // A capped text is stored with its recipient's cap book moved on from the version
    // its count read; when another text got there first, the count is made again.
    let mut attempt = 0;
    let status = loop {
        attempt += 1;
        let plan = earliest_send(ports.messages, &recipient, wanted, &message.id, now).await?;
        let (status, reason) = if let Some(why) = &plan.waits {
            (MessageStatus::Deferred, Some(why.clone()))
        } else if wanted > now + Duration::seconds(1) {
            (MessageStatus::Scheduled, None)
        } else {
            (MessageStatus::Queued, None)
        };
        message.send_at = plan.at;
        message.status = status;
        message.status_reason = reason.clone();
        message.history = vec![StatusChange {
            status,
            at: now,
            reason,
        }];
        let stored = match &plan.book {
            Some(book) => {
                ports
                    .messages
                    .create_counted(&message, record.as_ref(), book)
                    .await
            }
            None => ports.messages.create(&message, record.as_ref()).await,
        };
        match stored {
            Ok(()) => break status,
            Err(StoreError::Conflict(_)) => {
                // Another request with the same key won the race: answer as it did.
                if let Some(idempotency) = idempotency {
                    if let Some(found) = retried(ports, dealer_id, idempotency, now).await? {
                        return Ok(found);
                    }
                }
                if plan.book.is_none() || attempt >= CLAIM_ATTEMPTS {
                    return Err(DomainError::Conflict(
                        "the message could not be stored".into(),
                    ));
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    // A reply to it (PAY) finds the newest reminder on the base table.
    if message.template.as_deref() == Some(crate::service::replies::TEXT_TO_PAY_TEMPLATE) {
        ports
            .messages
            .note_latest(
                dealer_id,
                &message.to,
                crate::service::replies::TEXT_TO_PAY_TEMPLATE,
                &message.id,
            )
            .await?;
    }
    if status == MessageStatus::Queued {
        let outbound = Outbound {
            envelope: OutboundEnvelope::for_message(&message, now),
            delay_seconds: 0,
        };
        let failed = match ports.queue.enqueue(&[outbound]).await {
            Ok(failed) => !failed.is_empty(),
            Err(e) => {
                tracing::warn!(message_id = %message.id, error = %e, "enqueue failed; leaving the message to dispatch");
                true
            }
        };
        if failed {
            // Not lost: back into the time index, due now, for the next dispatch run.
            message.transition(
                MessageStatus::Scheduled,
                now,
                Some(StatusReason::QueueUnavailable),
            );
            ports.messages.save(&message, MessageStatus::Queued).await?;
        }
    }
    Ok(SendAccepted {
        message,
        replayed: false,
    })
}

/// A retry: the first answer to its idempotency key, and what the first request
/// may not have finished. A retry follows an answer that never came or was a 5xx, so the
/// first request may have died between storing its text and queueing it (an instance
/// killed, a timeout): a text still `queued` and never claimed is handed to the queue
/// again rather than left for dispatch's requeue five minutes later. If the first did
/// queue it, the second record finds it claimed or sent: the claim keeps it one text. A DMS
/// event delivered twice is most often not a retry of a failure: an automated text only
/// replays, and dispatch's requeue covers one whose automate instance died before queueing.
async fn retried(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    idempotency: &Idempotency,
    now: DateTime<Utc>,
) -> Result<Option<SendAccepted>, DomainError> {
    let found = replay(ports, dealer_id, idempotency, now).await?;
    if let Some(first) = &found {
        let message = &first.message;
        let portal = !matches!(message.origin, Origin::Automation { .. });
        if portal && message.status == MessageStatus::Queued && message.history.len() == 1 {
            match crate::service::queue_stored(ports.queue, message, now).await {
                Ok(()) => {
                    tracing::info!(message_id = %message.id, "a retried send handed its queued text to the queue again");
                }
                // Dispatch's requeue still finds it in the due index.
                Err(e) => {
                    tracing::warn!(message_id = %message.id, error = %e, "a retried send could not hand its queued text to the queue; dispatch requeues it");
                }
            }
        }
    }
    Ok(found)
}

/// The first answer to an idempotency key, if it was given (a key reused for another
/// request is refused).
pub(super) async fn replay(
    ports: &SendPorts<'_>,
    dealer_id: &DealerId,
    idempotency: &Idempotency,
    now: DateTime<Utc>,
) -> Result<Option<SendAccepted>, DomainError> {
    let Some(record) = ports
        .messages
        .idempotency(dealer_id, idempotency.key(), now)
        .await?
    else {
        return Ok(None);
    };
    if record.request_hash != idempotency.fingerprint() {
        return Err(DomainError::IdempotencyKeyReused);
    }
    let message =
        ports
            .messages
            .message(&record.message_id)
            .await?
            .ok_or(DomainError::Conflict(
                "the idempotent message is missing".into(),
            ))?;
    Ok(Some(SendAccepted {
        message,
        replayed: true,
    }))
}
