//! Delivery: the moment of sending. Re-check, claim, call the carrier once, record.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use crate::error::{DomainError, StoreError};
use crate::ids::{new_ulid, MessageId};
use crate::message::{Message, MessageStatus};
use crate::ports::{
    Carrier, CarrierError, CarrierSend, Claim, ConsentReader, ConsentWriter, MessageStore,
    WorkItem, WorkItemStatus, WorkQueue, WorkQueueName,
};
use crate::quiet_hours::QuietHours;

use super::replies::revoke_by_carrier;
use super::sending::parse_time_zone;

pub struct DeliverPorts<'a> {
    pub consent: &'a dyn ConsentReader,
    pub consent_writer: &'a dyn ConsentWriter,
    pub messages: &'a dyn MessageStore,
    pub carrier: &'a dyn Carrier,
    pub work: &'a dyn WorkQueue,
}

/// Carrier attempts before a retryable failure becomes permanent (the queue's
/// maxReceiveCount is higher, so the message fails here, visibly, before the DLQ).
pub const MAX_CARRIER_ATTEMPTS: u32 = 4;
/// A claim older than this with no result means a worker died mid-call.
pub const STALE_CLAIM: Duration = Duration::minutes(5);

/// What happened to one queued record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliverOutcome {
    Sent {
        carrier_message_id: String,
    },
    /// Consent was gone at the moment of sending.
    Suppressed {
        reason: String,
    },
    /// Inside quiet hours now: back to the time index.
    Deferred {
        until: DateTime<Utc>,
    },
    /// Nothing to do (already handled, canceled, or unknown).
    Skipped {
        status: Option<MessageStatus>,
    },
    /// Try the record again after this long (the SQS record is reported failed).
    RetryLater {
        after: StdDuration,
    },
    Failed {
        reason: String,
    },
}

/// Status callback URL for a message (the carrier reports there).
pub fn status_callback(base: &str, id: &MessageId) -> String {
    format!(
        "{}/v1/carrier/twilio/status?messageId={id}",
        base.trim_end_matches('/')
    )
}

/// Delivers one message.
pub async fn deliver(
    ports: &DeliverPorts<'_>,
    id: &MessageId,
    public_base_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    let mut message = match ports.messages.claim(id, now).await? {
        Claim::Claimed(m) => *m,
        Claim::NotFound => return Ok(DeliverOutcome::Skipped { status: None }),
        Claim::NotClaimable(MessageStatus::Sending) => return stale_claim(ports, id, now).await,
        Claim::NotClaimable(status) => {
            return Ok(DeliverOutcome::Skipped {
                status: Some(status),
            })
        }
    };
    if message.needs_consent() {
        let decision = ports
            .consent
            .consent(&message.dealer_id, &message.to)
            .await?
            .value
            .may_send(message.category);
        if !decision.is_allowed() {
            let reason = decision.reason().to_owned();
            finish(
                ports,
                &mut message,
                MessageStatus::Suppressed,
                Some(reason.clone()),
                now,
            )
            .await?;
            return Ok(DeliverOutcome::Suppressed { reason });
        }
    }
    if message.honours_quiet_hours() {
        let tz = parse_time_zone(message.recipient_time_zone.as_deref());
        let allowed = QuietHours::standard().next_allowed(&message.to, tz, message.category, now);
        if allowed > now + Duration::seconds(59) {
            message.send_at = allowed;
            finish(
                ports,
                &mut message,
                MessageStatus::Deferred,
                Some("quiet-hours".into()),
                now,
            )
            .await?;
            return Ok(DeliverOutcome::Deferred { until: allowed });
        }
    }
    let send = CarrierSend {
        from: message.from.clone(),
        to: message.to.clone(),
        body: message.body.clone(),
        status_callback: public_base_url.map(|b| status_callback(b, &message.id)),
    };
    message.attempts += 1;
    match ports.carrier.send(&send).await {
        Ok(receipt) => {
            message.carrier_message_id = Some(receipt.carrier_message_id.clone());
            finish(ports, &mut message, MessageStatus::Sent, None, now).await?;
            Ok(DeliverOutcome::Sent {
                carrier_message_id: receipt.carrier_message_id,
            })
        }
        Err(CarrierError::Retryable {
            reason,
            retry_after,
        }) if message.attempts < MAX_CARRIER_ATTEMPTS => {
            finish(
                ports,
                &mut message,
                MessageStatus::Queued,
                Some(format!("retrying: {reason}")),
                now,
            )
            .await?;
            // Exponential backoff: 10 s, 20 s, 40 s ... capped by SQS at 12 h.
            let backoff = StdDuration::from_secs(10u64 << (message.attempts - 1).min(10));
            Ok(DeliverOutcome::RetryLater {
                after: retry_after.unwrap_or(backoff).max(backoff),
            })
        }
        Err(CarrierError::OptedOut { code }) => {
            let reason = format!("carrier-opt-out ({code})");
            revoke_by_carrier(
                ports.consent,
                ports.consent_writer,
                &message.dealer_id,
                &message.to,
                code,
                message.id.as_str(),
                now,
            )
            .await?;
            finish(
                ports,
                &mut message,
                MessageStatus::Suppressed,
                Some(reason.clone()),
                now,
            )
            .await?;
            Ok(DeliverOutcome::Suppressed { reason })
        }
        Err(e) => {
            let reason = e.to_string();
            finish(
                ports,
                &mut message,
                MessageStatus::Failed,
                Some(reason.clone()),
                now,
            )
            .await?;
            to_failed_sends(ports, &message, &reason, now).await?;
            Ok(DeliverOutcome::Failed { reason })
        }
    }
}

async fn finish(
    ports: &DeliverPorts<'_>,
    message: &mut Message,
    status: MessageStatus,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    message.transition(status, now, reason);
    ports.messages.save(message, MessageStatus::Sending).await?;
    Ok(())
}

/// A message left in `sending`: if the claim is stale, the worker died between claim
/// and result. The carrier may or may not have it, so it is not sent again: it fails
/// visibly and goes to staff.
async fn stale_claim(
    ports: &DeliverPorts<'_>,
    id: &MessageId,
    now: DateTime<Utc>,
) -> Result<DeliverOutcome, DomainError> {
    let Some(mut message) = ports.messages.message(id).await? else {
        return Ok(DeliverOutcome::Skipped { status: None });
    };
    let claimed_at = message
        .history
        .last()
        .map(|h| h.at)
        .unwrap_or(message.created_at);
    if message.status != MessageStatus::Sending || now - claimed_at < STALE_CLAIM {
        return Ok(DeliverOutcome::Skipped {
            status: Some(message.status),
        });
    }
    let reason = "delivery interrupted; the carrier may not have it".to_owned();
    message.transition(MessageStatus::Failed, now, Some(reason.clone()));
    match ports.messages.save(&message, MessageStatus::Sending).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Ok(DeliverOutcome::Skipped { status: None }),
        Err(e) => return Err(e.into()),
    }
    to_failed_sends(ports, &message, &reason, now).await?;
    Ok(DeliverOutcome::Failed { reason })
}

async fn to_failed_sends(
    ports: &DeliverPorts<'_>,
    message: &Message,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    ports
        .work
        .add_item(&WorkItem {
            id: new_ulid(),
            dealer_id: message.dealer_id.clone(),
            queue: WorkQueueName::FailedSends,
            kind: "send-failed".into(),
            contact_id: message.contact_id.clone(),
            phone: Some(message.to.clone()),
            account_id: message.account_id.clone(),
            deal_id: message.deal_id.clone(),
            message_id: Some(message.id.clone()),
            text: Some(reason.chars().take(500).collect()),
            created_at: now,
            status: WorkItemStatus::Open,
            handling: Default::default(),
        })
        .await?;
    Ok(())
}
